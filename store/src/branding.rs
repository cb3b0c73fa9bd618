//! A tenant's brand on its tracking pages and in its e-mails: display name,
//! primary colour, support contact and logo. This module holds the rules
//! (validation, WCAG contrast, what a logo file is); the store keeps the
//! values, `portal-api`'s `api::branding` serves them, the page and the
//! e-mail composer show them. Everything here is pure and checked by unit
//! tests.
//!
//! The primary colour sits behind white text (the page's header), so a colour
//! whose contrast with white is below WCAG AA (4.5:1) is darkened until it
//! passes, and the answer says so. Logos are PNG, JPEG or WebP, recognised by
//! their magic bytes (never by the `Content-Type` the client sends), with the
//! pixel size read from the file's header. SVG is refused: it is a document
//! that can carry scripts and external references, and showing it safely
//! would need a sanitiser we do not want on this path.

use crate::error::{Error, Result};

/// Longest display name, in characters.
const MAX_NAME_CHARS: usize = 80;
/// Longest support phone, in characters.
const MAX_PHONE_CHARS: usize = 40;
/// Longest support e-mail address, in bytes (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Longest support URL, in characters.
const MAX_URL_CHARS: usize = 500;
/// Largest logo file.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// Largest logo, in pixels each way.
pub const MAX_LOGO_PX: u32 = 1024;
/// WCAG 2.x AA contrast for normal text.
const AA_CONTRAST: f64 = 4.5;

/// A tenant's brand as set through `PUT /api/v1/branding` (every field
/// optional; `None` shows the default look).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    pub display_name: Option<String>,
    /// `#rrggbb`, as the tenant set it.
    pub primary_color: Option<String>,
    pub support_phone: Option<String>,
    pub support_email: Option<String>,
    pub support_url: Option<String>,
    pub logo: Option<LogoMeta>,
}

/// What is kept about a stored logo besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoMeta {
    pub content_type: String,
    /// SHA-256 of the bytes, hex: the public URL's ETag.
    pub sha256: String,
    pub width_px: u32,
    pub height_px: u32,
    pub size_bytes: usize,
}

impl Branding {
    /// This brand with its texts trimmed (an empty text unsets its field),
    /// checked field by field: what a `PUT /api/v1/branding` body sets.
    pub fn checked(self) -> Result<Branding> {
        let text = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let branding = Branding {
            display_name: text(self.display_name),
            primary_color: text(self.primary_color),
            support_phone: text(self.support_phone),
            support_email: text(self.support_email),
            support_url: text(self.support_url),
            logo: self.logo,
        };
        branding.check()?;
        Ok(branding)
    }

    fn check(&self) -> Result<()> {
        let within = |field: &str, value: &Option<String>, max: usize| -> Result<()> {
            match value {
                Some(v) if v.chars().count() > max => {
                    Err(Error::invalid(field, format!("at most {max} characters")))
                }
                Some(v) if v.chars().any(char::is_control) => {
                    Err(Error::invalid(field, "must not contain control characters"))
                }
                _ => Ok(()),
            }
        };
        within("display_name", &self.display_name, MAX_NAME_CHARS)?;
        within("support_phone", &self.support_phone, MAX_PHONE_CHARS)?;
        within("support_email", &self.support_email, MAX_EMAIL_CHARS)?;
        within("support_url", &self.support_url, MAX_URL_CHARS)?;
        if let Some(color) = &self.primary_color {
            parse_hex_color(color)?;
        }
        if let Some(phone) = &self.support_phone
            && !phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            return Err(Error::invalid(
                "support_phone",
                "digits, spaces and + - ( ) . only, e.g. +1 555 010 0199",
            ));
        }
        if let Some(email) = &self.support_email
            && !looks_like_email(email)
        {
            return Err(Error::invalid(
                "support_email",
                "must be an e-mail address, e.g. help@carrier.example",
            ));
        }
        if let Some(url) = &self.support_url
            && !looks_like_web_url(url)
        {
            return Err(Error::invalid(
                "support_url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        Ok(())
    }

    /// The primary colour the page uses: the tenant's, darkened to pass
    /// WCAG AA behind white text when it does not, and whether it was.
    pub fn primary_color_used(&self) -> Option<(String, bool)> {
        let rgb = parse_hex_color(self.primary_color.as_deref()?).ok()?;
        let (used, adjusted) = accessible_behind_white(rgb);
        Some((hex(used), adjusted))
    }

    /// The `tel:` target of the support phone: `+` and digits only.
    pub fn phone_href(&self) -> Option<String> {
        let phone = self.support_phone.as_deref()?;
        let digits: String = phone
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        (!digits.is_empty()).then(|| format!("tel:{digits}"))
    }

    /// The contact line of e-mails: the support e-mail, phone and link that
    /// are set, in that order; `None` when none is.
    pub fn contact_line(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.support_email, &self.support_phone, &self.support_url]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || "<>\"',;?".contains(c))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn looks_like_web_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || "<>\"'\\`".contains(c))
}

/// An sRGB colour, 8 bits a channel.
pub type Rgb = [u8; 3];
pub const WHITE: Rgb = [255, 255, 255];

