//! `reprieve.v1.ReuseScorer`: unary and streaming scoring. Validation comes first in every handler.
//!
//! With a feedback store, each object's scope is checked against the precision breakers (an open one turns
//! `DELETE_CANDIDATE` into `REVIEW` with `PRECISION_BREAKER`), and every verdict is handed to the audit trail and
//! acknowledged there **before** the response that carries it is sent: a verdict that reached a client is in the
//! audit trail (with `audit_durability = "fsync"`, on disk). Verdicts are looked up by id before they are encoded:
//! one found in the audit trail already is neither encoded nor queued (the writer would only count a duplicate),
//! and a request whose verdicts are all there (and on disk, with `"fsync"`) is answered without waiting for a group
//! commit. A stream scores its chunks on the blocking pool, several at a time (one per core over the whole
//! server), overlaps their audit commits with the scoring of the next ones, and answers its chunks in order.

use std::sync::Arc;
use std::time::Instant;

use reprieve_core::{ScopeState, UnixSeconds};
use reprieve_proto::FieldError;
use reprieve_proto::convert::{record_from_pb, verdict_to_pb};
use reprieve_proto::v1::reuse_scorer_server::ReuseScorer;
use reprieve_proto::v1::{self, ScoreRequest, ScoreResponse, ScoreStreamRequest, ScoreStreamResponse};
use reprieve_store::{Ack, EncodedVerdict};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::config::AuditDurability;
use crate::error::{RequestError, to_status};
use crate::state::{AppState, LoadedModel, now_unix};
use crate::telemetry::Call;
use crate::writer::Pending;
use crate::{deadline, guard};

/// How many scored chunks a stream may have in flight to a slow client before the server stops reading.
const STREAM_BUFFER: usize = 2;
/// How many scored chunks of a stream may wait for their audit commit while the next one is scored.
const AUDIT_PIPELINE: usize = 2;
/// How many chunks of a stream may wait to be scored, or be scored, beyond the one being staged for the audit.
const SCORING_PIPELINE: usize = 2;

/// A scored batch: the wire verdicts, and those of them not in the audit trail yet, encoded for it (none without a
/// store).
#[derive(Debug)]
pub struct ScoredBatch {
    pub verdicts: Vec<v1::Verdict>,
    pub audit: Vec<EncodedVerdict>,
    /// Some verdicts were found in the audit trail before their commit was known to be on disk: the answer waits
    /// for a flush even if `audit` is empty.
    pub flush: bool,
}

#[derive(Debug, Clone)]
pub struct ScorerService {
    state: Arc<AppState>,
    /// Permits to score stream chunks on the blocking pool, one per core: chunks are scored in parallel but never
    /// by more threads than there are cores.
    lanes: Arc<Semaphore>,
}

impl ScorerService {
    pub fn new(state: Arc<AppState>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            state,
            lanes: Arc::new(Semaphore::new(cores)),
        }
    }
}

