//! `cargo xtask bench`: `gen bench` and the PyTorch reference (`../shared/bench/torch_reference.py`)
//! in one invocation, interleaved round by round on the same machine, with the ratio gen/PyTorch
//! of each workload both implement, and the peak memory of one MNIST-sized training epoch on each
//! side.
//!
//! The reference has no convolutional autoencoder or VAE: `xtask/bench/torch_conv.py` trains the
//! architectures of `gen bench`'s `conv_ae_train` and `conv_vae_train` with PyTorch, and runs
//! right after the reference in each round; its rows join the reference's.
//!
//! Each round runs the whole `gen bench` table and then the whole PyTorch table; a workload's
//! ratio is the median over rounds of the ratio within a round, so both sides of a ratio ran
//! minutes apart, never hours. The rows go to `target/bench/bench.json`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The PyTorch reference's workloads (by the prefix of their names) and the `gen bench` rows
/// that run the same model on the same batch.
const MATCHED: [(&str, &str); 7] = [
    ("(a)", "mlp_ae_train"),
    ("(b)", "mlp_vae_train"),
    ("(c)", "cae_784_256_train"),
    ("(d)", "dcgan_train"),
    ("(e)", "encoder_inference"),
    // xtask/bench/torch_conv.py
    ("(f)", "conv_ae_train"),
    ("(g)", "conv_vae_train"),
];

struct Options {
    rounds: usize,
    epoch: bool,
    gen_args: Vec<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        rounds: 3,
        epoch: true,
        gen_args: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                let v = it.next().context("--rounds needs a number")?;
                o.rounds = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("--rounds {v:?}: expected a whole number above 0"))?;
            }
            "--no-epoch" => o.epoch = false,
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask bench [--rounds N] [--no-epoch] [GEN BENCH ARGS…]\n\
                     \n\
                     Runs `gen bench` (release) and, when GEN_TORCH_PYTHON names a Python with torch\n\
                     (or ~/torch-ref/bin/python exists), ../shared/bench/torch_reference.py and\n\
                     xtask/bench/torch_conv.py (the conv rows' counterparts), one after the other,\n\
                     N rounds (default 3); then one MNIST-sized epoch on each side for peak\n\
                     memory (--no-epoch skips it). Other arguments go to `gen bench`, for example\n\
                     `--backend wgpu` (see `gen bench --help`). Rows: target/bench/bench.json."
                );
                std::process::exit(0);
            }
            _ => o.gen_args.push(a.clone()),
        }
    }
    Ok(o)
}

/// The `--backend X` and `--backend=X` arguments among `gen bench`'s.
fn backend_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--backend" {
            out.push(a.clone());
            out.extend(it.next().cloned());
        } else if a.starts_with("--backend=") {
            out.push(a.clone());
        }
    }
    out
}

