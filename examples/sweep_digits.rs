//! Reduce dimensions better than PCA: one autoencoder per latent size on the embedded digits,
//! each against PCA with as many components, by squared reconstruction error on the test images
//! (the library call behind `gen sweep`).
//!
//! `cargo run --release --example sweep_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use gen_toolkit::ae::eval::{self, Splits};
use gen_toolkit::prelude::*;

fn main() -> anyhow::Result<()> {
    let (train, valid, test) = common::digit_splits();
    // The linear path starts each model at PCA's solution, so training can only add to it.
    let config = AutoencoderConfig::mlp(64, vec![256, 128], 2).with_pca_path();
    let train_config = TrainConfig::default()
        .with_num_epochs(common::epochs(100, 3))
        .with_batch_size(64)
        .with_learning_rate(2e-3);
    let data = Splits {
        train: &train,
        valid: &valid,
        test: &test,
    };
    // No run folders (`|_| Ok(None)`), no progress display (`()`).
    let report = eval::sweep::<Autodiff<Flex>>(
        "digits",
        &config,
        &train_config,
        &[2, 8, 16, 32],
        data,
        false,
        &mut |_| Ok(None),
        &mut (),
        &Default::default(),
    )?;
    print!("{}", report.markdown());
    Ok(())
}
