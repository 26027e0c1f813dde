//! PromQL compatibility with the real Prometheus: one generated OpenMetrics file is
//! backfilled into Debian's Prometheus 2.42 (`promtool tsdb create-blocks-from openmetrics`)
//! and into a real `omp serve` (the import API); every query of `tests/promql/queries.txt` is
//! then run against both HTTP APIs, as instant queries at several times and as range queries
//! with several steps, and the answers must be equal: status and error type, result type,
//! label sets, timestamps and values. Values must be equal as Prometheus prints them (or both
//! NaN); only queries calling a transcendental function (`LIBM_FUNCTIONS`: Go's math library
//! and the platform's libm differ in the last bit of exp, log, pow and trigonometry) may differ
//! by `REL_TOL`. Expectations come from Prometheus, never from hand-typed numbers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

/// Relative tolerance for results of `LIBM_FUNCTIONS` (see the module doc).
const REL_TOL: f64 = 1e-14;

/// Functions and operators whose results may differ in the last bit between Go and libm.
const LIBM_FUNCTIONS: &[&str] = &[
    "exp(", "ln(", "log2(", "log10(", "sin(", "cos(", "tan(", "asin(", "acos(", "atan(", "sinh(",
    "cosh(", "tanh(", "asinh(", "acosh(", "atanh(", "atan2", "^",
];

/// Sample interval of the generated data and its length.
const STEP_S: i64 = 15;
const POINTS: i64 = 481;

