//! The adversarial losses, on the discriminator's raw outputs (logits, or a critic's scores).

use burn::tensor::{Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

use gen_core::ConfigError;

/// How the discriminator and the generator are scored.
///
/// `r` and `f` are the discriminator's raw outputs on real and generated samples: logits for the
/// first three, critic scores for the Wasserstein losses. Every loss is a mean over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GanLoss {
    /// The original minimax game: D minimises −log σ(r) − log(1 − σ(f)), G minimises
    /// log(1 − σ(f)) (saturates when D rejects the samples confidently).
    Minimax,
    /// D as in the minimax game; G minimises −log σ(f), which keeps its gradient when D wins.
    #[default]
    NonSaturating,
    /// D minimises max(0, 1 − r) + max(0, 1 + f); G minimises −f.
    Hinge,
    /// Wasserstein critic with weight clipping: D minimises f − r and every D weight is clipped
    /// to [−clip, clip] after each step; G minimises −f.
    Wasserstein {
        /// The clipping bound.
        clip: f64,
    },
    /// Wasserstein critic with the gradient penalty λ (‖∇D(x̂)‖ − 1)² at random points x̂
    /// between real and generated samples (WGAN-GP).
    WassersteinGp {
        /// The penalty weight λ.
        lambda: f64,
    },
}

impl GanLoss {
    /// Rejects a clipping bound or penalty weight that is not positive and finite.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (name, v) = match *self {
            GanLoss::Wasserstein { clip } => ("clip", clip),
            GanLoss::WassersteinGp { lambda } => ("lambda", lambda),
            _ => return Ok(()),
        };
        if !(v.is_finite() && v > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "the {} loss needs a positive, finite {name}, got {v}",
                self.name()
            )));
        }
        Ok(())
    }

    /// The name used in configs and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            GanLoss::Minimax => "minimax",
            GanLoss::NonSaturating => "non-saturating",
            GanLoss::Hinge => "hinge",
            GanLoss::Wasserstein { .. } => "wasserstein",
            GanLoss::WassersteinGp { .. } => "wgan-gp",
        }
    }

    /// Whether the discriminator's outputs are logits of a probability (else critic scores).
    pub fn is_probabilistic(&self) -> bool {
        matches!(self, GanLoss::Minimax | GanLoss::NonSaturating)
    }

    /// The mean discriminator output on fakes (as [`display`](Self::display) shows it) past
    /// which the discriminator rejects the fakes outright: a probability of 0.05 for the minimax
    /// and non-saturating losses, the hinge's margin −1 (fakes scored below it give the
    /// discriminator no loss left to lower); `None` for the Wasserstein critics, whose scores have
    /// no fixed scale.
    pub fn outright_rejection(&self) -> Option<f64> {
        match self {
            GanLoss::Minimax | GanLoss::NonSaturating => Some(0.05),
            GanLoss::Hinge => Some(-1.0),
            GanLoss::Wasserstein { .. } | GanLoss::WassersteinGp { .. } => None,
        }
    }

    /// The discriminator's loss, without any gradient penalty.
    ///
    /// # Shapes
    /// - `real`, `fake`: `[batch]`
    pub fn discriminator<B: Backend>(&self, real: Tensor<B, 1>, fake: Tensor<B, 1>) -> Tensor<B, 1> {
        match self {
            GanLoss::Minimax | GanLoss::NonSaturating => softplus(real.neg()).mean() + softplus(fake).mean(),
            GanLoss::Hinge => {
                activation::relu(real.neg().add_scalar(1.0)).mean() + activation::relu(fake.add_scalar(1.0)).mean()
            }
            GanLoss::Wasserstein { .. } | GanLoss::WassersteinGp { .. } => fake.mean() - real.mean(),
        }
    }

    /// The generator's loss.
    ///
    /// # Shapes
    /// - `fake`: `[batch]`
    pub fn generator<B: Backend>(&self, fake: Tensor<B, 1>) -> Tensor<B, 1> {
        match self {
            GanLoss::Minimax => softplus(fake).neg().mean(),
            GanLoss::NonSaturating => softplus(fake.neg()).mean(),
            GanLoss::Hinge | GanLoss::Wasserstein { .. } | GanLoss::WassersteinGp { .. } => fake.mean().neg(),
        }
    }

    /// The value shown as "D(x)" in the diagnostics: the probability σ(out) for the
    /// probabilistic losses, the raw score for the others.
    pub fn display<B: Backend>(&self, out: Tensor<B, 1>) -> Tensor<B, 1> {
        if self.is_probabilistic() {
            activation::sigmoid(out)
        } else {
            out
        }
    }
}

/// ln(1 + eˣ), computed without overflow for large |x|: max(x, 0) + ln(1 + e^−|x|).
pub(crate) fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    activation::relu(x.clone()) + x.abs().neg().exp().log1p()
}

impl std::str::FromStr for GanLoss {
    type Err = String;

