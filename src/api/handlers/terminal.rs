//! `/api/v1/hosts/{id}/terminal`, `/api/v1/terminals/*`: open a web terminal, its browser
//! WebSocket (`{"type":"input","data"}`, `{"type":"resize","cols","rows"}`,
//! `{"type":"close"}` in; `output` and `exit` events out), the session list and the
//! asciicast recordings for replay.

use std::time::Instant;

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, parse_id, time};
use crate::api::error::ApiError;
use crate::api::extract::{JsonBody, Page, QueryArgs};
use crate::api::{AppState, no_content, noted};
use crate::auth::Principal;
use crate::hosts::terminal::{TermEvent, TermRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenBody {
    #[serde(default = "default_cols")]
    cols: u16,
    #[serde(default = "default_rows")]
    rows: u16,
}

fn default_cols() -> u16 {
    120
}

fn default_rows() -> u16 {
    32
}

fn record_dto(r: &TermRecord) -> serde_json::Value {
    json!({
        "id": r.id, "host_id": r.host_id, "hostname": r.hostname, "user": r.user,
        "started_at": time(r.started_at), "ended_at": r.ended_at.map(time),
        "exit_code": r.exit_code, "end_reason": r.end_reason,
        "recording_url": format!("/api/v1/terminals/{}/recording", r.id),
    })
}

pub(crate) async fn open(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<OpenBody>,
) -> Result<Response, ApiError> {
    let host_id = parse_id(&id)?;
    let auth = st.auth.clone();
    let via = p.via.clone();
    let alive = std::sync::Arc::new(move || auth.still_valid(&via));
    let rec = st
        .hosts
        .open_terminal(&p.grants, &p.user.username, host_id, b.cols, b.rows, alive)
        .await
        .map_err(ApiError::from)?;
    let mut body = record_dto(&rec);
    body["ws_url"] = json!(format!("/api/v1/terminals/{}/ws", rec.id));
    let resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    Ok(noted(
        resp,
        format!("terminal {} on {}", rec.id, rec.hostname),
        format!("recording {}", rec.recording),
    ))
}

pub(crate) async fn close(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    // Only the owner may close it; an attached browser gets the exit event.
    if !st.hosts.terminal_owned_by(id, &p.user.username) {
        return Err(ApiError::new(
            "not_found",
            format!("terminal {id} not found"),
        ));
    }
    st.hosts.close_terminal(id).await;
    Ok(noted(no_content(), format!("terminal {id}"), ""))
}

/// Refuses WebSocket upgrades from other sites (cross-site WebSocket hijacking): the
/// SameSite=Strict cookie already prevents it; this is the second lock.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin.split_once("://").is_some_and(|(_, o)| o == host)
}

pub(crate) async fn socket(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if !same_origin(&headers) {
        return Err(ApiError::new(
            "forbidden",
            "the WebSocket must come from this server's own pages",
        ));
    }
    match st.hosts.attach_terminal(id, &p.user.username) {
        Ok((viewer, backlog, rx)) => {
            Ok(ws.on_upgrade(move |socket| pump(st, p, id, viewer, backlog, rx, socket)))
        }
        // Browsers hide the status of a refused upgrade: accept it and say why in-band.
        Err(_) => Ok(ws.on_upgrade(move |mut socket| async move {
            let e = TermEvent::Exit {
                code: None,
                reason: "no such terminal session (it has ended)".into(),
            };
            let _ = socket
                .send(Message::text(serde_json::to_string(&e).unwrap_or_default()))
                .await;
            let _ = socket
                .send(close_frame(CLOSE_GONE, "terminal session not found"))
                .await;
        })),
    }
}

/// Close code: another browser window took the terminal over.
const CLOSE_TAKEN_OVER: u16 = 4000;
/// Close code: the terminal session does not exist (any more).
const CLOSE_GONE: u16 = 4404;

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMsg {
    Input { data: String },
    Resize { cols: u16, rows: u16 },
    Close,
}

async fn pump(
    st: AppState,
    p: Principal,
    id: u64,
    viewer: u64,
    backlog: String,
    mut rx: tokio::sync::mpsc::Receiver<TermEvent>,
    mut socket: WebSocket,
) {
    let send = |e: &TermEvent| Message::text(serde_json::to_string(e).unwrap_or_default());
    if !backlog.is_empty()
        && socket
            .send(send(&TermEvent::Output { data: backlog }))
            .await
            .is_err()
    {
        st.hosts.detach_terminal(id, viewer);
        return;
    }
    let mut touched = Instant::now();
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMsg>(&t) {
                    Ok(ClientMsg::Input { data }) => {
                        if touched.elapsed().as_secs() >= 60 {
                            touched = Instant::now();
                            let (auth, via) = (st.auth.clone(), p.via.clone());
                            let _ = tokio::task::spawn_blocking(move || auth.touch(&via)).await;
                        }
                        st.hosts.terminal_input(id, data).await;
                    }
                    Ok(ClientMsg::Resize { cols, rows }) => st.hosts.terminal_resize(id, cols, rows).await,
                    Ok(ClientMsg::Close) => {
                        // Ending queues the exit event on our channel: forward it below.
                        st.hosts.close_terminal(id).await;
                    }
                    Err(_) => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            e = rx.recv() => match e {
                Some(e) => {
                    let exit = matches!(e, TermEvent::Exit { .. });
                    if socket.send(send(&e)).await.is_err() || exit {
                        break;
                    }
                }
                // Another browser window took over (an ended session sends Exit first).
                None => {
                    let _ = socket.send(close_frame(CLOSE_TAKEN_OVER, "taken over by another window")).await;
                    st.hosts.detach_terminal(id, viewer);
                    return;
                }
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
    st.hosts.detach_terminal(id, viewer);
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ListArgs {
    page: Option<usize>,
    page_size: Option<usize>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    QueryArgs(a): QueryArgs<ListArgs>,
) -> Result<Response, ApiError> {
    let page = Page::of(a.page, a.page_size);
    let (offset, limit) = page.window()?;
    let hosts = st.hosts.clone();
    let (recs, total) = blocking(move || hosts.terminal_records(offset, limit)).await?;
    let items: Vec<_> = recs.iter().map(record_dto).collect();
    Ok(axum::Json(page.answer(items, total)).into_response())
}

pub(crate) async fn recording(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let hosts = st.hosts.clone();
    let path = blocking(move || hosts.recording_path(id)).await?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::new(
            "not_found",
            format!("the recording of terminal {id} is missing"),
        )
    })?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-asciicast"),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"omp-terminal-{id}.cast\""))
    {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
