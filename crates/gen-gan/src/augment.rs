//! Differentiable augmentation of the discriminator's input (DiffAugment; Zhao et al., 2020).
//!
//! A discriminator trained on a few hundred images memorises them and stops giving the
//! generator a useful signal. DiffAugment shows it randomly translated and cut-out copies of
//! both the real and the fake images, in both phases. The operations are differentiable in the
//! image, so the generator's gradient passes through them, and the generator is not pushed to
//! produce shifted or cut-out images: the augmentation sits in front of the discriminator only.
//!
//! Both operations are built from tensor operations on the device, with per-sample randomness
//! drawn from the backend's generator (seeded by the trainer each epoch):
//! - **translation** by whole pixels, independently per sample, with zero fill: `Sᵧ · x · Sₓᵀ`
//!   for 0/1 shift matrices, one batched matrix product per side;
//! - **cutout**: one square per sample, at a uniform centre, set to zero.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use gen_core::ConfigError;
use gen_core::nn::ImageShape;

/// Which augmentations the discriminator sees, and how strong.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiffAugment {
    /// Largest shift, in pixels, in each direction (0: no translation). DiffAugment's default is
    /// 1/8 of the side: 3 or 4 pixels for MNIST.
    pub translation: usize,
    /// Side of the cut-out square in pixels (0: no cutout). DiffAugment's default is half the
    /// side.
    pub cutout: usize,
}

impl DiffAugment {
    /// DiffAugment's defaults for `image`: translation by up to 1/8 of the side, cutout of half
    /// the side.
    pub fn standard(image: ImageShape) -> Self {
        let side = image.height.min(image.width);
        Self {
            translation: side.div_ceil(8),
            cutout: side / 2,
        }
    }

    /// Parses `none`, `standard`, or a comma-separated list of `translation[:PIXELS]` and
    /// `cutout[:PIXELS]`; a missing size takes [`DiffAugment::standard`]'s for `image`.
    ///
    /// # Errors
    /// An unknown item or a size that is not a whole number, with the offending text.
    pub fn parse(s: &str, image: ImageShape) -> Result<Option<Self>, String> {
        let standard = Self::standard(image);
        match s.trim() {
            "none" => return Ok(None),
            "standard" => return Ok(Some(standard)),
            _ => {}
        }
        let mut out = Self {
            translation: 0,
            cutout: 0,
        };
        for item in s.split(',').map(str::trim) {
            let (name, arg) = match item.split_once(':') {
                Some((n, a)) => (n, Some(a)),
                None => (item, None),
            };
            let size = |default: usize| -> Result<usize, String> {
                arg.map_or(Ok(default), |a| {
                    a.parse::<usize>()
                        .map_err(|_| format!("{a:?} in {s:?} is not a whole number of pixels"))
                })
            };
            match name {
                "translation" => out.translation = size(standard.translation)?,
                "cutout" => out.cutout = size(standard.cutout)?,
                other => {
                    return Err(format!(
                        "unknown augmentation {other:?} in {s:?}; expected none, standard, or a comma-separated \
                         list of translation[:PIXELS] and cutout[:PIXELS]"
                    ));
                }
            }
        }
        Ok(Some(out))
    }

    /// Rejects shifts or squares as large as the image.
    pub fn validate(&self, image: ImageShape) -> Result<(), ConfigError> {
        let side = image.height.min(image.width);
        if self.translation >= side || self.cutout >= side {
            return Err(ConfigError::Invalid(format!(
                "DiffAugment's translation ({}) and cutout ({}) must be smaller than the image's side {side}",
                self.translation, self.cutout
            )));
        }
        Ok(())
    }

