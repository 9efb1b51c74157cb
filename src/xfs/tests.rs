//! The writer judged by xfsprogs: `xfs_repair -n` must find nothing, and
//! `xfs_db` must read back the forms and values written.

use std::fs::File;
use std::process::Command;

use super::*;
use crate::rootfs::{FileData, Kind, Meta, Node};

fn opts() -> Options {
    Options {
        uuid: [0x11; 16],
        hash_seed: [0x22; 16],
        label: "/".into(),
        timestamp: 1_700_000_000,
        size: 0,
    }
}

fn m(mode: u32) -> Meta {
    Meta::new(mode, 0, 0, 1_700_000_000)
}

fn file(tree: &mut Tree, path: &str, bytes: &[u8]) {
    let data = tree.spill(&mut &bytes[..]).unwrap();
    tree.insert_path(path, Node::file(m(0o644), data)).unwrap();
}

/// Every form the writer has: directories of 0, 5, 200 and 5000 entries
/// with long names, inline and remote symlinks, short and leaf xattrs,
/// a sparse file, a multi-block file, devices, a FIFO, hard links.
pub(super) fn hard_tree() -> Tree {
    let mut t = Tree::new();
    t.mkdir_p("/empty", &m(0o755)).unwrap();
    for (dir, n) in [("/five", 5), ("/two-hundred", 200), ("/many", 5000)] {
        t.mkdir_p(dir, &m(0o755)).unwrap();
        for i in 0..n {
            let name = format!("{dir}/entry-with-a-longer-name-{i:05}");
            file(&mut t, &name, format!("{i}").as_bytes());
        }
    }
    // A node-form directory with short-form xattrs beside its extents.
    let many = t.get("/many").unwrap();
    t.meta_mut(many)
        .xattrs
        .insert("user.x".into(), vec![b'x'; 200]);
    let long = "n".repeat(255);
    file(&mut t, &format!("/two-hundred/{long}"), b"long name");
    t.insert_path("/short-link", Node::symlink(m(0o777), "five"))
        .unwrap();
    t.insert_path("/long-link", Node::symlink(m(0o777), "x/".repeat(400)))
        .unwrap();
    let mut big = Vec::new();
    for i in 0..300_000u32 {
        big.extend_from_slice(&i.to_le_bytes());
    }
    file(&mut t, "/big", &big);
    // A sparse file: data, a 1 MiB hole, data.
    let mut sparse = vec![1u8; 4096];
    sparse.resize(4096 + (1 << 20), 0);
    sparse.extend_from_slice(&[2u8; 100]);
    let data = t.spill(&mut &sparse[..]).unwrap();
    t.insert_path("/sparse", Node::file(m(0o600), data))
        .unwrap();
    let mut meta = m(0o755);
    meta.xattrs.insert(
        "security.selinux".into(),
        b"system_u:object_r:bin_t:s0\0".to_vec(),
    );
    meta.xattrs.insert(
        "security.capability".into(),
        vec![
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    meta.xattrs.insert("user.note".into(), b"hello".to_vec());
    t.insert_path("/labelled", Node::file(meta, FileData::default()))
        .unwrap();
    let mut meta = m(0o644);
    for i in 0..6 {
        meta.xattrs
            .insert(format!("user.big{i}"), vec![b'a' + i as u8; 600]);
    }
    t.insert_path("/leaf-attrs", Node::file(meta, FileData::default()))
        .unwrap();
    let dev = |kind| Node {
        meta: m(0o660),
        kind,
    };
    t.insert_path("/null", dev(Kind::CharDev { major: 1, minor: 3 }))
        .unwrap();
    t.insert_path("/sda", dev(Kind::BlockDev { major: 8, minor: 0 }))
        .unwrap();
    t.insert_path("/fifo", dev(Kind::Fifo)).unwrap();
    t.insert_path("/sock", dev(Kind::Socket)).unwrap();
    file(&mut t, "/a", b"linked");
    t.hardlink("/a", "/five/b").unwrap();
    t
}

fn write_image(tree: &Tree, dir: &std::path::Path) -> std::path::PathBuf {
    let img = dir.join("fs.img");
    let f = File::create(&img).unwrap();
    write_following(tree, &opts(), &f, 0, &|_| {}).unwrap();
    img
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

#[test]
fn xfs_repair_finds_nothing_to_fix() {
    let Some(repair) = crate::testutil::judge("xfs_repair") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = write_image(&hard_tree(), dir.path());
    let out = run(Command::new(repair).arg("-n").arg("-f").arg(&img));
    for bad in [
        "would ",
        "bad",
        "corrupt",
        "error",
        "invalid",
        "inconsistent",
    ] {
        assert!(!out.to_lowercase().contains(bad), "{out}");
    }
}

#[test]
fn xfs_db_reads_the_forms_written() {
    let Some(db) = crate::testutil::judge("xfs_db") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = hard_tree();
    let img = write_image(&tree, dir.path());
    let sb = run(Command::new(&db)
        .args(["-r", "-c", "sb 0", "-c", "print"])
        .arg(&img));
    assert!(
        sb.contains("uuid = 11111111-1111-1111-1111-111111111111"),
        "{sb}"
    );
    assert!(sb.contains("fname = \"/\\000"), "{sb}");
    assert!(sb.contains("crc = ") && sb.contains("(correct)"), "{sb}");
    assert!(sb.contains("features_incompat = 0xb"), "{sb}");
    let content = Content::gather(&tree, &opts()).unwrap();
    use std::path::Path;
    let form = |p: &str| layout::dir_form(&content, Path::new(p)).unwrap();
    assert_eq!(form("/empty"), dir::Form::Short);
    assert_eq!(form("/five"), dir::Form::Short);
    assert_eq!(form("/two-hundred"), dir::Form::Leaf);
    assert_eq!(form("/many"), dir::Form::Node);
    // xfs_db resolves names through every form.
    for p in [
        "/five/entry-with-a-longer-name-00003",
        "/two-hundred/entry-with-a-longer-name-00150",
        "/many/entry-with-a-longer-name-04999",
        "/many/entry-with-a-longer-name-00000",
    ] {
        let out = run(Command::new(&db)
            .args(["-r", "-c", &format!("path {p}"), "-c", "print core.size"])
            .arg(&img));
        assert!(out.contains("core.size = "), "{p}: {out}");
    }
}

/// Over 252 inode chunks: a two-level inode btree, whose leaves
/// `xfs_repair` wants at least half full.
#[test]
fn a_two_level_inode_btree_is_clean() {
    let Some(repair) = crate::testutil::judge("xfs_repair") else {
        return;
    };
    let mut t = Tree::new();
    for d in 0..20 {
        let dir = t.mkdir_p(format!("/d{d:02}"), &m(0o755)).unwrap();
        for i in 0..900 {
            t.insert(
                dir,
                format!("f{i:04}"),
                Node::file(m(0o644), FileData::default()),
            )
            .unwrap();
        }
    }
    let content = Content::gather(&t, &opts()).unwrap();
    assert!(content.inodes.len() as u64 > 252 * 64);
    let dir = tempfile::tempdir().unwrap();
    let img = write_image(&t, dir.path());
    let out = run(Command::new(repair).arg("-n").arg("-f").arg(&img));
    for bad in ["would ", "bad", "dubious", "corrupt", "error", "invalid"] {
        assert!(!out.to_lowercase().contains(bad), "{out}");
    }
}

/// What `progress(n)` calls final below `n` is what the finished
/// filesystem holds there (the digest pass reads behind the mark).
#[test]
fn what_the_watermark_calls_final_stays_final() {
    use std::os::unix::fs::FileExt;
    use std::sync::Mutex;
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let f = File::create(&img).unwrap();
    let reader = File::open(&img).unwrap();
    let seen: Mutex<Vec<(u64, u64, Vec<u8>)>> = Mutex::new(Vec::new());
    let last = Mutex::new(0u64);
    let snap = |n: u64| {
        let mut from = last.lock().unwrap();
        assert!(n >= *from, "the mark went back from {} to {n}", *from);
        let mut bytes = vec![0u8; (n - *from) as usize];
        reader.read_exact_at(&mut bytes, *from).unwrap_or_default();
        seen.lock().unwrap().push((*from, n, bytes));
        *from = n;
    };
    write_following(&hard_tree(), &opts(), &f, 0, &snap).unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(seen.len() > 3, "the mark moved {} times", seen.len());
    for (from, to, bytes) in seen {
        let mut now = vec![0u8; (to - from) as usize];
        reader.read_exact_at(&mut now, from).unwrap();
        assert!(
            now == bytes,
            "bytes {from}..{to} changed after the mark passed them"
        );
    }
}

/// Bytes 1..=251 over and over: data the spill store keeps (no holes).
struct Pattern(u64);

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0 as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = (i % 251) as u8 + 1;
        }
        self.0 -= n as u64;
        Ok(n)
    }
}

