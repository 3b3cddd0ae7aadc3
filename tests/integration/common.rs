//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// burn's CPU backends share one random generator per process: tests that seed it hold this.
pub fn seed_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the variable is set to something other than `0`.
fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v != "0")
}

/// Prints why a test is skipped, or fails it when `var` says the resource is required (CI).
pub fn skip(var: &str, why: &str) {
    assert!(!required(var), "{var} is set but {why}");
    eprintln!("skipped: {why} (set {var}=1 to make this a failure)");
}

/// The folder with mnist/ and fashion-mnist/: `GEN_DATA_DIR`, else `../shared/data` beside the
/// checkout. `None` (after saying why) when absent.
pub fn data_dir() -> Option<PathBuf> {
    let p = std::env::var_os("GEN_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if p.join("mnist").is_dir() {
        Some(p)
    } else {
        skip(
            "GEN_REQUIRE_DATA",
            &format!("no MNIST files under {} (set GEN_DATA_DIR)", p.display()),
        );
        None
    }
}
