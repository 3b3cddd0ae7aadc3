//! The semi-supervised GAN's networks: weight-normalised dense layers, the classifying
//! discriminator and the generator.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use gen_core::nn::{Activation, BatchNorm, BatchNormConfig, Dense, DenseConfig, dense};

use super::SsganConfig;

/// Standard deviation of the discriminator's initial directions (the reference's).
const D_INIT_SD: f64 = 0.1;

/// Standard deviation of the generator's output directions (Glorot's for 500 to 784 units, the
/// reference's initialisation).
const G_INIT_SD: f64 = 0.04;

/// Keeps the data-dependent initialisation finite on a unit that is constant over the batch.
const INIT_EPS: f64 = 1e-6;

/// A weight-normalised dense layer (Salimans and Kingma, 2016): `y = x · (v / ‖v‖) · g + b`,
/// the norm taken over each output unit's column of `v`, so `g` alone sets each unit's scale.
/// [`WnDense::init_on`] sets `g` and `b` from a batch of data, so the units start with zero
/// mean and unit variance. The product runs as gen-core's fused dense operation.
///
/// A layer with a fixed scale (`train_scale` false: the reference implementation's hidden
/// layers) keeps `g` at its initial value: its gradient is cut, so the optimizer never moves
/// it. That matters where noise follows the layer: a trainable scale could outgrow the noise
/// and undo its regularisation.
#[derive(Module, Debug)]
pub struct WnDense<B: Backend> {
    /// Directions, `[d_input, d_output]`.
    pub v: Param<Tensor<B, 2>>,
    /// Scale per output unit, `[d_output]`.
    pub g: Param<Tensor<B, 1>>,
    /// Bias, `[d_output]`.
    pub b: Param<Tensor<B, 1>>,
    /// Whether `g` learns.
    pub train_scale: bool,
}

impl<B: Backend> WnDense<B> {
    /// Directions drawn from N(0, `sd`²), scale 1, bias 0; `train_scale` says whether the
    /// scale learns. The directions' size sets how far Adam's steps of a fixed length turn
    /// them: the reference implementation draws the discriminator's from N(0, 0.1²).
    pub fn new(d_input: usize, d_output: usize, sd: f64, train_scale: bool, device: &B::Device) -> Self {
        Self {
            v: Param::from_tensor(Tensor::random(
                [d_input, d_output],
                Distribution::Normal(0.0, sd),
                device,
            )),
            g: Param::from_tensor(Tensor::ones([d_output], device)),
            b: Param::from_tensor(Tensor::zeros([d_output], device)),
            train_scale,
        }
    }

    /// `v / ‖v‖` per column.
    fn directions(&self) -> Tensor<B, 2> {
        let v = self.v.val();
        let norm = v.clone().powi_scalar(2).sum_dim(0).sqrt();
        v / norm
    }

    /// The weight the layer applies: `v / ‖v‖ · g`.
    pub fn weight(&self) -> Tensor<B, 2> {
        let g = if self.train_scale {
            self.g.val()
        } else {
            self.g.val().detach()
        };
        self.directions() * g.unsqueeze_dim(0)
    }

    /// `activation(x · weight + b)`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`; output `[batch, d_output]`
    pub fn forward_activated(&self, x: Tensor<B, 2>, activation: Activation) -> Tensor<B, 2> {
        dense(x, self.weight(), self.b.val(), activation)
    }

    /// Data-dependent initialisation: `g` and `b` set so that the layer's outputs on `x` have
    /// mean 0 and variance 1 per unit (`g = 1/s`, `b = −m/s` for the mean `m` and standard
    /// deviation `s` of `x · v/‖v‖`); returns the layer and those outputs (before any
    /// activation), detached.
    pub fn init_on(self, x: Tensor<B, 2>) -> (Self, Tensor<B, 2>) {
        let t = x.matmul(self.directions()).detach();
        let mean = t.clone().mean_dim(0);
        let centred = t - mean.clone();
        let sd = centred.clone().powi_scalar(2).mean_dim(0).sqrt().add_scalar(INIT_EPS);
        let out = centred / sd.clone();
        let g = sd.clone().recip().flatten(0, 1);
        let b = (mean.neg() / sd).flatten(0, 1);
        let layer = Self {
            v: self.v,
            g: Param::from_tensor(g.detach()),
            b: Param::from_tensor(b.detach()),
            train_scale: self.train_scale,
        };
        (layer, out)
    }
}

/// `t` plus Gaussian noise of standard deviation `sd` (none when `sd` is 0).
fn gaussian_noise<B: Backend>(t: Tensor<B, 2>, sd: f64) -> Tensor<B, 2> {
    if sd > 0.0 {
        let n = Tensor::random(t.shape(), Distribution::Normal(0.0, sd), &t.device());
        t + n
    } else {
        t
    }
}

/// The discriminator and classifier: weight-normalised dense layers with ReLU and, while
/// training, Gaussian noise on the input and after each hidden layer; K class logits out.
#[derive(Module, Debug)]
pub struct SsDiscriminator<B: Backend> {
    hidden: Vec<WnDense<B>>,
    out: WnDense<B>,
    input_noise: f64,
    hidden_noise: f64,
}

