//! The load loop: workers over gRPC connections, open or closed loop, latencies into HDR histograms.
//!
//! - **Closed loop** (no `rate`): each of `concurrency` workers sends a request, waits for its answer and sends the
//!   next; the result is the server's maximum throughput at that concurrency. Latency is from send to answer.
//! - **Open loop** (`rate` requests/s in total): each worker owns `rate / concurrency` of the schedule and sends
//!   its k-th request at its intended time `t0 + offset + k * interval`. When the server falls behind, the next
//!   request goes out as soon as the previous one is answered, and its latency is still measured from its intended
//!   time, so a stall shows up as the latency every request scheduled during it would have seen (no coordinated
//!   omission, as in wrk2). Give enough `concurrency` that one worker's share is well below what one connection
//!   sustains. Unary requests are released at their intended times by one pacing thread that sleeps on the
//!   kernel's timer (typically tens of microseconds late), not by tokio's timer, which fires whole milliseconds
//!   late (rounded up to its 1 ms tick): that lateness was charged to the server, about 1.5 ms at every
//!   percentile.
//!
//! Workers are spread round-robin over `connections` HTTP/2 connections. In `stream` mode every worker holds one
//! `ScoreStream` call open for the whole run and each "request" is one chunk and its response; up to
//! `stream_window` chunks are sent ahead of their answers (the server pipelines its audit acknowledgements and
//! answers a chunk only once later chunks or the end of the stream have arrived, so a strictly one-at-a-time client
//! would wait forever; see benches/README.md). The first `warmup` of the run is not recorded.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use prost::Message;
use prost::bytes::Bytes;
use reprieve_core::UnixSeconds;
use reprieve_proto::convert::record_to_pb;
use reprieve_proto::v1;
use serde::Serialize;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::codec::RawCodec;
use crate::records;

/// Unary `Score` or bidirectional `ScoreStream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Unary,
    Stream,
}

/// One load run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub target: String,
    pub mode: Mode,
    pub duration: Duration,
    pub warmup: Duration,
    /// Requests (stream chunks) per second over all workers; `None`: closed loop, as fast as answers come.
    pub rate: Option<f64>,
    pub objects_per_request: usize,
    pub concurrency: usize,
    pub connections: usize,
    pub seed: u64,
    pub at: UnixSeconds,
    /// Distinct pre-encoded requests cycled through.
    pub distinct_requests: usize,
    /// Per-request deadline (`grpc-timeout`), unary mode.
    pub timeout: Duration,
    /// Decode and check every n-th response (verdict count); 0 checks none.
    pub check_every: u64,
    /// Stream mode: chunks sent ahead of their answers on each stream.
    pub stream_window: usize,
    /// Each request (chunk) is sent with its own `at_unix` (`at` + 1 + a count unique over the run), so every
    /// verdict is new to the server's audit trail; otherwise requests repeat and their verdicts are duplicates.
    pub fresh_verdicts: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub config: Config,
    pub measured_secs: f64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    /// The first few failures, as `code: message`.
    pub first_errors: Vec<String>,
    pub requests_per_sec: f64,
    pub objects_per_sec: f64,
    /// Mean encoded request size in bytes.
    pub request_bytes: f64,
    pub response_bytes_per_sec: f64,
    pub responses_checked: u64,
    /// Latency of successful requests; from the intended send time in open loop.
    pub latency: Latency,
}

struct WorkerResult {
    hist: Histogram<u64>,
    ok: u64,
    failed: u64,
    errors: Vec<String>,
    response_bytes: u64,
    checked: u64,
}

const MAX_ERRORS_KEPT: usize = 5;

/// Pre-encodes `distinct` requests of `per` objects each from the seed; returns (unary, stream) encodings.
pub fn build_requests(config: &Config) -> (Vec<Bytes>, Vec<Bytes>) {
    let per = config.objects_per_request.max(1);
    let distinct = config.distinct_requests.max(1);
    let pool = records::generate(config.seed, per * distinct, config.at);
    let mut unary = Vec::with_capacity(distinct);
    let mut stream = Vec::with_capacity(distinct);
    for chunk in pool.chunks(per) {
        let objects: Vec<v1::ObjectRecord> = chunk.iter().map(record_to_pb).collect();
        stream.push(Bytes::from(
            v1::ScoreStreamRequest {
                objects: objects.clone(),
                at_unix: Some(config.at),
            }
            .encode_to_vec(),
        ));
        unary.push(Bytes::from(
            v1::ScoreRequest {
                objects,
                at_unix: Some(config.at),
            }
            .encode_to_vec(),
        ));
    }
    (unary, stream)
}

