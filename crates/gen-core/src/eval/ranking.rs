//! Anomaly-detection metrics over per-sample scores and boolean labels.
//!
//! Conventions: a higher score means "more anomalous", and a label `true` marks an anomaly (the positive
//! class). Scores may be any `f32` except NaN; infinities are ordinary, extreme scores. `-0.0` and `0.0` are
//! the same score.

/// An input on which a ranking metric is undefined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Scores and labels must pair up one to one.
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch {
        /// The number of scores given.
        scores: usize,
        /// The number of labels given.
        labels: usize,
    },
    /// No scores at all.
    #[error("no scores given")]
    Empty,
    /// A score is NaN, so it has no place in the ranking.
    #[error("score at index {index} is NaN")]
    NanScore {
        /// The position of the first NaN score.
        index: usize,
    },
    /// Every label is `false`, so recall (and the true-positive rate) is 0/0.
    #[error("all {count} labels are false (no anomalies): the metric needs at least one positive")]
    NoPositives {
        /// The number of labels, all negative.
        count: usize,
    },
    /// Every label is `true`, so the false-positive rate is 0/0.
    #[error("all {count} labels are true (no normal samples): auroc needs at least one negative")]
    NoNegatives {
        /// The number of labels, all positive.
        count: usize,
    },
    /// The contamination (expected share of anomalies) is outside (0, 0.5].
    #[error("contamination must be in (0, 0.5], got {value}")]
    Contamination {
        /// The value given.
        value: f64,
    },
}

