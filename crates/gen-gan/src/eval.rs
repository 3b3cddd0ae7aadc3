//! How good a generator is, measured the way `gen eval` does it: the Fréchet distance between
//! the evaluation classifier's features of generated and of real test images, beside the floor
//! that held-out real images reach on the same features; the classes the samples cover; the
//! classifier score (an Inception score on our classifier); and for a conditional generator the
//! share of samples classified as their conditioned class ([`evaluate_generator`]).
//!
//! Also here: drawing images from any generator in chunks ([`generate`]), the real images a
//! source-conditioned (DAGAN) generator varies ([`Sources`]), and the evaluation classifier's
//! test accuracy ([`test_accuracy`]).

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use gen_data::{Dataset, tensor_values};
use serde::Serialize;

use crate::classifier::Classifier;
use crate::error::ensure;
use crate::metrics::{class_shares, classifier_score, distinct_modes, frechet_distance};
use crate::{EpochReport, GanConfig, GanError, Generator, Result};

/// Images drawn per forward pass by [`generate`].
const CHUNK: usize = 500;

/// The real images a source-conditioned (DAGAN) generator varies: a data set's images by
/// class, each class's taken in turn, so every image gets its share of variations.
#[derive(Debug)]
pub struct Sources {
    images: Vec<f32>,
    d: usize,
    by_class: Vec<Vec<usize>>,
    /// The next image of each class.
    next: std::sync::Mutex<Vec<usize>>,
}

impl Sources {
    /// The labelled images of `data`.
    ///
    /// # Errors
    /// If `data` has no labels.
    pub fn new(data: &Dataset) -> Result<Self> {
        let Some(labels) = data.labels() else {
            return Err(GanError::Invalid(
                "a source-conditioned generator's training images have no labels".into(),
            ));
        };
        let k = labels.iter().copied().max().map_or(0, |m| m.max(0) as usize + 1);
        let mut by_class = vec![Vec::new(); k];
        for (i, &l) in labels.iter().enumerate() {
            if l >= 0 {
                by_class[l as usize].push(i);
            }
        }
        Ok(Self {
            images: data.features().to_vec(),
            d: data.d(),
            next: std::sync::Mutex::new(vec![0; k]),
            by_class,
        })
    }

    /// The next source image of each label's class, row after row.
    ///
    /// # Errors
    /// If a label's class has no image.
    pub fn take(&self, labels: &[i64]) -> Result<Vec<f32>> {
        // A panic elsewhere cannot leave the counters half-written: each is one increment.
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(labels.len() * self.d);
        for &l in labels {
            let class = usize::try_from(l)
                .ok()
                .and_then(|c| self.by_class.get(c))
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    GanError::Invalid(format!("the run's training images hold no image of class {l} to vary"))
                })?;
            let i = class[next[l as usize] % class.len()];
            next[l as usize] += 1;
            out.extend_from_slice(&self.images[i * self.d..(i + 1) * self.d]);
        }
        Ok(out)
    }
}

fn labels_tensor<B: Backend>(labels: &[i64], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

/// Draws `n` images from `g` in chunks, with `labels` (the classes in turn when `None` and the
/// generator is conditional); a source-conditioned generator varies images from `sources`.
/// Returns the images, row-major, and the labels they were drawn with (empty for an
/// unconditional generator).
///
/// # Errors
/// Labels that do not match `n` or the generator's classes, or a source-conditioned
/// generator without `sources`.
pub fn generate<B: Backend>(
    g: &Generator<B>,
    sources: Option<&Sources>,
    n: usize,
    labels: Option<&[i64]>,
    device: &B::Device,
) -> Result<(Vec<f32>, Vec<i64>)> {
    let k = g.n_classes();
    let labels: Vec<i64> = match labels {
        Some(l) => l.to_vec(),
        None if k > 0 => (0..n).map(|i| (i % k) as i64).collect(),
        None => Vec::new(),
    };
    ensure!(
        k == 0 || labels.len() == n,
        "{} labels for {n} conditional samples",
        labels.len()
    );
    if let Some(bad) = labels.iter().find(|&&l| k > 0 && !(0..k as i64).contains(&l)) {
        return Err(GanError::Invalid(format!(
            "label {bad} is out of range: the generator has {k} classes"
        )));
    }
    let sources = match (g.is_source_conditioned(), sources) {
        (false, _) => None,
        (true, Some(s)) => Some(s),
        (true, None) => {
            return Err(GanError::Invalid(
                "a source-conditioned (DAGAN) generator needs real images to vary".into(),
            ));
        }
    };
    let mut out = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let y = (k > 0).then(|| labels_tensor::<B>(&labels[start..end], device));
        let images = match sources {
            None => g.sample(end - start, y, device),
            Some(s) => {
                let m = end - start;
                let src = Tensor::from_data(TensorData::new(s.take(&labels[start..end])?, [m, s.d]), device);
                let z = Tensor::random([m, g.d_latent()], Distribution::Normal(0.0, 1.0), device);
                g.forward_from(z, y, Some(src))
            }
        };
        out.extend(tensor_values(images)?);
    }
    Ok((out, labels))
}

