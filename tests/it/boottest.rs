//! `ingot boot-test`: the machinery, without a bootable operating system.
//!
//! - Real QEMU and OVMF (judges: `qemu-system-x86_64`, the `ovmf` files)
//!   boot the example image baked from the stand-in base, which has no boot
//!   loader: OVMF prints `BdsDxe: failed to load Boot0001 "UEFI QEMU NVMe
//!   Ctrl ingot 1" ...`, falls into the UEFI shell and shows `Shell> `. That
//!   is enough to see each format boot from NVMe, expectations pass and
//!   fail, the image's digest stay the same, and no QEMU be left behind.
//! - A fake QEMU (a shell script, through `INGOT_QEMU`) prints a kernel's
//!   and systemd's lines and lets the test play the guest's HTTP service on
//!   the forwarded port: HTTP expectations, phases, a guest that powers off,
//!   a QEMU that cannot start. No judge needed.
//! - `http_probe` against a loopback server answering 200, 500, a reset.
//! - Missing QEMU or OVMF: exit 2, naming the Debian packages.
//!
//! The full "boots Debian and the service answers" loop is in `boot.rs`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ingot::boottest::{ProbeResult, http_probe};
use sha2::{Digest, Sha256};

use crate::common::{cannot_run, ingot, repo_root, run_ok, stderr, stdout};
use crate::need;

// ------------------------------------------------------------- helpers

/// Software emulation on two cores: one real QEMU at a time.
use crate::common::one_qemu;

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The OVMF files, or skip (fail under CI).
fn ovmf() -> bool {
    for f in [OVMF_CODE, OVMF_VARS] {
        if !Path::new(f).is_file() {
            cannot_run(
                &format!("firmware `{f}`"),
                "not installed",
                "install Debian's `ovmf` package (`cargo xtask ci` does as root)",
            );
            return false;
        }
    }
    true
}

fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(p).unwrap(), &mut h).unwrap();
    hex::encode(h.finalize())
}

struct Images {
    raw: PathBuf,
    vmdk: PathBuf,
    vhd: PathBuf,
    qcow2: PathBuf,
}

/// The example image (stand-in base: no kernel, no boot loader) in the
/// four disk formats QEMU boots.
fn bake_images(dir: &Path) -> Images {
    let out = dir.join("out");
    run_ok(
        ingot()
            .arg("bake")
            .arg(repo_root().join("specs/hello-image.toml"))
            .args(["--format", "raw", "--format", "vmdk", "--format", "vhd"])
            .args(["--format", "qcow2"])
            .arg("--out")
            .arg(&out),
    );
    let find = |ext: &str| {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} in {}", out.display()))
    };
    Images {
        raw: find("raw"),
        vmdk: find("vmdk"),
        vhd: find("vhd"),
        qcow2: find("qcow2"),
    }
}

/// QEMU processes whose command line holds `marker`.
fn qemus_with(marker: &str) -> Vec<String> {
    let o = Command::new("pgrep")
        .arg("-af")
        .arg(marker)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("qemu") || l.contains("fake-qemu"))
        .map(str::to_string)
        .collect()
}

/// The `-name` ingot gives QEMU in a process: `ingot-boottest-PID-N`.
fn marker_of(pid: u32) -> String {
    format!("ingot-boottest-{pid}-")
}

/// How long any wait here may take before the test calls it a hang. Only
/// a guard: every run ends long before on a loaded machine too, and no
/// test measures how long something took.
const HANG_GUARD: Duration = Duration::from_secs(600);

