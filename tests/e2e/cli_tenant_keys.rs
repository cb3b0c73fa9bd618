//! `tracker tenant key create|list|revoke` (issue 17): a round trip through the
//! CLI on one SQLite store. The new key is printed once, listings show its
//! prefix and never the key, a revoked key no longer authenticates, and bad
//! input (an unknown tenant, scope or key) is a one-line error with exit 2.

use crate::cli_support;

use std::path::Path;
use std::process::{Command, Output};

use cli_support::assert_refused;
use serde_json::{Value, json};

const TRACKER: &str = env!("CARGO_BIN_EXE_tracker");

fn tracker(dir: &Path, args: &[&str]) -> Output {
    Command::new(TRACKER)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("tracker runs")
}

fn tracker_json(dir: &Path, args: &[&str]) -> Value {
    let out = tracker(dir, args);
    assert!(
        out.status.success(),
        "tracker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Whether `key` authenticates against the store right now.
fn authenticates(store: &str, key: &str) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = portal_api::open_store(store).await.expect("store");
        store
            .authenticate(portal_api::secret_hash(key))
            .await
            .expect("reads")
            .is_some()
    })
}

#[test]
fn keys_are_created_listed_and_revoked_from_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("keys.db").display());
    let tenant = tracker_json(
        dir.path(),
        &["tenant", "create", "Key Brokerage", "--store", &store],
    );
    let tenant_id = tenant["tenant_id"].as_str().expect("tenant id");
    let first_key = tenant["api_key"].as_str().expect("api key");

    let made = tracker_json(
        dir.path(),
        &[
            "tenant",
            "key",
            "create",
            tenant_id,
            "--name",
            "eld feed",
            "--scopes",
            "positions",
            "--store",
            &store,
        ],
    );
    let key = made["api_key"].as_str().expect("the key, shown once");
    assert!(key.starts_with(portal_api::API_KEY_PREFIX));
    assert_eq!(made["name"], "eld feed");
    assert_eq!(made["scopes"], json!(["positions"]));
    assert_eq!(made["prefix"].as_str(), Some(&key[..12]));
    let key_id = made["id"].as_str().expect("key id");
    assert!(authenticates(&store, key));

    // Without --scopes: everything but key management.
    let plain = tracker_json(
        dir.path(),
        &[
            "tenant", "key", "create", tenant_id, "--name", "dispatch", "--store", &store,
        ],
    );
    assert_eq!(plain["scopes"], json!(["orders", "positions", "read"]));

    let out = tracker(
        dir.path(),
        &["tenant", "key", "list", tenant_id, "--store", &store],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(key) && !text.contains(first_key),
        "a listing shows a key: {text}"
    );
    let listed: Value = serde_json::from_str(&text).expect("JSON");
    let names: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|k| k["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["default", "eld feed", "dispatch"]);
    assert_eq!(
        listed[0]["scopes"],
        json!(["orders", "positions", "read", "admin"])
    );
    assert_eq!(listed[1]["prefix"], made["prefix"]);
    assert!(listed[1]["revoked_at"].is_null());

    let revoked = tracker_json(
        dir.path(),
        &[
            "tenant", "key", "revoke", tenant_id, key_id, "--store", &store,
        ],
    );
    assert!(revoked["revoked_at"].is_string());
    assert!(
        !authenticates(&store, key),
        "a revoked key still authenticates"
    );
    assert!(
        authenticates(&store, first_key),
        "the other keys still work"
    );
    let listed = tracker_json(
        dir.path(),
        &["tenant", "key", "list", tenant_id, "--store", &store],
    );
    assert_eq!(listed[1]["revoked_at"], revoked["revoked_at"]);
}

#[test]
fn bad_key_commands_exit_with_code_2_and_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("keys.db").display());
    let tenant = tracker_json(
        dir.path(),
        &["tenant", "create", "Key Brokerage", "--store", &store],
    );
    let tenant_id = tenant["tenant_id"].as_str().expect("tenant id");

    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "tenant",
                "key",
                "create",
                "ten_nosuchtenant",
                "--name",
                "x",
                "--store",
                &store,
            ],
            "no tenant `ten_nosuchtenant`",
        ),
        (
            &[
                "tenant",
                "key",
                "create",
                tenant_id,
                "--name",
                "x",
                "--scopes",
                "orders,write",
                "--store",
                &store,
            ],
            "unknown scope `write`",
        ),
        (
            &[
                "tenant", "key", "create", tenant_id, "--name", " ", "--store", &store,
            ],
            "`name`",
        ),
        (
            &[
                "tenant",
                "key",
                "list",
                "ten_nosuchtenant",
                "--store",
                &store,
            ],
            "no tenant `ten_nosuchtenant`",
        ),
        (
            &[
                "tenant",
                "key",
                "revoke",
                tenant_id,
                "key_nosuchkey",
                "--store",
                &store,
            ],
            "no API key `key_nosuchkey`",
        ),
    ];
    for (args, expected) in cases {
        let out = tracker(dir.path(), args);
        assert_refused(&out, &format!("{args:?}"), expected);
    }
}
