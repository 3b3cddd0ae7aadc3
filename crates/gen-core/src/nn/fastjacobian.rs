//! The squared Frobenius norm of a dense layer's Jacobian, `‖∂y/∂x‖²_F` per sample for
//! `y = act(x·W + b)`, as one backend operation of our own registered with burn's autodiff: the
//! exact contractive penalty of a one-layer encoder.
//!
//! The Jacobian of one sample is `diag(act'(z)) Wᵀ`, so its norm is `Σ_j s_j² c_j` with
//! `s_j = act'(z_j)` and `c_j = Σ_i W_ij²`. Every activation's derivative is a function of its
//! output (`σ' = y(1 − y)`, `tanh' = 1 − y²`, `softplus' = 1 − e^{−y}`, ReLU's `y > 0`), so the
//! norm is a function of the layer's output `y` and its weight alone, and the gradient reaches
//! `x` and `b` through the layer's own node ([`dense`](super::dense), fused). In burn's
//! operations it was about ten nodes, each allocating and each with a backward pass of its own
//! (the sigmoid, its derivative, two squares, a broadcast product, two sums); here:
//!
//! | | work |
//! |---|---|
//! | forward | `c` in one pass over `W`, then `Σ_j s(y)² c_j` in one pass over `y` |
//! | backward | `∂y = g_b · 2 s s'(y) c_j` and `t_j = Σ_b g_b s²` in one pass over `y`, then `∂W = 2 W ⊙ t` in one pass over `W` |
//!
//! The host path is taken on the backends registered with
//! [`register_fast_dense`](super::register_fast_dense), which registers this operation too; other
//! backends (and `Autodiff<Autodiff<B>>`) take [`dense_jacobian_fro2_reference`], twice
//! differentiable.

use std::any::TypeId;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;

use super::Activation;
use super::fastdense::exp_nonpositive;
use super::host::{Erased, Registry, dims2, float, host_tensor, on_host, tensor, unerase, with_values};

#[derive(Clone, Copy)]
struct Entry {
    norm: fn(Erased, Erased, Activation) -> Erased,
}

static REGISTRY: Registry<Entry> = Registry::new();

/// Makes [`dense_jacobian_fro2`] on `I` and `Autodiff<I>` take the host path (called by
/// [`register_fast_dense`](super::register_fast_dense)). Idempotent.
pub(crate) fn register<I: Backend>() {
    REGISTRY.insert(
        TypeId::of::<Autodiff<I>>(),
        Entry {
            norm: erased_autodiff::<I>,
        },
    );
    REGISTRY.insert(
        TypeId::of::<I>(),
        Entry {
            norm: erased_inner::<I>,
        },
    );
}

/// `‖∂y/∂x‖²_F` of each sample for the dense layer `y = activation(x·weight + b)`, from its
/// output `y` and its `weight`: `Σ_j act'(z_j)² Σ_i weight_ij²`, with `act'` written as a
/// function of `y`. Differentiable in `y` (and so, through the layer, in `x`, `weight` and `b`)
/// and in `weight`.
///
/// # Shapes
/// - `y`: `[batch, d_output]`, `weight`: `[d_input, d_output]`
/// - output: `[batch]`
///
/// # Panics
/// If the widths of `y` and `weight` differ.
pub fn dense_jacobian_fro2<B: Backend>(y: Tensor<B, 2>, weight: Tensor<B, 2>, activation: Activation) -> Tensor<B, 1> {
    assert_eq!(
        y.dims()[1],
        weight.dims()[1],
        "dense_jacobian_fro2: the output's width differs from the weight's"
    );
    match REGISTRY.get::<B>() {
        Some(entry) => unerase((entry.norm)(Box::new(y), Box::new(weight), activation)),
        None => dense_jacobian_fro2_reference(y, weight, activation),
    }
}

/// [`dense_jacobian_fro2`] in burn's operations: the path of unregistered backends, twice
/// differentiable, and what the host path is tested against.
pub fn dense_jacobian_fro2_reference<B: Backend>(
    y: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    activation: Activation,
) -> Tensor<B, 1> {
    let [batch, _] = y.dims();
    let slope = activation.derivative_from_output(y);
    let col_norms = weight.powi_scalar(2).sum_dim(0); // [1, d_output]
    (slope.powi_scalar(2) * col_norms).sum_dim(1).reshape([batch])
}

