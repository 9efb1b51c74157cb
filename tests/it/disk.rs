//! The disk pieces (`ingot::disk`) judged by the real tools: sgdisk and
//! sfdisk read the GPT, fsck.vfat, blkid and mtools read the ESP, qemu-img
//! reads the VMDK and VHD, Python's hashlib recomputes the EBS checksum.
//! Each test skips with a message when its judge is missing (fails under
//! `CI=true`). Debian packages: gdisk, fdisk, dosfstools, mtools,
//! qemu-utils, util-linux.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use ingot::disk::{GIB, MIB, SECTOR, ebs, fat, gpt, raw, vhd, vmdk};

use crate::need;

const SOURCE_DATE: u64 = 1_700_000_000;
/// One thread for the VMDK writer.
const ONE: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN;

/// Run a judge; return (success, stdout + stderr).
fn judge_output(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A deterministic byte stream (xorshift), for contents that do not
/// compress to nothing.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The ESP content the FAT tests use: nested directories, long names, odd
/// names (case, spaces, dots, `+`, non-ASCII), an empty file, a ~5 MiB
/// file, an empty directory, and a directory with many entries.
fn esp_tree() -> (fat::Tree, Vec<(String, Vec<u8>)>) {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("EFI/BOOT/BOOTX64.EFI".into(), noise(1, 900_000)),
        ("EFI/BOOT/grubx64.efi".into(), noise(2, 1_500_000)),
        ("EFI/BOOT/mmx64.efi".into(), noise(3, 850_000)),
        (
            "EFI/amzn/grub.cfg".into(),
            b"search --no-floppy --fs-uuid --set=dev 0000\nconfigfile ($dev)/boot/grub2/grub.cfg\n"
                .to_vec(),
        ),
        ("EFI/amzn/empty".into(), Vec::new()),
        ("EFI/amzn/Big Kernel Image.bin".into(), noise(4, 5 * 1024 * 1024 + 123)),
        ("Mixed Case Dir/Ünïcödé näme.txt".into(), b"unicode\n".to_vec()),
        ("Mixed Case Dir/a+b=c;d.[x]".into(), b"odd\n".to_vec()),
        ("Mixed Case Dir/.hidden".into(), b"dot\n".to_vec()),
        ("Mixed Case Dir/archive.tar.gz".into(), noise(5, 3000)),
        (
            "deep/er/and/deeper/still/a file with a rather long name that goes past thirteen characters several times.conf"
                .into(),
            b"long\n".to_vec(),
        ),
        ("UPPER.TXT".into(), b"upper\n".to_vec()),
        ("lower.txt".into(), b"lower\n".to_vec()),
    ];
    for i in 0..150 {
        files.push((
            format!("EFI/many/entry number {i:03}.dat"),
            noise(100 + i, 700 + i as usize),
        ));
    }
    let mut tree = fat::Tree::new();
    // Added in reverse: the result must not depend on the order.
    for (path, data) in files.iter().rev() {
        tree.add_file(path, data.clone()).unwrap();
    }
    tree.add_dir("EFI/empty dir").unwrap();
    (tree, files)
}

fn esp_options() -> fat::Options {
    fat::Options {
        volume_id: ingot::disk::derive_u32(b"test seed", "esp-volume-id"),
        label: None,
        source_date: SOURCE_DATE,
    }
}

/// A whole disk: GPT, ESP with `esp_tree`, and marker bytes in the root
/// partition (no filesystem: that is the ext4 writer's). Returns the layout.
fn build_disk(path: &Path, size: gpt::Size) -> gpt::Layout {
    let (tree, _) = esp_tree();
    let opts = esp_options();
    let esp_min = fat::min_size(&tree, &opts).unwrap();
    let layout = gpt::plan(300 * MIB, esp_min, size, b"test seed").unwrap();
    let f = raw::create(path, layout.disk_size).unwrap();
    gpt::write(&layout, &f).unwrap();
    let esp_len = layout.esp.end - layout.esp.start;
    fat::write(&tree, &opts, &f, layout.esp.start, esp_len).unwrap();
    f.write_all_at(b"root partition starts here", layout.root.start)
        .unwrap();
    f.write_all_at(
        &noise(9, 3 * MIB as usize + 17),
        layout.root.start + 200 * MIB + 4097,
    )
    .unwrap();
    f.write_all_at(b"root partition ends here", layout.root.end - 24)
        .unwrap();
    layout
}

