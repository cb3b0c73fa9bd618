//! The bodies of `PUT /api/v1/branding` and `PUT /api/v1/tracking-privacy`
//! (a tenant's brand fields and its location privacy) and the brand as the
//! API answers it. Checking the values
//! (lengths, e-mail and URL shapes, colour format, ranges) is
//! [`crate::branding::branding_from_body`]'s and
//! [`crate::privacy::LocationPrivacy::validated`]'s job.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /api/v1/branding`: every field optional; absent, `null` or empty
/// unsets it. The logo has its own route (`PUT /api/v1/branding/logo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingBody {
    /// The carrier's name as customers know it (header, e-mails).
    #[schema(max_length = 80)]
    pub display_name: Option<String>,
    /// `#RRGGBB` (empty unsets it); darkened to pass WCAG AA behind white
    /// text when needed.
    #[schema(pattern = "^(#[0-9A-Fa-f]{6})?$")]
    pub primary_color: Option<String>,
    /// Digits, spaces and `+ - ( ) .`.
    #[schema(max_length = 40)]
    pub support_phone: Option<String>,
    #[schema(max_length = 254)]
    pub support_email: Option<String>,
    /// An `http://` or `https://` URL.
    #[schema(max_length = 500)]
    pub support_url: Option<String>,
}

/// `PUT /api/v1/tracking-privacy`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyBody {
    /// Show the truck's area instead of its position far from the stops.
    pub enabled: bool,
    /// Within this distance of a stop still ahead the exact position shows
    /// (default 5000).
    #[schema(minimum = 0, maximum = 500000)]
    pub exact_within_m: Option<f64>,
    /// The H3 resolution of the area shown, 4 (coarse) to 9 (default 7).
    #[schema(minimum = 4, maximum = 9)]
    pub cell_resolution: Option<u8>,
}

/// The tenant's brand as stored, with the colour the pages use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BrandingView {
    pub display_name: Option<String>,
    /// As set.
    pub primary_color: Option<String>,
    /// What the pages use: `primary_color`, darkened where it was below
    /// WCAG AA (4.5:1) behind white text.
    pub primary_color_used: Option<String>,
    /// Whether `primary_color_used` differs from `primary_color`.
    pub adjusted: bool,
    /// The contrast of `primary_color_used` with white, rounded to 0.01.
    pub contrast_with_white: Option<f64>,
    pub support_phone: Option<String>,
    pub support_email: Option<String>,
    pub support_url: Option<String>,
    pub logo: Option<LogoView>,
}

/// The stored logo's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogoView {
    /// `image/png`, `image/jpeg` or `image/webp`, as sniffed from the bytes.
    pub content_type: String,
    /// SHA-256 of the bytes, hex: the public URL's ETag.
    pub sha256: String,
    pub width_px: u32,
    pub height_px: u32,
    pub size_bytes: usize,
}
