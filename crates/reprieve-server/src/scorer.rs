//! `reprieve.v1.ReuseScorer`: unary and streaming scoring. Validation comes first in every handler.

use std::sync::Arc;
use std::time::Instant;

use reprieve_core::{ScopeState, UnixSeconds};
use reprieve_proto::FieldError;
use reprieve_proto::convert::{record_from_pb, verdict_to_pb};
use reprieve_proto::v1::reuse_scorer_server::ReuseScorer;
use reprieve_proto::v1::{self, ScoreRequest, ScoreResponse, ScoreStreamRequest, ScoreStreamResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::deadline;
use crate::error::{RequestError, to_status};
use crate::state::{AppState, LoadedModel, now_unix};
use crate::telemetry::Call;

/// How many scored chunks a stream may have in flight to a slow client before the server stops reading.
const STREAM_BUFFER: usize = 2;

#[derive(Debug, Clone)]
pub struct ScorerService {
    state: Arc<AppState>,
}

impl ScorerService {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// Scores one batch of wire records: every record is converted and validated before any is scored, so a bad
/// request is refused whole with the first offending field named (`objects[i].field`). `deadline` is checked
/// between objects: a batch that cannot finish in time is abandoned with `DEADLINE_EXCEEDED`.
pub fn score_batch(
    state: &AppState,
    model: &LoadedModel,
    objects: Vec<v1::ObjectRecord>,
    at: UnixSeconds,
    what: &'static str,
    deadline: Option<Instant>,
) -> Result<Vec<v1::Verdict>, RequestError> {
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
        let parent = format!("{what}[{i}]");
        let record = record_from_pb(object).map_err(|e| RequestError::Field(e.within(&parent)))?;
        record
            .validate(at, &state.config.limits)
            .map_err(|e| RequestError::Field(FieldError::from(e).within(&parent)))?;
        records.push(record);
    }
    let mut tally = state.telemetry.tally();
    let mut verdicts = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        if deadline::expired(deadline) {
            return Err(late(i));
        }
        let verdict = model.engine.score(record, at, ScopeState::default()).verdict;
        if let Some(tally) = &mut tally {
            tally.add(&verdict);
        }
        verdicts.push(verdict_to_pb(&verdict));
    }
    if let Some(tally) = tally {
        state.telemetry.record_verdicts(tally);
    }
    Ok(verdicts)
}

#[tonic::async_trait]
impl ReuseScorer for ScorerService {
    async fn score(&self, request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        let call = Call::start(&self.state, "Score");
        let deadline = deadline::from_metadata(request.metadata());
        let request = request.into_inner();
        call.objects(request.objects.len());
        let result = call.span().in_scope(|| {
            let model = self.state.current().ok_or_else(|| to_status(RequestError::NoModel))?;
            let at = request.at_unix.unwrap_or_else(now_unix);
            let verdicts =
                score_batch(&self.state, &model, request.objects, at, "objects", deadline).map_err(to_status)?;
            Ok(ScoreResponse {
                verdicts,
                model_version: model.engine.model.version().to_string(),
                at_unix: at,
            })
        });
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
        let deadline = deadline::from_metadata(request.metadata());
        let mut inbound = request.into_inner();
        let state = self.state.clone();
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
                // The stream's outcome: the status sent to the client, or CANCELLED when the client went away.
                let mut outcome = Ok(());
                loop {
                    let next = match deadline {
                        None => inbound.message().await,
                        Some(d) => match tokio::time::timeout_at(d.into(), inbound.message()).await {
                            Ok(next) => next,
                            Err(_) => {
                                let status = Status::deadline_exceeded(format!(
                                    "the stream's deadline passed after {objects} objects, waiting for chunk {chunk_index}"
                                ));
                                let _ = tx.send(Err(status.clone())).await;
                                outcome = Err(status);
                                break;
                            }
                        },
                    };
                    let chunk = match next {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(%status, "score stream ended by the client");
                            outcome = Err(Status::cancelled(format!("the client ended the stream: {status}")));
                            break;
                        }
                    };
                    objects += chunk.objects.len();
                    call.objects(objects);
                    let at = chunk.at_unix.or(stream_at).unwrap_or(opened_at);
                    stream_at.get_or_insert(at);
                    // The model is taken per chunk, so a reload takes effect at a chunk boundary.
                    let result = match state.current() {
                        None => Err(to_status(RequestError::NoModel)),
                        Some(model) => score_batch(&state, &model, chunk.objects, at, "objects", deadline)
                            .map(|verdicts| ScoreStreamResponse {
                                verdicts,
                                model_version: model.engine.model.version().to_string(),
                                at_unix: at,
                            })
                            .map_err(|e| {
                                let status = to_status(e);
                                Status::new(status.code(), format!("chunk {chunk_index}: {}", status.message()))
                            }),
                    };
                    let failed = result.as_ref().err().cloned();
                    if tx.send(result).await.is_err() {
                        outcome = Err(Status::cancelled("the client stopped reading the stream"));
                        break;
                    }
                    if let Some(status) = failed {
                        outcome = Err(status);
                        break;
                    }
                    chunk_index += 1;
                }
                call.finish(outcome.as_ref().err().map_or(Ok(()), Err));
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
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
        assert_eq!(ok.len(), 3);
        let err = score_batch(&state, &loaded, vec![object; 3], at, "objects", Some(Instant::now()))
            .expect_err("deadline already passed");
        assert!(matches!(err, RequestError::DeadlineExceeded { total: 3, .. }), "{err}");
        assert_eq!(to_status(err).code(), tonic::Code::DeadlineExceeded);
    }
}
