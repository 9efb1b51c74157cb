//! The write pass: AG headers, btrees, inode chunks, the log and every
//! block the inodes point at, with positioned writes in address order
//! (AG 0's headers and inode chunks first, then the data, each later AG's
//! headers and the log written as the front reaches them), never an
//! all-zero block.

use crate::fswrite::{fill, is_zero};
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::btree::{self, BNO_BTREE, CNT_BTREE, FINO_BTREE, INO_BTREE, Place, REFC_BTREE};
use super::format::*;
use super::layout::{AGFL_BLOCKS, Body, Content, FIRST_CHUNK, Geo, Ino, PREALLOC, Plan, ROOT_INO};
use super::{Options, XfsError};

const CHUNK: usize = 1 << 20;
const PROGRESS_STEP: u64 = 1 << 20;
/// Sectors per block.
const BB: u64 = BLOCK / 512;

/// Positioned writes, contiguous ones gathered, all-zero blocks skipped;
/// front to back, telling `progress` how far the filesystem is final.
struct Sink<'f> {
    out: &'f File,
    base: u64,
    buf: Vec<u8>,
    buf_at: u64,
    front: u64,
    told: u64,
    progress: &'f (dyn Fn(u64) + Sync),
}

impl Sink<'_> {
    /// Write whole blocks `data` at linear block `block`.
    fn blocks(&mut self, block: u64, data: &[u8]) -> Result<(), XfsError> {
        for (i, b) in data.chunks(BS).enumerate() {
            let at = (block + i as u64) * BLOCK;
            if is_zero(b) {
                continue;
            }
            if self.buf.is_empty()
                || self.buf_at + self.buf.len() as u64 != at
                || self.buf.len() >= CHUNK
            {
                self.flush()?;
                if at < self.front {
                    return Err(XfsError::Write {
                        offset: self.base + at,
                        source: std::io::Error::other(format!(
                            "internal: a write behind the front at {}",
                            self.front
                        )),
                    });
                }
                self.front = at;
                if at >= self.told + PROGRESS_STEP {
                    self.told = at;
                    (self.progress)(at);
                }
                self.buf_at = at;
            }
            self.buf.extend_from_slice(b);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), XfsError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let offset = self.base + self.buf_at;
        self.out
            .write_all_at(&self.buf, offset)
            .map_err(|source| XfsError::Write { offset, source })?;
        self.front = self.buf_at + self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

struct Writer<'a, 'f> {
    sink: Sink<'f>,
    content: &'a Content<'a>,
    plan: &'a Plan,
    opts: &'a Options,
    /// The next AG whose headers are still to write.
    next_ag: u32,
}

/// Write the whole filesystem.
pub(crate) fn write(
    content: &Content<'_>,
    plan: &Plan,
    opts: &Options,
    out: &File,
    offset: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), XfsError> {
    let mut w = Writer {
        sink: Sink {
            out,
            base: offset,
            buf: Vec::with_capacity(CHUNK),
            buf_at: 0,
            front: 0,
            told: 0,
            progress,
        },
        content,
        plan,
        opts,
        next_ag: 0,
    };
    w.advance(0)?;
    let mut buf = vec![0u8; CHUNK];
    for (k, (ino, alloc)) in content.inodes.iter().zip(&plan.allocs).enumerate() {
        let num = ROOT_INO + k as u64;
        if let Some(at) = alloc.attr_block {
            w.advance(at)?;
            let b = super::attr::render_leaf(&ino.attrs, num, &opts.uuid, at * BB);
            w.sink.blocks(at, &b)?;
        }
        match &ino.body {
            Body::Dir(d) if !alloc.data.is_empty() => {
                let hashes = d.hashes();
                for e in &alloc.data {
                    w.advance(e.linear)?;
                    for j in 0..e.len {
                        let at = e.linear + j;
                        let b = d.render(e.off + j, num, &opts.uuid, at * BB, &hashes);
                        w.sink.blocks(at, &b)?;
                    }
                }
            }
            Body::Symlink(t) if !ino.local() => {
                if let Some(e) = alloc.data.first() {
                    w.advance(e.linear)?;
                    let b = remote_symlink(t, num, &opts.uuid, e.linear * BB);
                    w.sink.blocks(e.linear, &b)?;
                }
            }
            Body::File { id, .. } => w.file(ino, *id, &alloc.data, &mut buf)?,
            _ => {}
        }
    }
    w.advance(plan.geo.dblocks)?;
    w.sink.flush()?;
    let end = offset + plan.geo.dblocks * BLOCK;
    let len = out
        .metadata()
        .map_err(|source| XfsError::Write {
            offset: end,
            source,
        })?
        .len();
    if len < end {
        out.set_len(end).map_err(|source| XfsError::Write {
            offset: end,
            source,
        })?;
    }
    Ok(())
}

impl Writer<'_, '_> {
    /// Write the headers of every AG that starts at or before `linear`
    /// (AG 0's with the inode chunks, the log's AG with the log).
    fn advance(&mut self, linear: u64) -> Result<(), XfsError> {
        let geo = self.plan.geo;
        while self.next_ag < geo.agcount && geo.ag_start(self.next_ag) <= linear {
            let ag = self.next_ag;
            self.next_ag += 1;
            let blocks = ag_headers(self.content, self.plan, self.opts, ag);
            let start = geo.ag_start(ag);
            let (early, late): (Vec<_>, Vec<_>) = blocks
                .into_iter()
                .partition(|(bno, _)| u64::from(*bno) < FIRST_CHUNK);
            for (bno, b) in &early {
                self.sink.blocks(start + u64::from(*bno), b)?;
            }
            if ag == 0 {
                self.inode_chunks()?;
            }
            for (bno, b) in &late {
                self.sink.blocks(start + u64::from(*bno), b)?;
            }
            if ag == geo.log_ag() {
                let b = log_head(self.opts);
                self.sink.blocks(geo.log_start(), &b)?;
            }
        }
        Ok(())
    }

    fn inode_chunks(&mut self) -> Result<(), XfsError> {
        let n = self.content.inodes.len();
        let mut block = vec![0u8; BS];
        for blk in 0..self.plan.chunks * CHUNK_BLOCKS {
            for slot in 0..INODES_PER_BLOCK as usize {
                let k = blk as usize * INODES_PER_BLOCK as usize + slot;
                let num = ROOT_INO + k as u64;
                let rec = if k < n {
                    inode(
                        &self.content.inodes[k],
                        &self.plan.allocs[k],
                        num,
                        &self.plan.geo,
                        self.opts,
                    )
                } else {
                    free_inode(num, self.opts)
                };
                block[slot * INODE_SIZE..(slot + 1) * INODE_SIZE].copy_from_slice(&rec);
            }
            self.sink.blocks(FIRST_CHUNK + blk, &block)?;
        }
        Ok(())
    }

    /// Stream a file's data to its extents (holes read and dropped).
    fn file(
        &mut self,
        ino: &Ino,
        id: crate::rootfs::NodeId,
        exts: &[super::layout::Ext],
        buf: &mut [u8],
    ) -> Result<(), XfsError> {
        if exts.is_empty() {
            return Ok(());
        }
        let err = |source| XfsError::Read {
            path: ino.path.clone(),
            source,
        };
        let mut r = self.content.tree.open(id).map_err(err)?;
        let mut pos = 0u64;
        for e in exts {
            let start = e.off * BLOCK;
            while pos < start {
                let n = (start - pos).min(buf.len() as u64) as usize;
                let got = fill(&mut r, &mut buf[..n]).map_err(err)?;
                if got == 0 {
                    break;
                }
                pos += got as u64;
            }
            let mut left = e.len * BLOCK;
            let mut at = e.linear;
            self.advance(at)?;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                let got = fill(&mut r, &mut buf[..n]).map_err(err)?;
                buf[got..n].fill(0);
                pos += got as u64;
                self.sink.blocks(at, &buf[..n])?;
                at += (n / BS) as u64;
                left -= n as u64;
            }
        }
        Ok(())
    }
}

