//! [`super::installed_headers`]: the installed set a resolution starts
//! from, judged by `rpm -qa` over the same database.

use std::path::Path;
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

#[test]
fn the_installed_set_is_what_rpm_lists_and_its_copy_is_gone() {
    let Some(rpm) = crate::testutil::judge("rpm") else {
        return;
    };
    let Some(db) = crate::testutil::shared("al2023-plain/rpmdb.sqlite") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("db");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(&db, copy.join("rpmdb.sqlite")).unwrap();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();

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
    let Some(rpm) = crate::testutil::judge("rpm") else {
        return;
    };
    let Some(db) = crate::testutil::shared("al2023-plain/rpmdb.sqlite") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("live");
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(&db, live.join("rpmdb.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(live.join("rpmdb.sqlite")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    let hnum: i64 = conn
        .query_row("SELECT hnum FROM Name WHERE key = 'bash'", [], |r| r.get(0))
        .unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT IN ('Packages', 'sqlite_sequence', 'sqlite_stat1')",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in tables.iter().map(String::as_str).chain(["Packages"]) {
        conn.execute(&format!("DELETE FROM \"{table}\" WHERE hnum = ?1"), [hnum])
            .unwrap();
    }
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
    std::fs::create_dir(&work).unwrap();

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
