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
use gen_core::eval::{mean_psnr, mean_ssim};
use gen_core::nn::ImageShape;
use gen_core::train::{Checkpoint, RunDir, TrainConfig, Trainer, load_module, write_atomic};
use gen_data::Dataset;
use gen_gan::classifier::{Classifier, ClassifierConfig};
use gen_gan::metrics::{class_shares, classifier_score, distinct_modes, frechet_distance};
use gen_gan::sr::{SrConfig, SrGenerator, bicubic, downsample};
use gen_gan::{Discriminator, EpochReport, GanTrainer, Generator};
use serde::Serialize;

use crate::backend::{BackendChoice, Job, with_backend};
use crate::commands::{StoredConfig, TrainJob, read_stored};
use crate::config::{DataSpec, Family, ModelSpec, RunConfig};
use crate::data::{Splits, data_dir, load_splits, load_splits_and_unseen};
use crate::image_io::{Images, LabelledWriter, read_images, write_pngs};
use crate::vae::{image_shape, n_classes, scale};
use crate::{RunArgs, artifacts};

/// Whether the run folder holds a GAN, a super-resolution model or the evaluation classifier.
pub(crate) fn is_gan_run(root: &Path) -> anyhow::Result<bool> {
    let (s, _) = read_stored(root)?;
    Ok(s.gan.is_some() || s.sr.is_some() || s.classifier.is_some())
}

fn to_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> anyhow::Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
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

fn test_accuracy<B: Backend>(c: &Classifier<B>, data: &Dataset, device: &B::Device) -> anyhow::Result<f64> {
    let labels = data.labels().context("the test set has no labels")?;
    let (_, _, preds) = c.describe(data.features(), data.d(), device);
    let hits = preds.iter().zip(labels).filter(|(p, l)| **p as i64 == **l).count();
    Ok(hits as f64 / labels.len().max(1) as f64)
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

/// The real images a source-conditioned (DAGAN) generator varies: a run's training images by
/// class, each class's taken in turn, so every image gets its share of variations.
pub(crate) struct Sources {
    images: Vec<f32>,
    d: usize,
    by_class: Vec<Vec<usize>>,
    /// The next image of each class.
    next: std::cell::RefCell<Vec<usize>>,
}

impl Sources {
    /// The labelled images of `data`.
    fn new(data: &Dataset) -> anyhow::Result<Self> {
        let labels = data
            .labels()
            .context("a source-conditioned generator's training images have no labels")?;
        let k = labels.iter().copied().max().map_or(0, |m| m.max(0) as usize + 1);
        let mut by_class = vec![Vec::new(); k];
        for (i, &l) in labels.iter().enumerate() {
            if l >= 0 {
                by_class[l as usize].push(i);
            }
        }
        Ok(Self {
            images: data.features().to_vec(),
            d: data.d(),
            next: std::cell::RefCell::new(vec![0; k]),
            by_class,
        })
    }

    /// The next source image of each label's class, row after row.
    fn take(&self, labels: &[i64]) -> anyhow::Result<Vec<f32>> {
        let mut next = self.next.borrow_mut();
        let mut out = Vec::with_capacity(labels.len() * self.d);
        for &l in labels {
            let class = usize::try_from(l)
                .ok()
                .and_then(|c| self.by_class.get(c))
                .filter(|c| !c.is_empty())
                .with_context(|| format!("the run's training images hold no image of class {l} to vary"))?;
            let i = class[next[l as usize] % class.len()];
            next[l as usize] += 1;
            out.extend_from_slice(&self.images[i * self.d..(i + 1) * self.d]);
        }
        Ok(out)
    }
}

/// Draws `n` images from `g` in chunks, with `labels` (cycled classes when `None` and the
/// generator is conditional); a source-conditioned generator varies images from `sources`.
fn generate<B: Backend>(
    g: &Generator<B>,
    sources: Option<&Sources>,
    n: usize,
    labels: Option<&[i64]>,
    device: &B::Device,
) -> anyhow::Result<(Vec<f32>, Vec<i64>)> {
    let k = g.n_classes();
    let labels: Vec<i64> = match labels {
        Some(l) => l.to_vec(),
        None if k > 0 => (0..n).map(|i| (i % k) as i64).collect(),
        None => Vec::new(),
    };
    ensure!(
        k == 0 || labels.len() == n,
        "{} labels for {n} conditional samples",
        labels.len()
    );
    if let Some(bad) = labels.iter().find(|&&l| k > 0 && !(0..k as i64).contains(&l)) {
        bail!("label {bad} is out of range: the generator has {k} classes");
    }
    let sources = match (g.is_source_conditioned(), sources) {
        (false, _) => None,
        (true, Some(s)) => Some(s),
        (true, None) => bail!("a source-conditioned (DAGAN) generator needs real images to vary"),
    };
    let mut out = Vec::new();
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let y = (k > 0).then(|| labels_tensor::<B>(&labels[start..end], device));
        let images = match sources {
            None => g.sample(end - start, y, device),
            Some(s) => {
                let m = end - start;
                let src = Tensor::from_data(TensorData::new(s.take(&labels[start..end])?, [m, s.d]), device);
                let z = Tensor::random([m, g.d_latent()], Distribution::Normal(0.0, 1.0), device);
                g.forward_from(z, y, Some(src))
            }
        };
        out.extend(to_f32(images)?);
    }
    Ok((out, labels))
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
            let imgs = to_f32(generator.forward_from(fixed_z.clone(), y, fixed_src.clone()))?;
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
        let scores = sr_scores(g, &probe, &device).map_err(|e| format!("{e:#}"))?;
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
    let test = sr_scores(&g, &splits.test, &device)?;
    let base = bicubic_scores::<B::InnerBackend>(&splits.test, &device)?;
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

/// Mean PSNR and SSIM (data range 1) over a data set.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SrScores {
    psnr: f64,
    ssim: f64,
}

