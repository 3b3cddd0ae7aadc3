//! A [`ModelSpec`] turned into the configuration of the model crate that trains it.

use anyhow::bail;
use gen_ae::{Architecture, AutoencoderConfig, ReconLoss, Regularizer};
use gen_core::nn::{Activation, ImageShape};
use gen_core::noise::Noise;
use gen_vae::{Architecture as VaeArchitecture, Likelihood, VaeConfig};

use super::{Arch, Family, ModelSpec};

impl ModelSpec {
    /// The training corruption, parsed.
    pub fn noise(&self) -> anyhow::Result<Option<Noise>> {
        match (&self.noise, self.family) {
            (Some(s), _) => Ok(Some(s.parse::<Noise>().map_err(anyhow::Error::msg)?)),
            (None, Family::Denoising) => Ok(Some(Noise::Gaussian { sigma: 0.3 })),
            (None, _) => Ok(None),
        }
    }

    /// The super-resolution content loss, parsed.
    pub fn content_loss(&self) -> anyhow::Result<gen_gan::sr::ContentLoss> {
        Ok(match self.content.as_deref() {
            None | Some("l1") => gen_gan::sr::ContentLoss::L1,
            Some("mse") => gen_gan::sr::ContentLoss::Mse,
            Some(other) => bail!("unknown content loss {other:?}; expected l1 or mse"),
        })
    }

    /// The labelled images of a semi-supervised GAN run: as given, or 100.
    pub fn labels_or_default(&self) -> usize {
        self.labels.unwrap_or(100)
    }

    /// The semi-supervised GAN for `d_input` values and `n_classes` classes: the paper's
    /// networks, with the discriminator's moving average at `ema` (default 0.999).
    pub fn ssgan(&self, d_input: usize, n_classes: usize) -> gen_gan::ssgan::SsganConfig {
        gen_gan::ssgan::SsganConfig {
            ema: Some(self.ema.unwrap_or(0.999)),
            ..gen_gan::ssgan::SsganConfig::new(d_input, n_classes)
        }
    }

    /// The GAN configuration for images of `image`'s shape, conditional on `n_classes` for the
    /// cgan family; `lr` is the training rate (the discriminator's default).
    ///
    /// # Errors
    /// If the loss does not parse or the configuration is invalid.
    pub fn gan(&self, image: ImageShape, n_classes: Option<usize>, lr: f64) -> anyhow::Result<gen_gan::GanConfig> {
        let cfg = gen_gan::GanConfig {
            image,
            d_latent: self.latent,
            architecture: match self.arch {
                Arch::Mlp => gen_gan::GanArchitecture::Mlp {
                    hidden: self.hidden.clone(),
                },
                Arch::Conv => gen_gan::GanArchitecture::Dcgan {
                    channels: self.channels.clone(),
                    batch_norm: self.batch_norm,
                },
            },
            n_classes: if self.family == Family::Cgan { n_classes } else { None },
            loss: match &self.gan_loss {
                Some(s) => s.parse().map_err(anyhow::Error::msg)?,
                None => gen_gan::GanLoss::NonSaturating,
            },
            spectral_norm: self.spectral_norm,
            n_critic: self.n_critic,
            lr_discriminator: self.lr_d.unwrap_or(lr),
            ema: self.ema,
            augment: match &self.diff_augment {
                Some(s) => gen_gan::DiffAugment::parse(s, image).map_err(anyhow::Error::msg)?,
                None => None,
            },
            real_shift: self.real_shift,
            source_conditioned: self.dagan,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The penalty the family stands for.
    pub fn regularizer(&self) -> Regularizer {
        let weight = self.weight.unwrap_or(self.family.default_weight());
        match self.family {
            Family::Ae
            | Family::Denoising
            | Family::Vae
            | Family::Cvae
            | Family::Gan
            | Family::Cgan
            | Family::Sr
            | Family::Classifier
            | Family::Ssgan => Regularizer::None,
            Family::SparseKl => Regularizer::SparseKl {
                rho: self.rho,
                beta: weight,
            },
            Family::SparseL1 => Regularizer::SparseL1 { lambda: weight },
            Family::Contractive => Regularizer::Contractive {
                lambda: weight,
                projections: self.projections,
            },
        }
    }

    /// The VAE configuration for data of width `d_input` (and image shape, if any), conditional
    /// on `n_classes` classes for the cvae family.
    ///
    /// # Errors
    /// If the likelihood does not parse, or the configuration is invalid.
    pub fn vae(
        &self,
        d_input: usize,
        image: Option<ImageShape>,
        standardised: bool,
        n_classes: Option<usize>,
    ) -> anyhow::Result<VaeConfig> {
        let likelihood = match &self.likelihood {
            Some(s) => s.parse::<Likelihood>()?,
            None if standardised => Likelihood::Gaussian { variance: 1.0 },
            None => Likelihood::Bernoulli,
        };
        let cfg = VaeConfig {
            d_input,
            d_latent: self.latent,
            architecture: match self.arch {
                Arch::Mlp => VaeArchitecture::Mlp {
                    hidden: self.hidden.clone(),
                },
                Arch::Conv => VaeArchitecture::Conv {
                    channels: self.channels.clone(),
                },
            },
            image,
            activation: self.activation,
            likelihood,
            output_activation: if standardised {
                Activation::Identity
            } else {
                Activation::Sigmoid
            },
            beta: self.beta,
            kl_warmup_epochs: self.kl_warmup.filter(|&e| e > 0),
            n_classes: if self.family == Family::Cvae { n_classes } else { None },
            binarize: self
                .binarize
                .unwrap_or(likelihood == Likelihood::Bernoulli && image.is_some() && !standardised),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The autoencoder configuration for data of width `d_input` (and image shape, if any).
    ///
    /// # Errors
    /// If the noise does not parse.
    pub fn autoencoder(
        &self,
        d_input: usize,
        image: Option<ImageShape>,
        standardised: bool,
    ) -> anyhow::Result<AutoencoderConfig> {
        let base = AutoencoderConfig {
            d_input,
            d_latent: self.latent,
            architecture: match self.arch {
                Arch::Mlp => Architecture::Mlp {
                    hidden: self.hidden.clone(),
                },
                Arch::Conv => Architecture::Conv {
                    channels: self.channels.clone(),
                },
            },
            image,
            activation: self.activation,
            // Standardised tables are not in [0, 1]: a linear output fits them.
            output_activation: if standardised {
                Activation::Identity
            } else {
                Activation::Sigmoid
            },
            loss: self.loss,
            latent_activation: Activation::Identity,
            regularizer: Regularizer::None,
            noise: self.noise()?,
            pca_path: false,
        };
        let cfg = base.with_regularizer(self.regularizer());
        // Not the denoising family: its noise is clipped to the data's [0, 1], which the model
        // knows from its sigmoid output, and the path needs an identity output.
        let applies = self.arch == Arch::Mlp && self.loss == ReconLoss::Mse && self.family == Family::Ae;
        Ok(match self.pca_path {
            Some(true) if !applies => {
                bail!("--pca-path is for the ae family's MLP autoencoders with the MSE loss")
            }
            Some(true) => cfg.with_pca_path(),
            None if applies => cfg.with_pca_path(),
            _ => cfg,
        })
    }
}
