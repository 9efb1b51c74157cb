//! `--jobs` changes how many threads hash and compress, never the bytes;
//! and `ingot build` streams: its memory does not follow the payload.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::common::{ingot, judge, peak_rss, repo_root, run_ok, stdout};

/// A small deterministic generator (xorshift64*), so the payload is the
/// same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `count` files of `size` bytes each under `dir`: even ones random (they
/// do not compress), odd ones text (they do), in two sub-folders.
pub(crate) fn payload(dir: &Path, count: usize, size: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    const WORDS: &[&str] = &[
        "ingot", "image", "package", "payload", "zstd", "rpm", "disk",
    ];
    for i in 0..count {
        let sub = dir.join(if i % 2 == 0 { "bin" } else { "doc" });
        std::fs::create_dir_all(&sub).unwrap();
        let mut data = Vec::with_capacity(size + 16);
        if i % 2 == 0 {
            while data.len() < size {
                data.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            while data.len() < size {
                data.extend_from_slice(
                    WORDS[(rng.next() % WORDS.len() as u64) as usize].as_bytes(),
                );
                data.push(if rng.next().is_multiple_of(9) {
                    b'\n'
                } else {
                    b' '
                });
            }
        }
        data.truncate(size);
        std::fs::write(sub.join(format!("f{i:03}")), data).unwrap();
    }
}

/// A package spec shipping the folder `payload` under /usr/share/NAME.
pub(crate) fn spec(dir: &Path, name: &str, payload: &Path) -> PathBuf {
    let text = format!(
        r#"[package]
name = "{name}"
version = "1.0"
arch = "noarch"
summary = "Payload for the jobs tests"
license = "MIT"

[dependencies]
auto = false

[[files]]
src = "{}"
dest = "/usr/share/{name}"

[[changelog]]
date = 2026-01-01
author = "tests <tests@example.invalid> - 1.0-1"
text = "- test"
"#,
        payload.display()
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn build_with_jobs(spec: &Path, out: &Path, compression: &str, jobs: &str) -> PathBuf {
    let o = run_ok(
        ingot()
            .env("SOURCE_DATE_EPOCH", "1767268800")
            .arg("build")
            .arg(spec)
            .arg("--out")
            .arg(out)
            .arg("--compression")
            .arg(compression)
            .arg("--jobs")
            .arg(jobs),
    );
    PathBuf::from(stdout(&o).trim())
}

#[test]
fn build_writes_the_same_bytes_with_one_two_or_eight_jobs() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("payload");
    // 48 MiB: six of zstd's 8 MiB jobs at level 3, so the workers really
    // share the stream.
    payload(&data, 32, 3 << 19);
    for compression in ["zstd:3", "zstd:10", "gzip:6"] {
        let name = format!("jobs-{}", compression.replace(':', "-"));
        let s = spec(t.path(), &name, &data);
        let digests: Vec<(String, String)> = ["1", "2", "8"]
            .iter()
            .map(|j| {
                let out = t.path().join(format!("out-{name}-{j}"));
                let rpm = build_with_jobs(&s, &out, compression, j);
                (j.to_string(), sha256_file(&rpm))
            })
            .collect();
        assert!(
            digests.iter().all(|(_, d)| *d == digests[0].1),
            "{compression}: the bytes depend on --jobs: {digests:?}"
        );
        // And the package is whole: rpm checks its digests and reads the
        // payload's compressor from the header.
        let Some(rpm) = judge("rpm") else {
            continue;
        };
        let file = t
            .path()
            .join(format!("out-{name}-2/{name}-1.0-1.noarch.rpm"));
        let o = run_ok(Command::new(&rpm).arg("-K").arg(&file));
        assert!(stdout(&o).contains("digests OK"), "{}", stdout(&o));
        let o = run_ok(
            Command::new(&rpm)
                .args(["-qp", "--qf", "%{PAYLOADCOMPRESSOR} %{SIZE}\n"])
                .arg(&file),
        );
        let (alg, _) = compression.split_once(':').unwrap();
        assert_eq!(stdout(&o).trim(), format!("{alg} {}", 32 * (3 << 19)));
        // rpm's own reader decompresses the whole payload (several zstd
        // frames) to the archive the header's digest names.
        let rpm2cpio = judge("rpm2cpio").expect("rpm2cpio comes with rpm");
        let archive = run_ok(Command::new(&rpm2cpio).arg(&file)).stdout;
        let o = run_ok(
            Command::new(&rpm)
                .args(["-qp", "--qf", "%{PAYLOADDIGESTALT}\n"])
                .arg(&file),
        );
        assert_eq!(
            stdout(&o).trim(),
            hex::encode(Sha256::digest(&archive)),
            "{compression}: the payload rpm2cpio reads is not the archive the header names"
        );
        let member = format!("./usr/share/{name}/doc/f031");
        assert!(
            archive
                .windows(member.len())
                .any(|w| w == member.as_bytes()),
            "{member} is not in the archive"
        );
    }
}

#[test]
fn bake_writes_the_same_image_with_one_or_two_jobs() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("payload");
    payload(&data, 16, 3 << 19);
    spec(t.path(), "jobs-app", &data);
    let image = t.path().join("image.toml");
    let base = repo_root().join("fixtures/al2023-standin/rootfs.tar.zst");
    std::fs::write(
        &image,
        format!(
            "[image]\nname = \"jobs\"\nbase = \"{}\"\npackages = [\"jobs-app.toml\"]\n\
             formats = [\"raw\", \"vmdk\", \"vhd\"]\n",
            base.display()
        ),
    )
    .unwrap();
    let mut results = Vec::new();
    for jobs in ["1", "2"] {
        let out = t.path().join(format!("out-{jobs}"));
        run_ok(
            ingot()
                .arg("bake")
                .arg(&image)
                .arg("--out")
                .arg(&out)
                .arg("--jobs")
                .arg(jobs),
        );
        let mut files: Vec<(String, String)> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), sha256_file(&e.path()))
            })
            .collect();
        files.sort();
        results.push(files);
    }
    let names: Vec<&str> = results[0].iter().map(|(n, _)| n.as_str()).collect();
    for ext in [".raw", ".vmdk", ".vhd", ".manifest.json"] {
        assert!(
            names.iter().any(|n| n.ends_with(ext)),
            "no {ext} output in {names:?}"
        );
    }
    assert_eq!(results[0], results[1], "the outputs depend on --jobs");
}