/// Runs `cmd` to completion with stdout captured, polling the child's peak resident memory
/// (`VmHWM`, which only grows) every 20 ms. Returns stdout and the peak in MB.
fn run_measured(mut cmd: Command) -> anyhow::Result<(String, Option<f64>)> {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak: Option<f64> = None;
    let status = loop {
        if let Some(kb) = std::fs::read_to_string(&status_path).ok().and_then(|s| vm_hwm_kb(&s)) {
            peak = Some(peak.unwrap_or(0.0).max(kb / 1024.0));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader
        .join()
        .expect("stdout reader")
        .context("reading the child's stdout")?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok((out, peak))
}

fn vm_hwm_kb(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn read_rows(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a JSON list of rows", path.display()))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// The PyTorch rate of `gen`'s `workload` in one round of the reference's rows.
fn torch_rate(rows: &[Value], workload: &str) -> Option<f64> {
    let (prefix, _) = MATCHED.iter().find(|(_, w)| *w == workload)?;
    rows.iter()
        .find(|r| r["workload"].as_str().is_some_and(|w| w.starts_with(prefix)))?["median_per_s"]
        .as_f64()
}

/// The training rate printed by the reference's `--epoch` run: `(NNN.N samples/s, …`.
fn torch_epoch_rate(stdout: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.contains("training loop time"))?;
    let before = &line[..line.find(" samples/s")?];
    before.rsplit('(').next()?.trim().parse().ok()
}

/// The smallest and largest of `v`, if any.
fn spread(v: &[f64]) -> Option<(f64, f64)> {
    v.iter().fold(None, |acc, &x| match acc {
        None => Some((x, x)),
        Some((a, b)) => Some((a.min(x), b.max(x))),
    })
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

/// `cargo xtask bench`.
pub fn bench(root: &Path, args: &[String], gen_bin: PathBuf, torch: Option<PathBuf>) -> anyhow::Result<()> {
    let o = parse(args)?;
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let script = root.join("../shared/bench/torch_reference.py");
    let conv_script = root.join("xtask/bench/torch_conv.py");
    let torch = torch.filter(|_| script.is_file());
    if torch.is_none() {
        println!(
            "(PyTorch reference not run: set GEN_TORCH_PYTHON to a Python with torch and keep \
             ../shared/bench/torch_reference.py beside the project; see its README)"
        );
    }

    let mut gen_rounds: Vec<Vec<Value>> = Vec::new();
    let mut torch_rounds: Vec<Vec<Value>> = Vec::new();
    for round in 1..=o.rounds {
        eprintln!("== round {round}/{}: gen bench", o.rounds);
        let gen_json = out.join(format!("gen-{round}.json"));
        let mut c = Command::new(&gen_bin);
        c.current_dir(root)
            .arg("bench")
            .arg("--json")
            .arg(&gen_json)
            .args(&o.gen_args);
        c.stdout(Stdio::null());
        crate::run(c)?;
        gen_rounds.push(read_rows(&gen_json)?);
        if let Some(py) = &torch {
            eprintln!("== round {round}/{}: PyTorch reference", o.rounds);
            let torch_json = out.join(format!("torch-{round}.json"));
            let mut c = Command::new(py);
            c.arg(&script).args(["--threads", "2", "--json"]).arg(&torch_json);
            c.stdout(Stdio::null());
            crate::run(c)?;
            let mut rows = read_rows(&torch_json)?;
            eprintln!("== round {round}/{}: PyTorch convolutional counterparts", o.rounds);
            let conv_json = out.join(format!("torch-conv-{round}.json"));
            let mut c = Command::new(py);
            c.arg(&conv_script).args(["--threads", "2", "--json"]).arg(&conv_json);
            c.stdout(Stdio::null());
            crate::run(c)?;
            rows.extend(read_rows(&conv_json)?);
            torch_rounds.push(rows);
        }
    }

    // Rows in the order of the first round; each value is the median over rounds.
    let mut rows = Vec::new();
    for first in &gen_rounds[0] {
        let (w, b) = (
            first["workload"].as_str().unwrap_or("?"),
            first["backend"].as_str().unwrap_or("?"),
        );
        let same = |r: &&Value| r["workload"].as_str() == Some(w) && r["backend"].as_str() == Some(b);
        let per_round: Vec<Option<&Value>> = gen_rounds.iter().map(|rs| rs.iter().find(same)).collect();
        let values = |f: &str| -> Vec<f64> { per_round.iter().flatten().filter_map(|r| r[f].as_f64()).collect() };
        let field = |f: &str| median(values(f));
        let ours = values("median_per_s");
        let theirs: Vec<f64> = torch_rounds.iter().filter_map(|t| torch_rate(t, w)).collect();
        let ratio = median(
            per_round
                .iter()
                .zip(&torch_rounds)
                .filter_map(|(g, t)| Some(g.as_ref()?["median_per_s"].as_f64()? / torch_rate(t, w)?))
                .collect(),
        );
        rows.push(json!({
            "workload": w,
            "backend": b,
            "batch": first["batch"],
            "gen_per_s": median(ours.clone()),
            "gen_min_per_s": spread(&ours).map(|s| s.0),
            "gen_max_per_s": spread(&ours).map(|s| s.1),
            "torch_per_s": median(theirs.clone()),
            "torch_min_per_s": spread(&theirs).map(|s| s.0),
            "torch_max_per_s": spread(&theirs).map(|s| s.1),
            "ratio": ratio,
            "gflops": field("gflops"),
            "peak_rss_mb": field("peak_rss_mb"),
            "allocs_per_step": field("allocs_per_step"),
            "alloc_bytes_per_step": field("alloc_bytes_per_step"),
        }));
    }

    let mut epoch = Value::Null;
    if o.epoch {
        eprintln!("== one MNIST-sized epoch (60,000 x 784): gen");
        let gen_json = out.join("gen-epoch.json");
        let mut c = Command::new(&gen_bin);
        c.current_dir(root).args(["bench", "--epoch", "--json"]).arg(&gen_json);
        c.args(backend_args(&o.gen_args));
        let (_, peak) = run_measured(c)?;
        let row = read_rows(&gen_json)?
            .into_iter()
            .next()
            .context("gen bench --epoch wrote no row")?;
        let gen_peak = match (peak, row["peak_rss_mb"].as_f64()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let (mut torch_rate, mut torch_peak) = (None, None);
        if let Some(py) = &torch {
            eprintln!("== one MNIST-sized epoch (60,000 x 784): PyTorch reference");
            let mut c = Command::new(py);
            c.arg(&script).args(["--threads", "2", "--epoch"]);
            let (stdout, peak) = run_measured(c)?;
            torch_rate = torch_epoch_rate(&stdout);
            torch_peak = peak;
        }
        epoch = json!({
            "backend": row["backend"],
            "gen_per_s": row["median_per_s"],
            "gen_peak_rss_mb": gen_peak,
            "torch_per_s": torch_rate,
            "torch_peak_rss_mb": torch_peak,
        });
    }

    println!(
        "\n{:<22} {:<8} {:>5} {:>10} {:>17} {:>10} {:>17} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "workload",
        "backend",
        "batch",
        "gen/s",
        "gen min-max",
        "pytorch/s",
        "pytorch min-max",
        "ratio",
        "GFLOP/s",
        "peak MB",
        "allocs/st",
        "MB/step"
    );
    let range = |r: &Value, side: &str| match (
        r[format!("{side}_min_per_s")].as_f64(),
        r[format!("{side}_max_per_s")].as_f64(),
    ) {
        (Some(a), Some(b)) => format!("{a:.0}-{b:.0}"),
        _ => "-".into(),
    };
    for r in &rows {
        println!(
            "{:<22} {:<8} {:>5} {:>10} {:>17} {:>10} {:>17} {:>7} {:>8} {:>8} {:>9} {:>8}",
            r["workload"].as_str().unwrap_or("?"),
            r["backend"].as_str().unwrap_or("?"),
            r["batch"],
            fmt(r["gen_per_s"].as_f64(), 1),
            range(r, "gen"),
            fmt(r["torch_per_s"].as_f64(), 1),
            range(r, "torch"),
            fmt(
                r["ratio"].as_f64(),
                if r["ratio"].as_f64().is_some_and(|x| x < 0.1) {
                    3
                } else {
                    2
                }
            ),
            fmt(r["gflops"].as_f64(), 1),
            fmt(r["peak_rss_mb"].as_f64(), 0),
            fmt(r["allocs_per_step"].as_f64(), 0),
            fmt(r["alloc_bytes_per_step"].as_f64().map(|b| b / 1e6), 2),
        );
    }
    println!(
        "(samples/s: median over {} rounds of each side's median of timed runs, min-max over the \
         rounds; ratio: median over rounds of gen/PyTorch within a round; peak MB: the gen process \
         after the row; allocs/st and MB/step: heap allocations and bytes of a gen step)",
        o.rounds
    );
    if !epoch.is_null() {
        println!(
            "\none epoch of the MLP AE over 60,000 x 784 (batch 128), {}: gen {} samples/s, peak {} MB; \
             PyTorch {} samples/s, peak {} MB",
            epoch["backend"].as_str().unwrap_or("?"),
            fmt(epoch["gen_per_s"].as_f64(), 0),
            fmt(epoch["gen_peak_rss_mb"].as_f64(), 0),
            fmt(epoch["torch_per_s"].as_f64(), 0),
            fmt(epoch["torch_peak_rss_mb"].as_f64(), 0),
        );
    }
    let path = out.join("bench.json");
    let doc = json!({ "rounds": o.rounds, "rows": rows, "epoch": epoch });
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    println!("(rows also in {})", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_ignores_missing_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, f64::NAN, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn spread_is_min_and_max() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn reads_the_reference_epoch_line() {
        let out = "own cpu 1.98 cores\n  training loop time   : 3.300 s  (18181.8 samples/s, 118.2 GFLOP/s @ 3x-fwd convention)\n";
        assert_eq!(torch_epoch_rate(out), Some(18181.8));
        assert_eq!(torch_epoch_rate("nothing here"), None);
    }

    #[test]
    fn matches_reference_rows_by_prefix() {
        let rows = vec![
            json!({"workload": "(a) MLP AE train", "median_per_s": 100.0}),
            json!({"workload": "(c) Contractive AE train", "median_per_s": 50.0}),
            json!({"workload": "(f) Conv AE train", "median_per_s": 20.0}),
        ];
        assert_eq!(torch_rate(&rows, "mlp_ae_train"), Some(100.0));
        assert_eq!(torch_rate(&rows, "cae_784_256_train"), Some(50.0));
        assert_eq!(torch_rate(&rows, "mlp_vae_train"), None);
        assert_eq!(torch_rate(&rows, "conv_ae_train"), Some(20.0));
        assert_eq!(torch_rate(&rows, "conv_vae_train"), None);
    }

    #[test]
    fn parses_rounds_and_passes_the_rest_on() {
        let args: Vec<String> = ["--rounds", "2", "--backend", "wgpu", "--no-epoch"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&args).unwrap();
        assert_eq!((o.rounds, o.epoch), (2, false));
        assert_eq!(o.gen_args, ["--backend", "wgpu"]);
        let more: Vec<String> = ["--runs", "3", "--backend", "flex", "--backend=ndarray"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(backend_args(&more), ["--backend", "flex", "--backend=ndarray"]);
        assert!(parse(&["--rounds".to_string(), "0".to_string()]).is_err());
        assert!(parse(&["--rounds".to_string()]).is_err());
    }
}
