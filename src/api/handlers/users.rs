//! `/api/v1/users`, `/api/v1/roles`, `/api/v1/permissions`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, parse_id, user_dto};
use crate::api::error::ApiError;
use crate::api::extract::{JsonBody, Page, QueryArgs};
use crate::api::{AppState, no_content, noted};
use crate::auth::{Auth, NewUser, Principal, RoleInput, UserPatch};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ListArgs {
    q: Option<String>,
    page: Option<usize>,
    page_size: Option<usize>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    QueryArgs(a): QueryArgs<ListArgs>,
) -> Result<Response, ApiError> {
    let page = Page::of(a.page, a.page_size);
    let (offset, limit) = page.window()?;
    let auth = st.auth.clone();
    let (users, total) = blocking(move || auth.list_users(a.q.as_deref(), offset, limit)).await?;
    let items: Vec<_> = users.iter().map(user_dto).collect();
    Ok(axum::Json(page.answer(items, total)).into_response())
}

pub(crate) async fn create(
    State(st): State<AppState>,
    JsonBody(b): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let u = blocking(move || auth.create_user(b)).await?;
    let resp = (StatusCode::CREATED, axum::Json(user_dto(&u))).into_response();
    Ok(noted(
        resp,
        u.username.clone(),
        format!("roles: {}", u.roles.join(",")),
    ))
}

pub(crate) async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let auth = st.auth.clone();
    let u = blocking(move || auth.get_user(id)).await?;
    Ok(axum::Json(user_dto(&u)).into_response())
}

pub(crate) async fn update(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UserPatch>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let detail = describe_patch(&b);
    let auth = st.auth.clone();
    let u = blocking(move || auth.update_user(&p, id, b)).await?;
    Ok(noted(
        axum::Json(user_dto(&u)).into_response(),
        u.username,
        detail,
    ))
}

fn describe_patch(b: &UserPatch) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &b.roles {
        parts.push(format!("roles: {}", r.join(",")));
    }
    if let Some(d) = b.disabled {
        parts.push(if d {
            "disabled".into()
        } else {
            "enabled".into()
        });
    }
    if b.display_name.is_some() || b.email.is_some() {
        parts.push("profile".into());
    }
    parts.join("; ")
}

pub(crate) async fn delete_one(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let auth = st.auth.clone();
    let u = blocking(move || auth.delete_user(&p, id)).await?;
    Ok(noted(no_content(), u.username, ""))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    new_password: String,
}

pub(crate) async fn reset_password(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ResetBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let auth = st.auth.clone();
    let u = blocking(move || auth.reset_password(id, &b.new_password)).await?;
    Ok(noted(no_content(), u.username, "must change at next login"))
}

pub(crate) async fn list_roles(State(st): State<AppState>) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let roles = blocking(move || auth.list_roles()).await?;
    Ok(axum::Json(json!({ "items": roles })).into_response())
}

pub(crate) async fn create_role(
    State(st): State<AppState>,
    JsonBody(b): JsonBody<RoleInput>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let role = blocking(move || auth.create_role(b)).await?;
    let detail = role.permissions.join(",");
    Ok(noted(
        (StatusCode::CREATED, axum::Json(&role)).into_response(),
        role.name.clone(),
        detail,
    ))
}

pub(crate) async fn update_role(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<RoleInput>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let role = blocking(move || auth.update_role(&name, b)).await?;
    let detail = role.permissions.join(",");
    Ok(noted(
        axum::Json(&role).into_response(),
        role.name.clone(),
        detail,
    ))
}

pub(crate) async fn delete_role(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let auth = st.auth.clone();
    let role = blocking(move || auth.delete_role(&name)).await?;
    Ok(noted(no_content(), role.name, ""))
}

pub(crate) async fn list_permissions() -> Response {
    let items: Vec<_> = Auth::permissions()
        .iter()
        .map(|(n, d)| json!({ "name": n, "description": d }))
        .collect();
    axum::Json(json!({ "items": items })).into_response()
}
