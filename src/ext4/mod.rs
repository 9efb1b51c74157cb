//! The ext4 writer: a [`Tree`] in, a bootable ext4 filesystem out, written
//! byte by byte into the caller's file.
//!
//! In: a tree (metadata in memory, contents streamed with [`Tree::open`])
//! and [`Options`] (UUID, directory hash seed, label, the source date, the
//! size). Out: the filesystem at `offset` of the caller's file, written
//! with positioned writes, and a [`Summary`] (counts and the byte ranges
//! written, which are the only non-zero ranges: the caller's file is
//! sparse, and the writer never writes an all-zero block).
//!
//! What a current mke2fs makes for ext4, with these choices:
//! 4 KiB blocks, 32768 blocks per group, flex groups of 16, 256-byte inodes
//! with `i_extra_isize` 32 and nanosecond times, one inode per 16 KiB (or,
//! when the tree needs more, its count and a quarter spare), 5% reserved
//! for root, the inode bitmaps of groups without inodes left uninitialized
//! (`INODE_UNINIT`) and every inode table marked zeroed; features `has_journal`
//! (jbd2 in inode 8, mke2fs's default size for the disk, an empty clean
//! journal whose blocks stay unwritten), `ext_attr`, `dir_index`,
//! `filetype`, `extent`, `64bit`, `flex_bg`, `sparse_super` (superblock and
//! descriptor copies in groups 0, 1 and powers of 3, 5, 7), `large_file`,
//! `huge_file`, `dir_nlink`, `extra_isize`, `metadata_csum` (crc32c of
//! every structure). Not `resize_inode`: no reserved GDT blocks (the kernel
//! still grows the filesystem online, switching to `meta_bg` when it must).
//! Directories over one block get an htree (half MD4, unsigned, seeded from
//! [`Options::hash_seed`]; two levels past 507 leaves); xattrs go in the
//! inode body while they fit, the rest in one xattr block, shared between
//! inodes with identical ones (`user.`, `trusted.`, `security.`, `system.`
//! prefixes and POSIX ACLs, converted to ext4's form, get their indices).
//! `lost+found` is inode 11 with 4 blocks, as mke2fs makes it (the tree's
//! own `/lost+found` is used if it has one). Inode times before 1901 or
//! after 2310 are clamped (see `write.rs`).
//!
//! Deterministic: inode numbers follow [`Tree::walk`] (1..=10 reserved,
//! 11 `lost+found`, then the tree; hard links share the number of their
//! first name), blocks are allocated in one fixed order (see `layout.rs`),
//! every checksum is computed, every superblock time is
//! [`Options::timestamp`] and every inode time is the tree's mtime (atime,
//! ctime and crtime too) or, for the inodes the writer makes,
//! [`Options::timestamp`]. Generation numbers are 0.
//!
//! Never: reading the clock or any host state; mkfs, loop devices, mounts
//! or root; holding file contents in memory (memory grows with the number
//! of inodes and directory entries, not with file sizes); writing an
//! all-zero block (so the target range must read as zeros: a new or
//! truncated file, or a fresh sparse image — the inode tables are declared
//! zeroed).
//!
//! Why our own: `mkfs.ext4 -d` is only reproducible with a fake clock and
//! fixed seeds, copies atime/ctime from the host, and needs a staging
//! directory on disk; no Rust crate writes ext4 with metadata_csum, htree,
//! journal and xattr blocks.
//!
//! Code map:
//!
//! | file | what it holds |
//! | --- | --- |
//! | `mod.rs` | [`Options`], [`Summary`], [`Ext4Error`], [`min_size`], [`write()`]: sizing and the two passes |
//! | `format.rs` | the on-disk structs (superblock, group descriptor, inode, extent tree, directory entries and htree, xattr headers, jbd2 superblock) with compile-time size and offset asserts |
//! | `layout.rs` | the layout pass: inode numbering, geometry, placement of group metadata, the block allocator, extent trees |
//! | `dir.rs` | directory blocks: linear packing, the htree, their bytes and checksums |
//! | `xattr.rs` | xattr names to indices, ACLs to ext4's form, inode body or block, sharing |
//! | `hash.rs` | crc32c (the `crc32c` crate, as the kernel's `crc32c_le` calls it), the half MD4 directory hash, the xattr hashes |
//! | `write.rs` | the write pass: bitmaps, descriptors, superblocks, inode tables, directories, file data streamed |

mod dir;
mod format;
mod hash;
mod layout;
mod write;
mod xattr;

use std::fs::File;
use std::ops::Range;

use crate::rootfs::Tree;

use layout::{Content, MIN_BLOCKS, Plan, PlanError};

/// The block size (4 KiB, as mke2fs picks for anything but tiny disks).
pub const BLOCK_SIZE: u64 = 4096;

