//! Hosts and their agents: enrollment, the registry of live agent connections, inventory,
//! online/offline status, labels, groups, maintenance, and remote execution fan-out.
//! Plain Rust over the store and tokio channels; it never sees HTTP or WebSocket types
//! (`api` turns a socket into [`Hosts::handshake`] + [`Hosts::attach`] + [`Hosts::on_message`]).

pub mod exec;
pub mod files;
pub mod import;
pub mod push;
mod rpc;
pub mod terminal;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::auth::Grants;
use crate::auth::password::{random_hex, sha256_hex};
use crate::error::{Error, Result};
use crate::proto::{self, AgentHello, AgentMsg, Inventory, ServerMsg, Welcome};
use crate::store::{AGENT_CREDS, ENROLL_SECRETS, ENROLL_TOKENS, HOSTS, SETTINGS, Store, WriteTx};

pub use exec::{ExecInput, Job, Targets};

/// Maintenance of one host or of the whole site.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Maintenance {
    pub enabled: bool,
    pub by: String,
    pub since: i64,
    #[serde(default)]
    pub until: Option<i64>,
    pub reason: String,
}

/// A stored host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub id: u64,
    pub inventory: Inventory,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub maintenance: Option<Maintenance>,
    pub enrolled_at: i64,
    #[serde(default)]
    pub last_seen_at: Option<i64>,
    #[serde(default)]
    pub agent_version: String,
    pub cred_hash: String,
}

/// A stored enrollment token (the secret itself is never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollTokenRecord {
    pub id: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub used_at: Option<i64>,
    #[serde(default)]
    pub used_by_host: Option<u64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub secret_hash: String,
}

/// A host as the API shows it: the record plus live status.
#[derive(Debug, Clone)]
pub struct HostView {
    pub record: HostRecord,
    pub online: bool,
}

/// Filters for [`Hosts::list`].
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    pub q: Option<String>,
    pub online: Option<bool>,
    pub group: Option<String>,
    pub label: Option<(String, String)>,
}

/// Changes to a host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPatch {
    pub labels: Option<BTreeMap<String, String>>,
    pub groups: Option<Vec<String>>,
}

/// A check that may refuse deleting a host (the app store registers one: no deletion while
/// services are deployed there).
pub type DeleteGuard = Box<dyn Fn(&HostRecord) -> Option<String> + Send + Sync>;

struct Conn {
    id: u64,
    tx: mpsc::Sender<ServerMsg>,
    last_seen: i64,
    hostname: String,
}

#[derive(Default)]
struct Live {
    conns: HashMap<u64, Conn>,
    next_conn: u64,
}

/// The hosts service. Cheap to clone.
#[derive(Clone)]
pub struct Hosts {
    store: Store,
    live: Arc<Mutex<Live>>,
    guards: Arc<Mutex<Vec<DeleteGuard>>>,
    pub(crate) jobs: exec::JobTable,
    terms: Arc<Mutex<terminal::Terminals>>,
    xfers: Arc<Mutex<files::Transfers>>,
    pushes: Arc<Mutex<push::Pushes>>,
    rpc: Arc<Mutex<rpc::Pending>>,
    data_dir: std::path::PathBuf,
    heartbeat_secs: u64,
    metrics_secs: u64,
    metrics: Option<crate::metrics::Metrics>,
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const SETTING_MAINTENANCE: &str = "maintenance";

impl Hosts {
    pub fn new(
        store: Store,
        data_dir: &std::path::Path,
        heartbeat_secs: u64,
        history_jobs: usize,
    ) -> Self {
        Hosts {
            terms: terminal::Terminals::new(),
            xfers: files::Transfers::new(),
            pushes: push::Pushes::new(),
            rpc: Arc::default(),
            data_dir: data_dir.to_path_buf(),
            jobs: exec::JobTable::new(store.clone(), history_jobs),
            store,
            live: Arc::default(),
            guards: Arc::default(),
            heartbeat_secs: heartbeat_secs.max(1),
            metrics_secs: 0,
            metrics: None,
        }
    }

