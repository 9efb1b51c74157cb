//! The layout pass: every inode number, every block and every offset,
//! decided before a byte is written.
//!
//! Two steps. [`Content::gather`] does what does not depend on the
//! filesystem's size: inode numbers in [`Tree::walk`] order (1..=10
//! reserved, 11 `lost+found`, then the tree), directory shapes, where
//! extended attributes go and which xattr blocks are shared, how many
//! blocks each inode's data needs. [`Plan::new`] then takes a block count
//! and does the rest: the geometry (groups, inodes per group, journal
//! size), where each group's bitmaps and inode table go, and every data
//! block, allocated in one fixed order from the front of the disk.
//!
//! Allocation order: fixed metadata first (superblock and descriptor copies
//! in groups 0, 1 and powers of 3, 5 and 7; then per flex group of 16 the
//! block bitmaps, inode bitmaps and inode tables of its groups, placed at
//! the flex group's start, or in the first gap that holds them when the
//! disk ends too soon after it), then, by inode number, each inode's data
//! blocks, its extent tree blocks and its xattr block (a shared one with
//! the first inode that uses it). The journal is inode 8, so it comes
//! right after the root directory. Data never moves backwards: every block
//! below the allocation cursor is in use, which is what makes the bitmaps
//! simple to compute. A last group too short for its superblock copy is
//! left out, as mke2fs leaves out such a runt.

use std::collections::BTreeMap;

use crate::rootfs::{Dir, FileData, Kind, NodeId, Tree};

use super::dir::{self, DirLayout, Entry};
use super::format::*;
use super::xattr::{self, Item, XATTR_REFCOUNT_MAX};
use super::{BLOCK_SIZE, Ext4Error, Options};

/// Blocks per group: one bitmap block's worth of bits.
pub(crate) const BLOCKS_PER_GROUP: u64 = BLOCK_SIZE * 8;
/// Groups per flex group (`s_log_groups_per_flex` = 4), mke2fs's default.
pub(crate) const FLEX_GROUPS: u32 = 16;
pub(crate) const LOG_GROUPS_PER_FLEX: u8 = 4;
/// mke2fs.conf's `inode_ratio`: one inode per this many bytes at least.
pub(crate) const INODE_RATIO: u64 = 16384;
/// Inodes in one inode bitmap block: the most a group can have.
pub(crate) const MAX_INODES_PER_GROUP: u32 = (BLOCK_SIZE * 8) as u32;
/// Inodes per inode table block.
pub(crate) const INODES_PER_BLOCK: u32 = (BLOCK_SIZE / INODE_SIZE as u64) as u32;
/// The first inode that is not reserved (`s_first_ino`).
pub(crate) const FIRST_INO: u32 = 11;
pub(crate) const ROOT_INO: u32 = 2;
pub(crate) const JOURNAL_INO: u32 = 8;
pub(crate) const LOST_FOUND_INO: u32 = 11;
/// mke2fs gives no journal below this many blocks; we refuse to go there.
pub(crate) const MIN_BLOCKS: u64 = 2048;
/// Entries in an extent tree block (`eh_max`), less room for the tail.
pub(crate) const EXTENTS_PER_BLOCK: usize =
    (BLOCK_SIZE as usize - ExtentHeader::SIZE) / Extent::SIZE;
/// Entries in the inode's own extent root.
pub(crate) const EXTENTS_IN_INODE: usize = 4;
/// `i_links_count` limit (`EXT4_LINK_MAX`).
pub(crate) const LINK_MAX: u32 = 65000;
/// Blocks `lost+found` is given, as mke2fs does (16 KiB).
pub(crate) const LOST_FOUND_BLOCKS: u32 = 4;

