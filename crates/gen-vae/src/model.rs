use burn::module::{Module, Param};
use burn::tensor::{Distribution, Int, Tensor, backend::Backend};
use gen_core::loss::{BceWithLogitsLoss, GaussianKlLoss, per_sample};
use gen_core::nn::{Activation, ConvDecoder, ConvEncoder, ImageShape, Mlp};
use gen_core::{Batch, Decoder, Encoder, Generator, LossTerms, Objective, Stage};

use crate::config::{LOG_VAR_MAX, LOG_VAR_MIN, Likelihood, VaeConfig};

/// `ln 2π`.
const LN_2PI: f64 = 1.837_877_066_409_345_5;
/// The encoder's `ln σ²` is clamped to this range, so `exp` can neither overflow nor vanish.
const ENC_LOG_VAR: (f64, f64) = (-30.0, 20.0);

/// The encoder: an MLP or a convolutional stack, ending in `2·d_latent` values (μ, ln σ²).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum VaeEncoder<B: Backend> {
    /// Dense layers.
    Mlp(Mlp<B>),
    /// Convolutions then a dense layer.
    Conv(ConvEncoder<B>),
}

/// The decoder, producing logits (Bernoulli) or pre-activation means (Gaussian).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum VaeDecoder<B: Backend> {
    /// Dense layers.
    Mlp(Mlp<B>),
    /// A dense layer then transposed convolutions.
    Conv(ConvDecoder<B>),
}

/// The posterior `q(z | x) = N(μ, diag σ²)` of a batch.
#[derive(Debug, Clone)]
pub struct Posterior<B: Backend> {
    /// Means, `[batch, d_latent]`.
    pub mu: Tensor<B, 2>,
    /// Log-variances `ln σ²`, `[batch, d_latent]`.
    pub log_var: Tensor<B, 2>,
}

impl<B: Backend> Posterior<B> {
    /// Standard deviations σ, `[batch, d_latent]`.
    pub fn std(&self) -> Tensor<B, 2> {
        self.log_var.clone().mul_scalar(0.5).exp()
    }

    /// The reparameterised sample `z = μ + σ·ε` for the given `ε ~ N(0, I)`; gradients reach
    /// μ and σ through it.
    pub fn sample_with(&self, eps: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mu.clone() + self.std() * eps
    }

    /// A fresh reparameterised sample, `[batch, d_latent]`.
    pub fn sample(&self) -> Tensor<B, 2> {
        let eps = Tensor::random(self.mu.dims(), Distribution::Normal(0.0, 1.0), &self.mu.device());
        self.sample_with(eps)
    }

    /// `KL(q(z|x) ‖ N(0, I))` in closed form, per sample, `[batch]`.
    pub fn kl(&self) -> Tensor<B, 1> {
        per_sample(GaussianKlLoss.forward_no_reduction(self.mu.clone(), self.log_var.clone()))
    }
}

/// A variational autoencoder (Kingma and Welling 2014): a Gaussian encoder, the
/// reparameterisation, a Bernoulli or Gaussian decoder, trained on the negative ELBO
/// `−E_q[ln p(x|z)] + β·KL(q(z|x) ‖ N(0, I))`, in nats per sample.
///
/// Built by [`VaeConfig`]. All methods take flat batches `[batch, d_input]`. A conditional VAE
/// takes class labels `[batch]` beside each batch (the `y` arguments), and panics without them.
#[derive(Module, Debug)]
pub struct Vae<B: Backend> {
    encoder: VaeEncoder<B>,
    decoder: VaeDecoder<B>,
    /// The learned per-dimension decoder `ln σ²` of [`Likelihood::GaussianLearned`].
    decoder_log_var: Option<Param<Tensor<B, 1>>>,
    d_input: usize,
    d_latent: usize,
    n_classes: usize,
    image: Option<ImageShape>,
    likelihood: Likelihood,
    output_activation: Activation,
    beta: f64,
    warmup: usize,
    binarize: bool,
    /// The KL weight of the current epoch (β during validation and outside training).
    kl_weight: f64,
}

