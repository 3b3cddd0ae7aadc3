//! `cargo xtask`: the project's tasks.
//!
//! - `cargo xtask train [ARGS…]`: the main job. With no arguments, trains the default
//!   autoencoder on the embedded digits (replacing the previous default run); otherwise passes
//!   the arguments to `gen train` (see `gen train --help`).
//! - `cargo xtask bench [--rounds N] [ARGS…]`: `gen bench` in a release build and, when
//!   `GEN_TORCH_PYTHON` names a Python with torch (or `~/torch-ref/bin/python` exists), the
//!   PyTorch reference, interleaved round by round, with the ratio of each shared workload and
//!   the peak memory of an MNIST-sized epoch (see `bench.rs`).
//! - `cargo xtask report [--quick] [--only SECTION,…] [--compare OLD.json]`: the quality suite
//!   through the release `gen` binary, written to `report/REPORT.md` and `report/report.json`
//!   (see `report.rs`).
//! - `cargo xtask profile [--only ROW]… [ARGS…]`: each `gen bench` row alone under `perf`, its
//!   on-CPU time grouped by kind of work (see `profile.rs`).
//! - `cargo xtask ci`: formatting, clippy with warnings denied, the tests, the docs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod bench;
mod profile;
mod report;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "train" => train(&rest),
        "bench" => bench(&rest),
        "report" => report::report(&project_root(), &rest, build_gen),
        "profile" => profile(&rest),
        "ci" => ci(),
        "" | "help" | "--help" | "-h" => {
            println!("usage: cargo xtask <train|bench|profile|report|ci> [ARGS…]  (cargo xtask report --help)");
            Ok(())
        }
        other => bail!("unknown task {other:?}; expected train, bench, profile, report or ci"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(project_root());
    // `cargo run` gives xtask the variables of its own package (CARGO_PKG_NAME, CARGO_MANIFEST_DIR,
    // …). Some build scripts (ring's) ask to rerun when those change, so passing them on would
    // make every `cargo xtask` rebuild ring and all above it, and a plain `cargo build --release`
    // afterwards rebuild them again.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || k == "OUT_DIR"
        {
            c.env_remove(&key);
        }
    }
    c
}

fn run(mut cmd: Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Builds the release `gen` binary and returns its path.
fn build_gen() -> anyhow::Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--release", "--quiet", "-p", "gen-cli", "--bin", "gen"]);
    run(c)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("release").join("gen"))
}

fn train(args: &[String]) -> anyhow::Result<()> {
    let gen_bin = build_gen()?;
    let mut c = Command::new(gen_bin);
    c.current_dir(project_root()).arg("train");
    if args.is_empty() {
        // The main job: the default run, replaced each time it is repeated.
        c.args(["--force", "--patience", "25", "--epochs", "200"]);
    }
    c.args(args);
    run(c)
}

fn torch_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GEN_TORCH_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join("torch-ref/bin/python");
    p.is_file().then_some(p)
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return bench::bench(&project_root(), args, PathBuf::new(), None);
    }
    bench::bench(&project_root(), args, build_gen()?, torch_python())
}

fn profile(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return profile::profile(&project_root(), args, Path::new(""));
    }
    profile::profile(&project_root(), args, &build_gen()?)
}

fn ci() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    let mut c = cargo();
    // The release profile throughout, as `.ci/run` (which says why).
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--release",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    let mut c = cargo();
    c.args(["test", "--workspace", "--release"]);
    run(c)?;
    let mut c = cargo();
    c.args(["doc", "--workspace", "--no-deps", "--release"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(c)
}
