//! The XFS writer: a [`Tree`] in, an XFS v5 filesystem out, written front
//! to back into the caller's file, the way [`crate::ext4`] writes ext4.
//!
//! In: a tree (metadata in memory, contents streamed with [`Tree::open`])
//! and [`Options`] (UUID, a seed for inode generations, label, the source
//! date, the size). Out: the filesystem at `offset` of the caller's file,
//! with positioned writes, never an all-zero block (the range must read
//! as zeros: a new or sparse file).
//!
//! What it writes is what the xfsprogs Amazon Linux 2023 ships (5.18.0)
//! makes by default for one plain device: 4 KiB blocks, 512-byte sectors,
//! 512-byte v3 inodes, 4 KiB directory blocks, 4 AGs, and the features
//! `crc` (v5: checksums and self-describing metadata), `ftype` (file types
//! in directory entries), `finobt` (the free-inode btree), `sparse`
//! (sparse inode chunks allowed; every chunk written is whole), `reflink`
//! (so an empty refcount btree in every AG), `bigtime` (nanosecond times
//! to 2486) and `inobtcount` (inode btree block counts in the AGI), plus
//! `attr2`, `lazy-count` and `projid32bit`; not `rmapbt` (off by default)
//! nor `nrext64` (a 6.x default). The internal log is the size mkfs.xfs
//! 6.1 gives (64 MiB, or size/2048 on disks over 128 GiB; 5.18 gave small
//! disks less, and any size over the kernel's minimum mounts): clean, one
//! unmount record at its start and zeros after it, as mkfs leaves it.
//! The label is [`Options::label`] (`/` for Amazon Linux's root).
//!
//! Forms: directories short form, block, leaf or node (see `dir.rs`);
//! symlinks inline up to the data fork's size, else one remote block;
//! files as extents listed in the inode: data is allocated contiguously,
//! so a file has one extent per data run between holes (holes stay
//! holes), split only at an AG's end or at 8 GiB; a file with more runs
//! than the inode lists gets its smallest holes filled with zeros, so no
//! bmap btree is ever needed. Attributes short form, else one leaf block
//! (see `attr.rs`). Hard links share an inode; devices, FIFOs and sockets
//! keep their numbers; owners, modes and xattrs (SELinux labels,
//! capabilities, user attributes, POSIX ACLs in XFS's form) are the tree's.
//!
//! Sizing: at least 300 MiB (what mkfs.xfs accepts with the default log);
//! `size = "auto"` is what the layout needs plus a tenth and 16 MiB, as
//! ext4 gets, or that minimum. Every AG keeps free what the kernel sets
//! aside in it at mount for the free-inode and refcount btrees (see
//! `Geo::ag_reserve`), so a full AG mounts without complaint.
//!
//! Not written: bmap btrees (never needed, see above), remote attribute
//! values and multi-block attribute trees (an error names the file),
//! inodes outside AG 0 (AG 0 holds a quarter of the disk: half a million
//! inodes per GiB), disks of 4 TiB or more (more than 4 AGs).
//!
//! Deterministic: inode numbers follow [`Tree::walk`]; blocks are handed
//! out in one fixed order; every inode time (atime, mtime, ctime, crtime)
//! is the tree's mtime; the realtime inodes' times are
//! [`Options::timestamp`]; inode generations are a crc32c of
//! [`Options::hash_seed`] and the inode number; metadata LSNs are 0.
//!
//! Never: the clock, host state, mkfs, loop devices or mounts; file
//! contents held in memory (memory grows with inodes and directory
//! entries).
//!
//! Why our own: no Rust crate writes XFS, and `mkfs.xfs -p` (protofile)
//! takes UUIDs, times and generations from the host and its clock. The
//! formats followed: the "XFS Algorithms & Data Structures" document
//! (on-disk structures, directory and attribute forms, the log), the
//! kernel's `xfs_format.h`, `xfs_da_format.h` and `xfs_log_format.h`
//! (structure layouts and flags), and xfsprogs' `mkfs/xfs_mkfs.c` for the
//! defaults and geometry; `mkfs.xfs -N` and `xfs_db` on a fresh mkfs.xfs
//! image for the values checked.
//!
//! | file | what it holds |
//! | --- | --- |
//! | `mod.rs` | [`Options`], [`XfsError`], sizing, [`write_following`] |
//! | `format.rs` | constants, big-endian field writers, crc32c, the name hash, big timestamps, extent records |
//! | `layout.rs` | geometry, inode numbering, what each inode holds, the block allocator |
//! | `dir.rs` | directory forms and their blocks |
//! | `attr.rs` | attribute namespaces, short form, leaf block |
//! | `btree.rs` | the per-AG short-form btrees, built bottom-up |
//! | `write.rs` | AG headers, superblocks, inodes, the log, data streamed |

mod attr;
mod btree;
mod dir;
mod format;
mod layout;
mod write;

use std::fs::File;

use crate::rootfs::Tree;

