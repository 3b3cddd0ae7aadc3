//! Generate images: a conditional GAN trained on the embedded digits, judged by the evaluation
//! protocol of `gen eval` (classifier-feature FID against the floor of held-out real images,
//! class coverage, classifier score, and the share of samples drawn as their class).
//!
//! `cargo run --release --example gan_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use gen_toolkit::gan::classifier::{self, ClassifierConfig};
use gen_toolkit::gan::eval;
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let (train, valid, rest) = common::digit_splits();
    // Real images that neither network trains on: half give the floor, half are the test set.
    let (held_out, test) = rest.split(0.5, 2)?;
    let device = Default::default();
    let shape = train.image_shape().expect("the digits are images");

    // The evaluation classifier, trained once on the training images by the library's recipe
    // (which seeds the backend with its seed), here for 30 epochs in batches of 64 where the
    // recipe would give this small set 60 epochs of 128.
    let recipe = classifier::recipe(train.len())
        .with_num_epochs(common::epochs(30, 2))
        .with_batch_size(64);
    let trained = classifier::train::<B>(
        &ClassifierConfig::new(shape, 10),
        &mut Trainer::new(recipe)?,
        (&train, &valid, &test),
        &serde_json::Value::Null,
        &device,
    )?;
    println!(
        "evaluation classifier: test accuracy {:.1} %",
        100.0 * trained.test_accuracy
    );
    let classifier = trained.model;

    // A conditional GAN with MLP networks: one class label per sample.
    let g = common::train_cgan::<B>(&train, common::epochs(60, 2), 64, &device)?;

    let n = held_out.len();
    let report = eval::evaluate_generator("digits", "last", &g, None, &classifier, &held_out, &test, n, &device)?;
    print!("{}", report.summary());
    Ok(())
}
