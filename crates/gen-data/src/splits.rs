//! A data set named in words and cut into the same training, validation and test splits every
//! time: what `gen` trains and judges every run on, so that a Rust program gets the very rows a
//! run folder's numbers came from.
//!
//! ```
//! use gen_data::splits::{DataSpec, load_splits};
//!
//! let splits = load_splits(&DataSpec::default(), std::path::Path::new("data")).unwrap();
//! assert_eq!(splits.train.len() + splits.valid.len() + splits.test.len(), 1797);
//! assert_eq!(splits.n_classes().unwrap(), 10);
//! ```

use std::path::{Path, PathBuf};

use gen_core::nn::ImageShape;
use serde::{Deserialize, Serialize};

use crate::{DataError, Dataset, FASHION_MNIST, MNIST, Result, Split, Standardizer};

/// Which data set, and how it is split into training, validation and test parts (the `[data]`
/// table of a run's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    /// `digits` (embedded), `mnist`, `fashion-mnist`, or `csv:PATH`.
    pub dataset: String,
    /// Share of the training rows held out for validation.
    pub valid_fraction: f64,
    /// Share of the rows held out for testing, for data sets without an official test split.
    pub test_fraction: f64,
    /// Seed of those splits (kept apart from the training seed, so the test set never moves).
    pub split_seed: u64,
    /// Use only the first N training rows (quick experiments).
    pub limit: Option<usize>,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            dataset: "digits".into(),
            valid_fraction: 0.1,
            test_fraction: 0.2,
            split_seed: 0,
            limit: None,
        }
    }
}

/// Where a data set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The embedded 8x8 digits.
    Digits,
    /// MNIST from the data folder.
    Mnist,
    /// Fashion-MNIST from the data folder.
    FashionMnist,
    /// A numeric CSV table.
    Csv(PathBuf),
}

impl DataSource {
    /// Parses `digits`, `mnist`, `fashion-mnist` or `csv:PATH`.
    ///
    /// # Errors
    /// Any other name, or `csv:` without a path.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "digits" => DataSource::Digits,
            "mnist" => DataSource::Mnist,
            "fashion-mnist" | "fashion_mnist" => DataSource::FashionMnist,
            _ => match s.strip_prefix("csv:") {
                Some(p) if !p.is_empty() => DataSource::Csv(PathBuf::from(p)),
                _ => {
                    return Err(DataError::Invalid(format!(
                        "unknown data set {s:?}; expected digits, mnist, fashion-mnist or csv:PATH"
                    )));
                }
            },
        })
    }

    /// A short name for run names.
    pub fn short_name(&self) -> String {
        match self {
            DataSource::Digits => "digits".into(),
            DataSource::Mnist => "mnist".into(),
            DataSource::FashionMnist => "fashion-mnist".into(),
            DataSource::Csv(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "csv".into()),
        }
    }
}

/// The three splits of a run.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training rows.
    pub train: Dataset,
    /// Validation rows (early stopping, best checkpoint).
    pub valid: Dataset,
    /// Test rows, never seen in training.
    pub test: Dataset,
    /// Whether the features were standardised (tables), so not in [0, 1].
    pub standardised: bool,
}

impl Splits {
    /// The image shape of the data, or `None` for a table (whose standardised features are no
    /// images).
    pub fn image_shape(&self) -> Option<ImageShape> {
        self.test.image_shape().filter(|_| !self.standardised)
    }

    /// The number of classes of labelled splits: the largest label + 1.
    ///
    /// # Errors
    /// A split without labels, or a negative label.
    pub fn n_classes(&self) -> Result<usize> {
        let mut max = 0;
        for data in [&self.train, &self.valid, &self.test] {
            let Some(labels) = data.labels() else {
                return Err(DataError::Invalid(format!(
                    "{} has no labels; a conditional model needs them",
                    data.name()
                )));
            };
            if let Some(l) = labels.iter().find(|&&l| l < 0) {
                return Err(DataError::Invalid(format!(
                    "{}: a conditional model needs labels 0, 1, ...; found {l}",
                    data.name()
                )));
            }
            max = max.max(labels.iter().copied().max().unwrap_or(0));
        }
        Ok(max as usize + 1)
    }
}

/// Loads the data set of `spec` (MNIST and Fashion-MNIST from `data_dir`) and splits it
/// deterministically: the test split by `split_seed` (MNIST's own test set for MNIST), the
/// validation split from the first `limit` of the rest by `split_seed + 1`; a table is
/// standardised by its training split.
///
/// # Errors
/// An unknown data set, files missing or corrupt, fractions that leave a split empty.
pub fn load_splits(spec: &DataSpec, data_dir: &Path) -> Result<Splits> {
    let (source, pool, test) = load_pool(spec, data_dir)?;
    split_pool(spec, source, pool, test)
}

