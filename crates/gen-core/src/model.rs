//! The traits that the model families share.
//!
//! Every model takes and returns flat batches, `[batch, d_input]`: image models know their
//! [`ImageShape`](crate::nn::ImageShape) and reshape inside. That keeps data loading, losses and
//! the training loop the same for MLP and convolutional models.

use burn::tensor::{Int, Tensor, backend::Backend};

/// Maps inputs to codes.
pub trait Encoder<B: Backend> {
    /// Encodes a batch; for probabilistic encoders, the mean code.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_latent]`
    fn encode(&self, x: Tensor<B, 2>) -> Tensor<B, 2>;

    /// Width of the code.
    fn d_latent(&self) -> usize;
}

/// Maps codes back to the input space.
pub trait Decoder<B: Backend> {
    /// Decodes a batch of codes into the data space (probabilities or values, never logits).
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`
    /// - output: `[batch, d_input]`
    fn decode(&self, z: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// Draws new samples in the data space (VAEs from the prior, GANs from their noise).
pub trait Generator<B: Backend> {
    /// Generates `n` samples.
    ///
    /// # Shapes
    /// - output: `[n, d_output]`
    fn generate(&self, n: usize, device: &B::Device) -> Tensor<B, 2>;
}

/// One batch of training data.
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// Inputs, `[batch, d_input]`.
    pub x: Tensor<B, 2>,
    /// Class labels, `[batch]`, when the data set has them.
    pub y: Option<Tensor<B, 1, Int>>,
}

/// Whether a loss is computed for an optimisation step or for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// An optimisation step: stochastic parts (corruption, sampling) are drawn afresh.
    Train,
    /// Validation or evaluation.
    Valid,
}

/// The loss of one batch: the total that is minimised, and named parts for the metrics.
#[derive(Debug, Clone)]
pub struct LossTerms<B: Backend> {
    /// The scalar that is minimised, `[1]`.
    pub total: Tensor<B, 1>,
    /// Parts worth logging (`"recon"`, `"kl"`, ...), each `[1]`; may be empty.
    pub parts: Vec<(&'static str, Tensor<B, 1>)>,
}

impl<B: Backend> LossTerms<B> {
    /// A loss with no separately reported parts.
    pub fn total(total: Tensor<B, 1>) -> Self {
        Self {
            total,
            parts: Vec::new(),
        }
    }
}

/// A model that the generic training loop can fit: it knows its own loss.
pub trait Objective<B: Backend> {
    /// The loss of `batch`.
    fn objective(&self, batch: &Batch<B>, stage: Stage) -> LossTerms<B>;

    /// Called by the training loop before each epoch (1-based), so a loss that follows a
    /// schedule (a VAE's KL warm-up) can set it. Does nothing by default.
    fn begin_epoch(&mut self, _epoch: usize) {}
}

/// Where the training loop takes its batches from (an in-memory data set, usually).
pub trait BatchSource<B: Backend> {
    /// Number of samples.
    fn num_samples(&self) -> usize;

    /// Width of one sample.
    fn d_input(&self) -> usize;

    /// Gathers the samples at `indices` into a batch on `device`.
    ///
    /// # Panics
    /// If an index is out of range.
    fn batch(&self, indices: &[usize], device: &B::Device) -> Batch<B>;
}
