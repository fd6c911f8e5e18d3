//! The object record: what Reprieve knows about one stored object at scoring time.
//!
//! This is the single domain shape that every front door (gRPC, batch files, training traces) converts into.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::time::UnixSeconds;

/// Storage class of an object, as the S3 family names them. Other providers map onto the closest tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    #[default]
    Unspecified,
    Standard,
    IntelligentTiering,
    StandardIa,
    OnezoneIa,
    GlacierIr,
    Glacier,
    DeepArchive,
    Other,
}

impl StorageClass {
    /// Parses the names used by S3 Inventory and the AWS APIs (`STANDARD`, `STANDARD_IA`, `GLACIER`, ...).
    /// Unknown non-empty names map to [`StorageClass::Other`]; empty to [`StorageClass::Unspecified`].
    pub fn from_s3_name(name: &str) -> Self {
        match name.trim().to_ascii_uppercase().as_str() {
            "" => Self::Unspecified,
            "STANDARD" | "REDUCED_REDUNDANCY" | "EXPRESS_ONEZONE" => Self::Standard,
            "INTELLIGENT_TIERING" => Self::IntelligentTiering,
            "STANDARD_IA" => Self::StandardIa,
            "ONEZONE_IA" => Self::OnezoneIa,
            "GLACIER_IR" => Self::GlacierIr,
            "GLACIER" | "GLACIER_FLEXIBLE_RETRIEVAL" => Self::Glacier,
            "DEEP_ARCHIVE" => Self::DeepArchive,
            _ => Self::Other,
        }
    }

    /// The canonical S3 name; `""` for unspecified.
    pub fn s3_name(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::Standard => "STANDARD",
            Self::IntelligentTiering => "INTELLIGENT_TIERING",
            Self::StandardIa => "STANDARD_IA",
            Self::OnezoneIa => "ONEZONE_IA",
            Self::GlacierIr => "GLACIER_IR",
            Self::Glacier => "GLACIER",
            Self::DeepArchive => "DEEP_ARCHIVE",
            Self::Other => "OTHER",
        }
    }
}

/// Reads that are known only in aggregate (counts from a registry, an older log summarised away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccessSummary {
    pub count: u64,
    pub first: Option<UnixSeconds>,
    pub last: Option<UnixSeconds>,
}

/// What is known of an object's reads: raw timestamps, a summary of reads not listed, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccessHistory {
    /// Read times, sorted ascending. Reads at or after the scoring time are ignored by feature extraction.
    pub accesses: Vec<UnixSeconds>,
    /// Reads not listed in `accesses`.
    pub summary: Option<AccessSummary>,
    /// From this time on the history is complete. `None`: coverage unknown (treated as too little history).
    pub complete_since: Option<UnixSeconds>,
}

/// Aggregated activity of a prefix at scoring time (see [`crate::prefix`] for how it is computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrefixActivity {
    pub objects: u64,
    pub objects_read_30d: u64,
    pub reads_7d: u64,
    pub reads_30d: u64,
    pub last_read: Option<UnixSeconds>,
    pub bulk_scan_days_128d: u32,
    pub last_bulk_scan: Option<UnixSeconds>,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub key: String,
    /// Tenant / bucket; empty is the default tenant.
    pub tenant: String,
    pub size: Option<u64>,
    pub created: Option<UnixSeconds>,
    pub modified: Option<UnixSeconds>,
    pub content_type: Option<String>,
    pub storage_class: StorageClass,
    /// Accountable owner; `None` caps the verdict at REVIEW.
    pub owner: Option<String>,
    pub legal_hold: bool,
    pub retain_until: Option<UnixSeconds>,
    pub live_references: u32,
    pub history: AccessHistory,
    pub parent_activity: Option<PrefixActivity>,
    pub top_activity: Option<PrefixActivity>,
}

/// What a container registry knows of one image (a manifest digest in a repository) beyond the common record:
/// the facts behind the image features. Carried beside an [`ObjectRecord`] (whose key is `repository@digest`),
/// not inside it, so that records of files are unchanged; `None` wherever a record is not an image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageFacts {
    /// Tags pointing at this digest at the scoring time, sorted.
    pub tags: Vec<String>,
    /// When the most recent of those tags was set (pushed or moved here).
    pub newest_tag_at: Option<UnixSeconds>,
    /// Pulls of this digest by tag and by digest before the scoring time (reads by tag are resolved to the digest
    /// the tag pointed to when they happened).
    pub pulls_by_tag: u64,
    pub pulls_by_digest: u64,
    /// The manifest is an image index (multi-arch manifest list).
    pub is_index: bool,
    /// The earliest upcoming run of a schedule (CronJob) that names this image, if any.
    pub schedule: Option<ScheduleFacts>,
}

/// The next run of a schedule that needs an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleFacts {
    /// The first run at or after the scoring time.
    pub next_run: UnixSeconds,
    /// Time between that run and the one after it (the schedule's period near the scoring time).
    pub period_secs: i64,
}

