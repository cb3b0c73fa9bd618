//! `tracker serve` with a store it cannot open (issue 17: a database I/O
//! failure at start exited 2, "bad input"): the URL was fine, the environment
//! was not, so the exit code is 1 and stderr says why; a URL the binary cannot
//! use stays bad input (2).

use crate::cli_support;

use std::process::{Command, Output};

fn serve_with_store(store: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args([
            "serve",
            "--store",
            store,
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "0",
        ])
        .output()
        .expect("runs")
}

/// Exit 1 with one `error: ` line on stderr that contains `expected`.
fn assert_failed(out: &Output, what: &str, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{what}: {stderr}");
    assert!(last.contains(expected), "{what}: {stderr}");
}

#[test]
fn a_file_that_is_not_a_database_exits_1_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "not a database at all\n".repeat(200)).expect("written");
    let out = serve_with_store(&format!("sqlite://{}", path.display()));
    assert_failed(&out, "a text file as the store", "not a database");
}

#[test]
fn a_store_under_a_plain_file_exits_1_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("written");
    let out = serve_with_store(&format!("sqlite://{}/x.db", file.display()));
    assert_failed(&out, "a store under a file", "unable to open database file");
}

#[test]
fn a_store_url_the_binary_cannot_use_is_still_bad_input() {
    let out = serve_with_store("mysql://db.example/x");
    cli_support::assert_refused(&out, "an unknown store scheme", "unknown store URL");
}

/// `serve --config FILE` (issue 22): the file's settings are checked like flags.
/// Here the file names a store that is not a database; that the run fails on
/// that file, with exit 1, shows the file's `store` was used.
#[test]
fn a_config_file_sets_serve_flags_and_its_mistakes_are_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("notes.db");
    std::fs::write(&db, "not a database at all\n".repeat(200)).expect("written");
    let config = dir.path().join("tracker.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"sqlite://{}\"\nlisten = \"127.0.0.1:0\"\ndemo = 0\n",
            db.display()
        ),
    )
    .expect("written");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tracker"))
            .arg("serve")
            .args(extra)
            .arg("--config")
            .arg(&config)
            .env_remove("TRACKER_STORE")
            .env_remove("TRACKER_LISTEN")
            .output()
            .expect("runs")
    };
    assert_failed(
        &run(&[]),
        "the store from the config file",
        "not a database",
    );

    std::fs::write(&config, "max_conections = 5\n").expect("written");
    cli_support::assert_refused(
        &run(&[]),
        "a misspelt key",
        "unknown setting `max_conections`",
    );
    std::fs::write(&config, "max-connections = \"many\"\n").expect("written");
    // Checked by the flag's own parser, the error naming the file and key.
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tracker.toml") && stderr.contains("`max-connections` = many"),
        "{stderr}"
    );
}
