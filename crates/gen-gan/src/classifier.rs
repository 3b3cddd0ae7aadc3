//! The evaluation classifier: a small CNN trained by the project on the data set's labels, used
//! to judge generated images (features for the Fréchet distance, predicted classes for coverage,
//! conditional accuracy and the score) and for the data-augmentation experiment.
//!
//! conv 3x3 (32) → ReLU → max-pool 2 → conv 3x3 (64) → ReLU → max-pool 2 → dense 128 → ReLU
//! (the features) → dropout → dense to the classes.
//!
//! Its management sits beside it: [`recipe`] (how long and how it trains for a data set),
//! [`train`] (fresh, or continuing a run folder cut short), [`epochs_done`] (whether a run
//! folder's classifier finished), [`is_trained`] and [`load`].

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, PaddingConfig2d};
use burn::tensor::module::max_pool2d;
use burn::tensor::{Int, Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use gen_core::nn::fastconv::conv2d_module_activated;
use gen_core::nn::{Dense, DenseConfig, ImageShape};
use gen_core::train::{LrSchedule, RunDir, TrainConfig, Trainer, load_module};
use gen_core::{Batch, ConfigError, LossTerms, Objective, Stage};
use gen_data::Dataset;

/// The classifier's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// The images (sides divisible by 4).
    pub image: ImageShape,
    /// Number of classes.
    pub n_classes: usize,
    /// Width of the penultimate layer: the features of the Fréchet distance.
    pub d_features: usize,
    /// Dropout before the last layer, in training only.
    pub dropout: f64,
}

impl ClassifierConfig {
    /// The default for `image` and `n_classes`: 128 features, dropout 0.3.
    pub fn new(image: ImageShape, n_classes: usize) -> Self {
        Self {
            image,
            n_classes,
            d_features: 128,
            dropout: 0.3,
        }
    }

    /// Rejects zero sizes, fewer than two classes, and sides not divisible by 4.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("d_features", self.d_features)?;
        if self.n_classes < 2 {
            return Err(ConfigError::Invalid(format!(
                "a classifier needs at least 2 classes, got {}",
                self.n_classes
            )));
        }
        if self.image.height == 0
            || self.image.width == 0
            || !self.image.height.is_multiple_of(4)
            || !self.image.width.is_multiple_of(4)
        {
            return Err(ConfigError::Invalid(format!(
                "the classifier pools twice, so image sides must divide by 4, got {}x{}",
                self.image.height, self.image.width
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ConfigError::Invalid(format!(
                "dropout must lie in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Builds the classifier.
    ///
    /// # Errors
    /// If [`ClassifierConfig::validate`] fails.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<Classifier<B>, ConfigError> {
        self.validate()?;
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let flat = 64 * (self.image.height / 4) * (self.image.width / 4);
        let c = Classifier {
            conv1: conv(self.image.channels, 32),
            conv2: conv(32, 64),
            fc: DenseConfig::new(flat, self.d_features).init(device),
            out: DenseConfig::new(self.d_features, self.n_classes).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            image: [self.image.channels, self.image.height, self.image.width],
        };
        gen_core::nn::materialize(&c);
        Ok(c)
    }
}

/// The evaluation CNN (see the module documentation).
#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    fc: Dense<B>,
    out: Dense<B>,
    dropout: Dropout,
    image: [usize; 3],
}

impl<B: Backend> Classifier<B> {
    /// The penultimate features.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels * height * width]` in [0, 1]; output `[batch, d_features]`
    pub fn features(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, _] = x.dims();
        let [c, h, w] = self.image;
        let x = x.reshape([batch, c, h, w]);
        let pool = |t| max_pool2d(t, [2, 2], [2, 2], [0, 0], [1, 1], false);
        let relu = gen_core::nn::Activation::Relu;
        let h1 = pool(conv2d_module_activated(&self.conv1, x, relu));
        let h2 = pool(conv2d_module_activated(&self.conv2, h1, relu));
        self.fc
            .forward_activated(h2.flatten(1, 3), gen_core::nn::Activation::Relu)
    }

    /// Class logits.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_image]`; output `[batch, n_classes]`
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out.forward(self.dropout.forward(self.features(x)))
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.out.d_output()
    }

    /// The images it classifies.
    pub fn image(&self) -> ImageShape {
        let [channels, height, width] = self.image;
        ImageShape {
            channels,
            height,
            width,
        }
    }

    /// Width of the features.
    pub fn d_features(&self) -> usize {
        self.fc.d_output()
    }

    /// Features, class probabilities and predicted classes of `x`, in batches of 500, on the
    /// host: `(features [n * d_features], probs [n * n_classes], predictions [n])`.
    pub fn describe(&self, x: &[f32], d_image: usize, device: &B::Device) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
        let (mut feats, mut probs, mut preds) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in x.chunks(500 * d_image) {
            let n = chunk.len() / d_image;
            let t = Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(chunk.to_vec(), [n, d_image]), device);
            let f = self.features(t);
            let p = activation::softmax(self.out.forward(f.clone()), 1);
            let k = self.n_classes();
            let pv = p.into_data().to_vec::<f32>().expect("f32 probabilities");
            preds.extend(pv.chunks(k).map(|r| {
                r.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i)
            }));
            probs.extend(pv);
            feats.extend(f.into_data().to_vec::<f32>().expect("f32 features"));
        }
        (feats, probs, preds)
    }
}

