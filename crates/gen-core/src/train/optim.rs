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
//!
//! On the CPU backends (Flex and ndarray, whose tensors live in host memory) the step runs as one
//! fused loop over the weights, the gradient and both moments, instead of about a dozen tensor
//! operations that each read and write every parameter: profiled on the reference 784-512-256-32
//! autoencoder (Flex, batch 128), those passes took 31 % of the training step, bound by memory
//! bandwidth. Flex and ndarray hand a uniquely owned tensor's buffer out and take it back without a
//! copy, so the fused step touches each value once. Parameters of 65,536 values or more are
//! updated in chunks by all of rayon's threads, since one core does not saturate the memory
//! bandwidth. It computes the same expressions in the same order as the tensor path, which other backends (wgpu) keep, and a test holds the two to 1e-6.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};

/// Moments smaller than this in magnitude are set to zero before they decay into subnormals.
pub const MOMENT_FLUSH: f32 = 1e-30;
/// Moments are flushed every this many steps: in 16 steps a first moment decays by
/// `0.9¹⁶ ≈ 0.19`, so one that survived a flush (≥ 1e-30) is still a normal float (≥ 1.8e-31,
/// the smallest normal being 1.2e-38) at the next. A moment born subnormal (from a gradient
/// below about 3e-18, whose square is) lives at most until the next flush.
pub const FLUSH_EVERY: usize = 16;

/// Parameters of at least this many values are updated by all of rayon's threads, in chunks of
/// [`PARALLEL_CHUNK`]: the loop is bound by memory bandwidth (four values read, three written per
/// parameter), which one core does not saturate, and in the MLP autoencoder's step (1.1 million
/// parameters) the one-thread loop was 22 % of the time while the second worker waited (`perf`,
/// 2026-12-07). Smaller tensors (biases) stay on the caller's thread, where a hand-off costs
/// more than the loop.
const PARALLEL_MIN_VALUES: usize = 1 << 16;
/// Values per parallel chunk (128 KiB of each of the four arrays).
const PARALLEL_CHUNK: usize = 1 << 15;

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

/// Backends whose float tensors are host memory, where [`FlushingAdam`] runs its fused loop.
fn is_host_backend<B: Backend>(device: &B::Device) -> bool {
    matches!(B::name(device).as_str(), "flex" | "ndarray")
}

impl FlushingAdam {
    /// Adam's bias correction at step `time` (from 1), shared by both paths: the update is
    /// `m · factor / (√v + eps)`, burn's form `m̂ / (√v̂ + ε)` multiplied through by `√(1-β₂ᵗ)`.
    fn bias_correction(&self, time: usize) -> (f32, f32) {
        let t = time as i32;
        let bc2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        (bc2_sqrt / (1.0 - self.beta_1.powi(t)), self.epsilon * bc2_sqrt)
    }