/// `#rrggbb` (either case) into its channels; anything else names the field.
pub fn parse_hex_color(text: &str) -> Result<Rgb> {
    let bad = || Error::invalid("primary_color", "must be a colour as #RRGGBB, e.g. #0a5bd3");
    let digits = text.strip_prefix('#').ok_or_else(bad)?;
    if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let channel = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad());
    Ok([channel(0)?, channel(2)?, channel(4)?])
}

/// `#rrggbb`, lower case.
pub fn hex(rgb: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Relative luminance per WCAG 2.x: each channel linearised from sRGB
/// (threshold 0.04045), weighted 0.2126 R + 0.7152 G + 0.0722 B.
pub fn relative_luminance(rgb: Rgb) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2])
}

/// Contrast ratio per WCAG 2.x, from 1 (same) to 21 (black on white).
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    let (hi, lo) = if la >= lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// `rgb` if white text on it passes AA; else the lightest darkening of it
/// (every channel scaled by the same factor, so the hue stays) that passes,
/// and `true`. Black passes at 21:1, so a passing factor always exists.
pub fn accessible_behind_white(rgb: Rgb) -> (Rgb, bool) {
    if contrast_ratio(rgb, WHITE) >= AA_CONTRAST {
        return (rgb, false);
    }
    let scaled = |k: u32| rgb.map(|c| ((u32::from(c) * k + 500) / 1000) as u8);
    // From the lightest scale down; luminance falls as the factor does.
    let k = (0..1000)
        .rev()
        .find(|&k| contrast_ratio(scaled(k), WHITE) >= AA_CONTRAST)
        .unwrap_or(0);
    (scaled(k), true)
}

/// What a logo file was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoInfo {
    pub content_type: &'static str,
    pub width_px: u32,
    pub height_px: u32,
}

/// Why a logo was refused: the API answers 413 for [`LogoError::TooLarge`]
/// and 422 for the others, naming the field `logo`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoError {
    #[error("the file is {size_bytes} bytes; the limit is {MAX_LOGO_BYTES}")]
    TooLarge { size_bytes: usize },
    #[error(
        "not a PNG, JPEG or WebP image (by its first bytes); SVG is not accepted because it can carry scripts"
    )]
    UnknownFormat,
    #[error("the {format} header is cut short or unreadable")]
    BadHeader { format: &'static str },
    #[error("the image is {width_px}×{height_px} px; the limit is {MAX_LOGO_PX}×{MAX_LOGO_PX}")]
    TooManyPixels { width_px: u32, height_px: u32 },
}

/// The type of an uploaded file by its first bytes (the declared type is
/// never trusted): JPEG, PNG, WebP or PDF. The one check for POD files and
/// logos alike.
pub fn sniff_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Recognises a logo by its magic bytes and reads its size from its header.
pub fn sniff_logo(bytes: &[u8]) -> std::result::Result<LogoInfo, LogoError> {
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(LogoError::TooLarge {
            size_bytes: bytes.len(),
        });
    }
    let (content_type, dims) = match sniff_type(bytes) {
        Some("image/png") => (
            "image/png",
            png_size(bytes).ok_or(LogoError::BadHeader { format: "PNG" }),
        ),
        Some("image/jpeg") => (
            "image/jpeg",
            jpeg_size(bytes).ok_or(LogoError::BadHeader { format: "JPEG" }),
        ),
        Some("image/webp") => (
            "image/webp",
            webp_size(bytes).ok_or(LogoError::BadHeader { format: "WebP" }),
        ),
        _ => return Err(LogoError::UnknownFormat),
    };
    let (width_px, height_px) = dims?;
    if width_px == 0 || height_px == 0 {
        return Err(LogoError::BadHeader {
            format: content_type,
        });
    }
    if width_px > MAX_LOGO_PX || height_px > MAX_LOGO_PX {
        return Err(LogoError::TooManyPixels {
            width_px,
            height_px,
        });
    }
    Ok(LogoInfo {
        content_type,
        width_px,
        height_px,
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// PNG: the first chunk must be IHDR; width and height are its first fields.
fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    (b.get(12..16)? == b"IHDR").then_some(())?;
    Some((be32(b, 16)?, be32(b, 20)?))
}

/// JPEG: walks the markers to the first start-of-frame (SOF0–SOF15 but the
/// DHT, JPG and DAC markers), whose fields hold height then width.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        while *b.get(i)? != 0xff {
            i += 1;
        }
        while *b.get(i)? == 0xff {
            i += 1;
        }
        let marker = *b.get(i)?;
        i += 1;
        if marker == 0xd8 || (0xd0..=0xd7).contains(&marker) || marker == 0x01 {
            continue;
        }
        if marker == 0xd9 || marker == 0xda {
            return None;
        }
        let len = usize::try_from(be16(b, i)?).ok()?;
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            return Some((be16(b, i + 5)?, be16(b, i + 3)?));
        }
        i += len;
    }
}

