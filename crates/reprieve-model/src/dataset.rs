//! Labelled training and evaluation data from a request trace, by the protocol of DESIGN section 4.
//!
//! At a cut time `T` the inventory is every object seen before `T` (created before it, or read before it);
//! features use reads before `T` only; the label is "read again in `[T, T + H)`". Everything here is pure: the
//! trace is already in memory.

use std::collections::HashMap;

use reprieve_core::features::{FeatureVector, extract_with_stats};
use reprieve_core::prefix::{PrefixAccumulator, parent_prefix, top_prefix};
use reprieve_core::{HistoryStats, ObjectRecord, PrefixActivity, UnixSeconds};

/// Objects plus their reads, sorted by time.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Every object; `record.history` is ignored (the reads are in `events`).
    pub objects: Vec<ObjectRecord>,
    /// Labels from the source, e.g. the synthetic generator's cohort, parallel to `objects`.
    pub cohorts: Vec<Option<String>>,
    /// `(time, object index)`, sorted by time.
    pub events: Vec<(UnixSeconds, u32)>,
    /// When the log starts: reads are complete from here on.
    pub log_start: UnixSeconds,
    /// When the log ends (exclusive).
    pub log_end: UnixSeconds,
}

impl Trace {
    /// Builds a trace from inventory records (may be empty) and raw `(time, tenant, key, size)` reads. Objects
    /// that appear only in the reads are added with what the reads tell (size).
    pub fn from_parts(
        inventory: Vec<(ObjectRecord, Option<String>)>,
        reads: impl IntoIterator<Item = (UnixSeconds, String, String, Option<u64>)>,
    ) -> Self {
        let mut index: HashMap<(String, String), u32> = HashMap::new();
        let mut objects = Vec::with_capacity(inventory.len());
        let mut cohorts = Vec::with_capacity(inventory.len());
        for (record, cohort) in inventory {
            let id = (record.tenant.clone(), record.key.clone());
            if index.contains_key(&id) {
                continue;
            }
            index.insert(id, objects.len() as u32);
            objects.push(record);
            cohorts.push(cohort);
        }
        let mut events = Vec::new();
        for (ts, tenant, key, size) in reads {
            let next = objects.len() as u32;
            let id = *index.entry((tenant.clone(), key.clone())).or_insert(next);
            if id == next {
                let mut record = ObjectRecord::with_key(key);
                record.tenant = tenant;
                objects.push(record);
                cohorts.push(None);
            }
            let object = &mut objects[id as usize];
            if object.size.is_none() {
                object.size = size;
            }
            events.push((ts, id));
        }
        events.sort_unstable();
        let log_start = events.first().map_or(0, |e| e.0);
        let log_end = events.last().map_or(0, |e| e.0 + 1);
        Self {
            objects,
            cohorts,
            events,
            log_start,
            log_end,
        }
    }
}

/// One object at one cut.
#[derive(Debug, Clone)]
pub struct CutRow {
    pub object: u32,
    pub features: FeatureVector,
    /// Seconds since the last read before the cut (or since the object was first seen).
    pub idle_secs: i64,
    /// Seconds since the object was born as the policy sees it: created, else its first read, else the start of the
    /// log. The policy retains objects younger than its minimum age whatever the model says.
    pub age_secs: i64,
    pub size: u64,
    /// Read again in `[T, T + H)`.
    pub reused: bool,
    /// Last read within 30 days before the cut (`FeatureVector::recently_read`).
    pub recent: bool,
}

impl CutRow {
    /// Whether the policy retains the object as too new (younger than `min_age_secs`) whatever the model says.
    pub fn too_new(&self, min_age_secs: i64) -> bool {
        self.age_secs < min_age_secs
    }
}

/// All objects of the inventory at one cut.
#[derive(Debug, Clone)]
pub struct Cut {
    pub at: UnixSeconds,
    pub horizon_secs: i64,
    pub rows: Vec<CutRow>,
}

/// The objects' records as seen at `at`, with prefix activity filled in, and their history stats. Objects not
/// yet seen at `at` are `None`.
pub fn snapshot(trace: &Trace, at: UnixSeconds) -> Vec<Option<(ObjectRecord, HistoryStats)>> {
    let n = trace.objects.len();
    let mut stats: Vec<HistoryStats> = vec![HistoryStats::new(at); n];
    let end = trace.events.partition_point(|e| e.0 < at);
    for &(ts, o) in &trace.events[..end] {
        stats[o as usize].observe(ts);
    }
    let present: Vec<bool> = (0..n)
        .map(|i| trace.objects[i].created.is_some_and(|c| c < at) || stats[i].count > 0)
        .collect();
    let mut parents: HashMap<(&str, String), PrefixAccumulator> = HashMap::new();
    let mut tops: HashMap<(&str, &str), PrefixAccumulator> = HashMap::new();
    for i in (0..n).filter(|&i| present[i]) {
        let o = &trace.objects[i];
        parents
            .entry((o.tenant.as_str(), parent_prefix(&o.key)))
            .or_insert_with(|| PrefixAccumulator::new(at))
            .add(&stats[i]);
        tops.entry((o.tenant.as_str(), top_prefix(&o.key)))
            .or_insert_with(|| PrefixAccumulator::new(at))
            .add(&stats[i]);
    }
    let parents: HashMap<(&str, String), PrefixActivity> = parents.into_iter().map(|(k, a)| (k, a.finish())).collect();
    let tops: HashMap<(&str, &str), PrefixActivity> = tops.into_iter().map(|(k, a)| (k, a.finish())).collect();
    (0..n)
        .map(|i| {
            if !present[i] {
                return None;
            }
            let o = &trace.objects[i];
            let mut record = o.clone();
            record.history.complete_since = Some(trace.log_start.min(at));
            record.parent_activity = parents.get(&(o.tenant.as_str(), parent_prefix(&o.key))).copied();
            record.top_activity = tops.get(&(o.tenant.as_str(), top_prefix(&o.key))).copied();
            Some((record, stats[i]))
        })
        .collect()
}