/// Free extents of AG `ag` as (agbno, len), by block.
pub(crate) fn free_extents(plan: &Plan, ag: u32) -> Vec<(u64, u64)> {
    let geo = plan.geo;
    let mut v = Vec::new();
    if ag == 0 {
        v.push((PREALLOC + AGFL_BLOCKS, FIRST_CHUNK - PREALLOC - AGFL_BLOCKS));
    }
    let end = plan.ag_ends[ag as usize];
    let len = geo.ag_len(ag);
    if end < len {
        v.push((end, len - end));
    }
    v
}

/// The inodes in use (all in AG 0: the first of its chunks).
fn used_inodes(content: &Content<'_>) -> u64 {
    content.inodes.len() as u64
}

/// Block 0 (superblock, AGF, AGI, AGFL sectors) and every btree block of
/// AG `ag`, with AG block numbers.
fn ag_headers(content: &Content<'_>, plan: &Plan, opts: &Options, ag: u32) -> Vec<(u32, Vec<u8>)> {
    let geo = plan.geo;
    let place = Place {
        agno: ag,
        ag_daddr: geo.ag_start(ag) * BB,
        uuid: &opts.uuid,
    };
    let free = free_extents(plan, ag);
    let mut bno = Vec::new();
    for (s, l) in &free {
        bno.extend_from_slice(&(*s as u32).to_be_bytes());
        bno.extend_from_slice(&(*l as u32).to_be_bytes());
    }
    let mut by_size = free.clone();
    by_size.sort_by_key(|(s, l)| (*l, *s));
    let mut cnt = Vec::new();
    for (s, l) in &by_size {
        cnt.extend_from_slice(&(*s as u32).to_be_bytes());
        cnt.extend_from_slice(&(*l as u32).to_be_bytes());
    }
    // Inode chunk records (all in AG 0) and the free-inode ones.
    let (mut ino_recs, mut fino_recs) = (Vec::new(), Vec::new());
    let used = used_inodes(content);
    if ag == 0 {
        for c in 0..plan.chunks {
            let first = c * INODES_PER_CHUNK;
            let in_use = used.saturating_sub(first).min(INODES_PER_CHUNK);
            let free_mask = if in_use == 64 { 0 } else { u64::MAX << in_use };
            let mut r = [0u8; 16];
            put32(&mut r, 0, (ROOT_INO + first) as u32);
            put16(&mut r, 4, 0);
            r[6] = 64;
            r[7] = (64 - in_use) as u8;
            put64(&mut r, 8, free_mask);
            ino_recs.extend_from_slice(&r);
            if in_use < 64 {
                fino_recs.extend_from_slice(&r);
            }
        }
    }
    let mut blocks = Vec::new();
    blocks.extend(btree::build(BNO_BTREE, &bno, 1, 0, &place));
    blocks.extend(btree::build(CNT_BTREE, &cnt, 2, 0, &place));
    let inobt = btree::build(INO_BTREE, &ino_recs, 3, plan.inobt_extra as u32, &place);
    let iblocks = inobt.len() as u32;
    blocks.extend(inobt);
    blocks.extend(btree::build(FINO_BTREE, &fino_recs, 4, 0, &place));
    blocks.extend(btree::build(REFC_BTREE, &[], 5, 0, &place));
    let mut b0 = vec![0u8; BS];
    b0[..SECTOR].copy_from_slice(&superblock(content, plan, opts, ag));
    let freeblks: u64 = free.iter().map(|f| f.1).sum();
    let longest = free.iter().map(|f| f.1).max().unwrap_or(0);
    b0[SECTOR..2 * SECTOR].copy_from_slice(&agf(&geo, opts, ag, freeblks, longest));
    let ifree = if ag == 0 { plan.chunks * 64 - used } else { 0 };
    let counts = (if ag == 0 { plan.chunks * 64 } else { 0 }, ifree);
    let newino = if ag == 0 && plan.chunks > 0 {
        (ROOT_INO + (plan.chunks - 1) * 64) as u32
    } else {
        NULL32
    };
    b0[2 * SECTOR..3 * SECTOR]
        .copy_from_slice(&agi(&geo, opts, ag, counts, newino, iblocks, &ino_recs));
    b0[3 * SECTOR..4 * SECTOR].copy_from_slice(&agfl(&geo, opts, ag));
    blocks.push((0, b0));
    blocks.sort_by_key(|(b, _)| *b);
    blocks
}

