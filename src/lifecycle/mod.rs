//! The installed life of OMP: the offline bundle (`bundle`), `omp install`/`uninstall`
//! (`install`), service control on systemd or with pidfiles (`service`), `omp upgrade` as
//! a resumable pipeline of named steps with automatic rollback (`steps` decides, `upgrade`
//! acts), the release signature (`sign`) and the binary's version stamp (`stamp`).
//! It runs on the target host as a CLI and talks to a running server only through
//! `GET /healthz`; `fleet` is the exception: the server side of agent fleet upgrades.
//!
//! Layout under the prefix P (default /opt/omp): `bin/omp`, `etc/omp.toml` (unless
//! `--config` elsewhere), `install.json` (what was installed how), `share/` (README,
//! LICENSE, units, SHA256SUMS), `run/*.pid` and `log/*.log` (pidfile mode), `upgrade/`
//! (state.json, upgrade.log, staging), `backup/previous/` (the version before the last
//! upgrade: binary, config, install state, store snapshot).

pub mod bundle;
pub mod checks;
pub mod fleet;
pub mod install;
pub mod progress;
pub mod service;
pub mod sign;
pub mod stamp;
pub mod steps;
pub mod upgrade;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The default installation prefix.
pub const DEFAULT_PREFIX: &str = "/opt/omp";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/omp";

/// Paths of an installation under a prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: PathBuf,
}

impl Layout {
    pub fn new(prefix: &Path) -> Layout {
        Layout {
            prefix: prefix.to_path_buf(),
        }
    }
    pub fn bin(&self) -> PathBuf {
        self.prefix.join("bin/omp")
    }
    pub fn default_config(&self) -> PathBuf {
        self.prefix.join("etc/omp.toml")
    }
    pub fn state_file(&self) -> PathBuf {
        self.prefix.join("install.json")
    }
    pub fn share(&self) -> PathBuf {
        self.prefix.join("share")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.prefix.join("run")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.prefix.join("log")
    }
    pub fn upgrade_dir(&self) -> PathBuf {
        self.prefix.join("upgrade")
    }
    pub fn backup_dir(&self) -> PathBuf {
        self.prefix.join("backup")
    }
    pub fn previous(&self) -> PathBuf {
        self.backup_dir().join("previous")
    }
}

/// How the services are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Systemd,
    /// Daemons started by `omp ctl` with pidfiles under `P/run` and logs under `P/log`.
    Pidfile,
}

/// What `omp install` recorded in `P/install.json`; `ctl`, `upgrade`, `rollback` and
/// `uninstall` read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallState {
    pub version: String,
    pub mode: Mode,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub listen: SocketAddr,
    /// The account the server runs as; None: the installing user.
    pub user: Option<String>,
    pub installed_at: i64,
}

impl InstallState {
    pub fn load(layout: &Layout) -> anyhow::Result<InstallState> {
        let path = layout.state_file();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no OMP installation under {} ({} is missing): pass the --prefix used at install time",
                layout.prefix.display(),
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged: run omp install again with the same options to repair it",
                path.display()
            )
        })
    }

    pub fn save(&self, layout: &Layout) -> anyhow::Result<()> {
        write_atomic(
            &layout.state_file(),
            serde_json::to_string_pretty(self)?.as_bytes(),
            0o644,
        )
    }

    /// The address health checks use: loopback when listening on every address.
    pub fn health_addr(&self) -> SocketAddr {
        let mut a = self.listen;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        a
    }
}

/// Writes a file through a temporary sibling and a rename, so readers see the old or the
/// new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".omp-new")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Copies a file atomically (temp sibling + rename), keeping `mode`.
pub fn copy_atomic(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".omp-new")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::fs::copy(from, tmp.path())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    std::fs::File::open(tmp.path())?.sync_all()?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    tmp.persist(to)
        .with_context(|| format!("cannot replace {}", to.display()))?;
    Ok(())
}

/// Copies a directory tree (files, dirs, symlinks), preserving modes and owners.
pub fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let meta = std::fs::symlink_metadata(from)
        .with_context(|| format!("cannot read {}", from.display()))?;
    if meta.is_dir() {
        std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            bytes += copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        std::fs::set_permissions(to, meta.permissions())?;
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(target, to)?;
        return Ok(0);
    } else {
        bytes += std::fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    let _ = std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()));
    Ok(bytes)
}

/// Bytes used by a file or a directory tree (0 when missing).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The uid and gid of a local account, from /etc/passwd.
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// True when running as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
