//! The inventory's (tenant, key) -> object index lookup, stored compactly: every key in one byte arena with
//! offsets, and an open-addressing hash table of object indices (with a hash tag per slot, so that a probe rarely
//! touches the arena). Lookups borrow the key bytes (from a decoded Parquet column or a log line): no allocation
//! per event.

/// Keys of the inventory by object index, and the hash table over (tenant id, key).
#[derive(Debug)]
pub(crate) struct KeyIndex {
    /// Every key, back to back (a `String`, so that a key is sliced out without checking its UTF-8 again).
    arena: String,
    /// Per object: the end of its key in `arena` (it starts where object `i - 1`'s ends) in the low
    /// [`END_BITS`] bits, its tenant id above them: one cache line holds all a lookup needs besides the bytes.
    ends: Vec<u64>,
    /// Slot: `(hash >> 32) << 32 | (object index + 1)`; 0 is empty.
    slots: Vec<u64>,
}

impl Default for KeyIndex {
    fn default() -> Self {
        Self {
            arena: String::new(),
            ends: Vec::new(),
            slots: vec![0; 1 << 10],
        }
    }
}

/// Keys [`KeyIndex::find_block`] looks up together.
const BLOCK: usize = 64;

/// Bits of an arena offset: keys may take up to 1 TiB in all.
const END_BITS: u32 = 40;
const END_MASK: u64 = (1 << END_BITS) - 1;
/// Most tenants (ids are stored in the bits above an arena offset).
pub(crate) const MAX_TENANTS: u32 = 1 << (64 - END_BITS);

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fast, well-mixed hash of a key's bytes (not the stable hash of `reprieve_core::hash`: this one never leaves
/// the process).
#[inline]
pub(crate) fn hash_key(bytes: &[u8]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ (bytes.len() as u64).wrapping_mul(MUL);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(MUL);
        h ^= h >> 29;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(MUL);
        h ^= h >> 29;
    }
    h
}

/// Builds [`FastHasher`]s: for the batch scorer's in-process maps keyed by text (prefixes, owners, keys not in the
/// inventory), where SipHash's protection against chosen keys costs more than it buys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHash;

/// [`hash_key`] over everything written, chained.
#[derive(Debug)]
pub(crate) struct FastHasher(u64);

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = (self.0.rotate_left(23) ^ hash_key(bytes)).wrapping_mul(MUL);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(MUL);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// A map with [`FastHash`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastHash>;

