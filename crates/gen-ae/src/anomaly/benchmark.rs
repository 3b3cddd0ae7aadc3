//! The tables' protocol over several seeds, the one the anchors (PyOD's AutoEncoder and
//! scikit-learn's IsolationForest) were measured with: for each seed the normal rows are shuffled,
//! a share of them trains every detector, and the rest of them plus every outlier are scored;
//! features are standardised with the training rows' statistics. Our detectors (one autoencoder's
//! three scores, and an ensemble's) stand beside the classical baselines computed on the same
//! split (PCA's reconstruction error, Isolation Forest), each as mean ± sd of AUROC and average
//! precision over the seeds.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use gen_core::train::{Observer, TrainConfig};
use gen_data::pca::Pca;
use gen_data::{Dataset, Standardizer};
use serde::Serialize;

use super::ensemble::average;
use super::iforest::{IsolationForest, IsolationForestConfig};
use super::protocol::RunsFor;
use super::{AnomalyDetector, DetectionReport, ScoreKind, Standardised};
use crate::eval::fit;
use crate::{AeError, AutoencoderConfig, Result};

/// The protocol of [`table_benchmark`], in words.
pub const SEEDED_TABLE: &str = "seeded tables: for each seed, train on a share of the normal rows (standardised with \
     their statistics), score the other normal rows and every outlier";

/// What [`table_benchmark`] measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableBenchmarkConfig {
    /// One split, and one set of models, per seed.
    pub seeds: Vec<u64>,
    /// Share of the normal rows that trains the detectors, in (0, 1); the anchors used 0.6.
    pub train_fraction: f64,
    /// Share of those training rows the autoencoders stop early on, in [0, 1) (0: no early
    /// stopping, every epoch is run).
    pub valid_fraction: f64,
    /// Autoencoders per seed; 2 or more adds the ensemble's rows (the mean of the members'
    /// standardised scores), and the single autoencoder's rows are the first member's.
    pub ensemble: usize,
    /// PCA's number of axes (at most the number of features minus one is useful).
    pub pca_components: usize,
    /// The Isolation Forest (its seed is replaced by each split's).
    pub iforest: IsolationForestConfig,
}

impl TableBenchmarkConfig {
    /// The anchors' protocol: seeds 0 to 4, 60 % of the normal rows for training (a fifth of
    /// them for early stopping), an ensemble of 5, PCA with `pca_components` axes and
    /// scikit-learn's Isolation Forest.
    pub fn anchors(pca_components: usize) -> Self {
        Self {
            seeds: (0..5).collect(),
            train_fraction: 0.6,
            valid_fraction: 0.2,
            ensemble: 5,
            pca_components,
            iforest: IsolationForestConfig::default(),
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(AeError::Invalid(what));
        if self.seeds.is_empty() {
            return bad("the benchmark needs at least one seed".into());
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            return bad(format!("train fraction must be in (0, 1), got {}", self.train_fraction));
        }
        if !(0.0..1.0).contains(&self.valid_fraction) {
            return bad(format!("valid fraction must be in [0, 1), got {}", self.valid_fraction));
        }
        if self.ensemble == 0 {
            return bad("the benchmark needs at least one autoencoder per seed".into());
        }
        if self.pca_components == 0 {
            return bad("PCA needs at least one axis".into());
        }
        Ok(())
    }
}

/// A mean and a sample standard deviation over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanSd {
    /// The mean.
    pub mean: f64,
    /// The standard deviation (n − 1 in the denominator; 0 for one value).
    pub sd: f64,
}

impl MeanSd {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let v: Vec<f64> = values.collect();
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, sd }
    }
}

/// One detector's results over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorResult {
    /// `ae`, `ae_latent`, `ae_combined`, `ensemble`, `ensemble_combined`, `pca` or `iforest`.
    pub name: String,
    /// Whether the detector is a classical baseline rather than one of ours.
    pub baseline: bool,
    /// AUROC and average precision per seed, in the order of the seeds.
    pub per_seed: Vec<DetectionReport>,
    /// AUROC over the seeds.
    pub auroc: MeanSd,
    /// Average precision over the seeds.
    pub average_precision: MeanSd,
}

/// The sizes of one seed's split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeedSplit {
    /// The seed.
    pub seed: u64,
    /// Normal rows the autoencoders trained on (the rest of the training share stopped them
    /// early).
    pub n_train: usize,
    /// Normal rows held out for early stopping.
    pub n_valid: usize,
    /// Rows scored: held-out normal rows and every outlier.
    pub n_test: usize,
    /// Outliers among them.
    pub n_outliers: usize,
    /// Seconds spent training this seed's autoencoders.
    pub train_seconds: f64,
}

