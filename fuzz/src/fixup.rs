//! Checksums made right before an input reaches the library.
//!
//! A fuzzer that flips a byte of a tar header, a GPT header or a VHD
//! footer almost never fixes the checksum that covers it, so nearly every
//! mutant would stop at the checksum test and the code behind it would go
//! unexplored. The `tar` and `disk` targets therefore recompute those
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
}