/// The table hash of a key (by [`hash_key`]) in a tenant.
#[inline]
fn slot_hash(key_hash: u64, tenant: u32) -> u64 {
    // murmur3's 64-bit finaliser over the key hash salted with the tenant.
    let mut h = key_hash ^ u64::from(tenant).wrapping_add(1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl KeyIndex {
    /// Objects indexed.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Where object `i`'s key starts in the arena (where object `i - 1`'s ends).
    #[inline]
    fn key_start(&self, i: usize) -> usize {
        i.checked_sub(1).map_or(0, |p| (self.ends[p] & END_MASK) as usize)
    }

    /// Where object `i`'s key lies in the arena.
    #[inline]
    fn key_range(&self, i: usize) -> std::ops::Range<usize> {
        self.key_start(i)..(self.ends[i] & END_MASK) as usize
    }

    /// Object `i`'s key bytes.
    #[inline]
    pub(crate) fn key_bytes(&self, i: usize) -> &[u8] {
        &self.arena.as_bytes()[self.key_range(i)]
    }

    /// Object `i`'s key. Keys are pushed whole, so both ends are char boundaries: slicing checks only those.
    pub(crate) fn key(&self, i: usize) -> &str {
        self.arena.get(self.key_range(i)).unwrap_or_default()
    }

    pub(crate) fn tenant(&self, i: usize) -> u32 {
        (self.ends[i] >> END_BITS) as u32
    }

    /// Finds `key` in tenant `tenant`, given `key_hash = hash_key(key)`.
    #[inline]
    pub(crate) fn find(&self, tenant: u32, key: &[u8], key_hash: u64) -> Option<u32> {
        let h = slot_hash(key_hash, tenant);
        let tag = h >> 32;
        let mask = self.slots.len() - 1;
        let mut pos = h as usize & mask;
        loop {
            let slot = self.slots[pos];
            if slot == 0 {
                return None;
            }
            if slot >> 32 == tag {
                let i = (slot & 0xffff_ffff) as usize - 1;
                if self.tenant(i) == tenant && self.key_bytes(i) == key {
                    return Some(i as u32);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// [`Self::find`] for many keys at once: `queries[j] = (tenant, key, hash_key(key))`, answers in `out`. The
    /// memory each lookup needs (its first slot, its candidate's offsets, the candidate key's first byte) is read
    /// for all keys before any is compared, so that the cache misses of different keys overlap instead of
    /// following one another.
    pub(crate) fn find_block(&self, queries: &[(u32, &[u8], u64)], out: &mut Vec<Option<u32>>) {
        let mask = self.slots.len() - 1;
        let mut hashes = [0u64; BLOCK];
        let mut first = [0u64; BLOCK];
        let mut candidate = [usize::MAX; BLOCK];
        for chunk in queries.chunks(BLOCK) {
            for ((h, slot), &(tenant, _, key_hash)) in hashes.iter_mut().zip(&mut first).zip(chunk) {
                *h = slot_hash(key_hash, tenant);
                *slot = self.slots[*h as usize & mask];
            }
            for (j, &(tenant, key, _)) in chunk.iter().enumerate() {
                candidate[j] = usize::MAX;
                let slot = first[j];
                if slot != 0 && slot >> 32 == hashes[j] >> 32 {
                    let i = (slot & 0xffff_ffff) as usize - 1;
                    let start = self.key_start(i);
                    // Reading the first byte starts the fetch of the candidate's key.
                    if self.tenant(i) == tenant && self.arena.as_bytes().get(start) == key.first() {
                        candidate[j] = i;
                    }
                }
            }
            for (j, &(tenant, key, key_hash)) in chunk.iter().enumerate() {
                let i = candidate[j];
                out.push(if i != usize::MAX && self.key_bytes(i) == key {
                    Some(i as u32)
                } else if first[j] == 0 {
                    None
                } else {
                    self.find(tenant, key, key_hash)
                });
            }
        }
    }

    /// [`Self::insert_hashed`], hashing the key.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, tenant: u32, key: &str) -> Option<Result<u32, u32>> {
        self.insert_hashed(tenant, key, hash_key(key.as_bytes()))
    }

    /// Adds `key` in `tenant` (below [`MAX_TENANTS`]), given `key_hash = hash_key(key)`, as the next object unless
    /// that (tenant, key) is indexed already: `Some(Ok(index))` of the new object, `Some(Err(index))` of the
    /// existing one; `None` when the keys would exceed the arena's 1 TiB.
    pub(crate) fn insert_hashed(&mut self, tenant: u32, key: &str, key_hash: u64) -> Option<Result<u32, u32>> {
        if let Some(i) = self.find(tenant, key.as_bytes(), key_hash) {
            return Some(Err(i));
        }
        let end = (self.arena.len() + key.len()) as u64;
        if end > END_MASK || tenant >= MAX_TENANTS {
            return None;
        }
        let i = self.ends.len();
        self.arena.push_str(key);
        self.ends.push(u64::from(tenant) << END_BITS | end);
        if (i + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        } else {
            self.place(slot_hash(key_hash, tenant), i);
        }
        Some(Ok(i as u32))
    }

    /// The slot where a probe for `key` in `tenant` starts (`key_hash = hash_key(key)`).
    #[inline]
    fn first_slot(&self, tenant: u32, key_hash: u64) -> u64 {
        self.slots[slot_hash(key_hash, tenant) as usize & (self.slots.len() - 1)]
    }

    /// Reads what probes for `probes = [(tenant, hash_key(key))]` first need: every first slot (into `slots`),
    /// then the start of the key each occupied slot points to. Done for a block of keys before any is looked up or
    /// inserted, it puts their cache misses in flight together instead of one after another.
    pub(crate) fn touch(&self, probes: &[(u32, u64)], slots: &mut Vec<u64>) {
        slots.clear();
        slots.extend(
            probes
                .iter()
                .map(|&(tenant, key_hash)| self.first_slot(tenant, key_hash)),
        );
        let mut sum = 0u64;
        for &slot in slots.iter() {
            if slot != 0 {
                let i = (slot & 0xffff_ffff) as usize - 1;
                sum ^= u64::from(
                    self.arena
                        .as_bytes()
                        .get(self.key_start(i))
                        .copied()
                        .unwrap_or_default(),
                );
            }
        }
        std::hint::black_box(sum);
    }

    fn place(&mut self, h: u64, i: usize) {
        let mask = self.slots.len() - 1;
        let mut pos = h as usize & mask;
        while self.slots[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        self.slots[pos] = (h >> 32) << 32 | (i as u64 + 1);
    }

    /// Doubles the table and re-places every object (including the one just pushed).
    fn grow(&mut self) {
        self.rebuild(self.slots.len() * 2);
    }

    /// Replaces the table by one of `slots` slots (a power of two) and re-places every object.
    fn rebuild(&mut self, slots: usize) {
        self.slots = vec![0; slots];
        for i in 0..self.ends.len() {
            let h = slot_hash(hash_key(self.key_bytes(i)), self.tenant(i));
            self.place(h, i);
        }
    }

    /// Makes room for `objects` more objects whose keys take about `key_bytes` in all, so that the table is not
    /// re-hashed (nor the arena copied) while an inventory of known size is read.
    pub(crate) fn reserve(&mut self, objects: usize, key_bytes: usize) {
        self.arena.reserve(key_bytes);
        self.ends.reserve(objects);
        let wanted = ((self.ends.len() + objects) * 10 / 7 + 1).next_power_of_two();
        if wanted > self.slots.len() {
            self.rebuild(wanted);
        }
    }

    /// Releases spare capacity once the inventory is read.
    pub(crate) fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_holds_and_refuses_duplicates() {
        let mut index = KeyIndex::default();
        for i in 0..5_000u32 {
            assert_eq!(index.insert(i % 3, &format!("k/{i}")), Some(Ok(i)));
        }
        assert_eq!(index.insert(1, "k/4"), Some(Err(4)));
        index.reserve(100_000, 1 << 20);
        assert_eq!(index.insert(1, "k/4"), Some(Err(4)));
        assert_eq!(index.insert(0, "k/4"), Some(Ok(5_000)));
        assert_eq!(index.insert(MAX_TENANTS, "k/new"), None);
        for i in 0..5_000u32 {
            let key = format!("k/{i}");
            assert_eq!(index.find(i % 3, key.as_bytes(), hash_key(key.as_bytes())), Some(i));
            assert_eq!(index.key(i as usize), key);
            assert_eq!(index.tenant(i as usize), i % 3);
        }
        assert_eq!(index.find(2, b"k/4", hash_key(b"k/4")), None);
        assert_eq!(index.find(0, b"", hash_key(b"")), None);
        assert_eq!(index.len(), 5_001);
        let keys: Vec<(u32, String)> = (0..300u32).map(|i| (i % 4, format!("k/{}", i * 7))).collect();
        let queries: Vec<(u32, &[u8], u64)> = keys
            .iter()
            .map(|(t, k)| (*t, k.as_bytes(), hash_key(k.as_bytes())))
            .collect();
        let mut out = Vec::new();
        index.find_block(&queries, &mut out);
        let one_by_one: Vec<Option<u32>> = queries.iter().map(|&(t, k, h)| index.find(t, k, h)).collect();
        assert_eq!(out, one_by_one);
        assert!(out.iter().any(Option::is_some) && out.iter().any(Option::is_none));
    }
}
