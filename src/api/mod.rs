//! The HTTP surface: `/api/v1` (REST, JSON), `/api/openapi.json`, `/healthz` and the
//! embedded UI. The only module that knows HTTP (axum/hyper). Authentication, CSRF, the
//! RBAC check and auditing of mutations happen in ONE middleware ([`authz`]) driven by the
//! route table, so a new route cannot forget them.

pub mod error;
mod extract;
mod handlers;
pub mod openapi;
pub mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::audit::{self, Audit};
use crate::auth::{Auth, Via};
use crate::config::Config;
use crate::error::Error;
use crate::store::Store;
use error::ApiError;
use routes::{Access, RouteDef};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "omp_session";
/// Header carrying the CSRF token on cookie-authenticated mutations.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub auth: Auth,
    pub audit: Audit,
    pub hosts: crate::hosts::Hosts,
    pub metrics: crate::metrics::Metrics,
    pub scraper: crate::scrape::Scraper,
    pub store: Store,
    /// What enrollment commands need to pin this server.
    pub pins: Pins,
    pub config: Arc<Config>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Agent fleet upgrades and the agent binary they hand out.
    pub fleet: crate::lifecycle::fleet::Fleet,
    routes: Arc<HashMap<(Method, &'static str), RouteDef>>,
    /// The OpenAPI document as JSON text: a `Value` tree of it held ~750 KB for the
    /// server's life, its text ~10× less.
    openapi: axum::body::Bytes,
}

/// The server's TLS pins: the certificate hash agents pin, and curl's public-key pin.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    pub cert: String,
    pub curl: String,
}

/// The services the API serves.
pub struct Services {
    pub auth: Auth,
    pub audit: Audit,
    pub hosts: crate::hosts::Hosts,
    pub metrics: crate::metrics::Metrics,
    pub scraper: crate::scrape::Scraper,
    pub store: Store,
}

impl AppState {
    pub fn new(services: Services, pins: Pins, config: Arc<Config>) -> Self {
        let Services {
            auth,
            audit,
            hosts,
            metrics,
            scraper,
            store,
        } = services;
        let defs = routes::definitions();
        let openapi = serde_json::to_vec(&openapi::document(&defs))
            .map(axum::body::Bytes::from)
            .unwrap_or_default();
        let routes = defs
            .into_iter()
            .map(|d| ((d.method.clone(), d.path), d))
            .collect();
        let fleet = crate::lifecycle::fleet::Fleet::new(hosts.clone(), config.agent.binary.clone());
        AppState {
            fleet,
            auth,
            audit,
            hosts,
            metrics,
            scraper,
            store,
            pins,
            config,
            started_at: chrono::Utc::now(),
            routes: Arc::new(routes),
            openapi,
        }
    }
}

/// What a handler tells the audit middleware about the object it acted on.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub target: String,
    pub detail: String,
}

/// Builds the whole application.
pub fn router(state: AppState) -> Router {
    let mut api = Router::new();
    for (def, handler) in routes::table() {
        api = api.route(def.path, handler);
    }
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), authz));
    Router::new()
        // The version header lets upgrades check that the new binary is the one answering.
        .route(
            "/healthz",
            get(|| async { ([("x-omp-version", crate::version())], "ok") }),
        )
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/agent/v1/connect", get(handlers::agent::connect))
        .route(
            "/api/agent/v1/install.sh",
            get(handlers::agent::install_script),
        )
        .route("/api/agent/v1/binary", get(handlers::agent::binary))
        .route(
            "/api/agent/v1/upgrade-binary",
            get(handlers::fleet::upgrade_binary),
        )
        .merge(api)
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .fallback(handlers::ui::serve)
        .layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::new("not_found", "no such API route: see /api/openapi.json")
}

async fn openapi_json(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        st.openapi.clone(),
    )
        .into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // antd injects styles at run time, hence 'unsafe-inline' for styles only.
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    resp
}

/// Address of the caller (no proxy headers are trusted).
fn source_of(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The credential a request carries.
enum Credential {
    Token(String),
    Cookie(String),
    None,
}

fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| {
            ApiError::new("unauthenticated", "the Authorization header is not ASCII")
        })?;
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Ok(Credential::Token(t.trim().to_string()));
        }
        if let Some(b) = v.strip_prefix("Basic ") {
            let raw = data_encoding::BASE64
                .decode(b.trim().as_bytes())
                .map_err(|_| {
                    ApiError::new(
                        "unauthenticated",
                        "the Basic credentials are not valid base64",
                    )
                })?;
            let text = String::from_utf8(raw).map_err(|_| {
                ApiError::new("unauthenticated", "the Basic credentials are not UTF-8")
            })?;
            let (_, pw) = text.split_once(':').unwrap_or(("", &text));
            return Ok(Credential::Token(pw.to_string()));
        }
        return Err(ApiError::new(
            "unauthenticated",
            "Authorization must be Bearer <token> or Basic",
        ));
    }
    Ok(cookie_value(headers, SESSION_COOKIE)
        .map(Credential::Cookie)
        .unwrap_or(Credential::None))
}