/// What [`table_benchmark`] measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableBenchmark {
    /// The table.
    pub dataset: String,
    /// The autoencoder, in words.
    pub model: String,
    /// [`SEEDED_TABLE`].
    pub protocol: &'static str,
    /// How it was run.
    pub config: TableBenchmarkConfig,
    /// Each seed's split.
    pub splits: Vec<SeedSplit>,
    /// Every detector, ours first, then the baselines.
    pub detectors: Vec<DetectorResult>,
}

impl TableBenchmark {
    /// The detector named `name`.
    pub fn detector(&self, name: &str) -> Option<&DetectorResult> {
        self.detectors.iter().find(|d| d.name == name)
    }

    /// The report as Markdown: one row per detector (mean ± sd), then each seed's split.
    pub fn markdown(&self) -> String {
        let seeds: Vec<String> = self.config.seeds.iter().map(u64::to_string).collect();
        let mut md = format!(
            "# Anomaly detection: {} ({})\n\n{}; seeds {}, {:.0} % of the normal rows for training.\n\n\
             | detector | AUROC | average precision |\n|---|---|---|\n",
            self.dataset,
            self.model,
            self.protocol,
            seeds.join(", "),
            100.0 * self.config.train_fraction
        );
        for d in &self.detectors {
            let name = if d.baseline {
                format!("{} (baseline)", d.name)
            } else {
                d.name.clone()
            };
            md += &format!(
                "| {name} | {:.4} ± {:.4} | {:.4} ± {:.4} |\n",
                d.auroc.mean, d.auroc.sd, d.average_precision.mean, d.average_precision.sd
            );
        }
        md += "\n| seed | train | valid | test (outliers) | training |\n|---|---|---|---|---|\n";
        for s in &self.splits {
            md += &format!(
                "| {} | {} | {} | {} ({}) | {:.1} s |\n",
                s.seed, s.n_train, s.n_valid, s.n_test, s.n_outliers, s.train_seconds
            );
        }
        md
    }
}

