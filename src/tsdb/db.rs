//! The store on disk: the head in memory, made durable by the write-ahead log. `ingest`
//! returns only after the batch is synced (the acknowledgement contract in ARCHITECTURE.md).
//! When the log outgrows `checkpoint_bytes` it is rewritten as a checkpoint of the head
//! (series plus their samples), so start-up replays at most about the head's size.

use std::path::Path;

use super::head::{Head, HeadError, Labels};
use super::wal::{Record, Sample, Wal};

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct TsdbOptions {
    pub max_series: usize,
    /// Samples older than this (relative to the newest maintenance time) are dropped.
    pub retention_ms: i64,
    /// Rewrite the log as a checkpoint when it grows past this.
    pub checkpoint_bytes: u64,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            max_series: 1_000_000,
            retention_ms: 15 * 24 * 3600 * 1000,
            checkpoint_bytes: 128 << 20,
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
}

/// What opening found.
#[derive(Debug, Default)]
pub struct OpenReport {
    pub series: usize,
    pub samples: usize,
    pub truncated_bytes: u64,
}

/// The time-series store.
pub struct Tsdb {
    head: Head,
    wal: Wal,
    opts: TsdbOptions,
}

impl Tsdb {
    /// Opens the store in `dir`, replaying the log.
    pub fn open(dir: &Path, opts: TsdbOptions) -> std::io::Result<(Tsdb, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        let (wal, replay) = Wal::open(&dir.join("wal"))?;
        let mut head = Head::new(opts.max_series);
        let mut report = OpenReport {
            truncated_bytes: replay.truncated,
            ..Default::default()
        };
        for r in replay.records {
            match r {
                Record::Series { id, labels } => {
                    head.restore_series(id, labels);
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
        Ok((Tsdb { head, wal, opts }, report))
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Adds samples; durable when this returns Ok. Refused samples are reported, not fatal.
    pub fn ingest(&mut self, batch: &[Ingest]) -> std::io::Result<Ingested> {
        let mut out = Ingested::default();
        let mut records = Vec::new();
        let mut samples = Vec::with_capacity(batch.len());
        for (i, s) in batch.iter().enumerate() {
            let count_before = self.head.series_count();
            let id = match self.head.series_id(s.labels.clone()) {
                Ok(id) => id,
                Err(e) => {
                    out.rejected.push((i, e.to_string()));
                    continue;
                }
            };
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
        Ok(out)
    }

    /// Applies retention relative to `now_ms` and checkpoints a grown log.
    pub fn maintain(&mut self, now_ms: i64) -> std::io::Result<usize> {
        let dropped = self.head.drop_before(now_ms - self.opts.retention_ms);
        if self.wal.size() > self.opts.checkpoint_bytes
            || dropped > 0 && self.wal.size() > self.opts.checkpoint_bytes / 4
        {
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
        }
        Ok(dropped)
    }

    /// Bytes in the write-ahead log.
    pub fn wal_bytes(&self) -> u64 {
        self.wal.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(rep.samples, 401);
        let got = db
            .head()
            .select(&[Matcher::eq("instance", "b")], 0, i64::MAX);
        assert_eq!(got[0].1.len(), 200);
        assert_eq!(got[0].1[199], (199_000, 199.0));
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
            db.ingest(&[Ingest {
                labels: l("new", "a"),
                t: 5_000_000,
                v: 1.0,
            }])
            .unwrap();
            assert_eq!(db.maintain(5_000_000).unwrap(), 1);
        }
        let (db, rep) = Tsdb::open(d.path(), opts).unwrap();
        assert_eq!(rep.series, 1, "the dropped series is not replayed");
        assert_eq!(db.head().label_values("__name__"), vec!["new"]);
    }
}