fn upscale_all<B: Backend>(g: &SrGenerator<B>, data: &Dataset, device: &B::Device) -> anyhow::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(data.features().len());
    for start in (0..data.len()).step_by(500) {
        let end = (start + 500).min(data.len());
        let low = downsample(data.rows_tensor::<B>(start..end, device), g.image());
        out.extend(to_f32(g.upscale(low))?);
    }
    Ok(out)
}

fn scores(clean: &[f32], other: &[f32], shape: ImageShape) -> SrScores {
    SrScores {
        psnr: mean_psnr(clean, other, shape.numel(), 1.0),
        ssim: mean_ssim(clean, other, shape.height, shape.width, 1.0),
    }
}

fn sr_scores<B: Backend>(g: &SrGenerator<B>, data: &Dataset, device: &B::Device) -> anyhow::Result<SrScores> {
    Ok(scores(data.features(), &upscale_all(g, data, device)?, g.image()))
}

fn bicubic_all<B: Backend>(data: &Dataset, shape: ImageShape, device: &B::Device) -> anyhow::Result<Vec<f32>> {
    let low_shape = ImageShape {
        channels: shape.channels,
        height: shape.height / 2,
        width: shape.width / 2,
    };
    let mut out = Vec::with_capacity(data.features().len());
    for start in (0..data.len()).step_by(500) {
        let end = (start + 500).min(data.len());
        let low = downsample(data.rows_tensor::<B>(start..end, device), shape);
        out.extend(to_f32(bicubic(low, low_shape))?);
    }
    Ok(out)
}

fn bicubic_scores<B: Backend>(data: &Dataset, device: &B::Device) -> anyhow::Result<SrScores> {
    let shape = data.image_shape().context("super-resolution needs images")?;
    Ok(scores(data.features(), &bicubic_all::<B>(data, shape, device)?, shape))
}

/// Eight test images: the low-resolution input (nearest-neighbour), bicubic, the model,
/// `other` (when given), and the original, one row each.
fn write_sr_examples<B: Backend>(
    g: &SrGenerator<B>,
    other: Option<&SrGenerator<B>>,
    data: &Dataset,
    path: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let shape = g.image();
    ensure!(shape.channels == 1, "the example grid draws grey images only");
    let few = data.take(8.min(data.len()));
    let low = to_f32(downsample(few.to_tensor::<B>(device), shape))?;
    let nearest: Vec<f32> = low
        .chunks(shape.numel() / 4)
        .flat_map(|img| {
            (0..shape.height).flat_map(move |y| (0..shape.width).map(move |x| img[(y / 2) * (shape.width / 2) + x / 2]))
        })
        .collect();
    let mut rows = vec![
        nearest,
        bicubic_all::<B>(&few, shape, device)?,
        upscale_all(g, &few, device)?,
    ];
    if let Some(o) = other {
        rows.push(upscale_all(o, &few, device)?);
    }
    rows.push(few.features().to_vec());
    let d = shape.numel();
    let grid_rows: Vec<Vec<&[f32]>> = rows.iter().map(|r| r.chunks(d).collect()).collect();
    artifacts::save_image_grid(path, &grid_rows, shape, scale(shape))
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
    #[arg(long, value_enum, default_value_t = AugmentMode::Mix)]
    pub augment_mode: AugmentMode,
    /// The real images' share of the mixed arm's data (`--augment-mode mix`): the real images
    /// are repeated until they make up this share, the synthetic ones fill the rest.
    #[arg(long, default_value_t = 0.5)]
    pub augment_real_share: f64,
    /// Another super-resolution run to compare with (e.g. the content-loss-only model).
    #[arg(long)]
    pub compare: Option<PathBuf>,
}

