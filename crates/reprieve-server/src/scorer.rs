//! `reprieve.v1.ReuseScorer`: unary and streaming scoring. Validation comes first in every handler.

use std::sync::Arc;

use reprieve_core::{ScopeState, UnixSeconds};
use reprieve_proto::FieldError;
use reprieve_proto::convert::{record_from_pb, verdict_to_pb};
use reprieve_proto::v1::reuse_scorer_server::ReuseScorer;
use reprieve_proto::v1::{self, ScoreRequest, ScoreResponse, ScoreStreamRequest, ScoreStreamResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{RequestError, to_status};
use crate::state::{AppState, LoadedModel, now_unix};

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
/// request is refused whole with the first offending field named (`objects[i].field`).
pub fn score_batch(
    state: &AppState,
    model: &LoadedModel,
    objects: Vec<v1::ObjectRecord>,
    at: UnixSeconds,
    what: &'static str,
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
    let mut records = Vec::with_capacity(objects.len());
    for (i, object) in objects.into_iter().enumerate() {
        let parent = format!("{what}[{i}]");
        let record = record_from_pb(object).map_err(|e| RequestError::Field(e.within(&parent)))?;
        record
            .validate(at, &state.config.limits)
            .map_err(|e| RequestError::Field(FieldError::from(e).within(&parent)))?;
        records.push(record);
    }
    Ok(records
        .iter()
        .map(|r| verdict_to_pb(&model.engine.score(r, at, ScopeState::default()).verdict))
        .collect())
}

#[tonic::async_trait]
impl ReuseScorer for ScorerService {
    async fn score(&self, request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        let request = request.into_inner();
        let model = self.state.current().ok_or_else(|| to_status(RequestError::NoModel))?;
        let at = request.at_unix.unwrap_or_else(now_unix);
        let verdicts = score_batch(&self.state, &model, request.objects, at, "objects").map_err(to_status)?;
        tracing::debug!(objects = verdicts.len(), at, "scored");
        Ok(Response::new(ScoreResponse {
            verdicts,
            model_version: model.engine.model.version().to_string(),
            at_unix: at,
        }))
    }

    type ScoreStreamStream = ReceiverStream<Result<ScoreStreamResponse, Status>>;

    async fn score_stream(
        &self,
        request: Request<Streaming<ScoreStreamRequest>>,
    ) -> Result<Response<Self::ScoreStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let state = self.state.clone();
        let opened_at = now_unix();
        // A bounded channel: when the client reads slowly, `send` waits, and so does the next `message()` read:
        // HTTP/2 flow control then pushes back on the client. Nothing buffers without bound.
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let mut stream_at: Option<UnixSeconds> = None;
            let mut chunk_index = 0usize;
            loop {
                let chunk = match inbound.message().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "score stream ended by the client");
                        break;
                    }
                };
                let at = chunk.at_unix.or(stream_at).unwrap_or(opened_at);
                stream_at.get_or_insert(at);
                // The model is taken per chunk, so a reload takes effect at a chunk boundary.
                let result = match state.current() {
                    None => Err(to_status(RequestError::NoModel)),
                    Some(model) => score_batch(&state, &model, chunk.objects, at, "objects")
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
                let failed = result.is_err();
                if tx.send(result).await.is_err() || failed {
                    break;
                }
                chunk_index += 1;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
