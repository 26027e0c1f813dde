//! Pre-checks of install and upgrade. [`gather`] reads the facts of this host (OS, arch,
//! rights, systemd, ports, free space, writable directories) without changing anything;
//! [`problems`] turns facts into messages that each say what to do. Everything is checked
//! before the first change, and all problems are reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What the checks need to know about the host and the request.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub os: String,
    pub arch: String,
    pub is_root: bool,
    /// systemd is the running init (`/run/systemd/system` exists).
    pub systemd_running: bool,
    pub want_systemd: bool,
    pub user_given: bool,
    /// Address to listen on; `port_error` is what binding it said (None: free, or in use
    /// by this very installation's server).
    pub listen: Option<SocketAddr>,
    pub port_error: Option<String>,
    /// (directory, why it cannot be written) for the prefix and the data dir.
    pub unwritable: Vec<(PathBuf, String)>,
    pub free_bytes: u64,
    pub need_bytes: u64,
    pub free_path: PathBuf,
}

/// Every reason the operation cannot go ahead; empty means go.
pub fn problems(f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    if f.os != "linux" {
        out.push(format!(
            "this host runs {}; OMP installs on Linux only",
            f.os
        ));
    }
    if f.arch != "x86_64" {
        out.push(format!(
            "this host is {}; this tarball is for x86_64: use the tarball for your architecture",
            f.arch
        ));
    }
    if !f.is_root && f.want_systemd {
        out.push(
            "installing systemd services needs root: run it with sudo, or add --no-systemd to run OMP as your own user under a --prefix and --data-dir you can write".into(),
        );
    }
    if !f.is_root && f.user_given {
        out.push("--user needs root (to create the account and hand it the data dir): run with sudo, or leave out --user".into());
    }
    if f.want_systemd && !f.systemd_running {
        out.push("systemd is not running on this host: add --no-systemd to run OMP as a daemon with a pidfile".into());
    }
    if let (Some(addr), Some(e)) = (f.listen, &f.port_error) {
        out.push(format!(
            "cannot listen on {addr} ({e}): stop what uses the port or choose another with --listen"
        ));
    }
    for (dir, why) in &f.unwritable {
        out.push(format!(
            "cannot write to {} ({why}): choose another directory, or fix its permissions{}",
            dir.display(),
            if f.is_root { "" } else { " (or run as root)" }
        ));
    }
    if f.free_bytes < f.need_bytes {
        out.push(format!(
            "not enough disk space at {}: {} MiB free, {} MiB needed: free some space or choose another location",
            f.free_path.display(),
            f.free_bytes >> 20,
            f.need_bytes.div_ceil(1 << 20)
        ));
    }
    out
}

/// The nearest existing ancestor of a path (the directory a new one would be created in).
pub fn existing_ancestor(p: &Path) -> PathBuf {
    let mut at = p.to_path_buf();
    while !at.exists() {
        match at.parent() {
            Some(parent) if parent != at => at = parent.to_path_buf(),
            _ => break,
        }
    }
    at
}

/// Why `dir` (or the directory it would be created in) cannot be written, if so. Probes
/// with a temporary file that is removed at once.
pub fn unwritable(dir: &Path) -> Option<String> {
    let at = existing_ancestor(dir);
    if !at.is_dir() {
        return Some(format!("{} exists and is not a directory", at.display()));
    }
    match tempfile::Builder::new()
        .prefix(".omp-probe")
        .tempfile_in(&at)
    {
        Ok(_) => None,
        Err(e) => Some(format!("{}: {e}", at.display())),
    }
}

/// Free bytes on the file system holding `p` (or the nearest existing ancestor).
pub fn free_bytes(p: &Path) -> u64 {
    match rustix::fs::statvfs(existing_ancestor(p)) {
        Ok(s) => s.f_bavail.saturating_mul(s.f_frsize),
        Err(_) => 0,
    }
}

/// The space required: `computed`, unless `OMP_INSTALL_MIN_FREE_MIB` overrides it (tests
/// use it to simulate a full disk; operators can lower a too-cautious estimate).
pub fn need_bytes(computed: u64) -> u64 {
    std::env::var("OMP_INSTALL_MIN_FREE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|m| m << 20)
        .unwrap_or(computed)
}

/// Host facts common to install and upgrade.
pub fn host_facts() -> Facts {
    Facts {
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        is_root: super::is_root(),
        systemd_running: Path::new("/run/systemd/system").is_dir(),
        ..Facts::default()
    }
}

/// Whether `addr` can be bound now.
pub fn port_error(addr: SocketAddr) -> Option<String> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Some("the port is in use".into()),
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_facts() -> Facts {
        Facts {
            os: "linux".into(),
            arch: "x86_64".into(),
            is_root: true,
            systemd_running: true,
            want_systemd: true,
            listen: Some("127.0.0.1:19001".parse().unwrap()),
            free_bytes: 1 << 30,
            need_bytes: 1 << 20,
            free_path: "/opt".into(),
            ..Facts::default()
        }
    }

    #[test]
    fn each_fact_gives_its_advice() {
        assert!(problems(&ok_facts()).is_empty());
        type Edit = fn(&mut Facts);
        let cases: &[(Edit, &str)] = &[
            (|f| f.os = "freebsd".into(), "Linux only"),
            (|f| f.arch = "aarch64".into(), "for your architecture"),
            (|f| f.is_root = false, "--no-systemd"),
            (
                |f| {
                    f.is_root = false;
                    f.want_systemd = false;
                    f.user_given = true
                },
                "--user needs root",
            ),
            (|f| f.systemd_running = false, "add --no-systemd"),
            (
                |f| f.port_error = Some("the port is in use".into()),
                "choose another with --listen",
            ),
            (
                |f| f.unwritable = vec![("/ro".into(), "read-only".into())],
                "fix its permissions",
            ),
            (|f| f.free_bytes = 10, "not enough disk space"),
        ];
        for (edit, needle) in cases {
            let mut f = ok_facts();
            edit(&mut f);
            let p = problems(&f);
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].contains(needle), "{} should mention {needle}", p[0]);
        }
        // Non-root without systemd in directories it owns is fine.
        let mut f = ok_facts();
        f.is_root = false;
        f.want_systemd = false;
        assert!(problems(&f).is_empty());
    }

    #[test]
    fn probes_directories() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(unwritable(&d.path().join("a/b/c")), None);
        let file = d.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(
            unwritable(&file.join("sub"))
                .unwrap()
                .contains("not a directory")
        );
        assert_eq!(existing_ancestor(&d.path().join("x/y")), d.path());
        assert!(free_bytes(d.path()) > 0);
    }
}
