//! The data-augmentation experiment: does adding a conditional GAN's samples to a small labelled
//! training set make a classifier better? The evaluation classifier's architecture is trained on
//! the real images alone and with class-balanced synthetic images (optionally filtered by the
//! first classifier), over several seeds, every arm seeing the same number of training images;
//! with a GAN that learned from shifted images, a third arm trains on the real images with the
//! same random shifts and no synthetic ones, so the GAN's own part of any gain shows
//! ([`experiment`]).

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use gen_core::train::{Observer, TrainConfig, Trainer};
use gen_data::Dataset;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::classifier::{Classifier, ClassifierConfig};
use crate::error::ensure;
use crate::eval::{Sources, generate, test_accuracy};
use crate::{GanError, Generator, Result};

/// How the experiment's second arm uses the synthetic images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AugmentMode {
    /// Real and synthetic images together, the real ones repeated to a fixed share.
    #[default]
    Mix,
    /// Synthetic images for the first half of the budget, then the real images.
    Pretrain,
}

impl std::str::FromStr for AugmentMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mix" => Ok(AugmentMode::Mix),
            "pretrain" => Ok(AugmentMode::Pretrain),
            other => Err(format!("unknown augmentation mode {other:?}; expected mix or pretrain")),
        }
    }
}

/// The experiment's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentOptions {
    /// Seeds (each trains every arm once).
    pub seeds: usize,
    /// Synthetic images added (`None`: 10 per real image).
    pub synthetic: Option<usize>,
    /// Training images seen by each classifier (passes over reshuffled copies, cut there).
    pub budget: usize,
    /// Keep only synthetic images to which the seed's real-only classifier gives their class a
    /// probability of at least this, in [0, 1).
    pub filter: Option<f64>,
    /// How the second arm uses the synthetic images.
    pub mode: AugmentMode,
    /// The real images' share of the mixed arm's data, in (0, 1).
    pub real_share: f64,
}

impl Default for AugmentOptions {
    fn default() -> Self {
        Self {
            seeds: 3,
            synthetic: None,
            budget: 60_000,
            filter: None,
            mode: AugmentMode::Mix,
            real_share: 0.5,
        }
    }
}

impl AugmentOptions {
    /// Checks every setting, naming the one that is wrong.
    ///
    /// # Errors
    /// No seeds, no synthetic images, no budget, a filter outside [0, 1) or a share outside (0, 1).
    pub fn validate(&self) -> Result<()> {
        ensure!(self.seeds >= 1, "the augmentation experiment needs at least 1 seed");
        ensure!(
            self.synthetic != Some(0),
            "0 synthetic images leave the augmented arm nothing to add to the real images; give at least 1"
        );
        ensure!(self.budget > 0, "the augmentation budget must be at least 1 image");
        if let Some(p) = self.filter {
            ensure!(
                (0.0..1.0).contains(&p),
                "the augmentation filter is a probability in [0, 1), got {p}"
            );
        }
        let r = self.real_share;
        ensure!(
            r > 0.0 && r < 1.0,
            "the real images' share of the mixed data must be strictly between 0 and 1, got {r}"
        );
        Ok(())
    }
}