/// A timestamp: seconds and nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// What an inode is, with what the write pass needs for it.
#[derive(Debug)]
pub(crate) enum What<'t> {
    /// A reserved inode with nothing in it (3..=7, 9, 10); 1 is the bad
    /// blocks inode, which mke2fs stamps with the creation time.
    Reserved,
    BadBlocks,
    Journal,
    Dir(DirLayout<'t>),
    /// A regular file: `ranges` are the logical block ranges that hold
    /// data (the rest are holes).
    File {
        id: NodeId,
        ranges: Vec<(u64, u64)>,
    },
    /// A symlink target that lives in `i_block` (under 60 bytes).
    FastSymlink(&'t [u8]),
    /// A symlink target that lives in one data block.
    SlowSymlink(&'t [u8]),
    /// A device node, FIFO or socket: `i_block` is given.
    Special([u8; 60]),
}

/// One inode's metadata and content, independent of the disk's size.
#[derive(Debug)]
pub(crate) struct InodeContent<'t> {
    pub what: What<'t>,
    /// Type and permission bits (`i_mode`).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub links: u16,
    pub size: u64,
    pub time: Time,
    /// `i_flags`.
    pub flags: u32,
    /// Attributes kept in the inode body.
    pub ibody: Vec<Item>,
    /// Index into [`Content::xattr_blocks`].
    pub xattr_block: Option<usize>,
    /// Data blocks (directory, symlink, file or journal blocks; not
    /// extent tree blocks, which depend on placement).
    pub data_blocks: u64,
    /// A path naming it, for messages.
    pub path: Vec<u8>,
}

impl InodeContent<'_> {
    fn reserved(what: What<'static>) -> InodeContent<'static> {
        InodeContent {
            what,
            mode: 0,
            uid: 0,
            gid: 0,
            links: 0,
            size: 0,
            time: Time::default(),
            flags: 0,
            ibody: Vec::new(),
            xattr_block: None,
            data_blocks: 0,
            path: Vec::new(),
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.what, What::Dir(_))
    }

    /// Does `i_block` hold an extent tree?
    pub(crate) fn has_extents(&self) -> bool {
        self.flags & EXT4_EXTENTS_FL != 0
    }
}

/// An xattr block's attributes and how many inodes share it.
#[derive(Debug)]
pub(crate) struct XattrBlock {
    pub items: Vec<Item>,
    pub refcount: u32,
}

/// Everything about the tree that does not depend on the disk's size.
pub(crate) struct Content<'t> {
    pub tree: &'t Tree,
    /// `inodes[i]` is inode number `i + 1`.
    pub inodes: Vec<InodeContent<'t>>,
    pub xattr_blocks: Vec<XattrBlock>,
    pub hash_seed: [u32; 4],
}

fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// `path` + `/` + `name`.
fn join(path: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = path.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn file_type(kind: &Kind) -> u8 {
    match kind {
        Kind::Dir(_) => FT_DIR,
        Kind::File(_) => FT_REG_FILE,
        Kind::Symlink(_) => FT_SYMLINK,
        Kind::CharDev { .. } => FT_CHRDEV,
        Kind::BlockDev { .. } => FT_BLKDEV,
        Kind::Fifo => FT_FIFO,
        Kind::Socket => FT_SOCK,
    }
}

/// `i_block` of a device node, as the kernel's `ext4_write_inode` fills
/// it: the old 16-bit encoding in word 0 when major and minor fit in a
/// byte each, else the new 32-bit one in word 1.
fn device_i_block(major: u32, minor: u32) -> [u8; 60] {
    let mut b = [0u8; 60];
    if major < 256 && minor < 256 {
        let old = (major << 8) | minor;
        b[..4].copy_from_slice(&old.to_le_bytes());
    } else {
        let new = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
        b[4..8].copy_from_slice(&new.to_le_bytes());
    }
    b
}

impl<'t> Content<'t> {
    /// Number every inode and work out what each one holds.
    pub(crate) fn gather(tree: &'t Tree, opts: &Options) -> Result<Content<'t>, Ext4Error> {
        let hash_seed = hash_seed(opts);
        let tree_lf = tree_lost_found(tree)?;
        let numbering = Numbering::new(tree, tree_lf)?;
        let mut inodes = reserved_inodes(numbering.count);
        let mut walk = Describe {
            tree,
            ino_of: &numbering.ino_of,
            parent_of: vec![0; numbering.count as usize + 1],
            hash_seed,
            tree_lf,
            xattrs: XattrSharing::default(),
        };
        walk.parent_of[ROOT_INO as usize] = ROOT_INO;
        walk.parent_of[LOST_FOUND_INO as usize] = ROOT_INO;

        // Walk order puts a directory before its entries, so each
        // directory's parent is known by the time it is laid out.
        for (id, path) in &numbering.order {
            let ino = numbering.ino_of[id.index()];
            inodes[ino as usize - 1] = walk.inode(ino, *id, path)?;
        }
        if tree_lf.is_none() {
            inodes[LOST_FOUND_INO as usize - 1] = own_lost_found(&hash_seed, opts)?;
        }
        stamp_created(&mut inodes, opts);

        Ok(Content {
            tree,
            inodes,
            xattr_blocks: walk.xattrs.blocks,
            hash_seed,
        })
    }

    /// Blocks everything but the filesystem's own metadata and journal
    /// needs (a lower bound for sizing).
    pub(crate) fn data_blocks(&self) -> u64 {
        self.inodes.iter().map(|i| i.data_blocks).sum::<u64>() + self.xattr_blocks.len() as u64
    }

    /// The highest inode number in use.
    pub(crate) fn inode_count(&self) -> u32 {
        self.inodes.len() as u32
    }
}

/// The directory hash seed (`s_hash_seed`) as four little-endian words.
fn hash_seed(opts: &Options) -> [u32; 4] {
    [0, 1, 2, 3].map(|i| {
        let s = &opts.hash_seed[i * 4..i * 4 + 4];
        u32::from_le_bytes([s[0], s[1], s[2], s[3]])
    })
}

/// The tree's own `/lost+found`, if it is a directory: it becomes inode
/// 11. Anything else by that name cannot be kept.
fn tree_lost_found(tree: &Tree) -> Result<Option<NodeId>, Ext4Error> {
    let root_dir = tree
        .node(tree.root())
        .as_dir()
        .ok_or(Ext4Error::RootNotADirectory)?;
    match root_dir.get(b"lost+found") {
        Some(id) if tree.node(id).is_dir() => Ok(Some(id)),
        Some(_) => Err(Ext4Error::LostFoundNotADirectory),
        None => Ok(None),
    }
}

/// Inode numbers, in [`Tree::walk`] order.
struct Numbering {
    /// `ino_of[id.index()]` is the node's inode number.
    ino_of: Vec<u32>,
    /// Each numbered node once (hard links at their first path), in walk
    /// order, with that path.
    order: Vec<(NodeId, Vec<u8>)>,
    /// The highest inode number.
    count: u32,
}

impl Numbering {
    /// Give the root 2, the tree's lost+found (if any) 11 and every other
    /// node the next number from 12, in walk order.
    fn new(tree: &Tree, tree_lf: Option<NodeId>) -> Result<Numbering, Ext4Error> {
        let mut ino_of: Vec<u32> = vec![0; tree.arena_len()];
        let mut order: Vec<(NodeId, Vec<u8>)> = Vec::new();
        let mut next = FIRST_INO + 1;
        for (path, id) in tree.walk() {
            if ino_of[id.index()] != 0 {
                continue;
            }
            let ino = if id == tree.root() {
                ROOT_INO
            } else if Some(id) == tree_lf {
                LOST_FOUND_INO
            } else {
                let n = next;
                next = next.checked_add(1).ok_or(Ext4Error::TooManyInodes {
                    needed: u64::MAX,
                    max: u64::from(u32::MAX),
                })?;
                n
            };
            ino_of[id.index()] = ino;
            order.push((id, path));
        }
        Ok(Numbering {
            ino_of,
            order,
            count: next - 1,
        })
    }
}

/// Inodes 1..=`count`, all reserved and empty until described (1 the bad
/// blocks inode, 8 the journal).
fn reserved_inodes(count: u32) -> Vec<InodeContent<'static>> {
    (1..=count)
        .map(|ino| {
            InodeContent::reserved(match ino {
                1 => What::BadBlocks,
                JOURNAL_INO => What::Journal,
                _ => What::Reserved,
            })
        })
        .collect()
}

/// Xattr blocks as they are made, the same attributes sharing one block
/// until its reference count is full.
#[derive(Default)]
struct XattrSharing {
    blocks: Vec<XattrBlock>,
    /// [`xattr::share_key`] to the newest block with those attributes.
    shared: BTreeMap<Vec<u8>, usize>,
}

impl XattrSharing {
    /// The index of the block that holds `items` for one more inode.
    fn assign(&mut self, items: Vec<Item>) -> usize {
        let key = xattr::share_key(&items);
        let idx = match self.shared.get(&key) {
            Some(&i) if self.blocks[i].refcount < XATTR_REFCOUNT_MAX => i,
            _ => {
                self.blocks.push(XattrBlock { items, refcount: 0 });
                self.shared.insert(key, self.blocks.len() - 1);
                self.blocks.len() - 1
            }
        };
        self.blocks[idx].refcount += 1;
        idx
    }
}

/// What describing one node needs: the numbering, the parents found so far
/// and the xattr blocks made so far.
struct Describe<'a, 't> {
    tree: &'t Tree,
    ino_of: &'a [u32],
    /// `parent_of[ino]` for the directories seen so far as entries.
    parent_of: Vec<u32>,
    hash_seed: [u32; 4],
    tree_lf: Option<NodeId>,
    xattrs: XattrSharing,
}

impl<'t> Describe<'_, 't> {
    /// Inode `ino`: node `id`, first seen at `path`.
    fn inode(&mut self, ino: u32, id: NodeId, path: &[u8]) -> Result<InodeContent<'t>, Ext4Error> {
        let tree = self.tree;
        let node = tree.node(id);
        let shown = display(path);
        let meta = &node.meta;
        let mut c = InodeContent {
            what: What::Reserved,
            mode: meta.mode & 0o7777,
            uid: meta.uid,
            gid: meta.gid,
            links: 1,
            size: 0,
            time: Time {
                sec: meta.mtime,
                nsec: meta.mtime_nsec.min(999_999_999),
            },
            flags: 0,
            ibody: Vec::new(),
            xattr_block: None,
            data_blocks: 0,
            path: path.to_vec(),
        };
        match &node.kind {
            Kind::Dir(d) => self.dir(&mut c, ino, d, path, &shown)?,
            Kind::File(data) => file(&mut c, id, data, tree.nlink(id), shown.clone())?,
            Kind::Symlink(target) => {
                symlink(&mut c, target, tree.nlink(id), shown.clone())?;
            }
            Kind::CharDev { major, minor } | Kind::BlockDev { major, minor } => {
                c.links = tree.nlink(id).min(LINK_MAX) as u16;
                c.mode |= if matches!(node.kind, Kind::CharDev { .. }) {
                    S_IFCHR
                } else {
                    S_IFBLK
                };
                c.what = What::Special(device_i_block(*major, *minor));
            }
            Kind::Fifo | Kind::Socket => {
                c.links = tree.nlink(id).min(LINK_MAX) as u16;
                c.mode |= if matches!(node.kind, Kind::Fifo) {
                    S_IFIFO
                } else {
                    S_IFSOCK
                };
                c.what = What::Special([0; 60]);
            }
        }
        let items = xattr::items(&meta.xattrs, &shown)?;
        let (ibody, block) = xattr::place(items, &shown)?;
        c.ibody = ibody;
        if !block.is_empty() {
            c.xattr_block = Some(self.xattrs.assign(block));
        }
        Ok(c)
    }

    /// A directory: its entries (with our own `lost+found` in the root when
    /// the tree has none), link count and block layout.
    fn dir(
        &mut self,
        c: &mut InodeContent<'t>,
        ino: u32,
        d: &'t Dir,
        path: &[u8],
        shown: &str,
    ) -> Result<(), Ext4Error> {
        let mut entries = Vec::with_capacity(d.len() + 1);
        let mut subdirs = 0u64;
        for (name, child) in d.entries() {
            if name.len() > EXT4_NAME_LEN {
                return Err(Ext4Error::NameTooLong {
                    path: display(&join(path, name)),
                    len: name.len(),
                });
            }
            let child_ino = self.ino_of[child.index()];
            let ckind = &self.tree.node(*child).kind;
            if let Kind::Dir(_) = ckind {
                subdirs += 1;
                self.parent_of[child_ino as usize] = ino;
            }
            entries.push(Entry {
                name,
                ino: child_ino,
                file_type: file_type(ckind),
                hash: 0,
            });
        }
        if ino == ROOT_INO && self.tree_lf.is_none() {
            let at = entries.partition_point(|e| e.name < &b"lost+found"[..]);
            entries.insert(
                at,
                Entry {
                    name: b"lost+found",
                    ino: LOST_FOUND_INO,
                    file_type: FT_DIR,
                    hash: 0,
                },
            );
            subdirs += 1;
        }
        let links = 2 + subdirs;
        // dir_nlink: past the limit the count is 1, "unknown".
        c.links = if links > u64::from(LINK_MAX) {
            1
        } else {
            links as u16
        };
        let lf = ino == LOST_FOUND_INO;
        let layout = dir::layout(
            self.parent_of[ino as usize],
            entries,
            &self.hash_seed,
            if lf { LOST_FOUND_BLOCKS } else { 1 },
            !lf,
            shown,
        )?;
        c.mode |= S_IFDIR;
        c.data_blocks = u64::from(layout.blocks());
        c.size = c.data_blocks * BLOCK_SIZE;
        c.flags = EXT4_EXTENTS_FL | if layout.is_htree() { EXT4_INDEX_FL } else { 0 };
        c.what = What::Dir(layout);
        Ok(())
    }
}

