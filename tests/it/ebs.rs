//! The manifest's `ebs` block, as `bake` writes it, against a computation
//! of its own over the raw file, written from the rules EBS direct uploads
//! follow (as awslabs/coldsnap's upload applies them): 512 KiB blocks, an
//! all-zero block not sent, a short last block padded with zeros before
//! hashing, SHA-256 per sent block, and the LINEAR aggregate, the SHA-256
//! of the sent blocks' raw 32-byte digests in block order, in base64.
//!
//! The computation here reads the file front to back with plain reads
//! (holes read as zeros), where ingot asks the kernel for its holes and
//! hashes on several threads.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::common::{ingot, repo_root, run_ok};

const BLOCK: usize = 512 * 1024;

/// (blocks sent, LINEAR aggregate in base64) for the file at `path`.
fn ebs_of(path: &Path) -> (u64, String) {
    let mut f = File::open(path).unwrap();
    let mut aggregate = Sha256::new();
    let mut sent = 0u64;
    let mut block = vec![0u8; BLOCK];
    loop {
        // Fill a whole block, or what is left of the file.
        let mut filled = 0;
        while filled < BLOCK {
            match f.read(&mut block[filled..]).unwrap() {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        block[filled..].fill(0);
        if block.iter().any(|&b| b != 0) {
            aggregate.update(Sha256::digest(&block));
            sent += 1;
        }
        if filled < BLOCK {
            break;
        }
    }
    let linear = base64::engine::general_purpose::STANDARD.encode(aggregate.finalize());
    (sent, linear)
}

/// Bakes the example image as a raw disk; returns (raw file, manifest).
fn bake_raw(dir: &Path) -> (PathBuf, serde_json::Value) {
    let out = dir.join("out");
    let o = run_ok(
        ingot()
            .arg("--json")
            .arg("bake")
            .arg(repo_root().join("specs/hello-image.toml"))
            .args(["--format", "raw", "--out"])
            .arg(&out),
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest = PathBuf::from(doc["manifest"].as_str().expect("a manifest path"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let raw = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "raw"))
        .expect("a .raw output");
    (raw, manifest)
}

#[test]
fn the_manifest_ebs_block_is_what_an_upload_of_the_raw_file_computes() {
    let t = tempfile::tempdir().unwrap();
    let (raw, manifest) = bake_raw(t.path());
    let ebs = &manifest["ebs"];
    assert_eq!(ebs["block_size"], 524_288, "{ebs}");
    let (sent, linear) = ebs_of(&raw);
    assert_eq!(ebs["changed_blocks"], sent, "{ebs}");
    assert_eq!(ebs["linear_checksum_sha256"], linear.as_str(), "{ebs}");
    // The image is mostly holes: the zero blocks really were left out, and
    // the data blocks really counted.
    let blocks = std::fs::metadata(&raw)
        .unwrap()
        .len()
        .div_ceil(BLOCK as u64);
    assert!(sent > 2 && sent < blocks / 2, "{sent} of {blocks} blocks");
}

/// A disk from `bake` is a whole number of MiB, so it never ends in a short
/// block; ingot's two readers of a raw image, on files that do, zero-filled
/// and not.
#[test]
fn a_short_last_block_is_padded_and_a_zero_one_is_not_sent() {
    let t = tempfile::tempdir().unwrap();
    let jobs = std::num::NonZeroUsize::new(3).unwrap();
    for (name, len, data) in [
        // Data in the short last block, in a hole-y file.
        (
            "short-data",
            3 * BLOCK as u64 + 1000,
            vec![(3 * BLOCK as u64 + 10, 7u8)],
        ),
        // A short last block of zeros after data blocks.
        (
            "short-zero",
            4 * BLOCK as u64 + 4096,
            vec![(0, 1), (2 * BLOCK as u64, 2)],
        ),
        // Nothing but zeros: nothing is sent.
        ("empty", 2 * BLOCK as u64 + 1, vec![]),
    ] {
        let path = t.path().join(name);
        let f = File::create(&path).unwrap();
        f.set_len(len).unwrap();
        for (at, byte) in &data {
            std::os::unix::fs::FileExt::write_all_at(&f, &[*byte; 300], *at).unwrap();
        }
        drop(f);
        let (sent, linear) = ebs_of(&path);
        assert_eq!(sent, data.len() as u64, "{name}");
        let r = File::open(&path).unwrap();
        let alone = ingot::disk::ebs::checksum(&r).unwrap();
        let together = ingot::disk::digest_raw(&r, &mut [], jobs).unwrap().ebs;
        for (how, got) in [("ebs::checksum", alone), ("digest_raw", together)] {
            assert_eq!(got.block_size, BLOCK as u32, "{name} {how}");
            assert_eq!(got.changed_blocks, sent, "{name} {how}");
            assert_eq!(got.linear_sha256_base64, linear, "{name} {how}");
        }
    }
}
