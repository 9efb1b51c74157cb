//! The write pass: renders every metadata block from the [`Plan`] and
//! streams file contents, with positioned writes, never an all-zero block.
//!
//! Order: the fixed metadata first (bitmaps, inode tables, superblock and
//! descriptor copies), then everything inodes point at, in inode order,
//! which the layout's allocation order makes front to back. From the
//! second phase on the sink refuses a write behind the front and reports
//! the front as it moves, so a reader can take the finished part of the
//! filesystem while the rest is written (`ext4::write_following`). The
//! superblock's "lifetime writes" therefore counts the blocks in use, known
//! before the data is read, not the bytes the data turned out to need.

use crate::fswrite::{fill, is_zero};
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::rootfs::{NodeId, Tree};

use super::dir::{self, inode_seed};
use super::format::*;
use super::hash::crc32c_le;
use super::layout::{
    BLOCKS_PER_GROUP, Content, EXTENTS_IN_INODE, EXTENTS_PER_BLOCK, FIRST_INO, INODES_PER_BLOCK,
    InodeBlocks, InodeContent, JOURNAL_INO, LOG_GROUPS_PER_FLEX, Plan, Run, Time, TreeNode, What,
    has_super,
};
use super::xattr::{self, IBODY_SPACE};
use super::{BLOCK_SIZE, Ext4Error, Options, Summary};

const BS: usize = BLOCK_SIZE as usize;
/// Writes are gathered up to this size; file data is read in chunks of it.
const CHUNK: usize = 1 << 20;

/// Positioned writes into the caller's file, contiguous ones gathered,
/// all-zero blocks skipped; remembers what it wrote. Once [`Sink::follow`]
/// is called, writes must go front to back, and the sink tells `progress`
/// how far the filesystem is final as it goes.
struct Sink<'f> {
    out: &'f File,
    /// Where the filesystem starts in `out`.
    base: u64,
    buf: Vec<u8>,
    /// Filesystem byte offset of `buf[0]`.
    buf_at: u64,
    written: Vec<(u64, u64)>,
    progress: &'f dyn Fn(u64),
    /// In the front-to-back phase: nothing is written below this
    /// filesystem offset any more (`None` before that phase).
    floor: Option<u64>,
    /// What `progress` was last told.
    told: u64,
}

/// `progress` hears of the front moving at least this far at a time.
const PROGRESS_STEP: u64 = 1 << 20;

