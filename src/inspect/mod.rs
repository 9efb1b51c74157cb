//! Reading artifacts back: what is inside an RPM, an image, a manifest.
//!
//! In: a file ingot (or another tool) wrote. Out: a typed view: an RPM's
//! metadata, dependencies and files; an image's packages (from the rpm
//! database inside it) and every path with its type, mode, owner, size and
//! content digest; a manifest's summary. Used by `ingot inspect` and
//! `ingot diff`. Reads only; contents are streamed to hash them.
//!
//! Inputs are opened only when they are regular files
//! ([`crate::input::open_regular`]); disks through
//! [`crate::disk::view`] (raw, fixed VHD, stream-optimized VMDK, qcow2,
//! Compute Engine tarball), their
//! root filesystem through [`crate::fsread`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::disk::view::DiskFormat;
use crate::fsread::ext4;
use crate::input::InputError;
use crate::install::package_of;
use crate::manifest::{Manifest, ManifestError};
use crate::package::Package;
use crate::rootfs::{ImportError, Kind, Tree};
use crate::rpm::header::tag;
use crate::rpm::read::PackageHeaders;
use crate::rpmdb::Rpmdb;

/// Why a file cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Not a regular file, or too large.
    #[error(transparent)]
    Input(#[from] InputError),

    #[error(transparent)]
    Manifest(#[from] ManifestError),

    #[error("cannot read `{path}`")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A tarball that is not an image ingot can read.
    #[error("cannot import the base root filesystem")]
    Base(#[source] Box<ImportError>),

    /// What the file holds is not what it should: a disk without a root
    /// partition, a root filesystem or database that does not read, not a
    /// kind of file ingot knows.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = InspectError> = std::result::Result<T, E>;

/// What kind of file something is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Rpm,
    Manifest,
    /// A tarball, compressed or not: an image written with `formats = ["tar"]`.
    Tar,
    /// A disk image: raw (GPT), stream-optimized VMDK, fixed VHD, qcow2 or
    /// a Compute Engine tarball (`disk.raw` in a `.tar.gz`).
    Disk(DiskFormat),
}

impl Artifact {
    /// What the kind is, in words, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Artifact::Rpm => "an rpm package",
            Artifact::Manifest => "a manifest",
            Artifact::Tar => "an image tarball",
            Artifact::Disk(DiskFormat::Raw) => "a raw disk image",
            Artifact::Disk(DiskFormat::Vmdk) => "a VMDK disk image",
            Artifact::Disk(DiskFormat::Vhd) => "a VHD disk image",
            Artifact::Disk(DiskFormat::Qcow2) => "a qcow2 disk image",
            Artifact::Disk(DiskFormat::Gce) => "a Compute Engine image tarball",
        }
    }
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> InspectError + '_ {
    move |source| InspectError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Tell what `path` is from its magic. Only a regular file is opened (a
/// FIFO or a device is refused before a byte is read).
pub fn detect(path: &Path) -> Result<Artifact> {
    let f = crate::input::open_regular(path)?;
    let mut head = vec![0u8; 1024];
    let mut n = 0;
    while n < head.len() {
        let k = (&f).read(&mut head[n..]).map_err(read_err(path))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    head.truncate(n);
    if head.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        return Ok(Artifact::Rpm);
    }
    // A Compute Engine tarball is gzip too: `disk.raw` inside is a disk.
    if head.starts_with(&[0x1f, 0x8b])
        && let Some(DiskFormat::Gce) = crate::disk::view::detect(&f).map_err(read_err(path))?
    {
        return Ok(Artifact::Disk(DiskFormat::Gce));
    }
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh");
    if compressed || (head.len() >= 262 && &head[257..262] == b"ustar") {
        return Ok(Artifact::Tar);
    }
    if let Some(format) = crate::disk::view::detect(&f).map_err(read_err(path))? {
        return Ok(Artifact::Disk(format));
    }
    if head.first() == Some(&b'{') {
        return Ok(Artifact::Manifest);
    }
    Err(InspectError::Usage(format!(
        "`{}` is not an rpm, an image or a manifest ingot can read",
        path.display()
    )))
}

/// One path of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// `file`, `dir`, `symlink`, `char`, `block`, `fifo`, `socket`
    pub kind: &'static str,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// SHA-256 of a file's contents, or a symlink's target, or "".
    pub content: String,
}

/// An image read back.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageView {
    pub packages: Vec<Package>,
    pub files: BTreeMap<String, FileInfo>,
    pub os_release: BTreeMap<String, String>,
}

