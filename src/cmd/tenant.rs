//! `tracker tenant create NAME [--store URL]`: creates a tenant and prints its id
//! and API key as JSON. The key is shown this once; the store keeps only its hash.
//!
//! `tracker tenant key create|list|revoke`: a tenant's API keys (several, each
//! named and scoped). `create` prints the new key once; `list` shows each key's
//! prefix, never the key; `revoke` refuses the key from the next request on.

use anyhow::Context;
use clap::Subcommand;
use portal_api::TenantId;
use serde_json::json;

use super::bad_input;

/// The scopes `tenant key create` gives when `--scopes` is not given: all but
/// `admin` (key management stays with keys made for it).
const DEFAULT_SCOPES: &str = "orders,positions,read";

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant; prints `{"tenant_id", "api_key"}` (a key with every scope).
    Create {
        /// The tenant's name (a broker or shipper).
        name: String,
        /// Where the data lives: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
        #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
        store: String,
    },
    /// Manage a tenant's API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Add an API key; prints `{"id", "name", "scopes", "prefix", "api_key"}`
    /// (the key is shown this once).
    Create {
        /// The tenant (`ten_…`).
        tenant_id: String,
        /// What the key is for (e.g. `samsara-webhook`).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: orders, positions, read, admin.
        #[arg(long, default_value = DEFAULT_SCOPES)]
        scopes: String,
        #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
        store: String,
    },
    /// List the tenant's API keys (prefixes, never the keys) as JSON.
    List {
        /// The tenant (`ten_…`).
        tenant_id: String,
        #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
        store: String,
    },
    /// Revoke one of the tenant's API keys; prints it with `revoked_at`.
    Revoke {
        /// The tenant (`ten_…`).
        tenant_id: String,
        /// The key (`key_…`, from `list`).
        key_id: String,
        #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
        store: String,
    },
}

pub(crate) fn run(command: TenantCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match command {
            TenantCommand::Create { name, store } => {
                let store = super::open_store(&store).await?;
                let (tenant, api_key) = portal_api::create_tenant(&*store, &name)
                    .await
                    .map_err(refusal)?;
                println!(
                    "{}",
                    json!({"tenant_id": tenant.id.as_str(), "api_key": api_key})
                );
            }
            TenantCommand::Key(KeyCommand::Create {
                tenant_id,
                name,
                scopes,
                store,
            }) => {
                let scopes = portal_api::parse_scopes(&scopes, "--scopes").map_err(bad_input)?;
                let store = super::open_store(&store).await?;
                let tenant = TenantId(tenant_id);
                let (key, secret) = portal_api::create_api_key(&*store, &tenant, &name, scopes)
                    .await
                    .map_err(|e| refusal_for(e, &tenant))?;
                println!(
                    "{}",
                    serde_json::to_string(&portal_api::new_api_key_view(&key, &secret))?
                );
            }
            TenantCommand::Key(KeyCommand::List { tenant_id, store }) => {
                let store = super::open_store(&store).await?;
                let tenant = TenantId(tenant_id);
                let keys = store
                    .api_keys(tenant.clone())
                    .await
                    .map_err(|e| refusal_for(e, &tenant))?;
                let listed: Vec<_> = keys.iter().map(portal_api::api_key_view).collect();
                println!("{}", serde_json::to_string(&listed)?);
            }
            TenantCommand::Key(KeyCommand::Revoke {
                tenant_id,
                key_id,
                store,
            }) => {
                let store = super::open_store(&store).await?;
                let tenant = TenantId(tenant_id);
                let key = store
                    .revoke_api_key(tenant.clone(), key_id.clone())
                    .await
                    .map_err(|e| match e {
                        store::Error::NotFound(_) => {
                            bad_input(format!("tenant `{tenant}` has no API key `{key_id}`"))
                        }
                        other => refusal(other),
                    })?;
                println!(
                    "{}",
                    serde_json::to_string(&portal_api::api_key_view(&key))?
                );
            }
        }
        Ok(())
    })
}

/// Invalid input and unknown records are the user's (exit 2); the rest is not.
fn refusal(err: impl Into<portal_api::Error>) -> anyhow::Error {
    match err.into() {
        err @ (portal_api::Error::Invalid { .. } | portal_api::Error::NotFound(_)) => {
            bad_input(err)
        }
        other => anyhow::Error::new(other),
    }
}

/// As [`refusal`], with an unknown tenant named.
fn refusal_for(err: impl Into<portal_api::Error>, tenant: &TenantId) -> anyhow::Error {
    match err.into() {
        portal_api::Error::NotFound("tenant") => bad_input(format!("no tenant `{tenant}`")),
        other => refusal(other),
    }
}
