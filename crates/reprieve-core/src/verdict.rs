//! The verdict: what Reprieve answers for one object, identical whichever front door asked.

use serde::{Deserialize, Serialize};

use crate::hash::Fnv128;
use crate::policy::{ReasonCode, VerdictClass};
use crate::time::UnixSeconds;

/// One feature's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
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

/// The stable id of the verdict for (`tenant`, `key`) at `at` by `model_version`: 32 hex digits.
pub fn verdict_id(tenant: &str, key: &str, at: UnixSeconds, model_version: &str) -> String {
    let mut h = Fnv128::new();
    for part in [
        tenant.as_bytes(),
        key.as_bytes(),
        &at.to_le_bytes(),
        model_version.as_bytes(),
    ] {
        h.write(&(part.len() as u64).to_le_bytes());
        h.write(part);
    }
    // 32 lower-case hex digits, most significant first (as `{:032x}` writes them).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    for byte in h.finish().to_be_bytes() {
        id.push(char::from(DIGITS[usize::from(byte >> 4)]));
        id.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    id
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
}
