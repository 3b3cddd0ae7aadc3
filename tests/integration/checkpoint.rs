//! A trained autoencoder saved and loaded gives identical outputs; a damaged file is refused.

use crate::common;

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};
use gen_toolkit::core::CoreError;
use gen_toolkit::core::train::{load_module, save_module};
use gen_toolkit::prelude::*;

#[test]
fn round_trip_gives_identical_outputs_and_corruption_is_an_error() {
    let _lock = common::seed_lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ae.ckpt");
    let device = Default::default();
    for config in [
        AutoencoderConfig::mlp(64, vec![32], 6),
        AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![8, 16], 6),
    ] {
        let a = config.init::<Flex>(&device);
        save_module(&a, serde_json::to_value(&config).unwrap(), &path).unwrap();
        let (b, header) = load_module(config.init::<Flex>(&device), &path, &device).unwrap();
        assert_eq!(
            serde_json::from_value::<AutoencoderConfig>(header.config).unwrap(),
            config
        );
        let x = Tensor::<Flex, 2>::random([5, 64], Distribution::Default, &device);
        a.reconstruct(x.clone())
            .into_data()
            .assert_eq(&b.reconstruct(x).into_data(), true);

        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = load_module(config.init::<Flex>(&device), &path, &device).unwrap_err();
        assert!(matches!(err, CoreError::CorruptCheckpoint { .. }), "{err}");
        std::fs::write(&path, &bytes[..mid]).unwrap();
        assert!(load_module(config.init::<Flex>(&device), &path, &device).is_err());
    }
}
