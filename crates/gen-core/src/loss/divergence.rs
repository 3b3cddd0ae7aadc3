use burn::tensor::{Tensor, backend::Backend};

use super::Reduction;

/// KL divergence of a diagonal Gaussian `N(μ, diag σ²)` to the standard normal, per dimension:
/// `½ (μ² + σ² - 1 - ln σ²)`, with the variance given as `ln σ²`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GaussianKlLoss;

impl GaussianKlLoss {
    /// Element-wise KL, one term per latent dimension.
    ///
    /// # Shapes
    /// - `mu`, `log_var`: `[batch, d_latent]`, equal
    /// - output: `[batch, d_latent]`
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn forward_no_reduction<B: Backend, const D: usize>(
        &self,
        mu: Tensor<B, D>,
        log_var: Tensor<B, D>,
    ) -> Tensor<B, D> {
        assert_eq!(mu.dims(), log_var.dims(), "gaussian_kl: mu and log_var shapes differ");
        (mu.clone() * mu + log_var.clone().exp() - log_var)
            .sub_scalar(1.0)
            .mul_scalar(0.5)
    }

    /// Reduced KL; [`Reduction::BatchMean`] gives the usual per-sample KL of a VAE.
    pub fn forward<B: Backend, const D: usize>(
        &self,
        mu: Tensor<B, D>,
        log_var: Tensor<B, D>,
        reduction: Reduction,
    ) -> Tensor<B, 1> {
        reduction.apply(self.forward_no_reduction(mu, log_var))
    }
}

/// KL divergence between Bernoulli distributions with means `ρ` (a target sparsity) and `ρ̂`
/// (the observed mean activation of each unit): `ρ ln(ρ/ρ̂) + (1-ρ) ln((1-ρ)/(1-ρ̂))`.
///
/// `ρ̂` is clamped to `[1e-6, 1 - 1e-6]` so saturated units give a large finite penalty.
#[derive(Debug, Clone, Copy)]
pub struct BernoulliKlLoss {
    /// The target mean activation ρ, in (0, 1).
    pub rho: f64,
}

impl BernoulliKlLoss {
    const EPS: f64 = 1e-6;

    /// A penalty towards mean activation `rho`.
    ///
    /// # Panics
    /// If `rho` is not in (0, 1).
    pub fn new(rho: f64) -> Self {
        assert!(rho > 0.0 && rho < 1.0, "bernoulli_kl: rho must be in (0, 1), got {rho}");
        Self { rho }
    }

    /// Element-wise KL, one term per unit.
    ///
    /// # Shapes
    /// - `rho_hat`: any shape, values in [0, 1]
    /// - output: same
    pub fn forward_no_reduction<B: Backend, const D: usize>(&self, rho_hat: Tensor<B, D>) -> Tensor<B, D> {
        let rho = self.rho;
        let q = rho_hat.clamp(Self::EPS, 1.0 - Self::EPS);
        let a = q.clone().log().neg().add_scalar(rho.ln()).mul_scalar(rho);
        let b = q
            .neg()
            .add_scalar(1.0)
            .log()
            .neg()
            .add_scalar((1.0 - rho).ln())
            .mul_scalar(1.0 - rho);
        a + b
    }

    /// Reduced KL; use [`Reduction::Sum`] for the classic `Σ_j KL(ρ ‖ ρ̂_j)`.
    pub fn forward<B: Backend, const D: usize>(&self, rho_hat: Tensor<B, D>, reduction: Reduction) -> Tensor<B, 1> {
        reduction.apply(self.forward_no_reduction(rho_hat))
    }
}

/// L1 activity penalty `|h|` on hidden activations, the alternative sparsity penalty.
#[derive(Debug, Clone, Copy, Default)]
pub struct L1ActivityLoss;

impl L1ActivityLoss {
    /// Element-wise absolute value.
    ///
    /// # Shapes
    /// - `activations`: `[batch, d_hidden]`
    /// - output: same
    pub fn forward_no_reduction<B: Backend, const D: usize>(&self, activations: Tensor<B, D>) -> Tensor<B, D> {
        activations.abs()
    }

