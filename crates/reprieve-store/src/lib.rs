//! The sled feedback and audit store: the audit trail of verdicts, the actions callers took and the restores that
//! followed, realized precision, and the precision breaker.
//!
//! # Durability
//! Every write request (a slice of verdicts, actions or restores) is applied as **one** atomic sled `Batch` on a
//! single tree and `flush()`ed before the call returns, so an `Ok` acknowledgement means the whole request is on
//! disk and a crash leaves either all of it or none of it. Writers are serialised by a mutex; a request's own
//! earlier writes are visible to its later events through an in-memory overlay.
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

mod keys;
mod types;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use reprieve_core::prefix::top_prefix;
use reprieve_core::{UnixSeconds, VerdictClass};
use reprieve_model::stats::{upper_95, upper_bound_at_most};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use types::{
    Ack, ActedVerdict, ActionEvent, ActionKind, AuditRecord, BreakerEvent, BreakerEventKind, BreakerScope,
    BreakerState, PrecisionFilter, PrecisionRow, RestoreEvent, StoreConfig, StoreError,
};

use keys::*;

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
}

/// Key-value pairs read back from the tree.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Writes of one request not yet applied: reads go through it so later events see earlier ones.
#[derive(Default)]
struct Pending {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Pending {
    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.writes.insert(k, Some(v));
    }

    fn remove(&mut self, k: Vec<u8>) {
        self.writes.insert(k, None);
    }

