//! PCA, the linear baseline every autoencoder is compared with: the eigenvectors of the training
//! set's covariance matrix, from linfa-linalg's symmetric eigensolver (tridiagonalisation and
//! implicit QR: exact and deterministic).
//!
//! linfa-reduction's `Pca` was used before. Its randomised LOBPCG solver panicked on
//! Fashion-MNIST with 2 components ("NaN values in array", in `cargo xtask report`), and a
//! randomised solver makes the baseline depend on its seed. The covariance of 784 pixels is a
//! 784x784 matrix, whose full eigendecomposition takes seconds, and one decomposition serves
//! every latent size of a sweep.

use crate::{DataError, Dataset, Result};
use linfa_linalg::eigh::{EigSort, Eigh};
use ndarray::{Array1, Array2, Axis};

/// Principal axes of a training set.
#[derive(Debug)]
pub struct Pca {
    mean: Array1<f64>,
    /// Eigenvectors of the covariance as columns, by decreasing eigenvalue.
    axes: Array2<f64>,
}

fn to_array(d: &Dataset) -> Result<Array2<f64>> {
    if let Some(i) = d.features().iter().position(|v| !v.is_finite()) {
        return Err(DataError::Invalid(format!(
            "PCA: value {} at row {}, column {} of {} is not finite",
            d.features()[i],
            i / d.d(),
            i % d.d(),
            d.name()
        )));
    }
    Ok(
        Array2::from_shape_vec((d.len(), d.d()), d.features().iter().map(|&v| v as f64).collect())
            .expect("dataset rows are whole"),
    )
}

impl Pca {
    /// Fits the principal axes of `train`'s rows.
    ///
    /// # Errors
    /// If `train` has fewer than two rows or a value that is not finite, or the eigensolver fails.
    pub fn fit(train: &Dataset) -> Result<Self> {
        if train.len() < 2 {
            return Err(DataError::Invalid(format!(
                "PCA needs at least 2 training rows, {} has {}",
                train.name(),
                train.len()
            )));
        }
        let x = to_array(train)?;
        let mean = x.mean_axis(Axis(0)).expect("at least one row");
        let c = &x - &mean.view().insert_axis(Axis(0));
        let cov = c.t().dot(&c) / (x.nrows() - 1) as f64;
        let (values, axes) = cov.eigh().map_err(|e| {
            DataError::Invalid(format!(
                "PCA: eigendecomposition of the {}x{} covariance of {}: {e}",
                cov.nrows(),
                cov.ncols(),
                train.name()
            ))
        })?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(DataError::Invalid(format!(
                "PCA: the covariance of {} has eigenvalues that are not finite",
                train.name()
            )));
        }
        let (_, axes) = (values, axes).sort_eig_desc();
        Ok(Self { mean, axes })
    }

    /// Mean squared error per element of `test` reconstructed through the first `k` principal
    /// axes. With `k` at least the number of features PCA keeps everything and the error is 0.
    ///
    /// # Errors
    /// If `test` has another width than the training set or a value that is not finite.
    pub fn reconstruction_mse(&self, test: &Dataset, k: usize) -> Result<f64> {
        let d = self.mean.len();
        if test.d() != d {
            return Err(DataError::Invalid(format!(
                "PCA was fitted on {d} features, {} has {}",
                test.name(),
                test.d()
            )));
        }
        if k >= d {
            return Ok(0.0);
        }
        let x = to_array(test)?;
        let c = &x - &self.mean.view().insert_axis(Axis(0));
        let v = self.axes.slice_axis(Axis(1), (0..k).into());
        let rec = c.dot(&v).dot(&v.t());
        let se: f64 = (&rec - &c).mapv(|e| e * e).sum();
        Ok(se / x.len() as f64)
    }
}

impl Pca {
    /// The training rows' mean.
    pub fn mean(&self) -> Vec<f32> {
        self.mean.iter().map(|&v| v as f32).collect()
    }

    /// The first `k` principal axes as the columns of a `[d, k]` matrix, row-major (at most
    /// the `d` axes there are).
    pub fn axes(&self, k: usize) -> Vec<f32> {
        let k = k.min(self.axes.ncols());
        self.axes
            .slice_axis(Axis(1), (0..k).into())
            .rows()
            .into_iter()
            .flat_map(|r| r.iter().map(|&v| v as f32).collect::<Vec<_>>())
            .collect()
    }

