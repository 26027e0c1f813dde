//! The encoding of closed chunks (in memory after closing, and in the segment ring). Open
//! chunks are Gorilla (appendable); when a chunk closes it is re-encoded here, which is
//! much smaller for what hosts and exporters actually report: values that are decimal
//! numbers with few digits (CPU seconds in hundredths, byte counters, load averages,
//! constant gauges), whose XOR bit patterns Gorilla cannot shrink.
//!
//! Layout: a format byte, then
//! - `0`: a Gorilla chunk as `chunk` writes it (any values: NaN, ±Inf, staleness markers);
//! - `1`, decimal: `count` (LEB128), `t0` (zig-zag LEB128), `k` (byte: values are integers
//!   / 10^k), `mode` (byte: bit 0 = value residuals are deltas of deltas rather than deltas,
//!   bit 1 = regular timestamps: every interval equals the first), `width` (byte), `v0`
//!   (zig-zag LEB128 of the first integer), with bit 0 the first value delta, with bit 1 the
//!   interval (both zig-zag LEB128); then one bit stream: per later sample its timestamp
//!   delta-of-delta in Gorilla's buckets (absent for regular timestamps) and, unless
//!   `width` is 0 (all residuals zero), its value residual as `0` (zero) or `1` + `width`
//!   bits of the zig-zagged residual. A constant gauge scraped on time costs ~20 bytes.
//!
//! A chunk is written decimal only when every value decodes back to the same bits (so -0.0,
//! NaN, infinities and values with too many digits keep Gorilla); `k` is the smallest that
//! works and the mode the one that yields fewer bits.

use super::bits::{BitReader, BitWriter};
use super::chunk::{ChunkIter, read_dod, write_dod};
use super::varint::{get_uvarint, put_uvarint, unzigzag, zigzag};

const GORILLA: u8 = 0;
const DECIMAL: u8 = 1;
const MAX_K: usize = 9;
const POW10: [f64; MAX_K + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The smallest `k` for which `v` is an integer / 10^k, as decoding computes it.
fn min_k(v: f64) -> Option<usize> {
    (0..=MAX_K).find(|&k| fits(v, k).is_some())
}

/// `v * 10^k` as an integer if dividing it by 10^k gives `v` back bit for bit (this also
/// keeps -0.0 out).
fn fits(v: f64, k: usize) -> Option<i64> {
    let p = POW10[k];
    let m = (v * p).round();
    if !m.is_finite() || m.abs() > 9_007_199_254_740_992.0 {
        return None;
    }
    let i = m as i64;
    ((i as f64 / p).to_bits() == v.to_bits()).then_some(i)
}

/// The integers `v * 10^k` for the smallest `k` that gives every value back bit for bit.
/// Starts from the first value's `k` and only moves up when a value needs it, so a chunk
/// costs one pass in the common case.
fn as_decimals(samples: &[(i64, f64)]) -> Option<(u8, Vec<i64>)> {
    let mut k = min_k(samples.first()?.1)?;
    'k: loop {
        let mut ints = Vec::with_capacity(samples.len());
        for (_, v) in samples {
            match fits(*v, k) {
                Some(i) => ints.push(i),
                None => {
                    k = min_k(*v)?.max(k + 1);
                    if k > MAX_K {
                        return None;
                    }
                    continue 'k;
                }
            }
        }
        return Some((k as u8, ints));
    }
}

fn bits_of(r: i64) -> u8 {
    64 - zigzag(r).leading_zeros() as u8
}

/// Cost in bits and width of coding `residuals` as `0` / `1`+width bits.
fn cost(residuals: &[i64]) -> (usize, u8) {
    let width = residuals.iter().map(|r| bits_of(*r)).max().unwrap_or(0);
    let nonzero = residuals.iter().filter(|r| **r != 0).count();
    (residuals.len() + nonzero * width as usize, width)
}

