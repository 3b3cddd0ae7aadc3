//! `gen`: train, evaluate and use autoencoders from the command line.

mod artifacts;
mod backend;
mod bench;
mod commands;
mod config;
mod data;
mod pca;
mod progress;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::BackendChoice;
use crate::config::TrainFlags;

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
    /// Evaluate a trained run on its test split, beside PCA with as many components.
    Eval(RunArgs),
    /// Write the latent codes of a data split as CSV.
    Encode(EncodeArgs),
    /// Reconstruct test samples: a PNG of originals above reconstructions (CSV for tables).
    Reconstruct(ReconstructArgs),
    /// Download and verify MNIST or Fashion-MNIST into the data folder.
    Download(DownloadArgs),
    /// Measure training and inference throughput of the reference models.
    Bench(bench::BenchArgs),
}

/// Options shared by the commands that read a finished run.
#[derive(Debug, Args)]
struct RunArgs {
    /// The run folder (e.g. runs/ae-mlp-digits-z8).
    #[arg(long)]
    run: PathBuf,
    /// Folder with the MNIST-style data sets (default: $GEN_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    backend: BackendChoice,
}

#[derive(Debug, Args)]
struct EncodeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Which split to encode.
    #[arg(long, value_enum, default_value_t = data::SplitChoice::Test)]
    split: data::SplitChoice,
    /// Output CSV (default: RUN/codes-SPLIT.csv).
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReconstructArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Number of test samples.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// Output file (default: RUN/reconstructions.png, or .csv for tables).
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DownloadArgs {
    /// mnist or fashion-mnist.
    dataset: String,
    /// Folder to download into (default: $GEN_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Mirror to fetch `<file>.gz` from instead of the default.
    #[arg(long)]
    base_url: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(flags) => commands::train(flags),
        Command::Eval(args) => commands::eval(args),
        Command::Encode(args) => commands::encode(args),
        Command::Reconstruct(args) => commands::reconstruct(args),
        Command::Download(args) => commands::download(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