/// Copy `len` bytes at `offset` of `from` into a new file (what `dd skip=
/// count=` would do), keeping zero sectors as holes.
fn extract(from: &Path, offset: u64, len: u64, to: &Path) {
    let src = File::open(from).unwrap();
    let dst = raw::create(to, len).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(MIB) as usize;
        src.read_exact_at(&mut buf[..n], offset + done).unwrap();
        raw::write_nonzero_at(&dst, done, &buf[..n]).unwrap();
        done += n as u64;
    }
}

fn sgdisk_verify(sgdisk: &Path, img: &Path) -> String {
    let (_, text) = judge_output(Command::new(sgdisk).arg("-v").arg(img));
    text
}

fn assert_sgdisk_clean(text: &str) {
    assert!(
        text.lines().any(|l| l.starts_with("No problems found")),
        "sgdisk -v did not say \"No problems found\":\n{text}"
    );
    // Not even the cautions sgdisk prints for a usable table (such as a
    // partition that "doesn't end on a 2048-sector boundary").
    assert!(
        !text.contains("Warning") && !text.contains("Caution") && !text.contains("Problem"),
        "sgdisk -v warned:\n{text}"
    );
}

#[test]
fn gpt_is_clean_for_sgdisk_and_sfdisk_and_shows_what_was_written() {
    let sgdisk = need!("sgdisk");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    let l = build_disk(&img, gpt::Size::Bytes(2 * GIB));

    assert_sgdisk_clean(&sgdisk_verify(&sgdisk, &img));

    let (ok, p) = judge_output(Command::new(&sgdisk).arg("-p").arg(&img));
    assert!(ok, "{p}");
    assert!(
        p.to_lowercase()
            .contains(&format!("disk identifier (guid): {}", l.guids.disk)),
        "{p}"
    );
    for part in l.partitions() {
        let (ok, i) = judge_output(
            Command::new(&sgdisk)
                .arg("-i")
                .arg(part.number.to_string())
                .arg(&img),
        );
        assert!(ok, "{i}");
        let i_low = i.to_lowercase();
        assert!(
            i_low.contains(&format!("partition guid code: {}", part.type_guid)),
            "{i}"
        );
        assert!(
            i_low.contains(&format!("partition unique guid: {}", part.guid)),
            "{i}"
        );
        assert!(
            i.contains(&format!("First sector: {} ", part.first_lba)),
            "{i}"
        );
        assert!(
            i.contains(&format!("Last sector: {} ", part.last_lba)),
            "{i}"
        );
        assert!(
            i.contains(&format!("Partition name: '{}'", part.name)),
            "{i}"
        );
    }
    // The layout AL2023 has: ESP at 2048 (10 MiB), BIOS boot after it, root after that.
    let [root, bios, esp] = l.partitions();
    assert_eq!((esp.first_lba, esp.last_lba), (2048, 22527));
    assert_eq!((bios.first_lba, bios.last_lba), (22528, 24575));
    assert_eq!(root.first_lba, 24576);

    let Some(sfdisk) = crate::common::judge("sfdisk") else {
        return;
    };
    let (ok, json) = judge_output(Command::new(sfdisk).arg("--json").arg(&img));
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let table = &v["partitiontable"];
    assert_eq!(table["label"], "gpt");
    assert_eq!(
        table["id"].as_str().unwrap().to_lowercase(),
        l.guids.disk.to_string()
    );
    assert_eq!(table["firstlba"], 34);
    assert_eq!(table["lastlba"], l.disk_size / SECTOR - 34);
    let parts = table["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for (j, part) in parts.iter().zip(l.partitions()) {
        assert!(
            j["node"]
                .as_str()
                .unwrap()
                .ends_with(&part.number.to_string()),
            "{j}"
        );
        assert_eq!(j["start"], part.first_lba);
        assert_eq!(j["size"], part.last_lba + 1 - part.first_lba);
        assert_eq!(
            j["type"].as_str().unwrap().to_lowercase(),
            part.type_guid.to_string()
        );
        assert_eq!(
            j["uuid"].as_str().unwrap().to_lowercase(),
            part.guid.to_string()
        );
        assert_eq!(j["name"], part.name.as_str());
    }
}