/// WebP: lossy (`VP8 `, 14-bit sizes after the frame tag), lossless (`VP8L`,
/// 14-bit sizes minus one, packed) or extended (`VP8X`, 24-bit sizes minus one).
fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8 " => {
            (b.get(23..26)? == [0x9d, 0x01, 0x2a]).then_some(())?;
            Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff))
        }
        b"VP8L" => {
            (*b.get(20)? == 0x2f).then_some(())?;
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        _ => None,
    }
}

/// Test and demo images: the smallest valid headers of each format.
#[cfg(test)]
pub mod samples {
    /// A PNG signature and IHDR chunk of `w`×`h` (then IEND): enough for a
    /// browser to reject it as a picture, and for [`super::sniff_logo`].
    pub fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luminance_and_contrast_match_wcag_reference_values() {
        assert!((relative_luminance([255, 255, 255]) - 1.0).abs() < 1e-9);
        assert!(relative_luminance([0, 0, 0]).abs() < 1e-9);
        assert!((contrast_ratio([0, 0, 0], WHITE) - 21.0).abs() < 1e-9);
        // #777777 on white is the textbook near-miss: 4.48:1.
        let grey = contrast_ratio([0x77, 0x77, 0x77], WHITE);
        assert!((grey - 4.48).abs() < 0.01, "{grey}");
        // #0000ff (pure blue) on white: 8.59:1.
        assert!((contrast_ratio([0, 0, 255], WHITE) - 8.59).abs() < 0.01);
    }

    #[test]
    fn a_dark_enough_colour_is_kept() {
        assert_eq!(
            accessible_behind_white([0x14, 0x21, 0x3d]),
            ([0x14, 0x21, 0x3d], false)
        );
    }

    #[test]
    fn a_light_colour_is_darkened_just_enough_and_keeps_its_hue() {
        let yellow = [0xff, 0xcc, 0x00];
        let (used, adjusted) = accessible_behind_white(yellow);
        assert!(adjusted);
        let ratio = contrast_ratio(used, WHITE);
        assert!(ratio >= 4.5, "{ratio}");
        assert!(ratio < 4.7, "darkened no more than needed: {ratio}");
        assert_eq!(used[2], 0, "blue stays zero");
        assert!(used[0] > used[1], "red stays above green: {used:?}");
        // White itself becomes black-ish grey but passes.
        let (from_white, _) = accessible_behind_white(WHITE);
        assert!(contrast_ratio(from_white, WHITE) >= 4.5);
    }

    #[test]
    fn colours_are_read_only_as_hash_rrggbb() {
        assert_eq!(
            parse_hex_color("#0A5bD3").expect("valid"),
            [0x0a, 0x5b, 0xd3]
        );
        for bad in [
            "0a5bd3",
            "#0a5bd",
            "#0a5bd3ff",
            "#gg0000",
            "red",
            "#0a5bd3;x",
        ] {
            let err = parse_hex_color(bad).expect_err(bad);
            assert!(err.to_string().contains("primary_color"), "{err}");
        }
    }

    #[test]
    fn logos_are_recognised_by_their_bytes_and_sized_from_the_header() {
        let png = samples::png_header(320, 80);
        assert_eq!(
            sniff_logo(&png),
            Ok(LogoInfo {
                content_type: "image/png",
                width_px: 320,
                height_px: 80
            })
        );
        // JPEG: SOI, an APP0 segment, then SOF0 with height 60, width 200.
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 60,
            0x00, 200, 0x01, 0x01, 0x11, 0x00,
        ];
        assert_eq!(
            sniff_logo(&jpeg),
            Ok(LogoInfo {
                content_type: "image/jpeg",
                width_px: 200,
                height_px: 60
            })
        );
        // WebP extended (VP8X): 24-bit sizes minus one: 512×128.
        let mut webp = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00".to_vec();
        webp.extend_from_slice(&[0xff, 0x01, 0x00, 0x7f, 0x00, 0x00]);
        assert_eq!(
            sniff_logo(&webp),
            Ok(LogoInfo {
                content_type: "image/webp",
                width_px: 512,
                height_px: 128
            })
        );
    }

    #[test]
    fn svg_oversized_and_truncated_logos_are_refused_with_the_reason() {
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        let err = sniff_logo(svg).expect_err("svg");
        assert_eq!(err, LogoError::UnknownFormat);
        assert!(err.to_string().contains("SVG"), "{err}");
        assert_eq!(
            sniff_logo(&samples::png_header(2048, 10)),
            Err(LogoError::TooManyPixels {
                width_px: 2048,
                height_px: 10
            })
        );
        assert_eq!(
            sniff_logo(&vec![0u8; MAX_LOGO_BYTES + 1]),
            Err(LogoError::TooLarge {
                size_bytes: MAX_LOGO_BYTES + 1
            })
        );
        let cut = &samples::png_header(10, 10)[..18];
        assert_eq!(sniff_logo(cut), Err(LogoError::BadHeader { format: "PNG" }));
        // A JPEG that never reaches a frame header.
        assert!(matches!(
            sniff_logo(&[0xff, 0xd8, 0xff, 0xe0, 0x00]),
            Err(LogoError::BadHeader { .. })
        ));
    }
}