impl<B: Backend> Vae<B> {
    pub(crate) fn new(
        encoder: VaeEncoder<B>,
        decoder: VaeDecoder<B>,
        decoder_log_var: Option<Param<Tensor<B, 1>>>,
        config: &VaeConfig,
    ) -> Self {
        Self {
            encoder,
            decoder,
            decoder_log_var,
            d_input: config.d_input,
            d_latent: config.d_latent,
            n_classes: config.n_classes.unwrap_or(0),
            image: config.image,
            likelihood: config.likelihood,
            output_activation: config.output_activation,
            beta: config.beta,
            warmup: config.kl_warmup_epochs.unwrap_or(0),
            binarize: config.binarize,
            kl_weight: config.beta,
        }
    }

    /// Number of classes of a conditional VAE, `None` for an unconditional one.
    pub fn n_classes(&self) -> Option<usize> {
        (self.n_classes > 0).then_some(self.n_classes)
    }

    /// The decoder's distribution.
    pub fn likelihood(&self) -> Likelihood {
        self.likelihood
    }

    /// Whether batches are dynamically binarised.
    pub fn binarizes(&self) -> bool {
        self.binarize
    }

    /// The KL weight used in the current training epoch.
    pub fn kl_weight(&self) -> f64 {
        self.kl_weight
    }

    /// One-hot labels, `[batch, n_classes]`.
    fn one_hot(&self, y: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let [batch] = y.dims();
        let classes = Tensor::<B, 1, Int>::arange(0..self.n_classes as i64, &y.device())
            .reshape([1, self.n_classes])
            .repeat_dim(0, batch);
        y.reshape([batch, 1])
            .repeat_dim(1, self.n_classes)
            .equal(classes)
            .float()
    }

    /// The decoder's input: the code, with the one-hot label beside it for a conditional VAE.
    fn decoder_input(&self, z: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>) -> Tensor<B, 2> {
        match self.label(y) {
            None => z,
            Some(onehot) => Tensor::cat(vec![z, onehot], 1),
        }
    }

    fn label(&self, y: Option<Tensor<B, 1, Int>>) -> Option<Tensor<B, 2>> {
        match (self.n_classes, y) {
            (0, _) => None,
            (_, Some(y)) => Some(self.one_hot(y)),
            (n, None) => panic!("a conditional VAE ({n} classes) needs the class labels of the batch"),
        }
    }

    /// The posterior `q(z | x, y)`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`, `y`: `[batch]` (conditional VAEs only)
    ///
    /// # Panics
    /// For a conditional VAE without labels.
    pub fn posterior(&self, x: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>) -> Posterior<B> {
        let [batch, _] = x.dims();
        let input = match self.label(y) {
            None => x,
            Some(onehot) => match (&self.encoder, self.image) {
                (VaeEncoder::Conv(_), Some(img)) => {
                    // Label planes after the image's channels: [batch, n, h, w], flattened.
                    let planes = onehot
                        .reshape([batch, self.n_classes, 1])
                        .repeat_dim(2, img.height * img.width)
                        .reshape([batch, self.n_classes * img.height * img.width]);
                    Tensor::cat(vec![x, planes], 1)
                }
                _ => Tensor::cat(vec![x, onehot], 1),
            },
        };
        let h = match &self.encoder {
            VaeEncoder::Mlp(m) => m.forward(input),
            VaeEncoder::Conv(c) => c.forward(input),
        };
        let d = self.d_latent;
        Posterior {
            mu: h.clone().slice([0..batch, 0..d]),
            log_var: h.slice([0..batch, d..2 * d]).clamp(ENC_LOG_VAR.0, ENC_LOG_VAR.1),
        }
    }

