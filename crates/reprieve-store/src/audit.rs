//! How an audited verdict is stored. Three formats are read; new records are written in the third:
//!
//! 1. plain JSON (`{...}`): the first format, the whole [`AuditRecord`];
//! 2. framed: `0x01 | u32 BE head length | JSON head (verdict, schema hash, source) | features as f64 LE`;
//! 3. compact binary, written since the JSON head was found to be most of the cost of auditing a verdict:
//!
//! ```text
//! 0x02
//! str verdict_id | str tenant | str key | str class | f64 probability
//! u8 reasons     | str reason ...
//! u8 contribs    | (str feature, f64 value, f64 contribution) ...
//! str model_version | i64 scored_at | str feature_names_hash | str source
//! f64 features ... (to the end of the value)
//! ```
//!
//! where `str` is a u32 little-endian byte length and UTF-8 bytes, numbers are little-endian, and class and reason
//! codes are their wire names (`DELETE_CANDIDATE`, `UNLIKELY_REUSED`): names, not positions, so a later reordering
//! of the enums cannot change what an old record means. Every double (probability, contributions, features) is
//! stored as its exact bits.
//!
//! [`EncodedVerdict::from_parts`] does the encoding, so callers can do it in parallel and outside the store's
//! writer lock, without first copying the verdict's features into an [`AuditRecord`].

use reprieve_core::{Contribution, ReasonCode, Verdict, VerdictClass};
use serde::Deserialize;
use sled::IVec;

use crate::keys::{VERDICT, VERDICT_BY_KEY, object_at, simple, time_key};
use crate::types::{AuditRecord, StoreError};

const FRAMED: u8 = 0x01;
const COMPACT: u8 = 0x02;

#[cfg(test)]
#[derive(serde::Serialize)]
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
    /// Set by [`crate::Store::precheck`]: whether the record was in the store, and when.
    pub(crate) checked: Option<Checked>,
}

