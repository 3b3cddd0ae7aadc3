//! The VAE's commands: training, evaluation (ELBO, importance-sampled log-likelihood, figures),
//! encoding with uncertainty, sampling, interpolation and traversal.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use clap::Args;
use gen_core::BatchSource;
use gen_core::nn::ImageShape;
use gen_core::train::{RunDir, Trainer, load_module};
use gen_data::Dataset;
use gen_vae::{Vae, latent};

use gen_vae::eval::{LikelihoodOptions, check_labels, elbo_stats, eval_data, for_batches};

use crate::backend::{Job, with_backend};
use crate::commands::{StoredConfig, TrainJob, read_stored};
use crate::data::{Splits, data_dir, load_splits};
use crate::{EncodeArgs, RunArgs, artifacts, image_io, plots};

/// The number of classes of a labelled data set's splits (largest label + 1).
pub(crate) fn n_classes(splits: &Splits) -> anyhow::Result<usize> {
    let mut max = 0;
    for data in [&splits.train, &splits.valid, &splits.test] {
        let labels = data
            .labels()
            .with_context(|| format!("{} has no labels; a conditional model needs them", data.name()))?;
        if let Some(l) = labels.iter().find(|&&l| l < 0) {
            bail!("{}: a conditional model needs labels 0, 1, ...; found {l}", data.name());
        }
        max = max.max(labels.iter().copied().max().unwrap_or(0));
    }
    Ok(max as usize + 1)
}

/// Trains a VAE run (`gen train --model vae|cvae`).
pub(crate) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let splits = load_splits(&job.cfg.data, &job.data_dir)?;
    let classes = if job.cfg.model.family == crate::config::Family::Cvae {
        Some(n_classes(&splits)?)
    } else {
        None
    };
    let vae_cfg = job
        .cfg
        .model
        .vae(
            splits.train.d(),
            splits.train.image_shape(),
            splits.standardised,
            classes,
        )
        .context("in [model]")?;
    let stored = StoredConfig::for_vae(job.cfg.clone(), vae_cfg.clone(), job.backend);
    let run = job.open_run(&stored)?;
    eprintln!(
        "training {} ({}, {} likelihood{}) on {} ({} train / {} valid / {} test rows) with {}",
        job.root.display(),
        vae_cfg.variant(),
        vae_cfg.likelihood.name(),
        if vae_cfg.binarize { ", dynamic binarisation" } else { "" },
        job.cfg.data.dataset,
        splits.train.len(),
        splits.valid.len(),
        splits.test.len(),
        job.backend
    );
    B::seed(&device, job.cfg.train.seed);
    let model: Vae<B> = vae_cfg.try_init(&device)?;
    let meta = serde_json::to_value(&stored)?;
    let fitted = Trainer::new(job.cfg.train.clone())?
        .with_run_dir(run.clone())
        .with_resume(job.resume)
        .with_observer(crate::progress::Progress::new())
        .fit(model, &splits.train, Some(&splits.valid), &meta, &device)?;
    let train_secs = started.elapsed().as_secs_f64();
    let model = fitted.model.valid();
    let inner = device.clone();
    let test = eval_data(model.binarizes(), &splits.test)?;
    B::InnerBackend::seed(&inner, 1);
    let elbo = elbo_stats(&model, &test, &inner)?;
    artifacts::plot_loss_curve(run.metrics().path(), &run.file("loss_curve.svg"))?;
    let mut figures = Vec::new();
    if let Some(shape) = image_shape(&splits) {
        write_reconstructions(&model, &test, shape, &run.file("reconstructions.png"), &inner)?;
        write_samples(&model, shape, 8, None, &run.file("samples.png"), &inner)?;
        figures.push("reconstructions.png, samples.png");
    }
    println!(
        "done in {train_secs:.1}s: best epoch {} (validation loss {:.3}); test negative ELBO {:.3} nats \
         (reconstruction {:.3} + KL {:.3})",
        fitted.best_epoch.unwrap_or(fitted.epochs_completed),
        fitted.best_valid_loss.unwrap_or(f64::NAN),
        elbo.neg_elbo,
        elbo.recon,
        elbo.kl
    );
    println!(
        "results in {}/: config.json, best.ckpt, checkpoint.ckpt, metrics.csv, loss_curve.svg{}",
        run.root().display(),
        figures.first().map(|f| format!(", {f}")).unwrap_or_default()
    );
    println!(
        "next: gen eval --run {}  (importance-sampled log-likelihood, figures)",
        run.root().display()
    );
    Ok(())
}