/// Peak RSS (MiB) of `ingot build SPEC --jobs 2`.
fn build_peak_rss_mib(spec: &Path, out: &Path) -> u64 {
    let mut c = ingot();
    c.arg("-q")
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(["--jobs", "2"]);
    let peak = peak_rss(&c);
    assert!(peak.success, "ingot build failed:\n{}", peak.stderr);
    peak.mib
}

/// A payload folder of `random` bytes that do not compress (so a writer
/// holding the compressed payload would hold all of them) and one file of
/// `sparse` bytes that is a hole on disk (it costs no space, but ingot
/// reads, hashes, archives and compresses every byte of it).
fn big_payload(dir: &Path, random: usize, sparse: u64) {
    // Odd-numbered files of `payload` are text: one random file each time.
    for i in 0..random / (64 << 20) {
        payload(&dir.join(format!("r{i}")), 1, 64 << 20);
    }
    let f = std::fs::File::create(dir.join("sparse")).unwrap();
    f.set_len(sparse).unwrap();
}

#[test]
fn build_memory_does_not_follow_the_payload() {
    const MIB: u64 = 1 << 20;
    let t = tempfile::tempdir().unwrap();
    big_payload(&t.path().join("one"), 128 << 20, 768 * MIB);
    big_payload(&t.path().join("two"), 256 << 20, 1536 * MIB);
    let one = spec(t.path(), "mem-one", &t.path().join("one"));
    let two = spec(t.path(), "mem-two", &t.path().join("two"));
    let one_rss = build_peak_rss_mib(&one, &t.path().join("out-one"));
    let two_rss = build_peak_rss_mib(&two, &t.path().join("out-two"));
    eprintln!(
        "peak RSS of ingot build --jobs 2: 0.9 GiB payload {one_rss} MiB, 1.8 GiB payload {two_rss} MiB"
    );
    assert!(t.path().join("out-two/mem-two-1.0-1.noarch.rpm").is_file());
    // A writer that held the payload or a file in memory would be far
    // past these.
    assert!(
        two_rss < 200,
        "peak RSS {two_rss} MiB with a 1.8 GiB payload"
    );
    assert!(
        two_rss * 10 <= one_rss * 11 + 40,
        "peak RSS grew from {one_rss} MiB to {two_rss} MiB when the payload doubled"
    );
}
