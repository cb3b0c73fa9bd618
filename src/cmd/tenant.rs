//! `tracker tenant create NAME [--store URL]`: creates a tenant and prints its id
//! and API key as JSON. The key is shown this once; the store keeps only its hash.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::bad_input;

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant; prints `{"tenant_id", "api_key"}`.
    Create {
        /// The tenant's name (a broker or shipper).
        name: String,
        /// Where the data lives: `sqlite://PATH` (postgres:// is not supported yet).
        #[arg(long, default_value = "sqlite://./tracker.db", env = "TRACKER_STORE")]
        store: String,
    },
}

pub(crate) fn run(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name, store } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let store = super::open_store(&store).await?;
                let (tenant, api_key) =
                    portal_api::create_tenant(&*store, &name)
                        .await
                        .map_err(|e| match e {
                            portal_api::Error::Invalid { .. } => bad_input(e),
                            other => anyhow::Error::new(other),
                        })?;
                println!(
                    "{}",
                    json!({"tenant_id": tenant.id.as_str(), "api_key": api_key})
                );
                Ok(())
            })
        }
    }
}
