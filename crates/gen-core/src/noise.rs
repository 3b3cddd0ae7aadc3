//! Corruption models: the noise a denoising autoencoder learns to remove, and the noise the
//! denoising benchmarks add to clean test images.
//!
//! Random draws come from the backend's generator, so they follow `B::seed` (the training loop
//! reseeds it every epoch, which makes corrupted batches reproducible run to run).

use burn::tensor::{Distribution, ElementConversion, Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// A corruption of the input, drawn afresh on every call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Noise {
    /// Additive Gaussian noise with standard deviation `sigma`, then clamped to the value range.
    Gaussian {
        /// Standard deviation, in the data's units.
        sigma: f64,
    },
    /// Masking noise: each input is set to the low end of the range (0 for images) with
    /// probability `fraction`.
    Masking {
        /// Share of inputs dropped, in [0, 1].
        fraction: f64,
    },
    /// Salt-and-pepper noise: each input is set to the low or the high end of the range, each
    /// with probability `fraction / 2`.
    SaltAndPepper {
        /// Share of inputs replaced, in [0, 1].
        fraction: f64,
    },
}

impl Noise {
    /// Rejects negative or non-finite strengths and fractions above 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (name, v, max) = match *self {
            Noise::Gaussian { sigma } => ("noise sigma", sigma, f64::INFINITY),
            Noise::Masking { fraction } => ("masking fraction", fraction, 1.0),
            Noise::SaltAndPepper { fraction } => ("salt-and-pepper fraction", fraction, 1.0),
        };
        if !v.is_finite() || v < 0.0 || v > max {
            let range = if max.is_finite() {
                "in [0, 1]"
            } else {
                "finite and >= 0"
            };
            return Err(ConfigError::Invalid(format!("{name} must be {range}, got {v}")));
        }
        Ok(())
    }

    /// Corrupts `x`. `range` is the interval the data lives in (`(0, 1)` for images); with
    /// `None`, the batch's own minimum and maximum are used for masking and salt-and-pepper, and
    /// Gaussian noise is not clamped.
    ///
    /// # Shapes
    /// - `x`: any shape
    /// - output: same
    pub fn apply<B: Backend, const D: usize>(&self, x: Tensor<B, D>, range: Option<(f64, f64)>) -> Tensor<B, D> {
        let device = x.device();
        let shape = x.shape();
        let bounds = |x: &Tensor<B, D>| {
            range.unwrap_or_else(|| {
                (
                    x.clone().min().into_scalar().elem::<f64>(),
                    x.clone().max().into_scalar().elem::<f64>(),
                )
            })
        };
        match *self {
            Noise::Gaussian { sigma } => {
                let noisy = x + Tensor::random(shape, Distribution::Normal(0.0, sigma), &device);
                match range {
                    Some((lo, hi)) => noisy.clamp(lo, hi),
                    None => noisy,
                }
            }
            Noise::Masking { fraction } => {
                let (lo, _) = bounds(&x);
                let u = Tensor::<B, D>::random(shape, Distribution::Default, &device);
                x.mask_fill(u.lower_elem(fraction), lo)
            }
            Noise::SaltAndPepper { fraction } => {
                let (lo, hi) = bounds(&x);
                let u = Tensor::<B, D>::random(shape, Distribution::Default, &device);
                let pepper = u.clone().lower_elem(fraction / 2.0);
                let salt = u
                    .clone()
                    .greater_equal_elem(fraction / 2.0)
                    .bool_and(u.lower_elem(fraction));
                x.mask_fill(pepper, lo).mask_fill(salt, hi)
            }
        }
    }

    /// A short name for tables and file names, e.g. `gaussian-0.3`.
    pub fn label(&self) -> String {
        match *self {
            Noise::Gaussian { sigma } => format!("gaussian-{sigma}"),
            Noise::Masking { fraction } => format!("masking-{fraction}"),
            Noise::SaltAndPepper { fraction } => format!("salt-pepper-{fraction}"),
        }
    }
}

impl std::str::FromStr for Noise {
    type Err = String;