fn tree_files(tree: &Tree, with_digests: bool) -> Result<BTreeMap<String, FileInfo>> {
    let mut out = BTreeMap::new();
    for (path, id) in tree.walk() {
        let n = tree.node(id);
        let (kind, size, content) = match &n.kind {
            Kind::Dir(_) => ("dir", 0, String::new()),
            Kind::File(d) => {
                let c = if with_digests {
                    tree.file_sha256(id).map_err(|source| InspectError::Read {
                        path: String::from_utf8_lossy(&path).into_owned().into(),
                        source,
                    })?
                } else {
                    String::new()
                };
                ("file", d.size, c)
            }
            Kind::Symlink(t) => (
                "symlink",
                t.len() as u64,
                String::from_utf8_lossy(t).into_owned(),
            ),
            Kind::CharDev { major, minor } => ("char", 0, format!("{major},{minor}")),
            Kind::BlockDev { major, minor } => ("block", 0, format!("{major},{minor}")),
            Kind::Fifo => ("fifo", 0, String::new()),
            Kind::Socket => ("socket", 0, String::new()),
        };
        out.insert(
            String::from_utf8_lossy(&path).into_owned(),
            FileInfo {
                kind,
                mode: format!("{:04o}", n.meta.mode),
                uid: n.meta.uid,
                gid: n.meta.gid,
                size,
                content,
            },
        );
    }
    Ok(out)
}

/// The packages an image's rpm database lists, by name.
pub fn tree_packages(tree: &Tree, work: &Path) -> Result<Vec<Package>> {
    let Ok(id) = tree.resolve(crate::install::RPMDB_FILE, true) else {
        return Ok(Vec::new());
    };
    let db_file = work.join("rpmdb.sqlite");
    let mut r = tree.open(id).map_err(read_err(&db_file))?;
    let mut f = std::fs::File::create(&db_file).map_err(read_err(&db_file))?;
    std::io::copy(&mut r, &mut f).map_err(read_err(&db_file))?;
    drop(f);
    let db = Rpmdb::open_read_only(&db_file).map_err(|e| InspectError::Usage(e.to_string()))?;
    let mut v: Vec<Package> = db
        .packages()
        .map_err(|e| InspectError::Usage(e.to_string()))?
        .iter()
        .map(|(_, h)| package_of(h))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.nevra.cmp(&b.nevra)));
    Ok(v)
}

/// Read an image written as a tarball.
pub fn image_from_tar(path: &Path, with_digests: bool) -> Result<ImageView> {
    let work = tempfile::tempdir().map_err(read_err(path))?;
    let tree = crate::rootfs::import(path, Some(work.path()))
        .map_err(|e| InspectError::Base(Box::new(e)))?;
    image_from_tree(&tree, work.path(), with_digests)
}

/// A disk image's error with its whole cause chain, as a usage error.
fn bad_image(e: crate::fsread::image::ImageError) -> InspectError {
    let mut m = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        m = format!("{m}: {c}");
        cause = c.source();
    }
    InspectError::Usage(m)
}

/// Read an image's tree (a tarball's, or a disk's root read into a tree).
fn image_from_tree(tree: &Tree, work: &Path, with_digests: bool) -> Result<ImageView> {
    let os_release = tree
        .read_text("/etc/os-release")
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(ImageView {
        packages: tree_packages(tree, work)?,
        files: tree_files(tree, with_digests)?,
        os_release,
    })
}

