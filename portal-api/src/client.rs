//! A small typed client of the tracker's HTTP API, over reqwest: the same
//! request and answer types the server uses ([`crate::contract`]), so a
//! program that drives the API (the simulator, the end-to-end tests) cannot
//! send a body the server would not read, nor misread its answer. Errors are
//! the crate's [`Error`]: `Api` carries the server's status and error code,
//! `Unreachable` a transport failure; [`Error::is_retryable`] tells them
//! apart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::{
    ErrorBody, NewOrderBody, OrderPatchBody, OrderView, PositionBody, PositionsReceipt,
    StatusUpdateBody,
};
use crate::error::{Error, Result};

/// How long one request may take before it counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A tenant's session with one server: its base URL and API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://HOST:PORT`) with a
    /// tenant's API key.
    pub fn new(base_url: &str, api_key: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::InvalidConfig {
                setting: "client",
                reason: e.to_string(),
            })?;
        Ok(Client {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    /// `POST /api/v1/orders`: the new order with its tracking code.
    pub async fn create_order(&self, order: &NewOrderBody) -> Result<OrderView> {
        self.send(Method::POST, "/api/v1/orders", Some(order)).await
    }

    /// `GET /api/v1/orders/{id}`.
    pub async fn order(&self, id: &str) -> Result<OrderView> {
        self.send::<(), _>(Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await
    }

    /// `PATCH /api/v1/orders/{id}`.
    pub async fn update_order(&self, id: &str, patch: &OrderPatchBody) -> Result<OrderView> {
        self.send(Method::PATCH, &format!("/api/v1/orders/{id}"), Some(patch))
            .await
    }

    /// `POST /api/v1/orders/{id}/status`: the order, with the recorded event.
    pub async fn post_status(&self, id: &str, update: &StatusUpdateBody) -> Result<OrderView> {
        self.send(
            Method::POST,
            &format!("/api/v1/orders/{id}/status"),
            Some(update),
        )
        .await
    }

    /// `POST /api/v1/positions` in the canonical shape: the receipt, with a
    /// result per position.
    pub async fn post_positions(&self, positions: &[PositionBody]) -> Result<PositionsReceipt> {
        self.send(Method::POST, "/api/v1/positions", Some(positions))
            .await
    }

    async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = request
            .send()
            .await
            .map_err(|e| Error::Unreachable(e.without_url().to_string()))?;
        let status = reply.status();
        let bytes = reply
            .bytes()
            .await
            .map_err(|e| Error::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Api {
            status: status.as_u16(),
            code: "unreadable_answer".to_owned(),
            message: format!("the answer does not match the contract: {e}"),
        })
    }
}

/// The server's error object as an [`Error::Api`] (or the status alone when
/// the body is not one).
fn api_error(status: StatusCode, bytes: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Error::Api {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => Error::Api {
            status: status.as_u16(),
            code: "unknown".to_owned(),
            message: format!("HTTP {status} without an error object"),
        },
    }
}
