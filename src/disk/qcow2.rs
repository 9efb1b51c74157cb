//! A qcow2 image of a raw disk image: version 3, the format OpenStack,
//! DigitalOcean and KVM hosts import.
//!
//! In: the image's parts in image order, as [`super::digest_raw`]'s pass
//! hands them out (workers pick out the clusters that hold data). Out: one
//! `.qcow2` file, as QEMU's "qcow2 Image File Format" (`docs/interop/
//! qcow2.txt`) describes it:
//!
//! - version 3, 64 KiB clusters (`cluster_bits` 16), no backing file, no
//!   encryption, no snapshots, no feature bits, 16-bit refcounts
//!   (`refcount_order` 4), a 104-byte header and no header extensions;
//! - a guest cluster that is all zeros is not stored: its L2 entry is 0,
//!   "unallocated", which reads as zeros when there is no backing file
//!   (and an L2 table with no entry is not stored either: its L1 entry is
//!   0). Every other cluster is stored whole, uncompressed, its L2 entry
//!   the host offset with bit 63 set (refcount exactly one), as are the L1
//!   entries;
//! - the file, front to back: the header cluster, the data clusters in
//!   guest order (appended as the pass hands them over), then the L2
//!   tables, the L1 table, the refcount table and the refcount blocks, all
//!   written once the pass is over, when it is known where each one goes.
//!   Every cluster of the file has refcount 1 and is referenced: nothing
//!   leaks, nothing is left unused (`qemu-img check` judges it).
//!
//! The header points at tables that come after the data, so the file
//! cannot be hashed as it is written: its SHA-256 is the header cluster,
//! then the data clusters read back from the file (from the page cache,
//! just written), then the tables as they are written.
//!
//! Why our own: qemu-img is another program (the build path runs none);
//! no crate writes qcow2 reproducibly and streamed. The format needs
//! nothing random or dated.
//!
//! Memory: one bit per guest cluster (2 KiB per GiB of disk) for which
//! clusters are stored, one table cluster (64 KiB) at a time at the end,
//! and the pass's parts in flight (each worker copies its part's data
//! clusters out of the read buffer, at most 1 MiB a part).
//!
//! Never: reads the clock or a random source, or depends on the number of
//! worker threads (parts are consumed in image order).

use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};
use zerocopy::big_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::format::{self, Encoded, ImageFormat, Made, Part, PartEncoder, RawDone, RawStream};
use super::{DiskError, Result, io_at, raw};

/// `cluster_bits`: 64 KiB clusters, qemu-img's default.
const CLUSTER_BITS: u32 = 16;
/// Bytes per cluster.
pub const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// Entries of an L2 table (one cluster of 8-byte entries): 512 MiB of
/// disk per table.
const L2_ENTRIES: u64 = CLUSTER / 8;
/// `refcount_order` 4: 16-bit refcounts, 32768 per refcount block.
const REFCOUNT_ORDER: u32 = 4;
const REFCOUNT_BLOCK_ENTRIES: u64 = CLUSTER * 8 / (1 << REFCOUNT_ORDER);
/// Entries of a refcount table cluster (8 bytes each).
const REFCOUNT_TABLE_ENTRIES: u64 = CLUSTER / 8;
/// L1 and L2 entries: bit 63, "refcount exactly one" (`QCOW_OFLAG_COPIED`).
const COPIED: u64 = 1 << 63;
const VERSION: u32 = 3;
const HEADER_LENGTH: u32 = 104;

/// "Header": the 104 bytes of a version 3 header, big-endian.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct Header {
    magic: [u8; 4],
    version: U32,
    backing_file_offset: U64,
    backing_file_size: U32,
    cluster_bits: U32,
    size: U64,
    crypt_method: U32,
    l1_size: U32,
    l1_table_offset: U64,
    refcount_table_offset: U64,
    refcount_table_clusters: U32,
    nb_snapshots: U32,
    snapshots_offset: U64,
    incompatible_features: U64,
    compatible_features: U64,
    autoclear_features: U64,
    refcount_order: U32,
    header_length: U32,
}

const _: () = assert!(size_of::<Header>() == HEADER_LENGTH as usize);
// Parts start on a cluster: a cluster is never split between two parts.
const _: () = assert!(format::PART_ALIGN.is_multiple_of(CLUSTER));

