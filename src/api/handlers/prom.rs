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
use crate::tsdb::promql::{self, Range, Value};

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
    let mut out = Vec::with_capacity(24);
    put_value(v, |b| out.extend_from_slice(b));
    String::from_utf8(out).unwrap_or_default()
}

/// A value as Prometheus writes it, handed to `put` in pieces.
fn put_value(v: f64, mut put: impl FnMut(&[u8])) {
    if v.is_nan() {
        put(b"NaN");
    } else if v.is_infinite() {
        put(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v == 0.0 {
        put(if v.is_sign_negative() { b"-0" } else { b"0" });
    } else if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        // An integer below 2^53 is its own shortest form (its neighbours are at most 1
        // apart); counters and gauges are mostly integers, and itoa is several times
        // faster than the general path.
        put(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        go_float(v, put);
    }
}

/// A finite value as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it, which is what
/// Prometheus' answers hold: the shortest digits that read back as `v`, laid out without an
/// exponent. When two shortest forms are equally close Go (like ryu, whose digits these
/// are) keeps the even one; Rust's `{}` rounds up: 1396400603604244.25 is "…244.2" in
/// Prometheus' answers and "…244.3" with `{}`.
fn go_float(v: f64, mut put: impl FnMut(&[u8])) {
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (mant, exp) = match s.iter().position(|&c| c == b'e') {
        Some(i) => {
            let (sign, e) = match &s[i + 1..] {
                [b'-', e @ ..] => (-1, e),
                e => (1, e),
            };
            let e = e
                .iter()
                .fold(0i32, |a, d| a * 10 + (d.wrapping_sub(b'0') as i32));
            (&s[..i], sign * e)
        }
        None => (s, 0),
    };
    // Significant digits and where the point goes among them.
    let mut digits = [0u8; 24];
    let (mut n, mut point, mut after_dot) = (0usize, 0i32, false);
    for &c in mant {
        if c == b'.' {
            after_dot = true;
        } else if n == 0 && c == b'0' {
            point -= i32::from(after_dot);
        } else if n < digits.len() {
            digits[n] = c;
            n += 1;
            point += i32::from(!after_dot);
        }
    }
    while n > 0 && digits[n - 1] == b'0' {
        n -= 1;
    }
    let point = point + exp;
    const ZEROS: [u8; 16] = [b'0'; 16];
    let zeros = |put: &mut dyn FnMut(&[u8]), mut k: usize| {
        while k > 0 {
            put(&ZEROS[..k.min(16)]);
            k -= k.min(16);
        }
    };
    if neg {
        put(b"-");
    }
    if n == 0 {
        put(b"0");
    } else if point <= 0 {
        put(b"0.");
        zeros(&mut put, point.unsigned_abs() as usize);
        put(&digits[..n]);
    } else if point as usize >= n {
        put(&digits[..n]);
        zeros(&mut put, point as usize - n);
    } else {
        put(&digits[..point as usize]);
        put(b".");
        put(&digits[point as usize..n]);
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
        let mut whole = Vec::new();
        write_result(&v, t, &mut |s| {
            whole.extend_from_slice(&s);
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

/// An answer being written, handed on in chunks.
struct Answer {
    buf: Vec<u8>,
}

impl Answer {
    fn new() -> Answer {
        Answer {
            buf: Vec::with_capacity(ANSWER_CHUNK + 4096),
        }
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    /// Appends `s`. Pieces are mostly 1 to 20 bytes: `extend_from_slice` copies each with
    /// a `memcpy` call, which in the static binary's libc (musl) costs several times the
    /// copy itself, so short pieces go byte by byte.
    #[inline]
    fn put(&mut self, s: &[u8]) {
        if s.len() <= 24 {
            self.buf.reserve(s.len());
            for &c in s {
                self.buf.push(c);
            }
        } else {
            self.buf.extend_from_slice(s);
        }
    }

    /// The bytes written so far; the answer starts over empty.
    fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(ANSWER_CHUNK + 4096))
    }
}

impl std::fmt::Write for Answer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

fn string(out: &mut Answer, s: &str) {
    // serde_json escapes exactly as JSON requires.
    out.put(serde_json::to_string(s).unwrap_or_default().as_bytes());
}

fn label_set(out: &mut Answer, l: &Labels) {
    out.put(b"{");
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.put(b",");
        }
        string(out, k);
        out.put(b":");
        string(out, v);
    }
    out.put(b"}");
}

fn point(out: &mut Answer, ms: i64, v: f64) {
    use std::fmt::Write;
    out.put(b"[");
    if ms % 1000 == 0 {
        out.put(itoa::Buffer::new().format(ms / 1000).as_bytes());
    } else {
        let _ = write!(out, "{}", ms as f64 / 1000.0);
    }
    out.put(b",\"");
    put_value(v, |b| out.put(b));
    out.put(b"\"]");
}

/// One series of a range answer (after a comma unless it is the first); false when `emit`
/// refused a chunk.
fn write_series(
    out: &mut Answer,
    r: &Range,
    first: bool,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> bool {
    if !first {
        out.put(b",");
    }
    out.put(br#"{"metric":"#);
    label_set(out, &r.labels);
    out.put(br#","values":["#);
    for (j, (pt, pv)) in r.points.iter().enumerate() {
        if j > 0 {
            out.put(b",");
        }
        point(out, *pt, *pv);
        if out.len() >= ANSWER_CHUNK && !emit(out.take()) {
            return false;
        }
    }
    out.put(b"]}");
    true
}

/// Series a writer thread takes at a time.
const SERIES_PER_BLOCK: usize = 16;

/// The series of a range answer. Writing the values is most of a large answer's time and
/// every series is written on its own, so with more than one core blocks of series are
/// written on one thread per core and handed on in order (each thread at most a few
/// blocks ahead: the answer is still never whole in memory). False when `emit` refused.
fn write_matrix(m: &[Range], out: &mut Answer, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> bool {
    let workers = crate::tsdb::cores();
    if workers < 2 || m.len() < 2 * SERIES_PER_BLOCK {
        return m
            .iter()
            .enumerate()
            .all(|(i, r)| write_series(out, r, i == 0, emit));
    }
    if !emit(out.take()) {
        return false;
    }
    let blocks: Vec<&[Range]> = m.chunks(SERIES_PER_BLOCK).collect();
    std::thread::scope(|sc| {
        let mut written = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(2);
            let blocks = &blocks;
            sc.spawn(move || {
                for (b, series) in blocks.iter().enumerate().skip(w).step_by(workers) {
                    let (mut a, mut parts) = (Answer::new(), Vec::new());
                    for (i, r) in series.iter().enumerate() {
                        write_series(&mut a, r, b == 0 && i == 0, &mut |c| {
                            parts.push(c);
                            true
                        });
                    }
                    parts.push(a.take());
                    // The receiver is gone when the client left.
                    if tx.send(parts).is_err() {
                        return;
                    }
                }
            });
            written.push(rx);
        }
        // Leaving this closure drops the receivers: writers still running stop at their
        // next block.
        (0..blocks.len()).all(|b| {
            written[b % workers]
                .recv()
                .is_ok_and(|parts| parts.into_iter().all(&mut *emit))
        })
    })
}

/// Writes a query's answer, handing `emit` chunks of about [`ANSWER_CHUNK`] bytes; stops
/// when `emit` returns false (the client left).
fn write_result(v: &Value, t: i64, emit: &mut dyn FnMut(Vec<u8>) -> bool) {
    use std::fmt::Write;
    let mut out = Answer::new();
    out.put(br#"{"status":"success","data":{"resultType":"#);
    match v {
        Value::Scalar(x) => {
            out.put(br#""scalar","result":"#);
            point(&mut out, t, *x);
        }
        Value::String(s) => {
            out.put(br#""string","result":["#);
            let _ = write!(out, "{},", ts(t));
            string(&mut out, s);
            out.put(b"]");
        }
        Value::Vector(v) => {
            out.put(br#""vector","result":["#);
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                out.put(br#"{"metric":"#);
                label_set(&mut out, &e.labels);
                out.put(br#","value":"#);
                point(&mut out, t, e.v);
                out.put(b"}");
            }
            out.put(b"]");
        }
        Value::Matrix(m) => {
            out.put(br#""matrix","result":["#);
            if !write_matrix(m, &mut out, emit) {
                return;
            }
            out.put(b"]");
        }
    }
    out.put(b"}}");
    emit(out.take());
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
    fn values_as_prometheus_writes_them() {
        // What Prometheus 2.42 answers for these number literals (checked with the real
        // one), and the non-finite ones.
        let z323 = "0".repeat(323);
        let cases: Vec<(f64, String)> = vec![
            (1_396_400_603_604_244.2, "1396400603604244.2".into()),
            (0.1 + 0.2, "0.30000000000000004".into()),
            (9007199254740993.0, "9007199254740992".into()),
            (1e21, "1000000000000000000000".into()),
            (1.5e22, "15000000000000000000000".into()),
            (1e-7, "0.0000001".into()),
            (5e-324, format!("0.{z323}5")),
            (1.0, "1".into()),
            (123.0, "123".into()),
            (-5.0, "-5".into()),
            (9007199254740991.0, "9007199254740991".into()),
            (4503599627370497.0, "4503599627370497".into()),
            (-0.001, "-0.001".into()),
            (0.0, "0".into()),
            (-0.0, "-0".into()),
            (1234.5678, "1234.5678".into()),
            (f64::NAN, "NaN".into()),
            (f64::INFINITY, "+Inf".into()),
        ];
        for (v, want) in cases {
            assert_eq!(fmt_value(v), want, "{v:e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn integers_and_short_decimals_as_rust_writes_them(
            i in -(1i64 << 53)..(1i64 << 53),
            k in 0i32..6,
        ) {
            // Decimals kept below 2^40, where no two shortest forms can tie.
            let d = (i >> 13) as f64;
            for v in [i as f64, d / 10f64.powi(k), d * 0.001] {
                proptest::prop_assert_eq!(fmt_value(v), format!("{v}"));
            }
        }

        #[test]
        fn values_read_back_and_are_shortest(bits in proptest::prelude::any::<u64>()) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            let ours = fmt_value(v);
            proptest::prop_assert_eq!(ours.parse::<f64>().unwrap().to_bits(), v.to_bits());
            // Rust's `{}` is also shortest and closest: the two differ at most in the last
            // digit, by one, where two forms are equally close.
            let rust = format!("{v}");
            proptest::prop_assert_eq!(ours.len(), rust.len());
            let diff: Vec<(u8, u8)> = ours.bytes().zip(rust.bytes()).filter(|(a, b)| a != b).collect();
            proptest::prop_assert!(diff.is_empty() || (diff.len() == 1 && diff[0].0.abs_diff(diff[0].1) == 1), "{} {}", ours, rust);
        }
    }

    #[test]
    fn range_answers_written_on_several_threads_come_out_in_order() {
        // More series than one block per thread, points enough for several chunks each.
        let m: Vec<Range> = (0..150)
            .map(|i| Range {
                labels: vec![("instance".into(), format!("i\"{i}"))],
                points: (0..(i % 7) * 300)
                    .map(|j| (1_700_000_000_000 + j * 60_000, (i * j) as f64 / 7.0))
                    .collect(),
            })
            .collect();
        let want = json!({"status": "success", "data": {"resultType": "matrix", "result":
            m.iter().map(|r| json!({"metric": metric(&r.labels), "values":
                r.points.iter().map(|(t, v)| json!([ts(*t), fmt_value(*v)])).collect::<Vec<_>>()
            })).collect::<Vec<_>>()
        }});
        let v = Value::Matrix(m);
        let mut got = Vec::new();
        let mut chunks = 0;
        write_result(&v, 0, &mut |c| {
            got.extend(c);
            chunks += 1;
            true
        });
        assert!(chunks > 10, "{chunks} chunks");
        assert_eq!(serde_json::from_slice::<Json>(&got).unwrap(), want);
        // A client that leaves after the first chunks stops the writers.
        let mut taken = 0;
        write_result(&v, 0, &mut |_| {
            taken += 1;
            taken < 3
        });
        assert_eq!(taken, 3);
    }

    #[test]
    fn answer_pieces_of_every_size_land_whole() {
        // Pieces of 0 to 40 bytes, past the first buffer's end, and a chunk handed over
        // midway: the bytes are exactly the pieces in order.
        let mut a = Answer::new();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for i in 0..20_000usize {
            let piece: Vec<u8> = (0..i % 41).map(|j| (i * 31 + j) as u8).collect();
            a.put(&piece);
            want.extend_from_slice(&piece);
            if i == 7_000 {
                got.extend(a.take());
            }
        }
        got.extend(a.take());
        assert_eq!(got, want);
        assert!(a.take().is_empty());
    }

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