/// A regular file with `links` names: the logical block ranges that hold
/// data (holes left out).
fn file(
    c: &mut InodeContent<'_>,
    id: NodeId,
    data: &FileData,
    links: u32,
    shown: String,
) -> Result<(), Ext4Error> {
    if links > LINK_MAX {
        return Err(Ext4Error::TooManyLinks { path: shown, links });
    }
    c.links = links as u16;
    // The largest file 32-bit logical block numbers reach.
    if data.size > (1u64 << 32) * BLOCK_SIZE {
        return Err(Ext4Error::FileTooLarge {
            path: shown,
            size: data.size,
        });
    }
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for e in &data.extents {
        let first = e.file_offset / BLOCK_SIZE;
        let end = e.end().div_ceil(BLOCK_SIZE);
        match ranges.last_mut() {
            Some((s, l)) if *s + *l >= first => *l = (*l).max(end - *s),
            _ => ranges.push((first, end - first)),
        }
    }
    c.mode |= S_IFREG;
    c.size = data.size;
    c.data_blocks = ranges.iter().map(|r| r.1).sum();
    c.flags = EXT4_EXTENTS_FL;
    c.what = What::File { id, ranges };
    Ok(())
}

/// A symlink with `links` names: its target in `i_block` when under 60
/// bytes, else in one data block.
fn symlink<'t>(
    c: &mut InodeContent<'t>,
    target: &'t [u8],
    links: u32,
    shown: String,
) -> Result<(), Ext4Error> {
    c.links = links.min(LINK_MAX) as u16;
    c.mode |= S_IFLNK;
    c.size = target.len() as u64;
    if target.is_empty() {
        return Err(Ext4Error::EmptySymlink { path: shown });
    }
    if target.len() >= BLOCK_SIZE as usize {
        return Err(Ext4Error::SymlinkTooLong {
            path: shown,
            len: target.len(),
        });
    }
    if target.len() < 60 {
        c.what = What::FastSymlink(target);
    } else {
        c.data_blocks = 1;
        c.flags = EXT4_EXTENTS_FL;
        c.what = What::SlowSymlink(target);
    }
    Ok(())
}

