//! The sled feedback and audit store: the audit trail of verdicts, the actions callers took and the restores that
//! followed, realized precision, and the precision breaker.
//!
//! # Durability
//! Every write request (a slice of verdicts, actions or restores) is applied as **one** atomic sled `Batch` on a
//! single tree and `flush()`ed before the call returns, so an `Ok` acknowledgement means the whole request is on
//! disk and a crash leaves either all of it or none of it. Writers are serialised by a mutex; a request's own
//! earlier writes are visible to its later events through an in-memory overlay.
//!
//! [`Store::write_group`] applies several requests as one batch with one flush (a group commit: the server's
//! writer thread uses it so that concurrent requests share an fsync); each request still gets its own [`Ack`].
//! Verdicts are encoded for the audit trail by [`EncodedVerdict::new`], outside the writer lock; the stored
//! record is a compact binary encoding with the feature vector as raw doubles (see the `audit` module; records in
//! the two earlier formats are still read). [`Store::check_verdicts`] (or [`Store::precheck`]) looks verdicts up
//! by id beforehand, on the callers' threads, and says whether the ones found are on disk, so that verdicts
//! already audited need not be encoded or queued at all. A group with nothing to write (only duplicates) applies
//! no batch: sled would still log an empty batch, and the flush would fsync it.
//!
//! # Matching restores
//! A restore of (tenant, key) at `t` is matched to the latest action on that object that is not `Ignored`, with
//! `action.at <= t <= action.at + restore_window_secs` (ties on time: the greater event id). Matching does not
//! depend on arrival order: an action that arrives after a restore it should have matched takes the restore over.
//! A matched action is a false positive of its verdict's class and model version, read from the audited verdict
//! (by `verdict_id`) when the action is recorded (an action whose verdict is not audited is kept, counted in
//! [`Ack::unknown_verdicts`], reported under an empty model version and no class, and never feeds a breaker).
//!
//! # Realized precision
//! [`Store::precision`] groups actions that let an object go by model version x verdict class x tenant x top-level
//! prefix: `restores` counts the actions matched by at least one restore (so the rate is at most 1), the bound is
//! `reprieve_model::stats::upper_95`, and time-to-recover is `restore.at - requested_at` when the restore says when
//! the need arose, else `restore.at - action.at` (M5, delete -> restore).
//!
//! # The breaker
//! Per (model version, tenant, top-level prefix), over delete actions (soft or hard) at or after the scope's last
//! reset or promotion: it opens once `actions >= breaker_min_actions` and the one-sided 95% Clopper-Pearson upper
//! bound of `restored / actions` exceeds `breaker_target`. It never closes by itself: only
//! [`Store::reset_breaker`] (audited) or [`Store::promote_model`] close it. [`Store::breaker_open`] reads an
//! in-memory cache kept in step with every write.

mod audit;
mod keys;
mod types;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use reprieve_core::prefix::top_prefix;
use reprieve_core::{UnixSeconds, VerdictClass};
use reprieve_model::stats::{upper_95, upper_bound_at_most};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use types::{
    Ack, ActedVerdict, ActionEvent, ActionKind, AuditRecord, BreakerEvent, BreakerEventKind, BreakerScope,
    BreakerState, PrecisionFilter, PrecisionRow, RestoreEvent, StoreConfig, StoreError, VerdictPage, WriteRequest,
};

pub use audit::EncodedVerdict;

use keys::*;

/// Where `reprieve serve` and the `reprieve feedback` commands keep the store when no data directory is given.
pub const DEFAULT_DATA_DIR: &str = "./reprieve-data";

/// Most audit records [`Store::prune_audit`] removes in one commit.
pub const PRUNE_CHUNK: usize = 10_000;

/// File written into every store directory; a non-empty directory without it is refused.
const MARKER_FILE: &str = "REPRIEVE_STORE";
const FORMAT: &str = "reprieve-store v1";

/// An action as stored, with the verdict's class and model version resolved when it was recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredAction {
    event: ActionEvent,
    class: Option<VerdictClass>,
    model_version: Option<String>,
}

/// A restore as stored, with the action it is currently matched to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRestore {
    event: RestoreEvent,
    matched_action: Option<String>,
}

/// Open breakers by model version, tenant and prefix: lookups by `&str` without allocating.
type OpenSet = HashMap<String, HashMap<String, HashSet<String>>>;

/// The feedback and audit store. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    config: StoreConfig,
    db: sled::Db,
    /// Serialises writers; holds the breaker state of every scope (mirrors the `C` keys).
    writer: Mutex<HashMap<BreakerScope, BreakerState>>,
    open: RwLock<OpenSet>,
    /// The verdict ids of the latest group commits, for [`Store::precheck`] (locked only under `writer`).
    recent: Mutex<RecentVerdicts>,
    /// How many group commits wrote verdicts (`RecentVerdicts::done`, readable without a lock).
    verdict_commits: AtomicU64,
    /// How many commits have started applying their batch, how many have finished (commits are serialised by
    /// `writer`, so the two differ only during one), and how many of those were on disk when the latest successful
    /// flush returned: a record read from the tree is durable once `flushed` reaches the `applying` read after the
    /// read (see [`Store::precheck`]).
    applying: AtomicU64,
    applied: AtomicU64,
    flushed: AtomicU64,
}

/// Verdicts looked up by id before they are encoded (see [`Store::check_verdicts`]).
#[derive(Debug)]
pub struct VerdictCheck<'a> {
    store: &'a Store,
    commits: u64,
    /// The `V` key of the latest lookup (reused).
    key: Vec<u8>,
    present: usize,
    absent: usize,
}

impl VerdictCheck<'_> {
    /// Whether the verdict `verdict_id` is in the audit trail.
    pub fn present(&mut self, verdict_id: &str) -> Result<bool, StoreError> {
        self.key.truncate(1);
        self.key.extend_from_slice(verdict_id.as_bytes());
        let present = self.store.db.contains_key(&self.key)?;
        if present {
            self.present += 1;
        } else {
            self.absent += 1;
        }
        Ok(present)
    }

    /// Records on `record`, encoded after [`VerdictCheck::present`] found its id absent, that it was absent when
    /// this check began: staging it then only checks the commits since.
    pub fn absent(&self, record: &mut EncodedVerdict) {
        record.checked = Some(audit::Checked::Absent(self.commits));
    }

    /// How many verdicts were found present.
    pub fn found(&self) -> usize {
        self.present
    }

    /// What the lookups found: all present or not, and whether the ones found were all on disk.
    pub fn finish(self) -> Prechecked {
        // Read after the lookups: whatever they found was applied by one of the first `applying` commits.
        let applying = self.store.applying.load(Ordering::Acquire);
        Prechecked {
            all_present: self.absent == 0,
            durable: self.store.flushed.load(Ordering::Acquire) >= applying,
        }
    }
}

