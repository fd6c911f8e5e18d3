//! `reprieve.v1.Feedback`: actions and restores (admin writes, idempotent by event id, answered once durable),
//! realized precision, the audit trail of verdicts, and the breaker (reset and log).
//!
//! Every handler checks the admin token first (writes and `ResetBreaker` only), then validates the whole request
//! (`INVALID_ARGUMENT` naming the field and its index, e.g. `actions[3].event_id`; too many events is
//! `RESOURCE_EXHAUSTED`), and only then touches the store.

use std::future::Future;
use std::sync::Arc;

use reprieve_core::{FEATURE_NAMES, FeatureSchema, RecordLimits, UnixSeconds};
use reprieve_proto::FieldError;
use reprieve_proto::convert::{verdict_class_from_pb, verdict_class_to_pb, verdict_to_pb};
use reprieve_proto::v1::feedback_server::Feedback;
use reprieve_proto::v1::{
    self, GetPrecisionRequest, GetPrecisionResponse, ListBreakerEventsRequest, ListBreakerEventsResponse,
    ListVerdictsRequest, ListVerdictsResponse, RecordActionsRequest, RecordActionsResponse, RecordRestoresRequest,
    RecordRestoresResponse, ResetBreakerRequest, ResetBreakerResponse,
};
use reprieve_store::{
    ActionEvent, ActionKind, AuditRecord, BreakerEvent, BreakerEventKind, BreakerScope, PrecisionFilter, PrecisionRow,
    RestoreEvent, StoreError, VerdictPage,
};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::error::{RequestError, to_status};
use crate::state::{AppState, now_unix};
use crate::store::FeedbackStore;
use crate::telemetry::Call;

/// Longest accepted event id, verdict id, model version or tenant, in bytes.
const MAX_ID_BYTES: usize = 256;
/// Longest accepted operator or reason of a breaker reset, in bytes.
const MAX_NOTE_BYTES: usize = 1024;
/// `ListVerdicts` without a limit, and its cap (a page of audited verdicts is about 3 KB per verdict).
const DEFAULT_VERDICTS: usize = 100;
const MAX_VERDICTS: usize = 1_000;
/// `ListBreakerEvents` without a limit, and its cap.
const DEFAULT_EVENTS: usize = 100;
const MAX_EVENTS: usize = 10_000;
/// Event times outside this range are refused (seconds; catches milliseconds and garbage).
const PLAUSIBLE_TIME: std::ops::RangeInclusive<i64> = 0..=7_258_118_400;

#[derive(Debug, Clone)]
pub struct FeedbackService {
    state: Arc<AppState>,
}

impl FeedbackService {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    fn store(&self) -> Result<&Arc<FeedbackStore>, Status> {
        self.state.feedback().ok_or_else(|| to_status(RequestError::NoStore))
    }

    /// Runs a handler in its call span, with its metrics and log line.
    async fn call<T>(
        &self,
        method: &'static str,
        objects: usize,
        handler: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        let call = Call::start(&self.state, method);
        call.objects(objects);
        let result = handler.instrument(call.span().clone()).await;
        call.finish(result.as_ref().map(|_| ()));
        result.map(Response::new)
    }
}

fn field(name: impl Into<String>, message: impl Into<String>) -> Status {
    to_status(RequestError::Field(FieldError::new(name, message)))
}

fn too_many(what: &'static str, count: usize, limit: usize) -> Status {
    to_status(RequestError::TooMany { what, count, limit })
}

fn store_error(e: StoreError) -> Status {
    to_status(RequestError::Store(e.to_string()))
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| to_status(RequestError::Store(format!("the store task failed: {e}"))))?
        .map_err(store_error)
}

fn check_id(name: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(name, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(FieldError::new(
            name,
            format!("is {} bytes, more than {MAX_ID_BYTES}", value.len()),
        ));
    }
    Ok(())
}

fn check_tenant(value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_ID_BYTES {
        return Err(FieldError::new(
            "tenant",
            format!("is {} bytes, more than {MAX_ID_BYTES}", value.len()),
        ));
    }
    Ok(())
}

fn check_key(value: &str, limits: &RecordLimits) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new("key", "must not be empty"));
    }
    if value.len() > limits.max_key_bytes {
        return Err(FieldError::new(
            "key",
            format!(
                "is {} bytes, more than the limit of {}",
                value.len(),
                limits.max_key_bytes
            ),
        ));
    }
    Ok(())
}

fn check_time(name: &str, value: i64) -> Result<UnixSeconds, FieldError> {
    if PLAUSIBLE_TIME.contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            name,
            format!("{value} is not a plausible Unix time in seconds"),
        ))
    }
}

