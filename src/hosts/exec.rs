//! Remote execution: a job runs one argv on many hosts at once. The job table keeps running
//! jobs in memory (outputs grow as agents stream them, bounded per host) and stores each job
//! when it starts and when it ends, keeping the newest `history` jobs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{HostRecord, Hosts, lock, now};
use crate::auth::Grants;
use crate::error::{Error, Result};
use crate::proto::{ExecDone, ExecRequest, ServerMsg, Stream};
use crate::store::{JOBS, Store};

/// Bytes of stdout and of stderr kept per host.
pub const MAX_KEEP: usize = 64 * 1024;
/// Grace after a job's timeout before an agent that never answered is given up on.
const GRACE_SECS: i64 = 10;

/// Which hosts a job runs on (union of the parts).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    pub hosts: Vec<u64>,
    pub groups: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub all: bool,
}

/// A job as requested.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecInput {
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// A shell command line, run as `/bin/sh -c COMMAND` (needs `exec:shell`).
    #[serde(default)]
    pub command: Option<String>,
    pub targets: Targets,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Cancelled,
    /// The server restarted while the job ran.
    Interrupted,
}

/// One host's part of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRun {
    pub host_id: u64,
    pub hostname: String,
    /// pending, running, ok, failed, timeout, cancelled, offline, error
    pub state: String,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub error: Option<String>,
}

impl HostRun {
    fn terminal(&self) -> bool {
        !matches!(self.state.as_str(), "pending" | "running")
    }
}

/// A job with its per-host results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub created_by: String,
    pub created_at: i64,
    pub argv: Option<Vec<String>>,
    pub command: Option<String>,
    pub timeout_secs: u64,
    pub state: JobState,
    #[serde(default)]
    pub cancel_requested: bool,
    pub hosts: Vec<HostRun>,
}

impl Job {
    pub fn count(&self, state: &str) -> usize {
        self.hosts.iter().filter(|h| h.state == state).count()
    }
}

/// Running jobs in memory, finished ones in the store.
#[derive(Clone)]
pub(crate) struct JobTable {
    store: Store,
    running: Arc<Mutex<HashMap<u64, Job>>>,
    history: usize,
}

impl JobTable {
    pub(crate) fn new(store: Store, history: usize) -> Self {
        JobTable {
            store,
            running: Arc::default(),
            history: history.max(1),
        }
    }

    fn with_run(&self, job: u64, host: u64, f: impl FnOnce(&mut HostRun)) {
        let finished = {
            let mut running = lock(&self.running);
            let Some(j) = running.get_mut(&job) else {
                return;
            };
            if let Some(r) = j.hosts.iter_mut().find(|r| r.host_id == host) {
                f(r);
            }
            j.hosts.iter().all(HostRun::terminal)
        };
        if finished {
            self.finish(job);
        }
    }

    pub(crate) fn started(&self, job: u64, host: u64) {
        self.with_run(job, host, |r| {
            if r.state == "pending" {
                r.state = "running".into();
            }
        });
    }

    pub(crate) fn output(&self, job: u64, host: u64, stream: Stream, data: &str) {
        self.with_run(job, host, |r| {
            let buf = match stream {
                Stream::Stdout => &mut r.stdout,
                Stream::Stderr => &mut r.stderr,
            };
            let room = MAX_KEEP.saturating_sub(buf.len());
            if data.len() <= room {
                buf.push_str(data);
            } else {
                let mut cut = room;
                while !data.is_char_boundary(cut) {
                    cut -= 1;
                }
                buf.push_str(&data[..cut]);
                r.truncated = true;
            }
        });
    }

    pub(crate) fn done(&self, host: u64, d: ExecDone) {
        self.with_run(d.job, host, |r| {
            if r.terminal() {
                return;
            }
            r.state = d.outcome.clone();
            r.exit_code = d.exit_code;
            r.duration_ms = Some(d.duration_ms);
            r.error = d.error.clone();
            if d.dropped_bytes > 0 {
                r.truncated = true;
            }
        });
    }

    /// Fails the runs of a host that went away.
    pub(crate) fn host_lost(&self, host: u64, why: &str) {
        let jobs: Vec<u64> = lock(&self.running)
            .values()
            .filter(|j| j.hosts.iter().any(|r| r.host_id == host && !r.terminal()))
            .map(|j| j.id)
            .collect();
        for job in jobs {
            self.with_run(job, host, |r| {
                r.state = "error".into();
                r.error = Some(why.to_string());
            });
        }
    }

    /// True while some run waits for agents.
    pub(crate) fn any_running(&self) -> bool {
        !lock(&self.running).is_empty()
    }

    /// Gives up on runs whose agent never answered within the timeout and a grace.
    pub(crate) fn expire(&self, t: i64) {
        let late: Vec<(u64, Vec<u64>)> = lock(&self.running)
            .values()
            .filter(|j| t > j.created_at + j.timeout_secs as i64 + GRACE_SECS)
            .map(|j| {
                (
                    j.id,
                    j.hosts
                        .iter()
                        .filter(|r| !r.terminal())
                        .map(|r| r.host_id)
                        .collect(),
                )
            })
            .collect();
        for (job, hosts) in late {
            for h in hosts {
                self.with_run(job, h, |r| {
                    r.state = "timeout".into();
                    r.error = Some("the agent did not report a result in time".into());
                });
            }
        }
    }

