//! A read-only XFS v5 reader: the root filesystem of Amazon Linux 2023's
//! own disk images, for bases read from disk images and for `inspect` and
//! `diff`.
//!
//! What it reads, from the "XFS Algorithms & Data Structures" book
//! (xfs-documentation, "Global Structures": superblock, on-disk inode,
//! data and attribute forks, B+trees, "Directories", "Symbolic Links",
//! "Extended Attributes", "Metadata Checksums" and "Timestamps"): the
//! superblock of AG 0 (version 5 only, its CRC checked), inodes of version
//! 3 (magic, CRC and inode number checked; big timestamps), data forks in
//! local, extent list and B+tree form (`BMA3` blocks, CRC checked),
//! directories in short form, block (`XDB3`), leaf and node form (their
//! data blocks, `XDD3`, the only ones holding entries; the leaf and free
//! index blocks above 32 GiB are not needed to list them), symlinks inline
//! and remote (one `XSLM` header per extent, its CRC over the extent, as
//! the kernel reads them), extended attributes in short form, leaf
//! (`0x3bee`) and node (`0x3ebe`) form with remote values (`XARM`); POSIX
//! ACLs (`SGI_ACL_FILE`, `SGI_ACL_DEFAULT`) are given as the kernel gives
//! them, `system.posix_acl_access`/`_default`; parent pointers are left
//! out. Unwritten extents read as holes.
//!
//! Refused by name: a superblock of another version, an incompatible
//! feature this reader does not know (known: `ftype`, sparse inodes,
//! `meta_uuid`, big timestamps, large extent counts, parent pointers,
//! exchange-range), `needsrepair`, the metadata directory tree, a realtime
//! device, a log that needs recovery (log-incompatible features set) and a
//! filesystem mkfs did not finish (`sb_inprogress`).
//!
//! Why our own: no maintained crate reads XFS v5 with every directory and
//! attribute form (the few that exist read v4 or short-form directories
//! only); the on-disk format is documented and small for a reader.
//!
//! Limits, each named in its error: blocks of 512 bytes to 64 KiB; inodes
//! of 256 to 2048 bytes; every block inside the filesystem and every AG
//! number below `sb_agcount`; B+trees at most [`MAX_LEVELS`] deep with
//! record counts inside their block, each block reached once (a loop is an
//! error) and no more extents than the inode says; directories of at most
//! 1 GiB of data blocks; symlinks of at most 1024 bytes (the format's
//! own); attribute values of at most 64 KiB and at most
//! [`MAX_XATTR_BYTES`] of attributes per inode.

use std::collections::{BTreeMap, HashSet};

use super::{FileType, FsError, Mapped, ReadFs, Stat, corrupt};
use crate::disk::view::DiskRead;

type Result<T> = std::result::Result<T, FsError>;

/// The deepest B+tree followed (a bmap tree of 2^64 extents is 9 deep).
pub const MAX_LEVELS: u16 = 10;
/// The most attribute bytes (names and values) one inode may have.
pub const MAX_XATTR_BYTES: usize = 4 << 20;
const MAX_DIR_BYTES: u64 = 1 << 30;
const MAX_SYMLINK: u64 = 1024;
/// Directory data blocks live below this byte offset of the directory.
const DIR_LEAF_OFFSET: u64 = 32 << 30;

const INCOMPAT_FTYPE: u32 = 1;
const INCOMPAT_KNOWN: [(u32, &str); 9] = [
    (1, "ftype"),
    (2, "sparse inodes"),
    (4, "meta_uuid"),
    (8, "big timestamps"),
    (16, "needsrepair"),
    (32, "large extent counts"),
    (64, "exchange-range"),
    (128, "parent pointers"),
    (256, "metadata directory tree"),
];
const INCOMPAT_READ: u32 = 1 | 2 | 4 | 8 | 32 | 64 | 128;
const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;
const INODE_CORE: usize = 176;

