//! Progress you can watch: what the library reports and what the CLI draws.
//!
//! - A recording reporter (`ingot::progress::Recording`) hears every long
//!   step of a bake start, advance to its total (the root filesystem's to
//!   the partition's size from the writer's watermark, the digest pass's
//!   and each output's to the disk's size) and finish once, in steps of at
//!   least `BYTES_STEP`; and the outputs are the bytes a quiet bake writes.
//!   Boot-test's phases (a fake QEMU printing a kernel's and systemd's
//!   lines) come as tasks noting the console's last line.
//! - `ingot bake`, `build` and `boot-test` run under a real pseudo-terminal
//!   (opened here: stderr on the terminal, stdout on a pipe): bars are
//!   drawn with escape codes, and the outputs are the same bytes as
//!   without. With stderr piped, `--json`, `-q` or `TERM=dumb`: no escape
//!   code and no bar; `-v` keeps its timestamped step lines.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use ingot::progress::{BYTES_STEP, Recording, Seen, Unit};

use crate::bake::sha256_file;
use crate::common::{copy_dir, ingot, repo_root, run_ok, stderr, stdout};

// ------------------------------------------------------------- helpers

/// What a command wrote, its stderr on a pseudo-terminal.
struct OnTerminal {
    status: ExitStatus,
    stdout: String,
    /// Everything drawn on the terminal, escape codes included.
    screen: String,
}

/// Run `cmd` with stderr on a new pseudo-terminal (160 columns) and
/// stdout on a pipe; read both until it ends.
fn on_terminal(cmd: &mut Command) -> OnTerminal {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let name = PathBuf::from(name.to_str().unwrap());
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .expect("open the terminal's other end");
    rustix::termios::tcsetwinsize(
        &terminal,
        rustix::termios::Winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .expect("set the window size");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(terminal))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // `cmd` holds the terminal's other end too: only the child may.
    cmd.stderr(Stdio::null());
    let mut master = File::from(master);
    // Read the terminal as it comes: the child must never block on it. It
    // reads as an error (EIO) once the last process holding it is gone.
    let screen = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 1 << 16];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    let screen = screen.join().unwrap();
    OnTerminal {
        status,
        stdout: out,
        screen: String::from_utf8_lossy(&screen).into_owned(),
    }
}

/// A bar as the CLI draws one: `[=====>    ]`.
fn has_bar(text: &str) -> bool {
    regex::Regex::new(r"\[[=> ]{30}\]").unwrap().is_match(text)
}

/// Labels of tasks a bake reports that no step line says.
const BAKE_LABELS: &[&str] = &[
    "hashing the sources of hello",
    "compressing hello-1.0.0-1.noarch.rpm",
    "reading the base",
    "installing payloads",
    "digesting the disk image",
    "writing hello.vmdk",
    "writing hello.tar",
];

/// A copy of the repository's `specs/` and `fixtures/`.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    copy_dir(&repo_root().join("specs"), &dir.join("specs"));
    copy_dir(&repo_root().join("fixtures"), &dir.join("fixtures"));
    (tmp, dir)
}

fn bake_cmd(repo: &Path, out: &Path) -> Command {
    let mut c = ingot();
    c.arg("bake")
        .arg(repo.join("specs/hello-image.toml"))
        .args(["--format", "raw", "--format", "vmdk", "--format", "tar"])
        .arg("--out")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("TERM", "xterm");
    c
}

/// Every file in `dir` with its SHA-256, sorted by name.
fn files_in(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                sha256_file(&e.path()),
            )
        })
        .collect();
    v.sort();
    v
}

// --------------------------------------------------- the library's events

fn task<'a>(tasks: &'a [Seen], what: &str) -> &'a Seen {
    tasks
        .iter()
        .find(|t| t.what == what)
        .unwrap_or_else(|| panic!("no task `{what}` in {tasks:#?}"))
}

/// Finished once, nothing after; reported in steps, not per chunk.
fn ended_well(t: &Seen) {
    assert!(t.finished && !t.after_finish, "{t:#?}");
    if t.unit == Unit::Bytes {
        let min_step = BYTES_STEP.max(t.total.unwrap_or(0) / 1000);
        assert!(
            (t.advances as u64) <= t.done / min_step + 1,
            "more advances than steps: {t:#?}"
        );
    }
}

