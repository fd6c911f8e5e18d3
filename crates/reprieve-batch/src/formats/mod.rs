//! Access-log readers: every supported format normalised into [`AccessEvent`]s, streamed line by line.
//!
//! | format | what counts as a read (`events`) | valid but not counted (`ignored`) |
//! |---|---|---|
//! | [`clf`] Apache/nginx common + combined | `GET`/`HEAD` with 2xx or 304 | other methods, 3xx (but 304)/4xx/5xx, `/` |
//! | [`s3`] S3 server access log | configured operations (default `REST.GET.OBJECT`, `REST.COPY.OBJECT_GET`, `REST.HEAD.OBJECT`) with 2xx/304 and a key | other operations, failures, key `-` |
//! | [`cloudfront`] CloudFront standard log | `GET`/`HEAD` with 2xx or 304 | other methods/statuses, `#` lines |
//! | [`canonical`] events CSV / Parquet | every row | rows whose `op` is a write/delete, the header row |
//!
//! Blank lines and header/comment lines are counted as `ignored`, so `lines = events + ignored + malformed`.
//! Malformed lines are counted and the first five reported, never silently dropped; with `strict` the first one is
//! a [`ReadError::Malformed`] naming the file, the line number and the reason. Gzip input is detected by its magic
//! bytes (`1f 8b`, multi-member supported), Parquet by `PAR1`, never by the file extension.

pub mod canonical;
pub mod clf;
pub mod cloudfront;
pub mod fields;
pub mod ibm_cos;
pub(crate) mod parquet;
pub mod s3;

pub use parquet::BatchPlan;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use reprieve_core::AccessEvent;
use serde::{Deserialize, Serialize};

use crate::error::{LineError, ReadError};

/// Input format of an access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Detect from the Parquet magic or the first non-empty lines.
    #[default]
    Auto,
    /// Apache/nginx Common Log Format or Combined Log Format.
    Clf,
    /// S3 server access log.
    S3,
    /// CloudFront standard log.
    CloudFront,
    /// Canonical events CSV (`ts,key[,size][,tenant][,op]` header).
    EventsCsv,
    /// Canonical events Parquet.
    EventsParquet,
    /// IBM Cloud Object Storage trace (`ms operation object_id [size [range]]`).
    IbmCos,
}

impl LogFormat {
    /// Parses a format name as a command line would give it (`auto`, `clf`, `combined`, `apache`, `nginx`, `s3`,
    /// `cloudfront`, `csv`, `events-csv`, `parquet`, `events-parquet`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Self::Auto,
            "clf" | "common" | "combined" | "apache" | "nginx" => Self::Clf,
            "s3" | "s3-access" | "s3-access-log" => Self::S3,
            "cloudfront" | "cloud-front" => Self::CloudFront,
            "csv" | "events-csv" => Self::EventsCsv,
            "parquet" | "events-parquet" => Self::EventsParquet,
            "ibm-cos" | "ibm" | "ibmcos" => Self::IbmCos,
            _ => return None,
        })
    }
}

/// How to read an access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    pub format: LogFormat,
    /// Fail on the first malformed line instead of counting it.
    pub strict: bool,
    /// S3 operations counted as reads; empty means [`s3::DEFAULT_OPERATIONS`].
    pub s3_operations: Vec<String>,
    /// Tenant of events whose format names none (CLF, CloudFront without a host, CSV without a tenant column).
    pub default_tenant: String,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            strict: false,
            s3_operations: s3::DEFAULT_OPERATIONS.iter().map(|s| (*s).to_owned()).collect(),
            default_tenant: String::new(),
        }
    }
}

/// The format a [`ReadReport`] found: a log format or an inventory format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    #[default]
    Unknown,
    Clf,
    S3,
    CloudFront,
    EventsCsv,
    EventsParquet,
    IbmCos,
    InventoryCsv,
    InventoryParquet,
    S3InventoryCsv,
    S3InventoryParquet,
    /// Container registry notification events (distribution/OCI registry webhook JSON).
    RegistryEvents,
    /// `aws ecr describe-images` JSON output.
    EcrImages,
    /// Kubernetes objects (YAML or JSON, `kubectl get -o json`).
    Kubernetes,
}

impl From<LogFormat> for SourceFormat {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Auto => Self::Unknown,
            LogFormat::Clf => Self::Clf,
            LogFormat::S3 => Self::S3,
            LogFormat::CloudFront => Self::CloudFront,
            LogFormat::EventsCsv => Self::EventsCsv,
            LogFormat::EventsParquet => Self::EventsParquet,
            LogFormat::IbmCos => Self::IbmCos,
        }
    }
}