    /// The decoder's pre-activation output: logits (Bernoulli) or the mean before
    /// `output_activation` (Gaussian).
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`, `y`: `[batch]` (conditional VAEs only)
    /// - output: `[batch, d_input]`
    pub fn decode_logits(&self, z: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>) -> Tensor<B, 2> {
        let input = self.decoder_input(z, y);
        match &self.decoder {
            VaeDecoder::Mlp(m) => m.forward(input),
            VaeDecoder::Conv(c) => c.forward(input),
        }
    }

    /// The mean of `p(x | z, y)`: pixel probabilities (Bernoulli) or the Gaussian mean.
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`, `y`: `[batch]` (conditional VAEs only)
    /// - output: `[batch, d_input]`
    pub fn decode_mean(&self, z: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>) -> Tensor<B, 2> {
        let activation = match self.likelihood {
            Likelihood::Bernoulli => Activation::Sigmoid,
            _ => self.output_activation,
        };
        let input = self.decoder_input(z, y);
        // The activation fused into the decoder's last layer.
        match &self.decoder {
            VaeDecoder::Mlp(m) => m.forward_then(input, activation),
            VaeDecoder::Conv(c) => c.forward_then(input, activation),
        }
    }

    /// `ln p(x | z)` per sample, in nats, from the decoder's output for `z`.
    ///
    /// # Shapes
    /// - `decoded`: `[batch, d_input]` from [`Vae::decode_logits`], `x`: `[batch, d_input]`
    /// - output: `[batch]`
    pub fn log_likelihood(&self, decoded: Tensor<B, 2>, x: Tensor<B, 2>) -> Tensor<B, 1> {
        match self.likelihood {
            Likelihood::Bernoulli => per_sample(BceWithLogitsLoss.forward_no_reduction(decoded, x)).neg(),
            Likelihood::Gaussian { variance } => {
                let mean = self.output_activation.forward(decoded);
                let sq = per_sample((mean - x).powi_scalar(2));
                sq.div_scalar(variance)
                    .add_scalar(self.d_input as f64 * (variance.ln() + LN_2PI))
                    .mul_scalar(-0.5)
            }
            Likelihood::GaussianLearned => {
                let mean = self.output_activation.forward(decoded);
                let log_var = self
                    .decoder_log_var
                    .as_ref()
                    .expect("a learned-variance decoder has its log-variance")
                    .val()
                    .clamp(LOG_VAR_MIN, LOG_VAR_MAX)
                    .unsqueeze::<2>(); // [1, d_input]
                let [batch, _] = x.dims();
                let lv = log_var.repeat_dim(0, batch);
                let terms = (mean - x).powi_scalar(2) * lv.clone().neg().exp() + lv;
                per_sample(terms)
                    .add_scalar(self.d_input as f64 * LN_2PI)
                    .mul_scalar(-0.5)
            }
        }
    }

    /// Replaces every value `p` by a Bernoulli(p) draw from the backend's generator: dynamic
    /// binarisation. Values must lie in [0, 1]; binary values are returned unchanged.
    pub fn binarize(x: Tensor<B, 2>) -> Tensor<B, 2> {
        let u = Tensor::random(x.dims(), Distribution::Default, &x.device());
        u.lower(x).float()
    }

    /// The reconstruction term `−ln p(x|z)` (one reparameterised sample) and the KL term, per
    /// sample, in nats. The negative ELBO is their sum.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`, `y`: `[batch]` (conditional VAEs only)
    /// - output: `([batch], [batch])`
    pub fn elbo_terms(&self, x: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let q = self.posterior(x.clone(), y.clone());
        let z = q.sample();
        let decoded = self.decode_logits(z, y);
        (self.log_likelihood(decoded, x).neg(), q.kl())
    }

    /// The evidence lower bound `E_q[ln p(x|z)] − KL` per sample (one sample of `z`), in nats.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`, `y`: `[batch]` (conditional VAEs only)
    /// - output: `[batch]`
    pub fn elbo(&self, x: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>) -> Tensor<B, 1> {
        let (recon, kl) = self.elbo_terms(x, y);
        (recon + kl).neg()
    }

