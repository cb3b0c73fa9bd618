//! Random identifiers and secrets: tracking codes, API keys and record ids, all from
//! the operating system's random number generator, and the hashes the store keeps
//! instead of the secrets themselves.
//!
//! A tracking code is 120 random bits written as 24 characters of lowercase base32
//! (RFC 4648 alphabet): URL-safe, case-insensitive when read aloud, and carrying no
//! order data. Lookups go through the SHA-256 of the code, so the database compares
//! hashes, never the code itself: the time a lookup takes says nothing about how
//! close a guess was to a real code.

use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// Characters in a tracking code.
pub const TRACKING_CODE_LEN: usize = 24;
/// Random bytes behind a tracking code (120 bits).
const TRACKING_CODE_BYTES: usize = 15;
/// Random bytes behind an API key (256 bits).
const API_KEY_BYTES: usize = 32;
/// Prefix of API keys, so leaked keys are easy to recognise in logs and scanners.
pub const API_KEY_PREFIX: &str = "trk_";

/// Fills `buf` from the OS random number generator.
fn os_random(buf: &mut [u8]) {
    // The OS generator failing means the machine cannot produce secrets at all;
    // continuing with weaker randomness would be worse than stopping.
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// Lowercase unpadded base32 of `bytes`.
fn base32_lower(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD
        .encode(bytes)
        .to_ascii_lowercase()
}

/// A fresh tracking code (24 characters, 120 bits).
pub fn new_tracking_code() -> String {
    let mut bytes = [0u8; TRACKING_CODE_BYTES];
    os_random(&mut bytes);
    base32_lower(&bytes)
}

/// Whether `text` has the shape of a tracking code. Checked before any lookup so
/// that junk never reaches the database; it reveals nothing about which codes exist.
pub fn looks_like_tracking_code(text: &str) -> bool {
    text.len() == TRACKING_CODE_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// A fresh API key (`trk_` + 52 characters, 256 bits).
pub fn new_api_key() -> String {
    let mut bytes = [0u8; API_KEY_BYTES];
    os_random(&mut bytes);
    format!("{API_KEY_PREFIX}{}", base32_lower(&bytes))
}

/// Characters of an API key kept in the clear, so a person can tell keys apart
/// in a listing: `trk_` and 8 more (40 of its 256 random bits; the other 216
/// still stand between anyone holding the prefix and the key).
pub const API_KEY_SHOWN_CHARS: usize = 12;

/// The recognisable start of an API key (what listings show instead of it).
pub fn api_key_prefix(key: &str) -> String {
    key.chars().take(API_KEY_SHOWN_CHARS).collect()
}

/// A fresh staff session token (256 bits): the cookie holds it, the store
/// only its [`secret_hash`].
pub fn new_session_token() -> String {
    let mut bytes = [0u8; 32];
    os_random(&mut bytes);
    base32_lower(&bytes)
}

/// A fresh record id: `prefix` + 16 characters (80 random bits). Random rather than
/// sequential so ids can be made on any node without coordination and say nothing
/// about volumes.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    os_random(&mut bytes);
    format!("{prefix}{}", base32_lower(&bytes))
}

/// SHA-256 of a secret, hex: what the store keeps for API keys and tracking codes.
pub fn secret_hash(secret: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(secret.as_bytes()))
}

/// SHA-256 of arbitrary bytes, hex (POD files).
pub fn bytes_sha256(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tracking_codes_are_url_safe_long_and_distinct() {
        let codes: HashSet<String> = (0..2000).map(|_| new_tracking_code()).collect();
        assert_eq!(codes.len(), 2000, "120-bit codes must not collide");
        for code in &codes {
            assert_eq!(code.len(), TRACKING_CODE_LEN);
            assert!(looks_like_tracking_code(code), "{code}");
        }
    }

    #[test]
    fn every_character_position_varies() {
        // A code with a fixed or order-derived part would show a constant column.
        let codes: Vec<Vec<u8>> = (0..200).map(|_| new_tracking_code().into_bytes()).collect();
        for column in 0..TRACKING_CODE_LEN - 1 {
            let distinct: HashSet<u8> = codes.iter().map(|c| c[column]).collect();
            assert!(distinct.len() > 8, "column {column} barely varies");
        }
    }

    #[test]
    fn junk_is_not_a_code() {
        assert!(!looks_like_tracking_code("short"));
        assert!(!looks_like_tracking_code("ABCDEFGHIJKLMNOPQRSTUVWX"));
        assert!(!looks_like_tracking_code("abcdefghijklmnopqrstuvw1"));
        assert!(!looks_like_tracking_code("abcdefghijklmnopqrstuvw/"));
    }

    #[test]
    fn api_keys_hash_deterministically_and_differ() {
        let a = new_api_key();
        let b = new_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == 4 + 52);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&b));
        assert_eq!(secret_hash(&a).len(), 64);
    }

    #[test]
    fn an_api_key_prefix_names_the_key_without_giving_it_away() {
        let key = new_api_key();
        let prefix = api_key_prefix(&key);
        assert_eq!(prefix.len(), API_KEY_SHOWN_CHARS);
        assert!(key.starts_with(&prefix) && prefix.starts_with(API_KEY_PREFIX));
        assert!(
            key.len() - prefix.len() >= 40,
            "most of the key stays secret"
        );
    }
}