impl<B: Backend> SsDiscriminator<B> {
    /// Builds the discriminator of `cfg`.
    pub fn new(cfg: &SsganConfig, device: &B::Device) -> Self {
        let mut widths = vec![cfg.d_input];
        widths.extend(&cfg.d_hidden);
        // As in the reference implementation, only the output layer's scale learns.
        let hidden = widths
            .windows(2)
            .map(|w| WnDense::new(w[0], w[1], D_INIT_SD, false, device))
            .collect();
        Self {
            hidden,
            out: WnDense::new(
                *widths.last().expect("an input width"),
                cfg.n_classes,
                D_INIT_SD,
                true,
                device,
            ),
            input_noise: cfg.input_noise,
            hidden_noise: cfg.hidden_noise,
        }
    }

    /// Number of classes K.
    pub fn n_classes(&self) -> usize {
        self.out.b.dims()[0]
    }

    /// Values per input.
    pub fn d_input(&self) -> usize {
        self.hidden[0].v.dims()[0]
    }

    /// The class logits and the last hidden layer's activations before its noise (the
    /// features that feature matching compares, as in the reference implementation), with
    /// the training noise when `noisy`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`; outputs `[batch, n_classes]` and `[batch, last hidden width]`
    pub fn forward(&self, x: Tensor<B, 2>, noisy: bool) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let noise = |t: Tensor<B, 2>, sd: f64| if noisy { gaussian_noise(t, sd) } else { t };
        let mut h = noise(x, self.input_noise);
        let mut features = None;
        for layer in &self.hidden {
            let a = layer.forward_activated(h, Activation::Relu);
            features = Some(a.clone());
            h = noise(a, self.hidden_noise);
        }
        let logits = self.out.forward_activated(h, Activation::Identity);
        (logits, features.expect("at least one hidden layer"))
    }

    /// The class logits without noise: the classifier.
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x, false).0
    }

    /// The predicted class of each row.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input]`; output `[batch]`
    pub fn predict(&self, x: Tensor<B, 2>) -> Tensor<B, 1, Int> {
        self.logits(x).argmax(1).flatten(0, 1)
    }

    /// The data-dependent initialisation of every layer in turn on the batch `x`, with the
    /// training noise, as in the reference implementation: each layer's scale is set by the
    /// spread of its noisy input, so the noise keeps its weight against the signal in every
    /// layer.
    pub fn init_on(self, x: Tensor<B, 2>) -> Self {
        let noise = gaussian_noise::<B>;
        let mut h = noise(x.detach(), self.input_noise);
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for layer in self.hidden {
            let (layer, pre) = layer.init_on(h);
            h = noise(burn::tensor::activation::relu(pre), self.hidden_noise);
            hidden.push(layer);
        }
        let (out, _) = self.out.init_on(h);
        Self {
            hidden,
            out,
            input_noise: self.input_noise,
            hidden_noise: self.hidden_noise,
        }
    }
}

/// The generator: uniform noise through dense layers with batch norm and softplus, then a
/// weight-normalised layer with a sigmoid, to images in (0, 1).
#[derive(Module, Debug)]
pub struct SsGenerator<B: Backend> {
    hidden: Vec<Dense<B>>,
    norms: Vec<BatchNorm<B>>,
    out: WnDense<B>,
    d_latent: usize,
}

impl<B: Backend> SsGenerator<B> {
    /// Builds the generator of `cfg`.
    pub fn new(cfg: &SsganConfig, device: &B::Device) -> Self {
        let mut widths = vec![cfg.d_latent];
        widths.extend(&cfg.g_hidden);
        Self {
            hidden: widths
                .windows(2)
                .map(|w| DenseConfig::new(w[0], w[1]).init(device))
                .collect(),
            norms: cfg
                .g_hidden
                .iter()
                .map(|&w| BatchNormConfig::new(w).init(device))
                .collect(),
            out: WnDense::new(
                *widths.last().expect("a latent width"),
                cfg.d_input,
                G_INIT_SD,
                true,
                device,
            ),
            d_latent: cfg.d_latent,
        }
    }

    /// Width of the noise.
    pub fn d_latent(&self) -> usize {
        self.d_latent
    }

    /// Images from the noise `z`. Batch norm uses the batch's statistics on an autodiff
    /// backend and the running ones otherwise.
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`; output `[batch, d_input]`
    pub fn forward(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = z;
        for (layer, norm) in self.hidden.iter().zip(&self.norms) {
            let [_, c] = layer.weight.dims();
            let rows = h.dims()[0];
            let y = norm.forward(layer.forward(h).reshape([rows, c, 1, 1]));
            h = Activation::Softplus.forward(y.reshape([rows, c]));
        }
        self.out.forward_activated(h, Activation::Sigmoid)
    }

    /// `n` images from fresh uniform noise in [0, 1).
    pub fn sample(&self, n: usize, device: &B::Device) -> Tensor<B, 2> {
        self.forward(Tensor::random([n, self.d_latent], Distribution::Default, device))
    }
}