/// The share of `data`'s images that `c` classifies as their label.
///
/// # Errors
/// If `data` has no labels.
pub fn test_accuracy<B: Backend>(c: &Classifier<B>, data: &Dataset, device: &B::Device) -> Result<f64> {
    let Some(labels) = data.labels() else {
        return Err(GanError::Invalid(format!("{} has no labels", data.name())));
    };
    let (_, _, preds) = c.describe(data.features(), data.d(), device);
    Ok(share_correct(&preds, labels))
}

/// The per-epoch judge of a GAN run, for [`crate::GanTrainer::fit`]'s monitor: a fixed noise
/// batch decoded into the same grid every epoch (one row per class when conditional; a DAGAN's
/// rows vary the same eight training images of each class), and the classes that 500 fresh
/// samples cover by the evaluation classifier (`modes`, `min_class_share`, and a conditional
/// generator's `conditional_accuracy`), which feed the trainer's collapse warning.
pub struct CoverageMonitor<'c, B: Backend> {
    classifier: &'c Classifier<B>,
    n_classes: usize,
    d_image: usize,
    cols: usize,
    fixed_z: Tensor<B, 2>,
    fixed_y: Option<Vec<i64>>,
    fixed_src: Option<Tensor<B, 2>>,
    sources: Option<Sources>,
    device: B::Device,
}

impl<'c, B: Backend> CoverageMonitor<'c, B> {
    /// Samples judged per epoch.
    pub const SAMPLES: usize = 500;

    /// The monitor of a GAN configured by `cfg` on the training images `train`, judged by
    /// `classifier`. The fixed noise is drawn from the backend's generator: seed it first (the
    /// trainer reseeds every epoch, so the draws of training do not depend on it).
    ///
    /// # Errors
    /// A classifier of other images than the GAN's, or of another number of classes than a
    /// conditional GAN's; a source-conditioned GAN whose training images have no labels, or no
    /// image of a class.
    pub fn new(cfg: &GanConfig, classifier: &'c Classifier<B>, train: &Dataset, device: &B::Device) -> Result<Self> {
        let k = classifier.n_classes();
        ensure!(
            classifier.image() == cfg.image,
            "the classifier judges {}x{}x{} images, the GAN makes {}x{}x{}",
            classifier.image().channels,
            classifier.image().height,
            classifier.image().width,
            cfg.image.channels,
            cfg.image.height,
            cfg.image.width
        );
        if let Some(n) = cfg.n_classes {
            ensure!(n == k, "the classifier knows {k} classes, the conditional GAN {n}");
        }
        let (rows, cols) = if cfg.n_classes.is_some() { (k, 8) } else { (8, 8) };
        let fixed_z = Tensor::<B, 2>::random([rows * cols, cfg.d_latent], Distribution::Normal(0.0, 1.0), device);
        let fixed_y: Option<Vec<i64>> = cfg
            .n_classes
            .map(|_| (0..rows * cols).map(|i| (i / cols) as i64).collect());
        let fixed_src = match (&fixed_y, cfg.source_conditioned) {
            (Some(labels), true) => {
                let x = Sources::new(train)?.take(labels)?;
                Some(Tensor::<B, 2>::from_data(
                    TensorData::new(x, [labels.len(), cfg.image.numel()]),
                    device,
                ))
            }
            _ => None,
        };
        let sources = if cfg.source_conditioned {
            Some(Sources::new(train)?)
        } else {
            None
        };
        Ok(Self {
            classifier,
            n_classes: k,
            d_image: cfg.image.numel(),
            cols,
            fixed_z,
            fixed_y,
            fixed_src,
            sources,
            device: device.clone(),
        })
    }

