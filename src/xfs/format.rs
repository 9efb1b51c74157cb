//! On-disk constants and encoders: big-endian fields put at named
//! offsets, the crc32c XFS stores, the directory/attribute name hash,
//! big timestamps and packed extent records.
//!
//! Offsets follow the structures of the kernel's `xfs_format.h`,
//! `xfs_da_format.h` and `xfs_log_format.h` (names kept in the comments).
//! XFS metadata is big-endian except the stored checksums, which are the
//! crc32c's little-endian bytes.

/// Filesystem block size (what mkfs.xfs picks for anything but tiny disks).
pub(crate) const BLOCK: u64 = 4096;
pub(crate) const BS: usize = BLOCK as usize;
/// Sector size (512-byte sectors; the AG headers take one sector each).
pub(crate) const SECTOR: usize = 512;
pub(crate) const INODE_SIZE: usize = 512;
pub(crate) const INODES_PER_BLOCK: u64 = BLOCK / INODE_SIZE as u64;
pub(crate) const INODES_PER_CHUNK: u64 = 64;
/// Blocks per inode chunk (`sb_inoalignmt`).
pub(crate) const CHUNK_BLOCKS: u64 = INODES_PER_CHUNK / INODES_PER_BLOCK;
/// The v3 inode core (`xfs_dinode`), then the literal area (the forks).
pub(crate) const DINODE_CORE: usize = 176;
pub(crate) const LITERAL: usize = INODE_SIZE - DINODE_CORE;

pub(crate) const NULL32: u32 = u32::MAX;

// Magic numbers.
pub(crate) const SB_MAGIC: u32 = 0x5846_5342; // XFSB
pub(crate) const AGF_MAGIC: u32 = 0x5841_4746; // XAGF
pub(crate) const AGI_MAGIC: u32 = 0x5841_4749; // XAGI
pub(crate) const AGFL_MAGIC: u32 = 0x5841_464c; // XAFL
pub(crate) const BNO_MAGIC: u32 = 0x4142_3342; // AB3B
pub(crate) const CNT_MAGIC: u32 = 0x4142_3343; // AB3C
pub(crate) const INO_MAGIC: u32 = 0x4941_4233; // IAB3
pub(crate) const FINO_MAGIC: u32 = 0x4649_4233; // FIB3
pub(crate) const REFC_MAGIC: u32 = 0x5233_4643; // R3FC
pub(crate) const DINODE_MAGIC: u16 = 0x494e; // IN
pub(crate) const DIR3_BLOCK_MAGIC: u32 = 0x5844_4233; // XDB3
pub(crate) const DIR3_DATA_MAGIC: u32 = 0x5844_4433; // XDD3
pub(crate) const DIR3_FREE_MAGIC: u32 = 0x5844_4633; // XDF3
pub(crate) const DIR3_LEAF1_MAGIC: u16 = 0x3df1;
pub(crate) const DIR3_LEAFN_MAGIC: u16 = 0x3dff;
pub(crate) const DA3_NODE_MAGIC: u16 = 0x3ebe;
pub(crate) const ATTR3_LEAF_MAGIC: u16 = 0x3bee;
pub(crate) const SYMLINK_MAGIC: u32 = 0x5853_4c4d; // XSLM
pub(crate) const LOG_MAGIC: u32 = 0xfeed_babe;

// Superblock feature bits (what mkfs.xfs 5.18 sets by default).
/// `XFS_SB_VERSION_5 | NLINKBIT | ALIGNBIT | LOGV2BIT | EXTFLGBIT |
/// DIRV2BIT | MOREBITSBIT` plus `ATTRBIT` (0x10).
pub(crate) const SB_VERSIONNUM: u16 = 0xb4a5;
/// `LAZYSBCOUNT | ATTR2 | PROJID32BIT | CRC | FTYPE`.
pub(crate) const SB_FEATURES2: u32 = 0x18a;
/// `FINOBT | REFLINK | INOBTCNT`.
pub(crate) const SB_RO_COMPAT: u32 = 0x1 | 0x4 | 0x8;
/// `FTYPE | SPINODES | BIGTIME`.
pub(crate) const SB_INCOMPAT: u32 = 0x1 | 0x2 | 0x8;

// Inode fork formats and flags.
pub(crate) const FMT_DEV: u8 = 0;
pub(crate) const FMT_LOCAL: u8 = 1;
pub(crate) const FMT_EXTENTS: u8 = 2;
pub(crate) const DIFLAG_NEWRTBM: u16 = 1 << 2;
pub(crate) const DIFLAG2_BIGTIME: u64 = 1 << 3;

