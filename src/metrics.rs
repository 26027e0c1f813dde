//! The metrics service: the time-series store behind a lock, fed by agents through a bounded
//! channel (a burst is dropped with a warning rather than growing memory) and drained by one
//! ingest task that batches many agents into one synced write. Queries lock the store
//! briefly. No HTTP here; `api` serves the Prometheus-compatible endpoints from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::tsdb::db::{Ingest, Tsdb, TsdbOptions};
use crate::tsdb::head::{Labels, Matcher};
use crate::tsdb::promql::{self, QueryLimits, Value};

/// Metric families remembered for the metadata API; beyond this new ones are not recorded.
const MAX_META: usize = 100_000;

/// What the metadata API tells of a metric family (Prometheus' `type`, `help`, `unit`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricMeta {
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Batches waiting for the ingest task; beyond this new batches are dropped.
const QUEUE: usize = 4096;

/// The metrics service. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    db: Arc<Mutex<Tsdb>>,
    tx: mpsc::Sender<Vec<Ingest>>,
    limits: QueryLimits,
    maintain_every: Duration,
    meta: Arc<Mutex<HashMap<String, MetricMeta>>>,
    /// Where the metadata table is kept across restarts (`tsdb/metadata.json`); the mutex
    /// orders writers so the newest table is the one left on disk.
    meta_file: Arc<Mutex<PathBuf>>,
    remote: crate::remote_write::RemoteWrite,
}

fn lock(m: &Mutex<Tsdb>) -> std::sync::MutexGuard<'_, Tsdb> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The receiving end for [`Metrics::run_ingest`].
pub struct IngestQueue(mpsc::Receiver<Vec<Ingest>>);

