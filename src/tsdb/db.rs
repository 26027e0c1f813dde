//! The store on disk: the head in memory, made durable by the write-ahead log, and the ring
//! of segment files that closed chunks move to. `ingest` returns only after the batch is
//! synced (the acknowledgement contract in ARCHITECTURE.md). `maintain` (every minute, and
//! from `ingest` when closed chunks pile up) closes the chunks of quiet series, writes the
//! closed chunks to the ring (synced), applies retention, drops series left without data,
//! and rewrites the log as a checkpoint of what is still only in memory (series plus the
//! samples of open chunks), so start-up replays at most one open chunk per series.

use std::path::Path;

use super::head::{Head, HeadError, Labels, Matcher};
use super::segment::Ring;
use super::tier::{self, Tiers};
use super::wal::{Record, Sample, Wal};

/// How far ahead of the server's clock a sample may be.
pub const FUTURE_MS: i64 = 10 * 60 * 1000;

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct TsdbOptions {
    pub max_series: usize,
    /// Samples older than this (relative to the newest maintenance time) are dropped.
    pub retention_ms: i64,
    /// Rewrite the log as a checkpoint when it grows past this.
    pub checkpoint_bytes: u64,
    /// Size of one segment file of the ring.
    pub segment_bytes: u64,
    /// The ring's disk budget: the oldest segments go when it is exceeded.
    pub max_disk_bytes: u64,
    /// Open chunks whose newest sample is older than this are closed (series gone quiet
    /// leave memory).
    pub idle_ms: i64,
    /// Closed chunks in memory past this size are written to the ring at once.
    pub flush_bytes: usize,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            max_series: 1_000_000,
            retention_ms: 15 * 24 * 3600 * 1000,
            checkpoint_bytes: 128 << 20,
            segment_bytes: 64 << 20,
            max_disk_bytes: 10 << 30,
            idle_ms: 15 * 60 * 1000,
            flush_bytes: 16 << 20,
        }
    }
}

/// One sample to ingest.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// What an ingest accepted and refused (by index in the batch, with the reason).
#[derive(Debug, Default)]
pub struct Ingested {
    pub accepted: usize,
    pub rejected: Vec<(usize, String)>,
    /// The series id of each labelled sample (None when refused before one was found):
    /// scrape caches remember them.
    pub ids: Vec<Option<u64>>,
    /// Samples given by series id that were refused (index, reason); an unknown id means
    /// the series left the head and must be given by labels again.
    pub rejected_known: Vec<(usize, HeadError)>,
}

/// What opening found.
#[derive(Debug, Default)]
pub struct OpenReport {
    pub series: usize,
    pub samples: usize,
    pub truncated_bytes: u64,
    pub segments: usize,
    pub disk_chunks: usize,
    pub segment_bytes_truncated: u64,
    /// Segment indexes (raw and tiers) that were missing, damaged or of an older format and
    /// were rebuilt by scanning their segments.
    pub rebuilt_indexes: usize,
}

/// What one maintenance pass did.
#[derive(Debug, Default, PartialEq)]
pub struct Maintained {
    pub flushed_chunks: usize,
    pub dropped_segments: usize,
    pub dropped_series: usize,
}

/// The time-series store.
pub struct Tsdb {
    head: Head,
    wal: Wal,
    ring: Ring,
    tiers: Tiers,
    opts: TsdbOptions,
    /// Size of the log right after the last checkpoint.
    checkpointed: u64,
    /// The accepted samples' vector of the last ingest, kept for its capacity (one is
    /// filled per scrape; with musl's allocator a fresh one cost a `mmap`/`munmap` pair).
    spare_samples: Vec<Sample>,
}

/// The most samples whose vector is kept between ingests.
const KEEP_SAMPLES: usize = 1 << 16;

