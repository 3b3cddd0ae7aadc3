//! The run configuration: what `config.json` holds, built from a TOML file and/or flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use gen_ae::{Architecture, AutoencoderConfig, ReconLoss, Regularizer};
use gen_core::nn::{Activation, ImageShape};
use gen_core::noise::Noise;
use gen_core::train::{LrSchedule, TrainConfig};
use gen_vae::{Architecture as VaeArchitecture, Likelihood, VaeConfig};
use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;

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

/// Which data set, and how it is split into training, validation and test parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    /// `digits` (embedded), `mnist`, `fashion-mnist`, or `csv:PATH`.
    pub dataset: String,
    /// Share of the training rows held out for validation.
    pub valid_fraction: f64,
    /// Share of the rows held out for testing, for data sets without an official test split.
    pub test_fraction: f64,
    /// Seed of those splits (kept apart from the training seed, so the test set never moves).
    pub split_seed: u64,
    /// Use only the first N training rows (quick experiments).
    pub limit: Option<usize>,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            dataset: "digits".into(),
            valid_fraction: 0.1,
            test_fraction: 0.2,
            split_seed: 0,
            limit: None,
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
        }
    }

    /// Whether `gen-gan` trains the family (GANs, super-resolution, the evaluation classifier).
    pub fn is_gan_crate(self) -> bool {
        matches!(self, Family::Gan | Family::Cgan | Family::Sr | Family::Classifier)
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
        }
    }
}

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
            | Family::Classifier => Regularizer::None,
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
        };
        Ok(base.with_regularizer(self.regularizer()))
    }
}

/// Flags of `gen train`; each one overrides the configuration file.
#[derive(Debug, Args)]
pub struct TrainFlags {
    /// TOML file with a run configuration (tables data, model and train).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run name (default: derived from model and data set).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder of run folders.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Overwrite an existing run folder of the same name.
    #[arg(long)]
    pub force: bool,
    /// Continue an existing run (`--name`) from its last checkpoint, up to `--epochs`.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
    /// Folder with the MNIST-style data sets (default: $GEN_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Data set: digits (embedded), mnist, fashion-mnist, or csv:PATH.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Use only the first N training rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Model family.
    #[arg(long, value_enum)]
    pub model: Option<Family>,
    /// Encoder and decoder architecture.
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Hidden widths of an MLP, comma-separated (e.g. 256,128).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Channels of a convolutional encoder, comma-separated (e.g. 16,32).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<usize>>,
    /// Width of the code.
    #[arg(long)]
    pub latent: Option<usize>,
    /// Reconstruction loss: mse or bce.
    #[arg(long)]
    pub loss: Option<String>,
    /// Hidden activation: relu, leaky_relu, sigmoid, tanh, softplus.
    #[arg(long)]
    pub activation: Option<Activation>,
    /// Target mean activation of a sparse-kl code (default 0.05).
    #[arg(long)]
    pub rho: Option<f64>,
    /// Penalty weight: β of sparse-kl (default 0.01), λ of sparse-l1 and contractive (0.001).
    #[arg(long, allow_negative_numbers = true)]
    pub weight: Option<f64>,
    /// Estimate the contractive penalty from this many random projections instead of exactly.
    #[arg(long)]
    pub projections: Option<usize>,
    /// Training corruption: gaussian:SIGMA, masking:FRACTION or salt-pepper:FRACTION
    /// (the denoising model defaults to gaussian:0.3).
    #[arg(long)]
    pub noise: Option<String>,
    /// KL weight β of a VAE (default 1, the ELBO; other values give a β-VAE).
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// KL warm-up of a VAE: the KL weight grows linearly to β over this many epochs.
    #[arg(long)]
    pub kl_warmup: Option<usize>,
    /// A VAE's decoder distribution: bernoulli, gaussian, gaussian:VARIANCE or gaussian-learned.
    #[arg(long)]
    pub likelihood: Option<String>,
    /// Dynamic binarisation of a Bernoulli VAE's batches: true or false (default: true for images).
    #[arg(long)]
    pub binarize: Option<bool>,
    /// A GAN's loss: minimax, non-saturating (default), hinge, `wasserstein[:CLIP]` or
    /// `wgan-gp[:LAMBDA]`.
    #[arg(long)]
    pub gan_loss: Option<String>,
    /// Spectral normalisation of the GAN discriminator's layers: true or false.
    #[arg(long)]
    pub spectral_norm: Option<bool>,
    /// Discriminator steps per generator step (default 1).
    #[arg(long)]
    pub n_critic: Option<usize>,
    /// The GAN discriminator's Adam learning rate (default: --lr).
    #[arg(long, allow_negative_numbers = true)]
    pub lr_d: Option<f64>,
    /// Moving average of the generator's weights with this decay (e.g. 0.999).
    #[arg(long, allow_negative_numbers = true)]
    pub ema: Option<f64>,
    /// Batch normalisation in a DCGAN generator: true (default) or false.
    #[arg(long)]
    pub batch_norm: Option<bool>,
    /// Differentiable augmentation of everything a GAN's discriminator sees (for small data
    /// sets): none (default), standard (translation by 1/8 of the side, cutout of half), or
    /// `translation[:PIXELS],cutout[:PIXELS]`.
    #[arg(long)]
    pub diff_augment: Option<String>,
    /// Randomly shift each real image a GAN's discriminator sees by up to N pixels (default 0:
    /// none): augments the training set itself, so the generator learns to draw shifted images
    /// and its samples carry that variety.
    #[arg(long)]
    pub real_shift: Option<usize>,
    /// A source-conditioned generator (DAGAN; cgan only, conv only): it varies a real
    /// training image of the class, its source, instead of drawing from noise alone, and the
    /// discriminator judges (source, image) pairs against (source, another image of the class).
    /// Sampling it reads the run's training images.
    #[arg(long)]
    pub dagan: Option<bool>,
    /// Weight of the super-resolution model's adversarial loss (default 0.01; 0: content alone).
    #[arg(long, allow_negative_numbers = true)]
    pub adversarial_weight: Option<f64>,
    /// The super-resolution model's content loss: l1 (default) or mse.
    #[arg(long)]
    pub content: Option<String>,
    /// Number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Seed of initialisation, shuffling and every random draw.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long)]
    pub patience: Option<usize>,
    /// L2 weight decay added to the gradients (default 0).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule: constant, cosine (annealed to 1 % of --lr by the last step) or
    /// cosine:FRACTION.
    #[arg(long)]
    pub lr_schedule: Option<String>,
}

