//! The VAE's evaluation protocol behind `gen eval`: the test-set ELBO with its parts and the
//! KL of each latent dimension, and the importance-sampled negative log-likelihood, on the test
//! set binarised once with a fixed seed when the model binarises (the literature's protocol for
//! binarised MNIST).

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use gen_core::BatchSource;
use gen_data::Dataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{Vae, VaeConfig};

/// Rows per forward pass when evaluating.
const EVAL_BATCH: usize = 500;

/// Seed of the one fixed binarisation of the test set, the same for every run and every eval.
pub const TEST_BINARIZATION_SEED: u64 = 0x5EED_B1A5;

/// What can go wrong in the VAE's protocols.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaeError {
    /// The data were unsuitable (missing labels, a width that does not match).
    #[error(transparent)]
    Data(#[from] gen_data::DataError),
    /// A request that cannot be met, in words.
    #[error("{0}")]
    Invalid(String),
}

/// The result type of gen-vae's protocols.
pub type Result<T, E = VaeError> = std::result::Result<T, E>;

/// The data set with every value `p` replaced by one Bernoulli(p) draw (seeded): the fixed
/// binarisation on which test likelihoods are reported.
///
/// # Errors
/// Never for a valid data set (the result has its shape).
pub fn binarized(data: &Dataset, seed: u64) -> Result<Dataset> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let features: Vec<f32> = data
        .features()
        .iter()
        .map(|&p| if rng.random::<f32>() < p { 1.0 } else { 0.0 })
        .collect();
    Ok(Dataset::new(
        format!("{}-binarized", data.name()),
        features,
        data.d(),
        data.labels().map(<[i64]>::to_vec),
        data.image_shape(),
    )?)
}

/// The data a VAE is evaluated on: `test`, binarised once ([`TEST_BINARIZATION_SEED`]) when the
/// model binarises.
///
/// # Errors
/// As [`binarized`].
pub fn eval_data(model_binarizes: bool, test: &Dataset) -> Result<Dataset> {
    if model_binarizes {
        binarized(test, TEST_BINARIZATION_SEED)
    } else {
        Ok(test.clone())
    }
}

/// Refuses data a conditional model of `n_classes` classes cannot take: no labels, or labels it
/// has no class for (they would become all-zero one-hots). Unconditional models take anything.
///
/// # Errors
/// As above, naming the data set and the first bad row.
pub fn check_labels(data: &Dataset, n_classes: Option<usize>) -> Result<()> {
    let Some(n) = n_classes else { return Ok(()) };
    let Some(labels) = data.labels() else {
        return Err(VaeError::Invalid(format!(
            "{} has no labels; the conditional VAE needs them",
            data.name()
        )));
    };
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| !(0..n as i64).contains(l)) {
        return Err(VaeError::Invalid(format!(
            "{}: row {i} has label {l}, but the model knows classes 0..{n}",
            data.name()
        )));
    }
    Ok(())
}

/// Runs `f` on the batches of `data` in order, with labels when the model is conditional.
///
/// # Errors
/// Unlabelled data for a conditional model, or what `f` returns.
pub fn for_batches<B: Backend>(
    data: &Dataset,
    conditional: bool,
    device: &B::Device,
    mut f: impl FnMut(Tensor<B, 2>, Option<Tensor<B, 1, Int>>) -> Result<()>,
) -> Result<()> {
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(EVAL_BATCH) {
        let b: gen_core::Batch<B> = data.batch(chunk, device);
        if conditional && b.y.is_none() {
            return Err(VaeError::Invalid(format!(
                "{} has no labels; the conditional VAE needs them",
                data.name()
            )));
        }
        f(b.x, if conditional { b.y } else { None })?;
    }
    Ok(())
}

fn to_f64<B: Backend>(t: Tensor<B, 1>) -> Result<Vec<f64>> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| VaeError::Invalid(format!("cannot read a tensor's values: {e:?}")))
}

/// Test-set ELBO, one sample of `z` per image, in nats per sample.
#[derive(Debug, Clone, Serialize)]
pub struct ElboStats {
    /// `−ELBO = reconstruction + KL`.
    pub neg_elbo: f64,
    /// `−E_q ln p(x|z)`.
    pub recon: f64,
    /// `KL(q(z|x) ‖ N(0, I))`.
    pub kl: f64,
    /// Mean KL of each latent dimension.
    pub kl_per_dim: Vec<f64>,
}