impl Tsdb {
    /// Opens the store in `dir`, replaying the log.
    pub fn open(dir: &Path, opts: TsdbOptions) -> std::io::Result<(Tsdb, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        let (ring, ring_report) = Ring::open(
            &dir.join("segments"),
            opts.segment_bytes,
            opts.max_disk_bytes,
        )?;
        // The tiers get a share of the disk budget: 1/8 for minutes, 1/32 for hours.
        let tier_segment = (opts.segment_bytes / 8).max(4096);
        let (tiers, tier_rebuilt) = Tiers::open(
            dir,
            tier_segment,
            (opts.max_disk_bytes / 8).max(2 * tier_segment),
            (opts.max_disk_bytes / 32).max(2 * tier_segment),
        )?;
        let on_disk = ring.max_times();
        let (wal, replay) = Wal::open(&dir.join("wal"))?;
        let mut head = Head::new(opts.max_series);
        let mut report = OpenReport {
            truncated_bytes: replay.truncated,
            segments: ring_report.segments,
            disk_chunks: ring_report.chunks,
            segment_bytes_truncated: ring_report.truncated,
            rebuilt_indexes: ring_report.rebuilt_indexes + tier_rebuilt,
            ..Default::default()
        };
        for r in replay.records {
            match r {
                Record::Series { id, labels } => {
                    head.restore_series(id, labels);
                    // Samples already in the ring (a crash between a flush and the checkpoint
                    // that follows it) are skipped as duplicates.
                    if let Some(t) = on_disk.get(&id) {
                        head.set_last(id, *t);
                    }
                    report.series += 1;
                }
                Record::Samples(batch) => {
                    for s in batch {
                        // Samples refused now were refused before: the log holds only accepted ones.
                        if head.append(s.series, s.t, s.v).is_ok() {
                            report.samples += 1;
                        }
                    }
                }
            }
        }
        Ok((
            Tsdb {
                checkpointed: wal.size(),
                head,
                wal,
                ring,
                tiers,
                opts,
                spare_samples: Vec::new(),
            },
            report,
        ))
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Seals the active raw segment (and computes its tiers), so that the disk figure
    /// counts its real index rather than an estimate: for benchmarks.
    pub fn seal_segment(&mut self) -> std::io::Result<()> {
        self.ring.seal()?;
        self.downsample_sealed()
    }

    /// Adds samples; durable when this returns Ok. Refused samples are reported, not fatal.
    /// No time bounds (tests, benchmarks): servers use [`Tsdb::ingest_at`].
    pub fn ingest(&mut self, batch: &[Ingest]) -> std::io::Result<Ingested> {
        self.ingest_bounded(&[], batch, i64::MIN, i64::MAX)
    }

    /// Adds samples as at `now_ms`: samples older than the retention or more than
    /// `FUTURE_MS` ahead are refused with the reason (one bad clock must not push a series'
    /// time into the future, where every later sample would be out of order).
    pub fn ingest_at(&mut self, batch: &[Ingest], now_ms: i64) -> std::io::Result<Ingested> {
        self.ingest_known_at(&[], batch, now_ms)
    }

    /// Like [`Tsdb::ingest_at`], with samples of series known by id (a scrape cache's hits:
    /// no label work at all) besides the labelled ones, in one synced write.
    pub fn ingest_known_at(
        &mut self,
        known: &[Sample],
        batch: &[Ingest],
        now_ms: i64,
    ) -> std::io::Result<Ingested> {
        self.ingest_bounded(
            known,
            batch,
            now_ms.saturating_sub(self.opts.retention_ms),
            now_ms.saturating_add(FUTURE_MS),
        )
    }

    fn ingest_bounded(
        &mut self,
        known: &[Sample],
        batch: &[Ingest],
        min_t: i64,
        max_t: i64,
    ) -> std::io::Result<Ingested> {
        let mut out = Ingested {
            ids: Vec::with_capacity(batch.len()),
            ..Default::default()
        };
        let mut records = Vec::new();
        let mut samples = std::mem::take(&mut self.spare_samples);
        samples.clear();
        samples.reserve(batch.len() + known.len());
        for (i, s) in known.iter().enumerate() {
            let refused = if s.t < min_t {
                Some(HeadError::TooOld(s.t))
            } else if s.t > max_t {
                Some(HeadError::TooNew(s.t))
            } else {
                self.head.append(s.series, s.t, s.v).err()
            };
            match refused {
                None => {
                    samples.push(*s);
                    out.accepted += 1;
                }
                Some(e) => out.rejected_known.push((i, e)),
            }
        }
        for (i, s) in batch.iter().enumerate() {
            out.ids.push(None);
            if s.t < min_t {
                out.rejected.push((i, HeadError::TooOld(s.t).to_string()));
                continue;
            }
            if s.t > max_t {
                out.rejected.push((i, HeadError::TooNew(s.t).to_string()));
                continue;
            }
            let count_before = self.head.series_count();
            let id = match self.head.series_id(s.labels.clone()) {
                Ok(id) => id,
                Err(e) => {
                    out.rejected.push((i, e.to_string()));
                    continue;
                }
            };
            out.ids[i] = Some(id);
            if self.head.series_count() > count_before {
                let mut labels = s.labels.clone();
                labels.sort();
                records.push(Record::Series { id, labels });
            }
            match self.head.append(id, s.t, s.v) {
                Ok(()) => {
                    samples.push(Sample {
                        series: id,
                        t: s.t,
                        v: s.v,
                    });
                    out.accepted += 1;
                }
                Err(HeadError::Append(e)) => out.rejected.push((i, e.to_string())),
                Err(e) => out.rejected.push((i, e.to_string())),
            }
        }
        if !samples.is_empty() {
            records.push(Record::Samples(samples));
        }
        if !records.is_empty() {
            self.wal.append_records(&records)?;
        }
        if let Some(Record::Samples(s)) = records.pop()
            && s.capacity() <= KEEP_SAMPLES
        {
            self.spare_samples = s;
        }
        if self.head.closed_bytes() > self.opts.flush_bytes {
            self.flush()?;
        }
        Ok(out)
    }

    /// Writes the head's closed chunks to the ring and checkpoints the log. On a write
    /// error the chunks stay in memory (and in the log) for the next try.
    fn flush(&mut self) -> std::io::Result<(usize, usize)> {
        let chunks = self.head.take_closed();
        let n = chunks.len();
        if n == 0 {
            return Ok((0, 0));
        }
        let keep: Vec<_> = chunks.clone();
        let dropped = match self.ring.write(&chunks) {
            Ok(d) => d,
            Err(e) => {
                self.head.restore_closed(keep);
                return Err(e);
            }
        };
        self.downsample_sealed()?;
        // The log is rewritten once it holds well more than the head (samples now in the
        // ring are skipped on replay), which bounds start-up by the head's size.
        if self.wal.size() > 4 * self.checkpointed + (1 << 20)
            || self.wal.size() > self.opts.checkpoint_bytes
        {
            self.checkpoint()?;
        }
        Ok((n, dropped))
    }

    /// Computes the tiers of raw segments sealed since the last call.
    fn downsample_sealed(&mut self) -> std::io::Result<()> {
        for seq in self.ring.take_sealed() {
            let series: Vec<(u64, Vec<(i64, f64)>)> = self
                .ring
                .segment_chunks(seq)
                .into_iter()
                .map(|(id, chunks)| {
                    let mut samples = Vec::new();
                    for c in chunks {
                        super::compact::decode_into(&c, i64::MIN, i64::MAX, &mut samples);
                    }
                    (id, samples)
                })
                .collect();
            self.tiers.add(&series)?;
        }
        Ok(())
    }

    /// Rewrites the log as what is only in memory: every series, and their samples in
    /// memory (open chunks, and closed ones not yet in the ring).
    fn checkpoint(&mut self) -> std::io::Result<()> {
        let mut records = Vec::new();
        for (id, labels, samples) in self.head.dump() {
            records.push(Record::Series { id, labels });
            for chunk in samples.chunks(4096) {
                records.push(Record::Samples(
                    chunk
                        .iter()
                        .map(|(t, v)| Sample {
                            series: id,
                            t: *t,
                            v: *v,
                        })
                        .collect(),
                ));
            }
        }
        self.wal.rewrite(&records)?;
        self.checkpointed = self.wal.size();
        Ok(())
    }

    /// Closes quiet series' chunks, moves closed chunks to the ring, applies retention
    /// relative to `now_ms`, drops series left without data, and checkpoints the log.
    pub fn maintain(&mut self, now_ms: i64) -> std::io::Result<Maintained> {
        let mut m = Maintained::default();
        self.head.close_idle(now_ms - self.opts.idle_ms);
        let cut = now_ms - self.opts.retention_ms;
        let (flushed, dropped) = self.flush()?;
        m.flushed_chunks = flushed;
        self.ring.seal_expired(cut)?;
        self.downsample_sealed()?;
        m.dropped_segments = dropped + self.ring.drop_before(cut)?;
        let ring = &self.ring;
        // Tiers outlive the raw samples: minutes 4×, hours 24× the retention.
        let r = self.opts.retention_ms;
        m.dropped_segments += self.tiers.drop_before(
            now_ms.saturating_sub(r.saturating_mul(4)),
            now_ms.saturating_sub(r.saturating_mul(24)),
        )?;
        let tiers = &self.tiers;
        m.dropped_series = self
            .head
            .drop_before(cut, |id| ring.has(id) || tiers.has(id));
        if m.dropped_series > 0
            || m.dropped_segments > 0
            || self.wal.size() > self.opts.checkpoint_bytes
        {
            self.checkpoint()?;
        }
        Ok(m)
    }

    /// Bytes in the write-ahead log.
    pub fn wal_bytes(&self) -> u64 {
        self.wal.size()
    }
}

impl Tsdb {
    /// Fills the part of `[mint, first_raw)` the raw samples no longer cover from the
    /// tiers: each bucket's last value, stamped at the bucket's end (minutes where kept,
    /// hours before that).
    fn fill_from_tiers(&self, id: u64, mint: i64, first_raw: i64, out: &mut Vec<(i64, f64)>) {
        if first_raw <= mint {
            return;
        }
        let minutes = self.tiers.read(
            id,
            tier::MINUTE,
            mint.saturating_sub(tier::MINUTE - 1),
            first_raw - 1,
        );
        let hours_end = minutes.first().map_or(first_raw, |r| r.t) - 1;
        let hours = self.tiers.read(
            id,
            tier::HOUR,
            mint.saturating_sub(tier::HOUR - 1),
            hours_end,
        );
        for (rows, width) in [(hours, tier::HOUR), (minutes, tier::MINUTE)] {
            for r in rows {
                let t = r.t.saturating_add(width - 1);
                if t >= mint && t < first_raw && out.last().is_none_or(|l| l.0 < t) {
                    out.push((t, r.last));
                }
            }
        }
    }

