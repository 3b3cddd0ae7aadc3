//! Super-resolution by a factor of 2 (14x14 to 28x28 on MNIST): a convolutional generator
//! trained with a content loss (L1 or MSE against the high-resolution image) plus, optionally,
//! an adversarial loss from a [`Discriminator`](crate::Discriminator) on high-resolution images.
//!
//! The low-resolution input is the 2x2 average of the high-resolution image (the degradation
//! every evaluation here uses). The generator predicts a correction to the bilinear
//! upsampling of its input:
//! conv 3x3 → ReLU → conv 3x3 → ReLU → transposed conv 4x4 stride 2 → ReLU → (conv 3x3 → ReLU)
//! × `blocks` → conv 3x3 → + bilinear(input).
//!
//! [`benchmark`] measures a trained generator against bicubic upscaling (PSNR and SSIM), and
//! [`examples`] gives the rows of a comparison figure.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::module::{avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Int, Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

use gen_core::eval::{mean_psnr, mean_ssim};
use gen_core::nn::ImageShape;
use gen_core::nn::fastconv::{conv_transpose2d_module, conv2d_module};
use gen_core::{Batch, ConfigError};
use gen_data::{Dataset, tensor_values};

use crate::config::{GanArchitecture, GanConfig};
use crate::loss::GanLoss;
use crate::train::Adversary;

/// The content loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContentLoss {
    /// Mean absolute error.
    #[default]
    L1,
    /// Mean squared error.
    Mse,
}

/// A super-resolution model and its training losses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrConfig {
    /// The high-resolution images (sides even).
    pub image: ImageShape,
    /// Channels of the generator's feature maps.
    pub channels: usize,
    /// 3x3 convolutions at full resolution before the output layer.
    pub blocks: usize,
    /// The content loss.
    pub content: ContentLoss,
    /// Weight of the adversarial loss against the content loss; 0 trains on the content alone.
    pub adversarial_weight: f64,
}

impl SrConfig {
    /// 64 channels, 2 full-resolution blocks, L1 content loss, adversarial weight 1e-2.
    pub fn new(image: ImageShape) -> Self {
        Self {
            image,
            channels: 64,
            blocks: 2,
            content: ContentLoss::L1,
            adversarial_weight: 1e-2,
        }
    }

    /// Rejects odd sides, zero channels, and a negative or non-finite adversarial weight.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("channels", self.channels)?;
        if self.image.height < 2
            || self.image.width < 2
            || !self.image.height.is_multiple_of(2)
            || !self.image.width.is_multiple_of(2)
        {
            return Err(ConfigError::Invalid(format!(
                "2x super-resolution needs even image sides, got {}x{}",
                self.image.height, self.image.width
            )));
        }
        if !(self.adversarial_weight.is_finite() && self.adversarial_weight >= 0.0) {
            return Err(ConfigError::Invalid(format!(
                "the adversarial weight must be finite and not negative, got {}",
                self.adversarial_weight
            )));
        }
        Ok(())
    }

    /// The low-resolution image shape.
    pub fn low_res(&self) -> ImageShape {
        ImageShape {
            channels: self.image.channels,
            height: self.image.height / 2,
            width: self.image.width / 2,
        }
    }

    /// The discriminator's configuration (DCGAN 64-128, spectral norm, hinge loss) for the
    /// adversarial term, as the GAN trainer takes it.
    pub fn discriminator(&self) -> GanConfig {
        GanConfig {
            image: self.image,
            d_latent: 1,
            architecture: GanArchitecture::Dcgan {
                channels: vec![64, 128],
                batch_norm: false,
            },
            n_classes: None,
            loss: GanLoss::Hinge,
            spectral_norm: true,
            n_critic: 1,
            lr_discriminator: 2e-4,
            ema: None,
            augment: None,
            real_shift: 0,
            source_conditioned: false,
        }
    }

    /// Builds the generator.
    ///
    /// # Errors
    /// If [`SrConfig::validate`] fails.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<SrGenerator<B>, ConfigError> {
        self.validate()?;
        let c = self.channels;
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let g = SrGenerator {
            head: vec![conv(self.image.channels, c), conv(c, c)],
            up: ConvTranspose2dConfig::new([c, c], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device),
            body: (0..self.blocks).map(|_| conv(c, c)).collect(),
            tail: conv(c, self.image.channels),
            image: [self.image.channels, self.image.height, self.image.width],
            content: self.content,
            adversarial_weight: self.adversarial_weight,
        };
        gen_core::nn::materialize(&g);
        Ok(g)
    }
}

