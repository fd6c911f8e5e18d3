//! Steps 1-3 of batch scoring: the inventory into a compact table, one streaming pass over the access logs into
//! per-object [`HistoryStats`], and the prefix activity of every (tenant, prefix).
//!
//! Memory is bounded by the inventory's object count: events are folded into the stats as they stream by and
//! never stored. Reads for keys that are not in the inventory are only counted (with a bounded per-key tally for
//! the report's top list).

use std::collections::HashMap;

use reprieve_core::hash::shard_of;
use reprieve_core::prefix::{PrefixAccumulator, parent_prefix, top_prefix};
use reprieve_core::{AccessEvent, AccessSummary, HistoryStats, ImageFacts, ObjectRecord, PrefixActivity, UnixSeconds};
use serde::{Deserialize, Serialize};

use super::progress::Progress;
use super::{BatchError, ScoreJob};
use crate::formats::{ReadReport, for_each_event};
use crate::inventory::for_each_inventory_row;

/// Most distinct (tenant, key) pairs not in the inventory that are tallied one by one; beyond it further new
/// keys are only counted in the totals (and `distinct_keys` becomes a lower bound).
pub const UNKNOWN_KEYS_CAP: usize = 1_000_000;

/// How many keys not in the inventory the report lists, by reads.
pub const UNKNOWN_TOP: usize = 20;

/// One object of the run's shard, ready to score: `record` carries the inventory facts plus
/// `history.complete_since`, the parent and top-level [`PrefixActivity`] and, as `history.summary`, the aggregate
/// (count, first, last) of its logged reads before `at` (so that the policy can use the first read in place of an
/// unknown creation time, as it does for a record with raw reads). Score it with
/// `engine.score_with_stats(&record, &stats, ..)`: `stats` is the full aggregate of its reads.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedObject {
    pub record: ObjectRecord,
    pub stats: HistoryStats,
    /// Registry facts when the object is a container image (its features then include the image features).
    pub image: Option<Box<ImageFacts>>,
}

/// A key that is read in the logs but absent from the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReads {
    pub tenant: String,
    pub key: String,
    pub reads: u64,
}

/// Reads (before `at`) for keys that are not in the inventory: reported, never scored. In a sharded run only the
/// keys of the shard are counted, so the shards' numbers add up to the unsharded run's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnknownReads {
    pub reads: u64,
    /// Distinct (tenant, key) pairs; a lower bound when `distinct_keys_capped`.
    pub distinct_keys: u64,
    /// More than [`UNKNOWN_KEYS_CAP`] distinct keys were seen: later keys were counted in `reads` only.
    pub distinct_keys_capped: bool,
    /// The [`UNKNOWN_TOP`] keys with the most reads (ties by tenant, key).
    pub top: Vec<KeyReads>,
}

/// Everything the logs and inventory gave, before scoring.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub at: UnixSeconds,
    /// The start of complete history used for every object (`job.history_complete_since` or the earliest read
    /// before `at` in the logs, capped at `at`); `None` when neither is known.
    pub history_complete_since: Option<UnixSeconds>,
    /// The shard's objects, sorted by (tenant, key).
    pub objects: Vec<PreparedObject>,
    /// Distinct objects in the whole inventory (every shard).
    pub inventory_objects: u64,
    /// Inventory rows repeating an earlier (tenant, key): the first row is kept.
    pub duplicate_rows: u64,
    pub inventory_report: ReadReport,
    pub log_reports: Vec<ReadReport>,
    /// Reads at or after `at` in the logs (any key): ignored.
    pub reads_at_or_after: u64,
    /// Reads with no tenant whose key exists in several of the inventory's tenants: not attributed, not scored.
    pub reads_ambiguous_tenant: u64,
    pub unknown: UnknownReads,
}

