//! The images of a VAE's figures: prior samples, reconstructions, interpolations between two
//! images, traversals of latent dimensions and the decoded 2-D manifold.
//!
//! Each function returns the figure as rows of images: `rows[r]` holds that row's images one
//! after another (`row.len()` is a multiple of the image's width `d`), ready to be drawn as a
//! grid (`gen sample`, `gen interpolate` and `gen traverse` write them as PNGs) or judged as
//! numbers. Decoded images are the decoder's means; sampling draws from the backend's
//! generator, so seed it first for a reproducible figure.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use gen_core::{BatchSource, Encoder};
use gen_data::{Dataset, tensor_values};

use crate::Vae;
use crate::eval::{Result, VaeError, for_batches};
use crate::latent;

fn labels_tensor<B: Backend>(labels: &[i64], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

fn codes_tensor<B: Backend>(codes: Vec<f32>, d: usize, device: &B::Device) -> Tensor<B, 2> {
    let n = codes.len() / d;
    Tensor::from_data(TensorData::new(codes, [n, d]), device)
}

/// Cuts `images` (row-major, `d` values each) into rows of `cols` images.
fn rows_of(images: &[f32], d: usize, cols: usize) -> Vec<Vec<f32>> {
    images.chunks(d * cols).map(<[f32]>::to_vec).collect()
}

/// Prior samples: `n` rows of `n` for an unconditional model; for a conditional one, one row of
/// `n` per class, or `n` rows of `class` alone.
///
/// # Errors
/// `n == 0`, a `class` for an unconditional model or outside the model's classes.
pub fn samples<B: Backend>(model: &Vae<B>, n: usize, class: Option<i64>, device: &B::Device) -> Result<Vec<Vec<f32>>> {
    if n == 0 {
        return Err(VaeError::Invalid("a grid of samples needs n > 0".into()));
    }
    let (rows, labels): (usize, Option<Vec<i64>>) = match (model.n_classes(), class) {
        (None, None) => (n, None),
        (None, Some(_)) => {
            return Err(VaeError::Invalid(
                "a class needs a conditional VAE; this one is unconditional".into(),
            ));
        }
        (Some(c), Some(k)) if k < 0 || k >= c as i64 => {
            return Err(VaeError::Invalid(format!(
                "class {k} is out of range: the model has {c} classes"
            )));
        }
        (Some(c), None) => (c, Some((0..c as i64).flat_map(|k| std::iter::repeat_n(k, n)).collect())),
        (Some(_), Some(k)) => (n, Some(vec![k; n * n])),
    };
    let y = labels.as_deref().map(|l| labels_tensor::<B>(l, device));
    let images = tensor_values(model.sample(rows * n, y, device))?;
    Ok(rows_of(&images, images.len() / (rows * n), n))
}

/// The first `n` images of `data` (one row) above their reconstructions from the posterior mean
/// (a second row).
///
/// # Errors
/// Unlabelled data for a conditional model.
pub fn reconstructions<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    n: usize,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let sample = data.take(n);
    let mut rec = Vec::new();
    for_batches::<B>(&sample, model.n_classes().is_some(), device, |x, y| {
        let q = model.posterior(x, y.clone());
        rec.extend(tensor_values(model.decode_mean(q.mu, y))?);
        Ok(())
    })?;
    Ok(vec![sample.features().to_vec(), rec])
}

/// Posterior means of the given rows, with their labels when the model is conditional.
fn means_of<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    rows: &[usize],
    device: &B::Device,
) -> Result<(Vec<f32>, Option<Vec<i64>>)> {
    if let Some(&i) = rows.iter().find(|&&i| i >= data.len()) {
        return Err(VaeError::Invalid(format!(
            "image {i} does not exist: {} has {} images",
            data.name(),
            data.len()
        )));
    }
    let b: gen_core::Batch<B> = data.batch(rows, device);
    let conditional = model.n_classes().is_some();
    if conditional && b.y.is_none() {
        return Err(VaeError::Invalid(format!(
            "{} has no labels; the conditional VAE needs them",
            data.name()
        )));
    }
    let labels = data.labels().map(|l| rows.iter().map(|&i| l[i]).collect());
    let mu = tensor_values(model.posterior(b.x, if conditional { b.y } else { None }).mu)?;
    Ok((mu, labels.filter(|_| conditional)))
}

/// One row per pair `(a, b)` of `data`'s images: image `a`, `steps` decodings along the line
/// between the two posterior means, image `b` (`steps + 2` images). A conditional model decodes
/// the whole line with the first image's class.
///
/// # Errors
/// `steps < 2`, an index out of range, unlabelled data for a conditional model.
pub fn interpolations<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    pairs: &[(usize, usize)],
    steps: usize,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    if steps < 2 {
        return Err(VaeError::Invalid(format!(
            "an interpolation needs at least 2 steps, got {steps}"
        )));
    }
    let d_lat = model.d_latent();
    let mut rows = Vec::with_capacity(pairs.len());
    for &(a, b) in pairs {
        let (mu, labels) = means_of(model, data, &[a, b], device)?;
        let codes = latent::lerp(&mu[..d_lat], &mu[d_lat..], steps);
        let y = labels.map(|l| labels_tensor::<B>(&vec![l[0]; steps], device));
        let decoded = tensor_values(model.decode_mean(codes_tensor(codes, d_lat, device), y))?;
        let mut row = data.row(a).to_vec();
        row.extend(decoded);
        row.extend_from_slice(data.row(b));
        rows.push(row);
    }
    Ok(rows)
}

