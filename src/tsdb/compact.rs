//! The encoding of closed chunks (in memory after closing, and in the segment ring). Open
//! chunks are Gorilla (appendable); when a chunk closes it is re-encoded here, which is
//! much smaller for what hosts and exporters actually report: values that are decimal
//! numbers with few digits (CPU seconds in hundredths, byte counters, load averages,
//! constant gauges), whose XOR bit patterns Gorilla cannot shrink.
//!
//! Layout: a format byte, then
//! - `0`: a Gorilla chunk as `chunk` writes it (any values: NaN, ±Inf, staleness markers);
//! - `2`, decimal: `count` (LEB128), `t0` (zig-zag LEB128), `k` (byte: values are integers
//!   scaled by 10^-k), `mode` (byte: bit 0 = value residuals are deltas of deltas rather than
//!   deltas, bit 1 = regular timestamps: every interval equals the first, bit 2 = values are
//!   the integer *times* 10^-k rather than divided by 10^k — what exporters that compute
//!   `ms * 0.001` write), `small` and `big` (bytes: residual widths), `gcd` (LEB128: every
//!   residual is a multiple of it — byte counters move in pages or sectors), `v0` (zig-zag
//!   LEB128 of the first integer), with bit 0 the first value delta, with bit 1 the
//!   interval (both zig-zag LEB128); then one bit stream: per later sample its timestamp
//!   delta-of-delta in Gorilla's buckets (absent for regular timestamps) and, unless `big`
//!   is 0 (all residuals zero), its residual / `gcd`, zig-zagged, as `0` (zero), `1` + `big`
//!   bits when `small == big`, else `10` + `small` bits or `11` + `big` bits (one rare large
//!   residual no longer widens every other). A constant gauge scraped on time costs ~20
//!   bytes.
//! - `1`: the decimal format of 0.1 (still read): as `2` without `small`, `gcd` and mode
//!   bit 2; one `width` byte.
//!
//! A chunk is written decimal only when every value decodes back to the same bits (so -0.0,
//! NaN, infinities and values with too many digits keep Gorilla); `k` is the smallest that
//! works, and of deltas and deltas of deltas the one that yields fewer bits is kept.

use super::bits::{BitReader, BitWriter};
use super::chunk::{ChunkIter, read_dod, write_dod};
use super::varint::{get_uvarint, put_uvarint, unzigzag, zigzag};

const GORILLA: u8 = 0;
/// The decimal format 0.1 wrote.
const DECIMAL_V1: u8 = 1;
const DECIMAL: u8 = 2;
const MAX_K: usize = 9;
const POW10: [f64; MAX_K + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const NEG10: [f64; MAX_K + 1] = [1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9];
const MODE_DOD: u8 = 1;
const MODE_REGULAR: u8 = 2;
const MODE_TIMES: u8 = 4;

/// How an integer becomes a value again: divided by 10^k, or times 10^-k.
#[inline]
fn scale(i: i64, k: usize, times: bool) -> f64 {
    // Integers (counters, byte gauges) need no division.
    if k == 0 {
        i as f64
    } else if times {
        i as f64 * NEG10[k]
    } else {
        i as f64 / POW10[k]
    }
}

/// The smallest `k` for which `v` is an integer scaled by 10^-k, as decoding computes it.
fn min_k(v: f64, times: bool) -> Option<usize> {
    (0..=MAX_K).find(|&k| fits(v, k, times).is_some())
}

/// `v * 10^k` as an integer if scaling it back gives `v` bit for bit (this also keeps -0.0
/// out).
fn fits(v: f64, k: usize, times: bool) -> Option<i64> {
    let m = (v * POW10[k]).round();
    if !m.is_finite() || m.abs() > 9_007_199_254_740_992.0 {
        return None;
    }
    let i = m as i64;
    (scale(i, k, times).to_bits() == v.to_bits()).then_some(i)
}

/// The integers `v * 10^k` for the smallest `k` that gives every value back bit for bit,
/// and whether they are scaled back by multiplying. Starts from the first value's `k` and
/// only moves up when a value needs it, so a chunk costs one pass in the common case.
fn as_decimals(samples: &[(i64, f64)]) -> Option<(u8, bool, Vec<i64>)> {
    let scaled = |times: bool| -> Option<(u8, bool, Vec<i64>)> {
        let mut k = min_k(samples.first()?.1, times)?;
        'k: loop {
            let mut ints = Vec::with_capacity(samples.len());
            for (_, v) in samples {
                match fits(*v, k, times) {
                    Some(i) => ints.push(i),
                    None => {
                        k = min_k(*v, times)?.max(k + 1);
                        if k > MAX_K {
                            return None;
                        }
                        continue 'k;
                    }
                }
            }
            return Some((k as u8, times, ints));
        }
    };
    scaled(false).or_else(|| scaled(true))
}

fn bits_of(r: i64) -> u8 {
    64 - zigzag(r).leading_zeros() as u8
}

