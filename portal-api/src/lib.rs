//! The portal: what customers and dispatchers see of the tracking engine.
//!
//! An axum application ([`app`]) with the orders API for tenants (bearer API
//! keys, several per tenant, each scoped and revocable), the public tracking page `/t/{code}` with its JSON twin and WebSocket,
//! the roads-in-a-box basemap endpoint, embedded page assets and the OpenAPI
//! document. Behind it: the [`Store`] (SQLite embedded; PostgreSQL designed for)
//! and the [`FanOut`] (in-process or Redis) that carries live updates to every
//! viewer on every node. Live state enters through [`LiveUpdates`], from the
//! engine's events or from positions posted over HTTP via a [`PositionIntake`].
//!
//! This crate depends on `engine` (domain types, the order state machine and its
//! events) and `road-graph` (the basemap), never on `ingest`: the binary wires
//! the pipelines together.

mod alerts;
pub mod analytics;
mod api;
mod branding;
pub mod client;
pub mod contract;
pub mod demo;
mod error;
mod fanout;
mod i18n;
mod keys;
mod live;
mod model;
mod notify;
mod ops;
mod page;
mod privacy;
mod ratelimit;
mod secrets;
mod server;
mod state;
mod store;
mod view;
mod ws;
mod zones;

pub use alerts::{AlertPolicy, LateRisk, LateRiskBasis};
pub use api::{TrustedProxies, app, openapi_document};
pub use branding::{Branding, LogoMeta};
pub use error::{AppError, Error, Result, StoreErrorKind};
pub use fanout::{
    FanOut, FanOutFuture, Hub, Latest, LiveKind, LiveMessage, MemoryFanOut, RedisFanOut,
    Subscription, open_fanout,
};
pub use keys::{api_key_view, create_api_key, new_api_key_view, parse_scopes};
pub use live::{DirectIntake, IntakeFuture, LiveUpdates, PositionIntake};
pub use model::{
    ApiKey, Created, Customer, EtaHistory, EtaRecord, EtaRecorded, EventKind, IdempotencyClaim,
    ListQuery, NewApiKey, NewDeadLetter, NewEvent, NewOrder, NewPod, NewStop, Order, OrderEvent,
    OrderPatch, PodMeta, PositionOutcome, Scope, Stop, StoredDeadLetter, Tenant, TenantId,
    TrackView, TrackerMemoryRecord, TrailPoint, VehicleFix, Visibility, Window,
};
pub use notify::{
    Attempt, AttemptReport, Channel, Channels, DelivererConfig, DeliveryState, NewRule,
    Notification, NotifyKey, Outcome, Rule, SmtpChannel, SmtpSettings, SmtpTls, Template,
    TriggerEvent, Webhook, WebhookChannel, WebhookEvent, run_deliverer, validate_allow_hosts,
};
pub use ops::{MetricsToken, SECONDS_BUCKETS, prometheus};
pub use privacy::LocationPrivacy;
pub use secrets::{
    API_KEY_PREFIX, API_KEY_SHOWN_CHARS, TRACKING_CODE_LEN, api_key_prefix,
    looks_like_tracking_code, new_api_key, new_tracking_code, secret_hash,
};
pub use server::{ServerLimits, serve};
pub use state::{AppState, DEFAULT_MAX_STOP_ROAD_DISTANCE_M, DEFAULT_STALE_AFTER_S, PortalConfig};
pub use store::{
    AccuracyInputs, AnalyticsStore, NotificationStore, PostgresStore, PredictionScan,
    SettingsStore, SqliteStore, Store, StoreFuture, SummaryPass, aggregates_serve, open_store,
    read_accuracy_inputs, read_evaluated_predictions,
};
pub use ws::{MAX_WRITE_BUFFER_BYTES, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES};
pub use zones::warm_up_time_zones;

/// Creates a tenant with one API key, `default`, holding every scope; returns
/// the tenant and the key (shown once; only its hash is stored).
pub async fn create_tenant(store: &dyn Store, name: &str) -> Result<(Tenant, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "must be 1-200 characters"));
    }
    let (first_key, key) = keys::fresh_key("default", Scope::ALL.to_vec())?;
    let tenant = store.create_tenant(name.to_owned(), first_key).await?;
    Ok((tenant, key))
}
