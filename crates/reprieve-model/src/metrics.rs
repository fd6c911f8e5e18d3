//! Evaluation metrics of probabilistic predictions: ROC AUC, Brier score, log loss and a calibration table.

use serde::{Deserialize, Serialize};

/// Area under the ROC curve (probability that a random reused object outranks a random unused one); ties
/// count half. `None` when one class is absent.
pub fn roc_auc(scores: &[f64], reused: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(reused.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of ranks of the positives, with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += avg_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Mean squared error of the probabilities.
pub fn brier(probabilities: &[f64], reused: &[bool]) -> f64 {
    if probabilities.is_empty() {
        return 0.0;
    }
    let sum: f64 = probabilities
        .iter()
        .zip(reused)
        .map(|(p, &r)| (p - if r { 1.0 } else { 0.0 }).powi(2))
        .sum();
    sum / probabilities.len() as f64
}

/// Mean negative log-likelihood, probabilities clipped to [1e-12, 1 - 1e-12].
pub fn log_loss(probabilities: &[f64], reused: &[bool]) -> f64 {
    if probabilities.is_empty() {
        return 0.0;
    }
    let sum: f64 = probabilities
        .iter()
        .zip(reused)
        .map(|(p, &r)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            -(if r { p.ln() } else { (1.0 - p).ln() })
        })
        .sum();
    sum / probabilities.len() as f64
}

/// One bin of a calibration (reliability) table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Reliability table over `bins` equal-width probability bins (empty bins omitted).
pub fn calibration_table(probabilities: &[f64], reused: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0u64, 0.0f64, 0u64); bins];
    for (&p, &r) in probabilities.iter().zip(reused) {
        let b = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += u64::from(r);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, &(count, psum, pos))| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count,
            mean_predicted: psum / count as f64,
            observed_rate: pos as f64 / count as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_extremes_and_ties() {
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(roc_auc(&[0.5], &[true]), None);
    }

    #[test]
    fn calibration_bins() {
        let t = calibration_table(&[0.05, 0.07, 0.95], &[false, true, true], 10);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].count, 2);
        assert!((t[0].observed_rate - 0.5).abs() < 1e-12);
    }
}