/// Mean cross-entropy of `logits` against `labels`, and the accuracy.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, _] = logits.dims();
    let log_p = activation::log_softmax(logits, 1);
    let picked = log_p.clone().gather(1, labels.clone().reshape([n, 1]));
    let loss = picked.neg().mean();
    let hits = log_p.argmax(1).reshape([n]).equal(labels).float().mean();
    (loss, hits)
}

impl<B: Backend> Objective<B> for Classifier<B> {
    /// Cross-entropy, with the accuracy as a part.
    ///
    /// # Panics
    /// If the batch has no labels.
    fn objective(&self, batch: &Batch<B>, _stage: Stage) -> LossTerms<B> {
        let y = batch.y.clone().expect("the classifier trains on labelled data");
        let (loss, acc) = cross_entropy(self.logits(batch.x.clone()), y);
        LossTerms {
            total: loss,
            parts: vec![("accuracy", acc)],
        }
    }
}

/// The share of `x`'s rows the classifier assigns to `labels`.
pub fn accuracy<B: Backend>(
    classifier: &Classifier<B>,
    x: &[f32],
    labels: &[usize],
    d_image: usize,
    device: &B::Device,
) -> f64 {
    let (_, _, preds) = classifier.describe(x, d_image, device);
    let hits = preds.iter().zip(labels).filter(|(p, y)| p == y).count();
    hits as f64 / labels.len().max(1) as f64
}

// ------------------------------------------------------------------------------------------
// Management: the recipe, training, a run folder's state, loading

/// The evaluation classifier's training recipe for a training split of `n_train` images: about
/// 450,000 images seen (8 epochs of MNIST), between 5 and 60 epochs, Adam 1e-3 annealed by a
/// cosine to 1 % of it, batch 128.
pub fn recipe(n_train: usize) -> TrainConfig {
    let epochs = (450_000 / n_train.max(1)).clamp(5, 60);
    TrainConfig::default()
        .with_num_epochs(epochs)
        .with_batch_size(128)
        .with_learning_rate(1e-3)
        .with_lr_schedule(LrSchedule::Cosine { final_fraction: 0.01 })
}

/// A trained evaluation classifier, judged on the test images.
#[derive(Debug)]
pub struct TrainedClassifier<B: Backend> {
    /// The network (the best epoch's when the trainer validates).
    pub model: Classifier<B>,
    /// Its accuracy on the test images.
    pub test_accuracy: f64,
    /// The epoch whose weights it holds.
    pub best_epoch: usize,
}

/// Trains the classifier `cfg` with `trainer` (its recipe, run folder, resume and observer) on
/// `train`, keeping the best epoch on `valid`, and measures it on `test`. The backend is seeded
/// with the recipe's seed before the weights are drawn, so a run is reproducible.
///
/// # Errors
/// An invalid configuration, unlabelled data, and the trainer's errors (a non-finite loss, the
/// run folder's I/O).
pub fn train<B: AutodiffBackend>(
    cfg: &ClassifierConfig,
    trainer: &mut Trainer<'_>,
    (train, valid, test): (&Dataset, &Dataset, &Dataset),
    run_config: &serde_json::Value,
    device: &B::Device,
) -> crate::Result<TrainedClassifier<B::InnerBackend>> {
    B::seed(device, trainer.config().seed);
    let model: Classifier<B> = cfg.try_init(device)?;
    let fitted = trainer.fit(model, train, Some(valid), run_config, device)?;
    let model = fitted.model.valid();
    let test_accuracy = crate::eval::test_accuracy(&model, test, device)?;
    Ok(TrainedClassifier {
        model,
        test_accuracy,
        best_epoch: fitted.best_epoch.unwrap_or(fitted.epochs_completed),
    })
}

/// The epochs a classifier's run folder has trained against its recipe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochsDone {
    /// Epochs in its metrics.
    pub done: usize,
    /// Epochs its recipe asks for.
    pub configured: usize,
    /// Fewer than configured, with no patience that could have ended it early: the training was
    /// cut short and [`train`] with resume continues it (one stopped by its patience is done).
    pub cut_short: bool,
}

