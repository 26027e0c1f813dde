//! Downsampled tiers: per series and per bucket of 1 minute and of 1 hour the min, max, sum,
//! count and last value, kept in their own segment rings (`tsdb/tier-1m`, `tsdb/tier-1h`)
//! with a longer retention than the raw samples, so long ranges and the big screen still
//! have data after the raw segments are recycled.
//!
//! Tiers are computed when a raw segment is sealed (its chunks are read back once, while
//! still in the page cache): one tier chunk per series and segment. A bucket cut by a
//! segment boundary appears in two chunks; readers merge rows of the same bucket.
//!
//! Tier chunk: `count` (LEB128), then five `compact` chunks, each prefixed by its length
//! (LEB128): the bucket start times with min, max, sum, count and last as values. Sans-IO
//! apart from `Tiers`, the thin file layer over two rings.

use super::varint::{get_uvarint, put_uvarint};
use std::path::Path;

use super::compact;
use super::segment::Ring;

/// Bucket widths of the tiers.
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

/// One bucket of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Start of the bucket (ms, a multiple of the width).
    pub t: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: f64,
    pub last: f64,
}

fn bucket(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// Buckets of `samples` (time-ordered; staleness markers skipped).
pub fn aggregate(samples: &[(i64, f64)], width: i64) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for (t, v) in samples.iter().filter(|(_, v)| !super::is_stale(*v)) {
        let b = bucket(*t, width);
        match out.last_mut() {
            Some(r) if r.t == b => {
                r.min = r.min.min(*v);
                r.max = r.max.max(*v);
                r.sum += v;
                r.count += 1.0;
                r.last = *v;
            }
            _ => out.push(Row {
                t: b,
                min: *v,
                max: *v,
                sum: *v,
                count: 1.0,
                last: *v,
            }),
        }
    }
    out
}

/// Coarser buckets from finer rows (e.g. hours from minutes).
pub fn rollup(rows: &[Row], width: i64) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for r in rows {
        let b = bucket(r.t, width);
        match out.last_mut() {
            Some(o) if o.t == b => merge_into(o, r),
            _ => out.push(Row { t: b, ..*r }),
        }
    }
    out
}

/// Folds a later row of the same bucket into `o`.
fn merge_into(o: &mut Row, r: &Row) {
    o.min = o.min.min(r.min);
    o.max = o.max.max(r.max);
    o.sum += r.sum;
    o.count += r.count;
    o.last = r.last;
}

/// Merges rows of equal buckets (from chunks cut at a segment boundary), in time order.
pub fn merge(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        match out.last_mut() {
            Some(o) if o.t == r.t => merge_into(o, &r),
            _ => out.push(r),
        }
    }
    out
}

/// Encodes rows (at least one, time-ordered).
pub fn encode(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::new();
    put_uvarint(&mut out, rows.len() as u64);
    let fields: [fn(&Row) -> f64; 5] = [|r| r.min, |r| r.max, |r| r.sum, |r| r.count, |r| r.last];
    for f in fields {
        let s: Vec<(i64, f64)> = rows.iter().map(|r| (r.t, f(r))).collect();
        let b = compact::encode(&s);
        put_uvarint(&mut out, b.len() as u64);
        out.extend_from_slice(&b);
    }
    out
}

/// Decodes a tier chunk (empty when damaged).
pub fn decode(b: &[u8]) -> Vec<Row> {
    let mut pos = 0;
    let Some(n) = get_uvarint(b, &mut pos) else {
        return Vec::new();
    };
    let mut streams = Vec::with_capacity(5);
    for _ in 0..5 {
        let Some(len) = get_uvarint(b, &mut pos) else {
            return Vec::new();
        };
        let Some(part) = b.get(pos..pos + len as usize) else {
            return Vec::new();
        };
        pos += len as usize;
        let s = compact::decode(part);
        if s.len() as u64 != n {
            return Vec::new();
        }
        streams.push(s);
    }
    (0..n as usize)
        .map(|i| Row {
            t: streams[0][i].0,
            min: streams[0][i].1,
            max: streams[1][i].1,
            sum: streams[2][i].1,
            count: streams[3][i].1,
            last: streams[4][i].1,
        })
        .collect()
}

/// The time range of a tier chunk (for ring scans).
pub fn bounds(b: &[u8]) -> Option<(i64, i64)> {
    let rows = decode(b);
    Some((rows.first()?.t, rows.last()?.t))
}

/// The two tier rings.
pub struct Tiers {
    minute: Ring,
    hour: Ring,
}

