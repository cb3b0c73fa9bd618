//! A tenant's settings for its public side: its brand (name, colour, support
//! contact, logo) and its location privacy. The row functions here are the
//! one place they are read: the tenant routes through [`SettingsStore`], the
//! public view through [`crate::rows::track_view`], the position path
//! through [`privacy`] inside its write.

use chrono::Utc;
use engine::OrderId;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::ts;
use super::{SqliteStore, StoreFuture};
use crate::branding::{Branding, LogoMeta};
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::privacy::LocationPrivacy;

/// Reading and setting a tenant's brand and location privacy.
pub trait SettingsStore: Send + Sync + std::fmt::Debug {
    /// The tenant's brand (all `None` when never set).
    fn branding(&self, tenant: TenantId) -> StoreFuture<'_, Branding>;
    /// Sets the brand's fields; the logo stays as it is.
    fn set_branding(&self, tenant: TenantId, branding: Branding) -> StoreFuture<'_, Branding>;
    /// Replaces the logo (already checked: [`crate::branding::sniff_logo`]).
    fn set_logo(
        &self,
        tenant: TenantId,
        meta: LogoMeta,
        bytes: Vec<u8>,
    ) -> StoreFuture<'_, Branding>;
    /// Removes the logo; `false` when there was none.
    fn delete_logo(&self, tenant: TenantId) -> StoreFuture<'_, bool>;
    /// The logo of the tenant that owns an order (for its public page).
    fn logo_of_order(&self, order: OrderId) -> StoreFuture<'_, Option<(LogoMeta, Vec<u8>)>>;
    /// The tenant's location privacy (the default, off, when never set).
    fn privacy(&self, tenant: TenantId) -> StoreFuture<'_, LocationPrivacy>;
    fn set_privacy(&self, tenant: TenantId, privacy: LocationPrivacy) -> StoreFuture<'_, ()>;
    /// The location privacy of an order's tenant and, when it is on, the
    /// (lat, lon) of the order's stops still ahead (for what is published
    /// about the order outside a full view: its ETA's route).
    fn order_privacy(&self, order: OrderId) -> StoreFuture<'_, (LocationPrivacy, Vec<(f64, f64)>)>;
}

/// The location privacy of an order's tenant and, when it is on, the
/// (lat, lon) of the order's pending stops (`SettingsStore::order_privacy`,
/// and what `Store::record_etas` answers for an ETA the page shows).
pub(crate) fn order_privacy(
    c: &Connection,
    order: &OrderId,
) -> Result<(LocationPrivacy, Vec<(f64, f64)>)> {
    let privacy = c
        .prepare_cached(
            "SELECT p.enabled, p.exact_within_m, p.cell_resolution \
             FROM orders o JOIN tenant_privacy p ON p.tenant_id = o.tenant_id \
             WHERE o.id = ?1",
        )?
        .query_row([order.as_str()], |r| {
            Ok(LocationPrivacy {
                enabled: r.get(0)?,
                exact_within_m: r.get(1)?,
                cell_resolution: r.get(2)?,
            })
        })
        .optional()?
        .unwrap_or_default();
    let pending = if privacy.enabled {
        super::writes::pending_stops(c, order)?
    } else {
        Vec::new()
    };
    Ok((privacy, pending))
}

/// The tenant's brand, logo metadata included (not its bytes).
pub(crate) fn branding(c: &Connection, tenant: &TenantId) -> Result<Branding> {
    let row = c
        .prepare_cached(
            "SELECT display_name, primary_color, support_phone, support_email, support_url, \
                    logo_type, logo_sha256, logo_width, logo_height, length(logo) \
             FROM tenant_branding WHERE tenant_id = ?1",
        )?
        .query_row([tenant.as_str()], |r| {
            let logo = match (
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ) {
                (Some(content_type), Some(sha256)) => Some(LogoMeta {
                    content_type,
                    sha256,
                    width_px: r.get::<_, Option<u32>>(7)?.unwrap_or(0),
                    height_px: r.get::<_, Option<u32>>(8)?.unwrap_or(0),
                    size_bytes: r.get::<_, Option<usize>>(9)?.unwrap_or(0),
                }),
                _ => None,
            };
            Ok(Branding {
                display_name: r.get(0)?,
                primary_color: r.get(1)?,
                support_phone: r.get(2)?,
                support_email: r.get(3)?,
                support_url: r.get(4)?,
                logo,
            })
        })
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// The tenant's location privacy.
pub(crate) fn privacy(c: &Connection, tenant: &TenantId) -> Result<LocationPrivacy> {
    let row = c
        .prepare_cached(
            "SELECT enabled, exact_within_m, cell_resolution FROM tenant_privacy \
             WHERE tenant_id = ?1",
        )?
        .query_row([tenant.as_str()], |r| {
            Ok(LocationPrivacy {
                enabled: r.get(0)?,
                exact_within_m: r.get(1)?,
                cell_resolution: r.get(2)?,
            })
        })
        .optional()?;
    Ok(row.unwrap_or_default())
}

fn ensure_row(c: &Connection, tenant: &TenantId) -> Result<()> {
    let known: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
        [tenant.as_str()],
        |r| r.get(0),
    )?;
    if !known {
        return Err(Error::NotFound("tenant"));
    }
    c.execute(
        "INSERT OR IGNORE INTO tenant_branding (tenant_id, updated_at) VALUES (?1, ?2)",
        params![tenant.as_str(), ts(Utc::now())],
    )?;
    Ok(())
}

