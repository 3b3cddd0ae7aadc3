//! Adversarial training: alternating discriminator and generator phases, with the balance
//! diagnostics of every epoch.
//!
//! One iteration on a batch of real samples:
//! 1. **Discriminator phase** (every iteration): fakes are drawn from the generator and
//!    detached, so the discriminator's loss on real and fake samples reaches only the
//!    discriminator's weights; one Adam step on them (then weight clipping for the
//!    Wasserstein loss). With spectral normalisation, one power-iteration step first.
//! 2. **Generator phase** (every `n_critic`-th iteration): the discriminator is frozen (a copy
//!    that tracks no gradients) and scores this iteration's fakes; the generator's loss
//!    reaches only the generator's weights; one Adam step on them, then the moving average.

use std::collections::HashMap;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, ElementConversion, Int, Tensor};

use gen_core::train::{
    CheckpointHeader, EpochLosses, EpochMetrics, EpochSteps, Observer, Parallel, RunDir, Session, StepAt, TrainConfig,
    Trainer, Workers, load_module, load_resumable, optimizer_to_bytes, save_checkpoint,
};
use gen_core::{Batch, BatchSource, CoreError};

use crate::augment::DiffAugment;
use crate::config::GanConfig;
use crate::loss::GanLoss;
use crate::nets::{Discriminator, Generator};

/// A generator as the adversarial trainer sees it: what it makes from a batch of real samples.
pub trait Adversary<B: Backend> {
    /// The fakes for this batch of real samples, and the labels the discriminator sees with
    /// both the real and the fake samples (`None` for an unconditional model).
    fn fakes(&self, batch: &Batch<B>) -> (Tensor<B, 2>, Option<Tensor<B, 1, Int>>);

    /// A loss added to the generator's adversarial loss (a super-resolution model's content
    /// loss), with its name; `None` for a plain GAN.
    fn content_loss(&self, _fakes: Tensor<B, 2>, _batch: &Batch<B>) -> Option<Tensor<B, 1>> {
        None
    }

    /// The weight of the adversarial term in the generator's loss (1 for a plain GAN).
    fn adversarial_weight(&self) -> f64 {
        1.0
    }
}

impl<B: Backend> Adversary<B> for Generator<B> {
    /// Standard normal noise; a conditional generator makes each fake with the label of the
    /// real sample in its place, so both sides see the data's class balance.
    ///
    /// # Panics
    /// If a conditional generator's batch has no labels.
    ///
    /// A source-conditioned generator's batch holds pairs (source, partner) side by side, as
    /// [`crate::SourcePairs`] makes them: its fakes are (source, generated from the source),
    /// so the discriminator compares pairs with pairs.
    fn fakes(&self, batch: &Batch<B>) -> (Tensor<B, 2>, Option<Tensor<B, 1, Int>>) {
        let [n, width] = batch.x.dims();
        let z = Tensor::random([n, self.d_latent()], Distribution::Normal(0.0, 1.0), &batch.x.device());
        let y = if self.n_classes() > 0 {
            Some(batch.y.clone().expect("a conditional GAN needs labelled data"))
        } else {
            None
        };
        if self.is_source_conditioned() {
            let source = batch.x.clone().narrow(1, 0, width / 2);
            let fake = self.forward_from(z, y.clone(), Some(source.clone()));
            return (Tensor::cat(vec![source, fake], 1), y);
        }
        (self.forward(z, y.clone()), y)
    }
}

/// What a monitor reports after an epoch: extra metric columns and, when it can tell, how many
/// distinct modes (classes) the samples cover out of how many.
#[derive(Debug, Clone, Default)]
pub struct EpochReport {
    /// Extra columns for `metrics.csv`.
    pub columns: Vec<(String, f64)>,
    /// `(modes, classes)`: classes holding a fair share of the samples, and the class count.
    pub modes: Option<(usize, usize)>,
}

/// The result of [`GanTrainer::fit`].
pub struct FittedGan<B: AutodiffBackend, G: AutodiffModule<B>> {
    /// The generator after the last epoch.
    pub generator: G,
    /// The discriminator after the last epoch.
    pub discriminator: Discriminator<B>,
    /// The moving average of the generator's weights, when configured.
    pub ema: Option<G::InnerModule>,
    /// One row per epoch, as written to `metrics.csv`.
    pub history: Vec<EpochMetrics>,
    /// The balance warnings raised, in order ("epoch N: …").
    pub warnings: Vec<String>,
}

/// Trains a generator against a [`Discriminator`], in the epoch loop every trainer shares
/// ([`Trainer::run_epochs`]).
pub struct GanTrainer<'a> {
    trainer: Trainer<'a>,
    gan: GanConfig,
    /// This worker of a data-parallel run ([`GanTrainer::with_data_parallel`]).
    parallel: Option<Parallel>,
}

/// Running means over an epoch.
#[derive(Default)]
pub(crate) struct Means {
    sums: Vec<(&'static str, f64, usize)>,
}

impl Means {
    pub(crate) fn add(&mut self, name: &'static str, v: f64) {
        match self.sums.iter_mut().find(|(n, _, _)| *n == name) {
            Some(e) => {
                e.1 += v;
                e.2 += 1;
            }
            None => self.sums.push((name, v, 1)),
        }
    }

    pub(crate) fn get(&self, name: &str) -> f64 {
        self.sums
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(f64::NAN, |(_, s, c)| s / *c as f64)
    }
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// The L2 norm of the gradients `grads` holds for `module`'s parameters.
pub fn grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(module: &M, grads: &GradientsParams) -> f64 {
    struct Norm<'g> {
        grads: &'g GradientsParams,
        sum: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.sum += g.powi_scalar(2).sum().into_scalar().elem::<f64>();
            }
        }
    }
    let mut v = Norm { grads, sum: 0.0 };
    module.visit(&mut v);
    v.sum.sqrt()
}

/// Replaces each parameter of `target` by `decay · target + (1 − decay) · source` for the
/// parameter of `source` with the same id (parameters without a partner are kept).
pub fn ema_update<B: Backend, M: Module<B>>(target: M, source: &M, decay: f64) -> M {
    struct Collect<B: Backend>(HashMap<ParamId, Tensor<B, 1>>);
    impl<B: Backend> ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.insert(param.id, param.val().flatten(0, D - 1));
        }
    }
    struct Blend<B: Backend> {
        source: HashMap<ParamId, Tensor<B, 1>>,
        decay: f64,
    }
    impl<B: Backend> ModuleMapper<B> for Blend<B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let Some(src) = self.source.remove(&param.id) else {
                return param;
            };
            let decay = self.decay;
            param.map(|t| {
                let shape = t.shape();
                t.mul_scalar(decay) + src.reshape(shape).mul_scalar(1.0 - decay)
            })
        }
    }
    let mut c = Collect(HashMap::new());
    source.visit(&mut c);
    target.map(&mut Blend { source: c.0, decay })
}

