//! The autoencoder family on the embedded digits, each model and each use with a real outcome:
//! sparse codes are sparser, contractive encoders contract, denoising beats the noisy input,
//! the anomaly score separates a digit from the rest, and compressed codes round-trip.

use crate::common;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use gen_toolkit::core::eval::mean_psnr;
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;
type I = Flex;

/// Trains `config` on `train` for `epochs` with a fixed seed.
fn fit(config: &AutoencoderConfig, train: &Dataset, epochs: usize) -> Autoencoder<I> {
    common::fit(|d| config.init::<B>(d), train, None, epochs, 5)
        .model
        .valid()
}

fn mean(t: burn::tensor::Tensor<I, 1>) -> f32 {
    t.mean().into_scalar()
}

#[test]
fn sparse_codes_are_sparser_than_plain_ones() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 1).unwrap();
    let x = test.to_tensor::<I>(&Default::default());
    // An overcomplete sigmoid code, with the penalty's weight at 0 and at 0.05.
    let base = AutoencoderConfig::mlp(64, vec![128], 96);
    let kl = |beta| base.clone().with_regularizer(Regularizer::SparseKl { rho: 0.05, beta });
    let plain = fit(&kl(0.0), &train, 15);
    let sparse = fit(&kl(0.05), &train, 15);
    let (plain_mean, _) = plain.activity(x.clone());
    let (sparse_mean, sparse_active) = sparse.activity(x.clone());
    let (pm, sm) = (mean(plain_mean), mean(sparse_mean));
    eprintln!("mean activation: plain {pm:.4}, sparse-kl {sm:.4} (target 0.05)");
    assert!(sm < 0.1, "sparse-kl mean activation {sm} is not near the target 0.05");
    assert!(sm < 0.5 * pm, "sparse {sm} vs plain {pm}");
    assert!(mean(sparse_active) < 0.3);

    let l1 = |lambda| base.clone().with_regularizer(Regularizer::SparseL1 { lambda });
    let plain = fit(&l1(0.0), &train, 15);
    let l1 = fit(&l1(2e-3), &train, 15);
    let (pa, la) = (mean(plain.activity(x.clone()).1), mean(l1.activity(x).1));
    eprintln!("share of active units: plain {pa:.3}, sparse-l1 {la:.3}");
    assert!(la < 0.6 * pa, "L1 share active {la} vs plain {pa}");
}

#[test]
fn contractive_encoders_contract() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 1).unwrap();
    let x = test.take(200).to_tensor::<I>(&Default::default());
    for base in [
        AutoencoderConfig::mlp(64, vec![128], 8),
        AutoencoderConfig::conv(ImageShape::grey(8, 8), vec![8, 16], 8),
    ] {
        let plain = fit(&base, &train, 10);
        let cae = fit(
            &base.clone().with_regularizer(Regularizer::Contractive {
                lambda: 1e-3,
                projections: None,
            }),
            &train,
            10,
        );
        let stochastic = fit(
            &base.clone().with_regularizer(Regularizer::Contractive {
                lambda: 1e-3,
                projections: Some(2),
            }),
            &train,
            10,
        );
        let norm = |m: &Autoencoder<I>| mean(m.encode_with_jacobian_norm(x.clone(), None).1);
        let (p, c, s) = (norm(&plain), norm(&cae), norm(&stochastic));
        let mse = |m: &Autoencoder<I>| m.loss(x.clone()).into_scalar();
        eprintln!(
            "{:?}: ||J||^2 plain {p:.2}, contractive {c:.2}, 2 projections {s:.2}; MSE {:.4} {:.4} {:.4}",
            base.architecture,
            mse(&plain),
            mse(&cae),
            mse(&stochastic)
        );
        assert!(c < 0.5 * p, "exact penalty: {c} vs plain {p}");
        assert!(s < 0.5 * p, "projected penalty: {s} vs plain {p}");
        assert!(
            mse(&cae) < 0.05,
            "the contractive model must still reconstruct: {}",
            mse(&cae)
        );
    }
}

