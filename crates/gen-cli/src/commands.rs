//! The subcommands that work on runs: train, eval, encode, reconstruct, download.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use gen_ae::{Autoencoder, AutoencoderConfig};
use gen_core::Encoder;
use gen_core::train::{RunDir, Trainer, load_module};
use gen_vae::VaeConfig;
use serde::{Deserialize, Serialize};

use crate::backend::{BackendChoice, Job, with_backend};
use crate::config::{RunConfig, TrainFlags};
use crate::data::{Splits, data_dir, load_splits};
use crate::{DownloadArgs, EncodeArgs, EvalArgs, ReconstructArgs, RunArgs, artifacts, image_io, plots};

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
    /// The backend it was trained on.
    pub backend: BackendChoice,
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
            backend,
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

    /// The autoencoder's configuration, or an error naming the run for a VAE run.
    pub fn ae_config(&self, root: &Path) -> anyhow::Result<&AutoencoderConfig> {
        match &self.autoencoder {
            Some(c) => Ok(c),
            None if self.vae.is_some() => bail!(
                "{} holds a VAE; this command needs an autoencoder run (VAEs have gen eval, encode, \
                 sample, interpolate and traverse)",
                root.display()
            ),
            None if self.gan.is_some() || self.sr.is_some() || self.classifier.is_some() => bail!(
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

impl Job for TrainJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        if self.cfg.model.family.is_vae() {
            return crate::vae::train::<B>(self, device);
        }
        if self.cfg.model.family.is_gan_crate() {
            return crate::gan::train::<B>(self, device);
        }
        let started = std::time::Instant::now();
        let splits = load_splits(&self.cfg.data, &self.data_dir)?;
        let ae_cfg = self
            .cfg
            .model
            .autoencoder(splits.train.d(), splits.train.image_shape(), splits.standardised)?;
        ae_cfg.validate().context("in [model]")?;
        let stored = StoredConfig::new(self.cfg.clone(), ae_cfg.clone(), self.backend);
        let run = self.open_run(&stored)?;
        eprintln!(
            "training {} on {} ({} train / {} valid / {} test rows, {} features) with {}",
            self.root.display(),
            self.cfg.data.dataset,
            splits.train.len(),
            splits.valid.len(),
            splits.test.len(),
            splits.train.d(),
            self.backend
        );
        B::seed(&device, self.cfg.train.seed);
        let model: Autoencoder<B> = ae_cfg.init(&device);
        let meta = serde_json::to_value(&stored)?;
        let fitted = Trainer::new(self.cfg.train.clone())?
            .with_run_dir(run.clone())
            .with_resume(self.resume)
            .with_observer(crate::progress::Progress::new())
            .fit(model, &splits.train, Some(&splits.valid), &meta, &device)?;
        let model = fitted.model.valid();
        let inner = device.clone();
        let (mse, se) = gen_ae::eval::reconstruction_errors::<B::InnerBackend>(&model, &splits.test, &inner)?;
        let baseline = splits.train.mean_row_mse(&splits.test);
        artifacts::plot_loss_curve(run.metrics().path(), &run.file("loss_curve.svg"))?;
        let figure =
            write_reconstructions::<B::InnerBackend>(&model, &splits, 8, &run.file("reconstructions.png"), &inner)?;
        println!(
            "done in {:.1}s: best epoch {} (validation loss {:.5}); test MSE {mse:.5} per value, {se:.3} per sample \
             (mean-image baseline {baseline:.5})",
            started.elapsed().as_secs_f64(),
            fitted.best_epoch.unwrap_or(fitted.epochs_completed),
            fitted.best_valid_loss.unwrap_or(f64::NAN),
        );
        println!(
            "results in {}/: config.json, best.ckpt, checkpoint.ckpt, metrics.csv, loss_curve.svg{}",
            run.root().display(),
            figure.map(|f| format!(", {f}")).unwrap_or_default()
        );
        println!("next: gen eval --run {}", run.root().display());
        Ok(())
    }
}

/// Writes originals above reconstructions for the first `n` test samples: a PNG for images, a
/// CSV for tables. Returns the file name written.
fn write_reconstructions<B: Backend>(
    model: &Autoencoder<B>,
    splits: &Splits,
    n: usize,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<Option<String>> {
    let sample = splits.test.take(n);
    let (rec, d) = sample.map_rows::<B>(device, |x| model.reconstruct(x))?;
    let name = out.file_name().map(|f| f.to_string_lossy().into_owned());
    match sample.image_shape() {
        Some(shape) if !splits.standardised => {
            let scale = if shape.height < 16 { 4 } else { 2 };
            let mut rows = Vec::new();
            for chunk_start in (0..sample.len()).step_by(8) {
                let idx: Vec<usize> = (chunk_start..(chunk_start + 8).min(sample.len())).collect();
                rows.push(idx.iter().map(|&i| sample.row(i)).collect());
                rows.push(idx.iter().map(|&i| &rec[i * d..(i + 1) * d]).collect());
            }
            artifacts::save_image_grid(out, &rows, shape, scale)?;
            Ok(name)
        }
        _ => {
            let out = out.with_extension("csv");
            let header: Vec<String> = (0..d)
                .map(|j| format!("x{j}"))
                .chain((0..d).map(|j| format!("reconstruction{j}")))
                .collect();
            let rows = (0..sample.len()).map(|i| {
                sample
                    .row(i)
                    .iter()
                    .chain(&rec[i * d..(i + 1) * d])
                    .map(|v| v.to_string())
                    .collect()
            });
            artifacts::write_csv(&out, &header, rows)?;
            Ok(out.file_name().map(|f| f.to_string_lossy().into_owned()))
        }
    }
}

/// `gen train`.
pub fn train(flags: TrainFlags) -> anyhow::Result<()> {
    let data_dir = data_dir(flags.data_dir.as_deref());
    let (cfg, root) = if flags.resume {
        let Some(name) = &flags.name else {
            bail!("--resume needs --name of the run to continue")
        };
        let root = flags.runs_dir.join(name);
        let stored: StoredConfig = RunDir::open(&root)?.read_config()?;
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
    };
    with_backend(flags.backend, job)
}

/// A trained run, loaded: its configuration, data and model.
pub(crate) struct Loaded<B: Backend> {
    pub stored: StoredConfig,
    pub run: RunDir,
    pub splits: Splits,
    pub model: Autoencoder<B>,
}

pub(crate) fn load_run<B: Backend>(args: &RunArgs, device: &B::Device) -> anyhow::Result<Loaded<B>> {
    let (stored, run, model) = load_model(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    Ok(Loaded {
        stored,
        run,
        splits,
        model,
    })
}

/// Opens a run folder and loads its configuration and model (not its data).
pub(crate) fn load_model<B: Backend>(
    root: &Path,
    device: &B::Device,
) -> anyhow::Result<(StoredConfig, RunDir, Autoencoder<B>)> {
    let (stored, run) = read_stored(root)?;
    let fresh: Autoencoder<B> = stored.ae_config(root)?.try_init(device)?;
    let path = run.model_path();
    let (model, _) = load_module(fresh, &path, device).with_context(|| format!("loading {}", path.display()))?;
    Ok((stored, run, model))
}

struct EvalJob(RunArgs);

impl Job for EvalJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let l = load_run::<B::InnerBackend>(&self.0, &device)?;
        let images = l.splits.test.image_shape().filter(|_| !l.splits.standardised);
        let report = gen_ae::eval::evaluate(
            &l.stored.run.data.dataset,
            &l.model,
            l.stored.ae_config(l.run.root())?,
            &l.splits.train,
            &l.splits.test,
            images,
            gen_ae::eval::model_hash(&l.run)?,
            &device,
        )?;
        print!("{}", report.summary());
        for e in &report.denoising_examples {
            let rows: Vec<Vec<&[f32]>> = e.rows.iter().map(|r| r.iter().map(Vec::as_slice).collect()).collect();
            let shape = images.expect("examples come from images");
            let scale = if shape.height < 16 { 4 } else { 2 };
            let path = l.run.root().join(format!("denoise-sigma{}.png", e.sigma));
            artifacts::save_image_grid(&path, &rows, shape, scale)?;
        }
        if !report.denoising_examples.is_empty() {
            println!(
                "  example grids (clean, noisy, median, denoised): {}/denoise-sigma*.png",
                l.run.root().display()
            );
        }
        if report.d_latent == 2 {
            let (codes, _) = l.splits.test.map_rows(&device, |x| l.model.encode(x))?;
            let path = l.run.file("codes.svg");
            plots::scatter_2d(&path, "2-D codes of the test set", &codes, l.splits.test.labels())?;
            println!("scatter plot of the codes: {}", path.display());
        }
        let path = l.run.file("eval.json");
        gen_core::train::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("written to {}", path.display());
        Ok(())
    }
}

/// `gen eval`: the autoencoder's report, or the VAE's.
pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    if crate::vae::is_vae_run(&args.run.run)? {
        return crate::vae::eval(args.run, args.vae);
    }
    if crate::gan::is_gan_run(&args.run.run)? {
        return crate::gan::eval(args.run, args.gan);
    }
    let backend = args.run.backend;
    with_backend(backend, EvalJob(args.run))
}

