//! One model, several backends: the same weights give the same outputs on ndarray, Flex and wgpu
//! within 1e-4 (different kernels sum in different orders; observed differences are ~1e-6); and
//! our batch norm, arranged for Flex's fast paths, computes burn's on each of them.

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

/// Whether wgpu has an adapter; says why it skipped when not.
fn wgpu_available() -> bool {
    let probe = std::panic::catch_unwind(|| Tensor::<Wgpu, 1>::ones([4], &Default::default()).sum().into_scalar());
    if probe.is_err() {
        common::skip(
            "GEN_REQUIRE_WGPU",
            "wgpu found no adapter (install mesa-vulkan-drivers for a software one)",
        );
    }
    probe.is_ok()
}

#[test]
fn wgpu_matches_ndarray() {
    let _lock = common::seed_lock();
    if !wgpu_available() {
        return;
    }
    for config in configs() {
        let (model, x, y) = reference(&config);
        outputs_on::<Wgpu>(&config, &model, &x).assert_approx_eq::<f32>(&y, Tolerance::absolute(TOL));
    }
}

/// Our batch norm (arranged for Flex's fast paths) against burn's on backend `T`, in training:
/// the output and the gradients of the input, γ and β for a random upstream gradient; then the
/// inference output from the running statistics.
fn batch_norm_matches_burn<T: Backend>() {
    use burn::backend::Autodiff;
    use burn::module::{AutodiffModule, Param};
    use gen_toolkit::core::nn::{BatchNorm, BatchNormConfig};
    type A<T> = Autodiff<T>;
    let device = T::Device::default();
    let data = |shape: [usize; 4], mean: f64| {
        Tensor::<NdArray, 4>::random(shape, Distribution::Normal(mean, 2.0), &Default::default()).into_data()
    };
    // Separate leaves with the same values, so that the two graphs stay apart (a backward pass
    // frees the whole graph it walked).
    let leaf =
        |v: [f32; 3]| Param::from_tensor(Tensor::<A<T>, 1>::from_data(TensorData::new(v.to_vec(), [3]), &device));
    let (gamma, beta) = ([0.5f32, 1.0, 1.5], [-0.3f32, 0.0, 0.2]);
    let ours = BatchNorm {
        gamma: leaf(gamma),
        beta: leaf(beta),
        ..BatchNormConfig::new(3).init::<A<T>>(&device)
    };
    let mut theirs = burn::nn::BatchNormConfig::new(3).init::<A<T>>(&device);
    theirs.gamma = leaf(gamma);
    theirs.beta = leaf(beta);
    for _ in 0..2 {
        let x = data([8, 3, 6, 5], 1.5);
        let xa = Tensor::<A<T>, 4>::from_data(x.clone(), &device).require_grad();
        let xb = Tensor::<A<T>, 4>::from_data(x, &device).require_grad();
        let up = Tensor::<A<T>, 4>::from_data(data([8, 3, 6, 5], 0.0), &device);
        let (ya, yb) = (ours.forward(xa.clone()), theirs.forward(xb.clone()));
        ya.clone()
            .into_data()
            .assert_approx_eq::<f32>(&yb.clone().into_data(), Tolerance::absolute(TOL));
        let (ga, gb) = ((ya * up.clone()).sum().backward(), (yb * up).sum().backward());
        let pairs = [
            (xa.grad(&ga).unwrap().into_data(), xb.grad(&gb).unwrap().into_data()),
            (
                ours.gamma.grad(&ga).unwrap().into_data(),
                theirs.gamma.grad(&gb).unwrap().into_data(),
            ),
            (
                ours.beta.grad(&ga).unwrap().into_data(),
                theirs.beta.grad(&gb).unwrap().into_data(),
            ),
        ];
        for (a, b) in pairs {
            a.assert_approx_eq::<f32>(&b, Tolerance::absolute(TOL));
        }
    }
    let x = Tensor::<T, 4>::from_data(data([4, 3, 6, 5], 1.5), &device);
    ours.valid()
        .forward(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&theirs.valid().forward(x).into_data(), Tolerance::absolute(TOL));
}

#[test]
fn batch_norm_matches_burns_on_ndarray_flex_and_wgpu() {
    let _lock = common::seed_lock();
    batch_norm_matches_burn::<NdArray>();
    batch_norm_matches_burn::<Flex>();
    if wgpu_available() {
        batch_norm_matches_burn::<Wgpu>();
    }
}
