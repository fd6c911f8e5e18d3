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
    ///
    /// Equal to observing every listed read and then the summary; sorted reads (what [`AccessHistory`] promises and
    /// the server validates) take a faster path that gives the same value bit for bit.
    pub fn from_history(history: &AccessHistory, at: UnixSeconds) -> Self {
        let mut stats = Self::new(at);
        let reads = &history.accesses;
        if reads.is_sorted() {
            stats.observe_sorted(&reads[..reads.partition_point(|&t| t < at)]);
        } else {
            for &t in reads {
                stats.observe(t);
            }
        }
        if let Some(summary) = history.summary {
            stats.observe_summary(summary.count, summary.first, summary.last);
        }
        stats
    }

    /// Records reads sorted ascending, all before `at`: the same as [`Self::observe`] on each, in far fewer steps
    /// (window counts by binary search, the four decayed counters together and only over the reads young enough to
    /// count, the most recent reads taken from the end).
    fn observe_sorted(&mut self, reads: &[UnixSeconds]) {
        let (Some(&oldest), Some(&newest)) = (reads.first(), reads.last()) else {
            return;
        };
        debug_assert!(newest < self.at && reads.is_sorted());
        let at = self.at;
        self.count += reads.len() as u64;
        self.first = Some(self.first.map_or(oldest, |f| f.min(oldest)));
        self.last = Some(self.last.map_or(newest, |l| l.max(newest)));
        // A read counts in a window when `at - t <= days * DAY`. The windows are nested: each is searched for
        // among the reads of the next larger one.
        let mut inside = reads;
        for (count, days) in self.window_counts.iter_mut().zip(COUNT_WINDOWS_DAYS).rev() {
            inside = &inside[inside.partition_point(|&t| t < at - days * DAY)..];
            *count = count.saturating_add(u32::try_from(inside.len()).unwrap_or(u32::MAX));
        }
        // Reads at least `DECAY_CUTOFF[3]` old add nothing to any counter, those at least `DECAY_CUTOFF[1]` old
        // add nothing to the two fastest (see `decay_terms`): each read computes only the counters it can add to.
        let young = &reads[reads.partition_point(|&t| at - t >= DECAY_CUTOFF[3])..];
        let (slow_only, all_four) = young.split_at(young.partition_point(|&t| at - t >= DECAY_CUTOFF[1]));
        let tables = DecayTables::get();
        add_decay_terms::<2, 2>(tables, at, slow_only, &mut self.decayed_fixed);
        add_decay_terms::<0, 4>(tables, at, all_four, &mut self.decayed_fixed);
        // Day and week bitmaps from the reads of the last 128 weeks, newest first (ascending age). A day lies in
        // one week, so reads on the day already marked change nothing, nor (past the 128 days of the day bitmap)
        // reads in the week already marked: divide only when the day (the week) changes.
        let mut marked_until = 0; // largest age on the day (the week) last marked
        for &t in reads.iter().rev() {
            let age = at - t;
            if age <= marked_until {
                continue;
            }
            let week = (age - 1) / WEEK;
            if week >= 128 {
                break;
            }
            self.week_bits |= 1u128 << week;
            let day = (age - 1) / DAY;
            if day < 128 {
                self.day_bits |= 1u128 << day;
                marked_until = (day + 1) * DAY;
            } else {
                marked_until = (week + 1) * WEEK;
            }
        }
        let recent = reads.iter().rev().take(RECENT_CAPACITY);
        if self.recent_len == 0 {
            // Newest first is ascending age, as `insert_recent` keeps them.
            for (slot, &t) in self.recent_ages.iter_mut().zip(recent) {
                *slot = u32::try_from(at - t).unwrap_or(u32::MAX);
            }
            self.recent_len = reads.len().min(RECENT_CAPACITY) as u8;
        } else {
            for &t in recent {
                self.insert_recent(u32::try_from(at - t).unwrap_or(u32::MAX));
            }
        }
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
        if age < DECAY_CUTOFF[3] {
            for (acc, term) in self.decayed_fixed.iter_mut().zip(decay_terms(DecayTables::get(), age)) {
                *acc = acc.saturating_add(term);
            }
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

/// Adds the terms of `reads` (sorted, all younger than `DECAY_CUTOFF[3]`, and when `FIRST > 0` at least
/// `DECAY_CUTOFF[FIRST - 1]` old, so that counters below `FIRST` get nothing from them) to decayed counters
/// `FIRST .. FIRST + N` (`FIRST + N = 4`). [`decay_terms`] in a loop without calls or branches: the table terms of
/// every read are added, and the rare reads whose terms need the exact definition are noted, then corrected after
/// each chunk (their table terms taken back, their exact ones added), so the loop keeps its sums in registers.
fn add_decay_terms<const FIRST: usize, const N: usize>(
    tables: &DecayTables,
    at: UnixSeconds,
    reads: &[UnixSeconds],
    decayed_fixed: &mut [u64; 4],
) {
    const CHUNK: usize = 64;
    let mut exact_ages = [0u32; CHUNK];
    // Every term is at most 2^32: a plain sum of `CHUNK` of them cannot overflow.
    for chunk in reads.chunks(CHUNK) {
        let mut sums = [0u64; N];
        let mut exact = 0;
        for &t in chunk {
            let age = at - t;
            let (terms, near_integer) = approximate_terms::<FIRST, N>(tables, age);
            // Ages below `DECAY_CUTOFF[3]` fit in 32 bits.
            exact_ages[exact % CHUNK] = age as u32;
            exact += usize::from(near_integer);
            for (sum, term) in sums.iter_mut().zip(terms) {
                *sum += term;
            }
        }
        for &age in &exact_ages[..exact] {
            let age = i64::from(age);
            let (approximate, _) = approximate_terms::<FIRST, N>(tables, age);
            for ((sum, exact), approximate) in sums.iter_mut().zip(&decay_terms_exact(age)[FIRST..]).zip(approximate) {
                *sum = *sum - approximate + exact;
            }
        }
        for (acc, sum) in decayed_fixed[FIRST..].iter_mut().zip(sums) {
            *acc = acc.saturating_add(sum);
        }
    }
}

/// Ages (seconds) from which a read adds nothing to decayed counter `h`: 33 half-lives, where the weight is at most
/// `2^-33` and its fixed-point value (`weight * 2^32`, truncated) is 0.
const DECAY_CUTOFF: [i64; 4] = [33 * DAY, 33 * 7 * DAY, 33 * 30 * DAY, 33 * 180 * DAY];

/// The fixed-point weight of a read `age` seconds old in decayed counter `h`, exactly as defined: `exp` of
/// `-(age in days / half-life) * ln 2`, times 2^32, truncated. Every term of every counter equals this function.
#[cold]
#[inline(never)]
fn decay_term_exact(h: usize, age: i64) -> u64 {
    let age_days = age as f64 / DAY as f64;
    let weight = (-(age_days / DECAY_HALF_LIVES_DAYS[h]) * std::f64::consts::LN_2).exp();
    (weight * DECAY_SCALE) as u64
}

/// Relative distance to an integer below which [`decay_terms`] defers to [`decay_term_exact`]. The table product
/// is within 7 ulp (1.6e-15) of the true weight `2^(-age / half-life)`, and the definition's own value is within
/// 8.1e-15 of it (three roundings of an argument of at most 33 ln 2 in magnitude, amplified by `exp`, plus `exp`'s
/// own error, under 1 ulp in every libm in use): 1e-13 leaves a tenfold margin.
const DECAY_MARGIN: f64 = 1e-13;

/// The terms a read `age` seconds old (`1 <= age < DECAY_CUTOFF[3]`) adds to the four decayed counters:
/// [`decay_term_exact`] for those it is young enough for, 0 for the others, bit for bit, without calling `exp` for
/// all but about one read in a thousand. Each weight is a product of four table entries (one per byte of the age,
/// which is below 2^29), the four counters' side by side so that they are computed together; when `weight * 2^32`
/// is not within [`DECAY_MARGIN`] (relative) of an integer, the exact definition truncates to the same integer,
/// otherwise the exact definition is computed. A counter the read is too old for gets a weight of at most 2^-33
/// (see [`DecayTables`]): a positive `weight * 2^32` of at most 1/2, far from an integer, truncated to 0.
#[inline]
fn decay_terms(tables: &DecayTables, age: i64) -> [u64; 4] {
    debug_assert!((1..DECAY_CUTOFF[3]).contains(&age));
    let (terms, near_integer) = approximate_terms::<0, 4>(tables, age);
    if near_integer {
        return decay_terms_exact(age);
    }
    debug_assert!((0..4).all(|h| age < DECAY_CUTOFF[h] || terms[h] == 0));
    terms
}

/// The table terms of counters `FIRST .. FIRST + N` for a read `age` seconds old, and whether any of them lies
/// too close to an integer to be trusted (see [`decay_terms`]).
#[inline(always)]
fn approximate_terms<const FIRST: usize, const N: usize>(tables: &DecayTables, age: i64) -> ([u64; N], bool) {
    let a = age as usize;
    let rows = [
        &tables.bytes[0][a & 0xff],
        &tables.bytes[1][(a >> 8) & 0xff],
        &tables.bytes[2][(a >> 16) & 0xff],
        &tables.top[(a >> 24) & 0x1f],
    ];
    // `scaled` is in (0, 2^32]: adding 2^52 rounds it to the nearest integer, which is then the low bits.
    const ROUND: f64 = (1u64 << 52) as f64;
    let mut terms = [0u64; N];
    let mut near_integer = false;
    for (term, h) in terms.iter_mut().zip(FIRST..) {
        // The top table is scaled by 2^32 (exactly: a power of two), so this is `weight * 2^32`.
        let scaled = (rows[0][h] * rows[1][h]) * (rows[2][h] * rows[3][h]);
        let shifted = scaled + ROUND;
        let nearest = shifted - ROUND;
        near_integer |= (scaled - nearest).abs() <= scaled * DECAY_MARGIN;
        // Far from an integer, the definition truncates to the same one as `scaled`.
        *term = (shifted.to_bits() & ((1 << 52) - 1)) - u64::from(nearest > scaled);
    }
    (terms, near_integer)
}

/// [`decay_terms`] by the definition, for the rare ages where a weight lies too close to an integer.
#[cold]
#[inline(never)]
fn decay_terms_exact(age: i64) -> [u64; 4] {
    std::array::from_fn(|h| {
        if age < DECAY_CUTOFF[h] {
            decay_term_exact(h, age)
        } else {
            0
        }
    })
}

/// Per byte value `b` of byte `i` of an age, `2^(-(b << 8i) / (half-life in seconds))` of each of the four
/// half-lives, side by side. An entry for a part of an age beyond a counter's cutoff holds the weight of the cutoff
/// itself, 2^-33: young ages never use it, and older ones then weigh at most 2^-33 without underflowing to 0.
#[derive(Debug)]
struct DecayTables {
    bytes: [[[f64; 4]; 256]; 3],
    /// The fourth byte (ages below [`DECAY_CUTOFF`] are below 2^29, so it is below 32), times 2^32.
    top: [[f64; 4]; 32],
}

/// The decay tables, built on first use.
static DECAY: std::sync::OnceLock<Box<DecayTables>> = std::sync::OnceLock::new();

impl DecayTables {
    fn get() -> &'static DecayTables {
        DECAY.get_or_init(|| {
            let entry = |v: usize| -> [f64; 4] {
                std::array::from_fn(|h| {
                    let v = v.min(DECAY_CUTOFF[h] as usize);
                    (-(v as f64) / (DECAY_HALF_LIVES_DAYS[h] * DAY as f64)).exp2()
                })
            };
            Box::new(DecayTables {
                bytes: std::array::from_fn(|i| std::array::from_fn(|b| entry(b << (8 * i)))),
                top: std::array::from_fn(|b| entry(b << 24).map(|w| w * DECAY_SCALE)),
            })
        })
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
