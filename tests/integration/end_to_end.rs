//! The undercomplete autoencoder learns the embedded digits: a short run on the CPU must bring
//! the validation loss below half its starting value and below the mean-image baseline.

use crate::common;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use gen_toolkit::core::train::evaluate;
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;

#[test]
fn digits_validation_loss_falls_below_half_and_below_the_mean_image() {
    let device = Default::default();
    let _lock = common::seeded::<B>(&device, 1);
    let (train, valid) = digits().unwrap().split(0.2, 3).unwrap();
    for config in [
        AutoencoderConfig::mlp(64, vec![128, 64], 8),
        AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![16, 32], 8),
    ] {
        let model = config.init::<B>(&device);
        let (start, _) = evaluate(&model.valid(), &valid, 512, &device);
        let fitted = Trainer::new(
            TrainConfig::default()
                .with_num_epochs(12)
                .with_batch_size(32)
                .with_learning_rate(2e-3)
                .with_seed(1),
        )
        .unwrap()
        .fit(model, &train, Some(&valid), &serde_json::Value::Null, &device)
        .unwrap();
        let end = fitted.best_valid_loss.unwrap();
        let baseline = train.mean_row_mse(&valid);
        eprintln!(
            "{:?}: validation MSE {start:.5} -> {end:.5}, mean image {baseline:.5}",
            config.architecture
        );
        assert!(end < 0.5 * start, "{:?}: {start} -> {end}", config.architecture);
        assert!(
            end < baseline,
            "{:?}: {end} is not below the mean-image baseline {baseline}",
            config.architecture
        );
    }
}

/// Same seed, same data: the same weights, to the bit, on ndarray.
#[test]
fn training_is_bit_identical_for_a_seed() {
    let _lock = common::seed_lock();
    let device = Default::default();
    let train = digits().unwrap().take(256);
    let run = |seed: u64| {
        B::seed(&device, seed);
        let model = AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![4], 4).init::<B>(&device);
        let cfg = TrainConfig::default()
            .with_num_epochs(2)
            .with_batch_size(32)
            .with_seed(seed);
        let fitted = Trainer::new(cfg)
            .unwrap()
            .fit(model, &train, None::<&Dataset>, &serde_json::Value::Null, &device)
            .unwrap();
        fitted.model.valid().encode(train.to_tensor(&device)).into_data()
    };
    let a = run(3);
    a.assert_eq(&run(3), true);
    assert_ne!(a, run(4));
}
