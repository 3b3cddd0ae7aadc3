//! The one error type of gen-gan's protocols.

/// What can go wrong in gen-gan's protocols ([`crate::eval`], [`crate::augmentation`],
/// [`crate::sr::benchmark`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GanError {
    /// Training, a configuration or a run folder failed.
    #[error(transparent)]
    Core(#[from] gen_core::CoreError),
    /// The data were unsuitable (no labels, no images, a width that does not match).
    #[error(transparent)]
    Data(#[from] gen_data::DataError),
    /// A request that cannot be met, in words (an option out of range, a label the generator
    /// has no class for).
    #[error("{0}")]
    Invalid(String),
}

impl From<gen_core::ConfigError> for GanError {
    fn from(e: gen_core::ConfigError) -> Self {
        GanError::Core(e.into())
    }
}

/// The result type of gen-gan's protocols.
pub type Result<T, E = GanError> = std::result::Result<T, E>;

/// Returns `Err(GanError::Invalid(..))` with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::GanError::Invalid(format!($($msg)+)));
        }
    };
}
pub(crate) use ensure;