impl<'a> GanTrainer<'a> {
    /// A trainer for `gan`'s loss and schedule with `train`'s epochs, batch size, generator
    /// learning rate, Adam betas and seed.
    ///
    /// # Errors
    /// If either configuration is invalid.
    pub fn new(train: TrainConfig, gan: GanConfig) -> gen_core::Result<Self> {
        let trainer = Trainer::new(train)?;
        gan.validate()?;
        Ok(Self {
            trainer,
            gan,
            parallel: None,
        })
    }

    /// Makes [`GanTrainer::fit`] one worker of a data-parallel run (see gen-core's
    /// `DataParallel`): it trains both networks on its share of every batch, weighting each
    /// phase's loss by that share and summing the gradients with the other workers' before each
    /// network's step, so every worker keeps the same weights. Every worker must be given the
    /// same networks, data, configuration and seed; give the run folder to one of them (rank 0)
    /// and a monitor to that one alone. The generator's noise is drawn per worker for its own
    /// rows, from the backend's one generator in whatever order the workers reach it, so a
    /// data-parallel GAN run is not bit-reproducible; batch-norm statistics are per worker.
    #[cfg(feature = "collective")]
    pub fn with_data_parallel(mut self, parallel: gen_core::train::DataParallel) -> Self {
        self.parallel = Some(parallel);
        self
    }

    /// Writes `generator.ckpt` and `discriminator.ckpt` (each with its Adam state and the
    /// epoch), `generator_ema.ckpt` and `metrics.csv` into `run` after every epoch.
    pub fn with_run_dir(mut self, run: RunDir) -> Self {
        self.trainer = self.trainer.with_run_dir(run);
        self
    }

    /// Continues from the run folder's checkpoints, if it has any: the networks, the moving
    /// average, both Adam states and the step count are restored and training goes on from the
    /// next epoch. Every epoch's random draws depend on the seed and the epoch alone, so a
    /// resumed run ends with the same weights as one that was never interrupted.
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.trainer = self.trainer.with_resume(resume);
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: impl Observer + 'a) -> Self {
        self.trainer = self.trainer.with_observer(observer);
        self
    }

    /// Trains `generator` against `discriminator` on `data`.
    ///
    /// After every epoch `monitor` gets the epoch and the generator to judge (the moving
    /// average when there is one); its columns join the metrics and its mode count feeds the
    /// collapse warning. `|_, _| Ok(EpochReport::default())` judges nothing.
    ///
    /// # Errors
    /// - [`CoreError::NonFiniteLoss`] when either loss turns NaN or infinite; the files of the
    ///   last completed epoch are left as they were.
    /// - [`CoreError::Data`] for an empty data set, samples of another width than `gan.image`,
    ///   unlabelled data for a conditional GAN, an `n_critic` above the steps of an epoch, I/O
    ///   errors from the run folder, and a monitor's error.
    /// - When resuming: checkpoint errors, and [`CoreError::CheckpointMismatch`] when the
    ///   networks' checkpoints hold different epochs (a save was interrupted) or no Adam state
    ///   (written before resuming existed).
    pub fn fit<B, G, S, F>(
        &mut self,
        generator: G,
        discriminator: Discriminator<B>,
        data: &S,
        run_config: &serde_json::Value,
        device: &B::Device,
        monitor: F,
    ) -> gen_core::Result<FittedGan<B, G>>
    where
        B: AutodiffBackend,
        G: AutodiffModule<B> + Adversary<B>,
        S: BatchSource<B> + ?Sized,
        F: FnMut(usize, &G::InnerModule) -> Result<EpochReport, String>,
    {
        let cfg = self.trainer.config().clone();
        let gan = self.gan.clone();
        let n = data.num_samples();
        if n == 0 {
            return Err(CoreError::Data("the training set is empty".into()));
        }
        let image = gan.discriminator_image();
        if data.d_input() != image.numel() {
            return Err(CoreError::Data(format!(
                "the training samples have {} values each, but the GAN is configured for {}x{}x{} images \
                 ({} values{})",
                data.d_input(),
                image.channels,
                image.height,
                image.width,
                image.numel(),
                if gan.source_conditioned {
                    ": pairs of a source and an image, as SourcePairs makes them"
                } else {
                    ""
                }
            )));
        }
        if let Some(k) = gan.n_classes
            && data.batch(&[0], device).y.is_none()
        {
            return Err(CoreError::Data(format!(
                "a conditional GAN ({k} classes) needs labelled training data, and this set has no labels"
            )));
        }
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        if gan.n_critic > steps_per_epoch {
            return Err(CoreError::Data(format!(
                "n_critic {} is more than the {steps_per_epoch} steps of an epoch ({n} samples in batches of {}): \
                 the generator would go whole epochs without a step; lower n_critic or the batch size",
                gan.n_critic, cfg.batch_size
            )));
        }
        // Workers join the collective and fork both networks (gen-core's Session).
        let session = Session::<B>::start(self.parallel.as_ref(), n, cfg.batch_size, device)?;
        let (generator, discriminator) = (session.fork(generator, device), session.fork(discriminator, device));
        let adv = generator.adversarial_weight();
        let mut steps = Adversarial {
            parallel: self.parallel.clone(),
            optim_g: self.trainer.adam().init::<B, G>(),
            optim_d: self.trainer.adam().init::<B, Discriminator<B>>(),
            ema: gan.ema.map(|_| generator.valid()),
            g: Some(generator),
            d: Some(discriminator),
            cfg,
            gan,
            data,
            adv,
            g_steps: 0,
            g_losses: Vec::new(),
            warnings: Vec::new(),
            means: Means::default(),
            monitor,
            run_config: run_config.clone(),
        };
        let run = self.trainer.run_epochs(&mut steps, n, device)?;
        session.leave();
        Ok(FittedGan {
            generator: steps.g.expect("the generator between steps"),
            discriminator: steps.d.expect("the discriminator between steps"),
            ema: steps.ema,
            history: run.history,
            warnings: steps.warnings,
        })
    }
}

