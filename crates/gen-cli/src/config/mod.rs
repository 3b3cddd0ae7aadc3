//! The run configuration: what `config.json` holds, built from a TOML file and/or flags
//! ([`flags`]), and turned into the model crates' configurations ([`model`]).

mod flags;
mod model;
#[cfg(test)]
mod tests;

pub use flags::TrainFlags;
pub use gen_data::splits::DataSpec;

use std::path::Path;

use anyhow::{Context, bail};
use clap::ValueEnum;
use gen_ae::ReconLoss;
use gen_core::nn::{Activation, ImageShape};
use gen_core::train::TrainConfig;
use gen_vae::Likelihood;
use serde::{Deserialize, Serialize};

/// Everything needed to rebuild a run's data and model, saved as the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run folder under the runs folder.
    #[serde(default)]
    pub name: Option<String>,
    /// The data and how it is split.
    #[serde(default)]
    pub data: DataSpec,
    /// The model.
    #[serde(default)]
    pub model: ModelSpec,
    /// The training loop.
    #[serde(default)]
    pub train: TrainConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: None,
            data: DataSpec::default(),
            model: ModelSpec::default(),
            train: TrainConfig::default()
                .with_num_epochs(60)
                .with_batch_size(64)
                .with_learning_rate(2e-3),
        }
    }
}

/// The model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// The undercomplete autoencoder.
    #[default]
    Ae,
    /// Sparse autoencoder with the KL penalty towards a mean activation `rho` (sigmoid code).
    SparseKl,
    /// Sparse autoencoder with an L1 activity penalty (ReLU code).
    SparseL1,
    /// Contractive autoencoder: a penalty on the encoder's Jacobian.
    Contractive,
    /// Denoising autoencoder: trained to reconstruct clean inputs from corrupted ones.
    Denoising,
    /// Variational autoencoder (β-VAE with `--beta`).
    Vae,
    /// Conditional VAE: the class label enters encoder and decoder.
    Cvae,
    /// Generative adversarial network (`--arch mlp` or `conv` for the DCGAN).
    Gan,
    /// Class-conditional GAN (one-hot label into the generator, projection discriminator).
    Cgan,
    /// 2x super-resolution (14x14 to 28x28 on MNIST): content loss plus an adversarial loss
    /// weighted by `--adversarial-weight` (0: the content loss alone).
    Sr,
    /// The evaluation classifier (a small CNN) that judges generated images.
    Classifier,
    /// Semi-supervised GAN (Salimans et al., 2016): a discriminator that classifies, trained on
    /// `--labels` labelled training images and all of them unlabelled, against a generator
    /// trained by feature matching.
    Ssgan,
}

impl Family {
    /// The name used in run names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ae => "ae",
            Family::SparseKl => "sparse-kl",
            Family::SparseL1 => "sparse-l1",
            Family::Contractive => "contractive",
            Family::Denoising => "denoising",
            Family::Vae => "vae",
            Family::Cvae => "cvae",
            Family::Gan => "gan",
            Family::Cgan => "cgan",
            Family::Sr => "sr",
            Family::Classifier => "classifier",
            Family::Ssgan => "ssgan",
        }
    }

    /// Whether `gen-gan` trains the family (GANs, super-resolution, the evaluation classifier).
    pub fn is_gan_crate(self) -> bool {
        matches!(
            self,
            Family::Gan | Family::Cgan | Family::Sr | Family::Classifier | Family::Ssgan
        )
    }

    /// Whether `gen train --workers` trains the family on several workers: the GANs, plain
    /// and conditional (not super-resolution and the classifier).
    pub fn is_data_parallel_gan(self) -> bool {
        matches!(self, Family::Gan | Family::Cgan)
    }

    /// Whether the family is a variational autoencoder.
    pub fn is_vae(self) -> bool {
        matches!(self, Family::Vae | Family::Cvae)
    }

    /// The default penalty weight (β or λ), relative to the mean-per-value reconstruction loss.
    pub fn default_weight(self) -> f64 {
        match self {
            Family::SparseKl => 1e-2,
            Family::SparseL1 => 1e-3,
            Family::Contractive => 1e-3,
            _ => 0.0,
        }
    }
}

/// MLP or convolutional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Dense layers.
    #[default]
    Mlp,
    /// Stride-2 convolutions (image data sets only).
    Conv,
}