/// A real Prometheus on a loopback port chosen by the kernel, serving `storage`.
pub struct Prometheus {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` on `storage` and waits for its "ready" log line (no sleeps).
    pub fn start(storage: &Path, extra: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  evaluation_interval: 1m\n").unwrap();
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg("--storage.tsdb.retention.time=30d")
            .arg("--web.listen-address=127.0.0.1:0")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Debian's prometheus is installed (tests/run installs it)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut addr = None;
        let mut ready = false;
        let mut log = String::new();
        // "Listening on" (with the port) comes from another goroutine than "Server is
        // ready": either may be logged first, so wait for both.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            log.push_str(&line);
            log.push('\n');
            if line.contains("msg=\"Listening on\"")
                && let Some(a) = line.split("address=").nth(1)
            {
                addr = Some(a.trim().to_string());
            }
            ready |= line.contains("Server is ready to receive web requests");
            if ready && addr.is_some() {
                break;
            }
        }
        let addr = addr.unwrap_or_else(|| panic!("prometheus did not start:\n{log}"));
        Prometheus {
            child,
            base: format!("http://{addr}"),
            _dir: dir,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic generator (a 64-bit LCG).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn om_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn om_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn om_labels(l: &[(&str, String)]) -> String {
    let inner: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", om_escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The test data from `t0` (seconds) on, two hours at 15 s: counters with resets and
/// series that start late or stop, gauges with gaps and negative values, a histogram,
/// NaN/±Inf, escaped label values, sparse series (5-minute interval: lookback edges), an
/// info metric for joins, and jittered timestamps with milliseconds. Returns the text and
/// its sample count.
pub fn openmetrics(t0: i64) -> (String, usize) {
    let mut rng = Rng(42);
    let mut out = String::new();
    let mut n = 0usize;
    let mut line = |out: &mut String, name: &str, l: &[(&str, String)], v: f64, ts: String| {
        out.push_str(&format!("{name}{} {} {ts}\n", om_labels(l), om_value(v)));
        n += 1;
    };
    let t = |i: i64| (t0 + i * STEP_S).to_string();

    out.push_str("# TYPE http_requests counter\n");
    let mut counters = Vec::new();
    for job in ["api", "web"] {
        for inst in ["a:80", "b:80", "c:80"] {
            for method in ["get", "post"] {
                counters.push((job, inst, method, rng.below(100) as f64));
            }
        }
    }
    for i in 0..POINTS {
        for (k, (job, inst, method, v)) in counters.iter_mut().enumerate() {
            let k = k as i64;
            *v += rng.below(20) as f64 + if k % 3 == 0 { 0.5 } else { 0.0 };
            if i > 0 && (i + 17 * k) % 150 == 0 {
                *v = rng.below(5) as f64;
            }
            let live = match k {
                5 => i >= 120,
                11 => i <= 280,
                _ => true,
            };
            if live {
                let l = [
                    ("instance", inst.to_string()),
                    ("job", job.to_string()),
                    ("method", method.to_string()),
                ];
                line(&mut out, "http_requests_total", &l, *v, t(i));
            }
        }
    }

    out.push_str("# TYPE node_temp_celsius gauge\n");
    for i in 0..POINTS {
        let mut k = 0;
        for job in ["api", "web"] {
            for inst in ["a:80", "b:80"] {
                let x = (i / 2) as f64 / 20.0 + k as f64;
                let v = (5.0 + 25.0 * x.sin()) * 1000.0;
                if !(k == 2 && (160..220).contains(&i)) {
                    let l = [("instance", inst.to_string()), ("job", job.to_string())];
                    line(&mut out, "node_temp_celsius", &l, v.round() / 1000.0, t(i));
                }
                k += 1;
            }
        }
    }

    out.push_str("# TYPE request_duration_seconds histogram\n");
    let bounds = ["0.05", "0.1", "0.5", "1", "2.5", "+Inf"];
    let mut hist = vec![(vec![0.0; bounds.len()], 0.0); 2];
    for i in 0..POINTS {
        for (h, job) in ["api", "web"].iter().enumerate() {
            let (counts, sum) = &mut hist[h];
            let mut cum = 0.0;
            for (b, c) in counts.iter_mut().enumerate() {
                let obs = rng.below(10 - b as u64) as f64;
                cum += obs;
                *c += cum;
                *sum += obs * 0.07 * (b + 1) as f64;
            }
            for (b, le) in bounds.iter().enumerate() {
                let l = [
                    ("instance", "a:80".to_string()),
                    ("job", job.to_string()),
                    ("le", le.to_string()),
                ];
                line(
                    &mut out,
                    "request_duration_seconds_bucket",
                    &l,
                    counts[b],
                    t(i),
                );
            }
            let l = [("instance", "a:80".to_string()), ("job", job.to_string())];
            let total = counts[bounds.len() - 1];
            let s = (*sum * 1000.0).round() / 1000.0;
            line(&mut out, "request_duration_seconds_sum", &l, s, t(i));
            line(&mut out, "request_duration_seconds_count", &l, total, t(i));
        }
    }

    out.push_str("# TYPE queue_depth gauge\n");
    for i in 0..POINTS {
        let nan = if i % 7 == 3 {
            f64::NAN
        } else {
            (i % 10) as f64
        };
        let inf = match (i % 11, i % 13) {
            (5, _) => f64::INFINITY,
            (_, 6) => f64::NEG_INFINITY,
            _ => (i % 5) as f64,
        };
        let mixed = rng.below(1000) as f64 / 100.0 - 5.0;
        for (kind, v) in [("inf", inf), ("mixed", mixed), ("nan", nan)] {
            line(
                &mut out,
                "queue_depth",
                &[("kind", kind.to_string())],
                v,
                t(i),
            );
        }
    }

    out.push_str("# TYPE escaped_info gauge\n");
    for i in (0..POINTS).step_by(4) {
        for (k, path) in ["C:\\temp\\\"x\"", "line1\nline2", "ünï cødé"]
            .iter()
            .enumerate()
        {
            let l = [("path", path.to_string())];
            line(&mut out, "escaped_info", &l, (k + 1) as f64, t(i));
        }
    }

    out.push_str("# TYPE batch_last_success_timestamp_seconds gauge\n");
    for i in (0..=240).step_by(4) {
        let l = [("job", "batch".to_string())];
        let v = (t0 + i * STEP_S - 30) as f64;
        line(
            &mut out,
            "batch_last_success_timestamp_seconds",
            &l,
            v,
            t(i),
        );
    }

    out.push_str("# TYPE sparse_events counter\n");
    let mut sparse = 0.0;
    for i in (0..POINTS).step_by(20) {
        sparse += (1 + (i / 20) % 3) as f64;
        let l = [("job", "cron".to_string())];
        line(&mut out, "sparse_events_total", &l, sparse, t(i));
    }

    out.push_str("# TYPE build_info gauge\n");
    for i in 0..POINTS {
        for (inst, version) in [("a:80", "1.0"), ("b:80", "1.1")] {
            let l = [
                ("instance", inst.to_string()),
                ("version", version.to_string()),
            ];
            line(&mut out, "build_info", &l, 1.0, t(i));
        }
    }

    out.push_str("# TYPE status_code gauge\n");
    for i in 0..POINTS {
        for job in ["api", "web"] {
            let v = [200.0, 404.0, 500.0][rng.below(3) as usize];
            let l = [("instance", "a:80".to_string()), ("job", job.to_string())];
            line(&mut out, "status_code", &l, v, t(i));
        }
    }

    out.push_str("# TYPE jitter_gauge gauge\n");
    for i in 0..POINTS {
        let ms = (t0 + i * STEP_S) * 1000 + rng.below(5000) as i64;
        let l = [("instance", "a:80".to_string()), ("job", "api".to_string())];
        let ts = format!("{}.{:03}", ms / 1000, ms % 1000);
        line(&mut out, "jitter_gauge", &l, i as f64 * 1.5, ts);
    }
    out.push_str("# EOF\n");
    (out, n)
}

/// `application/x-www-form-urlencoded` for a query parameter.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Equal as Prometheus prints them, both NaN, or within `tol` (relative).
fn same_value(a: &Value, b: &Value, tol: f64) -> bool {
    if a == b {
        return true;
    }
    let (Some(a), Some(b)) = (a.as_str(), b.as_str()) else {
        return false;
    };
    let parse = |s: &str| match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) if x.is_nan() && y.is_nan() => true,
        (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
            (x - y).abs() <= tol * x.abs().max(y.abs())
        }
        _ => false,
    }
}

/// A label set as a sortable key.
fn key(metric: &Value) -> String {
    let m: BTreeMap<String, String> = serde_json::from_value(metric.clone()).unwrap_or_default();
    serde_json::to_string(&m).unwrap()
}

/// Compares two API answers; `Err` describes the first difference.
fn compare(query: &str, p: &Value, o: &Value) -> Result<(), String> {
    let tol = if LIBM_FUNCTIONS.iter().any(|f| query.contains(f)) {
        REL_TOL
    } else {
        0.0
    };
    let same_value = |a: &Value, b: &Value| same_value(a, b, tol);
    if p["status"] != "success" {
        if o["status"] == "success" {
            return Err(format!("Prometheus failed ({}), OMP answered", p["error"]));
        }
        if p["errorType"] != o["errorType"] {
            return Err(format!(
                "error types differ: Prometheus {} {}, OMP {} {}",
                p["errorType"], p["error"], o["errorType"], o["error"]
            ));
        }
        return Ok(());
    }
    if o["status"] != "success" {
        return Err(format!("OMP failed ({} {})", o["errorType"], o["error"]));
    }
    let (pd, od) = (&p["data"], &o["data"]);
    if pd["resultType"] != od["resultType"] {
        return Err(format!(
            "result types differ: Prometheus {}, OMP {}",
            pd["resultType"], od["resultType"]
        ));
    }
    let (pr, or) = (&pd["result"], &od["result"]);
    match pd["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            if pr[0] != or[0] || !same_value(&pr[1], &or[1]) {
                return Err(format!("Prometheus {pr}, OMP {or}"));
            }
        }
        Some("vector") => {
            let index = |r: &Value| -> BTreeMap<String, Value> {
                r.as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| (key(&s["metric"]), s["value"].clone()))
                    .collect()
            };
            let (pi, oi) = (index(pr), index(or));
            let pn = pr.as_array().map_or(0, |a| a.len());
            let on = or.as_array().map_or(0, |a| a.len());
            if pn != pi.len() || on != oi.len() {
                return Err(format!("duplicate label sets: Prometheus {pr}, OMP {or}"));
            }
            for (k, pv) in &pi {
                match oi.get(k) {
                    None => return Err(format!("OMP lacks {k} (Prometheus: {pv})")),
                    Some(ov) if pv[0] != ov[0] || !same_value(&pv[1], &ov[1]) => {
                        return Err(format!("{k}: Prometheus {pv}, OMP {ov}"));
                    }
                    _ => {}
                }
            }
            if let Some(k) = oi.keys().find(|k| !pi.contains_key(*k)) {
                return Err(format!("OMP has {k} = {} too", oi[k]));
            }
            // Sorting functions promise an order of values (ties may come either way).
            if query.starts_with("sort") {
                let vals = |r: &Value| -> Vec<Value> {
                    r.as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| s["value"][1].clone())
                        .collect()
                };
                let (a, b) = (vals(pr), vals(or));
                if a.iter().zip(&b).any(|(x, y)| !same_value(x, y)) {
                    return Err(format!("order differs: Prometheus {a:?}, OMP {b:?}"));
                }
            }
        }
        Some("matrix") => {
            let index = |r: &Value| -> BTreeMap<String, Value> {
                r.as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| (key(&s["metric"]), s["values"].clone()))
                    .collect()
            };
            let (pi, oi) = (index(pr), index(or));
            for (k, pv) in &pi {
                let Some(ov) = oi.get(k) else {
                    return Err(format!("OMP lacks series {k}"));
                };
                let (pa, oa) = (pv.as_array().unwrap(), ov.as_array().unwrap());
                for (x, y) in pa.iter().zip(oa) {
                    if x[0] != y[0] || !same_value(&x[1], &y[1]) {
                        return Err(format!("{k}: Prometheus {x} vs OMP {y} (first difference)"));
                    }
                }
                if pa.len() != oa.len() {
                    return Err(format!(
                        "{k}: Prometheus has {} points, OMP {}: {pv} vs {ov}",
                        pa.len(),
                        oa.len()
                    ));
                }
            }
            if let Some(k) = oi.keys().find(|k| !pi.contains_key(*k)) {
                return Err(format!("OMP has series {k} too"));
            }
        }
        other => return Err(format!("unknown result type {other:?}")),
    }
    Ok(())
}

/// Backfills `text` into a fresh Prometheus storage dir with promtool and starts Prometheus.
pub fn prometheus_with(text: &str) -> (Prometheus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.om");
    std::fs::write(&file, text).unwrap();
    let storage = dir.path().join("prom");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&storage)
        .output()
        .expect("Debian's promtool is installed (tests/run installs prometheus)");
    assert!(
        out.status.success(),
        "promtool backfill: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (Prometheus::start(&storage, &[]), dir)
}

/// An OMP server holding `text` (through the import API) and an API token client.
pub fn omp_with(text: &str, samples: usize) -> (TestServer, Client, String) {
    let s = TestServer::start();
    let admin = s.admin();
    let token = admin
        .post("/api/v1/tokens", &json!({"name": "promql"}))
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let api = Client::with_token(&s.base, &token);
    let r = api.send_raw(
        "POST",
        "/api/v1/metrics/import?format=openmetrics",
        text.as_bytes().to_vec(),
        &[("content-type", "text/plain")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["rejected"].as_u64()),
        (Some(samples as u64), Some(0)),
        "{}",
        r.text
    );
    (s, api, token)
}

#[test]
fn promql_answers_equal_prometheus_on_the_same_data() {
    let t0 = (chrono::Utc::now().timestamp() - 3 * 3600) / 60 * 60;
    let (text, samples) = openmetrics(t0);
    let (prom, _pdir) = prometheus_with(&text);
    let (_omp, api, _) = omp_with(&text, samples);
    let prom_client = Client::new(&prom.base);

    let queries: Vec<String> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/promql/queries.txt"
    ))
    .unwrap()
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(String::from)
    .collect();
    // Instant times (seconds after t0, some between samples, on the 5-minute lookback edge
    // and after the data ends) and range queries (start, end, step).
    let instants = [
        "0", "15", "299", "300", "301", "1807.5", "3600", "3900", "4500", "6000", "7200", "7260",
        "7500", "7800",
    ];
    let ranges = [
        (-600, 7800, "60"),
        (1200, 3000, "15"),
        (0, 7200, "433"),
        (3000, 3000, "60"),
        (3590, 4210, "0.5"),
        (3590, 4210, "0.5s"),
        // More than 11,000 points per series: refused by both.
        (0, 7200, "0.5"),
    ];
    let (mut checks, mut with_data, mut errors) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut run = |q: &str, params: String, what: String| {
        let path = |base: &str| format!("{base}?query={}&{params}", enc(q));
        let p = prom_client.get(&path(if params.contains("step") {
            "/api/v1/query_range"
        } else {
            "/api/v1/query"
        }));
        let o = api.get(&path(if params.contains("step") {
            "/prometheus/api/v1/query_range"
        } else {
            "/prometheus/api/v1/query"
        }));
        checks += 1;
        match p.body["data"]["result"].as_array() {
            _ if p.body["status"] != "success" => errors += 1,
            Some(r) if r.is_empty() => {}
            _ => with_data += 1,
        }
        if let Err(e) = compare(q, &p.body, &o.body) {
            failures.push(format!("{q}  [{what}]\n    {e}"));
        }
    };
    for q in &queries {
        for at in instants {
            let t: f64 = at.parse::<f64>().unwrap() + t0 as f64;
            run(q, format!("time={t}"), format!("instant at t0+{at}s"));
        }
        for (a, b, step) in ranges {
            run(
                q,
                format!("start={}&end={}&step={step}", t0 + a, t0 + b),
                format!("range t0{a:+}s..t0{b:+}s step {step}"),
            );
        }
    }
    // The data must make the queries answer something (an empty store would agree too).
    assert!(
        with_data * 10 > checks * 7 && errors > 100,
        "only {with_data} of {checks} checks returned data, {errors} errors: is the backfill broken?"
    );
    assert!(
        failures.is_empty(),
        "{} of {checks} PromQL checks differ from Prometheus 2.42:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Runs promtool (the real client) against a server; its output lines sorted (Prometheus
/// lists some results, e.g. histogram_quantile's, in Go map order).
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn promtool_as_a_client_prints_what_it_prints_for_prometheus() {
    let t0 = (chrono::Utc::now().timestamp() - 3 * 3600) / 60 * 60;
    let (text, samples) = openmetrics(t0);
    let (prom, _pdir) = prometheus_with(&text);
    let (omp, api, token) = omp_with(&text, samples);
    // promtool 2.42 has no --http.config.file for queries: the token goes in the URL as
    // Basic credentials (any user name), or as a header for range queries.
    let with_auth = omp
        .base
        .replacen("http://", &format!("http://promtool:{token}@"), 1);
    let omp_url = format!("{with_auth}/prometheus");
    let (at, start, end) = (
        (t0 + 3600).to_string(),
        (t0 + 1800).to_string(),
        (t0 + 2400).to_string(),
    );
    for q in [
        "sum by (job) (rate(http_requests_total[5m]))",
        "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
        "escaped_info",
        "scalar(sum(node_temp_celsius))",
    ] {
        let expected = promtool(&["query", "instant", "--time", &at, &prom.base, q]);
        assert!(expected.contains(" @["), "{q}: {expected}");
        let got = promtool(&["query", "instant", "--time", &at, &omp_url, q]);
        assert_eq!(got, expected, "promtool query instant {q}");
        let range = |url: &str, extra: &[&str]| {
            let mut args = vec![
                "query", "range", "--start", &start, "--end", &end, "--step", "1m",
            ];
            args.extend_from_slice(extra);
            args.extend_from_slice(&[url, q]);
            promtool(&args)
        };
        let expected = range(&prom.base, &[]);
        assert_eq!(range(&omp_url, &[]), expected, "promtool query range {q}");
        let bearer = format!("Authorization=Bearer {token}");
        let plain = format!("{}/prometheus", omp.base);
        assert_eq!(
            range(&plain, &["--header", &bearer]),
            expected,
            "promtool query range {q} with a bearer header"
        );
    }

    // What clients read at start, with Prometheus' fields.
    let p = Client::new(&prom.base);
    for path in [
        "/api/v1/status/buildinfo",
        "/api/v1/status/runtimeinfo",
        "/api/v1/query_exemplars?query=up&start=1&end=2",
    ] {
        let (a, b) = (
            p.get(path).body,
            api.get(&format!("/prometheus{path}")).body,
        );
        assert_eq!(b["status"], "success", "{path}: {b}");
        match (&a["data"], &b["data"]) {
            (Value::Object(x), Value::Object(y)) => {
                let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
                assert_eq!(kx, ky, "{path}: the same fields");
            }
            (x, y) => assert_eq!(x, y, "{path}"),
        }
    }
    let r = api.get("/prometheus/api/v1/status/buildinfo").body;
    assert_eq!(r["data"]["version"], "2.42.0", "{r}");
}

#[test]
fn bad_queries_are_refused_clearly() {
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_TSDB__MAX_SAMPLES_PER_QUERY", "500"),
        ],
        None,
    );
    let admin = s.admin();
    let now = chrono::Utc::now().timestamp();
    let text: String = (0..600)
        .map(|i| format!("busy_total {i} {}\n", now - 3000 + i * 5))
        .collect::<String>()
        + "# EOF\n";
    let r = admin.send_raw(
        "POST",
        "/api/v1/metrics/import",
        text.into_bytes(),
        &[("content-type", "text/plain")],
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let a = admin.get(&format!(
        "/prometheus/api/v1/query?query={}",
        enc("sum(busy_total")
    ));
    assert_eq!(
        (a.status, a.body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{}",
        a.text
    );
    assert!(
        a.body["error"]
            .as_str()
            .unwrap()
            .contains("1:15: parse error: unclosed left parenthesis"),
        "{}",
        a.text
    );

    // Over the per-query sample limit: a clear execution error naming the limit.
    let a = admin.get(&format!(
        "/prometheus/api/v1/query?query={}",
        enc("count_over_time(busy_total[1h])")
    ));
    assert_eq!(
        (a.status, a.body["errorType"].as_str()),
        (422, Some("execution")),
        "{}",
        a.text
    );
    assert!(
        a.body["error"].as_str().unwrap().contains("more than 500"),
        "{}",
        a.text
    );
    // Under it, fine.
    let a = admin.get(&format!(
        "/prometheus/api/v1/query?query={}",
        enc("count_over_time(busy_total[10m])")
    ));
    assert_eq!(a.body["status"], "success", "{}", a.text);
    assert!(
        a.body["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 100.0,
        "{}",
        a.text
    );

    // Too many points per series, and a range vector as a range query's result.
    let a = admin.get(&format!(
        "/prometheus/api/v1/query_range?query=busy_total&start={}&end={now}&step=0.1",
        now - 3600
    ));
    assert_eq!(
        (a.status, a.body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{}",
        a.text
    );
    assert!(
        a.body["error"].as_str().unwrap().contains("11,000 points"),
        "{}",
        a.text
    );
    let a = admin.get(&format!(
        "/prometheus/api/v1/query_range?query={}&start={}&end={now}&step=60",
        enc("busy_total[5m]"),
        now - 3600
    ));
    assert_eq!(
        (a.status, a.body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{}",
        a.text
    );
}