/// Read an image written as a GPT disk (raw, VMDK, fixed VHD, qcow2 or a
/// Compute Engine tarball): its root
/// partition's ext4 filesystem, walked by inode ([`ext4`]), so paths of
/// any depth read back.
pub fn image_from_disk(path: &Path, format: DiskFormat, with_digests: bool) -> Result<ImageView> {
    use sha2::Digest;
    let file = crate::input::open_regular(path)?;
    // The whole cause chain: a read that failed says why (a qcow2 table
    // outside the file, say), not only where.
    let bad_disk = |e: crate::disk::DiskError| {
        let mut m = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            m = format!("{m}: {c}");
            cause = c.source();
        }
        InspectError::Usage(format!("`{}`: {m}", path.display()))
    };
    // An XFS root (or any root a GPT names other than by the Linux type)
    // reads through the tree, as a base from a disk image does.
    let image = crate::fsread::image::Image::open(path, format).ok();
    if let Some(image) = image.filter(|i| i.holds_xfs().unwrap_or(false)) {
        let work = tempfile::tempdir().map_err(read_err(path))?;
        let tree = image.read_root(Some(work.path())).map_err(bad_image)?;
        return image_from_tree(&tree, work.path(), with_digests);
    }
    let mut disk = crate::disk::view::open(file, format).map_err(bad_disk)?;
    let table = crate::disk::gpt::read_disk(&mut *disk).map_err(bad_disk)?;
    let root = table
        .partitions
        .iter()
        .find(|p| p.type_guid == crate::disk::gpt::TYPE_LINUX)
        .ok_or_else(|| {
            InspectError::Usage(format!("`{}` has no Linux root partition", path.display()))
        })?;
    let bad = |e: ext4::Ext4ReadError| {
        let mut m = e.to_string();
        if let Some(s) = std::error::Error::source(&e) {
            m = format!("{m}: {s}");
        }
        InspectError::Usage(format!("`{}`: root filesystem: {m}", path.display()))
    };
    let mut fs = ext4::Fs::open(disk, root.offset(), root.size()).map_err(bad)?;
    let found = ext4::walk(&mut fs).map_err(bad)?;
    let mut files = BTreeMap::new();
    for (p, f) in &found {
        let i = &f.inode;
        let (kind, size, content) = if i.is_dir() {
            ("dir", 0, String::new())
        } else if i.is_symlink() {
            let t = String::from_utf8_lossy(&f.target).into_owned();
            ("symlink", t.len() as u64, t)
        } else if i.is_file() {
            let c = if with_digests {
                let mut h = sha2::Sha256::new();
                fs.read_data(i, |b| {
                    h.update(b);
                    Ok(())
                })
                .map_err(bad)?;
                hex::encode(h.finalize())
            } else {
                String::new()
            };
            ("file", i.size, c)
        } else {
            let (major, minor) = i.device();
            match i.file_type() {
                0o020000 => ("char", 0, format!("{major},{minor}")),
                0o060000 => ("block", 0, format!("{major},{minor}")),
                0o010000 => ("fifo", 0, String::new()),
                _ => ("socket", 0, String::new()),
            }
        };
        files.insert(
            String::from_utf8_lossy(p).into_owned(),
            FileInfo {
                kind,
                mode: format!("{:04o}", i.mode & 0o7777),
                uid: i.uid,
                gid: i.gid,
                size,
                content,
            },
        );
    }
    // One file, by path (symlinks followed), streamed to `sink`.
    let mut read_file =
        |name: &str, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>| -> Result<bool> {
            let Some(f) = ext4::resolve(&found, name.as_bytes()) else {
                return Ok(false);
            };
            if !f.inode.is_file() {
                return Ok(false);
            }
            fs.read_data(&f.inode, |b| {
                sink(b).map_err(|source| ext4::Ext4ReadError::Io { offset: 0, source })
            })
            .map_err(bad)?;
            Ok(true)
        };
    // Packages: the rpm database, copied out to read it with SQLite.
    let work = tempfile::tempdir().map_err(read_err(path))?;
    let db_file = work.path().join("rpmdb.sqlite");
    let mut out = std::fs::File::create(&db_file).map_err(read_err(&db_file))?;
    let mut packages = Vec::new();
    if read_file(crate::install::RPMDB_FILE, &mut |b| out.write_all(b))? {
        drop(out);
        let db = Rpmdb::open_read_only(&db_file).map_err(|e| InspectError::Usage(e.to_string()))?;
        packages = db
            .packages()
            .map_err(|e| InspectError::Usage(e.to_string()))?
            .iter()
            .map(|(_, h)| package_of(h))
            .collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name).then(a.nevra.cmp(&b.nevra)));
    }
    // os-release: its first 64 KiB (it is a few lines).
    let mut text = Vec::new();
    read_file("/etc/os-release", &mut |b| {
        let room = (64 * 1024usize).saturating_sub(text.len());
        text.extend_from_slice(&b[..b.len().min(room)]);
        Ok(())
    })?;
    let os_release = String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    Ok(ImageView {
        packages,
        files,
        os_release,
    })
}

