//! Reproducible random draws on burn's CPU backends, for tests.
//!
//! burn's CPU backends (ndarray, Flex) draw random numbers from one process-wide generator, and
//! `cargo test` runs tests on parallel threads: a test that seeds the generator and compares
//! what it draws can see another test reseed it, or draw from it, in between. Every test of
//! the workspace that seeds the backend holds [`seed_lock`] (or takes [`seeded`]) for as long
//! as it draws.

use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::{Batch, BatchSource};

/// The process-wide lock around the backend's random generator. A test that panicked while
/// holding it leaves it poisoned; the next holder takes it anyway, since the generator is
/// reseeded by whoever holds it next.
pub fn seed_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes [`seed_lock`], then seeds `B`'s generator on `device` with `seed`; hold the guard for
/// as long as the test draws.
pub fn seeded<B: Backend>(device: &B::Device, seed: u64) -> MutexGuard<'static, ()> {
    let guard = seed_lock();
    B::seed(device, seed);
    guard
}

/// Every float parameter of `module` with its id, in visiting order, as host `f32` values: to
/// assert which weights a step changed, or that two models hold the same weights.
pub fn param_values<B: Backend, M: Module<B>>(module: &M) -> Vec<(ParamId, Vec<f32>)> {
    struct Values(Vec<(ParamId, Vec<f32>)>);
    impl<B: Backend> ModuleVisitor<B> for Values {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let data = p.val().into_data().convert::<f32>();
            self.0.push((p.id, data.to_vec().expect("f32 after convert")));
        }
    }
    let mut v = Values(Vec::new());
    module.visit(&mut v);
    v.0
}

/// Unlabelled rows of `d` features as a [`BatchSource`]: data for tests of trainers.
#[derive(Debug, Clone)]
pub struct Rows {
    /// The features, row after row.
    pub x: Vec<f32>,
    /// Features per row.
    pub d: usize,
}

impl<B: Backend> BatchSource<B> for Rows {
    fn num_samples(&self) -> usize {
        self.x.len() / self.d.max(1)
    }

    fn d_input(&self) -> usize {
        self.d
    }

    fn batch(&self, indices: &[usize], device: &B::Device) -> Batch<B> {
        let d = self.d;
        let v: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.x[i * d..(i + 1) * d].iter().copied())
            .collect();
        Batch {
            x: Tensor::from_data(TensorData::new(v, [indices.len(), d]), device),
            y: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

    type B = burn::backend::Flex;

    fn draw() -> Vec<f32> {
        let device = Default::default();
        Tensor::<B, 1>::random([16], Distribution::Default, &device)
            .into_data()
            .to_vec()
            .unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_draws_and_another_seed_others() {
        let device = Default::default();
        let a = {
            let _g = seeded::<B>(&device, 3);
            draw()
        };
        let b = {
            let _g = seeded::<B>(&device, 3);
            draw()
        };
        let c = {
            let _g = seeded::<B>(&device, 4);
            draw()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_poisoned_lock_is_still_taken() {
        let _ = std::thread::spawn(|| {
            let _g = seed_lock();
            panic!("poisons the lock");
        })
        .join();
        drop(seed_lock());
    }
}
