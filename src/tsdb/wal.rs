//! The write-ahead log: every accepted batch of samples is appended as one checksummed
//! record and synced before the batch is acknowledged, so an acknowledged sample survives
//! `kill -9` and power loss (within what the disk's fsync promises).
//!
//! Record: `len: u32 LE` (payload bytes) ‖ `crc: u32 LE` (CRC-32 of the payload) ‖ payload.
//! Payload: a kind byte, then
//! - kind 1, series: `id` (LEB128), label count (LEB128), then per label name and value as
//!   length-prefixed UTF-8 (LEB128 length) — written before the first sample of a series;
//! - kind 2, samples: `count` (LEB128), then per sample `series` (LEB128 u64), `t` (zig-zag
//!   LEB128 of the difference to the previous sample's t in the record, the first against 0),
//!   `v` (8 bytes LE, bit pattern as is).
//!
//! Replay reads records in order and stops at the first short or corrupt one — the torn tail
//! of a crash — truncating the file there, so later appends follow the last good record.
//! Loss window: nothing acknowledged is lost; a batch being written during a crash is lost
//! whole (never half), because its record fails the length or checksum test.

use super::varint::{get_uvarint, put_uvarint, unzigzag, zigzag};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One sample of one series (by the index's series id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub series: u64,
    pub t: i64,
    pub v: f64,
}

/// Largest record payload accepted on replay (a damaged length must not allocate gigabytes).
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Series {
        id: u64,
        labels: Vec<(String, String)>,
    },
    Samples(Vec<Sample>),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_str(b: &[u8], pos: &mut usize) -> Option<String> {
    let n = get_uvarint(b, pos)? as usize;
    let s = std::str::from_utf8(b.get(*pos..pos.checked_add(n)?)?)
        .ok()?
        .to_string();
    *pos += n;
    Some(s)
}

/// Encodes a batch of samples as one record (header included).
pub fn encode_record(batch: &[Sample]) -> Vec<u8> {
    encode(&Record::Samples(batch.to_vec()))
}

/// Encodes one record (header included).
pub fn encode(rec: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(rec, &mut out);
    out
}

/// Appends one encoded record (header included) to `out`.
pub fn encode_into(rec: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    // Length and CRC, filled in once the payload is written.
    out.extend_from_slice(&[0; 8]);
    match rec {
        Record::Series { id, labels } => {
            out.push(1);
            put_uvarint(out, *id);
            put_uvarint(out, labels.len() as u64);
            for (n, v) in labels {
                put_str(out, n);
                put_str(out, v);
            }
        }
        Record::Samples(batch) => {
            out.reserve(batch.len() * 12 + 8);
            out.push(2);
            put_uvarint(out, batch.len() as u64);
            let mut prev_t = 0i64;
            for s in batch {
                put_uvarint(out, s.series);
                put_uvarint(out, zigzag(s.t.wrapping_sub(prev_t)));
                out.extend_from_slice(&s.v.to_bits().to_le_bytes());
                prev_t = s.t;
            }
        }
    }
    let payload = start + 8;
    let len = (out.len() - payload) as u32;
    let crc = crc32fast::hash(&out[payload..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..payload].copy_from_slice(&crc.to_le_bytes());
}

fn decode_payload(p: &[u8]) -> Option<Record> {
    let (&kind, rest) = p.split_first()?;
    let mut pos = 0;
    let rec = match kind {
        1 => {
            let id = get_uvarint(rest, &mut pos)?;
            let n = get_uvarint(rest, &mut pos)?;
            let mut labels = Vec::with_capacity(n.min(256) as usize);
            for _ in 0..n {
                labels.push((get_str(rest, &mut pos)?, get_str(rest, &mut pos)?));
            }
            Record::Series { id, labels }
        }
        2 => {
            let n = get_uvarint(rest, &mut pos)?;
            let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
            let mut prev_t = 0i64;
            for _ in 0..n {
                let series = get_uvarint(rest, &mut pos)?;
                let t = prev_t.wrapping_add(unzigzag(get_uvarint(rest, &mut pos)?));
                let v =
                    f64::from_bits(u64::from_le_bytes(rest.get(pos..pos + 8)?.try_into().ok()?));
                pos += 8;
                out.push(Sample { series, t, v });
                prev_t = t;
            }
            Record::Samples(out)
        }
        _ => return None,
    };
    (pos == rest.len()).then_some(rec)
}

/// Splits a log's bytes into records; returns them and the length of the good prefix.
pub fn decode_log(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut pos = 0;
    let mut records = Vec::new();
    while let Some(h) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(p) = bytes.get(pos + 8..pos + 8 + len as usize) else {
            break;
        };
        if crc32fast::hash(p) != crc {
            break;
        }
        let Some(rec) = decode_payload(p) else { break };
        records.push(rec);
        pos += 8 + len as usize;
    }
    (records, pos)
}

/// An open write-ahead log file.
pub struct Wal {
    file: File,
    path: PathBuf,
    size: u64,
    /// The encoding buffer, kept between appends unless a large batch made it large.
    buf: Vec<u8>,
}

/// The largest encoding buffer kept between appends.
const KEEP_BUF: usize = 1 << 20;

/// What replay found.
#[derive(Debug, Default, PartialEq)]
pub struct Replay {
    pub records: Vec<Record>,
    /// Bytes cut off the end (a torn or corrupt tail).
    pub truncated: u64,
}

