//! Answers the server's requests (`ServerMsg::Request`): agent-side scrapes of exporters
//! bound to this host's loopback, and the top processes on demand. Process figures are read
//! from /proc twice, 500 ms apart, so CPU shares are current rather than lifetime averages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::proto::{AgentReply, AgentRequest, ProcessInfo, ProcessList, ScrapeRequest};

/// Answers one request (blocking work runs off the async threads).
pub async fn answer(request: AgentRequest) -> AgentReply {
    let work = move || match request {
        AgentRequest::Scrape(r) => scrape(&r),
        AgentRequest::Processes { sort, limit } => top_processes(&sort, limit as usize),
    };
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| AgentReply::Failed {
            message: format!("the agent failed to answer: {e}"),
        })
}

/// One HTTP client per timeout, kept for the agent's life: its idle connections to the
/// exporters are reused by the next scrape instead of opened anew.
fn client(timeout_secs: u64) -> ureq::Agent {
    static CLIENTS: std::sync::OnceLock<std::sync::Mutex<HashMap<u64, ureq::Agent>>> =
        std::sync::OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    clients
        .entry(timeout_secs)
        // The server asks at the target's interval, which the request does not carry.
        .or_insert_with(|| crate::scrape::http_agent(timeout_secs, 60))
        .clone()
}

fn scrape(r: &ScrapeRequest) -> AgentReply {
    let failed = |message: String| AgentReply::Failed { message };
    if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
        return failed(format!("refusing to fetch {}: not an http(s) URL", r.url));
    }
    let mut req = client(r.timeout_secs.clamp(1, 3600))
        .get(&r.url)
        .header("accept", crate::scrape::ACCEPT)
        .header("user-agent", &format!("omp-agent/{}", crate::version()));
    if let Some(a) = &r.authorization {
        req = req.header("authorization", a);
    }
    let mut resp = match req.call() {
        Ok(r) => r,
        Err(e) => return failed(format!("cannot scrape {} from the agent: {e}", r.url)),
    };
    let status = resp.status().as_u16();
    if status != 200 {
        return failed(format!("{} answered HTTP {status}", r.url));
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match resp
        .body_mut()
        .with_config()
        .limit(r.max_bytes)
        .read_to_string()
    {
        Ok(body) => AgentReply::Scraped { body, content_type },
        Err(e) => failed(format!("reading {} failed: {e}", r.url)),
    }
}

/// One process as read from /proc/PID/stat (the fields the list needs).
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub pid: u32,
    pub name: String,
    pub state: String,
    pub ppid: u32,
    /// utime + stime, clock ticks
    pub cpu_ticks: u64,
    pub threads: u32,
    /// clock ticks after boot
    pub start_ticks: u64,
    pub rss_pages: u64,
}

/// Parses /proc/PID/stat. The command name sits in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let name = text.get(open + 1..close)?.to_string();
    let f: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state) of proc(5); field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        pid,
        name,
        state: f.first()?.to_string(),
        ppid: num(4)? as u32,
        cpu_ticks: num(14)? + num(15)?,
        threads: num(20)? as u32,
        start_ticks: num(22)?,
        rss_pages: num(24)?,
    })
}

/// uid → user name from /etc/passwd-formatted text.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// Every process of this host as /proc/PID/stat tells (processes that end meanwhile are
/// skipped).
pub fn proc_stats() -> Vec<Stat> {
    read_stats().into_values().collect()
}

fn read_stats() -> HashMap<u32, Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .map(|s| (s.pid, s))
        .collect()
}

fn proc_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let s: String = String::from_utf8_lossy(&raw)
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Kept bounded: a process may have a huge argument list.
    s.chars().take(1024).collect()
}

fn top_processes(sort: &str, limit: usize) -> AgentReply {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = rustix::param::page_size() as u64;
    let first = read_stats();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let second = read_stats();
    let wall = t0.elapsed().as_secs_f64();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0);
    let btime = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<i64>().ok())
    });
    let users = parse_passwd(&std::fs::read_to_string("/etc/passwd").unwrap_or_default());
    let mut items: Vec<ProcessInfo> = second
        .values()
        .map(|s| {
            let before = first
                .get(&s.pid)
                .map(|f| f.cpu_ticks)
                .unwrap_or(s.cpu_ticks);
            let cpu = s.cpu_ticks.saturating_sub(before) as f64 / ticks / wall * 100.0;
            let rss = s.rss_pages * page;
            ProcessInfo {
                pid: s.pid,
                ppid: s.ppid,
                user: String::new(),
                name: s.name.clone(),
                cmdline: String::new(),
                state: s.state.clone(),
                cpu_percent: (cpu * 10.0).round() / 10.0,
                rss_bytes: rss,
                mem_percent: if mem_total > 0 {
                    (rss as f64 / mem_total as f64 * 1000.0).round() / 10.0
                } else {
                    0.0
                },
                threads: s.threads,
                started_at: btime.map(|b| b + (s.start_ticks as f64 / ticks) as i64),
            }
        })
        .collect();
    let total = items.len() as u32;
    if sort == "memory" {
        items.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    } else {
        items.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(b.rss_bytes.cmp(&a.rss_bytes))
        });
    }
    items.truncate(limit.clamp(1, 500));
    // Only the listed processes pay for the user and command-line lookups.
    for p in &mut items {
        p.user = proc_uid(p.pid)
            .map(|u| users.get(&u).cloned().unwrap_or_else(|| u.to_string()))
            .unwrap_or_default();
        p.cmdline = cmdline(p.pid);
    }
    AgentReply::Processes(ProcessList {
        collected_at: chrono::Utc::now().timestamp(),
        total,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        let line = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 3 0 123456 1000000 512 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.name, "my (odd) proc");
        assert_eq!(s.state, "S");
        assert_eq!(s.ppid, 1);
        assert_eq!(s.cpu_ticks, 280);
        assert_eq!(s.threads, 3);
        assert_eq!(s.start_ticks, 123456);
        assert_eq!(s.rss_pages, 512);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("12 (x) S 1").is_none());
    }

    #[test]
    fn passwd_names() {
        let m = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nbad line\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
        );
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&33).map(String::as_str), Some("www-data"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn this_process_is_listed() {
        let AgentReply::Processes(list) = top_processes("memory", 500) else {
            panic!("no process list")
        };
        let me = std::process::id();
        let p = list.items.iter().find(|p| p.pid == me).expect("own pid");
        assert!(p.rss_bytes > 0 && p.threads >= 1 && !p.user.is_empty());
        assert!(list.total as usize >= list.items.len());
    }
}
