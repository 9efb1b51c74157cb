//! The XFS reader (`fsread::xfs`, through `fsread::image`) against the
//! kernel: filesystems made by the real `mkfs.xfs`, filled through a loop
//! mount with every directory form (0, 5, 200 and 5000 entries), inline
//! and remote symlinks, short-form, leaf and node attributes with remote
//! values, a file whose extents need a B+tree, sparse files, hard links
//! and device nodes, read back by ingot and compared with what a
//! read-only kernel mount of the same filesystem shows. Damaged images
//! are refused with an error naming the damage.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use ingot::disk::view::DiskFormat;
use ingot::fsread::image::Image;
use ingot::rootfs::{Kind, Tree};

use crate::common::{ingot, run_ok, stderr};

/// Unmounts on drop.
pub(crate) struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A mount of `img` (a bare filesystem) at `at` with `options`, or `None`
/// by the skip rule.
pub(crate) fn mount(img: &Path, fstype: &str, options: &str, at: &Path) -> Option<Mount> {
    if !crate::common::need_root("a kernel loop mount") {
        return None;
    }
    std::fs::create_dir_all(at).unwrap();
    let out = Command::new("mount")
        .args(["-t", fstype, "-o", options])
        .arg(img)
        .arg(at)
        .output()
        .unwrap();
    if !out.status.success() {
        crate::common::cannot_run(
            "a kernel loop mount",
            &format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "run where loop devices exist (a container needs `--privileged`)",
        );
        return None;
    }
    Some(Mount(at.to_path_buf()))
}

fn sh(cmd: &str) {
    run_ok(Command::new("sh").args(["-ec", cmd]));
}

/// A source folder exercising what the reader must read.
pub(crate) fn fill_source(src: &Path) {
    std::fs::create_dir_all(src).unwrap();
    let s = src.display();
    let long = "t".repeat(600);
    let longer = "u".repeat(1000);
    sh(&format!(
        "cd {s}
         mkdir -p etc d0 d5 d200 d5000 dev
         printf 'LABEL=/ / xfs defaults,noatime 1 1\\n' > etc/fstab
         printf 'NAME=\"Amazon Linux\"\\nVERSION_ID=\"2023\"\\n' > etc/os-release
         for i in 1 2 3 4 5; do echo $i > d5/f$i; done
         i=0; while [ $i -lt 200 ]; do echo $i > d200/file-number-$i; i=$((i+1)); done
         i=0; while [ $i -lt 5000 ]; do : > d5000/an-entry-with-a-longer-name-$i; i=$((i+1)); done
         ln -s target short-link
         ln -s {long} long-link
         ln -s {longer} longer-link
         echo hello > hard1; ln hard1 hard2; ln hard1 d5/hard3
         truncate -s 10M sparse
         dd if=/dev/urandom of=sparse bs=4096 count=1 conv=notrunc 2>/dev/null
         dd if=/dev/urandom of=sparse bs=4096 count=1 seek=2048 conv=notrunc 2>/dev/null
         truncate -s 4M btree
         i=0; while [ $i -lt 200 ]; do
           dd if=/dev/urandom of=btree bs=4096 count=1 seek=$((i*4)) conv=notrunc 2>/dev/null
           i=$((i+1)); done
         mknod dev/null c 1 3; mknod dev/loop7 b 7 7; mknod dev/big c 300 70000; mkfifo dev/fifo
         echo x > setuid; chown 1234:5678 setuid; chmod 4751 setuid
         touch -d @1700000000.123456789 setuid
         echo labelled > labelled
         echo many > many"
    ));
    let set = |p: &str, n: &str, v: &[u8]| xattr::set(src.join(p), n, v).unwrap();
    set(
        "labelled",
        "security.selinux",
        b"system_u:object_r:etc_t:s0\0",
    );
    set(".", "security.selinux", b"system_u:object_r:root_t:s0\0");
    sh(&format!("cd {s}; touch -d @1600000000 d0 d5 d200 d5000 ."));
}

