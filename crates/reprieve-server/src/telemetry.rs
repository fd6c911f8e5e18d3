//! Observability: a `tracing` span per call, and Prometheus metrics served on their own listener.
//!
//! Each server has its own recorder (never the process-global one), so that two servers in one process (the
//! end-to-end tests) keep separate counts, and so that a server without `metrics_listen` records nothing at all.
//!
//! | metric | labels |
//! |---|---|
//! | `reprieve_grpc_requests_total` | `method`, `code` |
//! | `reprieve_grpc_request_duration_seconds` (histogram) | `method`, `code` |
//! | `reprieve_objects_scored_total` | |
//! | `reprieve_verdicts_total` | `class` |
//! | `reprieve_verdict_reasons_total` | `class`, `reason` |
//! | `reprieve_reuse_probability` (histogram) | |
//! | `reprieve_model_active` (gauge, 1 for the model in service, 0 for ones replaced) | `version` |
//! | `reprieve_audit_records_total` (verdicts written to the audit trail; `duplicate`: id already there) | `result` |
//! | `reprieve_feedback_events_total` | `kind` (`action`, `restore`), `result` (`accepted`, `duplicate`) |
//! | `reprieve_restores_matched_total` (restores matched to an action: false positives) | |
//! | `reprieve_store_commit_seconds` (histogram, one per group commit or flush) | `durable` |
//! | `reprieve_store_commit_records` (histogram: records per group commit) | |
//! | `reprieve_audit_pruned_total` | |
//! | `reprieve_false_delete_rate` (gauge, M4: restored / let go, over `precision_window_secs`) | `model_version`, `class` |
//! | `reprieve_false_delete_rate_upper_95` (gauge, its one-sided 95% Clopper-Pearson bound) | `model_version`, `class` |
//! | `reprieve_prediction_precision` (gauge, M10: 1 - false-delete rate) | `model_version`, `class` |
//! | `reprieve_time_to_recover_median_seconds` (gauge, M5; NaN without restores) | `model_version`, `class` |
//! | `reprieve_feedback_actions`, `reprieve_feedback_restored_actions` (gauges, the counts behind M4) | `model_version`, `class` |
//! | `reprieve_breaker_open` (gauge, 1 open, 0 closed since) | `model_version`, `tenant`, `prefix` |
//! | `reprieve_breakers_open` (gauge) | |
//!
//! The precision gauges pool tenants and prefixes (bounded label sets); `GetPrecision` has the full breakdown.
//! They are recomputed every `store.metrics_refresh_secs` when feedback arrived; breaker gauges change at once.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use reprieve_core::{ReasonCode, Verdict, VerdictClass};
use reprieve_store::{Ack, BreakerScope, PrecisionRow};
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tracing::Span;

