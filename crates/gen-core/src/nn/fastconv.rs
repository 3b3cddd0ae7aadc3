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
//! Here the passes that were slow are one product over the whole batch, with maps as rows
//! (`[N·h·w, c]`, channels last) and windows as im2col rows (`[N·oh·ow, k_h·k_w·c]`):
//!
//! | | forward | input gradient | weight gradient |
//! |---|---|---|---|
//! | `conv2d` | `cols(x) · Wᵀ` | `col2im(G · W)`\* | `Gᵀ · cols(x)` |
//! | `conv_transpose2d` | `col2im(X · W)`\* | `cols(G) · Wᵀ` | `Xᵀ · cols(G)` |
//!
//! with `W` the weight as a matrix, `X` the input and `G` the output gradient as rows. The
//! im2col, col2im and layout changes are loops over host memory, parallel over the samples; the
//! products are the backend's matmul. \*The two col2im passes replace a transposed convolution:
//! on ndarray, whose own is plain nested loops; Flex keeps its own, which measured faster than
//! ours (`cargo xtask bench`, `conv_*_train`).
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

use rayon::prelude::*;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor};

use super::host::{Erased, Registry, float, host_tensor, on_host, tensor, unerase, values};
use super::per_sample_channels;

/// The fast operations of one backend, behind type erasure.
#[derive(Clone, Copy)]
struct Entry {
    conv2d: fn(Erased, Erased, ConvOptions<2>) -> Erased,
    conv_transpose2d: fn(Erased, Erased, ConvTransposeOptions<2>) -> Erased,
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
    let out = match REGISTRY.get::<B>().map(|e| e.conv2d) {
        Some(f) => unerase(f(Box::new(x), Box::new(weight), options)),
        None => burn::tensor::module::conv2d(x, weight, None, options),
    };
    add_bias(out, bias)
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
    let out = match REGISTRY.get::<B>().map(|e| e.conv_transpose2d) {
        Some(f) => unerase(f(Box::new(x), Box::new(weight), options)),
        None => burn::tensor::module::conv_transpose2d(x, weight, None, options),
    };
    add_bias(out, bias)
}

/// The bias as `[N, C, 1, 1]` per-sample channels: burn's bias gradient would swap dimensions.
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
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        _ => return conv.forward(x),
    };
    let options = ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options)
}

/// `deconv.forward(x)` through [`conv_transpose2d`].
pub fn conv_transpose2d_module<B: Backend>(deconv: &ConvTranspose2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let options = ConvTransposeOptions::new(
        deconv.stride,
        deconv.padding,
        deconv.padding_out,
        deconv.dilation,
        deconv.groups,
    );
    conv_transpose2d(x, deconv.weight.val(), deconv.bias.as_ref().map(|b| b.val()), options)
}

/// One of the two convolutions: its options and its passes on the inner backend.
trait ConvPass: Default + Send + std::fmt::Debug + 'static {
    type Options: Clone + Send + std::fmt::Debug + 'static;

    /// The output, without bias.
    fn forward<I: Backend>(x: FloatTensor<I>, weight: FloatTensor<I>, options: Self::Options) -> FloatTensor<I>;

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

/// The autodiff node of a [`ConvPass`]: the input and the weight are its two parents.
#[derive(Debug)]
struct ConvBackward<K>(K);

