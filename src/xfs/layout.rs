//! The layout pass: the geometry mkfs.xfs would pick for the size, inode
//! numbers, what each inode holds and where every block goes.
//!
//! Geometry (mkfs.xfs's defaults for one plain device from 300 MiB to
//! 4 TiB): 4 AGs of a quarter of the disk each, rounded up (the last AG
//! takes what is left); an internal log of `max(64 MiB, size / 2048)` in
//! the middle AG right after its headers; in every AG the four header
//! sectors in block 0, the roots of the free-space-by-block,
//! by-size, inode, free-inode and refcount btrees in blocks 1 to 5, and
//! four blocks for the AG free list after them (after the log in the
//! log's AG).
//!
//! Inodes: all in AG 0, in 64-inode chunks from block 16 (where
//! `xfs_repair` expects the root inode: inode 128), numbered in
//! [`Tree::walk`] order: 128 the root, 129 and 130 the realtime bitmap
//! and summary inodes mkfs.xfs always makes, then the tree (hard links
//! share the number of their first name). Extra inode btree blocks follow
//! the chunks. Then blocks are handed out front to back in inode order
//! (each inode: its attribute leaf block, then its data), AG after AG,
//! skipping the headers and the log, so the write pass goes front to back;
//! each AG keeps free what the kernel reserves in it at mount.

use crate::rootfs::{Kind, NodeId, Tree};

use super::attr::{self, Item};
use super::dir::{Dir, Entry, Form};
use super::format::*;
use super::{Options, XfsError};

/// Blocks before the free list: the header block and five btree roots.
pub(crate) const PREALLOC: u64 = 6;
pub(crate) const AGFL_BLOCKS: u64 = 4;
/// The first inode chunk (`xfs_ialloc_calc_rootino`: the roots, the
/// minimum free list, rounded up to the chunk alignment).
pub(crate) const FIRST_CHUNK: u64 = 16;
pub(crate) const ROOT_INO: u64 = FIRST_CHUNK * INODES_PER_BLOCK;
/// The smallest filesystem made (what mkfs.xfs accepts with its default
/// log).
pub(crate) const MIN_BLOCKS: u64 = (300 << 20) / BLOCK;
/// Above this the geometry would need more than 4 AGs.
pub(crate) const MAX_BLOCKS: u64 = (4 << 40) / BLOCK - 1;
/// The longest symlink target (`XFS_SYMLINK_MAXLEN`).
const SYMLINK_MAX: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geo {
    pub dblocks: u64,
    pub agcount: u32,
    pub agblocks: u64,
    pub agblklog: u8,
    pub logblocks: u64,
}

impl Geo {
    pub fn new(dblocks: u64) -> Geo {
        let agcount = 4;
        let agblocks = dblocks.div_ceil(4);
        let agblklog = (64 - (agblocks - 1).leading_zeros()) as u8;
        let logblocks = ((64 << 20) / BLOCK).max(dblocks / 2048);
        Geo {
            dblocks,
            agcount,
            agblocks,
            agblklog,
            logblocks,
        }
    }

    pub fn log_ag(&self) -> u32 {
        self.agcount / 2
    }

    pub fn ag_start(&self, ag: u32) -> u64 {
        u64::from(ag) * self.agblocks
    }

    pub fn ag_len(&self, ag: u32) -> u64 {
        self.agblocks.min(self.dblocks - self.ag_start(ag))
    }

    /// A linear block number as XFS addresses it (AG number in the high
    /// bits).
    pub fn fsb(&self, linear: u64) -> u64 {
        let ag = linear / self.agblocks;
        (ag << self.agblklog) | (linear % self.agblocks)
    }

    pub fn log_start(&self) -> u64 {
        self.ag_start(self.log_ag()) + PREALLOC
    }

