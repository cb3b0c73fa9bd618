//! What the CLI tests check of a refused input: exit status 2, nothing on
//! stdout, and on stderr one line that starts with `error: ` and says why.

#![allow(unreachable_pub)]

use std::process::Output;

/// `out` is a refusal whose one line of stderr contains `expected`; `what`
/// names the invocation in failure messages.
pub fn assert_refused(out: &Output, what: &str, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    assert!(stderr.contains(expected), "{what}: {stderr}");
    assert!(out.stdout.is_empty(), "{what}");
}
