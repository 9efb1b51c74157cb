//! Same spec and inputs -> same bytes: from two copies in two folders,
//! under another TZ, umask, locale, user, and other file mtimes and
//! group/other permission bits on disk.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::common::{copy_dir, example_dir, ingot, run_ok, stdout};
use crate::need_root;

fn touch_all(dir: &Path, when: SystemTime) {
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let f = std::fs::File::options().write(true).open(e.path()).unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

fn build_in(spec: &Path, out: &Path, env: &[(&str, &str)], umask: &str) -> Vec<u8> {
    let cmd = format!(
        "umask {umask} && exec '{}' build '{}' --out '{}'",
        env!("CARGO_BIN_EXE_ingot"),
        spec.display(),
        out.display()
    );
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run_ok(&mut c);
    std::fs::read(stdout(&o).trim()).unwrap()
}

#[test]
fn two_copies_in_two_folders_under_other_settings_build_identical_bytes() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("first/copy");
    let b = t.path().join("second/elsewhere/deeper");
    copy_dir(&example_dir(), &a);
    copy_dir(&example_dir(), &b);
    // Other mtimes and other group/other bits on disk in the second copy.
    touch_all(
        &a,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    );
    touch_all(
        &b,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
    );
    for e in std::fs::read_dir(&b).unwrap() {
        let p = e.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o700)).unwrap();
    }
    let first = build_in(
        &a.join("hello.toml"),
        &t.path().join("out1"),
        &[("TZ", "UTC"), ("LC_ALL", "C")],
        "022",
    );
    let second = build_in(
        &b.join("hello.toml"),
        &t.path().join("out2"),
        &[
            ("TZ", "Pacific/Kiritimati"),
            ("LC_ALL", "C.UTF-8"),
            ("LANG", "de_DE.UTF-8"),
        ],
        "077",
    );
    assert!(first == second, "the two builds differ");
}

#[test]
fn another_user_builds_identical_bytes() {
    need_root!("building as another user");
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let src = t.path().join("src");
    copy_dir(&example_dir(), &src);
    for e in walkdir::WalkDir::new(&src) {
        let p = e.unwrap().into_path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode | 0o005)).unwrap();
    }
    let as_root = build_in(
        &src.join("hello.toml"),
        &t.path().join("root-out"),
        &[],
        "022",
    );
    let o = run_ok(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ingot"))
            .arg("build")
            .arg(src.join("hello.toml"))
            .arg("--out")
            .arg(t.path().join("nobody-out"))
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    let as_nobody = std::fs::read(stdout(&o).trim()).unwrap();
    assert!(
        as_root == as_nobody,
        "root and nobody built different bytes"
    );
}

#[test]
fn source_date_epoch_sets_every_timestamp_and_changes_the_bytes() {
    let t = tempfile::tempdir().unwrap();
    let spec = example_dir().join("hello.toml");
    let one = |sde: &str, out: &str| {
        let o = run_ok(
            ingot()
                .arg("build")
                .arg(&spec)
                .arg("--out")
                .arg(t.path().join(out))
                .env("SOURCE_DATE_EPOCH", sde),
        );
        std::fs::read(stdout(&o).trim()).unwrap()
    };
    let a = one("1700000000", "a");
    let b = one("1700000000", "b");
    let c = one("1700000001", "c");
    assert!(a == b, "same SOURCE_DATE_EPOCH, different bytes");
    assert!(a != c, "SOURCE_DATE_EPOCH is ignored");
}