pub(crate) fn image_shape(splits: &Splits) -> Option<ImageShape> {
    splits.test.image_shape().filter(|_| !splits.standardised)
}

/// Loads a VAE run's configuration and model.
pub(crate) fn load_vae<B: Backend>(root: &Path, device: &B::Device) -> anyhow::Result<(StoredConfig, RunDir, Vae<B>)> {
    let (stored, run) = read_stored(root)?;
    let Some(cfg) = &stored.vae else {
        bail!("{} holds an autoencoder, not a VAE", root.display());
    };
    let fresh: Vae<B> = cfg.try_init(device)?;
    let path = run.model_path();
    let (model, _) = load_module(fresh, &path, device).with_context(|| format!("loading {}", path.display()))?;
    Ok((stored, run, model))
}

/// Whether the run folder holds a VAE.
pub(crate) fn is_vae_run(root: &Path) -> anyhow::Result<bool> {
    Ok(read_stored(root)?.0.vae.is_some())
}

/// Arguments of `gen eval` that only a VAE uses.
#[derive(Debug, Args, Clone)]
pub struct VaeEvalFlags {
    /// Importance samples per test image for a VAE's log-likelihood (5000 in the literature).
    #[arg(long, default_value_t = 1000)]
    pub k: usize,
    /// Estimate the VAE's log-likelihood on the first N test images only.
    #[arg(long)]
    pub nll_rows: Option<usize>,
}

struct EvalJob(RunArgs, VaeEvalFlags);

impl Job for EvalJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let (args, flags) = (self.0, self.1);
        if flags.k == 0 {
            bail!("--k must be > 0, got 0");
        }
        let (stored, run, model) = load_vae::<B::InnerBackend>(&args.run, &device)?;
        let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
        let cfg = stored.vae.as_ref().expect("a VAE run");
        let rows = flags.nll_rows.unwrap_or(splits.test.len()).min(splits.test.len());
        let bar = indicatif::ProgressBar::new(rows as u64).with_message(format!("ln p(x), k = {}", flags.k));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} images, {eta} left")
                .expect("template")
                .progress_chars("=> "),
        );
        let options = LikelihoodOptions {
            k: flags.k,
            nll_rows: flags.nll_rows,
        };
        let mut report = gen_vae::eval::likelihood_report(
            &stored.run.data.dataset,
            &model,
            cfg,
            &splits.test,
            options,
            &device,
            |n| bar.set_position(n as u64),
        )?;
        bar.finish_and_clear();
        let test = eval_data(model.binarizes(), &splits.test)?;
        let mut figures = Vec::new();
        if let Some(shape) = image_shape(&splits) {
            let conditional = model.n_classes().is_some();
            write_samples(&model, shape, 8, None, &run.file("samples.png"), &device)?;
            figures.push("samples.png".to_string());
            write_reconstructions(&model, &test, shape, &run.file("reconstructions.png"), &device)?;
            figures.push("reconstructions.png".to_string());
            let pairs: Vec<(usize, usize)> = (0..4)
                .map(|i| (2 * i, 2 * i + 1))
                .filter(|p| p.1 < test.len())
                .collect();
            write_interpolations(
                &model,
                &test,
                &pairs,
                10,
                shape,
                &run.file("interpolation.png"),
                &device,
            )?;
            figures.push("interpolation.png".to_string());
            let dims: Vec<usize> = (0..model_d_latent(&model).min(10)).collect();
            write_traversal(
                &model,
                &test,
                0,
                &dims,
                3.0,
                11,
                shape,
                &run.file("traversal.png"),
                &device,
            )?;
            figures.push("traversal.png".to_string());
            if model_d_latent(&model) == 2 && !conditional {
                write_manifold(&model, 20, shape, &run.file("manifold.png"), &device)?;
                figures.push("manifold.png".to_string());
            }
        }
        if model_d_latent(&model) == 2 {
            let (mu, _) = encode_split(&model, &test, &device)?;
            plots::scatter_2d(
                &run.file("codes.svg"),
                "posterior means of the test set",
                &mu,
                test.labels(),
            )?;
            figures.push("codes.svg".to_string());
        }
        report.figures = figures;
        print!("{}", report.summary());
        if !report.figures.is_empty() {
            println!("  figures in {}/: {}", run.root().display(), report.figures.join(", "));
        }
        let path = run.file("eval.json");
        gen_core::train::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("written to {}", path.display());
        Ok(())
    }
}

