//! Adam that keeps its state out of the subnormal range.
//!
//! burn's `Adam` decays both moments geometrically (`m ← β₁m + (1-β₁)g`). Weights whose gradient
//! is zero most of the time (first-layer weights of MNIST's border pixels, units that rarely fire)
//! carry moments that decay through the subnormal floats, and every operation on a subnormal
//! takes a microcode assist on x86: measured on the 784-1000-500-250-30 MNIST autoencoder, Flex
//! fell from 4,400 to 1,800 samples/s after two epochs, 44 % of the time in the scalar multiply
//! of the moments. Flushing denormals in the FPU would need `unsafe`, which this workspace
//! forbids, so this optimizer sets moments that cannot matter to exactly zero instead: every
//! [`FLUSH_EVERY`] steps, first moments with `|m| < 1e-30` and second moments with `v < 1e-30`.
//!
//! That cannot change an update measurably: the update is `m̂ / (√v̂ + ε)` with `ε = 1e-8`, so a
//! first moment below 1e-30 moves a weight by less than `lr · 1e-22`, and a second moment below
//! 1e-30 changes the denominator by less than 1e-15 against ε. On the model above the losses of
//! five epochs equal burn's to the fifth digit, at a steady 5,500 samples/s. Flushing at every
//! step instead cost 10 % of the speed (five more tensor passes per parameter per step).
//! Everything else is burn's `Adam` step, and the state is burn's `AdamState`, so checkpoints
//! written before keep loading.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// Moments smaller than this in magnitude are set to zero before they decay into subnormals.
pub const MOMENT_FLUSH: f32 = 1e-30;
/// Moments are flushed every this many steps: in 16 steps a first moment decays by
/// `0.9¹⁶ ≈ 0.19`, so one that survived a flush (≥ 1e-30) is still a normal float (≥ 1.8e-31,
/// the smallest normal being 1.2e-38) at the next. A moment born subnormal (from a gradient
/// below about 3e-18, whose square is) lives at most until the next flush.
pub const FLUSH_EVERY: usize = 16;

/// Adam (Kingma and Ba 2015) with L2 weight decay and the flushing described in the module docs.
#[derive(Debug, Clone)]
pub struct FlushingAdam {
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// Added to `√v̂`.
    pub epsilon: f32,
    /// Coupled L2 weight decay (added to the gradient); 0 for none.
    pub weight_decay: f32,
}

