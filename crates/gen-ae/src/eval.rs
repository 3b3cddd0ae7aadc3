//! What users do with a trained autoencoder, measured: dimensionality reduction against PCA (the
//! latent-size [`sweep`]), denoising against a median filter ([`denoising_table`]), compression
//! against PNG ([`compression_table`]), and the code's own properties ([`activity`],
//! [`jacobian_norm`]).
//!
//! Each protocol is a function over data and models that returns a serde report; the `gen`
//! commands (`gen eval`, `gen sweep`, `gen denoise`, ...) call them and write what they return.
//! Nothing here prints or touches a file, except that a model trained into a [`ModelRun`] keeps
//! its checkpoints there (the [`Trainer`]'s own saving).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use gen_core::eval::{mean_psnr, mean_ssim, median_filter_batch};
use gen_core::nn::ImageShape;
use gen_core::noise::Noise;
use gen_core::train::{Observer, RunDir, TrainConfig, Trainer};
use gen_core::{Decoder, Encoder};
use gen_data::pca::Pca;
use gen_data::{Dataset, tensor_values};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compress::CompressedCodes;
use crate::{AeError, Autoencoder, AutoencoderConfig, Result};

/// Rows of the test set used by [`jacobian_norm`] (it costs `d_latent` encoder passes per row).
pub const JACOBIAN_ROWS: usize = 1000;

/// Noise levels of the denoising table.
pub const DENOISE_SIGMAS: [f64; 3] = [0.1, 0.3, 0.5];

/// Bits per code value in the compression table.
pub const COMPRESS_BITS: [u8; 3] = [4, 6, 8];

/// Seed of the noise added to test images, so every evaluation sees the same noisy images.
const NOISE_SEED: u64 = 20_061_028;

/// Images per noise level kept as examples by [`denoising_table`].
const EXAMPLES: usize = 8;

/// A run folder for a model that a protocol trains, and the description stored in each of its
/// checkpoints (the `gen` command line stores its whole run configuration there).
#[derive(Debug, Clone)]
pub struct ModelRun {
    /// Where the checkpoints, the metrics and the best model go.
    pub run: RunDir,
    /// Written into every checkpoint's header.
    pub meta: serde_json::Value,
}

/// An autoencoder trained by [`fit`].
#[derive(Debug)]
pub struct FittedAutoencoder<B: Backend> {
    /// The best model (lowest validation loss), without autodiff.
    pub model: Autoencoder<B>,
    /// Seconds of training.
    pub seconds: f64,
    /// Epochs run.
    pub epochs: usize,
}

/// Trains an autoencoder of `config` on `train`, with early stopping on `valid`, seeded by
/// `train_config.seed` (the backend's generator too, so the initial weights are reproducible).
///
/// # Errors
/// An invalid configuration, an empty data set, a loss that is not finite, or a run folder
/// that cannot be written.
pub fn fit<B: AutodiffBackend>(
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    train: &Dataset,
    valid: Option<&Dataset>,
    run: Option<ModelRun>,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<FittedAutoencoder<B::InnerBackend>> {
    if config.d_input != train.d() {
        return Err(AeError::Invalid(format!(
            "the model takes {} features, {} has {}",
            config.d_input,
            train.name(),
            train.d()
        )));
    }
    let started = Instant::now();
    B::seed(device, train_config.seed);
    let model: Autoencoder<B> = config.try_init_on(train, device)?;
    let mut trainer = Trainer::new(train_config.clone())?.with_observer(observer);
    let meta = match run {
        Some(ModelRun { run, meta }) => {
            trainer = trainer.with_run_dir(run);
            meta
        }
        None => serde_json::Value::Null,
    };
    let fitted = trainer.fit(model, train, valid, &meta, device)?;
    Ok(FittedAutoencoder {
        model: fitted.model.valid(),
        seconds: started.elapsed().as_secs_f64(),
        epochs: fitted.epochs_completed,
    })
}

/// Mean squared error per element and per sample of the reconstructions of `data`.
///
/// # Errors
/// If the model's output cannot be read back.
pub fn reconstruction_errors<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    device: &B::Device,
) -> Result<(f64, f64)> {
    let (rec, _) = data.map_rows::<B>(device, |x| model.reconstruct(x))?;
    let se: f64 = rec
        .iter()
        .zip(data.features())
        .map(|(&r, &x)| ((r - x) as f64).powi(2))
        .sum();
    Ok((se / rec.len().max(1) as f64, se / data.len().max(1) as f64))
}