#[test]
fn the_backup_gpt_is_found_when_the_primary_is_broken() {
    let sgdisk = need!("sgdisk");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    let l = build_disk(&img, gpt::Size::Bytes(GIB));
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    // Break the primary header's CRC, then the primary entry array.
    f.write_all_at(b"broken", SECTOR + 60).unwrap();
    f.write_all_at(b"broken", 2 * SECTOR + 200).unwrap();
    drop(f);
    let text = sgdisk_verify(&sgdisk, &img);
    assert!(
        text.contains("invalid main GPT header, but valid backup")
            && text.contains("Loaded backup partition table"),
        "sgdisk did not fall back to the backup:\n{text}"
    );
    // Our reader falls back too, and finds the same partitions.
    let t = gpt::read(&File::open(&img).unwrap()).unwrap();
    assert!(t.from_backup);
    assert_eq!(t.partitions, l.partitions().to_vec());
    // sgdisk writes the backup it loaded over the main table: clean again.
    let (ok, out) = judge_output(Command::new(&sgdisk).arg("-e").arg(&img));
    assert!(ok, "{out}");
    assert_sgdisk_clean(&sgdisk_verify(&sgdisk, &img));
    let t = gpt::read(&File::open(&img).unwrap()).unwrap();
    assert!(!t.from_backup);
    assert_eq!(t.disk_guid, l.guids.disk);
}