/// The node: `y` and the weight are its parents; it keeps both and the weight's column norms.
#[derive(Debug)]
struct NormBackward;

#[derive(Clone, Debug)]
struct NormState<I: Backend> {
    y: FloatTensor<I>,
    weight: FloatTensor<I>,
    col_norms: Vec<f32>,
    activation: Activation,
}

impl<I: Backend> Backward<I, 2> for NormBackward {
    type State = NormState<I>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_y, node_weight] = ops.parents;
        let grad = grads.consume::<I>(&ops.node);
        let NormState {
            y,
            weight,
            col_norms,
            activation,
        } = ops.state;
        if !on_host::<I>(&[&grad, &y, &weight]) {
            // Off the host, the same formulas in the backend's operations (not a nested autodiff
            // pass: burn's graph is locked while this backward pass runs).
            let (y, w) = (tensor::<I, 2>(y), tensor::<I, 2>(weight));
            let [batch, _] = y.dims();
            let g = tensor::<I, 1>(grad).reshape([batch, 1]);
            let s = activation.derivative_from_output(y.clone());
            if let Some(node) = node_y {
                let c = w.clone().powi_scalar(2).sum_dim(0);
                let gy = g.clone().mul_scalar(2.0) * s.clone() * second_from_output(activation, y) * c;
                grads.register::<I>(node.id, float(gy));
            }
            if let Some(node) = node_weight {
                let t = (g * s.powi_scalar(2)).sum_dim(0);
                grads.register::<I>(node.id, float(w.mul_scalar(2.0) * t));
            }
            return;
        }
        let device = I::float_device(&y);
        let [batch, width] = dims2::<I>(&y);
        if width == 0 {
            // Nothing depends on an empty output: no gradient to register.
            return;
        }
        let [d_input, _] = dims2::<I>(&weight);
        let g = with_values::<I, 1, _>(&grad, <[f32]>::to_vec);
        let want_y = node_y.is_some();
        let mut dy = vec![0.0f32; if want_y { batch * width } else { 0 }];
        let mut sums = vec![0.0f32; width];
        with_values::<I, 2, _>(&y, |y| {
            pulp::Arch::new().dispatch(Backward2 {
                y,
                g: &g,
                col_norms: &col_norms,
                dy: want_y.then_some(dy.as_mut_slice()),
                sums: &mut sums,
                activation,
            })
        });
        if let Some(node) = node_y {
            grads.register::<I>(node.id, float(host_tensor::<I, 2>(dy, [batch, width], &device)));
        }
        if let Some(node) = node_weight {
            let dw = with_values::<I, 2, _>(&weight, |w| {
                let mut dw = vec![0.0f32; w.len()];
                pulp::Arch::new().dispatch(WeightGrad {
                    w,
                    sums: &sums,
                    dw: &mut dw,
                });
                dw
            });
            grads.register::<I>(node.id, float(host_tensor::<I, 2>(dw, [d_input, width], &device)));
        }
    }
}

fn erased_autodiff<I: Backend>(y: Erased, weight: Erased, activation: Activation) -> Erased {
    let y = float(unerase::<Tensor<Autodiff<I>, 2>>(y));
    let weight = float(unerase::<Tensor<Autodiff<I>, 2>>(weight));
    let out = match NormBackward
        .prepare::<NoCheckpointing>([y.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (norm, col_norms) = forward::<I>(&y.primitive, &weight.primitive, activation);
            let state = NormState {
                y: y.primitive,
                weight: weight.primitive,
                col_norms,
                activation,
            };
            prep.finish(state, norm)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward::<I>(&y.primitive, &weight.primitive, activation).0),
    };
    Box::new(tensor::<Autodiff<I>, 1>(out))
}

