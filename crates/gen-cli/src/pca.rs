//! PCA, the linear baseline every autoencoder is compared with (linfa-reduction's `Pca`).

use anyhow::Context;
use gen_data::Dataset;
use linfa::prelude::*;
use linfa_reduction::Pca;
use ndarray::Array2;

fn to_array(d: &Dataset) -> Array2<f64> {
    Array2::from_shape_vec((d.len(), d.d()), d.features().iter().map(|&v| v as f64).collect())
        .expect("dataset rows are whole")
}

/// Mean squared error per element of `test` reconstructed through the first `k` principal
/// components of `train`. With `k` at least the number of features (an overcomplete code) PCA
/// keeps everything and the error is 0.
pub fn reconstruction_mse(train: &Dataset, test: &Dataset, k: usize) -> anyhow::Result<f64> {
    if k >= train.d() {
        return Ok(0.0);
    }
    let pca = Pca::params(k)
        .fit(&DatasetBase::from(to_array(train)))
        .with_context(|| format!("PCA with {k} components"))?;
    let x = to_array(test);
    let codes = pca.predict(&x);
    let rec = pca.inverse_transform(codes);
    let se: f64 = (&rec - &x).mapv(|v| v * v).sum();
    Ok(se / x.len() as f64)
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
}
