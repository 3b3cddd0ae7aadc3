//! The flags of `gen train`, each overriding the configuration file.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use gen_ae::ReconLoss;
use gen_core::nn::Activation;
use gen_core::train::LrSchedule;

use crate::backend::BackendChoice;

use super::{Arch, Family, RunConfig, load_toml};

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
    /// Data-parallel workers in this process (autoencoders and VAEs): each trains on its share
    /// of every batch and burn-collective sums the gradients before every step.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
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
    /// The autoencoder's linear path started at PCA's solution, so that training starts from
    /// PCA (default: on for the ae family's MLP autoencoders with the MSE loss; in `gen anomaly`
    /// only on image sets scored by the reconstruction error).
    #[arg(long)]
    pub pca_path: Option<bool>,
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
    /// Labelled training images of a semi-supervised GAN (ssgan), class-balanced and chosen
    /// by --seed (default 100); the other training images are used without their labels.
    #[arg(long)]
    pub labels: Option<usize>,
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
        if let Some(v) = self.pca_path {
            m.pca_path = Some(v);
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
        if self.labels.is_some() {
            m.labels = self.labels;
        }
        let adversarial = matches!(m.family, Family::Gan | Family::Cgan | Family::Sr);
        let t = &mut cfg.train;
        // Without a configuration file, adversarial training starts from DCGAN's Adam settings
        // (rate 2e-4, β₁ = 0.5) rather than the autoencoders' defaults.
        if adversarial && self.config.is_none() {
            t.learning_rate = 2e-4;
            t.beta_1 = 0.5;
        }
        // The semi-supervised GAN's reference settings: Adam at 3e-3 with β₁ = 0.5, batches
        // of 100.
        if m.family == Family::Ssgan && self.config.is_none() {
            t.learning_rate = 3e-3;
            t.beta_1 = 0.5;
            t.batch_size = 100;
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
