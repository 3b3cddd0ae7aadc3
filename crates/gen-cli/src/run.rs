//! A run folder as the commands see it: the options that name one, what its `config.json`
//! holds, and the training job that creates or continues one.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use gen_ae::AutoencoderConfig;
use gen_core::train::RunDir;
use gen_vae::VaeConfig;
use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::config::RunConfig;
use crate::data::SplitChoice;

/// Options shared by the commands that read a finished run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run folder (e.g. runs/ae-mlp-digits-z8).
    #[arg(long)]
    pub run: PathBuf,
    /// Folder with the MNIST-style data sets (default: $GEN_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Which split to encode.
    #[arg(long, value_enum, default_value_t = SplitChoice::Test)]
    pub split: SplitChoice,
    /// Output CSV (default: RUN/codes-SPLIT.csv); a .npy file with the same stem is written beside it.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// What `config.json` holds: the run configuration and the resolved model configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredConfig {
    /// The run configuration as given (file and flags).
    pub run: RunConfig,
    /// The autoencoder's configuration with the data's width filled in (autoencoder runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoencoder: Option<AutoencoderConfig>,
    /// The VAE's configuration with the data's width filled in (VAE runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<VaeConfig>,
    /// The GAN's configuration (GAN runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan: Option<gen_gan::GanConfig>,
    /// The super-resolution model and its discriminator (super-resolution runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sr: Option<(gen_gan::sr::SrConfig, gen_gan::GanConfig)>,
    /// The evaluation classifier's configuration (classifier runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<gen_gan::classifier::ClassifierConfig>,
    /// The semi-supervised GAN's networks (ssgan runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssgan: Option<gen_gan::ssgan::SsganConfig>,
    /// The backend it was trained on.
    pub backend: BackendChoice,
    /// The safetensors file `gen import` read the weights from (imported runs have no
    /// optimizer state or metrics: they are used as they are, never continued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<PathBuf>,
    /// The gen version that wrote it.
    pub gen_version: String,
}

impl StoredConfig {
    /// The stored form of a run about to be trained by this build of gen.
    pub fn new(run: RunConfig, autoencoder: AutoencoderConfig, backend: BackendChoice) -> Self {
        Self {
            autoencoder: Some(autoencoder),
            ..Self::bare(run, backend)
        }
    }

    /// A stored form naming no model yet.
    pub fn bare(run: RunConfig, backend: BackendChoice) -> Self {
        Self {
            run,
            autoencoder: None,
            vae: None,
            gan: None,
            sr: None,
            classifier: None,
            ssgan: None,
            backend,
            imported_from: None,
            gen_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// What kind of model the run holds, for messages.
    pub fn kind(&self) -> &'static str {
        if self.vae.is_some() {
            "a VAE"
        } else if self.gan.is_some() {
            "a GAN"
        } else if self.sr.is_some() {
            "a super-resolution model"
        } else if self.classifier.is_some() {
            "the evaluation classifier"
        } else if self.ssgan.is_some() {
            "a semi-supervised GAN"
        } else {
            "an autoencoder"
        }
    }

    /// The stored form of a VAE run about to be trained by this build of gen.
    pub fn for_vae(run: RunConfig, vae: VaeConfig, backend: BackendChoice) -> Self {
        Self {
            vae: Some(vae),
            ..Self::bare(run, backend)
        }
    }

    /// Whether the run holds a VAE.
    pub fn is_vae(&self) -> bool {
        self.vae.is_some()
    }

    /// Whether the run holds a model of gen-gan: a GAN, a super-resolution model or the
    /// evaluation classifier.
    pub fn is_gan_crate(&self) -> bool {
        self.gan.is_some() || self.sr.is_some() || self.classifier.is_some() || self.ssgan.is_some()
    }

    /// The autoencoder's configuration, or an error naming the run for a VAE run.
    pub fn ae_config(&self, root: &Path) -> anyhow::Result<&AutoencoderConfig> {
        match &self.autoencoder {
            Some(c) => Ok(c),
            None if self.vae.is_some() => bail!(
                "{} holds a VAE; this command needs an autoencoder run (VAEs have gen eval, encode, \
                 sample, interpolate and traverse)",
                root.display()
            ),
            None if self.is_gan_crate() => bail!(
                "{} holds {}; this command needs an autoencoder run (GANs have gen eval, sample and \
                 augment; super-resolution models gen eval and upscale)",
                root.display(),
                self.kind()
            ),
            None => bail!("{}/config.json names no model", root.display()),
        }
    }
}

/// Reads a run folder's `config.json`.
pub(crate) fn read_stored(root: &Path) -> anyhow::Result<(StoredConfig, RunDir)> {
    let run = RunDir::open(root)?;
    let stored: StoredConfig = run.read_config()?;
    Ok((stored, run))
}

pub(crate) struct TrainJob {
    pub cfg: RunConfig,
    pub root: PathBuf,
    pub force: bool,
    pub resume: bool,
    pub data_dir: PathBuf,
    pub backend: BackendChoice,
    /// Data-parallel workers (`--workers`); 1 trains on this thread alone.
    pub workers: usize,
}

impl TrainJob {
    /// The run folder: created for `stored` (refusing to overwrite without `--force`), or
    /// opened and its `config.json` rewritten when resuming.
    pub(crate) fn open_run(&self, stored: &StoredConfig) -> anyhow::Result<RunDir> {
        if self.resume {
            let run = RunDir::open(&self.root)?;
            run.write_config(stored)?;
            Ok(run)
        } else {
            Ok(RunDir::create(&self.root, stored, self.force)?)
        }
    }
}
