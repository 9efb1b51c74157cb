//! A stream-optimized VMDK of a raw disk image, the VMDK that VM Import and
//! `ImportSnapshot` take (a monolithic flat one is refused).
//!
//! In: the image's grains, front to back, deflated by [`Grains`] (on
//! [`super::digest_raw`]'s workers, which read the raw image once for
//! its digests and the VMDK), and a content ID for the descriptor
//! ([`write`] derives it from the image's SHA-256, `bake` from the digest
//! of its inputs). Out: one `.vmdk` file: header, embedded descriptor, deflated grains with their
//! grain markers, then grain tables, the grain directory, the footer and the
//! end-of-stream marker, as VMware "Virtual Disk Format 1.1" describes for
//! stream-optimized compressed sparse extents (§"Stream-Optimized
//! Compressed Sparse Extents": grain markers, metadata markers of types EOS
//! 0, GT 1, GD 2, footer 3, `gdOffset = GD_AT_END` in the header and the
//! real value in the footer).
//!
//! - Grains are 64 KiB (128 sectors), 512 entries per grain table. A grain
//!   that is all zeros is not stored (its table entry is 0, "unallocated",
//!   which reads as zeros: there is no parent disk). Every grain table is
//!   written, even an empty one, as VMware's and qemu's writers do.
//! - Grains are zlib streams (RFC 1950, what qemu and VMware inflate) from
//!   `flate2` at a fixed level, compressed on several threads but written
//!   in disk order, so the bytes do not depend on the machine. (They do
//!   depend on the deflate implementation: zlib-rs, named in Cargo.toml
//!   and pinned by Cargo.lock.) The level is 1, not zlib's default 6 that
//!   qemu-img uses: on an image of text and binaries it deflates about 2.5
//!   times as fast for a file about 6% larger (measured with `cargo xtask
//!   bench` workload c), and this step is most of what baking a VMDK
//!   costs.
//! - The descriptor is what `qemu-img convert -O vmdk -o
//!   subformat=streamOptimized` writes (IDE geometry: 16 heads, 63
//!   sectors, cylinders = size / (16 * 63 * 512); hardware version 4;
//!   toolsVersion 2147483647), except: the CID comes from a digest (the
//!   image's, or for `bake` its inputs') instead of a random number, and
//!   the extent line names a fixed `disk.vmdk` instead of the output's
//!   file name (readers of a monolithic
//!   stream-optimized file use the embedded extent, not that name).
//!
//! Never: holds more than 1 MiB of the file before writing it, or reads the
//! clock or a random source.

use std::fs::File;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha2::{Digest, Sha256};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{DiskError, Result, SECTOR, io_at, raw};

/// Sectors per grain (64 KiB), as every current writer uses.
const GRAIN_SECTORS: u64 = 128;
/// Bytes per grain (64 KiB).
pub const GRAIN_BYTES: u64 = GRAIN_SECTORS * SECTOR;
/// Grain table entries per grain table (one table = 2 KiB = 4 sectors).
const GTES_PER_GT: u64 = 512;
const GT_SECTORS: u64 = GTES_PER_GT * 4 / SECTOR;
/// The descriptor sits at sector 1 with room for 20 sectors; grains start
/// at sector 128 (64 KiB), the header's `overHead`.
const DESCRIPTOR_OFFSET: u64 = 1;
const DESCRIPTOR_SECTORS: u64 = 20;
const OVERHEAD_SECTORS: u64 = 128;
/// The fixed deflate level (see the module doc for why not zlib's 6).
const LEVEL: u32 = 1;

const MAGIC: u32 = 0x564d_444b; // "KDMV" on disk
/// Version 3: the version VMware's and qemu's stream-optimized files carry.
const VERSION: u32 = 3;
const FLAG_VALID_NEWLINE_DETECTION: u32 = 1 << 0;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
const COMPRESSION_DEFLATE: u16 = 1;
const GD_AT_END: u64 = u64::MAX;

const MARKER_EOS: u32 = 0;
const MARKER_GT: u32 = 1;
const MARKER_GD: u32 = 2;
const MARKER_FOOTER: u32 = 3;

