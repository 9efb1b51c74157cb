//! A read-only ext4 reader for `inspect`, `diff` and bases read from disk
//! images: walks a root
//! filesystem by inode, so paths of any depth read back (a reader that
//! resolves every path from `/`, as `ext4-view` does, stops at 4096 bytes,
//! and `bake` writes deeper trees than that).
//!
//! In: a [`DiskRead`] and the byte range of the partition. Out: every path
//! with its type, mode, owner, size, and content digest (or link target,
//! or device numbers), plus reads of single files by path (symlinks
//! followed inside the filesystem).
//!
//! What it reads, from the kernel's ext4 documentation
//! (Documentation/filesystems/ext4/: "Super Block", "Block Group
//! Descriptors", "Index Nodes", "The Contents of inode.i_block",
//! "Directory Entries"): the superblock at byte 1024, 32- or 64-byte group
//! descriptors after it, inodes of `s_inode_size` bytes, extent trees,
//! fast symlinks (in `i_block`), old and new device number encodings, and
//! linear directory blocks (an htree directory's index blocks read as
//! empty records, so a linear read lists every entry). It refuses, by
//! name, what it does not read: block-mapped (ext2/3) files, inline data,
//! `meta_bg`, encryption, case folding, and a journal that needs recovery.
//! Checksums are not verified: this is a viewer, and `e2fsck` judges the
//! writer.
//!
//! Why our own: the `ext4-view` crate resolves every path from the root
//! and refuses paths over 4096 bytes; no crate reads by inode. This reader
//! shares nothing with ingot's ext4 writer (`src/ext4/`); the tests
//! compare what it reads with the tarball of the same tree and with
//! `debugfs`.
//!
//! Limits, each named in its error: block sizes of 1 to 64 KiB; at most
//! [`MAX_GROUPS`] block groups (only the descriptors of groups that hold
//! inodes are read); directories no larger than the filesystem or 1 GiB,
//! parsed block by block as they are read; at most [`MAX_ENTRIES`] paths
//! and [`MAX_DEPTH`] directories deep; a directory reached twice is a
//! cycle; extent trees at most 5 deep (the format's own limit) with entry
//! counts inside their block, each of their blocks reached once, and no
//! more extents than the file or the filesystem has blocks; every block
//! number inside the filesystem; at most [`MAX_HOPS`] symlinks in one
//! lookup.

use std::collections::{BTreeMap, HashSet};

use crate::disk::view::DiskRead;

/// The most paths a walk lists.
pub const MAX_ENTRIES: usize = 1 << 24;
/// The deepest directory a walk enters (a 64 KiB path of one-letter names).
pub const MAX_DEPTH: usize = 32 * 1024;
/// The most block groups a filesystem may have: twice the groups of a
/// 64 TiB filesystem of 4 KiB blocks (and of the largest one with 1 KiB
/// blocks and 32-bit block numbers).
pub const MAX_GROUPS: u64 = 1 << 20;
/// Symlinks followed in one lookup (Linux's `MAXSYMLINKS`).
pub const MAX_HOPS: usize = 40;
/// The format's own limit on extent tree depth.
const MAX_EXTENT_DEPTH: u16 = 5;
const ROOT_INO: u32 = 2;

const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_ENCRYPT: u32 = 0x10000;
const INCOMPAT_CASEFOLD: u32 = 0x20000;
const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const EXTENTS_FL: u32 = 0x80000;
const INLINE_DATA_FL: u32 = 0x1000_0000;

/// What went wrong, with where (shared with the XFS reader).
pub use super::FsError as Ext4ReadError;

type Result<T> = std::result::Result<T, Ext4ReadError>;

use super::corrupt;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An inode, as far as a listing needs it.
#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: u32,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u16,
    pub mtime: i64,
    pub mtime_nsec: u32,
    flags: u32,
    file_acl: u64,
    block: [u8; 60],
}

impl Inode {
    pub fn file_type(&self) -> u16 {
        self.mode & 0o170000
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == 0o040000
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == 0o120000
    }
    pub fn is_file(&self) -> bool {
        self.file_type() == 0o100000
    }
    /// Major and minor of a device (old encoding in `i_block[0]`, new in
    /// `i_block[1]`).
    pub fn device(&self) -> (u32, u32) {
        let old = le32(&self.block, 0);
        if old != 0 {
            return ((old >> 8) & 0xff, old & 0xff);
        }
        let new = le32(&self.block, 4);
        ((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00))
    }
}