/// The experiment's results.
#[derive(Debug, Clone, Serialize)]
pub struct AugmentReport {
    /// Real labelled images.
    pub n_real: usize,
    /// Synthetic images added.
    pub n_synthetic: usize,
    /// Training images each classifier saw.
    pub images_seen_per_classifier: usize,
    /// Seeds.
    pub seeds: usize,
    /// The least probability of its class a synthetic image needed.
    pub filter_min_probability: Option<f64>,
    /// How the second arm used the synthetic images.
    pub mode: AugmentMode,
    /// The real images' share asked for in the mixed arm.
    pub real_share_requested: f64,
    /// Copies of the real images in the mixed arm: the whole number nearest that share.
    pub real_copies: usize,
    /// The real images' share of the mixed arm's data that those copies give.
    pub real_share: f64,
    /// Per seed, the share of synthetic draws that passed the filter.
    pub filter_pass_share: Vec<f64>,
    /// Test accuracy per seed, real images alone.
    pub accuracy_real: Vec<f64>,
    /// Test accuracy per seed, with the synthetic images.
    pub accuracy_augmented: Vec<f64>,
    /// Mean of `accuracy_real`.
    pub mean_real: f64,
    /// Mean of `accuracy_augmented`.
    pub mean_augmented: f64,
    /// The GAN's `real_shift`: when above 0, the GAN learned from real images shifted by up to
    /// this many pixels, and a third arm trains the classifier on the real images with the same
    /// random shifts and no synthetic ones.
    pub real_shift: usize,
    /// Test accuracy per seed of the third arm.
    pub accuracy_real_shifted: Vec<f64>,
    /// Mean of `accuracy_real_shifted`.
    pub mean_real_shifted: Option<f64>,
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// Trains the evaluation classifier's architecture on `data` for exactly `budget` images with
/// `seed`, from `init` or from fresh weights; returns its accuracy on `test` and the model.
///
/// # Errors
/// Data without images or labels, an empty data set or budget, a failed training run.
#[allow(clippy::too_many_arguments)]
pub fn train_probe_classifier<B: AutodiffBackend>(
    data: &Dataset,
    test: &Dataset,
    k: usize,
    budget: usize,
    seed: u64,
    init: Option<Classifier<B>>,
    device: &B::Device,
) -> Result<(f64, Classifier<B>)> {
    let Some(shape) = data.image_shape() else {
        return Err(GanError::Invalid(format!("{} holds no images", data.name())));
    };
    ensure!(
        !data.is_empty() && budget > 0,
        "the augmentation experiment needs images and a budget"
    );
    let cfg = ClassifierConfig::new(shape, k);
    // Exactly `budget` images, in passes over freshly shuffled copies of the data, so both arms
    // of the experiment take the same number of steps whatever their sizes.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = Vec::with_capacity(budget);
    while order.len() < budget {
        let mut pass: Vec<usize> = (0..data.len()).collect();
        pass.shuffle(&mut rng);
        order.extend(pass.into_iter().take(budget - order.len()));
    }
    let stream = data.subset(&order, "augmentation-stream");
    let train = TrainConfig::default()
        .with_num_epochs(1)
        .with_batch_size(64)
        .with_learning_rate(1e-3)
        .with_seed(seed);
    B::seed(device, seed);
    let model: Classifier<B> = match init {
        Some(m) => m,
        None => cfg.try_init(device)?,
    };
    let fitted = Trainer::new(train)?.fit(model, &stream, None::<&Dataset>, &serde_json::Value::Null, device)?;
    Ok((test_accuracy(&fitted.model.valid(), test, device)?, fitted.model))
}

/// `n` copies of `data`'s images, in turn, each shifted by its own random whole number of pixels,
/// up to `max` in each direction, with zero fill: the classical augmentation of the experiment's
/// third arm, the same as a GAN's `real_shift`.
///
/// # Errors
/// Data without images or labels, or empty.
pub fn shifted_copies(data: &Dataset, n: usize, max: usize, seed: u64) -> Result<Dataset> {
    let (Some(shape), Some(labels)) = (data.image_shape(), data.labels()) else {
        return Err(GanError::Invalid(format!(
            "shifting needs labelled images; {} has none",
            data.name()
        )));
    };
    ensure!(!data.is_empty(), "no images to shift");
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let d = shape.numel();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = max as i64;
    let mut x = vec![0.0f32; n * d];
    let mut y = Vec::with_capacity(n);
    for (i, out) in x.chunks_exact_mut(d).enumerate() {
        let src = i % data.len();
        let img = &data.features()[src * d..][..d];
        let (dy, dx) = (rng.random_range(-m..=m), rng.random_range(-m..=m));
        // Output pixel (r, q) is input pixel (r + dy, q + dx), as in `gen_gan::translate`.
        for ch in 0..c {
            for r in 0..h {
                let sr = r as i64 + dy;
                if !(0..h as i64).contains(&sr) {
                    continue;
                }
                for q in 0..w {
                    let sq = q as i64 + dx;
                    if (0..w as i64).contains(&sq) {
                        out[(ch * h + r) * w + q] = img[(ch * h + sr as usize) * w + sq as usize];
                    }
                }
            }
        }
        y.push(labels[src]);
    }
    Ok(Dataset::new("shifted", x, d, Some(y), Some(shape))?)
}

/// The synthetic images kept so far, per class up to a quota.
struct Kept<'a> {
    quota: &'a [usize],
    have: &'a mut [usize],
    x: &'a mut Vec<f32>,
    y: &'a mut Vec<i64>,
}

