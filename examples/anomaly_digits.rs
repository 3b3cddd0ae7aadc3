//! Detect anomalies: the one-class protocol on the embedded digits. For each normal digit an
//! ensemble of autoencoders trained on that digit alone scores every test image; the other
//! digits are the anomalies (the library call behind `gen anomaly --all-classes --ensemble 3`).
//!
//! `cargo run --release --example anomaly_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use gen_toolkit::ae::anomaly::{self, Thresholding};
use gen_toolkit::ae::eval::Splits;
use gen_toolkit::prelude::*;

fn main() -> anyhow::Result<()> {
    let (train, valid, test) = common::digit_splits();
    let config = AutoencoderConfig::mlp(64, vec![32], 4);
    let train_config = TrainConfig::default()
        .with_num_epochs(common::epochs(60, 5))
        .with_batch_size(16);
    let data = Splits {
        train: &train,
        valid: &valid,
        test: &test,
    };
    // Every class in turn, or two in quick mode.
    let classes = common::quick().then_some(&[0, 1][..]);
    // The thresholded detector: an ensemble of three autoencoders' standardised reconstruction
    // errors (two in quick mode).
    let members = if common::quick() { 2 } else { 3 };
    let t = Thresholding::new(ScoreKind::Reconstruction, 0.1).with_ensemble(members);
    let report = anomaly::one_class::<Autodiff<Flex>>(
        "digits",
        "ae-mlp-z4",
        &config,
        &train_config,
        data,
        classes,
        t,
        &mut |_, _, _| Ok(None),
        &mut (),
        &Default::default(),
    )?;
    print!("{}", report.markdown());
    Ok(())
}
