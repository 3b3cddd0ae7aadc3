#![doc = include_str!("../README.md")]

pub mod anomaly;
mod autoencoder;
pub mod compress;

pub use autoencoder::{
    ACTIVE_THRESHOLD, AeDecoder, AeEncoder, Architecture, Autoencoder, AutoencoderConfig, ReconLoss, Regularizer,
};

#[cfg(test)]
pub(crate) mod test_util {
    /// burn's CPU backends draw from one process-wide generator: tests that seed it hold this lock.
    pub fn seed_lock() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The backend unit tests run on.
    pub type TestBackend = burn::backend::NdArray<f32>;
    /// Autodiff over [`TestBackend`].
    pub type TestAutodiffBackend = burn::backend::Autodiff<TestBackend>;
}
