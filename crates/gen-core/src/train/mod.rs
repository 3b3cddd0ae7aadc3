//! The training loop that every family uses, with its run folder, checkpoints and metrics.
//!
//! A run folder holds:
//! - `config.json`: everything needed to rebuild the model and repeat the run;
//! - `checkpoint.ckpt`: the model and optimizer state after the last completed epoch;
//! - `best.ckpt`: the model of the epoch with the lowest validation loss;
//! - `metrics.csv`: one row per epoch.
//!
//! Files are replaced atomically (written to a temporary file, then renamed), so an interrupted run
//! never leaves a half-written checkpoint behind.

mod checkpoint;
mod config;
mod metrics;
mod optim;
#[cfg(feature = "collective")]
mod parallel;
mod run_dir;
mod trainer;
mod workers;

pub use checkpoint::{
    AtomicFile, Checkpoint, CheckpointHeader, load_module, load_resumable, module_to_bytes, optimizer_to_bytes,
    save_checkpoint, save_module, write_atomic,
};
pub use config::{LrSchedule, TrainConfig};
pub use metrics::{EpochMetrics, MetricsLog};
pub use optim::{FLUSH_EVERY, FlushingAdam, MOMENT_FLUSH};
#[cfg(feature = "collective")]
pub use parallel::{DataParallel, Membership};
pub use run_dir::RunDir;
pub use trainer::{EpochLosses, EpochSteps, EpochsRun, Fitted, Observer, StepAt, Trainer, epoch_seed, evaluate};
pub use workers::{Parallel, Session, Workers};
