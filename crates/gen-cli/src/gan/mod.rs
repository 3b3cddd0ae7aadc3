//! GAN, super-resolution, evaluation-classifier and semi-supervised GAN runs: `gen train
//! --model gan|cgan|sr|classifier|ssgan`, and `gen eval`, `gen sample`, `gen augment` and
//! `gen upscale` on them.
//!
//! The evaluation classifier is trained once per data set into `RUNS/classifier-DATA/` (by the
//! first GAN run or eval that needs it, or by `gen train --model classifier`) and reused
//! ([`classifier`]).

mod classifier;
mod eval;
mod ssgan;
mod superres;
mod tools;

pub(crate) use classifier::load as load_classifier;
pub(crate) use eval::eval;
pub(crate) use superres::{UpscaleArgs, load as load_sr, upscale};
pub(crate) use tools::{AugmentArgs, augment, sample};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use gen_core::nn::ImageShape;
use gen_core::train::{Checkpoint, DataParallel, RunDir, load_module};
use gen_gan::augmentation::AugmentMode;
use gen_gan::eval::{CoverageMonitor, Sources};
use gen_gan::{EpochReport, GanTrainer, Generator};

use crate::artifacts;
use crate::config::Family;
use crate::data::{Splits, load_splits};
use crate::run::{StoredConfig, TrainJob, read_stored};

/// Flags of `gen eval` that only GAN and super-resolution runs use.
#[derive(Debug, Args)]
pub struct GanEvalFlags {
    /// Generated images for the GAN's metrics (at most the held-out real images' count, so
    /// the floor is measured on as many).
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Judge the generator of the last epoch, not its moving average.
    #[arg(long)]
    pub last: bool,
    /// Run the data-augmentation experiment of a conditional GAN (default: when its training
    /// set has at most 5,000 images).
    #[arg(long)]
    pub augment: Option<bool>,
    /// Seeds of the augmentation experiment.
    #[arg(long, default_value_t = 3)]
    pub augment_seeds: usize,
    /// Synthetic images added in the augmentation experiment (default: 10 per real image).
    #[arg(long)]
    pub synthetic: Option<usize>,
    /// Training images seen by each classifier of the augmentation experiment (the same for
    /// both arms: passes over reshuffled copies of the data, cut at this count).
    #[arg(long, default_value_t = 60_000)]
    pub augment_budget: usize,
    /// Keep only synthetic images to which the seed's real-only classifier gives their
    /// conditioned class a probability of at least this (drawing more until the classes are
    /// full): label noise and off-manifold samples are left out.
    #[arg(long)]
    pub augment_filter: Option<f64>,
    /// How the augmented classifier uses the synthetic images: `mix` them with the real ones
    /// (see `--augment-real-share`), or `pretrain` on them for half the budget, then train on
    /// the real images.
    #[arg(long, default_value = "mix")]
    pub augment_mode: AugmentMode,
    /// The real images' share of the mixed arm's data (`--augment-mode mix`): the real images
    /// are repeated until they make up this share, the synthetic ones fill the rest.
    #[arg(long, default_value_t = 0.5)]
    pub augment_real_share: f64,
    /// Another super-resolution run to compare with (e.g. the content-loss-only model).
    #[arg(long)]
    pub compare: Option<PathBuf>,
}

/// `gen train` for the families of gen-gan.
pub(crate) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    match job.cfg.model.family {
        Family::Classifier => classifier::train::<B>(&job, &device).map(|_| ()),
        Family::Sr => superres::train::<B>(job, device),
        Family::Ssgan => ssgan::train::<B>(job, device),
        _ => train_gan::<B>(job, device),
    }
}

/// When resuming, an error if the run has trained its `--epochs` already (before any work).
fn check_epochs_left(job: &TrainJob) -> anyhow::Result<()> {
    let path = job.root.join(gen_gan::GENERATOR);
    if !job.resume || !path.is_file() {
        return Ok(());
    }
    let done = Checkpoint::load(&path)?.header.epoch;
    ensure!(
        done < job.cfg.train.num_epochs,
        "{} has its {done} epochs already; pass a larger --epochs to continue it",
        job.root.display()
    );
    Ok(())
}

