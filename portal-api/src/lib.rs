//! The portal: what customers and dispatchers see of the tracking engine.
//!
//! An axum application ([`app`]) with the orders API for tenants (bearer API
//! keys, several per tenant, each scoped and revocable), the public tracking
//! page `/t/{code}` with its JSON twin and WebSocket, the roads-in-a-box
//! basemap endpoint, embedded page assets and the OpenAPI document; the
//! deliverer of milestone e-mails and webhooks. Behind it: the [`Store`]
//! (the `store` crate: SQLite embedded, PostgreSQL for several nodes) and the
//! [`FanOut`] (in-process or Redis) that carries live updates to every viewer
//! on every node. Live state enters through [`LiveUpdates`], from the engine's
//! events or from positions posted over HTTP via a [`PositionIntake`].
//!
//! This crate depends on `engine` (domain types, the order state machine and its
//! events), `store` (the records, the rules kept beside them, and the store
//! contract; re-exported here under the names the binary uses) and
//! `road-graph` (the basemap), never on `ingest`: the binary wires the
//! pipelines together.

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
mod notify;
mod ops;
mod page;
mod ratelimit;
mod server;
mod state;
mod view;
mod ws;
mod zones;

// The records and rules the store keeps, under the names the portal uses.
pub use store::analytics;
use store::{alerts, model, privacy, secrets};

pub use alerts::{AlertPolicy, LateRisk, LateRiskBasis};
pub use api::{TrustedProxies, app, openapi_document};
pub use error::{AppError, Error, Result, StoreErrorKind};
pub use fanout::{
    FanOut, FanOutFuture, HeldUpdates, Hub, Latest, LiveKind, LiveMessage, MemoryFanOut,
    RedisFanOut, Subscription, open_fanout,
};
pub use keys::{api_key_view, create_api_key, new_api_key_view, parse_scopes};
pub use live::{DirectIntake, IntakeFuture, LiveUpdates, PositionIntake};
pub use model::{
    ApiKey, Created, Customer, EtaHistory, EtaRecord, EtaRecorded, EventKind, IdempotencyClaim,
    ListQuery, NewApiKey, NewDeadLetter, NewEvent, NewOrder, NewPod, NewStop, Order, OrderEvent,
    OrderPatch, PodMeta, PositionOutcome, RecordedEta, Scope, Stop, StoredDeadLetter, Tenant,
    TenantId, TrackView, TrackerMemoryRecord, TrailPoint, VehicleFix, Visibility, Window,
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
pub use store::branding::{Branding, LogoMeta};
pub use store::{
    AccuracyInputs, AnalyticsStore, NotificationStore, PostgresStore, PredictionScan,
    SettingsStore, SqliteStore, Store, StoreFuture, SummaryPass, aggregates_serve, create_tenant,
    open_store, read_accuracy_inputs, read_evaluated_predictions,
};
pub use ws::{MAX_WRITE_BUFFER_BYTES, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES};
pub use zones::warm_up_time_zones;
