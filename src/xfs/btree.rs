//! The per-AG short-form btrees (`xfs_btree_block` with 32-bit sibling
//! pointers: free space by block and by size, inodes, free inodes,
//! reference counts), built bottom-up from sorted records.
//!
//! Records are shared evenly between the blocks of a level, so every
//! block but a lone root holds at least half its maximum, which
//! `xfs_repair` asks of a non-root block.

use super::format::{
    BNO_MAGIC, BS, CNT_MAGIC, FINO_MAGIC, INO_MAGIC, REFC_MAGIC, put16, put32, put64, set_crc,
};

/// The v5 short block header (`XFS_BTREE_SBLOCK_CRC_LEN`).
pub(crate) const HDR: usize = 56;
const CRC_OFF: usize = 52;

/// One kind of btree: its magic, record and key sizes.
#[derive(Clone, Copy)]
pub(crate) struct Kind {
    pub magic: u32,
    pub rec_len: usize,
    pub key_len: usize,
}

impl Kind {
    pub fn leaf_max(self) -> usize {
        (BS - HDR) / self.rec_len
    }

    pub fn node_max(self) -> usize {
        (BS - HDR) / (self.key_len + 4)
    }

    /// Blocks per level for `nrecs` records, leaves first (at least one
    /// leaf: an empty tree is an empty root leaf).
    pub fn levels(self, nrecs: usize) -> Vec<usize> {
        let mut levels = vec![nrecs.div_ceil(self.leaf_max()).max(1)];
        while let Some(&n) = levels.last()
            && n > 1
        {
            levels.push(n.div_ceil(self.node_max()));
        }
        levels
    }

    /// Blocks the tree takes besides its root.
    pub fn extra_blocks(self, nrecs: usize) -> u64 {
        self.levels(nrecs).iter().sum::<usize>() as u64 - 1
    }
}

/// The trees every AG has: inodes and free inodes (16-byte records,
/// 4-byte keys), free space by block and by size (8 and 8), reference
/// counts (12 and 4).
pub(crate) const INO_BTREE: Kind = Kind {
    magic: INO_MAGIC,
    rec_len: 16,
    key_len: 4,
};
pub(crate) const FINO_BTREE: Kind = Kind {
    magic: FINO_MAGIC,
    rec_len: 16,
    key_len: 4,
};
pub(crate) const BNO_BTREE: Kind = Kind {
    magic: BNO_MAGIC,
    rec_len: 8,
    key_len: 8,
};
pub(crate) const CNT_BTREE: Kind = Kind {
    magic: CNT_MAGIC,
    rec_len: 8,
    key_len: 8,
};
pub(crate) const REFC_BTREE: Kind = Kind {
    magic: REFC_MAGIC,
    rec_len: 12,
    key_len: 4,
};

/// Where the tree lives: its AG, the AG's first sector on disk (for the
/// `bb_blkno` self-pointer), the filesystem UUID.
pub(crate) struct Place<'a> {
    pub agno: u32,
    pub ag_daddr: u64,
    pub uuid: &'a [u8; 16],
}

