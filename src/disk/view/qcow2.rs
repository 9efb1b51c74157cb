//! Reading a qcow2 image (any tool's, hostile or not) as its virtual disk,
//! as QEMU's "qcow2 Image File Format" (`docs/interop/qcow2.txt`)
//! describes it: the header gives the cluster size, the virtual size and
//! the L1 table; each L1 entry points at an L2 table of one cluster; each
//! L2 entry maps one guest cluster: 0 (unallocated: zeros, there being no
//! backing file), the "reads as zeros" flag (bit 0, version 3), a host
//! cluster (bits 9-55), or a compressed cluster (bit 62: a raw deflate
//! stream at a byte offset, its length in sectors in the high bits). The
//! refcounts are not read: they matter to a writer, not to a reader.
//!
//! Refused by name: a backing file (an overlay is half a disk), encryption,
//! an external data file, extended L2 entries, zstd compression, the
//! "corrupt" bit and any incompatible feature bit the specification does
//! not define.
//!
//! Limits (each error names it): a virtual disk of at most
//! [`super::MAX_CAPACITY`]; clusters of 512 bytes to 2 MiB (qemu's own
//! limit); an L1 table of at most [`MAX_L1_ENTRIES`] entries (qemu's
//! 32 MiB); every table and cluster inside the file, on a cluster boundary
//! where the format says so; reserved bits clear; a compressed cluster
//! that inflates to exactly one cluster. Memory: the L1 table, the last
//! 16 L2 tables and 4 inflated clusters (`TABLE_CACHE`, `CLUSTER_CACHE`). Every
//! read is one pass over a bounded number of clusters: nothing loops.
//!
//! Why our own: no maintained crate reads qcow2 without running QEMU; the
//! format is small. This reader shares nothing with the writer
//! ([`crate::disk::qcow2`]); its tests read images qemu-img made.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::{DiskRead, MAX_CAPACITY, by_unit, corrupt, io_err, within_disk};
use crate::disk::Result;

/// The most L1 entries read: qemu's limit of a 32 MiB L1 table.
pub const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;
/// L2 tables kept for the next read.
const TABLE_CACHE: usize = 16;
/// Inflated compressed clusters kept for the next read.
const CLUSTER_CACHE: usize = 4;

/// Bits 9-55: a table's or a standard cluster's host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
const READS_AS_ZERO: u64 = 1;

/// Incompatible feature bits (`incompatible_features`).
const DIRTY: u64 = 1 << 0;
const CORRUPT: u64 = 1 << 1;
const EXTERNAL_DATA: u64 = 1 << 2;
const COMPRESSION_TYPE: u64 = 1 << 3;
const EXTENDED_L2: u64 = 1 << 4;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// A qcow2 image's virtual disk.
pub struct Qcow2View {
    file: File,
    file_len: u64,
    size: u64,
    cluster_bits: u32,
    version: u32,
    l1: Vec<u64>,
    tables: Vec<(usize, Vec<u64>)>,
    next_table: usize,
    clusters: Vec<(u64, Vec<u8>)>,
    next_cluster: usize,
    compressed: Vec<u8>,
}

