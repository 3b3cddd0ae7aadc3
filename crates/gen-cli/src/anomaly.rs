//! `gen anomaly`: fit an autoencoder on normal data and measure how well its scores find the
//! anomalies, by the one-class protocol on image sets and on tables with an outlier column.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use gen_ae::anomaly::{AnomalyDetector, DetectionReport, ScoreKind};
use gen_ae::{Autoencoder, AutoencoderConfig};
use gen_core::train::{RunDir, Trainer};
use gen_data::{Dataset, Standardizer};
use serde::Serialize;

use crate::artifacts;
use crate::backend::{BackendChoice, Job, with_backend};
use crate::commands::StoredConfig;
use crate::config::{RunConfig, TrainFlags};
use crate::data::{DataSource, data_dir, load_splits};

/// Flags of `gen anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyArgs {
    #[command(flatten)]
    pub train: TrainFlags,
    /// Image sets: the class that is normal (the others are the anomalies).
    #[arg(long, conflicts_with = "all_classes")]
    pub normal_class: Option<i64>,
    /// Image sets: run the one-class protocol for every class in turn and report the mean.
    #[arg(long)]
    pub all_classes: bool,
    /// Expected share of anomalies; sets the threshold of `predict` (PyOD's contamination).
    #[arg(long, default_value_t = 0.1)]
    pub contamination: f64,
    /// Score that is thresholded: reconstruction or latent (both are always reported).
    #[arg(long, default_value = "reconstruction")]
    pub score: ScoreKind,
    /// Tables: share of the normal rows held out for testing, beside every outlier.
    #[arg(long, default_value_t = 0.4)]
    pub holdout: f64,
}

/// One normal class (or one table) of the report.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRow {
    /// The normal class (0 for tables: the inliers).
    pub normal_class: i64,
    /// Normal rows trained on.
    pub n_train: usize,
    /// Test rows scored.
    pub n_test: usize,
    /// Anomalies among them.
    pub n_anomalies: usize,
    /// Reconstruction-error score.
    pub reconstruction: DetectionReport,
    /// Latent Mahalanobis score.
    pub latent: DetectionReport,
    /// Threshold of the chosen score at the contamination rate.
    pub threshold: f32,
    /// Share of test rows predicted anomalous.
    pub flagged_share: f64,
    /// Precision of those predictions.
    pub precision: f64,
    /// Recall of those predictions.
    pub recall: f64,
    /// Seconds of training.
    pub train_seconds: f64,
}

/// `anomaly.json`.
#[derive(Debug, Serialize)]
struct AnomalyReport {
    dataset: String,
    protocol: &'static str,
    model: String,
    score: ScoreKind,
    contamination: f64,
    rows: Vec<AnomalyRow>,
    mean_auroc_reconstruction: f64,
    mean_auroc_latent: f64,
    mean_average_precision_reconstruction: f64,
    total_train_seconds: f64,
}

/// Trains an autoencoder on `train` (early stopping on `valid`) into the run folder `run`, and
/// returns the best model and the seconds it took.
pub(crate) fn fit_autoencoder<B: AutodiffBackend>(
    cfg: &RunConfig,
    ae_cfg: &AutoencoderConfig,
    stored: &StoredConfig,
    train: &Dataset,
    valid: &Dataset,
    run: RunDir,
    device: &B::Device,
) -> anyhow::Result<(Autoencoder<B::InnerBackend>, f64)> {
    let started = Instant::now();
    B::seed(device, cfg.train.seed);
    let model: Autoencoder<B> = ae_cfg.try_init(device)?;
    let meta = serde_json::to_value(stored)?;
    let fitted = Trainer::new(cfg.train.clone())?
        .with_run_dir(run)
        .with_observer(crate::progress::Progress::new())
        .fit(model, train, Some(valid), &meta, device)?;
    Ok((fitted.model.valid(), started.elapsed().as_secs_f64()))
}

struct AnomalyJob {
    args: AnomalyArgs,
    cfg: RunConfig,
    data_dir: PathBuf,
}

