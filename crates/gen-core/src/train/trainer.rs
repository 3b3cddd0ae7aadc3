use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{load_into, param_shapes};
use super::{
    Checkpoint, CheckpointHeader, EpochMetrics, FlushingAdam, RunDir, TrainConfig, load_resumable, module_to_bytes,
    optimizer_to_bytes,
};
use crate::{BatchSource, CoreError, Objective, Result, Stage};

/// Receives progress from the [`Trainer`]; the library itself never prints.
///
/// Every method has an empty default, so an observer implements only what it shows.
pub trait Observer {
    /// An epoch begins; it will take `num_steps` steps.
    fn on_epoch_start(&mut self, _epoch: usize, _num_epochs: usize, _num_steps: usize) {}
    /// A step finished with this training loss and the epoch's throughput so far.
    fn on_step(&mut self, _epoch: usize, _step: usize, _loss: f64, _samples_per_sec: f64) {}
    /// An epoch finished (and its checkpoint was written, when there is a run folder).
    fn on_epoch_end(&mut self, _metrics: &EpochMetrics) {}
    /// Training stopped early at `epoch`; the best model was that of `best_epoch`.
    fn on_early_stop(&mut self, _epoch: usize, _best_epoch: usize) {}
    /// A protocol that trains several models (one per class, per latent size, per seed) starts
    /// the next one; `what` says which, in words ("normal class 3: training on 5,923 rows").
    fn on_stage(&mut self, _what: &str) {}
}

impl Observer for () {}

/// A borrowed observer observes too, so a protocol can lend one observer to each model it trains.
impl<O: Observer + ?Sized> Observer for &mut O {
    fn on_epoch_start(&mut self, epoch: usize, num_epochs: usize, num_steps: usize) {
        (**self).on_epoch_start(epoch, num_epochs, num_steps);
    }
    fn on_step(&mut self, epoch: usize, step: usize, loss: f64, samples_per_sec: f64) {
        (**self).on_step(epoch, step, loss, samples_per_sec);
    }
    fn on_epoch_end(&mut self, metrics: &EpochMetrics) {
        (**self).on_epoch_end(metrics);
    }
    fn on_early_stop(&mut self, epoch: usize, best_epoch: usize) {
        (**self).on_early_stop(epoch, best_epoch);
    }
    fn on_stage(&mut self, what: &str) {
        (**self).on_stage(what);
    }
}

/// The result of [`Trainer::fit`].
#[derive(Debug)]
pub struct Fitted<M> {
    /// The model to use: that of the best validation epoch when there was validation data,
    /// else the last.
    pub model: M,
    /// Metrics of the epochs run by this call (not those before a resume).
    pub history: Vec<EpochMetrics>,
    /// Epoch with the lowest validation loss.
    pub best_epoch: Option<usize>,
    /// Lowest validation loss.
    pub best_valid_loss: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Epochs completed in all (including those before a resume).
    pub epochs_completed: usize,
}

/// The seed of epoch `epoch` (1-based) of a run seeded with `seed`: shuffling and every random
/// draw of the epoch depend on it alone, which is what makes resumed runs identical to
/// uninterrupted ones.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    // SplitMix64 finaliser, so that neighbouring epochs get unrelated streams.
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mean loss (and parts) of `model` over `data`, without autodiff.
///
/// Batches are taken in order; the mean is weighted by batch size.
pub fn evaluate<B: Backend, M: Objective<B>, D: BatchSource<B> + ?Sized>(
    model: &M,
    data: &D,
    batch_size: usize,
    device: &B::Device,
) -> (f64, Vec<(String, f64)>) {
    let n = data.num_samples();
    let indices: Vec<usize> = (0..n).collect();
    let mut acc = Accumulator::default();
    for chunk in indices.chunks(batch_size.max(1)) {
        let terms = model.objective(&data.batch(chunk, device), Stage::Valid);
        acc.add(chunk.len(), &terms);
    }
    acc.means("valid_")
}