const FMT_DEV: u8 = 0;
const FMT_LOCAL: u8 = 1;
const FMT_EXTENTS: u8 = 2;
const FMT_BTREE: u8 = 3;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap_or_default())
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// Does `b`'s CRC32C (stored little-endian at `at`, taken as zero) hold?
fn crc_ok(b: &[u8], at: usize) -> bool {
    if b.len() < at + 4 {
        return false;
    }
    let c = crc32c::crc32c(&b[..at]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    let c = crc32c::crc32c_append(c, &b[at + 4..]);
    c == u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One extent of a fork: `len` blocks from file block `logical` at
/// filesystem block `start` (`unwritten`: reads as zeros).
#[derive(Debug, Clone, Copy)]
struct Extent {
    logical: u64,
    len: u64,
    start: u64,
    unwritten: bool,
}

/// An inode as read.
#[derive(Debug, Clone)]
pub struct Inode {
    pub stat: Stat,
    format: u8,
    aformat: u8,
    nextents: u64,
    anextents: u64,
    /// The data fork's bytes and the attribute fork's (empty when none).
    data: Vec<u8>,
    attr: Vec<u8>,
}

/// An XFS filesystem inside a disk.
pub struct Fs {
    disk: Box<dyn DiskRead>,
    offset: u64,
    size: u64,
    bs: u64,
    dblocks: u64,
    agblocks: u64,
    agcount: u64,
    agblklog: u32,
    inopblog: u32,
    inode_size: usize,
    dirblk: u64,
    ftype: bool,
    root: u64,
    uuid: [u8; 16],
    label: Vec<u8>,
}

impl Fs {
    /// Open the filesystem at `offset` of `disk`, `size` bytes long.
    pub fn open(mut disk: Box<dyn DiskRead>, offset: u64, size: u64) -> Result<Fs> {
        let mut sb = vec![0u8; 512];
        if size < 512 {
            return Err(corrupt("a partition too small for an XFS superblock"));
        }
        disk.read_at(&mut sb, offset)
            .map_err(|source| FsError::Io { offset: 0, source })?;
        if &sb[..4] != b"XFSB" {
            return Err(corrupt("no XFS superblock (magic XFSB) in the partition"));
        }
        let version = be16(&sb, 0x64) & 0xf;
        if version != 5 {
            return Err(FsError::Unsupported(format!(
                "an XFS of superblock version {version} (only version 5)"
            )));
        }
        let sectsize = u64::from(be16(&sb, 0x66));
        if !(512..=32768).contains(&sectsize) || !sectsize.is_power_of_two() {
            return Err(corrupt(format!(
                "the superblock: a sector size of {sectsize}"
            )));
        }
        sb.resize(sectsize as usize, 0);
        disk.read_at(&mut sb, offset)
            .map_err(|source| FsError::Io { offset: 0, source })?;
        if !crc_ok(&sb, 0xE0) {
            return Err(corrupt("the superblock's CRC does not match"));
        }
        let incompat = be32(&sb, 0xD8);
        for (bit, name) in INCOMPAT_KNOWN {
            if incompat & bit != 0 && INCOMPAT_READ & bit == 0 {
                return Err(FsError::Unsupported(format!("an XFS with {name}")));
            }
        }
        if incompat & !INCOMPAT_KNOWN.iter().fold(0, |a, (b, _)| a | b) != 0 {
            return Err(FsError::Unsupported(format!(
                "an XFS with unknown incompatible features {incompat:#x}"
            )));
        }
        if be32(&sb, 0xDC) != 0 {
            return Err(FsError::Unsupported(
                "an XFS whose log needs recovery (log-incompatible features are set)".into(),
            ));
        }
        if sb[0x7E] != 0 {
            return Err(corrupt("the superblock says mkfs did not finish"));
        }
        if be64(&sb, 0x10) != 0 {
            return Err(FsError::Unsupported("an XFS with a realtime device".into()));
        }
        let bs = u64::from(be32(&sb, 0x04));
        let blocklog = u32::from(sb[0x78]);
        if !(9..=16).contains(&blocklog) || bs != 1 << blocklog {
            return Err(corrupt(format!("the superblock: a block size of {bs}")));
        }
        let inode_size = usize::from(be16(&sb, 0x68));
        let inodelog = u32::from(sb[0x7A]);
        let inopblog = u32::from(sb[0x7B]);
        if !(256..=2048).contains(&inode_size)
            || 1usize.checked_shl(inodelog) != Some(inode_size)
            || inopblog != blocklog.saturating_sub(inodelog)
        {
            return Err(corrupt(format!(
                "the superblock: an inode size of {inode_size}"
            )));
        }
        let agblocks = u64::from(be32(&sb, 0x54));
        let agcount = u64::from(be32(&sb, 0x58));
        let agblklog = u32::from(sb[0x7C]);
        let dblocks = be64(&sb, 0x08);
        if agblocks == 0
            || agcount == 0
            || agblklog > 31
            || agblocks > 1 << agblklog
            || (agblklog > 0 && agblocks <= 1 << (agblklog - 1))
            || dblocks > agblocks * agcount
            || dblocks <= agblocks * (agcount - 1)
        {
            return Err(corrupt(format!(
                "the superblock: {dblocks} blocks in {agcount} groups of {agblocks}"
            )));
        }
        if dblocks.saturating_mul(bs) > size {
            return Err(corrupt(format!(
                "the superblock says {dblocks} blocks of {bs} bytes, more than the \
                 {size}-byte partition"
            )));
        }
        let dirblklog = u32::from(sb[0xC0]);
        if blocklog + dirblklog > 16 {
            return Err(corrupt(format!(
                "the superblock: directory blocks of 2^{} bytes",
                blocklog + dirblklog
            )));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&sb[0x20..0x30]);
        let label = sb[0x6C..0x78]
            .iter()
            .copied()
            .take_while(|&c| c != 0)
            .collect();
        Ok(Fs {
            disk,
            offset,
            size,
            bs,
            dblocks,
            agblocks,
            agcount,
            agblklog,
            inopblog,
            inode_size,
            dirblk: bs << dirblklog,
            ftype: incompat & INCOMPAT_FTYPE != 0,
            root: be64(&sb, 0x38),
            uuid,
            label,
        })
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
            .map_err(|source| FsError::Io { offset: at, source })
    }

    /// The byte offset (in the partition) of filesystem block `fsb`, which
    /// with the `len` after it must lie inside one AG of the filesystem.
    fn block_at(&self, fsb: u64, len: u64, what: &str) -> Result<u64> {
        let ag = fsb >> self.agblklog;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        let linear = ag * self.agblocks + agbno;
        if ag >= self.agcount
            || agbno.saturating_add(len) > self.agblocks
            || linear.saturating_add(len) > self.dblocks
        {
            return Err(corrupt(format!(
                "{what} at block {fsb:#x} ({len} blocks) lies outside the filesystem"
            )));
        }
        Ok(linear * self.bs)
    }

    fn read_block(&mut self, fsb: u64, what: &str) -> Result<Vec<u8>> {
        let at = self.block_at(fsb, 1, what)?;
        let mut b = vec![0u8; self.bs as usize];
        self.read(at, &mut b)?;
        Ok(b)
    }

    /// Read inode `ino`.
    pub fn inode(&mut self, ino: u64) -> Result<Inode> {
        let agino_bits = self.agblklog + self.inopblog;
        let ag = ino >> agino_bits;
        let agino = ino & ((1u64 << agino_bits) - 1);
        let agbno = agino >> self.inopblog;
        let idx = agino & ((1u64 << self.inopblog) - 1);
        if ag >= self.agcount || agbno >= self.agblocks || ino == 0 {
            return Err(corrupt(format!("inode {ino} lies outside the filesystem")));
        }
        let at = self.block_at(ag << self.agblklog | agbno, 1, "an inode")?
            + idx * self.inode_size as u64;
        let mut b = vec![0u8; self.inode_size];
        self.read(at, &mut b)?;
        if &b[..2] != b"IN" || b[4] != 3 {
            return Err(corrupt(format!(
                "inode {ino}: no version 3 inode (magic IN) where it should be"
            )));
        }
        if !crc_ok(&b, 0x64) {
            return Err(corrupt(format!("inode {ino}: its CRC does not match")));
        }
        if be64(&b, 0x98) != ino {
            return Err(corrupt(format!(
                "inode {ino}: the inode there says it is {}",
                be64(&b, 0x98)
            )));
        }
        parse_inode(ino, &b)
    }

    /// The extents of a fork (`attr`: the attribute fork), in file order.
    fn extents(&mut self, inode: &Inode, attr: bool) -> Result<Vec<Extent>> {
        let (format, fork, count) = if attr {
            (inode.aformat, &inode.attr, inode.anextents)
        } else {
            (inode.format, &inode.data, inode.nextents)
        };
        let ino = inode.stat.ino;
        let mut out = Vec::new();
        match format {
            FMT_EXTENTS => {
                if count.saturating_mul(16) > fork.len() as u64 {
                    return Err(corrupt(format!(
                        "inode {ino}: {count} extents do not fit in its fork"
                    )));
                }
                for r in fork.chunks_exact(16).take(count as usize) {
                    out.push(self.extent(ino, r)?);
                }
            }
            FMT_BTREE => self.btree_extents(ino, fork, count, &mut out)?,
            _ => {
                return Err(corrupt(format!(
                    "inode {ino}: a fork of format {format} where extents should be"
                )));
            }
        }
        out.sort_by_key(|e| e.logical);
        for w in out.windows(2) {
            if w[0].logical + w[0].len > w[1].logical {
                return Err(corrupt(format!(
                    "inode {ino}: extents overlap at file block {}",
                    w[1].logical
                )));
            }
        }
        Ok(out)
    }

    fn extent(&self, ino: u64, r: &[u8]) -> Result<Extent> {
        let (l0, l1) = (be64(r, 0), be64(r, 8));
        let e = Extent {
            unwritten: l0 >> 63 != 0,
            logical: (l0 & ((1 << 63) - 1)) >> 9,
            start: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            len: l1 & 0x1f_ffff,
        };
        if e.len == 0 {
            return Err(corrupt(format!("inode {ino}: an empty extent")));
        }
        self.block_at(e.start, e.len, &format!("inode {ino}: an extent"))?;
        Ok(e)
    }

    /// The extents of a fork in B+tree form: the root in the inode, then
    /// `BMA3` blocks, each reached once.
    fn btree_extents(
        &mut self,
        ino: u64,
        root: &[u8],
        count: u64,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        if root.len() < 4 {
            return Err(corrupt(format!("inode {ino}: a B+tree root without room")));
        }
        let (level, n) = (be16(root, 0), usize::from(be16(root, 2)));
        let maxrecs = (root.len() - 4) / 16;
        if level == 0 || level > MAX_LEVELS || n == 0 || n > maxrecs {
            return Err(corrupt(format!(
                "inode {ino}: a B+tree root of level {level} with {n} records"
            )));
        }
        let mut stack: Vec<(u64, u16)> = (0..n)
            .rev()
            .map(|k| (be64(root, 4 + maxrecs * 8 + k * 8), level - 1))
            .collect();
        let mut seen = HashSet::new();
        while let Some((fsb, want)) = stack.pop() {
            if !seen.insert(fsb) {
                return Err(corrupt(format!(
                    "inode {ino}: B+tree block {fsb:#x} is reached twice (a loop)"
                )));
            }
            let b = self.read_block(fsb, &format!("inode {ino}: a B+tree block"))?;
            if &b[..4] != b"BMA3" || !crc_ok(&b, 64) || be64(&b, 56) != ino {
                return Err(corrupt(format!(
                    "inode {ino}: B+tree block {fsb:#x} is damaged (magic, CRC or owner)"
                )));
            }
            let (level, n) = (be16(&b, 4), usize::from(be16(&b, 6)));
            // A leaf record is 16 bytes; a node's key and pointer 8 each.
            let max = (b.len() - 72) / 16;
            if level != want || n > max {
                return Err(corrupt(format!(
                    "inode {ino}: B+tree block {fsb:#x} of level {level} with {n} records"
                )));
            }
            if level == 0 {
                for k in 0..n {
                    out.push(self.extent(ino, &b[72 + k * 16..88 + k * 16])?);
                    if out.len() as u64 > count.max(1) || out.len() as u64 > self.dblocks {
                        return Err(corrupt(format!(
                            "inode {ino} has more extents than the {count} it says"
                        )));
                    }
                }
            } else {
                for k in (0..n).rev() {
                    stack.push((be64(&b, 72 + max * 8 + k * 8), level - 1));
                }
            }
        }
        Ok(())
    }

    /// The bytes of file blocks `[logical, logical + n)` of a fork, holes
    /// as zeros.
    fn read_range(&mut self, map: &[Extent], logical: u64, n: u64) -> Result<Vec<u8>> {
        let mut out = vec![0u8; (n * self.bs) as usize];
        for e in map {
            let from = e.logical.max(logical);
            let to = (e.logical + e.len).min(logical + n);
            if from >= to || e.unwritten {
                continue;
            }
            let at = self.block_at(e.start + (from - e.logical), to - from, "a block")?;
            let dst = ((from - logical) * self.bs) as usize..((to - logical) * self.bs) as usize;
            self.read(at, &mut out[dst])?;
        }
        Ok(out)
    }

    fn dir_block(&self, ino: u64, b: &[u8], out: &mut Vec<(Vec<u8>, u64)>) -> Result<()> {
        let bad = |what: &str| corrupt(format!("directory inode {ino}: {what}"));
        let end = match &b[..4] {
            b"XDB3" => {
                let count = be32(b, b.len() - 8) as usize;
                b.len()
                    .checked_sub(8 + count.saturating_mul(8))
                    .filter(|&e| e >= 64)
                    .ok_or_else(|| bad("a block directory with a bad tail"))?
            }
            b"XDD3" => b.len(),
            _ => return Err(bad("a data block without its magic (XDB3 or XDD3)")),
        };
        if !crc_ok(b, 4) || be64(b, 40) != ino {
            return Err(bad("a data block whose CRC or owner does not match"));
        }
        let mut at = 64;
        while at < end {
            if at + 8 > end {
                return Err(bad(&format!("a truncated entry at byte {at} of a block")));
            }
            if be16(b, at) == 0xffff {
                let len = usize::from(be16(b, at + 2));
                if len < 8 || len % 8 != 0 || at + len > end {
                    return Err(bad(&format!("a bad free space at byte {at} of a block")));
                }
                at += len;
                continue;
            }
            let child = be64(b, at);
            let nl = usize::from(b[at + 8]);
            let len = (11 + nl + usize::from(self.ftype)).div_ceil(8) * 8;
            if nl == 0 || at + len > end {
                return Err(bad(&format!("a bad entry at byte {at} of a block")));
            }
            let name = &b[at + 9..at + 9 + nl];
            push_entry(ino, name, child, out)?;
            at += len;
        }
        Ok(())
    }

    /// Every attribute of an inode's fork in leaf or node form.
    fn attr_blocks(&mut self, inode: &Inode, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
        let ino = inode.stat.ino;
        let map = self.extents(inode, true)?;
        if map.is_empty() {
            return Ok(()); // a fork whose attributes were all removed
        }
        let mut stack = vec![(0u64, None::<u16>)];
        let mut seen = HashSet::new();
        let mut total = 0usize;
        while let Some((blk, want)) = stack.pop() {
            if !seen.insert(blk) || seen.len() > 1 << 20 {
                return Err(corrupt(format!(
                    "inode {ino}: attribute block {blk} is reached twice (a loop)"
                )));
            }
            let b = self.read_range(&map, blk, 1)?;
            let magic = be16(&b, 8);
            if !crc_ok(&b, 12) || be64(&b, 48) != ino {
                return Err(corrupt(format!(
                    "inode {ino}: attribute block {blk}'s CRC or owner does not match"
                )));
            }
            match magic {
                0x3ebe => {
                    let (n, level) = (usize::from(be16(&b, 56)), be16(&b, 58));
                    if level == 0
                        || level > MAX_LEVELS
                        || want.is_some_and(|w| w != level)
                        || 64 + n * 8 > b.len()
                    {
                        return Err(corrupt(format!(
                            "inode {ino}: attribute node block {blk} is damaged"
                        )));
                    }
                    for k in (0..n).rev() {
                        stack.push((u64::from(be32(&b, 64 + k * 8 + 4)), Some(level - 1)));
                    }
                }
                0x3bee if want.is_none_or(|w| w == 0) => {
                    self.attr_leaf(ino, &map, &b, &mut total, out)?;
                }
                _ => {
                    return Err(corrupt(format!(
                        "inode {ino}: attribute block {blk} is neither a leaf nor a node"
                    )));
                }
            }
        }
        Ok(())
    }

    fn attr_leaf(
        &mut self,
        ino: u64,
        map: &[Extent],
        b: &[u8],
        total: &mut usize,
        out: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        let bad = || corrupt(format!("inode {ino}: an attribute leaf block is damaged"));
        let n = usize::from(be16(b, 56));
        if 80 + n * 8 > b.len() {
            return Err(bad());
        }
        for k in 0..n {
            let e = &b[80 + k * 8..88 + k * 8];
            let (idx, flags) = (usize::from(be16(e, 4)), e[6]);
            if flags & 0x80 != 0 {
                continue; // incomplete
            }
            let (name, value) = if flags & 1 != 0 {
                let h = b.get(idx..idx + 3).ok_or_else(bad)?;
                let (vl, nl) = (usize::from(be16(h, 0)), usize::from(h[2]));
                let name = b.get(idx + 3..idx + 3 + nl).ok_or_else(bad)?;
                let value = b.get(idx + 3 + nl..idx + 3 + nl + vl).ok_or_else(bad)?;
                (name.to_vec(), value.to_vec())
            } else {
                let h = b.get(idx..idx + 9).ok_or_else(bad)?;
                let (blk, vl, nl) = (be32(h, 0), be32(h, 4) as u64, usize::from(h[8]));
                let name = b.get(idx + 9..idx + 9 + nl).ok_or_else(bad)?.to_vec();
                (name, self.attr_remote(ino, map, u64::from(blk), vl)?)
            };
            *total += name.len() + value.len();
            if *total > MAX_XATTR_BYTES {
                return Err(corrupt(format!(
                    "inode {ino} has more than {MAX_XATTR_BYTES} bytes of attributes"
                )));
            }
            add_attr(flags, &name, value, out);
        }
        Ok(())
    }

    /// A remote attribute value: `XARM` blocks from file block `blk`.
    fn attr_remote(&mut self, ino: u64, map: &[Extent], blk: u64, len: u64) -> Result<Vec<u8>> {
        if len > 64 * 1024 {
            return Err(corrupt(format!(
                "inode {ino}: an attribute value of {len} bytes (the limit is 64 KiB)"
            )));
        }
        let per = self.bs - 56;
        let blocks = len.div_ceil(per);
        let raw = self.read_range(map, blk, blocks)?;
        let mut out = Vec::with_capacity(len as usize);
        for b in raw.chunks_exact(self.bs as usize) {
            let n = u64::from(be32(b, 8));
            if &b[..4] != b"XARM" || !crc_ok(b, 12) || n > per || be64(b, 32) != ino {
                return Err(corrupt(format!(
                    "inode {ino}: a remote attribute value block is damaged"
                )));
            }
            out.extend_from_slice(&b[56..56 + n as usize]);
        }
        if out.len() as u64 != len {
            return Err(corrupt(format!(
                "inode {ino}: a remote attribute value of {} bytes, not {len}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// An inode's core and forks.
fn parse_inode(ino: u64, b: &[u8]) -> Result<Inode> {
    let mode = u32::from(be16(b, 0x02));
    let kind = FileType::from_mode(mode)
        .ok_or_else(|| corrupt(format!("inode {ino}: a mode of {mode:#o}")))?;
    let flags2 = be64(b, 0x78);
    let (mtime, mtime_nsec) = if flags2 & DIFLAG2_BIGTIME != 0 {
        let ns = be64(b, 0x28);
        (
            (ns / 1_000_000_000) as i64 - (1 << 31),
            (ns % 1_000_000_000) as u32,
        )
    } else {
        (
            i64::from(be32(b, 0x28) as i32),
            be32(b, 0x2C).min(999_999_999),
        )
    };
    let (nextents, anextents) = if flags2 & DIFLAG2_NREXT64 != 0 {
        (be64(b, 0x18), u64::from(be32(b, 0x4C)))
    } else {
        (u64::from(be32(b, 0x4C)), u64::from(be16(b, 0x50)))
    };
    let forkoff = usize::from(b[0x52]) * 8;
    let room = b.len() - INODE_CORE;
    if forkoff > room {
        return Err(corrupt(format!(
            "inode {ino}: an attribute fork outside it"
        )));
    }
    let (data, attr) = if forkoff == 0 {
        (b[INODE_CORE..].to_vec(), Vec::new())
    } else {
        (
            b[INODE_CORE..INODE_CORE + forkoff].to_vec(),
            b[INODE_CORE + forkoff..].to_vec(),
        )
    };
    let format = b[0x05];
    let rdev = if format == FMT_DEV && data.len() >= 4 {
        let d = be32(&data, 0);
        (d >> 18, d & 0x3ffff)
    } else {
        (0, 0)
    };
    let size = be64(b, 0x38);
    if size > i64::MAX as u64 {
        return Err(corrupt(format!("inode {ino}: a size of {size}")));
    }
    Ok(Inode {
        stat: Stat {
            ino,
            kind,
            mode: (mode & 0o7777) as u16,
            uid: be32(b, 0x08),
            gid: be32(b, 0x0C),
            nlink: be32(b, 0x10),
            size,
            mtime,
            mtime_nsec,
            rdev,
        },
        format,
        aformat: if forkoff == 0 { u8::MAX } else { b[0x53] },
        nextents,
        anextents,
        data,
        attr,
    })
}

fn push_entry(ino: u64, name: &[u8], child: u64, out: &mut Vec<(Vec<u8>, u64)>) -> Result<()> {
    if name == b"." || name == b".." {
        return Ok(());
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(corrupt(format!(
            "directory inode {ino}: an entry named {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    out.push((name.to_vec(), child));
    Ok(())
}

/// An attribute by its namespace flags, as the kernel names it.
fn add_attr(flags: u8, name: &[u8], value: Vec<u8>, out: &mut BTreeMap<String, Vec<u8>>) {
    if flags & 8 != 0 {
        return; // a parent pointer
    }
    let name = String::from_utf8_lossy(name);
    let full = if flags & 2 != 0 {
        match &*name {
            "SGI_ACL_FILE" => {
                out.insert("system.posix_acl_access".into(), acl(&value));
                return;
            }
            "SGI_ACL_DEFAULT" => {
                out.insert("system.posix_acl_default".into(), acl(&value));
                return;
            }
            _ => format!("trusted.{name}"),
        }
    } else if flags & 4 != 0 {
        format!("security.{name}")
    } else {
        format!("user.{name}")
    };
    out.insert(full, value);
}

/// XFS's ACL (big-endian count, then tag, id, perm) as the kernel's
/// `posix_acl_xattr` (little-endian version 2, then tag, perm, id).
fn acl(v: &[u8]) -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    let n = if v.len() >= 4 { be32(v, 0) as usize } else { 0 };
    for e in v.get(4..).unwrap_or_default().chunks_exact(12).take(n) {
        let (tag, id, perm) = (be32(e, 0), be32(e, 4), be16(e, 8));
        let id = if tag == 2 || tag == 8 { id } else { u32::MAX };
        out.extend_from_slice(&(tag as u16).to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

impl ReadFs for Fs {
    fn root_ino(&self) -> u64 {
        self.root
    }

    fn stat(&mut self, ino: u64) -> Result<Stat> {
        Ok(self.inode(ino)?.stat)
    }

    fn read_dir(&mut self, ino: u64) -> Result<Vec<(Vec<u8>, u64)>> {
        let inode = self.inode(ino)?;
        if inode.stat.kind != FileType::Dir {
            return Err(corrupt(format!("inode {ino} is not a directory")));
        }
        let mut out = Vec::new();
        if inode.format == FMT_LOCAL {
            return short_dir(ino, &inode.data, inode.stat.size, self.ftype);
        }
        let map = self.extents(&inode, false)?;
        let per = self.dirblk / self.bs;
        let leaf = DIR_LEAF_OFFSET / self.bs;
        let mut starts: Vec<u64> = Vec::new();
        for e in map.iter().filter(|e| e.logical < leaf) {
            let first = e.logical / per * per;
            let end = (e.logical + e.len).min(leaf);
            starts.extend((first..end).step_by(per as usize).filter(|s| *s >= first));
            if starts.len() as u64 * self.dirblk > MAX_DIR_BYTES {
                return Err(corrupt(format!(
                    "directory inode {ino} has more than 1 GiB of data blocks"
                )));
            }
        }
        starts.dedup();
        for s in starts {
            let b = self.read_range(&map, s, per)?;
            self.dir_block(ino, &b, &mut out)?;
        }
        Ok(out)
    }

    fn link_target(&mut self, ino: u64) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        let size = inode.stat.size;
        if size == 0 || size > MAX_SYMLINK {
            return Err(corrupt(format!(
                "inode {ino}: a symlink of {size} bytes (1 to {MAX_SYMLINK})"
            )));
        }
        if inode.format == FMT_LOCAL {
            return inode
                .data
                .get(..size as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| corrupt(format!("inode {ino}: an inline symlink too long")));
        }
        // One header per extent (the kernel reads each extent as one
        // buffer), its CRC over the whole extent.
        let map = self.extents(&inode, false)?;
        let mut out = Vec::new();
        for e in &map {
            if e.len > MAX_SYMLINK.div_ceil(self.bs - 56) || out.len() as u64 >= size {
                return Err(corrupt(format!(
                    "inode {ino}: a remote symlink of more extents or blocks than it needs"
                )));
            }
            let b = self.read_range(&map, e.logical, e.len)?;
            let n = u64::from(be32(&b, 8));
            if &b[..4] != b"XSLM"
                || !crc_ok(&b, 12)
                || n > b.len() as u64 - 56
                || be64(&b, 32) != ino
                || u64::from(be32(&b, 4)) != out.len() as u64
            {
                return Err(corrupt(format!(
                    "inode {ino}: a remote symlink block is damaged"
                )));
            }
            out.extend_from_slice(&b[56..56 + n as usize]);
        }
        if out.len() as u64 != size {
            return Err(corrupt(format!(
                "inode {ino}: a symlink of {} bytes, not {size}",
                out.len()
            )));
        }
        Ok(out)
    }

    fn xattrs(&mut self, ino: u64) -> Result<BTreeMap<String, Vec<u8>>> {
        let inode = self.inode(ino)?;
        let mut out = BTreeMap::new();
        match inode.aformat {
            u8::MAX => {}
            FMT_LOCAL => {
                let a = &inode.attr;
                let bad = || corrupt(format!("inode {ino}: its short-form attributes"));
                if a.len() < 4 {
                    return Err(bad());
                }
                let total = usize::from(be16(a, 0)).min(a.len());
                let mut at = 4;
                for _ in 0..a[2] {
                    let h = a
                        .get(at..at + 3)
                        .filter(|_| at + 3 <= total)
                        .ok_or_else(bad)?;
                    let (nl, vl, flags) = (usize::from(h[0]), usize::from(h[1]), h[2]);
                    let end = at + 3 + nl + vl;
                    if end > total {
                        return Err(bad());
                    }
                    let name = &a[at + 3..at + 3 + nl];
                    add_attr(flags, name, a[at + 3 + nl..end].to_vec(), &mut out);
                    at = end;
                }
            }
            FMT_EXTENTS | FMT_BTREE => self.attr_blocks(&inode, &mut out)?,
            f => {
                return Err(corrupt(format!(
                    "inode {ino}: an attribute fork of format {f}"
                )));
            }
        }
        Ok(out)
    }

    fn file_map(&mut self, ino: u64) -> Result<Vec<Mapped>> {
        let inode = self.inode(ino)?;
        let size = inode.stat.size;
        let mut out: Vec<Mapped> = Vec::new();
        if inode.format == FMT_LOCAL {
            return Err(FsError::Unsupported(format!(
                "inode {ino}: a regular file with inline data"
            )));
        }
        for e in self.extents(&inode, false)? {
            let from = e.logical.saturating_mul(self.bs);
            if e.unwritten || from >= size {
                continue;
            }
            let len = (e.len * self.bs).min(size - from);
            let disk_offset = self.offset + self.block_at(e.start, e.len, "an extent")?;
            match out.last_mut() {
                Some(m)
                    if m.file_offset + m.len == from && m.disk_offset + m.len == disk_offset =>
                {
                    m.len += len;
                }
                _ => out.push(Mapped {
                    file_offset: from,
                    len,
                    disk_offset,
                }),
            }
        }
        Ok(out)
    }

    fn disk(&mut self) -> &mut dyn DiskRead {
        &mut *self.disk
    }

    fn ids(&self) -> ([u8; 16], Vec<u8>) {
        (self.uuid, self.label.clone())
    }
}

/// A short-form directory's entries.
fn short_dir(ino: u64, d: &[u8], size: u64, ftype: bool) -> Result<Vec<(Vec<u8>, u64)>> {
    let bad = |what: &str| corrupt(format!("directory inode {ino}: its short form {what}"));
    let size = (size as usize).min(d.len());
    if size < 6 {
        return Err(bad("is too short"));
    }
    let (count, i8) = (usize::from(d[0]), d[1] != 0);
    let isz = if i8 { 8 } else { 4 };
    let mut at = 2 + isz;
    let mut out = Vec::new();
    for _ in 0..count {
        let nl = usize::from(*d.get(at).ok_or_else(|| bad("runs past its size"))?);
        let end = at + 3 + nl + usize::from(ftype) + isz;
        if nl == 0 || end > size {
            return Err(bad("runs past its size"));
        }
        let name = &d[at + 3..at + 3 + nl];
        let p = at + 3 + nl + usize::from(ftype);
        let child = if i8 {
            be64(d, p)
        } else {
            u64::from(be32(d, p))
        };
        push_entry(ino, name, child, &mut out)?;
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 MiB image holding only a superblock: 4 KiB blocks, 512-byte
    /// inodes, one AG, `edit` applied, its CRC set right.
    fn open_with(edit: impl Fn(&mut [u8])) -> Result<Fs> {
        let mut sb = vec![0u8; 512];
        sb[..4].copy_from_slice(b"XFSB");
        sb[0x04..0x08].copy_from_slice(&4096u32.to_be_bytes());
        sb[0x08..0x10].copy_from_slice(&256u64.to_be_bytes());
        sb[0x38..0x40].copy_from_slice(&128u64.to_be_bytes());
        sb[0x54..0x58].copy_from_slice(&256u32.to_be_bytes());
        sb[0x58..0x5C].copy_from_slice(&1u32.to_be_bytes());
        sb[0x64..0x66].copy_from_slice(&0xB4A5u16.to_be_bytes());
        sb[0x66..0x68].copy_from_slice(&512u16.to_be_bytes());
        sb[0x68..0x6A].copy_from_slice(&512u16.to_be_bytes());
        (sb[0x78], sb[0x7A], sb[0x7B], sb[0x7C]) = (12, 9, 3, 8);
        edit(&mut sb);
        sb[0xE0..0xE4].fill(0);
        let c = crc32c::crc32c(&sb);
        sb[0xE0..0xE4].copy_from_slice(&c.to_le_bytes());
        let f = tempfile::tempfile().unwrap();
        f.set_len(1 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &sb, 0).unwrap();
        let v = crate::disk::view::RawView::new(f).unwrap();
        Fs::open(Box::new(v), 0, 1 << 20)
    }

    #[test]
    fn a_sound_superblock_opens() {
        assert!(open_with(|_| ()).is_ok());
    }

    /// Found by the `xfs` fuzz target: logs past the width of a shift
    /// panicked in a debug build.
    #[test]
    fn huge_size_logs_in_the_superblock_are_errors_not_panics() {
        let e = open_with(|sb| sb[0x7A] = 200).err().unwrap().to_string();
        assert!(e.contains("inode size"), "{e}");
        let e = open_with(|sb| sb[0xC0] = 250).err().unwrap().to_string();
        assert!(e.contains("directory blocks"), "{e}");
    }

    #[test]
    fn unknown_or_unread_incompatible_features_are_refused_by_name() {
        let e = open_with(|sb| sb[0xDB] = 16).err().unwrap().to_string();
        assert!(e.contains("needsrepair"), "{e}");
        let e = open_with(|sb| sb[0xDA] = 1).err().unwrap().to_string();
        assert!(e.contains("metadata directory tree"), "{e}");
        let e = open_with(|sb| sb[0xD9] = 1).err().unwrap().to_string();
        assert!(e.contains("unknown incompatible features"), "{e}");
        let e = open_with(|sb| sb[0xDF] = 1).err().unwrap().to_string();
        assert!(e.contains("log needs recovery"), "{e}");
        let e = open_with(|sb| sb[0x65] = 4).err().unwrap().to_string();
        assert!(e.contains("version 4"), "{e}");
    }
}
