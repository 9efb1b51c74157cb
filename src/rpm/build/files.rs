//! Step 3 of a build: the package's entries and the header's file tags.
//!
//! In: the [`Plan`]'s entries ([`entries`]; [`sources`] names the ones
//! the [`scan`](super::scan) reads), then what the scan learnt about them
//! ([`collect`]). Out: [`Files`]: one [`Entry`] per path in path order
//! (the order of the header's file arrays; the archive's members follow
//! it), with sizes and SHA-256 digests, the hard link sets, the installed
//! size and whether it needs rpm's 64-bit sizes; and from it the header's
//! file tags ([`Files::tags`]).
//!
//! It never reads the bytes of a file (the scan does), and never takes a
//! mode, an owner or a time from disk: modes and owners come from the plan,
//! every mtime is the source date. The only thing it asks the disk is the
//! real path of sources that share an inode, to tell a hard link set from
//! one source packaged twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use ::rpm::{FileFlags, FileVerifyFlags};
use sha2::{Digest, Sha256};

use super::rpm_err;
use super::scan::{Scan, Source};
use crate::error::{Error, Result};
use crate::rpm::header::{NewEntry, Value, tag};
use crate::rpm::plan::{self, Content, Kind, Plan};
use crate::spec::package::{Config, PackageSpec};

const S_IFREG: u16 = 0o100000;
const S_IFDIR: u16 = 0o040000;
const S_IFLNK: u16 = 0o120000;

/// Where a member's bytes come from.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    None,
    Source(&'a Path),
    Bytes(&'a [u8]),
}

/// One entry of the package, as the header and the archive describe it.
pub(super) struct Entry<'a> {
    /// `./usr/bin/x`
    pub(super) cpio: String,
    /// `/usr/bin/`
    pub(super) dir: String,
    pub(super) base: String,
    /// File type and permission bits.
    pub(super) mode: u16,
    pub(super) user: &'a str,
    pub(super) group: &'a str,
    pub(super) flags: FileFlags,
    pub(super) verify: FileVerifyFlags,
    pub(super) caps: Option<String>,
    pub(super) link: &'a str,
    pub(super) body: Body<'a>,
    /// A regular file in the payload: it has a digest.
    pub(super) regular: bool,
    pub(super) ghost: bool,
    pub(super) size: u64,
    pub(super) digest: String,
}

/// A member of a hard link set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    pub(super) inode: u32,
    pub(super) count: u32,
    /// The set's last member (in path order) carries the bytes.
    pub(super) has_content: bool,
}

/// Every entry of the package, complete.
pub(super) struct Files<'a> {
    /// In path order.
    pub(super) entries: Vec<Entry<'a>>,
    /// The scanned source files, by index into `entries`.
    pub(super) scans: BTreeMap<usize, Scan>,
    /// The members of hard link sets, by index into `entries`.
    pub(super) links: BTreeMap<usize, Link>,
    /// Bytes the files take once installed (a hard link set counts once).
    pub(super) installed: u64,
    /// `installed` passes 4 GiB: 64-bit size tags and stripped cpio headers.
    pub(super) large: bool,
}

/// Collapse repeated slashes and drop a trailing one.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// Every entry of the plan, in path order, without sizes and digests yet.
/// An error when a file's capabilities do not parse.
pub(super) fn entries<'a>(spec: &PackageSpec, plan: &'a Plan) -> Result<Vec<Entry<'a>>> {
    plan.entries.values().map(|e| entry(spec, e)).collect()
}

