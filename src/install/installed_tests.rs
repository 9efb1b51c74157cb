//! [`super::installed_headers`]: the installed set a resolution starts
//! from, judged by `rpm -qa` over the same database.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{RPMDB_FILE, RPMDB_WAL, installed_headers};
use crate::rootfs::{Meta, Node, Tree};
use crate::rpm::header::{Header, tag};

/// A tree holding only `files` (tree path, host file).
fn tree_of(files: &[(&str, &Path)]) -> Tree {
    let mut t = Tree::new();
    t.mkdir_p("/var/lib/rpm", &Meta::new(0o755, 0, 0, 0))
        .unwrap();
    for (at, from) in files {
        let data = t.spill(&mut std::fs::File::open(from).unwrap()).unwrap();
        t.insert_path(at, Node::file(Meta::new(0o644, 0, 0, 0), data))
            .unwrap();
    }
    t
}

fn nevras(headers: &[Header]) -> Vec<String> {
    let mut v: Vec<String> = headers
        .iter()
        .map(|h| {
            let s = |t| h.string(t).unwrap_or_default();
            format!(
                "{}-{}-{}.{}",
                s(tag::NAME),
                s(tag::VERSION),
                s(tag::RELEASE),
                s(tag::ARCH)
            )
        })
        .collect();
    v.sort();
    v
}

/// What `rpm -qa` lists from the database in `dir` (a copy: rpm may
/// write beside it).
fn rpm_qa(rpm: &Path, dir: &Path) -> Vec<String> {
    let out = Command::new(rpm)
        .arg("--dbpath")
        .arg(dir)
        .args([
            "-qa",
            "--qf",
            "%{NAME}-%{VERSION}-%{RELEASE}.%|ARCH?{%{ARCH}}:{}|\\n",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_base_without_a_database_has_nothing_installed_and_nothing_is_made() {
    let work = tempfile::tempdir().unwrap();
    let headers = installed_headers(&tree_of(&[]), work.path()).unwrap();
    assert!(headers.is_empty());
    assert_eq!(entries(work.path()), Vec::<String>::new());
}

/// The judge, the real Amazon Linux 2023 database, and a folder with a
/// copy of it in `copy/` and an empty `work/`; `None` when either is
/// missing here (see [`crate::testutil`]).
fn judge_and_database() -> Option<(PathBuf, PathBuf, tempfile::TempDir)> {
    let rpm = crate::testutil::judge("rpm")?;
    let db = crate::testutil::shared("al2023-plain/rpmdb.sqlite")?;
    let t = tempfile::tempdir().unwrap();
    for d in ["copy", "work"] {
        std::fs::create_dir(t.path().join(d)).unwrap();
    }
    std::fs::copy(&db, t.path().join("copy/rpmdb.sqlite")).unwrap();
    Some((rpm, db, t))
}

#[test]
fn the_installed_set_is_what_rpm_lists_and_its_copy_is_gone() {
    let Some((rpm, db, t)) = judge_and_database() else {
        return;
    };
    let (copy, work) = (t.path().join("copy"), t.path().join("work"));

    let headers = installed_headers(&tree_of(&[(RPMDB_FILE, &db)]), &work).unwrap();
    let listed = rpm_qa(&rpm, &copy);
    assert_eq!(listed.len(), 103, "the fixture changed?");
    assert_eq!(nevras(&headers), listed);
    assert_eq!(
        entries(&work),
        Vec::<String>::new(),
        "the scratch copy stayed"
    );
}

/// A base taken from a live system may hold its last changes in the
/// write-ahead log: the installed set is the one with them, as rpm sees it.
#[test]
fn changes_still_in_the_write_ahead_log_count() {
    let Some((rpm, _, t)) = judge_and_database() else {
        return;
    };
    let live = t.path().join("copy");
    let conn = crate::testutil::rpmdb_log::erase_into_log(&live.join("rpmdb.sqlite"), "bash");
    // Copies taken while the change is only in the log.
    let snap = t.path().join("snapshot");
    std::fs::create_dir(&snap).unwrap();
    for f in ["rpmdb.sqlite", "rpmdb.sqlite-wal"] {
        std::fs::copy(live.join(f), snap.join(f)).unwrap();
    }
    assert!(
        std::fs::metadata(snap.join("rpmdb.sqlite-wal"))
            .unwrap()
            .len()
            > 0
    );
    let tree = tree_of(&[
        (RPMDB_FILE, &snap.join("rpmdb.sqlite")),
        (RPMDB_WAL, &snap.join("rpmdb.sqlite-wal")),
    ]);
    drop(conn);
    let work = t.path().join("work");

    let got = nevras(&installed_headers(&tree, &work).unwrap());
    let listed = rpm_qa(&rpm, &snap);
    assert_eq!(listed.len(), 102, "{listed:?}");
    assert!(
        !listed.iter().any(|n| n.starts_with("bash-5")),
        "{listed:?}"
    );
    assert_eq!(got, listed);
    assert_eq!(
        entries(&work),
        Vec::<String>::new(),
        "the scratch copy stayed"
    );
}
