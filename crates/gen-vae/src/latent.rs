//! Codes to decode: lines between two codes, traversals of one dimension, and the grid of a 2-D
//! latent space at Gaussian quantiles. Plain `f32` rows (`[n, d_latent]`, row-major), so they
//! work for any model and any backend.

/// `steps` codes evenly spaced on the line from `a` to `b`, both ends included.
///
/// # Panics
/// If `a` and `b` differ in length or `steps < 2`.
pub fn lerp(a: &[f32], b: &[f32], steps: usize) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "lerp: codes of different widths");
    assert!(steps >= 2, "lerp: need at least 2 steps");
    let mut out = Vec::with_capacity(steps * a.len());
    for s in 0..steps {
        let t = s as f32 / (steps - 1) as f32;
        out.extend(a.iter().zip(b).map(|(&a, &b)| (1.0 - t) * a + t * b));
    }
    out
}

/// Copies of `base` with dimension `dim` set to each of `values` in turn: a traversal.
///
/// # Panics
/// If `dim` is out of range.
pub fn traversal(base: &[f32], dim: usize, values: &[f32]) -> Vec<f32> {
    assert!(
        dim < base.len(),
        "traversal: dimension {dim} of a {}-d code",
        base.len()
    );
    let mut out = Vec::with_capacity(values.len() * base.len());
    for &v in values {
        let start = out.len();
        out.extend_from_slice(base);
        out[start + dim] = v;
    }
    out
}

/// `n` values from -`extent` to `extent`, evenly spaced.
///
/// # Panics
/// If `n < 2`.
pub fn linspace(extent: f32, n: usize) -> Vec<f32> {
    assert!(n >= 2, "linspace: need at least 2 points");
    (0..n)
        .map(|i| -extent + 2.0 * extent * i as f32 / (n - 1) as f32)
        .collect()
}

/// The `n x n` grid of 2-D codes at the standard normal's quantiles `(i + 0.5) / n`, the first
/// coordinate varying along rows (left to right) and the second down the columns (top = high),
/// as in Kingma and Welling's manifold figures. Row-major `[n·n, 2]`.
pub fn manifold_grid(n: usize) -> Vec<f32> {
    let q: Vec<f32> = (0..n).map(|i| probit((i as f64 + 0.5) / n as f64) as f32).collect();
    let mut out = Vec::with_capacity(2 * n * n);
    for row in 0..n {
        for col in 0..n {
            out.push(q[col]);
            out.push(q[n - 1 - row]);
        }
    }
    out
}

/// The standard normal quantile function Φ⁻¹(p), by Acklam's rational approximation
/// (relative error below 1.2e-9).
///
/// # Panics
/// If `p` is not in (0, 1).
pub fn probit(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "probit: p = {p} is not in (0, 1)");
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probit_matches_known_quantiles() {
        // scipy.stats.norm.ppf
        for (p, q) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.841_344_746_068_542_9, 1.0),
            (0.001, -3.090_232_306_167_813_5),
            (1e-6, -4.753_424_308_822_899),
            (0.02, -2.053_748_910_631_823),
            (0.9, 1.281_551_565_544_600_4),
        ] {
            let got = probit(p);
            assert!(
                (got - q).abs() <= 1e-8 * q.abs().max(1.0),
                "probit({p}) = {got}, expected {q}"
            );
        }
    }

    #[test]
    fn probit_is_odd_and_increasing() {
        let mut prev = f64::NEG_INFINITY;
        for i in 1..1000 {
            let p = i as f64 / 1000.0;
            let x = probit(p);
            assert!(x > prev);
            assert!((x + probit(1.0 - p)).abs() < 1e-8, "p = {p}");
            prev = x;
        }
    }

    #[test]
    fn lerp_ends_at_both_codes() {
        let v = lerp(&[0.0, 2.0], &[1.0, -2.0], 5);
        assert_eq!(&v[..2], &[0.0, 2.0]);
        assert_eq!(&v[8..], &[1.0, -2.0]);
        assert_eq!(&v[4..6], &[0.5, 0.0]);
    }

    #[test]
    fn traversal_changes_one_dimension() {
        let v = traversal(&[1.0, 2.0, 3.0], 1, &[-1.0, 0.0, 1.0]);
        assert_eq!(v, vec![1.0, -1.0, 3.0, 1.0, 0.0, 3.0, 1.0, 1.0, 3.0]);
    }

    #[test]
    fn manifold_grid_is_symmetric_quantiles() {
        let g = manifold_grid(4);
        assert_eq!(g.len(), 32);
        // Top-left: lowest first coordinate, highest second.
        assert!(g[0] < 0.0 && g[1] > 0.0);
        assert!((g[0] + g[6]).abs() < 1e-6, "{g:?}");
        assert!((g[0] - probit(0.125) as f32).abs() < 1e-6);
    }
}
