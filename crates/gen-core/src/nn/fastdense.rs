//! A fused dense layer `act(x·W + b)`: one matrix product and one pass over its output forward,
//! one pass and two products backward, as a backend operation of our own registered with burn's
//! autodiff.
//!
//! burn runs a dense layer with an activation as three operations (product, broadcast bias add,
//! activation), each allocating its output and each a node of the autodiff graph whose backward
//! pass is another sweep over memory; the bias gradient is a reduction of its own and the
//! activation's derivative is yet another pass (ARCHITECTURE.md, "Dense layers on the CPU"). Here:
//!
//! | | work |
//! |---|---|
//! | forward | `z = x·W` (faer's product), then per element `y = act(z + b)` and, when a graph is recorded, `d = act'(z + b)`, in one pass |
//! | backward | `g ← g ⊙ d` with the column sums `∂b = Σ_rows g` in the same pass, then `∂x = g·Wᵀ` and `∂W = xᵀ·g` |
//!
//! The products are faer's, written into buffers of ours and reading Flex tensors in place (the
//! transposes are views; ARCHITECTURE.md, "Matrix products of our own"). The pass runs on host memory (for `f32`
//! tensors of Flex and ndarray), over row blocks in
//! parallel when the matrix is large enough to pay for the hand-off, and the exponentials of the
//! sigmoid, tanh and softplus are a branch-free polynomial ([`exp_nonpositive`]) compiled for the
//! CPU's vector instructions at run time (pulp's dispatch), instead of one `expf` call per value.
//!
//! # Using it
//! [`dense`] computes the same values as [`dense_reference`] (burn's operations) on every backend.
//! The fused path is taken for the backends registered with [`register_fast_dense`] (`gen-cli`
//! registers Flex and ndarray, with and without autodiff), found at run time in a table keyed by
//! `TypeId` like [`fastconv`](super::fastconv)'s. Its graph node is differentiable once: a model
//! that takes a gradient of a gradient runs on `Autodiff<Autodiff<B>>`, which is never registered
//! and so keeps burn's operations.

use std::any::TypeId;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use rayon::prelude::*;

use super::Activation;
use faer::MatRef;

use super::host::{
    Erased, Registry, dims2, float, host_tensor, matmul, on_host, tensor, unerase, values, with_matrix, with_values,
};

/// Matrices with fewer values than this are swept by one thread: waking rayon's second thread
/// costs about as much as a vectorised pass over a quarter of a million values, and the thread
/// wake-ups were already a tenth of the MLP autoencoder's step (`perf`, batch 128, widths to 784).
const PARALLEL_MIN: usize = 1 << 18;

#[derive(Clone, Copy)]
struct Entry {
    dense: fn(Erased, Erased, Erased, Activation) -> Erased,
}

static REGISTRY: Registry<Entry> = Registry::new();

/// Makes [`dense`] (and [`dense_jacobian_fro2`](super::dense_jacobian_fro2), the norm of its
/// Jacobian) on `I` and `Autodiff<I>` take the fused path. Idempotent; cheap enough to call
/// before every job.
pub fn register_fast_dense<I: Backend>() {
    REGISTRY.insert(
        TypeId::of::<Autodiff<I>>(),
        Entry {
            dense: erased_autodiff::<I>,
        },
    );
    REGISTRY.insert(
        TypeId::of::<I>(),
        Entry {
            dense: erased_inner::<I>,
        },
    );
    super::fastjacobian::register::<I>();
}

/// Whether `B` is registered with [`register_fast_dense`] (as itself or as an inner backend).
pub fn has_fast_dense<B: Backend>() -> bool {
    REGISTRY.get::<B>().is_some()
}

/// `activation(x·weight + bias)`, fused on registered backends.
///
/// # Shapes
/// - `x`: `[batch, d_input]`, `weight`: `[d_input, d_output]`, `bias`: `[d_output]`
/// - output: `[batch, d_output]`
pub fn dense<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
    activation: Activation,
) -> Tensor<B, 2> {
    match REGISTRY.get::<B>() {
        Some(entry) => unerase((entry.dense)(Box::new(x), Box::new(weight), Box::new(bias), activation)),
        None => dense_reference(x, weight, bias, activation),
    }
}

