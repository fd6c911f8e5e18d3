//! Action and restore reports read from files, for `reprieve feedback actions|restores --file F`.
//!
//! Two formats, chosen by extension (`.csv`; `.jsonl`, `.ndjson`, `.json`) or, for any other name, by the first
//! non-blank line (`{` starts JSON Lines):
//!
//! - **CSV**: a header row naming the columns (any order, any case; unknown columns are ignored), RFC 4180
//!   quoting on one line per record.
//! - **JSON Lines**: one object per line with the same field names; times may be numbers or strings, `null` is
//!   absent.
//!
//! | field | actions | restores | value |
//! |---|---|---|---|
//! | `event_id` | required | required | the idempotency key: an id already stored is a duplicate, nothing changes |
//! | `tenant` | optional | optional | tenant / bucket; absent or empty: the default tenant |
//! | `key` | required | required | object key (kept exactly, not trimmed) |
//! | `verdict_id` | required | - | the verdict acted on (as in the scores file or the gRPC answer) |
//! | `action` (or `kind`) | required | - | `archived`, `soft_deleted`, `hard_deleted` or `ignored` (any case, `-` for `_`) |
//! | `at` | required | required | when it was done: Unix seconds or RFC 3339 |
//! | `requested_at` | - | optional | when the need for the object arose (failed read, ticket); not after `at` |
//!
//! Blank lines are skipped. A row that does not parse is a [`BadRow`] with its 1-based line number; the others are
//! kept. Nothing here panics on any input.

use std::borrow::Cow;
use std::path::Path;

use reprieve_batch::formats::fields::csv_fields;
use reprieve_core::UnixSeconds;
use reprieve_core::time::parse_time;
use reprieve_store::{ActionEvent, ActionKind, RestoreEvent};

/// The format of an events file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// Chosen by extension, else by the first non-blank line.
    Auto,
    Csv,
    Jsonl,
}

impl FileFormat {
    /// The format to read `bytes` (from `path`) as; never `Auto`.
    pub fn resolve(self, path: &Path, bytes: &[u8]) -> FileFormat {
        if self != FileFormat::Auto {
            return self;
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => FileFormat::Csv,
            Some("jsonl" | "ndjson" | "json") => FileFormat::Jsonl,
            _ => {
                let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
                if first == Some(b'{') {
                    FileFormat::Jsonl
                } else {
                    FileFormat::Csv
                }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Auto => "auto",
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
        }
    }
}

/// A row that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRow {
    /// 1-based line number in the file.
    pub line: usize,
    pub reason: String,
}

/// The rows of a file: the events that parsed, and the bad rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub events: Vec<T>,
    pub bad: Vec<BadRow>,
    /// Data rows seen (not counting the header, blank and comment lines).
    pub rows: usize,
}

/// Why a whole file is unusable (as opposed to one bad row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(String);

/// Which event a file holds: its required fields and how a row becomes one.
trait Event: Sized {
    const REQUIRED: &'static [&'static str];
    fn from_row(row: &dyn Row) -> Result<Self, String>;
}

/// One record's fields by (lower-case) name: `Ok(None)` when absent, `Err` when present but not a scalar.
trait Row {
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String>;
}

struct CsvRow<'a> {
    header: &'a [String],
    fields: Vec<Cow<'a, str>>,
}

impl Row for CsvRow<'_> {
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String> {
        let Some(i) = self.header.iter().position(|h| h == name) else {
            return Ok(None);
        };
        Ok(self.fields.get(i).map(|f| Cow::Borrowed(f.as_ref())))
    }
}

struct JsonRow(serde_json::Map<String, serde_json::Value>);

impl Row for JsonRow {
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String> {
        let Some((_, v)) = self.0.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(name)) else {
            return Ok(None);
        };
        match v {
            serde_json::Value::String(s) => Ok(Some(Cow::Borrowed(s.as_str()))),
            serde_json::Value::Number(n) => Ok(Some(Cow::Owned(n.to_string()))),
            serde_json::Value::Null => Ok(None),
            _ => Err(format!("{name} is not a string or number")),
        }
    }
}

/// A present, non-blank field (trimmed unless it is the key).
fn field<'r>(row: &'r dyn Row, name: &str) -> Result<Option<Cow<'r, str>>, String> {
    let Some(v) = row.get(name)? else {
        return Ok(None);
    };
    if v.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(if name == "key" {
        v
    } else {
        match v {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
        }
    }))
}