impl SettingsStore for SqliteStore {
    fn branding(&self, tenant: TenantId) -> StoreFuture<'_, Branding> {
        Box::pin(self.read(move |c| branding(c, &tenant)))
    }

    fn set_branding(&self, tenant: TenantId, b: Branding) -> StoreFuture<'_, Branding> {
        Box::pin(self.write(move |c| {
            ensure_row(c, &tenant)?;
            c.execute(
                "UPDATE tenant_branding SET display_name = ?2, primary_color = ?3, \
                   support_phone = ?4, support_email = ?5, support_url = ?6, updated_at = ?7 \
                 WHERE tenant_id = ?1",
                params![
                    tenant.as_str(),
                    b.display_name,
                    b.primary_color,
                    b.support_phone,
                    b.support_email,
                    b.support_url,
                    ts(Utc::now())
                ],
            )?;
            branding(c, &tenant)
        }))
    }

    fn set_logo(
        &self,
        tenant: TenantId,
        meta: LogoMeta,
        bytes: Vec<u8>,
    ) -> StoreFuture<'_, Branding> {
        Box::pin(self.write(move |c| {
            ensure_row(c, &tenant)?;
            c.execute(
                "UPDATE tenant_branding SET logo = ?2, logo_type = ?3, logo_sha256 = ?4, \
                   logo_width = ?5, logo_height = ?6, updated_at = ?7 WHERE tenant_id = ?1",
                params![
                    tenant.as_str(),
                    bytes,
                    meta.content_type,
                    meta.sha256,
                    meta.width_px,
                    meta.height_px,
                    ts(Utc::now())
                ],
            )?;
            branding(c, &tenant)
        }))
    }

    fn delete_logo(&self, tenant: TenantId) -> StoreFuture<'_, bool> {
        Box::pin(self.write(move |c| {
            let changed = c.execute(
                "UPDATE tenant_branding SET logo = NULL, logo_type = NULL, logo_sha256 = NULL, \
                   logo_width = NULL, logo_height = NULL, updated_at = ?2 \
                 WHERE tenant_id = ?1 AND logo IS NOT NULL",
                params![tenant.as_str(), ts(Utc::now())],
            )?;
            Ok(changed > 0)
        }))
    }

    fn logo_of_order(&self, order: OrderId) -> StoreFuture<'_, Option<(LogoMeta, Vec<u8>)>> {
        Box::pin(self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT b.logo, b.logo_type, b.logo_sha256, b.logo_width, b.logo_height \
                     FROM orders o JOIN tenant_branding b ON b.tenant_id = o.tenant_id \
                     WHERE o.id = ?1 AND b.logo IS NOT NULL",
                    [order.as_str()],
                    |r| {
                        let bytes: Vec<u8> = r.get(0)?;
                        Ok((
                            LogoMeta {
                                content_type: r.get(1)?,
                                sha256: r.get(2)?,
                                width_px: r.get(3)?,
                                height_px: r.get(4)?,
                                size_bytes: bytes.len(),
                            },
                            bytes,
                        ))
                    },
                )
                .optional()?;
            Ok(row)
        }))
    }

    fn privacy(&self, tenant: TenantId) -> StoreFuture<'_, LocationPrivacy> {
        Box::pin(self.read(move |c| privacy(c, &tenant)))
    }

    fn order_privacy(&self, order: OrderId) -> StoreFuture<'_, (LocationPrivacy, Vec<(f64, f64)>)> {
        Box::pin(self.read(move |c| order_privacy(c, &order)))
    }

    fn set_privacy(&self, tenant: TenantId, p: LocationPrivacy) -> StoreFuture<'_, ()> {
        Box::pin(self.write(move |c| {
            ensure_row(c, &tenant)?;
            c.execute(
                "INSERT INTO tenant_privacy \
                   (tenant_id, enabled, exact_within_m, cell_resolution, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (tenant_id) DO UPDATE SET enabled = ?2, exact_within_m = ?3, \
                   cell_resolution = ?4, updated_at = ?5",
                params![
                    tenant.as_str(),
                    p.enabled,
                    p.exact_within_m,
                    p.cell_resolution,
                    ts(Utc::now())
                ],
            )?;
            Ok(())
        }))
    }
}