/// Attributes the host's folder may not hold (a remote value, hundreds of
/// names: leaf and node form), set on the XFS mount itself.
pub(crate) fn big_xattrs(mnt: &Path) {
    let set = |p: &str, n: &str, v: &[u8]| xattr::set(mnt.join(p), n, v).unwrap();
    let big: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 251) as u8).collect();
    set("labelled", "user.big", &big);
    for i in 0..300 {
        set(
            "many",
            &format!("user.attribute-{i}"),
            format!("value-{i}").as_bytes(),
        );
    }
    sh(&format!(
        "touch -d @1600000000 {0}/labelled {0}/many",
        mnt.display()
    ));
}

/// A GPT disk `disk` holding one partition with `fs_img` (a bare
/// filesystem), named `name`, at 1 MiB.
pub(crate) fn gpt_disk(fs_img: &Path, disk: &Path, name: &str) {
    let size = std::fs::metadata(fs_img).unwrap().len();
    let f = std::fs::File::create(disk).unwrap();
    f.set_len(size + 2 * 1024 * 1024).unwrap();
    drop(f);
    let sgdisk = crate::common::judge("sgdisk").unwrap();
    run_ok(
        Command::new(sgdisk)
            .arg(format!("--new=1:2048:+{}K", size / 1024))
            .args(["--typecode=1:8300", &format!("--change-name=1:{name}")])
            .arg(disk),
    );
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", fs_img.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]),
    );
}

/// An XFS filesystem image made by mkfs.xfs with `src`'s tree copied in
/// through a loop mount (root, mode, owner, times, xattrs kept), or
/// `None` by the skip rule.
pub(crate) fn xfs_of(src: &Path, img: &Path, mnt: &Path) -> Option<()> {
    xfs_of_then(src, img, mnt, |_| ())
}

/// [`xfs_of`], with `then` run on the mount before it is unmounted.
pub(crate) fn xfs_of_then(
    src: &Path,
    img: &Path,
    mnt: &Path,
    then: impl FnOnce(&Path),
) -> Option<()> {
    xfs_of_with(src, img, mnt, &[], then)
}

/// [`xfs_of_then`], with `mkfs_args` given to mkfs.xfs.
pub(crate) fn xfs_of_with(
    src: &Path,
    img: &Path,
    mnt: &Path,
    mkfs_args: &[&str],
    then: impl FnOnce(&Path),
) -> Option<()> {
    crate::common::judge("mkfs.xfs")?;
    if !crate::common::need_root("a kernel loop mount") {
        return None;
    }
    let f = std::fs::File::create(img).unwrap();
    f.set_len(320 << 20).unwrap();
    drop(f);
    run_ok(
        Command::new("mkfs.xfs")
            .args(["-q", "-f", "-L", "/"])
            .args(mkfs_args)
            .arg(img),
    );
    let m = mount(img, "xfs", "loop", mnt)?;
    let (s, d) = (src.display(), mnt.display());
    sh(&format!(
        "cp -a --sparse=always {s}/. {d}/
         chown --reference={s} {d}; chmod --reference={s} {d}"
    ));
    then(mnt);
    sh(&format!("touch -r {s} {d}"));
    drop(m);
    Some(())
}

