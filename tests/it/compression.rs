//! `ingot build --compression xz` and `bzip2`, judged by the real tools:
//! `rpm -K` checks the digests, `rpm -qp` reads the compressor and the file
//! list, the payload cut out of the file by offsets computed here is a
//! stream the standalone `xz`/`bzip2` decompress to exactly what
//! `rpm2cpio` gives (and what the header's payload digest names), and GNU
//! `cpio` extracts every file with its bytes. `--jobs` changes no byte.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::common::{ingot, run_ok, stdout};
use crate::jobs::{payload, spec};
use crate::need;

/// Where the payload starts: after the 96-byte lead, the signature header
/// (padded to 8 bytes) and the header. Each header is a 16-byte preamble
/// (magic, reserved, index count, data size, big-endian), 16 bytes per
/// index entry, then its data.
fn payload_offset(rpm: &[u8]) -> usize {
    let header_len = |at: usize| -> usize {
        assert_eq!(&rpm[at..at + 3], &[0x8e, 0xad, 0xe8], "no header at {at}");
        let word = |i: usize| u32::from_be_bytes(rpm[at + i..at + i + 4].try_into().unwrap());
        16 + 16 * word(8) as usize + word(12) as usize
    };
    let signature = 96;
    let header = signature + header_len(signature).div_ceil(8) * 8;
    header + header_len(header)
}

/// `program args` with `input` on stdin; its stdout.
fn filter(program: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn build(spec: &Path, out: &Path, compression: &str, jobs: &str) -> PathBuf {
    let o = run_ok(
        ingot()
            .env("SOURCE_DATE_EPOCH", "1767268800")
            .arg("build")
            .arg(spec)
            .arg("--out")
            .arg(out)
            .args(["--compression", compression, "--jobs", jobs]),
    );
    PathBuf::from(stdout(&o).trim())
}

/// Every regular file under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn xz_and_bzip2_packages_are_whole_and_hold_every_byte() {
    let rpm = need!("rpm");
    let rpm2cpio = need!("rpm2cpio");
    let cpio = need!("cpio");
    let xz = need!("xz");
    let bzip2 = need!("bzip2");
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("payload");
    // 6 MiB, half of it incompressible: several of bzip2's 900 kB blocks.
    payload(&data, 4, 3 << 19);
    let sources = files_under(&data);
    for (compression, decompressor) in [("xz", &xz), ("bzip2", &bzip2)] {
        let name = format!("packed-{compression}");
        let s = spec(t.path(), &name, &data);
        let pkg = build(&s, &t.path().join(format!("{name}-1")), compression, "1");
        let again = build(&s, &t.path().join(format!("{name}-8")), compression, "8");
        let bytes = std::fs::read(&pkg).unwrap();
        assert!(
            bytes == std::fs::read(&again).unwrap(),
            "{compression}: the bytes depend on --jobs"
        );

        let k = stdout(&run_ok(Command::new(&rpm).arg("-K").arg(&pkg)));
        assert!(k.contains("digests OK"), "{compression}: {k}");
        let q = stdout(&run_ok(
            Command::new(&rpm)
                .args(["-qp", "--qf", "%{PAYLOADCOMPRESSOR} %{PAYLOADDIGESTALT}\n"])
                .arg(&pkg),
        ));
        let (compressor, digest) = q.trim().split_once(' ').unwrap();
        assert_eq!(compressor, compression);
        let listed: BTreeSet<String> = stdout(&run_ok(Command::new(&rpm).arg("-qlp").arg(&pkg)))
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("/usr/share/{name}/")))
            .filter(|l| l.contains('/'))
            .map(str::to_string)
            .collect();
        assert_eq!(listed, sources, "{compression}: rpm -qlp");

        // The payload is a plain stream of that format, and rpm reads the
        // same archive from it, the one the header's digest names.
        let archive = filter(decompressor, &["-dc"], &bytes[payload_offset(&bytes)..]);
        let by_rpm = run_ok(Command::new(&rpm2cpio).arg(&pkg)).stdout;
        assert!(
            archive == by_rpm,
            "{compression}: rpm2cpio and {} disagree",
            decompressor.display()
        );
        assert_eq!(hex::encode(Sha256::digest(&archive)), digest);

        // GNU cpio lists and extracts it: every file, every byte.
        let list = String::from_utf8(filter(&cpio, &["-t", "--quiet"], &archive)).unwrap();
        let prefix = format!("./usr/share/{name}/");
        let in_cpio: BTreeSet<String> = list
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter(|l| l.contains('/'))
            .map(str::to_string)
            .collect();
        assert_eq!(in_cpio, sources, "{compression}: cpio -t");
        let x = t.path().join(format!("x-{compression}"));
        std::fs::create_dir(&x).unwrap();
        let mut child = Command::new(&cpio)
            .args(["-idm", "--quiet"])
            .current_dir(&x)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        assert!(child.wait().unwrap().success(), "cpio -idm failed");
        let extracted = x.join(format!("usr/share/{name}"));
        assert_eq!(files_under(&extracted), sources);
        for f in &sources {
            assert!(
                std::fs::read(extracted.join(f)).unwrap() == std::fs::read(data.join(f)).unwrap(),
                "{compression}: {f} differs after extraction"
            );
        }
    }
}
