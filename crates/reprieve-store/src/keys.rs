//! Key layout. Everything lives in one sled tree so that one request is one atomic `Batch`:
//!
//! | prefix | key                                                   | value                   |
//! |--------|-------------------------------------------------------|-------------------------|
//! | `V`    | verdict id                                            | `AuditRecord` (binary)  |
//! | `K`    | tenant, key, scored_at, verdict id                    | empty                   |
//! | `T`    | scored_at, verdict id                                 | empty                   |
//! | `A`    | action event id                                       | `StoredAction` (JSON)   |
//! | `B`    | tenant, key, action at, action event id               | action kind code        |
//! | `R`    | restore event id                                      | `StoredRestore` (JSON)  |
//! | `S`    | tenant, key, restore at, restore event id             | empty                   |
//! | `M`    | action event id, restore event id                     | empty (the match)       |
//! | `C`    | model version, tenant, prefix                         | `BreakerState` (JSON)   |
//! | `E`    | at, sequence                                          | `BreakerEvent` (JSON)   |
//! | `Z`    | meta name                                             | meta value              |
//!
//! Strings inside composite keys are length-prefixed (u32 big-endian) so no string is a prefix of another's key;
//! times are big-endian with the sign bit flipped so that byte order is time order.

pub(crate) const VERDICT: u8 = b'V';
pub(crate) const VERDICT_BY_KEY: u8 = b'K';
pub(crate) const VERDICT_BY_TIME: u8 = b'T';
pub(crate) const ACTION: u8 = b'A';
pub(crate) const ACTION_BY_KEY: u8 = b'B';
pub(crate) const RESTORE: u8 = b'R';
pub(crate) const RESTORE_BY_KEY: u8 = b'S';
pub(crate) const MATCH: u8 = b'M';
pub(crate) const SCOPE: u8 = b'C';
pub(crate) const EVENT: u8 = b'E';
pub(crate) const META: u8 = b'Z';

pub(crate) fn ts(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads a length-prefixed string at `*pos`, advancing it.
pub(crate) fn get_str(bytes: &[u8], pos: &mut usize) -> Option<String> {
    let len = u32::from_be_bytes(bytes.get(*pos..*pos + 4)?.try_into().ok()?) as usize;
    let s = bytes.get(*pos + 4..*pos + 4 + len)?;
    *pos += 4 + len;
    String::from_utf8(s.to_vec()).ok()
}

pub(crate) fn simple(ns: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(ns);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `ns`, tenant, key: the prefix of a per-object index.
pub(crate) fn object_prefix(ns: u8, tenant: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + tenant.len() + key.len() + 40);
    k.push(ns);
    put_str(&mut k, tenant);
    put_str(&mut k, key);
    k
}

/// `ns`, tenant, key, time, id.
pub(crate) fn object_at(ns: u8, tenant: &str, key: &str, at: i64, id: &str) -> Vec<u8> {
    let mut k = object_prefix(ns, tenant, key);
    k.extend_from_slice(&ts(at));
    k.extend_from_slice(id.as_bytes());
    k
}

/// The trailing id of an `object_at` key whose prefix is `prefix_len` bytes long.
pub(crate) fn object_at_id(k: &[u8], prefix_len: usize) -> String {
    String::from_utf8_lossy(k.get(prefix_len + 8..).unwrap_or_default()).into_owned()
}

pub(crate) fn time_key(at: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + id.len());
    k.push(VERDICT_BY_TIME);
    k.extend_from_slice(&ts(at));
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn match_prefix(action_id: &str) -> Vec<u8> {
    let mut k = vec![MATCH];
    put_str(&mut k, action_id);
    k
}

pub(crate) fn match_key(action_id: &str, restore_id: &str) -> Vec<u8> {
    let mut k = match_prefix(action_id);
    k.extend_from_slice(restore_id.as_bytes());
    k
}

pub(crate) fn scope_key(model_version: &str, tenant: &str, prefix: &str) -> Vec<u8> {
    let mut k = vec![SCOPE];
    put_str(&mut k, model_version);
    put_str(&mut k, tenant);
    put_str(&mut k, prefix);
    k
}

/// The smallest key greater than every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_is_byte_order() {
        let times = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in times.windows(2) {
            assert!(ts(w[0]) < ts(w[1]));
        }
    }

    #[test]
    fn strings_round_trip_and_do_not_collide() {
        let a = object_prefix(ACTION_BY_KEY, "t", "ab");
        let b = object_prefix(ACTION_BY_KEY, "ta", "b");
        assert!(!a.starts_with(&b) && !b.starts_with(&a));
        let mut pos = 1;
        assert_eq!(get_str(&a, &mut pos).as_deref(), Some("t"));
        assert_eq!(get_str(&a, &mut pos).as_deref(), Some("ab"));
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    }
}
