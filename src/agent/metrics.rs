//! Host metrics with node_exporter's names and labels (so existing dashboards and alert rules
//! work): CPU by mode, load, memory, swap, file systems, disk and network I/O, processes,
//! open files, boot time. Parsers take /proc text and are tested without the machine;
//! `collect` reads this host; the agent sends them every `metrics_secs` (from the server's
//! welcome) and the server stores them with `instance` and `job` labels.

use crate::proto::Disk;

/// One sample of one series: name, labels (sorted), value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

fn m(name: &'static str, labels: Vec<(&'static str, String)>, value: f64) -> Metric {
    let mut labels = labels;
    labels.sort();
    Metric {
        name,
        labels,
        value,
    }
}

/// /proc/stat: `node_cpu_seconds_total{cpu, mode}`, `node_boot_time_seconds`,
/// `node_context_switches_total`, `node_forks_total`, `node_procs_running`, `node_procs_blocked`.
pub fn parse_stat(text: &str, ticks_per_sec: f64) -> Vec<Metric> {
    const MODES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(key) = f.next() else { continue };
        let nums: Vec<f64> = f.filter_map(|x| x.parse().ok()).collect();
        match key {
            k if k.starts_with("cpu") && k.len() > 3 => {
                let cpu = k[3..].to_string();
                for (mode, v) in MODES.iter().zip(&nums) {
                    out.push(m(
                        "node_cpu_seconds_total",
                        vec![("cpu", cpu.clone()), ("mode", mode.to_string())],
                        v / ticks_per_sec,
                    ));
                }
            }
            "btime" => out.push(m(
                "node_boot_time_seconds",
                vec![],
                nums.first().copied().unwrap_or(0.0),
            )),
            "ctxt" => out.push(m(
                "node_context_switches_total",
                vec![],
                nums.first().copied().unwrap_or(0.0),
            )),
            "processes" => out.push(m(
                "node_forks_total",
                vec![],
                nums.first().copied().unwrap_or(0.0),
            )),
            "procs_running" => out.push(m(
                "node_procs_running",
                vec![],
                nums.first().copied().unwrap_or(0.0),
            )),
            "procs_blocked" => out.push(m(
                "node_procs_blocked",
                vec![],
                nums.first().copied().unwrap_or(0.0),
            )),
            _ => {}
        }
    }
    out
}

/// /proc/loadavg: `node_load1`, `node_load5`, `node_load15`.
pub fn parse_loadavg(text: &str) -> Vec<Metric> {
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    ["node_load1", "node_load5", "node_load15"]
        .iter()
        .zip(v)
        .map(|(n, x)| m(n, vec![], x))
        .collect()
}

/// /proc/meminfo: `node_memory_<Field>_bytes` for the fields dashboards use.
pub fn parse_meminfo(text: &str) -> Vec<Metric> {
    const FIELDS: &[(&str, &str)] = &[
        ("MemTotal", "node_memory_MemTotal_bytes"),
        ("MemFree", "node_memory_MemFree_bytes"),
        ("MemAvailable", "node_memory_MemAvailable_bytes"),
        ("Buffers", "node_memory_Buffers_bytes"),
        ("Cached", "node_memory_Cached_bytes"),
        ("SwapTotal", "node_memory_SwapTotal_bytes"),
        ("SwapFree", "node_memory_SwapFree_bytes"),
        ("Shmem", "node_memory_Shmem_bytes"),
        ("SReclaimable", "node_memory_SReclaimable_bytes"),
        ("Dirty", "node_memory_Dirty_bytes"),
    ];
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        let Some((_, name)) = FIELDS.iter().find(|(f, _)| *f == k) else {
            continue;
        };
        let mut p = rest.split_whitespace();
        let Some(v) = p.next().and_then(|x| x.parse::<f64>().ok()) else {
            continue;
        };
        let scale = if p.next() == Some("kB") { 1024.0 } else { 1.0 };
        out.push(m(name, vec![], v * scale));
    }
    out
}

