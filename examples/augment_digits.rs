//! Augment a small labelled set: a conditional GAN trained on 300 labelled digits adds
//! synthetic images to them, and a classifier trained with and without them is compared on the
//! test images, over seeds and at the same training budget (the experiment of `gen eval
//! --augment true`).
//!
//! `cargo run --release --example augment_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use gen_toolkit::gan::augmentation::{self, AugmentOptions};
use gen_toolkit::gan::{EpochReport, GanArchitecture, GanConfig, GanTrainer};
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let (train, _, test) = common::digit_splits();
    let real = train.take(300);
    let device = Default::default();
    let shape = real.image_shape().expect("the digits are images");
    B::seed(&device, 0);
    let gan = GanConfig {
        d_latent: 16,
        architecture: GanArchitecture::Mlp { hidden: vec![128, 128] },
        n_classes: Some(10),
        ..GanConfig::dcgan(shape)
    };
    let (g, d) = gan.try_init::<B>(&device)?;
    let train_config = TrainConfig::default()
        .with_num_epochs(common::epochs(300, 2))
        .with_batch_size(32)
        .with_learning_rate(2e-4);
    let no_monitor = |_: usize, _: &_| {
        Ok(EpochReport {
            columns: Vec::new(),
            modes: None,
        })
    };
    let fitted = GanTrainer::new(train_config, gan)?.fit(g, d, &real, &serde_json::Value::Null, &device, no_monitor)?;
    let g = fitted.generator.valid();
    let options = AugmentOptions {
        seeds: if common::quick() { 1 } else { 3 },
        budget: if common::quick() { 1_000 } else { 20_000 },
        ..AugmentOptions::default()
    };
    let report = augmentation::experiment::<B>(&g, None, &real, &test, &options, 0, &mut (), &device)?;
    print!("{}", report.summary());
    Ok(())
}
