//! The anomaly-detection protocols behind `gen anomaly`: the one-class protocol on labelled image
//! sets ([`one_class`]) and the held-out protocol on tables with an outlier column ([`tabular`]).
//! Each trains an autoencoder on normal data, scores a test set with both scores, thresholds the
//! chosen one at the contamination rate, and reports AUROC, average precision, precision and
//! recall.

use burn::tensor::backend::AutodiffBackend;
use gen_core::train::{Observer, TrainConfig};
use gen_data::pca::Pca;
use gen_data::{Dataset, Standardizer};
use serde::Serialize;

use super::{AnomalyDetector, DetectionReport, ScoreKind};
use crate::eval::{ModelRun, Splits, fit};
use crate::{AeError, AutoencoderConfig, Result};

/// What a protocol thresholds, and at which expected share of anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholding {
    /// The score that [`AnomalyDetector::predict`] thresholds (both are always measured).
    pub score: ScoreKind,
    /// Expected share of anomalies, in (0, 0.5] (PyOD's contamination).
    pub contamination: f64,
}

/// Every test row's scores, for a table of them (not serialised in the report).
#[derive(Debug, Clone, Default)]
pub struct RowScores {
    /// The test rows' labels, where the data have them.
    pub labels: Option<Vec<i64>>,
    /// Whether each test row is an anomaly.
    pub is_anomaly: Vec<bool>,
    /// Reconstruction scores.
    pub reconstruction: Vec<f32>,
    /// Latent (Mahalanobis) scores.
    pub latent: Vec<f32>,
    /// Combined scores (both standardised on the training rows, summed).
    pub combined: Vec<f32>,
    /// 1 where the chosen score is above the threshold.
    pub predicted: Vec<u8>,
}

/// One normal class (or one table) of an [`AnomalyReport`].
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
    /// The two standardised on the training rows and summed ([`ScoreKind::Combined`]).
    pub combined: DetectionReport,
    /// The baseline: PCA's reconstruction error with as many axes as the code has units,
    /// fitted on the same training rows.
    pub pca: DetectionReport,
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
    /// Every test row's scores.
    #[serde(skip)]
    pub scores: RowScores,
}

/// The report of [`one_class`] or [`tabular`].
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyReport {
    /// The data set's name, as the caller gave it.
    pub dataset: String,
    /// The protocol, in words.
    pub protocol: &'static str,
    /// The model's name, as the caller gave it.
    pub model: String,
    /// The thresholded score.
    pub score: ScoreKind,
    /// The contamination rate of the threshold.
    pub contamination: f64,
    /// One row per normal class (one for a table).
    pub rows: Vec<AnomalyRow>,
    /// Mean AUROC of the reconstruction score over the rows.
    pub mean_auroc_reconstruction: f64,
    /// Mean AUROC of the latent score over the rows.
    pub mean_auroc_latent: f64,
    /// Mean AUROC of the combined score over the rows.
    pub mean_auroc_combined: f64,
    /// Mean AUROC of the PCA baseline over the rows.
    pub mean_auroc_pca: f64,
    /// Mean AUROC of the thresholded score ([`AnomalyReport::score`]) over the rows.
    pub mean_auroc: f64,
    /// Mean average precision of the reconstruction score over the rows.
    pub mean_average_precision_reconstruction: f64,
    /// Seconds of training in all.
    pub total_train_seconds: f64,
}

/// The protocol of [`one_class`], in words.
pub const ONE_CLASS: &str = "one-class: train on one class's training images, score the whole test set";
/// The protocol of [`tabular`], in words.
pub const TABLE: &str = "table: train on normal rows, test on held-out normal rows and every outlier";

/// Gives the run folder each model of a protocol trains into, by a label (`class-3`, `table`)
/// and the model's configuration; `None` trains without one.
pub type RunsFor<'a> = dyn FnMut(&str, &AutoencoderConfig) -> Result<Option<ModelRun>> + 'a;

fn check(t: Thresholding) -> Result<()> {
    if !(t.contamination > 0.0 && t.contamination <= 0.5) {
        return Err(AeError::Invalid(format!(
            "contamination must be in (0, 0.5], got {}",
            t.contamination
        )));
    }
    Ok(())
}

