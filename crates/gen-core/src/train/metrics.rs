use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weighted by batch size).
    pub train_loss: f64,
    /// Validation loss after the epoch, when there is a validation set.
    pub valid_loss: Option<f64>,
    /// Named parts of the loss, prefixed `train_` or `valid_`.
    pub parts: Vec<(String, f64)>,
    /// Training throughput.
    pub samples_per_sec: f64,
    /// Wall time of the epoch, training and validation.
    pub seconds: f64,
}

impl EpochMetrics {
    fn columns(&self) -> Vec<String> {
        let mut c = vec!["epoch".to_string(), "train_loss".into(), "valid_loss".into()];
        c.extend(self.parts.iter().map(|(k, _)| k.clone()));
        c.extend(["samples_per_sec".into(), "seconds".into()]);
        c
    }

    fn values(&self) -> Vec<String> {
        let mut v = vec![
            self.epoch.to_string(),
            self.train_loss.to_string(),
            self.valid_loss.map(|x| x.to_string()).unwrap_or_default(),
        ];
        v.extend(self.parts.iter().map(|(_, x)| x.to_string()));
        v.extend([format!("{:.1}", self.samples_per_sec), format!("{:.3}", self.seconds)]);
        v
    }
}

/// `metrics.csv`: a header row, then one row per epoch.
#[derive(Debug, Clone)]
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// A log at `path` (created on the first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a row, writing the header first if the file is new.
    pub fn append(&self, m: &EpochMetrics) -> Result<()> {
        let new = !self.path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| CoreError::io("cannot open", &self.path, e))?;
        let mut text = String::new();
        if new {
            text.push_str(&m.columns().join(","));
            text.push('\n');
        }
        text.push_str(&m.values().join(","));
        text.push('\n');
        f.write_all(text.as_bytes())
            .map_err(|e| CoreError::io("cannot append to", &self.path, e))
    }

    /// Drops the rows of epochs after `epoch` (used when resuming from an earlier checkpoint).
    pub fn truncate_after(&self, epoch: usize) -> Result<()> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Ok(());
        };
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, line)| {
                *i == 0
                    || line
                        .split(',')
                        .next()
                        .and_then(|e| e.parse::<usize>().ok())
                        .is_some_and(|e| e <= epoch)
            })
            .map(|(_, l)| l)
            .collect();
        let mut out = kept.join("\n");
        out.push('\n');
        super::write_atomic(&self.path, out.as_bytes())
    }

    /// Reads `(column names, rows)` back, for plots.
    pub fn read(&self) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| CoreError::io("cannot read", &self.path, e))?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap_or(f64::NAN)).collect())
            .collect();
        Ok((header, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            valid_loss: Some(2.0),
            parts: vec![("train_recon".into(), 0.5)],
            samples_per_sec: 100.0,
            seconds: 1.5,
        }
    }

    #[test]
    fn append_read_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::new(dir.path().join("metrics.csv"));
        for e in 1..=3 {
            log.append(&m(e)).unwrap();
        }
        let (cols, rows) = log.read().unwrap();
        assert_eq!(
            cols,
            [
                "epoch",
                "train_loss",
                "valid_loss",
                "train_recon",
                "samples_per_sec",
                "seconds"
            ]
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1][1], 0.5);
        log.truncate_after(2).unwrap();
        assert_eq!(log.read().unwrap().1.len(), 2);
    }
}