/// One extent: `len` blocks from logical `logical` at physical `start`
/// (`uninit`: reads as zeros).
#[derive(Debug, Clone, Copy)]
struct Extent {
    logical: u64,
    len: u64,
    start: u64,
    uninit: bool,
}

/// An ext4 filesystem inside a disk.
pub struct Fs {
    disk: Box<dyn DiskRead>,
    offset: u64,
    size: u64,
    block_size: u64,
    blocks: u64,
    inodes: u32,
    inodes_per_group: u32,
    inode_size: u64,
    /// Inode table block of each group.
    tables: Vec<u64>,
    incompat: u32,
    uuid: [u8; 16],
    label: Vec<u8>,
}

impl Fs {
    /// Open the filesystem at `offset` of `disk`, `size` bytes long.
    pub fn open(disk: Box<dyn DiskRead>, offset: u64, size: u64) -> Result<Fs> {
        let mut fs = Fs {
            disk,
            offset,
            size,
            block_size: 1024,
            blocks: 0,
            inodes: 0,
            inodes_per_group: 0,
            inode_size: 128,
            tables: Vec::new(),
            incompat: 0,
            uuid: [0; 16],
            label: Vec::new(),
        };
        let mut sb = [0u8; 1024];
        fs.read(1024, &mut sb)?;
        if le16(&sb, 0x38) != 0xEF53 {
            return Err(corrupt(
                "no ext4 superblock (magic 0xEF53) in the root partition",
            ));
        }
        let log = le32(&sb, 0x18);
        if log > 6 {
            return Err(corrupt(format!(
                "a block size of 1024 << {log}: the limit is 64 KiB"
            )));
        }
        fs.block_size = 1024 << log;
        fs.incompat = le32(&sb, 0x60);
        fs.uuid.copy_from_slice(&sb[0x68..0x78]);
        fs.label = sb[0x78..0x88]
            .iter()
            .copied()
            .take_while(|&c| c != 0)
            .collect();
        for (bit, what) in [
            (INCOMPAT_META_BG, "meta_bg"),
            (INCOMPAT_ENCRYPT, "encryption"),
            (INCOMPAT_CASEFOLD, "case folding"),
            (INCOMPAT_INLINE_DATA, "inline data"),
        ] {
            if fs.incompat & bit != 0 {
                return Err(Ext4ReadError::Unsupported(format!("an ext4 with {what}")));
            }
        }
        if fs.incompat & INCOMPAT_RECOVER != 0 {
            return Err(Ext4ReadError::Unsupported(
                "a filesystem whose journal needs recovery".into(),
            ));
        }
        let is64 = fs.incompat & INCOMPAT_64BIT != 0;
        fs.blocks = u64::from(le32(&sb, 0x4))
            | if is64 {
                u64::from(le32(&sb, 0x150)) << 32
            } else {
                0
            };
        if fs.blocks.saturating_mul(fs.block_size) > size {
            return Err(corrupt(format!(
                "the superblock says {} blocks of {} bytes, more than the {size}-byte partition",
                fs.blocks, fs.block_size
            )));
        }
        fs.inodes = le32(&sb, 0x0);
        fs.inodes_per_group = le32(&sb, 0x28);
        let blocks_per_group = u64::from(le32(&sb, 0x20));
        if fs.inodes_per_group == 0 || blocks_per_group == 0 {
            return Err(corrupt("a superblock with empty block groups"));
        }
        if le32(&sb, 0x4C) >= 1 {
            fs.inode_size = u64::from(le16(&sb, 0x58));
        }
        if fs.inode_size < 128 || fs.inode_size > fs.block_size || !fs.inode_size.is_power_of_two()
        {
            return Err(corrupt(format!("an inode size of {}", fs.inode_size)));
        }
        let first_data = u64::from(le32(&sb, 0x14));
        let groups = (fs.blocks - first_data.min(fs.blocks)).div_ceil(blocks_per_group);
        let needed = u64::from(fs.inodes).div_ceil(u64::from(fs.inodes_per_group));
        if groups == 0 || needed > groups {
            return Err(corrupt(format!(
                "{} inodes in {groups} groups of {}",
                fs.inodes, fs.inodes_per_group
            )));
        }
        if groups > MAX_GROUPS {
            return Err(corrupt(format!(
                "{groups} block groups: the limit is {MAX_GROUPS}"
            )));
        }
        let desc_size = if is64 { u64::from(le16(&sb, 0xFE)) } else { 32 };
        if !(32..=1024).contains(&desc_size) || !desc_size.is_power_of_two() {
            return Err(corrupt(format!("a group descriptor size of {desc_size}")));
        }
        // The inode table of each group that holds inodes, a chunk of
        // descriptors at a time.
        let gdt = (first_data + 1) * fs.block_size;
        let mut chunk = Vec::new();
        for first in (0..needed).step_by(4096) {
            let n = (needed - first).min(4096);
            chunk.resize((n * desc_size) as usize, 0);
            fs.read(gdt + first * desc_size, &mut chunk)?;
            for d in chunk.chunks_exact(desc_size as usize) {
                let mut t = u64::from(le32(d, 0x8));
                if desc_size >= 64 {
                    t |= u64::from(le32(d, 0x28)) << 32;
                }
                fs.tables.push(t);
            }
        }
        Ok(fs)
    }

