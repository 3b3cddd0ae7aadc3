use super::fastconv::{conv_transpose2d, conv_transpose2d_module_activated, conv2d_module, conv2d_module_activated};
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use super::{Activation, Dense, DenseConfig};
use crate::ConfigError;

/// The shape of one image: channels, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Number of channels (1 for grey images).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// A one-channel image of `height` x `width` pixels.
    pub fn grey(height: usize, width: usize) -> Self {
        Self {
            channels: 1,
            height,
            width,
        }
    }

    /// Number of values in one image.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }

    fn validate_for_halvings(&self, n: usize) -> Result<(), ConfigError> {
        ConfigError::check_positive("image channels", self.channels)?;
        ConfigError::check_positive("image height", self.height)?;
        ConfigError::check_positive("image width", self.width)?;
        let f = 1usize << n;
        if n == 0 || !self.height.is_multiple_of(f) || !self.width.is_multiple_of(f) {
            return Err(ConfigError::Invalid(format!(
                "a convolutional stack of {n} stride-2 layers needs height and width divisible by {f} \
                 and at least one layer, got {}x{}",
                self.height, self.width
            )));
        }
        Ok(())
    }
}

fn identity() -> Activation {
    Activation::Identity
}

/// Configuration of a [`ConvEncoder`]: stride-2 convolutions (kernel 4, padding 1), each halving
/// height and width, then a dense layer to `d_output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvEncoderConfig {
    /// Shape of the input images.
    pub image: ImageShape,
    /// Output channels of each convolution, in order.
    pub channels: Vec<usize>,
    /// Width of the output.
    pub d_output: usize,
    /// Non-linearity after each convolution.
    pub activation: Activation,
    /// Non-linearity on the output (the code of an autoencoder); identity for a linear code.
    #[serde(default = "identity")]
    pub output_activation: Activation,
}

impl ConvEncoderConfig {
    /// Rejects empty stacks, zero sizes and images that the stack cannot halve evenly.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.image.validate_for_halvings(self.channels.len())?;
        for &c in &self.channels {
            ConfigError::check_positive("conv channels", c)?;
        }
        ConfigError::check_positive("d_output", self.d_output)
    }

    /// Builds the encoder, with every parameter created eagerly.
    ///
    /// # Panics
    /// If [`ConvEncoderConfig::validate`] fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvEncoder<B> {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let mut c_in = self.image.channels;
        let convs = self
            .channels
            .iter()
            .map(|&c_out| {
                let conv = Conv2dConfig::new([c_in, c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device);
                c_in = c_out;
                conv
            })
            .collect();
        let f = 1 << self.channels.len();
        let d_flat = c_in * (self.image.height / f) * (self.image.width / f);
        let encoder = ConvEncoder {
            convs,
            fc: DenseConfig::new(d_flat, self.d_output).init(device),
            activation: self.activation,
            output_activation: self.output_activation,
            image: [self.image.channels, self.image.height, self.image.width],
        };
        super::materialize(&encoder);
        encoder
    }
}

/// Stride-2 convolutions followed by a dense layer; takes flattened images.
#[derive(Module, Debug)]
pub struct ConvEncoder<B: Backend> {
    convs: Vec<Conv2d<B>>,
    fc: Dense<B>,
    activation: Activation,
    output_activation: Activation,
    image: [usize; 3],
}

impl<B: Backend> ConvEncoder<B> {
    /// Encodes a batch of flattened images.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels * height * width]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, _] = x.dims();
        let [c, h, w] = self.image;
        let mut h4 = x.reshape([batch, c, h, w]); // [batch, c, h, w]
        for conv in &self.convs {
            h4 = conv2d_module_activated(conv, h4, self.activation);
        }
        self.fc.forward_activated(h4.flatten(1, 3), self.output_activation) // [batch, d_output]
    }

    /// Encodes and propagates `seeds` backwards through the encoder, giving the
    /// vector–Jacobian products `vᵀ J` of the output with respect to the (flattened) input; see
    /// [`Mlp::forward_with_jacobian`](super::Mlp::forward_with_jacobian). The transpose of each
    /// stride-2 convolution is the transposed convolution with the same weights, so the
    /// propagation stays first-order differentiable.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels * height * width]`
    /// - `seeds`: `[batch, k, d_output]`
    /// - output: `([batch, d_output], [batch, k, channels * height * width])`
    pub fn forward_with_jacobian(&self, x: Tensor<B, 2>, seeds: Tensor<B, 3>) -> (Tensor<B, 2>, Tensor<B, 3>) {
        let [batch, k, d_out] = seeds.dims();
        let [c, h, w] = self.image;
        let mut h4 = x.reshape([batch, c, h, w]);
        let mut derivatives = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            let z = conv2d_module(conv, h4);
            h4 = self.activation.forward(z.clone());
            derivatives.push(self.activation.derivative(z, h4.clone())); // [batch, c_l, h_l, w_l]
        }
        let [_, c_last, h_last, w_last] = h4.dims();
        let z = self.fc.forward(h4.flatten(1, 3));
        let out = self.output_activation.forward(z.clone());
        let g = seeds * self.output_activation.derivative(z, out.clone()).unsqueeze_dim::<3>(1);
        let mut g4 = g
            .reshape([batch * k, d_out])
            .matmul(self.fc.weight.val().transpose())
            .reshape([batch * k, c_last, h_last, w_last]);
        let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        for (conv, d) in self.convs.iter().zip(derivatives).rev() {
            let [_, cl, hl, wl] = d.dims();
            g4 = (g4.reshape([batch, k, cl, hl, wl]) * d.unsqueeze_dim::<5>(1)).reshape([batch * k, cl, hl, wl]);
            g4 = conv_transpose2d(g4, conv.weight.val(), None, options.clone());
        }
        (out, g4.reshape([batch, k, c * h * w]))
    }
}

