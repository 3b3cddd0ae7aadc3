//! The configuration's parsing, overrides, validation and conversions.

use super::*;
use clap::Parser;
use gen_ae::Regularizer;
use gen_core::nn::Activation;
use gen_core::noise::Noise;
use gen_core::train::LrSchedule;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    flags: TrainFlags,
}

fn flags(args: &[&str]) -> TrainFlags {
    Wrap::parse_from(std::iter::once("gen").chain(args.iter().copied())).flags
}

#[test]
fn the_readme_example_configuration_parses() {
    let readme = include_str!("../../../../README.md");
    let start = readme.find("```toml\n").expect("a toml block") + 8;
    let end = start + readme[start..].find("```").unwrap();
    let cfg: RunConfig = toml::from_str(&readme[start..end]).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.train.lr_schedule, LrSchedule::Cosine { final_fraction: 0.01 });
    let cfg = flags(&["--model", "vae", "--lr-schedule", "cosine:0.1", "--beta", "2"])
        .resolve()
        .unwrap();
    assert_eq!(cfg.train.lr_schedule, LrSchedule::Cosine { final_fraction: 0.1 });
    assert_eq!(cfg.model.beta, 2.0);
    assert!(flags(&["--lr-schedule", "linear"]).resolve().is_err());
}

#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "name = \"x\"\n[data]\ndataset = \"mnist\"\n[model]\narch = \"conv\"\nlatent = 16\n[train]\nnum_epochs = 3\n",
    )
    .unwrap();
    let cfg = flags(&["--config", path.to_str().unwrap(), "--latent", "4", "--lr", "0.01"])
        .resolve()
        .unwrap();
    assert_eq!(cfg.name.as_deref(), Some("x"));
    assert_eq!(cfg.data.dataset, "mnist");
    assert_eq!(cfg.model.arch, Arch::Conv);
    assert_eq!(cfg.model.latent, 4);
    assert_eq!(cfg.train.num_epochs, 3);
    assert_eq!(cfg.train.learning_rate, 0.01);
}