/// How the augmentation experiment's second arm uses the synthetic images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AugmentMode {
    /// Real and synthetic images together, the real ones repeated to `--augment-real-share`.
    Mix,
    /// Synthetic images for the first half of the budget, then the real images.
    Pretrain,
}

#[derive(Debug, Serialize)]
struct GanReport {
    dataset: String,
    generator: &'static str,
    classifier_test_accuracy: f64,
    n_generated: usize,
    n_real_heldout: usize,
    n_test: usize,
    classifier_fid: f64,
    classifier_fid_floor: f64,
    fid_over_floor: f64,
    class_shares: Vec<f64>,
    distinct_modes: usize,
    classifier_score: f64,
    classifier_score_real: f64,
    conditional_accuracy: Option<f64>,
    augmentation: Option<AugmentReport>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct AugmentReport {
    n_real: usize,
    n_synthetic: usize,
    images_seen_per_classifier: usize,
    seeds: usize,
    /// `--augment-filter`: the least probability of its class a synthetic image needed.
    filter_min_probability: Option<f64>,
    /// `--augment-mode`.
    mode: AugmentMode,
    /// `--augment-real-share`: the real images' share asked for in the mixed arm.
    real_share_requested: f64,
    /// Copies of the real images in the mixed arm: the whole number nearest that share.
    real_copies: usize,
    /// The real images' share of the mixed arm's data that those copies give.
    real_share: f64,
    /// Per seed, the share of synthetic draws that passed the filter.
    filter_pass_share: Vec<f64>,
    accuracy_real: Vec<f64>,
    accuracy_augmented: Vec<f64>,
    mean_real: f64,
    mean_augmented: f64,
    /// The GAN's `real_shift`: when above 0, the GAN learned from real images shifted by up to
    /// this many pixels, and a third arm trains the classifier on the real images with the same
    /// random shifts and no synthetic ones, so the GAN's part of any gain can be told apart.
    real_shift: usize,
    accuracy_real_shifted: Vec<f64>,
    mean_real_shifted: Option<f64>,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
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
    let d = shape.numel();
    let n = flags.samples.min(unseen.len());
    ensure!(n >= 2, "need at least 2 held-out images and samples, got {n}");
    let (test_feat, test_probs, test_preds) = classifier.describe(splits.test.features(), d, device);
    let test_labels = splits.test.labels().context("the test set has no labels")?;
    let classifier_acc = test_preds
        .iter()
        .zip(test_labels)
        .filter(|(p, l)| **p as i64 == **l)
        .count() as f64
        / test_labels.len() as f64;
    let held = unseen.take(n);
    let (held_feat, _, _) = classifier.describe(held.features(), d, device);
    B::InnerBackend::seed(device, 7);
    let (samples, labels) = generate(&g, sources, n, None, device)?;
    let (gen_feat, gen_probs, gen_preds) = classifier.describe(&samples, d, device);
    let df = classifier.d_features();
    let fid = frechet_distance(&gen_feat, &test_feat, df).map_err(anyhow::Error::msg)?;
    let floor = frechet_distance(&held_feat, &test_feat, df).map_err(anyhow::Error::msg)?;
    let shares = class_shares(&gen_preds, k);
    let conditional_accuracy = (!labels.is_empty())
        .then(|| gen_preds.iter().zip(&labels).filter(|(p, l)| **p as i64 == **l).count() as f64 / labels.len() as f64);
    let first: Vec<f32> = if g.n_classes() > 0 {
        // One row per class.
        let kg = g.n_classes();
        let per: Vec<i64> = (0..kg * 10).map(|i| (i / 10) as i64).collect();
        generate(&g, sources, kg * 10, Some(&per), device)?.0
    } else {
        samples[..d * 100.min(n)].to_vec()
    };
    grid(&run.file("samples.png"), &first, shape, 10)?;

    let augmentation = if augmentation {
        let real_shift = stored.gan.as_ref().map_or(0, |c| c.real_shift);
        Some(augment_experiment::<B>(
            &g, sources, &splits, flags, real_shift, device,
        )?)
    } else {
        None
    };
    let report = GanReport {
        dataset: stored.run.data.dataset.clone(),
        generator: which,
        classifier_test_accuracy: classifier_acc,
        n_generated: n,
        n_real_heldout: n,
        n_test: splits.test.len(),
        classifier_fid: fid,
        classifier_fid_floor: floor,
        fid_over_floor: fid / floor,
        class_shares: shares.clone(),
        distinct_modes: distinct_modes(&shares),
        classifier_score: classifier_score(&gen_probs, k),
        classifier_score_real: classifier_score(&test_probs, k),
        conditional_accuracy,
        augmentation,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{} on {} ({} generator)", args.run.display(), report.dataset, which);
    println!(
        "  evaluation classifier: test accuracy {:.2} %",
        100.0 * report.classifier_test_accuracy
    );
    println!(
        "  classifier-feature FID {:.3} vs real-data floor {:.3} ({:.2}x), {} samples / {} held-out / {} test images",
        fid, floor, report.fid_over_floor, n, n, report.n_test
    );
    println!(
        "  class coverage: {} of {k} classes; shares {}",
        report.distinct_modes,
        shares
            .iter()
            .map(|s| format!("{:.1}", 100.0 * s))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  classifier score {:.3} (real test images {:.3})",
        report.classifier_score, report.classifier_score_real
    );
    if let Some(a) = conditional_accuracy {
        println!("  samples classified as their conditioned class: {:.2} %", 100.0 * a);
    }
    if let Some(a) = &report.augmentation {
        let (mr, sr) = mean_sd(&a.accuracy_real);
        let (ma, sa) = mean_sd(&a.accuracy_augmented);
        let spread = |s: f64| {
            if a.seeds > 1 {
                format!(" ± {:.2}", 100.0 * s)
            } else {
                String::new()
            }
        };
        let mut how = match a.mode {
            AugmentMode::Mix => format!("mixed, {:.1} % real", 100.0 * a.real_share),
            AugmentMode::Pretrain => "pre-training".to_string(),
        };
        if let Some(p) = a.filter_min_probability {
            how.push_str(&format!(", filtered at {p}"));
        }
        println!(
            "  augmentation ({} seed(s), {} images seen per classifier): {} real images {:.2}{} %; \
             + {} synthetic ({how}) {:.2}{} % ({:+.2} points)",
            a.seeds,
            a.images_seen_per_classifier,
            a.n_real,
            100.0 * mr,
            spread(sr),
            a.n_synthetic,
            100.0 * ma,
            spread(sa),
            100.0 * (ma - mr)
        );
        if !a.accuracy_real_shifted.is_empty() {
            let (ms, ss) = mean_sd(&a.accuracy_real_shifted);
            println!(
                "    the GAN learned from images shifted by up to {} px; the real images with those shifts and \
                 no synthetic ones: {:.2}{} % ({:+.2} points)",
                a.real_shift,
                100.0 * ms,
                spread(ss),
                100.0 * (ms - mr)
            );
        }
    }
    let path = run.file("eval.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "written to {} and {}",
        path.display(),
        run.file("samples.png").display()
    );
    Ok(())
}

/// Trains the evaluation classifier's architecture on `data` for exactly `budget` images with
/// `seed`, from `init` or from fresh weights; returns its accuracy on `test` and the model.
fn train_probe_classifier<B: AutodiffBackend>(
    data: &Dataset,
    test: &Dataset,
    k: usize,
    budget: usize,
    seed: u64,
    init: Option<Classifier<B>>,
    device: &B::Device,
) -> anyhow::Result<(f64, Classifier<B>)> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let shape = data.image_shape().context("images needed")?;
    ensure!(
        !data.is_empty() && budget > 0,
        "the augmentation experiment needs images and a budget"
    );
    let cfg = ClassifierConfig::new(shape, k);
    // Exactly `budget` images, in passes over freshly shuffled copies of the data, so both arms
    // of the experiment take the same number of steps whatever their sizes.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut order = Vec::with_capacity(budget);
    while order.len() < budget {
        let mut pass: Vec<usize> = (0..data.len()).collect();
        pass.shuffle(&mut rng);
        order.extend(pass.into_iter().take(budget - order.len()));
    }
    let stream = data.subset(&order, "augmentation-stream");
    let train = TrainConfig::default()
        .with_num_epochs(1)
        .with_batch_size(64)
        .with_learning_rate(1e-3)
        .with_seed(seed);
    B::seed(device, seed);
    let model: Classifier<B> = match init {
        Some(m) => m,
        None => cfg.try_init(device)?,
    };
    let fitted = Trainer::new(train)?.fit(model, &stream, None::<&Dataset>, &serde_json::Value::Null, device)?;
    Ok((test_accuracy(&fitted.model.valid(), test, device)?, fitted.model))
}

/// `n` copies of `data`'s images, in turn, each shifted by its own random whole number of pixels,
/// up to `max` in each direction, with zero fill: the classical augmentation of the experiment's
/// third arm, the same as a GAN's `real_shift`.
fn shifted_copies(data: &Dataset, n: usize, max: usize, seed: u64) -> anyhow::Result<Dataset> {
    use rand::{Rng, SeedableRng};
    let shape = data.image_shape().context("shifting needs images")?;
    let labels = data.labels().context("the training images have no labels")?;
    ensure!(!data.is_empty(), "no images to shift");
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let d = shape.numel();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let m = max as i64;
    let mut x = vec![0.0f32; n * d];
    let mut y = Vec::with_capacity(n);
    for (i, out) in x.chunks_exact_mut(d).enumerate() {
        let src = i % data.len();
        let img = &data.features()[src * d..][..d];
        let (dy, dx) = (rng.random_range(-m..=m), rng.random_range(-m..=m));
        // Output pixel (r, q) is input pixel (r + dy, q + dx), as in `gen_gan::translate`.
        for ch in 0..c {
            for r in 0..h {
                let sr = r as i64 + dy;
                if !(0..h as i64).contains(&sr) {
                    continue;
                }
                for q in 0..w {
                    let sq = q as i64 + dx;
                    if (0..w as i64).contains(&sq) {
                        out[(ch * h + r) * w + q] = img[(ch * h + sr as usize) * w + sq as usize];
                    }
                }
            }
        }
        y.push(labels[src]);
    }
    Ok(Dataset::new("shifted", x, d, Some(y), Some(shape))?)
}

/// The synthetic images kept so far, per class up to a quota.
struct Kept<'a> {
    quota: &'a [usize],
    have: &'a mut [usize],
    x: &'a mut Vec<f32>,
    y: &'a mut Vec<i64>,
}