/// node_exporter's default device filter: ram, loop and floppy devices, and partitions of
/// sd/hd/vd/xvd and NVMe disks (`^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`).
pub fn skipped_device(dev: &str) -> bool {
    let digits_after = |prefix_len: usize| {
        prefix_len < dev.len() && dev[prefix_len..].bytes().all(|b| b.is_ascii_digit())
    };
    for p in ["ram", "loop", "fd"] {
        if dev.starts_with(p) && digits_after(p.len()) {
            return true;
        }
    }
    for p in ["hd", "sd", "vd", "xvd"] {
        if let Some(rest) = dev.strip_prefix(p) {
            let letters = rest.bytes().take_while(|b| b.is_ascii_lowercase()).count();
            if letters == 1 && digits_after(p.len() + 1) {
                return true;
            }
        }
    }
    if let Some(rest) = dev.strip_prefix("nvme")
        && let Some(pos) = rest.find('p')
    {
        return rest[..pos].contains('n') && digits_after(4 + pos + 1);
    }
    false
}

/// /proc/diskstats: read/written bytes, completed I/Os and I/O time per whole device.
pub fn parse_diskstats(text: &str) -> Vec<Metric> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 {
            continue;
        }
        let dev = f[2];
        if skipped_device(dev) {
            continue;
        }
        let n = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
        let d = || vec![("device", dev.to_string())];
        out.push(m("node_disk_reads_completed_total", d(), n(3)));
        out.push(m("node_disk_read_bytes_total", d(), n(5) * 512.0));
        out.push(m("node_disk_writes_completed_total", d(), n(7)));
        out.push(m("node_disk_written_bytes_total", d(), n(9) * 512.0));
        out.push(m("node_disk_io_time_seconds_total", d(), n(12) / 1000.0));
    }
    out
}

/// /proc/net/dev: bytes, packets, errors and drops per interface and direction.
pub fn parse_netdev(text: &str) -> Vec<Metric> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((dev, rest)) = line.split_once(':') else {
            continue;
        };
        let dev = dev.trim().to_string();
        let v: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        let d = || vec![("device", dev.clone())];
        out.push(m("node_network_receive_bytes_total", d(), v[0]));
        out.push(m("node_network_receive_packets_total", d(), v[1]));
        out.push(m("node_network_receive_errs_total", d(), v[2]));
        out.push(m("node_network_receive_drop_total", d(), v[3]));
        out.push(m("node_network_transmit_bytes_total", d(), v[8]));
        out.push(m("node_network_transmit_packets_total", d(), v[9]));
        out.push(m("node_network_transmit_errs_total", d(), v[10]));
        out.push(m("node_network_transmit_drop_total", d(), v[11]));
    }
    out
}

/// /proc/sys/fs/file-nr: `node_filefd_allocated`, `node_filefd_maximum`.
pub fn parse_file_nr(text: &str) -> Vec<Metric> {
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v.as_slice() {
        [alloc, _, max, ..] => vec![
            m("node_filefd_allocated", vec![], *alloc),
            m("node_filefd_maximum", vec![], *max),
        ],
        _ => vec![],
    }
}

