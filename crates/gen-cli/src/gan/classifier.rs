//! The evaluation classifier's run folder, `RUNS/classifier-DATA/`: found, trained or continued
//! there with [`gen_gan::classifier`]'s management, checked against the run it judges, and
//! evaluated by `gen eval`.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use burn::tensor::backend::{AutodiffBackend, Backend};
use gen_core::train::{Trainer, write_atomic};
use gen_gan::classifier::{self, Classifier, ClassifierConfig};
use gen_gan::eval::test_accuracy;

use crate::backend::BackendChoice;
use crate::config::{DataSpec, Family, ModelSpec, RunConfig};
use crate::data::{data_dir, load_splits};
use crate::progress::Progress;
use crate::run::{RunArgs, StoredConfig, TrainJob, read_stored};

/// Trains the evaluation classifier of `job` (fresh, or continued with `--resume`) and returns
/// its test accuracy.
pub(super) fn train<B: AutodiffBackend>(job: &TrainJob, device: &B::Device) -> anyhow::Result<f64> {
    let (splits, shape) = super::image_splits(job)?;
    let k = splits.n_classes()?;
    let cfg = ClassifierConfig::new(shape, k);
    let stored = StoredConfig {
        classifier: Some(cfg.clone()),
        ..StoredConfig::bare(job.cfg.clone(), job.backend)
    };
    let run = job.open_run(&stored)?;
    eprintln!(
        "training the evaluation classifier {} on {} ({} train / {} valid / {} test images, {k} classes)",
        job.root.display(),
        job.cfg.data.dataset,
        splits.train.len(),
        splits.valid.len(),
        splits.test.len()
    );
    let mut trainer = Trainer::new(job.cfg.train.clone())?
        .with_run_dir(run.clone())
        .with_resume(job.resume)
        .with_observer(Progress::new());
    let meta = serde_json::to_value(&stored)?;
    let trained = classifier::train::<B>(
        &cfg,
        &mut trainer,
        (&splits.train, &splits.valid, &splits.test),
        &meta,
        device,
    )?;
    println!(
        "evaluation classifier: test accuracy {:.2} % on {} images (best epoch {}); saved in {}",
        100.0 * trained.test_accuracy,
        splits.test.len(),
        trained.best_epoch,
        run.root().display()
    );
    Ok(trained.test_accuracy)
}

/// The run configuration of the evaluation classifier of `dataset`: the library's
/// [`classifier::recipe`] for `n_train` training images.
fn classifier_run(dataset: &str, n_train: usize) -> RunConfig {
    let mut cfg = RunConfig {
        name: None,
        data: DataSpec {
            dataset: dataset.into(),
            ..DataSpec::default()
        },
        model: ModelSpec {
            family: Family::Classifier,
            ..ModelSpec::default()
        },
        train: classifier::recipe(n_train),
    };
    cfg.name = Some(cfg.run_name());
    cfg
}

