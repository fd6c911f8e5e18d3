//! `reprieve-loadgen`: drives a `ReuseScorer` gRPC server and prints throughput and latency percentiles.
//!
//! ```text
//! reprieve-loadgen --target http://127.0.0.1:50051 --mode unary --objects-per-request 100 --concurrency 16 --duration 10s
//! reprieve-loadgen --target http://127.0.0.1:50051 --rate 2000 --concurrency 64 --duration 30s --json out.json
//! ```

// The report on stdout is this binary's output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use reprieve_loadgen::records::DEFAULT_AT;
use reprieve_loadgen::run::{Config, Mode, Report, run};

/// Load generator for the Reprieve gRPC API (ReuseScorer.Score and ScoreStream).
#[derive(Debug, Parser)]
#[command(name = "reprieve-loadgen", version)]
struct Args {
    /// Server address, e.g. http://127.0.0.1:50051 (loopback only: this is a local benchmark tool).
    #[arg(long)]
    target: String,
    /// unary (ReuseScorer.Score) or stream (ReuseScorer.ScoreStream, one chunk per request).
    #[arg(long, value_enum, default_value = "unary")]
    mode: Mode,
    /// How long to measure, after the warm-up (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Not recorded: connections warm up, the server's allocator settles.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: requests (stream chunks) per second over all workers. Absent: closed loop (max throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// Objects per request (or per stream chunk).
    #[arg(long, default_value_t = 1)]
    objects_per_request: usize,
    /// Concurrent workers: requests in flight in closed loop, open streams in stream mode.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// HTTP/2 connections the workers share (default: one per worker, at most 16).
    #[arg(long)]
    connections: Option<usize>,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scoring time sent with every request (Unix seconds); histories are generated before it.
    #[arg(long, default_value_t = DEFAULT_AT)]
    at: i64,
    /// Distinct pre-built requests to cycle through.
    #[arg(long, default_value_t = 64)]
    distinct_requests: usize,
    /// Per-request deadline (unary).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Decode and check the verdict count of every n-th response of each worker (0: none).
    #[arg(long, default_value_t = 100)]
    check_every: u64,
    /// Stream mode: chunks in flight per stream (sent ahead of their answers).
    #[arg(long, default_value_t = 4)]
    stream_window: usize,
    /// Send every request with its own scoring time (`--at` plus a count), so that every verdict is new and
    /// the server's audit trail writes each one; without it the requests repeat and so do their verdicts, which
    /// the audit trail records once (the rest are duplicates it only looks up).
    #[arg(long)]
    fresh_verdicts: bool,
    /// Also write the report as JSON to this file (`-`: stdout instead of the text report).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1_000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3_600.0,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("{text:?}: must be a non-negative duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn print_text(r: &Report) {
    let c = &r.config;
    let lat = &r.latency;
    let loop_kind = c
        .rate
        .map_or("closed loop".to_owned(), |rate| format!("open loop at {rate} req/s"));
    println!(
        "target {}  mode {:?}  {}  objects/request {}  concurrency {}  connections {}  duration {:.1}s",
        c.target, c.mode, loop_kind, c.objects_per_request, c.concurrency, c.connections, r.measured_secs
    );
    println!(
        "requests ok {}  failed {}  throughput {:.0} req/s  {:.0} objects/s  (request {:.0} B, responses {:.1} MB/s)",
        r.requests_ok,
        r.requests_failed,
        r.requests_per_sec,
        r.objects_per_sec,
        r.request_bytes,
        r.response_bytes_per_sec / 1e6
    );
    println!(
        "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p999 {:.3}  max {:.3}  mean {:.3}",
        lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.p999_ms, lat.max_ms, lat.mean_ms
    );
    for e in &r.first_errors {
        println!("error: {e}");
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config {
        target: args.target,
        mode: args.mode,
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        objects_per_request: args.objects_per_request.max(1),
        concurrency: args.concurrency,
        connections: args.connections.unwrap_or(args.concurrency.min(16)).max(1),
        seed: args.seed,
        at: args.at,
        distinct_requests: args.distinct_requests,
        timeout: args.timeout,
        check_every: args.check_every,
        stream_window: args.stream_window,
        fresh_verdicts: args.fresh_verdicts,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = runtime.block_on(run(config))?;
    let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            print_text(&report);
            std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
        }
        None => print_text(&report),
    }
    if report.requests_ok == 0 {
        anyhow::bail!("no request succeeded");
    }
    Ok(())
}
