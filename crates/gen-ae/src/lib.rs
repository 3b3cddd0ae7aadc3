#![doc = include_str!("../README.md")]

pub mod anomaly;
mod autoencoder;
pub mod compress;
mod error;
pub mod eval;

pub use autoencoder::{
    ACTIVE_THRESHOLD, AeDecoder, AeEncoder, Architecture, Autoencoder, AutoencoderConfig, ReconLoss, Regularizer,
};
pub use error::{AeError, Result};

#[cfg(test)]
pub(crate) mod test_util {
    /// The backend unit tests run on (see gen-core's `test_util`).
    pub type TestBackend = burn::backend::Flex;
    /// Autodiff over [`TestBackend`].
    pub type TestAutodiffBackend = burn::backend::Autodiff<TestBackend>;
}
