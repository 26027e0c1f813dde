//! Gives back the pages of OMP's own binary that only start-up used.
//!
//! Start-up runs code that never runs again (argument parsing, migrations, building ~200
//! routes and the OpenAPI document, TLS key generation) spread over most of the 7 MiB of
//! machine code, and the kernel maps a file's pages 64 KiB around each one touched. Once the
//! server runs, those mappings are dropped with `madvise(MADV_DONTNEED)`: pages still in use
//! come back on their next touch from the page cache (a minor fault), the rest stay
//! unmapped, where the kernel can reclaim them like any cached file page. Measured on the
//! scrape benchmark, the binary's resident pages fell from 8.2 MiB to what the server keeps
//! touching with the kernel's 64 KiB granularity: 5.2 MiB at `opt-level = "z"`, 3.8 MiB at
//! 3 (README, "Performance").
//!
//! Only mappings that hold nothing but the file's own bytes are dropped: read-only, private,
//! of the executable's inode, with no anonymous (copied-on-write) page. That rules out the
//! relocated data (`.data.rel.ro`, read-only after relocation but no longer the file's
//! bytes), whose pages would come back unrelocated. Re-reading from the file is what the
//! kernel already does whenever memory pressure evicts a text page, so this adds no new way
//! to fail; the binary is replaced by rename on upgrade, never written in place.

// The one module with `unsafe` (the crate denies it elsewhere): one madvise(2) call on
// mappings checked to hold only the file's bytes.
#![allow(unsafe_code)]

/// A mapping that may be dropped: start address and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: usize,
    pub len: usize,
    /// Resident bytes when read (what dropping it gives back, at most).
    pub resident: usize,
}

/// The mappings of the file with inode `inode` in a `/proc/self/smaps` text that hold only
/// the file's bytes: not writable, private, and without anonymous pages.
pub fn file_only_ranges(smaps: &str, inode: u64) -> Vec<Range> {
    struct Cur {
        range: Range,
        eligible: bool,
        anonymous: Option<usize>,
    }
    let mut out = Vec::new();
    let mut cur: Option<Cur> = None;
    let finish = |c: Option<Cur>, out: &mut Vec<Range>| {
        // A mapping whose `Anonymous:` line is missing is not known to be clean.
        if let Some(c) = c
            && c.eligible
            && c.anonymous == Some(0)
        {
            out.push(c.range);
        }
    };
    for line in smaps.lines() {
        if let Some(header) = mapping_header(line) {
            finish(cur.take(), &mut out);
            let (start, end, perms, map_inode) = header;
            cur = Some(Cur {
                range: Range {
                    start,
                    len: end - start,
                    resident: 0,
                },
                eligible: map_inode == inode
                    && inode != 0
                    && perms.starts_with('r')
                    && perms.as_bytes().get(1) == Some(&b'-')
                    && perms.as_bytes().get(3) == Some(&b'p'),
                anonymous: None,
            });
        } else if let Some(c) = cur.as_mut() {
            if let Some(kb) = field_kb(line, "Anonymous:") {
                c.anonymous = Some(kb * 1024);
            } else if let Some(kb) = field_kb(line, "Rss:") {
                c.range.resident = kb * 1024;
            }
        }
    }
    finish(cur.take(), &mut out);
    out
}

/// `start-end perms offset dev inode [path]` → (start, end, perms, inode).
fn mapping_header(line: &str) -> Option<(usize, usize, &str, u64)> {
    let mut f = line.split_ascii_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = f.next()?;
    if perms.len() != 4 || end <= start {
        return None;
    }
    let _offset = f.next()?;
    let dev = f.next()?;
    if !dev.contains(':') {
        return None;
    }
    let inode = f.next()?.parse().ok()?;
    Some((start, end, perms, inode))
}

