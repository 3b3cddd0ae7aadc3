//! `cargo xtask profile`: where the time of each `gen bench` row goes.
//!
//! Each row runs alone (`gen bench --only ROW`) under `perf record -e cpu-clock` (a software
//! clock, so it works in virtual machines without hardware counters). `perf report` gives each
//! symbol's share of the on-CPU samples, and the symbols are grouped into the kinds of work that
//! decide what would close a gap: matrix products, strided copies, element-wise kernels, exp/log,
//! allocation, thread hand-offs, the optimiser's loop, autodiff bookkeeping. A profile covers the
//! whole process, set-up and warm-up included, like the bench's own timings do not; the shares of
//! the measured loop dominate because it runs far longer.
//!
//! Output: a table per row on standard output, and `target/profile/ROW.json` with every kind's
//! share and the twenty heaviest symbols.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::json;

/// The rows compared with PyTorch (see `bench.rs`), profiled when no `--only` is given.
const DEFAULT_ROWS: [&str; 5] = [
    "mlp_ae_train",
    "mlp_vae_train",
    "cae_784_256_train",
    "dcgan_train",
    "encoder_inference",
];

/// The kinds of work, in the order a symbol is tested against them: the first whose pattern
/// matches its name (or its library's) takes it.
const KINDS: [(&str, &[&str]); 10] = [
    (
        "matrix products",
        &["gemm", "matrixmultiply", "openblas", "sgemm", "dot_"],
    ),
    ("convolution loops", &["conv", "im2col", "col2im"]),
    (
        "strided copies",
        &[
            "StridedIter",
            "to_contiguous",
            "strided",
            "copy_to_contiguous",
            "permute",
        ],
    ),
    (
        "exp/log",
        &[
            "libm", "expf", "logf", "__exp", "__log", "tanhf", "log1p", "exp_", "ln_",
        ],
    ),
    (
        "allocation and copies",
        &[
            "malloc",
            "free",
            "memcpy",
            "memmove",
            "memset",
            "alloc",
            "page",
            "mmap",
            "munmap",
            "_int_",
            "rep_movs",
            "rep_stos",
            "clear_user",
            "copy_user",
            "mm_",
            "pte",
            "lru",
            "folio",
        ],
    ),
    (
        "threads and locks",
        &[
            "futex",
            "rayon",
            "crossbeam",
            "sched",
            "spin",
            "switch",
            "wake",
            "park",
            "pthread",
            "syscall",
            "SYSCALL",
            "yield",
            "idle",
            "queued",
            "lock",
            "try_to_wake",
            "hrtimer",
        ],
    ),
    ("optimiser loop", &["optim", "Adam", "adam"]),
    (
        "element-wise kernels",
        &[
            "burn_flex::ops",
            "burn_ndarray",
            "ndarray::",
            "binary",
            "unary",
            "scalar",
            "macerator",
            "simd",
            "zip",
            "map",
        ],
    ),
    (
        "autodiff bookkeeping",
        &["burn_autodiff", "autodiff", "Graph", "Node", "hashbrown", "HashMap"],
    ),
    ("kernel, other", &["[k]"]),
];

/// The kind of a `perf report` line's symbol, in its library `dso`.
fn kind_of(dso: &str, symbol: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(_, pats)| pats.iter().any(|p| symbol.contains(p) || dso.contains(p)))
        .map_or("other", |(k, _)| k)
}

/// One line of `perf report --stdio --sort dso,sym`: `  12.34%  gen  [.] symbol`.
fn parse_line(line: &str) -> Option<(f64, String, String)> {
    let line = line.trim();
    let (pct, rest) = line.split_once('%')?;
    let pct: f64 = pct.trim().parse().ok()?;
    let rest = rest.trim();
    let (dso, sym) = rest.split_once(' ')?;
    let sym = sym.trim();
    // The symbol keeps its `[.]` (user) or `[k]` (kernel) mark, which `KINDS` reads.
    Some((pct, dso.to_string(), sym.to_string()))
}

