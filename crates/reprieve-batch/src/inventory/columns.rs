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

/// One cell of an inventory row: text (CSV, or a Parquet text column) or an integer (a Parquet integer,
/// boolean or time column, times already in Unix seconds), so that typed columns need no round trip through text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    UInt(u64),
}

impl<'a> Cell<'a> {
    /// The cell as text, exactly as a CSV cell holding the value would read.
    fn text(self) -> Cow<'a, str> {
        match self {
            Self::Text(t) => t,
            Self::Int(n) => Cow::Owned(n.to_string()),
            Self::UInt(n) => Cow::Owned(n.to_string()),
        }
    }

    /// Blank text is absent; numbers never are.
    fn non_blank(self) -> Option<Self> {
        match &self {
            Self::Text(t) if t.trim().is_empty() => None,
            _ => Some(self),
        }
    }

    /// An integer of type `T`, or the text parsed by `parse`; `Err` gives the text of the bad value.
    fn number<T: TryFrom<i64> + TryFrom<u64>>(self, parse: impl Fn(&str) -> Option<T>) -> Result<T, String> {
        match self {
            Self::Int(n) => T::try_from(n).map_err(|_| n.to_string()),
            Self::UInt(n) => T::try_from(n).map_err(|_| n.to_string()),
            Self::Text(t) => parse(t.trim()).ok_or_else(|| t.into_owned()),
        }
    }
}

/// One inventory row, borrowing its text from the decoded file where it can: what [`row_from`] makes of a row
/// and the batch scorer consumes without building an [`ObjectRecord`]. Text fields are trimmed, except the key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowFacts<'a> {
    pub(crate) key: Cow<'a, str>,
    /// `None`: the row names no tenant (the default tenant applies).
    pub(crate) tenant: Option<Cow<'a, str>>,
    pub(crate) size: Option<u64>,
    pub(crate) created: Option<i64>,
    pub(crate) modified: Option<i64>,
    pub(crate) content_type: Option<Cow<'a, str>>,
    pub(crate) storage_class: StorageClass,
    pub(crate) owner: Option<Cow<'a, str>>,
    pub(crate) legal_hold: bool,
    pub(crate) retain_until: Option<i64>,
    pub(crate) live_references: u32,
    pub(crate) cohort: Option<Cow<'a, str>>,
}

impl RowFacts<'_> {
    /// The row as an owned [`InventoryRow`].
    pub(crate) fn into_row(self, default_tenant: &str) -> InventoryRow {
        let owned = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned);
        let record = ObjectRecord {
            key: self.key.into_owned(),
            tenant: owned(self.tenant).unwrap_or_else(|| default_tenant.to_owned()),
            size: self.size,
            created: self.created,
            modified: self.modified,
            content_type: owned(self.content_type),
            storage_class: self.storage_class,
            owner: owned(self.owner),
            legal_hold: self.legal_hold,
            retain_until: self.retain_until,
            live_references: self.live_references,
            ..ObjectRecord::default()
        };
        InventoryRow {
            record,
            cohort: owned(self.cohort),
        }
    }
}

fn trimmed(v: Cow<'_, str>) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    }
}

fn cell_bool(field: &str, cell: Cell<'_>) -> Result<bool, LineError> {
    match cell {
        Cell::Int(0) | Cell::UInt(0) => Ok(false),
        Cell::Int(1) | Cell::UInt(1) => Ok(true),
        Cell::Text(t) => parse_bool(field, &t),
        other => Err(LineError::new(format!("bad {field} {:?}", other.text()))),
    }
}

/// Builds a row from its cells. `Ok(None)`: a valid row that is not a current object (a delete marker or a
/// noncurrent version). `decode_keys`: keys are URL-encoded (S3 Inventory CSV; `+` is a space).
pub(crate) fn row_from<'a>(
    mut get: impl FnMut(Field) -> Option<Cell<'a>>,
    decode_keys: bool,
) -> Result<Option<RowFacts<'a>>, LineError> {
    // A key is taken as written (a key of spaces is a valid S3 key); other cells that are blank are absent.
    let key = get(Field::Key)
        .map(Cell::text)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| LineError::new("empty key"))?;
    let mut cell = |f: Field| get(f).and_then(Cell::non_blank);
    if cell(Field::IsDeleteMarker)
        .map(|v| cell_bool("is_delete_marker", v))
        .transpose()?
        == Some(true)
        || cell(Field::IsLatest).map(|v| cell_bool("is_latest", v)).transpose()? == Some(false)
    {
        return Ok(None);
    }
    let key = if decode_keys {
        Cow::Owned(form_decode(&key))
    } else {
        key
    };
    let time = |name: &str, v: Option<Cell<'a>>| -> Result<Option<i64>, LineError> {
        v.map(|v| {
            v.number(|t| parse_time(t).ok())
                .map_err(|t| LineError::new(format!("bad {name} {t:?}")))
        })
        .transpose()
    };
    let size = cell(Field::Size)
        .map(|v| {
            v.number(parse_u64)
                .map_err(|t| LineError::new(format!("bad size {t:?}")))
        })
        .transpose()?;
    let created = time("created", cell(Field::Created))?;
    let modified = time("modified", cell(Field::Modified))?;
    let retain_until = time("retain_until", cell(Field::RetainUntil))?;
    let legal_hold = match cell(Field::LegalHold) {
        Some(v) => cell_bool("legal_hold", v)?,
        None => false,
    };
    let live_references = match cell(Field::LiveReferences) {
        Some(v) => v
            .number(|t| t.parse::<u32>().ok())
            .map_err(|t| LineError::new(format!("bad live_references {t:?}")))?,
        None => 0,
    };
    let mut text = |f: Field| cell(f).map(|v| trimmed(v.text()));
    Ok(Some(RowFacts {
        key,
        tenant: text(Field::Tenant),
        size,
        created,
        modified,
        content_type: text(Field::ContentType),
        storage_class: text(Field::StorageClass).map_or(StorageClass::Unspecified, |v| StorageClass::from_s3_name(&v)),
        owner: text(Field::Owner),
        legal_hold,
        retain_until,
        live_references,
        cohort: text(Field::Cohort),
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