impl Wal {
    /// Opens (creating) the log, replays it and cuts off a torn tail.
    pub fn open(path: &Path) -> std::io::Result<(Wal, Replay)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, good) = decode_log(&bytes);
        let truncated = (bytes.len() - good) as u64;
        if truncated > 0 {
            file.set_len(good as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok((
            Wal {
                file,
                path: path.to_path_buf(),
                size: good as u64,
                buf: Vec::new(),
            },
            Replay { records, truncated },
        ))
    }

    /// Appends a batch of samples and syncs it: when this returns Ok the batch is durable.
    pub fn append(&mut self, batch: &[Sample]) -> std::io::Result<()> {
        self.append_records(&[Record::Samples(batch.to_vec())])
    }

    /// Appends records with one sync for all (group commit).
    pub fn append_records(&mut self, records: &[Record]) -> std::io::Result<()> {
        // One buffer for every append (a scrape's record is ~10 KB): a fresh one each time
        // was allocated, grown and freed per scrape.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for r in records {
            encode_into(r, &mut buf);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        let len = buf.len() as u64;
        if buf.capacity() <= KEEP_BUF {
            self.buf = buf;
        }
        if let Err(e) = written {
            // A partial write (full disk) must not stay in front of later records.
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += len;
        Ok(())
    }

    /// Replaces the log with `records` (a checkpoint of the head), atomically: a crash leaves
    /// either the old log or the new one.
    pub fn rewrite(&mut self, records: &[Record]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("checkpoint");
        let mut f = File::create(&tmp)?;
        let mut size = 0u64;
        for r in records {
            let b = encode(r);
            f.write_all(&b)?;
            size += b.len() as u64;
        }
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.size = size;
        Ok(())
    }

    /// Bytes in the log.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Empties the log (after its samples were written to durable chunks).
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(n: u64, base: i64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                series: i % 7,
                t: base + i as i64 * 15_000,
                v: i as f64 * 1.5,
            })
            .collect()
    }

    fn batches(r: &Replay) -> Vec<Vec<Sample>> {
        r.records
            .iter()
            .filter_map(|x| match x {
                Record::Samples(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    fn same(a: &[Vec<Sample>], b: &[Vec<Sample>]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| {
                        p.series == q.series && p.t == q.t && p.v.to_bits() == q.v.to_bits()
                    })
            })
    }

    #[test]
    fn replay_returns_every_acknowledged_batch() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wal");
        let written = vec![
            batch(3, 0),
            batch(100, 1_000_000),
            vec![Sample {
                series: 9,
                t: -5,
                v: f64::NAN,
            }],
        ];
        {
            let (mut wal, replay) = Wal::open(&path).unwrap();
            assert_eq!(replay, Replay::default());
            for b in &written {
                wal.append(b).unwrap();
            }
        }
        let (_, replay) = Wal::open(&path).unwrap();
        assert!(same(&batches(&replay), &written));
        assert_eq!(replay.truncated, 0);
    }

    #[test]
    fn a_torn_last_record_is_cut_and_appends_continue() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wal");
        {
            let (mut wal, _) = Wal::open(&path).unwrap();
            wal.append(&batch(10, 0)).unwrap();
            wal.append(&batch(10, 500_000)).unwrap();
        }
        let full = std::fs::metadata(&path).unwrap().len();
        // Every possible tear inside the second record loses that record only.
        let first = encode_record(&batch(10, 0)).len() as u64;
        for cut in first..full {
            let p2 = d.path().join(format!("wal-{cut}"));
            std::fs::copy(&path, &p2).unwrap();
            OpenOptions::new()
                .write(true)
                .open(&p2)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let (mut wal, replay) = Wal::open(&p2).unwrap();
            assert_eq!(replay.records.len(), 1, "cut at {cut}");
            assert_eq!(replay.truncated, cut - first);
            wal.append(&batch(2, 9_000_000)).unwrap();
            drop(wal);
            let (_, again) = Wal::open(&p2).unwrap();
            assert_eq!(again.records.len(), 2, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_stops_replay_there() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wal");
        {
            let (mut wal, _) = Wal::open(&path).unwrap();
            for i in 0..3 {
                wal.append(&batch(5, i * 1_000_000)).unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let second = encode_record(&batch(5, 0)).len();
        bytes[second + 12] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (_, replay) = Wal::open(&path).unwrap();
        assert_eq!(replay.records.len(), 1);
        assert!(replay.truncated > 0);
    }

    #[test]
    fn series_records_and_checkpoints() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wal");
        let labels = vec![
            ("__name__".to_string(), "up".to_string()),
            ("job".to_string(), "a \"b\"".to_string()),
        ];
        {
            let (mut wal, _) = Wal::open(&path).unwrap();
            wal.append_records(&[
                Record::Series {
                    id: 7,
                    labels: labels.clone(),
                },
                Record::Samples(batch(2, 0)),
            ])
            .unwrap();
            wal.rewrite(&[Record::Series {
                id: 7,
                labels: labels.clone(),
            }])
            .unwrap();
            wal.append(&batch(1, 99)).unwrap();
        }
        let (_, replay) = Wal::open(&path).unwrap();
        assert_eq!(replay.records.len(), 2);
        assert_eq!(replay.records[0], Record::Series { id: 7, labels });
        assert!(!d.path().join("wal.checkpoint").exists());
    }

    proptest! {
        #[test]
        fn records_round_trip(v in prop::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..200)) {
            let b: Vec<Sample> = v.into_iter().map(|(series, t, bits)| Sample { series, t, v: f64::from_bits(bits) }).collect();
            let (records, good) = decode_log(&encode_record(&b));
            prop_assert_eq!(good, encode_record(&b).len());
            let got: Vec<Vec<Sample>> = records.into_iter().filter_map(|r| match r { Record::Samples(s) => Some(s), _ => None }).collect();
            prop_assert!(same(&got, &[b]));
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let (_, good) = decode_log(&bytes);
            prop_assert!(good <= bytes.len());
        }
    }
}
