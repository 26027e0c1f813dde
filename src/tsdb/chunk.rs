//! Gorilla-compressed chunks of one series' samples (Pelkonen et al., VLDB 2015), with the
//! timestamp bucket widths Prometheus chose for millisecond timestamps.
//!
//! Layout (bits, most significant first):
//! - header: sample count (16 bits), first timestamp (64 bits, two's complement), first
//!   value (64 bits, IEEE 754 as is — NaN payloads, ±Inf and the stale marker survive);
//! - every later timestamp: its delta-of-delta `dod` (the second sample's delta counts as
//!   a delta-of-delta against 0):
//!   `0` → dod = 0; `10`+14 bits → dod ∈ [-8191, 8192]; `110`+17 bits → [-65535, 65536];
//!   `1110`+20 bits → [-524287, 524288]; `1111`+64 bits → anything;
//! - every later value: XOR with the previous value: `0` → same value; `10` + the meaningful
//!   bits inside the previous window (leading/trailing zeros at least as many as before);
//!   `11` + 5 bits leading zeros + 6 bits meaningful length (0 means 64) + the bits.
//!
//! Timestamps must strictly increase: out-of-order and duplicate samples are refused.

use super::bits::{BitReader, BitWriter};

/// Most samples in one chunk (Prometheus closes chunks at 120; the format allows more).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// Why a sample was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("sample at {t} is not after the previous one at {last}: out of order")]
    OutOfOrder { t: i64, last: i64 },
    #[error("sample at {t} repeats the previous timestamp: duplicate")]
    Duplicate { t: i64 },
    #[error("the chunk is full")]
    Full,
}

/// Appends samples to a chunk.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    body: BitWriter,
    count: u16,
    /// The first sample's timestamp and value bits (meaningful once `count` > 0).
    first_t: i64,
    first_v: u64,
    last_t: i64,
    last_delta: i64,
    last_v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn write_dod(w: &mut BitWriter, dod: i64) {
    // (prefix, prefix length, payload bits)
    const BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];
    if dod == 0 {
        w.write_bit(false);
        return;
    }
    for (prefix, plen, bits) in BUCKETS {
        let lo = -(1i64 << (bits - 1)) + 1;
        let hi = 1i64 << (bits - 1);
        if (lo..=hi).contains(&dod) {
            w.write_bits(prefix, plen);
            w.write_bits(dod as u64, bits);
            return;
        }
    }
    w.write_bits(0b1111, 4);
    w.write_bits(dod as u64, 64);
}

pub(crate) fn read_dod(r: &mut BitReader<'_>) -> Option<i64> {
    let mut ones = 0;
    while ones < 4 {
        if !r.read_bit()? {
            break;
        }
        ones += 1;
    }
    let bits = match ones {
        0 => return Some(0),
        1 => 14,
        2 => 17,
        3 => 20,
        _ => 64,
    };
    let raw = r.read_bits(bits)?;
    // The buckets hold [-(2^(n-1) - 1), 2^(n-1)] (as Prometheus' do): the pattern 2^(n-1)
    // is the positive bound, not the negative one plain sign extension would make it.
    Some(if bits == 64 {
        raw as i64
    } else if raw > 1 << (bits - 1) {
        raw as i64 - (1i64 << bits)
    } else {
        raw as i64
    })
}

impl ChunkWriter {
    pub fn new() -> Self {
        ChunkWriter {
            body: BitWriter::new(),
            count: 0,
            first_t: 0,
            first_v: 0,
            last_t: 0,
            last_delta: 0,
            last_v: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the last sample, if any.
    pub fn last_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_t)
    }

    /// Timestamp of the first sample, if any.
    pub fn first_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first_t)
    }

    /// Appends one sample.
    pub fn push(&mut self, t: i64, v: f64) -> Result<(), AppendError> {
        if self.count as usize >= MAX_SAMPLES {
            return Err(AppendError::Full);
        }
        let bits = v.to_bits();
        match self.count {
            0 => {
                self.first_t = t;
                self.first_v = bits;
            }
            _ => {
                if t == self.last_t {
                    return Err(AppendError::Duplicate { t });
                }
                if t < self.last_t {
                    return Err(AppendError::OutOfOrder {
                        t,
                        last: self.last_t,
                    });
                }
                let delta = t - self.last_t;
                write_dod(&mut self.body, delta.wrapping_sub(self.last_delta));
                self.last_delta = delta;
                self.write_value(bits);
            }
        }
        self.last_t = t;
        self.last_v = bits;
        self.count += 1;
        Ok(())
    }

    fn write_value(&mut self, bits: u64) {
        let x = bits ^ self.last_v;
        let w = &mut self.body;
        if x == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            w.write_bits(x >> self.trailing, sig);
        } else {
            w.write_bit(true);
            let sig = 64 - leading - trailing;
            w.write_bits(leading as u64, 5);
            // 64 meaningful bits are written as 0 (6 bits hold 0..=63).
            w.write_bits((sig % 64) as u64, 6);
            w.write_bits(x >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    /// The encoded chunk.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = BitWriter::new();
        out.write_bits(self.count as u64, 16);
        if self.count > 0 {
            out.write_bits(self.first_t as u64, 64);
            out.write_bits(self.first_v, 64);
        }
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(self.body.bytes());
        bytes
    }

    /// Encoded size in bytes so far.
    pub fn size(&self) -> usize {
        2 + if self.count > 0 { 16 } else { 0 } + self.body.bytes().len()
    }
}

/// Decodes a chunk; stops (returning what it read) at a damaged or short chunk.
pub fn decode(bytes: &[u8]) -> Vec<(i64, f64)> {
    ChunkIter::new(bytes).collect()
}

