//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ingot` binary under test.
pub fn ingot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ingot"));
    c.env_remove("SOURCE_DATE_EPOCH");
    // Repository downloads (the committed example installs from its
    // repository) go to a cache under target/, not the user's.
    c.env("XDG_CACHE_HOME", test_cache());
    c
}

/// The download cache the tests' ingot commands share (content-addressed,
/// so tests running side by side agree on it).
pub fn test_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache")
}

// The rule for a check that cannot run here, shared with the unit tests:
// outside CI it is skipped (`SKIPPED: <what> (<why>)`, recorded for `cargo
// xtask ci --allow-skips`); under `CI=true` or `CI=1` it fails, naming what
// is missing and how to get it. Its module doc says the rest.
#[path = "../../src/testutil/rule.rs"]
mod rule;

// How `cargo xtask bench` reads a command's CPU time and peak memory
// (`wait4`), shared so `peak_rss` below measures the same way.
#[path = "../../xtask/src/rusage.rs"]
mod rusage;

// An rpm database whose last change is only in its write-ahead log,
// shared with the unit tests.
#[path = "../../src/testutil/rpmdb_log.rs"]
pub mod rpmdb_log;

pub use rule::{cannot_run, is_root, judge, need_root, shared};
// Kept for tests that still ask; new ones go through the rule instead.
#[allow(unused_imports)]
pub use rule::in_ci;

/// `let rpm = need!("rpm");` returns from the test when the judge is missing
/// outside CI (and fails the test under CI).
#[macro_export]
macro_rules! need {
    ($p:expr) => {
        match $crate::common::judge($p) {
            Some(p) => p,
            None => return,
        }
    };
}

/// `need_root!("rpm -V of the baked tree");` returns from the test when it
/// does not run as root outside CI (and fails the test under CI).
#[macro_export]
macro_rules! need_root {
    ($what:expr) => {
        if !$crate::common::need_root($what) {
            return;
        }
    };
}

