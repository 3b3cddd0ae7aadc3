//! `gen bench`: throughput of the reference models' training step and of encoder inference,
//! median of several timed runs after warm-up, on each CPU backend (and wgpu when asked).

use std::path::PathBuf;
use std::time::Instant;

use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use gen_ae::AutoencoderConfig;
use gen_core::train::FlushingAdam;
use gen_core::{Batch, BatchSource, Objective, Stage};
use gen_data::Dataset;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::backend::{BackendChoice, Job, with_backend};

mod workloads;

/// Multiply-accumulates of one forward pass of the reference MLP autoencoder
/// 784-512-256-32-256-512-784.
const AE_MACS: u64 = 2 * (784 * 512 + 512 * 256 + 256 * 32);
/// FLOPs per sample of a training step, by the 3x-forward convention of the PyTorch reference.
const AE_TRAIN_FLOPS: u64 = 3 * 2 * AE_MACS;
/// Multiply-accumulates of one forward pass of the reference MLP VAE 784-512-256-(2x20) and
/// 20-256-512-784.
const VAE_MACS: u64 = 784 * 512 + 512 * 256 + 256 * 40 + 20 * 256 + 256 * 512 + 512 * 784;
/// FLOPs per sample of a VAE training step (3x forward).
const VAE_TRAIN_FLOPS: u64 = 3 * 2 * VAE_MACS;
/// FLOPs per sample of the encoder's forward pass.
const ENC_FLOPS: u64 = 2 * (784 * 512 + 512 * 256 + 256 * 32);

/// Options of `gen bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backends to measure (repeat the flag); default: every CPU backend of this build.
    #[arg(long, value_enum)]
    backend: Vec<BackendChoice>,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Steps per timed run.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Also write the rows as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Instead of the table: one epoch of the reference MLP autoencoder over 60,000 random
    /// 784-value samples held in memory like MNIST (batch 128, shuffled), on the first backend;
    /// the row's peak memory is the MNIST-sized training run's (run it in a fresh process).
    #[arg(long)]
    epoch: bool,
    /// Measure only the workloads whose name starts with this (repeat the flag), e.g. `dcgan`
    /// or `mlp_ae_train`: for profiling one row at a time.
    #[arg(long, value_name = "PREFIX")]
    only: Vec<String>,
}

/// One measured workload.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// What was measured.
    pub workload: String,
    /// On which backend.
    pub backend: String,
    /// Samples per step.
    pub batch: usize,
    /// Median throughput.
    pub median_per_s: f64,
    /// Slowest and fastest run.
    pub min_per_s: f64,
    /// Fastest run.
    pub max_per_s: f64,
    /// FLOPs per sample, where known.
    pub flop_per_sample: Option<u64>,
    /// Median GFLOP/s, where the count is known.
    pub gflops: Option<f64>,
    /// Peak resident memory of the process after this row, in MB.
    pub peak_rss_mb: Option<f64>,
    /// Heap allocations per step over the timed runs (the counting global allocator of `gen`).
    pub allocs_per_step: f64,
    /// Bytes allocated per step over the timed runs.
    pub alloc_bytes_per_step: f64,
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The PyTorch reference's model (a): the MLP autoencoder 784-512-256-32, ReLU, sigmoid output,
/// MSE; the one [`AE_MACS`] counts.
fn reference_ae() -> AutoencoderConfig {
    AutoencoderConfig::mlp(784, vec![512, 256], 32)
}

/// Every workload of the table, in its order: what `--only` is checked against.
const WORKLOADS: &[&str] = &[
    "mlp_ae_train",
    "conv_ae_train",
    "mlp_sparse_kl_train",
    "mlp_sparse_l1_train",
    "mlp_dae_train",
    "mlp_cae_train_exact",
    "mlp_cae_train_proj4",
    "cae_784_256_train",
    "mlp_vae_train",
    "conv_vae_train",
    "dcgan_train",
    "batchnorm_burn_train",
    "batchnorm_gen_train",
    "conv_burn_train",
    "conv_gen_train",
    "encoder_inference",
    "mlp_ae_fit_1worker",
    "mlp_ae_fit_workers",
];

#[derive(Clone)]
struct BenchJob {
    backend: BackendChoice,
    warmup: usize,
    runs: usize,
    steps: usize,
    /// Workload-name prefixes to run; empty: all.
    only: Vec<String>,
}

