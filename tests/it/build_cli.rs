//! `ingot build` as a user sees it: the path on stdout, `--json`, default
//! output folder, no temporary files left behind.

use sha2::{Digest, Sha256};

use crate::common::{build_example, example_dir, ingot, run_ok, stdout};

#[test]
fn build_prints_the_rpm_path_and_leaves_only_the_rpm() {
    let t = tempfile::tempdir().unwrap();
    let rpm = build_example(t.path());
    assert_eq!(
        rpm.file_name().unwrap().to_str().unwrap(),
        "hello-1.0.0-1.noarch.rpm"
    );
    let names: Vec<String> = std::fs::read_dir(t.path().join("dist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["hello-1.0.0-1.noarch.rpm"]);
    // The lead of a v4 binary package.
    let bytes = std::fs::read(&rpm).unwrap();
    assert_eq!(&bytes[..4], &[0xed, 0xab, 0xee, 0xdb]);
    assert_eq!(bytes[4], 3, "lead major version");
}

#[test]
fn default_output_folder_is_dist_in_the_working_directory() {
    let t = tempfile::tempdir().unwrap();
    let o = run_ok(
        ingot()
            .current_dir(t.path())
            .arg("build")
            .arg(example_dir().join("hello.toml")),
    );
    assert_eq!(stdout(&o).trim(), "dist/hello-1.0.0-1.noarch.rpm");
    assert!(t.path().join("dist/hello-1.0.0-1.noarch.rpm").is_file());
}

#[test]
fn json_output_is_one_document_with_digest_and_dependencies() {
    let t = tempfile::tempdir().unwrap();
    let o = run_ok(
        ingot()
            .arg("build")
            .arg(example_dir().join("hello.toml"))
            .arg("--out")
            .arg(t.path())
            .arg("--json"),
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let path = doc["rpm"].as_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(doc["sha256"], hex::encode(Sha256::digest(&bytes)));
    assert_eq!(doc["size"], bytes.len());
    assert_eq!(doc["nevra"], "hello-1.0.0-1.noarch");
    // Changelog date 2026-11-01, noon UTC.
    assert_eq!(doc["source_date_epoch"], 1_793_534_400u64);
    let requires: Vec<&str> = doc["requires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(requires.contains(&"/usr/bin/python3"), "{requires:?}");
    assert!(requires.contains(&"python3 >= 3.9"), "{requires:?}");
    assert!(requires.contains(&"systemd"), "{requires:?}");
    let provides = doc["provides"].to_string();
    assert!(provides.contains("user(hello)"), "{provides}");
    assert!(provides.contains("hello = 1.0.0-1"), "{provides}");
}

#[test]
fn quiet_build_prints_nothing_on_stderr() {
    let t = tempfile::tempdir().unwrap();
    let o = run_ok(
        ingot()
            .arg("-q")
            .arg("build")
            .arg(example_dir().join("hello.toml"))
            .arg("--out")
            .arg(t.path()),
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn ctrl_c_stops_the_build_with_exit_130_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    // A big sparse file keeps the build busy long enough to interrupt it.
    let big = std::fs::File::create(t.path().join("big.bin")).unwrap();
    big.set_len(8 << 30).unwrap();
    std::fs::write(
        t.path().join("big.toml"),
        r#"
[package]
name = "big"
version = "1"
arch = "noarch"
summary = "Big"
license = "MIT"

[[files]]
src = "big.bin"
dest = "/usr/share/big/big.bin"
"#,
    )
    .unwrap();
    let out = t.path().join("dist");
    let child = ingot()
        .arg("build")
        .arg(t.path().join("big.toml"))
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the RPM is being written: its staged file is there.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let staged = || {
        std::fs::read_dir(&out).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(".big-") && n.ends_with(".tmp")
            })
        })
    };
    while !staged() {
        assert!(
            std::time::Instant::now() < until,
            "the staged RPM never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    run_ok(std::process::Command::new("kill").args(["-INT", &pid]));
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
    assert!(!out.exists(), "interrupted build left {out:?}");
}
