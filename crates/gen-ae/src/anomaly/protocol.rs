//! The anomaly-detection protocols behind `gen anomaly`: the one-class protocol on labelled image
//! sets ([`one_class`]) and the held-out protocol on tables with an outlier column ([`tabular`]).
//! Each trains an autoencoder (or an ensemble of them) on normal data, scores a test set with
//! every score, thresholds the chosen one at the contamination rate, and reports AUROC, average
//! precision, precision and recall, beside PCA's reconstruction error on the same rows.

use burn::tensor::backend::AutodiffBackend;
use gen_core::train::{Observer, TrainConfig};
use gen_data::pca::Pca;
use gen_data::{Dataset, Standardizer};
use serde::Serialize;

use super::{AnomalyDetector, DetectionReport, EnsembleDetector, ScoreKind};
use crate::eval::{ModelRun, Splits, fit};
use crate::{AeError, AutoencoderConfig, Result};

/// The detector a protocol thresholds, and at which expected share of anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholding {
    /// The score that [`AnomalyDetector::predict`] thresholds (every score is measured).
    pub score: ScoreKind,
    /// Expected share of anomalies, in (0, 0.5] (PyOD's contamination).
    pub contamination: f64,
    /// Autoencoders per row: 1 thresholds one model's `score`; 2 or more train members with
    /// seeds `seed`, `seed + 1`, … and threshold their [`EnsembleDetector`] (the mean of the
    /// members' standardised `score`), measured beside the first member's scores.
    pub ensemble: usize,
}

impl Thresholding {
    /// One autoencoder's `score`, thresholded at `contamination`.
    pub fn new(score: ScoreKind, contamination: f64) -> Self {
        Self {
            score,
            contamination,
            ensemble: 1,
        }
    }

    /// The same, with an ensemble of `members` autoencoders.
    pub fn with_ensemble(self, members: usize) -> Self {
        Self {
            ensemble: members,
            ..self
        }
    }
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
    /// The ensemble's scores, with an ensemble of 2 or more.
    pub ensemble: Option<Vec<f32>>,
    /// 1 where the thresholded score is above the threshold.
    pub predicted: Vec<u8>,
}

