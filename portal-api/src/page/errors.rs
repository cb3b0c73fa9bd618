//! The tracking page's answers when there is no order to show: an unknown or
//! revoked link, a viewer over the rate limit, a store that is down. Readable
//! HTML in the viewer's language, never JSON; the same bytes for unknown and
//! revoked codes in one language.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html as HtmlBody, IntoResponse, Response};

use super::html::{Html, esc};
use crate::i18n::{Lang, format::duration_label};

/// A short page: a title, a heading and one paragraph (already HTML).
fn short_page(lang: Lang, title: &str, heading: &str, text_html: &str) -> String {
    let mut page = Html::new();
    page.head(lang.tag(), title);
    page.raw(&format!(
        "<main class=\"wrap\"><h1>{}</h1><p>{text_html}</p></main></body></html>",
        esc(heading)
    ));
    page.finish()
}

/// `Content-Language` and `Vary` of every page answer: the language follows
/// `Accept-Language`, so caches must keep one copy per value.
pub(crate) fn language_headers(lang: Lang) -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.tag()),
        ),
        (header::VARY, HeaderValue::from_static("Accept-Language")),
    ]
}

/// The page for a link that does not exist (or no longer does): the same for
/// unknown and revoked codes.
pub(crate) fn not_found(lang: Lang) -> Response {
    let title = lang.t("error.not_found_title");
    let html = short_page(lang, title, title, &esc(lang.t("error.not_found_text")));
    (
        StatusCode::NOT_FOUND,
        language_headers(lang),
        HtmlBody(html),
    )
        .into_response()
}

/// The page for a viewer who has opened too many links too fast: readable, with
/// the wait, and the same `Retry-After` the JSON API sends.
pub(crate) fn rate_limited(lang: Lang, retry_after_s: u64) -> Response {
    let title = lang.t("error.rate_limited_title");
    let wait = duration_label(lang, i64::try_from(retry_after_s).unwrap_or(i64::MAX));
    let text = lang.tf("error.rate_limited_text", &[("wait", &wait)]);
    (
        StatusCode::TOO_MANY_REQUESTS,
        language_headers(lang),
        [
            (header::RETRY_AFTER, retry_after_s.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        HtmlBody(short_page(lang, title, title, &esc(&text))),
    )
        .into_response()
}

/// The page for any other failure (the store unavailable, say): readable, with
/// the status the API would give and whether trying again may help.
pub(crate) fn failed(lang: Lang, err: &crate::error::AppError) -> Response {
    let advice = if err.status.is_server_error() {
        lang.t("error.failed_server")
    } else {
        lang.t("error.failed_client")
    };
    let html = short_page(
        lang,
        lang.t("error.failed_title"),
        lang.t("error.failed_heading"),
        &esc(advice),
    );
    (
        err.status,
        language_headers(lang),
        [(header::CACHE_CONTROL, "no-store")],
        HtmlBody(html),
    )
        .into_response()
}
