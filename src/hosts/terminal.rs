//! Web terminal sessions on the server side: one per open shell on an agent. A session
//! outlives the browser socket for a grace period (so a page switch or reload reattaches),
//! ends when its login session ends, and records its output as asciicast v2
//! (`DATA_DIR/recordings/term-ID.cast`: a header line, then `[seconds, "o"|"r", data]`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Hosts, lock, now};
use crate::auth::Grants;
use crate::error::{Error, Result};
use crate::proto::ServerMsg;
use crate::store::TERMINALS;

/// How long a terminal waits for its browser to come back.
pub const REATTACH_GRACE: Duration = Duration::from_secs(60);
/// Output kept to repaint a reattached browser.
const BACKLOG_BYTES: usize = 64 * 1024;

/// What a browser receives.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TermEvent {
    Output { data: String },
    Exit { code: Option<i32>, reason: String },
}

/// A stored terminal session (for the audit page and replay).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TermRecord {
    pub id: u64,
    pub host_id: u64,
    pub hostname: String,
    pub user: String,
    pub started_at: i64,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub end_reason: String,
    pub recording: String,
}

/// Tells whether the login behind a terminal is still valid.
pub type Liveness = Arc<dyn Fn() -> bool + Send + Sync>;

struct Session {
    record: TermRecord,
    started: Instant,
    file: Option<std::fs::File>,
    backlog: String,
    viewer: Option<(u64, mpsc::Sender<TermEvent>)>,
    detached_since: Option<Instant>,
    alive: Liveness,
}

#[derive(Default)]
pub(crate) struct Terminals {
    sessions: HashMap<u64, Session>,
    next_viewer: u64,
}

/// Writes one asciicast event line.
fn cast_event(file: &mut Option<std::fs::File>, t: f64, kind: &str, data: &str) {
    if let Some(f) = file {
        let line = serde_json::json!([(t * 1e6).round() / 1e6, kind, data]);
        if writeln!(f, "{line}").is_err() {
            // A full disk must not kill the terminal: stop recording, keep serving.
            tracing::error!("Cannot write a terminal recording; recording stopped.");
            *file = None;
        }
    }
}

