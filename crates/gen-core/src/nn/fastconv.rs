//! Convolutions as im2col and one matrix product per pass: a backend operation of our own,
//! registered with burn's autodiff.
//!
//! On the CPU, burn's convolutions were most of the DCGAN's training step (ARCHITECTURE.md,
//! "Convolutions on the CPU"): Flex runs the forward pass as one small product per sample
//! (`[c_out, c_in·k·k] × [c_in·k·k, h·w]`, a few dozen columns), and burn's autodiff takes the
//! weight gradient through the backend's generic `*_weight_backward`, which swaps the batch and
//! channel dimensions of two maps (strided copies) and runs a convolution whose kernel is the
//! output gradient.
//!
//! Here every pass is one product over the whole batch, with the positions of all samples as
//! the columns (`[c, N·h·w]`, channel-major) and windows as im2col columns
//! (`[c·k_h·k_w, N·oh·ow]`):
//!
//! | | forward | input gradient | weight gradient |
//! |---|---|---|---|
//! | `conv2d` | `W · cols(x)` | `col2im(Wᵀ · G)` | `G · cols(x)ᵀ` |
//! | `conv_transpose2d` | `col2im(Wᵀ · X)` | `W · cols(G)` | `X · cols(G)ᵀ` |
//!
//! with `W` the weight as the matrix it is in memory (`[c_out, c_in·k_h·k_w]` for `conv2d`,
//! `[c_in, c_out·k_h·k_w]` for `conv_transpose2d`; with channels-last windows each row's
//! columns are permuted, a copy the size of the weight), `X` the input and `G` the output
//! gradient channel-major. For maps of few channels im2col reads and col2im writes the tensors'
//! own `[N, c, h, w]` layout, a line of the map at a time; maps of 16 channels or more are
//! windowed channels-last, each window element a run of `c` contiguous values, with the weight's
//! columns in the same order (`Windows`). Both run in parallel, and the products are faer's
//! (`host::matmul`, split over rayon's threads when large). The inputs are read
//! in place (borrowed from a contiguous Flex tensor), and the intermediates (layout copies,
//! windows, products folded back) are `host::Scratch` buffers, reused from step to step.
//!
//! The bias is added as the output is laid out, and an activation can be fused
//! ([`conv2d_activated`], [`conv_transpose2d_activated`]): one pass over the output that keeps
//! its derivative when a graph is recorded, and backward one pass that multiplies the output
//! gradient by it, instead of burn's activation node.
//!
//! # Using it
//! [`conv2d`] and [`conv_transpose2d`] take the arguments of burn's functions of the same names
//! and compute the same values on every backend. The host path is used for the backends
//! registered with [`register_fast_conv`] (`gen-cli` registers Flex and ndarray, with and without
//! autodiff): a type-erased table keyed by the backend's `TypeId`, so the models stay generic
//! over any [`Backend`] without an extra trait bound. Registered autodiff backends get a graph
//! node of our own; where the tensors are not `f32` in host memory, or for grouped
//! convolutions, each pass falls back to the backend's own operation.

use std::any::TypeId;

use faer::MatRef;
use rayon::prelude::*;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor};
use burn::tensor::{Tensor, TensorMetadata};

use super::Activation;
use super::fastdense::{activate_flat, scaled};
use super::host::{
    Erased, Registry, Scratch, float, host_tensor, matmul, matmul_scratch, on_host, tensor, unerase, values,
    with_values,
};
use super::per_sample_channels;

/// The fast operations of one backend, behind type erasure: input, weight, optional bias, and
/// the activation applied to the output.
#[derive(Clone, Copy)]
struct Entry {
    conv2d: fn(Erased, Erased, Option<Erased>, ConvOptions<2>, Activation) -> Erased,
    conv_transpose2d: fn(Erased, Erased, Option<Erased>, ConvTransposeOptions<2>, Activation) -> Erased,
}

static REGISTRY: Registry<Entry> = Registry::new();

/// Makes [`conv2d`] and [`conv_transpose2d`] on `I` and `Autodiff<I>` take the host path.
/// Idempotent; cheap enough to call before every job.
pub fn register_fast_conv<I: Backend>() {
    REGISTRY.insert(
        TypeId::of::<Autodiff<I>>(),
        Entry {
            conv2d: erased_autodiff::<I, Conv>,
            conv_transpose2d: erased_autodiff::<I, ConvTranspose>,
        },
    );
    REGISTRY.insert(
        TypeId::of::<I>(),
        Entry {
            conv2d: erased_inner::<I, Conv>,
            conv_transpose2d: erased_inner::<I, ConvTranspose>,
        },
    );
}

/// Whether `B` is registered with [`register_fast_conv`] (as itself or as an inner backend).
pub fn has_fast_conv<B: Backend>() -> bool {
    REGISTRY.get::<B>().is_some()
}

/// burn's `conv2d`, through this module's host path on registered backends.
///
/// # Shapes
/// - `x`: `[batch, c_in, height, width]`, `weight`: `[c_out, c_in / groups, k_h, k_w]`,
///   `bias`: `[c_out]`; output `[batch, c_out, height_out, width_out]`
pub fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    conv2d_activated(x, weight, bias, options, Activation::Identity)
}

/// `activation(conv2d(x, weight, bias))`, the activation (and, when a graph is recorded, its
/// derivative) applied in one pass over the output on registered backends, and its derivative
/// multiplied into the output gradient in one pass backward.
///
/// # Shapes
/// As [`conv2d`].
pub fn conv2d_activated<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
    activation: Activation,
) -> Tensor<B, 4> {
    match REGISTRY.get::<B>().map(|e| e.conv2d) {
        Some(f) => unerase(f(Box::new(x), Box::new(weight), bias.map(erase), options, activation)),
        None => activation.forward(add_bias(burn::tensor::module::conv2d(x, weight, None, options), bias)),
    }
}

/// burn's `conv_transpose2d`, through this module's host path on registered backends.
///
/// # Shapes
/// - `x`: `[batch, c_in, height, width]`, `weight`: `[c_in, c_out / groups, k_h, k_w]`,
///   `bias`: `[c_out]`; output `[batch, c_out, height_out, width_out]`
pub fn conv_transpose2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvTransposeOptions<2>,
) -> Tensor<B, 4> {
    conv_transpose2d_activated(x, weight, bias, options, Activation::Identity)
}

/// `activation(conv_transpose2d(x, weight, bias))`, fused as in [`conv2d_activated`].
///
/// # Shapes
/// As [`conv_transpose2d`].
pub fn conv_transpose2d_activated<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvTransposeOptions<2>,
    activation: Activation,
) -> Tensor<B, 4> {
    match REGISTRY.get::<B>().map(|e| e.conv_transpose2d) {
        Some(f) => unerase(f(Box::new(x), Box::new(weight), bias.map(erase), options, activation)),
        None => activation.forward(add_bias(
            burn::tensor::module::conv_transpose2d(x, weight, None, options),
            bias,
        )),
    }
}

fn erase<T: 'static>(t: T) -> Erased {
    Box::new(t)
}

/// The bias as `[N, C, 1, 1]` per-sample channels on unregistered backends: burn's bias
/// gradient would swap dimensions.
fn add_bias<B: Backend>(out: Tensor<B, 4>, bias: Option<Tensor<B, 1>>) -> Tensor<B, 4> {
    match bias {
        Some(b) => {
            let n = out.dims()[0];
            out + per_sample_channels(b, n)
        }
        None => out,
    }
}

