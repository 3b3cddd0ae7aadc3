//! The generator and the discriminator.

use burn::module::{Module, Param};
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Distribution, Int, Tensor, activation, backend::Backend};

use gen_core::nn::fastconv::conv_transpose2d_module_activated;
use gen_core::nn::{Activation, BatchNorm, BatchNormConfig, Dense, DenseConfig, conv_transpose2d};

use crate::config::{GanArchitecture, GanConfig};
use crate::layers::{SnConv, SnDense};

/// The leaky ReLU slope of the discriminator: that of `Activation::LeakyRelu`, which the fused
/// layers apply.
const LEAK: f64 = 0.2;

/// The derivative of the leaky ReLU of slope [`LEAK`] at `z` (from the left at 0).
fn leaky_derivative<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    z.greater_elem(0.0).float().mul_scalar(1.0 - LEAK).add_scalar(LEAK)
}

/// One-hot rows of `labels` over `n` classes.
///
/// # Shapes
/// - `labels`: `[batch]`; output `[batch, n]`
pub fn one_hot<B: Backend>(labels: Tensor<B, 1, Int>, n: usize) -> Tensor<B, 2> {
    let [batch] = labels.dims();
    let device = labels.device();
    Tensor::<B, 2>::zeros([batch, n], &device).scatter(
        1,
        labels.reshape([batch, 1]),
        Tensor::ones([batch, 1], &device),
        burn::tensor::IndexingUpdateOp::Add,
    )
}

/// Maps Gaussian noise (and, when conditional, a one-hot class; when source-conditioned, a real
/// source image) to flattened images in [0, 1].
#[derive(Module, Debug)]
pub struct Generator<B: Backend> {
    input: Dense<B>,
    hidden: Vec<Dense<B>>,
    norms: Vec<BatchNorm<B>>,
    deconvs: Vec<ConvTranspose2d<B>>,
    /// A source-conditioned generator's encoder of its source image: stride-2 convolutions
    /// mirroring the decoder, whose maps are added to the decoder's of the same size (a U-Net
    /// with additive skips); empty otherwise.
    encoder: Vec<SnConv<B>>,
    /// `[c, h, w]` of the DCGAN's first feature map; zeros for an MLP.
    start: [usize; 3],
    d_latent: usize,
    n_classes: usize,
}

