//! Install, upgrade, rollback, control and uninstall from real tarballs built by
//! `packaging/build.sh --binary <the debug omp>`, in a throwaway root without systemd
//! (pidfile mode), as CI runs them; and the refusals of bad input before any change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::util::{ADMIN_PASSWORD, Client, omp_bin};

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `packaging/build.sh --binary BIN --version V --out DIR` → the tarball path.
fn build_tarball(binary: &Path, version: &str, out: &Path) -> PathBuf {
    let o = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/build.sh"))
        .arg("--binary")
        .arg(binary)
        .args(["--version", version, "--out"])
        .arg(out)
        .env("OMP_BUILD_GZIP_LEVEL", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "build.sh: {}", text(&o));
    let path = out.join(format!("omp-{version}-linux-x86_64.tar.gz"));
    assert!(path.is_file(), "{}", text(&o));
    path
}

/// Unpacks with the system tar, as a user would; returns the bundle's omp.
fn unpack(tarball: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let top = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    top.join("bin/omp")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin);
    c.args(args)
        .env_remove("OMP_UPGRADE_FAIL_AT")
        .env_remove("OMP_INSTALL_MIN_FREE_MIB")
        .env("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// An installation under a temp root; stops its daemon when dropped.
struct Inst {
    _root: tempfile::TempDir,
    prefix: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Inst {
    fn new() -> Inst {
        let root = tempfile::tempdir().unwrap();
        Inst {
            prefix: root.path().join("opt/omp"),
            data: root.path().join("var/lib/omp"),
            port: free_port(),
            _root: root,
        }
    }
    fn p(&self) -> &str {
        self.prefix.to_str().unwrap()
    }
    fn install(&self, bundle_bin: &Path, env: &[(&str, &str)]) -> Output {
        let listen = format!("127.0.0.1:{}", self.port);
        run(
            bundle_bin,
            &[
                "install",
                "--prefix",
                self.p(),
                "--data-dir",
                self.data.to_str().unwrap(),
                "--listen",
                &listen,
                "--no-systemd",
                "--yes",
            ],
            env,
        )
    }
    /// Runs the installed omp with `args` plus `--prefix P`.
    fn omp(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut a = args.to_vec();
        a.extend(["--prefix", self.p()]);
        run(&self.prefix.join("bin/omp"), &a, env)
    }
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// The version answering /healthz (None: not answering).
    fn running_version(&self) -> Option<String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent.get(format!("{}/healthz", self.base())).call().ok()?;
        (r.status() == 200).then(|| r.headers()["x-omp-version"].to_str().unwrap().to_string())
    }
    fn admin(&self) -> Client {
        let mut c = Client::new(&self.base());
        let (s, b) = c.login("admin", ADMIN_PASSWORD);
        assert_eq!(s, 200, "{b}");
        c
    }
    fn usernames(&self) -> Vec<String> {
        let a = self.admin().get("/api/v1/users");
        assert_eq!(a.status, 200, "{}", a.text);
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    }
    fn add_user(&self, name: &str) {
        let a = self.admin().post(
            "/api/v1/users",
            &json!({"username": name, "password": "Temp-pass-123", "roles": ["viewer"]}),
        );
        assert_eq!(a.status, 201, "{}", a.text);
    }
    fn bin_sha(&self) -> String {
        omp::lifecycle::bundle::sha256_file(&self.prefix.join("bin/omp")).unwrap()
    }
}

impl Drop for Inst {
    fn drop(&mut self) {
        if self.prefix.join("install.json").exists() {
            let _ = self.omp(&["ctl", "stop"], &[]);
        }
    }
}

fn assert_fails_with(o: &Output, needle: &str) {
    assert!(!o.status.success(), "should fail: {}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}: {}",
        text(o)
    );
    assert!(!err.contains("panicked"), "{}", text(o));
}

/// A copy of /bin/true with a stamp area appended: a valid x86-64 executable with a
/// version that starts and exits at once, so the health check of its "server" fails.
fn broken_binary(dir: &Path) -> PathBuf {
    let mut image = std::fs::read("/bin/true").unwrap();
    image.extend_from_slice(&omp::lifecycle::stamp::blank());
    let p = dir.join("broken-omp");
    std::fs::write(&p, image).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn install_upgrade_resume_rollback_uninstall() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    let bin = Path::new(omp_bin());
    let t1 = build_tarball(bin, "0.1.0", &dist);
    let b1 = unpack(&t1, &work.path().join("u1"));
    let inst = Inst::new();

    // Install, write data, repair in place.
    let o = inst.install(&b1, &[]);
    assert!(o.status.success(), "install: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("installed and healthy"), "{out}");
    assert!(out.contains(&inst.base()), "{out}");
    assert_eq!(inst.running_version().as_deref(), Some("0.1.0"));
    let info = inst.admin().get("/api/v1/system/info");
    assert_eq!(info.body["version"], "0.1.0", "{}", info.text);
    inst.add_user("keeper");
    let o = inst.install(&b1, &[]);
    assert!(o.status.success(), "repair: {}", text(&o));
    assert!(inst.usernames().contains(&"keeper".to_string()));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(inst.prefix.join("install.json")).unwrap())
            .unwrap();
    assert_eq!(state["mode"], "pidfile");
    assert_eq!(state["version"], "0.1.0");

    // Control verbs.
    let o = inst.omp(&["ctl", "status"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("server: running"),
        "{}",
        text(&o)
    );
    let o = inst.omp(&["ctl", "server", "stop"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(inst.running_version(), None);
    let o = inst.omp(&["ctl", "status"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = inst.omp(&["ctl", "all", "start"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(inst.running_version().as_deref(), Some("0.1.0"));
    let o = inst.omp(&["ctl", "restart"], &[]);
    assert!(o.status.success(), "{}", text(&o));

    // Upgrade: data intact, version changed.
    let t2 = build_tarball(bin, "0.2.0", &dist);
    let o = inst.omp(&["upgrade", t2.to_str().unwrap()], &[]);
    assert!(o.status.success(), "upgrade: {}", text(&o));
    assert_eq!(inst.running_version().as_deref(), Some("0.2.0"));
    assert!(inst.usernames().contains(&"keeper".to_string()));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(inst.prefix.join("upgrade/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["outcome"], "succeeded");
    assert!(
        record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "done")
    );
    let o = run(&inst.prefix.join("bin/omp"), &["version"], &[]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "omp 0.2.0");

    // Refused before anything changes: checksum mismatch, truncated, other architecture,
    // not newer.
    let sha_before = inst.bin_sha();
    let t3 = build_tarball(bin, "0.3.0", &dist);
    let tampered = {
        let dir = work.path().join("tamper");
        unpack(&t3, &dir);
        std::fs::write(dir.join("omp-0.3.0/README.md"), "changed").unwrap();
        let p = work.path().join("tampered.tar.gz");
        let o = Command::new("tar")
            .arg("-czf")
            .arg(&p)
            .arg("-C")
            .arg(&dir)
            .arg("omp-0.3.0")
            .output()
            .unwrap();
        assert!(o.status.success());
        p
    };
    let o = inst.omp(&["upgrade", tampered.to_str().unwrap()], &[]);
    assert_fails_with(&o, "checksum mismatch for README.md");
    let truncated = work.path().join("truncated.tar.gz");
    let full = std::fs::read(&t3).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let o = inst.omp(&["upgrade", truncated.to_str().unwrap()], &[]);
    assert_fails_with(&o, "damaged or truncated");
    let arm = {
        let mut image = std::fs::read(bin).unwrap();
        image[18] = 183; // e_machine = aarch64
        image[19] = 0;
        let p = work.path().join("arm-omp");
        std::fs::write(&p, image).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        build_tarball(&p, "0.3.1", &work.path().join("armdist"))
    };
    let o = inst.omp(&["upgrade", arm.to_str().unwrap()], &[]);
    assert_fails_with(&o, "another architecture (aarch64)");
    let o = inst.omp(&["upgrade", t1.to_str().unwrap()], &[]);
    assert_fails_with(&o, "not newer");
    assert_eq!(inst.bin_sha(), sha_before);
    assert_eq!(inst.running_version().as_deref(), Some("0.2.0"));
    let saved =
        omp::lifecycle::stamp::read_file(&inst.prefix.join("backup/previous/bin/omp")).unwrap();
    assert_eq!(
        saved.as_deref(),
        Some("0.1.0"),
        "the backup of 0.1.0 is untouched"
    );

    // A version whose health check fails: automatic rollback, old version healthy, data
    // intact.
    let broken = build_tarball(
        &broken_binary(work.path()),
        "0.3.0",
        &work.path().join("bdist"),
    );
    let o = inst.omp(&["upgrade", broken.to_str().unwrap()], &[]);
    assert_fails_with(&o, "Rolled back automatically");
    assert_fails_with(&o, "failed at step health");
    assert_eq!(inst.running_version().as_deref(), Some("0.2.0"));
    assert_eq!(inst.bin_sha(), sha_before);
    assert!(inst.usernames().contains(&"keeper".to_string()));

    // Interrupt before each step, then resume there.
    let mut version = (0, 4);
    for step in omp::lifecycle::steps::Step::ALL {
        let v = format!("{}.{}.0", version.0, version.1);
        version.1 += 1;
        let t = build_tarball(bin, &v, &dist);
        let o = inst.omp(
            &["upgrade", t.to_str().unwrap()],
            &[("OMP_UPGRADE_FAIL_AT", step.name())],
        );
        assert_fails_with(&o, &format!("--from {}", step.name()));
        // Once the binary is swapped, a new run is refused with the advice to resume.
        if step > omp::lifecycle::steps::Step::Swap {
            let o = inst.omp(&["upgrade", t.to_str().unwrap()], &[]);
            assert_fails_with(&o, &format!("--from {}", step.name()));
        }
        let o = inst.omp(
            &["upgrade", t.to_str().unwrap(), "--from", step.name()],
            &[],
        );
        assert!(
            o.status.success(),
            "resume at {}: {}",
            step.name(),
            text(&o)
        );
        assert_eq!(
            inst.running_version().as_deref(),
            Some(v.as_str()),
            "after {step:?}"
        );
        assert!(inst.usernames().contains(&"keeper".to_string()));
    }

    // Manual rollback: back to the version before the last upgrade, with the store as it
    // was then; what was written since is set aside.
    inst.add_user("after-upgrade");
    let last = format!("{}.{}.0", version.0, version.1 - 1);
    let before_last = format!("{}.{}.0", version.0, version.1 - 2);
    assert_eq!(inst.running_version(), Some(last));
    let o = inst.omp(&["rollback"], &[]);
    assert!(o.status.success(), "rollback: {}", text(&o));
    assert_eq!(inst.running_version(), Some(before_last));
    let users = inst.usernames();
    assert!(users.contains(&"keeper".to_string()));
    assert!(!users.contains(&"after-upgrade".to_string()), "{users:?}");
    let discarded = std::fs::read_dir(inst.prefix.join("backup"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("discarded-"));
    assert!(discarded);
    let o = inst.omp(&["rollback"], &[]);
    assert_fails_with(&o, "nothing to roll back to");

    // Uninstall keeps the data; a new install finds it; --purge removes it.
    let o = inst.omp(&["uninstall"], &[]);
    assert_fails_with(&o, "--yes");
    let o = inst.omp(&["uninstall", "--yes"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!inst.prefix.join("bin/omp").exists());
    assert!(inst.data.join("omp.redb").exists());
    assert_eq!(inst.running_version(), None);
    let o = inst.install(&b1, &[]);
    assert!(o.status.success(), "reinstall: {}", text(&o));
    assert!(inst.usernames().contains(&"keeper".to_string()));
    let o = inst.omp(&["uninstall", "--purge", "--yes"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!inst.data.exists());
    assert!(!inst.prefix.exists());
}

#[test]
fn bad_input_is_refused_before_any_change() {
    let work = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let t1 = build_tarball(Path::new(omp_bin()), "0.1.0", &work.path().join("dist"));
    let b1 = unpack(&t1, &work.path().join("u1"));
    let inst = Inst::new();
    let listen = format!("127.0.0.1:{}", inst.port);
    let base = [
        "install",
        "--prefix",
        inst.p(),
        "--data-dir",
        inst.data.to_str().unwrap(),
        "--listen",
        &listen,
    ];
    fn join<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    }
    let with = |extra: &[&'static str]| join(&base, extra);
    let nothing_changed = || {
        assert!(!inst.prefix.exists(), "the prefix was created");
        assert!(!inst.data.exists(), "the data dir was created");
    };

    // Port in use.
    let busy = std::net::TcpListener::bind(&listen).unwrap();
    let o = run(&b1, &with(&["--no-systemd", "--yes"]), &[]);
    assert_fails_with(&o, "the port is in use");
    assert_fails_with(&o, "choose another with --listen");
    drop(busy);
    nothing_changed();
    // Too little disk.
    let o = run(
        &b1,
        &with(&["--no-systemd", "--yes"]),
        &[("OMP_INSTALL_MIN_FREE_MIB", "999999999")],
    );
    assert_fails_with(&o, "not enough disk space");
    nothing_changed();
    // No systemd on this host (CI, containers).
    if !Path::new("/run/systemd/system").exists() {
        let o = run(&b1, &with(&["--yes"]), &[]);
        assert_fails_with(&o, "add --no-systemd");
        nothing_changed();
    }
    // No confirmation without a terminal.
    let o = run(&b1, &with(&["--no-systemd"]), &[]);
    assert_fails_with(&o, "Confirm with --yes");
    nothing_changed();
    // Unwritable prefix.
    let o = run(
        &b1,
        &[
            "install",
            "--prefix",
            "/proc/omp-test",
            "--data-dir",
            inst.data.to_str().unwrap(),
            "--listen",
            &listen,
            "--no-systemd",
            "--yes",
        ],
        &[],
    );
    assert_fails_with(&o, "cannot write to /proc/omp-test");
    nothing_changed();
    // Tampered bundle.
    let dir = work.path().join("u2");
    let b2 = unpack(&t1, &dir);
    std::fs::write(dir.join("omp-0.1.0/omp.toml"), "[server]\n").unwrap();
    let o = run(&b2, &with(&["--no-systemd", "--yes"]), &[]);
    assert_fails_with(&o, "checksum mismatch for omp.toml");
    nothing_changed();
    // Not from a bundle.
    let o = run(Path::new(omp_bin()), &with(&["--no-systemd", "--yes"]), &[]);
    assert_fails_with(&o, "not inside an unpacked OMP tarball");
    nothing_changed();
    // A user without root rights: systemd needs root; without it, the prefix under a
    // root-owned directory is not writable.
    let setpriv = ["--reuid", "65534", "--regid", "65534", "--clear-groups"];
    let as_nobody = |extra: &[&'static str]| {
        let mut c = Command::new("setpriv");
        c.args(setpriv).arg(&b1).args(with(extra));
        c.env_remove("OMP_INSTALL_MIN_FREE_MIB")
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    let o = as_nobody(&["--yes"]);
    assert_fails_with(&o, "needs root");
    let o = as_nobody(&["--no-systemd", "--yes"]);
    assert_fails_with(&o, "cannot write to");
    assert_fails_with(&o, "or run as root");
    let o = as_nobody(&["--no-systemd", "--yes", "--user", "omp"]);
    assert_fails_with(&o, "--user needs root");
    nothing_changed();
}

/// An `omp agent` run from its own copy of a binary (a self-upgrade replaces that file).
struct CopiedAgent {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl CopiedAgent {
    fn start(server: &crate::util::TestServer, token: &str, binary: &Path) -> CopiedAgent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let bin = dir.path().join("bin/omp");
        std::fs::copy(binary, &bin).unwrap();
        let https = server.base.replace("http://", "https://");
        let child = Command::new(&bin)
            .args([
                "agent",
                "--server",
                &https,
                "--enroll-token",
                token,
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .env("OMP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
            .spawn()
            .unwrap();
        CopiedAgent { dir, child }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
    fn bin_version(&self) -> Option<String> {
        omp::lifecycle::stamp::read_file(&self.dir.path().join("bin/omp")).unwrap()
    }
}

impl Drop for CopiedAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of `from` stamped with `version` (what packaging/build.sh does).
fn stamped(from: &Path, version: &str, to: &Path) {
    let mut image = std::fs::read(from).unwrap();
    omp::lifecycle::stamp::apply(&mut image, version).unwrap();
    let tmp = to.with_extension("tmp");
    std::fs::write(&tmp, image).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

fn wait_run(admin: &Client, id: u64) -> serde_json::Value {
    crate::util::eventually(180, || {
        let r = admin.get(&format!("/api/v1/hosts/upgrades/{id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        (r.body["state"] != "running").then_some(r.body)
    })
    .expect("the upgrade run did not end")
}

#[test]
fn agents_upgraded_from_the_server_reconnect_with_the_new_version() {
    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("agent-omp");
    // First the server hands out a binary that does not run as an agent.
    stamped(&broken_binary(work.path()), "0.2.0", &served);
    let s = crate::util::TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
            ("OMP_AGENT__BINARY", served.to_str().unwrap()),
        ],
        None,
    );
    let admin = s.admin();
    let mut agents = Vec::new();
    for _ in 0..2 {
        let t = admin.post("/api/v1/hosts/enroll-tokens", &json!({"ttl_minutes": 5}));
        assert_eq!(t.status, 201, "{}", t.text);
        agents.push(CopiedAgent::start(
            &s,
            t.body["token"].as_str().unwrap(),
            Path::new(omp_bin()),
        ));
    }
    let online = || {
        let h = admin.get("/api/v1/hosts").body;
        let items = h["items"].as_array().unwrap().clone();
        (items.len() == 2 && items.iter().all(|i| i["status"] == "online")).then_some(items)
    };
    let hosts = crate::util::eventually(60, online).expect("two agents online");
    assert!(
        hosts.iter().all(|h| h["agent_version"] == omp::VERSION),
        "{hosts:?}"
    );

    let b = admin.get("/api/v1/hosts/agent-binary");
    assert_eq!(b.body["version"], "0.2.0", "{}", b.text);
    let bad = admin.post("/api/v1/hosts/upgrade", &json!({"all": true, "group": "x"}));
    assert_eq!(bad.status, 422, "{}", bad.text);

    // The canary refuses the broken binary: the run stops, the other host is not touched.
    let r = admin.post(
        "/api/v1/hosts/upgrade",
        &json!({"all": true, "canary": 1, "timeout_secs": 60}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let run = wait_run(&admin, r.body["id"].as_u64().unwrap());
    assert_eq!(run["state"], "failed", "{run}");
    let states: Vec<&str> = run["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "skipped"], "{run}");
    assert!(
        run["hosts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("abandoned"),
        "{run}"
    );
    assert!(
        agents.iter().all(|a| a.bin_version().is_none()),
        "binaries untouched"
    );

    // A binary the server refuses (major version 1 against a 0.x server): the canary puts
    // its previous binary back by itself and reconnects as before; the run fails.
    stamped(Path::new(omp_bin()), "1.0.0", &served);
    let r = admin.post(
        "/api/v1/hosts/upgrade",
        &json!({"all": true, "canary": 1, "timeout_secs": 10}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let run = wait_run(&admin, r.body["id"].as_u64().unwrap());
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["hosts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not reconnect"),
        "{run}"
    );
    assert_eq!(run["hosts"][1]["state"], "skipped", "{run}");
    let reverted: Vec<&CopiedAgent> = agents
        .iter()
        .filter(|a| a.log().contains("restoring the previous agent binary"))
        .collect();
    assert_eq!(reverted.len(), 1, "only the canary tried 1.0.0");
    let log = reverted[0].log();
    assert!(log.contains("Agent binary upgraded; restarting."), "{log}");
    assert!(log.contains("not compatible"), "{log}");
    assert_eq!(
        reverted[0].bin_version(),
        None,
        "the previous (unstamped) binary is back"
    );
    crate::util::eventually(30, || {
        online().filter(|items| items.iter().all(|h| h["agent_version"] == omp::VERSION))
    })
    .expect("both agents online with their old version");

    // Now a real 0.2.0: the canary, then the rest, reconnect reporting it.
    stamped(Path::new(omp_bin()), "0.2.0", &served);
    let r = admin.post(
        "/api/v1/hosts/upgrade",
        &json!({"all": true, "timeout_secs": 90}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let run = wait_run(&admin, r.body["id"].as_u64().unwrap());
    assert_eq!(run["state"], "succeeded", "{run}");
    let canaries: Vec<bool> = run["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["canary"].as_bool().unwrap())
        .collect();
    assert_eq!(canaries, [true, false]);
    let hosts = crate::util::eventually(30, || {
        online().filter(|items| items.iter().all(|h| h["agent_version"] == "0.2.0"))
    })
    .expect("both agents online as 0.2.0");
    assert_eq!(hosts.len(), 2);
    for a in &agents {
        assert_eq!(a.bin_version().as_deref(), Some("0.2.0"));
        assert!(
            a.dir.path().join("bin/omp.prev").exists(),
            "previous binary kept"
        );
        assert!(
            !a.dir.path().join("data/upgrade-pending.json").exists(),
            "confirmed"
        );
    }
    // A second run has nothing to do.
    let r = admin.post("/api/v1/hosts/upgrade", &json!({"all": true}));
    let run = wait_run(&admin, r.body["id"].as_u64().unwrap());
    assert!(
        run["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["state"] == "skipped"),
        "{run}"
    );
}

/// The hardened units, with the paths `omp install` writes into them, pass systemd's own
/// checker (directive names, values, sandboxing options, the binary it starts). systemd does
/// not run in CI, so starting them is not tested; this catches every unit-file mistake that
/// does not need a running systemd.
#[test]
fn rendered_units_pass_systemd_analyze_verify() {
    use omp::lifecycle::{InstallState, Layout, Mode};
    let analyze = "/usr/bin/systemd-analyze";
    assert!(
        Path::new(analyze).exists(),
        "{analyze} is missing: apt-get install systemd (tests/run does)"
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("opt");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::copy(omp_bin(), prefix.join("bin/omp")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let layout = Layout::new(&prefix);
    let st = InstallState {
        version: "0.1.0".into(),
        mode: Mode::Systemd,
        data_dir: data.clone(),
        config: prefix.join("etc/omp.toml"),
        listen: "127.0.0.1:19001".parse().unwrap(),
        user: Some("root".into()),
        installed_at: 0,
    };
    let server = std::fs::read_to_string(root.join("systemd/omp.service")).unwrap();
    let rendered = omp::lifecycle::install::render_unit(&server, &layout, &st);
    assert!(
        !rendered.contains("/opt/omp/"),
        "paths replaced:\n{rendered}"
    );
    // The agent's unit as its install step fills it in (server URL, its prefix and data).
    let agent = std::fs::read_to_string(root.join("systemd/omp-agent.service"))
        .unwrap()
        .replace("@SERVER@", "https://omp.example:19001")
        .replace("/opt/omp-agent", &prefix.display().to_string())
        .replace("/var/lib/omp-agent", &data.display().to_string());
    for (name, unit) in [("omp.service", rendered), ("omp-agent.service", agent)] {
        let path = dir.path().join(name);
        std::fs::write(&path, unit).unwrap();
        let o = Command::new(analyze)
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{name}: {}",
            text(&o)
        );
    }
}
