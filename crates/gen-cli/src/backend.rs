//! The one place that names concrete backends: each behind its cargo feature, all calling one
//! generic job.

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::ValueEnum;

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// burn's Flex CPU backend (pure Rust, multi-threaded); the default, measured faster than
    /// ndarray on our workloads.
    Flex,
    /// burn's ndarray CPU backend.
    Ndarray,
    /// The GPU through wgpu (Vulkan, Metal, DX12; a software Vulkan works too).
    Wgpu,
}

impl Default for BackendChoice {
    fn default() -> Self {
        if cfg!(feature = "flex") {
            BackendChoice::Flex
        } else if cfg!(feature = "ndarray") {
            BackendChoice::Ndarray
        } else {
            BackendChoice::Wgpu
        }
    }
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendChoice::Flex => "flex",
            BackendChoice::Ndarray => "ndarray",
            BackendChoice::Wgpu => "wgpu",
        })
    }
}

/// Work that runs on any autodiff backend.
pub trait Job {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Runs `job` on the chosen backend.
///
/// The unit-test build of this binary names no backend: its tests never train, and every
/// backend arm instantiates the whole toolkit for that backend (minutes of compile time each).
/// The integration tests in `tests/` run the real binary.
pub fn with_backend<J: Job>(choice: BackendChoice, job: J) -> anyhow::Result<J::Output> {
    match choice {
        #[cfg(all(feature = "flex", not(test)))]
        BackendChoice::Flex => {
            register_host_ops::<burn::backend::Flex>();
            job.run::<Autodiff<burn::backend::Flex>>(Default::default())
        }
        #[cfg(all(feature = "ndarray", not(test)))]
        BackendChoice::Ndarray => {
            register_host_ops::<burn::backend::NdArray>();
            job.run::<Autodiff<burn::backend::NdArray>>(Default::default())
        }
        #[cfg(all(feature = "wgpu", not(test)))]
        BackendChoice::Wgpu => {
            wgpu_probe()?;
            job.run::<Autodiff<burn::backend::Wgpu>>(Default::default())
        }
        #[allow(unreachable_patterns)]
        other => {
            drop(job);
            anyhow::bail!("this build of gen has no {other} backend; rebuild with --features {other}")
        }
    }
}

/// Routes the models' convolutions, dense layers and binary cross-entropy on CPU backend `I`
/// through gen-core's host operations (`gen_core::nn::fastconv`, `fastdense`, `fastbce`), unless
/// `GEN_FAST_CONV=0`, `GEN_FAST_DENSE=0` or `GEN_FAST_BCE=0` asks for burn's own (to compare, or to rule them out when chasing a bug).
#[cfg(all(any(feature = "flex", feature = "ndarray"), not(test)))]
fn register_host_ops<I: burn::tensor::backend::Backend>() {
    let on = |var: &str| std::env::var_os(var).is_none_or(|v| v != "0");
    if on("GEN_FAST_CONV") {
        gen_core::nn::register_fast_conv::<I>();
    }
    if on("GEN_FAST_DENSE") {
        gen_core::nn::register_fast_dense::<I>();
    }
    if on("GEN_FAST_BCE") {
        gen_core::nn::register_fast_bce::<I>();
    }
}

/// Checks that wgpu finds an adapter, turning burn's panic into an error that says what to do.
#[cfg(feature = "wgpu")]
pub fn wgpu_probe() -> anyhow::Result<()> {
    use burn::tensor::Tensor;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        let device = burn::backend::wgpu::WgpuDevice::default();
        Tensor::<burn::backend::Wgpu, 1>::ones([4], &device).sum().into_scalar()
    });
    std::panic::set_hook(hook);
    match result {
        Ok(4.0) => Ok(()),
        Ok(v) => anyhow::bail!("the wgpu adapter computed 1+1+1+1 = {v}; refusing to use it"),
        Err(_) => anyhow::bail!(
            "wgpu found no usable GPU adapter; install a Vulkan driver (on Debian: apt-get install \
             mesa-vulkan-drivers for a software one) or choose --backend flex"
        ),
    }
}
