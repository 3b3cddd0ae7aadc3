//! What the host-memory operations share: a table of them keyed by a backend's `TypeId`, the
//! moves of tensors to and from host buffers, and the matrix product ([`matmul`], faer's, on
//! matrices read in place by [`with_matrix`], or by [`with_values`] for tensors of any rank),
//! and [`Scratch`], buffers for an operation's intermediate values reused from a pool.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use faer::{Accum, MatMut, MatRef, Par};

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
/// ndarray's operations are).
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
    /// The values back as a tensor of their shape (moved in without a copy on Flex and ndarray).
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

/// Products with fewer multiply-adds than this run on one thread: at 128x256x32 (a million) faer's
/// product on both cores ran at a third of its one-thread speed, from 128x512x256 (16 million)
/// up it was faster (this 2-core machine, ARCHITECTURE.md, "Matrix products of our own").
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// `a · b` as a row-major `Vec` of `a.nrows() x b.ncols()` values, by faer's product; on the
/// threads of rayon's pool when it is large enough to pay for the hand-off.
///
/// # Panics
/// If the inner dimensions differ.
pub(crate) fn matmul(a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Vec<f32> {
    let mut out = vec![0.0f32; a.nrows() * b.ncols()];
    matmul_into(&mut out, a, b);
    out
}

/// [`matmul`] into a [`Scratch`] buffer: for products that are an operation's intermediate, not
/// its output.
pub(crate) fn matmul_scratch(a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Scratch {
    let mut out = Scratch::take(a.nrows() * b.ncols());
    matmul_into(&mut out, a, b);
    out
}

/// `dst ← a · b`, `dst` row-major `a.nrows() x b.ncols()`; its earlier values are never read.
///
/// # Panics
/// If the inner dimensions differ or `dst` has another length.
pub(crate) fn matmul_into(dst: &mut [f32], a: MatRef<'_, f32>, b: MatRef<'_, f32>) {
    assert_eq!(a.ncols(), b.nrows(), "matmul: inner dimensions differ");
    let (m, n) = (a.nrows(), b.ncols());
    assert_eq!(dst.len(), m * n, "matmul: the output holds another number of values");
    let parts = if m * n * a.ncols() < PARALLEL_MIN_MACS {
        1
    } else {
        rayon::current_num_threads()
    };
    if parts > 1 {
        keep_workers_awake();
    }
    product(MatMut::from_row_major_slice_mut(dst, m, n), a, b, parts);
}

/// How long after the last parallel operation began a worker keeps looking for the next one
/// instead of going to sleep.
const AWAKE_FOR: Duration = Duration::from_millis(2);

/// Whether a [`stay_awake`] job is running (or queued).
static AWAKE: AtomicBool = AtomicBool::new(false);

/// When the last parallel operation began, in nanoseconds from [`epoch`].
static LAST_PARALLEL: AtomicU64 = AtomicU64::new(0);

/// The most `GEN_AWAKE_US` may ask for (100 ms): a worker that spins is a core taken.
const AWAKE_MAX_US: u64 = 100_000;

/// [`AWAKE_FOR`] in nanoseconds, or `GEN_AWAKE_US` microseconds where that variable is set (0
/// lets the workers sleep at once, as rayon's do: for a machine shared with other work, or to
/// measure the difference; at most [`AWAKE_MAX_US`]).
fn awake_for_nanos() -> u64 {
    static NANOS: OnceLock<u64> = OnceLock::new();
    *NANOS.get_or_init(|| {
        std::env::var("GEN_AWAKE_US")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(AWAKE_FOR.as_nanos(), |us| u128::from(us.min(AWAKE_MAX_US)) * 1000)
            .try_into()
            .unwrap_or(u64::MAX)
    })
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Keeps a second thread of rayon's pool looking for work for [`AWAKE_FOR`] after this call
/// (see [`awake_for_nanos`]), instead of letting it sleep between the operations of a training
/// step.
///
/// rayon's idle workers spin for a few dozen rounds and then sleep on a futex, so every parallel
/// product a millisecond after the last one paid a wake-up of the second thread, and on this
/// virtual machine an idle core wakes slowly: thread hand-offs were an eighth of the contractive
/// autoencoder's step (ARCHITECTURE.md, "Threads"). OpenMP, under PyTorch, spins its workers for
/// a while for the same reason. Here one job, spawned when none runs, loops over
/// `rayon::yield_now` (which steals and runs whatever work the other threads queued) until no
/// parallel operation began for [`AWAKE_FOR`], then returns, and the thread sleeps as rayon's
/// do. It only runs on a thread that would otherwise be idle, and only for callers on a pool's
/// thread (the `gen` binary runs its command on one); called from outside any pool it does nothing.
pub(crate) fn keep_workers_awake() {
    // From outside a pool the job would be injected into the global pool, where a worker waiting
    // inside a join of someone else's could take it and hold that join for the spin.
    let Some(caller) = rayon::current_thread_index() else {
        return;
    };
    if rayon::current_num_threads() < 2 || awake_for_nanos() == 0 {
        return;
    }
    LAST_PARALLEL.store(nanos_since_epoch(), Ordering::Relaxed);
    if !AWAKE.swap(true, Ordering::AcqRel) {
        rayon::spawn(move || stay_awake(caller));
    }
}

/// The job of [`keep_workers_awake`]. Taken by the thread that spawned it (which pops its own
/// queue while it waits for a stolen half), it would hold that thread's caller until it returns,
/// so there it returns at once.
fn stay_awake(caller: usize) {
    if rayon::current_thread_index() != Some(caller) {
        let awake_for = awake_for_nanos();
        loop {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                continue;
            }
            let idle = nanos_since_epoch().saturating_sub(LAST_PARALLEL.load(Ordering::Relaxed));
            if idle > awake_for {
                break;
            }
            std::hint::spin_loop();
        }
    }
    AWAKE.store(false, Ordering::Release);
}

/// Scratch buffers of at most this many values in all are kept for reuse (256 MB): the DCGAN
/// step at batch 64 holds about 60 MB of them at its peak.
const SCRATCH_MAX_VALUES: usize = 64 << 20;

/// Buffers kept between operations for [`Scratch`], the most recently returned last.
static SCRATCH_POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of `f32` for an operation's intermediate values (im2col windows, layout copies,
/// products that are folded back), taken from a pool of buffers earlier operations gave back and
/// returned to it when dropped, so that a training step after the first allocates none of them.
/// Its values when taken are unspecified (those an earlier user left): a user writes every value
/// before reading it.
pub(crate) struct Scratch(Vec<f32>);

impl Scratch {
    /// A buffer of `len` values, reused where the pool holds one of at least `len` and at most
    /// twice that (the smallest such), otherwise a new one.
    pub(crate) fn take(len: usize) -> Self {
        let reused = {
            let mut pool = SCRATCH_POOL.lock().unwrap_or_else(|e| e.into_inner());
            let best = pool
                .iter()
                .enumerate()
                .filter(|(_, v)| (len..=len.saturating_mul(2)).contains(&v.capacity()))
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            best.map(|i| pool.remove(i))
        };
        let mut v = reused.unwrap_or_else(|| Vec::with_capacity(len));
        v.truncate(len);
        v.resize(len, 0.0);
        // The unit tests get buffers of NaN, so that an operation reading a value it did not
        // write fails them.
        #[cfg(test)]
        v.fill(f32::NAN);
        Self(v)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() == 0 {
            return;
        }
        let mut pool = SCRATCH_POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.push(v);
        // The oldest go first: they are the shapes the recent steps did not ask for again.
        let mut kept: usize = pool.iter().map(Vec::capacity).sum();
        while kept > SCRATCH_MAX_VALUES {
            kept -= pool.remove(0).capacity();
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

/// `dst ← a · b` in `parts` blocks of the output, halved along its longer side and run by
/// `rayon::join`, each block one thread's faer product. (faer's own parallel product runs on
/// spin barriers of its own over rayon's threads; on this 2-core machine the split measured
/// faster at every shape of the reference models: 190 against 168 GFLOP/s at 128x784x512, 197
/// against 173 at the DCGAN's 3136x128x1024.)
fn product(dst: MatMut<'_, f32>, a: MatRef<'_, f32>, b: MatRef<'_, f32>, parts: usize) {
    /// Halves are cut at multiples of the micro-kernel's tile.
    const TILE: usize = 16;
    let (m, n) = (dst.nrows(), dst.ncols());
    if parts < 2 || m.max(n) < 2 * TILE {
        faer::linalg::matmul::matmul(dst, Accum::Replace, a, b, 1.0, Par::Seq);
    } else if m >= n {
        let mid = (m / 2).next_multiple_of(TILE).min(m);
        let ((top, bottom), (a_top, a_bottom)) = (dst.split_at_row_mut(mid), a.split_at_row(mid));
        rayon::join(
            || product(top, a_top, b, parts / 2),
            || product(bottom, a_bottom, b, parts - parts / 2),
        );
    } else {
        let mid = (n / 2).next_multiple_of(TILE).min(n);
        let ((left, right), (b_left, b_right)) = (dst.split_at_col_mut(mid), b.split_at_col(mid));
        rayon::join(
            || product(left, a, b_left, parts / 2),
            || product(right, a, b_right, parts - parts / 2),
        );
    }
}

/// The rows and columns of a matrix tensor.
pub(crate) fn dims2<I: Backend>(t: &FloatTensor<I>) -> [usize; 2] {
    t.shape().dims::<2>()
}

/// Calls `f` with the values of the matrix `t` (an `f32` tensor in host memory): borrowed in place
/// from a Flex tensor laid out by rows or by columns (a transposed view), otherwise copied out.
pub(crate) fn with_matrix<I: Backend, R>(t: &FloatTensor<I>, f: impl FnOnce(MatRef<'_, f32>) -> R) -> R {
    #[cfg(feature = "flex")]
    if let Some(view) = (t as &dyn Any)
        .downcast_ref::<burn::backend::flex::FlexTensor>()
        .and_then(flex_matrix)
    {
        return f(view);
    }
    let [rows, cols] = dims2::<I>(t);
    let data = values(tensor::<I, 2>(t.clone()));
    f(MatRef::from_row_major_slice(&data, rows, cols))
}

/// Calls `f` with the values of `t` (an `f32` tensor of rank `D` in host memory) in row-major
/// order: borrowed in place from a contiguous Flex tensor, otherwise copied out.
pub(crate) fn with_values<I: Backend, const D: usize, R>(t: &FloatTensor<I>, f: impl FnOnce(&[f32]) -> R) -> R {
    #[cfg(feature = "flex")]
    if let Some(v) = (t as &dyn Any)
        .downcast_ref::<burn::backend::flex::FlexTensor>()
        .and_then(flex_values)
    {
        return f(v);
    }
    let data = values(tensor::<I, D>(t.clone()));
    f(&data)
}

/// A Flex tensor's values in place, if it is `f32` and contiguous (row-major).
#[cfg(feature = "flex")]
fn flex_values(t: &burn::backend::flex::FlexTensor) -> Option<&[f32]> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let (start, end) = t.layout().contiguous_offsets()?;
    t.storage::<f32>().get(start..end)
}

/// A Flex matrix's values in place, if they are laid out by rows or by columns.
#[cfg(feature = "flex")]
fn flex_matrix(t: &burn::backend::flex::FlexTensor) -> Option<MatRef<'_, f32>> {
    let layout = t.layout();
    if t.dtype() != DType::F32 || layout.shape().num_dims() != 2 {
        return None;
    }
    let [rows, cols] = layout.shape().dims::<2>();
    let start = layout.start_offset();
    let values = t.storage::<f32>().get(start..start + rows * cols)?;
    match *layout.strides() {
        [r, c] if (c == 1 || cols <= 1) && (r == cols as isize || rows <= 1) => {
            Some(MatRef::from_row_major_slice(values, rows, cols))
        }
        [r, c] if (r == 1 || rows <= 1) && (c == rows as isize || cols <= 1) => {
            Some(MatRef::from_column_major_slice(values, rows, cols))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer given back is taken again by a request it fits (at most twice its length), not
    /// by a smaller one; the pool keeps at most `SCRATCH_MAX_VALUES`; the unit tests' buffers
    /// hold NaN.
    #[test]
    fn scratch_buffers_are_reused_within_the_bound() {
        // A length no other test asks for, so that they do not take the buffer meanwhile.
        let len = 1_234_567;
        let first = Scratch::take(len);
        assert_eq!(first.len(), len);
        assert!(first.iter().all(|v| v.is_nan()));
        let at = first.as_ptr();
        drop(first);
        let again = Scratch::take(len - 1000);
        assert_eq!((again.as_ptr(), again.len()), (at, len - 1000));
        drop(again);
        let small = Scratch::take(len / 3);
        assert_ne!(small.as_ptr(), at);
        let many: Vec<Scratch> = (0..5).map(|_| Scratch::take(SCRATCH_MAX_VALUES / 4 + 1)).collect();
        drop(many);
        let kept: usize = SCRATCH_POOL.lock().unwrap().iter().map(Vec::capacity).sum();
        assert!(kept <= SCRATCH_MAX_VALUES, "{kept} values kept");
    }

    /// `matmul` against the textbook triple loop, on one thread and split (above the threshold,
    /// along rows and along columns), with operands by rows and transposed.
    #[test]
    fn products_match_the_triple_loop() {
        let shapes = [
            (1, 1, 1),
            (3, 5, 2),
            (0, 3, 4),
            (4, 0, 3),
            (33, 7, 65),
            (700, 30, 201),
            (70, 30, 2001),
        ];
        for (m, k, n) in shapes {
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5).collect();
                let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 17) as f32 / 17.0 - 0.5).collect();
                // Stored transposed when `_t`: then the view is the transpose of a row-major slice.
                let a_view = if a_t {
                    MatRef::from_row_major_slice(&a, k, m).transpose()
                } else {
                    MatRef::from_row_major_slice(&a, m, k)
                };
                let b_view = if b_t {
                    MatRef::from_row_major_slice(&b, n, k).transpose()
                } else {
                    MatRef::from_row_major_slice(&b, k, n)
                };
                let got = matmul(a_view, b_view);
                assert_eq!(got.len(), m * n);
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 = (0..k).map(|l| a_view[(i, l)] * b_view[(l, j)]).sum();
                        let v = got[i * n + j];
                        assert!(
                            (v - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}x{k}x{n} (transposed {a_t}, {b_t}) at ({i}, {j}): {v} against {want}"
                        );
                    }
                }
            }
        }
    }
}