/// An encoded `ScoreRequest` or `ScoreStreamRequest` with its `at_unix` set to `at`. `at_unix` is field 2 of both;
/// of a scalar field repeated on the wire the last one wins, so appending it overrides the encoded one without
/// re-encoding the records.
pub fn with_at(request: &[u8], at: UnixSeconds) -> Bytes {
    let mut out = Vec::with_capacity(request.len() + 11);
    out.extend_from_slice(request);
    out.push(0x10);
    prost::encoding::encode_varint(at as u64, &mut out);
    Bytes::from(out)
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, 1 us to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn check_response(bytes: &Bytes, mode: Mode, expected: usize) -> Result<(), String> {
    let verdicts = match mode {
        Mode::Unary => v1::ScoreResponse::decode(bytes.clone()).map(|r| r.verdicts.len()),
        Mode::Stream => v1::ScoreStreamResponse::decode(bytes.clone()).map(|r| r.verdicts.len()),
    }
    .map_err(|e| format!("undecodable response: {e}"))?;
    if verdicts != expected {
        return Err(format!("{verdicts} verdicts for {expected} objects"));
    }
    Ok(())
}

/// Connects, runs the load and summarises it.
pub async fn run(config: Config) -> anyhow::Result<Report> {
    if config.concurrency == 0 || config.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    if config.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of requests per second");
    }
    let (unary, stream) = build_requests(&config);
    let requests = match config.mode {
        Mode::Unary => unary,
        Mode::Stream => stream,
    };
    let request_bytes = requests.iter().map(|b| b.len() as f64).sum::<f64>() / requests.len() as f64;
    let endpoint = Endpoint::from_shared(config.target.clone())
        .with_context(|| format!("--target {:?}", config.target))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut channels = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to {}", config.target))?,
        );
    }

    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let mut ticks = match (config.mode, config.rate) {
        (Mode::Unary, Some(rate)) => pace(start, end, rate, config.concurrency)?
            .into_iter()
            .map(Some)
            .collect(),
        _ => Vec::new(),
    };
    let mut handles = Vec::with_capacity(config.concurrency);
    for i in 0..config.concurrency {
        let worker = Worker {
            index: i,
            ticks: ticks.get_mut(i).and_then(Option::take),
            channel: channels[i % channels.len()].clone(),
            requests: requests.clone(),
            config: config.clone(),
            start,
            measure_from,
            end,
        };
        handles.push(tokio::spawn(worker.run()));
    }
    let mut hist = new_histogram()?;
    let (mut ok, mut failed, mut response_bytes, mut checked) = (0u64, 0u64, 0u64, 0u64);
    let mut first_errors = Vec::new();
    for h in handles {
        let r = h.await.context("worker panicked")??;
        hist.add(&r.hist).context("merging histograms")?;
        ok += r.ok;
        failed += r.failed;
        response_bytes += r.response_bytes;
        checked += r.checked;
        for e in r.errors {
            if first_errors.len() < MAX_ERRORS_KEPT {
                first_errors.push(e);
            }
        }
    }
    let secs = config.duration.as_secs_f64();
    let ms = |us: u64| us as f64 / 1_000.0;
    Ok(Report {
        measured_secs: secs,
        requests_ok: ok,
        requests_failed: failed,
        first_errors,
        requests_per_sec: ok as f64 / secs,
        objects_per_sec: (ok as f64 * config.objects_per_request as f64) / secs,
        request_bytes,
        response_bytes_per_sec: response_bytes as f64 / secs,
        responses_checked: checked,
        latency: Latency {
            min_ms: ms(hist.min()),
            mean_ms: hist.mean() / 1_000.0,
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
        },
        config,
    })
}

/// Releases open-loop requests at their intended times: one thread walks the whole schedule (request `i` at
/// `start + i / rate`, worker `i % concurrency`, that worker's request `i / concurrency`, as
/// [`Worker::intended`] computes it) and sends each worker the number of its request when it is due. A worker
/// still waiting for an earlier answer finds the tick queued and sends at once: its latency still runs from the
/// intended time.
fn pace(
    start: Instant,
    end: Instant,
    rate: f64,
    concurrency: usize,
) -> anyhow::Result<Vec<tokio::sync::mpsc::UnboundedReceiver<u64>>> {
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number of requests per second");
    }
    let concurrency = concurrency.max(1);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..concurrency)
        .map(|_| tokio::sync::mpsc::unbounded_channel::<u64>())
        .unzip();
    let (start, end) = (start.into_std(), end.into_std());
    std::thread::Builder::new()
        .name("loadgen-pacer".into())
        .spawn(move || {
            for i in 0u64.. {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if due >= end {
                    break;
                }
                let now = std::time::Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                // A worker that stopped (its connection failed) takes no more requests.
                let _ = senders[(i % concurrency as u64) as usize].send(i / concurrency as u64);
            }
        })
        .context("starting the pacing thread")?;
    Ok(receivers)
}