#[test]
fn esp_is_clean_for_fsck_vfat_and_mtools_returns_every_byte() {
    let fsck = need!("fsck.vfat");
    let mcopy = need!("mcopy");
    let mdir = need!("mdir");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    let l = build_disk(&img, gpt::Size::Auto);
    let esp_img = dir.path().join("esp.img");
    extract(&img, l.esp.start, l.esp.end - l.esp.start, &esp_img);

    let (ok, text) = judge_output(Command::new(&fsck).args(["-n", "-V"]).arg(&esp_img));
    assert!(ok, "fsck.vfat -n failed:\n{text}");
    assert!(
        !text.contains("?"),
        "fsck.vfat found something to ask about:\n{text}"
    );

    let at = format!("{}@@{}", img.display(), l.esp.start);
    let (ok, listing) = judge_output(Command::new(&mdir).args(["-i", &at, "::/EFI/BOOT"]));
    assert!(ok, "{listing}");
    for name in ["BOOTX64  EFI", "grubx64.efi", "mmx64.efi"] {
        assert!(
            listing.contains(name),
            "mdir does not list {name}:\n{listing}"
        );
    }
    assert!(listing.contains("has no label"), "{listing}");

    // Copy the whole volume out (mtools treats `[x]` in a path as a
    // pattern, so single files with such names cannot be named): every
    // file comes back under its long name with its bytes.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (ok, text) = judge_output(
        Command::new(&mcopy)
            .args(["-s", "-n", "-i", &at, "::/*"])
            .arg(&out),
    );
    assert!(ok, "mcopy -s: {text}");
    let (_, files) = esp_tree();
    for (path, data) in &files {
        let back = std::fs::read(out.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(back == *data, "mcopy gave other bytes for {path}");
    }
    let copied = walkdir::WalkDir::new(&out)
        .into_iter()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
        .count();
    assert_eq!(copied, files.len());
    assert!(out.join("EFI/empty dir").is_dir());
    if let Some(mtype) = crate::common::judge("mtype") {
        let o = Command::new(mtype)
            .args(["-i", &at, "::/EFI/amzn/grub.cfg"])
            .output()
            .unwrap();
        assert_eq!(o.stdout, files[3].1);
    }
    // The empty directory is there, and so are the 150 entries.
    let (ok, listing) = judge_output(Command::new(&mdir).args(["-b", "-i", &at, "::/EFI/many"]));
    assert!(ok, "{listing}");
    assert_eq!(
        listing.lines().filter(|l| l.ends_with(".dat")).count(),
        150,
        "{listing}"
    );
    let (ok, listing) = judge_output(Command::new(&mdir).args(["-i", &at, "::/EFI/empty dir"]));
    assert!(ok, "{listing}");
    let (ok, listing) = judge_output(Command::new(&mdir).args(["-i", &at, "::/Mixed Case Dir"]));
    assert!(ok, "{listing}");
    for name in [
        "a+b=c;d.[x]",
        "Ünïcödé näme.txt",
        ".hidden",
        "archive.tar.gz",
    ] {
        assert!(
            listing.contains(name),
            "mdir does not list {name}:\n{listing}"
        );
    }

    if let Some(blkid) = crate::common::judge("blkid") {
        let (ok, text) = judge_output(
            Command::new(blkid)
                .args(["-p", "-o", "export"])
                .arg(&esp_img),
        );
        assert!(ok, "{text}");
        let id = esp_options().volume_id;
        assert!(text.contains("TYPE=vfat"), "{text}");
        assert!(text.contains("SEC_TYPE=msdos"), "{text}");
        assert!(text.contains("VERSION=FAT16"), "{text}");
        assert!(
            text.contains(&format!("UUID={:04X}-{:04X}", id >> 16, id & 0xffff)),
            "{text}"
        );
    }
}

#[test]
fn esp_with_a_label_is_clean_at_the_minimum_size_and_with_bigger_clusters() {
    let fsck = need!("fsck.vfat");
    let mdir = need!("mdir");
    let dir = tempfile::tempdir().unwrap();
    let (tree, files) = esp_tree();
    let opts = fat::Options {
        label: Some("EFI".into()),
        ..esp_options()
    };
    let min = fat::min_size(&tree, &opts).unwrap();
    // The minimum (512-byte clusters, 16-bit sector count), 64 MiB (1 KiB
    // clusters, 32-bit sector count), 300 MiB (4 KiB clusters).
    for size in [min, 64 * MIB, 300 * MIB] {
        let img = dir.path().join(format!("esp-{size}.img"));
        let f = raw::create(&img, size).unwrap();
        fat::write(&tree, &opts, &f, 0, size).unwrap();
        let (ok, text) = judge_output(Command::new(&fsck).args(["-n", "-V"]).arg(&img));
        assert!(
            ok && !text.contains("?"),
            "fsck.vfat -n on {size} bytes:\n{text}"
        );
        // fsck counts the files, the 11 directories and the label entry.
        assert!(
            text.contains(&format!("{} files", files.len() + 12)),
            "{text}"
        );
        let at = format!("{}@@0", img.display());
        let (ok, listing) = judge_output(Command::new(&mdir).args(["-i", &at, "::/"]));
        assert!(ok, "{listing}");
        assert!(listing.contains("Volume in drive : is EFI"), "{listing}");
    }
    // One MiB less than the minimum does not hold the content.
    let f = raw::create(&dir.path().join("small.img"), min - MIB).unwrap();
    assert!(fat::write(&tree, &opts, &f, 0, min - MIB).is_err());
}