impl Tiers {
    /// Opens `dir/tier-1m` and `dir/tier-1h` with these disk budgets; with the count of
    /// indexes rebuilt.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        minute_bytes: u64,
        hour_bytes: u64,
    ) -> std::io::Result<(Tiers, usize)> {
        let (minute, m) =
            Ring::open_with(&dir.join("tier-1m"), segment_bytes, minute_bytes, bounds)?;
        let (hour, h) = Ring::open_with(&dir.join("tier-1h"), segment_bytes, hour_bytes, bounds)?;
        Ok((
            Tiers { minute, hour },
            m.rebuilt_indexes + h.rebuilt_indexes,
        ))
    }

    /// Adds the tiers of one sealed raw segment: per series, its samples in time order.
    pub fn add(&mut self, series: &[(u64, Vec<(i64, f64)>)]) -> std::io::Result<()> {
        let mut minutes = Vec::new();
        let mut hours = Vec::new();
        for (id, samples) in series {
            let m = aggregate(samples, MINUTE);
            let (Some(first), Some(last)) = (m.first(), m.last()) else {
                continue;
            };
            minutes.push((*id, first.t, last.t, encode(&m)));
            let h = rollup(&m, HOUR);
            if let (Some(first), Some(last)) = (h.first(), h.last()) {
                hours.push((*id, first.t, last.t, encode(&h)));
            }
        }
        self.minute.write(&minutes)?;
        self.hour.write(&hours)?;
        Ok(())
    }

    /// Rows of `series` in `[mint, maxt]` from the 1-minute tier, else the 1-hour one.
    pub fn read(&self, series: u64, width: i64, mint: i64, maxt: i64) -> Vec<Row> {
        let ring = if width == HOUR {
            &self.hour
        } else {
            &self.minute
        };
        let mut rows: Vec<Row> = ring
            .read_raw(series, mint, maxt)
            .iter()
            .flat_map(|b| decode(b))
            .filter(|r| (mint..=maxt).contains(&r.t))
            .collect();
        rows.sort_by_key(|r| r.t);
        merge(rows)
    }

    /// The oldest bucket of each tier.
    pub fn min_times(&self) -> (Option<i64>, Option<i64>) {
        (self.minute.min_time(), self.hour.min_time())
    }

    /// Applies the tiers' retention (bucket starts before the cuts are dropped).
    pub fn drop_before(&mut self, minute_cut: i64, hour_cut: i64) -> std::io::Result<usize> {
        Ok(self.minute.drop_before(minute_cut)? + self.hour.drop_before(hour_cut)?)
    }

    /// Bytes of both tiers.
    pub fn bytes(&self) -> u64 {
        self.minute.bytes() + self.hour.bytes()
    }

    /// True when a tier still holds `series`.
    pub fn has(&self, series: u64) -> bool {
        self.minute.has(series) || self.hour.has(series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_rollups_and_merges() {
        // 15 s samples over 2.5 minutes, one staleness marker.
        let mut s: Vec<(i64, f64)> = (0..10).map(|i| (i * 15_000, i as f64)).collect();
        s.push((150_000, f64::from_bits(crate::tsdb::STALE_NAN)));
        let m = aggregate(&s, MINUTE);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            Row {
                t: 0,
                min: 0.0,
                max: 3.0,
                sum: 6.0,
                count: 4.0,
                last: 3.0
            }
        );
        assert_eq!(
            m[2],
            Row {
                t: 120_000,
                min: 8.0,
                max: 9.0,
                sum: 17.0,
                count: 2.0,
                last: 9.0
            }
        );
        let h = rollup(&m, HOUR);
        assert_eq!(
            h,
            vec![Row {
                t: 0,
                min: 0.0,
                max: 9.0,
                sum: 45.0,
                count: 10.0,
                last: 9.0
            }]
        );
        // A bucket cut in two chunks merges back to what one pass gives.
        let (a, b) = s.split_at(5);
        let mut parts = aggregate(a, MINUTE);
        parts.extend(aggregate(b, MINUTE));
        assert_eq!(merge(parts), m);
        // Negative times bucket downwards.
        assert_eq!(aggregate(&[(-1, 1.0)], MINUTE)[0].t, -60_000);
    }

    #[test]
    fn chunks_round_trip() {
        let rows: Vec<Row> = (0..100)
            .map(|i| Row {
                t: 1_700_000_040_000 + i * MINUTE,
                min: i as f64 / 4.0,
                max: i as f64 * 3.0,
                sum: (i * i) as f64 / 3.0,
                count: 4.0,
                last: -(i as f64),
            })
            .collect();
        let b = encode(&rows);
        assert_eq!(decode(&b), rows);
        assert_eq!(bounds(&b), Some((rows[0].t, rows[99].t)));
        assert!(decode(&b[..b.len() - 3]).is_empty());
        assert!(decode(&[]).is_empty());
    }
}
