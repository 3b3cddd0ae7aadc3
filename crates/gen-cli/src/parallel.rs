//! `gen train --workers N`: data-parallel training of the models `Trainer::fit` trains (the
//! autoencoders and the VAEs) on burn's collective engine, with N workers in this process.
//! Worker 0 runs on the command's thread with the run folder and the progress bar; the others
//! run on threads of their own with the same model, data and seed, and no folder. Every worker
//! validates (their models are the same, so they make the same early-stopping decision), and
//! every worker judges the global batch's loss, so a non-finite loss stops them all.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use gen_core::Objective;
use gen_core::train::{DataParallel, Fitted, RunDir, Trainer};
use gen_data::Dataset;

use crate::data::Splits;

/// What one training job needs, shared by its workers.
pub(crate) struct Fit<'a> {
    pub cfg: gen_core::train::TrainConfig,
    pub run: RunDir,
    pub resume: bool,
    pub workers: usize,
    pub train: &'a Dataset,
    pub valid: &'a Dataset,
    pub meta: serde_json::Value,
}

impl<'a> Fit<'a> {
    /// The job's training of a model into `run` on `splits`, with `meta` in its checkpoints.
    pub(crate) fn new(job: &crate::run::TrainJob, run: &RunDir, splits: &'a Splits, meta: serde_json::Value) -> Self {
        Self {
            cfg: job.cfg.train.clone(),
            run: run.clone(),
            resume: job.resume,
            workers: job.workers,
            train: &splits.train,
            valid: &splits.valid,
            meta,
        }
    }

    /// Trains `model`: on this thread alone with one worker, else on `workers` workers whose
    /// gradients burn-collective sums at every step; returns worker 0's result (every worker
    /// ends with the same weights).
    pub(crate) fn run<B, M>(self, model: M, device: &B::Device) -> anyhow::Result<Fitted<M>>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B> + Objective<B> + Send + 'static,
        M::InnerModule: Objective<B::InnerBackend>,
    {
        // Worker 0, or the one worker: the run folder and the progress bar.
        let first = || -> anyhow::Result<Trainer<'_>> {
            Ok(Trainer::new(self.cfg.clone())?
                .with_run_dir(self.run.clone())
                .with_resume(self.resume)
                .with_observer(crate::progress::Progress::new()))
        };
        if self.workers <= 1 {
            return Ok(first()?.fit(model, self.train, Some(self.valid), &self.meta, device)?);
        }
        let workers = self.workers;
        let others = (1..workers)
            .map(|rank| {
                let (model, device, meta) = (model.clone(), device.clone(), self.meta.clone());
                let (cfg, train, valid) = (self.cfg.clone(), self.train.clone(), self.valid.clone());
                move || -> anyhow::Result<()> {
                    Trainer::new(cfg)?
                        .with_data_parallel(DataParallel::local(rank, workers))
                        .fit(model, &train, Some(&valid), &meta, &device)?;
                    Ok(())
                }
            })
            .collect();
        run_workers(others, || {
            Ok(first()?.with_data_parallel(DataParallel::local(0, workers)).fit(
                model,
                self.train,
                Some(self.valid),
                &self.meta,
                device,
            )?)
        })
    }
}

/// Runs a data-parallel job: workers 1 to N - 1 (`others[rank - 1]`), each on a thread of its
/// own, and worker 0 as `first` on this thread; returns worker 0's result, or the error that
/// ended the run ([`cause`]). Each worker computes on a pool of its own share of the threads
/// (rayon's products take as many threads as the pool they run in has), so the workers share
/// the machine instead of each one reaching for all of it. The other workers get owned copies,
/// not borrows, and run detached: a worker that fails or panics resets the collective
/// (gen-core's Membership), so the others' waits end with an error rather than forever, and
/// nothing here has to outlive them.
pub(crate) fn run_workers<T, W>(others: Vec<W>, first: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T>
where
    T: Send,
    W: FnOnce() -> anyhow::Result<()> + Send + 'static,
{
    let threads = (rayon::current_num_threads() / (others.len() + 1)).max(1);
    let others: Vec<_> = others
        .into_iter()
        .map(|work| std::thread::spawn(move || worker_pool(threads)?.install(work)))
        .collect();
    let first = worker_pool(threads).and_then(|pool| pool.install(first));
    let mut results = vec![first.map(Some)];
    for (h, rank) in others.into_iter().zip(1..) {
        results.push(match h.join() {
            Ok(r) => r.map(|()| None),
            Err(panic) => Err(anyhow::anyhow!(
                "data-parallel worker {rank} panicked: {}",
                panic_message(&*panic)
            )),
        });
    }
    cause(results)
}

/// A pool of `threads` threads for one data-parallel worker, with the command's stack size.
pub(crate) fn worker_pool(threads: usize) -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(crate::COMMAND_STACK)
        .build()
        .map_err(|e| anyhow::anyhow!("could not start a data-parallel worker's threads: {e}"))
}

/// Worker 0's model, or the error that ended the run: a worker's own failure before a failed
/// collective operation, and that before an operation cut short by another worker's failure.
fn cause<M>(results: Vec<anyhow::Result<Option<M>>>) -> anyhow::Result<M> {
    // 0: the worker's own failure; 1: a collective operation that failed; 2: one cut short
    // because another worker failed.
    let rank = |e: &anyhow::Error| match e.downcast_ref::<gen_core::CoreError>() {
        Some(gen_core::CoreError::Collective { aborted: false, .. }) => 1,
        Some(gen_core::CoreError::Collective { aborted: true, .. }) => 2,
        _ => 0,
    };
    let mut model = None;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(Some(m)) => model = Some(m),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    // The first of the most telling errors (min_by_key keeps the first of equals).
    match (errors.into_iter().min_by_key(|e| rank(e)), model) {
        (Some(e), _) => Err(e),
        (None, Some(m)) => Ok(m),
        (None, None) => Err(anyhow::anyhow!("data-parallel worker 0 returned no model")),
    }
}

/// A panic's message, when it carried one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use gen_core::CoreError;

    fn collective(aborted: bool) -> anyhow::Error {
        CoreError::Collective {
            what: "reducing the gradients",
            reason: if aborted {
                "another worker failed".into()
            } else {
                "AllReduceShapeMismatch".into()
            },
            aborted,
        }
        .into()
    }

    /// The error reported is the failed worker's own, not the knock-on errors of the others.
    #[test]
    fn the_cause_of_a_failed_run_is_the_failing_workers_error() {
        let own = || Err(anyhow::anyhow!("cannot write best.ckpt"));
        let msg = |r: anyhow::Result<u8>| r.unwrap_err().to_string();
        assert_eq!(
            msg(super::cause(vec![Err(collective(true)), own()])),
            "cannot write best.ckpt"
        );
        assert_eq!(
            msg(super::cause(vec![own(), Err(collective(true))])),
            "cannot write best.ckpt"
        );
        assert!(msg(super::cause(vec![Err(collective(true)), Err(collective(false))])).contains("Mismatch"));
        assert!(msg(super::cause(vec![Err(collective(true)), Ok(None)])).contains("another worker"));
        assert_eq!(super::cause(vec![Ok(Some(7u8)), Ok(None)]).unwrap(), 7);
    }
}