fn entry<'a>(spec: &PackageSpec, e: &'a plan::Entry) -> Result<Entry<'a>> {
    let cpio = format!(".{}", normalize(&e.path));
    let (parent, base) = cpio[1..].rsplit_once('/').unwrap_or(("", &cpio[1..]));
    let dir = format!("{parent}/");
    let config = match e.config {
        Config::No => FileFlags::empty(),
        Config::Yes => FileFlags::CONFIG,
        Config::NoReplace => FileFlags::CONFIG | FileFlags::NOREPLACE,
    };
    let mut r = Entry {
        base: base.to_string(),
        cpio,
        dir,
        mode: 0,
        user: &e.user,
        group: &e.group,
        flags: FileFlags::empty(),
        verify: FileVerifyFlags::ALL_FLAGS,
        caps: None,
        link: "",
        body: Body::None,
        regular: false,
        ghost: false,
        size: 0,
        digest: String::new(),
    };
    match &e.kind {
        Kind::File(content) => {
            r.mode = S_IFREG | e.mode;
            r.flags = config;
            if e.doc {
                r.flags |= FileFlags::DOC;
            }
            r.caps = caps(spec, &e.caps)?;
            r.regular = true;
            r.body = match content {
                Content::Source(src) => Body::Source(src),
                Content::Generated(bytes) => Body::Bytes(bytes),
            };
        }
        Kind::Dir => r.mode = S_IFDIR | e.mode,
        Kind::Symlink(target) => {
            r.mode = S_IFLNK | 0o777;
            r.link = target;
            r.body = Body::Bytes(target.as_bytes());
        }
        Kind::Ghost => {
            r.mode = S_IFREG | e.mode;
            r.flags = config | FileFlags::GHOST;
            r.verify = FileVerifyFlags::ALL_FLAGS
                & !(FileVerifyFlags::FILEDIGEST
                    | FileVerifyFlags::FILESIZE
                    | FileVerifyFlags::LINKTO
                    | FileVerifyFlags::MTIME);
            r.ghost = true;
        }
    }
    Ok(r)
}

/// Capabilities as rpm writes them (`cap_net_bind_service=ep`).
fn caps(spec: &PackageSpec, c: &Option<String>) -> Result<Option<String>> {
    c.as_ref()
        .map(|c| {
            ::rpm::FileCaps::from_str(c)
                .map(|c| c.to_string())
                .map_err(|e| {
                    rpm_err(spec)(::rpm::Error::InvalidCapabilities {
                        caps: e.to_string(),
                    })
                })
        })
        .transpose()
}

/// The entries the scan reads: regular files whose bytes come from a file
/// on disk.
pub(super) fn sources<'a>(entries: &'a [Entry]) -> Vec<Source<'a>> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(index, f)| match f.body {
            Body::Source(path) if f.regular => Some(Source {
                index,
                path,
                mode: f.mode & 0o7777,
                dest: &f.cpio[1..],
            }),
            _ => None,
        })
        .collect()
}

/// Complete the entries: sizes and digests (from `scans` for source files,
/// computed here for generated bytes and symlinks), hard link sets, the
/// installed size.
pub(super) fn collect<'a>(
    spec: &PackageSpec,
    mut entries: Vec<Entry<'a>>,
    scans: BTreeMap<usize, Scan>,
) -> Result<Files<'a>> {
    for (&i, s) in &scans {
        entries[i].size = s.size;
        entries[i].digest = hex::encode(s.sha256);
    }
    for f in &mut entries {
        match f.body {
            Body::Bytes(b) => {
                f.size = b.len() as u64;
                if f.regular {
                    f.digest = hex::encode(Sha256::digest(b));
                }
            }
            Body::None | Body::Source(_) => {}
        }
    }
    let links = hard_links(spec, &entries, &scans)?;
    let installed: u64 = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| links.get(i).is_none_or(|l| l.has_content))
        .map(|(_, f)| f.size)
        .sum();
    Ok(Files {
        entries,
        scans,
        links,
        installed,
        large: installed > u64::from(u32::MAX),
    })
}

/// Hard links: source files that are one inode on disk (from distinct
/// paths: one source packaged twice is two files). Members of a set must
/// agree on metadata and content.
fn hard_links(
    spec: &PackageSpec,
    entries: &[Entry],
    scans: &BTreeMap<usize, Scan>,
) -> Result<BTreeMap<usize, Link>> {
    let err = rpm_err(spec);
    let bad = |reason| {
        err(::rpm::Error::InvalidFileOptions {
            method: "PackageBuilder::build",
            reason,
        })
    };
    let mut links: BTreeMap<usize, Link> = BTreeMap::new();
    let mut by_inode: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
    for (i, s) in scans {
        by_inode.entry((s.dev, s.ino)).or_default().push(*i);
    }
    for members in by_inode.values().filter(|m| m.len() > 1) {
        let mut sources = BTreeSet::new();
        for &i in members {
            if let Body::Source(src) = entries[i].body {
                let real = std::fs::canonicalize(src).map_err(|source| Error::Read {
                    path: src.to_path_buf(),
                    source,
                })?;
                sources.insert(real);
            }
        }
        if sources.len() != members.len() {
            continue;
        }
        let first = &entries[members[0]];
        for &i in &members[1..] {
            let f = &entries[i];
            if f.mode != first.mode
                || f.user != first.user
                || f.group != first.group
                || f.flags != first.flags
                || f.verify != first.verify
                || f.link != first.link
                || f.caps != first.caps
            {
                return Err(bad(
                    "hardlink members must have identical effective metadata",
                ));
            }
            if f.size != first.size || f.digest != first.digest {
                return Err(bad("hardlink members must have identical content"));
            }
        }
        let inode = u32::try_from(members[0] + 1)
            .map_err(|_| bad("hardlink inode exceeds RPM's 32-bit authority"))?;
        let count = members.len() as u32;
        let last = members[members.len() - 1];
        for &i in members {
            links.insert(
                i,
                Link {
                    inode,
                    count,
                    has_content: i == last,
                },
            );
        }
    }
    Ok(links)
}

