//! Upscale images: a super-resolution generator trained to double the embedded digits' sides
//! (4x4 averages back to 8x8), against bicubic interpolation by PSNR and SSIM (the protocol of
//! `gen eval` on a super-resolution run).
//!
//! `cargo run --release --example upscale_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use gen_toolkit::gan::sr::{self, SrConfig};
use gen_toolkit::gan::{Discriminator, GanTrainer};
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let (train, _, test) = common::digit_splits();
    let device = Default::default();
    let shape = train.image_shape().expect("the digits are images");
    B::seed(&device, 0);
    // The content loss alone (no adversarial term): the PSNR-oriented model.
    let config = SrConfig {
        channels: 32,
        blocks: 1,
        adversarial_weight: 0.0,
        ..SrConfig::new(shape)
    };
    let g = config.try_init::<B>(&device)?;
    let d = Discriminator::<B>::new(&config.discriminator(), &device);
    let train_config = TrainConfig::default()
        .with_num_epochs(common::epochs(100, 2))
        .with_batch_size(64)
        .with_learning_rate(1e-3);
    let fitted = GanTrainer::new(train_config, config.discriminator())?.fit(
        g,
        d,
        &train,
        &serde_json::Value::Null,
        &device,
        common::no_monitor,
    )?;
    let report = sr::benchmark("digits", &fitted.generator.valid(), None, &test, &device)?;
    println!(
        "2x upscaling of {} test digits: model {:.2} dB / SSIM {:.4}, bicubic {:.2} dB / {:.4} ({:+.2} dB)",
        report.n_test,
        report.model.psnr,
        report.model.ssim,
        report.bicubic.psnr,
        report.bicubic.ssim,
        report.gain_over_bicubic_db
    );
    Ok(())
}