fn model_d_latent<B: Backend>(model: &Vae<B>) -> usize {
    gen_core::Encoder::d_latent(model)
}

/// `gen eval` for a VAE run.
pub(crate) fn eval(args: RunArgs, flags: VaeEvalFlags) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, EvalJob(args, flags))
}

/// Posterior means and standard deviations of every row, row-major `[n, d_latent]` each.
fn encode_split<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    device: &B::Device,
) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    let (mut mu, mut sigma) = (Vec::new(), Vec::new());
    for_batches::<B>(data, model.n_classes().is_some(), device, |x, y| {
        let q = model.posterior(x, y);
        sigma.extend(gen_data::tensor_values(q.std())?);
        mu.extend(gen_data::tensor_values(q.mu)?);
        Ok(())
    })?;
    Ok((mu, sigma))
}

struct EncodeJob(EncodeArgs);

impl Job for EncodeJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        let (stored, run, model) = load_vae::<B::InnerBackend>(&a.run.run, &device)?;
        let splits = load_splits(&stored.run.data, &data_dir(a.run.data_dir.as_deref()))?;
        let data = splits.get(a.split);
        let (mu, sigma) = encode_split(&model, data, &device)?;
        let k = model_d_latent(&model);
        let split = format!("{:?}", a.split).to_lowercase();
        let out = a
            .output
            .clone()
            .unwrap_or_else(|| run.file(&format!("codes-{split}.csv")));
        let mut header: Vec<String> = (0..k)
            .map(|j| format!("mu{j}"))
            .chain((0..k).map(|j| format!("sigma{j}")))
            .collect();
        if data.labels().is_some() {
            header.push("label".into());
        }
        let rows = (0..data.len()).map(|i| {
            let mut r: Vec<String> = mu[i * k..(i + 1) * k]
                .iter()
                .chain(&sigma[i * k..(i + 1) * k])
                .map(|v| v.to_string())
                .collect();
            if let Some(l) = data.labels() {
                r.push(l[i].to_string());
            }
            r
        });
        artifacts::write_csv(&out, &header, rows)?;
        let stem = out.with_extension("");
        let mu_path = PathBuf::from(format!("{}-mu.npy", stem.display()));
        let sigma_path = PathBuf::from(format!("{}-sigma.npy", stem.display()));
        image_io::write_npy(&mu_path, &mu, data.len(), k)?;
        image_io::write_npy(&sigma_path, &sigma, data.len(), k)?;
        let mean_sigma = sigma.iter().map(|&v| v as f64).sum::<f64>() / sigma.len().max(1) as f64;
        println!(
            "wrote μ and σ of {} {split} rows ({k} dimensions; mean σ {mean_sigma:.3}) to {}, {} and {}",
            data.len(),
            out.display(),
            mu_path.display(),
            sigma_path.display()
        );
        Ok(())
    }
}

/// `gen encode` for a VAE run: μ and σ per sample.
pub(crate) fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    with_backend(backend, EncodeJob(args))
}

