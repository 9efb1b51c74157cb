//! Directories (directory.rst): how entries are cut into blocks, linear or
//! hashed, and the bytes of each block.
//!
//! A directory whose entries fit in one block is linear, as the kernel
//! leaves it; a bigger one gets an htree index, as the kernel builds it when
//! the first block overflows: the root in block 0, then (for more than 507
//! leaves) one level of interior nodes, then the leaves, packed full in
//! hash order. Where a leaf starts in the middle of a run of equal hashes,
//! its index entry has the low bit set (the kernel's collision bit).
//! `lost+found` stays linear and keeps at least 4 blocks, as mke2fs makes it.

use super::format::{
    DX_HASH_HALF_MD4, DirEntry2, DirEntryTail, DxCountLimit, DxEntry, DxRootInfo, DxTail,
    EXT4_FT_DIR_CSUM, FT_DIR,
};
use super::hash::{crc32c_le, dx_hash};
use super::{BLOCK_SIZE, Ext4Error};

const BS: usize = BLOCK_SIZE as usize;
/// Bytes of a leaf block that entries may use (the tail takes the rest).
const LEAF_SPACE: usize = BS - DirEntryTail::SIZE;
/// `dx_entry` slots in the root (directory.rst: `limit`), the header's
/// included, less one for the `dx_tail`.
pub(crate) const ROOT_LIMIT: usize = (BS - 32) / DxEntry::SIZE - 1;
/// `dx_entry` slots in an interior node, likewise.
pub(crate) const NODE_LIMIT: usize = (BS - 8) / DxEntry::SIZE - 1;
/// Where the root's `dx_countlimit` starts: after `.`, `..` and the info.
const ROOT_COUNT_OFFSET: usize = 32;
/// Where an interior node's `dx_countlimit` starts: after the fake entry.
const NODE_COUNT_OFFSET: usize = 8;

/// One entry as it goes on disk.
#[derive(Clone, Debug)]
pub(crate) struct Entry<'t> {
    pub name: &'t [u8],
    pub ino: u32,
    pub file_type: u8,
    /// The htree hash (0 in linear directories).
    pub hash: u32,
}

/// The record length an entry with a `len`-byte name needs.
pub(crate) fn rec_len(len: usize) -> usize {
    (DirEntry2::SIZE + len).div_ceil(4) * 4
}

/// How a directory's blocks are laid out.
#[derive(Debug)]
pub(crate) enum Shape {
    /// Block `b` holds `entries[starts[b]..starts[b + 1]]` (block 0 after
    /// `.` and `..`); blocks past `starts.len()` are empty.
    Linear { starts: Vec<usize>, blocks: u32 },
    /// Leaf `k` holds `entries[starts[k]..starts[k + 1]]` and is reached by
    /// hash `leaf_hash[k]` (0 for the first). `nodes` interior nodes (0 or
    /// more) sit at blocks `1..=nodes`, leaves after them.
    Htree {
        starts: Vec<usize>,
        leaf_hash: Vec<u32>,
        nodes: u32,
    },
}

/// One directory: its entries (sorted by name for a linear directory, by
/// hash for an htree) and shape.
#[derive(Debug)]
pub(crate) struct DirLayout<'t> {
    pub parent: u32,
    pub entries: Vec<Entry<'t>>,
    pub shape: Shape,
}

impl DirLayout<'_> {
    /// Blocks the directory occupies.
    pub(crate) fn blocks(&self) -> u32 {
        match &self.shape {
            Shape::Linear { blocks, .. } => *blocks,
            Shape::Htree { starts, nodes, .. } => 1 + nodes + starts.len() as u32,
        }
    }

    pub(crate) fn is_htree(&self) -> bool {
        matches!(self.shape, Shape::Htree { .. })
    }
}