/// `activation(x·weight + bias)` in burn's operations: the path of unregistered backends, twice
/// differentiable, and what the fused path is tested against.
pub fn dense_reference<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
    activation: Activation,
) -> Tensor<B, 2> {
    activation.forward(x.matmul(weight) + bias.unsqueeze::<2>())
}

/// The autodiff node: input, weight and bias are its parents; it keeps the input and weight
/// (checkpointed) and the activation's derivative at the output (`None` for the identity).
#[derive(Debug)]
struct DenseBackward;

impl<I: Backend> Backward<I, 3> for DenseBackward {
    type State = (NodeId, NodeId, Option<FloatTensor<I>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<I>(&ops.node);
        let (x_state, weight_state, derivative) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<I>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<I>>(weight_state);
        let want_bias = node_bias.is_some();
        let host = on_host::<I>(&[&grad, &x, &weight]) && derivative.as_ref().is_none_or(|d| on_host::<I>(&[d]));
        if !host {
            let (g, bias_grad) = pre_activation_grad::<I>(grad, derivative, want_bias);
            if let Some(node) = node_x {
                grads.register::<I>(node.id, I::float_matmul(g.clone(), I::float_transpose(weight)));
            }
            if let Some(node) = node_weight {
                grads.register::<I>(node.id, I::float_matmul(I::float_transpose(x), g));
            }
            if let (Some(node), Some(bias_grad)) = (node_bias, bias_grad) {
                grads.register::<I>(node.id, bias_grad);
            }
            return;
        }
        // On the host: `g ⊙ d` in place, then the two products read `g`, `x` and `W` where they
        // lie (transposes are views).
        let device = I::float_device(&grad);
        let ([n, d_out], [_, d_in]) = (dims2::<I>(&grad), dims2::<I>(&x));
        let mut g = values(tensor::<I, 2>(grad));
        let derivative = derivative.map(|d| values(tensor::<I, 2>(d)));
        let sums = scale_and_sum_columns(&mut g, derivative.as_deref(), d_out, want_bias);
        let g = MatRef::from_row_major_slice(&g, n, d_out);
        if let Some(node) = node_x {
            let dx = with_matrix::<I, _>(&weight, |w| matmul(g, w.transpose()));
            grads.register::<I>(node.id, float(host_tensor::<I, 2>(dx, [n, d_in], &device)));
        }
        if let Some(node) = node_weight {
            let dw = with_matrix::<I, _>(&x, |x| matmul(x.transpose(), g));
            grads.register::<I>(node.id, float(host_tensor::<I, 2>(dw, [d_in, d_out], &device)));
        }
        if let (Some(node), Some(sums)) = (node_bias, sums) {
            grads.register::<I>(node.id, float(host_tensor::<I, 1>(sums, [d_out], &device)));
        }
    }
}

fn erased_autodiff<I: Backend>(x: Erased, weight: Erased, bias: Erased, activation: Activation) -> Erased {
    let x = float(unerase::<Tensor<Autodiff<I>, 2>>(x));
    let weight = float(unerase::<Tensor<Autodiff<I>, 2>>(weight));
    let bias = float(unerase::<Tensor<Autodiff<I>, 1>>(bias));
    let out = match DenseBackward
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let (y, derivative) = forward::<I>(x.primitive, weight.primitive, bias.primitive, activation, true);
            prep.finish((x_state, weight_state, derivative), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward::<I>(x.primitive, weight.primitive, bias.primitive, activation, false).0)
        }
    };
    Box::new(tensor::<Autodiff<I>, 2>(out))
}

fn erased_inner<I: Backend>(x: Erased, weight: Erased, bias: Erased, activation: Activation) -> Erased {
    let x = float(unerase::<Tensor<I, 2>>(x));
    let weight = float(unerase::<Tensor<I, 2>>(weight));
    let bias = float(unerase::<Tensor<I, 1>>(bias));
    Box::new(tensor::<I, 2>(forward::<I>(x, weight, bias, activation, false).0))
}