/// The super-resolution generator (see the module documentation).
#[derive(Module, Debug)]
pub struct SrGenerator<B: Backend> {
    head: Vec<Conv2d<B>>,
    up: ConvTranspose2d<B>,
    body: Vec<Conv2d<B>>,
    tail: Conv2d<B>,
    image: [usize; 3],
    content: ContentLoss,
    adversarial_weight: f64,
}

/// The 2x2 average of each image: the low-resolution input.
///
/// # Shapes
/// - `x`: `[batch, c * h * w]`; output `[batch, c * h/2 * w/2]`
pub fn downsample<B: Backend>(x: Tensor<B, 2>, image: ImageShape) -> Tensor<B, 2> {
    let [n, _] = x.dims();
    let x = x.reshape([n, image.channels, image.height, image.width]);
    avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false).flatten(1, 3)
}

/// Resizes each image of `x` (of shape `from`) to `to` by interpolation (half-pixel centres).
///
/// # Shapes
/// - `x`: `[batch, c * from.h * from.w]`; output `[batch, c * to.h * to.w]`
pub fn resize<B: Backend>(x: Tensor<B, 2>, from: ImageShape, to: [usize; 2], mode: InterpolateMode) -> Tensor<B, 2> {
    let [n, _] = x.dims();
    let x = x.reshape([n, from.channels, from.height, from.width]);
    interpolate(x, to, InterpolateOptions::new(mode).with_align_corners(false)).flatten(1, 3)
}

/// The bicubic upsampling baseline by a factor of 2, clamped to [0, 1].
pub fn bicubic<B: Backend>(low: Tensor<B, 2>, low_shape: ImageShape) -> Tensor<B, 2> {
    resize(
        low,
        low_shape,
        [low_shape.height * 2, low_shape.width * 2],
        InterpolateMode::Bicubic,
    )
    .clamp(0.0, 1.0)
}

impl<B: Backend> SrGenerator<B> {
    fn low_shape(&self) -> ImageShape {
        ImageShape {
            channels: self.image[0],
            height: self.image[1] / 2,
            width: self.image[2] / 2,
        }
    }

    /// Upscales low-resolution images by 2 (values not clamped in training; see
    /// [`SrGenerator::upscale`]).
    ///
    /// # Shapes
    /// - `low`: `[batch, c * h/2 * w/2]`; output `[batch, c * h * w]`
    pub fn forward(&self, low: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, _] = low.dims();
        let ls = self.low_shape();
        let [c, h, w] = self.image;
        let skip = resize(low.clone(), ls, [h, w], InterpolateMode::Bilinear);
        let mut t = low.reshape([n, ls.channels, ls.height, ls.width]);
        for conv in &self.head {
            t = activation::relu(conv2d_module(conv, t));
        }
        t = activation::relu(conv_transpose2d_module(&self.up, t));
        for conv in &self.body {
            t = activation::relu(conv2d_module(conv, t));
        }
        let out = conv2d_module(&self.tail, t).reshape([n, c * h * w]);
        out + skip
    }

    /// Upscaled images clamped to [0, 1], for use.
    pub fn upscale(&self, low: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(low).clamp(0.0, 1.0)
    }

    /// The high-resolution image shape.
    pub fn image(&self) -> ImageShape {
        ImageShape {
            channels: self.image[0],
            height: self.image[1],
            width: self.image[2],
        }
    }
}

