//! XFS roots (`[image] filesystem = "xfs"`, or a base whose fstab mounts
//! XFS at `/`) judged by xfsprogs and the kernel: `xfs_repair -n` finds
//! nothing, `xfs_db` reads the superblock and counters we meant, a
//! read-only kernel loop mount shows the same tree as the tar output of
//! the same bake, and two bakes under other folders, time zones and
//! umasks give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::common::{copy_dir, ingot, repo_root, run_ok, stdout};
use crate::need;

/// The example image spec in a private workspace, with `extra` added to
/// its `[image]` table and only raw and tar outputs.
fn example(t: &Path, extra: &str) -> PathBuf {
    let dir = t.join("repo");
    crate::common::copy_specs_tar_only(&dir.join("specs"));
    copy_dir(&repo_root().join("fixtures"), &dir.join("fixtures"));
    let spec = dir.join("specs/hello-image.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    // copy_specs_tar_only left `formats = ["tar"]`.
    let text = text.replace(
        "formats = [\"tar\"]",
        &format!("formats = [\"raw\", \"tar\"]\n{extra}"),
    );
    assert!(text.contains(extra), "the example spec changed shape");
    std::fs::write(&spec, text).unwrap();
    spec
}

struct Baked {
    raw: PathBuf,
    tar: PathBuf,
    manifest: serde_json::Value,
}

fn bake(cmd: &mut Command, out: &Path) -> Baked {
    run_ok(cmd.arg("--out").arg(out));
    let find = |suffix: &str| {
        std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} output"))
    };
    let manifest = serde_json::from_slice(&std::fs::read(find(".manifest.json")).unwrap()).unwrap();
    Baked {
        raw: find(".raw"),
        tar: find(".tar"),
        manifest,
    }
}

/// The root partition's (offset, size).
fn root_partition(m: &serde_json::Value) -> (u64, u64) {
    let p = m["disk"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == 1)
        .unwrap();
    (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

/// Copy `len` bytes at `off` of `raw` into a new sparse file (xfs_repair
/// and xfs_db take no offset).
fn extract(raw: &Path, off: u64, len: u64, to: &Path) {
    let mut r = std::fs::File::open(raw).unwrap();
    r.seek(SeekFrom::Start(off)).unwrap();
    let mut w = std::fs::File::create(to).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..n]).unwrap();
        if buf[..n].iter().all(|b| *b == 0) {
            w.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            w.write_all(&buf[..n]).unwrap();
        }
        left -= n as u64;
    }
    w.set_len(len).unwrap();
}

/// `xfs_repair -n`: exit 0, and nothing it would change.
fn assert_repair_clean(img: &Path) {
    let repair = need!("xfs_repair");
    let o = Command::new(repair)
        .arg("-n")
        .arg("-f")
        .arg(img)
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{text}");
    for bad in [
        "would ",
        "bad ",
        "corrupt",
        "error",
        "invalid",
        "inconsistent",
        "mismatch",
    ] {
        let hits: Vec<&str> = text
            .lines()
            .filter(|l| l.to_lowercase().contains(bad) && !l.contains("sector size mismatch"))
            .collect();
        assert!(hits.is_empty(), "xfs_repair -n: {hits:?}\n{text}");
    }
}

/// `xfs_db -r` with commands; `name = value` lines as a map (the last
/// value of a repeated name wins).
fn xfs_db(img: &Path, cmds: &[&str]) -> (String, BTreeMap<String, String>) {
    let db = crate::common::judge("xfs_db").unwrap_or_else(|| "xfs_db".into());
    let mut c = Command::new(db);
    c.arg("-r");
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    let text = stdout(&run_ok(c.arg(img)));
    let map = text
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (text, map)
}

