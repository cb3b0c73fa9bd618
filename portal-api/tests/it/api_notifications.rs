//! The notification routes through the router (no socket, no SMTP): rules are
//! a tenant's own, errors name their field (a threshold on an event that
//! takes none is a 422),
//! and a preview renders the rule's message for an order with the order's
//! own tracking link, opened from its seal, without sending anything.

use crate::common;

use axum::http::{Method, StatusCode};
use common::*;
use portal_api::{NotifyKey, PortalConfig};
use serde_json::json;

async fn app_with_key() -> TestApp {
    let mut config = PortalConfig::recommended("https://track.example.com");
    config.notify_key = Some(NotifyKey::from_bytes(&[42; 32]));
    config.mail_contact = Some("help@acme.test".into());
    test_app_with(config, None).await
}

#[tokio::test]
async fn a_tenant_creates_lists_previews_and_removes_its_rules() {
    let t = app_with_key().await;
    let rule = call(
        &t.app,
        Method::POST,
        "/api/v1/notification-rules",
        Some(&t.key_a),
        Some(
            json!({"event": "dispatched", "channel": "email", "recipients": ["customer"],
                    "addresses": ["Ops@Acme.test"]}),
        ),
    )
    .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);
    let rule_id = rule.json["id"].as_str().expect("id").to_owned();
    assert_eq!(rule.json["recipients"], json!(["customer"]));
    assert_eq!(rule.json["addresses"], json!(["ops@acme.test"]));

    let listed = call(
        &t.app,
        Method::GET,
        "/api/v1/notification-rules",
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(listed.json["rules"].as_array().map(Vec::len), Some(1));
    let other = call(
        &t.app,
        Method::GET,
        "/api/v1/notification-rules",
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(other.json["rules"], json!([]), "another tenant sees none");

    let order = create_order(&t.app, &t.key_a, "LOAD-<7>", None).await;
    let order_id = order["id"].as_str().expect("id");
    let tracking_url = order["tracking_url"].as_str().expect("url");
    let preview = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/notification-rules/{rule_id}/preview?order_id={order_id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    assert_eq!(preview.json["subject"], "Shipment LOAD-<7> is dispatched");
    assert_eq!(
        preview.json["to"],
        json!(["jane@example.com", "ops@acme.test"])
    );
    let text = preview.json["text"].as_str().expect("text");
    assert!(
        text.contains(&format!("Track it live: {tracking_url}")),
        "{text}"
    );
    assert!(text.contains("Questions? help@acme.test"), "{text}");
    let html = preview.json["html"].as_str().expect("html");
    assert!(
        html.contains("LOAD-&lt;7&gt;") && !html.contains("LOAD-<7>"),
        "{html}"
    );

    // A rotated link is the one previewed from then on.
    let rotated = call(
        &t.app,
        Method::POST,
        &format!("/api/v1/orders/{order_id}/tracking-link/rotate"),
        Some(&t.key_a),
        None,
    )
    .await;
    let new_url = rotated.json["tracking_url"].as_str().expect("new url");
    let preview = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/notification-rules/{rule_id}/preview?order_id={order_id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    let text = preview.json["text"].as_str().expect("text");
    assert!(
        text.contains(new_url) && !text.contains(tracking_url),
        "{text}"
    );

    let theirs = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/notification-rules/{rule_id}"),
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(
        theirs.status,
        StatusCode::NOT_FOUND,
        "not another tenant's to remove"
    );
    let removed = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/notification-rules/{rule_id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let again = call(
        &t.app,
        Method::DELETE,
        &format!("/api/v1/notification-rules/{rule_id}"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field() {
    let t = test_app().await;
    let post = |body| {
        call(
            &t.app,
            Method::POST,
            "/api/v1/notification-rules",
            Some(&t.key_a),
            Some(body),
        )
    };
    let late =
        post(json!({"event": "late_risk", "recipients": ["customer"], "min_change_min": 5})).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error_message(&late).starts_with("`min_change_min`"),
        "only eta_changed takes a threshold: {}",
        late.text
    );
    let position = post(json!({"event": "position", "recipients": ["customer"]})).await;
    assert_eq!(position.status, StatusCode::BAD_REQUEST, "webhooks only");
    assert!(
        error_message(&position).starts_with("`event`"),
        "{}",
        position.text
    );
    let typo = post(json!({"event": "dispatched", "recipients": ["customer"],
        "template": {"subject": "{{reference}}", "body": "{{trackign_url}}"}}))
    .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&typo).starts_with("`template.body`"),
        "{}",
        typo.text
    );
    let unauthenticated = call(
        &t.app,
        Method::GET,
        "/api/v1/notification-rules",
        None,
        None,
    )
    .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_orders_notifications_are_its_tenants_only_and_junk_unsubscribe_links_are_404() {
    let t = test_app().await;
    let order = create_order(&t.app, &t.key_a, "LOAD-1", None).await;
    let id = order["id"].as_str().expect("id");
    let mine = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}/notifications"),
        Some(&t.key_a),
        None,
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.json["notifications"], json!([]));
    let theirs = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/orders/{id}/notifications"),
        Some(&t.key_b),
        None,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    for token in ["short", "abcdefghijklmnopqrstuvwxyzabcdef"] {
        let reply = call(
            &t.app,
            Method::POST,
            &format!("/unsubscribe/{token}"),
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{token}");
    }
}