impl<'f> Sink<'f> {
    fn new(out: &'f File, base: u64, progress: &'f dyn Fn(u64)) -> Sink<'f> {
        Sink {
            out,
            base,
            buf: Vec::with_capacity(CHUNK),
            buf_at: 0,
            written: Vec::new(),
            progress,
            floor: None,
            told: 0,
        }
    }

    /// From here on, writes go front to back, starting at `from` or
    /// later: everything below is final (the fixed metadata is written).
    fn follow(&mut self, from: u64) -> Result<(), Ext4Error> {
        self.flush()?;
        self.floor = Some(from);
        self.tell(from);
        Ok(())
    }

    fn tell(&mut self, at: u64) {
        if at >= self.told + PROGRESS_STEP {
            self.told = at;
            (self.progress)(at);
        }
    }

    /// Write `data` (whole blocks) at filesystem block `block`.
    fn blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Ext4Error> {
        debug_assert!(data.len().is_multiple_of(BS));
        for (i, b) in data.chunks(BS).enumerate() {
            let at = (block + i as u64) * BLOCK_SIZE;
            if is_zero(b) {
                continue;
            }
            if self.buf.is_empty()
                || self.buf_at + self.buf.len() as u64 != at
                || self.buf.len() >= CHUNK
            {
                self.flush()?;
                if let Some(floor) = self.floor {
                    // The layout allocates front to back in the order
                    // things are written; a write behind the front would
                    // be read as final before it lands.
                    if at < floor {
                        return Err(Ext4Error::Write {
                            offset: self.base + at,
                            source: std::io::Error::other(format!(
                                "internal: a write behind the front at {floor}"
                            )),
                        });
                    }
                    self.floor = Some(at);
                    self.tell(at);
                }
                self.buf_at = at;
            }
            self.buf.extend_from_slice(b);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Ext4Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let offset = self.base + self.buf_at;
        self.out
            .write_all_at(&self.buf, offset)
            .map_err(|source| Ext4Error::Write { offset, source })?;
        let len = self.buf.len() as u64;
        match self.written.last_mut() {
            Some((s, l)) if *s + *l == offset => *l += len,
            _ => self.written.push((offset, len)),
        }
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<(u64, u64)>, Ext4Error> {
        self.flush()?;
        let mut w = std::mem::take(&mut self.written);
        w.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(w.len());
        for (s, l) in w {
            match merged.last_mut() {
                Some((ms, ml)) if *ms + *ml >= s => *ml = (*ml).max(s + l - *ms),
                _ => merged.push((s, l)),
            }
        }
        Ok(merged)
    }
}

/// inodes.rst, "Inode Timestamps": 32 signed bits of seconds, and in the
/// extra word two epoch bits and the nanoseconds. Times are clamped to
/// 1901-12-13 .. 2310-04-04: the format reaches 2446, but e2fsck takes
/// epoch bits 11 with the sign bit set (2310-2378) for the old kernels'
/// pre-1970 bug and offers to "fix" them.
pub(crate) fn encode_time(t: Time) -> (u32, u32) {
    let min = -(1i64 << 31);
    let max = (2i64 << 32) + (1i64 << 31) - 1;
    let sec = t.sec.clamp(min, max);
    let low = sec as i32;
    let epoch = ((sec - i64::from(low)) >> 32) as u32 & 3;
    (low as u32, epoch | (t.nsec << 2))
}

/// The 60 bytes of `i_block` holding an extent tree root.
fn extent_root(b: &InodeBlocks) -> [u8; 60] {
    let mut out = [0u8; 60];
    let mut h = ExtentHeader::zeroed();
    h.eh_magic = EXT4_EXT_MAGIC.into();
    h.eh_entries = (b.root.len() as u16).into();
    h.eh_max = (EXTENTS_IN_INODE as u16).into();
    h.eh_depth = b.root_depth.into();
    out[..ExtentHeader::SIZE].copy_from_slice(h.as_bytes());
    put_extent_entries(&mut out[ExtentHeader::SIZE..], &b.root, b.root_depth);
    out
}

fn put_extent_entries(buf: &mut [u8], entries: &[Run], depth: u16) {
    for (i, r) in entries.iter().enumerate() {
        let at = i * Extent::SIZE;
        if depth == 0 {
            let mut e = Extent::zeroed();
            e.ee_block = r.logical.into();
            e.ee_len = r.len.into();
            e.ee_start_hi = ((r.phys >> 32) as u16).into();
            e.ee_start_lo = (r.phys as u32).into();
            buf[at..at + Extent::SIZE].copy_from_slice(e.as_bytes());
        } else {
            let mut e = ExtentIdx::zeroed();
            e.ei_block = r.logical.into();
            e.ei_leaf_lo = (r.phys as u32).into();
            e.ei_leaf_hi = ((r.phys >> 32) as u16).into();
            buf[at..at + ExtentIdx::SIZE].copy_from_slice(e.as_bytes());
        }
    }
}

/// An extent tree block with its tail checksum.
fn tree_block(node: &TreeNode, ino_seed: u32) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    let mut h = ExtentHeader::zeroed();
    h.eh_magic = EXT4_EXT_MAGIC.into();
    h.eh_entries = (node.entries.len() as u16).into();
    h.eh_max = (EXTENTS_PER_BLOCK as u16).into();
    h.eh_depth = node.depth.into();
    b[..ExtentHeader::SIZE].copy_from_slice(h.as_bytes());
    put_extent_entries(&mut b[ExtentHeader::SIZE..], &node.entries, node.depth);
    let tail_at = ExtentHeader::SIZE + EXTENTS_PER_BLOCK * Extent::SIZE;
    let mut t = ExtentTail::zeroed();
    t.eb_checksum = crc32c_le(ino_seed, &b[..tail_at]).into();
    b[tail_at..tail_at + ExtentTail::SIZE].copy_from_slice(t.as_bytes());
    b
}