/// The inventory as a lookup table: (tenant, key) -> object index, plus per-object stats and prefix ids.
#[derive(Debug, Default)]
struct Table {
    tenant_ids: HashMap<String, u32>,
    /// Per tenant id: key -> object index.
    keys: Vec<HashMap<Box<str>, u32>>,
    stats: Vec<HistoryStats>,
    /// Per object: (parent prefix id, top prefix id).
    prefixes: Vec<(u32, u32)>,
    parent_ids: HashMap<(u32, String), u32>,
    top_ids: HashMap<(u32, String), u32>,
    /// Per object: index into `records` when the object is in the shard.
    slot: Vec<u32>,
    records: Vec<ObjectRecord>,
}

const NOT_IN_SHARD: u32 = u32::MAX;

impl Table {
    fn intern(map: &mut HashMap<(u32, String), u32>, tenant: u32, prefix: String) -> u32 {
        let next = map.len() as u32;
        *map.entry((tenant, prefix)).or_insert(next)
    }

    /// Finds the object an event is about. An event without a tenant (Apache/nginx logs) matches its key in the
    /// default tenant, else in the one inventory tenant holding that key; `Err(())` when several tenants do.
    fn lookup(&self, tenant: &str, key: &str) -> Result<Option<u32>, ()> {
        if let Some(&t) = self.tenant_ids.get(tenant)
            && let Some(&i) = self.keys[t as usize].get(key)
        {
            return Ok(Some(i));
        }
        if !tenant.is_empty() {
            return Ok(None);
        }
        let mut found = None;
        for map in &self.keys {
            if let Some(&i) = map.get(key) {
                if found.is_some() {
                    return Err(());
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

/// Reads the inventory and the logs of `job` and returns the shard's objects with their aggregated reads and
/// prefix activity, sorted by (tenant, key). This is everything [`super::run_score`] scores; it is public so
/// that callers (and tests) can check a batch verdict against `engine.score` on a record with raw reads.
pub fn prepare(job: &ScoreJob) -> Result<Prepared, BatchError> {
    prepare_with_progress(job, &mut Progress::new(false))
}

pub(crate) fn prepare_with_progress(job: &ScoreJob, progress: &mut Progress) -> Result<Prepared, BatchError> {
    let at = job.at;
    let in_shard = |tenant: &str, key: &str| job.shard.is_none_or(|(i, n)| shard_of(tenant, key, n) == i);

    // 1. The inventory.
    let mut table = Table::default();
    let mut duplicate_rows = 0u64;
    let mut too_many = false;
    let inventory_report = for_each_inventory_row(&job.inventory, &job.inventory_options, |row| {
        let record = row.record;
        let index = table.stats.len();
        if index >= NOT_IN_SHARD as usize {
            too_many = true;
            return;
        }
        let next_tenant = table.tenant_ids.len() as u32;
        let tenant = *table.tenant_ids.entry(record.tenant.clone()).or_insert(next_tenant);
        if tenant as usize == table.keys.len() {
            table.keys.push(HashMap::new());
        }
        let keys = &mut table.keys[tenant as usize];
        if keys.contains_key(record.key.as_str()) {
            duplicate_rows += 1;
            return;
        }
        keys.insert(record.key.as_str().into(), index as u32);
        let parent = Table::intern(&mut table.parent_ids, tenant, parent_prefix(&record.key));
        let top = Table::intern(&mut table.top_ids, tenant, top_prefix(&record.key).to_owned());
        table.prefixes.push((parent, top));
        table.stats.push(HistoryStats::new(at));
        if in_shard(&record.tenant, &record.key) {
            table.slot.push(table.records.len() as u32);
            let mut record = record;
            record.history = Default::default();
            table.records.push(record);
        } else {
            table.slot.push(NOT_IN_SHARD);
        }
        progress.tick("inventory objects", table.stats.len() as u64);
    })?;
    if too_many {
        return Err(BatchError::TooManyObjects {
            path: job.inventory.clone(),
            max: u64::from(NOT_IN_SHARD),
        });
    }
    progress.done("inventory objects", table.stats.len() as u64);

    // 2. One pass over the logs.
    let mut log_reports = Vec::with_capacity(job.logs.len());
    let mut earliest: Option<UnixSeconds> = None;
    let mut reads_at_or_after = 0u64;
    let mut reads_ambiguous_tenant = 0u64;
    let mut unknown = UnknownReads::default();
    let mut unknown_keys: HashMap<(Box<str>, Box<str>), u64> = HashMap::new();
    let mut events = 0u64;
    for path in &job.logs {
        let report = for_each_event(path, &job.read_options, |e: AccessEvent| {
            events += 1;
            progress.tick("log events", events);
            if e.ts >= at {
                reads_at_or_after += 1;
                return;
            }
            earliest = Some(earliest.map_or(e.ts, |x| x.min(e.ts)));
            match table.lookup(&e.tenant, &e.key) {
                Ok(Some(i)) => table.stats[i as usize].observe(e.ts),
                Err(()) => reads_ambiguous_tenant += 1,
                Ok(None) => {
                    if !in_shard(&e.tenant, &e.key) {
                        return;
                    }
                    unknown.reads += 1;
                    if let Some(n) = unknown_keys.get_mut(&(e.tenant.as_str().into(), e.key.as_str().into())) {
                        *n += 1;
                    } else if unknown_keys.len() < UNKNOWN_KEYS_CAP {
                        unknown_keys.insert((e.tenant.into(), e.key.into()), 1);
                        unknown.distinct_keys += 1;
                    } else {
                        unknown.distinct_keys_capped = true;
                    }
                }
            }
        })?;
        log_reports.push(report);
    }
    progress.done("log events", events);
    let mut top: Vec<KeyReads> = unknown_keys
        .into_iter()
        .map(|((tenant, key), reads)| KeyReads {
            tenant: tenant.into(),
            key: key.into(),
            reads,
        })
        .collect();
    top.sort_unstable_by(|a, b| {
        b.reads
            .cmp(&a.reads)
            .then_with(|| a.tenant.cmp(&b.tenant))
            .then_with(|| a.key.cmp(&b.key))
    });
    top.truncate(UNKNOWN_TOP);
    unknown.top = top;

    // 3. Prefix activity over every inventory object (not only the shard's), so that shards add up.
    let mut parents = vec![PrefixAccumulator::new(at); table.parent_ids.len()];
    let mut tops = vec![PrefixAccumulator::new(at); table.top_ids.len()];
    for (stats, &(parent, top)) in table.stats.iter().zip(&table.prefixes) {
        parents[parent as usize].add(stats);
        tops[top as usize].add(stats);
    }
    let parents: Vec<PrefixActivity> = parents.iter().map(PrefixAccumulator::finish).collect();
    let tops: Vec<PrefixActivity> = tops.iter().map(PrefixAccumulator::finish).collect();

    let history_complete_since = job.history_complete_since.or(earliest).map(|s| s.min(at));
    let inventory_objects = table.stats.len() as u64;
    let mut objects: Vec<PreparedObject> = Vec::with_capacity(table.records.len());
    let mut records = std::mem::take(&mut table.records).into_iter();
    for (i, &slot) in table.slot.iter().enumerate() {
        if slot == NOT_IN_SHARD {
            continue;
        }
        let Some(mut record) = records.next() else { break };
        let stats = table.stats[i];
        let (parent, top) = table.prefixes[i];
        record.history.complete_since = history_complete_since;
        record.history.summary = (stats.count > 0).then_some(AccessSummary {
            count: stats.count,
            first: stats.first,
            last: stats.last,
        });
        record.parent_activity = Some(parents[parent as usize]);
        record.top_activity = Some(tops[top as usize]);
        objects.push(PreparedObject {
            record,
            stats,
            image: None,
        });
    }
    objects.sort_unstable_by(|a, b| {
        (a.record.tenant.as_str(), a.record.key.as_str()).cmp(&(b.record.tenant.as_str(), b.record.key.as_str()))
    });
    Ok(Prepared {
        at,
        history_complete_since,
        objects,
        inventory_objects,
        duplicate_rows,
        inventory_report,
        log_reports,
        reads_at_or_after,
        reads_ambiguous_tenant,
        unknown,
    })
}