/// Encodes the samples of a closed chunk (time-ordered, at least one).
pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    if let Some(b) = encode_decimal(samples) {
        return b;
    }
    let mut w = super::chunk::ChunkWriter::new();
    for (t, v) in samples {
        // Samples come from an accepted chunk, so they are in order.
        let _ = w.push(*t, *v);
    }
    let mut out = vec![GORILLA];
    out.extend_from_slice(&w.bytes());
    out
}

fn encode_decimal(samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    let (k, ints) = as_decimals(samples)?;
    let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let dods: Vec<i64> = deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let (delta_cost, delta_w) = cost(&deltas);
    let (dod_cost, dod_w) = cost(&dods);
    let use_dod = deltas.len() > 1 && dod_cost < delta_cost;
    let (mode, width, residuals) = if use_dod {
        (1u8, dod_w, &dods)
    } else {
        (0u8, delta_w, &deltas)
    };
    if width > 64 {
        return None;
    }
    let interval = samples.get(1).map_or(0, |s| s.0 - samples[0].0);
    let regular = samples.windows(2).all(|w| w[1].0 - w[0].0 == interval);
    let mut out = vec![DECIMAL];
    put_uvarint(&mut out, samples.len() as u64);
    put_uvarint(&mut out, zigzag(samples[0].0));
    out.extend_from_slice(&[k, mode | if regular { 2 } else { 0 }, width]);
    put_uvarint(&mut out, zigzag(ints[0]));
    if use_dod {
        put_uvarint(&mut out, zigzag(deltas[0]));
    }
    if regular {
        put_uvarint(&mut out, zigzag(interval));
    }
    let mut w = BitWriter::new();
    let mut last_t = samples[0].0;
    let mut last_delta = 0i64;
    // In dod mode the first later sample's value is already known from the first delta.
    let skip = usize::from(use_dod);
    for (i, (t, _)) in samples.iter().enumerate().skip(1) {
        if !regular {
            let delta = t - last_t;
            write_dod(&mut w, delta.wrapping_sub(last_delta));
            last_delta = delta;
            last_t = *t;
        }
        if i > skip && width > 0 {
            let r = residuals[i - 1 - skip];
            if r == 0 {
                w.write_bit(false);
            } else {
                w.write_bit(true);
                w.write_bits(zigzag(r), width);
            }
        }
    }
    out.extend_from_slice(&w.into_bytes());
    Some(out)
}

/// Appends the samples of a closed chunk within `[mint, maxt]` to `out`; a damaged chunk
/// yields what could be read.
pub fn decode_into(bytes: &[u8], mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
    match bytes.first() {
        Some(&GORILLA) => {
            out.extend(ChunkIter::new(&bytes[1..]).filter(|(t, _)| (mint..=maxt).contains(t)))
        }
        Some(&DECIMAL) => {
            let _ = decode_decimal(&bytes[1..], mint, maxt, out);
        }
        _ => {}
    }
}

/// Every sample of a closed chunk.
pub fn decode(bytes: &[u8]) -> Vec<(i64, f64)> {
    let mut v = Vec::new();
    decode_into(bytes, i64::MIN, i64::MAX, &mut v);
    v
}

