use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MetricsLog;
use crate::{CoreError, Result};

/// A run folder: `config.json`, checkpoints, `metrics.csv` and whatever artefacts the caller adds.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates the folder and writes `config.json`.
    ///
    /// # Errors
    /// [`CoreError::RunExists`] if the folder exists and is not empty, unless `overwrite` is set, in
    /// which case its previous content is removed first.
    pub fn create<C: Serialize>(root: impl Into<PathBuf>, config: &C, overwrite: bool) -> Result<Self> {
        let root = root.into();
        let occupied = std::fs::read_dir(&root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if occupied {
            if !overwrite {
                return Err(CoreError::RunExists(root));
            }
            std::fs::remove_dir_all(&root).map_err(|e| CoreError::io("cannot remove", &root, e))?;
        }
        std::fs::create_dir_all(&root).map_err(|e| CoreError::io("cannot create", &root, e))?;
        let run = Self { root };
        run.write_config(config)?;
        Ok(run)
    }

    /// Opens an existing run folder (for resuming or evaluation).
    ///
    /// # Errors
    /// If the folder or its `config.json` is missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let run = Self { root: root.into() };
        if !run.config_path().is_file() {
            return Err(CoreError::io(
                "not a run folder (no config.json)",
                run.root.clone(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        Ok(run)
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// The checkpoint of the last completed epoch (model and optimizer).
    pub fn checkpoint_path(&self) -> PathBuf {
        self.root.join("checkpoint.ckpt")
    }

    /// The model of the best validation epoch.
    pub fn best_path(&self) -> PathBuf {
        self.root.join("best.ckpt")
    }

    /// The model to use after training: the best one if validation ran, else the last.
    pub fn model_path(&self) -> PathBuf {
        let best = self.best_path();
        if best.is_file() { best } else { self.checkpoint_path() }
    }

    /// `metrics.csv`.
    pub fn metrics(&self) -> MetricsLog {
        MetricsLog::new(self.root.join("metrics.csv"))
    }

    /// Any other file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `config.json` atomically.
    pub fn write_config<C: Serialize>(&self, config: &C) -> Result<()> {
        let json = serde_json::to_vec_pretty(config).map_err(|e| CoreError::Serialise {
            what: "run config",
            reason: e.to_string(),
        })?;
        super::write_atomic(&self.config_path(), &json)
    }

    /// Reads `config.json`.
    pub fn read_config<C: DeserializeOwned>(&self) -> Result<C> {
        let path = self.config_path();
        let text = std::fs::read(&path).map_err(|e| CoreError::io("cannot read", &path, e))?;
        serde_json::from_slice(&text).map_err(|e| CoreError::Serialise {
            what: "run config",
            reason: format!("{}: {e}", path.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        let run = RunDir::create(&root, &serde_json::json!({"a": 1}), false).unwrap();
        std::fs::write(run.file("keep.txt"), "precious").unwrap();
        let err = RunDir::create(&root, &serde_json::json!({"a": 2}), false).unwrap_err();
        assert!(matches!(err, CoreError::RunExists(_)));
        assert!(
            run.file("keep.txt").exists(),
            "a refused run must not touch the old one"
        );
        let run = RunDir::create(&root, &serde_json::json!({"a": 3}), true).unwrap();
        assert!(!run.file("keep.txt").exists());
        let v: serde_json::Value = RunDir::open(&root).unwrap().read_config().unwrap();
        assert_eq!(v["a"], 3);
        assert!(RunDir::open(dir.path().join("nope")).is_err());
    }
}
