//! `gen sample` on a GAN run, and `gen augment`.

use std::path::PathBuf;

use super::LoadedGan;
use anyhow::{Context, bail, ensure};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use gen_core::nn::ImageShape;
use gen_core::train::RunDir;
use gen_gan::eval::generate;

use crate::backend::{BackendChoice, Job, with_backend};
use crate::data::{data_dir, load_splits};
use crate::run::{RunArgs, StoredConfig};
use gen_data::export::LabelledWriter;

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
        } = super::load_generator::<B::InnerBackend>(&self.run, false, &data_dir(self.data_dir.as_deref()), &device)?;
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
        super::grid(&out, &images, shape, self.n)?;
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
        } = super::load_generator::<B::InnerBackend>(&a.run, false, &dir, &device)?;
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
        let mut out = LabelledWriter::create(&a.output, a.n, shape).context("--output")?;
        let counts = gen_gan::eval::balanced_counts(a.n, &weights)?;
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
