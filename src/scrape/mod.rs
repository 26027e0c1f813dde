//! Scraping Prometheus text endpoints (custom monitoring): targets from omp.toml (`[[scrape]]`,
//! read-only) and from the API (stored), each scraped on its interval by the server, with
//! Prometheus' conventions: `job` and `instance` labels, `up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, a per-target sample limit (`up` = 0 with the reason when over),
//! and staleness markers for series that disappear from a target.

pub mod cache;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{SCRAPE_TARGETS, Store};
use crate::tsdb::db::Ingest;
use crate::tsdb::exposition::{self, Format};

/// The Accept header of scrapes (OpenMetrics preferred, as Prometheus asks).
pub const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// One scrape target (one URL).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub id: String,
    pub job: String,
    /// `host:port`
    pub target: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_path")]
    pub metrics_path: String,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_limit")]
    pub sample_limit: usize,
    /// `user:password` for Basic auth, or a bearer token (never shown back in full).
    #[serde(default)]
    pub basic_auth: Option<String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Declared in omp.toml (read-only in the UI/API).
    #[serde(default)]
    pub from_config: bool,
    /// Scraped by the agent of this host (for exporters bound to its loopback) instead of
    /// the server.
    #[serde(default)]
    pub via_host: Option<u64>,
}

fn default_scheme() -> String {
    "http".into()
}
fn default_path() -> String {
    "/metrics".into()
}
fn default_interval() -> u64 {
    15
}
fn default_timeout() -> u64 {
    10
}
fn default_limit() -> usize {
    50_000
}