impl Kept<'_> {
    /// Keeps each image (rows of `images`, one label and one row of class probabilities per
    /// image) whose probability of its own class is at least `min_prob`, while its class is
    /// below quota; returns how many reached `min_prob`, kept or not.
    fn select(&mut self, images: &[f32], labels: &[i64], probs: &[f32], min_prob: f64) -> usize {
        let (n, k) = (labels.len(), self.quota.len());
        if n == 0 {
            return 0;
        }
        let d = images.len() / n;
        let mut passed = 0;
        for ((img, &c), p) in images.chunks(d).zip(labels).zip(probs.chunks(k)) {
            let c = c as usize;
            if f64::from(p[c]) < min_prob {
                continue;
            }
            passed += 1;
            if self.have[c] < self.quota[c] {
                self.have[c] += 1;
                self.x.extend_from_slice(img);
                self.y.push(c as i64);
            }
        }
        passed
    }
}

/// How many whole copies of `n_real` real images bring them nearest `real_share` of a mix with
/// `n_syn` synthetic ones (at least one copy, so no labelled image is left out).
fn real_copies(n_real: usize, n_syn: usize, real_share: f64) -> usize {
    let wanted = real_share / (1.0 - real_share) * n_syn as f64 / n_real.max(1) as f64;
    (wanted.round() as usize).max(1)
}