/// Fits on `train` (early stopping on `valid`), scores `test`, and measures against `is_anomaly`.
#[allow(clippy::too_many_arguments)]
fn one<B: AutodiffBackend>(
    normal_class: i64,
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    data: Splits<'_>,
    is_anomaly: Vec<bool>,
    t: Thresholding,
    run: Option<ModelRun>,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<AnomalyRow> {
    let (train, test) = (data.train, data.test);
    let positives = is_anomaly.iter().filter(|&&a| a).count();
    observer.on_stage(&format!(
        "normal class {normal_class}: training on {} rows, scoring {} ({positives} anomalies)",
        train.len(),
        test.len(),
    ));
    let fitted = fit::<B>(config, train_config, train, Some(data.valid), run, observer, device)?;
    let detector = AnomalyDetector::new(fitted.model, train, t.score, t.contamination, device)?;
    let both = detector.both_scores(test, device);
    let reconstruction: Vec<f32> = both.iter().map(|p| p.0).collect();
    let latent: Vec<f32> = both.iter().map(|p| p.1).collect();
    let combined = detector.score_as(ScoreKind::Combined, &both);
    let pca = Pca::fit(train)?.row_errors(test, config.d_latent)?;
    let predicted = detector.predict(&detector.pick(&both));
    let tp = predicted
        .iter()
        .zip(&is_anomaly)
        .filter(|(p, a)| **p == 1 && **a)
        .count();
    let flagged = predicted.iter().filter(|&&p| p == 1).count();
    Ok(AnomalyRow {
        normal_class,
        n_train: train.len(),
        n_test: test.len(),
        n_anomalies: positives,
        reconstruction: DetectionReport::new(&reconstruction, &is_anomaly)?,
        latent: DetectionReport::new(&latent, &is_anomaly)?,
        combined: DetectionReport::new(&combined, &is_anomaly)?,
        pca: DetectionReport::new(&pca, &is_anomaly)?,
        threshold: detector.threshold(),
        flagged_share: flagged as f64 / test.len().max(1) as f64,
        precision: if flagged == 0 { 0.0 } else { tp as f64 / flagged as f64 },
        recall: tp as f64 / positives.max(1) as f64,
        train_seconds: fitted.seconds,
        scores: RowScores {
            labels: test.labels().map(<[i64]>::to_vec),
            is_anomaly,
            reconstruction,
            latent,
            combined,
            predicted,
        },
    })
}

impl AnomalyRow {
    /// The measurement of score `kind`.
    pub fn by_score(&self, kind: ScoreKind) -> DetectionReport {
        match kind {
            ScoreKind::Reconstruction => self.reconstruction,
            ScoreKind::Latent => self.latent,
            ScoreKind::Combined => self.combined,
        }
    }
}

fn report(dataset: &str, model: &str, protocol: &'static str, t: Thresholding, rows: Vec<AnomalyRow>) -> AnomalyReport {
    let mean = |f: &dyn Fn(&AnomalyRow) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
    AnomalyReport {
        dataset: dataset.to_string(),
        protocol,
        model: model.to_string(),
        score: t.score,
        contamination: t.contamination,
        mean_auroc_reconstruction: mean(&|r| r.reconstruction.auroc),
        mean_auroc_latent: mean(&|r| r.latent.auroc),
        mean_auroc_combined: mean(&|r| r.combined.auroc),
        mean_auroc_pca: mean(&|r| r.pca.auroc),
        mean_auroc: mean(&|r| r.by_score(t.score).auroc),
        mean_average_precision_reconstruction: mean(&|r| r.reconstruction.average_precision),
        total_train_seconds: rows.iter().map(|r| r.train_seconds).sum(),
        rows,
    }
}

/// The one-class protocol on a labelled image set: for each normal class (`classes`, or every
/// class of the test set when `None`), an autoencoder of `config` trained on that class's
/// training (and validation) images scores the whole test set, whose other classes are the
/// anomalies. Each class's model trains into `runs("class-C", ..)`.
///
/// # Errors
/// Unlabelled data, a class that is not among the test labels, a contamination outside (0, 0.5],
/// a failed training run.
#[allow(clippy::too_many_arguments)]
pub fn one_class<B: AutodiffBackend>(
    dataset: &str,
    model: &str,
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    data: Splits<'_>,
    classes: Option<&[i64]>,
    t: Thresholding,
    runs: &mut RunsFor<'_>,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<AnomalyReport> {
    check(t)?;
    let Some(labels) = data.test.labels() else {
        return Err(AeError::Invalid(
            "the one-class protocol needs a labelled image set".into(),
        ));
    };
    let mut present: Vec<i64> = labels.to_vec();
    present.sort_unstable();
    present.dedup();
    let chosen = match classes {
        Some(c) => {
            if let Some(x) = c.iter().find(|x| !present.contains(x)) {
                return Err(AeError::Invalid(format!(
                    "normal class {x} is not among the test labels {present:?}"
                )));
            }
            c.to_vec()
        }
        None => present,
    };
    let mut rows = Vec::new();
    for c in chosen {
        let train = data.train.filter_labels(&[c])?;
        let valid = data.valid.filter_labels(&[c])?;
        let is_anomaly: Vec<bool> = labels.iter().map(|&y| y != c).collect();
        let run = runs(&format!("class-{c}"), config)?;
        let split = Splits {
            train: &train,
            valid: &valid,
            test: data.test,
        };
        rows.push(one::<B>(
            c,
            config,
            train_config,
            split,
            is_anomaly,
            t,
            run,
            observer,
            device,
        )?);
    }
    Ok(report(dataset, model, ONE_CLASS, t, rows))
}

/// How [`tabular`] splits a table's normal rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TableSplit {
    /// Share of the normal rows held out for testing, beside every outlier, in (0, 1).
    pub holdout: f64,
    /// Share of the remaining normal rows used for early stopping, in (0, 1).
    pub valid_fraction: f64,
    /// Seed of the split (the validation split uses the next one).
    pub seed: u64,
}

