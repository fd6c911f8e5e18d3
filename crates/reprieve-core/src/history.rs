//! Compact, order-independent summaries of an object's reads before a scoring time.
//!
//! [`HistoryStats`] is the only view of reads that feature extraction gets. It is built by observing reads one at
//! a time, in any order, so the batch scorer can aggregate a log in one streaming pass with bounded memory per
//! object while the server builds the same value from a request's sorted timestamps: both give bit-identical
//! features. Every field is an integer or a bitmap (decayed counters are fixed-point) so that the result does not
//! depend on the order reads arrive in. Reads at or after the scoring time are ignored: no look-ahead.

use serde::{Deserialize, Serialize};

use crate::record::AccessHistory;
use crate::time::{DAY, UnixSeconds, WEEK};

/// How many of the most recent reads are kept individually (for the last-k gaps).
pub const RECENT_CAPACITY: usize = 16;

/// Window lengths, in days, of the read counters.
pub const COUNT_WINDOWS_DAYS: [i64; 5] = [1, 7, 30, 90, 365];

/// Half-lives, in days, of the exponentially decayed read counters.
pub const DECAY_HALF_LIVES_DAYS: [f64; 4] = [1.0, 7.0, 30.0, 180.0];

/// Fixed-point scale of the decayed counters (32 fractional bits).
const DECAY_SCALE: f64 = 4_294_967_296.0;

/// Reads of one object before `at`, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStats {
    /// The scoring time everything is relative to.
    pub at: UnixSeconds,
    /// Reads before `at` (listed and summarised).
    pub count: u64,
    pub first: Option<UnixSeconds>,
    pub last: Option<UnixSeconds>,
    /// Reads in the last 1/7/30/90/365 days (see [`COUNT_WINDOWS_DAYS`]).
    pub window_counts: [u32; 5],
    /// Decayed read counters in 32.32 fixed point (see [`DECAY_HALF_LIVES_DAYS`]).
    pub decayed_fixed: [u64; 4],
    /// Bit `i` set: a read in `[at - (i+1) days, at - i days)`.
    pub day_bits: u128,
    /// Bit `i` set: a read in `[at - (i+1) weeks, at - i weeks)`.
    pub week_bits: u128,
    /// Ages (`at - t`, seconds, saturated at `u32::MAX`) of the most recent reads, ascending; `recent_len` valid.
    pub recent_ages: [u32; RECENT_CAPACITY],
    pub recent_len: u8,
}

impl HistoryStats {
    /// An empty history as seen at `at`.
    pub fn new(at: UnixSeconds) -> Self {
        Self {
            at,
            count: 0,
            first: None,
            last: None,
            window_counts: [0; 5],
            decayed_fixed: [0; 4],
            day_bits: 0,
            week_bits: 0,
            recent_ages: [0; RECENT_CAPACITY],
            recent_len: 0,
        }
    }

    /// Builds the stats of a record's history (listed reads plus summary) as seen at `at`.
    pub fn from_history(history: &AccessHistory, at: UnixSeconds) -> Self {
        let mut stats = Self::new(at);
        for &t in &history.accesses {
            stats.observe(t);
        }
        if let Some(summary) = history.summary {
            stats.observe_summary(summary.count, summary.first, summary.last);
        }
        stats
    }

    /// Records one read. Reads at or after `at` are ignored (they are the future of the scoring time).
    pub fn observe(&mut self, t: UnixSeconds) {
        if t >= self.at {
            return;
        }
        self.count += 1;
        self.mark(t);
    }

    /// Records reads known only in aggregate: `count` reads, the first and last of which may be known. The known
    /// endpoints count as reads in every window; the others only in the total.
    pub fn observe_summary(&mut self, count: u64, first: Option<UnixSeconds>, last: Option<UnixSeconds>) {
        let mut marked = 0u64;
        if let Some(l) = last.filter(|&l| l < self.at) {
            self.mark(l);
            marked += 1;
        }
        if let Some(f) = first.filter(|&f| f < self.at && Some(f) != last && count >= 2) {
            self.mark(f);
            marked += 1;
        }
        // Reads in the summary beyond its endpoints are counted only if the summary lies before `at`.
        let summary_before_at = last.is_none_or(|l| l < self.at);
        if summary_before_at {
            self.count += count.max(marked);
        } else {
            self.count += marked;
        }
    }

