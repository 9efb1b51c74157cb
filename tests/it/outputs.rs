//! What ingot writes, when writing goes wrong:
//! - a full disk or a read-only output folder is the environment's failure:
//!   exit 3 with the operating system's error in the `Caused by:` chain,
//!   nothing left, at whatever step the space runs out (a small tmpfs as
//!   `--out`, mounted here and always unmounted).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{copy_dir, in_ci, ingot, is_root, repo_root, run_ok, stderr, stdout};

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

/// A private copy of the repository's `specs/` and `fixtures/`.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    copy_dir(&repo_root().join("specs"), &dir.join("specs"));
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
