//! Anomaly detection with a trained autoencoder, in the spirit of PyOD: fit on normal data,
//! score new samples (higher is more anomalous), threshold by a contamination rate, predict 0/1,
//! and measure AUROC and average precision where labels are known.
//!
//! Two scores are offered: the reconstruction error (the squared error summed over features),
//! and a latent score, the Mahalanobis distance of the code from the distribution of the normal
//! training codes (a Gaussian with their mean and covariance).

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, backend::Backend};
use gen_core::eval::{self, EvalError};
use gen_core::{BatchSource, Decoder, Encoder};
use serde::{Deserialize, Serialize};

use crate::Autoencoder;

mod benchmark;
mod ensemble;
pub mod iforest;
mod protocol;

pub use benchmark::{
    DetectorResult, MeanSd, SEEDED_TABLE, SeedSplit, TableBenchmark, TableBenchmarkConfig, table_benchmark,
};
pub use ensemble::EnsembleDetector;
pub use iforest::{IsolationForest, IsolationForestConfig};
pub use protocol::{
    AnomalyReport, AnomalyRow, ONE_CLASS, RowScores, RunsFor, TABLE, TableSplit, Thresholding, one_class, tabular,
};

/// Which anomaly score a detector thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Squared reconstruction error of the sample, summed over features.
    #[default]
    Reconstruction,
    /// Mahalanobis distance (squared) of the sample's code from the normal training codes.
    Latent,
    /// The sum of both, each standardised by its mean and standard deviation on the normal
    /// training data (so neither decides by its scale alone).
    Combined,
}

impl std::str::FromStr for ScoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reconstruction" | "recon" => Ok(ScoreKind::Reconstruction),
            "latent" | "mahalanobis" => Ok(ScoreKind::Latent),
            "combined" => Ok(ScoreKind::Combined),
            other => Err(format!(
                "unknown anomaly score {other:?}; expected reconstruction, latent or combined"
            )),
        }
    }
}

/// Errors of the anomaly detector.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    /// The normal data to fit on was empty or of the wrong width.
    #[error("anomaly detector: {0}")]
    Data(String),
    /// A metric or threshold could not be computed.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// A Gaussian fitted to codes: mean and the Cholesky factor of the (ridge-regularised) covariance.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LatentGaussian {
    mean: Vec<f64>,
    /// Lower-triangular `L` with `L Lᵀ = Σ + εI`, row-major `d × d`.
    chol: Vec<f64>,
}

impl LatentGaussian {
    fn fit(codes: &[f32], d: usize) -> Self {
        let n = codes.len() / d;
        let mut mean = vec![0.0; d];
        for row in codes.chunks(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64 / n as f64;
            }
        }
        let mut cov = vec![0.0; d * d];
        for row in codes.chunks(d) {
            for i in 0..d {
                let a = row[i] as f64 - mean[i];
                for j in 0..=i {
                    cov[i * d + j] += a * (row[j] as f64 - mean[j]) / (n.max(2) - 1) as f64;
                }
            }
        }
        // A ridge of 1e-6 of the mean variance (plus a floor) keeps collapsed code units invertible.
        let trace = (0..d).map(|i| cov[i * d + i]).sum::<f64>() / d as f64;
        let ridge = 1e-6 * trace + 1e-12;
        for i in 0..d {
            cov[i * d + i] += ridge;
        }
        Self {
            mean,
            chol: cholesky(&cov, d),
        }
    }

    /// `(x - μ)ᵀ Σ⁻¹ (x - μ)` by forward substitution with `L`.
    fn mahalanobis_sq(&self, x: &[f32]) -> f64 {
        let d = self.mean.len();
        let mut y = vec![0.0; d];
        for i in 0..d {
            let row = &self.chol[i * d..i * d + i];
            let s = x[i] as f64 - self.mean[i] - row.iter().zip(&y[..i]).map(|(l, v)| l * v).sum::<f64>();
            y[i] = s / self.chol[i * d + i];
        }
        y.iter().map(|v| v * v).sum()
    }
}