impl AnomalyJob {
    /// Fits on `normal_train`, scores `test`, and measures against `is_anomaly`.
    #[allow(clippy::too_many_arguments)]
    fn one<B: AutodiffBackend>(
        &self,
        normal_class: i64,
        normal_train: &Dataset,
        normal_valid: &Dataset,
        test: &Dataset,
        is_anomaly: &[bool],
        standardised: bool,
        run: RunDir,
        device: &B::Device,
    ) -> anyhow::Result<AnomalyRow> {
        let ae_cfg = self
            .cfg
            .model
            .autoencoder(normal_train.d(), normal_train.image_shape(), standardised)?;
        ae_cfg.validate().context("in [model]")?;
        let stored = StoredConfig::new(self.cfg.clone(), ae_cfg.clone(), self.args.train.backend);
        run.write_config(&stored)?;
        eprintln!(
            "normal class {normal_class}: training on {} rows, scoring {} ({} anomalies)",
            normal_train.len(),
            test.len(),
            is_anomaly.iter().filter(|&&a| a).count()
        );
        let (model, seconds) = fit_autoencoder::<B>(
            &self.cfg,
            &ae_cfg,
            &stored,
            normal_train,
            normal_valid,
            run.clone(),
            device,
        )?;
        let detector = AnomalyDetector::new(model, normal_train, self.args.score, self.args.contamination, device)?;
        let both = detector.both_scores(test, device);
        let recon: Vec<f32> = both.iter().map(|p| p.0).collect();
        let latent: Vec<f32> = both.iter().map(|p| p.1).collect();
        let chosen = match self.args.score {
            ScoreKind::Reconstruction => &recon,
            ScoreKind::Latent => &latent,
        };
        let predicted = detector.predict(chosen);
        let tp = predicted
            .iter()
            .zip(is_anomaly)
            .filter(|(p, a)| **p == 1 && **a)
            .count();
        let flagged = predicted.iter().filter(|&&p| p == 1).count();
        let positives = is_anomaly.iter().filter(|&&a| a).count();
        let header = [
            "row",
            "label",
            "anomaly",
            "reconstruction_score",
            "latent_score",
            "predicted",
        ]
        .map(String::from);
        let rows = (0..test.len()).map(|i| {
            vec![
                i.to_string(),
                test.labels().map(|l| l[i].to_string()).unwrap_or_default(),
                u8::from(is_anomaly[i]).to_string(),
                recon[i].to_string(),
                latent[i].to_string(),
                predicted[i].to_string(),
            ]
        });
        artifacts::write_csv(&run.file("scores.csv"), &header, rows)?;
        Ok(AnomalyRow {
            normal_class,
            n_train: normal_train.len(),
            n_test: test.len(),
            n_anomalies: positives,
            reconstruction: DetectionReport::new(&recon, is_anomaly)?,
            latent: DetectionReport::new(&latent, is_anomaly)?,
            threshold: detector.threshold(),
            flagged_share: flagged as f64 / test.len().max(1) as f64,
            precision: if flagged == 0 { 0.0 } else { tp as f64 / flagged as f64 },
            recall: tp as f64 / positives.max(1) as f64,
            train_seconds: seconds,
        })
    }
}

