//! Interactive shells for the web terminal: a PTY per session (portable-pty), output
//! streamed to the server in UTF-8-safe chunks from a reader thread, input and resizes
//! applied as they come. The shell is the agent user's login shell.

use std::io::{Read, Write};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::mpsc;

use crate::proto::AgentMsg;

/// One open terminal.
pub struct Term {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    killer: Box<dyn portable_pty::ChildKiller + Send + Sync>,
}

fn size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows: rows.clamp(2, 500),
        cols: cols.clamp(10, 1000),
        pixel_width: 0,
        pixel_height: 0,
    }
}

fn shell() -> String {
    if let Ok(s) = std::env::var("SHELL")
        && std::path::Path::new(&s).exists()
    {
        return s;
    }
    if std::path::Path::new("/bin/bash").exists() {
        "/bin/bash".into()
    } else {
        "/bin/sh".into()
    }
}

impl Term {
    /// Starts a shell; output and the exit go to `out`.
    pub fn open(
        term: u64,
        cols: u16,
        rows: u16,
        out: mpsc::Sender<AgentMsg>,
    ) -> anyhow::Result<Term> {
        let pair = native_pty_system().openpty(size(cols, rows))?;
        let mut cmd = CommandBuilder::new(shell());
        cmd.arg("-l");
        cmd.env("TERM", "xterm-256color");
        cmd.cwd(std::env::var("HOME").unwrap_or_else(|_| "/".into()));
        let mut child = pair.slave.spawn_command(cmd)?;
        drop(pair.slave);
        let killer = child.clone_killer();
        let mut reader = pair.master.try_clone_reader()?;
        let writer = pair.master.take_writer()?;
        std::thread::Builder::new()
            .name(format!("term-{term}"))
            .spawn(move || {
                let mut buf = [0u8; 8192];
                let mut carry = Vec::new();
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            carry.extend_from_slice(&buf[..n]);
                            let (text, rest) = super::runner::split_utf8(&carry);
                            carry = rest;
                            if !text.is_empty()
                                && out
                                    .blocking_send(AgentMsg::TermOutput { term, data: text })
                                    .is_err()
                            {
                                break;
                            }
                        }
                    }
                }
                let code = child.wait().ok().map(|s| s.exit_code() as i32);
                let _ = out.blocking_send(AgentMsg::TermExit {
                    term,
                    code,
                    error: None,
                });
            })?;
        Ok(Term {
            master: pair.master,
            writer,
            killer,
        })
    }

    pub fn input(&mut self, data: &str) {
        let _ = self.writer.write_all(data.as_bytes());
        let _ = self.writer.flush();
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.master.resize(size(cols, rows));
    }

    /// Ends the shell (the reader thread then reports the exit).
    pub fn close(&mut self) {
        let _ = self.killer.kill();
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.killer.kill();
    }
}