/// A raw disk with a GPT, data at odd offsets, runs that cross grain
/// boundaries, and long zero ranges. `len` need not be a whole grain.
fn varied_raw(path: &Path, len: u64) -> File {
    let f = raw::create(path, len).unwrap();
    if len >= 64 * MIB && len.is_multiple_of(MIB) {
        let l = gpt::plan(0, 0, gpt::Size::Bytes(len), b"raw").unwrap();
        gpt::write(&l, &f).unwrap();
    }
    let spots = [
        (12_345_677, 1000),
        (40 * MIB - 100, 300),
        (41 * MIB + 65_536 * 3 + 1, 3 * MIB as usize),
        (len / 2 + 511, 70_000),
        (len - 2 * MIB - 7, 5000),
    ];
    for (i, (at, n)) in spots.into_iter().enumerate() {
        if at + n as u64 <= len {
            f.write_all_at(&noise(i as u64 + 77, n), at).unwrap();
        }
    }
    // A run of text that deflates well.
    f.write_all_at(&b"ingot ".repeat(100_000), 20 * MIB)
        .unwrap();
    f
}

/// The data pieces of a finished raw image, front to back.
fn data_pieces(r: &File) -> Vec<(u64, Vec<u8>)> {
    let mut chunks = raw::Chunks::new(r, 256 * 1024).unwrap();
    let mut out = Vec::new();
    while let Some(c) = chunks.next_chunk().unwrap() {
        if let raw::Chunk::Data { offset, bytes } = c {
            out.push((offset, bytes.to_vec()));
        }
    }
    out
}

/// Waits until `cond` holds; fails after ten minutes (a hang guard, not a
/// measure of speed).
fn until(cond: impl Fn() -> bool, what: &str) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(600),
            "not within ten minutes: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The one pass over `raw` with a VMDK stream into `out`: the image's
/// digests and the finished VMDK.
fn with_vmdk(
    raw: &File,
    out: &Path,
    cid: u32,
    threads: std::num::NonZeroUsize,
    mark: &raw::Watermark,
) -> (ingot::disk::RawDigests, vmdk::Finished) {
    let len = raw.metadata().unwrap().len();
    let mut w = vmdk::Writer::new(File::create(out).unwrap(), len, cid).unwrap();
    let d = ingot::disk::digest_raw_following(raw, &mut [&mut w], threads, mark).unwrap();
    (d, w.finish().unwrap())
}

/// An image digested while it is written, each piece read once the writer
/// says it is final, gives what the finished image gives: the same SHA-256,
/// EBS checksum and VMDK bytes. The writer pauses often, so the reader
/// catches up with it and finds no data ahead: ranges the kernel called
/// holes then and that were written since must be read, not skipped.
#[test]
fn an_image_digested_while_it_is_written_equals_the_finished_one() {
    let dir = tempfile::tempdir().unwrap();
    let len = 96 * MIB;
    let whole = varied_raw(&dir.path().join("whole.raw"), len);
    let cid = vmdk::content_id(&[3; 32]);
    let want_vmdk = dir.path().join("whole.vmdk");
    let (want, want_v) = with_vmdk(&whole, &want_vmdk, cid, ONE, &raw::Watermark::finished());
    let pieces = data_pieces(&whole);
    assert!(pieces.len() > 10, "{} pieces", pieces.len());
    for threads in [1, 2] {
        let path = dir.path().join(format!("growing-{threads}.raw"));
        let w = raw::create(&path, len).unwrap();
        let r = File::open(&path).unwrap();
        let mark = raw::Watermark::new();
        let got_vmdk = dir.path().join(format!("growing-{threads}.vmdk"));
        let threads = std::num::NonZeroUsize::new(threads).unwrap();
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                // As the ext4 writer does: everything below the next
                // write is final before that write lands. Before each
                // write the reader catches up and waits, having looked
                // ahead at the holes.
                mark.raise(0);
                for (at, bytes) in &pieces {
                    mark.raise(*at);
                    until(|| mark.reader_waits_at(*at), "the reader caught up");
                    raw::write_nonzero_at(&w, *at, bytes).unwrap();
                }
                mark.finish();
            });
            with_vmdk(&r, &got_vmdk, cid, threads, &mark)
        });
        let (got, got_v) = got;
        assert_eq!(got.sha256, want.sha256);
        assert_eq!(got.ebs, want.ebs);
        assert_eq!(got_v, want_v);
        assert_same_file(&want_vmdk, &got_vmdk);
    }
}

