//! Hosts and agents (issue 3): real agents as separate processes enroll with the real
//! server over pinned TLS, report inventory, go offline and come back, run commands.

use serde_json::{Value, json};

use crate::util::*;

/// A server whose agents heartbeat every second (offline after three missed ones).
fn server() -> TestServer {
    TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
        ],
        None,
    )
}

pub(crate) fn token(admin: &Client, body: Value) -> Value {
    let a = admin.post("/api/v1/hosts/enroll-tokens", &body);
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

/// Enrolls a new agent in `groups` and waits until it is connected; returns it and its host id.
pub(crate) fn enrolled(s: &TestServer, admin: &Client, groups: &[&str]) -> (AgentProc, u64) {
    let t = token(admin, json!({"ttl_minutes": 5, "groups": groups}));
    let agent = AgentProc::start(s, Some(t["token"].as_str().unwrap()), None);
    assert!(
        agent.wait_for("Enrolled."),
        "agent did not enroll:\n{}",
        agent.log()
    );
    let id = host_by_token(admin, t["id"].as_str().unwrap());
    (agent, id)
}

pub(crate) fn host_by_token(admin: &Client, token_id: &str) -> u64 {
    let list = admin.get("/api/v1/hosts/enroll-tokens").body;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id)
        .unwrap()["used_by_host"]
        .as_u64()
        .unwrap()
}

