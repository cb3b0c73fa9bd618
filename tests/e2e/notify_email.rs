//! Milestone e-mails end to end (issue 19): `tracker serve --smtp` against a
//! real SMTP server (aiosmtpd, `tests/smtp_sink.py`, which writes every
//! message it accepts to a folder). A dispatched order mails its customer
//! once, with a tracking link that works; a kill -9 after the send and a
//! restart send nothing again; a kill -9 inside the send (the server has the
//! message, its `250` not yet given) and a restart mark it failed as
//! interrupted, never resent; a one-click unsubscribe stops the next
//! milestone's e-mail; a server that is down, then refuses with 451, is
//! retried until it takes the message. The e-mail carries the carrier's
//! brand (name, colour, logo link, support contact).
//!
//! Without Python's aiosmtpd the tests are skipped, or fail when `CI` is set.

use crate::portal_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portal_support::*;
use serde_json::{Value, json};

const MAIL_FROM: &str = "Acme Freight <dispatch@acme.test>";
const CUSTOMER: &str = "receiving@customer.test";

/// A Python that can import aiosmtpd: the default one, else Debian's.
fn python_with_aiosmtpd() -> Option<&'static str> {
    let found = ["python3", "/usr/bin/python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    service_available("Python with aiosmtpd (python3-aiosmtpd)", found.is_some()).then_some(found?)
}

/// A running `tests/smtp_sink.py`, killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    fn start(python: &str, dir: &Path, port: u16, options: &[&str]) -> SmtpSink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(dir)
            .args(["--port", &port.to_string()])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP sink starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sink says it is ready");
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink could not start: {line:?}"));
        SmtpSink {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn messages(&self) -> Vec<Value> {
        messages_in(&self.dir)
    }
}

fn messages_in(dir: &Path) -> Vec<Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("message")).expect("JSON"))
        .collect()
}

