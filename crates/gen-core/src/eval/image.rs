//! Reconstruction and denoising metrics over single-channel images.
//!
//! An image is a flat, row-major slice of `height * width` values in `[0, data_range]`; a batch is such
//! images one after another in one slice. All sums run in `f64`.

/// The SSIM window side when the image allows it (skimage's default `win_size`).
const SSIM_WINDOW: usize = 7;
/// SSIM's luminance stabiliser: `C1 = (K1 * data_range)^2`.
const SSIM_K1: f64 = 0.01;
/// SSIM's contrast stabiliser: `C2 = (K2 * data_range)^2`.
const SSIM_K2: f64 = 0.03;

fn assert_data_range(data_range: f32) {
    assert!(
        data_range.is_finite() && data_range > 0.0,
        "data_range must be finite and > 0, got {data_range}"
    );
}

fn assert_image_len(name: &str, len: usize, height: usize, width: usize) {
    assert_eq!(
        len,
        height * width,
        "{name} has {len} values, but a {height}x{width} image needs {}",
        height * width
    );
}

/// The number of images of `image_len` values in a batch of `len` values.
fn batch_count(fn_name: &str, len: usize, image_len: usize) -> usize {
    assert!(image_len > 0, "{fn_name}: images must have at least one value");
    assert!(
        len.is_multiple_of(image_len),
        "{fn_name}: {len} values are not a whole number of images of {image_len} values"
    );
    len / image_len
}

/// Mean squared error between two images (or any two equally long buffers).
///
/// # Panics
///
/// If the lengths differ or the buffers are empty.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "mse: the images have {} and {} values",
        a.len(),
        b.len()
    );
    assert!(!a.is_empty(), "mse: the images are empty");
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    sum / a.len() as f64
}

/// Peak signal-to-noise ratio in decibels: `10 log10(data_range^2 / mse(clean, other))`, as
/// `skimage.metrics.peak_signal_noise_ratio`. [`f64::INFINITY`] when the images are identical.
///
/// # Panics
///
/// If the lengths differ, the buffers are empty, or `data_range` is not finite and positive.
pub fn psnr(clean: &[f32], other: &[f32], data_range: f32) -> f64 {
    assert_data_range(data_range);
    let err = mse(clean, other);
    if err == 0.0 {
        return f64::INFINITY;
    }
    let range = f64::from(data_range);
    10.0 * (range * range / err).log10()
}

/// The side of the SSIM window for an image: 7, or the largest odd number that fits when a side is shorter.
fn ssim_window(height: usize, width: usize) -> usize {
    let side = SSIM_WINDOW.min(height).min(width);
    if side.is_multiple_of(2) { side - 1 } else { side }
}

/// Structural similarity of two grey images, as `skimage.metrics.structural_similarity(a, b,
/// data_range=data_range)` with its defaults.
///
/// Local statistics come from a uniform 7x7 window; `C1 = (0.01 R)^2`, `C2 = (0.03 R)^2` with
/// `R = data_range`; variances and the covariance are sample estimates (scaled by `N / (N - 1)`, `N = 49`).
/// The result is the mean of the SSIM map over the positions whose whole window lies inside the image,
/// which is what skimage gets by cropping a border of 3 pixels. It lies in [-1, 1] and is 1 for identical
/// images.
///
/// If a side of the image is shorter than 7, the window is the largest odd square that fits (5 for a
/// 5x6 or 6x6 image, 3 for a 4x9 image), as skimage with `win_size` set to that value.
///
/// # Panics
///
/// If `a` or `b` does not hold `height * width` values, if a side is shorter than 3 (the smallest window
/// with a sample variance), or if `data_range` is not finite and positive.
pub fn ssim(a: &[f32], b: &[f32], height: usize, width: usize, data_range: f32) -> f64 {
    assert_image_len("ssim: a", a.len(), height, width);
    assert_image_len("ssim: b", b.len(), height, width);
    assert!(
        height >= 3 && width >= 3,
        "ssim needs images of at least 3x3, got {height}x{width}"
    );
    assert_data_range(data_range);

    let win = ssim_window(height, width);
    let n = (win * win) as f64;
    let cov_norm = n / (n - 1.0);
    let range = f64::from(data_range);
    let c1 = (SSIM_K1 * range).powi(2);
    let c2 = (SSIM_K2 * range).powi(2);

    // Window sums of x, y, x^2, y^2 and x y: first along rows, then down columns of the row sums.
    let moments: Vec<[f64; 5]> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            [x, y, x * x, y * y, x * y]
        })
        .collect();
    let (out_h, out_w) = (height - win + 1, width - win + 1);
    let mut row_sums = vec![[0.0; 5]; height * out_w];
    for r in 0..height {
        for c in 0..out_w {
            let acc = &mut row_sums[r * out_w + c];
            for m in &moments[r * width + c..r * width + c + win] {
                for (s, v) in acc.iter_mut().zip(m) {
                    *s += v;
                }
            }
        }
    }

    let mut total = 0.0;
    for r in 0..out_h {
        for c in 0..out_w {
            let mut sums = [0.0; 5];
            for k in 0..win {
                for (s, v) in sums.iter_mut().zip(&row_sums[(r + k) * out_w + c]) {
                    *s += v;
                }
            }
            let [ux, uy, uxx, uyy, uxy] = sums.map(|s| s / n);
            let vx = cov_norm * (uxx - ux * ux);
            let vy = cov_norm * (uyy - uy * uy);
            let vxy = cov_norm * (uxy - ux * uy);
            total += ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        }
    }
    total / (out_h * out_w) as f64
}

