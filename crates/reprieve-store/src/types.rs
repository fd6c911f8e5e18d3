//! The store's public value types: configuration, events, acknowledgements, precision rows, breaker events.

use std::path::PathBuf;

use reprieve_core::time::DAY;
use reprieve_core::{UnixSeconds, Verdict, VerdictClass};
use serde::{Deserialize, Serialize};

/// Errors of the store. Every variant that concerns the data directory names it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process, or another `Store` in this process, has the directory open (sled holds a file lock).
    #[error("the feedback store at {dir} is locked: another process (or another Store in this process) has it open")]
    Locked { dir: PathBuf },
    /// sled could not open the directory (corrupt or unreadable files).
    #[error("cannot open the feedback store at {dir}: {source}")]
    Open { dir: PathBuf, source: sled::Error },
    /// The directory exists and is not empty but is not a Reprieve store, or a store whose files are missing.
    #[error("{dir} is not a usable Reprieve feedback store: {detail}")]
    NotAStore { dir: PathBuf, detail: String },
    /// A file-system error around the data directory.
    #[error("feedback store at {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
    /// A read or write failed after opening.
    #[error("feedback store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be decoded (corruption or an incompatible format).
    #[error("feedback store: corrupt record under key {key}: {detail}")]
    Corrupt { key: String, detail: String },
    /// The request was refused as a whole, nothing was written.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Settings of the store.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// A restore this long or less after an action is a false positive of that action's verdict.
    pub restore_window_secs: i64,
    /// The breaker opens when the 95% upper bound of the false-delete rate exceeds this.
    pub breaker_target: f64,
    /// ... and at least this many delete actions were seen in the scope.
    pub breaker_min_actions: u64,
    /// Audited verdicts older than this may be pruned by [`crate::Store::prune_audit`]; younger ones never are.
    pub audit_retention_secs: i64,
    /// The default precision window for callers that do not give one (the store itself never uses a clock: see
    /// [`PrecisionFilter::since`]).
    pub precision_window_secs: i64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            restore_window_secs: 30 * DAY,
            breaker_target: 0.01,
            breaker_min_actions: 100,
            audit_retention_secs: 365 * DAY,
            precision_window_secs: 90 * DAY,
        }
    }
}

/// One verdict as issued, with the feature vector the model saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub verdict: Verdict,
    /// The feature vector in the model's feature order.
    pub features: Vec<f64>,
    /// The feature schema hash (`FeatureSchema::hash`) of `features`.
    pub feature_names_hash: String,
    /// Which front door issued it: `grpc` or `batch`.
    pub source: String,
}

/// What a caller did with a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionKind {
    Archived,
    SoftDeleted,
    HardDeleted,
    /// The verdict was not followed: never matched by a restore, never counted.
    Ignored,
}

impl ActionKind {
    /// Whether the object left hot storage (anything but `Ignored`).
    pub fn lets_go(self) -> bool {
        !matches!(self, Self::Ignored)
    }

    /// Whether this is a delete (soft or hard): the actions the breaker counts.
    pub fn is_delete(self) -> bool {
        matches!(self, Self::SoftDeleted | Self::HardDeleted)
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Archived => 1,
            Self::SoftDeleted => 2,
            Self::HardDeleted => 3,
            Self::Ignored => 4,
        }
    }
}

/// A caller's report of an action on a verdict. `event_id` is the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub event_id: String,
    pub verdict_id: String,
    pub tenant: String,
    pub key: String,
    pub kind: ActionKind,
    pub at: UnixSeconds,
}

/// A caller's report that an object had to be restored. `event_id` is the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreEvent {
    pub event_id: String,
    pub tenant: String,
    pub key: String,
    /// When the object was restored.
    pub at: UnixSeconds,
    /// When the need was first noticed (failed read, ticket), if known.
    pub requested_at: Option<UnixSeconds>,
}

/// The answer to a write request, given only once the write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {
    /// Newly stored events.
    pub accepted: u32,
    /// Events whose id was already stored (or repeated within the request): nothing changed for them.
    pub duplicates: u32,
    /// Restores: newly stored restores matched to an earlier action within the window. Always 0 for actions.
    pub matched: u32,
    /// Actions: newly stored actions whose verdict is not in the audit trail (kept, but attributed to no model or
    /// class). Always 0 for restores.
    pub unknown_verdicts: u32,
}