/// The object's age at `stats.at` as the policy judges it ([`reprieve_core::policy::birth`]); 0 when its birth is
/// unknown (the policy then finds it too new).
pub fn policy_age_secs(record: &ObjectRecord, stats: &HistoryStats) -> i64 {
    let born = reprieve_core::policy::birth(record.created, stats.first, record.history.complete_since);
    born.map_or(0, |b| stats.at.saturating_sub(b).max(0))
}

/// Builds the labelled rows of the cut at `at` with horizon `horizon_secs`.
pub fn build_cut(trace: &Trace, at: UnixSeconds, horizon_secs: i64) -> Cut {
    let mut reused = vec![false; trace.objects.len()];
    let from = trace.events.partition_point(|e| e.0 < at);
    let to = trace.events.partition_point(|e| e.0 < at.saturating_add(horizon_secs));
    for &(_, o) in &trace.events[from..to] {
        reused[o as usize] = true;
    }
    let rows = snapshot(trace, at)
        .into_iter()
        .enumerate()
        .filter_map(|(i, snap)| {
            let (record, stats) = snap?;
            // Idle since the last read; never read in the log: since the log (or the object) started, which is
            // all the log can vouch for.
            let seen_from = record.created.map_or(trace.log_start, |c| c.max(trace.log_start));
            let since = stats.last.unwrap_or(seen_from).min(at);
            let features = extract_with_stats(&record, &stats);
            Some(CutRow {
                object: i as u32,
                recent: features.recently_read(),
                features,
                idle_secs: at - since,
                age_secs: policy_age_secs(&record, &stats),
                size: record.size.unwrap_or(0),
                reused: reused[i],
            })
        })
        .collect();
    Cut { at, horizon_secs, rows }
}

/// Cut times from `from` every `step` while the label window `[T, T + H)` closes by `log_end`.
pub fn cut_times(from: UnixSeconds, log_end: UnixSeconds, step: i64, horizon: i64) -> Vec<UnixSeconds> {
    let mut cuts = Vec::new();
    let mut t = from;
    while t.saturating_add(horizon) <= log_end && step > 0 {
        cuts.push(t);
        t += step;
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn labels_and_no_look_ahead() {
        let reads = vec![
            (10 * DAY, String::new(), "a/x.png".to_string(), Some(10)),
            (20 * DAY, String::new(), "a/x.png".to_string(), Some(10)),
            (12 * DAY, String::new(), "a/y.png".to_string(), Some(5)),
            (25 * DAY, String::new(), "b/z.png".to_string(), None),
        ];
        let trace = Trace::from_parts(vec![], reads.clone());
        let cut = build_cut(&trace, 15 * DAY, 7 * DAY);
        // z is first seen after the cut: not in the inventory.
        assert_eq!(cut.rows.len(), 2);
        let x = cut.rows.iter().find(|r| r.object == 0).expect("x");
        assert!(x.reused);
        assert_eq!(x.idle_secs, 5 * DAY);
        // No creation time: born at its first read, as the policy judges it.
        assert_eq!(x.age_secs, 5 * DAY);
        let y = cut.rows.iter().find(|r| r.object == 1).expect("y");
        assert!(!y.reused);

        // Altering reads after the cut changes labels but never features.
        let mut later = reads;
        later.push((16 * DAY, String::new(), "a/y.png".to_string(), Some(5)));
        later.push((40 * DAY, String::new(), "a/x.png".to_string(), Some(10)));
        let trace2 = Trace::from_parts(vec![], later);
        let cut2 = build_cut(&trace2, 15 * DAY, 7 * DAY);
        for (r1, r2) in cut.rows.iter().zip(&cut2.rows) {
            assert_eq!(r1.features, r2.features);
        }
        assert!(cut2.rows[1].reused);
    }

    #[test]
    fn cuts_close_within_the_log() {
        assert_eq!(cut_times(0, 30 * DAY, 7 * DAY, 14 * DAY), vec![0, 7 * DAY, 14 * DAY]);
        assert!(cut_times(0, DAY, DAY, 2 * DAY).is_empty());
    }
}