impl<I: Backend, K: ConvPass> Backward<I, 2> for ConvBackward<K> {
    type State = (NodeId, NodeId, K::Options);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<I>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
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

/// `K`'s forward pass on `Autodiff<I>` tensors, recorded as a [`ConvBackward`] node.
fn erased_autodiff<I: Backend, K: ConvPass>(x: Erased, weight: Erased, options: K::Options) -> Erased {
    let x: Tensor<Autodiff<I>, 4> = unerase(x);
    let weight: Tensor<Autodiff<I>, 4> = unerase(weight);
    let (x, weight) = (float(x), float(weight));
    let out = match ConvBackward(K::default())
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let out = K::forward::<I>(x.primitive, weight.primitive, options.clone());
            prep.finish((x_state, weight_state, options), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(K::forward::<I>(x.primitive, weight.primitive, options)),
    };
    Box::new(tensor::<Autodiff<I>, 4>(out))
}

/// `K`'s forward pass on `I` tensors, without autodiff.
fn erased_inner<I: Backend, K: ConvPass>(x: Erased, weight: Erased, options: K::Options) -> Erased {
    let (x, weight): (Tensor<I, 4>, Tensor<I, 4>) = (unerase(x), unerase(weight));
    Box::new(tensor::<I, 4>(K::forward::<I>(float(x), float(weight), options)))
}

/// Whether the host path applies: `f32` tensors in host memory, no groups.
fn host_path<I: Backend>(tensors: [&FloatTensor<I>; 2], groups: usize) -> bool {
    groups == 1 && on_host::<I>(&tensors)
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

    /// The source offset of window element `k` at position `o` along `side`, if inside `len`.
    #[inline]
    fn source(&self, side: usize, o: usize, k: usize, len: usize) -> Option<usize> {
        let i = (o * self.stride[side] + k * self.dilation[side]).wrapping_sub(self.padding[side]);
        (i < len).then_some(i)
    }
}

/// `[N, c, l]` to `[N·l, c]`: one row per sample and position. The samples run in parallel.
#[inline]
fn to_rows(t: &[f32], n: usize, c: usize, l: usize) -> Vec<f32> {
    let mut rows = vec![0.0f32; n * c * l];
    rows.par_chunks_mut(l * c)
        .zip(t.par_chunks(c * l))
        .for_each(|(dst, src)| {
            for (ci, plane) in src.chunks_exact(l).enumerate() {
                for (p, &v) in plane.iter().enumerate() {
                    dst[p * c + ci] = v;
                }
            }
        });
    rows
}

/// `[N·l, c]` to `[N, c, l]`, the inverse of [`to_rows`].
#[inline]
fn from_rows(rows: &[f32], n: usize, c: usize, l: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; n * c * l];
    t.par_chunks_mut(c * l)
        .zip(rows.par_chunks(l * c))
        .for_each(|(dst, src)| {
            for (p, row) in src.chunks_exact(c).enumerate() {
                for (ci, &v) in row.iter().enumerate() {
                    dst[ci * l + p] = v;
                }
            }
        });
    t
}

/// im2col: `[N·oh·ow, k_h·k_w·c]`, the window of a map at each of the `oh x ow` positions,
/// zero outside the map. The map comes as rows (`[N·h·w, c]`, channels last), so each window
/// is `k_h·k_w` copies of `c` contiguous values; the columns are ordered (row, column,
/// channel). The samples run in parallel.
#[inline]
fn im2col(rows: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], geo: &Geometry) -> Vec<f32> {
    let [kh, kw] = geo.kernel;
    let (positions, width) = (oh * ow, kh * kw * c);
    let mut cols = vec![0.0f32; n * positions * width];
    cols.par_chunks_mut(positions * width)
        .zip(rows.par_chunks(h * w * c))
        .for_each(|(sample_cols, map)| {
            for (position, row) in sample_cols.chunks_exact_mut(width).enumerate() {
                let (y, x) = (position / ow, position % ow);
                for a in 0..kh {
                    let Some(iy) = geo.source(0, y, a, h) else { continue };
                    for b in 0..kw {
                        let Some(ix) = geo.source(1, x, b, w) else { continue };
                        row[(a * kw + b) * c..][..c].copy_from_slice(&map[(iy * w + ix) * c..][..c]);
                    }
                }
            }
        });
    cols
}

/// col2im, the adjoint of [`im2col`]: each row's window added back into the map, returned as
/// rows (`[N·h·w, c]`). The samples run in parallel.
#[inline]
fn col2im(cols: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], geo: &Geometry) -> Vec<f32> {
    let [kh, kw] = geo.kernel;
    let (positions, width) = (oh * ow, kh * kw * c);
    let mut rows = vec![0.0f32; n * h * w * c];
    rows.par_chunks_mut(h * w * c)
        .zip(cols.par_chunks(positions * width))
        .for_each(|(map, sample_cols)| {
            for (position, row) in sample_cols.chunks_exact(width).enumerate() {
                let (y, x) = (position / ow, position % ow);
                for a in 0..kh {
                    let Some(iy) = geo.source(0, y, a, h) else { continue };
                    for b in 0..kw {
                        let Some(ix) = geo.source(1, x, b, w) else { continue };
                        let window = &row[(a * kw + b) * c..][..c];
                        for (m, v) in map[(iy * w + ix) * c..][..c].iter_mut().zip(window) {
                            *m += v;
                        }
                    }
                }
            }
        });
    rows
}

