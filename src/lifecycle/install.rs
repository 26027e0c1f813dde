//! `omp install`, `omp uninstall` and `omp ctl`. Install runs from the unpacked tarball:
//! it checks the bundle and the host first (nothing changes before every check passed),
//! then creates the account and directories, copies the binary, writes the config and
//! `install.json`, installs and starts the service, and waits for `/healthz`. Running it
//! again repairs an installation in place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::bundle::Bundle;
use super::progress::Progress;
use super::service::{self, Status, Svc};
use super::{InstallState, Layout, Mode, checks};

/// How long install waits for the first `/healthz`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub prefix: PathBuf,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub user: Option<String>,
    pub config: Option<PathBuf>,
    pub no_systemd: bool,
    pub yes: bool,
    pub trust_key: Option<PathBuf>,
}

pub fn install(o: &InstallOptions) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    for (name, p) in [("--prefix", &o.prefix), ("--data-dir", &o.data_dir)] {
        if !p.is_absolute() {
            bail!("{name} must be an absolute path: {}", p.display());
        }
    }
    let trusted = o
        .trust_key
        .as_deref()
        .map(super::sign::read_public)
        .transpose()?;
    let bundle = Bundle::of_this_executable(trusted.as_deref())?;
    let layout = Layout::new(&o.prefix);
    let config = o.config.clone().unwrap_or_else(|| layout.default_config());
    let existing = InstallState::load(&layout).ok();
    let mode = if o.no_systemd {
        Mode::Pidfile
    } else {
        Mode::Systemd
    };
    // Under systemd the server gets its own account unless told otherwise.
    let user = o
        .user
        .clone()
        .or_else(|| (mode == Mode::Systemd).then(|| "omp".to_string()));
    if let Some(u) = &user
        && (u.is_empty()
            || u.len() > 32
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
            || u.starts_with('-'))
    {
        bail!("bad --user {u:?}: use letters, digits, _ and -");
    }

    // Checks: all before any change.
    let mut facts = checks::host_facts();
    facts.want_systemd = mode == Mode::Systemd;
    facts.user_given = o.user.is_some();
    facts.listen = Some(o.listen);
    let ours_running = existing.as_ref().is_some_and(|st| {
        st.listen == o.listen
            && matches!(
                service::status(&layout, st, Svc::Server),
                Ok(Status::Running(_))
            )
    });
    facts.port_error = if ours_running {
        None
    } else {
        checks::port_error(o.listen)
    };
    for dir in [
        &o.prefix,
        &o.data_dir,
        &config.parent().unwrap_or(Path::new("/")).to_path_buf(),
    ] {
        if let Some(why) = checks::unwritable(dir) {
            facts.unwritable.push((dir.clone(), why));
        }
    }
    let bundle_bytes = super::tree_size(&bundle.root);
    facts.need_bytes = checks::need_bytes(2 * bundle_bytes + (64 << 20));
    facts.free_path = checks::existing_ancestor(&o.prefix);
    facts.free_bytes = checks::free_bytes(&o.prefix);
    let problems = checks::problems(&facts);
    if !problems.is_empty() {
        bail!("nothing was changed:\n  - {}", problems.join("\n  - "));
    }
    confirm(
        o.yes,
        &format!(
            "Install OMP {} into {} (data in {}, listening on {}, {})?",
            bundle.version,
            o.prefix.display(),
            o.data_dir.display(),
            o.listen,
            if mode == Mode::Systemd {
                "systemd service"
            } else {
                "daemon with a pidfile"
            }
        ),
    )?;

    let mut p = Progress::new(8);
    p.step("account");
    let owner = match &user {
        Some(u) if super::is_root() => {
            ensure_user(u, &o.data_dir)?;
            super::lookup_user(u)
        }
        _ => None,
    };
    p.step("directories");
    for d in ["bin", "etc", "share", "run", "log", "backup", "upgrade"] {
        std::fs::create_dir_all(layout.prefix.join(d))
            .with_context(|| format!("cannot create {}", layout.prefix.join(d).display()))?;
    }
    make_data_dir(&o.data_dir, owner)?;
    p.step("binary");
    let same = std::fs::canonicalize(bundle.bin()).ok() == std::fs::canonicalize(layout.bin()).ok();
    if !same {
        super::copy_atomic(&bundle.bin(), &layout.bin(), 0o755)?;
    }
    p.step("configuration");
    write_config(
        &bundle.root.join("omp.toml"),
        &config,
        o.listen,
        &o.data_dir,
        owner,
    )?;
    if let Some(k) = &o.trust_key {
        super::copy_atomic(k, &layout.prefix.join("etc/release-key.pub"), 0o644)?;
    }
    p.step("documentation and units");
    install_share(&bundle, &layout)?;
    let state = InstallState {
        version: bundle.version.clone(),
        mode,
        data_dir: o.data_dir.clone(),
        config: config.clone(),
        listen: o.listen,
        user: user.clone(),
        installed_at: existing
            .as_ref()
            .map(|e| e.installed_at)
            .unwrap_or_else(super::now),
    };
    state.save(&layout)?;
    p.step("service");
    match mode {
        Mode::Systemd => {
            install_units(&layout, &state)?;
            service::systemctl(&["daemon-reload"])?;
            for args in [
                &["enable", "omp.service"][..],
                &["restart", "omp.service"][..],
            ] {
                let out = service::systemctl(args)?;
                if !out.status.success() {
                    bail!(
                        "systemctl {} failed: {} (see journalctl -u omp)",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
        }
        Mode::Pidfile => {
            // A repair restarts the server so it runs the binary and config just written.
            service::stop(&layout, &state, Svc::Server)?;
            service::start(&layout, &state, Svc::Server)?;
        }
    }
    p.step("waiting for /healthz");
    service::wait_healthy(&layout, &state, Some(&bundle.version), HEALTH_TIMEOUT)?;
    p.finish();
    let shown = if o.listen.ip().is_unspecified() {
        format!("http://<this host>:{}", o.listen.port())
    } else {
        format!("http://{}", o.listen)
    };
    println!(
        "OMP {} is installed and healthy ({:.1} s).\n  URL: {shown}",
        bundle.version,
        started.elapsed().as_secs_f64()
    );
    let pw = o.data_dir.join(crate::auth::INITIAL_PASSWORD_FILE);
    if pw.exists() {
        println!(
            "  Initial admin password: in {} (user admin; you must change it at first login)",
            pw.display()
        );
    } else {
        println!(
            "  Sign in as admin with the password set at the first start (OMP_ADMIN_PASSWORD, or an earlier install)."
        );
    }
    println!(
        "  Control it with: {} ctl status --prefix {}",
        layout.bin().display(),
        layout.prefix.display()
    );
    Ok(())
}

fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} Confirm with --yes (nothing was changed)");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if !matches!(line.trim(), "y" | "Y" | "yes") {
        bail!("cancelled; nothing was changed");
    }
    Ok(())
}

