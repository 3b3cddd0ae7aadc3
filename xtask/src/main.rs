//! `cargo xtask`: the project's tasks.
//!
//! - `cargo xtask train [ARGS…]`: the main job. With no arguments, trains the default
//!   autoencoder on the embedded digits (replacing the previous default run); otherwise passes
//!   the arguments to `gen train` (see `gen train --help`).
//! - `cargo xtask bench [ARGS…]`: `gen bench` in a release build, and the PyTorch reference beside
//!   it when `GEN_TORCH_PYTHON` names a Python with torch (or `~/torch-ref/bin/python` exists).
//! - `cargo xtask report [--quick] [--only SECTION,…] [--compare OLD.json]`: the quality suite
//!   through the release `gen` binary, written to `report/REPORT.md` and `report/report.json`
//!   (see `report.rs`).
//! - `cargo xtask ci`: formatting, clippy with warnings denied, the tests, the docs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod report;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "train" => train(&rest),
        "bench" => bench(&rest),
        "report" => report::report(&project_root(), &rest, build_gen),
        "ci" => ci(),
        "" | "help" | "--help" | "-h" => {
            println!("usage: cargo xtask <train|bench|report|ci> [ARGS…]  (cargo xtask report --help)");
            Ok(())
        }
        other => bail!("unknown task {other:?}; expected train, bench, report or ci"),
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
    let gen_bin = build_gen()?;
    let out = project_root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let gen_json = out.join("gen.json");
    let mut c = Command::new(&gen_bin);
    c.current_dir(project_root())
        .arg("bench")
        .arg("--json")
        .arg(&gen_json)
        .args(args);
    run(c)?;
    let gen_rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&gen_json)?)?;

    let script = project_root().join("../shared/bench/torch_reference.py");
    let torch = match (torch_python(), script.is_file()) {
        (Some(py), true) => {
            let torch_json = out.join("torch.json");
            let mut c = Command::new(py);
            c.arg(&script).args(["--threads", "2", "--json"]).arg(&torch_json);
            c.stdout(std::process::Stdio::null());
            run(c)?;
            let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&torch_json)?)?;
            Some(rows)
        }
        _ => {
            println!(
                "\n(PyTorch reference not run: set GEN_TORCH_PYTHON to a Python with torch; see ../shared/bench/README.md)"
            );
            None
        }
    };
    let torch_rate = |workload: &str| -> Option<f64> {
        let prefix = match workload {
            "mlp_ae_train" => "(a)",
            "mlp_vae_train" => "(b)",
            "dcgan_train" => "(d)",
            "encoder_inference" => "(e)",
            _ => return None,
        };
        torch
            .as_ref()?
            .iter()
            .find(|r| r["workload"].as_str().is_some_and(|w| w.starts_with(prefix)))?["median_per_s"]
            .as_f64()
    };
    println!(
        "\n{:<22} {:<8} {:>12} {:>12} {:>9}",
        "workload", "backend", "gen/s", "pytorch/s", "ratio"
    );
    for r in &gen_rows {
        let w = r["workload"].as_str().unwrap_or("?");
        let ours = r["median_per_s"].as_f64().unwrap_or(f64::NAN);
        let theirs = torch_rate(w);
        println!(
            "{:<22} {:<8} {:>12.1} {:>12} {:>9}",
            w,
            r["backend"].as_str().unwrap_or("?"),
            ours,
            theirs.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into()),
            theirs.map(|t| format!("{:.2}", ours / t)).unwrap_or_else(|| "-".into())
        );
    }
    println!(
        "(samples/s, median of the timed runs; rows also in {})",
        gen_json.display()
    );
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    let mut c = cargo();
    c.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    run(c)?;
    let mut c = cargo();
    c.args(["test", "--workspace", "--release"]);
    run(c)?;
    let mut c = cargo();
    c.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(c)
}