/// How many malformed lines are quoted in a report.
pub const MAX_REPORTED_MALFORMED: usize = 5;

/// What reading one file found. `lines = events + ignored + malformed` (rows, for Parquet).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadReport {
    pub path: PathBuf,
    pub format_detected: SourceFormat,
    pub lines: u64,
    pub events: u64,
    /// Valid lines that are not counted reads (other operations, failed requests, headers, blank lines).
    pub ignored: u64,
    pub malformed: u64,
    /// The first [`MAX_REPORTED_MALFORMED`] malformed lines: (1-based line number, reason).
    pub first_malformed: Vec<(u64, String)>,
}

impl ReadReport {
    /// An empty report for `path` (readers outside this crate, e.g. the container-image readers, use it too).
    pub fn new(path: &Path, format: impl Into<SourceFormat>) -> Self {
        Self {
            path: path.to_path_buf(),
            format_detected: format.into(),
            ..Self::default()
        }
    }

    /// Counts a malformed line; with `strict`, returns the error that stops the read.
    pub fn malformed(&mut self, line: u64, reason: String, strict: bool) -> Result<(), ReadError> {
        self.malformed += 1;
        if strict {
            return Err(ReadError::Malformed {
                path: self.path.clone(),
                line,
                reason,
            });
        }
        if self.first_malformed.len() < MAX_REPORTED_MALFORMED {
            self.first_malformed.push((line, reason));
        }
        Ok(())
    }

    /// Counts one parsed line: `Ok(Some)` an event, `Ok(None)` ignored, `Err` malformed.
    pub fn record<T>(
        &mut self,
        line: u64,
        result: Result<Option<T>, LineError>,
        strict: bool,
    ) -> Result<Option<T>, ReadError> {
        self.lines += 1;
        match result {
            Ok(Some(v)) => {
                self.events += 1;
                Ok(Some(v))
            }
            Ok(None) => {
                self.ignored += 1;
                Ok(None)
            }
            Err(e) => {
                self.malformed(line, e.reason, strict)?;
                Ok(None)
            }
        }
    }
}

const BUFFER: usize = 256 * 1024;

/// First bytes of a file (fewer if it is shorter).
pub(crate) fn magic(path: &Path) -> Result<[u8; 4], ReadError> {
    let mut file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    let mut buf = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::io(path, e)),
        }
    }
    Ok(buf)
}

pub(crate) fn is_parquet(magic: &[u8; 4]) -> bool {
    magic == b"PAR1"
}

/// Opens a text file, transparently decompressing gzip (detected by magic bytes).
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead>, ReadError> {
    let gz = magic(path)?[..2] == [0x1f, 0x8b];
    let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            BUFFER,
            MultiGzDecoder::new(BufReader::with_capacity(BUFFER, file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(BUFFER, file))
    })
}