#[test]
fn the_example_baked_as_xfs_is_clean_and_its_counters_add_up() {
    let _ = need!("xfs_repair");
    let _ = need!("xfs_db");
    let t = tempfile::tempdir().unwrap();
    let spec = example(t.path(), "filesystem = \"xfs\"");
    let b = bake(
        ingot().arg("-q").arg("bake").arg(&spec),
        &t.path().join("out"),
    );
    let (off, size) = root_partition(&b.manifest);
    let img = t.path().join("root.img");
    extract(&b.raw, off, size, &img);
    assert_repair_clean(&img);

    let (text, sb) = xfs_db(&img, &["sb 0", "print"]);
    let uuid = b.manifest["disk"]["root_uuid"].as_str().unwrap();
    assert_eq!(sb["uuid"], uuid, "{text}");
    assert!(sb["fname"].starts_with("\"/\\000"), "{text}");
    assert!(sb["crc"].ends_with("(correct)"), "{text}");
    let n = |k: &str| -> u64 {
        let v = &sb[k];
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    };
    assert_eq!(n("dblocks") * n("blocksize"), size, "{text}");
    assert_eq!(
        (n("blocksize"), n("inodesize"), n("sectsize")),
        (4096, 512, 512)
    );
    // v5 with nlink, align, logv2, extflg, dirv2, morebits, attr; features2
    // lazy counters, attr2, projid32, crc, ftype; finobt, reflink,
    // inobtcount; ftype, sparse inodes, bigtime.
    assert_eq!(n("versionnum"), 0xb4a5, "{text}");
    assert_eq!(n("features2"), 0x18a, "{text}");
    assert_eq!(n("features_ro_compat"), 0xd, "{text}");
    assert_eq!(n("features_incompat"), 0xb, "{text}");
    // The geometry mkfs.xfs picks for this size.
    let mkfs = need!("mkfs.xfs");
    let probe = t.path().join("probe.img");
    std::fs::File::create(&probe)
        .unwrap()
        .set_len(size)
        .unwrap();
    let g = stdout(&run_ok(Command::new(mkfs).arg("-N").arg("-f").arg(&probe)));
    assert!(
        g.contains(&format!(
            "agcount={}, agsize={} blks",
            n("agcount"),
            n("agblocks")
        )),
        "{g}\n{text}"
    );
    assert!(
        g.contains(&format!("blocks={}, version=2", n("logblocks"))),
        "{g}"
    );

    // Free blocks: the superblock's count is what the free space btrees
    // hold (xfs_db's freesp walks them, free lists included).
    let (fs, _) = xfs_db(&img, &["freesp -s"]);
    let total = fs
        .lines()
        .find_map(|l| l.trim().strip_prefix("total free blocks "))
        .unwrap_or_else(|| panic!("{fs}"));
    assert_eq!(total.trim().parse::<u64>().unwrap(), n("fdblocks"), "{fs}");
    // Inodes: the AGIs add up to the superblock's counts.
    let (mut count, mut free) = (0, 0);
    for ag in 0..n("agcount") {
        let (_, agi) = xfs_db(&img, &[&format!("agi {ag}"), "print count freecount"]);
        count += agi["count"].parse::<u64>().unwrap();
        free += agi["freecount"].parse::<u64>().unwrap();
    }
    assert_eq!((count, free), (n("icount"), n("ifree")));
    assert!(n("icount") - n("ifree") > 20, "{text}");

    // The fstab inside names XFS for `/`.
    let (fstab, _) = xfs_db(&img, &["path /etc/fstab", "print core.size"]);
    assert!(fstab.contains("core.size"), "{fstab}");
}