// Directory geometry (4 KiB directory blocks).
/// `XFS_DIR3_DATA_ENTSIZE` of `.` and `..`, and where the rest start.
pub(crate) const DIR_HDR: usize = 64;
pub(crate) const DIR_FIRST_OFFSET: usize = DIR_HDR + 16 + 16;
/// First directory block of the leaf and free sections (32 and 64 GiB).
pub(crate) const LEAF_DABLK: u64 = (32 << 30) / BLOCK;
pub(crate) const FREE_DABLK: u64 = (64 << 30) / BLOCK;

/// Directory entry file types (`XFS_DIR3_FT_*`).
pub(crate) const FT_REG: u8 = 1;
pub(crate) const FT_DIR: u8 = 2;
pub(crate) const FT_CHR: u8 = 3;
pub(crate) const FT_BLK: u8 = 4;
pub(crate) const FT_FIFO: u8 = 5;
pub(crate) const FT_SOCK: u8 = 6;
pub(crate) const FT_SYMLINK: u8 = 7;

// Attribute namespaces (`XFS_ATTR_*`).
pub(crate) const ATTR_LOCAL: u8 = 1;
pub(crate) const ATTR_ROOT: u8 = 2;
pub(crate) const ATTR_SECURE: u8 = 4;

pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// `xfs_update_cksum`: crc32c (seed `~0`, inverted at the end, which is
/// the standard crc32c) of `b` with the 4-byte field at `at` zeroed,
/// stored little-endian there.
pub(crate) fn set_crc(b: &mut [u8], at: usize) {
    b[at..at + 4].fill(0);
    let crc = crc32c::crc32c(b);
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// `xfs_da_hashname`: the hash of directory entry and attribute names.
pub(crate) fn da_hash(name: &[u8]) -> u32 {
    let mut hash: u32 = 0;
    let mut rest = name;
    while rest.len() >= 4 {
        hash = (u32::from(rest[0]) << 21)
            ^ (u32::from(rest[1]) << 14)
            ^ (u32::from(rest[2]) << 7)
            ^ u32::from(rest[3])
            ^ hash.rotate_left(28);
        rest = &rest[4..];
    }
    match rest.len() {
        3 => {
            (u32::from(rest[0]) << 14)
                ^ (u32::from(rest[1]) << 7)
                ^ u32::from(rest[2])
                ^ hash.rotate_left(21)
        }
        2 => (u32::from(rest[0]) << 7) ^ u32::from(rest[1]) ^ hash.rotate_left(14),
        1 => u32::from(rest[0]) ^ hash.rotate_left(7),
        _ => hash,
    }
}

/// A big timestamp (`XFS_DIFLAG2_BIGTIME`): nanoseconds since
/// 1901-12-13 20:45:52 UTC, clamped to what the format holds.
pub(crate) fn bigtime(sec: i64, nsec: u32) -> u64 {
    const EPOCH_OFFSET: i64 = 1 << 31;
    // The largest second the kernel accepts (`XFS_BIGTIME_TIME_MAX`).
    let max = (u64::MAX / 1_000_000_000) as i64 - EPOCH_OFFSET;
    let sec = sec.clamp(-EPOCH_OFFSET, max);
    (sec + EPOCH_OFFSET) as u64 * 1_000_000_000 + u64::from(nsec.min(999_999_999))
}

/// One packed extent record (`xfs_bmbt_rec`): not unwritten, file block
/// `off`, filesystem block `start` (AG-encoded), `len` blocks.
pub(crate) fn extent_rec(off: u64, start: u64, len: u64) -> [u8; 16] {
    let l0 = (off << 9) | (start >> 43);
    let l1 = (start << 21) | len;
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&l0.to_be_bytes());
    r[8..].copy_from_slice(&l1.to_be_bytes());
    r
}

/// The longest extent one record holds (21 bits of length).
pub(crate) const MAX_EXTENT: u64 = (1 << 21) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hash_as_the_kernel_does() {
        // `.` and `..` as the kernel's xfs_dir_hash_dot / dotdot.
        assert_eq!(da_hash(b"."), 0x2e);
        assert_eq!(da_hash(b".."), (0x2e << 7) ^ 0x2e);
        // Four bytes: one round, nothing rotated in.
        assert_eq!(
            da_hash(b"abcd"),
            (0x61 << 21) ^ (0x62 << 14) ^ (0x63 << 7) ^ 0x64
        );
    }

    #[test]
    fn big_times_count_from_1901() {
        assert_eq!(bigtime(0, 0), (1u64 << 31) * 1_000_000_000);
        assert_eq!(bigtime(-(1 << 31), 5), 5);
        assert_eq!(bigtime(i64::MIN, 0), 0);
    }

    #[test]
    fn extent_records_pack_offset_start_and_length() {
        let r = extent_rec(1, 2, 3);
        assert_eq!(u64::from_be_bytes(r[..8].try_into().unwrap()), 1 << 9);
        assert_eq!(
            u64::from_be_bytes(r[8..].try_into().unwrap()),
            (2 << 21) | 3
        );
    }
}