    /// The importance-sampled estimate of `ln p(x)` (Burda et al. 2015) with `k` samples from
    /// `q(z|x)` per input: `ln (1/k) Σ_k p(x, z_k) / q(z_k | x)`, one value per sample, in nats.
    /// It is a lower bound on `ln p(x)` in expectation that is never looser than the ELBO and
    /// tightens as `k` grows.
    ///
    /// The `k` samples are drawn `chunk` at a time (the decoder sees `batch · chunk` rows at
    /// once), and the log-mean-exp is accumulated in `f64` on the host, so any `k` fits memory.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`, `y`: `[batch]` (conditional VAEs only)
    ///
    /// # Panics
    /// If `k` or `chunk` is 0.
    pub fn importance_log_likelihood(
        &self,
        x: Tensor<B, 2>,
        y: Option<Tensor<B, 1, Int>>,
        k: usize,
        chunk: usize,
    ) -> Vec<f64> {
        assert!(k > 0 && chunk > 0, "importance sampling needs k > 0 and chunk > 0");
        let [batch, d_in] = x.dims();
        let d = self.d_latent;
        let device = x.device();
        let q = self.posterior(x.clone(), y.clone());
        let std = q.std();
        // Running log-sum-exp per sample.
        let mut max = vec![f64::NEG_INFINITY; batch];
        let mut sum = vec![0.0f64; batch];
        let mut done = 0;
        while done < k {
            let c = chunk.min(k - done);
            let eps = Tensor::<B, 3>::random([batch, c, d], Distribution::Normal(0.0, 1.0), &device);
            let z = q.mu.clone().unsqueeze_dim::<3>(1).repeat_dim(1, c)
                + std.clone().unsqueeze_dim::<3>(1).repeat_dim(1, c) * eps.clone();
            // ln p(z) − ln q(z|x) = Σ_j −z²/2 + ε²/2 + ln σ²/2  (the ln 2π terms cancel).
            let log_ratio = (eps.powi_scalar(2) - z.clone().powi_scalar(2))
                .sum_dim(2)
                .reshape([batch, c])
                .mul_scalar(0.5)
                + q.log_var.clone().sum_dim(1).mul_scalar(0.5).repeat_dim(1, c);
            let yc = y
                .clone()
                .map(|y| y.reshape([batch, 1]).repeat_dim(1, c).reshape([batch * c]));
            let decoded = self.decode_logits(z.reshape([batch * c, d]), yc);
            let xc = x
                .clone()
                .unsqueeze_dim::<3>(1)
                .repeat_dim(1, c)
                .reshape([batch * c, d_in]);
            let log_px = self.log_likelihood(decoded, xc).reshape([batch, c]);
            let log_w = (log_px + log_ratio)
                .into_data()
                .convert::<f64>()
                .to_vec::<f64>()
                .expect("f64 data");
            for (i, row) in log_w.chunks(c).enumerate() {
                for &v in row {
                    if v > max[i] {
                        sum[i] = sum[i] * (max[i] - v).exp() + 1.0;
                        max[i] = v;
                    } else {
                        sum[i] += (v - max[i]).exp();
                    }
                }
            }
            done += c;
        }
        max.iter()
            .zip(&sum)
            .map(|(m, s)| m + s.ln() - (k as f64).ln())
            .collect()
    }

    /// Decodes `n` draws from the prior `N(0, I)` to their means; a conditional VAE decodes
    /// them with `y`, or with the classes in turn (`i mod n_classes`) when `y` is `None`.
    ///
    /// # Shapes
    /// - output: `[n, d_input]`
    pub fn sample(&self, n: usize, y: Option<Tensor<B, 1, Int>>, device: &B::Device) -> Tensor<B, 2> {
        let z = Tensor::random([n, self.d_latent], Distribution::Normal(0.0, 1.0), device);
        let y = match (self.n_classes, y) {
            (0, _) => None,
            (_, Some(y)) => Some(y),
            (k, None) => Some(Tensor::<B, 1, Int>::arange(0..n as i64, device).remainder_scalar(k as i64)),
        };
        self.decode_mean(z, y)
    }

