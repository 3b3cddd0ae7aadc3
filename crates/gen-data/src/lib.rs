#![doc = include_str!("../README.md")]

mod dataset;
mod digits;
mod error;
pub mod export;
pub mod idx;
pub mod images;
mod mnist;
pub mod pca;
mod png;
pub mod splits;
mod table;

pub use dataset::{Dataset, EVAL_BATCH, Standardizer, tensor_values};
pub use digits::digits;
pub use error::{DataError, Result};
pub use mnist::{DatasetSpec, FASHION_MNIST, MNIST, RemoteFile, Split, data_dir_from_env};
pub use png::{png_bytes, to_bytes};
pub use table::load_csv;

#[cfg(test)]
pub(crate) type TestBackend = burn::backend::Flex;

/// Tests that need an optional resource (the MNIST files) call this when it is missing: it prints
/// why the test is skipped, or panics when `GEN_REQUIRE_DATA` is set (as CI does).
#[cfg(test)]
pub(crate) fn skip_or_fail(why: &str) {
    if std::env::var_os("GEN_REQUIRE_DATA").is_some_and(|v| v != "0") {
        panic!("required by GEN_REQUIRE_DATA but unavailable: {why}");
    }
    eprintln!("skipped: {why}");
}