/// Which precision rows to return; `None` matches all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrecisionFilter {
    pub model_version: Option<String>,
    pub class: Option<VerdictClass>,
    pub tenant: Option<String>,
    /// The top-level prefix of the key, with its slash (`img/`; `` for keys without one).
    pub prefix: Option<String>,
    /// Only actions at or after this time.
    pub since: Option<UnixSeconds>,
}

/// Realized precision of one model version x verdict class x tenant x top-level prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRow {
    /// Empty when the verdicts acted on are not in the audit trail.
    pub model_version: String,
    /// `None` when the verdicts acted on are not in the audit trail.
    pub class: Option<VerdictClass>,
    pub tenant: String,
    pub prefix: String,
    /// Actions that let the object go (archived, soft- or hard-deleted).
    pub actions: u64,
    /// Of those, the actions matched by at least one restore (each action counts once).
    pub restores: u64,
    /// `restores / actions`.
    pub false_delete_rate: f64,
    /// One-sided 95% Clopper-Pearson upper bound of the rate.
    pub false_delete_upper_95: f64,
    /// Median seconds to recover over the matched restores: `restore.at - requested_at` where the request time is
    /// known, else `restore.at - action.at` (delete -> restore, M5). `None` without restores.
    pub median_time_to_recover_secs: Option<f64>,
    /// The breaker of (model version, tenant, prefix) is open.
    pub breaker_open: bool,
}

/// The scope of a precision breaker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BreakerScope {
    pub model_version: String,
    pub tenant: String,
    /// Top-level prefix, with its slash.
    pub prefix: String,
}

/// The persisted state of one scope's breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerState {
    pub open: bool,
    /// Delete actions are counted from this time on (the last reset or promotion; `i64::MIN` at first).
    pub counting_since: UnixSeconds,
    /// Delete actions at or after `counting_since`.
    pub actions: u64,
    /// Of those, matched by a restore.
    pub restored: u64,
    /// When it last opened (the time of the action or restore that tripped it).
    pub opened_at: Option<UnixSeconds>,
}

impl Default for BreakerState {
    fn default() -> Self {
        Self {
            open: false,
            counting_since: i64::MIN,
            actions: 0,
            restored: 0,
            opened_at: None,
        }
    }
}

/// What happened to breakers (listable audit of opens, resets and promotions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BreakerEventKind {
    Opened {
        actions: u64,
        restored: u64,
        upper_95: f64,
    },
    Reset {
        operator: String,
        reason: String,
        /// Whether the breaker was open when reset.
        was_open: bool,
    },
    /// `promote_model` closed this scope's breaker.
    ClosedByPromotion {
        promoted_version: String,
    },
}

/// One breaker event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerEvent {
    pub at: UnixSeconds,
    pub scope: BreakerScope,
    pub kind: BreakerEventKind,
}

/// One acted-on verdict, for the training export.
#[derive(Debug, Clone, PartialEq)]
pub struct ActedVerdict {
    pub record: AuditRecord,
    /// The latest action (not `Ignored`) on the verdict.
    pub action: ActionEvent,
    /// Whether any action on this verdict was matched by a restore (restored = reused).
    pub restored: bool,
}

/// One request of a group commit ([`crate::Store::write_group`]).
#[derive(Debug, Clone, Copy)]
pub enum WriteRequest<'a> {
    /// Verdicts for the audit trail, encoded by [`crate::EncodedVerdict::new`].
    Verdicts(&'a [crate::EncodedVerdict]),
    Actions(&'a [ActionEvent]),
    Restores(&'a [RestoreEvent]),
}

impl WriteRequest<'_> {
    /// How many records the request carries.
    pub fn len(&self) -> usize {
        match self {
            Self::Verdicts(v) => v.len(),
            Self::Actions(a) => a.len(),
            Self::Restores(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One page of audited verdicts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerdictPage {
    pub records: Vec<AuditRecord>,
    /// Where the next page starts (an opaque index key), when more records match.
    pub next: Option<Vec<u8>>,
}