/// Configuration of a [`ConvDecoder`]: a dense layer to a small feature map, then stride-2
/// transposed convolutions (kernel 4, padding 1), each doubling height and width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvDecoderConfig {
    /// Width of the input code.
    pub d_input: usize,
    /// Shape of the output images.
    pub image: ImageShape,
    /// Input channels of each transposed convolution, in order (the mirror of the encoder's).
    pub channels: Vec<usize>,
    /// Non-linearity after the dense layer and each inner transposed convolution.
    pub activation: Activation,
    /// Non-linearity on the output pixels.
    pub output_activation: Activation,
}

impl ConvDecoderConfig {
    /// Rejects empty stacks, zero sizes and images that the stack cannot reach by doubling.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.image.validate_for_halvings(self.channels.len())?;
        for &c in &self.channels {
            ConfigError::check_positive("conv channels", c)?;
        }
        ConfigError::check_positive("d_input", self.d_input)
    }

    /// Builds the decoder, with every parameter created eagerly.
    ///
    /// # Panics
    /// If [`ConvDecoderConfig::validate`] fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvDecoder<B> {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let f = 1 << self.channels.len();
        let (h0, w0) = (self.image.height / f, self.image.width / f);
        let c0 = self.channels[0];
        let outs = self
            .channels
            .iter()
            .skip(1)
            .copied()
            .chain(std::iter::once(self.image.channels));
        let deconvs = self
            .channels
            .iter()
            .zip(outs)
            .map(|(&c_in, c_out)| {
                ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device)
            })
            .collect();
        let decoder = ConvDecoder {
            fc: DenseConfig::new(self.d_input, c0 * h0 * w0).init(device),
            deconvs,
            activation: self.activation,
            output_activation: self.output_activation,
            start: [c0, h0, w0],
        };
        super::materialize(&decoder);
        decoder
    }
}

/// A dense layer to a feature map, then stride-2 transposed convolutions; returns flattened images.
#[derive(Module, Debug)]
pub struct ConvDecoder<B: Backend> {
    fc: Dense<B>,
    deconvs: Vec<ConvTranspose2d<B>>,
    activation: Activation,
    output_activation: Activation,
    start: [usize; 3],
}