/// How far the classifier in `run` trained, by the rows of its metrics and its `recipe`.
pub fn epochs_done(run: &RunDir, recipe: &TrainConfig) -> EpochsDone {
    let done = run.metrics().read().map_or(0, |(_, rows)| rows.len());
    EpochsDone {
        done,
        configured: recipe.num_epochs,
        cut_short: recipe.patience.is_none() && done < recipe.num_epochs,
    }
}

/// Whether `root` is a run folder with a configuration and a model checkpoint.
///
/// # Errors
/// If `root` exists but cannot be opened as a run folder.
pub fn is_trained(root: &Path) -> crate::Result<bool> {
    Ok(root.join("config.json").is_file() && RunDir::open(root)?.model_path().is_file())
}

/// The classifier `cfg` with the weights of `run`'s model checkpoint.
///
/// # Errors
/// An invalid configuration, or a checkpoint that is missing, corrupt or of another shape.
pub fn load<B: Backend>(cfg: &ClassifierConfig, run: &RunDir, device: &B::Device) -> crate::Result<Classifier<B>> {
    let (model, _) = load_module(cfg.try_init::<B>(device)?, &run.model_path(), device)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend as B;

    #[test]
    fn cross_entropy_matches_hand_values() {
        let device = Default::default();
        let logits = Tensor::<B, 2>::from_floats([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
        let y = Tensor::<B, 1, Int>::from_ints([0, 2], &device);
        let (loss, acc) = cross_entropy(logits, y);
        let l0 = -(2f64.exp() / (2f64.exp() + 2.0)).ln();
        let l1 = 3f64.ln();
        assert!((loss.into_scalar() as f64 - (l0 + l1) / 2.0).abs() < 1e-5);
        // Row 2 ties; argmax takes the first class, so one of two is right.
        assert!((acc.into_scalar() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn shapes_and_validation() {
        let device = Default::default();
        let c = ClassifierConfig::new(ImageShape::grey(8, 8), 10)
            .try_init::<B>(&device)
            .unwrap();
        let x = vec![0.5f32; 3 * 64];
        let (f, p, y) = c.describe(&x, 64, &device);
        assert_eq!((f.len(), p.len(), y.len()), (3 * 128, 30, 3));
        assert!(ClassifierConfig::new(ImageShape::grey(10, 10), 10).validate().is_err());
        assert!(ClassifierConfig::new(ImageShape::grey(8, 8), 1).validate().is_err());
    }

    /// Recipe bounds; a run cut short is seen as such, continued to its recipe's end, and
    /// loads with the weights it was judged with.
    #[test]
    fn management_trains_continues_and_loads() {
        use crate::test_util::TestAutodiffBackend as A;
        assert_eq!(recipe(60_000).num_epochs, 7);
        assert_eq!((recipe(1).num_epochs, recipe(1_000_000).num_epochs), (60, 5));
        let digits = gen_data::digits().unwrap().take(300);
        let (rest, test) = digits.split(0.2, 0).unwrap();
        let (train_set, valid) = rest.split(0.2, 1).unwrap();
        let cfg = ClassifierConfig::new(digits.image_shape().unwrap(), 10);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("classifier");
        assert!(!is_trained(&root).unwrap());
        let full = recipe(train_set.len()).with_num_epochs(2).with_batch_size(32);
        let meta = serde_json::json!({"test": true});
        let device = Default::default();
        // A first sitting stops after one of the two epochs.
        let run = RunDir::create(&root, &meta, false).unwrap();
        let mut short = Trainer::new(full.clone().with_num_epochs(1))
            .unwrap()
            .with_run_dir(run.clone());
        train::<A>(&cfg, &mut short, (&train_set, &valid, &test), &meta, &device).unwrap();
        assert!(is_trained(&root).unwrap());
        let cut = epochs_done(&run, &full);
        assert_eq!(
            cut,
            EpochsDone {
                done: 1,
                configured: 2,
                cut_short: true
            }
        );
        assert!(!epochs_done(&run, &full.clone().with_patience(Some(3))).cut_short);
        let mut rest_of_it = Trainer::new(full.clone())
            .unwrap()
            .with_run_dir(run.clone())
            .with_resume(true);
        let trained = train::<A>(&cfg, &mut rest_of_it, (&train_set, &valid, &test), &meta, &device).unwrap();
        assert_eq!(epochs_done(&run, &full).done, 2);
        assert!((0.0..=1.0).contains(&trained.test_accuracy));
        let loaded = load::<B>(&cfg, &run, &device).unwrap();
        let acc = crate::eval::test_accuracy(&loaded, &test, &device).unwrap();
        assert!(
            (acc - trained.test_accuracy).abs() < 1e-12,
            "{acc} vs {}",
            trained.test_accuracy
        );
        let other = ClassifierConfig { d_features: 64, ..cfg };
        assert!(load::<B>(&other, &run, &device).is_err());
    }
}