    /// Blocks left free at the end of every AG: what the kernel sets
    /// aside per AG at mount for the free-inode and refcount btrees to
    /// grow into (`xfs_ag_resv_init`: their largest size for the AG,
    /// `xfs_btree_calc_size` with half-full blocks), and a little more.
    /// Without it a full AG mounts with "ENOSPC reserving per-AG metadata
    /// pool".
    pub fn ag_reserve(&self) -> u64 {
        fn size(leaf_min: u64, node_min: u64, records: u64) -> u64 {
            let mut n = records.div_ceil(leaf_min).max(1);
            let mut total = n;
            while n > 1 {
                n = n.div_ceil(node_min);
                total += n;
            }
            total
        }
        let node_min = (BLOCK - 56) / 8 / 2;
        let refcount = size((BLOCK - 56) / 12 / 2, node_min, self.agblocks);
        let finobt = size(
            (BLOCK - 56) / 16 / 2,
            node_min,
            self.agblocks * INODES_PER_BLOCK / INODES_PER_CHUNK,
        );
        refcount + finobt + 16
    }

    /// Where AG `ag`'s free list blocks start.
    pub fn agfl_start(&self, ag: u32) -> u64 {
        if ag == self.log_ag() {
            PREALLOC + self.logblocks
        } else {
            PREALLOC
        }
    }
}

/// What an inode holds besides its metadata.
#[derive(Debug)]
pub(crate) enum Body {
    Dir(Dir),
    /// File block runs (first block, count) with data; the rest are holes.
    File {
        id: NodeId,
        runs: Vec<(u64, u64)>,
    },
    Symlink(Vec<u8>),
    /// A device number as XFS stores it (`sysv` encoding), 0 for FIFOs
    /// and sockets.
    Dev(u32),
    /// The realtime bitmap and summary inodes: empty files.
    Empty,
}

#[derive(Debug)]
pub(crate) struct Ino {
    pub path: String,
    /// Type and permission bits.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub sec: i64,
    pub nsec: u32,
    pub size: u64,
    pub flags: u16,
    pub body: Body,
    pub attrs: Vec<Item>,
    /// Attributes in short form (else, when there are any, one leaf block).
    pub attr_sf: bool,
    /// Bytes of the data fork in the inode.
    pub avail: usize,
}

impl Ino {
    /// Is the data fork stored in the inode (short-form directory,
    /// inline symlink)?
    pub fn local(&self) -> bool {
        match &self.body {
            Body::Dir(d) => d.form == Form::Short,
            Body::Symlink(t) => t.len() <= self.avail,
            _ => false,
        }
    }
}

/// The tree as inodes, numbered.
pub(crate) struct Content<'t> {
    pub tree: &'t Tree,
    pub inodes: Vec<Ino>,
    /// Blocks of data, directory, symlink and attribute blocks: a lower
    /// bound for sizing.
    pub data_blocks: u64,
}

fn ftype(k: &Kind) -> u8 {
    match k {
        Kind::Dir(_) => FT_DIR,
        Kind::File(_) => FT_REG,
        Kind::Symlink(_) => FT_SYMLINK,
        Kind::CharDev { .. } => FT_CHR,
        Kind::BlockDev { .. } => FT_BLK,
        Kind::Fifo => FT_FIFO,
        Kind::Socket => FT_SOCK,
    }
}

fn type_bits(k: &Kind) -> u16 {
    match k {
        Kind::Dir(_) => 0o040000,
        Kind::File(_) => 0o100000,
        Kind::Symlink(_) => 0o120000,
        Kind::CharDev { .. } => 0o020000,
        Kind::BlockDev { .. } => 0o060000,
        Kind::Fifo => 0o010000,
        Kind::Socket => 0o140000,
    }
}