/// How a residual stream is coded: divided by `gcd`, widths `small` ≤ `big`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Coding {
    bits: usize,
    gcd: u64,
    small: u8,
    big: u8,
}

/// The cheapest coding of `residuals`: divided by their greatest common divisor, each as
/// `0`, or with one width `1` + `big` bits, or with two `10` + `small` / `11` + `big` bits.
fn plan(residuals: &[i64]) -> Coding {
    let g = residuals
        .iter()
        .fold(0u64, |g, r| gcd(g, r.unsigned_abs()))
        .clamp(1, i64::MAX as u64);
    let mut hist = [0usize; 65];
    for r in residuals {
        hist[bits_of(r / g as i64) as usize] += 1;
    }
    let big = (0..=64).rev().find(|&w| hist[w] > 0).unwrap_or(0);
    let nonzero: usize = hist[1..].iter().sum();
    let mut best = Coding {
        bits: residuals.len() + nonzero * big,
        gcd: g,
        small: big as u8,
        big: big as u8,
    };
    // With two widths every nonzero residual carries one more flag bit.
    let mut below = 0;
    for (small, n) in hist.iter().enumerate().take(big).skip(1) {
        below += n;
        let bits = residuals.len() + nonzero + below * small + (nonzero - below) * big;
        if bits < best.bits {
            best.bits = bits;
            best.small = small as u8;
        }
    }
    best
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
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
    let (k, times, ints) = as_decimals(samples)?;
    let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let dods: Vec<i64> = deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let by_delta = plan(&deltas);
    let by_dod = plan(&dods);
    let use_dod = deltas.len() > 1 && by_dod.bits < by_delta.bits;
    let (mut mode, c, residuals) = if use_dod {
        (MODE_DOD, by_dod, &dods)
    } else {
        (0, by_delta, &deltas)
    };
    let interval = samples.get(1).map_or(0, |s| s.0 - samples[0].0);
    let regular = samples.windows(2).all(|w| w[1].0 - w[0].0 == interval);
    if regular {
        mode |= MODE_REGULAR;
    }
    if times {
        mode |= MODE_TIMES;
    }
    let mut out = vec![DECIMAL];
    put_uvarint(&mut out, samples.len() as u64);
    put_uvarint(&mut out, zigzag(samples[0].0));
    out.extend_from_slice(&[k, mode, c.small, c.big]);
    put_uvarint(&mut out, c.gcd);
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
        if i > skip && c.big > 0 {
            let r = residuals[i - 1 - skip] / c.gcd as i64;
            if r == 0 {
                w.write_bit(false);
            } else if c.small == c.big {
                w.write_bit(true);
                w.write_bits(zigzag(r), c.big);
            } else {
                w.write_bit(true);
                let wide = bits_of(r) > c.small;
                w.write_bit(wide);
                w.write_bits(zigzag(r), if wide { c.big } else { c.small });
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
        Some(&f @ (DECIMAL | DECIMAL_V1)) => {
            let _ = decode_decimal(&bytes[1..], f, mint, maxt, out);
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

fn decode_decimal(
    b: &[u8],
    format: u8,
    mint: i64,
    maxt: i64,
    out: &mut Vec<(i64, f64)>,
) -> Option<()> {
    let mut pos = 0;
    let count = get_uvarint(b, &mut pos)? as usize;
    let mut t = unzigzag(get_uvarint(b, &mut pos)?);
    let (k, mut mode) = (*b.get(pos)? as usize, *b.get(pos + 1)?);
    pos += 2;
    let (small, big, g) = if format == DECIMAL_V1 {
        mode &= MODE_DOD | MODE_REGULAR;
        pos += 1;
        (*b.get(pos - 1)?, *b.get(pos - 1)?, 1)
    } else {
        pos += 2;
        let (small, big) = (*b.get(pos - 2)?, *b.get(pos - 1)?);
        (small, big, get_uvarint(b, &mut pos)? as i64)
    };
    if k > MAX_K || small > big || big > 64 || g < 1 {
        return None;
    }
    let times = mode & MODE_TIMES != 0;
    let mut v = unzigzag(get_uvarint(b, &mut pos)?);
    let mut delta_v = if mode & MODE_DOD != 0 {
        unzigzag(get_uvarint(b, &mut pos)?)
    } else {
        0
    };
    let interval = if mode & MODE_REGULAR != 0 {
        Some(unzigzag(get_uvarint(b, &mut pos)?))
    } else {
        None
    };
    let mut push = |t: i64, v: i64| {
        if (mint..=maxt).contains(&t) {
            out.push((t, scale(v, k, times)));
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
        if mode & MODE_DOD != 0 && i == 1 {
            v = v.wrapping_add(delta_v);
        } else {
            let res = if big > 0 && r.read_bit()? {
                let w = if small == big || !r.read_bit()? {
                    small
                } else {
                    big
                };
                unzigzag(r.read_bits(w)?).wrapping_mul(g)
            } else {
                0
            };
            if mode & MODE_DOD != 0 {
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
    fn chunks_of_the_first_decimal_format_still_read() {
        // Bytes 0.1 wrote: jittered timestamps with dod residuals, and a regular series.
        let v1 = [
            1, 5, 128, 160, 171, 254, 249, 98, 2, 1, 4, 208, 15, 6, 195, 169, 135, 32, 1, 249, 127,
            229, 192,
        ];
        let want: Vec<(i64, f64)> = (0..5)
            .map(|i| {
                let t = 1_700_000_000_000 + i * 15_000 + if i == 3 { 7 } else { 0 };
                (t, (1000 + i * i * 3) as f64 / 100.0)
            })
            .collect();
        assert!(same(&decode(&v1), &want), "{:?}", decode(&v1));
        let v1 = [
            1, 4, 128, 160, 171, 254, 249, 98, 0, 3, 0, 10, 2, 176, 234, 1,
        ];
        let want: Vec<(i64, f64)> = (0..4)
            .map(|i| (1_700_000_000_000 + i * 15_000, 5.0 + i as f64))
            .collect();
        assert!(same(&decode(&v1), &want));
        assert_eq!(encode(&want)[0], DECIMAL);
    }

    #[test]
    fn residual_codings() {
        // (residuals, gcd, small, big)
        let cases: Vec<(Vec<i64>, u64, u8, u8)> = vec![
            (vec![0, 0, 0], 1, 0, 0),
            (vec![4096, -8192, 0, 4096 * 3], 4096, 3, 3),
            // One large residual among small ones: two widths.
            (vec![1, -1, 2, 1, 1, -2, 1, 1, 1, 1, 1_000_000], 1, 3, 21),
            (vec![5, 7, -6], 1, 4, 4),
        ];
        for (r, g, small, big) in cases {
            let c = plan(&r);
            assert_eq!((c.gcd, c.small, c.big), (g, small, big), "{r:?}");
        }
    }

    #[test]
    fn page_counters_and_scaled_seconds_stay_decimal() {
        // Memory in pages of 4096 bytes: the gcd takes 12 bits off every residual.
        let mem = series(|i| (1_000_000 + (i * 7919) % 503) as f64 * 4096.0);
        let b = encode(&mem);
        assert_eq!(b[0], DECIMAL);
        assert!(b.len() < 170, "{} bytes", b.len());
        assert!(same(&decode(&b), &mem));
        // Milliseconds times 0.001 (not / 1000): a different last bit for some values.
        let secs = series(|i| (12_345_678 + i * 977) as f64 * 0.001);
        assert!(
            secs.iter()
                .any(|(_, v)| fits(*v, 3, false).is_none() && fits(*v, 3, true).is_some())
        );
        let b = encode(&secs);
        // Format, count (1 byte), t0 (6 bytes), k, mode.
        assert_eq!((b[0], b[8], b[9] & MODE_TIMES), (DECIMAL, 3, MODE_TIMES));
        assert!(same(&decode(&b), &secs));
        // Damaged headers are refused, never a panic.
        for cut in 0..b.len() {
            let _ = decode(&b[..cut]);
        }
        let mut bad = b.clone();
        bad[8] = 99; // k
        assert!(decode(&bad).is_empty());
    }

    #[test]
    fn odd_values_keep_gorilla() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            f64::from_bits(crate::tsdb::STALE_NAN),
            1e300,
            1.0 / 3.0,
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
                let v = match kind % 7 {
                    0 => x as f64 / 10f64.powi(k as i32),
                    1 => f64::from_bits((x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    2 => 7.0,
                    3 => x as f64 * 4096.0,
                    4 => (x as f64).sqrt(),
                    5 => x as f64 * 0.001,
                    _ => -(x as f64) / 100.0,
                };
                s.push((t, v));
            }
            let b = encode(&s);
            prop_assert!(same(&decode(&b), &s));
        }

        #[test]
        fn one_kind_chunks_round_trip(
            regular in any::<bool>(),
            kind in 0u8..5,
            xs in proptest::collection::vec(-1_000_000_000i64..1_000_000_000, 1..200),
            spike in any::<i64>(),
        ) {
            let mut s: Vec<(i64, f64)> = xs
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let t = i as i64 * 15_000 + if regular { 0 } else { x % 20 };
                    let v = match kind {
                        0 => *x as f64 * 4096.0,
                        1 => *x as f64 * 0.001,
                        2 => (i as i64 * 1500 + x % 50) as f64 / 100.0,
                        3 => (x / 1000) as f64,
                        _ => 3.0,
                    };
                    (t, v)
                })
                .collect();
            // A rare wide residual (or a huge integer) among small ones.
            let mid = s.len() / 2;
            s[mid].1 = (spike >> 12) as f64;
            let b = encode(&s);
            prop_assert!(same(&decode(&b), &s));
        }
    }
}
