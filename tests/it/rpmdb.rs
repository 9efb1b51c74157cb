//! The rpm database writer against real databases: every index row of the
//! real Amazon Linux 2023 and CBL-Mariner databases is reproduced from the
//! records alone, and a package added by ingot gets exactly the record and
//! rows rpm 4.18 wrote for it. Uses `../shared/fixtures` (by the skip rule
//! in `common`: a failure under CI when absent).

use std::path::{Path, PathBuf};

use ingot::rpm::read::PackageHeaders;
use ingot::rpmdb::index::{self, Key, TABLES};
use ingot::rpmdb::{Rpmdb, record};

use crate::common::shared;

/// A writable copy of a (read-only) fixture database.
fn copy_db(src: &Path, dir: &Path) -> PathBuf {
    let dst = dir.join("rpmdb.sqlite");
    std::fs::copy(src, &dst).unwrap();
    let mut perms = std::fs::metadata(&dst).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&dst, perms).unwrap();
    dst
}

fn all_rows_reproduced(db_file: &str, expect_packages: usize) {
    let Some(src) = shared(db_file) else { return };
    let t = tempfile::tempdir().unwrap();
    let db = Rpmdb::open(&copy_db(&src, t.path())).unwrap();
    let packages = db.packages().unwrap();
    assert_eq!(packages.len(), expect_packages);
    for (table, _) in TABLES {
        let mut want = db.index_rows(table).unwrap();
        let mut got: Vec<(Key, u32, u32)> = packages
            .iter()
            .flat_map(|(hnum, h)| {
                index::rows(h)
                    .into_iter()
                    .filter(|r| r.table == *table)
                    .map(|r| (r.key, *hnum, r.idx))
                    .collect::<Vec<_>>()
            })
            .collect();
        want.sort();
        got.sort();
        let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
        let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
        assert!(
            want == got,
            "{db_file} table {table}: {} rows in db, {} computed; missing {missing:?}, extra {extra:?}",
            want.len(),
            got.len()
        );
    }
}

#[test]
fn every_index_row_of_the_real_al2023_database_is_reproduced() {
    all_rows_reproduced("al2023-plain/rpmdb.sqlite", 103);
}

#[test]
fn every_index_row_of_the_real_mariner_database_is_reproduced() {
    all_rows_reproduced("cbl-mariner-2.0/rpmdb.sqlite", 129);
}

#[test]
fn adding_a_package_writes_what_rpm_wrote() {
    let (Some(base), Some(rpm), Some(blob), Some(rows)) = (
        shared("al2023-plain/rpmdb.sqlite"),
        shared("rpm-install-oracle/hello-fixture-1.0-1.amzn2023.noarch.rpm"),
        shared("rpm-install-oracle/hello-fixture.installed-header.bin"),
        shared("rpm-install-oracle/hello-fixture.index-rows.txt"),
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let path = copy_db(&base, t.path());
    let mut db = Rpmdb::open(&path).unwrap();
    let (h, _) = PackageHeaders::open(&rpm).unwrap();
    let rec = record::installed_record(&h.signature, &h.header, 1_795_304_986).unwrap();
    assert!(
        rec == std::fs::read(blob).unwrap(),
        "record differs from rpm's"
    );
    let hnum = db.add(&rec).unwrap();
    assert_eq!(hnum, 104);
    // Rows as `table|quote(key)|idx`, the format of the fixture.
    let mut got = Vec::new();
    for (table, _) in TABLES {
        for (key, n, idx) in db.index_rows(table).unwrap() {
            if n != hnum {
                continue;
            }
            let k = match key {
                Key::Text(s) => format!("'{}'", s.replace('\'', "''")),
                Key::Blob(b) => format!("X'{}'", hex::encode_upper(b)),
            };
            got.push(format!("{table}|{k}|{idx}"));
        }
    }
    let want: Vec<String> = std::fs::read_to_string(rows)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (mut g, mut w) = (got.clone(), want.clone());
    g.sort();
    w.sort();
    assert_eq!(g, w);
    db.close().unwrap();
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["rpmdb.sqlite"], "left -wal/-shm files behind");
}

#[test]
fn a_new_database_has_rpms_schema_and_rpm_reads_it() {
    let rpm = crate::need!("rpm");
    let Some(fixture) = shared("rpm-install-oracle/hello-fixture-1.0-1.amzn2023.noarch.rpm") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dbdir = t.path().join("var/lib/rpm");
    std::fs::create_dir_all(&dbdir).unwrap();
    let mut db = Rpmdb::create(&dbdir.join("rpmdb.sqlite")).unwrap();
    let (h, _) = PackageHeaders::open(&fixture).unwrap();
    db.add(&record::installed_record(&h.signature, &h.header, 1_700_000_000).unwrap())
        .unwrap();
    db.close().unwrap();
    let q = |args: &[&str]| {
        let o = crate::common::run_ok(
            std::process::Command::new(&rpm)
                .arg("--root")
                .arg(t.path())
                .args(["--dbpath", "/var/lib/rpm"])
                .args(args),
        );
        crate::common::stdout(&o)
    };
    assert_eq!(q(&["-qa"]).trim(), "hello-fixture-1.0-1.amzn2023.noarch");
    assert!(q(&["-qi", "hello-fixture"]).contains("Install Date:"));
    assert_eq!(
        q(&["-qf", "/usr/bin/hello-fixture"]).trim(),
        "hello-fixture-1.0-1.amzn2023.noarch"
    );
    assert!(q(&["-q", "--whatprovides", "config(hello-fixture)"]).contains("hello-fixture-1.0-1"));
    // The schema is rpm's own: rpmdb --verifydb accepts it.
    crate::common::run_ok(
        std::process::Command::new("rpmdb")
            .arg("--root")
            .arg(t.path())
            .args(["--dbpath", "/var/lib/rpm", "--verifydb"]),
    );
}

/// The real AL2023 and Mariner systems are consistent package sets: every
/// requirement of every installed package must be met by the others. A
/// dependency checker that disagrees is wrong.
#[test]
fn real_systems_satisfy_their_own_requirements() {
    use ingot::install::deps::{Package, Universe};
    for db_file in ["al2023-plain/rpmdb.sqlite", "cbl-mariner-2.0/rpmdb.sqlite"] {
        let Some(src) = shared(db_file) else { return };
        let t = tempfile::tempdir().unwrap();
        let db = Rpmdb::open(&copy_db(&src, t.path())).unwrap();
        let pkgs: Vec<Package> = db
            .packages()
            .unwrap()
            .iter()
            .map(|(_, h)| Package::from_header(h))
            .collect();
        let u = Universe::new(&pkgs);
        let all: Vec<usize> = (0..pkgs.len()).collect();
        let unmet = u.unmet(&all);
        assert!(
            unmet.is_empty(),
            "{db_file}: {}",
            unmet
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            u.conflicts(&all).is_empty(),
            "{db_file}: {:?}",
            u.conflicts(&all)
        );
        // Without glibc the same check must find unmet requirements.
        let no_glibc: Vec<Package> = pkgs.iter().filter(|p| p.name != "glibc").cloned().collect();
        assert_eq!(no_glibc.len(), pkgs.len() - 1, "{db_file} has no glibc");
        let u = Universe::new(&no_glibc);
        let all: Vec<usize> = (0..no_glibc.len()).collect();
        let unmet = u.unmet(&all);
        assert!(
            unmet
                .iter()
                .any(|m| m.requirement.starts_with("libc.so.6(")),
            "{db_file}: removing glibc left nothing unmet"
        );
    }
}
