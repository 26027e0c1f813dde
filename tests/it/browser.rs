//! Browser tests (Playwright + Debian's Chromium, headless) against the real server and a
//! real agent. Slow, so they run when OMP_BROWSER_TESTS=1 (as `.ci/run` sets); without it
//! the test says so. Screenshots go to OMP_SCREENSHOT_DIR (a CI artifact).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn node(script: &str, s: &TestServer, shots: &Path, env: &[(&str, &str)]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .current_dir(&root)
        .env("OMP_URL", &s.base)
        .env("OMP_ADMIN_USER", "admin")
        .env("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("OMP_SCREENSHOT_DIR", shots);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{script}: {stdout}");
}

/// The screenshot dir, or None (said on stderr) when browser tests are
/// off.
fn browser_setup() -> Option<PathBuf> {
    if std::env::var("OMP_BROWSER_TESTS").as_deref() != Ok("1") {
        eprintln!("browser tests not run: set OMP_BROWSER_TESTS=1 (.ci/run does)");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "run `npm ci` in tests/browser first"
    );
    let shots = std::env::var("OMP_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    Some(shots)
}

#[test]
fn browser_foundation_hosts_terminal() {
    let Some(shots) = browser_setup() else {
        return;
    };
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "2"),
            ("OMP_AGENT__METRICS_SECS", "2"),
        ],
        None,
    );

    // Log in, switch language, create a user, find it in the audit log.
    node("e2e.mjs", &s, &shots, &[]);
    assert!(shots.join("audit.png").exists());

    // Add a host with the one-line command copied from the page, see it online, run a command.
    let agent_root = tempfile::tempdir().unwrap();
    let prefix = agent_root.path().join("prefix");
    let data = tempfile::tempdir().unwrap();
    node(
        "hosts.mjs",
        &s,
        &shots,
        &[
            ("OMP_RUN_ENROLL_COMMAND", "1"),
            ("OMP_AGENT_PREFIX", prefix.to_str().unwrap()),
            ("OMP_AGENT_DATA_DIR", data.path().to_str().unwrap()),
        ],
    );
    assert!(
        prefix.join("bin/omp").exists(),
        "the one-line command installed the agent"
    );
    assert!(shots.join("exec.png").exists());

    // The same host's agent again (the script stopped it), then its terminal.
    let agent = AgentProc::start(&s, None, Some(data));
    assert!(
        agent.wait_for("Connected to the server."),
        "{}",
        agent.log()
    );
    let hostname = omp::agent::inventory::collect().hostname;
    node(
        "terminal.mjs",
        &s,
        &shots,
        &[("OMP_EXPECT_HOST", &hostname)],
    );
    assert!(shots.join("terminal.png").exists() && shots.join("replay.png").exists());

    // Upload a file to the host and download it back through the host page.
    let files = tempfile::tempdir().unwrap();
    node(
        "files.mjs",
        &s,
        &shots,
        &[
            ("OMP_EXPECT_HOST", &hostname),
            ("OMP_FILES_DIR", files.path().to_str().unwrap()),
        ],
    );
    assert!(files.path().join("uploaded.txt").exists());

    // The host's metric charts and the PromQL explorer.
    node("metrics.mjs", &s, &shots, &[("OMP_EXPECT_HOST", &hostname)]);
    assert!(shots.join("host-metrics.png").exists());

    // Scrape targets (the server's own /metrics, added, edited, deleted through the form), the
    // PromQL completion and the host's Processes tab.
    node(
        "monitoring.mjs",
        &s,
        &shots,
        &[("OMP_EXPECT_HOST", &hostname)],
    );
    assert!(shots.join("scrape-targets.png").exists());

    // Push a host over SSH from the form (a real sshd on loopback), then check a CSV import
    // reports the bad row.
    let (dir, _key) = crate::ssh::keys();
    let port = crate::ssh::free_port();
    let _sshd = crate::ssh::sshd(dir.path(), port);
    let target = tempfile::tempdir().unwrap();
    let prefix = target.path().join("opt");
    let port_s = port.to_string();
    let key_file = dir.path().join("id_ed25519");
    let data_dir = target.path().join("data");
    let pushed = std::panic::catch_unwind(|| {
        node(
            "ssh.mjs",
            &s,
            &shots,
            &[
                ("OMP_SSH_PORT", &port_s),
                ("OMP_SSH_KEY_FILE", key_file.to_str().unwrap()),
                ("OMP_SSH_PREFIX", prefix.to_str().unwrap()),
                ("OMP_SSH_DATA_DIR", data_dir.to_str().unwrap()),
            ],
        )
    });
    let _ = Command::new("pkill")
        .arg("-f")
        .arg(prefix.join("bin/omp"))
        .status();
    if let Err(e) = pushed {
        std::panic::resume_unwind(e);
    }
    assert!(shots.join("ssh-push.png").exists() && shots.join("import.png").exists());
}