fn image_splits(job: &TrainJob) -> anyhow::Result<(Splits, ImageShape)> {
    let splits = load_splits(&job.cfg.data, &job.data_dir)?;
    let shape = splits.image_shape().with_context(|| {
        format!(
            "the {} family works on images; {} is a table (choose digits, mnist or fashion-mnist)",
            job.cfg.model.family.name(),
            job.cfg.data.dataset
        )
    })?;
    Ok((splits, shape))
}

/// Writes images as a grid of rows of `cols`.
fn grid(path: &Path, images: &[f32], shape: ImageShape, cols: usize) -> anyhow::Result<()> {
    let d = shape.numel();
    let n = images.len() / d;
    let rows: Vec<Vec<&[f32]>> = (0..n.div_ceil(cols))
        .map(|r| {
            (r * cols..((r + 1) * cols).min(n))
                .map(|i| &images[i * d..(i + 1) * d])
                .collect()
        })
        .collect();
    artifacts::save_image_grid(path, &rows, shape, artifacts::grid_scale(shape))
}

fn train_gan<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    check_epochs_left(&job)?;
    let (splits, shape) = image_splits(&job)?;
    let classes = splits.n_classes().ok();
    if job.cfg.model.family == Family::Cgan && classes.is_none() {
        splits.n_classes()?;
    }
    let gan_cfg = job
        .cfg
        .model
        .gan(shape, classes, job.cfg.train.learning_rate)
        .context("in [model]")?;
    if gan_cfg.source_conditioned && job.workers > 1 {
        bail!("--workers trains the plain and conditional GANs; a DAGAN trains on one worker");
    }
    let stored = StoredConfig {
        gan: Some(gan_cfg.clone()),
        ..StoredConfig::bare(job.cfg.clone(), job.backend)
    };
    if !job.resume && !job.force && job.root.join("config.json").exists() {
        bail!("{} exists; pass --force to overwrite it", job.root.display());
    }
    let k = classes.context("the GAN's evaluation needs labelled images (for the class coverage)")?;
    let classifier = classifier::ensure::<B>(
        &classifier::runs_dir_of(&job.root),
        &job.cfg.data,
        &job.data_dir,
        job.backend,
        &device,
    )?;
    ensure!(
        k == classifier.n_classes(),
        "the evaluation classifier knows {} classes, the data {k}",
        classifier.n_classes()
    );
    let run = job.open_run(&stored)?;
    eprintln!(
        "training {} ({}) on {} ({} images) with {}",
        job.root.display(),
        gan_cfg.variant(),
        job.cfg.data.dataset,
        splits.train.len(),
        job.backend
    );
    B::seed(&device, job.cfg.train.seed);
    let (g, d) = gan_cfg.try_init::<B>(&device)?;
    // A fixed noise batch decoded into progress/epoch-NNN.png after every epoch (one row per
    // class when conditional), and the classes that fresh samples cover.
    let probe = CoverageMonitor::new(&gan_cfg, &classifier, &splits.train, &device)?;
    let progress_dir = run.file("progress");
    std::fs::create_dir_all(&progress_dir).with_context(|| format!("cannot create {}", progress_dir.display()))?;
    let monitor = |epoch: usize, generator: &Generator<B::InnerBackend>| -> Result<EpochReport, String> {
        let inner = || -> anyhow::Result<EpochReport> {
            let rows = probe.grid(generator)?;
            artifacts::save_image_rows(&progress_dir.join(format!("epoch-{epoch:03}.png")), &rows, shape)?;
            Ok(probe.report(generator)?)
        };
        inner().map_err(|e| format!("{e:#}"))
    };
    let meta = serde_json::to_value(&stored)?;
    let trainer = || -> anyhow::Result<GanTrainer<'_>> {
        Ok(GanTrainer::new(job.cfg.train.clone(), gan_cfg.clone())?
            .with_run_dir(run.clone())
            .with_resume(job.resume)
            .with_observer(crate::progress::Progress::new()))
    };
    let fitted = if gan_cfg.source_conditioned {
        // The discriminator's real samples: each training image beside another of its class.
        let labels = splits.train.labels().context("a DAGAN needs labelled images")?.to_vec();
        let pairs = gen_gan::SourcePairs::new(&splits.train, labels, job.cfg.train.seed)?;
        trainer()?.fit(g, d, &pairs, &meta, &device, monitor)?
    } else if job.workers > 1 {
        // Both networks data-parallel: the other workers train copies with no run folder and
        // no monitor; worker 0 writes the run and judges the epochs.
        let workers = job.workers;
        let others = (1..workers)
            .map(|rank| {
                let (g, d, train, meta, device) =
                    (g.clone(), d.clone(), splits.train.clone(), meta.clone(), device.clone());
                let (cfg, gan_cfg) = (job.cfg.train.clone(), gan_cfg.clone());
                move || -> anyhow::Result<()> {
                    GanTrainer::new(cfg, gan_cfg)?
                        .with_data_parallel(DataParallel::local(rank, workers))
                        .fit(g, d, &train, &meta, &device, |_, _| Ok(EpochReport::default()))?;
                    Ok(())
                }
            })
            .collect();
        crate::parallel::run_workers(others, || {
            Ok(trainer()?.with_data_parallel(DataParallel::local(0, workers)).fit(
                g,
                d,
                &splits.train,
                &meta,
                &device,
                monitor,
            )?)
        })?
    } else {
        trainer()?.fit(g, d, &splits.train, &meta, &device, monitor)?
    };
    if let Some(first) = fitted.warnings.first() {
        eprintln!(
            "warning: {} balance warning(s) (first: {first}); see warn_d_wins and warn_collapse in metrics.csv",
            fitted.warnings.len()
        );
    }
    let row = fitted.history.last().context("no epoch was trained")?;
    let last = progress_dir.join(format!("epoch-{:03}.png", row.epoch));
    std::fs::copy(&last, run.file("samples.png")).with_context(|| format!("cannot copy {}", last.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let get = |k: &str| row.parts.iter().find(|(n, _)| n == k).map_or(f64::NAN, |p| p.1);
    println!(
        "done in {secs:.1}s: last epoch D loss {:.3}, G loss {:.3}, mean D(x) {:.3}, D(G(z)) {:.3}, {} of {k} classes covered",
        row.train_loss,
        get("g_loss"),
        get("d_real"),
        get("d_fake"),
        get("modes")
    );
    println!(
        "results in {}/: config.json, generator.ckpt, discriminator.ckpt{}, metrics.csv, samples.png, progress/",
        run.root().display(),
        if gan_cfg.ema.is_some() {
            ", generator_ema.ckpt"
        } else {
            ""
        }
    );
    println!(
        "next: gen eval --run {}  (classifier-feature FID and its real-data floor, coverage)",
        run.root().display()
    );
    Ok(())
}

/// A GAN run's generator, ready to sample.
pub(crate) struct LoadedGan<B: Backend> {
    stored: StoredConfig,
    run: RunDir,
    pub(crate) g: Generator<B>,
    /// Which weights: the moving average or the last epoch's.
    pub(crate) which: &'static str,
    /// The training images a source-conditioned generator varies (`None` for the others).
    sources: Option<Sources>,
}

/// The generator of a GAN run: the moving average when there is one (unless `last`); a
/// source-conditioned one comes with its run's training images, read from `data_dir`.
pub(crate) fn load_generator<B: Backend>(
    root: &Path,
    last: bool,
    data_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<LoadedGan<B>> {
    let (stored, run) = read_stored(root)?;
    let cfg = stored.gan.clone().with_context(|| {
        format!(
            "{} holds {}; this command needs a GAN run",
            root.display(),
            stored.kind()
        )
    })?;
    let fresh = Generator::new(&cfg, device);
    let ema = run.file(gen_gan::GENERATOR_EMA);
    let (path, which) = if ema.is_file() && !last {
        (ema, "moving average")
    } else {
        (run.file(gen_gan::GENERATOR), "last epoch")
    };
    let (g, _) = load_module(fresh, &path, device).with_context(|| format!("loading {}", path.display()))?;
    let sources = if cfg.source_conditioned {
        let splits = load_splits(&stored.run.data, data_dir)
            .context("a source-conditioned (DAGAN) generator varies its run's training images")?;
        Some(Sources::new(&splits.train)?)
    } else {
        None
    };
    Ok(LoadedGan {
        stored,
        run,
        g,
        which,
        sources,
    })
}