/// `conv.forward(x)` through [`conv2d`] (burn's own forward for `Same` or asymmetric padding).
pub fn conv2d_module<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    conv2d_module_activated(conv, x, Activation::Identity)
}

/// `activation(conv.forward(x))` through [`conv2d_activated`].
pub fn conv2d_module_activated<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>, activation: Activation) -> Tensor<B, 4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        _ => return activation.forward(conv.forward(x)),
    };
    let options = ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups);
    conv2d_activated(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
        activation,
    )
}

/// `deconv.forward(x)` through [`conv_transpose2d`].
pub fn conv_transpose2d_module<B: Backend>(deconv: &ConvTranspose2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    conv_transpose2d_module_activated(deconv, x, Activation::Identity)
}

/// `activation(deconv.forward(x))` through [`conv_transpose2d_activated`].
pub fn conv_transpose2d_module_activated<B: Backend>(
    deconv: &ConvTranspose2d<B>,
    x: Tensor<B, 4>,
    activation: Activation,
) -> Tensor<B, 4> {
    let options = ConvTransposeOptions::new(
        deconv.stride,
        deconv.padding,
        deconv.padding_out,
        deconv.dilation,
        deconv.groups,
    );
    conv_transpose2d_activated(
        x,
        deconv.weight.val(),
        deconv.bias.as_ref().map(|b| b.val()),
        options,
        activation,
    )
}

/// One of the two convolutions: its options and its passes on the inner backend.
trait ConvPass: Default + Send + std::fmt::Debug + 'static {
    type Options: Clone + Send + std::fmt::Debug + 'static;

    /// The output, with the bias added in the same pass where there is one.
    fn forward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        bias: Option<FloatTensor<I>>,
        options: Self::Options,
    ) -> FloatTensor<I>;

    /// The input and weight gradients, those asked for.
    fn backward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        grad: FloatTensor<I>,
        options: Self::Options,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FloatTensor<I>>, Option<FloatTensor<I>>);
}

/// The autodiff node of a [`ConvPass`]: its parents are the input, the weight and, when `N` is
/// 3, the bias. Its state keeps the input and weight (checkpointed), the options and the
/// activation's derivative at the output (`None` for the identity).
#[derive(Debug)]
struct ConvBackward<K>(K);

impl<I: Backend, K: ConvPass, const N: usize> Backward<I, N> for ConvBackward<K> {
    type State = (NodeId, NodeId, K::Options, Option<FloatTensor<I>>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let mut parents = ops.parents.into_iter();
        let (node_x, node_weight) = (parents.next().flatten(), parents.next().flatten());
        let node_bias = parents.next().flatten();
        let (x_state, weight_state, options, derivative) = ops.state;
        let grad = grads.consume::<I>(&ops.node);
        let grad = match derivative {
            Some(d) => scaled::<I, 4>(grad, &d),
            None => grad,
        };
        if let Some(node) = node_bias {
            grads.register::<I>(node.id, bias_grad::<I>(&grad));
        }
        let x = checkpointer.retrieve_node_output::<FloatTensor<I>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<I>>(weight_state);
        let (dx, dw) = K::backward::<I>(x, weight, grad, options, node_x.is_some(), node_weight.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<I>(node.id, dx);
        }
        if let (Some(node), Some(dw)) = (node_weight, dw) {
            grads.register::<I>(node.id, dw);
        }
    }
}

/// `K`'s forward pass and the activation on `Autodiff<I>` tensors, recorded as a
/// [`ConvBackward`] node with two parents, or three with a bias.
fn erased_autodiff<I: Backend, K: ConvPass>(
    x: Erased,
    weight: Erased,
    bias: Option<Erased>,
    options: K::Options,
    activation: Activation,
) -> Erased {
    let x = float(unerase::<Tensor<Autodiff<I>, 4>>(x));
    let weight = float(unerase::<Tensor<Autodiff<I>, 4>>(weight));
    let out = match bias.map(|b| float(unerase::<Tensor<Autodiff<I>, 1>>(b))) {
        None => match ConvBackward(K::default())
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let z = K::forward::<I>(x.primitive, weight.primitive, None, options.clone());
                let (y, derivative) = activated::<I>(z, activation, true);
                prep.finish((x_state, weight_state, options, derivative), y)
            }
            OpsKind::UnTracked(prep) => {
                let z = K::forward::<I>(x.primitive, weight.primitive, None, options);
                prep.finish(activated::<I>(z, activation, false).0)
            }
        },
        Some(bias) => match ConvBackward(K::default())
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let z = K::forward::<I>(x.primitive, weight.primitive, Some(bias.primitive), options.clone());
                let (y, derivative) = activated::<I>(z, activation, true);
                prep.finish((x_state, weight_state, options, derivative), y)
            }
            OpsKind::UnTracked(prep) => {
                let z = K::forward::<I>(x.primitive, weight.primitive, Some(bias.primitive), options);
                prep.finish(activated::<I>(z, activation, false).0)
            }
        },
    };
    Box::new(tensor::<Autodiff<I>, 4>(out))
}

/// `K`'s forward pass and the activation on `I` tensors, without autodiff.
fn erased_inner<I: Backend, K: ConvPass>(
    x: Erased,
    weight: Erased,
    bias: Option<Erased>,
    options: K::Options,
    activation: Activation,
) -> Erased {
    let (x, weight) = (unerase::<Tensor<I, 4>>(x), unerase::<Tensor<I, 4>>(weight));
    let bias = bias.map(|b| float(unerase::<Tensor<I, 1>>(b)));
    let z = K::forward::<I>(float(x), float(weight), bias, options);
    Box::new(tensor::<I, 4>(activated::<I>(z, activation, false).0))
}

/// `activation(z)` and, when `keep_derivative` and the activation is not the identity, its
/// derivative at each value: one pass over `z` in place on the host, burn's operations elsewhere.
fn activated<I: Backend>(
    z: FloatTensor<I>,
    activation: Activation,
    keep_derivative: bool,
) -> (FloatTensor<I>, Option<FloatTensor<I>>) {
    if activation == Activation::Identity {
        return (z, None);
    }
    if !on_host::<I>(&[&z]) {
        let z = tensor::<I, 4>(z);
        let y = activation.forward(z.clone());
        let derivative = keep_derivative.then(|| float(activation.derivative(z, y.clone())));
        return (float(y), derivative);
    }
    let (dims, device) = (dims4::<I>(&z), I::float_device(&z));
    let mut y = values(tensor::<I, 4>(z));
    let mut derivative = keep_derivative.then(|| vec![0.0f32; y.len()]);
    activate_flat(&mut y, derivative.as_deref_mut(), activation);
    (
        float(y.into_tensor::<I, 4>(&device)),
        derivative.map(|d| float(host_tensor::<I, 4>(d, dims, &device))),
    )
}

/// Whether the host path applies: `f32` tensors (and bias, where there is one) in host memory,
/// no groups.
fn host_path<I: Backend>(tensors: [&FloatTensor<I>; 2], bias: Option<&FloatTensor<I>>, groups: usize) -> bool {
    groups == 1 && on_host::<I>(&tensors) && bias.is_none_or(|b| on_host::<I>(&[b]))
}

/// The bias's values, copied out (a few dozen).
fn bias_values<I: Backend>(bias: Option<&FloatTensor<I>>) -> Option<Vec<f32>> {
    bias.map(|b| with_values::<I, 1, _>(b, <[f32]>::to_vec))
}