    /// `minimax`, `non-saturating`, `hinge`, `wasserstein[:CLIP]` (default clip 0.01) or
    /// `wgan-gp[:LAMBDA]` (default λ 10).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let number = |default: f64| -> Result<f64, String> {
            match arg {
                None => Ok(default),
                Some(a) => a.parse::<f64>().map_err(|_| format!("{a:?} in {s:?} is not a number")),
            }
        };
        let loss = match name {
            "minimax" => GanLoss::Minimax,
            "non-saturating" | "ns" => GanLoss::NonSaturating,
            "hinge" => GanLoss::Hinge,
            "wasserstein" | "wgan" => GanLoss::Wasserstein { clip: number(0.01)? },
            "wgan-gp" => GanLoss::WassersteinGp { lambda: number(10.0)? },
            other => {
                return Err(format!(
                    "unknown GAN loss {other:?}; expected minimax, non-saturating, hinge, \
                     wasserstein[:CLIP] or wgan-gp[:LAMBDA]"
                ));
            }
        };
        if arg.is_some() && !matches!(loss, GanLoss::Wasserstein { .. } | GanLoss::WassersteinGp { .. }) {
            return Err(format!("the {} loss takes no parameter, got {s:?}", loss.name()));
        }
        loss.validate().map_err(|e| e.to_string())?;
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend as B;

    fn t(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_floats(v, &Default::default())
    }

    fn value(x: Tensor<B, 1>) -> f64 {
        x.into_scalar() as f64
    }

    fn sp(x: f64) -> f64 {
        (1.0 + x.exp()).ln()
    }

    #[test]
    fn losses_match_hand_values() {
        let (r, f) = ([2.0f32, -1.0], [0.5f32, -3.0]);
        let bce_d = (sp(-2.0) + sp(1.0)) / 2.0 + (sp(0.5) + sp(-3.0)) / 2.0;
        for loss in [GanLoss::Minimax, GanLoss::NonSaturating] {
            assert!((value(loss.discriminator(t(&r), t(&f))) - bce_d).abs() < 1e-5);
        }
        // Minimax G: mean log(1 − σ(f)) = −mean softplus(f).
        let mm_g = -(sp(0.5) + sp(-3.0)) / 2.0;
        assert!((value(GanLoss::Minimax.generator(t(&f))) - mm_g).abs() < 1e-5);
        let ns_g = (sp(-0.5) + sp(3.0)) / 2.0;
        assert!((value(GanLoss::NonSaturating.generator(t(&f))) - ns_g).abs() < 1e-5);
        // Hinge: relu(1 − r) = [0, 2], relu(1 + f) = [1.5, 0].
        assert!((value(GanLoss::Hinge.discriminator(t(&r), t(&f))) - (1.0 + 0.75)).abs() < 1e-6);
        assert!((value(GanLoss::Hinge.generator(t(&f))) - 1.25).abs() < 1e-6);
        let w = GanLoss::Wasserstein { clip: 0.01 };
        assert!((value(w.discriminator(t(&r), t(&f))) - (-1.25 - 0.5)).abs() < 1e-6);
        assert!((value(w.generator(t(&f))) - 1.25).abs() < 1e-6);
    }

    #[test]
    fn softplus_is_stable_far_out() {
        let y = softplus(t(&[-100.0, 0.0, 100.0])).into_data().to_vec::<f32>().unwrap();
        assert!(y[0] >= 0.0 && y[0] < 1e-30);
        assert!((y[1] - std::f32::consts::LN_2).abs() < 1e-6);
        assert!((y[2] - 100.0).abs() < 1e-4);
    }

    #[test]
    fn optimum_of_the_minimax_discriminator_is_balanced() {
        // With D(x) = 1/2 everywhere (logit 0) the D loss is 2 ln 2, the value at the game's
        // equilibrium; the generator's minimax loss is −ln 2 there.
        let z = t(&[0.0, 0.0, 0.0]);
        let d = value(GanLoss::Minimax.discriminator(z.clone(), z.clone()));
        assert!((d - 2.0 * std::f64::consts::LN_2).abs() < 1e-6);
        assert!((value(GanLoss::Minimax.generator(z)) + std::f64::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("hinge".parse::<GanLoss>().unwrap(), GanLoss::Hinge);
        assert_eq!("ns".parse::<GanLoss>().unwrap(), GanLoss::NonSaturating);
        assert_eq!(
            "wgan-gp".parse::<GanLoss>().unwrap(),
            GanLoss::WassersteinGp { lambda: 10.0 }
        );
        assert_eq!(
            "wasserstein:0.05".parse::<GanLoss>().unwrap(),
            GanLoss::Wasserstein { clip: 0.05 }
        );
        for bad in ["wgan-gp:-1", "wasserstein:x", "hinge:2", "lsgan", "wasserstein:0"] {
            assert!(bad.parse::<GanLoss>().is_err(), "{bad} must be refused");
        }
    }
}