/// File system metrics from the inventory's disks (size, free, available) plus inodes.
pub fn filesystem_metrics(disks: &[(Disk, String, u64, u64)]) -> Vec<Metric> {
    let mut out = Vec::new();
    for (d, device, files, files_free) in disks {
        let l = || {
            vec![
                ("device", device.clone()),
                ("fstype", d.fs.clone()),
                ("mountpoint", d.mount.clone()),
            ]
        };
        out.push(m("node_filesystem_size_bytes", l(), d.size_bytes as f64));
        out.push(m("node_filesystem_avail_bytes", l(), d.avail_bytes as f64));
        out.push(m("node_filesystem_files", l(), *files as f64));
        out.push(m("node_filesystem_files_free", l(), *files_free as f64));
    }
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every host metric of this machine now.
pub fn collect() -> Vec<Metric> {
    // USER_HZ is 100 on every Linux architecture OMP runs on.
    let mut out = parse_stat(&read("/proc/stat"), 100.0);
    out.extend(parse_loadavg(&read("/proc/loadavg")));
    out.extend(parse_meminfo(&read("/proc/meminfo")));
    out.extend(parse_diskstats(&read("/proc/diskstats")));
    out.extend(parse_netdev(&read("/proc/net/dev")));
    out.extend(parse_file_nr(&read("/proc/sys/fs/file-nr")));
    let mounts = read("/proc/self/mounts");
    let devices: std::collections::HashMap<String, String> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dev = f.next()?;
            Some((f.next()?.replace("\\040", " "), dev.to_string()))
        })
        .collect();
    let disks: Vec<(Disk, String, u64, u64)> = super::inventory::parse_mounts(&mounts)
        .into_iter()
        .filter_map(|(mount, fs)| {
            let st = rustix::fs::statvfs(mount.as_str()).ok()?;
            let dev = devices.get(&mount).cloned().unwrap_or_default();
            let disk = Disk {
                size_bytes: st.f_blocks.saturating_mul(st.f_frsize),
                avail_bytes: st.f_bavail.saturating_mul(st.f_frsize),
                mount,
                fs,
            };
            Some((disk, dev, st.f_files, st.f_ffree))
        })
        .collect();
    out.extend(filesystem_metrics(&disks));
    let uptime = super::inventory::parse_uptime(&read("/proc/uptime")).unwrap_or(0);
    out.push(m(
        "node_time_seconds",
        vec![],
        chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
    ));
    out.push(m("omp_agent_host_uptime_seconds", vec![], uptime as f64));
    out.extend(process_states(
        super::requests::proc_stats()
            .iter()
            .map(|s| (s.state.as_str(), s.threads)),
    ));
    out
}

