use burn::tensor::{Tensor, backend::Backend};

use super::Reduction;

/// Squared error `(prediction - target)²`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MseLoss;

impl MseLoss {
    /// Element-wise squared error.
    ///
    /// # Shapes
    /// - `prediction`, `target`: `[batch, ...]`, equal
    /// - output: same as the inputs
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn forward_no_reduction<B: Backend, const D: usize>(
        &self,
        prediction: Tensor<B, D>,
        target: Tensor<B, D>,
    ) -> Tensor<B, D> {
        assert_eq!(
            prediction.dims(),
            target.dims(),
            "mse: prediction and target shapes differ"
        );
        let diff = prediction - target;
        diff.clone() * diff
    }

    /// Reduced squared error.
    pub fn forward<B: Backend, const D: usize>(
        &self,
        prediction: Tensor<B, D>,
        target: Tensor<B, D>,
        reduction: Reduction,
    ) -> Tensor<B, 1> {
        reduction.apply(self.forward_no_reduction(prediction, target))
    }
}

/// Binary cross-entropy on probabilities: `-(t ln p + (1 - t) ln(1 - p))`.
///
/// Each logarithm is clamped at -100, as PyTorch does, so `p = 0` or `p = 1` gives a large finite
/// loss rather than infinity. Prefer [`BceWithLogitsLoss`] when the logits are at hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct BceLoss;

impl BceLoss {
    /// Element-wise cross-entropy.
    ///
    /// # Shapes
    /// - `probabilities`, `target`: `[batch, ...]`, equal, values in [0, 1]
    /// - output: same as the inputs
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn forward_no_reduction<B: Backend, const D: usize>(
        &self,
        probabilities: Tensor<B, D>,
        target: Tensor<B, D>,
    ) -> Tensor<B, D> {
        assert_eq!(
            probabilities.dims(),
            target.dims(),
            "bce: prediction and target shapes differ"
        );
        let log_p = probabilities.clone().log().clamp_min(-100.0);
        let log_1mp = probabilities.neg().add_scalar(1.0).log().clamp_min(-100.0);
        (target.clone() * log_p + target.neg().add_scalar(1.0) * log_1mp).neg()
    }

    /// Reduced cross-entropy.
    pub fn forward<B: Backend, const D: usize>(
        &self,
        probabilities: Tensor<B, D>,
        target: Tensor<B, D>,
        reduction: Reduction,
    ) -> Tensor<B, 1> {
        reduction.apply(self.forward_no_reduction(probabilities, target))
    }
}

/// Binary cross-entropy on logits, in the numerically stable form `(1 - t) x - ln σ(x)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BceWithLogitsLoss;

impl BceWithLogitsLoss {
    /// Element-wise cross-entropy.
    ///
    /// # Shapes
    /// - `logits`, `target`: `[batch, ...]`, equal; targets in [0, 1]
    /// - output: same as the inputs
    ///
    /// # Panics
    /// If the shapes differ.
    pub fn forward_no_reduction<B: Backend, const D: usize>(
        &self,
        logits: Tensor<B, D>,
        target: Tensor<B, D>,
    ) -> Tensor<B, D> {
        assert_eq!(
            logits.dims(),
            target.dims(),
            "bce_with_logits: logits and target shapes differ"
        );
        // -[t ln σ(x) + (1-t) ln σ(-x)] = (1-t) x - ln σ(x); burn's log_sigmoid is stable and has
        // a smooth gradient everywhere, x = 0 included (unlike a max(x, 0) + ln(1 + e^-|x|) form).
        // Matrices go through the fused operation on registered backends (one pass each way).
        if D == 2 && crate::nn::fastbce::has_fast_bce::<B>() {
            let dims = logits.dims();
            let (rows, cols) = (dims[0], dims[1]);
            let l = crate::nn::bce_with_logits(logits.reshape([rows, cols]), target.reshape([rows, cols]));
            return l.reshape(dims);
        }
        crate::nn::fastbce::bce_with_logits_reference(logits, target)
    }

