//! Agent fleet upgrade, server side: the agent binary the server hands out (its own
//! executable, or `[agent] binary` from omp.toml) with its stamped version and SHA-256, and
//! upgrade runs over a set of hosts: a canary batch first, then the rest; a host succeeds
//! when it reconnects reporting the new version, fails on an error report, on coming back
//! with another version (the agent rolled itself back) or on the timeout; the first
//! failure stops the run. Download tickets are one-time and kept hashed in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::hosts::Hosts;
use crate::proto::{ServerMsg, UpgradeRequest};

/// The binary served to agents.
#[derive(Debug, Clone, Serialize)]
pub struct AgentBinary {
    pub path: PathBuf,
    pub version: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Pending,
    Sent,
    Succeeded,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostUpgrade {
    pub host_id: u64,
    pub hostname: String,
    pub from_version: String,
    pub canary: bool,
    pub state: HostState,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: u64,
    pub version: String,
    pub sha256: String,
    pub by: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub state: RunState,
    pub canary: usize,
    pub timeout_secs: u64,
    pub message: String,
    pub hosts: Vec<HostUpgrade>,
}

/// A host to upgrade, as the API selected it (RBAC scoping applied there).
#[derive(Debug, Clone)]
pub struct Target {
    pub host_id: u64,
    pub hostname: String,
    pub agent_version: String,
    pub online: bool,
}

#[derive(Default)]
struct Inner {
    next: u64,
    runs: BTreeMap<u64, Run>,
    /// SHA-256(ticket) → (run, host, expires).
    tickets: HashMap<String, (u64, u64, i64)>,
    cached: Option<(std::time::SystemTime, u64, AgentBinary)>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    hosts: Hosts,
    binary: Option<PathBuf>,
    inner: Arc<Mutex<Inner>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hash(t: &str) -> String {
    super::bundle::hex(&Sha256::digest(t.as_bytes()))
}

impl Fleet {
    /// `binary`: the configured agent binary; None serves this executable.
    pub fn new(hosts: Hosts, binary: Option<PathBuf>) -> Fleet {
        Fleet {
            hosts,
            binary,
            inner: Arc::default(),
        }
    }

    /// The agent binary with its version and checksum (cached while the file is unchanged).
    pub fn agent_binary(&self) -> anyhow::Result<AgentBinary> {
        use anyhow::Context;
        let path = match &self.binary {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("cannot find this executable")?,
        };
        let meta = std::fs::metadata(&path).with_context(|| {
            format!(
                "the agent binary {} is missing: fix [agent] binary in omp.toml",
                path.display()
            )
        })?;
        let mtime = meta.modified()?;
        if let Some((t, len, b)) = &lock(&self.inner).cached
            && *t == mtime
            && *len == meta.len()
            && b.path == path
        {
            return Ok(b.clone());
        }
        let version = match super::stamp::read_file(&path)? {
            Some(v) => v,
            None if self.binary.is_none() => crate::version().to_string(),
            None => anyhow::bail!(
                "{} carries no version stamp: use the bin/omp of a tarball built by packaging/build.sh",
                path.display()
            ),
        };
        let b = AgentBinary {
            sha256: super::bundle::sha256_file(&path)?,
            size: meta.len(),
            path,
            version,
        };
        lock(&self.inner).cached = Some((mtime, meta.len(), b.clone()));
        Ok(b)
    }

    /// Consumes a download ticket; the host it was issued to, if valid.
    pub fn take_ticket(&self, ticket: &str) -> Option<u64> {
        let mut inner = lock(&self.inner);
        let (_, host, expires) = inner.tickets.remove(&hash(ticket))?;
        (expires >= now()).then_some(host)
    }

