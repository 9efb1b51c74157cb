//! Seed inputs and dictionaries for the targets.
//!
//! [`seeds`] is deterministic and needs nothing but this repository: the
//! committed example specs, texts written here, and ingot's own outputs
//! made by the library from a small tree built here (an RPM with an
//! uncompressed payload, a reproducible tarball, an ext4 filesystem, a
//! raw/VMDK/VHD disk). The tests run every target over these, and `cargo
//! xtask fuzz` starts from them.
//!
//! [`local_seeds`] adds what this machine happens to have and is never
//! committed: the headers of real RPMs (`../shared/fixtures/real-rpms/`,
//! `target/real-rpms/` from `cargo xtask corpus`), tarballs in GNU tar's
//! other formats (old GNU sparse members, long-name members, PAX sparse
//! 0.0/0.1/1.0) and ext4 filesystems as mke2fs makes them (1 KiB blocks,
//! 32-byte group descriptors), when `tar` and `mke2fs` are installed.

use std::fs::File;
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::Command;

use ingot::disk::format::{Context, OutputFormat, RawDone};
use ingot::rootfs::{Kind, Meta, Node, Tree};

/// A named input.
pub type Seed = (String, Vec<u8>);

/// The source date of every seed.
const TIME: u32 = 1_700_000_000;

/// The deterministic seeds of `target`.
pub fn seeds(target: &str) -> Vec<Seed> {
    let r = match target {
        "package_spec" => Ok(package_specs()),
        "image_spec" => Ok(image_specs()),
        "dep" => Ok(DEPS
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("dep-{i:02}"), d.as_bytes().to_vec()))
            .collect()),
        "rpm_header" => rpm_seeds().map(|(h, _)| h),
        "rpm_payload" => rpm_seeds().map(|(_, p)| p),
        "tar" => tar_seeds(),
        "ext4" => ext4_seeds(),
        "disk" => disk_seeds(),
        "gce" => gce_seeds(),
        "xfs" => Ok(committed("xfs")),
        "repo_metadata" => Ok(repo_metadata_seeds()),
        _ => Ok(Vec::new()),
    };
    r.unwrap_or_else(|e| panic!("cannot make the seeds of `{target}`: {e}"))
}

