//! The feedback store as the server runs it: the sled store, its group-commit writer ([`crate::writer`]), the
//! breaker watch (a warning in the log and a gauge when a breaker opens, closes, or was found open at startup),
//! the precision metrics, model promotion, audit pruning, and the session marker that tells the next start
//! whether this one ended cleanly.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reprieve_store::{
    Ack, ActionEvent, BreakerScope, EncodedVerdict, PrecisionFilter, RestoreEvent, Store, StoreError,
};

use crate::config::{AuditDurability, StoreSettings};
use crate::error::ServerError;
use crate::state::now_unix;
use crate::telemetry::Telemetry;
use crate::writer::{Pending, StoreWriter, Work, WriteError, WriterOptions};

/// The store, its writer and what the server tracks about it.
#[derive(Debug)]
pub struct FeedbackStore {
    store: Arc<Store>,
    writer: StoreWriter,
    settings: StoreSettings,
    telemetry: Arc<Telemetry>,
    /// The open breakers last seen, to log and export what changed.
    known_open: Mutex<BTreeSet<BreakerScope>>,
    /// Feedback arrived since the precision metrics were last computed.
    precision_stale: AtomicBool,
}

impl FeedbackStore {
    /// Opens the store in `settings.data_dir` and starts its writer. A locked, corrupt or foreign directory is an
    /// error naming it, never an empty store.
    pub fn open(settings: &StoreSettings, telemetry: Arc<Telemetry>) -> Result<Self, ServerError> {
        settings.check().map_err(ServerError::Settings)?;
        let store = Arc::new(Store::open(&settings.data_dir, settings.store_config())?);
        let options = WriterOptions {
            flush_interval: Duration::from_millis(settings.audit_flush_interval_ms),
            queue_records: settings.write_queue_records,
        };
        let writer = StoreWriter::start(store.clone(), options, telemetry.clone()).map_err(ServerError::Thread)?;
        let note = format!(
            "pid={} audit_durability={} audit_flush_interval_ms={}",
            std::process::id(),
            settings.audit_durability.as_str(),
            settings.audit_flush_interval_ms
        );
        match store.begin_session(&note)? {
            Some(previous) if previous.contains("audit_durability=buffered") => tracing::warn!(
                data_dir = %settings.data_dir.display(),
                previous = %previous,
                "the previous server on this store did not shut down cleanly and ran with buffered audit: verdicts \
                 it returned within its flush interval before it stopped may be missing from the audit trail"
            ),
            Some(previous) => tracing::info!(
                data_dir = %settings.data_dir.display(),
                previous = %previous,
                "the previous server on this store did not shut down cleanly; everything it acknowledged is on disk"
            ),
            None => {}
        }
        tracing::info!(
            data_dir = %settings.data_dir.display(),
            audit_durability = settings.audit_durability.as_str(),
            "feedback store open"
        );
        let this = Self {
            store,
            writer,
            settings: settings.clone(),
            telemetry,
            known_open: Mutex::new(BTreeSet::new()),
            precision_stale: AtomicBool::new(true),
        };
        this.watch_breakers();
        Ok(this)
    }

    /// The store itself (reads; writes go through the writer).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// Whether the breaker of (model version, tenant, top-level prefix of `key`) is open. In-memory.
    pub fn breaker_open(&self, model_version: &str, tenant: &str, key: &str) -> bool {
        self.store.breaker_open(model_version, tenant, key)
    }

    /// Queues verdicts for the audit trail; await the result before returning them (see [`AuditDurability`]).
    pub async fn audit(&self, verdicts: Vec<EncodedVerdict>) -> Result<Pending, WriteError> {
        let durable = self.settings.audit_durability == AuditDurability::Fsync;
        self.writer.submit(Work::Verdicts(verdicts), durable).await
    }

    /// Records actions; answers once they are on disk.
    pub async fn record_actions(&self, events: Vec<ActionEvent>) -> Result<Ack, WriteError> {
        let ack = self.writer.submit(Work::Actions(events), true).await?.wait().await?;
        self.after_feedback(ack);
        Ok(ack)
    }

    /// Records restores; answers once they are on disk.
    pub async fn record_restores(&self, events: Vec<RestoreEvent>) -> Result<Ack, WriteError> {
        let ack = self.writer.submit(Work::Restores(events), true).await?.wait().await?;
        self.after_feedback(ack);
        Ok(ack)
    }

    fn after_feedback(&self, ack: Ack) {
        if ack.accepted > 0 {
            self.precision_stale.store(true, Ordering::Relaxed);
            self.watch_breakers();
        }
    }

    /// Closes the breaker of one scope (audited with `operator` and `reason`); whether it was open.
    pub async fn reset_breaker(
        self: &Arc<Self>,
        scope: BreakerScope,
        operator: String,
        reason: String,
    ) -> Result<bool, StoreError> {
        let this = self.clone();
        let was_open = tokio::task::spawn_blocking(move || {
            this.store.reset_breaker(
                &scope.model_version,
                &scope.tenant,
                &scope.prefix,
                &operator,
                &reason,
                now_unix(),
            )
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("the reset task failed: {e}")))??;
        self.precision_stale.store(true, Ordering::Relaxed);
        self.watch_breakers();
        Ok(was_open)
    }