impl Qcow2View {
    pub fn open(file: File) -> Result<Self> {
        let file_len = file
            .metadata()
            .map_err(crate::disk::io_at("read the size of the qcow2", 0))?
            .len();
        if file_len < 72 {
            return Err(corrupt(format!("a qcow2 of {file_len} bytes is too short")));
        }
        let mut h = [0u8; 112];
        let n = (file_len as usize).min(h.len());
        file.read_exact_at(&mut h[..n], 0)
            .map_err(crate::disk::io_at("read the qcow2 header", 0))?;
        if &h[..4] != b"QFI\xfb" {
            return Err(corrupt("no qcow2 magic (`QFI\\xfb`)"));
        }
        let version = be32(&h, 4);
        if version != 2 && version != 3 {
            return Err(corrupt(format!("qcow2 version {version} is not 2 or 3")));
        }
        if be64(&h, 8) != 0 {
            return Err(corrupt(
                "a qcow2 with a backing file (an overlay holds only what changed): ingot reads \
                 standalone images",
            ));
        }
        let cluster_bits = be32(&h, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(corrupt(format!(
                "qcow2 clusters of 2^{cluster_bits} bytes: the limit is 2^9 to 2^21"
            )));
        }
        let size = be64(&h, 24);
        if size > MAX_CAPACITY {
            return Err(corrupt(format!(
                "a qcow2 disk of {size} bytes is over the {MAX_CAPACITY}-byte limit"
            )));
        }
        if be32(&h, 32) != 0 {
            return Err(corrupt(
                "an encrypted qcow2: ingot reads unencrypted images",
            ));
        }
        if version == 3 {
            if file_len < 104 || be32(&h, 100) < 104 {
                return Err(corrupt("a qcow2 version 3 header shorter than 104 bytes"));
            }
            features(be64(&h, 72))?;
        }
        let cluster = 1u64 << cluster_bits;
        let per_table = cluster / 8;
        let needed = size.div_ceil(cluster * per_table);
        let l1_size = u64::from(be32(&h, 36));
        if l1_size < needed {
            return Err(corrupt(format!(
                "the qcow2 L1 table has {l1_size} entries, but a disk of {size} bytes needs \
                 {needed}"
            )));
        }
        if needed > MAX_L1_ENTRIES {
            return Err(corrupt(format!(
                "a qcow2 L1 table of {needed} entries: the limit is {MAX_L1_ENTRIES}"
            )));
        }
        let l1_at = be64(&h, 40);
        inside(l1_at, needed * 8, cluster, file_len, "the qcow2 L1 table")?;
        let mut raw = vec![0u8; (needed * 8) as usize];
        file.read_exact_at(&mut raw, l1_at)
            .map_err(crate::disk::io_at("read the qcow2 L1 table", l1_at))?;
        let l1: Vec<u64> = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
        for (i, &e) in l1.iter().enumerate() {
            if e & !(OFFSET_MASK | COPIED) != 0 {
                return Err(corrupt(format!(
                    "qcow2 L1 entry {i} has reserved bits set ({e:#018x})"
                )));
            }
        }
        Ok(Qcow2View {
            file,
            file_len,
            size,
            cluster_bits,
            version,
            l1,
            tables: Vec::new(),
            next_table: 0,
            clusters: Vec::new(),
            next_cluster: 0,
            compressed: Vec::new(),
        })
    }

