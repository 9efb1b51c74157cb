//! Directories in the four forms of version 2/3 directories ("XFS
//! Algorithms & Data Structures", "Directories"), the smallest that holds
//! the entries:
//!
//! - short form in the inode (`xfs_dir2_sf`), while it fits the data fork;
//! - block form: one `XDB3` block with entries, then the hash leaf and tail;
//! - leaf form: `XDD3` data blocks and one `LEAF1` block (hashes and the
//!   best free space of each data block) at the 32 GiB mark;
//! - node form: data blocks, `LEAFN` leaves under a `DA3_NODE` tree (the
//!   root at the 32 GiB mark, the leaves after it, other nodes after
//!   them) and `XDF3` free-index blocks at the 64 GiB mark.
//!
//! Entries go in name order, packed into data blocks; each data block's
//! unused tail is one free region. Every block is rendered on demand from
//! the layout, so a directory's memory is its entries.

use std::ops::Range;

use super::format::*;

/// One entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub ftype: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    Short,
    Block,
    Leaf,
    Node,
}

#[derive(Debug)]
pub(crate) struct Dir {
    pub parent: u64,
    pub entries: Vec<Entry>,
    pub form: Form,
    /// Per entry: its data block and offset there (short form: the
    /// offset it would have in a block).
    pos: Vec<(u32, u16)>,
    /// Entries per data block, and where each block's free tail starts.
    blocks: Vec<(Range<usize>, usize)>,
    /// Leaf blocks (node form: `LEAFN` blocks).
    leaves: u64,
    /// Node-form interior nodes per level, the leaves' parents first; the
    /// last level is the root.
    nodes: Vec<usize>,
    free_blocks: u64,
}

/// `xfs_dir2_data_entsize` with file types.
fn entsize(namelen: usize) -> usize {
    (8 + 1 + namelen + 1 + 2).div_ceil(8) * 8
}

const LEAF_HDR: usize = 64;
const LEAFN_MAX: usize = (BS - LEAF_HDR) / 8;
const NODE_MAX: usize = (BS - 64) / 8;
const FREE_MAX: usize = (BS - 64) / 2;

/// Bytes of the short form (4-byte inode numbers: every inode this
/// writer makes sits in AG 0's first 4 billion).
pub(crate) fn sf_size(entries: &[Entry]) -> usize {
    6 + entries.iter().map(|e| 8 + e.name.len()).sum::<usize>()
}

impl Dir {
    /// Lay out a directory whose data fork has `avail` bytes in the inode.
    pub fn new(parent: u64, entries: Vec<Entry>, avail: usize) -> Dir {
        let n = entries.len();
        let mut d = Dir {
            parent,
            entries,
            form: Form::Short,
            pos: Vec::with_capacity(n),
            blocks: Vec::new(),
            leaves: 0,
            nodes: Vec::new(),
            free_blocks: 0,
        };
        let total: usize = d.entries.iter().map(|e| entsize(e.name.len())).sum();
        if sf_size(&d.entries) <= avail {
            let mut off = DIR_FIRST_OFFSET;
            for e in &d.entries {
                d.pos.push((0, off as u16));
                off += entsize(e.name.len());
            }
            return d;
        }
        if DIR_FIRST_OFFSET + total + 8 * (n + 2) + 8 <= BS {
            d.form = Form::Block;
            d.pack(BS - 8 - 8 * (n + 2));
            return d;
        }
        d.pack(BS);
        let nd = d.blocks.len();
        if LEAF_HDR + 8 * (n + 2) + 2 * nd + 4 <= BS {
            d.form = Form::Leaf;
            d.leaves = 1;
            return d;
        }
        d.form = Form::Node;
        d.leaves = (n + 2).div_ceil(LEAFN_MAX) as u64;
        let mut below = d.leaves as usize;
        loop {
            let up = below.div_ceil(NODE_MAX);
            d.nodes.push(up);
            if up == 1 {
                break;
            }
            below = up;
        }
        d.free_blocks = nd.div_ceil(FREE_MAX) as u64;
        d
    }

