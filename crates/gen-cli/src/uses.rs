//! What users do with a trained autoencoder, measured: denoising, compression and the code's
//! own properties (sparsity, contraction), used by `gen eval`, `gen denoise`, `gen compress`,
//! `gen decompress` and `gen sweep`.

use std::path::Path;

use anyhow::{Context, bail};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use gen_ae::Autoencoder;
use gen_ae::compress::CompressedCodes;
use gen_core::eval::{mean_psnr, mean_ssim, median_filter_batch};
use gen_core::nn::ImageShape;
use gen_core::noise::Noise;
use gen_core::train::RunDir;
use gen_core::{Decoder, Encoder};
use gen_data::Dataset;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::artifacts;
use crate::commands::map_rows;
use crate::image_io;

/// Rows of the test set used for the Jacobian norm in `gen eval` (it costs `d_latent` encoder
/// passes per row).
pub const JACOBIAN_ROWS: usize = 1000;

/// Noise levels of the denoising table.
pub const DENOISE_SIGMAS: [f64; 3] = [0.1, 0.3, 0.5];

/// Bits per code value in the compression table.
pub const COMPRESS_BITS: [u8; 3] = [4, 6, 8];

/// Seed of the noise added to test images, so every evaluation sees the same noisy images.
const NOISE_SEED: u64 = 20_061_028;

/// SHA-256 of the run's model file: what `.genz` files name as their model.
pub fn model_hash(run: &RunDir) -> anyhow::Result<[u8; 32]> {
    let path = run.model_path();
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes).into())
}

/// Sparsity of the code on `data`: mean absolute activation and mean share of active units.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Activity {
    /// Mean over samples and units of |h|.
    pub mean_activation: f64,
    /// Mean over samples of the share of units with |h| above [`gen_ae::ACTIVE_THRESHOLD`].
    pub share_active: f64,
}

/// Measures [`Activity`] over `data`.
pub fn activity<B: Backend>(model: &Autoencoder<B>, data: &Dataset, device: &B::Device) -> anyhow::Result<Activity> {
    let (both, _) = map_rows::<B>(data, device, |x| {
        let (m, s) = model.activity(x);
        Tensor::stack::<2>(vec![m, s], 1)
    })?;
    let n = data.len().max(1) as f64;
    let (mut m, mut s) = (0.0, 0.0);
    for pair in both.chunks(2) {
        m += pair[0] as f64;
        s += pair[1] as f64;
    }
    Ok(Activity {
        mean_activation: m / n,
        share_active: s / n,
    })
}

/// Mean exact `‖∂h/∂x‖²_F` over the first [`JACOBIAN_ROWS`] rows of `data`.
pub fn jacobian_norm<B: Backend>(model: &Autoencoder<B>, data: &Dataset, device: &B::Device) -> anyhow::Result<f64> {
    let sample = data.take(JACOBIAN_ROWS.min(data.len()));
    // Smaller batches: the propagation holds d_latent copies of every activation.
    let mut total = 0.0;
    for start in (0..sample.len()).step_by(128) {
        let end = (start + 128).min(sample.len());
        let (_, norm) = model.encode_with_jacobian_norm(sample.rows_tensor(start..end, device), None);
        let v: Vec<f32> = norm.into_data().to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        total += v.iter().map(|&x| x as f64).sum::<f64>();
    }
    Ok(total / sample.len().max(1) as f64)
}

/// One noise level of the denoising table: PSNR (dB) and SSIM of the noisy images, of a 3x3
/// median filter and of the autoencoder's output, each against the clean images.
#[derive(Debug, Clone, Serialize)]
pub struct DenoiseRow {
    /// Standard deviation of the added Gaussian noise (images in [0, 1]).
    pub sigma: f64,
    /// PSNR of the noisy images.
    pub psnr_noisy: f64,
    /// PSNR of the median-filtered images.
    pub psnr_median: f64,
    /// PSNR of the autoencoder's reconstructions of the noisy images.
    pub psnr_model: f64,
    /// SSIM of the noisy images.
    pub ssim_noisy: f64,
    /// SSIM of the median-filtered images.
    pub ssim_median: f64,
    /// SSIM of the autoencoder's reconstructions.
    pub ssim_model: f64,
}

/// Noisy copies of `data` (Gaussian, clamped to [0, 1], seeded) and the model's outputs for them.
fn noisy_and_denoised<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    noise: Noise,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    B::seed(device, seed);
    let mut noisy = Vec::with_capacity(data.features().len());
    let (denoised, _) = map_rows::<B>(data, device, |x| {
        let x = noise.apply(x, Some((0.0, 1.0)));
        noisy.extend(x.clone().into_data().to_vec::<f32>().expect("f32 images"));
        model.reconstruct(x)
    })?;
    Ok((noisy, denoised))
}