/// Bounds that every front door enforces on incoming records before scoring them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLimits {
    /// Longest accepted key, in bytes (S3 allows 1024).
    pub max_key_bytes: usize,
    /// Most raw access timestamps accepted per object.
    pub max_history_len: usize,
    /// How far in the future of the scoring time a timestamp may lie (clock skew allowance).
    pub max_future_skew_secs: i64,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 4096,
            max_history_len: 100_000,
            max_future_skew_secs: 300,
        }
    }
}

/// Earliest timestamp accepted anywhere (1970-01-01) and latest (year 2200): outside is a unit mistake.
const MIN_PLAUSIBLE_TIME: UnixSeconds = 0;
const MAX_PLAUSIBLE_TIME: UnixSeconds = 7_258_118_400;

impl ObjectRecord {
    /// A record with only a key, for tests and examples.
    pub fn with_key(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    /// Checks the record against `limits` for scoring at `at`. The error names the offending field.
    pub fn validate(&self, at: UnixSeconds, limits: &RecordLimits) -> Result<(), ValidationError> {
        if self.key.is_empty() {
            return Err(ValidationError::new("key", "must not be empty"));
        }
        if self.key.len() > limits.max_key_bytes {
            return Err(ValidationError::new(
                "key",
                format!(
                    "is {} bytes, more than the limit of {}",
                    self.key.len(),
                    limits.max_key_bytes
                ),
            ));
        }
        if self.key.contains('\0') {
            return Err(ValidationError::new("key", "must not contain NUL"));
        }
        let latest = at.saturating_add(limits.max_future_skew_secs);
        let check_time = |field: &'static str, t: Option<UnixSeconds>, allow_future: bool| {
            if let Some(t) = t {
                if !(MIN_PLAUSIBLE_TIME..=MAX_PLAUSIBLE_TIME).contains(&t) {
                    return Err(ValidationError::new(
                        field,
                        format!("{t} is not a plausible Unix time in seconds"),
                    ));
                }
                if !allow_future && t > latest {
                    return Err(ValidationError::new(
                        field,
                        format!("{t} is {}s after the scoring time {at}", t - at),
                    ));
                }
            }
            Ok(())
        };
        check_time("created_unix", self.created, false)?;
        check_time("modified_unix", self.modified, false)?;
        check_time("retain_until_unix", self.retain_until, true)?;
        let h = &self.history;
        check_time("history.complete_since_unix", h.complete_since, false)?;
        if h.accesses.len() > limits.max_history_len {
            return Err(ValidationError::new(
                "history.access_unix",
                format!(
                    "has {} entries, more than the limit of {}; send older reads as history.summary",
                    h.accesses.len(),
                    limits.max_history_len
                ),
            ));
        }
        let mut previous = MIN_PLAUSIBLE_TIME;
        for (i, &t) in h.accesses.iter().enumerate() {
            if !(MIN_PLAUSIBLE_TIME..=MAX_PLAUSIBLE_TIME).contains(&t) {
                return Err(ValidationError::new(
                    "history.access_unix",
                    format!("entry {i} ({t}) is not a plausible Unix time in seconds"),
                ));
            }
            if t < previous {
                return Err(ValidationError::new(
                    "history.access_unix",
                    format!("is not sorted ascending (entry {i} is {t}, before {previous})"),
                ));
            }
            if t > latest {
                return Err(ValidationError::new(
                    "history.access_unix",
                    format!("entry {i} ({t}) is {}s after the scoring time {at}", t - at),
                ));
            }
            previous = t;
        }
        if let Some(s) = h.summary {
            check_time("history.summary.first_unix", s.first, false)?;
            check_time("history.summary.last_unix", s.last, false)?;
            if let (Some(f), Some(l)) = (s.first, s.last)
                && f > l
            {
                return Err(ValidationError::new("history.summary", "first_unix is after last_unix"));
            }
            if s.count == 0 && (s.first.is_some() || s.last.is_some()) {
                return Err(ValidationError::new(
                    "history.summary.count",
                    "is 0 but first_unix/last_unix are set",
                ));
            }
        }
        for (field, activity) in [
            ("parent_activity", &self.parent_activity),
            ("top_activity", &self.top_activity),
        ] {
            if let Some(a) = activity {
                if a.objects_read_30d > a.objects {
                    return Err(ValidationError::new(field, "objects_read_30d is larger than objects"));
                }
                if a.reads_7d > a.reads_30d {
                    return Err(ValidationError::new(field, "reads_7d is larger than reads_30d"));
                }
                if a.bulk_scan_days_128d > 128 {
                    return Err(ValidationError::new(field, "bulk_scan_days_128d is larger than 128"));
                }
                check_time(field, a.last_read, false)?;
                check_time(field, a.last_bulk_scan, false)?;
            }
        }
        Ok(())
    }
}
