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
        "flex",
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
        &["train", "--name", "r", "--resume", "--epochs", "5", "--backend", "flex"],
    );
    assert!(text.contains("epoch   4") && !text.contains("epoch   3 "), "{text}");
    assert_eq!(rows(&run.join("metrics.csv")), 5);

    let text = ok(dir, &["eval", "--run", "runs/r", "--backend", "flex"]);
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

    ok(dir, &["encode", "--run", "runs/r", "--backend", "flex"]);
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
            "flex",
        ],
    );
    let (w, h) = image_size(&png);
    assert_eq!((w, h), (5 * 33 + 1, 2 * 33 + 1));

    // A backend this build leaves out is refused with the feature that adds it.
    if !cfg!(feature = "ndarray") {
        let err = fails(dir, &["eval", "--run", "runs/r", "--backend", "ndarray"]);
        assert!(err.contains("--features ndarray"), "{err}");
    }

    // A damaged checkpoint is reported with its path, not a panic.
    let best = run.join("best.ckpt");
    let mut bytes = std::fs::read(&best).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 10);
    std::fs::write(&best, bytes).unwrap();
    let err = fails(dir, &["eval", "--run", "runs/r", "--backend", "flex"]);
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
            "flex",
        ],
    );
    assert!(text.contains("reconstructions.csv"), "{text}");
    let text = ok(dir, &["eval", "--run", "runs/ae-mlp-t-z2", "--backend", "flex"]);
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

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const QUICK: [&str; 6] = ["--hidden", "32", "--backend", "flex", "--batch-size", "32"];

fn with_quick<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(QUICK).collect()
}

#[test]
fn every_family_trains_and_eval_reports_its_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (family, extra) in [
        ("sparse-kl", vec!["--latent", "96", "--weight", "0.05"]),
        ("sparse-l1", vec![]),
        ("contractive", vec!["--projections", "2"]),
        ("denoising", vec!["--noise", "salt-pepper:0.2"]),
    ] {
        let mut args = vec!["train", "--model", family, "--epochs", "3", "--name", family];
        args.extend(extra);
        ok(dir, &with_quick(&args));
        let text = ok(dir, &["eval", "--run", &format!("runs/{family}"), "--backend", "flex"]);
        assert!(text.contains(&format!("code ({family})")), "{text}");
        assert!(text.contains("3x3 median") && text.contains("bits/value"), "{text}");
        let r = json(&dir.join(format!("runs/{family}/eval.json")));
        assert_eq!(r["variant"], family);
        assert_eq!(r["denoising"].as_array().unwrap().len(), 3);
        assert_eq!(r["compression"].as_array().unwrap().len(), 3);
        assert!(r["jacobian_frobenius_sq"].as_f64().unwrap() > 0.0);
        assert!(dir.join(format!("runs/{family}/denoise-sigma0.3.png")).is_file());
    }
    let cfg = json(&dir.join("runs/sparse-kl/config.json"));
    assert_eq!(cfg["autoencoder"]["regularizer"]["kind"], "sparse_kl");
    assert_eq!(cfg["autoencoder"]["latent_activation"], "sigmoid");
    let err = fails(dir, &["train", "--model", "sparse-kl", "--rho", "1.5"]);
    assert!(err.contains("rho"), "{err}");
    let err = fails(dir, &["train", "--noise", "blur:2"]);
    assert!(err.contains("unknown noise"), "{err}");
}

