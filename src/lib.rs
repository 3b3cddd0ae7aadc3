#![doc = include_str!("../README.md")]

pub use gen_ae as ae;
pub use gen_core as core;
pub use gen_data as data;
pub use gen_gan as gan;
pub use gen_vae as vae;

/// The names most programs need.
pub mod prelude {
    pub use gen_ae::anomaly::{AnomalyDetector, DetectionReport, ScoreKind};
    pub use gen_ae::compress::CompressedCodes;
    pub use gen_ae::{Autoencoder, AutoencoderConfig, ReconLoss, Regularizer};
    pub use gen_core::nn::{Activation, ImageShape};
    pub use gen_core::noise::Noise;
    pub use gen_core::train::{RunDir, TrainConfig, Trainer};
    pub use gen_core::{Batch, BatchSource, Decoder, Encoder, Generator, Objective, Stage};
    pub use gen_data::{Dataset, FASHION_MNIST, MNIST, Split, Standardizer, digits, load_csv};
    pub use gen_vae::{Likelihood, Vae, VaeConfig};
}
