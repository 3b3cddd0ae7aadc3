//! Discriminator layers whose weights may be spectrally normalised (Miyato et al., 2018).
//!
//! A layer with spectral normalisation keeps a left singular vector estimate `u` (not trained:
//! it is detached in the forward pass and refreshed by [`SnDense::power_iteration`]) and divides
//! its weight by σ = uᵀ W v, v = W ᵀu / ‖Wᵀu‖, an estimate of W's largest singular value.

use burn::module::{Module, Param, ParamId};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, ElementConversion, Tensor, backend::Backend};
use gen_core::nn::{Activation, conv2d_activated};

const EPS: f64 = 1e-12;

fn normalize<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let norm = x.clone().powi_scalar(2).sum().sqrt().add_scalar(EPS);
    x / norm
}

/// σ(M) ≈ uᵀ M v with u fixed (detached) and v = Mᵀu / ‖Mᵀu‖ computed from the detached M, so
/// the gradient flows through M alone, as in the reference implementation.
///
/// # Shapes
/// - `m`: `[rows, cols]`, `u`: `[rows]`; output `[1]`
fn sigma<B: Backend>(m: Tensor<B, 2>, u: Tensor<B, 1>) -> Tensor<B, 1> {
    let u = u.detach();
    let v = normalize(
        m.clone()
            .detach()
            .transpose()
            .matmul(u.clone().unsqueeze_dim(1))
            .flatten(0, 1),
    );
    u.unsqueeze_dim::<2>(0)
        .matmul(m)
        .matmul(v.unsqueeze_dim(1))
        .flatten(0, 1)
}

/// One power-iteration step on the detached `m`: u ← M Mᵀ u, normalised.
fn power_step<B: Backend>(m: Tensor<B, 2>, u: Tensor<B, 1>) -> Tensor<B, 1> {
    let m = m.detach();
    let v = normalize(m.clone().transpose().matmul(u.detach().unsqueeze_dim(1)).flatten(0, 1));
    normalize(m.matmul(v.unsqueeze_dim(1)).flatten(0, 1))
}

/// `t` clamped to [−c, c] as a new leaf that tracks gradients when `t` did: clamping a tracked
/// parameter in place of the optimizer would otherwise leave a non-leaf that never gets a
/// gradient again.
pub(crate) fn clamp_leaf<B: Backend, const D: usize>(t: Tensor<B, D>, c: f64) -> Tensor<B, D> {
    let tracked = t.is_require_grad();
    let out = t.clamp(-c, c).detach();
    if tracked { out.require_grad() } else { out }
}

fn random_unit<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 1> {
    normalize(Tensor::random([n], Distribution::Normal(0.0, 1.0), device))
}

fn u_param<B: Backend>(id: ParamId, u: Tensor<B, 1>) -> Param<Tensor<B, 1>> {
    Param::initialized(id, u.detach().set_require_grad(false))
}

/// A dense layer `x W + b`, `W: [d_in, d_out]`, optionally spectrally normalised.
#[derive(Module, Debug)]
pub struct SnDense<B: Backend> {
    weight: Param<Tensor<B, 2>>,
    bias: Param<Tensor<B, 1>>,
    u: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> SnDense<B> {
    /// A layer with weights uniform in ±1/√d_in; `spectral` adds the normalisation.
    pub fn new(d_in: usize, d_out: usize, spectral: bool, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        let layer = Self {
            weight: Param::from_tensor(Tensor::random([d_in, d_out], dist, device)),
            bias: Param::from_tensor(Tensor::zeros([d_out], device)),
            u: spectral.then(|| u_param(ParamId::new(), random_unit(d_in, device))),
        };
        layer.warmed_up()
    }

    fn warmed_up(mut self) -> Self {
        for _ in 0..20 {
            self = self.power_iteration();
        }
        self
    }

    /// The weight used in the forward pass: W, or W / σ(W).
    pub fn weight(&self) -> Tensor<B, 2> {
        let w = self.weight.val();
        match &self.u {
            None => w,
            Some(u) => {
                let s = sigma(w.clone(), u.val());
                w / s.unsqueeze::<2>()
            }
        }
    }

    /// `x W + b`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_in]`; output `[batch, d_out]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_activated(x, Activation::Identity)
    }

