//! The disk around the root filesystem: partition plan, GPT, the FAT EFI
//! System Partition, and the formats AWS imports.
//!
//! In: the size the root filesystem needs, the ESP's files (small, held in
//! memory), a seed (a digest of the build's inputs) and the source date.
//! Out: a raw disk image laid out like Amazon Linux 2023's (GPT, partition 1
//! root, 127 BIOS boot, 128 ESP), and from that raw file a stream-optimized
//! VMDK, a fixed VHD, the EBS direct-API checksum and the SHA-256 that names
//! the outputs; for other clouds a qcow2 and a Compute Engine tarball.
//!
//! Never: runs another program (sgdisk, mkfs, qemu-img, dd), mounts, needs
//! root, reads the clock or a random source, or holds a whole disk in
//! memory. Raw images are sparse: zero ranges stay holes, and nothing here
//! writes an all-zero sector into a fresh raw file.
//!
//! Why our own code: no crate writes these formats reproducibly. The tools
//! do not either: sgdisk and mkfs.fat pick random GUIDs and serials unless
//! told otherwise, and qemu-img puts a random CID and the file name into a
//! VMDK and a timestamp and random UUID into a VHD footer. Every format here
//! is small and fully specified:
//!
//! | module | format | specification |
//! | --- | --- | --- |
//! | [`gpt`] | protective MBR, GPT header and entries | UEFI 2.10, §5.2.3 and §5.3 |
//! | [`fat`] | FAT16 with long file names | Microsoft "FAT: General Overview of On-Disk Format" 1.03 (fatgen103) |
//! | [`vmdk`] | stream-optimized sparse extent | VMware "Virtual Disk Format 1.1", §"Stream-Optimized Compressed Sparse Extents" |
//! | [`vhd`] | fixed hard disk footer | Microsoft "Virtual Hard Disk Image Format Specification" 1.0, §"Hard Disk Footer Format" |
//! | [`qcow2`] | qcow2 version 3 | QEMU `docs/interop/qcow2.txt` |
//! | [`gce`] | `disk.raw` in a gzipped old GNU sparse tar | GNU tar manual, "Standard" and "Sparse Formats"; RFC 1951 and 1952; Compute Engine's import guide |
//! | [`ebs`] | EBS direct APIs' LINEAR SHA-256 aggregate | AWS EBS direct APIs `CompleteSnapshot`, as awslabs/coldsnap `src/upload.rs` computes it |
//! | [`view`] | reading raw, fixed VHD, stream-optimized VMDK, qcow2 and Compute Engine images back as their virtual disk | the specifications above |
//! | [`raw`] | sparse raw files, positioned writes, hole-aware reads | Linux `lseek(2)` `SEEK_DATA`/`SEEK_HOLE` |
//!
//! The order of work: [`gpt::plan`] sizes the disk, [`raw::create`] makes the
//! sparse file, [`gpt::write`] writes the table, [`fat::write`] fills
//! `layout.esp`, the ext4 writer fills `layout.root`; [`digest_raw`] then
//! reads the raw file once for the SHA-256 that names the image, the EBS
//! checksum and the VMDK ([`digest_raw_following`] does so while the ext4
//! writer is still at work, behind a [`raw::Watermark`] it raises).
//! [`raw::sha256`], [`vmdk::write`], [`vhd::write`] and [`ebs::checksum`]
//! each read the raw file as a stream on their own.

mod digest;
pub mod ebs;
pub mod fat;
pub mod format;
pub mod gce;
pub mod gpt;
pub mod qcow2;
pub mod raw;
pub mod vhd;
pub mod view;
pub mod vmdk;

use std::fmt;

