//! Reading a disk image back as the disk it holds: a raw image, a fixed
//! VHD, a stream-optimized VMDK, a qcow2 ([`qcow2`]) or a Compute Engine
//! tarball ([`gce`]), each presented as a seekable view of the virtual
//! disk ([`DiskRead`]), for `inspect`, `diff` and `boot-test`.
//!
//! In: an open image file (any tool's, hostile or not). Out: a
//! [`DiskRead`] whose bytes are the virtual disk's, or a
//! [`DiskError::Corrupt`] naming what is wrong or which limit was hit.
//!
//! - Raw: the file itself.
//! - Fixed VHD (Microsoft "Virtual Hard Disk Image Format Specification"
//!   1.0, §"Hard Disk Footer Format"): the file less its 512-byte footer,
//!   whose cookie, checksum, disk type (2, fixed) and current size are
//!   checked. Dynamic and differencing VHDs are refused by name.
//! - Stream-optimized VMDK (VMware "Virtual Disk Format 1.1",
//!   §"Stream-Optimized Compressed Sparse Extents"): the header (or, when
//!   its `gdOffset` is `GD_AT_END`, the footer one sector before the
//!   end-of-stream marker) gives the grain size and the grain directory;
//!   each grain directory entry points at a grain table of `numGTEsPerGT`
//!   sector offsets; each grain starts with a marker (its first sector in
//!   the virtual disk, the compressed length) followed by a zlib stream
//!   that inflates to exactly one grain. An entry of 0 (or 1, the "zeroed
//!   grain" of version 2 and later) reads as zeros. Grain tables are read
//!   when first needed and the last few inflated grains are kept, so
//!   memory stays bounded by the directory's size, not the disk's.
//! - qcow2 (versions 2 and 3) and Compute Engine tarballs: their own
//!   modules, [`qcow2`] and [`gce`], say how they are read and within
//!   what limits.
//!
//! Why our own: no crate reads stream-optimized VMDKs; the format is
//! small. This reader shares nothing with the writer (`vmdk.rs`); its
//! tests read VMDKs that `qemu-img` made.
//!
//! Limits (each error names it): a virtual disk of at most
//! [`MAX_CAPACITY`]; grains of a power of two from 1 to
//! [`MAX_GRAIN_SECTORS`] sectors; 1 to 512 entries per grain table (the
//! specification's 512); a grain directory of at most [`MAX_DIRECTORY`]
//! entries (however long the file); a compressed grain of at most twice its grain
//! plus one sector; every offset inside the file. A grain that inflates
//! to more or fewer bytes than a grain, or whose marker names another
//! sector, is corrupt. Nothing here can loop: every read is one pass over
//! a bounded number of grains.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::{DiskError, Result, SECTOR};

pub mod gce;
pub mod qcow2;

/// The largest virtual disk read: 64 TiB, past every format's own limit
/// (a VHD's is 2040 GiB, VMFS's 62 TiB).
pub const MAX_CAPACITY: u64 = 64 << 40;
/// The largest VMDK grain: 2048 sectors (1 MiB); writers use 128.
pub const MAX_GRAIN_SECTORS: u64 = 2048;
/// The most grain directory entries read (64 MiB of them): enough for any
/// disk of 64 KiB grains (bake's, and VMware's default; 2 Mi entries at
/// 64 TiB) and for 32 TiB of the smallest grains VMware writes (4 KiB).
pub const MAX_DIRECTORY: u64 = 1 << 24;
/// Inflated grains kept for the next read.
const GRAIN_CACHE: usize = 16;

/// A virtual disk, read at any offset.
pub trait DiskRead: Send {
    /// The virtual disk's size in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from byte `offset` of the virtual disk; reading past its
    /// end is an error.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// The container a disk image is in, from its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    /// A raw disk: a GPT (`EFI PART` at byte 512) or an MBR boot signature
    /// (`55 AA` at byte 510).
    Raw,
    /// `KDMV` at byte 0.
    Vmdk,
    /// `conectix` in the last 512 bytes (the footer).
    Vhd,
    /// `QFI\xfb` at byte 0.
    Qcow2,
    /// gzip (`1f 8b`) holding a tar whose first member is `disk.raw`.
    Gce,
}

