//! Weights other tools read: any module's parameters to and from a
//! [safetensors](https://huggingface.co/docs/safetensors) file, through burn-store's
//! `SafetensorsStore`.
//!
//! Tensor names are the module's field paths with enum variants left out
//! (`encoder.layers.0.weight`, `decoder.deconvs.1.bias`, `pca.axes`), every tensor is `F32`,
//! and the file's metadata carries what the caller gives (gen puts the run's configuration
//! there) beside burn-store's own `format`, `producer` and `version` and our
//! [`METADATA_LAYOUT`].
//!
//! Two layouts of the dense weights are offered ([`TensorLayout`]): burn's `[d_input, d_output]`
//! (`y = x W + b`), and PyTorch's `[d_output, d_input]` (`y = x Wᵀ + b`, `torch.nn.Linear`),
//! where batch-norm scale and shift are also named `weight` and `bias` instead of `gamma` and
//! `beta` (burn-store's `BurnToPyTorchAdapter`). Convolution and transposed-convolution kernels
//! are the same in both (`[out, in, kh, kw]` and `[in, out, kh, kw]`).
//!
//! Saving writes the whole file to memory and puts it in place atomically; loading refuses a
//! file that lacks a tensor of the module, holds one the module does not have, or gives one
//! another shape or type, naming every such tensor.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn_store::{
    BurnToPyTorchAdapter, ChainAdapter, IdentityAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore, TensorSnapshot,
};
use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// Metadata key recording the [`TensorLayout`] a file was written in (`burn` or `pytorch`).
pub const METADATA_LAYOUT: &str = "gen.layout";

/// How dense weights (and batch-norm parameters) are laid out and named in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorLayout {
    /// As the model holds them: dense weights `[d_input, d_output]`, batch norm's `gamma` and
    /// `beta`.
    #[default]
    Burn,
    /// As PyTorch holds them: dense weights `[d_output, d_input]` (`torch.nn.Linear.weight`),
    /// batch norm's `weight` and `bias`.
    Pytorch,
}

impl TensorLayout {
    /// The name used on the command line and in [`METADATA_LAYOUT`].
    pub fn name(self) -> &'static str {
        match self {
            TensorLayout::Burn => "burn",
            TensorLayout::Pytorch => "pytorch",
        }
    }

    /// The adapter from the model to the file.
    fn model_to_file(self) -> Box<dyn ModuleAdapter> {
        match self {
            TensorLayout::Burn => Box::new(IdentityAdapter),
            TensorLayout::Pytorch => Box::new(ChainAdapter::new(DenseTranspose, BurnToPyTorchAdapter)),
        }
    }

    /// The adapter from the file to the model.
    fn file_to_model(self) -> Box<dyn ModuleAdapter> {
        match self {
            TensorLayout::Burn => Box::new(IdentityAdapter),
            TensorLayout::Pytorch => Box::new(ChainAdapter::new(DenseTranspose, PyTorchToBurnAdapter)),
        }
    }
}

impl std::str::FromStr for TensorLayout {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "burn" => Ok(TensorLayout::Burn),
            "pytorch" | "torch" => Ok(TensorLayout::Pytorch),
            other => Err(format!("unknown tensor layout {other:?}; expected burn or pytorch")),
        }
    }
}

impl std::fmt::Display for TensorLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Transposes the weight of gen's [`Dense`](crate::nn::Dense) layer, which burn-store's PyTorch
/// adapters do not know (they transpose `burn::nn::Linear` only). A transpose is its own
/// inverse, so the one adapter serves both directions.
#[derive(Debug, Clone, Copy)]
struct DenseTranspose;