/// Converts and validates one wire action.
pub fn action_from_pb(a: v1::Action, limits: &RecordLimits) -> Result<ActionEvent, FieldError> {
    check_id("event_id", &a.event_id)?;
    check_id("verdict_id", &a.verdict_id)?;
    check_tenant(&a.tenant)?;
    check_key(&a.key, limits)?;
    let kind = match v1::ActionKind::try_from(a.kind) {
        Ok(v1::ActionKind::Archived) => ActionKind::Archived,
        Ok(v1::ActionKind::SoftDeleted) => ActionKind::SoftDeleted,
        Ok(v1::ActionKind::HardDeleted) => ActionKind::HardDeleted,
        Ok(v1::ActionKind::Ignored) => ActionKind::Ignored,
        Ok(v1::ActionKind::Unspecified) => return Err(FieldError::new("kind", "must be set")),
        Err(_) => {
            return Err(FieldError::new("kind", format!("{} is not a known ActionKind", a.kind)));
        }
    };
    Ok(ActionEvent {
        at: check_time("at_unix", a.at_unix)?,
        event_id: a.event_id,
        verdict_id: a.verdict_id,
        tenant: a.tenant,
        key: a.key,
        kind,
    })
}

/// Converts and validates one wire restore.
pub fn restore_from_pb(r: v1::Restore, limits: &RecordLimits) -> Result<RestoreEvent, FieldError> {
    check_id("event_id", &r.event_id)?;
    check_tenant(&r.tenant)?;
    check_key(&r.key, limits)?;
    let at = check_time("at_unix", r.at_unix)?;
    let requested_at = r.requested_unix.map(|t| check_time("requested_unix", t)).transpose()?;
    if requested_at.is_some_and(|t| t > at) {
        return Err(FieldError::new("requested_unix", "is after at_unix"));
    }
    Ok(RestoreEvent {
        event_id: r.event_id,
        tenant: r.tenant,
        key: r.key,
        at,
        requested_at,
    })
}

/// Converts a whole request's events, naming the first bad field with its index (`actions[3].event_id`).
fn convert_all<P, E>(
    items: Vec<P>,
    what: &'static str,
    limit: usize,
    convert: impl Fn(P) -> Result<E, FieldError>,
) -> Result<Vec<E>, Status> {
    if items.len() > limit {
        return Err(too_many(what, items.len(), limit));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item).map_err(|e| to_status(RequestError::Field(e.within(&format!("{what}[{i}]"))))))
        .collect()
}