/// Sum over AGs of the free blocks, plus the free lists (`sb_fdblocks`).
fn fdblocks(plan: &Plan) -> u64 {
    (0..plan.geo.agcount)
        .map(|ag| free_extents(plan, ag).iter().map(|f| f.1).sum::<u64>() + AGFL_BLOCKS)
        .sum()
}

fn superblock(content: &Content<'_>, plan: &Plan, opts: &Options, _ag: u32) -> Vec<u8> {
    let geo = plan.geo;
    let mut b = vec![0u8; SECTOR];
    put32(&mut b, 0, SB_MAGIC);
    put32(&mut b, 4, BLOCK as u32);
    put64(&mut b, 8, geo.dblocks);
    b[32..48].copy_from_slice(&opts.uuid);
    put64(&mut b, 48, geo.fsb(geo.log_start()));
    put64(&mut b, 56, ROOT_INO);
    put64(&mut b, 64, ROOT_INO + 1);
    put64(&mut b, 72, ROOT_INO + 2);
    put32(&mut b, 80, 1);
    put32(&mut b, 84, geo.agblocks as u32);
    put32(&mut b, 88, geo.agcount);
    put32(&mut b, 96, geo.logblocks as u32);
    put16(&mut b, 100, SB_VERSIONNUM);
    put16(&mut b, 102, SECTOR as u16);
    put16(&mut b, 104, INODE_SIZE as u16);
    put16(&mut b, 106, INODES_PER_BLOCK as u16);
    let label = opts.label.as_bytes();
    b[108..108 + label.len()].copy_from_slice(label);
    b[120] = 12;
    b[121] = 9;
    b[122] = 9;
    b[123] = 3;
    b[124] = geo.agblklog;
    b[127] = 25;
    let icount = plan.chunks * 64;
    put64(&mut b, 128, icount);
    put64(&mut b, 136, icount - used_inodes(content));
    put64(&mut b, 144, fdblocks(plan));
    put32(&mut b, 180, CHUNK_BLOCKS as u32);
    put32(&mut b, 196, 1);
    put32(&mut b, 200, SB_FEATURES2);
    put32(&mut b, 204, SB_FEATURES2);
    put32(&mut b, 212, SB_RO_COMPAT);
    put32(&mut b, 216, SB_INCOMPAT);
    put32(&mut b, 228, 4);
    set_crc(&mut b, 224);
    b
}