/// The bias gradient from the output gradient `[N, c, h, w]`: each channel's sum.
fn bias_grad<I: Backend>(grad: &FloatTensor<I>) -> FloatTensor<I> {
    let [n, c, h, w] = dims4::<I>(grad);
    if !on_host::<I>(&[grad]) {
        let g = tensor::<I, 4>(grad.clone());
        return float(g.sum_dim(0).sum_dim(2).sum_dim(3).reshape([c]));
    }
    let sums = with_values::<I, 4, _>(grad, |g| {
        (0..c)
            .map(|ci| (0..n).map(|s| sum(&g[(s * c + ci) * h * w..][..h * w])).sum())
            .collect()
    });
    float(host_tensor::<I, 1>(sums, [c], &I::float_device(grad)))
}

/// The sum of `values` in sixteen lanes (so it vectorises), then across them.
#[inline]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// A convolution's window geometry.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

impl Geometry {
    fn conv(kernel: [usize; 2], o: &ConvOptions<2>) -> Self {
        Self {
            kernel,
            stride: o.stride,
            padding: o.padding,
            dilation: o.dilation,
        }
    }

    fn transposed(kernel: [usize; 2], o: &ConvTransposeOptions<2>) -> Self {
        Self {
            kernel,
            stride: o.stride,
            padding: o.padding,
            dilation: o.dilation,
        }
    }

    /// The side of a transposed convolution's output along `side`, from its input side `len`.
    #[inline]
    fn transposed_side(&self, side: usize, len: usize, padding_out: usize) -> usize {
        ((len - 1) * self.stride[side] + self.dilation[side] * (self.kernel[side] - 1) + padding_out + 1)
            .saturating_sub(2 * self.padding[side])
    }

    /// The number of window positions along `side` of a map whose side is `len`.
    #[inline]
    fn windows(&self, side: usize, len: usize) -> usize {
        (len + 2 * self.padding[side]).saturating_sub(self.dilation[side] * (self.kernel[side] - 1) + 1)
            / self.stride[side]
            + 1
    }

    /// The window positions (of `out` along `side`) whose element `k` falls inside a map side of
    /// `len`: a range, since the source offset grows with the position.
    #[inline]
    fn inside(&self, side: usize, k: usize, len: usize, out: usize) -> std::ops::Range<usize> {
        let (offset, padding, stride) = (k * self.dilation[side], self.padding[side], self.stride[side]);
        let hi = (len + padding).saturating_sub(offset).div_ceil(stride).min(out);
        let lo = padding.saturating_sub(offset).div_ceil(stride).min(hi);
        lo..hi
    }

    /// The source offset of window element `k` at position `o` along `side`, for `o` in
    /// [`inside`](Self::inside)'s range.
    #[inline]
    fn offset(&self, side: usize, o: usize, k: usize) -> usize {
        o * self.stride[side] + k * self.dilation[side] - self.padding[side]
    }
}

/// `[N, c, l]` to `[c, N·l]`: each channel's planes side by side, the layout of a product's
/// operand whose columns are (sample, position). The channels run in parallel.
#[inline]
fn channel_major(t: &[f32], n: usize, c: usize, l: usize) -> Scratch {
    let mut out = Scratch::take(n * c * l);
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(n * l).enumerate().for_each(|(ci, row)| {
        for (s, dst) in row.chunks_exact_mut(l).enumerate() {
            dst.copy_from_slice(&t[(s * c + ci) * l..][..l]);
        }
    });
    out
}

/// `[c, N·l]` back to `[N, c, l]`, the inverse of [`channel_major`], plus `bias[channel]` where
/// there is one. The samples run in parallel.
#[inline]
fn sample_major(rows: &[f32], n: usize, c: usize, l: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![0.0f32; n * c * l];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(c * l).enumerate().for_each(|(s, sample)| {
        for (ci, dst) in sample.chunks_exact_mut(l).enumerate() {
            let src = &rows[(ci * n + s) * l..][..l];
            match bias {
                Some(bias) => {
                    for (d, v) in dst.iter_mut().zip(src) {
                        *d = v + bias[ci];
                    }
                }
                None => dst.copy_from_slice(src),
            }
        }
    });
    out
}

/// im2col with the windows as columns: `[c·k_h·k_w, N·oh·ow]` (in a [`Scratch`] buffer), where row `(channel, a, b)` holds,
/// for every sample and window position, the map value under the window's element `(a, b)`, zero
/// outside the map. The map is `[N, c, h, w]`, as the tensors hold it. Each row is
/// `N·oh` runs of `ow` values gathered from one line of the map; the rows run in parallel.
#[inline]
fn im2col(map: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], geo: &Geometry) -> Scratch {
    let [kh, kw] = geo.kernel;
    let positions = oh * ow;
    let mut cols = Scratch::take(c * kh * kw * n * positions);
    if cols.is_empty() {
        return cols;
    }
    cols.par_chunks_mut(n * positions).enumerate().for_each(|(r, row)| {
        let (ci, a, b) = (r / (kh * kw), r / kw % kh, r % kw);
        let (ys, xs) = (geo.inside(0, a, h, oh), geo.inside(1, b, w, ow));
        // The positions whose window element lies outside the map are zeros; the others are
        // all written below.
        if ys.len() < oh || xs.len() < ow {
            row.fill(0.0);
        }
        if xs.is_empty() {
            return;
        }
        let (x0, step) = (geo.offset(1, xs.start, b), geo.stride[1]);
        for (s, dst) in row.chunks_exact_mut(positions).enumerate() {
            let plane = &map[(s * c + ci) * h * w..][..h * w];
            for y in ys.clone() {
                let line = &plane[geo.offset(0, y, a) * w..][..w];
                let dst = &mut dst[y * ow..][xs.clone()];
                if step == 1 {
                    dst.copy_from_slice(&line[x0..][..dst.len()]);
                } else {
                    for (d, &v) in dst.iter_mut().zip(line[x0..].iter().step_by(step)) {
                        *d = v;
                    }
                }
            }
        }
    });
    cols
}

/// col2im, the adjoint of [`im2col`]: each column's window added back into the map, returned as
/// `[N, c, h, w]`, onto `bias[channel]` where there is one. The `N·c` planes run in parallel,
/// each gathering from its `k_h·k_w` rows.
#[inline]
fn col2im(
    cols: &[f32],
    [n, c, h, w]: [usize; 4],
    [oh, ow]: [usize; 2],
    geo: &Geometry,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let [kh, kw] = geo.kernel;
    let (positions, columns) = (oh * ow, n * oh * ow);
    let mut map = vec![0.0f32; n * c * h * w];
    if map.is_empty() {
        return map;
    }
    map.par_chunks_mut(h * w).enumerate().for_each(|(index, plane)| {
        let (s, ci) = (index / c, index % c);
        if let Some(bias) = bias {
            plane.fill(bias[ci]);
        }
        for a in 0..kh {
            let ys = geo.inside(0, a, h, oh);
            for b in 0..kw {
                let xs = geo.inside(1, b, w, ow);
                if xs.is_empty() {
                    continue;
                }
                let (x0, step) = (geo.offset(1, xs.start, b), geo.stride[1]);
                let row = &cols[((ci * kh + a) * kw + b) * columns + s * positions..][..positions];
                for y in ys.clone() {
                    let line = &mut plane[geo.offset(0, y, a) * w..][..w];
                    let src = &row[y * ow..][xs.clone()];
                    if step == 1 {
                        for (m, v) in line[x0..][..src.len()].iter_mut().zip(src) {
                            *m += v;
                        }
                    } else {
                        for (m, v) in line[x0..].iter_mut().step_by(step).zip(src) {
                            *m += v;
                        }
                    }
                }
            }
        }
    });
    map
}