impl Files<'_> {
    /// The inode number of entry `i` in the header and the archive: its
    /// position from 1, or its hard link set's.
    pub(super) fn inode(&self, i: usize) -> u32 {
        self.links.get(&i).map_or(i as u32 + 1, |l| l.inode)
    }

    /// Some file is `%config`.
    pub(super) fn has_config(&self) -> bool {
        self.entries
            .iter()
            .any(|f| f.flags.contains(FileFlags::CONFIG))
    }

    /// Some file has capabilities.
    pub(super) fn has_caps(&self) -> bool {
        self.entries.iter().any(|f| f.caps.is_some())
    }

    /// The installed size and the file arrays; every mtime is `mtime`.
    pub(super) fn tags(&self, mtime: u32) -> Vec<NewEntry> {
        let files = &self.entries;
        let mut h = vec![if self.large {
            NewEntry {
                tag: tag::LONGSIZE,
                value: Value::Int64(vec![self.installed]),
            }
        } else {
            NewEntry::int32(tag::SIZE, vec![self.installed as u32])
        }];
        if !files.is_empty() {
            let dirs: BTreeSet<&str> = files.iter().map(|f| f.dir.as_str()).collect();
            let dir_index: BTreeMap<&str, u32> = dirs
                .iter()
                .enumerate()
                .map(|(i, d)| (*d, i as u32))
                .collect();
            let col = |f: &dyn Fn(&Entry) -> String| files.iter().map(f).collect::<Vec<_>>();
            let int32 =
                |t, f: &dyn Fn(&Entry) -> u32| NewEntry::int32(t, files.iter().map(f).collect());
            h.push(if self.large {
                NewEntry {
                    tag: tag::LONGFILESIZES,
                    value: Value::Int64(files.iter().map(|f| f.size).collect()),
                }
            } else {
                int32(tag::FILESIZES, &|f| f.size as u32)
            });
            h.extend([
                NewEntry {
                    tag: tag::FILEMODES,
                    value: Value::Int16(files.iter().map(|f| f.mode).collect()),
                },
                NewEntry {
                    tag: tag::FILERDEVS,
                    value: Value::Int16(vec![0; files.len()]),
                },
                NewEntry::int32(tag::FILEMTIMES, vec![mtime; files.len()]),
                NewEntry::strings(tag::FILEDIGESTS, col(&|f| f.digest.clone())),
                NewEntry::strings(tag::FILELINKTOS, col(&|f| f.link.to_string())),
                int32(tag::FILEFLAGS, &|f| f.flags.bits()),
                NewEntry::strings(tag::FILEUSERNAME, col(&|f| f.user.to_string())),
                NewEntry::strings(tag::FILEGROUPNAME, col(&|f| f.group.to_string())),
                int32(tag::FILEDEVICES, &|f| u32::from(!f.ghost)),
                NewEntry::int32(
                    tag::FILEINODES,
                    (0..files.len()).map(|i| self.inode(i)).collect(),
                ),
                int32(tag::DIRINDEXES, &|f| dir_index[f.dir.as_str()]),
                NewEntry::strings(tag::FILELANGS, vec![String::new(); files.len()]),
                int32(tag::FILEVERIFYFLAGS, &|f| f.verify.bits()),
                NewEntry::strings(tag::BASENAMES, col(&|f| f.base.clone())),
                NewEntry::strings(tag::DIRNAMES, dirs.iter().map(|d| d.to_string()).collect()),
            ]);
            if self.has_caps() {
                h.push(NewEntry::strings(
                    tag::FILECAPS,
                    col(&|f| f.caps.clone().unwrap_or_default()),
                ));
            }
        }
        // SHA-256, as rpm's PGPHASHALGO numbers it.
        h.push(NewEntry::int32(tag::FILEDIGESTALGO, vec![8]));
        h
    }
}
