//! Runs one command for the server: argv only (never a shell unless the server sent
//! `/bin/sh -c`, which needs its own permission there), its own process group so a timeout
//! or cancel kills every child, output streamed in UTF-8-safe chunks and bounded.

use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use crate::proto::{AgentMsg, ExecDone, ExecRequest, Stream};

/// Runs `req`, sending progress on `out`; `cancel` fires to stop it.
pub async fn run(req: ExecRequest, out: mpsc::Sender<AgentMsg>, cancel: oneshot::Receiver<()>) {
    let started = Instant::now();
    let job = req.job;
    let done = |outcome: &str, exit_code: Option<i32>, error: Option<String>, dropped: u64| {
        AgentMsg::ExecDone(ExecDone {
            job,
            exit_code,
            duration_ms: started.elapsed().as_millis() as u64,
            outcome: outcome.into(),
            error,
            dropped_bytes: dropped,
        })
    };
    let Some((program, args)) = req.argv.split_first() else {
        let _ = out
            .send(done("error", None, Some("empty argv".into()), 0))
            .await;
        return;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = out
                .send(done(
                    "error",
                    None,
                    Some(format!("cannot start {program}: {e}")),
                    0,
                ))
                .await;
            return;
        }
    };
    let _ = out.send(AgentMsg::ExecStarted { job }).await;
    let pgid = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32));
    let limit = req.max_output_bytes;
    let stdout = child
        .stdout
        .take()
        .map(|s| tokio::spawn(pump(s, Stream::Stdout, job, limit, out.clone())));
    let stderr = child
        .stderr
        .take()
        .map(|s| tokio::spawn(pump(s, Stream::Stderr, job, limit, out.clone())));
    let kill = || {
        if let Some(p) = pgid {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
    };
    let timeout = tokio::time::sleep(std::time::Duration::from_secs(req.timeout_secs));
    let (outcome, code) = tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => ("ok", s.code()),
            Ok(s) => ("failed", s.code()),
            Err(e) => {
                let _ = out.send(done("error", None, Some(e.to_string()), 0)).await;
                return;
            }
        },
        _ = timeout => {
            kill();
            let _ = child.wait().await;
            ("timeout", None)
        }
        _ = cancel => {
            kill();
            let _ = child.wait().await;
            ("cancelled", None)
        }
    };
    // Grandchildren may hold the pipes open: they die with the group on timeout or cancel;
    // after a normal exit, the pumps end when the pipes close.
    let mut dropped = 0;
    for p in [stdout, stderr].into_iter().flatten() {
        dropped += p.await.unwrap_or(0);
    }
    let error = match outcome {
        "timeout" => Some(format!("killed after {} s", req.timeout_secs)),
        "cancelled" => Some("cancelled".into()),
        _ => None,
    };
    let _ = out.send(done(outcome, code, error, dropped)).await;
}

/// Streams a pipe as UTF-8 text chunks; returns the bytes dropped beyond `limit`.
async fn pump(
    mut r: impl tokio::io::AsyncRead + Unpin,
    stream: Stream,
    job: u64,
    limit: u64,
    out: mpsc::Sender<AgentMsg>,
) -> u64 {
    let mut buf = vec![0u8; 16 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut sent = 0u64;
    let mut dropped = 0u64;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if sent >= limit {
            dropped += n as u64;
            continue;
        }
        carry.extend_from_slice(&buf[..n]);
        let (text, rest) = split_utf8(&carry);
        let mut text = text;
        let room = (limit - sent) as usize;
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            dropped += (text.len() - cut) as u64 + rest.len() as u64;
            text = text[..cut].to_string();
            carry.clear();
        } else {
            carry = rest;
        }
        sent += text.len() as u64;
        if !text.is_empty()
            && out
                .send(AgentMsg::ExecOutput {
                    job,
                    stream,
                    data: text,
                })
                .await
                .is_err()
        {
            break;
        }
    }
    if !carry.is_empty() && sent < limit {
        let _ = out
            .send(AgentMsg::ExecOutput {
                job,
                stream,
                data: String::from_utf8_lossy(&carry).into_owned(),
            })
            .await;
    }
    dropped
}

/// Splits bytes into the longest valid UTF-8 text and an incomplete tail (invalid bytes in
/// the middle become U+FFFD).
pub fn split_utf8(bytes: &[u8]) -> (String, Vec<u8>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), Vec::new()),
        Err(e) if e.error_len().is_none() => {
            let (ok, tail) = bytes.split_at(e.valid_up_to());
            (String::from_utf8_lossy(ok).into_owned(), tail.to_vec())
        }
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_keeps_incomplete_tail() {
        let s = "héllo".as_bytes();
        let (a, b) = split_utf8(&s[..2]);
        assert_eq!((a.as_str(), b.as_slice()), ("h", &s[1..2]));
        let (a, b) = split_utf8(s);
        assert_eq!((a.as_str(), b.len()), ("héllo", 0));
    }

    async fn collect(req: ExecRequest, cancel_after_ms: Option<u64>) -> Vec<AgentMsg> {
        let (tx, mut rx) = mpsc::channel(1024);
        let (ctx, crx) = oneshot::channel();
        let h = tokio::spawn(run(req, tx, crx));
        if let Some(ms) = cancel_after_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            let _ = ctx.send(());
        } else {
            std::mem::forget(ctx);
        }
        h.await.unwrap();
        let mut v = Vec::new();
        while let Ok(m) = rx.try_recv() {
            v.push(m);
        }
        v
    }

    fn req(argv: &[&str], timeout: u64, limit: u64) -> ExecRequest {
        ExecRequest {
            job: 1,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout_secs: timeout,
            max_output_bytes: limit,
        }
    }

    fn last_done(v: &[AgentMsg]) -> ExecDone {
        match v.last() {
            Some(AgentMsg::ExecDone(d)) => d.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn stdout(v: &[AgentMsg]) -> String {
        v.iter()
            .filter_map(|m| match m {
                AgentMsg::ExecOutput {
                    stream: Stream::Stdout,
                    data,
                    ..
                } => Some(data.as_str()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn runs_argv_without_a_shell() {
        let v = collect(req(&["echo", "a;b", "$HOME"], 10, 1024), None).await;
        assert_eq!(stdout(&v), "a;b $HOME\n");
        assert_eq!(last_done(&v).outcome, "ok");
        let v = collect(req(&["false"], 10, 1024), None).await;
        assert_eq!(
            (last_done(&v).outcome.as_str(), last_done(&v).exit_code),
            ("failed", Some(1))
        );
        let v = collect(req(&["/no/such/program"], 10, 1024), None).await;
        assert_eq!(last_done(&v).outcome, "error");
    }

    #[tokio::test]
    async fn output_is_bounded_and_counted() {
        let v = collect(req(&["head", "-c", "100000", "/dev/zero"], 10, 1000), None).await;
        assert_eq!(stdout(&v).len(), 1000);
        assert_eq!(last_done(&v).dropped_bytes, 99_000);
    }

    #[tokio::test]
    async fn timeout_and_cancel_kill_the_group() {
        let v = collect(req(&["sh", "-c", "sleep 30 & sleep 30"], 1, 1024), None).await;
        let d = last_done(&v);
        assert_eq!(d.outcome, "timeout");
        assert!(d.duration_ms < 10_000, "{d:?}");
        let v = collect(req(&["sleep", "30"], 60, 1024), Some(200)).await;
        assert_eq!(last_done(&v).outcome, "cancelled");
    }
}
