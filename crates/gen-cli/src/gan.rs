//! GAN, super-resolution and evaluation-classifier runs: `gen train --model gan|cgan|sr|classifier`,
//! and `gen eval`, `gen sample`, `gen augment` and `gen upscale` on them.
//!
//! The evaluation classifier is trained once per data set into `RUNS/classifier-DATA/` (by the
//! first GAN run or eval that needs it, or by `gen train --model classifier`) and reused.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use clap::Args;
use gen_core::nn::ImageShape;
use gen_core::train::{Checkpoint, RunDir, TrainConfig, Trainer, load_module, write_atomic};
use gen_data::Dataset;
use gen_data::images::{Images, read_images, write_pngs};
use gen_data::tensor_values;
use gen_gan::augmentation::{AugmentMode, AugmentOptions};
use gen_gan::classifier::{Classifier, ClassifierConfig};
use gen_gan::eval::{Sources, generate, test_accuracy};
use gen_gan::metrics::{class_shares, distinct_modes};
use gen_gan::sr::{self, SrConfig, SrGenerator, downsample};
use gen_gan::{Discriminator, EpochReport, GanTrainer, Generator};

use crate::backend::{BackendChoice, Job, with_backend};
use crate::commands::{StoredConfig, TrainJob, read_stored};
use crate::config::{DataSpec, Family, ModelSpec, RunConfig};
use crate::data::{Splits, data_dir, load_splits, load_splits_and_unseen};
use crate::image_io::LabelledWriter;
use crate::progress::Progress;
use crate::vae::{image_shape, n_classes, scale};
use crate::{RunArgs, artifacts};

/// Whether the run folder holds a GAN, a super-resolution model or the evaluation classifier.
pub(crate) fn is_gan_run(root: &Path) -> anyhow::Result<bool> {
    let (s, _) = read_stored(root)?;
    Ok(s.gan.is_some() || s.sr.is_some() || s.classifier.is_some())
}

