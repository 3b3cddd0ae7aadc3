//! What a GAN is built from: [`GanConfig`].

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use gen_core::ConfigError;
use gen_core::nn::ImageShape;

use crate::augment::DiffAugment;
use crate::loss::GanLoss;
use crate::nets::{Discriminator, Generator};

/// The two networks' shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GanArchitecture {
    /// Dense layers: the discriminator uses `hidden` from the input side, the generator the same
    /// widths reversed (widest next to the image).
    Mlp {
        /// Hidden widths, image side first.
        hidden: Vec<usize>,
    },
    /// DCGAN-style: the discriminator's stride-2 4x4 convolutions with `channels` (leaky ReLU,
    /// no normalisation but the optional spectral one), then a dense output; the generator
    /// mirrors it with a dense layer to a `channels.last()`-channel map and stride-2
    /// transposed convolutions, batch-normalised when `batch_norm` is set.
    Dcgan {
        /// Channels of the discriminator's convolutions, image side first.
        channels: Vec<usize>,
        /// Batch normalisation in the generator (as in DCGAN).
        batch_norm: bool,
    },
}

/// Everything needed to build a generator and a discriminator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// Shape of the images (the DCGAN needs height and width divisible by 2^layers).
    pub image: ImageShape,
    /// Width of the generator's Gaussian noise input.
    pub d_latent: usize,
    /// The networks.
    pub architecture: GanArchitecture,
    /// Classes of a conditional GAN: the generator takes a one-hot label beside the noise, the
    /// discriminator projects its features on a learned class embedding (Miyato and Koyama,
    /// 2018). `None`: unconditional.
    pub n_classes: Option<usize>,
    /// The adversarial loss.
    pub loss: GanLoss,
    /// Spectral normalisation of every discriminator layer (not of a conditional
    /// discriminator's class embedding, which stays a plain learned table).
    pub spectral_norm: bool,
    /// Discriminator steps per generator step.
    pub n_critic: usize,
    /// The discriminator's Adam learning rate (the generator's is the training rate).
    pub lr_discriminator: f64,
    /// Decay of the exponential moving average of the generator's weights; `None`: no average.
    pub ema: Option<f64>,
    /// Differentiable augmentation of everything the discriminator sees, real and fake, in
    /// both phases (for small training sets); `None`: the images as they are.
    #[serde(default)]
    pub augment: Option<DiffAugment>,
    /// Largest random shift, in whole pixels, of the real images (0: none). This augments the
    /// training set itself, unlike [`GanConfig::augment`]: the discriminator sees only shifted
    /// real images, so the generator learns to draw shifted images too, and its samples carry
    /// that variety (for data augmentation from a few hundred images).
    #[serde(default)]
    pub real_shift: usize,
    /// A source-conditioned (DAGAN) generator (Antoniou et al., 2018, "Data Augmentation
    /// Generative Adversarial Networks"): it also sees a real image of the class, its source,
    /// whose encoder features it adds to its own at each resolution, and the discriminator
    /// judges pairs, (source, another real image of its class) against (source, generated),
    /// so a copy of the source is as easy to catch as a bad image. Its samples are new
    /// variations of real images; it needs the DCGAN architecture and a conditional GAN, and
    /// its training data are pairs ([`crate::SourcePairs`]).
    #[serde(default)]
    pub source_conditioned: bool,
}

impl GanConfig {
    /// The DCGAN of the bench: 64 → 128x7x7 → 64x14x14 → 1x28x28, batch-normalised generator,
    /// non-saturating loss, Adam(2e-4, β₁ = 0.5) on both sides.
    pub fn dcgan(image: ImageShape) -> Self {
        Self {
            image,
            d_latent: 64,
            architecture: GanArchitecture::Dcgan {
                channels: vec![64, 128],
                batch_norm: true,
            },
            n_classes: None,
            loss: GanLoss::NonSaturating,
            spectral_norm: false,
            n_critic: 1,
            lr_discriminator: 2e-4,
            ema: None,
            augment: None,
            real_shift: 0,
            source_conditioned: false,
        }
    }