use crate::error::ServerError;
use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const COMMIT_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0,
];
const GROUP_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0];
const PROBABILITY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
];
/// How often buffered histogram samples are folded into their buckets, so memory stays bounded between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The server's metrics recorder, or nothing when metrics are off.
#[derive(Debug, Default)]
pub struct Telemetry {
    prometheus: Option<Prometheus>,
    /// Label sets of the precision gauges last set, so that rows that left the window are cleared.
    precision_labels: std::sync::Mutex<Vec<(String, &'static str)>>,
}

#[derive(Debug)]
struct Prometheus {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Telemetry {
    /// Records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A fresh Prometheus recorder (not installed globally).
    pub fn prometheus() -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("reprieve_grpc_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("reprieve_reuse_probability".into()), PROBABILITY_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("reprieve_store_commit_seconds".into()), COMMIT_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("reprieve_store_commit_records".into()), GROUP_BUCKETS)
            })
            .unwrap_or_else(|_| unreachable!("the bucket lists are constant and non-empty"));
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let telemetry = Self {
            prometheus: Some(Prometheus { recorder, handle }),
            precision_labels: std::sync::Mutex::default(),
        };
        telemetry.with(|| {
            metrics::describe_counter!("reprieve_grpc_requests_total", "gRPC calls by method and status code");
            metrics::describe_histogram!(
                "reprieve_grpc_request_duration_seconds",
                metrics::Unit::Seconds,
                "gRPC call latency by method and status code (streams: the whole stream)"
            );
            metrics::describe_counter!("reprieve_objects_scored_total", "Objects given a verdict");
            metrics::describe_counter!("reprieve_verdicts_total", "Verdicts by class");
            metrics::describe_counter!("reprieve_verdict_reasons_total", "Reason codes on verdicts, by class");
            metrics::describe_histogram!("reprieve_reuse_probability", "Calibrated reuse probabilities given");
            metrics::describe_gauge!(
                "reprieve_model_active",
                "1 for the model version in service, 0 for replaced"
            );
            metrics::describe_counter!("reprieve_audit_records_total", "Verdicts written to the audit trail");
            metrics::describe_counter!("reprieve_feedback_events_total", "Actions and restores recorded");
            metrics::describe_counter!(
                "reprieve_restores_matched_total",
                "Restores matched to an earlier action (false positives)"
            );
            metrics::describe_histogram!(
                "reprieve_store_commit_seconds",
                metrics::Unit::Seconds,
                "Group commits (and flushes) of the feedback store"
            );
            metrics::describe_histogram!("reprieve_store_commit_records", "Records per group commit");
            metrics::describe_counter!(
                "reprieve_audit_pruned_total",
                "Audit records pruned after the retention"
            );
            metrics::describe_gauge!(
                "reprieve_false_delete_rate",
                "M4: share of actions that let an object go that were followed by a restore"
            );
            metrics::describe_gauge!(
                "reprieve_false_delete_rate_upper_95",
                "One-sided 95% Clopper-Pearson upper bound of the false-delete rate"
            );
            metrics::describe_gauge!(
                "reprieve_prediction_precision",
                "M10: share of acted-on verdicts not followed by a restore"
            );
            metrics::describe_gauge!(
                "reprieve_time_to_recover_median_seconds",
                metrics::Unit::Seconds,
                "M5: median time from the need (or the action) to the restore"
            );
            metrics::describe_gauge!(
                "reprieve_feedback_actions",
                "Actions that let an object go, in the window"
            );
            metrics::describe_gauge!(
                "reprieve_feedback_restored_actions",
                "Of those, actions matched by a restore"
            );
            metrics::describe_gauge!("reprieve_breaker_open", "1 while the scope's precision breaker is open");
            metrics::describe_gauge!("reprieve_breakers_open", "Precision breakers open");
        });
        telemetry
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.prometheus.is_some()
    }

    fn with(&self, f: impl FnOnce()) {
        if let Some(p) = &self.prometheus {
            metrics::with_local_recorder(&p.recorder, f);
        }
    }

    /// The Prometheus text exposition, when metrics are on.
    pub fn render(&self) -> Option<String> {
        self.prometheus.as_ref().map(|p| p.handle.render())
    }

    /// Folds buffered histogram samples into their buckets.
    pub fn run_upkeep(&self) {
        if let Some(p) = &self.prometheus {
            p.handle.run_upkeep();
        }
    }

    /// One finished call.
    pub fn record_call(&self, method: &'static str, code: Code, elapsed: Duration) {
        self.with(|| {
            let code = code_name(code);
            metrics::counter!("reprieve_grpc_requests_total", "method" => method, "code" => code).increment(1);
            metrics::histogram!("reprieve_grpc_request_duration_seconds", "method" => method, "code" => code)
                .record(elapsed.as_secs_f64());
        });
    }

    /// A tally to fill while scoring a batch (`None` when metrics are off, so scoring pays nothing).
    pub fn tally(&self) -> Option<VerdictTally> {
        self.is_enabled().then(VerdictTally::default)
    }

