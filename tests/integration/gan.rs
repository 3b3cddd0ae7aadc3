//! The GAN family on the embedded digits, judged by the project's own classifier: a DCGAN's
//! samples come close to the real data's classifier-feature Fréchet distance and cover the
//! classes, a conditional GAN draws the class it is asked for, and super-resolution beats
//! bicubic upsampling.

use crate::common;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use gen_toolkit::gan::classifier::{Classifier, ClassifierConfig};
use gen_toolkit::gan::metrics::{class_shares, distinct_modes, frechet_distance};
use gen_toolkit::gan::sr::{SrConfig, bicubic, downsample};
use gen_toolkit::gan::{EpochReport, GanArchitecture, GanConfig, GanTrainer, Generator};
use gen_toolkit::prelude::*;

// Flex: ndarray's transposed convolution is plain loops, too slow for a DCGAN test.
type B = Autodiff<Flex>;
type I = Flex;

fn classifier(train: &Dataset) -> Classifier<I> {
    let device = Default::default();
    B::seed(&device, 5);
    let model = ClassifierConfig::new(ImageShape::grey(8, 8), 10)
        .try_init::<B>(&device)
        .unwrap();
    let cfg = TrainConfig::default()
        .with_num_epochs(15)
        .with_batch_size(64)
        .with_learning_rate(1e-3)
        .with_seed(5);
    Trainer::new(cfg)
        .unwrap()
        .fit(model, train, None::<&Dataset>, &serde_json::Value::Null, &device)
        .unwrap()
        .model
        .valid()
}

fn accuracy(c: &Classifier<I>, x: &[f32], labels: &[i64]) -> f64 {
    let (_, _, preds) = c.describe(x, 64, &Default::default());
    preds.iter().zip(labels).filter(|(p, l)| **p as i64 == **l).count() as f64 / labels.len() as f64
}

fn samples(g: &Generator<I>, n: usize, labels: Option<Vec<i64>>) -> Vec<f32> {
    let device = Default::default();
    let y = labels.map(|l| Tensor::<I, 1, Int>::from_data(TensorData::new(l, [n]), &device));
    g.sample(n, y, &device).into_data().to_vec::<f32>().unwrap()
}

fn gan_config(n_classes: Option<usize>) -> GanConfig {
    GanConfig {
        d_latent: 16,
        architecture: GanArchitecture::Dcgan {
            channels: vec![16, 32],
            batch_norm: true,
        },
        n_classes,
        lr_discriminator: 1e-3,
        ..GanConfig::dcgan(ImageShape::grey(8, 8))
    }
}

fn train_gan(cfg: GanConfig, data: &Dataset, epochs: usize) -> Generator<I> {
    let device = Default::default();
    B::seed(&device, 9);
    let (g, d) = cfg.try_init::<B>(&device).unwrap();
    let mut train = TrainConfig::default()
        .with_num_epochs(epochs)
        .with_batch_size(64)
        .with_learning_rate(1e-3)
        .with_seed(9);
    train.beta_1 = 0.5;
    let fitted = GanTrainer::new(train, cfg)
        .unwrap()
        .fit(g, d, data, &serde_json::Value::Null, &device, |_, _| {
            Ok(EpochReport::default())
        })
        .unwrap();
    fitted.generator.valid()
}

#[test]
fn dcgan_samples_approach_the_real_data_and_cover_the_classes() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 2).unwrap();
    let (train, held) = train.split(0.2, 3).unwrap();
    let c = classifier(&train);
    let acc = accuracy(&c, test.features(), test.labels().unwrap());
    eprintln!("classifier test accuracy {acc:.4}");
    assert!(acc > 0.95, "the evaluation classifier reaches {acc}");

    let device = Default::default();
    let feats = |x: &[f32]| c.describe(x, 64, &device);
    let (test_f, _, _) = feats(test.features());
    let (held_f, _, _) = feats(held.features());
    let floor = frechet_distance(&held_f, &test_f, 128).unwrap();
    let n = held.len();
    B::seed(&device, 1);
    let (untrained, _) = gan_config(None).try_init::<I>(&device).unwrap();
    let (u_f, _, _) = feats(&samples(&untrained, n, None));
    let before = frechet_distance(&u_f, &test_f, 128).unwrap();
    let g = train_gan(gan_config(None), &train, 60);
    let (s_f, _, preds) = feats(&samples(&g, n, None));
    let after = frechet_distance(&s_f, &test_f, 128).unwrap();
    let modes = distinct_modes(&class_shares(&preds, 10));
    eprintln!(
        "classifier-feature FID: untrained {before:.2}, trained {after:.2}, real floor {floor:.2}; {modes} modes"
    );
    assert!(after < before / 4.0, "FID {before} -> {after}");
    assert!(after < 10.0 * floor, "FID {after} vs floor {floor}");
    assert!(modes >= 9, "{modes} of 10 classes covered");
}

#[test]
fn conditional_gan_draws_the_class_it_is_asked_for() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 2).unwrap();
    let c = classifier(&train);
    let g = train_gan(gan_config(Some(10)), &train, 60);
    let labels: Vec<i64> = (0..1000).map(|i| i % 10).collect();
    let x = samples(&g, 1000, Some(labels.clone()));
    let acc = accuracy(&c, &x, &labels);
    let real = accuracy(&c, test.features(), test.labels().unwrap());
    eprintln!("samples classified as their conditioned class: {acc:.4} (classifier on real test images {real:.4})");
    assert!(acc > 0.8, "conditional accuracy {acc}");
}

#[test]
fn super_resolution_beats_bicubic() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 2).unwrap();
    let device = Default::default();
    let shape = ImageShape::grey(8, 8);
    let x = test.to_tensor::<I>(&device);
    let low = downsample(x, shape);
    let clean = test.features();
    let score = |up: Tensor<I, 2>| {
        let v = up.into_data().to_vec::<f32>().unwrap();
        gen_toolkit::core::eval::mean_psnr(clean, &v, 64, 1.0)
    };
    let base = score(bicubic(low.clone(), ImageShape::grey(4, 4)));
    let mut results = Vec::new();
    for w in [0.0, 0.01] {
        let cfg = SrConfig {
            channels: 16,
            adversarial_weight: w,
            ..SrConfig::new(shape)
        };
        B::seed(&device, 4);
        let g = cfg.try_init::<B>(&device).unwrap();
        let d = gen_toolkit::gan::Discriminator::new(&cfg.discriminator(), &device);
        let train_cfg = TrainConfig::default()
            .with_num_epochs(15)
            .with_batch_size(32)
            .with_learning_rate(1e-3);
        let fitted = GanTrainer::new(train_cfg, cfg.discriminator())
            .unwrap()
            .fit(g, d, &train, &serde_json::Value::Null, &device, |_, _| {
                Ok(EpochReport::default())
            })
            .unwrap();
        let psnr = score(fitted.generator.valid().upscale(low.clone()));
        eprintln!("adversarial weight {w}: PSNR {psnr:.2} dB vs bicubic {base:.2} dB");
        results.push(psnr);
    }
    for psnr in results {
        assert!(psnr > base + 2.0, "PSNR {psnr} vs bicubic {base}");
    }
}