/// Maps an index that may lie one step (or more) outside `0..n` back inside, as scipy.ndimage's
/// `mode='reflect'`: `d c b a | a b c d | d c b a`, the edge value repeated.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// 3x3 median filter, the classical denoising baseline, as `scipy.ndimage.median_filter(img, size=3)`.
///
/// Pixels beyond the border are reflected (`mode='reflect'`: `d c b a | a b c d | d c b a`), so a corner
/// pixel's window holds the corner itself four times. Values are ordered by [`f32::total_cmp`], so a NaN
/// ranks above every number. An image with a zero side gives an empty result.
///
/// # Panics
///
/// If `img` does not hold `height * width` values.
pub fn median_filter_3x3(img: &[f32], height: usize, width: usize) -> Vec<f32> {
    assert_image_len("median_filter_3x3: img", img.len(), height, width);
    let mut out = Vec::with_capacity(img.len());
    for r in 0..height {
        for c in 0..width {
            let mut window = [0.0f32; 9];
            let mut k = 0;
            for dr in -1..=1 {
                let rr = reflect(r as isize + dr, height);
                for dc in -1..=1 {
                    window[k] = img[rr * width + reflect(c as isize + dc, width)];
                    k += 1;
                }
            }
            window.sort_unstable_by(f32::total_cmp);
            out.push(window[4]);
        }
    }
    out
}

/// The mean of [`psnr`] over the consecutive images of `image_len` values in `clean` and `other`.
///
/// This averages per-image PSNRs (the usual report for denoising benchmarks), which differs from the PSNR of
/// the pooled MSE. If any pair of images is identical the mean is [`f64::INFINITY`].
///
/// # Panics
///
/// If the buffers differ in length, hold no images, are not a whole number of images, or `data_range` is not
/// finite and positive.
pub fn mean_psnr(clean: &[f32], other: &[f32], image_len: usize, data_range: f32) -> f64 {
    assert_eq!(
        clean.len(),
        other.len(),
        "mean_psnr: the batches have {} and {} values",
        clean.len(),
        other.len()
    );
    let count = batch_count("mean_psnr", clean.len(), image_len);
    assert!(count > 0, "mean_psnr: the batches hold no images");
    let sum: f64 = clean
        .chunks_exact(image_len)
        .zip(other.chunks_exact(image_len))
        .map(|(c, o)| psnr(c, o, data_range))
        .sum();
    sum / count as f64
}

/// The mean of [`ssim`] over the consecutive `height x width` images in `clean` and `other`.
///
/// # Panics
///
/// If the buffers differ in length, hold no images, are not a whole number of images, or for any reason
/// [`ssim`] panics.
pub fn mean_ssim(clean: &[f32], other: &[f32], height: usize, width: usize, data_range: f32) -> f64 {
    assert_eq!(
        clean.len(),
        other.len(),
        "mean_ssim: the batches have {} and {} values",
        clean.len(),
        other.len()
    );
    let image_len = height * width;
    let count = batch_count("mean_ssim", clean.len(), image_len);
    assert!(count > 0, "mean_ssim: the batches hold no images");
    let sum: f64 = clean
        .chunks_exact(image_len)
        .zip(other.chunks_exact(image_len))
        .map(|(c, o)| ssim(c, o, height, width, data_range))
        .sum();
    sum / count as f64
}

