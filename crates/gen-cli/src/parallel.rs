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
        let mut first = Trainer::new(self.cfg.clone())?
            .with_run_dir(self.run.clone())
            .with_resume(self.resume)
            .with_observer(crate::progress::Progress::new());
        if self.workers <= 1 {
            return Ok(first.fit(model, self.train, Some(self.valid), &self.meta, device)?);
        }
        first = first.with_data_parallel(DataParallel::local(0, self.workers));
        // The other workers get owned copies, not borrows: if worker 0 fails (a checkpoint that
        // cannot be written, say), the others are left waiting in the collective, and a scope
        // would wait for them forever; detached, they end with the process, which reports the
        // error.
        let others: Vec<_> = (1..self.workers)
            .map(|rank| {
                let (model, device, meta) = (model.clone(), device.clone(), self.meta.clone());
                let (cfg, workers) = (self.cfg.clone(), self.workers);
                let (train, valid) = (self.train.clone(), self.valid.clone());
                std::thread::spawn(move || -> anyhow::Result<()> {
                    Trainer::new(cfg)?
                        .with_data_parallel(DataParallel::local(rank, workers))
                        .fit(model, &train, Some(&valid), &meta, &device)?;
                    Ok(())
                })
            })
            .collect();
        let fitted = first.fit(model, self.train, Some(self.valid), &self.meta, device)?;
        for h in others {
            h.join()
                .map_err(|_| anyhow::anyhow!("a data-parallel worker panicked"))??;
        }
        Ok(fitted)
    }
}
