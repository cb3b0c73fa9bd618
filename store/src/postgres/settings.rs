//! A tenant's brand and location privacy on PostgreSQL: the
//! [`SettingsStore`] half of the backend. The reads are `reads::branding` and
//! `reads::privacy`, the ones the public view and the position path use
//! too, so the routes and the page cannot disagree.

use chrono::Utc;
use engine::OrderId;
use tokio_postgres::Transaction;

use super::{PostgresStore, reads};
use crate::branding::{Branding, LogoMeta};
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::privacy::LocationPrivacy;
use crate::records::ts;
use crate::{SettingsStore, StoreFuture};

/// Refuses an unknown tenant and makes sure its brand row exists (as on
/// SQLite, where setting either kind of setting makes it).
async fn ensure_row(c: &Transaction<'_>, tenant: &TenantId) -> Result<()> {
    let known = c
        .query_opt("SELECT 1 FROM tenants WHERE id = $1", &[&tenant.as_str()])
        .await?;
    if known.is_none() {
        return Err(Error::NotFound("tenant"));
    }
    c.execute(
        "INSERT INTO tenant_branding (tenant_id, updated_at) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO NOTHING",
        &[&tenant.as_str(), &ts(Utc::now())],
    )
    .await?;
    Ok(())
}

impl SettingsStore for PostgresStore {
    fn branding(&self, tenant: TenantId) -> StoreFuture<'_, Branding> {
        on_client!(self, |c| reads::branding(c, &tenant).await?)
    }

    fn set_branding(&self, tenant: TenantId, b: Branding) -> StoreFuture<'_, Branding> {
        in_tx!(self, |tx| {
            ensure_row(&tx, &tenant).await?;
            tx.execute(
                "UPDATE tenant_branding SET display_name = $2, primary_color = $3, \
                   support_phone = $4, support_email = $5, support_url = $6, updated_at = $7 \
                 WHERE tenant_id = $1",
                &[
                    &tenant.as_str(),
                    &b.display_name,
                    &b.primary_color,
                    &b.support_phone,
                    &b.support_email,
                    &b.support_url,
                    &ts(Utc::now()),
                ],
            )
            .await?;
            reads::branding(&tx, &tenant).await?
        })
    }

    fn set_logo(
        &self,
        tenant: TenantId,
        meta: LogoMeta,
        bytes: Vec<u8>,
    ) -> StoreFuture<'_, Branding> {
        in_tx!(self, |tx| {
            ensure_row(&tx, &tenant).await?;
            tx.execute(
                "UPDATE tenant_branding SET logo = $2, logo_type = $3, logo_sha256 = $4, \
                   logo_width = $5, logo_height = $6, updated_at = $7 WHERE tenant_id = $1",
                &[
                    &tenant.as_str(),
                    &bytes,
                    &meta.content_type,
                    &meta.sha256,
                    &i64::from(meta.width_px),
                    &i64::from(meta.height_px),
                    &ts(Utc::now()),
                ],
            )
            .await?;
            reads::branding(&tx, &tenant).await?
        })
    }

    fn delete_logo(&self, tenant: TenantId) -> StoreFuture<'_, bool> {
        in_tx!(self, |tx| {
            let changed = tx
                .execute(
                    "UPDATE tenant_branding SET logo = NULL, logo_type = NULL, \
                       logo_sha256 = NULL, logo_width = NULL, logo_height = NULL, \
                       updated_at = $2 \
                     WHERE tenant_id = $1 AND logo IS NOT NULL",
                    &[&tenant.as_str(), &ts(Utc::now())],
                )
                .await?;
            changed > 0
        })
    }

    fn logo_of_order(&self, order: OrderId) -> StoreFuture<'_, Option<(LogoMeta, Vec<u8>)>> {
        on_client!(self, |c| {
            let row = c
                .query_opt(
                    "SELECT b.logo, b.logo_type, b.logo_sha256, b.logo_width, b.logo_height \
                     FROM orders o JOIN tenant_branding b ON b.tenant_id = o.tenant_id \
                     WHERE o.id = $1 AND b.logo IS NOT NULL",
                    &[&order.as_str()],
                )
                .await?;
            match row {
                Some(r) => {
                    let bytes: Vec<u8> = r.try_get(0)?;
                    let dimension = |i: usize| -> Result<u32> {
                        let v: Option<i64> = r.try_get(i)?;
                        Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
                    };
                    let meta = LogoMeta {
                        content_type: r.try_get(1)?,
                        sha256: r.try_get(2)?,
                        width_px: dimension(3)?,
                        height_px: dimension(4)?,
                        size_bytes: bytes.len(),
                    };
                    Some((meta, bytes))
                }
                None => None,
            }
        })
    }

    fn privacy(&self, tenant: TenantId) -> StoreFuture<'_, LocationPrivacy> {
        on_client!(self, |c| reads::privacy(c, &tenant).await?)
    }

    fn order_privacy(&self, order: OrderId) -> StoreFuture<'_, (LocationPrivacy, Vec<(f64, f64)>)> {
        // Read for every ETA a page shows: one round trip when the tenant's
        // privacy is off, two when on, and no transaction (as on SQLite, the
        // pending stops are read as they stand after the privacy).
        on_client!(self, |c| {
            let row = c
                .query_opt(
                    "SELECT p.enabled, p.exact_within_m, p.cell_resolution \
                     FROM orders o JOIN tenant_privacy p ON p.tenant_id = o.tenant_id \
                     WHERE o.id = $1",
                    &[&order.as_str()],
                )
                .await?;
            let privacy = match row {
                Some(r) => reads::privacy_of_row(&r)?,
                None => LocationPrivacy::default(),
            };
            let pending = if privacy.enabled {
                super::writes::pending_stops(c, &order).await?
            } else {
                Vec::new()
            };
            (privacy, pending)
        })
    }

    fn set_privacy(&self, tenant: TenantId, p: LocationPrivacy) -> StoreFuture<'_, ()> {
        in_tx!(self, |tx| {
            ensure_row(&tx, &tenant).await?;
            tx.execute(
                "INSERT INTO tenant_privacy \
                   (tenant_id, enabled, exact_within_m, cell_resolution, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id) DO UPDATE SET enabled = $2, exact_within_m = $3, \
                   cell_resolution = $4, updated_at = $5",
                &[
                    &tenant.as_str(),
                    &p.enabled,
                    &p.exact_within_m,
                    &i64::from(p.cell_resolution),
                    &ts(Utc::now()),
                ],
            )
            .await?;
        })
    }
}