fn status(admin: &Client, id: u64) -> String {
    admin.get(&format!("/api/v1/hosts/{id}")).body["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn run(c: &Client, body: Value) -> Value {
    let a = c.post("/api/v1/exec", &body);
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_u64().unwrap();
    eventually(60, || {
        let j = c.get(&format!("/api/v1/exec/{id}")).body;
        (j["state"] != "running").then_some(j)
    })
    .expect("job finished")
}

#[test]
fn enrollment_inventory_and_one_time_tokens() {
    let s = server();
    let admin = s.admin();
    let t = token(
        &admin,
        json!({"ttl_minutes": 5, "labels": {"role": "web"}, "groups": ["web"]}),
    );
    assert!(t["command"].as_str().unwrap().contains("--pinnedpubkey"));
    let secret = t["token"].as_str().unwrap().to_string();
    let agent = AgentProc::start(&s, Some(&secret), None);
    assert!(agent.wait_for("Enrolled."), "{}", agent.log());
    let id = host_by_token(&admin, t["id"].as_str().unwrap());
    let h = admin.get(&format!("/api/v1/hosts/{id}")).body;
    assert_eq!(h["status"], "online", "{h}");
    assert_eq!(h["labels"]["role"], "web");
    assert_eq!(h["groups"], json!(["web"]));
    assert!(
        h["cpus"].as_u64().unwrap() >= 1 && h["memory_bytes"].as_u64().unwrap() > 0,
        "{h}"
    );
    assert!(!h["kernel"].as_str().unwrap().is_empty());
    assert_eq!(h["agent_version"], omp::VERSION);
    // The credential file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(agent.dir.path().join("agent.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The same token again: refused, and the agent says why and stops.
    let mut again = AgentProc::start(&s, Some(&secret), None);
    assert_eq!(again.wait_exit(), Some(1));
    assert!(again.log().contains("already used"), "{}", again.log());

    // An expired token.
    let t = token(&admin, json!({"ttl_seconds": 1}));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut late = AgentProc::start(&s, Some(t["token"].as_str().unwrap()), None);
    assert_eq!(late.wait_exit(), Some(1));
    assert!(late.log().contains("expired"), "{}", late.log());

    // A damaged token never reaches the network.
    let mut bad = AgentProc::start(&s, Some("OMP1.nope"), None);
    assert_eq!(bad.wait_exit(), Some(1));
    assert!(
        bad.log().contains("not an OMP enrollment token") || bad.log().contains("damaged"),
        "{}",
        bad.log()
    );

    // Every enrollment attempt is audited.
    let audit = admin.get("/api/v1/audit?action=hosts.enroll").body;
    assert_eq!(audit["total"], 3, "{audit}");
}

#[test]
fn agent_refuses_a_server_with_another_key() {
    let s = server();
    let admin = s.admin();
    let t = token(&admin, json!({"ttl_minutes": 5}));
    let real = t["token"].as_str().unwrap();
    // Same secret, pin of some other certificate.
    let parts: Vec<&str> = real.split('.').collect();
    let forged = format!("OMP1.{}.{}", "0".repeat(64), parts[2]);
    let mut agent = AgentProc::start(&s, Some(&forged), None);
    assert_eq!(agent.wait_exit(), Some(1));
    assert!(
        agent.log().contains("does not match the pinned"),
        "{}",
        agent.log()
    );
    // The token was not spent on the impostor connection.
    let list = admin.get("/api/v1/hosts/enroll-tokens").body;
    assert!(list["items"][0]["used_at"].is_null(), "{list}");
}

#[test]
fn offline_detection_and_reconnect() {
    let s = server();
    let admin = s.admin();
    let (agent, id) = enrolled(&s, &admin, &[]);
    assert_eq!(status(&admin, id), "online");
    // A crashed agent goes offline within three heartbeats (1 s each here).
    let dir = agent.into_dir();
    let t0 = std::time::Instant::now();
    eventually(10, || (status(&admin, id) == "offline").then_some(())).expect("offline");
    assert!(
        t0.elapsed().as_secs() < 6,
        "offline after {:?}",
        t0.elapsed()
    );
    // Restarted from its state (no token): the same host comes back.
    let agent = AgentProc::start(&s, None, Some(dir));
    assert!(
        agent.wait_for("Connected to the server."),
        "{}",
        agent.log()
    );
    assert_eq!(status(&admin, id), "online");
    assert_eq!(admin.get("/api/v1/hosts").body["total"], 1);

    // A server restart: the agent reconnects on its own (jittered backoff).
    let sdir = s.stop();
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
        ],
        Some(sdir),
    );
    // The new server listens on another port: a real deployment keeps its port. Point a
    // restarted agent at it to check the stored credential still works.
    let agent_dir = agent.into_dir();
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(agent_dir.path().join("agent.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["host_id"], id);
    let agent = AgentProc::start(&s, None, Some(agent_dir));
    assert!(
        agent.wait_for("Connected to the server."),
        "{}",
        agent.log()
    );
    let admin = s.admin();
    assert_eq!(status(&admin, id), "online");
}

#[test]
fn exec_fan_out_timeouts_cancel_and_a_killed_agent() {
    let s = server();
    let admin = s.admin();
    let (_a1, h1) = enrolled(&s, &admin, &["g"]);
    let (mut a2, h2) = enrolled(&s, &admin, &["g"]);
    let (_a3, h3) = enrolled(&s, &admin, &["other"]);

    // Fan-out by group; argv is never a shell: metacharacters arrive literally.
    let j = run(
        &admin,
        json!({"argv": ["echo", "$(id)", ";", "|", "-rf"], "targets": {"groups": ["g"]}}),
    );
    assert_eq!(j["hosts_total"], 2, "{j}");
    for h in j["hosts"].as_array().unwrap() {
        assert_eq!(h["state"], "ok", "{h}");
        assert_eq!(h["stdout"], "$(id) ; | -rf\n");
        assert_eq!(h["exit_code"], 0);
    }
    // Exit codes and failures.
    let j = run(
        &admin,
        json!({"argv": ["sh", "-c", "echo oops >&2; exit 3"], "targets": {"hosts": [h3]}}),
    );
    assert_eq!(
        (
            j["hosts"][0]["state"].as_str(),
            j["hosts"][0]["exit_code"].as_u64()
        ),
        (Some("failed"), Some(3))
    );
    assert_eq!(j["hosts"][0]["stderr"], "oops\n");
    // Timeout.
    let j = run(
        &admin,
        json!({"argv": ["sleep", "30"], "targets": {"hosts": [h3]}, "timeout_secs": 1}),
    );
    assert_eq!(j["hosts"][0]["state"], "timeout", "{j}");
    // Unbounded output is cut with a marker, memory bounded.
    let j = run(
        &admin,
        json!({"argv": ["seq", "1", "200000"], "targets": {"hosts": [h3]}}),
    );
    let out = j["hosts"][0]["stdout"].as_str().unwrap();
    assert!(
        out.len() <= 64 * 1024 && out.starts_with("1\n2\n"),
        "{}",
        out.len()
    );
    assert_eq!(j["hosts"][0]["truncated"], true);

    // A long job on both g hosts; one agent is killed mid-run, the other is cancelled.
    let a = admin.post(
        "/api/v1/exec",
        &json!({"argv": ["sleep", "30"], "targets": {"hosts": [h1, h2]}}),
    );
    let id = a.body["id"].as_u64().unwrap();
    eventually(10, || {
        let j = admin.get(&format!("/api/v1/exec/{id}")).body;
        j["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["state"] == "running")
            .then_some(())
    })
    .expect("both running");
    a2.kill();
    let j = eventually(10, || {
        let j = admin.get(&format!("/api/v1/exec/{id}")).body;
        let h = j["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host_id"] == h2)
            .unwrap()
            .clone();
        (h["state"] == "error").then_some(j)
    })
    .expect("killed agent's run fails");
    assert_eq!(j["state"], "running", "the other host still runs");
    let c = admin.post(&format!("/api/v1/exec/{id}/cancel"), &json!({}));
    assert_eq!(c.status, 200, "{}", c.text);
    let j = eventually(10, || {
        let j = admin.get(&format!("/api/v1/exec/{id}")).body;
        (j["state"] != "running").then_some(j)
    })
    .expect("cancelled");
    assert_eq!(j["state"], "cancelled", "{j}");
    let h = j["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host_id"] == h1)
        .unwrap()
        .clone();
    assert_eq!(h["state"], "cancelled");

    // An offline host is reported, not waited for.
    let j = run(
        &admin,
        json!({"argv": ["true"], "targets": {"hosts": [h2]}}),
    );
    assert_eq!(j["hosts"][0]["state"], "offline");
    // History, newest first, and the audit trail names the command.
    let hist = admin.get("/api/v1/exec").body;
    assert!(hist["total"].as_u64().unwrap() >= 6, "{hist}");
    assert_eq!(hist["items"][0]["argv"], json!(["true"]));
    let audit = admin.get("/api/v1/audit?action=exec.run&q=seq").body;
    assert_eq!(audit["total"], 1, "{audit}");
}

