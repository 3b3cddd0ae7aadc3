use burn::module::Module;
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
            h = layer.forward(h);
            if i < last {
                h = self.activation.forward(h);
                hidden.push(h.clone());
            } else {
                h = self.output_activation.forward(h);
            }
        }
        (h, hidden)
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
