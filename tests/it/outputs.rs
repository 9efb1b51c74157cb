//! What ingot writes, when writing goes wrong or would loop:
//! - all outputs appear together or none do (a folder where the manifest
//!   must go fails the bake with nothing else written);
//! - a full disk or a read-only output folder is the environment's failure:
//!   exit 3 with the operating system's error in the `Caused by:` chain,
//!   nothing left, at whatever step the space runs out (a small tmpfs as
//!   `--out`, mounted here and always unmounted);
//! - `--out` inside a package's source folder or inside a folder base never
//!   feeds back into the next package or image.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{copy_dir, in_ci, ingot, is_root, repo_root, run_ok, stderr, stdout};
use crate::need;

// ------------------------------------------------------------- helpers

/// The sorted names in `dir` (none when it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `len` bytes of random lower-case letters (deflate shrinks them by about
/// a third): data every compressor has to work on.
pub fn letters(seed: u64, len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend(x.to_le_bytes().map(|b| b'a' + b % 26));
    }
    v.truncate(len);
    v
}

pub fn letters_file(path: &Path, seed: u64, len: usize) {
    std::fs::write(path, letters(seed, len)).unwrap();
}

/// An uncompressed base tarball of `files` files of `mib` MiB of letters.
pub fn data_tar(path: &Path, files: u64, mib: usize) {
    let mut tb = tar::Builder::new(std::fs::File::create(path).unwrap());
    for i in 0..files {
        let data = letters(i, mib << 20);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        tb.append_data(&mut h, format!("data/f{i:02}"), &data[..])
            .unwrap();
    }
    tb.into_inner().unwrap();
}

/// A package spec without automatic dependencies, `body` appended.
pub fn package_spec(name: &str, body: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "1"
release = "1"
arch = "noarch"
summary = "Test package {name}"
description = "A package made by the output tests."
license = "MIT"

[dependencies]
auto = false

{body}

[[changelog]]
date = 2024-01-01
author = "tests <tests@example.invalid> - 1-1"
text = "- test"
"#
    )
}

/// A private copy of the repository's `specs/` and `fixtures/`.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    crate::common::copy_specs_tar_only(&dir.join("specs"));
    copy_dir(&repo_root().join("fixtures"), &dir.join("fixtures"));
    (t, dir)
}

/// A tmpfs mounted for one test, unmounted when dropped (a failing test
/// included).
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mount a tmpfs with `options` at `at`; outside CI, `None` (and a SKIPPED
/// line) when this machine cannot, as without root.
fn tmpfs(at: &Path, options: &str) -> Option<Tmpfs> {
    std::fs::create_dir_all(at).unwrap();
    let o = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(at)
        .output();
    match o {
        Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
        other => {
            let why = match other {
                Ok(o) => stderr(&o),
                Err(e) => e.to_string(),
            };
            assert!(
                !in_ci(),
                "cannot mount a tmpfs (root is needed), and CI=true: {why}"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs ({}): {why}", options);
            None
        }
    }
}

/// Allocated bytes of the files in `dir`.
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}

fn bake_every_format(spec: &Path, out: &Path) -> Command {
    let mut c = ingot();
    c.arg("bake").arg(spec).arg("--out").arg(out);
    for f in ["raw", "vmdk", "vhd", "tar"] {
        c.args(["--format", f]);
    }
    c
}

// ------------------------------------------------- all or nothing

#[test]
fn a_folder_where_the_manifest_goes_fails_the_bake_and_nothing_else_appears() {
    let (_t, dir) = workspace();
    let spec = dir.join("specs/hello-image.toml");
    let out = dir.join("out");
    run_ok(ingot().arg("bake").arg(&spec).arg("--out").arg(&out));
    let names = listing(&out);
    let manifest = names
        .iter()
        .find(|n| n.ends_with(".manifest.json"))
        .expect("a manifest")
        .clone();
    assert_eq!(names.len(), 3, "tar, SBOM and manifest: {names:?}");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::create_dir_all(out.join(&manifest)).unwrap();
    let o = ingot()
        .arg("bake")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("cannot write `{}`", out.join(&manifest).display()))
            && err.contains("Caused by: Is a directory"),
        "{err}"
    );
    assert_eq!(
        listing(&out),
        [manifest],
        "outputs appeared without a manifest"
    );
}

// ------------------------------------------------- environment failures