#[derive(Default)]
struct Accumulator {
    n: usize,
    total: f64,
    parts: Vec<(&'static str, f64)>,
}

impl Accumulator {
    fn add<B: Backend>(&mut self, n: usize, terms: &crate::LossTerms<B>) -> f64 {
        let total = terms.total.clone().into_scalar().elem::<f64>();
        self.total += total * n as f64;
        for (i, (name, value)) in terms.parts.iter().enumerate() {
            let v = value.clone().into_scalar().elem::<f64>() * n as f64;
            match self.parts.get_mut(i) {
                Some(slot) => slot.1 += v,
                None => self.parts.push((name, v)),
            }
        }
        self.n += n;
        total
    }

    fn means(&self, prefix: &str) -> (f64, Vec<(String, f64)>) {
        let n = self.n.max(1) as f64;
        let parts = self
            .parts
            .iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v / n))
            .collect();
        (self.total / n, parts)
    }
}

/// What one kind of training does inside the epoch loop that every trainer of the workspace
/// shares ([`Trainer::run_epochs`]): the steps, the end of an epoch, the checkpoints. The loop
/// does the rest the same way for all: seeding each epoch from [`epoch_seed`], shuffling the
/// rows, counting steps for the rate schedule, resuming, timing, the metrics file, the observer
/// and early stopping. [`Trainer::fit`] (one model and its objective) and gen-gan's
/// `GanTrainer` (a generator against a discriminator) are its two implementations.
pub trait EpochSteps<B: AutodiffBackend> {
    /// Restores the run's state from the checkpoints in `run` before the first epoch, when
    /// resuming: returns the epochs completed and the steps taken then, or `None` when `run`
    /// holds nothing to resume from (training then starts afresh).
    ///
    /// # Errors
    /// Checkpoints that cannot be read or do not fit the model.
    fn resume(&mut self, run: &RunDir, device: &B::Device) -> Result<Option<(usize, usize)>>;

    /// An epoch begins, after the backend was seeded for it and its rows were shuffled.
    fn begin_epoch(&mut self, _epoch: usize) {}

    /// One step on the training rows `rows`; `at` says where in the run it stands. Returns the
    /// loss to show.
    ///
    /// # Errors
    /// [`CoreError::NonFiniteLoss`] (with `at`'s epoch and step) when a loss is not finite.
    fn step(&mut self, rows: &[usize], at: StepAt, device: &B::Device) -> Result<f64>;

    /// The epoch's losses and metric columns after its last step (validation, monitors).
    ///
    /// # Errors
    /// A non-finite validation loss, or a monitor's error.
    fn end_epoch(&mut self, epoch: usize, device: &B::Device) -> Result<EpochLosses>;

    /// Writes the epoch's checkpoints into `run`; `global_step` steps were taken in all.
    ///
    /// # Errors
    /// I/O and serialisation errors.
    fn save(&mut self, run: &RunDir, epoch: usize, global_step: usize) -> Result<()>;

    /// After the epoch was logged: `Some(best_epoch)` to stop early.
    fn stop_early(&mut self, _epoch: usize) -> Option<usize> {
        None
    }
}

/// Where a step stands in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepAt {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The step within the epoch, from 1.
    pub index: usize,
    /// Steps taken before this one in the whole run (resumed epochs included).
    pub global: usize,
    /// Steps of the whole run: the rate schedule's horizon.
    pub total: usize,
}

impl StepAt {
    /// The error of a loss that turned NaN or infinite at this step.
    pub fn non_finite(&self, loss: f64) -> CoreError {
        CoreError::NonFiniteLoss {
            epoch: self.epoch,
            step: self.index,
            loss,
        }
    }
}

/// An epoch's losses and extra columns, as [`EpochSteps::end_epoch`] reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLosses {
    /// The training loss shown for the epoch.
    pub train_loss: f64,
    /// The validation loss, when there is validation.
    pub valid_loss: Option<f64>,
    /// Named extra columns for `metrics.csv`.
    pub parts: Vec<(String, f64)>,
}

/// What [`Trainer::run_epochs`] returns.
#[derive(Debug)]
pub struct EpochsRun {
    /// Metrics of the epochs run by this call (not those before a resume).
    pub history: Vec<EpochMetrics>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Epochs completed in all (including those before a resume).
    pub epochs_completed: usize,
}