/// Virtual Disk Format 1.1, "Header and Footer": `SparseExtentHeader`,
/// packed, little-endian, one sector with padding.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Clone)]
struct SparseExtentHeader {
    magic_number: U32,
    version: U32,
    flags: U32,
    capacity: U64,
    grain_size: U64,
    descriptor_offset: U64,
    descriptor_size: U64,
    num_gtes_per_gt: U32,
    rgd_offset: U64,
    gd_offset: U64,
    over_head: U64,
    unclean_shutdown: u8,
    single_end_line_char: u8,
    non_end_line_char: u8,
    double_end_line_char1: u8,
    double_end_line_char2: u8,
    compress_algorithm: U16,
    pad: [u8; 433],
}

/// "Metadata Markers": a sector that announces `num_sectors` of metadata
/// (size 0 tells it from a grain marker).
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct MetadataMarker {
    num_sectors: U64,
    size: U32,
    marker_type: U32,
    pad: [u8; 496],
}

/// "Grain Markers": the grain's first sector number in the virtual disk and
/// the compressed length; the compressed bytes follow.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct GrainMarker {
    lba: U64,
    size: U32,
}

const _: () = assert!(size_of::<SparseExtentHeader>() == 512);
const _: () = assert!(size_of::<MetadataMarker>() == 512);
const _: () = assert!(size_of::<GrainMarker>() == 12);

/// The descriptor's content ID from the image's digest; never 0xffffffff or
/// 0xfffffffe, which readers take as "no parent" or "unknown".
pub fn content_id(raw_sha256: &[u8; 32]) -> u32 {
    let cid = u32::from_be_bytes([raw_sha256[0], raw_sha256[1], raw_sha256[2], raw_sha256[3]]);
    if cid >= 0xffff_fffe {
        cid & 0x7fff_ffff
    } else {
        cid
    }
}

/// The embedded descriptor (see the module doc for what differs from
/// qemu-img's).
fn descriptor(capacity_sectors: u64, cid: u32) -> String {
    let cylinders = capacity_sectors * SECTOR / (63 * 16 * SECTOR);
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity_sectors} SPARSE \"disk.vmdk\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.virtualHWVersion = \"4\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"16\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.adapterType = \"ide\"\n\
         ddb.toolsVersion = \"2147483647\"\n"
    )
}

fn header(capacity_sectors: u64, gd_offset: u64) -> SparseExtentHeader {
    SparseExtentHeader {
        magic_number: U32::new(MAGIC),
        version: U32::new(VERSION),
        flags: U32::new(FLAG_VALID_NEWLINE_DETECTION | FLAG_COMPRESSED | FLAG_MARKERS),
        capacity: U64::new(capacity_sectors),
        grain_size: U64::new(GRAIN_SECTORS),
        descriptor_offset: U64::new(DESCRIPTOR_OFFSET),
        descriptor_size: U64::new(DESCRIPTOR_SECTORS),
        num_gtes_per_gt: U32::new(GTES_PER_GT as u32),
        rgd_offset: U64::new(0),
        gd_offset: U64::new(gd_offset),
        over_head: U64::new(OVERHEAD_SECTORS),
        unclean_shutdown: 0,
        // The newline-detection characters that tell a binary-safe transfer.
        single_end_line_char: b'\n',
        non_end_line_char: b' ',
        double_end_line_char1: b'\r',
        double_end_line_char2: b'\n',
        compress_algorithm: U16::new(COMPRESSION_DEFLATE),
        pad: [0; 433],
    }
}

fn marker(num_sectors: u64, marker_type: u32) -> MetadataMarker {
    MetadataMarker {
        num_sectors: U64::new(num_sectors),
        size: U32::new(0),
        marker_type: U32::new(marker_type),
        pad: [0; 496],
    }
}

/// The VMDK file as it is written: front to back, each record padded to
/// a whole sector, gathered into large writes, hashed as it goes (the gap
/// left by moving `sector` forward is written as zeros).
struct Out {
    file: File,
    /// The next record's sector.
    sector: u64,
    sha: Sha256,
    /// Bytes not yet written, from sector `pending_at`.
    pending: Vec<u8>,
    pending_at: u64,
}

/// Records are gathered up to this many bytes before a write.
const OUT_BUFFER: usize = 1 << 20;