/// What the filesystem is made with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `s_uuid`, also the checksum seed's input.
    pub uuid: [u8; 16],
    /// `s_hash_seed`, the directory hash seed.
    pub hash_seed: [u8; 16],
    /// `s_volume_name`, at most 16 bytes (`/` for Amazon Linux 2023's root).
    pub label: String,
    /// Every superblock time (`s_mkfs_time`, `s_wtime`, `s_lastcheck`) and
    /// the time of the inodes the writer makes: the source date, never the
    /// clock.
    pub timestamp: u32,
    /// Bytes, a multiple of 4096; 0 means [`min_size`] plus headroom: a
    /// tenth more and 16 MiB, rounded up to a MiB (see [`auto_size`]).
    pub size: u64,
}

/// What [`write()`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The filesystem's size in bytes (`blocks_count` * 4096): the size
    /// asked for, except that a last group too short for its superblock
    /// copy is left out (as mke2fs does).
    pub size: u64,
    pub blocks_count: u64,
    pub free_blocks: u64,
    pub groups: u32,
    pub inodes_count: u64,
    pub inodes_used: u64,
    pub journal_blocks: u64,
    /// Bytes actually written.
    pub bytes_written: u64,
    /// The byte ranges of the caller's file that were written (offset
    /// included), sorted and merged; everything else in the filesystem's
    /// range is zero.
    pub written: Vec<Range<u64>>,
}

/// Why the filesystem could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error("the filesystem needs {needed} bytes, but only {given} are given")]
    TooSmall { needed: u64, given: u64 },
    #[error("the size {size} is not a multiple of 4096 bytes")]
    UnalignedSize { size: u64 },
    #[error("a filesystem of {blocks} blocks is more than this writer lays out (no meta_bg)")]
    TooLarge { blocks: u64 },
    #[error("the label `{label}` is {len} bytes; ext4 holds 16")]
    LabelTooLong { label: String, len: usize },
    #[error("the tree needs {needed} inodes; a filesystem of this size holds at most {max}")]
    TooManyInodes { needed: u64, max: u64 },
    #[error("`{path}`: the name is {len} bytes; ext4 allows 255")]
    NameTooLong { path: String, len: usize },
    #[error("`{path}` has {links} hard links; ext4 allows 65000")]
    TooManyLinks { path: String, links: u32 },
    #[error("`{path}` is {size} bytes, over ext4's 16 TiB per file")]
    FileTooLarge { path: String, size: u64 },
    #[error("`{path}` is a symlink with an empty target")]
    EmptySymlink { path: String },
    #[error("`{path}`: the symlink target is {len} bytes; ext4 allows 4095")]
    SymlinkTooLong { path: String, len: usize },
    #[error("`{path}` has {entries} entries, more than a two-level htree holds")]
    DirectoryTooLarge { path: String, entries: usize },
    #[error("`{path}`: the extended attribute name `{name}` is over 255 bytes")]
    XattrNameTooLong { path: String, name: String },
    #[error(
        "`{path}`: extended attributes need {needed} bytes outside the inode; one block holds {max}"
    )]
    XattrsTooLarge {
        path: String,
        needed: usize,
        max: usize,
    },
    #[error("`{path}`: `{name}` is not a POSIX ACL: {reason}")]
    BadAcl {
        path: String,
        name: String,
        reason: String,
    },
    #[error("the tree's root is not a directory")]
    RootNotADirectory,
    #[error("`/lost+found` is not a directory, and ext4 needs that name for one")]
    LostFoundNotADirectory,
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

fn check(opts: &Options) -> Result<(), Ext4Error> {
    if opts.label.len() > 16 {
        return Err(Ext4Error::LabelTooLong {
            label: opts.label.clone(),
            len: opts.label.len(),
        });
    }
    if !opts.size.is_multiple_of(BLOCK_SIZE) {
        return Err(Ext4Error::UnalignedSize { size: opts.size });
    }
    Ok(())
}

/// Does a disk of `blocks` hold `content`? Errors other than "too small"
/// are passed on.
fn fits(content: &Content<'_>, blocks: u64) -> Result<bool, Ext4Error> {
    match Plan::new(content, blocks) {
        Ok(_) => Ok(true),
        Err(PlanError::NoSpace | PlanError::Inodes { .. }) => Ok(false),
        Err(PlanError::Other(e)) => Err(e),
    }
}

/// The fewest blocks that hold `content`.
fn min_blocks(content: &Content<'_>) -> Result<u64, Ext4Error> {
    let start = MIN_BLOCKS.max(content.data_blocks()) - 1;
    crate::fswrite::fewest_blocks(
        start,
        u64::MAX,
        |n| fits(content, n),
        |blocks| Ext4Error::TooLarge { blocks },
    )
}

/// The size [`Options::size`] 0 stands for ([`crate::fswrite::auto_blocks`]).
fn auto_blocks(content: &Content<'_>) -> Result<u64, Ext4Error> {
    crate::fswrite::auto_blocks(min_blocks(content)?, BLOCK_SIZE, |n| fits(content, n))
}

/// The smallest size in bytes that holds `tree` with `opts` (the size in
/// `opts` is ignored), overheads included: group metadata, inode tables at
/// one inode per 16 KiB, the journal mke2fs would give that size.
pub fn min_size(tree: &Tree, opts: &Options) -> Result<u64, Ext4Error> {
    check(opts)?;
    let content = Content::gather(tree, opts)?;
    Ok(min_blocks(&content)? * BLOCK_SIZE)
}