    pub fn heartbeat_secs(&self) -> u64 {
        self.heartbeat_secs
    }

    /// Stores agents' host metrics in `metrics`, collected every `every_secs` (0: off).
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics, every_secs: u64) -> Self {
        self.metrics = Some(metrics);
        self.metrics_secs = every_secs;
        self
    }

    /// Registers a check run before a host is deleted.
    pub fn add_delete_guard(&self, g: DeleteGuard) {
        lock(&self.guards).push(g);
    }

    // ---- enrollment ----

    /// Creates a one-time enrollment token; returns the record and the secret (shown once).
    pub fn create_enroll_token(
        &self,
        created_by: &str,
        ttl_secs: u64,
        labels: BTreeMap<String, String>,
        groups: Vec<String>,
    ) -> Result<(EnrollTokenRecord, String)> {
        if !(1..=7 * 24 * 3600).contains(&ttl_secs) {
            return Err(Error::validation(
                "ttl_minutes",
                "the token lifetime must be between 1 second and a week",
            ));
        }
        let labels = check_labels(labels)?;
        let groups = check_groups(groups)?;
        let secret = random_hex(24);
        let t = now();
        let rec = EnrollTokenRecord {
            id: random_hex(6),
            created_by: created_by.to_string(),
            created_at: t,
            expires_at: t + ttl_secs as i64,
            used_at: None,
            used_by_host: None,
            labels,
            groups,
            secret_hash: sha256_hex(&secret),
        };
        self.store.write(|tx| {
            tx.put(&ENROLL_TOKENS, &rec.id, &rec)?;
            tx.put(&ENROLL_SECRETS, &rec.secret_hash, &rec.id)?;
            Ok::<_, Error>(())
        })?;
        Ok((rec, secret))
    }

    pub fn list_enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>> {
        let mut v: Vec<EnrollTokenRecord> = self
            .store
            .read(|tx| tx.all(&ENROLL_TOKENS))?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(v)
    }

    pub fn revoke_enroll_token(&self, id: &str) -> Result<EnrollTokenRecord> {
        self.store.write(|tx| {
            let rec: EnrollTokenRecord = tx
                .get(&ENROLL_TOKENS, id)?
                .ok_or_else(|| Error::NotFound(format!("enrollment token {id}")))?;
            tx.delete(&ENROLL_TOKENS, id)?;
            tx.delete(&ENROLL_SECRETS, &rec.secret_hash)?;
            Ok(rec)
        })
    }

    /// True when `secret` is a valid, unused, unexpired enrollment secret (for the agent
    /// binary download, which does not consume it).
    pub fn enroll_secret_valid(&self, secret: &str) -> Result<bool> {
        let hash = sha256_hex(secret);
        let t = now();
        Ok(self.store.read(|tx| {
            let Some(id) = tx.get::<String>(&ENROLL_SECRETS, &hash)? else {
                return Ok(false);
            };
            let rec: Option<EnrollTokenRecord> = tx.get(&ENROLL_TOKENS, &id)?;
            Ok(rec.is_some_and(|r| r.used_at.is_none() && r.expires_at > t))
        })?)
    }

