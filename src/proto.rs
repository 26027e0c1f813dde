//! The agent ↔ server protocol: versioned JSON messages over one WebSocket (TLS, pinned),
//! the enrollment token format, and the version-compatibility rule. Sans-IO: only types,
//! encoding and decisions; `agent` and `api` move the bytes.
//!
//! Enrollment token: `OMP1.<pin>.<secret>` where `pin` is the lowercase hex SHA-256 of the
//! server's TLS certificate (DER) and `secret` a random hex string. The agent needs nothing
//! else to refuse a server with another key (as k3s tokens carry the CA hash).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Protocol revision; bumped on incompatible changes of the message set.
pub const PROTOCOL: u32 = 1;

/// The first message of every agent connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentHello {
    /// First contact: trade a one-time enrollment token for a host id and credential.
    Enroll {
        version: String,
        protocol: u32,
        token_secret: String,
        inventory: Inventory,
    },
    /// Every later connection.
    Hello {
        version: String,
        protocol: u32,
        host_id: u64,
        credential: String,
        inventory: Inventory,
    },
}

fn default_metrics_secs() -> u64 {
    15
}

/// What the server answers to [`AgentHello`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Welcome {
    /// Enrollment accepted: keep `credential` (the server stores only its hash).
    Enrolled {
        host_id: u64,
        credential: String,
        heartbeat_secs: u64,
        server_version: String,
        #[serde(default = "default_metrics_secs")]
        metrics_secs: u64,
    },
    /// Connection accepted.
    Welcome {
        host_id: u64,
        heartbeat_secs: u64,
        server_version: String,
        /// Seconds between host metric collections; 0 turns them off. Absent (older
        /// servers): 15.
        #[serde(default = "default_metrics_secs")]
        metrics_secs: u64,
    },
    /// Refused; `retry` false means retrying cannot help (bad token, revoked host,
    /// incompatible version).
    Refused { reason: String, retry: bool },
}

/// Messages from the agent after the handshake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMsg {
    Heartbeat {
        uptime_secs: u64,
    },
    Inventory {
        inventory: Inventory,
    },
    ExecStarted {
        job: u64,
    },
    ExecOutput {
        job: u64,
        stream: Stream,
        data: String,
    },
    ExecDone(ExecDone),
    /// Output of an interactive terminal.
    TermOutput {
        term: u64,
        data: String,
    },
    /// The terminal's shell ended (or could not start: `error`).
    TermExit {
        term: u64,
        code: Option<i32>,
        error: Option<String>,
    },
    /// Host metrics collected at `t` (milliseconds), node_exporter names.
    Metrics {
        t: i64,
        samples: Vec<MetricSample>,
    },
    /// A chunk of a file being downloaded from the host (base64).
    FileData {
        xfer: u64,
        data: String,
    },
    /// A file transfer ended: `error` is None on success.
    FileDone {
        xfer: u64,
        error: Option<String>,
        size: u64,
        sha256: String,
    },
    /// The answer to `ServerMsg::Request { req, .. }`.
    Reply {
        req: u64,
        reply: AgentReply,
    },
    /// Progress of a self-upgrade: `ok` false when it was abandoned (download, checksum,
    /// the new binary does not run); `ok` true just before re-executing the new binary.
    UpgradeStatus {
        upgrade: u64,
        ok: bool,
        message: String,
    },
}

/// Request/reply exchanges (`ServerMsg::Request` → `AgentMsg::Reply`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentRequest {
    /// Fetch a metrics endpoint from the agent's host (exporters bound to its loopback).
    Scrape(ScrapeRequest),
    /// The top processes by `sort` ("cpu" or "memory"), at most `limit`.
    Processes { sort: String, limit: u32 },
}

/// What the agent fetches for an agent-side scrape target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScrapeRequest {
    /// `http://` or `https://` URL (validated by the server, checked again by the agent).
    pub url: String,
    pub timeout_secs: u64,
    /// The full `Authorization` header value, if the target has credentials.
    pub authorization: Option<String>,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentReply {
    /// The body and Content-Type of a successful scrape.
    Scraped {
        body: String,
        content_type: Option<String>,
    },
    Processes(ProcessList),
    /// The request failed on the agent; `message` says why.
    Failed {
        message: String,
    },
}