#[test]
fn denoising_beats_the_noisy_input() {
    let _lock = common::seed_lock();
    let device = Default::default();
    let (train, test) = digits().unwrap().split(0.2, 1).unwrap();
    for noise in [
        Noise::Gaussian { sigma: 0.3 },
        Noise::Masking { fraction: 0.3 },
        Noise::SaltAndPepper { fraction: 0.2 },
    ] {
        let dae = fit(
            &AutoencoderConfig::mlp(64, vec![128, 64], 16).with_noise(noise),
            &train,
            25,
        );
        I::seed(&device, 9);
        let clean = test.to_tensor::<I>(&device);
        let noisy = noise.apply(clean.clone(), Some((0.0, 1.0)));
        let denoised: Vec<f32> = dae.reconstruct(noisy.clone()).into_data().to_vec().unwrap();
        let noisy: Vec<f32> = noisy.into_data().to_vec().unwrap();
        let (before, after) = (
            mean_psnr(test.features(), &noisy, 64, 1.0),
            mean_psnr(test.features(), &denoised, 64, 1.0),
        );
        eprintln!("{}: PSNR noisy {before:.2} dB, denoised {after:.2} dB", noise.label());
        assert!(after > before + 2.0, "{}: {before} -> {after}", noise.label());
    }
}

#[test]
fn reconstruction_score_separates_a_digit_from_the_rest() {
    let _lock = common::seed_lock();
    let device = Default::default();
    let (train, test) = digits().unwrap().split(0.3, 2).unwrap();
    let normal = train.filter_labels(&[0]).unwrap();
    B::seed(&device, 5);
    let train_cfg = TrainConfig::default()
        .with_num_epochs(60)
        .with_batch_size(32)
        .with_learning_rate(2e-3)
        .with_seed(5);
    let config = AutoencoderConfig::mlp(64, vec![32], 4);
    let detector =
        AnomalyDetector::<I>::fit::<B, _>(&config, &train_cfg, &normal, ScoreKind::Reconstruction, 0.05, &device)
            .unwrap();
    assert!(
        AnomalyDetector::<I>::fit::<B, _>(&config, &train_cfg, &normal, ScoreKind::Latent, 0.7, &device).is_err(),
        "a contamination above 0.5 is refused before training"
    );
    let scores = detector.score_source(&test, &device);
    let labels: Vec<bool> = test.labels().unwrap().iter().map(|&y| y != 0).collect();
    let report = DetectionReport::new(&scores, &labels).unwrap();
    let latent: Vec<f32> = detector.both_scores(&test, &device).iter().map(|p| p.1).collect();
    let latent = DetectionReport::new(&latent, &labels).unwrap();
    eprintln!("digit 0 vs rest: {report:?}, latent {latent:?}");
    assert!(report.auroc > 0.9, "{report:?}");
    assert!(latent.auroc > 0.75, "{latent:?}");
    // At a 5 % contamination, the flagged test rows are nearly all anomalies.
    let flagged = detector.predict(&scores);
    let hits = flagged.iter().zip(&labels).filter(|(p, a)| **p == 1 && **a).count();
    let total = flagged.iter().filter(|&&p| p == 1).count();
    assert!(total > 0 && hits as f64 / total as f64 > 0.9, "{hits} of {total}");
}

#[test]
fn compressed_codes_round_trip_through_bytes() {
    let _lock = common::seed_lock();
    let device = Default::default();
    let (train, test) = digits().unwrap().split(0.2, 1).unwrap();
    let model = fit(&AutoencoderConfig::mlp(64, vec![128, 64], 12), &train, 20);
    let x = test.to_tensor::<I>(&device);
    let codes: Vec<f32> = model.encode(x.clone()).into_data().to_vec().unwrap();
    let exact: Vec<f32> = model.reconstruct(x).into_data().to_vec().unwrap();
    let hash = [7u8; 32];
    let packed = CompressedCodes::quantize(&codes, test.len(), 12, 8, [1, 8, 8], hash).unwrap();
    let bytes = packed.to_bytes();
    let back = CompressedCodes::from_bytes(&bytes).unwrap();
    back.check_model(&hash).unwrap();
    assert!(back.check_model(&[8u8; 32]).is_err());
    assert!(CompressedCodes::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let z = burn::tensor::Tensor::<I, 1>::from_floats(back.dequantize().as_slice(), &device).reshape([test.len(), 12]);
    let decoded: Vec<f32> = model.decode(z).into_data().to_vec().unwrap();
    let (p_exact, p_packed) = (
        mean_psnr(test.features(), &exact, 64, 1.0),
        mean_psnr(test.features(), &decoded, 64, 1.0),
    );
    eprintln!(
        "PSNR {p_exact:.2} dB unquantised, {p_packed:.2} dB at 8 bits, {:.1} bits per image",
        back.bits_per_image()
    );
    assert!(p_packed > p_exact - 0.2, "{p_exact} -> {p_packed}");
    assert!(
        back.bits_per_image() < 64.0 * 8.0 / 2.0,
        "smaller than half the raw 8-bit pixels"
    );
}
