//! Building blocks shared by the model families: activations, a twice-differentiable dense layer,
//! MLP stacks, convolutional encoder and decoder stacks for images, and batch normalisation.

mod activation;
mod architecture;
mod conv;
mod dense;
pub mod fastbce;
pub mod fastconv;
pub mod fastdense;
pub mod fastjacobian;
mod host;
mod mlp;
mod norm;

pub use activation::Activation;
pub use architecture::{Architecture, Halves, HalvesSpec};
pub use conv::{ConvDecoder, ConvDecoderConfig, ConvEncoder, ConvEncoderConfig, ImageShape};
pub use dense::{Dense, DenseConfig};
pub use fastbce::{bce_with_logits, register_fast_bce};
pub use fastconv::{conv_transpose2d, conv_transpose2d_activated, conv2d, conv2d_activated, register_fast_conv};
pub use fastdense::{dense, register_fast_dense};
pub use fastjacobian::dense_jacobian_fro2;
pub(crate) use host::keep_workers_awake;
pub use mlp::{Mlp, MlpConfig};
pub use norm::{BatchNorm, BatchNormConfig, per_sample_channels};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, backend::Backend};

/// Forces every lazily initialised parameter of `module` to be created now.
///
/// burn creates some parameters (those of `nn::conv::Conv2d`, for instance) on first use; a module
/// cloned before that would get different weights in each clone. Model configs call this from
/// `init`, so a freshly built model can be cloned safely.
pub fn materialize<B: Backend, M: Module<B>>(module: &M) {
    struct Touch;
    impl<B: Backend> ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}
