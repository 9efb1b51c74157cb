//! Reading root filesystems out of disk images, read-only: ext4
//! ([`ext4`]) and XFS v5 ([`xfs`]), and a whole disk image's root (and
//! ESP) into a [`crate::rootfs::Tree`] ([`image`]) for `bake`'s base and
//! `inspect`/`diff`.
//!
//! In: a [`DiskRead`] (any image `disk::view` opens) and a partition's
//! byte range. Out: inodes with their type, mode, owner, times, xattrs,
//! device numbers, link targets, directory entries and data extents; or a
//! [`FsError`] naming what is damaged or unsupported, never a panic or a
//! hang: every reader bounds what it follows (each module lists its
//! limits).
//!
//! Code map:
//!
//! | file | what it holds |
//! | --- | --- |
//! | `mod.rs` | [`FsError`], the [`ReadFs`] seam both readers implement, [`Stat`], [`Mapped`] |
//! | `ext4.rs` | the ext4 reader (walks by inode) |
//! | `xfs.rs` | the XFS v5 reader |
//! | `fat.rs` | a FAT12/16/32 reader for the ESP (cluster runs as disk ranges) |
//! | `image.rs` | a disk image's root partition (chosen by its fstab) and ESP (under `/boot/efi`) into a tree |
//!
//! Above `disk` and `rootfs`; used by `inspect` and `bake`.

use std::collections::BTreeMap;
use std::io;

use crate::disk::view::DiskRead;

pub mod ext4;
pub mod fat;
pub mod image;
pub mod xfs;

/// What went wrong reading a filesystem, with where.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{0}")]
    Corrupt(String),
    #[error("{0} is not supported by this reader")]
    Unsupported(String),
    #[error("cannot read the filesystem at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn corrupt(m: impl Into<String>) -> FsError {
    FsError::Corrupt(m.into())
}

/// The type of an inode, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

impl FileType {
    /// From the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & 0o170000 {
            0o100000 => FileType::File,
            0o040000 => FileType::Dir,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::CharDev,
            0o060000 => FileType::BlockDev,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => return None,
        })
    }
}

/// An inode's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub ino: u64,
    pub kind: FileType,
    /// Permission bits (0o7777).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// A device's major and minor.
    pub rdev: (u32, u32),
}

/// `len` bytes of a file from `file_offset` are the disk's bytes from
/// `disk_offset` (absolute in the disk image, partition offset included).
/// What no extent covers is a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub file_offset: u64,
    pub len: u64,
    pub disk_offset: u64,
}

/// A filesystem read by inode: what [`image`] needs to copy it into a tree.
pub trait ReadFs {
    fn root_ino(&self) -> u64;
    fn stat(&mut self, ino: u64) -> Result<Stat, FsError>;
    /// A directory's entries, `.` and `..` left out.
    fn read_dir(&mut self, ino: u64) -> Result<Vec<(Vec<u8>, u64)>, FsError>;
    fn link_target(&mut self, ino: u64) -> Result<Vec<u8>, FsError>;
    /// Extended attributes by full name (`security.selinux`).
    fn xattrs(&mut self, ino: u64) -> Result<BTreeMap<String, Vec<u8>>, FsError>;
    /// A regular file's data, sorted; holes and unwritten extents left out.
    fn file_map(&mut self, ino: u64) -> Result<Vec<Mapped>, FsError>;
    /// The disk the filesystem is read from.
    fn disk(&mut self) -> &mut dyn DiskRead;
    /// The filesystem's UUID and label, for fstab's `UUID=` and `LABEL=`.
    fn ids(&self) -> ([u8; 16], Vec<u8>);
}

/// Which filesystem starts at byte `offset` of `disk`, from its magic.
pub fn sniff(disk: &mut dyn DiskRead, offset: u64) -> io::Result<Option<&'static str>> {
    let mut b = [0u8; 2048];
    if offset.saturating_add(2048) > disk.size() {
        return Ok(None);
    }
    disk.read_at(&mut b, offset)?;
    if &b[..4] == b"XFSB" {
        return Ok(Some("xfs"));
    }
    if b[1024 + 0x38..1024 + 0x3A] == [0x53, 0xEF] {
        return Ok(Some("ext4"));
    }
    if b[510..512] == [0x55, 0xAA] && (&b[82..87] == b"FAT32" || &b[54..57] == b"FAT") {
        return Ok(Some("vfat"));
    }
    Ok(None)
}
