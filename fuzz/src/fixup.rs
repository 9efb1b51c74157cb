//! Checksums made right before an input reaches the library.
//!
//! A fuzzer that flips a byte of a tar header, a GPT header or a VHD
//! footer almost never fixes the checksum that covers it, so nearly every
//! mutant would stop at the checksum test and the code behind it would go
//! unexplored. The `tar`, `disk` and `xfs` targets therefore recompute those
//! checksums first, where the input has the structure they cover; a
//! checksum outside that structure stays as the fuzzer left it (and the
//! library's checksum tests still run on every input). Replaying an input
//! goes through the same repair, so a crash reproduces.

use std::fs::File;
use std::os::unix::fs::FileExt;

const BLOCK: usize = 512;

/// A tar header's checksum as GNU tar writes it: the unsigned sum of the
/// header's bytes with the checksum field counted as spaces, six octal
/// digits, NUL, space.
fn tar_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{:06o}\0 ", sum & 0o777777).as_bytes());
}

/// A header's size field, octal or base-256; 0 when unreadable.
fn tar_size(block: &[u8]) -> u64 {
    let f = &block[124..136];
    if f[0] & 0x80 != 0 {
        return f[4..]
            .iter()
            .fold(0u64, |n, &b| n.wrapping_shl(8) | u64::from(b));
    }
    f.iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|&&b| (b'0'..=b'7').contains(&b))
        .fold(0u64, |n, &b| {
            n.wrapping_mul(8).wrapping_add(u64::from(b - b'0'))
        })
}

/// Walk `data` from header to header (each followed by its size rounded
/// to a block, and an old GNU sparse header by its extension blocks) and
/// set each header's checksum, until a zero block or the end.
pub fn tar(data: &mut [u8]) {
    let mut at = 0usize;
    while at + BLOCK <= data.len() {
        let block = &mut data[at..at + BLOCK];
        if block.iter().all(|&b| b == 0) {
            return;
        }
        tar_checksum(block);
        let size = tar_size(block);
        let mut extended = block[156] == b'S' && block[482] != 0;
        at += BLOCK;
        while extended && at + BLOCK <= data.len() {
            extended = data[at + 504] != 0;
            at += BLOCK;
        }
        let Some(next) = size
            .div_ceil(BLOCK as u64)
            .checked_mul(BLOCK as u64)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| at.checked_add(n))
        else {
            return;
        };
        at = next;
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Set the CRCs of a GPT header at byte `at` of `file`, and of the entry
/// array it points to when that lies inside the file.
fn gpt_at(file: &File, len: u64, at: u64) {
    let mut h = [0u8; BLOCK];
    if file.read_exact_at(&mut h, at).is_err() || &h[..8] != b"EFI PART" {
        return;
    }
    let header_size = le32(&h, 12) as usize;
    if !(92..=BLOCK).contains(&header_size) {
        return;
    }
    let lba = u64::from_le_bytes(h[72..80].try_into().unwrap_or_default());
    let (count, size) = (u64::from(le32(&h, 80)), u64::from(le32(&h, 84)));
    let bytes = count.saturating_mul(size);
    if let Some(start) = lba.checked_mul(BLOCK as u64)
        && bytes <= 1 << 20
        && start.saturating_add(bytes) <= len
    {
        let mut entries = vec![0u8; bytes as usize];
        if file.read_exact_at(&mut entries, start).is_ok() {
            h[88..92].copy_from_slice(&crc32fast::hash(&entries).to_le_bytes());
        }
    }
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h[..header_size]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    let _ = file.write_all_at(&h, at);
}

/// A fixed VHD footer's checksum: the one's complement of the sum of its
/// bytes, the checksum field counted as zero (big-endian).
fn vhd_footer(file: &File, len: u64) {
    let mut f = [0u8; BLOCK];
    if len < 2 * BLOCK as u64 || file.read_exact_at(&mut f, len - BLOCK as u64).is_err() {
        return;
    }
    if &f[..8] != b"conectix" {
        return;
    }
    f[64..68].fill(0);
    let sum = f.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    f[64..68].copy_from_slice(&(!sum).to_be_bytes());
    let _ = file.write_all_at(&f, len - BLOCK as u64);
}

/// The GPT headers (primary at LBA 1, backup at the last sector of a raw
/// disk or of a fixed VHD's data) and the VHD footer of a disk image.
pub fn disk(file: &File) {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return;
    };
    for at in [
        BLOCK as u64,
        len.saturating_sub(BLOCK as u64),
        len.saturating_sub(2 * BLOCK as u64),
    ] {
        if at >= BLOCK as u64 && at + BLOCK as u64 <= len {
            gpt_at(file, len, at);
        }
    }
    vhd_footer(file, len);
}