    /// Put entries into data blocks in order, each block's entries ending
    /// by `end` (block form) or the block's end.
    fn pack(&mut self, end: usize) {
        let mut start = 0;
        let mut off = DIR_FIRST_OFFSET;
        for (i, e) in self.entries.iter().enumerate() {
            let size = entsize(e.name.len());
            if off + size > end {
                self.blocks.push((start..i, off));
                start = i;
                off = DIR_HDR;
            }
            self.pos.push((self.blocks.len() as u32, off as u16));
            off += size;
        }
        self.blocks.push((start..self.entries.len(), off));
    }

    /// The directory's size (`di_size`): the short form's bytes, else its
    /// data blocks.
    pub fn size(&self) -> u64 {
        match self.form {
            Form::Short => sf_size(&self.entries) as u64,
            _ => self.blocks.len() as u64 * BLOCK,
        }
    }

    /// The directory's blocks as (first directory block, count) runs.
    pub fn sections(&self) -> Vec<(u64, u64)> {
        let mut s = Vec::new();
        if self.form == Form::Short {
            return s;
        }
        s.push((0, self.blocks.len() as u64));
        match self.form {
            Form::Leaf => s.push((LEAF_DABLK, 1)),
            Form::Node => {
                let nodes: usize = self.nodes.iter().sum();
                s.push((LEAF_DABLK, self.leaves + nodes as u64));
                s.push((FREE_DABLK, self.free_blocks));
            }
            _ => {}
        }
        s
    }

    /// The short form bytes.
    pub fn render_sf(&self) -> Vec<u8> {
        let mut b = vec![0u8; sf_size(&self.entries)];
        b[0] = self.entries.len() as u8;
        put32(&mut b, 2, self.parent as u32);
        let mut at = 6;
        for (e, (_, off)) in self.entries.iter().zip(&self.pos) {
            b[at] = e.name.len() as u8;
            put16(&mut b, at + 1, *off);
            b[at + 3..at + 3 + e.name.len()].copy_from_slice(&e.name);
            at += 3 + e.name.len();
            b[at] = e.ftype;
            put32(&mut b, at + 1, e.ino as u32);
            at += 5;
        }
        b
    }

    /// Every (hash, address) of the leaf entries, sorted by hash.
    pub fn hashes(&self) -> Vec<(u32, u32)> {
        let addr = |db: u32, off: usize| ((u64::from(db) * BLOCK + off as u64) >> 3) as u32;
        let mut h = Vec::with_capacity(self.entries.len() + 2);
        h.push((da_hash(b"."), addr(0, DIR_HDR)));
        h.push((da_hash(b".."), addr(0, DIR_HDR + 16)));
        for (e, (db, off)) in self.entries.iter().zip(&self.pos) {
            h.push((da_hash(&e.name), addr(*db, usize::from(*off))));
        }
        h.sort_unstable();
        h
    }

    /// The free bytes of data block `db` (its best free region).
    fn best(&self, db: usize) -> u16 {
        let tail = match self.form {
            Form::Block => BS - 8 - 8 * (self.entries.len() + 2),
            _ => BS,
        };
        (tail - self.blocks[db].1) as u16
    }

    /// Directory block `dablk` of inode `ino`, `daddr` its disk address
    /// (512-byte units); `hashes` from [`Dir::hashes`].
    pub fn render(
        &self,
        dablk: u64,
        ino: u64,
        uuid: &[u8; 16],
        daddr: u64,
        hashes: &[(u32, u32)],
    ) -> Vec<u8> {
        let mut b = vec![0u8; BS];
        if dablk < LEAF_DABLK {
            self.data_block(&mut b, dablk as usize, ino, hashes);
            put64(&mut b, 8, daddr);
            b[24..40].copy_from_slice(uuid);
            put64(&mut b, 40, ino);
            set_crc(&mut b, 4);
            return b;
        }
        if dablk >= FREE_DABLK {
            self.free_block(&mut b, (dablk - FREE_DABLK) as usize);
            put64(&mut b, 8, daddr);
            b[24..40].copy_from_slice(uuid);
            put64(&mut b, 40, ino);
            set_crc(&mut b, 4);
            return b;
        }
        let k = dablk - LEAF_DABLK;
        if self.form == Form::Leaf {
            self.leaf1_block(&mut b, hashes);
        } else if k >= 1 && k <= self.leaves {
            self.leafn_block(&mut b, (k - 1) as usize, hashes);
        } else {
            self.node_block(&mut b, k, hashes);
        }
        put64(&mut b, 16, daddr);
        b[32..48].copy_from_slice(uuid);
        put64(&mut b, 48, ino);
        set_crc(&mut b, 12);
        b
    }