impl<'t> Content<'t> {
    pub fn gather(tree: &'t Tree, opts: &Options) -> Result<Content<'t>, XfsError> {
        // Numbering: index 0 the root, 1 and 2 the realtime inodes.
        let mut index = vec![u32::MAX; tree.arena_len()];
        let mut order: Vec<(NodeId, Vec<u8>)> = Vec::new();
        for (path, id) in tree.walk() {
            if index[id.index()] == u32::MAX {
                index[id.index()] = if id == NodeId::ROOT {
                    0
                } else {
                    order.len() as u32 + 3
                };
                if id != NodeId::ROOT {
                    order.push((id, path));
                }
            }
        }
        if !tree.node(NodeId::ROOT).is_dir() {
            return Err(XfsError::RootNotADirectory);
        }
        let ino_of = |id: NodeId| ROOT_INO + u64::from(index[id.index()]);
        let mut inodes = Vec::with_capacity(order.len() + 3);
        inodes.push(node_inode(tree, NodeId::ROOT, b"/", &ino_of)?);
        for rt in 0..2 {
            inodes.push(Ino {
                path: String::new(),
                mode: 0o100000,
                uid: 0,
                gid: 0,
                nlink: 1,
                sec: i64::from(opts.timestamp),
                nsec: 0,
                size: 0,
                flags: if rt == 0 { DIFLAG_NEWRTBM } else { 0 },
                body: Body::Empty,
                attrs: Vec::new(),
                attr_sf: false,
                avail: LITERAL,
            });
        }
        for (id, path) in &order {
            inodes.push(node_inode(tree, *id, path, &ino_of)?);
        }
        let data_blocks = inodes.iter().map(blocks_of).sum();
        Ok(Content {
            tree,
            inodes,
            data_blocks,
        })
    }
}

/// Blocks an inode takes outside the inode table.
fn blocks_of(i: &Ino) -> u64 {
    let attr = u64::from(!i.attrs.is_empty() && !i.attr_sf);
    attr + match &i.body {
        Body::Dir(d) => d.sections().iter().map(|s| s.1).sum(),
        Body::File { runs, .. } => runs.iter().map(|r| r.1).sum(),
        Body::Symlink(_) => u64::from(!i.local()),
        _ => 0,
    }
}

fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// One tree node as an inode.
fn node_inode(
    tree: &Tree,
    id: NodeId,
    path: &[u8],
    ino_of: &dyn Fn(NodeId) -> u64,
) -> Result<Ino, XfsError> {
    let node = tree.node(id);
    let shown = String::from_utf8_lossy(path).into_owned();
    let attrs = attr::gather(&node.meta.xattrs, &shown)?;
    let is_dev = matches!(
        node.kind,
        Kind::CharDev { .. } | Kind::BlockDev { .. } | Kind::Fifo | Kind::Socket
    );
    // The attribute fork: short form when it fits beside the data fork's
    // least: a device's 8 bytes; the extents of a directory in any form
    // (data, leaf and free sections, one split at an AG's end) or of a
    // file (one run, one split); a remote symlink's one extent.
    let min_data = match &node.kind {
        _ if is_dev => 8,
        Kind::Dir(_) => 64,
        Kind::File(_) => 32,
        _ => 16,
    };
    let (attr_sf, avail) = if attrs.is_empty() {
        (false, LITERAL)
    } else {
        match attr::sf_size(&attrs) {
            Some(s) if round8(s) + min_data <= LITERAL => {
                (true, if is_dev { 8 } else { LITERAL - round8(s) })
            }
            _ => {
                attr::leaf_check(&attrs, &shown)?;
                (false, if is_dev { 8 } else { LITERAL - 16 })
            }
        }
    };
    let (body, size) = match &node.kind {
        Kind::Dir(d) => {
            let mut entries = Vec::with_capacity(d.len());
            for (name, child) in d.entries() {
                if name.len() > 255 {
                    return Err(XfsError::NameTooLong {
                        path: format!("{shown}/{}", String::from_utf8_lossy(name)),
                    });
                }
                entries.push(Entry {
                    name: name.clone(),
                    ino: ino_of(*child),
                    ftype: ftype(&tree.node(*child).kind),
                });
            }
            let parent = ino_of(tree.slots[id.index()].parent);
            let dir = Dir::new(parent, entries, avail);
            let size = dir.size();
            (Body::Dir(dir), size)
        }
        Kind::File(data) => {
            let runs = file_runs(data, avail / 16 - 1);
            (Body::File { id, runs }, data.size)
        }
        Kind::Symlink(t) => {
            if t.is_empty() || t.len() > SYMLINK_MAX {
                return Err(XfsError::BadSymlink {
                    path: shown,
                    len: t.len(),
                });
            }
            (Body::Symlink(t.clone()), t.len() as u64)
        }
        Kind::CharDev { major, minor } | Kind::BlockDev { major, minor } => {
            (Body::Dev((minor & 0x3ffff) | (major << 18)), 0)
        }
        Kind::Fifo | Kind::Socket => (Body::Dev(0), 0),
    };
    let m = &node.meta;
    Ok(Ino {
        path: shown,
        mode: type_bits(&node.kind) | (m.mode & 0o7777),
        uid: m.uid,
        gid: m.gid,
        nlink: tree.nlink(id),
        sec: m.mtime,
        nsec: m.mtime_nsec,
        size,
        flags: 0,
        body,
        attrs,
        attr_sf,
        avail,
    })
}

/// The file blocks holding data, as runs; when there are more than `cap`
/// (the extents the inode holds, less one for a split at an AG's end),
/// the runs with the smallest holes between them are joined (the hole is
/// then written as zeros) until they fit.
fn file_runs(data: &crate::rootfs::FileData, cap: usize) -> Vec<(u64, u64)> {
    let end = data.size.div_ceil(BLOCK);
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for e in &data.extents {
        if e.len == 0 {
            continue;
        }
        let a = e.file_offset / BLOCK;
        let z = (e.file_offset + e.len).div_ceil(BLOCK).min(end);
        if a >= z {
            continue;
        }
        match runs.last_mut() {
            Some((s, l)) if *s + *l >= a => *l = (*l).max(z - *s),
            _ => runs.push((a, z - a)),
        }
    }
    while runs.len() > cap.max(1) {
        let k = (0..runs.len() - 1)
            .min_by_key(|&k| runs[k + 1].0 - (runs[k].0 + runs[k].1))
            .unwrap_or(0);
        let (s, _) = runs[k];
        let (s2, l2) = runs.remove(k + 1);
        runs[k].1 = s2 + l2 - s;
    }
    runs
}

/// One extent: file (or directory) block, linear disk block, length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ext {
    pub off: u64,
    pub linear: u64,
    pub len: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Alloc {
    pub data: Vec<Ext>,
    pub attr_block: Option<u64>,
}

impl Alloc {
    pub fn blocks(&self) -> u64 {
        self.data.iter().map(|e| e.len).sum::<u64>() + u64::from(self.attr_block.is_some())
    }
}

/// The layout's failure: too small, or a real error.
pub(crate) enum PlanError {
    NoSpace,
    Other(XfsError),
}

/// Where everything goes.
pub(crate) struct Plan {
    pub geo: Geo,
    pub chunks: u64,
    /// AG 0's first block after the inode chunks (extra inode btree blocks).
    pub inobt_extra: u64,
    pub allocs: Vec<Alloc>,
    /// Per AG: the end of its used blocks (everything after is free).
    pub ag_ends: Vec<u64>,
}

/// Hands out blocks front to back.
struct Cursor<'g> {
    geo: &'g Geo,
    ag: u32,
    next: u64,
}

