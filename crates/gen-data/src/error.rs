//! Errors of gen-data.

use std::path::PathBuf;

/// Everything that can go wrong while finding, downloading or parsing data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content does not follow its format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A CSV cell or row is wrong.
    #[error("{path}, line {line}, column {column}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column number (0 when the whole row is at fault).
        column: usize,
        /// What was wrong.
        reason: String,
    },
    /// A file's SHA-256 is not the published one.
    #[error("{path}: SHA-256 {actual} does not match the expected {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The published digest.
        expected: String,
        /// The digest of the content found.
        actual: String,
    },
    /// A required file is not in any of the places searched.
    #[error(
        "{file} not found; looked in {searched}. Pass --data-dir, set GEN_DATA_DIR, or run `gen download {dataset}`"
    )]
    NotFound {
        /// The file name.
        file: String,
        /// The data set it belongs to.
        dataset: String,
        /// The places searched.
        searched: String,
    },
    /// A download failed.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address.
        url: String,
        /// Why.
        reason: String,
    },
    /// A request that cannot be met (an empty split, a bad fraction, inconsistent sizes).
    #[error("{0}")]
    Invalid(String),
    /// A file could not be written (through gen-core's atomic files, which name it).
    #[error(transparent)]
    Write(#[from] gen_core::CoreError),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The result type of gen-data.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