fn repo_file(rel: &str) -> Vec<u8> {
    let p = crate::repo_root().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Every section and key of a package spec (docs/spec.md), with sources
/// beside `specs/hello/hello.toml`.
const FULL_PACKAGE: &str = r#"[package]
name = "fuzz-demo"
version = "2.1~rc1^git3"
release = "4.el9"
epoch = 1
arch = "x86_64"
summary = "Every section of a package spec"
description = """
Two lines
of description."""
license = "MIT OR Apache-2.0"
url = "https://example.invalid/demo"
vendor = "ingot"
packager = "ingot <ingot@example.invalid>"
group = "System/Tools"

[dependencies]
auto = false
requires = ["bash >= 5.1", "(nginx or httpd)", "(a if b else c)", "python3(abi) = 3.9", "libc.so.6()(64bit)"]
provides = ["demo = 1:2.1-4"]
conflicts = ["old-demo < 2", "(p unless q else r)"]
obsoletes = ["demo-legacy <= 1.0-1"]
recommends = ["(x with y)"]
suggests = ["(p or q)"]
supplements = ["(z without w)"]
enhances = ["(m and (n or o))"]

[[files]]
src = "hello-server"
dest = "/usr/bin/demo"
mode = "4755"
caps = "cap_net_bind_service=ep"

[[files]]
src = "hello.conf"
dest = "/etc/demo/demo.conf"
mode = 0o640
user = "demo"
group = "demo"
config = "noreplace"

[[files]]
dest = "/var/log/demo.log"
ghost = true

[[files]]
src = "."
dest = "/usr/share/demo"
dir_mode = "0750"
doc = true

[[dirs]]
path = "/var/lib/demo"
mode = "0700"
user = "demo"
group = "demo"

[[symlinks]]
path = "/usr/bin/demo-link"
target = "demo"

[[users]]
name = "demo"
uid = 990
group = "demo"
home = "/var/lib/demo"
shell = "/sbin/nologin"
description = "demo service"

[[groups]]
name = "demo"
gid = 990
members = ["demo"]

[[systemd]]
unit = "hello.service"
enable = false

[scripts]
pre = "echo pre"
post = "echo post\n\ttrue"
preun = "true"
postun = "true"
pretrans = "true"
posttrans = "true"

[[changelog]]
date = "2024-05-01"
author = "ingot <ingot@example.invalid> - 2.1-4"
text = "- a change\n- another"

[[changelog]]
date = 2023-01-02
author = "ingot <ingot@example.invalid> - 2.0-1"
text = "- first"
"#;

const SMALL_PACKAGE: &str = r#"[package]
name = "a"
version = "1"
arch = "noarch"
summary = "s"
license = "MIT"
"#;

fn package_specs() -> Vec<Seed> {
    vec![
        ("hello.toml".into(), repo_file("specs/hello/hello.toml")),
        ("full.toml".into(), FULL_PACKAGE.as_bytes().to_vec()),
        ("small.toml".into(), SMALL_PACKAGE.as_bytes().to_vec()),
    ]
}

/// Every key of an image spec (docs/image-spec.md), beside
/// `specs/hello-image.toml`.
const FULL_IMAGE: &str = r#"[image]
name = "demo.image_1"
base = "../fixtures/al2023-standin/rootfs.tar.zst"
base_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
packages = ["hello/hello.toml"]
formats = ["raw", "vmdk", "vhd", "tar"]
size = "8GiB"
filesystem = "ext4"

[image.systemd]
enable = ["chronyd.service"]
disable = ["sshd.service"]
mask = ["systemd-firstboot.service"]

[[image.files]]
dest = "/etc/hostname"
content = "demo\n"
mode = "0600"
user = "root"
group = "root"

[[image.files]]
dest = "/etc/motd"
src = "hello/hello.conf"
"#;

fn image_specs() -> Vec<Seed> {
    vec![
        (
            "hello-image.toml".into(),
            repo_file("specs/hello-image.toml"),
        ),
        ("hello-boot.toml".into(), repo_file("specs/hello-boot.toml")),
        ("full.toml".into(), FULL_IMAGE.as_bytes().to_vec()),
    ]
}

const DEPS: &[&str] = &[
    "bash",
    "bash >= 5.1",
    "glibc = 2:2.34-60.amzn2023",
    "libc.so.6(GLIBC_2.34)(64bit)",
    "python3.9dist(requests) < 3~rc1^git2",
    "(nginx or httpd)",
    "(foo-selinux if selinux-policy)",
    "(a if b else c)",
    "(a unless b else c)",
    "(a and (b or c) and d > 1)",
    "(x with y)",
    "(x without y)",
    "((a or b) and (c if d))",
    "config(hello) = 1.0.0-1",
];

/// A package built by the library from a spec that uses most features,
/// with an uncompressed payload: (its headers, its cpio payload), plus a
/// bare header blob and a signature header, plus a hand-made payload with
/// rpm's stripped entries.
#[allow(clippy::type_complexity)]
fn rpm_seeds() -> Result<(Vec<Seed>, Vec<Seed>), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    let w = |name: &str, text: &str| std::fs::write(d.join(name), text);
    w("tool", "#!/bin/sh\necho tool\n").map_err(|e| e.to_string())?;
    w("tool.conf", "key = value\n").map_err(|e| e.to_string())?;
    w(
        "tool.service",
        "[Unit]\nDescription=tool\n\n[Service]\nExecStart=/usr/bin/tool\n\n[Install]\nWantedBy=multi-user.target\n",
    )
    .map_err(|e| e.to_string())?;
    let spec = r#"[package]
name = "tool"
version = "1.2"
release = "3"
arch = "noarch"
summary = "A seed package"
license = "MIT"

[dependencies]
requires = ["(bash or zsh)", "coreutils >= 8"]

[[files]]
src = "tool"
dest = "/usr/bin/tool"
mode = "0755"

[[files]]
src = "tool.conf"
dest = "/etc/tool/tool.conf"
config = "noreplace"

[[symlinks]]
path = "/usr/bin/tool-link"
target = "tool"

[[dirs]]
path = "/var/lib/tool"
mode = "0750"
user = "tool"

[[users]]
name = "tool"

[[systemd]]
unit = "tool.service"

[[changelog]]
date = 2024-01-01
author = "seed <seed@example.invalid> - 1.2-3"
text = "- seed"
"#;
    w("tool.toml", spec).map_err(|e| e.to_string())?;
    let spec = ingot::spec::load_package(&d.join("tool.toml")).map_err(|e| e.to_string())?;
    let built = ingot::rpm::build_package(
        &spec,
        &ingot::rpm::BuildOptions {
            compression: ingot::rpm::Compression::None,
            source_date_epoch: Some(u64::from(TIME)),
            sign_key: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let bytes = built.bytes;
    let h = ingot::rpm::read::PackageHeaders::read(&mut &bytes[..]).map_err(|e| e.to_string())?;
    let headers = vec![
        (
            "tool-headers.rpm".into(),
            bytes[..h.payload_offset as usize].to_vec(),
        ),
        ("tool-header-blob".into(), h.header.blob().to_vec()),
        ("tool-signature".into(), h.signature.with_magic()),
    ];
    let payload = vec![
        (
            "tool-payload.cpio".into(),
            bytes[h.payload_offset as usize..].to_vec(),
        ),
        ("stripped.cpio".into(), stripped_cpio()),
    ];
    Ok((headers, payload))
}

/// One newc member.
fn newc(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let fields = [1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(format!("{:08x}", name.len() + 1).as_bytes());
    out.extend_from_slice(b"00000000");
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// rpm's stripped payload form: `07070X` and a file index.
fn stripped_cpio() -> Vec<u8> {
    let mut out = Vec::new();
    for (index, data) in [(1u32, &b"abc"[..]), (2, b"defghi")] {
        out.extend_from_slice(format!("07070X{index:08x}").as_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    newc(&mut out, "./etc/plain", 0o100644, b"plain\n");
    newc(&mut out, "TRAILER!!!", 0, b"");
    out
}

fn meta(mode: u32) -> Meta {
    Meta::new(mode, 0, 0, i64::from(TIME))
}

/// A small root filesystem with one of each kind of node, xattrs, a hard
/// link, long names, a sparse file and (with `big_dir`) a directory of
/// more than one block, which ext4 indexes as an htree.
fn sample_tree(big_dir: bool) -> Result<Tree, String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let mut t = Tree::new();
    for d in ["/etc", "/usr/bin", "/var/lib", "/dev"] {
        t.mkdir_p(d, &meta(0o755)).map_err(|x| e(&x))?;
    }
    t.put_text(
        "/etc/os-release",
        "NAME=\"Seed Linux\"\nID=seed\nVERSION_ID=1\n",
        0o644,
        TIME,
    )
    .map_err(|x| e(&x))?;
    t.put_text("/usr/bin/tool", "#!/bin/sh\necho tool\n", 0o4755, TIME)
        .map_err(|x| e(&x))?;
    let id = t.resolve("/usr/bin/tool", true).map_err(|x| e(&x))?;
    let m = t.meta_mut(id);
    m.uid = 1000;
    m.gid = 1000;
    m.mtime_nsec = 123_456_789;
    m.xattrs.insert("user.note".into(), b"seed".to_vec());
    m.xattrs.insert(
        "security.capability".into(),
        vec![1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    t.hardlink("/usr/bin/tool", "/usr/bin/tool-hard")
        .map_err(|x| e(&x))?;
    t.insert_path("/usr/bin/tool-link", Node::symlink(meta(0o777), "tool"))
        .map_err(|x| e(&x))?;
    let long = format!("/usr/{}/file", "long-directory-name-".repeat(6));
    t.mkdir_p(long.rsplit_once('/').map_or("/", |p| p.0), &meta(0o755))
        .map_err(|x| e(&x))?;
    t.put_text(&long, "deep\n", 0o600, TIME)
        .map_err(|x| e(&x))?;
    t.insert_path(
        "/usr/bin/long-link",
        Node::symlink(meta(0o777), long.repeat(2)),
    )
    .map_err(|x| e(&x))?;
    for (name, kind) in [
        ("/dev/null", Kind::CharDev { major: 1, minor: 3 }),
        ("/dev/sda", Kind::BlockDev { major: 8, minor: 0 }),
        ("/var/lib/fifo", Kind::Fifo),
    ] {
        t.insert_path(
            name,
            Node {
                meta: meta(0o660),
                kind,
            },
        )
        .map_err(|x| e(&x))?;
    }
    // 2 MiB of hole, then data: a sparse file.
    let mut sparse = vec![0u8; 2 << 20];
    sparse.extend_from_slice(b"end of a sparse file\n");
    let data = t.spill(&mut &sparse[..]).map_err(|x| e(&x))?;
    t.insert_path("/var/lib/sparse", Node::file(meta(0o644), data))
        .map_err(|x| e(&x))?;
    if big_dir {
        // 80 entries of 68 bytes: two blocks.
        t.mkdir_p("/usr/share/many", &meta(0o755))
            .map_err(|x| e(&x))?;
        for i in 0..80 {
            let name = format!("/usr/share/many/{i:04}-{}", "n".repeat(55));
            t.put_text(&name, "", 0o644, TIME).map_err(|x| e(&x))?;
        }
    }
    Ok(t)
}

fn tar_seeds() -> Result<Vec<Seed>, String> {
    let mut out = Vec::new();
    sample_tree(false)?
        .write_tar(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(vec![("sample.tar".into(), out)])
}

fn ext4_options() -> ingot::ext4::Options {
    ingot::ext4::Options {
        uuid: [0x11; 16],
        hash_seed: [0x22; 16],
        label: "/".into(),
        timestamp: TIME,
        size: 0,
    }
}

fn ext4_seeds() -> Result<Vec<Seed>, String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let tree = sample_tree(true)?;
    let f = crate::sparse::memfd().map_err(|x| e(&x))?;
    let s = ingot::ext4::write(&tree, &ext4_options(), &f, 0).map_err(|x| e(&x))?;
    f.set_len(s.size).map_err(|x| e(&x))?;
    Ok(vec![(
        "ingot.ext4".into(),
        crate::sparse::encode(&f).map_err(|x| e(&x))?,
    )])
}

/// The sample tree as a raw GPT disk with an ext4 root partition.
fn sample_disk() -> Result<File, String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let tree = sample_tree(false)?;
    let opts = ext4_options();
    let need = ingot::ext4::min_size(&tree, &opts).map_err(|x| e(&x))?;
    let size = ingot::disk::gpt::Size::Bytes((need + (32 << 20)).div_ceil(1 << 20) << 20);
    let layout = ingot::disk::gpt::plan(need, 0, size, b"fuzz seed").map_err(|x| e(&x))?;
    let raw = crate::sparse::memfd().map_err(|x| e(&x))?;
    raw.set_len(layout.disk_size).map_err(|x| e(&x))?;
    ingot::disk::gpt::write(&layout, &raw).map_err(|x| e(&x))?;
    let root = ingot::ext4::Options {
        size: (layout.root.end - layout.root.start) / 4096 * 4096,
        ..opts
    };
    ingot::ext4::write(&tree, &root, &raw, layout.root.start).map_err(|x| e(&x))?;
    Ok(raw)
}

/// The sample disk raw and as every format `disk::view` reads that keeps
/// whole sectors (the `gce` target has the Compute Engine tarball).
fn disk_seeds() -> Result<Vec<Seed>, String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let raw = sample_disk()?;
    let mut seeds = vec![("ingot.raw".to_string(), enc(&raw)?)];
    for f in [OutputFormat::Vmdk, OutputFormat::Vhd, OutputFormat::Qcow2] {
        let made = format_of(f, &raw).map_err(|x| e(&x))?;
        seeds.push((format!("ingot.{}", f.extension()), enc(&made)?));
    }
    Ok(seeds)
}

fn enc(f: &File) -> Result<Vec<u8>, String> {
    crate::sparse::encode(f).map_err(|x| format!("{x:?}"))
}

/// `format` of the raw image `raw`, made through the format seam as
/// `bake` makes it: the one pass over the raw image, then the format's
/// finish.
fn format_of(format: OutputFormat, raw: &File) -> Result<File, String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let scratch = tempfile::tempdir().map_err(|x| e(&x))?;
    let cx = Context {
        raw_len: raw.metadata().map_err(|x| e(&x))?.len(),
        seed: [0x33; 32],
        source_date: u64::from(TIME),
        scratch: scratch.path().to_path_buf(),
    };
    let out = crate::sparse::memfd().map_err(|x| e(&x))?;
    let mut w = format
        .image_format(out.try_clone().map_err(|x| e(&x))?, &cx)
        .map_err(|x| e(&x))?
        .ok_or_else(|| format!("{} is not a disk format", format.name()))?;
    let d =
        ingot::disk::digest_raw(raw, &mut [w.stream()], NonZeroUsize::MIN).map_err(|x| e(&x))?;
    w.finish(&RawDone {
        file: raw,
        sha256: d.sha256,
        hasher: &d.hasher,
    })
    .map_err(|x| e(&x))?;
    Ok(out)
}

/// The sample disk as a Compute Engine tarball, its bytes as they are.
fn gce_seeds() -> Result<Vec<Seed>, String> {
    use std::io::{Read, Seek};
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let mut f = format_of(OutputFormat::Gce, &sample_disk()?)?;
    f.rewind().map_err(|x| e(&x))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|x| e(&x))?;
    Ok(vec![("ingot.gce.tar.gz".into(), bytes)])
}

/// Seeds from what this machine has (see the module doc); never committed.
pub fn local_seeds(target: &str) -> Vec<Seed> {
    match target {
        "rpm_header" => real_rpm_headers(),
        "tar" => gnu_tar_seeds().unwrap_or_default(),
        "ext4" => mke2fs_seeds().unwrap_or_default(),
        "xfs" => mkfs_xfs_seeds().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The headers (lead to payload) of the real RPMs present, up to 1 MiB each.
fn real_rpm_headers() -> Vec<Seed> {
    let root = crate::repo_root();
    let mut dirs = vec![
        root.join("../shared/fixtures/real-rpms"),
        root.join("target/real-rpms"),
    ];
    if let Some(d) = std::env::var_os("INGOT_SHARED_FIXTURES") {
        dirs.push(Path::new(&d).join("real-rpms"));
    }
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for p in files {
            if p.extension().is_none_or(|x| x != "rpm") {
                continue;
            }
            let Ok((h, _)) = ingot::rpm::read::PackageHeaders::open(&p) else {
                continue;
            };
            if h.payload_offset > 1 << 20 {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            out.push((
                format!("real-{}", name.unwrap_or_default()),
                bytes[..h.payload_offset as usize].to_vec(),
            ));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

fn run_ok(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// A small folder with what tar formats differ on.
fn sample_dir(d: &Path) -> std::io::Result<()> {
    let long = d.join("a".repeat(60)).join("b".repeat(60));
    std::fs::create_dir_all(&long)?;
    std::fs::write(long.join("file"), "deep\n")?;
    std::fs::write(d.join("small"), "small\n")?;
    std::fs::hard_link(d.join("small"), d.join("hard"))?;
    std::os::unix::fs::symlink("small", d.join("link"))?;
    let f = File::create(d.join("sparse"))?;
    f.set_len(3 << 20)?;
    (&f).write_all(b"head")?;
    std::os::unix::fs::FileExt::write_all_at(&f, b"middle", 2 << 20)?;
    Ok(())
}

/// GNU tar's formats of one small folder (reproducible options).
fn gnu_tar_seeds() -> Option<Vec<Seed>> {
    if !run_ok(Command::new("tar").arg("--version")) {
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let src = dir.path().join("src");
    sample_dir(&src).ok()?;
    let mut out = Vec::new();
    let formats: &[(&str, &[&str])] = &[
        ("gnu", &["--format=gnu", "--sparse"]),
        ("oldgnu", &["--format=oldgnu", "--sparse"]),
        ("pax-1.0", &["--format=pax", "--sparse"]),
        (
            "pax-0.0",
            &["--format=pax", "--sparse", "--sparse-version=0.0"],
        ),
        (
            "pax-0.1",
            &["--format=pax", "--sparse", "--sparse-version=0.1"],
        ),
        ("ustar", &["--format=ustar"]),
        ("v7", &["--format=v7"]),
    ];
    for (name, args) in formats {
        let file = dir.path().join(format!("{name}.tar"));
        let ok = run_ok(
            Command::new("tar")
                .args([
                    "--sort=name",
                    "--mtime=@1700000000",
                    "--owner=0",
                    "--group=0",
                ])
                .args(["--numeric-owner", "--pax-option=delete=atime,delete=ctime"])
                .args(*args)
                .arg("-cf")
                .arg(&file)
                .arg("-C")
                .arg(&src)
                .arg("."),
        );
        if ok && let Ok(b) = std::fs::read(&file) {
            out.push((format!("gnu-{name}.tar"), b));
        }
    }
    Some(out)
}

/// Filesystems as mke2fs makes them, from the same folder.
fn mke2fs_seeds() -> Option<Vec<Seed>> {
    let dir = tempfile::tempdir().ok()?;
    let src = dir.path().join("src");
    sample_dir(&src).ok()?;
    let mut out = Vec::new();
    let kinds: &[(&str, &[&str])] = &[
        ("1k-32bit", &["-b", "1024", "-O", "^64bit,^metadata_csum"]),
        ("4k-64bit", &["-b", "4096", "-O", "64bit,^has_journal"]),
    ];
    for (name, args) in kinds {
        let img = dir.path().join(format!("{name}.img"));
        File::create(&img).ok()?.set_len(8 << 20).ok()?;
        let ok = run_ok(
            Command::new("mke2fs")
                .env("E2FSPROGS_FAKE_TIME", "1700000000")
                .args(["-q", "-F", "-t", "ext4", "-N", "64", "-m", "0"])
                .args(["-U", "11111111-2222-3333-4444-555555555555"])
                .args([
                    "-E",
                    "hash_seed=66666666-7777-8888-9999-000000000000,root_owner=0:0",
                ])
                .args(*args)
                .arg("-d")
                .arg(&src)
                .arg(&img),
        );
        if ok && let Ok(f) = File::open(&img) {
            out.push((
                format!("mke2fs-{name}.ext4"),
                crate::sparse::encode(&f).ok()?,
            ));
        }
    }
    Some(out)
}

/// The committed seeds of `target` (`fuzz/seeds/TARGET/`): what ingot
/// cannot make itself yet. The `xfs` seed is [`mkfs_xfs_seeds`]'s output
/// (ingot writes no XFS of its own in this crate's seeds).
fn committed(target: &str) -> Vec<Seed> {
    let dir = crate::repo_root().join("fuzz/seeds").join(target);
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                out.push((e.file_name().to_string_lossy().into_owned(), b));
            }
        }
    }
    out.sort();
    out
}

/// An XFS as mkfs.xfs makes it (1 KiB blocks, 16 MiB, a fixed UUID),
/// filled from a protofile with directories in short form (empty, 5
/// entries), block form (40) and leaf form (150; node form needs some 500
/// entries in mkfs.xfs's smallest 4 KiB directory blocks, too many inodes
/// for a small seed: the fuzzer gets there by mutation, and the kernel
/// tests read it), symlinks (inline only: the
/// remote blocks mkfs.xfs 6.1 writes from a protofile lack their v5
/// header, which xfs_db reports as a CRC error too),
/// devices, a FIFO and a setuid file; its log zeroed (the reader never
/// reads it), so the sparse input stays small.
pub fn mkfs_xfs_seeds() -> Option<Vec<Seed>> {
    let dir = tempfile::tempdir().ok()?;
    let data = dir.path().join("data");
    std::fs::write(&data, b"seed\n").ok()?;
    let d = data.display();
    let mut proto = String::from("/dummy\n0 0\nd--755 0 0\n");
    let mut folder = |name: &str, n: usize, entry: &str| {
        proto.push_str(&format!("{name} d--755 0 0\n"));
        for i in 0..n {
            proto.push_str(&format!("{entry}-{i} ---644 0 0 {d}\n"));
        }
        proto.push_str("$\n");
    };
    folder("empty", 0, "e");
    folder("small", 5, "f");
    folder("mid", 40, "mid-entry");
    folder("big", 150, "an-entry-with-a-long-name");
    proto.push_str(&format!(
        "short l--777 0 0 target\nlong l--777 0 0 {}\nnull c--666 0 0 1 3\n\
         sda b--660 0 6 8 0\nfifo p--644 0 0\nsuid -u-755 1000 1000 {d}\n$\n",
        "x".repeat(300)
    ));
    let proto_file = dir.path().join("proto");
    std::fs::write(&proto_file, proto).ok()?;
    let img = dir.path().join("xfs.img");
    File::create(&img).ok()?.set_len(16 << 20).ok()?;
    // mkfs.xfs refuses filesystems under 300 MB unless run by the test
    // suite (fstests), which these variables say.
    let ok = run_ok(
        Command::new("mkfs.xfs")
            .envs([("TEST_DIR", "1"), ("TEST_DEV", "1"), ("QA_CHECK_FS", "1")])
            .args(["-q", "-f", "-b", "size=1024", "-L", "/"])
            .args(["-m", "uuid=11111111-2222-3333-4444-555555555555"])
            .arg("-p")
            .arg(&proto_file)
            .arg(&img),
    );
    if !ok {
        return None;
    }
    let mut bytes = std::fs::read(&img).ok()?;
    let be = |o: usize, n: usize| {
        bytes[o..o + n]
            .iter()
            .fold(0u64, |a, b| a << 8 | u64::from(*b))
    };
    let bs = be(4, 4) as usize;
    let (start, len) = (be(0x30, 8) as usize * bs, be(0x60, 4) as usize * bs);
    bytes.get_mut(start..start + len)?.fill(0);
    std::fs::write(&img, &bytes).ok()?;
    let f = File::open(&img).ok()?;
    Some(vec![(
        "mkfs-xfs-1k.xfs".into(),
        crate::sparse::encode(&f).ok()?,
    )])
}

/// Tokens for AFL++'s `-x` dictionary of `target`.
pub fn dictionary(target: &str) -> Vec<&'static [u8]> {
    let words: &[&str] = match target {
        "package_spec" => &[
            "[package]",
            "[dependencies]",
            "[[files]]",
            "[[dirs]]",
            "[[symlinks]]",
            "[[users]]",
            "[[groups]]",
            "[[systemd]]",
            "[scripts]",
            "[[changelog]]",
            "name",
            "version",
            "release",
            "epoch",
            "arch",
            "summary",
            "description",
            "license",
            "url",
            "vendor",
            "packager",
            "group",
            "auto",
            "requires",
            "provides",
            "conflicts",
            "obsoletes",
            "recommends",
            "suggests",
            "supplements",
            "enhances",
            "src",
            "dest",
            "mode",
            "dir_mode",
            "user",
            "config",
            "noreplace",
            "doc",
            "ghost",
            "caps",
            "path",
            "target",
            "uid",
            "gid",
            "members",
            "home",
            "shell",
            "unit",
            "enable",
            "pre",
            "post",
            "preun",
            "postun",
            "pretrans",
            "posttrans",
            "date",
            "author",
            "text",
            "x86_64",
            "aarch64",
            "noarch",
            " = ",
            "\"\"\"",
            "0o",
            "true",
            "false",
        ],
        "image_spec" => &[
            "[image]",
            "[image.systemd]",
            "[[image.files]]",
            "name",
            "base",
            "base_sha256",
            "packages",
            "formats",
            "size",
            "filesystem",
            "enable",
            "disable",
            "mask",
            "dest",
            "content",
            "src",
            "mode",
            "user",
            "group",
            "raw",
            "vmdk",
            "vhd",
            "tar",
            "ext4",
            "auto",
            "MiB",
            "GiB",
            ".service",
            " = ",
            "true",
        ],
        "dep" => &[
            "(",
            ")",
            " and ",
            " or ",
            " if ",
            " else ",
            " unless ",
            " with ",
            " without ",
            " >= ",
            " <= ",
            " = ",
            " < ",
            " > ",
            ":",
            "-",
            "~",
            "^",
            "()(64bit)",
            "rpmlib(",
        ],
        "tar" => &[
            "ustar\u{0}00",
            "ustar  \u{0}",
            "././@LongLink",
            "././@PaxHeader",
            "path=",
            "linkpath=",
            "size=",
            "uid=",
            "gid=",
            "mtime=",
            "SCHILY.xattr.",
            "LIBARCHIVE.xattr.",
            "RHT.security.selinux=",
            "GNU.sparse.major=",
            "GNU.sparse.minor=",
            "GNU.sparse.name=",
            "GNU.sparse.realsize=",
            "GNU.sparse.size=",
            "GNU.sparse.map=",
            "GNU.sparse.offset=",
            "GNU.sparse.numbytes=",
            "GNU.sparse.numblocks=",
        ],
        "rpm_payload" => &["070701", "070702", "07070X", "TRAILER!!!"],
        "xfs" => &[
            "XFSB",
            "IN",
            "BMA3",
            "XDB3",
            "XDD3",
            "XDF3",
            "XSLM",
            "XARM",
            "security.",
        ],
        _ => &[],
    };
    words.iter().map(|w| w.as_bytes()).collect()
}

/// `tokens` as an AFL++ dictionary file.
pub fn dictionary_text(tokens: &[&[u8]]) -> String {
    let mut s = String::new();
    for (i, t) in tokens.iter().enumerate() {
        s.push_str(&format!("t{i}=\""));
        for &b in *t {
            if b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ' {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
        s.push_str("\"\n");
    }
    s
}

/// `repo_metadata`'s seeds, each behind the byte that picks its parser:
/// the example repository's `repomd.xml`, `primary` and `filelists`
/// (decompressed), a metalink and a `.repo` file written here, and the
/// example's lock file.
fn repo_metadata_seeds() -> Vec<Seed> {
    let dir = crate::repo_root().join("fixtures/example-repo/repo/repodata");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let plain = |kind: &str| -> Vec<u8> {
        let f = files
            .iter()
            .find(|f| f.to_string_lossy().ends_with(&format!("-{kind}.xml.gz")))
            .unwrap_or_else(|| panic!("no {kind} in {}", dir.display()));
        let file = File::open(f).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut ingot::repo::decode::decompress(file).unwrap(),
            &mut out,
        )
        .unwrap();
        out
    };
    let with = |which: u8, name: &str, body: Vec<u8>| {
        let mut b = vec![which];
        b.extend(body);
        (name.to_string(), b)
    };
    vec![
        with(0, "repomd", std::fs::read(dir.join("repomd.xml")).unwrap()),
        with(1, "primary", plain("primary")),
        with(2, "filelists", plain("filelists")),
        with(3, "metalink", METALINK.as_bytes().to_vec()),
        with(4, "repo-file", REPO_FILE.as_bytes().to_vec()),
        with(5, "lock", repo_file("specs/hello-image.lock")),
    ]
}

const METALINK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" pubdate="Tue, 01 Dec 2026 00:00:00 GMT">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp xmlns:mm0="http://fedorahosted.org/mirrormanager">1764547200</mm0:timestamp>
   <size>3012</size>
   <verification>
    <hash type="md5">0123456789abcdef0123456789abcdef</hash>
    <hash type="sha256">4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945</hash>
   </verification>
   <mm0:alternates xmlns:mm0="http://fedorahosted.org/mirrormanager">
    <mm0:alternate>
     <mm0:timestamp>1764460800</mm0:timestamp>
     <size>3001</size>
     <verification><hash type="sha512">cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e</hash></verification>
    </mm0:alternate>
   </mm0:alternates>
   <resources maxconnections="1">
    <url protocol="https" type="https" location="US" preference="100">https://mirror.example.invalid/2023/x86_64/repodata/repomd.xml</url>
    <url protocol="http" type="http" location="DE" preference="90">http://mirror2.example.invalid/2023/x86_64/repodata/repomd.xml</url>
    <url protocol="rsync" type="rsync" location="DE" preference="80">rsync://mirror3.example.invalid/2023/x86_64/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>
"#;

const REPO_FILE: &str = "[main]\ngpgcheck=1\n\n[amazonlinux]\nname=Amazon Linux 2023 repository\n\
mirrorlist=https://mirrors.example.invalid/$awsregion/core/mirrors/$releasever/$basearch/mirror.list\n\
priority=10\nenabled=1\nrepo_gpgcheck=0\ntype=rpm\n\
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-amazon-linux-2023\nmetadata_expire=48h\nskip_if_unavailable=False\n\n\
[amazonlinux-source]\nname=Amazon Linux 2023 repository - Source packages\n\
baseurl=https://example.invalid/$releasever/SRPMS/\nenabled=0\n";