fn labels_tensor<B: Backend>(labels: &[i64], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

/// `gen train` for the families of gen-gan.
pub(crate) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    match job.cfg.model.family {
        Family::Classifier => train_classifier::<B>(&job, &device).map(|_| ()),
        Family::Sr => train_sr::<B>(job, device),
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
    let shape = image_shape(&splits).with_context(|| {
        format!(
            "the {} family works on images; {} is a table (choose digits, mnist or fashion-mnist)",
            job.cfg.model.family.name(),
            job.cfg.data.dataset
        )
    })?;
    Ok((splits, shape))
}

// ------------------------------------------------------------------------------------------
// The evaluation classifier

/// Trains the evaluation classifier of `job` and returns its test accuracy.
fn train_classifier<B: AutodiffBackend>(job: &TrainJob, device: &B::Device) -> anyhow::Result<f64> {
    let (splits, shape) = image_splits(job)?;
    let k = n_classes(&splits)?;
    let cfg = ClassifierConfig::new(shape, k);
    let stored = StoredConfig {
        classifier: Some(cfg.clone()),
        ..StoredConfig::bare(job.cfg.clone(), job.backend)
    };
    let run = job.open_run(&stored)?;
    eprintln!(
        "training the evaluation classifier {} on {} ({} train / {} valid / {} test images, {k} classes)",
        job.root.display(),
        job.cfg.data.dataset,
        splits.train.len(),
        splits.valid.len(),
        splits.test.len()
    );
    B::seed(device, job.cfg.train.seed);
    let model: Classifier<B> = cfg.try_init(device)?;
    let meta = serde_json::to_value(&stored)?;
    let fitted = Trainer::new(job.cfg.train.clone())?
        .with_run_dir(run.clone())
        .with_resume(job.resume)
        .with_observer(crate::progress::Progress::new())
        .fit(model, &splits.train, Some(&splits.valid), &meta, device)?;
    let model = fitted.model.valid();
    let acc = test_accuracy(&model, &splits.test, device)?;
    println!(
        "evaluation classifier: test accuracy {:.2} % on {} images (best epoch {}); saved in {}",
        100.0 * acc,
        splits.test.len(),
        fitted.best_epoch.unwrap_or(fitted.epochs_completed),
        run.root().display()
    );
    Ok(acc)
}

/// The run configuration of the evaluation classifier of `dataset`: about 450,000 training
/// samples seen (8 epochs of MNIST), between 5 and 60 epochs, Adam 1e-3 annealed by a cosine,
/// batch 128.
fn classifier_run(dataset: &str, n_train: usize) -> RunConfig {
    let epochs = (450_000 / n_train.max(1)).clamp(5, 60);
    let mut cfg = RunConfig {
        name: None,
        data: DataSpec {
            dataset: dataset.into(),
            ..DataSpec::default()
        },
        model: ModelSpec {
            family: Family::Classifier,
            ..ModelSpec::default()
        },
        train: TrainConfig::default()
            .with_num_epochs(epochs)
            .with_batch_size(128)
            .with_learning_rate(1e-3)
            .with_lr_schedule(gen_core::train::LrSchedule::Cosine { final_fraction: 0.01 }),
    };
    cfg.name = Some(cfg.run_name());
    cfg
}

/// The evaluation classifier of `dataset`, from `runs_dir/classifier-DATA/`, trained there
/// first when it is missing.
///
/// # Errors
/// If the stored classifier was trained on a subset or on other splits than `data` (its
/// training images could then be among the held-out or test images it judges).
pub(crate) fn ensure_classifier<B: AutodiffBackend>(
    runs_dir: &Path,
    data: &DataSpec,
    data_dir: &Path,
    backend: BackendChoice,
    device: &B::Device,
) -> anyhow::Result<Classifier<B::InnerBackend>> {
    let dataset = data.dataset.as_str();
    let probe = classifier_run(dataset, 1);
    let root = runs_dir.join(probe.run_name());
    let trained = root.join("config.json").is_file() && RunDir::open(&root)?.model_path().is_file();
    // A classifier whose training was cut short continues from its last epoch, rather than
    // judging with a half-trained network (one that stopped early by its patience is done).
    let unfinished = if trained {
        let (stored, run) = read_stored(&root)?;
        let (done, cut_short) = classifier_epochs(&stored, &run);
        cut_short.then_some((stored.run, done))
    } else {
        None
    };
    if !trained || unfinished.is_some() {
        let cfg = match unfinished {
            Some((cfg, done)) => {
                eprintln!(
                    "the evaluation classifier in {} stopped after {done} of its {} epochs: continuing it",
                    root.display(),
                    cfg.train.num_epochs
                );
                cfg
            }
            None => {
                let splits = load_splits(&probe.data, data_dir)?;
                let cfg = classifier_run(dataset, splits.train.len());
                eprintln!(
                    "no evaluation classifier for {dataset} in {}: training it once ({} epochs)",
                    root.display(),
                    cfg.train.num_epochs
                );
                cfg
            }
        };
        let job = TrainJob {
            cfg,
            root: root.clone(),
            force: !trained,
            resume: trained,
            data_dir: data_dir.to_path_buf(),
            backend,
        };
        train_classifier::<B>(&job, device)?;
    }
    let (stored, _) = read_stored(&root)?;
    let c = &stored.run.data;
    ensure!(
        c.limit.is_none(),
        "the evaluation classifier {} was trained on the first {} images only; retrain it on the whole \
         training split (delete the folder, or gen train --model classifier --dataset {dataset} --force)",
        root.display(),
        c.limit.unwrap_or(0)
    );
    ensure!(
        (c.valid_fraction, c.test_fraction, c.split_seed) == (data.valid_fraction, data.test_fraction, data.split_seed),
        "the evaluation classifier {} was trained on other splits (valid_fraction {}, test_fraction {}, \
         split_seed {}) than this run's ({}, {}, {}): its training images could be among the images it \
         judges; give this run the default splits, or retrain the classifier with the same ones",
        root.display(),
        c.valid_fraction,
        c.test_fraction,
        c.split_seed,
        data.valid_fraction,
        data.test_fraction,
        data.split_seed
    );
    load_classifier::<B::InnerBackend>(&root, device)
}

/// The epochs a classifier run has trained, and whether it was cut short: fewer than configured,
/// with no patience that could have ended it early (one stopped by its patience is done).
fn classifier_epochs(stored: &StoredConfig, run: &RunDir) -> (usize, bool) {
    let done = run.metrics().read().map_or(0, |(_, rows)| rows.len());
    let t = &stored.run.train;
    (done, t.patience.is_none() && done < t.num_epochs)
}

fn load_classifier<B: Backend>(root: &Path, device: &B::Device) -> anyhow::Result<Classifier<B>> {
    let (stored, run) = read_stored(root)?;
    let cfg = stored.classifier.clone().with_context(|| {
        format!(
            "{} holds {}, not the evaluation classifier",
            root.display(),
            stored.kind()
        )
    })?;
    let path = run.model_path();
    let (model, _) = load_module(cfg.try_init::<B>(device)?, &path, device)
        .with_context(|| format!("loading the evaluation classifier {}", path.display()))?;
    Ok(model)
}

fn runs_dir_of(root: &Path) -> PathBuf {
    root.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

// ------------------------------------------------------------------------------------------
// GAN training

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
    artifacts::save_image_grid(path, &rows, shape, scale(shape))
}

fn train_gan<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    check_epochs_left(&job)?;
    let (splits, shape) = image_splits(&job)?;
    let classes = n_classes(&splits).ok();
    if job.cfg.model.family == Family::Cgan && classes.is_none() {
        n_classes(&splits)?;
    }
    let gan_cfg = job
        .cfg
        .model
        .gan(shape, classes, job.cfg.train.learning_rate)
        .context("in [model]")?;
    let stored = StoredConfig {
        gan: Some(gan_cfg.clone()),
        ..StoredConfig::bare(job.cfg.clone(), job.backend)
    };
    if !job.resume && !job.force && job.root.join("config.json").exists() {
        bail!("{} exists; pass --force to overwrite it", job.root.display());
    }
    let k = classes.context("the GAN's evaluation needs labelled images (for the class coverage)")?;
    let classifier = ensure_classifier::<B>(
        &runs_dir_of(&job.root),
        &job.cfg.data,
        &job.data_dir,
        job.backend,
        &device,
    )?;
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
    // A fixed noise batch, decoded after every epoch (one row per class when conditional).
    let (rows, cols) = if gan_cfg.n_classes.is_some() { (k, 8) } else { (8, 8) };
    let fixed_z =
        Tensor::<B::InnerBackend, 2>::random([rows * cols, gan_cfg.d_latent], Distribution::Normal(0.0, 1.0), &device);
    let fixed_y: Option<Vec<i64>> = gan_cfg
        .n_classes
        .map(|_| (0..rows * cols).map(|i| (i / cols) as i64).collect());
    // A source-conditioned generator varies the training images: row c of the grid varies
    // the first eight of class c, the same ones every epoch.
    let fixed_src = match (&fixed_y, gan_cfg.source_conditioned) {
        (Some(labels), true) => {
            let sources = Sources::new(&splits.train)?;
            let x = sources.take(labels)?;
            Some(Tensor::<B::InnerBackend, 2>::from_data(
                TensorData::new(x, [labels.len(), shape.numel()]),
                &device,
            ))
        }
        _ => None,
    };
    let sources = if gan_cfg.source_conditioned {
        Some(Sources::new(&splits.train)?)
    } else {
        None
    };
    let progress_dir = run.file("progress");
    std::fs::create_dir_all(&progress_dir).with_context(|| format!("cannot create {}", progress_dir.display()))?;
    let d_img = shape.numel();
    let monitor = |epoch: usize, generator: &Generator<B::InnerBackend>| -> Result<EpochReport, String> {
        let inner = || -> anyhow::Result<EpochReport> {
            let y = fixed_y.as_deref().map(|l| labels_tensor::<B::InnerBackend>(l, &device));
            let imgs = tensor_values(generator.forward_from(fixed_z.clone(), y, fixed_src.clone()))?;
            grid(&progress_dir.join(format!("epoch-{epoch:03}.png")), &imgs, shape, cols)?;
            let (samples, labels) = generate(generator, sources.as_ref(), 500, None, &device)?;
            let (_, _, preds) = classifier.describe(&samples, d_img, &device);
            let shares = class_shares(&preds, k);
            let modes = distinct_modes(&shares);
            let mut columns = vec![
                ("modes".to_string(), modes as f64),
                (
                    "min_class_share".to_string(),
                    shares.iter().copied().fold(f64::INFINITY, f64::min),
                ),
            ];
            if !labels.is_empty() {
                let hits = preds.iter().zip(&labels).filter(|(p, l)| **p as i64 == **l).count();
                columns.push(("conditional_accuracy".into(), hits as f64 / labels.len() as f64));
            }
            Ok(EpochReport {
                columns,
                modes: Some((modes, k)),
            })
        };
        inner().map_err(|e| format!("{e:#}"))
    };
    let meta = serde_json::to_value(&stored)?;
    let mut trainer = GanTrainer::new(job.cfg.train.clone(), gan_cfg.clone())?
        .with_run_dir(run.clone())
        .with_resume(job.resume)
        .with_observer(crate::progress::Progress::new());
    let fitted = if gan_cfg.source_conditioned {
        // The discriminator's real samples: each training image beside another of its class.
        let labels = splits.train.labels().context("a DAGAN needs labelled images")?.to_vec();
        let pairs = gen_gan::SourcePairs::new(&splits.train, labels, job.cfg.train.seed)?;
        trainer.fit(g, d, &pairs, &meta, &device, monitor)?
    } else {
        trainer.fit(g, d, &splits.train, &meta, &device, monitor)?
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
    g: Generator<B>,
    /// Which weights: the moving average or the last epoch's.
    which: &'static str,
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

// ------------------------------------------------------------------------------------------
// Super-resolution training

fn train_sr<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    check_epochs_left(&job)?;
    let (splits, shape) = image_splits(&job)?;
    let m = &job.cfg.model;
    let sr = SrConfig {
        image: shape,
        channels: *m.channels.last().context("--channels needs at least one width")?,
        blocks: m.channels.len(),
        content: m.content_loss()?,
        adversarial_weight: m.adversarial_weight.unwrap_or(0.01),
    };
    sr.validate().context("in [model]")?;
    let mut dcfg = sr.discriminator();
    dcfg.lr_discriminator = m.lr_d.unwrap_or(job.cfg.train.learning_rate);
    dcfg.n_critic = m.n_critic;
    if let Some(l) = &m.gan_loss {
        dcfg.loss = l.parse().map_err(anyhow::Error::msg).context("in [model]")?;
        // Spectral normalisation stays on, except where weight clipping bounds the critic.
        dcfg.spectral_norm = !matches!(dcfg.loss, gen_gan::GanLoss::Wasserstein { .. });
    }
    dcfg.validate().context("in [model]")?;
    let stored = StoredConfig {
        sr: Some((sr.clone(), dcfg.clone())),
        ..StoredConfig::bare(job.cfg.clone(), job.backend)
    };
    let run = job.open_run(&stored)?;
    eprintln!(
        "training {} (2x super-resolution {}x{} -> {}x{}, {:?} content loss, adversarial weight {}) on {} with {}",
        job.root.display(),
        shape.height / 2,
        shape.width / 2,
        shape.height,
        shape.width,
        sr.content,
        sr.adversarial_weight,
        job.cfg.data.dataset,
        job.backend
    );
    B::seed(&device, job.cfg.train.seed);
    let g: SrGenerator<B> = sr.try_init(&device)?;
    let d = Discriminator::<B>::new(&dcfg, &device);
    let probe = splits.valid.take(500.min(splits.valid.len()));
    let monitor = |_epoch: usize, g: &SrGenerator<B::InnerBackend>| -> Result<EpochReport, String> {
        let scores = sr::sr_scores(g, &probe, &device).map_err(|e| format!("{e:#}"))?;
        Ok(EpochReport {
            columns: vec![("valid_psnr".into(), scores.psnr), ("valid_ssim".into(), scores.ssim)],
            modes: None,
        })
    };
    let meta = serde_json::to_value(&stored)?;
    let fitted = GanTrainer::new(job.cfg.train.clone(), dcfg)?
        .with_run_dir(run.clone())
        .with_resume(job.resume)
        .with_observer(crate::progress::Progress::new())
        .fit(g, d, &splits.train, &meta, &device, monitor)?;
    let g = fitted.generator.valid();
    let report = sr::benchmark(&job.cfg.data.dataset, &g, None, &splits.test, &device)?;
    let (test, base) = (report.model, report.bicubic);
    write_sr_examples(&g, None, &splits.test, &run.file("sr_examples.png"), &device)?;
    println!(
        "done in {:.1}s: test PSNR {:.2} dB, SSIM {:.4} (bicubic {:.2} dB, {:.4})",
        started.elapsed().as_secs_f64(),
        test.psnr,
        test.ssim,
        base.psnr,
        base.ssim
    );
    println!(
        "results in {}/: config.json, generator.ckpt{}, metrics.csv, sr_examples.png",
        run.root().display(),
        if sr.adversarial_weight > 0.0 {
            ", discriminator.ckpt"
        } else {
            ""
        }
    );
    println!(
        "next: gen eval --run {}  or  gen upscale --run {} --input IMAGES",
        run.root().display(),
        run.root().display()
    );
    Ok(())
}

fn load_sr<B: Backend>(root: &Path, device: &B::Device) -> anyhow::Result<(StoredConfig, RunDir, SrGenerator<B>)> {
    let (stored, run) = read_stored(root)?;
    let (cfg, _) = stored.sr.clone().with_context(|| {
        format!(
            "{} holds {}; this command needs a super-resolution run",
            root.display(),
            stored.kind()
        )
    })?;
    let path = run.file(gen_gan::GENERATOR);
    let (g, _) = load_module(cfg.try_init::<B>(device)?, &path, device)
        .with_context(|| format!("loading {}", path.display()))?;
    Ok((stored, run, g))
}

// ------------------------------------------------------------------------------------------
// gen eval

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

struct EvalJob(RunArgs, GanEvalFlags);

impl Job for EvalJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let (args, flags) = (self.0, self.1);
        let (stored, run) = read_stored(&args.run)?;
        if stored.sr.is_some() {
            return eval_sr::<B::InnerBackend>(&args, &flags, &device);
        }
        if stored.classifier.is_some() {
            let model = load_classifier::<B::InnerBackend>(&args.run, &device)?;
            let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
            let acc = test_accuracy(&model, &splits.test, &device)?;
            // Judged as it is, but a run cut short says so (`gen train --resume` continues it).
            let (done, cut_short) = classifier_epochs(&stored, &run);
            let t = &stored.run.train;
            println!(
                "evaluation classifier {}: test accuracy {:.2} % on {} images{}",
                args.run.display(),
                100.0 * acc,
                splits.test.len(),
                if cut_short {
                    format!(
                        " (trained {done} of its {} epochs: gen train --resume continues it)",
                        t.num_epochs
                    )
                } else {
                    String::new()
                }
            );
            let report = serde_json::json!({
                "dataset": stored.run.data.dataset,
                "n_test": splits.test.len(),
                "test_accuracy": acc,
                "epochs_done": done,
                "epochs_configured": t.num_epochs,
            });
            let path = args.run.join("eval.json");
            write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
            println!("written to {}", path.display());
            return Ok(());
        }
        eval_gan::<B>(&args, &flags, &device)
    }
}

