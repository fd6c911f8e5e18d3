//! `aws ecr describe-images` output as an image inventory with pre-aggregated history.
//!
//! The document is `{"imageDetails": [...], "nextToken": ...}` (several pages concatenated, or a bare array of
//! image details, are accepted too). Per image: `repositoryName`, `imageDigest` (required), `imageTags`,
//! `imageSizeInBytes`, `imagePushedAt` and `lastRecordedPullTime` (epoch seconds as the CLI prints them by default,
//! or ISO 8601 with `cli_timestamp_format = iso8601`), `imageManifestMediaType`, `registryId`. A detail without a
//! repository or a valid digest, or with a field of the wrong type, is `malformed` (counted, the first five quoted
//! by their 1-based position in the file; fatal with `strict`). A JSON syntax error ends the file (the details
//! before it are kept) and is counted once.
//!
//! The file is read into memory (decompressed) and parsed in place: each detail's strings are borrowed from it
//! and handed to the caller one by one, never kept as a tree (a listing is about 360 bytes per image, a small part
//! of what the images cost later).
//!
//! ECR records the last pull only (refreshed about daily), not a count: it becomes a one-read summary.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::Path;

use reprieve_batch::formats::{ReadReport, SourceFormat, open_text};
use reprieve_batch::{LineError, ReadError};
use reprieve_core::UnixSeconds;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::events::parse_timestamp;

/// One image of an ECR listing, borrowed from the file's text where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage<'a> {
    pub registry_id: Option<Cow<'a, str>>,
    pub repository: Cow<'a, str>,
    pub digest: Cow<'a, str>,
    pub tags: Vec<Cow<'a, str>>,
    pub size: Option<u64>,
    pub pushed_at: Option<UnixSeconds>,
    pub last_pull: Option<UnixSeconds>,
    pub media_type: Option<Cow<'a, str>>,
}

impl EcrImage<'_> {
    /// The same image, owning its strings.
    pub fn into_owned(self) -> EcrImage<'static> {
        EcrImage {
            registry_id: self.registry_id.map(|s| Cow::Owned(s.into_owned())),
            repository: Cow::Owned(self.repository.into_owned()),
            digest: Cow::Owned(self.digest.into_owned()),
            tags: self.tags.into_iter().map(|t| Cow::Owned(t.into_owned())).collect(),
            size: self.size,
            pushed_at: self.pushed_at,
            last_pull: self.last_pull,
            media_type: self.media_type.map(|s| Cow::Owned(s.into_owned())),
        }
    }
}

/// A field's JSON value, as much of it as validation needs.
#[derive(Debug, Clone, PartialEq)]
enum Field<'a> {
    Null,
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Array(Vec<Field<'a>>),
    Object,
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Null => f.write_str("null"),
            Field::Str(s) => write!(f, "{s:?}"),
            Field::U64(n) => write!(f, "{n}"),
            Field::I64(n) => write!(f, "{n}"),
            Field::F64(n) => write!(f, "{n}"),
            Field::Bool(b) => write!(f, "{b}"),
            Field::Array(_) => f.write_str("an array"),
            Field::Object => f.write_str("an object"),
        }
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }
    fn visit_none<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Field<'de>, E> {
        Ok(Field::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Field<'de>, E> {
        Ok(Field::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
        Ok(Field::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Field<'de>, E> {
        Ok(Field::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(FieldSeed)? {
            items.push(item);
        }
        Ok(Field::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Object)
    }
}

struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

/// The keys of an image detail that matter (matched without allocating).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    RegistryId,
    Repository,
    Digest,
    Tags,
    Size,
    PushedAt,
    LastPull,
    ManifestMediaType,
    ArtifactMediaType,
    Other,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "registryId" => Key::RegistryId,
            "repositoryName" => Key::Repository,
            "imageDigest" => Key::Digest,
            "imageTags" => Key::Tags,
            "imageSizeInBytes" => Key::Size,
            "imagePushedAt" => Key::PushedAt,
            "lastRecordedPullTime" => Key::LastPull,
            "imageManifestMediaType" => Key::ManifestMediaType,
            "artifactMediaType" => Key::ArtifactMediaType,
            _ => Key::Other,
        })
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// One element of `imageDetails`: its fields (the last of a repeated key wins), or not an object.
#[derive(Debug, Default)]
struct RawDetail<'a> {
    not_object: bool,
    registry_id: Option<Field<'a>>,
    repository: Option<Field<'a>>,
    digest: Option<Field<'a>>,
    tags: Option<Field<'a>>,
    size: Option<Field<'a>>,
    pushed_at: Option<Field<'a>>,
    last_pull: Option<Field<'a>>,
    manifest_media_type: Option<Field<'a>>,
    artifact_media_type: Option<Field<'a>>,
}

impl RawDetail<'_> {
    fn not_object() -> Self {
        Self {
            not_object: true,
            ..Self::default()
        }
    }
}

struct DetailVisitor;