/// The output and, when `keep_derivative` and the activation is not the identity, the
/// activation's derivative at each output value.
fn forward<I: Backend>(
    x: FloatTensor<I>,
    weight: FloatTensor<I>,
    bias: FloatTensor<I>,
    activation: Activation,
    keep_derivative: bool,
) -> (FloatTensor<I>, Option<FloatTensor<I>>) {
    let keep_derivative = keep_derivative && activation != Activation::Identity;
    if !on_host::<I>(&[&x, &weight, &bias]) {
        let z = tensor::<I, 2>(x).matmul(tensor(weight)) + tensor::<I, 1>(bias).unsqueeze::<2>();
        let y = activation.forward(z.clone());
        let derivative = keep_derivative.then(|| float(activation.derivative(z, y.clone())));
        return (float(y), derivative);
    }
    let device = I::float_device(&x);
    let ([n, _], [_, d_out]) = (dims2::<I>(&x), dims2::<I>(&weight));
    let mut y = with_matrix::<I, _>(&x, |x| with_matrix::<I, _>(&weight, |w| matmul(x, w)));
    let bias = values(tensor::<I, 1>(bias));
    let mut derivative = keep_derivative.then(|| vec![0.0f32; n * d_out]);
    activate(&mut y, derivative.as_deref_mut(), &bias, activation);
    (
        float(host_tensor::<I, 2>(y, [n, d_out], &device)),
        derivative.map(|d| float(host_tensor::<I, 2>(d, [n, d_out], &device))),
    )
}

/// The gradient at the pre-activation, `g ⊙ d`, and, when `want_bias`, its column sums, in the
/// backend's operations (tensors off the host).
fn pre_activation_grad<I: Backend>(
    grad: FloatTensor<I>,
    derivative: Option<FloatTensor<I>>,
    want_bias: bool,
) -> (FloatTensor<I>, Option<FloatTensor<I>>) {
    let g = tensor::<I, 2>(grad);
    let g = match derivative {
        Some(d) => g * tensor::<I, 2>(d),
        None => g,
    };
    let d_out = g.dims()[1];
    let bias_grad = want_bias.then(|| float(g.clone().sum_dim(0).reshape([d_out])));
    (float(g), bias_grad)
}

/// Rows per block of a parallel sweep over a `[_, width]` matrix of `len` values, or `None`
/// when one thread should sweep it all.
#[inline]
fn block_rows(len: usize, width: usize) -> Option<usize> {
    (len >= PARALLEL_MIN && width > 0).then(|| (PARALLEL_MIN / 2 / width).max(1))
}

/// `y ← act(y + b)` row by row, and `d ← act'(y + b)` when asked.
///
/// `#[inline]` so that it is compiled in the crate that instantiates the layer for a backend
/// (ARCHITECTURE.md, "Where the host loops are compiled").
#[inline]
fn activate(y: &mut [f32], derivative: Option<&mut [f32]>, bias: &[f32], activation: Activation) {
    let width = bias.len();
    let sweep = |y: &mut [f32], derivative: Option<&mut [f32]>| {
        pulp::Arch::new().dispatch(Activate {
            y,
            derivative,
            bias,
            activation,
        })
    };
    match (block_rows(y.len(), width), derivative) {
        (None, d) => sweep(y, d),
        (Some(rows), None) => y.par_chunks_mut(rows * width).for_each(|y| sweep(y, None)),
        (Some(rows), Some(d)) => y
            .par_chunks_mut(rows * width)
            .zip(d.par_chunks_mut(rows * width))
            .for_each(|(y, d)| sweep(y, Some(d))),
    }
}

/// [`activate_block`] compiled inside pulp's dispatch, for the vector instructions the CPU has.
/// (A closure would not do: pulp inlines its call, not its body, so the loop would keep the
/// baseline's scalar instructions.)
struct Activate<'a> {
    y: &'a mut [f32],
    derivative: Option<&'a mut [f32]>,
    bias: &'a [f32],
    activation: Activation,
}

impl pulp::WithSimd for Activate<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        activate_block(self.y, self.derivative, self.bias, self.activation);
    }
}

/// [`scale_block`] inside pulp's dispatch, like [`Activate`].
struct Scale<'a> {
    g: &'a mut [f32],
    derivative: Option<&'a [f32]>,
    sums: &'a mut [f32],
    width: usize,
}

