//! Password and token secrets: argon2 password hashes, random API tokens and their
//! SHA-256 hashes. Nothing here ever logs or prints a secret.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use deis_core::model::TokenHash;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// The cost of new argon2id password hashes. Verification always uses the cost stored in
/// the hash itself, so changing it only affects passwords set afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism.
    pub parallelism: u32,
}

impl PasswordCost {
    /// The OWASP recommendation for argon2id (19 MiB, 2 passes, 1 lane): the default.
    pub const RECOMMENDED: PasswordCost = PasswordCost {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// The smallest cost argon2 accepts, for tests only: it keeps debug builds fast.
    pub const MINIMAL_FOR_TESTS: PasswordCost = PasswordCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self::RECOMMENDED
    }
}

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    /// argon2 refused the parameters or failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Hashes a password with argon2id at `cost` and a fresh 16-byte salt from the OS RNG,
/// returning the PHC string (`$argon2id$v=19$m=…`).
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, SecretError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| SecretError::Hash(e.to_string()))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| SecretError::Hash(e.to_string()))?;
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A fresh API token: 160 bits from the OS RNG as 40 lowercase hex characters, the shape
/// of a Deis (DRF) token.
pub fn generate_token() -> Result<String, SecretError> {
    Ok(hex::encode(random_bytes::<20>()?))
}

/// The SHA-256 hash of a token, the only form in which it is stored.
///
/// Tokens carry 160 random bits, so a fast unsalted hash is enough: there is nothing to
/// guess, and the lookup by hash stays a single indexed read per request.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(hex::encode(Sha256::digest(token.as_bytes())))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("s3cret pass", PasswordCost::MINIMAL_FOR_TESTS).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("s3cret pass", &hash));
        assert!(!verify_password("s3cret pasS", &hash));
        assert!(!verify_password("s3cret pass", "not a hash"));
        let again = hash_password("s3cret pass", PasswordCost::MINIMAL_FOR_TESTS).unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
    }

    #[test]
    fn tokens_are_40_hex_chars_and_unique() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_eq!(a.len(), 40);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase()));
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).0.len(), 64);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
