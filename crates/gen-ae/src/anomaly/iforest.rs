//! Isolation Forest (Liu, Ting and Zhou, 2008), the classical baseline beside the autoencoder's
//! scores: random trees that split a random feature at a random value between its minimum and
//! maximum; an anomaly is isolated in fewer splits than a normal row.
//!
//! This follows scikit-learn's `IsolationForest` (the anchors of the table protocol were measured
//! with it): each tree grows on `min(256, n)` rows drawn without replacement, to a depth of
//! `ceil(log2(rows))`; a node whose drawn feature is constant draws again among the features not
//! tried yet, and becomes a leaf when every feature is constant; a row's path length is its depth
//! plus `c(leaf size)`, the expected depth of an unbuilt subtree; the score is `2^(−E[h] / c(ψ))`,
//! in (0, 1], higher is more anomalous. No crate fitted: `extended-isolation-forest` fixes the
//! number of features at compile time and draws from `thread_rng`, so a run cannot be repeated.

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::AnomalyError;

/// How an [`IsolationForest`] is grown (scikit-learn's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Rows drawn (without replacement) for each tree, at most the number of rows.
    pub max_samples: usize,
    /// Seed of the row draws and of the splits.
    pub seed: u64,
}

impl Default for IsolationForestConfig {
    fn default() -> Self {
        Self {
            n_trees: 100,
            max_samples: 256,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    /// Rows go left when `row[feature] < threshold`.
    Split {
        feature: usize,
        threshold: f32,
        left: usize,
        right: usize,
    },
    /// A leaf that held `size` training rows.
    Leaf { size: usize },
}

/// A fitted Isolation Forest.
#[derive(Debug, Clone)]
pub struct IsolationForest {
    d: usize,
    trees: Vec<Vec<Node>>,
    /// `c(ψ)`, the normaliser of the mean path length.
    c_samples: f64,
}

/// The expected path length of an unsuccessful search in a binary search tree of `n` keys,
/// `c(n) = 2 H(n − 1) − 2 (n − 1) / n` (0 for `n ≤ 1`, 1 for `n = 2`), with `H(i) ≈ ln i + γ`.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let m = (n - 1) as f64;
            2.0 * (m.ln() + 0.577_215_664_901_532_9) - 2.0 * m / n as f64
        }
    }
}

impl IsolationForest {
    /// Grows the forest on `rows` (row-major, `d` values each).
    ///
    /// # Errors
    /// If `d` is 0, `rows` is not a whole number of rows or holds fewer than 2, a value is not
    /// finite, or `n_trees` or `max_samples` is 0.
    pub fn fit(rows: &[f32], d: usize, config: IsolationForestConfig) -> Result<Self, AnomalyError> {
        if d == 0 || !rows.len().is_multiple_of(d) || rows.len() / d < 2 {
            return Err(AnomalyError::Data(format!(
                "Isolation Forest needs at least 2 rows of {d} features, got {} values",
                rows.len()
            )));
        }
        if config.n_trees == 0 || config.max_samples == 0 {
            return Err(AnomalyError::Data(format!(
                "Isolation Forest needs at least one tree and one sample per tree, got {} and {}",
                config.n_trees, config.max_samples
            )));
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(AnomalyError::Data(format!(
                "Isolation Forest: value {} at row {}, column {} is not finite",
                rows[i],
                i / d,
                i % d
            )));
        }
        let n = rows.len() / d;
        let psi = config.max_samples.min(n);
        let depth_limit = (psi as f64).log2().ceil() as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let trees = (0..config.n_trees)
            .map(|_| {
                let mut sample = index::sample(&mut rng, n, psi).into_vec();
                let mut tree = Vec::new();
                grow(rows, d, &mut sample, 0, depth_limit, &mut rng, &mut tree);
                tree
            })
            .collect();
        Ok(Self {
            d,
            trees,
            c_samples: average_path_length(psi),
        })
    }

    /// The number of features the forest was grown on.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The anomaly score of each row of `rows`, `2^(−E[h] / c(ψ))`: near 1 for rows isolated
    /// at once, below 0.5 for rows as deep as the training rows.
    ///
    /// # Errors
    /// If `rows` is not a whole number of rows of the forest's width.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, AnomalyError> {
        if !rows.len().is_multiple_of(self.d) {
            return Err(AnomalyError::Data(format!(
                "the forest was grown on {} features; {} values are not whole rows",
                self.d,
                rows.len()
            )));
        }
        Ok(rows
            .chunks_exact(self.d)
            .map(|row| {
                let mean = self.trees.iter().map(|t| path_length(t, row)).sum::<f64>() / self.trees.len() as f64;
                let c = if self.c_samples > 0.0 { self.c_samples } else { 1.0 };
                (2f64).powf(-mean / c) as f32
            })
            .collect())
    }
}