fn erased_inner<I: Backend>(y: Erased, weight: Erased, activation: Activation) -> Erased {
    let y = float(unerase::<Tensor<I, 2>>(y));
    let weight = float(unerase::<Tensor<I, 2>>(weight));
    Box::new(tensor::<I, 1>(forward::<I>(&y, &weight, activation).0))
}

/// The norms and the weight's column norms `c_j = Σ_i W_ij²`.
fn forward<I: Backend>(
    y: &FloatTensor<I>,
    weight: &FloatTensor<I>,
    activation: Activation,
) -> (FloatTensor<I>, Vec<f32>) {
    let [batch, width] = dims2::<I>(y);
    if !on_host::<I>(&[y, weight]) {
        // The backward pass off the host recomputes the column norms in the backend.
        let norm = dense_jacobian_fro2_reference(tensor::<I, 2>(y.clone()), tensor::<I, 2>(weight.clone()), activation);
        return (float(norm), Vec::new());
    }
    let device = I::float_device(y);
    if width == 0 {
        return (
            float(host_tensor::<I, 1>(vec![0.0; batch], [batch], &device)),
            Vec::new(),
        );
    }
    let mut col_norms = vec![0.0f32; width];
    with_values::<I, 2, _>(weight, |w| {
        pulp::Arch::new().dispatch(ColumnNorms {
            w,
            col_norms: &mut col_norms,
        })
    });
    let mut norm = vec![0.0f32; batch];
    with_values::<I, 2, _>(y, |y| {
        pulp::Arch::new().dispatch(Forward {
            y,
            col_norms: &col_norms,
            norm: &mut norm,
            activation,
        })
    });
    (float(host_tensor::<I, 1>(norm, [batch], &device)), col_norms)
}

/// `ds/dy` of the activation's derivative `s` written from its output ([`slope`]'s second value),
/// in the backend's operations.
fn second_from_output<I: Backend>(activation: Activation, y: Tensor<I, 2>) -> Tensor<I, 2> {
    match activation {
        Activation::Identity | Activation::Relu | Activation::LeakyRelu => y.zeros_like(),
        Activation::Sigmoid => y.mul_scalar(-2.0).add_scalar(1.0),
        Activation::Tanh => y.mul_scalar(-2.0),
        Activation::Softplus => y.neg().exp(),
    }
}

/// The activation's derivative `s` at an output value `y`, and `ds/dy`. Branch-free; a NaN gives
/// NaN (ReLU's and leaky ReLU's give 0 and 0.2, as [`Activation::derivative`] does).
#[inline(always)]
fn slope(activation: Activation, y: f32) -> (f32, f32) {
    match activation {
        Activation::Identity => (1.0, 0.0),
        Activation::Relu => (if y > 0.0 { 1.0 } else { 0.0 }, 0.0),
        Activation::LeakyRelu => (if y > 0.0 { 1.0 } else { 0.2 }, 0.0),
        Activation::Sigmoid => (y * (1.0 - y), 1.0 - 2.0 * y),
        Activation::Tanh => (1.0 - y * y, -2.0 * y),
        Activation::Softplus => {
            // softplus' = σ(z) = 1 − e^{−y}, and y ≥ 0.
            let e = exp_nonpositive(-y);
            (1.0 - e, e)
        }
    }
}

/// Expands the macro `$rows` once for each activation, with the activation as a constant, so
/// that [`slope`]'s match is resolved inside each loop at compile time.
macro_rules! per_activation {
    ($activation:expr, $rows:ident) => {
        match $activation {
            Activation::Identity => $rows!(Activation::Identity),
            Activation::Relu => $rows!(Activation::Relu),
            Activation::LeakyRelu => $rows!(Activation::LeakyRelu),
            Activation::Sigmoid => $rows!(Activation::Sigmoid),
            Activation::Tanh => $rows!(Activation::Tanh),
            Activation::Softplus => $rows!(Activation::Softplus),
        }
    };
}

/// `c_j += W_ij²` over the rows of `W`, inside pulp's dispatch (a struct, not a closure, so the
/// loop body itself gets the vector instructions; see `fastdense`).
struct ColumnNorms<'a> {
    w: &'a [f32],
    col_norms: &'a mut [f32],
}

