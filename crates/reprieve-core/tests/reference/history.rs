//! `HistoryStats` building as it was before the speed-ups: every read observed one at a time, four `exp` calls
//! per read. Kept as the reference the faster paths are tested against.

use reprieve_core::history::{COUNT_WINDOWS_DAYS, DECAY_HALF_LIVES_DAYS, RECENT_CAPACITY};
use reprieve_core::time::{DAY, UnixSeconds, WEEK};
use reprieve_core::{AccessHistory, HistoryStats};

const DECAY_SCALE: f64 = 4_294_967_296.0;

pub fn from_history(history: &AccessHistory, at: UnixSeconds) -> HistoryStats {
    let mut stats = HistoryStats::new(at);
    for &t in &history.accesses {
        observe(&mut stats, t);
    }
    if let Some(summary) = history.summary {
        observe_summary(&mut stats, summary.count, summary.first, summary.last);
    }
    stats
}

pub fn observe(s: &mut HistoryStats, t: UnixSeconds) {
    if t >= s.at {
        return;
    }
    s.count += 1;
    mark(s, t);
}

pub fn observe_summary(s: &mut HistoryStats, count: u64, first: Option<UnixSeconds>, last: Option<UnixSeconds>) {
    let mut marked = 0u64;
    if let Some(l) = last.filter(|&l| l < s.at) {
        mark(s, l);
        marked += 1;
    }
    if let Some(f) = first.filter(|&f| f < s.at && Some(f) != last && count >= 2) {
        mark(s, f);
        marked += 1;
    }
    let summary_before_at = last.is_none_or(|l| l < s.at);
    if summary_before_at {
        s.count += count.max(marked);
    } else {
        s.count += marked;
    }
}

/// The fixed-point term a read `age` seconds old adds to decayed counter `h`.
pub fn decay_term(h: usize, age: i64) -> u64 {
    let age_days = age as f64 / DAY as f64;
    let weight = (-(age_days / DECAY_HALF_LIVES_DAYS[h]) * std::f64::consts::LN_2).exp();
    (weight * DECAY_SCALE) as u64
}

fn mark(s: &mut HistoryStats, t: UnixSeconds) {
    let age = s.at - t;
    s.first = Some(s.first.map_or(t, |f| f.min(t)));
    s.last = Some(s.last.map_or(t, |l| l.max(t)));
    for (count, days) in s.window_counts.iter_mut().zip(COUNT_WINDOWS_DAYS) {
        if age <= days * DAY {
            *count = count.saturating_add(1);
        }
    }
    for (h, acc) in s.decayed_fixed.iter_mut().enumerate() {
        *acc = acc.saturating_add(decay_term(h, age));
    }
    let day = (age - 1) / DAY;
    if day < 128 {
        s.day_bits |= 1u128 << day;
    }
    let week = (age - 1) / WEEK;
    if week < 128 {
        s.week_bits |= 1u128 << week;
    }
    insert_recent(s, u32::try_from(age).unwrap_or(u32::MAX));
}

fn insert_recent(s: &mut HistoryStats, age: u32) {
    let len = usize::from(s.recent_len);
    let pos = s.recent_ages[..len].partition_point(|&a| a <= age);
    if pos >= RECENT_CAPACITY {
        return;
    }
    let new_len = (len + 1).min(RECENT_CAPACITY);
    s.recent_ages.copy_within(pos..new_len - 1, pos + 1);
    s.recent_ages[pos] = age;
    s.recent_len = new_len as u8;
}
