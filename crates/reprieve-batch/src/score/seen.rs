//! The key lookups of one Parquet batch of events, remembered by where each key's bytes are.
//!
//! A dictionary-encoded key column is decoded into string views that all point at the dictionary's one copy of a
//! value, so every repeat of a key within a batch is the same slice: same address, same length. While the batch's
//! buffers are alive, two slices with the same address and length hold the same bytes, so the answer of the
//! [`KeyIndex`](super::index::KeyIndex) for the first is the answer for the others, and a repeat costs one probe of
//! this small table instead of hashing the key and probing (and comparing against) the index. Keys that are not
//! shared (plain-encoded pages, short keys inlined in their views) are never found here and cost one probe.
//!
//! Entries are valid for one batch only ([`SeenKeys::next_batch`]): after it, its buffers are freed and their
//! addresses can hold other keys.

/// One remembered lookup: `(tenant, key slice)` gave `object` (`NONE`: not in the index).
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// The slice's address in the low 48 bits, its length in the high 16.
    tag: u64,
    /// The batch the entry belongs to in the high 16 bits (0 never does: an empty entry), the tenant in the low 16.
    batch_tenant: u32,
    object: u32,
}

/// The index's answer for a key not in it.
const NONE: u32 = u32::MAX;

/// Remembered lookups of the current batch, in an open-addressing table kept at most half full and sized for the
/// keys the previous batch remembered (16 bytes an entry: the smaller the table, the likelier a probe hits the
/// cache).
#[derive(Debug)]
pub(crate) struct SeenKeys {
    entries: Vec<Entry>,
    /// `64 - log2(entries.len())`: the shift that turns a 64-bit hash into a position.
    shift: u32,
    /// The current batch's generation, 1 to 0xffff.
    batch: u32,
    filled: usize,
    /// Keys this batch tried to remember: those remembered and those refused by a half-full table.
    wanted: usize,
    /// The largest table: for a batch whose every row is a new key.
    most: usize,
}

/// Where a probe for `(tenant, tag)` starts.
#[inline]
fn start(tag: u64, tenant: u32, shift: u32) -> usize {
    let h = (tag ^ u64::from(tenant) << 48).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> shift) as usize
}

/// The tag of a key slice, or `None` when its address or length does not fit (never on today's 48-bit address
/// spaces with keys under 64 KiB; such keys are simply not remembered).
#[inline]
fn tag_of(key: &[u8]) -> Option<u64> {
    let address = key.as_ptr() as usize as u64;
    let len = key.len() as u64;
    (address < 1 << 48 && len < 1 << 16 && !key.is_empty()).then_some(address | len << 48)
}

impl SeenKeys {
    /// A table for batches of up to `rows` rows (at most one distinct key per row).
    pub(crate) fn for_rows(rows: usize) -> Self {
        let most = (rows.max(512) * 2).next_power_of_two();
        Self::with_len(most, most)
    }

    fn with_len(len: usize, most: usize) -> Self {
        Self {
            entries: vec![Entry::default(); len],
            shift: 64 - len.trailing_zeros(),
            batch: 1,
            filled: 0,
            wanted: 0,
            most,
        }
    }

    /// Forgets every entry (the previous batch's buffers are gone) and, after a batch that used the table, resizes
    /// it to hold as many keys as that batch tried to remember at most half full.
    pub(crate) fn next_batch(&mut self) {
        let len = (self.wanted * 2).next_power_of_two().clamp(1024, self.most);
        if self.wanted > 0 && len != self.entries.len() {
            *self = Self::with_len(len, self.most);
            return;
        }
        self.filled = 0;
        self.wanted = 0;
        self.batch = (self.batch + 1) & 0xffff;
        if self.batch == 0 {
            self.entries.fill(Entry::default());
            self.batch = 1;
        }
    }