impl pulp::WithSimd for ColumnNorms<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let width = self.col_norms.len();
        for row in self.w.chunks_exact(width) {
            for (c, &w) in self.col_norms.iter_mut().zip(row) {
                *c += w * w;
            }
        }
    }
}

/// `norm_b = Σ_j s(y_bj)² c_j`.
struct Forward<'a> {
    y: &'a [f32],
    col_norms: &'a [f32],
    norm: &'a mut [f32],
    activation: Activation,
}

impl pulp::WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let width = self.col_norms.len();
        macro_rules! rows {
            ($act:expr) => {
                for (row, n) in self.y.chunks_exact(width).zip(self.norm.iter_mut()) {
                    // Eight partial sums, so the reduction vectorises without reassociating floats.
                    let mut acc = [0.0f32; 8];
                    let (rows8, rest) = row.split_at(width - width % 8);
                    let (c8, crest) = self.col_norms.split_at(width - width % 8);
                    for (y, c) in rows8.chunks_exact(8).zip(c8.chunks_exact(8)) {
                        for k in 0..8 {
                            let s = slope($act, y[k]).0;
                            acc[k] += s * s * c[k];
                        }
                    }
                    let mut total = acc.iter().sum::<f32>();
                    for (&y, &c) in rest.iter().zip(crest) {
                        let s = slope($act, y).0;
                        total += s * s * c;
                    }
                    *n = total;
                }
            };
        }
        per_activation!(self.activation, rows);
    }
}

/// `dy_bj = g_b · 2 s s' c_j` (when asked) and `t_j = Σ_b g_b s²`.
struct Backward2<'a> {
    y: &'a [f32],
    g: &'a [f32],
    col_norms: &'a [f32],
    dy: Option<&'a mut [f32]>,
    sums: &'a mut [f32],
    activation: Activation,
}

impl pulp::WithSimd for Backward2<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let width = self.col_norms.len();
        let (y, g, c, sums) = (self.y, self.g, self.col_norms, self.sums);
        macro_rules! rows {
            ($act:expr) => {
                match self.dy {
                    Some(dy) => {
                        for ((row, drow), &gb) in y.chunks_exact(width).zip(dy.chunks_exact_mut(width)).zip(g) {
                            for (((&y, d), &c), t) in row.iter().zip(drow.iter_mut()).zip(c).zip(sums.iter_mut()) {
                                let (s, ds) = slope($act, y);
                                *d = 2.0 * gb * s * ds * c;
                                *t += gb * s * s;
                            }
                        }
                    }
                    None => {
                        for (row, &gb) in y.chunks_exact(width).zip(g) {
                            for (&y, t) in row.iter().zip(sums.iter_mut()) {
                                let s = slope($act, y).0;
                                *t += gb * s * s;
                            }
                        }
                    }
                }
            };
        }
        per_activation!(self.activation, rows);
    }
}

/// `dW_ij = 2 W_ij t_j`.
struct WeightGrad<'a> {
    w: &'a [f32],
    sums: &'a [f32],
    dw: &'a mut [f32],
}

