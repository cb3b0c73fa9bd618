//! The portal's side of a tenant's brand: the `PUT /api/v1/branding` body
//! read into a checked [`Branding`] and the API's view of one. The rules
//! (validation, WCAG contrast, what a logo file is) are `store::branding`,
//! pure, beside the values the store keeps.

pub(crate) use store::branding::{Branding, LogoMeta, MAX_LOGO_BYTES, sniff_logo};
use store::branding::{WHITE, contrast_ratio, parse_hex_color};

use crate::contract::{BrandingBody, BrandingView, LogoView};
use crate::error::Result;

/// The brand a `PUT /api/v1/branding` body sets, checked field by field (an
/// empty text unsets its field); the logo is kept as it was (`logo`).
pub(crate) fn branding_from_body(body: BrandingBody, logo: Option<LogoMeta>) -> Result<Branding> {
    let branding = Branding {
        display_name: body.display_name,
        primary_color: body.primary_color,
        support_phone: body.support_phone,
        support_email: body.support_email,
        support_url: body.support_url,
        logo,
    };
    Ok(branding.checked()?)
}

/// The API's view of a brand: the fields, the colour the page uses and the
/// logo's metadata.
pub(crate) fn branding_view(branding: &Branding) -> BrandingView {
    let used = branding.primary_color_used();
    BrandingView {
        display_name: branding.display_name.clone(),
        primary_color: branding.primary_color.clone(),
        primary_color_used: used.as_ref().map(|(c, _)| c.clone()),
        adjusted: used.as_ref().is_some_and(|(_, adjusted)| *adjusted),
        contrast_with_white: used
            .as_ref()
            .and_then(|(c, _)| parse_hex_color(c).ok())
            .map(|rgb| (contrast_ratio(rgb, WHITE) * 100.0).round() / 100.0),
        support_phone: branding.support_phone.clone(),
        support_email: branding.support_email.clone(),
        support_url: branding.support_url.clone(),
        logo: branding.logo.as_ref().map(|l| LogoView {
            content_type: l.content_type.clone(),
            sha256: l.sha256.clone(),
            width_px: l.width_px,
            height_px: l.height_px,
            size_bytes: l.size_bytes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(json: Value) -> BrandingBody {
        serde_json::from_value(json).expect("a branding body")
    }

    #[test]
    fn a_branding_body_is_validated_field_by_field() {
        let ok = branding_from_body(
            body(
                json!({"display_name": " Acme Freight ", "primary_color": "#ffcc00",
                    "support_phone": "+1 (555) 010-0199", "support_email": "help@acme.example",
                    "support_url": "https://acme.example/help"}),
            ),
            None,
        )
        .expect("valid");
        assert_eq!(ok.display_name.as_deref(), Some("Acme Freight"));
        assert_eq!(ok.phone_href().as_deref(), Some("tel:+15550100199"));
        let view = branding_view(&ok);
        assert!(view.adjusted);
        assert!(view.contrast_with_white.expect("a number") >= 4.5);
        for (b, field) in [
            (json!({"support_email": "no-at-sign"}), "support_email"),
            (json!({"support_url": "javascript:alert(1)"}), "support_url"),
            (json!({"support_url": "https://"}), "support_url"),
            (json!({"support_phone": "call us"}), "support_phone"),
            (json!({"display_name": "x".repeat(81)}), "display_name"),
            (json!({"display_name": "a\u{7}b"}), "display_name"),
            (json!({"primary_color": "blue"}), "primary_color"),
        ] {
            let err = branding_from_body(body(b.clone()), None).expect_err(field);
            assert!(err.to_string().contains(field), "{b}: {err}");
        }
        let empty = body(json!({"display_name": "  "}));
        assert_eq!(
            branding_from_body(empty, None).expect("empty"),
            Branding::default()
        );
    }
}
