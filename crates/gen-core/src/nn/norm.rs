//! Batch normalisation of feature maps, shaped for the CPU backends' fast paths.
//!
//! burn's `nn::BatchNorm` computes the channel statistics through `swap_dims(0, 1)` (a strided
//! copy of the whole map, twice) and applies them as four broadcasts against `[1, C, 1, 1]`
//! tensors. On the Flex backend a broadcast whose outer dimension has stride 0 falls back to a
//! per-element strided iterator, and so do the reductions of their backward pass: in the
//! profile of the DCGAN bench row, strided copies took more time than the matrix products.
//!
//! [`BatchNorm`] computes the same function with the same parameters, running statistics and
//! record (the fields are burn's), differently arranged:
//! - the statistics are row sums of the map viewed as `[N·C, H·W]` (contiguous), then a sum of
//!   the `N` rows of a small `[N, C]` matrix;
//! - the per-channel values are repeated to `[N, C, 1, 1]` before they meet the map, a shape
//!   whose broadcast is a "per-row scalar" for Flex's SIMD kernel, and whose gradient is again
//!   a contiguous row sum;
//! - `γ/σ` and `β` are folded into one multiply and one add.

use burn::module::{Module, Param, RunningState};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// A per-channel value `v` (`[C]`) repeated for each of `n` samples: `[n, C, 1, 1]`, to add to
/// or multiply with a `[n, C, H, W]` map.
///
/// Against the map this is the broadcast that Flex runs with its SIMD "per-row scalar" kernel,
/// and whose gradient is a contiguous row sum; a `[1, C, 1, 1]` operand, with its stride-0
/// outer dimension, goes through a per-element strided iterator both ways. Use it for channel
/// biases and scales (the cost is `n·C` values).
pub fn per_sample_channels<B: Backend>(v: Tensor<B, 1>, n: usize) -> Tensor<B, 4> {
    let [c] = v.dims();
    v.reshape([1, c, 1, 1]).repeat_dim(0, n)
}

/// Configuration of a [`BatchNorm`] over `num_features` channels; burn's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Number of channels.
    pub num_features: usize,
    /// Added to the variance before the square root.
    pub epsilon: f64,
    /// Weight of the current batch in the running statistics.
    pub momentum: f64,
}

impl BatchNormConfig {
    /// `num_features` channels, ε = 1e-5, momentum 0.1 (burn's and PyTorch's defaults).
    pub fn new(num_features: usize) -> Self {
        Self {
            num_features,
            epsilon: 1e-5,
            momentum: 0.1,
        }
    }