    /// Adds a scored batch's verdicts: one counter update per (class, reason) seen, not one per object.
    pub fn record_verdicts(&self, tally: VerdictTally) {
        self.with(|| {
            metrics::counter!("reprieve_objects_scored_total").increment(tally.probabilities.len() as u64);
            for (ci, class) in VerdictClass::ALL.iter().enumerate() {
                if tally.classes[ci] > 0 {
                    metrics::counter!("reprieve_verdicts_total", "class" => class.as_str())
                        .increment(tally.classes[ci]);
                }
                for (ri, reason) in ReasonCode::ALL.iter().enumerate() {
                    let n = tally.reasons[ci][ri];
                    if n > 0 {
                        metrics::counter!(
                            "reprieve_verdict_reasons_total",
                            "class" => class.as_str(),
                            "reason" => reason.as_str()
                        )
                        .increment(n);
                    }
                }
            }
            let histogram = metrics::histogram!("reprieve_reuse_probability");
            for p in tally.probabilities {
                histogram.record(p);
            }
        });
    }

    /// The model in service changed from `old` to `new`.
    pub fn record_model(&self, old: Option<&str>, new: &str) {
        self.with(|| {
            if let Some(old) = old.filter(|o| *o != new) {
                metrics::gauge!("reprieve_model_active", "version" => old.to_string()).set(0.0);
            }
            metrics::gauge!("reprieve_model_active", "version" => new.to_string()).set(1.0);
        });
    }
}

impl Telemetry {
    /// One group commit (or flush, `records` 0) of the store writer.
    pub fn record_store_commit(&self, durable: bool, records: usize, elapsed: Duration) {
        self.with(|| {
            let durable = if durable { "true" } else { "false" };
            metrics::histogram!("reprieve_store_commit_seconds", "durable" => durable).record(elapsed.as_secs_f64());
            if records > 0 {
                metrics::histogram!("reprieve_store_commit_records").record(records as f64);
            }
        });
    }

    /// Verdicts acknowledged by the audit trail.
    pub fn record_audit(&self, ack: Ack) {
        self.with(|| {
            metrics::counter!("reprieve_audit_records_total", "result" => "accepted").increment(ack.accepted.into());
            metrics::counter!("reprieve_audit_records_total", "result" => "duplicate").increment(ack.duplicates.into());
        });
    }

    /// A feedback write of `kind` (`action` or `restore`) acknowledged.
    pub fn record_feedback(&self, kind: &'static str, ack: Ack) {
        self.with(|| {
            metrics::counter!("reprieve_feedback_events_total", "kind" => kind, "result" => "accepted")
                .increment(ack.accepted.into());
            metrics::counter!("reprieve_feedback_events_total", "kind" => kind, "result" => "duplicate")
                .increment(ack.duplicates.into());
            if ack.matched > 0 {
                metrics::counter!("reprieve_restores_matched_total").increment(ack.matched.into());
            }
        });
    }

    pub fn record_pruned(&self, removed: u64) {
        self.with(|| metrics::counter!("reprieve_audit_pruned_total").increment(removed));
    }

    /// The breaker of `scope` opened (`true`) or closed.
    pub fn record_breaker(&self, scope: &BreakerScope, open: bool) {
        self.with(|| {
            metrics::gauge!(
                "reprieve_breaker_open",
                "model_version" => scope.model_version.clone(),
                "tenant" => scope.tenant.clone(),
                "prefix" => scope.prefix.clone()
            )
            .set(if open { 1.0 } else { 0.0 });
        });
    }

    pub fn record_breakers_open(&self, n: usize) {
        self.with(|| metrics::gauge!("reprieve_breakers_open").set(n as f64));
    }

