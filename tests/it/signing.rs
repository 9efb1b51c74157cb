//! `--sign-key`: packages signed with an OpenPGP key (RSA or Ed25519) that
//! `rpm -K` accepts once the public key is imported, and not before.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Gpg, example_dir, ingot, run_ok, stdout};
use crate::need;

fn signed_build(key: &Path, out: &Path) -> PathBuf {
    let o = run_ok(
        ingot()
            .arg("build")
            .arg(example_dir().join("hello.toml"))
            .arg("--sign-key")
            .arg(key)
            .arg("--out")
            .arg(out),
    );
    PathBuf::from(stdout(&o).trim())
}

fn check(rpm: &Path, algo: &str) {
    let gpg = Gpg::new(need!("gpg"));
    let t = tempfile::tempdir().unwrap();
    let (secret, public) = gpg.key(
        &format!("ingot test {algo} <{algo}@example.invalid>"),
        algo,
        t.path(),
    );
    let pkg = signed_build(&secret, &t.path().join("dist"));
    let db = t.path().join("rpmdb");
    let rpm_db = || {
        let mut c = Command::new(rpm);
        c.arg("--dbpath").arg(&db);
        c
    };
    run_ok(rpm_db().arg("--initdb"));

    // Before the key is imported rpm cannot check the signature.
    let before = rpm_db().arg("-K").arg(&pkg).output().unwrap();
    assert!(!before.status.success(), "rpm -K passed without the key");
    assert!(
        stdout(&before).contains("NOKEY") || stdout(&before).contains("NOT OK"),
        "{}",
        stdout(&before)
    );

    run_ok(rpm_db().arg("--import").arg(&public));
    let after = stdout(&run_ok(rpm_db().arg("-Kv").arg(&pkg)));
    assert!(
        after.lines().any(|l| l.contains("Header V4")
            && l.contains("Signature, key ID")
            && l.ends_with("OK")),
        "{after}"
    );
    let summary = stdout(&run_ok(rpm_db().arg("-K").arg(&pkg)));
    assert!(summary.contains("digests signatures OK"), "{summary}");

    // Signing does not break reproducibility.
    let again = signed_build(&secret, &t.path().join("again"));
    assert!(
        std::fs::read(&pkg).unwrap() == std::fs::read(&again).unwrap(),
        "two signed builds differ"
    );
}

#[test]
fn rsa_signed_package_passes_rpm_checksig_with_the_key_imported() {
    let rpm = need!("rpm");
    check(&rpm, "rsa3072");
}

#[test]
fn ed25519_signed_package_passes_rpm_checksig_with_the_key_imported() {
    let rpm = need!("rpm");
    check(&rpm, "ed25519");
}

#[test]
fn an_unusable_key_is_exit_2_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("junk.asc");
    std::fs::write(&key, "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnope\n").unwrap();
    let out = t.path().join("dist");
    let o = ingot()
        .arg("build")
        .arg(example_dir().join("hello.toml"))
        .arg("--sign-key")
        .arg(&key)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.asc"));
    assert!(!out.exists());
}
