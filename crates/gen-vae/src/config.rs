use burn::module::Param;
use burn::tensor::{Tensor, backend::Backend};
use gen_core::ConfigError;
pub use gen_core::nn::Architecture;
use gen_core::nn::{Activation, Halves, HalvesSpec, ImageShape, materialize};
use serde::{Deserialize, Serialize};

use crate::model::{Vae, VaeDecoder, VaeEncoder};

/// The decoder's distribution `p(x | z)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Likelihood {
    /// Independent Bernoulli pixels; the decoder gives logits. For binary data or data in [0, 1]
    /// (then it is the cross-entropy of the grey values, not a likelihood of them).
    #[default]
    Bernoulli,
    /// Independent Gaussians around the decoded mean with one fixed variance.
    Gaussian {
        /// The variance σ² of every dimension.
        variance: f64,
    },
    /// Independent Gaussians with a learned variance per input dimension.
    ///
    /// `ln σ²` is clamped to `[LOG_VAR_MIN, LOG_VAR_MAX]`, so a dimension that is constant in
    /// the data (a border pixel) cannot drive its variance to zero and its likelihood to infinity.
    GaussianLearned,
}

/// Lower clamp of a learned decoder `ln σ²` (σ ≈ 0.03).
pub const LOG_VAR_MIN: f64 = -7.0;
/// Upper clamp of a learned decoder `ln σ²`.
pub const LOG_VAR_MAX: f64 = 7.0;

impl Likelihood {
    /// Short name: `bernoulli`, `gaussian` or `gaussian-learned`.
    pub fn name(&self) -> &'static str {
        match self {
            Likelihood::Bernoulli => "bernoulli",
            Likelihood::Gaussian { .. } => "gaussian",
            Likelihood::GaussianLearned => "gaussian-learned",
        }
    }
}

impl std::str::FromStr for Likelihood {
    type Err = ConfigError;

    /// `bernoulli`, `gaussian` (variance 1), `gaussian:0.1` (that variance) or `gaussian-learned`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let l = match s.split_once(':') {
            None if s == "bernoulli" => Likelihood::Bernoulli,
            None if s == "gaussian" => Likelihood::Gaussian { variance: 1.0 },
            None if s == "gaussian-learned" => Likelihood::GaussianLearned,
            Some(("gaussian", v)) => Likelihood::Gaussian {
                variance: v
                    .parse()
                    .map_err(|_| ConfigError::Invalid(format!("likelihood {s:?}: {v:?} is not a number")))?,
            },
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "unknown likelihood {s:?}: expected bernoulli, gaussian, gaussian:VARIANCE or gaussian-learned"
                )));
            }
        };
        Ok(l)
    }
}

/// Configuration of a [`Vae`]: plain, β-VAE, with KL warm-up, or conditional on a class label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// Width of the (flattened) input.
    pub d_input: usize,
    /// Width of the latent code.
    pub d_latent: usize,
    /// MLP or convolutional.
    pub architecture: Architecture,
    /// Image shape of the input; required for [`Architecture::Conv`].
    #[serde(default)]
    pub image: Option<ImageShape>,
    /// Hidden non-linearity.
    #[serde(default)]
    pub activation: Activation,
    /// The decoder's distribution.
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Non-linearity on a Gaussian decoder's mean (sigmoid for images, identity for
    /// standardised tables). A Bernoulli decoder always uses the sigmoid of its logits.
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
    /// Weight of the KL term: 1 for the ELBO, other values for a β-VAE.
    #[serde(default = "one")]
    pub beta: f64,
    /// KL warm-up: the KL weight grows linearly from `β/n` in the first epoch to `β` in epoch
    /// `n`; `None` or 0 for none. Validation always uses the full `β`.
    #[serde(default)]
    pub kl_warmup_epochs: Option<usize>,
    /// Number of classes for a conditional VAE (the one-hot label enters encoder and decoder).
    #[serde(default)]
    pub n_classes: Option<usize>,
    /// Dynamic binarisation: each time a batch is used, every value `p` in [0, 1] is replaced by
    /// a fresh Bernoulli(p) draw. Only with [`Likelihood::Bernoulli`]. Binary data is unchanged.
    #[serde(default)]
    pub binarize: bool,
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

fn one() -> f64 {
    1.0
}

impl VaeConfig {
    /// An MLP VAE with ReLU hidden layers and a Bernoulli decoder.
    pub fn mlp(d_input: usize, hidden: Vec<usize>, d_latent: usize) -> Self {
        Self {
            d_input,
            d_latent,
            architecture: Architecture::Mlp { hidden },
            image: None,
            activation: Activation::Relu,
            likelihood: Likelihood::Bernoulli,
            output_activation: Activation::Sigmoid,
            beta: 1.0,
            kl_warmup_epochs: None,
            n_classes: None,
            binarize: false,
        }
    }

