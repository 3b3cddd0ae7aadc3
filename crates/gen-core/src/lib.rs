#![doc = include_str!("../README.md")]

pub mod error;
pub mod eval;
pub mod interop;
pub mod loss;
pub mod model;
pub mod nn;
pub mod noise;
pub mod testing;
pub mod train;

pub use error::{ConfigError, CoreError, Result};
pub use model::{Batch, BatchSource, Decoder, Encoder, Generator, LossTerms, Objective, Stage};

#[cfg(test)]
pub(crate) mod test_util {
    /// The backend unit tests run on: Flex, whose operations burn-flex compiles once, where
    /// ndarray's are generic and compiled again in every test binary (see ARCHITECTURE.md,
    /// "Test backends"). Only `f32`: burn 0.21 keeps one default float type per device.
    pub type TestBackend = burn::backend::Flex;
    /// Autodiff over [`TestBackend`].
    pub type TestAutodiffBackend = burn::backend::Autodiff<TestBackend>;
}