/// Waits until `dir` holds `n` messages; returns them.
async fn wait_for_messages(dir: &Path, n: usize, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let messages = messages_in(dir);
        if messages.len() >= n || Instant::now() > deadline {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn serve_with_smtp(dir: &Path, store: &str, smtp_port: u16, extra: &[&str]) -> Server {
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let mut args = vec!["--store", store, "--smtp", &smtp, "--mail-from", MAIL_FROM];
    args.extend_from_slice(extra);
    Server::start(dir, &args, 0)
}

async fn create_rule(base: &str, key: &str, body: Value) -> Value {
    let reply = client()
        .post(format!("{base}/api/v1/notification-rules"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("create rule");
    assert_eq!(reply.status(), 201);
    reply.json().await.expect("rule JSON")
}

/// Creates an order for the customer; returns its JSON (with the tracking code).
async fn create_order(base: &str, key: &str, reference: &str) -> Value {
    let reply = client()
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(key)
        .json(&json!({
            "reference": reference,
            "customer": {"name": "Receiver Inc", "email": CUSTOMER},
            "stops": [
                {"kind": "pickup", "name": "Key Highway Warehouse", "lat": 39.2770, "lon": -76.6080,
                 "time_zone": "America/New_York",
                 "window": {"from": "2025-11-25T13:00:00Z", "to": "2025-11-25T15:00:00Z"}},
                {"kind": "delivery", "name": "Canton Crossing", "lat": 39.2760, "lon": -76.5700,
                 "time_zone": "America/New_York",
                 "window": {"from": "2025-11-25T18:00:00Z", "to": "2025-11-25T20:00:00Z"}}
            ]
        }))
        .send()
        .await
        .expect("create order");
    assert_eq!(reply.status(), 201);
    reply.json().await.expect("order JSON")
}

async fn set_status(base: &str, key: &str, order: &str, status: &str) {
    let reply = client()
        .post(format!("{base}/api/v1/orders/{order}/status"))
        .bearer_auth(key)
        .json(&json!({"status": status}))
        .send()
        .await
        .expect("status");
    assert_eq!(reply.status(), 201, "{status}");
}

async fn notifications(base: &str, key: &str, order: &str) -> Vec<Value> {
    let reply: Value = client()
        .get(format!("{base}/api/v1/orders/{order}/notifications"))
        .bearer_auth(key)
        .send()
        .await
        .expect("notifications")
        .json()
        .await
        .expect("JSON");
    reply["notifications"].as_array().expect("a list").clone()
}

/// Polls the order's notifications until `done` holds for them.
async fn wait_for_notifications(
    base: &str,
    key: &str,
    order: &str,
    timeout: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let list = notifications(base, key, order).await;
        if done(&list) || Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// On PostgreSQL (`--store postgres://…`) the same deliverer runs on the
/// same rows: a dispatch mails the customer once, recorded as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatched_order_mails_its_customer_on_postgres() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let Some(schema) = store::testing::PgSchema::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mail_dir = dir.path().join("mail");
    let sink = SmtpSink::start(python, &mail_dir, 0, &[]);
    let key = create_tenant(dir.path(), &schema.url, "Acme Freight");
    // The key that seals tracking codes lives beside a SQLite file; with
    // PostgreSQL the operator names its file.
    let key_file = dir.path().join("notify.key");
    let key_file = key_file.to_str().expect("a UTF-8 path");
    let server = serve_with_smtp(
        dir.path(),
        &schema.url,
        sink.port,
        &["--notify-key-file", key_file],
    );
    let base = server.base_url.clone();
    create_rule(
        &base,
        &key,
        json!({"event": "dispatched", "channel": "email", "recipients": ["customer"]}),
    )
    .await;
    let order = create_order(&base, &key, "LOAD-PG-MAIL").await;
    let id = order["id"].as_str().expect("id").to_owned();
    set_status(&base, &key, &id, "dispatched").await;

    let messages = wait_for_messages(&mail_dir, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1, "one e-mail for the dispatch");
    assert_eq!(messages[0]["rcpt_to"], json!([CUSTOMER]));
    assert_eq!(
        messages[0]["subject"],
        "Shipment LOAD-PG-MAIL is dispatched"
    );
    let list = wait_for_notifications(&base, &key, &id, Duration::from_secs(5), |l| {
        l.first().is_some_and(|n| n["state"] == "sent")
    })
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["attempt_log"][0]["outcome"], "sent");
    assert_eq!(sink.messages().len(), 1, "sent once");
    drop(server);
    schema.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatched_order_mails_its_customer_once_and_unsubscribe_stops_the_next() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mail_dir = dir.path().join("mail");
    let sink = SmtpSink::start(python, &mail_dir, 0, &[]);
    let store = sqlite_url(dir.path(), "mail.db");
    let key = create_tenant(dir.path(), &store, "Acme Freight");
    let server = serve_with_smtp(dir.path(), &store, sink.port, &[]);
    let base = server.base_url.clone();
    // The carrier's brand, which its e-mails carry.
    let brand = json!({"display_name": "Acme Freight Lines", "primary_color": "#0b3d91",
        "support_phone": "+1 555 010 0199", "support_email": "help@acme.test",
        "support_url": "https://acme.test/help"});
    put_branding(
        &base,
        &key,
        "",
        "application/json",
        brand.to_string().into_bytes(),
    )
    .await;
    put_branding(&base, &key, "/logo", "image/png", png_header(120, 40)).await;

    create_rule(
        &base,
        &key,
        json!({"event": "dispatched", "channel": "email", "recipients": ["customer"]}),
    )
    .await;
    create_rule(
        &base,
        &key,
        json!({"event": "picked_up", "recipients": ["customer"]}),
    )
    .await;
    let order = create_order(&base, &key, "LOAD-MAIL-1").await;
    let id = order["id"].as_str().expect("id").to_owned();
    let tracking_url = order["tracking_url"].as_str().expect("url").to_owned();
    set_status(&base, &key, &id, "dispatched").await;

    let messages = wait_for_messages(&mail_dir, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1, "one e-mail for the dispatch");
    let mail = &messages[0];
    assert_eq!(mail["rcpt_to"], json!([CUSTOMER]));
    assert_eq!(mail["from"], MAIL_FROM);
    assert_eq!(mail["subject"], "Shipment LOAD-MAIL-1 is dispatched");
    let text = mail["text"].as_str().expect("a plain-text part");
    assert!(
        text.contains(&format!("Track it live: {tracking_url}")),
        "{text}"
    );
    assert!(text.contains("Hello Receiver Inc,"), "{text}");
    // The window in the stop's own time zone (13:00Z is 08:00 in Baltimore).
    assert!(text.contains("Tue 25 Nov 2025, 08:00–10:00 EST"), "{text}");
    let html = mail["html"].as_str().expect("an HTML part");
    assert!(
        html.contains(&format!("<a href=\"{tracking_url}\">")),
        "{html}"
    );
    // The brand: the name and the support contact in both parts, the colour
    // and the logo (its public URL under the tracking link) in the HTML.
    for part in [text, html] {
        for shown in ["Acme Freight Lines", "help@acme.test", "+1 555 010 0199"] {
            assert!(part.contains(shown), "{shown} in {part}");
        }
        assert!(part.contains("https://acme.test/help"), "{part}");
    }
    assert!(html.contains("background: #0b3d91"), "{html}");
    assert!(html.contains("href=\"tel:+15550100199\""), "{html}");
    assert!(html.contains("href=\"mailto:help@acme.test\""), "{html}");
    let logo_url = html
        .split(&format!("src=\"{tracking_url}/logo?v="))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|version| format!("{tracking_url}/logo?v={version}"))
        .expect("the logo, linked under the tracking link");
    let logo = client().get(&logo_url).send().await.expect("logo");
    assert_eq!(logo.status(), 200, "{logo_url}");
    assert!(
        mail["message_id"]
            .as_str()
            .is_some_and(|m| m.ends_with("@acme.test>"))
    );
    assert_eq!(mail["list_unsubscribe_post"], "List-Unsubscribe=One-Click");
    let unsubscribe = mail["list_unsubscribe"]
        .as_str()
        .and_then(|h| h.strip_prefix('<')?.strip_suffix('>'))
        .expect("List-Unsubscribe: <URL>")
        .to_owned();
    assert!(
        unsubscribe.starts_with(&format!("{base}/unsubscribe/")),
        "{unsubscribe}"
    );

    // The link in the e-mail is the order's live page.
    let page = client().get(&tracking_url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("LOAD-MAIL-1"));

    let list = wait_for_notifications(&base, &key, &id, Duration::from_secs(5), |l| {
        l.first().is_some_and(|n| n["state"] == "sent")
    })
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["recipient"], CUSTOMER);
    assert_eq!(list[0]["event"], "dispatched");
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["attempt_log"][0]["outcome"], "sent");

    // kill -9 after the send and a restart: nothing is sent again.
    drop(server);
    let server = serve_with_smtp(dir.path(), &store, sink.port, &[]);
    let base = server.base_url.clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "a restart sends nothing twice");

    // Looking at the unsubscribe page unsubscribes nobody; posting it does.
    let unsubscribe = unsubscribe.replace(&url_origin(&unsubscribe), &base);
    let looked = client().get(&unsubscribe).send().await.expect("GET");
    assert_eq!(looked.status(), 200);
    assert!(looked.text().await.expect("page").contains("Unsubscribe?"));
    let posted = client()
        .post(&unsubscribe)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status(), 200);
    assert!(
        posted
            .text()
            .await
            .expect("page")
            .contains("You are unsubscribed")
    );

    set_status(&base, &key, &id, "at_pickup").await;
    set_status(&base, &key, &id, "picked_up").await;
    let list = wait_for_notifications(&base, &key, &id, Duration::from_secs(10), |l| {
        l.iter()
            .any(|n| n["event"] == "picked_up" && n["state"] != "pending")
    })
    .await;
    let picked_up = list
        .iter()
        .find(|n| n["event"] == "picked_up")
        .expect("the picked_up message");
    assert_eq!(picked_up["state"], "suppressed", "{picked_up}");
    assert_eq!(picked_up["last_error"], "the recipient unsubscribed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing more reached the unsubscribed customer"
    );
}