/// The model, independent of the data's width (filled in when the data is loaded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// The family.
    pub family: Family,
    /// MLP or convolutional.
    pub arch: Arch,
    /// Hidden widths of an MLP encoder, input side first.
    pub hidden: Vec<usize>,
    /// Channels of a convolutional encoder, input side first.
    pub channels: Vec<usize>,
    /// Width of the code.
    pub latent: usize,
    /// Reconstruction loss.
    pub loss: ReconLoss,
    /// The autoencoder's linear path started at PCA's solution (`gen_ae`'s `pca_path`): none
    /// (the default) turns it on wherever it applies (the ae family's MLP autoencoders with the
    /// MSE loss), `true` requires it, `false` turns it off.
    pub pca_path: Option<bool>,
    /// Hidden activation.
    pub activation: Activation,
    /// Target mean activation of a sparse-kl code.
    pub rho: f64,
    /// Weight of the penalty (β of sparse-kl, λ of sparse-l1 and contractive); default per family.
    pub weight: Option<f64>,
    /// Random projections for the contractive penalty (none: exact).
    pub projections: Option<usize>,
    /// Training corruption, e.g. `gaussian:0.3`, `masking:0.25`, `salt-pepper:0.1`; the denoising
    /// family defaults to `gaussian:0.3`, and other families may use it too.
    pub noise: Option<String>,
    /// KL weight β of a VAE (1: the ELBO).
    pub beta: f64,
    /// KL warm-up of a VAE, in epochs.
    pub kl_warmup: Option<usize>,
    /// A VAE's decoder distribution: `bernoulli`, `gaussian`, `gaussian:VARIANCE` or
    /// `gaussian-learned` (default: bernoulli for data in [0, 1], gaussian for standardised tables).
    pub likelihood: Option<String>,
    /// Dynamic binarisation of a Bernoulli VAE's batches (default: on for image data sets).
    pub binarize: Option<bool>,
    /// A GAN's adversarial loss: `minimax`, `non-saturating` (default), `hinge`,
    /// `wasserstein[:CLIP]` or `wgan-gp[:LAMBDA]`.
    pub gan_loss: Option<String>,
    /// Spectral normalisation of a GAN discriminator's layers (a super-resolution model's
    /// discriminator always has it, except with the clipped Wasserstein loss).
    pub spectral_norm: bool,
    /// Discriminator steps per generator step.
    pub n_critic: usize,
    /// The discriminator's learning rate (default: the training rate).
    pub lr_d: Option<f64>,
    /// Decay of the moving average of the generator's weights (e.g. 0.999); none by default.
    pub ema: Option<f64>,
    /// Batch normalisation in a DCGAN generator.
    pub batch_norm: bool,
    /// DiffAugment of the GAN discriminator's input: none (default), standard, or
    /// `translation[:PIXELS],cutout[:PIXELS]`.
    pub diff_augment: Option<String>,
    /// Largest random shift, in pixels, of the real images a GAN's discriminator sees (0,
    /// the default: none); unlike DiffAugment, the generator learns to draw shifted images.
    pub real_shift: usize,
    /// A source-conditioned (DAGAN) generator for the cgan family: it varies a real training
    /// image of the class, and the discriminator judges (source, image) pairs.
    pub dagan: bool,
    /// Weight of a super-resolution model's adversarial loss (default 0.01; 0: content alone).
    pub adversarial_weight: Option<f64>,
    /// A super-resolution model's content loss: `l1` (default) or `mse`.
    pub content: Option<String>,
    /// Labelled training images of a semi-supervised GAN (ssgan): a class-balanced subset
    /// chosen by the training seed (default 100).
    pub labels: Option<usize>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            family: Family::Ae,
            arch: Arch::Mlp,
            hidden: vec![256, 128],
            channels: vec![16, 32],
            latent: 8,
            loss: ReconLoss::Mse,
            pca_path: None,
            activation: Activation::Relu,
            rho: 0.05,
            weight: None,
            projections: None,
            noise: None,
            beta: 1.0,
            kl_warmup: None,
            likelihood: None,
            binarize: None,
            gan_loss: None,
            spectral_norm: false,
            n_critic: 1,
            lr_d: None,
            ema: None,
            batch_norm: true,
            diff_augment: None,
            real_shift: 0,
            dagan: false,
            adversarial_weight: None,
            content: None,
            labels: None,
        }
    }
}