/// The number in `Name:   123 kB`.
fn field_kb(line: &str, name: &str) -> Option<usize> {
    line.strip_prefix(name)?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// Drops this process's file-only mappings of its own executable (see the module text);
/// returns the resident bytes they held. Other systems: nothing to do.
#[cfg(target_os = "linux")]
pub fn release_binary_pages() -> std::io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata("/proc/self/exe")?.ino();
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for r in file_only_ranges(&smaps, inode) {
        // SAFETY: the range is a whole mapping of the executable that holds only the file's
        // unmodified bytes (checked above): dropping it changes no memory the program can
        // observe, its pages are read back from the file when next touched.
        unsafe {
            rustix::mm::madvise(
                r.start as *mut std::ffi::c_void,
                r.len,
                rustix::mm::Advice::LinuxDontNeed,
            )?;
        }
        released += r.resident;
    }
    Ok(released)
}

#[cfg(not(target_os = "linux"))]
pub fn release_binary_pages() -> std::io::Result<usize> {
    Ok(0)
}

/// How long after start the pages are released: past start-up, the first scrapes and
/// agent hellos.
pub const AFTER_START: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits [`AFTER_START`], then releases the binary's start-up pages (the server's and the
/// agent's background task; a failure costs only memory, so it is logged at debug).
pub async fn release_after_start() {
    tokio::time::sleep(AFTER_START).await;
    match release_binary_pages() {
        Ok(bytes) => tracing::debug!(bytes, "Start-up pages of the binary released."),
        Err(e) => tracing::debug!(error = %e, "Releasing start-up pages failed."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a00a6000 r--p 00000000 fd:01 4242 /opt/omp/bin/omp
Size:                664 kB
Rss:                 664 kB
Anonymous:             0 kB
55d0a00a6000-55d0a0810000 r-xp 000a6000 fd:01 4242 /opt/omp/bin/omp
Size:               7592 kB
Rss:                6436 kB
Pss:                6436 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
55d0a0810000-55d0a0e3f000 r--p 00810000 fd:01 4242 /opt/omp/bin/omp
Size:               6332 kB
Rss:                1088 kB
Anonymous:           412 kB
55d0a0e3f000-55d0a0ef1000 rw-p 00e3f000 fd:01 4242 /opt/omp/bin/omp
Size:                712 kB
Rss:                 532 kB
Anonymous:           532 kB
7f0000000000-7f0000100000 r--p 00000000 fd:01 777 /usr/lib/locale/C.utf8/LC_CTYPE
Size:               1024 kB
Rss:                  40 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 r--s 00000000 fd:01 4242 /opt/omp/bin/omp
Size:               1024 kB
Rss:                  40 kB
Anonymous:             0 kB
7f0000400000-7f0000500000 r-xp 00000000 00:00 0
Size:               1024 kB
Rss:                   8 kB
Anonymous:             8 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
Anonymous:            16 kB
";

    #[test]
    fn only_clean_read_only_private_mappings_of_the_binary() {
        let r = file_only_ranges(SMAPS, 4242);
        assert_eq!(
            r,
            vec![
                Range {
                    start: 0x55d0a0000000,
                    len: 0xa6000,
                    resident: 664 * 1024
                },
                Range {
                    start: 0x55d0a00a6000,
                    len: 0x76a000,
                    resident: 6436 * 1024
                },
            ],
            "relocated (anonymous), writable, shared and other files' mappings are kept"
        );
        assert!(file_only_ranges(SMAPS, 777).len() == 1);
        assert!(
            file_only_ranges(SMAPS, 0).is_empty(),
            "inode 0 is anonymous memory"
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_kept() {
        let text = "55d0a0000000-55d0a00a6000 r-xp 00000000 fd:01 9 /bin/x\nRss: 4 kB\n";
        assert!(file_only_ranges(text, 9).is_empty());
        assert!(file_only_ranges("garbage\n\n-\n", 9).is_empty());
    }

    /// The test process drops its own binary's clean mappings and goes on running code from
    /// them (this function's callers, the test harness) and reading its constants.
    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_the_test_binary_keeps_it_running() {
        let released = release_binary_pages().expect("madvise on our own binary");
        assert!(released > 0, "the test binary had resident text pages");
        // Code and read-only data of this binary still work after the drop.
        let again = file_only_ranges(SMAPS, 4242);
        assert_eq!(again.len(), 2);
        assert_eq!(field_kb("Rss:  12 kB", "Rss:"), Some(12));
    }
}