/// What [`crate::Store::precheck`] found, and when: after how many verdict commits (`RecentVerdicts::done`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    Absent(u64),
    Present(u64),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl EncodedVerdict {
    /// Validates and encodes `record`. A verdict without an id, or with a non-finite probability or feature, is
    /// refused.
    pub fn new(record: &AuditRecord) -> Result<Self, StoreError> {
        Self::from_parts(
            &record.verdict,
            &record.features,
            &record.feature_names_hash,
            &record.source,
        )
    }

    /// Validates and encodes the audit record of `verdict` with the feature vector the model saw (`features`, in
    /// the model's order, of schema `feature_names_hash`), issued by `source` (`grpc`, `batch`): what
    /// [`EncodedVerdict::new`] does, without an [`AuditRecord`] to build first.
    pub fn from_parts(
        verdict: &Verdict,
        features: &[f64],
        feature_names_hash: &str,
        source: &str,
    ) -> Result<Self, StoreError> {
        let v = verdict;
        if v.verdict_id.is_empty() {
            return Err(StoreError::Invalid("a verdict without verdict_id".into()));
        }
        if !v.probability.is_finite() || features.iter().any(|f| !f.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "verdict {}: non-finite probability or feature",
                v.verdict_id
            )));
        }
        let too_large = || StoreError::Invalid(format!("verdict {}: record too large", v.verdict_id));
        let strings = v.verdict_id.len()
            + v.tenant.len()
            + v.key.len()
            + v.model_version.len()
            + feature_names_hash.len()
            + source.len();
        if strings > u32::MAX as usize / 2
            || v.reasons.len() > u8::MAX as usize
            || v.contributions.len() > u8::MAX as usize
        {
            return Err(too_large());
        }
        let contributions: usize = v.contributions.iter().map(|c| 20 + c.feature.len()).sum();
        let mut value = Vec::with_capacity(
            64 + strings + 24 * v.reasons.len() + contributions + 8 * features.len() + v.class.as_str().len(),
        );
        value.push(COMPACT);
        put_str(&mut value, &v.verdict_id);
        put_str(&mut value, &v.tenant);
        put_str(&mut value, &v.key);
        put_str(&mut value, v.class.as_str());
        value.extend_from_slice(&v.probability.to_le_bytes());
        value.push(v.reasons.len() as u8);
        for r in &v.reasons {
            put_str(&mut value, r.as_str());
        }
        value.push(v.contributions.len() as u8);
        for c in &v.contributions {
            put_str(&mut value, &c.feature);
            value.extend_from_slice(&c.value.to_le_bytes());
            value.extend_from_slice(&c.contribution.to_le_bytes());
        }
        put_str(&mut value, &v.model_version);
        value.extend_from_slice(&v.scored_at.to_le_bytes());
        put_str(&mut value, feature_names_hash);
        put_str(&mut value, source);
        for f in features {
            value.extend_from_slice(&f.to_le_bytes());
        }
        Ok(Self {
            id: v.verdict_id.clone(),
            verdict_key: simple(VERDICT, &v.verdict_id).into(),
            by_key: object_at(VERDICT_BY_KEY, &v.tenant, &v.key, v.scored_at, &v.verdict_id).into(),
            by_time: time_key(v.scored_at, &v.verdict_id).into(),
            value: value.into(),
            checked: None,
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

/// A cursor over a compact record; every read is bounds-checked (a truncated record is an error, never a panic).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8).and_then(|b| b.try_into().ok())
    }

    fn f64(&mut self) -> Option<f64> {
        self.eight().map(f64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.eight().map(i64::from_le_bytes)
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

/// The fields of a compact record up to the class (the reader then stands at the probability).
fn compact_ids<'a>(r: &mut Reader<'a>) -> Option<(&'a str, &'a str, &'a str, VerdictClass)> {
    if r.u8()? != COMPACT {
        return None;
    }
    let (id, tenant, key) = (r.str()?, r.str()?, r.str()?);
    let name = r.str()?;
    let class = VerdictClass::ALL.into_iter().find(|c| c.as_str() == name)?;
    Some((id, tenant, key, class))
}

fn reason(name: &str) -> Option<ReasonCode> {
    ReasonCode::ALL.into_iter().find(|c| c.as_str() == name)
}

fn decode_compact(bytes: &[u8]) -> Option<AuditRecord> {
    let mut r = Reader { bytes, pos: 0 };
    let (id, tenant, key, class) = compact_ids(&mut r)?;
    let probability = r.f64()?;
    let reasons = (0..r.u8()?).map(|_| reason(r.str()?)).collect::<Option<Vec<_>>>()?;
    let contributions = (0..r.u8()?)
        .map(|_| {
            Some(Contribution {
                feature: r.str()?.to_string().into(),
                value: r.f64()?,
                contribution: r.f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let model_version = r.str()?.to_string();
    let scored_at = r.i64()?;
    let feature_names_hash = r.str()?.to_string();
    let source = r.str()?.to_string();
    let rest = r.rest();
    if !rest.len().is_multiple_of(8) {
        return None;
    }
    Some(AuditRecord {
        verdict: Verdict {
            verdict_id: id.to_string(),
            tenant: tenant.to_string(),
            key: key.to_string(),
            class,
            probability,
            reasons,
            contributions,
            model_version,
            scored_at,
        },
        features: rest
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        feature_names_hash,
        source,
    })
}

fn decode_compact_kind(bytes: &[u8]) -> Option<(VerdictClass, String)> {
    let mut r = Reader { bytes, pos: 0 };
    let (_, _, _, class) = compact_ids(&mut r)?;
    r.f64()?;
    for _ in 0..r.u8()? {
        r.str()?;
    }
    for _ in 0..r.u8()? {
        r.str()?;
        r.take(16)?;
    }
    Some((class, r.str()?.to_string()))
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

/// Decodes a stored audit record (any of the three formats).
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<AuditRecord, StoreError> {
    if bytes.first() == Some(&COMPACT) {
        return decode_compact(bytes).ok_or_else(|| corrupt(key, "truncated or malformed audit record"));
    }
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
    if bytes.first() == Some(&COMPACT) {
        return decode_compact_kind(bytes).ok_or_else(|| corrupt(key, "truncated or malformed audit record"));
    }
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

    const RECENT_COMMITS_FOR_TESTS: usize = crate::RECENT_COMMITS;

    /// The test record with verdict id `id`, encoded.
    fn encoded(id: &str) -> EncodedVerdict {
        let mut r = record();
        r.verdict.verdict_id = id.into();
        EncodedVerdict::new(&r).expect("encodes")
    }

    /// Commits one request of `records` as its own group: (accepted, duplicates).
    fn write(store: &crate::Store, records: &[EncodedVerdict], durable: bool) -> (u32, u32) {
        let mut answers = store
            .write_group(&[crate::WriteRequest::Verdicts(records)], durable)
            .expect("commit");
        let ack = answers.pop().expect("one answer").expect("accepted");
        (ack.accepted, ack.duplicates)
    }

    fn record() -> AuditRecord {
        AuditRecord {
            verdict: Verdict {
                verdict_id: "v".into(),
                tenant: "t".into(),
                key: "img/a.png".into(),
                class: VerdictClass::Archive,
                probability: 0.125,
                reasons: vec![ReasonCode::UnlikelyReused, ReasonCode::OutOfDomain],
                contributions: vec![
                    Contribution {
                        feature: "age_days_log".into(),
                        value: 0.1 + 0.2,
                        contribution: -1.0 / 3.0,
                    },
                    Contribution {
                        feature: "never_read".into(),
                        value: 1.0,
                        contribution: f64::MIN_POSITIVE,
                    },
                ],
                model_version: "m".into(),
                scored_at: -5,
            },
            features: vec![0.1, -2.5, 1e300, 0.0, -0.0, 5e-324],
            feature_names_hash: "h".into(),
            source: "grpc".into(),
        }
    }

    /// A record in the second (framed, JSON head) format, as stores written before the compact one hold.
    fn framed(r: &AuditRecord) -> Vec<u8> {
        let head = serde_json::to_vec(&HeadRef {
            verdict: &r.verdict,
            feature_names_hash: &r.feature_names_hash,
            source: &r.source,
        })
        .expect("head");
        let mut value = vec![FRAMED];
        value.extend_from_slice(&(head.len() as u32).to_be_bytes());
        value.extend_from_slice(&head);
        for f in &r.features {
            value.extend_from_slice(&f.to_le_bytes());
        }
        value
    }

    fn bits(r: &AuditRecord) -> Vec<u64> {
        let v = &r.verdict;
        let mut out: Vec<u64> = r.features.iter().map(|f| f.to_bits()).collect();
        out.push(v.probability.to_bits());
        for c in &v.contributions {
            out.extend([c.value.to_bits(), c.contribution.to_bits()]);
        }
        out
    }

    #[test]
    fn all_formats_decode() {
        let r = record();
        let compact = EncodedVerdict::new(&r).expect("encodes");
        assert_eq!(compact.value.first(), Some(&COMPACT));
        assert_eq!(
            EncodedVerdict::from_parts(&r.verdict, &r.features, "h", "grpc").expect("parts"),
            compact
        );
        let framed = framed(&r);
        let json = serde_json::to_vec(&r).expect("json");
        for bytes in [&compact.value[..], &framed[..], &json[..]] {
            let back = decode(b"Vv", bytes).expect("decodes");
            assert_eq!(back, r);
            assert_eq!(bits(&back), bits(&r), "doubles are bit-exact");
            assert_eq!(
                decode_kind(b"Vv", bytes).expect("kind"),
                (VerdictClass::Archive, "m".to_string())
            );
        }
        // Truncations are errors, never panics.
        for bytes in [&compact.value[..], &framed[..]] {
            for n in 0..bytes.len() {
                let _ = decode(b"Vv", &bytes[..n]);
                let _ = decode_kind(b"Vv", &bytes[..n]);
            }
            assert!(decode(b"Vv", &bytes[..bytes.len() - 3]).is_err());
        }
        // Smaller than the framed record (whose JSON head repeats every name and prints every double).
        assert!(
            compact.value.len() < framed.len(),
            "{} >= {}",
            compact.value.len(),
            framed.len()
        );
    }

    #[test]
    fn an_empty_verdict_round_trips() {
        let mut r = record();
        r.verdict.reasons.clear();
        r.verdict.contributions.clear();
        r.verdict.tenant.clear();
        r.features.clear();
        let e = EncodedVerdict::new(&r).expect("encodes");
        assert_eq!(decode(b"Vv", &e.value).expect("decodes"), r);
    }

    /// A store holding records in all three formats (as one that was written by successive versions): every query
    /// reads each of them, actions resolve their class, and pruning removes them with their indexes.
    #[test]
    fn a_store_with_records_of_every_format_reads_them_all() {
        use crate::{ActionEvent, ActionKind, PrecisionFilter, Store, StoreConfig};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), StoreConfig::default()).expect("open");
        let mut records = Vec::new();
        for (i, id) in ["json", "framed", "compact"].into_iter().enumerate() {
            let mut r = record();
            r.verdict.verdict_id = id.into();
            r.verdict.scored_at = 100 + i as i64;
            records.push(r);
        }
        let old = |r: &AuditRecord, value: Vec<u8>| {
            let e = EncodedVerdict::new(r).expect("encodes");
            store.db.insert(&e.verdict_key, value).expect("insert");
            store.db.insert(&e.by_key, IVec::default()).expect("insert");
            store.db.insert(&e.by_time, IVec::default()).expect("insert");
        };
        old(&records[0], serde_json::to_vec(&records[0]).expect("json"));
        old(&records[1], framed(&records[1]));
        let ack = store.record_verdicts(&records[2..]).expect("written");
        assert_eq!(ack.accepted, 1);
        // Re-recording any of them is a duplicate, whatever format it is stored in.
        assert_eq!(store.record_verdicts(&records).expect("written").duplicates, 3);
        for r in &records {
            assert_eq!(store.verdict(&r.verdict.verdict_id).expect("read").as_ref(), Some(r));
        }
        let newest_first: Vec<_> = records.iter().rev().cloned().collect();
        assert_eq!(
            store.verdicts_for_key("t", "img/a.png", 10).expect("by key"),
            newest_first
        );
        assert_eq!(store.verdicts_between(0, 1000, 10).expect("by time"), records);
        let actions: Vec<_> = records
            .iter()
            .map(|r| ActionEvent {
                event_id: format!("a-{}", r.verdict.verdict_id),
                verdict_id: r.verdict.verdict_id.clone(),
                tenant: "t".into(),
                key: "img/a.png".into(),
                kind: ActionKind::Archived,
                at: 200,
            })
            .collect();
        let ack = store.record_actions(&actions).expect("actions");
        assert_eq!((ack.accepted, ack.unknown_verdicts), (3, 0));
        let rows = store.precision(&PrecisionFilter::default()).expect("precision");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].class, rows[0].model_version.as_str(), rows[0].actions),
            (Some(VerdictClass::Archive), "m", 3)
        );
        let acted: Vec<_> = store.acted_verdicts(i64::MAX).expect("acted").collect();
        assert_eq!(acted.len(), 3);
        // Pruning takes every format with its indexes.
        let pruned = store.prune_audit(i64::MAX / 2).expect("pruned");
        assert_eq!(pruned, 3);
        assert!(store.verdicts_for_key("t", "img/a.png", 10).expect("by key").is_empty());
        assert_eq!(store.db.scan_prefix([crate::keys::VERDICT_BY_KEY]).count(), 0);
    }

    /// Verdicts checked absent before they were queued are still recorded exactly once, whatever was committed
    /// between the check and their staging: in the same group, by the commits since (remembered), or by so many
    /// commits that the store no longer remembers them (looked up again).
    #[test]
    fn prechecked_verdicts_are_recorded_once() {
        use crate::{Store, StoreConfig};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), StoreConfig::default()).expect("open");
        let checked = |ids: &[&str]| {
            let mut out: Vec<_> = ids.iter().map(|id| encoded(id)).collect();
            store.precheck(&mut out).expect("precheck");
            out
        };
        let write = |records: &[EncodedVerdict]| write(&store, records, true);
        // Absent, then present; twice in one request: once.
        let first = checked(&["a", "a"]);
        assert!(first.iter().all(|r| matches!(r.checked, Some(Checked::Absent(_)))));
        assert_eq!(write(&first), (1, 1));
        let again = checked(&["a"]);
        assert!(matches!(again[0].checked, Some(Checked::Present(_))));
        assert_eq!(write(&again), (0, 1));
        // Written by a commit between the check and the staging: remembered.
        let late = checked(&["b"]);
        assert_eq!(write(&[encoded("b")]), (1, 0));
        assert_eq!(write(&late), (0, 1));
        // ... or by a commit the store no longer remembers: looked up again.
        let later = checked(&["c"]);
        assert_eq!(write(&[encoded("c")]), (1, 0));
        for i in 0..RECENT_COMMITS_FOR_TESTS + 1 {
            assert_eq!(write(&[encoded(&format!("x{i}"))]), (1, 0));
        }
        assert_eq!(write(&later), (0, 1));
        // Pruned between the check (present) and the staging: written again, never lost.
        let gone = checked(&["a"]);
        assert_eq!(
            store.prune_audit(i64::MAX / 2).expect("pruned"),
            RECENT_COMMITS_FOR_TESTS as u64 + 4
        );
        assert_eq!(write(&gone), (1, 0));
        assert!(store.verdict("a").expect("read").is_some());
    }

    /// Verdicts looked up before they are encoded: found or not, and on disk only once a flush has followed the
    /// commit that applied them. A group with nothing to write applies no batch.
    #[test]
    fn verdicts_checked_before_encoding_know_whether_they_are_on_disk() {
        use crate::{Store, StoreConfig};
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), StoreConfig::default()).expect("open");
        let write = |records: &[EncodedVerdict], durable: bool| write(&store, records, durable);
        let mut check = store.check_verdicts();
        assert!(!check.present("a").expect("lookup"));
        let mut a = encoded("a");
        check.absent(&mut a);
        assert!(matches!(a.checked, Some(Checked::Absent(_))));
        assert_eq!(check.found(), 0);
        assert!(!check.finish().all_present);
        assert_eq!(write(&[a.clone()], true), (1, 0));
        // Found, and on disk: its commit was flushed.
        let mut check = store.check_verdicts();
        assert!(check.present("a").expect("lookup"));
        assert_eq!(check.found(), 1);
        let found = check.finish();
        assert!(found.all_present && found.durable, "{found:?}");
        // Written without a flush: found, but not known to be on disk until a flush.
        assert_eq!(write(&[encoded("b")], false), (1, 0));
        let mut check = store.check_verdicts();
        assert!(check.present("b").expect("lookup"));
        assert!(!check.finish().durable);
        store.flush().expect("flush");
        let mut check = store.check_verdicts();
        assert!(check.present("b").expect("lookup"));
        assert!(check.finish().durable);
        // Only duplicates: nothing applied, nothing to flush.
        let applied = store.applying.load(Ordering::Acquire);
        assert_eq!(write(&[encoded("a"), encoded("b")], true), (0, 2));
        assert_eq!(store.applying.load(Ordering::Acquire), applied);
        let mut all = [encoded("a"), encoded("b")];
        let found = store.precheck(&mut all).expect("precheck");
        assert!(found.all_present && found.durable, "{found:?}");
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
