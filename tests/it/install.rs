//! Installing packages: reading any rpm 4.x/6.x package and refusing
//! corrupted ones before anything is installed.

use std::path::PathBuf;

use ingot::rpm::read::verify_digests;

/// Every package under the shared fixtures, or `None` (by the skip rule)
/// when they are absent.
fn fixture_rpms() -> Option<Vec<PathBuf>> {
    let root = crate::common::shared("")?;
    Some(
        walkdir::WalkDir::new(&root)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
            .collect(),
    )
}

#[test]
fn digests_of_packages_from_other_tools_verify() {
    let Some(rpms) = fixture_rpms() else { return };
    for p in &rpms {
        verify_digests(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    assert!(rpms.len() >= 12, "{rpms:?}");
}

#[test]
fn digests_of_ingots_own_packages_verify() {
    let t = tempfile::tempdir().unwrap();
    let pkg = crate::common::build_example(t.path());
    verify_digests(&pkg).unwrap();
}

#[test]
fn a_corrupted_payload_or_header_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let pkg = crate::common::build_example(t.path());
    let bytes = std::fs::read(&pkg).unwrap();
    let (h, _) = ingot::rpm::read::PackageHeaders::open(&pkg).unwrap();
    // The last bytes of the header are data (strings), not the index.
    for (what, at, says) in [
        ("payload", bytes.len() - 10, "payload SHA-256"),
        ("header", h.payload_offset as usize - 3, "header SHA-256"),
    ] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let p = t.path().join(format!("bad-{what}.rpm"));
        std::fs::write(&p, &bad).unwrap();
        let err = verify_digests(&p).expect_err(what).to_string();
        assert!(err.contains(says), "{what}: {err}");
    }
}
