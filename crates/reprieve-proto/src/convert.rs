//! Conversions between the wire messages and the core's domain types.

use reprieve_core::{
    AccessHistory, AccessSummary, ObjectRecord, PrefixActivity, ReasonCode, StorageClass, ValidationError, Verdict,
    VerdictClass,
};

use crate::v1;

/// A request field that cannot be converted: the wire name of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field path, e.g. `objects[3].` + `size_bytes`.
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            message: self.message,
        }
    }
}

impl From<ValidationError> for FieldError {
    fn from(e: ValidationError) -> Self {
        Self::new(e.field, e.message)
    }
}

pub fn storage_class_from_pb(value: i32) -> Result<StorageClass, FieldError> {
    use v1::StorageClass as P;
    let class = P::try_from(value)
        .map_err(|_| FieldError::new("storage_class", format!("{value} is not a known StorageClass")))?;
    Ok(match class {
        P::Unspecified => StorageClass::Unspecified,
        P::Standard => StorageClass::Standard,
        P::IntelligentTiering => StorageClass::IntelligentTiering,
        P::StandardIa => StorageClass::StandardIa,
        P::OnezoneIa => StorageClass::OnezoneIa,
        P::GlacierIr => StorageClass::GlacierIr,
        P::Glacier => StorageClass::Glacier,
        P::DeepArchive => StorageClass::DeepArchive,
        P::Other => StorageClass::Other,
    })
}

pub fn storage_class_to_pb(class: StorageClass) -> v1::StorageClass {
    use v1::StorageClass as P;
    match class {
        StorageClass::Unspecified => P::Unspecified,
        StorageClass::Standard => P::Standard,
        StorageClass::IntelligentTiering => P::IntelligentTiering,
        StorageClass::StandardIa => P::StandardIa,
        StorageClass::OnezoneIa => P::OnezoneIa,
        StorageClass::GlacierIr => P::GlacierIr,
        StorageClass::Glacier => P::Glacier,
        StorageClass::DeepArchive => P::DeepArchive,
        StorageClass::Other => P::Other,
    }
}

pub fn verdict_class_to_pb(class: VerdictClass) -> v1::VerdictClass {
    match class {
        VerdictClass::Retain => v1::VerdictClass::Retain,
        VerdictClass::Review => v1::VerdictClass::Review,
        VerdictClass::Archive => v1::VerdictClass::Archive,
        VerdictClass::DeleteCandidate => v1::VerdictClass::DeleteCandidate,
    }
}

/// `None` for UNSPECIFIED (meaning "any" in filters); an error for values the enum does not know.
pub fn verdict_class_from_pb(value: i32, field: &str) -> Result<Option<VerdictClass>, FieldError> {
    let class = v1::VerdictClass::try_from(value)
        .map_err(|_| FieldError::new(field, format!("{value} is not a known VerdictClass")))?;
    Ok(match class {
        v1::VerdictClass::Unspecified => None,
        v1::VerdictClass::Retain => Some(VerdictClass::Retain),
        v1::VerdictClass::Review => Some(VerdictClass::Review),
        v1::VerdictClass::Archive => Some(VerdictClass::Archive),
        v1::VerdictClass::DeleteCandidate => Some(VerdictClass::DeleteCandidate),
    })
}

pub fn reason_to_pb(reason: ReasonCode) -> v1::ReasonCode {
    use v1::ReasonCode as P;
    match reason {
        ReasonCode::LegalHold => P::LegalHold,
        ReasonCode::RetentionActive => P::RetentionActive,
        ReasonCode::LiveReference => P::LiveReference,
        ReasonCode::TooNew => P::TooNew,
        ReasonCode::InsufficientHistory => P::InsufficientHistory,
        ReasonCode::UnknownOwner => P::UnknownOwner,
        ReasonCode::PrecisionBreaker => P::PrecisionBreaker,
        ReasonCode::OutOfDomain => P::OutOfDomain,
        ReasonCode::LikelyReused => P::LikelyReused,
        ReasonCode::Uncertain => P::Uncertain,
        ReasonCode::UnlikelyReused => P::UnlikelyReused,
        ReasonCode::VeryUnlikelyReused => P::VeryUnlikelyReused,
    }
}

fn non_negative(field: &str, value: Option<i64>) -> Result<Option<u64>, FieldError> {
    match value {
        None => Ok(None),
        Some(v) if v >= 0 => Ok(Some(v as u64)),
        Some(v) => Err(FieldError::new(field, format!("must not be negative (got {v})"))),
    }
}

fn prefix_activity_from_pb(a: Option<v1::PrefixActivity>) -> Option<PrefixActivity> {
    a.map(|a| PrefixActivity {
        objects: a.objects,
        objects_read_30d: a.objects_read_30d,
        reads_7d: a.reads_7d,
        reads_30d: a.reads_30d,
        last_read: a.last_read_unix,
        bulk_scan_days_128d: a.bulk_scan_days_128d,
        last_bulk_scan: a.last_bulk_scan_unix,
    })
}