fn agf(geo: &Geo, opts: &Options, ag: u32, freeblks: u64, longest: u64) -> Vec<u8> {
    let mut b = vec![0u8; SECTOR];
    put32(&mut b, 0, AGF_MAGIC);
    put32(&mut b, 4, 1);
    put32(&mut b, 8, ag);
    put32(&mut b, 12, geo.ag_len(ag) as u32);
    put32(&mut b, 16, 1);
    put32(&mut b, 20, 2);
    put32(&mut b, 28, 1);
    put32(&mut b, 32, 1);
    put32(&mut b, 40, 0);
    put32(&mut b, 44, AGFL_BLOCKS as u32 - 1);
    put32(&mut b, 48, AGFL_BLOCKS as u32);
    put32(&mut b, 52, freeblks as u32);
    put32(&mut b, 56, longest as u32);
    b[64..80].copy_from_slice(&opts.uuid);
    put32(&mut b, 84, 1);
    put32(&mut b, 88, 5);
    put32(&mut b, 92, 1);
    set_crc(&mut b, 216);
    b
}

fn agi(
    geo: &Geo,
    opts: &Options,
    ag: u32,
    (count, freecount): (u64, u64),
    newino: u32,
    iblocks: u32,
    recs: &[u8],
) -> Vec<u8> {
    let levels = INO_BTREE.levels(recs.len() / 16).len() as u32;
    let mut b = vec![0u8; SECTOR];
    put32(&mut b, 0, AGI_MAGIC);
    put32(&mut b, 4, 1);
    put32(&mut b, 8, ag);
    put32(&mut b, 12, geo.ag_len(ag) as u32);
    put32(&mut b, 16, count as u32);
    put32(&mut b, 20, 3);
    put32(&mut b, 24, levels);
    put32(&mut b, 28, freecount as u32);
    put32(&mut b, 32, newino);
    put32(&mut b, 36, NULL32);
    for k in 0..64 {
        put32(&mut b, 40 + 4 * k, NULL32);
    }
    b[296..312].copy_from_slice(&opts.uuid);
    put32(&mut b, 328, 4);
    put32(&mut b, 332, 1);
    put32(&mut b, 336, iblocks);
    put32(&mut b, 340, 1);
    set_crc(&mut b, 312);
    b
}