impl<'de> Visitor<'de> for DetailVisitor {
    type Value = RawDetail<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an image detail")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDetail<'de>, A::Error> {
        let mut d = RawDetail::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let slot = match key {
                Key::RegistryId => &mut d.registry_id,
                Key::Repository => &mut d.repository,
                Key::Digest => &mut d.digest,
                Key::Tags => &mut d.tags,
                Key::Size => &mut d.size,
                Key::PushedAt => &mut d.pushed_at,
                Key::LastPull => &mut d.last_pull,
                Key::ManifestMediaType => &mut d.manifest_media_type,
                Key::ArtifactMediaType => &mut d.artifact_media_type,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value_seed(FieldSeed)?);
        }
        Ok(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDetail<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawDetail::not_object())
    }
    fn visit_unit<E>(self) -> Result<RawDetail<'de>, E> {
        Ok(RawDetail::not_object())
    }
    fn visit_bool<E>(self, _: bool) -> Result<RawDetail<'de>, E> {
        Ok(RawDetail::not_object())
    }
    fn visit_u64<E>(self, _: u64) -> Result<RawDetail<'de>, E> {
        Ok(RawDetail::not_object())
    }
    fn visit_i64<E>(self, _: i64) -> Result<RawDetail<'de>, E> {
        Ok(RawDetail::not_object())
    }
    fn visit_f64<E>(self, _: f64) -> Result<RawDetail<'de>, E> {
        Ok(RawDetail::not_object())
    }
    fn visit_str<E>(self, _: &str) -> Result<RawDetail<'de>, E> {
        Ok(RawDetail::not_object())
    }
}

struct DetailSeed;

impl<'de> DeserializeSeed<'de> for DetailSeed {
    type Value = RawDetail<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawDetail<'de>, D::Error> {
        d.deserialize_any(DetailVisitor)
    }
}

/// An epoch time in range, floored to seconds.
fn epoch(x: f64) -> Option<UnixSeconds> {
    (x.is_finite() && (0.0..=7_258_118_400.0).contains(&x)).then(|| x.floor() as UnixSeconds)
}

fn time_of(v: Option<Field<'_>>, field: &str) -> Result<Option<UnixSeconds>, LineError> {
    let number = |x: f64, shown: &dyn fmt::Display| {
        epoch(x)
            .map(Some)
            .ok_or_else(|| LineError::new(format!("{field} {shown} is not a plausible epoch time")))
    };
    match v {
        None | Some(Field::Null) => Ok(None),
        Some(Field::U64(n)) => number(n as f64, &n),
        Some(Field::I64(n)) => number(n as f64, &n),
        Some(Field::F64(n)) => number(n, &n),
        Some(Field::Str(s)) => parse_timestamp(&s)
            .or_else(|| s.parse::<f64>().ok().and_then(epoch))
            .map(Some)
            .ok_or_else(|| LineError::new(format!("{field} {s:?} is not a time"))),
        Some(other) => Err(LineError::new(format!("{field} is {other}, not a time"))),
    }
}

/// `s` without surrounding whitespace, still borrowed when it was.
fn trimmed(s: Cow<'_, str>) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) if o.trim().len() == o.len() => Cow::Owned(o),
        Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
    }
}

fn text_of<'a>(v: Option<Field<'a>>, field: &str) -> Result<Option<Cow<'a, str>>, LineError> {
    match v {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Field::Str(s)) => Ok(Some(trimmed(s))),
        Some(_) => Err(LineError::new(format!("{field} is not a string"))),
    }
}