    fn finish(&self, job: u64) {
        let Some(mut j) = lock(&self.running).get(&job).cloned() else {
            return;
        };
        j.state = if j.cancel_requested {
            JobState::Cancelled
        } else {
            JobState::Done
        };
        // Store first, then forget: a reader in between must never see the stale stored copy.
        if let Err(e) = self.persist(&j) {
            tracing::error!(job, error = %e, "Cannot store a finished job.");
        }
        lock(&self.running).remove(&job);
    }

    fn persist(&self, j: &Job) -> Result<()> {
        let history = self.history;
        self.store.write(|tx| {
            tx.put_u64(&JOBS, j.id, j)?;
            Ok::<_, Error>(())
        })?;
        // Keep the newest `history` jobs.
        let total = self.store.read(|tx| tx.len(&JOBS))? as usize;
        if total > history {
            let old: Vec<(u64, serde_json::Value)> = self
                .store
                .read(|tx| tx.range_u64(&JOBS, .., total - history, false))?;
            self.store.write(|tx| {
                for (k, _) in &old {
                    tx.delete_u64(&JOBS, *k)?;
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(())
    }

    pub(crate) fn get(&self, id: u64) -> Result<Option<Job>> {
        if let Some(j) = lock(&self.running).get(&id) {
            return Ok(Some(j.clone()));
        }
        let stored: Option<Job> = self.store.read(|tx| tx.get_u64(&JOBS, id))?;
        Ok(stored.map(|mut j| {
            if j.state == JobState::Running {
                j.state = JobState::Interrupted;
            }
            j
        }))
    }

    /// Newest first.
    pub(crate) fn list(&self, offset: usize, limit: usize) -> Result<(Vec<Job>, u64)> {
        let total = self.store.read(|tx| tx.len(&JOBS))?;
        let jobs: Vec<(u64, Job)> = self
            .store
            .read(|tx| tx.range_u64(&JOBS, .., offset + limit, true))?;
        let running = lock(&self.running);
        let out = jobs
            .into_iter()
            .skip(offset)
            .map(|(id, j)| match running.get(&id) {
                Some(live) => live.clone(),
                None if j.state == JobState::Running => Job {
                    state: JobState::Interrupted,
                    ..j
                },
                None => j,
            })
            .collect();
        Ok((out, total))
    }
}

impl Hosts {
    /// Starts a job; returns it as first stored (hosts pending, or offline).
    pub async fn exec(&self, actor: &str, grants: &Grants, input: ExecInput) -> Result<Job> {
        let (argv, shell) = match (&input.argv, &input.command) {
            (Some(a), None) => (check_argv(a)?, false),
            (None, Some(c)) => {
                if !grants.allows("exec:shell") {
                    return Err(Error::Forbidden("exec:shell".into()));
                }
                let c = c.trim();
                if c.is_empty() || c.len() > 8192 || c.contains('\0') {
                    return Err(Error::validation(
                        "command",
                        "command must be 1 to 8192 bytes without NUL",
                    ));
                }
                (
                    vec!["/bin/sh".to_string(), "-c".to_string(), c.to_string()],
                    true,
                )
            }
            _ => {
                return Err(Error::validation(
                    "argv",
                    "give either argv (a list of arguments) or command (a shell command line)",
                ));
            }
        };
        let timeout_secs = input.timeout_secs.unwrap_or(60);
        if !(1..=86_400).contains(&timeout_secs) {
            return Err(Error::validation(
                "timeout_secs",
                "timeout_secs must be between 1 and 86400",
            ));
        }
        let perm = if shell { "exec:shell" } else { "exec:run" };
        let targets = self.resolve(grants, &input.targets, perm)?;
        let id = self.store.write(|tx| Ok::<_, Error>(tx.next_id("jobs")?))?;
        let mut job = Job {
            id,
            created_by: actor.to_string(),
            created_at: now(),
            argv: (!shell).then(|| argv.clone()),
            command: shell.then(|| input.command.clone().unwrap_or_default()),
            timeout_secs,
            state: JobState::Running,
            cancel_requested: false,
            hosts: targets
                .iter()
                .map(|h| HostRun {
                    host_id: h.id,
                    hostname: h.inventory.hostname.clone(),
                    state: "pending".into(),
                    exit_code: None,
                    duration_ms: None,
                    stdout: String::new(),
                    stderr: String::new(),
                    truncated: false,
                    error: None,
                })
                .collect(),
        };
        let req = ExecRequest {
            job: id,
            argv,
            timeout_secs,
            max_output_bytes: MAX_KEEP as u64,
        };
        let mut senders = Vec::new();
        for r in job.hosts.iter_mut() {
            match self.sender(r.host_id) {
                Some(tx) => senders.push((r.host_id, tx)),
                None => {
                    r.state = "offline".into();
                    r.error = Some("the agent is offline".into());
                }
            }
        }
        self.jobs.persist(&job)?;
        let all_offline = senders.is_empty();
        lock(&self.jobs.running).insert(id, job.clone());
        for (host, tx) in senders {
            if tx.send(ServerMsg::Exec(req.clone())).await.is_err() {
                self.jobs.with_run(id, host, |r| {
                    r.state = "offline".into();
                    r.error = Some("the agent disconnected".into());
                });
            }
        }
        if all_offline {
            self.jobs.finish(id);
        }
        Ok(self.jobs.get(id)?.unwrap_or(job))
    }

    /// Asks every agent still running the job to stop it.
    pub async fn cancel(&self, grants: &Grants, id: u64) -> Result<Job> {
        let job = self.job(grants, id)?;
        if job.state != JobState::Running {
            return Ok(job);
        }
        let pending: Vec<u64> = {
            let mut running = lock(&self.jobs.running);
            let Some(j) = running.get_mut(&id) else {
                return self.job(grants, id);
            };
            j.cancel_requested = true;
            j.hosts
                .iter()
                .filter(|r| !r.terminal())
                .map(|r| r.host_id)
                .collect()
        };
        for h in pending {
            match self.sender(h) {
                Some(tx) => {
                    let _ = tx.send(ServerMsg::Cancel { job: id }).await;
                }
                None => self.jobs.with_run(id, h, |r| {
                    r.state = "cancelled".into();
                }),
            }
        }
        self.job(grants, id)
    }

    /// A job, if `grants` may see every host it ran on.
    pub fn job(&self, grants: &Grants, id: u64) -> Result<Job> {
        let j = self
            .jobs
            .get(id)?
            .ok_or_else(|| Error::NotFound(format!("job {id}")))?;
        if !self.visible(grants, &j) {
            return Err(Error::NotFound(format!("job {id}")));
        }
        Ok(j)
    }

    /// Jobs visible to `grants`, newest first.
    pub fn jobs(&self, grants: &Grants, offset: usize, limit: usize) -> Result<(Vec<Job>, u64)> {
        let (jobs, total) = self.jobs.list(offset, limit)?;
        Ok((
            jobs.into_iter()
                .filter(|j| self.visible(grants, j))
                .collect(),
            total,
        ))
    }

    fn visible(&self, grants: &Grants, j: &Job) -> bool {
        let groups: HashMap<u64, Vec<String>> = self
            .all_records()
            .unwrap_or_default()
            .into_iter()
            .map(|h| (h.id, h.groups))
            .collect();
        j.hosts.iter().all(|r| {
            grants.allows_on(
                "exec:run",
                groups.get(&r.host_id).map(Vec::as_slice).unwrap_or(&[]),
            )
        })
    }

    /// True when the upkeep has something to watch: connected agents, runs or terminals.
    /// With nothing, the ticker sleeps longer: an idle server should not wake every second.
    pub fn needs_ticks(&self) -> bool {
        !lock(&self.live).conns.is_empty()
            || self.jobs.any_running()
            || !lock(&self.terms).is_empty()
    }

    /// Periodic upkeep: silent agents go offline, overdue runs time out, abandoned terminals end.
    pub async fn tick(&self) {
        self.reap_silent();
        self.jobs.expire(now());
        self.reap_terminals().await;
    }

    fn resolve(&self, grants: &Grants, t: &Targets, perm: &str) -> Result<Vec<HostRecord>> {
        let all = self.all_records()?;
        let mut ids = BTreeSet::new();
        for id in &t.hosts {
            let h = all.iter().find(|h| h.id == *id);
            match h {
                Some(h) if grants.allows_on("hosts:read", &h.groups) => {
                    if !grants.allows_on(perm, &h.groups) {
                        return Err(Error::Forbidden(perm.to_string()));
                    }
                    ids.insert(h.id);
                }
                _ => return Err(Error::NotFound(format!("host {id}"))),
            }
        }
        for h in &all {
            let selected = t.all
                || h.groups.iter().any(|g| t.groups.contains(g))
                || (!t.labels.is_empty()
                    && t.labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)));
            if selected && grants.allows_on(perm, &h.groups) {
                ids.insert(h.id);
            }
        }
        if ids.is_empty() {
            return Err(Error::validation(
                "targets",
                "no host you may run commands on matches the targets",
            ));
        }
        Ok(all.into_iter().filter(|h| ids.contains(&h.id)).collect())
    }
}

fn check_argv(argv: &[String]) -> Result<Vec<String>> {
    if argv.is_empty() || argv[0].trim().is_empty() {
        return Err(Error::validation("argv", "argv needs at least the program"));
    }
    if argv.len() > 256 || argv.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return Err(Error::validation(
            "argv",
            "at most 256 arguments of at most 4096 bytes, without NUL",
        ));
    }
    Ok(argv.to_vec())
}
