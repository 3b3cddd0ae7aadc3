//! Training the semi-supervised GAN in the workspace's epoch loop, and judging its
//! discriminator as a classifier.

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use gen_core::train::{
    CheckpointHeader, EpochLosses, EpochMetrics, EpochSteps, FlushingAdam, Observer, RunDir, StepAt, TrainConfig,
    Trainer, epoch_seed, load_module, load_resumable, optimizer_to_bytes, save_checkpoint,
};
use gen_core::{BatchSource, CoreError};
use gen_data::Dataset;

use super::SsganConfig;
use super::loss::{discriminator_loss, feature_matching, log_sum_exp};
use super::nets::{SsDiscriminator, SsGenerator};
use crate::error::ensure;
use crate::train::{DISCRIMINATOR, GENERATOR, Means, ema_update};
use crate::{GanError, Result};

/// The run folder's file of the discriminator's moving average.
pub const DISCRIMINATOR_EMA: &str = "discriminator_ema.ckpt";

/// Rows in the batch the discriminator's data-dependent initialisation sees (the reference
/// implementation's 500).
const INIT_ROWS: usize = 500;

/// Adam's ε (see [`SsganTrainer::fit`]).
const ADAM_EPSILON: f32 = 1e-4;

/// Rows per batch when judging a classifier.
const EVAL_BATCH: usize = 1000;

/// A class-balanced labelled subset of `data`: `n` row indices, `n / k` of each of the `k`
/// classes (the first `n mod k` classes one more), drawn at random with `seed`, in ascending
/// order.
///
/// # Errors
/// Unlabelled data, `n` below `k`, or a class with fewer rows than its share.
pub fn labelled_subset(data: &Dataset, n: usize, k: usize, seed: u64) -> Result<Vec<usize>> {
    let Some(labels) = data.labels() else {
        return Err(GanError::Invalid(format!(
            "{} has no labels to choose from",
            data.name()
        )));
    };
    ensure!(
        k >= 2 && n >= k,
        "a class-balanced labelled set needs at least one image per class: {n} labels for {k} classes"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::with_capacity(n);
    for class in 0..k {
        let want = n / k + usize::from(class < n % k);
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class as i64).collect();
        ensure!(
            rows.len() >= want,
            "{} has {} images of class {class}, fewer than the {want} labels asked of it",
            data.name(),
            rows.len()
        );
        rows.shuffle(&mut rng);
        chosen.extend_from_slice(&rows[..want]);
    }
    chosen.sort_unstable();
    Ok(chosen)
}

/// A discriminator judged as a classifier ([`evaluate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierEval {
    /// Images judged.
    pub n: usize,
    /// Images classified wrongly.
    pub errors: usize,
    /// `errors / n`.
    pub error: f64,
}

/// The images of `data` that `d` classifies wrongly (without noise).
///
/// # Errors
/// Unlabelled or empty data, or images of another width than the discriminator's.
pub fn evaluate<B: Backend>(d: &SsDiscriminator<B>, data: &Dataset, device: &B::Device) -> Result<ClassifierEval> {
    let Some(labels) = data.labels() else {
        return Err(GanError::Invalid(format!("{} has no labels", data.name())));
    };
    ensure!(!data.is_empty(), "{} is empty", data.name());
    ensure!(
        data.d() == d.d_input(),
        "{} has {} values per image; the discriminator takes {}",
        data.name(),
        data.d(),
        d.d_input()
    );
    let mut errors = 0usize;
    let rows: Vec<usize> = (0..data.len()).collect();
    for chunk in rows.chunks(EVAL_BATCH) {
        let x = BatchSource::<B>::batch(data, chunk, device).x;
        let predicted: Vec<i64> = d
            .predict(x)
            .into_data()
            .convert::<i64>()
            .to_vec()
            .expect("integer predictions");
        errors += chunk.iter().zip(&predicted).filter(|&(&i, &p)| labels[i] != p).count();
    }
    Ok(ClassifierEval {
        n: data.len(),
        errors,
        error: errors as f64 / data.len() as f64,
    })
}