/// One inode record, checksum included (inodes.rst; checksums.rst).
fn inode_record(ino: u32, c: &InodeContent<'_>, b: &InodeBlocks, fs_seed: u32) -> [u8; INODE_SIZE] {
    let mut rec = [0u8; INODE_SIZE];
    let mut i = Inode::zeroed();
    let (sec, extra) = encode_time(c.time);
    let full = !matches!(c.what, What::Reserved | What::BadBlocks);
    if matches!(c.what, What::BadBlocks) || full {
        i.i_atime = sec.into();
        i.i_ctime = sec.into();
        i.i_mtime = sec.into();
    }
    if full {
        i.i_mode = c.mode.into();
        i.i_uid = (c.uid as u16).into();
        i.l_i_uid_high = ((c.uid >> 16) as u16).into();
        i.i_gid = (c.gid as u16).into();
        i.l_i_gid_high = ((c.gid >> 16) as u16).into();
        // The journal's size follows the disk's: it is what the plan gave.
        let size = match c.what {
            What::Journal => b.runs.iter().map(|r| u64::from(r.len)).sum::<u64>() * BLOCK_SIZE,
            _ => c.size,
        };
        i.i_size_lo = (size as u32).into();
        i.i_size_high = ((size >> 32) as u32).into();
        i.i_links_count = c.links.into();
        // huge_file without EXT4_HUGE_FILE_FL: 48 bits of 512-byte units.
        let sectors = b.charged() * (BLOCK_SIZE / 512);
        i.i_blocks_lo = (sectors as u32).into();
        i.l_i_blocks_high = ((sectors >> 32) as u16).into();
        i.i_flags = c.flags.into();
        i.i_block = match &c.what {
            What::FastSymlink(t) => {
                let mut ib = [0u8; 60];
                ib[..t.len()].copy_from_slice(t);
                ib
            }
            What::Special(ib) => *ib,
            _ if c.has_extents() => extent_root(b),
            _ => [0; 60],
        };
        i.i_file_acl_lo = (b.xattr_block as u32).into();
        i.l_i_file_acl_high = ((b.xattr_block >> 32) as u16).into();
        i.i_extra_isize = EXTRA_ISIZE.into();
        i.i_atime_extra = extra.into();
        i.i_ctime_extra = extra.into();
        i.i_mtime_extra = extra.into();
        i.i_crtime = sec.into();
        i.i_crtime_extra = extra.into();
    }
    rec[..Inode::SIZE].copy_from_slice(i.as_bytes());
    if full {
        rec[Inode::SIZE..].copy_from_slice(&xattr::render_ibody(&c.ibody)[..IBODY_SPACE]);
    }
    // The checksum covers the whole record with both halves zero; the high
    // half exists only when i_extra_isize reaches it.
    let csum = crc32c_le(inode_seed(fs_seed, ino), &rec);
    rec[INODE_CSUM_LO_OFFSET..INODE_CSUM_LO_OFFSET + 2]
        .copy_from_slice(&(csum as u16).to_le_bytes());
    if full {
        rec[INODE_CSUM_HI_OFFSET..INODE_CSUM_HI_OFFSET + 2]
            .copy_from_slice(&((csum >> 16) as u16).to_le_bytes());
    }
    rec
}

/// Per-group counts the descriptors and superblock need.
struct GroupCounts {
    free_blocks: u64,
    free_inodes: u32,
    dirs: u32,
    itable_unused: u32,
    block_bitmap_csum: u32,
    inode_bitmap_csum: u32,
}