#[test]
fn a_bake_reports_every_long_step_to_its_total() {
    let (_tmp, repo) = workspace();
    let spec = ingot::spec::image::load_image(&repo.join("specs/hello-image.toml")).unwrap();
    let opts = |out: PathBuf| ingot::bake::BakeOptions {
        out,
        base: None,
        deps_check: true,
        source_date_epoch: Some(1_700_000_000),
        compression: ingot::rpm::Compression::default(),
        jobs: std::num::NonZeroUsize::new(2).unwrap(),
        formats: vec![
            ingot::disk::OutputFormat::Raw,
            ingot::disk::OutputFormat::Vmdk,
            ingot::disk::OutputFormat::Tar,
        ],
        // The locked package is downloaded: into the test's own folder.
        repos: ingot::bake::RepoOptions {
            cache: repo.join("cache"),
            ..Default::default()
        },
    };
    let heard = Recording::default();
    let reported_out = repo.join("reported");
    let r = ingot::bake::bake(&spec, &opts(reported_out.clone()), &heard).unwrap();
    let quiet_out = repo.join("quiet");
    ingot::bake::bake(&spec, &opts(quiet_out.clone()), &ingot::progress::Quiet).unwrap();
    assert_eq!(
        files_in(&reported_out),
        files_in(&quiet_out),
        "reporting changed an output"
    );

    let tasks = heard.tasks();
    for t in &tasks {
        ended_well(t);
    }
    let disk = r.manifest.disk.as_ref().expect("a disk was made");
    // In table order: the root filesystem's first.
    let root = &disk.partitions[0];

    let exact = |what: &str, unit: Unit, total: u64| {
        let t = task(&tasks, what);
        assert_eq!(
            (t.unit, t.total, t.done),
            (unit, Some(total), total),
            "{t:#?}"
        );
    };
    let hashing = task(&tasks, "hashing the sources of hello");
    assert!(hashing.total.is_some_and(|n| n > 0), "{hashing:#?}");
    exact(
        "hashing the sources of hello",
        Unit::Bytes,
        hashing.total.unwrap(),
    );
    let compressing = task(&tasks, "compressing hello-1.0.0-1.noarch.rpm");
    exact(
        &compressing.what,
        Unit::Bytes,
        compressing.total.filter(|&n| n > 0).expect("a total"),
    );
    let installing = task(&tasks, "installing payloads");
    exact(
        "installing payloads",
        Unit::Bytes,
        installing.total.filter(|&n| n > 0).expect("a total"),
    );
    assert!(
        installing
            .notes
            .iter()
            .any(|n| n.starts_with("hello-1.0.0-1")),
        "{installing:#?}"
    );
    let base = task(&tasks, "reading the base");
    let base_size = std::fs::metadata(repo.join("fixtures/al2023-standin/rootfs.tar.zst"))
        .unwrap()
        .len();
    assert_eq!((base.unit, base.total), (Unit::Bytes, Some(base_size)));
    assert!(base.done > 0 && base.done <= base_size, "{base:#?}");
    exact("writing the root filesystem", Unit::Bytes, root.size);
    // Followed as the writer raises its watermark, not only told the end.
    let writing_root = task(&tasks, "writing the root filesystem");
    assert!(writing_root.advances >= 2, "{writing_root:#?}");
    exact("digesting the disk image", Unit::Bytes, disk.size);
    exact("writing hello.vmdk", Unit::Bytes, disk.size);
    let tar = task(&tasks, "writing hello.tar");
    let tar_file = r
        .outputs
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "tar"))
        .unwrap();
    assert_eq!(
        (tar.unit, tar.total, tar.done),
        (
            Unit::Bytes,
            None,
            std::fs::metadata(tar_file).unwrap().len()
        )
    );
    let steps: Vec<String> = heard
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ingot::progress::Event::Step(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(steps.iter().any(|s| s == "writing the disk"), "{steps:?}");
}

