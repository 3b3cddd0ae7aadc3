//! Binary cross-entropy on logits, `ℓ(x, t) = softplus(x) − t·x` element by element, as one
//! backend operation of our own registered with burn's autodiff: the Bernoulli likelihood of the
//! VAEs and the autoencoders' BCE loss.
//!
//! burn's operations take it as a product, a `log_sigmoid` (Flex: glibc's `expf` and `log1pf`
//! per value, about a third of the conv VAE's step) and a subtraction, each a graph node with a
//! backward pass of its own. Here forward is one vectorised pass that writes the loss and, when a
//! graph is recorded, `∂ℓ/∂x = σ(x) − t`; backward multiplies the incoming gradient by it (and,
//! where the target takes a gradient, gives `∂ℓ/∂t = −x`). The exponential is
//! [`exp_nonpositive`] and the logarithm [`ln_1p_unit`], both
//! branch-free polynomials compiled inside pulp's run-time dispatch.
//!
//! [`bce_with_logits`] computes the same values on every backend; the host path is taken for the
//! backends registered with [`register_fast_bce`] (`gen-cli` registers Flex and ndarray), found
//! in a `TypeId`-keyed table like [`fastdense`](super::fastdense)'s. The node is differentiable
//! once: `Autodiff<Autodiff<B>>` is never registered and keeps burn's operations.

use std::any::TypeId;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorMetadata};
use rayon::prelude::*;

use super::fastdense::{exp_nonpositive, scaled};
use super::host::{Erased, Registry, float, host_tensor, on_host, tensor, unerase, with_values};

/// Values per block of a parallel sweep (and the length below which one thread sweeps all).
const BLOCK: usize = 1 << 17;

#[derive(Clone, Copy)]
struct Entry {
    bce: fn(Erased, Erased) -> Erased,
}

static REGISTRY: Registry<Entry> = Registry::new();

/// Makes [`bce_with_logits`] on `I` and `Autodiff<I>` take the host path. Idempotent.
pub fn register_fast_bce<I: Backend>() {
    REGISTRY.insert(
        TypeId::of::<Autodiff<I>>(),
        Entry {
            bce: erased_autodiff::<I>,
        },
    );
    REGISTRY.insert(TypeId::of::<I>(), Entry { bce: erased_inner::<I> });
}

/// Whether `B` is registered with [`register_fast_bce`] (as itself or as an inner backend).
pub fn has_fast_bce<B: Backend>() -> bool {
    REGISTRY.get::<B>().is_some()
}

/// `softplus(x) − t·x` element by element (`−[t ln σ(x) + (1 − t) ln σ(−x)]`), fused on
/// registered backends.
///
/// # Shapes
/// - `logits`, `target`: `[batch, d]`; output `[batch, d]`
pub fn bce_with_logits<B: Backend>(logits: Tensor<B, 2>, target: Tensor<B, 2>) -> Tensor<B, 2> {
    match REGISTRY.get::<B>() {
        Some(entry) => unerase((entry.bce)(Box::new(logits), Box::new(target))),
        None => bce_with_logits_reference(logits, target),
    }
}

/// [`bce_with_logits`] in burn's operations: `(1 − t)·x − log σ(x)`, with burn's stable
/// `log_sigmoid`; the path of unregistered backends, twice differentiable.
pub fn bce_with_logits_reference<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    target: Tensor<B, D>,
) -> Tensor<B, D> {
    logits.clone() * target.neg().add_scalar(1.0) - burn::tensor::activation::log_sigmoid(logits)
}

/// The node: logits and target are its parents; it keeps `σ(x) − t` and, when the target takes a
/// gradient, the logits.
#[derive(Debug)]
struct BceBackward;

impl<I: Backend> Backward<I, 2> for BceBackward {
    type State = (FloatTensor<I>, Option<FloatTensor<I>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_logits, node_target] = ops.parents;
        let grad = grads.consume::<I>(&ops.node);
        let (slope, logits) = ops.state;
        if let Some(node) = node_target {
            let logits = logits.expect("the logits are kept when the target takes a gradient");
            let g = tensor::<I, 2>(grad.clone()) * tensor::<I, 2>(logits).neg();
            grads.register::<I>(node.id, float(g));
        }
        if let Some(node) = node_logits {
            grads.register::<I>(node.id, scaled::<I, 2>(grad, &slope));
        }
    }
}

fn erased_autodiff<I: Backend>(logits: Erased, target: Erased) -> Erased {
    let logits = float(unerase::<Tensor<Autodiff<I>, 2>>(logits));
    let target = float(unerase::<Tensor<Autodiff<I>, 2>>(target));
    // The parents the backward pass gets are those whose requirement is not `None`.
    let target_tracked = !target.node.requirement.is_none();
    let out = match BceBackward
        .prepare::<NoCheckpointing>([logits.node.clone(), target.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let kept = target_tracked.then(|| logits.primitive.clone());
            let (loss, slope) = forward::<I>(logits.primitive, target.primitive, true);
            let slope = slope.expect("the slope is written when a graph is recorded");
            prep.finish((slope, kept), loss)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward::<I>(logits.primitive, target.primitive, false).0),
    };
    Box::new(tensor::<Autodiff<I>, 2>(out))
}