/// A `lost+found` of our own, as mke2fs makes it, for a tree without one.
fn own_lost_found(
    hash_seed: &[u32; 4],
    opts: &Options,
) -> Result<InodeContent<'static>, Ext4Error> {
    let layout = dir::layout(
        ROOT_INO,
        Vec::new(),
        hash_seed,
        LOST_FOUND_BLOCKS,
        false,
        "/lost+found",
    )?;
    let blocks = u64::from(layout.blocks());
    Ok(InodeContent {
        what: What::Dir(layout),
        mode: S_IFDIR | 0o700,
        uid: 0,
        gid: 0,
        links: 2,
        size: blocks * BLOCK_SIZE,
        time: Time {
            sec: i64::from(opts.timestamp),
            nsec: 0,
        },
        flags: EXT4_EXTENTS_FL,
        ibody: Vec::new(),
        xattr_block: None,
        data_blocks: blocks,
        path: b"/lost+found".to_vec(),
    })
}

/// The journal inode's mode, links and flags, and the creation time on it
/// and on the bad blocks inode. Its blocks depend on the disk's size: see
/// [`Plan`].
fn stamp_created(inodes: &mut [InodeContent<'_>], opts: &Options) {
    let created = Time {
        sec: i64::from(opts.timestamp),
        nsec: 0,
    };
    let j = &mut inodes[JOURNAL_INO as usize - 1];
    j.mode = S_IFREG | 0o600;
    j.links = 1;
    j.flags = EXT4_EXTENTS_FL;
    j.time = created;
    inodes[0].time = created;
}

/// mke2fs's default journal size for a filesystem of `blocks` 4 KiB blocks
/// (e2fsprogs `ext2fs_default_journal_size`).
pub(crate) fn default_journal_blocks(blocks: u64) -> u64 {
    match blocks {
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131072,
        _ => 262144,
    }
}

/// Does group `g` hold a superblock and descriptor backup (sparse_super:
/// 0, 1 and powers of 3, 5 and 7)?
pub(crate) fn has_super(g: u32) -> bool {
    if g <= 1 {
        return true;
    }
    [3u32, 5, 7].iter().any(|&p| {
        let mut n = g;
        while n.is_multiple_of(p) {
            n /= p;
        }
        n == 1
    })
}

/// Sizes that follow from the block count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub blocks: u64,
    pub groups: u32,
    pub inodes_per_group: u32,
    /// Inode table blocks per group.
    pub itable_blocks: u32,
    /// Blocks of the group descriptor table.
    pub gdt_blocks: u32,
    pub journal_blocks: u64,
}

impl Geometry {
    fn new(blocks: u64, inodes_needed: u32) -> Result<Geometry, PlanError> {
        let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
        let too_large = || PlanError::Other(Ext4Error::TooLarge { blocks });
        let groups32 = u32::try_from(groups).map_err(|_| too_large())?;
        // The descriptor table must fit in group 0 (no meta_bg).
        let gdt_blocks = (groups * GroupDesc::SIZE as u64).div_ceil(BLOCK_SIZE);
        if gdt_blocks >= BLOCKS_PER_GROUP / 2 {
            return Err(too_large());
        }
        let needed = u64::from(inodes_needed);
        let max = u64::from(MAX_INODES_PER_GROUP);
        let per_block = u64::from(INODES_PER_BLOCK);
        // `s_inodes_count` is 32 bits (past 64 TiB the ratio would overflow it).
        let fits_u32 = u64::from(u32::MAX) / groups / per_block * per_block;
        let capacity = groups * max.min(fits_u32);
        if needed > capacity {
            return Err(PlanError::Inodes {
                needed,
                max: capacity,
            });
        }
        // One inode per 16 KiB, or what the tree needs plus a quarter (a
        // booted system makes files too), as far as the groups hold them.
        let by_ratio = (blocks * BLOCK_SIZE / INODE_RATIO).div_ceil(groups);
        let by_tree = (needed + needed / 4).div_ceil(groups);
        let ipg = (by_ratio.max(by_tree).div_ceil(per_block) * per_block)
            .min(max)
            .min(fits_u32) as u32;
        Ok(Geometry {
            blocks,
            groups: groups32,
            inodes_per_group: ipg,
            itable_blocks: ipg / INODES_PER_BLOCK,
            gdt_blocks: gdt_blocks as u32,
            journal_blocks: default_journal_blocks(blocks),
        })
    }