/// [`median_filter_3x3`] applied to each consecutive `height x width` image of `imgs`; every image is
/// reflected at its own borders. An empty batch gives an empty result.
///
/// # Panics
///
/// If `height * width` is 0 or `imgs` is not a whole number of images.
pub fn median_filter_batch(imgs: &[f32], height: usize, width: usize) -> Vec<f32> {
    let image_len = height * width;
    batch_count("median_filter_batch", imgs.len(), image_len);
    imgs.chunks_exact(image_len)
        .flat_map(|img| median_filter_3x3(img, height, width))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected}, got {actual} (tolerance {tol})"
        );
    }

    /// A deterministic 0..=255 test pattern.
    fn pattern(len: usize, mul: usize, modulus: usize, step: f32) -> Vec<f32> {
        (0..len).map(|k| ((k * mul) % modulus) as f32 * step).collect()
    }

    // Reference pair for SSIM, drawn with numpy 2.4.6 and scored with scikit-image 0.26.0:
    //   rng = np.random.default_rng(11)
    //   a = rng.integers(0, 256, size=(10, 12)).astype(np.float64)
    //   b = np.clip(a + rng.normal(0, 30, size=a.shape).round(), 0, 255)
    //   structural_similarity(a, b, data_range=255.0) -> 0.9468110929250694
    const REF_A: [f32; 120] = [
        34., 32., 204., 127., 151., 153., 182., 7., 124., 37., 102., 237., 140., 18., 138., 33., 193., 242., 250.,
        159., 222., 94., 37., 130., 113., 169., 254., 70., 219., 35., 89., 201., 63., 171., 117., 131., 240., 209.,
        214., 140., 251., 251., 34., 52., 78., 141., 210., 123., 251., 90., 237., 151., 184., 60., 151., 205., 226.,
        222., 247., 32., 199., 119., 175., 70., 3., 21., 249., 229., 77., 110., 61., 37., 219., 172., 19., 51., 144.,
        230., 254., 55., 156., 8., 44., 51., 113., 88., 186., 120., 86., 231., 160., 178., 190., 86., 228., 4., 78.,
        40., 1., 255., 22., 117., 209., 176., 219., 13., 127., 8., 49., 216., 18., 150., 5., 79., 238., 81., 79., 22.,
        198., 44.,
    ];
    const REF_B: [f32; 120] = [
        26., 55., 191., 126., 161., 127., 200., 4., 139., 21., 135., 255., 135., 37., 176., 87., 146., 255., 255.,
        156., 192., 132., 0., 147., 152., 121., 245., 31., 226., 80., 150., 148., 46., 192., 164., 144., 218., 218.,
        214., 134., 229., 255., 43., 49., 71., 102., 195., 159., 245., 47., 255., 167., 247., 62., 137., 162., 255.,
        255., 222., 13., 217., 94., 167., 60., 9., 54., 250., 255., 64., 120., 0., 0., 243., 154., 36., 67., 184.,
        254., 255., 52., 135., 0., 29., 17., 97., 85., 194., 110., 28., 229., 167., 211., 207., 67., 206., 64., 101.,
        95., 65., 230., 34., 131., 226., 192., 225., 18., 82., 3., 27., 220., 4., 169., 30., 88., 247., 84., 66., 17.,
        183., 56.,
    ];
    const REF_SSIM: f64 = 0.946_811_092_925_069_4;

    #[test]
    fn mse_hand_case() {
        // Differences 2, -1, 0, 3: (4 + 1 + 0 + 9) / 4.
        assert_close(mse(&[1.0, 2.0, 3.0, 4.0], &[3.0, 1.0, 3.0, 7.0]), 3.5, 0.0);
    }

    #[test]
    fn psnr_hand_case() {
        // One of four pixels off by 16: mse = 256 / 4 = 64; 10 log10(255^2 / 64) = 10 log10(1016.015625).
        let p = psnr(&[0.0; 4], &[16.0, 0.0, 0.0, 0.0], 255.0);
        assert_close(p, 30.069_003_868_840_234, 1e-12);
    }

    #[test]
    fn psnr_identical_is_infinite() {
        let img = pattern(16, 7, 11, 0.05);
        assert_eq!(psnr(&img, &img, 1.0), f64::INFINITY);
    }

    #[test]
    #[should_panic(expected = "mse: the images have 3 and 4 values")]
    fn psnr_panics_on_length_mismatch() {
        psnr(&[0.0; 3], &[0.0; 4], 1.0);
    }

    #[test]
    fn ssim_identical_is_one() {
        let img = pattern(9 * 11, 37, 29, 8.0);
        assert_close(ssim(&img, &img, 9, 11, 255.0), 1.0, 1e-12);
    }

    #[test]
    fn ssim_is_symmetric() {
        let ab = ssim(&REF_A, &REF_B, 10, 12, 255.0);
        let ba = ssim(&REF_B, &REF_A, 10, 12, 255.0);
        assert_close(ab, ba, 1e-14);
        assert!(ab < 1.0, "ssim {ab}");
    }

    #[test]
    fn ssim_constant_offset_lowers_it() {
        // Only the luminance term changes, so SSIM drops below 1 and drops further with a larger offset.
        let a = pattern(10 * 10, 37, 23, 8.0);
        let plus_20: Vec<f32> = a.iter().map(|v| v + 20.0).collect();
        let plus_60: Vec<f32> = a.iter().map(|v| v + 60.0).collect();
        let s20 = ssim(&a, &plus_20, 10, 10, 255.0);
        let s60 = ssim(&a, &plus_60, 10, 10, 255.0);
        assert!(
            s20 < 1.0 - 1e-3 && s60 < s20 && s60 > 0.0,
            "offset 20 -> {s20}, offset 60 -> {s60}"
        );
    }

    #[test]
    fn ssim_single_window_by_hand() {
        // A 7x7 image has one window: SSIM is the formula on whole-image statistics, written out here with
        // two-pass sample (co)variances. (scikit-image 0.26.0 gives -0.05092566632335738 for this pair.)
        let a = pattern(49, 37, 11, 20.0);
        let b = pattern(49, 53, 13, 15.0);
        let x: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        let mx = x.iter().sum::<f64>() / 49.0;
        let my = y.iter().sum::<f64>() / 49.0;
        let sxx = x.iter().map(|v| (v - mx) * (v - mx)).sum::<f64>() / 48.0;
        let syy = y.iter().map(|v| (v - my) * (v - my)).sum::<f64>() / 48.0;
        let sxy = x.iter().zip(&y).map(|(u, v)| (u - mx) * (v - my)).sum::<f64>() / 48.0;
        let c1 = (0.01f64 * 255.0) * (0.01 * 255.0);
        let c2 = (0.03f64 * 255.0) * (0.03 * 255.0);
        let expected = (2.0 * mx * my + c1) * (2.0 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
        assert_close(ssim(&a, &b, 7, 7, 255.0), expected, 1e-12);
        assert_close(expected, -0.050_925_666_323_357_38, 1e-12);
    }

    #[test]
    fn ssim_matches_skimage_reference() {
        assert_close(ssim(&REF_A, &REF_B, 10, 12, 255.0), REF_SSIM, 1e-12);
    }

    #[test]
    fn ssim_small_image_uses_largest_odd_window() {
        // A 5x6 image gets a 5x5 window. numpy 2.4.6 / scikit-image 0.26.0, continuing the generator above:
        //   c = rng.integers(0, 256, size=(5, 6)).astype(np.float64)
        //   d = rng.integers(0, 256, size=(5, 6)).astype(np.float64)
        //   structural_similarity(c, d, data_range=255.0, win_size=5) -> 0.06653360990506663
        let c = [
            177., 224., 38., 176., 177., 190., 179., 143., 29., 200., 49., 114., 243., 144., 74., 16., 65., 142., 217.,
            208., 54., 180., 166., 205., 127., 127., 107., 225., 134., 27.,
        ];
        let d = [
            129., 224., 214., 95., 225., 23., 191., 158., 2., 116., 97., 109., 66., 218., 211., 35., 195., 157., 47.,
            105., 71., 135., 33., 127., 29., 34., 217., 131., 73., 220.,
        ];
        assert_close(ssim(&c, &d, 5, 6, 255.0), 0.066_533_609_905_066_63, 1e-12);
    }

    #[test]
    #[should_panic(expected = "ssim: b has 48 values, but a 7x7 image needs 49")]
    fn ssim_panics_on_length_mismatch() {
        ssim(&[0.0; 49], &[0.0; 48], 7, 7, 1.0);
    }

    #[test]
    #[should_panic(expected = "ssim needs images of at least 3x3, got 2x5")]
    fn ssim_panics_on_tiny_image() {
        ssim(&[0.0; 10], &[0.0; 10], 2, 5, 1.0);
    }

    #[test]
    fn median_removes_salt_pixel() {
        // A salt pixel in the middle and one in the corner (which the reflected border shows 4 times of 9).
        let mut img = vec![0.2f32; 25];
        img[12] = 1.0;
        img[0] = 1.0;
        assert_eq!(median_filter_3x3(&img, 5, 5), vec![0.2f32; 25]);
    }

    #[test]
    fn median_reflect_border_by_hand() {
        // [1 2 3; 4 5 6; 7 8 9]. Corner (0, 0) sees rows {0, 0, 1} x columns {0, 0, 1}:
        // 1 1 2 / 1 1 2 / 4 4 5 -> sorted 1 1 1 1 2 2 4 4 5 -> 2 (zero padding would give 0, scipy's 'mirror'
        // mode 4). Edge (0, 1) sees rows {0, 0, 1}: 1 2 3 / 1 2 3 / 4 5 6 -> 3. Centre: 5.
        // scipy.ndimage.median_filter(np.arange(1., 10.).reshape(3, 3), size=3) agrees:
        // [[2 3 3] [4 5 6] [7 7 8]].
        let img: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        assert_eq!(median_filter_3x3(&img, 3, 3), vec![2., 3., 3., 4., 5., 6., 7., 7., 8.]);
    }

    #[test]
    fn median_degenerate_shapes() {
        // scipy.ndimage.median_filter(np.array([[1., 2, 3]]), size=3) -> [[1, 2, 3]];
        // scipy.ndimage.median_filter(np.array([[1., 9], [5, 3]]), size=3) -> [[3, 5], [5, 3]].
        assert_eq!(median_filter_3x3(&[1., 2., 3.], 1, 3), vec![1., 2., 3.]);
        assert_eq!(median_filter_3x3(&[1., 9., 5., 3.], 2, 2), vec![3., 5., 5., 3.]);
        assert!(median_filter_3x3(&[], 0, 4).is_empty());
    }

    #[test]
    fn median_matches_scipy_reference() {
        // numpy 2.4.6 / scipy 1.17.1, continuing the generator of the SSIM references:
        //   m = rng.integers(0, 10, size=(5, 6)).astype(np.float64)
        //   scipy.ndimage.median_filter(m, size=3)
        let m = [
            3., 1., 8., 0., 9., 0., 8., 4., 1., 9., 4., 0., 7., 9., 1., 5., 9., 1., 7., 4., 0., 2., 8., 7., 8., 5., 1.,
            2., 2., 2.,
        ];
        let expected = vec![
            3., 3., 1., 8., 0., 0., 7., 4., 4., 5., 4., 1., 7., 4., 4., 4., 5., 4., 7., 5., 2., 2., 2., 2., 7., 5., 2.,
            2., 2., 2.,
        ];
        assert_eq!(median_filter_3x3(&m, 5, 6), expected);
    }

    #[test]
    #[should_panic(expected = "median_filter_3x3: img has 8 values, but a 3x3 image needs 9")]
    fn median_panics_on_length_mismatch() {
        median_filter_3x3(&[0.0; 8], 3, 3);
    }

    #[test]
    fn mean_psnr_averages_per_image() {
        // Image 1: mse 0.5^2 / 2 = 1/8 -> 10 log10(8); image 2: mse 1/16 -> 10 log10(16). The PSNR of the
        // pooled mse (3/32) would be 10.28 instead of their mean 10.536.
        let clean = [0.0; 4];
        let other = [0.5, 0.0, 0.25, 0.25];
        assert_close(mean_psnr(&clean, &other, 2, 1.0), 10.536_049_848_239_342, 1e-12);
    }

    #[test]
    #[should_panic(expected = "mean_psnr: 5 values are not a whole number of images of 2 values")]
    fn mean_psnr_panics_on_partial_image() {
        mean_psnr(&[0.0; 5], &[0.0; 5], 2, 1.0);
    }

    #[test]
    fn mean_ssim_averages_per_image() {
        // The reference pair (SSIM 0.9468...) followed by an identical pair (SSIM 1).
        let clean: Vec<f32> = REF_A.iter().chain(&REF_A).copied().collect();
        let other: Vec<f32> = REF_B.iter().chain(&REF_A).copied().collect();
        assert_close(mean_ssim(&clean, &other, 10, 12, 255.0), (REF_SSIM + 1.0) / 2.0, 1e-12);
    }

    #[test]
    fn median_filter_batch_reflects_each_image_at_its_own_border() {
        // Image 2's top row reflects onto itself (median 0); treating the batch as one 6x3 image would pull
        // in image 1's bottom row of 9s and give 9.
        let first = [9.0f32; 9];
        let second = [0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0];
        let batch: Vec<f32> = first.iter().chain(&second).copied().collect();
        let out = median_filter_batch(&batch, 3, 3);
        let expected: Vec<f32> = median_filter_3x3(&first, 3, 3)
            .into_iter()
            .chain(median_filter_3x3(&second, 3, 3))
            .collect();
        assert_eq!(out, expected);
        assert_eq!(&out[9..12], &[0.0, 0.0, 0.0]);
    }
}