/// The size `write` would pick for `opts.size` 0.
pub fn auto_size(tree: &Tree, opts: &Options) -> Result<u64, Ext4Error> {
    check(opts)?;
    let content = Content::gather(tree, opts)?;
    Ok(auto_blocks(&content)? * BLOCK_SIZE)
}

/// Write `tree` as an ext4 filesystem of `opts.size` bytes (or the
/// automatic size) at byte `offset` of `out`, which must read as zeros
/// there (a new or sparse file); a file shorter than the filesystem's end
/// is extended to it (with a hole). Two passes: the whole layout first,
/// then the writes.
pub fn write(tree: &Tree, opts: &Options, out: &File, offset: u64) -> Result<Summary, Ext4Error> {
    write_following(tree, opts, out, offset, &|_| {})
}

/// [`write()`], telling `progress` how far the filesystem is final as it
/// goes: after a call `progress(n)`, no byte below filesystem offset `n`
/// changes any more, so a reader may take them while the rest is written.
/// (The fixed metadata is written first, then everything else front to
/// back, which the allocation order makes possible.) Not called at the
/// end: when this returns, all of it is final.
pub fn write_following(
    tree: &Tree,
    opts: &Options,
    out: &File,
    offset: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, Ext4Error> {
    check(opts)?;
    let content = Content::gather(tree, opts)?;
    let blocks = if opts.size == 0 {
        auto_blocks(&content)?
    } else {
        opts.size / BLOCK_SIZE
    };
    let plan = match Plan::new(&content, blocks) {
        Ok(p) => p,
        Err(PlanError::NoSpace) => {
            return Err(Ext4Error::TooSmall {
                needed: min_blocks(&content)? * BLOCK_SIZE,
                given: opts.size,
            });
        }
        Err(PlanError::Inodes { needed, max }) => {
            return Err(Ext4Error::TooManyInodes { needed, max });
        }
        Err(PlanError::Other(e)) => return Err(e),
    };
    write::write(&content, &plan, opts, out, offset, progress)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::process::Command;

    use super::*;
    use crate::rootfs::{FileData, Meta, Node};

    /// Names with their hashes.
    type Pool = Vec<(u32, Vec<u8>)>;

    /// Two 8-byte names with the same major hash under `seed`, and a pool
    /// of other names.
    fn collision(seed: &[u32; 4]) -> (Vec<u8>, Vec<u8>, Pool) {
        let mut seen: HashMap<u32, Vec<u8>> = HashMap::new();
        for i in 0u32.. {
            let name = format!("c{i:07x}").into_bytes();
            let h = hash::dx_hash(&name, seed).0;
            if let Some(other) = seen.get(&h).cloned() {
                return (other, name, seen.into_iter().collect());
            }
            seen.insert(h, name);
        }
        unreachable!()
    }

    /// A leaf that starts inside a run of equal hashes carries the
    /// collision bit, and e2fsck and the kernel's rules accept it.
    #[test]
    fn equal_hashes_across_a_leaf_boundary_set_the_collision_bit() {
        let opts = Options {
            uuid: [7; 16],
            hash_seed: [9; 16],
            label: String::new(),
            timestamp: 1_700_000_000,
            size: 0,
        };
        let seed = [0x0909_0909; 4];
        let (a, b, pool) = collision(&seed);
        let h = hash::dx_hash(&a, &seed).0;
        // Names of 8 bytes take 16 bytes each: 255 to a leaf. 254 smaller
        // hashes first, then the pair straddles leaves 0 and 1.
        let mut below: Vec<&Vec<u8>> = pool
            .iter()
            .filter(|(x, _)| *x < h)
            .map(|(_, n)| n)
            .collect();
        let above: Vec<&Vec<u8>> = pool
            .iter()
            .filter(|(x, _)| *x > h)
            .map(|(_, n)| n)
            .take(300)
            .collect();
        below.sort();
        below.truncate(254);
        assert_eq!(below.len(), 254);
        let mut tree = Tree::new();
        let d = tree.mkdir_p("/d", &Meta::new(0o755, 0, 0, 0)).unwrap();
        for name in below.iter().copied().chain([&a, &b]).chain(above) {
            tree.insert(
                d,
                name,
                Node::file(Meta::new(0o644, 0, 0, 0), FileData::default()),
            )
            .unwrap();
        }
        let content = Content::gather(&tree, &opts).unwrap();
        let layout = content
            .inodes
            .iter()
            .find_map(|i| match &i.what {
                layout::What::Dir(l) if l.entries.len() == 556 => Some(l),
                _ => None,
            })
            .unwrap();
        match &layout.shape {
            dir::Shape::Htree {
                leaf_hash, starts, ..
            } => {
                assert_eq!(starts[1], 255);
                assert_eq!(leaf_hash[1], h | 1);
            }
            other => panic!("not an htree: {other:?}"),
        }

        let Some(e2fsck) = crate::testutil::judge("e2fsck") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        let f = File::create(&img).unwrap();
        write(&tree, &opts, &f, 0).unwrap();
        let out = Command::new(&e2fsck).arg("-fn").arg(&img).output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