    /// A short description, e.g. `translation 4, cutout 14`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.translation > 0 {
            parts.push(format!("translation {}", self.translation));
        }
        if self.cutout > 0 {
            parts.push(format!("cutout {}", self.cutout));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// Augments a batch of flattened images, each with its own random shift and square.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels * height * width]`; output the same.
    pub fn apply<B: Backend>(&self, x: Tensor<B, 2>, image: ImageShape) -> Tensor<B, 2> {
        let [n, _] = x.dims();
        let device = x.device();
        let mut x = x;
        if self.translation > 0 {
            let t = self.translation as f64;
            let draw = || {
                Tensor::<B, 1>::random([n], Distribution::Uniform(0.0, 2.0 * t + 1.0), &device)
                    .floor()
                    .sub_scalar(t)
                    .clamp(-t, t)
            };
            let (dy, dx) = (draw(), draw());
            x = translate(x, image, dy, dx);
        }
        if self.cutout > 0 {
            let draw = |side: usize| {
                Tensor::<B, 1>::random([n], Distribution::Uniform(0.0, side as f64), &device)
                    .floor()
                    .clamp(0.0, side as f64 - 1.0)
            };
            let (cy, cx) = (draw(image.height), draw(image.width));
            x = cutout(x, image, self.cutout, cy, cx);
        }
        x
    }
}

/// The positions 0, 1, …, len − 1 as floats, `[len]`.
fn positions<B: Backend>(len: usize, device: &B::Device) -> Tensor<B, 1> {
    Tensor::<B, 1, burn::tensor::Int>::arange(0..len as i64, device).float()
}

/// Shifts each image by whole pixels with zero fill: output pixel `(i, j)` of sample `s` is
/// input pixel `(i + dy[s], j + dx[s])`, or 0 where that lies outside.
///
/// # Shapes
/// - `x`: `[batch, channels * height * width]`; `dy`, `dx`: `[batch]` (integral values).
pub fn translate<B: Backend>(x: Tensor<B, 2>, image: ImageShape, dy: Tensor<B, 1>, dx: Tensor<B, 1>) -> Tensor<B, 2> {
    let [n, d] = x.dims();
    let ImageShape {
        channels: c,
        height: h,
        width: w,
    } = image;
    // Rows of the output pick rows of the input (Sᵧ · x); columns pick columns (x · Sₓᵀ).
    let sy = shift_matrices(h, dy, c);
    let sxt = shift_matrices(w, dx, c).swap_dims(2, 3);
    sy.matmul(x.reshape([n, c, h, w])).matmul(sxt).reshape([n, d])
}

/// `S[s, ch, a, b] = 1` where `b = a + shift[s]`, else 0, for every channel: `[n, channels, len, len]`.
fn shift_matrices<B: Backend>(len: usize, shift: Tensor<B, 1>, channels: usize) -> Tensor<B, 4> {
    let [n] = shift.dims();
    let device = shift.device();
    let a = positions::<B>(len, &device).reshape([1, len, 1]);
    let b = positions::<B>(len, &device).reshape([1, 1, len]);
    let s = (b - a - shift.reshape([n, 1, 1])).abs().lower_elem(0.5).float();
    s.reshape([n, 1, len, len]).repeat_dim(1, channels)
}