/// The training loop: epochs of shuffled batches, metrics, checkpoints, early stopping and
/// resuming ([`Trainer::run_epochs`], for any [`EpochSteps`]); [`Trainer::fit`] trains one model
/// with Adam and validation through it.
pub struct Trainer<'a> {
    config: TrainConfig,
    run: Option<RunDir>,
    resume: bool,
    observer: Box<dyn Observer + 'a>,
    /// This worker of a data-parallel run ([`Trainer::with_data_parallel`]).
    parallel: Option<super::Parallel>,
}

impl<'a> Trainer<'a> {
    /// A trainer with no run folder and no observer.
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            run: None,
            resume: false,
            observer: Box::new(()),
            parallel: None,
        })
    }

    /// Makes [`Trainer::fit`] one worker of a data-parallel run (see
    /// [`DataParallel`](super::DataParallel)): it trains on its share of every batch and sums
    /// the gradients with the other workers before each step. Every worker must be given the
    /// same model, data, configuration and seed; give a run folder to one of them (rank 0).
    #[cfg(feature = "collective")]
    pub fn with_data_parallel(mut self, parallel: super::DataParallel) -> Self {
        self.parallel = Some(parallel);
        self
    }

    /// Writes checkpoints and metrics into `run`.
    pub fn with_run_dir(mut self, run: RunDir) -> Self {
        self.run = Some(run);
        self
    }

    /// Continues from the run folder's checkpoint, if it has one.
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: impl Observer + 'a) -> Self {
        self.observer = Box::new(observer);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Adam with the configuration's betas and weight decay.
    pub fn adam(&self) -> FlushingAdam {
        FlushingAdam {
            beta_1: self.config.beta_1,
            beta_2: self.config.beta_2,
            epsilon: 1e-8,
            weight_decay: self.config.weight_decay as f32,
        }
    }

    /// The epoch loop over `n` training rows, with `steps` doing the work of each step and
    /// epoch (see [`EpochSteps`]). Every epoch's random draws depend on the seed and the epoch
    /// alone, so a resumed run ends with the same weights as one that was never interrupted.
    ///
    /// # Errors
    /// An empty training set, and what `steps` returns.
    pub fn run_epochs<B: AutodiffBackend, S: EpochSteps<B> + ?Sized>(
        &mut self,
        steps: &mut S,
        n: usize,
        device: &B::Device,
    ) -> Result<EpochsRun> {
        if n == 0 {
            return Err(CoreError::Data("the training set is empty".into()));
        }
        let cfg = self.config.clone();
        let (mut done, mut global) = (0, 0);
        if let (true, Some(run)) = (self.resume, &self.run)
            && let Some((epoch, step)) = steps.resume(run, device)?
        {
            (done, global) = (epoch, step);
            run.metrics().truncate_after(done)?;
        }
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        let total = cfg.num_epochs * steps_per_epoch;
        let mut history = Vec::new();
        let mut stopped_early = false;
        for epoch in done + 1..=cfg.num_epochs {
            let start = Instant::now();
            let seed = epoch_seed(cfg.seed, epoch);
            B::seed(device, seed);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            self.observer.on_epoch_start(epoch, cfg.num_epochs, steps_per_epoch);
            steps.begin_epoch(epoch);
            let mut seen = 0;
            for (i, rows) in order.chunks(cfg.batch_size).enumerate() {
                let at = StepAt {
                    epoch,
                    index: i + 1,
                    global,
                    total,
                };
                let loss = steps.step(rows, at, device)?;
                global += 1;
                seen += rows.len();
                let rate = seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
                self.observer.on_step(epoch, i + 1, loss, rate);
            }
            let train_secs = start.elapsed().as_secs_f64();
            let losses = steps.end_epoch(epoch, device)?;
            let metrics = EpochMetrics {
                epoch,
                train_loss: losses.train_loss,
                valid_loss: losses.valid_loss,
                parts: losses.parts,
                samples_per_sec: n as f64 / train_secs.max(1e-9),
                seconds: start.elapsed().as_secs_f64(),
            };
            done = epoch;
            if let Some(run) = &self.run {
                steps.save(run, epoch, global)?;
                run.metrics().append(&metrics)?;
            }
            self.observer.on_epoch_end(&metrics);
            history.push(metrics);
            if let Some(best_epoch) = steps.stop_early(epoch) {
                self.observer.on_early_stop(epoch, best_epoch);
                stopped_early = true;
                break;
            }
        }
        Ok(EpochsRun {
            history,
            stopped_early,
            epochs_completed: done,
        })
    }

    /// Trains `model` on `train`, validating on `valid` after each epoch.
    ///
    /// `run_config` is stored in every checkpoint header, so each checkpoint describes the run.
    ///
    /// # Errors
    /// - [`CoreError::NonFiniteLoss`] when a loss turns NaN or infinite; the checkpoint of the
    ///   last completed epoch is left as it was.
    /// - I/O and checkpoint errors from the run folder.
    pub fn fit<B, M, T, V>(
        &mut self,
        model: M,
        train: &T,
        valid: Option<&V>,
        run_config: &serde_json::Value,
        device: &B::Device,
    ) -> Result<Fitted<M>>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B> + Objective<B>,
        M::InnerModule: Objective<B::InnerBackend>,
        T: BatchSource<B> + ?Sized,
        V: BatchSource<B::InnerBackend> + ?Sized,
    {
        let n = train.num_samples();
        if n == 0 {
            return Err(CoreError::Data("the training set is empty".into()));
        }
        if valid.is_some_and(|v| v.num_samples() == 0) {
            return Err(CoreError::Data("the validation set is empty".into()));
        }
        let cfg = self.config.clone();
        let session = super::Session::<B>::start(self.parallel.as_ref(), n, cfg.batch_size, device)?;
        let model = session.fork(model, device);
        let mut steps = Supervised {
            optim: Some(self.adam().init::<B, M>()),
            model: Some(model),
            best_model: None,
            state: CheckpointHeader {
                config: run_config.clone(),
                ..Default::default()
            },
            improved: false,
            acc: Accumulator::default(),
            steps_per_epoch: n.div_ceil(cfg.batch_size),
            cfg,
            train,
            valid,
            parallel: self.parallel.clone(),
        };
        let run = self.run_epochs(&mut steps, n, device)?;
        session.leave();
        Ok(Fitted {
            model: match steps.best_model {
                Some(best) => best,
                None => steps.model.expect("the model between steps"),
            },
            history: run.history,
            best_epoch: steps.state.best_epoch,
            best_valid_loss: steps.state.best_valid_loss,
            stopped_early: run.stopped_early,
            epochs_completed: run.epochs_completed,
        })
    }
}