impl Out {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.put_pair(bytes, &[])
    }

    /// One record made of `head` then `tail`, padded to a whole sector.
    fn put_pair(&mut self, head: &[u8], tail: &[u8]) -> Result<()> {
        let at = self.sector * SECTOR;
        let pending_end = self.pending_at * SECTOR + self.pending.len() as u64;
        debug_assert!(at >= pending_end, "the VMDK is written front to back");
        if self.pending.is_empty() {
            self.pending_at = self.sector;
        } else if at > pending_end {
            // A gap (only the descriptor's room after the header): zeros.
            let gap = (at - pending_end) as usize;
            self.pending.resize(self.pending.len() + gap, 0);
        }
        let len = (head.len() + tail.len()) as u64;
        let padded = len.div_ceil(SECTOR);
        let start = self.pending.len();
        self.pending.extend_from_slice(head);
        self.pending.extend_from_slice(tail);
        self.pending.resize(start + (padded * SECTOR) as usize, 0);
        self.sector += padded;
        if self.pending.len() >= OUT_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.pending_at * SECTOR;
        self.file
            .write_all_at(&self.pending, at)
            .map_err(io_at("write the VMDK", at))?;
        self.sha.update(&self.pending);
        self.pending_at += self.pending.len() as u64 / SECTOR;
        self.pending.clear();
        Ok(())
    }
}

/// Write `out` (emptied first) as a stream-optimized VMDK of `raw`,
/// whose SHA-256 is `raw_sha256`, compressing grains on `threads` workers
/// (the bytes do not depend on it). Returns the VMDK's size in bytes. This
/// is [`super::digest_raw`]'s pass over the image with this format's
/// stream, as `bake` makes it: one way to make a VMDK, not two.
pub fn write(raw: &File, out: &File, raw_sha256: &[u8; 32], threads: NonZeroUsize) -> Result<u64> {
    let raw_len = raw
        .metadata()
        .map_err(io_at("read the raw image", 0))?
        .len();
    let out = out.try_clone().map_err(io_at("write the VMDK", 0))?;
    let mut w = Writer::new(out, raw_len, content_id(raw_sha256))?;
    super::digest_raw(raw, &mut [&mut w], threads)?;
    Ok(w.finish()?.size)
}

/// The VMDK as a disk format of `bake` ([`super::format`]): its content ID
/// from the digest of the image's inputs, known before the image is read,
/// so it is hashed as it is written.
pub struct Format(Writer);

impl Format {
    pub fn new(out: File, cx: &super::format::Context) -> Result<Self> {
        Ok(Format(Writer::new(out, cx.raw_len, content_id(&cx.seed))?))
    }
}

impl super::format::ImageFormat for Format {
    fn stream(&mut self) -> &mut dyn super::format::RawStream {
        &mut self.0
    }

    fn finish(self: Box<Self>, _raw: &super::format::RawDone<'_>) -> Result<super::format::Made> {
        let f = self.0.finish()?;
        Ok(super::format::Made {
            size: f.size,
            sha256: f.sha256,
        })
    }
}

/// What a worker makes of a part: its grains, deflated (`None`: zeros).
struct GrainEncoder(Grains);

impl super::format::PartEncoder for GrainEncoder {
    fn encode(&mut self, _offset: u64, bytes: &[u8]) -> Result<super::format::Encoded> {
        let grains: Vec<Option<Vec<u8>>> = bytes
            .chunks(GRAIN_BYTES as usize)
            .map(|g| self.0.grain(g))
            .collect();
        Ok(Box::new(grains))
    }
}

impl super::format::RawStream for Writer {
    fn encoder(&self) -> Result<Box<dyn super::format::PartEncoder>> {
        Ok(Box::new(GrainEncoder(Grains::new())))
    }

    fn consume(&mut self, offset: u64, part: super::format::Part) -> Result<()> {
        let first = offset / GRAIN_BYTES;
        match part {
            super::format::Part::Data(e) => self.grains(first, super::format::take(e)?),
            super::format::Part::Hole { len } => {
                self.grains(first, vec![None; len.div_ceil(GRAIN_BYTES) as usize])
            }
        }
    }
}

/// A finished VMDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub size: u64,
    /// SHA-256 of the whole file, computed as it was written.
    pub sha256: [u8; 32],
}

/// A stream-optimized VMDK written front to back from the image's grains
/// as [`Grains`] compressed them, in order, and hashed as it is written. The descriptor's content ID comes first, so the caller names
/// it before reading the image ([`write`] uses the raw image's digest;
/// `bake` the digest of the image's inputs, known earlier).
pub struct Writer {
    o: Out,
    capacity: u64,
    grains: u64,
    directory: Vec<U32>,
    table: Vec<U32>,
}