fn erased_inner<I: Backend>(logits: Erased, target: Erased) -> Erased {
    let logits = float(unerase::<Tensor<I, 2>>(logits));
    let target = float(unerase::<Tensor<I, 2>>(target));
    Box::new(tensor::<I, 2>(forward::<I>(logits, target, false).0))
}

/// The loss and, when `keep_slope`, `σ(x) − t`.
fn forward<I: Backend>(
    logits: FloatTensor<I>,
    target: FloatTensor<I>,
    keep_slope: bool,
) -> (FloatTensor<I>, Option<FloatTensor<I>>) {
    assert_eq!(
        logits.shape(),
        target.shape(),
        "bce_with_logits: logits and target shapes differ"
    );
    if !on_host::<I>(&[&logits, &target]) {
        let (x, t) = (tensor::<I, 2>(logits), tensor::<I, 2>(target));
        let slope = keep_slope.then(|| float(burn::tensor::activation::sigmoid(x.clone()) - t.clone()));
        return (float(bce_with_logits_reference(x, t)), slope);
    }
    let (shape, device) = (logits.shape().dims::<2>(), I::float_device(&logits));
    let n = shape[0] * shape[1];
    let mut loss = vec![0.0f32; n];
    let mut slope = keep_slope.then(|| vec![0.0f32; n]);
    with_values::<I, 2, _>(&logits, |x| {
        with_values::<I, 2, _>(&target, |t| sweep(x, t, &mut loss, slope.as_deref_mut()))
    });
    (
        float(host_tensor::<I, 2>(loss, shape, &device)),
        slope.map(|s| float(host_tensor::<I, 2>(s, shape, &device))),
    )
}

/// The loss of every value, and the slope where asked, in parallel blocks when large.
/// `#[inline]` so that it is compiled at the level of the crate that instantiates the operation
/// (ARCHITECTURE.md, "Where the host loops are compiled").
#[inline]
fn sweep(x: &[f32], t: &[f32], loss: &mut [f32], slope: Option<&mut [f32]>) {
    let run = |x: &[f32], t: &[f32], loss: &mut [f32], slope: Option<&mut [f32]>| {
        pulp::Arch::new().dispatch(Sweep { x, t, loss, slope })
    };
    match slope {
        _ if x.len() < BLOCK => run(x, t, loss, slope),
        None => loss
            .par_chunks_mut(BLOCK)
            .zip(x.par_chunks(BLOCK).zip(t.par_chunks(BLOCK)))
            .for_each(|(l, (x, t))| run(x, t, l, None)),
        Some(s) => loss
            .par_chunks_mut(BLOCK)
            .zip(s.par_chunks_mut(BLOCK))
            .zip(x.par_chunks(BLOCK).zip(t.par_chunks(BLOCK)))
            .for_each(|((l, s), (x, t))| run(x, t, l, Some(s))),
    }
}

/// One block of [`sweep`] inside pulp's dispatch, for the vector instructions the CPU has.
struct Sweep<'a> {
    x: &'a [f32],
    t: &'a [f32],
    loss: &'a mut [f32],
    slope: Option<&'a mut [f32]>,
}

impl pulp::WithSimd for Sweep<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        match self.slope {
            Some(s) => {
                for (((l, s), &x), &t) in self.loss.iter_mut().zip(s.iter_mut()).zip(self.x).zip(self.t) {
                    let (value, sigma) = bce(x, t);
                    *l = value;
                    *s = sigma - t;
                }
            }
            None => {
                for ((l, &x), &t) in self.loss.iter_mut().zip(self.x).zip(self.t) {
                    *l = bce(x, t).0;
                }
            }
        }
    }
}

/// `(softplus(x) − t·x, σ(x))` from `e = exp(−|x|)`: `softplus(x) = max(x, 0) + ln(1 + e)` and
/// `σ(x) = 1/(1 + e)` or `e/(1 + e)` by the sign of `x`. Branch-free; a NaN logit gives NaN.
#[inline(always)]
fn bce(x: f32, t: f32) -> (f32, f32) {
    let e = exp_nonpositive(-x.abs());
    let softplus = (if x > 0.0 { x } else { 0.0 }) + ln_1p_unit(e);
    let s = 1.0 / (1.0 + e);
    (softplus - t * x, if x >= 0.0 { s } else { e * s })
}

