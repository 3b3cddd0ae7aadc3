//! Augment a small labelled set: a conditional GAN trained on 300 labelled digits adds
//! synthetic images to them, and a classifier trained with and without them is compared on the
//! test images, over seeds and at the same training budget (the experiment of `gen eval
//! --augment true`).
//!
//! `cargo run --release --example augment_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use gen_toolkit::gan::augmentation::{self, AugmentOptions};

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let (train, _, test) = common::digit_splits();
    let real = train.take(300);
    let device = Default::default();
    B::seed(&device, 0);
    let g = common::train_cgan::<B>(&real, common::epochs(300, 2), 32, &device)?;
    let options = AugmentOptions {
        seeds: if common::quick() { 1 } else { 3 },
        budget: if common::quick() { 1_000 } else { 20_000 },
        ..AugmentOptions::default()
    };
    let report = augmentation::experiment::<B>(&g, None, &real, &test, &options, 0, &mut (), &device)?;
    print!("{}", report.summary());
    Ok(())
}
