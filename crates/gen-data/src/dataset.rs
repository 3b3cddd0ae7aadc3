use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use gen_core::nn::ImageShape;
use gen_core::{Batch, BatchSource};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Result};

/// An in-memory data set: `n` rows of `d` features (`f32`), optional integer labels, and the image
/// shape when the rows are images.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    features: Vec<f32>,
    d: usize,
    labels: Option<Vec<i64>>,
    image: Option<ImageShape>,
}

impl Dataset {
    /// Builds a data set from row-major features.
    ///
    /// # Errors
    /// If `d` is zero, the features are not a whole number of rows, a value is not finite, or the
    /// labels or image shape do not fit.
    pub fn new(
        name: impl Into<String>,
        features: Vec<f32>,
        d: usize,
        labels: Option<Vec<i64>>,
        image: Option<ImageShape>,
    ) -> Result<Self> {
        let name = name.into();
        if d == 0 || !features.len().is_multiple_of(d) {
            return Err(DataError::Invalid(format!(
                "{name}: {} values are not a whole number of rows of {d} features",
                features.len()
            )));
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(DataError::Invalid(format!(
                "{name}: row {}, feature {} is not finite",
                i / d,
                i % d
            )));
        }
        let n = features.len() / d;
        if let Some(l) = &labels
            && l.len() != n
        {
            return Err(DataError::Invalid(format!("{name}: {} labels for {n} rows", l.len())));
        }
        if let Some(s) = image
            && s.numel() != d
        {
            return Err(DataError::Invalid(format!(
                "{name}: image shape {s:?} does not have {d} values"
            )));
        }
        Ok(Self {
            name,
            features,
            d,
            labels,
            image,
        })
    }

    /// The data set's name (`"digits"`, `"mnist-train"`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.features.len() / self.d
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Features per row.
    pub fn d(&self) -> usize {
        self.d
    }

