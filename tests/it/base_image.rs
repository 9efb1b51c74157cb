//! A base that is a disk image: a qcow2 (plain and with compressed
//! clusters), a raw GPT disk, a stream-optimized VMDK or a fixed VHD (all
//! made by qemu-img) with an XFS or ext4 root made by the real
//! mkfs tools bakes into the same tree as the same filesystem read by
//! GNU tar through a kernel mount, SELinux labels included. Both bakes
//! write tarballs, listed by Python's `tarfile` (not by ingot).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ingot, run_ok, stderr, stdout};
use crate::xfs_read::{big_xattrs, fill_source, gpt_disk, mount, xfs_of_then};

/// Every member of a tarball: name, type, mode, owner, mtime, size,
/// SHA-256, link target, device numbers and pax xattrs, one JSON line
/// each, in name order.
const LIST: &str = r#"
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        d = {"name": m.name.lstrip("./") or ".", "type": m.type.decode(), "mode": m.mode,
             "uid": m.uid, "gid": m.gid, "mtime": int(m.mtime), "size": m.size,
             "link": m.linkname, "dev": [m.devmajor, m.devminor],
             "xattrs": {k: v for k, v in sorted(m.pax_headers.items()) if k.startswith("SCHILY.xattr.")}}
        if m.isfile():
            d["sha256"] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
        out.append(d)
for d in sorted(out, key=lambda d: d["name"]):
    print(json.dumps(d, sort_keys=True))
"#;

fn listing(python: &Path, tar: &Path) -> String {
    stdout(&run_ok(Command::new(python).arg("-c").arg(LIST).arg(tar)))
}

/// Bake `base` into a tarball in `dir/NAME`, returning the tarball.
fn bake(dir: &Path, name: &str, base: &Path) -> PathBuf {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"x\"\nbase = {:?}\npackages = []\nformats = [\"tar\"]\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.join(name);
    let o = ingot()
        .arg("bake")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "bake {name}: {}", stderr(&o));
    std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tar"))
        .unwrap()
}

/// GNU tar of the filesystem `img` (type `fstype`) through a read-only
/// kernel mount, xattrs and sparse files kept.
fn tar_of_mount(tar: &Path, img: &Path, fstype: &str, mnt: &Path, to: &Path) -> Option<()> {
    let _m = mount(img, fstype, "loop,ro", mnt)?;
    run_ok(
        Command::new(tar)
            .args([
                "--create",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
            ])
            .args(["--sparse", "--format=posix", "-f"])
            .arg(to)
            .arg("-C")
            .arg(mnt)
            .arg("."),
    );
    Some(())
}

struct Judges {
    qemu_img: PathBuf,
    tar: PathBuf,
    python: PathBuf,
}

fn judges() -> Option<Judges> {
    crate::common::judge("sgdisk")?;
    let j = Judges {
        qemu_img: crate::common::judge("qemu-img")?,
        tar: crate::common::judge("tar")?,
        python: crate::common::judge("python3")?,
    };
    crate::common::need_root("a kernel loop mount").then_some(j)
}

/// The disk `disk` as qcow2 files: plain and with compressed clusters.
fn qcow2s(j: &Judges, disk: &Path, dir: &Path) -> [PathBuf; 2] {
    let plain = dir.join("disk.qcow2");
    let packed = dir.join("disk-compressed.qcow2");
    for (to, extra) in [(&plain, None), (&packed, Some("-c"))] {
        let mut c = Command::new(&j.qemu_img);
        c.args(["convert", "-O", "qcow2"]);
        c.args(extra);
        run_ok(c.arg(disk).arg(to));
    }
    [plain, packed]
}