    fn read(&mut self, at: u64, buf: &mut [u8]) -> Result<()> {
        if at
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(corrupt(format!(
                "a read at byte {at} runs past the {}-byte partition",
                self.size
            )));
        }
        self.disk
            .read_at(buf, self.offset + at)
            .map_err(|source| Ext4ReadError::Io { offset: at, source })
    }

    fn block_in_range(&self, block: u64, len: u64, what: &str) -> Result<()> {
        if block.checked_add(len).is_none_or(|end| end > self.blocks) {
            return Err(corrupt(format!(
                "{what} at block {block} ({len} blocks) lies outside the {} blocks of the \
                 filesystem",
                self.blocks
            )));
        }
        Ok(())
    }

    pub fn inode(&mut self, ino: u32) -> Result<Inode> {
        if ino == 0 || ino > self.inodes {
            return Err(corrupt(format!(
                "inode {ino} is outside the filesystem's {} inodes",
                self.inodes
            )));
        }
        let g = ((ino - 1) / self.inodes_per_group) as usize;
        let i = u64::from((ino - 1) % self.inodes_per_group);
        let table = self.tables[g];
        let at = table
            .checked_mul(self.block_size)
            .and_then(|t| t.checked_add(i * self.inode_size))
            .ok_or_else(|| corrupt(format!("inode {ino}'s table is out of range")))?;
        let mut b = [0u8; 160];
        let n = (self.inode_size as usize).min(b.len());
        self.read(at, &mut b[..n])?;
        let extra = if n > 128 {
            usize::from(le16(&b, 0x80))
        } else {
            0
        };
        let (mut mtime, mut mtime_nsec) = (i64::from(le32(&b, 0x10) as i32), 0);
        if extra >= 12 {
            let x = le32(&b, 0x88);
            mtime += i64::from(x & 3) << 32;
            mtime_nsec = (x >> 2).min(999_999_999);
        }
        let mut block = [0u8; 60];
        block.copy_from_slice(&b[0x28..0x28 + 60]);
        Ok(Inode {
            ino,
            mode: le16(&b, 0x0),
            uid: u32::from(le16(&b, 0x2)) | u32::from(le16(&b, 0x78)) << 16,
            gid: u32::from(le16(&b, 0x18)) | u32::from(le16(&b, 0x7A)) << 16,
            size: u64::from(le32(&b, 0x4)) | u64::from(le32(&b, 0x6C)) << 32,
            nlink: le16(&b, 0x1A),
            mtime,
            mtime_nsec,
            flags: le32(&b, 0x20),
            file_acl: u64::from(le32(&b, 0x68)) | u64::from(le16(&b, 0x76)) << 32,
            block,
        })
    }

    /// The extents of `inode`, in logical order.
    fn extents(&mut self, inode: &Inode) -> Result<Vec<Extent>> {
        if inode.flags & INLINE_DATA_FL != 0 {
            return Err(Ext4ReadError::Unsupported(format!(
                "inode {}'s inline data",
                inode.ino
            )));
        }
        if inode.flags & EXTENTS_FL == 0 || self.incompat & INCOMPAT_EXTENTS == 0 {
            return Err(Ext4ReadError::Unsupported(format!(
                "inode {}'s block map (an ext2/3-style file)",
                inode.ino
            )));
        }
        let mut out = Vec::new();
        // (node bytes, depth expected), root first.
        let mut stack: Vec<(Vec<u8>, Option<u16>)> = vec![(inode.block.to_vec(), None)];
        // A file needs no more extents than it has blocks, and a tree
        // holds no more than the filesystem has blocks.
        let max_extents = inode
            .size
            .div_ceil(self.block_size)
            .min(self.blocks)
            .saturating_add(1) as usize;
        // Tree nodes read: each block once, or the tree is a graph whose
        // paths multiply with every level (a hang, not an error).
        let mut nodes = HashSet::new();
        while let Some((node, want_depth)) = stack.pop() {
            if le16(&node, 0) != 0xF30A {
                return Err(corrupt(format!("inode {}: bad extent header", inode.ino)));
            }
            let (entries, max, depth) = (le16(&node, 2), le16(&node, 4), le16(&node, 6));
            if depth > MAX_EXTENT_DEPTH || want_depth.is_some_and(|d| d != depth) {
                return Err(corrupt(format!(
                    "inode {}: an extent tree node of depth {depth} (the limit is \
                     {MAX_EXTENT_DEPTH}, one less than its parent)",
                    inode.ino
                )));
            }
            if entries > max || 12 + usize::from(max) * 12 > node.len() {
                return Err(corrupt(format!(
                    "inode {}: an extent node claims {entries} of {max} entries in {} bytes",
                    inode.ino,
                    node.len()
                )));
            }
            // Children pushed in reverse so they pop in order.
            let mut children = Vec::new();
            for k in 0..usize::from(entries) {
                let e = &node[12 + k * 12..24 + k * 12];
                if depth == 0 {
                    let raw_len = le16(e, 4);
                    let (len, uninit) = if raw_len > 32768 {
                        (raw_len - 32768, true)
                    } else {
                        (raw_len, false)
                    };
                    let start = u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8));
                    let ext = Extent {
                        logical: u64::from(le32(e, 0)),
                        len: u64::from(len),
                        start,
                        uninit,
                    };
                    self.block_in_range(start, ext.len, "an extent")?;
                    out.push(ext);
                    if out.len() > max_extents {
                        return Err(corrupt(format!(
                            "inode {} has more extents than its {} bytes need",
                            inode.ino, inode.size
                        )));
                    }
                } else {
                    let leaf = u64::from(le16(e, 8)) << 32 | u64::from(le32(e, 4));
                    self.block_in_range(leaf, 1, "an extent index block")?;
                    if !nodes.insert(leaf) {
                        return Err(corrupt(format!(
                            "inode {}: extent tree block {leaf} is reached twice",
                            inode.ino
                        )));
                    }
                    children.push(leaf);
                }
            }
            for leaf in children.into_iter().rev() {
                let mut b = vec![0u8; self.block_size as usize];
                self.read(leaf * self.block_size, &mut b)?;
                stack.push((b, Some(depth - 1)));
            }
        }
        out.sort_by_key(|e| e.logical);
        Ok(out)
    }

    /// Stream the first `size` bytes of `inode`'s data to `sink`.
    pub fn read_data(
        &mut self,
        inode: &Inode,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let extents = self.extents(inode)?;
        let bs = self.block_size;
        let mut pos = 0u64;
        let zeros = vec![0u8; 64 * 1024];
        let mut buf = vec![0u8; 1 << 20];
        let emit_zeros = |n: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
            let mut left = n;
            while left > 0 {
                let k = left.min(zeros.len() as u64) as usize;
                sink(&zeros[..k])?;
                left -= k as u64;
            }
            Ok(())
        };
        for e in extents {
            let from = e.logical * bs;
            if from >= inode.size {
                break;
            }
            if from < pos {
                return Err(corrupt(format!(
                    "inode {}: extents overlap at block {}",
                    inode.ino, e.logical
                )));
            }
            emit_zeros(from - pos, &mut sink)?;
            let len = (e.len * bs).min(inode.size - from);
            if e.uninit {
                emit_zeros(len, &mut sink)?;
            } else {
                let mut done = 0;
                while done < len {
                    let k = (len - done).min(buf.len() as u64) as usize;
                    self.read(e.start * bs + done, &mut buf[..k])?;
                    sink(&buf[..k])?;
                    done += k as u64;
                }
            }
            pos = from + len;
        }
        emit_zeros(inode.size.saturating_sub(pos), &mut sink)
    }

    /// A symlink's target.
    pub fn link_target(&mut self, inode: &Inode) -> Result<Vec<u8>> {
        if inode.size > 4096 {
            return Err(corrupt(format!(
                "inode {}: a symlink of {} bytes (the limit is 4096)",
                inode.ino, inode.size
            )));
        }
        if inode.size < 60 && inode.flags & (EXTENTS_FL | INLINE_DATA_FL) == 0 {
            return Ok(inode.block[..inode.size as usize].to_vec());
        }
        let mut out = Vec::new();
        self.read_data(inode, |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// The entries of a directory: (name, inode), `.` and `..` left out.
    /// Its blocks are parsed as they are read, so a directory that claims
    /// more than it holds (a hole reads as zeros: a bad entry) fails at
    /// its first empty block instead of being read whole into memory.
    pub fn read_dir(&mut self, dir: &Inode) -> Result<Vec<(Vec<u8>, u32)>> {
        let limit = (1u64 << 30).min(self.blocks.saturating_mul(self.block_size));
        if dir.size > limit {
            return Err(corrupt(format!(
                "directory inode {} claims {} bytes, more than the filesystem's {} (the limit \
                 is 1 GiB)",
                dir.ino,
                dir.size,
                self.blocks.saturating_mul(self.block_size)
            )));
        }
        let bs = self.block_size as usize;
        let mut out = Vec::new();
        let mut block = Vec::with_capacity(bs);
        self.read_data(dir, |mut b| {
            while !b.is_empty() {
                let take = (bs - block.len()).min(b.len());
                block.extend_from_slice(&b[..take]);
                b = &b[take..];
                if block.len() == bs {
                    dir_block(dir.ino, &block, &mut out)?;
                    block.clear();
                }
            }
            Ok(())
        })?;
        dir_block(dir.ino, &block, &mut out)?;
        Ok(out)
    }
}

/// The entries of one directory block of directory inode `ino`.
fn dir_block(ino: u32, block: &[u8], out: &mut Vec<(Vec<u8>, u32)>) -> Result<()> {
    let mut at = 0usize;
    while at + 8 <= block.len() {
        let entry = le32(block, at);
        let rec_len = usize::from(le16(block, at + 4));
        let name_len = usize::from(block[at + 6]);
        if rec_len < 8 || at + rec_len > block.len() || 8 + name_len > rec_len {
            return Err(corrupt(format!(
                "directory inode {ino}: a bad entry at byte {at} of a block"
            )));
        }
        let name = &block[at + 8..at + 8 + name_len];
        if entry != 0 && name != b"." && name != b".." {
            if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                return Err(corrupt(format!(
                    "directory inode {ino}: an entry named {:?}",
                    String::from_utf8_lossy(name)
                )));
            }
            out.push((name.to_vec(), entry));
        }
        at += rec_len;
    }
    Ok(())
}