/// A writer that stops early stops the reader following it with an error;
/// it does not wait for bytes that will never come.
#[test]
fn a_reader_following_a_failed_writer_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.raw");
    let w = raw::create(&path, 64 * MIB).unwrap();
    w.write_all_at(&noise(5, 3 * MIB as usize), 0).unwrap();
    let r = File::open(&path).unwrap();
    let mark = std::sync::Arc::new(raw::Watermark::new());
    mark.raise(3 * MIB);
    let (tx, rx) = std::sync::mpsc::channel();
    let m = std::sync::Arc::clone(&mark);
    std::thread::spawn(move || {
        let _ = tx.send(ingot::disk::digest_raw_following(&r, &mut [], ONE, &m).is_err());
    });
    until(
        || mark.reader_waits_at(3 * MIB),
        "the reader waits for more",
    );
    mark.fail();
    let failed = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the reader still waits for a writer that failed");
    assert!(failed, "a digest of a half-written image was returned");
}

/// `digest_raw` reads the image once for what three readers give one
/// after the other: the same SHA-256 as `sha256sum`, the same EBS
/// checksum, the same VMDK bytes, whatever the threads.
#[test]
fn one_read_gives_the_digest_the_ebs_checksum_and_the_vmdk_of_three() {
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("whole", 256 * MIB), ("odd", 100 * MIB + 3 * SECTOR)] {
        let raw_path = dir.path().join(format!("{name}.raw"));
        let r = varied_raw(&raw_path, len);
        let sha = raw::sha256(&r).unwrap();
        let ebs_alone = ebs::checksum(&r).unwrap();
        let alone = dir.path().join(format!("{name}.alone.vmdk"));
        let size = vmdk::write(&r, &File::create(&alone).unwrap(), &sha, ONE).unwrap();
        for threads in [1, 3] {
            let together = dir.path().join(format!("{name}.{threads}.vmdk"));
            let threads = std::num::NonZeroUsize::new(threads).unwrap();
            let cid = vmdk::content_id(&sha);
            let (d, v) = with_vmdk(&r, &together, cid, threads, &raw::Watermark::finished());
            assert_eq!(d.sha256, sha);
            assert_eq!(d.ebs, ebs_alone);
            assert_same_file(&alone, &together);
            // The VMDK's digest, taken as it was written, is its file's.
            assert_eq!(v.size, size);
            let file_sha: [u8; 32] =
                <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&together).unwrap()).into();
            assert_eq!(v.sha256, file_sha);
        }
        let d = ingot::disk::digest_raw(&r, &mut [], ONE).unwrap();
        assert_eq!(d.sha256, sha);
        if let Some(sha256sum) = crate::common::judge("sha256sum") {
            let o = crate::common::run_ok(Command::new(sha256sum).arg(&raw_path));
            assert!(crate::common::stdout(&o).starts_with(&hex::encode(sha)));
        }
    }
}