impl DiskFormat {
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw disk",
            DiskFormat::Vmdk => "VMDK",
            DiskFormat::Vhd => "VHD",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Gce => "GCE tarball",
        }
    }
}

fn corrupt(what: impl Into<String>) -> DiskError {
    DiskError::Corrupt(what.into())
}

fn io_err(e: DiskError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn read_exact(file: &File, buf: &mut [u8], at: u64, what: &'static str) -> Result<()> {
    file.read_exact_at(buf, at).map_err(super::io_at(what, at))
}

/// Which disk image `file` is, or `None` when it carries none of the
/// magics (a text file, an empty file, a bare filesystem).
pub fn detect(file: &File) -> io::Result<Option<DiskFormat>> {
    let len = file.metadata()?.len();
    let mut head = [0u8; 520];
    let n = (len as usize).min(head.len());
    file.read_exact_at(&mut head[..n], 0)?;
    if n >= 4 && &head[..4] == b"KDMV" {
        return Ok(Some(DiskFormat::Vmdk));
    }
    if n >= 4 && &head[..4] == b"QFI\xfb" {
        return Ok(Some(DiskFormat::Qcow2));
    }
    if n >= 2 && head[..2] == [0x1f, 0x8b] {
        // Any other gzip file is not a disk (a compressed tarball, say).
        return Ok(gce::looks_like(file).then_some(DiskFormat::Gce));
    }
    if len >= 1024 {
        let mut cookie = [0u8; 8];
        file.read_exact_at(&mut cookie, len - 512)?;
        if &cookie == b"conectix" {
            return Ok(Some(DiskFormat::Vhd));
        }
    }
    if (n >= 520 && &head[512..520] == b"EFI PART") || (n >= 512 && head[510..512] == [0x55, 0xAA])
    {
        return Ok(Some(DiskFormat::Raw));
    }
    Ok(None)
}

/// Open `file` as the virtual disk its format holds.
pub fn open(file: File, format: DiskFormat) -> Result<Box<dyn DiskRead>> {
    Ok(match format {
        DiskFormat::Raw => {
            let size = file_len(&file)?;
            Box::new(RawView { file, size })
        }
        DiskFormat::Vhd => Box::new(fixed_vhd(file)?),
        DiskFormat::Vmdk => Box::new(VmdkView::open(file)?),
        DiskFormat::Qcow2 => Box::new(qcow2::Qcow2View::open(file)?),
        DiskFormat::Gce => Box::new(gce::extract(&file)?),
    })
}

fn file_len(file: &File) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(super::io_at("read the size of the disk image", 0))?
        .len())
}

/// A raw image, or the data part of a fixed VHD.
pub struct RawView {
    file: File,
    size: u64,
}

impl RawView {
    pub fn new(file: File) -> Result<Self> {
        let size = file_len(&file)?;
        Ok(RawView { file, size })
    }
}

impl DiskRead for RawView {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        within_disk(buf, offset, self.size)?;
        self.file.read_exact_at(buf, offset)
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// A fixed VHD's data, after its footer is checked.
fn fixed_vhd(file: File) -> Result<RawView> {
    let len = file_len(&file)?;
    if len < 1024 || !len.is_multiple_of(SECTOR) {
        return Err(corrupt(format!(
            "a VHD of {len} bytes: a fixed VHD is whole sectors and a footer"
        )));
    }
    let mut f = [0u8; 512];
    read_exact(&file, &mut f, len - 512, "read the VHD footer")?;
    // Offsets in §"Hard Disk Footer Format" (big-endian).
    let sum = f
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(u32::from(b)));
    if !sum != be32(&f, 64) {
        return Err(corrupt("VHD footer checksum mismatch"));
    }
    let disk_type = be32(&f, 60);
    match disk_type {
        2 => {}
        3 => {
            return Err(corrupt(
                "a dynamic VHD: ingot reads fixed VHDs (the kind bake writes)",
            ));
        }
        4 => {
            return Err(corrupt(
                "a differencing VHD: ingot reads fixed VHDs (the kind bake writes)",
            ));
        }
        n => {
            return Err(corrupt(format!(
                "VHD disk type {n} is not one the format defines"
            )));
        }
    }
    let current = be64(&f, 48);
    if current != len - 512 {
        return Err(corrupt(format!(
            "the VHD footer says the disk is {current} bytes, but the file holds {}",
            len - 512
        )));
    }
    if current > MAX_CAPACITY {
        return Err(corrupt(format!(
            "a disk of {current} bytes is over the {MAX_CAPACITY}-byte limit"
        )));
    }
    Ok(RawView {
        file,
        size: current,
    })
}