/// Maps with at least this many channels are windowed channels-last ([`Windows`]). Stand-alone,
/// at the DCGAN's shapes (batch 64, 4x4 windows, stride 2; 2026-12-04, this machine): im2col of
/// a 64-channel 14x14 map took 3.0 ms a line at a time against 0.7 ms for the NHWC copy and
/// 0.6 ms for the channels-last gather, col2im 5.6 ms against 0.7 ms and 0.7 ms; at 16 channels
/// (28x28) channels-last still won (im2col 2.6 against 1.5 ms, col2im 4.0 against 2.6), at 8
/// they were level, and at 1 channel the lines of the map won (0.15 against 0.9 ms).
const CHANNELS_LAST_MIN: usize = 16;

/// Whether a map of `c` channels is windowed channels-last.
#[inline]
fn channels_last(c: usize) -> bool {
    c >= CHANNELS_LAST_MIN
}

/// The windows of a map (im2col) as the `K x P` operand of the products, `K` the elements of a
/// window and `P` the windows of all samples, held in one of two layouts:
/// - lines of planes: `[K, P]` by rows, `K` ordered (channel, a, b), gathered from the map's
///   `[N, c, h, w]` lines ([`im2col`]); a run is one window row of a line, `ow` values, strided
///   by the convolution's stride;
/// - channels last: `[P, K]` by rows, `K` ordered (a, b, channel), each window element a run of
///   `c` contiguous values of the map's `[N, h, w, c]` copy ([`im2col_channels_last`]).
///
/// The weight matrix multiplied with it must order its columns the same way ([`weight_in`]).
struct Windows {
    values: Scratch,
    k: usize,
    p: usize,
    channels_last: bool,
}

impl Windows {
    /// The windows of `map` (`[N, c, h, w]`) at `out` positions, in the layout [`channels_last`]
    /// picks for its channel count.
    #[inline]
    fn of(map: &[f32], dims: [usize; 4], out: [usize; 2], geo: &Geometry) -> Self {
        Self::in_layout(map, dims, out, geo, channels_last(dims[1]))
    }

    #[inline]
    fn in_layout(map: &[f32], dims @ [n, c, h, w]: [usize; 4], out: [usize; 2], geo: &Geometry, last: bool) -> Self {
        let values = if last {
            im2col_channels_last(&to_channels_last(map, n, c, h * w), dims, out, geo)
        } else {
            im2col(map, dims, out, geo)
        };
        Self {
            values,
            k: c * geo.kernel[0] * geo.kernel[1],
            p: n * out[0] * out[1],
            channels_last: last,
        }
    }

    /// The `K x P` matrix (a transposed view in the channels-last layout).
    fn matrix(&self) -> MatRef<'_, f32> {
        if self.channels_last {
            mat(&self.values, self.p, self.k).transpose()
        } else {
            mat(&self.values, self.k, self.p)
        }
    }
}

/// The weight `[a, b, k_h, k_w]` as the `[a, b·k_h·k_w]` matrix whose columns are in the order of
/// the windows' elements: as it is in memory for lines of planes, each row's `(b, kk)` permuted
/// to `(kk, b)` for channels last.
#[inline]
fn weight_in(w: &[f32], [a, b, kk]: [usize; 3], last: bool) -> WeightMatrix<'_> {
    if last {
        let mut swapped = Scratch::take(w.len());
        swap_inner(w, a, b, kk, &mut swapped);
        WeightMatrix::Swapped(swapped)
    } else {
        WeightMatrix::AsIs(w)
    }
}

/// A weight's values as a matrix for [`weight_in`]: in place, or permuted into a scratch buffer.
enum WeightMatrix<'a> {
    AsIs(&'a [f32]),
    Swapped(Scratch),
}

impl std::ops::Deref for WeightMatrix<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Self::AsIs(w) => w,
            Self::Swapped(w) => w,
        }
    }
}

/// The weight gradient `y · cols.matrix()ᵀ` (`y` the `[a, P]` other side) in the weight's own
/// order `[a, b·k_h·k_w]`: the product itself for lines of planes, and for channels-last windows
/// the product in a scratch buffer with its columns permuted back ([`weight_back`]).
#[inline]
fn weight_gradient(y: MatRef<'_, f32>, cols: &Windows, [a, b, kk]: [usize; 3]) -> Vec<f32> {
    if cols.channels_last {
        weight_back(&matmul_scratch(y, cols.matrix().transpose()), [a, b, kk])
    } else {
        matmul(y, cols.matrix().transpose())
    }
}

/// A channels-last weight gradient `[a, k_h·k_w·b]` (columns in the windows' order) back in the
/// weight's own order `[a, b·k_h·k_w]`: the inverse of [`weight_in`].
#[inline]
fn weight_back(dw: &[f32], [a, b, kk]: [usize; 3]) -> Vec<f32> {
    let mut out = vec![0.0f32; dw.len()];
    swap_inner(dw, a, kk, b, &mut out);
    out
}

/// `out ← v` from `[a, b, c]` to `[a, c, b]` (the weight to and from the channels-last window
/// order).
#[inline]
fn swap_inner(v: &[f32], a: usize, b: usize, c: usize, out: &mut [f32]) {
    assert_eq!((v.len(), out.len()), (a * b * c, a * b * c), "swap_inner: lengths");
    for (src, dst) in v.chunks_exact(b * c).zip(out.chunks_exact_mut(b * c)) {
        transpose(src, b, c, dst, None);
    }
}

/// `dst [cols, rows] ← srcᵀ` for `src [rows, cols]`, plus `bias[j]` on row `j` of `dst` where
/// there is one: the layout changes to and from channels last.
///
/// On x86-64 with AVX2 the whole 8x8 tiles are transposed in registers (eight loads, 24
/// shuffles and eight stores a tile, [`Tiles8`]) and the rest element by element; elsewhere the
/// scalar loop goes over 8x8 tiles, so both sides are read and written a cache line at a time.
/// Stand-alone at the DCGAN's shapes (64 samples of `[128, 49]` and `[64, 196]`, both ways) the
/// registers took a third of the scalar tiles' time (0.09 against 0.26 ms, 0.18 against 0.52).
#[inline]
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], bias: Option<&[f32]>) {
    #[cfg(target_arch = "x86_64")]
    let simd = pulp::x86::V3::try_new();
    #[cfg(not(target_arch = "x86_64"))]
    let simd = None;
    transpose_with(simd, src, rows, cols, dst, bias);
}

#[cfg(not(target_arch = "x86_64"))]
enum NoSimd {}

/// [`transpose`] with the register tiles where `simd` is given.
#[inline]
fn transpose_with(
    #[cfg(target_arch = "x86_64")] simd: Option<pulp::x86::V3>,
    #[cfg(not(target_arch = "x86_64"))] simd: Option<NoSimd>,
    src: &[f32],
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    bias: Option<&[f32]>,
) {
    assert!(
        src.len() >= rows * cols && dst.len() >= rows * cols && bias.is_none_or(|b| b.len() >= cols),
        "transpose: {rows}x{cols} from {} values into {}",
        src.len(),
        dst.len()
    );
    const TILE: usize = 8;
    let Some(simd) = simd else {
        for r0 in (0..rows).step_by(TILE) {
            for c0 in (0..cols).step_by(TILE) {
                for j in c0..(c0 + TILE).min(cols) {
                    let add = bias.map_or(0.0, |b| b[j]);
                    let line = &mut dst[j * rows..][..rows];
                    for i in r0..(r0 + TILE).min(rows) {
                        line[i] = src[i * cols + j] + add;
                    }
                }
            }
        }
        return;
    };
    #[cfg(target_arch = "x86_64")]
    {
        let (whole_rows, whole_cols) = (rows / TILE * TILE, cols / TILE * TILE);
        simd.vectorize(Tiles8 {
            simd,
            src,
            rows,
            cols,
            dst: &mut *dst,
            bias,
        });
        // What the tiles left: the last rows of the tiled columns, and the last columns.
        for j in 0..cols {
            let add = bias.map_or(0.0, |b| b[j]);
            let line = &mut dst[j * rows..][..rows];
            let from = if j < whole_cols { whole_rows } else { 0 };
            for (i, d) in line.iter_mut().enumerate().skip(from) {
                *d = src[i * cols + j] + add;
            }
        }
    }
}