    /// Answers an agent's first message. `Ok(Some(host_id))` with the welcome when the
    /// agent may stay connected.
    pub fn handshake(&self, hello: AgentHello, server_version: &str) -> (Welcome, Option<u64>) {
        let refused = |reason: String, retry: bool| (Welcome::Refused { reason, retry }, None);
        let (version, protocol) = match &hello {
            AgentHello::Enroll {
                version, protocol, ..
            }
            | AgentHello::Hello {
                version, protocol, ..
            } => (version.clone(), *protocol),
        };
        if let Err(e) = proto::compatible(server_version, &version, protocol) {
            return refused(e, false);
        }
        match hello {
            AgentHello::Enroll {
                token_secret,
                inventory,
                ..
            } => match self.enroll(&token_secret, inventory, &version) {
                Ok((host_id, credential)) => (
                    Welcome::Enrolled {
                        host_id,
                        credential,
                        heartbeat_secs: self.heartbeat_secs,
                        metrics_secs: self.metrics_secs,
                        server_version: server_version.into(),
                    },
                    Some(host_id),
                ),
                Err(Error::Internal(e)) => refused(format!("server error: {e}"), true),
                Err(Error::Store(e)) => refused(format!("server error: {e}"), true),
                Err(e) => refused(e.to_string(), false),
            },
            AgentHello::Hello {
                host_id,
                credential,
                inventory,
                ..
            } => {
                let hash = sha256_hex(&credential);
                let found = self.store.read(|tx| tx.get::<u64>(&AGENT_CREDS, &hash));
                match found {
                    Ok(Some(id)) if id == host_id => {
                        let t = now();
                        let r = self.store.write(|tx| {
                            let Some(mut h) = tx.get_u64::<HostRecord>(&HOSTS, host_id)? else {
                                return Ok::<_, Error>(false);
                            };
                            h.inventory = inventory;
                            h.agent_version = version.clone();
                            h.last_seen_at = Some(t);
                            tx.put_u64(&HOSTS, host_id, &h)?;
                            Ok(true)
                        });
                        match r {
                            Ok(true) => (
                                Welcome::Welcome {
                                    host_id,
                                    heartbeat_secs: self.heartbeat_secs,
                                    metrics_secs: self.metrics_secs,
                                    server_version: server_version.into(),
                                },
                                Some(host_id),
                            ),
                            Ok(false) => refused(
                                "this host was deleted from OMP: enroll it again".into(),
                                false,
                            ),
                            Err(e) => refused(format!("server error: {e}"), true),
                        }
                    }
                    Ok(_) => refused(
                        "unknown or revoked agent credential: enroll the host again".into(),
                        false,
                    ),
                    Err(e) => refused(format!("server error: {e}"), true),
                }
            }
        }
    }

    fn enroll(&self, secret: &str, inventory: Inventory, version: &str) -> Result<(u64, String)> {
        let hash = sha256_hex(secret);
        let t = now();
        let credential = random_hex(32);
        let cred_hash = sha256_hex(&credential);
        self.store.write(|tx| {
            let id: Option<String> = tx.get(&ENROLL_SECRETS, &hash)?;
            let Some(id) = id else {
                return Err(Error::Refused(
                    "unknown enrollment token: create a new one in the UI".into(),
                ));
            };
            let mut rec: EnrollTokenRecord = tx
                .get(&ENROLL_TOKENS, &id)?
                .ok_or_else(|| Error::Refused("unknown enrollment token".into()))?;
            if rec.used_at.is_some() {
                return Err(Error::Refused(
                    "this enrollment token was already used: create a new one in the UI".into(),
                ));
            }
            if rec.expires_at <= t {
                return Err(Error::Refused(
                    "this enrollment token has expired: create a new one in the UI".into(),
                ));
            }
            let host_id = tx.next_id("hosts")?;
            let host = HostRecord {
                id: host_id,
                inventory,
                labels: rec.labels.clone(),
                groups: rec.groups.clone(),
                maintenance: None,
                enrolled_at: t,
                last_seen_at: Some(t),
                agent_version: version.to_string(),
                cred_hash: cred_hash.clone(),
            };
            tx.put_u64(&HOSTS, host_id, &host)?;
            tx.put(&AGENT_CREDS, &cred_hash, &host_id)?;
            rec.used_at = Some(t);
            rec.used_by_host = Some(host_id);
            tx.put(&ENROLL_TOKENS, &id, &rec)?;
            Ok((host_id, credential))
        })
    }

