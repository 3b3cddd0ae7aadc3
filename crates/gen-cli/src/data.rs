//! Loading a run's data set and cutting it into the same splits every time.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;
use gen_core::nn::ImageShape;
use gen_data::{Dataset, FASHION_MNIST, MNIST, Split, Standardizer};

use crate::config::DataSpec;

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
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "digits" => DataSource::Digits,
            "mnist" => DataSource::Mnist,
            "fashion-mnist" | "fashion_mnist" => DataSource::FashionMnist,
            _ => match s.strip_prefix("csv:") {
                Some(p) if !p.is_empty() => DataSource::Csv(PathBuf::from(p)),
                _ => bail!("unknown data set {s:?}; expected digits, mnist, fashion-mnist or csv:PATH"),
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
    /// One split.
    pub fn get(&self, which: SplitChoice) -> &Dataset {
        match which {
            SplitChoice::Train => &self.train,
            SplitChoice::Valid => &self.valid,
            SplitChoice::Test => &self.test,
        }
    }
}

/// The data folder: the flag, else `$GEN_DATA_DIR`, else `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(gen_data::data_dir_from_env)
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Loads the data set of `spec` and splits it deterministically.
pub fn load_splits(spec: &DataSpec, data_dir: &Path) -> anyhow::Result<Splits> {
    let (source, pool, test) = load_pool(spec, data_dir)?;
    split_pool(spec, source, pool, test)
}

/// The splits of `spec`, and real images that a run trained on them never saw, for judging
/// samples against: the validation split, or, when `--limit` left part of the pool out of
/// training and that part is larger, that part (a run on 600 MNIST images has 60 validation
/// images, too few for a Fréchet distance, but 59,400 unused ones). The data is read once.
pub fn load_splits_and_unseen(spec: &DataSpec, data_dir: &Path) -> anyhow::Result<(Splits, Dataset)> {
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
fn split_pool(spec: &DataSpec, source: DataSource, pool: Dataset, test: Dataset) -> anyhow::Result<Splits> {
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
fn load_pool(spec: &DataSpec, data_dir: &Path) -> anyhow::Result<(DataSource, Dataset, Dataset)> {
    let source = DataSource::parse(&spec.dataset)?;
    let (pool, test) = match &source {
        DataSource::Digits => {
            let all = gen_data::digits()?;
            let (pool, test) = all.split(spec.test_fraction, spec.split_seed)?;
            (pool, test.with_name("digits-test"))
        }
        DataSource::Mnist | DataSource::FashionMnist => {
            let ds = if source == DataSource::Mnist {
                MNIST
            } else {
                FASHION_MNIST
            };
            let train = ds
                .load(Split::Train, data_dir)
                .with_context(|| format!("loading {} training set", ds.name))?;
            let test = ds
                .load(Split::Test, data_dir)
                .with_context(|| format!("loading {} test set", ds.name))?;
            (train, test)
        }
        DataSource::Csv(path) => {
            let all = gen_data::load_csv(path)?;
            let (pool, test) = all.split(spec.test_fraction, spec.split_seed)?;
            (pool, test)
        }
    };
    Ok((source, pool, test))
}

/// The image shape of a run's data, or `None` for a table (whose standardised features are no
/// images).
pub fn image_shape(splits: &Splits) -> Option<ImageShape> {
    splits.test.image_shape().filter(|_| !splits.standardised)
}

/// The number of classes of a labelled data set's splits (largest label + 1).
pub fn n_classes(splits: &Splits) -> anyhow::Result<usize> {
    let mut max = 0;
    for data in [&splits.train, &splits.valid, &splits.test] {
        let labels = data
            .labels()
            .with_context(|| format!("{} has no labels; a conditional model needs them", data.name()))?;
        if let Some(l) = labels.iter().find(|&&l| l < 0) {
            bail!("{}: a conditional model needs labels 0, 1, ...; found {l}", data.name());
        }
        max = max.max(labels.iter().copied().max().unwrap_or(0));
    }
    Ok(max as usize + 1)
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
    fn parses_sources() {
        assert_eq!(DataSource::parse("csv:/x/pima.csv").unwrap().short_name(), "pima");
        assert!(DataSource::parse("csv:").is_err());
        assert!(DataSource::parse("imagenet").is_err());
    }
}