    /// Reduced penalty.
    pub fn forward<B: Backend, const D: usize>(&self, activations: Tensor<B, D>, reduction: Reduction) -> Tensor<B, 1> {
        reduction.apply(self.forward_no_reduction(activations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::testing::{assert_grad_matches_fd, t2};
    use crate::test_util::TestBackend;
    use burn::tensor::Distribution;
    use proptest::prelude::*;

    // Golden values by hand (checked with Python's math module):
    //   mu = [0.5, -1], log_var = [0, ln 2]:
    //   0.5*(0.25 + 1 - 1 - 0) + 0.5*(1 + 2 - 1 - ln 2) = 0.125 + 0.6534264 = 0.7784264
    //   KL(0.1 || 0.3) = 0.1 ln(1/3) + 0.9 ln(0.9/0.7) = 0.1163218
    #[test]
    fn hand_computed_values() {
        let device = Default::default();
        let mu = Tensor::<TestBackend, 2>::from_floats([[0.5, -1.0]], &device);
        let lv = Tensor::<TestBackend, 2>::from_floats([[0.0, std::f32::consts::LN_2]], &device);
        let kl = GaussianKlLoss.forward(mu, lv, Reduction::BatchMean).into_scalar();
        assert!((kl - 0.778_426_4).abs() < 1e-6, "{kl}");
        let q = Tensor::<TestBackend, 1>::from_floats([0.3], &device);
        let b = BernoulliKlLoss::new(0.1).forward(q, Reduction::Sum).into_scalar();
        assert!((b - 0.116_321_8).abs() < 1e-6, "{b}");
        let h = Tensor::<TestBackend, 2>::from_floats([[1.0, -2.0], [0.0, 3.0]], &device);
        assert_eq!(L1ActivityLoss.forward(h, Reduction::BatchMean).into_scalar(), 3.0);
    }

    /// The closed form against a Monte Carlo estimate of E_q[ln q(z) - ln p(z)].
    #[test]
    fn gaussian_kl_matches_monte_carlo() {
        let device = Default::default();
        let (mu, lv) = (0.7f64, -0.4f64);
        let n = 400_000;
        let _lock = crate::testing::seeded::<TestBackend>(&device, 7);
        let eps = Tensor::<TestBackend, 1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        let sigma = (0.5 * lv).exp();
        let z = eps.clone().mul_scalar(sigma).add_scalar(mu);
        // ln q(z) - ln p(z) = -½ ε² - ½ lv + ½ z²
        let log_ratio = (z.clone() * z - eps.clone() * eps).mul_scalar(0.5).sub_scalar(0.5 * lv);
        let mc = log_ratio.mean().into_scalar();
        let closed = GaussianKlLoss
            .forward(t2(&[mu], [1, 1]), t2(&[lv], [1, 1]), Reduction::Sum)
            .into_scalar();
        assert!((mc - closed).abs() < 0.01, "monte carlo {mc} vs closed form {closed}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn gaussian_kl_properties(mu in prop::collection::vec(-3.0f64..3.0, 4), lv in prop::collection::vec(-3.0f64..3.0, 4)) {
            let dims = [2, 2];
            let l = GaussianKlLoss.forward_no_reduction(t2(&mu, dims), t2(&lv, dims));
            prop_assert!(l.min().into_scalar() >= -1e-5);
            let zero = vec![0.0; 4];
            prop_assert!(GaussianKlLoss.forward(t2(&zero, dims), t2(&zero, dims), Reduction::Sum).into_scalar().abs() < 1e-5);
            let both: Vec<f64> = mu.iter().chain(&lv).copied().collect();
            fn split<B: Backend>(x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
                (x.clone().slice([0..1, 0..4]), x.slice([1..2, 0..4]))
            }
            assert_grad_matches_fd(&both, [2, 4],
                |x| { let (m, v) = split(x); GaussianKlLoss.forward(m, v, Reduction::Sum) },
                |x| { let (m, v) = split(x); GaussianKlLoss.forward(m, v, Reduction::Sum) });
        }

        #[test]
        fn bernoulli_kl_properties(rho in 0.05f64..0.95, q in prop::collection::vec(0.05f64..0.95, 4)) {
            let kl = BernoulliKlLoss::new(rho);
            let l = kl.forward_no_reduction(t2(&q, [1, 4]));
            prop_assert!(l.min().into_scalar() >= -1e-5);
            prop_assert!(kl.forward(t2(&[rho; 4], [1, 4]), Reduction::Sum).into_scalar().abs() < 1e-5);
            let off: Vec<f64> = q.iter().filter(|&&v| (v - rho).abs() > 1e-3).copied().collect();
            if !off.is_empty() {
                let n = off.len();
                prop_assert!(kl.forward(t2(&off, [1, n]), Reduction::Sum).into_scalar() > 0.0);
            }
            assert_grad_matches_fd(&q, [1, 4],
                |x| kl.forward(x, Reduction::Sum),
                |x| kl.forward(x, Reduction::Sum));
        }

        #[test]
        fn l1_properties(h in prop::collection::vec(-3.0f64..3.0, 6)) {
            let l = L1ActivityLoss.forward(t2(&h, [2, 3]), Reduction::Mean).into_scalar();
            prop_assert!(l >= 0.0);
            prop_assert_eq!(L1ActivityLoss.forward(t2(&[0.0; 6], [2, 3]), Reduction::Mean).into_scalar(), 0.0);
            // |h| has a kink at 0; keep values farther from it than the finite-difference step (3e-3).
            let away: Vec<f64> = h.iter().map(|&v| if v.abs() < 1e-2 { 0.5 } else { v }).collect();
            assert_grad_matches_fd(&away, [2, 3],
                |x| L1ActivityLoss.forward(x, Reduction::Mean),
                |x| L1ActivityLoss.forward(x, Reduction::Mean));
        }
    }
}
