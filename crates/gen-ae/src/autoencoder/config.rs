use burn::tensor::backend::Backend;
use gen_core::ConfigError;
pub use gen_core::nn::Architecture;
use gen_core::nn::{Activation, Halves, HalvesSpec, ImageShape, materialize};
use gen_core::noise::Noise;
use serde::{Deserialize, Serialize};

use super::Regularizer;
use super::model::{AeDecoder, AeEncoder, Autoencoder};

/// The reconstruction loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReconLoss {
    /// Mean squared error on the output after [`AutoencoderConfig::output_activation`].
    #[default]
    Mse,
    /// Binary cross-entropy, computed stably from the decoder's logits (inputs in [0, 1]);
    /// the decoded output is then the sigmoid of the logits.
    Bce,
}

/// Configuration of an [`Autoencoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// Width of the (flattened) input.
    pub d_input: usize,
    /// Width of the code.
    pub d_latent: usize,
    /// MLP or convolutional.
    pub architecture: Architecture,
    /// Image shape of the input; required for [`Architecture::Conv`].
    #[serde(default)]
    pub image: Option<ImageShape>,
    /// Hidden non-linearity.
    #[serde(default)]
    pub activation: Activation,
    /// Non-linearity on the decoded output (used with [`ReconLoss::Mse`]).
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
    /// Reconstruction loss.
    #[serde(default)]
    pub loss: ReconLoss,
    /// Non-linearity on the code: identity for a linear code, sigmoid for the KL-sparse one.
    #[serde(default = "identity")]
    pub latent_activation: Activation,
    /// Penalty on the code: none, sparse (KL or L1) or contractive.
    #[serde(default)]
    pub regularizer: Regularizer,
    /// Corruption of the input during training (the denoising autoencoder); the target stays clean.
    #[serde(default)]
    pub noise: Option<Noise>,
    /// A linear path beside the MLP halves, started at PCA's solution: the code is PCA's
    /// coordinates plus the encoder's output, the reconstruction PCA's plus the decoder's, and both
    /// halves' last layers start at zero, so the untrained model is PCA with `d_latent` axes and
    /// training starts from there ([`AutoencoderConfig::try_init_on`] fits the axes). For MLP
    /// autoencoders with the MSE loss, an identity output and code, and no penalty.
    #[serde(default)]
    pub pca_path: bool,
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

fn identity() -> Activation {
    Activation::Identity
}

impl AutoencoderConfig {
    /// An MLP autoencoder with ReLU hidden layers, sigmoid output and MSE.
    pub fn mlp(d_input: usize, hidden: Vec<usize>, d_latent: usize) -> Self {
        Self {
            d_input,
            d_latent,
            architecture: Architecture::Mlp { hidden },
            image: None,
            activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            loss: ReconLoss::Mse,
            latent_activation: Activation::Identity,
            regularizer: Regularizer::None,
            noise: None,
            pca_path: false,
        }
    }

    /// A convolutional autoencoder for images of shape `image`.
    pub fn conv(image: ImageShape, channels: Vec<usize>, d_latent: usize) -> Self {
        Self {
            d_input: image.numel(),
            d_latent,
            architecture: Architecture::Conv { channels },
            image: Some(image),
            activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            loss: ReconLoss::Mse,
            latent_activation: Activation::Identity,
            regularizer: Regularizer::None,
            noise: None,
            pca_path: false,
        }
    }

    /// Sets the reconstruction loss.
    pub fn with_loss(mut self, loss: ReconLoss) -> Self {
        self.loss = loss;
        self
    }

    /// Sets the hidden activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets the code's activation.
    pub fn with_latent_activation(mut self, activation: Activation) -> Self {
        self.latent_activation = activation;
        self
    }

    /// Sets the penalty on the code. [`Regularizer::SparseKl`] also switches the code to sigmoid,
    /// and [`Regularizer::SparseL1`] a linear code to ReLU, so that units can be exactly off.
    pub fn with_regularizer(mut self, regularizer: Regularizer) -> Self {
        match regularizer {
            Regularizer::SparseKl { .. } => self.latent_activation = Activation::Sigmoid,
            Regularizer::SparseL1 { .. } if self.latent_activation == Activation::Identity => {
                self.latent_activation = Activation::Relu
            }
            _ => {}
        }
        self.regularizer = regularizer;
        self
    }

    /// Sets the training corruption (a denoising autoencoder).
    pub fn with_noise(mut self, noise: Noise) -> Self {
        self.noise = Some(noise);
        self
    }

    /// Adds the linear path started at PCA's solution (see [`AutoencoderConfig::pca_path`]),
    /// with the identity output it needs.
    pub fn with_pca_path(mut self) -> Self {
        self.pca_path = true;
        self.output_activation = Activation::Identity;
        self
    }