    /// Registers the live connection of an agent; a newer connection replaces an older one.
    pub fn attach(&self, host_id: u64, hostname: &str, tx: mpsc::Sender<ServerMsg>) -> u64 {
        let mut live = lock(&self.live);
        live.next_conn += 1;
        let id = live.next_conn;
        live.conns.insert(
            host_id,
            Conn {
                id,
                tx,
                last_seen: now(),
                hostname: hostname.to_string(),
            },
        );
        tracing::info!(host_id, "Agent connected.");
        id
    }

    /// Forgets a connection (if still the current one) and fails its running commands.
    pub fn detach(&self, host_id: u64, conn_id: u64) {
        let removed = {
            let mut live = lock(&self.live);
            match live.conns.get(&host_id) {
                Some(c) if c.id == conn_id => live.conns.remove(&host_id).is_some(),
                _ => false,
            }
        };
        if removed {
            tracing::info!(host_id, "Agent disconnected.");
            self.jobs.host_lost(
                host_id,
                "the agent disconnected before the command finished",
            );
            self.host_terminals_lost(host_id);
            self.host_transfers_lost(host_id);
            self.host_requests_lost(host_id);
            let t = now();
            let _ = self.store.write(|tx| {
                if let Some(mut h) = tx.get_u64::<HostRecord>(&HOSTS, host_id)? {
                    h.last_seen_at = Some(t);
                    tx.put_u64(&HOSTS, host_id, &h)?;
                }
                Ok::<_, Error>(())
            });
        }
    }

    /// Handles one message from a connected agent.
    pub fn on_message(&self, host_id: u64, msg: AgentMsg) {
        if let Some(c) = lock(&self.live).conns.get_mut(&host_id) {
            c.last_seen = now();
        }
        match msg {
            AgentMsg::Heartbeat { .. } => {}
            AgentMsg::Inventory { inventory } => {
                let _ = self.store.write(|tx| {
                    if let Some(mut h) = tx.get_u64::<HostRecord>(&HOSTS, host_id)? {
                        h.inventory = inventory;
                        tx.put_u64(&HOSTS, host_id, &h)?;
                    }
                    Ok::<_, Error>(())
                });
            }
            AgentMsg::ExecStarted { job } => self.jobs.started(job, host_id),
            AgentMsg::ExecOutput { job, stream, data } => {
                self.jobs.output(job, host_id, stream, &data)
            }
            AgentMsg::ExecDone(done) => self.jobs.done(host_id, done),
            AgentMsg::Metrics { samples, .. } => self.ingest_metrics(host_id, samples),
            AgentMsg::TermOutput { term, data } => self.terminal_output(host_id, term, data),
            AgentMsg::FileData { xfer, data } => self.file_data(host_id, xfer, &data),
            AgentMsg::FileDone {
                xfer,
                error,
                size,
                sha256,
            } => self.file_done(host_id, xfer, error, size, sha256),
            AgentMsg::Reply { req, reply } => self.on_reply(host_id, req, reply),
            // Fleet upgrades (lifecycle::fleet) take these in the agent channel.
            AgentMsg::UpgradeStatus { .. } => {}
            AgentMsg::TermExit { term, code, error } => {
                let reason = error.unwrap_or_else(|| "the shell exited".into());
                self.end_terminal(term, code, &reason);
            }
        }
    }

