//! `bake --jobs 8` writes the same bytes as `--jobs 1`: every output (raw,
//! VMDK, VHD, tar, manifest, SBOM), where eight workers hash the base and
//! the files, compress the package's zstd frames and the VMDK's grains, and
//! hash the raw image's EBS blocks, each put back in a fixed order.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::common::{ingot, repo_root, run_ok};
use crate::jobs::{payload, spec};

/// (file name, SHA-256) of every file in `dir`, sorted.
fn digests(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mut h = Sha256::new();
            std::io::copy(&mut std::fs::File::open(e.path()).unwrap(), &mut h).unwrap();
            (
                e.file_name().into_string().unwrap(),
                hex::encode(h.finalize()),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn bake_writes_the_same_bytes_with_one_or_eight_jobs() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("payload");
    // 24 MiB, half of it incompressible: three of zstd's 8 MiB jobs at
    // level 3, and VMDK grains enough for every worker.
    payload(&data, 16, 3 << 19);
    spec(t.path(), "jobs8-app", &data);
    let image = t.path().join("image.toml");
    let base = repo_root().join("fixtures/al2023-standin/rootfs.tar.zst");
    std::fs::write(
        &image,
        format!(
            "[image]\nname = \"jobs8\"\nbase = \"{}\"\npackages = [\"jobs8-app.toml\"]\n\
             formats = [\"raw\", \"vmdk\", \"vhd\", \"tar\"]\n",
            base.display()
        ),
    )
    .unwrap();
    let bake = |jobs: &str| {
        let out = t.path().join(format!("out-{jobs}"));
        run_ok(
            ingot()
                .env("SOURCE_DATE_EPOCH", "1767268800")
                .arg("bake")
                .arg(&image)
                .arg("--out")
                .arg(&out)
                .args(["--jobs", jobs]),
        );
        digests(&out)
    };
    let one = bake("1");
    let eight = bake("8");
    for ext in [".raw", ".vmdk", ".vhd", ".tar", ".manifest.json"] {
        assert!(
            one.iter().any(|(n, _)| n.ends_with(ext)),
            "no {ext} output in {one:?}"
        );
    }
    assert_eq!(one, eight, "the outputs depend on --jobs");
}