impl Target {
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.target, self.metrics_path)
    }

    /// Checks a target; names the field at fault.
    pub fn validate(&self) -> Result<()> {
        if !exposition::valid_label_name(&self.job.replace(['-', '.'], "_")) || self.job.len() > 100
        {
            return Err(Error::validation(
                "job",
                "job is letters, digits, '_', '-', '.'",
            ));
        }
        let t_ok = !self.target.is_empty()
            && self.target.len() <= 255
            && !self.target.starts_with('-')
            && self
                .target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
        if !t_ok {
            return Err(Error::validation("target", "target is host:port"));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(Error::validation("scheme", "scheme is http or https"));
        }
        if !self.metrics_path.starts_with('/')
            || self
                .metrics_path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::validation(
                "metrics_path",
                "metrics_path starts with / and has no spaces",
            ));
        }
        if !(1..=3600).contains(&self.interval_secs)
            || !(1..=self.interval_secs).contains(&self.timeout_secs)
        {
            return Err(Error::validation(
                "interval_secs",
                "interval is 1..3600 s and the timeout at most the interval",
            ));
        }
        if self.sample_limit == 0 {
            return Err(Error::validation(
                "sample_limit",
                "sample_limit must be at least 1",
            ));
        }
        for k in self.labels.keys() {
            if !exposition::valid_label_name(k) || k.starts_with("__") {
                return Err(Error::validation(
                    "labels",
                    format!("invalid label name {k:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// Health of a target as the UI shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// up, down, unknown (not scraped yet)
    pub health: String,
    pub last_scrape: Option<i64>,
    pub last_duration_secs: Option<f64>,
    pub last_error: Option<String>,
    pub samples: usize,
}

#[derive(Default)]
struct State {
    health: HashMap<String, Health>,
    /// Per target: its series text → series id, and the series of its last scrape (for
    /// staleness markers).
    caches: HashMap<String, cache::Cache>,
    /// Per target: an HTTP agent (keeps the connection alive between scrapes) and the
    /// timeout and interval it was made for.
    agents: HashMap<String, ((u64, u64), ureq::Agent)>,
    next_due: HashMap<String, Instant>,
    /// Body buffers of finished scrapes, for the next ones.
    buffers: Vec<Vec<u8>>,
    /// Every target, read from the store once and again after each change (the scrape loop
    /// asks often).
    targets: Option<Arc<Vec<Target>>>,
    /// Bumped by every change of the targets: a read that raced with one is not kept.
    targets_gen: u64,
    /// Targets being scraped now: one due again before its scrape ended skips that turn.
    in_flight: HashSet<String>,
}

impl State {
    /// The targets changed: read them again, and scrape a changed one at once.
    fn invalidate(&mut self) {
        self.targets = None;
        self.targets_gen += 1;
    }
}

/// The scrape service. Cheap to clone.
#[derive(Clone)]
pub struct Scraper {
    store: Store,
    metrics: Metrics,
    config_targets: Arc<Vec<Target>>,
    state: Arc<Mutex<State>>,
    hosts: Option<crate::hosts::Hosts>,
    crew: Arc<Crew>,
}

/// The scrape workers: plain threads, each taking a due target and scraping it from start
/// to end (fetch, parse, store) on its own stack. A scrape on the async runtime was handed
/// from a worker to a blocking thread and back, and the wake-ups and context switches of
/// those hand-offs cost more than the scrape itself.
///
/// One worker leads: it waits until the next target is due (or the targets change), takes
/// it, and passes the lead to an idle worker — or starts a new one, up to
/// [`MAX_CONCURRENT_SCRAPES`] — before scraping. Targets due together are thus scraped in
/// parallel, and an idle server has one thread asleep until the next due time.
#[derive(Default)]
struct Crew {
    state: Mutex<CrewState>,
    wake: Condvar,
}

#[derive(Default)]
struct CrewState {
    stop: bool,
    /// A worker is waiting for the next due time.
    leader: bool,
    /// Workers waiting to lead.
    idle: usize,
    workers: usize,
    /// Bumped by every change of the targets: the leader looks at the schedule again.
    changes: u64,
}

/// Scrapes that may run at once (each holds a thread while it waits for its target).
pub const MAX_CONCURRENT_SCRAPES: usize = 16;

impl Crew {
    fn lock(&self) -> std::sync::MutexGuard<'_, CrewState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the leader found in the schedule: a target to scrape now, or when to look again.
enum Next {
    Now(Arc<Vec<Target>>, usize),
    At(Instant),
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scraper {
    pub fn new(store: Store, metrics: Metrics, mut config_targets: Vec<Target>) -> Self {
        for (i, t) in config_targets.iter_mut().enumerate() {
            t.from_config = true;
            t.id = format!("config-{i}");
        }
        Scraper {
            store,
            metrics,
            config_targets: Arc::new(config_targets),
            state: Arc::default(),
            hosts: None,
            crew: Arc::default(),
        }
    }

    /// Lets targets with `via_host` be scraped by that host's agent.
    pub fn with_hosts(mut self, hosts: crate::hosts::Hosts) -> Self {
        self.hosts = Some(hosts);
        self
    }

    /// Every target: from the file, then the stored ones.
    pub fn targets(&self) -> Result<Vec<Target>> {
        Ok(self.shared_targets()?.as_ref().clone())
    }

    /// Every target, shared: read from the store once and again after each change.
    fn shared_targets(&self) -> Result<Arc<Vec<Target>>> {
        let seen_gen = {
            let st = lock(&self.state);
            if let Some(t) = &st.targets {
                return Ok(t.clone());
            }
            st.targets_gen
        };
        let mut v: Vec<Target> = (*self.config_targets).clone();
        v.extend(
            self.store
                .read(|tx| tx.all::<Target>(&SCRAPE_TARGETS))?
                .into_iter()
                .map(|(_, t)| t),
        );
        let v = Arc::new(v);
        let mut st = lock(&self.state);
        if st.targets_gen == seen_gen {
            // Targets gone leave nothing behind (a scrape in flight may have put its
            // cache back after the removal).
            let live = |id: &String| v.iter().any(|t| t.id == *id);
            st.caches.retain(|id, _| live(id));
            st.agents.retain(|id, _| live(id));
            st.health.retain(|id, _| live(id));
            st.targets = Some(v.clone());
        }
        Ok(v)
    }

    pub fn health(&self, id: &str) -> Health {
        lock(&self.state).health.get(id).cloned().unwrap_or(Health {
            health: "unknown".into(),
            ..Default::default()
        })
    }

    pub fn add(&self, mut t: Target) -> Result<Target> {
        t.from_config = false;
        t.validate()?;
        t.id = crate::auth::password::random_hex(6);
        self.store.write(|tx| tx.put(&SCRAPE_TARGETS, &t.id, &t))?;
        lock(&self.state).invalidate();
        self.targets_changed();
        Ok(t)
    }

    /// Replaces a stored target's settings; its secrets stay unless new ones are given or
    /// `clear_auth` is set.
    pub fn update(&self, id: &str, mut t: Target, clear_auth: bool) -> Result<Target> {
        if id.starts_with("config-") {
            return Err(Error::Refused(
                "this target is declared in omp.toml: change it there".into(),
            ));
        }
        t.from_config = false;
        t.id = id.to_string();
        let t = self.store.write(|tx| {
            let old: Target = tx
                .get(&SCRAPE_TARGETS, id)?
                .ok_or_else(|| Error::NotFound(format!("scrape target {id}")))?;
            if !clear_auth && t.basic_auth.is_none() && t.bearer_token.is_none() {
                t.basic_auth = old.basic_auth;
                t.bearer_token = old.bearer_token;
            }
            t.validate()?;
            tx.put(&SCRAPE_TARGETS, id, &t)?;
            Ok::<_, Error>(t)
        })?;
        // A changed target is scraped again at once, and its old series may go stale.
        let mut st = lock(&self.state);
        st.next_due.remove(id);
        st.invalidate();
        drop(st);
        self.targets_changed();
        Ok(t)
    }

    pub fn remove(&self, id: &str) -> Result<Target> {
        if id.starts_with("config-") {
            return Err(Error::Refused(
                "this target is declared in omp.toml: change it there".into(),
            ));
        }
        let t = self.store.write(|tx| {
            let t: Target = tx
                .get(&SCRAPE_TARGETS, id)?
                .ok_or_else(|| Error::NotFound(format!("scrape target {id}")))?;
            tx.delete(&SCRAPE_TARGETS, id)?;
            Ok::<_, Error>(t)
        })?;
        let mut st = lock(&self.state);
        st.health.remove(id);
        st.next_due.remove(id);
        st.caches.remove(id);
        st.agents.remove(id);
        st.invalidate();
        drop(st);
        self.targets_changed();
        Ok(t)
    }

    /// Wakes the leading worker: the schedule changed.
    fn targets_changed(&self) {
        self.crew.lock().changes += 1;
        self.crew.wake.notify_all();
    }

    /// Scrapes each target when it is due until `stop` (at most [`MAX_CONCURRENT_SCRAPES`]
    /// at once), on the worker threads of [`Crew`]. Scrapes in flight at the stop are
    /// waited for (each ends within its timeout), at most 15 s.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let rt = tokio::runtime::Handle::current();
        if !self.start_worker(&mut self.crew.lock(), &rt) {
            tracing::error!("No scrape worker could start: nothing is scraped.");
        }
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        self.crew.lock().stop = true;
        self.crew.wake.notify_all();
        let crew = self.crew.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut st = crew.lock();
            while st.workers > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = crew
                    .wake
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        })
        .await;
    }

    /// Starts one worker thread and counts it in `st`; false (logged) when the thread
    /// cannot start.
    fn start_worker(&self, st: &mut CrewState, rt: &tokio::runtime::Handle) -> bool {
        let (me, rt) = (self.clone(), rt.clone());
        match std::thread::Builder::new()
            .name("omp-scrape".into())
            .spawn(move || me.work(&rt))
        {
            Ok(_) => {
                st.workers += 1;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot start a scrape worker.");
                false
            }
        }
    }

    /// A worker's life: lead (wait for the next due target) or wait to lead, scrape, again.
    fn work(&self, rt: &tokio::runtime::Handle) {
        let crew = &self.crew;
        let mut st = crew.lock();
        while !st.stop {
            if st.leader {
                st.idle += 1;
                st = crew.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                st.idle -= 1;
                continue;
            }
            st.leader = true;
            let seen = st.changes;
            drop(st);
            let next = self.next_due();
            st = crew.lock();
            match next {
                Next::Now(targets, i) => {
                    st.leader = false;
                    // Someone leads while this worker scrapes.
                    if st.idle > 0 {
                        crew.wake.notify_one();
                    } else if st.workers < MAX_CONCURRENT_SCRAPES {
                        // When none starts, this worker leads again after its scrape.
                        self.start_worker(&mut st, rt);
                    }
                    drop(st);
                    let t = &targets[i];
                    self.scrape(t, rt);
                    lock(&self.state).in_flight.remove(&t.id);
                    st = crew.lock();
                }
                Next::At(when) => {
                    if st.changes == seen && !st.stop {
                        let left = when.saturating_duration_since(Instant::now());
                        st = crew
                            .wake
                            .wait_timeout(st, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    st.leader = false;
                }
            }
        }
        st.workers -= 1;
        drop(st);
        // The stop waits for the last worker.
        crew.wake.notify_all();
    }

    /// The first due target (its next turn planned and marked in flight), or when the next
    /// one is due.
    fn next_due(&self) -> Next {
        let Ok(targets) = self.shared_targets() else {
            return Next::At(Instant::now() + Duration::from_secs(1));
        };
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(60);
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        for (i, t) in targets.iter().enumerate() {
            let next = st.next_due.entry(t.id.clone()).or_insert(now);
            if *next <= now {
                // On the schedule, not after the wake-up's lateness: start times then stay
                // near their stamps (see `Cache::stamp`).
                let every = Duration::from_secs(t.interval_secs);
                let planned = *next + every;
                *next = if planned > now { planned } else { now + every };
                // A target whose last scrape still runs skips this turn.
                if st.in_flight.insert(t.id.clone()) {
                    return Next::Now(targets.clone(), i);
                }
            }
            wake = wake.min(*next);
        }
        Next::At(wake)
    }

    /// One scrape of one target, by the server or by the target's agent.
    fn scrape(&self, t: &Target, rt: &tokio::runtime::Handle) {
        let Some(host) = t.via_host else {
            self.scrape_once(t);
            return;
        };
        let started = Instant::now();
        let now = chrono::Utc::now().timestamp_millis();
        let fetched = rt.block_on(self.fetch_by_agent(host, t));
        let fetched = fetched.as_ref().map(|(b, f)| (b.as_str(), *f));
        self.record(t, started, now, fetched.map_err(Clone::clone));
    }

    /// Asks the agent of `host` to fetch the target (for exporters bound to its loopback).
    async fn fetch_by_agent(
        &self,
        host: u64,
        t: &Target,
    ) -> std::result::Result<(String, Format), String> {
        let Some(hosts) = &self.hosts else {
            return Err("agent-side scraping is not available in this process".to_string());
        };
        let req = crate::proto::AgentRequest::Scrape(crate::proto::ScrapeRequest {
            url: t.url(),
            timeout_secs: t.timeout_secs,
            authorization: authorization(t),
            max_bytes: AGENT_BODY_LIMIT,
        });
        // The agent has the target's timeout; the channel adds a little slack.
        let wait = Duration::from_secs(t.timeout_secs + 5);
        match hosts.request(host, req, wait).await {
            Ok(crate::proto::AgentReply::Scraped { body, content_type }) => {
                Ok((body, format_of(content_type.as_deref())))
            }
            Ok(crate::proto::AgentReply::Failed { message }) => Err(message),
            Ok(other) => Err(format!("unexpected agent reply {other:?}")),
            Err(e) => Err(format!("agent of host {host}: {e}")),
        }
    }

    /// One scrape of one target by the server (blocking): fetch, parse, label, store.
    fn scrape_once(&self, t: &Target) {
        let started = Instant::now();
        let now = chrono::Utc::now().timestamp_millis();
        let agent = {
            let mut st = lock(&self.state);
            match st.agents.get(&t.id) {
                Some((made_for, a)) if *made_for == (t.timeout_secs, t.interval_secs) => a.clone(),
                _ => {
                    let a = http_agent(t.timeout_secs, t.interval_secs);
                    let made_for = (t.timeout_secs, t.interval_secs);
                    st.agents.insert(t.id.clone(), (made_for, a.clone()));
                    a
                }
            }
        };
        // Bodies are read into a pooled buffer: no fresh 100 KB allocation per scrape.
        let mut buf = lock(&self.state).buffers.pop().unwrap_or_default();
        let fetched = fetch(t, &agent, &mut buf);
        self.record(t, started, now, fetched);
        let mut st = lock(&self.state);
        // At most a few buffers are kept, and none that a huge body made huge.
        if st.buffers.len() < 4 && buf.capacity() <= 4 << 20 {
            st.buffers.push(buf);
        }
    }

    /// Parses a fetched body through the target's scrape cache, stores it with `up` and
    /// friends (and staleness markers for series gone), records health.
    fn record(
        &self,
        t: &Target,
        started: Instant,
        now: i64,
        fetched: std::result::Result<(&str, Format), String>,
    ) {
        let mut base = vec![
            ("job".to_string(), t.job.clone()),
            ("instance".to_string(), t.target.clone()),
        ];
        base.extend(t.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The cache leaves the lock while this scrape uses it.
        let mut cache = lock(&self.state).caches.remove(&t.id).unwrap_or_default();
        let now = cache.stamp(now, t.interval_secs as i64 * 1000);
        let planned =
            fetched.and_then(|(body, format)| cache.plan(body, format, &base, now, t.sample_limit));
        let duration = started.elapsed().as_secs_f64();
        let (mut plan, up, error) = match planned {
            Ok(p) => (p, 1.0, None),
            Err(e) => (cache::Plan::failed(cache.fail()), 0.0, Some(e)),
        };
        if let Some(meta) = plan.meta.take() {
            self.metrics.note_meta(&meta);
        }
        let count = plan.samples;
        // Series gone since the last scrape get a staleness marker, as in Prometheus.
        for id in &plan.stale {
            plan.known.push(crate::tsdb::wal::Sample {
                series: *id,
                t: now,
                v: f64::from_bits(crate::tsdb::STALE_NAN),
            });
        }
        // The report series: by id once the store has them (no labels to build and look up
        // each scrape), by labels the first time.
        let report = [up, duration, count as f64];
        let report_ids = cache.report_ids(&base);
        match report_ids {
            Some(ids) => plan.known.extend(
                ids.iter()
                    .zip(report)
                    .map(|(&series, v)| crate::tsdb::wal::Sample { series, t: now, v }),
            ),
            None => plan
                .fresh
                .extend(cache::REPORT.iter().zip(report).map(|(name, v)| Ingest {
                    labels: cache::label(&base, name, Vec::new()),
                    t: now,
                    v,
                })),
        }
        match self.metrics.ingest_known(&plan.known, &plan.fresh) {
            Ok(res) => {
                cache.learn(&plan, &res);
                if report_ids.is_none() {
                    let first = res.ids.len().saturating_sub(cache::REPORT.len());
                    cache.learn_report(&base, &res.ids[first..]);
                }
            }
            Err(e) => tracing::error!(error = %e, "Storing scraped samples failed."),
        }
        cache.recycle(plan);
        let mut st = lock(&self.state);
        // A target removed while it was being scraped keeps no state (when the list is
        // being read again, that read prunes it).
        if st
            .targets
            .as_ref()
            .is_some_and(|ts| !ts.iter().any(|x| x.id == t.id))
        {
            return;
        }
        st.caches.insert(t.id.clone(), cache);
        st.health.insert(
            t.id.clone(),
            Health {
                health: if up == 1.0 {
                    "up".into()
                } else {
                    "down".into()
                },
                last_scrape: Some(now),
                last_duration_secs: Some(duration),
                last_error: error,
                samples: count,
            },
        );
    }
}

/// Bodies fetched by agents are smaller than the server's own limit: they cross the channel.
const AGENT_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// The Authorization header value of a target with credentials.
fn authorization(t: &Target) -> Option<String> {
    if let Some(b) = &t.basic_auth {
        return Some(format!(
            "Basic {}",
            data_encoding::BASE64.encode(b.as_bytes())
        ));
    }
    t.bearer_token.as_ref().map(|tok| format!("Bearer {tok}"))
}

/// The exposition format of a Content-Type.
fn format_of(content_type: Option<&str>) -> Format {
    match content_type {
        Some(ct) if ct.starts_with("application/openmetrics-text") => Format::OpenMetrics,
        _ => Format::Prometheus,
    }
}

/// GETs the target's metrics text into `buf`; returns it with its format (from the
/// Content-Type).
fn fetch<'b>(
    t: &Target,
    agent: &ureq::Agent,
    buf: &'b mut Vec<u8>,
) -> std::result::Result<(&'b str, Format), String> {
    let mut req = agent
        .get(&t.url())
        .header("accept", ACCEPT)
        .header("user-agent", &format!("omp/{}", crate::version()));
    if let Some(a) = authorization(t) {
        req = req.header("authorization", &a);
    }
    let mut resp = req
        .call()
        .map_err(|e| format!("cannot scrape {}: {e}", t.url()))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("{} answered HTTP {status}", t.url()));
    }
    let format = format_of(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
    );
    // Bodies are capped so a misbehaving target cannot exhaust memory.
    let mut body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .reader();
    let filled =
        read_into(&mut body, buf).map_err(|e| format!("reading {} failed: {e}", t.url()))?;
    let text = std::str::from_utf8(&buf[..filled])
        .map_err(|e| format!("{} answered text that is not UTF-8: {e}", t.url()))?;
    Ok((text, format))
}

/// Reads `r` to its end into `buf` from its start, growing it as needed; returns the bytes
/// read. `buf`'s whole length is initialized memory kept between scrapes (what lies past the
/// returned length is left from earlier bodies): `read_to_end` into a cleared vector zeroes
/// its spare capacity again on every scrape, which was a twentieth of the scraper's CPU.
fn read_into(r: &mut impl std::io::Read, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            let grow = buf.len().max(16 * 1024);
            buf.resize(buf.len() + grow, 0);
        }
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The HTTP client of one scrape target (the server's) or one timeout (an agent's).
///
/// Its idle connection is kept past the next scrape (ureq drops idle connections after
/// 15 s, the default interval: each scrape opened a new one). Its buffers are sized for
/// scraping: a request is a few hundred bytes (ureq's default output buffer is 128 KiB) and
/// a response header is at most 64 KiB (ureq's cap; its default input buffer is 128 KiB), and
/// each kept connection holds both.
pub(crate) fn http_agent(timeout_secs: u64, interval_secs: u64) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(timeout_secs)))
        .max_idle_age(Duration::from_secs(interval_secs.saturating_mul(2).max(60)))
        .max_idle_connections_per_host(1)
        .input_buffer_size(64 * 1024)
        .max_response_header_size(64 * 1024)
        .output_buffer_size(16 * 1024)
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        LiteralFirst::default(),
    )
}