/// Sparsity of the code on `data`: mean absolute activation and mean share of active units.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Activity {
    /// Mean over samples and units of |h|.
    pub mean_activation: f64,
    /// Mean over samples of the share of units with |h| above [`crate::ACTIVE_THRESHOLD`].
    pub share_active: f64,
}

/// Measures [`Activity`] over `data`.
///
/// # Errors
/// If the model's output cannot be read back.
pub fn activity<B: Backend>(model: &Autoencoder<B>, data: &Dataset, device: &B::Device) -> Result<Activity> {
    let (both, _) = data.map_rows::<B>(device, |x| {
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
///
/// # Errors
/// If the model's output cannot be read back.
pub fn jacobian_norm<B: Backend>(model: &Autoencoder<B>, data: &Dataset, device: &B::Device) -> Result<f64> {
    let sample = data.take(JACOBIAN_ROWS.min(data.len()));
    // Smaller batches: the propagation holds d_latent copies of every activation.
    let mut total = 0.0;
    for start in (0..sample.len()).step_by(128) {
        let end = (start + 128).min(sample.len());
        let (_, norm) = model.encode_with_jacobian_norm(sample.rows_tensor(start..end, device), None);
        total += tensor_values(norm)?.iter().map(|&x| x as f64).sum::<f64>();
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

/// The first images of one noise level, for a figure: clean, noisy, median-filtered and
/// denoised, each a list of images.
#[derive(Debug, Clone)]
pub struct DenoiseExamples {
    /// The noise level.
    pub sigma: f64,
    /// The clean, noisy, median-filtered and denoised images, in that order.
    pub rows: [Vec<Vec<f32>>; 4],
}

/// [`denoising_table`]'s result.
#[derive(Debug, Clone)]
pub struct DenoisingTable {
    /// One row per noise level of [`DENOISE_SIGMAS`].
    pub rows: Vec<DenoiseRow>,
    /// Up to eight example images per noise level.
    pub examples: Vec<DenoiseExamples>,
}

/// Noisy copies of `data` (clamped to [0, 1], seeded) and the model's outputs for them.
///
/// # Errors
/// If the model's output cannot be read back.
pub fn noisy_and_denoised<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    noise: Noise,
    seed: u64,
    device: &B::Device,
) -> Result<(Vec<f32>, Vec<f32>)> {
    B::seed(device, seed);
    let mut noisy = Vec::with_capacity(data.features().len());
    let mut read = Ok(());
    let (denoised, _) = data.map_rows::<B>(device, |x| {
        let x = noise.apply(x, Some((0.0, 1.0)));
        match tensor_values(x.clone()) {
            Ok(v) => noisy.extend(v),
            Err(e) => read = Err(e),
        }
        model.reconstruct(x)
    })?;
    read?;
    Ok((noisy, denoised))
}

/// The denoising table on the images of `data` (Gaussian noise at each of [`DENOISE_SIGMAS`],
/// seeded, so every evaluation sees the same noisy images), with example images.
///
/// # Errors
/// If the model's output cannot be read back.
pub fn denoising_table<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    shape: ImageShape,
    device: &B::Device,
) -> Result<DenoisingTable> {
    let clean = data.features();
    let (h, w) = (shape.height, shape.width);
    let d = shape.numel();
    let mut table = DenoisingTable {
        rows: Vec::new(),
        examples: Vec::new(),
    };
    for (i, &sigma) in DENOISE_SIGMAS.iter().enumerate() {
        let (noisy, denoised) =
            noisy_and_denoised(model, data, Noise::Gaussian { sigma }, NOISE_SEED + i as u64, device)?;
        let median = median_filter_batch(&noisy, h, w);
        table.rows.push(DenoiseRow {
            sigma,
            psnr_noisy: mean_psnr(clean, &noisy, d, 1.0),
            psnr_median: mean_psnr(clean, &median, d, 1.0),
            psnr_model: mean_psnr(clean, &denoised, d, 1.0),
            ssim_noisy: mean_ssim(clean, &noisy, h, w, 1.0),
            ssim_median: mean_ssim(clean, &median, h, w, 1.0),
            ssim_model: mean_ssim(clean, &denoised, h, w, 1.0),
        });
        let k = data.len().min(EXAMPLES);
        let pick = |v: &[f32]| (0..k).map(|j| v[j * d..(j + 1) * d].to_vec()).collect::<Vec<_>>();
        table.examples.push(DenoiseExamples {
            sigma,
            rows: [pick(clean), pick(&noisy), pick(&median), pick(&denoised)],
        });
    }
    Ok(table)
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

/// The stored form of an image shape.
pub fn shape_u32(s: ImageShape) -> [u32; 3] {
    [s.channels as u32, s.height as u32, s.width as u32]
}

/// SHA-256 of a run folder's model file: what `.genz` files name as their model. This reads the
/// file, as a load function does.
///
/// # Errors
/// If the model file cannot be read.
pub fn model_hash(run: &RunDir) -> Result<[u8; 32]> {
    let path = run.model_path();
    let bytes = std::fs::read(&path).map_err(|source| gen_core::CoreError::Io {
        action: "cannot read",
        path: path.clone(),
        source,
    })?;
    Ok(Sha256::digest(&bytes).into())
}

/// `gen compress` as a call: the images of `data` encoded by `model`, each code value
/// quantised to `bits` (1 to 16) and packed with the images' shape and `model_hash` (the run's
/// [`model_hash`], or any 32 bytes that name an unsaved model), ready for
/// [`CompressedCodes::write`] or [`CompressedCodes::to_bytes`].
///
/// # Errors
/// Data without an image shape, a `bits` out of range, or a model whose input is not `data`'s
/// width.
pub fn compress<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    bits: u8,
    model_hash: [u8; 32],
    device: &B::Device,
) -> Result<CompressedCodes> {
    let Some(shape) = data.image_shape() else {
        return Err(AeError::Invalid(format!("{} holds no images to compress", data.name())));
    };
    let (codes, k) = data.map_rows(device, |x| model.encode(x))?;
    Ok(CompressedCodes::quantize(
        &codes,
        data.len(),
        k,
        bits,
        shape_u32(shape),
        model_hash,
    )?)
}

/// `gen decompress` as a call: the images of `packed` (row-major, of `packed.shape()`), decoded
/// by `model` once it is checked to be the model that made them (by `model_hash`, as
/// [`compress`] stored it) and to have their code width.
///
/// # Errors
/// Codes made by another model, or of another width than `model`'s code.
pub fn decompress<B: Backend>(
    model: &Autoencoder<B>,
    packed: &CompressedCodes,
    model_hash: &[u8; 32],
    device: &B::Device,
) -> Result<Vec<f32>> {
    packed.check_model(model_hash)?;
    if packed.d_latent() != model.d_latent() {
        return Err(AeError::Invalid(format!(
            "the codes have {} values but the model's code has {}",
            packed.d_latent(),
            model.d_latent()
        )));
    }
    decode_codes(model, &packed.dequantize(), packed.d_latent(), device)
}

/// Decodes row-major codes of width `k` in batches.
///
/// # Errors
/// If the model's output cannot be read back.
///
/// # Panics
/// If `k` is 0.
pub fn decode_codes<B: Backend>(
    model: &Autoencoder<B>,
    codes: &[f32],
    k: usize,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let n = codes.len() / k;
    let mut out = Vec::new();
    for start in (0..n).step_by(1024) {
        let end = (start + 1024).min(n);
        let z = Tensor::<B, 1>::from_floats(&codes[start * k..end * k], device).reshape([end - start, k]);
        out.extend(tensor_values(model.decode(z))?);
    }
    Ok(out)
}

/// Compression of `data` at each of [`COMPRESS_BITS`]: file size per image and quality. `hash`
/// is the model's identity written into each file ([`model_hash`]).
///
/// # Errors
/// If the codes cannot be quantised or the model's output cannot be read back.
pub fn compression_table<B: Backend>(
    model: &Autoencoder<B>,
    data: &Dataset,
    hash: [u8; 32],
    device: &B::Device,
) -> Result<Vec<CompressRow>> {
    let (codes, k) = data.map_rows::<B>(device, |x| model.encode(x))?;
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
        let restored = decode_codes(model, &packed.dequantize(), k, device)?;
        rows.push(CompressRow {
            bits,
            file_bits_per_image: packed.bits_per_image(),
            payload_bits_per_image: packed.payload_bits_per_image(),
            psnr: mean_psnr(data.features(), &restored, data.d(), data_range),
            ssim: data
                .image_shape()
                .map(|s| mean_ssim(data.features(), &restored, s.height, s.width, 1.0)),
        });
    }
    Ok(rows)
}

/// Mean size in bits of the images of `data` as individual PNG files (best compression): the
/// lossless baseline of the compression table.
///
/// # Errors
/// If an image cannot be encoded (more than one channel, say).
pub fn png_bits_per_image(data: &Dataset, shape: ImageShape) -> Result<f64> {
    let mut total = 0usize;
    for i in 0..data.len() {
        total += gen_data::png_bytes(data.row(i), shape)?.len();
    }
    Ok(total as f64 * 8.0 / data.len().max(1) as f64)
}

/// Everything `gen eval` measures of a trained autoencoder on a test set: reconstruction
/// against PCA with as many components and against the training mean, the code's sparsity and
/// contraction, denoising (image sets) and compression.
#[derive(Debug, Clone, Serialize)]
pub struct AutoencoderReport {
    /// The data set's name, as the caller gave it.
    pub dataset: String,
    /// The split measured.
    pub split: &'static str,
    /// Rows measured.
    pub n_test: usize,
    /// Features per row.
    pub d_input: usize,
    /// Latent size (PCA's number of components).
    pub d_latent: usize,
    /// The autoencoder's mean squared error per value.
    pub ae_mse: f64,
    /// The autoencoder's squared error per row.
    pub ae_squared_error_per_sample: f64,
    /// PCA's mean squared error per value.
    pub pca_mse: f64,
    /// PCA's squared error per row.
    pub pca_squared_error_per_sample: f64,
    /// Mean squared error of predicting every row by the training set's mean row.
    pub mean_baseline_mse: f64,
    /// The autoencoder's error over PCA's; absent when PCA is exact (as many components as
    /// features).
    pub ae_vs_pca: Option<f64>,
    /// `autoencoder`, `sparse-kl`, `sparse-l1`, `contractive` or `denoising`.
    pub variant: &'static str,
    /// Sparsity of the code on the test set.
    pub activity: Activity,
    /// Mean `‖∂h/∂x‖²_F` of the encoder over the first rows of the test set.
    pub jacobian_frobenius_sq: f64,
    /// Rows of the test set the Jacobian norm is averaged over.
    pub jacobian_rows: usize,
    /// Denoising of Gaussian noise against a 3x3 median filter (image sets).
    pub denoising: Option<Vec<DenoiseRow>>,
    /// Bits per image against PSNR of the quantised codes.
    pub compression: Vec<CompressRow>,
    /// Mean size of the test images as PNG files, in bits (image sets).
    pub png_bits_per_image: Option<f64>,
    /// The denoising table's example images (not serialised).
    #[serde(skip)]
    pub denoising_examples: Vec<DenoiseExamples>,
}

/// Measures a trained autoencoder (`model`, built from `config`) on `test`, with PCA and the
/// mean fitted on `train`. `images` says the rows are images in [0, 1] (denoising and the PNG
/// baseline are measured then); `hash` names the model in the compressed files
/// ([`model_hash`]).
///
/// # Errors
/// PCA on unsuitable data, or a model output that cannot be read back.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: Backend>(
    dataset: &str,
    model: &Autoencoder<B>,
    config: &AutoencoderConfig,
    train: &Dataset,
    test: &Dataset,
    images: Option<ImageShape>,
    hash: [u8; 32],
    device: &B::Device,
) -> Result<AutoencoderReport> {
    let k = model.d_latent();
    let (ae_mse, ae_se) = reconstruction_errors(model, test, device)?;
    let pca_mse = gen_data::pca::reconstruction_mse(train, test, k)?;
    let d = test.d();
    let denoising = images
        .map(|shape| denoising_table(model, test, shape, device))
        .transpose()?;
    let (denoising, denoising_examples) = match denoising {
        Some(t) => (Some(t.rows), t.examples),
        None => (None, Vec::new()),
    };
    Ok(AutoencoderReport {
        dataset: dataset.to_string(),
        split: "test",
        n_test: test.len(),
        d_input: d,
        d_latent: k,
        ae_mse,
        ae_squared_error_per_sample: ae_se,
        pca_mse,
        pca_squared_error_per_sample: pca_mse * d as f64,
        mean_baseline_mse: train.mean_row_mse(test),
        ae_vs_pca: (pca_mse > 0.0).then(|| ae_mse / pca_mse),
        variant: config.variant(),
        activity: activity(model, test, device)?,
        jacobian_frobenius_sq: jacobian_norm(model, test, device)?,
        jacobian_rows: JACOBIAN_ROWS.min(test.len()),
        denoising,
        compression: compression_table(model, test, hash, device)?,
        png_bits_per_image: images.map(|s| png_bits_per_image(test, s)).transpose()?,
        denoising_examples,
    })
}

impl AutoencoderReport {
    /// The report as the lines `gen eval` prints.
    pub fn summary(&self) -> String {
        let (k, d) = (self.d_latent, self.d_input);
        let mut s = format!(
            "{} test set ({} samples), {} latent dimensions:\n",
            self.dataset, self.n_test, k
        );
        s += &format!("  {:<26} {:>12} {:>18}\n", "model", "MSE/value", "squared error/sample");
        s += &format!(
            "  {:<26} {:>12.6} {:>18.4}\n",
            "autoencoder", self.ae_mse, self.ae_squared_error_per_sample
        );
        s += &format!(
            "  {:<26} {:>12.6} {:>18.4}\n",
            format!("PCA, {k} components"),
            self.pca_mse,
            self.pca_squared_error_per_sample
        );
        s += &format!(
            "  {:<26} {:>12.6} {:>18.4}\n",
            "mean of training set",
            self.mean_baseline_mse,
            self.mean_baseline_mse * d as f64
        );
        s += &match self.ae_vs_pca {
            Some(r) => format!("  autoencoder / PCA error ratio: {r:.3}\n"),
            None => format!("  (PCA with {k} components of {d} features reconstructs exactly)\n"),
        };
        s += &format!(
            "code ({}): mean |activation| {:.4}, share of units active (|h| > {}) {:.3}; \
             encoder Jacobian ||dh/dx||_F^2 {:.4} (mean over {} rows)\n",
            self.variant,
            self.activity.mean_activation,
            crate::ACTIVE_THRESHOLD,
            self.activity.share_active,
            self.jacobian_frobenius_sq,
            self.jacobian_rows
        );
        if let Some(rows) = &self.denoising {
            s += "denoising Gaussian noise (PSNR dB / SSIM against the clean images):\n";
            s += &format!(
                "  {:<6} {:>16} {:>16} {:>16}\n",
                "sigma", "noisy", "3x3 median", "autoencoder"
            );
            for r in rows {
                s += &format!(
                    "  {:<6} {:>8.2} / {:.3} {:>8.2} / {:.3} {:>8.2} / {:.3}\n",
                    r.sigma, r.psnr_noisy, r.ssim_noisy, r.psnr_median, r.ssim_median, r.psnr_model, r.ssim_model
                );
            }
        }
        s += "compression of the codes (whole .genz file per image):\n";
        for c in &self.compression {
            s += &format!(
                "  {:>2} bits/value: {:>8.1} bits/image, PSNR {:.2} dB{}\n",
                c.bits,
                c.file_bits_per_image,
                c.psnr,
                c.ssim.map(|s| format!(", SSIM {s:.3}")).unwrap_or_default()
            );
        }
        if let Some(p) = self.png_bits_per_image {
            s += &format!(
                "  PNG files of the same images: {p:.1} bits/image (lossless); raw: {} bits/image\n",
                d * 8
            );
        }
        s
    }
}

/// The data of a protocol that trains on one split, stops early on another and measures on a
/// third.
#[derive(Debug, Clone, Copy)]
pub struct Splits<'a> {
    /// Trained on.
    pub train: &'a Dataset,
    /// Early stopping.
    pub valid: &'a Dataset,
    /// Measured on.
    pub test: &'a Dataset,
}