/// Cholesky factor of a symmetric positive semi-definite matrix (lower triangle read); pivots
/// that are not positive are floored, which a ridge makes rare.
fn cholesky(a: &[f64], d: usize) -> Vec<f64> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                l[i * d + i] = (a[i * d + i] - s).max(1e-12).sqrt();
            } else {
                l[i * d + j] = (a[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    l
}

/// AUROC and average precision of scores against known labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Average precision (area under the precision–recall curve).
    pub average_precision: f64,
}

impl DetectionReport {
    /// Measures `scores` against `labels` (true = anomaly).
    ///
    /// # Errors
    /// If the lengths differ or one class is missing.
    pub fn new(scores: &[f32], labels: &[bool]) -> Result<Self, AnomalyError> {
        Ok(Self {
            auroc: eval::auroc(scores, labels)?,
            average_precision: eval::average_precision(scores, labels)?,
        })
    }
}

/// An autoencoder fitted to normal data, with its scores on that data and a threshold.
#[derive(Debug)]
pub struct AnomalyDetector<B: Backend> {
    model: Autoencoder<B>,
    kind: ScoreKind,
    latent: LatentGaussian,
    /// Mean and standard deviation of the reconstruction and latent scores on the normal data.
    norms: [Standardised; 2],
    train_scores: Vec<f32>,
    contamination: f64,
    threshold: f32,
    batch_size: usize,
}

/// Rows per forward pass when scoring.
const SCORE_BATCH: usize = 1024;

impl<B: Backend> AnomalyDetector<B> {
    /// Wraps a model trained on `normal` data: scores that data, fits the latent Gaussian and
    /// sets the threshold so that a share `contamination` of the training data is flagged.
    ///
    /// # Errors
    /// If `normal` is empty or of another width than the model, or `contamination` is not in
    /// (0, 0.5].
    pub fn new<D: BatchSource<B> + ?Sized>(
        model: Autoencoder<B>,
        normal: &D,
        kind: ScoreKind,
        contamination: f64,
        device: &B::Device,
    ) -> Result<Self, AnomalyError> {
        if normal.num_samples() < 2 {
            return Err(AnomalyError::Data(format!(
                "need at least 2 normal samples to fit, got {}",
                normal.num_samples()
            )));
        }
        let codes = codes_of(&model, normal, device);
        let latent = LatentGaussian::fit(&codes, model.d_latent());
        let mut detector = Self {
            model,
            kind,
            latent,
            norms: [Standardised::IDENTITY; 2],
            train_scores: Vec::new(),
            contamination,
            threshold: f32::INFINITY,
            batch_size: SCORE_BATCH,
        };
        let both = detector.both_scores(normal, device);
        detector.norms = [
            Standardised::fit(both.iter().map(|p| p.0)),
            Standardised::fit(both.iter().map(|p| p.1)),
        ];
        detector.train_scores = detector.pick(&both);
        detector.threshold = eval::contamination_threshold(&detector.train_scores, contamination)?;
        Ok(detector)
    }

    /// Trains an autoencoder of `config` on `normal` data with `train` (no validation split) and
    /// wraps it as [`AnomalyDetector::new`] does: the PyOD-style `fit` in one call.
    ///
    /// # Errors
    /// If the configuration is invalid, training fails (a diverging loss, say), or as
    /// [`AnomalyDetector::new`].
    pub fn fit<A, D>(
        config: &crate::AutoencoderConfig,
        train: &gen_core::train::TrainConfig,
        normal: &D,
        kind: ScoreKind,
        contamination: f64,
        device: &B::Device,
    ) -> Result<Self, AnomalyError>
    where
        A: AutodiffBackend<InnerBackend = B> + Backend<Device = B::Device>,
        D: BatchSource<A> + BatchSource<B> + ?Sized,
    {
        eval::contamination_threshold(&[0.0, 1.0], contamination)?;
        let wrap = |e: gen_core::CoreError| AnomalyError::Data(e.to_string());
        A::seed(device, train.seed);
        let model = config.try_init::<A>(device).map_err(|e| wrap(e.into()))?;
        let fitted = gen_core::train::Trainer::new(train.clone())
            .map_err(wrap)?
            .fit(model, normal, None::<&D>, &serde_json::Value::Null, device)
            .map_err(wrap)?;
        Self::new(fitted.model.valid(), normal, kind, contamination, device)
    }

    /// The autoencoder.
    pub fn model(&self) -> &Autoencoder<B> {
        &self.model
    }

    /// Which score is thresholded.
    pub fn kind(&self) -> ScoreKind {
        self.kind
    }

    /// Scores of the normal training data.
    pub fn train_scores(&self) -> &[f32] {
        &self.train_scores
    }

    /// The score above which a sample is predicted anomalous.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The contamination rate the threshold was set for.
    pub fn contamination(&self) -> f64 {
        self.contamination
    }

    /// Both scores of a batch: squared reconstruction error and latent Mahalanobis distance.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: two vectors of `batch` scores
    pub fn scores(&self, x: Tensor<B, 2>) -> (Vec<f32>, Vec<f32>) {
        let z = self.model.encode(x.clone());
        let r = self.model.decode(z.clone());
        let se = gen_core::loss::per_sample((r - x).powi_scalar(2));
        let recon: Vec<f32> = se.into_data().to_vec().expect("f32 scores");
        let codes: Vec<f32> = z.into_data().to_vec().expect("f32 codes");
        let d = self.model.d_latent();
        let latent = codes.chunks(d).map(|c| self.latent.mahalanobis_sq(c) as f32).collect();
        (recon, latent)
    }

    /// The detector's score of each sample of a batch.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    pub fn score(&self, x: Tensor<B, 2>) -> Vec<f32> {
        let (recon, latent) = self.scores(x);
        let both: Vec<(f32, f32)> = recon.into_iter().zip(latent).collect();
        self.pick(&both)
    }

    /// Scores of a whole data source, in batches.
    pub fn score_source<D: BatchSource<B> + ?Sized>(&self, data: &D, device: &B::Device) -> Vec<f32> {
        self.pick(&self.both_scores(data, device))
    }

    /// The detector's score from both scores (reconstruction, latent) of each sample.
    pub fn pick(&self, both: &[(f32, f32)]) -> Vec<f32> {
        self.score_as(self.kind, both)
    }

    /// The score of kind `kind` from both scores (reconstruction, latent) of each sample, with
    /// this detector's standardisation for [`ScoreKind::Combined`].
    pub fn score_as(&self, kind: ScoreKind, both: &[(f32, f32)]) -> Vec<f32> {
        let [r, l] = self.norms;
        both.iter()
            .map(|&(recon, latent)| match kind {
                ScoreKind::Reconstruction => recon,
                ScoreKind::Latent => latent,
                ScoreKind::Combined => r.apply(recon) + l.apply(latent),
            })
            .collect()
    }

    /// Both scores (reconstruction, latent) of every sample of a data source.
    pub fn both_scores<D: BatchSource<B> + ?Sized>(&self, data: &D, device: &B::Device) -> Vec<(f32, f32)> {
        let indices: Vec<usize> = (0..data.num_samples()).collect();
        let mut out = Vec::with_capacity(indices.len());
        for chunk in indices.chunks(self.batch_size) {
            let (r, l) = self.scores(data.batch(chunk, device).x);
            out.extend(r.into_iter().zip(l));
        }
        out
    }

    /// 1 for samples scored above the threshold, else 0.
    pub fn predict(&self, scores: &[f32]) -> Vec<u8> {
        eval::predict(scores, self.threshold)
    }
}

