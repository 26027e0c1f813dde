//! Foundation (issue 2): first start, login, CSRF, throttling, tokens, RBAC matrix from the
//! OpenAPI document, audit chain verification, UI assets, CLI and bad input.

use serde_json::{Value, json};

use crate::util::*;

#[test]
fn first_start_generates_a_password_that_must_be_changed() {
    let s = TestServer::start_with(&[], None);
    // The banner is printed before the ready line, but read by another thread: wait for it.
    let out = eventually(10, || {
        let out = s.stdout.lock().unwrap().clone();
        out.contains("password: ").then_some(out)
    })
    .unwrap_or_default();
    let pw = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {out}"))
        .to_string();
    let file = s.data_dir().join("initial-admin-password");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), pw);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The password never reaches the log.
    assert!(!s.stderr.lock().unwrap().contains(&pw));

    let mut c = s.client();
    let (st, body) = c.login("admin", &pw);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["must_change_password"], true);
    let a = c.get("/api/v1/users");
    assert_eq!(a.status, 403);
    assert_eq!(a.body["error"]["code"], "password_change_required");
    let a = c.post(
        "/api/v1/auth/password",
        &json!({"current_password": pw, "new_password": "short"}),
    );
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.body["error"]["details"]["field"], "new_password");
    let a = c.post(
        "/api/v1/auth/password",
        &json!({"current_password": pw, "new_password": "Brand-new-pass-1"}),
    );
    assert_eq!(a.status, 204, "{}", a.text);
    assert_eq!(c.get("/api/v1/users").status, 200);

    // A restart of the same data dir prints no password and keeps the new one.
    let dir = s.stop();
    let s = TestServer::start_with(&[], Some(dir));
    assert!(!s.stdout.lock().unwrap().contains("password:"));
    let mut c = s.client();
    assert_eq!(c.login("admin", "Brand-new-pass-1").0, 200);
    assert_eq!(s.client().login("admin", &pw).0, 401);
}

#[test]
fn weak_admin_password_from_env_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = TestServer::try_start(&[("OMP_ADMIN_PASSWORD", "abc")], dir)
        .err()
        .expect("must fail");
    assert!(err.0.contains("OMP_ADMIN_PASSWORD"), "{}", err.0);
    assert!(!err.0.contains("panicked"), "{}", err.0);
}

#[test]
fn login_sessions_and_csrf() {
    let s = TestServer::start();
    let mut c = s.client();
    let (st, b) = c.login("admin", "wrong-password");
    assert_eq!(st, 401);
    assert_eq!(b["error"]["code"], "invalid_credentials");
    let (st, b) = c.login("nobody", "wrong-password");
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );

    let mut c = s.admin();
    let login = c.post(
        "/api/v1/auth/login",
        &json!({"username": "admin", "password": ADMIN_PASSWORD}),
    );
    let cookie = login
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let me = c.get("/api/v1/auth/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["csrf_token"], c.csrf.clone().unwrap().as_str());

    let new_user = json!({"username": "carol", "password": "Carol-pass-123", "roles": ["viewer"]});
    let good_csrf = c.csrf.take();
    let a = c.post("/api/v1/users", &new_user);
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    c.csrf = Some("0".repeat(64));
    let a = c.post("/api/v1/users", &new_user);
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    c.csrf = good_csrf;
    let a = c.post("/api/v1/users", &new_user);
    assert_eq!(a.status, 201, "{}", a.text);
    // Reads need no CSRF token.
    let mut reader = c.clone();
    reader.csrf = None;
    assert_eq!(reader.get("/api/v1/users?q=carol").body["total"], 1);

    // A forged cookie is not a session.
    let mut forged = s.client();
    forged.cookie = Some("f".repeat(64));
    assert_eq!(forged.get("/api/v1/auth/me").status, 401);

    // Logout ends the session.
    assert_eq!(c.post("/api/v1/auth/logout", &json!({})).status, 204);
    let a = c.get("/api/v1/auth/me");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // Sign out everywhere ends every session of the user.
    let c1 = s.admin();
    let c2 = s.admin();
    assert_eq!(
        c1.post("/api/v1/auth/sessions/revoke-all", &json!({}))
            .status,
        204
    );
    assert_eq!(c2.get("/api/v1/auth/me").status, 401);
}

