//! A run's data as the commands see it: the library's splits (`gen_data::splits`), the split a
//! flag names, the data folder, and the check that images fit a model.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::ValueEnum;
use gen_core::nn::ImageShape;
use gen_data::Dataset;
pub use gen_data::splits::{Splits, load_splits, load_splits_and_unseen};

/// A data split chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitChoice {
    /// The rows the model was fitted on.
    Train,
    /// The validation rows.
    Valid,
    /// The held-out test rows.
    Test,
}

impl SplitChoice {
    /// This split of `splits`.
    pub fn of(self, splits: &Splits) -> &Dataset {
        match self {
            SplitChoice::Train => &splits.train,
            SplitChoice::Valid => &splits.valid,
            SplitChoice::Test => &splits.test,
        }
    }
}

/// The data folder: the flag, else `$GEN_DATA_DIR`, else `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(gen_data::data_dir_from_env)
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Checks that images of `shape` fit a model trained on images of `expected`.
pub fn check_shape(expected: Option<ImageShape>, shape: ImageShape, what: &Path) -> anyhow::Result<()> {
    match expected {
        Some(e) if e == shape => Ok(()),
        Some(e) => bail!(
            "{}: images are {}x{}x{} but the model was trained on {}x{}x{}",
            what.display(),
            shape.channels,
            shape.height,
            shape.width,
            e.channels,
            e.height,
            e.width
        ),
        None => bail!("the run's model was not trained on images"),
    }
}
