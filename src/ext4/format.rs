//! The on-disk structures, as the kernel's ext4 documentation names them
//! (`Documentation/filesystems/ext4/*.rst` in the Linux tree), plus the
//! jbd2 journal superblock (`journal.rst`).
//!
//! Every struct is `#[repr(C)]` and made only of byte arrays (zerocopy's
//! little-endian [`Le16`]/[`Le32`]/[`Le64`] and the big-endian [`Be32`] of
//! jbd2), so it has no padding, alignment 1, and any byte pattern is a valid
//! value: zerocopy's derives check that at compile time. The `on_disk!`
//! macro asserts each size and gives `zeroed()` and `as_bytes()`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// A little-endian `__le16`.
pub(crate) type Le16 = zerocopy::little_endian::U16;
/// A little-endian `__le32`.
pub(crate) type Le32 = zerocopy::little_endian::U32;
/// A little-endian `__le64`.
pub(crate) type Le64 = zerocopy::little_endian::U64;
/// A big-endian `__be32` (jbd2 is big-endian).
pub(crate) type Be32 = zerocopy::big_endian::U32;

/// Asserts the size of an on-disk struct at compile time and gives it
/// `zeroed()` and `as_bytes()` (zerocopy's, under the names the writer
/// uses).
macro_rules! on_disk {
    ($name:ident, $size:expr) => {
        const _: () = assert!(std::mem::size_of::<$name>() == $size);
        impl $name {
            pub(crate) const SIZE: usize = $size;

            /// All fields zero.
            pub(crate) fn zeroed() -> Self {
                zerocopy::FromZeros::new_zeroed()
            }

            /// The struct's bytes, exactly as they go on disk.
            pub(crate) fn as_bytes(&self) -> &[u8] {
                zerocopy::IntoBytes::as_bytes(self)
            }
        }
    };
}

// ---------------------------------------------------------------------------
// super.rst: "Super Block", `struct ext4_super_block`.

/// `s_magic`.
pub(crate) const EXT4_SUPER_MAGIC: u16 = 0xEF53;
/// `s_state`: cleanly unmounted.
pub(crate) const EXT4_VALID_FS: u16 = 0x0001;
/// `s_errors`: continue.
pub(crate) const EXT4_ERRORS_CONTINUE: u16 = 1;
/// `s_rev_level`: dynamic inode sizes.
pub(crate) const EXT4_DYNAMIC_REV: u32 = 1;

/// super.rst, super_compat.
pub(crate) const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub(crate) const COMPAT_EXT_ATTR: u32 = 0x8;
pub(crate) const COMPAT_DIR_INDEX: u32 = 0x20;
/// super.rst, super_incompat.
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_EXTENTS: u32 = 0x40;
pub(crate) const INCOMPAT_64BIT: u32 = 0x80;
pub(crate) const INCOMPAT_FLEX_BG: u32 = 0x200;
/// super.rst, super_rocompat.
pub(crate) const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub(crate) const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub(crate) const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub(crate) const RO_COMPAT_DIR_NLINK: u32 = 0x20;
pub(crate) const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
pub(crate) const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// super.rst, super_mountopts: `user_xattr` and `acl`, as mke2fs.conf says.
pub(crate) const EXT4_DEFM_XATTR_USER: u32 = 0x0004;
pub(crate) const EXT4_DEFM_ACL: u32 = 0x0008;
/// super.rst, super_flags: the unsigned directory hash is in use.
pub(crate) const EXT2_FLAGS_UNSIGNED_HASH: u32 = 0x0002;
/// super.rst, super_def_hash: half MD4.
pub(crate) const DX_HASH_HALF_MD4: u8 = 1;
/// `s_checksum_type`: crc32c.
pub(crate) const EXT4_CRC32C_CHKSUM: u8 = 1;
/// `s_jnl_backup_type`: `s_jnl_blocks` holds a copy of the journal inode's
/// `i_block` and size.
pub(crate) const EXT3_JNL_BACKUP_BLOCKS: u8 = 1;

