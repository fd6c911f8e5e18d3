//! Conservative threshold selection: the largest cut-off whose false-delete rate is provably below a target.
//!
//! Items are `(score, reused)` pairs where a *smaller* score means "more deletable" (a probability of reuse, or
//! minus the idle time for the recency rule). Flagging every item with `score <= t` is acceptable when
//! 1. the one-sided 95% Clopper-Pearson upper bound of the pooled false-delete rate is at most the target, and
//! 2. on every calibration group (a past cut) that has flagged items, that group's own upper bound is at most the
//!    target too ([`PerGroup::Bound`], the default), or at least its realized rate is ([`PerGroup::Realized`]),
//!
//! so that a threshold which only holds on average over drifting cuts is refused: it must hold on the worst of
//! them. The largest acceptable `t` wins; `None` means nothing can be flagged at that target.

/// One scored, labelled item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub reused: bool,
}

/// What a selected threshold flags on the calibration data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    /// Flag `score <= threshold`.
    pub threshold: f64,
    pub flagged: u64,
    pub false_deletes: u64,
    pub upper_95: f64,
}

/// What each calibration group must show besides the pooled bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerGroup {
    /// The group's own 95% upper bound is at most the target (each past cut alone proves it).
    #[default]
    Bound,
    /// The group's realized rate is at most the target.
    Realized,
}

/// Selects the threshold for `target` over calibration `groups` (see the module docs).
pub fn select_threshold(groups: &[Vec<Scored>], target: f64, per_group: PerGroup) -> Option<Selection> {
    let mut all: Vec<(f64, bool, usize)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, items)| {
            items
                .iter()
                .filter(|s| s.score.is_finite())
                .map(move |s| (s.score, s.reused, g))
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut flagged = vec![0u64; groups.len()];
    let mut errors = vec![0u64; groups.len()];
    let (mut n, mut k) = (0u64, 0u64);
    let mut best = None;
    let mut i = 0;
    while i < all.len() {
        // Take every item tied at this score together: a threshold cannot split ties.
        let score = all[i].0;
        while i < all.len() && all[i].0 == score {
            let (_, reused, g) = all[i];
            flagged[g] += 1;
            n += 1;
            if reused {
                errors[g] += 1;
                k += 1;
            }
            i += 1;
        }
        // Cheap rejections first: the point estimate must already be under the target.
        if (k as f64) > target * n as f64 {
            continue;
        }
        let groups_ok = flagged.iter().zip(&errors).all(|(&f, &e)| {
            f == 0
                || match per_group {
                    PerGroup::Realized => (e as f64) <= target * f as f64,
                    PerGroup::Bound => crate::stats::upper_bound_at_most(e, f, target),
                }
        });
        if groups_ok && crate::stats::upper_bound_at_most(k, n, target) {
            best = Some((score, n, k));
        }
    }
    best.map(|(threshold, flagged, false_deletes)| Selection {
        threshold,
        flagged,
        false_deletes,
        upper_95: crate::stats::upper_95(false_deletes, flagged),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(scores_reused: &[(f64, bool)]) -> Vec<Scored> {
        scores_reused
            .iter()
            .map(|&(score, reused)| Scored { score, reused })
            .collect()
    }

    #[test]
    fn needs_enough_evidence() {
        // 298 clean items cannot prove a 1% bound; 299 can (1 - 0.05^(1/299) < 1%).
        let clean: Vec<(f64, bool)> = (0..298).map(|i| (i as f64 / 1000.0, false)).collect();
        assert!(select_threshold(&[items(&clean)], 0.01, PerGroup::Bound).is_none());
        let mut more = clean.clone();
        more.push((0.2999, false));
        more.push((0.9, true));
        let s = select_threshold(&[items(&more)], 0.01, PerGroup::Bound).expect("299 clean items suffice");
        assert_eq!(s.flagged, 299);
        assert_eq!(s.false_deletes, 0);
        assert!((s.threshold - 0.2999).abs() < 1e-12);
        assert!(s.upper_95 <= 0.01);
    }

    #[test]
    fn every_group_must_hold() {
        // Group 0 is large and clean; group 1 has its flagged items mostly reused (a burst).
        let g0: Vec<(f64, bool)> = (0..5_000).map(|i| (i as f64 / 10_000.0, false)).collect();
        let g1: Vec<(f64, bool)> = (0..20).map(|i| (0.3 + i as f64 / 1000.0, i % 2 == 0)).collect();
        for rule in [PerGroup::Bound, PerGroup::Realized] {
            let s = select_threshold(&[items(&g0), items(&g1)], 0.01, rule).expect("a threshold below the burst");
            assert!(s.threshold < 0.3, "{rule:?}: {}", s.threshold);
        }
    }

    #[test]
    fn every_group_must_prove_its_bound() {
        // Group 0 proves the bound alone; group 1 flags 100 clean items at the same scores, too few to prove 1% by
        // itself (its realized rate is 0). Pooled they would pass; with per-group bounds only a threshold below
        // group 1's scores is acceptable.
        let g0: Vec<(f64, bool)> = (0..1_000).map(|i| (i as f64 / 10_000.0, false)).collect();
        let g1: Vec<(f64, bool)> = (0..100).map(|i| (0.05 + i as f64 / 10_000.0, false)).collect();
        let groups = [items(&g0), items(&g1)];
        let realized = select_threshold(&groups, 0.01, PerGroup::Realized).expect("realized rates are 0");
        assert!(realized.threshold >= 0.0999, "{}", realized.threshold);
        let bound = select_threshold(&groups, 0.01, PerGroup::Bound).expect("group 0 below group 1's scores");
        assert!(bound.threshold < 0.05, "{}", bound.threshold);
        assert!(bound.flagged >= 299);
    }
}