/// Calls `f(line_number, line)` for every line (1-based, `\r\n`/`\n` stripped, invalid UTF-8 replaced), reusing
/// one buffer: the file is never held in memory.
pub fn for_each_line(
    path: &Path,
    mut f: impl FnMut(u64, &str) -> Result<std::ops::ControlFlow<()>, ReadError>,
) -> Result<(), ReadError> {
    let mut reader = open_text(path)?;
    let mut buf = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| ReadError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let flow = match std::str::from_utf8(&buf) {
            Ok(line) => f(number, line)?,
            Err(_) => f(number, &String::from_utf8_lossy(&buf))?,
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

const SAMPLE_LINES: usize = 50;

/// Detects the format of a file from its magic bytes and first non-empty lines.
pub fn detect_format(path: &Path, options: &ReadOptions) -> Result<LogFormat, ReadError> {
    if is_parquet(&magic(path)?) {
        return Ok(LogFormat::EventsParquet);
    }
    let mut sample: Vec<String> = Vec::new();
    for_each_line(path, |_, line| {
        if !line.trim().is_empty() {
            sample.push(line.to_owned());
        }
        Ok(if sample.len() >= SAMPLE_LINES {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        })
    })?;
    let Some(first) = sample.first() else {
        return Err(ReadError::format(path, "empty file: cannot detect the log format"));
    };
    if sample
        .iter()
        .any(|l| l.starts_with("#Version:") || l.starts_with("#Fields:"))
    {
        return Ok(LogFormat::CloudFront);
    }
    if canonical::CsvColumns::from_header(first).is_ok() {
        return Ok(LogFormat::EventsCsv);
    }
    let parsed = |p: &dyn Fn(&str) -> bool| sample.iter().filter(|l| p(l)).count();
    let fields = cloudfront::Fields::default();
    let candidates = [
        (
            LogFormat::S3,
            parsed(&|l| s3::parse_line(l, &options.s3_operations).is_ok()),
        ),
        (LogFormat::Clf, parsed(&|l| clf::parse_line(l, "").is_ok())),
        (
            LogFormat::IbmCos,
            parsed(&|l| ibm_cos::parse_line(l, &options.s3_operations, "").is_ok()),
        ),
        (
            LogFormat::CloudFront,
            parsed(&|l| cloudfront::parse_line(l, &fields, "").is_ok()),
        ),
    ];
    match candidates.iter().max_by_key(|(_, n)| *n) {
        Some((format, n)) if *n > 0 => Ok(*format),
        _ => Err(ReadError::format(
            path,
            format!(
                "cannot detect the log format (first line: {:?})",
                first.chars().take(120).collect::<String>()
            ),
        )),
    }
}

/// Streams the events of one file to `f` without buffering the file. This is the primary reader: the batch
/// scorer aggregates very large logs in one pass.
pub fn for_each_event(
    path: &Path,
    options: &ReadOptions,
    mut f: impl FnMut(AccessEvent),
) -> Result<ReadReport, ReadError> {
    let format = match options.format {
        LogFormat::Auto => detect_format(path, options)?,
        other => other,
    };
    let mut report = ReadReport::new(path, format);
    let strict = options.strict;
    let tenant = options.default_tenant.as_str();
    let mut deliver = |report: &mut ReadReport, number: u64, r: Result<Option<AccessEvent>, LineError>| {
        if let Some(e) = report.record(number, r, strict)? {
            f(e);
        }
        Ok::<_, ReadError>(std::ops::ControlFlow::Continue(()))
    };
    match format {
        LogFormat::EventsParquet => {
            canonical::for_each_parquet_row(path, tenant, |n, r| deliver(&mut report, n, r).map(|_| ()))?;
        }
        LogFormat::Clf => for_each_line(path, |n, line| {
            if line.trim().is_empty() {
                return deliver(&mut report, n, Ok(None));
            }
            deliver(&mut report, n, clf::parse_line(line, tenant))
        })?,
        LogFormat::S3 => for_each_line(path, |n, line| {
            if line.trim().is_empty() {
                return deliver(&mut report, n, Ok(None));
            }
            deliver(&mut report, n, s3::parse_line(line, &options.s3_operations))
        })?,
        LogFormat::CloudFront => {
            let mut fields = cloudfront::Fields::default();
            for_each_line(path, |n, line| {
                if line.trim().is_empty() || line.starts_with('#') {
                    if line.starts_with("#Fields:") {
                        match cloudfront::Fields::from_header(line) {
                            Ok(f) => fields = f,
                            Err(e) => return deliver(&mut report, n, Err(e)),
                        }
                    }
                    return deliver(&mut report, n, Ok(None));
                }
                deliver(&mut report, n, cloudfront::parse_line(line, &fields, tenant))
            })?
        }
        LogFormat::EventsCsv => {
            let mut columns: Option<canonical::CsvColumns> = None;
            for_each_line(path, |n, line| {
                if line.trim().is_empty() {
                    return deliver(&mut report, n, Ok(None));
                }
                match &columns {
                    Some(c) => deliver(&mut report, n, canonical::parse_line(line, c, tenant)),
                    None => {
                        let c = canonical::CsvColumns::from_header(line).map_err(|e| ReadError::Malformed {
                            path: path.to_path_buf(),
                            line: n,
                            reason: format!("events CSV header: {e}"),
                        })?;
                        columns = Some(c);
                        deliver(&mut report, n, Ok(None))
                    }
                }
            })?
        }
        LogFormat::IbmCos => for_each_line(path, |n, line| {
            if line.trim().is_empty() {
                return deliver(&mut report, n, Ok(None));
            }
            deliver(
                &mut report,
                n,
                ibm_cos::parse_line(line, &options.s3_operations, tenant),
            )
        })?,
        LogFormat::Auto => unreachable!("detected above"),
    }
    tracing::debug!(
        path = %path.display(),
        format = ?format,
        lines = report.lines,
        events = report.events,
        malformed = report.malformed,
        "read access log"
    );
    Ok(report)
}

/// Reads all events of one file into memory. Prefer [`for_each_event`] for large inputs.
pub fn read_events(path: &Path, options: &ReadOptions) -> Result<(Vec<AccessEvent>, ReadReport), ReadError> {
    let mut events = Vec::new();
    let report = for_each_event(path, options, |e| events.push(e))?;
    Ok((events, report))
}
