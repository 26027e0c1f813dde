//! A small SSH client for pushing the agent to a host (russh; the only module importing
//! it): connect with a host-key decision made by the caller (trust on first use is the
//! caller's policy), log in with a password or a private key, run remote commands with
//! optional stdin. Remote commands are strings for the remote shell: callers build them only
//! from validated, quoted values (see `hosts::push`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

/// What to accept as the server's host key.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// Only this fingerprint (`SHA256:…`).
    Exactly(String),
    /// Any key (trust on first use); the caller stores what was seen.
    FirstUse,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach {0}: {1}")]
    Connect(String, String),
    #[error(
        "the host key of {addr} is {seen}, not the expected {expected}: if the host was reinstalled, forget its old key and push again"
    )]
    HostKeyMismatch {
        addr: String,
        seen: String,
        expected: String,
    },
    #[error("login as {0} failed: wrong password or key, or that login method is not allowed")]
    Auth(String),
    #[error("the private key cannot be read: {0}")]
    Key(String),
    #[error("SSH failed: {0}")]
    Protocol(String),
    #[error("the remote command timed out after {0} s")]
    Timeout(u64),
}

/// Output of a remote command.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub code: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

struct Checker {
    policy: HostKeyPolicy,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let fp = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.fingerprint(HashAlg::Sha256).to_string()
            }
            PublicKeyOrCertificate::Certificate(c) => {
                c.public_key().fingerprint(HashAlg::Sha256).to_string()
            }
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(fp.clone());
        Ok(match &self.policy {
            HostKeyPolicy::Exactly(want) => *want == fp,
            HostKeyPolicy::FirstUse => true,
        })
    }
}

/// A logged-in SSH connection.
pub struct Session {
    handle: client::Handle<Checker>,
    /// Fingerprint of the host key the server presented.
    pub host_key: String,
}

/// Connects to `host:port` and checks the host key against `policy`.
pub async fn connect(
    host: &str,
    port: u16,
    policy: HostKeyPolicy,
    timeout: Duration,
) -> Result<Session, SshError> {
    let addr = format!("{host}:{port}");
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(120)),
        keepalive_interval: Some(Duration::from_secs(15)),
        ..Default::default()
    });
    let seen = Arc::new(Mutex::new(None));
    let checker = Checker {
        policy: policy.clone(),
        seen: seen.clone(),
    };
    let r = tokio::time::timeout(timeout, client::connect(config, (host, port), checker)).await;
    let seen_fp = || seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match r {
        Err(_) => Err(SshError::Connect(
            addr,
            format!("no answer within {} s", timeout.as_secs()),
        )),
        Ok(Ok(handle)) => Ok(Session {
            handle,
            host_key: seen_fp().unwrap_or_default(),
        }),
        Ok(Err(e)) => match (seen_fp(), policy) {
            (Some(seen), HostKeyPolicy::Exactly(expected)) if seen != expected => {
                Err(SshError::HostKeyMismatch {
                    addr,
                    seen,
                    expected,
                })
            }
            (None, _) => Err(SshError::Connect(addr, e.to_string())),
            _ => Err(SshError::Protocol(e.to_string())),
        },
    }
}

impl Session {
    pub async fn login_password(&mut self, user: &str, password: &str) -> Result<(), SshError> {
        let r = self
            .handle
            .authenticate_password(user, password)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))?;
        if r.success() {
            Ok(())
        } else {
            Err(SshError::Auth(user.to_string()))
        }
    }

    pub async fn login_key(
        &mut self,
        user: &str,
        pem: &str,
        passphrase: Option<&str>,
    ) -> Result<(), SshError> {
        let key = russh::keys::decode_secret_key(pem, passphrase)
            .map_err(|e| SshError::Key(e.to_string()))?;
        let hash = self
            .handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let r = self
            .handle
            .authenticate_publickey(user, key)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))?;
        if r.success() {
            Ok(())
        } else {
            Err(SshError::Auth(user.to_string()))
        }
    }

    /// Runs `command` in the remote shell, feeding `stdin`, within `timeout`.
    pub async fn run(
        &mut self,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        let work = async {
            let mut ch = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?;
            ch.exec(true, command)
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?;
            if let Some(data) = stdin {
                ch.data(data)
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?;
            }
            ch.eof()
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?;
            let mut out = Output::default();
            let (mut o, mut e) = (Vec::new(), Vec::new());
            while let Some(msg) = ch.wait().await {
                match msg {
                    russh::ChannelMsg::Data { data } => o.extend_from_slice(&data),
                    russh::ChannelMsg::ExtendedData { data, .. } => e.extend_from_slice(&data),
                    russh::ChannelMsg::ExitStatus { exit_status } => out.code = Some(exit_status),
                    _ => {}
                }
                // Keep memory bounded whatever the remote prints.
                o.truncate(64 * 1024);
                e.truncate(64 * 1024);
            }
            out.stdout = String::from_utf8_lossy(&o).into_owned();
            out.stderr = String::from_utf8_lossy(&e).into_owned();
            Ok(out)
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| SshError::Timeout(timeout.as_secs()))?
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Quotes a value for a POSIX shell (single quotes). Callers also validate what they quote.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/opt/omp agent"), "'/opt/omp agent'");
        assert_eq!(sh_quote("a'b;$(x)"), "'a'\\''b;$(x)'");
    }
}
