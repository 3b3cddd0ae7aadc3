//! Sample-quality numbers computed from the evaluation classifier's outputs.
//!
//! - [`frechet_distance`]: the Fréchet distance between Gaussians fitted to two feature sets.
//!   On the project's classifier's penultimate features this is a *classifier-feature FID*; it is
//!   not comparable with the Inception-network FID of the literature.
//! - [`class_shares`], [`distinct_modes`]: how the samples spread over the classes.
//! - [`classifier_score`]: the Inception Score's formula, exp E[KL(p(y|x) ‖ p(y))], on the
//!   classifier's predicted probabilities.

use linfa_linalg::eigh::Eigh;
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Mean and covariance (divisor n − 1) of the rows of `x`.
fn moments(x: ArrayView2<'_, f64>) -> (Array1<f64>, Array2<f64>) {
    let n = x.nrows() as f64;
    let mean = x.mean_axis(Axis(0)).expect("at least one row");
    let c = &x - &mean.view().insert_axis(Axis(0));
    let cov = c.t().dot(&c) / (n - 1.0).max(1.0);
    (mean, cov)
}

/// The symmetric positive semi-definite square root of a symmetric matrix (negative
/// eigenvalues from round-off clamped to 0).
fn sqrt_psd(a: &Array2<f64>) -> Result<Array2<f64>, String> {
    let sym = (a + &a.t()) / 2.0;
    let (vals, vecs) = sym.eigh().map_err(|e| format!("eigendecomposition failed: {e}"))?;
    let roots = vals.mapv(|v| v.max(0.0).sqrt());
    let scaled = &vecs * &roots.view().insert_axis(Axis(0));
    Ok(scaled.dot(&vecs.t()))
}