fn labels_tensor<B: Backend>(labels: &[i64], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

fn codes_tensor<B: Backend>(codes: Vec<f32>, d: usize, device: &B::Device) -> Tensor<B, 2> {
    let n = codes.len() / d;
    Tensor::from_data(TensorData::new(codes, [n, d]), device)
}

/// A grid of decoded prior samples: `n` rows of `n`; a conditional VAE gets one row per class
/// (all classes, or `class` alone).
fn write_samples<B: Backend>(
    model: &Vae<B>,
    shape: ImageShape,
    n: usize,
    class: Option<i64>,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let (rows, labels): (usize, Option<Vec<i64>>) = match (model.n_classes(), class) {
        (None, _) => (n, None),
        (Some(c), None) => (c, Some((0..c as i64).flat_map(|k| std::iter::repeat_n(k, n)).collect())),
        (Some(_), Some(k)) => (n, Some(vec![k; n * n])),
    };
    let y = labels.as_deref().map(|l| labels_tensor::<B>(l, device));
    let images = gen_data::tensor_values(model.sample(rows * n, y, device))?;
    let d = shape.numel();
    let grid: Vec<Vec<&[f32]>> = (0..rows)
        .map(|r| (0..n).map(|c| &images[(r * n + c) * d..(r * n + c + 1) * d]).collect())
        .collect();
    artifacts::save_image_grid(out, &grid, shape, scale(shape))
}

pub(crate) fn scale(shape: ImageShape) -> u32 {
    if shape.height < 16 { 4 } else { 2 }
}

/// The first 8 test images above their reconstructions from the posterior mean.
fn write_reconstructions<B: Backend>(
    model: &Vae<B>,
    test: &Dataset,
    shape: ImageShape,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let sample = test.take(8);
    let mut rec = Vec::new();
    for_batches::<B>(&sample, model.n_classes().is_some(), device, |x, y| {
        let q = model.posterior(x, y.clone());
        rec.extend(gen_data::tensor_values(model.decode_mean(q.mu, y))?);
        Ok(())
    })?;
    let d = shape.numel();
    let grid = vec![
        (0..sample.len()).map(|i| sample.row(i)).collect(),
        (0..sample.len()).map(|i| &rec[i * d..(i + 1) * d]).collect(),
    ];
    artifacts::save_image_grid(out, &grid, shape, scale(shape))
}

/// Posterior means (and labels) of the given rows.
fn means_of<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    rows: &[usize],
    device: &B::Device,
) -> anyhow::Result<(Vec<f32>, Option<Vec<i64>>)> {
    let b: gen_core::Batch<B> = data.batch(rows, device);
    let conditional = model.n_classes().is_some();
    if conditional && b.y.is_none() {
        bail!("{} has no labels; the conditional VAE needs them", data.name());
    }
    let labels = data.labels().map(|l| rows.iter().map(|&i| l[i]).collect());
    let mu = gen_data::tensor_values(model.posterior(b.x, if conditional { b.y } else { None }).mu)?;
    Ok((mu, labels.filter(|_| conditional)))
}

/// One row per pair: the first image, `steps` decodings along the line between the two
/// posterior means, the second image.
#[allow(clippy::too_many_arguments)]
fn write_interpolations<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    pairs: &[(usize, usize)],
    steps: usize,
    shape: ImageShape,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let d_lat = model_d_latent(model);
    let d = shape.numel();
    let mut decoded_rows = Vec::new();
    for &(a, b) in pairs {
        let (mu, labels) = means_of(model, data, &[a, b], device)?;
        let codes = latent::lerp(&mu[..d_lat], &mu[d_lat..], steps);
        // A conditional model decodes the whole line with the first image's class.
        let y = labels.map(|l| labels_tensor::<B>(&vec![l[0]; steps], device));
        decoded_rows.push(gen_data::tensor_values(
            model.decode_mean(codes_tensor(codes, d_lat, device), y),
        )?);
    }
    let grid: Vec<Vec<&[f32]>> = pairs
        .iter()
        .zip(&decoded_rows)
        .map(|(&(a, b), dec)| {
            std::iter::once(data.row(a))
                .chain((0..steps).map(|s| &dec[s * d..(s + 1) * d]))
                .chain(std::iter::once(data.row(b)))
                .collect()
        })
        .collect();
    artifacts::save_image_grid(out, &grid, shape, scale(shape))
}