/// Every block of the tree over `recs` (concatenated records, sorted),
/// with its AG block number: the root at `root`, the other blocks at
/// `extra..` (leaves first, then each level up). Sorted by block number.
pub(crate) fn build(
    kind: Kind,
    recs: &[u8],
    root: u32,
    extra: u32,
    place: &Place<'_>,
) -> Vec<(u32, Vec<u8>)> {
    let nrecs = recs.len() / kind.rec_len;
    let levels = kind.levels(nrecs);
    let top = levels.len() - 1;
    // Block numbers, level by level.
    let mut next = extra;
    let mut bnos: Vec<Vec<u32>> = Vec::new();
    for (l, &n) in levels.iter().enumerate() {
        if l == top {
            bnos.push(vec![root]);
        } else {
            bnos.push((next..next + n as u32).collect());
            next += n as u32;
        }
    }
    let mut out = Vec::new();
    // Leaves: records split evenly in order; remember each block's first key.
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for (i, &bno) in bnos[0].iter().enumerate() {
        let r = share(nrecs, bnos[0].len(), i);
        let chunk = &recs[r.start * kind.rec_len..r.end * kind.rec_len];
        let mut b = header(
            kind.magic,
            0,
            chunk.len() / kind.rec_len,
            &bnos[0],
            i,
            place,
        );
        b[HDR..HDR + chunk.len()].copy_from_slice(chunk);
        keys.push(chunk.get(..kind.key_len).unwrap_or(&[]).to_vec());
        finish(&mut b, bno, place);
        out.push((bno, b));
    }
    for level in 1..levels.len() {
        let per = kind.node_max();
        let below = &bnos[level - 1];
        let mut up_keys = Vec::new();
        for (i, &bno) in bnos[level].iter().enumerate() {
            let range = share(below.len(), bnos[level].len(), i);
            let mut b = header(
                kind.magic,
                level as u16,
                range.len(),
                &bnos[level],
                i,
                place,
            );
            for (k, child) in range.clone().enumerate() {
                let kat = HDR + k * kind.key_len;
                b[kat..kat + kind.key_len].copy_from_slice(&keys[child]);
                put32(&mut b, HDR + per * kind.key_len + k * 4, below[child]);
            }
            up_keys.push(keys[range.start].clone());
            finish(&mut b, bno, place);
            out.push((bno, b));
        }
        keys = up_keys;
    }
    out.sort_by_key(|(bno, _)| *bno);
    out
}

/// Block `i` of `blocks`' share of `n` items: the first `n % blocks`
/// blocks take one more.
fn share(n: usize, blocks: usize, i: usize) -> std::ops::Range<usize> {
    let (base, extra) = (n / blocks, n % blocks);
    let start = i * base + i.min(extra);
    start..start + base + usize::from(i < extra)
}

/// A block header: level, record count, siblings from `row[i-1]`, `row[i+1]`.
fn header(magic: u32, level: u16, n: usize, row: &[u32], i: usize, place: &Place<'_>) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    put32(&mut b, 0, magic);
    put16(&mut b, 4, level);
    put16(&mut b, 6, n as u16);
    let left = if i == 0 { u32::MAX } else { row[i - 1] };
    let right = row.get(i + 1).copied().unwrap_or(u32::MAX);
    put32(&mut b, 8, left);
    put32(&mut b, 12, right);
    b[32..48].copy_from_slice(place.uuid);
    put32(&mut b, 48, place.agno);
    b
}

fn finish(b: &mut [u8], bno: u32, place: &Place<'_>) {
    put64(b, 16, place.ag_daddr + u64::from(bno) * (BS as u64 / 512));
    set_crc(b, CRC_OFF);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_grow_when_a_level_overflows() {
        let k = Kind {
            magic: 0,
            rec_len: 16,
            key_len: 4,
        };
        assert_eq!(k.levels(0), vec![1]);
        assert_eq!(k.levels(252), vec![1]);
        assert_eq!(k.levels(253), vec![2, 1]);
        assert_eq!(k.extra_blocks(253), 2);
        let blocks = build(
            k,
            &vec![7u8; 253 * 16],
            3,
            100,
            &Place {
                agno: 0,
                ag_daddr: 0,
                uuid: &[0; 16],
            },
        );
        let bnos: Vec<u32> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(bnos, [3, 100, 101]);
        // The root points at both leaves, which share the records.
        let root = &blocks[0].1;
        assert_eq!(u16::from_be_bytes([root[6], root[7]]), 2);
        let count = |b: &[u8]| u16::from_be_bytes([b[6], b[7]]);
        assert_eq!((count(&blocks[1].1), count(&blocks[2].1)), (127, 126));
        assert_eq!(share(10, 3, 0), 0..4);
        assert_eq!(share(10, 3, 2), 7..10);
    }
}
