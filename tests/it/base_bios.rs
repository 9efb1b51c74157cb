//! Legacy-BIOS boot comes along from a base that is a disk image: the
//! MBR boot code (first 440 bytes) and the BIOS boot partition of the
//! baked disk equal the base's, read back with `dd` at the partition
//! `sgdisk` reports; when the new partition starts elsewhere, GRUB's
//! sector pointers are moved with it and nothing else changes. A tarball
//! base gets a warning and `"bios_bootable": false`.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ingot, repo_root, run_ok, stderr, stdout};
use crate::xfs_read::xfs_of;

/// Where bake puts its BIOS boot partition when the ESP is empty: after a
/// 10 MiB ESP at 1 MiB.
const BAKED_BIOS_LBA: u64 = 22528;

/// A base disk: its BIOS boot partition at `bios_lba` (2048 sectors),
/// the XFS root after it, and GRUB-shaped boot code: the MBR's kernel
/// sector (0x5c) pointing at the partition's first sector, whose block
/// list (at byte 500) names the sectors after it. Returns the MBR code
/// and the partition's bytes.
fn base_disk(fs: &Path, disk: &Path, bios_lba: u64) -> (Vec<u8>, Vec<u8>) {
    let root_lba = bios_lba + 2048;
    let size = std::fs::metadata(fs).unwrap().len();
    let f = std::fs::File::create(disk).unwrap();
    f.set_len(root_lba * 512 + size + (1 << 20)).unwrap();
    drop(f);
    let sgdisk = crate::common::judge("sgdisk").unwrap();
    run_ok(
        Command::new(sgdisk)
            .arg(format!("--new=2:{bios_lba}:{}", bios_lba + 2047))
            .arg("--typecode=2:ef02")
            .arg(format!("--new=1:{root_lba}:+{}K", size / 1024))
            .arg("--typecode=1:8300")
            .arg(disk),
    );
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", fs.display()))
            .arg(format!("of={}", disk.display()))
            .arg(format!("seek={root_lba}"))
            .args(["bs=512", "conv=notrunc,sparse", "status=none"]),
    );
    let mut mbr: Vec<u8> = (0..440u32).map(|i| (i * 13 % 251) as u8 | 1).collect();
    mbr[0x5c..0x64].copy_from_slice(&bios_lba.to_le_bytes());
    let mut part: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 253) as u8 | 1).collect();
    part[500..508].copy_from_slice(&(bios_lba + 1).to_le_bytes());
    part[508..510].copy_from_slice(&127u16.to_le_bytes());
    part[488 + 8..488 + 10].copy_from_slice(&0u16.to_le_bytes());
    let f = std::fs::OpenOptions::new().write(true).open(disk).unwrap();
    f.write_all_at(&mbr, 0).unwrap();
    f.write_all_at(&part, bios_lba * 512).unwrap();
    (mbr, part)
}

/// Bake `base` into a raw disk; returns the disk and the manifest.
fn bake_raw(dir: &Path, base: &Path) -> (PathBuf, serde_json::Value) {
    let spec = dir.join("x.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"x\"\nbase = {:?}\npackages = []\nformats = [\"raw\"]\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = ingot()
        .arg("--json")
        .arg("bake")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "bake: {}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest = std::fs::read(doc["manifest"].as_str().unwrap()).unwrap();
    (
        PathBuf::from(doc["image"].as_str().unwrap()),
        serde_json::from_slice(&manifest).unwrap(),
    )
}

/// `count` sectors of `disk` from `lba`, read by dd.
fn dd(disk: &Path, lba: u64, bytes: usize) -> Vec<u8> {
    let o = run_ok(
        Command::new("dd")
            .arg(format!("if={}", disk.display()))
            .arg(format!("skip={lba}"))
            .arg(format!("count={}", bytes.div_ceil(512)))
            .args(["bs=512", "status=none"]),
    );
    o.stdout[..bytes].to_vec()
}

/// The first sector of the BIOS boot partition sgdisk finds on `disk`.
fn bios_first_lba(disk: &Path) -> u64 {
    let sgdisk = crate::common::judge("sgdisk").unwrap();
    let text = stdout(&run_ok(Command::new(sgdisk).arg("--print").arg(disk)));
    let line = text
        .lines()
        .find(|l| l.contains(" EF02 "))
        .unwrap_or_else(|| panic!("no BIOS boot partition:\n{text}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn bios_boot_code_comes_along_from_a_disk_image_base() {
    if crate::common::judge("sgdisk").is_none() || crate::common::judge("mkfs.xfs").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let src = t.join("src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/fstab"), "LABEL=/ / xfs defaults 0 0\n").unwrap();
    std::fs::write(src.join("etc/os-release"), "NAME=\"Amazon Linux\"\n").unwrap();
    let fs = t.join("fs.img");
    if xfs_of(&src, &fs, &t.join("m")).is_none() {
        return;
    }
    // At the sector bake uses: the bytes come through as they are.
    let same = t.join("same");
    std::fs::create_dir_all(&same).unwrap();
    let (mbr, part) = base_disk(&fs, &same.join("base.raw"), BAKED_BIOS_LBA);
    let (disk, manifest) = bake_raw(&same, &same.join("base.raw"));
    assert_eq!(bios_first_lba(&disk), BAKED_BIOS_LBA);
    assert!(dd(&disk, 0, 440) == mbr, "the MBR boot code differs");
    assert!(
        dd(&disk, BAKED_BIOS_LBA, 1 << 20) == dd(&same.join("base.raw"), BAKED_BIOS_LBA, 1 << 20),
        "the BIOS boot partition differs"
    );
    assert!(dd(&disk, BAKED_BIOS_LBA, part.len()) == part);
    assert_eq!(manifest["disk"]["bios_bootable"], true, "{manifest}");
    assert_eq!(
        manifest["inputs"]["base"]["kind"], "disk image",
        "{manifest}"
    );
    // The protective MBR past the boot code is still one (sgdisk reads
    // the GPT above without complaint, and the signature is there).
    assert_eq!(dd(&disk, 0, 512)[510..], [0x55, 0xAA]);

    // Elsewhere: GRUB's pointers follow the partition, nothing else moves.
    let moved = t.join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    let (mbr, part) = base_disk(&fs, &moved.join("base.raw"), 2048);
    let (disk, manifest) = bake_raw(&moved, &moved.join("base.raw"));
    let lba = bios_first_lba(&disk);
    assert_ne!(lba, 2048);
    let (mut want_mbr, mut want_part) = (mbr, part);
    want_mbr[0x5c..0x64].copy_from_slice(&lba.to_le_bytes());
    want_part[500..508].copy_from_slice(&(lba + 1).to_le_bytes());
    assert!(dd(&disk, 0, 440) == want_mbr, "the moved MBR boot code");
    assert!(
        dd(&disk, lba, want_part.len()) == want_part,
        "the moved partition"
    );
    assert_eq!(manifest["disk"]["bios_bootable"], true, "{manifest}");
}

#[test]
fn a_tarball_base_is_not_bios_bootable_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let base = repo_root().join("fixtures/al2023-standin/rootfs.tar.zst");
    let (_, manifest) = bake_raw(tmp.path(), &base);
    assert_eq!(manifest["disk"]["bios_bootable"], false, "{manifest}");
    assert_eq!(manifest["inputs"]["base"]["kind"], "archive", "{manifest}");
    assert!(
        manifest["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("will not boot by legacy BIOS")),
        "{manifest}"
    );
}