/// `gen eval` on a GAN, super-resolution or classifier run.
pub(crate) fn eval(args: RunArgs, flags: GanEvalFlags) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, EvalJob(args, flags))
}

fn eval_gan<B: AutodiffBackend>(args: &RunArgs, flags: &GanEvalFlags, device: &B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = data_dir(args.data_dir.as_deref());
    let LoadedGan {
        stored,
        run,
        g,
        which,
        sources,
    } = load_generator::<B::InnerBackend>(&args.run, flags.last, &dir, device)?;
    let sources = sources.as_ref();
    let (splits, unseen) = load_splits_and_unseen(&stored.run.data, &dir)?;
    // The flags are checked before the metrics take their time.
    let augmentation = match (g.n_classes() > 0, flags.augment) {
        (true, Some(true)) => true,
        (true, None) => splits.train.len() <= 5000,
        (false, Some(true)) => bail!("--augment needs a conditional GAN (gen train --model cgan)"),
        _ => false,
    };
    ensure!(
        !augmentation || flags.augment_seeds >= 1,
        "--augment-seeds must be at least 1"
    );
    ensure!(
        flags.synthetic != Some(0),
        "--synthetic 0 leaves the augmented arm nothing to add to the real images; give at least 1"
    );
    ensure!(flags.augment_budget > 0, "--augment-budget must be at least 1 image");
    if let Some(p) = flags.augment_filter {
        ensure!(
            (0.0..1.0).contains(&p),
            "--augment-filter is a probability in [0, 1), got {p}"
        );
    }
    let r = flags.augment_real_share;
    ensure!(
        r > 0.0 && r < 1.0,
        "--augment-real-share is the real images' share of the mixed data, strictly between 0 and 1, got {r}"
    );
    let shape = image_shape(&splits).context("a GAN run needs image data")?;
    let k = n_classes(&splits)?;
    let classifier = ensure_classifier::<B>(&runs_dir_of(&args.run), &stored.run.data, &dir, args.backend, device)?;
    ensure!(
        k == classifier.n_classes(),
        "the evaluation classifier knows {} classes, the data {k}",
        classifier.n_classes()
    );
    let mut report = gen_gan::eval::evaluate_generator(
        &stored.run.data.dataset,
        which,
        &g,
        sources,
        &classifier,
        &unseen,
        &splits.test,
        flags.samples,
        device,
    )?;
    grid(&run.file("samples.png"), &report.showcase, shape, 10)?;
    if augmentation {
        let real_shift = stored.gan.as_ref().map_or(0, |c| c.real_shift);
        let options = AugmentOptions {
            seeds: flags.augment_seeds,
            synthetic: flags.synthetic,
            budget: flags.augment_budget,
            filter: flags.augment_filter,
            mode: flags.augment_mode,
            real_share: flags.augment_real_share,
        };
        report.augmentation = Some(gen_gan::augmentation::experiment::<B>(
            &g,
            sources,
            &splits.train,
            &splits.test,
            &options,
            real_shift,
            &mut Progress::new(),
            device,
        )?);
    }
    report.seconds = started.elapsed().as_secs_f64();
    println!("{} on {} ({} generator)", args.run.display(), report.dataset, which);
    print!("{}", report.summary());
    let path = run.file("eval.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "written to {} and {}",
        path.display(),
        run.file("samples.png").display()
    );
    Ok(())
}

