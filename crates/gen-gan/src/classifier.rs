//! The evaluation classifier: a small CNN trained by the project on the data set's labels, used
//! to judge generated images (features for the Fréchet distance, predicted classes for coverage,
//! conditional accuracy and the score) and for the data-augmentation experiment.
//!
//! conv 3x3 (32) → ReLU → max-pool 2 → conv 3x3 (64) → ReLU → max-pool 2 → dense 128 → ReLU
//! (the features) → dropout → dense to the classes.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, PaddingConfig2d};
use burn::tensor::module::max_pool2d;
use burn::tensor::{Int, Tensor, activation, backend::Backend};
use serde::{Deserialize, Serialize};

use gen_core::nn::fastconv::conv2d_module_activated;
use gen_core::nn::{Dense, DenseConfig, ImageShape};
use gen_core::{Batch, ConfigError, LossTerms, Objective, Stage};

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
}
