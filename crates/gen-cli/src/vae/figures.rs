//! `gen sample`, `gen interpolate` and `gen traverse` on a VAE run: the figures of
//! [`gen_vae::figures`], drawn as PNGs.

use std::path::PathBuf;

use anyhow::bail;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use gen_core::Encoder;
use gen_core::nn::ImageShape;
use gen_core::train::RunDir;
use gen_data::Dataset;
use gen_vae::Vae;

use gen_vae::eval::check_labels;

use crate::artifacts;
use crate::backend::{Job, with_backend};
use crate::data::{data_dir, load_splits};
use crate::run::RunArgs;

/// Loads a VAE run and its test split, refusing tables (the figures are images).
fn load_for_figures<B: Backend>(
    args: &RunArgs,
    device: &B::Device,
) -> anyhow::Result<(RunDir, Vae<B>, Dataset, ImageShape)> {
    let (stored, run, model) = super::load_vae::<B>(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let Some(shape) = splits.image_shape() else {
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
    pub(crate) run: RunArgs,
    /// Images per row (and rows, for an unconditional model).
    #[arg(long, default_value_t = 8)]
    pub(crate) n: usize,
    /// A conditional VAE's class to draw (default: one row per class).
    #[arg(long)]
    pub(crate) class: Option<i64>,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Output PNG (default: RUN/samples.png).
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
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
        let rows = gen_vae::figures::samples(&model, a.n, a.class, &device)?;
        artifacts::save_image_rows(&out, &rows, shape)?;
        println!("wrote samples from the prior to {}", out.display());
        Ok(())
    }
}

/// `gen sample`.
pub(crate) fn sample(args: SampleArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
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
                crate::data::check_shape(Some(shape), images.shape, path)?;
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
        let rows = gen_vae::figures::interpolations(&model, &data, &[(i, j)], a.steps, &device)?;
        artifacts::save_image_rows(&out, &rows, shape)?;
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
        if let Some(d) = a.dim
            && d >= model.d_latent()
        {
            bail!(
                "--dim {d} is out of range: the model has {} latent dimensions",
                model.d_latent()
            );
        }
        let dims: Vec<usize> = match a.dim {
            Some(d) => vec![d],
            None => (0..model.d_latent()).collect(),
        };
        let out = a.output.unwrap_or_else(|| match a.dim {
            Some(d) => run.file(&format!("traversal-dim{d}.png")),
            None => run.file("traversal.png"),
        });
        let rows = gen_vae::figures::traversal(&model, &test, a.from, &dims, a.extent, a.steps, &device)?;
        artifacts::save_image_rows(&out, &rows, shape)?;
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
