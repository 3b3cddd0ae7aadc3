//! `gen sweep`: one autoencoder per latent size against PCA with as many components, the
//! dimensionality-reduction table and figure, and the rate–quality table of compression.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use gen_core::Encoder;
use gen_core::train::RunDir;
use serde::Serialize;

use crate::anomaly::fit_autoencoder;
use crate::backend::{Job, with_backend};
use crate::commands::{StoredConfig, map_rows, reconstruction_errors};
use crate::config::{RunConfig, TrainFlags};
use crate::data::{data_dir, load_splits};
use crate::uses::{CompressRow, compression_table, model_hash, png_bits_per_image};
use crate::{pca, plots};

/// Flags of `gen sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub train: TrainFlags,
    /// Latent sizes to train, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2,8,16,32")]
    pub latents: Vec<usize>,
}

/// One latent size of the sweep.
#[derive(Debug, Serialize)]
struct SweepRow {
    latent: usize,
    run: String,
    ae_squared_error_per_image: f64,
    pca_squared_error_per_image: f64,
    ae_mse: f64,
    pca_mse: f64,
    train_seconds: f64,
    epochs: usize,
    compression: Vec<CompressRow>,
}

#[derive(Debug, Serialize)]
struct SweepReport {
    dataset: String,
    n_test: usize,
    d_input: usize,
    png_bits_per_image: Option<f64>,
    raw_bits_per_image: f64,
    rows: Vec<SweepRow>,
}

struct SweepJob {
    args: SweepArgs,
    cfg: RunConfig,
    data_dir: PathBuf,
}

