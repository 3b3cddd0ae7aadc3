//! `gen export` and `gen import`: a run's model to and from a safetensors file that other tools
//! read (gen-core's `interop` does the work; this names the model of each kind of run and the
//! run folder an import creates).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, ValueEnum};
use gen_core::interop::{self, TensorLayout};
use gen_core::train::{RunDir, save_module};

use crate::backend::{BackendChoice, Job, with_backend};
use crate::data::data_dir;
use crate::run::{RunArgs, StoredConfig, read_stored};
use crate::{ae, gan, vae};

/// Metadata key of the run's `config.json`, which rebuilds the model on import.
pub const METADATA_CONFIG: &str = "gen.config";
/// Metadata key naming the exported module (see [`ExportedModel`]).
pub const METADATA_MODEL: &str = "gen.model";

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Hugging Face's safetensors: a JSON header and raw little-endian tensors.
    Safetensors,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The file format.
    #[arg(long, value_enum, default_value_t = Format::Safetensors)]
    pub format: Format,
    /// burn (dense weights [in, out], as the model holds them) or pytorch ([out, in], as
    /// torch.nn.Linear; batch norm's gamma and beta named weight and bias).
    #[arg(long, default_value_t = TensorLayout::Burn)]
    pub layout: TensorLayout,
    /// Output file (default: RUN/model.safetensors).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The safetensors file.
    #[arg(long)]
    pub input: PathBuf,
    /// Name of the run folder to create under --runs-dir.
    #[arg(long)]
    pub name: String,
    /// Where run folders live.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// A run's config.json describing the model, for a file whose metadata has no gen.config
    /// (weights written by another tool in gen's tensor names).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The file's layout, when its metadata does not record one (default burn).
    #[arg(long)]
    pub layout: Option<TensorLayout>,
    /// Overwrite an existing run folder.
    #[arg(long)]
    pub force: bool,
    /// Backend that loads the tensors (the run folder is the same on every backend).
    #[arg(long, value_enum, default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
}

/// Which module of a run a file holds, by the kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportedModel {
    Autoencoder,
    Vae,
    GanGenerator,
    SrGenerator,
    Classifier,
}

impl ExportedModel {
    fn of(stored: &StoredConfig) -> Self {
        if stored.vae.is_some() {
            Self::Vae
        } else if stored.gan.is_some() {
            Self::GanGenerator
        } else if stored.sr.is_some() {
            Self::SrGenerator
        } else if stored.classifier.is_some() {
            Self::Classifier
        } else {
            Self::Autoencoder
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Autoencoder => "autoencoder",
            Self::Vae => "vae",
            Self::GanGenerator => "gan-generator",
            Self::SrGenerator => "sr-generator",
            Self::Classifier => "classifier",
        }
    }
}

struct ExportJob(ExportArgs);

impl Job for ExportJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let args = self.0;
        let Format::Safetensors = args.format;
        let root = &args.run.run;
        let (stored, run) = read_stored(root)?;
        let out = args.output.clone().unwrap_or_else(|| run.file("model.safetensors"));
        if out.exists() && !args.force {
            bail!("{} already exists; pass --force to overwrite it", out.display());
        }
        let kind = ExportedModel::of(&stored);
        let mut metadata = BTreeMap::from([
            (METADATA_CONFIG.to_string(), serde_json::to_string(&stored)?),
            (METADATA_MODEL.to_string(), kind.name().to_string()),
            ("gen.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ]);
        let written = match kind {
            ExportedModel::Autoencoder => {
                let (_, _, m) = ae::load_model::<B::InnerBackend>(root, &device)?;
                save(&m, &metadata, args.layout, &out)?
            }
            ExportedModel::Vae => {
                let (_, _, m) = vae::load_vae::<B::InnerBackend>(root, &device)?;
                save(&m, &metadata, args.layout, &out)?
            }
            ExportedModel::GanGenerator => {
                let data_dir = data_dir(args.run.data_dir.as_deref());
                let g = gan::load_generator::<B::InnerBackend>(root, false, &data_dir, &device)?;
                metadata.insert("gen.weights".into(), g.which.into());
                save(&g.g, &metadata, args.layout, &out)?
            }
            ExportedModel::SrGenerator => {
                let (_, _, m) = gan::load_sr::<B::InnerBackend>(root, &device)?;
                save(&m, &metadata, args.layout, &out)?
            }
            ExportedModel::Classifier => {
                let m = gan::load_classifier::<B::InnerBackend>(root, &device)?;
                save(&m, &metadata, args.layout, &out)?
            }
        };
        println!(
            "exported {} ({} tensors, {} layout) to {}",
            kind.name(),
            written.len(),
            args.layout,
            out.display()
        );
        for t in &written {
            println!("  {:<40} {:?}", t.name, t.shape);
        }
        Ok(())
    }
}

/// Writes `module` and returns its tensors as written.
fn save<B: Backend, M: Module<B>>(
    module: &M,
    metadata: &BTreeMap<String, String>,
    layout: TensorLayout,
    out: &Path,
) -> anyhow::Result<Vec<interop::TensorInfo>> {
    interop::save_safetensors(module, metadata, layout, out)?;
    Ok(interop::tensor_infos(module, layout))
}

/// `gen export`.
pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let backend = args.run.backend;
    with_backend(backend, ExportJob(args))
}