impl Default for FlushingAdam {
    /// β₁ = 0.9, β₂ = 0.999, ε = 1e-8 (PyTorch's defaults), no weight decay.
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl FlushingAdam {
    /// Wraps the optimizer for a module type, as burn's `AdamConfig::init` does.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

fn flush_abs<B: Backend, const D: usize>(t: Tensor<B, D>, below: f32) -> Tensor<B, D> {
    let small = t.clone().abs().lower_elem(below);
    t.mask_fill(small, 0.0)
}

impl<B: Backend> SimpleOptimizer<B> for FlushingAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let mut grad = grad;
        if self.weight_decay > 0.0 {
            grad = grad.add(tensor.clone().mul_scalar(self.weight_decay));
        }
        let (b1, b2) = (self.beta_1, self.beta_2);
        let g1 = grad.clone().mul_scalar(1.0 - b1);
        let g2 = grad.square().mul_scalar(1.0 - b2);
        let momentum = match state {
            Some(AdamState { momentum: s }) if (s.time + 1) % FLUSH_EVERY == 0 => AdaptiveMomentumState {
                time: s.time + 1,
                moment_1: flush_abs(s.moment_1.mul_scalar(b1).add(g1), MOMENT_FLUSH),
                moment_2: {
                    let v = s.moment_2.mul_scalar(b2).add(g2);
                    let small = v.clone().lower_elem(MOMENT_FLUSH);
                    v.mask_fill(small, 0.0)
                },
                max_moment_2: None,
            },
            Some(AdamState { momentum: s }) => AdaptiveMomentumState {
                time: s.time + 1,
                moment_1: s.moment_1.mul_scalar(b1).add(g1),
                moment_2: s.moment_2.mul_scalar(b2).add(g2),
                max_moment_2: None,
            },
            None => AdaptiveMomentumState {
                time: 1,
                moment_1: g1,
                moment_2: g2,
                max_moment_2: None,
            },
        };
        let t = momentum.time as i32;
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
        let factor = bc2_sqrt / (1.0 - b1.powi(t));
        let update = momentum
            .moment_1
            .clone()
            .mul_scalar(factor)
            .div(momentum.moment_2.clone().sqrt().add_scalar(self.epsilon * bc2_sqrt));
        (tensor - update.mul_scalar(lr), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;
    use burn::optim::AdamConfig;
    use burn::tensor::{Distribution, Tolerance};

    type B = TestBackend;

    fn burn_adam() -> burn::optim::Adam {
        AdamConfig::new().with_epsilon(1e-8).build()
    }

    fn ours() -> FlushingAdam {
        FlushingAdam::default()
    }

    #[test]
    fn matches_burns_adam_on_ordinary_gradients() {
        let device = Default::default();
        let mut w_ref = Tensor::<B, 2>::random([7, 5], Distribution::Normal(0.0, 1.0), &device);
        let mut w = w_ref.clone();
        let (mut s_ref, mut s) = (None, None);
        for _ in 0..20 {
            let g = Tensor::<B, 2>::random([7, 5], Distribution::Normal(0.0, 0.1), &device);
            let (a, sa) = SimpleOptimizer::<B>::step(&burn_adam(), 1e-2, w_ref, g.clone(), s_ref);
            let (b, sb) = SimpleOptimizer::<B>::step(&ours(), 1e-2, w, g, s);
            (w_ref, s_ref, w, s) = (a, sa, b, sb);
        }
        w.into_data()
            .assert_approx_eq::<f32>(&w_ref.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn decaying_moments_never_become_subnormal() {
        // Gradients whose moments start as normal floats (|g| above about 3e-18) keep them
        // normal or exactly zero however long they decay.
        let device = Default::default();
        let mut w = Tensor::<B, 1>::from_floats([1.0, 1.0, 1.0], &device);
        let mut state = None;
        // One real gradient, then zeros: burn's Adam would decay m through 1e-38 .. 1e-45.
        let first = Tensor::<B, 1>::from_floats([1e-3, 1e-10, 1e-17], &device);
        (w, state) = SimpleOptimizer::<B>::step(&ours(), 1e-3, w, first, state);
        for _ in 0..2000 {
            let zero = Tensor::<B, 1>::zeros([3], &device);
            (w, state) = SimpleOptimizer::<B>::step(&ours(), 1e-3, w, zero, state);
            let s = state.as_ref().unwrap();
            for t in [&s.momentum.moment_1, &s.momentum.moment_2] {
                for v in t.to_data().to_vec::<f32>().unwrap() {
                    assert!(v == 0.0 || v.is_normal(), "subnormal moment {v:e}");
                }
            }
        }
        let w = w.into_data().to_vec::<f32>().unwrap();
        // The first two moved against their gradient; the third's step, about lr·g/ε = 1e-12,
        // is below f32's resolution at 1.0.
        assert!(w[0] < 1.0 && w[1] < 1.0 && w[0] > 0.9, "{w:?}");
        assert_eq!(w[2], 1.0, "{w:?}");
    }

    #[test]
    fn weight_decay_is_added_to_the_gradient() {
        let device = Default::default();
        let w = Tensor::<B, 1>::from_floats([2.0], &device);
        let opt = FlushingAdam {
            weight_decay: 0.5,
            ..ours()
        };
        // Zero gradient plus decay 0.5·2 = 1: Adam's first step moves by lr·sign(g) = -lr.
        let (w, _) = SimpleOptimizer::<B>::step(&opt, 0.1, w, Tensor::zeros([1], &device), None);
        let v = w.into_data().to_vec::<f32>().unwrap()[0];
        assert!((v - 1.9).abs() < 1e-5, "{v}");
    }
}
