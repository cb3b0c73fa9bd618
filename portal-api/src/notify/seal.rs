//! The server's notification key and what it protects: tracking codes sealed
//! for the e-mails that carry them, webhook signing secrets (kept to sign,
//! never in the clear), and the stable one-click unsubscribe token of each
//! (tenant, recipient).
//!
//! The key is 32 random bytes in a file of its own (mode 0600), made on first
//! use, apart from the database: a copy of the database alone opens no seal.
//! Two subkeys are derived from it by HMAC-SHA256, one per purpose, so a
//! token never doubles as a sealing key. A seal is XChaCha20-Poly1305 with a
//! random 192-bit nonce and the code's hash as associated data, so a seal
//! moved onto another code's row does not open.

use std::fmt;
use std::path::Path;

use ::hmac::{Hmac, Mac};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::TryRngCore;
use sha2::Sha256;

use crate::error::{Error, Result};

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// The key behind sealed tracking codes and unsubscribe tokens. Its `Debug`
/// never shows it.
#[derive(Clone)]
pub struct NotifyKey {
    seal: [u8; KEY_BYTES],
    unsubscribe: [u8; KEY_BYTES],
}

impl fmt::Debug for NotifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NotifyKey(…)")
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl NotifyKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> NotifyKey {
        NotifyKey {
            seal: hmac_sha256(bytes, b"tracker seal tracking codes v1"),
            unsubscribe: hmac_sha256(bytes, b"tracker unsubscribe tokens v1"),
        }
    }

    /// Reads the key file at `path`, or makes one (32 bytes from the OS
    /// generator, hex, readable by its owner only) when there is none.
    pub fn load_or_create(path: &Path) -> Result<NotifyKey> {
        let bad = |reason: String| Error::InvalidConfig {
            setting: "notify_key_file",
            reason: format!("{}: {reason}", path.display()),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(text.trim().as_bytes())
                    .map_err(|e| bad(format!("not hex: {e}")))?;
                let bytes: [u8; KEY_BYTES] = bytes
                    .try_into()
                    .map_err(|_| bad(format!("must hold {KEY_BYTES} bytes as hex")))?;
                Ok(NotifyKey::from_bytes(&bytes))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; KEY_BYTES];
                rand::rngs::OsRng
                    .try_fill_bytes(&mut bytes)
                    .map_err(|e| bad(format!("the OS random generator failed: {e}")))?;
                write_private(path, &data_encoding::HEXLOWER.encode(&bytes))
                    .map_err(|e| bad(format!("cannot write it: {e}")))?;
                Ok(NotifyKey::from_bytes(&bytes))
            }
            Err(err) => Err(bad(format!("cannot read it: {err}"))),
        }
    }

    /// Seals a tracking code; `code_hash` (its SHA-256) is bound to the seal.
    pub(crate) fn seal(&self, code: &str, code_hash: &str) -> Result<String> {
        self.seal_bound(code, code_hash)
    }

    /// Opens a seal made by [`NotifyKey::seal`] for the code of `code_hash`;
    /// `None` if it was made under another key or for another code.
    pub(crate) fn open(&self, sealed: &str, code_hash: &str) -> Option<String> {
        let code = self.open_bound(sealed, code_hash)?;
        (crate::secrets::secret_hash(&code) == code_hash).then_some(code)
    }

    /// Seals a webhook endpoint's signing secret, bound to the endpoint's id
    /// (a seal copied onto another endpoint does not open).
    pub fn seal_webhook_secret(&self, secret: &str, endpoint_id: &str) -> Result<String> {
        self.seal_bound(secret, &format!("webhook secret {endpoint_id}"))
    }

    /// Opens a seal made by [`NotifyKey::seal_webhook_secret`].
    pub(crate) fn open_webhook_secret(&self, sealed: &str, endpoint_id: &str) -> Option<String> {
        self.open_bound(sealed, &format!("webhook secret {endpoint_id}"))
    }

    /// XChaCha20-Poly1305 of `plain` with `bound` as associated data, as hex
    /// `nonce ‖ ciphertext`.
    fn seal_bound(&self, plain: &str, bound: &str) -> Result<String> {
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| Error::store_retryable(format!("the OS random generator failed: {e}")))?;
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: bound.as_bytes(),
                },
            )
            .map_err(|_| Error::store_permanent("sealing a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(data_encoding::HEXLOWER.encode(&out))
    }

    fn open_bound(&self, sealed: &str, bound: &str) -> Option<String> {
        let bytes = data_encoding::HEXLOWER.decode(sealed.as_bytes()).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: bound.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }

    /// The one-click unsubscribe token of `address` at `tenant`: the same in
    /// every message to them (the store keeps its hash, to find them again).
    pub(crate) fn unsubscribe_token(&self, tenant: &str, address: &str) -> String {
        let mac = hmac_sha256(
            &self.unsubscribe,
            format!("{tenant}\u{1f}{}", address.to_ascii_lowercase()).as_bytes(),
        );
        data_encoding::BASE32_NOPAD
            .encode(&mac[..20])
            .to_ascii_lowercase()
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Whether `text` has the shape of an unsubscribe token (checked before any
/// lookup, so junk never reaches the store).
pub(crate) fn looks_like_unsubscribe_token(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{new_tracking_code, secret_hash};

    #[test]
    fn a_sealed_code_opens_only_for_its_own_hash_and_key() {
        let key = NotifyKey::from_bytes(&[7; 32]);
        let code = new_tracking_code();
        let hash = secret_hash(&code);
        let sealed = key.seal(&code, &hash).expect("seals");
        assert!(
            !sealed.contains(&code),
            "the code is not readable in the seal"
        );
        assert_eq!(key.open(&sealed, &hash).as_deref(), Some(code.as_str()));
        let other = secret_hash(&new_tracking_code());
        assert_eq!(key.open(&sealed, &other), None, "bound to its code's hash");
        let stranger = NotifyKey::from_bytes(&[8; 32]);
        assert_eq!(
            stranger.open(&sealed, &hash),
            None,
            "another key opens nothing"
        );
    }

    #[test]
    fn a_webhook_secret_opens_only_for_its_own_endpoint() {
        let key = NotifyKey::from_bytes(&[9; 32]);
        // `.` and `!` are in no encoding the seal uses, so a chance match of
        // random bytes cannot fake (or hide) a leak of the plain text.
        let secret = "whsec_plain.text!";
        let sealed = key.seal_webhook_secret(secret, "wh_1").expect("seals");
        assert!(!sealed.contains("plain.text!"), "{sealed}");
        assert_eq!(
            key.open_webhook_secret(&sealed, "wh_1").as_deref(),
            Some(secret)
        );
        assert_eq!(key.open_webhook_secret(&sealed, "wh_2"), None);
    }

    #[test]
    fn unsubscribe_tokens_are_stable_per_tenant_and_recipient() {
        let key = NotifyKey::from_bytes(&[1; 32]);
        let a = key.unsubscribe_token("ten_a", "Ann@example.com");
        assert_eq!(a, key.unsubscribe_token("ten_a", "ann@example.com"));
        assert_ne!(a, key.unsubscribe_token("ten_b", "ann@example.com"));
        assert!(looks_like_unsubscribe_token(&a), "{a}");
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify.key");
        let first = NotifyKey::load_or_create(&path).expect("made");
        let second = NotifyKey::load_or_create(&path).expect("read");
        assert_eq!(
            first.unsubscribe_token("t", "a@b.c"),
            second.unsubscribe_token("t", "a@b.c")
        );
        std::fs::write(&path, "not hex").expect("overwrite");
        assert!(NotifyKey::load_or_create(&path).is_err());
    }
}