    fn data_block(&self, b: &mut [u8], db: usize, ino: u64, hashes: &[(u32, u32)]) {
        let magic = if self.form == Form::Block {
            DIR3_BLOCK_MAGIC
        } else {
            DIR3_DATA_MAGIC
        };
        put32(b, 0, magic);
        if db == 0 {
            put_entry(b, DIR_HDR, ino, b".", FT_DIR);
            put_entry(b, DIR_HDR + 16, self.parent, b"..", FT_DIR);
        }
        let (range, free_at) = &self.blocks[db];
        for i in range.clone() {
            let e = &self.entries[i];
            put_entry(b, usize::from(self.pos[i].1), e.ino, &e.name, e.ftype);
        }
        let best = usize::from(self.best(db));
        if best > 0 {
            put16(b, *free_at, 0xffff);
            put16(b, free_at + 2, best as u16);
            put16(b, free_at + best - 2, *free_at as u16);
            put16(b, 48, *free_at as u16);
            put16(b, 50, best as u16);
        }
        if self.form == Form::Block {
            let n = hashes.len();
            let start = BS - 8 - 8 * n;
            for (k, (h, a)) in hashes.iter().enumerate() {
                put32(b, start + 8 * k, *h);
                put32(b, start + 8 * k + 4, *a);
            }
            put32(b, BS - 8, n as u32);
        }
    }

    fn leaf1_block(&self, b: &mut [u8], hashes: &[(u32, u32)]) {
        put16(b, 8, DIR3_LEAF1_MAGIC);
        put16(b, 56, hashes.len() as u16);
        for (k, (h, a)) in hashes.iter().enumerate() {
            put32(b, LEAF_HDR + 8 * k, *h);
            put32(b, LEAF_HDR + 8 * k + 4, *a);
        }
        let nd = self.blocks.len();
        let bests = BS - 4 - 2 * nd;
        for db in 0..nd {
            put16(b, bests + 2 * db, self.best(db));
        }
        put32(b, BS - 4, nd as u32);
    }

    /// Where leaf `i`'s hashes start: `n` hashes shared evenly, so no
    /// leaf is less than half full.
    fn leaf_start(&self, i: usize, n: usize) -> usize {
        let l = self.leaves as usize;
        i * (n / l) + i.min(n % l)
    }

    /// The hashes leaf `i` holds.
    fn leaf_range(&self, i: usize, n: usize) -> Range<usize> {
        self.leaf_start(i, n)..self.leaf_start(i + 1, n)
    }

    fn leafn_block(&self, b: &mut [u8], i: usize, hashes: &[(u32, u32)]) {
        put16(b, 8, DIR3_LEAFN_MAGIC);
        // Siblings are directory block numbers; the leaves follow the root.
        if i > 0 {
            put32(b, 4, (LEAF_DABLK + i as u64) as u32);
        }
        if (i as u64) + 1 < self.leaves {
            put32(b, 0, (LEAF_DABLK + i as u64 + 2) as u32);
        }
        let r = self.leaf_range(i, hashes.len());
        put16(b, 56, r.len() as u16);
        for (k, (h, a)) in hashes[r].iter().enumerate() {
            put32(b, LEAF_HDR + 8 * k, *h);
            put32(b, LEAF_HDR + 8 * k + 4, *a);
        }
    }