/// One path found by [`walk`].
#[derive(Debug, Clone)]
pub struct Found {
    pub inode: Inode,
    /// A symlink's target; empty otherwise.
    pub target: Vec<u8>,
}

/// Every path of the filesystem, by name, `/` included.
pub fn walk(fs: &mut Fs) -> Result<BTreeMap<Vec<u8>, Found>> {
    let root = fs.inode(ROOT_INO)?;
    if !root.is_dir() {
        return Err(corrupt("the root inode is not a directory"));
    }
    let mut out = BTreeMap::new();
    let mut seen_dirs = HashSet::from([ROOT_INO]);
    out.insert(
        b"/".to_vec(),
        Found {
            inode: root.clone(),
            target: Vec::new(),
        },
    );
    let mut stack = vec![(root, b"/".to_vec(), 0usize)];
    while let Some((dir, path, depth)) = stack.pop() {
        for (name, ino) in fs.read_dir(&dir)? {
            let inode = fs.inode(ino)?;
            let mut p = path.clone();
            if p.len() > 1 {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            let target = if inode.is_symlink() {
                fs.link_target(&inode)?
            } else {
                Vec::new()
            };
            if inode.is_dir() {
                if !seen_dirs.insert(ino) {
                    return Err(corrupt(format!(
                        "directory inode {ino} is reached twice (at `{}`): a directory cycle",
                        String::from_utf8_lossy(&p)
                    )));
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(corrupt(format!(
                        "directories nested more than {MAX_DEPTH} deep"
                    )));
                }
                stack.push((inode.clone(), p.clone(), depth + 1));
            }
            out.insert(p, Found { inode, target });
            if out.len() > MAX_ENTRIES {
                return Err(corrupt(format!("more than {MAX_ENTRIES} paths")));
            }
        }
    }
    Ok(out)
}

/// The inode `path` names, symlinks followed (inside the filesystem: `..`
/// stops at `/`), from a [`walk`]'s listing.
pub fn resolve<'a>(found: &'a BTreeMap<Vec<u8>, Found>, path: &[u8]) -> Option<&'a Found> {
    let mut todo: Vec<Vec<u8>> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(<[u8]>::to_vec)
        .collect();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match &c[..] {
            b"." => continue,
            b".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let key = [b"/".to_vec(), cur.join(&b'/')].concat();
        let f = found.get(&key)?;
        if f.inode.is_symlink() {
            hops += 1;
            if hops > MAX_HOPS {
                return None;
            }
            cur.pop();
            if f.target.first() == Some(&b'/') {
                cur.clear();
            }
            todo.extend(
                f.target
                    .split(|&b| b == b'/')
                    .filter(|c| !c.is_empty())
                    .rev()
                    .map(<[u8]>::to_vec),
            );
        }
    }
    let key = [b"/".to_vec(), cur.join(&b'/')].concat();
    found.get(&key)
}