impl pulp::WithSimd for WeightGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let width = self.sums.len();
        for (row, drow) in self.w.chunks_exact(width).zip(self.dw.chunks_exact_mut(width)) {
            for ((d, &w), &t) in drow.iter_mut().zip(row).zip(self.sums) {
                *d = 2.0 * w * t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fastdense::{dense, register_fast_dense};
    use crate::test_util::{TestAutodiffBackend as A, TestBackend};
    use burn::tensor::{Distribution, Tolerance};

    /// The norm of a fused dense layer's Jacobian and the input, weight and bias gradients of
    /// `Σ r_b · norm_b` (a random `r`) against burn's operations (the layer's pre-activation,
    /// burn's activation and [`Activation::derivative`]), for every activation, on Flex.
    fn check(batch: usize, d_in: usize, d_out: usize) {
        let _guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        register_fast_dense::<TestBackend>();
        let device = Default::default();
        let x0 = Tensor::<TestBackend, 2>::random([batch, d_in], Distribution::Uniform(-1.0, 1.0), &device);
        let scale = (1.0 / d_in as f64).sqrt();
        let w0 = Tensor::<TestBackend, 2>::random([d_in, d_out], Distribution::Normal(0.0, scale), &device);
        let b0 = Tensor::<TestBackend, 1>::random([d_out], Distribution::Uniform(-0.5, 0.5), &device);
        let r = Tensor::<A, 1>::random([batch], Distribution::Uniform(0.5, 1.5), &device);
        // 1e-4 relative, or absolute near zero: the weight's gradient is the sum of the layer's
        // and the norm's, which cancel to values near 0.07 for tanh, where the two products'
        // different summation orders leave 1e-5; the identity's norms are near 256.
        let tol = Tolerance::<f32>::rel_abs(1e-4, 1e-4);
        for activation in Activation::ALL {
            let run = |ours: bool| {
                let x = Tensor::<A, 2>::from_inner(x0.clone()).require_grad();
                let w = Tensor::<A, 2>::from_inner(w0.clone()).require_grad();
                let b = Tensor::<A, 1>::from_inner(b0.clone()).require_grad();
                let norm = if ours {
                    let y = dense(x.clone(), w.clone(), b.clone(), activation);
                    dense_jacobian_fro2(y, w.clone(), activation)
                } else {
                    let z = x.clone().matmul(w.clone()) + b.clone().unsqueeze::<2>();
                    let y = activation.forward(z.clone());
                    let d = activation.derivative(z, y);
                    (d.powi_scalar(2) * w.clone().powi_scalar(2).sum_dim(0))
                        .sum_dim(1)
                        .reshape([batch])
                };
                let grads = (norm.clone() * r.clone()).sum().backward();
                [
                    Some(norm.into_data()),
                    x.grad(&grads).map(|g| g.into_data()),
                    w.grad(&grads).map(|g| g.into_data()),
                    b.grad(&grads).map(|g| g.into_data()),
                ]
            };
            let (ours, burns) = (run(true), run(false));
            for (name, (a, b)) in ["norm", "x", "weight", "bias"].iter().zip(ours.iter().zip(&burns)) {
                let a = a
                    .as_ref()
                    .unwrap_or_else(|| panic!("{activation:?}: no {name} gradient"));
                match b {
                    Some(b) => a.assert_approx_eq::<f32>(b, tol),
                    // burn's derivative of ReLU, leaky ReLU and the identity is a constant of
                    // the graph, so the norm does not reach x and b there; ours does, with zeros.
                    None => assert!(
                        a.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0),
                        "{activation:?}: a {name} gradient where burn has none"
                    ),
                }
            }
        }
    }

    #[test]
    fn matches_burn_at_the_reference_shape() {
        check(128, 784, 256);
    }

    #[test]
    fn matches_burn_at_odd_widths_and_batch_one() {
        check(1, 5, 3);
        check(7, 13, 11);
    }

    #[test]
    fn without_autodiff_and_the_reference_agree() {
        let _guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        register_fast_dense::<TestBackend>();
        let device = Default::default();
        let y = Tensor::<TestBackend, 2>::random([9, 17], Distribution::Uniform(0.0, 1.0), &device);
        let w = Tensor::<TestBackend, 2>::random([6, 17], Distribution::Normal(0.0, 1.0), &device);
        for activation in Activation::ALL {
            dense_jacobian_fro2(y.clone(), w.clone(), activation)
                .into_data()
                .assert_approx_eq::<f32>(
                    &dense_jacobian_fro2_reference(y.clone(), w.clone(), activation).into_data(),
                    Tolerance::<f32>::rel_abs(1e-5, 1e-6),
                );
        }
    }

    #[test]
    fn nan_output_gives_nan_norm() {
        let _guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        register_fast_dense::<TestBackend>();
        let device = Default::default();
        let y = Tensor::<TestBackend, 2>::from_floats([[0.5, f32::NAN], [0.2, 0.3]], &device);
        let w = Tensor::<TestBackend, 2>::ones([3, 2], &device);
        let norm = dense_jacobian_fro2(y, w, Activation::Sigmoid)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(norm[0].is_nan() && norm[1].is_finite());
    }
}
