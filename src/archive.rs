//! The one way OMP unpacks archives (`.tar.gz`): [`safe_unpack`]. It refuses absolute
//! paths, `..`, writing through symbolic links, links that could point outside the
//! target, hard links, device files and FIFOs, duplicate entries, and archives over the
//! size or file-count limits, and it drops setuid/setgid bits. The installer, the app store
//! and backups use it; nothing else calls `tar` unpacking directly.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Limits of one unpack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries (files, directories, links).
    pub max_entries: usize,
    /// Most bytes of file content in total.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_total_bytes: 2 << 30,
        }
    }
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the archive is damaged or truncated ({0}): download it again")]
    Damaged(String),
    #[error("the archive entry {path:?} is refused: {why}")]
    Refused { path: String, why: &'static str },
    #[error("the archive is too large: {0}")]
    TooLarge(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was unpacked.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub files: usize,
    pub bytes: u64,
}

/// Unpacks a gzip-compressed tar stream into `dest` (created if missing). On error,
/// `dest` may hold part of the archive: unpack into a fresh temporary directory.
pub fn safe_unpack(reader: impl Read, dest: &Path, limits: Limits) -> Result<Unpacked, Error> {
    let gz = flate2::read::GzDecoder::new(reader);
    let mut archive = tar::Archive::new(gz);
    std::fs::create_dir_all(dest).map_err(|source| Error::Write {
        path: dest.to_path_buf(),
        source,
    })?;
    let entries = archive
        .entries()
        .map_err(|e| Error::Damaged(e.to_string()))?;
    let mut seen = HashSet::new();
    let mut out = Unpacked::default();
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Damaged(e.to_string()))?;
        count += 1;
        if count > limits.max_entries {
            return Err(Error::TooLarge(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |why| Error::Refused {
            path: raw.clone(),
            why,
        };
        let rel = relative_path(&raw).map_err(refuse)?;
        let Some(rel) = rel else { continue }; // "./" itself
        if !seen.insert(rel.clone()) {
            return Err(refuse("it occurs twice in the archive"));
        }
        let target = dest.join(&rel);
        no_symlink_on_the_way(dest, &rel).map_err(refuse)?;
        let kind = entry.header().entry_type();
        let write_err = |source| Error::Write {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(write_err)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
                let size = entry.header().size().unwrap_or(0);
                if out.bytes + size > limits.max_total_bytes {
                    return Err(Error::TooLarge(format!(
                        "more than {} bytes of content",
                        limits.max_total_bytes
                    )));
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(write_err)?;
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut f)
                    .map_err(|e| Error::Damaged(e.to_string()))?;
                if copied != size {
                    return Err(Error::Damaged(format!("{raw} is cut short")));
                }
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(write_err)?;
                out.files += 1;
                out.bytes += copied;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                check_link_target(&link).map_err(refuse)?;
                std::os::unix::fs::symlink(&link, &target).map_err(write_err)?;
            }
            tar::EntryType::Link => return Err(refuse("hard links are not accepted")),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                return Err(refuse(
                    "only files, directories and symbolic links are accepted",
                ));
            }
        }
    }
    Ok(out)
}

/// The entry path relative to the target; None for the archive root itself.
fn relative_path(raw: &str) -> Result<Option<PathBuf>, &'static str> {
    if raw.contains('\0') {
        return Err("its path contains a NUL byte");
    }
    let p = Path::new(raw);
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not accepted");
            }
            Component::ParentDir => return Err("paths with .. are not accepted"),
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Refuses writing through a symbolic link unpacked earlier (which could lead anywhere).
fn no_symlink_on_the_way(dest: &Path, rel: &Path) -> Result<(), &'static str> {
    let mut at = dest.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if let Ok(m) = std::fs::symlink_metadata(&at)
            && m.file_type().is_symlink()
        {
            return Err("it would be written through a symbolic link");
        }
    }
    Ok(())
}