#[test]
fn vmdk_holds_the_raw_disk_for_qemu_img_and_is_reproducible() {
    let qemu_img = need!("qemu-img");
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("whole", 256 * MIB), ("odd", 100 * MIB + 3 * SECTOR)] {
        let raw_path = dir.path().join(format!("{name}.raw"));
        let r = varied_raw(&raw_path, len);
        let digest = raw::sha256(&r).unwrap();
        let vmdk_path = dir.path().join(format!("{name}.vmdk"));
        let size = vmdk::write(&r, &File::create(&vmdk_path).unwrap(), &digest, ONE).unwrap();
        assert_eq!(std::fs::metadata(&vmdk_path).unwrap().len(), size);

        let (ok, text) = judge_output(
            Command::new(&qemu_img)
                .args(["check", "-f", "vmdk"])
                .arg(&vmdk_path),
        );
        assert!(
            ok && text.contains("No errors were found"),
            "qemu-img check:\n{text}"
        );
        let (ok, text) = judge_output(
            Command::new(&qemu_img)
                .args(["compare", "-f", "raw", "-F", "vmdk"])
                .arg(&raw_path)
                .arg(&vmdk_path),
        );
        assert!(
            ok && text.contains("Images are identical."),
            "qemu-img compare:\n{text}"
        );
        let (ok, info) = judge_output(
            Command::new(&qemu_img)
                .args(["info", "--output=json", "-f", "vmdk"])
                .arg(&vmdk_path),
        );
        assert!(ok, "{info}");
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["virtual-size"], len);
        assert_eq!(
            info["format-specific"]["data"]["create-type"],
            "streamOptimized"
        );

        let back = dir.path().join(format!("{name}.back.raw"));
        let (ok, text) = judge_output(
            Command::new(&qemu_img)
                .args(["convert", "-f", "vmdk", "-O", "raw"])
                .arg(&vmdk_path)
                .arg(&back),
        );
        assert!(ok, "{text}");
        assert_same_file(&raw_path, &back);

        // Again, on three threads: the same bytes.
        let again = dir.path().join(format!("{name}.again.vmdk"));
        let three = std::num::NonZeroUsize::new(3).unwrap();
        vmdk::write(&r, &File::create(&again).unwrap(), &digest, three).unwrap();
        assert_same_file(&vmdk_path, &again);
        // Zero grains are not stored: the VMDK is much smaller than the data
        // span would be.
        assert!(size < 8 * MIB, "{size} bytes");
    }
}

#[test]
fn vmdk_of_an_all_zero_disk_has_tables_and_no_grains() {
    let qemu_img = need!("qemu-img");
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("zero.raw");
    let r = raw::create(&raw_path, 64 * MIB).unwrap();
    let vmdk_path = dir.path().join("zero.vmdk");
    let size = vmdk::write(&r, &File::create(&vmdk_path).unwrap(), &[0; 32], ONE).unwrap();
    // Header, descriptor room, 2 grain tables with markers, directory with
    // marker, footer with marker, end-of-stream.
    assert_eq!(size, (128 + 2 * 5 + 2 + 2 + 1) * SECTOR);
    let (ok, text) = judge_output(
        Command::new(&qemu_img)
            .args(["check", "-f", "vmdk"])
            .arg(&vmdk_path),
    );
    assert!(
        ok && text.contains("No errors were found"),
        "qemu-img check:\n{text}"
    );
    let (ok, text) = judge_output(
        Command::new(&qemu_img)
            .args(["compare", "-f", "raw", "-F", "vmdk"])
            .arg(&raw_path)
            .arg(&vmdk_path),
    );
    assert!(
        ok && text.contains("Images are identical."),
        "qemu-img compare:\n{text}"
    );
}