/// Whether the backend's transposed convolution is slower than a col2im and product of ours:
/// ndarray's is plain nested loops; Flex's measured faster than ours.
fn col2im_wins<I: Backend>(device: &I::Device) -> bool {
    I::name(device) == "ndarray"
}

/// A weight `[a, b, k_h, k_w]` as the matrix `[a, k_h·k_w·b]` whose columns follow
/// [`im2col`]'s order.
fn weight_matrix<I: Backend>(weight: Tensor<I, 4>) -> Tensor<I, 2> {
    let [a, b, kh, kw] = weight.dims();
    weight.permute([0, 2, 3, 1]).reshape([a, kh * kw * b])
}

/// The inverse of [`weight_matrix`]: `[a, k_h·k_w·b]` back to `[a, b, k_h, k_w]`.
fn weight_from_matrix<I: Backend>(m: Tensor<I, 2>, [a, b, kh, kw]: [usize; 4]) -> Tensor<I, 4> {
    m.reshape([a, kh, kw, b]).permute([0, 3, 1, 2])
}

/// `conv2d`: `cols(x) · Wᵀ` forward; `dW = Gᵀ · cols(x)` and `dx = col2im(G · W)` backward.
#[derive(Debug, Default)]
struct Conv;

impl ConvPass for Conv {
    type Options = ConvOptions<2>;

    /// `conv2d(x, weight)` without bias: `cols(x) · Wᵀ` on the host path.
    fn forward<I: Backend>(x: FloatTensor<I>, weight: FloatTensor<I>, options: Self::Options) -> FloatTensor<I> {
        if !host_path::<I>([&x, &weight], options.groups) {
            return I::conv2d(x, weight, None, options);
        }
        let device = I::float_device(&x);
        let (x, weight) = (tensor::<I, 4>(x), tensor::<I, 4>(weight));
        let ([n, c_in, h, w], [c_out, _, kh, kw]) = (x.dims(), weight.dims());
        let geo = Geometry::conv([kh, kw], &options);
        let (oh, ow) = (geo.windows(0, h), geo.windows(1, w));
        let x_rows = to_rows(&values(x), n, c_in, h * w);
        let cols = im2col(&x_rows, [n, c_in, h, w], [oh, ow], &geo);
        let cols = host_tensor::<I, 2>(cols, [n * oh * ow, kh * kw * c_in], &device);
        let rows = cols.matmul(weight_matrix(weight).transpose());
        let out = from_rows(&values(rows), n, c_out, oh * ow);
        float(host_tensor::<I, 4>(out, [n, c_out, oh, ow], &device))
    }

