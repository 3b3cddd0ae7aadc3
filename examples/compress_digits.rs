//! Compress: an autoencoder's codes quantised and packed into `.genz` bytes, bits per image
//! against PSNR, beside lossless PNG (the compression table of `gen eval` and `gen sweep`), and
//! one file written and read back in memory.
//!
//! `cargo run --release --example compress_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use gen_toolkit::ae::eval;
use gen_toolkit::prelude::*;

fn main() -> anyhow::Result<()> {
    let (train, valid, test) = common::digit_splits();
    let device = Default::default();
    let config = AutoencoderConfig::mlp(64, vec![256, 128], 8);
    let train_config = TrainConfig::default()
        .with_num_epochs(common::epochs(100, 3))
        .with_batch_size(64)
        .with_learning_rate(2e-3);
    let fitted = eval::fit::<Autodiff<Flex>>(&config, &train_config, &train, Some(&valid), None, &mut (), &device)?;
    let model = &fitted.model;
    // A model saved in a run folder is named by `eval::model_hash`; this one lives in memory.
    let hash = [0; 32];
    let shape = test.image_shape().expect("the digits are images");
    for row in eval::compression_table(model, &test, hash, &device)? {
        println!(
            "{} bits/value: {:.1} bits/image, PSNR {:.2} dB",
            row.bits, row.file_bits_per_image, row.psnr
        );
    }
    println!("PNG: {:.1} bits/image", eval::png_bits_per_image(&test, shape)?);
    // One file, as gen compress and gen decompress make and read it: encode, quantise to 6 bits,
    // pack; unpack, check the model, decode.
    let bytes = eval::compress(model, &test, 6, hash, &device)?.to_bytes();
    let images = eval::decompress(model, &CompressedCodes::from_bytes(&bytes)?, &hash, &device)?;
    println!(
        "{} images in {} bytes, decoded to {} values",
        test.len(),
        bytes.len(),
        images.len()
    );
    Ok(())
}