    /// Labels an agent's samples with `instance` (its hostname) and `job="node"`, and queues
    /// them; the server's clock stamps them, so agents with a wrong clock still line up.
    fn ingest_metrics(&self, host_id: u64, samples: Vec<crate::proto::MetricSample>) {
        let Some(m) = &self.metrics else { return };
        let Some(instance) = lock(&self.live)
            .conns
            .get(&host_id)
            .map(|c| c.hostname.clone())
        else {
            return;
        };
        let t = chrono::Utc::now().timestamp_millis();
        // The agent's names are node_exporter's: counters end in _total, the rest are gauges.
        let meta: std::collections::BTreeMap<String, crate::tsdb::exposition::Meta> = samples
            .iter()
            .map(|s| {
                let kind = if s.name.ends_with("_total") {
                    "counter"
                } else {
                    "gauge"
                };
                (
                    s.name.clone(),
                    crate::tsdb::exposition::Meta {
                        kind: Some(kind.into()),
                        help: Some(
                            "Host metric collected by the OMP agent (node_exporter's name).".into(),
                        ),
                    },
                )
            })
            .collect();
        m.note_meta(&meta);
        let batch: Vec<crate::tsdb::db::Ingest> = samples
            .into_iter()
            .filter(|s| crate::tsdb::exposition::valid_metric_name(&s.name))
            .map(|s| {
                let mut labels: Vec<(String, String)> = s
                    .labels
                    .into_iter()
                    .filter(|(k, _)| {
                        k != "instance"
                            && k != "job"
                            && crate::tsdb::exposition::valid_label_name(k)
                    })
                    .collect();
                labels.push(("__name__".into(), s.name));
                labels.push(("instance".into(), instance.clone()));
                labels.push(("job".into(), "node".into()));
                crate::tsdb::db::Ingest {
                    labels,
                    t,
                    v: s.value,
                }
            })
            .collect();
        if !m.submit(batch) {
            tracing::warn!(
                host_id,
                "Metrics queue full: a batch of host metrics was dropped."
            );
        }
    }

    /// True while the agent is connected and heard from within three heartbeats.
    pub fn is_online(&self, host_id: u64) -> bool {
        let limit = 3 * self.heartbeat_secs as i64;
        lock(&self.live)
            .conns
            .get(&host_id)
            .is_some_and(|c| now() - c.last_seen <= limit)
    }

    /// Last time the agent was heard from (live connection or stored).
    fn last_seen(&self, h: &HostRecord) -> Option<i64> {
        lock(&self.live)
            .conns
            .get(&h.id)
            .map(|c| c.last_seen)
            .or(h.last_seen_at)
    }

    pub(crate) fn sender(&self, host_id: u64) -> Option<mpsc::Sender<ServerMsg>> {
        if !self.is_online(host_id) {
            return None;
        }
        lock(&self.live).conns.get(&host_id).map(|c| c.tx.clone())
    }

    /// Closes connections whose agent went silent for three heartbeats.
    pub fn reap_silent(&self) {
        let limit = 3 * self.heartbeat_secs as i64;
        let t = now();
        let silent: Vec<(u64, u64)> = lock(&self.live)
            .conns
            .iter()
            .filter(|(_, c)| t - c.last_seen > limit)
            .map(|(h, c)| (*h, c.id))
            .collect();
        for (h, c) in silent {
            tracing::warn!(
                host_id = h,
                "Agent silent for three heartbeats: marked offline."
            );
            self.detach(h, c);
        }
    }

    // ---- reading and editing hosts ----

    fn view(&self, record: HostRecord) -> HostView {
        let online = self.is_online(record.id);
        let mut record = record;
        record.last_seen_at = self.last_seen(&record);
        HostView { record, online }
    }

    /// Hosts `grants` may see with `hosts:read`, filtered, by id.
    pub fn list(&self, grants: &Grants, f: &HostFilter) -> Result<Vec<HostView>> {
        let all = self.store.read(|tx| tx.all_u64::<HostRecord>(&HOSTS))?;
        let q =
            f.q.as_ref()
                .map(|q| q.to_lowercase())
                .filter(|q| !q.is_empty());
        Ok(all
            .into_iter()
            .map(|(_, h)| h)
            .filter(|h| grants.allows_on("hosts:read", &h.groups))
            .filter(|h| f.group.as_ref().is_none_or(|g| h.groups.contains(g)))
            .filter(|h| {
                f.label
                    .as_ref()
                    .is_none_or(|(k, v)| h.labels.get(k) == Some(v))
            })
            .filter(|h| {
                q.as_ref().is_none_or(|q| {
                    h.inventory.hostname.to_lowercase().contains(q)
                        || h.inventory.ips.iter().any(|ip| ip.contains(q.as_str()))
                        || h.labels
                            .iter()
                            .any(|(k, v)| format!("{k}={v}").to_lowercase().contains(q))
                })
            })
            .map(|h| self.view(h))
            .filter(|v| f.online.is_none_or(|o| v.online == o))
            .collect())
    }