/// Write the whole filesystem.
pub(crate) fn write(
    content: &Content<'_>,
    plan: &Plan,
    opts: &Options,
    out: &File,
    offset: u64,
    progress: &dyn Fn(u64),
) -> Result<Summary, Ext4Error> {
    let geo = plan.geo;
    let fs_seed = crc32c_le(!0, &opts.uuid);
    let mut sink = Sink::new(out, offset, progress);

    let counts = write_bitmaps(&mut sink, content, plan, fs_seed)?;
    let gdt = group_descriptors(plan, &counts, fs_seed);
    write_inode_tables(&mut sink, content, plan, fs_seed)?;
    // Superblock and descriptor copies, with the rest of the fixed
    // metadata, before the data: from then on everything is written front
    // to back (see `Sink::follow`).
    let free_blocks: u64 = counts.iter().map(|c| c.free_blocks).sum();
    let free_inodes: u64 = counts.iter().map(|c| u64::from(c.free_inodes)).sum();
    write_superblocks(
        &mut sink,
        content,
        plan,
        opts,
        (free_blocks, free_inodes),
        &gdt,
    )?;
    sink.follow(0)?;
    write_inode_data(&mut sink, content, plan, opts, fs_seed)?;
    let written = sink.finish()?;
    reach_end(out, offset + geo.blocks * BLOCK_SIZE)?;
    Ok(Summary {
        size: geo.blocks * BLOCK_SIZE,
        blocks_count: geo.blocks,
        free_blocks,
        groups: geo.groups,
        inodes_count: geo.inodes_count(),
        inodes_used: u64::from(content.inode_count()),
        journal_blocks: geo.journal_blocks,
        bytes_written: written.iter().map(|w| w.1).sum(),
        written: written.into_iter().map(|(s, l)| s..s + l).collect(),
    })
}

/// Inodes of group `g` in use: the first `used` of its table.
fn used_in_group(content: &Content<'_>, plan: &Plan, g: u32) -> u32 {
    let ipg = plan.geo.inodes_per_group;
    content.inode_count().saturating_sub(g * ipg).min(ipg)
}

/// Set bits `from..to` of `bitmap`.
fn set_bits(bitmap: &mut [u8], from: u64, to: u64) {
    for bit in from..to {
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
    }
}

/// Every group's block bitmap and (where it has inodes in use) inode
/// bitmap, written as they are made; returns each group's counts.
fn write_bitmaps(
    sink: &mut Sink<'_>,
    content: &Content<'_>,
    plan: &Plan,
    fs_seed: u32,
) -> Result<Vec<GroupCounts>, Ext4Error> {
    let geo = plan.geo;
    let ipg = geo.inodes_per_group;
    let mut counts = Vec::with_capacity(geo.groups as usize);
    let mut bitmap = vec![0u8; BS];
    for g in 0..geo.groups {
        let (gs, ge) = (geo.group_start(g), geo.group_end(g));
        bitmap.fill(0);
        set_bits(&mut bitmap, 0, plan.cursor.clamp(gs, ge) - gs);
        for (&s, &l) in plan.fixed.regions.range(..ge) {
            let (a, z) = (s.max(gs), (s + l).min(ge));
            if a < z {
                set_bits(&mut bitmap, a - gs, z - gs);
            }
        }
        // Bits past the end of the filesystem are set (bitmaps.rst).
        set_bits(&mut bitmap, ge - gs, BLOCKS_PER_GROUP);
        let block_bitmap_csum = crc32c_le(fs_seed, &bitmap);
        let meta = plan.groups[g as usize];
        sink.blocks(meta.block_bitmap, &bitmap)?;

        // A group without inodes in use keeps its inode bitmap
        // uninitialized (EXT4_BG_INODE_UNINIT, checksum 0), as mke2fs does:
        // nothing to write for most groups of a big disk.
        let first = g * ipg;
        let used = used_in_group(content, plan, g);
        let inode_bitmap_csum = if used == 0 {
            0
        } else {
            bitmap.fill(0);
            set_bits(&mut bitmap, 0, u64::from(used));
            set_bits(&mut bitmap, u64::from(ipg), BLOCKS_PER_GROUP);
            sink.blocks(meta.inode_bitmap, &bitmap)?;
            crc32c_le(fs_seed, &bitmap[..(ipg / 8) as usize])
        };

        let dirs = content
            .inodes
            .get(first as usize..(first + used) as usize)
            .unwrap_or_default()
            .iter()
            .filter(|c| c.is_dir())
            .count() as u32;
        counts.push(GroupCounts {
            free_blocks: (ge - gs) - plan.used_in(gs, ge),
            free_inodes: ipg - used,
            dirs,
            itable_unused: ipg - used,
            block_bitmap_csum,
            inode_bitmap_csum,
        });
    }
    Ok(counts)
}