    /// Reduced cross-entropy.
    pub fn forward<B: Backend, const D: usize>(
        &self,
        logits: Tensor<B, D>,
        target: Tensor<B, D>,
        reduction: Reduction,
    ) -> Tensor<B, 1> {
        reduction.apply(self.forward_no_reduction(logits, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::testing::{assert_grad_matches_fd, t2, t2ad};
    use crate::test_util::TestBackend;
    use burn::tensor::activation::sigmoid;
    use proptest::prelude::*;

    // Golden values, computed in Python with the math module (the same numbers as PyTorch's
    // F.mse_loss, F.binary_cross_entropy and F.binary_cross_entropy_with_logits):
    //   p = [0.2, 0.7, 0.9, 0.5]; t = [0, 1, 1, 0]
    //   mean((p - t)^2) = 0.0975
    //   mean(-(t ln p + (1 - t) ln(1 - p))) = 0.34458154...
    //   x = [-3, 0.5, 20, -40]; softplus(x) = max(x, 0) + log1p(exp(-|x|))
    //   mean(softplus(x) - x t) = 0.13066608...
    #[test]
    fn hand_computed_values() {
        let device = Default::default();
        let p = Tensor::<TestBackend, 2>::from_floats([[0.2, 0.7], [0.9, 0.5]], &device);
        let t = Tensor::<TestBackend, 2>::from_floats([[0.0, 1.0], [1.0, 0.0]], &device);
        let mse = MseLoss.forward(p.clone(), t.clone(), Reduction::Mean).into_scalar();
        assert!((mse - 0.0975).abs() < 1e-6, "{mse}");
        let bce = BceLoss.forward(p, t.clone(), Reduction::Mean).into_scalar();
        assert!((bce - 0.344_581_5).abs() < 1e-6, "{bce}");
        let x = Tensor::<TestBackend, 2>::from_floats([[-3.0, 0.5], [20.0, -40.0]], &device);
        let bcel = BceWithLogitsLoss.forward(x, t, Reduction::Mean).into_scalar();
        assert!((bcel - 0.130_666_2).abs() < 1e-6, "{bcel}");
    }

    #[test]
    fn bce_is_finite_at_saturated_probabilities() {
        let device = Default::default();
        let p = Tensor::<TestBackend, 2>::from_floats([[0.0, 1.0]], &device);
        let t = Tensor::<TestBackend, 2>::from_floats([[1.0, 0.0]], &device);
        let v = BceLoss.forward(p, t, Reduction::Sum).into_scalar();
        assert_eq!(v, 200.0);
    }

    #[test]
    fn bce_with_logits_is_stable_for_huge_logits() {
        let device = Default::default();
        let x = Tensor::<TestBackend, 2>::from_floats([[1000.0, -1000.0]], &device);
        let t = Tensor::<TestBackend, 2>::from_floats([[1.0, 0.0]], &device);
        assert_eq!(
            BceWithLogitsLoss
                .forward(x.clone(), t.clone(), Reduction::Sum)
                .into_scalar(),
            0.0
        );
        let wrong = BceWithLogitsLoss
            .forward(x, t.neg().add_scalar(1.0), Reduction::Sum)
            .into_scalar();
        assert_eq!(wrong, 2000.0);
    }

    fn arb_pair() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
        (1usize..4, 1usize..4).prop_flat_map(|(b, d)| {
            (
                prop::collection::vec(0.1f64..0.9, b * d),
                prop::collection::vec(0.0f64..1.0, b * d),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mse_properties(x in prop::collection::vec(-5.0f64..5.0, 6), y in prop::collection::vec(-5.0f64..5.0, 6)) {
            let (a, b) = (t2(&x, [2, 3]), t2(&y, [2, 3]));
            let l = MseLoss.forward(a.clone(), b.clone(), Reduction::Mean).into_scalar();
            prop_assert!(l >= 0.0);
            let sym = MseLoss.forward(b, a.clone(), Reduction::Mean).into_scalar();
            prop_assert!((l - sym).abs() < 1e-5);
            prop_assert_eq!(MseLoss.forward(a.clone(), a, Reduction::Mean).into_scalar(), 0.0);
            assert_grad_matches_fd(&x, [2, 3],
                |p| MseLoss.forward(p, t2ad(&y, [2, 3]), Reduction::Mean),
                |p| MseLoss.forward(p, t2(&y, [2, 3]), Reduction::Mean));
        }

        #[test]
        fn bce_properties((p, t) in arb_pair()) {
            let n = p.len();
            let dims = [1, n];
            let l = BceLoss.forward(t2(&p, dims), t2(&t, dims), Reduction::Mean).into_scalar();
            prop_assert!(l >= 0.0);
            // With a hard target, predicting the target exactly costs nothing.
            let hard: Vec<f64> = t.iter().map(|&v| v.round()).collect();
            prop_assert!(BceLoss.forward(t2(&hard, dims), t2(&hard, dims), Reduction::Mean).into_scalar().abs() < 1e-5);
            // For a soft target the optimum is p = t, where BCE equals the target's entropy:
            // any other prediction costs more.
            let at_opt = BceLoss.forward(t2(&t, dims), t2(&t, dims), Reduction::Sum).into_scalar();
            let elsewhere = BceLoss.forward(t2(&p, dims), t2(&t, dims), Reduction::Sum).into_scalar();
            prop_assert!(at_opt <= elsewhere + 1e-5);
            assert_grad_matches_fd(&p, dims,
                |x| BceLoss.forward(x, t2ad(&t, dims), Reduction::Sum),
                |x| BceLoss.forward(x, t2(&t, dims), Reduction::Sum));
        }

        #[test]
        fn bce_with_logits_matches_bce_of_sigmoid(x in prop::collection::vec(-8.0f64..8.0, 4), t in prop::collection::vec(0.0f64..1.0, 4)) {
            let dims = [2, 2];
            let a = BceWithLogitsLoss.forward(t2(&x, dims), t2(&t, dims), Reduction::Sum).into_scalar();
            let b = BceLoss.forward(sigmoid(t2(&x, dims)), t2(&t, dims), Reduction::Sum).into_scalar();
            prop_assert!(a >= 0.0);
            // BCE of a rounded f32 sigmoid loses digits near saturation; logits are the accurate side.
            prop_assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{} vs {}", a, b);
            assert_grad_matches_fd(&x, dims,
                |l| BceWithLogitsLoss.forward(l, t2ad(&t, dims), Reduction::Sum),
                |l| BceWithLogitsLoss.forward(l, t2(&t, dims), Reduction::Sum));
        }
    }
}
