//! The variational autoencoder family of the gen toolkit.
//!
//! - [`Vae`]: a Gaussian encoder `q(z|x) = N(μ, diag σ²)`, the reparameterisation
//!   `z = μ + σ·ε`, and a Bernoulli or Gaussian (fixed or learned variance) decoder, MLP or
//!   convolutional, trained on the negative ELBO with its reconstruction and KL parts reported
//!   apart; β-VAE, KL warm-up, dynamic binarisation and a conditional VAE are options of
//!   [`VaeConfig`].
//! - Evaluation: [`Vae::elbo`] and the importance-sampled [`Vae::importance_log_likelihood`].
//! - Generation and the latent space: [`Vae::sample`], and in [`latent`] the codes of
//!   interpolations, traversals and the 2-D manifold grid.
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use gen_vae::VaeConfig;
//!
//! type B = Autodiff<Flex>;
//! let device = Default::default();
//! let vae = VaeConfig::mlp(64, vec![32], 2).init::<B>(&device);
//! let x = burn::tensor::Tensor::<B, 2>::ones([3, 64], &device).mul_scalar(0.5);
//! let log_px = vae.importance_log_likelihood(x, None, 16, 8);
//! assert_eq!(log_px.len(), 3);
//! ```

mod config;
pub mod latent;
mod model;

pub use config::{Architecture, LOG_VAR_MAX, LOG_VAR_MIN, Likelihood, VaeConfig};
pub use gen_core;
pub use model::{Posterior, Vae, VaeDecoder, VaeEncoder, warmup_weight};
