use burn::tensor::{Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

/// An element-wise non-linearity, chosen by name in configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0).
    #[default]
    Relu,
    /// max(x, 0.2 x).
    LeakyRelu,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// ln(1 + exp(x)); smooth, so second derivatives exist everywhere.
    Softplus,
    /// x; no non-linearity.
    Identity,
}

impl Activation {
    /// Every activation, in declaration order (for tests and tables over all of them).
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Identity,
    ];

    /// Applies the activation element-wise.
    pub fn forward<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::LeakyRelu => activation::leaky_relu(x, 0.2),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Softplus => activation::softplus(x, 1.0),
            Activation::Identity => x,
        }
    }

    /// The derivative of the activation, element-wise, from its input `z` and output `y = f(z)`
    /// (whichever is cheaper is used). Built from differentiable tensor operations, so a penalty
    /// on a Jacobian that uses it can itself be trained by backpropagation.
    ///
    /// At the kink of ReLU and leaky ReLU (z = 0) the derivative is taken from the left.
    ///
    /// # Shapes
    /// - `z`, `y`: any shape, the same
    /// - output: same
    pub fn derivative<B: Backend, const D: usize>(self, z: Tensor<B, D>, y: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::Relu => z.greater_elem(0.0).float(),
            Activation::LeakyRelu => z.greater_elem(0.0).float().mul_scalar(0.8).add_scalar(0.2),
            Activation::Sigmoid => y.clone() * y.neg().add_scalar(1.0),
            Activation::Tanh => y.powi_scalar(2).neg().add_scalar(1.0),
            Activation::Softplus => activation::sigmoid(z),
            Activation::Identity => z.ones_like(),
        }
    }

    /// The derivative of the activation at `z`, written as a function of its output `y = f(z)`
    /// alone: `y(1 − y)` for the sigmoid, `1 − y²` for tanh, `1 − e^{−y}` for softplus, and for
    /// ReLU and leaky ReLU the slope on the side of zero that `y` is on (from the left at 0, as
    /// [`Self::derivative`]). Differentiable in `y`.
    ///
    /// # Shapes
    /// - `y`: any shape; output: the same
    pub fn derivative_from_output<B: Backend, const D: usize>(self, y: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Activation::Relu => y.greater_elem(0.0).float(),
            Activation::LeakyRelu => y.greater_elem(0.0).float().mul_scalar(0.8).add_scalar(0.2),
            Activation::Sigmoid => y.clone() * y.neg().add_scalar(1.0),
            Activation::Tanh => y.powi_scalar(2).neg().add_scalar(1.0),
            Activation::Softplus => y.neg().exp().neg().add_scalar(1.0),
            Activation::Identity => y.ones_like(),
        }
    }

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Identity => "identity",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "relu" => Activation::Relu,
            "leaky_relu" | "leaky-relu" => Activation::LeakyRelu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softplus" => Activation::Softplus,
            "identity" | "none" | "linear" => Activation::Identity,
            other => {
                return Err(format!(
                    "unknown activation {other:?}; expected relu, leaky_relu, sigmoid, tanh, softplus or identity"
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;
    use burn::tensor::TensorData;

    #[test]
    fn activations_match_their_formulas() {
        let device = Default::default();
        let x = Tensor::<TestBackend, 1>::from_floats([-2.0, 0.0, 1.5], &device);
        let expect = |a: Activation, v: [f32; 3]| {
            a.forward(x.clone())
                .into_data()
                .assert_approx_eq::<f32>(&TensorData::from(v), Default::default());
        };
        expect(Activation::Relu, [0.0, 0.0, 1.5]);
        expect(Activation::LeakyRelu, [-0.4, 0.0, 1.5]);
        expect(Activation::Sigmoid, [0.119_202_92, 0.5, 0.817_574_5]);
        expect(Activation::Tanh, [-0.964_027_6, 0.0, 0.905_148_3]);
        expect(
            Activation::Softplus,
            [0.126_928_01, std::f32::consts::LN_2, 1.701_413_9],
        );
        expect(Activation::Identity, [-2.0, 0.0, 1.5]);
    }

    /// The derivative written from the output equals the one from the input, for every
    /// activation, on both sides of zero and at zero (the kinks' left slope).
    #[test]
    fn derivative_from_output_matches_derivative() {
        let device = Default::default();
        let z = Tensor::<TestBackend, 1>::from_floats([-9.0, -2.0, -0.7, 0.0, 0.3, 1.5, 9.0], &device);
        for a in Activation::ALL {
            let y = a.forward(z.clone());
            a.derivative_from_output(y.clone()).into_data().assert_approx_eq::<f32>(
                &a.derivative(z.clone(), y).into_data(),
                burn::tensor::Tolerance::absolute(1e-6),
            );
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let device = Default::default();
        // Points away from the kinks of relu and leaky relu.
        let pts = [-2.0f32, -0.7, 0.3, 1.5];
        let x = Tensor::<TestBackend, 1>::from_floats(pts, &device);
        let h = 1e-2f32;
        for a in Activation::ALL {
            let d: Vec<f32> = a
                .derivative(x.clone(), a.forward(x.clone()))
                .into_data()
                .to_vec()
                .unwrap();
            let up: Vec<f32> = a.forward(x.clone().add_scalar(h)).into_data().to_vec().unwrap();
            let down: Vec<f32> = a.forward(x.clone().sub_scalar(h)).into_data().to_vec().unwrap();
            for i in 0..pts.len() {
                let fd = (up[i] - down[i]) / (2.0 * h);
                assert!((d[i] - fd).abs() < 1e-3, "{a:?} at {}: {} vs {fd}", pts[i], d[i]);
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>().unwrap(), a);
        }
        assert!("swish".parse::<Activation>().is_err());
    }
}
