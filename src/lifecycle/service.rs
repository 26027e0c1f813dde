//! Running the installed services: systemd units (`omp.service`, `omp-agent.service`)
//! or, under `--no-systemd`, daemons with pidfiles in `P/run` and logs in `P/log`; and the
//! health wait on `GET /healthz`. Commands run as argv vectors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{InstallState, Layout, Mode};

/// A service of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Svc {
    Server,
    Agent,
}

impl Svc {
    pub fn unit(self) -> &'static str {
        match self {
            Svc::Server => "omp.service",
            Svc::Agent => "omp-agent.service",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Svc::Server => "omp",
            Svc::Agent => "omp-agent",
        }
    }
    pub fn pidfile(self, l: &Layout) -> PathBuf {
        l.run_dir().join(format!("{}.pid", self.name()))
    }
    pub fn log(self, l: &Layout) -> PathBuf {
        l.log_dir().join(format!("{}.log", self.name()))
    }
}

/// What `status` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running(Option<u32>),
    Stopped,
    /// This service is not installed here (the agent on a server host: the server's
    /// embedded agent covers the host).
    NotInstalled,
}

/// Runs `systemctl ARGS`; returns its output.
pub fn systemctl(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("systemctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run systemctl")
}

fn systemctl_ok(args: &[&str]) -> anyhow::Result<()> {
    let out = systemctl(args)?;
    if !out.status.success() {
        bail!(
            "systemctl {} failed: {} (see journalctl -u {})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            args.last().unwrap_or(&"omp")
        );
    }
    Ok(())
}

fn unit_installed(svc: Svc) -> bool {
    Path::new("/etc/systemd/system").join(svc.unit()).exists()
}

pub fn status(l: &Layout, st: &InstallState, svc: Svc) -> anyhow::Result<Status> {
    match st.mode {
        Mode::Systemd => {
            if !unit_installed(svc) {
                return Ok(Status::NotInstalled);
            }
            let out = systemctl(&["is-active", svc.unit()])?;
            Ok(if out.status.success() {
                Status::Running(None)
            } else {
                Status::Stopped
            })
        }
        Mode::Pidfile => {
            if svc == Svc::Agent && !svc.pidfile(l).exists() {
                return Ok(Status::NotInstalled);
            }
            Ok(match running_pid(l, svc) {
                Some(pid) => Status::Running(Some(pid)),
                None => Status::Stopped,
            })
        }
    }
}

/// The pid in the service's pidfile when that process is alive and is an omp process
/// (a reused pid of another program is not ours).
pub fn running_pid(l: &Layout, svc: Svc) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(svc.pidfile(l))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive_omp(pid).then_some(pid)
}

fn alive_omp(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // A zombie (state Z, after the name in parentheses) has exited already.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(argv0).ends_with("/omp")
}

pub fn start(l: &Layout, st: &InstallState, svc: Svc) -> anyhow::Result<()> {
    match st.mode {
        Mode::Systemd => systemctl_ok(&["start", svc.unit()]),
        Mode::Pidfile => {
            if svc == Svc::Agent {
                bail!(
                    "no agent service under {}: on the server host the server's embedded agent covers the host; other hosts get theirs from Hosts → Add host",
                    l.prefix.display()
                );
            }
            if running_pid(l, svc).is_some() {
                return Ok(());
            }
            spawn_server(l, st)
        }
    }
}

fn spawn_server(l: &Layout, st: &InstallState) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(l.run_dir())?;
    std::fs::create_dir_all(l.log_dir())?;
    let log_path = Svc::Server.log(l);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open the log {}", log_path.display()))?;
    let mut cmd = Command::new(l.bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(&st.config)
        .arg("--data-dir")
        .arg(&st.data_dir)
        .current_dir(&l.prefix)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C at the installer's terminal does not reach it.
        .process_group(0);
    if let Some(user) = &st.user
        && super::is_root()
    {
        let (uid, gid) = super::lookup_user(user).with_context(|| {
            format!("the service user {user} does not exist: run omp install again")
        })?;
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", l.bin().display()))?;
    super::write_atomic(
        &Svc::Server.pidfile(l),
        format!("{}\n", child.id()).as_bytes(),
        0o644,
    )?;
    // Reap it if it exits while this process lives (a zombie would look alive).
    std::thread::spawn(move || child.wait());
    Ok(())
}

pub fn stop(l: &Layout, st: &InstallState, svc: Svc) -> anyhow::Result<()> {
    match st.mode {
        Mode::Systemd => {
            if unit_installed(svc) {
                systemctl_ok(&["stop", svc.unit()])?;
            }
            Ok(())
        }
        Mode::Pidfile => {
            let Some(pid) = running_pid(l, svc) else {
                let _ = std::fs::remove_file(svc.pidfile(l));
                return Ok(());
            };
            let p = rustix::process::Pid::from_raw(pid as i32).context("bad pid")?;
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
            // The server finishes in-flight requests on SIGTERM; 30 s as in the unit.
            let deadline = Instant::now() + Duration::from_secs(30);
            while alive_omp(pid) {
                if Instant::now() > deadline {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive_omp(pid) {
                bail!("process {pid} did not stop: stop it by hand (kill {pid})");
            }
            let _ = std::fs::remove_file(svc.pidfile(l));
            Ok(())
        }
    }
}

/// Waits until `/healthz` answers 200 from `expect_version` (when given). Fails early when
/// a pidfile daemon died, with the end of its log.
pub fn wait_healthy(
    l: &Layout,
    st: &InstallState,
    expect_version: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let url = format!("http://{}/healthz", st.health_addr());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut last: String;
    loop {
        match agent.get(&url).call() {
            Ok(r) if r.status() == 200 => {
                let v = r
                    .headers()
                    .get("x-omp-version")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                match expect_version {
                    Some(want) if v != want => {
                        last = format!("{url} answered from version {v:?}, not {want}")
                    }
                    _ => return Ok(started.elapsed()),
                }
            }
            Ok(r) => last = format!("{url} answered {}", r.status()),
            Err(e) => last = format!("{url}: {e}"),
        }
        if st.mode == Mode::Pidfile && running_pid(l, Svc::Server).is_none() {
            bail!(
                "the server exited instead of becoming healthy; the end of {}:\n{}",
                Svc::Server.log(l).display(),
                log_tail(&Svc::Server.log(l), 12)
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "the server did not become healthy within {} s ({last}); see {}",
                timeout.as_secs(),
                match st.mode {
                    Mode::Systemd => "journalctl -u omp".to_string(),
                    Mode::Pidfile => Svc::Server.log(l).display().to_string(),
                }
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