    pub(crate) fn group_start(&self, g: u32) -> u64 {
        u64::from(g) * BLOCKS_PER_GROUP
    }

    /// One past the group's last block.
    pub(crate) fn group_end(&self, g: u32) -> u64 {
        (self.group_start(g) + BLOCKS_PER_GROUP).min(self.blocks)
    }

    pub(crate) fn inodes_count(&self) -> u64 {
        u64::from(self.groups) * u64::from(self.inodes_per_group)
    }
}

/// Where one group's bitmaps and inode table are.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GroupMeta {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
}

/// One extent: `len` blocks from logical block `logical` at `phys`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub logical: u32,
    pub phys: u64,
    pub len: u16,
}

/// A block of an extent tree: a leaf (`depth` 0, `entries` are extents) or
/// an index node (`entries` are (first logical block, child block, 0)).
#[derive(Clone, Debug)]
pub(crate) struct TreeNode {
    pub phys: u64,
    pub depth: u16,
    pub entries: Vec<Run>,
}

/// Where an inode's blocks went.
#[derive(Clone, Debug, Default)]
pub(crate) struct InodeBlocks {
    /// The extents, in logical order.
    pub runs: Vec<Run>,
    /// Extent tree blocks below the root in `i_block`, leaves first.
    pub tree: Vec<TreeNode>,
    /// The root: depth and entries (at most 4).
    pub root_depth: u16,
    pub root: Vec<Run>,
    /// The xattr block, if any.
    pub xattr_block: u64,
}

impl InodeBlocks {
    /// Blocks charged to the inode (`i_blocks` in 4 KiB units), the xattr
    /// block included.
    pub(crate) fn charged(&self) -> u64 {
        self.runs.iter().map(|r| u64::from(r.len)).sum::<u64>()
            + self.tree.len() as u64
            + u64::from(self.xattr_block != 0)
    }
}

/// Regions that are not handed out by the cursor: superblock and
/// descriptor copies, bitmaps, inode tables (start -> length).
#[derive(Default, Debug)]
pub(crate) struct Fixed {
    pub regions: BTreeMap<u64, u64>,
}

impl Fixed {
    fn add(&mut self, start: u64, len: u64) {
        self.regions.insert(start, len);
    }

    /// The first `len` free blocks at or after `from`, ending by `end`.
    fn find(&self, from: u64, len: u64, end: u64) -> Option<u64> {
        let mut pos = from;
        loop {
            if pos + len > end {
                return None;
            }
            // The region that covers or comes last before the candidate's end.
            match self.regions.range(..pos + len).next_back() {
                Some((s, l)) if s + l > pos => pos = s + l,
                _ => return Some(pos),
            }
        }
    }

    /// The region covering `b`, if any.
    fn covering(&self, b: u64) -> Option<(u64, u64)> {
        self.regions
            .range(..=b)
            .next_back()
            .filter(|(s, l)| *s + *l > b)
            .map(|(s, l)| (*s, *l))
    }

    /// The start of the first region after `b`.
    fn next_after(&self, b: u64) -> Option<u64> {
        self.regions.range(b + 1..).next().map(|(s, _)| *s)
    }
}

/// The cursor allocator: hands out blocks in increasing order, skipping
/// fixed regions.
struct Cursor<'a> {
    fixed: &'a Fixed,
    at: u64,
    end: u64,
}

impl Cursor<'_> {
    /// `n` blocks as physical runs.
    fn take(&mut self, mut n: u64) -> Result<Vec<(u64, u64)>, NoSpace> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        while n > 0 {
            if let Some((s, l)) = self.fixed.covering(self.at) {
                self.at = s + l;
                continue;
            }
            let limit = self
                .fixed
                .next_after(self.at)
                .unwrap_or(self.end)
                .min(self.end);
            if self.at >= limit {
                return Err(NoSpace);
            }
            let k = (limit - self.at).min(n);
            match out.last_mut() {
                Some((s, l)) if *s + *l == self.at => *l += k,
                _ => out.push((self.at, k)),
            }
            self.at += k;
            n -= k;
        }
        Ok(out)
    }
}