/// The Fréchet distance ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½) between Gaussians fitted
/// to the rows of `a` and of `b` (row-major, `d` columns).
///
/// # Errors
/// If either set has fewer than two rows, the lengths are not multiples of `d`, or a value is
/// not finite.
pub fn frechet_distance(a: &[f32], b: &[f32], d: usize) -> Result<f64, String> {
    let to_array = |v: &[f32], name: &str| -> Result<Array2<f64>, String> {
        if d == 0 || !v.len().is_multiple_of(d) || v.len() / d < 2 {
            return Err(format!(
                "{name}: {} values do not make at least two rows of {d} features",
                v.len()
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("{name}: a feature is not finite"));
        }
        Ok(
            Array2::from_shape_vec((v.len() / d, d), v.iter().map(|&x| f64::from(x)).collect())
                .expect("length checked"),
        )
    };
    let (a, b) = (to_array(a, "first set")?, to_array(b, "second set")?);
    let (ma, ca) = moments(a.view());
    let (mb, cb) = moments(b.view());
    let diff = &ma - &mb;
    let ra = sqrt_psd(&ca)?;
    let inner = ra.dot(&cb).dot(&ra);
    let cross = sqrt_psd(&inner)?;
    let fd = diff.dot(&diff) + ca.diag().sum() + cb.diag().sum() - 2.0 * cross.diag().sum();
    Ok(fd.max(0.0))
}

/// The share of each of `k` classes among `predictions`.
pub fn class_shares(predictions: &[usize], k: usize) -> Vec<f64> {
    let mut counts = vec![0usize; k];
    for &p in predictions {
        if p < k {
            counts[p] += 1;
        }
    }
    let n = predictions.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// Classes holding at least a quarter of a fair share (1 / 4k) of the samples: the number of
/// distinct modes the samples cover.
pub fn distinct_modes(shares: &[f64]) -> usize {
    let k = shares.len().max(1) as f64;
    shares.iter().filter(|&&s| s >= 0.25 / k).count()
}

/// exp(mean over samples of KL(p(y|x) ‖ p(y))), p(y) the mean prediction; between 1 (every
/// sample predicted alike) and k (confident predictions spread evenly over k classes).
///
/// # Shapes
/// - `probs`: row-major `[n, k]`, each row a distribution
pub fn classifier_score(probs: &[f32], k: usize) -> f64 {
    let n = probs.len() / k.max(1);
    if n == 0 {
        return f64::NAN;
    }
    let mut marginal = vec![0.0f64; k];
    for row in probs.chunks(k) {
        for (m, &p) in marginal.iter_mut().zip(row) {
            *m += f64::from(p) / n as f64;
        }
    }
    let mut kl = 0.0;
    for row in probs.chunks(k) {
        for (&p, &m) in row.iter().zip(&marginal) {
            let p = f64::from(p);
            if p > 0.0 {
                kl += p * (p.ln() - m.max(1e-30).ln());
            }
        }
    }
    (kl / n as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn gaussian(n: usize, mean: &[f64], scale: &[f64], seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(n * mean.len());
        for _ in 0..n {
            for (m, s) in mean.iter().zip(scale) {
                // Box–Muller.
                let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                out.push((m + s * z) as f32);
            }
        }
        out
    }

    #[test]
    fn frechet_distance_of_known_gaussians() {
        // Diagonal covariances: FD = ‖Δμ‖² + Σ (σ₁ − σ₂)².
        let a = gaussian(40_000, &[0.0, 1.0, -1.0], &[1.0, 2.0, 0.5], 1);
        let b = gaussian(40_000, &[1.0, 1.0, 0.0], &[1.0, 1.0, 1.5], 2);
        let fd = frechet_distance(&a, &b, 3).unwrap();
        let expected = 2.0 + 1.0 + 1.0;
        assert!((fd - expected).abs() < 0.1, "FD {fd}, expected {expected}");
        let same = frechet_distance(&a, &a, 3).unwrap();
        assert!(same < 1e-6, "FD of a set with itself {same}");
    }

    #[test]
    fn frechet_distance_with_correlated_covariances_matches_the_closed_form() {
        // Σ₁ = I, Σ₂ = [[2, 1], [1, 2]] (eigenvalues 3 and 1): tr(Σ₁ + Σ₂ − 2 Σ₂^½) =
        // 2 + 4 − 2 (√3 + 1).
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 60_000;
        let a = gaussian(n, &[0.0, 0.0], &[1.0, 1.0], 4);
        let mut b = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let r = (-2.0 * u1.ln()).sqrt();
            let (z1, z2) = (
                r * (2.0 * std::f64::consts::PI * u2).cos(),
                r * (2.0 * std::f64::consts::PI * u2).sin(),
            );
            // L = chol([[2,1],[1,2]]) = [[√2, 0], [1/√2, √(3/2)]].
            b.push((2f64.sqrt() * z1) as f32);
            b.push((z1 / 2f64.sqrt() + 1.5f64.sqrt() * z2) as f32);
        }
        let fd = frechet_distance(&a, &b, 2).unwrap();
        let expected = 6.0 - 2.0 * (3f64.sqrt() + 1.0);
        assert!((fd - expected).abs() < 0.03, "FD {fd}, expected {expected}");
    }

    #[test]
    fn frechet_distance_rejects_bad_input() {
        assert!(frechet_distance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err());
        assert!(frechet_distance(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err());
        assert!(frechet_distance(&[f32::NAN, 2.0, 1.0, 1.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err());
    }

    #[test]
    fn shares_modes_and_score() {
        let shares = class_shares(&[0, 0, 1, 2, 2, 2, 9], 4);
        assert_eq!(shares, vec![2.0 / 7.0, 1.0 / 7.0, 3.0 / 7.0, 0.0]);
        assert_eq!(distinct_modes(&shares), 3);
        // Confident and evenly spread over 4 classes: score 4. All alike: 1.
        let even: Vec<f32> = (0..8)
            .flat_map(|i| (0..4).map(move |c| if c == i % 4 { 1.0 } else { 0.0 }))
            .collect();
        assert!((classifier_score(&even, 4) - 4.0).abs() < 1e-9);
        let alike: Vec<f32> = (0..8).flat_map(|_| [0.7f32, 0.1, 0.1, 0.1]).collect();
        assert!((classifier_score(&alike, 4) - 1.0).abs() < 1e-6);
    }
}