/// A snapshot of the host's busiest processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessList {
    /// When the snapshot was taken (seconds since the epoch, agent clock).
    pub collected_at: i64,
    /// Processes on the host (before `limit`).
    pub total: u32,
    pub items: Vec<ProcessInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub user: String,
    pub name: String,
    pub cmdline: String,
    /// One letter as in ps: R, S, D, Z, T, I...
    pub state: String,
    /// Share of one CPU over the sampling interval (may exceed 100 with threads).
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub mem_percent: f64,
    pub threads: u32,
    /// Start time, seconds since the epoch.
    pub started_at: Option<i64>,
}

/// Messages from the server after the handshake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Exec(ExecRequest),
    Cancel {
        job: u64,
    },
    /// Open an interactive shell on a PTY of `cols` × `rows`.
    TermOpen {
        term: u64,
        cols: u16,
        rows: u16,
    },
    TermInput {
        term: u64,
        data: String,
    },
    TermResize {
        term: u64,
        cols: u16,
        rows: u16,
    },
    TermClose {
        term: u64,
    },
    /// Start writing a file: chunks follow, then `FilePutEnd`.
    FilePut(FilePut),
    FileChunk {
        xfer: u64,
        data: String,
    },
    FilePutEnd {
        xfer: u64,
    },
    /// Send a file back in `FileData` chunks, refusing files over `max_bytes`.
    FileGet {
        xfer: u64,
        path: String,
        max_bytes: u64,
    },
    /// A question the agent answers once with `AgentMsg::Reply { req, .. }`. An agent that
    /// does not know the request (older version) ignores it and the server times out.
    Request {
        req: u64,
        request: AgentRequest,
    },
    /// The host was deleted: the agent stops and forgets its credential.
    Revoked {
        reason: String,
    },
    /// Replace the agent binary with the server's agent binary and restart.
    Upgrade(UpgradeRequest),
}

/// A self-upgrade order: the agent downloads the binary from
/// `GET /api/agent/v1/upgrade-binary` with `Authorization: Upgrade <ticket>` (one-time),
/// checks size and SHA-256, keeps its previous binary and re-executes; if the new one
/// cannot reconnect within `confirm_secs` it puts the previous one back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpgradeRequest {
    pub upgrade: u64,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub ticket: String,
    pub confirm_secs: u64,
}

/// One metric sample from an agent (the server adds `instance` and `job`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricSample {
    pub name: String,
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Where and how to write an uploaded file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilePut {
    pub xfer: u64,
    /// Absolute path without `..`.
    pub path: String,
    /// Octal permission bits, e.g. 0o644.
    pub mode: u32,
    /// `user[:group]` (names or numbers); None keeps the agent's own.
    pub owner: Option<String>,
    pub size: u64,
    /// Hex SHA-256 the written bytes must have.
    pub sha256: String,
}

/// A path an agent may read or write: absolute, no `..`, no NUL, not the root itself.
pub fn check_remote_path(path: &str) -> Result<(), String> {
    let p = std::path::Path::new(path);
    if !p.is_absolute() || path.len() > 4096 || path.contains('\0') {
        return Err(format!(
            "the path must be absolute (start with /): {path:?}"
        ));
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("the path must not contain ..: {path:?}"));
    }
    if p.file_name().is_none() {
        return Err(format!("the path must name a file: {path:?}"));
    }
    Ok(())
}

/// Run one command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecRequest {
    pub job: u64,
    /// The program and its arguments; never joined into a shell string.
    pub argv: Vec<String>,
    pub timeout_secs: u64,
    /// Most output bytes per stream the agent sends; the rest is counted, not sent.
    pub max_output_bytes: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecDone {
    pub job: u64,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// `ok`, `failed` (non-zero exit), `timeout`, `cancelled` or `error` (could not start).
    pub outcome: String,
    pub error: Option<String>,
    /// Output bytes not sent because of `max_output_bytes`.
    pub dropped_bytes: u64,
}

/// A host's inventory as the agent reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Inventory {
    pub hostname: String,
    pub machine_id: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub disks: Vec<Disk>,
    pub ips: Vec<String>,
    pub uptime_secs: u64,
    pub extra: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Disk {
    pub mount: String,
    pub fs: String,
    pub size_bytes: u64,
    pub avail_bytes: u64,
}

