//! The generative adversarial network family of the gen toolkit.
//!
//! - [`GanConfig`] builds a [`Generator`] (Gaussian noise, and a one-hot class for a
//!   conditional GAN, to images in [0, 1]) and a [`Discriminator`] (a logit or critic score per
//!   image; a projection discriminator when conditional), MLP or DCGAN-style, with optional
//!   spectral normalisation ([`layers`]).
//! - [`GanLoss`]: minimax, non-saturating (default), hinge, Wasserstein with clipping, WGAN-GP.
//! - [`GanTrainer`] alternates the discriminator phase (real and detached fakes) and the
//!   generator phase (the discriminator frozen), with separate Adam optimisers, `n_critic`
//!   discriminator steps per generator step, an optional moving average of the generator, and
//!   the balance diagnostics of every epoch.
//! - A source-conditioned (DAGAN) generator ([`GanConfig::source_conditioned`]) varies a real
//!   image of the class; its discriminator judges pairs, which [`SourcePairs`] makes.
//! - [`DiffAugment`]: differentiable translation and cutout of the discriminator's input, for
//!   training on a few hundred images.
//! - [`classifier`]: the evaluation classifier and the metrics built on its features
//!   (classifier-feature Fréchet distance, class coverage, an Inception-Score analogue).
//! - [`sr`]: super-resolution from 14x14 to 28x28 with a content plus adversarial loss.

mod augment;
pub mod classifier;
mod config;
pub mod layers;
mod loss;
pub mod metrics;
mod nets;
mod pairs;
pub mod sr;
mod train;

pub use augment::{DiffAugment, cutout, translate};
pub use config::{GanArchitecture, GanConfig};
pub use loss::GanLoss;
pub use nets::{Discriminator, Generator, cycle_labels, one_hot};
pub use pairs::SourcePairs;
pub use train::{
    Adversary, DISCRIMINATOR, DiscriminatorStep, EpochReport, FittedGan, GENERATOR, GENERATOR_EMA, GanTrainer,
    GeneratorStep, collapse_suspected, discriminator_phase, discriminator_wins, ema_update, generator_phase, grad_norm,
    gradient_penalty,
};

pub use gen_core;

#[cfg(test)]
pub(crate) mod test_util {
    /// The backend unit tests run on (see gen-core's `test_util`).
    pub type TestBackend = burn::backend::Flex;
    /// Autodiff over [`TestBackend`].
    pub type TestAutodiffBackend = burn::backend::Autodiff<TestBackend>;
}