/// Data filling AG 0 of the smallest filesystem: the kernel mounts it
/// without "ENOSPC reserving per-AG metadata pool" (each AG keeps free
/// what the kernel reserves in it), and reads the data back.
#[test]
fn full_ags_leave_the_kernel_its_per_ag_reservation() {
    if !crate::testutil::need_root("a kernel loop mount of XFS") {
        return;
    }
    let mut t = Tree::new();
    let data = t.spill(&mut Pattern(100 << 20)).unwrap();
    t.insert_path("/fill", Node::file(m(0o644), data)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let f = File::create(&img).unwrap();
    let o = Options {
        size: 300 << 20,
        ..opts()
    };
    write_following(&t, &o, &f, 0, &|_| {}).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = Command::new("mount")
        .args(["-t", "xfs", "-o", "ro,loop"])
        .arg(&img)
        .arg(&mnt)
        .output()
        .unwrap();
    if !out.status.success() {
        crate::testutil::cannot_run(
            "a kernel loop mount of XFS",
            &String::from_utf8_lossy(&out.stderr),
            "run as root where loop devices and the xfs module exist",
        );
        return;
    }
    // Unmounted (and the loop device freed) however the test ends.
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Umount(mnt.clone());
    let size = std::fs::metadata(mnt.join("fill")).map(|m| m.len());
    let log = run(&mut Command::new("dmesg"));
    drop(guard);
    assert_eq!(size.unwrap(), 100 << 20);
    let lines: Vec<&str> = log.lines().collect();
    let from = lines
        .iter()
        .rposition(|l| l.contains("Mounting V5 Filesystem 11111111-1111-1111-1111-111111111111"))
        .expect("the kernel logged the mount");
    for l in &lines[from..] {
        assert!(!l.contains("ENOSPC"), "the kernel says: {l}");
    }
}

/// A directory of more than 504 hash leaves: two levels of nodes above
/// them (its entries all hard links to one file, to stay small).
#[test]
fn a_directory_with_two_node_levels_is_clean() {
    let Some(repair) = crate::testutil::judge("xfs_repair") else {
        return;
    };
    let Some(db) = crate::testutil::judge("xfs_db") else {
        return;
    };
    let mut t = Tree::new();
    let d = t.mkdir_p("/d", &m(0o755)).unwrap();
    let f = t
        .insert(d, "h000000", Node::file(m(0o644), FileData::default()))
        .unwrap();
    for i in 1..260_000 {
        t.link_entry(d, format!("h{i:06}").as_bytes(), f).unwrap();
    }
    let content = Content::gather(&t, &opts()).unwrap();
    assert_eq!(
        layout::dir_form(&content, std::path::Path::new("/d")),
        Some(dir::Form::Node)
    );
    let dir = tempfile::tempdir().unwrap();
    let img = write_image(&t, dir.path());
    let out = run(Command::new(repair).arg("-n").arg("-f").arg(&img));
    for bad in ["would ", "bad", "dubious", "corrupt", "error", "invalid"] {
        assert!(!out.to_lowercase().contains(bad), "{out}");
    }
    // The root node of the hash tree is two levels up.
    let node = run(Command::new(&db)
        .args(["-r", "-c", "path /d", "-c", "dblock 8388608", "-c", "print"])
        .arg(&img));
    assert!(node.lines().any(|l| l.trim() == "nhdr.level = 2"), "{node}");
    for name in ["/d/h000000", "/d/h131313", "/d/h259999"] {
        let out = run(Command::new(&db)
            .args([
                "-r",
                "-c",
                &format!("path {name}"),
                "-c",
                "print core.nlinkv2",
            ])
            .arg(&img));
        assert!(out.contains("core.nlinkv2 = 260000"), "{name}: {out}");
    }
}