/// The held-out protocol on a table whose labels mark the outliers (`y` = 1): the normal rows
/// are split into training, validation and held-out parts; the model trains on the first,
/// stops early on the second, and scores the held-out normal rows and every outlier. Features
/// are standardised with the training rows' statistics. The model trains into
/// `runs("table", ..)`; `config` takes the table's width with an identity output.
///
/// # Errors
/// A table without labels, without outliers or with fewer than 4 normal rows, split fractions
/// outside (0, 1), a contamination outside (0, 0.5], a failed training run.
#[allow(clippy::too_many_arguments)]
pub fn tabular<B: AutodiffBackend>(
    dataset: &str,
    model: &str,
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    table: &Dataset,
    split: TableSplit,
    t: Thresholding,
    runs: &mut RunsFor<'_>,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<AnomalyReport> {
    check(t)?;
    if !(split.holdout > 0.0 && split.holdout < 1.0) {
        return Err(AeError::Invalid(format!(
            "holdout must be in (0, 1), got {}",
            split.holdout
        )));
    }
    let Some(labels) = table.labels() else {
        return Err(AeError::Invalid(format!(
            "{}: anomaly detection on a table needs its y column (1 = outlier)",
            table.name()
        )));
    };
    let normal_idx: Vec<usize> = (0..table.len()).filter(|&i| labels[i] == 0).collect();
    let outlier_idx: Vec<usize> = (0..table.len()).filter(|&i| labels[i] != 0).collect();
    if outlier_idx.is_empty() || normal_idx.len() < 4 {
        return Err(AeError::Invalid(format!(
            "{}: needs normal rows (y = 0) and outliers (y = 1)",
            table.name()
        )));
    }
    let normal = table.subset(&normal_idx, "normal");
    let (pool, held_out) = normal.split(split.holdout, split.seed)?;
    let (mut train, mut valid) = pool.split(split.valid_fraction, split.seed + 1)?;
    let mut test_idx = Vec::new();
    let mut test = Vec::new();
    for i in 0..held_out.len() {
        test.extend_from_slice(held_out.row(i));
        test_idx.push(0);
    }
    for &i in &outlier_idx {
        test.extend_from_slice(table.row(i));
        test_idx.push(1);
    }
    let mut test = Dataset::new("test", test, table.d(), Some(test_idx.clone()), None)?;
    let s = Standardizer::fit(&train);
    s.transform(&mut train);
    s.transform(&mut valid);
    s.transform(&mut test);
    let is_anomaly: Vec<bool> = test_idx.iter().map(|&y| y != 0).collect();
    let run = runs("table", config)?;
    let data = Splits {
        train: &train,
        valid: &valid,
        test: &test,
    };
    let row = one::<B>(0, config, train_config, data, is_anomaly, t, run, observer, device)?;
    Ok(report(dataset, model, TABLE, t, vec![row]))
}

