//! `/prometheus/api/v1/*`: the Prometheus HTTP API (query, query_range, series, labels, label
//! values, metadata, status/buildinfo) with Prometheus' JSON, so Grafana, promtool and the UI
//! read one store. Authenticated like every route (API token: Bearer, or Basic for Grafana).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use crate::api::AppState;
use crate::tsdb::head::Labels;
use crate::tsdb::promql::{self, Value};

/// Decodes `a=1&b=%20x+y` into pairs (repeated keys kept, as `match[]` needs).
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

fn ok(data: Json) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn err(status: StatusCode, kind: &str, msg: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"status": "error", "errorType": kind, "error": msg.into()})),
    )
        .into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    err(StatusCode::BAD_REQUEST, "bad_data", msg)
}

/// A time: RFC 3339 or (fractional) Unix seconds; milliseconds out.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && secs.abs() < 9.2e15
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A duration: seconds (`15`, `0.5`) or Prometheus units (`15s`, `1m30s`, `2h`); ms out.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return if secs > 0.0 && secs.is_finite() {
            Ok((secs * 1000.0).round() as i64)
        } else {
            Err(format!("invalid duration {s:?}"))
        };
    }
    let mut total = 0i64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: String = std::iter::once(c)
            .chain(std::iter::from_fn(|| {
                chars.next_if(|c| c.is_ascii_alphabetic())
            }))
            .collect();
        let n: i64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        let ms = match unit.as_str() {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return Err(format!("invalid duration {s:?}")),
        };
        total += n * ms;
    }
    if !num.is_empty() || total <= 0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(total)
}