/// `omp agent` run from its own copy of the test binary: a fleet upgrade replaces the file
/// it runs from, which must not be cargo's.
struct CopiedAgent {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl CopiedAgent {
    fn start(s: &TestServer, token: &str) -> CopiedAgent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let bin = dir.path().join("bin/omp");
        std::fs::copy(omp_bin(), &bin).unwrap();
        let child = Command::new(&bin)
            .args(["agent", "--server", &s.base.replace("http://", "https://")])
            .args(["--enroll-token", token, "--data-dir"])
            .arg(dir.path().join("data"))
            .env("OMP_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
            .spawn()
            .unwrap();
        CopiedAgent { dir, child }
    }
    fn bin_version(&self) -> Option<String> {
        omp::lifecycle::stamp::read_file(&self.dir.path().join("bin/omp")).unwrap()
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for CopiedAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next minor version of this build with `patch` ("0.1.0", 0 → "0.2.0"): compatible with
/// the server.
fn next_minor(patch: u64) -> String {
    let mut parts = omp::VERSION.split(['.', '-']);
    let major = parts.next().unwrap();
    let minor: u64 = parts.next().unwrap().parse().unwrap();
    format!("{major}.{}.{patch}", minor + 1)
}

/// Writes `image` (stamped with `version` when given) as an executable file.
fn write_binary(mut image: Vec<u8>, version: Option<&str>, to: &Path) {
    if let Some(v) = version {
        omp::lifecycle::stamp::apply(&mut image, v).unwrap();
    }
    std::fs::write(to, image).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn browser_agent_upgrade() {
    let Some(shots) = browser_setup() else {
        return;
    };

    // The server offers a copy of this binary stamped one minor version higher (what
    // packaging/build.sh --version does), so the agent below runs behind it. The script later
    // puts two other files in its place, as an operator changing `[agent] binary` would: a
    // stamped binary that does not run as an agent (the run fails, the agent keeps its
    // version) and an unstamped one (the server refuses to offer it).
    let work = tempfile::tempdir().unwrap();
    let offered = next_minor(0);
    let served = work.path().join("agent-omp");
    write_binary(std::fs::read(omp_bin()).unwrap(), Some(&offered), &served);
    let broken_version = next_minor(1);
    let broken = work.path().join("broken-omp");
    let mut true_image = std::fs::read("/bin/true").unwrap();
    true_image.extend_from_slice(&omp::lifecycle::stamp::blank());
    write_binary(true_image.clone(), Some(&broken_version), &broken);
    let unstamped = work.path().join("unstamped-omp");
    write_binary(true_image, None, &unstamped);

    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
            ("OMP_AGENT__BINARY", served.to_str().unwrap()),
        ],
        None,
    );
    let admin = s.admin();
    let t = admin.post(
        "/api/v1/hosts/enroll-tokens",
        &serde_json::json!({"ttl_minutes": 5}),
    );
    assert_eq!(t.status, 201, "{}", t.text);
    let agent = CopiedAgent::start(&s, t.body["token"].as_str().unwrap());
    let _viewer = user_with_role(&s, &admin, "viewer1", "viewer");
    let hostname = omp::agent::inventory::collect().hostname;

    node(
        "upgrade.mjs",
        &s,
        &shots,
        &[
            ("OMP_EXPECT_HOST", &hostname),
            ("OMP_OFFERED_VERSION", &offered),
            ("OMP_VIEWER_USER", "viewer1"),
            ("OMP_VIEWER_PASSWORD", "Fresh-pass-456"),
            ("OMP_SERVED_BINARY", served.to_str().unwrap()),
            ("OMP_BROKEN_BINARY", broken.to_str().unwrap()),
            ("OMP_BROKEN_VERSION", &broken_version),
            ("OMP_UNSTAMPED_BINARY", unstamped.to_str().unwrap()),
        ],
    );
    // What the page showed happened on the host: its binary is the offered one now (the
    // broken one was abandoned).
    assert_eq!(
        agent.bin_version().as_deref(),
        Some(offered.as_str()),
        "{}",
        agent.log()
    );
    assert!(agent.dir.path().join("bin/omp.prev").exists());
    assert!(shots.join("upgrade-run.png").exists() && shots.join("upgrade-dialog-zh.png").exists());
}