/// A stream-optimized VMDK's virtual disk.
pub struct VmdkView {
    file: File,
    file_len: u64,
    capacity: u64,
    grain_sectors: u64,
    gtes: u64,
    /// Grain directory: the sector of each grain table.
    directory: Vec<u32>,
    tables: HashMap<usize, Vec<u32>>,
    cache: Vec<(u64, Vec<u8>)>,
    next_slot: usize,
    compressed: Vec<u8>,
}

const GD_AT_END: u64 = u64::MAX;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;

/// The fields of a `SparseExtentHeader` (little-endian) the reader uses.
struct Header {
    version: u32,
    flags: u32,
    capacity: u64,
    grain_size: u64,
    gtes: u32,
    gd_offset: u64,
    compress: u16,
}

fn parse_header(b: &[u8; 512]) -> Result<Header> {
    if &b[..4] != b"KDMV" {
        return Err(corrupt("no VMDK magic (`KDMV`)"));
    }
    Ok(Header {
        version: le32(b, 4),
        flags: le32(b, 8),
        capacity: le64(b, 12),
        grain_size: le64(b, 20),
        gtes: le32(b, 44),
        gd_offset: le64(b, 56),
        compress: u16::from_le_bytes([b[77], b[78]]),
    })
}

impl VmdkView {
    pub fn open(file: File) -> Result<Self> {
        let file_len = file_len(&file)?;
        if file_len < 3 * SECTOR {
            return Err(corrupt(format!("a VMDK of {file_len} bytes is too short")));
        }
        let mut b = [0u8; 512];
        read_exact(&file, &mut b, 0, "read the VMDK header")?;
        let mut h = parse_header(&b)?;
        if !(1..=3).contains(&h.version) {
            return Err(corrupt(format!(
                "VMDK version {} is not 1, 2 or 3",
                h.version
            )));
        }
        if h.flags & FLAG_COMPRESSED == 0 || h.flags & FLAG_MARKERS == 0 || h.compress != 1 {
            return Err(corrupt(
                "a VMDK that is not stream-optimized (compressed grains with markers): ingot \
                 reads the kind bake writes",
            ));
        }
        if h.gd_offset == GD_AT_END {
            // The footer: a copy of the header one sector before the
            // end-of-stream marker, with the real gdOffset.
            read_exact(&file, &mut b, file_len - 2 * SECTOR, "read the VMDK footer")?;
            let f = parse_header(&b).map_err(|_| corrupt("the VMDK footer has no magic"))?;
            if f.gd_offset == GD_AT_END {
                return Err(corrupt(
                    "the VMDK footer does not say where the grain directory is",
                ));
            }
            h = Header {
                gd_offset: f.gd_offset,
                ..h
            };
        }
        let grain_sectors = h.grain_size;
        if grain_sectors == 0
            || !grain_sectors.is_power_of_two()
            || grain_sectors > MAX_GRAIN_SECTORS
        {
            return Err(corrupt(format!(
                "a VMDK grain of {grain_sectors} sectors: the limit is a power of two up to \
                 {MAX_GRAIN_SECTORS}"
            )));
        }
        if h.gtes == 0 || h.gtes > 512 {
            return Err(corrupt(format!(
                "{} entries per VMDK grain table: the limit is 512",
                h.gtes
            )));
        }
        let capacity = h
            .capacity
            .checked_mul(SECTOR)
            .filter(|&c| c > 0 && c <= MAX_CAPACITY)
            .ok_or_else(|| {
                corrupt(format!(
                    "a VMDK of {} sectors: the limit is {MAX_CAPACITY} bytes",
                    h.capacity
                ))
            })?;
        let gtes = u64::from(h.gtes);
        let entries = h.capacity.div_ceil(grain_sectors * gtes);
        if entries > MAX_DIRECTORY {
            return Err(corrupt(format!(
                "a VMDK grain directory of {entries} entries: the limit is {MAX_DIRECTORY}"
            )));
        }
        let gd_at = sector_in(
            h.gd_offset,
            entries * 4,
            file_len,
            "the VMDK grain directory",
        )?;
        let mut raw = vec![0u8; (entries * 4) as usize];
        read_exact(&file, &mut raw, gd_at, "read the VMDK grain directory")?;
        let directory = raw.chunks_exact(4).map(|c| le32(c, 0)).collect();
        Ok(VmdkView {
            file,
            file_len,
            capacity,
            grain_sectors,
            gtes,
            directory,
            tables: HashMap::new(),
            cache: Vec::new(),
            next_slot: 0,
            compressed: Vec::new(),
        })
    }

