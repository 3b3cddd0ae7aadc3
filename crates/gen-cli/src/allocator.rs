//! mimalloc's settings for the `gen` binary: the one module of the workspace with `unsafe` code
//! (ARCHITECTURE.md, "Allocation").
//!
//! The MNIST-sized epoch of `cargo xtask bench` must peak at a quarter of PyTorch's memory at
//! most. With mimalloc's defaults it peaked at 234 MB (PyTorch: 902), because mimalloc asks for
//! transparent huge pages on the arenas it commits eagerly, and 2 MiB pages hold partly used
//! memory. `.cargo/config.toml` builds mimalloc with `MI_DEFAULT_ARENA_EAGER_COMMIT=0`: arenas
//! are committed as used, without huge pages, and the epoch peaks at 221 MB. But without huge
//! pages every purge (mimalloc returns memory left free for 10 ms to the kernel) is paid back
//! in 4 KiB page faults when the memory is used again: the DCGAN's training step allocates about
//! 110 MB, and `perf stat` of `gen bench --only dcgan_train --runs 3 --steps 20` counted 267,000
//! page faults against 22,000 with huge pages, at 610-700 samples/s against 720-820. Purging
//! memory only after it was free for a second ([`PURGE_DELAY_MS`]) brought them back to 24,000
//! with the same 221 MB peak. mimalloc reads that setting from `MIMALLOC_PURGE_DELAY` when the
//! process starts, or takes it from `mi_option_set`, a C function, hence the `unsafe`.
//!
//! # Invariants
//! - `mi_option_set` and `mi_option_get` take and return integers only (no pointer crosses), but
//!   mimalloc documents them as not thread safe: [`configure`] is called first thing in `main`,
//!   before any thread of ours exists (Rust's runtime starts none), and nothing else calls them.
//! - [`PURGE_DELAY`] is the index of `mi_option_purge_delay` in mimalloc 2's `mi_option_t`
//!   (libmimalloc-sys names no constant for it); the test below checks that the option at that
//!   index has the purge delay's default of 10 ms before [`configure`] sets it.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long};

// mimalloc, linked with its `override` feature, defines malloc and free: the system allocator
// below is mimalloc. glibc's malloc returned the large buffers of every training step to the
// kernel (heap trimming and mmap) and took them back as page faults, 13-18 % of a step; mimalloc
// keeps them for the next step (ARCHITECTURE.md, "Allocation").
use libmimalloc_sys as _;

/// The system allocator, counting allocations and bytes, so that `gen bench` can report what a
/// training step allocates (a few relaxed atomic additions per allocation).
#[global_allocator]
pub static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// `mi_option_purge_delay` in `mimalloc.h` (version 2): the 16th option of `mi_option_t`.
const PURGE_DELAY: c_int = 15;

/// How long freed memory stays with the process before mimalloc returns it to the kernel, in
/// milliseconds (mimalloc's default: 10).
pub const PURGE_DELAY_MS: c_long = 1000;

/// Sets mimalloc's options for this process, unless the user set them through mimalloc's
/// environment variable (`MIMALLOC_PURGE_DELAY`). Call it first thing in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: an integer option set before any other thread of this process exists (see
        // the module's invariants); the index is that of the purge delay (tested).
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// The purge delay mimalloc now uses, in milliseconds.
#[cfg(test)]
fn purge_delay_ms() -> c_long {
    // SAFETY: reads an integer option; see the module's invariants.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index names the purge delay: the option there holds mimalloc's default for it, 10 ms
    /// (`main` never runs in this test binary, so nothing has set it). Reading is all a test
    /// may do: the harness runs tests on threads of its own, and `mi_option_set` is not thread
    /// safe. That `configure` takes effect, `perf stat` of `gen bench` shows (the module's
    /// comment).
    #[test]
    fn the_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("skipped: MIMALLOC_PURGE_DELAY is set in the environment");
            return;
        }
        assert_eq!(
            purge_delay_ms(),
            10,
            "the option at index {PURGE_DELAY} is not mimalloc's purge delay"
        );
    }
}