    pub fn list(&self) -> Vec<Run> {
        lock(&self.inner).runs.values().rev().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Run> {
        lock(&self.inner).runs.get(&id).cloned()
    }

    /// An agent's report.
    pub fn on_status(&self, host_id: u64, upgrade: u64, ok: bool, message: String) {
        let mut inner = lock(&self.inner);
        if let Some(run) = inner.runs.get_mut(&upgrade)
            && let Some(h) = run.hosts.iter_mut().find(|h| h.host_id == host_id)
            && h.state == HostState::Sent
        {
            if ok {
                h.message = message;
            } else {
                h.state = HostState::Failed;
                h.message = format!("the agent abandoned the upgrade: {message}");
            }
        }
    }

    /// Starts a run; the returned run is its initial state. Must be called within a tokio
    /// runtime: the run proceeds in a task.
    pub fn start(
        &self,
        targets: Vec<Target>,
        canary: usize,
        timeout_secs: u64,
        by: &str,
    ) -> Result<Run, String> {
        let bin = self.agent_binary().map_err(|e| format!("{e:#}"))?;
        let mut inner = lock(&self.inner);
        if inner.runs.values().any(|r| r.state == RunState::Running) {
            return Err("an agent upgrade is already running: wait for it to end".into());
        }
        if targets.is_empty() {
            return Err("no hosts selected".into());
        }
        inner.next += 1;
        let id = inner.next;
        let mut canaries = 0;
        let hosts = targets
            .into_iter()
            .map(|t| {
                let (state, message) = if t.agent_version == bin.version {
                    (HostState::Skipped, format!("already at {}", bin.version))
                } else if !t.online {
                    (HostState::Skipped, "offline".to_string())
                } else {
                    (HostState::Pending, String::new())
                };
                let is_canary = state == HostState::Pending && canaries < canary;
                if is_canary {
                    canaries += 1;
                }
                HostUpgrade {
                    host_id: t.host_id,
                    hostname: t.hostname,
                    from_version: t.agent_version,
                    canary: is_canary,
                    state,
                    message,
                }
            })
            .collect();
        let run = Run {
            id,
            version: bin.version.clone(),
            sha256: bin.sha256.clone(),
            by: by.into(),
            started_at: now(),
            finished_at: None,
            state: RunState::Running,
            canary,
            timeout_secs,
            message: String::new(),
            hosts,
        };
        inner.runs.insert(id, run.clone());
        // Keep the last 50 runs.
        while inner.runs.len() > 50 {
            let Some(first) = inner.runs.keys().next().copied() else {
                break;
            };
            inner.runs.remove(&first);
        }
        drop(inner);
        let me = self.clone();
        tokio::spawn(async move { me.drive(id, bin).await });
        Ok(run)
    }

    async fn drive(self, id: u64, bin: AgentBinary) {
        let (canaries, rest): (Vec<u64>, Vec<u64>) = {
            let inner = lock(&self.inner);
            let Some(run) = inner.runs.get(&id) else {
                return;
            };
            let pending: Vec<&HostUpgrade> = run
                .hosts
                .iter()
                .filter(|h| h.state == HostState::Pending)
                .collect();
            (
                pending
                    .iter()
                    .filter(|h| h.canary)
                    .map(|h| h.host_id)
                    .collect(),
                pending
                    .iter()
                    .filter(|h| !h.canary)
                    .map(|h| h.host_id)
                    .collect(),
            )
        };
        let mut ok = true;
        for batch in [canaries, rest] {
            if batch.is_empty() {
                continue;
            }
            ok = self.batch(id, &bin, &batch).await;
            if !ok {
                break;
            }
        }
        let mut inner = lock(&self.inner);
        if let Some(run) = inner.runs.get_mut(&id) {
            for h in &mut run.hosts {
                if h.state == HostState::Pending {
                    h.state = HostState::Skipped;
                    h.message = "not attempted: the run stopped after a failure".into();
                }
            }
            run.finished_at = Some(now());
            run.state = if ok {
                RunState::Succeeded
            } else {
                RunState::Failed
            };
            run.message = if ok {
                format!("every selected agent runs {}", bin.version)
            } else {
                "stopped after a failure; agents not yet upgraded keep their version".into()
            };
            tracing::info!(upgrade = id, state = ?run.state, "Agent upgrade run ended.");
        }
    }

    /// Sends the order to `batch` and waits for each host; true when all succeeded.
    async fn batch(&self, id: u64, bin: &AgentBinary, batch: &[u64]) -> bool {
        let timeout = lock(&self.inner)
            .runs
            .get(&id)
            .map(|r| r.timeout_secs)
            .unwrap_or(120);
        for &host in batch {
            let ticket = super::bundle::hex(&rand::random::<[u8; 32]>());
            lock(&self.inner)
                .tickets
                .insert(hash(&ticket), (id, host, now() + timeout as i64));
            let req = UpgradeRequest {
                upgrade: id,
                version: bin.version.clone(),
                sha256: bin.sha256.clone(),
                size: bin.size,
                ticket,
                confirm_secs: timeout,
            };
            let sent = match self.hosts.sender(host) {
                Some(tx) => tx.send(ServerMsg::Upgrade(req)).await.is_ok(),
                None => false,
            };
            self.set(id, host, |h| {
                if sent {
                    h.state = HostState::Sent;
                } else {
                    h.state = HostState::Failed;
                    h.message = "the agent went offline before the order".into();
                }
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
        loop {
            let records = self.hosts.all_records().unwrap_or_default();
            let mut waiting = 0;
            for &host in batch {
                let Some(state) = self.host_state(id, host) else {
                    continue;
                };
                if state != HostState::Sent {
                    continue;
                }
                let rec = records.iter().find(|r| r.id == host);
                let online = self.hosts.is_online(host);
                match rec {
                    Some(r) if online && r.agent_version == bin.version => self.set(id, host, |h| {
                        h.state = HostState::Succeeded;
                        h.message = format!("reconnected as {}", bin.version);
                    }),
                    _ if std::time::Instant::now() > deadline => self.set(id, host, |h| {
                        h.state = HostState::Failed;
                        h.message = format!(
                            "did not reconnect as {} within {timeout} s (the agent restores its previous binary by itself)",
                            bin.version
                        );
                    }),
                    _ => waiting += 1,
                }
            }
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        batch
            .iter()
            .all(|&h| self.host_state(id, h) == Some(HostState::Succeeded))
    }

    fn host_state(&self, id: u64, host: u64) -> Option<HostState> {
        lock(&self.inner)
            .runs
            .get(&id)?
            .hosts
            .iter()
            .find(|h| h.host_id == host)
            .map(|h| h.state.clone())
    }

    fn set(&self, id: u64, host: u64, f: impl FnOnce(&mut HostUpgrade)) {
        if let Some(h) = lock(&self.inner)
            .runs
            .get_mut(&id)
            .and_then(|r| r.hosts.iter_mut().find(|h| h.host_id == host))
        {
            f(h)
        }
    }
}
