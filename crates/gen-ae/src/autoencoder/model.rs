use burn::module::Module;
use burn::tensor::{Tensor, activation::sigmoid, backend::Backend};
use gen_core::loss::{BceWithLogitsLoss, MseLoss, Reduction};
use gen_core::nn::{Activation, ConvDecoder, ConvEncoder, Mlp};
use gen_core::{Batch, Decoder, Encoder, LossTerms, Objective, Stage};

use super::ReconLoss;

/// The encoder half: an MLP or a convolutional stack, ending in a linear code.
// One value per model: the size difference costs nothing, and burn's derive does not box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AeEncoder<B: Backend> {
    /// Dense layers.
    Mlp(Mlp<B>),
    /// Convolutions then a dense layer.
    Conv(ConvEncoder<B>),
}

/// The decoder half, producing pre-activations (logits for [`ReconLoss::Bce`]).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AeDecoder<B: Backend> {
    /// Dense layers.
    Mlp(Mlp<B>),
    /// A dense layer then transposed convolutions.
    Conv(ConvDecoder<B>),
}

/// An undercomplete autoencoder.
///
/// Built by [`AutoencoderConfig`](super::AutoencoderConfig). All methods take flat batches.
#[derive(Module, Debug)]
pub struct Autoencoder<B: Backend> {
    encoder: AeEncoder<B>,
    decoder: AeDecoder<B>,
    d_latent: usize,
    output_activation: Activation,
    loss: ReconLoss,
}

impl<B: Backend> Autoencoder<B> {
    pub(crate) fn new(
        encoder: AeEncoder<B>,
        decoder: AeDecoder<B>,
        d_latent: usize,
        output_activation: Activation,
        loss: ReconLoss,
    ) -> Self {
        Self {
            encoder,
            decoder,
            d_latent,
            output_activation,
            loss,
        }
    }

    /// The decoder's pre-activation output.
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`
    /// - output: `[batch, d_input]`
    pub fn decode_logits(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.decoder {
            AeDecoder::Mlp(m) => m.forward(z),
            AeDecoder::Conv(c) => c.forward(z),
        }
    }

    /// Encodes and decodes.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch, d_input]`
    pub fn reconstruct(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.decode(self.encode(x))
    }

    /// Reconstruction error of each sample: the sum over features of the squared error.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[batch]`
    pub fn squared_error_per_sample(&self, x: Tensor<B, 2>) -> Tensor<B, 1> {
        let r = self.reconstruct(x.clone());
        gen_core::loss::per_sample(MseLoss.forward_no_reduction(r, x))
    }

    /// The reconstruction loss of `x` (mean over elements), as minimised in training.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`
    /// - output: `[1]`
    pub fn loss(&self, x: Tensor<B, 2>) -> Tensor<B, 1> {
        let logits = self.decode_logits(self.encode(x.clone()));
        match self.loss {
            ReconLoss::Mse => MseLoss.forward(self.output_activation.forward(logits), x, Reduction::Mean),
            ReconLoss::Bce => BceWithLogitsLoss.forward(logits, x, Reduction::Mean),
        }
    }
}

impl<B: Backend> Encoder<B> for Autoencoder<B> {
    fn encode(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.encoder {
            AeEncoder::Mlp(m) => m.forward(x),
            AeEncoder::Conv(c) => c.forward(x),
        }
    }

    fn d_latent(&self) -> usize {
        self.d_latent
    }
}

impl<B: Backend> Decoder<B> for Autoencoder<B> {
    fn decode(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let logits = self.decode_logits(z);
        match self.loss {
            ReconLoss::Mse => self.output_activation.forward(logits),
            ReconLoss::Bce => sigmoid(logits),
        }
    }
}

impl<B: Backend> Objective<B> for Autoencoder<B> {
    fn objective(&self, batch: &Batch<B>, _stage: Stage) -> LossTerms<B> {
        LossTerms::total(self.loss(batch.x.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Architecture, AutoencoderConfig};
    use super::*;
    use crate::test_util::{TestAutodiffBackend, TestBackend};
    use burn::module::AutodiffModule;
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};
    use burn::tensor::Distribution;
    use gen_core::ConfigError;
    use gen_core::nn::ImageShape;

    #[test]
    fn shapes_for_mlp_and_conv() {
        let device = Default::default();
        for cfg in [
            AutoencoderConfig::mlp(64, vec![32, 16], 4),
            AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![8, 16], 4),
            AutoencoderConfig::conv(ImageShape::grey(28, 28), vec![4, 8], 6).with_loss(ReconLoss::Bce),
        ] {
            let ae = cfg.init::<TestBackend>(&device);
            let x = Tensor::<TestBackend, 2>::random([5, cfg.d_input], Distribution::Default, &device);
            let z = ae.encode(x.clone());
            assert_eq!(z.dims(), [5, cfg.d_latent]);
            let r = ae.reconstruct(x.clone());
            assert_eq!(r.dims(), [5, cfg.d_input]);
            let v: Vec<f32> = r.into_data().to_vec().unwrap();
            assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)));
            assert_eq!(ae.squared_error_per_sample(x).dims(), [5]);
        }
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = AutoencoderConfig::mlp(64, vec![32], 64);
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid(m)) if m.contains("d_latent < d_input")));
        assert!(matches!(
            AutoencoderConfig::mlp(64, vec![32], 0).validate(),
            Err(ConfigError::Zero { name: "d_latent", .. })
        ));
        assert!(matches!(
            AutoencoderConfig::mlp(64, vec![0], 4).validate(),
            Err(ConfigError::Zero { .. })
        ));
        let no_image = AutoencoderConfig {
            image: None,
            ..AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![4], 3)
        };
        assert!(no_image.validate().unwrap_err().to_string().contains("image shape"));
        let odd = AutoencoderConfig::conv(ImageShape::grey(28, 28), vec![4, 4, 4], 3);
        assert!(odd.validate().unwrap_err().to_string().contains("divisible by 8"));
        assert!(
            AutoencoderConfig::mlp(64, vec![32], 64)
                .try_init::<TestBackend>(&Default::default())
                .is_err()
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![8, 16], 4).with_loss(ReconLoss::Bce);
        let s = serde_json::to_string(&cfg).unwrap();
        assert!(s.contains("\"kind\":\"conv\""), "{s}");
        assert_eq!(serde_json::from_str::<AutoencoderConfig>(&s).unwrap(), cfg);
        let _ = Architecture::Mlp { hidden: vec![] };
    }

    #[test]
    fn a_few_adam_steps_lower_the_loss() {
        let device = Default::default();
        for cfg in [
            AutoencoderConfig::mlp(16, vec![32], 4),
            AutoencoderConfig::conv(ImageShape::grey(4, 4), vec![8], 4),
        ] {
            let mut ae = cfg.init::<TestAutodiffBackend>(&device);
            let x = Tensor::<TestAutodiffBackend, 2>::random([32, 16], Distribution::Default, &device);
            let mut optim = AdamConfig::new().init();
            let before = ae.valid().loss(x.clone().inner()).into_scalar();
            for _ in 0..60 {
                let grads = GradientsParams::from_grads(ae.loss(x.clone()).backward(), &ae);
                ae = optim.step(1e-2, ae, grads);
            }
            let after = ae.valid().loss(x.inner()).into_scalar();
            assert!(after < 0.7 * before, "{before} -> {after}");
        }
    }

    #[test]
    fn models_and_configs_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Autoencoder<TestBackend>>();
        check::<AutoencoderConfig>();
    }
}