    /// One host, if `grants` may `perm` on it (a host one may not see is "not found").
    pub fn get(&self, grants: &Grants, id: u64, perm: &str) -> Result<HostView> {
        let h = self.store.read(|tx| tx.get_u64::<HostRecord>(&HOSTS, id))?;
        match h {
            Some(h) if grants.allows_on("hosts:read", &h.groups) => {
                if !grants.allows_on(perm, &h.groups) {
                    return Err(Error::Forbidden(perm.to_string()));
                }
                Ok(self.view(h))
            }
            _ => Err(Error::NotFound(format!("host {id}"))),
        }
    }

    pub fn update(&self, grants: &Grants, id: u64, patch: HostPatch) -> Result<HostView> {
        self.get(grants, id, "hosts:write")?;
        let labels = patch.labels.map(check_labels).transpose()?;
        let groups = patch.groups.map(check_groups).transpose()?;
        let rec = self.modify(id, |h| {
            if let Some(l) = labels {
                h.labels = l;
            }
            if let Some(g) = groups {
                h.groups = g;
            }
            Ok(())
        })?;
        Ok(self.view(rec))
    }

    /// Turns maintenance of one host on (`Some`) or off (`None`).
    pub fn set_maintenance(
        &self,
        grants: &Grants,
        id: u64,
        m: Option<Maintenance>,
    ) -> Result<HostView> {
        self.get(grants, id, "hosts:write")?;
        if let Some(m) = &m {
            check_maintenance(m)?;
        }
        let rec = self.modify(id, |h| {
            h.maintenance = m;
            Ok(())
        })?;
        Ok(self.view(rec))
    }

    fn modify(&self, id: u64, f: impl FnOnce(&mut HostRecord) -> Result<()>) -> Result<HostRecord> {
        self.store.write(|tx| {
            let mut h: HostRecord = tx
                .get_u64(&HOSTS, id)?
                .ok_or_else(|| Error::NotFound(format!("host {id}")))?;
            f(&mut h)?;
            tx.put_u64(&HOSTS, id, &h)?;
            Ok(h)
        })
    }

    /// Deletes a host: its credential is revoked and a connected agent told to stop.
    pub fn delete(&self, grants: &Grants, id: u64) -> Result<HostRecord> {
        let v = self.get(grants, id, "hosts:write")?;
        for g in lock(&self.guards).iter() {
            if let Some(why) = g(&v.record) {
                return Err(Error::Refused(why));
            }
        }
        let rec = self.store.write(|tx| delete_in(tx, id))?;
        let conn = lock(&self.live).conns.remove(&id);
        if let Some(c) = conn {
            let _ = c.tx.try_send(ServerMsg::Revoked {
                reason: "the host was deleted from OMP".into(),
            });
        }
        self.jobs.host_lost(id, "the host was deleted");
        Ok(rec)
    }

    /// Host groups with their number of visible hosts.
    pub fn groups(&self, grants: &Grants) -> Result<Vec<(String, usize)>> {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for v in self.list(grants, &HostFilter::default())? {
            for g in &v.record.groups {
                *m.entry(g.clone()).or_default() += 1;
            }
        }
        Ok(m.into_iter().collect())
    }

    /// Global maintenance, if on (and not past its `until`).
    pub fn global_maintenance(&self) -> Result<Option<Maintenance>> {
        let m: Option<Maintenance> = self
            .store
            .read(|tx| tx.get(&SETTINGS, SETTING_MAINTENANCE))?;
        Ok(m.filter(|m| m.enabled && m.until.is_none_or(|u| u > now())))
    }