/// Where everything goes, once the number of data clusters is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Data clusters, from cluster 1.
    data: u64,
    /// L2 tables stored (those with at least one entry), after the data.
    l2_tables: u64,
    /// Entries of the L1 table, and the clusters it takes.
    l1_size: u64,
    l1_clusters: u64,
    refcount_table_clusters: u64,
    refcount_blocks: u64,
}

impl Layout {
    fn new(virtual_size: u64, data: u64, l2_tables: u64) -> Layout {
        let l1_size = virtual_size.div_ceil(CLUSTER * L2_ENTRIES);
        let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
        let before = 1 + data + l2_tables + l1_clusters;
        // The refcount blocks count themselves and the table that points
        // at them: grow both until they cover the whole file.
        let (mut table, mut blocks) = (1, 1);
        loop {
            let total = before + table + blocks;
            let need_blocks = total.div_ceil(REFCOUNT_BLOCK_ENTRIES);
            let need_table = need_blocks.div_ceil(REFCOUNT_TABLE_ENTRIES).max(1);
            if need_blocks <= blocks && need_table <= table {
                break;
            }
            blocks = blocks.max(need_blocks);
            table = table.max(need_table);
        }
        Layout {
            data,
            l2_tables,
            l1_size,
            l1_clusters,
            refcount_table_clusters: table,
            refcount_blocks: blocks,
        }
    }

    fn l2_start(&self) -> u64 {
        1 + self.data
    }
    fn l1_start(&self) -> u64 {
        self.l2_start() + self.l2_tables
    }
    fn refcount_table_start(&self) -> u64 {
        self.l1_start() + self.l1_clusters
    }
    fn refcount_blocks_start(&self) -> u64 {
        self.refcount_table_start() + self.refcount_table_clusters
    }
    /// Clusters in the file.
    fn total(&self) -> u64 {
        self.refcount_blocks_start() + self.refcount_blocks
    }

    fn header(&self, virtual_size: u64) -> Result<Header> {
        let l1_size = u32::try_from(self.l1_size).map_err(|_| DiskError::TooLarge {
            what: "a qcow2 disk",
            size: virtual_size,
            max: u64::from(u32::MAX) * CLUSTER * L2_ENTRIES,
        })?;
        Ok(Header {
            magic: *b"QFI\xfb",
            version: U32::new(VERSION),
            backing_file_offset: U64::new(0),
            backing_file_size: U32::new(0),
            cluster_bits: U32::new(CLUSTER_BITS),
            size: U64::new(virtual_size),
            crypt_method: U32::new(0),
            l1_size: U32::new(l1_size),
            l1_table_offset: U64::new(self.l1_start() * CLUSTER),
            refcount_table_offset: U64::new(self.refcount_table_start() * CLUSTER),
            // Under 2^32 clusters of table for any file under 2^56 bytes.
            refcount_table_clusters: U32::new(self.refcount_table_clusters as u32),
            nb_snapshots: U32::new(0),
            snapshots_offset: U64::new(0),
            incompatible_features: U64::new(0),
            compatible_features: U64::new(0),
            autoclear_features: U64::new(0),
            refcount_order: U32::new(REFCOUNT_ORDER),
            header_length: U32::new(HEADER_LENGTH),
        })
    }
}

/// The qcow2 as a disk format of `bake` ([`super::format`]).
pub struct Format {
    out: File,
    size: u64,
    /// One bit per guest cluster: stored (it holds a non-zero byte).
    stored: Vec<u64>,
    /// Data clusters written so far (the next goes to cluster `1 + data`).
    data: u64,
    /// The next guest cluster the pass will hand over.
    next: u64,
}

impl Format {
    /// Start `out` (emptied first) for a raw image of `cx.raw_len` bytes.
    pub fn new(out: File, cx: &format::Context) -> Result<Self> {
        let clusters = cx.raw_len.div_ceil(CLUSTER);
        // Checked before the pass: the header's L1 size must fit.
        Layout::new(cx.raw_len, 0, 0).header(cx.raw_len)?;
        out.set_len(0).map_err(io_at("empty the qcow2", 0))?;
        Ok(Format {
            out,
            size: cx.raw_len,
            stored: vec![0; clusters.div_ceil(64) as usize],
            data: 0,
            next: 0,
        })
    }