    /// Images per row of [`CoverageMonitor::grid`].
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The fixed noise decoded by `g`: rows of [`CoverageMonitor::cols`] images, each row's
    /// images one after another.
    ///
    /// # Errors
    /// If the generator's output cannot be read back.
    pub fn grid(&self, g: &Generator<B>) -> Result<Vec<Vec<f32>>> {
        let y = self.fixed_y.as_deref().map(|l| labels_tensor::<B>(l, &self.device));
        let images = tensor_values(g.forward_from(self.fixed_z.clone(), y, self.fixed_src.clone()))?;
        Ok(images.chunks(self.d_image * self.cols).map(<[f32]>::to_vec).collect())
    }

    /// The classes [`CoverageMonitor::SAMPLES`] fresh samples of `g` cover: the columns
    /// `modes`, `min_class_share` (and `conditional_accuracy` for a conditional generator),
    /// and the mode count for the collapse warning.
    ///
    /// # Errors
    /// A conditional generator asked for a class the source images lack.
    pub fn report(&self, g: &Generator<B>) -> Result<EpochReport> {
        let (samples, labels) = generate(g, self.sources.as_ref(), Self::SAMPLES, None, &self.device)?;
        let (_, _, preds) = self.classifier.describe(&samples, self.d_image, &self.device);
        let shares = class_shares(&preds, self.n_classes);
        let modes = distinct_modes(&shares);
        let mut columns = vec![
            ("modes".to_string(), modes as f64),
            (
                "min_class_share".to_string(),
                shares.iter().copied().fold(f64::INFINITY, f64::min),
            ),
        ];
        if !labels.is_empty() {
            columns.push(("conditional_accuracy".into(), share_correct(&preds, &labels)));
        }
        Ok(EpochReport {
            columns,
            modes: Some((modes, self.n_classes)),
        })
    }
}

/// The share of predicted classes that equal their labels.
fn share_correct(predictions: &[usize], labels: &[i64]) -> f64 {
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p as i64 == **l)
        .count();
    hits as f64 / labels.len().max(1) as f64
}

/// What [`evaluate_generator`] measures.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorReport {
    /// The data set's name, as the caller gave it.
    pub dataset: String,
    /// Which generator was judged (`ema` or `last`), as the caller gave it.
    pub generator: &'static str,
    /// The evaluation classifier's accuracy on the test images.
    pub classifier_test_accuracy: f64,
    /// Images generated.
    pub n_generated: usize,
    /// Held-out real images that give the floor (as many as generated).
    pub n_real_heldout: usize,
    /// Test images the features are compared with.
    pub n_test: usize,
    /// Fréchet distance of the generated images' classifier features from the test images'.
    pub classifier_fid: f64,
    /// The same distance for held-out real images: what a perfect generator would reach.
    pub classifier_fid_floor: f64,
    /// `classifier_fid / classifier_fid_floor`.
    pub fid_over_floor: f64,
    /// The share of samples the classifier puts in each class.
    pub class_shares: Vec<f64>,
    /// Classes holding a fair part of the samples (see [`distinct_modes`]).
    pub distinct_modes: usize,
    /// The classifier score of the samples (an Inception score on our classifier).
    pub classifier_score: f64,
    /// The classifier score of the real test images.
    pub classifier_score_real: f64,
    /// For a conditional generator, the share of samples classified as their class.
    pub conditional_accuracy: Option<f64>,
    /// The augmentation experiment, when the caller ran it.
    pub augmentation: Option<crate::augmentation::AugmentReport>,
    /// Seconds the evaluation took.
    pub seconds: f64,
    /// Images to show: ten per class for a conditional generator (class by class), else the
    /// first hundred samples (not serialised).
    #[serde(skip)]
    pub showcase: Vec<f32>,
}