#[test]
fn nonsense_is_rejected_with_the_field_named() {
    let e = flags(&["--lr", "-1"]).resolve().unwrap_err();
    assert!(format!("{e:#}").contains("learning_rate"), "{e:#}");
    let e = flags(&["--dataset", "cifar"]).resolve().unwrap_err();
    assert!(e.to_string().contains("cifar"), "{e}");
    let e = flags(&["--latent", "0"]).resolve().unwrap_err();
    assert!(e.to_string().contains("latent"), "{e}");
    let e = flags(&["--model", "cgan", "--diff-augment", "colour"])
        .resolve()
        .unwrap_err();
    assert!(format!("{e:#}").contains("unknown augmentation \"colour\""), "{e:#}");
    let cfg = flags(&[
        "--model",
        "cgan",
        "--diff-augment",
        "translation:2",
        "--real-shift",
        "2",
    ])
    .resolve()
    .unwrap();
    let gan = cfg.model.gan(ImageShape::grey(28, 28), Some(10), 2e-4).unwrap();
    assert_eq!(gan.real_shift, 2);
    let e = flags(&["--model", "cgan", "--real-shift", "28"])
        .resolve()
        .unwrap()
        .model
        .gan(ImageShape::grey(28, 28), Some(10), 2e-4)
        .unwrap_err();
    assert!(format!("{e:#}").contains("shift (28)"), "{e:#}");
    let dagan = |arch: &str| {
        flags(&["--model", "cgan", "--arch", arch, "--dagan", "true"])
            .resolve()
            .unwrap()
            .model
            .gan(ImageShape::grey(28, 28), Some(10), 2e-4)
    };
    assert!(dagan("conv").unwrap().source_conditioned);
    let e = dagan("mlp").unwrap_err();
    assert!(format!("{e:#}").contains("DCGAN architecture"), "{e:#}");
    assert_eq!(
        gan.augment,
        Some(gen_gan::DiffAugment {
            translation: 2,
            cutout: 0
        })
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[model]\nlatnet = 3\n").unwrap();
    let e = flags(&["--config", path.to_str().unwrap()]).resolve().unwrap_err();
    assert!(format!("{e:#}").contains("latnet"), "{e:#}");
}

#[test]
fn settings_the_other_adversarial_kind_ignores_are_refused() {
    for (args, name) in [
        (["--model", "sr", "--ema", "0.99"], "ema applies to GAN training"),
        (
            ["--model", "sr", "--diff-augment", "translation:2"],
            "diff_augment applies to GAN",
        ),
        (["--model", "sr", "--real-shift", "1"], "real_shift applies to GAN"),
        (
            ["--model", "cgan", "--adversarial-weight", "0.1"],
            "adversarial_weight applies to super-resolution",
        ),
        (
            ["--model", "gan", "--content", "mse"],
            "content applies to super-resolution",
        ),
    ] {
        let e = flags(&args).resolve().unwrap_err();
        assert!(format!("{e:#}").contains(name), "{args:?}: {e:#}");
    }
    let sr = flags(&["--model", "sr", "--n-critic", "2", "--content", "mse"])
        .resolve()
        .unwrap();
    assert_eq!(sr.model.n_critic, 2);
}

#[test]
fn default_name_describes_the_run() {
    assert_eq!(flags(&[]).resolve().unwrap().run_name(), "ae-mlp-digits-z8");
    let cfg = flags(&["--model", "sparse-kl", "--latent", "96"]).resolve().unwrap();
    assert_eq!(cfg.run_name(), "sparse-kl-mlp-digits-z96");
}

#[test]
fn families_map_to_penalties_and_noise() {
    let cfg = flags(&["--model", "sparse-kl", "--rho", "0.1", "--latent", "96"])
        .resolve()
        .unwrap();
    let ae = cfg.model.autoencoder(64, None, false).unwrap();
    assert_eq!(ae.regularizer, Regularizer::SparseKl { rho: 0.1, beta: 1e-2 });
    assert_eq!(ae.latent_activation, Activation::Sigmoid);
    ae.validate().unwrap();
    let cfg = flags(&["--model", "contractive", "--weight", "0.5", "--projections", "4"])
        .resolve()
        .unwrap();
    assert_eq!(
        cfg.model.regularizer(),
        Regularizer::Contractive {
            lambda: 0.5,
            projections: Some(4)
        }
    );
    let cfg = flags(&["--model", "denoising"]).resolve().unwrap();
    assert_eq!(cfg.model.noise().unwrap(), Some(Noise::Gaussian { sigma: 0.3 }));
    let cfg = flags(&["--model", "denoising", "--noise", "masking:0.4"])
        .resolve()
        .unwrap();
    assert_eq!(cfg.model.noise().unwrap(), Some(Noise::Masking { fraction: 0.4 }));
    let e = flags(&["--noise", "masking:4"]).resolve().unwrap_err();
    assert!(format!("{e:#}").contains("in [0, 1]"), "{e:#}");
    let e = flags(&["--model", "sparse-kl", "--rho", "2"]).resolve().unwrap_err();
    assert!(format!("{e:#}").contains("rho"), "{e:#}");
    let e = flags(&["--model", "contractive", "--weight", "-1"])
        .resolve()
        .unwrap_err();
    assert!(format!("{e:#}").contains("lambda"), "{e:#}");
}

#[test]
fn the_pca_path_is_the_plain_mlp_autoencoders_default() {
    let ae = |args: &[&str]| flags(args).resolve().unwrap().model.autoencoder(64, None, false);
    let plain = ae(&[]).unwrap();
    assert!(plain.pca_path);
    assert_eq!(plain.output_activation, Activation::Identity);
    plain.validate().unwrap();
    for other in [
        &["--loss", "bce"][..],
        &["--model", "denoising"],
        &["--arch", "conv"],
        &["--pca-path", "false"],
    ] {
        let cfg = ae(other).unwrap();
        assert!(!cfg.pca_path, "{other:?}");
        assert_eq!(cfg.output_activation, Activation::Sigmoid, "{other:?}");
    }
    let e = ae(&["--pca-path", "true", "--loss", "bce"]).unwrap_err();
    assert!(format!("{e:#}").contains("--pca-path is for"), "{e:#}");
}