#[test]
fn sweep_writes_the_table_plots_and_2d_scatter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = ok(dir, &with_quick(&["sweep", "--latents", "2,6", "--epochs", "4"]));
    assert!(text.contains("| latent | AE squared error"), "{text}");
    let out = dir.join("runs/sweep-ae-mlp-digits");
    for f in [
        "sweep.json",
        "sweep.md",
        "sweep-error.svg",
        "sweep-rate.svg",
        "codes-z2.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = json(&out.join("sweep.json"));
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[1]["ae_squared_error_per_image"].as_f64() < rows[0]["ae_squared_error_per_image"].as_f64());
    assert!(r["png_bits_per_image"].as_f64().unwrap() > 0.0);
    assert!(
        dir.join("runs/ae-mlp-digits-z6/best.ckpt").is_file(),
        "each size is a run of its own"
    );

    ok(dir, &["encode", "--run", "runs/ae-mlp-digits-z2", "--backend", "flex"]);
    let npy = std::fs::read(dir.join("runs/ae-mlp-digits-z2/codes-test.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    assert!(String::from_utf8_lossy(&npy[..128]).contains("'shape': (359, 2)"));
    assert!(dir.join("runs/ae-mlp-digits-z2/codes-test-labels.npy").is_file());
}

#[test]
fn anomaly_detection_on_digits_and_on_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = ok(
        dir,
        &with_quick(&["anomaly", "--normal-class", "0", "--epochs", "40", "--latent", "4"]),
    );
    assert!(text.contains("| 0 |"), "{text}");
    let r = json(&dir.join("runs/anomaly-ae-mlp-digits-z4/anomaly.json"));
    let auroc = r["rows"][0]["reconstruction"]["auroc"].as_f64().unwrap();
    assert!(auroc > 0.85, "digit 0 against the rest: AUROC {auroc}");
    assert!(dir.join("runs/anomaly-ae-mlp-digits-z4/class-0/scores.csv").is_file());
    // On an image set scored by the reconstruction error, the MLP starts from PCA's solution.
    let stored = json(&dir.join("runs/anomaly-ae-mlp-digits-z4/class-0/config.json"));
    assert_eq!(stored["autoencoder"]["pca_path"].as_bool(), Some(true), "{stored}");

    // A table: normal rows on a 2-D plane in 6-D, outliers off it.
    let mut csv = String::from("a,b,c,d,e,f,y\n");
    for i in 0..400 {
        let (s, t) = ((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos());
        let off = if i % 10 == 0 { 3.0 } else { 0.0 };
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            s,
            t,
            s + t + off,
            s - t,
            2.0 * s - off,
            t,
            u8::from(off > 0.0)
        ));
    }
    std::fs::write(dir.join("tab.csv"), csv).unwrap();
    ok(
        dir,
        &with_quick(&[
            "anomaly",
            "--dataset",
            "csv:tab.csv",
            "--epochs",
            "60",
            "--latent",
            "2",
            "--ensemble",
            "2",
            "--force",
        ]),
    );
    let r = json(&dir.join("runs/anomaly-ae-mlp-tab-z2/anomaly.json"));
    let auroc = r["rows"][0]["reconstruction"]["auroc"].as_f64().unwrap();
    assert!(auroc > 0.9, "off-plane outliers: AUROC {auroc}");
    // With --ensemble 2 the ensemble is what is thresholded; its second member has a folder,
    // and the first member's folder holds the scores with the ensemble's column.
    let ensemble = r["mean_auroc_ensemble"].as_f64().unwrap();
    assert!(ensemble > 0.9, "off-plane outliers: ensemble AUROC {ensemble}");
    assert_eq!(r["mean_auroc"].as_f64(), Some(ensemble));
    assert!(
        dir.join("runs/anomaly-ae-mlp-tab-z2/table-member-1/config.json")
            .is_file()
    );
    // Tables keep the PCA path off by default.
    let stored = json(&dir.join("runs/anomaly-ae-mlp-tab-z2/table/config.json"));
    assert_eq!(stored["autoencoder"]["pca_path"].as_bool(), Some(false), "{stored}");
    // Each member's folder records the seed it trained with: the run's, then one more.
    let seed = stored["run"]["train"]["seed"].as_u64().unwrap();
    let member = json(&dir.join("runs/anomaly-ae-mlp-tab-z2/table-member-1/config.json"));
    assert_eq!(member["run"]["train"]["seed"].as_u64(), Some(seed + 1), "{member}");
    let scores = std::fs::read_to_string(dir.join("runs/anomaly-ae-mlp-tab-z2/table/scores.csv")).unwrap();
    assert!(
        scores.starts_with(
            "row,label,anomaly,reconstruction_score,latent_score,combined_score,ensemble_score,predicted\n"
        )
    );
    // The seeded protocol: every detector on each seed's split, mean ± sd over the seeds.
    let text = ok(
        dir,
        &with_quick(&[
            "anomaly",
            "--dataset",
            "csv:tab.csv",
            "--epochs",
            "30",
            "--latent",
            "2",
            "--seeds",
            "0,1",
            "--ensemble",
            "2",
            "--force",
        ]),
    );
    assert!(text.contains("| iforest (baseline) |"), "{text}");
    let r = json(&dir.join("runs/anomaly-ae-mlp-tab-z2/anomaly.json"));
    let detectors = r["detectors"].as_array().unwrap();
    assert_eq!(detectors.len(), 7, "{r}");
    for d in detectors {
        assert_eq!(d["per_seed"].as_array().unwrap().len(), 2, "{d}");
    }
    assert_eq!(r["config"]["train_fraction"].as_f64(), Some(0.6));
    assert_eq!(r["config"]["pca_components"].as_u64(), Some(2));
    let member = json(&dir.join("runs/anomaly-ae-mlp-tab-z2/seed-1-member-1/config.json"));
    assert_eq!(member["run"]["train"]["seed"].as_u64(), Some(seed + 1001), "{member}");
    let err = fails(dir, &["anomaly", "--seeds", "0", "--normal-class", "0", "--force"]);
    assert!(err.contains("--seeds is the protocol of tables"), "{err}");
    let err = fails(dir, &["anomaly", "--dataset", "csv:tab.csv", "--normal-class", "1"]);
    assert!(err.contains("image sets"), "{err}");
    let err = fails(dir, &["anomaly", "--normal-class", "42", "--epochs", "1", "--force"]);
    assert!(err.contains("42"), "{err}");
    let err = fails(
        dir,
        &[
            "anomaly",
            "--normal-class",
            "1",
            "--contamination",
            "0.9",
            "--force",
            "--epochs",
            "1",
        ],
    );
    assert!(err.contains("contamination"), "{err}");
}

#[test]
fn compress_decompress_and_denoise_image_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &with_quick(&["train", "--name", "a", "--epochs", "20", "--latent", "12"]),
    );
    ok(
        dir,
        &with_quick(&["train", "--name", "b", "--epochs", "1", "--latent", "12", "--seed", "9"]),
    );
    // 30 digits as an IDX file of bytes.
    let digits = gen_data::digits().unwrap();
    let bytes: Vec<u8> = digits.features()[..30 * 64]
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    std::fs::write(dir.join("d.idx"), gen_data::idx::encode_idx_u8(&[30, 8, 8], &bytes)).unwrap();

    let text = ok(
        dir,
        &[
            "compress",
            "--run",
            "runs/a",
            "--input",
            "d.idx",
            "--output",
            "d.genz",
            "--bits",
            "6",
            "--backend",
            "flex",
        ],
    );
    assert!(text.contains("compressed 30 images"), "{text}");
    let size = std::fs::metadata(dir.join("d.genz")).unwrap().len();
    assert_eq!(size, (100 + 8 * 12 + (30 * 12 * 6 + 7) / 8) as u64);
    ok(
        dir,
        &[
            "decompress",
            "--run",
            "runs/a",
            "--input",
            "d.genz",
            "--output",
            "out",
            "--backend",
            "flex",
        ],
    );
    assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 30);
    assert_eq!(image_size(&dir.join("out/img-00029.png")), (8, 8));

    let err = fails(
        dir,
        &["decompress", "--run", "runs/b", "--input", "d.genz", "--output", "o2"],
    );
    assert!(err.contains("another model"), "{err}");
    let full = std::fs::read(dir.join("d.genz")).unwrap();
    std::fs::write(dir.join("cut.genz"), &full[..full.len() - 5]).unwrap();
    let err = fails(
        dir,
        &["decompress", "--run", "runs/a", "--input", "cut.genz", "--output", "o3"],
    );
    assert!(err.contains("cut.genz") && err.contains("truncated"), "{err}");
    assert!(!dir.join("o2").exists() && !dir.join("o3").exists());
    std::fs::write(dir.join("junk.idx"), b"not an image at all").unwrap();
    let err = fails(
        dir,
        &[
            "compress", "--run", "runs/a", "--input", "junk.idx", "--output", "j.genz",
        ],
    );
    assert!(err.contains("junk.idx"), "{err}");

    let text = ok(
        dir,
        &[
            "denoise",
            "--run",
            "runs/a",
            "--input",
            "out",
            "--output",
            "clean",
            "--add-noise",
            "gaussian:0.3",
            "--backend",
            "flex",
        ],
    );
    assert_eq!(std::fs::read_dir(dir.join("clean/noisy")).unwrap().count(), 30);
    let psnr: Vec<f64> = text
        .split("dB")
        .filter_map(|s| s.split_whitespace().last()?.parse().ok())
        .collect();
    assert_eq!(psnr.len(), 2, "{text}");
    assert!(psnr[1] > psnr[0], "denoised {} dB vs noisy {} dB", psnr[1], psnr[0]);
}