/// Grows the subtree of `sample`'s rows at `depth` and returns its index in `tree`.
fn grow(
    rows: &[f32],
    d: usize,
    sample: &mut [usize],
    depth: usize,
    limit: usize,
    rng: &mut ChaCha8Rng,
    tree: &mut Vec<Node>,
) -> usize {
    let at = tree.len();
    tree.push(Node::Leaf { size: sample.len() });
    if depth >= limit || sample.len() <= 1 {
        return at;
    }
    // Draw features without replacement until one is not constant among these rows.
    let mut features: Vec<usize> = (0..d).collect();
    let mut left_len = 0;
    let mut chosen = None;
    while !features.is_empty() {
        let feature = features.swap_remove(rng.random_range(0..features.len()));
        let (lo, hi) = sample
            .iter()
            .map(|&i| rows[i * d + feature])
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if hi > lo {
            // A threshold in (lo, hi]: both sides get at least one row.
            let mut threshold = lo + (hi - lo) * rng.random::<f32>();
            if threshold <= lo {
                threshold = hi;
            }
            left_len = partition(sample, |i| rows[i * d + feature] < threshold);
            chosen = Some((feature, threshold));
            break;
        }
    }
    let Some((feature, threshold)) = chosen else {
        return at;
    };
    let (l, r) = sample.split_at_mut(left_len);
    let left = grow(rows, d, l, depth + 1, limit, rng, tree);
    let right = grow(rows, d, r, depth + 1, limit, rng, tree);
    tree[at] = Node::Split {
        feature,
        threshold,
        left,
        right,
    };
    at
}

/// Moves the entries for which `goes_left` holds to the front; returns how many there are.
fn partition(sample: &mut [usize], goes_left: impl Fn(usize) -> bool) -> usize {
    let mut k = 0;
    for j in 0..sample.len() {
        if goes_left(sample[j]) {
            sample.swap(j, k);
            k += 1;
        }
    }
    k
}

