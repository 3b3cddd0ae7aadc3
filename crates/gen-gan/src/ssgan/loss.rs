//! The semi-supervised GAN's losses, written on the K class logits with the fake class's logit
//! fixed at zero.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, activation};

/// `log Σ_k exp l_k` of each row, computed stably (the row's maximum taken out first).
///
/// # Shapes
/// - `logits`: `[batch, K]`; output `[batch]`
pub fn log_sum_exp<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 1> {
    // The maximum's gradient cancels analytically, so it is held constant.
    let m = logits.clone().max_dim(1).detach();
    ((logits - m.clone()).exp().sum_dim(1).log() + m).flatten(0, 1)
}

/// `ln(1 + eˣ)`, stable for large |x|: `max(x, 0) + ln(1 + e^−|x|)`.
pub fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    activation::relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// The labelled images' cross-entropy over the K classes: the mean of `lse(l) − l_y`.
///
/// # Shapes
/// - `logits`: `[batch, K]`, `labels`: `[batch]`; output `[1]`
pub fn supervised_loss<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let picked = logits.clone().gather(1, labels.unsqueeze_dim(1)).flatten(0, 1);
    (log_sum_exp(logits) - picked).mean()
}

/// The unlabelled term: with D(x) = Z/(Z + 1), Z = Σ exp l_k (the fake logit fixed at 0),
/// `½ mean(−ln D(x_real)) + ½ mean(−ln(1 − D(x_fake)))`, which is
/// `½ mean(softplus(lse) − lse)` on the real rows plus `½ mean(softplus(lse))` on the fakes.
///
/// # Shapes
/// - `real`, `fake`: `[batch, K]` logits; output `[1]`
pub fn unsupervised_loss<B: Backend>(real: Tensor<B, 2>, fake: Tensor<B, 2>) -> Tensor<B, 1> {
    let lr = log_sum_exp(real);
    let lf = log_sum_exp(fake);
    (softplus(lr.clone()) - lr).mean().mul_scalar(0.5) + softplus(lf).mean().mul_scalar(0.5)
}

/// The discriminator's loss: [`supervised_loss`] on the labelled logits plus `weight` times
/// [`unsupervised_loss`]; returns the total and its two parts.
pub fn discriminator_loss<B: Backend>(
    labelled: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    real: Tensor<B, 2>,
    fake: Tensor<B, 2>,
    weight: f64,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let sup = supervised_loss(labelled, labels);
    let unsup = unsupervised_loss(real, fake);
    (sup.clone() + unsup.clone().mul_scalar(weight), sup, unsup)
}

