//! File transfer on the agent: uploads are written to a temporary file beside the target,
//! checked against their SHA-256, given their mode and owner, then renamed into place (so a
//! reader never sees half a file, and a failure leaves the old file as it was); downloads
//! are sent back in chunks, refused above a size limit.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::Digest;
use tokio::sync::mpsc;

use crate::proto::{AgentMsg, FilePut, check_remote_path};

const CHUNK: usize = 256 * 1024;

/// Uploads in progress.
#[derive(Default)]
pub struct Uploads {
    open: HashMap<u64, Upload>,
}

struct Upload {
    put: FilePut,
    tmp: PathBuf,
    file: std::fs::File,
    hash: sha2::Sha256,
    written: u64,
}

fn done(xfer: u64, error: Option<String>, size: u64, sha256: String) -> AgentMsg {
    AgentMsg::FileDone {
        xfer,
        error,
        size,
        sha256,
    }
}

/// Resolves `user[:group]` (names via /etc/passwd and /etc/group, or numbers).
pub fn resolve_owner(spec: &str, passwd: &str, group: &str) -> Result<(u32, Option<u32>), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |name: &str, table: &str, what: &str| -> Result<u32, String> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        table
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name))
                    .then(|| f.nth(1).and_then(|id| id.parse().ok()))
                    .flatten()
            })
            .ok_or_else(|| format!("no {what} named {name:?} on this host"))
    };
    let uid = lookup(u, passwd, "user")?;
    let gid = match g {
        Some(g) if !g.is_empty() => Some(lookup(g, group, "group")?),
        _ => None,
    };
    Ok((uid, gid))
}

fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(28) => "no space left on the device".to_string(),
        _ => e.to_string(),
    }
}

impl Uploads {
    /// Starts an upload; an error is reported at once.
    pub fn begin(&mut self, put: FilePut) -> Option<AgentMsg> {
        let xfer = put.xfer;
        if let Err(e) = check_remote_path(&put.path) {
            return Some(done(xfer, Some(e), 0, String::new()));
        }
        let target = Path::new(&put.path);
        let dir = target.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            return Some(done(
                xfer,
                Some(format!("the folder {} does not exist", dir.display())),
                0,
                String::new(),
            ));
        }
        if target.is_dir() {
            return Some(done(
                xfer,
                Some(format!("{} is a folder", target.display())),
                0,
                String::new(),
            ));
        }
        // A random name: a temporary left behind by a crash never blocks a later upload.
        let tmp = dir.join(format!(
            ".omp-upload-{}.tmp",
            crate::auth::password::random_hex(8)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp);
        match file {
            Ok(file) => {
                self.open.insert(
                    xfer,
                    Upload {
                        put,
                        tmp,
                        file,
                        hash: sha2::Sha256::new(),
                        written: 0,
                    },
                );
                None
            }
            Err(e) => Some(done(
                xfer,
                Some(format!(
                    "cannot write in {}: {}",
                    dir.display(),
                    io_text(&e)
                )),
                0,
                String::new(),
            )),
        }
    }

    /// Appends a chunk; an error ends the upload.
    pub fn chunk(&mut self, xfer: u64, data: &str) -> Option<AgentMsg> {
        let up = self.open.get_mut(&xfer)?;
        let bytes = match data_encoding::BASE64.decode(data.as_bytes()) {
            Ok(b) => b,
            Err(_) => return self.fail(xfer, "a chunk was not valid base64".into()),
        };
        if up.written + bytes.len() as u64 > up.put.size {
            return self.fail(xfer, "more data than announced".into());
        }
        if let Err(e) = up.file.write_all(&bytes) {
            let msg = io_text(&e);
            return self.fail(xfer, format!("writing failed: {msg}"));
        }
        up.hash.update(&bytes);
        up.written += bytes.len() as u64;
        None
    }