/// Cut `entries` (sorted) into leaf-sized runs, starting with `first_used`
/// bytes already taken in the first block. Returns the start of each run.
fn pack(entries: &[Entry<'_>], first_used: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut used = first_used;
    for (i, e) in entries.iter().enumerate() {
        let need = rec_len(e.name.len());
        if used + need > LEAF_SPACE {
            starts.push(i);
            used = 0;
        }
        used += need;
    }
    starts
}

/// Lay out a directory whose entries are sorted by name.
pub(crate) fn layout<'t>(
    parent: u32,
    mut entries: Vec<Entry<'t>>,
    seed: &[u32; 4],
    min_blocks: u32,
    allow_htree: bool,
    path: &str,
) -> Result<DirLayout<'t>, Ext4Error> {
    let dots = rec_len(1) + rec_len(2);
    let starts = pack(&entries, dots);
    if starts.len() == 1 || !allow_htree {
        let blocks = (starts.len() as u32).max(min_blocks);
        return Ok(DirLayout {
            parent,
            entries,
            shape: Shape::Linear { starts, blocks },
        });
    }
    for e in &mut entries {
        e.hash = dx_hash(e.name, seed).0;
    }
    // By hash, then by name, so the order never depends on the input's.
    entries.sort_by(|a, b| (a.hash, a.name).cmp(&(b.hash, b.name)));
    let starts = pack(&entries, 0);
    let leaf_hash: Vec<u32> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            if k == 0 {
                0
            } else if entries[s - 1].hash == entries[s].hash {
                entries[s].hash | 1
            } else {
                entries[s].hash
            }
        })
        .collect();
    let leaves = starts.len();
    let nodes = if leaves <= ROOT_LIMIT {
        0
    } else {
        let n = leaves.div_ceil(NODE_LIMIT);
        if n > ROOT_LIMIT {
            return Err(Ext4Error::DirectoryTooLarge {
                path: path.to_string(),
                entries: entries.len(),
            });
        }
        n as u32
    };
    Ok(DirLayout {
        parent,
        entries,
        shape: Shape::Htree {
            starts,
            leaf_hash,
            nodes,
        },
    })
}

/// Checksums need the directory's inode number and generation (always 0).
pub(crate) fn inode_seed(fs_seed: u32, ino: u32) -> u32 {
    crc32c_le(crc32c_le(fs_seed, &ino.to_le_bytes()), &0u32.to_le_bytes())
}

/// Put one entry at `at`; returns the offset after it.
fn put(buf: &mut [u8], at: usize, ino: u32, rec: usize, name: &[u8], ft: u8) -> usize {
    let mut d = DirEntry2::zeroed();
    d.inode = ino.into();
    d.rec_len = (rec as u16).into();
    d.name_len = name.len() as u8;
    d.file_type = ft;
    buf[at..at + DirEntry2::SIZE].copy_from_slice(d.as_bytes());
    buf[at + DirEntry2::SIZE..at + DirEntry2::SIZE + name.len()].copy_from_slice(name);
    at + rec
}

