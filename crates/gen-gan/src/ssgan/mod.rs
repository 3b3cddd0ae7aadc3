//! The semi-supervised GAN of Salimans et al. (2016, "Improved Techniques for Training GANs"):
//! a discriminator that is also a K-class classifier, trained on a few labelled images, many
//! unlabelled ones and the generator's fakes, with the generator trained by feature matching.
//!
//! The discriminator's K logits l(x) give the class probabilities softmax(l). With a (K+1)-th
//! "fake" logit fixed at zero, the probability that x is real is D(x) = Z / (Z + 1), where
//! Z = Σ_k exp l_k. Its loss ([`discriminator_loss`]) is the labelled images' cross-entropy
//! plus the unlabelled images' "real" term and the fakes' "fake" term. The generator matches
//! the mean of the discriminator's last hidden layer on real and generated batches
//! ([`feature_matching`]).
//!
//! [`SsganConfig::new`] gives the paper's permutation-invariant MNIST networks:
//! - the discriminator 784-1000-500-250-250-250-10: weight-normalised dense layers
//!   ([`WnDense`]) with data-dependent initialisation, ReLU, and Gaussian noise (σ 0.3 on the
//!   input, 0.5 after every hidden layer) while training;
//! - the generator 100-500-500-784 from uniform noise: dense layers with batch norm and
//!   softplus, then a weight-normalised layer with a sigmoid.
//!
//! [`SsganTrainer`] trains them (one discriminator step and one generator step per batch of
//! unlabelled images, each with a batch of labelled images drawn in turn from the labelled
//! set), keeps a moving average of the discriminator for evaluation, and writes resumable run
//! folders. [`labelled_subset`] picks a class-balanced labelled set; [`evaluate`] judges a
//! discriminator as a classifier, and [`compare`] beside the evaluation classifier trained on
//! the same labelled images alone and randomly shifted.

mod compare;
mod loss;
mod nets;
mod train;

use gen_core::ConfigError;
use serde::{Deserialize, Serialize};

pub use compare::{FewLabelsReport, compare};
pub use loss::{discriminator_loss, feature_matching, log_sum_exp, softplus, supervised_loss, unsupervised_loss};
pub use nets::{SsDiscriminator, SsGenerator, WnDense};
pub use train::{ClassifierEval, DISCRIMINATOR_EMA, FittedSsgan, SsganTrainer, evaluate, labelled_subset};

/// The semi-supervised GAN's networks and losses (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsganConfig {
    /// Values per image.
    pub d_input: usize,
    /// Number of classes K.
    pub n_classes: usize,
    /// The discriminator's hidden widths.
    pub d_hidden: Vec<usize>,
    /// Standard deviation of the Gaussian noise on the discriminator's input while training.
    pub input_noise: f64,
    /// Standard deviation of the Gaussian noise after each hidden layer while training.
    pub hidden_noise: f64,
    /// Width of the generator's uniform noise.
    pub d_latent: usize,
    /// The generator's hidden widths.
    pub g_hidden: Vec<usize>,
    /// Weight of the unlabelled (real and fake) term in the discriminator's loss.
    pub unlabelled_weight: f64,
    /// Decay of the discriminator's moving average used for evaluation; `None`: evaluate the
    /// discriminator itself.
    pub ema: Option<f64>,
}

impl SsganConfig {
    /// The paper's MNIST networks for `d_input` values and `n_classes` classes: discriminator
    /// hidden widths 1000, 500, 250, 250, 250 with noise 0.3 and 0.5; generator 100-500-500;
    /// unlabelled weight 1; moving average 0.999.
    pub fn new(d_input: usize, n_classes: usize) -> Self {
        Self {
            d_input,
            n_classes,
            d_hidden: vec![1000, 500, 250, 250, 250],
            input_noise: 0.3,
            hidden_noise: 0.5,
            d_latent: 100,
            g_hidden: vec![500, 500],
            unlabelled_weight: 1.0,
            ema: Some(0.999),
        }
    }

    /// Rejects zero widths, fewer than two classes, negative noise or weight, and a decay
    /// outside [0, 1).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("d_input", self.d_input)?;
        ConfigError::check_positive("d_latent", self.d_latent)?;
        if self.n_classes < 2 {
            return Err(ConfigError::Invalid(format!(
                "a semi-supervised GAN needs at least 2 classes, got {}",
                self.n_classes
            )));
        }
        if self.d_hidden.is_empty() || self.d_hidden.contains(&0) || self.g_hidden.contains(&0) {
            return Err(ConfigError::Invalid(format!(
                "the discriminator needs at least one hidden layer and no width may be 0 \
                 (discriminator {:?}, generator {:?})",
                self.d_hidden, self.g_hidden
            )));
        }
        for (name, v) in [
            ("input_noise", self.input_noise),
            ("hidden_noise", self.hidden_noise),
            ("unlabelled_weight", self.unlabelled_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::Invalid(format!("{name} must be finite and >= 0, got {v}")));
            }
        }
        if let Some(decay) = self.ema
            && !(0.0..1.0).contains(&decay)
        {
            return Err(ConfigError::Invalid(format!(
                "the moving average's decay must lie in [0, 1), got {decay}"
            )));
        }
        Ok(())
    }

    /// Builds the generator and the discriminator (before the discriminator's data-dependent
    /// initialisation, which [`SsganTrainer::fit`] does on the training images).
    ///
    /// # Errors
    /// If [`SsganConfig::validate`] fails.
    pub fn try_init<B: burn::tensor::backend::Backend>(
        &self,
        device: &B::Device,
    ) -> Result<(SsGenerator<B>, SsDiscriminator<B>), ConfigError> {
        self.validate()?;
        Ok((SsGenerator::new(self, device), SsDiscriminator::new(self, device)))
    }
}