/// The figure of [`sr::examples`] at `path`.
fn write_sr_examples<B: Backend>(
    g: &SrGenerator<B>,
    other: Option<&SrGenerator<B>>,
    data: &Dataset,
    path: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let rows = sr::examples(g, other, data, device)?;
    let shape = g.image();
    let grid_rows: Vec<Vec<&[f32]>> = rows.iter().map(|r| r.chunks(shape.numel()).collect()).collect();
    artifacts::save_image_grid(path, &grid_rows, shape, scale(shape))
}

fn eval_sr<B: Backend>(args: &RunArgs, flags: &GanEvalFlags, device: &B::Device) -> anyhow::Result<()> {
    let (stored, run, g) = load_sr::<B>(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let other = match &flags.compare {
        Some(p) => Some((p.display().to_string(), load_sr::<B>(p, device)?.2)),
        None => None,
    };
    let named = other.as_ref().map(|(name, o)| (name.as_str(), o));
    let report = sr::benchmark(&stored.run.data.dataset, &g, named, &splits.test, device)?;
    write_sr_examples(
        &g,
        other.as_ref().map(|o| &o.1),
        &splits.test,
        &run.file("sr_examples.png"),
        device,
    )?;
    let (base, model) = (report.bicubic, report.model);
    println!(
        "{} on {} ({} test images)",
        args.run.display(),
        report.dataset,
        report.n_test
    );
    println!("  {:<40} {:>9} {:>8}", "upscaling", "PSNR dB", "SSIM");
    println!("  {:<40} {:>9.2} {:>8.4}", "bicubic", base.psnr, base.ssim);
    if let Some((name, s)) = &report.compared {
        println!("  {:<40} {:>9.2} {:>8.4}", name, s.psnr, s.ssim);
    }
    println!(
        "  {:<40} {:>9.2} {:>8.4}",
        args.run.display().to_string(),
        model.psnr,
        model.ssim
    );
    println!("  gain over bicubic: {:+.2} dB", report.gain_over_bicubic_db);
    let path = run.file("eval.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "written to {} and {}",
        path.display(),
        run.file("sr_examples.png").display()
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------
// gen sample (GAN runs), gen augment, gen upscale

struct SampleJob {
    run: PathBuf,
    data_dir: Option<PathBuf>,
    n: usize,
    class: Option<i64>,
    seed: u64,
    output: Option<PathBuf>,
}

impl Job for SampleJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        ensure!((1..=100).contains(&self.n), "--n must lie in 1..=100, got {}", self.n);
        let LoadedGan {
            run, g, which, sources, ..
        } = load_generator::<B::InnerBackend>(&self.run, false, &data_dir(self.data_dir.as_deref()), &device)?;
        let k = g.n_classes();
        let shape = g_image(&run)?;
        let labels: Option<Vec<i64>> = match (k, self.class) {
            (0, Some(_)) => bail!("--class needs a conditional GAN (gen train --model cgan)"),
            (k, Some(c)) if c < 0 || c >= k as i64 => bail!("--class {c} is out of range: the model has {k} classes"),
            (_, Some(c)) => Some(vec![c; self.n * self.n]),
            (0, None) => None,
            (k, None) => Some((0..k * self.n).map(|i| (i / self.n) as i64).collect()),
        };
        B::InnerBackend::seed(&device, self.seed);
        let count = labels.as_ref().map_or(self.n * self.n, Vec::len);
        let (images, _) = generate(&g, sources.as_ref(), count, labels.as_deref(), &device)?;
        let out = self.output.unwrap_or_else(|| run.file("samples.png"));
        grid(&out, &images, shape, self.n)?;
        println!("wrote {count} samples of the {which} generator to {}", out.display());
        Ok(())
    }
}

fn g_image(run: &RunDir) -> anyhow::Result<ImageShape> {
    let stored: StoredConfig = run.read_config()?;
    Ok(stored.gan.context("not a GAN run")?.image)
}

/// `gen sample` on a GAN run.
pub(crate) fn sample(
    args: RunArgs,
    n: usize,
    class: Option<i64>,
    seed: u64,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    with_backend(
        args.backend,
        SampleJob {
            run: args.run,
            data_dir: args.data_dir,
            n,
            class,
            seed,
            output,
        },
    )
}

/// `gen augment`.
#[derive(Debug, Args)]
pub struct AugmentArgs {
    /// A conditional GAN run (gen train --model cgan).
    #[arg(long)]
    run: PathBuf,
    /// Number of synthetic images.
    #[arg(long)]
    n: usize,
    /// Class balance: `uniform` (default), `data` (the training set's), or one weight per class
    /// (e.g. 1,1,1,1,1,1,1,1,2,2).
    #[arg(long, default_value = "uniform")]
    balance: String,
    /// Output: `NAME.csv` (label, then pixels in [0, 1]) or `NAME.idx` (writes
    /// NAME-images-idx3-ubyte and NAME-labels-idx1-ubyte).
    #[arg(long)]
    output: PathBuf,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the MNIST-style data sets (for `--balance data`, and for a DAGAN run, whose
    /// generator varies its training images).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    backend: BackendChoice,
}

/// How many of `n` samples each class gets, in proportion to `weights`, by largest remainders.
fn balanced_counts(n: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut rest: Vec<usize> = (0..weights.len()).collect();
    rest.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let missing = n - counts.iter().sum::<usize>();
    for &i in rest.iter().take(missing) {
        counts[i] += 1;
    }
    counts
}

/// Images `gen augment` generates and writes at a time: a multiple of `generate`'s batch of
/// 500, so the draws do not depend on it; 10,000 MNIST images are 31 MB of `f32`.
const AUGMENT_CHUNK: usize = 10_000;

struct AugmentJob(AugmentArgs);

impl Job for AugmentJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        ensure!(a.n > 0, "--n must be > 0, got 0");
        let dir = data_dir(a.data_dir.as_deref());
        let LoadedGan {
            stored,
            g,
            which,
            sources,
            ..
        } = load_generator::<B::InnerBackend>(&a.run, false, &dir, &device)?;
        let k = g.n_classes();
        ensure!(
            k > 0,
            "{} is an unconditional GAN; gen augment needs labels (gen train --model cgan)",
            a.run.display()
        );
        let weights: Vec<f64> = match a.balance.as_str() {
            "uniform" => vec![1.0; k],
            "data" => {
                let splits = load_splits(&stored.run.data, &dir)?;
                let labels = splits.train.labels().context("the training set has no labels")?;
                let mut w = vec![0.0; k];
                for &l in labels {
                    if (0..k as i64).contains(&l) {
                        w[l as usize] += 1.0;
                    }
                }
                ensure!(
                    w.iter().sum::<f64>() > 0.0,
                    "no training label lies in the model's classes 0..{k}"
                );
                w
            }
            list => {
                let w: Vec<f64> = list
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<f64>()
                            .with_context(|| format!("--balance: {s:?} is not a number"))
                    })
                    .collect::<anyhow::Result<_>>()?;
                ensure!(
                    w.len() == k,
                    "--balance needs {k} weights (one per class), got {}",
                    w.len()
                );
                ensure!(
                    w.iter().all(|v| v.is_finite() && *v >= 0.0) && w.iter().sum::<f64>() > 0.0,
                    "--balance weights must be finite, not negative, and not all zero"
                );
                w
            }
        };
        let shape = stored.gan.as_ref().map(|c| c.image).context("not a GAN run")?;
        // Opened before any work, so a bad --output fails at once; written chunk by chunk, so
        // any --n fits in memory.
        let mut out = LabelledWriter::create(&a.output, a.n, shape)?;
        let counts = balanced_counts(a.n, &weights);
        let mut labels = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &m)| std::iter::repeat_n(c as i64, m));
        B::InnerBackend::seed(&device, a.seed);
        for start in (0..a.n).step_by(AUGMENT_CHUNK) {
            let chunk: Vec<i64> = labels.by_ref().take(AUGMENT_CHUNK.min(a.n - start)).collect();
            let (images, chunk) = generate(&g, sources.as_ref(), chunk.len(), Some(&chunk), &device)?;
            out.push(&images, &chunk)?;
        }
        let written = out.finish()?;
        println!(
            "wrote {} synthetic images ({} generator) to {}",
            a.n,
            which,
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        Ok(())
    }
}

