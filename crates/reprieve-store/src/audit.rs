//! How an audited verdict is stored. The feature vector (79 doubles) dominates the record, and printing doubles as
//! JSON text is most of the cost of auditing a verdict, so a record is framed as
//! `0x01 | u32 BE head length | JSON head (verdict, schema hash, source) | features as f64 little-endian`.
//! Records written as plain JSON (`{...}`, the first format) are still read.
//!
//! [`EncodedVerdict::new`] does the encoding, so callers can do it in parallel and outside the store's writer lock.

use reprieve_core::{Verdict, VerdictClass};
use serde::{Deserialize, Serialize};
use sled::IVec;

use crate::keys::{VERDICT, VERDICT_BY_KEY, object_at, simple, time_key};
use crate::types::{AuditRecord, StoreError};

const FRAMED: u8 = 0x01;

#[derive(Serialize)]
struct HeadRef<'a> {
    verdict: &'a Verdict,
    feature_names_hash: &'a str,
    source: &'a str,
}

#[derive(Deserialize)]
struct Head {
    verdict: Verdict,
    feature_names_hash: String,
    source: String,
}

/// The part of a head that actions need: the class and the model version.
#[derive(Deserialize)]
struct VerdictKind {
    class: VerdictClass,
    model_version: String,
}

#[derive(Deserialize)]
struct KindHead {
    verdict: VerdictKind,
}

/// An audit record ready to be written: validated, encoded, its keys computed, all in shared buffers (cloning one
/// copies no bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedVerdict {
    pub(crate) id: String,
    pub(crate) verdict_key: IVec,
    pub(crate) by_key: IVec,
    pub(crate) by_time: IVec,
    pub(crate) value: IVec,
}

impl EncodedVerdict {
    /// Validates and encodes `record`. A verdict without an id, or with a non-finite probability or feature, is
    /// refused.
    pub fn new(record: &AuditRecord) -> Result<Self, StoreError> {
        let v = &record.verdict;
        if v.verdict_id.is_empty() {
            return Err(StoreError::Invalid("a verdict without verdict_id".into()));
        }
        if !v.probability.is_finite() || record.features.iter().any(|f| !f.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "verdict {}: non-finite probability or feature",
                v.verdict_id
            )));
        }
        let head = serde_json::to_vec(&HeadRef {
            verdict: v,
            feature_names_hash: &record.feature_names_hash,
            source: &record.source,
        })
        .map_err(|e| StoreError::Invalid(format!("cannot encode: {e}")))?;
        let head_len = u32::try_from(head.len())
            .map_err(|_| StoreError::Invalid(format!("verdict {}: record too large", v.verdict_id)))?;
        let mut value = Vec::with_capacity(5 + head.len() + 8 * record.features.len());
        value.push(FRAMED);
        value.extend_from_slice(&head_len.to_be_bytes());
        value.extend_from_slice(&head);
        for f in &record.features {
            value.extend_from_slice(&f.to_le_bytes());
        }
        Ok(Self {
            id: v.verdict_id.clone(),
            verdict_key: simple(VERDICT, &v.verdict_id).into(),
            by_key: object_at(VERDICT_BY_KEY, &v.tenant, &v.key, v.scored_at, &v.verdict_id).into(),
            by_time: time_key(v.scored_at, &v.verdict_id).into(),
            value: value.into(),
        })
    }

    pub fn verdict_id(&self) -> &str {
        &self.id
    }

    /// Bytes it takes in the store (value only).
    pub fn encoded_len(&self) -> usize {
        self.value.len()
    }
}

fn corrupt(key: &[u8], detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: detail.into(),
    }
}

/// Splits a framed value into its JSON head and its feature bytes.
fn split<'a>(key: &[u8], bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), StoreError> {
    let len = bytes
        .get(1..5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_be_bytes(b) as usize)
        .ok_or_else(|| corrupt(key, "truncated audit record"))?;
    let head = bytes
        .get(5..5 + len)
        .ok_or_else(|| corrupt(key, "truncated audit record head"))?;
    let features = &bytes[5 + len..];
    if !features.len().is_multiple_of(8) {
        return Err(corrupt(key, "audit record features are not whole doubles"));
    }
    Ok((head, features))
}

/// Decodes a stored audit record (either format).
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<AuditRecord, StoreError> {
    if bytes.first() != Some(&FRAMED) {
        return serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()));
    }
    let (head, features) = split(key, bytes)?;
    let head: Head = serde_json::from_slice(head).map_err(|e| corrupt(key, e.to_string()))?;
    Ok(AuditRecord {
        verdict: head.verdict,
        features: features
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        feature_names_hash: head.feature_names_hash,
        source: head.source,
    })
}

/// The class and model version of a stored audit record, without decoding its features.
pub(crate) fn decode_kind(key: &[u8], bytes: &[u8]) -> Result<(VerdictClass, String), StoreError> {
    let head = if bytes.first() == Some(&FRAMED) {
        split(key, bytes)?.0
    } else {
        bytes
    };
    let h: KindHead = serde_json::from_slice(head).map_err(|e| corrupt(key, e.to_string()))?;
    Ok((h.verdict.class, h.verdict.model_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            verdict: Verdict {
                verdict_id: "v".into(),
                tenant: "t".into(),
                key: "img/a.png".into(),
                class: VerdictClass::Archive,
                probability: 0.125,
                reasons: vec![],
                contributions: vec![],
                model_version: "m".into(),
                scored_at: -5,
            },
            features: vec![0.1, -2.5, 1e300, 0.0],
            feature_names_hash: "h".into(),
            source: "grpc".into(),
        }
    }

    #[test]
    fn both_formats_decode() {
        let r = record();
        let framed = EncodedVerdict::new(&r).expect("encodes");
        assert_eq!(decode(b"Vv", &framed.value).expect("framed"), r);
        let json = serde_json::to_vec(&r).expect("json");
        assert_eq!(decode(b"Vv", &json).expect("json"), r);
        for bytes in [&framed.value[..], &json[..]] {
            assert_eq!(
                decode_kind(b"Vv", bytes).expect("kind"),
                (VerdictClass::Archive, "m".to_string())
            );
        }
        // Truncations are errors, never panics.
        for n in 0..framed.value.len() {
            let _ = decode(b"Vv", &framed.value[..n]);
        }
        assert!(decode(b"Vv", &framed.value[..framed.value.len() - 3]).is_err());
    }

    #[test]
    fn non_finite_values_are_refused() {
        let mut r = record();
        r.features[1] = f64::NAN;
        assert!(EncodedVerdict::new(&r).is_err());
        let mut r = record();
        r.verdict.verdict_id.clear();
        assert!(EncodedVerdict::new(&r).is_err());
    }
}