impl pulp::WithSimd for Scale<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        scale_block(self.g, self.derivative, self.sums, self.width);
    }
}

#[inline(always)]
fn activate_block(y: &mut [f32], derivative: Option<&mut [f32]>, bias: &[f32], activation: Activation) {
    let width = bias.len();
    macro_rules! rows {
        ($f:expr) => {
            match derivative {
                Some(d) => {
                    for (row, drow) in y.chunks_exact_mut(width).zip(d.chunks_exact_mut(width)) {
                        for ((v, dv), &b) in row.iter_mut().zip(drow.iter_mut()).zip(bias) {
                            (*v, *dv) = $f(*v + b);
                        }
                    }
                }
                None => {
                    for row in y.chunks_exact_mut(width) {
                        for (v, &b) in row.iter_mut().zip(bias) {
                            *v = $f(*v + b).0;
                        }
                    }
                }
            }
        };
    }
    match activation {
        Activation::Identity => rows!(|z: f32| (z, 1.0)),
        Activation::Relu => rows!(relu),
        Activation::LeakyRelu => rows!(leaky_relu),
        Activation::Sigmoid => rows!(sigmoid),
        Activation::Tanh => rows!(tanh),
        Activation::Softplus => rows!(softplus),
    }
}

/// `y ← act(y)` over values of any layout (a convolution's output, its bias already added), and
/// `d ← act'(y)` when asked: the flat form of [`activate`], in parallel blocks when large.
/// `#[inline]` like [`activate`].
#[inline]
pub(crate) fn activate_flat(y: &mut [f32], derivative: Option<&mut [f32]>, activation: Activation) {
    let sweep = |y: &mut [f32], derivative: Option<&mut [f32]>| {
        pulp::Arch::new().dispatch(ActivateFlat {
            y,
            derivative,
            activation,
        })
    };
    let block = PARALLEL_MIN / 2;
    match (y.len() >= PARALLEL_MIN, derivative) {
        (false, d) => sweep(y, d),
        (true, None) => y.par_chunks_mut(block).for_each(|y| sweep(y, None)),
        (true, Some(d)) => y
            .par_chunks_mut(block)
            .zip(d.par_chunks_mut(block))
            .for_each(|(y, d)| sweep(y, Some(d))),
    }
}

/// The output gradient `grad` times a kept derivative `d` of the same shape, element by element
/// (in place on the host, [`scale_and_sum_columns`] without the sums; burn's product elsewhere):
/// the backward pass of an activation fused into another operation.
pub(crate) fn scaled<I: Backend, const D: usize>(grad: FloatTensor<I>, derivative: &FloatTensor<I>) -> FloatTensor<I> {
    if !on_host::<I>(&[&grad, derivative]) {
        return float(tensor::<I, D>(grad) * tensor::<I, D>(derivative.clone()));
    }
    let device = I::float_device(&grad);
    let mut g = values(tensor::<I, D>(grad));
    with_values::<I, D, _>(derivative, |d| {
        assert_eq!(
            g.len(),
            d.len(),
            "scaled: the gradient and the derivative differ in length"
        );
        scale_and_sum_columns(&mut g, Some(d), 1, false);
    });
    float(g.into_tensor::<I, D>(&device))
}

/// [`activate_flat_block`] inside pulp's dispatch, like [`Activate`].
struct ActivateFlat<'a> {
    y: &'a mut [f32],
    derivative: Option<&'a mut [f32]>,
    activation: Activation,
}

impl pulp::WithSimd for ActivateFlat<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        activate_flat_block(self.y, self.derivative, self.activation);
    }
}

#[inline(always)]
fn activate_flat_block(y: &mut [f32], derivative: Option<&mut [f32]>, activation: Activation) {
    macro_rules! values {
        ($f:expr) => {
            match derivative {
                Some(d) => {
                    for (v, dv) in y.iter_mut().zip(d.iter_mut()) {
                        (*v, *dv) = $f(*v);
                    }
                }
                None => {
                    for v in y.iter_mut() {
                        *v = $f(*v).0;
                    }
                }
            }
        };
    }
    match activation {
        Activation::Identity => values!(|z: f32| (z, 1.0)),
        Activation::Relu => values!(relu),
        Activation::LeakyRelu => values!(leaky_relu),
        Activation::Sigmoid => values!(sigmoid),
        Activation::Tanh => values!(tanh),
        Activation::Softplus => values!(softplus),
    }
}

