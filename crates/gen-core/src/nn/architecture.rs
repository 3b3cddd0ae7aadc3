//! The shape of an encoder and its mirror-image decoder, shared by the autoencoders (gen-ae)
//! and the variational autoencoders (gen-vae): both build their MLP or convolutional halves
//! from one [`Architecture`] through [`Architecture::halves`].

use serde::{Deserialize, Serialize};

use super::{Activation, ConvDecoderConfig, ConvEncoderConfig, ImageShape, MlpConfig};
use crate::ConfigError;

/// The shape of encoder and decoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    /// Dense layers: `d_input → hidden… → code`, and the mirror image back.
    Mlp {
        /// Hidden widths of the encoder, input side first; the decoder uses them reversed.
        hidden: Vec<usize>,
    },
    /// Stride-2 convolutions (each halving height and width), a dense layer to the code, and
    /// the mirror image back with transposed convolutions. Needs the input's image shape.
    Conv {
        /// Channels of the encoder's convolutions, input side first.
        channels: Vec<usize>,
    },
}

/// What the two halves are built for: the data, the code, and a condition both halves see.
#[derive(Debug, Clone, PartialEq)]
pub struct HalvesSpec {
    /// The model, for messages: `autoencoder`, `VAE`.
    pub model: &'static str,
    /// Width of the (flattened) input.
    pub d_input: usize,
    /// The input's image shape; required for [`Architecture::Conv`].
    pub image: Option<ImageShape>,
    /// Width of the encoder's output (the code, or a VAE's μ and ln σ² side by side).
    pub d_encoded: usize,
    /// Width of the code the decoder starts from.
    pub d_latent: usize,
    /// Width of a condition (a one-hot class) given to both halves: appended to the MLP
    /// encoder's input and to the decoder's code, and as constant planes to the conv encoder's
    /// input channels (0: none).
    pub d_condition: usize,
    /// Hidden non-linearity.
    pub activation: Activation,
    /// Non-linearity on the encoder's output.
    pub encoded_activation: Activation,
}

/// The configurations of an encoder and its mirror decoder, of one kind. The decoder's output is
/// linear (logits or values): the model applies its own output activation.
#[derive(Debug, Clone, PartialEq)]
pub enum Halves {
    /// Dense layers.
    Mlp {
        /// `d_input (+ condition) → hidden… → d_encoded`.
        encoder: MlpConfig,
        /// `d_latent (+ condition) → hidden reversed… → d_input`.
        decoder: MlpConfig,
    },
    /// Stride-2 convolutions and a dense layer, and a dense layer and transposed convolutions.
    Conv {
        /// The encoder, over the image's channels (and the condition's planes).
        encoder: ConvEncoderConfig,
        /// The decoder, from the code (and the condition).
        decoder: ConvDecoderConfig,
    },
}

impl Halves {
    /// Rejects zero widths and stacks that do not fit the image.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Halves::Mlp { encoder, decoder } => {
                encoder.validate()?;
                decoder.validate()
            }
            Halves::Conv { encoder, decoder } => {
                encoder.validate()?;
                decoder.validate()
            }
        }
    }
}

impl Architecture {
    /// The encoder and decoder configurations of this shape for `spec`, not validated yet (see
    /// [`Halves::validate`]).
    ///
    /// # Errors
    /// A conv architecture without an image shape, or with one that does not have
    /// `spec.d_input` values.
    pub fn halves(&self, spec: &HalvesSpec) -> Result<Halves, ConfigError> {
        match self {
            Architecture::Mlp { hidden } => Ok(Halves::Mlp {
                encoder: MlpConfig::new(spec.d_input + spec.d_condition, hidden.clone(), spec.d_encoded)
                    .with_activation(spec.activation)
                    .with_output_activation(spec.encoded_activation),
                decoder: MlpConfig::new(
                    spec.d_latent + spec.d_condition,
                    hidden.iter().rev().copied().collect(),
                    spec.d_input,
                )
                .with_activation(spec.activation),
            }),
            Architecture::Conv { channels } => {
                let image = spec.image.ok_or_else(|| {
                    ConfigError::Invalid(format!("a convolutional {} needs the input's image shape", spec.model))
                })?;
                if image.numel() != spec.d_input {
                    return Err(ConfigError::Invalid(format!(
                        "image shape {}x{}x{} does not have d_input = {} values",
                        image.channels, image.height, image.width, spec.d_input
                    )));
                }
                let encoder = ConvEncoderConfig {
                    image: ImageShape {
                        channels: image.channels + spec.d_condition,
                        ..image
                    },
                    channels: channels.clone(),
                    d_output: spec.d_encoded,
                    activation: spec.activation,
                    output_activation: spec.encoded_activation,
                };
                let decoder = ConvDecoderConfig {
                    d_input: spec.d_latent + spec.d_condition,
                    image,
                    channels: channels.iter().rev().copied().collect(),
                    activation: spec.activation,
                    output_activation: Activation::Identity,
                };
                Ok(Halves::Conv { encoder, decoder })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: Option<ImageShape>, d_condition: usize) -> HalvesSpec {
        HalvesSpec {
            model: "VAE",
            d_input: 64,
            image,
            d_encoded: 8,
            d_latent: 4,
            d_condition,
            activation: Activation::Relu,
            encoded_activation: Activation::Identity,
        }
    }

    /// The halves mirror each other, the condition widens both inputs, and the stored form is
    /// the one the run folders hold (`{"kind": "mlp", "hidden": [...]}`).
    #[test]
    fn halves_mirror_and_take_the_condition() {
        let mlp = Architecture::Mlp { hidden: vec![32, 16] };
        assert_eq!(
            mlp.halves(&spec(None, 10)).unwrap(),
            Halves::Mlp {
                encoder: MlpConfig::new(74, vec![32, 16], 8).with_activation(Activation::Relu),
                decoder: MlpConfig::new(14, vec![16, 32], 64).with_activation(Activation::Relu),
            }
        );
        let conv = Architecture::Conv { channels: vec![4, 8] };
        let halves = conv.halves(&spec(Some(ImageShape::grey(8, 8)), 10)).unwrap();
        halves.validate().unwrap();
        let Halves::Conv { encoder: e, decoder: d } = halves else {
            panic!("conv halves");
        };
        assert_eq!((e.image.channels, e.channels, e.d_output), (11, vec![4, 8], 8));
        assert_eq!(
            (d.d_input, d.channels, d.image),
            (14, vec![8, 4], ImageShape::grey(8, 8))
        );
        let e = conv.halves(&spec(None, 0)).unwrap_err();
        assert!(e.to_string().contains("convolutional VAE needs"), "{e}");
        assert!(conv.halves(&spec(Some(ImageShape::grey(4, 4)), 0)).is_err());
        let json = serde_json::to_value(&mlp).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "mlp", "hidden": [32, 16]}));
        assert_eq!(serde_json::from_value::<Architecture>(json).unwrap(), mlp);
    }
}