/// One normal class (or one table) of an [`AnomalyReport`].
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRow {
    /// The normal class (0 for tables: the inliers).
    pub normal_class: i64,
    /// The label its (first) model's run folder was asked for ([`RunsFor`]): `class-C` or
    /// `table`.
    #[serde(skip)]
    pub run_label: String,
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
    /// The ensemble's score (the mean of its members' standardised thresholded score), with an
    /// ensemble of 2 or more; the first three scores are its first member's.
    pub ensemble: Option<DetectionReport>,
    /// The thresholded detector's score: the ensemble's, or the one model's chosen score.
    pub thresholded: DetectionReport,
    /// The baseline: PCA's reconstruction error with as many axes as the code has units,
    /// fitted on the same training rows.
    pub pca: DetectionReport,
    /// Threshold of the thresholded score at the contamination rate.
    pub threshold: f32,
    /// Share of test rows predicted anomalous.
    pub flagged_share: f64,
    /// Precision of those predictions.
    pub precision: f64,
    /// Recall of those predictions.
    pub recall: f64,
    /// Seconds of training (every member's).
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
    /// Autoencoders per row (2 or more: an ensemble is thresholded).
    pub ensemble: usize,
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
    /// Mean AUROC of the ensemble's score over the rows, with an ensemble.
    pub mean_auroc_ensemble: Option<f64>,
    /// Mean AUROC of the thresholded detector over the rows: the ensemble's with one, else
    /// the one model's [`AnomalyReport::score`].
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

/// Gives the run folder each model of a protocol trains into, by a label (`class-3`, `table`;
/// an ensemble's further members `class-3-member-1`, …), the model's configuration and the
/// training recipe it is trained with (an ensemble member's carries its own seed, so the folder
/// can record it); `None` trains without one.
pub type RunsFor<'a> = dyn FnMut(&str, &AutoencoderConfig, &TrainConfig) -> Result<Option<ModelRun>> + 'a;

fn check(t: Thresholding) -> Result<()> {
    if !(t.contamination > 0.0 && t.contamination <= 0.5) {
        return Err(AeError::Invalid(format!(
            "contamination must be in (0, 0.5], got {}",
            t.contamination
        )));
    }
    if t.ensemble == 0 {
        return Err(AeError::Invalid("an ensemble needs at least one autoencoder".into()));
    }
    Ok(())
}

/// Fits `t.ensemble` models on `train` (early stopping on `valid`; member `k` with seed
/// `seed + k`, into `runs(label)` or `runs("{label}-member-{k}")`), scores `test`, and measures
/// against `is_anomaly`.
#[allow(clippy::too_many_arguments)]
fn one<B: AutodiffBackend>(
    normal_class: i64,
    label: &str,
    config: &AutoencoderConfig,
    train_config: &TrainConfig,
    data: Splits<'_>,
    is_anomaly: Vec<bool>,
    t: Thresholding,
    runs: &mut RunsFor<'_>,
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
    let mut members = Vec::with_capacity(t.ensemble);
    let mut train_seconds = 0.0;
    for k in 0..t.ensemble as u64 {
        let mut member = train_config.clone();
        member.seed = train_config.seed.wrapping_add(k);
        let run = if k == 0 {
            runs(label, config, &member)?
        } else {
            runs(&format!("{label}-member-{k}"), config, &member)?
        };
        let fitted = fit::<B>(config, &member, train, Some(data.valid), run, observer, device)?;
        train_seconds += fitted.seconds;
        members.push(AnomalyDetector::new(
            fitted.model,
            train,
            t.score,
            t.contamination,
            device,
        )?);
    }
    let first = &members[0];
    let both = first.both_scores(test, device);
    let reconstruction: Vec<f32> = both.iter().map(|p| p.0).collect();
    let latent: Vec<f32> = both.iter().map(|p| p.1).collect();
    let combined = first.score_as(ScoreKind::Combined, &both);
    let pca = Pca::fit(train)?.row_errors(test, config.d_latent)?;
    let (scores, threshold, predicted, ensemble) = if t.ensemble > 1 {
        let ensemble = EnsembleDetector::new(members, t.contamination)?;
        let scores = ensemble.score_source(test, device);
        let predicted = ensemble.predict(&scores);
        (scores.clone(), ensemble.threshold(), predicted, Some(scores))
    } else {
        let scores = first.pick(&both);
        let predicted = first.predict(&scores);
        (scores, first.threshold(), predicted, None)
    };
    let tp = predicted
        .iter()
        .zip(&is_anomaly)
        .filter(|(p, a)| **p == 1 && **a)
        .count();
    let flagged = predicted.iter().filter(|&&p| p == 1).count();
    Ok(AnomalyRow {
        normal_class,
        run_label: label.to_string(),
        n_train: train.len(),
        n_test: test.len(),
        n_anomalies: positives,
        reconstruction: DetectionReport::new(&reconstruction, &is_anomaly)?,
        latent: DetectionReport::new(&latent, &is_anomaly)?,
        combined: DetectionReport::new(&combined, &is_anomaly)?,
        ensemble: ensemble
            .as_ref()
            .map(|e| DetectionReport::new(e, &is_anomaly))
            .transpose()?,
        thresholded: DetectionReport::new(&scores, &is_anomaly)?,
        pca: DetectionReport::new(&pca, &is_anomaly)?,
        threshold,
        flagged_share: flagged as f64 / test.len().max(1) as f64,
        precision: if flagged == 0 { 0.0 } else { tp as f64 / flagged as f64 },
        recall: tp as f64 / positives.max(1) as f64,
        train_seconds,
        scores: RowScores {
            labels: test.labels().map(<[i64]>::to_vec),
            is_anomaly,
            reconstruction,
            latent,
            combined,
            ensemble,
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
        ensemble: t.ensemble,
        mean_auroc_reconstruction: mean(&|r| r.reconstruction.auroc),
        mean_auroc_latent: mean(&|r| r.latent.auroc),
        mean_auroc_combined: mean(&|r| r.combined.auroc),
        mean_auroc_pca: mean(&|r| r.pca.auroc),
        mean_auroc_ensemble: (t.ensemble > 1).then(|| {
            let ensembles: Vec<f64> = rows.iter().filter_map(|r| r.ensemble.map(|e| e.auroc)).collect();
            ensembles.iter().sum::<f64>() / ensembles.len().max(1) as f64
        }),
        mean_auroc: mean(&|r| r.thresholded.auroc),
        mean_average_precision_reconstruction: mean(&|r| r.reconstruction.average_precision),
        total_train_seconds: rows.iter().map(|r| r.train_seconds).sum(),
        rows,
    }
}

/// The one-class protocol on a labelled image set: for each normal class (`classes`, or every
/// class of the test set when `None`), an autoencoder of `config` (or `t.ensemble` of them)
/// trained on that class's training (and validation) images scores the whole test set, whose
/// other classes are the anomalies. Each class's model trains into `runs("class-C", ..)` (an
/// ensemble's further members into `runs("class-C-member-K", ..)`).
///
/// # Errors
/// Unlabelled data, a class that is not among the test labels, a contamination outside (0, 0.5],
/// an ensemble of 0, a failed training run.
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
        let split = Splits {
            train: &train,
            valid: &valid,
            test: data.test,
        };
        rows.push(one::<B>(
            c,
            &format!("class-{c}"),
            config,
            train_config,
            split,
            is_anomaly,
            t,
            runs,
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
/// are split into training, validation and held-out parts; the model (or each of `t.ensemble`
/// models) trains on the first, stops early on the second, and scores the held-out normal rows
/// and every outlier. Features are standardised with the training rows' statistics. The model trains into
/// `runs("table", ..)` (an ensemble's further members into `runs("table-member-K", ..)`);
/// `config` takes the table's width with an identity output.
///
/// # Errors
/// A table without labels, without outliers or with fewer than 4 normal rows, split fractions
/// outside (0, 1), a contamination outside (0, 0.5], an ensemble of 0, a failed training run.
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
    let data = Splits {
        train: &train,
        valid: &valid,
        test: &test,
    };
    let row = one::<B>(
        0,
        "table",
        config,
        train_config,
        data,
        is_anomaly,
        t,
        runs,
        observer,
        device,
    )?;
    Ok(report(dataset, model, TABLE, t, vec![row]))
}

impl AnomalyReport {
    /// The report as Markdown: one row per normal class, then the means.
    pub fn markdown(&self) -> String {
        let with_ensemble = self.ensemble > 1;
        let (ensemble_head, ensemble_rule) = if with_ensemble {
            (format!(" AUROC ensemble of {} |", self.ensemble), "---|")
        } else {
            (String::new(), "")
        };
        let mut md = format!(
            "# Anomaly detection: {} ({})\n\n{}\n\n| normal | train | test | anomalies | AUROC recon | AP recon | AUROC latent | AP latent | AUROC combined |{ensemble_head} AUROC PCA | precision | recall | train s |\n|---|---|---|---|---|---|---|---|---|{ensemble_rule}---|---|---|---|\n",
            self.dataset, self.model, self.protocol
        );
        for r in &self.rows {
            let ensemble = r.ensemble.map(|e| format!(" {:.4} |", e.auroc)).unwrap_or_default();
            md += &format!(
                "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |{ensemble} {:.4} | {:.3} | {:.3} | {:.1} |\n",
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
        let ensemble = self
            .mean_auroc_ensemble
            .map(|e| format!(" {e:.4} |"))
            .unwrap_or_default();
        md += &format!(
            "| mean | | | | {:.4} | {:.4} | {:.4} | | {:.4} |{ensemble} {:.4} | | | {:.1} |\n",
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
        let t = Thresholding::new(ScoreKind::Reconstruction, 0.1);
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
            &mut |label, _, _| {
                labels.push(label.to_string());
                Ok(None)
            },
            &mut (),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(labels, ["class-0", "class-1"]);
        assert_eq!(report.rows[1].run_label, "class-1");
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
        assert!(report.mean_auroc_ensemble.is_none() && report.rows[0].ensemble.is_none());
        let e = one_class::<TestAutodiffBackend>(
            "digits",
            "ae",
            &config,
            &train_config,
            data,
            Some(&[11]),
            t,
            &mut |_, _, _| Ok(None),
            &mut (),
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("normal class 11 is not among"), "{e}");
    }

    /// An ensemble of three on one digit class: each member trains into its own folder, the
    /// first member's scores are those of a single model with the same seed, the ensemble is
    /// what is thresholded and measured as the headline, and it ranks at least about as well as
    /// its first member; an ensemble of none is refused.
    #[test]
    fn one_class_with_an_ensemble() {
        // The single model and the ensemble's first member are compared bit for bit: no other
        // test may reseed the backend in between.
        let _lock = gen_core::testing::seed_lock();
        let digits = gen_data::digits().unwrap();
        let (pool, test) = digits.split(0.3, 0).unwrap();
        let (train, valid) = pool.split(0.2, 1).unwrap();
        let config = AutoencoderConfig::mlp(64, vec![32], 4);
        let train_config = TrainConfig::default().with_num_epochs(20).with_batch_size(16);
        let data = Splits {
            train: &train,
            valid: &valid,
            test: &test,
        };
        let run = |t: Thresholding, labels: &mut Vec<String>| {
            one_class::<TestAutodiffBackend>(
                "digits",
                "ae",
                &config,
                &train_config,
                data,
                Some(&[3]),
                t,
                &mut |label, _, _| {
                    labels.push(label.to_string());
                    Ok(None)
                },
                &mut (),
                &Default::default(),
            )
        };
        let t = Thresholding::new(ScoreKind::Combined, 0.1);
        let mut labels = Vec::new();
        let single = run(t, &mut labels).unwrap();
        let report = run(t.with_ensemble(3), &mut labels).unwrap();
        assert_eq!(labels, ["class-3", "class-3", "class-3-member-1", "class-3-member-2"]);
        let (one, row) = (&single.rows[0], &report.rows[0]);
        assert_eq!(row.combined, one.combined, "member 0 is the single model");
        let ensemble = row.ensemble.expect("an ensemble row");
        assert_eq!(row.thresholded, ensemble);
        assert_eq!(report.mean_auroc, ensemble.auroc);
        assert_eq!(report.mean_auroc_ensemble, Some(ensemble.auroc));
        assert_eq!(row.scores.ensemble.as_ref().map(Vec::len), Some(test.len()));
        assert!(
            ensemble.auroc > one.combined.auroc - 0.02,
            "{ensemble:?} against {:?}",
            one.combined
        );
        // The members differ (their seeds): the ensemble's scores are not a rescaling of the
        // first member's.
        let scores = row.scores.ensemble.as_ref().unwrap();
        let correlation = pearson(scores, &row.scores.combined);
        assert!(
            correlation < 0.999,
            "ensemble against member 0: correlation {correlation}"
        );
        // What is predicted is the ensemble's score against the row's threshold.
        let predicted: Vec<u8> = scores.iter().map(|&s| u8::from(s > row.threshold)).collect();
        assert_eq!(row.scores.predicted, predicted);
        assert!(predicted.contains(&1) && predicted.contains(&0));
        assert!(report.markdown().contains("AUROC ensemble of 3"));
        let e = run(t.with_ensemble(0), &mut labels).unwrap_err();
        assert!(e.to_string().contains("at least one autoencoder"), "{e}");
    }

    fn pearson(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (
            a.iter().map(|&x| f64::from(x)).sum::<f64>() / n,
            b.iter().map(|&x| f64::from(x)).sum::<f64>() / n,
        );
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        ab / (aa * bb).sqrt()
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
        let t = Thresholding::new(ScoreKind::Reconstruction, 0.1);
        let split = TableSplit {
            holdout: 0.4,
            valid_fraction: 0.2,
            seed: 0,
        };
        let run = |table: &Dataset| {
            let no_folders = &mut |_: &str, _: &AutoencoderConfig, _: &TrainConfig| Ok(None);
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