/// One row per latent dimension in `dims`: the posterior mean of `data`'s image `base` with that
/// dimension swept over `steps` values evenly spaced in `[-extent, extent]`.
///
/// # Errors
/// `steps < 2`, an `extent` that is not finite and positive, `base` or a dimension out of range,
/// unlabelled data for a conditional model.
pub fn traversal<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    base: usize,
    dims: &[usize],
    extent: f32,
    steps: usize,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    if steps < 2 {
        return Err(VaeError::Invalid(format!(
            "a traversal needs at least 2 steps, got {steps}"
        )));
    }
    if !(extent.is_finite() && extent > 0.0) {
        return Err(VaeError::Invalid(format!(
            "a traversal's extent must be finite and > 0, got {extent}"
        )));
    }
    let d_lat = model.d_latent();
    if let Some(dim) = dims.iter().find(|&&d| d >= d_lat) {
        return Err(VaeError::Invalid(format!(
            "latent dimension {dim} is out of range: the model has {d_lat} latent dimensions"
        )));
    }
    let (mu, labels) = means_of(model, data, &[base], device)?;
    let values = latent::linspace(extent, steps);
    let mut rows = Vec::with_capacity(dims.len());
    for &dim in dims {
        let codes = latent::traversal(&mu, dim, &values);
        let y = labels.as_ref().map(|l| labels_tensor::<B>(&vec![l[0]; steps], device));
        rows.push(tensor_values(model.decode_mean(codes_tensor(codes, d_lat, device), y))?);
    }
    Ok(rows)
}

/// The decoded 2-D latent space: `n` rows of `n` images at the prior's quantiles
/// ([`latent::manifold_grid`]).
///
/// # Errors
/// A model whose code is not 2-D, a conditional model, or `n < 2`.
pub fn manifold<B: Backend>(model: &Vae<B>, n: usize, device: &B::Device) -> Result<Vec<Vec<f32>>> {
    if model.d_latent() != 2 || model.n_classes().is_some() {
        return Err(VaeError::Invalid(format!(
            "the manifold figure needs an unconditional VAE with a 2-D code; this one has {} dimensions{}",
            model.d_latent(),
            if model.n_classes().is_some() {
                " and is conditional"
            } else {
                ""
            }
        )));
    }
    if n < 2 {
        return Err(VaeError::Invalid(format!("a manifold grid needs n >= 2, got {n}")));
    }
    let images = tensor_values(model.decode_mean(codes_tensor(latent::manifold_grid(n), 2, device), None))?;
    Ok(rows_of(&images, images.len() / (n * n), n))
}

/// Posterior means and standard deviations of every row of `data`, row-major `[n, d_latent]`
/// each: `gen encode` on a VAE.
///
/// # Errors
/// Unlabelled data for a conditional model.
pub fn posterior_moments<B: Backend>(
    model: &Vae<B>,
    data: &Dataset,
    device: &B::Device,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut mu, mut sigma) = (Vec::new(), Vec::new());
    for_batches::<B>(data, model.n_classes().is_some(), device, |x, y| {
        let q = model.posterior(x, y);
        sigma.extend(tensor_values(q.std())?);
        mu.extend(tensor_values(q.mu)?);
        Ok(())
    })?;
    Ok((mu, sigma))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VaeConfig;
    use burn::backend::Flex as B;

    /// A small untrained VAE on the embedded digits: every figure has the promised rows and
    /// image counts, and requests that cannot be met are refused with a reason.
    #[test]
    fn figures_have_their_shapes_and_refuse_bad_requests() {
        let digits = gen_data::digits().unwrap().take(20);
        let d = digits.d();
        let device = Default::default();
        B::seed(&device, 0);
        let cfg = VaeConfig::mlp(d, vec![16], 2);
        let model: Vae<B> = cfg.try_init(&device).unwrap();
        let count = |rows: &[Vec<f32>]| rows.iter().map(|r| r.len() / d).collect::<Vec<_>>();
        assert_eq!(count(&samples(&model, 3, None, &device).unwrap()), vec![3, 3, 3]);
        assert!(samples(&model, 3, Some(1), &device).is_err());
        assert!(samples(&model, 0, None, &device).is_err());
        let rec = reconstructions(&model, &digits, 5, &device).unwrap();
        assert_eq!(count(&rec), vec![5, 5]);
        assert_eq!(&rec[0][..d], digits.row(0));
        let lines = interpolations(&model, &digits, &[(0, 1), (2, 3)], 4, &device).unwrap();
        assert_eq!(count(&lines), vec![6, 6]);
        assert_eq!(&lines[1][5 * d..], digits.row(3));
        let e = interpolations(&model, &digits, &[(0, 99)], 4, &device).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let sweep = traversal(&model, &digits, 0, &[0, 1], 2.0, 5, &device).unwrap();
        assert_eq!(count(&sweep), vec![5, 5]);
        let e = traversal(&model, &digits, 0, &[2], 2.0, 5, &device).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        assert!(traversal(&model, &digits, 0, &[0], f32::NAN, 5, &device).is_err());
        assert_eq!(count(&manifold(&model, 4, &device).unwrap()), vec![4; 4]);
        let (mu, sigma) = posterior_moments(&model, &digits, &device).unwrap();
        assert_eq!((mu.len(), sigma.len()), (40, 40));
        assert!(sigma.iter().all(|s| *s > 0.0));
    }
}