    fn get(&self, db: &sled::Db, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
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
        };
        {
            let mut guard = store.writer.lock().unwrap_or_else(PoisonError::into_inner);
            store.install_locked(&mut guard, scopes);
        }
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn commit(&self, pending: Pending) -> Result<(), StoreError> {
        self.db.apply_batch(pending.into_batch())?;
        self.db.flush()?;
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------------------
    // Audit trail
    // ---------------------------------------------------------------------------------------------------------

    /// Appends issued verdicts to the audit trail (durable on return). A verdict id already stored is a duplicate
    /// and is left as it was. Non-finite probabilities or features are refused (JSON cannot keep them).
    pub fn record_verdicts(&self, records: &[AuditRecord]) -> Result<Ack, StoreError> {
        for r in records {
            if r.verdict.verdict_id.is_empty() {
                return Err(StoreError::Invalid("a verdict without verdict_id".into()));
            }
            if !r.verdict.probability.is_finite() || r.features.iter().any(|f| !f.is_finite()) {
                return Err(StoreError::Invalid(format!(
                    "verdict {}: non-finite probability or feature",
                    r.verdict.verdict_id
                )));
            }
        }
        let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut p = Pending::default();
        let mut ack = Ack::default();
        for r in records {
            let v = &r.verdict;
            let k = simple(VERDICT, &v.verdict_id);
            if p.get(&self.db, &k)?.is_some() {
                ack.duplicates += 1;
                continue;
            }
            p.put(k, encode(r)?);
            p.put(
                object_at(VERDICT_BY_KEY, &v.tenant, &v.key, v.scored_at, &v.verdict_id),
                Vec::new(),
            );
            p.put(time_key(v.scored_at, &v.verdict_id), Vec::new());
            ack.accepted += 1;
        }
        self.commit(p)?;
        Ok(ack)
    }

    /// One audited verdict by id.
    pub fn verdict(&self, verdict_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        let k = simple(VERDICT, verdict_id);
        self.db.get(&k)?.map(|v| decode(&k, &v)).transpose()
    }

    /// The verdicts issued for (tenant, key), newest first, at most `limit`.
    pub fn verdicts_for_key(&self, tenant: &str, key: &str, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let prefix = object_prefix(VERDICT_BY_KEY, tenant, key);
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(&prefix).rev() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv?;
            if let Some(r) = self.verdict(&object_at_id(&k, prefix.len()))? {
                out.push(r);
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
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let lo = time_key(from, "");
        let hi = match to.checked_add(1) {
            Some(t) => time_key(t, ""),
            None => prefix_end(&[VERDICT_BY_TIME]),
        };
        for kv in self.db.range(lo..hi) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[9..]).into_owned();
            if let Some(r) = self.verdict(&id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Removes audited verdicts scored strictly before `now - audit_retention_secs`; younger ones are never
    /// touched. Returns how many were removed. Actions keep the class and model version they resolved.
    pub fn prune_audit(&self, now: UnixSeconds) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(self.config.audit_retention_secs);
        let _guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut p = Pending::default();
        let mut removed = 0;
        for kv in self.db.range(vec![VERDICT_BY_TIME]..time_key(cutoff, "")) {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[9..]).into_owned();
            if let Some(r) = self.verdict(&id)? {
                let v = &r.verdict;
                p.remove(object_at(VERDICT_BY_KEY, &v.tenant, &v.key, v.scored_at, &v.verdict_id));
            }
            p.remove(simple(VERDICT, &id));
            p.remove(k.to_vec());
            removed += 1;
        }
        self.commit(p)?;
        Ok(removed)
    }

    // ---------------------------------------------------------------------------------------------------------
    // Actions and restores
    // ---------------------------------------------------------------------------------------------------------

    /// Records what callers did with verdicts. Idempotent by `event_id`. Durable on return.
    pub fn record_actions(&self, events: &[ActionEvent]) -> Result<Ack, StoreError> {
        for e in events {
            if e.event_id.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "action on {}/{} without event_id",
                    e.tenant, e.key
                )));
            }
        }
        let mut scopes = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut p = Pending::default();
        let mut ack = Ack::default();
        let mut dirty = Vec::new();
        for e in events {
            let k = simple(ACTION, &e.event_id);
            if p.get(&self.db, &k)?.is_some() {
                ack.duplicates += 1;
                continue;
            }
            let audited = self.verdict(&e.verdict_id)?;
            if audited.is_none() {
                ack.unknown_verdicts += 1;
            }
            let stored = StoredAction {
                event: e.clone(),
                class: audited.as_ref().map(|r| r.verdict.class),
                model_version: audited.map(|r| r.verdict.model_version),
            };
            p.put(k, encode(&stored)?);
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
                let best = self.best_action(&p, &r.event.tenant, &r.event.key, r.event.at)?;
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
        self.finish(
            &mut scopes,
            p,
            dirty,
            events.iter().map(|e| e.at).max().unwrap_or(i64::MIN),
        )?;
        Ok(ack)
    }

    /// Records restores, matching each to the action it proves wrong. Idempotent by `event_id`. Durable on return.
    /// [`Ack::matched`] counts the new restores matched at this moment; an action reported later can still take a
    /// restore over (see the crate docs), which changes precision and breakers but not past acknowledgements.
    pub fn record_restores(&self, events: &[RestoreEvent]) -> Result<Ack, StoreError> {
        for e in events {
            if e.event_id.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "restore of {}/{} without event_id",
                    e.tenant, e.key
                )));
            }
        }
        let mut scopes = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut p = Pending::default();
        let mut ack = Ack::default();
        let mut dirty = Vec::new();
        for e in events {
            let k = simple(RESTORE, &e.event_id);
            if p.get(&self.db, &k)?.is_some() {
                ack.duplicates += 1;
                continue;
            }
            let matched = self.best_action(&p, &e.tenant, &e.key, e.at)?;
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
        self.finish(
            &mut scopes,
            p,
            dirty,
            events.iter().map(|e| e.at).max().unwrap_or(i64::MIN),
        )?;
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
        let k = simple(ACTION, action_id);
        let Some(bytes) = p.get(&self.db, &k)? else {
            return Ok(None);
        };
        let a: StoredAction = decode(&k, &bytes)?;
        let Some(model_version) = a.model_version else {
            return Ok(None);
        };
        if !a.event.kind.is_delete() {
            return Ok(None);
        }
        let scope = BreakerScope {
            model_version,
            tenant: a.event.tenant.clone(),
            prefix: top_prefix(&a.event.key).to_string(),
        };
        if a.event.at < scopes.get(&scope).map_or(i64::MIN, |s| s.counting_since) {
            return Ok(None);
        }
        let mp = match_prefix(action_id);
        let restored = !p.range(&self.db, &mp, &prefix_end(&mp))?.is_empty();
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
    ) -> Result<(), StoreError> {
        dirty.sort();
        dirty.dedup();
        let before = Pending::default();
        let mut next: HashMap<BreakerScope, BreakerState> = HashMap::new();
        for id in &dirty {
            let old = self.contribution(&before, scopes, id)?;
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
        self.commit(p)?;
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
        self.commit(p)?;
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
        self.commit(p)?;
        self.install_locked(&mut scopes, next);
        Ok(closed)
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
            let g = groups
                .entry((model_version, a.class, e.tenant.clone(), prefix.to_string()))
                .or_default();
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
                    let breaker_open = self.breaker_open_prefix(&model_version, &tenant, &prefix);
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