impl Job for SweepJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let splits = load_splits(&self.cfg.data, &self.data_dir)?;
        let base = self.cfg.name.clone().unwrap_or_else(|| {
            let n = self.cfg.run_name();
            n.rsplit_once("-z").map(|(b, _)| b.to_string()).unwrap_or(n)
        });
        let runs_dir = &self.args.train.runs_dir;
        let out = runs_dir.join(format!("sweep-{base}"));
        std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
        let d = splits.test.d();
        // One decomposition serves every latent size.
        let pca = pca::Pca::fit(&splits.train)?;
        let mut rows = Vec::new();
        for &k in &self.args.latents {
            let mut cfg = self.cfg.clone();
            cfg.model.latent = k;
            cfg.name = Some(format!("{base}-z{k}"));
            let ae_cfg = cfg
                .model
                .autoencoder(splits.train.d(), splits.train.image_shape(), splits.standardised)?;
            ae_cfg.validate().with_context(|| format!("latent size {k}"))?;
            let stored = StoredConfig::new(cfg.clone(), ae_cfg.clone(), self.args.train.backend);
            let root = runs_dir.join(cfg.run_name());
            let run = RunDir::create(&root, &stored, self.args.train.force)?;
            eprintln!("latent size {k}: training {}", root.display());
            let (model, seconds) = fit_autoencoder::<B>(
                &cfg,
                &ae_cfg,
                &stored,
                &splits.train,
                &splits.valid,
                run.clone(),
                &device,
            )?;
            crate::artifacts::plot_loss_curve(run.metrics().path(), &run.file("loss_curve.svg"))?;
            let epochs = gen_core::train::MetricsLog::new(run.metrics().path()).read()?.1.len();
            let (ae_mse, ae_se) = reconstruction_errors(&model, &splits.test, &device)?;
            let pca_mse = pca.reconstruction_mse(&splits.test, k)?;
            let compression = compression_table(&model, &splits.test, model_hash(&run)?, &device)?;
            if k == 2 {
                let (codes, _) = map_rows(&splits.test, &device, |x| model.encode(x))?;
                plots::scatter_2d(
                    &out.join("codes-z2.svg"),
                    &format!("2-D codes of the {} test set", self.cfg.data.dataset),
                    &codes,
                    splits.test.labels(),
                )?;
            }
            println!(
                "latent {k}: squared error per image {ae_se:.3} (PCA {:.3}), {seconds:.0} s of training",
                pca_mse * d as f64
            );
            rows.push(SweepRow {
                latent: k,
                run: root.display().to_string(),
                ae_squared_error_per_image: ae_se,
                pca_squared_error_per_image: pca_mse * d as f64,
                ae_mse,
                pca_mse,
                train_seconds: seconds,
                epochs,
                compression,
            });
        }
        let png = match splits.test.image_shape() {
            Some(s) if !splits.standardised => Some(png_bits_per_image(&splits.test, s)?),
            _ => None,
        };
        let report = SweepReport {
            dataset: self.cfg.data.dataset.clone(),
            n_test: splits.test.len(),
            d_input: d,
            png_bits_per_image: png,
            raw_bits_per_image: d as f64 * 8.0,
            rows,
        };
        let mut md = format!(
            "# Latent-size sweep on {} ({} test rows)\n\n| latent | AE squared error / image | PCA squared error / image | AE / PCA | epochs | train s |\n|---|---|---|---|---|---|\n",
            report.dataset, report.n_test
        );
        for r in &report.rows {
            md += &format!(
                "| {} | {:.3} | {:.3} | {:.3} | {} | {:.0} |\n",
                r.latent,
                r.ae_squared_error_per_image,
                r.pca_squared_error_per_image,
                r.ae_squared_error_per_image / r.pca_squared_error_per_image,
                r.epochs,
                r.train_seconds
            );
        }
        md += "\n## Compression: bits per image (whole .genz file) against PSNR\n\n| latent | bits/value | bits/image | PSNR dB | SSIM |\n|---|---|---|---|---|\n";
        for r in &report.rows {
            for c in &r.compression {
                md += &format!(
                    "| {} | {} | {:.1} | {:.2} | {} |\n",
                    r.latent,
                    c.bits,
                    c.file_bits_per_image,
                    c.psnr,
                    c.ssim.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into())
                );
            }
        }
        if let Some(p) = report.png_bits_per_image {
            md += &format!(
                "\nLossless PNG of the same images: {p:.1} bits per image; raw 8-bit pixels: {:.0}.\n",
                report.raw_bits_per_image
            );
        }
        print!("{md}");
        let se: Vec<(f64, f64)> = report
            .rows
            .iter()
            .map(|r| (r.latent as f64, r.ae_squared_error_per_image))
            .collect();
        let pc: Vec<(f64, f64)> = report
            .rows
            .iter()
            .map(|r| (r.latent as f64, r.pca_squared_error_per_image))
            .collect();
        plots::line_plot(
            &out.join("sweep-error.svg"),
            &format!("Reconstruction error on {}", report.dataset),
            "latent dimensions",
            "squared error per test image",
            &[("autoencoder".to_string(), se), ("PCA".to_string(), pc)],
            true,
        )?;
        let rate: Vec<(String, Vec<(f64, f64)>)> = report
            .rows
            .iter()
            .map(|r| {
                (
                    format!("latent {}", r.latent),
                    r.compression.iter().map(|c| (c.file_bits_per_image, c.psnr)).collect(),
                )
            })
            .collect();
        plots::line_plot(
            &out.join("sweep-rate.svg"),
            &format!("Compression of {}: PSNR against bits per image", report.dataset),
            "bits per image (whole file)",
            "PSNR (dB)",
            &rate,
            false,
        )?;
        gen_core::train::write_atomic(
            &out.join("sweep.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        gen_core::train::write_atomic(&out.join("sweep.md"), md.as_bytes())?;
        println!(
            "written to {}/: sweep.json, sweep.md, sweep-error.svg, sweep-rate.svg{}",
            out.display(),
            if self.args.latents.contains(&2) {
                ", codes-z2.svg"
            } else {
                ""
            }
        );
        Ok(())
    }
}

/// `gen sweep`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    if args.train.resume {
        bail!("gen sweep does not resume; run it again with --force");
    }
    if args.latents.is_empty() || args.latents.contains(&0) {
        bail!("--latents needs sizes > 0, got {:?}", args.latents);
    }
    let cfg = args.train.resolve()?;
    let data_dir = data_dir(args.train.data_dir.as_deref());
    let backend = args.train.backend;
    with_backend(backend, SweepJob { args, cfg, data_dir })
}
