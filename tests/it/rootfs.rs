//! The in-memory root filesystem (`ingot::rootfs`): import from GNU tar's
//! archives and from directories, hostile archives, the reproducible
//! export judged by GNU tar, and bounded memory (checked in a child process
//! of this test binary, by its peak RSS).

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ingot::rootfs::{self, ImportError, Kind, MemberError, Meta, Node, NodeId, PathError, Tree};
use sha2::{Digest, Sha256};

use crate::common::{is_root, run_ok};
use crate::need;

// ---------------------------------------------------------------- helpers

/// One line per path: everything an image would show of it.
fn describe(t: &Tree) -> Vec<String> {
    let mut first: HashMap<NodeId, String> = HashMap::new();
    t.walk()
        .map(|(p, id)| {
            let path = String::from_utf8_lossy(&p).into_owned();
            let n = t.node(id);
            let m = &n.meta;
            let kind = match &n.kind {
                Kind::Dir(_) => "dir".to_string(),
                Kind::File(d) => format!("file size={} sha={}", d.size, t.file_sha256(id).unwrap()),
                Kind::Symlink(target) => format!("symlink={}", String::from_utf8_lossy(target)),
                Kind::CharDev { major, minor } => format!("char={major}:{minor}"),
                Kind::BlockDev { major, minor } => format!("block={major}:{minor}"),
                Kind::Fifo => "fifo".to_string(),
                Kind::Socket => "socket".to_string(),
            };
            let mut link = String::new();
            if !n.is_dir() && t.nlink(id) > 1 {
                match first.entry(id) {
                    MapEntry::Occupied(e) => link = format!(" same-as={}", e.get()),
                    MapEntry::Vacant(v) => {
                        v.insert(path.clone());
                    }
                }
            }
            let xattrs: Vec<String> = m
                .xattrs
                .iter()
                .map(|(k, v)| format!("{k}={}", hex::encode(v)))
                .collect();
            format!(
                "{path} {kind} mode={:o} uid={} gid={} mtime={}.{:09} nlink={} xattrs=[{}]{link}",
                m.mode,
                m.uid,
                m.gid,
                m.mtime,
                m.mtime_nsec,
                t.nlink(id),
                xattrs.join(",")
            )
        })
        .collect()
}

