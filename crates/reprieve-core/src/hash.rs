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
    fn shards_spread() {
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[shard_of("t", &format!("k/{i}.png"), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