/// Checks that scores and labels pair up, are not empty and hold no NaN; returns the number of positives
/// and of negatives.
fn check(scores: &[f32], labels: &[bool]) -> Result<(usize, usize), EvalError> {
    if scores.len() != labels.len() {
        return Err(EvalError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    check_scores(scores)?;
    let n_pos = labels.iter().filter(|&&l| l).count();
    if n_pos == 0 {
        return Err(EvalError::NoPositives { count: labels.len() });
    }
    Ok((n_pos, labels.len() - n_pos))
}

/// Checks that scores are not empty and hold no NaN.
fn check_scores(scores: &[f32]) -> Result<(), EvalError> {
    if scores.is_empty() {
        return Err(EvalError::Empty);
    }
    match scores.iter().position(|s| s.is_nan()) {
        Some(index) => Err(EvalError::NanScore { index }),
        None => Ok(()),
    }
}

/// The indices of `scores` in ascending score order. Scores must hold no NaN.
fn ascending_order(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // `total_cmp` puts -0.0 right before 0.0 and nothing between them, so tie groups found with `==` on
    // neighbours in this order are still contiguous.
    order.sort_unstable_by(|&i, &j| scores[i].total_cmp(&scores[j]));
    order
}

/// Splits a score order into groups of equal scores and returns, per group, (positives, negatives).
fn tie_groups(scores: &[f32], labels: &[bool], order: &[usize]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let value = scores[order[start]];
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == value {
            end += 1;
        }
        let pos = order[start..end].iter().filter(|&&k| labels[k]).count();
        groups.push((pos, end - start - pos));
        start = end;
    }
    groups
}

/// Area under the ROC curve of `scores` against `labels`, in [0, 1].
///
/// This is the Mann–Whitney U statistic divided by `n_pos * n_neg`: the probability that a random anomaly
/// scores higher than a random normal sample, a tie counting one half (average ranks). It equals
/// `sklearn.metrics.roc_auc_score`. Runs in O(n log n); the pair count is kept in integers, so the only
/// rounding is the final division.
///
/// # Errors
///
/// [`EvalError::LengthMismatch`], [`EvalError::Empty`], [`EvalError::NanScore`], [`EvalError::NoPositives`]
/// or [`EvalError::NoNegatives`].
pub fn auroc(scores: &[f32], labels: &[bool]) -> Result<f64, EvalError> {
    let (n_pos, n_neg) = check(scores, labels)?;
    if n_neg == 0 {
        return Err(EvalError::NoNegatives { count: labels.len() });
    }
    let order = ascending_order(scores);
    // twice_u = 2 U = sum over tie groups of pos_g * (2 * negatives below the group + negatives in it).
    let mut twice_u: u128 = 0;
    let mut neg_below: u128 = 0;
    for (pos, neg) in tie_groups(scores, labels, &order) {
        twice_u += pos as u128 * (2 * neg_below + neg as u128);
        neg_below += neg as u128;
    }
    Ok(twice_u as f64 / (2.0 * n_pos as f64 * n_neg as f64))
}

/// Average precision of `scores` against `labels`, as `sklearn.metrics.average_precision_score`.
///
/// `AP = sum_n (R_n - R_{n-1}) P_n` over the thresholds in descending order, where `P_n` and `R_n` are the
/// precision and recall when every sample scoring `>=` the n-th distinct score is flagged, and `R_0 = 0`.
/// Tied scores form one threshold, so the order of tied samples does not matter. No interpolation.
///
/// Labels with no negatives are fine (AP = 1).
///
/// # Errors
///
/// [`EvalError::LengthMismatch`], [`EvalError::Empty`], [`EvalError::NanScore`] or
/// [`EvalError::NoPositives`].
pub fn average_precision(scores: &[f32], labels: &[bool]) -> Result<f64, EvalError> {
    let (n_pos, _) = check(scores, labels)?;
    let order = ascending_order(scores);
    // Sum pos·P_n first and divide by n_pos once: a perfect ranking then gives exactly 1.
    let mut weighted = 0.0;
    let (mut tp, mut flagged) = (0usize, 0usize);
    for (pos, neg) in tie_groups(scores, labels, &order).into_iter().rev() {
        tp += pos;
        flagged += pos + neg;
        // R_n - R_{n-1} = pos / n_pos; P_n = tp / flagged.
        weighted += pos as f64 * (tp as f64 / flagged as f64);
    }
    Ok((weighted / n_pos as f64).min(1.0))
}

/// The score threshold above which a sample counts as anomalous, as PyOD sets `threshold_`: the
/// `(1 - contamination)` quantile of the training scores, with the linear interpolation of
/// `numpy.percentile`'s default method.
///
/// With the training scores sorted as `x_0 <= ... <= x_{n-1}` and `h = (n - 1)(1 - contamination)`, this is
/// `x_floor(h) + (h - floor(h)) (x_floor(h)+1 - x_floor(h))`, computed in `f64` and rounded to `f32`.
///
/// # Errors
///
/// [`EvalError::Contamination`] unless `0 < contamination <= 0.5` (NaN included), then [`EvalError::Empty`]
/// or [`EvalError::NanScore`].
pub fn contamination_threshold(train_scores: &[f32], contamination: f64) -> Result<f32, EvalError> {
    if !(contamination > 0.0 && contamination <= 0.5) {
        return Err(EvalError::Contamination { value: contamination });
    }
    check_scores(train_scores)?;
    let mut sorted: Vec<f64> = train_scores.iter().map(|&s| f64::from(s)).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * (1.0 - contamination);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b, t) = (sorted[lo], sorted[hi], h - lo as f64);
    let value = if a == b {
        // Also keeps equal infinities from turning into inf - inf = NaN.
        a
    } else if t >= 0.5 {
        // numpy's `_lerp` interpolates from the nearer end, for symmetry and exactness at t = 1.
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    };
    Ok(value as f32)
}