/// A fake QEMU: prints a firmware's, a kernel's and systemd's lines, then
/// waits to be killed.
fn fake_qemu(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let qemu = dir.join("fake-qemu");
    std::fs::write(
        &qemu,
        "#!/bin/sh\nprintf 'BdsDxe: loading Boot0001\\n'\nsleep 0.3\n\
         printf '[    0.000000] Linux version 6.1.0-cloud-amd64\\n'\nsleep 0.3\n\
         printf '[    1.000000] systemd[1]: systemd 252 running\\n'\nsleep 0.3\n\
         printf 'Started hello.service\\n'\nexec sleep 120\n",
    )
    .unwrap();
    std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("CODE.fd"), b"code").unwrap();
    std::fs::write(dir.join("VARS.fd"), b"vars").unwrap();
    let mut disk = vec![0u8; 4096];
    disk[510..512].copy_from_slice(&[0x55, 0xAA]);
    std::fs::write(dir.join("disk.raw"), disk).unwrap();
    vec![
        ("INGOT_QEMU", qemu),
        ("INGOT_OVMF_CODE", dir.join("CODE.fd")),
        ("INGOT_OVMF_VARS", dir.join("VARS.fd")),
    ]
}

#[test]
fn boot_test_reports_each_phase_with_the_consoles_last_line() {
    let tmp = tempfile::tempdir().unwrap();
    let env = fake_qemu(tmp.path());
    let mut opts = ingot::boottest::BootOptions::new(tmp.path().join("disk.raw"));
    opts.expectations
        .push(ingot::boottest::Expectation::console("Started hello").unwrap());
    opts.timeout = Duration::from_secs(120);
    opts.accel = ingot::boottest::AccelChoice::Tcg;
    opts.qemu = Some(env[0].1.clone());
    opts.ovmf_code = Some(env[1].1.clone());
    opts.ovmf_vars = Some(env[2].1.clone());
    let heard = Recording::default();
    let report = ingot::boottest::boot_test(&opts, &heard).unwrap();
    assert!(report.ok);
    let tasks = heard.tasks();
    let names: Vec<&str> = tasks.iter().map(|t| t.what.as_str()).collect();
    assert_eq!(
        names,
        ["booting: firmware", "booting: kernel", "booting: userspace"],
        "{tasks:#?}"
    );
    for t in &tasks {
        assert_eq!(t.unit, Unit::Phase);
        ended_well(t);
    }
    assert!(
        tasks[1]
            .notes
            .iter()
            .any(|n| n.ends_with("Linux version 6.1.0-cloud-amd64")),
        "{tasks:#?}"
    );
    assert_eq!(
        tasks[2].notes.last().map(String::as_str),
        Some("Started hello.service"),
        "{tasks:#?}"
    );
}

// ------------------------------------------------------- what is drawn

#[test]
fn bake_on_a_terminal_draws_bars_and_writes_the_same_bytes() {
    let (_tmp, repo) = workspace();
    let drawn_out = repo.join("drawn");
    let t = on_terminal(&mut bake_cmd(&repo, &drawn_out));
    assert!(t.status.success(), "{}", t.screen);
    assert!(t.screen.contains("\x1b["), "no escape codes:\n{}", t.screen);
    assert!(has_bar(&t.screen), "no bar:\n{}", t.screen);
    for label in BAKE_LABELS.iter().chain(&["writing the root filesystem"]) {
        assert!(
            t.screen.contains(label),
            "`{label}` not drawn:\n{}",
            t.screen
        );
    }
    // stdout holds the result only.
    let image = PathBuf::from(t.stdout.trim());
    assert!(
        image.is_file() && t.stdout.lines().count() == 1,
        "{}",
        t.stdout
    );

    let plain_out = repo.join("plain");
    let o = run_ok(&mut bake_cmd(&repo, &plain_out));
    assert_eq!(files_in(&drawn_out), files_in(&plain_out));
    assert_eq!(
        image.file_name(),
        PathBuf::from(stdout(&o).trim()).file_name()
    );
}

