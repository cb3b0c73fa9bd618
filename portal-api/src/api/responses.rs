//! The refusals many routes share, as utoipa [`IntoResponses`] types: a
//! handler's `#[utoipa::path]` names the groups it can answer with
//! (`responses((status = 200, …), KeyedBodyErrors, NotFound)`) and lists only
//! its own answers beside them, so one refusal has one description across the
//! document. Each answer is the one error object, [`ErrorBody`]. The types are
//! never built: they document what `AppError` sends.

#![allow(dead_code)]

use utoipa::IntoResponses;

use crate::contract::ErrorBody;

/// A route behind an API key.
#[derive(IntoResponses)]
pub(crate) enum KeyedErrors {
    #[response(status = 401, description = "no, an unknown or a revoked API key")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "the key lacks the scope this route needs")]
    Forbidden(ErrorBody),
}

/// A route behind an API key that takes a JSON body: the key's refusals and
/// the body's (a bad field, too large, not JSON).
#[derive(IntoResponses)]
pub(crate) enum KeyedBodyErrors {
    #[response(
        status = 400,
        description = "a field or parameter is invalid; the message names it"
    )]
    Invalid(ErrorBody),
    #[response(status = 401, description = "no, an unknown or a revoked API key")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "the key lacks the scope this route needs")]
    Forbidden(ErrorBody),
    #[response(status = 413, description = "the body is over the route's limit")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "the body is not JSON")]
    NotJson(ErrorBody),
}

/// A body the route refuses before reading it.
#[derive(IntoResponses)]
pub(crate) enum BodyErrors {
    #[response(status = 413, description = "the body is over the route's limit")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "the body is not JSON")]
    NotJson(ErrorBody),
}

/// A field, path or query parameter that does not parse or is out of range.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "a field or parameter is invalid; the message names it"
)]
pub(crate) struct Invalid(ErrorBody);

/// A query parameter that does not parse or is out of range.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "a parameter is invalid; the message names it"
)]
pub(crate) struct InvalidParameter(ErrorBody);

/// An id that names nothing of the caller's tenant.
#[derive(IntoResponses)]
#[response(status = 404, description = "no such thing (or another tenant's)")]
pub(crate) struct NotFound(ErrorBody);

/// A change the thing's state does not allow.
#[derive(IntoResponses)]
#[response(status = 409, description = "not allowed in the current state")]
pub(crate) struct Conflict(ErrorBody);

/// An order (or change) that could not be tracked.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "well formed but cannot be tracked; names the field"
)]
pub(crate) struct Untrackable(ErrorBody);

/// The public lookups' rate limit.
#[derive(IntoResponses)]
#[response(status = 429, description = "too many lookups from this address")]
pub(crate) struct RateLimited(ErrorBody);

/// A route that seals secrets, on a server started without the key to.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "the server has no notification key to seal secrets with"
)]
pub(crate) struct NoNotifyKey(ErrorBody);

/// An analytics route on a store that keeps none.
#[derive(IntoResponses)]
#[response(status = 501, description = "this store keeps no analytics")]
pub(crate) struct NoAnalytics(ErrorBody);

/// A tenant-settings route (branding, privacy) on a store that keeps none.
#[derive(IntoResponses)]
#[response(status = 501, description = "the store keeps no tenant settings")]
pub(crate) struct NoSettings(ErrorBody);
