//! `ingot inspect` reads RPMs, images and manifests back; `ingot diff`
//! names exactly what changed between two bakes.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::common::{build_example, example_dir, ingot, repo_root, run_ok};

fn json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let o = run_ok(ingot().arg("--json").args(args));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// Bake the example with the hello spec edited by `edit`; returns
/// (tarball, manifest).
fn bake_variant(dir: &Path, edit: impl Fn(&str) -> String) -> (PathBuf, PathBuf) {
    let specs = dir.join("specs");
    crate::common::copy_specs_tar_only(&specs);
    let hello = specs.join("hello/hello.toml");
    let text = std::fs::read_to_string(&hello).unwrap();
    std::fs::write(&hello, edit(&text)).unwrap();
    let image = std::fs::read_to_string(specs.join("hello-image.toml"))
        .unwrap()
        .replace(
            "../fixtures/",
            &format!("{}/fixtures/", repo_root().display()),
        );
    std::fs::write(specs.join("hello-image.toml"), image).unwrap();
    let out = dir.join("out");
    let doc = json(&[
        "bake".as_ref(),
        specs.join("hello-image.toml").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    (
        PathBuf::from(doc["image"].as_str().unwrap()),
        PathBuf::from(doc["manifest"].as_str().unwrap()),
    )
}

#[test]
fn inspect_shows_an_rpms_metadata_dependencies_and_files() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let doc = json(&["inspect".as_ref(), pkg.as_os_str(), "--files".as_ref()]);
    assert_eq!(doc["nevra"], "hello-1.0.0-1.noarch");
    assert_eq!(doc["license"], "MIT");
    let requires: Vec<&str> = doc["requires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(requires.contains(&"/usr/bin/python3"), "{requires:?}");
    let server = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/bin/hello-server")
        .expect("hello-server listed");
    assert_eq!(server["mode"], "100755");
    let want = hex::encode(Sha256::digest(
        std::fs::read(example_dir().join("hello-server")).unwrap(),
    ));
    assert_eq!(server["sha256"], want);
}

#[test]
fn inspect_reads_the_packages_and_files_of_an_image_back() {
    let t = tempfile::tempdir().unwrap();
    let (tar, _) = bake_variant(t.path(), |s| s.to_string());
    let doc = json(&["inspect".as_ref(), tar.as_os_str(), "--files".as_ref()]);
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The stand-in's 8, hello, and hello-motd from the example repository.
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(
        names.contains(&"hello") && names.contains(&"systemd") && names.contains(&"hello-motd"),
        "{names:?}"
    );
    let f = &doc["files"]["/usr/bin/hello-server"];
    assert_eq!(f["kind"], "file");
    assert_eq!(f["mode"], "0755");
    let want = hex::encode(Sha256::digest(
        std::fs::read(example_dir().join("hello-server")).unwrap(),
    ));
    assert_eq!(f["content"], want);
    assert_eq!(doc["files"]["/bin"]["content"], "usr/bin");
}

#[test]
fn diff_of_two_bakes_one_version_apart_names_exactly_that() {
    let t = tempfile::tempdir().unwrap();
    let (tar_a, man_a) = bake_variant(&t.path().join("a"), |s| s.to_string());
    let (tar_b, man_b) = bake_variant(&t.path().join("b"), |s| {
        s.replace("version = \"1.0.0\"", "version = \"1.0.1\"")
            .replace("- 1.0.0-1\"", "- 1.0.1-1\"")
    });
    for (a, b) in [(&man_a, &man_b), (&tar_a, &tar_b)] {
        let doc = json(&["diff".as_ref(), a.as_os_str(), b.as_os_str()]);
        let changes = doc["packages"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{doc}");
        assert_eq!(changes[0]["name"], "hello");
        assert_eq!(changes[0]["change"], "upgraded");
        assert_eq!(changes[0]["from"], "hello-1.0.0-1.noarch");
        assert_eq!(changes[0]["to"], "hello-1.0.1-1.noarch");
    }
    // Between the images, the files that differ are the database only:
    // the payload is the same bytes.
    let doc = json(&["diff".as_ref(), tar_a.as_os_str(), tar_b.as_os_str()]);
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["/var/lib/rpm/rpmdb.sqlite"], "{doc}");
}

#[test]
fn diff_of_identical_bakes_is_empty_and_exit_zero() {
    let t = tempfile::tempdir().unwrap();
    let (tar_a, _) = bake_variant(&t.path().join("a"), |s| s.to_string());
    let (tar_b, _) = bake_variant(&t.path().join("b"), |s| s.to_string());
    let o = run_ok(ingot().arg("diff").arg(&tar_a).arg(&tar_b));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "no differences");
}
