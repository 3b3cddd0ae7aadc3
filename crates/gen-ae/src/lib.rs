#![doc = include_str!("../README.md")]

mod autoencoder;

pub use autoencoder::{AeDecoder, AeEncoder, Architecture, Autoencoder, AutoencoderConfig, ReconLoss};

#[cfg(test)]
pub(crate) mod test_util {
    /// The backend unit tests run on.
    pub type TestBackend = burn::backend::NdArray<f32>;
    /// Autodiff over [`TestBackend`].
    pub type TestAutodiffBackend = burn::backend::Autodiff<TestBackend>;
}