/// Sets a `size`-pixel square of each image to zero: rows `cy[s] − size/2 ..` and columns
/// `cx[s] − size/2 ..`, `size` of each, clipped to the image.
///
/// # Shapes
/// - `x`: `[batch, channels * height * width]`; `cy`, `cx`: `[batch]` (integral values).
pub fn cutout<B: Backend>(
    x: Tensor<B, 2>,
    image: ImageShape,
    size: usize,
    cy: Tensor<B, 1>,
    cx: Tensor<B, 1>,
) -> Tensor<B, 2> {
    let [n, d] = x.dims();
    let ImageShape {
        channels: c,
        height: h,
        width: w,
    } = image;
    let device = x.device();
    let half = (size / 2) as f64;
    let inside = |pos: Tensor<B, 1>, centre: Tensor<B, 1>| {
        // 0 ≤ pos − (centre − half) < size
        let rel = pos.unsqueeze::<2>() - centre.reshape([n, 1]).sub_scalar(half); // [n, len]
        rel.clone().greater_equal_elem(0.0).float() * rel.lower_elem(size as f64).float()
    };
    let rows = inside(positions::<B>(h, &device), cy).reshape([n, 1, h, 1]);
    let cols = inside(positions::<B>(w, &device), cx).reshape([n, 1, 1, w]);
    let keep = (rows * cols).neg().add_scalar(1.0); // [n, 1, h, w]
    let keep = if c > 1 { keep.repeat_dim(1, c) } else { keep };
    (x.reshape([n, c, h, w]) * keep).reshape([n, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiffBackend as AB, TestBackend as B};
    use burn::tensor::TensorData;

    fn values(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    /// The host reference: sample `s`, channel `ch`, pixel `(i, j)` from `(i + dy, j + dx)`.
    fn shifted(x: &[f32], image: ImageShape, n: usize, dy: &[i64], dx: &[i64]) -> Vec<f32> {
        let (c, h, w) = (image.channels, image.height, image.width);
        let mut out = vec![0.0; x.len()];
        for s in 0..n {
            for ch in 0..c {
                for i in 0..h as i64 {
                    for j in 0..w as i64 {
                        let (si, sj) = (i + dy[s], j + dx[s]);
                        if (0..h as i64).contains(&si) && (0..w as i64).contains(&sj) {
                            let base = (s * c + ch) * h * w;
                            out[base + (i as usize) * w + j as usize] = x[base + si as usize * w + sj as usize];
                        }
                    }
                }
            }
        }
        out
    }

    fn batch(n: usize, image: ImageShape) -> (Vec<f32>, Tensor<B, 2>) {
        let d = image.numel();
        let x: Vec<f32> = (0..n * d).map(|v| (v % 97) as f32 + 1.0).collect();
        let t = Tensor::from_data(TensorData::new(x.clone(), [n, d]), &Default::default());
        (x, t)
    }

    fn floats(v: &[i64]) -> Tensor<B, 1> {
        let f: Vec<f32> = v.iter().map(|&a| a as f32).collect();
        Tensor::from_data(TensorData::new(f, [v.len()]), &Default::default())
    }

    #[test]
    fn translation_matches_a_shift_on_the_host_per_sample_and_channel() {
        let image = ImageShape {
            channels: 2,
            height: 5,
            width: 4,
        };
        let (dy, dx) = (vec![0, 2, -1, -4], vec![0, -1, 3, 1]);
        let (x, t) = batch(4, image);
        let got = values(translate(t, image, floats(&dy), floats(&dx)));
        assert_eq!(got, shifted(&x, image, 4, &dy, &dx));
    }

    #[test]
    fn cutout_zeroes_a_clipped_square_and_keeps_the_rest() {
        let image = ImageShape::grey(6, 6);
        let (x, t) = batch(3, image);
        // Centres (row, col): (0, 0) clips at the corner, (3, 2) is inside, (5, 5) clips.
        let got = values(cutout(t, image, 3, floats(&[0, 3, 5]), floats(&[0, 2, 5])));
        let centres = [(0i64, 0i64), (3, 2), (5, 5)];
        for (s, &(cy, cx)) in centres.iter().enumerate() {
            for i in 0..6i64 {
                for j in 0..6i64 {
                    let idx = s * 36 + (i * 6 + j) as usize;
                    let cut = (cy - 1..cy + 2).contains(&i) && (cx - 1..cx + 2).contains(&j);
                    assert_eq!(got[idx], if cut { 0.0 } else { x[idx] }, "sample {s}, pixel ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn random_draws_stay_in_range_and_vary_between_samples() {
        let image = ImageShape::grey(8, 8);
        // Each of the 25 shifts is drawn a Binomial(8192, 1/25) number of times: mean 328,
        // standard deviation 17.7. A count outside 35 % of the mean is more than six standard
        // deviations out (probability < 1e-7 over the 25), while a shift drawn at 3/4 of its
        // rate would be caught. (With 256 samples, "all 25 seen" failed with probability 7e-4,
        // and one CI run met it.)
        let n = 8192;
        // A single bright pixel at (4, 4): after translation by at most 2 it lies in 2..=6.
        let mut x = vec![0.0f32; n * 64];
        for s in 0..n {
            x[s * 64 + 4 * 8 + 4] = 1.0;
        }
        let t = Tensor::<B, 2>::from_data(TensorData::new(x, [n, 64]), &Default::default());
        let aug = DiffAugment {
            translation: 2,
            cutout: 0,
        };
        let got = values(aug.apply(t, image));
        let mut seen = std::collections::BTreeMap::new();
        for s in 0..n {
            let img = &got[s * 64..(s + 1) * 64];
            let hits: Vec<usize> = (0..64).filter(|&p| img[p] != 0.0).collect();
            assert_eq!(hits.len(), 1, "sample {s}: a shift by at most 2 keeps the pixel");
            let (i, j) = (hits[0] / 8, hits[0] % 8);
            assert!(
                (2..=6).contains(&i) && (2..=6).contains(&j),
                "sample {s}: pixel at ({i}, {j})"
            );
            *seen.entry((i, j)).or_insert(0usize) += 1;
        }
        assert_eq!(seen.len(), 25, "{n} samples should show all 25 shifts: {seen:?}");
        let expected = n as f64 / 25.0;
        for (shift, &count) in &seen {
            let ratio = count as f64 / expected;
            assert!(
                (0.65..=1.35).contains(&ratio),
                "shift {shift:?} drawn {count} times of {n}: {seen:?}"
            );
        }
    }

    #[test]
    fn the_gradient_reaches_the_input_through_both_operations() {
        let image = ImageShape::grey(6, 6);
        let x = Tensor::<AB, 2>::ones([4, 36], &Default::default()).require_grad();
        let aug = DiffAugment {
            translation: 1,
            cutout: 2,
        };
        let y = aug.apply(x.clone(), image);
        let grads = y.sum().backward();
        let g: Vec<f32> = x.grad(&grads).expect("a gradient").into_data().to_vec().unwrap();
        // Each output pixel comes from at most one input pixel, so every entry is 0 or 1, and
        // most input pixels (not all: shifted out or cut) reach the output.
        assert!(g.iter().all(|&v| v == 0.0 || v == 1.0), "{g:?}");
        let reached = g.iter().filter(|&&v| v == 1.0).count();
        assert!(reached > 4 * 36 / 2, "only {reached} of 144 pixels reached the output");
    }

    #[test]
    fn nothing_to_do_is_the_identity_and_oversized_settings_are_refused() {
        let image = ImageShape::grey(8, 8);
        let (x, t) = batch(2, image);
        let none = DiffAugment {
            translation: 0,
            cutout: 0,
        };
        assert_eq!(values(none.apply(t, image)), x);
        assert_eq!(none.describe(), "none");
        let standard = DiffAugment::standard(ImageShape::grey(28, 28));
        assert_eq!((standard.translation, standard.cutout), (4, 14));
        assert!(standard.validate(ImageShape::grey(28, 28)).is_ok());
        let e = DiffAugment {
            translation: 8,
            cutout: 0,
        }
        .validate(image)
        .unwrap_err();
        assert!(e.to_string().contains("translation (8)"), "{e}");
    }

    #[test]
    fn the_command_line_form_parses_with_standard_sizes_as_defaults() {
        let image = ImageShape::grey(28, 28);
        let parse = |s: &str| DiffAugment::parse(s, image);
        assert_eq!(parse("none"), Ok(None));
        assert_eq!(parse("standard"), Ok(Some(DiffAugment::standard(image))));
        assert_eq!(
            parse("translation"),
            Ok(Some(DiffAugment {
                translation: 4,
                cutout: 0
            }))
        );
        assert_eq!(
            parse("translation:2, cutout:8"),
            Ok(Some(DiffAugment {
                translation: 2,
                cutout: 8
            }))
        );
        assert!(parse("colour").unwrap_err().contains("unknown augmentation \"colour\""));
        assert!(parse("cutout:-1").unwrap_err().contains("whole number"));
    }
}
