use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// How the learning rate changes over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Cosine annealing (Loshchilov and Hutter 2017, without restarts), step by step from the
    /// learning rate down to `final_fraction` of it at the run's last step.
    Cosine {
        /// The last step's rate as a fraction of the first's, in [0, 1].
        final_fraction: f64,
    },
}

impl LrSchedule {
    /// The rate at `step` (0-based) of `total` steps, for a base rate `lr`.
    pub fn rate(&self, lr: f64, step: usize, total: usize) -> f64 {
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine { final_fraction } => {
                let t = if total <= 1 {
                    1.0
                } else {
                    (step.min(total - 1)) as f64 / (total - 1) as f64
                };
                let low = lr * final_fraction;
                low + 0.5 * (lr - low) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

impl std::str::FromStr for LrSchedule {
    type Err = ConfigError;

    /// `constant`, `cosine` (down to 1 % of the rate) or `cosine:FRACTION`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.split_once(':') {
            None if s == "constant" => Ok(LrSchedule::Constant),
            None if s == "cosine" => Ok(LrSchedule::Cosine { final_fraction: 0.01 }),
            Some(("cosine", f)) => f
                .parse()
                .map(|final_fraction| LrSchedule::Cosine { final_fraction })
                .map_err(|_| ConfigError::Invalid(format!("learning-rate schedule {s:?}: {f:?} is not a number"))),
            _ => Err(ConfigError::Invalid(format!(
                "unknown learning-rate schedule {s:?}: expected constant, cosine or cosine:FRACTION"
            ))),
        }
    }
}

/// Hyper-parameters of the training loop (Adam, with a constant or annealed learning rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Number of passes over the training set.
    pub num_epochs: usize,
    /// Samples per optimisation step.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Adam's β₁.
    pub beta_1: f32,
    /// Adam's β₂.
    pub beta_2: f32,
    /// Seed of the shuffling and of every random draw in the loss; with the same seed, a run on
    /// ndarray is bit-identical.
    pub seed: u64,
    /// Stop when the validation loss has not improved for this many epochs.
    pub patience: Option<usize>,
    /// L2 weight decay added to every gradient (Adam's coupled form, not AdamW's); 0 for none.
    pub weight_decay: f64,
    /// How the learning rate changes over the run.
    pub lr_schedule: LrSchedule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            num_epochs: 10,
            batch_size: 128,
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            seed: 42,
            patience: None,
            weight_decay: 0.0,
            lr_schedule: LrSchedule::Constant,
        }
    }
}

impl TrainConfig {
    /// Sets the number of epochs.
    pub fn with_num_epochs(mut self, n: usize) -> Self {
        self.num_epochs = n;
        self
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Sets the learning rate.
    pub fn with_learning_rate(mut self, lr: f64) -> Self {
        self.learning_rate = lr;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the weight decay.
    pub fn with_weight_decay(mut self, decay: f64) -> Self {
        self.weight_decay = decay;
        self
    }

    /// Sets the learning-rate schedule.
    pub fn with_lr_schedule(mut self, schedule: LrSchedule) -> Self {
        self.lr_schedule = schedule;
        self
    }

    /// Sets the early-stopping patience.
    pub fn with_patience(mut self, patience: Option<usize>) -> Self {
        self.patience = patience;
        self
    }

    /// Rejects zero epochs or batch size, a non-positive learning rate, betas outside [0, 1) and a
    /// zero patience.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("num_epochs", self.num_epochs)?;
        ConfigError::check_positive("batch_size", self.batch_size)?;
        ConfigError::check_positive_f64("learning_rate", self.learning_rate)?;
        for (name, b) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(ConfigError::OutOfRange {
                    name,
                    range: "[0, 1)",
                    value: b as f64,
                });
            }
        }
        if let Some(p) = self.patience {
            ConfigError::check_positive("patience", p)?;
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ConfigError::OutOfRange {
                name: "weight_decay",
                range: "[0, inf)",
                value: self.weight_decay,
            });
        }
        if let LrSchedule::Cosine { final_fraction } = self.lr_schedule
            && !(0.0..=1.0).contains(&final_fraction)
        {
            return Err(ConfigError::OutOfRange {
                name: "lr_schedule.final_fraction",
                range: "[0, 1]",
                value: final_fraction,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_runs_from_the_rate_to_its_fraction() {
        let c = LrSchedule::Cosine { final_fraction: 0.1 };
        assert_eq!(c.rate(1.0, 0, 101), 1.0);
        assert!((c.rate(1.0, 50, 101) - 0.55).abs() < 1e-12);
        assert!((c.rate(1.0, 100, 101) - 0.1).abs() < 1e-12);
        assert!(
            (c.rate(1.0, 500, 101) - 0.1).abs() < 1e-12,
            "past the end it stays at the floor"
        );
        let rates: Vec<f64> = (0..101).map(|t| c.rate(2.0, t, 101)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(LrSchedule::Constant.rate(0.3, 7, 10), 0.3);
        assert_eq!(
            "cosine".parse::<LrSchedule>().unwrap(),
            LrSchedule::Cosine { final_fraction: 0.01 }
        );
        assert_eq!(
            "cosine:0".parse::<LrSchedule>().unwrap(),
            LrSchedule::Cosine { final_fraction: 0.0 }
        );
        assert!(
            "linear"
                .parse::<LrSchedule>()
                .unwrap_err()
                .to_string()
                .contains("linear")
        );
        let bad = TrainConfig::default().with_lr_schedule(LrSchedule::Cosine { final_fraction: 2.0 });
        assert!(bad.validate().is_err());
    }

    #[test]
    fn default_is_valid() {
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn rejects_each_bad_value() {
        let d = TrainConfig::default;
        assert!(matches!(
            d().with_num_epochs(0).validate(),
            Err(ConfigError::Zero { name: "num_epochs", .. })
        ));
        assert!(matches!(
            d().with_batch_size(0).validate(),
            Err(ConfigError::Zero { name: "batch_size", .. })
        ));
        for lr in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                d().with_learning_rate(lr).validate(),
                Err(ConfigError::OutOfRange {
                    name: "learning_rate",
                    ..
                })
            ));
        }
        let bad_beta = TrainConfig { beta_2: 1.0, ..d() };
        assert!(matches!(
            bad_beta.validate(),
            Err(ConfigError::OutOfRange { name: "beta_2", .. })
        ));
        assert!(matches!(
            d().with_patience(Some(0)).validate(),
            Err(ConfigError::Zero { name: "patience", .. })
        ));
    }

    #[test]
    fn message_names_the_value() {
        let e = TrainConfig::default().with_learning_rate(-0.5).validate().unwrap_err();
        assert_eq!(e.to_string(), "learning_rate must be in (0, inf), got -0.5");
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let c = TrainConfig::default().with_seed(7).with_patience(Some(3));
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&s).unwrap(), c);
        let partial: TrainConfig = serde_json::from_str(r#"{"num_epochs": 3}"#).unwrap();
        assert_eq!(partial.num_epochs, 3);
        assert_eq!(partial.batch_size, 128);
    }
}
