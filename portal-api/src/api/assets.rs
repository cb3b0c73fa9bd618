//! The pages' static files, embedded in the binary: our own scripts (the
//! tracking page's, the staff pages' copy buttons) and style, and the vendored
//! Leaflet (BSD-2-Clause, its licence served alongside).
//!
//! Each asset has a versioned name carrying a hash of its bytes
//! (`track.3f2a9c1b0d.js`): the page links to that name, which is cached for a
//! year as immutable, since new bytes get a new name. The plain name still
//! answers, cached for five minutes. Both carry an `ETag` (the same hash) and
//! answer `If-None-Match` with 304. Text assets are compressed once, on first
//! use, with brotli and gzip at their best levels, and served in the encoding
//! the client accepts (`Vary: Accept-Encoding`).

use std::io::Write;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::PathParams;
use super::responses::{Invalid, NotFound};
use crate::error::AppError;

/// `(name, content type, bytes)` of every asset.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "track.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/track.js"),
    ),
    (
        "basemap.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/basemap.js"),
    ),
    (
        "track.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/track.css"),
    ),
    (
        "staff.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/staff.js"),
    ),
    (
        "leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.js"),
    ),
    (
        "leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.css"),
    ),
    (
        "LICENSE-leaflet.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/LICENSE"),
    ),
];

/// Cache lifetime of an asset asked for by its plain name.
const PLAIN_CACHE: &str = "public, max-age=300";
/// Cache lifetime of an asset asked for by its versioned name.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";

/// One asset with what is derived from its bytes.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// `track.<hash>.js`.
    versioned: String,
    /// `"<hash>"`, quoted as the header wants it.
    etag: String,
    /// Brotli and gzip encodings, made on first use.
    encoded: OnceLock<Encoded>,
}

#[derive(Debug)]
struct Encoded {
    br: Vec<u8>,
    gzip: Vec<u8>,
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|&(name, content_type, bytes)| {
                let digest = Sha256::digest(bytes);
                let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
                let versioned = match name.rsplit_once('.') {
                    Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                    None => format!("{name}.{hash}"),
                };
                Asset {
                    name,
                    content_type,
                    bytes,
                    versioned,
                    etag: format!("\"{hash}\""),
                    encoded: OnceLock::new(),
                }
            })
            .collect()
    })
}

/// The URL the page links to for asset `name`: its versioned name.
///
/// # Panics
/// When `name` is not an embedded asset (a programming error, caught by the
/// page's tests).
pub(crate) fn url(name: &str) -> String {
    let asset = assets()
        .iter()
        .find(|asset| asset.name == name)
        .unwrap_or_else(|| panic!("no embedded asset {name}"));
    format!("/assets/{}", asset.versioned)
}

impl Asset {
    fn encoded(&self) -> &Encoded {
        self.encoded.get_or_init(|| {
            let mut br = Vec::new();
            {
                let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 11, 22);
                // Writing to a Vec cannot fail.
                let _ = writer.write_all(self.bytes);
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let _ = gz.write_all(self.bytes);
            let gzip = gz.finish().unwrap_or_default();
            Encoded { br, gzip }
        })
    }
}

/// The encoding to answer with, from `Accept-Encoding`: brotli, then gzip, where
/// the client lists them without `q=0`.
fn pick_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let accepts = |wanted: &str| {
        accept.split(',').any(|part| {
            let mut pieces = part.split(';');
            let coding = pieces.next().unwrap_or("").trim();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            coding.eq_ignore_ascii_case(wanted) && !refused
        })
    };
    if accepts("br") {
        Some("br")
    } else if accepts("gzip") {
        Some("gzip")
    } else {
        None
    }
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
}

#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "public",
    summary = "An embedded page asset, by its plain or versioned name",
    params(("file" = String, Path)),
    responses(
        (status = 200, description = "the file (brotli or gzip when accepted)"),
        (status = 304, description = "not modified (If-None-Match named its ETag)"),
        Invalid,
        NotFound
    ),
)]
pub(crate) async fn asset(
    headers: HeaderMap,
    PathParams(file): PathParams<String>,
) -> Result<Response, AppError> {
    let not_found = || AppError::new(StatusCode::NOT_FOUND, "not_found", "no such asset");
    let (asset, cache) = assets()
        .iter()
        .find_map(|asset| {
            if asset.versioned == file {
                Some((asset, VERSIONED_CACHE))
            } else if asset.name == file {
                Some((asset, PLAIN_CACHE))
            } else {
                None
            }
        })
        .ok_or_else(not_found)?;
    let etag = HeaderValue::from_str(&asset.etag).map_err(|_| not_found())?;
    let mut response = if if_none_match(&headers, &asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match pick_encoding(&headers).filter(|_| is_text(asset.content_type)) {
            Some(coding) => {
                let encoded = asset.encoded();
                let body = if coding == "br" {
                    encoded.br.clone()
                } else {
                    encoded.gzip.clone()
                };
                let mut response = Body::from(body).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                response
            }
            None => Body::from(asset.bytes).into_response(),
        }
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(header::ETAG, etag);
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Whether `If-None-Match` names `etag` (or is `*`).
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_str(value).expect("valid in this test"),
            );
        }
        map
    }

    #[test]
    fn versioned_names_carry_the_hash_before_the_extension() {
        let js = url("track.js");
        assert!(
            js.starts_with("/assets/track.") && js.ends_with(".js"),
            "{js}"
        );
        assert_eq!(js.len(), "/assets/track..js".len() + 10, "{js}");
        assert_ne!(url("track.js"), url("leaflet.js"));
    }

    #[test]
    fn brotli_is_preferred_and_q_zero_refuses() {
        let h = |v: &str| headers(&[(header::ACCEPT_ENCODING, v)]);
        assert_eq!(pick_encoding(&h("gzip, deflate, br")), Some("br"));
        assert_eq!(pick_encoding(&h("gzip, br;q=0")), Some("gzip"));
        assert_eq!(pick_encoding(&h("identity")), None);
        assert_eq!(pick_encoding(&HeaderMap::new()), None);
    }

    #[test]
    fn encodings_decode_to_the_same_bytes() {
        use std::io::Read;
        let asset = &assets()[0];
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&asset.encoded().gzip[..])
            .read_to_end(&mut plain)
            .expect("valid in this test");
        assert_eq!(plain, asset.bytes);
        let mut plain = Vec::new();
        brotli::Decompressor::new(&asset.encoded().br[..], 4096)
            .read_to_end(&mut plain)
            .expect("valid in this test");
        assert_eq!(plain, asset.bytes);
        assert!(asset.encoded().br.len() < asset.bytes.len() / 2);
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = "\"abc\"";
        assert!(if_none_match(
            &headers(&[(header::IF_NONE_MATCH, "\"x\", W/\"abc\"")]),
            tag
        ));
        assert!(if_none_match(
            &headers(&[(header::IF_NONE_MATCH, "*")]),
            tag
        ));
        assert!(!if_none_match(
            &headers(&[(header::IF_NONE_MATCH, "\"x\"")]),
            tag
        ));
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }
}
