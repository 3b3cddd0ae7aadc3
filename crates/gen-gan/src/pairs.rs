//! The training pairs of a source-conditioned (DAGAN) GAN.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use gen_core::{Batch, BatchSource, CoreError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A labelled data set seen as pairs: sample `i` comes with a partner drawn from the other
/// samples of its class, side by side as one row (`[source | partner]`, twice the width) with
/// `i`'s label. These are the real pairs a source-conditioned discriminator learns from; a
/// class with a single sample is paired with itself. The partners of a batch are drawn from
/// the seed and the batch's indices alone, so a trainer that shuffles by epoch seeds gets new
/// partners every epoch and the same ones when it resumes.
#[derive(Debug)]
pub struct SourcePairs<'a, S: ?Sized> {
    inner: &'a S,
    labels: Vec<i64>,
    by_class: Vec<Vec<usize>>,
    /// Position of each sample in its class's list.
    position: Vec<usize>,
    seed: u64,
}

impl<'a, S: ?Sized> SourcePairs<'a, S> {
    /// Pairs of `inner`'s samples, whose classes are `labels` (one per sample, from 0), the
    /// partners drawn with `seed`.
    ///
    /// # Errors
    /// [`CoreError::Data`] when there are no labels or a label is negative.
    pub fn new(inner: &'a S, labels: Vec<i64>, seed: u64) -> Result<Self, CoreError> {
        if labels.is_empty() {
            return Err(CoreError::Data(
                "source pairs need labelled samples, and there are none".into(),
            ));
        }
        if let Some(bad) = labels.iter().find(|&&l| l < 0) {
            return Err(CoreError::Data(format!(
                "source pairs need class labels from 0, got {bad}"
            )));
        }
        let k = labels.iter().max().map_or(0, |&m| m as usize + 1);
        let mut by_class = vec![Vec::new(); k];
        let mut position = Vec::with_capacity(labels.len());
        for (i, &l) in labels.iter().enumerate() {
            position.push(by_class[l as usize].len());
            by_class[l as usize].push(i);
        }
        Ok(Self {
            inner,
            labels,
            by_class,
            position,
            seed,
        })
    }

    /// The partners of the samples at `indices`: random other samples of their classes,
    /// drawn from the seed and `indices` (the same indices in the same order get the same
    /// partners).
    pub fn partners(&self, indices: &[usize]) -> Vec<usize> {
        // FNV-1a over the indices, mixed with the seed.
        let key = indices.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &i| {
            (h ^ i as u64).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ key);
        indices.iter().map(|&i| self.partner(i, &mut rng)).collect()
    }

    /// A random other sample of `i`'s class (`i` itself when it is alone in its class).
    fn partner(&self, i: usize, rng: &mut ChaCha8Rng) -> usize {
        let class = &self.by_class[self.labels[i] as usize];
        if class.len() < 2 {
            return i;
        }
        let r = rng.random_range(0..class.len() - 1);
        // Skip i's own place: positions 0..len-1 map onto the class without i.
        class[if r >= self.position[i] { r + 1 } else { r }]
    }
}

impl<B: Backend, S: BatchSource<B> + ?Sized> BatchSource<B> for SourcePairs<'_, S> {
    fn num_samples(&self) -> usize {
        self.labels.len()
    }

    fn d_input(&self) -> usize {
        2 * self.inner.d_input()
    }

    /// # Panics
    /// If an index is out of range, or `inner` has fewer samples than labels.
    fn batch(&self, indices: &[usize], device: &B::Device) -> Batch<B> {
        let partners = self.partners(indices);
        let source = self.inner.batch(indices, device);
        let partner = self.inner.batch(&partners, device);
        let y = Tensor::from_data(
            burn::tensor::TensorData::new(
                indices.iter().map(|&i| self.labels[i]).collect::<Vec<_>>(),
                [indices.len()],
            ),
            device,
        );
        Batch {
            x: Tensor::cat(vec![source.x, partner.x], 1),
            y: Some(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;
    use gen_core::testing::Rows;

    #[test]
    fn partners_are_other_samples_of_the_same_class_side_by_side() {
        // Sample i is the row [i, i]; classes 0, 1, 0, 1, 0, 2.
        let labels = vec![0, 1, 0, 1, 0, 2];
        let rows = Rows {
            x: (0..6).flat_map(|i| [i as f32, i as f32]).collect(),
            d: 2,
        };
        let pairs = SourcePairs::new(&rows, labels.clone(), 7).unwrap();
        assert_eq!(BatchSource::<TestBackend>::d_input(&pairs), 4);
        let device = Default::default();
        let mut seen = std::collections::BTreeSet::new();
        for round in 0..50 {
            // The trainer's batches: the samples in a new order each epoch.
            let mut order = vec![0, 1, 2, 3, 4, 5];
            order.rotate_left(round % 6);
            if round % 2 == 1 {
                order.reverse();
            }
            let b: Batch<TestBackend> = pairs.batch(&order, &device);
            let x: Vec<f32> = b.x.into_data().to_vec().unwrap();
            let y: Vec<i64> = b.y.unwrap().into_data().iter::<i64>().collect();
            assert_eq!(y, order.iter().map(|&i| labels[i]).collect::<Vec<_>>());
            for (&i, row) in order.iter().zip(x.chunks(4)) {
                assert_eq!(&row[..2], &[i as f32, i as f32], "the source comes first");
                let j = row[2] as usize;
                assert_eq!(row[3], row[2]);
                assert_eq!(labels[j], labels[i], "partner {j} of {i} is of another class");
                if i == 5 {
                    assert_eq!(j, 5, "the lone sample of class 2 is its own partner");
                } else {
                    assert_ne!(j, i, "a sample with classmates is not its own partner");
                }
                seen.insert((i, j));
            }
        }
        // Every classmate is drawn: 0, 2 and 4 pair with each other in all 6 ways, 1 and 3 both.
        for (i, j) in [(0, 2), (0, 4), (2, 0), (2, 4), (4, 0), (4, 2), (1, 3), (3, 1)] {
            assert!(seen.contains(&(i, j)), "{i} was never paired with {j}");
        }
        // A resumed run sees the same batches, so it must get the same partners.
        let again = SourcePairs::new(&rows, labels, 7).unwrap();
        for order in [[0, 1, 2, 3, 4, 5], [4, 2, 0, 5, 3, 1]] {
            assert_eq!(pairs.partners(&order), again.partners(&order));
        }
    }

    #[test]
    fn unlabelled_or_negative_labels_are_refused() {
        let rows = Rows { x: vec![0.0; 4], d: 2 };
        assert!(
            SourcePairs::new(&rows, vec![], 0)
                .unwrap_err()
                .to_string()
                .contains("none")
        );
        assert!(
            SourcePairs::new(&rows, vec![0, -1], 0)
                .unwrap_err()
                .to_string()
                .contains("-1")
        );
    }
}
