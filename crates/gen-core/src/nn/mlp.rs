use burn::module::{Module, Param};
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use super::{Activation, Dense, DenseConfig};
use crate::ConfigError;

/// Configuration of an [`Mlp`]: `d_input → hidden[0] → … → d_output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Input width.
    pub d_input: usize,
    /// Widths of the hidden layers, in order; may be empty.
    pub hidden: Vec<usize>,
    /// Output width.
    pub d_output: usize,
    /// Non-linearity after every hidden layer.
    pub activation: Activation,
    /// Non-linearity after the last layer.
    pub output_activation: Activation,
}

impl MlpConfig {
    /// An MLP with ReLU hidden layers and a linear output.
    pub fn new(d_input: usize, hidden: Vec<usize>, d_output: usize) -> Self {
        Self {
            d_input,
            hidden,
            d_output,
            activation: Activation::Relu,
            output_activation: Activation::Identity,
        }
    }

    /// Sets the hidden activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets the output activation.
    pub fn with_output_activation(mut self, activation: Activation) -> Self {
        self.output_activation = activation;
        self
    }

    /// Rejects zero widths anywhere in the stack.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("d_input", self.d_input)?;
        ConfigError::check_positive("d_output", self.d_output)?;
        for &h in &self.hidden {
            ConfigError::check_positive("hidden layer width", h)?;
        }
        Ok(())
    }

    /// Builds the stack.
    ///
    /// # Panics
    /// If [`MlpConfig::validate`] fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let widths: Vec<usize> = std::iter::once(self.d_input)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.d_output))
            .collect();
        let layers = widths
            .windows(2)
            .map(|w| DenseConfig::new(w[0], w[1]).init(device))
            .collect();
        Mlp {
            layers,
            activation: self.activation,
            output_activation: self.output_activation,
        }
    }
}

/// A stack of [`Dense`] layers with an activation between them.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Dense<B>>,
    activation: Activation,
    output_activation: Activation,
}

impl<B: Backend> Mlp<B> {
    /// The stack with its last layer's weight and bias set to zero, so that it outputs zeros
    /// (before its output activation) until trained: a residual branch that starts switched off.
    /// Its earlier layers keep their random initialisation, so gradients reach them as soon as
    /// the last layer has moved.
    pub fn with_zero_last_layer(mut self) -> Self {
        if let Some(last) = self.layers.last_mut() {
            last.weight = Param::from_tensor(last.weight.val().zeros_like());
            last.bias = Param::from_tensor(last.bias.val().zeros_like());
        }
        self
    }

