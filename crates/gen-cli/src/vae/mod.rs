//! The VAE's commands: training, evaluation (ELBO, importance-sampled log-likelihood, figures)
//! and encoding with uncertainty; [`figures`] holds sampling, interpolation and traversal.

mod figures;

pub(crate) use figures::{InterpolateArgs, SampleArgs, TraverseArgs, interpolate, sample, traverse};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use gen_core::Encoder;
use gen_core::train::{RunDir, load_module};
use gen_vae::Vae;

use gen_vae::eval::{LikelihoodOptions, elbo_stats, eval_data};

use crate::backend::{Job, with_backend};
use crate::data::{data_dir, load_splits};
use crate::run::{EncodeArgs, RunArgs, StoredConfig, TrainJob, read_stored};
use crate::{artifacts, plots};

/// Trains a VAE run (`gen train --model vae|cvae`).
pub(crate) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let splits = load_splits(&job.cfg.data, &job.data_dir)?;
    let classes = if job.cfg.model.family == crate::config::Family::Cvae {
        Some(splits.n_classes()?)
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
    let fitted = crate::parallel::Fit::new(&job, &run, &splits, meta).run(model, &device)?;
    let train_secs = started.elapsed().as_secs_f64();
    let model = fitted.model.valid();
    let inner = device.clone();
    let test = eval_data(model.binarizes(), &splits.test)?;
    B::InnerBackend::seed(&inner, 1);
    let elbo = elbo_stats(&model, &test, &inner)?;
    artifacts::plot_loss_curve(run.metrics().path(), &run.file("loss_curve.svg"))?;
    let mut figures = Vec::new();
    if let Some(shape) = splits.image_shape() {
        let rows = gen_vae::figures::reconstructions(&model, &test, 8, &inner)?;
        artifacts::save_image_rows(&run.file("reconstructions.png"), &rows, shape)?;
        let rows = gen_vae::figures::samples(&model, 8, None, &inner)?;
        artifacts::save_image_rows(&run.file("samples.png"), &rows, shape)?;
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

struct ReconstructJob(crate::ae::ReconstructArgs);

impl Job for ReconstructJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let args = self.0;
        if args.n == 0 {
            bail!("--n must be > 0, got 0");
        }
        let (stored, run, model) = load_vae::<B::InnerBackend>(&args.run.run, &device)?;
        let splits = load_splits(&stored.run.data, &data_dir(args.run.data_dir.as_deref()))?;
        let out = args.output.unwrap_or_else(|| run.file("reconstructions.png"));
        let rows = gen_vae::figures::reconstructions(&model, &splits.test, args.n, &device)?;
        if artifacts::is_npy(&out) {
            artifacts::write_npy_pair(&out, &rows[0], &rows[1], splits.test.d())?;
        } else {
            let shape = splits
                .image_shape()
                .context("a VAE of a table has no images to draw; write --output FILE.npy")?;
            artifacts::save_image_rows(&out, &rows, shape)?;
        }
        println!(
            "wrote {} originals and reconstructions (decoded posterior means) to {}",
            rows[0].len() / splits.test.d(),
            out.display()
        );
        Ok(())
    }
}

/// `gen reconstruct` on a VAE run.
pub(crate) fn reconstruct(args: crate::ae::ReconstructArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    with_backend(backend, ReconstructJob(args))
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
        if let Some(shape) = splits.image_shape() {
            let mut figure = |name: &str, rows: Vec<Vec<f32>>| -> anyhow::Result<()> {
                artifacts::save_image_rows(&run.file(name), &rows, shape)?;
                figures.push(name.to_string());
                Ok(())
            };
            figure("samples.png", gen_vae::figures::samples(&model, 8, None, &device)?)?;
            figure(
                "reconstructions.png",
                gen_vae::figures::reconstructions(&model, &test, 8, &device)?,
            )?;
            let pairs: Vec<(usize, usize)> = (0..4)
                .map(|i| (2 * i, 2 * i + 1))
                .filter(|p| p.1 < test.len())
                .collect();
            figure(
                "interpolation.png",
                gen_vae::figures::interpolations(&model, &test, &pairs, 10, &device)?,
            )?;
            let dims: Vec<usize> = (0..model.d_latent().min(10)).collect();
            figure(
                "traversal.png",
                gen_vae::figures::traversal(&model, &test, 0, &dims, 3.0, 11, &device)?,
            )?;
            if model.d_latent() == 2 && model.n_classes().is_none() {
                // Its images are drawn at half the other figures' scale: 20 x 20 of them.
                let rows = gen_vae::figures::manifold(&model, 20, &device)?;
                let grid: Vec<Vec<&[f32]>> = rows.iter().map(|r| r.chunks(shape.numel()).collect()).collect();
                artifacts::save_image_grid(
                    &run.file("manifold.png"),
                    &grid,
                    shape,
                    artifacts::grid_scale(shape) / 2,
                )?;
                figures.push("manifold.png".to_string());
            }
        }
        if model.d_latent() == 2 {
            let (mu, _) = gen_vae::figures::posterior_moments(&model, &test, &device)?;
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

/// `gen eval` for a VAE run.
pub(crate) fn eval(args: RunArgs, flags: VaeEvalFlags) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, EvalJob(args, flags))
}

struct EncodeJob(EncodeArgs);

impl Job for EncodeJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        let (stored, run, model) = load_vae::<B::InnerBackend>(&a.run.run, &device)?;
        let splits = load_splits(&stored.run.data, &data_dir(a.run.data_dir.as_deref()))?;
        let data = a.split.of(&splits);
        let (mu, sigma) = gen_vae::figures::posterior_moments(&model, data, &device)?;
        let k = model.d_latent();
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
        gen_data::export::write_npy(&mu_path, &mu, data.len(), k)?;
        gen_data::export::write_npy(&sigma_path, &sigma, data.len(), k)?;
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