impl AnomalyReport {
    /// The report as Markdown: one row per normal class, then the means.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# Anomaly detection: {} ({})\n\n{}\n\n| normal | train | test | anomalies | AUROC recon | AP recon | AUROC latent | AP latent | AUROC combined | AUROC PCA | precision | recall | train s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            self.dataset, self.model, self.protocol
        );
        for r in &self.rows {
            md += &format!(
                "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.3} | {:.1} |\n",
                r.normal_class,
                r.n_train,
                r.n_test,
                r.n_anomalies,
                r.reconstruction.auroc,
                r.reconstruction.average_precision,
                r.latent.auroc,
                r.latent.average_precision,
                r.combined.auroc,
                r.pca.auroc,
                r.precision,
                r.recall,
                r.train_seconds
            );
        }
        md += &format!(
            "| mean | | | | {:.4} | {:.4} | {:.4} | | {:.4} | {:.4} | | | {:.1} |\n",
            self.mean_auroc_reconstruction,
            self.mean_average_precision_reconstruction,
            self.mean_auroc_latent,
            self.mean_auroc_combined,
            self.mean_auroc_pca,
            self.total_train_seconds
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestAutodiffBackend;

    /// One-class on two digit classes of the embedded digits: both rows measured, the chosen
    /// class list honoured, the scores kept per test row, and an absent class refused.
    #[test]
    fn one_class_on_the_digits() {
        let digits = gen_data::digits().unwrap();
        let (pool, test) = digits.split(0.3, 0).unwrap();
        let (train, valid) = pool.split(0.2, 1).unwrap();
        let config = AutoencoderConfig::mlp(64, vec![32], 4);
        let train_config = TrainConfig::default().with_num_epochs(40).with_batch_size(16);
        let t = Thresholding {
            score: ScoreKind::Reconstruction,
            contamination: 0.1,
        };
        let data = Splits {
            train: &train,
            valid: &valid,
            test: &test,
        };
        let mut labels = Vec::new();
        let report = one_class::<TestAutodiffBackend>(
            "digits",
            "ae",
            &config,
            &train_config,
            data,
            Some(&[0, 1]),
            t,
            &mut |label, _| {
                labels.push(label.to_string());
                Ok(None)
            },
            &mut (),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(labels, ["class-0", "class-1"]);
        assert_eq!(report.rows.len(), 2);
        for r in &report.rows {
            assert_eq!(r.n_test, test.len());
            assert_eq!(r.scores.reconstruction.len(), test.len());
            // Digits of one class against the other nine: far better than chance even after
            // forty short epochs.
            assert!(r.reconstruction.auroc > 0.7, "{:?}", r.reconstruction);
            assert!(r.combined.auroc > 0.7, "{:?}", r.combined);
            assert_eq!(r.scores.combined.len(), test.len());
            assert!(r.pca.auroc > 0.7, "{:?}", r.pca);
        }
        // The report's headline is the thresholded score's mean (reconstruction here).
        assert_eq!(report.mean_auroc, report.mean_auroc_reconstruction);
        assert!(report.markdown().contains("| mean |"));
        let e = one_class::<TestAutodiffBackend>(
            "digits",
            "ae",
            &config,
            &train_config,
            data,
            Some(&[11]),
            t,
            &mut |_, _| Ok(None),
            &mut (),
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("normal class 11 is not among"), "{e}");
    }

    /// The table protocol on a synthetic table: outliers far from a tight cluster are found,
    /// every outlier is among the test rows, and a table without outliers is refused.
    #[test]
    fn tabular_finds_far_outliers() {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let a = (i as f32 * 0.37).sin() * 0.1;
            rows.extend([a, 2.0 * a, -a, 0.5]);
            y.push(0);
        }
        for i in 0..10 {
            rows.extend([3.0 + i as f32, -4.0, 5.0, -0.5]);
            y.push(1);
        }
        let table = Dataset::new("synthetic", rows, 4, Some(y), None).unwrap();
        let mut config = AutoencoderConfig::mlp(4, vec![8], 2);
        config.output_activation = gen_core::nn::Activation::Identity;
        let train_config = TrainConfig::default().with_num_epochs(20).with_batch_size(32);
        let t = Thresholding {
            score: ScoreKind::Reconstruction,
            contamination: 0.1,
        };
        let split = TableSplit {
            holdout: 0.4,
            valid_fraction: 0.2,
            seed: 0,
        };
        let run = |table: &Dataset| {
            let no_folders = &mut |_: &str, _: &AutoencoderConfig| Ok(None);
            let device = Default::default();
            tabular::<TestAutodiffBackend>(
                "synthetic",
                "ae",
                &config,
                &train_config,
                table,
                split,
                t,
                no_folders,
                &mut (),
                &device,
            )
        };
        let report = run(&table).unwrap();
        let row = &report.rows[0];
        assert_eq!(row.n_anomalies, 10);
        assert_eq!(row.n_test, 80 + 10);
        assert!(row.reconstruction.auroc > 0.95, "{:?}", row.reconstruction);
        let normal_only = table.subset(&(0..200).collect::<Vec<_>>(), "normal");
        let e = run(&normal_only).unwrap_err();
        assert!(e.to_string().contains("needs normal rows (y = 0) and outliers"), "{e}");
    }
}