fn assert_same(j: &Judges, want: &Path, got: &Path, what: &str) {
    let (w, g) = (listing(&j.python, want), listing(&j.python, got));
    if w != g {
        let diff: Vec<_> = w
            .lines()
            .zip(g.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .collect();
        panic!("{what}: the bakes differ:\n{diff:#?}");
    }
}

#[test]
fn a_qcow2_with_an_xfs_root_bakes_as_its_tarball_does() {
    let Some(j) = judges() else { return };
    crate::common::judge("mkfs.xfs").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (src, img, disk, mnt) = (
        t.join("src"),
        t.join("fs.img"),
        t.join("disk.raw"),
        t.join("m"),
    );
    fill_source(&src);
    if xfs_of_then(&src, &img, &mnt, big_xattrs).is_none() {
        return;
    }
    // Partition named "Linux": the root is found by the fstab's LABEL=/.
    gpt_disk(&img, &disk, "Linux");
    let base_tar = t.join("base.tar");
    if tar_of_mount(&j.tar, &img, "xfs", &mnt, &base_tar).is_none() {
        return;
    }
    let want = bake(t, "from-tar", &base_tar);
    let listed = listing(&j.python, &want);
    assert!(
        listed.contains("\"SCHILY.xattr.security.selinux\": \"system_u:object_r:etc_t:s0"),
        "the tarball base lacks the SELinux label: {listed}"
    );
    let [plain, packed] = qcow2s(&j, &disk, t);
    let (vmdk, vhd) = (t.join("disk.vmdk"), t.join("disk.vhd"));
    for (to, args) in [
        (&vmdk, ["vmdk", "subformat=streamOptimized"]),
        (&vhd, ["vpc", "subformat=fixed,force_size=on"]),
    ] {
        run_ok(
            Command::new(&j.qemu_img)
                .args(["convert", "-O", args[0], "-o", args[1]])
                .arg(&disk)
                .arg(to),
        );
    }
    for (name, base) in [
        ("raw", &disk),
        ("qcow2", &plain),
        ("qcow2-c", &packed),
        ("vmdk", &vmdk),
        ("vhd", &vhd),
    ] {
        let got = bake(t, name, base);
        assert_same(&j, &want, &got, name);
    }
}

#[test]
fn a_qcow2_with_an_ext4_root_bakes_as_its_tarball_does() {
    let Some(j) = judges() else { return };
    let Some(mkfs) = crate::common::judge("mkfs.ext4") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (src, img, disk, mnt) = (
        t.join("src"),
        t.join("fs.img"),
        t.join("disk.raw"),
        t.join("m"),
    );
    fill_source(&src);
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(64 << 20).unwrap();
    drop(f);
    run_ok(
        Command::new(mkfs)
            .args(["-q", "-F", "-L", "/", "-I", "256", "-d"])
            .arg(&src)
            .arg(&img),
    );
    gpt_disk(&img, &disk, "/");
    let base_tar = t.join("base.tar");
    if tar_of_mount(&j.tar, &img, "ext4", &mnt, &base_tar).is_none() {
        return;
    }
    let want = bake(t, "from-tar", &base_tar);
    let listed = listing(&j.python, &want);
    assert!(
        listed.contains("\"SCHILY.xattr.security.selinux\": \"system_u:object_r:etc_t:s0"),
        "the tarball base lacks the SELinux label: {listed}"
    );
    let [plain, _] = qcow2s(&j, &disk, t);
    for (name, base) in [("raw", &disk), ("qcow2", &plain)] {
        let got = bake(t, name, base);
        assert_same(&j, &want, &got, name);
    }
}

fn json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let o = run_ok(ingot().arg("--json").args(args));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// `inspect` and `diff` read a qcow2 whose root is XFS: every path with
/// what the source says of it, and no difference from GNU tar's reading
/// of the same filesystem but the one path left out of that tarball.
#[test]
fn inspect_and_diff_read_an_xfs_root() {
    let Some(j) = judges() else { return };
    crate::common::judge("mkfs.xfs").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (src, img, disk, mnt) = (
        t.join("src"),
        t.join("fs.img"),
        t.join("disk.raw"),
        t.join("m"),
    );
    fill_source(&src);
    if xfs_of_then(&src, &img, &mnt, |_| ()).is_none() {
        return;
    }
    gpt_disk(&img, &disk, "/");
    let [qcow, _] = qcow2s(&j, &disk, t);
    let doc = json(&["inspect".as_ref(), qcow.as_os_str(), "--files".as_ref()]);
    assert_eq!(doc["os_release"]["NAME"], "Amazon Linux", "{doc}");
    let files = &doc["files"];
    let setuid = &files["/setuid"];
    assert_eq!(
        (
            &setuid["kind"],
            &setuid["mode"],
            &setuid["uid"],
            &setuid["gid"]
        ),
        (&"file".into(), &"4751".into(), &1234.into(), &5678.into()),
        "{setuid}"
    );
    let sha = stdout(&run_ok(Command::new("sha256sum").arg(src.join("sparse"))));
    assert_eq!(files["/sparse"]["content"], sha.split(' ').next().unwrap());
    assert_eq!(files["/long-link"]["content"], "t".repeat(600));
    assert_eq!(files["/dev/big"]["content"], "300,70000");
    assert_eq!(
        files["/d5000"].as_object().map(|_| ()),
        Some(()),
        "the node-form directory is listed"
    );
    let in_big = files
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("/d5000/"))
        .count();
    assert_eq!(in_big, 5000);
    // diff against GNU tar's reading, one file left out of it.
    let base_tar = t.join("base.tar");
    {
        let Some(_m) = mount(&img, "xfs", "loop,ro", &mnt) else {
            return;
        };
        run_ok(
            Command::new(&j.tar)
                .args([
                    "--create",
                    "--xattrs",
                    "--xattrs-include=*",
                    "--numeric-owner",
                ])
                .args(["--sparse", "--format=posix", "--exclude=./d5/f3", "-f"])
                .arg(&base_tar)
                .arg("-C")
                .arg(&mnt)
                .arg("."),
        );
    }
    let doc = json(&["diff".as_ref(), base_tar.as_os_str(), qcow.as_os_str()]);
    let changes: Vec<String> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["path"].as_str().unwrap(), f["changes"]))
        .collect();
    // The folder's mtime is what tar saw, so only the file differs.
    assert_eq!(changes, ["/d5/f3 [\"added\"]"], "{doc}");
}