    /// The shape of what the discriminator sees: the image, or for a source-conditioned
    /// generator the source and the image as one image of twice the channels.
    pub fn discriminator_image(&self) -> ImageShape {
        let pair = if self.source_conditioned { 2 } else { 1 };
        ImageShape {
            channels: pair * self.image.channels,
            ..self.image
        }
    }

    /// Rejects zero sizes, images the DCGAN cannot halve, a nonsense loss parameter, an EMA
    /// decay outside [0, 1), and a non-positive learning rate.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("image channels", self.image.channels)?;
        ConfigError::check_positive("image height", self.image.height)?;
        ConfigError::check_positive("image width", self.image.width)?;
        ConfigError::check_positive("d_latent", self.d_latent)?;
        ConfigError::check_positive("n_critic", self.n_critic)?;
        match &self.architecture {
            GanArchitecture::Mlp { hidden } => {
                if hidden.is_empty() {
                    return Err(ConfigError::Invalid(
                        "a GAN's MLP needs at least one hidden layer".into(),
                    ));
                }
                for &h in hidden {
                    ConfigError::check_positive("hidden width", h)?;
                }
            }
            GanArchitecture::Dcgan { channels, .. } => {
                let f = 1usize << channels.len().min(16);
                if channels.is_empty() || !self.image.height.is_multiple_of(f) || !self.image.width.is_multiple_of(f) {
                    return Err(ConfigError::Invalid(format!(
                        "a DCGAN of {} stride-2 layers needs at least one layer and an image whose sides \
                         divide by {f}, got {}x{}",
                        channels.len(),
                        self.image.height,
                        self.image.width
                    )));
                }
                for &c in channels {
                    ConfigError::check_positive("conv channels", c)?;
                }
            }
        }
        if let Some(k) = self.n_classes
            && k < 2
        {
            return Err(ConfigError::Invalid(format!(
                "a conditional GAN needs at least 2 classes, got {k}"
            )));
        }
        self.loss.validate()?;
        if !(self.lr_discriminator.is_finite() && self.lr_discriminator > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "the discriminator's learning rate must be positive and finite, got {}",
                self.lr_discriminator
            )));
        }
        if let Some(d) = self.ema
            && !(0.0..1.0).contains(&d)
        {
            return Err(ConfigError::Invalid(format!(
                "the EMA decay must lie in [0, 1), got {d}"
            )));
        }
        if let Some(a) = &self.augment {
            a.validate(self.image)?;
        }
        let side = self.image.height.min(self.image.width);
        if self.real_shift >= side {
            return Err(ConfigError::Invalid(format!(
                "the real images' shift ({}) must be smaller than the image's side {side}",
                self.real_shift
            )));
        }
        if self.source_conditioned {
            if !matches!(self.architecture, GanArchitecture::Dcgan { .. }) {
                return Err(ConfigError::Invalid(
                    "a source-conditioned (DAGAN) generator needs the DCGAN architecture (conv)".into(),
                ));
            }
            if self.n_classes.is_none() {
                return Err(ConfigError::Invalid(
                    "a source-conditioned (DAGAN) generator pairs images of one class, so it needs a \
                     conditional GAN (labelled data)"
                        .into(),
                ));
            }
            if self.real_shift > 0 {
                return Err(ConfigError::Invalid(
                    "a source-conditioned (DAGAN) generator takes no real_shift: its pairs would be shifted apart"
                        .into(),
                ));
            }
        }
        if matches!(self.loss, GanLoss::Wasserstein { .. }) && self.spectral_norm {
            return Err(ConfigError::Invalid(
                "weight clipping and spectral normalisation both bound the critic; choose one".into(),
            ));
        }
        Ok(())
    }

    /// Number of values in one image.
    pub fn d_image(&self) -> usize {
        self.image.numel()
    }

    /// A short description, e.g. `dcgan 64-128, non-saturating, spectral norm`.
    pub fn variant(&self) -> String {
        let arch = match &self.architecture {
            GanArchitecture::Mlp { hidden } => format!("mlp {}", join(hidden)),
            GanArchitecture::Dcgan { channels, batch_norm } => {
                format!(
                    "dcgan {}{}",
                    join(channels),
                    if *batch_norm { " (G batch-norm)" } else { "" }
                )
            }
        };
        let mut s = format!("{arch}, {} loss", self.loss.name());
        if self.source_conditioned {
            s.insert_str(0, "source-conditioned (DAGAN) ");
        } else if self.n_classes.is_some() {
            s.insert_str(0, "conditional ");
        }
        if self.spectral_norm {
            s.push_str(", spectral norm");
        }
        if self.n_critic > 1 {
            s.push_str(&format!(", {} critic steps", self.n_critic));
        }
        if let Some(d) = self.ema {
            s.push_str(&format!(", EMA {d}"));
        }
        if let Some(a) = &self.augment {
            s.push_str(&format!(", DiffAugment ({})", a.describe()));
        }
        if self.real_shift > 0 {
            s.push_str(&format!(", real images shifted by up to {} px", self.real_shift));
        }
        s
    }

    /// Builds both networks.
    ///
    /// # Errors
    /// If [`GanConfig::validate`] fails.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<(Generator<B>, Discriminator<B>), ConfigError> {
        self.validate()?;
        let judge = GanConfig {
            image: self.discriminator_image(),
            ..self.clone()
        };
        Ok((Generator::new(self, device), Discriminator::new(&judge, device)))
    }
}