#[test]
fn bake_without_a_terminal_draws_nothing_and_v_keeps_its_step_lines() {
    let (_tmp, repo) = workspace();
    let o = run_ok(bake_cmd(&repo, &repo.join("a")).arg("-v"));
    let err = stderr(&o);
    assert!(!err.contains('\x1b'), "escape codes in a log:\n{err}");
    assert!(!has_bar(&err), "a bar in a log:\n{err}");
    for label in BAKE_LABELS {
        assert!(!err.contains(label), "`{label}` in a log:\n{err}");
    }
    let step = regex::Regex::new(r"(?m)^\[ *\d+\.\d\ds\] writing the disk$").unwrap();
    assert!(step.is_match(&err), "no timestamped step line:\n{err}");
    assert!(err.contains("] done"), "{err}");

    let o = run_ok(&mut bake_cmd(&repo, &repo.join("b")));
    let err = stderr(&o);
    assert!(!err.contains('\x1b') && !has_bar(&err), "{err}");
    assert!(
        !err.contains("] writing the disk"),
        "step lines without -v:\n{err}"
    );
}

#[test]
fn json_quiet_and_a_dumb_terminal_draw_nothing_on_a_terminal() {
    let (_tmp, repo) = workspace();
    let t = on_terminal(bake_cmd(&repo, &repo.join("json")).arg("--json"));
    assert!(t.status.success(), "{}", t.screen);
    let doc: serde_json::Value = serde_json::from_str(&t.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true);
    assert!(
        !t.screen.contains('\x1b'),
        "drawn with --json:\n{}",
        t.screen
    );
    assert!(!has_bar(&t.screen), "{}", t.screen);

    let t = on_terminal(bake_cmd(&repo, &repo.join("quiet")).arg("-q"));
    assert!(t.status.success(), "{}", t.screen);
    assert!(t.screen.is_empty(), "drawn with -q:\n{}", t.screen);

    let t = on_terminal(
        ingot()
            .arg("build")
            .arg(repo.join("specs/hello/hello.toml"))
            .arg("--out")
            .arg(repo.join("dumb"))
            .env("TERM", "dumb"),
    );
    assert!(t.status.success(), "{}", t.screen);
    assert!(
        !t.screen.contains('\x1b'),
        "drawn on TERM=dumb:\n{}",
        t.screen
    );
}

#[test]
fn build_on_a_terminal_draws_hashing_and_compressing() {
    let (_tmp, repo) = workspace();
    let build = |out: &str| {
        let mut c = ingot();
        c.arg("build")
            .arg(repo.join("specs/hello/hello.toml"))
            .arg("--out")
            .arg(repo.join(out))
            .env("TERM", "xterm");
        c
    };
    let t = on_terminal(&mut build("drawn"));
    assert!(t.status.success(), "{}", t.screen);
    assert!(
        t.screen.contains("\x1b[") && has_bar(&t.screen),
        "{}",
        t.screen
    );
    for label in [
        "hashing the sources of hello",
        "compressing hello-1.0.0-1.noarch.rpm",
    ] {
        assert!(
            t.screen.contains(label),
            "`{label}` not drawn:\n{}",
            t.screen
        );
    }
    let o = run_ok(&mut build("plain"));
    assert!(!stderr(&o).contains('\x1b'));
    assert_eq!(files_in(&repo.join("drawn")), files_in(&repo.join("plain")));
}

#[test]
fn boot_test_on_a_terminal_draws_its_phases() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = ingot();
    for (k, v) in fake_qemu(tmp.path()) {
        c.env(k, v);
    }
    c.args([
        "boot-test",
        "--accel",
        "tcg",
        "--expect-console",
        "Started hello",
    ])
    .arg(tmp.path().join("disk.raw"))
    .env("TERM", "xterm");
    let t = on_terminal(&mut c);
    assert!(t.status.success(), "{}", t.screen);
    for label in ["booting: firmware", "booting: kernel", "booting: userspace"] {
        assert!(
            t.screen.contains(label),
            "`{label}` not drawn:\n{}",
            t.screen
        );
    }
    assert!(t.screen.contains("\x1b["), "{}", t.screen);
}