/// Sets the tenant's branding (`suffix` "" for the fields, "/logo" for the logo).
async fn put_branding(base: &str, key: &str, suffix: &str, content_type: &str, body: Vec<u8>) {
    let reply = client()
        .put(format!("{base}/api/v1/branding{suffix}"))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("PUT answers");
    assert!(reply.status().is_success(), "{suffix}: {}", reply.status());
}

/// The start of a PNG file (signature and header chunk): what the logo check
/// reads; the e-mail only links the logo, so no pixels are needed.
fn png_header(width_px: u32, height_px: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(b"IHDR");
    out.extend_from_slice(&width_px.to_be_bytes());
    out.extend_from_slice(&height_px.to_be_bytes());
    out.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    out
}

fn url_origin(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    format!("http://{}", rest.split('/').next().expect("host"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_then_refuses_is_retried_until_it_takes_the_message() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mail_dir = dir.path().join("mail");
    let store = sqlite_url(dir.path(), "retry.db");
    let key = create_tenant(dir.path(), &store, "Acme Freight");
    let smtp_port = free_port();
    // Nothing listens on the SMTP port yet.
    let server = serve_with_smtp(dir.path(), &store, smtp_port, &[]);
    let base = server.base_url.clone();
    create_rule(
        &base,
        &key,
        json!({"event": "dispatched", "recipients": ["customer"], "addresses": ["ops@acme.test"]}),
    )
    .await;
    let order = create_order(&base, &key, "LOAD-RETRY-1").await;
    let id = order["id"].as_str().expect("id").to_owned();
    set_status(&base, &key, &id, "dispatched").await;

    let list = wait_for_notifications(&base, &key, &id, Duration::from_secs(10), |l| {
        l.len() == 2
            && l.iter()
                .all(|n| n["attempts"].as_u64() >= Some(1) && n["state"] == "pending")
    })
    .await;
    assert_eq!(list.len(), 2, "one message per recipient: {list:?}");
    for n in &list {
        assert_eq!(n["state"], "pending", "{n}");
        assert!(
            n["last_error"].as_str().is_some(),
            "the refused connection is recorded: {n}"
        );
        assert_eq!(n["attempt_log"][0]["outcome"], "retry");
    }

    // The server comes up, answers the first message 451, then takes them.
    let sink = SmtpSink::start(python, &mail_dir, smtp_port, &["--refuse-first", "1"]);
    let messages = wait_for_messages(&mail_dir, 2, Duration::from_secs(40)).await;
    assert_eq!(messages.len(), 2, "both recipients got it in the end");
    let list = wait_for_notifications(&base, &key, &id, Duration::from_secs(5), |l| {
        l.iter().all(|n| n["state"] == "sent")
    })
    .await;
    assert!(list.iter().all(|n| n["state"] == "sent"), "{list:?}");
    let attempts: u64 = list
        .iter()
        .map(|n| n["attempts"].as_u64().expect("n"))
        .sum();
    assert!(
        attempts >= 5,
        "refused connections, one 451, two successes: {list:?}"
    );
    assert!(
        list.iter().any(|n| n["attempt_log"]
            .as_array()
            .expect("log")
            .iter()
            .any(|a| a["detail"].as_str().is_some_and(|d| d.contains("451")))),
        "the 451 is in the attempt log: {list:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), 2, "and nobody got it twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_inside_the_send_is_never_followed_by_a_second_send() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mail_dir = dir.path().join("mail");
    // The server keeps each message, then holds its `250` for 5 s.
    let sink = SmtpSink::start(python, &mail_dir, 0, &["--hold-reply-s", "5"]);
    let store = sqlite_url(dir.path(), "kill.db");
    let key = create_tenant(dir.path(), &store, "Acme Freight");
    let lease = ["--notify-lease-s", "4"];
    let server = serve_with_smtp(dir.path(), &store, sink.port, &lease);
    let base = server.base_url.clone();
    create_rule(
        &base,
        &key,
        json!({"event": "dispatched", "recipients": ["customer"]}),
    )
    .await;
    let order = create_order(&base, &key, "LOAD-KILL-1").await;
    let id = order["id"].as_str().expect("id").to_owned();
    set_status(&base, &key, &id, "dispatched").await;

    let messages = wait_for_messages(&mail_dir, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1, "the server has the message");
    // kill -9 while the server holds its answer: the row stays `sending`.
    drop(server);
    let server = serve_with_smtp(dir.path(), &store, sink.port, &lease);
    let base = server.base_url.clone();
    let list = wait_for_notifications(&base, &key, &id, Duration::from_secs(15), |l| {
        l.first().is_some_and(|n| n["state"] != "sending")
    })
    .await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "failed", "{list:?}");
    assert!(
        list[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("interrupted")),
        "{list:?}"
    );
    assert_eq!(list[0]["attempt_log"][0]["outcome"], "interrupted");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(sink.messages().len(), 1, "never sent a second time");
}

#[test]
fn smtp_flags_are_checked_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_url(dir.path(), "flags.db");
    for (args, says) in [
        (vec!["--smtp", "smtp://127.0.0.1:2525"], "--mail-from"),
        (
            vec![
                "--smtp",
                "smtp://user:hunter2@127.0.0.1:2525",
                "--mail-from",
                MAIL_FROM,
            ],
            "TRACKER_SMTP_USER",
        ),
        (
            vec!["--smtp", "ftp://127.0.0.1", "--mail-from", MAIL_FROM],
            "smtp",
        ),
        (
            vec!["--smtp", "smtp://127.0.0.1:2525", "--mail-from", "nobody"],
            "mail_from",
        ),
    ] {
        let out = Command::new(TRACKER)
            .current_dir(dir.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--demo",
                "0",
                "--store",
                &store,
            ])
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the password is never echoed: {stderr}"
        );
    }
}