impl<B: Backend> Generator<B> {
    /// Builds the generator of `cfg` (assumed valid).
    pub fn new(cfg: &GanConfig, device: &B::Device) -> Self {
        let n_classes = cfg.n_classes.unwrap_or(0);
        let d_in = cfg.d_latent + n_classes;
        let g = match &cfg.architecture {
            GanArchitecture::Mlp { hidden } => {
                let widths: Vec<usize> = hidden.iter().rev().copied().chain([cfg.d_image()]).collect();
                Self {
                    input: DenseConfig::new(d_in, widths[0]).init(device),
                    hidden: widths
                        .windows(2)
                        .map(|w| DenseConfig::new(w[0], w[1]).init(device))
                        .collect(),
                    norms: Vec::new(),
                    deconvs: Vec::new(),
                    encoder: Vec::new(),
                    start: [0; 3],
                    d_latent: cfg.d_latent,
                    n_classes,
                }
            }
            GanArchitecture::Dcgan { channels, batch_norm } => {
                let f = 1usize << channels.len();
                let start = [channels[channels.len() - 1], cfg.image.height / f, cfg.image.width / f];
                let outs: Vec<usize> = channels
                    .iter()
                    .rev()
                    .skip(1)
                    .copied()
                    .chain([cfg.image.channels])
                    .collect();
                let ins: Vec<usize> = channels.iter().rev().copied().collect();
                let deconvs = ins
                    .iter()
                    .zip(&outs)
                    .map(|(&i, &o)| {
                        ConvTranspose2dConfig::new([i, o], [4, 4])
                            .with_stride([2, 2])
                            .with_padding([1, 1])
                            .init(device)
                    })
                    .collect();
                let norms = if *batch_norm {
                    ins.iter().map(|&c| BatchNormConfig::new(c).init(device)).collect()
                } else {
                    Vec::new()
                };
                let encoder = if cfg.source_conditioned {
                    let mut c_in = cfg.image.channels;
                    channels
                        .iter()
                        .map(|&c| {
                            let conv = SnConv::new(c_in, c, false, device);
                            c_in = c;
                            conv
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Self {
                    input: DenseConfig::new(d_in, start.iter().product()).init(device),
                    hidden: Vec::new(),
                    norms,
                    deconvs,
                    encoder,
                    start,
                    d_latent: cfg.d_latent,
                    n_classes,
                }
            }
        };
        gen_core::nn::materialize(&g);
        g
    }

    /// Width of the noise input.
    pub fn d_latent(&self) -> usize {
        self.d_latent
    }

    /// Number of classes of a conditional generator (0: unconditional).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Whether the generator varies a real source image (a DAGAN) and so needs one per sample.
    pub fn is_source_conditioned(&self) -> bool {
        !self.encoder.is_empty()
    }

    /// Images from noise `z` and, for a conditional generator, `labels`.
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`, `labels`: `[batch]`; output `[batch, channels * height * width]`
    ///
    /// # Panics
    /// If a conditional generator gets no labels, or a source-conditioned one is called (it
    /// needs [`Generator::forward_from`]).
    pub fn forward(&self, z: Tensor<B, 2>, labels: Option<Tensor<B, 1, Int>>) -> Tensor<B, 2> {
        self.forward_from(z, labels, None)
    }

    /// Images from noise `z`, `labels` when conditional, and for a source-conditioned
    /// generator a real `source` image per sample (of its label's class) to vary.
    ///
    /// # Shapes
    /// - `z`: `[batch, d_latent]`, `labels`: `[batch]`, `source`: `[batch, d_image]`; output
    ///   `[batch, d_image]`
    ///
    /// # Panics
    /// If a conditional generator gets no labels, or a source-conditioned one no source.
    pub fn forward_from(
        &self,
        z: Tensor<B, 2>,
        labels: Option<Tensor<B, 1, Int>>,
        source: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        // The encoder's maps, smallest last; the decoder adds them largest-last.
        let mut skips: Vec<Tensor<B, 4>> = match (&source, self.encoder.is_empty()) {
            (_, true) => Vec::new(),
            (Some(x), false) => {
                let [batch, _] = x.dims();
                let [c, hh, ww] = self.image_shape();
                let mut h = x.clone().reshape([batch, c, hh, ww]);
                self.encoder
                    .iter()
                    .map(|conv| {
                        h = conv.forward_activated(h.clone(), Activation::LeakyRelu);
                        h.clone()
                    })
                    .collect()
            }
            (None, false) => panic!("a source-conditioned generator needs a source image per sample"),
        };
        let input = match (self.n_classes, labels) {
            (0, _) => z,
            (n, Some(y)) => Tensor::cat(vec![z, one_hot(y, n)], 1),
            (_, None) => panic!("a conditional generator needs labels"),
        };
        let [batch, _] = input.dims();
        if self.deconvs.is_empty() {
            let mut h = self.input.forward_activated(input, Activation::Relu);
            let last = self.hidden.len() - 1;
            for (i, layer) in self.hidden.iter().enumerate() {
                let act = if i < last {
                    Activation::Relu
                } else {
                    Activation::Sigmoid
                };
                h = layer.forward_activated(h, act);
            }
            return h;
        }
        let h = self.input.forward(input);
        let [c, hh, ww] = self.start;
        let mut h = h.reshape([batch, c, hh, ww]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            if let Some(skip) = skips.pop() {
                h = h + skip;
            }
            if let Some(norm) = self.norms.get(i) {
                h = norm.forward(h);
            }
            let output = if i == last {
                Activation::Sigmoid
            } else {
                Activation::Identity
            };
            h = conv_transpose2d_module_activated(deconv, activation::relu(h), output);
        }
        h.flatten(1, 3)
    }

    /// `[channels, height, width]` of the images, from the decoder's first map and its
    /// stride-2 layers (the encoder's input).
    fn image_shape(&self) -> [usize; 3] {
        let f = 1usize << self.deconvs.len();
        let c = self.deconvs.last().map_or(0, |d| d.weight.val().dims()[1]);
        [c, self.start[1] * f, self.start[2] * f]
    }

    /// Draws `n` images: standard normal noise and, for a conditional generator, `labels` (or
    /// the classes in turn when `labels` is `None`).
    ///
    /// # Panics
    /// For a source-conditioned generator, which needs [`Generator::forward_from`].
    pub fn sample(&self, n: usize, labels: Option<Tensor<B, 1, Int>>, device: &B::Device) -> Tensor<B, 2> {
        let z = Tensor::random([n, self.d_latent], Distribution::Normal(0.0, 1.0), device);
        let labels = match (self.n_classes, labels) {
            (0, _) => None,
            (_, Some(y)) => Some(y),
            (k, None) => Some(cycle_labels(n, k, device)),
        };
        self.forward(z, labels)
    }
}

/// Labels 0, 1, …, k − 1, 0, 1, … for `n` samples.
pub fn cycle_labels<B: Backend>(n: usize, k: usize, device: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = (0..n).map(|i| (i % k) as i64).collect();
    Tensor::from_data(burn::tensor::TensorData::new(v, [n]), device)
}

impl<B: Backend> gen_core::Generator<B> for Generator<B> {
    fn generate(&self, n: usize, device: &B::Device) -> Tensor<B, 2> {
        self.sample(n, None, device)
    }
}

/// Scores flattened images: a logit (or a critic score) per image.
#[derive(Module, Debug)]
pub struct Discriminator<B: Backend> {
    dense: Vec<SnDense<B>>,
    convs: Vec<SnConv<B>>,
    out: SnDense<B>,
    /// The projection discriminator's class embedding, `[n_classes, d_features]`.
    embed: Option<Param<Tensor<B, 2>>>,
    image: [usize; 3],
}

/// What the input-gradient pass needs from the forward pass.
struct Trace<B: Backend> {
    pre: Vec<Tensor<B, 4>>,
    pre_dense: Vec<Tensor<B, 2>>,
}

impl<B: Backend> Discriminator<B> {
    /// Builds the discriminator of `cfg` (assumed valid).
    pub fn new(cfg: &GanConfig, device: &B::Device) -> Self {
        let sn = cfg.spectral_norm;
        let image = [cfg.image.channels, cfg.image.height, cfg.image.width];
        let (dense, convs, d_feat) = match &cfg.architecture {
            GanArchitecture::Mlp { hidden } => {
                let widths: Vec<usize> = [cfg.d_image()].into_iter().chain(hidden.iter().copied()).collect();
                let dense = widths
                    .windows(2)
                    .map(|w| SnDense::new(w[0], w[1], sn, device))
                    .collect();
                (dense, Vec::new(), *widths.last().expect("validated"))
            }
            GanArchitecture::Dcgan { channels, .. } => {
                let mut c_in = cfg.image.channels;
                let convs = channels
                    .iter()
                    .map(|&c| {
                        let conv = SnConv::new(c_in, c, sn, device);
                        c_in = c;
                        conv
                    })
                    .collect();
                let f = 1usize << channels.len();
                (Vec::new(), convs, c_in * (cfg.image.height / f) * (cfg.image.width / f))
            }
        };
        let embed = cfg.n_classes.map(|k| {
            let bound = 1.0 / (d_feat as f64).sqrt();
            Param::from_tensor(Tensor::random(
                [k, d_feat],
                Distribution::Uniform(-bound, bound),
                device,
            ))
        });
        let d = Self {
            dense,
            convs,
            out: SnDense::new(d_feat, 1, sn, device),
            embed,
            image,
        };
        gen_core::nn::materialize(&d);
        d
    }

    /// The features and, when `traced`, the pre-activations (for the hand-written input
    /// gradient); untraced, each layer and its leaky ReLU are one fused operation.
    fn features(&self, x: Tensor<B, 2>, traced: bool) -> (Tensor<B, 2>, Trace<B>) {
        let mut trace = Trace {
            pre: Vec::new(),
            pre_dense: Vec::new(),
        };
        if self.convs.is_empty() {
            let mut h = x;
            for layer in &self.dense {
                h = if traced {
                    let z = layer.forward(h);
                    trace.pre_dense.push(z.clone());
                    activation::leaky_relu(z, LEAK)
                } else {
                    layer.forward_activated(h, Activation::LeakyRelu)
                };
            }
            return (h, trace);
        }
        let [batch, _] = x.dims();
        let [c, hh, ww] = self.image;
        let mut h = x.reshape([batch, c, hh, ww]);
        for conv in &self.convs {
            h = if traced {
                let z = conv.forward(h);
                trace.pre.push(z.clone());
                activation::leaky_relu(z, LEAK)
            } else {
                conv.forward_activated(h, Activation::LeakyRelu)
            };
        }
        (h.flatten(1, 3), trace)
    }

    /// The direction the output takes from the features: the output weights, plus the class
    /// embedding of each image's label in a projection discriminator. `[batch, d_features]`.
    fn head(&self, batch: usize, labels: Option<Tensor<B, 1, Int>>) -> Tensor<B, 2> {
        let w = self.out.weight().transpose(); // [1, d_feat]
        let [_, d_feat] = w.dims();
        let w = w.expand([batch, d_feat]);
        match (&self.embed, labels) {
            (None, _) => w,
            (Some(e), Some(y)) => w + e.val().select(0, y),
            (Some(_), None) => panic!("a conditional discriminator needs labels"),
        }
    }

    /// The raw output per image: a logit, or a critic score.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels * height * width]`, `labels`: `[batch]`; output `[batch]`
    ///
    /// # Panics
    /// If a conditional discriminator gets no labels.
    pub fn forward(&self, x: Tensor<B, 2>, labels: Option<Tensor<B, 1, Int>>) -> Tensor<B, 1> {
        self.forward_with_input_grad(x, labels, false).0
    }

    /// The output and, when `with_grad`, its gradient with respect to the input, built from
    /// differentiable operations (a hand-written backward pass) so that a penalty on it can be
    /// trained by ordinary backpropagation (WGAN-GP) without nested autodiff.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_image]`; outputs `[batch]` and `[batch, d_image]`
    pub fn forward_with_input_grad(
        &self,
        x: Tensor<B, 2>,
        labels: Option<Tensor<B, 1, Int>>,
        with_grad: bool,
    ) -> (Tensor<B, 1>, Option<Tensor<B, 2>>) {
        let [batch, d_in] = x.dims();
        let (feat, trace) = self.features(x, with_grad);
        let head = self.head(batch, labels);
        let out = (feat * head.clone()).sum_dim(1) + self.out.bias().unsqueeze();
        let out = out.flatten(0, 1);
        if !with_grad {
            return (out, None);
        }
        let leak = |z: Tensor<B, 2>| leaky_derivative(z);
        if self.convs.is_empty() {
            let mut g = head;
            for (layer, z) in self.dense.iter().zip(trace.pre_dense).rev() {
                g = (g * leak(z)).matmul(layer.weight().transpose());
            }
            return (out, Some(g));
        }
        let last = trace.pre.last().expect("at least one conv").dims();
        let mut g = head.reshape(last);
        for (conv, z) in self.convs.iter().zip(trace.pre).rev() {
            let d = leaky_derivative(z);
            g = conv_transpose2d(
                g * d,
                conv.weight(),
                None,
                ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1),
            );
        }
        let g = g.reshape([batch, d_in]);
        (out, Some(g))
    }

    /// One power-iteration step on every spectrally normalised layer.
    pub fn power_iteration(mut self) -> Self {
        self.dense = self.dense.into_iter().map(SnDense::power_iteration).collect();
        self.convs = self.convs.into_iter().map(SnConv::power_iteration).collect();
        self.out = self.out.power_iteration();
        self
    }

    /// Clips every weight to [−c, c] (the class embedding too).
    pub fn clip(mut self, c: f64) -> Self {
        self.dense = self.dense.into_iter().map(|l| l.clip(c)).collect();
        self.convs = self.convs.into_iter().map(|l| l.clip(c)).collect();
        self.out = self.out.clip(c);
        self.embed = self.embed.map(|e| e.map(|t| crate::layers::clamp_leaf(t, c)));
        self
    }

    /// The spectral-norm estimates σ of every normalised layer, input side first.
    pub fn sigmas(&self) -> Vec<f32> {
        self.dense
            .iter()
            .filter_map(SnDense::sigma)
            .chain(self.convs.iter().filter_map(SnConv::sigma))
            .chain(self.out.sigma())
            .collect()
    }
}

#[cfg(test)]
impl<B: Backend> Discriminator<B> {
    fn with_first_conv_weight(mut self, values: Vec<f32>) -> Self {
        let first = self.convs.remove(0).with_weight_values(values);
        self.convs.insert(0, first);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::GanLoss;
    use crate::test_util::{TestAutodiffBackend as AB, TestBackend as B};
    use gen_core::nn::ImageShape;

    fn configs() -> Vec<GanConfig> {
        let base = GanConfig::dcgan(ImageShape::grey(8, 8));
        let mut out = Vec::new();
        for arch in [
            GanArchitecture::Mlp { hidden: vec![16, 8] },
            GanArchitecture::Dcgan {
                channels: vec![4, 6],
                batch_norm: true,
            },
        ] {
            for n_classes in [None, Some(3)] {
                for spectral_norm in [false, true] {
                    out.push(GanConfig {
                        d_latent: 5,
                        architecture: arch.clone(),
                        n_classes,
                        spectral_norm,
                        loss: GanLoss::WassersteinGp { lambda: 10.0 },
                        ..base.clone()
                    });
                }
            }
        }
        out
    }

    #[test]
    fn shapes_and_ranges() {
        let device = Default::default();
        for cfg in configs() {
            let (g, d) = cfg.try_init::<B>(&device).unwrap();
            let y = cfg.n_classes.map(|k| cycle_labels::<B>(7, k, &device));
            let x = g.sample(7, y.clone(), &device);
            assert_eq!(x.dims(), [7, 64]);
            let v = x.clone().into_data().to_vec::<f32>().unwrap();
            assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
            assert_eq!(d.forward(x, y).dims(), [7]);
        }
    }

    #[test]
    fn a_source_conditioned_generator_varies_its_source_and_its_discriminator_sees_pairs() {
        let device = Default::default();
        let cfg = GanConfig {
            d_latent: 5,
            architecture: GanArchitecture::Dcgan {
                channels: vec![4, 6],
                batch_norm: false,
            },
            n_classes: Some(3),
            source_conditioned: true,
            ..GanConfig::dcgan(ImageShape::grey(8, 8))
        };
        let (g, d) = cfg.try_init::<B>(&device).unwrap();
        assert!(g.is_source_conditioned());
        assert_eq!(g.image_shape(), [1, 8, 8]);
        let y = cycle_labels::<B>(4, 3, &device);
        let z = Tensor::<B, 2>::random([4, 5], Distribution::Normal(0.0, 1.0), &device);
        let src = |v: f32| Tensor::<B, 2>::full([4, 64], v, &device);
        let out = |s: Tensor<B, 2>| {
            g.forward_from(z.clone(), Some(y.clone()), Some(s))
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        let (a, b) = (out(src(0.0)), out(src(1.0)));
        assert_eq!(a.len(), 4 * 64);
        assert!(a.iter().chain(&b).all(|p| (0.0..=1.0).contains(p)));
        let moved = a.iter().zip(&b).filter(|(p, q)| (*p - *q).abs() > 1e-6).count();
        assert!(moved > 200, "only {moved} of 256 outputs depend on the source");
        // The discriminator takes (source, image) as one two-channel image.
        let pair = Tensor::cat(vec![src(0.5), src(0.2)], 1);
        assert_eq!(d.forward(pair, Some(y.clone())).dims(), [4]);
        // Without a source it refuses, rather than draw from the decoder alone.
        let plain = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.forward(z.clone(), Some(y.clone()))));
        assert!(plain.is_err());
    }

    #[test]
    fn input_gradient_matches_autodiff() {
        let device = Default::default();
        for cfg in configs() {
            let d = Discriminator::<AB>::new(&cfg, &device);
            let x = Tensor::<AB, 2>::random([3, 64], Distribution::Uniform(0.0, 1.0), &device).require_grad();
            let y = cfg.n_classes.map(|k| cycle_labels::<AB>(3, k, &device));
            let (out, manual) = d.forward_with_input_grad(x.clone(), y.clone(), true);
            let grads = out.sum().backward();
            let auto = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            let manual = manual.unwrap().into_data().to_vec::<f32>().unwrap();
            for (a, m) in auto.iter().zip(&manual) {
                assert!(
                    (a - m).abs() < 1e-5 + 1e-4 * a.abs(),
                    "{}: autodiff {a} vs hand {m}",
                    cfg.variant()
                );
            }
        }
    }

    #[test]
    fn gradient_penalty_trains_the_weights_and_matches_finite_differences() {
        // P(θ) = Σ‖∇ₓD(x; θ)‖²: its derivative in one weight by autodiff through the hand-written
        // backward pass, against a central difference.
        let device = Default::default();
        let cfg = configs()
            .into_iter()
            .find(|c| matches!(c.architecture, GanArchitecture::Dcgan { .. }))
            .unwrap();
        let cfg = GanConfig {
            spectral_norm: false,
            n_classes: None,
            ..cfg
        };
        let d = Discriminator::<AB>::new(&cfg, &device);
        let penalty = |d: &Discriminator<AB>, x: &Tensor<AB, 2>| {
            let g = d.forward_with_input_grad(x.clone(), None, true).1.unwrap();
            g.powi_scalar(2).sum()
        };
        let h = 1e-3f32;
        // The penalty jumps where a pre-activation crosses zero (the leaky ReLU's kink flips
        // its derivative): compare only where no sign flips within ±h, starting from the
        // largest derivatives so f32 round-off is small beside them.
        let signs = |d: &Discriminator<AB>, x: &Tensor<AB, 2>| -> Vec<bool> {
            let (_, trace) = d.features(x.clone(), true);
            trace
                .pre
                .into_iter()
                .flat_map(|z| z.into_data().to_vec::<f32>().unwrap().into_iter().map(|v| v > 0.0))
                .collect()
        };
        let shifted = |idx: usize, delta: f32| {
            let mut v = d.convs[0].weight_param().into_data().to_vec::<f32>().unwrap();
            v[idx] += delta;
            d.clone().with_first_conv_weight(v)
        };
        // A pre-activation of the second layer within a few 1e-6 of zero flips its sign for
        // nearly every weight's ±h (about one input in 500): then draw another input.
        let (x, analytic, smooth) = (0..5)
            .find_map(|_| {
                let x = Tensor::<AB, 2>::random([2, 64], Distribution::Uniform(0.0, 1.0), &device);
                let grads = penalty(&d, &x).backward();
                let w = d.convs[0].weight_param();
                let analytic = w.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
                let base_signs = signs(&d, &x);
                let mut order: Vec<usize> = (0..analytic.len()).collect();
                order.sort_by(|&a, &b| analytic[b].abs().total_cmp(&analytic[a].abs()));
                let smooth: Vec<usize> = order
                    .into_iter()
                    .filter(|&i| signs(&shifted(i, h), &x) == base_signs && signs(&shifted(i, -h), &x) == base_signs)
                    .take(3)
                    .collect();
                (smooth.len() == 3).then_some((x, analytic, smooth))
            })
            .expect("five random inputs each had a kink within ±h of every weight");
        for idx in smooth {
            let fd = (penalty(&shifted(idx, h), &x).into_scalar() - penalty(&shifted(idx, -h), &x).into_scalar())
                / (2.0 * h);
            assert!(
                (fd - analytic[idx]).abs() < 2e-2 * analytic[idx].abs() + 1e-4,
                "weight {idx}: autodiff {} vs finite difference {fd}",
                analytic[idx]
            );
        }
    }
}