fn join(v: &[usize]) -> String {
    v.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_configurations_are_refused_with_their_reason() {
        let ok = GanConfig::dcgan(ImageShape::grey(28, 28));
        assert!(ok.validate().is_ok());
        let cases: Vec<(GanConfig, &str)> = vec![
            (
                GanConfig {
                    d_latent: 0,
                    ..ok.clone()
                },
                "d_latent",
            ),
            (
                GanConfig {
                    n_critic: 0,
                    ..ok.clone()
                },
                "n_critic",
            ),
            (
                GanConfig {
                    image: ImageShape::grey(30, 30),
                    ..ok.clone()
                },
                "divide by 4",
            ),
            (
                GanConfig {
                    n_classes: Some(1),
                    ..ok.clone()
                },
                "2 classes",
            ),
            (
                GanConfig {
                    real_shift: 28,
                    ..ok.clone()
                },
                "shift (28) must be smaller",
            ),
            (
                GanConfig {
                    ema: Some(1.0),
                    ..ok.clone()
                },
                "EMA",
            ),
            (
                GanConfig {
                    lr_discriminator: -1.0,
                    ..ok.clone()
                },
                "learning rate",
            ),
            (
                GanConfig {
                    loss: GanLoss::WassersteinGp { lambda: 0.0 },
                    ..ok.clone()
                },
                "lambda",
            ),
            (
                GanConfig {
                    loss: GanLoss::Wasserstein { clip: 0.01 },
                    spectral_norm: true,
                    ..ok.clone()
                },
                "choose one",
            ),
            (
                GanConfig {
                    architecture: GanArchitecture::Mlp { hidden: vec![] },
                    ..ok.clone()
                },
                "hidden layer",
            ),
            (
                GanConfig {
                    source_conditioned: true,
                    ..ok.clone()
                },
                "needs a conditional GAN",
            ),
            (
                GanConfig {
                    source_conditioned: true,
                    n_classes: Some(10),
                    architecture: GanArchitecture::Mlp { hidden: vec![32] },
                    ..ok.clone()
                },
                "DCGAN architecture",
            ),
            (
                GanConfig {
                    source_conditioned: true,
                    n_classes: Some(10),
                    real_shift: 2,
                    ..ok.clone()
                },
                "no real_shift",
            ),
        ];
        for (cfg, needle) in cases {
            let e = cfg.validate().expect_err(needle).to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        }
    }
}
