//! The integration tests of the toolkit, in one test binary: each module is one subject.
//!
//! One binary rather than one per file, because each test crate compiles burn's generic
//! backends anew (a minute or more apiece on a clean build). Tests that draw from a backend's
//! process-wide random generator hold [`common::seed_lock`], so sharing the process changes none
//! of their draws.

mod common;

mod ae_family;
mod backends;
mod checkpoint;
mod end_to_end;
mod gan;
mod vae;