    /// `activation(x W + b)`, the activation fused into the layer on registered backends.
    ///
    /// # Shapes
    /// As [`SnDense::forward`].
    pub fn forward_activated(&self, x: Tensor<B, 2>, activation: Activation) -> Tensor<B, 2> {
        gen_core::nn::dense(x, self.weight(), self.bias.val(), activation)
    }

    /// The bias.
    pub fn bias(&self) -> Tensor<B, 1> {
        self.bias.val()
    }

    /// The estimate σ of the weight's largest singular value (1 after normalisation).
    pub fn sigma(&self) -> Option<f32> {
        self.u
            .as_ref()
            .map(|u| sigma(self.weight.val(), u.val()).into_scalar().elem())
    }

    /// Refreshes `u` by one power-iteration step (a no-op without spectral normalisation).
    pub fn power_iteration(mut self) -> Self {
        if let Some(u) = self.u.take() {
            let next = power_step(self.weight.val(), u.val());
            self.u = Some(u_param(u.id, next));
        }
        self
    }

    /// Clips every weight and bias to [−c, c] (WGAN's Lipschitz constraint).
    pub fn clip(mut self, c: f64) -> Self {
        self.weight = self.weight.map(|w| clamp_leaf(w, c));
        self.bias = self.bias.map(|b| clamp_leaf(b, c));
        self
    }
}

/// A 4x4, stride-2, padding-1 convolution (halves height and width), optionally spectrally
/// normalised on its weight viewed as a `[c_out, c_in * 16]` matrix.
#[derive(Module, Debug)]
pub struct SnConv<B: Backend> {
    weight: Param<Tensor<B, 4>>,
    bias: Param<Tensor<B, 1>>,
    u: Option<Param<Tensor<B, 1>>>,
}

/// The options of every discriminator convolution: kernel 4, stride 2, padding 1.
pub(crate) fn conv_options() -> ConvOptions<2> {
    ConvOptions::new([2, 2], [1, 1], [1, 1], 1)
}

impl<B: Backend> SnConv<B> {
    /// A convolution with weights uniform in ±1/√(c_in·16).
    pub fn new(c_in: usize, c_out: usize, spectral: bool, device: &B::Device) -> Self {
        let bound = 1.0 / ((c_in * 16) as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        let layer = Self {
            weight: Param::from_tensor(Tensor::random([c_out, c_in, 4, 4], dist, device)),
            bias: Param::from_tensor(Tensor::zeros([c_out], device)),
            u: spectral.then(|| u_param(ParamId::new(), random_unit(c_out, device))),
        };
        let mut layer = layer;
        for _ in 0..20 {
            layer = layer.power_iteration();
        }
        layer
    }

    fn matrix(w: Tensor<B, 4>) -> Tensor<B, 2> {
        let [c_out, c_in, kh, kw] = w.dims();
        w.reshape([c_out, c_in * kh * kw])
    }

    /// The kernel used in the forward pass: W, or W / σ(W).
    pub fn weight(&self) -> Tensor<B, 4> {
        let w = self.weight.val();
        match &self.u {
            None => w,
            Some(u) => {
                let s = sigma(Self::matrix(w.clone()), u.val());
                w / s.reshape([1, 1, 1, 1])
            }
        }
    }

    /// The convolution.
    ///
    /// # Shapes
    /// - `x`: `[batch, c_in, h, w]`; output `[batch, c_out, h / 2, w / 2]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_activated(x, Activation::Identity)
    }

    /// `activation(conv(x))`, the activation applied in the convolution's output pass on
    /// registered backends.
    ///
    /// # Shapes
    /// As [`SnConv::forward`].
    pub fn forward_activated(&self, x: Tensor<B, 4>, activation: Activation) -> Tensor<B, 4> {
        // gen-core's convolution adds the bias as per-sample channels (burn's bias gradient swaps
        // the output gradient's first two dimensions, a strided copy on the CPU backends) and
        // takes the weight gradient as one matrix product on registered backends.
        conv2d_activated(x, self.weight(), Some(self.bias.val()), conv_options(), activation)
    }

