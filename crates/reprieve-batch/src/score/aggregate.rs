//! Steps 1-3 of batch scoring: the inventory into a compact table, one streaming pass over the access logs into
//! per-object [`HistoryStats`], and the prefix activity of every (tenant, prefix).
//!
//! Memory is bounded by the inventory's object count: events are folded into the stats as they stream by and
//! never stored. Reads for keys that are not in the inventory are only counted (with a bounded per-key tally for
//! the report's top list).
//!
//! Per object the table keeps only compact facts ([`Facts`]; the key in the [`KeyIndex`] arena, owners and
//! content types interned) and, once it is read, its [`HistoryStats`]; the full [`ObjectRecord`] is built only
//! when the object is scored ([`Aggregated::object`]). Parquet event logs are read by several threads at once
//! (row groups handed out in turn, stats updated under per-stripe locks); the per-batch results are merged in file
//! order, so every number, including which unknown keys make the capped tally, is the same for any thread count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Mutex, PoisonError};

use reprieve_core::hash::shard_of;
use reprieve_core::history::RECENT_CAPACITY;
use reprieve_core::prefix::{PrefixAccumulator, push_parent_prefix, top_prefix};
use reprieve_core::{
    AccessEvent, AccessHistory, AccessSummary, HistoryStats, ImageFacts, ObjectRecord, PrefixActivity, StorageClass,
    UnixSeconds,
};
use serde::{Deserialize, Serialize};

use super::index::{FastMap, KeyIndex, hash_key};
use super::progress::Progress;
use super::seen::SeenKeys;
use super::{BatchError, ScoreJob};
use crate::error::ReadError;
use crate::formats::canonical::{EventColumns, ROW_BLOCK, Row, for_each_row};
use crate::formats::parquet::BatchPlan;
use crate::formats::{
    LogFormat, MAX_REPORTED_MALFORMED, ReadOptions, ReadReport, SourceFormat, detect_format, for_each_event,
};
use crate::inventory::{RowFacts, for_each_inventory_facts, row_hint};

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

/// Most objects an inventory may hold (object indices are `u32`).
const MAX_OBJECTS: u32 = u32::MAX;

const NONE: u32 = u32::MAX;

