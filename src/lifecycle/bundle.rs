//! The offline bundle: the folder `omp-VERSION/` inside `omp-VERSION-linux-x86_64.tar.gz`
//! (`bin/omp`, `omp.toml`, `systemd/`, README, LICENSE, VERSION, `SHA256SUMS` and an
//! optional `SHA256SUMS.sig`). Opening one checks every file against the manifest (and no
//! file is left out of it), the signature when a site key is trusted, the binary's
//! architecture and its version stamp. Tarballs are unpacked only by `archive::safe_unpack`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

pub const SUMS: &str = "SHA256SUMS";
pub const SIG: &str = "SHA256SUMS.sig";
/// ELF machine number of x86-64.
const EM_X86_64: u16 = 62;

/// A verified, unpacked bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub root: PathBuf,
    pub version: String,
    /// The manifest was signed by a trusted key.
    pub signed: bool,
}

impl Bundle {
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin/omp")
    }

    /// The bundle the running binary came from (`omp install` runs from the unpacked
    /// tarball: this executable is `omp-VERSION/bin/omp`).
    pub fn of_this_executable(trusted: Option<&[u8]>) -> anyhow::Result<Bundle> {
        let exe = std::fs::read_link("/proc/self/exe")
            .or_else(|_| std::env::current_exe())
            .context("cannot find this executable (/proc/self/exe)")?;
        let root = exe
            .parent()
            .and_then(Path::parent)
            .filter(|r| r.join(SUMS).is_file())
            .with_context(|| {
                format!(
                    "{} is not inside an unpacked OMP tarball (no ../{SUMS} beside its bin/): unpack omp-VERSION-linux-x86_64.tar.gz and run omp-VERSION/bin/omp install",
                    exe.display()
                )
            })?;
        Bundle::open(root, trusted)
    }

    /// Checks an unpacked bundle folder.
    pub fn open(root: &Path, trusted: Option<&[u8]>) -> anyhow::Result<Bundle> {
        let sums_path = root.join(SUMS);
        let sums_text = std::fs::read_to_string(&sums_path).with_context(|| {
            format!(
                "the bundle has no readable {SUMS} ({}): it is incomplete, download the tarball again",
                sums_path.display()
            )
        })?;
        let manifest = parse_sums(&sums_text)?;
        let mut present = Vec::new();
        list_files(root, Path::new(""), &mut present)?;
        for rel in &present {
            let name = rel.to_string_lossy();
            if name == SUMS || name == SIG {
                continue;
            }
            if !manifest.contains_key(name.as_ref()) {
                bail!(
                    "the bundle holds {name}, which {SUMS} does not list: the tarball was tampered with, download it again"
                );
            }
        }
        for (name, want) in &manifest {
            let path = root.join(name);
            let got = sha256_file(&path).with_context(|| {
                format!("the bundle lacks {name} listed in {SUMS}: download the tarball again")
            })?;
            if &got != want {
                bail!(
                    "checksum mismatch for {name} (SHA256SUMS says {}…, the file is {}…): the tarball is damaged or was tampered with, download it again",
                    &want[..12],
                    &got[..12]
                );
            }
        }
        let sig_path = root.join(SIG);
        let signed = match (trusted, sig_path.is_file()) {
            (Some(key), true) => {
                let sig = std::fs::read_to_string(&sig_path)?;
                super::sign::verify(key, sums_text.as_bytes(), sig.trim()).with_context(|| {
                    format!("the signature {} does not match the site key: this tarball was not signed by your site, do not install it", sig_path.display())
                })?;
                true
            }
            (Some(_), false) => bail!(
                "this tarball is not signed ({SIG} is missing) but a site key is trusted: use a tarball built with packaging/build.sh --sign-key"
            ),
            (None, _) => false,
        };
        let bin = root.join("bin/omp");
        check_arch(&bin)?;
        let version = super::stamp::read_file(&bin)
            .with_context(|| format!("cannot read {}", bin.display()))?
            .with_context(|| {
                format!(
                    "{} carries no version stamp: build the tarball with packaging/build.sh",
                    bin.display()
                )
            })?;
        Ok(Bundle {
            root: root.to_path_buf(),
            version,
            signed,
        })
    }

    /// Unpacks a tarball into `staging` (emptied first) and opens the one folder in it.
    pub fn unpack(
        tarball: &Path,
        staging: &Path,
        trusted: Option<&[u8]>,
    ) -> anyhow::Result<Bundle> {
        let f = std::fs::File::open(tarball)
            .with_context(|| format!("cannot open the tarball {}", tarball.display()))?;
        if staging.exists() {
            std::fs::remove_dir_all(staging)
                .with_context(|| format!("cannot empty {}", staging.display()))?;
        }
        crate::archive::safe_unpack(
            std::io::BufReader::new(f),
            staging,
            crate::archive::Limits::default(),
        )
        .with_context(|| format!("cannot unpack {}", tarball.display()))?;
        let tops: Vec<_> = std::fs::read_dir(staging)?
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        let [top] = tops.as_slice() else {
            bail!(
                "{} is not an OMP tarball (expected one folder omp-VERSION/ inside)",
                tarball.display()
            );
        };
        let bundle = Bundle::open(&top.path(), trusted)?;
        let folder = top.file_name().to_string_lossy().into_owned();
        if folder != format!("omp-{}", bundle.version) {
            bail!(
                "the tarball's folder {folder} does not match its binary's version {}: the tarball was tampered with",
                bundle.version
            );
        }
        Ok(bundle)
    }
}