/// What [`Store::precheck`] found about a whole request's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prechecked {
    /// Every verdict was in the audit trail already: writing them would only count duplicates.
    pub all_present: bool,
    /// Every verdict found was on disk (flushed) when it was found (from [`Store::precheck`]: and all were found).
    pub durable: bool,
}

/// Most group commits, and most verdict ids over them, that [`RecentVerdicts`] remembers. A verdict checked
/// absent before older commits than these is looked up again in the tree when it is staged.
const RECENT_COMMITS: usize = 256;
const RECENT_IDS: usize = 500_000;

/// The verdict keys written by the latest group commits that wrote verdicts: commits number `done - len + 1` to
/// `done`, oldest first. A verdict [`Store::precheck`]ed absent when `done` was `g` is a duplicate at staging
/// time only if one of the commits after `g` (or the group being staged) wrote it: the tree need not be searched
/// again in the writer, which is the one thread every audited verdict passes through.
#[derive(Debug, Default)]
struct RecentVerdicts {
    done: u64,
    /// `done` after the latest removal of verdicts or failed commit.
    floor: u64,
    commits: VecDeque<HashSet<sled::IVec>>,
    ids: usize,
}

impl RecentVerdicts {
    /// Whether commits after `g` wrote `key`; `None` when some of them are no longer remembered.
    fn written_after(&self, g: u64, key: &[u8]) -> Option<bool> {
        let after = self.done.checked_sub(g)?;
        if after > self.commits.len() as u64 {
            return None;
        }
        Some(self.commits.iter().rev().take(after as usize).any(|c| c.contains(key)))
    }

    /// Whether no verdict was removed (or a commit failed) since `g`: a verdict present then still is.
    fn kept_since(&self, g: u64) -> bool {
        g >= self.floor
    }

    fn push(&mut self, keys: HashSet<sled::IVec>) {
        self.done += 1;
        self.ids += keys.len();
        self.commits.push_back(keys);
        while self.commits.len() > RECENT_COMMITS || (self.ids > RECENT_IDS && self.commits.len() > 1) {
            if let Some(c) = self.commits.pop_front() {
                self.ids -= c.len();
            }
        }
    }

    /// After a commit that may or may not have been applied, or that removed verdicts: forget everything, so that
    /// every verdict checked before it is looked up in the tree again.
    fn forget(&mut self) {
        self.done += 1;
        self.floor = self.done;
        self.commits.clear();
        self.ids = 0;
    }
}

