//! An ensemble of autoencoder detectors: each member's scores are standardised by their mean and
//! standard deviation on the normal training data and averaged, so one member's unlucky start or
//! scale does not decide a row's rank. The members differ in their initialisation and batch order
//! (their seeds).

use burn::tensor::backend::{AutodiffBackend, Backend};
use gen_core::BatchSource;
use gen_core::eval;

use super::{AnomalyDetector, AnomalyError, ScoreKind, Standardised};

/// Several [`AnomalyDetector`]s whose standardised scores are averaged.
#[derive(Debug)]
pub struct EnsembleDetector<B: Backend> {
    members: Vec<AnomalyDetector<B>>,
    norms: Vec<Standardised>,
    train_scores: Vec<f32>,
    contamination: f64,
    threshold: f32,
}

impl<B: Backend> EnsembleDetector<B> {
    /// Combines detectors fitted to the same normal data: each member's training scores give
    /// its standardisation, their average the ensemble's training scores, and the threshold
    /// flags a share `contamination` of them.
    ///
    /// # Errors
    /// If `members` is empty, the members were fitted on different numbers of rows, or
    /// `contamination` is not in (0, 0.5].
    pub fn new(members: Vec<AnomalyDetector<B>>, contamination: f64) -> Result<Self, AnomalyError> {
        let Some(first) = members.first() else {
            return Err(AnomalyError::Data("an ensemble needs at least one member".into()));
        };
        let n = first.train_scores().len();
        if let Some((i, m)) = members.iter().enumerate().find(|(_, m)| m.train_scores().len() != n) {
            return Err(AnomalyError::Data(format!(
                "ensemble member {i} was fitted on {} rows, member 0 on {n}",
                m.train_scores().len()
            )));
        }
        let norms: Vec<Standardised> = members
            .iter()
            .map(|m| Standardised::fit(m.train_scores().iter().copied()))
            .collect();
        let per_member: Vec<Vec<f32>> = members.iter().map(|m| m.train_scores().to_vec()).collect();
        let train_scores = average(&per_member, &norms);
        let threshold = eval::contamination_threshold(&train_scores, contamination)?;
        Ok(Self {
            members,
            norms,
            train_scores,
            contamination,
            threshold,
        })
    }

    /// Trains `members` autoencoders of `config` on `normal` data, member `k` with seed
    /// `train.seed + k` (no validation split), each scoring by `kind`, and combines them.
    ///
    /// # Errors
    /// If `members` is 0, or as [`AnomalyDetector::fit`] and [`EnsembleDetector::new`].
    pub fn fit<A, D>(
        config: &crate::AutoencoderConfig,
        train: &gen_core::train::TrainConfig,
        members: usize,
        normal: &D,
        kind: ScoreKind,
        contamination: f64,
        device: &B::Device,
    ) -> Result<Self, AnomalyError>
    where
        A: AutodiffBackend<InnerBackend = B> + Backend<Device = B::Device>,
        D: BatchSource<A> + BatchSource<B> + ?Sized,
    {
        if members == 0 {
            return Err(AnomalyError::Data("an ensemble needs at least one member".into()));
        }
        let detectors = (0..members as u64)
            .map(|k| {
                let mut member = train.clone();
                member.seed = train.seed.wrapping_add(k);
                AnomalyDetector::fit::<A, D>(config, &member, normal, kind, contamination, device)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(detectors, contamination)
    }

    /// The members.
    pub fn members(&self) -> &[AnomalyDetector<B>] {
        &self.members
    }

    /// The ensemble's scores of the normal training data.
    pub fn train_scores(&self) -> &[f32] {
        &self.train_scores
    }

    /// The score above which a sample is predicted anomalous.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The contamination rate the threshold was set for.
    pub fn contamination(&self) -> f64 {
        self.contamination
    }

    /// The ensemble's score of every sample of a data source: the mean of the members'
    /// standardised scores.
    pub fn score_source<D: BatchSource<B> + ?Sized>(&self, data: &D, device: &B::Device) -> Vec<f32> {
        let per_member: Vec<Vec<f32>> = self.members.iter().map(|m| m.score_source(data, device)).collect();
        average(&per_member, &self.norms)
    }

    /// 1 for samples scored above the threshold, else 0.
    pub fn predict(&self, scores: &[f32]) -> Vec<u8> {
        eval::predict(scores, self.threshold)
    }
}

/// The mean over members of each sample's standardised score.
pub(crate) fn average(per_member: &[Vec<f32>], norms: &[Standardised]) -> Vec<f32> {
    let n = per_member.first().map_or(0, Vec::len);
    let k = per_member.len().max(1) as f32;
    (0..n)
        .map(|i| per_member.iter().zip(norms).map(|(s, z)| z.apply(s[i])).sum::<f32>() / k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AutoencoderConfig;
    use crate::test_util::{TestAutodiffBackend, TestBackend};
    use gen_core::train::TrainConfig;

    #[test]
    fn average_standardises_each_member_before_the_mean() {
        let a = vec![1.0, 3.0];
        let b = vec![100.0, 300.0];
        let norms = [
            Standardised::fit(a.iter().copied()),
            Standardised::fit(b.iter().copied()),
        ];
        // Both members rank the rows alike; standardised, each gives -1 and 1.
        assert_eq!(average(&[a, b], &norms), vec![-1.0, 1.0]);
    }

    /// Three members on the embedded digits' zeros: the ensemble flags about the contamination
    /// share of its training rows, ranks the other digits above the zeros, and is refused when
    /// empty.
    #[test]
    fn an_ensemble_of_three_ranks_other_digits_above_the_normal_class() {
        let digits = gen_data::digits().unwrap();
        let zeros = digits.filter_labels(&[0]).unwrap();
        let others = digits.filter_labels(&[1, 7]).unwrap().take(100);
        let device = Default::default();
        let config = AutoencoderConfig::mlp(64, vec![16], 4);
        let train = TrainConfig::default().with_num_epochs(15).with_batch_size(16);
        let ensemble = EnsembleDetector::<TestBackend>::fit::<TestAutodiffBackend, _>(
            &config,
            &train,
            3,
            &zeros,
            ScoreKind::Reconstruction,
            0.1,
            &device,
        )
        .unwrap();
        assert_eq!(ensemble.members().len(), 3);
        let flagged = ensemble
            .predict(ensemble.train_scores())
            .iter()
            .filter(|&&p| p == 1)
            .count();
        let share = flagged as f64 / zeros.len() as f64;
        assert!((0.05..=0.15).contains(&share), "flagged {share} of the training rows");
        let normal = ensemble.score_source(&zeros, &device);
        let anomalous = ensemble.score_source(&others, &device);
        let mut scores = normal.clone();
        scores.extend(&anomalous);
        let labels: Vec<bool> = (0..scores.len()).map(|i| i >= normal.len()).collect();
        let auroc = eval::auroc(&scores, &labels).unwrap();
        assert!(auroc > 0.9, "AUROC {auroc}");
        assert!(EnsembleDetector::<TestBackend>::new(Vec::new(), 0.1).is_err());
    }
}
