//! Small, stable, dependency-free hashes: schema fingerprints, verdict ids and shard assignment must not change
//! between releases or platforms, which rules out `std`'s randomised hasher.

/// FNV-1a, 64 bit.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Fnv64 {
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a, 128 bit: verdict ids (collisions must stay negligible over billions of objects).
#[derive(Debug, Clone, Copy)]
pub struct Fnv128(u128);

impl Fnv128 {
    pub const fn new() -> Self {
        Self(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            // Times the FNV-128 prime 2^88 + 0x13b, modulo 2^128: the same product as `wrapping_mul` by the prime,
            // with one small multiplication instead of a full 128-bit one.
            self.0 = (self.0 << 88).wrapping_add(self.0.wrapping_mul(0x13b));
        }
    }

    pub const fn finish(&self) -> u128 {
        self.0
    }
}

impl Default for Fnv128 {
    fn default() -> Self {
        Self::new()
    }
}

/// The FNV-128 prime, `2^88 + 0x13b`.
const FNV128_PRIME: u128 = (1 << 88) + 0x13b;

/// Writing one fixed byte string to an [`Fnv128`] in a single multiply-add instead of a step per byte.
///
/// One step maps a state `h` to `(h ^ b) * P`. XOR with a byte changes only the low 8 bits, so `h ^ b = h + d`
/// where `d = (l ^ b) - l` depends only on `h`'s low byte `l`; and the low byte of `(h + d) * P` again depends
/// only on `l`. By induction, writing `m` bytes maps `h` to `h * P^m + c(l)`, where `c` depends only on the bytes
/// and on `l`: 256 values, found by writing the bytes to each state `l < 256`.
#[derive(Clone)]
pub struct Fnv128Suffix {
    /// `P^m`, `m` the number of bytes.
    power: u128,
    /// `c(l)` for every low byte `l`.
    tail: Box<[u128; 256]>,
}

impl Fnv128Suffix {
    /// Precomputes writing `bytes` (256 writes of them: for a few dozen bytes, tens of microseconds).
    pub fn new(bytes: &[u8]) -> Self {
        let power = bytes.iter().fold(1u128, |p, _| p.wrapping_mul(FNV128_PRIME));
        let mut tail = Box::new([0u128; 256]);
        for (low, c) in tail.iter_mut().enumerate() {
            let mut h = Fnv128(low as u128);
            h.write(bytes);
            *c = h.0.wrapping_sub((low as u128).wrapping_mul(power));
        }
        Self { power, tail }
    }

    /// `h` after writing the bytes, exactly as [`Fnv128::write`] would leave it.
    pub fn apply(&self, h: &mut Fnv128) {
        h.0 =
            h.0.wrapping_mul(self.power)
                .wrapping_add(self.tail[(h.0 & 0xff) as usize]);
    }
}

impl std::fmt::Debug for Fnv128Suffix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fnv128Suffix")
            .field("power", &self.power)
            .finish_non_exhaustive()
    }
}

/// Which of `shards` shards a key belongs to (stable across runs and machines).
pub fn shard_of(tenant: &str, key: &str, shards: u32) -> u32 {
    let mut h = Fnv64::new();
    h.write(tenant.as_bytes());
    h.write(&[0]);
    h.write(key.as_bytes());
    // Fold the high bits in: FNV's low bits are weak for short keys.
    let x = h.finish();
    ((x ^ (x >> 32)) % u64::from(shards.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let mut h = Fnv64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv128::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
    }

    #[test]
    fn fnv128_equals_the_textbook_multiplication() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let mut textbook = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58du128;
            for &b in &bytes {
                textbook ^= u128::from(b);
                textbook = textbook.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
            }
            let mut h = Fnv128::new();
            h.write(&bytes);
            assert_eq!(h.finish(), textbook, "{bytes:?}");
        }
    }

    #[test]
    fn a_precomputed_suffix_writes_what_the_bytes_write() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [0usize, 1, 2, 7, 8, 40, 41, 300] {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let suffix = Fnv128Suffix::new(&bytes);
            // Every low byte, with random high bits, and the real starting state.
            let starts = (0..256u128)
                .map(|low| (u128::from(next()) << 64 | u128::from(next())) & !0xff | low)
                .chain([Fnv128::new().0]);
            for start in starts {
                let mut by_bytes = Fnv128(start);
                by_bytes.write(&bytes);
                let mut by_suffix = Fnv128(start);
                suffix.apply(&mut by_suffix);
                assert_eq!(by_suffix.finish(), by_bytes.finish(), "{len} bytes from {start:x}");
            }
        }
    }

    #[test]
    fn shards_spread() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[shard_of("t", &format!("k/{i}.png"), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
