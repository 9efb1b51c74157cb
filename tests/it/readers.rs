//! The commands that read things back (`verify`, `inspect`, `diff`) on
//! inputs nobody should have given them: FIFOs, devices, manifests of
//! another version or with nothing in them, and kinds that cannot be
//! compared. Each must answer with a clear error (exit 2) or a failed
//! check, and never hang: every run here is waited on with a generous
//! limit, after which the test kills it and fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::{ingot, stderr, stdout};

/// Far longer than any of these commands needs; only a hang reaches it.
const HANG: Duration = Duration::from_secs(120);

/// Run `cmd` to the end, or kill it and fail the test if it is still
/// running after [`HANG`].
pub fn output_or_hang(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {HANG:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a plain syscall on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A manifest naming `outputs` (file name, bytes) of the folder it is
/// written to, each with its real size and digest.
fn manifest(dir: &Path, version: serde_json::Value, outputs: &[(&str, &[u8])]) -> PathBuf {
    let outs: Vec<serde_json::Value> = outputs
        .iter()
        .map(|(name, bytes)| {
            std::fs::write(dir.join(name), bytes).unwrap();
            serde_json::json!({
                "file": name,
                "format": "raw",
                "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(bytes)),
            })
        })
        .collect();
    let input = serde_json::json!({"path": "x", "sha256": "00", "kind": "file"});
    let doc = serde_json::json!({
        "manifest_version": version,
        "ingot_version": "0.1.0",
        "name": "t",
        "source_date_epoch": 0,
        "inputs": {"image_spec": input, "base": input, "package_specs": [], "rpms": []},
        "outputs": outs,
        "packages": [],
        "image_packages": [],
        "removed": [],
        "scriptlets_not_run": [],
        "systemd": {"enabled": [], "disabled": [], "masked": []},
        "warnings": [],
    });
    let p = dir.join("t.manifest.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

fn verify(manifest: &Path) -> Output {
    output_or_hang(ingot().arg("verify").arg(manifest))
}

#[test]
fn verify_checks_a_handmade_manifest_and_fails_on_a_changed_byte() {
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), 1.into(), &[("a.raw", b"disk"), ("a.tar", b"tar")]);
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a.raw: OK\na.tar: OK\n");
    std::fs::write(t.path().join("a.tar"), b"taR").unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("a.tar: MISMATCH"), "{}", stdout(&o));
}

#[test]
fn verify_refuses_a_manifest_with_no_outputs_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), 1.into(), &[]);
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("names no outputs: there is nothing to verify"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn verify_refuses_an_unknown_or_missing_manifest_version() {
    let t = tempfile::tempdir().unwrap();
    for (v, said) in [
        (
            serde_json::json!(2),
            "has `manifest_version` 2; this ingot reads version 1",
        ),
        (serde_json::json!("1"), "has `manifest_version` \"1\""),
    ] {
        let m = manifest(t.path(), v, &[("a.raw", b"disk")]);
        let o = verify(&m);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
    let m = manifest(t.path(), 1.into(), &[("a.raw", b"disk")]);
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("\"manifest_version\": 1,", "");
    std::fs::write(&m, text).unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no `manifest_version`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_does_not_read_an_output_that_is_a_fifo_or_dev_zero() {
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), 1.into(), &[("a.raw", b"disk"), ("a.tar", b"tar")]);
    std::fs::remove_file(t.path().join("a.raw")).unwrap();
    mkfifo(&t.path().join("a.raw"));
    std::fs::remove_file(t.path().join("a.tar")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.path().join("a.tar")).unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("a.raw: NOT A REGULAR FILE (a FIFO; not read)"),
        "{out}"
    );
    assert!(
        out.contains("a.tar: NOT A REGULAR FILE (a character device; not read)"),
        "{out}"
    );
}

#[test]
fn verify_refuses_a_manifest_that_is_a_fifo_or_dev_zero() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("m.manifest.json");
    mkfifo(&fifo);
    for (path, what) in [
        (fifo.as_path(), "is a FIFO, not a regular file"),
        (
            Path::new("/dev/zero"),
            "is a character device, not a regular file",
        ),
    ] {
        let o = verify(path);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
    }
}

#[test]
fn verify_refuses_a_manifest_over_the_size_limit() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("big.manifest.json");
    let f = std::fs::File::create(&m).unwrap();
    // Sparse: 65 MiB of nothing costs no disk.
    f.set_len(65 * 1024 * 1024).unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("over the 67108864-byte limit for a manifest"),
        "{}",
        stderr(&o)
    );
}
