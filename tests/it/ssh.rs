//! SSH push (issue 3) against a real OpenSSH server (Debian's openssh-server, started here
//! on a free loopback port with its own host key): install, enroll, host key trusted on
//! first use and checked afterwards, a changed key refused, wrong credentials and hostile
//! fields refused.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

const SSHD: &str = "/usr/sbin/sshd";

pub(crate) struct Sshd {
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Starts sshd with `dir/host_key`, letting root in with `dir/id_ed25519`.
pub(crate) fn sshd(dir: &Path, port: u16) -> Sshd {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: apt-get install openssh-server (.ci/run does)"
    );
    std::fs::create_dir_all("/run/sshd").unwrap();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication yes\nPubkeyAuthentication yes\nLogLevel VERBOSE\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("Server listening") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("sshd started");
    Sshd { child }
}

/// A folder with a host key, a client key and the client key authorized; returns it and
/// the client's private key.
pub(crate) fn keys() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    keygen(&dir.path().join("host_key"));
    keygen(&dir.path().join("id_ed25519"));
    std::fs::copy(
        dir.path().join("id_ed25519.pub"),
        dir.path().join("authorized_keys"),
    )
    .unwrap();
    let key = std::fs::read_to_string(dir.path().join("id_ed25519")).unwrap();
    (dir, key)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn push(admin: &Client, body: Value) -> Value {
    let a = admin.post("/api/v1/hosts/ssh-push", &body);
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_u64().unwrap();
    eventually(120, || {
        let j = admin.get(&format!("/api/v1/hosts/ssh-push/{id}")).body;
        (j["state"] != "running").then_some(j)
    })
    .expect("push finished")
}