/// One row per latent dimension in `dims`: the posterior mean of test image `base`, with that
/// dimension swept over `steps` values in `[-extent, extent]`.
#[allow(clippy::too_many_arguments)]
fn write_traversal<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    base: usize,
    dims: &[usize],
    extent: f32,
    steps: usize,
    shape: ImageShape,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let d_lat = model_d_latent(model);
    let (mu, labels) = means_of(model, data, &[base], device)?;
    let values = latent::linspace(extent, steps);
    let d = shape.numel();
    let mut decoded = Vec::new();
    for &dim in dims {
        if dim >= d_lat {
            bail!("--dim {dim} is out of range: the model has {d_lat} latent dimensions");
        }
        let codes = latent::traversal(&mu, dim, &values);
        let y = labels.as_ref().map(|l| labels_tensor::<B>(&vec![l[0]; steps], device));
        decoded.push(gen_data::tensor_values(
            model.decode_mean(codes_tensor(codes, d_lat, device), y),
        )?);
    }
    let grid: Vec<Vec<&[f32]>> = decoded
        .iter()
        .map(|row| (0..steps).map(|s| &row[s * d..(s + 1) * d]).collect())
        .collect();
    artifacts::save_image_grid(out, &grid, shape, scale(shape))
}

/// The decoded 2-D latent space: an `n x n` grid at the prior's quantiles.
fn write_manifold<B: Backend>(
    model: &Vae<B>,
    n: usize,
    shape: ImageShape,
    out: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let codes = latent::manifold_grid(n);
    let images = gen_data::tensor_values(model.decode_mean(codes_tensor(codes, 2, device), None))?;
    let d = shape.numel();
    let grid: Vec<Vec<&[f32]>> = (0..n)
        .map(|r| (0..n).map(|c| &images[(r * n + c) * d..(r * n + c + 1) * d]).collect())
        .collect();
    artifacts::save_image_grid(out, &grid, shape, if shape.height < 16 { 2 } else { 1 })
}

/// Loads a VAE run and its test split, refusing tables (the figures are images).
fn load_for_figures<B: Backend>(
    args: &RunArgs,
    device: &B::Device,
) -> anyhow::Result<(RunDir, Vae<B>, Dataset, ImageShape)> {
    let (stored, run, model) = load_vae::<B>(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let Some(shape) = image_shape(&splits) else {
        bail!(
            "{} was trained on a table ({}); this command draws images",
            args.run.display(),
            stored.run.data.dataset
        );
    };
    if splits.test.is_empty() {
        bail!("{}: the test split is empty", args.run.display());
    }
    check_labels(&splits.test, model.n_classes())?;
    Ok((run, model, splits.test, shape))
}

/// `gen sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Images per row (and rows, for an unconditional model).
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// A conditional VAE's class to draw (default: one row per class).
    #[arg(long)]
    class: Option<i64>,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output PNG (default: RUN/samples.png).
    #[arg(long)]
    output: Option<PathBuf>,
}

struct SampleJob(SampleArgs);

impl Job for SampleJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        if a.n == 0 {
            bail!("--n must be > 0, got 0");
        }
        let (run, model, _, shape) = load_for_figures::<B::InnerBackend>(&a.run, &device)?;
        match (model.n_classes(), a.class) {
            (None, Some(_)) => bail!("--class needs a conditional VAE (gen train --model cvae)"),
            (Some(c), Some(k)) if k < 0 || k >= c as i64 => {
                bail!("--class {k} is out of range: the model has {c} classes")
            }
            _ => {}
        }
        B::seed(&device, a.seed);
        let out = a.output.unwrap_or_else(|| run.file("samples.png"));
        write_samples(&model, shape, a.n, a.class, &out, &device)?;
        println!("wrote samples from the prior to {}", out.display());
        Ok(())
    }
}

/// `gen sample`.
pub(crate) fn sample(args: SampleArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    if crate::gan::is_gan_run(&args.run.run)? {
        return crate::gan::sample(args.run, args.n, args.class, args.seed, args.output);
    }
    with_backend(backend, SampleJob(args))
}