#[test]
fn a_full_disk_at_any_step_exits_3_with_the_os_error_and_leaves_nothing() {
    if !is_root() && !in_ci() {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let (t, dir) = workspace();
    let spec = dir.join("specs/hello-image.toml");
    // How much the outputs take when there is room.
    let roomy = dir.join("roomy");
    run_ok(&mut bake_every_format(&spec, &roomy));
    let need = allocated(&roomy);
    assert!(need > 1 << 20, "the outputs take {need} bytes");
    // Less room than that, at several sizes: the space runs out while the
    // package is built, the base imported, the image written...
    for percent in [2u64, 12, 35, 60, 80, 95] {
        let size = (need * percent / 100).max(4096);
        let m = t.path().join(format!("full-{percent}"));
        let Some(_mount) = tmpfs(&m, &format!("size={size},mode=0755")) else {
            return;
        };
        let out = m.join("out");
        let o = bake_every_format(&spec, &out).output().unwrap();
        let err = stderr(&o);
        eprintln!("bake into {size} bytes of room:\n{err}");
        assert_eq!(
            o.status.code(),
            Some(3),
            "bake into {size} bytes of room:\n{err}"
        );
        assert!(
            err.contains("Caused by: No space left on device (os error 28)"),
            "bake into {size} bytes of room:\n{err}"
        );
        assert!(
            !err.contains(".ingot-work-"),
            "a scratch path shows:\n{err}"
        );
        assert_eq!(
            listing(&m),
            Vec::<String>::new(),
            "left behind ({size} bytes)"
        );
    }
    // The same for a build, with half the room its RPM takes.
    let build = |out: &Path| {
        ingot()
            .arg("build")
            .arg(dir.join("specs/hello/hello.toml"))
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let roomy = dir.join("dist");
    assert!(build(&roomy).status.success());
    let size = (allocated(&roomy) / 2).max(4096);
    let m = t.path().join("full-build");
    let Some(_mount) = tmpfs(&m, &format!("size={size},mode=0755")) else {
        return;
    };
    let o = build(&m.join("dist"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("No space left on device (os error 28)"),
        "{err}"
    );
    assert_eq!(listing(&m), Vec::<String>::new());
}

#[test]
fn a_read_only_output_folder_exits_3_naming_it_and_the_os_error() {
    if !is_root() && !in_ci() {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let (t, dir) = workspace();
    let m = t.path().join("ro");
    let Some(_mount) = tmpfs(&m, "ro,size=64k") else {
        return;
    };
    let out = m.join("out");
    let o = ingot()
        .arg("--json")
        .arg("bake")
        .arg(dir.join("specs/hello-image.toml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("error: cannot write `{}`", out.display()))
            && err.contains("Caused by: Read-only file system (os error 30)"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["causes"][0], "Read-only file system (os error 30)");
}

// ------------------------------------------------- no feedback loops

#[test]
fn an_out_folder_inside_the_package_source_is_never_packaged() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    std::fs::write(dir.join("tree/sub/a.txt"), "a\n").unwrap();
    std::fs::write(
        dir.join("p.toml"),
        package_spec(
            "loop",
            "[[files]]\nsrc = \"tree\"\ndest = \"/usr/share/loop\"\n",
        ),
    )
    .unwrap();
    let build = |out: &Path| -> Vec<u8> {
        let o = run_ok(
            ingot()
                .arg("build")
                .arg(dir.join("p.toml"))
                .arg("--out")
                .arg(out),
        );
        std::fs::read(stdout(&o).trim()).unwrap()
    };
    let elsewhere = build(&dir.join("elsewhere"));
    let inside = dir.join("tree/dist");
    let first = build(&inside);
    // The second build finds the first one's RPM in --out.
    let second = build(&inside);
    assert!(
        first == second,
        "the second build packaged the first one's output"
    );
    assert!(
        first == elsewhere,
        "--out inside the source changed the package"
    );
    let rpm_file = inside.join(listing(&inside).first().unwrap());
    let files = stdout(&run_ok(Command::new(rpm).arg("-qlp").arg(&rpm_file)));
    assert!(
        files.contains("/usr/share/loop/sub/a.txt") && !files.contains("dist"),
        "{files}"
    );
    // A folder made for --out (and holding nothing else) is left out too,
    // the first time (ingot makes it) and the next.
    std::fs::remove_dir_all(&inside).unwrap();
    let nested = dir.join("tree/new/dist");
    assert!(
        build(&nested) == elsewhere,
        "ingot's new folder was packaged"
    );
    assert!(
        build(&nested) == elsewhere,
        "the folder holding --out was packaged"
    );
    // --out the source folder itself: refused, naming the spec's line.
    let o = ingot()
        .arg("build")
        .arg(dir.join("p.toml"))
        .arg("--out")
        .arg(dir.join("tree"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("p.toml`:") && err.contains("is the output folder"),
        "{err}"
    );
}

#[test]
fn an_out_folder_inside_a_folder_base_is_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    std::fs::write(dir.join("rootfs/etc/os-release"), "ID=test\n").unwrap();
    std::fs::write(
        dir.join("image.toml"),
        "[image]\nname = \"fb\"\nbase = \"rootfs\"\nformats = [\"tar\"]\n",
    )
    .unwrap();
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    std::fs::create_dir(dir.join("rootfs/existing")).unwrap();
    let before = (
        mtime(&dir.join("rootfs")),
        mtime(&dir.join("rootfs/existing")),
    );
    for out in [
        "rootfs",
        "rootfs/out",
        "rootfs/new/out",
        "rootfs/existing",
        "rootfs/etc/../existing/x",
    ] {
        let o = ingot()
            .arg("bake")
            .arg(dir.join("image.toml"))
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "--out {out}: {err}");
        assert!(
            err.contains("is inside the base folder"),
            "--out {out}: {err}"
        );
        assert_eq!(
            listing(&dir.join("rootfs")),
            ["etc", "existing"],
            "--out {out}"
        );
        assert_eq!(listing(&dir.join("rootfs/existing")), Vec::<String>::new());
    }
    let after = (
        mtime(&dir.join("rootfs")),
        mtime(&dir.join("rootfs/existing")),
    );
    assert_eq!(before, after, "the refused bakes touched the base");
    // The same base bakes with --out beside it.
    run_ok(
        ingot()
            .arg("bake")
            .arg(dir.join("image.toml"))
            .arg("--out")
            .arg(dir.join("out")),
    );
}
