//! TOTP (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), the kind every authenticator app reads.
//! Sans-IO: the time comes in as an argument.

use hmac::{Hmac, Mac};
use rand::RngCore;

const STEP_SECS: i64 = 30;
const DIGITS: u32 = 6;

/// A new random 160-bit secret, base32 encoded without padding.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    data_encoding::BASE32_NOPAD.encode(&bytes)
}

/// The `otpauth://` URL an authenticator app scans.
pub fn otpauth_url(secret: &str, username: &str, issuer: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(username),
        enc(issuer)
    )
}

/// The code for the 30 s step containing `unix_secs`.
pub fn code_at(secret: &str, unix_secs: i64) -> Option<String> {
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let counter = unix_secs.div_euclid(STEP_SECS) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).ok()?;
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    Some(format!(
        "{:0width$}",
        bin % 10u32.pow(DIGITS),
        width = DIGITS as usize
    ))
}

/// True when `code` matches the current step or one step either side (clock drift).
pub fn verify(secret: &str, code: &str, unix_secs: i64) -> bool {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    [-1, 0, 1].iter().any(|d| {
        code_at(secret, unix_secs + d * STEP_SECS)
            .map(|c| subtle::ConstantTimeEq::ct_eq(c.as_bytes(), code.as_bytes()).into())
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column, secret "12345678901234567890" (8 digits there;
    /// the last 6 digits are what a 6-digit TOTP yields).
    #[test]
    fn rfc6238_vectors() {
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        let cases = [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
            (20000000000, "353130"),
        ];
        for (t, want) in cases {
            assert_eq!(code_at(&secret, t).unwrap(), want, "t={t}");
        }
    }

    #[test]
    fn verify_allows_one_step_of_drift_only() {
        let s = new_secret();
        let now = 1_700_000_000;
        let code = code_at(&s, now).unwrap();
        assert!(verify(&s, &code, now));
        assert!(verify(&s, &code, now + 30));
        assert!(!verify(&s, &code, now + 90));
        assert!(!verify(&s, "12345", now));
        assert!(!verify(&s, "abcdef", now));
    }

    #[test]
    fn url_escapes_fields() {
        let u = otpauth_url("ABC", "a b", "OMP");
        assert!(
            u.starts_with("otpauth://totp/OMP:a%20b?secret=ABC&issuer=OMP"),
            "{u}"
        );
    }
}