    fn is_stored(&self, cluster: u64) -> bool {
        self.stored[(cluster / 64) as usize] & (1 << (cluster % 64)) != 0
    }

    /// The guest clusters L1 entry `index` maps.
    fn l2_range(&self, index: u64) -> std::ops::Range<u64> {
        let first = index * L2_ENTRIES;
        first..(first + L2_ENTRIES).min(self.size.div_ceil(CLUSTER))
    }

    /// Whether L1 entry `index` needs an L2 table: one of its clusters is
    /// stored.
    fn l2_used(&self, index: u64) -> bool {
        self.l2_range(index).any(|g| self.is_stored(g))
    }

    /// The L2 table of L1 entry `index`; `rank` is the number of data
    /// clusters stored before the table's first cluster, and moves past
    /// its own.
    fn l2_table(&self, index: u64, rank: &mut u64) -> Vec<U64> {
        let range = self.l2_range(index);
        let first = range.start;
        let mut table = vec![U64::new(0); L2_ENTRIES as usize];
        for g in range {
            if self.is_stored(g) {
                *rank += 1;
                table[(g - first) as usize] = U64::new((*rank * CLUSTER) | COPIED);
            }
        }
        table
    }
}

/// What a worker makes of a part: which of its clusters hold data, and
/// those clusters' bytes, one after the other (the image's last cluster
/// padded with zeros to a whole one).
struct Clusters {
    stored: Vec<bool>,
    bytes: Vec<u8>,
}

struct Picker;

impl PartEncoder for Picker {
    fn encode(&mut self, _offset: u64, bytes: &[u8]) -> Result<Encoded> {
        let mut c = Clusters {
            stored: Vec::with_capacity(bytes.len().div_ceil(CLUSTER as usize)),
            bytes: Vec::new(),
        };
        for cluster in bytes.chunks(CLUSTER as usize) {
            let data = !raw::is_zero(cluster);
            c.stored.push(data);
            if data {
                let at = c.bytes.len();
                c.bytes.extend_from_slice(cluster);
                c.bytes.resize(at + CLUSTER as usize, 0);
            }
        }
        Ok(Box::new(c))
    }
}

impl RawStream for Format {
    fn encoder(&self) -> Result<Box<dyn PartEncoder>> {
        Ok(Box::new(Picker))
    }

    fn consume(&mut self, offset: u64, part: Part) -> Result<()> {
        let first = offset / CLUSTER;
        if first != self.next || !offset.is_multiple_of(CLUSTER) {
            return Err(DiskError::Io {
                action: "write the qcow2",
                offset,
                source: std::io::Error::other("a part came out of order"),
            });
        }
        match part {
            Part::Hole { len } => self.next += len.div_ceil(CLUSTER),
            Part::Data(e) => {
                let c: Clusters = format::take(e)?;
                let at = (1 + self.data) * CLUSTER;
                self.out
                    .write_all_at(&c.bytes, at)
                    .map_err(io_at("write the qcow2", at))?;
                for (i, &data) in c.stored.iter().enumerate() {
                    let g = first + i as u64;
                    if data {
                        self.stored[(g / 64) as usize] |= 1 << (g % 64);
                        self.data += 1;
                    }
                }
                self.next += c.stored.len() as u64;
            }
        }
        Ok(())
    }
}

/// The tables, written front to back after the data and hashed as they go.
struct Tail<'a> {
    out: &'a File,
    at: u64,
    sha: &'a mut Sha256,
}

impl Tail<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        debug_assert!((bytes.len() as u64).is_multiple_of(CLUSTER));
        self.out
            .write_all_at(bytes, self.at)
            .map_err(io_at("write the qcow2 tables", self.at))?;
        self.sha.update(bytes);
        self.at += bytes.len() as u64;
        Ok(())
    }
}

/// `entries` as whole clusters, the rest zeros.
fn clusters_of(entries: &[U64], clusters: u64) -> Vec<u8> {
    let mut b = entries.as_bytes().to_vec();
    b.resize((clusters * CLUSTER) as usize, 0);
    b
}

impl ImageFormat for Format {
    fn stream(&mut self) -> &mut dyn RawStream {
        self
    }