/// The ESP of a disk-image base (FAT16 and FAT32 as mkfs.vfat makes them,
/// files put in by mtools, long names included) lands under `/boot/efi`.
#[test]
fn the_esp_of_a_disk_image_base_lands_under_boot_efi() {
    let Some(j) = judges() else { return };
    let (Some(mkfs_vfat), Some(mcopy), Some(mmd)) = (
        crate::common::judge("mkfs.vfat"),
        crate::common::judge("mcopy"),
        crate::common::judge("mmd"),
    ) else {
        return;
    };
    crate::common::judge("mkfs.xfs").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (src, img) = (t.join("src"), t.join("fs.img"));
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::create_dir_all(src.join("boot/efi")).unwrap();
    std::fs::write(src.join("etc/fstab"), "LABEL=/ / xfs defaults 0 0\n").unwrap();
    if xfs_of_then(&src, &img, &t.join("m"), |_| ()).is_none() {
        return;
    }
    let files: [(&str, Vec<u8>); 3] = [
        (
            "EFI/BOOT/BOOTX64.EFI",
            (0..300_000u32).map(|i| (i % 251) as u8).collect(),
        ),
        ("EFI/amzn/grubx64.efi", b"grub".repeat(5000)),
        (
            "EFI/amzn/a-long-file-name-for-vfat.cfg",
            b"set timeout=0\n".to_vec(),
        ),
    ];
    for fat in ["16", "32"] {
        let esp = t.join(format!("esp{fat}.img"));
        std::fs::File::create(&esp)
            .unwrap()
            .set_len(40 << 20)
            .unwrap();
        run_ok(Command::new(&mkfs_vfat).args(["-F", fat]).arg(&esp));
        let i = format!("{}", esp.display());
        run_ok(Command::new(&mmd).args(["-i", &i, "::EFI", "::EFI/BOOT", "::EFI/amzn"]));
        for (name, data) in &files {
            let f = t.join("file");
            std::fs::write(&f, data).unwrap();
            run_ok(
                Command::new(&mcopy)
                    .args(["-i", &i])
                    .arg(&f)
                    .arg(format!("::{name}")),
            );
        }
        // ESP at 1 MiB (40 MiB), the root after it.
        let disk = t.join(format!("disk{fat}.raw"));
        let size = std::fs::metadata(&img).unwrap().len();
        std::fs::File::create(&disk)
            .unwrap()
            .set_len((42 << 20) + size)
            .unwrap();
        run_ok(
            Command::new(crate::common::judge("sgdisk").unwrap())
                .args(["--new=1:2048:+40M", "--typecode=1:ef00"])
                .arg(format!("--new=2:83968:+{}K", size / 1024))
                .arg("--typecode=2:8300")
                .arg(&disk),
        );
        for (from, seek) in [(&esp, 2048), (&img, 83968)] {
            run_ok(
                Command::new("dd")
                    .arg(format!("if={}", from.display()))
                    .arg(format!("of={}", disk.display()))
                    .arg(format!("seek={seek}"))
                    .args(["bs=512", "conv=notrunc,sparse", "status=none"]),
            );
        }
        let [qcow, _] = qcow2s(&j, &disk, t);
        for (name, base) in [(format!("raw{fat}"), &disk), (format!("qcow{fat}"), &qcow)] {
            let tar = bake(t, &name, base);
            let listed = listing(&j.python, &tar);
            for (path, data) in &files {
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data));
                let want = format!("\"name\": \"boot/efi/{path}\"");
                let line = listed
                    .lines()
                    .find(|l| l.contains(&want))
                    .unwrap_or_else(|| panic!("{name}: no {path} in\n{listed}"));
                assert!(line.contains(&sha), "{name}: {path}: {line}");
                assert!(line.contains("\"mode\": 448"), "{name}: {path}: {line}");
            }
        }
    }
}