/// super.rst: `struct ext4_super_block`, 1024 bytes at byte 1024 of the
/// filesystem (and at the start of each backup group).
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct SuperBlock {
    pub s_inodes_count: Le32,
    pub s_blocks_count_lo: Le32,
    pub s_r_blocks_count_lo: Le32,
    pub s_free_blocks_count_lo: Le32,
    pub s_free_inodes_count: Le32,
    pub s_first_data_block: Le32,
    pub s_log_block_size: Le32,
    pub s_log_cluster_size: Le32,
    pub s_blocks_per_group: Le32,
    pub s_clusters_per_group: Le32,
    pub s_inodes_per_group: Le32,
    pub s_mtime: Le32,
    pub s_wtime: Le32,
    pub s_mnt_count: Le16,
    pub s_max_mnt_count: Le16,
    pub s_magic: Le16,
    pub s_state: Le16,
    pub s_errors: Le16,
    pub s_minor_rev_level: Le16,
    pub s_lastcheck: Le32,
    pub s_checkinterval: Le32,
    pub s_creator_os: Le32,
    pub s_rev_level: Le32,
    pub s_def_resuid: Le16,
    pub s_def_resgid: Le16,
    pub s_first_ino: Le32,
    pub s_inode_size: Le16,
    pub s_block_group_nr: Le16,
    pub s_feature_compat: Le32,
    pub s_feature_incompat: Le32,
    pub s_feature_ro_compat: Le32,
    pub s_uuid: [u8; 16],
    pub s_volume_name: [u8; 16],
    pub s_last_mounted: [u8; 64],
    pub s_algorithm_usage_bitmap: Le32,
    pub s_prealloc_blocks: u8,
    pub s_prealloc_dir_blocks: u8,
    pub s_reserved_gdt_blocks: Le16,
    pub s_journal_uuid: [u8; 16],
    pub s_journal_inum: Le32,
    pub s_journal_dev: Le32,
    pub s_last_orphan: Le32,
    pub s_hash_seed: [Le32; 4],
    pub s_def_hash_version: u8,
    pub s_jnl_backup_type: u8,
    pub s_desc_size: Le16,
    pub s_default_mount_opts: Le32,
    pub s_first_meta_bg: Le32,
    pub s_mkfs_time: Le32,
    pub s_jnl_blocks: [Le32; 17],
    pub s_blocks_count_hi: Le32,
    pub s_r_blocks_count_hi: Le32,
    pub s_free_blocks_count_hi: Le32,
    pub s_min_extra_isize: Le16,
    pub s_want_extra_isize: Le16,
    pub s_flags: Le32,
    pub s_raid_stride: Le16,
    pub s_mmp_interval: Le16,
    pub s_mmp_block: Le64,
    pub s_raid_stripe_width: Le32,
    pub s_log_groups_per_flex: u8,
    pub s_checksum_type: u8,
    pub s_reserved_pad: Le16,
    pub s_kbytes_written: Le64,
    pub s_snapshot_inum: Le32,
    pub s_snapshot_id: Le32,
    pub s_snapshot_r_blocks_count: Le64,
    pub s_snapshot_list: Le32,
    pub s_error_count: Le32,
    pub s_first_error_time: Le32,
    pub s_first_error_ino: Le32,
    pub s_first_error_block: Le64,
    pub s_first_error_func: [u8; 32],
    pub s_first_error_line: Le32,
    pub s_last_error_time: Le32,
    pub s_last_error_ino: Le32,
    pub s_last_error_line: Le32,
    pub s_last_error_block: Le64,
    pub s_last_error_func: [u8; 32],
    pub s_mount_opts: [u8; 64],
    pub s_usr_quota_inum: Le32,
    pub s_grp_quota_inum: Le32,
    pub s_overhead_blocks: Le32,
    pub s_backup_bgs: [Le32; 2],
    pub s_encrypt_algos: [u8; 4],
    pub s_encrypt_pw_salt: [u8; 16],
    pub s_lpf_ino: Le32,
    pub s_prj_quota_inum: Le32,
    pub s_checksum_seed: Le32,
    pub s_wtime_hi: u8,
    pub s_mtime_hi: u8,
    pub s_mkfs_time_hi: u8,
    pub s_lastcheck_hi: u8,
    pub s_first_error_time_hi: u8,
    pub s_last_error_time_hi: u8,
    pub s_pad: [u8; 2],
    pub s_encoding: Le16,
    pub s_encoding_flags: Le16,
    pub s_orphan_file_inum: Le32,
    pub s_reserved: [Le32; 94],
    pub s_checksum: Le32,
}
on_disk!(SuperBlock, 1024);
/// Offset of `s_checksum`: the superblock checksum covers the bytes before it.
pub(crate) const SUPERBLOCK_CSUM_OFFSET: usize = 0x3FC;

// ---------------------------------------------------------------------------
// group_descr.rst: "Block Group Descriptors", `struct ext4_group_desc`.

/// group_descr.rst, bgflags: the inode bitmap is not initialized (read
/// as all free).
pub(crate) const EXT4_BG_INODE_UNINIT: u16 = 0x1;
/// group_descr.rst, bgflags: the inode table is zeroed.
pub(crate) const EXT4_BG_INODE_ZEROED: u16 = 0x4;