/// `ln(1 + e)` for `e` in `[0, 1]` (and NaN), branch-free so that it vectorises: `u = 1 + e` as
/// `k·ln 2 + ln m` with `m = u` or `u/2` in `[1/√2, √2]`, Cephes' degree-8 polynomial for
/// `ln m`, and the rounding of `1 + e` corrected by the factor `e / (u − 1)` (so a small `e`
/// gives `e`, not 0). Within 3e-7 relative of `f64::ln_1p` (tested).
#[inline(always)]
pub fn ln_1p_unit(e: f32) -> f32 {
    let u = 1.0 + e;
    let big = u > std::f32::consts::SQRT_2;
    let m = if big { 0.5 * u } else { u };
    let k = if big { 1.0 } else { 0.0 };
    let f = m - 1.0;
    let z = f * f;
    let mut p = 7.037_683_6e-2_f32;
    p = p * f - 1.151_461e-1;
    p = p * f + 1.167_699_9e-1;
    p = p * f - 1.242_014_1e-1;
    p = p * f + 1.424_932_3e-1;
    p = p * f - 1.666_805_8e-1;
    p = p * f + 2.000_071_5e-1;
    p = p * f - 2.499_999_4e-1;
    p = p * f + 3.333_333e-1;
    let ln_m = f + (p * f * z - 0.5 * z);
    let ln_u = k * std::f32::consts::LN_2 + ln_m;
    let d = u - 1.0;
    // `u − 1` is the part of `e` that `1 + e` kept: scale the logarithm back to `e` itself.
    if d == 0.0 { e } else { ln_u * (e / d) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend as A, TestBackend};
    use burn::tensor::{Distribution, TensorData, Tolerance};

    #[test]
    fn ln_1p_matches_std_within_3e_7() {
        let mut worst = 0.0f64;
        for i in 0..=1_000_000 {
            // Uniform over [0, 1] and log-spaced down to 1e-30, where ln(1 + e) ≈ e.
            for e in [i as f32 / 1e6, 10f32.powf(-30.0 * i as f32 / 1e6)] {
                let (got, want) = (f64::from(ln_1p_unit(e)), f64::from(e).ln_1p());
                if want > 0.0 {
                    worst = worst.max(((got - want) / want).abs());
                }
            }
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(ln_1p_unit(0.0), 0.0);
        assert!(ln_1p_unit(f32::NAN).is_nan());
    }

    /// The fused loss and its logits and target gradients against burn's operations, with logits
    /// from −100 to 100 (the tails of both signs), targets in [0, 1] and binary ones, on Flex.
    #[test]
    fn fused_matches_burn() {
        let device = Default::default();
        let _guard = crate::testing::seeded::<TestBackend>(&device, 0);
        register_fast_bce::<TestBackend>();
        assert!(has_fast_bce::<A>() && has_fast_bce::<TestBackend>());
        assert!(!has_fast_bce::<Autodiff<A>>());
        let tol = Tolerance::<f32>::rel_abs(1e-5, 1e-6);
        let mut logits: Vec<f32> = (0..=400).map(|i| (i as f32 - 200.0) / 2.0).collect();
        logits.extend([-0.0, 1e-7, -1e-7, 17.0]);
        let n = logits.len();
        let targets: Vec<f32> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    (i % 2) as f32
                } else {
                    (i % 7) as f32 / 6.0
                }
            })
            .collect();
        let (rows, cols) = (3, n / 3);
        let x0 = TensorData::new(logits, [rows, cols]);
        let t0 = TensorData::new(targets, [rows, cols]);
        let up = Tensor::<A, 2>::random([rows, cols], Distribution::Uniform(-1.0, 1.0), &device);
        let run = |ours: bool| {
            let x = Tensor::<A, 2>::from_data(x0.clone(), &device).require_grad();
            let t = Tensor::<A, 2>::from_data(t0.clone(), &device).require_grad();
            let l = if ours {
                bce_with_logits(x.clone(), t.clone())
            } else {
                bce_with_logits_reference(x.clone(), t.clone())
            };
            let grads = (l.clone() * up.clone()).sum().backward();
            (
                l.into_data(),
                x.grad(&grads).unwrap().into_data(),
                t.grad(&grads).unwrap().into_data(),
            )
        };
        let (ours, burns) = (run(true), run(false));
        ours.0.assert_approx_eq::<f32>(&burns.0, tol);
        ours.1.assert_approx_eq::<f32>(&burns.1, tol);
        ours.2.assert_approx_eq::<f32>(&burns.2, tol);
        // Without autodiff, and with a target that takes no gradient.
        let x = Tensor::<TestBackend, 2>::from_data(x0.clone(), &device);
        let t = Tensor::<TestBackend, 2>::from_data(t0.clone(), &device);
        bce_with_logits(x.clone(), t.clone())
            .into_data()
            .assert_approx_eq::<f32>(&bce_with_logits_reference(x, t).into_data(), tol);
        let x = Tensor::<A, 2>::from_data(x0.clone(), &device).require_grad();
        let t = Tensor::<A, 2>::from_data(t0.clone(), &device);
        let grads = bce_with_logits(x.clone(), t).sum().backward();
        assert!(x.grad(&grads).is_some());
    }
}
