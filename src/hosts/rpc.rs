//! Request/reply exchanges with agents (`ServerMsg::Request` → `AgentMsg::Reply`): top
//! processes on demand and agent-side scrapes. Each request waits on a oneshot with a
//! timeout; a disconnect fails the host's pending requests at once instead of letting them
//! time out.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Hosts, lock};
use crate::auth::rbac::Grants;
use crate::error::{Error, Result};
use crate::proto::{AgentReply, AgentRequest, ProcessList, ServerMsg};

/// Requests sent and not answered yet.
#[derive(Default)]
pub(crate) struct Pending {
    next: u64,
    waiting: HashMap<u64, (u64, oneshot::Sender<AgentReply>)>,
}

impl Hosts {
    /// Sends `request` to the agent of `host_id` and waits for its reply (at most `timeout`).
    pub async fn request(
        &self,
        host_id: u64,
        request: AgentRequest,
        timeout: Duration,
    ) -> Result<AgentReply> {
        let tx = self
            .sender(host_id)
            .ok_or_else(|| Error::Conflict(format!("host {host_id} is offline")))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let req = {
            let mut p = lock(&self.rpc);
            p.next += 1;
            let req = p.next;
            p.waiting.insert(req, (host_id, reply_tx));
            req
        };
        let forget = || {
            lock(&self.rpc).waiting.remove(&req);
        };
        if tx.send(ServerMsg::Request { req, request }).await.is_err() {
            forget();
            return Err(Error::Conflict(format!("host {host_id} is offline")));
        }
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error::Conflict(format!(
                "host {host_id} disconnected before answering"
            ))),
            Err(_) => {
                forget();
                Err(Error::Conflict(format!(
                    "host {host_id} did not answer within {} s (is its agent older than the server?)",
                    timeout.as_secs()
                )))
            }
        }
    }

    /// The host's busiest processes, by "cpu" or "memory" (read access to the host needed).
    pub async fn processes(
        &self,
        grants: &Grants,
        host_id: u64,
        sort: &str,
        limit: u32,
    ) -> Result<ProcessList> {
        if sort != "cpu" && sort != "memory" {
            return Err(Error::validation("sort", "sort is cpu or memory"));
        }
        if !(1..=500).contains(&limit) {
            return Err(Error::validation("limit", "limit is 1..500"));
        }
        let h = self.get(grants, host_id, "hosts:read")?;
        if !self.is_online(host_id) {
            return Err(Error::Conflict(format!(
                "host {} is offline",
                h.record.inventory.hostname
            )));
        }
        let request = AgentRequest::Processes {
            sort: sort.to_string(),
            limit,
        };
        match self
            .request(host_id, request, Duration::from_secs(15))
            .await?
        {
            AgentReply::Processes(list) => Ok(list),
            AgentReply::Failed { message } => Err(Error::Conflict(message)),
            other => Err(Error::Internal(format!("unexpected agent reply {other:?}"))),
        }
    }

    /// Delivers an agent's reply to whoever waits for it (replies from another host than
    /// the one asked are ignored).
    pub(crate) fn on_reply(&self, host_id: u64, req: u64, reply: AgentReply) {
        let mut p = lock(&self.rpc);
        if p.waiting.get(&req).is_some_and(|(h, _)| *h == host_id)
            && let Some((_, tx)) = p.waiting.remove(&req)
        {
            let _ = tx.send(reply);
        }
    }

    /// Fails every request waiting on `host_id` (its agent disconnected).
    pub(crate) fn host_requests_lost(&self, host_id: u64) {
        lock(&self.rpc).waiting.retain(|_, (h, _)| *h != host_id);
    }
}