/// The folder of the runs beside `root`.
pub(super) fn runs_dir_of(root: &Path) -> PathBuf {
    root.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The evaluation classifier of `data`'s data set, from `runs_dir/classifier-DATA/`, trained there
/// first when it is missing, and continued from its last epoch when its training was cut short
/// (rather than judging with a half-trained network).
///
/// # Errors
/// If the stored classifier was trained on a subset or on other splits than `data` (its
/// training images could then be among the held-out or test images it judges).
pub(super) fn ensure<B: AutodiffBackend>(
    runs_dir: &Path,
    data: &DataSpec,
    data_dir: &Path,
    backend: BackendChoice,
    device: &B::Device,
) -> anyhow::Result<Classifier<B::InnerBackend>> {
    let dataset = data.dataset.as_str();
    let probe = classifier_run(dataset, 1);
    let root = runs_dir.join(probe.run_name());
    let trained = classifier::is_trained(&root)?;
    let unfinished = if trained {
        let (stored, run) = read_stored(&root)?;
        let done = classifier::epochs_done(&run, &stored.run.train);
        // An imported classifier has no metrics to count its epochs by: it is used as it is.
        (done.cut_short && stored.imported_from.is_none()).then_some((stored.run, done.done))
    } else {
        None
    };
    if !trained || unfinished.is_some() {
        let cfg = match unfinished {
            Some((cfg, done)) => {
                eprintln!(
                    "the evaluation classifier in {} stopped after {done} of its {} epochs: continuing it",
                    root.display(),
                    cfg.train.num_epochs
                );
                cfg
            }
            None => {
                let splits = load_splits(&probe.data, data_dir)?;
                let cfg = classifier_run(dataset, splits.train.len());
                eprintln!(
                    "no evaluation classifier for {dataset} in {}: training it once ({} epochs)",
                    root.display(),
                    cfg.train.num_epochs
                );
                cfg
            }
        };
        let job = TrainJob {
            cfg,
            root: root.clone(),
            force: !trained,
            resume: trained,
            data_dir: data_dir.to_path_buf(),
            backend,
            workers: 1,
        };
        train::<B>(&job, device)?;
    }
    let (stored, _) = read_stored(&root)?;
    let c = &stored.run.data;
    ensure!(
        c.limit.is_none(),
        "the evaluation classifier {} was trained on the first {} images only; retrain it on the whole \
         training split (delete the folder, or gen train --model classifier --dataset {dataset} --force)",
        root.display(),
        c.limit.unwrap_or(0)
    );
    ensure!(
        (c.valid_fraction, c.test_fraction, c.split_seed) == (data.valid_fraction, data.test_fraction, data.split_seed),
        "the evaluation classifier {} was trained on other splits (valid_fraction {}, test_fraction {}, \
         split_seed {}) than this run's ({}, {}, {}): its training images could be among the images it \
         judges; give this run the default splits, or retrain the classifier with the same ones",
        root.display(),
        c.valid_fraction,
        c.test_fraction,
        c.split_seed,
        data.valid_fraction,
        data.test_fraction,
        data.split_seed
    );
    load::<B::InnerBackend>(&root, device)
}

/// The classifier of the run folder `root`.
pub(crate) fn load<B: Backend>(root: &Path, device: &B::Device) -> anyhow::Result<Classifier<B>> {
    let (stored, run) = read_stored(root)?;
    let cfg = stored.classifier.clone().with_context(|| {
        format!(
            "{} holds {}, not the evaluation classifier",
            root.display(),
            stored.kind()
        )
    })?;
    classifier::load(&cfg, &run, device)
        .with_context(|| format!("loading the evaluation classifier {}", run.model_path().display()))
}

/// `gen eval` on a classifier run: its test accuracy, judged as it is; a run cut short says so
/// (`gen train --resume` continues it).
pub(super) fn eval<B: Backend>(args: &RunArgs, device: &B::Device) -> anyhow::Result<()> {
    let (stored, run) = read_stored(&args.run)?;
    let model = load::<B>(&args.run, device)?;
    let splits = load_splits(&stored.run.data, &data_dir(args.data_dir.as_deref()))?;
    let acc = test_accuracy(&model, &splits.test, device)?;
    let mut done = classifier::epochs_done(&run, &stored.run.train);
    done.cut_short &= stored.imported_from.is_none();
    println!(
        "evaluation classifier {}: test accuracy {:.2} % on {} images{}",
        args.run.display(),
        100.0 * acc,
        splits.test.len(),
        if done.cut_short {
            format!(
                " (trained {} of its {} epochs: gen train --resume continues it)",
                done.done, done.configured
            )
        } else {
            String::new()
        }
    );
    let report = serde_json::json!({
        "dataset": stored.run.data.dataset,
        "n_test": splits.test.len(),
        "test_accuracy": acc,
        "epochs_done": done.done,
        "epochs_configured": done.configured,
    });
    let path = args.run.join("eval.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("written to {}", path.display());
    Ok(())
}