impl Kept<'_> {
    /// Keeps each image (rows of `images`, one label and one row of class probabilities per
    /// image) whose probability of its own class is at least `min_prob`, while its class is
    /// below quota; returns how many reached `min_prob`, kept or not.
    fn select(&mut self, images: &[f32], labels: &[i64], probs: &[f32], min_prob: f64) -> usize {
        let (n, k) = (labels.len(), self.quota.len());
        if n == 0 {
            return 0;
        }
        let d = images.len() / n;
        let mut passed = 0;
        for ((img, &c), p) in images.chunks(d).zip(labels).zip(probs.chunks(k)) {
            let c = c as usize;
            if f64::from(p[c]) < min_prob {
                continue;
            }
            passed += 1;
            if self.have[c] < self.quota[c] {
                self.have[c] += 1;
                self.x.extend_from_slice(img);
                self.y.push(c as i64);
            }
        }
        passed
    }
}

/// How many whole copies of `n_real` real images bring them nearest `real_share` of a mix with
/// `n_syn` synthetic ones (at least one copy, so no labelled image is left out).
pub fn real_copies(n_real: usize, n_syn: usize, real_share: f64) -> usize {
    let wanted = real_share / (1.0 - real_share) * n_syn as f64 / n_real.max(1) as f64;
    (wanted.round() as usize).max(1)
}

/// The real images' share of a mix of `copies` copies of `n_real` with `n_syn` synthetic ones.
pub fn mixed_real_share(n_real: usize, n_syn: usize, copies: usize) -> f64 {
    let real = (copies * n_real) as f64;
    real / (real + n_syn as f64).max(1.0)
}

/// `copies` copies of `real`, then `syn` (see [`real_copies`]): the real images' share of every
/// batch drawn from the result is fixed, so synthetic images add variety and do not crowd out
/// the labelled data.
///
/// # Errors
/// Either set without labels.
pub fn mix_real(real: &Dataset, syn: &Dataset, copies: usize) -> Result<Dataset> {
    let (Some(real_y), Some(syn_y)) = (real.labels(), syn.labels()) else {
        return Err(GanError::Invalid(
            "mixing needs labelled real and synthetic images".into(),
        ));
    };
    let mut x = Vec::with_capacity(copies * real.features().len() + syn.features().len());
    let mut y = Vec::with_capacity(copies * real.len() + syn.len());
    for _ in 0..copies {
        x.extend_from_slice(real.features());
        y.extend_from_slice(real_y);
    }
    x.extend_from_slice(syn.features());
    y.extend_from_slice(syn_y);
    Ok(Dataset::new("augmented", x, real.d(), Some(y), real.image_shape())?)
}

/// Class-balanced synthetic images (`n` in all, the classes in turn) to which `judge` gives
/// their conditioned class a probability of at least `min_prob`; drawn in rounds until every
/// class has its share. Returns the images, their labels and the share of draws that reached
/// `min_prob`.
///
/// # Errors
/// A generator whose classes are not the judge's, or a threshold so high that 50 draws per
/// wanted image do not fill the classes.
pub fn filtered_synthetic<B: Backend>(
    g: &Generator<B>,
    sources: Option<&Sources>,
    judge: &Classifier<B>,
    n: usize,
    min_prob: f64,
    device: &B::Device,
) -> Result<(Vec<f32>, Vec<i64>, f64)> {
    let k = g.n_classes();
    ensure!(
        k > 0 && k == judge.n_classes(),
        "filtering needs a conditional generator with the classifier's classes: {k} against {}",
        judge.n_classes()
    );
    // Class c gets n / k images, the first n % k classes one more, as `generate` cycles them.
    let quota: Vec<usize> = (0..k).map(|c| n / k + usize::from(c < n % k)).collect();
    let mut have = vec![0usize; k];
    let (mut x, mut y) = (Vec::new(), Vec::with_capacity(n));
    let (mut drawn, mut passed) = (0usize, 0usize);
    let max_draws = 50 * n.max(1);
    while y.len() < n {
        ensure!(
            drawn < max_draws,
            "augmentation filter {min_prob}: after {drawn} draws only {} of {n} synthetic images reach it \
             (per class: {have:?}); lower the threshold",
            y.len()
        );
        let wanted: Vec<i64> = (0..k).filter(|&c| have[c] < quota[c]).map(|c| c as i64).collect();
        let round = (2 * (n - y.len())).clamp(500, 20_000);
        let labels: Vec<i64> = (0..round).map(|i| wanted[i % wanted.len()]).collect();
        let (images, labels) = generate(g, sources, round, Some(&labels), device)?;
        drawn += round;
        let d = images.len() / round;
        let (_, probs, _) = judge.describe(&images, d, device);
        let mut kept = Kept {
            quota: &quota,
            have: &mut have,
            x: &mut x,
            y: &mut y,
        };
        passed += kept.select(&images, &labels, &probs, min_prob);
    }
    Ok((x, y, passed as f64 / drawn as f64))
}