fn ensure_user(user: &str, home: &Path) -> anyhow::Result<()> {
    if super::lookup_user(user).is_some() {
        return Ok(());
    }
    let out = std::process::Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "--home-dir"])
        .arg(home)
        .arg(user)
        .output()
        .context("cannot run useradd (install the passwd package, or pass --user with an existing account)")?;
    if !out.status.success() {
        bail!(
            "cannot create the account {user}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn make_data_dir(dir: &Path, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .with_context(|| format!("cannot hand {} to the service account", dir.display()))?;
    }
    Ok(())
}

/// Sets `listen` and `data_dir` in the `[server]` section of a config text, keeping every
/// other line (and comment) as it is.
pub fn set_server_keys(text: &str, listen: SocketAddr, data_dir: &Path) -> String {
    let quote = |s: String| toml::Value::String(s).to_string();
    let wanted = [
        ("listen", format!("listen = {}", quote(listen.to_string()))),
        (
            "data_dir",
            format!("data_dir = {}", quote(data_dir.display().to_string())),
        ),
    ];
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let start = lines.iter().position(|l| l.trim() == "[server]");
    let Some(start) = start else {
        let mut out = text.trim_end().to_string();
        out.push_str("\n\n[server]\n");
        for (_, l) in &wanted {
            out.push_str(l);
            out.push('\n');
        }
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map(|i| start + 1 + i)
        .unwrap_or(lines.len());
    for (key, line) in wanted.iter().rev() {
        let found = (start + 1..end).find(|&i| {
            let l = lines[i].trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        match found {
            Some(i) => lines[i] = line.clone(),
            None => lines.insert(start + 1, line.clone()),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn write_config(
    template: &Path,
    config: &Path,
    listen: SocketAddr,
    data_dir: &Path,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let base = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(_) => std::fs::read_to_string(template)
            .with_context(|| format!("the bundle lacks {}", template.display()))?,
    };
    let text = set_server_keys(&base, listen, data_dir);
    // Refuse to leave a config the server would refuse.
    let parsed: Result<crate::config::Config, _> = toml::from_str(&text);
    parsed.with_context(|| {
        format!(
            "{} would not be a valid config after setting listen and data_dir: fix it (omp config check) and run install again",
            config.display()
        )
    })?;
    super::write_atomic(config, text.as_bytes(), 0o640)?;
    if let Some((_, gid)) = owner {
        std::os::unix::fs::chown(config, Some(0), Some(gid))?;
    }
    Ok(())
}

pub(super) fn install_share(bundle: &Bundle, layout: &Layout) -> anyhow::Result<()> {
    let share = layout.share();
    for name in [
        "README.md",
        "LICENSE",
        "VERSION",
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "omp.toml",
    ] {
        let from = bundle.root.join(name);
        if from.exists() {
            super::copy_atomic(&from, &share.join(name), 0o644)?;
        }
    }
    for unit in ["omp.service", "omp-agent.service"] {
        let from = bundle.root.join("systemd").join(unit);
        if from.exists() {
            super::copy_atomic(&from, &share.join("systemd").join(unit), 0o644)?;
        }
    }
    Ok(())
}

/// The bundle's unit with this installation's paths and account.
pub fn render_unit(template: &str, layout: &Layout, st: &InstallState) -> String {
    let user = st.user.as_deref().unwrap_or("root");
    template
        .replace("/opt/omp/etc/omp.toml", &st.config.display().to_string())
        .replace("/var/lib/omp", &st.data_dir.display().to_string())
        .replace("/opt/omp", &layout.prefix.display().to_string())
        .replace("User=omp", &format!("User={user}"))
        .replace("Group=omp", &format!("Group={user}"))
}

/// Writes `/etc/systemd/system/omp.service` from the installed copy of the bundle's unit.
pub fn install_units(layout: &Layout, st: &InstallState) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(layout.share().join("systemd/omp.service"))
        .context("the bundle lacks systemd/omp.service")?;
    super::write_atomic(
        Path::new("/etc/systemd/system/omp.service"),
        render_unit(&template, layout, st).as_bytes(),
        0o644,
    )
}

pub fn uninstall(prefix: &Path, purge: bool, yes: bool) -> anyhow::Result<()> {
    let layout = Layout::new(prefix);
    let st = InstallState::load(&layout)?;
    if !yes {
        bail!(
            "this removes OMP from {}{}: confirm with --yes (nothing was changed)",
            prefix.display(),
            if purge {
                format!(" and DELETES its data in {}", st.data_dir.display())
            } else {
                String::new()
            }
        );
    }
    let mut p = Progress::new(3);
    p.step("stopping the services");
    match st.mode {
        Mode::Systemd => {
            let _ = service::systemctl(&["disable", "--now", "omp.service"]);
            let _ = std::fs::remove_file("/etc/systemd/system/omp.service");
            let _ = service::systemctl(&["daemon-reload"]);
        }
        Mode::Pidfile => service::stop(&layout, &st, Svc::Server)?,
    }
    p.step("removing the program");
    for sub in ["bin", "share", "run", "log", "upgrade", "install.json"] {
        remove_any(&prefix.join(sub))?;
    }
    if !path_inside(&st.data_dir, &prefix.join("etc")) {
        remove_any(&st.config)?;
        remove_any(&prefix.join("etc/release-key.pub"))?;
        let _ = std::fs::remove_dir(prefix.join("etc"));
    }
    p.step(if purge {
        "deleting the data"
    } else {
        "keeping the data"
    });
    if purge {
        remove_any(&st.data_dir)?;
        remove_any(&layout.backup_dir())?;
    }
    let _ = std::fs::remove_dir(prefix);
    p.finish();
    if purge {
        println!("OMP was removed from {} with its data.", prefix.display());
    } else {
        println!(
            "OMP was removed from {}. Kept: the data in {} and the upgrade backups in {} (delete them, or run uninstall --purge).",
            prefix.display(),
            st.data_dir.display(),
            layout.backup_dir().display()
        );
    }
    Ok(())
}

fn path_inside(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}

fn remove_any(p: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
    .with_context(|| format!("cannot remove {}", p.display()))
}

/// `omp ctl`: which services and what to do.
pub fn ctl(prefix: &Path, which: &str, action: &str) -> anyhow::Result<i32> {
    let layout = Layout::new(prefix);
    let st = InstallState::load(&layout)?;
    let svcs: &[Svc] = match which {
        "all" => &[Svc::Server, Svc::Agent],
        "server" => &[Svc::Server],
        "agent" => &[Svc::Agent],
        other => bail!("unknown service {other:?}: use all, server or agent"),
    };
    let mut code = 0;
    for &svc in svcs {
        let name = if svc == Svc::Server {
            "server"
        } else {
            "agent"
        };
        let current = service::status(&layout, &st, svc)?;
        if current == Status::NotInstalled {
            if which != "all" || action == "status" {
                println!(
                    "{name}: not installed here (the server's embedded agent covers this host)"
                );
            }
            if which != "all" && action != "status" {
                code = 1;
            }
            continue;
        }
        match action {
            "status" => match current {
                Status::Running(Some(pid)) => println!("{name}: running (pid {pid})"),
                Status::Running(None) => println!("{name}: running"),
                _ => {
                    println!("{name}: stopped");
                    code = 3;
                }
            },
            "start" | "restart" => {
                if action == "restart" {
                    service::stop(&layout, &st, svc)?;
                }
                service::start(&layout, &st, svc)?;
                if svc == Svc::Server {
                    service::wait_healthy(&layout, &st, None, HEALTH_TIMEOUT)?;
                }
                println!("{name}: running");
            }
            "stop" => {
                service::stop(&layout, &st, svc)?;
                println!("{name}: stopped");
            }
            other => bail!("unknown action {other:?}: use status, start, stop or restart"),
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_are_set_in_place() {
        let listen: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let dir = Path::new("/var/lib/o\"mp");
        let t = set_server_keys(crate::config::EXAMPLE, listen, dir);
        let cfg: crate::config::Config = toml::from_str(&t).unwrap();
        assert_eq!(cfg.server.listen, listen);
        assert_eq!(cfg.server.data_dir, dir);
        // Comments survive and nothing is duplicated.
        assert_eq!(
            t.matches("listen =").count(),
            crate::config::EXAMPLE.matches("listen =").count()
        );
        assert!(t.contains("# Where the store"));
        // Idempotent.
        assert_eq!(set_server_keys(&t, listen, dir), t);
        // A config without the keys or without the section gets them.
        for base in [
            "[server]\nlocal_agent = false\n",
            "[auth]\nsession_idle_minutes = 5\n",
            "",
        ] {
            let t = set_server_keys(base, listen, dir);
            let cfg: crate::config::Config = toml::from_str(&t).unwrap();
            assert_eq!(cfg.server.listen, listen, "{t}");
        }
    }

    #[test]
    fn units_get_the_installation_paths() {
        let l = Layout::new(Path::new("/srv/omp"));
        let st = InstallState {
            version: "1.0.0".into(),
            mode: Mode::Systemd,
            data_dir: "/data/omp".into(),
            config: "/etc/omp/omp.toml".into(),
            listen: "0.0.0.0:19001".parse().unwrap(),
            user: Some("ompsvc".into()),
            installed_at: 0,
        };
        let unit = render_unit(include_str!("../../systemd/omp.service"), &l, &st);
        assert!(
            unit.contains(
                "ExecStart=/srv/omp/bin/omp serve --config /etc/omp/omp.toml --data-dir /data/omp"
            ),
            "{unit}"
        );
        assert!(unit.contains("ReadWritePaths=/data/omp"));
        assert!(unit.contains("User=ompsvc"));
        assert!(!unit.contains("/opt/omp") && !unit.contains("/var/lib/omp"));
    }
}