#[test]
fn vae_trains_evaluates_and_draws_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &with_quick(&[
            "train",
            "--model",
            "vae",
            "--latent",
            "2",
            "--epochs",
            "4",
            "--kl-warmup",
            "2",
            "--name",
            "v",
        ]),
    );
    let run = dir.join("runs/v");
    for f in ["reconstructions.png", "samples.png", "metrics.csv"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let header = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(
        header.starts_with("epoch,train_loss,valid_loss,train_recon,train_kl,valid_recon,valid_kl"),
        "{header}"
    );
    let cfg = json(&run.join("config.json"));
    assert_eq!(cfg["vae"]["binarize"], true);
    assert!(cfg.get("autoencoder").is_none());

    let text = ok(dir, &["eval", "--run", "runs/v", "--k", "50", "--backend", "flex"]);
    assert!(text.contains("negative ELBO") && text.contains("k = 50"), "{text}");
    let r = json(&run.join("eval.json"));
    let (nll, neg_elbo) = (r["nll"].as_f64().unwrap(), r["elbo"]["neg_elbo"].as_f64().unwrap());
    assert!(nll > 0.0 && nll < neg_elbo + 1.0, "NLL {nll} vs -ELBO {neg_elbo}");
    for f in ["interpolation.png", "traversal.png", "manifold.png", "codes.svg"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    // 20 x 20 manifold of 8x8 digits at scale 2, with 1-pixel gaps.
    assert!(image_size(&run.join("manifold.png")).0 > 20 * 16);

    ok(
        dir,
        &[
            "sample",
            "--run",
            "runs/v",
            "--n",
            "4",
            "--output",
            "s.png",
            "--backend",
            "flex",
        ],
    );
    ok(
        dir,
        &[
            "interpolate",
            "--run",
            "runs/v",
            "--from",
            "3",
            "--to",
            "7",
            "--steps",
            "5",
            "--backend",
            "flex",
        ],
    );
    assert!(run.join("interpolation-3-7.png").is_file());
    ok(dir, &["traverse", "--run", "runs/v", "--dim", "1", "--backend", "flex"]);
    assert!(run.join("traversal-dim1.png").is_file());
    let text = ok(dir, &["encode", "--run", "runs/v", "--backend", "flex"]);
    assert!(text.contains("mean σ"), "{text}");
    let csv = std::fs::read_to_string(run.join("codes-test.csv")).unwrap();
    assert!(csv.starts_with("mu0,mu1,sigma0,sigma1,label"), "{csv}");
    assert!(run.join("codes-test-mu.npy").is_file() && run.join("codes-test-sigma.npy").is_file());

    // Clear errors: a VAE is not an autoencoder, an unconditional VAE has no classes, and so on.
    let err = fails(
        dir,
        &["denoise", "--run", "runs/v", "--input", "s.png", "--output", "out"],
    );
    assert!(err.contains("holds a VAE"), "{err}");
    let err = fails(dir, &["sample", "--run", "runs/v", "--class", "3"]);
    assert!(err.contains("conditional"), "{err}");
    let err = fails(dir, &["traverse", "--run", "runs/v", "--dim", "5"]);
    assert!(err.contains("out of range"), "{err}");
    let err = fails(dir, &["interpolate", "--run", "runs/v", "--to", "100000"]);
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(dir, &["train", "--model", "vae", "--likelihood", "poisson"]);
    assert!(err.contains("poisson"), "{err}");
    let err = fails(dir, &["train", "--model", "vae", "--beta", "-1"]);
    assert!(err.contains("beta"), "{err}");
    let err = fails(dir, &["train", "--model", "vae", "--kl-warmup", "5", "--patience", "3"]);
    assert!(err.contains("patience") && err.contains("warm-up"), "{err}");
    let err = fails(dir, &["eval", "--run", "runs/v", "--nll-rows", "0"]);
    assert!(err.contains("nothing to evaluate"), "{err}");

    // The conditional VAE: one row per class, or the class asked for.
    ok(
        dir,
        &with_quick(&[
            "train", "--model", "cvae", "--latent", "4", "--epochs", "3", "--arch", "conv", "--name", "c",
        ]),
    );
    ok(
        dir,
        &[
            "sample",
            "--run",
            "runs/c",
            "--n",
            "5",
            "--output",
            "c.png",
            "--backend",
            "flex",
        ],
    );
    let (w, h) = image_size(&dir.join("c.png"));
    assert!(h > w, "10 rows of 5 samples: {w}x{h}");
    ok(
        dir,
        &[
            "sample",
            "--run",
            "runs/c",
            "--class",
            "7",
            "--output",
            "c7.png",
            "--backend",
            "flex",
        ],
    );
    let err = fails(dir, &["sample", "--run", "runs/c", "--class", "10"]);
    assert!(err.contains("out of range"), "{err}");
    let text = ok(
        dir,
        &[
            "eval",
            "--run",
            "runs/c",
            "--k",
            "20",
            "--nll-rows",
            "50",
            "--backend",
            "flex",
        ],
    );
    assert!(text.contains("cvae"), "{text}");
}

#[test]
fn gan_family_trains_evaluates_samples_augments_and_upscales() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Flex: ndarray's transposed convolution is plain loops, slow for the DCGAN and SR models.
    let nd = ["--backend", "flex"];
    let text = ok(dir, &["train", "--model", "classifier", "--epochs", "4", nd[0], nd[1]]);
    assert!(text.contains("test accuracy"), "{text}");
    assert!(dir.join("runs/classifier-digits/best.ckpt").is_file());
    let text = ok(dir, &["eval", "--run", "runs/classifier-digits", nd[0], nd[1]]);
    let r = json(&dir.join("runs/classifier-digits/eval.json"));
    let acc = r["test_accuracy"].as_f64().unwrap();
    assert!(text.contains(&format!("test accuracy {:.2} %", 100.0 * acc)), "{text}");
    assert!(acc > 0.5 && r["dataset"] == "digits", "{r}");
    // A classifier cut short (here: configured for one epoch more than it ran) is continued by
    // the first command that needs it, not used half-trained.
    let clf = dir.join("runs/classifier-digits");
    let mut c = json(&clf.join("config.json"));
    c["run"]["train"]["num_epochs"] = 5.into();
    std::fs::write(clf.join("config.json"), serde_json::to_string_pretty(&c).unwrap()).unwrap();
    // `gen eval` on the classifier itself judges it as it is, and says it was cut short.
    let text = ok(dir, &["eval", "--run", "runs/classifier-digits", nd[0], nd[1]]);
    assert!(text.contains("trained 4 of its 5 epochs"), "{text}");
    assert_eq!(json(&clf.join("eval.json"))["epochs_done"], 4);

    // A conditional DCGAN with a moving average: progress grids, balance columns, coverage.
    let text = ok(
        dir,
        &[
            "train",
            "--model",
            "cgan",
            "--arch",
            "conv",
            "--latent",
            "8",
            "--epochs",
            "2",
            "--ema",
            "0.9",
            "--real-shift",
            "1",
            "--name",
            "cg",
            nd[0],
            nd[1],
        ],
    );
    assert!(
        text.contains("stopped after 4 of its 5 epochs: continuing it"),
        "{text}"
    );
    assert_eq!(rows(&clf.join("metrics.csv")), 5);
    let run = dir.join("runs/cg");
    for f in [
        "progress/epoch-001.png",
        "progress/epoch-002.png",
        "samples.png",
        "generator.ckpt",
        "generator_ema.ckpt",
        "discriminator.ckpt",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let header = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    for col in [
        "g_loss",
        "d_real",
        "d_fake",
        "grad_norm_d",
        "grad_norm_g",
        "modes",
        "conditional_accuracy",
        "warn_d_wins",
        "warn_collapse",
    ] {
        assert!(
            header.lines().next().unwrap().split(',').any(|c| c == col),
            "metrics.csv lacks {col}"
        );
    }
    assert_eq!(rows(&run.join("metrics.csv")), 2);
    let cfg = json(&run.join("config.json"));
    assert_eq!(cfg["gan"]["n_classes"], 10);
    // Two data-parallel workers train both networks of an MLP GAN (worker 0 writes the run).
    ok(
        dir,
        &[
            "train",
            "--model",
            "gan",
            "--latent",
            "8",
            "--epochs",
            "1",
            "--workers",
            "2",
            "--name",
            "gw",
            nd[0],
            nd[1],
        ],
    );
    assert_eq!(rows(&dir.join("runs/gw/metrics.csv")), 1);
    assert!(dir.join("runs/gw/samples.png").is_file());
    // Exported in PyTorch's layout (batch norm's weight and bias) and imported: the imported
    // generator holds the moving average and draws the same samples.
    let text = ok(
        dir,
        &[
            "export",
            "--run",
            "runs/cg",
            "--layout",
            "pytorch",
            "--output",
            "cg.safetensors",
        ],
    );
    assert!(text.contains("norms.0.weight") && !text.contains("gamma"), "{text}");
    ok(
        dir,
        &["import", "--input", "cg.safetensors", "--name", "cg-back", nd[0], nd[1]],
    );
    for r in ["cg", "cg-back"] {
        ok(
            dir,
            &[
                "sample",
                "--run",
                &format!("runs/{r}"),
                "--output",
                &format!("{r}.png"),
                nd[0],
                nd[1],
            ],
        );
    }
    assert_eq!(
        std::fs::read(dir.join("cg.png")).unwrap(),
        std::fs::read(dir.join("cg-back.png")).unwrap()
    );

    // A source-conditioned generator (DAGAN): it varies training images, so every command
    // that samples it reads them (the embedded digits here), and the augmentation experiment
    // runs on its variations.
    let dagan = |arch: &'static str| {
        [
            "train", "--model", "cgan", "--arch", arch, "--dagan", "true", "--latent", "8", "--epochs", "2", "--name",
            "dg", nd[0], nd[1],
        ]
    };
    let e = fails(dir, &dagan("mlp"));
    assert!(e.contains("DCGAN architecture"), "{e}");
    let text = ok(dir, &dagan("conv"));
    assert!(text.contains("source-conditioned (DAGAN)"), "{text}");
    assert_eq!(
        json(&dir.join("runs/dg/config.json"))["gan"]["source_conditioned"],
        true
    );
    assert_eq!(rows(&dir.join("runs/dg/metrics.csv")), 2);
    let text = ok(
        dir,
        &[
            "eval",
            "--run",
            "runs/dg",
            "--augment-seeds",
            "1",
            "--synthetic",
            "50",
            "--augment-budget",
            "200",
            nd[0],
            nd[1],
        ],
    );
    assert!(text.contains("augmentation"), "{text}");
    let r = json(&dir.join("runs/dg/eval.json"));
    assert!(r["classifier_fid"].as_f64().unwrap().is_finite(), "{r}");
    assert_eq!(r["augmentation"]["n_synthetic"], 50);
    ok(
        dir,
        &[
            "sample", "--run", "runs/dg", "--n", "2", "--class", "3", "--output", "dg.png", nd[0], nd[1],
        ],
    );
    assert!(dir.join("dg.png").is_file());
    ok(
        dir,
        &[
            "augment", "--run", "runs/dg", "--n", "12", "--output", "dg.csv", nd[0], nd[1],
        ],
    );
    assert_eq!(rows(&dir.join("dg.csv")), 12);

    let augment = [
        "eval",
        "--run",
        "runs/cg",
        "--augment",
        "true",
        "--augment-seeds",
        "1",
        "--synthetic",
        "100",
        "--augment-budget",
        "300",
        nd[0],
        nd[1],
    ];
    let text = ok(dir, &augment);
    assert!(
        text.contains("classifier-feature FID") && text.contains("augmentation"),
        "{text}"
    );
    let r = json(&run.join("eval.json"));
    let (fid, floor) = (
        r["classifier_fid"].as_f64().unwrap(),
        r["classifier_fid_floor"].as_f64().unwrap(),
    );
    assert!(fid > 0.0 && floor > 0.0 && fid.is_finite(), "{r}");
    assert!(r["conditional_accuracy"].as_f64().is_some());
    assert_eq!(r["augmentation"]["accuracy_real"].as_array().unwrap().len(), 1);
    assert_eq!(r["augmentation"]["mode"], "mix");
    // 100 synthetic images beside the real ones: one copy of those is nearest half, and the
    // report carries the share that copy gives, beside the one asked for.
    let a = &r["augmentation"];
    let n_real = a["n_real"].as_f64().unwrap();
    assert_eq!(
        (a["real_copies"].as_u64(), a["real_share_requested"].as_f64()),
        (Some(1), Some(0.5))
    );
    let share = a["real_share"].as_f64().unwrap();
    assert!((share - n_real / (n_real + 100.0)).abs() < 1e-12, "{a}");
    // The GAN learned from shifted images, so the third arm ran: the shifts without the GAN.
    assert_eq!(cfg["gan"]["real_shift"], 1);
    assert_eq!(r["augmentation"]["real_shift"], 1);
    assert_eq!(r["augmentation"]["accuracy_real_shifted"].as_array().unwrap().len(), 1);
    assert!(text.contains("shifted by up to 1 px"), "{text}");
    assert_eq!(r["generator"], "moving average");

    // Pre-training on filtered synthetic images: at threshold 0 every draw passes.
    let pretrain = |p| [&augment[..], &["--augment-mode", "pretrain", "--augment-filter", p]].concat();
    let text = ok(dir, &pretrain("0"));
    assert!(text.contains("pass the filter"), "{text}");
    let a = &json(&run.join("eval.json"))["augmentation"];
    assert_eq!(a["mode"], "pretrain");
    assert_eq!(a["filter_pass_share"][0].as_f64(), Some(1.0), "{a}");
    let acc = a["accuracy_augmented"][0].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{a}");
    let e = fails(dir, &pretrain("1.5"));
    assert!(e.contains("--augment-filter is a probability"), "{e}");
    let share = |r| [&augment[..], &["--augment-real-share", r]].concat();
    let e = fails(dir, &share("1"));
    assert!(e.contains("--augment-real-share") && e.contains("got 1"), "{e}");
    let mut none = augment;
    assert_eq!(none[7..9], ["--synthetic", "100"]);
    none[8] = "0";
    let e = fails(dir, &none);
    assert!(e.contains("--synthetic 0"), "{e}");

    ok(
        dir,
        &[
            "sample", "--run", "runs/cg", "--n", "3", "--class", "2", "--output", "s.png", nd[0], nd[1],
        ],
    );
    assert!(dir.join("s.png").is_file());
    let e = fails(dir, &["sample", "--run", "runs/cg", "--class", "10", nd[0], nd[1]]);
    assert!(e.contains("out of range"), "{e}");

    ok(
        dir,
        &[
            "augment",
            "--run",
            "runs/cg",
            "--n",
            "20",
            "--balance",
            "1,1,1,1,1,1,1,1,1,3",
            "--output",
            "syn.idx",
            nd[0],
            nd[1],
        ],
    );
    let labels = std::fs::read(dir.join("syn-labels-idx1-ubyte")).unwrap();
    assert_eq!(labels.len(), 8 + 20);
    assert_eq!(labels[8..].iter().filter(|&&l| l == 9).count(), 5);
    ok(
        dir,
        &[
            "augment", "--run", "runs/cg", "--n", "5", "--output", "syn.csv", nd[0], nd[1],
        ],
    );
    assert_eq!(rows(&dir.join("syn.csv")), 5);
    // More images than one chunk of 10,000: written as they are generated, classes in order.
    let many = [
        "augment", "--run", "runs/cg", "--n", "10001", "--output", "many.idx", nd[0], nd[1],
    ];
    ok(dir, &many);
    let labels = std::fs::read(dir.join("many-labels-idx1-ubyte")).unwrap();
    assert_eq!(labels.len(), 8 + 10001);
    assert!(labels[8..].is_sorted() && labels[8..].iter().filter(|&&l| l == 0).count() == 1001);
    let images = std::fs::metadata(dir.join("many-images-idx3-ubyte")).unwrap().len();
    assert_eq!(images, 16 + 10001 * 64);
    let e = fails(
        dir,
        &[
            "augment",
            "--run",
            "runs/cg",
            "--n",
            "5",
            "--balance",
            "1,2",
            "--output",
            "x.csv",
            nd[0],
            nd[1],
        ],
    );
    assert!(e.contains("10 weights"), "{e}");
    let e = fails(
        dir,
        &[
            "augment", "--run", "runs/cg", "--n", "5", "--output", "x.txt", nd[0], nd[1],
        ],
    );
    assert!(e.contains(".csv or .idx"), "{e}");

    // An unconditional MLP GAN with WGAN-GP and two critic steps.
    ok(
        dir,
        &[
            "train",
            "--model",
            "gan",
            "--hidden",
            "32",
            "--epochs",
            "1",
            "--gan-loss",
            "wgan-gp",
            "--n-critic",
            "2",
            "--name",
            "g",
            nd[0],
            nd[1],
        ],
    );
    assert!(
        std::fs::read_to_string(dir.join("runs/g/metrics.csv"))
            .unwrap()
            .contains("penalty")
    );
    // Resumed for a second epoch, it continues from its checkpoints; once done, it says so.
    let resume = |epochs: &'static str| ["train", "--resume", "--name", "g", "--epochs", epochs, nd[0], nd[1]];
    ok(dir, &resume("2"));
    assert_eq!(rows(&dir.join("runs/g/metrics.csv")), 2);
    assert!(dir.join("runs/g/progress/epoch-002.png").is_file());
    let e = fails(dir, &resume("2"));
    assert!(e.contains("has its 2 epochs already"), "{e}");
    let e = fails(
        dir,
        &[
            "augment", "--run", "runs/g", "--n", "5", "--output", "x.csv", nd[0], nd[1],
        ],
    );
    assert!(e.contains("unconditional"), "{e}");
    // Weight clipping must leave the critic trainable: a gradient reaches it in every epoch.
    ok(
        dir,
        &[
            "train",
            "--model",
            "gan",
            "--hidden",
            "32",
            "--epochs",
            "2",
            "--gan-loss",
            "wasserstein",
            "--name",
            "w",
            nd[0],
            nd[1],
        ],
    );
    let metrics = std::fs::read_to_string(dir.join("runs/w/metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|c| *c == "grad_norm_d").unwrap();
    for line in metrics.lines().skip(1) {
        let v: f64 = line.split(',').nth(col).unwrap().parse().unwrap();
        assert!(v > 0.0, "grad_norm_d {v} in {line}");
    }
    let e = fails(
        dir,
        &[
            "train",
            "--model",
            "gan",
            "--gan-loss",
            "wgan-gp:-1",
            "--name",
            "bad",
            nd[0],
            nd[1],
        ],
    );
    assert!(e.contains("lambda"), "{e}");

    // Super-resolution, adversarial and content-only, compared; upscaling files.
    for (name, w) in [("sr", "0.01"), ("src", "0")] {
        ok(
            dir,
            &[
                "train",
                "--model",
                "sr",
                "--channels",
                "8",
                "--epochs",
                "2",
                "--adversarial-weight",
                w,
                "--name",
                name,
                nd[0],
                nd[1],
            ],
        );
    }
    assert!(dir.join("runs/sr/sr_examples.png").is_file());
    assert!(!dir.join("runs/src/discriminator.ckpt").exists());
    let text = ok(
        dir,
        &["eval", "--run", "runs/sr", "--compare", "runs/src", nd[0], nd[1]],
    );
    assert!(text.contains("bicubic") && text.contains("gain over bicubic"), "{text}");
    let r = json(&dir.join("runs/sr/eval.json"));
    assert!(
        r["model"]["psnr"].as_f64().unwrap() > 5.0 && r["compared"].is_array(),
        "{r}"
    );
    fn upscale<'a>(run: &'a str, input: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let head = ["upscale", "--run", run, "--input", input];
        head.into_iter()
            .chain(more.iter().copied())
            .chain(["--backend", "flex"])
            .collect()
    }
    let idx = "syn-images-idx3-ubyte";
    ok(dir, &upscale("runs/sr", idx, &["--downsample", "--output", "up"]));
    assert_eq!(std::fs::read_dir(dir.join("up")).unwrap().count(), 20);
    assert_eq!(image_size(&dir.join("up/img-00000.png")), (8, 8));
    // A PNG, full size and halved first, gives back its size.
    let png = ["--downsample", "--output", "up-png"];
    ok(dir, &upscale("runs/sr", "up/img-00003.png", &png));
    let written: Vec<_> = std::fs::read_dir(dir.join("up-png")).unwrap().collect();
    assert_eq!(written.len(), 1);
    assert_eq!(image_size(&written[0].as_ref().unwrap().path()), (8, 8));
    let e = fails(dir, &upscale("runs/sr", idx, &[]));
    assert!(e.contains("4x4") && e.contains("--downsample"), "{e}");
    let e = fails(dir, &upscale("runs/cg", idx, &[]));
    assert!(e.contains("super-resolution run"), "{e}");
    let e = fails(dir, &["reconstruct", "--run", "runs/cg", nd[0], nd[1]]);
    assert!(e.contains("holds a GAN"), "{e}");
}

#[test]
fn bench_measures_the_dcgan_iteration_and_refuses_an_unknown_workload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let one = [
        "bench",
        "--backend",
        "flex",
        "--only",
        "dcgan",
        "--warmup",
        "0",
        "--runs",
        "1",
        "--steps",
        "1",
    ];
    let text = ok(dir, &[&one[..], &["--json", "b.json"]].concat());
    assert!(text.contains("dcgan_train"), "{text}");
    let rows = json(&dir.join("b.json"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&rows[0]["workload"], rows[0]["batch"].as_u64()),
        (&"dcgan_train".into(), Some(64))
    );
    assert!(rows[0]["median_per_s"].as_f64().unwrap() > 0.0, "{rows:?}");
    let e = fails(dir, &["bench", "--only", "dcgan_trian"]);
    assert!(e.contains("matches no workload") && e.contains("dcgan_train"), "{e}");
}