impl Writer {
    /// Start `out` (emptied first) for a raw image of `raw_len` bytes, with
    /// content ID `cid` (see [`content_id`]).
    pub fn new(out: File, raw_len: u64, cid: u32) -> Result<Self> {
        if !raw_len.is_multiple_of(SECTOR) {
            return Err(DiskError::NotSectorAligned {
                what: "the raw image",
                size: raw_len,
            });
        }
        let capacity = raw_len / SECTOR;
        let grains = capacity.div_ceil(GRAIN_SECTORS);
        let tables = grains.div_ceil(GTES_PER_GT);
        // Emptied first, so nothing of an earlier file survives in the holes.
        out.set_len(0).map_err(io_at("empty the VMDK", 0))?;
        let mut o = Out {
            file: out,
            sector: 0,
            sha: Sha256::new(),
            pending: Vec::with_capacity(OUT_BUFFER + GRAIN_BYTES as usize + 2 * SECTOR as usize),
            pending_at: 0,
        };
        o.put(header(capacity, GD_AT_END).as_bytes())?;
        let desc = descriptor(capacity, cid);
        debug_assert!(desc.len() as u64 <= DESCRIPTOR_SECTORS * SECTOR);
        o.put(desc.as_bytes())?;
        o.sector = OVERHEAD_SECTORS;
        Ok(Writer {
            o,
            capacity,
            grains,
            directory: Vec::with_capacity(tables as usize),
            table: vec![U32::new(0); GTES_PER_GT as usize],
        })
    }

    fn finish_table(&mut self) -> Result<()> {
        self.o.put(marker(GT_SECTORS, MARKER_GT).as_bytes())?;
        self.directory.push(U32::new(sector_u32(self.o.sector)?));
        self.o.put(self.table.as_bytes())?;
        self.table.iter_mut().for_each(|e| *e = U32::new(0));
        Ok(())
    }

    /// Grains `first`, `first + 1`, ... as [`Grains::grain`] compressed
    /// them (`None`: all zeros), in order: every grain of the image passes
    /// here once, front to back, hole or not.
    pub fn grains(&mut self, first: u64, compressed: Vec<Option<Vec<u8>>>) -> Result<()> {
        for (i, c) in compressed.into_iter().enumerate() {
            let grain = first + i as u64;
            if let Some(data) = c {
                let entry = (grain % GTES_PER_GT) as usize;
                self.table[entry] = U32::new(sector_u32(self.o.sector)?);
                let m = GrainMarker {
                    lba: U64::new(grain * GRAIN_SECTORS),
                    size: U32::new(data.len() as u32),
                };
                self.o.put_pair(m.as_bytes(), &data)?;
            }
            if (grain + 1).is_multiple_of(GTES_PER_GT) || grain + 1 == self.grains {
                self.finish_table()?;
            }
        }
        Ok(())
    }

    /// Write the directory, footer and end marker.
    pub fn finish(mut self) -> Result<Finished> {
        let mut gd_bytes = self.directory.as_bytes().to_vec();
        let gd_sectors = (gd_bytes.len() as u64).div_ceil(SECTOR).max(1);
        gd_bytes.resize((gd_sectors * SECTOR) as usize, 0);
        self.o.put(marker(gd_sectors, MARKER_GD).as_bytes())?;
        let gd_offset = self.o.sector;
        self.o.put(&gd_bytes)?;
        self.o.put(marker(1, MARKER_FOOTER).as_bytes())?;
        self.o.put(header(self.capacity, gd_offset).as_bytes())?;
        self.o.put(marker(0, MARKER_EOS).as_bytes())?;
        self.o.flush()?;
        Ok(Finished {
            size: self.o.sector * SECTOR,
            sha256: self.o.sha.finalize().into(),
        })
    }
}

/// Table entries are 32-bit sector numbers: a VMDK stays under 2 TiB.
fn sector_u32(sector: u64) -> Result<u32> {
    u32::try_from(sector).map_err(|_| DiskError::TooLarge {
        what: "the VMDK",
        size: sector * SECTOR,
        max: u64::from(u32::MAX) * SECTOR,
    })
}

/// Deflates grains one after another with one zlib state, reset between
/// grains (a reset state deflates exactly as a new one does; making a new
/// one for each of thousands of grains cost more than some grains' whole
/// compression).
pub struct Grains {
    z: flate2::Compress,
    padded: Vec<u8>,
}

impl Default for Grains {
    fn default() -> Self {
        Self::new()
    }
}

impl Grains {
    pub fn new() -> Self {
        Grains {
            z: flate2::Compress::new(Compression::new(LEVEL), true),
            padded: Vec::new(),
        }
    }