/// A qcow2 with a backing file, and a base whose XFS is damaged, are
/// refused with exit 2 and a message naming why; nothing is written.
#[test]
fn a_backed_qcow2_or_a_damaged_xfs_base_is_refused() {
    let Some(j) = judges() else { return };
    crate::common::judge("mkfs.xfs").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (src, img, disk) = (t.join("src"), t.join("fs.img"), t.join("disk.raw"));
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/fstab"), "LABEL=/ / xfs defaults 0 0\n").unwrap();
    if xfs_of_then(&src, &img, &t.join("m"), |_| ()).is_none() {
        return;
    }
    gpt_disk(&img, &disk, "/");
    let over = t.join("over.qcow2");
    run_ok(
        Command::new(&j.qemu_img)
            .args(["create", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&disk)
            .arg(&over),
    );
    // The root directory's inode (128 in a fresh mkfs.xfs) flipped.
    let mut bytes = std::fs::read(&disk).unwrap();
    let sb = &bytes[1 << 20..(1 << 20) + 512];
    let be = |o: usize, n: usize| {
        sb[o..o + n]
            .iter()
            .fold(0u64, |a, b| a << 8 | u64::from(*b))
    };
    let (bs, root, isize) = (be(4, 4), be(0x38, 8), be(0x68, 2));
    let inopblog = u64::from(sb[0x7B]);
    let at = (1 << 20) + (root >> inopblog) * bs + (root & ((1 << inopblog) - 1)) * isize;
    bytes[at as usize + 0x60] ^= 0x10;
    let damaged = t.join("damaged.raw");
    std::fs::write(&damaged, &bytes).unwrap();
    for (base, why) in [
        (&over, "backing file"),
        (
            &damaged,
            &format!("inode {root}: its CRC does not match")[..],
        ),
    ] {
        let spec = t.join("x.toml");
        std::fs::write(
            &spec,
            format!(
                "[image]\nname = \"x\"\nbase = {:?}\npackages = []\nformats = [\"tar\"]\n",
                base.display().to_string()
            ),
        )
        .unwrap();
        let out = t.join("out");
        let o = ingot()
            .arg("bake")
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        let left = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "outputs were written");
    }
}
