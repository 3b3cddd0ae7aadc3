//! The commands that dispatch on the kind of run: train, eval, encode and sample pick the model
//! family's module; and download.

use std::path::PathBuf;

use anyhow::bail;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use gen_core::train::RunDir;

use crate::backend::{Job, with_backend};
use crate::config::TrainFlags;
use crate::data::data_dir;
use crate::run::{EncodeArgs, RunArgs, StoredConfig, TrainJob, read_stored};
use crate::{ae, gan, vae};

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub vae: vae::VaeEvalFlags,
    #[command(flatten)]
    pub gan: gan::GanEvalFlags,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// mnist or fashion-mnist.
    pub dataset: String,
    /// Folder to download into (default: $GEN_DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Mirror to fetch `<file>.gz` from instead of the default.
    #[arg(long)]
    pub base_url: Option<String>,
}

impl Job for TrainJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        if self.cfg.model.family.is_vae() {
            vae::train::<B>(self, device)
        } else if self.cfg.model.family.is_gan_crate() {
            gan::train::<B>(self, device)
        } else {
            ae::train::<B>(self, device)
        }
    }
}

/// `gen train`.
pub fn train(flags: TrainFlags) -> anyhow::Result<()> {
    let data_dir = data_dir(flags.data_dir.as_deref());
    if flags.resume && flags.workers > 1 {
        // The other workers would start from the initial weights, not the checkpoint.
        bail!("--resume continues a run on one worker; leave out --workers");
    }
    let (cfg, root) = if flags.resume {
        let Some(name) = &flags.name else {
            bail!("--resume needs --name of the run to continue")
        };
        let root = flags.runs_dir.join(name);
        let stored: StoredConfig = RunDir::open(&root)?.read_config()?;
        if let Some(file) = &stored.imported_from {
            bail!(
                "{} was imported from {}: it holds weights but no optimizer state or training position, \
                 so it cannot be resumed (train a new run, or export the weights as a starting point \
                 elsewhere)",
                root.display(),
                file.display()
            );
        }
        let mut cfg = stored.run;
        if let Some(e) = flags.epochs {
            cfg.train.num_epochs = e;
        }
        cfg.validate()?;
        (cfg, root)
    } else {
        let cfg = flags.resolve()?;
        let root = flags.runs_dir.join(cfg.run_name());
        (cfg, root)
    };
    let job = TrainJob {
        cfg,
        root,
        force: flags.force,
        resume: flags.resume,
        data_dir,
        backend: flags.backend,
        workers: usize::from(flags.workers),
    };
    if job.workers > 1 && job.cfg.model.family.is_gan_crate() && !job.cfg.model.family.is_data_parallel_gan() {
        bail!(
            "--workers trains the autoencoders, the VAEs and the GANs; {} trains on one worker",
            job.cfg.model.family.name()
        );
    }
    with_backend(flags.backend, job)
}

/// `gen eval`: the report of whatever the run folder holds (an autoencoder, a VAE, a GAN, a
/// super-resolution model or the evaluation classifier).
pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let (stored, _) = read_stored(&args.run.run)?;
    if stored.is_vae() {
        return vae::eval(args.run, args.vae);
    }
    if stored.is_gan_crate() {
        return gan::eval(args.run, args.gan);
    }
    ae::eval(args.run)
}

/// `gen encode`: codes of an autoencoder, μ and σ of a VAE.
pub fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    if read_stored(&args.run.run)?.0.is_vae() {
        return vae::encode(args);
    }
    ae::encode(args)
}

/// `gen sample`: a VAE's prior or a GAN's generator.
pub fn sample(args: vae::SampleArgs) -> anyhow::Result<()> {
    if read_stored(&args.run.run)?.0.is_gan_crate() {
        return gan::sample(args.run, args.n, args.class, args.seed, args.output);
    }
    vae::sample(args)
}

/// `gen reconstruct`: an autoencoder's reconstructions, or a VAE's from the posterior mean.
pub fn reconstruct(args: crate::ae::ReconstructArgs) -> anyhow::Result<()> {
    if read_stored(&args.run.run)?.0.is_vae() {
        return vae::reconstruct(args);
    }
    ae::reconstruct(args)
}

/// `gen download`.
pub fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let spec = match args.dataset.as_str() {
        "mnist" => gen_data::MNIST,
        "fashion-mnist" | "fashion_mnist" => gen_data::FASHION_MNIST,
        other => bail!("unknown data set {other:?}; expected mnist or fashion-mnist"),
    };
    let dir = data_dir(args.data_dir.as_deref());
    let written = spec.download(args.base_url.as_deref(), &dir)?;
    if written.is_empty() {
        println!("{} is already complete and verified in {}", spec.name, dir.display());
    }
    for p in written {
        println!("downloaded and verified {}", p.display());
    }
    Ok(())
}