    /// Interior node `k` of the leaf section (0 the root, else after the
    /// leaves, level by level from the leaves' parents).
    fn node_block(&self, b: &mut [u8], k: u64, hashes: &[(u32, u32)]) {
        let top = self.nodes.len() - 1;
        // Find the node's level and index within the level.
        let (level, idx) = if k == 0 {
            (top, 0)
        } else {
            let mut rest = (k - 1 - self.leaves) as usize;
            let mut level = 0;
            while rest >= self.nodes[level] {
                rest -= self.nodes[level];
                level += 1;
            }
            (level, rest)
        };
        // Directory block of the i-th block of a level (-1: the leaves).
        let first_of = |lvl: usize| -> u64 {
            if lvl == top {
                LEAF_DABLK
            } else {
                LEAF_DABLK + 1 + self.leaves + self.nodes[..lvl].iter().sum::<usize>() as u64
            }
        };
        let children = if level == 0 {
            self.leaves as usize
        } else {
            self.nodes[level - 1]
        };
        let child_block = |c: usize| -> u64 {
            if level == 0 {
                LEAF_DABLK + 1 + c as u64
            } else {
                first_of(level - 1) + c as u64
            }
        };
        // The last leaf under child `c` of this level.
        let leaves = self.leaves as usize;
        let last_leaf =
            |c: usize| -> usize { ((c + 1) * NODE_MAX.pow(level as u32)).min(leaves) - 1 };
        let n = hashes.len();
        put16(b, 8, DA3_NODE_MAGIC);
        if idx > 0 {
            put32(b, 4, (first_of(level) + idx as u64 - 1) as u32);
        }
        if idx + 1 < self.nodes[level] {
            put32(b, 0, (first_of(level) + idx as u64 + 1) as u32);
        }
        let range = idx * NODE_MAX..((idx + 1) * NODE_MAX).min(children);
        put16(b, 56, range.len() as u16);
        put16(b, 58, level as u16 + 1);
        for (j, c) in range.enumerate() {
            let last = self.leaf_start(last_leaf(c) + 1, n) - 1;
            put32(b, 64 + 8 * j, hashes[last].0);
            put32(b, 64 + 8 * j + 4, child_block(c) as u32);
        }
    }

    fn free_block(&self, b: &mut [u8], i: usize) {
        put32(b, 0, DIR3_FREE_MAGIC);
        let nd = self.blocks.len();
        let r = i * FREE_MAX..((i + 1) * FREE_MAX).min(nd);
        put32(b, 48, r.start as u32);
        put32(b, 52, r.len() as u32);
        put32(b, 56, r.len() as u32);
        for (j, db) in r.enumerate() {
            put16(b, 64 + 2 * j, self.best(db));
        }
    }
}

/// A data entry (`xfs_dir2_data_entry`) at `off`.
fn put_entry(b: &mut [u8], off: usize, ino: u64, name: &[u8], ftype: u8) {
    put64(b, off, ino);
    b[off + 8] = name.len() as u8;
    b[off + 9..off + 9 + name.len()].copy_from_slice(name);
    b[off + 9 + name.len()] = ftype;
    put16(b, off + entsize(name.len()) - 2, off as u16);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize, len: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                name: format!("{i:0len$}").into_bytes(),
                ino: 200 + i as u64,
                ftype: FT_REG,
            })
            .collect()
    }

    #[test]
    fn the_smallest_form_that_fits_is_chosen() {
        assert_eq!(Dir::new(128, entries(0, 8), 336).form, Form::Short);
        assert_eq!(Dir::new(128, entries(5, 8), 336).form, Form::Short);
        assert_eq!(Dir::new(128, entries(200, 8), 336).form, Form::Leaf);
        assert_eq!(Dir::new(128, entries(100, 8), 336).form, Form::Block);
        let big = Dir::new(128, entries(5000, 8), 336);
        assert_eq!(big.form, Form::Node);
        assert_eq!(big.nodes, vec![1]);
        let huge = Dir::new(128, entries(300_000, 8), 336);
        assert_eq!(huge.nodes.len(), 2);
    }

    #[test]
    fn node_form_sections_count_every_block() {
        let d = Dir::new(128, entries(5000, 8), 336);
        let s = d.sections();
        assert_eq!(s[0], (0, d.blocks.len() as u64));
        assert_eq!(s[1], (LEAF_DABLK, d.leaves + 1));
        assert_eq!(s[2], (FREE_DABLK, 1));
    }
}