    /// A grain (the image's last may be short: it is padded with zeros to
    /// 64 KiB) as the zlib stream the VMDK stores, or `None` when it is
    /// all zeros and is not stored.
    pub fn grain(&mut self, grain: &[u8]) -> Option<Vec<u8>> {
        if raw::is_zero(grain) {
            return None;
        }
        let Grains { z, padded } = self;
        let input: &[u8] = if grain.len() < GRAIN_BYTES as usize {
            padded.clear();
            padded.extend_from_slice(grain);
            padded.resize(GRAIN_BYTES as usize, 0);
            padded
        } else {
            grain
        };
        z.reset();
        // deflate's worst case: 5 bytes per stored block of up to 64 KiB,
        // plus the zlib header and trailer.
        let mut out = Vec::with_capacity(input.len() + input.len() / 1024 + 64);
        loop {
            let done = z.total_in() as usize;
            match z.compress_vec(&input[done..], &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return Some(out),
                Ok(_) => out.reserve(out.capacity().max(1024)),
                // Only misuse of the state fails; a new encoder then does
                // the same work.
                Err(_) => return Some(deflate_fresh(input)),
            }
        }
    }
}

fn deflate_fresh(input: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::with_capacity(input.len() / 2), Compression::new(LEVEL));
    // Writing into a Vec cannot fail.
    let _ = z.write_all(input);
    z.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_file_is_header_grains_tables_directory_footer_eos() {
        let dir = tempfile::tempdir().unwrap();
        let r = raw::create(&dir.path().join("r"), 40 << 20).unwrap();
        r.write_all_at(b"first grain", 100).unwrap();
        r.write_all_at(b"in the second table", 35 << 20).unwrap();
        let o = File::create(dir.path().join("o")).unwrap();
        let len = write(&r, &o, &[7; 32], NonZeroUsize::MIN).unwrap();
        let bytes = std::fs::read(dir.path().join("o")).unwrap();
        assert_eq!(bytes.len() as u64, len);
        let h = SparseExtentHeader::read_from_bytes(&bytes[..512]).unwrap();
        assert_eq!(h.gd_offset.get(), GD_AT_END);
        assert_eq!(&bytes[..4], b"KDMV");
        let desc = String::from_utf8_lossy(&bytes[512..1024]);
        assert!(desc.contains("CID=07070707\n"), "{desc}");
        assert!(desc.contains("RW 81920 SPARSE \"disk.vmdk\""));
        // Footer: marker, header with the real GD offset, then EOS.
        let n = bytes.len();
        let eos = MetadataMarker::read_from_bytes(&bytes[n - 512..]).unwrap();
        assert_eq!(
            (eos.num_sectors.get(), eos.marker_type.get()),
            (0, MARKER_EOS)
        );
        let f = SparseExtentHeader::read_from_bytes(&bytes[n - 1024..n - 512]).unwrap();
        let gd = f.gd_offset.get() as usize * 512;
        let gt0 = u32::from_le_bytes(bytes[gd..gd + 4].try_into().unwrap()) as usize * 512;
        let gt1 = u32::from_le_bytes(bytes[gd + 4..gd + 8].try_into().unwrap()) as usize * 512;
        // Grain 0 is stored; grain 1 (all zero) is not.
        let g0 = u32::from_le_bytes(bytes[gt0..gt0 + 4].try_into().unwrap()) as usize * 512;
        assert_eq!(
            u32::from_le_bytes(bytes[gt0 + 4..gt0 + 8].try_into().unwrap()),
            0
        );
        let m = GrainMarker::read_from_bytes(&bytes[g0..g0 + 12]).unwrap();
        assert_eq!(m.lba.get(), 0);
        let mut grain = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[g0 + 12..g0 + 12 + m.size.get() as usize])
            .read_to_end(&mut grain)
            .unwrap();
        assert_eq!(grain.len(), 65536);
        assert_eq!(&grain[100..111], b"first grain");
        // The second table holds the grain at 35 MiB (grain 560, entry 48).
        let e = u32::from_le_bytes(bytes[gt1 + 48 * 4..gt1 + 49 * 4].try_into().unwrap());
        assert_ne!(e, 0);
    }

    #[test]
    fn content_id_avoids_the_reserved_values() {
        assert_eq!(content_id(&[0xff; 32]), 0x7fff_ffff);
        assert_eq!(content_id(&[1; 32]), 0x0101_0101);
    }
}
