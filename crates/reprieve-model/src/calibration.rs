//! Platt scaling: maps a model's raw log-odds `z` to a calibrated probability `sigmoid(a * z + b)`, fitted on a
//! cut the model was not trained on.

use serde::{Deserialize, Serialize};

/// A fitted Platt calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// The calibrated log-odds of raw log-odds `z`.
    pub fn logit(&self, z: f64) -> f64 {
        self.a * z + self.b
    }

    /// Fits `a, b` by Newton's method on the log loss, with Platt's smoothed targets (which keep the fit finite
    /// when the classes separate). Falls back to the identity when there is nothing to fit.
    pub fn fit(logits: &[f64], reused: &[bool]) -> Platt {
        let positives = reused.iter().filter(|&&r| r).count() as f64;
        let negatives = reused.len() as f64 - positives;
        if positives == 0.0 || negatives == 0.0 {
            return Platt::IDENTITY;
        }
        let hi = (positives + 1.0) / (positives + 2.0);
        let lo = 1.0 / (negatives + 2.0);
        let (mut a, mut b) = (1.0f64, 0.0f64);
        for _ in 0..100 {
            // Gradient and Hessian of the mean log loss in (a, b).
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (&z, &r) in logits.iter().zip(reused) {
                let t = if r { hi } else { lo };
                let p = sigmoid(a * z + b);
                let d = p - t;
                let w = (p * (1.0 - p)).max(1e-12);
                ga += d * z;
                gb += d;
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            let reg = 1e-9 * logits.len() as f64;
            let (haa, hbb) = (haa + reg, hbb + reg);
            let det = haa * hbb - hab * hab;
            if !det.is_finite() || det.abs() < 1e-300 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() < 1e-10 && db.abs() < 1e-10 {
                break;
            }
        }
        if a.is_finite() && b.is_finite() {
            Platt { a, b }
        } else {
            Platt::IDENTITY
        }
    }
}

/// The logistic function, safe for any finite input.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_scaling() {
        // Labels drawn deterministically from sigmoid(2z - 1).
        let mut logits = Vec::new();
        let mut reused = Vec::new();
        for i in 0..4_000 {
            let z = (i as f64 / 4_000.0) * 6.0 - 3.0;
            let p = sigmoid(2.0 * z - 1.0);
            // Low-discrepancy "randomness": golden-ratio sequence.
            let u = (i as f64 * 0.618_033_988_75).fract();
            logits.push(z);
            reused.push(u < p);
        }
        let fit = Platt::fit(&logits, &reused);
        assert!((fit.a - 2.0).abs() < 0.25, "{fit:?}");
        assert!((fit.b + 1.0).abs() < 0.25, "{fit:?}");
        assert_eq!(Platt::fit(&[1.0, 2.0], &[true, true]), Platt::IDENTITY);
    }
}