    pub fn set_global_maintenance(&self, m: Option<Maintenance>) -> Result<Option<Maintenance>> {
        if let Some(m) = &m {
            check_maintenance(m)?;
        }
        self.store.write(|tx| match &m {
            Some(m) => tx.put(&SETTINGS, SETTING_MAINTENANCE, m),
            None => tx.delete(&SETTINGS, SETTING_MAINTENANCE).map(drop),
        })?;
        Ok(m)
    }

    /// Every host record (for target resolution).
    pub fn all_records(&self) -> Result<Vec<HostRecord>> {
        Ok(self
            .store
            .read(|tx| tx.all_u64::<HostRecord>(&HOSTS))?
            .into_iter()
            .map(|(_, h)| h)
            .collect())
    }

    /// Creates (or finds) the host record of the server's own embedded agent and returns a
    /// fresh enrollment secret for it, so the local agent enrolls like any other.
    pub fn local_enroll_secret(&self) -> Result<String> {
        let (_, secret) = self.create_enroll_token("system", 600, BTreeMap::new(), vec![])?;
        Ok(secret)
    }
}

fn delete_in(tx: &mut WriteTx, id: u64) -> Result<HostRecord> {
    let h: HostRecord = tx
        .get_u64(&HOSTS, id)?
        .ok_or_else(|| Error::NotFound(format!("host {id}")))?;
    tx.delete_u64(&HOSTS, id)?;
    tx.delete(&AGENT_CREDS, &h.cred_hash)?;
    Ok(h)
}

pub(crate) fn check_labels(labels: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    if labels.len() > 64 {
        return Err(Error::validation("labels", "at most 64 labels"));
    }
    for (k, v) in &labels {
        let key_ok = (1..=63).contains(&k.len())
            && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        if !key_ok {
            return Err(Error::validation(
                "labels",
                format!(
                    "invalid label key {k:?}: letters, digits, '_', '.', '-', '/', starting with a letter"
                ),
            ));
        }
        if v.len() > 255 || v.chars().any(|c| c.is_control()) {
            return Err(Error::validation(
                "labels",
                format!(
                    "invalid value for label {k}: at most 255 characters, no control characters"
                ),
            ));
        }
    }
    Ok(labels)
}

