//! Data-parallel training on burn's collective engine (`burn-collective`): several workers,
//! each with the same model, seed and data, train on their share of every global batch, and the
//! gradients are summed across workers (`GradientsParams::all_reduce`) before each one takes the
//! same optimiser step, so every worker holds the same weights after every step.
//!
//! A worker's share of a batch of `N` rows is a contiguous slice of about `N / workers` rows; its
//! loss (a mean over its rows) is weighted by `n_k / N` before the backward pass, so the sum of
//! the workers' gradients is the gradient of the global batch's mean loss. What is not
//! reduced: random draws inside a step (a denoising corruption, dropout) are drawn per worker
//! for its own rows, so they differ from a one-worker run's; batch-norm statistics in training
//! are each worker's own; the reported training loss is the worker's own shard's.
//!
//! Only with gen-core's `collective` feature.

use burn::collective::{CollectiveConfig, PeerId, ReduceOperation, finish_collective, register, reset_collective};
use burn::optim::GradientsParams;
use burn::tensor::ElementConversion;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::{CoreError, Result};

/// One worker of a data-parallel run: its rank among `workers`, and the collective engine's
/// configuration (local threads by default; nodes through burn's global orchestrator).
#[derive(Debug, Clone)]
pub struct DataParallel {
    /// This worker's rank, from 0; its peer id in the collective.
    pub rank: usize,
    /// Workers in all.
    pub workers: usize,
    /// burn-collective's configuration; [`DataParallel::local`] sets the number of devices.
    pub collective: CollectiveConfig,
}

impl DataParallel {
    /// Worker `rank` of `workers` in this process (threads, one device each or one shared).
    pub fn local(rank: usize, workers: usize) -> Self {
        Self {
            rank,
            workers,
            collective: CollectiveConfig::default().with_num_devices(workers),
        }
    }

    /// Rejects no workers and a rank out of range.
    ///
    /// # Errors
    /// [`CoreError::Config`] saying which.
    pub fn validate(&self) -> Result<()> {
        if self.workers == 0 || self.rank >= self.workers {
            return Err(crate::ConfigError::Invalid(format!(
                "data-parallel rank {} of {} workers: the rank must be below the number of workers",
                self.rank, self.workers
            ))
            .into());
        }
        Ok(())
    }

    /// This worker's share of a global batch: the `rank`-th of `workers` contiguous slices.
    pub fn shard<'r>(&self, rows: &'r [usize]) -> &'r [usize] {
        &rows[self.bounds(rows.len())]
    }

    /// Where this worker's share of `n` rows lies.
    fn bounds(&self, n: usize) -> std::ops::Range<usize> {
        self.rank * n / self.workers..(self.rank + 1) * n / self.workers
    }

    fn peer(&self) -> PeerId {
        PeerId(self.rank as u32)
    }

    /// Joins the collective (waiting for every worker to join); the returned guard leaves it
    /// with [`Membership::leave`] after training, and resets it when dropped without leaving.
    /// A trainer of its own (gen-gan's, say) calls this before its first step;
    /// [`Trainer::fit`](super::Trainer::fit) does it itself.
    ///
    /// # Errors
    /// [`CoreError::Config`] for a rank out of range, [`CoreError::Collective`] when the
    /// collective refuses the worker.
    pub fn join<B: Backend>(&self, device: &B::Device) -> Result<Membership<B>> {
        self.validate()?;
        register::<B>(self.peer(), device.clone(), self.collective.clone())
            .map_err(|e| collective_error("joining the collective", e))?;
        Ok(Membership {
            peer: self.peer(),
            left: false,
            _backend: std::marker::PhantomData,
        })
    }

    /// The sum of `grads` over the workers (each already weighted by its share of the batch).
    ///
    /// # Errors
    /// [`CoreError::Collective`] when the reduction fails or another worker failed.
    pub fn reduce<B: AutodiffBackend>(&self, grads: GradientsParams) -> Result<GradientsParams> {
        grads
            .all_reduce::<B::InnerBackend>(self.peer(), ReduceOperation::Sum)
            .map_err(|e| collective_error("reducing the gradients", e))
    }

    /// Checks that a training set of `n` rows in batches of `batch` can be shared among the
    /// workers: every worker needs at least one row of every batch, the last one included.
    ///
    /// # Errors
    /// [`CoreError::Data`] naming the batch that is too small.
    pub fn check_batches(&self, n: usize, batch: usize) -> Result<()> {
        let last = match n % batch.max(1) {
            0 => batch,
            r => r,
        };
        if batch.min(last) < self.workers {
            return Err(CoreError::Data(format!(
                "{} workers need at least one row each of every batch, but the last batch of {n} rows in \
                 batches of {batch} has {last}",
                self.workers
            )));
        }
        Ok(())
    }

    /// The sum of `value` over the workers: the global batch's mean loss from each worker's
    /// weighted one, so that every worker decides alike (a non-finite loss stops them all).
    ///
    /// # Errors
    /// [`CoreError::Collective`] when the reduction fails or another worker failed.
    pub fn reduce_scalar<B: Backend>(&self, value: f64, device: &B::Device) -> Result<f64> {
        let t = burn::tensor::Tensor::<B, 1>::from_floats([value as f32], device);
        let sum = burn::collective::all_reduce::<B>(self.peer(), t.into_primitive().tensor(), ReduceOperation::Sum)
            .map_err(|e| collective_error("reducing the loss", e))?;
        let sum = burn::tensor::Tensor::<B, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(sum));
        Ok(sum.into_scalar().elem::<f64>())
    }

    /// The weight of this worker's mean loss in the global batch's: `n_k / N`, for a global
    /// batch of `rows` rows.
    pub fn share(&self, rows: usize) -> f64 {
        let n = rows.max(1);
        self.bounds(n).len() as f64 / n as f64
    }
}

fn collective_error(what: &'static str, e: burn::collective::CollectiveError) -> CoreError {
    use burn::collective::CollectiveError as E;
    // A reset (by a failed worker's Membership) drops the pending operation, whose waiters
    // see the server as gone, and forgets the peers, whose next call is then "not registered".
    let aborted = matches!(e, E::LocalServerMissing | E::RegisterNotFirstOperation);
    CoreError::Collective {
        what,
        reason: match aborted {
            true => "another worker failed and ended the collective".into(),
            false => format!("{e:?}"),
        },
        aborted,
    }
}

/// Membership of the collective. [`Membership::leave`] leaves it after training; dropped
/// without leaving (training failed or panicked), it resets this backend's collective, which
/// drops the operation the other workers wait on: their calls return an error instead of
/// waiting forever for a worker that is gone. One data-parallel run per backend type and
/// process at a time, as burn-collective's local server is one per backend type.
pub struct Membership<B: Backend> {
    peer: PeerId,
    left: bool,
    _backend: std::marker::PhantomData<B>,
}

impl<B: Backend> Membership<B> {
    /// Leaves the collective after this worker's last operation.
    pub fn leave(mut self) {
        self.left = true;
        let _ = finish_collective::<B>(self.peer);
    }
}

impl<B: Backend> Drop for Membership<B> {
    fn drop(&mut self) {
        if !self.left {
            reset_collective::<B>();
        }
    }
}
