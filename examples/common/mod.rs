// Shared by the examples (each includes it with `mod common;`): the quick mode CI runs, and the
// embedded digits split the way every example splits them.

#![allow(dead_code)]

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use gen_toolkit::gan::{EpochReport, GanArchitecture, GanConfig, GanTrainer, Generator};
use gen_toolkit::prelude::*;

/// `--quick` (or `GEN_EXAMPLE_QUICK=1`): a few epochs, enough to run every step; CI runs each
/// example this way.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick") || std::env::var_os("GEN_EXAMPLE_QUICK").is_some_and(|v| v != "0")
}

/// `full` epochs, or `quick` of them in quick mode.
pub fn epochs(full: usize, quick_epochs: usize) -> usize {
    if quick() { quick_epochs } else { full }
}

/// The embedded 8x8 digits: training, validation and test splits (72 / 8 / 20 %), the very
/// rows `gen train --dataset digits` uses.
pub fn digit_splits() -> (Dataset, Dataset, Dataset) {
    let spec = gen_toolkit::data::splits::DataSpec::default();
    let splits =
        gen_toolkit::data::splits::load_splits(&spec, std::path::Path::new("data")).expect("the digits are embedded");
    (splits.train, splits.valid, splits.test)
}

/// A conditional GAN with small MLP networks trained on `data` (labelled images) for `epochs`,
/// with no run folder and no per-epoch judgement; returns the generator without autodiff.
pub fn train_cgan<B: AutodiffBackend>(
    data: &Dataset,
    epochs: usize,
    batch_size: usize,
    device: &B::Device,
) -> anyhow::Result<Generator<B::InnerBackend>> {
    let shape = data.image_shape().expect("the digits are images");
    let gan = GanConfig {
        d_latent: 16,
        architecture: GanArchitecture::Mlp { hidden: vec![128] },
        n_classes: Some(10),
        ..GanConfig::dcgan(shape)
    };
    let (g, d) = gan.try_init::<B>(device)?;
    // DCGAN's Adam settings: rate 2e-4, β₁ = 0.5 (with the default 0.9 this GAN collapses onto
    // one class).
    let mut train_config = TrainConfig::default()
        .with_num_epochs(epochs)
        .with_batch_size(batch_size)
        .with_learning_rate(2e-4);
    train_config.beta_1 = 0.5;
    let fitted = GanTrainer::new(train_config, gan)?.fit(g, d, data, &serde_json::Value::Null, device, no_monitor)?;
    Ok(fitted.generator.valid())
}

/// A per-epoch monitor that judges nothing.
pub fn no_monitor<M>(_epoch: usize, _model: &M) -> Result<EpochReport, String> {
    Ok(EpochReport {
        columns: Vec::new(),
        modes: None,
    })
}