    /// The step as tensor operations: any backend.
    fn step_tensors<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamState<B, D>>,
    ) -> (Tensor<B, D>, AdamState<B, D>) {
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
        let (factor, eps) = self.bias_correction(momentum.time);
        let update = momentum
            .moment_1
            .clone()
            .mul_scalar(factor)
            .div(momentum.moment_2.clone().sqrt().add_scalar(eps));
        (tensor - update.mul_scalar(lr), AdamState::new(momentum))
    }

    /// The same step as one loop over host memory: the tensor path's expressions in its order,
    /// each value read and written once. Every tensor must be `f32`.
    fn step_host<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamState<B, D>>,
    ) -> (Tensor<B, D>, AdamState<B, D>) {
        // `into_data` hands a uniquely owned buffer out without a copy (Flex, ndarray), and
        // `from_data` takes it back, so the values are updated where they lie. (A `Vec<f32>`
        // would be copied again into a buffer of the backend's alignment.)
        let device = tensor.device();
        let mut w = tensor.into_data();
        let g = grad.into_data();
        let (time, mut m, mut v) = match state {
            Some(AdamState { momentum: s }) => (s.time + 1, s.moment_1.into_data(), s.moment_2.into_data()),
            None => {
                let zeros = || TensorData::zeros::<f32, _>(g.shape.clone());
                (1, zeros(), zeros())
            }
        };
        let (b1, b2, wd) = (self.beta_1, self.beta_2, self.weight_decay);
        let (factor, eps) = self.bias_correction(time);
        let lr = lr as f32;
        let flush = time % FLUSH_EVERY == 0;
        let values = "dtype checked to be f32";
        let (w_s, g_s) = (
            w.as_mut_slice::<f32>().expect(values),
            g.as_slice::<f32>().expect(values),
        );
        let (m_s, v_s) = (
            m.as_mut_slice::<f32>().expect(values),
            v.as_mut_slice::<f32>().expect(values),
        );
        let update = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = if wd > 0.0 { g + *w * wd } else { g };
                let mut m1 = *m * b1 + g * (1.0 - b1);
                let mut m2 = *v * b2 + (g * g) * (1.0 - b2);
                if flush {
                    if m1.abs() < MOMENT_FLUSH {
                        m1 = 0.0;
                    }
                    if m2 < MOMENT_FLUSH {
                        m2 = 0.0;
                    }
                }
                *m = m1;
                *v = m2;
                *w -= (m1 * factor) / (m2.sqrt() + eps) * lr;
            }
        };
        // Each value's update depends on that value alone, so the chunks give the same values as
        // one loop, bit for bit.
        if w_s.len() >= PARALLEL_MIN_VALUES && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            crate::nn::keep_workers_awake();
            w_s.par_chunks_mut(PARALLEL_CHUNK)
                .zip(g_s.par_chunks(PARALLEL_CHUNK))
                .zip(m_s.par_chunks_mut(PARALLEL_CHUNK))
                .zip(v_s.par_chunks_mut(PARALLEL_CHUNK))
                .for_each(|(((w, g), m), v)| update(w, g, m, v));
        } else {
            update(w_s, g_s, m_s, v_s);
        }
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: Tensor::from_data(m, &device),
            moment_2: Tensor::from_data(v, &device),
            max_moment_2: None,
        };
        (Tensor::from_data(w, &device), AdamState::new(momentum))
    }
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
        let f32s = |t: &Tensor<B, D>| t.dtype() == DType::F32;
        let all_f32 = f32s(&tensor)
            && f32s(&grad)
            && state
                .as_ref()
                .is_none_or(|s| f32s(&s.momentum.moment_1) && f32s(&s.momentum.moment_2));
        let (tensor, state) = if all_f32 && is_host_backend::<B>(&tensor.device()) {
            self.step_host(lr, tensor, grad, state)
        } else {
            self.step_tensors(lr, tensor, grad, state)
        };
        (tensor, Some(state))
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
    fn fused_host_step_equals_the_tensor_step() {
        // 40 steps cross two flushes (16, 32); the last two rows' gradients always tiny, so that
        // without weight decay their moments get flushed; compared on weights and both moments.
        // 9 x 6 values take the one-thread loop, 9 x 8,000 the parallel chunks (two whole, one
        // part). The draws hold the seed lock: the trainer's tests compare seeded runs bit for
        // bit, and a long unlocked draw beside them took numbers from their sequence.
        let _lock = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        for cols in [6, 8_000] {
            assert_eq!(9 * cols >= PARALLEL_MIN_VALUES, cols > 6);
            for weight_decay in [0.0, 1e-2] {
                same_steps(&FlushingAdam { weight_decay, ..ours() }, cols);
            }
        }
    }

    fn same_steps(opt: &FlushingAdam, cols: usize) {
        let device = Default::default();
        let w0 = Tensor::<B, 2>::random([9, cols], Distribution::Normal(0.0, 1.0), &device);
        let (mut wh, mut wt) = (w0.clone(), w0);
        let (mut sh, mut st) = (None, None);
        for step in 1..=40 {
            let g = Tensor::cat(
                vec![
                    Tensor::<B, 2>::random([7, cols], Distribution::Normal(0.0, 0.1), &device),
                    Tensor::<B, 2>::random([2, cols], Distribution::Normal(0.0, 1e-20), &device),
                ],
                0,
            );
            let (a, sa) = opt.step_host(1e-2, wh, g.clone(), sh);
            let (b, sb) = opt.step_tensors(1e-2, wt, g, st);
            let tol = Tolerance::absolute(1e-6);
            a.to_data().assert_approx_eq::<f32>(&b.to_data(), tol);
            let (ma, mb) = (&sa.momentum, &sb.momentum);
            assert_eq!(ma.time, mb.time);
            ma.moment_1
                .to_data()
                .assert_approx_eq::<f32>(&mb.moment_1.to_data(), tol);
            ma.moment_2
                .to_data()
                .assert_approx_eq::<f32>(&mb.moment_2.to_data(), tol);
            if step % FLUSH_EVERY == 0 && opt.weight_decay == 0.0 {
                // Both paths flushed the same second moments: the tiny rows', 2 · cols values.
                let zeros = |t: &Tensor<B, 2>| {
                    let v = t.to_data().to_vec::<f32>().unwrap();
                    v.iter().filter(|&&x| x == 0.0).count()
                };
                assert_eq!(zeros(&ma.moment_2), 2 * cols, "step {step}");
                assert_eq!(zeros(&mb.moment_2), 2 * cols, "step {step}");
            }
            (wh, sh, wt, st) = (a, Some(sa), b, Some(sb));
        }
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