/// The augmentation experiment (see the module's documentation) with the conditional generator
/// `g` on the labelled `real` images, measured on `test`. `real_shift` is the GAN's: above 0, a
/// third arm sees the real images randomly shifted by as much. `observer` hears each arm start.
///
/// # Errors
/// Invalid options, an unconditional generator, unlabelled images, a failed training run.
#[allow(clippy::too_many_arguments)]
pub fn experiment<B: AutodiffBackend>(
    g: &Generator<B::InnerBackend>,
    sources: Option<&Sources>,
    real: &Dataset,
    test: &Dataset,
    options: &AugmentOptions,
    real_shift: usize,
    observer: &mut dyn Observer,
    device: &B::Device,
) -> Result<AugmentReport> {
    options.validate()?;
    let k = g.n_classes();
    ensure!(k > 0, "the augmentation experiment needs a conditional GAN");
    let Some(shape) = real.image_shape() else {
        return Err(GanError::Invalid(format!("{} holds no images", real.name())));
    };
    let n_syn = options.synthetic.unwrap_or(10 * real.len());
    // Computed once, so the mixed sets, the progress lines and the report agree on the share.
    let copies = real_copies(real.len(), n_syn, options.real_share);
    let real_share = mixed_real_share(real.len(), n_syn, copies);
    let budget = options.budget;
    let mut acc_real = Vec::new();
    let mut acc_aug = Vec::new();
    let mut acc_shifted = Vec::new();
    let mut pass_shares = Vec::new();
    for seed in 0..options.seeds as u64 {
        observer.on_stage(&format!(
            "augmentation experiment, seed {seed}: {} real images alone",
            real.len()
        ));
        let (acc, judge) = train_probe_classifier::<B>(real, test, k, budget, seed, None, device)?;
        let judge = judge.valid();
        acc_real.push(acc);
        B::InnerBackend::seed(device, 1000 + seed);
        let (syn, labels) = match options.filter {
            None => generate(g, sources, n_syn, None, device)?,
            Some(p) => {
                let (x, y, pass) = filtered_synthetic(g, sources, &judge, n_syn, p, device)?;
                observer.on_stage(&format!(
                    "augmentation experiment, seed {seed}: {:.1} % of the synthetic draws pass the filter",
                    100.0 * pass
                ));
                pass_shares.push(pass);
                (x, y)
            }
        };
        let syn = Dataset::new("synthetic", syn, shape.numel(), Some(labels), Some(shape))?;
        let acc = match options.mode {
            AugmentMode::Mix => {
                let mixed = mix_real(real, &syn, copies)?;
                observer.on_stage(&format!(
                    "augmentation experiment, seed {seed}: {} real ({copies} copies) + {n_syn} synthetic images, mixed ({:.1} % real)",
                    real.len(),
                    100.0 * real_share
                ));
                train_probe_classifier::<B>(&mixed, test, k, budget, seed, None, device)?.0
            }
            AugmentMode::Pretrain => {
                observer.on_stage(&format!(
                    "augmentation experiment, seed {seed}: {n_syn} synthetic images, then {} real",
                    real.len()
                ));
                let first = budget / 2;
                let (_, pre) = train_probe_classifier::<B>(&syn, test, k, first, seed, None, device)?;
                train_probe_classifier::<B>(real, test, k, budget - first, seed, Some(pre), device)?.0
            }
        };
        acc_aug.push(acc);
        if real_shift > 0 {
            observer.on_stage(&format!(
                "augmentation experiment, seed {seed}: {} real images shifted by up to {real_shift} px",
                real.len()
            ));
            let shifted = shifted_copies(real, budget, real_shift, 2000 + seed)?;
            acc_shifted.push(train_probe_classifier::<B>(&shifted, test, k, budget, seed, None, device)?.0);
        }
    }
    Ok(AugmentReport {
        n_real: real.len(),
        n_synthetic: n_syn,
        images_seen_per_classifier: budget,
        seeds: options.seeds,
        filter_min_probability: options.filter,
        mode: options.mode,
        real_share_requested: options.real_share,
        real_copies: copies,
        real_share,
        filter_pass_share: pass_shares,
        mean_real: mean_sd(&acc_real).0,
        mean_augmented: mean_sd(&acc_aug).0,
        accuracy_real: acc_real,
        accuracy_augmented: acc_aug,
        real_shift,
        mean_real_shifted: (!acc_shifted.is_empty()).then(|| mean_sd(&acc_shifted).0),
        accuracy_real_shifted: acc_shifted,
    })
}