fn assert_same(a: &[String], b: &[String], what: &str) {
    if a != b {
        let only_a: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
        let only_b: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
        panic!(
            "{what}: trees differ\n--- only in the first\n{only_a:#?}\n--- only in the second\n{only_b:#?}"
        );
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sha256_of(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap())
}

fn export(t: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    t.write_tar(&mut out).unwrap();
    out
}

fn meta(mode: u32) -> Meta {
    Meta::new(mode, 0, 0, 1_700_000_000)
}

/// A tar archive written header by header, names and sizes exactly as
/// given (the `tar` crate's builder refuses `..` and absolute names).
struct RawTar(Vec<u8>);

impl RawTar {
    fn new() -> Self {
        RawTar(Vec::new())
    }

    fn entry(&mut self, typeflag: u8, name: &[u8], link: &[u8], data: &[u8]) -> &mut Self {
        self.entry_claiming(typeflag, name, link, data, data.len() as u64)
    }

    /// A member whose header claims `size` bytes, followed by `data`.
    fn entry_claiming(
        &mut self,
        typeflag: u8,
        name: &[u8],
        link: &[u8],
        data: &[u8],
        size: u64,
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_mode(if typeflag == b'5' { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(typeflag));
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(b'0', name.as_bytes(), b"", data)
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(b'2', name.as_bytes(), target.as_bytes(), b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(b'1', name.as_bytes(), target.as_bytes(), b"")
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len.to_string().len() + body != len {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.entry(b'x', b"PaxHeader", b"", &data)
    }

    fn finish(&self) -> Vec<u8> {
        let mut v = self.0.clone();
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

/// Every path under `dir`, relative, sorted.
fn host_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// `stat` of every path under `dir` (type, mode, ids, mtime with
/// nanoseconds, link count, device numbers, size, symlink target), and its
/// xattrs as `lgetxattr` returns them.
fn host_stat(stat: &Path, dir: &Path) -> Vec<String> {
    let rel: Vec<String> = host_listing(dir)
        .into_iter()
        .map(|p| {
            if p.is_empty() {
                ".".into()
            } else {
                format!("./{p}")
            }
        })
        .collect();
    let o = run_ok(
        Command::new(stat)
            .current_dir(dir)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .args(["-c", "%f %u %g %y %h %t:%T %s %N"])
            .args(&rel),
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for r in &rel {
        let path = dir.join(r);
        let mut names: Vec<_> = xattr::list(&path).unwrap().collect();
        names.sort();
        for n in names {
            let v = xattr::get(&path, &n).unwrap().unwrap_or_default();
            lines.push(format!(
                "{r} xattr {} = {}",
                n.to_string_lossy(),
                hex::encode(v)
            ));
        }
    }
    lines
}

/// Import `bytes` as an archive in a fresh sandbox; the sandbox must hold
/// nothing else afterwards. The tree reads its contents from the archive,
/// so the sandbox lives as long as the tree.
fn import_sandboxed(bytes: &[u8]) -> Result<Sandboxed, ImportError> {
    let t = tempfile::tempdir().unwrap();
    let deep = t.path().join("in/a/b");
    std::fs::create_dir_all(&deep).unwrap();
    let archive = deep.join("evil.tar");
    std::fs::write(&archive, bytes).unwrap();
    let spill = t.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let before = host_listing(t.path());
    let result = rootfs::import(&archive, Some(&spill));
    assert_eq!(
        host_listing(t.path()),
        before,
        "the import created something on the host"
    );
    result.map(|tree| Sandboxed { tree, _dir: t })
}

struct Sandboxed {
    tree: Tree,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Sandboxed {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.tree
    }
}

fn member_error(r: Result<Sandboxed, ImportError>) -> (String, MemberError) {
    match r {
        Err(ImportError::Member { member, source, .. }) => (member, source),
        Err(e) => panic!("expected a member error, got {e:?}"),
        Ok(t) => panic!("expected an error, got a tree:\n{:#?}", describe(&t)),
    }
}

fn content(t: &Tree, path: &str) -> Vec<u8> {
    let id = t
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing in {:#?}", describe(t)));
    let mut v = Vec::new();
    t.open(id).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// Run `f` on another thread; fail if it takes longer than `secs`.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("did not finish in time (a hang?)")
}

// ------------------------------------------------- a base made by GNU tar

/// A small root filesystem on the host with every kind of entry ingot must
/// keep. Ownership, security xattrs and device nodes only as root.
fn make_base(dir: &Path) {
    let root = is_root();
    let p = |rel: &str| dir.join(rel);
    for d in [
        "etc",
        "usr/bin",
        "usr/lib",
        "tmp",
        "var/lib/g",
        "run",
        "dev",
        "deep",
    ] {
        std::fs::create_dir_all(p(d)).unwrap();
    }
    std::fs::write(p("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    std::fs::write(p("usr/bin/su"), b"\x7fELF pretend").unwrap();
    std::fs::write(p("usr/bin/ping"), b"ping").unwrap();
    std::fs::write(p("usr/bin/hl1"), b"hard linked").unwrap();
    std::fs::hard_link(p("usr/bin/hl1"), p("usr/bin/hl2")).unwrap();
    std::fs::write(p("empty"), b"").unwrap();
    let long = format!("deep/{}", "n".repeat(150));
    std::fs::write(p(&long), b"long name").unwrap();
    std::os::unix::fs::symlink("usr/bin", p("bin")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", p("abs")).unwrap();
    std::os::unix::fs::symlink("loop2", p("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", p("loop2")).unwrap();
    std::os::unix::fs::symlink(format!("/{}", "t".repeat(120)), p("longtarget")).unwrap();
    run_ok(Command::new("mkfifo").arg(p("run/fifo")));
    // A sparse file: 16 MiB with two data blocks.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(p("var/sparse.img")).unwrap();
        f.set_len(16 << 20).unwrap();
        f.write_all_at(&[0xab; 8192], 10 << 20).unwrap();
        f.write_all_at(b"tail", (16 << 20) - 4).unwrap();
    }
    xattr::set(p("etc/passwd"), "user.note", b"line1\nline2=x").unwrap();
    xattr::set(p("usr/bin/su"), "user.odd=name%", b"v").unwrap();
    for (path, mode) in [
        ("usr/bin/su", 0o4755),
        ("usr/bin/ping", 0o755),
        ("tmp", 0o1777),
        ("var/lib/g", 0o2775),
        ("etc/passwd", 0o644),
    ] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    if root {
        xattr::set(
            p("etc/passwd"),
            "security.selinux",
            b"system_u:object_r:passwd_file_t:s0\0",
        )
        .unwrap();
        // VFS_CAP_REVISION_2, effective; permitted CAP_NET_RAW (13),
        // CAP_NET_ADMIN (12), CAP_DAC_OVERRIDE (1), CAP_FOWNER (3): a
        // value with a newline byte in it.
        let mut cap = vec![0x01, 0x00, 0x00, 0x02];
        cap.extend_from_slice(&(0x300au32).to_le_bytes());
        cap.extend_from_slice(&[0; 12]);
        xattr::set(p("usr/bin/ping"), "security.capability", &cap).unwrap();
        run_ok(
            Command::new("mknod")
                .arg(p("dev/null"))
                .args(["c", "1", "3"]),
        );
        run_ok(
            Command::new("mknod")
                .arg(p("dev/loop0"))
                .args(["b", "7", "0"]),
        );
        run_ok(Command::new("chown").arg("1234:5678").arg(p("etc/passwd")));
        run_ok(
            Command::new("chown")
                .arg("3000000:3000001")
                .arg(p("usr/bin/hl1")),
        );
        run_ok(Command::new("chown").args(["-h", "42:43"]).arg(p("abs")));
    }
    // Times last, deepest first, with nanoseconds.
    let mut all = host_listing(dir);
    all.reverse();
    for (i, rel) in all.iter().enumerate() {
        let t = format!("@{}.{:09}", 1_700_000_000 + i, 123_456_789 + i);
        run_ok(
            Command::new("touch")
                .args(["-h", "-d", &t])
                .arg(dir.join(rel)),
        );
    }
}

fn gnu_tar_create(tar: &Path, src: &Path, out: &Path, extra: &[&str]) {
    run_ok(
        Command::new(tar)
            .args([
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "--format=pax",
                "-S",
            ])
            .args(extra)
            .arg("-cf")
            .arg(out)
            .arg("-C")
            .arg(src)
            .arg("."),
    );
}

#[test]
fn gnu_tar_base_imports_with_everything_and_matches_the_directory_import() {
    let tar = need!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_base(&src);
    let archive = t.path().join("base.tar");
    gnu_tar_create(&tar, &src, &archive, &[]);

    let from_tar = rootfs::import(&archive, Some(t.path())).unwrap();
    let m = |p: &str| from_tar.node(from_tar.get(p).unwrap()).meta.clone();
    assert_eq!(m("/usr/bin/su").mode, 0o4755);
    assert_eq!(m("/tmp").mode, 0o1777);
    assert_eq!(m("/var/lib/g").mode, 0o2775);
    assert_eq!(m("/usr/bin/su").xattrs["user.odd=name%"], b"v");
    assert_eq!(m("/etc/passwd").xattrs["user.note"], b"line1\nline2=x");
    assert!(m("/etc/passwd").mtime_nsec != 0, "sub-second mtime kept");
    let hl1 = from_tar.get("/usr/bin/hl1").unwrap();
    assert_eq!(from_tar.get("/usr/bin/hl2"), Some(hl1));
    assert_eq!(from_tar.nlink(hl1), 2);
    assert!(matches!(
        from_tar.node(from_tar.get("/run/fifo").unwrap()).kind,
        Kind::Fifo
    ));
    assert!(matches!(
        from_tar.resolve("/loop1", true),
        Err(PathError::Loop { .. })
    ));
    assert_eq!(
        from_tar.resolve("/bin/su", true).unwrap(),
        from_tar.get("/usr/bin/su").unwrap()
    );
    let sparse = from_tar.get("/var/sparse.img").unwrap();
    let Kind::File(data) = &from_tar.node(sparse).kind else {
        panic!("not a file");
    };
    assert_eq!(data.size, 16 << 20);
    assert!(data.stored_len() < 1 << 20, "holes stayed holes: {data:?}");
    assert!(
        data.extents
            .iter()
            .all(|e| e.source != rootfs::SourceId::SPILL),
        "a plain tar's data is referenced in place"
    );
    assert_eq!(
        from_tar.file_sha256(sparse).unwrap(),
        sha256_of(&src.join("var/sparse.img"))
    );
    if crate::common::need_root("the owner, security xattr and device node checks") {
        assert_eq!(m("/etc/passwd").uid, 1234);
        assert_eq!(m("/etc/passwd").gid, 5678);
        assert_eq!(m("/usr/bin/hl1").uid, 3_000_000);
        assert_eq!(
            m("/etc/passwd").xattrs["security.selinux"],
            b"system_u:object_r:passwd_file_t:s0\0"
        );
        assert_eq!(m("/usr/bin/ping").xattrs["security.capability"].len(), 20);
        let null = from_tar.node(from_tar.get("/dev/null").unwrap());
        assert_eq!(null.kind, Kind::CharDev { major: 1, minor: 3 });
        let loop0 = from_tar.node(from_tar.get("/dev/loop0").unwrap());
        assert_eq!(loop0.kind, Kind::BlockDev { major: 7, minor: 0 });
    }

    // The directory importer reads the same host files the same way.
    let from_dir = rootfs::import(&src, None).unwrap();
    assert_same(
        &describe(&from_tar),
        &describe(&from_dir),
        "tar vs directory import",
    );
    let Kind::File(data) = &from_dir.node(from_dir.get("/var/sparse.img").unwrap()).kind else {
        panic!("not a file");
    };
    assert!(
        data.stored_len() < 1 << 20,
        "SEEK_DATA found the holes: {data:?}"
    );

    // The same archive compressed, under a name that says nothing.
    let plain = std::fs::read(&archive).unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    for (what, bytes) in [("gz", gz), ("xz", xz), ("zst", zstd(&plain)), ("bz2", bz)] {
        let path = t.path().join(format!("base-{what}.img"));
        std::fs::write(&path, bytes).unwrap();
        let tree = rootfs::import(&path, Some(t.path())).unwrap();
        assert_same(&describe(&from_tar), &describe(&tree), what);
        let Kind::File(data) = &tree.node(tree.get("/var/sparse.img").unwrap()).kind else {
            panic!("not a file");
        };
        assert!(
            data.stored_len() <= 8192 + 4096,
            "{what}: hole rule: {data:?}"
        );
    }
}

#[test]
fn export_is_read_by_gnu_tar_and_extracts_to_the_same_files() {
    let tar = need!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_base(&src);
    let archive = t.path().join("base.tar");
    gnu_tar_create(&tar, &src, &archive, &[]);
    let tree = rootfs::import(&archive, None).unwrap();

    let out = t.path().join("out.tar");
    let bytes = export(&tree);
    std::fs::write(&out, &bytes).unwrap();
    assert_eq!(bytes, export(&tree), "two exports of one tree differ");

    // GNU tar lists it, in our order, with numeric ids and no names.
    let listing = run_ok(
        Command::new(&tar)
            .args(["--numeric-owner", "-tvf"])
            .arg(&out),
    );
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    assert_eq!(names[0], "./", "{listing}");
    assert!(
        listing.contains("./usr/bin/hl2 link to ./usr/bin/hl1"),
        "{listing}"
    );
    assert!(listing.contains("-rwsr-xr-x"), "{listing}");
    assert!(listing.contains("drwxrwxrwt"), "{listing}");

    // GNU tar finds no difference between the archive and the source.
    let diff = Command::new(&tar)
        .args(["--numeric-owner", "--xattrs", "--compare", "-f"])
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "tar --compare: {}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // Extracted by GNU tar, the files are the source's files.
    if crate::common::need_root("the extraction by GNU tar with owners") {
        let x = t.path().join("x");
        std::fs::create_dir(&x).unwrap();
        run_ok(
            Command::new(&tar)
                .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
                .arg(&out)
                .arg("-C")
                .arg(&x),
        );
        let extracted = rootfs::import(&x, None).unwrap();
        let original = rootfs::import(&src, None).unwrap();
        assert_same(
            &describe(&original),
            &describe(&extracted),
            "extracted export",
        );
        // And as `stat` and the kernel's xattr calls see them.
        if let Some(stat) = crate::common::judge("stat") {
            assert_same(
                &host_stat(&stat, &src),
                &host_stat(&stat, &x),
                "stat of the source vs of GNU tar's extraction of our export",
            );
        }
    }

    // Import of our export gives the same tree, whose export is the same
    // bytes.
    let again = rootfs::import(&out, None).unwrap();
    assert_same(&describe(&tree), &describe(&again), "re-import");
    assert_eq!(export(&again), bytes, "export of the re-import differs");
}

#[test]
fn every_sparse_format_of_gnu_tar_gives_the_same_bytes() {
    let tar = need!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(src.join("disk.img")).unwrap();
        f.set_len(12 << 20).unwrap();
        for (i, at) in [0u64, 3 << 20, (3 << 20) + 700, 6 << 20, (12 << 20) - 3]
            .iter()
            .enumerate()
        {
            f.write_all_at(&[i as u8 + 1; 3], *at).unwrap();
        }
        // Many small extents, to need GNU's extended sparse headers.
        for k in 0..60u64 {
            f.write_all_at(b"x", (8 << 20) + k * 65536).unwrap();
        }
    }
    let want = sha256_of(&src.join("disk.img"));
    for (label, args) in [
        ("gnu", vec!["--format=gnu"]),
        ("pax-0.0", vec!["--format=pax", "--sparse-version=0.0"]),
        ("pax-0.1", vec!["--format=pax", "--sparse-version=0.1"]),
        ("pax-1.0", vec!["--format=pax", "--sparse-version=1.0"]),
    ] {
        let archive = t.path().join(format!("{label}.tar"));
        run_ok(
            Command::new(&tar)
                .arg("-S")
                .args(&args)
                .arg("-cf")
                .arg(&archive)
                .arg("-C")
                .arg(&src)
                .arg("disk.img"),
        );
        let packed = t.path().join(format!("{label}.tar.zst"));
        std::fs::write(&packed, zstd(&std::fs::read(&archive).unwrap())).unwrap();
        for path in [&archive, &packed] {
            let tree = rootfs::import(path, None)
                .unwrap_or_else(|e| panic!("{label}: {:?}", anyhow::Error::from(e)));
            let id = tree
                .get("/disk.img")
                .unwrap_or_else(|| panic!("{label}: no /disk.img in {:#?}", describe(&tree)));
            let Kind::File(data) = &tree.node(id).kind else {
                panic!("not a file");
            };
            assert_eq!(data.size, 12 << 20, "{label}");
            assert!(
                data.stored_len() < 1 << 20,
                "{label}: {} stored",
                data.stored_len()
            );
            assert_eq!(
                tree.file_sha256(id).unwrap(),
                want,
                "{label} {}",
                path.display()
            );
        }
    }
}

// ----------------------------------------------------------- hostile input

#[test]
fn dot_dot_and_absolute_names_land_inside_the_tree() {
    let long_dotdot = format!("../{}/f", "d".repeat(150));
    let mut raw = RawTar::new();
    raw.file("../../etc/passwd", b"pwned")
        .file("/etc/shadow", b"abs")
        .file("./../x/../../y", b"y")
        .entry(
            b'L',
            b"././@LongLink",
            b"",
            format!("{long_dotdot}\0").as_bytes(),
        )
        .file("ignored-short-name", b"long")
        .pax(&[("path", b"../../../../pax/name")])
        .file("ignored", b"pax");
    let tree = import_sandboxed(&raw.finish()).unwrap();
    assert_eq!(content(&tree, "/etc/passwd"), b"pwned");
    assert_eq!(content(&tree, "/etc/shadow"), b"abs");
    assert_eq!(content(&tree, "/y"), b"y");
    assert_eq!(content(&tree, &format!("/{}", &long_dotdot[3..])), b"long");
    assert_eq!(content(&tree, "/pax/name"), b"pax");
    // Implied parents: 0755 root-owned.
    let etc = tree.node(tree.get("/etc").unwrap());
    assert_eq!((etc.meta.mode, etc.meta.uid), (0o755, 0));
}

#[test]
fn members_written_through_symlinks_stay_in_the_tree() {
    let mut raw = RawTar::new();
    raw.symlink("root", "/")
        .file("root/etc/hostile", b"1")
        .symlink("up", "../../../../../..")
        .file("up/tmp/x", b"2")
        .symlink("abs", "/usr/lib")
        .entry(b'5', b"usr/lib/", b"", b"")
        .file("abs/libz.so", b"3");
    let tree = import_sandboxed(&raw.finish()).unwrap();
    assert_eq!(content(&tree, "/etc/hostile"), b"1");
    assert_eq!(content(&tree, "/tmp/x"), b"2");
    assert_eq!(content(&tree, "/usr/lib/libz.so"), b"3");
    assert!(!Path::new("/etc/hostile").exists());

    // A symlink to a host folder the tree does not have is an error, not a
    // way out.
    let mut raw = RawTar::new();
    raw.symlink("hostetc", "/etc").file("hostetc/passwd", b"x");
    let (member, e) = member_error(import_sandboxed(&raw.finish()));
    assert_eq!(member, "hostetc/passwd");
    assert!(
        matches!(e, MemberError::Path(PathError::NotFound { .. })),
        "{e:?}"
    );
}

#[test]
fn symlink_loops_are_errors_and_do_not_hang() {
    let (member, e) = within(30, || {
        let mut raw = RawTar::new();
        raw.symlink("a", "b")
            .symlink("b", "a")
            .symlink("self", "self/x")
            .file("a/x", b"never");
        member_error(import_sandboxed(&raw.finish()))
    });
    assert_eq!(member, "a/x");
    assert!(
        matches!(e, MemberError::Path(PathError::Loop { .. })),
        "{e:?}"
    );

    let (member, e) = within(30, || {
        let mut raw = RawTar::new();
        raw.symlink("self", "self/x").file("self/y", b"never");
        member_error(import_sandboxed(&raw.finish()))
    });
    assert_eq!(member, "self/y");
    assert!(
        matches!(e, MemberError::Path(PathError::Loop { .. })),
        "{e:?}"
    );

    // A tree that merely holds a loop imports and exports fine.
    let mut raw = RawTar::new();
    raw.symlink("a", "b").symlink("b", "a");
    let tree = within(30, move || {
        let t = import_sandboxed(&raw.finish()).unwrap();
        export(&t);
        describe(&t)
    });
    assert_eq!(tree.len(), 3);
}

#[test]
fn truncated_archives_are_errors_not_short_files() {
    let mut raw = RawTar::new();
    raw.file("ok", b"fine")
        .entry_claiming(b'0', b"big", b"", &[7u8; 1000], 1 << 20);
    let bytes = raw.0.clone(); // no end blocks: the file just stops
    for (what, archive) in [("plain", bytes.clone()), ("zstd", zstd(&bytes))] {
        let (member, e) = member_error(import_sandboxed(&archive));
        assert_eq!(member, "big", "{what}");
        assert!(matches!(e, MemberError::Truncated), "{what}: {e:?}");
    }
    // Cut inside a header.
    let mut raw = RawTar::new();
    raw.file("ok", b"fine");
    let mut cut = raw.0.clone();
    cut.extend_from_slice(&raw.0[..300]);
    match import_sandboxed(&cut) {
        Err(ImportError::Archive { source, offset, .. }) => {
            assert!(matches!(source, MemberError::Truncated), "{source:?}");
            assert_eq!(offset, 1024);
        }
        other => panic!("expected a truncation error, got {:?}", other.map(|_| ())),
    }
    // A PAX header claiming gigabytes is refused before any allocation.
    let mut raw = RawTar::new();
    raw.entry_claiming(b'x', b"PaxHeader", b"", b"", 8 << 30)
        .file("x", b"");
    match import_sandboxed(&raw.finish()) {
        Err(ImportError::Archive { source, .. }) => {
            assert!(matches!(source, MemberError::TooLarge { .. }), "{source:?}")
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn hard_links_must_name_a_member_already_in_the_tree() {
    let mut raw = RawTar::new();
    raw.file("a", b"x").hardlink("h", "nothere");
    let (member, e) = member_error(import_sandboxed(&raw.finish()));
    assert_eq!(member, "h");
    assert!(
        matches!(&e, MemberError::HardlinkTargetMissing { target } if target == "nothere"),
        "{e:?}"
    );
    // The host's /etc/passwd exists; the tree's does not.
    let mut raw = RawTar::new();
    raw.hardlink("h", "/etc/passwd");
    let (_, e) = member_error(import_sandboxed(&raw.finish()));
    assert!(
        matches!(e, MemberError::HardlinkTargetMissing { .. }),
        "{e:?}"
    );
    // Through `..`, a link resolves inside the tree.
    let mut raw = RawTar::new();
    raw.file("etc/passwd", b"tree's")
        .hardlink("h", "../../etc/passwd");
    let tree = import_sandboxed(&raw.finish()).unwrap();
    assert_eq!(tree.get("/h"), tree.get("/etc/passwd"));
    assert_eq!(tree.nlink(tree.get("/h").unwrap()), 2);
    // Directories cannot be hard linked.
    let mut raw = RawTar::new();
    raw.entry(b'5', b"d/", b"", b"").hardlink("h", "d");
    let (_, e) = member_error(import_sandboxed(&raw.finish()));
    assert!(
        matches!(e, MemberError::Path(PathError::IsADirectory { .. })),
        "{e:?}"
    );
}

#[test]
fn malformed_headers_and_names_are_errors() {
    // Bad checksum.
    let mut raw = RawTar::new();
    raw.file("a", b"x");
    raw.0[0] = b'b';
    match import_sandboxed(&raw.finish()) {
        Err(ImportError::Archive { source, offset, .. }) => {
            assert!(matches!(source, MemberError::Header(_)), "{source:?}");
            assert_eq!(offset, 0);
        }
        other => panic!("expected a header error, got {:?}", other.map(|_| ())),
    }
    // Names with no last component, or `/` as a file.
    for (name, typeflag) in [("..", b'0'), ("a/..", b'0'), ("/", b'2'), (".", b'6')] {
        let mut raw = RawTar::new();
        raw.entry(typeflag, name.as_bytes(), b"target", b"");
        let (member, e) = member_error(import_sandboxed(&raw.finish()));
        assert_eq!(member, name);
        assert!(
            matches!(e, MemberError::Path(PathError::NoName { .. })),
            "{name}: {e:?}"
        );
    }
    // A sparse map that points past the file.
    let mut raw = RawTar::new();
    raw.pax(&[
        ("GNU.sparse.size", b"10"),
        ("GNU.sparse.map", b"8,4"),
        ("GNU.sparse.name", b"s"),
    ])
    .file("GNUSparseFile.0/s", b"abcd");
    let (_, e) = member_error(import_sandboxed(&raw.finish()));
    assert!(matches!(e, MemberError::Sparse(_)), "{e:?}");
    // An unknown member type.
    let mut raw = RawTar::new();
    raw.entry(b'Q', b"q", b"", b"");
    let (_, e) = member_error(import_sandboxed(&raw.finish()));
    assert!(matches!(e, MemberError::Unsupported(_)), "{e:?}");
}

// ----------------------------------------------------------------- export

/// A tree with the export's edge cases: long names and targets, big ids,
/// sub-second and negative times, xattrs with `=` and newlines, a hard
/// link, a socket (left out), devices.
fn edge_tree() -> Tree {
    let mut t = Tree::new();
    t.set_meta(NodeId::ROOT, meta(0o555));
    let d = t
        .mkdir_p(format!("/{}", "d".repeat(120)), &meta(0o750))
        .unwrap();
    let mut m = meta(0o4711);
    m.uid = 4_000_000_000;
    m.gid = 3_000_000;
    m.mtime_nsec = 5;
    m.xattrs.insert("user.a=b%".into(), b"\n=\0".to_vec());
    m.xattrs.insert(
        "security.selinux".into(),
        b"system_u:object_r:bin_t:s0\0".to_vec(),
    );
    let data = t.spill(&mut &b"contents"[..]).unwrap();
    t.insert(d, "f", Node::file(m, data)).unwrap();
    t.hardlink(format!("/{}/f", "d".repeat(120)), "/alias")
        .unwrap();
    let mut old = meta(0o644);
    old.mtime = -86_400;
    old.mtime_nsec = 250_000_000;
    let empty = t.spill(&mut std::io::empty()).unwrap();
    t.insert_path("/old", Node::file(old, empty)).unwrap();
    t.insert_path(
        "/l",
        Node::symlink(meta(0o777), format!("/{}", "t".repeat(200))),
    )
    .unwrap();
    t.insert_path(
        "/null",
        Node {
            meta: meta(0o666),
            kind: Kind::CharDev { major: 1, minor: 3 },
        },
    )
    .unwrap();
    t.insert_path(
        "/sock",
        Node {
            meta: meta(0o755),
            kind: Kind::Socket,
        },
    )
    .unwrap();
    t
}

#[test]
fn export_round_trips_edge_cases_and_is_stable() {
    let t = edge_tree();
    let bytes = export(&t);
    assert_eq!(bytes.len() % 512, 0);
    assert_eq!(bytes, export(&t));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.tar");
    std::fs::write(&path, &bytes).unwrap();
    let back = rootfs::import(&path, None).unwrap();
    let mut want = describe(&t);
    want.retain(|l| !l.starts_with("/sock "));
    assert_same(&want, &describe(&back), "edge tree round trip");
    assert_eq!(export(&back), bytes);

    // The tar crate, a third reader, agrees on names and ids.
    let mut ar = tar::Archive::new(&bytes[..]);
    let entries: Vec<(String, u64)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().uid().unwrap(),
            )
        })
        .collect();
    assert_eq!(entries[0].0, "./");
    assert!(
        entries
            .iter()
            .any(|(n, uid)| n.ends_with("/f") && *uid == 4_000_000_000),
        "{entries:?}"
    );
}

#[test]
fn export_is_judged_by_gnu_tar_for_edge_cases() {
    let tar = need!("tar");
    let t = edge_tree();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.tar");
    std::fs::write(&path, export(&t)).unwrap();
    let o = run_ok(
        Command::new(&tar)
            .args(["--numeric-owner", "--xattrs", "-tvvf"])
            .arg(&path),
    );
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains("4000000000/3000000"),
        "big ids via PAX: {listing}"
    );
    assert!(listing.contains(&"d".repeat(120)), "{listing}");
    assert!(
        listing.contains(&format!("-> /{}", "t".repeat(200))),
        "{listing}"
    );
    assert!(
        listing.contains("1969-12-31") || listing.contains("1970-01-01"),
        "{listing}"
    );
    assert!(!listing.contains("sock"), "{listing}");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// ------------------------------------------ child processes of this binary

/// What [`child_helper`] is asked to do, through the environment.
const CHILD_ENV: &str = "INGOT_ROOTFS_CHILD";

/// Not a test: run by the tests below in a child process (`--ignored`),
/// doing what `INGOT_ROOTFS_CHILD` says:
/// - `export IN OUT`: import IN, write its export to OUT;
/// - `memory IN`: import IN, read every file, export to nowhere, print the
///   peak RSS (`VmHWM`) in KiB.
#[test]
#[ignore = "helper run by other tests in a child process"]
fn child_helper() {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<&str> = task.split('\u{1f}').collect();
    match args.as_slice() {
        ["export", input, output] => {
            let tree = rootfs::import(Path::new(input), None).unwrap();
            let f = std::fs::File::create(output).unwrap();
            tree.write_tar(f).unwrap();
        }
        ["memory", input] => {
            let input = Path::new(input);
            let tree = rootfs::import(input, input.parent()).unwrap();
            let mut files = 0;
            for (_, id) in tree.walk() {
                if let Kind::File(_) = tree.node(id).kind {
                    let mut r = tree.open(id).unwrap();
                    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
                    files += 1;
                }
            }
            tree.write_tar(std::io::sink()).unwrap();
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .unwrap()
                .trim()
                .trim_end_matches("kB")
                .trim()
                .to_string();
            println!("files={files}");
            println!("VMHWM_KIB={hwm}");
        }
        other => panic!("unknown child task {other:?}"),
    }
}

/// How this test binary runs only [`child_helper`].
const CHILD_ARGS: [&str; 5] = [
    "rootfs::child_helper",
    "--exact",
    "--ignored",
    "--nocapture",
    "--test-threads=1",
];

/// This test binary, by a path that still works if cargo replaces the file
/// while the tests run (another build in the same target folder).
fn this_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()))
}

fn child(task: &[&str]) -> Command {
    let mut c = Command::new(this_binary());
    c.args(CHILD_ARGS).env(CHILD_ENV, task.join("\u{1f}"));
    c
}

#[test]
fn exports_are_identical_under_another_time_zone_umask_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let input = work.join("in.tar");
    std::fs::write(&input, export(&edge_tree())).unwrap();
    let run = |name: &str, tz: &str, umask: &str, as_nobody: bool| -> Vec<u8> {
        let out = work.join(name);
        let task = ["export", input.to_str().unwrap(), out.to_str().unwrap()].join("\u{1f}");
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("umask {umask}; exec \"$@\""))
            .arg("sh");
        if as_nobody {
            sh.args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]);
        }
        // Another user may not read /proc/PID/exe of ours.
        sh.arg(if as_nobody {
            std::env::current_exe().unwrap()
        } else {
            this_binary()
        })
        .args(CHILD_ARGS)
        .env(CHILD_ENV, task)
        .env("TZ", tz)
        .env("LC_ALL", "C");
        run_ok(&mut sh);
        std::fs::read(out).unwrap()
    };
    let a = run("a.tar", "UTC", "022", false);
    let b = run("b.tar", "Pacific/Kiritimati", "077", false);
    assert_eq!(a, b, "time zone or umask changed the export");
    assert_eq!(a, export(&edge_tree()));
    if crate::common::need_root("the export as user 65534")
        && crate::common::judge("setpriv").is_some()
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [dir.path(), work.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644)).unwrap();
        // The clone may live where that user cannot reach this binary.
        let reachable = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "test",
                "-x",
            ])
            .arg(std::env::current_exe().unwrap())
            .status()
            .is_ok_and(|s| s.success());
        if reachable {
            let c = run("c.tar", "Asia/Kolkata", "002", true);
            assert_eq!(a, c, "another user changed the export");
        } else {
            crate::common::cannot_run(
                "the export as user 65534",
                "user 65534 cannot run this test binary from here",
                "keep the repository and its target/ where every user may read \
                 and run them (not under a mode 0700 home)",
            );
        }
    }
}

