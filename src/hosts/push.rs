//! SSH push: install and enroll the agent on a host given its address and an SSH login,
//! step by step (connect → host key → login → check target → check folders → copy agent →
//! install and enroll → wait for the agent), each step reported. Host keys are trusted on
//! first use, stored, and checked on every later push. Credentials are used for the push
//! and never stored. Every value that reaches the remote shell is validated against a
//! strict character set and single-quoted (`ssh::sh_quote`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Hosts, lock, now};
use crate::error::{Error, Result};
use crate::ssh::{self, HostKeyPolicy, sh_quote};
use crate::store::SSH_KNOWN_HOSTS;

/// A push as requested.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub address: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub password: Option<String>,
    /// An OpenSSH or PEM private key.
    #[serde(default)]
    pub private_key: Option<String>,
    #[serde(default)]
    pub passphrase: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// `SHA256:…` the host key must have on a first push (instead of trusting it blindly).
    #[serde(default)]
    pub expected_host_key: Option<String>,
}

fn default_port() -> u16 {
    22
}
fn default_prefix() -> String {
    "/opt/omp-agent".into()
}
fn default_data_dir() -> String {
    "/var/lib/omp-agent".into()
}

/// What the push needs from the server around it.
#[derive(Debug, Clone)]
pub struct PushContext {
    pub server_url: String,
    pub cert_pin: String,
    pub install_script: String,
    pub binary: std::path::PathBuf,
}

/// One step of a push.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    /// pending, running, ok, failed
    pub state: &'static str,
    pub detail: String,
}

/// A push and its progress.
#[derive(Debug, Clone, Serialize)]
pub struct PushJob {
    pub id: u64,
    pub created_by: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// running, ok, failed
    pub state: &'static str,
    pub host_key: Option<String>,
    pub host_id: Option<u64>,
    pub steps: Vec<Step>,
}

/// A trusted SSH host key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownHost {
    pub target: String,
    pub fingerprint: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Times in API answers are RFC 3339, like everywhere else.
