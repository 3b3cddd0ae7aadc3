//! The `gen` binary end to end: a run folder, refusing to overwrite it, resuming it, evaluating
//! it against PCA, encoding, reconstructing, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gen_cmd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gen"))
        .current_dir(dir)
        .args(args)
        .env_remove("GEN_DATA_DIR")
        .output()
        .expect("gen runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = gen_cmd(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "gen {args:?} failed:\n{text}");
    text
}

/// Runs a command that must fail cleanly: exit code 1, an `error:` line, no panic.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = gen_cmd(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "gen {args:?} should fail with 1:\n{err}");
    assert!(err.starts_with("error:"), "gen {args:?}: {err}");
    assert!(!err.contains("panicked"), "gen {args:?} panicked:\n{err}");
    err
}

fn rows(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

#[test]
fn train_refuse_resume_eval_encode_reconstruct() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let train = [
        "train",
        "--name",
        "r",
        "--epochs",
        "3",
        "--hidden",
        "64",
        "--backend",
        "ndarray",
    ];
    let text = ok(dir, &train);
    assert!(text.contains("results in runs/r/"), "{text}");
    let run = dir.join("runs/r");
    for f in [
        "config.json",
        "best.ckpt",
        "checkpoint.ckpt",
        "metrics.csv",
        "loss_curve.svg",
        "reconstructions.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert_eq!(rows(&run.join("metrics.csv")), 3);

    let before = std::fs::read(run.join("checkpoint.ckpt")).unwrap();
    let err = fails(dir, &train);
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read(run.join("checkpoint.ckpt")).unwrap(),
        before,
        "a refused run must not touch the old one"
    );

    let text = ok(
        dir,
        &[
            "train",
            "--name",
            "r",
            "--resume",
            "--epochs",
            "5",
            "--backend",
            "ndarray",
        ],
    );
    assert!(text.contains("epoch   4") && !text.contains("epoch   3 "), "{text}");
    assert_eq!(rows(&run.join("metrics.csv")), 5);

    let text = ok(dir, &["eval", "--run", "runs/r", "--backend", "ndarray"]);
    assert!(
        text.contains("PCA, 8 components") && text.contains("mean of training set"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let (ae, mean) = (
        report["ae_mse"].as_f64().unwrap(),
        report["mean_baseline_mse"].as_f64().unwrap(),
    );
    assert!(ae < mean, "autoencoder {ae} vs mean image {mean}");

    ok(dir, &["encode", "--run", "runs/r", "--backend", "ndarray"]);
    let codes = std::fs::read_to_string(run.join("codes-test.csv")).unwrap();
    assert!(codes.starts_with("z0,z1,z2,z3,z4,z5,z6,z7,label\n"));
    assert_eq!(codes.lines().count(), 1 + 359);

    let png = dir.join("rec.png");
    ok(
        dir,
        &[
            "reconstruct",
            "--run",
            "runs/r",
            "--n",
            "5",
            "--output",
            png.to_str().unwrap(),
            "--backend",
            "ndarray",
        ],
    );
    let (w, h) = image_size(&png);
    assert_eq!((w, h), (5 * 33 + 1, 2 * 33 + 1));

    // A damaged checkpoint is reported with its path, not a panic.
    let best = run.join("best.ckpt");
    let mut bytes = std::fs::read(&best).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 10);
    std::fs::write(&best, bytes).unwrap();
    let err = fails(dir, &["eval", "--run", "runs/r", "--backend", "ndarray"]);
    assert!(err.contains("best.ckpt") && err.contains("corrupt"), "{err}");
}

fn image_size(path: &PathBuf) -> (u32, u32) {
    // PNG: width and height are big-endian u32 at bytes 16..24.
    let b = std::fs::read(path).unwrap();
    (
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        u32::from_be_bytes(b[20..24].try_into().unwrap()),
    )
}

#[test]
fn bad_input_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = fails(dir, &["train", "--lr", "-1"]);
    assert!(err.contains("learning_rate") && err.contains("-1"), "{err}");
    let err = fails(dir, &["train", "--latent", "64"]);
    assert!(err.contains("d_latent < d_input"), "{err}");
    let err = fails(dir, &["train", "--dataset", "csv:missing.csv"]);
    assert!(err.contains("missing.csv"), "{err}");
    std::fs::write(dir.join("bad.csv"), "a,b,y\n1,2,0\n3,oops,1\n").unwrap();
    let err = fails(dir, &["train", "--dataset", "csv:bad.csv"]);
    assert!(err.contains("line 3, column 2"), "{err}");
    std::fs::write(dir.join("c.toml"), "[train]\nnum_epochs = \"many\"\n").unwrap();
    let err = fails(dir, &["train", "--config", "c.toml"]);
    assert!(err.contains("c.toml") && err.contains("num_epochs"), "{err}");
    let err = fails(dir, &["train", "--dataset", "mnist", "--data-dir", "nowhere"]);
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("nowhere"),
        "{err}"
    );
    let err = fails(dir, &["eval", "--run", "runs/none"]);
    assert!(err.contains("runs/none"), "{err}");
    assert!(
        !dir.join("runs").exists(),
        "no failed command may leave a run folder behind"
    );
}

#[test]
fn csv_tables_train_with_standardised_features() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut csv = String::from("a,b,c,d,y\n");
    for i in 0..200 {
        let t = i as f32 * 0.1;
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            t.sin() * 50.0,
            t.cos(),
            t.sin() * 50.0 + t.cos(),
            7.0,
            i % 2
        ));
    }
    std::fs::write(dir.join("t.csv"), csv).unwrap();
    let text = ok(
        dir,
        &[
            "train",
            "--dataset",
            "csv:t.csv",
            "--latent",
            "2",
            "--hidden",
            "16",
            "--epochs",
            "30",
            "--backend",
            "ndarray",
        ],
    );
    assert!(text.contains("reconstructions.csv"), "{text}");
    let text = ok(dir, &["eval", "--run", "runs/ae-mlp-t-z2", "--backend", "ndarray"]);
    assert!(text.contains("PCA, 2 components"), "{text}");
}

#[test]
fn mnist_conv_autoencoder_from_the_data_folder() {
    let data = std::env::var_os("GEN_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if !data.join("mnist").is_dir() {
        assert!(
            std::env::var_os("GEN_REQUIRE_DATA").is_none_or(|v| v == "0"),
            "GEN_REQUIRE_DATA is set but there is no MNIST under {}",
            data.display()
        );
        eprintln!("skipped: no MNIST under {} (set GEN_DATA_DIR)", data.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = data.to_str().unwrap();
    let args = [
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        d,
        "--arch",
        "conv",
        "--latent",
        "16",
        "--limit",
        "3000",
        "--epochs",
        "2",
        "--name",
        "m",
    ];
    ok(tmp.path(), &args);
    let text = ok(tmp.path(), &["eval", "--run", "runs/m", "--data-dir", d]);
    assert!(text.contains("mnist test set (10000 samples)"), "{text}");
}