impl TrainFlags {
    /// The configuration: the file's (or the defaults), then every flag given.
    pub fn resolve(&self) -> anyhow::Result<RunConfig> {
        let mut cfg = match &self.config {
            Some(path) => load_toml(path)?,
            None => RunConfig::default(),
        };
        if let Some(v) = &self.name {
            cfg.name = Some(v.clone());
        }
        if let Some(v) = &self.dataset {
            cfg.data.dataset = v.clone();
        }
        if self.limit.is_some() {
            cfg.data.limit = self.limit;
        }
        let m = &mut cfg.model;
        if let Some(v) = self.model {
            m.family = v;
        }
        if let Some(v) = self.arch {
            m.arch = v;
        }
        if let Some(v) = &self.hidden {
            m.hidden = v.clone();
        }
        if let Some(v) = &self.channels {
            m.channels = v.clone();
        }
        if let Some(v) = self.latent {
            m.latent = v;
        }
        if let Some(v) = &self.loss {
            m.loss = match v.as_str() {
                "mse" => ReconLoss::Mse,
                "bce" => ReconLoss::Bce,
                other => bail!("unknown loss {other:?}; expected mse or bce"),
            };
        }
        if let Some(v) = self.activation {
            m.activation = v;
        }
        if let Some(v) = self.rho {
            m.rho = v;
        }
        if self.weight.is_some() {
            m.weight = self.weight;
        }
        if self.projections.is_some() {
            m.projections = self.projections;
        }
        if self.noise.is_some() {
            m.noise = self.noise.clone();
        }
        if let Some(v) = self.beta {
            m.beta = v;
        }
        if self.kl_warmup.is_some() {
            m.kl_warmup = self.kl_warmup;
        }
        if self.likelihood.is_some() {
            m.likelihood = self.likelihood.clone();
        }
        if self.binarize.is_some() {
            m.binarize = self.binarize;
        }
        if self.gan_loss.is_some() {
            m.gan_loss = self.gan_loss.clone();
        }
        if let Some(v) = self.spectral_norm {
            m.spectral_norm = v;
        }
        if let Some(v) = self.n_critic {
            m.n_critic = v;
        }
        if self.lr_d.is_some() {
            m.lr_d = self.lr_d;
        }
        if self.ema.is_some() {
            m.ema = self.ema;
        }
        if let Some(v) = self.batch_norm {
            m.batch_norm = v;
        }
        if self.diff_augment.is_some() {
            m.diff_augment = self.diff_augment.clone();
        }
        if let Some(v) = self.real_shift {
            m.real_shift = v;
        }
        if let Some(v) = self.dagan {
            m.dagan = v;
        }
        if self.adversarial_weight.is_some() {
            m.adversarial_weight = self.adversarial_weight;
        }
        if self.content.is_some() {
            m.content = self.content.clone();
        }
        let adversarial = matches!(m.family, Family::Gan | Family::Cgan | Family::Sr);
        let t = &mut cfg.train;
        // Without a configuration file, adversarial training starts from DCGAN's Adam settings
        // (rate 2e-4, β₁ = 0.5) rather than the autoencoders' defaults.
        if adversarial && self.config.is_none() {
            t.learning_rate = 2e-4;
            t.beta_1 = 0.5;
        }
        if let Some(v) = self.epochs {
            t.num_epochs = v;
        }
        if let Some(v) = self.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = self.lr {
            t.learning_rate = v;
        }
        if let Some(v) = self.seed {
            t.seed = v;
        }
        if self.patience.is_some() {
            t.patience = self.patience;
        }
        if let Some(v) = self.weight_decay {
            t.weight_decay = v;
        }
        if let Some(v) = &self.lr_schedule {
            t.lr_schedule = v.parse::<LrSchedule>()?;
        }
        cfg.validate()?;
        Ok(cfg)
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
        crate::data::DataSource::parse(&d.dataset)?;
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
            let data = crate::data::DataSource::parse(&self.data.dataset)
                .map(|s| s.short_name())
                .unwrap_or_else(|_| "data".into());
            let family = self.model.family.name();
            match self.model.family {
                Family::Classifier => return format!("classifier-{data}"),
                Family::Sr => return format!("sr-{data}-adv{}", self.model.adversarial_weight.unwrap_or(0.01)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        flags: TrainFlags,
    }

    fn flags(args: &[&str]) -> TrainFlags {
        Wrap::parse_from(std::iter::once("gen").chain(args.iter().copied())).flags
    }

    #[test]
    fn the_readme_example_configuration_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n").expect("a toml block") + 8;
        let end = start + readme[start..].find("```").unwrap();
        let cfg: RunConfig = toml::from_str(&readme[start..end]).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.train.lr_schedule, LrSchedule::Cosine { final_fraction: 0.01 });
        let cfg = flags(&["--model", "vae", "--lr-schedule", "cosine:0.1", "--beta", "2"])
            .resolve()
            .unwrap();
        assert_eq!(cfg.train.lr_schedule, LrSchedule::Cosine { final_fraction: 0.1 });
        assert_eq!(cfg.model.beta, 2.0);
        assert!(flags(&["--lr-schedule", "linear"]).resolve().is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "name = \"x\"\n[data]\ndataset = \"mnist\"\n[model]\narch = \"conv\"\nlatent = 16\n[train]\nnum_epochs = 3\n",
        )
        .unwrap();
        let cfg = flags(&["--config", path.to_str().unwrap(), "--latent", "4", "--lr", "0.01"])
            .resolve()
            .unwrap();
        assert_eq!(cfg.name.as_deref(), Some("x"));
        assert_eq!(cfg.data.dataset, "mnist");
        assert_eq!(cfg.model.arch, Arch::Conv);
        assert_eq!(cfg.model.latent, 4);
        assert_eq!(cfg.train.num_epochs, 3);
        assert_eq!(cfg.train.learning_rate, 0.01);
    }