/// Interned strings (tenants, owners, content types): id -> string and back.
#[derive(Debug, Default)]
struct Strings {
    ids: FastMap<String, u32>,
    names: Vec<String>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }

    fn intern_opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.intern(s))
    }

    fn get(&self, s: &str) -> Option<u32> {
        if self.names.len() <= 8 {
            return self.names.iter().position(|n| n == s).map(|i| i as u32);
        }
        self.ids.get(s).copied()
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

const HAS_SIZE: u8 = 1;
const HAS_CREATED: u8 = 2;
const HAS_MODIFIED: u8 = 4;
const HAS_RETAIN_UNTIL: u8 = 8;
const LEGAL_HOLD: u8 = 16;
const IN_SHARD: u8 = 32;

/// What the inventory says of one object besides its (tenant, key): every field of its [`ObjectRecord`] but the
/// history and prefix activity, in 64 bytes.
#[derive(Debug, Clone, Copy)]
struct Facts {
    size: u64,
    created: i64,
    modified: i64,
    retain_until: i64,
    owner: u32,
    content_type: u32,
    live_references: u32,
    /// Parent and top-level prefix ids (per tenant).
    parent: u32,
    top: u32,
    storage_class: StorageClass,
    flags: u8,
}

impl Facts {
    fn opt<T: Copy>(&self, flag: u8, v: T) -> Option<T> {
        (self.flags & flag != 0).then_some(v)
    }
}

/// Objects' stats are split into this many stripes (object `i` in stripe `i % STRIPES`), each behind its own
/// lock, so that event threads rarely wait for each other.
const STRIPES: usize = 64;

/// One stripe of per-object stats: only objects that were read have a [`HistoryStats`].
#[derive(Debug, Default)]
struct Stripe {
    /// Per object of the stripe (`i / STRIPES`): index into `stats`, or [`NONE`].
    slots: Vec<u32>,
    stats: Vec<HistoryStats>,
}

impl Stripe {
    fn get(&self, local: usize) -> Option<&HistoryStats> {
        match self.slots[local] {
            NONE => None,
            s => Some(&self.stats[s as usize]),
        }
    }
}

/// Reads waiting to be folded into their objects' stats. They are folded many at a time (see
/// [`UPDATES_PER_FLUSH`]), sorted by (stripe, object) first ([`sort_by_key_bits`]): each stripe is then locked once
/// per flush, its slots are read in order, and an object read several times in the window is fetched from memory
/// once for all of those reads instead of once per read.
struct Updates {
    /// `(stripe << local_bits | object / STRIPES, ts)`.
    pending: Vec<(u32, i64)>,
    /// The radix sort's other buffer.
    scratch: Vec<(u32, i64)>,
    /// Bits of `object / STRIPES` for the inventory's largest object index.
    local_bits: u32,
    /// Reads held before folding them in: half the inventory's object count, within [`UPDATES_PER_FLUSH`].
    flush_at: usize,
}

/// Most reads an [`Updates`] holds before folding them in (64 MiB, and as much again to sort them), and the fewest
/// it is allowed. The first flush also lays out the stats of the objects it meets in object order, which the later
/// passes over all objects (prefix activity, scoring) read faster: on 10M objects 4M reads were measured faster
/// than 1M. A smaller inventory flushes every half its object count, so that the buffers stay in proportion.
const UPDATES_PER_FLUSH: std::ops::RangeInclusive<usize> = (1 << 16)..=(1 << 22);

/// Reads [`line_events`] folds into a part before merging it into the totals (keeps the unknown-key tally small).
const READS_PER_PART: usize = 1 << 16;

/// Updates whose stats are touched together before any is folded in (see [`touch`]).
const TOUCH_BLOCK: usize = 32;

/// Reads a few fields spread over each of these stats, in a loop with nothing else to do: their cache misses are
/// then in flight together instead of one after another inside [`HistoryStats::observe`] (which on a large
/// inventory misses the cache for nearly every read).
#[inline]
fn touch(stats: &[HistoryStats], slots: &[u32]) {
    let mut sum = 0u64;
    for &s in slots {
        let st = &stats[s as usize];
        sum ^= st.count
            ^ st.decayed_fixed[3]
            ^ (st.day_bits as u64)
            ^ (st.week_bits as u64)
            ^ u64::from(st.window_counts[4])
            ^ u64::from(st.recent_ages[0])
            ^ u64::from(st.recent_ages[RECENT_CAPACITY - 1]);
    }
    std::hint::black_box(sum);
}

/// Sorts `items` by their key, of which only the low `bits` bits may be set: a stable radix sort, least significant
/// byte first, in `ceil(bits / 8)` passes at most, with `scratch` as the other buffer.
fn sort_by_key_bits<T: Copy>(items: &mut Vec<(u32, T)>, scratch: &mut Vec<(u32, T)>, bits: u32) {
    let Some(&filler) = items.first() else {
        return;
    };
    for shift in (0..bits.min(32)).step_by(8) {
        let digit = |key: u32| (key >> shift) as usize & 0xff;
        let mut starts = [0usize; 256];
        for &(key, _) in items.iter() {
            starts[digit(key)] += 1;
        }
        if starts[digit(filler.0)] == items.len() {
            continue; // one digit value for all: the pass would move nothing
        }
        let mut next = 0;
        for start in &mut starts {
            (*start, next) = (next, next + *start);
        }
        scratch.clear();
        scratch.resize(items.len(), filler);
        for &item in items.iter() {
            let d = digit(item.0);
            scratch[starts[d]] = item;
            starts[d] += 1;
        }
        std::mem::swap(items, scratch);
    }
}

impl Updates {
    /// Updates for an inventory of `objects` objects.
    fn new(objects: usize) -> Self {
        let largest_local = objects.saturating_sub(1) / STRIPES;
        Self {
            pending: Vec::new(),
            scratch: Vec::new(),
            local_bits: usize::BITS - largest_local.leading_zeros(),
            flush_at: (objects / 2).clamp(*UPDATES_PER_FLUSH.start(), *UPDATES_PER_FLUSH.end()),
        }
    }

    #[inline]
    fn push(&mut self, object: u32, ts: i64, stripes: &[Mutex<Stripe>], at: UnixSeconds) {
        let o = object as usize;
        // `STRIPES` is 2^6 and an object index is below 2^32: the key fits in 32 bits.
        let key = (((o % STRIPES) << self.local_bits) | (o / STRIPES)) as u32;
        self.pending.push((key, ts));
        if self.pending.len() >= self.flush_at {
            self.flush(stripes, at);
        }
    }

    fn flush(&mut self, stripes: &[Mutex<Stripe>], at: UnixSeconds) {
        let local_bits = self.local_bits;
        sort_by_key_bits(
            &mut self.pending,
            &mut self.scratch,
            local_bits + STRIPES.trailing_zeros(),
        );
        let local_mask = (1u32 << local_bits) - 1;
        let mut rest = &self.pending[..];
        while let Some(&(first, _)) = rest.first() {
            let stripe_of = |key: u32| (u64::from(key) >> local_bits) as usize;
            let in_stripe = rest.partition_point(|&(key, _)| stripe_of(key) == stripe_of(first));
            let (updates, after) = rest.split_at(in_stripe);
            rest = after;
            let mut stripe = stripes[stripe_of(first)].lock().unwrap_or_else(PoisonError::into_inner);
            let Stripe { slots, stats } = &mut *stripe;
            let mut at_slot = [0u32; TOUCH_BLOCK];
            for block in updates.chunks(TOUCH_BLOCK) {
                for (&(key, _), s) in block.iter().zip(&mut at_slot) {
                    let slot = &mut slots[(key & local_mask) as usize];
                    if *slot == NONE {
                        *slot = stats.len() as u32;
                        stats.push(HistoryStats::new(at));
                    }
                    *s = *slot;
                }
                touch(stats, &at_slot[..block.len()]);
                for (&(_, ts), &s) in block.iter().zip(&at_slot) {
                    stats[s as usize].observe(ts);
                }
            }
        }
        self.pending.clear();
    }
}

/// Counts of (tenant, key) pairs in order of first appearance; the pair is encoded as one string
/// (`<tenant length>:<tenant><key>`) so that a repeated key is counted without allocating.
#[derive(Debug, Default)]
struct FirstSeen {
    ids: FastMap<Box<str>, usize>,
    counts: Vec<(Box<str>, u64)>,
    buf: String,
}

fn encode_pair(buf: &mut String, tenant: &str, key: &str) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{}:", tenant.len());
    buf.push_str(tenant);
    buf.push_str(key);
}

fn decode_pair(encoded: &str) -> (String, String) {
    let (len, rest) = encoded.split_once(':').unwrap_or(("0", encoded));
    let len: usize = len.parse().unwrap_or(0);
    let (tenant, key) = rest.split_at(len.min(rest.len()));
    (tenant.to_owned(), key.to_owned())
}

impl FirstSeen {
    fn add(&mut self, tenant: &str, key: &str) {
        encode_pair(&mut self.buf, tenant, key);
        if let Some(&i) = self.ids.get(self.buf.as_str()) {
            self.counts[i].1 += 1;
        } else {
            let id: Box<str> = self.buf.as_str().into();
            self.ids.insert(id.clone(), self.counts.len());
            self.counts.push((id, 1));
        }
    }
}

/// The run-wide tally of reads for keys not in the inventory (see [`UnknownReads`]).
#[derive(Debug, Default)]
struct UnknownTally {
    reads: u64,
    keys: FastMap<Box<str>, u64>,
    distinct_keys: u64,
    capped: bool,
}

impl UnknownTally {
    /// Adds the reads of one batch, whose keys are in order of first appearance: a key joins the tally when it is
    /// first seen while the tally has room, exactly as if every read had been added one by one.
    fn merge(&mut self, reads: u64, seen: FirstSeen) {
        self.reads += reads;
        for (key, n) in seen.counts {
            if let Some(count) = self.keys.get_mut(&key) {
                *count += n;
            } else if self.keys.len() < UNKNOWN_KEYS_CAP {
                self.keys.insert(key, n);
                self.distinct_keys += 1;
            } else {
                self.capped = true;
            }
        }
    }