/// Authentication, CSRF, password-change gate, RBAC and audit for every `/api/v1` route.
async fn authz(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let Some(def) =
        matched.and_then(|p| st.routes.get(&(req.method().clone(), p.as_str())).cloned())
    else {
        // The path matched but not the method: axum's 405 fallback runs inside this layer.
        let msg = format!("{} is not allowed on {}", req.method(), req.uri().path());
        return ApiError::new("method_not_allowed", msg).into_response();
    };
    let source = source_of(&req);
    let target = req.uri().path().to_string();
    let (actor, outcome) = match check(&st, &def, &mut req).await {
        Ok(actor) => (actor, None),
        Err((actor, e)) => (actor, Some(e)),
    };
    let resp = match outcome {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };
    if def.is_mutating() && !def.audits_itself {
        let note = resp
            .extensions()
            .get::<AuditNote>()
            .cloned()
            .unwrap_or_default();
        let status = resp.status();
        let entry = audit::Entry {
            actor,
            action: def.action.to_string(),
            target: if note.target.is_empty() {
                target
            } else {
                note.target
            },
            source,
            success: status.is_success(),
            status: status.as_u16() as i64,
            detail: note.detail,
        };
        let audit = st.audit.clone();
        match tokio::task::spawn_blocking(move || audit.append(entry)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return ApiError::internal(format!("audit write failed: {e}")).into_response();
            }
            Err(e) => return ApiError::internal(format!("audit task failed: {e}")).into_response(),
        }
    }
    resp
}

/// The checks of [`authz`]; on failure returns who it was (for the audit) and the error.
async fn check(
    st: &AppState,
    def: &RouteDef,
    req: &mut Request,
) -> Result<String, (String, ApiError)> {
    if def.access == Access::Public {
        return Ok("anonymous".into());
    }
    let anon = |e: ApiError| ("anonymous".to_string(), e);
    let cred = credential(req.headers()).map_err(anon)?;
    let auth = st.auth.clone();
    let principal = tokio::task::spawn_blocking(move || match cred {
        Credential::Token(t) => auth.authenticate_token(&t),
        Credential::Cookie(c) => auth.authenticate_session(&c),
        Credential::None => Err(Error::Unauthenticated),
    })
    .await
    .map_err(|e| anon(ApiError::internal(e)))?
    .map_err(|e| anon(e.into()))?;
    let who = principal.user.username.clone();
    let deny = |e: ApiError| (who.clone(), e);
    if let Via::Session { csrf_token, .. } = &principal.via
        && def.is_mutating()
    {
        {
            let sent = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ok: bool =
                subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf_token.as_bytes()).into();
            if !ok {
                return Err(deny(ApiError::new(
                    "csrf_failed",
                    "the X-CSRF-Token header is missing or wrong: reload the page",
                )));
            }
        }
    }
    if principal.user.must_change_password && !def.while_password_change {
        return Err(deny(Error::PasswordChangeRequired.into()));
    }
    if let Access::Perm(p) = def.access
        && !principal.grants.allows(p)
    {
        return Err(deny(Error::Forbidden(p.to_string()).into()));
    }
    req.extensions_mut().insert(principal);
    Ok(who)
}

/// Sets the session cookie.
pub(crate) fn session_cookie(secret: &str, secure: bool) -> HeaderValue {
    let v = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// Clears the session cookie.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("omp_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Attaches an audit note to a response.
pub(crate) fn noted(
    mut resp: Response,
    target: impl Into<String>,
    detail: impl Into<String>,
) -> Response {
    resp.extensions_mut().insert(AuditNote {
        target: target.into(),
        detail: detail.into(),
    });
    resp
}

/// 204 No Content.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// How a request reached the server.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub tls: bool,
}

/// Serves `app` on `listener` until `shutdown` resolves. Each connection is sniffed: a TLS
/// ClientHello (first byte 0x16) is served over TLS with the server identity (agents, and
/// browsers using https://), anything else as plain HTTP on the same port.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: crate::tls::Acceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::ServiceExt;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            let peeked =
                tokio::time::timeout(std::time::Duration::from_secs(10), tcp.peek(&mut first))
                    .await;
            let is_tls = match peeked {
                Ok(Ok(1)) => first[0] == 0x16,
                _ => return,
            };
            let svc = app.map_request(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(addr));
                    req.extensions_mut().insert(Transport { tls: is_tls });
                    req
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = if is_tls {
                // A client that never finishes its handshake must not hold a task forever.
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(10), tls.accept(tcp));
                match handshake.await {
                    Ok(Ok(stream)) => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                        watcher.watch(conn.into_owned()).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%addr, error = %e, "TLS handshake failed.");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%addr, "TLS handshake timed out.");
                        return;
                    }
                }
            } else {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                watcher.watch(conn.into_owned()).await
            };
            if let Err(e) = result {
                tracing::debug!(%addr, error = %e, "Connection ended with an error.");
            }
        });
    }
    // Let in-flight requests finish; long-lived sockets (agents) are cut after the grace.
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
    }
    Ok(())
}
