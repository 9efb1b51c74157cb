//! A disk image's root filesystem into a [`Tree`]: how `bake` reads a
//! base that is a disk image (raw, fixed VHD, stream-optimized VMDK,
//! qcow2, Compute Engine tarball: whatever [`crate::disk::view`] opens),
//! and how `inspect` and `diff` read an XFS root.
//!
//! Which partition: the GPT is read; of its partitions that hold XFS or
//! ext4 (the ESP and the BIOS boot partition left out), the one the
//! image's own `/etc/fstab` mounts at `/` (`UUID=`, `LABEL=`,
//! `PARTUUID=`, `/dev/disk/by-uuid/`, `/dev/disk/by-label/`,
//! `/dev/disk/by-partuuid/`); else the one whose GPT name or filesystem
//! label is `/`; else the largest.
//!
//! The ESP's files (FAT, [`super::fat`]) land under `/boot/efi`, owned by
//! root with mode 0700, as AL2023's fstab mounts it (`umask=0077`).
//!
//! What comes through: every path with its owner, mode, mtime, xattrs
//! (SELinux labels, capabilities, ACLs), symlink target and device
//! numbers; hard links as one node under every name; file contents by
//! reference, never in memory: in a raw image (or a fixed VHD, whose
//! bytes are the disk's) the extents name the image file itself, so holes
//! stay holes and nothing is copied; in any other container the bytes go
//! to the tree's spill store, whose hole rule keeps holes as holes.
//!
//! Limits: at most [`MAX_ENTRIES`] paths and [`MAX_DEPTH`] directories
//! deep; a directory reached twice is a cycle; each reader's own limits.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{FileType, FsError, Mapped, ReadFs, Stat};
use crate::disk::DiskError;
use crate::disk::gpt::{self, Partition};
use crate::disk::view::{self, DiskFormat, DiskRead};
use crate::rootfs::{Extent, FileData, Kind, Meta, Node, NodeId, PathError, SourceId, Tree};

/// The most paths read from one filesystem.
pub const MAX_ENTRIES: usize = 1 << 24;
/// The deepest directory entered.
pub const MAX_DEPTH: usize = 32 * 1024;

/// Why a disk image's root filesystem cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot open `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` is not a disk image ingot can read")]
    Disk {
        path: PathBuf,
        #[source]
        source: DiskError,
    },
    #[error("`{path}` has no partition holding an XFS or ext4 root filesystem")]
    NoRoot { path: PathBuf },
    #[error("`{path}`: the {fs} filesystem of partition {number} is damaged or unsupported")]
    Fs {
        path: PathBuf,
        fs: &'static str,
        number: u32,
        #[source]
        source: FsError,
    },
    #[error("`{path}`: `{member}` cannot be placed in the tree")]
    Place {
        path: PathBuf,
        member: String,
        #[source]
        source: PathError,
    },
    #[error("`{path}`: cannot copy `{member}`")]
    Copy {
        path: PathBuf,
        member: String,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, ImageError>;

/// What a disk boots by legacy BIOS with: the boot code of its MBR and
/// the bytes of its BIOS boot partition (GRUB's core image), carried into
/// the disk `bake` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosBoot {
    /// Bytes 0..440 of the disk: the MBR's boot code.
    pub mbr_code: Vec<u8>,
    /// The BIOS boot partition's bytes, trailing zeros left out.
    pub partition: Vec<u8>,
    /// Where the partition starts on the base's disk, in 512-byte sectors.
    pub first_lba: u64,
    pub last_lba: u64,
}

/// The most bytes of a BIOS boot partition read (GRUB's core image is
/// tens of KiB; the partition is usually 1 MiB).
pub const MAX_BIOS_BOOT: u64 = 8 << 20;

/// A disk image opened, its partition table read.
pub struct Image {
    path: PathBuf,
    format: DiskFormat,
    table: gpt::Table,
}

/// One filesystem found on the image.
struct Candidate {
    part: Partition,
    fs: &'static str,
}