    fn cluster(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// The L2 entry of guest cluster `g` (0 when its table is unallocated).
    fn l2_entry(&mut self, g: u64) -> Result<u64> {
        let per_table = self.cluster() / 8;
        let index = (g / per_table) as usize;
        let slot = match self.tables.iter().position(|(i, _)| *i == index) {
            Some(s) => s,
            None => {
                let at = self.l1[index] & OFFSET_MASK;
                if at == 0 {
                    return Ok(0);
                }
                let cluster = self.cluster();
                inside(at, cluster, cluster, self.file_len, "a qcow2 L2 table")?;
                let mut raw = vec![0u8; cluster as usize];
                self.file
                    .read_exact_at(&mut raw, at)
                    .map_err(crate::disk::io_at("read a qcow2 L2 table", at))?;
                let table = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
                if self.tables.len() < TABLE_CACHE {
                    self.tables.push((index, table));
                    self.tables.len() - 1
                } else {
                    let s = self.next_table;
                    self.next_table = (s + 1) % TABLE_CACHE;
                    self.tables[s] = (index, table);
                    s
                }
            }
        };
        Ok(self.tables[slot].1[(g % per_table) as usize])
    }

    /// Read `buf.len()` bytes of guest cluster `g` from byte `within`.
    fn read_cluster(&mut self, g: u64, within: u64, buf: &mut [u8]) -> Result<()> {
        let e = self.l2_entry(g)?;
        let cluster = self.cluster();
        if e & COMPRESSED != 0 {
            let data = self.inflated(g, e)?;
            buf.copy_from_slice(&data[within as usize..within as usize + buf.len()]);
            return Ok(());
        }
        if e & !(OFFSET_MASK | COPIED | READS_AS_ZERO) != 0 {
            return Err(corrupt(format!(
                "the qcow2 L2 entry of cluster {g} has reserved bits set ({e:#018x})"
            )));
        }
        let at = e & OFFSET_MASK;
        if (self.version == 3 && e & READS_AS_ZERO != 0) || at == 0 {
            buf.fill(0);
            return Ok(());
        }
        inside(at, cluster, cluster, self.file_len, "a qcow2 data cluster")?;
        self.file
            .read_exact_at(buf, at + within)
            .map_err(crate::disk::io_at("read a qcow2 data cluster", at + within))
    }

    /// Compressed guest cluster `g` (L2 entry `e`), inflated.
    fn inflated(&mut self, g: u64, e: u64) -> Result<&[u8]> {
        if let Some(i) = self.clusters.iter().position(|(k, _)| *k == g) {
            return Ok(&self.clusters[i].1);
        }
        // "Compressed Clusters Descriptor": x = 62 - (cluster_bits - 8).
        let x = 62 - (self.cluster_bits - 8);
        let at = e & ((1 << x) - 1);
        let sectors = ((e & !(COPIED | COMPRESSED)) >> x) + 1;
        let len = (sectors * 512 - (at % 512)).min(self.file_len.saturating_sub(at));
        if at >= self.file_len || len == 0 {
            return Err(corrupt(format!(
                "the compressed qcow2 cluster {g} at byte {at} lies outside the file"
            )));
        }
        self.compressed.resize(len as usize, 0);
        self.file
            .read_exact_at(&mut self.compressed, at)
            .map_err(crate::disk::io_at("read a compressed qcow2 cluster", at))?;
        let cluster = self.cluster() as usize;
        let mut out = vec![0u8; cluster];
        let mut z = flate2::Decompress::new(false);
        z.decompress(&self.compressed, &mut out, flate2::FlushDecompress::Finish)
            .map_err(|err| corrupt(format!("qcow2 cluster {g} does not inflate: {err}")))?;
        if z.total_out() != cluster as u64 {
            return Err(corrupt(format!(
                "qcow2 cluster {g} inflates to {} bytes, not a cluster of {cluster}",
                z.total_out()
            )));
        }
        let slot = if self.clusters.len() < CLUSTER_CACHE {
            self.clusters.push((g, out));
            self.clusters.len() - 1
        } else {
            let s = self.next_cluster;
            self.next_cluster = (s + 1) % CLUSTER_CACHE;
            self.clusters[s] = (g, out);
            s
        };
        Ok(&self.clusters[slot].1)
    }
}

/// Refuse incompatible features this reader does not follow.
fn features(incompatible: u64) -> Result<()> {
    let refuse = |what: &str| {
        Err(corrupt(format!(
            "a qcow2 with {what}: ingot cannot read it"
        )))
    };
    if incompatible & CORRUPT != 0 {
        return refuse("its \"corrupt\" bit set");
    }
    if incompatible & EXTERNAL_DATA != 0 {
        return refuse("an external data file");
    }
    if incompatible & COMPRESSION_TYPE != 0 {
        return refuse("zstd-compressed clusters");
    }
    if incompatible & EXTENDED_L2 != 0 {
        return refuse("extended L2 entries");
    }
    // The dirty bit only says the refcounts may be stale: the mapping reads.
    let unknown =
        incompatible & !(DIRTY | CORRUPT | EXTERNAL_DATA | COMPRESSION_TYPE | EXTENDED_L2);
    if unknown != 0 {
        return refuse(&format!("unknown incompatible features ({unknown:#x})"));
    }
    Ok(())
}

/// `len` bytes at `at`, which must be a multiple of `align`, lie inside a
/// file of `file_len` bytes.
fn inside(at: u64, len: u64, align: u64, file_len: u64, what: &str) -> Result<()> {
    if !at.is_multiple_of(align) {
        return Err(corrupt(format!(
            "{what} at byte {at} is not on a cluster boundary"
        )));
    }
    if at == 0 || at.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(corrupt(format!(
            "{what} at byte {at} lies outside the file"
        )));
    }
    Ok(())
}

impl DiskRead for Qcow2View {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        within_disk(buf, offset, self.size)?;
        let cluster = self.cluster();
        by_unit(buf, offset, cluster, |g, within, out| {
            self.read_cluster(g, within, out).map_err(io_err)
        })
    }
}