impl Cursor<'_> {
    /// `n` blocks as (linear, len) pieces, split at AG ends and at the
    /// longest extent.
    fn take(&mut self, n: u64) -> Result<Vec<(u64, u64)>, PlanError> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut left = n;
        while left > 0 {
            let end = self.geo.ag_len(self.ag) - self.geo.ag_reserve();
            let room = end.saturating_sub(self.next);
            if room == 0 {
                self.ag += 1;
                if self.ag >= self.geo.agcount {
                    return Err(PlanError::NoSpace);
                }
                self.next = self.geo.agfl_start(self.ag) + AGFL_BLOCKS;
                continue;
            }
            let k = left.min(room).min(MAX_EXTENT);
            out.push((self.geo.ag_start(self.ag) + self.next, k));
            self.next += k;
            left -= k;
        }
        Ok(out)
    }
}

/// `pieces` (linear, len) mapped onto the logical `sections` (first
/// block, count) in order: the extents.
fn map_sections(sections: &[(u64, u64)], pieces: &[(u64, u64)]) -> Vec<Ext> {
    let mut out: Vec<Ext> = Vec::new();
    let mut it = pieces.iter().copied();
    let mut cur: Option<(u64, u64)> = None;
    for &(mut off, mut count) in sections {
        while count > 0 {
            let (lin, len) = match cur.take() {
                Some(p) => p,
                None => match it.next() {
                    Some(p) => p,
                    None => return out,
                },
            };
            let k = len.min(count);
            match out.last_mut() {
                Some(e)
                    if e.off + e.len == off
                        && e.linear + e.len == lin
                        && e.len + k <= MAX_EXTENT =>
                {
                    e.len += k;
                }
                _ => out.push(Ext {
                    off,
                    linear: lin,
                    len: k,
                }),
            }
            if k < len {
                cur = Some((lin + k, len - k));
            }
            off += k;
            count -= k;
        }
    }
    out
}