/// Scores one batch of wire records: every record is converted and validated before any is scored, so a bad
/// request is refused whole with the first offending field named (`objects[i].field`). `deadline` is checked
/// between objects: a batch that cannot finish in time is abandoned with `DEADLINE_EXCEEDED`. With a feedback
/// store, open breakers apply and the verdicts come back encoded for the audit trail too.
pub fn score_batch(
    state: &AppState,
    model: &LoadedModel,
    objects: Vec<v1::ObjectRecord>,
    at: UnixSeconds,
    what: &'static str,
    deadline: Option<Instant>,
) -> Result<ScoredBatch, RequestError> {
    let limit = state.config.max_objects_per_request;
    if objects.len() > limit {
        return Err(RequestError::TooMany {
            what,
            count: objects.len(),
            limit,
        });
    }
    if !(0..=7_258_118_400).contains(&at) {
        return Err(RequestError::Field(FieldError::new(
            "at_unix",
            format!("{at} is not a plausible Unix time in seconds"),
        )));
    }
    let total = objects.len();
    let late = |done| RequestError::DeadlineExceeded { done, total };
    let mut records = Vec::with_capacity(objects.len());
    for (i, object) in objects.into_iter().enumerate() {
        if deadline::expired(deadline) {
            return Err(late(0));
        }
        // The field path is only formatted for an error.
        let parent = || format!("{what}[{i}]");
        let record = record_from_pb(object).map_err(|e| RequestError::Field(e.within(&parent())))?;
        record
            .validate(at, &state.config.limits)
            .map_err(|e| RequestError::Field(FieldError::from(e).within(&parent())))?;
        records.push(record);
    }
    let mut tally = state.telemetry.tally();
    let feedback = state.feedback();
    let version = model.engine.model.version();
    let schema_hash = &model.engine.model.artifact().feature_schema.hash;
    let mut verdicts = Vec::with_capacity(records.len());
    let mut audit = Vec::with_capacity(if feedback.is_some() { records.len() } else { 0 });
    // Whether each verdict is audited already is looked up here, in parallel, rather than by the writer thread
    // that every audited verdict passes through (it then only checks the commits since); and before the verdict
    // is encoded: one found in the audit trail is neither encoded nor queued (the writer would only count it as a
    // duplicate).
    let mut check = feedback.map(|f| f.store().check_verdicts());
    let store_error = |e: reprieve_store::StoreError| RequestError::Store(e.to_string());
    for (i, record) in records.iter().enumerate() {
        if deadline::expired(deadline) {
            return Err(late(i));
        }
        let scope = ScopeState {
            breaker_open: feedback.is_some_and(|f| f.breaker_open(version, &record.tenant, &record.key)),
            ..ScopeState::default()
        };
        let scored = model.engine.score(record, at, scope);
        if let Some(tally) = &mut tally {
            tally.add(&scored.verdict);
        }
        verdicts.push(verdict_to_pb(&scored.verdict));
        if let Some(check) = &mut check
            && !check.present(&scored.verdict.verdict_id).map_err(store_error)?
        {
            // The encoding happens here, on the thread that scored (for stream chunks a blocking-pool thread, so
            // encodings run in parallel), straight from the verdict and its features: nothing copied.
            let mut encoded =
                EncodedVerdict::from_parts(&scored.verdict, scored.features.values(), schema_hash, "grpc")
                    .map_err(store_error)?;
            check.absent(&mut encoded);
            audit.push(encoded);
        }
    }
    // With fsync durability, verdicts found in the audit trail but not yet known to be on disk (their commit's
    // flush still running) are answered only after a flush: an empty durable job in the writer's queue.
    let mut flush = false;
    if let (Some(feedback), Some(check)) = (feedback, check) {
        let found = check.found();
        if found > 0 {
            state.telemetry.record_audit(Ack {
                duplicates: u32::try_from(found).unwrap_or(u32::MAX),
                ..Ack::default()
            });
        }
        let durable = check.finish().durable;
        flush = found > 0 && !durable && feedback.settings().audit_durability == AuditDurability::Fsync;
    }
    if let Some(tally) = tally {
        state.telemetry.record_verdicts(tally);
    }
    Ok(ScoredBatch { verdicts, audit, flush })
}

/// Hands a scored batch's verdicts to the audit trail (waiting for room in the writer's queue) and returns the
/// acknowledgement to await before the verdicts may leave; `None` without a store, or with nothing to write nor
/// to wait for (`flush`: verdicts found in the audit trail whose commit may not be on disk yet).
async fn queue_audit(
    state: &AppState,
    audit: Vec<EncodedVerdict>,
    flush: bool,
) -> Result<Option<Pending>, RequestError> {
    match state.feedback() {
        Some(feedback) if !audit.is_empty() || flush => {
            feedback.audit(audit).await.map(Some).map_err(RequestError::Write)
        }
        _ => Ok(None),
    }
}

/// Waits for an audit acknowledgement.
async fn audited(state: &AppState, pending: Option<Pending>) -> Result<(), RequestError> {
    if let Some(pending) = pending {
        let ack = pending.wait().await.map_err(RequestError::Write)?;
        state.telemetry.record_audit(ack);
    }
    Ok(())
}

#[tonic::async_trait]
impl ReuseScorer for ScorerService {
    async fn score(&self, request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        let call = Call::start(&self.state, "Score");
        let deadline = deadline::of(&request);
        let request = request.into_inner();
        call.objects(request.objects.len());
        let span = call.span().clone();
        let result = async {
            let model = self.state.current().ok_or_else(|| to_status(RequestError::NoModel))?;
            let at = request.at_unix.unwrap_or_else(now_unix);
            // Scored here, on the async worker: a unary call is mostly one object, for which a hand-over to another
            // thread costs more than the scoring; and the deadline is checked between objects, so a large batch
            // ends with DEADLINE_EXCEEDED in time.
            let scored =
                score_batch(&self.state, &model, request.objects, at, "objects", deadline).map_err(to_status)?;
            let audit = async {
                let pending = queue_audit(&self.state, scored.audit, scored.flush).await?;
                audited(&self.state, pending).await
            };
            match deadline {
                None => audit.await,
                Some(d) => tokio::time::timeout_at(d.into(), audit)
                    .await
                    .unwrap_or(Err(RequestError::AuditDeadline)),
            }
            .map_err(to_status)?;
            Ok(ScoreResponse {
                verdicts: scored.verdicts,
                model_version: model.engine.model.version().to_string(),
                at_unix: at,
            })
        }
        .instrument(span)
        .await;
        call.finish(result.as_ref().map(|_| ()));
        result.map(Response::new)
    }

