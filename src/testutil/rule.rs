//! The one rule for a check that cannot run here: a judge program is
//! missing, `../shared/fixtures` is absent, the test is not root, the
//! kernel refuses a loop mount, and so on.
//!
//! - Outside CI the check is skipped. It prints `SKIPPED: <what> (<why>)`
//!   and how to get what it needs on stderr, and appends one line,
//!   `<test>\t<what> (<why>)`, to the file named by `INGOT_SKIP_LOG` when
//!   that is set (`cargo xtask ci --allow-skips` sets it and lists the
//!   skipped checks at the end).
//! - Under CI it is a failure (a panic) naming what is missing and how to
//!   get it: a green CI run means every check ran.
//!
//! "Under CI" means the environment variable `CI` is exactly `true` or `1`
//! (CI services set `true`; `1` is the other spelling in common use). Any
//! other value (`false`, `0`, `yes`, empty) or none at all is not CI.
//!
//! The shared fixtures are `../shared/fixtures` beside the repository (where
//! CI has them), or the folder `INGOT_SHARED_FIXTURES` names.
//!
//! This file is compiled twice, into the unit tests (`src/testutil.rs`)
//! and into the integration tests (`tests/it/common.rs`, by `#[path]`), so
//! both follow one rule. Each uses a different part of it, hence the
//! `allow(dead_code)`.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Names the file that records skipped checks, one line each.
pub const SKIP_LOG_ENV: &str = "INGOT_SKIP_LOG";

/// Names the shared fixtures folder when it is not `../shared/fixtures`.
pub const SHARED_ENV: &str = "INGOT_SHARED_FIXTURES";

/// Whether a value of `CI` means "under CI": exactly `true` or `1`.
pub fn ci_value(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// Whether the tests run under CI (see the module doc).
pub fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

/// The rule: `what` (the check, or the thing it needs) is not available
/// here because of `why`; `fix` says how to get it. Panics under CI; otherwise prints and records the
/// skip and returns, and the caller returns from its test (or leaves out
/// the part that cannot run).
pub fn cannot_run(what: &str, why: &str, fix: &str) {
    let log = std::env::var_os(SKIP_LOG_ENV).map(PathBuf::from);
    decide(
        in_ci(),
        &mut std::io::stderr(),
        log.as_deref(),
        what,
        why,
        fix,
    );
}

/// [`cannot_run`] with the environment spelled out (`CI`, stderr, the
/// log), so that the rule itself can be tested. A check reported twice in one test (a helper called in a loop) prints
/// and records once.
pub fn decide(
    ci: bool,
    stderr: &mut dyn std::io::Write,
    log: Option<&Path>,
    what: &str,
    why: &str,
    fix: &str,
) {
    if ci {
        panic!(
            "cannot run here: {what} ({why}), and CI=true makes that a failure; to get it: {fix}"
        );
    }
    thread_local! {
        // libtest runs each test on a thread of its own.
        static REPORTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let first = REPORTED.with(|r| {
        let mut r = r.borrow_mut();
        let first = !r.iter().any(|w| w == what);
        if first {
            r.push(what.to_string());
        }
        first
    });
    if !first {
        return;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed thread)")
        .to_string();
    // Straight to stderr, past libtest's capture (which takes only the
    // print macros), so that a passing run shows what it skipped.
    let _ = stderr
        .write_all(format!("SKIPPED: {what} ({why}) in {test}; to run it: {fix}\n").as_bytes());
    if let Some(log) = log {
        // One write of one line to an O_APPEND file: lines from tests
        // running in parallel, in one process or several, do not mix.
        let line = format!("{test}\t{what} ({why})\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot record the skip in {}: {e}", log.display()));
    }
}

/// `program` on PATH, or in /usr/sbin or /sbin (where system tools such as
/// sgdisk, fsck.vfat and setcap live, which a non-login PATH may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The external judge `program`, or `None` (after [`cannot_run`]) when it
/// is not installed.
pub fn judge(program: &str) -> Option<PathBuf> {
    let found = find_program(program);
    if found.is_none() {
        cannot_run(
            &format!("judge `{program}`"),
            "not installed",
            "install it; `cargo xtask ci` run as root installs every judge \
             (JUDGES in xtask/src/main.rs names the Debian packages)",
        );
    }
    found
}

/// Whether the tests run as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when root; otherwise [`cannot_run`] for `what` and false.
pub fn need_root(what: &str) -> bool {
    let root = is_root();
    if !root {
        cannot_run(
            what,
            "needs root",
            "run the tests as root, as `cargo xtask ci` does in CI",
        );
    }
    root
}

/// The shared fixtures folder (see the module doc), whether or not it
/// exists.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os(SHARED_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    }
}

/// `rel` inside the shared fixtures (`""` for the folder itself), or `None`
/// (after [`cannot_run`]) when it is not there.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = shared_dir().join(rel);
    if path.exists() {
        return Some(path);
    }
    cannot_run(
        &format!("shared fixture `{}`", path.display()),
        "not present",
        &format!(
            "put the shared folder beside the repository as `../shared` (CI has it \
             there), or set {SHARED_ENV} to its `fixtures` folder"
        ),
    );
    None
}