/// The ELBO of `model` on `data`, one sample of `z` per row (drawn from the backend's generator).
///
/// # Errors
/// As [`for_batches`].
pub fn elbo_stats<B: Backend>(model: &Vae<B>, data: &Dataset, device: &B::Device) -> Result<ElboStats> {
    let (mut recon, mut kl) = (0.0, 0.0);
    let mut per_dim: Vec<f64> = Vec::new();
    for_batches::<B>(data, model.n_classes().is_some(), device, |x, y| {
        let q = model.posterior(x.clone(), y.clone());
        let kd = to_f64(
            gen_core::loss::GaussianKlLoss
                .forward_no_reduction(q.mu.clone(), q.log_var.clone())
                .sum_dim(0)
                .flatten::<1>(0, 1),
        )?;
        if per_dim.is_empty() {
            per_dim = vec![0.0; kd.len()];
        }
        per_dim.iter_mut().zip(&kd).for_each(|(a, b)| *a += b);
        let decoded = model.decode_logits(q.sample(), y);
        recon -= to_f64(model.log_likelihood(decoded, x))?.iter().sum::<f64>();
        kl += kd.iter().sum::<f64>();
        Ok(())
    })?;
    let n = data.len().max(1) as f64;
    Ok(ElboStats {
        neg_elbo: (recon + kl) / n,
        recon: recon / n,
        kl: kl / n,
        kl_per_dim: per_dim.iter().map(|v| v / n).collect(),
    })
}

/// Importance-sampled `ln p(x)` of each row, `k` samples each; `progress` hears the number of
/// rows done after each part.
pub fn log_likelihoods<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    k: usize,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Vec<f64> {
    // The decoder sees rows · chunk samples at once; keep that near 50,000 rows.
    let rows = 100usize.min(data.len().max(1));
    let chunk = (50_000 / rows).clamp(1, k);
    let conditional = model.n_classes().is_some();
    let mut out = Vec::with_capacity(data.len());
    let idx: Vec<usize> = (0..data.len()).collect();
    for part in idx.chunks(rows) {
        let b: gen_core::Batch<B> = data.batch(part, device);
        let y = if conditional { b.y } else { None };
        out.extend(model.importance_log_likelihood(b.x, y, k, chunk));
        progress(out.len());
    }
    out
}

/// Options of [`likelihood_report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikelihoodOptions {
    /// Importance samples per image (5000 in the literature).
    pub k: usize,
    /// Estimate the log-likelihood on the first rows only (`None`: all).
    pub nll_rows: Option<usize>,
}

/// What `gen eval` reports for a VAE.
#[derive(Debug, Clone, Serialize)]
pub struct VaeReport {
    /// The data set's name, as the caller gave it.
    pub dataset: String,
    /// The split measured.
    pub split: &'static str,
    /// `vae`, `beta-vae`, `cvae`, ...
    pub variant: &'static str,
    /// The decoder's likelihood.
    pub likelihood: &'static str,
    /// Whether the test set was binarised (once, with [`TEST_BINARIZATION_SEED`]).
    pub binarized: bool,
    /// Rows measured by the ELBO.
    pub n_test: usize,
    /// Latent size.
    pub d_latent: usize,
    /// The ELBO and its parts.
    pub elbo: ElboStats,
    /// Latent dimensions whose mean KL exceeds 0.01 nats (the rest collapsed to the prior).
    pub active_dims: usize,
    /// Importance-sampled negative log-likelihood, nats per image.
    pub nll: f64,
    /// Standard error of that mean over images (none for a single image).
    pub nll_stderr: Option<f64>,
    /// Samples per image.
    pub k: usize,
    /// Images it was estimated on.
    pub nll_rows: usize,
    /// Seconds the estimate took.
    pub nll_seconds: f64,
    /// Figures the caller wrote beside the report (file names; empty from the library).
    pub figures: Vec<String>,
}