fn required(row: &dyn Row, name: &str) -> Result<String, String> {
    let v = field(row, name)?.ok_or_else(|| format!("{name} is missing or empty"))?;
    Ok(v.into_owned())
}

fn optional(row: &dyn Row, name: &str) -> Result<String, String> {
    Ok(field(row, name)?.map(Cow::into_owned).unwrap_or_default())
}

fn time(row: &dyn Row, name: &str) -> Result<Option<UnixSeconds>, String> {
    match field(row, name)? {
        None => Ok(None),
        Some(v) => parse_time(&v).map(Some).map_err(|_| {
            format!(
                "{name} {:?} is neither Unix seconds nor an RFC 3339 time",
                v.chars().take(60).collect::<String>()
            )
        }),
    }
}

/// Parses an action kind: `archived`, `soft_deleted`, `hard_deleted`, `ignored` (any case, `-` or space for `_`).
pub fn parse_action_kind(text: &str) -> Option<ActionKind> {
    let norm: String = text
        .trim()
        .chars()
        .map(|c| {
            if c == '-' || c == ' ' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    match norm.as_str() {
        "archived" => Some(ActionKind::Archived),
        "soft_deleted" => Some(ActionKind::SoftDeleted),
        "hard_deleted" => Some(ActionKind::HardDeleted),
        "ignored" => Some(ActionKind::Ignored),
        _ => None,
    }
}

impl Event for ActionEvent {
    const REQUIRED: &'static [&'static str] = &["event_id", "key", "verdict_id", "action", "at"];

    fn from_row(row: &dyn Row) -> Result<Self, String> {
        let event_id = required(row, "event_id")?;
        let key = required(row, "key")?;
        let verdict_id = required(row, "verdict_id")?;
        let kind_text = match field(row, "action")? {
            Some(k) => k,
            None => field(row, "kind")?.ok_or("action is missing or empty")?,
        };
        let kind = parse_action_kind(&kind_text).ok_or_else(|| {
            format!(
                "action {:?} is not one of archived, soft_deleted, hard_deleted, ignored",
                kind_text.chars().take(40).collect::<String>()
            )
        })?;
        let at = time(row, "at")?.ok_or("at is missing or empty")?;
        Ok(ActionEvent {
            event_id,
            verdict_id,
            tenant: optional(row, "tenant")?,
            key,
            kind,
            at,
        })
    }
}

impl Event for RestoreEvent {
    const REQUIRED: &'static [&'static str] = &["event_id", "key", "at"];

    fn from_row(row: &dyn Row) -> Result<Self, String> {
        let event_id = required(row, "event_id")?;
        let key = required(row, "key")?;
        let at = time(row, "at")?.ok_or("at is missing or empty")?;
        let requested_at = time(row, "requested_at")?;
        if requested_at.is_some_and(|r| r > at) {
            return Err("requested_at is after at (the restore)".into());
        }
        Ok(RestoreEvent {
            event_id,
            tenant: optional(row, "tenant")?,
            key,
            at,
            requested_at,
        })
    }
}

/// Parses an actions file.
pub fn parse_actions(bytes: &[u8], format: FileFormat) -> Result<Parsed<ActionEvent>, FileError> {
    parse(bytes, format)
}

/// Parses a restores file.
pub fn parse_restores(bytes: &[u8], format: FileFormat) -> Result<Parsed<RestoreEvent>, FileError> {
    parse(bytes, format)
}

/// Lines with their 1-based numbers, without blank and `#` comment lines; `Err` for a line that is not UTF-8.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, Result<&str, ()>)> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .map(|(n, l)| (n, std::str::from_utf8(l).map_err(|_| ())))
        .map(|(n, l)| (n, l.map(|s| if n == 1 { s.trim_start_matches('\u{feff}') } else { s })))
        .filter(|(_, l)| l.as_ref().map_or(true, |s| !s.trim().is_empty()))
}