/// Waits until `cond` holds; fails as a hang after [`HANG_GUARD`].
fn until(mut cond: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG_GUARD, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run ingot; return its output and its pid. Killed, and the test failed,
/// if it runs past [`HANG_GUARD`].
fn run_ingot(cmd: &mut Command) -> (Output, u32) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut status = None;
    until(
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
        "ingot ended",
    );
    let output = Output {
        status: status.unwrap(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, pid)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\n--- stderr\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

// ------------------------------------------------------- real QEMU, OVMF

#[test]
fn each_format_boots_to_the_firmware_and_the_image_never_changes() {
    let _ = need!("qemu-system-x86_64");
    if !ovmf() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let images = bake_images(t.path());
    let _q = one_qemu();
    for (image, format) in [
        (&images.raw, "raw"),
        (&images.vmdk, "vmdk"),
        (&images.vhd, "vhd"),
        (&images.qcow2, "qcow2"),
    ] {
        let before = sha256_file(image);
        let log = t.path().join(format!("{format}.log"));
        let (o, pid) = run_ingot(
            ingot()
                .args(["--json", "boot-test"])
                .arg(image)
                .args([
                    "--expect-console",
                    r"BdsDxe: failed to load Boot0001 .*NVMe",
                ])
                // The ESP, found inside the image: the format was read right.
                .args(["--expect-console", r"NVMe\(.*/HD\(128,GPT,"])
                .args(["--timeout", "180", "--serial-log"])
                .arg(&log),
        );
        assert!(
            o.status.success(),
            "{format}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let doc = json(&o);
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["format"], format);
        assert!(doc["accel"] == "tcg" || doc["accel"] == "kvm", "{doc}");
        let elapsed = doc["elapsed_seconds"].as_f64().unwrap();
        let exps = doc["expectations"].as_array().unwrap();
        assert_eq!(exps.len(), 2);
        for e in exps {
            assert_eq!(e["kind"], "console");
            assert_eq!(e["met"], true, "{e}");
            let at = e["at_seconds"].as_f64().unwrap();
            assert!(at > 0.0 && at <= elapsed, "{e}");
        }
        // The console as text, control sequences gone; the whole of it in
        // the log.
        let tail = doc["console_tail"].as_str().unwrap();
        assert!(tail.contains("BdsDxe: failed to load Boot0001"), "{tail}");
        assert!(!tail.contains('\x1b'), "{tail:?}");
        let whole = std::fs::read_to_string(&log).unwrap();
        assert!(whole.contains("BdsDxe: failed to load Boot0001"), "{whole}");
        assert!(whole.contains("Mapping table"), "{whole}");

        assert_eq!(
            sha256_file(image),
            before,
            "boot-test changed the {format} image"
        );
        assert_eq!(qemus_with(&marker_of(pid)), Vec::<String>::new());
    }
}

#[test]
fn an_unmet_expectation_fails_with_exit_1_and_the_console_tail() {
    let _ = need!("qemu-system-x86_64");
    if !ovmf() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let images = bake_images(t.path());
    let before = sha256_file(&images.raw);
    let _q = one_qemu();

    // The firmware gives up (UEFI shell): no need to wait for the timeout,
    // which is longer than the hang guard.
    let (o, pid) = run_ingot(ingot().arg("boot-test").arg(&images.raw).args([
        "--expect-console",
        "no such line",
        "--timeout",
        "3600",
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("timed out"), "waited for the timeout: {err}");
    assert!(err.contains("stopped in the UEFI shell"), "{err}");
    assert!(
        err.contains("still missing: console /no such line/"),
        "{err}"
    );
    assert!(
        err.contains("--- serial console, last 40 lines ---"),
        "{err}"
    );
    assert!(err.contains("BdsDxe: failed to load Boot0001"), "{err}");
    assert!(
        stdout(&o).contains("MISS  console /no such line/"),
        "{}",
        stdout(&o)
    );
    assert_eq!(qemus_with(&marker_of(pid)), Vec::<String>::new());

    // The timeout, with --json: one document on stdout, ok false.
    let (o, pid) = run_ingot(
        ingot()
            .args(["--json", "boot-test"])
            .arg(&images.raw)
            .args(["--expect-console", "no such line", "--timeout", "2"]),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out after 2 s"), "{err}");
    let doc = json(&o);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["expectations"][0]["met"], false);
    assert_eq!(
        doc["expectations"][0]["at_seconds"],
        serde_json::Value::Null
    );
    assert!(
        doc["failure"].as_str().unwrap().contains("timed out"),
        "{doc}"
    );
    assert_eq!(qemus_with(&marker_of(pid)), Vec::<String>::new());

    assert_eq!(
        sha256_file(&images.raw),
        before,
        "boot-test changed the image"
    );
}

#[test]
fn ctrl_c_leaves_no_qemu_behind() {
    let _ = need!("qemu-system-x86_64");
    if !ovmf() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let images = bake_images(t.path());
    let before = sha256_file(&images.vmdk);
    let _q = one_qemu();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut child = ingot()
            .arg("boot-test")
            .arg(&images.vmdk)
            .args(["--expect-console", "no such line", "--accel", "tcg"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let marker = marker_of(child.id());
        until(|| !qemus_with(&marker).is_empty(), "QEMU started");
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
        let status = child.wait().unwrap();
        assert!(!status.success());
        // QEMU dies with ingot (its parent-death signal).
        until(|| qemus_with(&marker).is_empty(), "QEMU died with ingot");
    }
    assert_eq!(
        sha256_file(&images.vmdk),
        before,
        "boot-test changed the image"
    );
}

// ------------------------------------------------------------ fake QEMU

/// A stand-in for QEMU: records its arguments, its pid and its process
/// group, prints `console` on stdout (the serial console), then runs
/// `then` (shell).
struct Fake {
    dir: tempfile::TempDir,
}

/// 4 KiB of zeros with an MBR boot signature: a disk image by its magic
/// (boot-test refuses a file without one before it looks for QEMU).
fn blank_disk() -> Vec<u8> {
    let mut d = vec![0u8; 4096];
    d[510..512].copy_from_slice(&[0x55, 0xAA]);
    d
}

impl Fake {
    fn new(console: &str, then: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$@\" > '{args}.tmp' && mv '{args}.tmp' '{args}'\n\
             echo $$ > '{pid}'\n\
             printf '{console}'\n\
             {then}\n",
            args = dir.path().join("args").display(),
            pid = dir.path().join("pid").display(),
        );
        let qemu = dir.path().join("fake-qemu");
        std::fs::write(&qemu, script).unwrap();
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("CODE.fd"), b"code").unwrap();
        std::fs::write(dir.path().join("VARS.fd"), b"vars").unwrap();
        std::fs::write(dir.path().join("disk.raw"), blank_disk()).unwrap();
        Fake { dir }
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("disk.raw")
    }

    fn cmd(&self) -> Command {
        let mut c = ingot();
        c.env("INGOT_QEMU", self.dir.path().join("fake-qemu"))
            .env("INGOT_OVMF_CODE", self.dir.path().join("CODE.fd"))
            .env("INGOT_OVMF_VARS", self.dir.path().join("VARS.fd"))
            .args(["-v", "boot-test", "--accel", "tcg"])
            .arg(self.image());
        c
    }

    /// The arguments ingot gave QEMU, once it started.
    fn args(&self) -> Vec<String> {
        let p = self.dir.path().join("args");
        until(|| p.exists(), "the fake QEMU started");
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The fake QEMU's pid (and process group), once it started.
    fn pid(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(self.dir.path().join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the fake QEMU's process group is empty within a minute
    /// (killed members that were not QEMU's own children are reaped by
    /// init, a moment later).
    fn group_gone(&self) -> bool {
        let pid = self.pid().expect("the fake QEMU started");
        let start = Instant::now();
        // SAFETY: signal 0 only checks for existence.
        while unsafe { libc::kill(-pid, 0) } == 0 {
            if start.elapsed() > Duration::from_secs(60) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Fake {
    /// A failed test leaves no fake QEMU (or its children) behind.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on the fake's own process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// The host port QEMU was told to forward to the guest's `guest` port.
fn forwarded(args: &[String], guest: u16) -> u16 {
    let suffix = format!("-:{guest}");
    args.iter()
        .flat_map(|a| a.split(','))
        .filter_map(|o| o.strip_prefix("hostfwd=tcp:127.0.0.1:"))
        .find_map(|o| o.strip_suffix(&suffix))
        .unwrap_or_else(|| panic!("no forward of port {guest} in {args:?}"))
        .parse()
        .unwrap()
}

const BOOT_LINES: &str = "BdsDxe: loading Boot0001\\n[    0.000000] Linux version 6.1.0-cloud-amd64\\n\
    [    1.000000] systemd[1]: systemd 252 running in system mode\\n\\033[0;32m  OK  \\033[0m] Started hello.service\\n";

#[test]
fn http_expectations_pass_only_on_a_2xx_answer_on_the_forwarded_port() {
    let fake = Fake::new(BOOT_LINES, "exec sleep 3600");
    let child = fake
        .cmd()
        .args([
            "--expect-http",
            "8080/health",
            "--expect-console",
            r"Started hello\.service",
        ])
        .args(["--timeout", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let args = fake.args();
    for want in [
        "q35",
        "nvme,drive=d0,serial=ingot,bootindex=0",
        "virtio-net-pci,netdev=n0,romfile=",
        "tcg,thread=multi,tb-size=64",
    ] {
        assert!(args.iter().any(|a| a == want), "no {want} in {args:?}");
    }
    let drive = args
        .iter()
        .find(|a| a.starts_with("if=none,id=d0,"))
        .unwrap();
    assert!(drive.contains("snapshot=on"), "{drive}");
    assert!(drive.contains("format=raw"), "{drive}");
    let vars = args
        .iter()
        .find(|a| a.starts_with("if=pflash,unit=1"))
        .unwrap();
    assert!(vars.contains("snapshot=on"), "{vars}");

    // Play the guest's service on the forwarded port: an error, a
    // connection reset (what QEMU's user network does while nothing
    // listens in the guest), then 200.
    let port = forwarded(&args, 8080);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut seen = Vec::new();
    for answer in ["500", "reset", "200"] {
        let (mut s, _) = listener.accept().unwrap();
        seen.push(read_request(&mut s));
        match answer {
            "reset" => reset(s),
            code => {
                let _ = write!(s, "HTTP/1.0 {code} X\r\nContent-Length: 0\r\n\r\n");
            }
        }
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(seen[0].starts_with("GET /health HTTP/1.0\r\n"), "{seen:?}");
    let out = stdout(&o);
    assert!(out.contains("ok    http 8080/health after"), "{out}");
    assert!(
        out.contains(r"ok    console /Started hello\.service/"),
        "{out}"
    );
    // -v: the phases on stderr.
    let err = stderr(&o);
    for phase in [
        "firmware",
        "kernel after",
        "userspace after",
        "8080/health answered HTTP 200",
    ] {
        assert!(err.contains(phase), "no `{phase}` in:\n{err}");
    }
    assert!(fake.group_gone(), "QEMU's process group is still there");
}

fn read_request(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.ends_with(b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&req).into_owned()
}

/// Close with a TCP reset (SO_LINGER 0).
fn reset(s: std::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

#[test]
fn a_guest_that_powers_off_early_fails_at_once() {
    let fake = Fake::new(BOOT_LINES, "exit 0");
    // A timeout longer than the hang guard: only an early end passes.
    let (o, _) = run_ingot(fake.cmd().args([
        "--expect-http",
        "80/",
        "--expect-console",
        "Started",
        "--timeout",
        "3600",
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("timed out"), "waited for the timeout: {err}");
    assert!(err.contains("the guest powered off"), "{err}");
    assert!(err.contains("still missing: http 80/"), "{err}");
    assert!(!err.contains("still missing: http 80/, console"), "{err}");
    assert!(
        err.contains("Linux version 6.1.0-cloud-amd64"),
        "no console tail:\n{err}"
    );
}

#[test]
fn a_qemu_that_cannot_start_is_exit_2_with_its_message() {
    let fake = Fake::new(
        "",
        "echo \"qemu-system-x86_64: -drive if=none: Could not open 'x': Permission denied\" >&2; exit 1",
    );
    let o = fake
        .cmd()
        .args(["--expect-console", "x", "--timeout", "60"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("QEMU could not start the machine"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn a_hung_qemu_is_killed_at_the_timeout_with_its_whole_group() {
    // A child in QEMU's process group that ignores SIGTERM.
    // It would run for an hour, longer than the hang guard.
    let fake = Fake::new(
        "BdsDxe: loading\\n",
        "trap '' TERM; sleep 3600 & sleep 3600; wait",
    );
    let (o, _) = run_ingot(
        fake.cmd()
            .args(["--expect-console", "never", "--timeout", "2"]),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out after 2 s"), "{err}");
    assert!(err.contains("BdsDxe: loading"), "{err}");
    assert!(fake.group_gone(), "QEMU's process group is still there");
}

// --------------------------------------------------------- HTTP probing

/// A loopback server answering each connection as `answers` says; a
/// `silent` one holds the connection, answering nothing, until the sender
/// returned is used or dropped.
fn serve(
    answers: &'static [&'static str],
) -> (
    u16,
    std::thread::JoinHandle<Vec<String>>,
    std::sync::mpsc::Sender<()>,
) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().unwrap();
            match *answer {
                "reset" => reset(s),
                "close" => drop(s),
                "silent" => {
                    requests.push(read_request(&mut s));
                    let _ = released.recv_timeout(HANG_GUARD);
                }
                text => {
                    requests.push(read_request(&mut s));
                    let _ = s.write_all(text.as_bytes());
                }
            }
        }
        requests
    });
    (port, h, release)
}

#[test]
fn http_probe_tells_answers_from_resets() {
    let (port, server, release) = serve(&[
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.0 500 Internal Server Error\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "reset",
        "close",
        "SSH-2.0-OpenSSH_9.2\r\n",
        "silent",
    ]);
    // Generous for the answers, which come at once however loaded the
    // machine is; the silent server holds its connection until the probe
    // has given up on its own.
    let probe = |path| http_probe(port, path, Duration::from_secs(60));
    assert_eq!(probe("/health"), ProbeResult::Status(200));
    let r = probe("/");
    assert_eq!(r, ProbeResult::Status(500));
    assert!(!r.is_success());
    let r = probe("/");
    assert_eq!(r, ProbeResult::Status(204));
    assert!(r.is_success());
    let r = probe("/");
    assert!(matches!(r, ProbeResult::NoAnswer(_)), "{r:?}");
    assert!(!r.is_success());
    let r = probe("/");
    assert!(matches!(r, ProbeResult::NoAnswer(_)), "{r:?}");
    let r = probe("/");
    assert!(matches!(r, ProbeResult::NotHttp(_)), "{r:?}");
    let r = http_probe(port, "/slow", Duration::from_secs(1));
    assert_eq!(r, ProbeResult::NoAnswer("nothing within 1 s".into()));
    release.send(()).unwrap();
    let requests = server.join().unwrap();
    assert_eq!(
        requests[0],
        "GET /health HTTP/1.0\r\nHost: localhost\r\nUser-Agent: ingot-boot-test\r\nAccept: */*\r\n\r\n"
    );

    // Nothing listening: refused.
    let free = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let r = http_probe(port, "/", Duration::from_secs(60));
    assert_eq!(r, ProbeResult::NoAnswer("connection refused".into()));
}

// ------------------------------------------------------ missing judges

#[test]
fn missing_qemu_or_ovmf_is_exit_2_naming_the_debian_packages() {
    let t = tempfile::tempdir().unwrap();
    let image = t.path().join("disk.raw");
    std::fs::write(&image, blank_disk()).unwrap();
    let run = |var: &str| {
        let o = ingot()
            .env(var, "/nonexistent")
            .arg("boot-test")
            .arg(&image)
            .args(["--expect-console", "x"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        stderr(&o)
    };
    let err = run("INGOT_QEMU");
    assert!(err.contains("`/nonexistent` (INGOT_QEMU)"), "{err}");
    assert!(
        err.contains("hint: install the Debian package `qemu-system-x86`"),
        "{err}"
    );
    let err = run("INGOT_OVMF_CODE");
    assert!(
        err.contains("hint: install the Debian package `ovmf`"),
        "{err}"
    );
    let err = run("INGOT_OVMF_VARS");
    assert!(err.contains("`ovmf`"), "{err}");

    // Bad expectations are usage errors, before anything runs.
    let bad_args: [&[&str]; 3] = [
        &["--expect-http", "http://x/"],
        &["--expect-console", "(unclosed"],
        &[],
    ];
    for bad in bad_args {
        let o = ingot()
            .env("INGOT_QEMU", "/nonexistent")
            .arg("boot-test")
            .arg(&image)
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}