/// The most bytes of extended attributes read for one inode (its in-inode
/// area and one block).
const MAX_XATTR_BYTES: usize = 128 * 1024;

impl Fs {
    /// An inode's extended attributes: those in the inode after
    /// `i_extra_isize` and those in its `i_file_acl` block ("Extended
    /// Attributes" in the kernel's ext4 documentation). POSIX ACLs are
    /// given in the kernel's `posix_acl_xattr` form.
    pub fn xattrs(&mut self, inode: &Inode) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut out = BTreeMap::new();
        let ino = inode.ino;
        if self.inode_size > 128 {
            let table = self.tables[((ino - 1) / self.inodes_per_group) as usize];
            let at = table * self.block_size
                + u64::from((ino - 1) % self.inodes_per_group) * self.inode_size;
            let mut b = vec![0u8; self.inode_size as usize];
            self.read(at, &mut b)?;
            let extra = 128 + usize::from(le16(&b, 0x80));
            if extra + 4 <= b.len() && le32(&b, extra) == 0xEA02_0000 {
                let area = &b[extra + 4..];
                xattr_entries(ino, area, 0, area, &mut out)?;
            }
        }
        if inode.file_acl != 0 {
            self.block_in_range(inode.file_acl, 1, "an xattr block")?;
            let mut b = vec![0u8; self.block_size as usize];
            self.read(inode.file_acl * self.block_size, &mut b)?;
            if le32(&b, 0) != 0xEA02_0000 {
                return Err(corrupt(format!(
                    "inode {ino}: its xattr block has no magic"
                )));
            }
            xattr_entries(ino, &b, 32, &b, &mut out)?;
        }
        Ok(out)
    }

    /// A regular file's data extents (uninitialized ones are holes).
    pub fn map(&mut self, inode: &Inode) -> Result<Vec<super::Mapped>> {
        let mut out = Vec::new();
        for e in self.extents(inode)? {
            let from = e.logical * self.block_size;
            if e.uninit || from >= inode.size {
                continue;
            }
            out.push(super::Mapped {
                file_offset: from,
                len: (e.len * self.block_size).min(inode.size - from),
                disk_offset: self.offset + e.start * self.block_size,
            });
        }
        Ok(out)
    }
}