/// Feature matching: the mean squared difference between the batch means of the real and the
/// generated images' features, `mean((E f(x) − E f(G(z)))²)` (the reference implementation's
/// form of ‖E f(x) − E f(G(z))‖²). Hold the real features detached, so only the generator
/// learns from it.
///
/// # Shapes
/// - `real`, `fake`: `[batch, d_features]`; output `[1]`
pub fn feature_matching<B: Backend>(real: Tensor<B, 2>, fake: Tensor<B, 2>) -> Tensor<B, 1> {
    (real.mean_dim(0) - fake.mean_dim(0)).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend, TestBackend};
    use burn::tensor::{ElementConversion, TensorData};

    type B = TestBackend;

    fn logits(rows: &[&[f32]]) -> Tensor<B, 2> {
        let k = rows[0].len();
        let v: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(v, [rows.len(), k]), &Default::default())
    }

    fn value(t: Tensor<B, 1>) -> f64 {
        t.into_scalar().elem::<f64>()
    }

    /// `ln Σ exp` in f64.
    fn lse(row: &[f64]) -> f64 {
        row.iter().map(|l| l.exp()).sum::<f64>().ln()
    }

    #[test]
    fn log_sum_exp_and_softplus_match_hand_values_and_stay_finite() {
        let l = log_sum_exp(logits(&[&[0.0, 0.0], &[1.0, -2.0], &[200.0, 200.0]]));
        let v: Vec<f32> = l.into_data().to_vec().unwrap();
        assert!((v[0] as f64 - 2f64.ln()).abs() < 1e-6, "{v:?}");
        assert!((v[1] as f64 - lse(&[1.0, -2.0])).abs() < 1e-6, "{v:?}");
        assert!((v[2] as f64 - (200.0 + 2f64.ln())).abs() < 1e-3, "{v:?}");
        let s: Vec<f32> = softplus(logits(&[&[-100.0, 0.0, 3.0, 100.0]]))
            .into_data()
            .to_vec()
            .unwrap();
        let want = [0.0, 2f64.ln(), (1.0 + 3f64.exp()).ln(), 100.0];
        for (a, b) in s.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{s:?}");
        }
    }

    #[test]
    fn the_supervised_loss_is_the_cross_entropy_over_the_real_classes() {
        let rows: [&[f32]; 2] = [&[0.0, 0.0, 0.0], &[2.0, -1.0, 0.5]];
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![1i64, 2], [2]), &Default::default());
        let got = value(supervised_loss(logits(&rows), labels));
        let want = 0.5 * ((3f64).ln() + (lse(&[2.0, -1.0, 0.5]) - 0.5));
        assert!((got - want).abs() < 1e-6, "{got} against {want}");
    }

    /// With K logits and a (K+1)-th fixed at 0, P(real) = Z/(Z+1): the loss must equal the
    /// cross-entropy of a (K+1)-way softmax whose last logit is 0.
    #[test]
    fn the_unsupervised_loss_is_the_fixed_zero_fake_logits_cross_entropy() {
        let real: [&[f32]; 2] = [&[0.0, 0.0], &[1.5, -0.5]];
        let fake: [&[f32]; 2] = [&[0.0, 0.0], &[-3.0, 0.25]];
        let got = value(unsupervised_loss(logits(&real), logits(&fake)));
        // By hand for the first rows: D = 2/3, so −ln D = ln 1.5 and −ln(1 − D) = ln 3.
        let p_real = |r: &[f64]| {
            let z: f64 = r.iter().map(|l| l.exp()).sum();
            z / (z + 1.0)
        };
        assert!((p_real(&[0.0, 0.0]) - 2.0 / 3.0).abs() < 1e-12);
        let real_term = (-(p_real(&[0.0, 0.0]).ln()) - p_real(&[1.5, -0.5]).ln()) / 2.0;
        let fake_term = (-(1.0 - p_real(&[0.0, 0.0])).ln() - (1.0 - p_real(&[-3.0, 0.25])).ln()) / 2.0;
        let want = 0.5 * real_term + 0.5 * fake_term;
        assert!((got - want).abs() < 1e-6, "{got} against {want}");
        // The first rows alone: ½ ln 1.5 + ½ ln 3.
        let first = value(unsupervised_loss(logits(&real[..1]), logits(&fake[..1])));
        assert!((first - 0.5 * (1.5f64.ln() + 3f64.ln())).abs() < 1e-6, "{first}");
        // Confident logits stay finite.
        let big = value(unsupervised_loss(
            logits(&[&[300.0, 0.0]]),
            logits(&[&[-300.0, -300.0]]),
        ));
        assert!(big.is_finite() && big.abs() < 1e-5, "{big}");
    }

    #[test]
    fn the_discriminator_loss_weights_the_unlabelled_term() {
        let lab = logits(&[&[1.0, 0.0]]);
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64], [1]), &Default::default());
        let (total, sup, unsup) = discriminator_loss(lab, y, logits(&[&[0.0, 0.0]]), logits(&[&[0.0, 0.0]]), 0.25);
        let (t, s, u) = (value(total), value(sup), value(unsup));
        assert!((s - (lse(&[1.0, 0.0]) - 1.0)).abs() < 1e-6);
        assert!((u - 0.5 * (1.5f64.ln() + 3f64.ln())).abs() < 1e-6);
        assert!((t - (s + 0.25 * u)).abs() < 1e-6);
    }

    #[test]
    fn the_supervised_gradient_is_softmax_minus_one_hot() {
        type A = TestAutodiffBackend;
        let device = Default::default();
        let x = Tensor::<A, 2>::from_data(TensorData::new(vec![2.0f32, -1.0, 0.5], [1, 3]), &device).require_grad();
        let y = Tensor::<A, 1, Int>::from_data(TensorData::new(vec![2i64], [1]), &device);
        let grads = supervised_loss(x.clone(), y).backward();
        let g: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        let z = lse(&[2.0, -1.0, 0.5]);
        let want = [(2f64 - z).exp(), (-1f64 - z).exp(), (0.5f64 - z).exp() - 1.0];
        for (a, b) in g.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{g:?} against {want:?}");
        }
    }

    #[test]
    fn feature_matching_compares_batch_means() {
        let real = logits(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let fake = logits(&[&[0.0, 0.0], &[0.0, 1.0]]);
        // Means (2, 3) and (0, 0.5): mean squared difference = (4 + 6.25) / 2.
        assert!((value(feature_matching(real, fake)) - 5.125).abs() < 1e-6);
    }
}