/// What [`SsganTrainer::fit`] returns.
pub struct FittedSsgan<B: AutodiffBackend> {
    /// The generator after the last epoch.
    pub generator: SsGenerator<B>,
    /// The discriminator after the last epoch.
    pub discriminator: SsDiscriminator<B>,
    /// Its moving average, when configured.
    pub ema: Option<SsDiscriminator<B::InnerBackend>>,
    /// One row per epoch, as written to `metrics.csv`.
    pub history: Vec<EpochMetrics>,
}

impl<B: AutodiffBackend> FittedSsgan<B> {
    /// The classifier to use: the moving average when there is one, else the discriminator.
    pub fn classifier(&self) -> SsDiscriminator<B::InnerBackend> {
        self.ema.clone().unwrap_or_else(|| self.discriminator.valid())
    }
}

/// Trains a [`SsGenerator`] against a [`SsDiscriminator`] in the epoch loop every trainer
/// shares ([`Trainer::run_epochs`]): an epoch is a pass over the unlabelled images; each batch
/// of them comes with a batch of labelled images, drawn in turn from passes over the labelled
/// set shuffled afresh (the reference implementation's schedule). Each step is one Adam step
/// of the discriminator on [`discriminator_loss`], then one of the generator on
/// [`feature_matching`] against the frozen discriminator, then the moving average.
pub struct SsganTrainer<'a> {
    trainer: Trainer<'a>,
    ss: SsganConfig,
}

impl<'a> SsganTrainer<'a> {
    /// A trainer for `ss` with `train`'s epochs, batch size, learning rate (both networks), Adam
    /// betas, schedule and seed.
    ///
    /// # Errors
    /// If either configuration is invalid.
    pub fn new(train: TrainConfig, ss: SsganConfig) -> gen_core::Result<Self> {
        let trainer = Trainer::new(train)?;
        ss.validate()?;
        Ok(Self { trainer, ss })
    }

    /// Writes checkpoints and metrics into `run`.
    pub fn with_run_dir(mut self, run: RunDir) -> Self {
        self.trainer = self.trainer.with_run_dir(run);
        self
    }

    /// Continues from the run folder's checkpoints, if it has them.
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.trainer = self.trainer.with_resume(resume);
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: impl Observer + 'a) -> Self {
        self.trainer = self.trainer.with_observer(observer);
        self
    }

    /// Trains on the `unlabelled` images and the `labelled` ones (which must have labels
    /// below the configured class count; they may be among the unlabelled too, as in the
    /// paper), reporting the error on `valid` after each epoch when given. The discriminator
    /// is first initialised on up to 500 unlabelled images (not when resuming).
    ///
    /// # Errors
    /// - Empty sets, unlabelled `labelled` data, images of another width than the networks'.
    /// - [`CoreError::NonFiniteLoss`] when a loss turns NaN or infinite; the files of the last
    ///   completed epoch are left as they were.
    /// - When resuming: checkpoint errors, and [`CoreError::CheckpointMismatch`] when the
    ///   networks' files hold different epochs.
    #[allow(clippy::too_many_arguments)]
    pub fn fit<B: AutodiffBackend>(
        &mut self,
        generator: SsGenerator<B>,
        discriminator: SsDiscriminator<B>,
        unlabelled: &Dataset,
        labelled: &Dataset,
        valid: Option<&Dataset>,
        run_config: &serde_json::Value,
        device: &B::Device,
    ) -> Result<FittedSsgan<B>> {
        let ss = self.ss.clone();
        ensure!(
            !unlabelled.is_empty() && !labelled.is_empty(),
            "the semi-supervised GAN needs unlabelled images and labelled ones ({} and {})",
            unlabelled.len(),
            labelled.len()
        );
        for set in std::iter::once(unlabelled)
            .chain(std::iter::once(labelled))
            .chain(valid)
        {
            ensure!(
                set.d() == ss.d_input,
                "{} has {} values per image; the networks are built for {}",
                set.name(),
                set.d(),
                ss.d_input
            );
        }
        for set in std::iter::once(labelled).chain(valid) {
            let Some(labels) = set.labels() else {
                return Err(GanError::Invalid(format!("{} has no labels", set.name())));
            };
            if let Some(l) = labels.iter().find(|&&l| l < 0 || l >= ss.n_classes as i64) {
                return Err(GanError::Invalid(format!(
                    "{} has the label {l}; the discriminator has classes 0 to {}",
                    set.name(),
                    ss.n_classes - 1
                )));
            }
        }
        let cfg = self.trainer.config().clone();
        B::seed(device, cfg.seed);
        let init_rows: Vec<usize> = (0..unlabelled.len().min(INIT_ROWS)).collect();
        let discriminator = discriminator.init_on(BatchSource::<B>::batch(unlabelled, &init_rows, device).x);
        // The reference implementation's Adam adds its 1e-8 under the square root; burn's adds
        // ε outside, so ε = 1e-4 is the same damping of parameters with tiny gradients.
        let adam = FlushingAdam {
            epsilon: ADAM_EPSILON,
            ..self.trainer.adam()
        };
        let mut steps = Steps {
            optim_g: adam.clone().init::<B, SsGenerator<B>>(),
            optim_d: adam.init::<B, SsDiscriminator<B>>(),
            ema: ss.ema.map(|_| discriminator.valid()),
            g: Some(generator),
            d: Some(discriminator),
            ss,
            cfg,
            unlabelled,
            labelled,
            valid,
            labelled_order: Vec::new(),
            ema_steps: 0,
            means: Means::default(),
            run_config: run_config.clone(),
        };
        let run = self.trainer.run_epochs(&mut steps, unlabelled.len(), device)?;
        Ok(FittedSsgan {
            generator: steps.g.expect("the generator between steps"),
            discriminator: steps.d.expect("the discriminator between steps"),
            ema: steps.ema,
            history: run.history,
        })
    }
}