/// [`GanTrainer::fit`]'s steps: an iteration is a discriminator phase and, every `n_critic`-th
/// time, a generator phase and the moving average; an epoch ends with the monitor's report and
/// the balance warnings.
struct Adversarial<'d, B: AutodiffBackend, G: AutodiffModule<B>, S: ?Sized, OG, OD, F> {
    /// This worker of a data-parallel run.
    parallel: Option<Parallel>,
    cfg: TrainConfig,
    gan: GanConfig,
    data: &'d S,
    /// The networks, taken out for each phase.
    g: Option<G>,
    d: Option<Discriminator<B>>,
    ema: Option<G::InnerModule>,
    optim_g: OG,
    optim_d: OD,
    /// The weight of the adversarial term (0: a super-resolution model trained on content alone,
    /// whose discriminator never steps).
    adv: f64,
    /// Generator steps so far, for the average's warm-up.
    g_steps: usize,
    /// The generator's loss by epoch, for the warning that the discriminator wins.
    g_losses: Vec<f64>,
    warnings: Vec<String>,
    /// This epoch's running means.
    means: Means,
    monitor: F,
    run_config: serde_json::Value,
}

impl<B, G, S, OG, OD, F> EpochSteps<B> for Adversarial<'_, B, G, S, OG, OD, F>
where
    B: AutodiffBackend,
    G: AutodiffModule<B> + Adversary<B>,
    S: BatchSource<B> + ?Sized,
    OG: Optimizer<G, B>,
    OD: Optimizer<Discriminator<B>, B>,
    F: FnMut(usize, &G::InnerModule) -> Result<EpochReport, String>,
{
    fn resume(&mut self, run: &RunDir, device: &B::Device) -> gen_core::Result<Option<(usize, usize)>> {
        if !run.file(GENERATOR).is_file() {
            return Ok(None);
        }
        let resumed = resume_from(
            run,
            self.g.take().expect("generator"),
            self.d.take().expect("discriminator"),
            self.ema.take(),
            // Fresh optimisers, without state yet: their clones are cheap.
            self.optim_g.clone(),
            self.optim_d.clone(),
            self.adv > 0.0,
            device,
        )?;
        let (g, d, ema, optim_g, optim_d) = resumed.state;
        (self.g, self.d, self.ema, self.optim_g, self.optim_d) = (Some(g), Some(d), ema, optim_g, optim_d);
        self.g_losses = past_g_losses(run, resumed.epoch)?;
        self.g_steps = resumed.step / self.gan.n_critic;
        Ok(Some((resumed.epoch, resumed.step)))
    }

    fn begin_epoch(&mut self, _epoch: usize) {
        self.means = Means::default();
    }

    fn step(&mut self, rows: &[usize], at: StepAt, device: &B::Device) -> gen_core::Result<f64> {
        let (gan, cfg, m) = (&self.gan, &self.cfg, &mut self.means);
        let step = at.global + 1;
        let shared = Workers::of(self.parallel.as_ref(), rows.len());
        let rows = shared.rows(rows);
        let batch = self.data.batch(rows, device);
        let mut g = self.g.take().expect("generator");
        let g_phase = step.is_multiple_of(gan.n_critic);
        let (fakes, labels) = if g_phase {
            g.fakes(&batch)
        } else {
            g.clone().no_grad().fakes(&batch)
        };
        if self.adv > 0.0 {
            let lr = cfg.lr_schedule.rate(gan.lr_discriminator, step - 1, at.total);
            let d = self.d.take().expect("discriminator");
            let out = discriminator_phase(
                gan,
                d,
                &g,
                &mut self.optim_d,
                lr,
                &batch,
                fakes.clone(),
                labels.clone(),
                shared,
            )?;
            debug_assert_eq!(out.generator_params_reached, 0, "fakes must be detached");
            self.d = Some(out.discriminator);
            let this = stat(&out.stats, "d_loss");
            for (k, v) in out.stats {
                m.add(k, v);
            }
            let judged = shared.judged::<B::InnerBackend>(m.get("d_loss"), this, device)?;
            if !judged.is_finite() {
                return Err(at.non_finite(judged));
            }
        }
        if g_phase {
            let lr = cfg.lr_schedule.rate(cfg.learning_rate, step - 1, at.total);
            let d = self.d.as_ref().expect("discriminator");
            let out = generator_phase(gan, g, d, &mut self.optim_g, lr, &batch, fakes, labels, shared)?;
            debug_assert_eq!(out.discriminator_params_reached, 0, "D must be frozen");
            g = out.generator;
            let this = stat(&out.stats, "g_loss");
            for (k, v) in out.stats {
                m.add(k, v);
            }
            let judged = shared.judged::<B::InnerBackend>(m.get("g_loss"), this, device)?;
            if !judged.is_finite() {
                return Err(at.non_finite(judged));
            }
            if let (Some(decay), Some(e)) = (gan.ema, self.ema.take()) {
                // Warm-up: early averages forget the random initial weights quickly.
                self.g_steps += 1;
                let warm = (1.0 + self.g_steps as f64) / (10.0 + self.g_steps as f64);
                self.ema = Some(ema_update(e, &g.valid(), decay.min(warm)));
            }
        }
        self.g = Some(g);
        Ok(if self.adv > 0.0 {
            m.get("d_loss")
        } else {
            m.get("content")
        })
    }

    fn end_epoch(&mut self, epoch: usize, _device: &B::Device) -> gen_core::Result<EpochLosses> {
        let (gan, m, adv) = (&self.gan, &self.means, self.adv);
        let d_cols = ["d_real", "d_fake", "grad_norm_d"].into_iter().filter(|_| adv > 0.0);
        let mut parts: Vec<(String, f64)> = ["g_loss", "grad_norm_g"]
            .into_iter()
            .chain(d_cols)
            .chain(
                matches!(gan.loss, GanLoss::WassersteinGp { .. })
                    .then_some("penalty")
                    .filter(|_| adv > 0.0),
            )
            .chain(m.sums.iter().any(|(k, _, _)| *k == "content").then_some("content"))
            .map(|k| (k.to_string(), m.get(k)))
            .collect();
        let judged = match &self.ema {
            Some(e) => e.clone(),
            None => self.g.as_ref().expect("generator").valid(),
        };
        let report = (self.monitor)(epoch, &judged).map_err(CoreError::Data)?;
        parts.extend(report.columns.iter().cloned());
        // Balance warnings.
        self.g_losses.push(m.get("g_loss"));
        let d_wins = adv > 0.0 && discriminator_wins(&gan.loss, m.get("d_fake"), &self.g_losses);
        if d_wins {
            self.warnings.push(format!(
                "epoch {epoch}: the discriminator wins outright (mean D(G(z)) = {:.3}, generator loss rising \
                 for 3 epochs); try a lower discriminator rate, spectral norm or the hinge loss",
                m.get("d_fake")
            ));
        }
        let collapsed = report
            .modes
            .filter(|&(modes, classes)| collapse_suspected(modes, classes));
        if let Some((modes, classes)) = collapsed {
            self.warnings.push(format!(
                "epoch {epoch}: mode collapse suspected: the samples cover {modes} of {classes} classes"
            ));
        }
        if adv > 0.0 {
            parts.push(("warn_d_wins".into(), f64::from(u8::from(d_wins))));
            parts.push(("warn_collapse".into(), f64::from(u8::from(collapsed.is_some()))));
        }
        Ok(EpochLosses {
            train_loss: if adv > 0.0 { m.get("d_loss") } else { m.get("content") },
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
        // The generator last: on resuming, the others must hold its epoch, so a save cut short
        // is detected, not silently mixed.
        if self.adv > 0.0 {
            let state = optimizer_to_bytes(&self.optim_d)?;
            let d = self.d.as_ref().expect("discriminator");
            save_checkpoint(d, header.clone(), Some(state), &run.file(DISCRIMINATOR))?;
        }
        if let Some(e) = &self.ema {
            save_checkpoint(e, header.clone(), None, &run.file(GENERATOR_EMA))?;
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

/// Whether the discriminator wins outright after an epoch: its mean output on the fakes,
/// `d_fake` (as [`GanLoss::display`] shows it), is past the loss's
/// [`outright_rejection`](GanLoss::outright_rejection) while the generator's loss rose over the
/// last three epochs (`g_losses`, one per epoch, oldest first, ending with this one's). Never for
/// the Wasserstein losses.
pub fn discriminator_wins(loss: &GanLoss, d_fake: f64, g_losses: &[f64]) -> bool {
    let Some(limit) = loss.outright_rejection() else {
        return false;
    };
    let rising = match g_losses {
        [.., a, b, c] => a < b && b < c,
        _ => false,
    };
    d_fake < limit && rising
}

/// Whether the samples suggest mode collapse: fewer than 70 % of the `classes` hold a fair
/// share of them (`modes`, as the evaluation classifier counts them).
pub fn collapse_suspected(modes: usize, classes: usize) -> bool {
    modes * 10 < classes * 7
}

/// The generator's checkpoint in a run folder (with its Adam state).
pub const GENERATOR: &str = "generator.ckpt";
/// The discriminator's checkpoint in a run folder (with its Adam state).
pub const DISCRIMINATOR: &str = "discriminator.ckpt";
/// The moving average of the generator's weights in a run folder.
pub const GENERATOR_EMA: &str = "generator_ema.ckpt";

/// What [`resume_from`] restores.
struct Resumed<B: AutodiffBackend, G: AutodiffModule<B>, OG, OD> {
    state: (G, Discriminator<B>, Option<G::InnerModule>, OG, OD),
    epoch: usize,
    step: usize,
}

/// Loads the networks, the moving average and both Adam states of `run`'s last epoch, checking
/// that every file holds that epoch.
#[allow(clippy::too_many_arguments)] // the trainer's state, taken apart and put back
fn resume_from<B, G, OG, OD>(
    run: &RunDir,
    g: G,
    d: Discriminator<B>,
    ema: Option<G::InnerModule>,
    optim_g: OG,
    optim_d: OD,
    adversarial: bool,
    device: &B::Device,
) -> gen_core::Result<Resumed<B, G, OG, OD>>
where
    B: AutodiffBackend,
    G: AutodiffModule<B>,
    OG: Optimizer<G, B>,
    OD: Optimizer<Discriminator<B>, B>,
{
    let (g, optim_g, header) = load_resumable(g, optim_g, &run.file(GENERATOR), device)?;
    let same_epoch = |name: &str, epoch: usize| {
        if epoch == header.epoch {
            Ok(())
        } else {
            Err(CoreError::CheckpointMismatch {
                path: run.file(name),
                reason: format!(
                    "it holds epoch {epoch} and {GENERATOR} epoch {}: saving was cut short, so the run \
                     cannot be resumed consistently (train it anew, or judge the saved generator as it is)",
                    header.epoch
                ),
            })
        }
    };
    let (d, optim_d) = if adversarial {
        let (d, o, h) = load_resumable(d, optim_d, &run.file(DISCRIMINATOR), device)?;
        same_epoch(DISCRIMINATOR, h.epoch)?;
        (d, o)
    } else {
        (d, optim_d)
    };
    let ema = match ema {
        Some(e) => {
            let (e, h) = load_module(e, &run.file(GENERATOR_EMA), device)?;
            same_epoch(GENERATOR_EMA, h.epoch)?;
            Some(e)
        }
        None => None,
    };
    Ok(Resumed {
        state: (g, d, ema, optim_g, optim_d),
        epoch: header.epoch,
        step: header.global_step,
    })
}

/// The generator's loss of epochs 1 to `epochs` from `run`'s metrics.csv.
fn past_g_losses(run: &RunDir, epochs: usize) -> gen_core::Result<Vec<f64>> {
    let log = run.metrics();
    if !log.path().is_file() {
        return Ok(Vec::new());
    }
    let (header, rows) = log.read()?;
    let (Some(epoch), Some(col)) = (
        header.iter().position(|h| h == "epoch"),
        header.iter().position(|h| h == "g_loss"),
    ) else {
        return Ok(Vec::new());
    };
    // By the epoch column, not the row count: the trainer truncates rows past `epochs` only
    // after resuming has read them.
    Ok(rows
        .iter()
        .filter(|r| r.get(epoch).is_some_and(|&e| e <= epochs as f64))
        .filter_map(|r| r.get(col).copied())
        .collect())
}

/// A phase's statistic by name.
fn stat(stats: &[(&'static str, f64)], name: &str) -> f64 {
    stats.iter().find(|(k, _)| *k == name).map_or(f64::NAN, |s| s.1)
}

/// What [`discriminator_phase`] returns.
pub struct DiscriminatorStep<B: AutodiffBackend> {
    /// The discriminator after its Adam step (and clipping).
    pub discriminator: Discriminator<B>,
    /// `d_loss`, `d_real`, `d_fake`, `grad_norm_d` (and `penalty`).
    pub stats: Vec<(&'static str, f64)>,
    /// How many of the generator's parameters the discriminator's loss reached (0: the fakes
    /// were detached).
    pub generator_params_reached: usize,
}

/// The discriminator phase: `gan.loss` on the real `batch` and the detached `fakes` (with the
/// gradient penalty for WGAN-GP), one step of `optim` at rate `lr` on the discriminator's
/// weights only, then clipping for the Wasserstein loss. With `gan.spectral_norm`, one
/// power-iteration step first; with `gan.real_shift`, the real images are randomly shifted
/// first (the training set's augmentation); with `gan.augment`, the discriminator scores
/// augmented copies of both (the penalty stays on the images before DiffAugment). `generator`
/// is only inspected, to count the parameters the loss reached. `workers` is
/// [`Workers::ALONE`] outside a data-parallel run.
///
/// # Errors
/// [`CoreError::Collective`] when summing a data-parallel run's gradients fails; never alone.
#[allow(clippy::too_many_arguments)] // the phase's inputs, kept explicit for the tests
pub fn discriminator_phase<B, G, O>(
    gan: &GanConfig,
    d: Discriminator<B>,
    generator: &G,
    optim: &mut O,
    lr: f64,
    batch: &Batch<B>,
    fakes: Tensor<B, 2>,
    labels: Option<Tensor<B, 1, Int>>,
    workers: Workers<'_>,
) -> gen_core::Result<DiscriminatorStep<B>>
where
    B: AutodiffBackend,
    G: AutodiffModule<B>,
    O: Optimizer<Discriminator<B>, B>,
{
    let loss = &gan.loss;
    let d = if gan.spectral_norm { d.power_iteration() } else { d };
    let fakes = fakes.detach();
    let real_labels = batch.y.clone().filter(|_| labels.is_some());
    let real_x = shifted_reals(gan, batch.x.clone());
    let real = d.forward(augmented(gan, real_x.clone()), real_labels);
    let fake_out = d.forward(augmented(gan, fakes.clone()), labels.clone());
    let mut stats = vec![
        ("d_real", scalar(loss.display(real.clone().detach()).mean())),
        ("d_fake", scalar(loss.display(fake_out.clone().detach()).mean())),
    ];
    let mut total = loss.discriminator(real, fake_out);
    if let GanLoss::WassersteinGp { lambda } = *loss {
        let gp = gradient_penalty(&d, real_x, fakes, labels);
        stats.push(("penalty", scalar(gp.clone().detach())));
        total = total + gp.mul_scalar(lambda);
    }
    stats.push(("d_loss", scalar(total.clone().detach())));
    let mut grads = workers.weigh(total).backward();
    let generator_params_reached = GradientsParams::from_module(&mut grads, generator).len();
    let grads = workers.reduce::<B>(GradientsParams::from_grads(grads, &d))?;
    stats.push(("grad_norm_d", grad_norm(&d, &grads)));
    let mut d = optim.step(lr, d, grads);
    if let GanLoss::Wasserstein { clip } = *loss {
        d = d.clip(clip);
    }
    Ok(DiscriminatorStep {
        discriminator: d,
        stats,
        generator_params_reached,
    })
}

/// What [`generator_phase`] returns.
pub struct GeneratorStep<G> {
    /// The generator after its Adam step.
    pub generator: G,
    /// `g_loss`, `grad_norm_g` (and `content`).
    pub stats: Vec<(&'static str, f64)>,
    /// How many of the discriminator's parameters the generator's loss reached (0: frozen).
    pub discriminator_params_reached: usize,
}

/// The generator phase: a frozen copy of `d` (tracking no gradients) scores `fakes` (augmented
/// with `gan.augment`, differentiably), which must come from `g` with its graph; `gan.loss`
/// (weighted by [`Adversary::adversarial_weight`]) plus any content loss takes one step of
/// `optim` at rate `lr` on the generator's weights only. `workers` is [`Workers::ALONE`]
/// outside a data-parallel run.
///
/// # Errors
/// [`CoreError::Collective`] when summing a data-parallel run's gradients fails; never alone.
#[allow(clippy::too_many_arguments)] // the phase's inputs, kept explicit for the tests
pub fn generator_phase<B, G, O>(
    gan: &GanConfig,
    g: G,
    d: &Discriminator<B>,
    optim: &mut O,
    lr: f64,
    batch: &Batch<B>,
    fakes: Tensor<B, 2>,
    labels: Option<Tensor<B, 1, Int>>,
    workers: Workers<'_>,
) -> gen_core::Result<GeneratorStep<G>>
where
    B: AutodiffBackend,
    G: AutodiffModule<B> + Adversary<B>,
    O: Optimizer<G, B>,
{
    let adv = g.adversarial_weight();
    let mut stats = Vec::new();
    let mut total = fakes.clone().sum().mul_scalar(0.0);
    if adv > 0.0 {
        let frozen = d.clone().no_grad();
        let scored = frozen.forward(augmented(gan, fakes.clone()), labels);
        total = total + gan.loss.generator(scored).mul_scalar(adv);
    }
    if let Some(c) = g.content_loss(fakes, batch) {
        stats.push(("content", scalar(c.clone().detach())));
        total = total + c;
    }
    stats.push(("g_loss", scalar(total.clone().detach())));
    let mut grads = workers.weigh(total).backward();
    let discriminator_params_reached = GradientsParams::from_module(&mut grads, d).len();
    let grads = workers.reduce::<B>(GradientsParams::from_grads(grads, &g))?;
    stats.push(("grad_norm_g", grad_norm(&g, &grads)));
    Ok(GeneratorStep {
        generator: optim.step(lr, g, grads),
        stats,
        discriminator_params_reached,
    })
}

/// The real batch shifted by up to `gan.real_shift` pixels, each image on its own (zero fill).
fn shifted_reals<B: Backend>(gan: &GanConfig, x: Tensor<B, 2>) -> Tensor<B, 2> {
    if gan.real_shift == 0 {
        return x;
    }
    let shift = DiffAugment {
        translation: gan.real_shift,
        cutout: 0,
    };
    shift.apply(x, gan.image)
}

/// `x` as the discriminator sees it: augmented when `gan.augment` says so.
fn augmented<B: Backend>(gan: &GanConfig, x: Tensor<B, 2>) -> Tensor<B, 2> {
    match &gan.augment {
        Some(a) => a.apply(x, gan.discriminator_image()),
        None => x,
    }
}

/// The WGAN-GP penalty mean((‖∇ₓ D(x̂)‖ − 1)²) at x̂ = ε x + (1 − ε) x̃, ε ~ U[0, 1] per
/// sample, differentiable in D's weights.
///
/// # Shapes
/// - `real`, `fake`: `[batch, d_image]`; output `[1]`
pub fn gradient_penalty<B: Backend>(
    d: &Discriminator<B>,
    real: Tensor<B, 2>,
    fake: Tensor<B, 2>,
    labels: Option<Tensor<B, 1, Int>>,
) -> Tensor<B, 1> {
    let [n, _] = real.dims();
    let eps = Tensor::<B, 2>::random([n, 1], Distribution::Uniform(0.0, 1.0), &real.device());
    let mix = real * eps.clone() + fake * eps.neg().add_scalar(1.0);
    let (_, g) = d.forward_with_input_grad(mix, labels, true);
    let norm = g.expect("asked for").powi_scalar(2).sum_dim(1).add_scalar(1e-12).sqrt();
    norm.sub_scalar(1.0).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::DiffAugment;
    use crate::config::GanArchitecture;
    use crate::nets::cycle_labels;
    use crate::test_util::TestAutodiffBackend as AB;
    use gen_core::nn::ImageShape;
    use gen_core::testing::{Rows, param_values};
    use gen_core::train::FlushingAdam;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn real_images_are_shifted_each_by_at_most_the_shift() {
        let device = Default::default();
        let image = ImageShape::grey(8, 8);
        // One lit pixel at (3, 4) in each of 64 images: each moves by at most 2 in each
        // direction, with its value kept, and the shifts differ between images.
        let mut x = vec![0.0f32; 64 * 64];
        for s in 0..64 {
            x[s * 64 + 3 * 8 + 4] = 1.0;
        }
        let x = Tensor::<AB, 2>::from_data(burn::tensor::TensorData::new(x, [64, 64]), &device);
        let gan = GanConfig {
            real_shift: 2,
            ..GanConfig::dcgan(image)
        };
        let _lock = gen_core::testing::seeded::<AB>(&device, 7);
        let out = shifted_reals(&gan, x.clone()).into_data().to_vec::<f32>().unwrap();
        let mut positions = std::collections::HashSet::new();
        for row in out.chunks(64) {
            let lit: Vec<usize> = (0..64).filter(|&i| row[i] != 0.0).collect();
            assert_eq!(lit.len(), 1, "{row:?}");
            assert!((row[lit[0]] - 1.0).abs() < 1e-6);
            let (y, x) = (lit[0] / 8, lit[0] % 8);
            assert!(y.abs_diff(3) <= 2 && x.abs_diff(4) <= 2, "moved to ({y}, {x})");
            positions.insert(lit[0]);
        }
        assert!(positions.len() > 10, "only {} distinct shifts", positions.len());
        let unshifted = GanConfig::dcgan(image);
        let same = shifted_reals(&unshifted, x.clone())
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(same, x.into_data().to_vec::<f32>().unwrap());
    }

    fn configs() -> Vec<GanConfig> {
        let base = GanConfig::dcgan(ImageShape::grey(8, 8));
        vec![
            GanConfig {
                d_latent: 4,
                architecture: GanArchitecture::Dcgan {
                    channels: vec![4, 8],
                    batch_norm: true,
                },
                ..base.clone()
            },
            GanConfig {
                d_latent: 4,
                architecture: GanArchitecture::Mlp { hidden: vec![16] },
                n_classes: Some(3),
                spectral_norm: true,
                loss: GanLoss::Hinge,
                augment: Some(DiffAugment::standard(ImageShape::grey(8, 8))),
                ..base.clone()
            },
            GanConfig {
                d_latent: 4,
                architecture: GanArchitecture::Dcgan {
                    channels: vec![4],
                    batch_norm: false,
                },
                loss: GanLoss::WassersteinGp { lambda: 10.0 },
                real_shift: 1,
                ..base.clone()
            },
            GanConfig {
                d_latent: 4,
                architecture: GanArchitecture::Dcgan {
                    channels: vec![4, 8],
                    batch_norm: true,
                },
                n_classes: Some(3),
                loss: GanLoss::Hinge,
                spectral_norm: true,
                augment: Some(DiffAugment {
                    translation: 1,
                    cutout: 0,
                }),
                source_conditioned: true,
                ..base.clone()
            },
            GanConfig {
                d_latent: 4,
                architecture: GanArchitecture::Mlp { hidden: vec![8] },
                n_classes: Some(2),
                loss: GanLoss::Minimax,
                ..base.clone()
            },
            // Last: `clipping_bounds_the_critic_and_keeps_it_trainable` takes it.
            GanConfig {
                d_latent: 4,
                loss: GanLoss::Wasserstein { clip: 0.01 },
                architecture: GanArchitecture::Mlp { hidden: vec![8] },
                ..base
            },
        ]
    }

    /// `cfg`'s networks and a batch of 6 random 8x8 images, or pairs of them for a
    /// source-conditioned GAN (labelled when `cfg` is conditional).
    fn networks_and_batch<B: Backend>(
        cfg: &GanConfig,
        device: &B::Device,
    ) -> (Generator<B>, Discriminator<B>, Batch<B>) {
        let (g, d) = cfg.try_init::<B>(device).unwrap();
        let batch = Batch {
            x: Tensor::<B, 2>::random(
                [6, cfg.discriminator_image().numel()],
                Distribution::Uniform(0.0, 1.0),
                device,
            ),
            y: cfg.n_classes.map(|k| cycle_labels(6, k, device)),
        };
        (g, d, batch)
    }

    #[test]
    fn each_phase_moves_only_its_own_network() {
        let device = Default::default();
        for cfg in configs() {
            let (g, d, batch) = networks_and_batch::<AB>(&cfg, &device);
            let mut optim_d = FlushingAdam::default().init::<AB, Discriminator<AB>>();
            let mut optim_g = FlushingAdam::default().init::<AB, Generator<AB>>();
            let (fakes, labels) = g.fakes(&batch);
            let (g0, d0) = (param_values(&g), param_values(&d));

            // Each phase borrows the other network, so it cannot replace its weights; what is
            // checked is that its loss reaches none of them (no gradient flows into the other
            // network), with the count that `the_parameter_counts_see_a_leak` shows is not
            // always zero.
            let out = discriminator_phase(
                &cfg,
                d,
                &g,
                &mut optim_d,
                1e-2,
                &batch,
                fakes.clone(),
                labels.clone(),
                Workers::ALONE,
            )
            .unwrap();
            assert_eq!(out.generator_params_reached, 0, "{}", cfg.variant());
            let d1 = param_values(&out.discriminator);
            assert_ne!(
                d1,
                d0,
                "{}: the discriminator phase must move the discriminator",
                cfg.variant()
            );

            let step = generator_phase(
                &cfg,
                g,
                &out.discriminator,
                &mut optim_g,
                1e-2,
                &batch,
                fakes,
                labels,
                Workers::ALONE,
            )
            .unwrap();
            assert_eq!(step.discriminator_params_reached, 0, "{}", cfg.variant());
            assert_ne!(
                param_values(&step.generator),
                g0,
                "{}: the generator phase must move the generator",
                cfg.variant()
            );
        }
    }

    #[test]
    fn the_parameter_counts_see_a_leak() {
        // The control for the phases' zero counts: a loss through fakes that keep their graph,
        // scored by a discriminator that is not frozen, reaches both networks, and the same
        // count says so.
        let device = Default::default();
        for cfg in configs() {
            let (g, d, batch) = networks_and_batch::<AB>(&cfg, &device);
            let (fakes, labels) = g.fakes(&batch);
            let mut grads = d.forward(fakes, labels).mean().backward();
            let to_g = GradientsParams::from_module(&mut grads, &g).len();
            let to_d = GradientsParams::from_module(&mut grads, &d).len();
            assert!(
                to_g > 0 && to_d > 0,
                "{}: reached {to_g} of G, {to_d} of D",
                cfg.variant()
            );
        }
    }

    #[test]
    fn the_balance_warnings_fire_on_their_conditions() {
        let rising = [0.5, 0.7, 0.9];
        for loss in [GanLoss::NonSaturating, GanLoss::Minimax] {
            assert!(discriminator_wins(&loss, 0.01, &rising));
            assert!(
                discriminator_wins(&loss, 0.01, &[2.0, 0.5, 0.7, 0.9]),
                "only the last three count"
            );
            assert!(!discriminator_wins(&loss, 0.2, &rising), "D(G(z)) not near 0");
            assert!(!discriminator_wins(&loss, 0.01, &[0.5, 0.9, 0.7]), "loss not rising");
            assert!(!discriminator_wins(&loss, 0.01, &[0.5, 0.5, 0.9]), "flat, then rising");
            assert!(!discriminator_wins(&loss, 0.01, &[0.7, 0.9]), "two epochs only");
        }
        assert!(discriminator_wins(&GanLoss::Hinge, -1.3, &rising));
        assert!(!discriminator_wins(&GanLoss::Hinge, -0.6, &rising), "inside the margin");
        for loss in [
            GanLoss::Wasserstein { clip: 0.01 },
            GanLoss::WassersteinGp { lambda: 10.0 },
        ] {
            assert!(!discriminator_wins(&loss, -100.0, &rising), "no scale to judge by");
        }
        assert!(collapse_suspected(6, 10));
        assert!(!collapse_suspected(7, 10));
        assert!(!collapse_suspected(10, 10));
        assert!(collapse_suspected(1, 2));
    }

    fn tiny() -> GanConfig {
        GanConfig {
            image: ImageShape::grey(4, 4),
            d_latent: 4,
            architecture: GanArchitecture::Mlp { hidden: vec![8] },
            ..GanConfig::dcgan(ImageShape::grey(4, 4))
        }
    }

    #[test]
    fn a_monitor_that_counts_few_modes_raises_the_collapse_warning() {
        let device = Default::default();
        let cfg = tiny();
        let (g, d) = cfg.try_init::<AB>(&device).unwrap();
        let data = patterns();
        let fitted = GanTrainer::new(TrainConfig::default().with_num_epochs(2).with_batch_size(32), cfg)
            .unwrap()
            .fit(g, d, &data, &serde_json::json!({}), &device, |e, _| {
                Ok(EpochReport {
                    columns: Vec::new(),
                    modes: Some(if e == 2 { (3, 10) } else { (10, 10) }),
                })
            })
            .unwrap();
        let flag = |e: usize| {
            fitted.history[e - 1]
                .parts
                .iter()
                .find(|(k, _)| k == "warn_collapse")
                .unwrap()
                .1
        };
        assert_eq!((flag(1), flag(2)), (0.0, 1.0));
        assert_eq!(fitted.warnings.len(), 1, "{:?}", fitted.warnings);
        assert!(
            fitted.warnings[0].starts_with("epoch 2: mode collapse suspected: the samples cover 3 of 10"),
            "{:?}",
            fitted.warnings
        );
    }

    /// Every float parameter of `m`, in visiting order.
    #[cfg(feature = "collective")]
    fn weights<B: Backend, M: Module<B>>(m: &M) -> Vec<f32> {
        struct V(Vec<f32>);
        impl<B: Backend> ModuleVisitor<B> for V {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                self.0.extend(param.val().into_data().to_vec::<f32>().unwrap());
            }
        }
        let mut v = V(Vec::new());
        m.visit(&mut v);
        v.0
    }

    /// Two data-parallel workers, each on half of every batch, sum both networks' gradients:
    /// they end with the same generator and discriminator (their noise differs, their steps
    /// do not), and the networks did train.
    #[cfg(feature = "collective")]
    #[test]
    fn two_data_parallel_workers_keep_both_networks_equal() {
        let device = Default::default();
        let cfg = tiny();
        let (g, d) = cfg.try_init::<AB>(&device).unwrap();
        let data = patterns();
        let train = TrainConfig::default().with_num_epochs(3).with_batch_size(32);
        let fitted: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|rank| {
                    let (g, d, cfg, train, data) = (g.clone(), d.clone(), cfg.clone(), train.clone(), &data);
                    s.spawn(move || {
                        let f = GanTrainer::new(train, cfg)
                            .unwrap()
                            .with_data_parallel(gen_core::train::DataParallel::local(rank, 2))
                            .fit(g, d, data, &serde_json::json!({}), &Default::default(), |_, _| {
                                Ok(EpochReport::default())
                            })
                            .unwrap();
                        (weights(&f.generator.valid()), weights(&f.discriminator.valid()))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(fitted[0].0, fitted[1].0, "the workers' generators differ");
        assert_eq!(fitted[0].1, fitted[1].1, "the workers' discriminators differ");
        assert_ne!(fitted[0].0, weights(&g.valid()), "the generator did not train");
        assert_ne!(fitted[0].1, weights(&d.valid()), "the discriminator did not train");
    }

    #[test]
    fn inputs_the_trainer_cannot_use_are_errors_before_any_step() {
        let device = Default::default();
        let data = |d: usize| Rows {
            x: vec![0.5; 64 * d],
            d,
        };
        let fit = |cfg: GanConfig, data: Rows, batch: usize| {
            let (g, d) = cfg.try_init::<AB>(&device).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let run = RunDir::create(dir.path().join("run"), &serde_json::json!({}), false).unwrap();
            let err = GanTrainer::new(TrainConfig::default().with_num_epochs(1).with_batch_size(batch), cfg)
                .unwrap()
                .with_run_dir(run.clone())
                .fit(g, d, &data, &serde_json::json!({}), &device, |_, _| {
                    Ok(EpochReport::default())
                })
                .err()
                .expect("must fail")
                .to_string();
            assert!(!run.file(GENERATOR).exists(), "{err}: trained before failing");
            err
        };
        let e = fit(tiny(), data(15), 32);
        assert!(
            e.contains("15 values each") && e.contains("1x4x4 images (16 values)"),
            "{e}"
        );
        let conditional = GanConfig {
            n_classes: Some(2),
            ..tiny()
        };
        let e = fit(conditional, data(16), 32);
        assert!(e.contains("needs labelled training data"), "{e}");
        let slow = GanConfig { n_critic: 3, ..tiny() };
        let e = fit(slow, data(16), 32);
        assert!(
            e.contains("n_critic 3 is more than the 2 steps of an epoch (64 samples in batches of 32)"),
            "{e}"
        );
    }

    #[test]
    fn clipping_bounds_the_critic_and_keeps_it_trainable() {
        let device = Default::default();
        let cfg = configs().pop().unwrap();
        let (g, mut d, batch) = networks_and_batch::<AB>(&cfg, &device);
        let mut optim_d = FlushingAdam::default().init::<AB, Discriminator<AB>>();
        let mut last = param_values(&d);
        for step in 0..3 {
            let (fakes, labels) = g.fakes(&batch);
            let out =
                discriminator_phase(&cfg, d, &g, &mut optim_d, 1e-3, &batch, fakes, labels, Workers::ALONE).unwrap();
            d = out.discriminator;
            let now = param_values(&d);
            for (_, v) in &now {
                assert!(v.iter().all(|w| w.abs() <= 0.01 + 1e-7));
            }
            // Every step must still move the critic: clipping keeps the weights trainable.
            assert_ne!(now, last, "step {step} left the critic unchanged");
            let norm = out.stats.iter().find(|(k, _)| *k == "grad_norm_d").unwrap().1;
            assert!(norm > 0.0, "step {step}: no gradient reached the critic");
            last = now;
        }
    }

    #[test]
    fn ema_blends_by_parameter() {
        let device = Default::default();
        let cfg = configs().remove(1);
        let (g, _) = cfg.try_init::<crate::test_util::TestBackend>(&device).unwrap();
        let zero = g.clone().map(&mut Zero);
        let blended = ema_update(zero.clone(), &g, 0.75);
        for ((_, b), (_, src)) in param_values(&blended).into_iter().zip(param_values(&g)) {
            for (x, y) in b.iter().zip(&src) {
                assert!((x - 0.25 * y).abs() < 1e-6);
            }
        }
        struct Zero;
        impl<B: Backend> ModuleMapper<B> for Zero {
            fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                p.map(|t| t.zeros_like())
            }
        }
    }

    /// 64 copies of the 4x4 image of [`pattern`], the data of the [`tiny`] GAN's tests.
    fn patterns() -> Rows {
        Rows {
            x: (0..64 * 16).map(|k| pattern(k % 16)).collect(),
            d: 16,
        }
    }

    fn pattern(i: usize) -> f32 {
        0.15 + 0.7 * ((i * 7) % 16) as f32 / 15.0
    }

    #[test]
    fn the_generator_learns_the_data_and_the_trainer_writes_its_files() {
        use rand::Rng;
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let rows: Vec<f32> = (0..512 * 16)
            .map(|k| pattern(k % 16) + rng.random_range(-0.05..0.05))
            .collect();
        // Real "images": 16 values near a fixed pattern. The generator must learn the pattern.
        let data = Rows { x: rows, d: 16 };
        let cfg = GanConfig {
            image: ImageShape::grey(4, 4),
            d_latent: 4,
            architecture: GanArchitecture::Mlp { hidden: vec![32] },
            lr_discriminator: 2e-3,
            ema: Some(0.9),
            ..GanConfig::dcgan(ImageShape::grey(4, 4))
        };
        let _lock = gen_core::testing::seeded::<AB>(&device, 3);
        let (g, d) = cfg.try_init::<AB>(&device).unwrap();
        let distance = |g: &Generator<crate::test_util::TestBackend>| {
            let s = g
                .sample(256, None, &device)
                .mean_dim(0)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            s.iter()
                .enumerate()
                .map(|(i, v)| (v - pattern(i)).powi(2))
                .sum::<f32>()
                .sqrt()
        };
        let before = distance(&g.valid());
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("run"), &serde_json::json!({}), false).unwrap();
        let mut train = TrainConfig::default()
            .with_num_epochs(200)
            .with_batch_size(32)
            .with_learning_rate(2e-3);
        train.beta_1 = 0.5;
        let mut epochs_seen = Vec::new();
        let fitted = GanTrainer::new(train, cfg)
            .unwrap()
            .with_run_dir(run.clone())
            .fit(g, d, &data, &serde_json::json!({}), &device, |e, _| {
                epochs_seen.push(e);
                Ok(EpochReport {
                    columns: vec![("probe".into(), e as f64)],
                    modes: None,
                })
            })
            .unwrap();
        let after = distance(fitted.ema.as_ref().unwrap());
        assert!(
            after < before / 2.0,
            "distance to the data's pattern {before} -> {after}"
        );
        assert_eq!(epochs_seen, (1..=200).collect::<Vec<_>>());
        for f in [
            "generator.ckpt",
            "discriminator.ckpt",
            "generator_ema.ckpt",
            "metrics.csv",
        ] {
            assert!(run.file(f).is_file(), "{f} missing");
        }
        let (header, rows) = run.metrics().read().unwrap();
        for col in [
            "g_loss",
            "d_real",
            "d_fake",
            "grad_norm_d",
            "grad_norm_g",
            "probe",
            "warn_d_wins",
            "warn_collapse",
        ] {
            assert!(header.iter().any(|h| h == col), "metrics.csv lacks {col}: {header:?}");
        }
        assert_eq!(rows.len(), 200);
        // Balanced at the end: D neither certain nor fooled.
        let last = fitted.history.last().unwrap();
        let get = |k: &str| last.parts.iter().find(|(n, _)| n == k).unwrap().1;
        assert!(
            (0.2..0.8).contains(&get("d_real")) && (0.2..0.8).contains(&get("d_fake")),
            "{last:?}"
        );
    }

    #[test]
    fn a_diverging_loss_is_an_error_naming_the_epoch() {
        let device = Default::default();
        let rows: Vec<f32> = (0..64 * 16).map(|_| f32::NAN).collect();
        let cfg = GanConfig {
            image: ImageShape::grey(4, 4),
            d_latent: 4,
            architecture: GanArchitecture::Mlp { hidden: vec![8] },
            ..GanConfig::dcgan(ImageShape::grey(4, 4))
        };
        let (g, d) = cfg.try_init::<AB>(&device).unwrap();
        let err = GanTrainer::new(TrainConfig::default().with_num_epochs(2).with_batch_size(32), cfg)
            .unwrap()
            .fit(
                g,
                d,
                &Rows { x: rows, d: 16 },
                &serde_json::json!({}),
                &device,
                |_, _| Ok(EpochReport::default()),
            )
            .err()
            .expect("NaN data must fail");
        assert!(
            matches!(err, CoreError::NonFiniteLoss { epoch: 1, step: 1, .. }),
            "{err}"
        );
    }
}