/// The likelihood protocol: `test` binarised once when the model binarises ([`eval_data`]),
/// the ELBO on all of it (seeded), and the importance-sampled negative log-likelihood with
/// `options.k` samples on its first `options.nll_rows` rows. `progress` hears the rows done.
///
/// # Errors
/// `k` of 0, nothing to evaluate, or labels a conditional model cannot take.
pub fn likelihood_report<B: Backend>(
    dataset: &str,
    model: &Vae<B>,
    config: &VaeConfig,
    test: &Dataset,
    options: LikelihoodOptions,
    device: &B::Device,
    progress: impl FnMut(usize),
) -> Result<VaeReport> {
    if options.k == 0 {
        return Err(VaeError::Invalid("k must be > 0, got 0".into()));
    }
    let test = eval_data(model.binarizes(), test)?;
    check_labels(&test, model.n_classes())?;
    let rows = options.nll_rows.unwrap_or(test.len()).min(test.len());
    if rows == 0 {
        return Err(VaeError::Invalid(
            "nothing to evaluate: the test set is empty or the number of rows is 0".into(),
        ));
    }
    B::seed(device, 1);
    let elbo = elbo_stats(model, &test, device)?;
    let subset = test.take(rows);
    let started = Instant::now();
    let ll = log_likelihoods(model, &subset, options.k, device, progress);
    let nll_seconds = started.elapsed().as_secs_f64();
    let n = ll.len().max(1) as f64;
    let nll = -ll.iter().sum::<f64>() / n;
    // The standard error needs two images at least.
    let stderr = (ll.len() >= 2).then(|| {
        let var = ll.iter().map(|v| (-v - nll).powi(2)).sum::<f64>() / (n - 1.0);
        (var / n).sqrt()
    });
    Ok(VaeReport {
        dataset: dataset.to_string(),
        split: "test",
        variant: config.variant(),
        likelihood: config.likelihood.name(),
        binarized: model.binarizes(),
        n_test: test.len(),
        d_latent: gen_core::Encoder::d_latent(model),
        active_dims: elbo.kl_per_dim.iter().filter(|&&v| v > 0.01).count(),
        elbo,
        nll,
        nll_stderr: stderr,
        k: options.k,
        nll_rows: ll.len(),
        nll_seconds,
        figures: Vec::new(),
    })
}

impl VaeReport {
    /// The report as the lines `gen eval` prints.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} test set ({} images{}), {} ({} likelihood), {} latent dimensions ({} active):\n",
            self.dataset,
            self.n_test,
            if self.binarized { ", binarised once" } else { "" },
            self.variant,
            self.likelihood,
            self.d_latent,
            self.active_dims
        );
        s += &format!(
            "  negative ELBO {:.3} nats = reconstruction {:.3} + KL {:.3}\n",
            self.elbo.neg_elbo, self.elbo.recon, self.elbo.kl
        );
        s += &format!(
            "  negative log-likelihood {:.3}{} nats (importance sampling, k = {}, {} images, {:.1}s)\n",
            self.nll,
            self.nll_stderr.map(|s| format!(" ± {s:.3}")).unwrap_or_default(),
            self.k,
            self.nll_rows,
            self.nll_seconds
        );
        if self.likelihood == "bernoulli" && !self.binarized {
            s += "  (a Bernoulli decoder on grey values: these are cross-entropies of the grey levels, \
                  not likelihoods; binarise for the literature protocol)\n";
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::Flex;

    /// The protocol on a slice of the embedded digits: the ELBO bounds the importance-sampled
    /// likelihood (−ELBO ≥ NLL up to the estimate's noise), the parts add up, the fixed
    /// binarisation is the same every time, and nonsense options are refused.
    #[test]
    fn likelihood_report_on_the_digits() {
        let digits = gen_data::digits().unwrap().take(60);
        let config = VaeConfig::mlp(64, vec![32], 2);
        let device = Default::default();
        B::seed(&device, 0);
        let model = config.init::<B>(&device);
        let options = LikelihoodOptions {
            k: 64,
            nll_rows: Some(20),
        };
        let mut heard = 0;
        let r = likelihood_report("digits", &model, &config, &digits, options, &device, |n| heard = n).unwrap();
        assert_eq!((r.n_test, r.nll_rows, heard), (60, 20, 20));
        assert!((r.elbo.neg_elbo - r.elbo.recon - r.elbo.kl).abs() < 1e-9);
        assert!(r.nll.is_finite() && r.nll > 0.0);
        assert!(r.nll_stderr.is_some());
        assert!(r.summary().contains("negative ELBO"));
        let a = binarized(&digits, TEST_BINARIZATION_SEED).unwrap();
        let b = binarized(&digits, TEST_BINARIZATION_SEED).unwrap();
        assert_eq!(a.features(), b.features());
        assert!(a.features().iter().all(|&v| v == 0.0 || v == 1.0));
        let zero = LikelihoodOptions { k: 0, nll_rows: None };
        let e = likelihood_report("digits", &model, &config, &digits, zero, &device, |_| ()).unwrap_err();
        assert!(e.to_string().contains("k must be > 0"), "{e}");
    }
}
