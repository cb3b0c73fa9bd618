//! API keys: several per tenant, each named, scoped and revocable. A key is made
//! here (random, from the OS), shown once to whoever asked for it, and stored as
//! its SHA-256 plus its first characters; the CLI and the API both come through
//! these functions, so both make and show keys the same way.

use crate::contract::{ApiKeyView, NewApiKeyView};
use crate::error::{Error, Result};
use crate::model::{ApiKey, NewApiKey, Scope, TenantId};
use crate::view::rfc3339;
use store::Store;

/// The scopes a comma-separated list names (`orders,positions`), sorted and
/// without repeats. An unknown or missing scope is an error naming `field`.
pub fn parse_scopes(text: &str, field: &str) -> Result<Vec<Scope>> {
    let names: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    scopes_from_names(&names, field)
}

/// The scopes named in `names`, sorted and without repeats; at least one.
pub(crate) fn scopes_from_names(names: &[&str], field: &str) -> Result<Vec<Scope>> {
    let mut scopes = names
        .iter()
        .map(|name| {
            Scope::parse(name).ok_or_else(|| {
                Error::invalid(
                    field,
                    format!("unknown scope `{name}`; expected some of: {}", scope_list()),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::invalid(field, "at least one scope is needed"));
    }
    Ok(scopes)
}

fn scope_list() -> String {
    Scope::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds an API key to a tenant; returns it with the key itself (shown once;
/// only its hash is stored).
pub async fn create_api_key(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
    scopes: Vec<Scope>,
) -> Result<(ApiKey, String)> {
    let (record, key) = NewApiKey::fresh(name, scopes)?;
    let stored = store.create_api_key(tenant.clone(), record).await?;
    Ok((stored, key))
}

/// A key as listed (its prefix, never the key).
pub fn api_key_view(key: &ApiKey) -> ApiKeyView {
    ApiKeyView {
        id: key.id.clone(),
        name: key.name.clone(),
        scopes: key.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        prefix: key.prefix.clone(),
        created_at: rfc3339(key.created_at),
        revoked_at: key.revoked_at.map(rfc3339),
    }
}

/// A key just made, as its maker sees it this once: the listing's fields and
/// `api_key`.
pub fn new_api_key_view(key: &ApiKey, secret: &str) -> NewApiKeyView {
    NewApiKeyView {
        key: api_key_view(key),
        api_key: secret.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_sorted_and_checked() {
        assert_eq!(
            parse_scopes("read, orders,read", "scopes").expect("valid"),
            vec![Scope::Orders, Scope::Read]
        );
        let err = parse_scopes("orders,write", "scopes").expect_err("unknown scope");
        assert!(err.to_string().contains("unknown scope `write`"), "{err}");
        assert!(parse_scopes("", "scopes").is_err());
    }
}