    /// Applies the stack.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_with_hidden(x).0
    }

    /// Applies the stack and also returns the activations after each hidden layer, for
    /// penalties on hidden units (sparsity, activity regularisation).
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `([batch, d_output], [[batch, hidden[i]]; hidden.len()])`
    pub fn forward_with_hidden(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Vec<Tensor<B, 2>>) {
        let last = self.layers.len() - 1;
        let mut hidden = Vec::with_capacity(last);
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            if i < last {
                h = layer.forward_activated(h, self.activation);
                hidden.push(h.clone());
            } else {
                h = layer.forward_activated(h, self.output_activation);
            }
        }
        (h, hidden)
    }

    /// Applies the stack and then `then` to its output, fused into the last layer where the
    /// output activation is the identity (a decoder that returns logits, whose caller applies
    /// the sigmoid).
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward_then(&self, x: Tensor<B, 2>, then: Activation) -> Tensor<B, 2> {
        if self.output_activation != Activation::Identity {
            return then.forward(self.forward(x));
        }
        let (last, inner) = self.layers.split_last().expect("an MLP has a layer");
        let h = inner
            .iter()
            .fold(x, |h, layer| layer.forward_activated(h, self.activation));
        last.forward_activated(h, then)
    }

    /// Applies the stack and propagates `seeds` backwards through it, giving the
    /// vector–Jacobian products `vᵀ J` of the output with respect to the input for each seed `v`.
    ///
    /// With the identity as seeds (`k = d_output`) the result is the whole Jacobian, row by row;
    /// with `k` random Gaussian seeds, `‖vᵀ J‖²` averaged over them estimates `‖J‖²_F`. The
    /// propagation is written with ordinary tensor operations (products with the transposed
    /// weights and the activations' derivatives), so a penalty on the Jacobian trains with plain
    /// first-order autodiff and costs about `k` forward passes of the stack.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - `seeds`: `[batch, k, d_output]`
    /// - output: `([batch, d_output], [batch, k, d_input])`
    pub fn forward_with_jacobian(&self, x: Tensor<B, 2>, seeds: Tensor<B, 3>) -> (Tensor<B, 2>, Tensor<B, 3>) {
        let [batch, k, _] = seeds.dims();
        let last = self.layers.len() - 1;
        let mut derivatives = Vec::with_capacity(self.layers.len());
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            let act = if i < last {
                self.activation
            } else {
                self.output_activation
            };
            let z = layer.forward(h);
            h = act.forward(z.clone());
            derivatives.push(act.derivative(z, h.clone())); // [batch, width]
        }
        let mut g = seeds; // [batch, k, width of the layer's output]
        for (layer, d) in self.layers.iter().zip(derivatives).rev() {
            let [d_in, d_out] = layer.weight.dims();
            g = g * d.unsqueeze_dim::<3>(1);
            g = g
                .reshape([batch * k, d_out])
                .matmul(layer.weight.val().transpose())
                .reshape([batch, k, d_in]);
        }
        (h, g)
    }

    /// Applies the stack and returns, for each sample, the squared Frobenius norm of the output's
    /// Jacobian with respect to the input, `‖∂y/∂x‖²_F`, exactly and by the cheapest route.
    ///
    /// For a single layer `y = σ(x W + b)` the Jacobian is `diag(σ'(z)) Wᵀ`, so the norm is
    /// `Σ_j σ'(z_j)² Σ_i W_ij²`: a few operations per output instead of the `d_output` rows
    /// that [`Self::forward_with_jacobian`] propagates (about 250 times cheaper for the
    /// 784-256 contractive autoencoder), computed from the layer's output and weight by
    /// [`dense_jacobian_fro2`](super::dense_jacobian_fro2) (one fused node on the backends
    /// registered with [`register_fast_dense`](super::register_fast_dense), burn's operations
    /// elsewhere).
    /// Deeper stacks propagate one row per output.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `([batch, d_output], [batch])`
    pub fn forward_with_jacobian_fro2(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let [batch, _] = x.dims();
        if let [layer] = self.layers.as_slice() {
            let y = layer.forward_activated(x, self.output_activation);
            let norm = super::dense_jacobian_fro2(y.clone(), layer.weight.val(), self.output_activation);
            return (y, norm);
        }
        let d_out = self.layers.last().expect("an MLP has a layer").weight.dims()[1];
        let seeds = Tensor::<B, 2>::eye(d_out, &x.device())
            .unsqueeze::<3>()
            .repeat_dim(0, batch);
        let (y, rows) = self.forward_with_jacobian(x, seeds);
        (y, rows.powi_scalar(2).sum_dim(2).sum_dim(1).reshape([batch]))
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[Dense<B>] {
        &self.layers
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The output activation.
    pub fn output_activation(&self) -> Activation {
        self.output_activation
    }

    /// Input width.
    pub fn d_input(&self) -> usize {
        self.layers[0].d_input()
    }

    /// Output width.
    pub fn d_output(&self) -> usize {
        self.layers[self.layers.len() - 1].d_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;

    #[test]
    fn shapes_and_hidden_activations() {
        let device = Default::default();
        let mlp = MlpConfig::new(5, vec![4, 3], 2)
            .with_output_activation(Activation::Sigmoid)
            .init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 2>::ones([7, 5], &device);
        let (y, hidden) = mlp.forward_with_hidden(x);
        assert_eq!(y.dims(), [7, 2]);
        assert_eq!(
            hidden.iter().map(|h| h.dims()).collect::<Vec<_>>(),
            vec![[7, 4], [7, 3]]
        );
        let v: Vec<f32> = y.into_data().to_vec().unwrap();
        assert!(
            v.iter().all(|&p| p > 0.0 && p < 1.0),
            "sigmoid output must lie in (0, 1)"
        );
        assert!(
            hidden[0].clone().min().into_scalar() >= 0.0,
            "relu hidden units are non-negative"
        );
    }

    #[test]
    fn jacobian_rows_equal_autodiff_gradients() {
        use crate::test_util::TestAutodiffBackend as A;
        use burn::tensor::Distribution;
        let device = Default::default();
        for act in [Activation::Tanh, Activation::Relu, Activation::Sigmoid] {
            let mlp = MlpConfig::new(6, vec![5, 4], 3)
                .with_activation(act)
                .with_output_activation(Activation::Sigmoid)
                .init::<A>(&device);
            let x = Tensor::<A, 2>::random([2, 6], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let eye = Tensor::<A, 2>::eye(3, &device).unsqueeze::<3>().repeat_dim(0, 2);
            let (y, jac) = mlp.forward_with_jacobian(x.clone(), eye);
            mlp.forward(x.clone())
                .into_data()
                .assert_approx_eq::<f32>(&y.into_data(), Default::default());
            let jac: Vec<f32> = jac.into_data().to_vec().unwrap(); // [2, 3, 6]
            for row in 0..3 {
                let out = mlp.forward(x.clone()).slice([0..2, row..row + 1]).sum();
                let g: Vec<f32> = x.grad(&out.backward()).unwrap().into_data().to_vec().unwrap(); // [2, 6]
                for b in 0..2 {
                    for i in 0..6 {
                        let ours = jac[b * 18 + row * 6 + i];
                        let theirs = g[b * 6 + i];
                        assert!(
                            (ours - theirs).abs() < 1e-5,
                            "{act:?} b{b} row{row} col{i}: {ours} vs {theirs}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn jacobian_norm_equals_the_sum_of_squared_rows() {
        use burn::tensor::Distribution;
        // Registered, so the one-layer case takes the fused layer and `dense_jacobian_fro2`'s
        // node (its burn form is held to the node in `fastjacobian`'s tests).
        let _guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        super::super::register_fast_dense::<TestBackend>();
        let device = Default::default();
        for hidden in [vec![], vec![5]] {
            for act in Activation::ALL {
                let mlp = MlpConfig::new(6, hidden.clone(), 4)
                    .with_output_activation(act)
                    .init::<TestBackend>(&device);
                let x = Tensor::<TestBackend, 2>::random([3, 6], Distribution::Normal(0.0, 1.0), &device);
                let eye = Tensor::<TestBackend, 2>::eye(4, &device)
                    .unsqueeze::<3>()
                    .repeat_dim(0, 3);
                let (y_rows, rows) = mlp.forward_with_jacobian(x.clone(), eye);
                let (y, norm) = mlp.forward_with_jacobian_fro2(x);
                y.into_data()
                    .assert_approx_eq::<f32>(&y_rows.into_data(), Default::default());
                let by_rows: Vec<f32> = rows.powi_scalar(2).sum_dim(2).sum_dim(1).into_data().to_vec().unwrap();
                let ours: Vec<f32> = norm.into_data().to_vec().unwrap();
                assert_eq!(ours.len(), 3);
                for (a, b) in ours.iter().zip(&by_rows) {
                    assert!(a.is_finite() && *a >= 0.0);
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{hidden:?} {act:?}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_zero_hidden_width() {
        let err = MlpConfig::new(5, vec![4, 0], 2).validate().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Zero {
                name: "hidden layer width",
                value: 0
            }
        ));
    }
}
