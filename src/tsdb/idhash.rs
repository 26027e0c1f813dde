//! A hasher for keys that are ours and already spread or sequential (series ids, label-set
//! hashes): one multiply per word instead of SipHash, whose protection against chosen
//! collisions such keys do not need. Never use it for text from the outside.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Odd constant close to 2^64 / φ (Fibonacci hashing): sequential ids spread over the table.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        // The table takes low bits for the bucket and high bits for its tag: fold the
        // well-mixed high half into the low one.
        self.0 ^ (self.0 >> 32)
    }
}

/// A map keyed by series id (or another id of ours).
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_spread_over_buckets() {
        // 1,024 sequential ids over 64 buckets (low 6 bits): no bucket more than 3× the mean.
        let mut buckets = [0u32; 64];
        for id in 0..1024u64 {
            let mut h = IdHasher::default();
            h.write_u64(id);
            buckets[(h.finish() & 63) as usize] += 1;
        }
        assert!(buckets.iter().all(|n| *n <= 48), "{buckets:?}");
        let m: IdMap<u64> = (0..10_000).map(|i| (i, i * 2)).collect();
        assert_eq!(m[&4321], 8642);
    }
}