/// group_descr.rst: the 64-byte descriptor of the 64bit feature.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct GroupDesc {
    pub bg_block_bitmap_lo: Le32,
    pub bg_inode_bitmap_lo: Le32,
    pub bg_inode_table_lo: Le32,
    pub bg_free_blocks_count_lo: Le16,
    pub bg_free_inodes_count_lo: Le16,
    pub bg_used_dirs_count_lo: Le16,
    pub bg_flags: Le16,
    pub bg_exclude_bitmap_lo: Le32,
    pub bg_block_bitmap_csum_lo: Le16,
    pub bg_inode_bitmap_csum_lo: Le16,
    pub bg_itable_unused_lo: Le16,
    pub bg_checksum: Le16,
    pub bg_block_bitmap_hi: Le32,
    pub bg_inode_bitmap_hi: Le32,
    pub bg_inode_table_hi: Le32,
    pub bg_free_blocks_count_hi: Le16,
    pub bg_free_inodes_count_hi: Le16,
    pub bg_used_dirs_count_hi: Le16,
    pub bg_itable_unused_hi: Le16,
    pub bg_exclude_bitmap_hi: Le32,
    pub bg_block_bitmap_csum_hi: Le16,
    pub bg_inode_bitmap_csum_hi: Le16,
    pub bg_reserved: Le32,
}
on_disk!(GroupDesc, 64);
/// Offset of `bg_checksum` in [`GroupDesc`].
pub(crate) const GROUP_DESC_CSUM_OFFSET: usize = 0x1E;

// ---------------------------------------------------------------------------
// inodes.rst: "Index Nodes", `struct ext4_inode`.

/// inodes.rst, i_mode: the file types.
pub(crate) const S_IFIFO: u16 = 0x1000;
pub(crate) const S_IFCHR: u16 = 0x2000;
pub(crate) const S_IFDIR: u16 = 0x4000;
pub(crate) const S_IFBLK: u16 = 0x6000;
pub(crate) const S_IFREG: u16 = 0x8000;
pub(crate) const S_IFLNK: u16 = 0xA000;
pub(crate) const S_IFSOCK: u16 = 0xC000;
/// inodes.rst, i_flags.
pub(crate) const EXT4_INDEX_FL: u32 = 0x1000;
pub(crate) const EXT4_EXTENTS_FL: u32 = 0x80000;

/// The inode record size (`s_inode_size`).
pub(crate) const INODE_SIZE: usize = 256;
/// `i_extra_isize`: the fields through `i_projid` (inodes.rst, "Inode Size").
pub(crate) const EXTRA_ISIZE: u16 = 32;
/// Where in-inode extended attributes start (after `i_extra_isize`).
pub(crate) const IBODY_XATTR_OFFSET: usize = 128 + EXTRA_ISIZE as usize;

/// inodes.rst: the inode through `i_projid` (128 + `i_extra_isize` bytes);
/// the rest of the 256-byte record holds in-inode extended attributes.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct Inode {
    pub i_mode: Le16,
    pub i_uid: Le16,
    pub i_size_lo: Le32,
    pub i_atime: Le32,
    pub i_ctime: Le32,
    pub i_mtime: Le32,
    pub i_dtime: Le32,
    pub i_gid: Le16,
    pub i_links_count: Le16,
    pub i_blocks_lo: Le32,
    pub i_flags: Le32,
    /// `i_osd1`, Linux: `l_i_version`.
    pub l_i_version: Le32,
    pub i_block: [u8; 60],
    pub i_generation: Le32,
    pub i_file_acl_lo: Le32,
    pub i_size_high: Le32,
    pub i_obso_faddr: Le32,
    /// `i_osd2`, Linux: `l_i_blocks_high`.
    pub l_i_blocks_high: Le16,
    pub l_i_file_acl_high: Le16,
    pub l_i_uid_high: Le16,
    pub l_i_gid_high: Le16,
    pub l_i_checksum_lo: Le16,
    pub l_i_reserved: Le16,
    pub i_extra_isize: Le16,
    pub i_checksum_hi: Le16,
    pub i_ctime_extra: Le32,
    pub i_mtime_extra: Le32,
    pub i_atime_extra: Le32,
    pub i_crtime: Le32,
    pub i_crtime_extra: Le32,
    pub i_version_hi: Le32,
    pub i_projid: Le32,
}
on_disk!(Inode, 160);
/// Offsets of the two checksum halves in the inode record.
pub(crate) const INODE_CSUM_LO_OFFSET: usize = 0x7C;
pub(crate) const INODE_CSUM_HI_OFFSET: usize = 0x82;

