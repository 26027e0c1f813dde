//! remote_write out: every sample the store accepts is also queued for each
//! `[[remote_write]]` endpoint of omp.toml and sent as Prometheus remote-write 1.0 requests
//! (protobuf `WriteRequest`, snappy block compression), the path for sites that outgrow one
//! node. Each queue is bounded: when an endpoint is down the oldest samples are dropped and
//! counted, never the server's memory. Retryable failures (network, 5xx, 429) back off and
//! resend the same batch; other 4xx answers drop the batch, as Prometheus does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::tsdb::db::Ingest;
use crate::tsdb::head::Labels;
use crate::tsdb::varint::put_uvarint;

/// One `[[remote_write]]` endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Shown in the UI and logs; defaults to the URL's host.
    #[serde(default)]
    pub name: Option<String>,
    /// `http://HOST:PORT/api/v1/write` (VictoriaMetrics, Prometheus with the receiver, Mimir…)
    pub url: String,
    /// `user:password` for Basic auth, or a bearer token.
    #[serde(default)]
    pub basic_auth: Option<String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Samples waiting per endpoint before the oldest are dropped.
    #[serde(default = "default_queue")]
    pub queue_max_samples: usize,
    /// Samples per request.
    #[serde(default = "default_batch")]
    pub batch_max_samples: usize,
}

fn default_timeout() -> u64 {
    30
}
fn default_queue() -> usize {
    500_000
}
fn default_batch() -> usize {
    5_000
}

impl RemoteConfig {
    /// Checks the endpoint; the message names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.url.starts_with("http://") {
            return Err(format!(
                "remote_write url {:?} must start with http:// (https endpoints: put a local TLS proxy in front)",
                self.url
            ));
        }
        if self
            .url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("remote_write url {:?} has spaces", self.url));
        }
        if self.basic_auth.is_some() && self.bearer_token.is_some() {
            return Err("remote_write: give basic_auth or bearer_token, not both".into());
        }
        if !(1..=600).contains(&self.timeout_secs)
            || self.batch_max_samples == 0
            || self.queue_max_samples < self.batch_max_samples
        {
            return Err(
                "remote_write: timeout_secs is 1..600 and queue_max_samples at least batch_max_samples (≥ 1)"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or("")
                .to_string()
        })
    }
}

/// How an endpoint is doing, for the API and /metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub name: String,
    pub url: String,
    pub from_config: bool,
    pub queued_samples: usize,
    pub sent_samples: u64,
    pub dropped_samples: u64,
    pub failed_requests: u64,
    pub last_error: Option<String>,
    /// Milliseconds since the epoch of the last accepted request.
    pub last_success: Option<i64>,
}

struct Endpoint {
    cfg: RemoteConfig,
    /// Waiting samples, the endpoint's status, and how many samples ever left the front of
    /// the queue (so a send knows which of its samples are still queued after drops).
    queue: Mutex<(VecDeque<Ingest>, Status, u64)>,
    wake: Notify,
}