    fn grain_bytes(&self) -> u64 {
        self.grain_sectors * SECTOR
    }

    /// The file sector of grain `g`, 0 when it reads as zeros.
    fn grain_sector(&mut self, g: u64) -> Result<u64> {
        let gd = (g / self.gtes) as usize;
        if !self.tables.contains_key(&gd) {
            let gt = u64::from(self.directory[gd]);
            let table = if gt == 0 {
                vec![0; self.gtes as usize]
            } else {
                let at = sector_in(gt, self.gtes * 4, self.file_len, "a VMDK grain table")?;
                let mut raw = vec![0u8; (self.gtes * 4) as usize];
                read_exact(&self.file, &mut raw, at, "read a VMDK grain table")?;
                raw.chunks_exact(4).map(|c| le32(c, 0)).collect()
            };
            self.tables.insert(gd, table);
        }
        let s = u64::from(self.tables[&gd][(g % self.gtes) as usize]);
        // 1: a zeroed grain (version 2 and later).
        Ok(if s <= 1 { 0 } else { s })
    }

    /// Grain `g` inflated, `len` bytes of it (the last grain may be cut
    /// short by the capacity).
    fn inflate(&mut self, g: u64, sector: u64, len: usize) -> Result<Vec<u8>> {
        let at = sector_in(sector, 12, self.file_len, "a VMDK grain marker")?;
        let mut m = [0u8; 12];
        read_exact(&self.file, &mut m, at, "read a VMDK grain marker")?;
        let (lba, size) = (le64(&m, 0), u64::from(le32(&m, 8)));
        if lba != g * self.grain_sectors {
            return Err(corrupt(format!(
                "the VMDK grain at sector {sector} says it holds sector {lba}, its table says {}",
                g * self.grain_sectors
            )));
        }
        let limit = 2 * self.grain_bytes() + SECTOR;
        if size == 0 || size > limit {
            return Err(corrupt(format!(
                "a compressed VMDK grain of {size} bytes: the limit is {limit}"
            )));
        }
        sector_in(sector, 12 + size, self.file_len, "a VMDK grain")?;
        self.compressed.resize(size as usize, 0);
        read_exact(
            &self.file,
            &mut self.compressed,
            at + 12,
            "read a VMDK grain",
        )?;
        let mut out = vec![0u8; len];
        let mut z = flate2::Decompress::new(true);
        let status = z
            .decompress(&self.compressed, &mut out, flate2::FlushDecompress::Finish)
            .map_err(|e| corrupt(format!("VMDK grain {g} does not inflate: {e}")))?;
        if status != flate2::Status::StreamEnd || z.total_out() != len as u64 {
            return Err(corrupt(format!(
                "VMDK grain {g} does not inflate to exactly {len} bytes"
            )));
        }
        Ok(out)
    }

    fn grain(&mut self, g: u64) -> Result<&[u8]> {
        if let Some(i) = self.cache.iter().position(|(k, _)| *k == g) {
            return Ok(&self.cache[i].1);
        }
        let start = g * self.grain_bytes();
        let len = self.grain_bytes().min(self.capacity - start) as usize;
        let sector = self.grain_sector(g)?;
        let data = if sector == 0 {
            vec![0u8; len]
        } else {
            self.inflate(g, sector, len)?
        };
        let slot = if self.cache.len() < GRAIN_CACHE {
            self.cache.push((g, data));
            self.cache.len() - 1
        } else {
            let s = self.next_slot;
            self.next_slot = (s + 1) % GRAIN_CACHE;
            self.cache[s] = (g, data);
            s
        };
        Ok(&self.cache[slot].1)
    }
}