/// [`Trainer::fit`]'s steps: one model, its objective and Adam; validation after each epoch
/// keeps the best model and decides early stopping.
struct Supervised<'d, M, O, T: ?Sized, V: ?Sized> {
    cfg: TrainConfig,
    /// The model and its optimiser, taken out for each step.
    model: Option<M>,
    optim: Option<O>,
    best_model: Option<M>,
    /// The epoch, step count and best validation so far, as checkpoints store them.
    state: CheckpointHeader,
    /// Whether this epoch's validation loss is the best so far.
    improved: bool,
    acc: Accumulator,
    steps_per_epoch: usize,
    train: &'d T,
    valid: Option<&'d V>,
    parallel: Option<super::Parallel>,
}

impl<B, M, O, T, V> EpochSteps<B> for Supervised<'_, M, O, T, V>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Objective<B>,
    M::InnerModule: Objective<B::InnerBackend>,
    O: Optimizer<M, B>,
    T: BatchSource<B> + ?Sized,
    V: BatchSource<B::InnerBackend> + ?Sized,
{
    fn resume(&mut self, run: &RunDir, device: &B::Device) -> Result<Option<(usize, usize)>> {
        let path = run.checkpoint_path();
        if !path.is_file() {
            return Ok(None);
        }
        let (model, optim) = (self.model.take().expect("model"), self.optim.take().expect("optimiser"));
        let (model, optim, header) = load_resumable(model, optim, &path, device)?;
        self.state = CheckpointHeader {
            config: self.state.config.clone(),
            ..header
        };
        let best = run.best_path();
        if best.is_file() {
            let b = Checkpoint::load(&best)?;
            self.best_model = Some(load_into(model.clone(), &b, &best, device)?);
        }
        (self.model, self.optim) = (Some(model), Some(optim));
        Ok(Some((self.state.epoch, self.state.global_step)))
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.acc = Accumulator::default();
        self.model.as_mut().expect("model").begin_epoch(epoch);
    }

    fn step(&mut self, rows: &[usize], at: StepAt, device: &B::Device) -> Result<f64> {
        let model = self.model.take().expect("model");
        let workers = super::Workers::of(self.parallel.as_ref(), rows.len());
        let rows = workers.rows(rows);
        let batch = self.train.batch(rows, device);
        let terms = model.objective(&batch, Stage::Train);
        let loss = self.acc.add(rows.len(), &terms);
        // Every worker judges the global batch's loss, so that all stop together.
        let loss = workers.judged::<B::InnerBackend>(loss, loss, device)?;
        if !loss.is_finite() {
            return Err(at.non_finite(loss));
        }
        let grads = workers.reduce::<B>(GradientsParams::from_grads(
            workers.weigh(terms.total).backward(),
            &model,
        ))?;
        let lr = self.cfg.lr_schedule.rate(self.cfg.learning_rate, at.global, at.total);
        let optim = self.optim.as_mut().expect("optimiser");
        self.model = Some(optim.step(lr, model, grads));
        self.state.global_step = at.global + 1;
        Ok(loss)
    }

    fn end_epoch(&mut self, epoch: usize, device: &B::Device) -> Result<EpochLosses> {
        let (train_loss, mut parts) = self.acc.means("train_");
        let model = self.model.as_ref().expect("model");
        let mut valid_loss = None;
        if let Some(v) = self.valid {
            let (loss, vparts) = evaluate(&model.valid(), v, self.cfg.batch_size.max(256), device);
            if !loss.is_finite() {
                return Err(CoreError::NonFiniteLoss {
                    epoch,
                    step: self.steps_per_epoch,
                    loss,
                });
            }
            valid_loss = Some(loss);
            parts.extend(vparts);
        }
        self.state.epoch = epoch;
        self.improved = match (valid_loss, self.state.best_valid_loss) {
            (Some(v), Some(b)) => v < b,
            (Some(_), None) => true,
            _ => false,
        };
        if self.improved {
            self.state.best_valid_loss = valid_loss;
            self.state.best_epoch = Some(epoch);
            self.best_model = Some(model.clone());
        }
        Ok(EpochLosses {
            train_loss,
            valid_loss,
            parts,
        })
    }

    fn save(&mut self, run: &RunDir, _epoch: usize, _global_step: usize) -> Result<()> {
        let model = self.model.as_ref().expect("model");
        let header = CheckpointHeader {
            param_shapes: param_shapes(model),
            ..self.state.clone()
        };
        // One serialisation serves both files when the epoch improved.
        let model_bytes = module_to_bytes(model.clone())?;
        if self.improved {
            let ckpt = Checkpoint {
                header: header.clone(),
                model: model_bytes.clone(),
                optimizer: None,
            };
            ckpt.save(&run.best_path())?;
        }
        let optim_bytes = optimizer_to_bytes(self.optim.as_ref().expect("optimiser"))?;
        let ckpt = Checkpoint {
            header,
            model: model_bytes,
            optimizer: Some(optim_bytes),
        };
        ckpt.save(&run.checkpoint_path())
    }

    fn stop_early(&mut self, epoch: usize) -> Option<usize> {
        match (self.cfg.patience, self.state.best_epoch) {
            (Some(patience), Some(best_epoch)) if epoch - best_epoch >= patience => Some(best_epoch),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{MseLoss, Reduction};
    use crate::nn::{Mlp, MlpConfig};
    use crate::test_util::TestAutodiffBackend as TB;
    use crate::{Batch, LossTerms};
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor, TensorData};
    use std::cell::Cell;

    /// A tiny autoencoder-like regression: reconstruct x through a 2-unit bottleneck, with a
    /// random perturbation of the input in training (so seeding of random draws is exercised).
    #[derive(Module, Debug)]
    struct Toy<B: Backend> {
        mlp: Mlp<B>,
        /// Standard deviation of the training perturbation (0: none, a deterministic step).
        noise: f64,
    }

    impl<B: Backend> Objective<B> for Toy<B> {
        fn objective(&self, batch: &Batch<B>, stage: Stage) -> LossTerms<B> {
            let x = match stage {
                Stage::Train if self.noise > 0.0 => {
                    let noise = Tensor::random(
                        batch.x.shape(),
                        Distribution::Normal(0.0, self.noise),
                        &batch.x.device(),
                    );
                    batch.x.clone() + noise
                }
                _ => batch.x.clone(),
            };
            let out = self.mlp.forward(x);
            let mse = MseLoss.forward(out, batch.x.clone(), Reduction::Mean);
            LossTerms {
                total: mse.clone(),
                parts: vec![("mse", mse)],
            }
        }
    }

    struct Data {
        x: Vec<f32>,
        d: usize,
        /// After this many batches, every batch is NaN.
        poison_after: Option<usize>,
        served: Cell<usize>,
    }

    impl Data {
        fn new(n: usize, seed: u64) -> Self {
            use rand::Rng;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // Points near a 2-D plane in 6-D, so a 2-unit bottleneck can fit them.
            let x = (0..n)
                .flat_map(|_| {
                    let (a, b): (f32, f32) = (rng.random(), rng.random());
                    [a, b, a + b, a - b, 0.5 * a, 0.3 * b]
                })
                .collect();
            Self {
                x,
                d: 6,
                poison_after: None,
                served: Cell::new(0),
            }
        }
    }

    impl<B: Backend> BatchSource<B> for Data {
        fn num_samples(&self) -> usize {
            self.x.len() / self.d
        }
        fn d_input(&self) -> usize {
            self.d
        }
        fn batch(&self, indices: &[usize], device: &B::Device) -> Batch<B> {
            let k = self.served.get();
            self.served.set(k + 1);
            let poisoned = self.poison_after.is_some_and(|p| k >= p);
            let v: Vec<f32> = indices
                .iter()
                .flat_map(|&i| {
                    self.x[i * self.d..(i + 1) * self.d]
                        .iter()
                        .map(move |&v| if poisoned { f32::NAN } else { v })
                })
                .collect();
            Batch {
                x: Tensor::from_data(TensorData::new(v, [indices.len(), self.d]), device),
                y: None,
            }
        }
    }

    fn toy(seed: u64) -> Toy<TB> {
        let device = Default::default();
        TB::seed(&device, seed);
        Toy {
            mlp: MlpConfig::new(6, vec![16, 2, 16], 6).init(&device),
            noise: 0.01,
        }
    }

    fn config(epochs: usize) -> TrainConfig {
        TrainConfig::default()
            .with_num_epochs(epochs)
            .with_batch_size(32)
            .with_learning_rate(3e-3)
            .with_seed(5)
    }

    fn params(m: &Toy<TB>) -> Vec<f32> {
        m.mlp
            .layers()
            .iter()
            .flat_map(|l| l.weight.val().into_data().to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn loss_falls_and_metrics_are_written() {
        let _lock = crate::testing::seed_lock();
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("run"), &serde_json::json!({}), false).unwrap();
        let (train, valid) = (Data::new(512, 1), Data::new(128, 2));
        let device = Default::default();
        let fitted = Trainer::new(config(15))
            .unwrap()
            .with_run_dir(run.clone())
            .fit(toy(0), &train, Some(&valid), &serde_json::json!({"k": 1}), &device)
            .unwrap();
        let first = fitted.history[0].valid_loss.unwrap();
        let last = fitted.best_valid_loss.unwrap();
        assert!(last < 0.3 * first, "validation loss {first} -> {last}");
        assert_eq!(fitted.epochs_completed, 15);
        let (cols, rows) = run.metrics().read().unwrap();
        assert!(
            cols.contains(&"valid_mse".to_string()) && cols.contains(&"train_mse".to_string()),
            "{cols:?}"
        );
        assert_eq!(rows.len(), 15);
        assert!(run.checkpoint_path().is_file() && run.best_path().is_file());
        let header = Checkpoint::load(&run.checkpoint_path()).unwrap().header;
        assert_eq!((header.epoch, header.global_step), (15, 15 * 16));
        assert_eq!(header.config["k"], 1);
    }

    /// Two workers, each on half of every batch with the gradients summed by burn-collective,
    /// end with the weights of one worker on the whole batches. The sums differ only in the
    /// order of addition (f32), which 40 Adam steps carry to a few 1e-7 of the weights; 1e-5 is
    /// the bound.
    #[cfg(feature = "collective")]
    #[test]
    fn two_data_parallel_workers_match_one_on_the_global_batch() {
        let _lock = crate::testing::seed_lock();
        let device = Default::default();
        let mut model = toy(0);
        model.noise = 0.0;
        let cfg = config(5).with_batch_size(64);
        let single = params(
            &Trainer::new(cfg.clone())
                .unwrap()
                .fit(
                    model.clone(),
                    &Data::new(500, 1),
                    None::<&Data>,
                    &serde_json::json!({}),
                    &device,
                )
                .unwrap()
                .model,
        );
        let workers: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|rank| {
                    let (model, cfg) = (model.clone(), cfg.clone());
                    s.spawn(move || {
                        let data = Data::new(500, 1);
                        let fitted = Trainer::new(cfg)
                            .unwrap()
                            .with_data_parallel(super::super::DataParallel::local(rank, 2))
                            .fit(model, &data, None::<&Data>, &serde_json::json!({}), &Default::default())
                            .unwrap();
                        params(&fitted.model)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(workers[0], workers[1], "the workers' weights differ");
        let gap = single
            .iter()
            .zip(&workers[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("two workers against one: largest difference {gap}");
        assert!(gap < 1e-5, "two workers against one: largest difference {gap}");
        assert!(
            single.iter().zip(&params(&model)).any(|(a, b)| a != b),
            "no training happened"
        );
        // A batch too small to share is refused before anything trains.
        let err = Trainer::new(config(1).with_batch_size(1))
            .unwrap()
            .with_data_parallel(super::super::DataParallel::local(0, 2))
            .fit(
                model.clone(),
                &Data::new(10, 1),
                None::<&Data>,
                &serde_json::json!({}),
                &device,
            )
            .unwrap_err();
        assert!(err.to_string().contains("2 workers need at least one row"), "{err}");
    }

    /// A worker that fails (here worker 0, whose run folder vanished before its first
    /// checkpoint) ends the collective: the other worker's wait returns an error that says so
    /// instead of blocking forever.
    #[cfg(feature = "collective")]
    #[test]
    fn a_failing_worker_releases_the_others() {
        let _lock = crate::testing::seed_lock();
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path().join("r"), &serde_json::json!({}), false).unwrap();
        std::fs::remove_dir_all(run.root()).unwrap();
        let mut model = toy(0);
        model.noise = 0.0;
        let cfg = config(3).with_batch_size(64);
        let (first, second) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|rank| {
                    let (model, cfg, run) = (model.clone(), cfg.clone(), run.clone());
                    s.spawn(move || {
                        let mut trainer = Trainer::new(cfg)
                            .unwrap()
                            .with_data_parallel(super::super::DataParallel::local(rank, 2));
                        if rank == 0 {
                            trainer = trainer.with_run_dir(run);
                        }
                        let data = Data::new(256, 1);
                        trainer
                            .fit(model, &data, None::<&Data>, &serde_json::json!({}), &Default::default())
                            .map(|_| ())
                    })
                })
                .collect();
            let mut r = handles.into_iter().map(|h| h.join().unwrap());
            (r.next().unwrap(), r.next().unwrap())
        });
        assert!(matches!(first, Err(CoreError::Io { .. })), "{first:?}");
        match second {
            Err(CoreError::Collective {
                aborted: true,
                ref reason,
                ..
            }) => {
                assert!(reason.contains("another worker failed"), "{reason}")
            }
            other => panic!("worker 1 should be released with an error, got {other:?}"),
        }
    }

    #[test]
    fn same_seed_gives_bit_identical_weights() {
        let _lock = crate::testing::seed_lock();
        let data = Data::new(256, 1);
        let device = Default::default();
        let run = |seed| {
            let cfg = config(3).with_seed(seed);
            params(
                &Trainer::new(cfg)
                    .unwrap()
                    .fit(toy(0), &data, None::<&Data>, &serde_json::json!({}), &device)
                    .unwrap()
                    .model,
            )
        };
        let a = run(5);
        assert_eq!(a, run(5));
        assert_ne!(a, run(6));
    }

    #[test]
    fn resume_continues_from_the_saved_epoch_and_matches_an_uninterrupted_run() {
        let _lock = crate::testing::seed_lock();
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let data = Data::new(256, 1);
        let valid = Data::new(64, 2);
        let meta = serde_json::json!({});
        let straight = Trainer::new(config(6))
            .unwrap()
            .fit(toy(0), &data, Some(&valid), &meta, &device)
            .unwrap();

        let run = RunDir::create(dir.path().join("r"), &meta, false).unwrap();
        let first = Trainer::new(config(3))
            .unwrap()
            .with_run_dir(run.clone())
            .fit(toy(0), &data, Some(&valid), &meta, &device)
            .unwrap();
        assert_eq!(first.epochs_completed, 3);
        // A fresh model (other weights) is overwritten by the checkpoint when resuming.
        let resumed = Trainer::new(config(6))
            .unwrap()
            .with_run_dir(run.clone())
            .with_resume(true)
            .fit(toy(99), &data, Some(&valid), &meta, &device)
            .unwrap();
        assert_eq!(
            resumed.history.first().map(|m| m.epoch),
            Some(4),
            "resume starts after the saved epoch"
        );
        assert_eq!(resumed.epochs_completed, 6);
        assert_eq!(
            params(&resumed.model),
            params(&straight.model),
            "resumed run must equal the uninterrupted one"
        );
        assert_eq!(run.metrics().read().unwrap().1.len(), 6);
    }

    #[test]
    fn non_finite_loss_stops_with_epoch_and_step_and_keeps_the_last_checkpoint() {
        let _lock = crate::testing::seed_lock();
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let run = RunDir::create(dir.path().join("r"), &serde_json::json!({}), false).unwrap();
        let mut data = Data::new(256, 1); // 8 steps per epoch
        data.poison_after = Some(8 + 3); // fourth step of epoch 2
        let err = Trainer::new(config(5))
            .unwrap()
            .with_run_dir(run.clone())
            .fit(toy(0), &data, None::<&Data>, &serde_json::json!({}), &device)
            .unwrap_err();
        match err {
            CoreError::NonFiniteLoss { epoch, step, .. } => assert_eq!((epoch, step), (2, 4)),
            other => panic!("unexpected error {other}"),
        }
        let ckpt = Checkpoint::load(&run.checkpoint_path()).unwrap();
        assert_eq!(ckpt.header.epoch, 1, "the checkpoint of the last good epoch is kept");
    }

    #[test]
    fn early_stopping_stops_after_patience_epochs_without_improvement() {
        let _lock = crate::testing::seed_lock();
        let device = Default::default();
        let data = Data::new(128, 1);
        // Validation on unrelated noise cannot keep improving with this learning rate.
        let mut valid = Data::new(64, 3);
        valid
            .x
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = ((i * 7919) % 13) as f32);
        let cfg = config(200).with_patience(Some(2)).with_learning_rate(5e-2);
        let fitted = Trainer::new(cfg)
            .unwrap()
            .fit(toy(0), &data, Some(&valid), &serde_json::json!({}), &device)
            .unwrap();
        assert!(fitted.stopped_early);
        let best = fitted.best_epoch.unwrap();
        assert_eq!(fitted.epochs_completed, best + 2);
    }

    #[test]
    fn rejects_empty_data_and_bad_config() {
        let _lock = crate::testing::seed_lock();
        let device = Default::default();
        let empty = Data {
            x: vec![],
            d: 6,
            poison_after: None,
            served: Cell::new(0),
        };
        let err = Trainer::new(config(1))
            .unwrap()
            .fit(toy(0), &empty, None::<&Data>, &serde_json::json!({}), &device);
        assert!(matches!(err, Err(CoreError::Data(_))));
        assert!(matches!(Trainer::new(config(0)), Err(CoreError::Config(_))));
    }

    #[test]
    fn epoch_seeds_differ() {
        let s: std::collections::HashSet<u64> = (1..100).map(|e| epoch_seed(42, e)).collect();
        assert_eq!(s.len(), 99);
    }
}
