//! `tracker route` on a snapshot built by `tracker graph build`, which carries the
//! truck router's preparation: the same answer as on the PBF, with no notice; a
//! snapshot without the preparation still routes, with a notice saying how to get
//! it; a damaged preparation, one spliced from another map, a file cut short or
//! one of an older format is refused with exit code 2 and a line naming the
//! file.

use crate::cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Monaco-Ville (the palace square) and Monte-Carlo (the casino).
const PALACE: &str = "43.7311,7.4197";
const CASINO: &str = "43.7396,7.4277";
/// Fixed part of a snapshot's header before the graph: magic, version, byte
/// order mark, payload length (at 16..24), checksum, four zero bytes.
const HEADER_LEN: usize = 32;

fn osm(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/osm")
        .join(name)
}

fn tracker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(args)
        .output()
        .expect("tracker runs")
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("a utf-8 path")
}

fn build(name: &str, out: &Path) {
    let pbf = osm(name);
    let built = tracker(&["graph", "build", "--osm", utf8(&pbf), "--out", utf8(out)]);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert!(stderr.contains("prepared the truck router"), "{stderr}");
}

fn route(map: &Path) -> Output {
    tracker(&[
        "route",
        "--map",
        utf8(map),
        "--from",
        PALACE,
        "--to",
        CASINO,
        "--json",
    ])
}

/// Where the graph ends and the sections begin (blocks start at multiples of
/// eight bytes).
fn graph_end(bytes: &[u8]) -> usize {
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("eight bytes"));
    (HEADER_LEN + usize::try_from(len).expect("fits")).next_multiple_of(8)
}

#[test]
fn a_snapshot_routes_as_its_pbf_with_or_without_the_preparation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("monaco.graph");
    build("monaco.osm.pbf", &snapshot);

    let from_pbf = route(&osm("monaco.osm.pbf"));
    assert!(from_pbf.status.success());
    let prepared = route(&snapshot);
    assert!(
        prepared.status.success(),
        "{}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    assert!(
        prepared.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    assert_eq!(prepared.stdout, from_pbf.stdout);

    // The same graph without its sections.
    let bytes = std::fs::read(&snapshot).expect("reads");
    let bare = dir.path().join("bare.graph");
    std::fs::write(&bare, &bytes[..graph_end(&bytes)]).expect("writes");
    let built = route(&bare);
    assert!(built.status.success());
    assert_eq!(built.stdout, from_pbf.stdout);
    let notice = String::from_utf8_lossy(&built.stderr);
    assert!(
        notice.contains("bare.graph: the snapshot has no router preparation")
            && notice.contains("tracker graph build"),
        "{notice}"
    );
}

#[test]
fn a_damaged_or_foreign_preparation_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let monaco = dir.path().join("monaco.graph");
    let harrisburg = dir.path().join("harrisburg.graph");
    build("monaco.osm.pbf", &monaco);
    build("harrisburg.osm.pbf", &harrisburg);
    let monaco_bytes = std::fs::read(&monaco).expect("reads");

    let mut damaged = monaco_bytes.clone();
    let at = damaged.len() - 100;
    damaged[at] ^= 0x10;
    let damaged_path = dir.path().join("damaged.graph");
    std::fs::write(&damaged_path, &damaged).expect("writes");
    cli_support::assert_refused(
        &route(&damaged_path),
        "a flipped bit in the preparation",
        "damaged.graph: corrupt snapshot (section `ROUTER`: checksum mismatch)",
    );

    // A snapshot of the format before arrays were aligned in the file.
    let mut old = monaco_bytes.clone();
    old[8..12].copy_from_slice(&3u32.to_le_bytes());
    let old_path = dir.path().join("old.graph");
    std::fs::write(&old_path, &old).expect("writes");
    cli_support::assert_refused(
        &route(&old_path),
        "a snapshot of format version 3",
        "old.graph: snapshot format version 3, this build reads version 4; rebuild it with `tracker graph build`",
    );

    // Cut short: the file ends inside the preparation.
    let cut_path = dir.path().join("cut.graph");
    std::fs::write(&cut_path, &monaco_bytes[..monaco_bytes.len() - 1000]).expect("writes");
    let out = route(&cut_path);
    assert_eq!(out.status.code(), Some(2), "a cut snapshot");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.graph: corrupt snapshot (") && stderr.contains("truncated?"),
        "{stderr}"
    );

    // Monaco's graph with Harrisburg's preparation: every checksum holds.
    let harrisburg_bytes = std::fs::read(&harrisburg).expect("reads");
    let mut spliced = monaco_bytes[..graph_end(&monaco_bytes)].to_vec();
    spliced.extend_from_slice(&harrisburg_bytes[graph_end(&harrisburg_bytes)..]);
    let spliced_path = dir.path().join("spliced.graph");
    std::fs::write(&spliced_path, &spliced).expect("writes");
    let out = route(&spliced_path);
    cli_support::assert_refused(
        &out,
        "a preparation for another graph",
        "spliced.graph: the stored router preparation was made for another graph",
    );
}