/// Set XFS's CRC32C (little-endian at `crc`, over `len` bytes at `at`
/// with the field zeroed).
fn xfs_crc(file: &File, at: u64, len: usize, crc: usize) {
    let mut b = vec![0u8; len];
    if file.read_exact_at(&mut b, at).is_err() {
        return;
    }
    b[crc..crc + 4].fill(0);
    let c = crc32c::crc32c(&b);
    let _ = file.write_all_at(&c.to_le_bytes(), at + crc as u64);
}

/// The most bytes of an image the XFS repair looks through.
const XFS_SCAN: u64 = 256 << 20;

/// The CRCs of an XFS image's metadata: the superblock, then, in the
/// parts of the image that hold data (`SEEK_DATA`), every inode (magic
/// `IN`, version 3, at a multiple of the inode size) and every block
/// whose magic names it (bmap B+tree, directory data, free index and
/// leaf blocks, symlink and remote attribute blocks, dabtree nodes and
/// attribute leaves), each over its own length as the superblock gives
/// it.
pub fn xfs(file: &File) {
    use std::os::fd::AsRawFd;
    let mut sb = [0u8; 512];
    if file.read_exact_at(&mut sb, 0).is_err() || &sb[..4] != b"XFSB" {
        return;
    }
    let be16 = |b: &[u8], at: usize| usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let bs = u32::from_be_bytes([sb[4], sb[5], sb[6], sb[7]]) as usize;
    let (sect, isize) = (be16(&sb, 0x66), be16(&sb, 0x68));
    let dirblk = bs.checked_shl(u32::from(sb[0xC0])).unwrap_or(0);
    let ok = |n: usize, lo: usize, hi: usize| n.is_power_of_two() && (lo..=hi).contains(&n);
    if !ok(bs, 512, 65536) || !ok(sect, 512, bs) || !ok(isize, 256, 2048) || !ok(dirblk, bs, 65536)
    {
        return;
    }
    xfs_crc(file, 0, sect, 0xE0);
    let fd = file.as_raw_fd();
    let mut pos: i64 = 0;
    let mut scanned = 0u64;
    loop {
        // SAFETY: lseek on a descriptor this function borrows for its
        // whole run; no memory is passed.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            return;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole <= data {
            return;
        }
        let mut at = (data as u64) / BLOCK as u64 * BLOCK as u64;
        while at < hole as u64 {
            if at > 0 {
                xfs_block(file, at, bs, isize, dirblk);
            }
            at += BLOCK as u64;
            scanned += BLOCK as u64;
            if scanned > XFS_SCAN {
                return;
            }
        }
        pos = hole;
    }
}