/// `sha256sum` format: `<64 hex>  <relative path>` per line.
pub fn parse_sums(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (hash, name) = line
            .split_once("  ")
            .filter(|(h, n)| {
                h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) && !n.is_empty()
            })
            .with_context(|| {
                format!(
                    "{SUMS} line {} is damaged: download the tarball again",
                    i + 1
                )
            })?;
        let name = name.trim_start_matches("./");
        if name.starts_with('/') || name.split('/').any(|c| c == "..") {
            bail!("{SUMS} names a path outside the bundle ({name}): the tarball was tampered with");
        }
        out.insert(name.to_string(), hash.to_ascii_lowercase());
    }
    if out.is_empty() {
        bail!("{SUMS} is empty: download the tarball again");
    }
    Ok(out)
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(root.join(rel))? {
        let e = e?;
        let r = rel.join(e.file_name());
        let t = e.file_type()?;
        if t.is_dir() {
            list_files(root, &r, out)?;
        } else {
            out.push(r);
        }
    }
    Ok(())
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary must be a 64-bit little-endian x86-64 ELF (this host's architecture).
pub fn check_arch(bin: &Path) -> anyhow::Result<()> {
    let mut head = [0u8; 20];
    std::fs::File::open(bin)
        .and_then(|mut f| f.read_exact(&mut head))
        .with_context(|| format!("cannot read {}: the bundle is incomplete", bin.display()))?;
    if &head[..4] != b"\x7fELF" {
        bail!(
            "{} is not a Linux executable: the tarball is damaged",
            bin.display()
        );
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if head[4] != 2 || head[5] != 1 || machine != EM_X86_64 {
        bail!(
            "{} is built for another architecture ({}), this host is x86_64: use the omp-VERSION-linux-x86_64.tar.gz tarball",
            bin.display(),
            machine_name(machine)
        );
    }
    if std::env::consts::ARCH != "x86_64" {
        bail!(
            "this host is {}, OMP ships for x86_64 only",
            std::env::consts::ARCH
        );
    }
    Ok(())
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "x86 (32-bit)".into(),
        40 => "arm (32-bit)".into(),
        183 => "aarch64".into(),
        243 => "riscv".into(),
        62 => "x86_64 but not 64-bit little-endian".into(),
        n => format!("ELF machine {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal bundle: an x86-64 ELF header plus a stamp area as bin/omp, a README, and
    /// the manifest (signed with `key` when given).
    fn bundle(dir: &Path, version: &str, key: Option<&Path>) -> PathBuf {
        let root = dir.join(format!("omp-{version}"));
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        elf.extend_from_slice(&crate::lifecycle::stamp::blank());
        crate::lifecycle::stamp::apply(&mut elf, version).unwrap();
        std::fs::write(root.join("bin/omp"), &elf).unwrap();
        std::fs::write(root.join("README.md"), "hello").unwrap();
        let sums: String = ["README.md", "bin/omp"]
            .iter()
            .map(|f| format!("{}  {f}\n", sha256_file(&root.join(f)).unwrap()))
            .collect();
        std::fs::write(root.join(SUMS), &sums).unwrap();
        if let Some(k) = key {
            let sig = crate::lifecycle::sign::sign(k, sums.as_bytes()).unwrap();
            std::fs::write(root.join(SIG), sig).unwrap();
        }
        root
    }

    #[test]
    fn bundles_are_verified_file_by_file_and_by_signature() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("site.key");
        let public = crate::lifecycle::sign::read_public(Path::new(
            &crate::lifecycle::sign::keygen(&key).unwrap(),
        ))
        .unwrap();
        let root = bundle(&d.path().join("a"), "1.2.3", Some(&key));
        let b = Bundle::open(&root, Some(&public)).unwrap();
        assert_eq!((b.version.as_str(), b.signed), ("1.2.3", true));
        assert!(!Bundle::open(&root, None).unwrap().signed);

        let err =
            |root: &Path, key: Option<&[u8]>| format!("{:#}", Bundle::open(root, key).unwrap_err());
        // Another site's key.
        let other = d.path().join("other.key");
        let other_pub = crate::lifecycle::sign::read_public(Path::new(
            &crate::lifecycle::sign::keygen(&other).unwrap(),
        ))
        .unwrap();
        assert!(err(&root, Some(&other_pub)).contains("not signed by your site"));
        // A trusted key but no signature.
        let unsigned = bundle(&d.path().join("b"), "1.2.3", None);
        assert!(err(&unsigned, Some(&public)).contains("not signed"));
        // A file not in the manifest, and a changed file.
        std::fs::write(unsigned.join("extra"), "x").unwrap();
        assert!(err(&unsigned, None).contains("does not list"));
        std::fs::remove_file(unsigned.join("extra")).unwrap();
        std::fs::write(unsigned.join("README.md"), "changed").unwrap();
        assert!(err(&unsigned, None).contains("checksum mismatch for README.md"));
        // Another architecture.
        let arm = bundle(&d.path().join("c"), "1.2.3", None);
        let mut image = std::fs::read(arm.join("bin/omp")).unwrap();
        image[18] = 183;
        std::fs::write(arm.join("bin/omp"), &image).unwrap();
        let sums = format!(
            "{}  README.md\n{}  bin/omp\n",
            sha256_file(&arm.join("README.md")).unwrap(),
            sha256_file(&arm.join("bin/omp")).unwrap()
        );
        std::fs::write(arm.join(SUMS), sums).unwrap();
        assert!(err(&arm, None).contains("another architecture (aarch64)"));
    }

    #[test]
    fn manifest_lines() {
        let h = "a".repeat(64);
        let m = parse_sums(&format!("{h}  bin/omp\n{h}  ./README.md\n\n")).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.contains_key("README.md"));
        for bad in [
            "".to_string(),
            format!("{h} bin/omp"),
            format!("{}  x", "g".repeat(64)),
            format!("{h}  ../etc/passwd"),
            format!("{h}  /etc/passwd"),
        ] {
            assert!(parse_sums(&bad).is_err(), "{bad}");
        }
    }
}
