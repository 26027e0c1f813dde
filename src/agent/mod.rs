//! `omp agent`: enrolls with a one-time token, then keeps one outbound WebSocket to the
//! server over TLS pinned to the certificate named in the token, sends heartbeats and
//! inventory, and runs the commands the server asks for. Reconnects with jittered backoff.
//! It imports no HTTP server types; the server side of the channel is `api` + `hosts`.

pub mod files;
pub mod inventory;
pub mod metrics;
pub mod requests;
pub mod runner;
pub mod sim;
pub mod terminal;
pub mod upgrade;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::proto::{self, AgentHello, AgentMsg, EnrollToken, ServerMsg, Welcome};

/// Most commands an agent runs at once; more wait their turn.
const MAX_CONCURRENT_EXEC: usize = 8;
const STATE_FILE: &str = "agent.json";

/// How to reach the server and where to keep state.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `https://HOST:PORT` of the OMP server.
    pub server: String,
    pub enroll_token: Option<String>,
    pub data_dir: PathBuf,
    /// Enroll (or check the connection) and exit instead of serving.
    pub enroll_only: bool,
}

/// What the agent keeps between runs (mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    server: String,
    pin: String,
    host_id: u64,
    credential: String,
}

/// Why a session ended.
enum End {
    /// Try again after a pause.
    Retry(anyhow::Error),
    /// Retrying cannot help.
    Fatal(anyhow::Error),
    /// The server deleted this host.
    Revoked(String),
    Shutdown,
}

