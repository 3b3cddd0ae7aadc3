//! Losses, each with `forward` (reduced to a scalar) and `forward_no_reduction` (element-wise).
//!
//! All of them are written with differentiable tensor operations only, so they work under
//! `Autodiff<B>` and `Autodiff<Autodiff<B>>`.

mod divergence;
mod reconstruction;

pub use divergence::{BernoulliKlLoss, GaussianKlLoss, L1ActivityLoss};
pub use reconstruction::{BceLoss, BceWithLogitsLoss, MseLoss};

use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

/// How an element-wise loss is reduced to one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Mean over every element (PyTorch's default).
    #[default]
    Mean,
    /// Sum over every element.
    Sum,
    /// Sum over all but the first (batch) dimension, then mean over the batch: the per-sample
    /// total, as in the ELBO or "squared error per image".
    BatchMean,
}

impl Reduction {
    /// Reduces an element-wise loss.
    ///
    /// # Shapes
    /// - `loss`: `[batch, ...]`
    /// - output: `[1]`
    pub fn apply<B: Backend, const D: usize>(self, loss: Tensor<B, D>) -> Tensor<B, 1> {
        match self {
            Reduction::Mean => loss.mean(),
            Reduction::Sum => loss.sum(),
            Reduction::BatchMean => {
                let batch = loss.dims()[0];
                let per_sample = loss.reshape([batch as i32, -1]).sum_dim(1); // [batch, 1]
                per_sample.mean()
            }
        }
    }
}

/// Per-sample totals of an element-wise loss: the sum over every dimension but the first.
///
/// # Shapes
/// - `loss`: `[batch, ...]`
/// - output: `[batch]`
pub fn per_sample<B: Backend, const D: usize>(loss: Tensor<B, D>) -> Tensor<B, 1> {
    let batch = loss.dims()[0];
    loss.reshape([batch as i32, -1]).sum_dim(1).squeeze_dim::<1>(1)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared helpers for the loss tests: central finite differences.
    use crate::test_util::{TestAutodiffBackend, TestBackend};
    use burn::tensor::{Tensor, TensorData};

    /// A tensor of the test backend from `f64` values.
    pub fn t2(v: &[f64], dims: [usize; 2]) -> Tensor<TestBackend, 2> {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, dims), &Default::default())
    }

    /// A tensor of the autodiff test backend from `f64` values.
    pub fn t2ad(v: &[f64], dims: [usize; 2]) -> Tensor<TestAutodiffBackend, 2> {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, dims), &Default::default())
    }

    /// Compares the autodiff gradient of `f` at `x` with a central finite difference (`f32`, so
    /// the step is 3e-3 and the tolerance 2e-3 plus 2 %).
    pub fn assert_grad_matches_fd(
        x: &[f64],
        dims: [usize; 2],
        f_ad: impl Fn(Tensor<TestAutodiffBackend, 2>) -> Tensor<TestAutodiffBackend, 1>,
        f_plain: impl Fn(Tensor<TestBackend, 2>) -> Tensor<TestBackend, 1>,
    ) {
        let device = Default::default();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let t = Tensor::<TestAutodiffBackend, 2>::from_data(TensorData::new(xf.clone(), dims), &device).require_grad();
        let grads = f_ad(t.clone()).backward();
        let g: Vec<f32> = t.grad(&grads).unwrap().into_data().to_vec().unwrap();
        let eval = |v: Vec<f32>| -> f32 { f_plain(Tensor::from_data(TensorData::new(v, dims), &device)).into_scalar() };
        let h = 3e-3f32;
        for i in 0..xf.len() {
            let mut plus = xf.clone();
            plus[i] += h;
            let mut minus = xf.clone();
            minus[i] -= h;
            let fd = (eval(plus) - eval(minus)) / (2.0 * h);
            let tol = 2e-3 + 2e-2 * fd.abs().max(g[i].abs());
            assert!(
                (fd - g[i]).abs() <= tol,
                "element {i}: autodiff {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;

    #[test]
    fn reductions() {
        let device = Default::default();
        let l = Tensor::<TestBackend, 2>::from_floats([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &device);
        assert_eq!(Reduction::Mean.apply(l.clone()).into_scalar(), 3.5);
        assert_eq!(Reduction::Sum.apply(l.clone()).into_scalar(), 21.0);
        assert_eq!(Reduction::BatchMean.apply(l.clone()).into_scalar(), 10.5);
        let v: Vec<f32> = per_sample(l).into_data().to_vec().unwrap();
        assert_eq!(v, vec![6.0, 15.0]);
    }
}