/// [`SsganTrainer::fit`]'s steps.
struct Steps<'d, B: AutodiffBackend, OG, OD> {
    ss: SsganConfig,
    cfg: TrainConfig,
    unlabelled: &'d Dataset,
    labelled: &'d Dataset,
    valid: Option<&'d Dataset>,
    /// The networks, taken out for each step.
    g: Option<SsGenerator<B>>,
    d: Option<SsDiscriminator<B>>,
    ema: Option<SsDiscriminator<B::InnerBackend>>,
    optim_g: OG,
    optim_d: OD,
    /// This epoch's labelled rows, batch after batch: passes over the labelled set.
    labelled_order: Vec<usize>,
    /// Steps of the moving average so far, for its warm-up.
    ema_steps: usize,
    means: Means,
    run_config: serde_json::Value,
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// The mean probability of being real, D = Z/(Z + 1) = σ(lse), over rows of logits.
fn mean_p_real<B: Backend>(logits: Tensor<B, 2>) -> f64 {
    scalar(burn::tensor::activation::sigmoid(log_sum_exp(logits).detach()).mean())
}

impl<B, OG, OD> EpochSteps<B> for Steps<'_, B, OG, OD>
where
    B: AutodiffBackend,
    OG: Optimizer<SsGenerator<B>, B>,
    OD: Optimizer<SsDiscriminator<B>, B>,
{
    fn resume(&mut self, run: &RunDir, device: &B::Device) -> gen_core::Result<Option<(usize, usize)>> {
        if !run.file(GENERATOR).is_file() {
            return Ok(None);
        }
        let d = self.d.take().expect("discriminator");
        let (d, optim_d, dh) = load_resumable(d, self.optim_d.clone(), &run.file(DISCRIMINATOR), device)?;
        let g = self.g.take().expect("generator");
        let (g, optim_g, header) = load_resumable(g, self.optim_g.clone(), &run.file(GENERATOR), device)?;
        let same_epoch = |name: &str, epoch: usize| {
            if epoch == header.epoch {
                Ok(())
            } else {
                Err(CoreError::CheckpointMismatch {
                    path: run.file(name),
                    reason: format!(
                        "it holds epoch {epoch} and {GENERATOR} epoch {}: saving was cut short, so the run \
                         cannot be resumed consistently",
                        header.epoch
                    ),
                })
            }
        };
        same_epoch(DISCRIMINATOR, dh.epoch)?;
        if let Some(e) = self.ema.take() {
            let (e, h) = load_module(e, &run.file(DISCRIMINATOR_EMA), device)?;
            same_epoch(DISCRIMINATOR_EMA, h.epoch)?;
            self.ema = Some(e);
        }
        (self.g, self.d, self.optim_g, self.optim_d) = (Some(g), Some(d), optim_g, optim_d);
        self.ema_steps = header.global_step;
        Ok(Some((header.epoch, header.global_step)))
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.means = Means::default();
        // A stream of its own, so the unlabelled rows' shuffle stays the loop's.
        let mut rng = ChaCha8Rng::seed_from_u64(epoch_seed(self.cfg.seed, epoch) ^ 0x1abe_11ed);
        let n = self.unlabelled.len();
        self.labelled_order.clear();
        while self.labelled_order.len() < n {
            let mut pass: Vec<usize> = (0..self.labelled.len()).collect();
            pass.shuffle(&mut rng);
            self.labelled_order.extend(pass);
        }
    }

    fn step(&mut self, rows: &[usize], at: StepAt, device: &B::Device) -> gen_core::Result<f64> {
        let n = rows.len();
        let lr = self.cfg.lr_schedule.rate(self.cfg.learning_rate, at.global, at.total);
        let start = (at.index - 1) * self.cfg.batch_size;
        let lab_rows = &self.labelled_order[start..start + n];
        let x_unl = BatchSource::<B>::batch(self.unlabelled, rows, device).x;
        let lab = BatchSource::<B>::batch(self.labelled, lab_rows, device);
        let y = lab.y.expect("labelled rows carry labels");
        let g = self.g.take().expect("generator");
        let mut d = self.d.take().expect("discriminator");

        // The discriminator: labelled, unlabelled and (detached) fake rows in one pass.
        let fakes = g.sample(n, device);
        let all = Tensor::cat(vec![lab.x, x_unl.clone(), fakes.clone().detach()], 0);
        let (logits, _) = d.forward(all, true);
        let part = |i: usize| logits.clone().narrow(0, i * n, n);
        let (l_lab, l_unl, l_fake) = (part(0), part(1), part(2));
        let correct = l_lab
            .clone()
            .argmax(1)
            .flatten::<1>(0, 1)
            .equal(y.clone())
            .int()
            .sum()
            .into_scalar()
            .elem::<i64>();
        let (d_real, d_fake) = (mean_p_real(l_unl.clone()), mean_p_real(l_fake.clone()));
        let (loss, sup, unsup) = discriminator_loss(l_lab, y, l_unl, l_fake, self.ss.unlabelled_weight);
        let d_loss = scalar(loss.clone().detach());
        if !d_loss.is_finite() {
            return Err(at.non_finite(d_loss));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &d);
        d = self.optim_d.step(lr, d, grads);

        // The generator, against the frozen discriminator: only its own weights learn.
        let frozen = d.clone().no_grad();
        let (_, features) = frozen.forward(Tensor::cat(vec![x_unl, fakes], 0), true);
        let real_f = features.clone().narrow(0, 0, n).detach();
        let fake_f = features.narrow(0, n, n);
        let fm = feature_matching(real_f, fake_f);
        let g_loss = scalar(fm.clone().detach());
        if !g_loss.is_finite() {
            return Err(at.non_finite(g_loss));
        }
        let grads = GradientsParams::from_grads(fm.backward(), &g);
        let g = self.optim_g.step(lr, g, grads);

        if let (Some(decay), Some(e)) = (self.ss.ema, self.ema.take()) {
            // Warm-up: early averages forget the random initial weights quickly.
            self.ema_steps += 1;
            let warm = (1.0 + self.ema_steps as f64) / (10.0 + self.ema_steps as f64);
            self.ema = Some(ema_update(e, &d.valid(), decay.min(warm)));
        }
        let m = &mut self.means;
        m.add("d_loss", d_loss);
        m.add("d_supervised", scalar(sup));
        m.add("d_unsupervised", scalar(unsup));
        m.add("d_real", d_real);
        m.add("d_fake", d_fake);
        m.add("g_feature_matching", g_loss);
        m.add("labelled_accuracy", correct as f64 / n as f64);
        (self.g, self.d) = (Some(g), Some(d));
        Ok(m.get("d_loss"))
    }

    fn end_epoch(&mut self, _epoch: usize, device: &B::Device) -> gen_core::Result<EpochLosses> {
        let m = &self.means;
        let mut parts: Vec<(String, f64)> = [
            "d_supervised",
            "d_unsupervised",
            "d_real",
            "d_fake",
            "g_feature_matching",
            "labelled_accuracy",
        ]
        .into_iter()
        .map(|k| (k.to_string(), m.get(k)))
        .collect();
        if let Some(valid) = self.valid {
            let judge = |e: Result<f64>| e.map_err(|e| CoreError::Data(e.to_string()));
            let d = self.d.as_ref().expect("discriminator").valid();
            parts.push((
                "valid_error".into(),
                judge(evaluate(&d, valid, device).map(|e| e.error))?,
            ));
            if let Some(e) = &self.ema {
                parts.push((
                    "valid_error_ema".into(),
                    judge(evaluate(e, valid, device).map(|e| e.error))?,
                ));
            }
        }
        Ok(EpochLosses {
            train_loss: m.get("d_loss"),
            valid_loss: None,
            parts,
        })
    }

    fn save(&mut self, run: &RunDir, epoch: usize, global_step: usize) -> gen_core::Result<()> {
        let header = CheckpointHeader {
            epoch,
            global_step,
            config: self.run_config.clone(),
            ..Default::default()
        };
        // The generator last: on resuming, the others must hold its epoch.
        let d = self.d.as_ref().expect("discriminator");
        save_checkpoint(
            d,
            header.clone(),
            Some(optimizer_to_bytes(&self.optim_d)?),
            &run.file(DISCRIMINATOR),
        )?;
        if let Some(e) = &self.ema {
            save_checkpoint(e, header.clone(), None, &run.file(DISCRIMINATOR_EMA))?;
        }
        let g = self.g.as_ref().expect("generator");
        save_checkpoint(
            g,
            header,
            Some(optimizer_to_bytes(&self.optim_g)?),
            &run.file(GENERATOR),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augmentation::train_probe_classifier;
    use crate::test_util::TestAutodiffBackend;

    type A = TestAutodiffBackend;

    fn small(d_input: usize) -> SsganConfig {
        SsganConfig {
            d_hidden: vec![200, 100],
            d_latent: 32,
            g_hidden: vec![200],
            ..SsganConfig::new(d_input, 10)
        }
    }

    #[test]
    fn feature_matching_reaches_the_generator_only() {
        let device = Default::default();
        A::seed(&device, 1);
        let (g, d) = small(64).try_init::<A>(&device).unwrap();
        let x = Tensor::<A, 2>::random([16, 64], burn::tensor::Distribution::Default, &device);
        let fakes = g.sample(16, &device);
        let frozen = d.clone().no_grad();
        let (_, features) = frozen.forward(Tensor::cat(vec![x, fakes], 0), true);
        let fm = feature_matching(features.clone().narrow(0, 0, 16).detach(), features.narrow(0, 16, 16));
        let grads = fm.backward();
        let of_g = GradientsParams::from_grads(grads, &g);
        assert!(!of_g.is_empty(), "the generator learns");
        let grads = feature_matching(
            d.forward(Tensor::zeros([4, 64], &device), false).1,
            d.clone().no_grad().forward(g.sample(4, &device), false).1,
        )
        .backward();
        // Without the freeze the discriminator's weights would learn; frozen, none of them does.
        let frozen_d = d.clone().no_grad();
        let grads_frozen = feature_matching(
            frozen_d.forward(Tensor::ones([4, 64], &device), false).1.detach(),
            frozen_d.forward(g.sample(4, &device), false).1,
        )
        .backward();
        assert!(!GradientsParams::from_grads(grads, &d).is_empty());
        assert!(GradientsParams::from_grads(grads_frozen, &d).is_empty());
    }

    #[test]
    fn data_dependent_initialisation_standardises_every_unit() {
        use crate::ssgan::WnDense;
        use gen_core::nn::Activation;
        let device = Default::default();
        A::seed(&device, 2);
        let x = Tensor::<A, 2>::random([300, 64], burn::tensor::Distribution::Default, &device);
        let (layer, out) = WnDense::<A>::new(64, 20, 0.1, false, &device).init_on(x.clone());
        let again = layer.forward_activated(x, Activation::Identity).detach();
        let diff: f32 = (again.clone() - out).abs().max().into_scalar();
        assert!(diff < 1e-4, "the layer reproduces its initialisation's outputs: {diff}");
        let mean: Vec<f32> = again.clone().mean_dim(0).into_data().to_vec().unwrap();
        let var: Vec<f32> = (again.clone() - again.mean_dim(0))
            .powi_scalar(2)
            .mean_dim(0)
            .into_data()
            .to_vec()
            .unwrap();
        assert!(mean.iter().all(|m| m.abs() < 1e-4), "{mean:?}");
        assert!(var.iter().all(|v| (v - 1.0).abs() < 1e-3), "{var:?}");
        // A fixed scale gets no gradient; a learnt one does.
        for train_scale in [false, true] {
            let layer = WnDense::<A>::new(64, 20, 0.1, train_scale, &device);
            let y = layer.forward_activated(Tensor::ones([4, 64], &device), Activation::Relu);
            let grads = y.sum().backward();
            assert_eq!(layer.g.val().grad(&grads).is_some(), train_scale);
            assert!(layer.v.val().grad(&grads).is_some());
        }
        // The discriminator's initialisation sees its noise, so the noiseless logits spread less.
        let (_, d) = small(64).try_init::<A>(&device).unwrap();
        let x = Tensor::<A, 2>::random([300, 64], burn::tensor::Distribution::Default, &device);
        let logits = d.init_on(x.clone()).logits(x).detach();
        let var: f32 = (logits.clone() - logits.mean_dim(0))
            .powi_scalar(2)
            .mean()
            .into_scalar();
        assert!(var > 0.05 && var < 1.0, "{var}");
    }

    #[test]
    fn the_labelled_subset_is_balanced_seeded_and_refuses_too_few() {
        let digits = gen_data::digits().unwrap();
        let a = labelled_subset(&digits, 53, 10, 7).unwrap();
        assert_eq!(a, labelled_subset(&digits, 53, 10, 7).unwrap());
        assert_ne!(a, labelled_subset(&digits, 53, 10, 8).unwrap());
        let labels = digits.labels().unwrap();
        let per: Vec<usize> = (0..10).map(|c| a.iter().filter(|&&i| labels[i] == c).count()).collect();
        assert_eq!(per, [6, 6, 6, 5, 5, 5, 5, 5, 5, 5]);
        let e = labelled_subset(&digits, 5, 10, 0).unwrap_err().to_string();
        assert!(e.contains("5 labels for 10 classes"), "{e}");
        let e = labelled_subset(&digits.take(15), 20, 10, 0).unwrap_err().to_string();
        assert!(e.contains("fewer than the 2 labels"), "{e}");
    }

    /// On the embedded digits with 50 labels: the semi-supervised discriminator, trained with
    /// the other training images unlabelled, against the evaluation classifier trained on the
    /// 50 labelled images alone.
    #[test]
    fn with_fifty_labels_the_discriminator_beats_the_labels_only_classifier() {
        let device = Default::default();
        let digits = gen_data::digits().unwrap();
        let train_rows: Vec<usize> = (0..1400).collect();
        let test_rows: Vec<usize> = (1400..digits.len()).collect();
        let (train, test) = (digits.subset(&train_rows, "train"), digits.subset(&test_rows, "test"));
        let labelled = train.subset(&labelled_subset(&train, 50, 10, 0).unwrap(), "labelled");
        let ss = small(64);
        A::seed(&device, 0);
        let (g, d) = ss.try_init::<A>(&device).unwrap();
        let cfg = TrainConfig::default()
            .with_num_epochs(EPOCHS)
            .with_batch_size(100)
            .with_learning_rate(3e-3)
            .with_seed(0);
        let cfg = TrainConfig { beta_1: 0.5, ..cfg };
        let fitted = SsganTrainer::new(cfg, ss)
            .unwrap()
            .fit(g, d, &train, &labelled, Some(&test), &serde_json::Value::Null, &device)
            .unwrap();
        let ours = 1.0 - evaluate(&fitted.classifier(), &test, &device).unwrap().error;
        let (alone, _) = train_probe_classifier::<A>(&labelled, &test, 10, 3000, 0, None, &device).unwrap();
        eprintln!("semi-supervised {ours:.4}, labels alone {alone:.4}");
        assert!(
            ours > alone + 0.1,
            "semi-supervised accuracy {ours:.4} against {alone:.4} from the labels alone"
        );
    }

    const EPOCHS: usize = 30;
}