impl Image {
    /// Open `path`, a disk image in `format`, and read its GPT.
    pub fn open(path: &Path, format: DiskFormat) -> Result<Image> {
        let mut disk = open_view(path, format)?;
        let table = gpt::read_disk(&mut *disk).map_err(|source| ImageError::Disk {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Image {
            path: path.to_path_buf(),
            format,
            table,
        })
    }

    /// A reader of partition `p`'s filesystem `fs`.
    fn open_fs(&self, p: &Partition, fs: &'static str) -> Result<Box<dyn ReadFs>> {
        let disk = open_view(&self.path, self.format)?;
        let r: std::result::Result<Box<dyn ReadFs>, FsError> = match fs {
            "xfs" => super::xfs::Fs::open(disk, p.offset(), p.size())
                .map(|f| Box::new(f) as Box<dyn ReadFs>),
            _ => super::ext4::Fs::open(disk, p.offset(), p.size())
                .map(|f| Box::new(f) as Box<dyn ReadFs>),
        };
        r.map_err(|source| self.fs_err(p, fs, source))
    }

    fn fs_err(&self, p: &Partition, fs: &'static str, source: FsError) -> ImageError {
        ImageError::Fs {
            path: self.path.clone(),
            fs,
            number: p.number,
            source,
        }
    }

    /// The partitions holding XFS or ext4, by their magic.
    fn candidates(&self) -> Result<Vec<Candidate>> {
        let mut disk = open_view(&self.path, self.format)?;
        let mut out = Vec::new();
        for p in &self.table.partitions {
            if p.type_guid == gpt::TYPE_ESP || p.type_guid == gpt::TYPE_BIOS_BOOT {
                continue;
            }
            let kind = super::sniff(&mut *disk, p.offset()).map_err(|source| ImageError::Open {
                path: self.path.clone(),
                source,
            })?;
            if let Some(fs @ ("xfs" | "ext4")) = kind {
                out.push(Candidate {
                    part: p.clone(),
                    fs,
                });
            }
        }
        Ok(out)
    }

    /// The MBR boot code and the BIOS boot partition, when the disk has
    /// both (boot code not all zeros, a partition of the BIOS boot type
    /// of at most [`MAX_BIOS_BOOT`] bytes).
    pub fn bios_boot(&self) -> Result<Option<BiosBoot>> {
        let Some(p) = self
            .table
            .partitions
            .iter()
            .find(|p| p.type_guid == gpt::TYPE_BIOS_BOOT)
        else {
            return Ok(None);
        };
        let mut disk = open_view(&self.path, self.format)?;
        let io = |source| ImageError::Open {
            path: self.path.clone(),
            source,
        };
        let mut mbr_code = vec![0u8; 440];
        disk.read_at(&mut mbr_code, 0).map_err(io)?;
        if mbr_code.iter().all(|&b| b == 0) || p.size() > MAX_BIOS_BOOT {
            return Ok(None);
        }
        let mut partition = vec![0u8; p.size() as usize];
        disk.read_at(&mut partition, p.offset()).map_err(io)?;
        let used = partition.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        partition.truncate(used);
        Ok(Some(BiosBoot {
            mbr_code,
            partition,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
        }))
    }

    /// Whether a partition holds XFS.
    pub fn holds_xfs(&self) -> Result<bool> {
        Ok(self.candidates()?.iter().any(|c| c.fs == "xfs"))
    }

    /// The root partition (see the module doc) and its filesystem's name.
    pub fn root(&self) -> Result<(Partition, &'static str)> {
        let cands = self.candidates()?;
        let mut ids = Vec::new();
        let mut spec = None;
        for c in &cands {
            let mut fs = self.open_fs(&c.part, c.fs)?;
            ids.push(fs.ids());
            if spec.is_none() {
                spec = fstab_root(&mut *fs).map_err(|e| self.fs_err(&c.part, c.fs, e))?;
            }
        }
        let pick = |i: usize| Ok((cands[i].part.clone(), cands[i].fs));
        if let Some(spec) = spec {
            for (i, c) in cands.iter().enumerate() {
                if names(&spec, c, &ids[i]) {
                    return pick(i);
                }
            }
        }
        for (i, c) in cands.iter().enumerate() {
            if c.part.name == "/" || ids[i].1 == b"/" {
                return pick(i);
            }
        }
        match (0..cands.len()).max_by_key(|&i| cands[i].part.size()) {
            Some(i) => pick(i),
            None => Err(ImageError::NoRoot {
                path: self.path.clone(),
            }),
        }
    }

    /// The root filesystem, read into a new tree whose spill store is in
    /// `spill_dir`.
    pub fn read_root(&self, spill_dir: Option<&Path>) -> Result<Tree> {
        let (part, fs_name) = self.root()?;
        let mut fs = self.open_fs(&part, fs_name)?;
        let mut tree = match spill_dir {
            Some(d) => Tree::with_spill_dir(d),
            None => Tree::new(),
        };
        // The bytes of a raw image (or a fixed VHD) are the disk's.
        let host = match self.format {
            DiskFormat::Raw | DiskFormat::Vhd => {
                let abs = std::fs::canonicalize(&self.path).map_err(|source| ImageError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                Some(tree.add_host_source(abs))
            }
            _ => None,
        };
        let mut copy = Copy {
            image: self,
            fs: &mut *fs,
            fs_name,
            part: &part,
            host,
        };
        copy.walk(&mut tree)?;
        self.read_esp(&mut tree, host)?;
        Ok(tree)
    }

    /// The ESP's files (the first FAT partition of the ESP type) under
    /// `/boot/efi`, as AL2023 mounts it: owned by root, mode 0700
    /// (`umask=0077`).
    fn read_esp(&self, tree: &mut Tree, host: Option<SourceId>) -> Result<()> {
        let Some(p) = self
            .table
            .partitions
            .iter()
            .find(|p| p.type_guid == gpt::TYPE_ESP)
        else {
            return Ok(());
        };
        let mut disk = open_view(&self.path, self.format)?;
        let bad = |source| self.fs_err(p, "vfat", source);
        if super::sniff(&mut *disk, p.offset())
            .map_err(|source| bad(FsError::Io { offset: 0, source }))?
            != Some("vfat")
        {
            return Ok(());
        }
        let entries = super::fat::Fat::open(&mut *disk, p.offset(), p.size())
            .and_then(|mut f| f.entries())
            .map_err(bad)?;
        let dir_meta = |mtime| Meta::new(0o700, 0, 0, mtime);
        let place = |e: PathError, member: &[u8]| ImageError::Place {
            path: self.path.clone(),
            member: String::from_utf8_lossy(member).into_owned(),
            source: e,
        };
        let esp = match tree.resolve("/boot/efi", true) {
            Ok(id) if tree.node(id).is_dir() => id,
            _ => tree
                .mkdir_p("/boot/efi", &dir_meta(0))
                .map_err(|e| place(e, b"/boot/efi"))?,
        };
        for e in entries {
            let member = [b"/boot/efi/".as_slice(), &e.path].concat();
            let (parent, name) = match e.path.iter().rposition(|&c| c == b'/') {
                Some(i) => (
                    tree.resolve(&member[..10 + i], false)
                        .map_err(|x| place(x, &member))?,
                    &e.path[i + 1..],
                ),
                None => (esp, &e.path[..]),
            };
            let kind = if e.dir {
                Kind::Dir(Default::default())
            } else if let Some(source) = host {
                Kind::File(FileData {
                    size: e.size,
                    extents: e
                        .data
                        .iter()
                        .map(|m| Extent {
                            file_offset: m.file_offset,
                            len: m.len,
                            source,
                            source_offset: m.disk_offset,
                        })
                        .collect(),
                })
            } else {
                let mut r = MapReader {
                    disk: &mut *disk,
                    map: &e.data,
                    size: e.size,
                    pos: 0,
                };
                Kind::File(tree.spill(&mut r).map_err(|source| ImageError::Copy {
                    path: self.path.clone(),
                    member: String::from_utf8_lossy(&member).into_owned(),
                    source,
                })?)
            };
            let meta = dir_meta(e.mtime);
            tree.insert(parent, name, Node { meta, kind })
                .map_err(|x| place(x, &member))?;
        }
        Ok(())
    }
}

fn open_view(path: &Path, format: DiskFormat) -> Result<Box<dyn DiskRead>> {
    let file = crate::input::open_regular(path).map_err(|e| ImageError::Open {
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    view::open(file, format).map_err(|source| ImageError::Disk {
        path: path.to_path_buf(),
        source,
    })
}

/// Does fstab's `spec` name candidate `c` (with filesystem ids `ids`)?
fn names(spec: &str, c: &Candidate, ids: &([u8; 16], Vec<u8>)) -> bool {
    let uuid = uuid::Uuid::from_bytes(ids.0).hyphenated().to_string();
    let partuuid = c.part.guid.to_string();
    let (key, value) = match spec.split_once('=') {
        Some((k, v)) => (k, v.trim_matches('"')),
        None => match spec.strip_prefix("/dev/disk/by-") {
            Some(rest) => match rest.split_once('/') {
                Some(("uuid", v)) => ("UUID", v),
                Some(("label", v)) => ("LABEL", v),
                Some(("partuuid", v)) => ("PARTUUID", v),
                _ => return false,
            },
            None => return false,
        },
    };
    match key {
        "UUID" => value.eq_ignore_ascii_case(&uuid),
        "LABEL" => value.as_bytes() == ids.1,
        "PARTUUID" => value.eq_ignore_ascii_case(&partuuid),
        _ => false,
    }
}

/// What `/etc/fstab` of `fs` mounts at `/`, when it has one.
fn fstab_root(fs: &mut dyn ReadFs) -> std::result::Result<Option<String>, FsError> {
    let Some(ino) = lookup(fs, b"/etc/fstab")? else {
        return Ok(None);
    };
    let st = fs.stat(ino)?;
    if st.kind != FileType::File || st.size > 1 << 20 {
        return Ok(None);
    }
    let text = read_small(fs, ino, st.size)?;
    Ok(String::from_utf8_lossy(&text).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 2 && !f[0].starts_with('#') && f[1] == "/").then(|| f[0].to_string())
    }))
}

/// The inode at `path` (no symlinks followed), if any.
fn lookup(fs: &mut dyn ReadFs, path: &[u8]) -> std::result::Result<Option<u64>, FsError> {
    let mut ino = fs.root_ino();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if fs.stat(ino)?.kind != FileType::Dir {
            return Ok(None);
        }
        match fs.read_dir(ino)?.into_iter().find(|(n, _)| n == c) {
            Some((_, i)) => ino = i,
            None => return Ok(None),
        }
    }
    Ok(Some(ino))
}

