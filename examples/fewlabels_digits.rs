//! Train with few labels: the semi-supervised GAN's discriminator learns from 50 labelled
//! digits and the rest of the training images without their labels, and is compared on the
//! test images with the evaluation classifier trained on the 50 labelled digits alone (what
//! `gen train --model ssgan --labels 50` and `gen eval` do).
//!
//! `cargo run --release --example fewlabels_digits [-- --quick]`

mod common;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use gen_toolkit::gan::augmentation::train_probe_classifier;
use gen_toolkit::gan::ssgan::{SsganConfig, SsganTrainer, evaluate, labelled_subset};
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let (train, valid, test) = common::digit_splits();
    let labelled = train.subset(&labelled_subset(&train, 50, 10, 0)?, "labelled");
    let device = Default::default();
    B::seed(&device, 0);
    // Smaller networks than the paper's MNIST ones, for 8x8 images.
    let ss = SsganConfig {
        d_hidden: vec![200, 100],
        d_latent: 32,
        g_hidden: vec![200],
        ..SsganConfig::new(train.d(), 10)
    };
    let (g, d) = ss.try_init::<B>(&device)?;
    // The reference settings: Adam at 3e-3 with β₁ = 0.5, batches of 100.
    let mut config = TrainConfig::default()
        .with_num_epochs(common::epochs(60, 2))
        .with_batch_size(100)
        .with_learning_rate(3e-3);
    config.beta_1 = 0.5;
    let fitted =
        SsganTrainer::new(config, ss)?.fit(g, d, &train, &labelled, Some(&valid), &serde_json::Value::Null, &device)?;
    let ours = evaluate(&fitted.classifier(), &test, &device)?;
    let budget = if common::quick() { 500 } else { 3_000 };
    let (alone, _) = train_probe_classifier::<B>(&labelled, &test, 10, budget, 0, None, &device)?;
    println!(
        "test error with 50 labels: semi-supervised GAN {:.2} % ({} of {}), classifier on the labels alone {:.2} %",
        100.0 * ours.error,
        ours.errors,
        ours.n,
        100.0 * (1.0 - alone)
    );
    Ok(())
}