/// The whole 8x8 tiles of [`transpose`], in AVX registers: the classic unpack, shuffle and
/// lane-permute sequence, through pulp's safe wrappers of the intrinsics.
#[cfg(target_arch = "x86_64")]
struct Tiles8<'a> {
    simd: pulp::x86::V3,
    src: &'a [f32],
    rows: usize,
    cols: usize,
    dst: &'a mut [f32],
    bias: Option<&'a [f32]>,
}

#[cfg(target_arch = "x86_64")]
impl pulp::NullaryFnOnce for Tiles8<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        use core::arch::x86_64::__m256;
        use pulp::bytemuck::cast;
        let Self {
            simd,
            src,
            rows,
            cols,
            dst,
            bias,
        } = self;
        let avx = simd.avx;
        for c0 in (0..cols / 8 * 8).step_by(8) {
            let add: [f32; 8] = bias.map_or([0.0; 8], |b| b[c0..c0 + 8].try_into().expect("eight values"));
            for r0 in (0..rows / 8 * 8).step_by(8) {
                let v: [__m256; 8] = std::array::from_fn(|i| {
                    let line: [f32; 8] = src[(r0 + i) * cols + c0..][..8].try_into().expect("eight values");
                    cast(line)
                });
                // Pairs of rows interleaved, then quadruples, then the two 128-bit halves.
                let t = [
                    avx._mm256_unpacklo_ps(v[0], v[1]),
                    avx._mm256_unpackhi_ps(v[0], v[1]),
                    avx._mm256_unpacklo_ps(v[2], v[3]),
                    avx._mm256_unpackhi_ps(v[2], v[3]),
                    avx._mm256_unpacklo_ps(v[4], v[5]),
                    avx._mm256_unpackhi_ps(v[4], v[5]),
                    avx._mm256_unpacklo_ps(v[6], v[7]),
                    avx._mm256_unpackhi_ps(v[6], v[7]),
                ];
                let s = [
                    avx._mm256_shuffle_ps::<0x44>(t[0], t[2]),
                    avx._mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                    avx._mm256_shuffle_ps::<0x44>(t[1], t[3]),
                    avx._mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                    avx._mm256_shuffle_ps::<0x44>(t[4], t[6]),
                    avx._mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                    avx._mm256_shuffle_ps::<0x44>(t[5], t[7]),
                    avx._mm256_shuffle_ps::<0xEE>(t[5], t[7]),
                ];
                let out = [
                    avx._mm256_permute2f128_ps::<0x20>(s[0], s[4]),
                    avx._mm256_permute2f128_ps::<0x20>(s[1], s[5]),
                    avx._mm256_permute2f128_ps::<0x20>(s[2], s[6]),
                    avx._mm256_permute2f128_ps::<0x20>(s[3], s[7]),
                    avx._mm256_permute2f128_ps::<0x31>(s[0], s[4]),
                    avx._mm256_permute2f128_ps::<0x31>(s[1], s[5]),
                    avx._mm256_permute2f128_ps::<0x31>(s[2], s[6]),
                    avx._mm256_permute2f128_ps::<0x31>(s[3], s[7]),
                ];
                for (j, column) in out.into_iter().enumerate() {
                    let mut line: [f32; 8] = cast(column);
                    for x in &mut line {
                        *x += add[j];
                    }
                    dst[(c0 + j) * rows + r0..][..8].copy_from_slice(&line);
                }
            }
        }
    }
}

/// `[N, c, l]` to `[N, l, c]` (channels last), the samples in parallel.
#[inline]
fn to_channels_last(t: &[f32], n: usize, c: usize, l: usize) -> Scratch {
    let mut out = Scratch::take(n * c * l);
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(c * l)
        .zip(t.par_chunks(c * l))
        .for_each(|(dst, src)| transpose(src, c, l, dst, None));
    out
}

/// `[N, l, c]` back to `[N, c, l]`, the inverse of [`to_channels_last`], plus `bias[channel]`
/// where there is one.
#[inline]
fn from_channels_last(t: &[f32], n: usize, c: usize, l: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let mut out = vec![0.0f32; n * c * l];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(c * l)
        .zip(t.par_chunks(c * l))
        .for_each(|(dst, src)| transpose(src, l, c, dst, bias));
    out
}

/// The source index of window element `k` at position `o` along `side`, if it is inside a map
/// side of `len`.
#[inline]
fn source(geo: &Geometry, side: usize, o: usize, k: usize, len: usize) -> Option<usize> {
    (o * geo.stride[side] + k * geo.dilation[side])
        .checked_sub(geo.padding[side])
        .filter(|&i| i < len)
}

/// im2col of a channels-last map (`[N, h, w, c]`, with `dims` given as `[N, c, h, w]`): the
/// windows as rows, `[N·oh·ow, k_h·k_w·c]`, each row the window's elements in (a, b, channel)
/// order, zero outside the map. The samples run in parallel.
#[inline]
fn im2col_channels_last(map: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], geo: &Geometry) -> Scratch {
    let [kh, kw] = geo.kernel;
    let k = kh * kw * c;
    let mut cols = Scratch::take(n * oh * ow * k);
    if cols.is_empty() {
        return cols;
    }
    cols.par_chunks_mut(oh * ow * k)
        .zip(map.par_chunks(h * w * c))
        .for_each(|(windows, sample)| {
            for (position, row) in windows.chunks_exact_mut(k).enumerate() {
                let (oy, ox) = (position / ow, position % ow);
                for a in 0..kh {
                    let y = source(geo, 0, oy, a, h);
                    for b in 0..kw {
                        let dst = &mut row[(a * kw + b) * c..][..c];
                        match (y, source(geo, 1, ox, b, w)) {
                            (Some(y), Some(x)) => dst.copy_from_slice(&sample[(y * w + x) * c..][..c]),
                            _ => dst.fill(0.0),
                        }
                    }
                }
            }
        });
    cols
}

/// col2im onto a channels-last map, the adjoint of [`im2col_channels_last`]: each window row of
/// `cols` (`[N·oh·ow, k_h·k_w·c]`) added back into the map, returned as `[N, h, w, c]`. The
/// samples run in parallel.
#[inline]
fn col2im_channels_last(cols: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], geo: &Geometry) -> Scratch {
    let [kh, kw] = geo.kernel;
    let k = kh * kw * c;
    let mut map = Scratch::take(n * h * w * c);
    if map.is_empty() {
        return map;
    }
    if k == 0 {
        map.fill(0.0);
        return map;
    }
    map.par_chunks_mut(h * w * c)
        .zip(cols.par_chunks(oh * ow * k))
        .for_each(|(sample, windows)| {
            sample.fill(0.0);
            for (position, row) in windows.chunks_exact(k).enumerate() {
                let (oy, ox) = (position / ow, position % ow);
                for a in 0..kh {
                    let Some(y) = source(geo, 0, oy, a, h) else { continue };
                    for b in 0..kw {
                        let Some(x) = source(geo, 1, ox, b, w) else { continue };
                        let dst = &mut sample[(y * w + x) * c..][..c];
                        for (m, v) in dst.iter_mut().zip(&row[(a * kw + b) * c..][..c]) {
                            *m += v;
                        }
                    }
                }
            }
        });
    map
}