impl RunConfig {
    /// Checks everything that can be checked before the data is loaded.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.train.validate().context("in [train]")?;
        let d = &self.data;
        for (name, v) in [("valid_fraction", d.valid_fraction), ("test_fraction", d.test_fraction)] {
            if !(v > 0.0 && v < 1.0) {
                bail!("in [data]: {name} must be in (0, 1), got {v}");
            }
        }
        if d.limit == Some(0) {
            bail!("in [data]: limit must be > 0, got 0");
        }
        gen_data::splits::DataSource::parse(&d.dataset)?;
        if self.model.latent == 0 {
            bail!("in [model]: latent must be > 0, got 0");
        }
        self.model.noise().context("in [model]")?;
        if self.model.family.is_vae() {
            if !(self.model.beta.is_finite() && self.model.beta >= 0.0) {
                bail!("in [model]: beta must be finite and >= 0, got {}", self.model.beta);
            }
            if let Some(l) = &self.model.likelihood {
                l.parse::<Likelihood>().context("in [model]")?;
            }
            // Validation uses the full β, so its loss can rise while the KL weight ramps up:
            // early stopping must not judge the run before the warm-up is over.
            if let (Some(p), Some(w)) = (self.train.patience, self.model.kl_warmup)
                && p <= w
            {
                bail!(
                    "patience ({p} epochs) must exceed the KL warm-up ({w} epochs): validation uses the full \
                     beta, so its loss may rise while the warm-up runs"
                );
            }
        }
        if let Some(n) = self.model.labels {
            if self.model.family != Family::Ssgan {
                bail!("in [model]: labels applies to the semi-supervised GAN (ssgan) only");
            }
            if n < 2 {
                bail!("in [model]: labels must be at least 2 (one per class at the least), got {n}");
            }
        }
        if self.model.family == Family::Ssgan && self.model.arch != Arch::Mlp {
            bail!("in [model]: the semi-supervised GAN is an MLP (the paper's permutation-invariant networks)");
        }
        if self.model.family.is_gan_crate() {
            let m = &self.model;
            if let Some(l) = &m.gan_loss {
                l.parse::<gen_gan::GanLoss>()
                    .map_err(anyhow::Error::msg)
                    .context("in [model]")?;
            }
            if let Some(a) = &m.diff_augment {
                // The sizes are checked against the image once the data is loaded.
                gen_gan::DiffAugment::parse(a, ImageShape::grey(28, 28))
                    .map_err(anyhow::Error::msg)
                    .context("in [model]")?;
            }
            if m.n_critic == 0 {
                bail!("in [model]: n_critic must be > 0, got 0");
            }
            if let Some(v) = m.lr_d
                && !(v.is_finite() && v > 0.0)
            {
                bail!("in [model]: lr_d must be positive and finite, got {v}");
            }
            if let Some(v) = m.ema
                && !(0.0..1.0).contains(&v)
            {
                bail!("in [model]: ema must lie in [0, 1), got {v}");
            }
            if let Some(v) = m.adversarial_weight
                && !(v.is_finite() && v >= 0.0)
            {
                bail!("in [model]: adversarial_weight must be finite and >= 0, got {v}");
            }
            m.content_loss().context("in [model]")?;
            // Settings the other kind of adversarial training would silently ignore.
            if m.family == Family::Ssgan {
                let gan_only = [
                    ("gan_loss", m.gan_loss.is_some()),
                    ("diff_augment", m.diff_augment.is_some()),
                    ("real_shift", m.real_shift > 0),
                    ("dagan", m.dagan),
                    ("spectral_norm", m.spectral_norm),
                    ("n_critic", m.n_critic != 1),
                    ("lr_d", m.lr_d.is_some()),
                ];
                if let Some((name, _)) = gan_only.iter().find(|(_, set)| *set) {
                    bail!(
                        "in [model]: {name} applies to GAN training (gan, cgan), not to the semi-supervised GAN (ssgan)"
                    );
                }
            }
            if m.family == Family::Sr {
                let gan_only = [
                    ("ema", m.ema.is_some()),
                    ("diff_augment", m.diff_augment.is_some()),
                    ("real_shift", m.real_shift > 0),
                    ("dagan", m.dagan),
                ];
                if let Some((name, _)) = gan_only.iter().find(|(_, set)| *set) {
                    bail!("in [model]: {name} applies to GAN training (gan, cgan), not to super-resolution (sr)");
                }
            } else {
                let sr_only = [
                    ("adversarial_weight", m.adversarial_weight.is_some()),
                    ("content", m.content.is_some()),
                ];
                if let Some((name, _)) = sr_only.iter().find(|(_, set)| *set) {
                    bail!("in [model]: {name} applies to super-resolution (sr) only");
                }
            }
        }
        self.model
            .regularizer()
            .validate(if self.model.family == Family::SparseKl {
                Activation::Sigmoid
            } else {
                Activation::Identity
            })
            .context("in [model]")?;
        Ok(())
    }

    /// The run's name: as given, or `FAMILY-ARCH-DATASET-zLATENT`.
    pub fn run_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let data = gen_data::splits::DataSource::parse(&self.data.dataset)
                .map(|s| s.short_name())
                .unwrap_or_else(|_| "data".into());
            let family = self.model.family.name();
            match self.model.family {
                Family::Classifier => return format!("classifier-{data}"),
                Family::Sr => return format!("sr-{data}-adv{}", self.model.adversarial_weight.unwrap_or(0.01)),
                Family::Ssgan => return format!("ssgan-{data}-labels{}", self.model.labels_or_default()),
                _ => {}
            }
            let arch = format!("{:?}", self.model.arch).to_lowercase();
            format!("{family}-{arch}-{data}-z{}", self.model.latent)
        })
    }
}

fn load_toml(path: &Path) -> anyhow::Result<RunConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}