/// A score's mean and standard deviation on the normal training data, to put scores of different
/// scales on one footing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Standardised {
    /// Mean of the training scores.
    pub mean: f32,
    /// Standard deviation of the training scores (1 where they are all equal).
    pub sd: f32,
}

impl Standardised {
    /// Leaves scores as they are.
    pub const IDENTITY: Self = Self { mean: 0.0, sd: 1.0 };

    /// The mean and standard deviation of `scores`.
    pub fn fit(scores: impl Iterator<Item = f32>) -> Self {
        let v: Vec<f64> = scores.map(f64::from).collect();
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let sd = var.sqrt();
        Self {
            mean: mean as f32,
            sd: if sd > 1e-12 * mean.abs().max(1.0) {
                sd as f32
            } else {
                1.0
            },
        }
    }

    /// `(score − mean) / sd`.
    pub fn apply(self, score: f32) -> f32 {
        (score - self.mean) / self.sd
    }
}

/// The codes of every sample of a data source, row-major.
fn codes_of<B: Backend, D: BatchSource<B> + ?Sized>(model: &Autoencoder<B>, data: &D, device: &B::Device) -> Vec<f32> {
    let indices: Vec<usize> = (0..data.num_samples()).collect();
    let mut codes = Vec::new();
    for chunk in indices.chunks(SCORE_BATCH) {
        let z = model.encode(data.batch(chunk, device).x);
        codes.extend(z.into_data().to_vec::<f32>().expect("f32 codes"));
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AutoencoderConfig;
    use crate::test_util::TestBackend;
    use gen_core::Batch;

    struct Rows(Vec<f32>, usize);
    impl BatchSource<TestBackend> for Rows {
        fn num_samples(&self) -> usize {
            self.0.len() / self.1
        }
        fn d_input(&self) -> usize {
            self.1
        }
        fn batch(&self, indices: &[usize], device: &burn::tensor::Device<TestBackend>) -> Batch<TestBackend> {
            let v: Vec<f32> = indices
                .iter()
                .flat_map(|&i| self.0[i * self.1..(i + 1) * self.1].to_vec())
                .collect();
            let x = Tensor::<TestBackend, 1>::from_floats(v.as_slice(), device).reshape([indices.len(), self.1]);
            Batch { x, y: None }
        }
    }

    #[test]
    fn mahalanobis_matches_a_hand_computed_case() {
        // Codes with variances 4 and 1 and no correlation: distance of (2, 1) from (0, 0) is 1 + 1.
        let codes = [2.0f32, 1.0, -2.0, -1.0, 2.0, -1.0, -2.0, 1.0];
        let g = LatentGaussian::fit(&codes, 2);
        // Sample variance with n - 1 = 3: 16/3 and 4/3.
        let expect = 4.0 / (16.0 / 3.0) + 1.0 / (4.0 / 3.0);
        assert!((g.mahalanobis_sq(&[2.0, 1.0]) - expect).abs() < 1e-5);
        // A correlated 2x2 covariance against its explicit inverse.
        let l = cholesky(&[2.0, 0.0, 1.0, 2.0], 2);
        let sigma_inv = [2.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0, 2.0 / 3.0];
        let g = LatentGaussian {
            mean: vec![0.0, 0.0],
            chol: l,
        };
        let x = [1.0f32, 2.0];
        let by_hand = sigma_inv[0] + 2.0 * 2.0 * sigma_inv[1] + 4.0 * sigma_inv[3];
        assert!((g.mahalanobis_sq(&x) - by_hand).abs() < 1e-9);
    }

    #[test]
    fn threshold_flags_the_contamination_share_and_rejects_nonsense() {
        let device = Default::default();
        // A linear encoder: its 2-D codes keep the data's full rank, so the covariance ridge is
        // negligible (an untrained ReLU layer can leave all but one unit dead, and then the ridge
        // decides the second direction's distances).
        let model = AutoencoderConfig::mlp(6, vec![], 2).init::<TestBackend>(&device);
        let data: Vec<f32> = (0..600).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
        let normal = Rows(data, 6);
        let det = AnomalyDetector::new(model.clone(), &normal, ScoreKind::Reconstruction, 0.1, &device).unwrap();
        let flagged = det.predict(det.train_scores()).iter().filter(|&&p| p == 1).count();
        assert!((9..=11).contains(&flagged), "{flagged} of 100 flagged");
        let latent = AnomalyDetector::new(model.clone(), &normal, ScoreKind::Latent, 0.1, &device).unwrap();
        let mean_latent = latent.train_scores().iter().sum::<f32>() / 100.0;
        // The mean squared Mahalanobis distance of the fitting data is d (n-1)/n.
        assert!((mean_latent - 2.0 * 0.99).abs() < 1e-2, "{mean_latent}");
        assert!(matches!(
            AnomalyDetector::new(model.clone(), &normal, ScoreKind::Reconstruction, 0.9, &device),
            Err(AnomalyError::Eval(_))
        ));
        let empty = Rows(vec![], 6);
        let err = AnomalyDetector::new(model, &empty, ScoreKind::Reconstruction, 0.1, &device).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}