pub use digest::{RawDigests, digest_raw, digest_raw_following, digest_raw_reporting};
pub use format::OutputFormat;

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Bytes in a logical block: GPT, FAT, VMDK and VHD all count in 512-byte
/// sectors here (AWS EBS volumes expose 512-byte logical blocks).
pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// A size in the largest binary unit that divides it exactly ("38 MiB",
/// "2 GiB", "1536 KiB", "1000 bytes"): what a spec's `size` may say.
pub fn human_size(bytes: u64) -> String {
    for (unit, name) in [
        (GIB * 1024, "TiB"),
        (GIB, "GiB"),
        (MIB, "MiB"),
        (1024, "KiB"),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// What can go wrong while laying out or writing a disk. Input problems
/// (names, sizes) are found before the first byte is written.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(
        "the disk is too small: {} was asked for, but the partitions need at least {}",
        human_size(*given),
        human_size(needed.div_ceil(MIB) * MIB)
    )]
    TooSmall { needed: u64, given: u64 },

    #[error("disk size {0} is not a whole number of MiB (1048576 bytes)")]
    NotMibAligned(u64),

    #[error("{what} is {size} bytes, not a whole number of 512-byte sectors")]
    NotSectorAligned { what: &'static str, size: u64 },

    #[error("{what} is {size} bytes, more than the format allows ({max} bytes)")]
    TooLarge {
        what: &'static str,
        size: u64,
        max: u64,
    },

    #[error("ESP path `{path}`: {reason}")]
    EspName { path: String, reason: String },

    #[error("ESP path `{path}` is given twice (FAT names are case-insensitive)")]
    EspDuplicate { path: String },

    #[error("ESP path `{path}` is a file, but another path puts entries under it")]
    EspNotADirectory { path: String },

    #[error("the ESP root holds {entries} directory entries; FAT16 allows 512")]
    EspRootFull { entries: usize },

    #[error("ESP label `{0}`: at most 11 characters, A-Z, 0-9, space and !#$%&'()-@^_`{{}}~")]
    EspLabel(String),

    #[error(
        "the ESP content needs {needed} bytes, but the partition has {given}: a FAT16 volume \
         this size cannot hold it"
    )]
    EspTooSmall { needed: u64, given: u64 },

    #[error("{0}")]
    Corrupt(String),

    #[error("cannot {action} at byte {offset}")]
    Io {
        action: &'static str,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = DiskError> = std::result::Result<T, E>;

/// Wrap an I/O error with what was being done and where.
pub(crate) fn io_at(action: &'static str, offset: u64) -> impl FnOnce(std::io::Error) -> DiskError {
    move |source| DiskError::Io {
        action,
        offset,
        source,
    }
}

/// A GUID in RFC 9562 byte order (the order its text form is written in).
/// On disk, UEFI stores the first three fields little-endian
/// ([`Guid::to_uefi_bytes`], UEFI 2.10 Appendix A). The `uuid` crate
/// parses, prints and swaps; this type only adds the derivation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parse `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case) at compile
    /// time; for the constants of the specifications. Panics on bad text.
    pub const fn parse(text: &str) -> Guid {
        match Guid::from_text(text) {
            Some(g) => g,
            None => panic!("not a GUID written XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"),
        }
    }

    /// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case), the only form
    /// fstab and kernel command lines use; `None` for anything else.
    pub const fn from_text(text: &str) -> Option<Guid> {
        if text.len() != 36 {
            return None;
        }
        match Uuid::try_parse(text) {
            Ok(u) => Some(Guid(u.into_bytes())),
            Err(_) => None,
        }
    }

    /// A GUID derived from `seed` for one `purpose`: the first 16 bytes of
    /// SHA-256("ingot:" purpose NUL seed), with the version (4) and variant
    /// (RFC) bits set, so it looks like any other random GUID but the same
    /// inputs give the same GUID.
    pub fn derive(seed: &[u8], purpose: &str) -> Guid {
        let digest = derive_digest(seed, purpose);
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        Guid(uuid::Builder::from_random_bytes(b).into_uuid().into_bytes())
    }

    /// The mixed-endian layout UEFI uses on disk: Data1 (u32), Data2 (u16),
    /// Data3 (u16) little-endian, Data4 (8 bytes) as is.
    pub fn to_uefi_bytes(&self) -> [u8; 16] {
        Uuid::from_bytes(self.0).to_bytes_le()
    }

    /// The inverse of [`Guid::to_uefi_bytes`].
    pub fn from_uefi_bytes(b: [u8; 16]) -> Guid {
        Guid(Uuid::from_bytes_le(b).into_bytes())
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Uuid::from_bytes(self.0).hyphenated(), f)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A 32-bit value derived from `seed` for one `purpose` (the FAT volume
/// serial, for instance): the first four bytes of the same digest
/// [`Guid::derive`] uses, big-endian.
pub fn derive_u32(seed: &[u8], purpose: &str) -> u32 {
    let d = derive_digest(seed, purpose);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn derive_digest(seed: &[u8], purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ingot:");
    h.update(purpose.as_bytes());
    h.update([0u8]);
    h.update(seed);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_the_largest_unit_that_divides_them() {
        assert_eq!(human_size(39_845_888), "38 MiB");
        assert_eq!(human_size(2 * GIB), "2 GiB");
        assert_eq!(human_size(3 * MIB / 2), "1536 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
        assert_eq!(human_size(0), "0 bytes");
    }

    #[test]
    fn guid_text_round_trips_and_uefi_layout_swaps_the_first_three_fields() {
        let g = Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(g.to_string(), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        // UEFI 2.10 Appendix A: the ESP type GUID as it appears on disk.
        assert_eq!(
            g.to_uefi_bytes(),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
        assert_eq!(Guid::from_uefi_bytes(g.to_uefi_bytes()), g);
        assert_eq!(
            Guid::from_text("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
            Some(g)
        );
        for bad in [
            "c12a7328f81f11d2ba4b00a0c93ec93b",
            "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}",
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93",
            "c12a732-8f81f-11d2-ba4b-00a0c93ec93b",
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93g",
            "+12a7328-f81f-11d2-ba4b-00a0c93ec93b",
        ] {
            assert_eq!(Guid::from_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn derived_guids_are_stable_distinct_and_version_4() {
        let a = Guid::derive(b"seed", "disk");
        assert_eq!(a, Guid::derive(b"seed", "disk"));
        assert_ne!(a, Guid::derive(b"seed", "root"));
        assert_ne!(a, Guid::derive(b"seed2", "disk"));
        assert_eq!(a.0[6] >> 4, 4);
        assert_eq!(a.0[8] >> 6, 0b10);
        assert_eq!(derive_u32(b"s", "x"), derive_u32(b"s", "x"));
    }
}