impl AugmentReport {
    /// The experiment's lines of `gen eval`'s summary.
    pub fn summary(&self) -> String {
        let (mr, sr) = mean_sd(&self.accuracy_real);
        let (ma, sa) = mean_sd(&self.accuracy_augmented);
        let spread = |s: f64| {
            if self.seeds > 1 {
                format!(" ± {:.2}", 100.0 * s)
            } else {
                String::new()
            }
        };
        let mut how = match self.mode {
            AugmentMode::Mix => format!("mixed, {:.1} % real", 100.0 * self.real_share),
            AugmentMode::Pretrain => "pre-training".to_string(),
        };
        if let Some(p) = self.filter_min_probability {
            how.push_str(&format!(", filtered at {p}"));
        }
        let mut s = format!(
            "  augmentation ({} seed(s), {} images seen per classifier): {} real images {:.2}{} %; \
             + {} synthetic ({how}) {:.2}{} % ({:+.2} points)\n",
            self.seeds,
            self.images_seen_per_classifier,
            self.n_real,
            100.0 * mr,
            spread(sr),
            self.n_synthetic,
            100.0 * ma,
            spread(sa),
            100.0 * (ma - mr)
        );
        if !self.accuracy_real_shifted.is_empty() {
            let (ms, ss) = mean_sd(&self.accuracy_real_shifted);
            s += &format!(
                "    the GAN learned from images shifted by up to {} px; the real images with those shifts and \
                 no synthetic ones: {:.2}{} % ({:+.2} points)\n",
                self.real_shift,
                100.0 * ms,
                spread(ss),
                100.0 * (ms - mr)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gen_core::nn::ImageShape;

    #[test]
    fn shifted_copies_move_each_image_by_at_most_the_shift() {
        // Two 5x6 images, one lit pixel each, at (2, 3) and (1, 1).
        let shape = ImageShape::grey(5, 6);
        let mut x = vec![0.0f32; 60];
        x[2 * 6 + 3] = 1.0;
        x[30 + 6 + 1] = 0.5;
        let data = Dataset::new("two", x, 30, Some(vec![4, 7]), Some(shape)).unwrap();
        let out = shifted_copies(&data, 200, 1, 3).unwrap();
        assert_eq!(
            (out.len(), out.image_shape(), out.labels().unwrap()[..4].to_vec()),
            (200, Some(shape), vec![4, 7, 4, 7])
        );
        let mut seen = std::collections::HashSet::new();
        for (i, img) in out.features().chunks(30).enumerate() {
            let (y0, x0, v) = if i % 2 == 0 { (2, 3, 1.0) } else { (1, 1, 0.5) };
            let lit: Vec<usize> = (0..30).filter(|&p| img[p] != 0.0).collect();
            assert_eq!(lit.len(), 1, "copy {i}: {img:?}");
            let (y, x) = (lit[0] / 6, lit[0] % 6);
            assert!(
                y.abs_diff(y0) <= 1 && x.abs_diff(x0) <= 1 && img[lit[0]] == v,
                "copy {i} at ({y}, {x})"
            );
            seen.insert((i % 2, lit[0]));
        }
        // Every one of the 3 x 3 shifts of both images turns up among 100 copies each.
        assert_eq!(seen.len(), 18);
        let same = shifted_copies(&data, 4, 0, 3).unwrap();
        assert_eq!(same.features(), [data.features(), data.features()].concat());
    }

    #[test]
    fn mixing_repeats_the_real_images_to_their_share() {
        let shape = ImageShape::grey(1, 2);
        let real = Dataset::new("real", vec![1.0, 2.0, 3.0, 4.0], 2, Some(vec![0, 1]), Some(shape)).unwrap();
        let syn = Dataset::new("syn", vec![9.0; 12], 2, Some(vec![5; 6]), Some(shape)).unwrap();
        let real_count = |d: &Dataset| d.labels().unwrap().iter().filter(|&&c| c != 5).count();
        let mix = |share| {
            let copies = real_copies(real.len(), syn.len(), share);
            (
                mix_real(&real, &syn, copies).unwrap(),
                mixed_real_share(real.len(), syn.len(), copies),
            )
        };
        // Half: 6 synthetic images need 3 copies of the 2 real ones.
        let (half, share) = mix(0.5);
        assert_eq!((half.len(), real_count(&half), share), (12, 6, 0.5));
        assert_eq!(&half.features()[..4], real.features());
        assert_eq!(&half.labels().unwrap()[6..], &[5; 6]);
        // Three quarters: 18 real images beside the 6 synthetic ones.
        let (most, share) = mix(0.75);
        assert_eq!((most.len(), real_count(&most), share), (24, 18, 0.75));
        // A small share still keeps one copy of every real image, and the share says so.
        let (few, share) = mix(0.01);
        assert_eq!((few.len(), real_count(&few), share), (8, 2, 0.25));
        // Whole copies cannot always hit the share: the report carries the one they give, as
        // the experiment's 600 real and 6,000 synthetic images at a quarter real do (23.1 %).
        assert_eq!(real_copies(600, 6000, 0.25), 3);
        assert!((mixed_real_share(600, 6000, 3) - 1800.0 / 7800.0).abs() < 1e-12);
    }

    /// `Kept::select` over `images` against the given quotas and counts.
    fn select(
        have: &mut [usize],
        quota: &[usize],
        out: (&mut Vec<f32>, &mut Vec<i64>),
        batch: (&[f32], &[i64], &[f32]),
        p: f64,
    ) -> usize {
        let mut kept = Kept {
            quota,
            have,
            x: out.0,
            y: out.1,
        };
        kept.select(batch.0, batch.1, batch.2, p)
    }

    #[test]
    fn the_filter_keeps_confident_images_up_to_each_class_quota() {
        // Five one-value images of two classes; probabilities of (class 0, class 1) per image.
        let images = [10.0, 11.0, 12.0, 13.0, 14.0];
        let labels = [0, 0, 1, 1, 0];
        let probs = [0.9, 0.1, 0.4, 0.6, 0.2, 0.8, 0.3, 0.7, 0.95, 0.05];
        let batch = (&images[..], &labels[..], &probs[..]);
        let (quota, mut have, mut x, mut y) = ([1, 5], [0, 0], Vec::new(), Vec::new());
        // At 0.75: images 0 (0.9), 2 (0.8) and 4 (0.95) pass; class 0's quota of one keeps
        // image 0 and drops image 4.
        assert_eq!(select(&mut have, &quota, (&mut x, &mut y), batch, 0.75), 3);
        assert_eq!(
            (x.as_slice(), y.as_slice(), have),
            (&[10.0, 12.0][..], &[0, 1][..], [1, 1])
        );
        // At 0: every image passes, and only class 1 has room.
        assert_eq!(select(&mut have, &quota, (&mut x, &mut y), batch, 0.0), 5);
        assert_eq!((x, y, have), (vec![10.0, 12.0, 12.0, 13.0], vec![0, 1, 1, 1], [1, 3]));
        // Nothing to judge.
        let (mut x, mut y) = (Vec::new(), Vec::new());
        assert_eq!(select(&mut [0], &[1], (&mut x, &mut y), (&[], &[], &[]), 0.5), 0);
    }
}
