//! Monitoring (issue 4, first slice): a real agent's host metrics reach the store and the
//! Prometheus-compatible API; acknowledged samples survive kill -9 of the server.

use serde_json::{Value, json};

use crate::util::*;

fn server(dir: Option<tempfile::TempDir>) -> TestServer {
    TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
            ("OMP_AGENT__METRICS_SECS", "1"),
        ],
        dir,
    )
}

fn q(c: &Client, expr: &str) -> Value {
    let enc: String = expr
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    c.get(&format!("/prometheus/api/v1/query?query={enc}")).body
}

#[test]
fn agent_metrics_reach_the_prometheus_api_and_survive_a_crash() {
    let s = server(None);
    let admin = s.admin();
    let t = admin
        .post("/api/v1/hosts/enroll-tokens", &json!({"ttl_minutes": 5}))
        .body;
    let mut agent = AgentProc::start(&s, Some(t["token"].as_str().unwrap()), None);
    assert!(agent.wait_for("Enrolled."), "{}", agent.log());
    let token = admin
        .post("/api/v1/tokens", &json!({"name": "grafana"}))
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let api = Client::with_token(&s.base, &token);
    let hostname = omp::agent::inventory::collect().hostname;

    let load = eventually(30, || {
        let r = q(&api, "node_load1{job=\"node\"}");
        (r["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty()))
        .then_some(r)
    })
    .expect("node_load1 arrives");
    assert_eq!(load["status"], "success");
    assert_eq!(load["data"]["resultType"], "vector");
    assert_eq!(
        load["data"]["result"][0]["metric"]["instance"],
        hostname.as_str()
    );
    assert!(
        load["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok()
    );

    // rate() over the CPU counters once a few samples are in.
    let rate = eventually(30, || {
        let r = q(&api, "sum by (mode) (rate(node_cpu_seconds_total[10s]))");
        (r["data"]["result"].as_array().is_some_and(|a| a.len() >= 4)).then_some(r)
    })
    .expect("rate over CPU counters");
    let idle = rate["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["metric"]["mode"] == "idle")
        .unwrap();
    let idle_cores: f64 = idle["value"][1].as_str().unwrap().parse().unwrap();
    assert!((0.0..=64.0).contains(&idle_cores), "{idle_cores}");

    // The other endpoints.
    let now = chrono::Utc::now().timestamp();
    let r = api
        .get(&format!(
            "/prometheus/api/v1/query_range?query=node_load1&start={}&end={now}&step=1s",
            now - 30
        ))
        .body;
    assert_eq!(r["data"]["resultType"], "matrix", "{r}");
    assert!(
        !r["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = api.get("/prometheus/api/v1/series?match[]=node_load1").body;
    assert_eq!(r["data"][0]["__name__"], "node_load1", "{r}");
    let r = api.get("/prometheus/api/v1/labels").body;
    assert!(r["data"].as_array().unwrap().iter().any(|l| l == "mode"));
    let r = api.get("/prometheus/api/v1/label/instance/values").body;
    assert_eq!(r["data"], json!([hostname]));
    // Grafana posts its queries as forms (no CSRF token needed: it changes nothing).
    let a = api.send_raw(
        "POST",
        "/prometheus/api/v1/query",
        b"query=up%20or%20vector(1)".to_vec(),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(a.body["status"], "success", "{}", a.text);
    // Errors as Prometheus gives them.
    let a = api.get("/prometheus/api/v1/query?query=sum(");
    assert_eq!(
        (a.status, a.body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{}",
        a.text
    );
    let a = api.get("/prometheus/api/v1/query?query=holt_winters(node_load1%5B5m%5D,0,0.5)");
    assert_eq!(a.status, 422);
    assert!(
        a.body["error"]
            .as_str()
            .unwrap()
            .contains("smoothing factor")
    );
    assert_eq!(
        s.client().get("/prometheus/api/v1/query?query=up").status,
        401
    );
    let viewer = user_with_role(&s, &admin, "vi", "viewer");
    assert_eq!(viewer.get("/prometheus/api/v1/labels").status, 200);

    // Stop the agent, note what the store holds, crash the server, start it again.
    agent.kill();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let count = |c: &Client| -> f64 {
        let r = q(c, "count_over_time(node_load1[1h])");
        r["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap()
    };
    let before = count(&api);
    assert!(before >= 2.0, "{before}");
    let dir = s.crash();
    let s = server(Some(dir));
    let after = count(&Client::with_token(&s.base, &token));
    assert_eq!(
        after, before,
        "every sample the store had acknowledged is back"
    );
}

#[test]
fn tsdb_import_backfills_offline_and_through_the_server() {
    let now = chrono::Utc::now().timestamp();
    // 60 samples a minute apart in the last hour, written out of order, with an escaped label,
    // plus one sample without a timestamp (refused: a backfill must say when).
    let mut lines: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "backfilled_total{{path=\"/a\\\"b\"}} {} {}",
                i * 10,
                now - 3600 + i * 60
            )
        })
        .collect();
    lines.reverse();
    lines.push("backfilled_total{path=\"/x\"} 1".into());
    let text = format!(
        "# TYPE backfilled_total counter\n{}\n# EOF\n",
        lines.join("\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backfill.om");
    std::fs::write(&file, &text).unwrap();

    // Offline, into a data dir.
    let s = server(None);
    let data = s.data_dir();
    let out = omp(&["tsdb", "import", file.to_str().unwrap()], &data);
    assert!(
        !out.status.success(),
        "refused while the server holds the data dir"
    );
    let sdir = s.stop();
    let out = omp(
        &["tsdb", "import", file.to_str().unwrap()],
        &sdir.path().join("data"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["accepted"].as_u64(), report["rejected"].as_u64()),
        (Some(60), Some(1)),
        "{report}"
    );
    let s = server(Some(sdir));
    let admin = s.admin();
    // A range answer larger than one streamed chunk (64 KiB) arrives whole and well-formed:
    // one point a second over the hour the samples cover.
    let r = admin.get(&format!(
        "/prometheus/api/v1/query_range?query=backfilled_total&start={}&end={}&step=1",
        now - 3600,
        now - 60
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.len() > 65_536, "{} bytes", r.text.len());
    let values = r.body["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(
        values.len(),
        3541,
        "every step has a sample in the lookback"
    );
    assert_eq!(values[60], json!([now - 3540, "10"]));
    let r = q(
        &admin,
        "count_over_time(backfilled_total{path=\"/a\\\"b\"}[2h])",
    );
    assert_eq!(r["data"]["result"][0]["value"][1], "60", "{r}");
    let r = q(&admin, "increase(backfilled_total[2h])");
    assert!(
        r["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 590.0,
        "{r}"
    );

    // Through the running server with an API token.
    let token = admin
        .post("/api/v1/tokens", &json!({"name": "import"}))
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&file, format!("other_metric 5 {}\n# EOF\n", now - 10)).unwrap();
    let out = std::process::Command::new(omp_bin())
        .args([
            "tsdb",
            "import",
            file.to_str().unwrap(),
            "--server",
            &s.base,
            "--token",
            &token,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        q(&admin, "other_metric")["data"]["result"][0]["value"][1],
        "5"
    );
    // Garbage is refused with the line named; a viewer may not import.
    let a = admin.send_raw(
        "POST",
        "/api/v1/metrics/import",
        b"ok 1 1\nbad{ 2\n".to_vec(),
        &[],
    );
    assert_eq!(a.status, 422);
    assert!(a.text.contains("line 2"), "{}", a.text);
    // A sample from a wrong clock (a day ahead) is refused with the reason; the rest stays.
    let ahead = chrono::Utc::now().timestamp() + 86_400;
    let a = admin.send_raw(
        "POST",
        "/api/v1/metrics/import",
        format!("clock_test 1 {ahead}\n# EOF\n").into_bytes(),
        &[("content-type", "application/openmetrics-text")],
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["rejected"], 1, "{}", a.text);
    assert!(a.text.contains("future"), "{}", a.text);
    let viewer = user_with_role(&s, &admin, "vm", "viewer");
    assert_eq!(
        viewer
            .send_raw("POST", "/api/v1/metrics/import", b"x 1 1\n".to_vec(), &[])
            .status,
        403
    );
    // Metadata of an import outlives a restart (no scrape will bring it back).
    let a = admin.send_raw(
        "POST",
        "/api/v1/metrics/import",
        format!(
            "# TYPE kept_gauge gauge\n# HELP kept_gauge Kept across restarts.\nkept_gauge 1 {}\n# EOF\n",
            now - 5
        )
        .into_bytes(),
        &[("content-type", "application/openmetrics-text")],
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let dir = s.stop();
    let s = server(Some(dir));
    let m = s
        .admin()
        .get("/prometheus/api/v1/metadata?metric=kept_gauge")
        .body;
    assert_eq!(m["data"]["kept_gauge"][0]["type"], "gauge", "{m}");
    assert_eq!(
        m["data"]["kept_gauge"][0]["help"], "Kept across restarts.",
        "{m}"
    );
}

/// Debian's prometheus-node-exporter on a free loopback port.
struct NodeExporter {
    child: std::process::Child,
    addr: String,
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_exporter() -> NodeExporter {
    use std::io::BufRead;
    let bin = "/usr/bin/prometheus-node-exporter";
    assert!(
        std::path::Path::new(bin).exists(),
        "{bin} is missing: apt-get install prometheus-node-exporter (tests/run does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("Listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("node_exporter started");
    NodeExporter { child, addr }
}

#[test]
fn scraping_a_real_node_exporter_with_up_staleness_and_limits() {
    let s = TestServer::start_with(&[("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)], None);
    let admin = s.admin();
    let ne = node_exporter();
    let a = admin.post(
        "/api/v1/scrape-targets",
        &json!({"job": "ne", "target": ne.addr, "interval_secs": 1, "timeout_secs": 1}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    eventually(30, || {
        (q(&admin, "up{job=\"ne\"}")["data"]["result"][0]["value"][1] == "1").then_some(())
    })
    .expect("up = 1");
    // Later scrapes store the report series by id: still one series each, with values.
    eventually(30, || {
        let n = q(&admin, "count_over_time(up{job=\"ne\"}[1m])");
        (n["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            >= 3.0)
            .then_some(())
    })
    .expect("three scrapes");
    for (query, at_least) in [
        ("scrape_samples_scraped{job=\"ne\"}", 100.0),
        ("scrape_duration_seconds{job=\"ne\"}", 0.0),
    ] {
        let r = q(&admin, query);
        let result = r["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{r}");
        let v: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert!(v > at_least, "{query} = {v}");
    }
    let cpu = q(&admin, "count(node_cpu_seconds_total{job=\"ne\"})");
    assert!(
        cpu["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 1.0,
        "{cpu}"
    );
    // Metadata from the exporter's # TYPE / # HELP lines, as Prometheus serves it.
    let md = admin
        .get("/prometheus/api/v1/metadata?metric=node_load1")
        .body;
    assert_eq!(md["data"]["node_load1"][0]["type"], "gauge", "{md}");
    assert!(
        md["data"]["node_load1"][0]["help"]
            .as_str()
            .unwrap()
            .contains("1m load"),
        "{md}"
    );
    let all = admin.get("/prometheus/api/v1/metadata?limit=5").body;
    assert_eq!(all["data"].as_object().unwrap().len(), 5, "{all}");
    let r = q(&admin, "node_load1{job=\"ne\"}");
    assert_eq!(
        r["data"]["result"][0]["metric"]["instance"],
        ne.addr.as_str()
    );
    let list = admin.get("/api/v1/scrape-targets").body;
    let t = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(t["health"], "up", "{t}");
    assert!(t["samples"].as_u64().unwrap() > 100, "{t}");

    // /federate gives the newest samples as text a Prometheus can scrape, and OMP can scrape
    // its own /metrics with a bearer token.
    let fed = admin.get("/federate?match[]=node_load1%7Bjob%3D%22ne%22%7D");
    assert!(
        fed.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let parsed = omp::tsdb::exposition::parse(
        &fed.text,
        omp::tsdb::exposition::Format::Prometheus,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(parsed.samples.len(), 1, "{}", fed.text);
    assert!(
        parsed.samples[0]
            .labels
            .contains(&("job".to_string(), "ne".to_string()))
    );
    assert!(parsed.samples[0].timestamp_ms.is_some());
    let token = admin
        .post("/api/v1/tokens", &json!({"name": "self-scrape"}))
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let own = s.base.trim_start_matches("http://").to_string();
    let a = admin.post("/api/v1/scrape-targets", &json!({"job": "omp", "target": own, "interval_secs": 1, "timeout_secs": 1, "bearer_token": token}));
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["auth"], "bearer");
    assert!(!a.text.contains(&token), "secrets are not shown back");
    eventually(30, || {
        (q(&admin, "omp_tsdb_series{job=\"omp\"} > 0")["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 1))
        .then_some(())
    })
    .expect("OMP scraped itself");

    // A target that explodes past its sample limit: up = 0 with the reason, nothing stored.
    let a = admin.post("/api/v1/scrape-targets", &json!({"job": "limited", "target": ne.addr, "interval_secs": 1, "timeout_secs": 1, "sample_limit": 10}));
    let lid = a.body["id"].as_str().unwrap().to_string();
    let t = eventually(30, || {
        let list = admin.get("/api/v1/scrape-targets").body;
        let t = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == lid.as_str())
            .unwrap()
            .clone();
        (t["health"] == "down").then_some(t)
    })
    .expect("limited target down");
    assert!(
        t["last_error"].as_str().unwrap().contains("sample_limit"),
        "{t}"
    );
    assert_eq!(
        q(&admin, "up{job=\"limited\"}")["data"]["result"][0]["value"][1],
        "0"
    );
    assert_eq!(
        q(&admin, "node_load1{job=\"limited\"}")["data"]["result"],
        json!([])
    );

    // The exporter goes away: up = 0, and its series end at once (staleness markers).
    drop(ne);
    eventually(30, || {
        (q(&admin, "up{job=\"ne\"}")["data"]["result"][0]["value"][1] == "0").then_some(())
    })
    .expect("up = 0");
    assert_eq!(
        q(&admin, "node_load1{job=\"ne\"}")["data"]["result"],
        json!([]),
        "stale series are gone from instant queries"
    );
    // Bad input and permissions.
    let a = admin.post(
        "/api/v1/scrape-targets",
        &json!({"job": "x", "target": "-oops:1"}),
    );
    assert_eq!(
        (a.status, a.body["error"]["details"]["field"].as_str()),
        (422, Some("target"))
    );
    let viewer = user_with_role(&s, &admin, "vs", "viewer");
    assert_eq!(viewer.get("/api/v1/scrape-targets").status, 200);
    assert_eq!(
        viewer
            .post(
                "/api/v1/scrape-targets",
                &json!({"job": "x", "target": "a:1"})
            )
            .status,
        403
    );
    assert_eq!(
        admin.delete(&format!("/api/v1/scrape-targets/{id}")).status,
        204
    );
}

#[test]
fn agent_side_scraping_target_edits_and_top_processes() {
    let s = TestServer::start_with(
        &[
            ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OMP_AGENT__HEARTBEAT_SECS", "1"),
        ],
        None,
    );
    let admin = s.admin();
    let (mut agent, host) = crate::hosts::enrolled(&s, &admin, &[]);
    let ne = node_exporter();

    // The exporter is scraped by the agent (as for exporters bound to a host's loopback).
    let a = admin.post(
        "/api/v1/scrape-targets",
        &json!({"job": "via", "target": ne.addr, "interval_secs": 1, "timeout_secs": 1, "via_host": host}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["via_host"], host);
    assert!(a.body["via_hostname"].is_string(), "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    eventually(30, || {
        (q(&admin, "up{job=\"via\"}")["data"]["result"][0]["value"][1] == "1").then_some(())
    })
    .expect("up = 1 through the agent");
    let load = q(&admin, "node_load1{job=\"via\"}");
    assert_eq!(
        load["data"]["result"][0]["metric"]["instance"],
        ne.addr.as_str(),
        "{load}"
    );

    // Editing: new labels show up; a stored secret is kept unless cleared; bad input named.
    let a = admin.put(
        &format!("/api/v1/scrape-targets/{id}"),
        &json!({"job": "via", "target": ne.addr, "interval_secs": 1, "timeout_secs": 1, "via_host": host, "labels": {"site": "b"}, "bearer_token": "s3cret"}),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["auth"], "bearer");
    let a = admin.put(
        &format!("/api/v1/scrape-targets/{id}"),
        &json!({"job": "via", "target": ne.addr, "interval_secs": 1, "timeout_secs": 1, "via_host": host, "labels": {"site": "b"}}),
    );
    assert_eq!(a.body["auth"], "bearer", "secret kept: {}", a.text);
    let a = admin.put(
        &format!("/api/v1/scrape-targets/{id}"),
        &json!({"job": "via", "target": ne.addr, "interval_secs": 1, "timeout_secs": 1, "via_host": host, "labels": {"site": "b"}, "clear_auth": true}),
    );
    assert_eq!(a.body["auth"], "none", "secret cleared: {}", a.text);
    eventually(30, || {
        (q(&admin, "node_load1{job=\"via\",site=\"b\"}")["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 1))
        .then_some(())
    })
    .expect("edited labels");
    let bad = admin.put(
        &format!("/api/v1/scrape-targets/{id}"),
        &json!({"job": "via", "target": ne.addr, "via_host": 999_999}),
    );
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("via_host"), "{}", bad.text);
    let missing = admin.put(
        "/api/v1/scrape-targets/nope",
        &json!({"job": "via", "target": ne.addr}),
    );
    assert_eq!(missing.status, 404, "{}", missing.text);

    // Top processes, read by the agent now: the agent itself is among them.
    let p = admin.get(&format!(
        "/api/v1/hosts/{host}/processes?sort=memory&limit=500"
    ));
    assert_eq!(p.status, 200, "{}", p.text);
    let items = p.body["items"].as_array().unwrap();
    assert!(p.body["total"].as_u64().unwrap() as usize >= items.len());
    let me = items
        .iter()
        .find(|i| i["pid"] == agent.pid())
        .unwrap_or_else(|| panic!("agent pid {} not listed: {}", agent.pid(), p.text));
    assert!(me["rss_bytes"].as_u64().unwrap() > 0, "{me}");
    assert!(me["cmdline"].as_str().unwrap().contains("agent"), "{me}");
    let rss: Vec<u64> = items
        .iter()
        .map(|i| i["rss_bytes"].as_u64().unwrap())
        .collect();
    assert!(rss.windows(2).all(|w| w[0] >= w[1]), "sorted by memory");
    let top3 = admin.get(&format!("/api/v1/hosts/{host}/processes?limit=3"));
    assert_eq!(top3.body["items"].as_array().unwrap().len(), 3);
    let bad = admin.get(&format!("/api/v1/hosts/{host}/processes?sort=name"));
    assert_eq!(bad.status, 422, "{}", bad.text);

    // An offline host: the scrape target goes down with the reason, processes answer 409.
    agent.kill();
    let t = eventually(30, || {
        let list = admin.get("/api/v1/scrape-targets").body;
        let t = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap()
            .clone();
        (t["health"] == "down").then_some(t)
    })
    .expect("target down with its agent");
    assert!(t["last_error"].as_str().unwrap().contains("offline"), "{t}");
    let p = admin.get(&format!("/api/v1/hosts/{host}/processes"));
    assert_eq!(p.status, 409, "{}", p.text);
}

/// Debian's VictoriaMetrics on a free loopback port (a real remote_write receiver).
struct Victoria {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Victoria {
    /// The first series of VictoriaMetrics' export for `selector` (URL-encoded) from
    /// `start` (s), once `enough` accepts its sample count (30 s at most).
    fn exported(
        &self,
        selector: &str,
        start: i64,
        enough: impl Fn(usize) -> bool,
    ) -> Option<Value> {
        let export = format!(
            "http://{}/api/v1/export?match[]={selector}&start={start}",
            self.addr
        );
        eventually(30, || {
            let _ = ureq::get(&format!("http://{}/internal/force_flush", self.addr)).call();
            let body = ureq::get(&export)
                .call()
                .ok()?
                .body_mut()
                .read_to_string()
                .ok()?;
            let line: Value = serde_json::from_str(body.lines().next()?).ok()?;
            enough(line["values"].as_array()?.len()).then_some(line)
        })
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn victoria() -> Victoria {
    let bin = "/usr/bin/victoria-metrics";
    assert!(
        std::path::Path::new(bin).exists(),
        "{bin} is missing: apt-get install victoria-metrics (tests/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(bin)
        .arg(format!("-httpListenAddr={addr}"))
        .arg(format!("-storageDataPath={}", dir.path().display()))
        .arg("-retentionPeriod=100y")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health = format!("http://{addr}/health");
    eventually(30, || {
        ureq::get(&health)
            .call()
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .expect("victoria-metrics started");
    Victoria {
        child,
        addr,
        _dir: dir,
    }
}

#[test]
fn remote_write_reaches_a_real_victoria_metrics() {
    let vm = victoria();
    let dir = tempfile::tempdir().unwrap();
    // A closed port as the second endpoint: its failures are counted, the first is unaffected.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("omp.toml"),
        format!(
            "[[remote_write]]\nname = \"vm\"\nurl = \"http://{0}/api/v1/write\"\n\n[[remote_write]]\nurl = \"http://127.0.0.1:{closed}/api/v1/write\"\ntimeout_secs = 1\n\n[[scrape]]\njob = \"vmself\"\ntarget = \"{0}\"\ninterval_secs = 1\ntimeout_secs = 1\n",
            vm.addr
        ),
    )
    .unwrap();
    let s = TestServer::start_with(&[("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD)], Some(dir));
    let admin = s.admin();
    let now = chrono::Utc::now().timestamp() - 120;
    let text: String = (0..10)
        .map(|i| {
            format!(
                "rw_test{{site=\"a b\",path=\"c:\\\\x\"}} {} {}\n",
                i as f64 * 1.5,
                now + i * 10
            )
        })
        .collect::<String>()
        + "# EOF\n";
    let a = admin.send_raw(
        "POST",
        "/api/v1/metrics/import",
        text.into_bytes(),
        &[("content-type", "application/openmetrics-text")],
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["accepted"], 10, "{}", a.text);

    // VictoriaMetrics has exactly the samples, labels (with escapes) intact.
    let got = vm
        .exported("rw_test", now - 60, |n| n == 10)
        .expect("samples in victoria-metrics");
    assert_eq!(got["metric"]["site"], "a b", "{got}");
    assert_eq!(got["metric"]["path"], "c:\\x", "{got}");
    assert_eq!(got["values"][3], 4.5, "{got}");
    assert_eq!(got["timestamps"][3], (now + 30) * 1000, "{got}");

    // Scraped series go out too, also once the scrape cache knows them by id (from the
    // second scrape on, their labels come from the store's head).
    let got = vm
        .exported(
            "process_cpu_seconds_total%7Bjob%3D%22vmself%22%7D",
            now - 60,
            |n| n >= 3,
        )
        .expect("scraped samples in victoria-metrics");
    assert_eq!(got["metric"]["instance"], vm.addr, "{got}");

    let st = eventually(30, || {
        let st = admin.get("/api/v1/remote-write").body;
        (st["items"][1]["failed_requests"].as_u64()? > 0).then_some(st)
    })
    .expect("the closed endpoint's failures are counted");
    let items = st["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "vm");
    assert!(items[0]["sent_samples"].as_u64().unwrap() >= 10, "{st}");
    assert!(items[0]["last_success"].is_string(), "{st}");
    assert!(
        items[1]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{st}"
    );
    assert!(items[1]["queued_samples"].as_u64().unwrap() >= 10, "{st}");
}

#[test]
fn closed_chunks_move_to_segments_and_survive_a_crash() {
    let env = [
        ("OMP_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("OMP_TSDB__FLUSH_SECS", "1"),
        ("OMP_TSDB__SEGMENT_MIB", "1"),
        ("OMP_TSDB__MAX_DISK_MIB", "64"),
    ];
    let s = TestServer::start_with(&env, None);
    let admin = s.admin();
    // 20 series × 6 h at 15 s, ending ten minutes ago.
    let end = chrono::Utc::now().timestamp() - 600;
    let start = end - 6 * 3600 + 15;
    let mut text = String::new();
    for i in 0..20 {
        for (k, t) in (start..=end).step_by(15).enumerate() {
            text.push_str(&format!(
                "seg_test_total{{i=\"{i}\"}} {} {t}\n",
                k as f64 * 0.25 + i as f64
            ));
        }
    }
    text.push_str("# EOF\n");
    let a = admin.send_raw(
        "POST",
        "/api/v1/metrics/import",
        text.into_bytes(),
        &[("content-type", "application/openmetrics-text")],
    );
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["accepted"], 20 * 1440, "{}", a.text);
    let segs = s.data_dir().join("tsdb/segments");
    let seg_bytes = || -> u64 {
        std::fs::read_dir(&segs)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    eventually(30, || (seg_bytes() > 1_000).then_some(())).expect("chunks reached the segments");
    let total = "sum(count_over_time(seg_test_total[7h]))";
    let n = |c: &Client| q(c, total)["data"]["result"][0]["value"][1].clone();
    assert_eq!(n(&admin), "28800");
    let wal = std::fs::metadata(s.data_dir().join("tsdb/wal"))
        .unwrap()
        .len();
    // The log is checkpointed once it is well past the head's size: it stays small.
    assert!(wal < 2 << 20, "log {wal} bytes");
    let on_disk = seg_bytes();
    assert!(
        (on_disk as f64) < 28_800.0 * 0.8,
        "{on_disk} bytes on disk for 28,800 samples"
    );

    // kill -9 and restart: the ring and the log together give every sample back, once.
    let dir = s.crash();
    let s = TestServer::start_with(&env, Some(dir));
    let admin = s.admin();
    assert_eq!(n(&admin), "28800");
    let r = q(&admin, "max_over_time(seg_test_total{i=\"3\"}[1h])");
    assert_eq!(
        r["data"]["result"][0]["value"][1],
        format!("{}", 1439.0 * 0.25 + 3.0)
    );
}
