//! The tenant's brand around a milestone e-mail: in the HTML part a header in
//! the brand's colour with its logo (a link to the public logo URL of the
//! order's tracking link; e-mails carry no attachments) and name, and a footer
//! with the support phone (`tel:`), e-mail (`mailto:`) and help link; in the
//! plain-text part the same name and contact as a signature, unless the
//! template already writes them (`{{tenant_name}}`, `{{contact}}`). Every value
//! is escaped; every URL is one the branding rules accepted.
//!
//! E-mails stay in English: neither orders nor tenants carry a language yet.

use crate::branding::Branding;
use crate::page::html::esc;

/// What an e-mail shows of its tenant's brand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EmailBrand {
    /// The display name, else the tenant's name.
    pub(crate) name: String,
    /// `#rrggbb`, already darkened to read white text on it (WCAG AA).
    pub(crate) color: Option<String>,
    /// Absolute URL of the logo, when there is one and a tracking link.
    pub(crate) logo_url: Option<String>,
    pub(crate) phone: Option<(String, String)>,
    pub(crate) email: Option<String>,
    pub(crate) url: Option<String>,
}

/// Header text colour on the neutral (unbranded) header.
const NEUTRAL_HEADER: &str = "#14213d";

impl EmailBrand {
    /// The brand of `brand` for a tenant shown as `name`. `public` is the
    /// server's public base URL and the order's tracking code, when it has an
    /// active one: the logo is public only under a tracking link.
    pub(crate) fn new(brand: &Branding, name: &str, public: Option<(&str, &str)>) -> EmailBrand {
        EmailBrand {
            name: name.to_owned(),
            color: brand.primary_color_used().map(|(c, _)| c),
            logo_url: brand
                .logo
                .as_ref()
                .zip(public)
                .map(|(logo, (base, code))| format!("{base}{}", crate::api::logo_url(code, logo))),
            phone: brand.support_phone.clone().zip(brand.phone_href()),
            email: brand.support_email.clone(),
            url: brand.support_url.clone(),
        }
    }

    fn has_contact(&self) -> bool {
        self.phone.is_some() || self.email.is_some() || self.url.is_some()
    }

    /// The plain-text signature: the name, then each contact on its own line.
    pub(crate) fn text_signature(&self) -> String {
        let mut out = format!("--\n{}", self.name);
        if let Some((phone, _)) = &self.phone {
            out.push_str(&format!("\nPhone: {phone}"));
        }
        if let Some(email) = &self.email {
            out.push_str(&format!("\nE-mail: {email}"));
        }
        if let Some(url) = &self.url {
            out.push_str(&format!("\nHelp: {url}"));
        }
        out
    }

    /// The HTML part: `body_html` between the brand's header and its footer.
    pub(crate) fn html(&self, subject: &str, body_html: &str) -> String {
        let (background, foreground) = match &self.color {
            Some(color) => (color.as_str(), "#ffffff"),
            None => ("#f3f4f6", NEUTRAL_HEADER),
        };
        let link = self.color.as_deref().unwrap_or("#1d4ed8");
        let logo = self
            .logo_url
            .as_ref()
            .map(|url| {
                format!(
                    "<img src=\"{}\" alt=\"{}\" height=\"40\" style=\"height: 40px; vertical-align: middle; margin-right: 12px; background: #fff; border-radius: 4px\">",
                    esc(url),
                    esc(&format!("{} logo", self.name))
                )
            })
            .unwrap_or_default();
        let mut footer = String::new();
        if self.has_contact() {
            footer.push_str(&format!(
                "<p style=\"margin: 0 0 4px\"><strong>Questions? Contact {}:</strong></p>\n<p style=\"margin: 0\">",
                esc(&self.name)
            ));
            let mut items = Vec::new();
            if let Some((phone, href)) = &self.phone {
                items.push(format!(
                    "Phone: <a href=\"{}\" style=\"color: {link}\">{}</a>",
                    esc(href),
                    esc(phone)
                ));
            }
            if let Some(email) = &self.email {
                items.push(format!(
                    "E-mail: <a href=\"mailto:{}\" style=\"color: {link}\">{}</a>",
                    esc(email),
                    esc(email)
                ));
            }
            if let Some(url) = &self.url {
                items.push(format!(
                    "<a href=\"{}\" style=\"color: {link}\">Help centre</a>",
                    esc(url)
                ));
            }
            footer.push_str(&items.join(" · "));
            footer.push_str("</p>\n");
        }
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
             <body style=\"font-family: sans-serif; line-height: 1.4; margin: 0\">\n\
             <div class=\"brand-header\" style=\"background: {background}; color: {foreground}; padding: 12px 16px\">\
             {logo}<strong style=\"font-size: 18px\">{}</strong></div>\n\
             <div style=\"padding: 8px 16px\">\n{body_html}</div>\n\
             <div class=\"brand-footer\" style=\"padding: 8px 16px 16px; border-top: 3px solid {background}; color: #374151\">\n{footer}</div>\n\
             </body></html>\n",
            esc(subject),
            esc(&self.name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand() -> Branding {
        Branding {
            display_name: Some("Blue <Line> Haulage".into()),
            primary_color: Some("#1e66f5".into()),
            support_phone: Some("+1 555 010 0199".into()),
            support_email: Some("help@blueline.test".into()),
            support_url: Some("https://blueline.test/help".into()),
            logo: Some(crate::branding::LogoMeta {
                content_type: "image/png".into(),
                sha256: "0123456789abcdef0123".into(),
                width_px: 100,
                height_px: 40,
                size_bytes: 10,
            }),
        }
    }

    #[test]
    fn the_html_part_carries_colour_logo_name_and_contact_escaped() {
        let b = EmailBrand::new(
            &brand(),
            "Blue <Line> Haulage",
            Some(("https://track.test", "abc")),
        );
        assert_eq!(
            b.logo_url.as_deref(),
            Some("https://track.test/t/abc/logo?v=0123456789abcdef")
        );
        let html = b.html("Subject", "<p>Body</p>");
        let (color, _) = brand().primary_color_used().expect("a colour");
        assert!(html.contains(&format!("background: {color}")), "{html}");
        assert!(html.contains("Blue &lt;Line&gt; Haulage"), "{html}");
        assert!(!html.contains("<Line>"), "{html}");
        assert!(html.contains("href=\"tel:+15550100199\""), "{html}");
        assert!(
            html.contains("href=\"mailto:help@blueline.test\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://blueline.test/help\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"https://track.test/t/abc/logo?v=0123456789abcdef\""),
            "{html}"
        );
    }

    #[test]
    fn without_a_tracking_link_there_is_no_logo_and_unbranded_mail_is_plain() {
        let b = EmailBrand::new(&brand(), "Blue Line", None);
        assert_eq!(b.logo_url, None);
        let plain = EmailBrand::new(&Branding::default(), "Acme", None);
        let html = plain.html("S", "<p>x</p>");
        assert!(html.contains("Acme"), "{html}");
        assert!(!html.contains("Questions?"), "{html}");
        assert_eq!(plain.text_signature(), "--\nAcme");
    }
}