/// `gen augment`.
pub(crate) fn augment(args: AugmentArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, AugmentJob(args))
}

/// `gen upscale`.
#[derive(Debug, Args)]
pub struct UpscaleArgs {
    /// A super-resolution run (gen train --model sr).
    #[arg(long)]
    run: PathBuf,
    /// Low-resolution images: an IDX file, a PNG, or a folder of PNGs.
    #[arg(long)]
    input: PathBuf,
    /// Folder for the upscaled PNGs (default: RUN/upscaled).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Halve the input first (2x2 average), to upscale full-size images back for comparison.
    #[arg(long)]
    downsample: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    backend: BackendChoice,
}

struct UpscaleJob(UpscaleArgs);

impl Job for UpscaleJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        let (_, run, g) = load_sr::<B::InnerBackend>(&a.run, &device)?;
        let images = read_images(&a.input)?;
        let full = g.image();
        let low_shape = ImageShape {
            channels: full.channels,
            height: full.height / 2,
            width: full.width / 2,
        };
        if a.downsample {
            ensure!(
                images.shape == full,
                "--downsample takes {}x{} images, {} holds {}x{}",
                full.height,
                full.width,
                a.input.display(),
                images.shape.height,
                images.shape.width
            );
        } else {
            ensure!(
                images.shape == low_shape,
                "the model upscales {}x{} images to {}x{}; {} holds {}x{} (add --downsample to halve full-size images first)",
                low_shape.height,
                low_shape.width,
                full.height,
                full.width,
                a.input.display(),
                images.shape.height,
                images.shape.width
            );
        }
        // In chunks, so a large input file does not hold every image's activations at once.
        let d = images.shape.numel();
        let mut values = Vec::with_capacity(images.n * full.numel());
        for chunk in images.values.chunks(500 * d) {
            let x =
                Tensor::<B::InnerBackend, 2>::from_data(TensorData::new(chunk.to_vec(), [chunk.len() / d, d]), &device);
            let low = if a.downsample { downsample(x, full) } else { x };
            values.extend(tensor_values(g.upscale(low))?);
        }
        let out = a.output.unwrap_or_else(|| run.file("upscaled"));
        let written = write_pngs(
            &out,
            &Images {
                values,
                shape: full,
                n: images.n,
                names: images.names.clone(),
            },
        )?;
        println!(
            "wrote {} upscaled images ({}x{}) to {}",
            written.len(),
            full.height,
            full.width,
            out.display()
        );
        Ok(())
    }
}