    /// A convolutional VAE for images of shape `image`, with a Bernoulli decoder.
    pub fn conv(image: ImageShape, channels: Vec<usize>, d_latent: usize) -> Self {
        Self {
            d_input: image.numel(),
            architecture: Architecture::Conv { channels },
            image: Some(image),
            ..Self::mlp(image.numel(), Vec::new(), d_latent)
        }
    }

    /// Sets the decoder's distribution.
    pub fn with_likelihood(mut self, likelihood: Likelihood) -> Self {
        self.likelihood = likelihood;
        self
    }

    /// Sets the KL weight β.
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets the KL warm-up length in epochs.
    pub fn with_kl_warmup(mut self, epochs: usize) -> Self {
        self.kl_warmup_epochs = Some(epochs);
        self
    }

    /// Makes the VAE conditional on a label of `n_classes` classes.
    pub fn with_classes(mut self, n_classes: usize) -> Self {
        self.n_classes = Some(n_classes);
        self
    }

    /// Turns dynamic binarisation on or off.
    pub fn with_binarize(mut self, binarize: bool) -> Self {
        self.binarize = binarize;
        self
    }

    /// Sets the hidden activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets the Gaussian decoder's output activation.
    pub fn with_output_activation(mut self, activation: Activation) -> Self {
        self.output_activation = activation;
        self
    }

    /// `vae`, `beta-vae` or `cvae`, for names and reports.
    pub fn variant(&self) -> &'static str {
        match (self.n_classes, self.beta == 1.0) {
            (Some(_), _) => "cvae",
            (None, true) => "vae",
            (None, false) => "beta-vae",
        }
    }

    fn n_cond(&self) -> usize {
        self.n_classes.unwrap_or(0)
    }

    /// The encoder's (to μ and ln σ²) and decoder's configurations, from the architecture; a
    /// conditional VAE's halves see the one-hot label too.
    fn halves(&self) -> Result<Halves, ConfigError> {
        self.architecture.halves(&HalvesSpec {
            model: "VAE",
            d_input: self.d_input,
            image: self.image,
            d_encoded: 2 * self.d_latent,
            d_latent: self.d_latent,
            d_condition: self.n_cond(),
            activation: self.activation,
            encoded_activation: Activation::Identity,
        })
    }

    /// Rejects zero sizes, a negative or non-finite β, a non-positive variance, fewer than two
    /// classes, binarisation without a Bernoulli decoder, and stacks that do not fit the image.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("d_input", self.d_input)?;
        ConfigError::check_positive("d_latent", self.d_latent)?;
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(ConfigError::Invalid(format!(
                "beta (the KL weight) must be finite and >= 0, got {}",
                self.beta
            )));
        }
        if let Likelihood::Gaussian { variance } = self.likelihood
            && !(variance.is_finite() && variance > 0.0)
        {
            return Err(ConfigError::Invalid(format!(
                "the Gaussian likelihood's variance must be finite and > 0, got {variance}"
            )));
        }
        if let Some(n) = self.n_classes
            && n < 2
        {
            return Err(ConfigError::Invalid(format!(
                "a conditional VAE needs at least 2 classes, got {n}"
            )));
        }
        if self.binarize && self.likelihood != Likelihood::Bernoulli {
            return Err(ConfigError::Invalid(format!(
                "dynamic binarisation needs the bernoulli likelihood, not {}",
                self.likelihood.name()
            )));
        }
        self.halves()?.validate()
    }

    /// Builds the model.
    ///
    /// # Errors
    /// If [`VaeConfig::validate`] fails.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<Vae<B>, ConfigError> {
        self.validate()?;
        let (encoder, decoder) = match self.halves()? {
            Halves::Mlp { encoder, decoder } => (
                VaeEncoder::Mlp(encoder.init(device)),
                VaeDecoder::Mlp(decoder.init(device)),
            ),
            Halves::Conv { encoder, decoder } => (
                VaeEncoder::Conv(encoder.init(device)),
                VaeDecoder::Conv(decoder.init(device)),
            ),
        };
        let log_var = (self.likelihood == Likelihood::GaussianLearned)
            .then(|| Param::from_tensor(Tensor::zeros([self.d_input], device)));
        let model = Vae::new(encoder, decoder, log_var, self);
        materialize(&model);
        Ok(model)
    }

    /// Builds the model.
    ///
    /// # Panics
    /// If the configuration is invalid; use [`VaeConfig::try_init`] for an error instead.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Vae<B> {
        self.try_init(device)
            .unwrap_or_else(|e| panic!("invalid VAE config: {e}"))
    }
}
