//! `ingot verify` and the SBOM: outputs checked against the manifest, and
//! the SPDX document judged by the SPDX project's own validator.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ingot, repo_root, run_ok, stdout};
use crate::need;

fn bake_example(out: &Path) -> Vec<PathBuf> {
    run_ok(
        ingot()
            .arg("-q")
            .arg("bake")
            .arg(repo_root().join("specs/hello-image.toml"))
            .arg("--out")
            .arg(out),
    );
    let mut v: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn find(files: &[PathBuf], suffix: &str) -> PathBuf {
    files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .cloned()
        .unwrap_or_else(|| panic!("no *{suffix} in {files:?}"))
}

#[test]
fn verify_passes_on_a_fresh_bake_and_fails_naming_a_flipped_byte() {
    let t = tempfile::tempdir().unwrap();
    let files = bake_example(t.path());
    let manifest = find(&files, ".manifest.json");
    let o = run_ok(ingot().arg("verify").arg(&manifest));
    assert!(
        stdout(&o).lines().all(|l| l.ends_with(": OK")),
        "{}",
        stdout(&o)
    );

    let tar = find(&files, ".tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    bytes[4096] ^= 1;
    std::fs::write(&tar, &bytes).unwrap();
    let o = ingot().arg("verify").arg(&manifest).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let name = tar.file_name().unwrap().to_string_lossy().into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{name}: MISMATCH")), "{err}");
    assert!(!err.contains("spdx.json: MISMATCH"), "{err}");
}

#[test]
fn verify_names_a_missing_output() {
    let t = tempfile::tempdir().unwrap();
    let files = bake_example(t.path());
    let sbom = find(&files, ".spdx.json");
    std::fs::remove_file(&sbom).unwrap();
    let o = ingot()
        .arg("--json")
        .arg("verify")
        .arg(find(&files, ".manifest.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("one JSON document on stdout");
    assert_eq!(doc["ok"], false);
    let missing: Vec<&serde_json::Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "missing")
        .collect();
    assert_eq!(missing.len(), 1, "{doc}");
    assert_eq!(
        missing[0]["file"],
        sbom.file_name().unwrap().to_string_lossy().as_ref()
    );
}

#[test]
fn the_sbom_lists_every_package_of_the_image_and_is_valid_spdx() {
    let t = tempfile::tempdir().unwrap();
    let files = bake_example(t.path());
    let sbom = find(&files, ".spdx.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The image itself, then the stand-in's 8 packages, hello and
    // hello-motd (from the example's repository), by name.
    assert_eq!(
        names,
        [
            "hello",
            "bash",
            "filesystem",
            "hello",
            "hello-motd",
            "python3",
            "rpm",
            "setup",
            "shadow-utils",
            "system-release",
            "systemd"
        ]
    );
    let tar = find(&files, ".tar");
    let digest = tar.file_name().unwrap().to_string_lossy().into_owned();
    let short = digest.trim_start_matches("hello-").trim_end_matches(".tar");
    assert!(
        doc["packages"][0]["checksums"][0]["checksumValue"]
            .as_str()
            .unwrap()
            .starts_with(short)
    );
    let bash = &doc["packages"][1];
    assert_eq!(
        bash["externalRefs"][0]["referenceLocator"],
        "pkg:rpm/amazonlinux/bash@5.2.15-1.amzn2023.0.2?arch=x86_64"
    );

    let validator = need!("pyspdxtools");
    let o = Command::new(validator)
        .arg("-i")
        .arg(&sbom)
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success() && said.trim().is_empty(),
        "pyspdxtools: {said}"
    );
}
