//! The VAE family on the embedded digits, with real outcomes: the loss falls for every
//! architecture and likelihood, the importance-sampled bound lies above the ELBO (significantly,
//! and for nearly every image) and tightens as k grows, and a conditional VAE draws the digit it
//! is asked for.

use crate::common;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use gen_toolkit::core::train::Fitted;
use gen_toolkit::prelude::*;

type B = Autodiff<Flex>;
type I = Flex;

/// Trains `config` on `train`, validating on `valid`, for `epochs` with a fixed seed.
fn fit(config: &VaeConfig, train: &Dataset, valid: &Dataset, epochs: usize) -> Fitted<Vae<B>> {
    common::fit(|d| config.init::<B>(d), train, Some(valid), epochs, 11)
}

fn valid_losses(f: &Fitted<Vae<B>>) -> Vec<f64> {
    f.history.iter().map(|m| m.valid_loss.unwrap()).collect()
}

#[test]
fn every_architecture_and_likelihood_learns() {
    let _lock = common::seed_lock();
    let (train, valid) = digits().unwrap().split(0.2, 2).unwrap();
    for cfg in [
        VaeConfig::mlp(64, vec![128], 8).with_binarize(true),
        VaeConfig::conv(ImageShape::grey(8, 8), vec![16, 32], 8),
        VaeConfig::mlp(64, vec![128], 8).with_likelihood(Likelihood::GaussianLearned),
        VaeConfig::mlp(64, vec![128], 8).with_beta(4.0).with_kl_warmup(3),
    ] {
        let f = fit(&cfg, &train, &valid, 8);
        let v = valid_losses(&f);
        eprintln!(
            "{} {}: validation loss {:.2} -> {:.2}",
            cfg.variant(),
            cfg.likelihood.name(),
            v[0],
            v[7]
        );
        assert!(v[7] < v[0] - 1.0, "{cfg:?}: {v:?}");
        // Both parts are reported every epoch.
        let parts: Vec<&str> = f.history[0].parts.iter().map(|(k, _)| k.as_str()).collect();
        for p in ["train_recon", "train_kl", "valid_recon", "valid_kl"] {
            assert!(parts.contains(&p), "{parts:?}");
        }
    }
}

#[test]
fn importance_bound_is_above_the_elbo_and_tightens_with_k() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 3).unwrap();
    let cfg = VaeConfig::mlp(64, vec![128], 4).with_binarize(true);
    let vae = fit(&cfg, &train, &test, 15).model.valid();
    let device = Default::default();
    I::seed(&device, 4);
    let x = Vae::<I>::binarize(test.take(200).to_tensor::<I>(&device));
    // The ELBO of each image, averaged over 200 draws of z so that it is nearly exact.
    let reps = 200;
    let xs = x
        .clone()
        .unsqueeze_dim::<3>(0)
        .repeat_dim(0, reps)
        .reshape([200 * reps, 64]);
    let elbo_draws = vae.elbo(xs, None).reshape([reps, 200]).mean_dim(0).reshape([200]);
    let elbo: Vec<f32> = elbo_draws.into_data().to_vec().unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let elbo_mean = elbo.iter().map(|&v| v as f64).sum::<f64>() / 200.0;
    let mut bounds = Vec::new();
    for k in [1, 10, 100, 1000] {
        let ll = vae.importance_log_likelihood(x.clone(), None, k, 100);
        // Paired differences bound − ELBO per image, and their t statistic.
        let diff: Vec<f64> = ll.iter().zip(&elbo).map(|(l, &e)| l - e as f64).collect();
        let m = mean(&diff);
        let sd = (diff.iter().map(|d| (d - m).powi(2)).sum::<f64>() / 199.0).sqrt();
        let t = m / (sd / 200f64.sqrt());
        let below = diff.iter().filter(|&&d| d < 0.0).count();
        eprintln!(
            "k = {k}: mean bound {:.3} (ELBO {elbo_mean:.3}), bound − ELBO {m:.3} (t = {t:.1}); \
             {below} of 200 images below their ELBO",
            mean(&ll)
        );
        if k == 1 {
            // With one sample the bound is the ELBO: no significant difference.
            assert!(t.abs() < 3.5, "k = 1: t = {t}");
        } else {
            // Never below the ELBO: above it, significantly, and for most images one by one
            // (single images can fall below by the Monte Carlo error of a k-sample estimate).
            assert!(m > 0.0 && t > 5.0, "k = {k}: bound − ELBO {m}, t = {t}");
            assert!(below <= 40, "k = {k}: {below} of 200 images below their ELBO");
        }
        bounds.push(mean(&ll));
    }
    assert!(
        bounds[1] > bounds[0] && bounds[2] > bounds[1] && bounds[3] > bounds[2],
        "{bounds:?}"
    );
}

#[test]
fn conditional_vae_draws_the_requested_digit() {
    let _lock = common::seed_lock();
    let (train, test) = digits().unwrap().split(0.2, 4).unwrap();
    let cfg = VaeConfig::mlp(64, vec![128], 4).with_classes(10);
    let vae = fit(&cfg, &train, &test, 20).model.valid();
    // Class means of the training images: a nearest-centroid classifier for the samples.
    let labels = train.labels().unwrap();
    let mut centroids = vec![vec![0.0f32; 64]; 10];
    let mut counts = [0usize; 10];
    for (i, &label) in labels.iter().enumerate() {
        let c = label as usize;
        counts[c] += 1;
        centroids[c].iter_mut().zip(train.row(i)).for_each(|(a, b)| *a += b);
    }
    for (c, n) in centroids.iter_mut().zip(counts) {
        c.iter_mut().for_each(|v| *v /= n as f32);
    }
    let device = Default::default();
    I::seed(&device, 5);
    let n = 50;
    let y: Vec<i64> = (0..10).flat_map(|c| std::iter::repeat_n(c, n)).collect();
    let samples = vae.sample(
        10 * n,
        Some(Tensor::<I, 1, Int>::from_ints(y.as_slice(), &device)),
        &device,
    );
    let s: Vec<f32> = samples.into_data().to_vec().unwrap();
    let mut correct = 0;
    for (i, &c) in y.iter().enumerate() {
        let row = &s[i * 64..(i + 1) * 64];
        let nearest = (0..10)
            .min_by(|&a, &b| {
                let d = |k: usize| centroids[k].iter().zip(row).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        correct += (nearest as i64 == c) as usize;
    }
    let acc = correct as f64 / (10 * n) as f64;
    eprintln!("conditional samples nearest their class centroid: {acc:.3}");
    assert!(acc > 0.8, "{acc}");
}