/// A parsed enrollment token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollToken {
    /// Hex SHA-256 of the server certificate (DER).
    pub pin: String,
    pub secret: String,
}

impl EnrollToken {
    pub fn encode(&self) -> String {
        format!("OMP1.{}.{}", self.pin, self.secret)
    }

    pub fn parse(s: &str) -> Result<EnrollToken, String> {
        let mut parts = s.trim().split('.');
        let (Some("OMP1"), Some(pin), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not an OMP enrollment token (expected OMP1.<pin>.<secret>): copy it again from the UI".into());
        };
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        if pin.len() != 64 || !hex(pin) {
            return Err(
                "the enrollment token's server pin is damaged: copy it again from the UI".into(),
            );
        }
        if secret.len() < 32 || !hex(secret) {
            return Err(
                "the enrollment token's secret is damaged: copy it again from the UI".into(),
            );
        }
        Ok(EnrollToken {
            pin: pin.into(),
            secret: secret.into(),
        })
    }
}

/// `major.minor` of a version string like `1.4.2`.
fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut it = v.split(['.', '-', '+']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// A server accepts agents of the same major version at most one minor version apart, so a
/// fleet can be upgraded gradually; the protocol revision must match exactly.
pub fn compatible(server: &str, agent: &str, agent_protocol: u32) -> Result<(), String> {
    if agent_protocol != PROTOCOL {
        return Err(format!(
            "agent speaks protocol {agent_protocol}, server speaks {PROTOCOL}: upgrade the agent"
        ));
    }
    match (major_minor(server), major_minor(agent)) {
        (Some((sm, sn)), Some((am, an))) if sm == am && sn.abs_diff(an) <= 1 => Ok(()),
        _ => Err(format!(
            "agent version {agent} is not compatible with server {server} (same major, at most one minor apart): upgrade the agent"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility() {
        let cases = [
            ("1.4.0", "1.4.9", true),
            ("1.4.0", "1.3.0", true),
            ("1.4.0", "1.5.2", true),
            ("1.4.0", "1.2.0", false),
            ("1.4.0", "2.4.0", false),
            ("0.1.0", "0.1.0-rc1", true),
            ("1.4.0", "garbage", false),
        ];
        for (s, a, ok) in cases {
            assert_eq!(compatible(s, a, PROTOCOL).is_ok(), ok, "{s} vs {a}");
        }
        assert!(compatible("1.0.0", "1.0.0", PROTOCOL + 1).is_err());
    }

    #[test]
    fn enroll_token_round_trip_and_damage() {
        let t = EnrollToken {
            pin: "a".repeat(64),
            secret: "b".repeat(40),
        };
        assert_eq!(EnrollToken::parse(&t.encode()).unwrap(), t);
        for bad in [
            "",
            "OMP2.x.y",
            &format!("OMP1.{}.short", "a".repeat(64)),
            &format!("OMP1.{}.{}", "A".repeat(64), "b".repeat(40)),
            &format!("OMP1.{}.{}.z", "a".repeat(64), "b".repeat(40)),
        ] {
            assert!(EnrollToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_paths() {
        for ok in ["/etc/hosts", "/tmp/a b", "/x/.hidden"] {
            assert!(check_remote_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "etc/hosts",
            "/tmp/../etc/shadow",
            "/",
            "",
            "-rf",
            "/a/..",
            "/a\0b",
        ] {
            assert!(check_remote_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_are_tagged_json() {
        let m = AgentMsg::ExecOutput {
            job: 3,
            stream: Stream::Stderr,
            data: "x".into(),
        };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(
            s,
            r#"{"type":"exec_output","job":3,"stream":"stderr","data":"x"}"#
        );
        assert_eq!(serde_json::from_str::<AgentMsg>(&s).unwrap(), m);
        let w: Welcome =
            serde_json::from_str(r#"{"type":"refused","reason":"r","retry":false}"#).unwrap();
        assert_eq!(
            w,
            Welcome::Refused {
                reason: "r".into(),
                retry: false
            }
        );
    }
}