/// The remote-write fan-out. Cheap to clone.
#[derive(Clone, Default)]
pub struct RemoteWrite {
    endpoints: Arc<Vec<Endpoint>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RemoteWrite {
    pub fn new(configs: Vec<RemoteConfig>) -> Self {
        let endpoints = configs
            .into_iter()
            .map(|cfg| Endpoint {
                queue: Mutex::new((
                    VecDeque::new(),
                    Status {
                        name: cfg.display_name(),
                        url: cfg.url.clone(),
                        from_config: true,
                        ..Default::default()
                    },
                    0,
                )),
                cfg,
                wake: Notify::new(),
            })
            .collect();
        RemoteWrite {
            endpoints: Arc::new(endpoints),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Queues the accepted samples of `batch` (those not listed in `rejected`).
    /// True when samples are sent anywhere.
    pub fn is_active(&self) -> bool {
        !self.endpoints.is_empty()
    }

    pub fn offer(&self, batch: &[Ingest], rejected: &[(usize, String)]) {
        if self.endpoints.is_empty() {
            return;
        }
        let refused: std::collections::HashSet<usize> = rejected.iter().map(|(i, _)| *i).collect();
        for ep in self.endpoints.iter() {
            let mut q = lock(&ep.queue);
            for (i, s) in batch.iter().enumerate() {
                if !refused.contains(&i) {
                    q.0.push_back(s.clone());
                }
            }
            let over = q.0.len().saturating_sub(ep.cfg.queue_max_samples);
            if over > 0 {
                q.0.drain(..over);
                q.1.dropped_samples += over as u64;
                q.2 += over as u64;
            }
            drop(q);
            ep.wake.notify_one();
        }
    }

    pub fn status(&self) -> Vec<Status> {
        self.endpoints
            .iter()
            .map(|ep| {
                let q = lock(&ep.queue);
                Status {
                    queued_samples: q.0.len(),
                    ..q.1.clone()
                }
            })
            .collect()
    }

    /// Sends queued samples to every endpoint until `stop`.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.endpoints.len() {
            let me = self.clone();
            let stop = stop.clone();
            tasks.spawn(async move { me.run_endpoint(i, stop).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn run_endpoint(&self, i: usize, mut stop: watch::Receiver<bool>) {
        let ep = &self.endpoints[i];
        let mut backoff = Duration::from_millis(500);
        loop {
            let (batch, first): (Vec<Ingest>, u64) = {
                let q = lock(&ep.queue);
                let b = q.0.iter().take(ep.cfg.batch_max_samples).cloned().collect();
                (b, q.2)
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = ep.wake.notified() => continue,
                    _ = stop.changed() => return,
                }
            }
            let body = snappy(&encode_write_request(&batch));
            let cfg = ep.cfg.clone();
            let sent = tokio::task::spawn_blocking(move || post(&cfg, body))
                .await
                .unwrap_or_else(|e| Err((true, format!("sender failed: {e}"))));
            let wait = {
                let mut q = lock(&ep.queue);
                match sent {
                    Ok(()) => {
                        // Drops during the send may have removed some of the batch already.
                        let n = (first + batch.len() as u64).saturating_sub(q.2) as usize;
                        let n = n.min(q.0.len());
                        q.0.drain(..n);
                        q.2 += n as u64;
                        q.1.sent_samples += batch.len() as u64;
                        q.1.last_success = Some(chrono::Utc::now().timestamp_millis());
                        false
                    }
                    Err((retry, e)) => {
                        q.1.failed_requests += 1;
                        if q.1.last_error.as_deref() != Some(&e) {
                            tracing::warn!(endpoint = %q.1.name, error = %e, "remote_write failed.");
                        }
                        q.1.last_error = Some(e);
                        if !retry {
                            let n = (first + batch.len() as u64).saturating_sub(q.2) as usize;
                            let n = n.min(q.0.len());
                            q.0.drain(..n);
                            q.2 += n as u64;
                            q.1.dropped_samples += n as u64;
                        }
                        retry
                    }
                }
            };
            if !wait {
                backoff = Duration::from_millis(500);
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

/// POSTs one compressed request; errors say whether a retry may succeed.
fn post(cfg: &RemoteConfig, body: Vec<u8>) -> Result<(), (bool, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(cfg.timeout_secs)))
        .build()
        .into();
    let mut req = agent
        .post(&cfg.url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .header("user-agent", &format!("omp/{}", crate::version()));
    if let Some(b) = &cfg.basic_auth {
        req = req.header(
            "authorization",
            &format!("Basic {}", data_encoding::BASE64.encode(b.as_bytes())),
        );
    }
    if let Some(t) = &cfg.bearer_token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let mut resp = req
        .send(&body[..])
        .map_err(|e| (true, format!("cannot reach {}: {e}", cfg.url)))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text: String = resp
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let retry = status >= 500 || status == 429;
    Err((
        retry,
        format!("{} answered HTTP {status}: {}", cfg.url, text.trim()),
    ))
}

/// Snappy block format (what remote write uses, not the framed stream format).
pub fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .unwrap_or_default()
}

/// A length-delimited field.
fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_uvarint(out, (field << 3) | 2);
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Encodes a `prometheus.WriteRequest`: one `TimeSeries` per label set (labels sorted by
/// name, samples in the order given).
pub fn encode_write_request(samples: &[Ingest]) -> Vec<u8> {
    let mut order: Vec<&Labels> = Vec::new();
    let mut by: HashMap<&Labels, Vec<(i64, f64)>> = HashMap::new();
    for s in samples {
        by.entry(&s.labels)
            .or_insert_with(|| {
                order.push(&s.labels);
                Vec::new()
            })
            .push((s.t, s.v));
    }
    let mut out = Vec::with_capacity(samples.len() * 32);
    let mut ts = Vec::new();
    let mut item = Vec::new();
    for labels in order {
        ts.clear();
        let mut sorted: Vec<&(String, String)> = labels.iter().collect();
        sorted.sort();
        for (n, v) in sorted {
            item.clear();
            field_bytes(&mut item, 1, n.as_bytes());
            field_bytes(&mut item, 2, v.as_bytes());
            field_bytes(&mut ts, 1, &item);
        }
        for (t, v) in &by[labels] {
            item.clear();
            item.push((1 << 3) | 1); // value: double, fixed64
            item.extend_from_slice(&v.to_bits().to_le_bytes());
            put_uvarint(&mut item, 2 << 3); // timestamp: int64, varint
            put_uvarint(&mut item, *t as u64);
            field_bytes(&mut ts, 2, &item);
        }
        field_bytes(&mut out, 1, &ts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, t: i64, v: f64) -> Ingest {
        Ingest {
            labels: vec![("__name__".into(), name.into()), ("a".into(), "b".into())],
            t,
            v,
        }
    }

    /// A minimal protobuf reader for the test: (field, wire type, payload) triples.
    fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
        fn var(b: &mut &[u8]) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let x = b[0];
                *b = &b[1..];
                v |= ((x & 0x7f) as u64) << shift;
                if x < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = var(&mut b);
            let (f, w) = (key >> 3, (key & 7) as u8);
            let payload = match w {
                0 => var(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let p = b[..8].to_vec();
                    b = &b[8..];
                    p
                }
                2 => {
                    let n = var(&mut b) as usize;
                    let p = b[..n].to_vec();
                    b = &b[n..];
                    p
                }
                _ => panic!("wire type {w}"),
            };
            out.push((f, w, payload));
        }
        out
    }

    #[test]
    fn write_request_layout() {
        let req = encode_write_request(&[s("up", 1000, 1.0), s("x", -5, 0.5), s("up", 2000, 0.0)]);
        let series = fields(&req);
        assert_eq!(series.len(), 2, "one TimeSeries per label set");
        let up = fields(&series[0].2);
        assert_eq!(up.iter().filter(|f| f.0 == 1).count(), 2, "two labels");
        let first_label = fields(&up[0].2);
        assert_eq!(first_label[0].2, b"__name__");
        assert_eq!(first_label[1].2, b"up");
        let samples: Vec<_> = up.iter().filter(|f| f.0 == 2).collect();
        assert_eq!(samples.len(), 2);
        let sample = fields(&samples[1].2);
        assert_eq!(
            f64::from_le_bytes(sample[0].2[..8].try_into().unwrap()),
            0.0
        );
        assert_eq!(
            u64::from_le_bytes(sample[1].2[..8].try_into().unwrap()),
            2000
        );
        let neg = fields(&fields(&series[1].2)[2].2);
        assert_eq!(
            u64::from_le_bytes(neg[1].2[..8].try_into().unwrap()) as i64,
            -5
        );
        let round = snap::raw::Decoder::new()
            .decompress_vec(&snappy(&req))
            .unwrap();
        assert_eq!(round, req);
    }

    #[test]
    fn queues_are_bounded_and_skip_rejected_samples() {
        let rw = RemoteWrite::new(vec![RemoteConfig {
            name: None,
            url: "http://127.0.0.1:1/api/v1/write".into(),
            basic_auth: None,
            bearer_token: None,
            timeout_secs: 1,
            queue_max_samples: 3,
            batch_max_samples: 2,
        }]);
        rw.offer(&[s("a", 1, 1.0), s("a", 2, 1.0)], &[(1, "dup".into())]);
        assert_eq!(rw.status()[0].queued_samples, 1);
        rw.offer(&[s("a", 3, 1.0), s("a", 4, 1.0), s("a", 5, 1.0)], &[]);
        let st = &rw.status()[0];
        assert_eq!((st.queued_samples, st.dropped_samples), (3, 1));
        assert_eq!(st.name, "127.0.0.1:1");
    }

    #[test]
    fn config_checks() {
        let mut c: RemoteConfig = toml::from_str("url = \"http://vm:8428/api/v1/write\"").unwrap();
        assert!(c.validate().is_ok());
        c.url = "https://vm/api/v1/write".into();
        assert!(c.validate().unwrap_err().contains("http://"));
        c.url = "http://vm/x".into();
        c.batch_max_samples = 0;
        assert!(c.validate().is_err());
    }
}