/// Every path of the kernel mount at `mnt` equals the tree's: type, mode,
/// owner, mtime, size, contents, link target, device numbers, xattrs and
/// hard links; and no path is missing on either side.
pub(crate) fn assert_tree_is_mount(tree: &Tree, mnt: &Path) {
    let mut seen = BTreeMap::new();
    let mut n = 0;
    for (path, id) in tree.walk() {
        n += 1;
        let shown = String::from_utf8_lossy(&path).into_owned();
        let p = mnt.join(&shown[1..]);
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let node = tree.node(id);
        let m = &node.meta;
        assert_eq!(md.mode() & 0o7777, u32::from(m.mode), "{shown}: mode");
        assert_eq!((md.uid(), md.gid()), (m.uid, m.gid), "{shown}: owner");
        assert_eq!(
            (md.mtime(), md.mtime_nsec()),
            (m.mtime, i64::from(m.mtime_nsec)),
            "{shown}: mtime"
        );
        let mut xattrs = BTreeMap::new();
        for name in xattr::list(&p).unwrap() {
            let v = xattr::get(&p, &name).unwrap().unwrap_or_default();
            xattrs.insert(name.to_string_lossy().into_owned(), v);
        }
        assert_eq!(xattrs, m.xattrs, "{shown}: xattrs");
        let ft = md.file_type();
        match &node.kind {
            Kind::Dir(d) => {
                assert!(ft.is_dir(), "{shown}: a directory");
                assert_eq!(std::fs::read_dir(&p).unwrap().count(), d.len(), "{shown}");
            }
            Kind::File(data) => {
                assert!(ft.is_file(), "{shown}: a file");
                assert_eq!(md.len(), data.size, "{shown}: size");
                let mut got = Vec::new();
                std::io::Read::read_to_end(&mut tree.open(id).unwrap(), &mut got).unwrap();
                assert!(got == std::fs::read(&p).unwrap(), "{shown}: contents");
                // Holes stay holes: no more bytes stored than the kernel
                // has blocks for.
                assert!(data.stored_len() <= md.blocks() * 512, "{shown}: holes");
                if md.nlink() > 1 {
                    let first = *seen.entry(md.ino()).or_insert(id);
                    assert_eq!(first, id, "{shown}: a hard link of another node");
                }
            }
            Kind::Symlink(t) => {
                assert!(ft.is_symlink(), "{shown}: a symlink");
                let want = std::fs::read_link(&p).unwrap();
                assert_eq!(
                    t[..],
                    *want.as_os_str().as_encoded_bytes(),
                    "{shown}: target"
                );
            }
            Kind::CharDev { major, minor } | Kind::BlockDev { major, minor } => {
                assert!(ft.is_char_device() || ft.is_block_device(), "{shown}");
                let r = md.rdev();
                assert_eq!(
                    (libc::major(r), libc::minor(r)),
                    (*major, *minor),
                    "{shown}"
                );
            }
            Kind::Fifo => assert!(ft.is_fifo(), "{shown}: a fifo"),
            Kind::Socket => assert!(ft.is_socket(), "{shown}: a socket"),
        }
    }
    let on_mount = walkdir::WalkDir::new(mnt).into_iter().count();
    assert_eq!(n, on_mount, "paths in the tree and on the mount");
}