impl Plan {
    pub fn new(content: &Content<'_>, dblocks: u64) -> Result<Plan, PlanError> {
        if !(MIN_BLOCKS..=MAX_BLOCKS).contains(&dblocks) {
            return Err(PlanError::NoSpace);
        }
        let geo = Geo::new(dblocks);
        let chunks = (content.inodes.len() as u64).div_ceil(INODES_PER_CHUNK);
        let inobt_extra = FIRST_CHUNK + chunks * CHUNK_BLOCKS;
        let extra = super::btree::INO_BTREE.extra_blocks(chunks as usize);
        let first_free = inobt_extra + extra;
        if first_free + geo.ag_reserve() >= geo.ag_len(0) {
            return Err(PlanError::NoSpace);
        }
        let mut cur = Cursor {
            geo: &geo,
            ag: 0,
            next: first_free,
        };
        let mut allocs = Vec::with_capacity(content.inodes.len());
        for ino in &content.inodes {
            let mut a = Alloc::default();
            if !ino.attrs.is_empty() && !ino.attr_sf {
                a.attr_block = Some(cur.take(1)?[0].0);
            }
            let sections: Vec<(u64, u64)> = match &ino.body {
                Body::Dir(d) => d.sections(),
                Body::File { runs, .. } => runs.clone(),
                Body::Symlink(_) if !ino.local() => vec![(0, 1)],
                _ => Vec::new(),
            };
            let total = sections.iter().map(|s| s.1).sum();
            let pieces = cur.take(total)?;
            a.data = map_sections(&sections, &pieces);
            if a.data.len() * 16 > ino.avail {
                return Err(PlanError::Other(XfsError::TooManyExtents {
                    path: ino.path.clone(),
                    extents: a.data.len(),
                }));
            }
            allocs.push(a);
        }
        let ag_ends = (0..geo.agcount)
            .map(|ag| match ag.cmp(&cur.ag) {
                std::cmp::Ordering::Less => {
                    (geo.ag_len(ag) - geo.ag_reserve()).max(geo.agfl_start(ag) + AGFL_BLOCKS)
                }
                std::cmp::Ordering::Equal => cur.next,
                std::cmp::Ordering::Greater => geo.agfl_start(ag) + AGFL_BLOCKS,
            })
            .collect();
        Ok(Plan {
            geo,
            chunks,
            inobt_extra,
            allocs,
            ag_ends,
        })
    }
}

/// The directory form a path's directory took (for tests).
#[cfg(test)]
pub(crate) fn dir_form(content: &Content<'_>, path: &std::path::Path) -> Option<Form> {
    let want = path.to_string_lossy();
    content.inodes.iter().find_map(|i| match &i.body {
        Body::Dir(d) if i.path == want => Some(d.form),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_mkfs_xfs() {
        // mkfs.xfs -N: 1 GiB gives 4 AGs of 65536 blocks and a 16384-block
        // log; 300 MiB 4 x 19200; 200 GiB a 25600-block log.
        let g = Geo::new(262_144);
        assert_eq!(
            (g.agcount, g.agblocks, g.agblklog, g.logblocks),
            (4, 65536, 16, 16384)
        );
        assert_eq!(g.fsb(g.log_start()), 131_078);
        let g = Geo::new(76_800);
        assert_eq!((g.agblocks, g.agblklog), (19_200, 15));
        assert_eq!(Geo::new(52_428_800).logblocks, 25_600);
    }

    #[test]
    fn sections_map_onto_pieces_in_order() {
        let ext = map_sections(&[(0, 3), (LEAF_DABLK, 2)], &[(100, 4), (200, 1)]);
        assert_eq!(
            ext,
            vec![
                Ext {
                    off: 0,
                    linear: 100,
                    len: 3
                },
                Ext {
                    off: LEAF_DABLK,
                    linear: 103,
                    len: 1
                },
                Ext {
                    off: LEAF_DABLK + 1,
                    linear: 200,
                    len: 1
                },
            ]
        );
    }
}
