//! The span every HTTP request runs in, and its request id.
//!
//! A request keeps a well-formed `x-request-id` it came with (a proxy's, so
//! one id follows it through every hop) or gets a fresh UUID; the id is sent
//! back in the response. The span names the method, the route's *template*
//! (`/t/{code}`, never `/t/7q3…`) and the id: tracking codes, order ids and
//! query strings in paths never reach a log, and no header (so no
//! `Authorization`) is ever recorded. The response is logged at `info` with
//! its status and latency.

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use tower_http::LatencyUnit;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnFailure, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The longest request id kept from a client; a longer one is replaced.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// Whether a client's request id can be logged as it is: short, and only
/// letters, digits, `-`, `_`, `.` (anything else might smuggle a secret or a
/// forged log line into the logs).
fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_CHARS
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Drops an unacceptable client request id, so that a fresh one is made.
async fn screen_request_id(mut request: Request) -> Request {
    let headers = request.headers_mut();
    if headers
        .get("x-request-id")
        .is_some_and(|v| !acceptable_request_id(v))
    {
        headers.remove("x-request-id");
    }
    request
}

/// The span of one request: method, route template and request id only.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        request_id = %request_id,
    )
}

/// Wraps the application in its request-id and trace layers.
pub(crate) fn observe<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    // The last layer added runs first: screen the client's id, set or keep
    // one, copy it to the response, then open the span.
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                )
                // The response line has the status already; a 503 from
                // `/readyz` while starting is no error. Internal errors are
                // logged where they happen (`AppError`).
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(screen_request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        let ok = |s: &str| acceptable_request_id(&HeaderValue::from_str(s).expect("header"));
        assert!(ok("3f2a9c1e-7b44-4d0e-9a51-0c8e2b6f1d3a"));
        assert!(ok("lb.req_42"));
        assert!(!ok(""));
        assert!(!ok("a b"));
        assert!(!ok(&"a".repeat(65)));
        assert!(!ok("id\"} injected=1"));
    }
}
