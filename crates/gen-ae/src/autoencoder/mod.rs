//! The undercomplete autoencoder: an encoder to a narrow code and a decoder back, trained to
//! reconstruct its input.

mod config;
mod model;

pub use config::{Architecture, AutoencoderConfig, ReconLoss};
pub use model::{AeDecoder, AeEncoder, Autoencoder};