impl Job for AnomalyJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let source = DataSource::parse(&self.cfg.data.dataset)?;
        let name = self
            .cfg
            .name
            .clone()
            .unwrap_or_else(|| format!("anomaly-{}", self.cfg.run_name()));
        let root = self.args.train.runs_dir.join(name);
        if root.exists() && !self.args.train.force {
            bail!("{} already exists; pass --force to overwrite it", root.display());
        }
        std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        // Each model gets a run folder of its own; its config.json is written before training.
        let sub = |label: String| RunDir::create(root.join(label), &serde_json::Value::Null, true);
        let mut rows = Vec::new();
        let protocol = match &source {
            DataSource::Csv(path) => {
                if self.args.normal_class.is_some() || self.args.all_classes {
                    bail!("--normal-class and --all-classes are for image sets; a table's y column marks its outliers");
                }
                let all = gen_data::load_csv(path)?;
                let Some(labels) = all.labels() else {
                    bail!(
                        "{}: anomaly detection on a table needs its y column (1 = outlier)",
                        path.display()
                    );
                };
                let normal_idx: Vec<usize> = (0..all.len()).filter(|&i| labels[i] == 0).collect();
                let outlier_idx: Vec<usize> = (0..all.len()).filter(|&i| labels[i] != 0).collect();
                if outlier_idx.is_empty() || normal_idx.len() < 4 {
                    bail!("{}: needs normal rows (y = 0) and outliers (y = 1)", path.display());
                }
                let normal = all.subset(&normal_idx, "normal");
                let (pool, held_out) = normal.split(self.args.holdout, self.cfg.data.split_seed)?;
                let (mut train, mut valid) = pool.split(self.cfg.data.valid_fraction, self.cfg.data.split_seed + 1)?;
                let mut test_idx = Vec::new();
                let mut test = Vec::new();
                for i in 0..held_out.len() {
                    test.extend_from_slice(held_out.row(i));
                    test_idx.push(0);
                }
                for &i in &outlier_idx {
                    test.extend_from_slice(all.row(i));
                    test_idx.push(1);
                }
                let mut test = Dataset::new("test", test, all.d(), Some(test_idx.clone()), None)?;
                let s = Standardizer::fit(&train);
                s.transform(&mut train);
                s.transform(&mut valid);
                s.transform(&mut test);
                let is_anomaly: Vec<bool> = test_idx.iter().map(|&y| y != 0).collect();
                let run = sub("table".into())?;
                rows.push(self.one::<B>(0, &train, &valid, &test, &is_anomaly, true, run, &device)?);
                "table: train on normal rows, test on held-out normal rows and every outlier"
            }
            _ => {
                let splits = load_splits(&self.cfg.data, &self.data_dir)?;
                let labels = splits
                    .test
                    .labels()
                    .context("the one-class protocol needs a labelled image set")?
                    .to_vec();
                let mut classes: Vec<i64> = labels.clone();
                classes.sort_unstable();
                classes.dedup();
                let chosen: Vec<i64> = match (self.args.normal_class, self.args.all_classes) {
                    (Some(c), _) if classes.contains(&c) => vec![c],
                    (Some(c), _) => bail!("normal class {c} is not among the test labels {classes:?}"),
                    (None, true) => classes.clone(),
                    (None, false) => bail!("choose --normal-class N or --all-classes for an image set"),
                };
                for c in chosen {
                    let train = splits.train.filter_labels(&[c])?;
                    let valid = splits.valid.filter_labels(&[c])?;
                    let is_anomaly: Vec<bool> = labels.iter().map(|&y| y != c).collect();
                    let run = sub(format!("class-{c}"))?;
                    rows.push(self.one::<B>(c, &train, &valid, &splits.test, &is_anomaly, false, run, &device)?);
                }
                "one-class: train on one class's training images, score the whole test set"
            }
        };
        let mean = |f: &dyn Fn(&AnomalyRow) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
        let report = AnomalyReport {
            dataset: self.cfg.data.dataset.clone(),
            protocol,
            model: self.cfg.run_name(),
            score: self.args.score,
            contamination: self.args.contamination,
            mean_auroc_reconstruction: mean(&|r| r.reconstruction.auroc),
            mean_auroc_latent: mean(&|r| r.latent.auroc),
            mean_average_precision_reconstruction: mean(&|r| r.reconstruction.average_precision),
            total_train_seconds: rows.iter().map(|r| r.train_seconds).sum(),
            rows,
        };
        let mut md = format!(
            "# Anomaly detection: {} ({})\n\n{}\n\n| normal | train | test | anomalies | AUROC recon | AP recon | AUROC latent | AP latent | precision | recall | train s |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
            report.dataset, report.model, report.protocol
        );
        for r in &report.rows {
            md += &format!(
                "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.3} | {:.1} |\n",
                r.normal_class,
                r.n_train,
                r.n_test,
                r.n_anomalies,
                r.reconstruction.auroc,
                r.reconstruction.average_precision,
                r.latent.auroc,
                r.latent.average_precision,
                r.precision,
                r.recall,
                r.train_seconds
            );
        }
        md += &format!(
            "| mean | | | | {:.4} | {:.4} | {:.4} | | | | {:.1} |\n",
            report.mean_auroc_reconstruction,
            report.mean_average_precision_reconstruction,
            report.mean_auroc_latent,
            report.total_train_seconds
        );
        print!("{md}");
        gen_core::train::write_atomic(
            &root.join("anomaly.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        gen_core::train::write_atomic(&root.join("anomaly.md"), md.as_bytes())?;
        println!("written to {}/anomaly.json and anomaly.md", root.display());
        Ok(())
    }
}

/// `gen anomaly`.
pub fn anomaly(args: AnomalyArgs) -> anyhow::Result<()> {
    if args.train.resume {
        bail!("gen anomaly does not resume; run it again with --force");
    }
    if !(args.contamination > 0.0 && args.contamination <= 0.5) {
        bail!("--contamination must be in (0, 0.5], got {}", args.contamination);
    }
    if !(args.holdout > 0.0 && args.holdout < 1.0) {
        bail!("--holdout must be in (0, 1), got {}", args.holdout);
    }
    let cfg = args.train.resolve()?;
    let backend: BackendChoice = args.train.backend;
    let data_dir = data_dir(args.train.data_dir.as_deref());
    with_backend(backend, AnomalyJob { args, cfg, data_dir })
}