    /// All features, row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.d..(i + 1) * self.d]
    }

    /// The labels, if any.
    pub fn labels(&self) -> Option<&[i64]> {
        self.labels.as_deref()
    }

    /// The image shape, if the rows are images.
    pub fn image_shape(&self) -> Option<ImageShape> {
        self.image
    }

    /// The rows at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize], name: impl Into<String>) -> Dataset {
        let mut features = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect());
        Dataset {
            name: name.into(),
            features,
            d: self.d,
            labels,
            image: self.image,
        }
    }

    /// The first `n` rows (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.subset(&(0..n).collect::<Vec<_>>(), self.name.clone())
    }

    /// Splits the rows at random into two parts, the second holding `fraction` of them.
    ///
    /// # Errors
    /// If `fraction` is not in (0, 1) or either part would be empty.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(DataError::Invalid(format!(
                "split fraction must be in (0, 1), got {fraction}"
            )));
        }
        let n = self.len();
        let n_second = (n as f64 * fraction).round() as usize;
        if n_second == 0 || n_second == n {
            return Err(DataError::Invalid(format!(
                "{}: a split of {fraction} of {n} rows leaves one part empty",
                self.name
            )));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let (a, b) = order.split_at(n - n_second);
        Ok((
            self.subset(a, format!("{}-a", self.name)),
            self.subset(b, format!("{}-b", self.name)),
        ))
    }

    /// The rows whose label is in `classes`.
    ///
    /// # Errors
    /// If the data set has no labels.
    pub fn filter_labels(&self, classes: &[i64]) -> Result<Dataset> {
        let labels = self
            .labels
            .as_ref()
            .ok_or_else(|| DataError::Invalid(format!("{} has no labels", self.name)))?;
        let idx: Vec<usize> = (0..self.len()).filter(|&i| classes.contains(&labels[i])).collect();
        Ok(self.subset(&idx, self.name.clone()))
    }

    /// Replaces the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Mean of every feature: the "mean image" baseline reconstruction.
    pub fn feature_means(&self) -> Vec<f32> {
        let mut m = vec![0f64; self.d];
        for row in self.features.chunks_exact(self.d) {
            for (acc, &v) in m.iter_mut().zip(row) {
                *acc += v as f64;
            }
        }
        let n = self.len().max(1) as f64;
        m.into_iter().map(|v| (v / n) as f32).collect()
    }

    /// Mean squared error per value of predicting every row of `data` by this data set's mean
    /// row: the "mean image" baseline that any reconstruction must beat.
    ///
    /// # Panics
    /// If the widths differ.
    pub fn mean_row_mse(&self, data: &Dataset) -> f64 {
        assert_eq!(self.d, data.d, "mean_row_mse: widths {} and {} differ", self.d, data.d);
        let m = self.feature_means();
        let se: f64 = data
            .features
            .chunks_exact(data.d)
            .flat_map(|row| row.iter().zip(&m))
            .map(|(&x, &mu)| ((x - mu) as f64).powi(2))
            .sum();
        se / data.features.len().max(1) as f64
    }

    /// All rows as one tensor.
    ///
    /// # Shapes
    /// - output: `[n, d]`
    pub fn to_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        self.rows_tensor(0..self.len(), device)
    }

    /// The consecutive rows `rows` as one tensor (batched evaluation without gathering).
    ///
    /// # Shapes
    /// - output: `[rows.len(), d]`
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn rows_tensor<B: Backend>(&self, rows: std::ops::Range<usize>, device: &B::Device) -> Tensor<B, 2> {
        let n = rows.len();
        let values = self.features[rows.start * self.d..rows.end * self.d].to_vec();
        Tensor::from_data(TensorData::new(values, [n, self.d]), device)
    }

    /// Runs `f` over the rows in batches of [`EVAL_BATCH`] (no autodiff: `B` is whatever backend
    /// the caller evaluates on) and concatenates the outputs' rows: returns the values and the
    /// outputs' width.
    ///
    /// # Errors
    /// If an output cannot be read back as `f32` values.
    pub fn map_rows<B: Backend>(
        &self,
        device: &B::Device,
        mut f: impl FnMut(Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> Result<(Vec<f32>, usize)> {
        let mut out = Vec::new();
        let mut width = 0;
        for start in (0..self.len()).step_by(EVAL_BATCH) {
            let end = (start + EVAL_BATCH).min(self.len());
            let y = f(self.rows_tensor(start..end, device));
            width = y.dims()[1];
            out.extend(tensor_values(y)?);
        }
        Ok((out, width))
    }
}

/// Rows per batch of [`Dataset::map_rows`].
pub const EVAL_BATCH: usize = 1024;

/// A tensor's values as `f32`, in row-major order.
///
/// # Errors
/// If the tensor's data cannot be read as `f32` (a backend whose float type converts with loss
/// is not one of these).
pub fn tensor_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| DataError::Invalid(format!("cannot read a tensor's values: {e:?}")))
}

impl<B: Backend> BatchSource<B> for Dataset {
    fn num_samples(&self) -> usize {
        self.len()
    }

    fn d_input(&self) -> usize {
        self.d
    }

    fn batch(&self, indices: &[usize], device: &B::Device) -> Batch<B> {
        let mut x = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            x.extend_from_slice(self.row(i));
        }
        let x = Tensor::from_data(TensorData::new(x, [indices.len(), self.d]), device);
        let y = self.labels.as_ref().map(|l| {
            let v: Vec<i64> = indices.iter().map(|&i| l[i]).collect();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [indices.len()]), device)
        });
        Batch { x, y }
    }
}