impl<B: Backend> Adversary<B> for SrGenerator<B> {
    fn fakes(&self, batch: &Batch<B>) -> (Tensor<B, 2>, Option<Tensor<B, 1, Int>>) {
        (self.forward(downsample(batch.x.clone(), self.image())), None)
    }

    fn content_loss(&self, fakes: Tensor<B, 2>, batch: &Batch<B>) -> Option<Tensor<B, 1>> {
        let diff = fakes - batch.x.clone();
        Some(match self.content {
            ContentLoss::L1 => diff.abs().mean(),
            ContentLoss::Mse => diff.powi_scalar(2).mean(),
        })
    }

    fn adversarial_weight(&self) -> f64 {
        self.adversarial_weight
    }
}

/// Mean PSNR and SSIM (data range 1) of upscaled images against the originals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SrScores {
    /// Mean PSNR, dB.
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
}

fn scores(clean: &[f32], other: &[f32], shape: ImageShape) -> SrScores {
    SrScores {
        psnr: mean_psnr(clean, other, shape.numel(), 1.0),
        ssim: mean_ssim(clean, other, shape.height, shape.width, 1.0),
    }
}

/// `g`'s 2x upscaling of every image of `data` (each first averaged down by 2x2 blocks),
/// row-major.
///
/// # Errors
/// If the output cannot be read back.
pub fn upscale_all<B: Backend>(g: &SrGenerator<B>, data: &Dataset, device: &B::Device) -> crate::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(data.features().len());
    for start in (0..data.len()).step_by(500) {
        let end = (start + 500).min(data.len());
        let low = downsample(data.rows_tensor::<B>(start..end, device), g.image());
        out.extend(tensor_values(g.upscale(low))?);
    }
    Ok(out)
}

/// Bicubic 2x upscaling of every image of `data` (each first averaged down by 2x2 blocks): the
/// classical baseline.
///
/// # Errors
/// If the output cannot be read back.
pub fn bicubic_all<B: Backend>(data: &Dataset, shape: ImageShape, device: &B::Device) -> crate::Result<Vec<f32>> {
    let low_shape = ImageShape {
        channels: shape.channels,
        height: shape.height / 2,
        width: shape.width / 2,
    };
    let mut out = Vec::with_capacity(data.features().len());
    for start in (0..data.len()).step_by(500) {
        let end = (start + 500).min(data.len());
        let low = downsample(data.rows_tensor::<B>(start..end, device), shape);
        out.extend(tensor_values(bicubic(low, low_shape))?);
    }
    Ok(out)
}

/// `g`'s mean PSNR and SSIM on `data` (each image averaged down by 2x2 blocks, upscaled 2x,
/// and compared with the original).
///
/// # Errors
/// If the output cannot be read back.
pub fn sr_scores<B: Backend>(g: &SrGenerator<B>, data: &Dataset, device: &B::Device) -> crate::Result<SrScores> {
    Ok(scores(data.features(), &upscale_all(g, data, device)?, g.image()))
}

/// [`benchmark`]'s report.
#[derive(Debug, Clone, Serialize)]
pub struct SrReport {
    /// The data set's name, as the caller gave it.
    pub dataset: String,
    /// Test images.
    pub n_test: usize,
    /// The model's scores.
    pub model: SrScores,
    /// Bicubic upscaling's scores.
    pub bicubic: SrScores,
    /// Another model's name and scores, when one was compared.
    pub compared: Option<(String, SrScores)>,
    /// The model's PSNR over bicubic's, dB.
    pub gain_over_bicubic_db: f64,
}