    /// Bytes of the downsampled tiers on disk.
    pub fn tier_bytes(&self) -> u64 {
        self.tiers.bytes()
    }
}

impl super::Source for Tsdb {
    /// Samples from the tiers (only before the oldest raw sample), the ring, then the head:
    /// the three never overlap in time, because chunks reach the ring only once closed and
    /// tiers fill only what raw samples no longer cover.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let ids = self.head.select_ids(matchers);
        // Decoding is most of a large selection's time and each series decodes on its
        // own: with more than one core, the series are split among threads.
        let threads = super::cores();
        if threads < 2 || ids.len() < 64 {
            return self.select_ids(&ids, mint, maxt);
        }
        let per = ids.len().div_ceil(threads);
        std::thread::scope(|sc| {
            let parts: Vec<_> = ids
                .chunks(per)
                .map(|part| sc.spawn(move || self.select_ids(part, mint, maxt)))
                .collect();
            parts
                .into_iter()
                // A panic is a bug: it reaches the caller rather than a partial answer.
                .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

impl Tsdb {
    /// The samples of `ids` in `[mint, maxt]` with their labels (series without any are
    /// left out).
    fn select_ids(&self, ids: &[u64], mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let mut out = Vec::new();
        // Series of one selector tend to hold as many samples as each other: sizing each
        // vector like the last saves the copies of growing it sample by sample.
        let mut expect = 0;
        for &id in ids {
            let mut raw = Vec::with_capacity(expect);
            self.ring.read(id, mint, maxt, &mut raw);
            self.head.samples_into(id, mint, maxt, &mut raw);
            expect = raw.len();
            let first_raw = raw.first().map_or(maxt.saturating_add(1), |s| s.0);
            let mut samples = Vec::new();
            self.fill_from_tiers(id, mint, first_raw, &mut samples);
            // Most series have nothing from the tiers: keep the raw vector as it is.
            let samples = if samples.is_empty() {
                raw
            } else {
                samples.extend(raw);
                samples
            };
            if !samples.is_empty()
                && let Some(l) = self.head.labels_of(id)
            {
                out.push((l, samples));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::Source;
    use crate::tsdb::head::Matcher;

    fn l(name: &str, inst: &str) -> Labels {
        vec![
            ("__name__".into(), name.into()),
            ("instance".into(), inst.into()),
        ]
    }

    #[test]
    fn ingest_replay_and_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let opts = TsdbOptions {
            checkpoint_bytes: 2_000,
            ..Default::default()
        };
        {
            let (mut db, rep) = Tsdb::open(d.path(), opts.clone()).unwrap();
            assert_eq!(rep.series, 0);
            for t in 0..200 {
                let batch = vec![
                    Ingest {
                        labels: l("up", "a"),
                        t: t * 1000,
                        v: 1.0,
                    },
                    Ingest {
                        labels: l("up", "b"),
                        t: t * 1000,
                        v: t as f64,
                    },
                ];
                let r = db.ingest(&batch).unwrap();
                assert_eq!(r.accepted, 2);
            }
            let r = db
                .ingest(&[
                    Ingest {
                        labels: l("up", "a"),
                        t: 5,
                        v: 1.0,
                    },
                    Ingest {
                        labels: vec![("x".into(), "1".into())],
                        t: 1,
                        v: 1.0,
                    },
                ])
                .unwrap();
            assert_eq!(r.accepted, 0);
            assert_eq!(r.rejected.len(), 2);
            assert!(r.rejected[0].1.contains("out of order"), "{:?}", r.rejected);
            let before = db.wal_bytes();
            assert!(before > 2_000);
            db.maintain(200_000).unwrap();
            // One record per series instead of one per batch: smaller, same content.
            assert!(
                db.wal_bytes() < before * 3 / 4,
                "{} vs {before}",
                db.wal_bytes()
            );
            db.ingest(&[Ingest {
                labels: l("up", "c"),
                t: 300_000,
                v: 3.0,
            }])
            .unwrap();
        }
        let (db, rep) = Tsdb::open(d.path(), opts).unwrap();
        assert_eq!(rep.series, 3);
        // Closed chunks went to the ring; the log holds only the open chunks.
        assert_eq!(rep.disk_chunks, 2);
        assert_eq!(rep.samples, 2 * 80 + 1);
        let got = Source::select(&db, &[Matcher::eq("instance", "b")], 0, i64::MAX);
        assert_eq!(got[0].1.len(), 200);
        assert_eq!(got[0].1[199], (199_000, 199.0));
        assert!(got[0].1.windows(2).all(|w| w[0].0 < w[1].0));
    }

    fn count(db: &Tsdb, name: &str) -> Vec<(i64, f64)> {
        let mut got = Source::select(db, &[Matcher::eq("__name__", name)], i64::MIN, i64::MAX);
        got.pop().map(|(_, v)| v).unwrap_or_default()
    }

    #[test]
    fn large_selections_split_among_threads_answer_as_one() {
        let d = tempfile::tempdir().unwrap();
        let (mut db, _) = Tsdb::open(d.path(), TsdbOptions::default()).unwrap();
        let batch: Vec<Ingest> = (0..300i64)
            .flat_map(|s| {
                (0..=s % 5).map(move |t| Ingest {
                    labels: l("many", &format!("i{s}")),
                    t: 1_000 * t,
                    v: (s * 10 + t) as f64,
                })
            })
            .collect();
        db.ingest(&batch).unwrap();
        let ms = [Matcher::eq("__name__", "many")];
        let got = Source::select(&db, &ms, i64::MIN, i64::MAX);
        let ids = db.head().select_ids(&ms);
        assert_eq!(got, db.select_ids(&ids, i64::MIN, i64::MAX));
        assert_eq!(got.len(), 300);
        assert_eq!(got.iter().map(|(_, p)| p.len()).sum::<usize>(), batch.len());
        // A window cuts every series alike.
        let cut = Source::select(&db, &ms, 1_000, 2_000);
        assert!(
            cut.iter()
                .all(|(_, p)| p.iter().all(|s| (1_000..=2_000).contains(&s.0)))
        );
        assert_eq!(cut.len(), 300 - 60);
    }

    #[test]
    fn a_crash_between_flush_and_checkpoint_replays_no_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let opts = TsdbOptions {
            segment_bytes: 4096,
            ..Default::default()
        };
        let wal = d.path().join("wal");
        let saved = d.path().join("wal.before");
        {
            let (mut db, _) = Tsdb::open(d.path(), opts.clone()).unwrap();
            for t in 0..1000 {
                db.ingest(&[Ingest {
                    labels: l("m", "a"),
                    t: t * 1000,
                    v: t as f64,
                }])
                .unwrap();
            }
            // The log as it was before the flush: a crash before the checkpoint leaves it.
            std::fs::copy(&wal, &saved).unwrap();
            let m = db.maintain(1_000_000).unwrap();
            assert_eq!(m.flushed_chunks, 8);
            // Ingesting refuses what the ring already has.
            let r = db
                .ingest(&[Ingest {
                    labels: l("m", "a"),
                    t: 5_000,
                    v: 0.0,
                }])
                .unwrap();
            assert_eq!(r.accepted, 0);
        }
        std::fs::rename(&saved, &wal).unwrap();
        let (mut db, rep) = Tsdb::open(d.path(), opts.clone()).unwrap();
        assert_eq!(rep.disk_chunks, 8);
        assert_eq!(rep.rebuilt_indexes, 0, "indexes written are read back");
        let got = count(&db, "m");
        assert_eq!(got.len(), 1000, "each sample exactly once");
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        // Sealed raw segments and their tiers reopen from their indexes.
        db.seal_segment().unwrap();
        drop(db);
        let (db, rep) = Tsdb::open(d.path(), opts.clone()).unwrap();
        assert_eq!(rep.rebuilt_indexes, 0);
        assert_eq!(count(&db, "m").len(), 1000);
    }

    #[test]
    fn quiet_series_leave_memory_and_the_disk_budget_holds() {
        let d = tempfile::tempdir().unwrap();
        let opts = TsdbOptions {
            segment_bytes: 4096,
            max_disk_bytes: 16_384,
            idle_ms: 60_000,
            retention_ms: i64::MAX / 4,
            ..Default::default()
        };
        let (mut db, _) = Tsdb::open(d.path(), opts).unwrap();
        for t in 0..10 {
            db.ingest(&[Ingest {
                labels: l("quiet", "a"),
                t: t * 1000,
                v: 1.0,
            }])
            .unwrap();
        }
        db.maintain(1_000_000).unwrap();
        assert_eq!(
            db.head().chunk_bytes(),
            0,
            "the idle open chunk left memory"
        );
        assert_eq!(count(&db, "quiet").len(), 10, "and is read from disk");
        // Far more data than the budget: the oldest segments go, the newest stay.
        for b in 0..200 {
            let batch: Vec<Ingest> = (b * 100..(b + 1) * 100)
                .map(|t| Ingest {
                    labels: l("busy", "a"),
                    t: 2_000_000 + t * 1000,
                    // Arbitrary floats: chunks that stay large.
                    v: (t as f64 * 0.7).sin(),
                })
                .collect();
            db.ingest(&batch).unwrap();
            if b % 10 == 0 {
                db.maintain(2_000_000 + b * 100_000).unwrap();
            }
        }
        db.maintain(30_000_000).unwrap();
        assert!(
            db.ring().bytes() <= 16_384 + 4096 + 4096,
            "{}",
            db.ring().bytes()
        );
        let busy = count(&db, "busy");
        assert_eq!(busy.last().unwrap().0, 2_000_000 + 19_999 * 1000);
        assert!(busy.len() < 20_000);
        // Its raw segment was recycled, and its minute tier (to the tier's own budget); the
        // hour tier still has its one hour.
        let mut raw = Vec::new();
        db.ring().read(1, i64::MIN, i64::MAX, &mut raw);
        assert!(raw.is_empty(), "raw samples recycled");
        assert_eq!(count(&db, "quiet"), vec![(3_599_999, 1.0)]);
    }

    #[test]
    fn samples_far_from_now_are_refused_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        let (mut db, _) = Tsdb::open(d.path(), TsdbOptions::default()).unwrap();
        let now = 1_700_000_000_000;
        let at = |t| Ingest {
            labels: l("clock", "a"),
            t,
            v: 1.0,
        };
        let r = db
            .ingest_at(
                &[at(now + 3_600_000), at(now - 30 * 86_400_000), at(now)],
                now,
            )
            .unwrap();
        assert_eq!(r.accepted, 1);
        assert!(r.rejected[0].1.contains("future"), "{:?}", r.rejected);
        assert!(r.rejected[1].1.contains("retention"), "{:?}", r.rejected);
        // The series was not pushed into the future: the next sample is accepted.
        assert_eq!(
            db.ingest_at(&[at(now + 15_000)], now + 15_000)
                .unwrap()
                .accepted,
            1
        );
    }

    #[test]
    fn tiers_serve_ranges_the_raw_segments_no_longer_hold() {
        let d = tempfile::tempdir().unwrap();
        let hour = 3_600_000;
        let opts = TsdbOptions {
            segment_bytes: 4096,
            retention_ms: hour,
            idle_ms: 60_000,
            ..Default::default()
        };
        {
            let (mut db, _) = Tsdb::open(d.path(), opts.clone()).unwrap();
            // Three hours at 15 s of a counter rising 1 per sample.
            for b in 0..3 {
                let batch: Vec<Ingest> = (b * 240..(b + 1) * 240)
                    .map(|i| Ingest {
                        labels: l("tiered", "a"),
                        t: i * 15_000,
                        v: i as f64,
                    })
                    .collect();
                db.ingest(&batch).unwrap();
                db.maintain((b + 1) * hour).unwrap();
            }
            // An hour later every raw sample is past retention: raw segments go, tiers stay.
            let m = db.maintain(4 * hour + 1).unwrap();
            assert!(m.dropped_segments > 0);
            assert_eq!(db.ring().bytes(), 8, "only an empty active segment is left");
            assert!(db.tier_bytes() > 0);
        }
        let (db, _) = Tsdb::open(d.path(), opts).unwrap();
        let got = count(&db, "tiered");
        // One sample per minute: the last value of each minute, stamped at its end.
        assert_eq!(got.len(), 180, "{:?}", &got[..3]);
        assert_eq!(got[0], (59_999, 3.0));
        assert_eq!(got[179], (3 * hour - 1, 719.0));
        let part = Source::select(&db, &[Matcher::eq("__name__", "tiered")], hour, 2 * hour);
        assert_eq!(part[0].1.len(), 60);
    }

    #[test]
    fn retention_applies_and_survives_restart() {
        let d = tempfile::tempdir().unwrap();
        let opts = TsdbOptions {
            retention_ms: 1_000_000,
            checkpoint_bytes: 1,
            ..Default::default()
        };
        {
            let (mut db, _) = Tsdb::open(d.path(), opts.clone()).unwrap();
            for t in 0..500 {
                db.ingest(&[Ingest {
                    labels: l("old", "a"),
                    t: t * 1000,
                    v: 1.0,
                }])
                .unwrap();
            }
            // Past the raw retention the series lives on in the tiers…
            db.ingest(&[Ingest {
                labels: l("new", "a"),
                t: 5_000_000,
                v: 1.0,
            }])
            .unwrap();
            assert_eq!(db.maintain(5_000_000).unwrap().dropped_series, 0);
            // (the minute tier keeps 4× the retention: gone too; the hour tier keeps 24×)
            assert_eq!(count(&db, "old"), vec![(3_599_999, 1.0)]);
            // …and leaves when the hour tier's retention (24×) is past too.
            db.ingest(&[Ingest {
                labels: l("new", "a"),
                t: 30_000_000,
                v: 1.0,
            }])
            .unwrap();
            assert_eq!(db.maintain(30_000_000).unwrap().dropped_series, 1);
        }
        let (db, rep) = Tsdb::open(d.path(), opts).unwrap();
        assert_eq!(rep.series, 1, "the dropped series is not replayed");
        assert_eq!(db.head().label_values("__name__"), vec!["new"]);
    }
}
