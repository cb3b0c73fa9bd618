//! Tracking-page views without keeping who viewed: each HTML page load is
//! counted per order, UTC day and viewer, where the viewer is SHA-256 of a
//! salt and the client address. The salt is random, held in memory only and
//! replaced when the UTC day changes, so a stored hash cannot be turned back
//! into an address (no table of 2³² candidates can be built without the salt)
//! and two days' hashes of one viewer cannot be linked. Unique viewers are
//! therefore unique per day; a restart draws a new salt, so a viewer seen
//! before and after it that day counts twice (documented, accepted).

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use parking_lot::Mutex;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The day's salt, rotated at the first view of a new UTC day.
#[derive(Debug, Default)]
pub struct ViewerSalt {
    current: Mutex<Option<(NaiveDate, [u8; 32])>>,
}

impl ViewerSalt {
    /// The viewer hash of `ip` on the UTC day of `now` (hex).
    pub fn viewer_hash(&self, ip: IpAddr, now: DateTime<Utc>) -> String {
        let day = now.date_naive();
        let salt = {
            let mut current = self.current.lock();
            match *current {
                Some((d, salt)) if d == day => salt,
                _ => {
                    let mut salt = [0u8; 32];
                    rand::rng().fill_bytes(&mut salt);
                    *current = Some((day, salt));
                    salt
                }
            }
        };
        let mut hasher = Sha256::new();
        hasher.update(salt);
        match ip {
            IpAddr::V4(v4) => hasher.update(v4.octets()),
            IpAddr::V6(v6) => hasher.update(v6.octets()),
        }
        data_encoding::HEXLOWER.encode(&hasher.finalize())
    }
}

/// One page load to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageView {
    pub order_id: String,
    pub viewer_hash: String,
    pub at: DateTime<Utc>,
    /// The order was delivered when the page was loaded.
    pub delivered: bool,
}

/// `GET /api/v1/orders/{id}/views`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderViews {
    pub order_id: String,
    /// HTML page loads of the tracking page.
    pub views: u64,
    /// Distinct viewers per UTC day, summed over days.
    pub unique_viewers: u64,
    pub first_view_at: Option<String>,
    pub last_view_at: Option<String>,
    pub views_before_delivery: u64,
    pub views_after_delivery: u64,
}

/// `GET /api/v1/analytics/views`: orders created in the range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ViewsSummary {
    pub from: String,
    pub to: String,
    pub shipments: u64,
    /// Of those, shipments whose page was loaded at least once.
    pub viewed: u64,
    /// `viewed / shipments` (0 with no shipments).
    pub viewed_share: f64,
    pub views: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn one_viewer_hashes_alike_within_a_day_and_unlinkably_across_days() {
        let salt = ViewerSalt::default();
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        let other: IpAddr = "203.0.113.10".parse().expect("ip");
        let morning = Utc
            .with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
            .single()
            .expect("t");
        let evening = morning + chrono::Duration::hours(12);
        let next_day = morning + chrono::Duration::days(1);
        let h = salt.viewer_hash(ip, morning);
        assert_eq!(h, salt.viewer_hash(ip, evening));
        assert_ne!(h, salt.viewer_hash(other, evening));
        assert_ne!(h, salt.viewer_hash(ip, next_day));
        // Dots are not hex: a chance "203" in the digest cannot fail this.
        assert!(!h.contains("203.0.113.9"), "no address in the hash");
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()), "{h}");
        assert_eq!(h.len(), 64);
    }
}