pub(crate) fn check_groups(mut groups: Vec<String>) -> Result<Vec<String>> {
    for g in &groups {
        let ok = (1..=64).contains(&g.len())
            && g.chars().all(|c| c.is_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(Error::validation(
                "groups",
                format!("invalid group name {g:?}: letters, digits, '_', '.', '-'"),
            ));
        }
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

fn check_maintenance(m: &Maintenance) -> Result<()> {
    if m.reason.trim().is_empty() || m.reason.len() > 500 {
        return Err(Error::validation(
            "reason",
            "give a reason (at most 500 characters)",
        ));
    }
    if m.until.is_some_and(|u| u <= now()) {
        return Err(Error::validation("until", "until must be in the future"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, Hosts) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let hosts = Hosts::new(store, d.path(), 10, 100);
        (d, hosts)
    }

    fn enroll_msg(secret: &str, version: &str) -> AgentHello {
        AgentHello::Enroll {
            version: version.into(),
            protocol: proto::PROTOCOL,
            token_secret: secret.into(),
            inventory: Inventory {
                hostname: "web-1".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn enrollment_is_one_time_and_credentials_work() {
        let (_d, hosts) = service();
        let (_, secret) = hosts
            .create_enroll_token("admin", 300, BTreeMap::new(), vec!["web".into()])
            .unwrap();
        assert!(hosts.enroll_secret_valid(&secret).unwrap());
        let (w, id) = hosts.handshake(enroll_msg(&secret, crate::VERSION), crate::VERSION);
        let Welcome::Enrolled {
            host_id,
            credential,
            ..
        } = w
        else {
            panic!("{w:?}")
        };
        assert_eq!(id, Some(host_id));
        assert!(!hosts.enroll_secret_valid(&secret).unwrap());
        let (w, id) = hosts.handshake(enroll_msg(&secret, crate::VERSION), crate::VERSION);
        assert!(
            matches!(&w, Welcome::Refused { reason, retry: false } if reason.contains("already used")),
            "{w:?}"
        );
        assert_eq!(id, None);
        let hello = |cred: &str| AgentHello::Hello {
            version: crate::VERSION.into(),
            protocol: proto::PROTOCOL,
            host_id,
            credential: cred.into(),
            inventory: Inventory::default(),
        };
        assert!(matches!(
            hosts.handshake(hello(&credential), crate::VERSION).0,
            Welcome::Welcome { .. }
        ));
        assert!(matches!(
            hosts.handshake(hello("nope"), crate::VERSION).0,
            Welcome::Refused { retry: false, .. }
        ));
        let all = Grants::from_roles(
            crate::model::builtin_roles()
                .iter()
                .filter(|r| r.name == "admin"),
        );
        assert_eq!(
            hosts.list(&all, &HostFilter::default()).unwrap()[0]
                .record
                .groups,
            vec!["web"]
        );
        hosts.delete(&all, host_id).unwrap();
        assert!(matches!(
            hosts.handshake(hello(&credential), crate::VERSION).0,
            Welcome::Refused { retry: false, .. }
        ));
    }

    #[test]
    fn incompatible_agents_and_bad_tokens_are_refused() {
        let (_d, hosts) = service();
        let (_, secret) = hosts
            .create_enroll_token("admin", 300, BTreeMap::new(), vec![])
            .unwrap();
        let (w, _) = hosts.handshake(enroll_msg(&secret, "99.0.0"), crate::VERSION);
        assert!(
            matches!(&w, Welcome::Refused { reason, .. } if reason.contains("not compatible")),
            "{w:?}"
        );
        // The refused attempt did not consume the token.
        assert!(hosts.enroll_secret_valid(&secret).unwrap());
        let (w, _) = hosts.handshake(enroll_msg("ff", crate::VERSION), crate::VERSION);
        assert!(
            matches!(&w, Welcome::Refused { reason, .. } if reason.contains("unknown enrollment token")),
            "{w:?}"
        );
        assert!(
            hosts
                .create_enroll_token("admin", 0, BTreeMap::new(), vec![])
                .is_err()
        );
        let bad = BTreeMap::from([("-x".to_string(), "1".to_string())]);
        assert!(
            hosts
                .create_enroll_token("admin", 300, bad, vec![])
                .is_err()
        );
        assert!(
            hosts
                .create_enroll_token("admin", 300, BTreeMap::new(), vec!["a b".into()])
                .is_err()
        );
    }

    #[test]
    fn scoped_roles_see_only_their_groups() {
        let (_d, hosts) = service();
        for g in ["a", "b"] {
            let (_, s) = hosts
                .create_enroll_token("admin", 300, BTreeMap::new(), vec![g.into()])
                .unwrap();
            hosts.handshake(enroll_msg(&s, crate::VERSION), crate::VERSION);
        }
        let role = crate::model::Role {
            name: "a-ops".into(),
            description: String::new(),
            permissions: vec!["hosts:read".into(), "exec:run".into()],
            host_groups: vec!["a".into()],
            builtin: false,
        };
        let g = Grants::from_roles([&role]);
        let seen = hosts.list(&g, &HostFilter::default()).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].record.groups, vec!["a"]);
        let other = hosts
            .all_records()
            .unwrap()
            .into_iter()
            .find(|h| h.groups == ["b"])
            .unwrap();
        assert!(matches!(
            hosts.get(&g, other.id, "hosts:read"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            hosts.update(&g, seen[0].record.id, HostPatch::default()),
            Err(Error::Forbidden(_))
        ));
    }
}
