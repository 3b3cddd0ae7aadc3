//! What the host-memory operations share: a table of them keyed by a backend's `TypeId`, and the
//! moves of tensors to and from host buffers.
//!
//! The table lets models generic over any [`Backend`](burn::tensor::backend::Backend) find an
//! operation of ours for the backends a binary registered, without an extra trait bound.
//! [`fastconv`](super::fastconv) and [`fastdense`](super::fastdense) each keep one.
//!
//! # Where the host loops are compiled
//! The loops over host memory (activation passes, im2col, layout changes) are not generic, so
//! without `#[inline]` they would be compiled once, in gen-core, with gen-core's optimisation
//! level; this workspace builds the library crates at `opt-level = 1` (Cargo.toml), where LLVM
//! does not vectorise loops, and the passes ran on scalar instructions (`objdump` of the `gen`
//! binary: no `zmm` register in the AVX-512 copy of the activation pass). Each is `#[inline]`, so
//! it is compiled in the crate that instantiates the generic layer for a backend (`gen-cli`, or a
//! user's binary), at that crate's level.

use std::any::{Any, TypeId};
use std::sync::RwLock;

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};

/// A tensor (or any value) moved through a type-erased function pointer.
pub(crate) type Erased = Box<dyn Any>;

/// Entries `E` keyed by the `TypeId` of the backend they serve.
pub(crate) struct Registry<E: Copy>(RwLock<Vec<(TypeId, E)>>);

impl<E: Copy> Registry<E> {
    pub(crate) const fn new() -> Self {
        Self(RwLock::new(Vec::new()))
    }

    /// Adds `entry` for `backend` unless one is there already (registration is idempotent).
    pub(crate) fn insert(&self, backend: TypeId, entry: E) {
        let mut table = self.0.write().unwrap_or_else(|e| e.into_inner());
        if table.iter().all(|(id, _)| *id != backend) {
            table.push((backend, entry));
        }
    }

    /// The entry of backend `B`, if one was registered.
    pub(crate) fn get<B: 'static>(&self) -> Option<E> {
        let id = TypeId::of::<B>();
        let table = self.0.read().unwrap_or_else(|e| e.into_inner());
        table.iter().find(|(key, _)| *key == id).map(|(_, e)| *e)
    }
}

/// The value behind an [`Erased`] box; the tables hold functions of the backend they are keyed
/// by, so the type always matches.
pub(crate) fn unerase<T: 'static>(x: Erased) -> T {
    *x.downcast::<T>()
        .expect("a host-operation table holds functions of the backend it is keyed by")
}

pub(crate) fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

pub(crate) fn tensor<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// A tensor's `f32` values in host memory, read and written in place: moved out of the tensor
/// without a copy when it is contiguous and uniquely owned (as the outputs of Flex's and
/// ndarray's operations are), and moved back the same way by [`HostValues::into_tensor`].
/// (`TensorData::into_vec` would copy: Flex allocates with a wider alignment than a `Vec<f32>`'s.)
pub(crate) struct HostValues(TensorData);

impl std::ops::Deref for HostValues {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        self.0.as_slice().expect("the host path runs on f32 tensors")
    }
}

impl std::ops::DerefMut for HostValues {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.0.as_mut_slice().expect("the host path runs on f32 tensors")
    }
}

impl HostValues {
    /// The values back in a tensor of their shape.
    pub(crate) fn into_tensor<I: Backend, const D: usize>(self, device: &I::Device) -> Tensor<I, D> {
        Tensor::from_data(self.0, device)
    }
}

/// The values of `t` on the host (see [`HostValues`]).
pub(crate) fn values<I: Backend, const D: usize>(t: Tensor<I, D>) -> HostValues {
    HostValues(t.into_data())
}

/// A tensor of `I` holding `v` (moved in without a copy on Flex and ndarray).
pub(crate) fn host_tensor<I: Backend, const D: usize>(
    v: Vec<f32>,
    shape: [usize; D],
    device: &I::Device,
) -> Tensor<I, D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Whether the host path applies to these tensors: all `f32`, on a backend whose tensors live in
/// host memory (Flex or ndarray).
pub(crate) fn on_host<I: Backend>(tensors: &[&FloatTensor<I>]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
        && tensors
            .first()
            .is_some_and(|t| matches!(I::name(&I::float_device(t)).as_str(), "flex" | "ndarray"))
}