/// Iterates over the samples of an encoded chunk.
pub struct ChunkIter<'a> {
    head: BitReader<'a>,
    body: BitReader<'a>,
    left: u16,
    started: bool,
    t: i64,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> ChunkIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let mut head = BitReader::new(bytes);
        let left = head.read_bits(16).unwrap_or(0) as u16;
        let body = BitReader::new(bytes.get(18..).unwrap_or(&[]));
        ChunkIter {
            head,
            body,
            left,
            started: false,
            t: 0,
            delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
        }
    }

    fn next_sample(&mut self) -> Option<(i64, f64)> {
        if !self.started {
            self.started = true;
            self.t = self.head.read_bits(64)? as i64;
            self.v = self.head.read_bits(64)?;
            return Some((self.t, f64::from_bits(self.v)));
        }
        let dod = read_dod(&mut self.body)?;
        self.delta = self.delta.wrapping_add(dod);
        self.t = self.t.wrapping_add(self.delta);
        if self.body.read_bit()? {
            if self.body.read_bit()? {
                self.leading = self.body.read_bits(5)? as u8;
                let sig = match self.body.read_bits(6)? as u8 {
                    0 => 64,
                    s => s,
                };
                self.trailing = 64u8.checked_sub(self.leading + sig)?;
            }
            let sig = 64 - self.leading - self.trailing;
            let x = self.body.read_bits(sig)?;
            self.v ^= x << self.trailing;
        }
        Some((self.t, f64::from_bits(self.v)))
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match self.next_sample() {
            Some(s) => Some(s),
            None => {
                self.left = 0;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut w = ChunkWriter::new();
        for (t, v) in samples {
            w.push(*t, *v).unwrap();
        }
        assert_eq!(w.size(), w.bytes().len());
        w.bytes()
    }

    fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    #[test]
    fn bucket_bounds_round_trip() {
        // Each bucket's positive bound (2^(n-1)) and negative bound; 8192 once decoded as -8192.
        for dod in [8192i64, -8191, 65536, -65535, 524288, -524287, 8193, -8192] {
            let mut w = ChunkWriter::new();
            let ts = [0, 1_000_000, 2_000_000 + dod];
            for t in ts {
                w.push(t, 1.0).unwrap();
            }
            let got: Vec<i64> = ChunkIter::new(&w.bytes()).map(|(t, _)| t).collect();
            assert_eq!(got, ts, "dod {dod}");
        }
    }

    #[test]
    fn special_values_round_trip_bit_for_bit() {
        let s = vec![
            (1_000, 0.0),
            (16_000, -0.0),
            (31_000, f64::NAN),
            (46_000, f64::from_bits(super::super::STALE_NAN)),
            (61_000, f64::INFINITY),
            (76_000, f64::NEG_INFINITY),
            (91_000, f64::MIN_POSITIVE),
            (106_000, f64::MAX),
            (106_001, 1.5),
            (i64::MAX / 2, -7.25),
        ];
        let back = decode(&encode(&s));
        assert!(same(&s, &back), "{back:?}");
        assert!(super::super::is_stale(back[3].1));
        assert!(!super::super::is_stale(back[2].1));
    }

    #[test]
    fn regular_scrapes_compress_well() {
        // 120 samples every 15 s of a slowly rising counter: about 1–2 bytes per sample.
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, 1000.0 + i as f64 * 3.0))
            .collect();
        let bytes = encode(&s);
        assert!(bytes.len() < 120 * 3, "{} bytes", bytes.len());
        assert!(same(&s, &decode(&bytes)));
    }

    #[test]
    fn out_of_order_and_duplicates_are_refused() {
        let mut w = ChunkWriter::new();
        w.push(100, 1.0).unwrap();
        assert_eq!(w.push(100, 2.0), Err(AppendError::Duplicate { t: 100 }));
        assert_eq!(
            w.push(99, 2.0),
            Err(AppendError::OutOfOrder { t: 99, last: 100 })
        );
        w.push(101, 2.0).unwrap();
        assert_eq!(w.len(), 2, "refused samples leave no trace");
        assert!(same(&decode(&w.bytes()), &[(100, 1.0), (101, 2.0)]));
    }

    #[test]
    fn damaged_chunks_stop_cleanly() {
        let s: Vec<(i64, f64)> = (0..50).map(|i| (i * 1000, i as f64 * 0.1)).collect();
        let bytes = encode(&s);
        for cut in [0, 1, 10, 18, 25, bytes.len() - 1] {
            let back = decode(&bytes[..cut]);
            assert!(back.len() <= s.len());
            assert!(same(&back, &s[..back.len()]), "cut {cut}");
        }
    }

    fn samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
        let value = prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::from_bits(super::super::STALE_NAN)),
            Just(f64::INFINITY),
            (0u32..1000).prop_map(|x| x as f64),
            any::<u64>().prop_map(f64::from_bits),
        ];
        let delta = prop_oneof![
            Just(15_000i64),
            1i64..100,
            1i64..10_000_000,
            1i64..(1i64 << 40)
        ];
        (any::<i32>(), prop::collection::vec((delta, value), 0..300)).prop_map(|(start, v)| {
            let mut t = start as i64 * 1000;
            v.into_iter()
                .map(|(d, x)| {
                    t = t.saturating_add(d);
                    (t, x)
                })
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        /// The codec against the naive model: a Vec of samples.
        #[test]
        fn codec_matches_the_model(s in samples()) {
            let mut dedup: Vec<(i64, f64)> = Vec::new();
            for (t, v) in s {
                if dedup.last().is_none_or(|l| t > l.0) { dedup.push((t, v)); }
            }
            let back = decode(&encode(&dedup));
            prop_assert!(same(&dedup, &back));
        }
    }
}