/// `g ← g ⊙ d` (when `d` is given) and the column sums of the result (when `want_sums`), in one
/// sweep. `#[inline]` like [`activate`].
#[inline]
fn scale_and_sum_columns(g: &mut [f32], derivative: Option<&[f32]>, width: usize, want_sums: bool) -> Option<Vec<f32>> {
    if derivative.is_none() && !want_sums {
        return None;
    }
    let sweep = |g: &mut [f32], d: Option<&[f32]>| -> Vec<f32> {
        let mut sums = vec![0.0f32; if want_sums { width } else { 0 }];
        pulp::Arch::new().dispatch(Scale {
            g,
            derivative: d,
            sums: &mut sums,
            width,
        });
        sums
    };
    // The blocks' partial sums are added in block order, whatever thread swept which block, so
    // the bias gradient is the same bit for bit from run to run (the resume tests rely on it).
    let partials: Vec<Vec<f32>> = match (block_rows(g.len(), width), derivative) {
        (None, d) => vec![sweep(g, d)],
        (Some(rows), None) => g.par_chunks_mut(rows * width).map(|g| sweep(g, None)).collect(),
        (Some(rows), Some(d)) => g
            .par_chunks_mut(rows * width)
            .zip(d.par_chunks(rows * width))
            .map(|(g, d)| sweep(g, Some(d)))
            .collect(),
    };
    want_sums.then(|| {
        let mut parts = partials.into_iter();
        let first = parts.next().unwrap_or_default();
        parts.fold(first, |mut a, b| {
            a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
            a
        })
    })
}

#[inline(always)]
fn scale_block(g: &mut [f32], derivative: Option<&[f32]>, sums: &mut [f32], width: usize) {
    match (derivative, sums.is_empty()) {
        (Some(d), true) => g.iter_mut().zip(d).for_each(|(v, &dv)| *v *= dv),
        (Some(d), false) => {
            for (row, drow) in g.chunks_exact_mut(width).zip(d.chunks_exact(width)) {
                for ((v, &dv), s) in row.iter_mut().zip(drow).zip(sums.iter_mut()) {
                    *v *= dv;
                    *s += *v;
                }
            }
        }
        (None, _) => {
            for row in g.chunks_exact(width) {
                for (&v, s) in row.iter().zip(sums.iter_mut()) {
                    *s += v;
                }
            }
        }
    }
}

// The activations as (value, derivative) pairs, written without branches so that the loops above
// vectorise; each lets a NaN through, so a diverging model still shows a non-finite loss.

#[inline(always)]
fn relu(z: f32) -> (f32, f32) {
    (if z < 0.0 { 0.0 } else { z }, if z > 0.0 { 1.0 } else { 0.0 })
}

/// Slope 0.2 below zero, as [`Activation::LeakyRelu`]; the derivative at 0 is taken from the
/// left, as [`Activation::derivative`] does.
#[inline(always)]
fn leaky_relu(z: f32) -> (f32, f32) {
    (if z < 0.0 { 0.2 * z } else { z }, if z > 0.0 { 1.0 } else { 0.2 })
}

/// `σ(z)` from `e = exp(-|z|)`: `1/(1+e)` or `e/(1+e)`, and `σ' = σ(1-σ) = e/(1+e)²` for both
/// signs, exact in the tails.
#[inline(always)]
fn sigmoid(z: f32) -> (f32, f32) {
    let e = exp_nonpositive(-z.abs());
    let s = 1.0 / (1.0 + e);
    let es = e * s;
    (if z >= 0.0 { s } else { es }, es * s)
}

/// `tanh(z) = sign(z)·(1-e)/(1+e)` with `e = exp(-2|z|)`, `tanh' = 1 - tanh²`.
#[inline(always)]
fn tanh(z: f32) -> (f32, f32) {
    let e = exp_nonpositive(-2.0 * z.abs());
    let t = ((1.0 - e) / (1.0 + e)).copysign(z);
    (t, 1.0 - t * t)
}