#[test]
fn login_throttling_per_user() {
    let s = TestServer::start();
    let mut c = s.client();
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(c.login("admin", "Wrong-pass-999").0);
    }
    assert_eq!(codes, vec![401, 401, 401, 401, 429]);
    // Even the right password is refused while locked, with the wait in body and header.
    let a = c.post(
        "/api/v1/auth/login",
        &json!({"username": "admin", "password": ADMIN_PASSWORD}),
    );
    assert_eq!(a.status, 429);
    let secs = a.body["error"]["details"]["retry_after_secs"]
        .as_u64()
        .unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
    assert_eq!(
        a.headers.get("retry-after").unwrap().to_str().unwrap(),
        secs.to_string()
    );
    // Every attempt is in the audit log: a fresh admin session cannot be made now, so check
    // with the CLI after stopping.
    let dir = s.stop();
    let out = omp(
        &["audit", "export", "--format", "json"],
        &dir.path().join("data"),
    );
    assert!(out.status.success());
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let failures = records
        .iter()
        .filter(|r| r["action"] == "auth.login" && r["result"] == "failure")
        .count();
    assert_eq!(failures, 6, "{records:?}");
}

#[test]
fn api_tokens_bearer_and_basic() {
    let s = TestServer::start();
    let admin = s.admin();
    let a = admin.post(
        "/api/v1/tokens",
        &json!({"name": "ci", "expires_in_days": 30}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let token = a.body["token"].as_str().unwrap().to_string();
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("omp_"));
    // The list never shows the secret again.
    let list = admin.get("/api/v1/tokens");
    assert!(!list.text.contains(&token));
    assert_eq!(list.body["items"][0]["name"], "ci");

    let bearer = Client::with_token(&s.base, &token);
    assert_eq!(bearer.get("/api/v1/users").status, 200);
    // Token requests need no CSRF token.
    let a = bearer.post(
        "/api/v1/users",
        &json!({"username": "dave", "password": "Dave-pass-123", "roles": ["operator"]}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let mut basic = s.client();
    basic.basic = Some(token.clone());
    assert_eq!(basic.get("/api/v1/auth/me").body["username"], "admin");

    assert_eq!(admin.delete(&format!("/api/v1/tokens/{id}")).status, 204);
    let a = bearer.get("/api/v1/users");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let bogus = Client::with_token(&s.base, "omp_0000");
    assert_eq!(bogus.get("/api/v1/auth/me").status, 401);
}

/// Every mutating route of the OpenAPI document (so also routes added later) is refused to
/// anonymous callers, and to viewers unless the viewer role holds its permission.
#[test]
fn authorization_matrix_from_openapi() {
    let s = TestServer::start();
    let admin = s.admin();
    let viewer = user_with_role(&s, &admin, "vera", "viewer");
    let viewer_perms: Vec<String> = viewer.get("/api/v1/auth/me").body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let doc = s.client().get("/api/openapi.json").body;
    let paths = doc["paths"].as_object().expect("paths");
    let anon = s.client();
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let access = op["x-omp-access"].as_str().unwrap();
            let concrete = path.replace("{id}", "1").replace("{name}", "custom");
            let m = method.to_uppercase();
            let body = json!({});
            if access == "public" {
                continue;
            }
            let a = anon.send(&m, &concrete, Some(&body), &[]);
            assert_eq!(a.status, 401, "anonymous {m} {path}: {}", a.text);
            if let Some(perm) = op["x-omp-permission"].as_str() {
                let a = viewer.send(&m, &concrete, Some(&body), &[]);
                if viewer_perms.iter().any(|p| p == perm) {
                    assert_ne!(a.status, 403, "viewer {m} {path} holds {perm}: {}", a.text);
                } else {
                    assert_eq!(a.status, 403, "viewer {m} {path} lacks {perm}: {}", a.text);
                    assert_eq!(a.body["error"]["details"]["permission"], perm);
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} routes checked");
    // Every mutation attempt, refused or not, is in the audit log.
    let refused = admin
        .get("/api/v1/audit?actor=anonymous&result=failure&page_size=1")
        .body["total"]
        .as_u64()
        .unwrap();
    let mutating = paths
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .filter(|op| op["x-omp-audited"] == true && op["x-omp-access"] != "public")
        .count() as u64;
    assert_eq!(refused, mutating);
}

#[test]
fn openapi_lists_every_route_of_the_table() {
    let s = TestServer::start();
    let doc = s.client().get("/api/openapi.json").body;
    let defs = omp::api::routes::definitions();
    for d in &defs {
        let op = &doc["paths"][d.path][d.method.as_str().to_lowercase()];
        assert_eq!(
            op["operationId"], d.action,
            "{} {} missing from the OpenAPI document",
            d.method, d.path
        );
    }
    let ops: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|o| o.as_object().unwrap().len())
        .sum();
    assert_eq!(ops, defs.len());
}

#[test]
fn audit_chain_verify_detects_tampering() {
    let s = TestServer::start();
    let admin = s.admin();
    for name in ["ann", "ben", "cid"] {
        let a = admin.post(
            "/api/v1/users",
            &json!({"username": name, "password": "Some-pass-123", "roles": ["viewer"]}),
        );
        assert_eq!(a.status, 201);
    }
    let v = admin.get("/api/v1/audit/verify").body;
    assert_eq!(v["ok"], true, "{v}");
    let found = admin.get("/api/v1/audit?q=ben&action=users.create").body;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["actor"], "admin");
    assert_eq!(found["items"][0]["source"], "127.0.0.1");
    let csv = admin.get("/api/v1/audit/export?format=csv&action=users.create");
    assert!(
        csv.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(csv.text.lines().count(), 4, "{}", csv.text);
    let dir = s.stop();
    let data = dir.path().join("data");

    let out = omp(&["audit", "verify"], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Edit one record behind OMP's back.
    {
        let store = omp::store::Store::open(&data).unwrap();
        let mut r: omp::model::AuditRecord = store
            .read(|tx| tx.get_u64(&omp::store::AUDIT, 3))
            .unwrap()
            .unwrap();
        r.target = "someone-else".into();
        store
            .write(|tx| tx.put_u64(&omp::store::AUDIT, 3, &r))
            .unwrap();
    }
    let out = omp(&["audit", "verify"], &data);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BROKEN at record 3"), "{err}");
}

#[test]
fn bad_requests_get_clear_errors() {
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_SERVER__MAX_BODY_BYTES", "4096"),
        ],
        None,
    );
    let admin = s.admin();
    let big = json!({"username": "x".repeat(10_000), "password": "y"});
    let a = admin.post("/api/v1/users", &big);
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{}",
        a.text
    );
    let a = admin.send(
        "POST",
        "/api/v1/users",
        None,
        &[("content-type", "application/json")],
    );
    assert_eq!(a.body["error"]["code"], "invalid_json", "{}", a.text);
    let a = admin.send("POST", "/api/v1/users", None, &[]);
    assert_eq!(
        a.body["error"]["code"], "unsupported_media_type",
        "{}",
        a.text
    );
    let a = admin.post(
        "/api/v1/users",
        &json!({"username": "ok", "password": "Ok-pass-1234", "rolez": []}),
    );
    assert_eq!(a.body["error"]["code"], "invalid_json");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rolez"),
        "{}",
        a.text
    );
    let a = admin.post(
        "/api/v1/users",
        &json!({"username": "-bad", "password": "Ok-pass-1234"}),
    );
    assert_eq!(
        (a.status, a.body["error"]["details"]["field"].as_str()),
        (422, Some("username"))
    );
    let a = admin.post(
        "/api/v1/users",
        &json!({"username": "ok", "password": "Ok-pass-1234", "roles": ["wizard"]}),
    );
    assert_eq!(a.status, 422);
    assert!(a.text.contains("unknown role wizard"));
    let a = admin.get("/api/v1/users/not-a-number");
    assert_eq!(a.status, 404);
    let a = admin.get("/api/v1/users?page=0");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let a = admin.get("/api/v1/no-such-route");
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let a = admin.send("PATCH", "/api/v1/users", Some(&json!({})), &[]);
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{}",
        a.text
    );
    // The last administrator cannot be demoted.
    let me = admin.get("/api/v1/auth/me").body;
    let a = admin.put(
        &format!("/api/v1/users/{}", me["id"]),
        &json!({"roles": ["viewer"]}),
    );
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (409, Some("refused")),
        "{}",
        a.text
    );
    // Nothing was lost along the way.
    assert_eq!(admin.get("/api/v1/users").body["total"], 1);
    assert!(!s.stderr.lock().unwrap().contains("panicked"));
}

