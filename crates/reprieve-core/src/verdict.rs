//! The verdict: what Reprieve answers for one object, identical whichever front door asked.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::hash::{Fnv128, Fnv128Suffix};
use crate::policy::{ReasonCode, VerdictClass};
use crate::time::UnixSeconds;

/// One feature's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The feature's name: borrowed from the schema when a model computed it, owned when it was read back.
    pub feature: Cow<'static, str>,
    /// The feature's value for this object.
    pub value: f64,
    /// Its signed contribution to the log-odds of reuse.
    pub contribution: f64,
}

/// Reprieve's answer for one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub verdict_id: String,
    pub tenant: String,
    pub key: String,
    pub class: VerdictClass,
    /// Calibrated P(read again within the model's horizon).
    pub probability: f64,
    pub reasons: Vec<ReasonCode>,
    pub contributions: Vec<Contribution>,
    pub model_version: String,
    pub scored_at: UnixSeconds,
}

/// The stable id of the verdict for (`tenant`, `key`) at `at` by `model_version`: 32 hex digits, the FNV-128 of
/// each part's length (8 bytes, little-endian) and bytes, in that order.
pub fn verdict_id(tenant: &str, key: &str, at: UnixSeconds, model_version: &str) -> String {
    let hash = ID_PARTS.with_borrow_mut(|parts| parts.hash(tenant, key, at, model_version));
    // 32 lower-case hex digits, most significant first (as `{:032x}` writes them).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    for byte in hash.to_be_bytes() {
        id.push(char::from(DIGITS[usize::from(byte >> 4)]));
        id.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    id
}

fn write_part(h: &mut Fnv128, part: &[u8]) {
    h.write(&(part.len() as u64).to_le_bytes());
    h.write(part);
}

/// How many ids in a row with the same scoring time and model version before their common end is precomputed
/// (which costs about as much as writing it out 256 times).
const SUFFIX_AFTER: u32 = 256;

thread_local! {
    static ID_PARTS: std::cell::RefCell<IdParts> = std::cell::RefCell::new(IdParts::new());
}

/// What consecutive ids on one thread share: the state after the last tenant, and, once the same scoring time and
/// model version have repeated [`SUFFIX_AFTER`] times, their parts as one [`Fnv128Suffix`]. A batch scores
/// millions of objects of a few tenants at one time with one model. The hash is the same with or without them.
struct IdParts {
    tenant: String,
    after_tenant: Fnv128,
    at: UnixSeconds,
    version: String,
    repeats: u32,
    suffix: Option<Fnv128Suffix>,
}

impl IdParts {
    fn new() -> Self {
        let mut after_tenant = Fnv128::new();
        write_part(&mut after_tenant, b"");
        Self {
            tenant: String::new(),
            after_tenant,
            at: 0,
            version: String::new(),
            repeats: 0,
            suffix: None,
        }
    }

    fn hash(&mut self, tenant: &str, key: &str, at: UnixSeconds, version: &str) -> u128 {
        if self.tenant != tenant {
            self.tenant.clear();
            self.tenant.push_str(tenant);
            self.after_tenant = Fnv128::new();
            write_part(&mut self.after_tenant, tenant.as_bytes());
        }
        let mut h = self.after_tenant;
        write_part(&mut h, key.as_bytes());
        if self.at != at || self.version != version {
            self.at = at;
            self.version.clear();
            self.version.push_str(version);
            self.repeats = 0;
            self.suffix = None;
        } else if self.suffix.is_none() {
            self.repeats += 1;
            if self.repeats >= SUFFIX_AFTER {
                let mut bytes = Vec::with_capacity(24 + version.len());
                for part in [&at.to_le_bytes()[..], version.as_bytes()] {
                    bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
                    bytes.extend_from_slice(part);
                }
                self.suffix = Some(Fnv128Suffix::new(&bytes));
            }
        }
        match &self.suffix {
            Some(suffix) => suffix.apply(&mut h),
            None => {
                write_part(&mut h, &at.to_le_bytes());
                write_part(&mut h, version.as_bytes());
            }
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = verdict_id("t", "k", 1, "m");
        assert_eq!(a, verdict_id("t", "k", 1, "m"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, verdict_id("t", "k", 2, "m"));
        assert_ne!(verdict_id("tk", "", 1, "m"), verdict_id("t", "k", 1, "m"));
        // The same digits `{:032x}` gives.
        let mut h = Fnv128::new();
        for part in [b"t".as_slice(), b"k", &1i64.to_le_bytes(), b"m"] {
            h.write(&(part.len() as u64).to_le_bytes());
            h.write(part);
        }
        assert_eq!(a, format!("{:032x}", h.finish()));
    }

    /// The id by its definition, byte by byte.
    fn textbook(tenant: &str, key: &str, at: UnixSeconds, version: &str) -> String {
        let mut h = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58du128;
        for part in [tenant.as_bytes(), key.as_bytes(), &at.to_le_bytes(), version.as_bytes()] {
            for &b in (part.len() as u64).to_le_bytes().iter().chain(part) {
                h = (h ^ u128::from(b)).wrapping_mul((1 << 88) + 0x13b);
            }
        }
        format!("{h:032x}")
    }

    #[test]
    fn ids_stay_the_definition_through_runs_of_one_time_and_model() {
        // Long runs (the common end precomputed), short runs, and tenants, times and versions changing inside them.
        let mut calls = Vec::new();
        for run in 0..6i64 {
            let len = [700, 3, 256, 257, 1, 1000][run as usize];
            for i in 0..len {
                let tenant = ["", "acme", "acme-eu", "a"][(i / 97 % 4) as usize];
                let at = 1_700_000_000 + run * (run % 2) * 86_400;
                let version = if run == 4 { "" } else { "default-437438b5" };
                calls.push((tenant, format!("img/{run}/{i}.png"), at, version));
            }
        }
        for (tenant, key, at, version) in &calls {
            assert_eq!(
                verdict_id(tenant, key, *at, version),
                textbook(tenant, key, *at, version)
            );
        }
    }
}