/// Judges `g` with the evaluation `classifier`: `n` generated images (seeded with 7 on the
/// backend's generator) against the `test` images, beside the floor of `n` images of `held_out`
/// (real images neither the generator nor the classifier trained on).
///
/// # Errors
/// Fewer than 2 images to compare, unlabelled test images, a generator that needs `sources`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_generator<B: Backend>(
    dataset: &str,
    generator: &'static str,
    g: &Generator<B>,
    sources: Option<&Sources>,
    classifier: &Classifier<B>,
    held_out: &Dataset,
    test: &Dataset,
    n: usize,
    device: &B::Device,
) -> Result<GeneratorReport> {
    let started = Instant::now();
    let d = test.d();
    let k = classifier.n_classes();
    let n = n.min(held_out.len());
    ensure!(n >= 2, "need at least 2 held-out images and samples, got {n}");
    let Some(test_labels) = test.labels() else {
        return Err(GanError::Invalid(format!("{} has no labels", test.name())));
    };
    let (test_feat, test_probs, test_preds) = classifier.describe(test.features(), d, device);
    let classifier_test_accuracy = share_correct(&test_preds, test_labels);
    let held = held_out.take(n);
    let (held_feat, _, _) = classifier.describe(held.features(), d, device);
    B::seed(device, 7);
    let (samples, labels) = generate(g, sources, n, None, device)?;
    let (gen_feat, gen_probs, gen_preds) = classifier.describe(&samples, d, device);
    let df = classifier.d_features();
    let fid = frechet_distance(&gen_feat, &test_feat, df).map_err(GanError::Invalid)?;
    let floor = frechet_distance(&held_feat, &test_feat, df).map_err(GanError::Invalid)?;
    let shares = class_shares(&gen_preds, k);
    let conditional_accuracy = (!labels.is_empty()).then(|| share_correct(&gen_preds, &labels));
    let showcase: Vec<f32> = if g.n_classes() > 0 {
        // Ten per class, one class after another.
        let kg = g.n_classes();
        let per: Vec<i64> = (0..kg * 10).map(|i| (i / 10) as i64).collect();
        generate(g, sources, kg * 10, Some(&per), device)?.0
    } else {
        samples[..d * 100.min(n)].to_vec()
    };
    Ok(GeneratorReport {
        dataset: dataset.to_string(),
        generator,
        classifier_test_accuracy,
        n_generated: n,
        n_real_heldout: n,
        n_test: test.len(),
        classifier_fid: fid,
        classifier_fid_floor: floor,
        fid_over_floor: fid / floor,
        distinct_modes: distinct_modes(&shares),
        class_shares: shares,
        classifier_score: classifier_score(&gen_probs, k),
        classifier_score_real: classifier_score(&test_probs, k),
        conditional_accuracy,
        augmentation: None,
        seconds: started.elapsed().as_secs_f64(),
        showcase,
    })
}

impl GeneratorReport {
    /// The report as the lines `gen eval` prints, under a first line that names the run.
    pub fn summary(&self) -> String {
        let k = self.class_shares.len();
        let mut s = format!(
            "  evaluation classifier: test accuracy {:.2} %\n",
            100.0 * self.classifier_test_accuracy
        );
        s += &format!(
            "  classifier-feature FID {:.3} vs real-data floor {:.3} ({:.2}x), {} samples / {} held-out / {} test images\n",
            self.classifier_fid,
            self.classifier_fid_floor,
            self.fid_over_floor,
            self.n_generated,
            self.n_real_heldout,
            self.n_test
        );
        s += &format!(
            "  class coverage: {} of {k} classes; shares {}\n",
            self.distinct_modes,
            self.class_shares
                .iter()
                .map(|s| format!("{:.1}", 100.0 * s))
                .collect::<Vec<_>>()
                .join(" ")
        );
        s += &format!(
            "  classifier score {:.3} (real test images {:.3})\n",
            self.classifier_score, self.classifier_score_real
        );
        if let Some(a) = self.conditional_accuracy {
            s += &format!("  samples classified as their conditioned class: {:.2} %\n", 100.0 * a);
        }
        if let Some(a) = &self.augmentation {
            s += &a.summary();
        }
        s
    }
}