/// `col2im(Mᵀ · Y)` onto the bias, as `[N, c, h, w]`: `M` the weight as the `[c_y, c·k_h·k_w]`
/// matrix it is in memory, `Y` the `[c_y, P]` matrix of the other side's channels at the
/// `windows` positions (an output gradient for `conv2d`, the input for `conv_transpose2d`). The
/// product is laid out for the map's layout: `[K, P]` (`Mᵀ · Y`) for lines of planes, `[P, K]`
/// (`Yᵀ · M`, the weight's columns in channels-last order) for channels last.
#[inline]
fn fold(
    m: &[f32],
    y: MatRef<'_, f32>,
    dims @ [n, c, h, w]: [usize; 4],
    windows: [usize; 2],
    geo: &Geometry,
    bias: Option<&[f32]>,
    last: bool,
) -> Vec<f32> {
    let (cy, kk) = (y.nrows(), geo.kernel[0] * geo.kernel[1]);
    if last {
        let wm = weight_in(m, [cy, c, kk], true);
        let cols = matmul_scratch(y.transpose(), mat(&wm, cy, c * kk));
        from_channels_last(&col2im_channels_last(&cols, dims, windows, geo), n, c, h * w, bias)
    } else {
        let cols = matmul_scratch(mat(m, cy, c * kk).transpose(), y);
        col2im(&cols, dims, windows, geo, bias)
    }
}

/// `W · cols(map)` laid out as the map `[N, a, positions]`, plus `bias[channel]` where there is
/// one; `W` is `[a, K]` with its columns in the windows' order ([`weight_in`]). With channels-last
/// windows the product is taken as `cols · Wᵀ` (`[P, a]`, then an NHWC-to-NCHW pass): at the
/// DCGAN's 64-channel layer faer ran `[P, K] · [K, a]` into rows of `a` at 330-360 GFLOP/s
/// against 230-255 for `[a, K] · [K, P]` into rows of `P` (stand-alone, 2026-12-06, both cores).
#[inline]
fn windows_product(w: &[f32], a: usize, cols: &Windows, n: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let positions = cols.p.checked_div(n).unwrap_or(0);
    if cols.channels_last {
        let out = matmul_scratch(mat(&cols.values, cols.p, cols.k), mat(w, a, cols.k).transpose());
        from_channels_last(&out, n, a, positions, bias)
    } else {
        let out = matmul_scratch(mat(w, a, cols.k), cols.matrix());
        sample_major(&out, n, a, positions, bias)
    }
}

/// A map `[N, c, l]` as the `[c, N·l]` operand of a product: channel-major, or, for a product
/// that reads it transposed (`fold`'s channels-last `Yᵀ · M`), channels-last and viewed
/// transposed, so the product reads `Yᵀ` by rows (319 against 284 GFLOP/s for `fold`'s
/// 3136x128x1024 at the DCGAN's shapes, stand-alone).
struct Channels {
    values: Scratch,
    c: usize,
    p: usize,
    last: bool,
}

impl Channels {
    #[inline]
    fn of(t: &[f32], [n, c, l]: [usize; 3], last: bool) -> Self {
        let values = if last {
            to_channels_last(t, n, c, l)
        } else {
            channel_major(t, n, c, l)
        };
        Self {
            values,
            c,
            p: n * l,
            last,
        }
    }

    /// The `[c, N·l]` matrix.
    fn matrix(&self) -> MatRef<'_, f32> {
        if self.last {
            mat(&self.values, self.p, self.c).transpose()
        } else {
            mat(&self.values, self.c, self.p)
        }
    }
}

/// The dimensions of a 4-d tensor.
fn dims4<I: Backend>(t: &FloatTensor<I>) -> [usize; 4] {
    t.shape().dims::<4>()
}

/// A row-major `rows x cols` matrix over `values`.
fn mat(values: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(values, rows, cols)
}

/// `conv2d`: `W · cols(x)` forward; `dW = G · cols(x)ᵀ` and `dx = col2im(Wᵀ · G)` backward.
#[derive(Debug, Default)]
struct Conv;

impl ConvPass for Conv {
    type Options = ConvOptions<2>;

    /// `conv2d(x, weight) + bias`: `W · cols(x)` on the host path, the bias added as the output
    /// is laid out, `W` the weight as the matrix `[c_out, c_in·k_h·k_w]` it is in memory.
    fn forward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        bias: Option<FloatTensor<I>>,
        options: Self::Options,
    ) -> FloatTensor<I> {
        if !host_path::<I>([&x, &weight], bias.as_ref(), options.groups) {
            return I::conv2d(x, weight, bias, options);
        }
        let bias = bias_values::<I>(bias.as_ref());
        let device = I::float_device(&x);
        let ([n, c_in, h, w], [c_out, _, kh, kw]) = (dims4::<I>(&x), dims4::<I>(&weight));
        let geo = Geometry::conv([kh, kw], &options);
        let (oh, ow) = (geo.windows(0, h), geo.windows(1, w));
        let cols = with_values::<I, 4, _>(&x, |x| Windows::of(x, [n, c_in, h, w], [oh, ow], &geo));
        let out = with_values::<I, 4, _>(&weight, |wv| {
            let wm = weight_in(wv, [c_out, c_in, kh * kw], cols.channels_last);
            windows_product(&wm, c_out, &cols, n, bias.as_deref())
        });
        float(host_tensor::<I, 4>(out, [n, c_out, oh, ow], &device))
    }

    /// The input and weight gradients of `conv2d(x, weight)`, those asked for, on the host path:
    /// `dW = G · cols(x)ᵀ` and `dx = col2im(Wᵀ · G)`, with `G` the output gradient as
    /// `[c_out, N·oh·ow]`.
    fn backward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        grad: FloatTensor<I>,
        options: Self::Options,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FloatTensor<I>>, Option<FloatTensor<I>>) {
        if !host_path::<I>([&x, &grad], None, options.groups) {
            let dx = want_x.then(|| I::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
            let dw = want_weight.then(|| I::conv2d_weight_backward(x, weight, grad, options));
            return (dx, dw);
        }
        let device = I::float_device(&x);
        let ([n, c_in, h, w], [c_out, _, kh, kw], [_, _, oh, ow]) =
            (dims4::<I>(&x), dims4::<I>(&weight), dims4::<I>(&grad));
        let geo = Geometry::conv([kh, kw], &options);
        let last = channels_last(c_in);
        let g = with_values::<I, 4, _>(&grad, |g| Channels::of(g, [n, c_out, oh * ow], last && want_x));
        let g = g.matrix();
        let dx = want_x.then(|| {
            let dx = with_values::<I, 4, _>(&weight, |wv| fold(wv, g, [n, c_in, h, w], [oh, ow], &geo, None, last));
            float(host_tensor::<I, 4>(dx, [n, c_in, h, w], &device))
        });
        let dw = want_weight.then(|| {
            let cols = with_values::<I, 4, _>(&x, |x| Windows::of(x, [n, c_in, h, w], [oh, ow], &geo));
            let dw = weight_gradient(g, &cols, [c_out, c_in, kh * kw]);
            float(host_tensor::<I, 4>(dw, [c_out, c_in, kh, kw], &device))
        });
        (dx, dw)
    }
}