    /// Reads the first entry of each probe, so that the cache misses of a block of keys overlap (like
    /// [`KeyIndex::touch`](super::index::KeyIndex::touch)).
    pub(crate) fn touch<'a>(&self, keys: impl Iterator<Item = (u32, &'a [u8])>) {
        let mut sum = 0;
        for (tenant, key) in keys {
            if let Some(tag) = tag_of(key) {
                sum ^= self.entries[start(tag, tenant, self.shift)].tag;
            }
        }
        std::hint::black_box(sum);
    }

    /// The entry word of `tenant` in this batch; `None` for tenant numbers past 16 bits (never remembered).
    #[inline]
    fn batch_tenant(&self, tenant: u32) -> Option<u32> {
        (tenant < 1 << 16).then_some(self.batch << 16 | tenant)
    }

    /// The remembered answer for `key` in `tenant`: `Some(Some(i))` object `i`, `Some(None)` not in the index,
    /// `None` not remembered.
    #[inline]
    pub(crate) fn get(&self, tenant: u32, key: &[u8]) -> Option<Option<u32>> {
        let tag = tag_of(key)?;
        let batch_tenant = self.batch_tenant(tenant)?;
        let mask = self.entries.len() - 1;
        let mut pos = start(tag, tenant, self.shift);
        loop {
            let e = &self.entries[pos];
            if e.batch_tenant >> 16 != self.batch {
                return None;
            }
            if e.tag == tag && e.batch_tenant == batch_tenant {
                return Some((e.object != NONE).then_some(e.object));
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Remembers the index's answer for `key` in `tenant` (not when the table is half full).
    #[inline]
    pub(crate) fn insert(&mut self, tenant: u32, key: &[u8], object: Option<u32>) {
        let (Some(tag), Some(batch_tenant)) = (tag_of(key), self.batch_tenant(tenant)) else {
            return;
        };
        self.wanted += 1;
        if self.filled * 2 >= self.entries.len() {
            return;
        }
        let mask = self.entries.len() - 1;
        let mut pos = start(tag, tenant, self.shift);
        loop {
            let e = &mut self.entries[pos];
            if e.batch_tenant >> 16 != self.batch {
                *e = Entry {
                    tag,
                    batch_tenant,
                    object: object.unwrap_or(NONE),
                };
                self.filled += 1;
                return;
            }
            if e.tag == tag && e.batch_tenant == batch_tenant {
                self.wanted -= 1;
                return;
            }
            pos = (pos + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_repeat_by_slice_and_tenant_and_are_forgotten_at_the_next_batch() {
        let text = String::from("photos/a.jpg photos/a.jpg");
        let first = &text.as_bytes()[..12];
        let same_bytes_elsewhere = &text.as_bytes()[13..];
        let mut seen = SeenKeys::for_rows(4);
        assert_eq!(seen.get(0, first), None);
        seen.insert(0, first, Some(7));
        seen.insert(1, first, None);
        assert_eq!(seen.get(0, first), Some(Some(7)));
        assert_eq!(seen.get(1, first), Some(None));
        // Equal bytes at another address are a different slice: not remembered.
        assert_eq!(seen.get(0, same_bytes_elsewhere), None);
        // A shorter slice at the same address is another key.
        assert_eq!(seen.get(0, &first[..6]), None);
        seen.next_batch();
        assert_eq!(seen.get(0, first), None);
        assert_eq!(seen.get(1, first), None);
        // Tenants past 16 bits are never remembered.
        seen.insert(1 << 16, first, Some(3));
        assert_eq!(seen.get(1 << 16, first), None);
    }

    #[test]
    fn a_half_full_table_stops_remembering_and_stays_exact() {
        let text: String = (0..10_000).map(|i| format!("k{i:05}")).collect();
        let key = |i: usize| &text.as_bytes()[i * 6..i * 6 + 6];
        let mut seen = SeenKeys::for_rows(600);
        for i in 0..10_000 {
            seen.insert(0, key(i), Some(i as u32));
        }
        let remembered: Vec<usize> = (0..10_000).filter(|&i| seen.get(0, key(i)).is_some()).collect();
        assert_eq!(remembered.len(), seen.entries.len() / 2);
        for i in remembered {
            assert_eq!(seen.get(0, key(i)), Some(Some(i as u32)));
        }
    }

    #[test]
    fn the_table_follows_the_previous_batch_and_clears_when_its_generation_wraps() {
        let text: String = (0..1_000).map(|i| format!("k{i:05}")).collect();
        let key = |i: usize| &text.as_bytes()[i * 6..i * 6 + 6];
        let mut seen = SeenKeys::for_rows(300);
        assert_eq!(seen.entries.len(), 1024);
        for i in 0..400 {
            seen.insert(0, key(i), Some(i as u32));
        }
        // 400 keys fit a table of 1,024 again: the same table, a new generation.
        seen.next_batch();
        assert_eq!((seen.batch, seen.entries.len()), (2, 1024));
        assert!((0..400).all(|i| seen.get(0, key(i)).is_none()));
        // The last generation wraps to the first: the first batch's entries must not come back.
        seen.batch = 0xffff;
        seen.wanted = 400;
        seen.next_batch();
        assert_eq!((seen.batch, seen.entries.len()), (1, 1024));
        assert!((0..400).all(|i| seen.get(0, key(i)).is_none()));
        // A batch with few keys shrinks the next table, one that fills it grows the next.
        let mut seen = SeenKeys::for_rows(10_000);
        assert_eq!(seen.entries.len(), 32_768);
        // A batch that remembered nothing (or the first call) keeps the table as it is.
        seen.next_batch();
        assert_eq!(seen.entries.len(), 32_768);
        seen.insert(0, key(0), Some(0));
        seen.next_batch();
        assert_eq!(seen.entries.len(), 1024);
        for i in 0..1_000 {
            seen.insert(0, key(i), Some(i as u32));
        }
        seen.next_batch();
        assert_eq!(seen.entries.len(), 2048);
    }
}