/// A leaf block: optional `.`/`..`, then `entries`, the last stretched to
/// the tail, then the tail with its checksum.
fn leaf(dots: Option<(u32, u32)>, entries: &[Entry<'_>], ino_seed: u32) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    let mut at = 0;
    let mut last_at = None;
    if let Some((me, parent)) = dots {
        at = put(&mut b, at, me, rec_len(1), b".", FT_DIR);
        last_at = Some(at);
        at = put(&mut b, at, parent, rec_len(2), b"..", FT_DIR);
    }
    for e in entries {
        last_at = Some(at);
        at = put(
            &mut b,
            at,
            e.ino,
            rec_len(e.name.len()),
            e.name,
            e.file_type,
        );
    }
    match last_at {
        // Stretch the last entry to the tail.
        Some(l) => {
            let rec = (LEAF_SPACE - l) as u16;
            b[l + 4..l + 6].copy_from_slice(&rec.to_le_bytes());
        }
        // An empty block: one unused entry covering it.
        None => {
            put(&mut b, 0, 0, LEAF_SPACE, b"", 0);
        }
    }
    let mut t = DirEntryTail::zeroed();
    t.det_rec_len = (DirEntryTail::SIZE as u16).into();
    t.det_reserved_ft = EXT4_FT_DIR_CSUM;
    t.det_checksum = crc32c_le(ino_seed, &b[..LEAF_SPACE]).into();
    b[LEAF_SPACE..].copy_from_slice(t.as_bytes());
    b
}

/// An htree index block: `count_at` is where its `dx_countlimit` goes;
/// `children` are (hash, block), the first hash unused.
fn index(
    mut b: Vec<u8>,
    count_at: usize,
    limit: usize,
    children: &[(u32, u32)],
    ino_seed: u32,
) -> Vec<u8> {
    let mut cl = DxCountLimit::zeroed();
    cl.limit = (limit as u16).into();
    cl.count = (children.len() as u16).into();
    cl.block = children.first().map_or(0, |c| c.1).into();
    b[count_at..count_at + DxCountLimit::SIZE].copy_from_slice(cl.as_bytes());
    for (i, (hash, block)) in children.iter().enumerate().skip(1) {
        let mut e = DxEntry::zeroed();
        e.hash = (*hash).into();
        e.block = (*block).into();
        let at = count_at + i * DxEntry::SIZE;
        b[at..at + DxEntry::SIZE].copy_from_slice(e.as_bytes());
    }
    let tail_at = count_at + limit * DxEntry::SIZE;
    let mut csum = crc32c_le(ino_seed, &b[..count_at + children.len() * DxEntry::SIZE]);
    csum = crc32c_le(csum, &[0u8; DxTail::SIZE]);
    let mut t = DxTail::zeroed();
    t.dt_checksum = csum.into();
    b[tail_at..tail_at + DxTail::SIZE].copy_from_slice(t.as_bytes());
    b
}

/// The bytes of block `n` of directory `ino`.
pub(crate) fn render_block(d: &DirLayout<'_>, ino: u32, n: u32, ino_seed: u32) -> Vec<u8> {
    let n = n as usize;
    match &d.shape {
        Shape::Linear { starts, .. } => {
            let dots = (n == 0).then_some((ino, d.parent));
            let range = match starts.get(n) {
                Some(&s) => s..starts.get(n + 1).copied().unwrap_or(d.entries.len()),
                None => 0..0,
            };
            leaf(dots, &d.entries[range], ino_seed)
        }
        Shape::Htree {
            starts,
            leaf_hash,
            nodes,
        } => {
            let nodes = *nodes as usize;
            let leaves = starts.len();
            let first_leaf = 1 + nodes;
            if n == 0 {
                let mut b = vec![0u8; BS];
                let at = put(&mut b, 0, ino, rec_len(1), b".", FT_DIR);
                put(&mut b, at, d.parent, BS - rec_len(1), b"..", FT_DIR);
                let mut info = DxRootInfo::zeroed();
                info.hash_version = DX_HASH_HALF_MD4;
                info.info_length = DxRootInfo::SIZE as u8;
                info.indirect_levels = u8::from(nodes > 0);
                b[24..24 + DxRootInfo::SIZE].copy_from_slice(info.as_bytes());
                let children: Vec<(u32, u32)> = if nodes == 0 {
                    (0..leaves)
                        .map(|k| (leaf_hash[k], (first_leaf + k) as u32))
                        .collect()
                } else {
                    (0..nodes)
                        .map(|j| (leaf_hash[j * NODE_LIMIT], (1 + j) as u32))
                        .collect()
                };
                index(b, ROOT_COUNT_OFFSET, ROOT_LIMIT, &children, ino_seed)
            } else if n < first_leaf {
                let j = n - 1;
                let mut b = vec![0u8; BS];
                put(&mut b, 0, 0, BS, b"", 0);
                let ks = j * NODE_LIMIT..((j + 1) * NODE_LIMIT).min(leaves);
                let children: Vec<(u32, u32)> = ks
                    .map(|k| (leaf_hash[k], (first_leaf + k) as u32))
                    .collect();
                index(b, NODE_COUNT_OFFSET, NODE_LIMIT, &children, ino_seed)
            } else {
                let k = n - first_leaf;
                let end = starts.get(k + 1).copied().unwrap_or(d.entries.len());
                leaf(None, &d.entries[starts[k]..end], ino_seed)
            }
        }
    }
}
