//! `gen train --model ssgan` and `gen eval` on its runs: the semi-supervised GAN, whose
//! discriminator is the classifier.

use std::time::Instant;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use gen_core::train::{load_module, write_atomic};
use gen_gan::ssgan::{DISCRIMINATOR_EMA, SsDiscriminator, SsganTrainer, compare, evaluate, labelled_subset};

use super::{GanEvalFlags, check_epochs_left, grid, image_splits};
use crate::data::{data_dir, load_splits};
use crate::progress::Progress;
use crate::run::{RunArgs, StoredConfig, TrainJob, read_stored};

/// `gen train --model ssgan`: trains on `--labels` labelled images of the training split and
/// all of it unlabelled, reports the validation error after each epoch and the test error at
/// the end.
pub(super) fn train<B: AutodiffBackend>(job: TrainJob, device: B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    check_epochs_left(&job)?;
    let (splits, shape) = image_splits(&job)?;
    let k = splits.n_classes()?;
    let n_labels = job.cfg.model.labels_or_default();
    let rows = labelled_subset(&splits.train, n_labels, k, job.cfg.train.seed).context("--labels")?;
    let labelled = splits.train.subset(&rows, "labelled");
    let ss = job.cfg.model.ssgan(shape.numel(), k);
    let stored = StoredConfig {
        ssgan: Some(ss.clone()),
        ..StoredConfig::bare(job.cfg.clone(), job.backend)
    };
    let run = job.open_run(&stored)?;
    eprintln!(
        "training {} (semi-supervised GAN) on {}: {n_labels} labelled of {} images, with {}",
        job.root.display(),
        job.cfg.data.dataset,
        splits.train.len(),
        job.backend
    );
    B::seed(&device, job.cfg.train.seed);
    let (g, d) = ss.try_init::<B>(&device)?;
    let meta = serde_json::to_value(&stored)?;
    let fitted = SsganTrainer::new(job.cfg.train.clone(), ss)?
        .with_run_dir(run.clone())
        .with_resume(job.resume)
        .with_observer(Progress::new())
        .fit(g, d, &splits.train, &labelled, Some(&splits.valid), &meta, &device)?;
    let judged = evaluate(&fitted.classifier(), &splits.test, &device)?;
    let samples = fitted.generator.valid().sample(100, &device);
    let values: Vec<f32> = samples.into_data().convert::<f32>().to_vec().expect("f32 samples");
    grid(&run.file("samples.png"), &values, shape, 10)?;
    println!(
        "done in {:.1}s: test error {:.2} % ({} of {} images) with {n_labels} labels",
        started.elapsed().as_secs_f64(),
        100.0 * judged.error,
        judged.errors,
        judged.n
    );
    println!(
        "results in {}/: config.json, generator.ckpt, discriminator.ckpt, {DISCRIMINATOR_EMA}, metrics.csv, samples.png",
        run.root().display()
    );
    Ok(())
}

/// Largest shift of the shifted baseline on 28-pixel images, in pixels (the augmentation
/// experiment's); other sizes scale it, at least 1 pixel (1 on the 8x8 digits).
const SHIFT_PX_AT_28: f64 = 2.0;

/// `gen eval` on a semi-supervised GAN run: its discriminator's test error (the moving
/// average's unless `--last`) beside the evaluation classifier trained on the run's labelled
/// images alone and randomly shifted (each for `--augment-budget` images), written to
/// `eval.json`.
pub(super) fn eval<B: AutodiffBackend>(args: &RunArgs, flags: &GanEvalFlags, device: &B::Device) -> anyhow::Result<()> {
    let (stored, run) = read_stored(&args.run)?;
    let ss = stored.ssgan.clone().context("the run holds no semi-supervised GAN")?;
    let ema = run.file(DISCRIMINATOR_EMA);
    let (path, which) = if ema.is_file() && !flags.last {
        (ema, "moving average")
    } else {
        (run.file(gen_gan::DISCRIMINATOR), "last epoch")
    };
    let fresh = SsDiscriminator::<B::InnerBackend>::new(&ss, device);
    let (d, header) = load_module(fresh, &path, device).with_context(|| format!("loading {}", path.display()))?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let labels = stored.run.model.labels_or_default();
    let seed = stored.run.train.seed;
    let rows = labelled_subset(&splits.train, labels, ss.n_classes, seed)?;
    let labelled = splits.train.subset(&rows, "labelled");
    eprintln!(
        "judging {} ({which}, epoch {}) and training the evaluation classifier on its {labels} labelled images",
        args.run.display(),
        header.epoch
    );
    let side = labelled.image_shape().map_or(28, |s| s.width.min(s.height));
    let shift = (SHIFT_PX_AT_28 * side as f64 / 28.0).round().max(1.0) as usize;
    let report = compare::<B>(&d, &labelled, &splits.test, flags.augment_budget, shift, seed, device)?;
    print!("{}", report.summary());
    let json = serde_json::json!({
        "dataset": stored.run.data.dataset,
        "n_test": splits.test.len(),
        "labels": labels,
        "seed": seed,
        "epoch": header.epoch,
        "discriminator": which,
        "fewlabels": report,
    });
    let out = args.run.join("eval.json");
    write_atomic(&out, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!("written to {}", out.display());
    Ok(())
}