fn prefix_activity_to_pb(a: &Option<PrefixActivity>) -> Option<v1::PrefixActivity> {
    a.map(|a| v1::PrefixActivity {
        objects: a.objects,
        objects_read_30d: a.objects_read_30d,
        reads_7d: a.reads_7d,
        reads_30d: a.reads_30d,
        last_read_unix: a.last_read,
        bulk_scan_days_128d: a.bulk_scan_days_128d,
        last_bulk_scan_unix: a.last_bulk_scan,
    })
}

fn non_empty(s: String) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s) }
}

/// Converts a wire record into the core's. Shape errors only: range checks against a scoring time are
/// [`ObjectRecord::validate`]'s job.
pub fn record_from_pb(r: v1::ObjectRecord) -> Result<ObjectRecord, FieldError> {
    let history = r.history.unwrap_or_default();
    Ok(ObjectRecord {
        size: non_negative("size_bytes", r.size_bytes)?,
        storage_class: storage_class_from_pb(r.storage_class)?,
        key: r.key,
        tenant: r.tenant,
        created: r.created_unix,
        modified: r.modified_unix,
        content_type: non_empty(r.content_type),
        owner: non_empty(r.owner),
        legal_hold: r.legal_hold,
        retain_until: r.retain_until_unix,
        live_references: r.live_references,
        history: AccessHistory {
            accesses: history.access_unix,
            summary: history.summary.map(|s| AccessSummary {
                count: s.count,
                first: s.first_unix,
                last: s.last_unix,
            }),
            complete_since: history.complete_since_unix,
        },
        parent_activity: prefix_activity_from_pb(r.parent_activity),
        top_activity: prefix_activity_from_pb(r.top_activity),
    })
}

/// Converts a core record to the wire (clients, tests, and the batch-vs-server equivalence check).
pub fn record_to_pb(r: &ObjectRecord) -> v1::ObjectRecord {
    v1::ObjectRecord {
        key: r.key.clone(),
        tenant: r.tenant.clone(),
        size_bytes: r.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        created_unix: r.created,
        modified_unix: r.modified,
        content_type: r.content_type.clone().unwrap_or_default(),
        storage_class: storage_class_to_pb(r.storage_class) as i32,
        owner: r.owner.clone().unwrap_or_default(),
        legal_hold: r.legal_hold,
        retain_until_unix: r.retain_until,
        live_references: r.live_references,
        history: Some(v1::AccessHistory {
            access_unix: r.history.accesses.clone(),
            summary: r.history.summary.map(|s| v1::AccessSummary {
                count: s.count,
                first_unix: s.first,
                last_unix: s.last,
            }),
            complete_since_unix: r.history.complete_since,
        }),
        parent_activity: prefix_activity_to_pb(&r.parent_activity),
        top_activity: prefix_activity_to_pb(&r.top_activity),
    }
}

pub fn verdict_to_pb(v: &Verdict) -> v1::Verdict {
    v1::Verdict {
        verdict_id: v.verdict_id.clone(),
        key: v.key.clone(),
        tenant: v.tenant.clone(),
        verdict_class: verdict_class_to_pb(v.class) as i32,
        reuse_probability: v.probability,
        reasons: v.reasons.iter().map(|r| reason_to_pb(*r) as i32).collect(),
        top_contributions: v
            .contributions
            .iter()
            .map(|c| v1::FeatureContribution {
                feature: c.feature.to_string(),
                value: c.value,
                contribution: c.contribution,
            })
            .collect(),
        model_version: v.model_version.clone(),
        scored_at_unix: v.scored_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let mut r = ObjectRecord::with_key("a/b.png");
        r.size = Some(10);
        r.owner = Some("o".into());
        r.storage_class = StorageClass::Glacier;
        r.history.accesses = vec![1, 2, 3];
        r.history.complete_since = Some(0);
        r.parent_activity = Some(PrefixActivity {
            objects: 3,
            ..PrefixActivity::default()
        });
        assert_eq!(record_from_pb(record_to_pb(&r)), Ok(r));
    }

    #[test]
    fn rejects_bad_fields_by_name() {
        let mut pb = record_to_pb(&ObjectRecord::with_key("k"));
        pb.size_bytes = Some(-1);
        assert_eq!(
            record_from_pb(pb.clone()).map_err(|e| e.field),
            Err("size_bytes".to_string())
        );
        pb.size_bytes = None;
        pb.storage_class = 99;
        assert_eq!(
            record_from_pb(pb).map_err(|e| e.field),
            Err("storage_class".to_string())
        );
    }
}