// ---------------------------------------------------------------------------
// ifork.rst: "Extent Tree".

/// `eh_magic`.
pub(crate) const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// The longest initialized extent (ifork.rst, `ee_len`).
pub(crate) const EXT_INIT_MAX_LEN: u32 = 32768;

/// ifork.rst: `struct ext4_extent_header`.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct ExtentHeader {
    pub eh_magic: Le16,
    pub eh_entries: Le16,
    pub eh_max: Le16,
    pub eh_depth: Le16,
    pub eh_generation: Le32,
}
on_disk!(ExtentHeader, 12);

/// ifork.rst: `struct ext4_extent_idx`, an interior node's entry.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct ExtentIdx {
    pub ei_block: Le32,
    pub ei_leaf_lo: Le32,
    pub ei_leaf_hi: Le16,
    pub ei_unused: Le16,
}
on_disk!(ExtentIdx, 12);

/// ifork.rst: `struct ext4_extent`, a leaf's entry.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct Extent {
    pub ee_block: Le32,
    pub ee_len: Le16,
    pub ee_start_hi: Le16,
    pub ee_start_lo: Le32,
}
on_disk!(Extent, 12);

/// ifork.rst: `struct ext4_extent_tail`, after `eh_max` entries of a tree
/// block.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct ExtentTail {
    pub eb_checksum: Le32,
}
on_disk!(ExtentTail, 4);

// ---------------------------------------------------------------------------
// directory.rst: "Directory Entries".

/// directory.rst, ftype.
pub(crate) const FT_REG_FILE: u8 = 1;
pub(crate) const FT_DIR: u8 = 2;
pub(crate) const FT_CHRDEV: u8 = 3;
pub(crate) const FT_BLKDEV: u8 = 4;
pub(crate) const FT_FIFO: u8 = 5;
pub(crate) const FT_SOCK: u8 = 6;
pub(crate) const FT_SYMLINK: u8 = 7;
/// `det_reserved_ft` of the checksum tail.
pub(crate) const EXT4_FT_DIR_CSUM: u8 = 0xDE;
/// The longest entry name.
pub(crate) const EXT4_NAME_LEN: usize = 255;

/// directory.rst: the fixed part of `struct ext4_dir_entry_2`; `name_len`
/// name bytes follow, and `rec_len` covers both, rounded up to 4.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct DirEntry2 {
    pub inode: Le32,
    pub rec_len: Le16,
    pub name_len: u8,
    pub file_type: u8,
}
on_disk!(DirEntry2, 8);

/// directory.rst: `struct ext4_dir_entry_tail`, the last 12 bytes of a
/// leaf block, holding its checksum.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct DirEntryTail {
    pub det_reserved_zero1: Le32,
    pub det_rec_len: Le16,
    pub det_reserved_zero2: u8,
    pub det_reserved_ft: u8,
    pub det_checksum: Le32,
}
on_disk!(DirEntryTail, 12);

/// directory.rst: `struct dx_root_info`, after `.` and `..` in an htree
/// root block.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct DxRootInfo {
    pub reserved_zero: Le32,
    pub hash_version: u8,
    pub info_length: u8,
    pub indirect_levels: u8,
    pub unused_flags: u8,
}
on_disk!(DxRootInfo, 8);

/// directory.rst: the `limit`, `count` and `block` that head the
/// `dx_entry` array of `dx_root` and `dx_node` (the first entry's hash
/// slot holds `limit` and `count`).
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct DxCountLimit {
    pub limit: Le16,
    pub count: Le16,
    pub block: Le32,
}
on_disk!(DxCountLimit, 8);

/// directory.rst: `struct dx_entry`.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct DxEntry {
    pub hash: Le32,
    pub block: Le32,
}
on_disk!(DxEntry, 8);

/// directory.rst: `struct dx_tail`, the last 8 bytes of an htree index
/// block.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct DxTail {
    pub dt_reserved: Le32,
    pub dt_checksum: Le32,
}
on_disk!(DxTail, 8);

// ---------------------------------------------------------------------------
// attributes.rst: "Extended Attributes".

/// `h_magic` of both xattr headers.
pub(crate) const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;

/// attributes.rst: `struct ext4_xattr_header`, at the start of an xattr
/// block.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct XattrHeader {
    pub h_magic: Le32,
    pub h_refcount: Le32,
    pub h_blocks: Le32,
    pub h_hash: Le32,
    pub h_checksum: Le32,
    pub h_reserved: [Le32; 3],
}
on_disk!(XattrHeader, 32);
/// Offset of `h_checksum` in [`XattrHeader`].
pub(crate) const XATTR_HEADER_CSUM_OFFSET: usize = 0x10;

