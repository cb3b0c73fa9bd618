//! The snapshot format's own scenarios: sections written and read back (as
//! bytes or claimed by their owner while loading), damage found and named.

use super::*;
use crate::drawn::DrawnMap;

//   a---b---c
//       |
//       d
fn tiny() -> RoadGraph {
    let mut map = DrawnMap::new("a---b---c\n\n    d", 100.0);
    map.way("abc", &[]);
    map.way("bd", &[]);
    map.build().expect("the drawing builds").0
}

fn section(tag: &[u8; 8], bytes: &[u8]) -> Section {
    Section {
        tag: *tag,
        bytes: bytes.to_vec(),
    }
}

#[test]
fn sections_come_back_as_written_and_unknown_tags_are_kept() {
    let graph = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    let mut arrays = Vec::new();
    put_array(&mut arrays, &[1u32, 2, 3]);
    put_array(&mut arrays, &[[7u32, 8]]);
    let written = [
        section(b"ROUTER\0\0", &arrays),
        section(b"OTHER\0\0\0", b""),
    ];
    save_snapshot(&graph, &written, &path).expect("saves");

    let loaded = load_snapshot(&path).expect("loads");
    assert!(loaded.graph == graph);
    let names: Vec<String> = loaded.sections.tags().map(tag_name).collect();
    assert_eq!(names, ["ROUTER", "OTHER"]);
    assert_eq!(loaded.sections.get(b"OTHER\0\0\0"), Some(&b""[..]));
    assert_eq!(loaded.sections.get(b"MISSING\0"), None);
    let mut r = SectionReader::new(loaded.sections.get(b"ROUTER\0\0").expect("stored"));
    assert_eq!(r.take::<u32>().expect("first array"), [1, 2, 3]);
    assert_eq!(r.take::<[u32; 2]>().expect("second array"), [[7, 8]]);
    assert!(r.is_empty());
    assert!(r.take::<u32>().is_err(), "nothing is left to read");
}

/// Reads the two arrays the claiming tests store.
fn two_arrays(r: &mut SectionReader<'_>) -> Result<(Vec<u32>, Vec<[u32; 2]>), String> {
    Ok((r.take()?, r.take()?))
}

#[test]
fn a_claimed_section_goes_to_its_reader_and_the_others_stay_bytes() {
    let graph = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    let mut arrays = Vec::new();
    put_array(&mut arrays, &[1u32, 2, 3]);
    put_array(&mut arrays, &[[7u32, 8]]);
    let written = [
        section(b"OTHER\0\0\0", b"kept"),
        section(b"ROUTER\0\0", &arrays),
    ];
    save_snapshot(&graph, &written, &path).expect("saves");

    let (loaded, claimed) =
        load_snapshot_claiming(&path, *b"ROUTER\0\0", two_arrays).expect("loads");
    assert!(loaded.graph == graph);
    assert_eq!(loaded.graph.index_len(), graph.index_len());
    let claimed = claimed.expect("the file has the section");
    assert_eq!(claimed, Ok((vec![1, 2, 3], vec![[7, 8]])));
    let names: Vec<String> = loaded.sections.tags().map(tag_name).collect();
    assert_eq!(names, ["OTHER", "ROUTER"], "a claimed section is listed");
    assert_eq!(loaded.sections.get(b"ROUTER\0\0"), None, "and has no bytes");
    assert_eq!(loaded.sections.get(b"OTHER\0\0\0"), Some(&b"kept"[..]));

    let (_, none) = load_snapshot_claiming(&path, *b"MISSING\0", two_arrays).expect("loads");
    assert_eq!(none, None);
}

#[test]
fn a_claimed_section_that_does_not_read_is_its_owners_error_unless_damaged() {
    let graph = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    // One array where the reader wants two: the checksum holds, the owner
    // decides what that means.
    let mut arrays = Vec::new();
    put_array(&mut arrays, &[1u32, 2, 3]);
    save_snapshot(&graph, &[section(b"ROUTER\0\0", &arrays)], &path).expect("saves");
    let (_, claimed) = load_snapshot_claiming(&path, *b"ROUTER\0\0", two_arrays).expect("loads");
    assert_eq!(
        claimed,
        Some(Err("the data ends inside an array".to_owned()))
    );

    // A count damaged on disk is a checksum mismatch, not a short array.
    let mut bytes = std::fs::read(&path).expect("reads");
    let count_at = bytes.len() - arrays.len();
    bytes[count_at + 1] ^= 0x40;
    std::fs::write(&path, &bytes).expect("writes");
    let err =
        load_snapshot_claiming(&path, *b"ROUTER\0\0", two_arrays).expect_err("a damaged count");
    assert!(
        err.to_string()
            .contains("section `ROUTER`: checksum mismatch"),
        "{err}"
    );
}

#[test]
fn a_damaged_count_in_the_graph_is_a_checksum_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    save_snapshot(&tiny(), &[], &path).expect("saves");
    let mut bytes = std::fs::read(&path).expect("reads");
    // The first array's count, just after the header: huge now.
    bytes[HEADER_LEN + 6] ^= 0x10;
    std::fs::write(&path, &bytes).expect("writes");
    let err = load_snapshot(&path).expect_err("a damaged count");
    assert!(
        err.to_string()
            .contains("corrupt snapshot (checksum mismatch)"),
        "{err}"
    );
}

#[test]
fn a_damaged_or_cut_section_is_refused_naming_it() {
    let graph = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    save_snapshot(&graph, &[section(b"ROUTER\0\0", &[5; 64])], &path).expect("saves");
    let good = std::fs::read(&path).expect("reads");

    let mut flipped = good.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x01;
    std::fs::write(&path, &flipped).expect("writes");
    let err = load_snapshot(&path).expect_err("a flipped bit in the section");
    let text = err.to_string();
    assert!(
        text.contains("tiny.graph") && text.contains("section `ROUTER`: checksum mismatch"),
        "{text}"
    );

    std::fs::write(&path, &good[..good.len() - 1]).expect("writes");
    let err = load_snapshot(&path).expect_err("a cut section");
    assert!(
        err.to_string().contains("section `ROUTER` says 64 bytes"),
        "{err}"
    );
}

#[test]
fn a_version_2_file_loads_with_no_sections_and_other_versions_are_named() {
    let graph = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    save_snapshot(&graph, &[], &path).expect("saves");
    let mut bytes = std::fs::read(&path).expect("reads");
    // Without sections, version 3 is laid out as version 2 was.
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&path, &bytes).expect("writes");
    let loaded = load_snapshot(&path).expect("a version 2 snapshot loads");
    assert!(loaded.graph == graph);
    assert_eq!(loaded.sections.tags().count(), 0);

    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&path, &bytes).expect("writes");
    let err = load_snapshot(&path).expect_err("version 9");
    assert!(
        err.to_string()
            .contains("version 9, this build reads version 3"),
        "{err}"
    );
}

#[test]
fn one_tag_twice_is_refused_when_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    let twice = [section(b"ROUTER\0\0", b"a"), section(b"ROUTER\0\0", b"b")];
    let err = save_snapshot(&tiny(), &twice, &path).expect_err("the same tag twice");
    assert!(
        err.to_string().contains("section `ROUTER` given twice"),
        "{err}"
    );
    assert!(!path.exists());
}