    /// Records that `version` is in service, if the store had another one active: the breakers of other versions
    /// close (logged in the breaker log). A no-op for the version already active, so a restart keeps its
    /// breakers. Blocking (a scan of the actions when a breaker closes).
    pub fn promote(&self, version: &str) {
        match self.store.active_model() {
            Ok(Some(active)) if active == version => return,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the active model from the feedback store"),
        }
        match self.store.promote_model(version, now_unix()) {
            Ok(closed) => tracing::info!(version, closed, "model promoted in the feedback store"),
            Err(e) => tracing::error!(version, error = %e, "cannot record the model promotion in the feedback store"),
        }
        self.precision_stale.store(true, Ordering::Relaxed);
        self.watch_breakers();
    }

    /// Compares the open breakers with the last ones seen: logs and exports each change.
    fn watch_breakers(&self) {
        let mut known = self.known_open.lock().unwrap_or_else(PoisonError::into_inner);
        let now: BTreeSet<BreakerScope> = self.store.open_breakers().into_iter().collect();
        if *known == now {
            return;
        }
        let opened: Vec<&BreakerScope> = now.difference(&known).collect();
        if !opened.is_empty() {
            let states = self.store.breakers();
            for scope in opened {
                let state = states.iter().find(|(s, _)| s == scope).map(|(_, st)| st);
                tracing::warn!(
                    model_version = %scope.model_version,
                    tenant = %scope.tenant,
                    prefix = %scope.prefix,
                    actions = state.map(|s| s.actions),
                    restored = state.map(|s| s.restored),
                    opened_at = state.and_then(|s| s.opened_at),
                    "precision breaker open: DELETE_CANDIDATE verdicts in this scope become REVIEW \
                     (PRECISION_BREAKER) until it is reset or another model is promoted"
                );
                self.telemetry.record_breaker(scope, true);
            }
        }
        for scope in known.difference(&now) {
            tracing::info!(
                model_version = %scope.model_version,
                tenant = %scope.tenant,
                prefix = %scope.prefix,
                "precision breaker closed"
            );
            self.telemetry.record_breaker(scope, false);
        }
        self.telemetry.record_breakers_open(now.len());
        *known = now;
    }

    /// Recomputes the precision metrics if feedback arrived since the last time (or `force`). Blocking.
    pub fn refresh_precision(&self, force: bool) {
        if !self.telemetry.is_enabled() || !(self.precision_stale.swap(false, Ordering::Relaxed) || force) {
            return;
        }
        let filter = PrecisionFilter {
            since: Some(now_unix().saturating_sub(self.settings.precision_window_secs)),
            ..PrecisionFilter::default()
        };
        match self.store.precision_by_model(&filter) {
            Ok(rows) => self.telemetry.record_precision(&rows),
            Err(e) => {
                self.precision_stale.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot compute precision metrics");
            }
        }
    }

    /// Prunes audit records older than the retention. Blocking.
    pub fn prune(&self) {
        match self.store.prune_audit(now_unix()) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(
                    removed,
                    retention_secs = self.settings.audit_retention_secs,
                    "pruned old audit records"
                );
                self.telemetry.record_pruned(removed);
            }
            Err(e) => tracing::warn!(error = %e, "pruning the audit trail failed"),
        }
    }

    /// Commits and flushes what is queued, stops the writer and marks the session as ended cleanly.
    pub async fn close(&self) {
        self.writer.close().await;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.end_session()).await {
            Ok(Ok(())) => tracing::info!("feedback store closed"),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot close the feedback store session"),
            Err(e) => tracing::error!(error = %e, "the store close task failed"),
        }
    }
}

/// Runs the store's periodic work while the server runs: pruning the audit trail and refreshing the precision
/// metrics (forced every 20th time, so that the window slides even without feedback).
pub(crate) async fn maintain(feedback: Arc<FeedbackStore>) {
    let prune_every = Duration::from_secs(feedback.settings.prune_interval_secs);
    let refresh_every = Duration::from_secs(feedback.settings.metrics_refresh_secs);
    let prune = {
        let feedback = feedback.clone();
        async move {
            let mut every = tokio::time::interval(prune_every);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let f = feedback.clone();
                let _ = tokio::task::spawn_blocking(move || f.prune()).await;
            }
        }
    };
    let refresh = async move {
        let mut every = tokio::time::interval(refresh_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for tick in 0u64.. {
            every.tick().await;
            let f = feedback.clone();
            let _ = tokio::task::spawn_blocking(move || f.refresh_precision(tick.is_multiple_of(20))).await;
        }
    };
    tokio::join!(prune, refresh);
}
