//! The configuration file `omp.toml`: every key has a default, unknown keys are rejected
//! with the key named, and `OMP_SECTION__KEY` environment variables override file values.
//! It only parses and validates; it does not open files other than the one it is given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration. See `packaging/omp.example.toml` for the commented version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub agent: AgentConfig,
    pub exec: ExecConfig,
    pub files: FilesConfig,
    pub tsdb: TsdbConfig,
    pub log: LogConfig,
    /// Scrape targets declared in the file (`[[scrape]]`), read-only in the UI.
    pub scrape: Vec<crate::scrape::Target>,
    /// Endpoints every accepted sample is also sent to (`[[remote_write]]`).
    pub remote_write: Vec<crate::remote_write::RemoteConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the web UI and API listen on.
    pub listen: SocketAddr,
    /// Where the store and every other file of the server live.
    pub data_dir: PathBuf,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Mark the session cookie `Secure`. Set it when OMP is reached over HTTPS through a
    /// reverse proxy; it is always set when OMP terminates TLS itself.
    pub secure_cookies: bool,
    /// Start the embedded agent for the server's own host.
    pub local_agent: bool,
    /// `https://HOST:PORT` agents use to reach this server (shown in enrollment commands);
    /// by default taken from the address the browser used.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Seconds between agent heartbeats; a host is offline after three missed ones.
    pub heartbeat_secs: u64,
    /// Seconds between host metric collections on every agent (0 turns them off).
    pub metrics_secs: u64,
    /// The agent binary handed to agents (install downloads and fleet upgrades); None:
    /// this server's own executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    /// Days of samples kept.
    pub retention_days: u64,
    /// Most series held; new series beyond it are refused (and counted).
    pub max_series: usize,
    /// Most samples one query may touch.
    pub max_samples_per_query: usize,
    /// The write-ahead log is rewritten as a checkpoint past this many MiB.
    pub checkpoint_mib: u64,
    /// Disk budget of the segment ring in MiB: the oldest segments are deleted past it.
    pub max_disk_mib: u64,
    /// Size of one segment file in MiB (the unit the ring deletes).
    pub segment_mib: u64,
    /// Seconds between maintenance passes: closed chunks move to the segment ring, quiet
    /// series leave memory, retention runs.
    pub flush_secs: u64,
}