#[test]
fn roles_custom_lifecycle() {
    let s = TestServer::start();
    let admin = s.admin();
    let a = admin.post(
        "/api/v1/roles",
        &json!({"name": "dba", "permissions": ["hosts:read", "exec:run"], "host_groups": ["db"]}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let a = admin.post(
        "/api/v1/roles",
        &json!({"name": "bad", "permissions": ["fly:away"]}),
    );
    assert_eq!(a.status, 422);
    assert!(a.text.contains("fly:away"));
    let a = admin.put("/api/v1/roles/viewer", &json!({"permissions": []}));
    assert_eq!(a.status, 409);
    let dba = user_with_role(&s, &admin, "dana", "dba");
    let perms = dba.get("/api/v1/auth/me").body["permissions"].clone();
    assert_eq!(perms, json!(["exec:run", "hosts:read"]));
    // A held role cannot be deleted.
    let a = admin.delete("/api/v1/roles/dba");
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(a.text.contains("dana"));
    let roles = admin.get("/api/v1/roles").body;
    let names: Vec<&str> = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["admin", "operator", "viewer", "dba"]);
}

#[test]
fn user_admin_disable_reset_delete() {
    let s = TestServer::start();
    let admin = s.admin();
    let erin = user_with_role(&s, &admin, "erin", "operator");
    let id = admin.get("/api/v1/users?q=erin").body["items"][0]["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        admin
            .put(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
            .status,
        200
    );
    assert_eq!(
        erin.get("/api/v1/auth/me").status,
        401,
        "disabling ends sessions"
    );
    assert_eq!(s.client().login("erin", "Fresh-pass-456").0, 401);
    assert_eq!(
        admin
            .put(&format!("/api/v1/users/{id}"), &json!({"disabled": false}))
            .status,
        200
    );
    assert_eq!(
        admin
            .post(
                &format!("/api/v1/users/{id}/password"),
                &json!({"new_password": "Reset-pass-789"})
            )
            .status,
        204
    );
    let mut c = s.client();
    let (st, b) = c.login("erin", "Reset-pass-789");
    assert_eq!((st, b["must_change_password"].as_bool()), (200, Some(true)));
    assert_eq!(admin.delete(&format!("/api/v1/users/{id}")).status, 204);
    assert_eq!(c.get("/api/v1/auth/me").status, 401);
    assert_eq!(admin.get(&format!("/api/v1/users/{id}")).status, 404);
}

#[test]
fn profile_language_and_totp() {
    let s = TestServer::start();
    let admin = s.admin();
    let a = admin.put("/api/v1/auth/profile", &json!({"language": "zh-CN"}));
    assert_eq!(a.body["language"], "zh-CN");
    assert_eq!(
        admin
            .put("/api/v1/auth/profile", &json!({"language": "xx"}))
            .status,
        422
    );
    assert_eq!(
        s.admin().get("/api/v1/auth/me").body["language"],
        "zh-CN",
        "remembered per user"
    );

    let setup = admin.post("/api/v1/auth/totp/setup", &json!({})).body;
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(
        setup["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/OMP:admin?")
    );
    let now = chrono::Utc::now().timestamp();
    let code = omp::auth::totp::code_at(&secret, now).unwrap();
    let a = admin.post("/api/v1/auth/totp/enable", &json!({"code": code}));
    assert_eq!(a.status, 204, "{}", a.text);
    let mut c = s.client();
    let (st, b) = c.login("admin", ADMIN_PASSWORD);
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (401, Some("totp_required"))
    );
    let code = omp::auth::totp::code_at(&secret, chrono::Utc::now().timestamp()).unwrap();
    let a = c.post(
        "/api/v1/auth/login",
        &json!({"username": "admin", "password": ADMIN_PASSWORD, "totp": code}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["user"]["totp_enabled"], true);
}

#[test]
fn ui_assets_are_served_with_types_compression_and_fallback() {
    let s = TestServer::start();
    let c = s.client();
    let paths = omp::ui::paths();
    assert!(paths.iter().any(|p| p == "index.html"), "{paths:?}");
    for p in &paths {
        let a = c.send("GET", &format!("/{p}"), None, &[]);
        assert_eq!(a.status, 200, "{p}");
        let ct = a
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let want = match p.rsplit('.').next().unwrap() {
            "html" => "text/html",
            "js" => "text/javascript",
            "css" => "text/css",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "json" => "application/json",
            "woff2" => "font/woff2",
            "ico" => "image/x-icon",
            other => panic!("unexpected asset type {other} ({p}): add it to this table"),
        };
        assert!(ct.starts_with(want), "{p}: {ct}");
        if p.starts_with("assets/") {
            assert!(
                a.headers
                    .get("cache-control")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .contains("immutable"),
                "{p}"
            );
        }
    }
    // Precompressed variants for large text assets.
    let js = paths
        .iter()
        .find(|p| p.ends_with(".js"))
        .expect("a js asset");
    let a = c.send(
        "GET",
        &format!("/{js}"),
        None,
        &[("accept-encoding", "gzip")],
    );
    // ureq decompresses transparently only when asked to; check the header.
    assert_eq!(
        a.headers
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip"),
        "{js}"
    );
    // SPA fallback for client-side routes; API paths never fall back.
    let a = c.get("/users");
    assert_eq!(a.status, 200);
    assert!(
        a.text.contains("<div id=\"root\">") || a.text.to_lowercase().contains("<!doctype html")
    );
    assert_eq!(
        a.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-cache"
    );
    assert_eq!(c.get("/assets/does-not-exist.js").status, 404);
    assert_eq!(c.get("/api/v2/anything").status, 404);
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn cli_user_token_store_export_import() {
    let s = TestServer::start();
    let admin = s.admin();
    assert_eq!(
        admin
            .post(
                "/api/v1/users",
                &json!({"username": "fay", "password": "Fay-pass-1234", "roles": ["viewer"]})
            )
            .status,
        201
    );
    // The store is locked while the server runs: the CLI says so instead of corrupting it.
    let out = omp(&["user", "list"], &s.data_dir());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another omp process"));
    let dir = s.stop();
    let data = dir.path().join("data");

    let out = std::process::Command::new(omp_bin())
        .args([
            "user",
            "add",
            "gus",
            "--role",
            "operator",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write;
            ch.stdin.take().unwrap().write_all(b"Gus-pass-1234\n")?;
            ch.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = omp(&["user", "list"], &data);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("gus") && list.contains("operator") && list.contains("fay"),
        "{list}"
    );
    let out = omp(&["user", "disable", "fay"], &data);
    assert!(out.status.success());
    let out = omp(&["user", "disable", "nobody"], &data);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: no user named nobody"));
    let out = omp(
        &["token", "create", "--user", "admin", "--name", "cli"],
        &data,
    );
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // Dump, load into a fresh data dir, serve from it: same users, same passwords, token works.
    let dump = dir.path().join("dump.jsonl");
    let out = omp(&["store", "export", "-o", dump.to_str().unwrap()], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = tempfile::tempdir().unwrap();
    let out = omp(
        &["store", "import", dump.to_str().unwrap()],
        &fresh.path().join("data"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = omp(
        &["store", "import", dump.to_str().unwrap()],
        &fresh.path().join("data"),
    );
    assert!(
        !out.status.success(),
        "a second import into a non-empty store is refused"
    );
    let s2 = TestServer::start_with(&[], Some(fresh));
    let users = Client::with_token(&s2.base, &token)
        .get("/api/v1/users")
        .body;
    assert_eq!(users["total"], 3, "{users}");
    assert_eq!(s2.client().login("admin", ADMIN_PASSWORD).0, 200);
    let v = s2.admin().get("/api/v1/audit/verify").body;
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn config_and_store_problems_are_reported_without_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("omp.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"127.0.0.1:0\"\nlisten_prot = 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(omp_bin())
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `listen_prot`") && err.contains("omp.toml"),
        "{err}"
    );
    let example = std::process::Command::new(omp_bin())
        .args(["config", "example"])
        .output()
        .unwrap();
    std::fs::write(&cfg, &example.stdout).unwrap();
    let out = std::process::Command::new(omp_bin())
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A store from a newer OMP.
    let newer = tempfile::tempdir().unwrap();
    {
        let store = omp::store::Store::open(&newer.path().join("data")).unwrap();
        store
            .write(|tx| tx.put(&omp::store::META, "schema_version", &99u64))
            .unwrap();
    }
    let err = TestServer::try_start(&[], newer).err().expect("refused").0;
    assert!(
        err.contains("newer OMP") && err.contains("schema version 99"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A corrupted store file: refused clearly, and the file is left as it was.
    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bad.path().join("data")).unwrap();
    let file = bad.path().join("data").join("omp.redb");
    let junk: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &junk).unwrap();
    let (err, bad) = TestServer::try_start(&[], bad).err().expect("refused");
    assert!(err.contains("corrupted"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(bad.path().join("data").join("omp.redb")).unwrap(),
        junk
    );

    // A port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let d = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(omp_bin())
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(d.path())
        .env("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on"));
}