    #[test]
    fn nonsense_is_rejected_with_the_field_named() {
        let e = flags(&["--lr", "-1"]).resolve().unwrap_err();
        assert!(format!("{e:#}").contains("learning_rate"), "{e:#}");
        let e = flags(&["--dataset", "cifar"]).resolve().unwrap_err();
        assert!(e.to_string().contains("cifar"), "{e}");
        let e = flags(&["--latent", "0"]).resolve().unwrap_err();
        assert!(e.to_string().contains("latent"), "{e}");
        let e = flags(&["--model", "cgan", "--diff-augment", "colour"])
            .resolve()
            .unwrap_err();
        assert!(format!("{e:#}").contains("unknown augmentation \"colour\""), "{e:#}");
        let cfg = flags(&[
            "--model",
            "cgan",
            "--diff-augment",
            "translation:2",
            "--real-shift",
            "2",
        ])
        .resolve()
        .unwrap();
        let gan = cfg.model.gan(ImageShape::grey(28, 28), Some(10), 2e-4).unwrap();
        assert_eq!(gan.real_shift, 2);
        let e = flags(&["--model", "cgan", "--real-shift", "28"])
            .resolve()
            .unwrap()
            .model
            .gan(ImageShape::grey(28, 28), Some(10), 2e-4)
            .unwrap_err();
        assert!(format!("{e:#}").contains("shift (28)"), "{e:#}");
        let dagan = |arch: &str| {
            flags(&["--model", "cgan", "--arch", arch, "--dagan", "true"])
                .resolve()
                .unwrap()
                .model
                .gan(ImageShape::grey(28, 28), Some(10), 2e-4)
        };
        assert!(dagan("conv").unwrap().source_conditioned);
        let e = dagan("mlp").unwrap_err();
        assert!(format!("{e:#}").contains("DCGAN architecture"), "{e:#}");
        assert_eq!(
            gan.augment,
            Some(gen_gan::DiffAugment {
                translation: 2,
                cutout: 0
            })
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[model]\nlatnet = 3\n").unwrap();
        let e = flags(&["--config", path.to_str().unwrap()]).resolve().unwrap_err();
        assert!(format!("{e:#}").contains("latnet"), "{e:#}");
    }

    #[test]
    fn settings_the_other_adversarial_kind_ignores_are_refused() {
        for (args, name) in [
            (["--model", "sr", "--ema", "0.99"], "ema applies to GAN training"),
            (
                ["--model", "sr", "--diff-augment", "translation:2"],
                "diff_augment applies to GAN",
            ),
            (["--model", "sr", "--real-shift", "1"], "real_shift applies to GAN"),
            (
                ["--model", "cgan", "--adversarial-weight", "0.1"],
                "adversarial_weight applies to super-resolution",
            ),
            (
                ["--model", "gan", "--content", "mse"],
                "content applies to super-resolution",
            ),
        ] {
            let e = flags(&args).resolve().unwrap_err();
            assert!(format!("{e:#}").contains(name), "{args:?}: {e:#}");
        }
        let sr = flags(&["--model", "sr", "--n-critic", "2", "--content", "mse"])
            .resolve()
            .unwrap();
        assert_eq!(sr.model.n_critic, 2);
    }

    #[test]
    fn default_name_describes_the_run() {
        assert_eq!(flags(&[]).resolve().unwrap().run_name(), "ae-mlp-digits-z8");
        let cfg = flags(&["--model", "sparse-kl", "--latent", "96"]).resolve().unwrap();
        assert_eq!(cfg.run_name(), "sparse-kl-mlp-digits-z96");
    }

    #[test]
    fn families_map_to_penalties_and_noise() {
        let cfg = flags(&["--model", "sparse-kl", "--rho", "0.1", "--latent", "96"])
            .resolve()
            .unwrap();
        let ae = cfg.model.autoencoder(64, None, false).unwrap();
        assert_eq!(ae.regularizer, Regularizer::SparseKl { rho: 0.1, beta: 1e-2 });
        assert_eq!(ae.latent_activation, Activation::Sigmoid);
        ae.validate().unwrap();
        let cfg = flags(&["--model", "contractive", "--weight", "0.5", "--projections", "4"])
            .resolve()
            .unwrap();
        assert_eq!(
            cfg.model.regularizer(),
            Regularizer::Contractive {
                lambda: 0.5,
                projections: Some(4)
            }
        );
        let cfg = flags(&["--model", "denoising"]).resolve().unwrap();
        assert_eq!(cfg.model.noise().unwrap(), Some(Noise::Gaussian { sigma: 0.3 }));
        let cfg = flags(&["--model", "denoising", "--noise", "masking:0.4"])
            .resolve()
            .unwrap();
        assert_eq!(cfg.model.noise().unwrap(), Some(Noise::Masking { fraction: 0.4 }));
        let e = flags(&["--noise", "masking:4"]).resolve().unwrap_err();
        assert!(format!("{e:#}").contains("in [0, 1]"), "{e:#}");
        let e = flags(&["--model", "sparse-kl", "--rho", "2"]).resolve().unwrap_err();
        assert!(format!("{e:#}").contains("rho"), "{e:#}");
        let e = flags(&["--model", "contractive", "--weight", "-1"])
            .resolve()
            .unwrap_err();
        assert!(format!("{e:#}").contains("lambda"), "{e:#}");
    }
}
