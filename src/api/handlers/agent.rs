//! `/api/agent/v1/*`: the agent channel (a WebSocket whose first message is the enrollment
//! or the credential — see `proto`), the install script of the one-line command, and the
//! agent binary download (authorized by a valid enrollment token). These routes are not in
//! the user route table: agents authenticate with their own credentials.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::audit;
use crate::proto::{AgentHello, AgentMsg, ServerMsg, Welcome};

pub(crate) async fn connect(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(8 * 1024 * 1024)
        .on_upgrade(move |socket| session(st, socket, addr))
}

async fn send(socket: &mut WebSocket, v: &impl serde::Serialize) -> bool {
    match serde_json::to_string(v) {
        Ok(t) => socket.send(Message::text(t)).await.is_ok(),
        Err(_) => false,
    }
}

async fn session(st: AppState, mut socket: WebSocket, addr: SocketAddr) {
    let first = tokio::time::timeout(Duration::from_secs(15), socket.recv()).await;
    let hello: AgentHello = match first {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str(&t) {
            Ok(h) => h,
            Err(e) => {
                let _ = send(
                    &mut socket,
                    &Welcome::Refused {
                        reason: format!("bad hello: {e}"),
                        retry: false,
                    },
                )
                .await;
                return;
            }
        },
        _ => return,
    };
    let enrolling = matches!(hello, AgentHello::Enroll { .. });
    let hostname = match &hello {
        AgentHello::Enroll { inventory, .. } | AgentHello::Hello { inventory, .. } => {
            inventory.hostname.clone()
        }
    };
    let hosts = st.hosts.clone();
    let Ok((welcome, host)) =
        tokio::task::spawn_blocking(move || hosts.handshake(hello, crate::version())).await
    else {
        return;
    };
    if enrolling || host.is_none() {
        let (ok, detail) = match &welcome {
            Welcome::Refused { reason, .. } => (false, reason.clone()),
            Welcome::Enrolled { host_id, .. } => (true, format!("host id {host_id}")),
            Welcome::Welcome { .. } => (true, String::new()),
        };
        let entry = audit::Entry {
            actor: "agent".into(),
            action: if enrolling {
                "hosts.enroll".into()
            } else {
                "hosts.connect".into()
            },
            target: hostname.chars().take(64).collect(),
            source: addr.ip().to_string(),
            success: ok,
            status: 0,
            detail,
        };
        let a = st.audit.clone();
        let _ = tokio::task::spawn_blocking(move || a.append(entry)).await;
    }
    let Some(host_id) = host else {
        let _ = send(&mut socket, &welcome).await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    // Registered before the welcome, so the host is online by the time the agent knows it
    // is connected.
    let (tx, mut rx) = mpsc::channel::<ServerMsg>(256);
    let conn = st.hosts.attach(host_id, &hostname, tx);
    if !send(&mut socket, &welcome).await {
        st.hosts.detach(host_id, conn);
        return;
    }
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<AgentMsg>(&t) {
                    Ok(AgentMsg::UpgradeStatus { upgrade, ok, message }) => st.fleet.on_status(host_id, upgrade, ok, message),
                    Ok(msg) => st.hosts.on_message(host_id, msg),
                    Err(e) => tracing::warn!(host_id, error = %e, "Ignoring an agent message the server does not understand."),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(msg) => {
                    let revoked = matches!(msg, ServerMsg::Revoked { .. });
                    if !send(&mut socket, &msg).await || revoked {
                        break;
                    }
                }
                // The registry dropped this connection (silent agent, or replaced).
                None => break,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
    st.hosts.detach(host_id, conn);
}

/// The POSIX shell script the one-line command pipes into `sh`.
/// The installer script with this server's curl pin filled in.
pub(crate) fn install_script_text(st: &AppState) -> String {
    include_str!("../../../packaging/agent-install.sh").replace("@CURL_PIN@", &st.pins.curl)
}

pub(crate) async fn install_script(State(st): State<AppState>) -> Response {
    let script = install_script_text(&st);
    let mut resp = script.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The agent binary: this very executable (same build as the server). Needs a valid,
/// unused enrollment token in `Authorization: Enroll <secret>`.
pub(crate) async fn binary(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Enroll "))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| {
            ApiError::new(
                "unauthenticated",
                "send Authorization: Enroll <enrollment token secret>",
            )
        })?;
    let secret = crate::proto::EnrollToken::parse(&secret)
        .map(|t| t.secret)
        .unwrap_or(secret);
    let hosts = st.hosts.clone();
    let valid = super::blocking(move || hosts.enroll_secret_valid(&secret)).await?;
    if !valid {
        return Err(ApiError::new(
            "unauthenticated",
            "the enrollment token is unknown, used or expired: create a new one",
        ));
    }
    let exe = match &st.config.agent.binary {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(ApiError::internal)?,
    };
    let bytes = tokio::fs::read(&exe).await.map_err(ApiError::internal)?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}