/// Binary predictions: 1 where `score > threshold` (strictly), else 0. A NaN score gives 0.
pub fn predict(scores: &[f32], threshold: f32) -> Vec<u8> {
    scores.iter().map(|&s| u8::from(s > threshold)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const F: bool = false;
    const T: bool = true;

    fn assert_close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected}, got {actual} (tolerance {tol})"
        );
    }

    /// O(n^2) reference: the share of (positive, negative) pairs in which the positive scores higher,
    /// a tie counting one half.
    fn auroc_pairs(scores: &[f32], labels: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    if si > sj {
                        wins += 1.0;
                    } else if si == sj {
                        wins += 0.5;
                    }
                }
            }
        }
        wins / pairs
    }

    /// O(n^2) reference for AP: one threshold per distinct score, precision and recall counted from scratch.
    fn average_precision_thresholds(scores: &[f32], labels: &[bool]) -> f64 {
        let mut thresholds: Vec<f32> = scores.to_vec();
        thresholds.sort_by(|a, b| b.partial_cmp(a).unwrap());
        thresholds.dedup_by(|a, b| a == b);
        let n_pos = labels.iter().filter(|&&l| l).count() as f64;
        let (mut ap, mut prev_recall) = (0.0, 0.0);
        for t in thresholds {
            let flagged = scores.iter().filter(|&&s| s >= t).count() as f64;
            let tp = scores.iter().zip(labels).filter(|&(&s, &l)| s >= t && l).count() as f64;
            let recall = tp / n_pos;
            ap += (recall - prev_recall) * (tp / flagged);
            prev_recall = recall;
        }
        ap
    }

    // Reference case drawn with numpy and scored with scikit-learn 1.9.1:
    //   rng = np.random.default_rng(7)
    //   s = rng.integers(0, 10, size=20).astype(np.float64) / 8.0
    //   y = rng.integers(0, 2, size=20).astype(bool)
    //   roc_auc_score(y, s) -> 0.6098901098901099
    //   average_precision_score(y, s) -> 0.7684178001485693
    const REF_SCORES: [f32; 20] = [
        1.125, 0.75, 0.75, 1.0, 0.625, 0.875, 1.0, 0.25, 0.0, 0.375, 0.25, 1.0, 1.125, 0.0, 0.5, 1.0, 0.125, 0.875,
        0.125, 0.5,
    ];
    const REF_LABELS: [bool; 20] = [T, F, F, F, T, F, T, F, F, T, T, T, T, T, T, T, T, T, F, T];

    #[test]
    fn auroc_perfect_separation_is_one() {
        let auc = auroc(&[0.1, 0.2, 0.9, 0.8], &[F, F, T, T]).unwrap();
        assert_close(auc, 1.0, 0.0);
    }

    #[test]
    fn auroc_reversed_is_zero() {
        let auc = auroc(&[0.9, 0.8, 0.1, 0.2], &[F, F, T, T]).unwrap();
        assert_close(auc, 0.0, 0.0);
    }

    #[test]
    fn auroc_all_tied_is_half() {
        let auc = auroc(&[0.3; 5], &[F, T, T, F, F]).unwrap();
        assert_close(auc, 0.5, 0.0);
    }

    #[test]
    fn auroc_hand_case() {
        // Positives {0.35, 0.8}, negatives {0.1, 0.4}: 0.35 beats 0.1 only, 0.8 beats both: 3 of 4 pairs.
        let auc = auroc(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]).unwrap();
        assert_close(auc, 0.75, 1e-15);
    }

    #[test]
    fn auroc_hand_case_with_ties() {
        // Positives {0.5, 0.9}, negatives {0.5, 0.2}: pairs 0.5/0.5 tie (1/2), the other three are wins.
        // (scikit-learn: roc_auc_score([1, 0, 0, 1], [0.5, 0.5, 0.2, 0.9]) -> 0.875)
        let auc = auroc(&[0.5, 0.5, 0.2, 0.9], &[T, F, F, T]).unwrap();
        assert_close(auc, 0.875, 1e-15);
    }

    #[test]
    fn auroc_treats_signed_zeros_as_tied() {
        let auc = auroc(&[-0.0, 0.0, -1.0], &[T, F, F]).unwrap();
        assert_close(auc, 0.75, 1e-15);
    }

    #[test]
    fn auroc_matches_sklearn_reference() {
        assert_close(auroc(&REF_SCORES, &REF_LABELS).unwrap(), 0.609_890_109_890_109_9, 1e-12);
    }

    #[test]
    fn auroc_rejects_length_mismatch() {
        let err = auroc(&[0.1, 0.2, 0.3], &[F, T, F, T]).unwrap_err();
        assert_eq!(err, EvalError::LengthMismatch { scores: 3, labels: 4 });
        assert_eq!(err.to_string(), "3 scores but 4 labels");
    }

    #[test]
    fn auroc_rejects_empty() {
        assert_eq!(auroc(&[], &[]).unwrap_err(), EvalError::Empty);
    }

    #[test]
    fn auroc_rejects_no_positives() {
        let err = auroc(&[0.1, 0.2], &[F, F]).unwrap_err();
        assert_eq!(err, EvalError::NoPositives { count: 2 });
        assert!(err.to_string().contains("no anomalies"), "{err}");
    }

    #[test]
    fn auroc_rejects_no_negatives() {
        let err = auroc(&[0.1, 0.2, 0.3], &[T, T, T]).unwrap_err();
        assert_eq!(err, EvalError::NoNegatives { count: 3 });
    }

    #[test]
    fn auroc_rejects_nan_score() {
        let err = auroc(&[0.1, f32::NAN, 0.3], &[T, F, F]).unwrap_err();
        assert_eq!(err, EvalError::NanScore { index: 1 });
        assert_eq!(err.to_string(), "score at index 1 is NaN");
    }

    #[test]
    fn average_precision_sklearn_doc_example() {
        // The example in scikit-learn's docs of average_precision_score.
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]).unwrap();
        assert_close(ap, 0.833_333_333_333_333_3, 1e-12);
    }

    #[test]
    fn average_precision_perfect_is_one() {
        let ap = average_precision(&[0.1, 0.2, 0.9, 0.8, 0.7], &[F, F, T, T, T]).unwrap();
        assert_close(ap, 1.0, 1e-15);
    }

    #[test]
    fn average_precision_groups_ties() {
        // Threshold 0.7 flags three samples, one positive: R = 1/2, P = 1/3. Threshold 0.1 flags all four:
        // R = 1, P = 1/2. AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12. Breaking the tie with the positive first would
        // give 1/2 * 1 + 1/2 * 1/2 = 3/4 instead.
        // (scikit-learn: average_precision_score([1, 0, 0, 1], [0.7, 0.7, 0.7, 0.1]) -> 0.41666666666666663)
        let ap = average_precision(&[0.7, 0.7, 0.7, 0.1], &[T, F, F, T]).unwrap();
        assert_close(ap, 5.0 / 12.0, 1e-15);
    }

    #[test]
    fn average_precision_without_negatives_is_one() {
        let ap = average_precision(&[0.7, 0.2, 0.1], &[T, T, T]).unwrap();
        assert_close(ap, 1.0, 1e-15);
    }

    #[test]
    fn average_precision_matches_sklearn_reference() {
        assert_close(
            average_precision(&REF_SCORES, &REF_LABELS).unwrap(),
            0.768_417_800_148_569_3,
            1e-12,
        );
    }

    #[test]
    fn average_precision_rejects_no_positives() {
        let err = average_precision(&[0.1, 0.2], &[F, F]).unwrap_err();
        assert_eq!(err, EvalError::NoPositives { count: 2 });
    }

    #[test]
    fn average_precision_rejects_bad_input() {
        assert_eq!(
            average_precision(&[0.1], &[T, F]).unwrap_err(),
            EvalError::LengthMismatch { scores: 1, labels: 2 }
        );
        assert_eq!(average_precision(&[], &[]).unwrap_err(), EvalError::Empty);
        assert_eq!(
            average_precision(&[0.1, 0.2, f32::NAN], &[T, F, T]).unwrap_err(),
            EvalError::NanScore { index: 2 }
        );
    }

    #[test]
    fn contamination_threshold_matches_numpy_percentile() {
        // numpy.percentile([3, 1, 5, 2, 4], [90, 50, 75]) -> [4.6, 3.0, 4.0]:
        // sorted [1, 2, 3, 4, 5], h = 4 q: q = 0.9 -> h = 3.6 -> 4 + 0.6 (5 - 4) = 4.6; q = 0.5 -> h = 2 -> 3;
        // q = 0.75 -> h = 3 -> 4.
        let train = [3.0, 1.0, 5.0, 2.0, 4.0];
        assert_close(f64::from(contamination_threshold(&train, 0.1).unwrap()), 4.6, 1e-6);
        assert_close(f64::from(contamination_threshold(&train, 0.5).unwrap()), 3.0, 0.0);
        assert_close(f64::from(contamination_threshold(&train, 0.25).unwrap()), 4.0, 0.0);
        // numpy.percentile([10, 0, 20, 30], 80) -> 24.000000000000004: h = 3 * 0.8 = 2.4 -> 20 + 0.4 * 10.
        let train = [10.0, 0.0, 20.0, 30.0];
        assert_close(f64::from(contamination_threshold(&train, 0.2).unwrap()), 24.0, 1e-5);
    }

    #[test]
    fn contamination_threshold_flags_the_contaminated_share() {
        let train: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let threshold = contamination_threshold(&train, 0.1).unwrap();
        let flagged: u32 = predict(&train, threshold).iter().map(|&p| u32::from(p)).sum();
        assert_eq!(flagged, 10, "threshold {threshold}");
    }

    #[test]
    fn contamination_threshold_rejects_zero() {
        let err = contamination_threshold(&[1.0, 2.0], 0.0).unwrap_err();
        assert_eq!(err, EvalError::Contamination { value: 0.0 });
        assert_eq!(err.to_string(), "contamination must be in (0, 0.5], got 0");
    }

    #[test]
    fn contamination_threshold_rejects_above_half() {
        let err = contamination_threshold(&[1.0, 2.0], 0.7).unwrap_err();
        assert_eq!(err, EvalError::Contamination { value: 0.7 });
        assert_eq!(err.to_string(), "contamination must be in (0, 0.5], got 0.7");
    }

    #[test]
    fn contamination_threshold_rejects_nan_contamination() {
        let err = contamination_threshold(&[1.0, 2.0], f64::NAN).unwrap_err();
        assert!(matches!(err, EvalError::Contamination { value } if value.is_nan()));
    }

    #[test]
    fn contamination_threshold_rejects_bad_scores() {
        assert_eq!(contamination_threshold(&[], 0.1).unwrap_err(), EvalError::Empty);
        assert_eq!(
            contamination_threshold(&[1.0, f32::NAN], 0.1).unwrap_err(),
            EvalError::NanScore { index: 1 }
        );
    }

    #[test]
    fn predict_is_strictly_greater() {
        assert_eq!(predict(&[0.1, 0.5, 0.6, f32::NAN, -1.0], 0.5), vec![0, 0, 1, 0, 0]);
    }

    /// Scores from a small set of values, so ties are common, and labels with both classes.
    fn scored_labels() -> impl Strategy<Value = (Vec<f32>, Vec<bool>)> {
        prop::collection::vec((0u8..6, any::<bool>()), 2..40).prop_map(|pairs| {
            let scores = pairs.iter().map(|&(s, _)| f32::from(s) * 0.25 - 0.5).collect();
            let mut labels: Vec<bool> = pairs.iter().map(|&(_, l)| l).collect();
            labels[0] = true;
            labels[1] = false;
            (scores, labels)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn auroc_matches_pair_counting((scores, labels) in scored_labels()) {
            let fast = auroc(&scores, &labels).unwrap();
            let slow = auroc_pairs(&scores, &labels);
            prop_assert!((fast - slow).abs() <= 1e-12, "auroc {fast}, pair counting {slow}");
        }

        #[test]
        fn auroc_of_flipped_labels_is_complement((scores, labels) in scored_labels()) {
            let flipped: Vec<bool> = labels.iter().map(|&l| !l).collect();
            let sum = auroc(&scores, &labels).unwrap() + auroc(&scores, &flipped).unwrap();
            prop_assert!((sum - 1.0).abs() <= 1e-12, "auc + flipped auc = {sum}");
        }

        #[test]
        fn average_precision_matches_threshold_sweep((scores, labels) in scored_labels()) {
            let fast = average_precision(&scores, &labels).unwrap();
            let slow = average_precision_thresholds(&scores, &labels);
            prop_assert!((fast - slow).abs() <= 1e-12, "ap {fast}, threshold sweep {slow}");
        }
    }
}