/// The depth at which `row` leaves `tree`, plus `c(size)` for the rows its leaf held.
fn path_length(tree: &[Node], row: &[f32]) -> f64 {
    let mut at = 0;
    let mut depth = 0.0;
    loop {
        match tree[at] {
            Node::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                at = if row[feature] < threshold { left } else { right };
                depth += 1.0;
            }
            Node::Leaf { size } => return depth + average_path_length(size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn average_path_length_matches_hand_values() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(3) = 2 (ln 2 + γ) − 4/3
        let c3 = 2.0 * (2f64.ln() + 0.577_215_664_901_532_9) - 4.0 / 3.0;
        assert!((average_path_length(3) - c3).abs() < 1e-12);
        // scikit-learn's _average_path_length([256]) = 10.244770920116851
        assert!((average_path_length(256) - 10.244_770_920_116_851).abs() < 1e-9);
    }

    fn gaussian_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect()
    }

    #[test]
    fn a_far_row_scores_above_every_normal_row_and_above_one_half() {
        let d = 3;
        let rows = gaussian_rows(500, d, 1);
        let forest = IsolationForest::fit(&rows, d, IsolationForestConfig::default()).unwrap();
        let normal = forest.score(&gaussian_rows(200, d, 2)).unwrap();
        let far = forest.score(&[6.0, -6.0, 6.0]).unwrap()[0];
        assert!(far > 0.5, "far row scored {far}");
        let max_normal = normal.iter().cloned().fold(f32::MIN, f32::max);
        assert!(far > max_normal, "far {far} against normal rows up to {max_normal}");
        let mean = normal.iter().sum::<f32>() / normal.len() as f32;
        assert!(mean < 0.5, "normal rows average {mean}");
    }

    #[test]
    fn the_seed_fixes_the_forest_and_another_seed_changes_it() {
        let rows = gaussian_rows(300, 4, 3);
        let test = gaussian_rows(20, 4, 4);
        let cfg = IsolationForestConfig::default();
        let a = IsolationForest::fit(&rows, 4, cfg).unwrap().score(&test).unwrap();
        let b = IsolationForest::fit(&rows, 4, cfg).unwrap().score(&test).unwrap();
        let c = IsolationForest::fit(&rows, 4, IsolationForestConfig { seed: 1, ..cfg })
            .unwrap()
            .score(&test)
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn constant_features_and_duplicate_rows_make_leaves_not_loops() {
        // Every row equal: each tree is a single leaf of ψ rows, so every path is c(ψ) and the
        // score exactly 0.5.
        let rows = vec![1.0f32; 40 * 2];
        let forest = IsolationForest::fit(&rows, 2, IsolationForestConfig::default()).unwrap();
        assert_eq!(forest.score(&[1.0, 1.0, 5.0, -5.0]).unwrap(), vec![0.5, 0.5]);
        // One constant column among varying ones is never split on.
        let mut rows = gaussian_rows(100, 2, 5);
        for r in rows.chunks_exact_mut(2) {
            r[1] = 3.0;
        }
        let forest = IsolationForest::fit(&rows, 2, IsolationForestConfig::default()).unwrap();
        for tree in &forest.trees {
            for node in tree {
                if let Node::Split { feature, .. } = node {
                    assert_eq!(*feature, 0);
                }
            }
        }
    }

    /// Against scikit-learn 1.x's `IsolationForest(random_state=s)` (defaults: 100 trees, 256
    /// samples) fitted on a table's normal rows and scoring every row, mean AUROC over seeds 0
    /// to 9 (`-score_samples`): breastw 0.9950 (sd 0.0004), ionosphere 0.9300 (sd 0.0059), pima
    /// 0.7391 (sd 0.0043). The forests are random, so the means are held to 0.01, about five
    /// standard errors of ionosphere's mean.
    #[test]
    fn auroc_on_the_tables_matches_scikit_learn() {
        let dir = std::env::var_os("GEN_DATA_DIR")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
            .join("tabular");
        if !dir.join("breastw.csv").is_file() {
            let why = format!("no tabular sets under {}", dir.display());
            assert!(
                std::env::var_os("GEN_REQUIRE_DATA").is_none_or(|v| v == "0"),
                "GEN_REQUIRE_DATA is set but there are {why}"
            );
            eprintln!("skipped: {why} (set GEN_DATA_DIR)");
            return;
        }
        for (table, sklearn) in [("breastw", 0.9950), ("ionosphere", 0.9300), ("pima", 0.7391)] {
            let data = gen_data::load_csv(&dir.join(format!("{table}.csv"))).unwrap();
            let labels = data.labels().unwrap();
            let normal: Vec<f32> = (0..data.len())
                .filter(|&i| labels[i] == 0)
                .flat_map(|i| data.row(i).to_vec())
                .collect();
            let truth: Vec<bool> = labels.iter().map(|&y| y != 0).collect();
            let mean = (0..10)
                .map(|seed| {
                    let cfg = IsolationForestConfig {
                        seed,
                        ..IsolationForestConfig::default()
                    };
                    let forest = IsolationForest::fit(&normal, data.d(), cfg).unwrap();
                    gen_core::eval::auroc(&forest.score(data.features()).unwrap(), &truth).unwrap()
                })
                .sum::<f64>()
                / 10.0;
            assert!(
                (mean - sklearn).abs() < 0.01,
                "{table}: {mean:.4} against scikit-learn's {sklearn}"
            );
        }
    }

    #[test]
    fn bad_input_is_refused_with_what_was_wrong() {
        let cfg = IsolationForestConfig::default();
        let e = IsolationForest::fit(&[1.0, 2.0, 3.0], 2, cfg).unwrap_err().to_string();
        assert!(e.contains("at least 2 rows of 2 features"), "{e}");
        let e = IsolationForest::fit(&[1.0, f32::NAN, 3.0, 4.0], 2, cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 0, column 1"), "{e}");
        let e = IsolationForest::fit(&[1.0, 2.0, 3.0, 4.0], 2, IsolationForestConfig { n_trees: 0, ..cfg })
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one tree"), "{e}");
        let forest = IsolationForest::fit(&[1.0, 2.0, 3.0, 4.0], 2, cfg).unwrap();
        assert!(forest.score(&[1.0, 2.0, 3.0]).is_err());
    }
}