    fn finish(self) -> UnknownReads {
        let mut top: Vec<KeyReads> = self
            .keys
            .into_iter()
            .map(|(pair, reads)| {
                let (tenant, key) = decode_pair(&pair);
                KeyReads { tenant, key, reads }
            })
            .collect();
        top.sort_unstable_by(|a, b| {
            b.reads
                .cmp(&a.reads)
                .then_with(|| a.tenant.cmp(&b.tenant))
                .then_with(|| a.key.cmp(&b.key))
        });
        top.truncate(UNKNOWN_TOP);
        UnknownReads {
            reads: self.reads,
            distinct_keys: self.distinct_keys,
            distinct_keys_capped: self.capped,
            top,
        }
    }
}

/// What one batch of events gave besides the stats updates.
#[derive(Debug, Default)]
struct Part {
    earliest: Option<UnixSeconds>,
    reads_at_or_after: u64,
    reads_ambiguous_tenant: u64,
    unknown_reads: u64,
    unknown: FirstSeen,
}

/// The run's totals over every log.
#[derive(Debug, Default)]
struct Totals {
    earliest: Option<UnixSeconds>,
    reads_at_or_after: u64,
    reads_ambiguous_tenant: u64,
    unknown: UnknownTally,
    events: u64,
}

impl Totals {
    fn merge(&mut self, part: Part) {
        self.earliest = match (self.earliest, part.earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.reads_at_or_after += part.reads_at_or_after;
        self.reads_ambiguous_tenant += part.reads_ambiguous_tenant;
        self.unknown.merge(part.unknown_reads, part.unknown);
    }
}

/// The inventory: keys, facts, stats, prefixes.
#[derive(Debug, Default)]
struct Table {
    index: KeyIndex,
    tenants: Strings,
    owners: Strings,
    content_types: Strings,
    facts: Vec<Facts>,
    stripes: Vec<Mutex<Stripe>>,
    parent_ids: PrefixIds,
    top_ids: PrefixIds,
}

/// Ids of (tenant, prefix) pairs, in order of first appearance.
#[derive(Debug, Default)]
struct PrefixIds {
    /// (tenant id, prefix) -> id: the same compact index as the keys'.
    ids: KeyIndex,
    /// The pair last asked for and its id: inventories listed in key order (S3 Inventory's order) ask for the
    /// same prefix many rows in a row.
    last: Option<(u32, String, u32)>,
}

impl PrefixIds {
    /// The id of (tenant, prefix), new ones numbered in order of first appearance; `None` when the index is full
    /// (the prefixes would take more than its arena's 1 TiB). `prefix_hash`: `hash_key(prefix)`.
    fn intern_hashed(&mut self, tenant: u32, prefix: &str, prefix_hash: u64) -> Option<u32> {
        if let Some((t, p, id)) = &self.last
            && *t == tenant
            && p == prefix
        {
            return Some(*id);
        }
        let id = match self.ids.insert_hashed(tenant, prefix, prefix_hash)? {
            Ok(id) | Err(id) => id,
        };
        match &mut self.last {
            Some((t, p, last_id)) => {
                *t = tenant;
                p.clear();
                p.push_str(prefix);
                *last_id = id;
            }
            None => self.last = Some((tenant, prefix.to_owned(), id)),
        }
        Some(id)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

impl Table {
    /// Finds the object an event is about. An event without a tenant (Apache/nginx logs) matches its key in the
    /// default tenant, else in the one inventory tenant holding that key; `Err(())` when several tenants do.
    #[inline]
    fn lookup(&self, tenant: &str, key: &str) -> Result<Option<u32>, ()> {
        if let Some(t) = self.tenants.get(tenant)
            && let Some(i) = self.index.find(t, key.as_bytes(), hash_key(key.as_bytes()))
        {
            return Ok(Some(i));
        }
        self.lookup_tenantless(tenant, key)
    }

    /// The rest of [`Self::lookup`] once the key is known not to be in the event's own tenant.
    fn lookup_tenantless(&self, tenant: &str, key: &str) -> Result<Option<u32>, ()> {
        if !tenant.is_empty() {
            return Ok(None);
        }
        let key_hash = hash_key(key.as_bytes());
        let mut found = None;
        for t in 0..self.tenants.names.len() as u32 {
            if let Some(i) = self.index.find(t, key.as_bytes(), key_hash) {
                if found.is_some() {
                    return Err(());
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

/// Folds reads `(ts, tenant, key)` into a batch's part and the pending stats updates, exactly as [`observe`] on
/// each in turn would, [`ROW_BLOCK`] at a time. Keys already looked up in this batch are answered by `seen`; the
/// others of a block are looked up together ([`KeyIndex::find_block`]) and remembered.
fn observe_block(
    table: &Table,
    job: &ScoreJob,
    part: &mut Part,
    updates: &mut Updates,
    reads: &[(i64, &str, &str)],
    found: &mut Vec<Option<u32>>,
    seen: &mut SeenKeys,
) {
    if reads.len() > ROW_BLOCK {
        for block in reads.chunks(ROW_BLOCK) {
            observe_block(table, job, part, updates, block, found, seen);
        }
        return;
    }
    let at = job.at;
    // The tenant of every read before `at` whose tenant the inventory has. Reads come in runs of one tenant, whose
    // name a dictionary-encoded column gives as the same slice each time: the last answer is checked first.
    let mut tenant_of = [None; ROW_BLOCK];
    let mut last: Option<(&str, Option<u32>)> = None;
    for (t, &(ts, tenant, _)) in tenant_of.iter_mut().zip(reads) {
        if ts < at {
            *t = match last {
                Some((name, id)) if std::ptr::eq(name, tenant) || name == tenant => id,
                _ => {
                    let id = table.tenants.get(tenant);
                    last = Some((tenant, id));
                    id
                }
            };
        }
    }
    let probes = tenant_of
        .iter()
        .zip(reads)
        .filter_map(|(t, r)| Some(((*t)?, r.2.as_bytes())));
    seen.touch(probes);
    let mut remembered = [None; ROW_BLOCK];
    let mut queries = [(0u32, &b""[..], 0u64); ROW_BLOCK];
    let mut query_of = [usize::MAX; ROW_BLOCK];
    let mut n = 0;
    for (j, (&t, &(_, _, key))) in tenant_of.iter().zip(reads).enumerate() {
        let Some(t) = t else { continue };
        remembered[j] = seen.get(t, key.as_bytes());
        if remembered[j].is_none() {
            queries[n] = (t, key.as_bytes(), hash_key(key.as_bytes()));
            query_of[j] = n;
            n += 1;
        }
    }
    found.clear();
    table.index.find_block(&queries[..n], found);
    for (&(t, key, _), &object) in queries[..n].iter().zip(found.iter()) {
        seen.insert(t, key, object);
    }
    for (j, &(ts, tenant, key)) in reads.iter().enumerate() {
        if ts >= at {
            part.reads_at_or_after += 1;
            continue;
        }
        part.earliest = Some(part.earliest.map_or(ts, |x| x.min(ts)));
        let in_own_tenant = match remembered[j] {
            Some(answer) => answer,
            None => found.get(query_of[j]).copied().flatten(),
        };
        let object = match in_own_tenant {
            Some(i) => Ok(Some(i)),
            None => table.lookup_tenantless(tenant, key),
        };
        record_read(table, job, part, updates, object, tenant, key, ts);
    }
}

/// Folds one read, once looked up, into a batch's part and the pending stats updates.
#[allow(clippy::too_many_arguments)]
#[inline]
fn record_read(
    table: &Table,
    job: &ScoreJob,
    part: &mut Part,
    updates: &mut Updates,
    object: Result<Option<u32>, ()>,
    tenant: &str,
    key: &str,
    ts: i64,
) {
    match object {
        Ok(Some(i)) => updates.push(i, ts, &table.stripes, job.at),
        Err(()) => part.reads_ambiguous_tenant += 1,
        Ok(None) => {
            if job.shard.is_none_or(|(i, n)| shard_of(tenant, key, n) == i) {
                part.unknown_reads += 1;
                part.unknown.add(tenant, key);
            }
        }
    }
}

/// Folds one read into a batch's part and the pending stats updates.
#[inline]
fn observe(table: &Table, job: &ScoreJob, part: &mut Part, updates: &mut Updates, tenant: &str, key: &str, ts: i64) {
    let at = job.at;
    if ts >= at {
        part.reads_at_or_after += 1;
        return;
    }
    part.earliest = Some(part.earliest.map_or(ts, |x| x.min(ts)));
    let object = table.lookup(tenant, key);
    record_read(table, job, part, updates, object, tenant, key, ts);
}

/// Everything the inventory and the logs gave, compact: the shard's objects are built one at a time by
/// [`Aggregated::object`], in (tenant, key) order.
#[derive(Debug)]
pub(crate) struct Aggregated {
    table: Table,
    stripes: Vec<Stripe>,
    parents: Vec<PrefixActivity>,
    tops: Vec<PrefixActivity>,
    /// The shard's object indices sorted by (tenant, key).
    order: Vec<u32>,
    empty: HistoryStats,
    pub(crate) at: UnixSeconds,
    pub(crate) history_complete_since: Option<UnixSeconds>,
    pub(crate) inventory_objects: u64,
    pub(crate) duplicate_rows: u64,
    pub(crate) inventory_report: ReadReport,
    pub(crate) log_reports: Vec<ReadReport>,
    pub(crate) reads_at_or_after: u64,
    pub(crate) reads_ambiguous_tenant: u64,
    pub(crate) unknown: UnknownReads,
}

impl Aggregated {
    /// Objects of the shard.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    fn stats(&self, i: usize) -> &HistoryStats {
        self.stripes[i % STRIPES].get(i / STRIPES).unwrap_or(&self.empty)
    }

    /// Reads what building objects `range` (in shard order) needs, without using it: their facts, key offsets and
    /// stats slots first, then what those point to. Objects are built in key order but stored in inventory order,
    /// so each of these reads misses the cache; read together, the misses overlap.
    pub(crate) fn touch(&self, range: std::ops::Range<usize>) {
        let Some(order) = self.order.get(range) else {
            return;
        };
        let mut sum = 0u64;
        for &i in order {
            let i = i as usize;
            sum ^= u64::from(self.table.facts[i].flags)
                ^ u64::from(self.table.index.tenant(i))
                ^ u64::from(self.stripes[i % STRIPES].slots[i / STRIPES]);
        }
        for &i in order {
            let i = i as usize;
            let f = &self.table.facts[i];
            sum ^= u64::from(self.table.index.key_bytes(i).first().copied().unwrap_or_default())
                ^ self.stats(i).count
                ^ self.parents[f.parent as usize].objects
                ^ self.tops[f.top as usize].objects;
        }
        std::hint::black_box(sum);
    }

    /// The `n`-th object of the shard in (tenant, key) order, ready to score.
    pub(crate) fn object(&self, n: usize) -> PreparedObject {
        let mut object = PreparedObject {
            record: ObjectRecord::default(),
            stats: self.empty,
            image: None,
        };
        self.object_into(n, &mut object);
        object
    }

    /// [`Self::object`] written over `object`, whose strings are reused (a scoring thread builds millions).
    pub(crate) fn object_into(&self, n: usize, object: &mut PreparedObject) {
        let i = self.order[n] as usize;
        let f = &self.table.facts[i];
        let stats = *self.stats(i);
        let PreparedObject { record, .. } = object;
        // `text` in `spare`'s allocation.
        let refill = |mut spare: String, text: &str| {
            spare.clear();
            spare.push_str(text);
            spare
        };
        let optional = |spare: Option<String>, text: Option<&str>| text.map(|t| refill(spare.unwrap_or_default(), t));
        let tenant = self.table.tenants.name(self.table.index.tenant(i)).unwrap_or_default();
        *record = ObjectRecord {
            key: refill(std::mem::take(&mut record.key), self.table.index.key(i)),
            tenant: refill(std::mem::take(&mut record.tenant), tenant),
            size: f.opt(HAS_SIZE, f.size),
            created: f.opt(HAS_CREATED, f.created),
            modified: f.opt(HAS_MODIFIED, f.modified),
            content_type: optional(
                record.content_type.take(),
                self.table.content_types.name(f.content_type),
            ),
            storage_class: f.storage_class,
            owner: optional(record.owner.take(), self.table.owners.name(f.owner)),
            legal_hold: f.flags & LEGAL_HOLD != 0,
            retain_until: f.opt(HAS_RETAIN_UNTIL, f.retain_until),
            live_references: f.live_references,
            history: AccessHistory {
                accesses: Vec::new(),
                summary: (stats.count > 0).then_some(AccessSummary {
                    count: stats.count,
                    first: stats.first,
                    last: stats.last,
                }),
                complete_since: self.history_complete_since,
            },
            parent_activity: Some(self.parents[f.parent as usize]),
            top_activity: Some(self.tops[f.top as usize]),
        };
        object.stats = stats;
        object.image = None;
    }

    /// Every object of the shard, built.
    pub(crate) fn into_prepared(self) -> Prepared {
        let objects = (0..self.len()).map(|n| self.object(n)).collect();
        Prepared {
            at: self.at,
            history_complete_since: self.history_complete_since,
            objects,
            inventory_objects: self.inventory_objects,
            duplicate_rows: self.duplicate_rows,
            inventory_report: self.inventory_report,
            log_reports: self.log_reports,
            reads_at_or_after: self.reads_at_or_after,
            reads_ambiguous_tenant: self.reads_ambiguous_tenant,
            unknown: self.unknown,
        }
    }
}

/// Reads the inventory and the logs of `job` and returns the shard's objects with their aggregated reads and
/// prefix activity, sorted by (tenant, key). This is everything [`super::run_score`] scores; it is public so
/// that callers (and tests) can check a batch verdict against `engine.score` on a record with raw reads.
pub fn prepare(job: &ScoreJob) -> Result<Prepared, BatchError> {
    Ok(aggregate(job, &mut Progress::new(false))?.into_prepared())
}

/// Threads for the event pass and scoring.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, super::MAX_THREADS)
}

pub(crate) fn aggregate(job: &ScoreJob, progress: &mut Progress) -> Result<Aggregated, BatchError> {
    let at = job.at;

    // 1. The inventory.
    let InventoryTable {
        mut table,
        duplicate_rows,
        inventory_report,
    } = read_inventory_table(job, progress)?;
    let objects = table.facts.len();

    // 2. One pass over the logs.
    let mut log_reports = Vec::with_capacity(job.logs.len());
    let mut totals = Totals::default();
    for path in &job.logs {
        let format = match job.read_options.format {
            LogFormat::Auto => detect_format(path, &job.read_options)?,
            other => other,
        };
        let report = if format == LogFormat::EventsParquet {
            parquet_events(path, job, &table, &mut totals, progress)?
        } else {
            let options = ReadOptions {
                format,
                ..job.read_options.clone()
            };
            line_events(path, &options, job, &table, &mut totals, progress)?
        };
        log_reports.push(report);
    }
    progress.done("log events", totals.events);
    let stripes: Vec<Stripe> = std::mem::take(&mut table.stripes)
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect();
    let stats_of = |i: usize| stripes[i % STRIPES].get(i / STRIPES);

    // 3. Prefix activity over every inventory object (not only the shard's), so that shards add up; computed on a
    //    thread of its own while the shard's objects are sorted.
    let empty = HistoryStats::new(at);
    let accumulate = || {
        let mut parents = vec![PrefixAccumulator::new(at); table.parent_ids.len()];
        let mut tops = vec![PrefixAccumulator::new(at); table.top_ids.len()];
        for (i, f) in table.facts.iter().enumerate() {
            let stats = stats_of(i).unwrap_or(&empty);
            parents[f.parent as usize].add(stats);
            tops[f.top as usize].add(stats);
        }
        let parents: Vec<PrefixActivity> = parents.iter().map(PrefixAccumulator::finish).collect();
        let tops: Vec<PrefixActivity> = tops.iter().map(PrefixAccumulator::finish).collect();
        (parents, tops)
    };
    let ((parents, tops), order) = std::thread::scope(|s| {
        let prefixes = s.spawn(accumulate);
        let order = sorted_shard(&table);
        let prefixes = prefixes.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (prefixes, order)
    });
    table.parent_ids = PrefixIds::default();
    table.top_ids = PrefixIds::default();
    progress.done("prefix activity and order", order.len() as u64);
    let history_complete_since = job.history_complete_since.or(totals.earliest).map(|s| s.min(at));
    Ok(Aggregated {
        table,
        stripes,
        parents,
        tops,
        order,
        empty,
        at,
        history_complete_since,
        inventory_objects: objects as u64,
        duplicate_rows,
        inventory_report,
        log_reports,
        reads_at_or_after: totals.reads_at_or_after,
        reads_ambiguous_tenant: totals.reads_ambiguous_tenant,
        unknown: totals.unknown.finish(),
    })
}

/// Inventory rows handed from the reading thread to the indexing thread at a time.
const ROWS_PER_BLOCK: usize = 4_096;

/// Inventory rows read and interned, on their way to the key index: their keys back to back in `keys`, their
/// parent and top-level prefixes back to back in `prefixes`, and per row the rest ([`BlockRow`]).
#[derive(Debug, Default)]
struct RowBlock {
    keys: String,
    prefixes: String,
    rows: Vec<BlockRow>,
}

/// One inventory row of a [`RowBlock`]; each text starts where the previous row's (or prefix's) ends. Hashes are
/// [`hash_key`]'s. `facts.parent` and `facts.top` are not yet set.
#[derive(Debug, Clone, Copy)]
struct BlockRow {
    tenant: u32,
    key_end: usize,
    parent_end: usize,
    top_end: usize,
    key_hash: u64,
    parent_hash: u64,
    top_hash: u64,
    facts: Facts,
}

impl RowBlock {
    /// Row `j`'s key, parent prefix and top-level prefix.
    fn texts(&self, j: usize) -> (&str, &str, &str) {
        let row = &self.rows[j];
        let (key_start, prefix_start) = match j.checked_sub(1) {
            Some(p) => (self.rows[p].key_end, self.rows[p].top_end),
            None => (0, 0),
        };
        (
            &self.keys[key_start..row.key_end],
            &self.prefixes[prefix_start..row.parent_end],
            &self.prefixes[row.parent_end..row.top_end],
        )
    }
}

/// What the indexing thread of [`read_inventory_table`] builds: the key index, the facts of every new object and
/// the ids of their prefixes.
#[derive(Debug, Default)]
struct Indexed {
    index: KeyIndex,
    facts: Vec<Facts>,
    parent_ids: PrefixIds,
    top_ids: PrefixIds,
    duplicate_rows: u64,
    too_many: bool,
}

/// Per-block working space of [`Indexed::add_block`], kept between blocks.
#[derive(Debug, Default)]
struct BlockScratch {
    probes: Vec<(u32, u64)>,
    slots: Vec<u64>,
    /// The block's rows that are new objects.
    new_rows: Vec<usize>,
}

impl Indexed {
    /// Inserts the block's keys in order (so that object numbers follow the inventory's rows), keeps the facts of
    /// the keys not seen before and numbers their prefixes. Before each of the three steps the hash table slots
    /// of the whole block are read ([`KeyIndex::touch`]): on a large inventory nearly every probe misses the
    /// cache, and the misses then overlap.
    fn add_block(&mut self, block: &RowBlock, scratch: &mut BlockScratch) {
        let BlockScratch {
            probes,
            slots,
            new_rows,
        } = scratch;
        probes.clear();
        probes.extend(block.rows.iter().map(|r| (r.tenant, r.key_hash)));
        self.index.touch(probes, slots);
        new_rows.clear();
        let first_new = self.facts.len();
        for (j, row) in block.rows.iter().enumerate() {
            if self.facts.len() >= MAX_OBJECTS as usize {
                self.too_many = true;
                return;
            }
            match self.index.insert_hashed(row.tenant, block.texts(j).0, row.key_hash) {
                Some(Ok(_)) => {
                    new_rows.push(j);
                    self.facts.push(row.facts);
                }
                Some(Err(_)) => self.duplicate_rows += 1,
                None => {
                    self.too_many = true;
                    return;
                }
            }
        }
        for (ids, top) in [(&self.parent_ids, false), (&self.top_ids, true)] {
            probes.clear();
            probes.extend(new_rows.iter().map(|&j| {
                let row = &block.rows[j];
                (row.tenant, if top { row.top_hash } else { row.parent_hash })
            }));
            ids.ids.touch(probes, slots);
        }
        for (n, &j) in new_rows.iter().enumerate() {
            let row = &block.rows[j];
            let (_, parent, top) = block.texts(j);
            let (Some(parent), Some(top)) = (
                self.parent_ids.intern_hashed(row.tenant, parent, row.parent_hash),
                self.top_ids.intern_hashed(row.tenant, top, row.top_hash),
            ) else {
                self.too_many = true;
                return;
            };
            let facts = &mut self.facts[first_new + n];
            facts.parent = parent;
            facts.top = top;
        }
    }
}

/// The indexing thread of [`read_inventory_table`]: adds every block in turn ([`Indexed::add_block`]) and sends the
/// emptied blocks back to the reader on `recycle`.
fn index_rows(blocks: Receiver<RowBlock>, recycle: Sender<RowBlock>, rows_hint: Option<usize>) -> Indexed {
    let mut out = Indexed::default();
    if let Some(rows) = rows_hint {
        // Key bytes are a guess: the arena grows if they are longer, and pages never written cost nothing.
        out.index.reserve(rows, rows.saturating_mul(64));
        out.facts.reserve(rows);
    }
    let mut scratch = BlockScratch::default();
    for mut block in blocks {
        if !out.too_many {
            out.add_block(&block, &mut scratch);
        }
        block.keys.clear();
        block.prefixes.clear();
        block.rows.clear();
        // Recycling is only a saving: the reader is gone once it has sent its last block.
        let _ = recycle.send(block);
    }
    out
}

/// The inventory read into a [`Table`] (no stats yet).
#[derive(Debug)]
struct InventoryTable {
    table: Table,
    duplicate_rows: u64,
    inventory_report: ReadReport,
}

/// Reads the inventory on two threads besides the Parquet decoder's: this one parses rows, interns their tenants,
/// owners and content types, and finds and hashes their keys' prefixes; [`index_rows`] indexes the keys and
/// numbers the new objects' prefixes. A repeated (tenant, key) keeps its first row; the later rows' owner and
/// content type may be interned but no object refers to them.
fn read_inventory_table(job: &ScoreJob, progress: &mut Progress) -> Result<InventoryTable, BatchError> {
    let mut table = Table::default();
    let rows_hint = row_hint(&job.inventory);
    let default_tenant = job.inventory_options.default_tenant.as_str();
    let (read, indexed) = std::thread::scope(|s| {
        let (to_index, blocks) = std::sync::mpsc::sync_channel::<RowBlock>(4);
        let (recycle, recycled) = std::sync::mpsc::channel::<RowBlock>();
        let indexer = s.spawn(move || index_rows(blocks, recycle, rows_hint));
        let mut block = RowBlock::default();
        let mut rows = 0u64;
        let send = move |block: &mut RowBlock| {
            let next = recycled.try_recv().unwrap_or_default();
            // A send fails only if the indexer is gone, i.e. it panicked: the join below says so.
            let _ = to_index.send(std::mem::replace(block, next));
        };
        let mut add = |row: RowFacts<'_>| {
            let tenant_name = row.tenant.as_deref().unwrap_or(default_tenant);
            let key = row.key.as_ref();
            let tenant = table.tenants.intern(tenant_name);
            let in_shard = job.shard.is_none_or(|(i, n)| shard_of(tenant_name, key, n) == i);
            let flag = |set: bool, flag: u8| if set { flag } else { 0 };
            let facts = Facts {
                size: row.size.unwrap_or(0),
                created: row.created.unwrap_or(0),
                modified: row.modified.unwrap_or(0),
                retain_until: row.retain_until.unwrap_or(0),
                owner: table.owners.intern_opt(row.owner.as_deref()),
                content_type: table.content_types.intern_opt(row.content_type.as_deref()),
                live_references: row.live_references,
                // Numbered by the indexing thread.
                parent: 0,
                top: 0,
                storage_class: row.storage_class,
                flags: flag(row.size.is_some(), HAS_SIZE)
                    | flag(row.created.is_some(), HAS_CREATED)
                    | flag(row.modified.is_some(), HAS_MODIFIED)
                    | flag(row.retain_until.is_some(), HAS_RETAIN_UNTIL)
                    | flag(row.legal_hold, LEGAL_HOLD)
                    | flag(in_shard, IN_SHARD),
            };
            let parent_start = block.prefixes.len();
            block.keys.push_str(key);
            push_parent_prefix(key, &mut block.prefixes);
            let parent_end = block.prefixes.len();
            block.prefixes.push_str(top_prefix(key));
            let prefixes = block.prefixes.as_bytes();
            block.rows.push(BlockRow {
                tenant,
                key_end: block.keys.len(),
                parent_end,
                top_end: prefixes.len(),
                key_hash: hash_key(key.as_bytes()),
                parent_hash: hash_key(&prefixes[parent_start..parent_end]),
                top_hash: hash_key(&prefixes[parent_end..]),
                facts,
            });
            if block.rows.len() == ROWS_PER_BLOCK {
                send(&mut block);
            }
            rows += 1;
            progress.tick("inventory rows", rows);
        };
        let read = for_each_inventory_facts(&job.inventory, &job.inventory_options, false, &mut add);
        send(&mut block);
        // Closes the channel: the indexer ends once it has indexed the last block.
        drop(send);
        let indexed = indexer.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (read, indexed)
    });
    let inventory_report = read?;
    if indexed.too_many {
        return Err(BatchError::TooManyObjects {
            path: job.inventory.clone(),
            max: u64::from(MAX_OBJECTS),
        });
    }
    table.index = indexed.index;
    table.index.shrink();
    table.facts = indexed.facts;
    table.parent_ids = indexed.parent_ids;
    table.top_ids = indexed.top_ids;
    table.facts.shrink_to_fit();
    let objects = table.facts.len();
    // Object `i` is the `i / STRIPES`-th of stripe `i % STRIPES`. Room for every object's stats up front: they
    // are never moved by a growing vector (whose freed old buffers fragment the heap), and pages of objects never
    // read are never touched.
    table.stripes = (0..STRIPES)
        .map(|s| {
            let objects_in_stripe = objects.saturating_sub(s).div_ceil(STRIPES);
            Mutex::new(Stripe {
                slots: vec![NONE; objects_in_stripe],
                stats: Vec::with_capacity(objects_in_stripe),
            })
        })
        .collect();
    progress.done("inventory objects", objects as u64);
    Ok(InventoryTable {
        table,
        duplicate_rows: indexed.duplicate_rows,
        inventory_report,
    })
}

/// Words of a key's head compared before the key itself when sorting.
const HEAD_WORDS: usize = 5;

/// The shard's object indices sorted by (tenant, key), bytewise as `str` compares; the two halves are sorted on
/// two threads and merged.
fn sorted_shard(table: &Table) -> Vec<u32> {
    // Tenant ids ranked by name.
    let mut by_name: Vec<u32> = (0..table.tenants.names.len() as u32).collect();
    by_name.sort_unstable_by(|&a, &b| table.tenants.names[a as usize].cmp(&table.tenants.names[b as usize]));
    let mut rank = vec![0u32; by_name.len()];
    for (r, &t) in by_name.iter().enumerate() {
        rank[t as usize] = r as u32;
    }
    // (tenant rank, first 40 key bytes as big-endian words, object): a cheap first comparison that settles all
    // but keys sharing their first 40 bytes (keys share long prefixes: comparing them in the arena is a cache
    // miss each); the keys themselves only on a tie.
    let head = |i: usize| {
        let bytes = table.index.key_bytes(i);
        let mut words = [0u64; HEAD_WORDS];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_be_bytes(word);
        }
        words
    };
    type Item = (u32, [u64; HEAD_WORDS], u32);
    // Sized up front: grown by doubling, the vector (48 bytes an object) would be copied and its new pages zeroed
    // several times over.
    let in_shard = table.facts.iter().filter(|f| f.flags & IN_SHARD != 0).count();
    let mut items: Vec<Item> = Vec::with_capacity(in_shard);
    items.extend(
        table
            .facts
            .iter()
            .enumerate()
            .filter(|(_, f)| f.flags & IN_SHARD != 0)
            .map(|(i, _)| (rank[table.index.tenant(i) as usize], head(i), i as u32)),
    );
    let cmp = |a: &Item, b: &Item| {
        (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| {
            table
                .index
                .key_bytes(a.2 as usize)
                .cmp(table.index.key_bytes(b.2 as usize))
        })
    };
    if items.len() < 1 << 16 || threads() < 2 {
        items.sort_unstable_by(cmp);
        return items.into_iter().map(|x| x.2).collect();
    }
    let mid = items.len() / 2;
    let (left, right) = items.split_at_mut(mid);
    std::thread::scope(|s| {
        s.spawn(|| left.sort_unstable_by(cmp));
        right.sort_unstable_by(cmp);
    });
    let (left, right) = items.split_at(mid);
    let mut order = Vec::with_capacity(items.len());
    let (mut a, mut b) = (0, 0);
    while a < left.len() && b < right.len() {
        if cmp(&left[a], &right[b]).is_le() {
            order.push(left[a].2);
            a += 1;
        } else {
            order.push(right[b].2);
            b += 1;
        }
    }
    order.extend(left[a..].iter().map(|x| x.2));
    order.extend(right[b..].iter().map(|x| x.2));
    order
}

/// One text log (any format but Parquet), read sequentially by [`for_each_event`].
fn line_events(
    path: &std::path::Path,
    options: &ReadOptions,
    job: &ScoreJob,
    table: &Table,
    totals: &mut Totals,
    progress: &mut Progress,
) -> Result<ReadReport, ReadError> {
    let mut part = Part::default();
    let mut updates = Updates::new(table.facts.len());
    let mut in_part = 0usize;
    let report = for_each_event(path, options, |e: AccessEvent| {
        totals.events += 1;
        progress.tick("log events", totals.events);
        observe(table, job, &mut part, &mut updates, &e.tenant, &e.key, e.ts);
        in_part += 1;
        // Keeps the part's unknown-key tally small; merging in order keeps the result exact.
        if in_part >= READS_PER_PART {
            totals.merge(std::mem::take(&mut part));
            in_part = 0;
        }
    })?;
    updates.flush(&table.stripes, job.at);
    totals.merge(part);
    Ok(report)
}

/// What one Parquet batch gave, merged in file order.
struct BatchResult {
    part: Part,
    lines: u64,
    events: u64,
    ignored: u64,
    malformed: u64,
    first_malformed: Vec<(u64, String)>,
    error: Option<ReadError>,
}

/// Merges batch results in file order as they arrive from the threads.
struct Merger<'a> {
    next: usize,
    pending: BTreeMap<usize, BatchResult>,
    report: ReadReport,
    totals: &'a mut Totals,
    progress: &'a mut Progress,
    error: Option<ReadError>,
}

impl Merger<'_> {
    fn deposit(&mut self, batch: usize, result: BatchResult) {
        self.pending.insert(batch, result);
        while let Some(r) = self.pending.remove(&self.next) {
            self.next += 1;
            if self.error.is_some() {
                continue;
            }
            if let Some(e) = r.error {
                self.error = Some(e);
                continue;
            }
            self.report.lines += r.lines;
            self.report.events += r.events;
            self.report.ignored += r.ignored;
            self.report.malformed += r.malformed;
            for m in r.first_malformed {
                if self.report.first_malformed.len() < MAX_REPORTED_MALFORMED {
                    self.report.first_malformed.push(m);
                }
            }
            self.totals.events += r.events;
            self.totals.merge(r.part);
            self.progress.tick_now("log events", self.totals.events);
        }
    }
}

/// One canonical events Parquet file, its batches read and folded on several threads.
fn parquet_events(
    path: &std::path::Path,
    job: &ScoreJob,
    table: &Table,
    totals: &mut Totals,
    progress: &mut Progress,
) -> Result<ReadReport, ReadError> {
    let columns = EventColumns::of(path)?;
    let plan = BatchPlan::new(path, &columns.wanted())?;
    let mut first_rows = Vec::with_capacity(plan.batches.len());
    let mut rows = 0u64;
    for &(_, _, n) in &plan.batches {
        first_rows.push(rows);
        rows += n as u64;
    }
    let strict = job.read_options.strict;
    let default_tenant = job.read_options.default_tenant.as_str();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let merger = Mutex::new(Merger {
        next: 0,
        pending: BTreeMap::new(),
        report: ReadReport::new(path, SourceFormat::EventsParquet),
        totals,
        progress,
        error: None,
    });
    let most_rows = plan.batches.iter().map(|&(_, _, n)| n).max().unwrap_or_default();
    let work = || {
        let mut updates = Updates::new(table.facts.len());
        let mut found = Vec::with_capacity(ROW_BLOCK);
        let mut seen = SeenKeys::for_rows(most_rows);
        loop {
            let batch = next.fetch_add(1, Ordering::Relaxed);
            if batch >= plan.batches.len() || stop.load(Ordering::Relaxed) {
                break;
            }
            let mut r = BatchResult {
                part: Part::default(),
                lines: 0,
                events: 0,
                ignored: 0,
                malformed: 0,
                first_malformed: Vec::new(),
                error: None,
            };
            seen.next_batch();
            let decoded = plan.read(batch).and_then(|df| {
                let mut line = first_rows[batch];
                for_each_row(&df, &columns, default_tenant, |rows| {
                    if r.error.is_some() {
                        return;
                    }
                    let mut reads = [(0i64, "", ""); ROW_BLOCK];
                    let mut n = 0;
                    for row in rows.iter().take(ROW_BLOCK) {
                        line += 1;
                        r.lines += 1;
                        match row {
                            Row::Read { ts, tenant, key } => {
                                r.events += 1;
                                reads[n] = (*ts, *tenant, *key);
                                n += 1;
                            }
                            Row::Ignored => r.ignored += 1,
                            Row::Malformed(reason) => {
                                r.malformed += 1;
                                if strict {
                                    r.error = Some(ReadError::Malformed {
                                        path: path.to_path_buf(),
                                        line,
                                        reason: reason.clone(),
                                    });
                                    return;
                                } else if r.first_malformed.len() < MAX_REPORTED_MALFORMED {
                                    r.first_malformed.push((line, reason.clone()));
                                }
                            }
                        }
                    }
                    observe_block(
                        table,
                        job,
                        &mut r.part,
                        &mut updates,
                        &reads[..n],
                        &mut found,
                        &mut seen,
                    );
                })
                .map_err(|e| ReadError::parquet(path, e))
            });
            if let Err(e) = decoded {
                r.error = Some(e);
            }
            if r.error.is_some() {
                stop.store(true, Ordering::Relaxed);
            }
            merger.lock().unwrap_or_else(PoisonError::into_inner).deposit(batch, r);
        }
        updates.flush(&table.stripes, job.at);
    };
    let threads = threads().min(plan.batches.len()).max(1);
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let merger = merger.into_inner().unwrap_or_else(PoisonError::into_inner);
    if let Some(e) = merger.error {
        return Err(e);
    }
    let report = merger.report;
    tracing::debug!(
        path = %path.display(),
        format = ?LogFormat::EventsParquet,
        lines = report.lines,
        events = report.events,
        malformed = report.malformed,
        "read access log"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The radix sort gives what a stable sort by key gives, for keys of any width up to 32 bits.
        #[test]
        fn radix_sort_is_a_stable_sort(bits in 0u32..=32, raw in prop::collection::vec(any::<u32>(), 0..3_000)) {
            let mask = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
            let mut items: Vec<(u32, usize)> = raw.iter().enumerate().map(|(i, &k)| (k & mask, i)).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k);
            sort_by_key_bits(&mut items, &mut Vec::new(), bits);
            prop_assert_eq!(items, expected);
        }
    }

