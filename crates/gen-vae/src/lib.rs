#![doc = include_str!("../README.md")]

mod config;
pub mod eval;
pub mod figures;
pub mod latent;
mod model;

pub use config::{Architecture, LOG_VAR_MAX, LOG_VAR_MIN, Likelihood, VaeConfig};
pub use gen_core;
pub use model::{Posterior, Vae, VaeDecoder, VaeEncoder, warmup_weight};
