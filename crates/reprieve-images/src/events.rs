//! Registry notification events, as the distribution (CNCF Distribution / Docker) registry sends them to its
//! notification endpoints: a JSON envelope `{"events": [...]}` whose events carry `action` (`push`, `pull`,
//! `delete`), `timestamp` (RFC 3339) and a `target` with `mediaType`, `digest`, `repository`, `tag`, `url` and,
//! in newer registries, `references` (the child manifests of an image index).
//!
//! A file holds either one envelope (or event, or an array of them) per line, as a webhook receiver appends them
//! (JSON Lines; gzip is detected), or one pretty-printed JSON document. Only manifest events matter: layer and
//! config blob events are valid but `ignored`, as are actions other than the three above (`mount`). A line that
//! is not JSON, or an event without a timestamp, repository or valid digest, is `malformed` (counted, the first
//! five quoted, fatal with `strict`). `events` counts manifest events; in JSON Lines `line` is the line number,
//! in a pretty-printed document the document's number.

use std::borrow::Cow;
use std::path::Path;

use std::io::BufRead;

use reprieve_batch::formats::{ReadReport, SourceFormat, for_each_line, open_text};
use reprieve_batch::{LineError, ReadError};
use reprieve_core::UnixSeconds;
use reprieve_core::time::parse_rfc3339;
use serde::Deserialize;

use crate::error::io_error;
use crate::reference::normalize_digest;

/// What happened to a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Push,
    Pull,
    Delete,
}

/// One manifest event, borrowed from the line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent<'a> {
    pub action: Action,
    pub ts: UnixSeconds,
    pub repository: Cow<'a, str>,
    /// Normalised digest; `None` for a pull or delete by tag only.
    pub digest: Option<Cow<'a, str>>,
    pub tag: Option<Cow<'a, str>>,
    pub media_type: Option<Cow<'a, str>>,
    /// Child manifests of an image index (digest, media type), when the registry lists them.
    pub references: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
}

/// Whether a media type is an image index (multi-arch manifest list).
pub fn is_index_media_type(media_type: &str) -> bool {
    contains_lowercase(media_type, "image.index") || contains_lowercase(media_type, "manifest.list")
}

fn is_manifest_media_type(media_type: &str) -> bool {
    contains_lowercase(media_type, "manifest") || is_index_media_type(media_type)
}

/// Whether `text` contains the lowercase ASCII `needle` in any case, without allocating.
fn contains_lowercase(text: &str, needle: &str) -> bool {
    let (t, n) = (text.as_bytes(), needle.as_bytes());
    t.len() >= n.len() && t.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A JSON string, borrowed from the line when it holds no escape. (serde's own `Cow<str>` always copies, and
/// `#[serde(borrow)]` does not reach inside an `Option`: that was an allocation per field of every event.)
#[derive(Debug, Clone, PartialEq, Eq)]
struct Text<'a>(Cow<'a, str>);

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

fn cow(t: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    t.map(|t| t.0)
}

/// An envelope (`events`) or a single event (the other fields).
#[derive(Debug, Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<RawEvent<'a>>>,
    #[serde(borrow, default)]
    action: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Text<'a>>,
    #[serde(borrow, default)]
    target: Option<RawTarget<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    action: Option<Text<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Text<'a>>,
    #[serde(borrow, default)]
    target: Option<RawTarget<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTarget<'a> {
    #[serde(borrow, default)]
    media_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    digest: Option<Text<'a>>,
    #[serde(borrow, default)]
    repository: Option<Text<'a>>,
    #[serde(borrow, default)]
    tag: Option<Text<'a>>,
    #[serde(borrow, default)]
    url: Option<Text<'a>>,
    #[serde(borrow, default)]
    references: Vec<RawDescriptor<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor<'a> {
    #[serde(borrow, default)]
    media_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    digest: Option<Text<'a>>,
}

