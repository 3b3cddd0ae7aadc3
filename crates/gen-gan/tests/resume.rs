//! Resuming a GAN run. A test binary of its own: burn's CPU backends draw from one process-wide
//! generator, and this test compares two runs bit for bit, so no other test may draw random
//! numbers while it runs (the unit tests draw freely, unlocked, on parallel threads).

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::backend::Backend;
use gen_core::nn::ImageShape;
use gen_core::testing::{Rows, param_values};
use gen_core::train::{RunDir, TrainConfig};
use gen_gan::{
    DISCRIMINATOR, DiffAugment, EpochReport, GENERATOR, GanArchitecture, GanConfig, GanLoss, GanTrainer, SourcePairs,
};

type AB = Autodiff<Flex>;

/// Every float of the module (running statistics and power-iteration vectors included), in
/// visiting order, without the ids (which a loaded model does not share).
fn values<B: Backend, M: Module<B>>(m: &M) -> Vec<Vec<f32>> {
    param_values(m).into_iter().map(|(_, v)| v).collect()
}

/// Run `name` under `root`: opened to resume it, else created afresh.
fn run_dir(root: &std::path::Path, name: &str, resume: bool) -> RunDir {
    if resume {
        RunDir::open(root.join(name)).unwrap()
    } else {
        RunDir::create(root.join(name), &serde_json::json!({}), false).unwrap()
    }
}

fn pattern(i: usize) -> f32 {
    0.15 + 0.7 * ((i * 7) % 16) as f32 / 15.0
}

#[test]
fn a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one() {
    let device = Default::default();
    let data = Rows {
        x: (0..48 * 16).map(|k| pattern(k % 16)).collect(),
        d: 16,
    };
    // Spectral norm (its power-iteration vectors are state), two critic steps, the moving
    // average and DiffAugment's random shifts: everything a resume must carry over.
    let image = ImageShape::grey(4, 4);
    let cfg = GanConfig {
        image,
        d_latent: 4,
        architecture: GanArchitecture::Mlp { hidden: vec![8] },
        spectral_norm: true,
        loss: GanLoss::Hinge,
        n_critic: 2,
        ema: Some(0.9),
        augment: Some(DiffAugment {
            translation: 1,
            cutout: 0,
        }),
        ..GanConfig::dcgan(image)
    };
    let dir = tempfile::tempdir().unwrap();
    let fit = |name: &str, epochs: usize, resume: bool| {
        let run = run_dir(dir.path(), name, resume);
        let mut train = TrainConfig::default()
            .with_num_epochs(epochs)
            .with_batch_size(16)
            .with_learning_rate(2e-3);
        train.beta_1 = 0.5;
        let _lock = gen_core::testing::seeded::<AB>(&device, 5);
        let (g, d) = cfg.try_init::<AB>(&device).unwrap();
        let fitted = GanTrainer::new(train, cfg.clone())
            .unwrap()
            .with_run_dir(run.clone())
            .with_resume(resume)
            .fit(g, d, &data, &serde_json::json!({}), &device, |_, _| {
                Ok(EpochReport::default())
            });
        (run, fitted)
    };
    let (straight_run, straight) = fit("straight", 3, false);
    let straight = straight.unwrap();
    let (_, first) = fit("resumed", 1, false);
    assert_eq!(first.unwrap().history.len(), 1);
    let (run, resumed) = fit("resumed", 3, true);
    let resumed = resumed.unwrap();
    assert_eq!(
        resumed.history.iter().map(|h| h.epoch).collect::<Vec<_>>(),
        [2, 3],
        "the resumed call trains the epochs that were left"
    );
    assert_eq!(values(&resumed.generator), values(&straight.generator));
    assert_eq!(values(&resumed.discriminator), values(&straight.discriminator));
    assert_eq!(
        values(resumed.ema.as_ref().unwrap()),
        values(straight.ema.as_ref().unwrap())
    );
    // metrics.csv has each epoch once, with the uninterrupted run's losses.
    let losses = |run: &RunDir| {
        let (header, rows) = run.metrics().read().unwrap();
        let col = header.iter().position(|h| h == "g_loss").unwrap();
        rows.iter().map(|r| r[col]).collect::<Vec<_>>()
    };
    assert_eq!(losses(&run), losses(&straight_run));
    assert_eq!(losses(&run).len(), 3);

    // A discriminator left at an older epoch (a save cut short) is refused, not mixed in.
    let (_, _) = fit("stale", 1, false);
    let stale = dir.path().join("stale").join(DISCRIMINATOR);
    std::fs::copy(&stale, dir.path().join("d-epoch1.ckpt")).unwrap();
    let (_, two) = fit("stale", 2, true);
    two.unwrap();
    std::fs::copy(dir.path().join("d-epoch1.ckpt"), &stale).unwrap();
    let err = fit("stale", 3, true)
        .1
        .err()
        .expect("mismatched epochs must be refused")
        .to_string();
    assert!(
        err.contains(DISCRIMINATOR) && err.contains("epoch 1") && err.contains("epoch 2"),
        "{err}"
    );

    // A generator saved without its Adam state (as before resuming existed) says so.
    let (_, _) = fit("old", 1, false);
    let path = dir.path().join("old").join(GENERATOR);
    let (g, _) = cfg.try_init::<AB>(&device).unwrap();
    gen_core::train::save_module(&g, serde_json::json!({}), &path).unwrap();
    let err = fit("old", 2, true)
        .1
        .err()
        .expect("no Adam state, no resume")
        .to_string();
    assert!(err.contains("no optimizer state"), "{err}");
}

#[test]
fn a_resumed_dagan_run_ends_with_the_weights_of_an_uninterrupted_one() {
    // A source-conditioned GAN's real samples are pairs whose partners SourcePairs draws: the
    // resumed epochs must draw the partners the uninterrupted run drew.
    let device = Default::default();
    let image = ImageShape::grey(4, 4);
    let cfg = GanConfig {
        image,
        d_latent: 4,
        architecture: GanArchitecture::Dcgan {
            channels: vec![4],
            batch_norm: false,
        },
        n_classes: Some(3),
        loss: GanLoss::Hinge,
        source_conditioned: true,
        ..GanConfig::dcgan(image)
    };
    let data = Rows {
        x: (0..48 * 16).map(|k| pattern(k % 16 + k / 16 % 3)).collect(),
        d: 16,
    };
    let labels: Vec<i64> = (0..48).map(|i| (i % 3) as i64).collect();
    let pairs = SourcePairs::new(&data, labels, 11).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fit = |name: &str, epochs: usize, resume: bool| {
        let run = run_dir(dir.path(), name, resume);
        let train = TrainConfig::default()
            .with_num_epochs(epochs)
            .with_batch_size(16)
            .with_learning_rate(2e-3);
        let _lock = gen_core::testing::seeded::<AB>(&device, 6);
        let (g, d) = cfg.try_init::<AB>(&device).unwrap();
        GanTrainer::new(train, cfg.clone())
            .unwrap()
            .with_run_dir(run)
            .with_resume(resume)
            .fit(g, d, &pairs, &serde_json::json!({}), &device, |_, _| {
                Ok(EpochReport::default())
            })
            .unwrap()
    };
    let straight = fit("straight", 3, false);
    assert_eq!(fit("resumed", 1, false).history.len(), 1);
    let resumed = fit("resumed", 3, true);
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(values(&resumed.generator), values(&straight.generator));
    assert_eq!(values(&resumed.discriminator), values(&straight.discriminator));
}
