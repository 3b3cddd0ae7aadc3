use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{CoreError, Result};

const MAGIC: &[u8; 8] = b"GENCKPT\0";
const FORMAT_VERSION: u32 = 1;
/// No header, model or optimizer state of ours comes near this; a larger length is corruption.
const MAX_SECTION: u64 = 16 << 30;

/// What a checkpoint says about itself, stored as JSON at the start of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckpointHeader {
    /// Epochs completed when it was written.
    pub epoch: usize,
    /// Optimisation steps taken in all.
    pub global_step: usize,
    /// Lowest validation loss so far.
    pub best_valid_loss: Option<f64>,
    /// Epoch of that loss.
    pub best_epoch: Option<usize>,
    /// The run configuration (model, data, training), so a checkpoint describes itself.
    pub config: serde_json::Value,
    /// Names and shapes of every float parameter, to refuse loading into another architecture.
    pub param_shapes: Vec<Vec<usize>>,
}

/// A model (and, for resuming, optimizer) state with its header.
///
/// The file is `GENCKPT\0`, a format version, then length-prefixed sections (header JSON, model,
/// optimizer), then the SHA-256 of everything before it: truncation and bit rot are detected
/// before any byte reaches burn's decoder.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The header.
    pub header: CheckpointHeader,
    /// The model record (burn's named MessagePack, full precision).
    pub model: Vec<u8>,
    /// The optimizer record, when saved for resuming.
    pub optimizer: Option<Vec<u8>>,
}

impl Checkpoint {
    /// Serialises the checkpoint to bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = serde_json::to_vec(&self.header).map_err(|e| CoreError::Serialise {
            what: "checkpoint header",
            reason: e.to_string(),
        })?;
        let mut out = Vec::with_capacity(header.len() + self.model.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for section in [Some(&header), Some(&self.model), self.optimizer.as_ref()] {
            match section {
                Some(s) => {
                    out.push(1);
                    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                    out.extend_from_slice(s);
                }
                None => out.push(0),
            }
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses bytes read from `path` (the path is only used in error messages).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |reason: String| CoreError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a gen checkpoint (bad magic bytes or too short)".into()));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(corrupt(format!(
                "checksum mismatch over {} bytes: the file is truncated or damaged",
                bytes.len()
            )));
        }
        let version = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let mut pos = 12;
        let mut sections = Vec::with_capacity(3);
        for name in ["header", "model", "optimizer"] {
            let flag = *body
                .get(pos)
                .ok_or_else(|| corrupt(format!("{name} section missing")))?;
            pos += 1;
            if flag == 0 {
                sections.push(None);
                continue;
            }
            let len_bytes = body
                .get(pos..pos + 8)
                .ok_or_else(|| corrupt(format!("{name} length missing")))?;
            let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
            pos += 8;
            if len > MAX_SECTION || pos as u64 + len > body.len() as u64 {
                return Err(corrupt(format!(
                    "{name} section claims {len} bytes, file has {}",
                    body.len() - pos
                )));
            }
            let len = len as usize;
            sections.push(Some(body[pos..pos + len].to_vec()));
            pos += len;
        }
        if pos != body.len() {
            return Err(corrupt(format!("{} unexpected trailing bytes", body.len() - pos)));
        }
        let mut it = sections.into_iter();
        let header = it
            .next()
            .flatten()
            .ok_or_else(|| corrupt("header section empty".into()))?;
        let header: CheckpointHeader =
            serde_json::from_slice(&header).map_err(|e| corrupt(format!("header is not valid JSON: {e}")))?;
        let model = it
            .next()
            .flatten()
            .ok_or_else(|| corrupt("model section empty".into()))?;
        let optimizer = it.next().flatten();
        Ok(Self {
            header,
            model,
            optimizer,
        })
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads and verifies a checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::io("cannot read checkpoint", path, e))?;
        Self::from_bytes(&bytes, path)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers
/// see either the old file or the complete new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write(bytes)?;
    f.commit().map(|_| ())
}

/// A file written in parts and put in place whole: the parts go to a temporary file beside
/// `path` (`.NAME.tmp-PID`), which [`AtomicFile::commit`] syncs and renames onto `path`.
/// Dropped uncommitted (an error, an early return), it removes the temporary file, so readers
/// see either the old file or the complete new one, never a part.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    committed: bool,
}

impl AtomicFile {
    /// Starts the temporary file for `path`.
    ///
    /// # Errors
    /// [`CoreError::Io`] naming `path` if the temporary file cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp: PathBuf = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| CoreError::io("cannot write", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            out: std::io::BufWriter::new(file),
            committed: false,
        })
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// [`CoreError::Io`] naming the destination if the write fails.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| CoreError::io("cannot write", &self.path, e))
    }

    /// Flushes, syncs and renames the file into place; returns its path.
    ///
    /// # Errors
    /// [`CoreError::Io`] naming the destination if any step fails; the temporary file is then
    /// removed and an earlier file at the destination is left as it was.
    pub fn commit(mut self) -> Result<PathBuf> {
        let result = self
            .out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.path));
        result.map_err(|e| CoreError::io("cannot write", &self.path, e))?;
        self.committed = true;
        Ok(self.path.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Shapes of every float parameter, in visiting order.
pub(crate) fn param_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.shape().dims::<D>().to_vec());
        }
    }
    let mut v = Shapes(Vec::new());
    module.visit(&mut v);
    v.0
}

/// Serialises a module's parameters (burn's named MessagePack, full precision).
pub fn module_to_bytes<B: Backend, M: Module<B>>(module: M) -> Result<Vec<u8>> {
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(module.into_record(), ())
        .map_err(|e| CoreError::Serialise {
            what: "model record",
            reason: e.to_string(),
        })
}

/// Saves a module alone (no optimizer state) with `config` in its header, atomically.
pub fn save_module<B: Backend, M: Module<B>>(module: &M, config: serde_json::Value, path: &Path) -> Result<()> {
    let header = CheckpointHeader {
        config,
        ..Default::default()
    };
    save_checkpoint(module, header, None, path)
}

/// Saves `module` under `header` (its parameter shapes are filled in) with an optimizer state
/// from [`optimizer_to_bytes`], atomically: what a trainer needs to resume.
pub fn save_checkpoint<B: Backend, M: Module<B>>(
    module: &M,
    header: CheckpointHeader,
    optimizer: Option<Vec<u8>>,
    path: &Path,
) -> Result<()> {
    let header = CheckpointHeader {
        param_shapes: param_shapes(module),
        ..header
    };
    Checkpoint {
        header,
        model: module_to_bytes(module.clone())?,
        optimizer,
    }
    .save(path)
}

/// Loads the parameters in `path` into `module`, which must have the same architecture.
///
/// # Errors
/// If the file is unreadable or corrupt, or its parameter shapes differ from `module`'s.
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
    device: &B::Device,
) -> Result<(M, CheckpointHeader)> {
    let ckpt = Checkpoint::load(path)?;
    let module = load_into(module, &ckpt, path, device)?;
    Ok((module, ckpt.header))
}

/// Loads `path` into `module` and `optimizer`: a checkpoint written by [`save_checkpoint`] with
/// an optimizer state, to resume training from.
///
/// # Errors
/// As [`load_module`], and [`CoreError::CheckpointMismatch`] when the file holds no optimizer
/// state, [`CoreError::CorruptCheckpoint`] when that state does not decode.
pub fn load_resumable<B, M, O>(
    module: M,
    optimizer: O,
    path: &Path,
    device: &B::Device,
) -> Result<(M, O, CheckpointHeader)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let ckpt = Checkpoint::load(path)?;
    let module = load_into(module, &ckpt, path, device)?;
    let bytes = ckpt.optimizer.ok_or_else(|| CoreError::CheckpointMismatch {
        path: path.to_path_buf(),
        reason: "it holds no optimizer state, so it cannot be resumed".into(),
    })?;
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, device)
        .map_err(|e| CoreError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason: format!("optimizer state: {e}"),
        })?;
    Ok((module, optimizer.load_record(record), ckpt.header))
}