/// Every directory form, symlink form, attribute form, B+tree extents,
/// sparse files, hard links and devices: ingot's reading of an XFS made
/// by mkfs.xfs equals the kernel's, from a raw disk and from a compressed
/// qcow2 of it.
#[test]
fn xfs_reads_as_the_kernel_reads_it() {
    let Some(qemu_img) = crate::common::judge("qemu-img") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (src, img, disk, mnt) = (
        tmp.path().join("src"),
        tmp.path().join("fs.img"),
        tmp.path().join("disk.raw"),
        tmp.path().join("mnt"),
    );
    if !crate::common::need_root("a kernel loop mount") || crate::common::judge("sgdisk").is_none()
    {
        return;
    }
    fill_source(&src);
    if xfs_of_then(&src, &img, &mnt, big_xattrs).is_none() {
        return;
    }
    gpt_disk(&img, &disk, "/");
    let qcow = tmp.path().join("disk.qcow2");
    run_ok(
        Command::new(qemu_img)
            .args(["convert", "-c", "-O", "qcow2"])
            .arg(&disk)
            .arg(&qcow),
    );
    let Some(_m) = mount(&img, "xfs", "loop,ro", &mnt) else {
        return;
    };
    for (file, format) in [(&disk, DiskFormat::Raw), (&qcow, DiskFormat::Qcow2)] {
        let image = Image::open(file, format).unwrap();
        let (part, fs) = image.root().unwrap();
        assert_eq!((part.number, fs), (1, "xfs"));
        let tree = image.read_root(Some(tmp.path())).unwrap();
        assert_tree_is_mount(&tree, &mnt);
        // The forms the tree was made to exercise are there.
        let sparse = tree.resolve("/sparse", false).unwrap();
        let Kind::File(d) = &tree.node(sparse).kind else {
            panic!("/sparse is not a file")
        };
        assert!(d.stored_len() <= 2 * 4096, "{d:?}");
        assert_eq!(
            tree.node(tree.resolve("/long-link", false).unwrap())
                .meta
                .mode,
            0o777
        );
    }
    // xfs_db agrees the forms are there: the 200-extent file in B+tree
    // form, the 5000-entry directory in node form (a free index block at
    // 64 GiB), the 200-entry one in leaf form (a leaf block at 32 GiB and
    // no free index), the 5-entry one in short form.
    let ino = |p: &str| std::fs::symlink_metadata(mnt.join(p)).unwrap().ino();
    let inos: Vec<u64> = ["btree", "d5000", "d200", "d5"]
        .iter()
        .map(|p| ino(p))
        .collect();
    drop(_m);
    let xfs_db = |ino: u64, cmd: &str| {
        let o = run_ok(
            Command::new("xfs_db")
                .args(["-r", "-c", &format!("inode {ino}"), "-c", cmd])
                .arg(&img),
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = xfs_db(inos[0], "print core.format");
    assert!(out.contains("core.format = 3 (btree)"), "{out}");
    let out = xfs_db(inos[1], "bmap");
    assert!(out.contains("data offset 16777216 "), "{out}");
    let out = xfs_db(inos[2], "bmap");
    assert!(
        out.contains("data offset 8388608 ") && !out.contains("data offset 16777216 "),
        "{out}"
    );
    let out = xfs_db(inos[3], "print core.format");
    assert!(out.contains("core.format = 1 (local)"), "{out}");
}

/// The other shapes mkfs.xfs makes: 1 KiB blocks (directory blocks of
/// four filesystem blocks, a 1000-byte symlink over two blocks, remote
/// attribute values over several) and the old timestamps (no bigtime),
/// read as the kernel reads them.
#[test]
fn xfs_of_1k_blocks_and_old_timestamps_reads_as_the_kernel_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, img, disk, mnt) = (
        tmp.path().join("src"),
        tmp.path().join("fs.img"),
        tmp.path().join("disk.raw"),
        tmp.path().join("mnt"),
    );
    if !crate::common::need_root("a kernel loop mount") || crate::common::judge("sgdisk").is_none()
    {
        return;
    }
    fill_source(&src);
    let args = [
        "-b",
        "size=1024",
        "-m",
        "bigtime=0,finobt=0",
        "-i",
        "sparse=0",
    ];
    if xfs_of_with(&src, &img, &mnt, &args, big_xattrs).is_none() {
        return;
    }
    gpt_disk(&img, &disk, "/");
    let Some(_m) = mount(&img, "xfs", "loop,ro", &mnt) else {
        return;
    };
    let image = Image::open(&disk, DiskFormat::Raw).unwrap();
    let tree = image.read_root(Some(tmp.path())).unwrap();
    assert_tree_is_mount(&tree, &mnt);
    let id = tree.resolve("/longer-link", false).unwrap();
    assert!(matches!(&tree.node(id).kind, Kind::Symlink(t) if t.len() == 1000));
    drop(_m);
    let o = run_ok(
        Command::new("xfs_db")
            .args(["-r", "-c", "version"])
            .arg(&img),
    );
    let v = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!v.contains("BIGTIME"), "{v}");
}