    type ScoreStreamStream = ReceiverStream<Result<ScoreStreamResponse, Status>>;

    async fn score_stream(
        &self,
        request: Request<Streaming<ScoreStreamRequest>>,
    ) -> Result<Response<Self::ScoreStreamStream>, Status> {
        let call = Call::start(&self.state, "ScoreStream");
        // The deadline covers the whole stream, not only its opening.
        let deadline = deadline::of(&request);
        let mut inbound = request.into_inner();
        let state = self.state.clone();
        let lanes = self.lanes.clone();
        let opened_at = now_unix();
        // A bounded channel: when the client reads slowly, `send` waits, and so does the next `message()` read:
        // HTTP/2 flow control then pushes back on the client. Nothing buffers without bound.
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let span = call.span().clone();
        tokio::spawn(
            async move {
                let mut stream_at: Option<UnixSeconds> = None;
                let mut chunk_index = 0usize;
                let mut objects = 0usize;
                // Three stages, each feeding the next through a bounded channel, so every chunk passes them in
                // order and nothing buffers without bound:
                // 1. this task reads chunks and hands each to the blocking pool to be scored (and its verdicts
                //    encoded for the audit trail), at most `SCORING_PIPELINE` at a time per stream and one per
                //    core over the whole server (`lanes`): chunks of one stream are scored in parallel;
                // 2. `staging` takes the scored chunks in order and queues their verdicts for the audit trail;
                // 3. `delivery` answers each chunk as soon as its audit is acknowledged, in order.
                // A client that waits for each answer before sending its next chunk gets it. When a stage falls
                // behind, the ones before it wait; in the end the reader stops reading and HTTP/2 flow control
                // pushes back on the client.
                let (scoring_tx, mut scoring_rx) = mpsc::channel::<Scoring>(SCORING_PIPELINE);
                let (scored_tx, mut scored_rx) = mpsc::channel::<Waiting>(AUDIT_PIPELINE);
                let delivery = {
                    let (state, tx) = (state.clone(), tx.clone());
                    tokio::spawn(async move {
                        while let Some(item) = scored_rx.recv().await {
                            if let Err(end) = deliver(&state, &tx, item, deadline).await {
                                return Some(end);
                            }
                        }
                        None
                    })
                };
                let staging = {
                    let state = state.clone();
                    tokio::spawn(async move {
                        while let Some((index, at, model, scoring)) = scoring_rx.recv().await {
                            let scored = match scoring.await {
                                Ok(Ok(scored)) => scored,
                                Ok(Err(e)) => return Some(End::Fail(chunk_status(index, e))),
                                Err(e) => {
                                    return Some(End::Fail(Status::internal(format!(
                                        "chunk {index}: scoring failed: {e}"
                                    ))));
                                }
                            };
                            let pending = match queue_audit(&state, scored.audit, scored.flush).await {
                                Ok(pending) => pending,
                                Err(e) => return Some(End::Fail(chunk_status(index, e))),
                            };
                            let response = ScoreStreamResponse {
                                verdicts: scored.verdicts,
                                model_version: model.engine.model.version().to_string(),
                                at_unix: at,
                            };
                            // The delivery task stopped (a failed audit, the client gone): its reason ends the
                            // stream.
                            if scored_tx.send((index, pending, response)).await.is_err() {
                                return None;
                            }
                        }
                        None
                    })
                };
                let end = 'stream: loop {
                    let next = match deadline {
                        None => inbound.message().await,
                        Some(d) => match tokio::time::timeout_at(d.into(), inbound.message()).await {
                            Ok(next) => next,
                            Err(_) => {
                                break 'stream End::Fail(Status::deadline_exceeded(format!(
                                    "the stream's deadline passed after {objects} objects, waiting for chunk {chunk_index}"
                                )));
                            }
                        },
                    };
                    let chunk = match next {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) => break End::Done,
                        // A chunk beyond `max_message_bytes`: refused (tonic's decoder says OUT_OF_RANGE).
                        Err(status) if guard::is_oversize(&status) => {
                            break End::Fail(chunk_status_of(chunk_index, guard::oversize_status(&status)));
                        }
                        Err(status) if matches!(status.code(), Code::Cancelled | Code::Unknown | Code::Unavailable) => {
                            tracing::debug!(%status, "score stream ended by the client");
                            break End::Gone(Status::cancelled(format!("the client ended the stream: {status}")));
                        }
                        // A chunk that cannot be decoded: refused, not a silently shortened stream.
                        Err(status) => break End::Fail(chunk_status_of(chunk_index, status)),
                    };
                    objects += chunk.objects.len();
                    call.objects(objects);
                    let at = chunk.at_unix.or(stream_at).unwrap_or(opened_at);
                    stream_at.get_or_insert(at);
                    // The model is taken per chunk, so a reload takes effect at a chunk boundary.
                    let Some(model) = state.current() else {
                        break End::Fail(to_status(RequestError::NoModel));
                    };
                    let Ok(lane) = lanes.clone().acquire_owned().await else {
                        break End::Fail(Status::unavailable("the server is shutting down"));
                    };
                    let scoring = {
                        let (state, model) = (state.clone(), model.clone());
                        tokio::task::spawn_blocking(move || {
                            let _lane = lane;
                            score_batch(&state, &model, chunk.objects, at, "objects", deadline)
                        })
                    };
                    // Staging stopped (a failed chunk, or delivery stopped): its reason ends the stream.
                    if scoring_tx.send((chunk_index, at, model, scoring)).await.is_err() {
                        break End::Done;
                    }
                    chunk_index += 1;
                };
                // Chunks read before the end are answered first, in order; a delivery failure comes first, then a
                // chunk that failed to score or audit, then how reading ended.
                drop(scoring_tx);
                let (staged, delivered) = if matches!(end, End::Gone(_)) {
                    staging.abort();
                    delivery.abort();
                    (None, None)
                } else {
                    let failed = |what: &str, e: tokio::task::JoinError| {
                        Some(End::Fail(Status::internal(format!("stream {what} failed: {e}"))))
                    };
                    let staged = staging.await.unwrap_or_else(|e| failed("staging", e));
                    let delivered = delivery.await.unwrap_or_else(|e| failed("delivery", e));
                    (staged, delivered)
                };
                let end = delivered.or(staged).unwrap_or(end);
                // The stream's outcome: the status sent to the client, or CANCELLED when the client went away.
                let outcome = match end {
                    End::Done => Ok(()),
                    End::Fail(status) => {
                        let _ = tx.send(Err(status.clone())).await;
                        Err(status)
                    }
                    End::Gone(status) => Err(status),
                };
                call.finish(outcome.as_ref().err().map_or(Ok(()), Err));
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A chunk being scored on the blocking pool: its index, time, model and the scoring task.
type Scoring = (
    usize,
    UnixSeconds,
    Arc<LoadedModel>,
    tokio::task::JoinHandle<Result<ScoredBatch, RequestError>>,
);

