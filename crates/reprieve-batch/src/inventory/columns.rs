//! Inventory columns by name and the mapping of one row onto an [`ObjectRecord`].

use std::borrow::Cow;

use reprieve_core::time::parse_time;
use reprieve_core::{ObjectRecord, StorageClass};

use super::InventoryRow;
use crate::error::LineError;
use crate::formats::fields::{form_decode, parse_u64};

/// The inventory fields Reprieve reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Key,
    Tenant,
    Size,
    Created,
    Modified,
    StorageClass,
    Owner,
    LegalHold,
    RetainUntil,
    LiveReferences,
    ContentType,
    Cohort,
    IsLatest,
    IsDeleteMarker,
}

pub(crate) const FIELDS: [Field; 14] = [
    Field::Key,
    Field::Tenant,
    Field::Size,
    Field::Created,
    Field::Modified,
    Field::StorageClass,
    Field::Owner,
    Field::LegalHold,
    Field::RetainUntil,
    Field::LiveReferences,
    Field::ContentType,
    Field::Cohort,
    Field::IsLatest,
    Field::IsDeleteMarker,
];

impl Field {
    /// Time-valued fields (read from Parquet as Unix seconds).
    pub(crate) fn is_time(self) -> bool {
        matches!(self, Self::Created | Self::Modified | Self::RetainUntil)
    }

    /// Maps a column name (any case; `CamelCase` as in S3 Inventory `fileSchema` or `snake_case`) to a field.
    pub(crate) fn from_column(name: &str) -> Option<Self> {
        Some(match normalise(name).as_str() {
            "key" => Self::Key,
            "tenant" | "bucket" => Self::Tenant,
            "size" => Self::Size,
            "created" => Self::Created,
            "modified" | "last_modified_date" | "last_modified" => Self::Modified,
            "storage_class" => Self::StorageClass,
            "owner" => Self::Owner,
            "legal_hold" | "object_lock_legal_hold_status" => Self::LegalHold,
            "retain_until" | "object_lock_retain_until_date" => Self::RetainUntil,
            "live_references" => Self::LiveReferences,
            "content_type" => Self::ContentType,
            "cohort" => Self::Cohort,
            "is_latest" => Self::IsLatest,
            "is_delete_marker" => Self::IsDeleteMarker,
            _ => return None,
        })
    }
}

/// `LastModifiedDate` -> `last_modified_date`; `Last-Modified Date` -> `last_modified_date`.
pub(crate) fn normalise(name: &str) -> String {
    let name = name.trim().trim_start_matches('\u{feff}').trim_matches('"');
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c == ' ' || c == '-' {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Column positions of the known fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Columns {
    pub(crate) index: Vec<(Field, usize)>,
}

impl Columns {
    /// From column names in file order; `key` is required, unknown columns are ignored.
    pub(crate) fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, LineError> {
        let mut index: Vec<(Field, usize)> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if let Some(f) = Field::from_column(n.as_ref())
                && !index.iter().any(|(g, _)| *g == f)
            {
                index.push((f, i));
            }
        }
        if !index.iter().any(|(f, _)| *f == Field::Key) {
            return Err(LineError::new("no key column"));
        }
        Ok(Self { index })
    }
}

fn parse_bool(field: &str, text: &str) -> Result<bool, LineError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "off" | "0" | "no" | "f" => Ok(false),
        "true" | "on" | "1" | "yes" | "t" => Ok(true),
        _ => Err(LineError::new(format!("bad {field} {text:?}"))),
    }
}

/// Builds a row from per-field text. `Ok(None)`: a valid row that is not a current object (a delete marker or a
/// noncurrent version). `decode_keys`: keys are URL-encoded (S3 Inventory CSV; `+` is a space).
pub(crate) fn row_from<'a>(
    mut get: impl FnMut(Field) -> Option<Cow<'a, str>>,
    decode_keys: bool,
    default_tenant: &str,
) -> Result<Option<InventoryRow>, LineError> {
    // A key is taken as written (a key of spaces is a valid S3 key); other cells that are blank are absent.
    let key = get(Field::Key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| LineError::new("empty key"))?;
    let mut text = |f: Field| get(f).filter(|v| !v.trim().is_empty());
    if text(Field::IsDeleteMarker)
        .map(|v| parse_bool("is_delete_marker", &v))
        .transpose()?
        == Some(true)
        || text(Field::IsLatest).map(|v| parse_bool("is_latest", &v)).transpose()? == Some(false)
    {
        return Ok(None);
    }
    let key = if decode_keys {
        form_decode(&key)
    } else {
        key.into_owned()
    };
    let time = |name: &str, v: Option<Cow<'a, str>>| -> Result<Option<i64>, LineError> {
        v.map(|v| parse_time(&v).map_err(|_| LineError::new(format!("bad {name} {v:?}"))))
            .transpose()
    };
    let size = text(Field::Size)
        .map(|v| parse_u64(v.trim()).ok_or_else(|| LineError::new(format!("bad size {v:?}"))))
        .transpose()?;
    let created = time("created", text(Field::Created))?;
    let modified = time("modified", text(Field::Modified))?;
    let retain_until = time("retain_until", text(Field::RetainUntil))?;
    let legal_hold = match text(Field::LegalHold) {
        Some(v) => parse_bool("legal_hold", &v)?,
        None => false,
    };
    let live_references = match text(Field::LiveReferences) {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| LineError::new(format!("bad live_references {v:?}")))?,
        None => 0,
    };
    let owned = |v: Option<Cow<'a, str>>| v.map(|v| v.trim().to_owned());
    let record = ObjectRecord {
        key,
        tenant: owned(text(Field::Tenant)).unwrap_or_else(|| default_tenant.to_owned()),
        size,
        created,
        modified,
        content_type: owned(text(Field::ContentType)),
        storage_class: text(Field::StorageClass).map_or(StorageClass::Unspecified, |v| StorageClass::from_s3_name(&v)),
        owner: owned(text(Field::Owner)),
        legal_hold,
        retain_until,
        live_references,
        ..ObjectRecord::default()
    };
    Ok(Some(InventoryRow {
        record,
        cohort: owned(text(Field::Cohort)),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names() {
        assert_eq!(normalise("LastModifiedDate"), "last_modified_date");
        assert_eq!(normalise(" ObjectLockRetainUntilDate"), "object_lock_retain_until_date");
        assert_eq!(normalise("last_modified_date"), "last_modified_date");
        assert_eq!(normalise("IsDeleteMarker"), "is_delete_marker");
        assert_eq!(Field::from_column("Bucket"), Some(Field::Tenant));
        assert_eq!(Field::from_column("ETag"), None);
    }
}