/// The group descriptor table (blockgroup.rst), checksums included.
fn group_descriptors(plan: &Plan, counts: &[GroupCounts], fs_seed: u32) -> Vec<u8> {
    let mut gdt = vec![0u8; plan.geo.gdt_blocks as usize * BS];
    for (g, (m, c)) in plan.groups.iter().zip(counts).enumerate() {
        let mut d = GroupDesc::zeroed();
        d.bg_block_bitmap_lo = (m.block_bitmap as u32).into();
        d.bg_block_bitmap_hi = ((m.block_bitmap >> 32) as u32).into();
        d.bg_inode_bitmap_lo = (m.inode_bitmap as u32).into();
        d.bg_inode_bitmap_hi = ((m.inode_bitmap >> 32) as u32).into();
        d.bg_inode_table_lo = (m.inode_table as u32).into();
        d.bg_inode_table_hi = ((m.inode_table >> 32) as u32).into();
        d.bg_free_blocks_count_lo = (c.free_blocks as u16).into();
        d.bg_free_blocks_count_hi = ((c.free_blocks >> 16) as u16).into();
        d.bg_free_inodes_count_lo = (c.free_inodes as u16).into();
        d.bg_free_inodes_count_hi = ((c.free_inodes >> 16) as u16).into();
        d.bg_used_dirs_count_lo = (c.dirs as u16).into();
        d.bg_used_dirs_count_hi = ((c.dirs >> 16) as u16).into();
        d.bg_itable_unused_lo = (c.itable_unused as u16).into();
        d.bg_itable_unused_hi = ((c.itable_unused >> 16) as u16).into();
        let uninit = if c.free_inodes == plan.geo.inodes_per_group {
            EXT4_BG_INODE_UNINIT
        } else {
            0
        };
        d.bg_flags = (EXT4_BG_INODE_ZEROED | uninit).into();
        d.bg_block_bitmap_csum_lo = (c.block_bitmap_csum as u16).into();
        d.bg_block_bitmap_csum_hi = ((c.block_bitmap_csum >> 16) as u16).into();
        d.bg_inode_bitmap_csum_lo = (c.inode_bitmap_csum as u16).into();
        d.bg_inode_bitmap_csum_hi = ((c.inode_bitmap_csum >> 16) as u16).into();
        let csum = crc32c_le(crc32c_le(fs_seed, &(g as u32).to_le_bytes()), d.as_bytes());
        d.bg_checksum = (csum as u16).into();
        gdt[g * GroupDesc::SIZE..(g + 1) * GroupDesc::SIZE].copy_from_slice(d.as_bytes());
    }
    gdt
}

/// The inode tables' used part, a block of inodes at a time.
fn write_inode_tables(
    sink: &mut Sink<'_>,
    content: &Content<'_>,
    plan: &Plan,
    fs_seed: u32,
) -> Result<(), Ext4Error> {
    let geo = plan.geo;
    let ipg = geo.inodes_per_group;
    let used_inodes = content.inode_count();
    let mut itable = vec![0u8; BS];
    for g in 0..geo.groups {
        let table = plan.groups[g as usize].inode_table;
        let first = g * ipg;
        let used = used_in_group(content, plan, g);
        for blk in 0..u64::from(used).div_ceil(u64::from(INODES_PER_BLOCK)) {
            itable.fill(0);
            for slot in 0..INODES_PER_BLOCK {
                let index = first + blk as u32 * INODES_PER_BLOCK + slot;
                if index >= used_inodes {
                    break;
                }
                let ino = index + 1;
                let rec = inode_record(
                    ino,
                    &content.inodes[index as usize],
                    &plan.inodes[index as usize],
                    fs_seed,
                );
                let at = slot as usize * INODE_SIZE;
                itable[at..at + INODE_SIZE].copy_from_slice(&rec);
            }
            sink.blocks(table + blk, &itable)?;
        }
    }
    Ok(())
}