/// The entries of an xattr area: entries from `first` of `b`, values at
/// offsets into `values`.
fn xattr_entries(
    ino: u32,
    b: &[u8],
    first: usize,
    values: &[u8],
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let bad = || corrupt(format!("inode {ino}: a damaged extended attribute entry"));
    let mut at = first;
    let mut total = 0usize;
    while at + 4 <= b.len() && le32(b, at) != 0 {
        let h = b.get(at..at + 16).ok_or_else(bad)?;
        let (nl, index) = (usize::from(h[0]), h[1]);
        let (voff, vino, vsize) = (usize::from(le16(h, 2)), le32(h, 4), le32(h, 8) as usize);
        if vino != 0 {
            return Err(Ext4ReadError::Unsupported(format!(
                "inode {ino}: an extended attribute value in an inode (ea_inode)"
            )));
        }
        let name = b.get(at + 16..at + 16 + nl).ok_or_else(bad)?;
        let value = values.get(voff..voff + vsize).ok_or_else(bad)?;
        total += nl + vsize;
        if total > MAX_XATTR_BYTES {
            return Err(bad());
        }
        let name = String::from_utf8_lossy(name);
        let (full, value) = match index {
            1 => (format!("user.{name}"), value.to_vec()),
            2 => ("system.posix_acl_access".into(), acl(value)),
            3 => ("system.posix_acl_default".into(), acl(value)),
            4 => (format!("trusted.{name}"), value.to_vec()),
            6 => (format!("security.{name}"), value.to_vec()),
            7 => (format!("system.{name}"), value.to_vec()),
            8 => ("system.richacl".into(), value.to_vec()),
            _ => return Err(bad()),
        };
        out.insert(full, value);
        at += (16 + nl).div_ceil(4) * 4;
    }
    Ok(())
}