impl BenchJob {
    /// Whether `--only` keeps `workload`.
    fn selected(&self, workload: &str) -> bool {
        assert!(WORKLOADS.contains(&workload), "{workload} is missing from WORKLOADS");
        self.only.is_empty() || self.only.iter().any(|p| workload.starts_with(p.as_str()))
    }

    /// Times whole runs: `warm_up` once, then `run` (which returns the steps it took, each of
    /// `batch` samples) `--runs` times; the row's throughput is the median run's.
    fn time_runs(
        &self,
        workload: &str,
        batch: usize,
        flops: Option<u64>,
        warm_up: impl FnOnce() -> anyhow::Result<()>,
        mut run: impl FnMut() -> anyhow::Result<usize>,
    ) -> anyhow::Result<BenchRow> {
        warm_up()?;
        let allocated = stats_alloc::Region::new(crate::allocator::ALLOCATOR);
        let mut steps = 0;
        let mut rates = Vec::with_capacity(self.runs);
        for _ in 0..self.runs {
            let t = Instant::now();
            let n = run()?;
            rates.push((n * batch) as f64 / t.elapsed().as_secs_f64());
            steps += n;
        }
        Ok(self.row(workload, batch, flops, rates, allocated.change(), steps))
    }

    /// Times `step` (which processes `batch` samples and returns after its results are ready);
    /// `None`, without running it, when `--only` leaves the workload out.
    fn time(&self, workload: &str, batch: usize, flops: Option<u64>, mut step: impl FnMut(usize)) -> Option<BenchRow> {
        if !self.selected(workload) {
            return None;
        }
        for i in 0..self.warmup {
            step(i);
        }
        let allocated = stats_alloc::Region::new(crate::allocator::ALLOCATOR);
        let rates: Vec<f64> = (0..self.runs)
            .map(|_| {
                let t = Instant::now();
                for i in 0..self.steps {
                    step(i);
                }
                (self.steps * batch) as f64 / t.elapsed().as_secs_f64()
            })
            .collect();
        let steps = self.runs * self.steps;
        Some(self.row(workload, batch, flops, rates, allocated.change(), steps))
    }

    /// The row of `rates` (samples per second of each timed run) and the allocations over
    /// `steps` steps; printed as it is made.
    fn row(
        &self,
        workload: &str,
        batch: usize,
        flops: Option<u64>,
        mut rates: Vec<f64>,
        allocated: stats_alloc::Stats,
        steps: usize,
    ) -> BenchRow {
        let steps = steps.max(1) as f64;
        let (min, max) = rates
            .iter()
            .fold((f64::INFINITY, 0f64), |(a, b), &r| (a.min(r), b.max(r)));
        let med = median(&mut rates);
        let row = BenchRow {
            workload: workload.into(),
            backend: self.backend.to_string(),
            batch,
            median_per_s: med,
            min_per_s: min,
            max_per_s: max,
            flop_per_sample: flops,
            gflops: flops.map(|f| med * f as f64 / 1e9),
            peak_rss_mb: peak_rss_mb(),
            allocs_per_step: allocated.allocations as f64 / steps,
            alloc_bytes_per_step: allocated.bytes_allocated as f64 / steps,
        };
        eprintln!(
            "  {:<28} {:<8} {:>10.1} samples/s {:>8.0} allocations/step {:>9.2} MB/step",
            row.workload,
            row.backend,
            row.median_per_s,
            row.allocs_per_step,
            row.alloc_bytes_per_step / 1e6
        );
        row
    }
}

/// One epoch of the reference MLP autoencoder over an MNIST-sized set of random samples, through
/// the same path as real training: rows gathered on the host into a batch per step.
struct EpochJob {
    backend: BackendChoice,
}

/// Rows and batch size of [`EpochJob`]: MNIST's training set, PyTorch reference's batch.
const EPOCH_ROWS: usize = 60_000;
const EPOCH_BATCH: usize = 128;