impl ModuleAdapter for DenseTranspose {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let is_dense_weight = snapshot.module_type().as_deref() == Some("Struct:Dense")
            && snapshot.path_stack.as_ref().and_then(|p| p.last()).map(String::as_str) == Some("weight")
            && snapshot.shape.len() == 2;
        if !is_dense_weight {
            return snapshot.clone();
        }
        let data_fn = snapshot.clone_data_fn();
        let transposed = std::rc::Rc::new(move || {
            let data = data_fn()?;
            let [rows, cols] = [data.shape[0], data.shape[1]];
            let size = data.dtype.size();
            let bytes = data.as_bytes();
            let mut out = vec![0u8; bytes.len()];
            for i in 0..rows {
                for j in 0..cols {
                    let (src, dst) = ((i * cols + j) * size, (j * rows + i) * size);
                    out[dst..dst + size].copy_from_slice(&bytes[src..src + size]);
                }
            }
            Ok(burn::tensor::TensorData::from_bytes_vec(
                out,
                vec![cols, rows],
                data.dtype,
            ))
        });
        TensorSnapshot::from_closure(
            transposed,
            snapshot.dtype,
            [snapshot.shape[1], snapshot.shape[0]].into(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// One tensor of a file or a module: its name, element type and shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Dotted path, e.g. `encoder.layers.0.weight`.
    pub name: String,
    /// Element type as safetensors names it (`F32`).
    pub dtype: String,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
}

/// What a safetensors file says about itself, read without its tensor data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SafetensorsHeader {
    /// The string metadata (`__metadata__`).
    pub metadata: BTreeMap<String, String>,
    /// Every tensor, by name.
    pub tensors: Vec<TensorInfo>,
}

impl SafetensorsHeader {
    /// The layout recorded in [`METADATA_LAYOUT`], if any.
    ///
    /// # Errors
    /// [`CoreError::Interop`] naming `path` if the recorded layout is not one of ours.
    pub fn layout(&self, path: &Path) -> Result<Option<TensorLayout>> {
        self.metadata
            .get(METADATA_LAYOUT)
            .map(|s| s.parse().map_err(|reason| interop(path, reason)))
            .transpose()
    }
}

fn interop(path: &Path, reason: impl Into<String>) -> CoreError {
    CoreError::Interop {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The tensors `module` is written as in `layout`: the names and shapes a file for it holds.
pub fn tensor_infos<B: Backend, M: Module<B>>(module: &M, layout: TensorLayout) -> Vec<TensorInfo> {
    let mut infos: Vec<TensorInfo> = module
        .collect(None, Some(layout.model_to_file()), true)
        .into_iter()
        .map(|s| TensorInfo {
            name: s.full_path(),
            dtype: dtype_name(s.dtype),
            shape: s.shape.to_vec(),
        })
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
}

fn dtype_name(dtype: burn::tensor::DType) -> String {
    match dtype {
        burn::tensor::DType::F32 => "F32".into(),
        burn::tensor::DType::F64 => "F64".into(),
        burn::tensor::DType::F16 => "F16".into(),
        burn::tensor::DType::BF16 => "BF16".into(),
        other => format!("{other:?}"),
    }
}

/// The bytes of a safetensors file holding `module`'s tensors in `layout`, with `metadata`
/// (and [`METADATA_LAYOUT`]) in its header.
///
/// # Errors
/// [`CoreError::Serialise`] if burn-store cannot write the tensors.
pub fn to_safetensors_bytes<B: Backend, M: Module<B>>(
    module: &M,
    metadata: &BTreeMap<String, String>,
    layout: TensorLayout,
) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .with_to_adapter(AdapterBox(layout.model_to_file()))
        .metadata(METADATA_LAYOUT, layout.name());
    for (k, v) in metadata {
        store = store.metadata(k.clone(), v.clone());
    }
    let serialise = |e: burn_store::SafetensorsStoreError| CoreError::Serialise {
        what: "safetensors file",
        reason: e.to_string(),
    };
    module.save_into(&mut store).map_err(serialise)?;
    store.get_bytes().map_err(serialise)
}

/// Writes `module`'s tensors to the safetensors file `path` in `layout`, with `metadata` in its
/// header, atomically (an earlier file at `path` stays whole until the new one is complete).
///
/// # Errors
/// [`CoreError::Serialise`] or [`CoreError::Io`] naming `path`.
pub fn save_safetensors<B: Backend, M: Module<B>>(
    module: &M,
    metadata: &BTreeMap<String, String>,
    layout: TensorLayout,
    path: &Path,
) -> Result<()> {
    crate::train::write_atomic(path, &to_safetensors_bytes(module, metadata, layout)?)
}

/// Reads the header of the safetensors file `path`: its metadata and the name, type and shape
/// of every tensor.
///
/// # Errors
/// [`CoreError::Io`] if the file cannot be read, [`CoreError::Interop`] if it is not a
/// safetensors file (a truncated or damaged one included).
pub fn read_safetensors_header(path: &Path) -> Result<SafetensorsHeader> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io("cannot read", path, e))?;
    header_of(&bytes, path)
}

