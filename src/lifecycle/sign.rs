//! Site signing of release manifests with Ed25519 (ring): `omp keygen` makes a key pair,
//! `packaging/build.sh --sign-key` signs `SHA256SUMS` with `omp sign`, and install and
//! upgrade verify it against the public key the site trusts (`--trust-key`, kept as
//! `P/etc/release-key.pub`). Key files are one line of text: a tag and hex bytes.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

const PRIVATE_TAG: &str = "omp-ed25519-private:";
const PUBLIC_TAG: &str = "omp-ed25519-public:";

/// Creates a key pair: `path` (private, 0600) and `path.pub`.
pub fn keygen(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        bail!(
            "{} exists: choose another file (a key is never overwritten)",
            path.display()
        );
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow!("cannot generate a key"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow!("cannot generate a key"))?;
    let public = format!(
        "{PUBLIC_TAG}{}\n",
        super::bundle::hex(pair.public_key().as_ref())
    );
    super::write_atomic(
        path,
        format!("{PRIVATE_TAG}{}\n", super::bundle::hex(pkcs8.as_ref())).as_bytes(),
        0o600,
    )?;
    let pub_path = path.with_extension("pub");
    super::write_atomic(&pub_path, public.as_bytes(), 0o644)?;
    Ok(pub_path.display().to_string())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Signs `message` with the private key file; returns the hex signature.
pub fn sign(key_file: &Path, message: &[u8]) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read the key {}", key_file.display()))?;
    let der = text
        .trim()
        .strip_prefix(PRIVATE_TAG)
        .and_then(unhex)
        .with_context(|| {
            format!(
                "{} is not an omp private key (make one with omp keygen)",
                key_file.display()
            )
        })?;
    let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| {
        anyhow!(
            "{} is damaged: make a new key with omp keygen",
            key_file.display()
        )
    })?;
    Ok(super::bundle::hex(pair.sign(message).as_ref()))
}

/// Reads a public key file into raw key bytes.
pub fn read_public(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    text.trim()
        .strip_prefix(PUBLIC_TAG)
        .and_then(unhex)
        .filter(|k| k.len() == 32)
        .with_context(|| {
            format!(
                "{} is not an omp public key (the .pub file omp keygen wrote)",
                path.display()
            )
        })
}

/// Checks a hex signature of `message` by `public` (raw key bytes).
pub fn verify(public: &[u8], message: &[u8], sig_hex: &str) -> anyhow::Result<()> {
    let sig = unhex(sig_hex).context("the signature is not hex")?;
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, &sig)
        .map_err(|_| anyhow!("bad signature"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("site.key");
        let pub_path = keygen(&key).unwrap();
        assert!(keygen(&key).is_err(), "never overwrites");
        let public = read_public(Path::new(&pub_path)).unwrap();
        let sig = sign(&key, b"manifest").unwrap();
        verify(&public, b"manifest", &sig).unwrap();
        assert!(verify(&public, b"manifest!", &sig).is_err());
        let other = dir.path().join("other.key");
        let other_pub = read_public(Path::new(&keygen(&other).unwrap())).unwrap();
        assert!(verify(&other_pub, b"manifest", &sig).is_err());
        assert!(
            read_public(&key).is_err(),
            "a private key is not a public key"
        );
    }
}