impl Job for EpochJob {
    type Output = BenchRow;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<BenchRow> {
        B::seed(&device, 0);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let data = random_rows(&mut rng, EPOCH_ROWS, 784)?;
        let mut order: Vec<usize> = (0..EPOCH_ROWS).collect();
        order.shuffle(&mut rng);
        let mut model = reference_ae().init::<B>(&device);
        let mut optim = FlushingAdam::default().init();
        let allocated = stats_alloc::Region::new(crate::allocator::ALLOCATOR);
        let start = Instant::now();
        for chunk in order.chunks(EPOCH_BATCH) {
            let batch: Batch<B> = BatchSource::<B>::batch(&data, chunk, &device);
            let loss = model.objective(&batch, Stage::Train).total;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
        B::sync(&device).expect("device sync");
        let rate = EPOCH_ROWS as f64 / start.elapsed().as_secs_f64();
        let allocated = allocated.change();
        let steps = EPOCH_ROWS.div_ceil(EPOCH_BATCH) as f64;
        Ok(BenchRow {
            workload: "mlp_ae_epoch".into(),
            backend: self.backend.to_string(),
            batch: EPOCH_BATCH,
            median_per_s: rate,
            min_per_s: rate,
            max_per_s: rate,
            flop_per_sample: Some(AE_TRAIN_FLOPS),
            gflops: Some(rate * AE_TRAIN_FLOPS as f64 / 1e9),
            peak_rss_mb: peak_rss_mb(),
            allocs_per_step: allocated.allocations as f64 / steps,
            alloc_bytes_per_step: allocated.bytes_allocated as f64 / steps,
        })
    }
}

/// A data set of `n` rows of `width` values uniform in [0, 1), drawn from `rng`.
fn random_rows(rng: &mut impl Rng, n: usize, width: usize) -> anyhow::Result<Dataset> {
    let features: Vec<f32> = (0..n * width).map(|_| rng.random::<f32>()).collect();
    Ok(Dataset::new("random", features, width, None, None)?)
}

/// `gen bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 || args.steps == 0 {
        anyhow::bail!("--runs and --steps must be > 0");
    }
    // A misspelt prefix would otherwise print an empty table, after minutes of set-up.
    if let Some(p) = args
        .only
        .iter()
        .find(|p| !WORKLOADS.iter().any(|w| w.starts_with(p.as_str())))
    {
        anyhow::bail!("--only {p:?} matches no workload; they are {}", WORKLOADS.join(", "));
    }
    let backends = if args.backend.is_empty() {
        let mut v = Vec::new();
        if cfg!(feature = "flex") {
            v.push(BackendChoice::Flex);
        }
        if cfg!(feature = "ndarray") {
            v.push(BackendChoice::Ndarray);
        }
        v
    } else {
        args.backend.clone()
    };
    let mut rows = Vec::new();
    if args.epoch {
        let Some(&backend) = backends.first() else {
            anyhow::bail!("this build has no backend to run the epoch on");
        };
        eprintln!("one epoch of mlp_ae over {EPOCH_ROWS} random samples on {backend}");
        rows.push(with_backend(backend, EpochJob { backend })?);
    } else {
        eprintln!(
            "warm-up {} steps, then median of {} runs x {} steps",
            args.warmup, args.runs, args.steps
        );
        for backend in backends {
            let job = BenchJob {
                backend,
                warmup: args.warmup,
                runs: args.runs,
                steps: args.steps,
                only: args.only.clone(),
            };
            rows.extend(with_backend(backend, job)?);
        }
    }
    println!(
        "{:<22} {:<8} {:>5} {:>12} {:>21} {:>8} {:>9} {:>10} {:>9}",
        "workload", "backend", "batch", "samples/s", "min-max", "GFLOP/s", "peak MB", "allocs/st", "MB/step"
    );
    let or_dash = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    for r in &rows {
        println!(
            "{:<22} {:<8} {:>5} {:>12.1} {:>21} {:>8} {:>9} {:>10.0} {:>9.2}",
            r.workload,
            r.backend,
            r.batch,
            r.median_per_s,
            format!("{:.0}-{:.0}", r.min_per_s, r.max_per_s),
            or_dash(r.gflops),
            or_dash(r.peak_rss_mb),
            r.allocs_per_step,
            r.alloc_bytes_per_step / 1e6
        );
    }
    if let Some(path) = &args.json {
        gen_core::train::write_atomic(path, serde_json::to_string_pretty(&rows)?.as_bytes())?;
    }
    Ok(())
}