/// `ln(1 + eᶻ) = max(z, 0) + ln(1 + e^{-|z|})`, with derivative `σ(z)`.
#[inline(always)]
fn softplus(z: f32) -> (f32, f32) {
    let e = exp_nonpositive(-z.abs());
    let y = (if z > 0.0 { z } else { 0.0 }) + e.ln_1p();
    (y, sigmoid(z).0)
}

/// `exp(x)` for `x ≤ 0` (and NaN), branch-free so that it vectorises: `x = r·ln 2 + f` with `r`
/// rounded to an integer by adding the float magic number `1.5·2²³` (whose last mantissa bits
/// then hold `r`, read back with integer arithmetic instead of a float-to-int conversion, which
/// would not vectorise), Cephes' degree-5 polynomial for `e^f` on `|f| ≤ ln 2 / 2`, and `2^r`
/// built in the exponent bits. Inputs below -87 give `exp(-87)` (about 1.6e-38, a normal float)
/// instead of a subnormal. Relative error within 2e-7 of `f32::exp` (tested).
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = if x < -87.0 { -87.0 } else { x };
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let r = shifted - MAGIC;
    // `r` as an integer, in [-126, 0]: the bits of `shifted` minus those of the magic number.
    let exponent = (shifted.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32) + 127;
    let f = x - r * LN2_HI - r * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * f + 1.398_199_9e-3;
    p = p * f + 8.333_452e-3;
    p = p * f + 4.166_579_6e-2;
    p = p * f + 1.666_666_5e-1;
    p = p * f + 0.5;
    let e = p * f * f + f + 1.0;
    e * f32::from_bits((exponent as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend, TestBackend};
    use burn::tensor::{Distribution, TensorData, Tolerance};
    use proptest::prelude::*;

    /// Registers Flex for this test binary, holding the seed lock: registration changes the path
    /// of every later dense layer in the process, and the tests draw random tensors, so neither
    /// may happen in the middle of a test that compares two seeded runs (those hold the lock).
    fn registered() -> std::sync::MutexGuard<'static, ()> {
        let guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        register_fast_dense::<TestBackend>();
        guard
    }

    #[test]
    fn exp_matches_std_within_2e_7() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (got, want) = (exp_nonpositive(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
        assert!(exp_nonpositive(f32::NAN).is_nan());
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e9) > 0.0);
    }

    #[test]
    fn activations_let_nan_through() {
        for f in [relu, leaky_relu, sigmoid, tanh, softplus] {
            assert!(f(f32::NAN).0.is_nan());
        }
    }

    #[test]
    fn registration_picks_the_path() {
        let _guard = registered();
        assert!(has_fast_dense::<TestBackend>() && has_fast_dense::<TestAutodiffBackend>());
        assert!(!has_fast_dense::<burn::backend::Autodiff<TestAutodiffBackend>>());
    }

    /// The fused output and the input, weight and bias gradients of `Σ (y ⊙ r)` (a random `r`, so
    /// every output's gradient differs) against burn's operations.
    fn check(n: usize, d_in: usize, d_out: usize, activation: Activation, scale: f32) {
        let _guard = registered();
        let device = Default::default();
        let dist = Distribution::Uniform(-scale as f64, scale as f64);
        let x0 = Tensor::<TestBackend, 2>::random([n, d_in], dist, &device);
        let w0 = Tensor::<TestBackend, 2>::random([d_in, d_out], dist, &device);
        let b0 = Tensor::<TestBackend, 1>::random([d_out], dist, &device);
        compare(x0, w0, b0, activation);
    }

    /// [`check`] on given tensors (views with strides included).
    fn compare(
        x0: Tensor<TestBackend, 2>,
        w0: Tensor<TestBackend, 2>,
        b0: Tensor<TestBackend, 1>,
        activation: Activation,
    ) {
        type A = TestAutodiffBackend;
        let device = x0.device();
        let ([n, d_in], [_, d_out]) = (x0.dims(), w0.dims());
        let r = Tensor::<TestBackend, 2>::random([n, d_out], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let x = Tensor::<A, 2>::from_inner(x0.clone()).require_grad();
            let w = Tensor::<A, 2>::from_inner(w0.clone()).require_grad();
            let b = Tensor::<A, 1>::from_inner(b0.clone()).require_grad();
            let y = if fused {
                dense(x.clone(), w.clone(), b.clone(), activation)
            } else {
                dense_reference(x.clone(), w.clone(), b.clone(), activation)
            };
            let grads = (y.clone() * Tensor::from_inner(r.clone())).sum().backward();
            let g = |t: Option<Tensor<TestBackend, 2>>| t.expect("gradient").into_data();
            (
                y.inner().into_data(),
                g(x.grad(&grads)),
                g(w.grad(&grads)),
                b.grad(&grads).expect("bias gradient").into_data(),
            )
        };
        let (fused, reference) = (run(true), run(false));
        let tol = Tolerance::<f32>::absolute(1e-4);
        let name = format!("{activation:?} {n}x{d_in}->{d_out}");
        for (what, a, b) in [
            ("output", &fused.0, &reference.0),
            ("input gradient", &fused.1, &reference.1),
            ("weight gradient", &fused.2, &reference.2),
            ("bias gradient", &fused.3, &reference.3),
        ] {
            let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(
                worst <= 1e-4 * scale,
                "{name}: {what} differs by {worst} (scale {scale})"
            );
        }
        // Inference (no autodiff) takes the inner backend's entry.
        let y = dense(x0.clone(), w0.clone(), b0.clone(), activation).into_data();
        y.assert_approx_eq::<f32>(&fused.0, tol);
    }

    /// Operands that are views: a transposed input and weight (read in place, by columns) and a
    /// slice of a wider matrix (neither by rows nor by columns, so copied out first).
    #[test]
    fn strided_operands_match_burn() {
        let _guard = registered();
        let device = Default::default();
        let dist = Distribution::Uniform(-1.0, 1.0);
        let x_t = Tensor::<TestBackend, 2>::random([40, 9], dist, &device);
        let w = Tensor::<TestBackend, 2>::random([40, 13], dist, &device);
        let w_t = Tensor::<TestBackend, 2>::random([13, 40], dist, &device);
        let wide = Tensor::<TestBackend, 2>::random([9, 50], dist, &device);
        let b = Tensor::<TestBackend, 1>::random([13], dist, &device);
        for activation in [Activation::Identity, Activation::Sigmoid] {
            compare(x_t.clone().transpose(), w.clone(), b.clone(), activation);
            compare(x_t.clone().transpose(), w_t.clone().transpose(), b.clone(), activation);
            compare(wide.clone().slice([0..9, 5..45]), w.clone(), b.clone(), activation);
        }
    }

    #[test]
    fn fused_matches_burn_for_every_activation() {
        for activation in Activation::ALL {
            // The reference MLP's widest layer at batch 128, one above the parallel sweeps'
            // threshold (2¹⁸ values, several blocks), and batch 1 with odd widths.
            check(128, 96, 784, activation, 1.0);
            check(520, 8, 512, activation, 1.0);
            check(1, 7, 5, activation, 3.0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn fused_matches_burn_on_random_shapes(
            n in 1usize..70,
            d_in in 1usize..40,
            d_out in 1usize..600,
            a in 0usize..6,
            scale in 0.1f32..4.0,
        ) {
            check(n, d_in, d_out, Activation::ALL[a], scale);
        }
    }

    #[test]
    fn nan_input_gives_nan_output() {
        let _guard = registered();
        let device = Default::default();
        let x = Tensor::<TestBackend, 2>::from_data(TensorData::from([[f32::NAN, 1.0]]), &device);
        let w = Tensor::<TestBackend, 2>::ones([2, 3], &device);
        let b = Tensor::<TestBackend, 1>::zeros([3], &device);
        for activation in Activation::ALL {
            let y: Vec<f32> = dense(x.clone(), w.clone(), b.clone(), activation)
                .into_data()
                .to_vec()
                .unwrap();
            assert!(y.iter().all(|v| v.is_nan()), "{activation:?}: {y:?}");
        }
    }
}
