//! `gen`: train, evaluate and use autoencoders from the command line.

// The unit-test build leaves out the backends (see `backend::with_backend`), so the jobs they
// would run are unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod ae;
mod allocator;
mod anomaly;
mod artifacts;
mod backend;
mod bench;
mod codec;
mod commands;
mod config;
mod data;
mod gan;
mod interop;
mod parallel;
mod plots;
mod progress;
mod run;
mod sweep;
mod vae;

use clap::{Parser, Subcommand};

use crate::ae::ReconstructArgs;
use crate::commands::{DownloadArgs, EvalArgs};
use crate::config::TrainFlags;
use crate::run::EncodeArgs;

/// Autoencoders, variational autoencoders and GANs on burn.
#[derive(Debug, Parser)]
#[command(name = "gen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Train a model; writes runs/NAME/ with config, checkpoints, metrics and figures.
    Train(TrainFlags),
    /// Evaluate a trained run on its test split: an autoencoder's reconstruction beside PCA,
    /// sparsity, contraction, denoising and compression; a VAE's likelihood; a GAN's
    /// classifier-feature FID, coverage (and augmentation); super-resolution PSNR and SSIM.
    Eval(EvalArgs),
    /// Train one model per latent size and compare each with PCA (dimensionality reduction).
    Sweep(sweep::SweepArgs),
    /// Fit on normal data and score anomalies (one-class image protocol, or a table's outliers).
    Anomaly(anomaly::AnomalyArgs),
    /// Remove noise from images (IDX or PNG) with a trained model; writes PNGs.
    Denoise(codec::DenoiseArgs),
    /// Compress images (IDX or PNG) to quantised codes in a .genz file.
    Compress(codec::CompressArgs),
    /// Reconstruct the images of a .genz file made by the same model; writes PNGs.
    Decompress(codec::DecompressArgs),
    /// Write the latent codes of a data split as CSV and .npy (a VAE's μ and σ).
    Encode(EncodeArgs),
    /// Draw images from a VAE's prior or a GAN into a PNG grid (one row per class when conditional).
    Sample(vae::SampleArgs),
    /// Decode the line between two images' VAE codes into a PNG strip.
    Interpolate(vae::InterpolateArgs),
    /// Sweep latent dimensions of a VAE one at a time; one PNG row per dimension.
    Traverse(vae::TraverseArgs),
    /// Reconstruct test samples: a PNG of originals above reconstructions (CSV for tables, or
    /// the numbers as .npy); a VAE decodes each image's posterior mean.
    Reconstruct(ReconstructArgs),
    /// Write labelled synthetic images from a conditional GAN (IDX or CSV) for a class balance.
    Augment(gan::AugmentArgs),
    /// Upscale low-resolution images (IDX or PNG) 2x with a super-resolution run; writes PNGs.
    Upscale(gan::UpscaleArgs),
    /// Write a run's model to a safetensors file that numpy, PyTorch and other tools read.
    Export(interop::ExportArgs),
    /// Create a run folder from a safetensors file in gen's tensor names (as `gen export` writes).
    Import(interop::ImportArgs),
    /// Download and verify MNIST or Fashion-MNIST into the data folder.
    Download(DownloadArgs),
    /// Measure training and inference throughput of the reference models.
    Bench(bench::BenchArgs),
}

fn main() {
    allocator::configure();
    let cli = Cli::parse();
    // The command runs on a thread of rayon's pool, not beside it: a parallel product or sweep
    // started from outside the pool queues its whole job there and puts the caller to sleep until
    // a worker finishes it (a wake-up each way per operation), while one started on a worker
    // runs half itself and hands the other half to the second thread (ARCHITECTURE.md, "Threads").
    let result = match rayon::ThreadPoolBuilder::new().stack_size(COMMAND_STACK).build() {
        Ok(pool) => pool.install(|| run(cli)),
        Err(e) => Err(anyhow::anyhow!("could not start the worker threads: {e}")),
    };
    if let Err(e) = result {
        eprintln!("error: {}", message(&e));
        std::process::exit(1);
    }
}

/// An error and its causes, each said once: the library's errors (`CoreError::Io`, say) already
/// write their cause into their own message, which `{:#}` would repeat.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Stack of each worker thread, the command's included: the main thread's 8 MiB, not rayon's
/// default of 2 MiB.
pub(crate) const COMMAND_STACK: usize = 8 << 20;

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(flags) => commands::train(flags),
        Command::Eval(args) => commands::eval(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Anomaly(args) => anomaly::anomaly(args),
        Command::Denoise(args) => codec::denoise(args),
        Command::Compress(args) => codec::compress(args),
        Command::Decompress(args) => codec::decompress(args),
        Command::Encode(args) => commands::encode(args),
        Command::Sample(args) => commands::sample(args),
        Command::Interpolate(args) => vae::interpolate(args),
        Command::Traverse(args) => vae::traverse(args),
        Command::Reconstruct(args) => commands::reconstruct(args),
        Command::Augment(args) => gan::augment(args),
        Command::Upscale(args) => gan::upscale(args),
        Command::Export(args) => interop::export(args),
        Command::Import(args) => interop::import(args),
        Command::Download(args) => commands::download(args),
        Command::Bench(args) => bench::run(args),
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    #[test]
    fn an_error_says_its_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::from(gen_core::CoreError::io("cannot write", "runs/a/best.ckpt", io));
        assert_eq!(
            super::message(&e),
            "cannot write runs/a/best.ckpt: No such file or directory"
        );
        let e = Err::<(), _>(e).context("training runs/a").unwrap_err();
        assert_eq!(
            super::message(&e),
            "training runs/a: cannot write runs/a/best.ckpt: No such file or directory"
        );
    }
}
