//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ingot` binary under test.
pub fn ingot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ingot"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Find an external judge. Outside CI a missing judge makes the caller skip
/// (with a message); under `CI=true` it is a failure.
pub fn judge(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // System tools (sgdisk, fsck.vfat, setcap) live in sbin, which a
    // non-login PATH may lack.
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    let found = dirs
        .into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file());
    if found.is_none() {
        if in_ci() {
            panic!("judge `{program}` is missing, and CI=true: install it (cargo xtask ci does)");
        }
        eprintln!("SKIPPED: judge `{program}` is not installed");
    }
    found
}

/// `let rpm = need!("rpm");` returns from the test when the judge is missing
/// outside CI.
#[macro_export]
macro_rules! need {
    ($p:expr) => {
        match $crate::common::judge($p) {
            Some(p) => p,
            None => return,
        }
    };
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example_dir() -> PathBuf {
    repo_root().join("specs/hello")
}

/// Copy a folder recursively (files, folders, symlinks), keeping exec bits.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &to);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Run a command; panic with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Build a spec with ingot into `out`; returns the RPM's path.
pub fn build(spec: &Path, out: &Path) -> PathBuf {
    let o = run_ok(ingot().arg("build").arg(spec).arg("--out").arg(out));
    let path = PathBuf::from(stdout(&o).trim());
    assert!(
        path.is_file(),
        "ingot printed {path:?}, which is not a file"
    );
    path
}

/// The example package, built once per test into its own folder.
pub fn build_example(tmp: &Path) -> PathBuf {
    build(&example_dir().join("hello.toml"), &tmp.join("dist"))
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
