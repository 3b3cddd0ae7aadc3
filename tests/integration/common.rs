//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use gen_toolkit::core::train::Fitted;
use gen_toolkit::prelude::*;

/// The backend the model-family tests train on.
pub type B = Autodiff<Flex>;

/// Seeds the backend's generator with `seed`, builds a model with `init`, and trains it on
/// `train` (validating on `valid`, if any) for `epochs`: batch 32, Adam at 2e-3, `seed` for the
/// shuffling too. Callers hold [`seed_lock`].
pub fn fit<M>(
    init: impl FnOnce(&burn::tensor::Device<B>) -> M,
    train: &Dataset,
    valid: Option<&Dataset>,
    epochs: usize,
    seed: u64,
) -> Fitted<M>
where
    M: AutodiffModule<B> + Objective<B>,
    M::InnerModule: Objective<Flex>,
{
    let device = Default::default();
    B::seed(&device, seed);
    let model = init(&device);
    let cfg = TrainConfig::default()
        .with_num_epochs(epochs)
        .with_batch_size(32)
        .with_learning_rate(2e-3)
        .with_seed(seed);
    Trainer::new(cfg)
        .unwrap()
        .fit(model, train, valid, &serde_json::Value::Null, &device)
        .unwrap()
}

pub use gen_toolkit::core::testing::{seed_lock, seeded};

/// Whether the variable is set to something other than `0`.
fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v != "0")
}

/// Prints why a test is skipped, or fails it when `var` says the resource is required (CI).
pub fn skip(var: &str, why: &str) {
    assert!(!required(var), "{var} is set but {why}");
    eprintln!("skipped: {why} (set {var}=1 to make this a failure)");
}

/// The folder with mnist/ and fashion-mnist/: `GEN_DATA_DIR`, else `../shared/data` beside the
/// checkout. `None` (after saying why) when absent.
pub fn data_dir() -> Option<PathBuf> {
    let p = std::env::var_os("GEN_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if p.join("mnist").is_dir() {
        Some(p)
    } else {
        skip(
            "GEN_REQUIRE_DATA",
            &format!("no MNIST files under {} (set GEN_DATA_DIR)", p.display()),
        );
        None
    }
}