use layout::{Content, MIN_BLOCKS, Plan, PlanError};

/// The block size.
pub const BLOCK_SIZE: u64 = format::BLOCK;

/// What the filesystem is made with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `sb_uuid`, in every metadata block.
    pub uuid: [u8; 16],
    /// The seed of inode generation numbers.
    pub hash_seed: [u8; 16],
    /// `sb_fname`, at most 12 bytes.
    pub label: String,
    /// The times of the inodes the writer makes itself.
    pub timestamp: u32,
    /// Bytes, a multiple of 4096; 0 means the automatic size.
    pub size: u64,
}

/// Why the filesystem could not be made.
#[derive(Debug, thiserror::Error)]
pub enum XfsError {
    #[error("the filesystem needs {needed} bytes, but only {given} are given")]
    TooSmall { needed: u64, given: u64 },
    #[error("the size {size} is not a multiple of 4096 bytes")]
    UnalignedSize { size: u64 },
    #[error("a filesystem of {size} bytes is more than this writer lays out (4 AGs, under 4 TiB)")]
    TooLarge { size: u64 },
    #[error("the label `{label}` is {len} bytes; XFS holds 12")]
    LabelTooLong { label: String, len: usize },
    #[error("`{path}`: the name is over 255 bytes")]
    NameTooLong { path: String },
    #[error("`{path}` is a symlink with a target of {len} bytes; XFS takes 1 to 1024")]
    BadSymlink { path: String, len: usize },
    #[error("`{path}`: extended attribute `{name}`: {reason}")]
    Xattr {
        path: String,
        name: String,
        reason: String,
    },
    #[error("`{path}`: extended attributes need {needed} bytes; one leaf block holds 4096")]
    XattrsTooLarge { path: String, needed: usize },
    #[error("`{path}` needs {extents} extents, more than its inode lists")]
    TooManyExtents { path: String, extents: usize },
    #[error("the tree's root is not a directory")]
    RootNotADirectory,
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the filesystem at byte {offset}")]
    Write {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

fn check(opts: &Options) -> Result<(), XfsError> {
    if opts.label.len() > 12 {
        return Err(XfsError::LabelTooLong {
            label: opts.label.clone(),
            len: opts.label.len(),
        });
    }
    if !opts.size.is_multiple_of(BLOCK_SIZE) {
        return Err(XfsError::UnalignedSize { size: opts.size });
    }
    Ok(())
}

fn fits(content: &Content<'_>, blocks: u64) -> Result<bool, XfsError> {
    match Plan::new(content, blocks) {
        Ok(_) => Ok(true),
        Err(PlanError::NoSpace) => Ok(false),
        Err(PlanError::Other(e)) => Err(e),
    }
}

/// The fewest blocks that hold `content`.
fn min_blocks(content: &Content<'_>) -> Result<u64, XfsError> {
    let start = MIN_BLOCKS.max(content.data_blocks) - 1;
    crate::fswrite::fewest_blocks(
        start,
        layout::MAX_BLOCKS,
        |n| fits(content, n),
        |hi| XfsError::TooLarge {
            size: hi.saturating_mul(2).saturating_mul(BLOCK_SIZE),
        },
    )
}

/// The automatic size ([`crate::fswrite::auto_blocks`]), never under
/// 300 MiB.
fn auto_blocks(content: &Content<'_>) -> Result<u64, XfsError> {
    let blocks =
        crate::fswrite::auto_blocks(min_blocks(content)?, BLOCK_SIZE, |n| fits(content, n))?;
    Ok(blocks.max(MIN_BLOCKS))
}

/// The size `write_following` picks for `opts.size` 0, in bytes.
pub fn auto_size(tree: &Tree, opts: &Options) -> Result<u64, XfsError> {
    check(opts)?;
    let content = Content::gather(tree, opts)?;
    Ok(auto_blocks(&content)? * BLOCK_SIZE)
}

/// Write `tree` as an XFS filesystem of `opts.size` bytes (0: automatic)
/// at `offset` of `out`, which reads as zeros there. `progress(n)` is told
/// when nothing below filesystem offset `n` changes any more.
pub fn write_following(
    tree: &Tree,
    opts: &Options,
    out: &File,
    offset: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), XfsError> {
    check(opts)?;
    let content = Content::gather(tree, opts)?;
    let blocks = if opts.size == 0 {
        auto_blocks(&content)?
    } else {
        opts.size / BLOCK_SIZE
    };
    if blocks > layout::MAX_BLOCKS {
        return Err(XfsError::TooLarge { size: opts.size });
    }
    let plan = match Plan::new(&content, blocks) {
        Ok(p) => p,
        Err(PlanError::NoSpace) => {
            return Err(XfsError::TooSmall {
                needed: min_blocks(&content)? * BLOCK_SIZE,
                given: opts.size,
            });
        }
        Err(PlanError::Other(e)) => return Err(e),
    };
    write::write(&content, &plan, opts, out, offset, progress)
}

#[cfg(test)]
mod tests;
