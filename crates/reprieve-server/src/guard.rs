//! Two status corrections around each Reprieve service, for the cases where tonic answers before (or instead of)
//! our handlers, with codes the gRPC spec gives otherwise:
//!
//! - A request message larger than `max_message_bytes` is refused by tonic's decoder with `OUT_OF_RANGE`; the spec
//!   (and grpc-go, grpc-java, C-core) say `RESOURCE_EXHAUSTED`, which is what we answer. Unary calls are corrected
//!   here; `ScoreStream` chunks in the handler (see [`is_oversize`]).
//! - A client deadline (`grpc-timeout`) that passes while a unary call is still running (its request still
//!   arriving, or its verdicts being audited) is answered by tonic's own timer with `CANCELLED`; we answer
//!   `DEADLINE_EXCEEDED`. [`Guarded`] fixes the call's deadline a moment earlier than tonic's timer (tonic's is set
//!   first, and [`MARGIN`] covers the microseconds in between) and tonic polls the service before its timer, so
//!   our answer always comes first. The deadline goes to the handler as a [`CallDeadline`] request extension, so
//!   that handlers check the very same instant ([`crate::deadline::of`]).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::deadline;

/// How much earlier than the client's deadline our timer fires: more than the time between tonic starting its
/// timer and the service being called (microseconds), less than anything a client could notice.
pub const MARGIN: Duration = Duration::from_millis(2);

/// When the call must be answered by (a request extension set by [`Guarded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallDeadline(pub Instant);

/// A tonic service with the corrections above.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
}

impl<S> Guarded<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Guarded<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse_grpc_timeout)
            .and_then(|timeout| Instant::now().checked_add(timeout.saturating_sub(MARGIN)));
        if let Some(deadline) = deadline {
            request.extensions_mut().insert(CallDeadline(deadline));
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = match deadline {
                None => answer.await?,
                Some(d) => match tokio::time::timeout_at(d.into(), answer).await {
                    Ok(response) => response?,
                    Err(_) => {
                        return Ok(
                            Status::deadline_exceeded("the call's deadline passed before it could be answered")
                                .into_http(),
                        );
                    }
                },
            };
            Ok(correct_oversize(response))
        })
    }
}

/// Whether `status` is tonic's refusal of a message beyond the size limit.
pub fn is_oversize(status: &Status) -> bool {
    status.code() == Code::OutOfRange && status.message().contains("message length too large")
}

/// The same refusal with the code the gRPC spec gives it.
pub fn oversize_status(status: &Status) -> Status {
    Status::resource_exhausted(format!("{} (the server's max_message_bytes)", status.message()))
}

/// Rewrites a trailers-only `OUT_OF_RANGE` size refusal (how tonic answers an oversize unary request) as
/// `RESOURCE_EXHAUSTED`; any other response passes unchanged.
fn correct_oversize(response: Response<Body>) -> Response<Body> {
    match Status::from_header_map(response.headers()) {
        Some(status) if is_oversize(&status) => oversize_status(&status).into_http(),
        _ => response,
    }
}
