// Shared by the examples (each includes it with `mod common;`): the quick mode CI runs, and the
// embedded digits split the way every example splits them.

#![allow(dead_code)]

use gen_toolkit::prelude::*;

/// `--quick` (or `GEN_EXAMPLE_QUICK=1`): a few epochs, enough to run every step; CI runs each
/// example this way.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick") || std::env::var_os("GEN_EXAMPLE_QUICK").is_some_and(|v| v != "0")
}

/// `full` epochs, or `quick` of them in quick mode.
pub fn epochs(full: usize, quick_epochs: usize) -> usize {
    if quick() { quick_epochs } else { full }
}

/// The embedded 8x8 digits: training, validation and test splits (72 / 8 / 20 %).
pub fn digit_splits() -> (Dataset, Dataset, Dataset) {
    let digits = digits().expect("the digits are embedded");
    let (pool, test) = digits.split(0.2, 0).expect("split");
    let (train, valid) = pool.split(0.1, 1).expect("split");
    (train, valid, test)
}