/// The disk is too small for what was asked of it.
#[derive(Debug)]
pub(crate) struct NoSpace;

/// The full layout for a given block count.
pub(crate) struct Plan {
    pub geo: Geometry,
    pub groups: Vec<GroupMeta>,
    pub fixed: Fixed,
    /// Every block below this is in use.
    pub cursor: u64,
    /// `inodes[i]` is inode `i + 1`.
    pub inodes: Vec<InodeBlocks>,
    pub xattr_block_at: Vec<u64>,
}

/// Why a block count does not work: too few blocks, too few inodes (both
/// mean "give me more blocks"), or something no size fixes.
pub(crate) enum PlanError {
    NoSpace,
    Inodes { needed: u64, max: u64 },
    Other(Ext4Error),
}

impl From<NoSpace> for PlanError {
    fn from(_: NoSpace) -> Self {
        PlanError::NoSpace
    }
}

impl From<Ext4Error> for PlanError {
    fn from(e: Ext4Error) -> Self {
        PlanError::Other(e)
    }
}

/// Split physical runs holding logical blocks from `logical` into extents
/// no longer than ext4 allows.
fn runs_to_extents(logical: u64, phys: &[(u64, u64)], out: &mut Vec<Run>) {
    let mut l = logical;
    for &(p, len) in phys {
        let mut done = 0;
        while done < len {
            let k = (len - done).min(u64::from(EXT_INIT_MAX_LEN));
            out.push(Run {
                logical: l as u32,
                phys: p + done,
                len: k as u16,
            });
            l += k;
            done += k;
        }
    }
}

/// Build the extent tree over `runs`: the root's depth and entries, and
/// the tree blocks below it (allocated from `cursor`).
fn extent_tree(
    runs: &[Run],
    cursor: &mut Cursor<'_>,
) -> Result<(u16, Vec<Run>, Vec<TreeNode>), NoSpace> {
    if runs.len() <= EXTENTS_IN_INODE {
        return Ok((0, runs.to_vec(), Vec::new()));
    }
    let mut nodes: Vec<TreeNode> = Vec::new();
    let mut level: Vec<Run> = runs.to_vec();
    let mut depth = 0u16;
    while level.len() > EXTENTS_IN_INODE {
        let chunks: Vec<Vec<Run>> = level
            .chunks(EXTENTS_PER_BLOCK)
            .map(<[Run]>::to_vec)
            .collect();
        let blocks = cursor.take(chunks.len() as u64)?;
        let mut phys = blocks.iter().flat_map(|&(s, l)| s..s + l);
        let mut up = Vec::with_capacity(chunks.len());
        for entries in chunks {
            let p = phys.next().ok_or(NoSpace)?;
            up.push(Run {
                logical: entries[0].logical,
                phys: p,
                len: 0,
            });
            nodes.push(TreeNode {
                phys: p,
                depth,
                entries,
            });
        }
        level = up;
        depth += 1;
    }
    Ok((depth, level, nodes))
}