/// The real images' share of a mix of `copies` copies of `n_real` with `n_syn` synthetic ones.
fn mixed_real_share(n_real: usize, n_syn: usize, copies: usize) -> f64 {
    let real = (copies * n_real) as f64;
    real / (real + n_syn as f64).max(1.0)
}

/// `copies` copies of `real`, then `syn` (see [`real_copies`]): the real images' share of every
/// batch drawn from the result is fixed, so synthetic images add variety and do not crowd out
/// the labelled data.
fn mix_real(real: &Dataset, syn: &Dataset, copies: usize) -> anyhow::Result<Dataset> {
    let (real_y, syn_y) = (
        real.labels().context("the training images have no labels")?,
        syn.labels().context("the synthetic images have no labels")?,
    );
    let mut x = Vec::with_capacity(copies * real.features().len() + syn.features().len());
    let mut y = Vec::with_capacity(copies * real.len() + syn.len());
    for _ in 0..copies {
        x.extend_from_slice(real.features());
        y.extend_from_slice(real_y);
    }
    x.extend_from_slice(syn.features());
    y.extend_from_slice(syn_y);
    Ok(Dataset::new("augmented", x, real.d(), Some(y), real.image_shape())?)
}

/// Class-balanced synthetic images (`n` in all, the classes in turn) to which `judge` gives
/// their conditioned class a probability of at least `min_prob`; drawn in rounds until every
/// class has its share. Returns the images, their labels and the share of draws that reached
/// `min_prob`.
fn filtered_synthetic<B: Backend>(
    g: &Generator<B>,
    sources: Option<&Sources>,
    judge: &Classifier<B>,
    n: usize,
    min_prob: f64,
    device: &B::Device,
) -> anyhow::Result<(Vec<f32>, Vec<i64>, f64)> {
    let k = g.n_classes();
    ensure!(
        k > 0 && k == judge.n_classes(),
        "filtering needs a conditional generator with the classifier's classes: {k} against {}",
        judge.n_classes()
    );
    // Class c gets n / k images, the first n % k classes one more, as `generate` cycles them.
    let quota: Vec<usize> = (0..k).map(|c| n / k + usize::from(c < n % k)).collect();
    let mut have = vec![0usize; k];
    let (mut x, mut y) = (Vec::new(), Vec::with_capacity(n));
    let (mut drawn, mut passed) = (0usize, 0usize);
    let max_draws = 50 * n.max(1);
    while y.len() < n {
        ensure!(
            drawn < max_draws,
            "--augment-filter {min_prob}: after {drawn} draws only {} of {n} synthetic images reach it \
             (per class: {have:?}); lower the threshold",
            y.len()
        );
        let wanted: Vec<i64> = (0..k).filter(|&c| have[c] < quota[c]).map(|c| c as i64).collect();
        let round = (2 * (n - y.len())).clamp(500, 20_000);
        let labels: Vec<i64> = (0..round).map(|i| wanted[i % wanted.len()]).collect();
        let (images, labels) = generate(g, sources, round, Some(&labels), device)?;
        drawn += round;
        let d = images.len() / round;
        let (_, probs, _) = judge.describe(&images, d, device);
        let mut kept = Kept {
            quota: &quota,
            have: &mut have,
            x: &mut x,
            y: &mut y,
        };
        passed += kept.select(&images, &labels, &probs, min_prob);
    }
    Ok((x, y, passed as f64 / drawn as f64))
}

