//! S3 server access log text: a generator and a parse-throughput measurement (not a criterion bench).
//!
//! ```text
//! cargo bench --workspace --bench s3_log -- gen EVENTS.parquet OUT.log [MAX_LINES]
//! cargo bench --workspace --bench s3_log -- parse FILE.log [RUNS]
//! ```
//!
//! `gen` turns the canonical events written by `reprieve synth` into S3 server access log lines in the documented
//! format (bucket owner, bucket, `[time]`, remote IP, requester, request id, operation, URL-encoded key, request
//! URI, status, error code, bytes sent, object size, total and turnaround time, referrer, user agent, version id,
//! host id, signature version, cipher suite, auth type, host header, TLS version, access point ARN, ACL flag).
//! Every event becomes a counted `REST.GET.OBJECT` (or `REST.HEAD.OBJECT`, one in ten); in addition about 15% of
//! lines are `REST.PUT.OBJECT` and 3% failed GETs (404), which the reader must parse but not count.
//!
//! `parse` times the product's streaming reader ([`reprieve_batch::for_each_event`], format `s3`: file I/O, line
//! splitting, UTF-8 check, parsing, event construction) over the file `RUNS` times (default 3), then the same
//! parse on the file already in memory (no I/O), and prints MB/s per run, the medians, and one JSON line for
//! scripts.

// This binary's output is its report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use reprieve_batch::formats::s3;
use reprieve_batch::{LogFormat, ReadOptions, for_each_event};
use reprieve_core::AccessEvent;
use reprieve_core::time::civil_from_days;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn clf_time(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
    let s = ts.rem_euclid(86_400);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m as usize).clamp(1, 12) - 1],
        s / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

/// S3 URL-encodes keys in the key field; `/` stays.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A small deterministic generator (xorshift64*), so the file is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn write_line(w: &mut impl Write, rng: &mut Rng, e: &AccessEvent, op: &str, status: u16) -> std::io::Result<()> {
    let bucket = if e.tenant.is_empty() {
        "bench-bucket"
    } else {
        e.tenant.as_str()
    };
    let size = if status == 404 { 0 } else { e.size.unwrap_or(0) };
    let ts = e.ts;
    let enc = encode_key(&e.key);
    let method = match op {
        "REST.PUT.OBJECT" => "PUT",
        "REST.HEAD.OBJECT" => "HEAD",
        _ => "GET",
    };
    let (error, sent) = if status == 404 {
        ("NoSuchKey", "243".to_owned())
    } else if method == "GET" {
        ("-", size.to_string())
    } else {
        ("-", "-".to_owned())
    };
    let request_id = format!("{:016X}", rng.next());
    let host_id = format!("{:016x}{:016x}{:016x}=", rng.next(), rng.next(), rng.next());
    let ip = format!("192.0.2.{}", rng.below(254) + 1);
    let total = rng.below(200) + 5;
    let turnaround = total / 2 + 1;
    writeln!(
        w,
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be {bucket} [{}] {ip} \
         arn:aws:iam::123456789012:user/svc-{} {request_id} {op} {enc} \"{method} /{bucket}/{enc} HTTP/1.1\" \
         {status} {error} {sent} {size} {total} {turnaround} \"-\" \"aws-sdk-java/1.12.500 Linux/5.10\" - \
         {host_id} SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader {bucket}.s3.us-east-1.amazonaws.com TLSv1.2 - -",
        clf_time(ts),
        rng.below(16),
    )
}