    /// Flushes fold every read into its own object's stats, whatever the order the reads came in.
    #[test]
    fn flush_folds_each_read_into_its_object() {
        let at = 1_000_000;
        for objects in [1usize, 63, 64, 65, 1_000] {
            let stripes: Vec<Mutex<Stripe>> = (0..STRIPES)
                .map(|s| {
                    Mutex::new(Stripe {
                        slots: vec![NONE; objects.saturating_sub(s).div_ceil(STRIPES)],
                        stats: Vec::new(),
                    })
                })
                .collect();
            let mut updates = Updates::new(objects);
            let mut expected = vec![HistoryStats::new(at); objects];
            // The largest case also passes the buffer's smallest size, so that a flush is made by `push` itself.
            let reads: u64 = if objects == 1_000 { 70_000 } else { 5_000 };
            for r in 0..reads {
                let object = (r.wrapping_mul(0x9e37_79b9) % objects as u64) as u32;
                let ts = at - 1 - (r * 7_919 % 500_000) as i64;
                expected[object as usize].observe(ts);
                updates.push(object, ts, &stripes, at);
                if r == 2_000 {
                    // A later flush folds into the stats the earlier ones made.
                    updates.flush(&stripes, at);
                }
            }
            updates.flush(&stripes, at);
            let stripes: Vec<Stripe> = stripes
                .into_iter()
                .map(|s| s.into_inner().unwrap_or_else(PoisonError::into_inner))
                .collect();
            for (o, want) in expected.iter().enumerate() {
                let got = stripes[o % STRIPES]
                    .get(o / STRIPES)
                    .copied()
                    .unwrap_or(HistoryStats::new(at));
                assert_eq!(&got, want, "object {o} of {objects}");
            }
        }
    }
}
