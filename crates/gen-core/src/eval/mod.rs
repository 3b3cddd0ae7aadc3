//! Evaluation metrics on plain slices, with no tensors and no backend.
//!
//! - [`ranking`]: anomaly-detection metrics over per-sample scores (higher = more anomalous) and boolean
//!   labels (`true` = anomaly): [`auroc`], [`average_precision`], the PyOD-style [`contamination_threshold`]
//!   and [`predict`].
//! - [`image`]: reconstruction and denoising metrics over flat, row-major, single-channel images:
//!   [`mse`], [`psnr`], [`ssim`] (skimage's defaults), the [`median_filter_3x3`] denoising baseline, and
//!   batch helpers over consecutive images of one buffer ([`mean_psnr`], [`mean_ssim`],
//!   [`median_filter_batch`]).
//!
//! The ranking metrics return [`EvalError`] for inputs on which they are undefined (no positives, NaN scores,
//! ...), since those arise from data. The image metrics panic on mismatched lengths or shapes, which are
//! caller bugs; each such function says so under `# Panics`.

pub mod image;
pub mod ranking;

pub use image::{mean_psnr, mean_ssim, median_filter_3x3, median_filter_batch, mse, psnr, ssim};
pub use ranking::{EvalError, auroc, average_precision, contamination_threshold, predict};
