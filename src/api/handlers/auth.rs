//! `/api/v1/auth/*`: login, logout, me, own password, profile, sessions and TOTP.

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, me_dto, time};
use crate::api::error::ApiError;
use crate::api::extract::JsonBody;
use crate::api::{AppState, Transport, clear_cookie, no_content, noted, session_cookie};
use crate::auth::{LoginAttempt, Principal, ProfilePatch, Via};

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

pub(crate) async fn login(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Extension(transport): Extension<Transport>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let auth = st.auth.clone();
    let ok = blocking(move || {
        auth.login(&LoginAttempt {
            username: &b.username,
            password: &b.password,
            totp: b.totp.as_deref(),
            source: &addr.ip().to_string(),
            user_agent: &ua,
        })
    })
    .await?;
    let auth = st.auth.clone();
    let grants = blocking({
        let user = ok.user.clone();
        move || auth.grants_of(&user)
    })
    .await?;
    let principal = Principal {
        user: ok.user.clone(),
        grants,
        via: Via::Session {
            key: String::new(),
            id: ok.session.id.clone(),
            csrf_token: ok.session.csrf_token.clone(),
        },
    };
    let body = json!({
        "csrf_token": ok.session.csrf_token,
        "must_change_password": ok.user.must_change_password,
        "user": me_dto(&principal),
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(
            &ok.cookie_secret,
            st.config.server.secure_cookies || transport.tls,
        ),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

pub(crate) async fn logout(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    if let Via::Session { key, .. } = &p.via {
        let (auth, key) = (st.auth.clone(), key.clone());
        blocking(move || auth.logout(&key)).await?;
    }
    let mut resp = no_content();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(noted(resp, p.user.username, ""))
}

pub(crate) async fn me(Extension(p): Extension<Principal>) -> Response {
    axum::Json(me_dto(&p)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    current_password: String,
    new_password: String,
}

pub(crate) async fn change_password(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let who = p.user.username.clone();
    blocking(move || auth.change_password(&p, &b.current_password, &b.new_password)).await?;
    Ok(noted(no_content(), who, ""))
}

pub(crate) async fn update_profile(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<ProfilePatch>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let id = p.user.id;
    let user = blocking(move || auth.update_profile(id, b)).await?;
    let me = me_dto(&Principal {
        user: user.clone(),
        ..p
    });
    Ok(noted(axum::Json(me).into_response(), user.username, ""))
}

pub(crate) async fn sessions(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let id = p.user.id;
    let list = blocking(move || auth.sessions_of(id)).await?;
    let current = match &p.via {
        Via::Session { id, .. } => Some(id.clone()),
        Via::Token { .. } => None,
    };
    let items: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "created_at": time(s.created_at),
                "last_seen_at": time(s.last_seen_at),
                "source": s.source,
                "user_agent": s.user_agent,
                "current": current.as_deref() == Some(s.id.as_str()),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

pub(crate) async fn revoke_all(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let id = p.user.id;
    let n = blocking(move || auth.revoke_sessions(id)).await?;
    let mut resp = no_content();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    Ok(noted(resp, p.user.username, format!("{n} sessions ended")))
}

pub(crate) async fn totp_setup(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let id = p.user.id;
    let (secret, url) = blocking(move || auth.totp_setup(id)).await?;
    let mut resp = axum::Json(json!({ "secret": secret, "otpauth_url": url })).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(noted(resp, p.user.username, ""))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeBody {
    code: String,
}

pub(crate) async fn totp_enable(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let id = p.user.id;
    blocking(move || auth.totp_enable(id, &b.code)).await?;
    Ok(noted(no_content(), p.user.username, ""))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordOnly {
    password: String,
}

pub(crate) async fn totp_disable(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<PasswordOnly>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let who = p.user.username.clone();
    blocking(move || auth.totp_disable(&p, &b.password)).await?;
    Ok(noted(no_content(), who, ""))
}