struct Worker {
    index: usize,
    /// Open-loop unary: the numbers of this worker's requests, each sent when it is due (see [`pace`]).
    ticks: Option<tokio::sync::mpsc::UnboundedReceiver<u64>>,
    channel: Channel,
    requests: Vec<Bytes>,
    config: Config,
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

impl Worker {
    /// The intended send time of this worker's k-th request (open loop), or `None` in closed loop.
    fn intended(&self, k: u64) -> Option<Instant> {
        let rate = self.config.rate?;
        // Workers are staggered across one interval so that the aggregate schedule is even: request `i` of the
        // whole schedule is this worker's k-th when `i = index + k * concurrency` (the same rule as [`pace`]).
        let i = self.index as u64 + k * self.config.concurrency.max(1) as u64;
        Some(self.start + Duration::from_secs_f64(i as f64 / rate))
    }

    async fn run(mut self) -> anyhow::Result<WorkerResult> {
        let ticks = self.ticks.take();
        let mut result = WorkerResult {
            hist: new_histogram()?,
            ok: 0,
            failed: 0,
            errors: Vec::new(),
            response_bytes: 0,
            checked: 0,
        };
        let mut grpc = Grpc::new(self.channel.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        grpc.ready().await.context("connection not ready")?;
        match self.config.mode {
            Mode::Unary => self.run_unary(grpc, ticks, &mut result).await?,
            Mode::Stream => self.run_stream(grpc, &mut result).await?,
        }
        Ok(result)
    }

    fn request(&self, k: u64) -> Bytes {
        let bytes = self.requests[(self.index + k as usize) % self.requests.len()].clone();
        if !self.config.fresh_verdicts {
            return bytes;
        }
        let at = self.config.at + 1 + (k * self.config.concurrency as u64 + self.index as u64) as i64;
        with_at(&bytes, at)
    }

    /// Records one answer that took from `from` to `done`.
    fn answered(&self, result: &mut WorkerResult, k: u64, from: Instant, done: Instant, answer: Result<Bytes, Status>) {
        let record = from >= self.measure_from;
        match answer {
            Ok(bytes) => {
                let check = self.config.check_every > 0 && k.is_multiple_of(self.config.check_every);
                if check && let Err(e) = check_response(&bytes, self.config.mode, self.config.objects_per_request) {
                    result.failed += 1;
                    if result.errors.len() < MAX_ERRORS_KEPT {
                        result.errors.push(e);
                    }
                } else if record {
                    result.ok += 1;
                    result.response_bytes += bytes.len() as u64;
                    result.checked += u64::from(check);
                    let us = u64::try_from(done.duration_since(from).as_micros()).unwrap_or(u64::MAX);
                    result.hist.saturating_record(us.max(1));
                }
            }
            Err(status) => {
                if record {
                    result.failed += 1;
                }
                if result.errors.len() < MAX_ERRORS_KEPT {
                    result.errors.push(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }

    async fn run_unary(
        &self,
        mut grpc: Grpc<Channel>,
        mut ticks: Option<tokio::sync::mpsc::UnboundedReceiver<u64>>,
        result: &mut WorkerResult,
    ) -> anyhow::Result<()> {
        let path = PathAndQuery::from_static("/reprieve.v1.ReuseScorer/Score");
        let mut k = 0u64;
        loop {
            if let Some(ticks) = &mut ticks {
                // The pacing thread stops at the end of the schedule.
                let Some(due) = ticks.recv().await else { return Ok(()) };
                k = due;
            }
            let intended = self.intended(k);
            // Paced requests due before the end are all sent, however late the worker is: dropping the latest
            // ones would drop the worst latencies of a server that fell behind.
            if intended.unwrap_or_else(Instant::now) >= self.end || (ticks.is_none() && Instant::now() >= self.end) {
                return Ok(());
            }
            if let Some(t) = intended
                && ticks.is_none()
            {
                tokio::time::sleep_until(t).await;
            }
            let sent = Instant::now();
            grpc.ready().await.context("connection not ready")?;
            let mut req = tonic::Request::new(self.request(k));
            req.set_timeout(self.config.timeout);
            let answer = grpc
                .unary(req, path.clone(), RawCodec)
                .await
                .map(tonic::Response::into_inner);
            self.answered(result, k, intended.unwrap_or(sent), Instant::now(), answer);
            k += 1;
        }
    }

    /// One `ScoreStream` call for the whole run, with up to `stream_window` chunks in flight: each chunk's
    /// latency is from its send (or intended send) time to its response.
    async fn run_stream(&self, mut grpc: Grpc<Channel>, result: &mut WorkerResult) -> anyhow::Result<()> {
        let window = self.config.stream_window.max(1);
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(window);
        // Sent chunks not yet answered: (index, latency origin).
        let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::with_capacity(window);
        // tonic's server answers the call's headers only once the handler has returned; send the first chunk
        // before awaiting the call so that neither side waits for the other.
        let first = self.intended(0).unwrap_or_else(Instant::now);
        if let Some(t) = self.intended(0) {
            tokio::time::sleep_until(t).await;
        }
        tx.send(self.request(0)).await.context("stream closed")?;
        in_flight.push_back((0, first.max(self.start)));
        let path = PathAndQuery::from_static("/reprieve.v1.ReuseScorer/ScoreStream");
        grpc.ready().await.context("connection not ready")?;
        let mut inbound = grpc
            .streaming(tonic::Request::new(ReceiverStream::new(rx)), path, RawCodec)
            .await
            .context("opening ScoreStream")?
            .into_inner();
        let mut tx = Some(tx);
        let mut k = 1u64;
        loop {
            // Fill the window with the chunks that are due.
            while let Some(sender) = &tx
                && in_flight.len() < window
            {
                let intended = self.intended(k);
                let due = intended.unwrap_or_else(Instant::now);
                if due >= self.end || Instant::now() >= self.end {
                    tx = None;
                    break;
                }
                if let Some(t) = intended
                    && t > Instant::now()
                {
                    if !in_flight.is_empty() {
                        break;
                    }
                    tokio::time::sleep_until(t).await;
                }
                let sent = Instant::now();
                if sender.send(self.request(k)).await.is_err() {
                    tx = None;
                    break;
                }
                in_flight.push_back((k, intended.unwrap_or(sent)));
                k += 1;
            }
            let Some(&(index, from)) = in_flight.front() else {
                if tx.is_none() {
                    break;
                }
                continue;
            };
            // In open loop, wake up for the next due chunk even while waiting for an answer.
            let next_due = if tx.is_some() && in_flight.len() < window {
                self.intended(k)
            } else {
                None
            };
            let message = match next_due {
                Some(t) => match tokio::time::timeout_at(t, inbound.message()).await {
                    Ok(m) => m,
                    Err(_) => continue,
                },
                None => inbound.message().await,
            };
            let done = Instant::now();
            match message {
                Ok(Some(bytes)) => {
                    in_flight.pop_front();
                    self.answered(result, index, from, done, Ok(bytes));
                }
                Ok(None) => {
                    if !in_flight.is_empty() {
                        let n = in_flight.len();
                        self.answered(
                            result,
                            index,
                            from,
                            done,
                            Err(Status::unavailable(format!("stream ended with {n} chunks unanswered"))),
                        );
                    }
                    break;
                }
                Err(status) => {
                    // A failed stream is over; the rest of this worker's schedule is lost.
                    self.answered(result, index, from, done, Err(status));
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_at_overrides_the_scoring_time_only() {
        let objects: Vec<v1::ObjectRecord> = records::generate(3, 2, records::DEFAULT_AT)
            .iter()
            .map(record_to_pb)
            .collect();
        let unary = v1::ScoreRequest {
            objects: objects.clone(),
            at_unix: Some(records::DEFAULT_AT),
        };
        let back = v1::ScoreRequest::decode(with_at(&unary.encode_to_vec(), records::DEFAULT_AT + 7)).expect("decodes");
        assert_eq!(back.at_unix, Some(records::DEFAULT_AT + 7));
        assert_eq!(back.objects, objects);
        let stream = v1::ScoreStreamRequest { objects, at_unix: None };
        let back = v1::ScoreStreamRequest::decode(with_at(&stream.encode_to_vec(), 42)).expect("decodes");
        assert_eq!((back.at_unix, back.objects.len()), (Some(42), 2));
    }
}