fn header_of(bytes: &[u8], path: &Path) -> Result<SafetensorsHeader> {
    // Deserialising checks the header and that every tensor's bytes lie within the file.
    let tensors = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| interop(path, format!("not a readable safetensors file: {e}")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| interop(path, format!("not a readable safetensors file: {e}")))?;
    let metadata: BTreeMap<String, String> = meta.metadata().clone().unwrap_or_default().into_iter().collect();
    let mut infos: Vec<TensorInfo> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| TensorInfo {
            name,
            dtype: format!("{:?}", view.dtype()),
            shape: view.shape().to_vec(),
        })
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(SafetensorsHeader {
        metadata,
        tensors: infos,
    })
}

/// Loads the tensors of the safetensors file `path`, written in `layout`, into `module`: every
/// tensor of the module must be in the file with its shape and type, and the file must hold
/// nothing else.
///
/// # Errors
/// [`CoreError::Io`] or [`CoreError::Interop`] as [`read_safetensors_header`];
/// [`CoreError::CheckpointMismatch`] naming `path` and every tensor that is missing, left over,
/// or of another shape or type.
pub fn load_safetensors<B: Backend, M: Module<B>>(module: M, path: &Path, layout: TensorLayout) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io("cannot read", path, e))?;
    load_safetensors_bytes(module, bytes, layout, path)
}

/// As [`load_safetensors`], from the file's bytes (`path` only names it in errors).
///
/// # Errors
/// As [`load_safetensors`].
pub fn load_safetensors_bytes<B: Backend, M: Module<B>>(
    mut module: M,
    bytes: Vec<u8>,
    layout: TensorLayout,
    path: &Path,
) -> Result<M> {
    // The file's header against the tensors the model is written as in this layout, by name,
    // shape and type, before any value is read: burn-store's own lists count a tensor found
    // under an alternative name (batch norm's `weight` for `gamma`) as both applied and unused.
    let header = header_of(&bytes, path)?;
    let expected = tensor_infos(&module, layout);
    let in_file: BTreeMap<&str, &TensorInfo> = header.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let in_model: BTreeMap<&str, &TensorInfo> = expected.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut problems = Vec::new();
    for (name, want) in &in_model {
        match in_file.get(name) {
            None => problems.push(format!("{name} is missing")),
            Some(got) if got.shape != want.shape => problems.push(format!(
                "{name} has shape {:?}, the model's is {:?}",
                got.shape, want.shape
            )),
            Some(got) if got.dtype != want.dtype => {
                problems.push(format!("{name} is {}, the model's is {}", got.dtype, want.dtype))
            }
            Some(_) => {}
        }
    }
    problems.extend(
        in_file
            .keys()
            .filter(|name| !in_model.contains_key(*name))
            .map(|name| format!("{name} is not a tensor of the model")),
    );
    let mismatch = |problems: Vec<String>| CoreError::CheckpointMismatch {
        path: path.to_path_buf(),
        reason: format!(
            "it does not fit the model in the {layout} layout: {}",
            problems.join("; ")
        ),
    };
    if !problems.is_empty() {
        return Err(mismatch(problems));
    }
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .skip_enum_variants(true)
        .with_from_adapter(AdapterBox(layout.file_to_model()))
        .validate(false)
        .allow_partial(true);
    let result = module.load_from(&mut store).map_err(|e| interop(path, e.to_string()))?;
    let mut problems: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
    if problems.is_empty() && result.applied.len() != expected.len() {
        problems.push(format!(
            "{} of the model's {} tensors were loaded",
            result.applied.len(),
            expected.len()
        ));
    }
    if !problems.is_empty() {
        return Err(mismatch(problems));
    }
    Ok(module)
}

/// A boxed adapter passed where burn-store takes `impl ModuleAdapter`.
#[derive(Clone)]
struct AdapterBox(Box<dyn ModuleAdapter>);

