//! Reads the host's inventory from /proc, /etc and statvfs. Parsers take text so they are
//! tested without the machine; `collect` does the reading.

use crate::proto::{Disk, Inventory};

/// File systems worth reporting as disks (pseudo and overlay file systems are skipped).
const REAL_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "vfat", "exfat", "f2fs", "jfs", "reiserfs",
    "ntfs", "ntfs3",
];

/// `PRETTY_NAME` of /etc/os-release.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// `MemTotal` of /proc/meminfo in bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Seconds of /proc/uptime.
pub fn parse_uptime(text: &str) -> Option<u64> {
    text.split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .map(|s| s as u64)
}

/// (mount point, fs type) of real file systems in /proc/self/mounts, first mount wins.
pub fn parse_mounts(text: &str) -> Vec<(String, String)> {
    let mut seen_dev = std::collections::HashSet::new();
    let mut out = Vec::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let (Some(dev), Some(mnt), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if REAL_FS.contains(&fs) && seen_dev.insert(dev.to_string()) {
            // /proc/mounts escapes spaces and tabs as octal.
            out.push((
                mnt.replace("\\040", " ").replace("\\011", "\t"),
                fs.to_string(),
            ));
        }
    }
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The inventory of this machine.
pub fn collect() -> Inventory {
    let uts = rustix::system::uname();
    let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
    let disks = parse_mounts(&read("/proc/self/mounts"))
        .into_iter()
        .filter_map(|(mount, fs)| {
            let st = rustix::fs::statvfs(mount.as_str()).ok()?;
            Some(Disk {
                size_bytes: st.f_blocks.saturating_mul(st.f_frsize),
                avail_bytes: st.f_bavail.saturating_mul(st.f_frsize),
                mount,
                fs,
            })
        })
        .collect();
    let mut ips: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip().to_string())
        .collect();
    ips.sort();
    ips.dedup();
    Inventory {
        hostname: s(uts.nodename()),
        machine_id: read("/etc/machine-id").trim().to_string(),
        os: parse_os_release(&read("/etc/os-release")).unwrap_or_else(|| s(uts.sysname())),
        kernel: s(uts.release()),
        arch: s(uts.machine()),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_bytes: parse_meminfo_total(&read("/proc/meminfo")).unwrap_or(0),
        disks,
        ips,
        uptime_secs: parse_uptime(&read("/proc/uptime")).unwrap_or(0),
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_os_release("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").unwrap(),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(
            parse_meminfo_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24576000 * 1024)
        );
        assert_eq!(parse_uptime("12345.67 890.1\n"), Some(12345));
        let mounts = "/dev/vda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/vda1 /var/lib/docker ext4 rw 0 0\n/dev/vdb /data\\040disk xfs rw 0 0\noverlay /x overlay rw 0 0\n";
        assert_eq!(
            parse_mounts(mounts),
            vec![
                ("/".to_string(), "ext4".to_string()),
                ("/data disk".to_string(), "xfs".to_string())
            ]
        );
    }

    #[test]
    fn collect_reads_this_machine() {
        let inv = collect();
        assert!(!inv.hostname.is_empty());
        assert!(inv.cpus >= 1);
        assert!(inv.memory_bytes > 0);
        assert!(!inv.kernel.is_empty());
    }
}