/// A damaged filesystem is an error naming what is damaged (never a panic
/// or a hang), and `ingot inspect` says so with exit 2.
#[test]
fn damaged_xfs_is_an_error_naming_the_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, img, disk, mnt) = (
        tmp.path().join("src"),
        tmp.path().join("fs.img"),
        tmp.path().join("disk.raw"),
        tmp.path().join("mnt"),
    );
    if !crate::common::need_root("a kernel loop mount") || crate::common::judge("sgdisk").is_none()
    {
        return;
    }
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..300 {
        std::fs::write(src.join(format!("d/entry-{i}")), b"x").unwrap();
    }
    sh(&format!(
        "cd {}; truncate -s 4M btree; i=0; while [ $i -lt 200 ]; do
           dd if=/dev/urandom of=btree bs=4096 count=1 seek=$((i*4)) conv=notrunc 2>/dev/null
           i=$((i+1)); done",
        src.display()
    ));
    if xfs_of(&src, &img, &mnt).is_none() {
        return;
    }
    let btree_ino = {
        let Some(_m) = mount(&img, "xfs", "loop,ro", &mnt) else {
            return;
        };
        std::fs::metadata(mnt.join("btree")).unwrap().ino() as usize
    };
    gpt_disk(&img, &disk, "/");
    let good = std::fs::read(&disk).unwrap();
    let read = |bytes: &[u8]| {
        std::fs::write(&disk, bytes).unwrap();
        Image::open(&disk, DiskFormat::Raw)
            .and_then(|i| i.read_root(None))
            .map(|_| ())
            .map_err(|e| {
                let mut m = e.to_string();
                let mut c = std::error::Error::source(&e);
                while let Some(s) = c {
                    m = format!("{m}: {s}");
                    c = s.source();
                }
                m
            })
    };
    read(&good).unwrap();
    let at = 1 << 20;
    // A flipped byte in the superblock: its CRC.
    let mut bad = good.clone();
    bad[at + 0x90] ^= 0xff;
    let e = read(&bad).unwrap_err();
    assert!(e.contains("superblock's CRC"), "{e}");
    // The root inode and the directory's data blocks: each a CRC error
    // naming the inode.
    let sb = &good[at..at + 512];
    let be = |o: usize, n: usize| {
        sb[o..o + n]
            .iter()
            .fold(0u64, |a, b| a << 8 | u64::from(*b))
    };
    let (bs, root) = (be(4, 4) as usize, be(0x38, 8) as usize);
    let isize = be(0x68, 2) as usize;
    // Root inode in AG 0: block root >> inopblog, slot the rest.
    let inopblog = sb[0x7B] as usize;
    let root_at = at + (root >> inopblog) * bs + (root & ((1 << inopblog) - 1)) * isize;
    let mut bad = good.clone();
    bad[root_at + 0x40] ^= 0x01;
    let e = read(&bad).unwrap_err();
    assert!(e.contains(&format!("inode {root}: its CRC")), "{e}");
    // A B+tree whose root names one block twice, its CRC set right: a
    // loop, found.
    let agblklog = sb[0x7C] as usize;
    let agblocks = be(0x54, 4) as usize;
    let agino_bits = agblklog + inopblog;
    let (ag, agino) = (btree_ino >> agino_bits, btree_ino & ((1 << agino_bits) - 1));
    let ino_at =
        at + (ag * agblocks + (agino >> inopblog)) * bs + (agino & ((1 << inopblog) - 1)) * isize;
    let mut bad = good.clone();
    {
        let i = &mut bad[ino_at..ino_at + isize];
        assert_eq!(i[5], 3, "/btree is not in B+tree form");
        let forksize = if i[0x52] == 0 {
            isize - 0xB0
        } else {
            usize::from(i[0x52]) * 8
        };
        let fork = &mut i[0xB0..0xB0 + forksize];
        let maxrecs = (forksize - 4) / 16;
        assert_eq!(u16::from_be_bytes([fork[2], fork[3]]), 1);
        fork[2..4].copy_from_slice(&2u16.to_be_bytes());
        let (k, p) = (4, 4 + maxrecs * 8);
        let key: [u8; 8] = fork[k..k + 8].try_into().unwrap();
        let ptr: [u8; 8] = fork[p..p + 8].try_into().unwrap();
        fork[k + 8..k + 16].copy_from_slice(&key);
        fork[p + 8..p + 16].copy_from_slice(&ptr);
        i[0x64..0x68].fill(0);
        let crc = crc32c::crc32c(i);
        i[0x64..0x68].copy_from_slice(&crc.to_le_bytes());
    }
    let e = read(&bad).unwrap_err();
    assert!(e.contains("reached twice (a loop)"), "{e}");
    // Every XDD3/XDB3 block of the image flipped in its entries.
    let mut bad = good.clone();
    let mut n = 0;
    for b in (at..bad.len() - bs).step_by(bs) {
        if &bad[b..b + 4] == b"XDD3" || &bad[b..b + 4] == b"XDB3" {
            bad[b + 100] ^= 0x55;
            n += 1;
        }
    }
    assert!(n > 0, "no directory data block found");
    let e = read(&bad).unwrap_err();
    assert!(e.contains("directory inode") && e.contains("CRC"), "{e}");
    // Truncated: the filesystem runs past the disk's end.
    let e = read(&good[..good.len() / 2]).unwrap_err();
    assert!(
        e.contains("past") || e.contains("GPT") || e.contains("table"),
        "{e}"
    );
    // Through the command line: exit 2, a message, no panic.
    std::fs::write(&disk, &bad).unwrap();
    let o = ingot().arg("inspect").arg(&disk).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("CRC"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}