fn parse<T: Event>(bytes: &[u8], format: FileFormat) -> Result<Parsed<T>, FileError> {
    let mut out = Parsed {
        events: Vec::new(),
        bad: Vec::new(),
        rows: 0,
    };
    let mut lines = lines(bytes);
    let header: Option<Vec<String>> = match format {
        FileFormat::Jsonl => None,
        FileFormat::Csv | FileFormat::Auto => {
            let Some((n, line)) = lines.next() else {
                return Ok(out);
            };
            let line = line.map_err(|()| FileError(format!("line {n}: the header is not UTF-8")))?;
            let header: Vec<String> = csv_fields(line)
                .map(|f| f.map(|f| f.trim().to_ascii_lowercase()))
                .collect::<Result<_, _>>()
                .map_err(|e| FileError(format!("line {n}: the header row: {e}")))?;
            let missing: Vec<&str> = T::REQUIRED
                .iter()
                .filter(|c| !header.iter().any(|h| h == *c || (**c == "action" && h == "kind")))
                .copied()
                .collect();
            if !missing.is_empty() {
                return Err(FileError(format!(
                    "line {n}: the header row lacks {} (a CSV file starts with a header naming its columns: {})",
                    missing.join(", "),
                    T::REQUIRED.join(", ")
                )));
            }
            Some(header)
        }
    };
    for (n, line) in lines {
        out.rows += 1;
        let parsed = match line {
            Err(()) => Err("the line is not UTF-8".to_string()),
            Ok(line) => match &header {
                Some(header) => csv_row::<T>(header, line),
                None => json_row::<T>(line),
            },
        };
        match parsed {
            Ok(e) => out.events.push(e),
            Err(reason) => out.bad.push(BadRow { line: n, reason }),
        }
    }
    Ok(out)
}

fn csv_row<T: Event>(header: &[String], line: &str) -> Result<T, String> {
    let fields: Vec<Cow<'_, str>> = csv_fields(line).collect::<Result<_, _>>().map_err(str::to_string)?;
    if fields.len() != header.len() {
        return Err(format!("{} fields, the header has {}", fields.len(), header.len()));
    }
    T::from_row(&CsvRow { header, fields })
}

