//! Remove noise: a denoising autoencoder trained on noisy digits, measured against a 3x3 median
//! filter by PSNR and SSIM at three noise levels (the denoising table of `gen eval`).
//!
//! `cargo run --release --example denoise_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use gen_toolkit::ae::eval;
use gen_toolkit::prelude::*;

fn main() -> anyhow::Result<()> {
    let (train, valid, test) = common::digit_splits();
    let device = Default::default();
    let mut config = AutoencoderConfig::mlp(64, vec![256, 128], 32);
    config.noise = Some(Noise::Gaussian { sigma: 0.3 });
    let train_config = TrainConfig::default()
        .with_num_epochs(common::epochs(100, 3))
        .with_batch_size(64)
        .with_learning_rate(2e-3);
    let fitted = eval::fit::<Autodiff<Flex>>(&config, &train_config, &train, Some(&valid), None, &mut (), &device)?;
    let shape = test.image_shape().expect("the digits are images");
    let table = eval::denoising_table(&fitted.model, &test, shape, &device)?;
    println!("sigma | PSNR noisy | median 3x3 | autoencoder (dB)");
    for r in &table.rows {
        println!(
            "{:>5} | {:>10.2} | {:>10.2} | {:>11.2}",
            r.sigma, r.psnr_noisy, r.psnr_median, r.psnr_model
        );
    }
    Ok(())
}