/// A symbolic link may only point down from where it is: relative, without `..`. Since
/// nothing is written through links, every link then resolves inside the target.
fn check_link_target(link: &str) -> Result<(), &'static str> {
    if link.is_empty() || link.contains('\0') {
        return Err("its link target is empty or damaged");
    }
    for c in Path::new(link).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("links with .. in their target are not accepted"),
            _ => return Err("links to absolute paths are not accepted"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of a test archive: raw path bytes go straight into the header, so hostile
    /// names the `tar` builder would refuse can be written.
    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Fifo(&'a str),
        CharDev(&'a str),
    }

    fn tarball(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_old();
            let (name, kind, data, link): (&str, tar::EntryType, &[u8], &str) = match e {
                E::File(n, d) => (n, tar::EntryType::Regular, d, ""),
                E::Dir(n) => (n, tar::EntryType::Directory, b"", ""),
                E::Symlink(n, l) => (n, tar::EntryType::Symlink, b"", l),
                E::Hardlink(n, l) => (n, tar::EntryType::Link, b"", l),
                E::Fifo(n) => (n, tar::EntryType::Fifo, b"", ""),
                E::CharDev(n) => (n, tar::EntryType::Char, b"", ""),
            };
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o4755);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    fn unpack(entries: &[E]) -> (tempfile::TempDir, Result<Unpacked, Error>) {
        let dir = tempfile::tempdir().unwrap();
        let r = safe_unpack(
            &tarball(entries)[..],
            &dir.path().join("out"),
            Limits::default(),
        );
        (dir, r)
    }

    #[test]
    fn unpacks_a_plain_archive() {
        let (dir, r) = unpack(&[
            E::Dir("omp-1.0.0/"),
            E::File("omp-1.0.0/bin/omp", b"binary"),
            E::File("./omp-1.0.0/README", b"hello"),
            E::Symlink("omp-1.0.0/current", "bin/omp"),
        ]);
        let r = r.unwrap();
        assert_eq!((r.files, r.bytes), (2, 11));
        let out = dir.path().join("out/omp-1.0.0");
        assert_eq!(std::fs::read(out.join("bin/omp")).unwrap(), b"binary");
        assert_eq!(std::fs::read(out.join("current")).unwrap(), b"binary");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("bin/omp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "setuid dropped");
    }

    #[test]
    fn refuses_hostile_archives() {
        let cases: Vec<(Vec<E>, &str)> = vec![
            (vec![E::File("/etc/evil", b"x")], "absolute"),
            (vec![E::File("a/../../evil", b"x")], ".."),
            (vec![E::File("../evil", b"x")], ".."),
            (vec![E::Symlink("l", "/etc")], "absolute"),
            (vec![E::Symlink("l", "../..")], ".."),
            (
                vec![E::Symlink("l", "sub"), E::File("l/x", b"x")],
                "through a symbolic link",
            ),
            (vec![E::Hardlink("h", "/etc/passwd")], "hard links"),
            (vec![E::Fifo("f")], "only files"),
            (vec![E::CharDev("tty")], "only files"),
            (vec![E::File("a", b"1"), E::File("a", b"2")], "twice"),
            (vec![E::Symlink("a", "b"), E::File("a", b"2")], "twice"),
        ];
        for (entries, needle) in cases {
            let (dir, r) = unpack(&entries);
            let e = r.expect_err(needle).to_string();
            assert!(e.contains(needle), "{e} should mention {needle}");
            // Nothing escaped the target.
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn enforces_limits_and_detects_damage() {
        let data = tarball(&[
            E::File("a", &[1u8; 1000]),
            E::File("b", b"x"),
            E::File("c", b"y"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let few = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        let e = safe_unpack(&data[..], &dir.path().join("1"), few).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
        let small = Limits {
            max_total_bytes: 500,
            ..Limits::default()
        };
        let e = safe_unpack(&data[..], &dir.path().join("2"), small).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
        let e = safe_unpack(
            &data[..data.len() / 2],
            &dir.path().join("3"),
            Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Damaged(_)), "{e}");
        let e = safe_unpack(
            &b"not gzip at all"[..],
            &dir.path().join("4"),
            Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Damaged(_)), "{e}");
    }
}