fn generate(events: &Path, out: &Path, max_lines: u64) -> Result<(), String> {
    let file = File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut lines = 0u64;
    let mut counted = 0u64;
    let mut failed: Option<std::io::Error> = None;
    let options = ReadOptions {
        format: LogFormat::EventsParquet,
        ..ReadOptions::default()
    };
    let t0 = Instant::now();
    let mut emit = |e: AccessEvent| {
        if failed.is_some() || lines >= max_lines {
            return;
        }
        let mut result = Ok(());
        let roll = rng.below(100);
        if roll < 15 {
            result = write_line(&mut w, &mut rng, &e, "REST.PUT.OBJECT", 200);
            lines += 1;
        } else if roll < 18 {
            result = write_line(&mut w, &mut rng, &e, "REST.GET.OBJECT", 404);
            lines += 1;
        }
        if result.is_ok() && lines < max_lines {
            let op = if rng.below(10) == 0 {
                "REST.HEAD.OBJECT"
            } else {
                "REST.GET.OBJECT"
            };
            result = write_line(&mut w, &mut rng, &e, op, 200);
            lines += 1;
            counted += 1;
        }
        if let Err(err) = result {
            failed = Some(err);
        }
    };
    for_each_event(events, &options, &mut emit).map_err(|e| e.to_string())?;
    if let Some(e) = failed {
        return Err(format!("{}: {e}", out.display()));
    }
    w.flush().map_err(|e| format!("{}: {e}", out.display()))?;
    let bytes = std::fs::metadata(out).map_err(|e| e.to_string())?.len();
    eprintln!(
        "wrote {} lines ({counted} counted reads), {:.1} MB to {} in {:.1}s",
        lines,
        bytes as f64 / 1e6,
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn parse(path: &Path, runs: usize) -> Result<(), String> {
    let bytes = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len() as f64;
    let options = ReadOptions {
        format: LogFormat::S3,
        ..ReadOptions::default()
    };
    let mut streaming = Vec::new();
    let mut events = 0u64;
    for run in 1..=runs.max(1) {
        let t0 = Instant::now();
        let mut n = 0u64;
        let report = for_each_event(path, &options, |_| n += 1).map_err(|e| e.to_string())?;
        let secs = t0.elapsed().as_secs_f64();
        let mb_s = bytes / 1e6 / secs;
        println!(
            "run {run}: for_each_event {:.1} MB in {secs:.2}s = {mb_s:.0} MB/s ({} lines, {n} events, {} malformed)",
            bytes / 1e6,
            report.lines,
            report.malformed
        );
        events = n;
        streaming.push(mb_s);
    }
    // The parser alone: the file in memory, no I/O.
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ops = s3::DEFAULT_OPERATIONS;
    let mut in_memory = Vec::new();
    for run in 1..=runs.max(1) {
        let t0 = Instant::now();
        let mut n = 0u64;
        for line in text.lines() {
            if let Ok(Some(e)) = s3::parse_line(line, &ops) {
                std::hint::black_box(&e);
                n += 1;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let mb_s = bytes / 1e6 / secs;
        println!("run {run}: parse_line in memory {secs:.2}s = {mb_s:.0} MB/s ({n} events)");
        in_memory.push(mb_s);
    }
    let (m_stream, m_mem) = (median(streaming.clone()), median(in_memory.clone()));
    println!("median: for_each_event {m_stream:.0} MB/s, parse_line in memory {m_mem:.0} MB/s (floor 100 MB/s)");
    println!(
        "{{\"bench\":\"s3_log_parse\",\"file_mb\":{:.1},\"events\":{events},\"streaming_mb_s\":{streaming:?},\"in_memory_mb_s\":{in_memory:?},\"median_streaming_mb_s\":{m_stream:.1},\"median_in_memory_mb_s\":{m_mem:.1}}}",
        bytes / 1e6
    );
    Ok(())
}

const USAGE: &str = "usage: s3_log gen EVENTS.parquet OUT.log [MAX_LINES] | s3_log parse FILE.log [RUNS]";

fn main() {
    // `cargo bench` appends `--bench`; criterion-style flags are not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["gen", events, out, rest @ ..] => {
            let max = rest.first().and_then(|m| m.parse().ok()).unwrap_or(u64::MAX);
            generate(Path::new(events), Path::new(out), max)
        }
        ["parse", file, rest @ ..] => {
            let runs = rest.first().and_then(|r| r.parse().ok()).unwrap_or(3);
            parse(Path::new(file), runs)
        }
        [] => {
            // Plain `cargo bench --workspace` runs every bench target: without arguments there is nothing to do.
            eprintln!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    if let Err(e) = result {
        eprintln!("s3_log: {e}");
        std::process::exit(1);
    }
}
