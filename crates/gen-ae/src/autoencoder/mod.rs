//! The autoencoder family: an encoder to a code and a decoder back, trained to reconstruct its
//! input; undercomplete, sparse (KL or L1), denoising and contractive, each as MLP or convolutional.

mod config;
mod model;
mod regularizer;

pub use config::{Architecture, AutoencoderConfig, ReconLoss};
pub use model::{ACTIVE_THRESHOLD, AeDecoder, AeEncoder, Autoencoder};
pub use regularizer::Regularizer;