/// Unmounts on drop (the `loop` mount option frees the loop device with it).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The kernel's XFS driver as a judge: the root partition mounted
/// read-only through a loop device.
fn kernel_mount(raw: &Path, off: u64, size: u64, at: &Path) -> Option<Mount> {
    if !crate::common::need_root("a kernel loop mount") {
        return None;
    }
    std::fs::create_dir_all(at).unwrap();
    let o = Command::new("mount")
        .args(["-t", "xfs", "-o"])
        .arg(format!("ro,loop,offset={off},sizelimit={size}"))
        .arg(raw)
        .arg(at)
        .output()
        .unwrap();
    if !o.status.success() {
        crate::common::cannot_run(
            "a kernel loop mount of XFS",
            &format!(
                "mount failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            "run as root where loop devices and the xfs module exist",
        );
        return None;
    }
    Some(Mount(at.to_path_buf()))
}

/// What is compared of one path.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    sha256: Option<String>,
    target: Option<PathBuf>,
    rdev: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every path under `root` (relative), with hard-link groups (paths
/// sharing an inode, for inodes with more than one name).
fn snapshot(root: &Path) -> (BTreeMap<PathBuf, Seen>, BTreeSet<Vec<PathBuf>>) {
    let mut seen = BTreeMap::new();
    let mut by_ino: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let ft = md.file_type();
        let kind = match () {
            _ if ft.is_dir() => 'd',
            _ if ft.is_file() => 'f',
            _ if ft.is_symlink() => 'l',
            _ if ft.is_char_device() => 'c',
            _ if ft.is_block_device() => 'b',
            _ if ft.is_fifo() => 'p',
            _ => 's',
        };
        let sha256 = (kind == 'f').then(|| {
            let mut h = Sha256::new();
            std::io::copy(&mut std::fs::File::open(e.path()).unwrap(), &mut h).unwrap();
            hex::encode(h.finalize())
        });
        let mut xattrs = BTreeMap::new();
        for name in xattr::list(e.path()).unwrap() {
            let v = xattr::get(e.path(), &name).unwrap().unwrap_or_default();
            xattrs.insert(name.to_string_lossy().into_owned(), v);
        }
        if kind != 'd' && md.nlink() > 1 {
            by_ino.entry(md.ino()).or_default().push(rel.clone());
        }
        seen.insert(
            rel,
            Seen {
                kind,
                mode: md.permissions().mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                size: (kind == 'f').then(|| md.size()),
                sha256,
                target: (kind == 'l').then(|| std::fs::read_link(e.path()).unwrap()),
                rdev: md.rdev(),
                xattrs,
            },
        );
    }
    (seen, by_ino.into_values().collect())
}

/// A base folder with the hard cases: directories in every form, long
/// names, inline and remote symlinks, short and leaf xattrs (SELinux
/// label, capability, user), a sparse file, devices, a FIFO, a socket,
/// hard links, owners and a setuid mode; its fstab mounts XFS at `/`.
fn hard_base(dir: &Path) {
    let w = |p: &str, bytes: &[u8]| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    w(
        "etc/fstab",
        b"UUID=5a6b7c8d-1111-2222-3333-444455556666 / xfs defaults,noatime 1 1\n",
    );
    w(
        "boot/loader/entries/al2023.conf",
        b"title Amazon Linux 2023\noptions root=UUID=5a6b7c8d-1111-2222-3333-444455556666 ro rootfstype=ext4\n",
    );
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    for (d, n) in [("five", 5), ("two-hundred", 200), ("many", 5000)] {
        for i in 0..n {
            w(
                &format!("{d}/a-rather-long-entry-name-{i:05}"),
                format!("{d}{i}").as_bytes(),
            );
        }
    }
    w(&format!("two-hundred/{}", "n".repeat(255)), b"longest name");
    std::os::unix::fs::symlink("five", dir.join("short-link")).unwrap();
    std::os::unix::fs::symlink("x/".repeat(400), dir.join("remote-link")).unwrap();
    // 100 MB: more than AG 0 of the smallest (300 MiB) filesystem holds,
    // so the data fills AGs and crosses from one to the next.
    let chunk: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8 + 1).collect();
    let mut big = std::fs::File::create(dir.join("big")).unwrap();
    for _ in 0..100 {
        big.write_all(&chunk).unwrap();
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(dir.join("sparse")).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(b"end", 64 << 20).unwrap();
    }
    w("labelled", b"#!/bin/sh\n");
    let l = dir.join("labelled");
    // chown first: it clears the setuid bit.
    std::os::unix::fs::chown(&l, Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(&l, std::fs::Permissions::from_mode(0o4755)).unwrap();
    xattr::set(&l, "security.selinux", b"system_u:object_r:bin_t:s0\0").unwrap();
    // VFS_CAP_REVISION_2, effective; cap_net_bind_service permitted.
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
    xattr::set(&l, "security.capability", &cap).unwrap();
    xattr::set(&l, "user.note", b"short").unwrap();
    w("leaf-attrs", b"");
    for i in 0..5u8 {
        xattr::set(
            dir.join("leaf-attrs"),
            format!("user.big{i}"),
            &[b'a' + i; 600],
        )
        .unwrap();
    }
    for (name, args) in [("null", ["c", "1", "3"]), ("sda", ["b", "8", "0"])] {
        run_ok(Command::new("mknod").arg(dir.join(name)).args(args));
    }
    run_ok(Command::new("mkfifo").arg(dir.join("fifo")));
    drop(std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap());
    w("linked", b"one inode, two names");
    std::fs::hard_link(dir.join("linked"), dir.join("five/also-linked")).unwrap();
}

#[test]
fn the_kernel_mounts_the_hard_cases_and_shows_the_tars_tree() {
    if !crate::common::need_root("making device nodes for the base") {
        return;
    }
    let tar = need!("tar");
    let _ = need!("xfs_repair");
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    hard_base(&base);
    // No `filesystem` key: the base's fstab says XFS.
    let spec = t.path().join("image.toml");
    std::fs::write(
        &spec,
        "[image]\nname = \"hard\"\nbase = \"base\"\nformats = [\"raw\", \"tar\"]\n",
    )
    .unwrap();
    let b = bake(
        ingot().arg("-q").arg("bake").arg(&spec),
        &t.path().join("out"),
    );
    let (off, size) = root_partition(&b.manifest);
    let img = t.path().join("root.img");
    extract(&b.raw, off, size, &img);
    assert_repair_clean(&img);
    let (_, sb) = xfs_db(&img, &["sb 0", "print uuid"]);
    assert_eq!(sb["uuid"], "5a6b7c8d-1111-2222-3333-444455556666");

    // The tar output, extracted by GNU tar with owners, modes and xattrs.
    let from_tar = t.path().join("from-tar");
    std::fs::create_dir_all(&from_tar).unwrap();
    run_ok(
        Command::new(tar)
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(&b.tar)
            .arg("-C")
            .arg(&from_tar),
    );
    let Some(mnt) = kernel_mount(&b.raw, off, size, &t.path().join("mnt")) else {
        return;
    };
    // The kernel mounts it without a complaint (a full AG without room
    // for the per-AG reservations, a checksum or a verifier failure).
    let log = stdout(&run_ok(&mut Command::new("dmesg")));
    let lines: Vec<&str> = log.lines().collect();
    let from = lines
        .iter()
        .rposition(|l| l.contains("Mounting V5 Filesystem 5a6b7c8d-1111-2222-3333-444455556666"))
        .expect("the kernel logged the mount");
    for l in log
        .lines()
        .skip(from)
        .take_while(|l| !l.contains("Unmounting"))
    {
        for bad in [
            "ENOSPC",
            "Corruption",
            "corrupt",
            "Metadata",
            "verifier",
            "error",
        ] {
            assert!(!l.contains(bad), "the kernel says: {l}");
        }
    }
    let (disk, disk_links) = snapshot(&mnt.0);
    // The fstab and the boot entry name the root's new type.
    let fstab = std::fs::read_to_string(mnt.0.join("etc/fstab")).unwrap();
    assert!(
        fstab.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[1] == "/" && f[2] == "xfs"
        }),
        "{fstab}"
    );
    let entry = std::fs::read_to_string(mnt.0.join("boot/loader/entries/al2023.conf")).unwrap();
    assert!(entry.contains(" rootfstype=xfs\n"), "{entry}");
    let (want, want_links) = snapshot(&from_tar);
    drop(mnt);
    // The disk has what the tar has, except what bake changes for a disk:
    // fstab rewritten, mount points and /boot/efi added.
    let added: BTreeSet<&Path> = ["boot", "boot/efi", "proc", "sys", "dev", "run", "tmp"]
        .iter()
        .map(Path::new)
        .collect();
    for (p, w) in &want {
        let d = disk
            .get(p)
            .unwrap_or_else(|| panic!("{p:?} is not on the disk"));
        if p == Path::new("etc/fstab") || p == Path::new("boot/loader/entries/al2023.conf") {
            assert_eq!(d.kind, 'f');
            continue;
        }
        if p.as_os_str().is_empty() {
            continue; // `/`: its entries differ by the mount points
        }
        assert_eq!(d, w, "{p:?}");
    }
    // A tar cannot hold a socket: the disk has it, the tar has not.
    assert_eq!(disk[Path::new("sock")].kind, 's');
    for p in disk.keys() {
        assert!(
            want.contains_key(p) || added.contains(p.as_path()) || p == Path::new("sock"),
            "{p:?} is on the disk only"
        );
    }
    assert_eq!(disk_links, want_links);
    // The cases are all there.
    assert_eq!(want[Path::new("labelled")].xattrs.len(), 3);
    assert_eq!(want[Path::new("leaf-attrs")].xattrs.len(), 5);
    assert_eq!(want[Path::new("null")].kind, 'c');
    assert_eq!(want[Path::new("sda")].kind, 'b');
    assert_eq!(want[Path::new("fifo")].kind, 'p');
    assert_eq!(want[Path::new("labelled")].mode, 0o4755);
    assert_eq!(
        want[Path::new("remote-link")]
            .target
            .as_ref()
            .unwrap()
            .as_os_str()
            .len(),
        800
    );
    assert_eq!(want_links.len(), 1);
    assert_eq!(want.keys().filter(|p| p.starts_with("many")).count(), 5001);
}

