//! The tracking page in the viewer's language, through the router: `?lang=`
//! wins, then `Accept-Language`, then English; the page says which
//! (`<html lang>`, `Content-Language`, `Vary`), its status, steps and windows
//! are translated and written on the language's clock, its error pages too,
//! and the JSON API does not change with the language.

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;

/// The page of `code`, with `query` and an `Accept-Language` header if given.
async fn page(t: &TestApp, code: &str, query: &str, accept: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(format!("/t/{code}{query}"));
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT_LANGUAGE, accept);
    }
    send(&t.app, request.body(Body::empty()).expect("request")).await
}

fn header_of(reply: &Reply, name: header::HeaderName) -> &str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn dispatched_order(t: &TestApp) -> String {
    let order = create_order(&t.app, &t.key_a, "LOAD-I18N", Some("TRUCK-I18N")).await;
    let id = order["id"].as_str().expect("id");
    set_status(&t.app, &t.key_a, id, "dispatched").await;
    code_of(&order)
}

#[tokio::test]
async fn a_spanish_viewer_asking_by_query_gets_the_spanish_page_on_a_24_hour_clock() {
    let t = test_app().await;
    let code = dispatched_order(&t).await;
    // The query wins over the browser's French.
    let reply = page(&t, &code, "?lang=es", Some("fr-FR,fr;q=0.9")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let html = &reply.text;
    assert!(
        html.starts_with("<!doctype html><html lang=\"es\">"),
        "{html}"
    );
    assert_eq!(header_of(&reply, header::CONTENT_LANGUAGE), "es");
    assert_eq!(header_of(&reply, header::VARY), "Accept-Language");
    assert!(html.contains(">Despachado</p>"), "the status in Spanish");
    assert!(html.contains("data-step=\"in_transit\">En tránsito</li>"));
    assert!(html.contains("Recogida: Harbor Warehouse"));
    // The window in Baltimore's time, day before month, 24-hour clock.
    assert!(html.contains("25 nov 08:00–10:00 EST"), "{html}");
    assert!(html.contains("25 nov 13:00–15:00 EST"), "{html}");
    assert!(!html.contains("Dispatched<"), "no English status left");
    assert!(!html.contains("Appointment"), "no English label left");
    // The language switch keeps the code and marks the current language.
    assert!(html.contains("<a href=\"?lang=fr\" hreflang=\"fr\" lang=\"fr\">Français</a>"));
    assert!(html.contains("lang=\"es\" aria-current=\"true\">Español</a>"));
    // The script gets the same messages.
    assert!(html.contains("\"status.dispatched\":\"Despachado\""));
}

#[tokio::test]
async fn a_french_browser_gets_the_french_page() {
    let t = test_app().await;
    let code = dispatched_order(&t).await;
    let reply = page(&t, &code, "", Some("fr-FR,fr;q=0.9,en;q=0.5")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let html = &reply.text;
    assert!(html.starts_with("<!doctype html><html lang=\"fr\">"));
    assert_eq!(header_of(&reply, header::CONTENT_LANGUAGE), "fr");
    assert!(html.contains(">Expédié</p>"), "the status in French");
    assert!(html.contains("Envoi <span class=\"ref\">LOAD-I18N</span>"));
    assert!(html.contains("25 nov. 08:00–10:00 EST"), "{html}");
    assert!(html.contains("<title>Envoi LOAD-I18N · Expédié</title>"));
}

#[tokio::test]
async fn an_unknown_language_falls_back_to_english_on_a_12_hour_clock() {
    let t = test_app().await;
    let code = dispatched_order(&t).await;
    for (query, accept) in [
        ("?lang=de", None),
        ("?lang=xx", Some("de-DE, ja;q=0.5")),
        ("", None),
    ] {
        let reply = page(&t, &code, query, accept).await;
        assert_eq!(reply.status, StatusCode::OK);
        let html = &reply.text;
        assert!(
            html.starts_with("<!doctype html><html lang=\"en\">"),
            "{query}"
        );
        assert_eq!(header_of(&reply, header::CONTENT_LANGUAGE), "en");
        assert!(html.contains(">Dispatched</p>"));
        assert!(html.contains("Nov 25, 8:00 AM – 10:00 AM EST"), "{html}");
    }
    // A Mexican Spanish browser that names no other language gets Spanish.
    let reply = page(&t, &code, "", Some("es-MX")).await;
    assert!(reply.text.contains(">Despachado</p>"));
}

#[tokio::test]
async fn error_pages_speak_the_language_and_the_json_api_does_not_change() {
    let t = test_app().await;
    let code = dispatched_order(&t).await;
    let missing = "a".repeat(code.len());
    let spanish = page(&t, &missing, "?lang=es", None).await;
    assert_eq!(spanish.status, StatusCode::NOT_FOUND);
    assert!(spanish.text.contains("<html lang=\"es\">"));
    assert!(
        spanish
            .text
            .contains("<h1>Enlace de seguimiento no encontrado</h1>")
    );
    assert_eq!(header_of(&spanish, header::CONTENT_LANGUAGE), "es");
    // Unknown and malformed links: the same bytes in one language.
    let malformed = page(&t, "nope", "?lang=es", None).await;
    assert_eq!(malformed.text, spanish.text);
    let french = page(&t, &missing, "", Some("fr")).await;
    assert!(french.text.contains("Lien de suivi introuvable"));

    let english = call(
        &t.app,
        Method::GET,
        &format!("/api/v1/track/{code}"),
        None,
        None,
    )
    .await;
    let request = Request::builder()
        .uri(format!("/api/v1/track/{code}?lang=es"))
        .header(header::ACCEPT_LANGUAGE, "es")
        .body(Body::empty())
        .expect("request");
    let asked_spanish = send(&t.app, request).await;
    assert_eq!(asked_spanish.status, StatusCode::OK);
    assert_eq!(english.json["status_label"], "Dispatched");
    assert_eq!(
        english.json["stops"][0]["window"]["local"],
        asked_spanish.json["stops"][0]["window"]["local"],
        "the JSON is the same in every language"
    );
    assert_eq!(asked_spanish.json["status_label"], "Dispatched");
}