fn rfc3339<S: serde::Serializer>(t: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    let text = chrono::DateTime::from_timestamp(*t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    s.serialize_str(&text)
}

/// Pushes remembered (an import may start 1000 at once); finished ones are forgotten first.
const MAX_PUSHES: usize = 2000;

const STEPS: &[&str] = &[
    "connect",
    "host key",
    "login",
    "check target",
    "check folders",
    "copy agent",
    "install and enroll",
    "wait for the agent",
];

#[derive(Default)]
pub(crate) struct Pushes {
    jobs: HashMap<u64, PushJob>,
    next: u64,
}

impl Pushes {
    pub(crate) fn new() -> Arc<Mutex<Pushes>> {
        Arc::default()
    }
}

fn valid_address(a: &str) -> bool {
    (1..=253).contains(&a.len())
        && !a.starts_with('-')
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
}

fn valid_user(u: &str) -> bool {
    (1..=32).contains(&u.len())
        && u.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A folder path safe to hand to the remote shell (still quoted there).
fn valid_dir(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 255
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !p.split('/').any(|seg| seg == "..")
}

/// Checks a request; returns the first field at fault.
pub fn validate(r: &PushRequest) -> Result<()> {
    match validate_all(r).into_iter().next() {
        Some((field, message)) => Err(Error::Validation { field, message }),
        None => Ok(()),
    }
}

/// Every problem of a request, field by field (the CSV import reports them all).
pub fn validate_all(r: &PushRequest) -> Vec<(&'static str, String)> {
    let mut errs = Vec::new();
    if !valid_address(&r.address) {
        errs.push((
            "address",
            "address must be a host name or IP address (letters, digits, '.', '-', ':')"
                .to_string(),
        ));
    }
    if r.port == 0 {
        errs.push(("port", "port must be 1 to 65535".to_string()));
    }
    if !valid_user(&r.user) {
        errs.push((
            "user",
            "user must be 1 to 32 letters, digits, '_', '.', '-', not starting with '-'"
                .to_string(),
        ));
    }
    match (&r.password, &r.private_key) {
        (Some(p), None) if !p.is_empty() => {}
        (None, Some(k)) if !k.trim().is_empty() => {}
        _ => errs.push((
            "password",
            "give either a password or a private key".to_string(),
        )),
    }
    for (field, dir) in [("prefix", &r.prefix), ("data_dir", &r.data_dir)] {
        if !valid_dir(dir) {
            errs.push((field, format!("{field} must be an absolute path of letters, digits, '/', '.', '_', '-' without ..")));
        }
    }
    if let Some(k) = &r.expected_host_key
        && !(k.starts_with("SHA256:") && k.len() < 100)
    {
        errs.push(("expected_host_key", "expected_host_key looks like SHA256:… (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)".to_string()));
    }
    if let Err(Error::Validation { message, .. }) = super::check_labels(r.labels.clone()) {
        errs.push(("labels", message));
    }
    if let Err(Error::Validation { message, .. }) = super::check_groups(r.groups.clone()) {
        errs.push(("groups", message));
    }
    errs
}

impl Hosts {
    /// Validates and starts a push in the background; returns its first state.
    pub fn start_push(&self, actor: &str, req: PushRequest, ctx: PushContext) -> Result<PushJob> {
        validate(&req)?;
        let job = {
            let mut p = lock(&self.pushes);
            p.next += 1;
            let job = PushJob {
                id: p.next,
                created_by: actor.to_string(),
                created_at: now(),
                address: req.address.clone(),
                port: req.port,
                user: req.user.clone(),
                state: "running",
                host_key: None,
                host_id: None,
                steps: STEPS
                    .iter()
                    .map(|n| Step {
                        name: n,
                        state: "pending",
                        detail: String::new(),
                    })
                    .collect(),
            };
            p.jobs.insert(job.id, job.clone());
            if p.jobs.len() > MAX_PUSHES {
                let oldest_done = p
                    .jobs
                    .values()
                    .filter(|j| j.state != "running")
                    .map(|j| j.id)
                    .min();
                if let Some(id) = oldest_done {
                    p.jobs.remove(&id);
                }
            }
            job
        };
        let hosts = self.clone();
        let id = job.id;
        let actor = actor.to_string();
        tokio::spawn(async move {
            let r = hosts.run_push(id, &actor, req, ctx).await;
            let mut p = lock(&hosts.pushes);
            if let Some(j) = p.jobs.get_mut(&id) {
                j.state = if r.is_ok() { "ok" } else { "failed" };
                if let Err(e) = r
                    && let Some(s) = j.steps.iter_mut().find(|s| s.state == "running")
                {
                    s.state = "failed";
                    s.detail = e;
                }
            }
        });
        Ok(job)
    }

    pub fn push_job(&self, id: u64) -> Result<PushJob> {
        lock(&self.pushes)
            .jobs
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("push {id}")))
    }

    pub fn push_jobs(&self) -> Vec<PushJob> {
        let mut v: Vec<PushJob> = lock(&self.pushes).jobs.values().cloned().collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.id));
        v
    }

    fn step(&self, id: u64, name: &str, state: &'static str, detail: impl Into<String>) {
        if let Some(j) = lock(&self.pushes).jobs.get_mut(&id)
            && let Some(s) = j.steps.iter_mut().find(|s| s.name == name)
        {
            s.state = state;
            s.detail = detail.into();
        }
    }

    async fn run_push(
        &self,
        id: u64,
        actor: &str,
        req: PushRequest,
        ctx: PushContext,
    ) -> Result<(), String> {
        let target = format!("{}:{}", req.address, req.port);
        let known: Option<KnownHost> = self
            .store
            .read(|tx| tx.get(&SSH_KNOWN_HOSTS, &target))
            .map_err(|e| e.to_string())?;
        let policy = match (&known, &req.expected_host_key) {
            (Some(k), _) => HostKeyPolicy::Exactly(k.fingerprint.clone()),
            (None, Some(want)) => HostKeyPolicy::Exactly(want.clone()),
            (None, None) => HostKeyPolicy::FirstUse,
        };
        self.step(id, "connect", "running", format!("connecting to {target}"));
        let mut s = ssh::connect(&req.address, req.port, policy, Duration::from_secs(15))
            .await
            .map_err(|e| e.to_string())?;
        self.step(id, "connect", "ok", format!("connected to {target}"));
        self.step(id, "host key", "running", "");
        let first = known.is_none();
        let t = now();
        let rec = KnownHost {
            target: target.clone(),
            fingerprint: s.host_key.clone(),
            first_seen: known.as_ref().map(|k| k.first_seen).unwrap_or(t),
            last_seen: t,
        };
        self.store
            .write(|tx| tx.put(&SSH_KNOWN_HOSTS, &target, &rec))
            .map_err(|e| e.to_string())?;
        if let Some(j) = lock(&self.pushes).jobs.get_mut(&id) {
            j.host_key = Some(s.host_key.clone());
        }
        let how = match (first, req.expected_host_key.is_some()) {
            (true, true) => "matches the expected key; stored",
            (true, false) => "trusted on first use and stored",
            (false, _) => "matches the stored key",
        };
        self.step(id, "host key", "ok", format!("{} ({how})", s.host_key));

        self.step(id, "login", "running", format!("as {}", req.user));
        // `validate` made sure exactly one of the two is there.
        let login = match &req.password {
            Some(p) => s.login_password(&req.user, p).await,
            None => {
                s.login_key(
                    &req.user,
                    req.private_key.as_deref().unwrap_or(""),
                    req.passphrase.as_deref(),
                )
                .await
            }
        };
        login.map_err(|e| e.to_string())?;
        self.step(id, "login", "ok", format!("logged in as {}", req.user));

        let short = Duration::from_secs(30);
        self.step(id, "check target", "running", "");
        let out = s
            .run("uname -sm", None, short)
            .await
            .map_err(|e| e.to_string())?;
        let got = out.stdout.trim().to_string();
        if out.code != Some(0) {
            let said = format!("{} {}", got, out.stderr.trim());
            return Err(format!(
                "cannot run commands as {} (is its login shell a real shell?): {}",
                req.user,
                said.trim()
            ));
        }
        let want_arch = std::env::consts::ARCH;
        if got != format!("Linux {want_arch}") {
            return Err(format!(
                "this agent is built for Linux {want_arch}; the host says {got:?}"
            ));
        }
        self.step(id, "check target", "ok", got);

        let (prefix, data) = (
            req.prefix.trim_end_matches('/'),
            req.data_dir.trim_end_matches('/'),
        );
        let bin_dir = format!("{prefix}/bin");
        self.step(id, "check folders", "running", "");
        let cmd = format!(
            "mkdir -p -- {b} {d} && test -w {b} && test -w {d} && df -Pk {d} | tail -n 1",
            b = sh_quote(&bin_dir),
            d = sh_quote(data)
        );
        let out = s.run(&cmd, None, short).await.map_err(|e| e.to_string())?;
        if out.code != Some(0) {
            return Err(format!(
                "cannot create or write {bin_dir} and {data} as {}: {} (log in as root, or choose folders this user owns)",
                req.user,
                out.stderr.trim()
            ));
        }
        let free_kib: u64 = out
            .stdout
            .split_whitespace()
            .nth(3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let binary =
            std::fs::read(&ctx.binary).map_err(|e| format!("cannot read the agent binary: {e}"))?;
        let need_kib = (binary.len() as u64 / 1024) * 2 + 10 * 1024;
        if free_kib < need_kib {
            return Err(format!(
                "only {} MiB free under {data}; the agent needs about {} MiB",
                free_kib / 1024,
                need_kib / 1024
            ));
        }
        self.step(
            id,
            "check folders",
            "ok",
            format!(
                "{bin_dir} and {data} writable, {} MiB free",
                free_kib / 1024
            ),
        );

        self.step(
            id,
            "copy agent",
            "running",
            format!("{} bytes", binary.len()),
        );
        let tmp = format!("{bin_dir}/omp.push.tmp");
        let cmd = format!(
            "cat > {t} && chmod 755 {t} && {t} version && mv -f {t} {b}",
            t = sh_quote(&tmp),
            b = sh_quote(&format!("{bin_dir}/omp"))
        );
        let out = s
            .run(&cmd, Some(&binary), Duration::from_secs(600))
            .await
            .map_err(|e| e.to_string())?;
        if out.code != Some(0) {
            return Err(format!("copying the agent failed: {}", out.stderr.trim()));
        }
        self.step(id, "copy agent", "ok", out.stdout.trim().to_string());

        self.step(id, "install and enroll", "running", "");
        let (tok, secret) = self
            .create_enroll_token(actor, 600, req.labels.clone(), req.groups.clone())
            .map_err(|e| e.to_string())?;
        let token = crate::proto::EnrollToken {
            pin: ctx.cert_pin.clone(),
            secret,
        }
        .encode();
        let cmd = format!(
            "OMP_AGENT_PREFIX={p} OMP_AGENT_DATA_DIR={d} OMP_AGENT_BINARY={b} sh -s -- --server {u} --enroll-token {t}",
            p = sh_quote(prefix),
            d = sh_quote(data),
            b = sh_quote(&format!("{bin_dir}/omp")),
            u = sh_quote(&ctx.server_url),
            t = sh_quote(&token),
        );
        let out = s
            .run(
                &cmd,
                Some(ctx.install_script.as_bytes()),
                Duration::from_secs(120),
            )
            .await
            .map_err(|e| e.to_string())?;
        s.close().await;
        if out.code != Some(0) {
            let _ = self.revoke_enroll_token(&tok.id);
            let why = format!("{}\n{}", out.stdout.trim(), out.stderr.trim());
            return Err(format!("the installer failed: {}", why.trim()));
        }
        let last = out.stdout.lines().last().unwrap_or("").to_string();
        self.step(id, "install and enroll", "ok", last);

        self.step(id, "wait for the agent", "running", "");
        for _ in 0..300 {
            let used = self
                .list_enroll_tokens()
                .ok()
                .and_then(|v| v.into_iter().find(|t| t.id == tok.id))
                .and_then(|t| t.used_by_host);
            if let Some(h) = used
                && self.is_online(h)
            {
                if let Some(j) = lock(&self.pushes).jobs.get_mut(&id) {
                    j.host_id = Some(h);
                }
                self.step(
                    id,
                    "wait for the agent",
                    "ok",
                    format!("host {h} is online"),
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the agent was installed but did not connect within 30 s: can the host reach the server's address?".into())
    }

    /// Stored SSH host keys.
    pub fn known_hosts(&self) -> Result<Vec<KnownHost>> {
        Ok(self
            .store
            .read(|tx| tx.all::<KnownHost>(&SSH_KNOWN_HOSTS))?
            .into_iter()
            .map(|(_, k)| k)
            .collect())
    }

    /// Forgets a host key (after a host was reinstalled).
    pub fn forget_known_host(&self, target: &str) -> Result<KnownHost> {
        self.store.write(|tx| {
            let k: KnownHost = tx
                .get(&SSH_KNOWN_HOSTS, target)?
                .ok_or_else(|| Error::NotFound(format!("known host {target}")))?;
            tx.delete(&SSH_KNOWN_HOSTS, target)?;
            Ok(k)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> PushRequest {
        serde_json::from_value(
            serde_json::json!({"address": "10.0.0.5", "user": "root", "password": "x"}),
        )
        .unwrap()
    }

    #[test]
    fn hostile_fields_are_refused() {
        let cases: &[(&str, &str, &str)] = &[
            ("address", "-oProxyCommand=sh", "address"),
            ("address", "host;id", "address"),
            ("address", "a b", "address"),
            ("user", "-l", "user"),
            ("user", "root;id", "user"),
            ("user", "$(id)", "user"),
            ("prefix", "/opt/$(id)", "prefix"),
            ("prefix", "relative", "prefix"),
            ("data_dir", "/var/../etc", "data_dir"),
            ("data_dir", "/var/lib/o'mp", "data_dir"),
        ];
        for (field, value, want) in cases {
            let mut v = serde_json::to_value(
                serde_json::json!({"address": "10.0.0.5", "user": "root", "password": "x"}),
            )
            .unwrap();
            v[*field] = serde_json::json!(value);
            let r: PushRequest = serde_json::from_value(v).unwrap();
            match validate(&r) {
                Err(Error::Validation { field, .. }) => assert_eq!(field, *want, "{value}"),
                other => panic!("{value}: {other:?}"),
            }
        }
        assert!(validate(&req()).is_ok());
        let mut r = req();
        r.password = None;
        assert!(validate(&r).is_err(), "credentials are required");
    }
}
