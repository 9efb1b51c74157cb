//! Source files that are one inode on disk: a hard link set in the
//! package, as rpm's header (`FILENLINKS`, `FILEINODES`) and GNU cpio
//! (extracting `rpm2cpio`'s archive) read it; one source packaged twice
//! stays two files; members that disagree are refused.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::common::{build, ingot, run_ok, stderr, stdout};
use crate::need;

const HEAD: &str = r#"[package]
name = "links"
version = "1"
arch = "noarch"
summary = "hard links"
license = "MIT"

[[changelog]]
date = 2025-01-02
author = "T <t@example.invalid> - 1-1"
text = "- x"
"#;

fn file(src: &str, dest: &str, mode: &str) -> String {
    format!("\n[[files]]\nsrc = \"{src}\"\ndest = \"{dest}\"\nmode = \"{mode}\"\n")
}

/// `a` and `b` one inode on disk; `c` a file of its own.
fn sources(dir: &Path) {
    std::fs::write(dir.join("a"), "shared bytes\n").unwrap();
    std::fs::hard_link(dir.join("a"), dir.join("b")).unwrap();
    std::fs::write(dir.join("c"), "own bytes\n").unwrap();
}

#[test]
fn sources_that_share_an_inode_are_one_hard_link_set() {
    let rpm = need!("rpm");
    let rpm2cpio = need!("rpm2cpio");
    let cpio = need!("cpio");
    let t = tempfile::tempdir().unwrap();
    sources(t.path());
    let spec = t.path().join("links.toml");
    let body = [
        file("a", "/opt/links/a", "0644"),
        file("b", "/opt/links/b", "0644"),
        // The same source twice: two files, not a link set.
        file("c", "/opt/links/c1", "0644"),
        file("c", "/opt/links/c2", "0644"),
    ]
    .concat();
    std::fs::write(&spec, format!("{HEAD}{body}")).unwrap();
    let pkg = build(&spec, &t.path().join("dist"));

    let q = run_ok(
        Command::new(&rpm)
            .args([
                "-qp",
                "--qf",
                "[%{FILENAMES} %{FILENLINKS} %{FILEINODES}\\n]",
            ])
            .arg(&pkg),
    );
    let rows: Vec<Vec<String>> = stdout(&q)
        .lines()
        .filter(|l| l.starts_with("/opt/links/"))
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "/opt/links/a",
            "/opt/links/b",
            "/opt/links/c1",
            "/opt/links/c2"
        ]
    );
    let nlinks: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(nlinks, ["2", "2", "1", "1"], "{rows:?}");
    assert_eq!(rows[0][2], rows[1][2], "a and b share an inode: {rows:?}");
    assert_ne!(rows[2][2], rows[3][2], "c1 and c2 do not: {rows:?}");

    // GNU cpio makes the set one file again, with the bytes.
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run_ok(Command::new("sh").current_dir(&root).arg("-c").arg(format!(
        "'{}' '{}' | '{}' -idm --quiet",
        rpm2cpio.display(),
        pkg.display(),
        cpio.display()
    )));
    let md = |n: &str| std::fs::metadata(root.join("opt/links").join(n)).unwrap();
    assert_eq!(md("a").ino(), md("b").ino());
    assert_eq!(md("a").nlink(), 2);
    assert_ne!(md("c1").ino(), md("c2").ino());
    let read = |n: &str| std::fs::read_to_string(root.join("opt/links").join(n)).unwrap();
    assert_eq!(read("b"), "shared bytes\n");
    assert_eq!(read("c2"), "own bytes\n");
}

#[test]
fn hard_link_members_with_different_modes_are_refused() {
    let t = tempfile::tempdir().unwrap();
    sources(t.path());
    let spec = t.path().join("links.toml");
    let body = [
        file("a", "/opt/links/a", "0644"),
        file("b", "/opt/links/b", "0600"),
    ]
    .concat();
    std::fs::write(&spec, format!("{HEAD}{body}")).unwrap();
    let out = t.path().join("dist");
    let o = ingot()
        .arg("build")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hardlink members must have identical effective metadata"),
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing written: {left:?}");
}
