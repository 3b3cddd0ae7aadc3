use gen_core::ConfigError;
use gen_core::nn::Activation;
use serde::{Deserialize, Serialize};

/// A penalty on the code that turns the plain autoencoder into a sparse or a contractive one.
///
/// Penalties are added to the reconstruction loss, which is a mean over the elements of the
/// batch; their weights are relative to that (so they are smaller than in texts that sum the
/// reconstruction error over the pixels of an image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Regularizer {
    /// No penalty: the undercomplete autoencoder.
    #[default]
    None,
    /// Sparse autoencoder: `β · Σ_j KL(ρ ‖ ρ̂_j)`, with `ρ̂_j` the mean activation of code unit `j`
    /// over the batch. Needs a sigmoid code ([`AutoencoderConfig::latent_activation`](super::AutoencoderConfig::latent_activation)).
    SparseKl {
        /// Target mean activation ρ, in (0, 1).
        rho: f64,
        /// Weight β.
        beta: f64,
    },
    /// Sparse autoencoder with an L1 activity penalty: `λ · mean over samples of Σ_j |h_j|`.
    SparseL1 {
        /// Weight λ.
        lambda: f64,
    },
    /// Contractive autoencoder: `λ · mean over samples of ‖∂h/∂x‖²_F`, the squared Frobenius norm
    /// of the encoder's Jacobian, for encoders of any depth.
    Contractive {
        /// Weight λ.
        lambda: f64,
        /// `None` computes the norm exactly (cost: about `d_latent` encoder passes);
        /// `Some(k)` estimates it without bias from `k` random Gaussian projections
        /// (`E‖vᵀJ‖² = ‖J‖²_F`), for wide codes.
        #[serde(default)]
        projections: Option<usize>,
    },
}

impl Regularizer {
    /// A short name for tables and run names.
    pub fn name(&self) -> &'static str {
        match self {
            Regularizer::None => "none",
            Regularizer::SparseKl { .. } => "sparse-kl",
            Regularizer::SparseL1 { .. } => "sparse-l1",
            Regularizer::Contractive { .. } => "contractive",
        }
    }

    /// Rejects weights that are negative or not finite, a target outside (0, 1), zero projections,
    /// and the KL penalty on a code that is not a sigmoid.
    pub fn validate(&self, latent_activation: Activation) -> Result<(), ConfigError> {
        let weight = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!("{name} must be finite and >= 0, got {v}")))
            }
        };
        match *self {
            Regularizer::None => Ok(()),
            Regularizer::SparseKl { rho, beta } => {
                if !(rho > 0.0 && rho < 1.0) {
                    return Err(ConfigError::Invalid(format!(
                        "the sparsity target rho must lie in (0, 1), got {rho}"
                    )));
                }
                if latent_activation != Activation::Sigmoid {
                    return Err(ConfigError::Invalid(format!(
                        "the KL sparsity penalty needs code activations in (0, 1): set the latent activation \
                         to sigmoid (it is {})",
                        latent_activation.name()
                    )));
                }
                weight("the sparsity weight beta", beta)
            }
            Regularizer::SparseL1 { lambda } => weight("the L1 activity weight lambda", lambda),
            Regularizer::Contractive { lambda, projections } => {
                if projections == Some(0) {
                    return Err(ConfigError::Invalid(
                        "the contractive penalty needs at least one random projection".into(),
                    ));
                }
                weight("the contractive weight lambda", lambda)
            }
        }
    }
}
