//! Trains the undercomplete autoencoder on the embedded digits and compares it with the mean image.
//!
//! `cargo run --release --example ae_digits [-- --quick]` (Flex; add `--features ndarray` and
//! `-- ndarray` for ndarray).
//! Writes `target/ae_digits/` with the config, checkpoints and metrics.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use gen_toolkit::prelude::*;

mod common;

fn launch<B: AutodiffBackend>(device: B::Device) {
    B::seed(&device, 0);
    let digits = digits().expect("embedded digits");
    let (pool, test) = digits.split(0.2, 0).expect("split");
    let (train, valid) = pool.split(0.1, 1).expect("split");
    let config = AutoencoderConfig::mlp(64, vec![256, 128], 8);
    let run = RunDir::create("target/ae_digits", &serde_json_config(&config), true).expect("run folder");
    let fitted = Trainer::new(
        TrainConfig::default()
            .with_num_epochs(common::epochs(100, 3))
            .with_batch_size(64)
            .with_learning_rate(2e-3),
    )
    .expect("valid config")
    .with_run_dir(run)
    .fit(
        config.init::<B>(&device),
        &train,
        Some(&valid),
        &serde_json_config(&config),
        &device,
    )
    .expect("training");
    let model = fitted.model.valid();
    let x = test.to_tensor::<B::InnerBackend>(&device);
    let per_sample = model.squared_error_per_sample(x).mean().into_scalar().elem::<f64>();
    let means = train.feature_means();
    let baseline: f64 = (0..test.len())
        .map(|i| {
            test.row(i)
                .iter()
                .zip(&means)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / test.len() as f64;
    println!("test squared error per image: autoencoder {per_sample:.3}, mean image {baseline:.3}");
}

fn serde_json_config(config: &AutoencoderConfig) -> serde_json::Value {
    serde_json::json!({ "autoencoder": config })
}

fn main() {
    #[cfg(feature = "ndarray")]
    if std::env::args().nth(1).as_deref() == Some("ndarray") || cfg!(not(feature = "flex")) {
        return launch::<Autodiff<burn::backend::NdArray>>(Default::default());
    }
    #[cfg(feature = "flex")]
    launch::<Autodiff<burn::backend::Flex>>(Default::default());
}