/// The denoising table on the images of `data`, and an example grid per noise level (clean,
/// noisy, median, denoised) written to `out_dir/denoise-sigmaS.png`.
pub fn denoise_table<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    shape: ImageShape,
    out_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<Vec<DenoiseRow>> {
    let clean = data.features();
    let (h, w) = (shape.height, shape.width);
    let mut rows = Vec::new();
    for (i, &sigma) in DENOISE_SIGMAS.iter().enumerate() {
        let (noisy, denoised) =
            noisy_and_denoised(model, data, Noise::Gaussian { sigma }, NOISE_SEED + i as u64, device)?;
        let median = median_filter_batch(&noisy, h, w);
        let d = shape.numel();
        rows.push(DenoiseRow {
            sigma,
            psnr_noisy: mean_psnr(clean, &noisy, d, 1.0),
            psnr_median: mean_psnr(clean, &median, d, 1.0),
            psnr_model: mean_psnr(clean, &denoised, d, 1.0),
            ssim_noisy: mean_ssim(clean, &noisy, h, w, 1.0),
            ssim_median: mean_ssim(clean, &median, h, w, 1.0),
            ssim_model: mean_ssim(clean, &denoised, h, w, 1.0),
        });
        let k = data.len().min(8);
        let pick = |v: &[f32]| (0..k).map(|j| v[j * d..(j + 1) * d].to_vec()).collect::<Vec<_>>();
        let grid = [pick(clean), pick(&noisy), pick(&median), pick(&denoised)];
        let grid_rows: Vec<Vec<&[f32]>> = grid.iter().map(|r| r.iter().map(Vec::as_slice).collect()).collect();
        let scale = if h < 16 { 4 } else { 2 };
        artifacts::save_image_grid(
            &out_dir.join(format!("denoise-sigma{sigma}.png")),
            &grid_rows,
            shape,
            scale,
        )?;
    }
    Ok(rows)
}

/// One quantisation level of the compression table.
#[derive(Debug, Clone, Serialize)]
pub struct CompressRow {
    /// Bits per code value.
    pub bits: u8,
    /// Size of the whole `.genz` file per image, header included, in bits.
    pub file_bits_per_image: f64,
    /// Bits of codes per image (`d_latent × bits`).
    pub payload_bits_per_image: f64,
    /// PSNR of the decompressed images against the originals (dB).
    pub psnr: f64,
    /// SSIM of the decompressed images (images only).
    pub ssim: Option<f64>,
}

/// Compression of `data` at each of [`COMPRESS_BITS`]: file size per image and quality.
pub fn compression_table<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    hash: [u8; 32],
    device: &B::Device,
) -> anyhow::Result<Vec<CompressRow>> {
    let (codes, k) = map_rows::<B>(data, device, |x| model.encode(x))?;
    let shape = data.image_shape().unwrap_or(ImageShape {
        channels: 1,
        height: 1,
        width: data.d(),
    });
    let range = data.features().iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let data_range = if data.image_shape().is_some() { 1.0 } else { range };
    let mut rows = Vec::new();
    for bits in COMPRESS_BITS {
        let packed = CompressedCodes::quantize(&codes, data.len(), k, bits, shape_u32(shape), hash)?;
        let file_bits = packed.bits_per_image();
        let restored = decode_codes(model, &packed.dequantize(), k, device)?;
        rows.push(CompressRow {
            bits,
            file_bits_per_image: file_bits,
            payload_bits_per_image: packed.payload_bits_per_image(),
            psnr: mean_psnr(data.features(), &restored, data.d(), data_range),
            ssim: data
                .image_shape()
                .map(|s| mean_ssim(data.features(), &restored, s.height, s.width, 1.0)),
        });
    }
    Ok(rows)
}

/// Mean size in bits of the images of `data` as individual PNG files (best compression).
pub fn png_bits_per_image(data: &Dataset, shape: ImageShape) -> anyhow::Result<f64> {
    let mut total = 0usize;
    for i in 0..data.len() {
        total += image_io::png_bytes(data.row(i), shape)?.len();
    }
    Ok(total as f64 * 8.0 / data.len().max(1) as f64)
}

/// The stored form of an image shape.
pub fn shape_u32(s: ImageShape) -> [u32; 3] {
    [s.channels as u32, s.height as u32, s.width as u32]
}

/// Decodes row-major codes of width `k` in batches.
pub fn decode_codes<B: Backend>(
    model: &Autoencoder<B>,
    codes: &[f32],
    k: usize,
    device: &B::Device,
) -> anyhow::Result<Vec<f32>> {
    let n = codes.len() / k;
    let mut out = Vec::new();
    for start in (0..n).step_by(1024) {
        let end = (start + 1024).min(n);
        let z = Tensor::<B, 1>::from_floats(&codes[start * k..end * k], device).reshape([end - start, k]);
        out.extend(
            model
                .decode(z)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
    }
    Ok(out)
}

/// Checks that images of `shape` fit a model trained on images of `expected`.
pub fn check_shape(expected: Option<ImageShape>, shape: ImageShape, what: &Path) -> anyhow::Result<()> {
    match expected {
        Some(e) if e == shape => Ok(()),
        Some(e) => bail!(
            "{}: images are {}x{}x{} but the model was trained on {}x{}x{}",
            what.display(),
            shape.channels,
            shape.height,
            shape.width,
            e.channels,
            e.height,
            e.width
        ),
        None => bail!("the run's model was not trained on images"),
    }
}
