//! The engine: everything between a raw GPS fix and a published ETA, with no I/O.
//!
//! It owns the domain (positions and the one contract that decodes them, orders
//! and their status machine), online map
//! matching, the traffic model, the routing core and the ETA. Every function that
//! needs the time takes `now` as an argument, so the whole crate is synchronous and
//! deterministic: the same inputs give the same outputs, which is what makes replays,
//! tests and several nodes agree.

mod contract;
mod error;
mod eta;
mod events;
mod live;
mod matching;
mod order;
mod position;
mod routing;
mod trace;
mod tracking;
mod traffic;

pub use contract::{
    BatchError, Envelope, FORMAT_HEADER, Format, ItemReport, ItemStatus, RejectReason, Rejection,
    ValidationRules, decode, decode_batch, encode, encode_canonical, receipts, resolve_format,
};
pub use error::{Error, Result};
pub use eta::{
    AppointmentWindow, BucketSummary, CalibrationConfig, Calibrator, DwellConfig, DwellHistory,
    EtaConfig, EtaInput, HORIZONS_S, Horizon, HosClocks, HosEstimator, HosObservation, HosReport,
    HosRules, HosStop, HosStopKind, Leg, N_HORIZON_BUCKETS, OwnErrors, OwnQuantiles, PaceConfig,
    PaceEstimator, StallConfig, StallTail, StopEta, StopPlan, WindowOutcome, estimate_stops,
    horizon_bounds, horizon_bucket,
};
pub use events::{EngineEvent, EtaReason, EtaUpdate, PositionUpdate, StatusChange, StatusSource};
pub use live::{
    ActiveOrder, ActiveStop, FleetDecodeError, FleetLearning, Geofence, JumpRules, LiveConfig,
    LiveCounters, LiveEngine, LiveOutput, MapIdentity, MetricUpdate, Outlier, StageTimings,
    Stopwatch, VehicleMemory,
};
pub use matching::{
    Fix, FixMatch, FixOutcome, MatchCounters, MatchEvents, MatchState, MatchedPoint, Matcher,
    MatcherConfig, MatcherScratch, RouteMismatch, Traversal, UnmatchedReason, match_trace,
    route_mismatch, thin_fixes, traversal_paths,
};
pub use order::{OrderId, OrderStatus, StatusTransitionError, StopKind};
pub use position::{Position, PositionSource, TenantId, VehicleId, VehicleKey};
pub use routing::{
    EdgePosition, HourOfWeek, INFINITY_MS, MAX_EDGE_MS, Metric, Preparation, ROUTER_SECTION, Route,
    Router, RouterStats, ShapeId, Snap, TurnCosts, WeeklyProfile, travel_ms,
};
pub use trace::{Trace, parse_time, parse_trace};
pub use tracking::{
    ArrivalRecord, ClosedBy, ClosedPrediction, MetricVersion, PredictionRecord, RerouteReason,
    Resumed, TrackedStop, TrackerConfig, TrackerCounters, TrackerMemory, TrackerOutput,
    TrackingContext, VehicleFix, VehicleTracker,
};
pub use traffic::{
    ExternalSpeed, ProfileHistory, SampleRejection, SpeedEstimate, SpeedObservation, SpeedProfile,
    SpeedSource, TrafficConfig, TrafficCounters, TrafficModel,
};

/// Time zones (the map's, for the traffic profile; receivers', for windows).
pub use chrono_tz::Tz;
