//! `gen sweep`: one autoencoder per latent size against PCA with as many components, the
//! dimensionality-reduction table and figure, and the rate–quality table of compression.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use gen_ae::AutoencoderConfig;
use gen_ae::eval::{ModelRun, Splits, SweepRow};
use gen_core::train::RunDir;

use crate::backend::{Job, with_backend};
use crate::config::{RunConfig, TrainFlags};
use crate::data::{data_dir, load_splits};
use crate::progress::Progress;
use crate::run::StoredConfig;
use crate::{artifacts, plots};

/// Flags of `gen sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub train: TrainFlags,
    /// Latent sizes to train, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2,8,16,32")]
    pub latents: Vec<usize>,
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
        let config = self
            .cfg
            .model
            .autoencoder(splits.train.d(), splits.train.image_shape(), splits.standardised)?;
        let mut roots = Vec::new();
        let mut runs = |ae_cfg: &AutoencoderConfig| -> gen_ae::Result<Option<ModelRun>> {
            let k = ae_cfg.d_latent;
            let mut cfg = self.cfg.clone();
            cfg.model.latent = k;
            cfg.name = Some(format!("{base}-z{k}"));
            let stored = StoredConfig::new(cfg.clone(), ae_cfg.clone(), self.args.train.backend);
            let run = RunDir::create(runs_dir.join(cfg.run_name()), &stored, self.args.train.force)?;
            roots.push(run.clone());
            let meta = serde_json::to_value(&stored).map_err(|e| gen_ae::AeError::Invalid(e.to_string()))?;
            Ok(Some(ModelRun { run, meta }))
        };
        let data = Splits {
            train: &splits.train,
            valid: &splits.valid,
            test: &splits.test,
        };
        let report = gen_ae::eval::sweep::<B>(
            &self.cfg.data.dataset,
            &config,
            &self.cfg.train,
            &self.args.latents,
            data,
            splits.standardised,
            &mut runs,
            &mut Progress::new(),
            &device,
        )?;
        for run in &roots {
            artifacts::plot_loss_curve(run.metrics().path(), &run.file("loss_curve.svg"))?;
        }
        for r in &report.rows {
            println!(
                "latent {}: squared error per image {:.3} (PCA {:.3}), {:.0} s of training",
                r.latent, r.ae_squared_error_per_image, r.pca_squared_error_per_image, r.train_seconds
            );
            if let Some(codes) = &r.codes_2d {
                plots::scatter_2d(
                    &out.join("codes-z2.svg"),
                    &format!("2-D codes of the {} test set", self.cfg.data.dataset),
                    codes,
                    splits.test.labels(),
                )?;
            }
        }
        let md = report.markdown();
        print!("{md}");
        let curve = |f: fn(&SweepRow) -> f64| -> Vec<(f64, f64)> {
            report.rows.iter().map(|r| (r.latent as f64, f(r))).collect()
        };
        plots::line_plot(
            &out.join("sweep-error.svg"),
            &format!("Reconstruction error on {}", report.dataset),
            "latent dimensions",
            "squared error per test image",
            &[
                ("autoencoder".to_string(), curve(|r| r.ae_squared_error_per_image)),
                ("PCA".to_string(), curve(|r| r.pca_squared_error_per_image)),
            ],
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
    if args.train.workers > 1 {
        bail!("--workers is for gen train; gen sweep trains each model on one worker");
    }
    if args.latents.is_empty() || args.latents.contains(&0) {
        bail!("--latents needs sizes > 0, got {:?}", args.latents);
    }
    let cfg = args.train.resolve()?;
    let data_dir = data_dir(args.train.data_dir.as_deref());
    let backend = args.train.backend;
    with_backend(backend, SweepJob { args, cfg, data_dir })
}