/// One latent size of the [`sweep`].
#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    /// The latent size (and PCA's number of components).
    pub latent: usize,
    /// The run folder of this size's model (empty when it was trained without one).
    pub run: String,
    /// The autoencoder's squared error per test image.
    pub ae_squared_error_per_image: f64,
    /// PCA's squared error per test image with `latent` components.
    pub pca_squared_error_per_image: f64,
    /// The autoencoder's mean squared error per value.
    pub ae_mse: f64,
    /// PCA's mean squared error per value.
    pub pca_mse: f64,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Epochs run (early stopping may end a run before its last epoch).
    pub epochs: usize,
    /// The compression table of this size's model.
    pub compression: Vec<CompressRow>,
    /// The test set's codes at latent size 2, row-major, for a scatter plot (not serialised).
    #[serde(skip)]
    pub codes_2d: Option<Vec<f32>>,
}

impl SweepRow {
    /// Whether the autoencoder's test error is above PCA's with as many components.
    pub fn worse_than_pca(&self) -> bool {
        self.ae_squared_error_per_image > self.pca_squared_error_per_image
    }
}

/// The [`sweep`]'s report.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The data set's name, as the caller gave it.
    pub dataset: String,
    /// Test rows measured.
    pub n_test: usize,
    /// Features per row.
    pub d_input: usize,
    /// Lossless PNG of the test images, bits per image (images in [0, 1] only).
    pub png_bits_per_image: Option<f64>,
    /// Raw 8-bit values, bits per row.
    pub raw_bits_per_image: f64,
    /// One row per latent size.
    pub rows: Vec<SweepRow>,
}

