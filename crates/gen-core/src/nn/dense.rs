use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use super::Activation;
use crate::ConfigError;

/// Configuration of a [`Dense`] layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseConfig {
    /// Input width.
    pub d_input: usize,
    /// Output width.
    pub d_output: usize,
}

impl DenseConfig {
    /// A layer from `d_input` to `d_output` features.
    pub fn new(d_input: usize, d_output: usize) -> Self {
        Self { d_input, d_output }
    }

    /// Rejects zero widths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("d_input", self.d_input)?;
        ConfigError::check_positive("d_output", self.d_output)
    }

    /// Builds the layer with PyTorch's default initialisation: weights and bias uniform in
    /// ±1/√d_input. The parameters are created eagerly, so the layer may be cloned at once.
    ///
    /// # Panics
    /// If [`DenseConfig::validate`] fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Dense<B> {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let bound = 1.0 / (self.d_input as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        Dense {
            weight: Param::from_tensor(Tensor::random([self.d_input, self.d_output], dist, device)),
            bias: Param::from_tensor(Tensor::random([self.d_output], dist, device)),
        }
    }
}

/// A fully connected layer `y = x W + b`, optionally followed by an activation.
///
/// On the backends registered with [`register_fast_dense`](super::register_fast_dense) (Flex and
/// ndarray in `gen`) it runs as one fused operation ([`fastdense`](super::fastdense)); elsewhere
/// it is a plain matrix product and a broadcast add. Unlike `burn::nn::Linear`, whose backward
/// pass cannot itself be differentiated in burn 0.21, the plain form works under
/// `Autodiff<Autodiff<B>>` (never registered), so second-order penalties can be taken through it.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    /// Weight matrix, `[d_input, d_output]`.
    pub weight: Param<Tensor<B, 2>>,
    /// Bias, `[d_output]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    /// Applies the layer.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_activated(x, Activation::Identity)
    }

    /// Applies the layer and `activation`, fused into one operation where the backend has it.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward_activated(&self, x: Tensor<B, 2>, activation: Activation) -> Tensor<B, 2> {
        super::fastdense::dense(x, self.weight.val(), self.bias.val(), activation)
    }

    /// Input width.
    pub fn d_input(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Output width.
    pub fn d_output(&self) -> usize {
        self.weight.dims()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend, TestBackend};
    use burn::tensor::TensorData;

    #[test]
    fn forward_is_affine() {
        let device = Default::default();
        let layer: Dense<TestBackend> = Dense {
            weight: Param::from_tensor(Tensor::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device)),
            bias: Param::from_tensor(Tensor::from_floats([0.5, -0.5], &device)),
        };
        let x = Tensor::from_floats([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]], &device);
        layer
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[-3.5, -4.5], [3.5, 3.5]]), Default::default());
        assert_eq!((layer.d_input(), layer.d_output()), (3, 2));
    }

    #[test]
    fn rejects_zero_width() {
        assert!(matches!(
            DenseConfig::new(0, 3).validate(),
            Err(ConfigError::Zero { name: "d_input", .. })
        ));
        assert!(matches!(
            DenseConfig::new(3, 0).validate(),
            Err(ConfigError::Zero { name: "d_output", .. })
        ));
    }

    /// The reason this layer exists: a gradient of a gradient through it must work. With
    /// `f(x) = Σ tanh(xW + b)²` and `g = ∂f/∂x` taken with a graph, the derivative of `Σ g²` with
    /// respect to `x` and to `W` must exist, and the one for `x` must match finite differences.
    #[test]
    fn second_derivative_through_dense() {
        type Inner = TestAutodiffBackend;
        type Outer = burn::backend::Autodiff<Inner>;
        let device = Default::default();
        let w0 = [[0.5f32, -0.3], [0.2, 0.8], [-0.6, 0.1]];
        let b0 = [0.1f32, -0.2];
        let x0 = [0.3f32, -0.2, 0.1];
        let penalty = |x: [f32; 3], track: bool| -> (f32, Option<Vec<f32>>, bool) {
            let w_in = Tensor::<Inner, 2>::from_floats(w0, &device).require_grad();
            let x_in = Tensor::<Inner, 2>::from_floats([x], &device).require_grad();
            let layer: Dense<Outer> = Dense {
                weight: Param::from_tensor(Tensor::from_inner(w_in.clone())),
                bias: Param::from_tensor(Tensor::from_floats(b0, &device)),
            };
            let x_out = Tensor::<Outer, 2>::from_inner(x_in.clone()).require_grad();
            let y = burn::tensor::activation::tanh(layer.forward(x_out.clone()));
            let grads = (y.clone() * y).sum().backward();
            let gx = x_out.grad(&grads).expect("first-order gradient");
            let p = (gx.clone() * gx).sum();
            let value = p.clone().into_scalar();
            if !track {
                return (value, None, false);
            }
            let g2 = p.backward();
            let dx = x_in.grad(&g2).map(|t| t.into_data().to_vec::<f32>().unwrap());
            (value, dx, w_in.grad(&g2).is_some())
        };
        let (_, dx, reaches_w) = penalty(x0, true);
        let dx = dx.expect("second-order gradient must reach the input");
        assert!(reaches_w, "second-order gradient must reach the weights");
        let h = 1e-2;
        for i in 0..3 {
            let (mut plus, mut minus) = (x0, x0);
            plus[i] += h;
            minus[i] -= h;
            let fd = (penalty(plus, false).0 - penalty(minus, false).0) / (2.0 * h);
            assert!(
                (fd - dx[i]).abs() < 2e-3 + 1e-2 * fd.abs(),
                "x[{i}]: autodiff {} vs finite difference {fd}",
                dx[i]
            );
        }
    }

    #[test]
    fn dense_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Dense<TestBackend>>();
        check::<DenseConfig>();
    }
}