/// Per-feature standardisation `(x - mean) / std`, fitted on one data set (the training split)
/// and applied to others.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// Standard deviation of each feature (1 where a feature is constant, or its spread is below
    /// a millionth of its mean's magnitude).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits means and standard deviations on `data`.
    pub fn fit(data: &Dataset) -> Self {
        let mean = data.feature_means();
        let mut var = vec![0f64; data.d()];
        for row in data.features().chunks_exact(data.d()) {
            for ((acc, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
                *acc += ((v - m) as f64).powi(2);
            }
        }
        let n = data.len().max(1) as f64;
        // A column (nearly) constant among these rows is only centred: dividing by a spread
        // that is rounding error would blow up the other data's differences from it.
        let std = var
            .into_iter()
            .zip(&mean)
            .map(|(v, &m)| {
                let s = (v / n).sqrt() as f32;
                if s > 1e-6 * m.abs().max(1.0) { s } else { 1.0 }
            })
            .collect();
        Self { mean, std }
    }

    /// Standardises `data` in place.
    ///
    /// # Panics
    /// If `data` has a different number of features than the data this was fitted on.
    pub fn transform(&self, data: &mut Dataset) {
        assert_eq!(
            data.d,
            self.mean.len(),
            "standardizer fitted on {} features, applied to {}",
            self.mean.len(),
            data.d
        );
        let d = data.d;
        for row in data.features.chunks_exact_mut(d) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    fn toy() -> Dataset {
        let f: Vec<f32> = (0..20).map(|v| v as f32).collect();
        Dataset::new("toy", f, 2, Some((0..10).map(|i| i % 3).collect()), None).unwrap()
    }

    #[test]
    fn rejects_inconsistent_input() {
        assert!(Dataset::new("x", vec![1.0; 5], 2, None, None).is_err());
        assert!(Dataset::new("x", vec![1.0; 4], 2, Some(vec![1]), None).is_err());
        assert!(
            Dataset::new("x", vec![f32::NAN, 1.0], 2, None, None)
                .unwrap_err()
                .to_string()
                .contains("row 0, feature 0")
        );
        assert!(Dataset::new("x", vec![1.0; 4], 2, None, Some(ImageShape::grey(2, 2))).is_err());
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let d = toy();
        let (a, b) = d.split(0.3, 1).unwrap();
        assert_eq!((a.len(), b.len()), (7, 3));
        let mut all: Vec<f32> = a.features().iter().chain(b.features()).copied().collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, d.features());
        assert_eq!(d.split(0.3, 1).unwrap().1, b, "same seed, same split");
        assert_ne!(d.split(0.3, 2).unwrap().1, b, "another seed, another split");
        assert!(d.split(0.0, 1).is_err());
        assert!(d.split(0.01, 1).is_err());
    }

    #[test]
    fn batches_gather_rows_and_labels() {
        let d = toy();
        let b: Batch<TestBackend> = d.batch(&[3, 0], &Default::default());
        assert_eq!(b.x.into_data().to_vec::<f32>().unwrap(), vec![6.0, 7.0, 0.0, 1.0]);
        assert_eq!(b.y.unwrap().into_data().iter::<i64>().collect::<Vec<_>>(), vec![0, 0]);
        let r: Tensor<TestBackend, 2> = d.rows_tensor(2..4, &Default::default());
        assert_eq!(r.into_data().to_vec::<f32>().unwrap(), vec![4.0, 5.0, 6.0, 7.0]);
    }

    #[test]
    fn mean_row_baseline() {
        let d = Dataset::new("x", vec![0.0, 2.0, 2.0, 4.0], 2, None, None).unwrap(); // mean row [1, 3]
        assert_eq!(d.mean_row_mse(&d), 1.0);
        let other = Dataset::new("y", vec![1.0, 3.0], 2, None, None).unwrap();
        assert_eq!(d.mean_row_mse(&other), 0.0);
    }

    #[test]
    fn standardizer_fits_on_train_only() {
        let d = toy();
        let (mut train, mut test) = d.split(0.5, 3).unwrap();
        let s = Standardizer::fit(&train);
        s.transform(&mut train);
        s.transform(&mut test);
        let m = train.feature_means();
        assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
        let again = Standardizer::fit(&train);
        assert!(again.std.iter().all(|s| (s - 1.0).abs() < 1e-4));
        // The test split keeps the train statistics, so its mean is generally not zero.
        assert!(test.feature_means().iter().any(|v| v.abs() > 1e-3));
    }

    #[test]
    fn a_column_constant_in_training_is_centred_not_blown_up() {
        // Column 1 holds 1000.1 in every training row (its computed spread is rounding error).
        let train = Dataset::new("t", vec![0.0, 1000.1, 1.0, 1000.1, 2.0, 1000.1], 2, None, None).unwrap();
        let s = Standardizer::fit(&train);
        assert_eq!(s.std[1], 1.0);
        let mut test = Dataset::new("u", vec![1.0, 1003.1], 2, None, None).unwrap();
        s.transform(&mut test);
        assert!((test.row(0)[1] - 3.0).abs() < 1e-3, "{:?}", test.row(0));
    }
}