fn decode_decimal(b: &[u8], mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) -> Option<()> {
    let mut pos = 0;
    let count = get_uvarint(b, &mut pos)? as usize;
    let mut t = unzigzag(get_uvarint(b, &mut pos)?);
    let (k, mode, width) = (*b.get(pos)?, *b.get(pos + 1)?, *b.get(pos + 2)?);
    pos += 3;
    let p = *POW10.get(k as usize)?;
    if width > 64 {
        return None;
    }
    let mut v = unzigzag(get_uvarint(b, &mut pos)?);
    let mut delta_v = if mode & 1 == 1 {
        unzigzag(get_uvarint(b, &mut pos)?)
    } else {
        0
    };
    let interval = if mode & 2 == 2 {
        Some(unzigzag(get_uvarint(b, &mut pos)?))
    } else {
        None
    };
    let mut push = |t: i64, v: i64| {
        if (mint..=maxt).contains(&t) {
            out.push((t, v as f64 / p));
        }
    };
    push(t, v);
    let mut r = BitReader::new(b.get(pos..)?);
    let mut delta_t = 0i64;
    for i in 1..count {
        delta_t = match interval {
            Some(d) => d,
            None => delta_t.wrapping_add(read_dod(&mut r)?),
        };
        t = t.wrapping_add(delta_t);
        if t > maxt {
            return Some(());
        }
        if mode & 1 == 1 && i == 1 {
            v = v.wrapping_add(delta_v);
        } else {
            let res = if width > 0 && r.read_bit()? {
                unzigzag(r.read_bits(width)?)
            } else {
                0
            };
            if mode & 1 == 1 {
                delta_v = delta_v.wrapping_add(res);
                v = v.wrapping_add(delta_v);
            } else {
                v = v.wrapping_add(res);
            }
        }
        push(t, v);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    fn series(f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, f(i)))
            .collect()
    }

    #[test]
    fn node_style_values_shrink_and_round_trip() {
        type Case = (&'static str, Vec<(i64, f64)>, usize);
        let cases: Vec<Case> = vec![
            ("constant gauge", series(|_| 42_949_672_960.0), 24),
            (
                "cpu seconds",
                series(|i| (123_456 + i * 1487) as f64 / 100.0),
                24,
            ),
            (
                "byte counter",
                series(|i| 9e11 + (i * 1500 + i * 7919 % 5000) as f64),
                260,
            ),
            (
                "load average",
                series(|i| [0.52, 0.48, 0.61][i as usize % 3]),
                110,
            ),
        ];
        for (name, s, max_bytes) in cases {
            let b = encode(&s);
            assert_eq!(b[0], DECIMAL, "{name}");
            assert!(b.len() <= max_bytes, "{name}: {} bytes", b.len());
            assert!(same(&decode(&b), &s), "{name}");
        }
    }

    #[test]
    fn odd_values_keep_gorilla() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            f64::from_bits(crate::tsdb::STALE_NAN),
            1e300,
            0.1 + 0.2,
        ] {
            let s = vec![(0, 1.0), (1000, v), (2000, 2.0)];
            let b = encode(&s);
            assert_eq!(b[0], GORILLA, "{v}");
            assert!(same(&decode(&b), &s), "{v}");
        }
    }

    #[test]
    fn ranges_cut() {
        let s = series(|i| i as f64);
        let b = encode(&s);
        let mut part = Vec::new();
        decode_into(&b, s[10].0, s[12].0, &mut part);
        assert_eq!(part, s[10..=12].to_vec());
        assert!(decode(&[]).is_empty());
        assert!(decode(&[7, 1, 2]).is_empty());
        // A truncated chunk gives a prefix, never garbage or a panic.
        let cut = decode(&b[..b.len() / 2]);
        assert!(same(&cut, &s[..cut.len()]));
    }

    proptest! {
        #[test]
        fn round_trips_like_a_vec(
            start in -1_000_000_000_000i64..1_000_000_000_000,
            steps in proptest::collection::vec((1i64..100_000, any::<u8>(), -1_000_000i64..1_000_000), 1..200),
            k in 0u32..4,
        ) {
            let mut t = start;
            let mut s = Vec::new();
            for (dt, kind, x) in steps {
                t += dt;
                let v = match kind % 6 {
                    0 => x as f64 / 10f64.powi(k as i32),
                    1 => f64::from_bits((x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    2 => 7.0,
                    3 => x as f64 * 4096.0,
                    4 => (x as f64).sqrt(),
                    _ => -(x as f64) / 100.0,
                };
                s.push((t, v));
            }
            let b = encode(&s);
            prop_assert!(same(&decode(&b), &s));
        }
    }
}