/// Serialises an optimizer's state (burn's named MessagePack, full precision) for
/// [`save_checkpoint`].
pub fn optimizer_to_bytes<B, M, O>(optimizer: &O) -> Result<Vec<u8>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(optimizer.to_record(), ())
        .map_err(|e| CoreError::Serialise {
            what: "optimizer state",
            reason: e.to_string(),
        })
}

pub(crate) fn load_into<B: Backend, M: Module<B>>(
    module: M,
    ckpt: &Checkpoint,
    path: &Path,
    device: &B::Device,
) -> Result<M> {
    let expected = param_shapes(&module);
    if expected != ckpt.header.param_shapes {
        return Err(CoreError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: format!(
                "the model has parameter shapes {expected:?}, the checkpoint {:?}",
                ckpt.header.param_shapes
            ),
        });
    }
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .load::<M::Record>(ckpt.model.clone(), device)
        .map_err(|e| CoreError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(module.load_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::MlpConfig;
    use crate::test_util::TestBackend;

    fn sample() -> Checkpoint {
        Checkpoint {
            header: CheckpointHeader {
                epoch: 3,
                global_step: 30,
                ..Default::default()
            },
            model: vec![1, 2, 3, 4],
            optimizer: Some(vec![9; 10]),
        }
    }

    #[test]
    fn bytes_round_trip() {
        let c = sample();
        let back = Checkpoint::from_bytes(&c.to_bytes().unwrap(), Path::new("x")).unwrap();
        assert_eq!(back.header, c.header);
        assert_eq!(back.model, c.model);
        assert_eq!(back.optimizer, c.optimizer);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error() {
        let bytes = sample().to_bytes().unwrap();
        for cut in 0..bytes.len() {
            let err = Checkpoint::from_bytes(&bytes[..cut], Path::new("c.ckpt")).unwrap_err();
            assert!(
                matches!(err, CoreError::CorruptCheckpoint { .. }),
                "cut at {cut}: {err}"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            let err = Checkpoint::from_bytes(&b, Path::new("c.ckpt")).unwrap_err();
            assert!(err.to_string().contains("c.ckpt"), "{err}");
        }
    }

    #[test]
    fn module_round_trip_gives_identical_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ckpt");
        let device = Default::default();
        let cfg = MlpConfig::new(4, vec![5], 3);
        let a = cfg.init::<TestBackend>(&device);
        save_module(&a, serde_json::json!({"kind": "mlp"}), &path).unwrap();
        let (b, header) = load_module(cfg.init::<TestBackend>(&device), &path, &device).unwrap();
        assert_eq!(header.config["kind"], "mlp");
        let x = Tensor::<TestBackend, 2>::random([6, 4], burn::tensor::Distribution::Default, &device);
        a.forward(x.clone())
            .into_data()
            .assert_eq(&b.forward(x).into_data(), true);
        let wrong = MlpConfig::new(4, vec![6], 3).init::<TestBackend>(&device);
        let err = load_module(wrong, &path, &device).unwrap_err();
        assert!(matches!(err, CoreError::CheckpointMismatch { .. }), "{err}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_atomic(&dir.path().join("missing/f.bin"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing/f.bin"), "{err}");
        // Written in parts, the file appears at the commit; dropped before it, nothing changes.
        let mut f = AtomicFile::create(&path).unwrap();
        f.write(b"in ").unwrap();
        f.write(b"parts").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(f.commit().unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"in parts");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write(b"abandoned").unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the file and its temporary"
        );
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"in parts");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