/// One seed's scores of the test rows, by detector name, in the order of [`table_benchmark`]'s
/// rows.
type SeedScores = Vec<(&'static str, bool, Vec<f32>)>;

/// The anchors' protocol on a table whose labels mark the outliers (`y` = 1), for each seed of
/// `bench`: the normal rows are shuffled with the seed; `train_fraction` of them are standardised
/// by their own statistics (a column constant among them is only centred) and train every
/// detector, the autoencoders stopping early on `valid_fraction` of them; the other normal rows
/// and every outlier are scored. Detectors: the first autoencoder's reconstruction, latent and
/// combined scores; with an ensemble of 2 or more, the mean of the members' standardised
/// reconstruction and combined scores; PCA's reconstruction error with `pca_components` axes; and
/// an Isolation Forest. Member `k` of seed `s` trains with seed `train_config.seed + 1000 s + k`
/// into `runs("seed-S-member-K", ..)`.
///
/// # Errors
/// A table without labels, without outliers or with too few normal rows for the split, a
/// nonsense `bench`, a failed training run.
#[allow(clippy::too_many_arguments)]
pub fn table_benchmark<B: AutodiffBackend>(
    dataset: &str,
    model: &str,
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    table: &Dataset,
    bench: &TableBenchmarkConfig,
    runs: &mut RunsFor<'_>,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<TableBenchmark> {
    bench.validate()?;
    let Some(labels) = table.labels() else {
        return Err(AeError::Invalid(format!(
            "{}: anomaly detection on a table needs its y column (1 = outlier)",
            table.name()
        )));
    };
    let normal_idx: Vec<usize> = (0..table.len()).filter(|&i| labels[i] == 0).collect();
    let outlier_idx: Vec<usize> = (0..table.len()).filter(|&i| labels[i] != 0).collect();
    if outlier_idx.is_empty() || normal_idx.len() < 8 {
        return Err(AeError::Invalid(format!(
            "{}: needs at least 8 normal rows (y = 0) and an outlier (y = 1); it has {} and {}",
            table.name(),
            normal_idx.len(),
            outlier_idx.len()
        )));
    }
    let normal = table.subset(&normal_idx, "normal");
    let outliers = table.subset(&outlier_idx, "outliers");
    let mut splits = Vec::new();
    let mut all: Vec<SeedScores> = Vec::new();
    let mut is_anomaly = Vec::new();
    for &seed in &bench.seeds {
        let (mut pool, held_out) = normal.split(1.0 - bench.train_fraction, seed)?;
        let mut test = concat(&held_out, &outliers)?;
        let s = Standardizer::fit(&pool);
        s.transform(&mut pool);
        s.transform(&mut test);
        let (train, valid) = if bench.valid_fraction > 0.0 {
            let (t, v) = pool.split(bench.valid_fraction, seed.wrapping_add(1))?;
            (t, Some(v))
        } else {
            (pool.clone(), None)
        };
        let truth: Vec<bool> = (0..test.len()).map(|i| i >= held_out.len()).collect();
        observer.on_stage(&format!(
            "seed {seed}: training on {} normal rows, scoring {} ({} outliers)",
            pool.len(),
            test.len(),
            outliers.len()
        ));

        let started = Instant::now();
        let mut train_both = Vec::new();
        let mut test_both = Vec::new();
        let mut first = None;
        for k in 0..bench.ensemble as u64 {
            let mut member = train_config.clone();
            member.seed = train_config.seed.wrapping_add(1000 * seed + k);
            let run = runs(&format!("seed-{seed}-member-{k}"), config, &member)?;
            let fitted = fit::<B>(config, &member, &train, valid.as_ref(), run, observer, device)?;
            let detector = AnomalyDetector::new(fitted.model, &pool, ScoreKind::Reconstruction, 0.1, device)?;
            train_both.push(detector.both_scores(&pool, device));
            test_both.push(detector.both_scores(&test, device));
            first.get_or_insert(detector);
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let first = first.expect("at least one member");
        let mut scores: SeedScores = vec![
            ("ae", false, first.score_as(ScoreKind::Reconstruction, &test_both[0])),
            ("ae_latent", false, first.score_as(ScoreKind::Latent, &test_both[0])),
            ("ae_combined", false, first.score_as(ScoreKind::Combined, &test_both[0])),
        ];
        if bench.ensemble > 1 {
            scores.push((
                "ensemble",
                false,
                ensemble_of(&train_both, &test_both, ScoreKind::Reconstruction),
            ));
            scores.push((
                "ensemble_combined",
                false,
                ensemble_of(&train_both, &test_both, ScoreKind::Combined),
            ));
        }
        let pca = Pca::fit(&pool)?;
        scores.push(("pca", true, pca.row_errors(&test, bench.pca_components)?));
        let forest = IsolationForest::fit(
            pool.features(),
            pool.d(),
            IsolationForestConfig { seed, ..bench.iforest },
        )?;
        scores.push(("iforest", true, forest.score(test.features())?));

        splits.push(SeedSplit {
            seed,
            n_train: train.len(),
            n_valid: valid.as_ref().map_or(0, Dataset::len),
            n_test: test.len(),
            n_outliers: outliers.len(),
            train_seconds,
        });
        all.push(scores);
        is_anomaly.push(truth);
    }
    let mut detectors = Vec::new();
    for (j, &(name, baseline, _)) in all[0].iter().enumerate() {
        let per_seed = all
            .iter()
            .zip(&is_anomaly)
            .map(|(scores, truth)| DetectionReport::new(&scores[j].2, truth))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        detectors.push(DetectorResult {
            name: name.to_string(),
            baseline,
            auroc: MeanSd::of(per_seed.iter().map(|r| r.auroc)),
            average_precision: MeanSd::of(per_seed.iter().map(|r| r.average_precision)),
            per_seed,
        });
    }
    Ok(TableBenchmark {
        dataset: dataset.to_string(),
        model: model.to_string(),
        protocol: SEEDED_TABLE,
        config: bench.clone(),
        splits,
        detectors,
    })
}

/// The rows of `a`, then those of `b`, as one unlabelled data set.
fn concat(a: &Dataset, b: &Dataset) -> Result<Dataset> {
    let mut rows = a.features().to_vec();
    rows.extend_from_slice(b.features());
    Ok(Dataset::new("test", rows, a.d(), None, None)?)
}

/// The ensemble's score of the test rows: each member's score of kind `kind` (its combined score
/// standardised by its own training scores), standardised by its training rows' scores and
/// averaged over the members, as [`super::EnsembleDetector`] does.
fn ensemble_of(train_both: &[Vec<(f32, f32)>], test_both: &[Vec<(f32, f32)>], kind: ScoreKind) -> Vec<f32> {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (tr, te) in train_both.iter().zip(test_both) {
        let r = Standardised::fit(tr.iter().map(|p| p.0));
        let l = Standardised::fit(tr.iter().map(|p| p.1));
        let score = |both: &[(f32, f32)]| -> Vec<f32> {
            both.iter()
                .map(|&(recon, latent)| match kind {
                    ScoreKind::Reconstruction => recon,
                    ScoreKind::Latent => latent,
                    ScoreKind::Combined => r.apply(recon) + l.apply(latent),
                })
                .collect()
        };
        train.push(score(tr));
        test.push(score(te));
    }
    let norms: Vec<Standardised> = train.iter().map(|s| Standardised::fit(s.iter().copied())).collect();
    average(&test, &norms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestAutodiffBackend;

    #[test]
    fn mean_and_sample_sd() {
        let m = MeanSd::of([1.0, 2.0, 3.0, 4.0].into_iter());
        assert_eq!(m.mean, 2.5);
        assert!((m.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(MeanSd::of([0.7].into_iter()).sd, 0.0);
    }

    /// A table made of the embedded digits: zeros normal, a few sixes the outliers. Every
    /// detector is measured on both seeds, the splits hold the stated shares, the autoencoder
    /// and the ensemble find the sixes, and a nonsense configuration is refused.
    #[test]
    fn the_benchmark_measures_every_detector_on_every_seed() {
        let digits = gen_data::digits().unwrap();
        let zeros = digits.filter_labels(&[0]).unwrap();
        let sixes = digits.filter_labels(&[6]).unwrap().take(20);
        let mut rows = zeros.features().to_vec();
        rows.extend_from_slice(sixes.features());
        let y: Vec<i64> = (0..zeros.len() + sixes.len())
            .map(|i| i64::from(i >= zeros.len()))
            .collect();
        let table = Dataset::new("zeros-and-sixes", rows, 64, Some(y), None).unwrap();
        let config = AutoencoderConfig {
            output_activation: gen_core::nn::Activation::Identity,
            ..AutoencoderConfig::mlp(64, vec![16], 4)
        };
        let train_config = TrainConfig::default().with_num_epochs(20).with_batch_size(16);
        let bench = TableBenchmarkConfig {
            seeds: vec![0, 1],
            ensemble: 2,
            iforest: IsolationForestConfig {
                n_trees: 50,
                ..IsolationForestConfig::default()
            },
            ..TableBenchmarkConfig::anchors(4)
        };
        let mut labels = Vec::new();
        let mut runs = |label: &str, _: &AutoencoderConfig, t: &TrainConfig| -> Result<Option<crate::eval::ModelRun>> {
            labels.push((label.to_string(), t.seed - train_config.seed));
            Ok(None)
        };
        let report = table_benchmark::<TestAutodiffBackend>(
            "digits",
            "ae",
            &config,
            &train_config,
            &table,
            &bench,
            &mut runs,
            &mut (),
            &Default::default(),
        )
        .unwrap();
        // Each folder is told the seed its member trains with.
        let labels: Vec<(&str, u64)> = labels.iter().map(|(l, s)| (l.as_str(), *s)).collect();
        assert_eq!(
            labels,
            [
                ("seed-0-member-0", 0),
                ("seed-0-member-1", 1),
                ("seed-1-member-0", 1000),
                ("seed-1-member-1", 1001)
            ]
        );
        let names: Vec<&str> = report.detectors.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ae",
                "ae_latent",
                "ae_combined",
                "ensemble",
                "ensemble_combined",
                "pca",
                "iforest"
            ]
        );
        for d in &report.detectors {
            assert_eq!(d.per_seed.len(), 2, "{}", d.name);
        }
        let s = report.splits[0];
        assert_eq!(s.n_train + s.n_valid, (zeros.len() as f64 * 0.6).round() as usize);
        assert_eq!(s.n_test, zeros.len() - s.n_train - s.n_valid + 20);
        assert_eq!(s.n_outliers, 20);
        for name in ["ae", "ensemble", "pca", "iforest"] {
            let auroc = report.detector(name).unwrap().auroc.mean;
            assert!(auroc > 0.9, "{name}: AUROC {auroc}");
        }
        assert!(report.markdown().contains("| iforest (baseline) |"));
        let bad = TableBenchmarkConfig { seeds: vec![], ..bench };
        let e = table_benchmark::<TestAutodiffBackend>(
            "digits",
            "ae",
            &config,
            &train_config,
            &table,
            &bad,
            &mut |_: &str, _: &AutoencoderConfig, _: &TrainConfig| Ok(None),
            &mut (),
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least one seed"), "{e}");
    }
}