/// The byte offset of sector `sector`, when `len` bytes from it lie
/// inside a file of `file_len` bytes.
fn sector_in(sector: u64, len: u64, file_len: u64, what: &str) -> Result<u64> {
    sector
        .checked_mul(SECTOR)
        .filter(|at| at.checked_add(len).is_some_and(|end| end <= file_len))
        .ok_or_else(|| corrupt(format!("{what} at sector {sector} lies outside the file")))
}

impl DiskRead for VmdkView {
    fn size(&self) -> u64 {
        self.capacity
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        within_disk(buf, offset, self.capacity)?;
        by_unit(buf, offset, self.grain_bytes(), |g, within, out| {
            let grain = self.grain(g).map_err(io_err)?;
            out.copy_from_slice(&grain[within as usize..within as usize + out.len()]);
            Ok(())
        })
    }
}

/// A read of `buf.len()` bytes at `offset` ends inside a disk of `size`
/// bytes, or is an end-of-file error saying so.
fn within_disk(buf: &[u8], offset: u64, size: u64) -> io::Result<()> {
    if offset
        .checked_add(buf.len() as u64)
        .is_none_or(|end| end > size)
    {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read past the end of the {size}-byte disk"),
        ));
    }
    Ok(())
}

/// Fill `buf` (read at `offset`) piece by piece in units of `unit` bytes
/// (grains, clusters): `read(unit index, offset within it, piece)` fills
/// each piece, which never crosses a unit's end.
fn by_unit(
    buf: &mut [u8],
    offset: u64,
    unit: u64,
    mut read: impl FnMut(u64, u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut done = 0usize;
    while done < buf.len() {
        let at = offset + done as u64;
        let (u, within) = (at / unit, at % unit);
        let n = ((unit - within) as usize).min(buf.len() - done);
        read(u, within, &mut buf[done..done + n])?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny stream-optimized VMDK by hand: 2 grains of 8 sectors, one
    /// table of 2 entries; grain 0 stored, grain 1 unallocated. Sector 0
    /// the header, 1 the grain table, 2 the directory, 3 grain 0.
    fn tiny(grain0: &[u8], edit: impl Fn(&mut Vec<u8>)) -> File {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(grain0).unwrap();
        let c = z.finish().unwrap();
        let mut f = vec![0u8; 512];
        f[..4].copy_from_slice(b"KDMV");
        f[4..8].copy_from_slice(&3u32.to_le_bytes());
        f[8..12].copy_from_slice(&(FLAG_COMPRESSED | FLAG_MARKERS).to_le_bytes());
        f[12..20].copy_from_slice(&16u64.to_le_bytes()); // capacity
        f[20..28].copy_from_slice(&8u64.to_le_bytes()); // grain
        f[44..48].copy_from_slice(&2u32.to_le_bytes()); // gtes
        f[56..64].copy_from_slice(&2u64.to_le_bytes()); // gd
        f[77..79].copy_from_slice(&1u16.to_le_bytes());
        let mut gt = vec![0u8; 512];
        gt[..4].copy_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&gt);
        let mut gd = vec![0u8; 512];
        gd[..4].copy_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&gd);
        let mut g = vec![0u8; 12];
        g[8..12].copy_from_slice(&(c.len() as u32).to_le_bytes());
        g.extend_from_slice(&c);
        g.resize(g.len().div_ceil(512) * 512, 0);
        f.extend_from_slice(&g);
        edit(&mut f);
        let t = tempfile::tempfile().unwrap();
        t.write_all_at(&f, 0).unwrap();
        t
    }

    #[test]
    fn a_handmade_vmdk_reads_as_its_disk() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let mut v = VmdkView::open(tiny(&data, |_| ())).unwrap();
        assert_eq!(v.size(), 8192);
        let mut all = vec![0xffu8; 8192];
        v.read_at(&mut all, 0).unwrap();
        assert!(all[..4096] == data[..]);
        assert!(all[4096..].iter().all(|&b| b == 0));
        let mut mid = [0u8; 10];
        v.read_at(&mut mid, 4090).unwrap();
        assert!(mid[..6] == data[4090..]);
        assert!(v.read_at(&mut mid, 8190).is_err());
    }

    fn err(f: File) -> String {
        VmdkView::open(f)
            .and_then(|mut v| {
                let mut b = vec![0u8; 8192];
                v.read_at(&mut b, 0).map_err(|e| corrupt(e.to_string()))
            })
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn hostile_vmdks_name_the_limit_they_hit() {
        let data = vec![7u8; 4096];
        let set = |at: usize, v: &[u8]| {
            let v = v.to_vec();
            move |f: &mut Vec<u8>| f[at..at + v.len()].copy_from_slice(&v)
        };
        for (edit, said) in [
            (
                Box::new(set(20, &3u64.to_le_bytes())) as Box<dyn Fn(&mut Vec<u8>)>,
                "a VMDK grain of 3 sectors",
            ),
            (
                Box::new(set(20, &4096u64.to_le_bytes())),
                "a VMDK grain of 4096 sectors",
            ),
            (
                Box::new(set(44, &513u32.to_le_bytes())),
                "513 entries per VMDK grain table",
            ),
            (
                Box::new(set(12, &(1u64 << 40).to_le_bytes())),
                "the limit is 70368744177664 bytes",
            ),
            (
                Box::new(set(56, &1000u64.to_le_bytes())),
                "grain directory at sector 1000 lies outside the file",
            ),
            (
                Box::new(set(1024, &99u32.to_le_bytes())),
                "grain table at sector 99 lies outside the file",
            ),
            (
                Box::new(set(1536 + 8, &u32::MAX.to_le_bytes())),
                "a compressed VMDK grain of 4294967295 bytes: the limit is 8704",
            ),
            (
                Box::new(set(1536, &5u64.to_le_bytes())),
                "says it holds sector 5",
            ),
            (
                Box::new(set(8, &0u32.to_le_bytes())),
                "not stream-optimized",
            ),
        ] {
            let e = err(tiny(&data, edit));
            assert!(e.contains(said), "{e} (wanted {said})");
        }
        // A grain that inflates to more than a grain: a zip bomb.
        let e = err(tiny(&vec![0u8; 65536], |_| ()));
        assert!(e.contains("does not inflate to exactly 4096 bytes"), "{e}");
    }

    fn vhd(size: u64, edit: impl Fn(&mut [u8; 512])) -> File {
        let mut f = [0u8; 512];
        f[..8].copy_from_slice(b"conectix");
        f[48..56].copy_from_slice(&size.to_be_bytes());
        f[60..64].copy_from_slice(&2u32.to_be_bytes());
        let sum = f.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
        f[64..68].copy_from_slice(&(!sum).to_be_bytes());
        edit(&mut f);
        let t = tempfile::tempfile().unwrap();
        t.write_all_at(&f, size).unwrap();
        t
    }

    #[test]
    fn a_fixed_vhd_reads_as_its_data_and_bad_footers_are_named() {
        let v = fixed_vhd(vhd(4096, |_| ())).unwrap();
        assert_eq!(v.size(), 4096);
        let e = |f: File| {
            fixed_vhd(f)
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        assert!(e(vhd(4096, |f| f[100] = 1)).contains("checksum mismatch"));
        let retype = |t: u32| {
            move |f: &mut [u8; 512]| {
                f[60..64].copy_from_slice(&t.to_be_bytes());
                f[64..68].copy_from_slice(&[0; 4]);
                let sum = f.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
                f[64..68].copy_from_slice(&(!sum).to_be_bytes());
            }
        };
        assert!(e(vhd(4096, retype(3))).contains("a dynamic VHD"));
        assert!(e(vhd(4096, retype(4))).contains("a differencing VHD"));
        let resize = |f: &mut [u8; 512]| {
            f[48..56].copy_from_slice(&8192u64.to_be_bytes());
            f[64..68].copy_from_slice(&[0; 4]);
            let sum = f.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
            f[64..68].copy_from_slice(&(!sum).to_be_bytes());
        };
        let msg = e(vhd(4096, resize));
        assert!(
            msg.contains("says the disk is 8192 bytes, but the file holds 4096"),
            "{msg}"
        );
    }
}