    fn finish(self: Box<Self>, _raw: &RawDone<'_>) -> Result<Made> {
        if self.next != self.size.div_ceil(CLUSTER) {
            return Err(DiskError::Io {
                action: "write the qcow2",
                offset: self.next * CLUSTER,
                source: std::io::Error::other("the pass ended before the image did"),
            });
        }
        let l1_size = self.size.div_ceil(CLUSTER * L2_ENTRIES);
        let l2_tables = (0..l1_size).filter(|&i| self.l2_used(i)).count() as u64;
        let layout = Layout::new(self.size, self.data, l2_tables);
        let header = layout.header(self.size)?;
        self.out
            .write_all_at(header.as_bytes(), 0)
            .map_err(io_at("write the qcow2 header", 0))?;

        // The header cluster, then the data read back.
        let mut sha = Sha256::new();
        let mut first = header.as_bytes().to_vec();
        first.resize(CLUSTER as usize, 0);
        sha.update(&first);
        let data_end = (1 + self.data) * CLUSTER;
        let mut at = CLUSTER;
        let mut buf = vec![0u8; 1 << 20];
        while at < data_end {
            let n = ((data_end - at) as usize).min(buf.len());
            self.out
                .read_exact_at(&mut buf[..n], at)
                .map_err(io_at("read the qcow2 back", at))?;
            sha.update(&buf[..n]);
            at += n as u64;
        }

        // L2 tables, L1 table, refcount table, refcount blocks.
        let mut tail = Tail {
            out: &self.out,
            at: data_end,
            sha: &mut sha,
        };
        let mut l1 = vec![U64::new(0); l1_size as usize];
        let mut rank = 0;
        let mut l2_at = layout.l2_start();
        for (i, entry) in l1.iter_mut().enumerate() {
            if self.l2_used(i as u64) {
                tail.put(self.l2_table(i as u64, &mut rank).as_bytes())?;
                *entry = U64::new((l2_at * CLUSTER) | COPIED);
                l2_at += 1;
            }
        }
        tail.put(&clusters_of(&l1, layout.l1_clusters))?;
        let table: Vec<U64> = (0..layout.refcount_blocks)
            .map(|b| U64::new((layout.refcount_blocks_start() + b) * CLUSTER))
            .collect();
        tail.put(&clusters_of(&table, layout.refcount_table_clusters))?;
        let total = layout.total();
        for b in 0..layout.refcount_blocks {
            let from = b * REFCOUNT_BLOCK_ENTRIES;
            let counts: Vec<u8> = (from..from + REFCOUNT_BLOCK_ENTRIES)
                .flat_map(|c| u16::from(c < total).to_be_bytes())
                .collect();
            tail.put(&counts)?;
        }
        debug_assert_eq!(tail.at, total * CLUSTER);
        Ok(Made {
            size: total * CLUSTER,
            sha256: sha.finalize().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cluster of the file has a refcount, and no refcount block or
    /// table cluster more than that is made.
    #[test]
    fn refcounts_cover_the_whole_file_and_no_more() {
        let gib = 1 << 30;
        for (size, data, l2) in [
            (64 << 20, 0, 0),
            (8 * gib, 32_760, 1),
            (8 * gib, 32_762, 4),
            (100 * gib, 70_000, 200),
            (
                4096 * gib,
                REFCOUNT_BLOCK_ENTRIES * REFCOUNT_TABLE_ENTRIES,
                8192,
            ),
        ] {
            let l = Layout::new(size, data, l2);
            let covered = |blocks: u64| blocks * REFCOUNT_BLOCK_ENTRIES;
            assert!(covered(l.refcount_blocks) >= l.total(), "{l:?}");
            assert!(covered(l.refcount_blocks - 1) < l.total(), "{l:?}");
            assert!(l.refcount_table_clusters * REFCOUNT_TABLE_ENTRIES >= l.refcount_blocks);
            assert!((l.refcount_table_clusters - 1) * REFCOUNT_TABLE_ENTRIES < l.refcount_blocks);
            assert_eq!(l.l1_size, size.div_ceil(CLUSTER * L2_ENTRIES));
        }
        // The header, 32,763 data clusters, an L2 table, the L1 table, the
        // refcount table and one refcount block: 32,768, one block's worth.
        assert_eq!(Layout::new(8 * gib, 32_763, 1).refcount_blocks, 1);
        assert_eq!(Layout::new(8 * gib, 32_764, 1).refcount_blocks, 2);
    }
}
