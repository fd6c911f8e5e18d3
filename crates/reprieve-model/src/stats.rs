//! Binomial confidence bounds: the one-sided Clopper-Pearson upper bound on a false-delete rate.
//!
//! `upper_95(k, n)` is the `p` at which seeing `k` or fewer errors in `n` trials has probability 5%. The
//! feasibility test used in threshold selection, `upper_bound_at_most(k, n, target)`, needs one incomplete-beta
//! evaluation (P[Bin(n, target) <= k] <= 5%) instead of a quantile search.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

const TINY: f64 = 1e-300;

/// Keeps a Lentz denominator off zero.
fn away_from_zero(x: f64) -> f64 {
    if x.abs() < TINY { TINY } else { x }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / away_from_zero(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        // Even step, then odd step, of the continued fraction.
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 / away_from_zero(1.0 + aa * d);
            c = away_from_zero(1.0 + aa / c);
            h *= d * c;
        }
        // The last factor d * c converging to 1 ends the loop.
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Regularised incomplete beta function I_x(a, b).
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Confidence level of the one-sided bounds used everywhere in Reprieve.
pub const CONFIDENCE: f64 = 0.95;

/// Whether the one-sided 95% Clopper-Pearson upper bound of `k` errors in `n` is at most `target`.
pub fn upper_bound_at_most(k: u64, n: u64, target: f64) -> bool {
    if n == 0 || k >= n {
        return false;
    }
    if target >= 1.0 {
        return true;
    }
    if target <= 0.0 {
        return false;
    }
    // upper <= target  <=>  Beta(k+1, n-k) CDF at target >= 95%.
    incomplete_beta((k + 1) as f64, (n - k) as f64, target) >= CONFIDENCE
}

/// One-sided 95% Clopper-Pearson upper bound of the rate, `k` errors in `n` trials (1 when `n` is 0).
pub fn upper_95(k: u64, n: u64) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let (a, b) = ((k + 1) as f64, (n - k) as f64);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if incomplete_beta(a, b, mid) >= CONFIDENCE {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_errors_matches_closed_form() {
        // With k = 0 the bound is 1 - 0.05^(1/n).
        for n in [1u64, 10, 299, 1_000, 1_000_000] {
            let expected = 1.0 - 0.05f64.powf(1.0 / n as f64);
            assert!((upper_95(0, n) - expected).abs() < 1e-9, "n={n}");
        }
        assert!(upper_bound_at_most(0, 300, 0.01));
        assert!(!upper_bound_at_most(0, 298, 0.01));
    }

    #[test]
    fn known_values() {
        // Reference values: the p with P[Bin(n, p) <= k] = 5%, by exact binomial sums.
        assert!((upper_95(5, 100) - 0.102_253_4).abs() < 1e-6, "{}", upper_95(5, 100));
        assert!((upper_95(1, 10) - 0.394_163_3).abs() < 1e-6, "{}", upper_95(1, 10));
        assert_eq!(upper_95(0, 0), 1.0);
        assert_eq!(upper_95(3, 3), 1.0);
        let u = upper_95(10, 10_000);
        assert!(upper_bound_at_most(10, 10_000, u + 1e-9));
        assert!(!upper_bound_at_most(10, 10_000, u - 1e-6));
    }
}