/// A scored chunk waiting for its audit acknowledgement: its index, the acknowledgement, the response.
type Waiting = (usize, Option<Pending>, ScoreStreamResponse);

/// How the reading side of a stream ended.
enum End {
    /// The client finished sending.
    Done,
    /// A status to send to the client after the chunks before it.
    Fail(Status),
    /// The client went away: nothing more to send.
    Gone(Status),
}

fn chunk_status(index: usize, e: RequestError) -> Status {
    chunk_status_of(index, to_status(e))
}

fn chunk_status_of(index: usize, status: Status) -> Status {
    Status::new(status.code(), format!("chunk {index}: {}", status.message()))
}

/// Waits for a scored chunk's audit acknowledgement (within the stream's deadline), then sends its response.
async fn deliver(
    state: &AppState,
    tx: &mpsc::Sender<Result<ScoreStreamResponse, Status>>,
    (index, pending, response): Waiting,
    deadline: Option<Instant>,
) -> Result<(), End> {
    let acked = match deadline {
        None => audited(state, pending).await,
        Some(d) => match tokio::time::timeout_at(d.into(), audited(state, pending)).await {
            Ok(acked) => acked,
            Err(_) => {
                return Err(End::Fail(Status::deadline_exceeded(format!(
                    "chunk {index}: the stream's deadline passed while its verdicts were being audited"
                ))));
            }
        },
    };
    acked.map_err(|e| End::Fail(chunk_status(index, e)))?;
    tx.send(Ok(response))
        .await
        .map_err(|_| End::Gone(Status::cancelled("the client stopped reading the stream")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    #[test]
    fn a_passed_deadline_is_deadline_exceeded() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.json");
        let model = reprieve_model::Model::load(&path).expect("the bundled model loads");
        let state = AppState::new(ServerConfig::default());
        let loaded = state.install(model, "test".into());
        let object = v1::ObjectRecord {
            key: "a/b".into(),
            ..Default::default()
        };
        let at = 1_780_000_000;
        let ok = score_batch(&state, &loaded, vec![object.clone(); 3], at, "objects", None).expect("no deadline");
        assert_eq!(ok.verdicts.len(), 3);
        assert!(ok.audit.is_empty(), "no store, nothing to audit");
        let err = score_batch(&state, &loaded, vec![object; 3], at, "objects", Some(Instant::now()))
            .expect_err("deadline already passed");
        assert!(matches!(err, RequestError::DeadlineExceeded { total: 3, .. }), "{err}");
        assert_eq!(to_status(err).code(), tonic::Code::DeadlineExceeded);
    }
}
