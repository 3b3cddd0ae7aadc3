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

/// The generic training loop: Adam, epochs of shuffled batches, validation, metrics,
/// checkpoints, early stopping and resuming.
pub struct Trainer<'a> {
    config: TrainConfig,
    run: Option<RunDir>,
    resume: bool,
    observer: Box<dyn Observer + 'a>,
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
        })
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
        let cfg = self.config.clone();
        let n = train.num_samples();
        if n == 0 {
            return Err(CoreError::Data("the training set is empty".into()));
        }
        if valid.is_some_and(|v| v.num_samples() == 0) {
            return Err(CoreError::Data("the validation set is empty".into()));
        }
        let mut optim = FlushingAdam {
            beta_1: cfg.beta_1,
            beta_2: cfg.beta_2,
            epsilon: 1e-8,
            weight_decay: cfg.weight_decay as f32,
        }
        .init::<B, M>();
        let mut model = model;
        let mut state = CheckpointHeader {
            config: run_config.clone(),
            ..Default::default()
        };
        let mut best_model: Option<M> = None;

        if let (true, Some(run)) = (self.resume, &self.run) {
            let path = run.checkpoint_path();
            if path.is_file() {
                let (m, o, header) = load_resumable(model, optim, &path, device)?;
                (model, optim) = (m, o);
                state = CheckpointHeader {
                    config: run_config.clone(),
                    ..header
                };
                let best = run.best_path();
                if best.is_file() {
                    let b = Checkpoint::load(&best)?;
                    best_model = Some(load_into(model.clone(), &b, &best, device)?);
                }
                run.metrics().truncate_after(state.epoch)?;
            }
        }

        let mut history = Vec::new();
        let mut stopped_early = false;
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        for epoch in state.epoch + 1..=cfg.num_epochs {
            let start = Instant::now();
            let seed = epoch_seed(cfg.seed, epoch);
            B::seed(device, seed);
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            self.observer.on_epoch_start(epoch, cfg.num_epochs, steps_per_epoch);
            model.begin_epoch(epoch);

            let mut acc = Accumulator::default();
            for (i, chunk) in order.chunks(cfg.batch_size).enumerate() {
                let batch = train.batch(chunk, device);
                let terms = model.objective(&batch, Stage::Train);
                let loss = acc.add(chunk.len(), &terms);
                if !loss.is_finite() {
                    return Err(CoreError::NonFiniteLoss {
                        epoch,
                        step: i + 1,
                        loss,
                    });
                }
                let grads = GradientsParams::from_grads(terms.total.backward(), &model);
                let total_steps = cfg.num_epochs * steps_per_epoch;
                let lr = cfg.lr_schedule.rate(cfg.learning_rate, state.global_step, total_steps);
                model = optim.step(lr, model, grads);
                state.global_step += 1;
                let rate = acc.n as f64 / start.elapsed().as_secs_f64().max(1e-9);
                self.observer.on_step(epoch, i + 1, loss, rate);
            }
            let train_secs = start.elapsed().as_secs_f64();
            let (train_loss, mut parts) = acc.means("train_");

            let mut valid_loss = None;
            if let Some(v) = valid {
                let (loss, vparts) = evaluate(&model.valid(), v, cfg.batch_size.max(256), device);
                if !loss.is_finite() {
                    return Err(CoreError::NonFiniteLoss {
                        epoch,
                        step: steps_per_epoch,
                        loss,
                    });
                }
                valid_loss = Some(loss);
                parts.extend(vparts);
            }
            let metrics = EpochMetrics {
                epoch,
                train_loss,
                valid_loss,
                parts,
                samples_per_sec: n as f64 / train_secs.max(1e-9),
                seconds: start.elapsed().as_secs_f64(),
            };

            state.epoch = epoch;
            let improved = match (valid_loss, state.best_valid_loss) {
                (Some(v), Some(b)) => v < b,
                (Some(_), None) => true,
                _ => false,
            };
            if improved {
                state.best_valid_loss = valid_loss;
                state.best_epoch = Some(epoch);
                best_model = Some(model.clone());
            }
            if let Some(run) = &self.run {
                let header = CheckpointHeader {
                    param_shapes: param_shapes(&model),
                    ..state.clone()
                };
                // One serialisation serves both files when the epoch improved.
                let model_bytes = module_to_bytes(model.clone())?;
                if improved {
                    let ckpt = Checkpoint {
                        header: header.clone(),
                        model: model_bytes.clone(),
                        optimizer: None,
                    };
                    ckpt.save(&run.best_path())?;
                }
                let optim_bytes = optimizer_to_bytes(&optim)?;
                let ckpt = Checkpoint {
                    header,
                    model: model_bytes,
                    optimizer: Some(optim_bytes),
                };
                ckpt.save(&run.checkpoint_path())?;
                run.metrics().append(&metrics)?;
            }
            self.observer.on_epoch_end(&metrics);
            history.push(metrics);

            if let (Some(patience), Some(best_epoch)) = (cfg.patience, state.best_epoch)
                && epoch - best_epoch >= patience
            {
                self.observer.on_early_stop(epoch, best_epoch);
                stopped_early = true;
                break;
            }
        }

        Ok(Fitted {
            model: best_model.unwrap_or(model),
            history,
            best_epoch: state.best_epoch,
            best_valid_loss: state.best_valid_loss,
            stopped_early,
            epochs_completed: state.epoch,
        })
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
    }

    impl<B: Backend> Objective<B> for Toy<B> {
        fn objective(&self, batch: &Batch<B>, stage: Stage) -> LossTerms<B> {
            let x = match stage {
                Stage::Train => {
                    let noise = Tensor::random(batch.x.shape(), Distribution::Normal(0.0, 0.01), &batch.x.device());
                    batch.x.clone() + noise
                }
                Stage::Valid => batch.x.clone(),
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
