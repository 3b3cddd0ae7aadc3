//! `gen eval` on a GAN, super-resolution or classifier run.

use std::time::Instant;

use super::{GanEvalFlags, LoadedGan};
use anyhow::{Context, bail, ensure};
use burn::tensor::backend::AutodiffBackend;
use gen_core::train::write_atomic;
use gen_gan::augmentation::AugmentOptions;

use crate::backend::{Job, with_backend};
use crate::data::{data_dir, load_splits_and_unseen};
use crate::progress::Progress;
use crate::run::{RunArgs, read_stored};

struct EvalJob(RunArgs, GanEvalFlags);

impl Job for EvalJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let (args, flags) = (self.0, self.1);
        let (stored, _) = read_stored(&args.run)?;
        if stored.sr.is_some() {
            return super::superres::eval::<B::InnerBackend>(&args, &flags, &device);
        }
        if stored.classifier.is_some() {
            return super::classifier::eval::<B::InnerBackend>(&args, &device);
        }
        if stored.ssgan.is_some() {
            return super::ssgan::eval::<B>(&args, &flags, &device);
        }
        eval_gan::<B>(&args, &flags, &device)
    }
}

/// `gen eval` on a GAN, super-resolution or classifier run.
pub(crate) fn eval(args: RunArgs, flags: GanEvalFlags) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, EvalJob(args, flags))
}

fn eval_gan<B: AutodiffBackend>(args: &RunArgs, flags: &GanEvalFlags, device: &B::Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = data_dir(args.data_dir.as_deref());
    let LoadedGan {
        stored,
        run,
        g,
        which,
        sources,
    } = super::load_generator::<B::InnerBackend>(&args.run, flags.last, &dir, device)?;
    let sources = sources.as_ref();
    let (splits, unseen) = load_splits_and_unseen(&stored.run.data, &dir)?;
    // The flags are checked before the metrics take their time.
    let augmentation = match (g.n_classes() > 0, flags.augment) {
        (true, Some(true)) => true,
        (true, None) => splits.train.len() <= 5000,
        (false, Some(true)) => bail!("--augment needs a conditional GAN (gen train --model cgan)"),
        _ => false,
    };
    ensure!(
        !augmentation || flags.augment_seeds >= 1,
        "--augment-seeds must be at least 1"
    );
    ensure!(
        flags.synthetic != Some(0),
        "--synthetic 0 leaves the augmented arm nothing to add to the real images; give at least 1"
    );
    ensure!(flags.augment_budget > 0, "--augment-budget must be at least 1 image");
    if let Some(p) = flags.augment_filter {
        ensure!(
            (0.0..1.0).contains(&p),
            "--augment-filter is a probability in [0, 1), got {p}"
        );
    }
    let r = flags.augment_real_share;
    ensure!(
        r > 0.0 && r < 1.0,
        "--augment-real-share is the real images' share of the mixed data, strictly between 0 and 1, got {r}"
    );
    let shape = splits.image_shape().context("a GAN run needs image data")?;
    let k = splits.n_classes()?;
    let classifier = super::classifier::ensure::<B>(
        &super::classifier::runs_dir_of(&args.run),
        &stored.run.data,
        &dir,
        args.backend,
        device,
    )?;
    ensure!(
        k == classifier.n_classes(),
        "the evaluation classifier knows {} classes, the data {k}",
        classifier.n_classes()
    );
    let mut report = gen_gan::eval::evaluate_generator(
        &stored.run.data.dataset,
        which,
        &g,
        sources,
        &classifier,
        &unseen,
        &splits.test,
        flags.samples,
        device,
    )?;
    super::grid(&run.file("samples.png"), &report.showcase, shape, 10)?;
    if augmentation {
        let real_shift = stored.gan.as_ref().map_or(0, |c| c.real_shift);
        let options = AugmentOptions {
            seeds: flags.augment_seeds,
            synthetic: flags.synthetic,
            budget: flags.augment_budget,
            filter: flags.augment_filter,
            mode: flags.augment_mode,
            real_share: flags.augment_real_share,
        };
        report.augmentation = Some(gen_gan::augmentation::experiment::<B>(
            &g,
            sources,
            &splits.train,
            &splits.test,
            &options,
            real_shift,
            &mut Progress::new(),
            device,
        )?);
    }
    report.seconds = started.elapsed().as_secs_f64();
    println!("{} on {} ({} generator)", args.run.display(), report.dataset, which);
    print!("{}", report.summary());
    let path = run.file("eval.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "written to {} and {}",
        path.display(),
        run.file("samples.png").display()
    );
    Ok(())
}