struct EncodeJob(EncodeArgs);

impl Job for EncodeJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let l = load_run::<B::InnerBackend>(&self.0.run, &device)?;
        let data = l.splits.get(self.0.split);
        let (codes, k) = data.map_rows(&device, |x| l.model.encode(x))?;
        let split = format!("{:?}", self.0.split).to_lowercase();
        let out = self
            .0
            .output
            .clone()
            .unwrap_or_else(|| l.run.file(&format!("codes-{split}.csv")));
        let mut header: Vec<String> = (0..k).map(|j| format!("z{j}")).collect();
        if data.labels().is_some() {
            header.push("label".into());
        }
        let rows = (0..data.len()).map(|i| {
            let mut r: Vec<String> = codes[i * k..(i + 1) * k].iter().map(|v| v.to_string()).collect();
            if let Some(l) = data.labels() {
                r.push(l[i].to_string());
            }
            r
        });
        artifacts::write_csv(&out, &header, rows)?;
        let npy = out.with_extension("npy");
        image_io::write_npy(&npy, &codes, data.len(), k)?;
        let mut written = format!("{} and {}", out.display(), npy.display());
        if let Some(labels) = data.labels() {
            let path = out.with_file_name(format!(
                "{}-labels.npy",
                out.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let as_f32: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
            image_io::write_npy(&path, &as_f32, data.len(), 1)?;
            written += &format!(" (labels in {})", path.display());
        }
        println!("wrote {} codes of width {k} to {written}", data.len());
        Ok(())
    }
}

/// `gen encode`: codes of an autoencoder, μ and σ of a VAE.
pub fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    if crate::vae::is_vae_run(&args.run.run)? {
        return crate::vae::encode(args);
    }
    let backend = args.run.backend;
    with_backend(backend, EncodeJob(args))
}

struct ReconstructJob(ReconstructArgs);

impl Job for ReconstructJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        if self.0.n == 0 {
            bail!("--n must be > 0, got 0");
        }
        let l = load_run::<B::InnerBackend>(&self.0.run, &device)?;
        let out = self
            .0
            .output
            .clone()
            .unwrap_or_else(|| l.run.file("reconstructions.png"));
        let written = write_reconstructions(&l.model, &l.splits, self.0.n, &out, &device)?;
        let file = written.map(|f| out.with_file_name(f)).unwrap_or(out);
        println!(
            "wrote {} originals and reconstructions to {}",
            self.0.n.min(l.splits.test.len()),
            file.display()
        );
        Ok(())
    }
}

/// `gen reconstruct`.
pub fn reconstruct(args: ReconstructArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    with_backend(backend, ReconstructJob(args))
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