/// `let f = need_shared!("rpm-install-oracle");` is that path inside the
/// shared fixtures; returns from the test when it is absent outside CI
/// (and fails the test under CI).
#[macro_export]
macro_rules! need_shared {
    ($rel:expr) => {
        match $crate::common::shared($rel) {
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

/// One QEMU at a time across the test binary: two software-emulated
/// machines on two cores would each take twice as long.
static QEMU: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn one_qemu() -> std::sync::MutexGuard<'static, ()> {
    QEMU.lock().unwrap_or_else(|p| p.into_inner())
}

/// The environment variable that hands `rss_reaper` its command (JSON).
const REAPER_ENV: &str = "INGOT_TEST_RSS_REAPER";

/// What [`peak_rss`] saw of a command.
pub struct Peak {
    pub success: bool,
    /// The command's own peak resident set, in MiB.
    pub mib: u64,
    pub stderr: String,
}

/// Run `cmd` (program, arguments, environment and working folder; its
/// stdout is discarded) and measure its own peak RSS.
///
/// Not with a plain `wait4` from here: Linux folds into a process's
/// `ru_maxrss` the resident set of the process that called `exec`, and a
/// child spawned straight from this harness (vfork, then exec) would carry
/// the harness's memory, which is whatever the tests running beside it
/// hold. So a fresh copy of this test binary (a few MiB) starts the command
/// and reports its `wait4` rusage.
pub fn peak_rss(cmd: &Command) -> Peak {
    let text = |s: &std::ffi::OsStr| s.to_str().expect("UTF-8 command").to_string();
    let mut argv = vec![text(cmd.get_program())];
    argv.extend(cmd.get_args().map(text));
    let envs: Vec<(String, Option<String>)> = cmd
        .get_envs()
        .map(|(k, v)| (text(k), v.map(text)))
        .collect();
    let dir = cmd.get_current_dir().map(|d| text(d.as_os_str()));
    let job = serde_json::json!({ "argv": argv, "envs": envs, "dir": dir });
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "common::rss_reaper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(REAPER_ENV, job.to_string())
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let field = |name: &str| -> String {
        all.split(&format!("{name}: "))
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_else(|| panic!("the reaper printed no {name}:\n{all}"))
            .trim()
            .to_string()
    };
    let kib: u64 = field("reaper peak rss kib").parse().unwrap();
    Peak {
        success: field("reaper exit") == "0",
        mib: kib / 1024,
        stderr: all,
    }
}

#[test]
#[ignore = "helper: peak_rss runs it in a child process"]
fn rss_reaper() {
    let Ok(job) = std::env::var(REAPER_ENV) else {
        return;
    };
    let job: serde_json::Value = serde_json::from_str(&job).unwrap();
    let argv: Vec<String> = serde_json::from_value(job["argv"].clone()).unwrap();
    let envs: Vec<(String, Option<String>)> = serde_json::from_value(job["envs"].clone()).unwrap();
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]).stdout(std::process::Stdio::null());
    for (k, v) in envs {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = job["dir"].as_str() {
        c.current_dir(d);
    }
    let usage = rusage::wait(c.spawn().unwrap()).expect("wait4");
    println!("reaper exit: {}", usage.status.code().unwrap_or(-1));
    println!("reaper peak rss kib: {}", usage.peak_rss_kib);
}

/// Copy the repository's `specs/` to `dest`, with the committed example
/// image (`hello-image.toml`, which bakes a raw disk, its VMDK and a
/// tarball) set to bake the tarball only: the tests built on it judge the
/// tree, and a disk would only slow them. The example as committed has a
/// test of its own (`image::the_committed_example_bakes_the_disk_and_verifies`).
pub fn copy_specs_tar_only(dest: &Path) {
    copy_dir(&repo_root().join("specs"), dest);
    let spec = dest.join("hello-image.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("formats = "))
        .expect("the example image spec has a formats line")
        .to_string();
    std::fs::write(&spec, text.replace(&line, "formats = [\"tar\"]")).unwrap();
}

/// A throwaway GnuPG home for making signing keys (stopped and removed
/// when dropped).
pub struct Gpg {
    gpg: PathBuf,
    home: tempfile::TempDir,
}

impl Gpg {
    pub fn new(gpg: PathBuf) -> Gpg {
        Gpg {
            gpg,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.gpg);
        c.arg("--homedir").arg(self.home.path()).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    /// A signing key for `uid` of algorithm `algo` (`ed25519`, `rsa4096`,
    /// ...): (secret key file, public key file) in `dir`.
    pub fn key(&self, uid: &str, algo: &str, dir: &Path) -> (PathBuf, PathBuf) {
        run_ok(
            self.cmd()
                .args(["--quick-gen-key", uid, algo, "sign", "never"]),
        );
        let file = uid
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ' ')
            .collect::<String>()
            .replace(' ', "-");
        let secret = dir.join(format!("{file}.secret.asc"));
        let public = dir.join(format!("{file}.public.asc"));
        let s = run_ok(self.cmd().args(["--armor", "--export-secret-keys", uid]));
        std::fs::write(&secret, &s.stdout).unwrap();
        let p = run_ok(self.cmd().args(["--armor", "--export", uid]));
        std::fs::write(&public, &p.stdout).unwrap();
        (secret, public)
    }

    /// `gpg --detach-sign --armor` of `file` with the key of `uid`:
    /// writes `FILE.asc` beside it.
    pub fn detach_sign(&self, uid: &str, file: &Path) -> PathBuf {
        self.detach_sign_with(&[uid], true, file)
    }

    /// `gpg --detach-sign` of `file` with the keys of `uids` (one
    /// signature each), armored or binary, into `FILE.asc`.
    pub fn detach_sign_with(&self, uids: &[&str], armor: bool, file: &Path) -> PathBuf {
        let mut sig = file.as_os_str().to_owned();
        sig.push(".asc");
        let sig = PathBuf::from(sig);
        let _ = std::fs::remove_file(&sig);
        let mut c = self.cmd();
        for u in uids {
            c.args(["--local-user", u]);
        }
        if armor {
            c.arg("--armor");
        }
        run_ok(c.arg("--detach-sign").arg("--output").arg(&sig).arg(file));
        sig
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}