/// A Python with numpy and safetensors for the independent reader: `GEN_PYTHON`, else `python3`.
/// `None` (the check is skipped, with the reason) where there is none, unless
/// `GEN_REQUIRE_PYTHON` is set, as in CI (`.ci/run` installs `python/requirements.txt`).
fn reader_python() -> Option<String> {
    let python = std::env::var("GEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = Command::new(&python)
        .args(["-c", "import numpy, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    assert!(
        std::env::var_os("GEN_REQUIRE_PYTHON").is_none_or(|v| v == "0"),
        "GEN_REQUIRE_PYTHON is set but {python} cannot import numpy and safetensors"
    );
    eprintln!(
        "skipping the numpy reader's check: {python} cannot import numpy and safetensors \
         (pip install -r python/requirements.txt, or set GEN_PYTHON)"
    );
    None
}

/// Exports `run` in `layout`, writes gen's codes and reconstructions, and has the numpy reader
/// (python/check_export.py) reproduce them within 1e-5; returns its JSON report.
fn numpy_agrees(dir: &Path, python: &str, run: &str, layout: &str, vae: bool) -> serde_json::Value {
    let file = format!("{run}-{layout}.safetensors");
    ok(
        dir,
        &[
            "export",
            "--run",
            &format!("runs/{run}"),
            "--layout",
            layout,
            "--output",
            &file,
        ],
    );
    let rec = format!("{run}-rec.npy");
    ok(
        dir,
        &[
            "reconstruct",
            "--run",
            &format!("runs/{run}"),
            "--n",
            "64",
            "--output",
            &rec,
        ],
    );
    ok(
        dir,
        &[
            "encode",
            "--run",
            &format!("runs/{run}"),
            "--output",
            &format!("{run}-codes.csv"),
        ],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/check_export.py");
    let inputs = format!("{run}-rec-inputs.npy");
    let codes = if vae {
        format!("{run}-codes-mu.npy")
    } else {
        format!("{run}-codes.npy")
    };
    let sigma = format!("{run}-codes-sigma.npy");
    let mut args = vec![
        script.to_str().unwrap(),
        &file,
        "--inputs",
        &inputs,
        "--reconstructions",
        &rec,
        "--codes",
        &codes,
    ];
    if vae {
        args.extend(["--sigma", &sigma]);
    }
    let out = Command::new(python).current_dir(dir).args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "numpy disagrees with gen on {run} ({layout}):\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("numpy reader: {}", text.trim());
    serde_json::from_str(text.trim()).unwrap()
}

#[test]
fn export_import_and_the_numpy_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let flex = ["--backend", "flex"];
    // An MLP autoencoder (the default: with the PCA path), a conv one, an MLP and a conv VAE.
    ok(dir, &with_quick(&["train", "--epochs", "2", "--name", "mlp"]));
    ok(
        dir,
        &with_quick(&[
            "train",
            "--arch",
            "conv",
            "--channels",
            "4,8",
            "--epochs",
            "1",
            "--name",
            "conv",
        ]),
    );
    ok(
        dir,
        &with_quick(&["train", "--model", "vae", "--epochs", "1", "--name", "vae"]),
    );
    ok(
        dir,
        &with_quick(&[
            "train",
            "--model",
            "vae",
            "--arch",
            "conv",
            "--channels",
            "4,8",
            "--epochs",
            "1",
            "--name",
            "convvae",
        ]),
    );

    // Export: the tensors by name and shape, the configuration in the metadata.
    let text = ok(dir, &["export", "--run", "runs/mlp", flex[0], flex[1]]);
    assert!(
        text.contains("exported autoencoder") && text.contains("encoder.layers.0.weight"),
        "{text}"
    );
    assert!(text.contains("pca.axes") && text.contains("[64, 8]"), "{text}");
    let exported = dir.join("runs/mlp/model.safetensors");
    let err = fails(dir, &["export", "--run", "runs/mlp"]);
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");

    // Import into a new run folder that the commands accept, with the same outputs bit for bit,
    // from either layout.
    ok(
        dir,
        &[
            "export",
            "--run",
            "runs/mlp",
            "--layout",
            "pytorch",
            "--output",
            "torch.safetensors",
        ],
    );
    for (file, name) in [
        (exported.to_str().unwrap(), "back"),
        ("torch.safetensors", "back-torch"),
    ] {
        let text = ok(dir, &["import", "--input", file, "--name", name, flex[0], flex[1]]);
        assert!(text.contains("imported autoencoder"), "{text}");
        for run in ["mlp", name] {
            ok(
                dir,
                &[
                    "reconstruct",
                    "--run",
                    &format!("runs/{run}"),
                    "--output",
                    &format!("{run}.npy"),
                ],
            );
        }
        assert_eq!(
            std::fs::read(dir.join("mlp.npy")).unwrap(),
            std::fs::read(dir.join(format!("{name}.npy"))).unwrap(),
            "{name} reconstructs differently"
        );
        let cfg = json(&dir.join(format!("runs/{name}/config.json")));
        assert!(
            cfg["imported_from"].as_str().unwrap().ends_with(".safetensors"),
            "{cfg}"
        );
    }
    let text = ok(dir, &["eval", "--run", "runs/back", flex[0], flex[1]]);
    assert!(text.contains("PCA, 8 components"), "{text}");
    // An imported run has no optimizer state to continue from: said plainly.
    let err = fails(dir, &["train", "--resume", "--name", "back", "--epochs", "3"]);
    assert!(
        err.contains("was imported from") && err.contains("optimizer state"),
        "{err}"
    );

    // Bad input: an existing run, a damaged file, a file without gen's metadata and no
    // --config, a configuration the tensors do not fit, a contradicted layout. Nothing is
    // created by a refused import.
    let err = fails(
        dir,
        &["import", "--input", exported.to_str().unwrap(), "--name", "back"],
    );
    assert!(err.contains("already exists"), "{err}");
    let bytes = std::fs::read(&exported).unwrap();
    std::fs::write(dir.join("cut.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(dir, &["import", "--input", "cut.safetensors", "--name", "cut"]);
    assert!(
        err.contains("cut.safetensors") && err.contains("not a readable safetensors file"),
        "{err}"
    );
    assert!(!dir.join("runs/cut").exists());
    let err = fails(
        dir,
        &[
            "import",
            "--input",
            "torch.safetensors",
            "--name",
            "x",
            "--config",
            "runs/conv/config.json",
        ],
    );
    assert!(
        err.contains("does not fit the model") && err.contains("encoder.convs.0.weight"),
        "{err}"
    );
    assert!(!dir.join("runs/x").exists());
    let err = fails(
        dir,
        &[
            "import",
            "--input",
            "torch.safetensors",
            "--name",
            "x",
            "--layout",
            "burn",
        ],
    );
    assert!(err.contains("records the pytorch layout"), "{err}");

    // The VAE too (sampling from the imported prior gives the same grid).
    ok(dir, &["export", "--run", "runs/vae"]);
    ok(
        dir,
        &["import", "--input", "runs/vae/model.safetensors", "--name", "vae-back"],
    );
    for run in ["vae", "vae-back"] {
        ok(
            dir,
            &[
                "sample",
                "--run",
                &format!("runs/{run}"),
                "--output",
                &format!("{run}.png"),
                "--seed",
                "3",
            ],
        );
    }
    assert_eq!(
        std::fs::read(dir.join("vae.png")).unwrap(),
        std::fs::read(dir.join("vae-back.png")).unwrap()
    );

    // The independent reader: numpy alone reproduces gen's codes and reconstructions.
    let Some(python) = reader_python() else { return };
    for (run, vae) in [("mlp", false), ("conv", false), ("vae", true), ("convvae", true)] {
        for layout in ["burn", "pytorch"] {
            let r = numpy_agrees(dir, &python, run, layout, vae);
            assert_eq!(r["unread_tensors"].as_array().unwrap().len(), 0, "{r}");
            assert_eq!(r["rows"], 64, "{r}");
        }
    }
    // The check can fail: another model's reconstructions are told apart.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/check_export.py");
    let out = Command::new(&python)
        .current_dir(dir)
        .args([
            script.to_str().unwrap(),
            "mlp-burn.safetensors",
            "--inputs",
            "mlp-rec-inputs.npy",
        ])
        .args(["--reconstructions", "conv-rec.npy", "--codes", "mlp-codes.npy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `gen train --workers 2`: two data-parallel workers in one process (burn-collective sums
/// their gradients) end with the model one worker trains on the whole batches; the sums differ
/// only in the order of addition, so the reconstructions agree within 1e-5.
#[test]
fn data_parallel_workers_train_the_model_one_worker_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (workers, name) in [("1", "one"), ("2", "two")] {
        ok(
            dir,
            &with_quick(&["train", "--epochs", "3", "--workers", workers, "--name", name]),
        );
        ok(
            dir,
            &[
                "reconstruct",
                "--run",
                &format!("runs/{name}"),
                "--n",
                "64",
                "--output",
                &format!("{name}.npy"),
            ],
        );
    }
    let read = |p: &str| -> Vec<f32> {
        let bytes = std::fs::read(dir.join(p)).unwrap();
        // A .npy of f32: the header's length is in bytes 8..10, the data follows it.
        let start = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        bytes[start..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let (one, two) = (read("one.npy"), read("two.npy"));
    assert_eq!(one.len(), two.len());
    let gap = one.iter().zip(&two).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("gen train --workers 2 against 1: largest difference of the reconstructions {gap}");
    assert!(gap < 1e-5, "two workers against one: largest difference {gap}");
    assert_eq!(rows(&dir.join("runs/two/metrics.csv")), 3);
    let err = fails(dir, &["train", "--model", "sr", "--workers", "2"]);
    assert!(err.contains("trains on one worker"), "{err}");
    let err = fails(
        dir,
        &["train", "--resume", "--name", "two", "--epochs", "4", "--workers", "2"],
    );
    assert!(err.contains("--resume continues a run on one worker"), "{err}");
}

#[test]
fn semi_supervised_gan_trains_resumes_evaluates_and_refuses_nonsense() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ss = ["train", "--model", "ssgan", "--labels", "50"];
    let text = ok(dir, &[&ss[..], &["--epochs", "3", "--name", "straight"]].concat());
    assert!(text.contains("50 labelled of"), "{text}");
    assert!(text.contains("test error"), "{text}");
    let run = dir.join("runs/straight");
    for file in [
        "generator.ckpt",
        "discriminator.ckpt",
        "discriminator_ema.ckpt",
        "samples.png",
    ] {
        assert!(run.join(file).is_file(), "{file}");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    for column in [
        "d_supervised",
        "d_unsupervised",
        "g_feature_matching",
        "valid_error_ema",
    ] {
        assert!(metrics.lines().next().unwrap().contains(column), "{metrics}");
    }
    let budget = ["--augment-budget", "2000"];
    let text = ok(dir, &[&["eval", "--run", "runs/straight"][..], &budget].concat());
    let r = json(&run.join("eval.json"));
    let error = r["fewlabels"]["ssgan"]["error"].as_f64().unwrap();
    assert!(
        text.contains(&format!("semi-supervised GAN {:.2} %", 100.0 * error)),
        "{text}"
    );
    assert!(error < 0.5, "three epochs on the digits with 50 labels: {r}");
    assert_eq!(
        (r["labels"].as_u64(), r["discriminator"].as_str()),
        (Some(50), Some("moving average"))
    );
    let f = &r["fewlabels"];
    for baseline in ["labels_only_error", "shifts_error"] {
        let e = f[baseline].as_f64().unwrap();
        assert!(e > 0.0 && e < 0.9, "{baseline}: {f}");
    }
    // 2 pixels on 28-pixel images, scaled: 1 on the 8x8 digits.
    assert_eq!((f["shift"].as_u64(), f["budget"].as_u64()), (Some(1), Some(2000)));

    // Two epochs, then resumed to three: the same discriminator as three straight away.
    ok(dir, &[&ss[..], &["--epochs", "2", "--name", "cut"]].concat());
    let text = ok(dir, &["train", "--resume", "--name", "cut", "--epochs", "3"]);
    assert!(text.contains("epoch   3"), "{text}");
    ok(dir, &[&["eval", "--run", "runs/cut"][..], &budget].concat());
    assert_eq!(json(&dir.join("runs/cut/eval.json"))["fewlabels"], r["fewlabels"]);
    let last = ok(dir, &[&["eval", "--run", "runs/cut", "--last"][..], &budget].concat());
    assert!(last.contains("(last epoch, epoch 3)"), "{last}");

    // Nonsense is refused before training.
    let e = fails(dir, &["train", "--model", "gan", "--labels", "50"]);
    assert!(
        e.contains("labels applies to the semi-supervised GAN (ssgan) only"),
        "{e}"
    );
    let e = fails(dir, &[&ss[..2], &["ssgan", "--labels", "5"]].concat());
    assert!(e.contains("5 labels for 10 classes"), "{e}");
    let e = fails(dir, &[&ss[..], &["--arch", "conv"]].concat());
    assert!(e.contains("the semi-supervised GAN is an MLP"), "{e}");
    let e = fails(dir, &[&ss[..], &["--gan-loss", "hinge"]].concat());
    assert!(e.contains("gan_loss applies to GAN training"), "{e}");
    let e = fails(dir, &[&ss[..], &["--workers", "2"]].concat());
    assert!(e.contains("ssgan trains on one worker"), "{e}");
    let e = fails(dir, &["sample", "--run", "runs/straight", "--output", "x.png"]);
    assert!(e.contains("holds a semi-supervised GAN"), "{e}");
}