/// The superblock and the descriptor table `gdt` in group 0 and in every
/// group that keeps a copy. `free` is the free (blocks, inodes);
/// "lifetime writes" counts the blocks in use, what copying this
/// filesystem writes.
fn write_superblocks(
    sink: &mut Sink<'_>,
    content: &Content<'_>,
    plan: &Plan,
    opts: &Options,
    free: (u64, u64),
    gdt: &[u8],
) -> Result<(), Ext4Error> {
    let geo = plan.geo;
    let (free_blocks, free_inodes) = free;
    let journal = &plan.inodes[JOURNAL_INO as usize - 1];
    let mut sb = superblock(content, plan, opts, free_blocks, free_inodes, journal);
    sb.s_kbytes_written = ((geo.blocks - free_blocks) * BLOCK_SIZE / 1024).into();
    for g in (0..geo.groups).filter(|g| has_super(*g)) {
        sb.s_block_group_nr = (g as u16).into();
        sb.s_checksum = 0u32.into();
        let csum = crc32c_le(!0, &sb.as_bytes()[..SUPERBLOCK_CSUM_OFFSET]);
        sb.s_checksum = csum.into();
        let mut block = vec![0u8; BS];
        let at = if g == 0 { 1024 } else { 0 };
        block[at..at + SuperBlock::SIZE].copy_from_slice(sb.as_bytes());
        let start = geo.group_start(g);
        sink.blocks(start, &block)?;
        sink.blocks(start + 1, gdt)?;
    }
    Ok(())
}

/// Everything inodes point at, in inode order: directory, symlink,
/// journal and file blocks, extent tree blocks, xattr blocks (a shared
/// one once, with the first inode that uses it).
fn write_inode_data(
    sink: &mut Sink<'_>,
    content: &Content<'_>,
    plan: &Plan,
    opts: &Options,
    fs_seed: u32,
) -> Result<(), Ext4Error> {
    let mut xattr_done = vec![false; plan.xattr_block_at.len()];
    let mut buf = vec![0u8; CHUNK];
    for (index, (c, b)) in content.inodes.iter().zip(&plan.inodes).enumerate() {
        let ino = index as u32 + 1;
        let seed = inode_seed(fs_seed, ino);
        match &c.what {
            What::Dir(d) => {
                for r in &b.runs {
                    for k in 0..u32::from(r.len) {
                        let block = dir::render_block(d, ino, r.logical + k, seed);
                        sink.blocks(r.phys + u64::from(k), &block)?;
                    }
                }
            }
            What::SlowSymlink(target) => {
                let mut block = vec![0u8; BS];
                block[..target.len()].copy_from_slice(target);
                if let Some(r) = b.runs.first() {
                    sink.blocks(r.phys, &block)?;
                }
            }
            What::Journal => {
                if let Some(r) = b.runs.first() {
                    let mut block = vec![0u8; BS];
                    let jsb = journal_superblock(plan.geo.journal_blocks, opts);
                    block[..JournalSuperblock::SIZE].copy_from_slice(jsb.as_bytes());
                    sink.blocks(r.phys, &block)?;
                }
            }
            What::File { id, .. } => {
                write_file(sink, content.tree, *id, &b.runs, &c.path, &mut buf)?;
            }
            _ => {}
        }
        for node in &b.tree {
            sink.blocks(node.phys, &tree_block(node, seed))?;
        }
        if let Some(x) = c.xattr_block
            && !xattr_done[x]
        {
            xattr_done[x] = true;
            let at = plan.xattr_block_at[x];
            let xb = &content.xattr_blocks[x];
            let mut block = xattr::render_block(&xb.items, xb.refcount);
            let csum = crc32c_le(crc32c_le(fs_seed, &at.to_le_bytes()), &block);
            block[XATTR_HEADER_CSUM_OFFSET..XATTR_HEADER_CSUM_OFFSET + 4]
                .copy_from_slice(&csum.to_le_bytes());
            sink.blocks(at, &block)?;
        }
    }
    Ok(())
}