/// Whether a digest is already in normal form (`sha256:` and 64 lowercase hex digits), checked without allocating.
fn is_normal_sha256(d: &str) -> bool {
    d.len() == 71
        && d.starts_with("sha256:")
        && d.as_bytes()[7..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Checks a digest, borrowing it when it is already normal (the usual case: no allocation per event).
pub(crate) fn checked_digest(d: Cow<'_, str>) -> Result<Cow<'_, str>, String> {
    if is_normal_sha256(&d) {
        return Ok(d);
    }
    let normal = normalize_digest(&d)?;
    Ok(if normal == *d { d } else { Cow::Owned(normal) })
}

/// Parses a registry timestamp (RFC 3339 with nanoseconds, as Go writes it).
pub fn parse_timestamp(text: &str) -> Option<UnixSeconds> {
    // The core parser slices by byte offsets: keep non-ASCII text away from it.
    if !text.is_ascii() {
        return None;
    }
    parse_rfc3339(text)
}

fn non_empty(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| !s.trim().is_empty())
}

/// Validates one raw event: `Ok(None)` for valid events that are not manifest events.
fn convert(raw: RawEvent<'_>) -> Result<Option<RegistryEvent<'_>>, LineError> {
    let action = match raw.action.as_ref().map(|a| a.0.trim()) {
        Some("push") => Action::Push,
        Some("pull") => Action::Pull,
        Some("delete") => Action::Delete,
        Some(a) if !a.is_empty() => return Ok(None),
        _ => return Err(LineError::new("event without an action")),
    };
    let timestamp = cow(raw.timestamp);
    let ts = timestamp.as_deref().and_then(parse_timestamp).ok_or_else(|| {
        LineError::new(format!(
            "event timestamp {:?} is not RFC 3339",
            timestamp.as_deref().unwrap_or("")
        ))
    })?;
    let target = raw.target.ok_or_else(|| LineError::new("event without a target"))?;
    let media_type = non_empty(cow(target.media_type));
    let tag = non_empty(cow(target.tag));
    let is_manifest = match &media_type {
        Some(m) => is_manifest_media_type(m),
        None => tag.is_some() || cow(target.url).as_deref().is_none_or(|u| !u.contains("/blobs/")),
    };
    if !is_manifest {
        return Ok(None);
    }
    let repository =
        non_empty(cow(target.repository)).ok_or_else(|| LineError::new("event without target.repository"))?;
    if repository.len() > 1024
        || repository
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(LineError::new(format!(
            "bad repository {:?}",
            repository.chars().take(120).collect::<String>()
        )));
    }
    let digest = non_empty(cow(target.digest))
        .map(checked_digest)
        .transpose()
        .map_err(LineError::new)?;
    if digest.is_none() && (action == Action::Push || tag.is_none()) {
        return Err(LineError::new(format!("{action:?} event without target.digest")));
    }
    let mut references = Vec::with_capacity(target.references.len());
    for r in target.references {
        if let Some(d) = non_empty(cow(r.digest)) {
            references.push((checked_digest(d).map_err(LineError::new)?, non_empty(cow(r.media_type))));
        }
    }
    Ok(Some(RegistryEvent {
        action,
        ts,
        repository,
        digest,
        tag,
        media_type,
        references,
    }))
}

fn deliver_raw(
    raw: RawLine<'_>,
    number: u64,
    report: &mut ReadReport,
    strict: bool,
    f: &mut impl FnMut(RegistryEvent<'_>),
) -> Result<(), ReadError> {
    match raw.events {
        Some(events) => {
            if events.is_empty() {
                report.record::<()>(number, Ok(None), strict)?;
            }
            for e in events {
                if let Some(e) = report.record(number, convert(e), strict)? {
                    f(e);
                }
            }
            Ok(())
        }
        None => {
            let event = RawEvent {
                action: raw.action,
                timestamp: raw.timestamp,
                target: raw.target,
            };
            if let Some(e) = report.record(number, convert(event), strict)? {
                f(e);
            }
            Ok(())
        }
    }
}

/// Streams the manifest events of one file to `f`.
pub fn read_registry_events(
    path: &Path,
    strict: bool,
    mut f: impl FnMut(RegistryEvent<'_>),
) -> Result<ReadReport, ReadError> {
    let mut report = ReadReport::new(path, SourceFormat::RegistryEvents);
    // A pretty-printed document starts with a line that is only `{` or `[`.
    let mut pretty = false;
    for_each_line(path, |_, line| {
        let t = line.trim();
        if t.is_empty() {
            return Ok(std::ops::ControlFlow::Continue(()));
        }
        pretty = t == "{" || t == "[";
        Ok(std::ops::ControlFlow::Break(()))
    })?;
    if pretty {
        read_document(path, strict, &mut report, &mut f)?;
    } else {
        read_lines(path, strict, &mut report, &mut f)?;
    }
    Ok(report)
}

impl RegistryEvent<'_> {
    /// The same event, owning its strings.
    pub fn into_owned(self) -> RegistryEvent<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        RegistryEvent {
            action: self.action,
            ts: self.ts,
            repository: own(self.repository),
            digest: self.digest.map(own),
            tag: self.tag.map(own),
            media_type: self.media_type.map(own),
            references: self.references.into_iter().map(|(d, m)| (own(d), m.map(own))).collect(),
        }
    }
}

/// Bytes of whole lines parsed per step, split between the threads.
const BLOCK_BYTES: usize = 16 << 20;

/// Most threads that parse lines.
const MAX_THREADS: usize = 8;

/// What a line held, parsed off the folding thread.
enum Parsed<'a> {
    /// A blank line, or an envelope without events: ignored.
    Nothing,
    /// Not JSON, or not an envelope: malformed.
    Bad(String),
    /// One event of the line: a manifest event, ignored (`Ok(None)`) or malformed.
    Event(Result<Option<RegistryEvent<'a>>, LineError>),
}

fn parse_raw<'a>(raw: RawLine<'a>, number: u64, out: &mut Vec<(u64, Parsed<'a>)>) {
    match raw.events {
        Some(events) if events.is_empty() => out.push((number, Parsed::Nothing)),
        Some(events) => out.extend(events.into_iter().map(|e| (number, Parsed::Event(convert(e))))),
        None => {
            let event = RawEvent {
                action: raw.action,
                timestamp: raw.timestamp,
                target: raw.target,
            };
            out.push((number, Parsed::Event(convert(event))));
        }
    }
}

/// Parses whole lines (`text` is not empty and ends at a line end), numbering them from `first`; returns how many
/// there were.
fn parse_lines<'a>(text: &'a [u8], first: u64, out: &mut Vec<(u64, Parsed<'a>)>) -> u64 {
    let mut number = first;
    // About one event per 300 bytes (a pull is 250 to 400): fewer reallocations of a large vector.
    out.reserve(text.len() / 300);
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    for mut line in text.split(|&b| b == b'\n') {
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let parsed_line = match std::str::from_utf8(line) {
            Ok(l) if l.trim().is_empty() => {
                out.push((number, Parsed::Nothing));
                None
            }
            Ok(l) => Some(serde_json::from_str::<RawLine<'a>>(l).map(|raw| parse_raw(raw, number, out))),
            Err(_) => {
                // Invalid UTF-8 is replaced, as the other line readers do; the events then own their text.
                let text = String::from_utf8_lossy(line).into_owned();
                let mut owned = Vec::new();
                let result = serde_json::from_str::<RawLine<'_>>(&text).map(|raw| parse_raw(raw, number, &mut owned));
                out.extend(owned.into_iter().map(|(n, p)| {
                    let p = match p {
                        Parsed::Event(r) => Parsed::Event(r.map(|e| e.map(RegistryEvent::into_owned))),
                        Parsed::Nothing => Parsed::Nothing,
                        Parsed::Bad(b) => Parsed::Bad(b),
                    };
                    (n, p)
                }));
                Some(result)
            }
        };
        if let Some(Err(e)) = parsed_line {
            out.push((number, Parsed::Bad(format!("not a registry event envelope: {e}"))));
        }
        number += 1;
    }
    number - first
}

/// `text` split into at most `parts` pieces that end at line ends.
fn split_at_lines(text: &[u8], parts: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(parts);
    let mut rest = text;
    for i in (1..parts).rev() {
        let target = rest.len() / (i + 1);
        match rest[target..].iter().position(|&b| b == b'\n') {
            Some(p) if target + p + 1 < rest.len() => {
                let (head, tail) = rest.split_at(target + p + 1);
                pieces.push(head);
                rest = tail;
            }
            _ => break,
        }
    }
    pieces.push(rest);
    pieces
}

/// JSON Lines: blocks of whole lines are parsed on several threads (the events borrow the block's text), then
/// counted and handed to `f` in file order on this thread.
fn read_lines(
    path: &Path,
    strict: bool,
    report: &mut ReadReport,
    f: &mut impl FnMut(RegistryEvent<'_>),
) -> Result<(), ReadError> {
    read_blocks(path, strict, report, f, BLOCK_BYTES, 1 << 20)
}

/// [`read_lines`] with blocks of `block_bytes` (longer lines make longer blocks), split between the threads when
/// a block holds at least `parallel_bytes`.
fn read_blocks(
    path: &Path,
    strict: bool,
    report: &mut ReadReport,
    f: &mut impl FnMut(RegistryEvent<'_>),
    block_bytes: usize,
    parallel_bytes: usize,
) -> Result<(), ReadError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    let mut reader = open_text(path)?;
    let mut block: Vec<u8> = Vec::with_capacity(block_bytes + (1 << 16));
    let mut carry: Vec<u8> = Vec::new();
    let mut number = 1u64;
    let mut done = false;
    while !done {
        block.clear();
        // A line longer than a block makes the next block longer.
        let want = carry.len() + block_bytes;
        block.append(&mut carry);
        while block.len() < want {
            let chunk = reader.fill_buf().map_err(|e| io_error(path, e))?;
            if chunk.is_empty() {
                done = true;
                break;
            }
            let n = chunk.len();
            block.extend_from_slice(chunk);
            reader.consume(n);
        }
        if !done {
            // Keep the partial last line for the next block.
            match block.iter().rposition(|&b| b == b'\n') {
                Some(end) => carry.extend_from_slice(&block[end + 1..]),
                None => {
                    carry = std::mem::take(&mut block);
                    continue;
                }
            }
            let end = block.len() - carry.len();
            block.truncate(end);
        } else if block.last().is_some_and(|&b| b != b'\n') {
            block.push(b'\n');
        }
        if block.is_empty() {
            continue;
        }
        let pieces = split_at_lines(&block, if block.len() < parallel_bytes { 1 } else { threads });
        let mut parsed: Vec<(u64, Vec<(u64, Parsed<'_>)>)> = Vec::with_capacity(pieces.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = pieces[1..]
                .iter()
                .map(|&piece| {
                    s.spawn(move || {
                        let mut out = Vec::new();
                        let lines = parse_lines(piece, 0, &mut out);
                        (lines, out)
                    })
                })
                .collect();
            let mut out = Vec::new();
            let lines = parse_lines(pieces[0], 0, &mut out);
            parsed.push((lines, out));
            for h in handles {
                parsed.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
        for (lines, items) in parsed {
            for (n, item) in items {
                let line = number + n;
                match item {
                    Parsed::Nothing => {
                        report.record::<()>(line, Ok(None), strict)?;
                    }
                    Parsed::Bad(reason) => crate::error::bad(report, line, reason, strict)?,
                    Parsed::Event(result) => {
                        if let Some(e) = report.record(line, result, strict)? {
                            f(e);
                        }
                    }
                }
            }
            number += lines;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Document {
    Many(Vec<serde_json::Value>),
    One(serde_json::Value),
}

/// One or more concatenated pretty-printed documents (an envelope, an event, or an array of them).
fn read_document(
    path: &Path,
    strict: bool,
    report: &mut ReadReport,
    f: &mut impl FnMut(RegistryEvent<'_>),
) -> Result<(), ReadError> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut open_text(path)?, &mut text).map_err(|e| io_error(path, e))?;
    let stream = serde_json::Deserializer::from_str(&text).into_iter::<Document>();
    for (i, doc) in stream.enumerate() {
        let number = i as u64 + 1;
        let values = match doc {
            Ok(Document::Many(values)) => values,
            Ok(Document::One(value)) => vec![value],
            Err(e) => {
                // A syntax error cannot be resynchronised: the rest of the file is skipped, and said so.
                return crate::error::bad(report, number, format!("JSON (rest of the file skipped): {e}"), strict);
            }
        };
        for value in &values {
            match RawLine::deserialize(value) {
                Ok(raw) => deliver_raw(raw, number, report, strict, f)?,
                Err(e) => crate::error::bad(report, number, format!("not a registry event envelope: {e}"), strict)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn json_lines_with_blobs_bad_lines_and_tag_only_pulls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let text = format!(
            "{{\"events\":[{{\"id\":\"1\",\"timestamp\":\"2025-01-02T03:04:05.123456789Z\",\"action\":\"push\",\
             \"target\":{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{D}\",\
             \"repository\":\"team/app\",\"tag\":\"1.0\"}}}},\
             {{\"timestamp\":\"2025-01-02T03:04:00Z\",\"action\":\"push\",\"target\":{{\"mediaType\":\
             \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"{D}\",\"repository\":\"team/app\"}}}}]}}\n\
             \n\
             not json\n\
             {{\"timestamp\":\"2025-01-03T00:00:00Z\",\"action\":\"pull\",\"target\":{{\"repository\":\"team/app\",\
             \"tag\":\"1.0\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}}}}\n\
             {{\"events\":[{{\"timestamp\":\"yesterday\",\"action\":\"pull\",\"target\":{{\"repository\":\"x\",\"digest\":\"{D}\"}}}}]}}\n"
        );
        std::fs::write(&path, text).unwrap();
        let mut seen = Vec::new();
        let report = read_registry_events(&path, false, |e| {
            seen.push((e.action, e.ts, e.digest.is_some(), e.tag.map(|t| t.into_owned())));
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], (Action::Push, 1_735_787_045, true, Some("1.0".to_owned())));
        assert_eq!(seen[1].0, Action::Pull);
        assert!(!seen[1].2, "a pull by tag only");
        assert_eq!(
            (report.events, report.ignored, report.malformed),
            (2, 2, 2),
            "{report:?}"
        );
        assert_eq!(report.lines, 6);
        assert_eq!(report.first_malformed[0].0, 3);
        assert!(
            read_registry_events(&path, true, |_| {}).is_err(),
            "strict stops at the first bad line"
        );
    }

    /// What a read saw, comparable across block sizes.
    fn read_all(path: &Path, block: usize, parallel: usize) -> (Vec<String>, ReadReport) {
        let mut seen = Vec::new();
        let mut report = ReadReport::new(path, SourceFormat::RegistryEvents);
        read_blocks(
            path,
            false,
            &mut report,
            &mut |e| seen.push(format!("{e:?}")),
            block,
            parallel,
        )
        .unwrap();
        (seen, report)
    }

    #[test]
    fn blocks_and_threads_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let config = crate::synth::SynthRegistry {
            repositories: 12,
            days: 40,
            ..Default::default()
        };
        crate::synth::write_registry_events(&config, &path).unwrap();
        // Blank, CRLF, garbage, invalid UTF-8, an empty envelope and a last line without a line end.
        let mut text = std::fs::read(&path).unwrap();
        let line = format!(
            "{{\"events\":[{{\"timestamp\":\"2025-01-03T00:00:00Z\",\"action\":\"pull\",\"target\":{{\"repository\":\
             \"a\\u00e9/x\",\"digest\":\"{D}\"}}}}]}}"
        );
        let mut prefix = format!("\n{line}\r\nnot json\n{{\"events\":[]}}\n").into_bytes();
        prefix.extend_from_slice(b"{\"x\":\"\xff\"}\n");
        text.splice(0..0, prefix);
        text.extend_from_slice(b"\n\n");
        text.extend_from_slice(line.replace("pull", "push").as_bytes());
        text.extend_from_slice(&[b'\n', b'{', 0xff, b'}']);
        std::fs::write(&path, &text).unwrap();
        let (whole, report) = read_all(&path, BLOCK_BYTES, usize::MAX);
        assert!(whole.len() > 200, "{}", whole.len());
        assert_eq!(report.malformed, 3, "{report:?}");
        assert!(
            whole[0].contains("a\\u{e9}/x") || whole[0].contains("aé/x"),
            "{}",
            whole[0]
        );
        for (block, parallel) in [(64, 0), (4_096, 0), (1 << 16, 1), (1 << 20, 0), (7, usize::MAX)] {
            let (seen, r) = read_all(&path, block, parallel);
            assert_eq!(r, report, "block {block}");
            assert!(seen == whole, "block {block}: the events differ");
        }
        assert_eq!(report.lines, report.events + report.ignored + report.malformed);
    }

    #[test]
    fn pretty_printed_envelope_with_index_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let child = D.replace('1', "2");
        let text = format!(
            "{{\n  \"events\": [\n    {{\n      \"action\": \"push\",\n      \"timestamp\": \"2025-01-02T00:00:00Z\",\n      \
             \"target\": {{\"mediaType\": \"application/vnd.oci.image.index.v1+json\", \"digest\": \"{D}\",\n        \
             \"repository\": \"team/app\", \"tag\": \"latest\",\n        \"references\": [{{\"mediaType\": \
             \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"{child}\"}}]}}\n    }}\n  ]\n}}\n"
        );
        std::fs::write(&path, text).unwrap();
        let mut refs = Vec::new();
        let report = read_registry_events(&path, false, |e| {
            assert!(is_index_media_type(e.media_type.as_deref().unwrap_or("")));
            refs.extend(e.references.iter().map(|(d, _)| d.to_string()));
        })
        .unwrap();
        assert_eq!(report.events, 1, "{report:?}");
        assert_eq!(refs, vec![child]);
    }
}