/// `gen interpolate`.
#[derive(Debug, Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Index of the first test image.
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// Index of the second test image.
    #[arg(long, default_value_t = 1)]
    to: usize,
    /// Decoded points on the line between the two codes.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Take the two images from this file or folder (IDX or PNG) instead of the test set;
    /// its first two images are used.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Output PNG strip (default: RUN/interpolation-FROM-TO.png).
    #[arg(long)]
    output: Option<PathBuf>,
}

struct InterpolateJob(InterpolateArgs);

impl Job for InterpolateJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        if a.steps < 2 {
            bail!("--steps must be at least 2, got {}", a.steps);
        }
        let (run, model, test, shape) = load_for_figures::<B::InnerBackend>(&a.run, &device)?;
        let (data, (i, j)) = match &a.input {
            Some(path) => {
                if model.n_classes().is_some() {
                    bail!("--input has no labels; a conditional VAE interpolates test images (--from, --to)");
                }
                let images = gen_data::images::read_images(path)?;
                crate::codec::check_shape(Some(shape), images.shape, path)?;
                if images.n < 2 {
                    bail!(
                        "{} holds {} image(s); interpolation needs two",
                        path.display(),
                        images.n
                    );
                }
                let data = Dataset::new("input", images.values, shape.numel(), None, Some(shape))?;
                (data, (0, 1))
            }
            None => {
                for idx in [a.from, a.to] {
                    if idx >= test.len() {
                        bail!(
                            "test image {idx} does not exist: the test set has {} images",
                            test.len()
                        );
                    }
                }
                (test, (a.from, a.to))
            }
        };
        let out = a
            .output
            .unwrap_or_else(|| run.file(&format!("interpolation-{i}-{j}.png")));
        write_interpolations(&model, &data, &[(i, j)], a.steps, shape, &out, &device)?;
        println!(
            "wrote the interpolation between images {i} and {j} ({} steps) to {}",
            a.steps,
            out.display()
        );
        Ok(())
    }
}

/// `gen interpolate`.
pub(crate) fn interpolate(args: InterpolateArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    with_backend(backend, InterpolateJob(args))
}

/// `gen traverse`.
#[derive(Debug, Args)]
pub struct TraverseArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The latent dimension to sweep (default: every dimension, one row each).
    #[arg(long)]
    dim: Option<usize>,
    /// The sweep runs from -EXTENT to EXTENT (in prior standard deviations).
    #[arg(long, default_value_t = 3.0)]
    extent: f32,
    /// Decoded points per sweep.
    #[arg(long, default_value_t = 11)]
    steps: usize,
    /// Index of the test image whose code the sweep starts from.
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// Output PNG (default: RUN/traversal.png or RUN/traversal-dimD.png).
    #[arg(long)]
    output: Option<PathBuf>,
}

struct TraverseJob(TraverseArgs);

impl Job for TraverseJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        if a.steps < 2 {
            bail!("--steps must be at least 2, got {}", a.steps);
        }
        if !(a.extent.is_finite() && a.extent > 0.0) {
            bail!("--extent must be finite and > 0, got {}", a.extent);
        }
        let (run, model, test, shape) = load_for_figures::<B::InnerBackend>(&a.run, &device)?;
        if a.from >= test.len() {
            bail!(
                "test image {} does not exist: the test set has {} images",
                a.from,
                test.len()
            );
        }
        let dims: Vec<usize> = match a.dim {
            Some(d) => vec![d],
            None => (0..model_d_latent(&model)).collect(),
        };
        let out = a.output.unwrap_or_else(|| match a.dim {
            Some(d) => run.file(&format!("traversal-dim{d}.png")),
            None => run.file("traversal.png"),
        });
        write_traversal(&model, &test, a.from, &dims, a.extent, a.steps, shape, &out, &device)?;
        println!(
            "wrote the traversal of {} dimension(s) from -{e} to {e} to {}",
            dims.len(),
            out.display(),
            e = a.extent
        );
        Ok(())
    }
}

/// `gen traverse`.
pub(crate) fn traverse(args: TraverseArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    with_backend(backend, TraverseJob(args))
}