impl Hosts {
    fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }

    /// Opens a shell on a host for `user`; the session lives while `alive` says so.
    pub async fn open_terminal(
        &self,
        grants: &Grants,
        user: &str,
        host_id: u64,
        cols: u16,
        rows: u16,
        alive: Liveness,
    ) -> Result<TermRecord> {
        let host = self.get(grants, host_id, "terminal:open")?;
        let Some(tx) = self.sender(host_id) else {
            return Err(Error::Conflict(format!(
                "host {} is offline",
                host.record.inventory.hostname
            )));
        };
        let id = self
            .store
            .write(|tx| Ok::<_, Error>(tx.next_id("terminals")?))?;
        let dir = self.recordings_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let name = format!("term-{id}.cast");
        let path = dir.join(&name);
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", path.display())))?;
        let header = serde_json::json!({
            "version": 2, "width": cols, "height": rows, "timestamp": now(),
            "title": format!("{user}@{}", host.record.inventory.hostname),
            "env": {"TERM": "xterm-256color"},
        });
        writeln!(file, "{header}")
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
        let record = TermRecord {
            id,
            host_id,
            hostname: host.record.inventory.hostname.clone(),
            user: user.to_string(),
            started_at: now(),
            ended_at: None,
            exit_code: None,
            end_reason: String::new(),
            recording: name,
        };
        self.store.write(|tx| tx.put_u64(&TERMINALS, id, &record))?;
        lock(&self.terms).sessions.insert(
            id,
            Session {
                record: record.clone(),
                started: Instant::now(),
                file: Some(file),
                backlog: String::new(),
                viewer: None,
                detached_since: Some(Instant::now()),
                alive,
            },
        );
        if tx
            .send(ServerMsg::TermOpen {
                term: id,
                cols,
                rows,
            })
            .await
            .is_err()
        {
            self.end_terminal(id, None, "the agent disconnected");
            return Err(Error::Conflict("the agent disconnected".into()));
        }
        Ok(record)
    }

    /// Attaches a browser; returns the backlog to repaint and the event stream. Only the
    /// user who opened the terminal may attach.
    pub fn attach_terminal(
        &self,
        id: u64,
        user: &str,
    ) -> Result<(u64, String, mpsc::Receiver<TermEvent>)> {
        let mut t = lock(&self.terms);
        t.next_viewer += 1;
        let viewer = t.next_viewer;
        let s = t
            .sessions
            .get_mut(&id)
            .filter(|s| s.record.user == user)
            .ok_or_else(|| Error::NotFound(format!("terminal {id}")))?;
        let (tx, rx) = mpsc::channel(1024);
        s.viewer = Some((viewer, tx));
        s.detached_since = None;
        Ok((viewer, s.backlog.clone(), rx))
    }

    /// True when terminal `id` is live and was opened by `user`.
    pub fn terminal_owned_by(&self, id: u64, user: &str) -> bool {
        lock(&self.terms)
            .sessions
            .get(&id)
            .is_some_and(|s| s.record.user == user)
    }

    /// Marks sessions left open by a crash as ended (live sessions exist only in memory).
    pub fn end_orphan_terminals(&self) -> Result<usize> {
        let t = now();
        self.store.write(|tx| {
            let mut n = 0;
            let open: Vec<(u64, TermRecord)> = tx
                .all_u64_rw::<TermRecord>(&TERMINALS)?
                .into_iter()
                .filter(|(_, r)| r.ended_at.is_none())
                .collect();
            for (id, mut r) in open {
                r.ended_at = Some(t);
                r.end_reason = "the server restarted".into();
                tx.put_u64(&TERMINALS, id, &r)?;
                n += 1;
            }
            Ok::<_, Error>(n)
        })
    }

    /// The browser went away: the shell keeps running for [`REATTACH_GRACE`].
    pub fn detach_terminal(&self, id: u64, viewer: u64) {
        if let Some(s) = lock(&self.terms).sessions.get_mut(&id)
            && s.viewer.as_ref().is_some_and(|(v, _)| *v == viewer)
        {
            s.viewer = None;
            s.detached_since = Some(Instant::now());
        }
    }

    fn term_host(&self, id: u64) -> Option<(u64, f64)> {
        lock(&self.terms)
            .sessions
            .get(&id)
            .map(|s| (s.record.host_id, s.started.elapsed().as_secs_f64()))
    }

    /// Keystrokes from the browser.
    pub async fn terminal_input(&self, id: u64, data: String) {
        if let Some((host, _)) = self.term_host(id)
            && let Some(tx) = self.sender(host)
        {
            let _ = tx.send(ServerMsg::TermInput { term: id, data }).await;
        }
    }

    pub async fn terminal_resize(&self, id: u64, cols: u16, rows: u16) {
        let Some((host, t)) = self.term_host(id) else {
            return;
        };
        if let Some(s) = lock(&self.terms).sessions.get_mut(&id) {
            cast_event(&mut s.file, t, "r", &format!("{cols}x{rows}"));
        }
        if let Some(tx) = self.sender(host) {
            let _ = tx
                .send(ServerMsg::TermResize {
                    term: id,
                    cols,
                    rows,
                })
                .await;
        }
    }

    /// Closes a terminal on request.
    pub async fn close_terminal(&self, id: u64) {
        if let Some((host, _)) = self.term_host(id)
            && let Some(tx) = self.sender(host)
        {
            let _ = tx.send(ServerMsg::TermClose { term: id }).await;
        }
        self.end_terminal(id, None, "closed");
    }

    /// Output from the agent.
    pub(crate) fn terminal_output(&self, host_id: u64, id: u64, data: String) {
        let mut t = lock(&self.terms);
        let Some(s) = t
            .sessions
            .get_mut(&id)
            .filter(|s| s.record.host_id == host_id)
        else {
            return;
        };
        cast_event(&mut s.file, s.started.elapsed().as_secs_f64(), "o", &data);
        s.backlog.push_str(&data);
        if s.backlog.len() > BACKLOG_BYTES {
            let mut cut = s.backlog.len() - BACKLOG_BYTES;
            while !s.backlog.is_char_boundary(cut) {
                cut += 1;
            }
            s.backlog.drain(..cut);
        }
        if let Some((_, v)) = &s.viewer {
            // A browser that cannot keep up loses output rather than stalling the agent.
            let _ = v.try_send(TermEvent::Output { data });
        }
    }

    /// Ends a session: tells the browser, stores the record, closes the recording.
    pub(crate) fn end_terminal(&self, id: u64, code: Option<i32>, reason: &str) {
        let Some(mut s) = lock(&self.terms).sessions.remove(&id) else {
            return;
        };
        if let Some((_, v)) = &s.viewer {
            let _ = v.try_send(TermEvent::Exit {
                code,
                reason: reason.to_string(),
            });
        }
        s.record.ended_at = Some(now());
        s.record.exit_code = code;
        s.record.end_reason = reason.to_string();
        if let Err(e) = self.store.write(|tx| tx.put_u64(&TERMINALS, id, &s.record)) {
            tracing::error!(term = id, error = %e, "Cannot store the end of a terminal session.");
        }
    }

    /// Ends terminals of a host that went away.
    pub(crate) fn host_terminals_lost(&self, host_id: u64) {
        let ids: Vec<u64> = lock(&self.terms)
            .sessions
            .values()
            .filter(|s| s.record.host_id == host_id)
            .map(|s| s.record.id)
            .collect();
        for id in ids {
            self.end_terminal(id, None, "the agent disconnected");
        }
    }

    /// Ends terminals whose browser stayed away past the grace or whose login ended.
    pub(crate) async fn reap_terminals(&self) {
        let doomed: Vec<(u64, &'static str)> = lock(&self.terms)
            .sessions
            .values()
            .filter_map(|s| {
                if !(s.alive)() {
                    Some((s.record.id, "the login session ended"))
                } else if s
                    .detached_since
                    .is_some_and(|d| d.elapsed() > REATTACH_GRACE)
                {
                    Some((s.record.id, "no browser reattached in time"))
                } else {
                    None
                }
            })
            .collect();
        for (id, why) in doomed {
            if let Some((host, _)) = self.term_host(id)
                && let Some(tx) = self.sender(host)
            {
                let _ = tx.send(ServerMsg::TermClose { term: id }).await;
            }
            self.end_terminal(id, None, why);
        }
    }

    /// Terminal sessions, newest first.
    pub fn terminal_records(&self, offset: usize, limit: usize) -> Result<(Vec<TermRecord>, u64)> {
        let total = self.store.read(|tx| tx.len(&TERMINALS))?;
        let v: Vec<(u64, TermRecord)> = self
            .store
            .read(|tx| tx.range_u64(&TERMINALS, .., offset + limit, true))?;
        Ok((v.into_iter().skip(offset).map(|(_, r)| r).collect(), total))
    }

    /// The asciicast file of a terminal session.
    pub fn recording_path(&self, id: u64) -> Result<PathBuf> {
        let rec: TermRecord = self
            .store
            .read(|tx| tx.get_u64(&TERMINALS, id))?
            .ok_or_else(|| Error::NotFound(format!("terminal {id}")))?;
        // The name is ours (term-ID.cast), never a user's; still, refuse anything path-like.
        if rec.recording.contains('/') || rec.recording.contains("..") {
            return Err(Error::NotFound(format!("terminal {id}")));
        }
        Ok(self.recordings_dir().join(Path::new(&rec.recording)))
    }
}

impl Terminals {
    /// True when no terminal is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub(crate) fn new() -> Arc<Mutex<Terminals>> {
        Arc::new(Mutex::new(Terminals::default()))
    }
}
