//! What a training step and a trainer's `fit` do differently as one worker of a data-parallel
//! run, in one place for every trainer ([`Trainer`](super::Trainer), gen-gan's `GanTrainer`):
//! [`Session`] forks the models and holds the worker's membership of the collective for the
//! whole fit; [`Workers`] gives a step its rows, weighs its loss, sums its gradients and says the
//! loss every worker judges. Alone ([`Workers::ALONE`], or no [`Parallel`]) each is the identity.
//! Compiled with or without gen-core's `collective` feature; without it there are no workers.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::Result;

/// A worker's place in a data-parallel run: [`DataParallel`](super::DataParallel).
#[cfg(feature = "collective")]
pub type Parallel = super::DataParallel;

/// Without gen-core's `collective` feature there are no data-parallel workers: this type has
/// no values, so every trainer trains alone.
#[cfg(not(feature = "collective"))]
#[derive(Debug, Clone)]
pub enum Parallel {}

/// How a step's rows, loss and gradients become the ones it takes: alone, as they are; as a
/// worker, its share of the batch's rows, its loss weighted by that share and its gradients
/// summed with the other workers'.
#[derive(Debug, Clone, Copy)]
pub struct Workers<'p> {
    parallel: Option<&'p Parallel>,
    share: f64,
}

impl<'p> Workers<'p> {
    /// One worker, training alone.
    pub const ALONE: Workers<'static> = Workers {
        parallel: None,
        share: 1.0,
    };

    /// The step of a global batch of `rows` rows, for `parallel`'s worker or alone.
    pub fn of(parallel: Option<&'p Parallel>, rows: usize) -> Self {
        match parallel {
            #[cfg(feature = "collective")]
            Some(p) => Self {
                parallel,
                share: p.share(rows),
            },
            #[cfg(not(feature = "collective"))]
            Some(never) => match *never {},
            None => {
                let _ = rows;
                Workers::ALONE
            }
        }
    }

    /// This worker's rows of the global batch `rows`.
    pub fn rows<'r>(&self, rows: &'r [usize]) -> &'r [usize] {
        match self.parallel {
            #[cfg(feature = "collective")]
            Some(p) => p.shard(rows),
            #[cfg(not(feature = "collective"))]
            Some(never) => match *never {},
            None => rows,
        }
    }

    /// The loss to differentiate: this worker's mean loss weighted by its share of the batch.
    pub fn weigh<B: Backend>(&self, loss: Tensor<B, 1>) -> Tensor<B, 1> {
        match self.parallel {
            Some(_) => loss.mul_scalar(self.share),
            None => loss,
        }
    }

    /// The gradients of the global batch: the sum of every worker's weighted ones.
    ///
    /// # Errors
    /// [`CoreError::Collective`](crate::CoreError::Collective) when the reduction fails or
    /// another worker failed; never alone.
    pub fn reduce<B: AutodiffBackend>(&self, grads: GradientsParams) -> Result<GradientsParams> {
        match self.parallel {
            #[cfg(feature = "collective")]
            Some(p) => p.reduce::<B>(grads),
            #[cfg(not(feature = "collective"))]
            Some(never) => match *never {},
            None => Ok(grads),
        }
    }

    /// The loss every worker judges (so that a non-finite one stops them all): the global
    /// batch's, summed from each worker's `step` loss weighted by its share; alone, `mean`.
    ///
    /// # Errors
    /// [`CoreError::Collective`](crate::CoreError::Collective) as [`Workers::reduce`].
    pub fn judged<B: Backend>(&self, mean: f64, step: f64, device: &B::Device) -> Result<f64> {
        match self.parallel {
            #[cfg(feature = "collective")]
            Some(p) => p.reduce_scalar::<B>(step * self.share, device),
            #[cfg(not(feature = "collective"))]
            Some(never) => match *never {},
            None => {
                let _ = (step, device);
                Ok(mean)
            }
        }
    }
}

/// A worker's time in the collective, from before its first step to after its last: started by
/// [`Session::start`], ended by [`Session::leave`] after training. Dropped without leaving
/// (training failed or panicked), it resets the collective so the other workers stop waiting
/// (see [`Membership`](super::Membership)). Alone it holds nothing.
pub struct Session<B: AutodiffBackend> {
    #[cfg(feature = "collective")]
    membership: Option<super::Membership<B::InnerBackend>>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> Session<B> {
    /// Joins the collective as `parallel`'s worker (after checking that a training set of `n`
    /// rows in batches of `batch` can be shared), or nothing alone.
    ///
    /// # Errors
    /// Those of [`DataParallel::check_batches`](super::DataParallel::check_batches) and
    /// [`DataParallel::join`](super::DataParallel::join).
    pub fn start(parallel: Option<&Parallel>, n: usize, batch: usize, device: &B::Device) -> Result<Self> {
        #[cfg(feature = "collective")]
        let membership = match parallel {
            Some(p) => {
                p.check_batches(n, batch)?;
                Some(p.join::<B::InnerBackend>(device)?)
            }
            None => None,
        };
        #[cfg(not(feature = "collective"))]
        {
            if let Some(never) = parallel {
                match *never {}
            }
            let _ = (n, batch, device);
        }
        Ok(Self {
            #[cfg(feature = "collective")]
            membership,
            _backend: std::marker::PhantomData,
        })
    }

    /// `module` with autodiff leaves of its own when this is a worker's session. Workers given
    /// clones of one model would share its parameters' leaves, and burn merges the graphs of
    /// tensors that share nodes: one worker's backward pass then frees nodes that another's
    /// still needs (a panic "Node should have a step registered"). The parameter ids, by which
    /// the gradients are matched across workers, stay.
    pub fn fork<M: Module<B>>(&self, module: M, device: &B::Device) -> M {
        #[cfg(feature = "collective")]
        if self.membership.is_some() {
            return module.fork(device);
        }
        let _ = device;
        module
    }

    /// Leaves the collective after the worker's last step.
    pub fn leave(self) {
        #[cfg(feature = "collective")]
        if let Some(m) = self.membership {
            m.leave();
        }
    }
}
