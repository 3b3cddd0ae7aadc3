//! The few-labels comparison: the semi-supervised discriminator against the evaluation
//! classifier trained on the same labelled images alone, and on them randomly shifted.

use burn::tensor::backend::AutodiffBackend;
use gen_data::Dataset;
use serde::{Deserialize, Serialize};

use super::nets::SsDiscriminator;
use super::train::{ClassifierEval, evaluate};
use crate::Result;
use crate::augmentation::{shifted_copies, train_probe_classifier};
use crate::error::ensure;

/// The comparison of [`compare`]: three test errors on the same labelled images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FewLabelsReport {
    /// Labelled images.
    pub labels: usize,
    /// The semi-supervised discriminator on the test images.
    pub ssgan: ClassifierEval,
    /// Test error of the evaluation classifier trained on the labelled images alone.
    pub labels_only_error: f64,
    /// Test error of the evaluation classifier trained on the labelled images, each copy
    /// randomly shifted by up to `shift` pixels.
    pub shifts_error: f64,
    /// The largest shift, in pixels.
    pub shift: usize,
    /// Images each baseline classifier saw (passes over its data, cut at this count).
    pub budget: usize,
}

/// Judges `d` on `test` beside the evaluation classifier trained on `labelled` alone and on
/// `labelled` randomly shifted by up to `shift` pixels, each for `budget` images from `seed`.
///
/// # Errors
/// Unlabelled or non-image data, an empty budget, a failed training run.
pub fn compare<B: AutodiffBackend>(
    d: &SsDiscriminator<B::InnerBackend>,
    labelled: &Dataset,
    test: &Dataset,
    budget: usize,
    shift: usize,
    seed: u64,
    device: &B::Device,
) -> Result<FewLabelsReport> {
    ensure!(shift > 0, "the shifted baseline needs a shift of at least 1 pixel");
    let ssgan = evaluate(d, test, device)?;
    let k = d.n_classes();
    let (alone, _) = train_probe_classifier::<B>(labelled, test, k, budget, seed, None, device)?;
    let shifted = shifted_copies(labelled, budget, shift, 2000 + seed)?;
    let (with_shifts, _) = train_probe_classifier::<B>(&shifted, test, k, budget, seed, None, device)?;
    Ok(FewLabelsReport {
        labels: labelled.len(),
        ssgan,
        labels_only_error: 1.0 - alone,
        shifts_error: 1.0 - with_shifts,
        shift,
        budget,
    })
}

impl FewLabelsReport {
    /// The comparison's lines of `gen eval`'s summary.
    pub fn summary(&self) -> String {
        format!(
            "test error with {} labels: semi-supervised GAN {:.2} % ({} of {}), evaluation classifier on the \
             labels alone {:.2} %, on them shifted by up to {} px {:.2} % ({} images each)\n",
            self.labels,
            100.0 * self.ssgan.error,
            self.ssgan.errors,
            self.ssgan.n,
            100.0 * self.labels_only_error,
            self.shift,
            100.0 * self.shifts_error,
            self.budget
        )
    }
}