fn agfl(geo: &Geo, opts: &Options, ag: u32) -> Vec<u8> {
    let mut b = vec![0xffu8; SECTOR];
    b[..36].fill(0);
    put32(&mut b, 0, AGFL_MAGIC);
    put32(&mut b, 4, ag);
    b[8..24].copy_from_slice(&opts.uuid);
    let first = geo.agfl_start(ag);
    for k in 0..AGFL_BLOCKS {
        put32(&mut b, 36 + 4 * k as usize, (first + k) as u32);
    }
    set_crc(&mut b, 32);
    b
}

/// The log's first block: a record header and an unmount record (cycle
/// 1), what `mkfs.xfs` leaves in a new log; the rest of the log stays
/// zero (cycle 0), so the head is found right after this record.
fn log_head(opts: &Options) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    put32(&mut b, 0, LOG_MAGIC);
    put32(&mut b, 4, 1); // h_cycle
    put32(&mut b, 8, 2); // h_version
    put32(&mut b, 12, 512); // h_len
    put64(&mut b, 16, 1 << 32); // h_lsn: cycle 1, block 0
    put64(&mut b, 24, 1 << 32); // h_tail_lsn
    put32(&mut b, 36, NULL32); // h_prev_block
    put32(&mut b, 40, 1); // h_num_logops
    // The data sector's first word is replaced by the cycle; the word it
    // held (the op header's transaction id) goes to h_cycle_data[0].
    put32(&mut b, 44, 0xb0c0_d0d0);
    put32(&mut b, 300, 1); // h_fmt: little-endian Linux
    b[304..320].copy_from_slice(&opts.uuid);
    put32(&mut b, 320, 32768); // h_size
    let d = 512;
    put32(&mut b, d, 1); // cycle in place of oh_tid
    put32(&mut b, d + 4, 8); // oh_len
    b[d + 8] = 0xaa; // oh_clientid: XFS_LOG
    b[d + 9] = 0x20; // oh_flags: XLOG_UNMOUNT_TRANS
    // xfs_unmount_log_format, host (little) endian: magic 0x556e.
    b[d + 12..d + 14].copy_from_slice(&0x556eu16.to_le_bytes());
    b
}