/// Dimensionality reduction against PCA: for each latent size, an autoencoder of `config`
/// (its `d_latent` replaced) trained with `train_config`, and PCA with as many components, both
/// measured by their squared reconstruction error on `data.test`; with each model's compression
/// table. `runs` gives the folder a size's model trains into (`None`: no folder).
/// `standardised` says the data are not in [0, 1] (no PNG baseline then).
///
/// # Errors
/// A latent size of 0, an invalid configuration, PCA on unsuitable data, a failed training run.
#[allow(clippy::too_many_arguments)]
pub fn sweep<B: AutodiffBackend>(
    dataset: &str,
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    latents: &[usize],
    data: Splits<'_>,
    standardised: bool,
    runs: &mut dyn FnMut(&AutoencoderConfig) -> Result<Option<ModelRun>>,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<SweepReport> {
    if latents.is_empty() || latents.contains(&0) {
        return Err(AeError::Invalid(format!("latent sizes must be > 0, got {latents:?}")));
    }
    let test = data.test;
    let d = test.d();
    // One decomposition serves every latent size.
    let pca = Pca::fit(data.train)?;
    let mut rows = Vec::new();
    for &k in latents {
        let mut cfg = config.clone();
        cfg.d_latent = k;
        cfg.validate()
            .map_err(|e| AeError::Invalid(format!("latent size {k}: {e}")))?;
        let run = runs(&cfg)?;
        let run_dir = run.as_ref().map(|r| r.run.clone());
        observer.on_stage(&format!(
            "latent size {k}: training{}",
            run_dir
                .as_ref()
                .map(|r| format!(" {}", r.root().display()))
                .unwrap_or_default()
        ));
        let fitted = fit::<B>(&cfg, train_config, data.train, Some(data.valid), run, observer, device)?;
        let model = &fitted.model;
        let (ae_mse, ae_se) = reconstruction_errors(model, test, device)?;
        let pca_mse = pca.reconstruction_mse(test, k)?;
        let hash = match &run_dir {
            Some(r) => model_hash(r)?,
            None => [0; 32],
        };
        let compression = compression_table(model, test, hash, device)?;
        let codes_2d = if k == 2 {
            Some(test.map_rows(device, |x| model.encode(x))?.0)
        } else {
            None
        };
        rows.push(SweepRow {
            latent: k,
            run: run_dir.map(|r| r.root().display().to_string()).unwrap_or_default(),
            ae_squared_error_per_image: ae_se,
            pca_squared_error_per_image: pca_mse * d as f64,
            ae_mse,
            pca_mse,
            train_seconds: fitted.seconds,
            epochs: fitted.epochs,
            compression,
            codes_2d,
        });
    }
    let png = match test.image_shape() {
        Some(s) if !standardised => Some(png_bits_per_image(test, s)?),
        _ => None,
    };
    Ok(SweepReport {
        dataset: dataset.to_string(),
        n_test: test.len(),
        d_input: d,
        png_bits_per_image: png,
        raw_bits_per_image: d as f64 * 8.0,
        rows,
    })
}

impl SweepReport {
    /// The report as Markdown: the reduction table, then the compression table.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# Latent-size sweep on {} ({} test rows)\n\n| latent | AE squared error / image | PCA squared error / image | AE / PCA | epochs | train s |\n|---|---|---|---|---|---|\n",
            self.dataset, self.n_test
        );
        for r in &self.rows {
            md += &format!(
                "| {} | {:.3} | {:.3} | {:.3}{} | {} | {:.0} |\n",
                r.latent,
                r.ae_squared_error_per_image,
                r.pca_squared_error_per_image,
                r.ae_squared_error_per_image / r.pca_squared_error_per_image,
                if r.worse_than_pca() { " **worse than PCA**" } else { "" },
                r.epochs,
                r.train_seconds
            );
        }
        let worse: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.worse_than_pca())
            .map(|r| r.latent.to_string())
            .collect();
        if !worse.is_empty() {
            md += &format!(
                "\nThe autoencoder reconstructs worse than PCA at latent size {}: a model with the PCA path \
                 (`gen`'s default for the plain MLP autoencoder with the MSE loss) starts from PCA's solution.\n",
                worse.join(", ")
            );
        }
        md += "\n## Compression: bits per image (whole .genz file) against PSNR\n\n| latent | bits/value | bits/image | PSNR dB | SSIM |\n|---|---|---|---|---|\n";
        for r in &self.rows {
            for c in &r.compression {
                md += &format!(
                    "| {} | {} | {:.1} | {:.2} | {} |\n",
                    r.latent,
                    c.bits,
                    c.file_bits_per_image,
                    c.psnr,
                    c.ssim.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into())
                );
            }
        }
        if let Some(p) = self.png_bits_per_image {
            md += &format!(
                "\nLossless PNG of the same images: {p:.1} bits per image; raw 8-bit pixels: {:.0}.\n",
                self.raw_bits_per_image
            );
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestAutodiffBackend;

    /// Compressing and decompressing round-trips the images' count and width (within the
    /// quantisation's error of decoding the unquantised codes), and codes are refused by
    /// another model or a code of another width.
    #[test]
    fn compress_then_decompress_checks_the_model() {
        type B = crate::test_util::TestBackend;
        let device = Default::default();
        let digits = gen_data::digits().unwrap().take(20);
        B::seed(&device, 0);
        let model = AutoencoderConfig::mlp(64, vec![16], 4).init::<B>(&device);
        let hash = [7; 32];
        let packed = compress(&model, &digits, 16, hash, &device).unwrap();
        assert_eq!((packed.n(), packed.d_latent(), packed.shape()), (20, 4, [1, 8, 8]));
        let images = decompress(&model, &packed, &hash, &device).unwrap();
        let (codes, _) = digits.map_rows(&device, |x| model.encode(x)).unwrap();
        let exact = decode_codes(&model, &codes, 4, &device).unwrap();
        assert_eq!(images.len(), exact.len());
        let worst = images
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-3, "16-bit codes decode within 1e-3, got {worst}");
        let e = decompress(&model, &packed, &[8; 32], &device).unwrap_err();
        assert!(e.to_string().contains("another model"), "{e}");
        let wider = AutoencoderConfig::mlp(64, vec![16], 5).init::<B>(&device);
        let e = decompress(&wider, &packed, &hash, &device).unwrap_err();
        assert!(e.to_string().contains("4 values but the model's code has 5"), "{e}");
        let table = gen_data::Dataset::new("t", vec![0.0; 40], 2, None, None).unwrap();
        assert!(compress(&model, &table, 8, hash, &device).is_err());
    }

    /// The sweep on a slice of the embedded digits: one row per size, PCA's error falling with
    /// the size, the autoencoder measured on the same rows, codes kept for size 2 only.
    #[test]
    fn sweep_reports_every_size_against_pca() {
        let digits = gen_data::digits().unwrap();
        let (pool, test) = digits.split(0.2, 0).unwrap();
        let (train, valid) = pool.take(400).split(0.2, 1).unwrap();
        let config = AutoencoderConfig::mlp(64, vec![32], 2);
        let train_config = TrainConfig::default().with_num_epochs(2).with_batch_size(64);
        let data = Splits {
            train: &train,
            valid: &valid,
            test: &test,
        };
        let run = |latents: &[usize]| {
            let device = Default::default();
            let no_folders = &mut |_: &AutoencoderConfig| Ok(None);
            sweep::<TestAutodiffBackend>(
                "digits",
                &config,
                &train_config,
                latents,
                data,
                false,
                no_folders,
                &mut (),
                &device,
            )
        };
        let report = run(&[2, 8]).unwrap();
        assert_eq!(report.rows.len(), 2);
        assert_eq!(report.n_test, test.len());
        let (z2, z8) = (&report.rows[0], &report.rows[1]);
        assert!(z8.pca_mse < z2.pca_mse, "{} {}", z8.pca_mse, z2.pca_mse);
        assert!(z2.ae_mse.is_finite() && z2.ae_mse > 0.0);
        assert!((z2.ae_squared_error_per_image - z2.ae_mse * 64.0).abs() < 1e-9);
        assert_eq!(z2.codes_2d.as_ref().map(Vec::len), Some(2 * test.len()));
        assert!(z8.codes_2d.is_none());
        assert_eq!(z2.compression.len(), COMPRESS_BITS.len());
        assert!(report.png_bits_per_image.is_some_and(|p| p > 0.0));
        assert!(report.markdown().contains("| 8 |"));
        let e = run(&[0]).unwrap_err();
        assert!(e.to_string().contains("must be > 0"), "{e}");
    }
}
