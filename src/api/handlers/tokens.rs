//! `/api/v1/tokens`: API tokens (Bearer, or Basic with the token as password).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, token_dto};
use crate::api::error::ApiError;
use crate::api::extract::{JsonBody, QueryArgs};
use crate::api::{AppState, no_content, noted};
use crate::auth::Principal;
use crate::error::Error;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ListArgs {
    all: bool,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    QueryArgs(a): QueryArgs<ListArgs>,
) -> Result<Response, ApiError> {
    if a.all && !p.grants.allows("tokens:admin") {
        return Err(Error::Forbidden("tokens:admin".into()).into());
    }
    let auth = st.auth.clone();
    let items = blocking(move || {
        let tokens = auth.list_tokens((!a.all).then_some(p.user.id))?;
        Ok(tokens
            .iter()
            .map(|t| token_dto(t, &auth.username_of(t.user_id)))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(axum::Json(json!({ "items": items })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    name: String,
    #[serde(default)]
    expires_in_days: Option<u32>,
}

pub(crate) async fn create(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(b): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let id = p.user.id;
    let t = blocking(move || auth.create_token(id, &b.name, b.expires_in_days)).await?;
    let mut body = token_dto(&t.token, &p.user.username);
    body["token"] = json!(t.token_secret);
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(noted(
        resp,
        format!("token {} ({})", t.token.name, t.token.prefix),
        "",
    ))
}

pub(crate) async fn revoke(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let t = blocking(move || auth.revoke_token(&p, &id)).await?;
    Ok(noted(
        no_content(),
        format!("token {} ({})", t.name, t.prefix),
        "",
    ))
}