/// `gen upscale`.
pub(crate) fn upscale(args: UpscaleArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, UpscaleJob(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_counts_follow_the_weights() {
        assert_eq!(balanced_counts(10, &[1.0, 1.0, 2.0]), vec![3, 2, 5]);
        assert_eq!(balanced_counts(4, &[0.0, 1.0]), vec![0, 4]);
        assert_eq!(balanced_counts(7, &[1.0; 10]).iter().sum::<usize>(), 7);
    }

    /// Writes `images` (2x2) with `labels` to `path` in chunks of one image.
    fn write_labelled(path: &Path, images: &[f32], labels: &[i64]) -> anyhow::Result<Vec<PathBuf>> {
        let mut out = LabelledWriter::create(path, labels.len(), ImageShape::grey(2, 2))?;
        for (img, l) in images.chunks(4).zip(labels) {
            out.push(img, std::slice::from_ref(l))?;
        }
        out.finish()
    }

    #[test]
    fn labelled_output_round_trips_through_idx_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let images = vec![0.0, 0.5, 1.0, 0.25, 1.0, 1.0, 0.0, 0.0];
        let written = write_labelled(&dir.path().join("syn.idx"), &images, &[3, 7]).unwrap();
        let read = read_images(&written[0]).unwrap();
        assert_eq!((read.n, read.shape), (2, ImageShape::grey(2, 2)));
        assert!((read.values[1] - 128.0 / 255.0).abs() < 1e-6);
        let lbl = std::fs::read(&written[1]).unwrap();
        assert_eq!(lbl, vec![0, 0, 8, 1, 0, 0, 0, 2, 3, 7]);
        let csv = dir.path().join("syn.csv");
        write_labelled(&csv, &images, &[3, 7]).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(
            text,
            "label,p0,p1,p2,p3\n3,0.0000,0.5000,1.0000,0.2500\n7,1.0000,1.0000,0.0000,0.0000\n"
        );
        let leftovers = || std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers(), 3, "the IDX pair and the CSV, no temporary file");
        assert!(write_labelled(&dir.path().join("x.bin"), &images, &[3, 7]).is_err());
        // A failed write leaves nothing behind, and keeps an earlier file whole.
        let e = write_labelled(&dir.path().join("syn.idx"), &images, &[3, 300]).unwrap_err();
        assert!(e.to_string().contains("0..=255"), "{e}");
        assert_eq!(read_images(&written[0]).unwrap().n, 2);
        assert_eq!(std::fs::read(&written[1]).unwrap(), lbl);
        // So does one that stops short of the count it announced.
        let mut short = LabelledWriter::create(&csv, 3, ImageShape::grey(2, 2)).unwrap();
        short.push(&images, &[3, 7]).unwrap();
        assert!(
            short
                .finish()
                .unwrap_err()
                .to_string()
                .contains("3 images announced, 2 written")
        );
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
        assert_eq!(leftovers(), 3);
        // Counts that disagree, and too many images.
        let mut w = LabelledWriter::create(&csv, 1, ImageShape::grey(2, 2)).unwrap();
        assert!(w.push(&images, &[3]).is_err());
        assert!(w.push(&images, &[3, 7]).is_err());
        let e = LabelledWriter::create(&dir.path().join("big.idx"), 1 << 33, ImageShape::grey(2, 2))
            .err()
            .unwrap();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
