//! `boot-test` refuses what is not a disk image before it looks for QEMU:
//! a text file, a FIFO, `/dev/zero`, a folder. These tests need no QEMU:
//! a stand-in `INGOT_QEMU` records whether it was ever started.

use std::path::Path;

use crate::common::{ingot, stderr};
use crate::readers::{mkfifo, output_or_hang};

/// Run `boot-test IMAGE` with a stand-in QEMU that leaves a mark when it
/// runs; returns (exit code, stderr, whether it ran).
fn boot_test(dir: &Path, image: &Path) -> (Option<i32>, String, bool) {
    let mark = dir.join("qemu-ran");
    let qemu = dir.join("fake-qemu");
    std::fs::write(
        &qemu,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&qemu, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = output_or_hang(
        ingot()
            .env("INGOT_QEMU", &qemu)
            .arg("boot-test")
            .arg(image)
            .args(["--expect-console", "login:", "--timeout", "30"]),
    );
    (o.status.code(), stderr(&o), mark.exists())
}

#[test]
fn a_text_file_is_refused_naming_what_it_is_not_before_qemu_starts() {
    let t = tempfile::tempdir().unwrap();
    let text = t.path().join("notes.raw");
    std::fs::write(&text, "this is not a disk\n".repeat(100)).unwrap();
    let (code, err, ran) = boot_test(t.path(), &text);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is not a disk image: it has no GPT or MBR signature (raw), no VMDK header and no VHD footer"),
        "{err}"
    );
    assert!(!ran, "QEMU was started: {err}");
    // An empty file too.
    let empty = t.path().join("empty.raw");
    std::fs::write(&empty, b"").unwrap();
    let (code, err, ran) = boot_test(t.path(), &empty);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a disk image"), "{err}");
    assert!(!ran);
}

#[test]
fn a_fifo_dev_zero_or_folder_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("disk.raw");
    mkfifo(&fifo);
    for (image, what) in [
        (fifo.as_path(), "is a FIFO, not a regular file"),
        (
            Path::new("/dev/zero"),
            "is a character device, not a regular file",
        ),
        (t.path(), "is a folder, not a regular file"),
    ] {
        let (code, err, ran) = boot_test(t.path(), image);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(what), "{err}");
        assert!(!ran, "QEMU was started: {err}");
    }
}