fn json_row<T: Event>(line: &str) -> Result<T, String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) => T::from_row(&JsonRow(map)),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn csv_with_any_column_order_quoting_and_bad_rows() {
        let text = "\u{feff}At,Event_ID,key,verdict_id,Action,tenant,extra\n\
                    1700000000,a1,img/a.png,v1,soft_deleted,acme,x\n\
                    \n\
                    2023-11-14T22:13:21Z,a2,\"img/b, c.png\",v2,Hard-Deleted,,\n\
                    1700000000,a3,img/c.png,v3,shredded,acme,x\n\
                    1700000000,,img/d.png,v4,archived,acme,x\n\
                    yesterday,a5,img/e.png,v5,archived,acme,x\n\
                    1700000000,a6,img/f.png,v6,archived\n";
        let p = parse_actions(text.as_bytes(), FileFormat::Csv).expect("parses");
        assert_eq!(p.rows, 6);
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[0].kind, ActionKind::SoftDeleted);
        assert_eq!(p.events[0].tenant, "acme");
        assert_eq!(p.events[1].key, "img/b, c.png");
        assert_eq!(p.events[1].tenant, "");
        assert_eq!(p.events[1].kind, ActionKind::HardDeleted);
        assert_eq!(p.events[1].at, 1_700_000_001);
        let lines: Vec<usize> = p.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![5, 6, 7, 8]);
        assert!(p.bad[0].reason.contains("shredded"), "{:?}", p.bad[0]);
        assert!(p.bad[1].reason.contains("event_id"), "{:?}", p.bad[1]);
        assert!(p.bad[2].reason.contains("yesterday"), "{:?}", p.bad[2]);
        assert!(p.bad[3].reason.contains("5 fields"), "{:?}", p.bad[3]);
    }

    #[test]
    fn a_header_without_required_columns_refuses_the_file() {
        let e = parse_actions(b"event_id,key,at\n1,k,5\n", FileFormat::Csv).expect_err("refused");
        assert!(e.to_string().contains("verdict_id, action"), "{e}");
        // Without a header the first data row is taken as one, and refused.
        assert!(parse_restores(b"r1,acme,k,5\n", FileFormat::Csv).is_err());
    }

    #[test]
    fn json_lines_with_numbers_strings_and_nulls() {
        let text = br#"{"event_id":"r1","tenant":"acme","key":"img/a.png","at":1700000100,"requested_at":null}
{"event_id":"r2","key":"img/b.png","at":"2023-11-14T22:15:00Z","requested_at":1700000000}
not json
[1,2]
{"event_id":"r4","key":"img/c.png","at":100,"requested_at":200}
{"event_id":{"nested":1},"key":"img/c.png","at":100}
"#;
        let p = parse_restores(text, FileFormat::Jsonl).expect("parses");
        assert_eq!(p.rows, 6);
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[0].requested_at, None);
        assert_eq!(p.events[1].requested_at, Some(1_700_000_000));
        assert_eq!(p.events[1].tenant, "");
        let lines: Vec<usize> = p.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(p.bad[2].reason.contains("requested_at is after"), "{:?}", p.bad[2]);
    }

    #[test]
    fn format_by_extension_then_content() {
        let p = Path::new;
        assert_eq!(FileFormat::Auto.resolve(p("a.CSV"), b"{"), FileFormat::Csv);
        assert_eq!(FileFormat::Auto.resolve(p("a.ndjson"), b"x"), FileFormat::Jsonl);
        assert_eq!(
            FileFormat::Auto.resolve(p("a.txt"), b"  \n{\"a\":1}"),
            FileFormat::Jsonl
        );
        assert_eq!(FileFormat::Auto.resolve(p("a"), b"event_id,key"), FileFormat::Csv);
        assert_eq!(FileFormat::Csv.resolve(p("a.jsonl"), b"{"), FileFormat::Csv);
    }

    fn csv_quote(s: &str) -> String {
        format!("\"{}\"", s.replace('"', "\"\""))
    }

    fn action_strategy() -> impl Strategy<Value = ActionEvent> {
        let text = "[a-zA-Z0-9_./ ,\"é-]{1,20}";
        (
            "[a-z0-9-]{1,12}",
            "[a-z]{0,6}",
            text,
            "[0-9a-f]{8}",
            prop_oneof![
                Just(ActionKind::Archived),
                Just(ActionKind::SoftDeleted),
                Just(ActionKind::HardDeleted),
                Just(ActionKind::Ignored)
            ],
            -4_000_000_000i64..4_000_000_000,
        )
            .prop_filter("a key must not be blank", |t| !t.2.trim().is_empty())
            .prop_map(|(event_id, tenant, key, verdict_id, kind, at)| ActionEvent {
                event_id,
                verdict_id,
                tenant,
                key,
                kind,
                at,
            })
    }

    fn kind_name(k: ActionKind) -> &'static str {
        match k {
            ActionKind::Archived => "archived",
            ActionKind::SoftDeleted => "soft_deleted",
            ActionKind::HardDeleted => "hard_deleted",
            ActionKind::Ignored => "ignored",
        }
    }

    proptest! {
        #[test]
        fn arbitrary_lines_never_panic(lines in proptest::collection::vec(any::<Vec<u8>>(), 0..8),
                                       header in prop_oneof![Just("event_id,tenant,key,verdict_id,action,at\n"),
                                                             Just("event_id,tenant,key,at,requested_at\n"),
                                                             Just("")]) {
            let mut bytes = header.as_bytes().to_vec();
            for l in &lines {
                bytes.extend_from_slice(l);
                bytes.push(b'\n');
            }
            for format in [FileFormat::Csv, FileFormat::Jsonl, FileFormat::Auto] {
                if let Ok(p) = parse_actions(&bytes, format) {
                    prop_assert_eq!(p.events.len() + p.bad.len(), p.rows);
                }
                if let Ok(p) = parse_restores(&bytes, format) {
                    prop_assert_eq!(p.events.len() + p.bad.len(), p.rows);
                }
            }
        }

        #[test]
        fn arbitrary_text_lines_never_panic(text in "[ -~\t\r\n{}\",:é]{0,300}") {
            let with_header = format!("event_id,key,verdict_id,action,at,requested_at\n{text}");
            for bytes in [text.as_bytes(), with_header.as_bytes()] {
                for format in [FileFormat::Csv, FileFormat::Jsonl] {
                    let _ = parse_actions(bytes, format);
                    let _ = parse_restores(bytes, format);
                }
            }
        }

        #[test]
        fn written_actions_read_back(events in proptest::collection::vec(action_strategy(), 0..10)) {
            let mut csv = String::from("event_id,tenant,key,verdict_id,action,at\n");
            let mut jsonl = String::new();
            for e in &events {
                csv.push_str(&format!("{},{},{},{},{},{}\n", e.event_id, e.tenant, csv_quote(&e.key),
                    e.verdict_id, kind_name(e.kind), e.at));
                jsonl.push_str(&serde_json::json!({"event_id": e.event_id, "tenant": e.tenant, "key": e.key,
                    "verdict_id": e.verdict_id, "action": kind_name(e.kind), "at": e.at}).to_string());
                jsonl.push('\n');
            }
            for (bytes, format) in [(csv.as_bytes(), FileFormat::Csv), (jsonl.as_bytes(), FileFormat::Jsonl)] {
                let p = parse_actions(bytes, format).expect("parses");
                prop_assert!(p.bad.is_empty(), "{:?}", p.bad);
                prop_assert_eq!(&p.events, &events);
            }
        }
    }
}
