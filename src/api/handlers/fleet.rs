//! Agent fleet upgrade: `POST /api/v1/hosts/upgrade` (all hosts, a group or a list; a
//! canary batch first), `GET /api/v1/hosts/upgrades[/{id}]`, `GET
//! /api/v1/hosts/agent-binary`, and the agents' one-time-ticket download
//! `GET /api/agent/v1/upgrade-binary` (outside the user route table, like the other agent
//! routes). The runs themselves are `lifecycle::fleet`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, parse_id};
use crate::api::error::ApiError;
use crate::api::extract::JsonBody;
use crate::api::{AppState, noted};
use crate::auth::Principal;
use crate::hosts::HostFilter;
use crate::lifecycle::fleet::Target;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpgradeBody {
    /// Every host the caller may see.
    #[serde(default)]
    all: bool,
    /// Hosts of this group.
    group: Option<String>,
    /// These host ids.
    hosts: Option<Vec<u64>>,
    /// Hosts upgraded (and confirmed) before the others; default 1.
    canary: Option<usize>,
    /// Seconds a host has to reconnect with the new version; default 120.
    timeout_secs: Option<u64>,
}

pub(crate) async fn start(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<UpgradeBody>,
) -> Result<Response, ApiError> {
    let chosen = b.all as u8 + b.group.is_some() as u8 + b.hosts.is_some() as u8;
    if chosen != 1 {
        return Err(ApiError::new(
            "validation_failed",
            "choose the hosts with exactly one of all: true, group or hosts",
        ));
    }
    let timeout = b.timeout_secs.unwrap_or(120);
    if !(10..=3600).contains(&timeout) {
        return Err(ApiError::new(
            "validation_failed",
            "timeout_secs must be between 10 and 3600",
        ));
    }
    let canary = b.canary.unwrap_or(1);
    let hosts = st.hosts.clone();
    let grants = p.grants.clone();
    let group = b.group.clone();
    // RBAC host-group scoping applies: only hosts the caller may see are selectable.
    let visible = blocking(move || {
        hosts.list(
            &grants,
            &HostFilter {
                group,
                ..HostFilter::default()
            },
        )
    })
    .await?;
    let targets: Vec<Target> = match &b.hosts {
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
                let v = visible
                    .iter()
                    .find(|v| v.record.id == *id)
                    .ok_or_else(|| ApiError::new("not_found", format!("no host with id {id}")))?;
                out.push(v);
            }
            out
        }
        None => visible.iter().collect(),
    }
    .into_iter()
    .map(|v| Target {
        host_id: v.record.id,
        hostname: v.record.inventory.hostname.clone(),
        agent_version: v.record.agent_version.clone(),
        online: v.online,
    })
    .collect();
    let run = st
        .fleet
        .start(targets, canary, timeout, &p.user.username)
        .map_err(|e| ApiError::new("conflict", e))?;
    let detail = format!(
        "agents to {} ({} hosts, canary {canary})",
        run.version,
        run.hosts.len()
    );
    let mut resp = (StatusCode::ACCEPTED, axum::Json(json!(run))).into_response();
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/hosts/upgrades/{}", run.id))
            .map_err(ApiError::internal)?,
    );
    Ok(noted(resp, format!("upgrade {}", run.id), detail))
}

pub(crate) async fn list(State(st): State<AppState>) -> Response {
    axum::Json(json!({ "items": st.fleet.list() })).into_response()
}

pub(crate) async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let run = st
        .fleet
        .get(id)
        .ok_or_else(|| ApiError::new("not_found", format!("no agent upgrade {id}")))?;
    Ok(axum::Json(json!(run)).into_response())
}

pub(crate) async fn agent_binary(State(st): State<AppState>) -> Result<Response, ApiError> {
    let fleet = st.fleet.clone();
    let b = blocking(move || {
        fleet
            .agent_binary()
            .map_err(|e| crate::error::Error::Refused(format!("{e:#}")))
    })
    .await?;
    Ok(axum::Json(json!(b)).into_response())
}

/// The agent binary for a self-upgrade; `Authorization: Upgrade <ticket>` (one-time).
pub(crate) async fn upgrade_binary(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ticket = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Upgrade "))
        .map(str::trim)
        .unwrap_or("");
    if st.fleet.take_ticket(ticket).is_none() {
        return Err(ApiError::new(
            "unauthenticated",
            "the upgrade ticket is unknown, used or expired",
        ));
    }
    let fleet = st.fleet.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let b = fleet.agent_binary()?;
        Ok::<_, anyhow::Error>(std::fs::read(&b.path)?)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}
