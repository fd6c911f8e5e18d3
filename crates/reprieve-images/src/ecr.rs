//! `aws ecr describe-images` output as an image inventory with pre-aggregated history.
//!
//! The document is `{"imageDetails": [...], "nextToken": ...}` (several pages concatenated, or a bare array of
//! image details, are accepted too). Per image: `repositoryName`, `imageDigest` (required), `imageTags`,
//! `imageSizeInBytes`, `imagePushedAt` and `lastRecordedPullTime` (epoch seconds as the CLI prints them by default,
//! or ISO 8601 with `cli_timestamp_format = iso8601`), `imageManifestMediaType`, `registryId`. The details are
//! streamed one by one, never the whole array at once. A detail without a repository or a valid digest, or with a
//! field of the wrong type, is `malformed` (counted, the first five quoted by their 1-based position in the file;
//! fatal with `strict`). A JSON syntax error ends the file (the details before it are kept) and is counted once.
//!
//! ECR records the last pull only (refreshed about daily), not a count: it becomes a one-read summary.

use std::fmt;
use std::io::BufRead;
use std::path::Path;

use reprieve_batch::formats::{ReadReport, SourceFormat, open_text};
use reprieve_batch::{LineError, ReadError};
use reprieve_core::UnixSeconds;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::events::parse_timestamp;
use crate::reference::normalize_digest;

/// One image of an ECR listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub registry_id: Option<String>,
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub size: Option<u64>,
    pub pushed_at: Option<UnixSeconds>,
    pub last_pull: Option<UnixSeconds>,
    pub media_type: Option<String>,
}

fn time_of(v: Option<&Value>, field: &str) -> Result<Option<UnixSeconds>, LineError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite() && (0.0..=7_258_118_400.0).contains(x))
            .map(|x| Some(x.floor() as UnixSeconds))
            .ok_or_else(|| LineError::new(format!("{field} {n} is not a plausible epoch time"))),
        Some(Value::String(s)) => parse_timestamp(s)
            .or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && (0.0..=7_258_118_400.0).contains(x))
                    .map(|x| x.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| LineError::new(format!("{field} {s:?} is not a time"))),
        Some(other) => Err(LineError::new(format!("{field} is {other}, not a time"))),
    }
}

fn text_of(v: Option<&Value>, field: &str) -> Result<Option<String>, LineError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(LineError::new(format!("{field} is not a string"))),
    }
}

/// Validates one image detail.
pub fn parse_detail(v: &Value) -> Result<EcrImage, LineError> {
    let Value::Object(map) = v else {
        return Err(LineError::new("an image detail must be an object"));
    };
    let repository =
        text_of(map.get("repositoryName"), "repositoryName")?.ok_or_else(|| LineError::new("no repositoryName"))?;
    if repository.len() > 1024
        || repository
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(LineError::new("bad repositoryName"));
    }
    let digest = text_of(map.get("imageDigest"), "imageDigest")?.ok_or_else(|| LineError::new("no imageDigest"))?;
    let digest = normalize_digest(&digest).map_err(LineError::new)?;
    let tags = match map.get("imageTags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(s) if !s.trim().is_empty() && s.len() <= 128 => Ok(s.trim().to_owned()),
                _ => Err(LineError::new(format!("bad tag {t}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(LineError::new("imageTags is not an array")),
    };
    let size = match map.get("imageSizeInBytes") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| LineError::new(format!("imageSizeInBytes {v} is not a size")))?,
        ),
    };
    Ok(EcrImage {
        registry_id: text_of(map.get("registryId"), "registryId")?,
        repository,
        digest,
        tags,
        size,
        pushed_at: time_of(map.get("imagePushedAt"), "imagePushedAt")?,
        last_pull: time_of(map.get("lastRecordedPullTime"), "lastRecordedPullTime")?,
        media_type: text_of(map.get("imageManifestMediaType"), "imageManifestMediaType")?
            .or(text_of(map.get("artifactMediaType"), "artifactMediaType")?),
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

impl<F: FnMut(EcrImage)> Sink<'_, F> {
    fn detail(&mut self, v: &Value) -> bool {
        self.index += 1;
        match self.report.record(self.index, parse_detail(v).map(Some), self.strict) {
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

impl<'de, F: FnMut(EcrImage)> DeserializeSeed<'de> for Details<'_, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(EcrImage)> Visitor<'de> for Details<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of image details")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            if !self.0.detail(&v) {
                return Err(serde::de::Error::custom("strict: stopped at a malformed image detail"));
            }
        }
        Ok(())
    }
}

struct Page<'s, 'r, F>(&'s mut Sink<'r, F>);

impl<'de, F: FnMut(EcrImage)> DeserializeSeed<'de> for Page<'_, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(EcrImage)> Visitor<'de> for Page<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a describe-images document {\"imageDetails\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
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
pub fn read_ecr_images(path: &Path, strict: bool, f: impl FnMut(EcrImage)) -> Result<ReadReport, ReadError> {
    let mut report = ReadReport::new(path, SourceFormat::EcrImages);
    let reader: Box<dyn BufRead> = open_text(path)?;
    let mut de = serde_json::Deserializer::from_reader(reader);
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
            if e.is_io() {
                return Err(crate::error::io_error(path, std::io::Error::other(e.to_string())));
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
        let report = read_ecr_images(&path, false, |i| images.push(i)).unwrap();
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