/// The splits of `spec`, and real images that a run trained on them never saw, for judging
/// samples against: the validation split, or, when `limit` left part of the pool out of
/// training and that part is larger, that part (a run on 600 MNIST images has 60 validation
/// images, too few for a Fréchet distance, but 59,400 unused ones). The data is read once.
///
/// # Errors
/// As [`load_splits`].
pub fn load_splits_and_unseen(spec: &DataSpec, data_dir: &Path) -> Result<(Splits, Dataset)> {
    let (source, pool, test) = load_pool(spec, data_dir)?;
    let rest = spec.limit.filter(|&n| n < pool.len()).map(|n| {
        let rows: Vec<usize> = (n..pool.len()).collect();
        pool.subset(&rows, format!("{}-unused", source.short_name()))
    });
    let splits = split_pool(spec, source, pool, test)?;
    let unseen = match rest {
        Some(rest) if !splits.standardised && rest.len() > splits.valid.len() => rest,
        _ => splits.valid.clone(),
    };
    Ok((splits, unseen))
}

/// Cuts `spec`'s training and validation splits from `pool` (its first `limit` rows), and
/// standardises tables by the training split.
fn split_pool(spec: &DataSpec, source: DataSource, pool: Dataset, test: Dataset) -> Result<Splits> {
    let pool = match spec.limit {
        Some(n) => pool.take(n),
        None => pool,
    };
    let (mut train, mut valid) = pool.split(spec.valid_fraction, spec.split_seed.wrapping_add(1))?;
    let mut test = test;
    let standardised = matches!(source, DataSource::Csv(_));
    if standardised {
        let s = Standardizer::fit(&train);
        s.transform(&mut train);
        s.transform(&mut valid);
        s.transform(&mut test);
    }
    let name = source.short_name();
    Ok(Splits {
        train: train.with_name(format!("{name}-train")),
        valid: valid.with_name(format!("{name}-valid")),
        test: test.with_name(format!("{name}-test")),
        standardised,
    })
}

/// The pool that the training and validation splits come from, and the test set.
fn load_pool(spec: &DataSpec, data_dir: &Path) -> Result<(DataSource, Dataset, Dataset)> {
    let source = DataSource::parse(&spec.dataset)?;
    let (pool, test) = match &source {
        DataSource::Digits => {
            let all = crate::digits()?;
            let (pool, test) = all.split(spec.test_fraction, spec.split_seed)?;
            (pool, test.with_name("digits-test"))
        }
        DataSource::Mnist | DataSource::FashionMnist => {
            let ds = if source == DataSource::Mnist {
                MNIST
            } else {
                FASHION_MNIST
            };
            (ds.load(Split::Train, data_dir)?, ds.load(Split::Test, data_dir)?)
        }
        DataSource::Csv(path) => {
            let all = crate::load_csv(path)?;
            all.split(spec.test_fraction, spec.split_seed)?
        }
    };
    Ok((source, pool, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_splits_are_disjoint_and_stable() {
        let spec = DataSpec::default();
        let a = load_splits(&spec, Path::new("unused")).unwrap();
        assert_eq!(a.train.len() + a.valid.len() + a.test.len(), 1797);
        assert_eq!(a.test.len(), 359);
        let b = load_splits(&spec, Path::new("unused")).unwrap();
        assert_eq!(a.test, b.test);
        assert_eq!(a.train, b.train);
        assert_eq!(
            (a.image_shape(), a.n_classes().unwrap()),
            (Some(ImageShape::grey(8, 8)), 10)
        );
    }

    #[test]
    fn unseen_images_are_the_rows_a_limit_left_out() {
        let dir = Path::new("unused");
        let full = DataSpec::default();
        let (splits, unseen) = load_splits_and_unseen(&full, dir).unwrap();
        assert_eq!(unseen, splits.valid);
        assert_eq!(splits.train, load_splits(&full, dir).unwrap().train);
        let limited = DataSpec {
            limit: Some(300),
            ..DataSpec::default()
        };
        let (splits, unseen) = load_splits_and_unseen(&limited, dir).unwrap();
        assert_eq!(splits.train, load_splits(&limited, dir).unwrap().train);
        assert_eq!(unseen.len(), 1797 - 359 - 300);
        // The training and validation rows are the pool's first 300; the unseen ones the rest.
        let (_, pool, _) = load_pool(&limited, dir).unwrap();
        assert_eq!(splits.train.len() + splits.valid.len(), 300);
        assert_eq!(unseen.features(), &pool.features()[300 * pool.d()..]);
        assert_eq!(unseen.labels(), pool.labels().map(|l| &l[300..]));
    }

    #[test]
    fn parses_sources_and_refuses_unlabelled_classes() {
        assert_eq!(DataSource::parse("csv:/x/pima.csv").unwrap().short_name(), "pima");
        assert!(DataSource::parse("csv:").is_err());
        assert!(DataSource::parse("imagenet").is_err());
        let mut s = load_splits(&DataSpec::default(), Path::new("unused")).unwrap();
        s.valid = Dataset::new("bare", s.valid.features().to_vec(), s.valid.d(), None, None).unwrap();
        let e = s.n_classes().unwrap_err();
        assert!(e.to_string().contains("bare has no labels"), "{e}");
    }
}