/// Runs the agent until `shutdown` resolves or a fatal error.
pub async fn run(
    opts: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (host, port) = parse_server(&opts.server)?;
    std::fs::create_dir_all(&opts.data_dir).with_context(|| {
        format!(
            "cannot create the agent data dir {}",
            opts.data_dir.display()
        )
    })?;
    let state_path = opts.data_dir.join(STATE_FILE);
    let mut state = load_state(&state_path)?;
    let token = match (&state, &opts.enroll_token) {
        (Some(s), Some(_)) => {
            tracing::info!(
                host_id = s.host_id,
                "Already enrolled; the enrollment token is not needed again."
            );
            None
        }
        (Some(_), None) => None,
        (None, Some(t)) => Some(EnrollToken::parse(t).map_err(|e| anyhow!(e))?),
        (None, None) => bail!(
            "this agent is not enrolled yet: pass --enroll-token (from the OMP UI: Hosts → Add host)"
        ),
    };
    let pin = state
        .as_ref()
        .map(|s| s.pin.clone())
        .or_else(|| token.as_ref().map(|t| t.pin.clone()))
        .unwrap_or_default();
    let tls = crate::tls::pinned_client_config(&pin)?;
    // A self-upgrade not yet confirmed by a connection: past its deadline (a crash loop),
    // go back to the previous binary now; otherwise a watchdog below does at the deadline.
    let upgrade_deadline = upgrade::pending(&opts.data_dir)
        .filter(|p| p.to_version == crate::version())
        .map(|p| p.deadline);
    if upgrade_deadline.is_some_and(|d| d <= chrono::Utc::now().timestamp()) {
        let e = upgrade::revert(&opts.data_dir);
        tracing::error!(error = %format!("{e:#}"), "Could not restore the previous agent binary.");
    }
    let watchdog = async {
        match upgrade_deadline {
            Some(d) => {
                let wait = (d - chrono::Utc::now().timestamp()).max(0) as u64;
                tokio::time::sleep(Duration::from_secs(wait)).await
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(watchdog);
    let mut watchdog_armed = upgrade_deadline.is_some();
    tokio::pin!(shutdown);
    let mut backoff = 1u64;
    loop {
        let mut connected = false;
        let session = session(
            &host,
            port,
            tls.clone(),
            &mut state,
            token.as_ref(),
            &opts,
            &state_path,
            &mut connected,
        );
        let end = tokio::select! {
            e = session => e,
            _ = &mut shutdown => End::Shutdown,
            _ = &mut watchdog, if watchdog_armed => {
                watchdog_armed = false;
                if upgrade::pending(&opts.data_dir).is_some() {
                    let e = upgrade::revert(&opts.data_dir);
                    tracing::error!(error = %format!("{e:#}"), "Could not restore the previous agent binary.");
                }
                continue;
            }
        };
        if connected {
            backoff = 1;
        }
        match end {
            End::Shutdown => return Ok(()),
            End::Fatal(e) => {
                // A new binary the server refuses (say, an incompatible version) goes back
                // to the previous one at once instead of exiting.
                if upgrade::pending(&opts.data_dir)
                    .is_some_and(|p| p.to_version == crate::version())
                {
                    tracing::error!(error = %format!("{e:#}"), "The upgraded agent was refused.");
                    let e = upgrade::revert(&opts.data_dir);
                    tracing::error!(error = %format!("{e:#}"), "Could not restore the previous agent binary.");
                }
                return Err(e);
            }
            End::Revoked(why) => {
                let _ = std::fs::remove_file(&state_path);
                tracing::warn!(reason = %why, "The server revoked this agent; its credential was removed.");
                bail!("revoked by the server: {why}");
            }
            End::Retry(e) => {
                // Jitter spreads a fleet's reconnects after a server restart.
                let wait = backoff as f64 * rand::thread_rng().gen_range(0.5..1.5);
                tracing::warn!(error = %format!("{e:#}"), retry_in_secs = format!("{wait:.1}"), "Agent connection lost.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                    _ = &mut shutdown => return Ok(()),
                }
                backoff = (backoff * 2).min(30);
            }
        }
    }
}

/// One connection: connect, handshake, then serve until it breaks.
#[allow(clippy::too_many_arguments)]
async fn session(
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    state: &mut Option<State>,
    token: Option<&EnrollToken>,
    opts: &AgentOptions,
    state_path: &Path,
    connected: &mut bool,
) -> End {
    let tcp = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return End::Retry(anyhow!("cannot connect to {host}:{port}: {e}")),
        Err(_) => return End::Retry(anyhow!("connecting to {host}:{port} timed out")),
    };
    let _ = tcp.set_nodelay(true);
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let stream = match connector.connect(crate::tls::server_name(host), tcp).await {
        Ok(s) => s,
        Err(e) => {
            let msg = anyhow!("TLS handshake with {host}:{port} failed: {e}");
            // Before enrollment a wrong key means a wrong server: stop instead of retrying.
            return if state.is_none() {
                End::Fatal(msg)
            } else {
                End::Retry(msg)
            };
        }
    };
    let url = format!("wss://{host}:{port}/api/agent/v1/connect");
    let (mut ws, _) = match tokio_tungstenite::client_async(url, stream).await {
        Ok(x) => x,
        Err(e) => return End::Retry(anyhow!("WebSocket handshake failed: {e}")),
    };
    let inventory = inventory::collect();
    let hello = match (&*state, token) {
        (Some(s), _) => AgentHello::Hello {
            version: crate::version().into(),
            protocol: proto::PROTOCOL,
            host_id: s.host_id,
            credential: s.credential.clone(),
            inventory,
        },
        (None, Some(t)) => AgentHello::Enroll {
            version: crate::version().into(),
            protocol: proto::PROTOCOL,
            token_secret: t.secret.clone(),
            inventory,
        },
        (None, None) => return End::Fatal(anyhow!("not enrolled and no enrollment token")),
    };
    if let Err(e) = send_json(&mut ws, &hello).await {
        return End::Retry(e);
    }
    let welcome: Welcome = match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str(&t) {
            Ok(w) => w,
            Err(e) => return End::Retry(anyhow!("unexpected answer from the server: {e}")),
        },
        Ok(Some(Ok(other))) => {
            return End::Retry(anyhow!("unexpected answer from the server: {other:?}"));
        }
        Ok(Some(Err(e))) => return End::Retry(anyhow!("connection failed: {e}")),
        Ok(None) => return End::Retry(anyhow!("the server closed the connection")),
        Err(_) => return End::Retry(anyhow!("the server did not answer the handshake")),
    };
    let (heartbeat, metrics_every) = match welcome {
        Welcome::Enrolled {
            host_id,
            credential,
            heartbeat_secs,
            metrics_secs,
            ..
        } => {
            let s = State {
                server: opts.server.clone(),
                pin: token.map(|t| t.pin.clone()).unwrap_or_default(),
                host_id,
                credential,
            };
            let text = match serde_json::to_string_pretty(&s) {
                Ok(t) => t,
                Err(e) => return End::Fatal(e.into()),
            };
            if let Err(e) = crate::auth::write_secret_file(state_path, &text) {
                return End::Fatal(anyhow!(
                    "cannot save the agent credential to {}: {e}",
                    state_path.display()
                ));
            }
            tracing::info!(host_id, "Enrolled.");
            *state = Some(s);
            (heartbeat_secs, metrics_secs)
        }
        Welcome::Welcome {
            host_id,
            heartbeat_secs,
            metrics_secs,
            ..
        } => {
            tracing::info!(host_id, "Connected to the server.");
            (heartbeat_secs, metrics_secs)
        }
        Welcome::Refused { reason, retry } => {
            let e = anyhow!("the server refused this agent: {reason}");
            return if retry { End::Retry(e) } else { End::Fatal(e) };
        }
    };
    *connected = true;
    upgrade::confirm(&opts.data_dir);
    if opts.enroll_only {
        let _ = ws.close(None).await;
        return End::Shutdown;
    }
    let link = upgrade::Link {
        host: host.to_string(),
        port,
        tls,
        data_dir: opts.data_dir.clone(),
    };
    serve(ws, heartbeat, metrics_every, link).await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn send_json<T: Serialize>(ws: &mut Ws, v: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string(v)?;
    ws.send(Message::text(text))
        .await
        .map_err(|e| anyhow!("send failed: {e}"))
}

/// The connected loop: heartbeats, inventory refresh, commands.
async fn serve(mut ws: Ws, heartbeat_secs: u64, metrics_secs: u64, link: upgrade::Link) -> End {
    let started = std::time::Instant::now();
    let (out_tx, mut out_rx) = mpsc::channel::<AgentMsg>(256);
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_EXEC));
    let mut cancels: HashMap<u64, oneshot::Sender<()>> = HashMap::new();
    let mut terms: HashMap<u64, terminal::Term> = HashMap::new();
    let mut uploads = files::Uploads::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut beat = tokio::time::interval(Duration::from_secs(heartbeat_secs.max(1)));
    let mut inventory_every = tokio::time::interval(Duration::from_secs(300));
    inventory_every.tick().await;
    // 0 turns metrics off; the interval then never fires.
    let mut metrics_every = tokio::time::interval(Duration::from_secs(if metrics_secs == 0 {
        86_400 * 365
    } else {
        metrics_secs
    }));
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let m = AgentMsg::Heartbeat { uptime_secs: started.elapsed().as_secs() };
                if let Err(e) = send_json(&mut ws, &m).await { return End::Retry(e) }
            }
            _ = inventory_every.tick() => {
                let inventory = match tokio::task::spawn_blocking(inventory::collect).await {
                    Ok(i) => i,
                    Err(_) => continue,
                };
                if let Err(e) = send_json(&mut ws, &AgentMsg::Inventory { inventory }).await { return End::Retry(e) }
            }
            _ = metrics_every.tick(), if metrics_secs > 0 => {
                let Ok(collected) = tokio::task::spawn_blocking(metrics::collect).await else { continue };
                let samples: Vec<crate::proto::MetricSample> = collected
                    .into_iter()
                    .map(|m| crate::proto::MetricSample {
                        name: m.name.to_string(),
                        labels: m.labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                        value: m.value,
                    })
                    .collect();
                let msg = AgentMsg::Metrics { t: chrono::Utc::now().timestamp_millis(), samples };
                if let Err(e) = send_json(&mut ws, &msg).await { return End::Retry(e) }
            }
            Some(m) = out_rx.recv() => {
                if let AgentMsg::ExecDone(d) = &m { cancels.remove(&d.job); }
                if let AgentMsg::TermExit { term, .. } = &m { terms.remove(term); }
                if let Err(e) = send_json(&mut ws, &m).await { return End::Retry(e) }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => return End::Retry(anyhow!("the server closed the connection")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return End::Retry(anyhow!("connection failed: {e}")),
                };
                let msg: ServerMsg = match serde_json::from_str(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "Ignoring a message this agent does not understand.");
                        continue;
                    }
                };
                match msg {
                    ServerMsg::Exec(req) => {
                        let (ctx, crx) = oneshot::channel();
                        cancels.insert(req.job, ctx);
                        let out = out_tx.clone();
                        let permits = permits.clone();
                        tasks.spawn(async move {
                            let Ok(_permit) = permits.acquire_owned().await else { return };
                            runner::run(req, out, crx).await;
                        });
                    }
                    ServerMsg::Cancel { job } => {
                        if let Some(c) = cancels.remove(&job) { let _ = c.send(()); }
                    }
                    ServerMsg::Revoked { reason } => return End::Revoked(reason),
                    ServerMsg::TermOpen { term, cols, rows } => {
                        match terminal::Term::open(term, cols, rows, out_tx.clone()) {
                            Ok(t) => { terms.insert(term, t); }
                            Err(e) => {
                                let m = AgentMsg::TermExit { term, code: None, error: Some(format!("cannot open a terminal: {e}")) };
                                if let Err(e) = send_json(&mut ws, &m).await { return End::Retry(e) }
                            }
                        }
                    }
                    ServerMsg::TermInput { term, data } => {
                        if let Some(t) = terms.get_mut(&term) { t.input(&data); }
                    }
                    ServerMsg::TermResize { term, cols, rows } => {
                        if let Some(t) = terms.get(&term) { t.resize(cols, rows); }
                    }
                    ServerMsg::FilePut(put) => {
                        if let Some(m) = uploads.begin(put)
                            && let Err(e) = send_json(&mut ws, &m).await { return End::Retry(e) }
                    }
                    ServerMsg::FileChunk { xfer, data } => {
                        if let Some(m) = uploads.chunk(xfer, &data)
                            && let Err(e) = send_json(&mut ws, &m).await { return End::Retry(e) }
                    }
                    ServerMsg::FilePutEnd { xfer } => {
                        if let Some(m) = uploads.end(xfer)
                            && let Err(e) = send_json(&mut ws, &m).await { return End::Retry(e) }
                    }
                    ServerMsg::FileGet { xfer, path, max_bytes } => {
                        let out = out_tx.clone();
                        tasks.spawn(async move {
                            let _ = tokio::task::spawn_blocking(move || files::send_file(xfer, &path, max_bytes, &out)).await;
                        });
                    }
                    ServerMsg::Request { req, request } => {
                        let out = out_tx.clone();
                        tasks.spawn(async move {
                            let reply = requests::answer(request).await;
                            let _ = out.send(AgentMsg::Reply { req, reply }).await;
                        });
                    }
                    ServerMsg::TermClose { term } => {
                        if let Some(t) = terms.get_mut(&term) { t.close(); }
                    }
                    ServerMsg::Upgrade(req) => {
                        let out = out_tx.clone();
                        let link = link.clone();
                        tasks.spawn(async move {
                            let status = |ok: bool, message: String| AgentMsg::UpgradeStatus { upgrade: req.upgrade, ok, message };
                            match upgrade::prepare(&link, &req).await {
                                Ok(exe) => {
                                    tracing::info!(version = %req.version, "Agent binary upgraded; restarting.");
                                    let _ = out.send(status(true, format!("version {} installed, restarting", req.version))).await;
                                    // Let the session loop send the status before the process is replaced.
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                    let e = upgrade::reexec(&exe);
                                    tracing::error!(error = %format!("{e:#}"), "Could not restart the upgraded agent.");
                                }
                                Err(e) => {
                                    tracing::warn!(error = %format!("{e:#}"), "Self-upgrade abandoned.");
                                    let _ = out.send(status(false, format!("{e:#}"))).await;
                                }
                            }
                        });
                    }
                }
            }
        }
    }
}

fn load_state(path: &Path) -> anyhow::Result<Option<State>> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).map(Some).with_context(|| {
            format!(
                "the agent state {} is damaged: delete it and enroll again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// `https://HOST[:PORT]` → (host, port); IPv6 in brackets.
pub fn parse_server(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url.strip_prefix("https://").ok_or_else(|| {
        anyhow!("--server must start with https:// (the agent channel is always TLS): {url}")
    })?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("bad IPv6 address in {url}"))?;
        (
            h.to_string(),
            after.strip_prefix(':').unwrap_or("19001").to_string(),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (authority.to_string(), "19001".to_string()),
        }
    };
    if host.is_empty()
        || host.starts_with('-')
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("bad host in --server {url}");
    }
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("bad port in --server {url}"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server("https://10.0.0.1:19001").unwrap(),
            ("10.0.0.1".into(), 19001)
        );
        assert_eq!(
            parse_server("https://omp.example/").unwrap(),
            ("omp.example".into(), 19001)
        );
        assert_eq!(
            parse_server("https://[::1]:8443").unwrap(),
            ("::1".into(), 8443)
        );
        for bad in [
            "http://x:1",
            "https://:1",
            "https://x:99999",
            "https://-oProxy=x:1",
            "x",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
