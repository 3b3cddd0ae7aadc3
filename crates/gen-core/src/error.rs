//! Errors of gen-core.

use std::path::PathBuf;

/// A rejected hyper-parameter: which one, and the value that was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size or count that must be positive was zero.
    #[error("{name} must be > 0, got {value}")]
    Zero {
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: usize,
    },
    /// A real number outside its allowed range (or not finite).
    #[error("{name} must be in {range}, got {value}")]
    OutOfRange {
        /// The parameter's name.
        name: &'static str,
        /// The allowed range, in words.
        range: &'static str,
        /// The value given.
        value: f64,
    },
    /// Any other inconsistent combination of values.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// Checks that a size or count is positive.
    pub fn check_positive(name: &'static str, value: usize) -> Result<(), ConfigError> {
        if value == 0 {
            Err(ConfigError::Zero { name, value })
        } else {
            Ok(())
        }
    }

    /// Checks that a real number is finite and strictly positive.
    pub fn check_positive_f64(name: &'static str, value: f64) -> Result<(), ConfigError> {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                name,
                range: "(0, inf)",
                value,
            })
        }
    }

    /// Checks that a real number is finite and non-negative.
    pub fn check_non_negative(name: &'static str, value: f64) -> Result<(), ConfigError> {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                name,
                range: "[0, inf)",
                value,
            })
        }
    }

    /// Checks that a real number lies in the open interval (0, 1).
    pub fn check_open_unit(name: &'static str, value: f64) -> Result<(), ConfigError> {
        if value > 0.0 && value < 1.0 {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                name,
                range: "(0, 1)",
                value,
            })
        }
    }

    /// Checks that a real number lies in the closed interval [0, 1].
    pub fn check_unit(name: &'static str, value: f64) -> Result<(), ConfigError> {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange {
                name,
                range: "[0, 1]",
                value,
            })
        }
    }
}

/// Errors of the training loop, checkpoints and run folders.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A hyper-parameter was rejected.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`"cannot write"`, ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint file is not one, is truncated, or fails its checksum.
    #[error("corrupt checkpoint {path}: {reason}")]
    CorruptCheckpoint {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A checkpoint was valid but does not fit what it is loaded into.
    #[error("checkpoint {path} does not match: {reason}")]
    CheckpointMismatch {
        /// The file concerned.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// A safetensors file is not one, or is truncated or damaged.
    #[error("safetensors file {path}: {reason}")]
    Interop {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss}; the last good checkpoint is kept")]
    NonFiniteLoss {
        /// The epoch (1-based) in which it happened.
        epoch: usize,
        /// The step within the epoch (1-based).
        step: usize,
        /// The offending value.
        loss: f64,
    },
    /// A data-parallel worker's collective operation failed, most often because another worker
    /// failed and ended the collective for all of them.
    #[error("data-parallel training failed {what}: {reason}")]
    Collective {
        /// What was being done (`"reducing the gradients"`, ...).
        what: &'static str,
        /// burn-collective's error, or that another worker ended the collective.
        reason: String,
        /// Whether this worker's operation was cut short because another worker failed (whose
        /// own error is the cause).
        aborted: bool,
    },
    /// A run folder already exists and overwriting was not asked for.
    #[error("run folder {0} already exists; pass --force to overwrite it or --resume to continue it")]
    RunExists(PathBuf),
    /// A training set or validation set was empty or too small.
    #[error("{0}")]
    Data(String),
    /// Serialisation of a configuration or record failed.
    #[error("cannot serialise {what}: {reason}")]
    Serialise {
        /// What was being serialised.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl CoreError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The result type of gen-core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