/// How many of `n` samples each class gets, in proportion to `weights`, by largest remainders
/// (the counts sum to `n`): the class balance of a synthetic set drawn with [`generate`].
///
/// # Errors
/// If a weight is negative or not finite, or none is positive.
pub fn balanced_counts(n: usize, weights: &[f64]) -> Result<Vec<usize>> {
    ensure!(
        weights.iter().all(|w| w.is_finite() && *w >= 0.0) && weights.iter().any(|w| *w > 0.0),
        "class weights must be finite, not negative, and not all zero, got {weights:?}"
    );
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut rest: Vec<usize> = (0..weights.len()).collect();
    rest.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let missing = n - counts.iter().sum::<usize>();
    for &i in rest.iter().take(missing) {
        counts[i] += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GanConfig;
    use crate::classifier::ClassifierConfig;
    use crate::test_util::TestBackend;

    /// The protocol on the embedded digits with an untrained generator and classifier: every
    /// figure present and in range, the showcase ten per class, the floor finite, and too few
    /// held-out images refused.
    #[test]
    fn evaluate_generator_reports_every_figure() {
        let digits = gen_data::digits().unwrap();
        let (held, test) = digits.split(0.5, 0).unwrap();
        let shape = digits.image_shape().unwrap();
        let device = Default::default();
        TestBackend::seed(&device, 0);
        let c = ClassifierConfig::new(shape, 10)
            .try_init::<TestBackend>(&device)
            .unwrap();
        let cfg = GanConfig {
            n_classes: Some(10),
            ..GanConfig::dcgan(shape)
        };
        let (g, _) = cfg.try_init::<TestBackend>(&device).unwrap();
        let r = evaluate_generator("digits", "last", &g, None, &c, &held, &test, 50, &device).unwrap();
        assert_eq!((r.n_generated, r.n_test), (50, test.len()));
        assert!(r.classifier_fid.is_finite() && r.classifier_fid_floor.is_finite());
        assert_eq!(r.class_shares.len(), 10);
        assert!((r.class_shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(r.conditional_accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)));
        assert_eq!(r.showcase.len(), 100 * shape.numel());
        assert!(r.summary().contains("classifier-feature FID"));
        let e = evaluate_generator("digits", "last", &g, None, &c, &held.take(1), &test, 50, &device).unwrap_err();
        assert!(e.to_string().contains("at least 2"), "{e}");
    }

    /// The monitor's grid has a row of 8 per class (8 rows of 8 unconditionally), the same
    /// images every call; its report counts modes among the classifier's classes and, for a
    /// conditional generator, the conditional accuracy; a DAGAN's monitor needs labels.
    #[test]
    fn coverage_monitor_draws_a_fixed_grid_and_counts_classes() {
        let digits = gen_data::digits().unwrap().take(200);
        let shape = digits.image_shape().unwrap();
        let d = shape.numel();
        let device = Default::default();
        TestBackend::seed(&device, 0);
        let c = ClassifierConfig::new(shape, 10)
            .try_init::<TestBackend>(&device)
            .unwrap();
        for n_classes in [Some(10), None] {
            let cfg = GanConfig {
                n_classes,
                ..GanConfig::dcgan(shape)
            };
            let (g, _) = cfg.try_init::<TestBackend>(&device).unwrap();
            let monitor = CoverageMonitor::new(&cfg, &c, &digits, &device).unwrap();
            let grid = monitor.grid(&g).unwrap();
            assert_eq!(grid.len(), if n_classes.is_some() { 10 } else { 8 });
            assert!(grid.iter().all(|row| row.len() == monitor.cols() * d));
            assert_eq!(monitor.grid(&g).unwrap(), grid, "the fixed noise is fixed");
            let report = monitor.report(&g).unwrap();
            let (modes, classes) = report.modes.unwrap();
            assert!(modes <= classes && classes == 10);
            let names: Vec<&str> = report.columns.iter().map(|(n, _)| n.as_str()).collect();
            let expected = if n_classes.is_some() {
                vec!["modes", "min_class_share", "conditional_accuracy"]
            } else {
                vec!["modes", "min_class_share"]
            };
            assert_eq!(names, expected);
        }
        let dagan = GanConfig {
            n_classes: Some(10),
            source_conditioned: true,
            ..GanConfig::dcgan(shape)
        };
        let unlabelled = Dataset::new("x", digits.features().to_vec(), d, None, Some(shape)).unwrap();
        assert!(CoverageMonitor::new(&dagan, &c, &unlabelled, &device).is_err());
    }

    #[test]
    fn balanced_counts_follow_the_weights() {
        assert_eq!(balanced_counts(10, &[1.0, 1.0, 2.0]).unwrap(), vec![3, 2, 5]);
        assert_eq!(balanced_counts(4, &[0.0, 1.0]).unwrap(), vec![0, 4]);
        assert_eq!(balanced_counts(7, &[1.0; 10]).unwrap().iter().sum::<usize>(), 7);
        assert!(balanced_counts(7, &[0.0, 0.0]).is_err());
        assert!(balanced_counts(7, &[1.0, f64::NAN]).is_err());
    }
}