impl Plan {
    /// Lay `content` out on a disk of `blocks` blocks.
    pub(crate) fn new(content: &Content<'_>, blocks: u64) -> Result<Plan, PlanError> {
        if blocks < MIN_BLOCKS {
            return Err(PlanError::NoSpace);
        }
        let geo = Geometry::new(blocks, content.inode_count())?;
        // A last group too short for its superblock copy (and a block
        // more) is left out, as mke2fs leaves out a runt group: the
        // filesystem then ends before the space given.
        let last = geo.groups - 1;
        if last > 0
            && has_super(last)
            && geo.group_end(last) - geo.group_start(last) < 2 + u64::from(geo.gdt_blocks)
        {
            return Plan::new(content, geo.group_start(last));
        }
        let mut fixed = Fixed::default();
        for g in (0..geo.groups).filter(|g| has_super(*g)) {
            fixed.add(geo.group_start(g), 1 + u64::from(geo.gdt_blocks));
        }
        // Per flex group: block bitmaps, inode bitmaps, inode tables.
        let mut groups = vec![GroupMeta::default(); geo.groups as usize];
        for f in 0..geo.groups.div_ceil(FLEX_GROUPS) {
            let members = f * FLEX_GROUPS..((f + 1) * FLEX_GROUPS).min(geo.groups);
            let mut hint = geo.group_start(f * FLEX_GROUPS);
            let place = |fixed: &mut Fixed, len: u64, hint: &mut u64| -> Result<u64, NoSpace> {
                let at = fixed
                    .find(*hint, len, geo.blocks)
                    .or_else(|| fixed.find(0, len, geo.blocks))
                    .ok_or(NoSpace)?;
                fixed.add(at, len);
                *hint = at + len;
                Ok(at)
            };
            for g in members.clone() {
                groups[g as usize].block_bitmap = place(&mut fixed, 1, &mut hint)?;
            }
            for g in members.clone() {
                groups[g as usize].inode_bitmap = place(&mut fixed, 1, &mut hint)?;
            }
            for g in members {
                groups[g as usize].inode_table =
                    place(&mut fixed, u64::from(geo.itable_blocks), &mut hint)?;
            }
        }

        let mut cursor = Cursor {
            fixed: &fixed,
            at: 0,
            end: geo.blocks,
        };
        let mut inodes = vec![InodeBlocks::default(); content.inodes.len()];
        let mut xattr_block_at = vec![0u64; content.xattr_blocks.len()];
        for (i, c) in content.inodes.iter().enumerate() {
            let mut b = InodeBlocks::default();
            let mut runs = Vec::new();
            match &c.what {
                What::File { ranges, .. } => {
                    for &(first, len) in ranges {
                        runs_to_extents(first, &cursor.take(len)?, &mut runs);
                    }
                }
                What::Journal => runs_to_extents(0, &cursor.take(geo.journal_blocks)?, &mut runs),
                _ if c.data_blocks > 0 => {
                    runs_to_extents(0, &cursor.take(c.data_blocks)?, &mut runs)
                }
                _ => {}
            }
            if c.has_extents() {
                let (depth, root, tree) = extent_tree(&runs, &mut cursor)?;
                b.root_depth = depth;
                b.root = root;
                b.tree = tree;
            }
            b.runs = runs;
            if let Some(x) = c.xattr_block {
                if xattr_block_at[x] == 0 {
                    xattr_block_at[x] = cursor.take(1)?.first().ok_or(NoSpace)?.0;
                }
                b.xattr_block = xattr_block_at[x];
            }
            inodes[i] = b;
        }
        let end = cursor.at;
        Ok(Plan {
            geo,
            groups,
            fixed,
            cursor: end,
            inodes,
            xattr_block_at,
        })
    }

    /// Blocks in use in `[start, end)`.
    pub(crate) fn used_in(&self, start: u64, end: u64) -> u64 {
        let below = self.cursor.clamp(start, end) - start;
        let from = self.cursor.max(start);
        let mut n = below;
        if from < end {
            // Regions that start before `from` but reach into it.
            if let Some((s, l)) = self.fixed.covering(from) {
                n += (s + l).min(end) - from;
            }
            for (&s, &l) in self.fixed.regions.range(from + 1..end) {
                n += (s + l).min(end) - s;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_go_to_groups_0_1_and_powers_of_3_5_7() {
        let got: Vec<u32> = (0..400).filter(|g| has_super(*g)).collect();
        assert_eq!(got, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343]);
    }

    #[test]
    fn journal_sizes_follow_mke2fs() {
        assert_eq!(default_journal_blocks(6400), 1024);
        assert_eq!(default_journal_blocks(153_600), 4096);
        assert_eq!(default_journal_blocks(2 << 20), 16384);
        assert_eq!(default_journal_blocks(1 << 30), 262_144);
    }

    #[test]
    fn the_cursor_skips_fixed_regions_and_stops_at_the_end() {
        let mut fixed = Fixed::default();
        fixed.add(0, 3);
        fixed.add(5, 2);
        let mut c = Cursor {
            fixed: &fixed,
            at: 0,
            end: 12,
        };
        assert_eq!(c.take(4).unwrap(), [(3, 2), (7, 2)]);
        assert_eq!(c.take(3).unwrap(), [(9, 3)]);
        assert!(c.take(1).is_err());
        assert_eq!(fixed.find(0, 2, 12), Some(3));
        assert_eq!(fixed.find(4, 3, 12), Some(7));
    }

    #[test]
    fn extent_trees_grow_a_level_per_340_fold() {
        let fixed = Fixed::default();
        let mut c = Cursor {
            fixed: &fixed,
            at: 100,
            end: 1 << 20,
        };
        let runs: Vec<Run> = (0..2000)
            .map(|k| Run {
                logical: 2 * k,
                phys: 10_000 + u64::from(k) * 2,
                len: 1,
            })
            .collect();
        let (depth, root, nodes) = extent_tree(&runs[..4], &mut c).unwrap();
        assert_eq!((depth, root.len(), nodes.len()), (0, 4, 0));
        let (depth, root, nodes) = extent_tree(&runs[..1360], &mut c).unwrap();
        assert_eq!((depth, root.len(), nodes.len()), (1, 4, 4));
        let (depth, root, nodes) = extent_tree(&runs, &mut c).unwrap();
        assert_eq!((depth, root.len(), nodes.len()), (2, 1, 7));
        assert_eq!(root[0].logical, 0);
    }
}