    /// The input and weight gradients of `conv2d(x, weight)`, those asked for: `dW = Gᵀ · cols(x)`
    /// on the host path, with `G` the output gradient as rows; `dx = col2im(G · W)` where the
    /// backend's transposed convolution is slower ([`col2im_wins`]), else the backend's.
    fn backward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        grad: FloatTensor<I>,
        options: Self::Options,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FloatTensor<I>>, Option<FloatTensor<I>>) {
        if !host_path::<I>([&x, &grad], options.groups) {
            let dx = want_x.then(|| I::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
            let dw = want_weight.then(|| I::conv2d_weight_backward(x, weight, grad, options));
            return (dx, dw);
        }
        let device = I::float_device(&x);
        let dx = (want_x && !col2im_wins::<I>(&device))
            .then(|| I::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
        let (x, weight, grad) = (tensor::<I, 4>(x), tensor::<I, 4>(weight), tensor::<I, 4>(grad));
        let ([n, c_in, h, w], [c_out, _, kh, kw], [_, _, oh, ow]) = (x.dims(), weight.dims(), grad.dims());
        let geo = Geometry::conv([kh, kw], &options);
        let g = host_tensor::<I, 2>(to_rows(&values(grad), n, c_out, oh * ow), [n * oh * ow, c_out], &device);
        let dims = weight.dims();
        let dx = dx.or_else(|| {
            want_x.then(|| {
                let cols = values(g.clone().matmul(weight_matrix(weight)));
                let rows = col2im(&cols, [n, c_in, h, w], [oh, ow], &geo);
                float(host_tensor::<I, 4>(
                    from_rows(&rows, n, c_in, h * w),
                    [n, c_in, h, w],
                    &device,
                ))
            })
        });
        let dw = want_weight.then(|| {
            let x_rows = to_rows(&values(x), n, c_in, h * w);
            let cols = im2col(&x_rows, [n, c_in, h, w], [oh, ow], &geo);
            let cols = host_tensor::<I, 2>(cols, [n * oh * ow, kh * kw * c_in], &device);
            float(weight_from_matrix(g.transpose().matmul(cols), dims))
        });
        (dx, dw)
    }
}

/// `conv_transpose2d`: `col2im(X · W)` forward; `dx = cols(G) · Wᵀ` and `dW = Xᵀ · cols(G)`
/// backward.
#[derive(Debug, Default)]
struct ConvTranspose;

impl ConvPass for ConvTranspose {
    type Options = ConvTransposeOptions<2>;

    /// `conv_transpose2d(x, weight)` without bias: `col2im(X · W)` where the backend's own is slower
    /// ([`col2im_wins`]), else the backend's.
    fn forward<I: Backend>(x: FloatTensor<I>, weight: FloatTensor<I>, options: Self::Options) -> FloatTensor<I> {
        if !host_path::<I>([&x, &weight], options.groups) || !col2im_wins::<I>(&I::float_device(&x)) {
            return I::conv_transpose2d(x, weight, None, options);
        }
        let device = I::float_device(&x);
        let (x, weight) = (tensor::<I, 4>(x), tensor::<I, 4>(weight));
        let ([n, c_in, ih, iw], [_, c_out, kh, kw]) = (x.dims(), weight.dims());
        let geo = Geometry::transposed([kh, kw], &options);
        let (oh, ow) = (
            geo.transposed_side(0, ih, options.padding_out[0]),
            geo.transposed_side(1, iw, options.padding_out[1]),
        );
        let x_rows = host_tensor::<I, 2>(to_rows(&values(x), n, c_in, ih * iw), [n * ih * iw, c_in], &device);
        let cols = values(x_rows.matmul(weight_matrix(weight)));
        let rows = col2im(&cols, [n, c_out, oh, ow], [ih, iw], &geo);
        float(host_tensor::<I, 4>(
            from_rows(&rows, n, c_out, oh * ow),
            [n, c_out, oh, ow],
            &device,
        ))
    }

    /// The input and weight gradients of `conv_transpose2d(x, weight)`, those asked for:
    /// `dx = cols(G) · Wᵀ` and `dW = Xᵀ · cols(G)` on the host path, with `X` the input as rows and
    /// `cols(G)` the output gradient's windows at the input's positions.
    fn backward<I: Backend>(
        x: FloatTensor<I>,
        weight: FloatTensor<I>,
        grad: FloatTensor<I>,
        options: Self::Options,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FloatTensor<I>>, Option<FloatTensor<I>>) {
        if !host_path::<I>([&x, &grad], options.groups) {
            let dx = want_x.then(|| I::conv_transpose2d_x_backward(weight.clone(), grad.clone(), options.clone()));
            let dw = want_weight.then(|| I::conv_transpose2d_weight_backward(x, weight, grad, options));
            return (dx, dw);
        }
        let device = I::float_device(&x);
        let (x, weight, grad) = (tensor::<I, 4>(x), tensor::<I, 4>(weight), tensor::<I, 4>(grad));
        let ([n, c_in, ih, iw], [_, c_out, kh, kw], [_, _, oh, ow]) = (x.dims(), weight.dims(), grad.dims());
        let geo = Geometry::transposed([kh, kw], &options);
        let width = c_out * kh * kw;
        let g_rows = to_rows(&values(grad), n, c_out, oh * ow);
        let cols = im2col(&g_rows, [n, c_out, oh, ow], [ih, iw], &geo);
        let cols = host_tensor::<I, 2>(cols, [n * ih * iw, width], &device);
        let dims = weight.dims();
        let dx = want_x.then(|| {
            let rows = values(cols.clone().matmul(weight_matrix(weight).transpose()));
            float(host_tensor::<I, 4>(
                from_rows(&rows, n, c_in, ih * iw),
                [n, c_in, ih, iw],
                &device,
            ))
        });
        let dw = want_weight.then(|| {
            let rows = host_tensor::<I, 2>(to_rows(&values(x), n, c_in, ih * iw), [n * ih * iw, c_in], &device);
            float(weight_from_matrix(rows.transpose().matmul(cols), dims))
        });
        (dx, dw)
    }
}
