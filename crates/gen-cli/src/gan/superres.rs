//! Super-resolution runs: `gen train --model sr`, `gen eval` and `gen upscale` on them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use gen_core::nn::ImageShape;
use gen_core::train::{RunDir, load_module, write_atomic};
use gen_data::Dataset;
use gen_data::images::{Images, read_images, write_pngs};
use gen_data::tensor_values;
use gen_gan::sr::{self, SrConfig, SrGenerator, downsample};
use gen_gan::{Discriminator, EpochReport, GanTrainer};

use super::GanEvalFlags;
use crate::artifacts;
use crate::backend::{BackendChoice, Job, with_backend};
use crate::data::{data_dir, load_splits};
use crate::run::{RunArgs, StoredConfig, TrainJob, read_stored};

pub(super) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    super::check_epochs_left(&job)?;
    let (splits, shape) = super::image_splits(&job)?;
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

pub(crate) fn load<B: Backend>(
    root: &Path,
    device: &B::Device,
) -> anyhow::Result<(StoredConfig, RunDir, SrGenerator<B>)> {
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

/// The figure of [`sr::examples`] at `path`.
fn write_sr_examples<B: Backend>(
    g: &SrGenerator<B>,
    other: Option<&SrGenerator<B>>,
    data: &Dataset,
    path: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    let rows = sr::examples(g, other, data, device)?;
    artifacts::save_image_rows(path, &rows, g.image())
}

pub(super) fn eval<B: Backend>(args: &RunArgs, flags: &GanEvalFlags, device: &B::Device) -> anyhow::Result<()> {
    let (stored, run, g) = load::<B>(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let other = match &flags.compare {
        Some(p) => Some((p.display().to_string(), load::<B>(p, device)?.2)),
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
        let (_, run, g) = load::<B::InnerBackend>(&a.run, &device)?;
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