impl TsdbConfig {
    /// The store's options from these settings.
    pub fn options(&self) -> crate::tsdb::db::TsdbOptions {
        crate::tsdb::db::TsdbOptions {
            max_series: self.max_series,
            retention_ms: self.retention_days as i64 * 86_400_000,
            checkpoint_bytes: self.checkpoint_mib << 20,
            segment_bytes: self.segment_mib << 20,
            max_disk_bytes: self.max_disk_mib << 20,
            ..Default::default()
        }
    }
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            retention_days: 15,
            max_series: 1_000_000,
            max_samples_per_query: 50_000_000,
            checkpoint_mib: 128,
            max_disk_mib: 10_240,
            segment_mib: 64,
            flush_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Finished remote-execution jobs kept (with their outputs, 64 KiB per host and stream).
    pub history_jobs: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            heartbeat_secs: 10,
            metrics_secs: 15,
            binary: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Largest file uploaded to or downloaded from a host, in bytes.
    pub max_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig { history_jobs: 1000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A session ends this many hours after login, used or not.
    pub session_absolute_hours: u64,
    /// Failed logins for one username before it is locked for a while.
    pub max_failures_per_user: u32,
    /// Failed logins from one source address before it is locked for a while.
    pub max_failures_per_source: u32,
    /// First lockout in seconds; it doubles with each further failure, up to 15 minutes.
    pub lockout_seconds: u64,
    /// Minimum password length.
    pub min_password_length: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Largest number of records one export returns.
    pub max_export_records: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter, e.g. `info` or `omp=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 19001)),
            data_dir: PathBuf::from("omp-data"),
            max_body_bytes: 2 * 1024 * 1024,
            secure_cookies: false,
            local_agent: true,
            public_url: None,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            max_failures_per_user: 5,
            max_failures_per_source: 20,
            lockout_seconds: 30,
            min_password_length: 10,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_export_records: 1_000_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// A configuration problem, naming the file, key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "environment variable {var}: {message} (OMP_SECTION__KEY, e.g. OMP_SERVER__LISTEN=0.0.0.0:19001)"
    )]
    Env { var: String, message: String },
    #[error("config: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Reads `path` (or only defaults when `None`) and applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let label = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| "(defaults)".into());
        Self::from_parts(&label, &text, std::env::vars())
    }

    /// Parses `text` and applies the `OMP_*` overrides in `env`: the testable core of [`load`].
    pub fn from_parts(
        label: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: label.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut env: Vec<_> = env
            .into_iter()
            // Only OMP_SECTION__KEY-shaped variables are overrides; other OMP_* variables
            // belong to tools and tests around OMP.
            .filter(|(k, _)| k.starts_with("OMP_") && k.contains("__"))
            .collect();
        env.sort();
        for (var, value) in &env {
            apply_env(&mut doc, var, value)?;
        }
        let cfg: Config = Config::deserialize(toml::Value::Table(doc)).map_err(|e| {
            if env.is_empty() {
                ConfigError::Parse {
                    path: label.to_path_buf(),
                    message: e.to_string(),
                }
            } else {
                ConfigError::Parse {
                    path: label.to_path_buf(),
                    message: format!("{e} (after OMP_* environment overrides)"),
                }
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.auth.session_idle_minutes == 0 {
            return bad("auth.session_idle_minutes", "must be at least 1");
        }
        if self.auth.session_absolute_hours == 0 {
            return bad("auth.session_absolute_hours", "must be at least 1");
        }
        if self.auth.min_password_length < 8 {
            return bad("auth.min_password_length", "must be at least 8");
        }
        if self.auth.max_failures_per_user == 0 || self.auth.max_failures_per_source == 0 {
            return bad("auth.max_failures_per_*", "must be at least 1");
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024");
        }
        if !(1..=3600).contains(&self.agent.heartbeat_secs) {
            return bad("agent.heartbeat_secs", "must be between 1 and 3600");
        }
        if self.agent.metrics_secs > 3600 {
            return bad("agent.metrics_secs", "must be between 0 (off) and 3600");
        }
        if self.tsdb.retention_days == 0
            || self.tsdb.max_series == 0
            || self.tsdb.max_samples_per_query == 0
        {
            return bad(
                "tsdb",
                "retention_days, max_series and max_samples_per_query must be at least 1",
            );
        }
        if !(1..=1024).contains(&self.tsdb.segment_mib)
            || self.tsdb.max_disk_mib < 2 * self.tsdb.segment_mib
        {
            return bad(
                "tsdb.segment_mib",
                "segment_mib is 1..1024 and max_disk_mib at least two segments",
            );
        }
        if !(1..=3600).contains(&self.tsdb.flush_secs) {
            return bad("tsdb.flush_secs", "must be 1..3600");
        }
        if self.exec.history_jobs == 0 {
            return bad("exec.history_jobs", "must be at least 1");
        }
        if let Some(u) = &self.server.public_url
            && !u.starts_with("https://")
        {
            return bad(
                "server.public_url",
                "must start with https:// (agents always use TLS)",
            );
        }
        for t in &self.scrape {
            if let Err(e) = t.validate() {
                return Err(ConfigError::Invalid {
                    key: "scrape",
                    message: format!("target {}: {e}", t.target),
                });
            }
        }
        for r in &self.remote_write {
            if let Err(message) = r.validate() {
                return Err(ConfigError::Invalid {
                    key: "remote_write",
                    message,
                });
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad("log.format", "must be \"text\" or \"json\"");
        }
        Ok(())
    }
}

/// Applies `OMP_SECTION__KEY=value`: the value is read as a TOML value when it parses as
/// one (numbers, booleans) and as a string otherwise.
fn apply_env(doc: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Env {
        var: var.to_string(),
        message,
    };
    let path = var["OMP_".len()..].to_ascii_lowercase();
    let Some((section, key)) = path.split_once("__") else {
        return Err(err(
            "not a config override: expected OMP_SECTION__KEY".into()
        ));
    };
    if section.is_empty() || key.is_empty() || key.contains("__") {
        return Err(err("expected exactly one section and one key".into()));
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let entry = doc
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => {
            t.insert(key.to_string(), parsed);
            Ok(())
        }
        _ => Err(err(format!("[{section}] is not a section"))),
    }
}

/// The commented example configuration shipped in the repository and the tarball.
pub const EXAMPLE: &str = include_str!("../packaging/omp.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_parts(
            Path::new("omp.toml"),
            text,
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn example_config_parses_to_defaults() {
        assert_eq!(parse(EXAMPLE, &[]).unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_problem() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "[server]\nlisten_port = 1\n",
                &[],
                "unknown field `listen_port`",
            ),
            ("[srv]\n", &[], "unknown field `srv`"),
            (
                "[server]\nlisten = \"nope\"\n",
                &[],
                "invalid socket address",
            ),
            (
                "[auth]\nmin_password_length = 4\n",
                &[],
                "auth.min_password_length",
            ),
            ("server = 1\n", &[], "invalid type"),
            ("[server\n", &[], "omp.toml"),
            ("", &[("OMP_SERVER__NOPE", "1")], "unknown field `nope`"),
            ("", &[("OMP_SERVER__", "1")], "OMP_SERVER__"),
            (
                "[[scrape]]\njob = \"n\"\ntarget = \"-x:1\"\n",
                &[],
                "scrape",
            ),
            (
                "[[scrape]]\njob = \"n\"\ntarget = \"a:1\"\nintervall = 5\n",
                &[],
                "unknown field `intervall`",
            ),
            ("", &[("OMP_SERVER__LISTEN__X", "1")], "exactly one section"),
        ];
        for (text, env, want) in cases {
            let err = parse(text, env).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?} {env:?}: {err}");
        }
    }

    #[test]
    fn env_overrides_file() {
        let cfg = parse(
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("OMP_SERVER__LISTEN", "0.0.0.0:2"),
                ("OMP_AUTH__SESSION_IDLE_MINUTES", "5"),
                ("OMP_LOG__LEVEL", "debug"),
                ("OMP_ADMIN_PASSWORD", "not-a-config-key"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:2");
        assert_eq!(cfg.auth.session_idle_minutes, 5);
        assert_eq!(cfg.log.level, "debug");
    }
}