fn metric(l: &Labels) -> Json {
    Json::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// Values as Prometheus writes them: shortest decimal, `NaN`, `+Inf`, `-Inf`.
pub(crate) fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// A timestamp in seconds as Prometheus writes it: an integer when whole, else the
/// shortest decimal.
fn ts(ms: i64) -> Json {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// A query's answer as Prometheus' JSON, written straight into one buffer: a range answer
/// has a point per series and step, and building a `serde_json::Value` tree for millions of
/// points costs more than evaluating the query.
fn result_body(v: Value, t: i64) -> Response {
    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
    if !matches!(v, Value::Matrix(_)) {
        let mut whole = String::new();
        write_result(&v, t, &mut |s| {
            whole.push_str(&s);
            true
        });
        return (json, whole).into_response();
    }
    // A range answer goes out in chunks while the rest is written (on a blocking thread):
    // it is never whole in memory (43 MB for 1,000 series over a day at 60 s steps).
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        write_result(&v, t, &mut |s| tx.blocking_send(Bytes::from(s)).is_ok());
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    (json, axum::body::Body::from_stream(chunks)).into_response()
}

/// Chunks of an answer are handed on when they reach this size.
const ANSWER_CHUNK: usize = 64 * 1024;

/// Writes a query's answer, handing `emit` chunks of about [`ANSWER_CHUNK`] bytes; stops
/// when `emit` returns false (the client left).
fn write_result(v: &Value, t: i64, emit: &mut dyn FnMut(String) -> bool) {
    use std::fmt::Write;
    fn string(out: &mut String, s: &str) {
        // serde_json escapes exactly as JSON requires.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
    fn labels(out: &mut String, l: &Labels) {
        out.push('{');
        for (i, (k, v)) in l.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(out, k);
            out.push(':');
            string(out, v);
        }
        out.push('}');
    }
    fn point(out: &mut String, ms: i64, v: f64) {
        out.push('[');
        if ms % 1000 == 0 {
            out.push_str(itoa::Buffer::new().format(ms / 1000));
        } else {
            let _ = write!(out, "{}", ms as f64 / 1000.0);
        }
        // Finite values are written in place: a range answer has millions of them.
        if v.is_finite() {
            // `{}` is the shortest round-trip decimal without an exponent, as Go's
            // FormatFloat(v, 'f', -1, 64) in Prometheus' answers. (ryu's digits were tried
            // here: faster, but they break ties between two shortest forms differently.)
            let _ = write!(out, ",\"{v}\"]");
        } else {
            let _ = write!(out, ",\"{}\"]", fmt_value(v));
        }
    }
    let mut out = String::with_capacity(ANSWER_CHUNK + 4096);
    out.push_str(r#"{"status":"success","data":{"resultType":"#);
    match v {
        Value::Scalar(x) => {
            out.push_str(r#""scalar","result":"#);
            point(&mut out, t, *x);
        }
        Value::String(s) => {
            out.push_str(r#""string","result":["#);
            let _ = write!(out, "{},", ts(t));
            string(&mut out, s);
            out.push(']');
        }
        Value::Vector(v) => {
            out.push_str(r#""vector","result":["#);
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &e.labels);
                out.push_str(r#","value":"#);
                point(&mut out, t, e.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push_str(r#""matrix","result":["#);
            for (i, r) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &r.labels);
                out.push_str(r#","values":["#);
                for (j, (pt, pv)) in r.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    point(&mut out, *pt, *pv);
                    if out.len() >= ANSWER_CHUNK {
                        let full =
                            std::mem::replace(&mut out, String::with_capacity(ANSWER_CHUNK + 4096));
                        if !emit(full) {
                            return;
                        }
                    }
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push_str("}}");
    emit(out);
}

/// Query parameters from the query string and, for POST, the form body.
fn params(q: &Option<String>, body: &Bytes) -> Vec<(String, String)> {
    let mut p = form_pairs(q.as_deref().unwrap_or(""));
    p.extend(form_pairs(&String::from_utf8_lossy(body)));
    p
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub(crate) async fn query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&q, &body);
    let Some(expr) = get(&p, "query").map(str::to_string) else {
        return bad("missing query parameter \"query\"");
    };
    let t = match get(&p, "time").filter(|s| !s.is_empty()) {
        Some(s) => match parse_time(s) {
            Ok(t) => t,
            Err(e) => return bad(e),
        },
        None => chrono::Utc::now().timestamp_millis(),
    };
    let m = st.metrics.clone();
    match blocking(move || m.query(&expr, t)).await {
        Some(Ok(v)) => result_body(v, t),
        Some(Err(e)) if promql::is_bad_data(&e) => bad(e),
        Some(Err(e)) => err(StatusCode::UNPROCESSABLE_ENTITY, "execution", e),
        None => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "query task failed",
        ),
    }
}

pub(crate) async fn query_range(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&q, &body);
    let Some(expr) = get(&p, "query").map(str::to_string) else {
        return bad("missing query parameter \"query\"");
    };
    let parsed = (|| -> Result<(i64, i64, i64), String> {
        let start = parse_time(get(&p, "start").ok_or("missing parameter \"start\"")?)?;
        let end = parse_time(get(&p, "end").ok_or("missing parameter \"end\"")?)?;
        let step = parse_duration(get(&p, "step").ok_or("missing parameter \"step\"")?)?;
        if end < start {
            return Err("end timestamp must not be before start time".into());
        }
        Ok((start, end, step))
    })();
    let (start, end, step) = match parsed {
        Ok(x) => x,
        Err(e) => return bad(e),
    };
    let m = st.metrics.clone();
    match blocking(move || m.query_range(&expr, start, end, step)).await {
        Some(Ok(v)) => result_body(v, end),
        Some(Err(e)) if promql::is_bad_data(&e) => bad(e),
        Some(Err(e)) => err(StatusCode::UNPROCESSABLE_ENTITY, "execution", e),
        None => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "query task failed",
        ),
    }
}

fn range_params(p: &[(String, String)]) -> Result<(i64, i64), String> {
    let start = get(p, "start")
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .transpose()?
        .unwrap_or(i64::MIN / 2);
    let end = get(p, "end")
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .transpose()?
        .unwrap_or(i64::MAX / 2);
    Ok((start, end))
}

pub(crate) async fn series(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&q, &body);
    let selectors: Vec<String> = p
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| v.clone())
        .collect();
    if selectors.is_empty() {
        return bad("no match[] parameter provided");
    }
    let (start, end) = match range_params(&p) {
        Ok(x) => x,
        Err(e) => return bad(e),
    };
    let m = st.metrics.clone();
    match blocking(move || m.series(&selectors, start, end)).await {
        Some(Ok(v)) => ok(Json::Array(v.iter().map(metric).collect())),
        Some(Err(e)) => bad(e),
        None => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "query task failed",
        ),
    }
}

pub(crate) async fn labels(State(st): State<AppState>) -> Response {
    ok(json!(st.metrics.label_names()))
}

pub(crate) async fn label_values(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    ok(json!(st.metrics.label_values(&name)))
}

/// `?metric=NAME&limit=N`: `{NAME: [{type, help, unit}]}` as Prometheus answers, from the
/// `# TYPE`/`# HELP` lines of scrapes and imports and the agents' host metrics.
pub(crate) async fn metadata(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = form_pairs(q.as_deref().unwrap_or(""));
    let limit = match get(&p, "limit").map(str::parse::<i64>) {
        None => usize::MAX,
        Some(Ok(n)) if n >= 0 => n as usize,
        Some(Ok(_)) => usize::MAX,
        Some(Err(_)) => {
            return err(
                StatusCode::BAD_REQUEST,
                "bad_data",
                "limit must be a number",
            );
        }
    };
    let mut data = Map::new();
    for (name, m) in st
        .metrics
        .metadata(get(&p, "metric").filter(|m| !m.is_empty()), limit)
    {
        data.insert(name, json!([m]));
    }
    ok(Json::Object(data))
}

/// `status/buildinfo`. `version` is the Prometheus release whose API and PromQL OMP answers
/// like (clients such as Grafana switch features on it); OMP's own version is `revision`.
pub(crate) async fn buildinfo() -> Response {
    ok(json!({
        "version": PROMETHEUS_API_VERSION,
        "revision": format!("omp {}", crate::version()),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "none (OMP is written in Rust)",
    }))
}

/// The Prometheus release OMP's query API and PromQL are checked against.
pub(crate) const PROMETHEUS_API_VERSION: &str = "2.42.0";

/// `status/runtimeinfo` with Prometheus' fields (Grafana and promtool read a few of them).
pub(crate) async fn runtimeinfo(State(st): State<AppState>) -> Response {
    let started = st
        .started_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    ok(json!({
        "startTime": started,
        "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "reloadConfigSuccess": true,
        "lastConfigTime": started,
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": format!("{}d", st.config.tsdb.retention_days),
    }))
}

/// `query_exemplars`: OMP stores no exemplars, so the answer is always empty (after the
/// query is checked, as Prometheus does).
pub(crate) async fn query_exemplars(RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = params(&q, &body);
    let Some(expr) = get(&p, "query") else {
        return bad("missing query parameter \"query\"");
    };
    match promql::parse(expr) {
        Ok(_) => ok(json!([])),
        Err(e) => bad(e),
    }
}

fn labels_text(l: &Labels) -> String {
    let inner: Vec<String> = l
        .iter()
        .filter(|(k, _)| k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", crate::tsdb::exposition::escape_label_value(v)))
        .collect();
    if inner.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", inner.join(","))
    }
}

fn name_of(l: &Labels) -> &str {
    l.iter()
        .find(|(k, _)| k == "__name__")
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// `/federate?match[]=…`: the newest sample of every matching series, with its timestamp,
/// in the Prometheus text format, so a Prometheus can scrape OMP.
pub(crate) async fn federate(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = form_pairs(q.as_deref().unwrap_or(""));
    let selectors: Vec<String> = p
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| v.clone())
        .collect();
    if selectors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "give at least one match[] selector\n",
        )
            .into_response();
    }
    let m = st.metrics.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let r = blocking(move || {
        let mut out = String::new();
        for sel in &selectors {
            let v = m.query(&format!("last_over_time({sel}[5m])"), now)?;
            if let Value::Vector(v) = v {
                for e in v {
                    out.push_str(&format!(
                        "{}{} {} {}\n",
                        name_of(&e.labels),
                        labels_text(&e.labels),
                        fmt_value(e.v),
                        now
                    ));
                }
            }
        }
        Ok::<_, String>(out)
    })
    .await;
    match r {
        Some(Ok(text)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Some(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `/metrics`: OMP's own metrics in the Prometheus text format.
pub(crate) async fn self_metrics(State(st): State<AppState>) -> Response {
    let (series, bytes) = st.metrics.stats();
    let hosts = st.hosts.clone();
    let online = blocking(move || {
        let all = hosts.all_records().unwrap_or_default();
        let online = all.iter().filter(|h| hosts.is_online(h.id)).count();
        (all.len(), online)
    })
    .await
    .unwrap_or((0, 0));
    let uptime = (chrono::Utc::now() - st.started_at).num_seconds();
    let text = format!(
        "# HELP omp_build_info OMP version.\n# TYPE omp_build_info gauge\nomp_build_info{{version=\"{v}\"}} 1\n\
         # HELP omp_uptime_seconds Seconds since the server started.\n# TYPE omp_uptime_seconds gauge\nomp_uptime_seconds {uptime}\n\
         # HELP omp_hosts Hosts known to the server.\n# TYPE omp_hosts gauge\nomp_hosts {}\n\
         # HELP omp_hosts_online Hosts whose agent is connected.\n# TYPE omp_hosts_online gauge\nomp_hosts_online {}\n\
         # HELP omp_tsdb_series Series in the metrics store.\n# TYPE omp_tsdb_series gauge\nomp_tsdb_series {series}\n\
         # HELP omp_tsdb_chunk_bytes Bytes of compressed samples held.\n# TYPE omp_tsdb_chunk_bytes gauge\nomp_tsdb_chunk_bytes {bytes}\n",
        online.0,
        online.1,
        v = crate::version(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_times() {
        let p = form_pairs("query=rate(x%5B5m%5D)&match%5B%5D=up&match[]=a+b&t=%");
        assert_eq!(p[0], ("query".into(), "rate(x[5m])".into()));
        assert_eq!(p.iter().filter(|(k, _)| k == "match[]").count(), 2);
        assert_eq!(p[2].1, "a b");
        assert_eq!(p[3].1, "%");
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600_000
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("15s").unwrap(), 15_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        for bad in ["", "0", "-1", "5x", "s", "10"] {
            if bad == "10" {
                assert_eq!(parse_duration(bad).unwrap(), 10_000);
            } else {
                assert!(parse_duration(bad).is_err(), "{bad}");
            }
        }
        assert_eq!(fmt_value(1.0), "1");
        assert_eq!(fmt_value(0.1), "0.1");
        assert_eq!(fmt_value(f64::NEG_INFINITY), "-Inf");
    }
}
