//! One model, several backends: the same weights give the same outputs on ndarray, Flex and wgpu
//! within 1e-4 (different kernels sum in different orders; observed differences are ~1e-6).

use crate::common;

use burn::backend::{Flex, NdArray, Wgpu};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};
use gen_toolkit::core::train::module_to_bytes;
use gen_toolkit::prelude::*;

const TOL: f32 = 1e-4;

fn configs() -> Vec<AutoencoderConfig> {
    vec![
        AutoencoderConfig::mlp(64, vec![32], 6),
        AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![4, 8], 6),
    ]
}

/// Copies an ndarray model's weights into a model on backend `T` and reconstructs `x` there.
fn outputs_on<T: Backend>(config: &AutoencoderConfig, source: &Autoencoder<NdArray>, x: &TensorData) -> TensorData {
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    let device = T::Device::default();
    let bytes = module_to_bytes(source.clone()).unwrap();
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, &device)
        .unwrap();
    let model = config.init::<T>(&device).load_record(record);
    model
        .reconstruct(Tensor::<T, 2>::from_data(x.clone(), &device))
        .into_data()
}

fn reference(config: &AutoencoderConfig) -> (Autoencoder<NdArray>, TensorData, TensorData) {
    let device = Default::default();
    let model = config.init::<NdArray>(&device);
    let x = Tensor::<NdArray, 2>::random([16, 64], Distribution::Default, &device);
    let y = model.reconstruct(x.clone()).into_data();
    (model, x.into_data(), y)
}

#[test]
fn flex_matches_ndarray() {
    let _lock = common::seed_lock();
    for config in configs() {
        let (model, x, y) = reference(&config);
        outputs_on::<Flex>(&config, &model, &x).assert_approx_eq::<f32>(&y, Tolerance::absolute(TOL));
    }
}

#[test]
fn wgpu_matches_ndarray() {
    let _lock = common::seed_lock();
    let probe = std::panic::catch_unwind(|| Tensor::<Wgpu, 1>::ones([4], &Default::default()).sum().into_scalar());
    if probe.is_err() {
        common::skip(
            "GEN_REQUIRE_WGPU",
            "wgpu found no adapter (install mesa-vulkan-drivers for a software one)",
        );
        return;
    }
    for config in configs() {
        let (model, x, y) = reference(&config);
        outputs_on::<Wgpu>(&config, &model, &x).assert_approx_eq::<f32>(&y, Tolerance::absolute(TOL));
    }
}