/// `node_processes_state{state}` (processes by one-letter state, as node_exporter's
/// processes collector names them: zombies are `Z`), `node_processes_threads`, and
/// `node_processes_pids` from (state, threads) per process.
pub fn process_states<'a>(procs: impl Iterator<Item = (&'a str, u32)>) -> Vec<Metric> {
    let mut states: std::collections::BTreeMap<String, f64> = ["D", "R", "S", "T", "Z"]
        .iter()
        .map(|s| (s.to_string(), 0.0))
        .collect();
    let (mut pids, mut threads) = (0.0, 0.0);
    for (state, t) in procs {
        *states.entry(state.to_string()).or_default() += 1.0;
        pids += 1.0;
        threads += t as f64;
    }
    let mut out: Vec<Metric> = states
        .into_iter()
        .map(|(st, n)| m("node_processes_state", vec![("state", st)], n))
        .collect();
    out.push(m("node_processes_pids", vec![], pids));
    out.push(m("node_processes_threads", vec![], threads));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(v: &'a [Metric], name: &str, labels: &[(&str, &str)]) -> Option<&'a Metric> {
        v.iter().find(|x| {
            x.name == name
                && labels
                    .iter()
                    .all(|(k, val)| x.labels.iter().any(|(a, b)| a == k && b == val))
        })
    }

    #[test]
    fn proc_stat() {
        let text = "cpu  375783 1983 54775 309352 3031 0 848 446 0 0\ncpu0 178280 995 25908 166539 875 0 168 212 0 0\nctxt 99\nbtime 1700000000\nprocesses 5\nprocs_running 3\nprocs_blocked 1\n";
        let v = parse_stat(text, 100.0);
        assert_eq!(
            find(
                &v,
                "node_cpu_seconds_total",
                &[("cpu", "0"), ("mode", "user")]
            )
            .unwrap()
            .value,
            1782.8
        );
        assert_eq!(
            find(
                &v,
                "node_cpu_seconds_total",
                &[("cpu", "0"), ("mode", "steal")]
            )
            .unwrap()
            .value,
            2.12
        );
        assert_eq!(
            v.iter()
                .filter(|x| x.name == "node_cpu_seconds_total")
                .count(),
            8,
            "only per-cpu lines, not the total"
        );
        assert_eq!(
            find(&v, "node_boot_time_seconds", &[]).unwrap().value,
            1.7e9
        );
        assert_eq!(find(&v, "node_procs_blocked", &[]).unwrap().value, 1.0);
    }

    #[test]
    fn device_filter_matches_node_exporter() {
        for (dev, skip) in [
            ("loop0", true),
            ("ram1", true),
            ("vda", false),
            ("vda1", true),
            ("sdb", false),
            ("sdb12", true),
            ("xvda2", true),
            ("nvme0n1", false),
            ("nvme0n1p3", true),
            ("dm-0", false),
            ("md0", false),
            ("sdaa1", false),
        ] {
            assert_eq!(skipped_device(dev), skip, "{dev}");
        }
    }

    #[test]
    fn process_state_counts() {
        let got = process_states([("S", 1), ("S", 4), ("Z", 1), ("I", 1)].into_iter());
        let v = |st: &str| {
            got.iter()
                .find(|x| x.name == "node_processes_state" && x.labels[0].1 == st)
                .map(|x| x.value)
        };
        assert_eq!(v("S"), Some(2.0));
        assert_eq!(v("Z"), Some(1.0));
        assert_eq!(v("R"), Some(0.0), "absent states are reported as 0");
        assert_eq!(v("I"), Some(1.0));
        assert_eq!(
            find(&got, "node_processes_threads", &[]).unwrap().value,
            7.0
        );
        assert_eq!(find(&got, "node_processes_pids", &[]).unwrap().value, 4.0);
    }

    #[test]
    fn load_memory_disks_network_files() {
        assert_eq!(
            parse_loadavg("2.79 2.53 2.33 4/99 20679\n")
                .iter()
                .map(|x| x.value)
                .collect::<Vec<_>>(),
            vec![2.79, 2.53, 2.33]
        );
        let mem = parse_meminfo(
            "MemTotal:       24576000 kB\nMemAvailable:   1000 kB\nHugePages_Total:  0\n",
        );
        assert_eq!(
            find(&mem, "node_memory_MemTotal_bytes", &[]).unwrap().value,
            24_576_000.0 * 1024.0
        );
        assert_eq!(mem.len(), 2);
        let disk = parse_diskstats(
            "   7 0 loop0 1 0 2 0 3 0 4 0 0 5 6 0 0 0 0\n 253 0 vda 100 0 2048 50 200 0 4096 70 0 1500 120 0 0 0 0\n",
        );
        assert_eq!(
            find(&disk, "node_disk_read_bytes_total", &[("device", "vda")])
                .unwrap()
                .value,
            2048.0 * 512.0
        );
        assert_eq!(
            find(
                &disk,
                "node_disk_io_time_seconds_total",
                &[("device", "vda")]
            )
            .unwrap()
            .value,
            1.5
        );
        assert!(find(&disk, "node_disk_read_bytes_total", &[("device", "loop0")]).is_none());
        let net = parse_netdev(
            "h1\nh2\n    lo: 3703322608  466597    0    0    0     0          0         0 3703322609  466598    1    2    0     0       0          0\n",
        );
        assert_eq!(
            find(
                &net,
                "node_network_transmit_bytes_total",
                &[("device", "lo")]
            )
            .unwrap()
            .value,
            3_703_322_609.0
        );
        assert_eq!(
            find(
                &net,
                "node_network_transmit_drop_total",
                &[("device", "lo")]
            )
            .unwrap()
            .value,
            2.0
        );
        assert_eq!(parse_file_nr("430\t0\t2466170\n")[1].value, 2_466_170.0);
    }

    #[test]
    fn collect_reads_this_host_with_node_exporter_names() {
        let v = collect();
        for name in [
            "node_cpu_seconds_total",
            "node_load1",
            "node_memory_MemAvailable_bytes",
            "node_filesystem_avail_bytes",
            "node_network_receive_bytes_total",
            "node_boot_time_seconds",
        ] {
            assert!(v.iter().any(|x| x.name == name), "{name} missing");
        }
        assert!(v.iter().all(|x| x.value.is_finite()));
    }
}