/// ext4's ACL (version 1, short entries without an id) as the kernel's
/// `posix_acl_xattr` (version 2, tag, perm, id).
fn acl(v: &[u8]) -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    let mut at = 4;
    while at + 4 <= v.len() {
        let (tag, perm) = (le16(v, at), le16(v, at + 2));
        let id = if (tag == 2 || tag == 8) && at + 8 <= v.len() {
            at += 8;
            le32(v, at - 4)
        } else {
            at += 4;
            u32::MAX
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

impl super::ReadFs for Fs {
    fn root_ino(&self) -> u64 {
        u64::from(ROOT_INO)
    }

    fn stat(&mut self, ino: u64) -> Result<super::Stat> {
        let i = self.inode(small(ino)?)?;
        let kind = super::FileType::from_mode(u32::from(i.mode))
            .ok_or_else(|| corrupt(format!("inode {ino}: a mode of {:#o}", i.mode)))?;
        Ok(super::Stat {
            ino,
            kind,
            mode: i.mode & 0o7777,
            uid: i.uid,
            gid: i.gid,
            nlink: u32::from(i.nlink),
            size: i.size,
            mtime: i.mtime,
            mtime_nsec: i.mtime_nsec,
            rdev: i.device(),
        })
    }

    fn read_dir(&mut self, ino: u64) -> Result<Vec<(Vec<u8>, u64)>> {
        let i = self.inode(small(ino)?)?;
        Ok(Fs::read_dir(self, &i)?
            .into_iter()
            .map(|(n, c)| (n, u64::from(c)))
            .collect())
    }

    fn link_target(&mut self, ino: u64) -> Result<Vec<u8>> {
        let i = self.inode(small(ino)?)?;
        Fs::link_target(self, &i)
    }

    fn xattrs(&mut self, ino: u64) -> Result<BTreeMap<String, Vec<u8>>> {
        let i = self.inode(small(ino)?)?;
        Fs::xattrs(self, &i)
    }

    fn file_map(&mut self, ino: u64) -> Result<Vec<super::Mapped>> {
        let i = self.inode(small(ino)?)?;
        self.map(&i)
    }

    fn disk(&mut self) -> &mut dyn DiskRead {
        &mut *self.disk
    }

    fn ids(&self) -> ([u8; 16], Vec<u8>) {
        (self.uuid, self.label.clone())
    }
}

fn small(ino: u64) -> Result<u32> {
    u32::try_from(ino).map_err(|_| corrupt(format!("inode {ino} is out of range")))
}