pub fn profile(root: &Path, args: &[String], gen_bin: &Path) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut gen_args = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--only" => rows.push(it.next().context("--only needs a row name")?.clone()),
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask profile [--only ROW]… [GEN BENCH ARGS…]\n\
                     \n\
                     Profiles each `gen bench` row alone under `perf record -e cpu-clock` (default:\n\
                     the rows compared with PyTorch) and groups the samples by kind of work. Needs\n\
                     `perf` (Debian: linux-perf). Other arguments go to `gen bench` (default\n\
                     --backend flex). Writes target/profile/ROW.json."
                );
                return Ok(());
            }
            _ => gen_args.push(a.clone()),
        }
    }
    if rows.is_empty() {
        rows = DEFAULT_ROWS.iter().map(|r| r.to_string()).collect();
    }
    // `gen bench` runs every CPU backend unless told one; a profile is of one.
    if !gen_args.iter().any(|a| a == "--backend" || a.starts_with("--backend=")) {
        gen_args.extend(["--backend".to_string(), "flex".to_string()]);
    }
    let probe = Command::new("perf").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bail!("`perf` was not found: install it (Debian: apt-get install linux-perf) to profile");
    }
    let out_dir = root.join("target/profile");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    for row in &rows {
        let data = out_dir.join(format!("{row}.data"));
        let mut rec = Command::new("perf");
        rec.current_dir(root)
            .args(["record", "-q", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&data)
            .arg("--")
            .arg(gen_bin)
            .args(["bench", "--only", row])
            .args(&gen_args);
        crate::run(rec)?;
        let report = Command::new("perf")
            .current_dir(root)
            .args(["report", "--stdio", "--no-children", "--sort", "dso,sym", "-q", "-i"])
            .arg(&data)
            .output()
            .context("cannot run perf report")?;
        if !report.status.success() {
            bail!(
                "perf report on {} failed: {}",
                data.display(),
                String::from_utf8_lossy(&report.stderr)
            );
        }
        let text = String::from_utf8_lossy(&report.stdout);
        let lines: Vec<(f64, String, String)> = text.lines().filter_map(parse_line).collect();
        if lines.is_empty() {
            bail!("perf report on {} gave no samples", data.display());
        }
        let mut shares: Vec<(&str, f64)> = KINDS.iter().map(|(k, _)| (*k, 0.0)).collect();
        shares.push(("other", 0.0));
        for (pct, dso, sym) in &lines {
            let k = kind_of(dso, sym);
            if let Some(s) = shares.iter_mut().find(|(name, _)| *name == k) {
                s.1 += pct;
            }
        }
        println!("\n{row}: share of on-CPU samples by kind");
        for (k, s) in &shares {
            println!("  {k:<24} {s:>6.1} %");
        }
        println!("  heaviest symbols:");
        for (pct, dso, sym) in lines.iter().take(12) {
            println!("  {pct:>6.2} %  {:<24} {}", kind_of(dso, sym), short(sym));
        }
        let json = json!({
            "row": row,
            "gen_bench_args": gen_args,
            "kinds": shares.iter().map(|(k, s)| json!({"kind": k, "percent": s})).collect::<Vec<_>>(),
            "top_symbols": lines.iter().take(20).map(|(p, d, s)| json!({"percent": p, "dso": d, "symbol": s, "kind": kind_of(d, s)})).collect::<Vec<_>>(),
        });
        let path = out_dir.join(format!("{row}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("\nwritten to {}", out_dir.display());
    Ok(())
}

/// A symbol cut to 110 characters for the table.
fn short(sym: &str) -> String {
    if sym.chars().count() <= 110 {
        sym.to_string()
    } else {
        format!("{}…", sym.chars().take(109).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse_and_fall_into_kinds() {
        let l = parse_line("    12.34%  gen               [.] gemm_f32::microkernel::x86::avx512f").unwrap();
        assert_eq!((l.0, l.1.as_str()), (12.34, "gen"));
        assert_eq!(kind_of(&l.1, &l.2), "matrix products");
        let l = parse_line("  3.10%  [kernel.kallsyms]  [k] futex_wait").unwrap();
        assert_eq!(kind_of(&l.1, &l.2), "threads and locks");
        let l = parse_line("  1.00%  libc.so.6  [.] __memmove_avx_unaligned_erms").unwrap();
        assert_eq!(kind_of(&l.1, &l.2), "allocation and copies");
        let l = parse_line("  0.50%  gen  [.] burn_flex::strided_index::StridedIter::next").unwrap();
        assert_eq!(kind_of(&l.1, &l.2), "strided copies");
        let l = parse_line("  0.50%  libm.so.6  [.] __expf_fma").unwrap();
        assert_eq!(kind_of(&l.1, &l.2), "exp/log");
        let l = parse_line("  2.30%  gen  [.] burn_flex::ops::conv::conv3d_f32").unwrap();
        assert_eq!(kind_of(&l.1, &l.2), "convolution loops");
        let l = parse_line("  0.20%  gen  [.] core::fmt::write").unwrap();
        assert_eq!(kind_of(&l.1, &l.2), "other");
        assert!(parse_line("# comment").is_none());
        assert!(parse_line("").is_none());
    }
}