/// The name of an OpenPGP hash algorithm as rpm numbers them
/// (`FILEDIGESTALGO`, RFC 4880 §9.4 and rpm's `pgpHashAlgo`).
pub fn digest_algo_name(algo: u64) -> String {
    match algo {
        1 => "md5".into(),
        2 => "sha1".into(),
        3 => "ripemd160".into(),
        8 => "sha256".into(),
        9 => "sha384".into(),
        10 => "sha512".into(),
        11 => "sha224".into(),
        12 => "sha3-256".into(),
        14 => "sha3-512".into(),
        n => format!("hash-algorithm-{n}"),
    }
}

/// An RPM's metadata, dependencies and (optionally) files. Sizes are
/// `LONGFILESIZES` when the package has them (large files, and every file
/// of a v6 package), else `FILESIZES`; each file's digest is given under
/// the name of the package's `FILEDIGESTALGO`, MD5 when the tag is absent
/// (rpm's rule for packages older than 4.6), as `rpm -qp` reads them.
pub fn rpm(path: &Path) -> Result<serde_json::Value> {
    let f = crate::input::open_regular(path)?;
    let h = PackageHeaders::read(&mut std::io::BufReader::new(f))
        .map_err(|e| InspectError::Usage(format!("`{}`: {e}", path.display())))?;
    let m = &h.header;
    let pkg = package_of(m);
    let deps = crate::install::deps::Package::from_header(m);
    let algo = digest_algo_name(m.int(tag::FILEDIGESTALGO).unwrap_or(1));
    let files: Vec<serde_json::Value> = {
        let names = deps.files.clone();
        let modes = m.ints(tag::FILEMODES);
        let sizes = if m.has(tag::LONGFILESIZES) {
            m.ints(tag::LONGFILESIZES)
        } else {
            m.ints(tag::FILESIZES)
        };
        let users = m.strings(tag::FILEUSERNAME);
        let groups = m.strings(tag::FILEGROUPNAME);
        let digests = m.strings(tag::FILEDIGESTS);
        let links = m.strings(tag::FILELINKTOS);
        let flags = m.ints(tag::FILEFLAGS);
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut f = serde_json::json!({
                    "path": n,
                    "mode": format!("{:o}", modes.get(i).copied().unwrap_or(0)),
                    "user": users.get(i),
                    "group": groups.get(i),
                    "size": sizes.get(i),
                    "link": links.get(i).filter(|l| !l.is_empty()),
                    "flags": flags.get(i),
                });
                f[algo.as_str()] = serde_json::json!(digests.get(i).filter(|d| !d.is_empty()));
                f
            })
            .collect()
    };
    Ok(serde_json::json!({
        "kind": "rpm",
        "nevra": pkg.nevra,
        "name": pkg.name,
        "epoch": pkg.epoch,
        "version": pkg.version,
        "release": pkg.release,
        "arch": pkg.arch,
        "summary": pkg.summary,
        "license": pkg.license,
        "vendor": pkg.vendor,
        "url": pkg.url,
        "buildtime": m.int(tag::BUILDTIME),
        "payload_compressor": m.string(tag::PAYLOADCOMPRESSOR),
        "file_digest_algo": algo,
        "signed": h.signature.has(tag::SIG_RSA) || h.signature.has(tag::SIG_PGP) || h.signature.has(tag::SIG_GPG) || h.signature.has(tag::SIG_DSA),
        "requires": deps.requires.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "provides": deps.provides.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "conflicts": deps.conflicts.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "obsoletes": deps.obsoletes.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "files": files,
    }))
}

/// A manifest, as `verify` reads it (size, JSON, `manifest_version`).
pub fn manifest(path: &Path) -> Result<Manifest> {
    Ok(crate::manifest::load(path)?)
}