/// The augmentation experiment: the classifier on the run's training images alone, and with
/// class-balanced synthetic images (optionally filtered by the first classifier), for several
/// seeds; both arms see the same number of training images. The second arm mixes real and
/// synthetic images (the real ones repeated to `--augment-real-share` of the mix, half by
/// default), or pre-trains on the synthetic ones (`--augment-mode`).
/// With `real_shift` above 0 (the GAN's), a third arm sees the real images randomly shifted.
fn augment_experiment<B: AutodiffBackend>(
    g: &Generator<B::InnerBackend>,
    sources: Option<&Sources>,
    splits: &Splits,
    flags: &GanEvalFlags,
    real_shift: usize,
    device: &B::Device,
) -> anyhow::Result<AugmentReport> {
    let real = &splits.train;
    let k = g.n_classes();
    let n_syn = flags.synthetic.unwrap_or(10 * real.len());
    // Computed once, so the mixed sets, the progress lines and the report agree on the share.
    let copies = real_copies(real.len(), n_syn, flags.augment_real_share);
    let real_share = mixed_real_share(real.len(), n_syn, copies);
    let shape = real.image_shape().context("images needed")?;
    let mut acc_real = Vec::new();
    let mut acc_aug = Vec::new();
    let mut acc_shifted = Vec::new();
    let mut pass_shares = Vec::new();
    for seed in 0..flags.augment_seeds as u64 {
        eprintln!("augmentation experiment, seed {seed}: {} real images alone", real.len());
        let budget = flags.augment_budget;
        let (acc, judge) = train_probe_classifier::<B>(real, &splits.test, k, budget, seed, None, device)?;
        let judge = judge.valid();
        acc_real.push(acc);
        B::InnerBackend::seed(device, 1000 + seed);
        let (syn, labels) = match flags.augment_filter {
            None => generate(g, sources, n_syn, None, device)?,
            Some(p) => {
                let (x, y, pass) = filtered_synthetic(g, sources, &judge, n_syn, p, device)?;
                eprintln!(
                    "augmentation experiment, seed {seed}: {:.1} % of the synthetic draws pass the filter",
                    100.0 * pass
                );
                pass_shares.push(pass);
                (x, y)
            }
        };
        let syn = Dataset::new("synthetic", syn, shape.numel(), Some(labels), Some(shape))?;
        let acc = match flags.augment_mode {
            AugmentMode::Mix => {
                let mixed = mix_real(real, &syn, copies)?;
                eprintln!(
                    "augmentation experiment, seed {seed}: {} real ({copies} copies) + {n_syn} synthetic images, mixed ({:.1} % real)",
                    real.len(),
                    100.0 * real_share
                );
                train_probe_classifier::<B>(&mixed, &splits.test, k, budget, seed, None, device)?.0
            }
            AugmentMode::Pretrain => {
                eprintln!(
                    "augmentation experiment, seed {seed}: {n_syn} synthetic images, then {} real",
                    real.len()
                );
                let first = budget / 2;
                let (_, pre) = train_probe_classifier::<B>(&syn, &splits.test, k, first, seed, None, device)?;
                train_probe_classifier::<B>(real, &splits.test, k, budget - first, seed, Some(pre), device)?.0
            }
        };
        acc_aug.push(acc);
        if real_shift > 0 {
            eprintln!(
                "augmentation experiment, seed {seed}: {} real images shifted by up to {real_shift} px",
                real.len()
            );
            let shifted = shifted_copies(real, budget, real_shift, 2000 + seed)?;
            acc_shifted.push(train_probe_classifier::<B>(&shifted, &splits.test, k, budget, seed, None, device)?.0);
        }
    }
    Ok(AugmentReport {
        n_real: real.len(),
        n_synthetic: n_syn,
        images_seen_per_classifier: flags.augment_budget,
        seeds: flags.augment_seeds,
        filter_min_probability: flags.augment_filter,
        mode: flags.augment_mode,
        real_share_requested: flags.augment_real_share,
        real_copies: copies,
        real_share,
        filter_pass_share: pass_shares,
        mean_real: mean_sd(&acc_real).0,
        mean_augmented: mean_sd(&acc_aug).0,
        accuracy_real: acc_real,
        accuracy_augmented: acc_aug,
        real_shift,
        mean_real_shifted: (!acc_shifted.is_empty()).then(|| mean_sd(&acc_shifted).0),
        accuracy_real_shifted: acc_shifted,
    })
}