/// Make `out` reach the filesystem's end at `end` (a hole if nothing is
/// written there).
fn reach_end(out: &File, end: u64) -> Result<(), Ext4Error> {
    let err = |source| Ext4Error::Write {
        offset: end,
        source,
    };
    let len = out.metadata().map_err(err)?.len();
    if len < end {
        out.set_len(end).map_err(err)?;
    }
    Ok(())
}

/// Stream file `id`'s data blocks to where `runs` put them.
fn write_file(
    sink: &mut Sink<'_>,
    tree: &Tree,
    id: NodeId,
    runs: &[Run],
    path: &[u8],
    buf: &mut [u8],
) -> Result<(), Ext4Error> {
    if runs.is_empty() {
        return Ok(());
    }
    let read_err = |source| Ext4Error::Read {
        path: String::from_utf8_lossy(path).into_owned(),
        source,
    };
    let mut r = tree.open(id).map_err(read_err)?;
    let mut pos = 0u64;
    for run in runs {
        let start = u64::from(run.logical) * BLOCK_SIZE;
        // Holes: read and drop (a hole reads as zeros without touching a
        // source).
        while pos < start {
            let n = (start - pos).min(buf.len() as u64) as usize;
            let got = fill(&mut r, &mut buf[..n]).map_err(read_err)?;
            if got == 0 {
                break;
            }
            pos += got as u64;
        }
        let mut left = u64::from(run.len) * BLOCK_SIZE;
        let mut phys = run.phys;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            let got = fill(&mut r, &mut buf[..n]).map_err(read_err)?;
            buf[got..n].fill(0);
            pos += got as u64;
            sink.blocks(phys, &buf[..n])?;
            phys += (n / BS) as u64;
            left -= n as u64;
        }
    }
    Ok(())
}

/// journal.rst: the jbd2 superblock of an empty, clean journal, as mke2fs
/// writes it (no journal features; `s_start` 0 means nothing to replay).
fn journal_superblock(blocks: u64, opts: &Options) -> JournalSuperblock {
    let mut j = JournalSuperblock::zeroed();
    j.h_magic = JBD2_MAGIC_NUMBER.into();
    j.h_blocktype = JBD2_SUPERBLOCK_V2.into();
    j.s_blocksize = (BLOCK_SIZE as u32).into();
    j.s_maxlen = (blocks as u32).into();
    j.s_first = 1u32.into();
    j.s_sequence = 1u32.into();
    j.s_uuid = opts.uuid;
    j.s_nr_users = 1u32.into();
    j
}