/// ureq's resolver, except that a target given as an IP address is used as it is. With a
/// timeout set, ureq resolves every request on a new thread (even `127.0.0.1:9100`, even
/// on a kept-alive connection): a thread started and ended per scrape, with its stack
/// mapped and unmapped, was a large part of the scraper's CPU.
#[derive(Debug, Default)]
struct LiteralFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = literal_addr(uri) {
            let mut out = self.empty();
            out.push(addr);
            return Ok(out);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The socket address of a URI whose host is an IP address (`[…]` for IPv6).
fn literal_addr(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let ip: std::net::IpAddr = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()?;
    let port = uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(std::net::SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_targets_skip_the_resolver() {
        let cases = [
            ("http://127.0.0.1:9100/metrics", Some("127.0.0.1:9100")),
            ("http://[::1]:9100/metrics", Some("[::1]:9100")),
            ("https://10.0.0.7/metrics", Some("10.0.0.7:443")),
            ("http://10.0.0.7/metrics", Some("10.0.0.7:80")),
            ("http://node-1:9100/metrics", None),
            ("http://localhost:9100/metrics", None),
        ];
        for (url, want) in cases {
            let uri: ureq::http::Uri = url.parse().unwrap();
            let want = want.map(|w| w.parse::<std::net::SocketAddr>().unwrap());
            assert_eq!(literal_addr(&uri), want, "{url}");
        }
    }

    /// A loopback exporter answering every request with `up_test 1`, after calling
    /// `before_answer`; returns its address and the count of connections it accepted.
    fn tiny_exporter(
        before_answer: impl Fn() + Clone + Send + 'static,
    ) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let before_answer = before_answer.clone();
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line != "\r\n" {
                            continue;
                        }
                        before_answer();
                        let body = "up_test 1\n";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        w.write_all(head.as_bytes()).unwrap();
                        w.write_all(body.as_bytes()).unwrap();
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// Scrapes of a target reuse one connection, and the agent keeps it idle past the next
    /// scrape (ureq's default of 15 s equals the default interval).
    #[test]
    fn scrapes_reuse_their_connection() {
        let (addr, accepted) = tiny_exporter(|| {});
        let mut target = t();
        target.target = addr.to_string();
        let agent = http_agent(target.timeout_secs, 15);
        assert!(agent.config().max_idle_age() >= Duration::from_secs(30));
        for _ in 0..3 {
            let mut buf = Vec::new();
            let (text, _) = fetch(&target, &agent, &mut buf).expect("scrape");
            assert_eq!(text, "up_test 1\n");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// Targets due together are scraped in parallel by the crew's threads, each comes up,
    /// and the stop ends every worker.
    #[test]
    fn the_crew_scrapes_due_targets_in_parallel_and_stops() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        // Each answer waits (at most 3 s) until two requests are open at once; the count
        // drops when the request is answered (the exporter writes right after the wait).
        let open = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (o, m) = (open.clone(), most.clone());
        let (addr, _) = tiny_exporter(move || {
            let now_open = o.fetch_add(1, SeqCst) + 1;
            m.fetch_max(now_open, SeqCst);
            let until = Instant::now() + Duration::from_secs(3);
            while o.load(SeqCst) < 2 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            // Let a later request see this one as open a moment longer.
            std::thread::sleep(Duration::from_millis(50));
            o.fetch_sub(1, SeqCst);
        });
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (metrics, _queue) = Metrics::open(
            &dir.path().join("tsdb"),
            Default::default(),
            Default::default(),
        )
        .unwrap();
        let targets: Vec<Target> = (0..3)
            .map(|i| Target {
                job: format!("job{i}"),
                target: addr.to_string(),
                interval_secs: 5,
                timeout_secs: 5,
                ..t()
            })
            .collect();
        let scraper = Scraper::new(store, metrics, targets);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let s = scraper.clone();
        rt.block_on(async move {
            let (stop, stopped) = watch::channel(false);
            let run = tokio::spawn(s.clone().run(stopped));
            let until = Instant::now() + Duration::from_secs(10);
            while (0..3).any(|i| s.health(&format!("config-{i}")).health != "up") {
                assert!(Instant::now() < until, "targets not all up in 10 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.send(true).unwrap();
            run.await.unwrap();
        });
        assert!(most.load(SeqCst) >= 2, "scrapes ran one at a time");
        assert_eq!(
            scraper.crew.lock().workers,
            0,
            "workers left after the stop"
        );
    }

    /// Bodies are read whole from the start of a kept buffer, whatever it held before and
    /// however the reader splits them.
    #[test]
    fn bodies_are_read_whole_into_a_kept_buffer() {
        struct Dribble<'a>(&'a [u8], usize);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let big: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut buf = vec![b'#'; 10];
        for (body, step) in [(&big[..], 7_000), (&b"up 1\n"[..], 2), (&b""[..], 1)] {
            let n = read_into(&mut Dribble(body, step), &mut buf).unwrap();
            assert_eq!(&buf[..n], body);
        }
        assert!(buf.len() >= big.len(), "the buffer keeps its size");
    }

    fn t() -> Target {
        serde_json::from_value(serde_json::json!({"job": "node", "target": "127.0.0.1:9100"}))
            .unwrap()
    }

    #[test]
    fn validation_names_fields() {
        assert!(t().validate().is_ok());
        assert_eq!(t().url(), "http://127.0.0.1:9100/metrics");
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (serde_json::json!({"target": "-oops:1"}), "target"),
            (serde_json::json!({"target": "a b:1"}), "target"),
            (serde_json::json!({"scheme": "ftp"}), "scheme"),
            (
                serde_json::json!({"metrics_path": "metrics"}),
                "metrics_path",
            ),
            (
                serde_json::json!({"interval_secs": 5, "timeout_secs": 10}),
                "interval_secs",
            ),
            (serde_json::json!({"labels": {"__x": "1"}}), "labels"),
            (serde_json::json!({"job": "a b"}), "job"),
        ];
        for (patch, field) in cases {
            let mut v = serde_json::to_value(t()).unwrap();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            let tt: Target = serde_json::from_value(v).unwrap();
            match tt.validate() {
                Err(Error::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