    /// Verifies, sets mode and owner, renames into place.
    pub fn end(&mut self, xfer: u64) -> Option<AgentMsg> {
        let up = self.open.remove(&xfer)?;
        let Upload {
            put,
            tmp,
            file,
            hash,
            written,
        } = up;
        let sha = data_encoding::HEXLOWER.encode(&hash.finalize());
        let result = (|| -> Result<(), String> {
            if written != put.size {
                return Err(format!("received {written} of {} bytes", put.size));
            }
            if sha != put.sha256 {
                return Err(format!(
                    "checksum mismatch: got {sha}, expected {}",
                    put.sha256
                ));
            }
            file.sync_all()
                .map_err(|e| format!("cannot flush the file: {}", io_text(&e)))?;
            drop(file);
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(put.mode & 0o7777))
                .map_err(|e| format!("cannot set mode {:o}: {e}", put.mode))?;
            if let Some(owner) = &put.owner {
                let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
                let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
                let (uid, gid) = resolve_owner(owner, &passwd, &group)?;
                rustix::fs::chown(
                    &tmp,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    gid.map(rustix::fs::Gid::from_raw),
                )
                .map_err(|e| format!("cannot set owner {owner}: {e}"))?;
            }
            std::fs::rename(&tmp, &put.path)
                .map_err(|e| format!("cannot move the file into place: {}", io_text(&e)))
        })();
        match result {
            Ok(()) => Some(done(xfer, None, written, sha)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Some(done(xfer, Some(e), written, sha))
            }
        }
    }

    fn fail(&mut self, xfer: u64, e: String) -> Option<AgentMsg> {
        let up = self.open.remove(&xfer)?;
        drop(up.file);
        let _ = std::fs::remove_file(&up.tmp);
        Some(done(xfer, Some(e), up.written, String::new()))
    }

    /// Drops every unfinished upload (the connection ended).
    pub fn abort_all(&mut self) {
        for (_, up) in self.open.drain() {
            let _ = std::fs::remove_file(&up.tmp);
        }
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// Reads a file and sends it in chunks (blocking: run it off the async workers).
pub fn send_file(xfer: u64, path: &str, max_bytes: u64, out: &mpsc::Sender<AgentMsg>) {
    let fail = |e: String| {
        let _ = out.blocking_send(done(xfer, Some(e), 0, String::new()));
    };
    if let Err(e) = check_remote_path(path) {
        return fail(e);
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return fail(format!("cannot read {path}: {}", io_text(&e))),
    };
    if !meta.is_file() {
        return fail(format!("{path} is not a regular file"));
    }
    if meta.len() > max_bytes {
        return fail(format!(
            "{path} is {} bytes, more than the limit of {max_bytes}",
            meta.len()
        ));
    }
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot read {path}: {}", io_text(&e))),
    };
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return fail(format!("reading {path} failed: {}", io_text(&e))),
        };
        size += n as u64;
        if size > max_bytes {
            return fail(format!(
                "{path} grew past the limit of {max_bytes} bytes while being read"
            ));
        }
        hash.update(&buf[..n]);
        let data = data_encoding::BASE64.encode(&buf[..n]);
        if out
            .blocking_send(AgentMsg::FileData { xfer, data })
            .is_err()
        {
            return;
        }
    }
    let _ = out.blocking_send(done(
        xfer,
        None,
        size,
        data_encoding::HEXLOWER.encode(&hash.finalize()),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n";
        let group = "root:x:0:\nadm:x:4:syslog\n";
        assert_eq!(resolve_owner("www-data", passwd, group), Ok((33, None)));
        assert_eq!(
            resolve_owner("www-data:adm", passwd, group),
            Ok((33, Some(4)))
        );
        assert_eq!(
            resolve_owner("1000:1000", passwd, group),
            Ok((1000, Some(1000)))
        );
        assert!(resolve_owner("nobody-here", passwd, group).is_err());
        assert!(resolve_owner("root:nogroup", passwd, group).is_err());
    }

    fn put(dir: &Path, name: &str, content: &[u8], sha: Option<&str>) -> FilePut {
        FilePut {
            xfer: 1,
            path: dir.join(name).to_string_lossy().into_owned(),
            mode: 0o640,
            owner: None,
            size: content.len() as u64,
            sha256: sha
                .map(str::to_string)
                .unwrap_or_else(|| data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(content))),
        }
    }

    #[test]
    fn upload_is_atomic_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let mut u = Uploads::default();
        std::fs::write(d.path().join("f"), b"old").unwrap();
        // A wrong checksum leaves the old file and no temporary behind.
        assert!(
            u.begin(put(d.path(), "f", b"new", Some(&"0".repeat(64))))
                .is_none()
        );
        assert!(u.chunk(1, &data_encoding::BASE64.encode(b"new")).is_none());
        let Some(AgentMsg::FileDone { error: Some(e), .. }) = u.end(1) else {
            panic!()
        };
        assert!(e.contains("checksum mismatch"), "{e}");
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        // A good one replaces it with the mode asked for.
        u.begin(put(d.path(), "f", b"new", None));
        u.chunk(1, &data_encoding::BASE64.encode(b"new"));
        let Some(AgentMsg::FileDone {
            error: None,
            size: 3,
            ..
        }) = u.end(1)
        else {
            panic!()
        };
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"new");
        let mode = std::fs::metadata(d.path().join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        // Paths with .. are refused before anything is written.
        let mut bad = put(d.path(), "x", b"", None);
        bad.path = format!("{}/../escape", d.path().display());
        let Some(AgentMsg::FileDone { error: Some(e), .. }) = u.begin(bad) else {
            panic!()
        };
        assert!(e.contains(".."), "{e}");
    }
}