#[test]
fn two_xfs_bakes_in_other_folders_time_zones_and_umasks_give_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let one = example(&t.path().join("a/first"), "filesystem = \"xfs\"");
    let two = example(&t.path().join("b/second/deeper"), "filesystem = \"xfs\"");
    let run = |spec: &Path, out: &Path, tz: &str, umask: &str| -> Vec<u8> {
        let cmd = format!(
            "umask {umask} && exec '{}' -q bake '{}' --out '{}'",
            env!("CARGO_BIN_EXE_ingot"),
            spec.display(),
            out.display()
        );
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .env_remove("SOURCE_DATE_EPOCH")
            .env("TZ", tz);
        run_ok(&mut c);
        let raw = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".raw"))
            .unwrap();
        let mut h = Sha256::new();
        std::io::copy(&mut std::fs::File::open(raw).unwrap(), &mut h).unwrap();
        h.finalize().to_vec()
    };
    let a = run(&one, &t.path().join("out1"), "UTC", "022");
    let b = run(&two, &t.path().join("out2"), "Pacific/Kiritimati", "077");
    assert!(a == b, "the two XFS bakes differ");
}

/// The bootable test base baked with `filesystem = "xfs"` boots under
/// QEMU from its XFS root (the kernel's log says so, without complaint)
/// and serves the example service.
#[test]
fn the_boot_base_baked_with_an_xfs_root_boots_and_serves() {
    let _ = need!("qemu-system-x86_64");
    let Some(base) = crate::boot::boot_base() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("specs"), &t.path().join("specs"));
    let spec = t.path().join("specs/hello-boot.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.contains("\n[image]\n"));
    std::fs::write(
        &spec,
        text.replacen("\n[image]\n", "\n[image]\nfilesystem = \"xfs\"\n", 1),
    )
    .unwrap();
    let o = run_ok(
        ingot()
            .arg("--json")
            .arg("bake")
            .arg(&spec)
            .arg("--base")
            .arg(&base)
            .arg("--out")
            .arg(t.path().join("out")),
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let image = PathBuf::from(doc["image"].as_str().unwrap());
    let _qemu = crate::common::one_qemu();
    let log = t.path().join("serial.log");
    let o = ingot()
        .arg("boot-test")
        .arg(&image)
        .args([
            "--expect-http",
            "8080/health",
            "--expect-console",
            "Started .*hello.service",
            "--timeout",
            "1200",
            "--serial-log",
        ])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "boot-test failed:\n{}\n{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let console = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    // Debian 12's kernel names no UUID in this line; the root is the
    // only XFS the guest mounts.
    assert!(
        console.contains("Mounting V5 Filesystem"),
        "the root was not mounted as XFS:\n{console}"
    );
    assert!(console.contains("Ending clean mount"), "{console}");
    for l in console.lines().filter(|l| l.contains("XFS (")) {
        assert!(!l.contains("ENOSPC") && !l.contains("orrupt"), "{l}");
    }
}