/// super.rst: the primary superblock (copies differ in
/// `s_block_group_nr` and the checksum).
fn superblock(
    content: &Content<'_>,
    plan: &Plan,
    opts: &Options,
    free_blocks: u64,
    free_inodes: u64,
    journal: &InodeBlocks,
) -> SuperBlock {
    let geo = plan.geo;
    let ts = opts.timestamp;
    let mut s = SuperBlock::zeroed();
    s.s_inodes_count = (geo.inodes_count() as u32).into();
    s.s_blocks_count_lo = (geo.blocks as u32).into();
    s.s_blocks_count_hi = ((geo.blocks >> 32) as u32).into();
    // mke2fs reserves 5% for root.
    let reserved = geo.blocks * 5 / 100;
    s.s_r_blocks_count_lo = (reserved as u32).into();
    s.s_r_blocks_count_hi = ((reserved >> 32) as u32).into();
    s.s_free_blocks_count_lo = (free_blocks as u32).into();
    s.s_free_blocks_count_hi = ((free_blocks >> 32) as u32).into();
    s.s_free_inodes_count = (free_inodes as u32).into();
    s.s_first_data_block = 0u32.into();
    s.s_log_block_size = 2u32.into();
    s.s_log_cluster_size = 2u32.into();
    s.s_blocks_per_group = (BLOCKS_PER_GROUP as u32).into();
    s.s_clusters_per_group = (BLOCKS_PER_GROUP as u32).into();
    s.s_inodes_per_group = geo.inodes_per_group.into();
    s.s_mtime = 0u32.into();
    s.s_wtime = ts.into();
    s.s_mnt_count = 0u16.into();
    s.s_max_mnt_count = u16::MAX.into();
    s.s_magic = EXT4_SUPER_MAGIC.into();
    s.s_state = EXT4_VALID_FS.into();
    s.s_errors = EXT4_ERRORS_CONTINUE.into();
    s.s_lastcheck = ts.into();
    s.s_rev_level = EXT4_DYNAMIC_REV.into();
    s.s_first_ino = FIRST_INO.into();
    s.s_inode_size = (INODE_SIZE as u16).into();
    s.s_feature_compat = (COMPAT_HAS_JOURNAL | COMPAT_EXT_ATTR | COMPAT_DIR_INDEX).into();
    s.s_feature_incompat =
        (INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG).into();
    s.s_feature_ro_compat = (RO_COMPAT_SPARSE_SUPER
        | RO_COMPAT_LARGE_FILE
        | RO_COMPAT_HUGE_FILE
        | RO_COMPAT_DIR_NLINK
        | RO_COMPAT_EXTRA_ISIZE
        | RO_COMPAT_METADATA_CSUM)
        .into();
    s.s_uuid = opts.uuid;
    let label = opts.label.as_bytes();
    s.s_volume_name[..label.len()].copy_from_slice(label);
    s.s_journal_inum = JOURNAL_INO.into();
    s.s_hash_seed = content.hash_seed.map(Into::into);
    s.s_def_hash_version = DX_HASH_HALF_MD4;
    s.s_jnl_backup_type = EXT3_JNL_BACKUP_BLOCKS;
    s.s_desc_size = (GroupDesc::SIZE as u16).into();
    s.s_default_mount_opts = (EXT4_DEFM_XATTR_USER | EXT4_DEFM_ACL).into();
    s.s_mkfs_time = ts.into();
    // The journal inode's i_block, then i_size_high and i_size.
    let root = extent_root(journal);
    for (k, w) in root.chunks(4).enumerate() {
        s.s_jnl_blocks[k] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]).into();
    }
    let jsize = geo.journal_blocks * BLOCK_SIZE;
    s.s_jnl_blocks[15] = ((jsize >> 32) as u32).into();
    s.s_jnl_blocks[16] = (jsize as u32).into();
    s.s_min_extra_isize = EXTRA_ISIZE.into();
    s.s_want_extra_isize = EXTRA_ISIZE.into();
    s.s_flags = EXT2_FLAGS_UNSIGNED_HASH.into();
    s.s_log_groups_per_flex = LOG_GROUPS_PER_FLEX;
    s.s_checksum_type = EXT4_CRC32C_CHKSUM;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_take_epoch_bits_and_nanoseconds() {
        let t = |sec, nsec| encode_time(Time { sec, nsec });
        assert_eq!(t(0, 0), (0, 0));
        assert_eq!(t(1_600_000_000, 123_456_789), (0x5f5e_1000, 0x1d6f_3454));
        assert_eq!(t(-1, 5), (u32::MAX, 5 << 2));
        // 2038-01-19 03:14:08: the sign bit set, epoch 1.
        assert_eq!(t(1 << 31, 0), (1 << 31, 1));
        // 2106 and later: epoch 1, then 2.
        assert_eq!(t(1 << 32, 0), (0, 1));
        assert_eq!(t((2 << 32) + 7, 0), (7, 2));
        // Clamped at both ends.
        assert_eq!(t(i64::MIN, 0), (1 << 31, 0));
        assert_eq!(t(i64::MAX, 0), ((1 << 31) - 1, 2));
    }
}