/// The CRC of the XFS structure at `at`, if one starts there.
fn xfs_block(file: &File, at: u64, bs: usize, isize: usize, dirblk: usize) {
    let mut h = [0u8; 16];
    if file.read_exact_at(&mut h, at).is_err() {
        return;
    }
    if &h[..2] == b"IN" && h[4] == 3 && at.is_multiple_of(isize as u64) {
        return xfs_crc(file, at, isize, 0x64);
    }
    if !at.is_multiple_of(bs as u64) {
        return;
    }
    match (&h[..4], u16::from_be_bytes([h[8], h[9]])) {
        (b"BMA3", _) => xfs_crc(file, at, bs, 64),
        (b"XDB3" | b"XDD3" | b"XDF3", _) => xfs_crc(file, at, dirblk, 4),
        (b"XSLM" | b"XARM", _) => xfs_crc(file, at, bs, 12),
        (_, 0x3df1 | 0x3dff) => xfs_crc(file, at, dirblk, 12),
        (_, 0x3bee | 0x3ebe) => xfs_crc(file, at, bs, 12),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_tar_checksum_is_made_right_and_a_good_one_kept() {
        let (_, good) = crate::seeds::seeds("tar").remove(0);
        let mut copy = good.clone();
        tar(&mut copy);
        assert!(copy == good, "the repair changed a valid archive");
        let mut bad = good.clone();
        bad[0] ^= 1; // the first header's name
        tar(&mut bad);
        let mut want = good.clone();
        want[0] ^= 1;
        tar_checksum(&mut want[..BLOCK]);
        assert!(bad == want);
        assert!(bad[148..156] != good[148..156]);
    }

    #[test]
    fn gpt_and_vhd_checksums_are_made_right_and_good_ones_kept() {
        use ingot::disk::{gpt, view};
        for (name, seed) in crate::seeds::seeds("disk") {
            let f = crate::sparse::decode(&seed).unwrap();
            disk(&f);
            let enc = crate::sparse::encode(&f).unwrap();
            assert!(enc == seed, "{name}: the repair changed a valid image");
            if name.ends_with(".vmdk") || name.ends_with(".qcow2") {
                continue; // its GPT is inside grains or clusters
            }
            // Another disk GUID in both GPT headers, and a footer byte.
            let len = f.metadata().unwrap().len();
            let vhd = name.ends_with(".vhd");
            let backup = len - if vhd { 1024 } else { 512 };
            for at in [512 + 56, backup + 56] {
                f.write_all_at(b"\x01", at).unwrap();
            }
            if vhd {
                f.write_all_at(b"\x01", len - 512 + 100).unwrap();
            }
            let open = |f: &File| {
                let f = f.try_clone().unwrap();
                let format = view::detect(&f).unwrap().unwrap();
                let mut d = view::open(f, format)?;
                gpt::read_disk(&mut *d)
            };
            assert!(open(&f).is_err(), "{name}: the broken image reads");
            disk(&f);
            let t = open(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                !t.from_backup && t.disk_guid.to_uefi_bytes()[0] == 1,
                "{name}"
            );
        }
    }

    #[test]
    fn xfs_crcs_are_made_right_and_good_ones_kept() {
        use ingot::fsread::ReadFs;
        for (name, seed) in crate::seeds::seeds("xfs") {
            let f = crate::sparse::decode(&seed).unwrap();
            xfs(&f);
            let enc = crate::sparse::encode(&f).unwrap();
            assert!(enc == seed, "{name}: the repair changed a valid filesystem");
            // The root inode's mode changed to 0700: its CRC is made right,
            // so the reader sees the new mode rather than a CRC error.
            let v = ingot::disk::view::RawView::new(f.try_clone().unwrap()).unwrap();
            let size = ingot::disk::view::DiskRead::size(&v);
            let fs = ingot::fsread::xfs::Fs::open(Box::new(v), 0, size).unwrap();
            let root = fs.root_ino();
            drop(fs);
            let mut sb = [0u8; 512];
            f.read_exact_at(&mut sb, 0).unwrap();
            let bs = u64::from(u32::from_be_bytes([sb[4], sb[5], sb[6], sb[7]]));
            let isize = u64::from(u16::from_be_bytes([sb[0x68], sb[0x69]]));
            let inopblog = u32::from(sb[0x7B]);
            // One AG in the seed: the inode's block is its number's high bits.
            let at = (root >> inopblog) * bs + (root & ((1 << inopblog) - 1)) * isize;
            f.write_all_at(&0o040700u16.to_be_bytes(), at + 2).unwrap();
            xfs(&f);
            let v = ingot::disk::view::RawView::new(f).unwrap();
            let mut fs = ingot::fsread::xfs::Fs::open(Box::new(v), 0, size).unwrap();
            assert_eq!(fs.stat(root).unwrap().mode, 0o700, "{name}");
        }
    }
}