fn remote_symlink(target: &[u8], owner: u64, uuid: &[u8; 16], daddr: u64) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    put32(&mut b, 0, SYMLINK_MAGIC);
    put32(&mut b, 4, 0);
    put32(&mut b, 8, target.len() as u32);
    b[16..32].copy_from_slice(uuid);
    put64(&mut b, 32, owner);
    put64(&mut b, 40, daddr);
    b[56..56 + target.len()].copy_from_slice(target);
    set_crc(&mut b, 12);
    b
}

/// An unused inode of a chunk, as mkfs.xfs initializes one.
fn free_inode(num: u64, opts: &Options) -> Vec<u8> {
    let mut b = vec![0u8; INODE_SIZE];
    put16(&mut b, 0, DINODE_MAGIC);
    b[4] = 3;
    put32(&mut b, 92, generation(num, opts));
    put32(&mut b, 96, NULL32);
    put64(&mut b, 152, num);
    b[160..176].copy_from_slice(&opts.uuid);
    set_crc(&mut b, 100);
    b
}

/// An inode's generation: from the filesystem's seed and its number.
fn generation(num: u64, opts: &Options) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&opts.hash_seed), &num.to_be_bytes())
}

/// One inode record.
fn inode(ino: &Ino, alloc: &super::layout::Alloc, num: u64, geo: &Geo, opts: &Options) -> Vec<u8> {
    let mut b = vec![0u8; INODE_SIZE];
    put16(&mut b, 0, DINODE_MAGIC);
    put16(&mut b, 2, ino.mode);
    b[4] = 3;
    put32(&mut b, 8, ino.uid);
    put32(&mut b, 12, ino.gid);
    put32(&mut b, 16, ino.nlink);
    let t = bigtime(ino.sec, ino.nsec);
    for at in [32, 40, 48, 144] {
        put64(&mut b, at, t);
    }
    put64(&mut b, 56, ino.size);
    put64(&mut b, 64, alloc.blocks());
    put32(&mut b, 76, alloc.data.len() as u32);
    put16(&mut b, 90, ino.flags);
    put32(&mut b, 92, generation(num, opts));
    put32(&mut b, 96, NULL32);
    put64(&mut b, 104, 1);
    put64(&mut b, 120, DIFLAG2_BIGTIME);
    put64(&mut b, 152, num);
    b[160..176].copy_from_slice(&opts.uuid);
    // The data fork.
    let lit = DINODE_CORE;
    let format = match &ino.body {
        Body::Dir(d) if ino.local() => {
            let sf = d.render_sf();
            b[lit..lit + sf.len()].copy_from_slice(&sf);
            FMT_LOCAL
        }
        Body::Symlink(t) if ino.local() => {
            b[lit..lit + t.len()].copy_from_slice(t);
            FMT_LOCAL
        }
        Body::Dev(rdev) => {
            put32(&mut b, lit, *rdev);
            FMT_DEV
        }
        _ => {
            for (k, e) in alloc.data.iter().enumerate() {
                let r = extent_rec(e.off, geo.fsb(e.linear), e.len);
                b[lit + 16 * k..lit + 16 * (k + 1)].copy_from_slice(&r);
            }
            FMT_EXTENTS
        }
    };
    b[5] = format;
    // The attribute fork.
    b[83] = FMT_EXTENTS;
    if !ino.attrs.is_empty() {
        b[82] = (ino.avail / 8) as u8;
        let at = lit + ino.avail;
        if ino.attr_sf {
            let sf = super::attr::render_sf(&ino.attrs);
            b[at..at + sf.len()].copy_from_slice(&sf);
            b[83] = FMT_LOCAL;
        } else if let Some(blk) = alloc.attr_block {
            b[at..at + 16].copy_from_slice(&extent_rec(0, geo.fsb(blk), 1));
            put16(&mut b, 80, 1);
        }
    }
    set_crc(&mut b, 100);
    b
}