    /// The estimate σ of the kernel matrix's largest singular value (1 after normalisation).
    pub fn sigma(&self) -> Option<f32> {
        self.u
            .as_ref()
            .map(|u| sigma(Self::matrix(self.weight.val()), u.val()).into_scalar().elem())
    }

    /// Refreshes `u` by one power-iteration step (a no-op without spectral normalisation).
    pub fn power_iteration(mut self) -> Self {
        if let Some(u) = self.u.take() {
            let next = power_step(Self::matrix(self.weight.val()), u.val());
            self.u = Some(u_param(u.id, next));
        }
        self
    }

    /// Clips every weight and bias to [−c, c].
    pub fn clip(mut self, c: f64) -> Self {
        self.weight = self.weight.map(|w| clamp_leaf(w, c));
        self.bias = self.bias.map(|b| clamp_leaf(b, c));
        self
    }
}

#[cfg(test)]
impl<B: Backend> SnConv<B> {
    /// The raw (unnormalised) kernel.
    pub(crate) fn weight_param(&self) -> Tensor<B, 4> {
        self.weight.val()
    }

    /// The layer with its raw kernel replaced by `values` (same shape).
    pub(crate) fn with_weight_values(mut self, values: Vec<f32>) -> Self {
        let w = self.weight.val();
        let (dims, device) = (w.dims(), w.device());
        let t = Tensor::from_data(burn::tensor::TensorData::new(values, dims), &device);
        self.weight = Param::initialized(self.weight.id, t.require_grad());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend as AB, TestBackend as B};

    /// The largest singular value by many power iterations in f64 on the host.
    fn top_singular(m: &[f32], rows: usize, cols: usize) -> f64 {
        let mut u = vec![1.0f64; rows];
        let mut s = 0.0;
        for _ in 0..2000 {
            let mut v = vec![0.0f64; cols];
            for r in 0..rows {
                for c in 0..cols {
                    v[c] += m[r * cols + c] as f64 * u[r];
                }
            }
            let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter_mut().for_each(|x| *x /= nv);
            let mut w = vec![0.0f64; rows];
            for r in 0..rows {
                for c in 0..cols {
                    w[r] += m[r * cols + c] as f64 * v[c];
                }
            }
            s = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            u = w.into_iter().map(|x| x / s).collect();
        }
        s
    }

    #[test]
    fn normalised_dense_weight_has_unit_spectral_norm() {
        let device = Default::default();
        let mut layer = SnDense::<B>::new(30, 12, true, &device);
        for _ in 0..200 {
            layer = layer.power_iteration();
        }
        let raw = layer.weight.val().into_data().to_vec::<f32>().unwrap();
        let truth = top_singular(&raw, 30, 12);
        let normalised = layer.weight().into_data().to_vec::<f32>().unwrap();
        let after = top_singular(&normalised, 30, 12);
        assert!((after - 1.0).abs() < 1e-3, "σ(W/σ) = {after}");
        let est = layer.sigma().unwrap() as f64;
        assert!((est - truth).abs() < 1e-3 * truth, "estimate {est} vs {truth}");
    }

    #[test]
    fn normalised_conv_kernel_has_unit_spectral_norm() {
        let device = Default::default();
        let mut layer = SnConv::<B>::new(3, 5, true, &device);
        for _ in 0..200 {
            layer = layer.power_iteration();
        }
        let normalised = layer.weight().into_data().to_vec::<f32>().unwrap();
        assert!((top_singular(&normalised, 5, 48) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn u_gets_no_gradient_and_sigma_passes_one() {
        let device = Default::default();
        let layer = SnDense::<AB>::new(6, 4, true, &device);
        let x = Tensor::<AB, 2>::random([3, 6], Distribution::Default, &device);
        let grads = layer.forward(x).sum().backward();
        assert!(layer.weight.val().grad(&grads).is_some());
        assert!(layer.u.as_ref().unwrap().val().grad(&grads).is_none());
    }

    #[test]
    fn clipping_bounds_every_value() {
        let device = Default::default();
        let layer = SnConv::<B>::new(2, 3, false, &device).clip(0.01);
        let w = layer.weight().into_data().to_vec::<f32>().unwrap();
        assert!(w.iter().all(|v| v.abs() <= 0.01));
    }
}