    /// Mean of a batch's negative ELBO parts and the total at weight `kl_weight`.
    fn loss_terms(&self, x: Tensor<B, 2>, y: Option<Tensor<B, 1, Int>>, kl_weight: f64) -> LossTerms<B> {
        let (recon, kl) = self.elbo_terms(x, y);
        let (recon, kl) = (recon.mean(), kl.mean());
        LossTerms {
            total: recon.clone() + kl.clone().mul_scalar(kl_weight),
            parts: vec![("recon", recon), ("kl", kl)],
        }
    }
}

impl<B: Backend> Encoder<B> for Vae<B> {
    /// The posterior mean μ.
    ///
    /// # Panics
    /// For a conditional VAE, which needs labels: use [`Vae::posterior`].
    fn encode(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.posterior(x, None).mu
    }

    fn d_latent(&self) -> usize {
        self.d_latent
    }
}

impl<B: Backend> Decoder<B> for Vae<B> {
    /// The mean of `p(x | z)`.
    ///
    /// # Panics
    /// For a conditional VAE, which needs labels: use [`Vae::decode_mean`].
    fn decode(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        self.decode_mean(z, None)
    }
}

impl<B: Backend> Generator<B> for Vae<B> {
    /// Decoded prior samples; a conditional VAE cycles through the classes.
    fn generate(&self, n: usize, device: &B::Device) -> Tensor<B, 2> {
        self.sample(n, None, device)
    }
}

impl<B: Backend> Objective<B> for Vae<B> {
    /// The negative ELBO per sample (reconstruction + weight·KL), with both parts reported. In
    /// training the weight follows the KL warm-up; in validation it is β. With dynamic
    /// binarisation, both stages binarise the batch afresh.
    fn objective(&self, batch: &Batch<B>, stage: Stage) -> LossTerms<B> {
        let x = if self.binarize {
            Self::binarize(batch.x.clone())
        } else {
            batch.x.clone()
        };
        let weight = match stage {
            Stage::Train => self.kl_weight,
            Stage::Valid => self.beta,
        };
        self.loss_terms(x, batch.y.clone(), weight)
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.kl_weight = warmup_weight(self.beta, self.warmup, epoch);
    }
}