/// Validates one image detail.
fn parse_detail(d: RawDetail<'_>) -> Result<EcrImage<'_>, LineError> {
    if d.not_object {
        return Err(LineError::new("an image detail must be an object"));
    }
    let repository = text_of(d.repository, "repositoryName")?.ok_or_else(|| LineError::new("no repositoryName"))?;
    if repository.len() > 1024
        || repository
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(LineError::new("bad repositoryName"));
    }
    let digest = text_of(d.digest, "imageDigest")?.ok_or_else(|| LineError::new("no imageDigest"))?;
    let digest = crate::events::checked_digest(digest).map_err(LineError::new)?;
    let tags = match d.tags {
        None | Some(Field::Null) => Vec::new(),
        Some(Field::Array(items)) => items
            .into_iter()
            .map(|t| match t {
                Field::Str(s) if !s.trim().is_empty() && s.len() <= 128 => Ok(trimmed(s)),
                other => Err(LineError::new(format!("bad tag {other}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(LineError::new("imageTags is not an array")),
    };
    let size = match d.size {
        None | Some(Field::Null) => None,
        Some(Field::U64(n)) => Some(n),
        Some(other) => return Err(LineError::new(format!("imageSizeInBytes {other} is not a size"))),
    };
    Ok(EcrImage {
        registry_id: text_of(d.registry_id, "registryId")?,
        repository,
        digest,
        tags,
        size,
        pushed_at: time_of(d.pushed_at, "imagePushedAt")?,
        last_pull: time_of(d.last_pull, "lastRecordedPullTime")?,
        media_type: match text_of(d.manifest_media_type, "imageManifestMediaType")? {
            Some(m) => Some(m),
            None => text_of(d.artifact_media_type, "artifactMediaType")?,
        },
    })
}

/// Receives the details of a page, one by one.
struct Sink<'r, F> {
    report: &'r mut ReadReport,
    strict: bool,
    index: u64,
    f: F,
    /// A strict-mode error, kept to return after serde unwinds.
    fatal: Option<ReadError>,
}

impl<F: FnMut(EcrImage<'_>)> Sink<'_, F> {
    fn detail(&mut self, d: RawDetail<'_>) -> bool {
        self.index += 1;
        match self.report.record(self.index, parse_detail(d).map(Some), self.strict) {
            Ok(Some(image)) => {
                (self.f)(image);
                true
            }
            Ok(None) => true,
            Err(e) => {
                self.fatal = Some(e);
                false
            }
        }
    }
}

struct Details<'s, 'r, F>(&'s mut Sink<'r, F>);

impl<'de, F: FnMut(EcrImage<'_>)> DeserializeSeed<'de> for Details<'_, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(EcrImage<'_>)> Visitor<'de> for Details<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of image details")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(d) = seq.next_element_seed(DetailSeed)? {
            if !self.0.detail(d) {
                return Err(serde::de::Error::custom("strict: stopped at a malformed image detail"));
            }
        }
        Ok(())
    }
}

struct Page<'s, 'r, F>(&'s mut Sink<'r, F>);

impl<'de, F: FnMut(EcrImage<'_>)> DeserializeSeed<'de> for Page<'_, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(EcrImage<'_>)> Visitor<'de> for Page<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a describe-images document {\"imageDetails\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "imageDetails" {
                map.next_value_seed(Details(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Details(self.0).visit_seq(seq)
    }
}

/// Streams the images of one `describe-images` file to `f`.
pub fn read_ecr_images(path: &Path, strict: bool, f: impl FnMut(EcrImage<'_>)) -> Result<ReadReport, ReadError> {
    let mut report = ReadReport::new(path, SourceFormat::EcrImages);
    let mut text = Vec::new();
    open_text(path)?
        .read_to_end(&mut text)
        .map_err(|e| crate::error::io_error(path, e))?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    let mut sink = Sink {
        report: &mut report,
        strict,
        index: 0,
        f,
        fatal: None,
    };
    loop {
        let result = Page(&mut sink).deserialize(&mut de);
        if let Some(e) = sink.fatal.take() {
            return Err(e);
        }
        if let Err(e) = result {
            if e.is_eof() && sink.index == 0 && sink.report.lines == 0 {
                return Err(crate::error::format_error(
                    path,
                    "empty file: no describe-images document",
                ));
            }
            let index = sink.index + 1;
            crate::error::bad(
                &mut *sink.report,
                index,
                format!("JSON (rest of the file skipped): {e}"),
                strict,
            )?;
            break;
        }
        // Another page may follow; only whitespace means the end.
        if de.end().is_ok() {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cli_output_with_both_time_formats_and_counts_bad_details() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecr.json");
        let d1 = format!("sha256:{}", "a".repeat(64));
        let d2 = format!("sha256:{}", "b".repeat(64));
        let text = format!(
            r#"{{
    "imageDetails": [
        {{"registryId": "123456789012", "repositoryName": "team/app", "imageDigest": "{d1}",
          "imageTags": ["1.2.0", "latest"], "imageSizeInBytes": 52428800, "imagePushedAt": 1704067200.123,
          "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "lastRecordedPullTime": "2024-03-01T12:00:00+00:00"}},
        {{"repositoryName": "team/app", "imageDigest": "sha256:nothex"}},
        {{"repositoryName": "team/app", "imageDigest": "{d2}", "imageSizeInBytes": "big"}},
        {{"repositoryName": "team/app", "imageDigest": "{d2}"}}
    ],
    "nextToken": "abc"
}}
{{"imageDetails": [{{"repositoryName": "team/other", "imageDigest": "{d1}"}}]}}
"#
        );
        std::fs::write(&path, text).unwrap();
        let mut images = Vec::new();
        let report = read_ecr_images(&path, false, |i| images.push(i.into_owned())).unwrap();
        assert_eq!((report.events, report.malformed), (3, 2), "{report:?}");
        assert_eq!(images[0].tags, vec!["1.2.0", "latest"]);
        assert_eq!(images[0].pushed_at, Some(1_704_067_200));
        assert_eq!(images[0].last_pull, Some(1_709_294_400));
        assert_eq!(images[0].size, Some(52_428_800));
        assert_eq!(images[2].repository, "team/other", "the second page is read too");
        assert_eq!(report.first_malformed[0].0, 2);
        assert!(read_ecr_images(&path, true, |_| {}).is_err());
    }

    #[test]
    fn a_truncated_file_keeps_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecr.json");
        let d1 = format!("sha256:{}", "a".repeat(64));
        std::fs::write(
            &path,
            format!(r#"{{"imageDetails": [{{"repositoryName": "r", "imageDigest": "{d1}"}}, {{"repos"#),
        )
        .unwrap();
        let mut n = 0;
        let report = read_ecr_images(&path, false, |_| n += 1).unwrap();
        assert_eq!((n, report.malformed), (1, 1));
    }
}