/// Super-resolution against bicubic on `test`: each image averaged down by 2x2 blocks, upscaled
/// 2x by the model, by bicubic interpolation and by `other` (a named second model, such as the
/// content-loss-only one), and scored against the original.
///
/// # Errors
/// Test data without images, a second model of another image size, outputs that cannot be read.
pub fn benchmark<B: Backend>(
    dataset: &str,
    g: &SrGenerator<B>,
    other: Option<(&str, &SrGenerator<B>)>,
    test: &Dataset,
    device: &B::Device,
) -> crate::Result<SrReport> {
    let Some(shape) = test.image_shape() else {
        return Err(crate::GanError::Invalid(format!(
            "super-resolution needs images; {} has none",
            test.name()
        )));
    };
    if let Some((name, o)) = other
        && o.image() != g.image()
    {
        return Err(crate::GanError::Invalid(format!(
            "{name} upscales to {}x{} images, the model to {}x{}",
            o.image().height,
            o.image().width,
            g.image().height,
            g.image().width
        )));
    }
    let model = sr_scores(g, test, device)?;
    let base = scores(test.features(), &bicubic_all::<B>(test, shape, device)?, shape);
    let compared = match other {
        Some((name, o)) => Some((name.to_string(), sr_scores(o, test, device)?)),
        None => None,
    };
    Ok(SrReport {
        dataset: dataset.to_string(),
        n_test: test.len(),
        model,
        bicubic: base,
        gain_over_bicubic_db: model.psnr - base.psnr,
        compared,
    })
}

/// Up to eight images of `data` for a figure, one row each: the low-resolution input
/// (nearest-neighbour), bicubic, the model, `other` (when given), and the original.
///
/// # Errors
/// Colour images (the figure draws grey ones), outputs that cannot be read.
pub fn examples<B: Backend>(
    g: &SrGenerator<B>,
    other: Option<&SrGenerator<B>>,
    data: &Dataset,
    device: &B::Device,
) -> crate::Result<Vec<Vec<f32>>> {
    let shape = g.image();
    if shape.channels != 1 {
        return Err(crate::GanError::Invalid(
            "the example grid draws grey images only".into(),
        ));
    }
    let few = data.take(8.min(data.len()));
    let low = tensor_values(downsample(few.to_tensor::<B>(device), shape))?;
    let nearest: Vec<f32> = low
        .chunks(shape.numel() / 4)
        .flat_map(|img| {
            (0..shape.height).flat_map(move |y| (0..shape.width).map(move |x| img[(y / 2) * (shape.width / 2) + x / 2]))
        })
        .collect();
    let mut rows = vec![
        nearest,
        bicubic_all::<B>(&few, shape, device)?,
        upscale_all(g, &few, device)?,
    ];
    if let Some(o) = other {
        rows.push(upscale_all(o, &few, device)?);
    }
    rows.push(few.features().to_vec());
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend as B;
    use burn::tensor::Distribution;

    #[test]
    fn downsample_averages_and_bicubic_keeps_constants() {
        let device = Default::default();
        let shape = ImageShape::grey(4, 4);
        let x = Tensor::<B, 2>::from_floats(
            [[
                1.0, 3.0, 0.0, 0.0, 5.0, 7.0, 0.0, 4.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0,
            ]],
            &device,
        );
        let low = downsample(x, shape).into_data().to_vec::<f32>().unwrap();
        assert_eq!(low, vec![4.0, 1.0, 1.0, 2.0]);
        let flat = Tensor::<B, 2>::full([2, 16], 0.4, &device);
        let up = bicubic(flat, shape).into_data().to_vec::<f32>().unwrap();
        assert_eq!(up.len(), 2 * 64);
        assert!(up.iter().all(|v| (v - 0.4).abs() < 1e-5));
    }

    #[test]
    fn generator_shapes_range_and_validation() {
        let device = Default::default();
        let g = SrConfig::new(ImageShape::grey(8, 8)).try_init::<B>(&device).unwrap();
        let low = Tensor::<B, 2>::random([3, 16], Distribution::Uniform(0.0, 1.0), &device);
        let out = g.upscale(low).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out.len(), 3 * 64);
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(SrConfig::new(ImageShape::grey(7, 8)).validate().is_err());
        let bad = SrConfig {
            adversarial_weight: -1.0,
            ..SrConfig::new(ImageShape::grey(8, 8))
        };
        assert!(bad.validate().is_err());
    }
}