    /// The family this configuration describes, for names and reports: `autoencoder`,
    /// `sparse-kl`, `sparse-l1`, `contractive` or `denoising`.
    pub fn variant(&self) -> &'static str {
        match (self.regularizer, self.noise) {
            (Regularizer::None, None) => "autoencoder",
            (Regularizer::None, Some(_)) => "denoising",
            (r, _) => r.name(),
        }
    }

    /// The encoder's and decoder's configurations, from the architecture.
    fn halves(&self) -> Result<Halves, ConfigError> {
        self.architecture.halves(&HalvesSpec {
            model: "autoencoder",
            d_input: self.d_input,
            image: self.image,
            d_encoded: self.d_latent,
            d_latent: self.d_latent,
            d_condition: 0,
            activation: self.activation,
            encoded_activation: self.latent_activation,
        })
    }

    /// Rejects zero sizes, a plain autoencoder whose code is at least as wide as the input (it
    /// could learn the identity; sparse, contractive and denoising ones may be overcomplete),
    /// nonsense penalties or noise, and convolutional stacks that do not fit the image.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("d_input", self.d_input)?;
        ConfigError::check_positive("d_latent", self.d_latent)?;
        if self.d_latent >= self.d_input && self.regularizer == Regularizer::None && self.noise.is_none() {
            return Err(ConfigError::Invalid(format!(
                "an undercomplete autoencoder needs d_latent < d_input, got {} >= {} \
                 (add a sparsity or contractive penalty, or noise, for an overcomplete code)",
                self.d_latent, self.d_input
            )));
        }
        self.regularizer.validate(self.latent_activation)?;
        if let Some(noise) = &self.noise {
            noise.validate()?;
        }
        if self.pca_path {
            let fits = matches!(self.architecture, Architecture::Mlp { .. })
                && self.loss == ReconLoss::Mse
                && self.output_activation == Activation::Identity
                && self.latent_activation == Activation::Identity
                && self.regularizer == Regularizer::None;
            if !fits {
                return Err(ConfigError::Invalid(
                    "the PCA path is for MLP autoencoders with the MSE loss, an identity output and code, \
                     and no penalty"
                        .into(),
                ));
            }
            if self.d_latent >= self.d_input {
                return Err(ConfigError::Invalid(format!(
                    "the PCA path needs fewer code units than inputs, got {} >= {}",
                    self.d_latent, self.d_input
                )));
            }
        }
        self.halves()?.validate()
    }

    /// Builds the model.
    ///
    /// # Errors
    /// If [`AutoencoderConfig::validate`] fails.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<Autoencoder<B>, ConfigError> {
        self.validate()?;
        let (encoder, decoder) = match self.halves()? {
            Halves::Mlp { encoder, decoder } if self.pca_path => (
                AeEncoder::Mlp(encoder.init(device).with_zero_last_layer()),
                AeDecoder::Mlp(decoder.init(device).with_zero_last_layer()),
            ),
            Halves::Mlp { encoder, decoder } => (
                AeEncoder::Mlp(encoder.init(device)),
                AeDecoder::Mlp(decoder.init(device)),
            ),
            Halves::Conv { encoder, decoder } => (
                AeEncoder::Conv(encoder.init(device)),
                AeDecoder::Conv(decoder.init(device)),
            ),
        };
        let model = Autoencoder::new(encoder, decoder, self, device);
        materialize(&model);
        Ok(model)
    }

    /// Builds the model for training on `train`: with [`AutoencoderConfig::pca_path`], PCA is
    /// fitted on `train` and the linear path set to its mean and first `d_latent` axes, so the
    /// model starts as PCA; otherwise as [`AutoencoderConfig::try_init`].
    ///
    /// # Errors
    /// If [`AutoencoderConfig::validate`] fails, `train` is of another width, or PCA cannot be
    /// fitted on it.
    pub fn try_init_on<B: Backend>(
        &self,
        train: &gen_data::Dataset,
        device: &B::Device,
    ) -> crate::Result<Autoencoder<B>> {
        let model = self.try_init(device)?;
        if !self.pca_path {
            return Ok(model);
        }
        if train.d() != self.d_input {
            return Err(crate::AeError::Invalid(format!(
                "the model takes {} features, {} has {}",
                self.d_input,
                train.name(),
                train.d()
            )));
        }
        let pca = gen_data::pca::Pca::fit(train)?;
        Ok(model.with_pca(&pca.mean(), &pca.axes(self.d_latent), device))
    }

    /// Builds the model.
    ///
    /// # Panics
    /// If [`AutoencoderConfig::validate`] fails; use [`AutoencoderConfig::try_init`] to get the
    /// error instead.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Autoencoder<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}