    /// Sets the precision gauges from rows pooled by model version x class; label sets no longer present are
    /// cleared (counts 0, rates NaN).
    pub fn record_precision(&self, rows: &[PrecisionRow]) {
        if !self.is_enabled() {
            return;
        }
        let mut previous = self
            .precision_labels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now: Vec<(String, &'static str)> = rows
            .iter()
            .map(|r| (r.model_version.clone(), r.class.map_or("UNKNOWN", VerdictClass::as_str)))
            .collect();
        self.with(|| {
            let set = |model: &str, class: &'static str, values: [f64; 6]| {
                let names = [
                    "reprieve_feedback_actions",
                    "reprieve_feedback_restored_actions",
                    "reprieve_false_delete_rate",
                    "reprieve_false_delete_rate_upper_95",
                    "reprieve_prediction_precision",
                    "reprieve_time_to_recover_median_seconds",
                ];
                for (name, value) in names.into_iter().zip(values) {
                    metrics::gauge!(name, "model_version" => model.to_string(), "class" => class).set(value);
                }
            };
            for (model, class) in previous.iter().filter(|l| !now.contains(l)) {
                set(model, class, [0.0, 0.0, f64::NAN, f64::NAN, f64::NAN, f64::NAN]);
            }
            for (r, (model, class)) in rows.iter().zip(&now) {
                set(
                    model,
                    class,
                    [
                        r.actions as f64,
                        r.restores as f64,
                        r.false_delete_rate,
                        r.false_delete_upper_95,
                        1.0 - r.false_delete_rate,
                        r.median_time_to_recover_secs.unwrap_or(f64::NAN),
                    ],
                );
            }
        });
        *previous = now;
    }
}

/// Verdict counts of one batch.
#[derive(Debug, Default)]
pub struct VerdictTally {
    classes: [u64; VerdictClass::ALL.len()],
    reasons: [[u64; ReasonCode::ALL.len()]; VerdictClass::ALL.len()],
    probabilities: Vec<f64>,
}

impl VerdictTally {
    pub fn add(&mut self, verdict: &Verdict) {
        let ci = VerdictClass::ALL.iter().position(|c| *c == verdict.class).unwrap_or(0);
        self.classes[ci] += 1;
        for reason in &verdict.reasons {
            if let Some(ri) = ReasonCode::ALL.iter().position(|r| r == reason) {
                self.reasons[ci][ri] += 1;
            }
        }
        self.probabilities.push(verdict.probability);
    }
}

/// The canonical gRPC name of a status code (`OK`, `INVALID_ARGUMENT`, ...), as metric labels and logs use.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// One gRPC call being served: its span (`method`, `objects`, `code`, `latency_ms`) and its metrics.
#[derive(Debug)]
pub struct Call {
    state: Arc<AppState>,
    method: &'static str,
    span: Span,
    started: Instant,
}

impl Call {
    pub fn start(state: &Arc<AppState>, method: &'static str) -> Self {
        let span = tracing::info_span!(
            "rpc",
            method,
            objects = tracing::field::Empty,
            code = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        Self {
            state: state.clone(),
            method,
            span,
            started: Instant::now(),
        }
    }

    /// The span to run the handler in.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The number of objects the call carries (a stream: the running total).
    pub fn objects(&self, n: usize) {
        self.span.record("objects", n);
    }

    /// Records the outcome: span fields, one log event, the request counter and the latency histogram.
    pub fn finish(self, outcome: Result<(), &Status>) {
        let code = outcome.map_or_else(Status::code, |()| Code::Ok);
        let elapsed = self.started.elapsed();
        self.span.record("code", code_name(code));
        self.span.record("latency_ms", elapsed.as_secs_f64() * 1e3);
        self.state.telemetry.record_call(self.method, code, elapsed);
        let _entered = self.span.enter();
        match outcome {
            Ok(()) => tracing::debug!("call finished"),
            Err(status) if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) => {
                tracing::warn!(message = %status.message(), "call failed")
            }
            Err(status) => tracing::info!(message = %status.message(), "call refused"),
        }
    }
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "Prometheus metrics listening on /metrics");
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "metrics listener cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let response = respond(&state, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
    tracing::info!("Prometheus metrics listener stopped");
    Ok(())
}

fn respond(state: &AppState, request: &hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, content_type: &str, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
    };
    match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => reply(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state.telemetry.render().unwrap_or_default(),
        ),
        (_, "/metrics") => reply(405, "text/plain", "only GET\n".into()),
        _ => reply(404, "text/plain", "not found; metrics are at /metrics\n".into()),
    }
}

/// Folds histogram samples periodically while the server runs (see [`UPKEEP_EVERY`]).
pub(crate) async fn upkeep(state: Arc<AppState>) {
    if !state.telemetry.is_enabled() {
        return;
    }
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        state.telemetry.run_upkeep();
    }
}