#[derive(Debug, Serialize)]
struct SrReport {
    dataset: String,
    n_test: usize,
    model: SrScores,
    bicubic: SrScores,
    compared: Option<(String, SrScores)>,
    gain_over_bicubic_db: f64,
}

fn eval_sr<B: Backend>(args: &RunArgs, flags: &GanEvalFlags, device: &B::Device) -> anyhow::Result<()> {
    let (stored, run, g) = load_sr::<B>(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let model = sr_scores(&g, &splits.test, device)?;
    let base = bicubic_scores::<B>(&splits.test, device)?;
    let other = match &flags.compare {
        Some(p) => {
            let o = load_sr::<B>(p, device)?.2;
            ensure!(
                o.image() == g.image(),
                "--compare {}: that run upscales to {}x{} images, {} to {}x{}",
                p.display(),
                o.image().height,
                o.image().width,
                args.run.display(),
                g.image().height,
                g.image().width
            );
            Some(o)
        }
        None => None,
    };
    let compared = match (&other, &flags.compare) {
        (Some(o), Some(p)) => Some((p.display().to_string(), sr_scores(o, &splits.test, device)?)),
        _ => None,
    };
    write_sr_examples(&g, other.as_ref(), &splits.test, &run.file("sr_examples.png"), device)?;
    let report = SrReport {
        dataset: stored.run.data.dataset.clone(),
        n_test: splits.test.len(),
        model,
        bicubic: base,
        gain_over_bicubic_db: model.psnr - base.psnr,
        compared,
    };
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
            values.extend(to_f32(g.upscale(low))?);
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
    fn shifted_copies_move_each_image_by_at_most_the_shift() {
        // Two 5x6 images, one lit pixel each, at (2, 3) and (1, 1).
        let shape = ImageShape::grey(5, 6);
        let mut x = vec![0.0f32; 60];
        x[2 * 6 + 3] = 1.0;
        x[30 + 6 + 1] = 0.5;
        let data = Dataset::new("two", x, 30, Some(vec![4, 7]), Some(shape)).unwrap();
        let out = shifted_copies(&data, 200, 1, 3).unwrap();
        assert_eq!(
            (out.len(), out.image_shape(), out.labels().unwrap()[..4].to_vec()),
            (200, Some(shape), vec![4, 7, 4, 7])
        );
        let mut seen = std::collections::HashSet::new();
        for (i, img) in out.features().chunks(30).enumerate() {
            let (y0, x0, v) = if i % 2 == 0 { (2, 3, 1.0) } else { (1, 1, 0.5) };
            let lit: Vec<usize> = (0..30).filter(|&p| img[p] != 0.0).collect();
            assert_eq!(lit.len(), 1, "copy {i}: {img:?}");
            let (y, x) = (lit[0] / 6, lit[0] % 6);
            assert!(
                y.abs_diff(y0) <= 1 && x.abs_diff(x0) <= 1 && img[lit[0]] == v,
                "copy {i} at ({y}, {x})"
            );
            seen.insert((i % 2, lit[0]));
        }
        // Every one of the 3 x 3 shifts of both images turns up among 100 copies each.
        assert_eq!(seen.len(), 18);
        let same = shifted_copies(&data, 4, 0, 3).unwrap();
        assert_eq!(same.features(), [data.features(), data.features()].concat());
    }

    #[test]
    fn mixing_repeats_the_real_images_to_their_share() {
        let shape = ImageShape::grey(1, 2);
        let real = Dataset::new("real", vec![1.0, 2.0, 3.0, 4.0], 2, Some(vec![0, 1]), Some(shape)).unwrap();
        let syn = Dataset::new("syn", vec![9.0; 12], 2, Some(vec![5; 6]), Some(shape)).unwrap();
        let real_count = |d: &Dataset| d.labels().unwrap().iter().filter(|&&c| c != 5).count();
        let mix = |share| {
            let copies = real_copies(real.len(), syn.len(), share);
            (
                mix_real(&real, &syn, copies).unwrap(),
                mixed_real_share(real.len(), syn.len(), copies),
            )
        };
        // Half: 6 synthetic images need 3 copies of the 2 real ones.
        let (half, share) = mix(0.5);
        assert_eq!((half.len(), real_count(&half), share), (12, 6, 0.5));
        assert_eq!(&half.features()[..4], real.features());
        assert_eq!(&half.labels().unwrap()[6..], &[5; 6]);
        // Three quarters: 18 real images beside the 6 synthetic ones.
        let (most, share) = mix(0.75);
        assert_eq!((most.len(), real_count(&most), share), (24, 18, 0.75));
        // A small share still keeps one copy of every real image, and the share says so.
        let (few, share) = mix(0.01);
        assert_eq!((few.len(), real_count(&few), share), (8, 2, 0.25));
        // Whole copies cannot always hit the share: the report carries the one they give, as
        // the experiment's 600 real and 6,000 synthetic images at a quarter real do (23.1 %).
        assert_eq!(real_copies(600, 6000, 0.25), 3);
        assert!((mixed_real_share(600, 6000, 3) - 1800.0 / 7800.0).abs() < 1e-12);
    }

    #[test]
    fn balanced_counts_follow_the_weights() {
        assert_eq!(balanced_counts(10, &[1.0, 1.0, 2.0]), vec![3, 2, 5]);
        assert_eq!(balanced_counts(4, &[0.0, 1.0]), vec![0, 4]);
        assert_eq!(balanced_counts(7, &[1.0; 10]).iter().sum::<usize>(), 7);
    }

    /// `Kept::select` over `images` against the given quotas and counts.
    fn select(
        have: &mut [usize],
        quota: &[usize],
        out: (&mut Vec<f32>, &mut Vec<i64>),
        batch: (&[f32], &[i64], &[f32]),
        p: f64,
    ) -> usize {
        let mut kept = Kept {
            quota,
            have,
            x: out.0,
            y: out.1,
        };
        kept.select(batch.0, batch.1, batch.2, p)
    }

    #[test]
    fn the_filter_keeps_confident_images_up_to_each_class_quota() {
        // Five one-value images of two classes; probabilities of (class 0, class 1) per image.
        let images = [10.0, 11.0, 12.0, 13.0, 14.0];
        let labels = [0, 0, 1, 1, 0];
        let probs = [0.9, 0.1, 0.4, 0.6, 0.2, 0.8, 0.3, 0.7, 0.95, 0.05];
        let batch = (&images[..], &labels[..], &probs[..]);
        let (quota, mut have, mut x, mut y) = ([1, 5], [0, 0], Vec::new(), Vec::new());
        // At 0.75: images 0 (0.9), 2 (0.8) and 4 (0.95) pass; class 0's quota of one keeps
        // image 0 and drops image 4.
        assert_eq!(select(&mut have, &quota, (&mut x, &mut y), batch, 0.75), 3);
        assert_eq!(
            (x.as_slice(), y.as_slice(), have),
            (&[10.0, 12.0][..], &[0, 1][..], [1, 1])
        );
        // At 0: every image passes, and only class 1 has room.
        assert_eq!(select(&mut have, &quota, (&mut x, &mut y), batch, 0.0), 5);
        assert_eq!((x, y, have), (vec![10.0, 12.0, 12.0, 13.0], vec![0, 1, 1, 1], [1, 3]));
        // Nothing to judge.
        let (mut x, mut y) = (Vec::new(), Vec::new());
        assert_eq!(select(&mut [0], &[1], (&mut x, &mut y), (&[], &[], &[]), 0.5), 0);
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
