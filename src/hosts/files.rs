//! File transfer through the agent channel: uploads are hashed on the server and checked
//! again by the agent after writing; downloads are collected up to a size limit. Transfers
//! in flight are tracked by id and fail when their agent disconnects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest;
use tokio::sync::oneshot;

use super::{Hosts, lock};
use crate::auth::Grants;
use crate::error::{Error, Result};
use crate::proto::{FilePut, ServerMsg};

/// Longest a transfer may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);
const CHUNK: usize = 256 * 1024;

/// The outcome of a transfer: size and SHA-256, plus the bytes of a download.
#[derive(Debug, Clone)]
pub struct Transferred {
    pub size: u64,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

struct Pending {
    host_id: u64,
    buf: Vec<u8>,
    max: u64,
    tx: oneshot::Sender<Result<Transferred>>,
}

#[derive(Default)]
pub(crate) struct Transfers {
    pending: HashMap<u64, Pending>,
}

static NEXT_XFER: AtomicU64 = AtomicU64::new(1);

impl Transfers {
    pub(crate) fn new() -> Arc<Mutex<Transfers>> {
        Arc::default()
    }
}

impl Hosts {
    fn transfer_target(
        &self,
        grants: &Grants,
        host_id: u64,
    ) -> Result<tokio::sync::mpsc::Sender<ServerMsg>> {
        let h = self.get(grants, host_id, "files:transfer")?;
        self.sender(host_id).ok_or_else(|| {
            Error::Conflict(format!("host {} is offline", h.record.inventory.hostname))
        })
    }

    fn expect(&self, host_id: u64, max: u64) -> (u64, oneshot::Receiver<Result<Transferred>>) {
        let xfer = NEXT_XFER.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.xfers).pending.insert(
            xfer,
            Pending {
                host_id,
                buf: Vec::new(),
                max,
                tx,
            },
        );
        (xfer, rx)
    }

    async fn wait(
        &self,
        xfer: u64,
        rx: oneshot::Receiver<Result<Transferred>>,
    ) -> Result<Transferred> {
        let r = tokio::time::timeout(TRANSFER_TIMEOUT, rx).await;
        lock(&self.xfers).pending.remove(&xfer);
        match r {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Conflict(
                "the agent disconnected during the transfer".into(),
            )),
            Err(_) => Err(Error::Conflict("the transfer timed out".into())),
        }
    }

    /// Writes `bytes` to `path` on a host (atomically, checksum verified by the agent).
    pub async fn upload(
        &self,
        grants: &Grants,
        host_id: u64,
        path: &str,
        mode: u32,
        owner: Option<String>,
        bytes: &[u8],
    ) -> Result<Transferred> {
        crate::proto::check_remote_path(path).map_err(|e| Error::validation("path", e))?;
        if mode > 0o7777 {
            return Err(Error::validation(
                "mode",
                "mode must be octal permission bits, e.g. 0644",
            ));
        }
        if let Some(o) = &owner {
            let ok = !o.is_empty()
                && o.len() <= 64
                && o.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
                && !o.starts_with('-');
            if !ok {
                return Err(Error::validation(
                    "owner",
                    "owner is user or user:group (names or numbers)",
                ));
            }
        }
        let tx = self.transfer_target(grants, host_id)?;
        let sha256 = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes));
        let (xfer, rx) = self.expect(host_id, 0);
        let put = FilePut {
            xfer,
            path: path.to_string(),
            mode,
            owner,
            size: bytes.len() as u64,
            sha256: sha256.clone(),
        };
        let mut ok = tx.send(ServerMsg::FilePut(put)).await.is_ok();
        for chunk in bytes.chunks(CHUNK) {
            if !ok {
                break;
            }
            ok = tx
                .send(ServerMsg::FileChunk {
                    xfer,
                    data: data_encoding::BASE64.encode(chunk),
                })
                .await
                .is_ok();
        }
        if ok {
            ok = tx.send(ServerMsg::FilePutEnd { xfer }).await.is_ok();
        }
        if !ok {
            lock(&self.xfers).pending.remove(&xfer);
            return Err(Error::Conflict(
                "the agent disconnected during the transfer".into(),
            ));
        }
        let r = self.wait(xfer, rx).await?;
        if r.sha256 != sha256 {
            return Err(Error::Internal(format!(
                "the agent stored a file with checksum {} instead of {sha256}",
                r.sha256
            )));
        }
        Ok(r)
    }

    /// Reads `path` from a host, refusing files larger than `max_bytes`.
    pub async fn download(
        &self,
        grants: &Grants,
        host_id: u64,
        path: &str,
        max_bytes: u64,
    ) -> Result<Transferred> {
        crate::proto::check_remote_path(path).map_err(|e| Error::validation("path", e))?;
        let tx = self.transfer_target(grants, host_id)?;
        let (xfer, rx) = self.expect(host_id, max_bytes);
        if tx
            .send(ServerMsg::FileGet {
                xfer,
                path: path.to_string(),
                max_bytes,
            })
            .await
            .is_err()
        {
            lock(&self.xfers).pending.remove(&xfer);
            return Err(Error::Conflict("the agent disconnected".into()));
        }
        let r = self.wait(xfer, rx).await?;
        let sha = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(&r.bytes));
        if sha != r.sha256 {
            return Err(Error::Internal(
                "the downloaded file does not match the agent's checksum".into(),
            ));
        }
        Ok(r)
    }

    /// A chunk of a download.
    pub(crate) fn file_data(&self, host_id: u64, xfer: u64, data: &str) {
        let mut t = lock(&self.xfers);
        let over = {
            let Some(p) = t.pending.get_mut(&xfer).filter(|p| p.host_id == host_id) else {
                return;
            };
            match data_encoding::BASE64.decode(data.as_bytes()) {
                Ok(b) if (p.buf.len() + b.len()) as u64 <= p.max => {
                    p.buf.extend_from_slice(&b);
                    None
                }
                Ok(_) => Some("the file is larger than the limit".to_string()),
                Err(_) => Some("the agent sent invalid data".to_string()),
            }
        };
        if let Some(e) = over
            && let Some(p) = t.pending.remove(&xfer)
        {
            let _ = p.tx.send(Err(Error::Conflict(e)));
        }
    }

    /// The end of a transfer.
    pub(crate) fn file_done(
        &self,
        host_id: u64,
        xfer: u64,
        error: Option<String>,
        size: u64,
        sha256: String,
    ) {
        let Some(p) = lock(&self.xfers).pending.remove(&xfer) else {
            return;
        };
        if p.host_id != host_id {
            return;
        }
        let r = match error {
            Some(e) => Err(Error::Conflict(e)),
            None => Ok(Transferred {
                size,
                sha256,
                bytes: p.buf,
            }),
        };
        let _ = p.tx.send(r);
    }

    /// Fails the transfers of a host that went away.
    pub(crate) fn host_transfers_lost(&self, host_id: u64) {
        let mut t = lock(&self.xfers);
        let ids: Vec<u64> = t
            .pending
            .iter()
            .filter(|(_, p)| p.host_id == host_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(p) = t.pending.remove(&id) {
                let _ = p.tx.send(Err(Error::Conflict(
                    "the agent disconnected during the transfer".into(),
                )));
            }
        }
    }
}