    /// The squared error of each row of `test` reconstructed through the first `k` principal
    /// axes, summed over its features: PCA's anomaly score (all zeros when `k` is at least the
    /// number of features).
    ///
    /// # Errors
    /// If `test` has another width than the training set or a value that is not finite.
    pub fn row_errors(&self, test: &Dataset, k: usize) -> Result<Vec<f32>> {
        let d = self.mean.len();
        if test.d() != d {
            return Err(DataError::Invalid(format!(
                "PCA was fitted on {d} features, {} has {}",
                test.name(),
                test.d()
            )));
        }
        let x = to_array(test)?;
        if k >= d {
            return Ok(vec![0.0; x.nrows()]);
        }
        let c = &x - &self.mean.view().insert_axis(Axis(0));
        let v = self.axes.slice_axis(Axis(1), (0..k).into());
        let residual = &c.dot(&v).dot(&v.t()) - &c;
        Ok(residual
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|e| e * e).sum::<f64>() as f32)
            .collect())
    }
}

/// [`Pca::fit`] on `train`, then [`Pca::reconstruction_mse`] of `test` with `k` axes.
///
/// # Errors
/// As those two.
pub fn reconstruction_mse(train: &Dataset, test: &Dataset, k: usize) -> Result<f64> {
    if k >= train.d() {
        return Ok(0.0);
    }
    Pca::fit(train)?.reconstruction_mse(test, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data on a 2-D plane is reconstructed exactly by 2 components, and not by 1.
    #[test]
    fn exact_on_a_plane() {
        let rows: Vec<f32> = (0..50)
            .flat_map(|i| {
                let (a, b) = ((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos());
                [a, b, a + b, a - 2.0 * b]
            })
            .collect();
        let d = Dataset::new("plane", rows, 4, None, None).unwrap();
        assert!(reconstruction_mse(&d, &d, 2).unwrap() < 1e-8);
        assert!(reconstruction_mse(&d, &d, 1).unwrap() > 1e-3);
        assert_eq!(reconstruction_mse(&d, &d, 6).unwrap(), 0.0);
    }

    /// The error with `k` axes is the variance along the discarded axes, spread over the
    /// columns: checked on axis-aligned data whose variances are known.
    #[test]
    fn error_is_the_discarded_variance() {
        // Columns with variances 9, 4, 1 (values ±3, ±2, ±1, independent signs), mean 0.
        let rows: Vec<f32> = (0..8)
            .flat_map(|i| {
                let sign = |b: usize| if (i >> b) & 1 == 1 { 1.0 } else { -1.0 };
                [3.0 * sign(0), 2.0 * sign(1), sign(2)]
            })
            .collect();
        let d = Dataset::new("axes", rows, 3, None, None).unwrap();
        let pca = Pca::fit(&d).unwrap();
        // Squared error per element: the discarded per-row variance (population) over 3 columns.
        let expect = |discarded: f64| discarded / 3.0;
        assert!((pca.reconstruction_mse(&d, 1).unwrap() - expect(4.0 + 1.0)).abs() < 1e-9);
        assert!((pca.reconstruction_mse(&d, 2).unwrap() - expect(1.0)).abs() < 1e-9);
        assert!(pca.reconstruction_mse(&d, 3).unwrap() == 0.0);
        // Per row, with one axis kept: the row's squared values on the two discarded axes.
        let errors = pca.row_errors(&d, 1).unwrap();
        assert_eq!(errors.len(), 8);
        assert!(errors.iter().all(|&e| (e - 5.0).abs() < 1e-5), "{errors:?}");
        let off = Dataset::new("off", vec![0.0, 0.0, 10.0], 3, None, None).unwrap();
        assert!((pca.row_errors(&off, 2).unwrap()[0] - 100.0).abs() < 1e-4);
        assert_eq!(pca.row_errors(&off, 3).unwrap(), vec![0.0]);
    }

    #[test]
    fn rejects_bad_input_with_a_message() {
        let one = Dataset::new("one", vec![1.0, 2.0], 2, None, None).unwrap();
        assert!(Pca::fit(&one).unwrap_err().to_string().contains("at least 2"));
        let nan = Dataset::new("nan", vec![1.0, f32::NAN, 2.0, 3.0], 2, None, None);
        if let Ok(nan) = nan {
            let e = Pca::fit(&nan).unwrap_err().to_string();
            assert!(e.contains("not finite") && e.contains("row 0, column 1"), "{e}");
        }
        let pca = Pca::fit(&Dataset::new("two", vec![1.0, 2.0, 3.0, 5.0], 2, None, None).unwrap()).unwrap();
        let wide = Dataset::new("wide", vec![1.0, 2.0, 3.0], 3, None, None).unwrap();
        assert!(
            pca.reconstruction_mse(&wide, 1)
                .unwrap_err()
                .to_string()
                .contains("fitted on 2")
        );
    }
}
