//! `Idempotency-Key` on `POST /api/v1/orders`: a client that retries a create
//! (a timeout, a dropped connection) gets the order its first try made, never a
//! second one. The key is scoped by tenant and honoured for [`KEEP_S`]; the
//! same key with the same body answers 200 with the first order, with another
//! body 422 naming the header.
//!
//! The store keeps hashes only: of the tenant and key, and of the body in a
//! canonical form (object keys sorted, so a client that re-serializes its body
//! in another key order still matches). The first answer carried the order's
//! tracking code, which the store keeps only as a hash; so that a replay can
//! carry it too, the code is kept *sealed* with a key stream drawn from the
//! Idempotency-Key itself (under another label than the stored key hash). The
//! store's contents alone cannot open it; the client, who holds the key, gets it
//! back. A key should therefore be random (a UUID), as every API's guidance for
//! idempotency keys says already.

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::model::{IdempotencyClaim, TenantId};
use crate::secrets::TRACKING_CODE_LEN;

/// The header's name, as errors name it.
pub(crate) const HEADER: &str = "Idempotency-Key";
/// How long a key is honoured, seconds (24 h).
pub(crate) const KEEP_S: i64 = 24 * 3600;
/// The longest key accepted (a UUID is 36).
const MAX_KEY_CHARS: usize = 255;

/// A key read from a request, ready to claim and to open a sealed code.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyKey {
    tenant: TenantId,
    key: String,
}

/// The request's `Idempotency-Key`, if it has one; a malformed one is a 400
/// naming the header.
pub(crate) fn from_headers(
    headers: &HeaderMap,
    tenant: &TenantId,
) -> Result<Option<IdempotencyKey>, AppError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::invalid(HEADER, "given more than once"));
    }
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_CHARS)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            AppError::invalid(
                HEADER,
                format!("must be 1-{MAX_KEY_CHARS} visible ASCII characters (a UUID, say)"),
            )
        })?;
    Ok(Some(IdempotencyKey {
        tenant: tenant.clone(),
        key: key.to_owned(),
    }))
}

fn labelled_sha256(label: &str, tenant: &TenantId, key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [label, tenant.as_str(), key] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize().into()
}

impl IdempotencyKey {
    /// What the store keeps for a create carrying this key, with the body it
    /// came with and the code issued for it.
    pub(crate) fn claim(&self, body: &Value, code: &str, now: DateTime<Utc>) -> IdempotencyClaim {
        IdempotencyClaim {
            key_hash: data_encoding::HEXLOWER.encode(&labelled_sha256(
                "tracker/idempotency-key",
                &self.tenant,
                &self.key,
            )),
            body_hash: body_hash(body),
            sealed_code: data_encoding::HEXLOWER.encode(&self.xor(code.as_bytes())),
            not_before: now - Duration::seconds(KEEP_S),
        }
    }

    /// The code a claim sealed, when `sealed` is one this key sealed.
    pub(crate) fn open(&self, sealed: &str) -> Option<String> {
        let bytes = data_encoding::HEXLOWER.decode(sealed.as_bytes()).ok()?;
        let code = String::from_utf8(self.xor(&bytes)).ok()?;
        crate::secrets::looks_like_tracking_code(&code).then_some(code)
    }

    fn xor(&self, bytes: &[u8]) -> Vec<u8> {
        let stream = labelled_sha256("tracker/idempotency-seal", &self.tenant, &self.key);
        bytes
            .iter()
            .take(TRACKING_CODE_LEN)
            .zip(stream)
            .map(|(b, s)| b ^ s)
            .collect()
    }
}

/// SHA-256 of the body as canonical JSON. `serde_json`'s maps are sorted by
/// key (the crate is built without `preserve_order`), so printing the parsed
/// value is canonical.
fn body_hash(body: &Value) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(body.to_string().as_bytes()))
}

/// The 422 for a key that came before with another body.
pub(crate) fn reused() -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        format!(
            "`{HEADER}`: this key was used in the last 24 h with another body; \
             use a new key for a new order"
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(tenant: &str, key: &str) -> IdempotencyKey {
        IdempotencyKey {
            tenant: TenantId(tenant.to_owned()),
            key: key.to_owned(),
        }
    }

    #[test]
    fn a_sealed_code_opens_with_its_key_only() {
        let code = crate::secrets::new_tracking_code();
        let now = Utc::now();
        let claim = key("ten_a", "k-1").claim(&json!({}), &code, now);
        assert_eq!(
            key("ten_a", "k-1").open(&claim.sealed_code),
            Some(code.clone())
        );
        assert_ne!(
            key("ten_a", "k-2").open(&claim.sealed_code),
            Some(code.clone())
        );
        assert_ne!(key("ten_b", "k-1").open(&claim.sealed_code), Some(code));
        assert!(!claim.sealed_code.contains(&claim.key_hash[..8]));
    }

    #[test]
    fn the_body_hash_ignores_key_order_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"a": 1, "b": {"c": 2, "d": 3}}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"b": {"d": 3, "c": 2}, "a": 1}"#).expect("json");
        let c: Value = serde_json::from_str(r#"{"b": {"d": 3, "c": 2}, "a": 2}"#).expect("json");
        assert_eq!(body_hash(&a), body_hash(&b));
        assert_ne!(body_hash(&a), body_hash(&c));
    }

    #[test]
    fn one_key_hashes_apart_per_tenant() {
        let now = Utc::now();
        let a = key("ten_a", "same").claim(&json!({}), "x", now);
        let b = key("ten_b", "same").claim(&json!({}), "x", now);
        assert_ne!(a.key_hash, b.key_hash);
    }
}
