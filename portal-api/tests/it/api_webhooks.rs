//! The webhook routes through the router (no socket, nothing sent): an
//! endpoint's secret is shown once, at creation or rotation, never listed;
//! another tenant's endpoint is a 404; bodies are checked field by field; and
//! the SSRF rules refuse plain http, loopback and private addresses unless
//! the operator allowed the host.

use crate::common;

use axum::http::{Method, StatusCode};
use common::*;
use portal_api::{NotifyKey, PortalConfig};
use serde_json::{Value, json};

async fn app(allow_hosts: &[&str]) -> TestApp {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.notify_key = Some(NotifyKey::from_bytes(&[42; 32]));
    config.webhook_allow_hosts = allow_hosts.iter().map(|h| (*h).to_owned()).collect();
    test_app_with(config, None).await
}

async fn create(t: &TestApp, key: &str, body: Value) -> Reply {
    call(
        &t.app,
        Method::POST,
        "/api/v1/webhooks",
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn endpoints_outside_the_public_internet_are_refused_naming_url() {
    let t = app(&[]).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://localhost/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
    ] {
        let reply = create(
            &t,
            &t.key_a,
            json!({"url": url, "events": ["status_changed"]}),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            reply.text
        );
        assert!(
            error_message(&reply).starts_with("`url`"),
            "{url}: {}",
            reply.text
        );
    }
    // An operator's allowed host may be plain http and loopback.
    let allowed = app(&["127.0.0.1"]).await;
    let reply = create(
        &allowed,
        &allowed.key_a,
        json!({"url": "http://127.0.0.1:8080/hook", "events": ["status_changed"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    // …that host only.
    let reply = create(
        &allowed,
        &allowed.key_a,
        json!({"url": "http://10.0.0.1/hook", "events": ["status_changed"]}),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn bodies_are_checked_field_by_field() {
    let t = app(&["127.0.0.1"]).await;
    let url = "http://127.0.0.1:9/hook";
    for (body, field) in [
        (json!({"events": ["status_changed"]}), "`url`"),
        (json!({"url": url}), "`events`"),
        (json!({"url": url, "events": []}), "`events`"),
        (
            json!({"url": url, "events": ["status_changed", "shipped"]}),
            "`events[1]`",
        ),
        (
            json!({"url": url, "events": ["late_risk"], "colour": "red"}),
            "`colour`",
        ),
    ] {
        let reply = create(&t, &t.key_a, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert!(
            error_message(&reply).starts_with(field),
            "{body}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_secret_is_shown_once_and_an_endpoint_is_its_tenants_own() {
    let t = app(&["127.0.0.1"]).await;
    let created = create(
        &t,
        &t.key_a,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["status_changed", "eta_changed", "status_changed"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_str().expect("id").to_owned();
    let secret = created.json["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(
        created.json["events"],
        json!(["status_changed", "eta_changed"])
    );
    assert_eq!(created.json["enabled"], true);

    let listed = call(
        &t.app,
        Method::GET,
        "/api/v1/webhooks",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(listed.json["webhooks"][0]["id"], id.as_str());
    assert!(!listed.text.contains(&secret), "never listed");
    assert!(listed.json["webhooks"][0].get("secret").is_none());
    let theirs = call(
        &t.app,
        Method::GET,
        "/api/v1/webhooks",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(theirs.json["webhooks"], json!([]));

    for (method, path) in [
        (Method::POST, format!("/api/v1/webhooks/{id}/rotate-secret")),
        (Method::POST, format!("/api/v1/webhooks/{id}/enable")),
        (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
        (Method::DELETE, format!("/api/v1/webhooks/{id}")),
    ] {
        let reply = call(&t.app, method.clone(), &path, Some(&t.key_b), None).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.text
        );
    }

    let rotated = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/rotate-secret"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.json["secret"].as_str().expect("secret");
    assert_ne!(new_secret, secret);
    assert!(rotated.json["previous_secret_valid_until"].is_string());
    let deliveries = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/webhooks/{id}/deliveries"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(deliveries.json["deliveries"], json!([]));

    let removed = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let listed = call(
        &t.app,
        Method::GET,
        "/api/v1/webhooks",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(listed.json["webhooks"], json!([]));
}

#[tokio::test]
async fn without_the_notification_key_webhooks_are_unavailable() {
    let t = test_app().await;
    let reply = create(
        &t,
        &t.key_a,
        json!({"url": "https://8.8.8.8/hook", "events": ["status_changed"]}),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
}