impl ModuleAdapter for AdapterBox {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        self.0.adapt(snapshot)
    }

    fn get_alternative_param_name(&self, param_name: &str, container_type: &str) -> Option<String> {
        self.0.get_alternative_param_name(param_name, container_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        self.0.clone_box()
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::nn::{Activation, ConvDecoderConfig, ImageShape, MlpConfig};
    use crate::test_util::TestBackend;

    type B = TestBackend;

    fn mlp() -> crate::nn::Mlp<B> {
        MlpConfig::new(6, vec![5], 3)
            .with_activation(Activation::Tanh)
            .init::<B>(&Default::default())
    }

    fn same_outputs(a: &crate::nn::Mlp<B>, b: &crate::nn::Mlp<B>) {
        let x = Tensor::<B, 2>::random([4, 6], Distribution::Default, &Default::default());
        a.forward(x.clone())
            .into_data()
            .assert_eq(&b.forward(x).into_data(), true);
    }

    #[test]
    fn both_layouts_round_trip_bit_for_bit_and_name_the_tensors() {
        let _guard = crate::testing::seeded::<B>(&Default::default(), 0);
        let dir = tempfile::tempdir().unwrap();
        let model = mlp();
        for layout in [TensorLayout::Burn, TensorLayout::Pytorch] {
            let path = dir.path().join(format!("m-{layout}.safetensors"));
            let meta = BTreeMap::from([("gen.config".to_string(), "{\"x\":1}".to_string())]);
            save_safetensors(&model, &meta, layout, &path).unwrap();
            let header = read_safetensors_header(&path).unwrap();
            assert_eq!(header.metadata["gen.config"], "{\"x\":1}");
            assert_eq!(header.layout(&path).unwrap(), Some(layout));
            assert_eq!(header.tensors, tensor_infos(&model, layout));
            let names: Vec<_> = header
                .tensors
                .iter()
                .map(|t| (t.name.as_str(), t.shape.clone()))
                .collect();
            let w0 = match layout {
                TensorLayout::Burn => vec![6, 5],
                TensorLayout::Pytorch => vec![5, 6],
            };
            assert_eq!(
                names,
                vec![
                    ("layers.0.bias", vec![5]),
                    ("layers.0.weight", w0),
                    ("layers.1.bias", vec![3]),
                    (
                        "layers.1.weight",
                        if layout == TensorLayout::Burn {
                            vec![5, 3]
                        } else {
                            vec![3, 5]
                        }
                    ),
                ]
            );
            let fresh = mlp();
            let loaded = load_safetensors(fresh, &path, layout).unwrap();
            same_outputs(&model, &loaded);
        }
    }

    /// The PyTorch layout holds `Wᵀ`: read the raw file and compare with the model's weight.
    #[test]
    fn the_pytorch_layout_holds_the_transposed_dense_weight() {
        let _guard = crate::testing::seeded::<B>(&Default::default(), 1);
        let model = mlp();
        let bytes = to_safetensors_bytes(&model, &BTreeMap::new(), TensorLayout::Pytorch).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor("layers.0.weight").unwrap();
        let file: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let collected = model.collect(None, None, true);
        let w = collected.iter().find(|s| s.full_path() == "layers.0.weight").unwrap();
        let w: Vec<f32> = w.to_data().unwrap().to_vec().unwrap();
        // w is [6, 5] row-major; the file [5, 6].
        for i in 0..6 {
            for j in 0..5 {
                assert_eq!(file[j * 6 + i], w[i * 5 + j]);
            }
        }
    }

    fn decoder() -> crate::nn::ConvDecoder<B> {
        ConvDecoderConfig {
            d_input: 3,
            image: ImageShape::grey(8, 8),
            channels: vec![4, 2],
            activation: Activation::Relu,
            output_activation: Activation::Identity,
        }
        .init::<B>(&Default::default())
    }

    #[test]
    fn conv_kernels_keep_their_layout_and_enum_variants_are_left_out() {
        let _guard = crate::testing::seeded::<B>(&Default::default(), 2);
        let dec = decoder();
        let burn = tensor_infos(&dec, TensorLayout::Burn);
        let torch = tensor_infos(&dec, TensorLayout::Pytorch);
        let shape = |infos: &[TensorInfo], n: &str| infos.iter().find(|t| t.name == n).unwrap().shape.clone();
        assert_eq!(shape(&burn, "deconvs.0.weight"), vec![4, 2, 4, 4]);
        assert_eq!(shape(&torch, "deconvs.0.weight"), vec![4, 2, 4, 4]);
        assert_eq!(shape(&burn, "fc.weight"), vec![3, 4 * 2 * 2]);
        assert_eq!(shape(&torch, "fc.weight"), vec![4 * 2 * 2, 3]);
        let bytes = to_safetensors_bytes(&dec, &BTreeMap::new(), TensorLayout::Pytorch).unwrap();
        let fresh = decoder();
        let loaded = load_safetensors_bytes(fresh, bytes, TensorLayout::Pytorch, Path::new("d")).unwrap();
        let z = Tensor::<B, 2>::random([2, 3], Distribution::Default, &Default::default());
        dec.forward(z.clone())
            .into_data()
            .assert_eq(&loaded.forward(z).into_data(), true);
    }

    /// Batch norm's scale and shift are `weight` and `bias` in the PyTorch layout, and come back
    /// into `gamma` and `beta` with the running statistics.
    #[test]
    fn batch_norm_round_trips_under_pytorchs_names() {
        let _guard = crate::testing::seeded::<B>(&Default::default(), 4);
        let device = Default::default();
        let mut bn = crate::nn::BatchNormConfig::new(3).init::<B>(&device);
        let r = |shift: f64| Tensor::<B, 1>::random([3], Distribution::Uniform(shift, shift + 1.0), &device);
        bn.gamma = burn::module::Param::from_tensor(r(1.0));
        bn.beta = burn::module::Param::from_tensor(r(-1.0));
        bn.running_mean = burn::module::RunningState::new(r(0.0));
        bn.running_var = burn::module::RunningState::new(r(2.0));
        let names: Vec<String> = tensor_infos(&bn, TensorLayout::Pytorch)
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["bias", "running_mean", "running_var", "weight"]);
        let bytes = to_safetensors_bytes(&bn, &BTreeMap::new(), TensorLayout::Pytorch).unwrap();
        let fresh = crate::nn::BatchNormConfig::new(3).init::<B>(&device);
        let back = load_safetensors_bytes(fresh, bytes, TensorLayout::Pytorch, Path::new("bn")).unwrap();
        for (a, b) in [
            (bn.gamma.val(), back.gamma.val()),
            (bn.beta.val(), back.beta.val()),
            (bn.running_mean.value(), back.running_mean.value()),
            (bn.running_var.value(), back.running_var.value()),
        ] {
            a.into_data().assert_eq(&b.into_data(), true);
        }
    }

    #[test]
    fn another_model_a_wrong_layout_and_damaged_bytes_are_refused_with_the_reason() {
        let _guard = crate::testing::seeded::<B>(&Default::default(), 3);
        let model = mlp();
        let bytes = to_safetensors_bytes(&model, &BTreeMap::new(), TensorLayout::Burn).unwrap();
        // Another architecture: every differing tensor is named.
        let other = MlpConfig::new(6, vec![4], 3).init::<B>(&Default::default());
        let err = load_safetensors_bytes(other, bytes.clone(), TensorLayout::Burn, Path::new("w.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("w.safetensors") && err.contains("layers.0.weight"),
            "{err}"
        );
        // A deeper model: the missing layer is named.
        let deeper = MlpConfig::new(6, vec![5, 4], 3).init::<B>(&Default::default());
        let err = load_safetensors_bytes(deeper, bytes.clone(), TensorLayout::Burn, Path::new("w"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("layers.2") && err.contains("missing"), "{err}");
        // Read in the other layout, a non-square weight no longer fits.
        let err = load_safetensors_bytes(mlp(), bytes.clone(), TensorLayout::Pytorch, Path::new("w"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pytorch layout"), "{err}");
        // Every truncation is an error, never a panic or a partial load.
        for cut in [0, 4, 8, bytes.len() / 2, bytes.len() - 1] {
            let err =
                load_safetensors_bytes(mlp(), bytes[..cut].to_vec(), TensorLayout::Burn, Path::new("cut")).unwrap_err();
            assert!(matches!(err, CoreError::Interop { .. }), "cut at {cut}: {err}");
        }
    }
}