impl<B: Backend> ConvDecoder<B> {
    /// Decodes a batch of codes into flattened images.
    ///
    /// # Shapes
    /// - `z`: `[batch, d_input]`
    /// - output: `[batch, channels * height * width]`
    pub fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward_with(z, self.output_activation)
    }

    /// Applies the decoder and then `then` to its output, fused into the last transposed
    /// convolution where the output activation is the identity (a decoder that returns logits,
    /// whose caller applies the sigmoid), as [`Mlp::forward_then`](super::Mlp::forward_then).
    ///
    /// # Shapes
    /// As [`ConvDecoder::forward`].
    pub fn forward_then(&self, z: Tensor<B, 2>, then: Activation) -> Tensor<B, 2> {
        if self.output_activation != Activation::Identity {
            return then.forward(self.forward(z));
        }
        self.forward_with(z, then)
    }

    /// The decoder with `output` as the last layer's activation.
    fn forward_with(&self, z: Tensor<B, 2>, output: Activation) -> Tensor<B, 2> {
        let [batch, _] = z.dims();
        let [c0, h0, w0] = self.start;
        let mut h = self
            .fc
            .forward_activated(z, self.activation)
            .reshape([batch, c0, h0, w0]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            let activation = if i < last { self.activation } else { output };
            h = conv_transpose2d_module_activated(deconv, h, activation);
        }
        h.flatten(1, 3) // [batch, channels * height * width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;

    /// `forward_then` fuses the caller's activation into a logits decoder's last layer and gives
    /// what applying it afterwards gives, with the host convolutions registered and without.
    #[test]
    fn forward_then_is_the_activation_of_the_output() {
        let _guard = crate::testing::seeded::<TestBackend>(&Default::default(), 0);
        let device = Default::default();
        let dec = ConvDecoderConfig {
            d_input: 4,
            image: ImageShape::grey(8, 8),
            channels: vec![16, 8],
            activation: Activation::Relu,
            output_activation: Activation::Identity,
        }
        .init::<TestBackend>(&device);
        let z = Tensor::<TestBackend, 2>::random([3, 4], burn::tensor::Distribution::Default, &device);
        for register in [false, true] {
            if register {
                super::super::register_fast_conv::<TestBackend>();
            }
            let want = Activation::Sigmoid.forward(dec.forward(z.clone())).into_data();
            let got = dec.forward_then(z.clone(), Activation::Sigmoid).into_data();
            got.assert_approx_eq::<f32>(&want, burn::tensor::Tolerance::absolute(1e-6));
        }
    }

    #[test]
    fn encoder_and_decoder_shapes_for_mnist_and_digits() {
        let device = Default::default();
        for image in [ImageShape::grey(28, 28), ImageShape::grey(8, 8)] {
            let enc = ConvEncoderConfig {
                image,
                channels: vec![8, 16],
                d_output: 5,
                activation: Activation::Relu,
                output_activation: Activation::Identity,
            }
            .init::<TestBackend>(&device);
            let dec = ConvDecoderConfig {
                d_input: 5,
                image,
                channels: vec![16, 8],
                activation: Activation::Relu,
                output_activation: Activation::Sigmoid,
            }
            .init::<TestBackend>(&device);
            let x = Tensor::<TestBackend, 2>::ones([3, image.numel()], &device);
            let z = enc.forward(x);
            assert_eq!(z.dims(), [3, 5]);
            assert_eq!(dec.forward(z).dims(), [3, image.numel()]);
        }
    }

    #[test]
    fn jacobian_rows_equal_autodiff_gradients() {
        use crate::test_util::TestAutodiffBackend as A;
        use burn::tensor::Distribution;
        let device = Default::default();
        let image = ImageShape {
            channels: 2,
            height: 8,
            width: 4,
        };
        let enc = ConvEncoderConfig {
            image,
            channels: vec![3, 2],
            d_output: 3,
            activation: Activation::Tanh,
            output_activation: Activation::Sigmoid,
        }
        .init::<A>(&device);
        let n = image.numel();
        let x = Tensor::<A, 2>::random([2, n], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let eye = Tensor::<A, 2>::eye(3, &device).unsqueeze::<3>().repeat_dim(0, 2);
        let (y, jac) = enc.forward_with_jacobian(x.clone(), eye);
        enc.forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&y.into_data(), Default::default());
        let jac: Vec<f32> = jac.into_data().to_vec().unwrap(); // [2, 3, n]
        for row in 0..3 {
            let out = enc.forward(x.clone()).slice([0..2, row..row + 1]).sum();
            let g: Vec<f32> = x.grad(&out.backward()).unwrap().into_data().to_vec().unwrap();
            for b in 0..2 {
                for i in 0..n {
                    let (ours, theirs) = (jac[(b * 3 + row) * n + i], g[b * n + i]);
                    assert!((ours - theirs).abs() < 1e-5, "b{b} row{row} col{i}: {ours} vs {theirs}");
                }
            }
        }
    }

    #[test]
    fn rejects_sizes_the_stack_cannot_halve() {
        let cfg = ConvEncoderConfig {
            image: ImageShape::grey(28, 28),
            channels: vec![8, 16, 32],
            d_output: 5,
            activation: Activation::Relu,
            output_activation: Activation::Identity,
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("divisible by 8"), "{err}");
    }

    #[test]
    fn clones_of_a_fresh_model_are_identical() {
        let device = Default::default();
        let enc = ConvEncoderConfig {
            image: ImageShape::grey(8, 8),
            channels: vec![4],
            d_output: 3,
            activation: Activation::Relu,
            output_activation: Activation::Identity,
        }
        .init::<TestBackend>(&device);
        let copy = enc.clone();
        let x = Tensor::<TestBackend, 2>::ones([2, 64], &device);
        enc.forward(x.clone())
            .into_data()
            .assert_eq(&copy.forward(x).into_data(), true);
    }
}