fn read_small(fs: &mut dyn ReadFs, ino: u64, size: u64) -> std::result::Result<Vec<u8>, FsError> {
    let mut out = vec![0u8; size as usize];
    for m in fs.file_map(ino)? {
        let at = m.file_offset as usize;
        fs.disk()
            .read_at(&mut out[at..at + m.len as usize], m.disk_offset)
            .map_err(|source| FsError::Io {
                offset: m.disk_offset,
                source,
            })?;
    }
    Ok(out)
}

/// One filesystem being copied into a tree.
struct Copy<'a> {
    image: &'a Image,
    fs: &'a mut dyn ReadFs,
    fs_name: &'static str,
    part: &'a Partition,
    host: Option<SourceId>,
}

impl Copy<'_> {
    fn fs_err(&self, e: FsError) -> ImageError {
        self.image.fs_err(self.part, self.fs_name, e)
    }

    fn walk(&mut self, tree: &mut Tree) -> Result<()> {
        let root = self.fs.root_ino();
        let st = self.fs.stat(root).map_err(|e| self.fs_err(e))?;
        if st.kind != FileType::Dir {
            return Err(self.fs_err(super::corrupt("the root inode is not a directory")));
        }
        let meta = self.meta(&st)?;
        tree.set_meta(NodeId::ROOT, meta);
        let mut dirs = HashSet::from([root]);
        let mut links: HashMap<u64, NodeId> = HashMap::new();
        let mut stack = vec![(root, NodeId::ROOT, b"/".to_vec(), 0usize)];
        let mut count = 0usize;
        while let Some((ino, id, path, depth)) = stack.pop() {
            let entries = self.fs.read_dir(ino).map_err(|e| self.fs_err(e))?;
            for (name, child) in entries {
                count += 1;
                if count > MAX_ENTRIES {
                    return Err(
                        self.fs_err(super::corrupt(format!("more than {MAX_ENTRIES} paths")))
                    );
                }
                let mut p = path.clone();
                if p.len() > 1 {
                    p.push(b'/');
                }
                p.extend_from_slice(&name);
                if let Some(&linked) = links.get(&child) {
                    tree.link_entry(id, &name, linked)
                        .map_err(|source| self.place_err(&p, source))?;
                    continue;
                }
                let st = self.fs.stat(child).map_err(|e| self.fs_err(e))?;
                let node = self.node(&st, &p, tree)?;
                let new = tree
                    .insert(id, &name, node)
                    .map_err(|source| self.place_err(&p, source))?;
                if st.kind == FileType::Dir {
                    if !dirs.insert(child) || depth + 1 > MAX_DEPTH {
                        return Err(self.fs_err(super::corrupt(format!(
                            "directory inode {child} is reached twice or too deep (at `{}`)",
                            String::from_utf8_lossy(&p)
                        ))));
                    }
                    stack.push((child, new, p, depth + 1));
                } else if st.nlink > 1 {
                    links.insert(child, new);
                }
            }
        }
        Ok(())
    }

    fn place_err(&self, member: &[u8], source: PathError) -> ImageError {
        ImageError::Place {
            path: self.image.path.clone(),
            member: String::from_utf8_lossy(member).into_owned(),
            source,
        }
    }

    fn meta(&mut self, st: &Stat) -> Result<Meta> {
        let mut m = Meta::new(u32::from(st.mode), st.uid, st.gid, st.mtime);
        m.mtime_nsec = st.mtime_nsec;
        m.xattrs = self.fs.xattrs(st.ino).map_err(|e| self.fs_err(e))?;
        Ok(m)
    }

    fn node(&mut self, st: &Stat, path: &[u8], tree: &mut Tree) -> Result<Node> {
        let meta = self.meta(st)?;
        let (major, minor) = st.rdev;
        let kind = match st.kind {
            FileType::Dir => Kind::Dir(Default::default()),
            FileType::Symlink => {
                Kind::Symlink(self.fs.link_target(st.ino).map_err(|e| self.fs_err(e))?)
            }
            FileType::CharDev => Kind::CharDev { major, minor },
            FileType::BlockDev => Kind::BlockDev { major, minor },
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::File => Kind::File(self.contents(st, path, tree)?),
        };
        Ok(Node { meta, kind })
    }

    /// A regular file's contents: its extents in the image file, or
    /// spilled.
    fn contents(&mut self, st: &Stat, path: &[u8], tree: &mut Tree) -> Result<FileData> {
        let map = self.fs.file_map(st.ino).map_err(|e| self.fs_err(e))?;
        if let Some(source) = self.host {
            return Ok(FileData {
                size: st.size,
                extents: map
                    .iter()
                    .map(|m| Extent {
                        file_offset: m.file_offset,
                        len: m.len,
                        source,
                        source_offset: m.disk_offset,
                    })
                    .collect(),
            });
        }
        let mut r = MapReader {
            disk: self.fs.disk(),
            map: &map,
            size: st.size,
            pos: 0,
        };
        tree.spill(&mut r).map_err(|source| ImageError::Copy {
            path: self.image.path.clone(),
            member: String::from_utf8_lossy(path).into_owned(),
            source,
        })
    }
}

/// A file's bytes read through its extent map, holes as zeros.
struct MapReader<'a> {
    disk: &'a mut dyn DiskRead,
    map: &'a [Mapped],
    size: u64,
    pos: u64,
}

impl Read for MapReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - self.pos);
        // The extent holding `pos`, or the next one (a hole until it).
        let next = self.map.iter().find(|m| m.file_offset + m.len > self.pos);
        let n = match next {
            Some(m) if m.file_offset <= self.pos => {
                let k = want.min(m.file_offset + m.len - self.pos);
                let at = m.disk_offset + (self.pos - m.file_offset);
                self.disk.read_at(&mut buf[..k as usize], at)?;
                k
            }
            Some(m) => {
                let k = want.min(m.file_offset - self.pos);
                buf[..k as usize].fill(0);
                k
            }
            None => {
                buf[..want as usize].fill(0);
                want
            }
        };
        self.pos += n;
        Ok(n as usize)
    }
}
