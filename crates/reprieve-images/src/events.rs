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
    let m = media_type.to_ascii_lowercase();
    m.contains("image.index") || m.contains("manifest.list")
}

fn is_manifest_media_type(media_type: &str) -> bool {
    let m = media_type.to_ascii_lowercase();
    is_index_media_type(&m) || m.contains("manifest")
}

/// An envelope (`events`) or a single event (the other fields).
#[derive(Debug, Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<RawEvent<'a>>>,
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<RawTarget<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<RawTarget<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTarget<'a> {
    #[serde(borrow, default)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    digest: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    repository: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tag: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    references: Vec<RawDescriptor<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor<'a> {
    #[serde(borrow, default)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    digest: Option<Cow<'a, str>>,
}

/// Checks a digest, borrowing it when it is already normal (the usual case: no allocation per event).
fn digest<'a>(d: Cow<'a, str>) -> Result<Cow<'a, str>, String> {
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
    let action = match raw.action.as_deref().map(str::trim) {
        Some("push") => Action::Push,
        Some("pull") => Action::Pull,
        Some("delete") => Action::Delete,
        Some(a) if !a.is_empty() => return Ok(None),
        _ => return Err(LineError::new("event without an action")),
    };
    let ts = raw.timestamp.as_deref().and_then(parse_timestamp).ok_or_else(|| {
        LineError::new(format!(
            "event timestamp {:?} is not RFC 3339",
            raw.timestamp.as_deref().unwrap_or("")
        ))
    })?;
    let target = raw.target.ok_or_else(|| LineError::new("event without a target"))?;
    let media_type = non_empty(target.media_type);
    let tag = non_empty(target.tag);
    let is_manifest = match &media_type {
        Some(m) => is_manifest_media_type(m),
        None => tag.is_some() || target.url.as_deref().is_none_or(|u| !u.contains("/blobs/")),
    };
    if !is_manifest {
        return Ok(None);
    }
    let repository = non_empty(target.repository).ok_or_else(|| LineError::new("event without target.repository"))?;
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
    let digest = non_empty(target.digest)
        .map(digest)
        .transpose()
        .map_err(LineError::new)?;
    if digest.is_none() && (action == Action::Push || tag.is_none()) {
        return Err(LineError::new(format!("{action:?} event without target.digest")));
    }
    let mut references = Vec::with_capacity(target.references.len());
    for r in target.references {
        if let Some(d) = non_empty(r.digest) {
            references.push((self::digest(d).map_err(LineError::new)?, non_empty(r.media_type)));
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

fn deliver_line(
    line: &str,
    number: u64,
    report: &mut ReadReport,
    strict: bool,
    f: &mut impl FnMut(RegistryEvent<'_>),
) -> Result<(), ReadError> {
    match serde_json::from_str::<RawLine<'_>>(line) {
        Ok(raw) => deliver_raw(raw, number, report, strict, f),
        Err(e) => crate::error::bad(report, number, format!("not a registry event envelope: {e}"), strict),
    }
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
        for_each_line(path, |n, line| {
            if line.trim().is_empty() {
                report.record::<()>(n, Ok(None), strict)?;
            } else {
                deliver_line(line, n, &mut report, strict, &mut f)?;
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
    }
    Ok(report)
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
