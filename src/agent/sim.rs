//! Simulated agents for `omp bench agents`: the real protocol over real pinned TLS
//! WebSockets, but commands are answered at once and terminal input is echoed back, so one
//! process can stand in for a thousand hosts and the server's side is what gets measured.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::proto::{self, AgentHello, AgentMsg, ExecDone, Inventory, ServerMsg, Stream, Welcome};

/// Connects, enrolls with `secret`, then serves until `stop` turns true. Returns an error
/// when it cannot get connected.
pub async fn run(
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    secret: String,
    index: usize,
    connected: tokio::sync::mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(crate::tls::server_name(&host), tcp)
        .await?;
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("wss://{host}:{port}/api/agent/v1/connect"),
        stream,
    )
    .await?;
    let hello = AgentHello::Enroll {
        version: crate::version().into(),
        protocol: proto::PROTOCOL,
        token_secret: secret,
        inventory: Inventory {
            hostname: format!("sim-{index:04}"),
            machine_id: format!("sim-{index}"),
            os: "simulated".into(),
            cpus: 1,
            memory_bytes: 1 << 30,
            ..Default::default()
        },
    };
    ws.send(Message::text(serde_json::to_string(&hello)?))
        .await?;
    let heartbeat = match ws.next().await {
        Some(Ok(Message::Text(t))) => match serde_json::from_str::<Welcome>(&t)? {
            Welcome::Enrolled { heartbeat_secs, .. } | Welcome::Welcome { heartbeat_secs, .. } => {
                heartbeat_secs
            }
            Welcome::Refused { reason, .. } => anyhow::bail!("refused: {reason}"),
        },
        other => anyhow::bail!("no welcome: {other:?}"),
    };
    let _ = connected.send(()).await;
    let mut beat = tokio::time::interval(Duration::from_secs(heartbeat.max(1)));
    let send = |m: &AgentMsg| Message::text(serde_json::to_string(m).unwrap_or_default());
    loop {
        tokio::select! {
            _ = beat.tick() => { ws.send(send(&AgentMsg::Heartbeat { uptime_secs: 0 })).await?; }
            _ = stop.changed() => { let _ = ws.close(None).await; return Ok(()); }
            m = ws.next() => {
                let Some(Ok(Message::Text(t))) = m else {
                    if matches!(m, Some(Ok(_))) { continue; }
                    anyhow::bail!("connection closed");
                };
                match serde_json::from_str::<ServerMsg>(&t) {
                    Ok(ServerMsg::Exec(req)) => {
                        ws.send(send(&AgentMsg::ExecStarted { job: req.job })).await?;
                        ws.send(send(&AgentMsg::ExecOutput { job: req.job, stream: Stream::Stdout, data: "ok\n".into() })).await?;
                        let done = ExecDone { job: req.job, exit_code: Some(0), duration_ms: 0, outcome: "ok".into(), error: None, dropped_bytes: 0 };
                        ws.send(send(&AgentMsg::ExecDone(done))).await?;
                    }
                    Ok(ServerMsg::TermInput { term, data }) => {
                        ws.send(send(&AgentMsg::TermOutput { term, data })).await?;
                    }
                    Ok(ServerMsg::TermClose { term }) => {
                        ws.send(send(&AgentMsg::TermExit { term, code: Some(0), error: None })).await?;
                    }
                    _ => {}
                }
            }
        }
    }
}