fn failed_step(j: &Value) -> (String, String) {
    let s = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "failed")
        .cloned()
        .unwrap_or(json!({}));
    (
        s["name"].as_str().unwrap_or("").to_string(),
        s["detail"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn ssh_push_installs_enrolls_and_pins_the_host_key() {
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
        ],
        None,
    );
    let admin = s.admin();
    let (dir, key) = keys();
    let port = free_port();
    let server = sshd(dir.path(), port);
    let target = tempfile::tempdir().unwrap();
    let prefix = target.path().join("opt");
    let data = target.path().join("data");
    let body = json!({
        "address": "127.0.0.1", "port": port, "user": "root", "private_key": key,
        "prefix": prefix, "data_dir": data, "labels": {"via": "ssh"}, "groups": ["pushed"],
    });

    let j = push(&admin, body.clone());
    let cleanup = || {
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(prefix.join("bin/omp"))
            .status();
    };
    if j["state"] != "ok" {
        cleanup();
        panic!("push failed: {j}");
    }
    let names: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    assert!(
        j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ok"),
        "{j}"
    );
    assert!(
        j["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("trusted on first use"),
        "{j}"
    );
    let host_id = j["host_id"].as_u64().unwrap();
    let h = admin.get(&format!("/api/v1/hosts/{host_id}")).body;
    assert_eq!(
        (h["status"].as_str(), h["labels"]["via"].as_str()),
        (Some("online"), Some("ssh")),
        "{h}"
    );
    assert!(prefix.join("bin/omp").exists());
    let known = admin.get("/api/v1/ssh/known-hosts").body;
    assert_eq!(known["items"][0]["target"], format!("127.0.0.1:{port}"));
    assert!(
        known["items"][0]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    // No credential reaches the audit log.
    let audit = admin.get("/api/v1/audit?action=hosts.ssh_push").body;
    assert_eq!(audit["total"], 1);
    assert!(!audit.to_string().contains("PRIVATE KEY"));
    cleanup();

    // The host is reinstalled: same address, new host key. The push refuses it.
    drop(server);
    std::fs::remove_file(dir.path().join("host_key")).unwrap();
    std::fs::remove_file(dir.path().join("host_key.pub")).unwrap();
    keygen(&dir.path().join("host_key"));
    let _server = sshd(dir.path(), port);
    let j = push(&admin, body.clone());
    assert_eq!(j["state"], "failed");
    let (step, detail) = failed_step(&j);
    assert_eq!(step, "connect");
    assert!(
        detail.contains("not the expected") && detail.contains("forget its old key"),
        "{detail}"
    );
    // Forgetting the old key lets a new push trust the new one.
    let t = format!("127.0.0.1:{port}");
    assert_eq!(
        admin.delete(&format!("/api/v1/ssh/known-hosts/{t}")).status,
        204
    );

    // Wrong password: refused at login, nothing installed.
    let mut bad = body.clone();
    bad.as_object_mut().unwrap().remove("private_key");
    bad["password"] = json!("not-the-password");
    bad["prefix"] = json!(target.path().join("other"));
    let j = push(&admin, bad);
    let (step, detail) = failed_step(&j);
    assert_eq!(step, "login", "{j}");
    assert!(detail.contains("login as root failed"), "{detail}");
    assert!(!target.path().join("other").exists());
}

#[test]
fn ssh_push_refuses_bad_input_and_unreachable_hosts() {
    let s = TestServer::start();
    let admin = s.admin();
    for (field, value) in [
        ("address", json!("-oProxyCommand=touch /tmp/pwned")),
        ("address", json!("host;id")),
        ("user", json!("root;id")),
        ("user", json!("-l")),
        ("prefix", json!("/opt/$(id)")),
        ("data_dir", json!("/var/../etc")),
    ] {
        let mut b = json!({"address": "127.0.0.1", "user": "root", "password": "x"});
        b[field] = value.clone();
        let a = admin.post("/api/v1/hosts/ssh-push", &b);
        assert_eq!(
            (a.status, a.body["error"]["details"]["field"].as_str()),
            (422, Some(field)),
            "{value}: {}",
            a.text
        );
    }
    assert!(!Path::new("/tmp/pwned").exists());
    let a = admin.post(
        "/api/v1/hosts/ssh-push",
        &json!({"address": "127.0.0.1", "user": "root"}),
    );
    assert_eq!(a.status, 422, "credentials are required");
    // Nothing listens there.
    let j = push(
        &admin,
        json!({"address": "127.0.0.1", "port": free_port(), "user": "root", "password": "x"}),
    );
    let (step, detail) = failed_step(&j);
    assert_eq!(step, "connect");
    assert!(detail.contains("cannot reach"), "{detail}");
    let viewer = user_with_role(&s, &admin, "vik", "viewer");
    assert_eq!(
        viewer
            .post(
                "/api/v1/hosts/ssh-push",
                &json!({"address": "127.0.0.1", "user": "root", "password": "x"})
            )
            .status,
        403
    );
}

#[test]
fn csv_import_validates_every_row_before_pushing() {
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
        ],
        None,
    );
    let admin = s.admin();
    let (dir, key) = keys();
    let port = free_port();
    let _server = sshd(dir.path(), port);
    let target = tempfile::tempdir().unwrap();
    let (prefix, data) = (target.path().join("opt"), target.path().join("data"));

    // One bad row: the whole import is refused with per-row errors, nothing starts.
    let csv = format!(
        "address,port,user,labels,groups,prefix,data_dir\n127.0.0.1,{port},root,role=db,imported,{p},{d}\n-oProxyCommand=x,22,root,,,,\n",
        p = prefix.display(),
        d = data.display()
    );
    let a = admin.post(
        "/api/v1/hosts/import",
        &json!({"csv": csv, "private_key": key}),
    );
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(
        (a.body["valid"].as_u64(), a.body["invalid"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(a.body["rows"][1]["line"], 3);
    assert_eq!(a.body["rows"][1]["errors"][0]["field"], "address");
    assert_eq!(admin.get("/api/v1/hosts/ssh-push").body["items"], json!([]));
    let a = admin.post(
        "/api/v1/hosts/import",
        &json!({"csv": "address,colour\n1,2\n"}),
    );
    assert_eq!(
        (a.status, a.body["error"]["details"]["field"].as_str()),
        (422, Some("csv"))
    );

    // Valid: a dry run only reports; the real run pushes.
    let csv = format!(
        "address,port,user,labels,groups,prefix,data_dir\n127.0.0.1,{port},root,role=db,imported,{},{}\n",
        prefix.display(),
        data.display()
    );
    let a = admin.post(
        "/api/v1/hosts/import",
        &json!({"csv": csv, "private_key": key, "dry_run": true}),
    );
    assert_eq!(
        (a.status, a.body["valid"].as_u64()),
        (200, Some(1)),
        "{}",
        a.text
    );
    assert_eq!(admin.get("/api/v1/hosts/ssh-push").body["items"], json!([]));
    let a = admin.post(
        "/api/v1/hosts/import",
        &json!({"csv": csv, "private_key": key}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["pushes"][0]["id"].as_u64().unwrap();
    let j = eventually(120, || {
        let j = admin.get(&format!("/api/v1/hosts/ssh-push/{id}")).body;
        (j["state"] != "running").then_some(j)
    })
    .unwrap();
    let _ = Command::new("pkill")
        .arg("-f")
        .arg(prefix.join("bin/omp"))
        .status();
    assert_eq!(j["state"], "ok", "{j}");
    let hosts = admin.get("/api/v1/hosts?group=imported").body;
    assert_eq!(hosts["items"][0]["labels"]["role"], "db", "{hosts}");
}