fn audited_to_pb(r: AuditRecord, current_schema: &str) -> v1::AuditedVerdict {
    let feature_names = if r.feature_names_hash == current_schema {
        FEATURE_NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    v1::AuditedVerdict {
        verdict: Some(verdict_to_pb(&r.verdict)),
        features: r.features,
        feature_names,
        feature_schema_hash: r.feature_names_hash,
        source: r.source,
    }
}

fn precision_to_pb(r: PrecisionRow) -> v1::PrecisionRow {
    v1::PrecisionRow {
        verdict_class: r
            .class
            .map_or(v1::VerdictClass::Unspecified, verdict_class_to_pb)
            .into(),
        model_version: r.model_version,
        tenant: r.tenant,
        prefix: r.prefix,
        actions: r.actions,
        restores: r.restores,
        false_delete_rate: r.false_delete_rate,
        false_delete_upper_95: r.false_delete_upper_95,
        breaker_open: r.breaker_open,
        median_time_to_recover_seconds: r.median_time_to_recover_secs,
    }
}

fn breaker_event_to_pb(e: BreakerEvent) -> v1::BreakerEvent {
    let mut out = v1::BreakerEvent {
        at_unix: e.at,
        model_version: e.scope.model_version,
        tenant: e.scope.tenant,
        prefix: e.scope.prefix,
        ..Default::default()
    };
    match e.kind {
        BreakerEventKind::Opened {
            actions,
            restored,
            upper_95,
        } => {
            out.kind = v1::BreakerEventKind::Opened.into();
            out.actions = actions;
            out.restored = restored;
            out.upper_95 = upper_95;
        }
        BreakerEventKind::Reset {
            operator,
            reason,
            was_open,
        } => {
            out.kind = v1::BreakerEventKind::Reset.into();
            out.operator = operator;
            out.reason = reason;
            out.was_open = was_open;
        }
        BreakerEventKind::ClosedByPromotion { promoted_version } => {
            out.kind = v1::BreakerEventKind::ClosedByPromotion.into();
            out.promoted_version = promoted_version;
        }
    }
    out
}

/// A page token on the wire: the store's opaque index key, in hex.
fn token_to_pb(next: Option<Vec<u8>>) -> String {
    next.map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

fn token_from_pb(token: &str) -> Result<Option<Vec<u8>>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || field("page_token", "is not a token this server gave");
    if !token.len().is_multiple_of(2) || token.len() > 4 * (MAX_ID_BYTES + 2 * 4096) {
        return Err(bad());
    }
    (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<u8>, Status>>()
        .map(Some)
}

#[tonic::async_trait]
impl Feedback for FeedbackService {
    async fn record_actions(
        &self,
        request: Request<RecordActionsRequest>,
    ) -> Result<Response<RecordActionsResponse>, Status> {
        let n = request.get_ref().actions.len();
        self.call("RecordActions", n, async {
            // Admin call: the bearer token comes before anything else, even validation.
            self.state.auth.authorize(request.metadata())?;
            let store = self.store()?;
            let limits = self.state.config.limits;
            let events = convert_all(
                request.into_inner().actions,
                "actions",
                store.settings().max_events_per_request,
                |a| action_from_pb(a, &limits),
            )?;
            let ack = store
                .record_actions(events)
                .await
                .map_err(|e| to_status(RequestError::Write(e)))?;
            self.state.telemetry.record_feedback("action", ack);
            Ok(RecordActionsResponse {
                accepted: ack.accepted,
                duplicates: ack.duplicates,
                unknown_verdicts: ack.unknown_verdicts,
            })
        })
        .await
    }

    async fn record_restores(
        &self,
        request: Request<RecordRestoresRequest>,
    ) -> Result<Response<RecordRestoresResponse>, Status> {
        let n = request.get_ref().restores.len();
        self.call("RecordRestores", n, async {
            self.state.auth.authorize(request.metadata())?;
            let store = self.store()?;
            let limits = self.state.config.limits;
            let events = convert_all(
                request.into_inner().restores,
                "restores",
                store.settings().max_events_per_request,
                |r| restore_from_pb(r, &limits),
            )?;
            let ack = store
                .record_restores(events)
                .await
                .map_err(|e| to_status(RequestError::Write(e)))?;
            self.state.telemetry.record_feedback("restore", ack);
            Ok(RecordRestoresResponse {
                accepted: ack.accepted,
                duplicates: ack.duplicates,
                matched: ack.matched,
            })
        })
        .await
    }

    async fn get_precision(
        &self,
        request: Request<GetPrecisionRequest>,
    ) -> Result<Response<GetPrecisionResponse>, Status> {
        self.call("GetPrecision", 0, async {
            let store = self.store()?;
            let r = request.into_inner();
            let class = verdict_class_from_pb(r.verdict_class, "verdict_class")
                .map_err(|e| to_status(RequestError::Field(e)))?;
            let window = match r.window_days {
                0 => store.settings().precision_window_secs,
                days => i64::from(days) * reprieve_core::time::DAY,
            };
            let non_empty = |s: String| (!s.is_empty()).then_some(s);
            let filter = PrecisionFilter {
                model_version: non_empty(r.model_version),
                class,
                tenant: non_empty(r.tenant),
                prefix: non_empty(r.prefix),
                since: Some(now_unix().saturating_sub(window)),
            };
            let store = store.store().clone();
            let rows = blocking(move || store.precision(&filter)).await?;
            Ok(GetPrecisionResponse {
                rows: rows.into_iter().map(precision_to_pb).collect(),
            })
        })
        .await
    }

    async fn list_verdicts(
        &self,
        request: Request<ListVerdictsRequest>,
    ) -> Result<Response<ListVerdictsResponse>, Status> {
        self.call("ListVerdicts", 0, async {
            let store = self.store()?.store().clone();
            let r = request.into_inner();
            check_tenant(&r.tenant).map_err(|e| to_status(RequestError::Field(e)))?;
            if r.key.len() > self.state.config.limits.max_key_bytes {
                return Err(field("key", "is longer than the key limit"));
            }
            let from = r.from_unix.unwrap_or(i64::MIN);
            let to = r.to_unix.unwrap_or(i64::MAX);
            if from > to {
                return Err(field("to_unix", "is before from_unix"));
            }
            let limit = match r.limit {
                0 => DEFAULT_VERDICTS,
                n => (n as usize).min(MAX_VERDICTS),
            };
            let page = token_from_pb(&r.page_token)?;
            let page: VerdictPage = tokio::task::spawn_blocking(move || {
                if r.key.is_empty() {
                    let tenant = (!r.tenant.is_empty()).then_some(r.tenant.as_str());
                    store.verdicts_between_page(from, to, tenant, limit, page.as_deref())
                } else {
                    store.verdicts_for_key_page(&r.tenant, &r.key, from, to, limit, page.as_deref())
                }
            })
            .await
            .map_err(|e| to_status(RequestError::Store(format!("the store task failed: {e}"))))?
            .map_err(|e| match e {
                StoreError::Invalid(m) => field("page_token", m),
                other => store_error(other),
            })?;
            let schema = FeatureSchema::current().hash;
            Ok(ListVerdictsResponse {
                verdicts: page.records.into_iter().map(|r| audited_to_pb(r, &schema)).collect(),
                next_page_token: token_to_pb(page.next),
            })
        })
        .await
    }

    async fn reset_breaker(
        &self,
        request: Request<ResetBreakerRequest>,
    ) -> Result<Response<ResetBreakerResponse>, Status> {
        self.call("ResetBreaker", 0, async {
            self.state.auth.authorize(request.metadata())?;
            let store = self.store()?;
            let r = request.into_inner();
            let invalid = |e: FieldError| to_status(RequestError::Field(e));
            check_id("model_version", &r.model_version).map_err(invalid)?;
            check_tenant(&r.tenant).map_err(invalid)?;
            if !(r.prefix.is_empty() || (r.prefix.ends_with('/') && r.prefix.matches('/').count() == 1)) {
                return Err(field(
                    "prefix",
                    "must be a top-level prefix ending in `/` (as GetPrecision reports it), or empty",
                ));
            }
            for (name, value) in [("operator", &r.operator), ("reason", &r.reason)] {
                if value.trim().is_empty() {
                    return Err(field(name, "must not be empty: a reset is audited with who and why"));
                }
                if value.len() > MAX_NOTE_BYTES {
                    return Err(field(name, format!("is longer than {MAX_NOTE_BYTES} bytes")));
                }
            }
            let scope = BreakerScope {
                model_version: r.model_version,
                tenant: r.tenant,
                prefix: r.prefix,
            };
            tracing::warn!(
                model_version = %scope.model_version,
                tenant = %scope.tenant,
                prefix = %scope.prefix,
                operator = %r.operator,
                reason = %r.reason,
                "precision breaker reset requested"
            );
            let was_open = store
                .reset_breaker(scope, r.operator, r.reason)
                .await
                .map_err(store_error)?;
            Ok(ResetBreakerResponse {
                closed: u32::from(was_open),
            })
        })
        .await
    }

    async fn list_breaker_events(
        &self,
        request: Request<ListBreakerEventsRequest>,
    ) -> Result<Response<ListBreakerEventsResponse>, Status> {
        self.call("ListBreakerEvents", 0, async {
            let store = self.store()?.store().clone();
            let r = request.into_inner();
            let limit = match r.limit {
                0 => DEFAULT_EVENTS,
                n => (n as usize).min(MAX_EVENTS),
            };
            let mut events = blocking(move || store.breaker_events()).await?;
            if !r.model_version.is_empty() {
                events.retain(|e| e.scope.model_version == r.model_version);
            }
            let skip = events.len().saturating_sub(limit);
            Ok(ListBreakerEventsResponse {
                events: events.into_iter().skip(skip).map(breaker_event_to_pb).collect(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let bytes = vec![0u8, 1, 0xab, 0xff, b'T'];
        assert_eq!(
            token_from_pb(&token_to_pb(Some(bytes.clone()))).expect("round trip"),
            Some(bytes)
        );
        assert_eq!(token_from_pb("").expect("empty"), None);
        for bad in ["abc", "zz", "é1"] {
            let status = token_from_pb(bad).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().starts_with("page_token"), "{}", status.message());
        }
    }

    #[test]
    fn restores_are_checked_field_by_field() {
        let limits = RecordLimits::default();
        let good = v1::Restore {
            event_id: "r1".into(),
            tenant: String::new(),
            key: "img/a.png".into(),
            at_unix: 1_000,
            requested_unix: Some(900),
        };
        assert!(restore_from_pb(good.clone(), &limits).is_ok());
        let bad = |f: &dyn Fn(&mut v1::Restore)| {
            let mut r = good.clone();
            f(&mut r);
            restore_from_pb(r, &limits).map(|_| ()).map_err(|e| e.field)
        };
        assert_eq!(bad(&|r| r.event_id.clear()), Err("event_id".into()));
        assert_eq!(bad(&|r| r.key.clear()), Err("key".into()));
        assert_eq!(bad(&|r| r.at_unix = -1), Err("at_unix".into()));
        assert_eq!(bad(&|r| r.requested_unix = Some(1_001)), Err("requested_unix".into()));
        assert_eq!(bad(&|r| r.event_id = "x".repeat(300)), Err("event_id".into()));
    }
}
