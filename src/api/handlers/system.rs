//! `/api/v1/system/info`: version, uptime and which platform modules this build offers.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::AppState;

/// Every module of the platform and whether this build has it. The UI shows an honest
/// "not available yet" page for the others.
pub(crate) const MODULES: &[(&str, bool)] = &[
    ("dashboard", true),
    ("hosts", true),
    ("applications", false),
    ("appstore", false),
    ("monitoring", true),
    ("alerts", false),
    ("healing", false),
    ("inspection", false),
    ("backup", false),
    ("tools", false),
    ("kb", false),
    ("assistant", false),
    ("bigscreen", false),
    ("users", true),
    ("audit", true),
    ("settings", false),
];

pub(crate) async fn info(State(st): State<AppState>) -> Response {
    let now = chrono::Utc::now();
    let modules: Vec<_> = MODULES
        .iter()
        .map(|(k, a)| json!({ "key": k, "available": a }))
        .collect();
    axum::Json(json!({
        "version": crate::version(),
        "started_at": st.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "uptime_secs": (now - st.started_at).num_seconds().max(0),
        "modules": modules,
    }))
    .into_response()
}