/// The KL weight of `epoch` (1-based) under a linear warm-up over `warmup` epochs.
pub fn warmup_weight(beta: f64, warmup: usize, epoch: usize) -> f64 {
    if warmup == 0 {
        beta
    } else {
        beta * (epoch as f64 / warmup as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VaeConfig;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{ElementConversion, TensorData, Tolerance};

    type TB = Flex;
    type AB = Autodiff<TB>;

    fn t2<Bk: Backend>(v: &[f32], dims: [usize; 2]) -> Tensor<Bk, 2> {
        Tensor::from_data(TensorData::new(v.to_vec(), dims), &Default::default())
    }

    fn mean_f64<Bk: Backend>(t: Tensor<Bk, 1>) -> f64 {
        t.mean().into_scalar().elem::<f64>()
    }

    fn vec1<Bk: Backend>(t: Tensor<Bk, 1>) -> Vec<f64> {
        t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
    }

    #[test]
    fn closed_form_kl_matches_monte_carlo() {
        let _lock = gen_core::testing::seeded::<TB>(&Default::default(), 7);
        let q = Posterior::<TB> {
            mu: t2(&[0.5, -1.0, 0.0], [1, 3]),
            log_var: t2(&[0.0, -1.0, 0.7], [1, 3]),
        };
        let closed = vec1(q.kl())[0];
        // KL = E_q[ln q(z) − ln p(z)], with z = μ + σε: ln q − ln p = Σ −ε²/2 − ln σ + z²/2.
        let n = 200_000;
        let eps = Tensor::<TB, 2>::random([n, 3], Distribution::Normal(0.0, 1.0), &Default::default());
        let z = q.mu.clone().repeat_dim(0, n) + q.std().repeat_dim(0, n) * eps.clone();
        let log_ratio = (z.powi_scalar(2) - eps.powi_scalar(2)).mul_scalar(0.5)
            - q.log_var.clone().mul_scalar(0.5).repeat_dim(0, n);
        let mc = mean_f64(per_sample(log_ratio));
        // Hand value: ½ Σ (μ² + σ² − 1 − ln σ²).
        let hand = 0.5 * ((0.25 + 1.0 - 1.0) + (1.0 + (-1f64).exp() - 1.0 + 1.0) + (0.7f64.exp() - 1.0 - 0.7));
        assert!((closed - hand).abs() < 1e-5, "closed {closed} hand {hand}");
        assert!((mc - closed).abs() < 0.02, "monte carlo {mc} vs closed form {closed}");
    }

    #[test]
    fn gradients_reach_mu_and_sigma_through_the_reparameterisation() {
        let device = Default::default();
        let mu = t2::<AB>(&[0.3, -0.2], [1, 2]).require_grad();
        let log_var = t2::<AB>(&[0.0, 0.4], [1, 2]).require_grad();
        let q = Posterior {
            mu: mu.clone(),
            log_var: log_var.clone(),
        };
        let eps = Tensor::<AB, 2>::from_data(TensorData::new(vec![1.5f32, -0.5], [1, 2]), &device);
        let z = q.sample_with(eps);
        let grads = z.clone().powi_scalar(2).sum().backward();
        let z = z.into_data().to_vec::<f32>().unwrap();
        let sigma = [1.0f32, 0.2f32.exp()];
        let e = [1.5f32, -0.5];
        // d(z²)/dμ = 2z; d(z²)/d ln σ² = 2z · ε · σ / 2.
        let gmu = mu.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let glv = log_var.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        for j in 0..2 {
            assert!((gmu[j] - 2.0 * z[j]).abs() < 1e-5, "{gmu:?}");
            assert!((glv[j] - z[j] * e[j] * sigma[j]).abs() < 1e-5, "{glv:?}");
            assert!(glv[j].abs() > 0.1, "the gradient reaches σ: {glv:?}");
        }
    }

    #[test]
    fn likelihoods_match_hand_values() {
        let device = Default::default();
        let x = t2::<TB>(&[1.0, 0.0], [1, 2]);
        let logits = t2::<TB>(&[2.0, -1.0], [1, 2]);
        let bern = VaeConfig::mlp(2, vec![3], 1).init::<TB>(&device);
        let got = vec1(bern.log_likelihood(logits.clone(), x.clone()))[0];
        // ln σ(2) + ln(1 − σ(−1))
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        let hand = s(2.0).ln() + (1.0 - s(-1.0)).ln();
        assert!((got - hand).abs() < 1e-5, "{got} vs {hand}");

        let gauss = VaeConfig::mlp(2, vec![3], 1)
            .with_likelihood(Likelihood::Gaussian { variance: 0.5 })
            .with_output_activation(Activation::Identity)
            .init::<TB>(&device);
        let got = vec1(gauss.log_likelihood(logits.clone(), x.clone()))[0];
        // Σ −½ [(x − μ)²/σ² + ln σ² + ln 2π]
        let hand: f64 = [(1.0f64, 2.0f64), (0.0, -1.0)]
            .iter()
            .map(|(x, m)| -0.5 * ((x - m).powi(2) / 0.5 + 0.5f64.ln() + LN_2PI))
            .sum();
        assert!((got - hand).abs() < 1e-5, "{got} vs {hand}");

        // A learned variance starts at ln σ² = 0: the fixed variance-1 Gaussian.
        let learned = VaeConfig::mlp(2, vec![3], 1)
            .with_likelihood(Likelihood::GaussianLearned)
            .with_output_activation(Activation::Identity)
            .init::<TB>(&device);
        let one = VaeConfig::mlp(2, vec![3], 1)
            .with_likelihood(Likelihood::Gaussian { variance: 1.0 })
            .with_output_activation(Activation::Identity)
            .init::<TB>(&device);
        let a = vec1(learned.log_likelihood(logits.clone(), x.clone()))[0];
        let b = vec1(one.log_likelihood(logits, x))[0];
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn learned_variance_receives_a_gradient() {
        let device = Default::default();
        let vae = VaeConfig::mlp(4, vec![8], 2)
            .with_likelihood(Likelihood::GaussianLearned)
            .init::<AB>(&device);
        let x = Tensor::<AB, 2>::random([5, 4], Distribution::Default, &device);
        let terms = vae.objective(&Batch { x, y: None }, Stage::Train);
        let grads = terms.total.backward();
        let g = vae.decoder_log_var.as_ref().unwrap().grad(&grads).unwrap();
        assert!(g.abs().sum().into_scalar() > 0.0);
    }

    #[test]
    fn importance_bound_with_one_sample_is_the_elbo_in_expectation() {
        let device = Default::default();
        let _lock = gen_core::testing::seeded::<TB>(&device, 3);
        let vae = VaeConfig::mlp(6, vec![8], 2).init::<TB>(&device);
        let x = Tensor::<TB, 2>::random([4, 6], Distribution::Default, &device);
        let reps = 2000;
        let xs = x
            .clone()
            .unsqueeze_dim::<3>(0)
            .repeat_dim(0, reps)
            .reshape([4 * reps, 6]);
        let n = (4 * reps) as f64;
        let mean_sd = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
            (m, (var / v.len() as f64).sqrt())
        };
        let elbo = vec1(vae.elbo(xs.clone(), None));
        let iw1 = vae.importance_log_likelihood(xs.clone(), None, 1, 1);
        let ((e, se_e), (b, se_b)) = (mean_sd(&elbo), mean_sd(&iw1));
        let tol = 4.0 * (se_e * se_e + se_b * se_b).sqrt();
        assert!(
            (e - b).abs() < tol,
            "ELBO {e} vs k = 1 bound {b} (tolerance {tol}, n = {n})"
        );
        // The chunk size changes the order of the draws, not the estimate: k = 64 in one chunk
        // and in chunks of 7 (the last one shorter) agree within their standard errors.
        let whole = mean_sd(&vae.importance_log_likelihood(xs.clone(), None, 64, 64));
        let chunked = mean_sd(&vae.importance_log_likelihood(xs, None, 64, 7));
        let tol = 4.0 * (whole.1 * whole.1 + chunked.1 * chunked.1).sqrt();
        assert!((whole.0 - chunked.0).abs() < tol, "{whole:?} vs {chunked:?}");
        assert!(whole.0 > b, "k = 64 ({}) is tighter than k = 1 ({b})", whole.0);
        // With the same seed, the estimate is reproducible.
        TB::seed(&device, 9);
        let a = vae.importance_log_likelihood(x.clone(), None, 64, 7);
        TB::seed(&device, 9);
        let again = vae.importance_log_likelihood(x, None, 64, 7);
        assert_eq!(a, again);
    }

    #[test]
    fn conditional_vae_uses_the_label() {
        let device = Default::default();
        for cfg in [
            VaeConfig::mlp(16, vec![12], 2).with_classes(3),
            VaeConfig::conv(gen_core::nn::ImageShape::grey(8, 8), vec![4], 2).with_classes(3),
        ] {
            let vae = cfg.init::<TB>(&device);
            let x = Tensor::<TB, 2>::random([3, cfg.d_input], Distribution::Default, &device);
            let y = Tensor::<TB, 1, Int>::from_ints([0, 1, 2], &device);
            let y2 = Tensor::<TB, 1, Int>::from_ints([2, 0, 1], &device);
            let q = vae.posterior(x.clone(), Some(y.clone()));
            assert_eq!(q.mu.dims(), [3, 2]);
            let q2 = vae.posterior(x, Some(y2.clone()));
            let diff = (q.mu.clone() - q2.mu).abs().sum().into_scalar();
            assert!(diff > 0.0, "the encoder ignores the label");
            let a = vae.decode_mean(q.mu.clone(), Some(y));
            let b = vae.decode_mean(q.mu, Some(y2));
            assert!((a - b).abs().sum().into_scalar() > 0.0, "the decoder ignores the label");
            assert_eq!(vae.sample(5, None, &device).dims(), [5, cfg.d_input]);
        }
        let vae = VaeConfig::mlp(4, vec![4], 2).with_classes(3).init::<TB>(&device);
        let onehot = vae.one_hot(Tensor::from_ints([2, 0], &device));
        onehot.into_data().assert_approx_eq::<f32>(
            &TensorData::new(vec![0.0f32, 0.0, 1.0, 1.0, 0.0, 0.0], [2, 3]),
            Tolerance::absolute(0.0),
        );
    }

    #[test]
    #[should_panic(expected = "needs the class labels")]
    fn conditional_vae_without_labels_panics_with_a_message() {
        let vae = VaeConfig::mlp(4, vec![4], 2)
            .with_classes(3)
            .init::<TB>(&Default::default());
        let _ = vae.encode(Tensor::zeros([1, 4], &Default::default()));
    }

    #[test]
    fn binarisation_is_bernoulli_and_idempotent() {
        let device = Default::default();
        // 200,000 draws: the mean's standard deviation is 0.001, so the tolerance of 0.01 is
        // ten of them, whichever stream a test running beside this one leaves.
        let _lock = gen_core::testing::seeded::<TB>(&device, 1);
        let x = Tensor::<TB, 2>::full([200, 1000], 0.3, &device);
        let b = Vae::binarize(x);
        let v = b.clone().into_data().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|&v| v == 0.0 || v == 1.0));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean - 0.3).abs() < 0.01, "{mean}");
        let again = Vae::binarize(b.clone());
        again.into_data().assert_eq(&b.into_data(), true);
    }

    #[test]
    fn warmup_grows_linearly_to_beta_and_validation_uses_beta() {
        assert_eq!(warmup_weight(2.0, 0, 1), 2.0);
        assert_eq!(warmup_weight(2.0, 4, 1), 0.5);
        assert_eq!(warmup_weight(2.0, 4, 4), 2.0);
        assert_eq!(warmup_weight(2.0, 4, 9), 2.0);
        let device = Default::default();
        let mut vae = VaeConfig::mlp(4, vec![4], 2).with_kl_warmup(10).init::<TB>(&device);
        vae.begin_epoch(1);
        assert!((vae.kl_weight() - 0.1).abs() < 1e-12);
        let x = Tensor::<TB, 2>::random([8, 4], Distribution::Default, &device);
        let batch = Batch { x, y: None };
        for (stage, w) in [(Stage::Train, 0.1), (Stage::Valid, 1.0)] {
            let t = vae.objective(&batch, stage);
            let total = t.total.into_scalar();
            let recon = t.parts[0].1.clone().into_scalar();
            let kl = t.parts[1].1.clone().into_scalar();
            assert!(
                (total - (recon + w * kl)).abs() < 1e-4,
                "{stage:?}: {total} vs {recon} + {w}·{kl}"
            );
        }
    }

    #[test]
    fn invalid_configs_are_rejected_with_the_reason() {
        let base = VaeConfig::mlp(4, vec![4], 2);
        for (cfg, needle) in [
            (base.clone().with_beta(-1.0), "beta"),
            (base.clone().with_beta(f64::NAN), "beta"),
            (
                base.clone().with_likelihood(Likelihood::Gaussian { variance: 0.0 }),
                "variance",
            ),
            (base.clone().with_classes(1), "2 classes"),
            (
                base.clone()
                    .with_binarize(true)
                    .with_likelihood(Likelihood::GaussianLearned),
                "binarisation",
            ),
            (
                VaeConfig::conv(gen_core::nn::ImageShape::grey(8, 8), vec![4, 4, 4, 4], 2),
                "divisible by 16",
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!("gaussian:0.1".parse::<Likelihood>().unwrap() == Likelihood::Gaussian { variance: 0.1 });
        assert!(
            "poisson"
                .parse::<Likelihood>()
                .unwrap_err()
                .to_string()
                .contains("poisson")
        );
    }
}
