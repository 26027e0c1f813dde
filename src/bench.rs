//! `omp bench agents`: starts a real `omp serve` (this binary) on loopback with a fresh data
//! dir, connects N simulated agents to it from this process, and measures the server's RSS,
//! exec fan-out latency to all agents, and terminal echo latency through the browser
//! WebSocket. A measurement tool, not a test: figures go to the README's Performance section.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

/// Options of one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub count: usize,
    pub exec_rounds: usize,
    pub echo_rounds: usize,
}

struct ServerProc {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs the benchmark and prints a report.
pub fn run(opts: BenchOptions) -> anyhow::Result<()> {
    crate::server::raise_nofile_limit();
    let dir = tempfile::tempdir()?;
    let addr_file = dir.path().join("addr");
    let password = crate::auth::password::generate();
    let child = Command::new(std::env::current_exe()?)
        .args([
            "serve",
            "--no-local-agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--listen-addr-file")
        .arg(&addr_file)
        .env("OMP_ADMIN_PASSWORD", &password)
        .env("OMP_LOG", "warn")
        .env("OMP_AUTH__MAX_FAILURES_PER_SOURCE", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start omp serve")?;
    let server = ServerProc { child, _dir: dir };
    let pid = server.child.id();
    let started = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            break a.trim().to_string();
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not start");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let base = format!("http://{addr}");
    let idle_rss = rss_kib(pid);

    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut login = http
        .post(&format!("{base}/api/v1/auth/login"))
        .send_json(json!({"username": "admin", "password": password}))?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("login failed"))?
        .to_string();
    let me: Value = login.body_mut().read_json()?;
    let csrf = me["csrf_token"].as_str().unwrap_or("").to_string();
    let post = |path: &str, body: Value| -> anyhow::Result<Value> {
        let mut r = http
            .post(&format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .send_json(body)?;
        Ok(r.body_mut().read_json()?)
    };
    let get = |path: &str| -> anyhow::Result<Value> {
        let mut r = http
            .get(&format!("{base}{path}"))
            .header("cookie", &cookie)
            .call()?;
        Ok(r.body_mut().read_json()?)
    };

    // Enrollment tokens for every simulated agent.
    let mut secrets = Vec::with_capacity(opts.count);
    let mut pin = String::new();
    for _ in 0..opts.count {
        let t = post("/api/v1/hosts/enroll-tokens", json!({"ttl_minutes": 30}))?;
        let tok = crate::proto::EnrollToken::parse(t["token"].as_str().unwrap_or(""))
            .map_err(|e| anyhow!(e))?;
        pin = tok.pin.clone();
        secrets.push(tok.secret);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (host, port) = crate::agent::parse_server(&format!("https://{addr}"))?;
    let tls = crate::tls::pinned_client_config(&pin)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let connect_started = Instant::now();
    let sims = rt.block_on(async {
        let (ctx, mut crx) = tokio::sync::mpsc::channel(opts.count.max(1));
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in secrets.into_iter().enumerate() {
            set.spawn(crate::agent::sim::run(
                host.clone(),
                port,
                tls.clone(),
                s,
                i,
                ctx.clone(),
                stop_rx.clone(),
            ));
            if i % 50 == 49 {
                // Pace the handshakes a little, as a fleet reconnecting with jitter would.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mut n = 0;
        while n < opts.count {
            match tokio::time::timeout(Duration::from_secs(60), crx.recv()).await {
                Ok(Some(())) => n += 1,
                _ => break,
            }
        }
        (set, n)
    });
    let (sim_tasks, connected) = sims;
    let connect_secs = connect_started.elapsed().as_secs_f64();
    if connected < opts.count {
        bail!(
            "only {connected} of {} simulated agents connected",
            opts.count
        );
    }
    // Let heartbeats flow for a moment, then read memory.
    std::thread::sleep(Duration::from_secs(3));
    let online = get("/api/v1/hosts?status=online&page_size=1")?["total"]
        .as_u64()
        .unwrap_or(0);
    let loaded_rss = rss_kib(pid);

    // Exec fan-out to every agent.
    let mut fan = Vec::new();
    for _ in 0..opts.exec_rounds {
        let t0 = Instant::now();
        let job = post(
            "/api/v1/exec",
            json!({"argv": ["true"], "targets": {"all": true}, "timeout_secs": 30}),
        )?;
        let id = job["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("exec failed: {job}"))?;
        loop {
            let j = get(&format!("/api/v1/exec/{id}"))?;
            if j["state"] != "running" {
                if j["hosts_ok"].as_u64() != Some(opts.count as u64) {
                    bail!("fan-out incomplete: {} of {} ok", j["hosts_ok"], opts.count);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        fan.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    fan.sort_by(f64::total_cmp);
    let after_exec_rss = rss_kib(pid);

    // Terminal echo through the browser WebSocket and a simulated agent.
    let hosts = get("/api/v1/hosts?page_size=1")?;
    let host_id = hosts["items"][0]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no host"))?;
    let term = post(
        &format!("/api/v1/hosts/{host_id}/terminal"),
        json!({"cols": 80, "rows": 24}),
    )?;
    let ws_url = format!(
        "ws://{addr}{}",
        term["ws_url"]
            .as_str()
            .ok_or_else(|| anyhow!("no terminal: {term}"))?
    );
    let mut echo = rt.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = ws_url.into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        let mut v = Vec::new();
        for i in 0..opts.echo_rounds {
            let key = format!("k{i};");
            let t0 = Instant::now();
            ws.send(tokio_tungstenite::tungstenite::Message::text(
                json!({"type": "input", "data": key}).to_string(),
            ))
            .await?;
            loop {
                match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))))
                        if t.contains(&key) =>
                    {
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => bail!("no echo"),
                }
            }
            v.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        Ok::<_, anyhow::Error>(v)
    })?;
    echo.sort_by(f64::total_cmp);

    let _ = stop_tx.send(true);
    rt.block_on(async {
        let mut s = sim_tasks;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while s.join_next().await.is_some() {}
        })
        .await;
    });
    println!(
        "omp bench agents ({} simulated agents, server pid {pid})",
        opts.count
    );
    println!("  connect + enroll all:           {connect_secs:.2} s");
    println!("  hosts online:                   {online}");
    println!(
        "  server RSS idle / {} agents / after exec: {:.1} / {:.1} / {:.1} MiB",
        opts.count,
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        after_exec_rss as f64 / 1024.0
    );
    println!(
        "  exec fan-out to all ({} rounds): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        fan.len(),
        percentile(&fan, 0.5),
        percentile(&fan, 0.95),
        percentile(&fan, 1.0)
    );
    println!(
        "  terminal echo ({} keystrokes):  p50 {:.2} ms, p99 {:.2} ms",
        echo.len(),
        percentile(&echo, 0.5),
        percentile(&echo, 0.99)
    );
    Ok(())
}

/// A synthetic data profile for `omp bench tsdb`: the value of series `s` at point `p`.
#[derive(Clone, Copy, PartialEq)]
enum Profile {
    /// CPU seconds in hundredths with jittery increments on every series (the worst case
    /// for the decimal encoding: every sample carries ~7 bits of noise).
    Cpu,
    /// OMP agents' host metrics: mostly constant gauges (sizes, limits), integer counters
    /// (bytes, packets, operations), CPU seconds in hundredths, load averages.
    Agent,
    /// A node_exporter scrape as measured on this machine (two scrapes 15 s apart: 72 %
    /// constant, 15 % changing integers, 2 % hundredths, 11 % arbitrary floats such as
    /// collector durations, which no lossless codec shrinks much).
    NodeExporter,
}

fn mix(x: u64) -> u64 {
    // SplitMix64 finaliser: deterministic noise without a dependency.
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Cpu => "cpu (jittery counters)",
            Profile::Agent => "agent (host metrics mix)",
            Profile::NodeExporter => "node_exporter (measured mix)",
        }
    }

    /// Value of series `s` at point `p` (every call for a series walks p = 0, 1, 2, …).
    fn value(self, s: usize, p: i64) -> f64 {
        let (s64, p64) = (s as u64, p as u64);
        let noise = |k: u64| mix(s64 << 32 ^ p64 ^ k << 56);
        let kind = match self {
            Profile::Cpu => 2,
            Profile::Agent => [0, 0, 0, 0, 0, 0, 1, 1, 2, 3][s % 10],
            Profile::NodeExporter => match s % 100 {
                0..=71 => 0,
                72..=86 => 1,
                87..=88 => 2,
                _ => 4,
            },
        };
        match kind {
            // constant gauge: a size in bytes
            0 => ((mix(s64) % 1_000_000) * 4096) as f64,
            // integer counter: a sum of bounded random increments, as bytes or packets
            1 => (p64 * 2_000 + noise(1) % 4_000 + s64 * 1_000_000) as f64,
            // CPU seconds in hundredths
            2 => (p64 * 150 + noise(2) % 100 + s64 * 10_000) as f64 / 100.0,
            // load average: slow two-decimal drift
            3 => ((p64 / 20 + s64) % 400) as f64 / 100.0,
            // arbitrary float (a duration in seconds)
            _ => (noise(4) % 1_000_000_000) as f64 / 3.7e12,
        }
    }
}

/// `omp bench tsdb-file FILE`: stores an OpenMetrics file (with timestamps) in a scratch
/// store, closes and writes out every chunk, and prints the bytes per sample of the segment
/// files (chunks and their index records).
pub fn tsdb_file(path: &std::path::Path) -> anyhow::Result<()> {
    use crate::tsdb::db::{Tsdb, TsdbOptions};
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dir = tempfile::tempdir()?;
    let opts = TsdbOptions {
        retention_ms: i64::MAX / 4,
        ..Default::default()
    };
    let (mut db, _) = Tsdb::open(dir.path(), opts)?;
    let mut newest = i64::MIN;
    let report = crate::metrics::import_text(
        &text,
        crate::tsdb::exposition::Format::OpenMetrics,
        |rows| {
            newest = newest.max(rows.iter().map(|r| r.t).max().unwrap_or(i64::MIN));
            db.ingest(rows)
        },
    )
    .map_err(|e| anyhow!(e))?;
    // An hour after the newest sample every open chunk counts as idle: all go to disk.
    db.maintain(newest + 3_600_000)?;
    db.seal_segment()?;
    let bytes = db.ring().bytes();
    println!(
        "{} samples of {} series: {} bytes on disk (segments and their indexes), {:.3} bytes/sample",
        report.accepted,
        db.head().series_count(),
        bytes,
        bytes as f64 / report.accepted.max(1) as f64
    );
    Ok(())
}

/// The data profiles, in the order `bench tsdb-mem --profile` numbers them.
const PROFILES: [Profile; 3] = [Profile::Cpu, Profile::Agent, Profile::NodeExporter];

/// The labels of the `i`-th benchmark series: `node_cpu_seconds_total` of hosts with 64
/// CPUs × 8 modes each.
fn node_cpu_labels(i: usize) -> Vec<(String, String)> {
    const MODES: [&str; 8] = [
        "user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice",
    ];
    vec![
        ("__name__".to_string(), "node_cpu_seconds_total".to_string()),
        ("cpu".to_string(), (i % 64).to_string()),
        ("instance".to_string(), format!("host-{:05}", i / 512)),
        ("job".to_string(), "node".to_string()),
        ("mode".to_string(), MODES[(i / 64) % 8].to_string()),
    ]
}

/// `omp bench tsdb-mem`: the RSS growth of this process while a head takes `n` series with
/// 60 samples each (half a chunk: the average over an open chunk's life), per series.
pub fn tsdb_mem(profile: usize, n: usize) -> anyhow::Result<()> {
    use crate::tsdb::head::Head;
    let profile = PROFILES
        .get(profile)
        .copied()
        .ok_or_else(|| anyhow!("profile is 0, 1 or 2"))?;
    let start = 1_700_000_000_000i64;
    let before = rss_kib(std::process::id());
    let mut head = Head::new(n + 10);
    let ids: Vec<u64> = (0..n)
        .map(|i| head.series_id(node_cpu_labels(i)))
        .collect::<Result<_, _>>()?;
    for p in 0..60 {
        for (s, id) in ids.iter().enumerate() {
            head.append(*id, start + p * 15_000, profile.value(s, p))?;
        }
    }
    let after = rss_kib(std::process::id());
    // The ids vector is the caller's, not the head's.
    let grown = (after.saturating_sub(before) * 1024) as f64 - (n * 8) as f64;
    println!("{:.0} bytes ({n} series)", grown / n as f64);
    Ok(())
}

/// `omp bench tsdb`: ingest, storage and query figures of the time-series store (1,000
/// series × 24 h at 15 s by default) for three data profiles, in this process, with the
/// real store files: head append on one core, durable ingest, bytes per sample on disk,
/// RAM per series (RSS growth), and a rate() range query read from the segments.
pub fn tsdb(series: usize, hours: i64) -> anyhow::Result<()> {
    use crate::tsdb::Source;
    use crate::tsdb::db::{Ingest, Tsdb, TsdbOptions};
    use crate::tsdb::head::Head;
    let step = 15_000i64;
    let points = hours * 3600 * 1000 / step;
    let start = 1_700_000_000_000i64;
    let end = start + (points - 1) * step;
    let total = series as i64 * points;
    let labels: Vec<Vec<(String, String)>> = (0..series).map(node_cpu_labels).collect();
    println!("omp bench tsdb: {series} series × {hours} h at 15 s = {total} samples per profile");
    // 0. Memory per active series, measured in a fresh process per profile (RSS growth
    //    while a head takes 100,000 series with half-full open chunks).
    for (i, profile) in PROFILES.iter().enumerate() {
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["bench", "tsdb-mem", "--profile", &i.to_string()])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        println!(
            "  head RAM per active series ({}): {}",
            profile.name(),
            text.trim()
        );
    }
    for profile in PROFILES {
        // 1. In-memory head only: the codec and index on one core.
        let mut head = Head::new(series + 10);
        let ids: Vec<u64> = labels
            .iter()
            .map(|l| head.series_id(l.clone()))
            .collect::<Result<_, _>>()?;
        let t0 = Instant::now();
        for p in 0..points {
            for (s, id) in ids.iter().enumerate() {
                head.append(*id, start + p * step, profile.value(s, p))?;
            }
        }
        let head_secs = t0.elapsed().as_secs_f64();
        drop(head);

        // 2. The durable store: WAL batches of 10,000 (synced); closed chunks move to the
        //    segment ring when 16 MiB of them pile up (the server also does it every minute
        //    of wall time, which this compressed day does not reach), and at the end.
        let dir = tempfile::tempdir()?;
        let (mut db, _) = Tsdb::open(dir.path(), TsdbOptions::default())?;
        let mut batch = Vec::with_capacity(10_000);
        let t1 = Instant::now();
        for p in 0..points {
            for (s, l) in labels.iter().enumerate() {
                batch.push(Ingest {
                    labels: l.clone(),
                    t: start + p * step,
                    v: profile.value(s, p),
                });
                if batch.len() == 10_000 {
                    db.ingest(&batch)?;
                    batch.clear();
                }
            }
        }
        if !batch.is_empty() {
            db.ingest(&batch)?;
        }
        db.maintain(end)?;
        let db_secs = t1.elapsed().as_secs_f64();
        db.seal_segment()?;
        let ring_bytes = db.ring().bytes();
        let in_memory = db.head().chunk_bytes();
        let wal_bytes = db.wal_bytes();

        // Start-up: reopening replays the log (about the head) and reads segment indexes.
        let t_open = Instant::now();
        let (db, report) = {
            drop(db);
            Tsdb::open(dir.path(), TsdbOptions::default())?
        };
        let open_secs = t_open.elapsed().as_secs_f64();
        println!("\n  profile {}", profile.name());
        println!(
            "    head append (codec + index, one core):   {:.2} M samples/s",
            total as f64 / head_secs / 1e6
        );
        println!(
            "    durable ingest (WAL + segments):         {:.2} M samples/s",
            total as f64 / db_secs / 1e6
        );
        println!(
            "    on disk (segments and their indexes):     {:.3} bytes/sample ({:.1} MiB)",
            ring_bytes as f64 / total as f64,
            ring_bytes as f64 / 1048576.0
        );
        println!(
            "    in memory: {in_memory} bytes of open chunks, log {:.1} KiB after checkpoint",
            wal_bytes as f64 / 1024.0
        );
        println!(
            "    reopen (log replay of {} samples + segment indexes): {:.0} ms ({} indexes rebuilt)",
            report.samples,
            open_secs * 1000.0,
            report.rebuilt_indexes
        );

        // 3. A range query: rate over every series for the whole period at 60 s steps,
        //    served from the segments (and the head).
        if profile == Profile::Cpu {
            let expr = crate::tsdb::promql::parse("rate(node_cpu_seconds_total[5m])")
                .map_err(|e| anyhow!(e))?;
            let t2 = Instant::now();
            let v = crate::tsdb::promql::eval_range(
                &db,
                &expr,
                start + 300_000,
                end,
                60_000,
                Default::default(),
            )
            .map_err(|e| anyhow!(e))?;
            let q_secs = t2.elapsed().as_secs_f64();
            let n = match v {
                crate::tsdb::promql::Value::Matrix(m) => m.len(),
                _ => 0,
            };
            let t3 = Instant::now();
            let raw = db.select(
                &[crate::tsdb::head::Matcher::eq(
                    "__name__",
                    "node_cpu_seconds_total",
                )],
                start,
                end,
            );
            let read_secs = t3.elapsed().as_secs_f64();
            let read: usize = raw.iter().map(|(_, v)| v.len()).sum();
            println!(
                "    reading all {read} samples back from disk: {:.2} s ({:.1} M samples/s)",
                read_secs,
                read as f64 / read_secs / 1e6
            );
            println!(
                "    query_range rate()[5m] over {n} series × {hours} h at 60 s: {:.2} s",
                q_secs
            );
        }
    }
    Ok(())
}
