//! A fixed VHD of a raw disk image: the raw bytes, then a 512-byte footer.
//!
//! In: the raw image (streamed; holes stay holes in the output), its
//! SHA-256 and the source date. Out: the `.vhd` file. The footer follows
//! Microsoft's "Virtual Hard Disk Image Format Specification" 1.0, §"Hard
//! Disk Footer Format" (all fields big-endian): cookie `conectix`,
//! features 2 (the reserved bit), version 1.0, data offset all ones (a
//! fixed disk has no dynamic header), the time stamp in seconds since
//! 2000-01-01 00:00:00 UTC from the source date, creator application
//! `ingt` version 1.0 on `Wi2k`, original and current size the raw size,
//! disk type 2 (fixed), the one's-complement checksum, a unique id derived
//! from the image's SHA-256, saved state 0.
//!
//! Disk geometry: the spec's CHS algorithm (§"CHS Calculation") gives a
//! geometry whose product is smaller than any whole-GiB disk (17, 31, 63
//! and 255 sectors per track are odd), and readers in the Virtual PC
//! tradition take the size from the geometry: qemu does for every creator
//! it does not know, and would cut off the disk's end (the backup GPT).
//! So the footer carries the maximum geometry, 65535 cylinders, 16 heads,
//! 255 sectors, which tells those readers to use the current size, as
//! `qemu-img convert -O vpc -o subformat=fixed,force_size=on` does; Hyper-V,
//! Azure and other readers use the current size anyway.
//!
//! Azure-style tools want the size to be a whole number of MiB; the plan in
//! [`super::gpt`] always makes it so. AWS's `ImportSnapshot` takes fixed
//! VHDs.
//!
//! Never: reads the clock or a random source, or loads the image into
//! memory.

use std::fs::File;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;

use sha2::Digest;

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{DiskError, GIB, Guid, Result, SECTOR, io_at, raw};

/// §"Hard Disk Footer Format".
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Clone)]
struct Footer {
    cookie: [u8; 8],
    features: U32,
    file_format_version: U32,
    data_offset: U64,
    time_stamp: U32,
    creator_application: [u8; 4],
    creator_version: U32,
    creator_host_os: [u8; 4],
    original_size: U64,
    current_size: U64,
    disk_geometry_cylinders: U16,
    disk_geometry_heads: u8,
    disk_geometry_sectors_per_track: u8,
    disk_type: U32,
    checksum: U32,
    unique_id: [u8; 16],
    saved_state: u8,
    reserved: [u8; 427],
}

const _: () = assert!(size_of::<Footer>() == 512);

/// Seconds from 1970-01-01 to 2000-01-01 00:00:00 UTC, the VHD epoch.
const VHD_EPOCH: u64 = 946_684_800;
/// "Features": bit 1 is reserved and must be set.
const FEATURES_RESERVED: u32 = 0x0000_0002;
const VERSION_1_0: u32 = 0x0001_0000;
const FIXED_NO_DATA: u64 = u64::MAX;
const DISK_TYPE_FIXED: u32 = 2;
/// The largest VHD: 2040 GiB, the limit qemu and Hyper-V enforce.
pub const MAX_SIZE: u64 = 2040 * GIB;

fn footer(size: u64, source_date: u64, raw_sha256: &[u8; 32]) -> Footer {
    let stamp = u32::try_from(source_date.saturating_sub(VHD_EPOCH)).unwrap_or(u32::MAX);
    let mut f = Footer {
        cookie: *b"conectix",
        features: U32::new(FEATURES_RESERVED),
        file_format_version: U32::new(VERSION_1_0),
        data_offset: U64::new(FIXED_NO_DATA),
        time_stamp: U32::new(stamp),
        creator_application: *b"ingt",
        creator_version: U32::new(VERSION_1_0),
        creator_host_os: *b"Wi2k",
        original_size: U64::new(size),
        current_size: U64::new(size),
        disk_geometry_cylinders: U16::new(65535),
        disk_geometry_heads: 16,
        disk_geometry_sectors_per_track: 255,
        disk_type: U32::new(DISK_TYPE_FIXED),
        checksum: U32::new(0),
        unique_id: Guid::derive(raw_sha256, "vhd-unique-id").0,
        saved_state: 0,
        reserved: [0; 427],
    };
    f.checksum = U32::new(checksum(f.as_bytes()));
    f
}

/// §"Checksum": the one's complement of the sum of the footer's bytes, the
/// checksum field counted as zero.
fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)))
}