struct ImportJob(ImportArgs);

impl Job for ImportJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let args = self.0;
        let header = interop::read_safetensors_header(&args.input)?;
        let recorded = header.layout(&args.input)?;
        let layout = match (recorded, args.layout) {
            (Some(r), Some(given)) if r != given => bail!(
                "{} records the {r} layout; --layout {given} contradicts it",
                args.input.display()
            ),
            (r, given) => r.or(given).unwrap_or_default(),
        };
        let mut stored: StoredConfig = match (&args.config, header.metadata.get(METADATA_CONFIG)) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a gen run's config.json", path.display()))?
            }
            (None, Some(json)) => serde_json::from_str(json)
                .with_context(|| format!("the {METADATA_CONFIG} metadata of {}", args.input.display()))?,
            (None, None) => bail!(
                "{} has no {METADATA_CONFIG} metadata to rebuild the model from; pass --config with a run's \
                 config.json that describes it",
                args.input.display()
            ),
        };
        stored.imported_from = Some(std::path::absolute(&args.input).unwrap_or_else(|_| args.input.clone()));
        let kind = ExportedModel::of(&stored);
        if let Some(named) = header.metadata.get(METADATA_MODEL)
            && named != kind.name()
        {
            bail!(
                "{} holds a {named}, but its configuration describes a {}",
                args.input.display(),
                kind.name()
            );
        }
        let root = args.runs_dir.join(&args.name);
        // Every tensor is loaded (and checked) before the run folder is created, so a file that
        // does not fit leaves nothing behind.
        let config = serde_json::to_value(&stored)?;
        let place = Placement {
            root: &root,
            stored: &stored,
            force: args.force,
            config,
        };
        let (input, inner) = (&args.input, &device);
        let (run, file) = match kind {
            ExportedModel::Autoencoder => {
                let fresh = stored.ae_config(&root)?.try_init::<B::InnerBackend>(inner)?;
                place.write(&load(fresh, input, layout)?, None)?
            }
            ExportedModel::Vae => {
                let cfg = stored.vae.as_ref().expect("a VAE run");
                place.write(&load(cfg.try_init::<B::InnerBackend>(inner)?, input, layout)?, None)?
            }
            ExportedModel::GanGenerator => {
                let cfg = stored.gan.as_ref().expect("a GAN run");
                let fresh = gen_gan::Generator::<B::InnerBackend>::new(cfg, inner);
                place.write(&load(fresh, input, layout)?, Some(gen_gan::GENERATOR))?
            }
            ExportedModel::SrGenerator => {
                let (cfg, _) = stored.sr.as_ref().expect("a super-resolution run");
                let fresh = cfg.try_init::<B::InnerBackend>(inner)?;
                place.write(&load(fresh, input, layout)?, Some(gen_gan::GENERATOR))?
            }
            ExportedModel::Classifier => {
                let cfg = stored.classifier.as_ref().expect("a classifier run");
                place.write(&load(cfg.try_init::<B::InnerBackend>(inner)?, input, layout)?, None)?
            }
        };
        println!(
            "imported {} ({} tensors, {layout} layout) from {} into {} ({})",
            kind.name(),
            header.tensors.len(),
            args.input.display(),
            run.root().display(),
            file.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()
        );
        Ok(())
    }
}

fn load<B: Backend, M: Module<B>>(fresh: M, path: &Path, layout: TensorLayout) -> anyhow::Result<M> {
    Ok(interop::load_safetensors(fresh, path, layout)?)
}

/// Where an imported model goes: the run folder to create and what its checkpoint header says.
struct Placement<'a> {
    root: &'a Path,
    stored: &'a StoredConfig,
    force: bool,
    config: serde_json::Value,
}

impl Placement<'_> {
    /// Creates the run folder and saves `module` in it: in `file` of the folder, else in the
    /// model checkpoint every command reads. Returns the folder and the file.
    fn write<B: Backend, M: Module<B>>(&self, module: &M, file: Option<&str>) -> anyhow::Result<(RunDir, PathBuf)> {
        let run = RunDir::create(self.root, self.stored, self.force)?;
        let path = file.map_or_else(|| run.checkpoint_path(), |f| run.file(f));
        save_module(module, self.config.clone(), &path)?;
        Ok((run, path))
    }
}

/// `gen import`.
pub fn import(args: ImportArgs) -> anyhow::Result<()> {
    let backend = args.backend;
    with_backend(backend, ImportJob(args))
}
