//! The one error type of gen-ae's protocols, wrapping those of the crates below and of the
//! detector and codec modules.

use gen_core::CoreError;
use gen_data::DataError;

use crate::anomaly::AnomalyError;
use crate::compress::CompressError;

/// What can go wrong in gen-ae's protocols ([`crate::eval`], [`crate::anomaly::one_class`], ...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AeError {
    /// Training, a configuration or a run folder failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The data were unsuitable (a missing label column, a width that does not match).
    #[error(transparent)]
    Data(#[from] DataError),
    /// The anomaly detector or a ranking metric failed.
    #[error(transparent)]
    Anomaly(#[from] AnomalyError),
    /// Quantising or packing codes failed.
    #[error(transparent)]
    Compress(#[from] CompressError),
    /// A request that cannot be met, in words (a latent size of 0, an unknown class).
    #[error("{0}")]
    Invalid(String),
}

impl From<gen_core::eval::EvalError> for AeError {
    fn from(e: gen_core::eval::EvalError) -> Self {
        AeError::Anomaly(e.into())
    }
}

impl From<gen_core::ConfigError> for AeError {
    fn from(e: gen_core::ConfigError) -> Self {
        AeError::Core(e.into())
    }
}

/// The result type of gen-ae's protocols.
pub type Result<T, E = AeError> = std::result::Result<T, E>;