    fn mark(&mut self, t: UnixSeconds) {
        debug_assert!(t < self.at);
        let age = self.at - t;
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        for (count, days) in self.window_counts.iter_mut().zip(COUNT_WINDOWS_DAYS) {
            if age <= days * DAY {
                *count = count.saturating_add(1);
            }
        }
        let age_days = age as f64 / DAY as f64;
        for (acc, half_life) in self.decayed_fixed.iter_mut().zip(DECAY_HALF_LIVES_DAYS) {
            let weight = (-(age_days / half_life) * std::f64::consts::LN_2).exp();
            *acc = acc.saturating_add((weight * DECAY_SCALE) as u64);
        }
        let day = (age - 1) / DAY;
        if day < 128 {
            self.day_bits |= 1u128 << day;
        }
        let week = (age - 1) / WEEK;
        if week < 128 {
            self.week_bits |= 1u128 << week;
        }
        self.insert_recent(u32::try_from(age).unwrap_or(u32::MAX));
    }

    fn insert_recent(&mut self, age: u32) {
        let len = usize::from(self.recent_len);
        // Position that keeps the ages ascending.
        let pos = self.recent_ages[..len].partition_point(|&a| a <= age);
        if pos >= RECENT_CAPACITY {
            return;
        }
        let new_len = (len + 1).min(RECENT_CAPACITY);
        self.recent_ages.copy_within(pos..new_len - 1, pos + 1);
        self.recent_ages[pos] = age;
        self.recent_len = new_len as u8;
    }

    /// Merges another object's (or another log shard's) stats of the same object at the same time.
    pub fn merge(&mut self, other: &Self) {
        debug_assert_eq!(self.at, other.at);
        self.count += other.count;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (a, b) in self.window_counts.iter_mut().zip(other.window_counts) {
            *a = a.saturating_add(b);
        }
        for (a, b) in self.decayed_fixed.iter_mut().zip(other.decayed_fixed) {
            *a = a.saturating_add(b);
        }
        self.day_bits |= other.day_bits;
        self.week_bits |= other.week_bits;
        for &age in &other.recent_ages[..usize::from(other.recent_len)] {
            self.insert_recent(age);
        }
    }

    /// The most recent reads' ages in seconds, most recent first.
    pub fn recent_ages(&self) -> &[u32] {
        &self.recent_ages[..usize::from(self.recent_len)]
    }

    /// Decayed counter `i` (see [`DECAY_HALF_LIVES_DAYS`]) as a float.
    pub fn decayed(&self, i: usize) -> f64 {
        self.decayed_fixed[i] as f64 / DECAY_SCALE
    }

    /// Whether there was a read on day `i` before `at` (0 = the last 24 hours).
    pub fn read_on_day(&self, i: u32) -> bool {
        i < 128 && self.day_bits & (1u128 << i) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter() {
        let at = 1_000 * DAY;
        let reads: Vec<i64> = (0..40).map(|i| at - i * 3 * DAY - i * 17).collect();
        let mut forward = HistoryStats::new(at);
        reads.iter().for_each(|&t| forward.observe(t));
        let mut backward = HistoryStats::new(at);
        reads.iter().rev().for_each(|&t| backward.observe(t));
        assert_eq!(forward, backward);
        let mut merged = HistoryStats::new(at);
        let mut other = HistoryStats::new(at);
        for (i, &t) in reads.iter().enumerate() {
            if i % 2 == 0 {
                merged.observe(t)
            } else {
                other.observe(t)
            }
        }
        merged.merge(&other);
        assert_eq!(merged, forward);
    }

    #[test]
    fn ignores_reads_at_or_after_scoring_time() {
        let at = 500 * DAY;
        let mut s = HistoryStats::new(at);
        s.observe(at);
        s.observe(at + 10);
        assert_eq!(s, HistoryStats::new(at));
        s.observe(at - 1);
        assert_eq!(s.count, 1);
        assert_eq!(s.window_counts, [1, 1, 1, 1, 1]);
        assert!(s.read_on_day(0));
        assert_eq!(s.recent_ages(), &[1]);
    }

    #[test]
    fn keeps_the_most_recent_reads() {
        let at = 1_000 * DAY;
        let mut s = HistoryStats::new(at);
        for i in 1..=100 {
            s.observe(at - i * HOUR_FOR_TEST);
        }
        let ages: Vec<u32> = s.recent_ages().to_vec();
        assert_eq!(ages.len(), RECENT_CAPACITY);
        assert_eq!(ages[0], HOUR_FOR_TEST as u32);
        assert!(ages.windows(2).all(|w| w[0] <= w[1]));
    }

    const HOUR_FOR_TEST: i64 = 3_600;

    #[test]
    fn summary_counts_without_double_marking() {
        let at = 100 * DAY;
        let mut s = HistoryStats::new(at);
        s.observe_summary(10, Some(at - 50 * DAY), Some(at - 2 * DAY));
        assert_eq!(s.count, 10);
        assert_eq!(s.window_counts, [0, 1, 1, 2, 2]);
        assert_eq!(s.first, Some(at - 50 * DAY));
    }
}
