//! `GET /readyz`: whether this node can do its work, for a load balancer or an
//! orchestrator deciding where to send traffic. Ready means the map is loaded
//! (the engine and the basemap have their graph), the position bus answers
//! (its consumer runs and, for Kafka, the brokers answer) and the store answers.
//! Until then: 503 with a JSON body naming what is missing. `/healthz` is
//! liveness only (the process serves HTTP) and is never held back by these.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::contract::{ErrorDetail, NodeView, NotReadyView, ReadyView};
use crate::state::AppState;

/// How long a dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the embedding program has told the portal about its start-up.
pub(crate) struct Readiness {
    /// The position bus's consumer runs (set by the program once it started
    /// it; true from the start when there is no bus).
    pub(crate) bus_consuming: AtomicBool,
    /// Reads this node's place among the others (set once by the program).
    pub(crate) node: OnceLock<NodeReport>,
}

/// A reader of the node's current [`NodeView`].
pub(crate) type NodeReport = Box<dyn Fn() -> NodeView + Send + Sync>;

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("bus_consuming", &self.bus_consuming)
            .field("node", &self.node.get().map(|_| "reported"))
            .finish()
    }
}

/// One check's verdict: `Ok` or what is wrong.
type Check = Result<(), String>;

async fn within(check: impl Future<Output = Check>) -> Check {
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {} s",
                CHECK_TIMEOUT.as_secs_f64()
            ))
        })
}

/// Every check, in a fixed order: `(name, verdict)`.
pub(crate) async fn checks(state: &AppState) -> Vec<(&'static str, Check)> {
    let map = if state.graph().is_some() {
        Ok(())
    } else {
        Err("the road map is not loaded yet".to_owned())
    };
    let bus = if state.inner.readiness.bus_consuming.load(Ordering::Acquire) {
        within(async {
            state
                .inner
                .intake
                .ready()
                .await
                .map_err(|e| format!("the position bus does not answer: {e}"))
        })
        .await
    } else {
        Err("the position bus consumer has not started yet".to_owned())
    };
    let store = within(async {
        state
            .store()
            .outbox_pending()
            .await
            .map(|_| ())
            .map_err(|e| format!("the store does not answer: {e}"))
    })
    .await;
    vec![("map", map), ("bus", bus), ("store", store)]
}

/// `GET /readyz`: 200 `{"status": "ready", "checks": {…}}`, or 503 with the
/// usual error object naming what is missing and the same `checks`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    summary = "Readiness: map, bus and store",
    responses(
        (status = 200, description = "ready, with each check and this node's partitions, lag and peers", body = ReadyView),
        (status = 503, description = "not ready: the error object, `missing` and `checks`", body = NotReadyView)
    ),
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let results = checks(&state).await;
    let node = state.inner.readiness.node.get().map(|report| report());
    let mut checks = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, verdict) in &results {
        match verdict {
            Ok(()) => {
                checks.insert((*name).to_owned(), "ok".to_owned());
            }
            Err(reason) => {
                checks.insert((*name).to_owned(), reason.clone());
                missing.push((*name).to_owned());
            }
        }
    }
    if missing.is_empty() {
        return Json(ReadyView {
            status: "ready".to_owned(),
            checks,
            node,
        })
        .into_response();
    }
    let message = format!("not ready: waiting for {}", missing.join(", "));
    let body = NotReadyView {
        status: "not_ready".to_owned(),
        missing,
        checks,
        node,
        error: ErrorDetail {
            code: "not_ready".to_owned(),
            message,
        },
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
