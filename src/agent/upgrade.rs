//! Agent self-upgrade (fleet upgrade from the server): download the new binary over the
//! pinned TLS connection with a one-time ticket, check size and SHA-256, check that it
//! runs and reports the ordered version, keep the current binary as `omp.prev` beside it,
//! swap atomically (rename) and re-execute with the same arguments. A marker in the data
//! dir (`upgrade-pending.json`) makes the new binary put the previous one back and
//! re-execute it when it cannot reconnect within the confirmation time (also after a
//! crash loop under systemd, since every start checks the marker's deadline).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proto::UpgradeRequest;

const MARKER: &str = "upgrade-pending.json";

/// Where the agent reaches the server (for the download).
#[derive(Clone)]
pub struct Link {
    pub host: String,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
    pub data_dir: PathBuf,
}

/// A self-upgrade waiting for its first successful connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub exe: PathBuf,
    pub previous: PathBuf,
    pub from_version: String,
    pub to_version: String,
    /// Unix seconds after which the new binary gives up and restores the previous one.
    pub deadline: i64,
}

pub fn pending(data_dir: &Path) -> Option<Pending> {
    let text = std::fs::read_to_string(data_dir.join(MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The new binary connected: the upgrade is final.
pub fn confirm(data_dir: &Path) {
    if let Some(p) = pending(data_dir) {
        let _ = std::fs::remove_file(data_dir.join(MARKER));
        if p.to_version == crate::version() {
            tracing::info!(from = %p.from_version, to = %p.to_version, "Self-upgrade confirmed.");
        }
    }
}

/// Puts the previous binary back and re-executes it. Returns only on failure.
pub fn revert(data_dir: &Path) -> anyhow::Error {
    let Some(p) = pending(data_dir) else {
        return anyhow!("no pending upgrade to revert");
    };
    let _ = std::fs::remove_file(data_dir.join(MARKER));
    if p.to_version != crate::version() {
        // The previous binary runs already (a revert happened before).
        return anyhow!("the previous version already runs");
    }
    tracing::warn!(from = %p.to_version, to = %p.from_version, "The upgraded agent did not get connected: restoring the previous agent binary.");
    if let Err(e) = std::fs::rename(&p.previous, &p.exe) {
        return anyhow!("cannot restore {}: {e}", p.previous.display());
    }
    reexec(&p.exe)
}

/// Replaces this process with `exe`, same arguments. Returns only on failure.
pub fn reexec(exe: &Path) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow!("cannot re-execute {}: {err}", exe.display())
}

/// Downloads, checks and installs the new binary and records the pending marker; the
/// caller reports and then calls [`reexec`] with the returned path. On error nothing was
/// swapped.
pub async fn prepare(link: &Link, req: &UpgradeRequest) -> anyhow::Result<PathBuf> {
    if req.version == crate::version() {
        bail!("this agent already runs version {}", req.version);
    }
    let exe = std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .context("cannot find this executable")?;
    let dir = exe.parent().context("the executable has no folder")?;
    let body = download(link, &req.ticket, req.size).await?;
    let sha = crate::lifecycle::bundle::hex(&Sha256::digest(&body));
    if body.len() as u64 != req.size || sha != req.sha256 {
        bail!(
            "the downloaded binary does not match (size {} vs {}, SHA-256 {}… vs {}…)",
            body.len(),
            req.size,
            &sha[..12],
            &req.sha256.get(..12).unwrap_or("")
        );
    }
    let staged = dir.join(".omp.upgrade");
    let previous = dir.join("omp.prev");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&staged, &body).with_context(|| {
            format!(
                "cannot write {} (is the agent's folder writable?)",
                staged.display()
            )
        })?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))?;
        std::fs::File::open(&staged)?.sync_all()?;
    }
    let out = tokio::process::Command::new(&staged)
        .arg("version")
        .output()
        .await
        .context("the new binary does not run")?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if said != format!("omp {}", req.version) {
        let _ = std::fs::remove_file(&staged);
        bail!("the new binary reports {said:?}, not omp {}", req.version);
    }
    // Keep the current binary: a hard link costs nothing and leaves `exe` in place until
    // the rename below replaces it atomically.
    let _ = std::fs::remove_file(&previous);
    if std::fs::hard_link(&exe, &previous).is_err() {
        std::fs::copy(&exe, &previous).context("cannot keep the previous binary")?;
    }
    let marker = Pending {
        exe: exe.clone(),
        previous,
        from_version: crate::version().into(),
        to_version: req.version.clone(),
        deadline: chrono::Utc::now().timestamp() + req.confirm_secs.max(5) as i64,
    };
    crate::auth::write_secret_file(
        &link.data_dir.join(MARKER),
        &serde_json::to_string_pretty(&marker)?,
    )
    .context("cannot write the upgrade marker")?;
    std::fs::rename(&staged, &exe).with_context(|| format!("cannot replace {}", exe.display()))?;
    Ok(exe)
}

/// `GET /api/agent/v1/upgrade-binary` over the pinned TLS connection (HTTP/1.1 by hand:
/// the agent has no HTTP client, and the answer has a Content-Length).
async fn download(link: &Link, ticket: &str, size: u64) -> anyhow::Result<Vec<u8>> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((link.host.as_str(), link.port)),
    )
    .await
    .map_err(|_| anyhow!("connecting for the download timed out"))??;
    let connector = tokio_rustls::TlsConnector::from(link.tls.clone());
    let mut s = connector
        .connect(crate::tls::server_name(&link.host), tcp)
        .await
        .context("TLS handshake for the download failed")?;
    let req = format!(
        "GET /api/agent/v1/upgrade-binary HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Upgrade {ticket}\r\nConnection: close\r\n\r\n",
        link.host, link.port
    );
    s.write_all(req.as_bytes()).await?;
    let limit = size + 64 * 1024;
    let mut buf = Vec::with_capacity(size as usize + 4096);
    let read = tokio::time::timeout(Duration::from_secs(600), async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() as u64 > limit {
                        bail!("the server sent more than announced");
                    }
                }
                // A peer that closes without TLS close_notify: the length check decides.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    })
    .await;
    read.map_err(|_| anyhow!("the download timed out"))??;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("bad HTTP answer to the download")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        bail!("the server refused the download: {status}");
    }
    Ok(buf[split + 4..].to_vec())
}