/// A `.tar.zst` holding one 1 GiB file, a quarter data and the rest zeros,
/// made without holding it in memory: zstd frames may be concatenated.
fn big_zst(path: &Path) {
    let size: u64 = 1 << 30;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_path("big.img").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    f.write_all(&zstd(h.as_bytes())).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let zero_frame = zstd(&chunk);
    chunk[12345] = 1;
    let data_frame = zstd(&chunk);
    for i in 0..(size >> 20) {
        f.write_all(if i % 256 == 0 {
            &data_frame
        } else {
            &zero_frame
        })
        .unwrap();
    }
    f.write_all(&zstd(&[0u8; 1024])).unwrap();
    f.flush().unwrap();
}

fn peak_rss_kib(input: &Path) -> (u64, String) {
    let o = run_ok(&mut child(&["memory", input.to_str().unwrap()]));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let kib = out
        .lines()
        .find_map(|l| l.strip_prefix("VMHWM_KIB="))
        .unwrap_or_else(|| panic!("no VMHWM line in {out}"))
        .parse()
        .unwrap();
    eprintln!("peak RSS importing {}: {kib} KiB", input.display());
    (kib, out)
}

#[test]
fn importing_a_gigabyte_file_keeps_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("big.tar.zst");
    big_zst(&zst);
    let (kib, out) = peak_rss_kib(&zst);
    assert!(out.contains("files=1"), "{out}");
    // 1 GiB passed through import, read-back and export.
    assert!(kib < 100 * 1024, "peak RSS {kib} KiB for a 1 GiB file");

    // The same with a plain GNU sparse tarball, referenced in place.
    let Some(tar) = crate::common::judge("tar") else {
        return;
    };
    let img = dir.path().join("sparse.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let plain = dir.path().join("sparse.tar");
    run_ok(
        Command::new(tar)
            .args(["-S", "-cf"])
            .arg(&plain)
            .arg("-C")
            .arg(dir.path())
            .arg("sparse.img"),
    );
    let (kib, out) = peak_rss_kib(&plain);
    assert!(out.contains("files=1"), "{out}");
    assert!(
        kib < 100 * 1024,
        "peak RSS {kib} KiB for a 1 GiB sparse file"
    );
}

#[test]
fn input_digest_is_the_sha256_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.tar");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(rootfs::sha256_file(&p).unwrap(), sha256(&bytes));
    assert!(matches!(
        rootfs::sha256_file(&dir.path().join("missing")),
        Err(ImportError::Read { .. })
    ));
}

#[test]
fn building_a_tree_by_hand_and_reading_it_back() {
    // /bin -> usr/bin as in Amazon Linux 2023: installing /bin/foo lands
    // in /usr/bin/foo, as rpm does.
    let mut t = Tree::new();
    t.mkdir_p("/usr/bin", &meta(0o755)).unwrap();
    t.insert_path("/bin", Node::symlink(meta(0o777), "usr/bin"))
        .unwrap();
    let data = t.spill(&mut &b"#!/bin/sh\n"[..]).unwrap();
    let id = t
        .insert_path("/bin/foo", Node::file(meta(0o755), data))
        .unwrap();
    assert_eq!(t.get("/usr/bin/foo"), Some(id));
    assert_eq!(content(&t, "/usr/bin/foo"), b"#!/bin/sh\n");
    assert_eq!(t.file_sha256(id).unwrap(), sha256(b"#!/bin/sh\n"));
}