#[test]
fn vhd_holds_the_raw_disk_for_qemu_img_and_is_reproducible() {
    let qemu_img = need!("qemu-img");
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("a.raw");
    let r = varied_raw(&raw_path, 256 * MIB);
    let vhd_path = dir.path().join("a.vhd");
    let size = vhd::write(&r, &File::create(&vhd_path).unwrap(), SOURCE_DATE).unwrap();
    assert_eq!(size, 256 * MIB + 512);

    let (ok, text) = judge_output(
        Command::new(&qemu_img)
            .args(["compare", "-f", "raw", "-F", "vpc"])
            .arg(&raw_path)
            .arg(&vhd_path),
    );
    assert!(
        ok && text.contains("Images are identical."),
        "qemu-img compare:\n{text}"
    );
    let (ok, info) = judge_output(
        Command::new(&qemu_img)
            .args(["info", "--output=json", "-f", "vpc"])
            .arg(&vhd_path),
    );
    assert!(ok, "{info}");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["virtual-size"], 256 * MIB);
    let back = dir.path().join("a.back.raw");
    let (ok, text) = judge_output(
        Command::new(&qemu_img)
            .args(["convert", "-f", "vpc", "-O", "raw"])
            .arg(&vhd_path)
            .arg(&back),
    );
    assert!(ok, "{text}");
    assert_same_file(&raw_path, &back);

    let again = dir.path().join("again.vhd");
    vhd::write(&r, &File::create(&again).unwrap(), SOURCE_DATE).unwrap();
    assert_same_file(&vhd_path, &again);
    // The VHD keeps the raw image's holes.
    use std::os::unix::fs::MetadataExt;
    assert!(std::fs::metadata(&vhd_path).unwrap().blocks() * 512 < 64 * MIB);
}

#[test]
fn ebs_checksum_matches_an_independent_computation() {
    let python = need!("python3");
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("a.raw");
    // Not a whole number of 512 KiB blocks: the last one is short.
    let r = varied_raw(&raw_path, 200 * MIB + 3 * SECTOR);
    let ours = ebs::checksum(&r).unwrap();
    let script = r#"
import base64, hashlib, sys
B = 512 * 1024
agg = hashlib.sha256()
n = 0
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(B)
        if not b:
            break
        if b.count(0) == len(b):
            continue
        agg.update(hashlib.sha256(b.ljust(B, b"\0")).digest())
        n += 1
print(n, base64.b64encode(agg.digest()).decode())
"#;
    let o = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&raw_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let theirs = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(
        format!("{} {}", ours.changed_blocks, ours.linear_sha256_base64),
        theirs
    );
    assert_eq!(ours.block_size, 512 * 1024);
    assert!(ours.changed_blocks > 5);
}

#[test]
fn raw_sha256_matches_sha256sum() {
    let sha256sum = need!("sha256sum");
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("a.raw");
    let r = varied_raw(&raw_path, 300 * MIB);
    let ours = hex::encode(raw::sha256(&r).unwrap());
    let (ok, text) = judge_output(Command::new(sha256sum).arg(&raw_path));
    assert!(ok, "{text}");
    assert_eq!(text.split_whitespace().next(), Some(ours.as_str()));
}

#[test]
fn a_whole_disk_is_byte_identical_on_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.raw");
    let b = dir.path().join("b.raw");
    let la = build_disk(&a, gpt::Size::Auto);
    let lb = build_disk(&b, gpt::Size::Auto);
    assert_eq!(la, lb);
    assert_eq!(la.disk_size, GIB);
    assert_same_file(&a, &b);
    // Sparse: the 1 GiB image allocates little more than its content.
    use std::os::unix::fs::MetadataExt;
    assert!(std::fs::metadata(&a).unwrap().blocks() * 512 < 24 * MIB);
}

/// Compare two files chunk by chunk (they can be GiB large).
fn assert_same_file(a: &Path, b: &Path) {
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let len = fa.metadata().unwrap().len();
    assert_eq!(
        len,
        fb.metadata().unwrap().len(),
        "{} and {} differ in size",
        a.display(),
        b.display()
    );
    let (mut x, mut y) = (vec![0u8; 4 << 20], vec![0u8; 4 << 20]);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(4 << 20) as usize;
        fa.read_exact_at(&mut x[..n], at).unwrap();
        fb.read_exact_at(&mut y[..n], at).unwrap();
        if x[..n] != y[..n] {
            let i = (0..n).find(|&i| x[i] != y[i]).unwrap_or(0);
            panic!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                at + i as u64
            );
        }
        at += n as u64;
    }
}
