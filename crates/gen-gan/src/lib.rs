#![doc = include_str!("../README.md")]

mod augment;
pub mod augmentation;
pub mod classifier;
mod config;
mod error;
pub mod eval;
pub mod layers;
mod loss;
pub mod metrics;
mod nets;
mod pairs;
pub mod sr;
pub mod ssgan;
mod train;

pub use augment::{DiffAugment, cutout, translate};
pub use config::{GanArchitecture, GanConfig};
pub use error::{GanError, Result};
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
