//! Test harness: starts the real `omp` binary on 127.0.0.1:0 in a temp dir, waits for its
//! "serving" log line (no sleeps, no fixed ports) and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "Admin-pass-123";

pub fn omp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_omp")
}

/// A running `omp serve`.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub base: String,
    child: Child,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl TestServer {
    /// A server on a fresh data dir whose admin password is [`ADMIN_PASSWORD`].
    pub fn start() -> TestServer {
        Self::start_with(&[("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)], None)
    }

    /// A server with extra environment variables, reusing `dir` when given.
    pub fn start_with(env: &[(&str, &str)], dir: Option<tempfile::TempDir>) -> TestServer {
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        match Self::try_start(env, dir) {
            Ok(s) => s,
            Err((msg, _)) => panic!("{msg}"),
        }
    }

    /// Starts the server; on failure returns the error text and the dir.
    pub fn try_start(
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
    ) -> Result<TestServer, (String, tempfile::TempDir)> {
        let addr_file = dir.path().join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut cmd = Command::new(omp_bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--listen-addr-file")
            .arg(&addr_file)
            .arg("--no-local-agent")
            .args(
                // A test that needs settings only a file can hold (arrays) writes DIR/omp.toml.
                Some(dir.path().join("omp.toml"))
                    .filter(|p| p.exists())
                    .map(|p| vec![std::ffi::OsString::from("--config"), p.into_os_string()])
                    .unwrap_or_default(),
            )
            .env_remove("OMP_ADMIN_PASSWORD")
            .env("OMP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn omp serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<()>();
        {
            let out = child.stdout.take().unwrap();
            let buf = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    buf.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        {
            let err = child.stderr.take().unwrap();
            let buf = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let ready = line.contains("OMP is serving.");
                    buf.lock().unwrap().push_str(&(line + "\n"));
                    if ready {
                        let _ = tx.send(());
                    }
                }
                // Dropping tx tells the waiter the process ended.
            });
        }
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => {}
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let text = format!(
                    "omp serve did not become ready (exit {status:?})\nstderr:\n{}",
                    stderr.lock().unwrap()
                );
                return Err((text, dir));
            }
        }
        let addr = std::fs::read_to_string(&addr_file)
            .expect("listen addr file written before the ready line");
        Ok(TestServer {
            base: format!("http://{}", addr.trim()),
            dir,
            child,
            stdout,
            stderr,
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server with SIGTERM and waits; returns the data dir.
    pub fn stop(mut self) -> tempfile::TempDir {
        terminate(&mut self.child);
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Kills the server with SIGKILL (a crash) and returns the data dir.
    pub fn crash(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client signed in as admin.
    pub fn admin(&self) -> Client {
        let mut c = self.client();
        let (s, b) = c.login("admin", ADMIN_PASSWORD);
        assert_eq!(s, 200, "admin login: {b}");
        c
    }
}

fn terminate(child: &mut Child) {
    // SIGTERM lets the server shut down cleanly; kill() is the fallback.
    let ok = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let _ = child.kill();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A small HTTP client that keeps the session cookie and CSRF token, or sends a token.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    pub basic: Option<String>,
}

/// One answer: status, JSON body (Null when not JSON), headers.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: ureq::http::HeaderMap,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            base: base.to_string(),
            agent,
            cookie: None,
            csrf: None,
            bearer: None,
            basic: None,
        }
    }

    pub fn with_token(base: &str, token: &str) -> Client {
        let mut c = Client::new(base);
        c.bearer = Some(token.to_string());
        c
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        let payload = match body {
            Some(v) => {
                headers.push(("content-type", "application/json"));
                serde_json::to_vec(v).unwrap()
            }
            None => Vec::new(),
        };
        self.send_raw(method, path, payload, &headers)
    }

    /// A request with a raw body.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        payload: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(c) = &self.cookie {
            b = b.header("cookie", format!("omp_session={c}"));
        }
        if let (Some(t), true) = (&self.csrf, method != "GET") {
            b = b.header("x-csrf-token", t);
        }
        if let Some(t) = &self.bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(t) = &self.basic {
            let enc = base64_encode(format!("grafana:{t}").as_bytes());
            b = b.header("authorization", format!("Basic {enc}"));
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = b.body(payload).unwrap();
        let mut resp = self
            .agent
            .run(req)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            text,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send("POST", path, Some(body), &[])
    }

    pub fn put(&self, path: &str, body: &Value) -> Answer {
        self.send("PUT", path, Some(body), &[])
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None, &[])
    }

    /// Logs in; keeps cookie and CSRF token on success.
    pub fn login(&mut self, user: &str, password: &str) -> (u16, Value) {
        let a = self.post(
            "/api/v1/auth/login",
            &serde_json::json!({"username": user, "password": password}),
        );
        if a.status == 200 {
            let cookie = a
                .headers
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix("omp_session="))
                .map(|v| v.split(';').next().unwrap_or("").to_string());
            self.cookie = cookie;
            self.csrf = a.body["csrf_token"].as_str().map(str::to_string);
        }
        (a.status, a.body)
    }
}

