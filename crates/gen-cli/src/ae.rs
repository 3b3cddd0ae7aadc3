//! The autoencoder's commands: training, evaluation, encoding and reconstruction.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use gen_ae::Autoencoder;
use gen_core::Encoder;
use gen_core::train::{RunDir, load_module};

use crate::backend::{Job, with_backend};
use crate::data::{Splits, data_dir, load_splits};
use crate::run::{EncodeArgs, RunArgs, StoredConfig, TrainJob, read_stored};
use crate::{artifacts, plots};

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Number of test samples.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Output file (default: RUN/reconstructions.png, or .csv for tables); a .npy file gets the
    /// reconstructions as float32 numbers, and the inputs beside it in STEM-inputs.npy.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `gen train` for an autoencoder.
pub(crate) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let splits = load_splits(&job.cfg.data, &job.data_dir)?;
    let ae_cfg = job
        .cfg
        .model
        .autoencoder(splits.train.d(), splits.train.image_shape(), splits.standardised)?;
    ae_cfg.validate().context("in [model]")?;
    let stored = StoredConfig::new(job.cfg.clone(), ae_cfg.clone(), job.backend);
    let run = job.open_run(&stored)?;
    eprintln!(
        "training {} on {} ({} train / {} valid / {} test rows, {} features) with {}",
        job.root.display(),
        job.cfg.data.dataset,
        splits.train.len(),
        splits.valid.len(),
        splits.test.len(),
        splits.train.d(),
        job.backend
    );
    B::seed(&device, job.cfg.train.seed);
    let model: Autoencoder<B> = ae_cfg.try_init_on(&splits.train, &device)?;
    let meta = serde_json::to_value(&stored)?;
    let fitted = crate::parallel::Fit::new(&job, &run, &splits, meta).run(model, &device)?;
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
    if artifacts::is_npy(out) {
        artifacts::write_npy_pair(out, sample.features(), &rec, d)?;
        return Ok(name);
    }
    match sample.image_shape() {
        Some(shape) if !splits.standardised => {
            let mut rows = Vec::new();
            for chunk_start in (0..sample.len()).step_by(8) {
                let idx: Vec<usize> = (chunk_start..(chunk_start + 8).min(sample.len())).collect();
                rows.push(idx.iter().map(|&i| sample.row(i)).collect());
                rows.push(idx.iter().map(|&i| &rec[i * d..(i + 1) * d]).collect());
            }
            artifacts::save_image_grid(out, &rows, shape, artifacts::grid_scale(shape))?;
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
            let path = l.run.root().join(format!("denoise-sigma{}.png", e.sigma));
            artifacts::save_image_grid(&path, &rows, shape, artifacts::grid_scale(shape))?;
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

/// `gen eval` on an autoencoder run.
pub(crate) fn eval(args: RunArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, EvalJob(args))
}

struct EncodeJob(EncodeArgs);

impl Job for EncodeJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let l = load_run::<B::InnerBackend>(&self.0.run, &device)?;
        let data = self.0.split.of(&l.splits);
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
        gen_data::export::write_npy(&npy, &codes, data.len(), k)?;
        let mut written = format!("{} and {}", out.display(), npy.display());
        if let Some(labels) = data.labels() {
            let path = out.with_file_name(format!(
                "{}-labels.npy",
                out.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let as_f32: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
            gen_data::export::write_npy(&path, &as_f32, data.len(), 1)?;
            written += &format!(" (labels in {})", path.display());
        }
        println!("wrote {} codes of width {k} to {written}", data.len());
        Ok(())
    }
}

/// `gen encode` on an autoencoder run.
pub(crate) fn encode(args: EncodeArgs) -> anyhow::Result<()> {
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