impl Metrics {
    /// Opens the store in `dir` (replaying its log).
    pub fn open(
        dir: &Path,
        opts: TsdbOptions,
        limits: QueryLimits,
    ) -> std::io::Result<(Metrics, IngestQueue)> {
        let (db, report) = Tsdb::open(dir, opts)?;
        tracing::info!(
            series = report.series,
            samples = report.samples,
            truncated_bytes = report.truncated_bytes,
            rebuilt_indexes = report.rebuilt_indexes,
            "Metrics store opened."
        );
        let (tx, rx) = mpsc::channel(QUEUE);
        let meta_file = dir.join("metadata.json");
        let meta = match std::fs::read(&meta_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                // Metadata is refilled by the next scrapes: a damaged file must not stop
                // the server.
                tracing::warn!(error = %e, path = %meta_file.display(), "Metric metadata file is damaged: starting without it.");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        Ok((
            Metrics {
                db: Arc::new(Mutex::new(db)),
                tx,
                limits,
                maintain_every: Duration::from_secs(60),
                meta: Arc::new(Mutex::new(meta)),
                meta_file: Arc::new(Mutex::new(meta_file)),
                remote: Default::default(),
            },
            IngestQueue(rx),
        ))
    }

    /// Remembers `# TYPE` and `# HELP` of metric families (from scrapes, imports and
    /// agents); the newest word wins. Bounded; written to `tsdb/metadata.json` (atomically)
    /// when something changed, so imports' metadata survives a restart.
    pub fn note_meta(
        &self,
        meta: &std::collections::BTreeMap<String, crate::tsdb::exposition::Meta>,
    ) {
        if meta.is_empty() {
            return;
        }
        let mut changed = false;
        {
            let mut m = self.meta.lock().unwrap_or_else(|p| p.into_inner());
            for (name, x) in meta {
                if m.len() >= MAX_META && !m.contains_key(name) {
                    continue;
                }
                let e = m.entry(name.clone()).or_default();
                let before = e.clone();
                if let Some(k) = &x.kind {
                    e.kind.clone_from(k);
                }
                if let Some(h) = &x.help {
                    e.help.clone_from(h);
                }
                if e.kind.is_empty() {
                    e.kind = "unknown".into();
                }
                changed |= *e != before;
            }
        }
        if changed {
            self.save_meta();
        }
    }

    /// Writes the metadata table (temp file, sync, rename). A failure is logged: the table
    /// stays in memory and the next change tries again.
    fn save_meta(&self) {
        let path = self.meta_file.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = {
            let m = self.meta.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*m)
        };
        let tmp = path.with_extension("json.tmp");
        let res = bytes.map_err(std::io::Error::other).and_then(|b| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &b)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &*path)
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, path = %path.display(), "Cannot write the metric metadata file.");
        }
    }

    /// Metadata of the families matching `metric` (all when None), at most `limit` names.
    pub fn metadata(&self, metric: Option<&str>, limit: usize) -> Vec<(String, MetricMeta)> {
        let m = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, MetricMeta)> = m
            .iter()
            .filter(|(n, _)| metric.is_none_or(|x| x == n.as_str()))
            .map(|(n, x)| (n.clone(), x.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.truncate(limit);
        v
    }

    /// How often `run_maintenance` works.
    pub fn with_maintenance_every(mut self, every: Duration) -> Self {
        self.maintain_every = every;
        self
    }

    /// Sends every accepted sample to these remote-write endpoints as well.
    pub fn with_remote(mut self, remote: crate::remote_write::RemoteWrite) -> Self {
        self.remote = remote;
        self
    }

    /// How each remote-write endpoint is doing.
    pub fn remote_status(&self) -> Vec<crate::remote_write::Status> {
        self.remote.status()
    }

    /// Queues samples for ingestion; false when the queue is full (the batch is dropped).
    pub fn submit(&self, batch: Vec<Ingest>) -> bool {
        self.tx.try_send(batch).is_ok()
    }

    /// Writes queued batches until `stop`; many batches go into one synced write.
    pub async fn run_ingest(self, mut q: IngestQueue, mut stop: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                b = q.0.recv() => match b { Some(b) => b, None => return },
                _ = stop.changed() => return,
            };
            let mut batch = first;
            while batch.len() < 100_000 {
                match q.0.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            let me = self.clone();
            let r = tokio::task::spawn_blocking(move || me.ingest_now(&batch)).await;
            match r {
                Ok(Ok(res)) if !res.rejected.is_empty() => {
                    tracing::debug!(rejected = res.rejected.len(), first = %res.rejected[0].1, "Some samples were refused.");
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "Writing metrics failed; the batch was not stored.")
                }
                _ => {}
            }
        }
    }

    /// Moves closed chunks to disk, applies retention and checkpoints the log every
    /// `maintain_every` until `stop`.
    pub async fn run_maintenance(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.maintain_every) => {}
                _ = stop.changed() => return,
            }
            let db = self.db.clone();
            let now = chrono::Utc::now().timestamp_millis();
            match tokio::task::spawn_blocking(move || lock(&db).maintain(now)).await {
                Ok(Ok(m)) if m.dropped_series > 0 || m.dropped_segments > 0 => {
                    tracing::info!(
                        series = m.dropped_series,
                        segments = m.dropped_segments,
                        "Metrics past retention or the disk budget were dropped."
                    )
                }
                Ok(Err(e)) => tracing::error!(error = %e, "Metrics maintenance failed."),
                _ => {}
            }
        }
    }

    /// Ingests at once and waits until durable (imports, tests).
    pub fn ingest_now(&self, batch: &[Ingest]) -> std::io::Result<crate::tsdb::db::Ingested> {
        self.ingest_known(&[], batch)
    }

    /// Ingests and waits until durable: samples of series known by id (a scrape cache's
    /// hits) and samples by labels. Only durable samples leave the node: remote write, when
    /// configured, gets the accepted ones, the known ones with their labels from the head
    /// (looked up only then: the point of the cache is no label work).
    pub fn ingest_known(
        &self,
        known: &[crate::tsdb::wal::Sample],
        batch: &[Ingest],
    ) -> std::io::Result<crate::tsdb::db::Ingested> {
        let db = &mut *lock(&self.db);
        let res = db.ingest_known_at(known, batch, chrono::Utc::now().timestamp_millis())?;
        if self.remote.is_active() && !known.is_empty() {
            let refused: std::collections::HashSet<usize> =
                res.rejected_known.iter().map(|(i, _)| *i).collect();
            let labelled: Vec<Ingest> = known
                .iter()
                .enumerate()
                .filter(|(i, _)| !refused.contains(i))
                .filter_map(|(_, s)| {
                    Some(Ingest {
                        labels: db.head().labels_of(s.series)?,
                        t: s.t,
                        v: s.v,
                    })
                })
                .collect();
            self.remote.offer(&labelled, &[]);
        }
        self.remote.offer(batch, &res.rejected);
        Ok(res)
    }

    /// An instant query at `t` (ms).
    pub fn query(&self, q: &str, t: i64) -> Result<Value, String> {
        let e = promql::parse(q)?;
        let db = lock(&self.db);
        promql::Engine::new(&*db, self.limits).eval(&e, t)
    }

    /// A range query.
    pub fn query_range(&self, q: &str, start: i64, end: i64, step: i64) -> Result<Value, String> {
        let e = promql::parse(q)?;
        let db = lock(&self.db);
        promql::eval_range(&*db, &e, start, end, step, self.limits)
    }

    /// Label sets of series matching any of the selectors in `[start, end]`.
    pub fn series(
        &self,
        selectors: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, String> {
        let db = lock(&self.db);
        let mut out: Vec<Labels> = Vec::new();
        for s in selectors {
            let ms = selector_matchers(s)?;
            for (l, _) in crate::tsdb::Source::select(&*db, &ms, start, end) {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
        Ok(out)
    }

    pub fn label_names(&self) -> Vec<String> {
        lock(&self.db).head().label_names()
    }

    pub fn label_values(&self, name: &str) -> Vec<String> {
        lock(&self.db).head().label_values(name)
    }

    /// Series count and chunk bytes in memory (for /metrics and the UI).
    pub fn stats(&self) -> (usize, usize) {
        let db = lock(&self.db);
        (db.head().series_count(), db.head().chunk_bytes())
    }

    /// The segment ring: files, bytes, chunks indexed.
    pub fn disk_stats(&self) -> (usize, u64, usize) {
        let db = lock(&self.db);
        (
            db.ring().segment_count(),
            db.ring().bytes(),
            db.ring().chunk_count(),
        )
    }
}

/// Matchers of a `match[]` selector such as `up{job="node"}`.
pub fn selector_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    match promql::parse(s)? {
        promql_parser::parser::Expr::VectorSelector(vs) => promql::vector_matchers(&vs),
        _ => Err(format!("{s:?} is not a series selector")),
    }
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub accepted: usize,
    pub rejected: usize,
    /// The first problems, for the operator.
    pub errors: Vec<String>,
    /// `# TYPE` / `# HELP` of the families in the text (for the metadata API).
    #[serde(skip)]
    pub meta: std::collections::BTreeMap<String, crate::tsdb::exposition::Meta>,
}

/// Backfills exposition text with timestamps (OpenMetrics: seconds; Prometheus text:
/// milliseconds). Samples are sorted by series and time first, so a file need not be ordered;
/// samples without a timestamp are refused (a backfill must say when).
pub fn import_text(
    text: &str,
    format: crate::tsdb::exposition::Format,
    mut ingest: impl FnMut(&[Ingest]) -> std::io::Result<crate::tsdb::db::Ingested>,
) -> Result<ImportReport, String> {
    let parsed = crate::tsdb::exposition::parse(text, format, &Default::default())
        .map_err(|e| e.to_string())?;
    let mut report = ImportReport {
        meta: parsed.meta,
        ..Default::default()
    };
    let mut rows: Vec<Ingest> = Vec::with_capacity(parsed.samples.len());
    for s in parsed.samples {
        let Some(t) = s.timestamp_ms else {
            report.rejected += 1;
            if report.errors.len() < 20 {
                report.errors.push(format!(
                    "{} has no timestamp: a backfill needs one per sample",
                    s.name
                ));
            }
            continue;
        };
        let mut labels = s.labels;
        labels.push(("__name__".into(), s.name));
        labels.sort();
        rows.push(Ingest {
            labels,
            t,
            v: s.value,
        });
    }
    rows.sort_by(|a, b| a.labels.cmp(&b.labels).then(a.t.cmp(&b.t)));
    for chunk in rows.chunks(50_000) {
        let r = ingest(chunk).map_err(|e| format!("writing failed: {e}"))?;
        report.accepted += r.accepted;
        report.rejected += r.rejected.len();
        for (i, why) in r.rejected {
            if report.errors.len() < 20 {
                report
                    .errors
                    .push(format!("sample at {}: {why}", chunk[i].t));
            }
        }
    }
    Ok(report)
}