/// Key-value pairs read back from the tree.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Writes of one request not yet applied: reads go through it so later events see earlier ones.
#[derive(Default)]
struct Pending {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Audit records (`V` keys, never ranged over while staging), shared with their encoded form, not copied.
    verdicts: HashMap<sled::IVec, sled::IVec>,
    /// Inserts of keys no staged read ever looks at (audit indexes): no overlay needed.
    appends: Vec<(sled::IVec, sled::IVec)>,
    /// The actions staged (also in `writes`, encoded), so that breaker accounting need not decode them again.
    staged_actions: HashMap<String, StoredAction>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.verdicts.is_empty() && self.appends.is_empty()
    }

    fn append(&mut self, k: sled::IVec, v: sled::IVec) {
        self.appends.push((k, v));
    }

    fn put_verdict(&mut self, k: sled::IVec, v: sled::IVec) {
        self.verdicts.insert(k, v);
    }

    fn contains(&self, db: &sled::Db, k: &[u8]) -> Result<bool, StoreError> {
        if self.verdicts.contains_key(k) {
            return Ok(true);
        }
        match self.writes.get(k) {
            Some(v) => Ok(v.is_some()),
            None => Ok(db.contains_key(k)?),
        }
    }

    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.writes.insert(k, Some(v));
    }

    fn remove(&mut self, k: Vec<u8>) {
        self.writes.insert(k, None);
    }

    fn get(&self, db: &sled::Db, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.verdicts.get(k) {
            return Ok(Some(v.to_vec()));
        }
        match self.writes.get(k) {
            Some(v) => Ok(v.clone()),
            None => Ok(db.get(k)?.map(|v| v.to_vec())),
        }
    }

    /// Keys in `[lo, hi)`, merged with the pending writes, in key order.
    fn range(&self, db: &sled::Db, lo: &[u8], hi: &[u8]) -> Result<Entries, StoreError> {
        let mut out = BTreeMap::new();
        for kv in db.range(lo..hi) {
            let (k, v) = kv?;
            out.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self.writes.range(lo.to_vec()..hi.to_vec()) {
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        Ok(out.into_iter().collect())
    }

    fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in self.verdicts.into_iter().chain(self.appends) {
            batch.insert(k, v);
        }
        for (k, v) in self.writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Invalid(format!("cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

/// Refuses a request with an event without an id (nothing of it is written).
fn check_ids<'a>(
    mut events: impl Iterator<Item = (&'a String, &'a String, &'a String)>,
    what: &str,
) -> Result<(), StoreError> {
    match events.find(|(id, _, _)| id.is_empty()) {
        Some((_, tenant, key)) => Err(StoreError::Invalid(format!("{what} {tenant}/{key} without event_id"))),
        None => Ok(()),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Store {
    /// Opens (or creates) the store in `dir`. An empty or missing directory becomes a new store; a non-empty
    /// directory must be a Reprieve store. A locked (open elsewhere, in this process or another) or corrupt store is
    /// an error naming the directory, never an empty store.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let not_a_store = |detail: &str| StoreError::NotAStore {
            dir: dir.to_path_buf(),
            detail: detail.to_string(),
        };
        if config.restore_window_secs < 0 || config.audit_retention_secs < 0 || !config.breaker_target.is_finite() {
            return Err(StoreError::Invalid(format!("bad store config: {config:?}")));
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let marker = dir.join(MARKER_FILE);
        let fresh = std::fs::read_dir(dir).map_err(io)?.next().is_none();
        if !fresh {
            match std::fs::read_to_string(&marker) {
                Ok(text) if text.trim() == FORMAT => {}
                Ok(text) => return Err(not_a_store(&format!("unknown format {:?}", text.trim()))),
                Err(_) => return Err(not_a_store("no REPRIEVE_STORE marker in a non-empty directory")),
            }
            if !dir.join("db").is_file() || !dir.join("conf").is_file() {
                return Err(not_a_store(
                    "the marker is there but sled's `db`/`conf` files are missing",
                ));
            }
        }
        let db = open_sled(dir)?;
        let format_key = simple(META, "format");
        if fresh {
            db.insert(&format_key, FORMAT.as_bytes())?;
            db.flush()?;
            std::fs::write(&marker, format!("{FORMAT}\n")).map_err(io)?;
        } else if db.get(&format_key)?.as_deref() != Some(FORMAT.as_bytes()) {
            return Err(not_a_store(
                "the sled database has no Reprieve format record (empty or foreign data)",
            ));
        }
        let mut scopes = HashMap::new();
        for kv in db.scan_prefix([SCOPE]) {
            let (k, v) = kv?;
            let mut pos = 1;
            let (Some(model_version), Some(tenant), Some(prefix)) =
                (get_str(&k, &mut pos), get_str(&k, &mut pos), get_str(&k, &mut pos))
            else {
                return Err(StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    detail: "bad scope key".into(),
                });
            };
            scopes.insert(
                BreakerScope {
                    model_version,
                    tenant,
                    prefix,
                },
                decode::<BreakerState>(&k, &v)?,
            );
        }
        let store = Store {
            dir: dir.to_path_buf(),
            config,
            db,
            writer: Mutex::new(HashMap::new()),
            open: RwLock::new(OpenSet::new()),
            recent: Mutex::new(RecentVerdicts::default()),
            verdict_commits: AtomicU64::new(0),
            applying: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
        };
        {
            let mut guard = store.writer.lock().unwrap_or_else(PoisonError::into_inner);
            store.install_locked(&mut guard, scopes);
        }
        Ok(store)
    }

    /// Whether `dir` holds a store (its marker file is there). Callers that must not create a store, such as
    /// read-only commands, check this before [`Store::open`], which creates one in a missing or empty directory.
    pub fn exists(dir: &Path) -> bool {
        dir.join(MARKER_FILE).is_file()
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Applies `pending` as one atomic batch; with `durable`, flushes (fsync) before returning. Nothing to write
    /// (a group of duplicates) applies no batch: an empty sled batch still appends a manifest to the log, which
    /// the flush would then write and fsync for nothing.
    fn commit(&self, pending: Pending, durable: bool) -> Result<(), StoreError> {
        if !pending.is_empty() {
            self.applying.fetch_add(1, Ordering::AcqRel);
            let applied = self.db.apply_batch(pending.into_batch());
            // Failed or not, the attempt is over: a later flush covers whatever of it was applied.
            self.applied.fetch_add(1, Ordering::AcqRel);
            applied?;
        }
        if durable {
            self.flush()?;
        }
        Ok(())
    }

    /// Makes every write applied so far durable (what a buffered writer calls on its timer). Cheap when nothing
    /// was written since the last flush.
    pub fn flush(&self) -> Result<(), StoreError> {
        let applied = self.applied.load(Ordering::Acquire);
        self.db.flush()?;
        self.flushed.fetch_max(applied, Ordering::AcqRel);
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------------------
    // Group commits
    // ---------------------------------------------------------------------------------------------------------

    /// Applies several write requests as **one** atomic sled batch, in order (a request sees the writes of the
    /// requests before it), and with `durable` flushes once for all of them: a group commit. Returns one answer
    /// per request: a request refused as invalid (`Err`) writes nothing and does not stop the others. An `Err` of
    /// the call itself (I/O) means nothing of the group was acknowledged.
    ///
    /// With `durable = false` the writes are applied (visible to every reader) but reach the disk only on a later
    /// durable write, [`Store::flush`], or sled's own periodic flush: a crash can lose them. Breakers the group
    /// opens are dated with the latest action or restore time in the whole group.
    #[allow(clippy::type_complexity)]
    pub fn write_group(
        &self,
        requests: &[WriteRequest<'_>],
        durable: bool,
    ) -> Result<Vec<Result<Ack, StoreError>>, StoreError> {
        let mut scopes = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let mut p = Pending::default();
        let mut dirty = Vec::new();
        let mut latest = i64::MIN;
        let mut out = Vec::with_capacity(requests.len());
        for request in requests {
            let answer = match request {
                WriteRequest::Verdicts(records) => Ok(self.stage_verdicts(&mut p, &recent, records)?),
                WriteRequest::Actions(events) => {
                    match check_ids(events.iter().map(|e| (&e.event_id, &e.tenant, &e.key)), "action on") {
                        Err(e) => Err(e),
                        Ok(()) => {
                            latest = events.iter().map(|e| e.at).fold(latest, i64::max);
                            Ok(self.stage_actions(&mut p, events, &mut dirty)?)
                        }
                    }
                }
                WriteRequest::Restores(events) => {
                    match check_ids(events.iter().map(|e| (&e.event_id, &e.tenant, &e.key)), "restore of") {
                        Err(e) => Err(e),
                        Ok(()) => {
                            latest = events.iter().map(|e| e.at).fold(latest, i64::max);
                            Ok(self.stage_restores(&mut p, events, &mut dirty)?)
                        }
                    }
                }
            };
            out.push(answer);
        }
        let written: HashSet<sled::IVec> = p.verdicts.keys().cloned().collect();
        let finished = self.finish(&mut scopes, p, dirty, latest, durable);
        if finished.is_ok() && !written.is_empty() {
            recent.push(written);
        } else if finished.is_err() {
            recent.forget();
        }
        self.verdict_commits.store(recent.done, Ordering::Release);
        finished?;
        Ok(out)
    }

    /// One request on its own, durable on return.
    fn write_one(&self, request: WriteRequest<'_>) -> Result<Ack, StoreError> {
        self.write_group(&[request], true)?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Invalid("no answer for the request".into())))
    }

    // ---------------------------------------------------------------------------------------------------------
    // Audit trail
    // ---------------------------------------------------------------------------------------------------------

    /// Appends issued verdicts to the audit trail (durable on return). A verdict id already stored is a duplicate
    /// and is left as it was. Non-finite probabilities or features are refused. Encode with
    /// [`EncodedVerdict::new`] and use [`Store::write_group`] to keep the encoding out of the writer lock.
    pub fn record_verdicts(&self, records: &[AuditRecord]) -> Result<Ack, StoreError> {
        let encoded = records.iter().map(EncodedVerdict::new).collect::<Result<Vec<_>, _>>()?;
        self.write_one(WriteRequest::Verdicts(&encoded))
    }

    /// Looks up, before they are queued for the writer, whether `records` are in the audit trail already, and
    /// remembers on each what was found and when: staging it then only checks, in memory, the group commits since
    /// (found absent) or that nothing was pruned since (found present), instead of searching the tree again on the
    /// writer thread every audited verdict passes through. Optional: a record not checked, or checked longer ago
    /// than the store remembers, is looked up while staged. Call it on the threads that encode, so the lookups run
    /// in parallel.
    ///
    /// The answer says whether every record was found, and whether they were all on disk: a commit's records
    /// are on disk once a flush that began after its batch was applied has returned, so the records found are
    /// durable when the flushes have caught up with the commits applied by the end of the lookups. A caller may
    /// then answer with these verdicts without queueing them (writing them would only count duplicates).
    pub fn precheck(&self, records: &mut [EncodedVerdict]) -> Result<Prechecked, StoreError> {
        // Read before the lookups: every commit up to `g` is visible to them; later ones are remembered.
        let g = self.verdict_commits.load(Ordering::Acquire);
        let mut all_present = true;
        for r in records {
            let present = self.db.contains_key(&r.verdict_key)?;
            all_present &= present;
            r.checked = Some(if present {
                audit::Checked::Present(g)
            } else {
                audit::Checked::Absent(g)
            });
        }
        // Read after the lookups: whatever they found was applied by one of the first `applying` commits.
        let applying = self.applying.load(Ordering::Acquire);
        let durable = all_present && self.flushed.load(Ordering::Acquire) >= applying;
        Ok(Prechecked { all_present, durable })
    }

    /// Starts looking up a request's verdicts by id, one at a time, **before** encoding them: a verdict found in
    /// the audit trail need not be encoded nor queued at all (the writer would only count it as a duplicate), and
    /// one found absent is encoded and then marked with [`VerdictCheck::absent`], as [`Store::precheck`] would.
    /// [`VerdictCheck::finish`] says whether the verdicts found were all on disk.
    pub fn check_verdicts(&self) -> VerdictCheck<'_> {
        VerdictCheck {
            store: self,
            // Read before the lookups, as in `precheck`.
            commits: self.verdict_commits.load(Ordering::Acquire),
            key: vec![VERDICT],
            present: 0,
            absent: 0,
        }
    }

    fn stage_verdicts(
        &self,
        p: &mut Pending,
        recent: &RecentVerdicts,
        records: &[EncodedVerdict],
    ) -> Result<Ack, StoreError> {
        let mut ack = Ack::default();
        for r in records {
            // Only this function stages `V` keys, into `p.verdicts`.
            let known = match r.checked {
                // Only pruning removes audit records: present then, present now unless it ran since.
                Some(audit::Checked::Present(g)) => recent.kept_since(g).then_some(true),
                Some(audit::Checked::Absent(g)) => recent
                    .written_after(g, &r.verdict_key)
                    .map(|written| written || p.verdicts.contains_key(&r.verdict_key)),
                None => None,
            };
            let duplicate = match known {
                Some(duplicate) => duplicate,
                None => p.contains(&self.db, &r.verdict_key)?,
            };
            if duplicate {
                ack.duplicates += 1;
                continue;
            }
            // Shared buffers, encoded by the caller: staging a verdict copies nothing.
            p.put_verdict(r.verdict_key.clone(), r.value.clone());
            // The indexes are never read while a group is staged: they go straight into the batch.
            p.append(r.by_key.clone(), sled::IVec::default());
            p.append(r.by_time.clone(), sled::IVec::default());
            ack.accepted += 1;
        }
        Ok(ack)
    }

    /// One audited verdict by id.
    pub fn verdict(&self, verdict_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        let k = simple(VERDICT, verdict_id);
        self.db.get(&k)?.map(|v| audit::decode(&k, &v)).transpose()
    }

    /// The verdicts issued for (tenant, key), newest first, at most `limit`.
    pub fn verdicts_for_key(&self, tenant: &str, key: &str, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self
            .verdicts_for_key_page(tenant, key, i64::MIN, i64::MAX, limit, None)?
            .records)
    }

    /// The verdicts issued for (tenant, key) and scored in `[from, to]`, newest first, at most `limit`, starting
    /// after `page` (a [`VerdictPage::next`] of the same query).
    pub fn verdicts_for_key_page(
        &self,
        tenant: &str,
        key: &str,
        from: UnixSeconds,
        to: UnixSeconds,
        limit: usize,
        page: Option<&[u8]>,
    ) -> Result<VerdictPage, StoreError> {
        let prefix = object_prefix(VERDICT_BY_KEY, tenant, key);
        if from > to {
            return Ok(VerdictPage::default());
        }
        let lo = [prefix.as_slice(), &ts(from)].concat();
        let mut hi = match to.checked_add(1) {
            Some(t) => [prefix.as_slice(), &ts(t)].concat(),
            None => prefix_end(&prefix),
        };
        if let Some(after) = page {
            if !after.starts_with(&prefix) {
                return Err(StoreError::Invalid("the page token belongs to another query".into()));
            }
            hi = hi.min(after.to_vec());
        }
        let mut out = VerdictPage::default();
        let mut last = None;
        for kv in self.db.range(lo..hi).rev() {
            let (k, _) = kv?;
            if out.records.len() >= limit {
                out.next = last;
                break;
            }
            if let Some(r) = self.verdict(&object_at_id(&k, prefix.len()))? {
                out.records.push(r);
                last = Some(k.to_vec());
            }
        }
        Ok(out)
    }

    /// The verdicts scored in `[from, to]` (inclusive), oldest first, at most `limit`.
    pub fn verdicts_between(
        &self,
        from: UnixSeconds,
        to: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self.verdicts_between_page(from, to, None, limit, None)?.records)
    }

    /// The verdicts scored in `[from, to]`, of `tenant` if given (filtered while scanning), oldest first, at most
    /// `limit`, starting after `page` (a [`VerdictPage::next`] of the same query).
    pub fn verdicts_between_page(
        &self,
        from: UnixSeconds,
        to: UnixSeconds,
        tenant: Option<&str>,
        limit: usize,
        page: Option<&[u8]>,
    ) -> Result<VerdictPage, StoreError> {
        if from > to {
            return Ok(VerdictPage::default());
        }
        let mut lo = time_key(from, "");
        let hi = match to.checked_add(1) {
            Some(t) => time_key(t, ""),
            None => prefix_end(&[VERDICT_BY_TIME]),
        };
        if let Some(after) = page {
            if after.first() != Some(&VERDICT_BY_TIME) {
                return Err(StoreError::Invalid("the page token belongs to another query".into()));
            }
            // The smallest key after `after`.
            let mut next = after.to_vec();
            next.push(0);
            lo = lo.max(next);
        }
        let mut out = VerdictPage::default();
        if lo >= hi {
            return Ok(out);
        }
        let mut last = None;
        for kv in self.db.range(lo..hi) {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(k.get(9..).unwrap_or_default()).into_owned();
            let Some(r) = self.verdict(&id)? else { continue };
            if tenant.is_some_and(|t| t != r.verdict.tenant) {
                continue;
            }
            if out.records.len() >= limit {
                out.next = last;
                break;
            }
            out.records.push(r);
            last = Some(k.to_vec());
        }
        Ok(out)
    }

    /// Removes audited verdicts scored strictly before `now - audit_retention_secs`; younger ones are never
    /// touched. Returns how many were removed. Works in commits of at most [`PRUNE_CHUNK`] records, letting
    /// writers in between. Actions keep the class and model version they resolved.
    pub fn prune_audit(&self, now: UnixSeconds) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(self.config.audit_retention_secs);
        let mut removed = 0;
        loop {
            let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let mut p = Pending::default();
            let mut n = 0;
            for kv in self
                .db
                .range(vec![VERDICT_BY_TIME]..time_key(cutoff, ""))
                .take(PRUNE_CHUNK)
            {
                let (k, _) = kv?;
                let id = String::from_utf8_lossy(k.get(9..).unwrap_or_default()).into_owned();
                if let Some(r) = self.verdict(&id)? {
                    let v = &r.verdict;
                    p.remove(object_at(VERDICT_BY_KEY, &v.tenant, &v.key, v.scored_at, &v.verdict_id));
                }
                p.remove(simple(VERDICT, &id));
                p.remove(k.to_vec());
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            let committed = self.commit(p, true);
            // A verdict written after a precheck and pruned since must not pass for a duplicate when staged.
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent.forget();
            self.verdict_commits.store(recent.done, Ordering::Release);
            committed?;
            removed += n;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Actions and restores
    // ---------------------------------------------------------------------------------------------------------

    /// Records what callers did with verdicts. Idempotent by `event_id`. Durable on return.
    pub fn record_actions(&self, events: &[ActionEvent]) -> Result<Ack, StoreError> {
        self.write_one(WriteRequest::Actions(events))
    }

    /// The class and model version of an audited verdict, seeing the writes staged in `p`.
    fn audited_kind(&self, p: &Pending, verdict_id: &str) -> Result<Option<(VerdictClass, String)>, StoreError> {
        let k = simple(VERDICT, verdict_id);
        p.get(&self.db, &k)?.map(|v| audit::decode_kind(&k, &v)).transpose()
    }

    fn stage_actions(
        &self,
        p: &mut Pending,
        events: &[ActionEvent],
        dirty: &mut Vec<String>,
    ) -> Result<Ack, StoreError> {
        let mut ack = Ack::default();
        for e in events {
            let k = simple(ACTION, &e.event_id);
            if p.contains(&self.db, &k)? {
                ack.duplicates += 1;
                continue;
            }
            let audited = self.audited_kind(p, &e.verdict_id)?;
            if audited.is_none() {
                ack.unknown_verdicts += 1;
            }
            let (class, model_version) = audited.unzip();
            let stored = StoredAction {
                event: e.clone(),
                class,
                model_version,
            };
            p.put(k, encode(&stored)?);
            p.staged_actions.insert(e.event_id.clone(), stored);
            p.put(
                object_at(ACTION_BY_KEY, &e.tenant, &e.key, e.at, &e.event_id),
                vec![e.kind.code()],
            );
            dirty.push(e.event_id.clone());
            ack.accepted += 1;
            if !e.kind.lets_go() {
                continue;
            }
            // Restores this action may now be the best match for.
            let prefix = object_prefix(RESTORE_BY_KEY, &e.tenant, &e.key);
            let mut lo = prefix.clone();
            lo.extend_from_slice(&ts(e.at));
            let hi = match e
                .at
                .checked_add(self.config.restore_window_secs)
                .and_then(|t| t.checked_add(1))
            {
                Some(t) => [prefix.as_slice(), &ts(t)].concat(),
                None => prefix_end(&prefix),
            };
            for (rk, _) in p.range(&self.db, &lo, &hi)? {
                let rid = object_at_id(&rk, prefix.len());
                let key = simple(RESTORE, &rid);
                let Some(bytes) = p.get(&self.db, &key)? else { continue };
                let mut r: StoredRestore = decode(&key, &bytes)?;
                let best = self.best_action(p, &r.event.tenant, &r.event.key, r.event.at)?;
                if best != r.matched_action {
                    if let Some(old) = &r.matched_action {
                        p.remove(match_key(old, &rid));
                        dirty.push(old.clone());
                    }
                    if let Some(new) = &best {
                        p.put(match_key(new, &rid), Vec::new());
                        dirty.push(new.clone());
                    }
                    r.matched_action = best;
                    p.put(key, encode(&r)?);
                }
            }
        }
        Ok(ack)
    }

    /// Records restores, matching each to the action it proves wrong. Idempotent by `event_id`. Durable on return.
    /// [`Ack::matched`] counts the new restores matched at this moment; an action reported later can still take a
    /// restore over (see the crate docs), which changes precision and breakers but not past acknowledgements.
    pub fn record_restores(&self, events: &[RestoreEvent]) -> Result<Ack, StoreError> {
        self.write_one(WriteRequest::Restores(events))
    }

    fn stage_restores(
        &self,
        p: &mut Pending,
        events: &[RestoreEvent],
        dirty: &mut Vec<String>,
    ) -> Result<Ack, StoreError> {
        let mut ack = Ack::default();
        for e in events {
            let k = simple(RESTORE, &e.event_id);
            if p.contains(&self.db, &k)? {
                ack.duplicates += 1;
                continue;
            }
            let matched = self.best_action(p, &e.tenant, &e.key, e.at)?;
            if let Some(a) = &matched {
                p.put(match_key(a, &e.event_id), Vec::new());
                dirty.push(a.clone());
                ack.matched += 1;
            }
            p.put(
                k,
                encode(&StoredRestore {
                    event: e.clone(),
                    matched_action: matched,
                })?,
            );
            p.put(
                object_at(RESTORE_BY_KEY, &e.tenant, &e.key, e.at, &e.event_id),
                Vec::new(),
            );
            ack.accepted += 1;
        }
        Ok(ack)
    }
    /// The latest action (not `Ignored`) on (tenant, key) at or before `at` and within the restore window.
    fn best_action(&self, p: &Pending, tenant: &str, key: &str, at: UnixSeconds) -> Result<Option<String>, StoreError> {
        let prefix = object_prefix(ACTION_BY_KEY, tenant, key);
        let lo = [
            prefix.as_slice(),
            &ts(at.saturating_sub(self.config.restore_window_secs)),
        ]
        .concat();
        let hi = match at.checked_add(1) {
            Some(t) => [prefix.as_slice(), &ts(t)].concat(),
            None => prefix_end(&prefix),
        };
        let ignored = ActionKind::Ignored.code();
        Ok(p.range(&self.db, &lo, &hi)?
            .into_iter()
            .rev()
            .find(|(_, v)| v.first() != Some(&ignored))
            .map(|(k, _)| object_at_id(&k, prefix.len())))
    }

    /// What an action adds to its breaker scope: the scope and whether it is restored, if it counts at all.
    fn contribution(
        &self,
        p: &Pending,
        scopes: &HashMap<BreakerScope, BreakerState>,
        action_id: &str,
    ) -> Result<Option<(BreakerScope, bool)>, StoreError> {
        let decoded;
        let (a, fresh) = match p.staged_actions.get(action_id) {
            Some(a) => (a, true),
            None => {
                let k = simple(ACTION, action_id);
                let Some(bytes) = p.get(&self.db, &k)? else {
                    return Ok(None);
                };
                decoded = decode::<StoredAction>(&k, &bytes)?;
                (&decoded, false)
            }
        };
        let Some(model_version) = &a.model_version else {
            return Ok(None);
        };
        if !a.event.kind.is_delete() {
            return Ok(None);
        }
        let scope = BreakerScope {
            model_version: model_version.clone(),
            tenant: a.event.tenant.clone(),
            prefix: top_prefix(&a.event.key).to_string(),
        };
        if a.event.at < scopes.get(&scope).map_or(i64::MIN, |s| s.counting_since) {
            return Ok(None);
        }
        let mp = match_prefix(action_id);
        let restored = if fresh {
            // An action staged in this group has no match on disk yet: only staged ones can exist.
            p.writes.range(mp.clone()..prefix_end(&mp)).any(|(_, v)| v.is_some())
        } else {
            !p.range(&self.db, &mp, &prefix_end(&mp))?.is_empty()
        };
        Ok(Some((scope, restored)))
    }

    /// Updates the breaker counters of the actions touched by a request, opens breakers (dated `at`, the latest
    /// event time of the request), commits, installs.
    fn finish(
        &self,
        scopes: &mut HashMap<BreakerScope, BreakerState>,
        mut p: Pending,
        mut dirty: Vec<String>,
        at: UnixSeconds,
        durable: bool,
    ) -> Result<(), StoreError> {
        dirty.sort();
        dirty.dedup();
        let before = Pending::default();
        let mut next: HashMap<BreakerScope, BreakerState> = HashMap::new();
        for id in &dirty {
            // An action staged in this group was not stored before it.
            let old = if p.staged_actions.contains_key(id) {
                None
            } else {
                self.contribution(&before, scopes, id)?
            };
            let new = self.contribution(&p, scopes, id)?;
            if old == new {
                continue;
            }
            for (c, sign) in [(old, -1i64), (new, 1)] {
                let Some((scope, restored)) = c else { continue };
                let st = next
                    .entry(scope.clone())
                    .or_insert_with(|| scopes.get(&scope).cloned().unwrap_or_default());
                st.actions = st.actions.saturating_add_signed(sign);
                if restored {
                    st.restored = st.restored.saturating_add_signed(sign);
                }
            }
        }
        for (scope, st) in &mut next {
            if !st.open && self.trips(st) {
                st.open = true;
                st.opened_at = Some(at);
                let ev = BreakerEvent {
                    at,
                    scope: scope.clone(),
                    kind: BreakerEventKind::Opened {
                        actions: st.actions,
                        restored: st.restored,
                        upper_95: upper_95(st.restored, st.actions),
                    },
                };
                self.put_event(&mut p, &ev)?;
            }
            p.put(
                scope_key(&scope.model_version, &scope.tenant, &scope.prefix),
                encode(st)?,
            );
        }
        self.commit(p, durable)?;
        if !next.is_empty() {
            self.install_locked(scopes, next);
        }
        Ok(())
    }

    /// Applies changed scope states (after a successful commit) to the writer's map and the open-breaker cache.
    fn install_locked(
        &self,
        guard: &mut HashMap<BreakerScope, BreakerState>,
        next: HashMap<BreakerScope, BreakerState>,
    ) {
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        for (s, st) in next {
            if st.open {
                open.entry(s.model_version.clone())
                    .or_default()
                    .entry(s.tenant.clone())
                    .or_default()
                    .insert(s.prefix.clone());
            } else if let Some(prefixes) = open.get_mut(&s.model_version).and_then(|t| t.get_mut(&s.tenant)) {
                prefixes.remove(&s.prefix);
            }
            guard.insert(s, st);
        }
    }

    fn trips(&self, st: &BreakerState) -> bool {
        st.actions >= self.config.breaker_min_actions
            && st.actions > 0
            && !upper_bound_at_most(st.restored, st.actions, self.config.breaker_target)
    }

    fn put_event(&self, p: &mut Pending, ev: &BreakerEvent) -> Result<(), StoreError> {
        let mut k = vec![EVENT];
        k.extend_from_slice(&ts(ev.at));
        k.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        p.put(k, encode(ev)?);
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------------------
    // The breaker
    // ---------------------------------------------------------------------------------------------------------

    /// Whether the breaker of (model version, tenant, top-level prefix of `key`) is open. In-memory, no I/O.
    pub fn breaker_open(&self, model_version: &str, tenant: &str, key: &str) -> bool {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        open.get(model_version)
            .and_then(|t| t.get(tenant))
            .is_some_and(|prefixes| prefixes.contains(top_prefix(key)))
    }

    /// The scopes whose breaker is open, sorted. In-memory, no I/O.
    pub fn open_breakers(&self) -> Vec<BreakerScope> {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<BreakerScope> = open
            .iter()
            .flat_map(|(model_version, tenants)| {
                tenants.iter().flat_map(move |(tenant, prefixes)| {
                    prefixes.iter().map(move |prefix| BreakerScope {
                        model_version: model_version.clone(),
                        tenant: tenant.clone(),
                        prefix: prefix.clone(),
                    })
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Every scope with breaker state, open or not.
    pub fn breakers(&self) -> Vec<(BreakerScope, BreakerState)> {
        let scopes = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = scopes.iter().map(|(s, st)| (s.clone(), st.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Closes the breaker of one scope (exact model version, tenant and prefix) and restarts its count at `at`.
    /// The reset is stored in the breaker event log whether or not the breaker was open. Returns whether it was
    /// open.
    pub fn reset_breaker(
        &self,
        model_version: &str,
        tenant: &str,
        prefix: &str,
        operator: &str,
        reason: &str,
        at: UnixSeconds,
    ) -> Result<bool, StoreError> {
        if operator.trim().is_empty() || reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a breaker reset needs an operator and a reason".into(),
            ));
        }
        let scope = BreakerScope {
            model_version: model_version.to_string(),
            tenant: tenant.to_string(),
            prefix: prefix.to_string(),
        };
        let mut scopes = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let was_open = scopes.get(&scope).is_some_and(|s| s.open);
        let mut p = Pending::default();
        let ev = BreakerEvent {
            at,
            scope: scope.clone(),
            kind: BreakerEventKind::Reset {
                operator: operator.to_string(),
                reason: reason.to_string(),
                was_open,
            },
        };
        self.put_event(&mut p, &ev)?;
        let mut changed = HashMap::from([(scope, at)]);
        let next = self.recount(&mut changed_states(&mut changed, &scopes), &mut p)?;
        self.commit(p, true)?;
        self.install_locked(&mut scopes, next);
        Ok(was_open)
    }

    /// Makes `version` the active model: the breakers of every other version close (each closing is logged) and
    /// restart their counts at `at`; the new version's own breakers, if any, stay as they are. Returns how many
    /// closed.
    pub fn promote_model(&self, version: &str, at: UnixSeconds) -> Result<u32, StoreError> {
        let mut scopes = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut p = Pending::default();
        p.put(simple(META, "active_model"), version.as_bytes().to_vec());
        let mut changed = HashMap::new();
        for (scope, st) in scopes.iter() {
            if st.open && scope.model_version != version {
                changed.insert(scope.clone(), at);
                let ev = BreakerEvent {
                    at,
                    scope: scope.clone(),
                    kind: BreakerEventKind::ClosedByPromotion {
                        promoted_version: version.to_string(),
                    },
                };
                self.put_event(&mut p, &ev)?;
            }
        }
        let closed = count(changed.len());
        let next = self.recount(&mut changed_states(&mut changed, &scopes), &mut p)?;
        self.commit(p, true)?;
        self.install_locked(&mut scopes, next);
        Ok(closed)
    }

    /// Marks the store as in use by a process (`note` says how, e.g. its durability settings) and returns the
    /// note of the previous session if that one never called [`Store::end_session`]: it ended in a crash or a kill.
    /// Durable on return.
    pub fn begin_session(&self, note: &str) -> Result<Option<String>, StoreError> {
        let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let k = simple(META, "session");
        let previous = self.db.get(&k)?.map(|v| String::from_utf8_lossy(&v).into_owned());
        self.db.insert(k, note.as_bytes())?;
        self.db.flush()?;
        Ok(previous)
    }

    /// Ends the session [`Store::begin_session`] began (a clean shutdown), after flushing everything written.
    pub fn end_session(&self) -> Result<(), StoreError> {
        let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.db.remove(simple(META, "session"))?;
        self.db.flush()?;
        Ok(())
    }

    /// The active model version, as last promoted.
    pub fn active_model(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .get(simple(META, "active_model"))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Recounts the given (closed, restarted) scopes from all stored actions; writes their state into `p`.
    fn recount(
        &self,
        states: &mut HashMap<BreakerScope, BreakerState>,
        p: &mut Pending,
    ) -> Result<HashMap<BreakerScope, BreakerState>, StoreError> {
        if !states.is_empty() {
            let restored_actions = self.restored_actions()?;
            for kv in self.db.scan_prefix([ACTION]) {
                let (k, v) = kv?;
                let a: StoredAction = decode(&k, &v)?;
                let Some(model_version) = a.model_version else { continue };
                if !a.event.kind.is_delete() {
                    continue;
                }
                let scope = BreakerScope {
                    model_version,
                    tenant: a.event.tenant.clone(),
                    prefix: top_prefix(&a.event.key).to_string(),
                };
                if let Some(st) = states.get_mut(&scope)
                    && a.event.at >= st.counting_since
                {
                    st.actions += 1;
                    if restored_actions.contains(&a.event.event_id) {
                        st.restored += 1;
                    }
                }
            }
        }
        for (scope, st) in states.iter() {
            p.put(
                scope_key(&scope.model_version, &scope.tenant, &scope.prefix),
                encode(st)?,
            );
        }
        Ok(std::mem::take(states))
    }

    /// Ids of the actions matched by at least one restore.
    fn restored_actions(&self) -> Result<HashSet<String>, StoreError> {
        let mut out = HashSet::new();
        for kv in self.db.scan_prefix([MATCH]) {
            let (k, _) = kv?;
            let mut pos = 1;
            if let Some(id) = get_str(&k, &mut pos) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// The breaker event log (opens, resets, closings by promotion), oldest first.
    pub fn breaker_events(&self) -> Result<Vec<BreakerEvent>, StoreError> {
        self.db
            .scan_prefix([EVENT])
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    // ---------------------------------------------------------------------------------------------------------
    // Precision and the training export
    // ---------------------------------------------------------------------------------------------------------

    /// Realized precision, one row per model version x verdict class x tenant x top-level prefix, sorted. Counts
    /// actions that let the object go (not `Ignored`) at or after `filter.since`; an action counts as restored once
    /// however many restores matched it. A full scan of the actions: meant for reports, not per-request use.
    pub fn precision(&self, filter: &PrecisionFilter) -> Result<Vec<PrecisionRow>, StoreError> {
        self.precision_grouped(filter, true)
    }

    /// [`Store::precision`] pooled over tenants and prefixes: one row per model version x verdict class, with an
    /// empty tenant and prefix, and `breaker_open` when any scope of the model version has its breaker open.
    /// Bounded in number, for metrics.
    pub fn precision_by_model(&self, filter: &PrecisionFilter) -> Result<Vec<PrecisionRow>, StoreError> {
        self.precision_grouped(filter, false)
    }

    fn precision_grouped(&self, filter: &PrecisionFilter, by_scope: bool) -> Result<Vec<PrecisionRow>, StoreError> {
        type Group = (String, Option<VerdictClass>, String, String);
        let mut matches: HashMap<String, Vec<String>> = HashMap::new();
        for kv in self.db.scan_prefix([MATCH]) {
            let (k, _) = kv?;
            let mut pos = 1;
            if let Some(id) = get_str(&k, &mut pos) {
                matches
                    .entry(id)
                    .or_default()
                    .push(String::from_utf8_lossy(&k[pos..]).into_owned());
            }
        }
        let mut groups: BTreeMap<Group, (u64, u64, Vec<f64>)> = BTreeMap::new();
        for kv in self.db.scan_prefix([ACTION]) {
            let (k, v) = kv?;
            let a: StoredAction = decode(&k, &v)?;
            let e = &a.event;
            let model_version = a.model_version.unwrap_or_default();
            let prefix = top_prefix(&e.key);
            if !e.kind.lets_go()
                || filter.since.is_some_and(|s| e.at < s)
                || filter.model_version.as_ref().is_some_and(|m| *m != model_version)
                || filter.class.is_some_and(|c| a.class != Some(c))
                || filter.tenant.as_ref().is_some_and(|t| *t != e.tenant)
                || filter.prefix.as_ref().is_some_and(|p| p != prefix)
            {
                continue;
            }
            let (tenant, prefix) = if by_scope {
                (e.tenant.clone(), prefix.to_string())
            } else {
                (String::new(), String::new())
            };
            let g = groups.entry((model_version, a.class, tenant, prefix)).or_default();
            g.0 += 1;
            if let Some(restores) = matches.get(&e.event_id) {
                g.1 += 1;
                for rid in restores {
                    let rk = simple(RESTORE, rid);
                    if let Some(b) = self.db.get(&rk)? {
                        let r: StoredRestore = decode(&rk, &b)?;
                        let from = r.event.requested_at.unwrap_or(e.at);
                        g.2.push((r.event.at - from) as f64);
                    }
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(
                |((model_version, class, tenant, prefix), (actions, restores, mut ttr))| {
                    let breaker_open = if by_scope {
                        self.breaker_open_prefix(&model_version, &tenant, &prefix)
                    } else {
                        self.breaker_open_model(&model_version)
                    };
                    PrecisionRow {
                        false_delete_rate: if actions == 0 {
                            0.0
                        } else {
                            restores as f64 / actions as f64
                        },
                        false_delete_upper_95: upper_95(restores, actions),
                        median_time_to_recover_secs: median(&mut ttr),
                        breaker_open,
                        model_version,
                        class,
                        tenant,
                        prefix,
                        actions,
                        restores,
                    }
                },
            )
            .collect())
    }

    fn breaker_open_model(&self, model_version: &str) -> bool {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        open.get(model_version)
            .is_some_and(|tenants| tenants.values().any(|p| !p.is_empty()))
    }

    fn breaker_open_prefix(&self, model_version: &str, tenant: &str, prefix: &str) -> bool {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        open.get(model_version)
            .and_then(|t| t.get(tenant))
            .is_some_and(|p| p.contains(prefix))
    }

    /// Every acted-on verdict still in the audit trail whose label is known at `now`: it was restored, or the
    /// restore window of its latest action (not `Ignored`) has closed (`action.at + restore_window_secs < now`).
    /// One item per verdict, with that latest action; `restored` if any action on the verdict was matched.
    pub fn acted_verdicts(&self, now: UnixSeconds) -> Result<impl Iterator<Item = ActedVerdict> + use<>, StoreError> {
        let restored_actions = self.restored_actions()?;
        let mut by_verdict: BTreeMap<String, (ActionEvent, bool)> = BTreeMap::new();
        for kv in self.db.scan_prefix([ACTION]) {
            let (k, v) = kv?;
            let a: StoredAction = decode(&k, &v)?;
            if !a.event.kind.lets_go() {
                continue;
            }
            let restored = restored_actions.contains(&a.event.event_id);
            let entry = by_verdict
                .entry(a.event.verdict_id.clone())
                .or_insert_with(|| (a.event.clone(), false));
            entry.1 |= restored;
            if (a.event.at, &a.event.event_id) > (entry.0.at, &entry.0.event_id) {
                entry.0 = a.event;
            }
        }
        let mut out = Vec::new();
        for (verdict_id, (action, restored)) in by_verdict {
            let closed = action.at.saturating_add(self.config.restore_window_secs) < now;
            if !(restored || closed) {
                continue;
            }
            if let Some(record) = self.verdict(&verdict_id)? {
                out.push(ActedVerdict {
                    record,
                    action,
                    restored,
                });
            }
        }
        Ok(out.into_iter())
    }
}

/// How long `open` waits for sled's lock: a `Db` dropped in this process releases it only when sled's background
/// threads finish (spacejam/sled#1234, #1289), so an immediate reopen can see it held for some milliseconds. A
/// store really open elsewhere holds it far longer and is reported as [`StoreError::Locked`] after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(1_000);

/// Opens sled in `dir`, waiting out a transiently held lock.
fn open_sled(dir: &Path) -> Result<sled::Db, StoreError> {
    let start = std::time::Instant::now();
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return Ok(db),
            // sled 0.34 reports a held lock as `ErrorKind::Other` with this text (`Config::try_lock`).
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if start.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::Locked { dir: dir.to_path_buf() });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(source) => {
                return Err(StoreError::Open {
                    dir: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// The restarted state of each scope in `changed` (scope -> counting_since): closed, counts zeroed.
fn changed_states(
    changed: &mut HashMap<BreakerScope, UnixSeconds>,
    scopes: &HashMap<BreakerScope, BreakerState>,
) -> HashMap<BreakerScope, BreakerState> {
    changed
        .drain()
        .map(|(scope, at)| {
            let prev = scopes.get(&scope).cloned().unwrap_or_default();
            let st = BreakerState {
                open: false,
                counting_since: at,
                actions: 0,
                restored: 0,
                opened_at: prev.opened_at,
            };
            (scope, st)
        })
        .collect()
}

fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    })
}