fn base64_encode(input: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `omp ARGS` to completion.
pub fn omp(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(omp_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("OMP_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run omp")
}

/// Creates a user through the API as `admin`, returns a client signed in as them (password
/// already changed, since admin-set passwords must be changed first).
pub fn user_with_role(s: &TestServer, admin: &Client, name: &str, role: &str) -> Client {
    let a = admin.post(
        "/api/v1/users",
        &serde_json::json!({"username": name, "password": "Temp-pass-123", "roles": [role]}),
    );
    assert_eq!(a.status, 201, "create {name}: {}", a.text);
    let mut c = s.client();
    let (st, b) = c.login(name, "Temp-pass-123");
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["must_change_password"], true);
    let a = c.post(
        "/api/v1/auth/password",
        &serde_json::json!({"current_password": "Temp-pass-123", "new_password": "Fresh-pass-456"}),
    );
    assert_eq!(a.status, 204, "{}", a.text);
    c
}

/// A running `omp agent` process.
pub struct AgentProc {
    pub dir: tempfile::TempDir,
    child: Child,
    reader: Option<std::thread::JoinHandle<()>>,
    pub stderr: Arc<Mutex<String>>,
    events: mpsc::Receiver<String>,
}

impl AgentProc {
    /// Starts an agent for `server` (a TestServer base URL, http://…) with `token`
    /// (None: reuse the state in `dir`).
    pub fn start(
        server: &TestServer,
        token: Option<&str>,
        dir: Option<tempfile::TempDir>,
    ) -> AgentProc {
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let https = server.base.replace("http://", "https://");
        let mut cmd = Command::new(omp_bin());
        cmd.args(["agent", "--server", &https, "--data-dir"])
            .arg(dir.path())
            .env("OMP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.args(["--enroll-token", t]);
        }
        let mut child = cmd.spawn().expect("spawn omp agent");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, events) = mpsc::channel::<String>();
        let err = child.stderr.take().unwrap();
        let buf = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                buf.lock().unwrap().push_str(&(line.clone() + "\n"));
                let _ = tx.send(line);
            }
        });
        AgentProc {
            dir,
            child,
            reader: Some(reader),
            stderr,
            events,
        }
    }

    /// Waits for a log line containing `needle` (or the process ending); true when seen.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_for(&self, needle: &str) -> bool {
        loop {
            match self.events.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..600 {
            if let Ok(Some(s)) = self.child.try_wait() {
                // The log is complete once the reader has seen the pipe close.
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the agent and returns its data dir (to restart it).
    pub fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 50 ms until it returns Some or `secs` pass. For waiting on state that
/// changes asynchronously (a host going offline), not for start-up.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
