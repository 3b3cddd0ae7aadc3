//! `gen denoise`, `gen compress` and `gen decompress`: a trained image autoencoder applied to
//! image files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use gen_ae::Autoencoder;
use gen_ae::compress::CompressedCodes;
use gen_core::eval::mean_psnr;
use gen_core::nn::ImageShape;
use gen_core::noise::Noise;
use gen_core::train::RunDir;
use gen_data::images::{self, Images};

use crate::ae::load_model;
use crate::backend::{BackendChoice, Job, with_backend};
use crate::data::check_shape;
use gen_ae::eval::model_hash;

/// Flags of `gen denoise`.
#[derive(Debug, Args)]
pub struct DenoiseArgs {
    /// The run folder of a trained image model (a denoising autoencoder, ideally).
    #[arg(long)]
    pub run: PathBuf,
    /// Images: an IDX file, a PNG, or a folder of PNGs.
    #[arg(long)]
    pub input: PathBuf,
    /// Folder for the cleaned PNGs.
    #[arg(long)]
    pub output: PathBuf,
    /// Corrupt the input first (e.g. gaussian:0.3) to try the model on clean images; the noisy
    /// copies go to OUTPUT/noisy/ and the PSNR before and after is printed.
    #[arg(long)]
    pub add_noise: Option<String>,
    /// Seed of the added noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
}

/// Flags of `gen compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The run folder of a trained image model.
    #[arg(long)]
    pub run: PathBuf,
    /// Images: an IDX file, a PNG, or a folder of PNGs.
    #[arg(long)]
    pub input: PathBuf,
    /// The compressed file to write (.genz).
    #[arg(long)]
    pub output: PathBuf,
    /// Bits per code value, 1 to 16.
    #[arg(long, default_value_t = 8)]
    pub bits: u8,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
}

/// Flags of `gen decompress`.
#[derive(Debug, Args)]
pub struct DecompressArgs {
    /// The run folder of the model that compressed the file.
    #[arg(long)]
    pub run: PathBuf,
    /// The compressed file (.genz).
    #[arg(long)]
    pub input: PathBuf,
    /// Folder for the decompressed PNGs.
    #[arg(long)]
    pub output: PathBuf,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
}

/// Row-major image values as a data set the batch helpers take.
fn as_dataset(images: &Images) -> anyhow::Result<gen_data::Dataset> {
    Ok(gen_data::Dataset::new(
        "input",
        images.values.clone(),
        images.shape.numel(),
        None,
        Some(images.shape),
    )?)
}

/// Loads a run's model and the images at `input`, which must have the shape it was trained on.
fn model_and_images<B: Backend>(
    run: &Path,
    input: &Path,
    device: &B::Device,
) -> anyhow::Result<(RunDir, Autoencoder<B>, Images)> {
    let (stored, run, model) = load_model::<B>(run, device)?;
    let images = images::read_images(input)?;
    check_shape(stored.ae_config(run.root())?.image, images.shape, input)?;
    Ok((run, model, images))
}

struct DenoiseJob(DenoiseArgs);

impl Job for DenoiseJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        let noise: Option<Noise> = a
            .add_noise
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let (_, model, images) = model_and_images::<B::InnerBackend>(&a.run, &a.input, &device)?;
        let clean = as_dataset(&images)?;
        let input = match noise {
            Some(n) => {
                B::InnerBackend::seed(&device, a.seed);
                let (noisy, _) = clean.map_rows::<B::InnerBackend>(&device, |x| n.apply(x, Some((0.0, 1.0))))?;
                let noisy = Images {
                    values: noisy,
                    ..images.clone()
                };
                let written = images::write_pngs(&a.output.join("noisy"), &noisy)?;
                println!(
                    "wrote {} noisy images to {}",
                    written.len(),
                    a.output.join("noisy").display()
                );
                noisy
            }
            None => images.clone(),
        };
        let (denoised, _) = as_dataset(&input)?.map_rows::<B::InnerBackend>(&device, |x| model.reconstruct(x))?;
        let out = Images {
            values: denoised,
            ..images.clone()
        };
        let written = images::write_pngs(&a.output, &out)?;
        println!("wrote {} denoised images to {}", written.len(), a.output.display());
        if noise.is_some() {
            let d = images.shape.numel();
            println!(
                "PSNR against the clean input: noisy {:.2} dB, denoised {:.2} dB",
                mean_psnr(&images.values, &input.values, d, 1.0),
                mean_psnr(&images.values, &out.values, d, 1.0)
            );
        }
        Ok(())
    }
}

/// `gen denoise`.
pub fn denoise(args: DenoiseArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, DenoiseJob(args))
}

struct CompressJob(CompressArgs);

impl Job for CompressJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        let (run, model, images) = model_and_images::<B::InnerBackend>(&a.run, &a.input, &device)?;
        let packed = gen_ae::eval::compress(&model, &as_dataset(&images)?, a.bits, model_hash(&run)?, &device)?;
        packed.write(&a.output)?;
        let raw_bits = images.shape.numel() as f64 * 8.0;
        println!(
            "compressed {} images of {}x{} into {} ({} bytes): {:.1} bits per image ({:.1} of codes), \
             {:.1}x smaller than 8-bit pixels",
            images.n,
            images.shape.height,
            images.shape.width,
            a.output.display(),
            packed.encoded_len(),
            packed.bits_per_image(),
            packed.payload_bits_per_image(),
            raw_bits / packed.bits_per_image()
        );
        Ok(())
    }
}

/// `gen compress`.
pub fn compress(args: CompressArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, CompressJob(args))
}

struct DecompressJob(DecompressArgs);

impl Job for DecompressJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = self.0;
        let packed = CompressedCodes::read(&a.input)?;
        let (stored, run, model) = load_model::<B::InnerBackend>(&a.run, &device)?;
        let [c, h, w] = packed.shape();
        let shape = ImageShape {
            channels: c as usize,
            height: h as usize,
            width: w as usize,
        };
        check_shape(stored.ae_config(run.root())?.image, shape, &a.input)?;
        let values = gen_ae::eval::decompress(&model, &packed, &model_hash(&run)?, &device).with_context(|| {
            format!(
                "cannot decompress {} with the model of {}",
                a.input.display(),
                a.run.display()
            )
        })?;
        let n = packed.n();
        let images = Images {
            values,
            shape,
            n,
            names: (0..n).map(|i| format!("img-{i:05}")).collect(),
        };
        let written = images::write_pngs(&a.output, &images)?;
        println!("decompressed {} images to {}", written.len(), a.output.display());
        Ok(())
    }
}

/// `gen decompress`.
pub fn decompress(args: DecompressArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, DecompressJob(args))
}