    /// Parses `gaussian:SIGMA`, `masking:FRACTION` or `salt-pepper:FRACTION`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| format!("noise {s:?}: expected KIND:VALUE, e.g. gaussian:0.3 or masking:0.25"))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("noise {s:?}: {value:?} is not a number"))?;
        let noise = match kind.trim() {
            "gaussian" => Noise::Gaussian { sigma: v },
            "masking" | "mask" => Noise::Masking { fraction: v },
            "salt-pepper" | "salt_and_pepper" | "salt-and-pepper" => Noise::SaltAndPepper { fraction: v },
            other => {
                return Err(format!(
                    "unknown noise {other:?}; expected gaussian, masking or salt-pepper"
                ));
            }
        };
        noise.validate().map_err(|e| e.to_string())?;
        Ok(noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;
    use proptest::prelude::*;

    fn values(t: Tensor<TestBackend, 2>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    #[test]
    fn corruptions_change_the_expected_share_and_stay_in_range() {
        let device = Default::default();
        let _guard = crate::testing::seeded::<TestBackend>(&device, 7);
        let n = 200 * 100;
        let x = Tensor::<TestBackend, 2>::random([200, 100], Distribution::Uniform(0.2, 0.8), &device);
        let clean = values(x.clone());

        let masked = values(Noise::Masking { fraction: 0.3 }.apply(x.clone(), Some((0.0, 1.0))));
        let zeros = masked.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
        assert!((zeros - 0.3).abs() < 0.015, "masked share {zeros}");
        assert!(masked.iter().zip(&clean).all(|(&m, &c)| m == 0.0 || m == c));

        let sp = values(Noise::SaltAndPepper { fraction: 0.2 }.apply(x.clone(), Some((0.0, 1.0))));
        let pepper = sp.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
        let salt = sp.iter().filter(|&&v| v == 1.0).count() as f64 / n as f64;
        assert!(
            (pepper - 0.1).abs() < 0.01 && (salt - 0.1).abs() < 0.01,
            "{pepper} {salt}"
        );

        let g = values(Noise::Gaussian { sigma: 0.5 }.apply(x.clone(), Some((0.0, 1.0))));
        assert!(g.iter().all(|&v| (0.0..=1.0).contains(&v)));
        let unclamped = values(Noise::Gaussian { sigma: 0.1 }.apply(x, None));
        let diffs: Vec<f64> = unclamped.iter().zip(&clean).map(|(&a, &b)| (a - b) as f64).collect();
        let mean = diffs.iter().sum::<f64>() / n as f64;
        let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!(mean.abs() < 0.003 && (sd - 0.1).abs() < 0.003, "mean {mean} sd {sd}");
    }

    #[test]
    fn without_a_range_the_batch_extremes_are_used() {
        let device = Default::default();
        let x = Tensor::<TestBackend, 2>::from_floats([[-3.0, 0.0, 5.0, 1.0]], &device);
        let all = values(Noise::SaltAndPepper { fraction: 1.0 }.apply(x.clone(), None));
        assert!(all.iter().all(|&v| v == -3.0 || v == 5.0), "{all:?}");
        let masked = values(Noise::Masking { fraction: 1.0 }.apply(x.clone(), None));
        assert_eq!(masked, vec![-3.0; 4]);
        assert_eq!(
            values(Noise::Masking { fraction: 0.0 }.apply(x.clone(), None)),
            values(x)
        );
    }

    #[test]
    fn parses_and_rejects_nonsense() {
        assert_eq!("gaussian:0.3".parse::<Noise>().unwrap(), Noise::Gaussian { sigma: 0.3 });
        assert_eq!(
            "masking:0.25".parse::<Noise>().unwrap(),
            Noise::Masking { fraction: 0.25 }
        );
        assert_eq!(
            "salt-pepper:0.1".parse::<Noise>().unwrap(),
            Noise::SaltAndPepper { fraction: 0.1 }
        );
        assert!("masking:1.5".parse::<Noise>().unwrap_err().contains("in [0, 1]"));
        assert!("gaussian:-1".parse::<Noise>().is_err());
        assert!("gaussian:nan".parse::<Noise>().is_err());
        assert!("blur:0.1".parse::<Noise>().unwrap_err().contains("unknown noise"));
        assert!("gaussian".parse::<Noise>().unwrap_err().contains("KIND:VALUE"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn every_corruption_keeps_images_in_range(
            sigma in 0.0f64..2.0, fraction in 0.0f64..=1.0, seed in 0u64..1000,
        ) {
            let device = Default::default();
            let _guard = crate::testing::seeded::<TestBackend>(&device, seed);
            let x = Tensor::<TestBackend, 2>::random([8, 16], Distribution::Default, &device);
            for noise in [
                Noise::Gaussian { sigma },
                Noise::Masking { fraction },
                Noise::SaltAndPepper { fraction },
            ] {
                let v = values(noise.apply(x.clone(), Some((0.0, 1.0))));
                prop_assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)), "{noise:?}");
            }
        }
    }
}