    /// γ = 1, β = 0, running mean 0 and variance 1.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BatchNorm<B> {
        let c = self.num_features;
        BatchNorm {
            gamma: Param::from_tensor(Tensor::ones([c], device)),
            beta: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// Batch normalisation of `[batch, channels, height, width]` maps: in training (an autodiff
/// backend) by the batch's per-channel mean and biased variance, which also update the running
/// statistics; otherwise by the running statistics. The same function, parameters and record
/// as `burn::nn::BatchNorm`.
#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    /// Scale per channel.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift per channel.
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean per channel.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (biased) variance per channel.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Weight of the current batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub epsilon: f64,
}

impl<B: Backend> BatchNorm<B> {
    /// Normalises `x`.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`; output the same.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if B::ad_enabled(&x.device()) {
            self.forward_train(x)
        } else {
            self.forward_inference(x)
        }
    }

    /// Mean over samples and positions of `rows` (`[N·C, H·W]`): `[C]`.
    fn channel_mean(rows: Tensor<B, 2>, n: usize, c: usize, hw: usize) -> Tensor<B, 1> {
        rows.sum_dim(1)
            .reshape([n, c])
            .sum_dim(0)
            .reshape([c])
            .div_scalar((n * hw) as f64)
    }

    fn forward_train(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let hw = h * w;
        let mean = Self::channel_mean(x.clone().reshape([n * c, hw]), n, c, hw);
        let centred = x - per_sample_channels(mean.clone(), n);
        let var = Self::channel_mean(centred.clone().powi_scalar(2).reshape([n * c, hw]), n, c, hw);

        let device = centred.device();
        let m = self.momentum;
        let running_mean = self.running_mean.value_sync().to_device(&device);
        let running_var = self.running_var.value_sync().to_device(&device);
        self.running_mean.update(
            running_mean
                .mul_scalar(1.0 - m)
                .add(mean.detach().mul_scalar(m))
                .detach(),
        );
        self.running_var.update(
            running_var
                .mul_scalar(1.0 - m)
                .add(var.clone().detach().mul_scalar(m))
                .detach(),
        );

        let scale = self.gamma.val() / var.add_scalar(self.epsilon).sqrt();
        centred * per_sample_channels(scale, n) + per_sample_channels(self.beta.val(), n)
    }

    fn forward_inference(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, ..] = x.dims();
        let device = x.device();
        let mean = self.running_mean.value().to_device(&device);
        let var = self.running_var.value().to_device(&device);
        let scale = self.gamma.val() / var.add_scalar(self.epsilon).sqrt();
        let shift = self.beta.val() - mean * scale.clone();
        x * per_sample_channels(scale, n) + per_sample_channels(shift, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend as AB, TestBackend as B};
    use burn::module::AutodiffModule;
    use burn::tensor::{Distribution, Tolerance};

    /// burn's BatchNorm with the same (perturbed) γ and β.
    fn pair(c: usize) -> (BatchNorm<AB>, burn::nn::BatchNorm<AB>) {
        let device = Default::default();
        let ours = BatchNormConfig::new(c).init::<AB>(&device);
        let gamma = Tensor::<AB, 1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<AB, 1>::random([c], Distribution::Uniform(-0.5, 0.5), &device);
        // Separate leaves with the same values, so that the two graphs stay apart (a backward
        // pass frees the whole graph it walked).
        let leaf = |t: &Tensor<AB, 1>| Param::from_tensor(Tensor::from_data(t.to_data(), &device));
        let ours = BatchNorm {
            gamma: leaf(&gamma),
            beta: leaf(&beta),
            ..ours
        };
        let mut theirs = burn::nn::BatchNormConfig::new(c).init::<AB>(&device);
        theirs.gamma = leaf(&gamma);
        theirs.beta = leaf(&beta);
        (ours, theirs)
    }

    fn close<const D: usize, BB: Backend>(a: Tensor<BB, D>, b: Tensor<BB, D>, what: &str) {
        let (a, b) = (a.into_data(), b.into_data());
        assert_eq!(a.shape, b.shape, "{what}");
        a.assert_approx_eq::<f32>(&b, Tolerance::absolute(1e-5));
    }

    #[test]
    fn training_matches_burns_batch_norm_with_its_gradients_and_running_statistics() {
        let device = Default::default();
        let (ours, theirs) = pair(3);
        for step in 0..3 {
            // Off-centre, scaled input, so that the statistics matter.
            let x = Tensor::<AB, 4>::random([4, 3, 5, 6], Distribution::Normal(2.0, 3.0), &device);
            let upstream = Tensor::<AB, 4>::random([4, 3, 5, 6], Distribution::Normal(0.0, 1.0), &device);
            let xa = Tensor::<AB, 4>::from_data(x.to_data(), &device).require_grad();
            let xb = Tensor::<AB, 4>::from_data(x.into_data(), &device).require_grad();
            let (ya, yb) = (ours.forward(xa.clone()), theirs.forward(xb.clone()));
            close(ya.clone(), yb.clone(), &format!("step {step}: output"));
            let ga = (ya * upstream.clone()).sum().backward();
            let gb = (yb * upstream).sum().backward();
            close(xa.grad(&ga).unwrap(), xb.grad(&gb).unwrap(), "input gradient");
            close(
                ours.gamma.grad(&ga).unwrap(),
                theirs.gamma.grad(&gb).unwrap(),
                "γ gradient",
            );
            close(
                ours.beta.grad(&ga).unwrap(),
                theirs.beta.grad(&gb).unwrap(),
                "β gradient",
            );
            close(ours.running_mean.value(), theirs.running_mean.value(), "running mean");
            close(ours.running_var.value(), theirs.running_var.value(), "running variance");
        }
    }

    #[test]
    fn inference_uses_the_running_statistics_like_burn() {
        let device = Default::default();
        let (ours, theirs) = pair(2);
        // Two training batches move the running statistics away from (0, 1).
        for _ in 0..2 {
            let x = Tensor::<AB, 4>::random([3, 2, 4, 4], Distribution::Normal(1.0, 2.0), &device);
            let _ = ours.forward(x.clone());
            let _ = theirs.forward(x);
        }
        let (ours, theirs) = (ours.valid(), theirs.valid());
        let x = Tensor::<B, 4>::random([5, 2, 4, 4], Distribution::Normal(1.0, 2.0), &device);
        close(ours.forward(x.clone()), theirs.forward(x), "inference output");
    }

    #[test]
    fn the_record_is_burns_so_checkpoints_load_across() {
        use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
        let device = Default::default();
        let (_, theirs) = pair(4);
        let theirs = theirs.valid();
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(theirs.clone().into_record(), ()).unwrap();
        let ours = BatchNormConfig::new(4)
            .init::<B>(&device)
            .load_record(recorder.load(bytes, &device).unwrap());
        close(ours.gamma.val(), theirs.gamma.val(), "γ");
        close(ours.beta.val(), theirs.beta.val(), "β");
    }
}
