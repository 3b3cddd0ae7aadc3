use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
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
    image: [usize; 3],
}

impl<B: Backend> ConvEncoder<B> {
    /// Encodes a batch of flattened images.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels * height * width]`
    /// - output: `[batch, d_output]` (no activation on the output)
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, _] = x.dims();
        let [c, h, w] = self.image;
        let mut h4 = x.reshape([batch, c, h, w]); // [batch, c, h, w]
        for conv in &self.convs {
            h4 = self.activation.forward(conv.forward(h4));
        }
        self.fc.forward(h4.flatten(1, 3)) // [batch, d_output]
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
        let [batch, _] = z.dims();
        let [c0, h0, w0] = self.start;
        let mut h = self.activation.forward(self.fc.forward(z)).reshape([batch, c0, h0, w0]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            h = deconv.forward(h);
            h = if i < last {
                self.activation.forward(h)
            } else {
                self.output_activation.forward(h)
            };
        }
        h.flatten(1, 3) // [batch, channels * height * width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;

    #[test]
    fn encoder_and_decoder_shapes_for_mnist_and_digits() {
        let device = Default::default();
        for image in [ImageShape::grey(28, 28), ImageShape::grey(8, 8)] {
            let enc = ConvEncoderConfig {
                image,
                channels: vec![8, 16],
                d_output: 5,
                activation: Activation::Relu,
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
    fn rejects_sizes_the_stack_cannot_halve() {
        let cfg = ConvEncoderConfig {
            image: ImageShape::grey(28, 28),
            channels: vec![8, 16, 32],
            d_output: 5,
            activation: Activation::Relu,
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
        }
        .init::<TestBackend>(&device);
        let copy = enc.clone();
        let x = Tensor::<TestBackend, 2>::ones([2, 64], &device);
        enc.forward(x.clone())
            .into_data()
            .assert_eq(&copy.forward(x).into_data(), true);
    }
}