/// attributes.rst: `struct ext4_xattr_ibody_header`, after `i_extra_isize`.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct XattrIbodyHeader {
    pub h_magic: Le32,
}
on_disk!(XattrIbodyHeader, 4);

/// attributes.rst: the fixed part of `struct ext4_xattr_entry`;
/// `e_name_len` name bytes follow, padded to 4.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct XattrEntry {
    pub e_name_len: u8,
    pub e_name_index: u8,
    pub e_value_offs: Le16,
    pub e_value_inum: Le32,
    pub e_value_size: Le32,
    pub e_hash: Le32,
}
on_disk!(XattrEntry, 16);

// ---------------------------------------------------------------------------
// journal.rst: "Journal (jbd2)", `journal_superblock_t` (big-endian).

/// `h_magic` of every jbd2 block header.
pub(crate) const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;
/// `h_blocktype`: superblock version 2.
pub(crate) const JBD2_SUPERBLOCK_V2: u32 = 4;

/// journal.rst: `journal_superblock_t`, in block 0 of the journal.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub(crate) struct JournalSuperblock {
    pub h_magic: Be32,
    pub h_blocktype: Be32,
    pub h_sequence: Be32,
    pub s_blocksize: Be32,
    pub s_maxlen: Be32,
    pub s_first: Be32,
    pub s_sequence: Be32,
    pub s_start: Be32,
    pub s_errno: Be32,
    pub s_feature_compat: Be32,
    pub s_feature_incompat: Be32,
    pub s_feature_ro_compat: Be32,
    pub s_uuid: [u8; 16],
    pub s_nr_users: Be32,
    pub s_dynsuper: Be32,
    pub s_max_transaction: Be32,
    pub s_max_trans_data: Be32,
    pub s_checksum_type: u8,
    pub s_padding2: [u8; 3],
    pub s_num_fc_blks: Be32,
    pub s_head: Be32,
    pub s_padding: [Be32; 40],
    pub s_checksum: Be32,
    pub s_users: [u8; 16 * 48],
}
on_disk!(JournalSuperblock, 1024);

// Field offsets the documentation states, checked at compile time.
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(SuperBlock, s_uuid) == 0x68);
    assert!(offset_of!(SuperBlock, s_hash_seed) == 0xEC);
    assert!(offset_of!(SuperBlock, s_desc_size) == 0xFE);
    assert!(offset_of!(SuperBlock, s_jnl_blocks) == 0x10C);
    assert!(offset_of!(SuperBlock, s_blocks_count_hi) == 0x150);
    assert!(offset_of!(SuperBlock, s_log_groups_per_flex) == 0x174);
    assert!(offset_of!(SuperBlock, s_kbytes_written) == 0x178);
    assert!(offset_of!(SuperBlock, s_mount_opts) == 0x200);
    assert!(offset_of!(SuperBlock, s_checksum_seed) == 0x270);
    assert!(offset_of!(SuperBlock, s_orphan_file_inum) == 0x280);
    assert!(offset_of!(SuperBlock, s_checksum) == SUPERBLOCK_CSUM_OFFSET);
    assert!(offset_of!(GroupDesc, bg_checksum) == GROUP_DESC_CSUM_OFFSET);
    assert!(offset_of!(GroupDesc, bg_block_bitmap_hi) == 0x20);
    assert!(offset_of!(Inode, i_block) == 0x28);
    assert!(offset_of!(Inode, i_generation) == 0x64);
    assert!(offset_of!(Inode, l_i_blocks_high) == 0x74);
    assert!(offset_of!(Inode, l_i_checksum_lo) == INODE_CSUM_LO_OFFSET);
    assert!(offset_of!(Inode, i_extra_isize) == 0x80);
    assert!(offset_of!(Inode, i_checksum_hi) == INODE_CSUM_HI_OFFSET);
    assert!(offset_of!(Inode, i_projid) == 0x9C);
    assert!(Inode::SIZE == IBODY_XATTR_OFFSET);
    assert!(offset_of!(XattrHeader, h_checksum) == XATTR_HEADER_CSUM_OFFSET);
    assert!(offset_of!(JournalSuperblock, s_uuid) == 0x30);
    assert!(offset_of!(JournalSuperblock, s_checksum_type) == 0x50);
    assert!(offset_of!(JournalSuperblock, s_checksum) == 0xFC);
    assert!(offset_of!(JournalSuperblock, s_users) == 0x100);
};
