//! The full loop on a bootable base: bake the example service into the
//! Debian boot base (`cargo xtask boot-base`), boot the very image file in
//! QEMU with `ingot boot-test`, and see the service answer; a broken image
//! fails with exit 1 and the console's tail. The image's digest never
//! changes.
//!
//! The base comes from `INGOT_BOOT_BASE` (set by `cargo xtask ci`) or
//! `target/boot-base/debian12-boot.tar.zst`; without it the tests skip,
//! except under `CI=true`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::common::{cannot_run, copy_dir, ingot, one_qemu, repo_root, run_ok, stdout};
use crate::need;

pub(crate) fn boot_base() -> Option<PathBuf> {
    let p = std::env::var_os("INGOT_BOOT_BASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/boot-base/debian12-boot.tar.zst"));
    if p.is_file() {
        return Some(p);
    }
    cannot_run(
        &format!("boot base `{}`", p.display()),
        "not built",
        "run `cargo xtask boot-base` as root (`cargo xtask ci` does), or set INGOT_BOOT_BASE",
    );
    None
}

fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(p).unwrap(), &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Bake `specs/hello-boot.toml` (with `extra` appended) on `base`.
fn bake(dir: &Path, base: &Path, extra: &str) -> PathBuf {
    copy_dir(&repo_root().join("specs"), &dir.join("specs"));
    let spec = dir.join("specs/hello-boot.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text}{extra}")).unwrap();
    let o = run_ok(
        ingot()
            .arg("--json")
            .arg("bake")
            .arg(&spec)
            .arg("--base")
            .arg(base)
            .arg("--out")
            .arg(dir.join("out")),
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    PathBuf::from(doc["image"].as_str().unwrap())
}

#[test]
fn the_baked_service_answers_over_http_in_the_booted_image() {
    let _ = need!("qemu-system-x86_64");
    let Some(base) = boot_base() else { return };
    let t = tempfile::tempdir().unwrap();
    let image = bake(t.path(), &base, "");
    let before = sha256_file(&image);
    let _qemu = one_qemu();
    let o = ingot()
        .arg("--json")
        .arg("boot-test")
        .arg(&image)
        .args([
            "--expect-http",
            "8080/health",
            "--expect-console",
            "Started .*hello.service",
        ])
        // Generous: software emulation on a loaded machine is slow.
        .args(["--timeout", "1200"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "boot-test failed:\n{}\n{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true);
    assert_eq!(sha256_file(&image), before, "boot-test changed the image");
}

#[test]
fn a_broken_image_fails_with_exit_1_and_the_console_tail() {
    let _ = need!("qemu-system-x86_64");
    let Some(base) = boot_base() else { return };
    let t = tempfile::tempdir().unwrap();
    // The service's unit is disabled; a probe unit reports and powers the
    // machine off, so the failure shows without waiting for the timeout.
    let probe = "[Unit]\\nDescription=ingot boot-test probe\\nAfter=multi-user.target\\n\\n[Service]\\nType=oneshot\\nExecStart=/bin/sh -c 'echo PROBE-RESULT hello=$(systemctl is-active hello.service) > /dev/ttyS0; systemctl poweroff'\\n\\n[Install]\\nWantedBy=multi-user.target\\n";
    let extra = format!(
        "\n[image.systemd]\ndisable = [\"hello.service\"]\nenable = [\"ingot-probe.service\"]\n\n[[image.files]]\ndest = \"/etc/systemd/system/ingot-probe.service\"\ncontent = \"{probe}\"\n"
    );
    let image = bake(t.path(), &base, &extra);
    let before = sha256_file(&image);
    let _qemu = one_qemu();
    let log = t.path().join("serial.log");
    let o = ingot()
        .arg("boot-test")
        .arg(&image)
        .args([
            "--expect-http",
            "8080/health",
            "--timeout",
            "1200",
            "--serial-log",
        ])
        .arg(&log)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the guest powered off") && !err.contains("timed out"),
        "failed only at the timeout:
{err}"
    );
    assert!(
        err.contains("serial console, last"),
        "no console tail in:\n{err}"
    );
    assert!(
        err.contains("8080/health"),
        "the missing expectation is not named:\n{err}"
    );
    let whole = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(whole.contains("Linux version"), "serial log is incomplete");
    // The probe saw the service down: the failure is the one we caused.
    assert!(whole.contains("PROBE-RESULT hello=inactive"), "{whole}");
    assert_eq!(sha256_file(&image), before, "boot-test changed the image");
}
