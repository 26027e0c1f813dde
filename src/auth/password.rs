//! Password hashing (argon2id, PHC strings), password rules and generated passwords.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

use crate::error::{Error, Result};

/// argon2id with the crate's defaults (19 MiB, 2 passes): OWASP's recommended minimum.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Checks `password` against a stored PHC string; false on mismatch or a malformed hash.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => hasher().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, used to spend the same time on unknown users as on known
/// ones so that response times do not reveal which usernames exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&generate()).unwrap_or_default())
}

/// Checks the rules for a new password.
pub fn check_rules(password: &str, username: &str, min_len: usize) -> Result<()> {
    if password.chars().count() < min_len {
        return Err(Error::validation(
            "password",
            format!("the password must have at least {min_len} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(Error::validation(
            "password",
            "the password is longer than 1024 bytes",
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(Error::validation(
            "password",
            "the password must not be the username",
        ));
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 2 {
        return Err(Error::validation(
            "password",
            "the password must mix at least two of: lowercase, uppercase, digits, symbols",
        ));
    }
    Ok(())
}

/// A random 20-character password from an unambiguous alphabet (about 115 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut s: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    // Guarantee the mix the rules ask for, whatever the draw.
    s.replace_range(0..2, "a7");
    s
}

/// A random URL-safe secret of `n` bytes (hex encoded).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    data_encoding::HEXLOWER.encode(&bytes)
}

/// SHA-256 hex of a secret, for storing session ids and token secrets.
pub fn sha256_hex(secret: &str) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("Correct-horse-1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct-horse-1", &h));
        assert!(!verify("correct-horse-1", &h));
        assert!(!verify("Correct-horse-1", "not a phc string"));
    }

    #[test]
    fn rules() {
        let cases = [
            ("short1A", false),
            ("alllowercaseletters", false),
            ("lower-and-symbols", true),
            ("Abcdefghij", true),
            ("alice12345", true),
        ];
        for (pw, ok) in cases {
            assert_eq!(check_rules(pw, "bob", 10).is_ok(), ok, "{pw}");
        }
        assert!(check_rules("Alice12345", "alice12345", 10).is_err());
    }

    #[test]
    fn generated_passwords_pass_rules_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        check_rules(&a, "admin", 10).unwrap();
    }
}
