//! The snapshot format's own scenarios: sections written and read back (as
//! bytes or claimed by their owner while loading, borrowed from the mapped
//! file), damage, truncation and old versions found and named.

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

    // A count damaged on disk is a checksum mismatch, not a short array. (The
    // section is the last block, padded to a multiple of 8 bytes.)
    let mut bytes = std::fs::read(&path).expect("reads");
    let count_at = bytes.len() - arrays.len().next_multiple_of(8);
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

/// Versions 2 and 3 stored arrays unaligned: they cannot be mapped in place,
/// so they are refused with the advice to rebuild (issue 21, item 6).
#[test]
fn an_older_version_is_refused_with_the_advice_to_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    save_snapshot(&tiny(), &[], &path).expect("saves");
    let mut bytes = std::fs::read(&path).expect("reads");
    for version in [2u32, 3, 9] {
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        std::fs::write(&path, &bytes).expect("writes");
        let err = load_snapshot(&path).expect_err("another version");
        assert!(matches!(err, Error::SnapshotVersion { found, .. } if found == version));
        assert!(
            err.to_string().contains(&format!(
                "snapshot format version {version}, this build reads version 4; rebuild it with `tracker graph build`"
            )),
            "{err}"
        );
    }
}

/// The claimed section's arrays are borrowed from the mapped file, not
/// copied, and read back as written; a change copies them first.
#[test]
fn a_mapped_snapshot_round_trips_and_lends_its_arrays() {
    let graph = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    // Arrays of 1, 2, 8 and 16 bytes per item, each after an odd number of
    // bytes: every one must still land aligned in the file.
    let mut arrays = Vec::new();
    put_array(&mut arrays, &[1u8, 2, 3]);
    put_array(&mut arrays, &[4u16]);
    put_array(&mut arrays, &[5u64, 6]);
    put_array(&mut arrays, &[[7u32, 8, 9, 10]]);
    let written = [
        section(b"ODD\0\0\0\0\0", b"abc"),
        section(b"ROUTER\0\0", &arrays),
    ];
    save_snapshot(&graph, &written, &path).expect("saves");
    assert_eq!(std::fs::metadata(&path).expect("written").len() % 8, 0);

    type Four = (Array<u8>, Array<u16>, Array<u64>, Array<[u32; 4]>);
    let four = |r: &mut SectionReader<'_>| -> Result<Four, String> {
        let read = (
            r.take_array()?,
            r.take_array()?,
            r.take_array()?,
            r.take_array()?,
        );
        if r.is_empty() {
            Ok(read)
        } else {
            Err("bytes after the last array".into())
        }
    };
    let (loaded, claimed) = load_snapshot_claiming(&path, *b"ROUTER\0\0", four).expect("loads");
    assert!(loaded.graph == graph);
    let (bytes, halves, words, mut rows) = claimed.expect("stored").expect("reads");
    assert!(bytes.is_mapped() && halves.is_mapped() && words.is_mapped() && rows.is_mapped());
    assert_eq!(
        (&*bytes, &*halves, &*words),
        (&[1u8, 2, 3][..], &[4u16][..], &[5u64, 6][..])
    );
    assert_eq!(*rows, [[7, 8, 9, 10]]);
    assert_eq!(rows.heap_bytes(), 0, "nothing is copied");
    assert_eq!(loaded.sections.get(b"ODD\0\0\0\0\0"), Some(&b"abc"[..]));

    // A change copies the array first; the file is untouched.
    rows.to_mut()[0][0] = 70;
    assert!(!rows.is_mapped());
    assert_eq!(*rows, [[70, 8, 9, 10]]);
    drop(loaded);
    let (_, again) = load_snapshot_claiming(&path, *b"ROUTER\0\0", four).expect("loads");
    assert_eq!(*again.expect("stored").expect("reads").3, [[7, 8, 9, 10]]);
}

/// A flipped byte anywhere in the graph is a checksum mismatch.
#[test]
fn a_flipped_byte_in_the_graph_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    save_snapshot(&tiny(), &[section(b"ROUTER\0\0", &[5; 24])], &path).expect("saves");
    let good = std::fs::read(&path).expect("reads");
    let payload_len = good.len() - HEADER_LEN - SECTION_HEADER_LEN - 24;
    for at in [
        HEADER_LEN + 9,
        HEADER_LEN + payload_len / 2,
        HEADER_LEN + payload_len - 9,
    ] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x04;
        std::fs::write(&path, &bytes).expect("writes");
        let err = load_snapshot(&path).expect_err("a flipped byte");
        assert!(
            err.to_string()
                .contains("corrupt snapshot (checksum mismatch)"),
            "byte {at}: {err}"
        );
    }
}

/// A file cut anywhere is refused with a reason, never read past its end.
#[test]
fn a_truncated_file_is_refused_wherever_it_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.graph");
    save_snapshot(&tiny(), &[section(b"ROUTER\0\0", &[5; 21])], &path).expect("saves");
    let good = std::fs::read(&path).expect("reads");
    // The last section: its header, its 21 bytes, then 3 of padding.
    let section_at = good.len() - 24 - SECTION_HEADER_LEN;
    for (cut, reason) in [
        (0, "not a tracker graph snapshot"),
        (HEADER_LEN - 1, "not a tracker graph snapshot"),
        (HEADER_LEN + 5, "truncated?"),
        (section_at + 4, "file ends inside a section header"),
        (
            section_at + SECTION_HEADER_LEN + 20,
            "section `ROUTER` says 21 bytes",
        ),
        (good.len() - 1, "file ends inside the padding"),
    ] {
        std::fs::write(&path, &good[..cut]).expect("writes");
        let err = load_snapshot(&path).expect_err("a cut file");
        assert!(err.to_string().contains(reason), "cut at {cut}: {err}");
    }
    // Padding that is not zero is damage too (no checksum covers it).
    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] = 1;
    std::fs::write(&path, &bytes).expect("writes");
    let err = load_snapshot(&path).expect_err("dirty padding");
    assert!(
        err.to_string()
            .contains("padding between blocks is not zero"),
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