/// Write `out` (emptied first) as a fixed VHD of `raw`. Returns the
/// VHD's size in bytes. This is [`super::digest_raw`]'s pass with this
/// format's stream, as `bake` makes it.
pub fn write(raw: &File, out: &File, source_date: u64) -> Result<u64> {
    let raw_len = raw
        .metadata()
        .map_err(io_at("read the raw image", 0))?
        .len();
    let out = out.try_clone().map_err(io_at("write the VHD", 0))?;
    let cx = super::format::Context {
        raw_len,
        seed: [0; 32],
        source_date,
        scratch: std::env::temp_dir(),
    };
    let mut f = Box::new(Format::new(out, &cx)?);
    let d = super::digest_raw(raw, &mut [&mut *f], NonZeroUsize::MIN)?;
    let made = super::format::ImageFormat::finish(
        f,
        &super::format::RawDone {
            file: raw,
            sha256: d.sha256,
            hasher: &d.hasher,
        },
    )?;
    Ok(made.size)
}

/// A fixed VHD as a disk format of `bake` ([`super::format`]): the raw
/// image's bytes written where they are (holes stay holes) by the pass's
/// workers, then the footer; its digest is the raw image's hash state
/// continued over the footer, so the image is not read a second time.
pub struct Format {
    out: File,
    size: u64,
    source_date: u64,
}

impl Format {
    /// Start `out` (emptied first) for a raw image of `cx.raw_len` bytes.
    pub fn new(out: File, cx: &super::format::Context) -> Result<Self> {
        let size = cx.raw_len;
        if !size.is_multiple_of(SECTOR) {
            return Err(DiskError::NotSectorAligned {
                what: "the raw image",
                size,
            });
        }
        if size > MAX_SIZE {
            return Err(DiskError::TooLarge {
                what: "a VHD disk",
                size,
                max: MAX_SIZE,
            });
        }
        // Emptied first, so nothing of an earlier file survives in the holes.
        out.set_len(0)
            .and_then(|()| out.set_len(size + SECTOR))
            .map_err(io_at("size the VHD", size + SECTOR))?;
        Ok(Format {
            out,
            size,
            source_date: cx.source_date,
        })
    }
}

/// A worker's share: the part's bytes, written where they are.
struct Place(File);

impl super::format::PartEncoder for Place {
    fn encode(&mut self, offset: u64, bytes: &[u8]) -> Result<super::format::Encoded> {
        raw::write_nonzero_at(&self.0, offset, bytes).map_err(io_at("write the VHD", offset))?;
        Ok(Box::new(()))
    }
}

impl super::format::RawStream for Format {
    fn encoder(&self) -> Result<Box<dyn super::format::PartEncoder>> {
        let f = self.out.try_clone().map_err(io_at("write the VHD", 0))?;
        Ok(Box::new(Place(f)))
    }

    fn consume(&mut self, _offset: u64, _part: super::format::Part) -> Result<()> {
        Ok(())
    }
}

impl super::format::ImageFormat for Format {
    fn stream(&mut self) -> &mut dyn super::format::RawStream {
        self
    }

    fn finish(self: Box<Self>, raw: &super::format::RawDone<'_>) -> Result<super::format::Made> {
        let f = footer(self.size, self.source_date, &raw.sha256);
        self.out
            .write_all_at(f.as_bytes(), self.size)
            .map_err(io_at("write the VHD footer", self.size))?;
        let mut h = raw.hasher.clone();
        h.update(f.as_bytes());
        Ok(super::format::Made {
            size: self.size + SECTOR,
            sha256: h.finalize().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §"CHS Calculation", for the test below only.
    fn spec_geometry(total_sectors: u64) -> (u64, u64, u64) {
        let total = total_sectors.min(65535 * 16 * 255);
        let (spt, heads, cth);
        if total >= 65535 * 16 * 63 {
            (spt, heads) = (255, 16);
            cth = total / spt;
        } else {
            let mut s = 17;
            let mut c = total / s;
            let mut h = c.div_ceil(1024).max(4);
            if c >= h * 1024 || h > 16 {
                (s, h) = (31, 16);
                c = total / s;
            }
            if c >= h * 1024 {
                (s, h) = (63, 16);
                c = total / s;
            }
            (spt, heads, cth) = (s, h, c);
        }
        (cth / heads, heads, spt)
    }

    #[test]
    fn the_specs_chs_would_cut_off_the_end_of_a_whole_gib_disk() {
        for gib in [1, 2, 8, 100] {
            let sectors = gib * GIB / SECTOR;
            let (c, h, s) = spec_geometry(sectors);
            assert!(c * h * s < sectors, "{gib} GiB");
        }
    }

    #[test]
    fn footer_fields_and_checksum() {
        let f = footer(GIB, VHD_EPOCH + 10, &[1; 32]);
        let b = f.as_bytes();
        assert_eq!(&b[..8], b"conectix");
        assert_eq!(u32::from_be_bytes(b[24..28].try_into().unwrap()), 10);
        assert_eq!(u64::from_be_bytes(b[48..56].try_into().unwrap()), GIB);
        assert_eq!(&b[56..60], [0xFF, 0xFF, 0x10, 0xFF]);
        let mut zeroed = f.clone();
        zeroed.checksum = U32::new(0);
        assert_eq!(f.checksum.get(), checksum(zeroed.as_bytes()));
        assert_eq!(footer(GIB, 0, &[1; 32]).time_stamp.get(), 0);
    }
}