#[test]
fn exec_permissions_and_group_scoping() {
    let s = server();
    let admin = s.admin();
    let (_a, ha) = enrolled(&s, &admin, &["a"]);
    let (_b, hb) = enrolled(&s, &admin, &["b"]);
    let viewer = user_with_role(&s, &admin, "vic", "viewer");
    assert_eq!(viewer.get("/api/v1/hosts").body["total"], 2);
    let a = viewer.post(
        "/api/v1/exec",
        &json!({"argv": ["id"], "targets": {"all": true}}),
    );
    assert_eq!(a.status, 403);
    assert_eq!(viewer.get(&format!("/api/v1/hosts/{ha}")).status, 200);
    assert_eq!(
        viewer
            .put(&format!("/api/v1/hosts/{ha}"), &json!({"labels": {}}))
            .status,
        403
    );

    let r = admin.post(
        "/api/v1/roles",
        &json!({"name": "a-ops", "permissions": ["hosts:read", "exec:run"], "host_groups": ["a"]}),
    );
    assert_eq!(r.status, 201);
    let scoped = user_with_role(&s, &admin, "ann", "a-ops");
    let list = scoped.get("/api/v1/hosts").body;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["id"], ha);
    // Group b is invisible: explicit targeting says not found, "all" means all of group a.
    let a = scoped.post(
        "/api/v1/exec",
        &json!({"argv": ["id"], "targets": {"hosts": [hb]}}),
    );
    assert_eq!(a.status, 404, "{}", a.text);
    let j = run(
        &scoped,
        json!({"argv": ["id", "-u"], "targets": {"all": true}}),
    );
    assert_eq!(j["hosts_total"], 1);
    assert_eq!(j["hosts"][0]["host_id"], ha);
    // Shell command lines need exec:shell.
    let a = scoped.post(
        "/api/v1/exec",
        &json!({"command": "id; id", "targets": {"all": true}}),
    );
    assert_eq!(
        (a.status, a.body["error"]["details"]["permission"].as_str()),
        (403, Some("exec:shell"))
    );
    let j = run(
        &admin,
        json!({"command": "echo $((6*7))", "targets": {"hosts": [ha]}}),
    );
    assert_eq!(j["hosts"][0]["stdout"], "42\n");
    // Bad requests.
    for (body, field) in [
        (json!({"argv": [], "targets": {"all": true}}), "argv"),
        (json!({"argv": ["x"], "targets": {}}), "targets"),
        (
            json!({"argv": ["x"], "command": "x", "targets": {"all": true}}),
            "argv",
        ),
        (
            json!({"argv": ["x"], "targets": {"all": true}, "timeout_secs": 0}),
            "timeout_secs",
        ),
    ] {
        let a = admin.post("/api/v1/exec", &body);
        assert_eq!(
            (a.status, a.body["error"]["details"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {}",
            a.text
        );
    }
}

#[test]
fn labels_groups_maintenance_and_delete() {
    let s = server();
    let admin = s.admin();
    let (mut agent, id) = enrolled(&s, &admin, &[]);
    let a = admin.put(
        &format!("/api/v1/hosts/{id}"),
        &json!({"labels": {"env": "prod"}, "groups": ["db", "db"]}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["groups"], json!(["db"]));
    assert_eq!(admin.get("/api/v1/hosts?label=env=prod").body["total"], 1);
    assert_eq!(admin.get("/api/v1/hosts?label=env=dev").body["total"], 0);
    assert_eq!(
        admin.get("/api/v1/host-groups").body["items"],
        json!([{"name": "db", "hosts": 1}])
    );
    for bad in [
        json!({"labels": {"-x": "1"}}),
        json!({"groups": ["a b"]}),
        json!({"labels": {"k": "v\u{0007}"}}),
    ] {
        assert_eq!(
            admin.put(&format!("/api/v1/hosts/{id}"), &bad).status,
            422,
            "{bad}"
        );
    }
    let m = admin.put(
        &format!("/api/v1/hosts/{id}/maintenance"),
        &json!({"reason": "disk swap"}),
    );
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(m.body["maintenance"]["by"], "admin");
    assert_eq!(
        admin
            .put(
                &format!("/api/v1/hosts/{id}/maintenance"),
                &json!({"reason": ""})
            )
            .status,
        422
    );
    assert!(
        admin
            .delete(&format!("/api/v1/hosts/{id}/maintenance"))
            .body["maintenance"]
            .is_null()
    );
    let g = admin.put(
        "/api/v1/maintenance",
        &json!({"enabled": true, "reason": "upgrade", "until": "2099-01-01T00:00:00Z"}),
    );
    assert_eq!(g.body["reason"], "upgrade", "{}", g.text);
    assert_eq!(admin.get("/api/v1/maintenance").body["enabled"], true);
    assert_eq!(
        admin
            .put("/api/v1/maintenance", &json!({"enabled": false}))
            .body["enabled"],
        false
    );

    // Deleting the host revokes the agent: it is told, forgets its credential and stops.
    assert_eq!(admin.delete(&format!("/api/v1/hosts/{id}")).status, 204);
    assert_eq!(agent.wait_exit(), Some(1));
    assert!(agent.log().contains("revoked"), "{}", agent.log());
    assert!(!agent.dir.path().join("agent.json").exists());
    assert_eq!(admin.get(&format!("/api/v1/hosts/{id}")).status, 404);
}

#[test]
fn one_line_install_command_enrolls_a_host() {
    let s = server();
    let admin = s.admin();
    let t = token(&admin, json!({"ttl_minutes": 5, "groups": ["oneline"]}));
    let command = t["command"].as_str().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .env("OMP_AGENT_PREFIX", root.path().join("prefix"))
        .env("OMP_AGENT_DATA_DIR", root.path().join("data"))
        .env("OMP_AGENT_FOREGROUND", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let found = eventually(60, || {
        let list = admin.get("/api/v1/hosts?group=oneline").body;
        (list["items"][0]["status"] == "online").then(|| list["items"][0]["id"].as_u64().unwrap())
    });
    let _ = child.kill();
    let _ = child.wait();
    let id = found.expect("the host enrolled by the one-line command comes online");
    assert!(root.path().join("prefix/bin/omp").exists());
    // The binary download needs a valid enrollment token.
    let a = s.client().send(
        "GET",
        "/api/agent/v1/binary",
        None,
        &[("authorization", "Enroll 00")],
    );
    assert_eq!(a.status, 401);
    let used = t["token"].as_str().unwrap();
    let a = s.client().send(
        "GET",
        "/api/agent/v1/binary",
        None,
        &[("authorization", &format!("Enroll {used}"))],
    );
    assert_eq!(
        a.status, 401,
        "a used token cannot download the agent any more"
    );
    // The installed agent is killed with the shell; the host goes offline.
    let _ = std::process::Command::new("pkill")
        .arg("-f")
        .arg(root.path().join("prefix/bin/omp"))
        .status();
    eventually(10, || (status(&admin, id) == "offline").then_some(()))
        .expect("offline after the agent stops");
}

#[test]
fn file_transfer_checksums_limits_and_bad_paths() {
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
            ("OMP_FILES__MAX_BYTES", "100000"),
        ],
        None,
    );
    let admin = s.admin();
    let (_agent, id) = enrolled(&s, &admin, &[]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app.conf");
    let target_s = target.to_str().unwrap().to_string();
    let content: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let q = |p: &str, extra: &str| {
        format!(
            "/api/v1/hosts/{id}/files?path={}{extra}",
            p.replace('/', "%2F")
        )
    };

    let a = admin.send_raw("PUT", &q(&target_s, "&mode=0600"), content.clone(), &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["size"], 70_000);
    assert_eq!(std::fs::read(&target).unwrap(), content);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sha = a.body["sha256"].as_str().unwrap().to_string();

    // Downloaded back, byte for byte, with the checksum in a header.
    let d = admin.send(
        "POST",
        &format!("/api/v1/hosts/{id}/files/download"),
        Some(&json!({"path": target_s})),
        &[],
    );
    assert_eq!(d.status, 200);
    assert_eq!(
        d.headers.get("x-content-sha256").unwrap().to_str().unwrap(),
        sha
    );

    // A damaged upload (checksum header mismatch) changes nothing.
    let a = admin.send_raw(
        "PUT",
        &q(&target_s, ""),
        b"evil".to_vec(),
        &[("x-content-sha256", &"0".repeat(64))],
    );
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(std::fs::read(&target).unwrap(), content);

    // Bad paths never reach the disk.
    for (path, code) in [
        (format!("{}/../escape", dir.path().display()), 422),
        ("relative/file".to_string(), 422),
        (format!("{}/no/such/dir/f", dir.path().display()), 409),
    ] {
        let a = admin.send_raw("PUT", &q(&path, ""), b"x".to_vec(), &[]);
        assert_eq!(a.status, code, "{path}: {}", a.text);
    }
    assert!(!dir.path().parent().unwrap().join("escape").exists());
    let a = admin.send(
        "POST",
        &format!("/api/v1/hosts/{id}/files/download"),
        Some(&json!({"path": dir.path()})),
        &[],
    );
    assert_eq!(a.status, 409);
    assert!(a.text.contains("not a regular file"), "{}", a.text);

    // Size limits both ways.
    let a = admin.send_raw("PUT", &q(&target_s, ""), vec![0u8; 100_001], &[]);
    assert_eq!(a.status, 413, "{}", a.text);
    let big = dir.path().join("big");
    std::fs::write(&big, vec![1u8; 100_001]).unwrap();
    let a = admin.send(
        "POST",
        &format!("/api/v1/hosts/{id}/files/download"),
        Some(&json!({"path": big})),
        &[],
    );
    assert_eq!(a.status, 409);
    assert!(a.text.contains("more than the limit"), "{}", a.text);
    // Unknown owners are refused after writing nothing.
    let a = admin.send_raw(
        "PUT",
        &q(
            &format!("{}/owned", dir.path().display()),
            "&owner=no-such-user",
        ),
        b"x".to_vec(),
        &[],
    );
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(!dir.path().join("owned").exists());

    // Permission and audit.
    let viewer = user_with_role(&s, &admin, "val", "viewer");
    assert_eq!(
        viewer
            .send_raw("PUT", &q(&target_s, ""), b"x".to_vec(), &[])
            .status,
        403
    );
    let audit = admin.get("/api/v1/audit?action=files.").body;
    assert!(audit["total"].as_u64().unwrap() >= 8, "{audit}");
}