/// `conv_transpose2d`: `col2im(Wᵀ · X)` forward; `dx = W · cols(G)` and `dW = X · cols(G)ᵀ`
/// backward.
#[derive(Debug, Default)]
struct ConvTranspose;

impl ConvPass for ConvTranspose {
    type Options = ConvTransposeOptions<2>;

    /// `conv_transpose2d(x, weight) + bias`: `col2im(Wᵀ · X)` onto the bias on the host path,
    /// `W` the weight as the matrix `[c_in, c_out·k_h·k_w]` it is in memory and `X` the input
    /// as `[c_in, N·h·w]`.
    fn forward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        bias: Option<FloatTensor<I>>,
        options: Self::Options,
    ) -> FloatTensor<I> {
        if !host_path::<I>([&x, &weight], bias.as_ref(), options.groups) {
            return I::conv_transpose2d(x, weight, bias, options);
        }
        let bias = bias_values::<I>(bias.as_ref());
        let device = I::float_device(&x);
        let ([n, c_in, ih, iw], [_, c_out, kh, kw]) = (dims4::<I>(&x), dims4::<I>(&weight));
        let geo = Geometry::transposed([kh, kw], &options);
        let (oh, ow) = (
            geo.transposed_side(0, ih, options.padding_out[0]),
            geo.transposed_side(1, iw, options.padding_out[1]),
        );
        let (dims, last) = ([n, c_out, oh, ow], channels_last(c_out));
        let xt = with_values::<I, 4, _>(&x, |x| Channels::of(x, [n, c_in, ih * iw], last));
        let out = with_values::<I, 4, _>(&weight, |wv| {
            fold(wv, xt.matrix(), dims, [ih, iw], &geo, bias.as_deref(), last)
        });
        float(host_tensor::<I, 4>(out, [n, c_out, oh, ow], &device))
    }

    /// The input and weight gradients of `conv_transpose2d(x, weight)`, those asked for, on the
    /// host path: `dx = W · cols(G)` and `dW = X · cols(G)ᵀ`, with `cols(G)` the output
    /// gradient's windows at the input's positions.
    fn backward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        grad: FloatTensor<I>,
        options: Self::Options,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FloatTensor<I>>, Option<FloatTensor<I>>) {
        if !host_path::<I>([&x, &grad], None, options.groups) {
            let dx = want_x.then(|| I::conv_transpose2d_x_backward(weight.clone(), grad.clone(), options.clone()));
            let dw = want_weight.then(|| I::conv_transpose2d_weight_backward(x, weight, grad, options));
            return (dx, dw);
        }
        let device = I::float_device(&x);
        let ([n, c_in, ih, iw], [_, c_out, kh, kw], [_, _, oh, ow]) =
            (dims4::<I>(&x), dims4::<I>(&weight), dims4::<I>(&grad));
        let geo = Geometry::transposed([kh, kw], &options);
        let cols = with_values::<I, 4, _>(&grad, |g| Windows::of(g, [n, c_out, oh, ow], [ih, iw], &geo));
        let dx = want_x.then(|| {
            let dx = with_values::<I, 4, _>(&weight, |wv| {
                let wm = weight_in(wv, [c_in, c_out, kh * kw], cols.channels_last);
                windows_product(&wm, c_in, &cols, n, None)
            });
            float(host_tensor::<I, 4>(dx, [n, c_in, ih, iw], &device))
        });
        let dw = want_weight.then(|| {
            let xt = with_values::<I, 4, _>(&x, |x| channel_major(x, n, c_in, ih * iw));
            let dw = weight_gradient(mat(&xt, c_in, n * ih * iw), &cols, [c_in, c_out, kh * kw]);
            float(host_tensor::<I, 4>(dw, [c_in, c_out, kh, kw], &device))
        });
        (dx, dw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transpose, with and without its register tiles, against the definition: shapes of
    /// whole tiles, of none and of both with remainders, with and without a bias.
    #[test]
    fn transpose_matches_the_definition() {
        for (rows, cols) in [
            (8, 8),
            (16, 24),
            (128, 49),
            (49, 128),
            (196, 64),
            (3, 5),
            (1, 17),
            (17, 1),
            (9, 15),
        ] {
            let src = values_of(rows * cols, rows + cols);
            let bias = values_of(cols, 3);
            for b in [None, Some(&bias[..])] {
                let expected: Vec<f32> = (0..cols)
                    .flat_map(|j| (0..rows).map(move |i| (i, j)))
                    .map(|(i, j)| src[i * cols + j] + b.map_or(0.0, |b| b[j]))
                    .collect();
                let mut dst = vec![f32::NAN; rows * cols];
                transpose(&src, rows, cols, &mut dst, b);
                assert_eq!(dst, expected, "{rows}x{cols}, bias {}", b.is_some());
                let mut dst = vec![f32::NAN; rows * cols];
                transpose_with(None, &src, rows, cols, &mut dst, b);
                assert_eq!(dst, expected, "{rows}x{cols} scalar, bias {}", b.is_some());
            }
        }
    }

    /// Deterministic values in [-0.5, 0.5).
    fn values_of(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 97) as f32 / 97.0 - 0.5)
            .collect()
    }

    /// The window value the definition gives: the map at `o·stride + k·dilation - padding`.
    fn window_value(
        map: &[f32],
        [_, c, h, w]: [usize; 4],
        geo: &Geometry,
        s: usize,
        ci: usize,
        pos: [usize; 2],
        k: [usize; 2],
    ) -> f32 {
        let iy = (pos[0] * geo.stride[0] + k[0] * geo.dilation[0]) as isize - geo.padding[0] as isize;
        let ix = (pos[1] * geo.stride[1] + k[1] * geo.dilation[1]) as isize - geo.padding[1] as isize;
        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
            0.0
        } else {
            map[((s * c + ci) * h + iy as usize) * w + ix as usize]
        }
    }

    /// im2col against the definition, and col2im as its adjoint (`⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩`),
    /// for strides, paddings, dilations and kernels of 1 to 4, square and not, in both layouts
    /// ([`Windows`]); and [`fold`]'s two layouts against each other.
    #[test]
    fn im2col_matches_the_definition_and_col2im_is_its_adjoint() {
        let cases = [
            ([2, 3, 7, 6], [4, 4], [2, 2], [1, 1], [1, 1]),
            ([1, 2, 9, 11], [3, 2], [1, 2], [2, 0], [2, 1]),
            ([3, 1, 5, 5], [1, 1], [1, 1], [0, 0], [1, 1]),
            ([2, 2, 6, 8], [3, 4], [3, 2], [2, 3], [1, 2]),
            ([1, 1, 2, 2], [4, 4], [1, 1], [3, 3], [1, 1]),
        ];
        for (dims @ [n, c, h, w], kernel, stride, padding, dilation) in cases {
            let geo = Geometry {
                kernel,
                stride,
                padding,
                dilation,
            };
            let (oh, ow) = (geo.windows(0, h), geo.windows(1, w));
            let map = values_of(n * c * h * w, 1);
            let (k, columns) = (c * kernel[0] * kernel[1], n * oh * ow);
            for last in [false, true] {
                let cols = Windows::in_layout(&map, dims, [oh, ow], &geo, last);
                assert_eq!((cols.values.len(), cols.k, cols.p), (k * columns, k, columns));
                let matrix = cols.matrix();
                for ci in 0..c {
                    for a in 0..kernel[0] {
                        for b in 0..kernel[1] {
                            let r = if last {
                                (a * kernel[1] + b) * c + ci
                            } else {
                                (ci * kernel[0] + a) * kernel[1] + b
                            };
                            for s in 0..n {
                                for y in 0..oh {
                                    for x in 0..ow {
                                        let got = matrix[(r, (s * oh + y) * ow + x)];
                                        let want = window_value(&map, dims, &geo, s, ci, [y, x], [a, b]);
                                        assert_eq!(
                                            got, want,
                                            "{dims:?} {geo:?} (channels last {last}) at row {r}, sample {s}, ({y}, {x})"
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
                let y = values_of(k * columns, 2);
                let back = if last {
                    let back = col2im_channels_last(&y, dims, [oh, ow], &geo);
                    from_channels_last(&back, n, c, h * w, None)
                } else {
                    col2im(&y, dims, [oh, ow], &geo, None)
                };
                let lhs: f64 = cols
                    .values
                    .iter()
                    .zip(&y)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                let rhs: f64 = map.iter().zip(&back).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
                assert!(
                    (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
                    "{dims:?} {geo:?} (channels last {last}): {lhs} against {rhs}"
                );
            }
            // `fold` computes col2im(Mᵀ · Y) onto the bias the same way in both layouts.
            let c_y = 3;
            let m = values_of(c_y * k, 4);
            let y = values_of(c_y * columns, 5);
            let bias: Vec<f32> = (0..c).map(|i| i as f32 - 0.5).collect();
            let y = mat(&y, c_y, columns);
            let planes = fold(&m, y, dims, [oh, ow], &geo, Some(&bias), false);
            let last = fold(&m, y, dims, [oh, ow], &geo, Some(&bias), true);
            assert_eq!(planes.len(), n * c * h * w);
            for (i, (p, l)) in planes.iter().zip(&last).enumerate() {
                assert!(
                    (p - l).abs() <= 1e-5 * (1.0 + p.abs()),
                    "{dims:?} {geo:?} fold at {i}: {p} against {l}"
                );
            }
        }
    }

    /// Both operations against burn's on Flex, with maps of 16 and more channels (the
    /// channels-last windows) and every activation fused, and with few channels: output, and the
    /// input, weight and bias gradients of `Σ (y ⊙ r)`, within 1e-4.
    #[test]
    fn passes_match_burn_with_every_activation() {
        use crate::test_util::{TestAutodiffBackend as A, TestBackend};
        let _guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        register_fast_conv::<TestBackend>();
        assert!(has_fast_conv::<A>());
        for activation in Activation::ALL {
            for transposed in [false, true] {
                let shapes = if transposed {
                    [([3, 24, 7, 7], [24, 16, 4, 4]), ([2, 3, 5, 6], [3, 2, 4, 4])]
                } else {
                    [([3, 16, 14, 14], [24, 16, 4, 4]), ([2, 3, 9, 8], [5, 3, 4, 4])]
                };
                for (x_shape, w_shape) in shapes {
                    compare_with_burn(transposed, x_shape, w_shape, activation);
                }
            }
        }
    }

    /// One case of [`passes_match_burn_with_every_activation`], stride 2 and padding 1.
    fn compare_with_burn(transposed: bool, x_shape: [usize; 4], w_shape: [usize; 4], activation: Activation) {
        use crate::test_util::{TestAutodiffBackend as A, TestBackend};
        use burn::tensor::Distribution;
        use burn::tensor::module;
        let device = Default::default();
        let dist = Distribution::Uniform(-1.0, 1.0);
        let out_c = if transposed { w_shape[1] } else { w_shape[0] };
        let x0 = Tensor::<TestBackend, 4>::random(x_shape, dist, &device);
        let w0 = Tensor::<TestBackend, 4>::random(w_shape, dist, &device);
        let b0 = Tensor::<TestBackend, 1>::random([out_c], dist, &device);
        let conv = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let deconv = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let run = |ours: bool| {
            let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
            let w = Tensor::<A, 4>::from_inner(w0.clone()).require_grad();
            let b = Tensor::<A, 1>::from_inner(b0.clone()).require_grad();
            let (xc, wc, bc) = (x.clone(), w.clone(), Some(b.clone()));
            let y = match (transposed, ours) {
                (false, true) => conv2d_activated(xc, wc, bc, conv.clone(), activation),
                (false, false) => activation.forward(module::conv2d(xc, wc, bc, conv.clone())),
                (true, true) => conv_transpose2d_activated(xc, wc, bc, deconv.clone(), activation),
                (true, false) => activation.forward(module::conv_transpose2d(xc, wc, bc, deconv.clone())),
            };
            // A weight per output that differs from the others: the detached `sin(y)`.
            let r = y.clone().detach().sin();
            let grads = (y.clone() * r).sum().backward();
            (
                y.inner().into_data(),
                x.grad(&grads).unwrap().into_data(),
                w.grad(&grads).unwrap().into_data(),
                b.grad(&grads).unwrap().into_data(),
            )
        };
        let (ours, burns) = (run(true), run(false));
        let case = format!("transposed {transposed}, x {x_shape:?}, w {w_shape:?}, {activation:?}");
        for (name, a, b) in [
            ("output", &ours.0, &burns.0),
            ("x gradient", &ours.1, &burns.1),
            ("weight gradient", &ours.2, &burns.2),
            ("bias gradient", &ours.3, &burns.3),
        ] {
            let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
            assert_eq!(a.len(), b.len(), "{case}: {name} sizes");
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-4 + 1e-4 * q.abs(),
                    "{case}: {name} at {i}: {p} against burn's {q}"
                );
            }
        }
    }

    #[test]
    fn the_weight_round_trips_through_the_channels_last_order() {
        let (a, b, kk) = (3, 5, 4);
        let w = values_of(a * b * kk, 6);
        let wm = weight_in(&w, [a, b, kk], true);
        // Row 2, window element 3, channel 1.
        assert_eq!(wm[(2 * kk + 3) * b + 1], w[(2 * b + 1) * kk + 3]);
        assert_eq!(weight_back(&wm, [a, b, kk]), w);
        assert_eq!(&*weight_in(&w, [a, b, kk], false), &w[..]);
    }

    #[test]
    fn channel_major_round_trips() {
        let (n, c, l) = (3, 4, 5);
        let t = values_of(n * c * l, 3);
        let rows = channel_major(&t, n, c, l);
        assert_eq!(rows[(2 * n + 1) * l + 3], t[(c + 2) * l + 3]);
        assert_eq!(sample_major(&rows, n, c, l, None), t);
        let bias = [1.0, 2.0, 3.0, 4.0];
        let shifted = sample_major(&rows, n, c, l, Some(&bias));
        assert_eq!(shifted[(c + 2) * l + 3], t[(c + 2) * l + 3] + 3.0);
        // Channels last, with sides that are not multiples of the transpose's tile.
        let (c, l) = (11, 19);
        let t = values_of(n * c * l, 4);
        let last = to_channels_last(&t, n, c, l);
        assert_eq!(last[(c * l) + 7 * c + 9], t[(c + 9) * l + 7]);
        assert_eq!(from_channels_last(&last, n, c, l, None), t);
        let bias: Vec<f32> = (0..c).map(|i| i as f32).collect();
        let shifted = from_channels_last(&last, n, c, l, Some(&bias));
        assert_eq!(shifted[(c + 9) * l + 7], t[(c + 9) * l + 7] + 9.0);
    }
}
