//! A read-only FAT reader for the EFI System Partition of a base that is
//! a disk image: its files land under `/boot/efi` of the tree.
//!
//! What it reads, from Microsoft's "FAT: General Overview of On-Disk
//! Format" (the FAT32 File System Specification, 1.03): the BIOS
//! parameter block, FAT12, FAT16 and FAT32 (told apart by their cluster
//! count, as the specification says), the fixed root directory of
//! FAT12/16 and the root cluster chain of FAT32, short names with the
//! lowercase flags Windows NT sets (byte 12), long names (VFAT entries of
//! attribute 0x0F, UTF-16), and modification times (local time, taken as
//! UTC, as mtools does). Deleted entries and the volume label are skipped.
//!
//! Why our own: `disk/fat.rs` is a writer; the `fatfs` crate reads FAT but
//! through `Read + Seek` of a partition, while this needs cluster runs as
//! disk byte ranges, so a raw image's files stay references into it.
//!
//! Limits, each named in its error: sectors of 512 to 4096 bytes; every
//! cluster inside the volume; a chain no longer than the volume has
//! clusters (a loop is an error); a directory cluster reached twice is a
//! cycle; at most [`MAX_ENTRIES`] entries and [`MAX_DEPTH`] directories
//! deep; a FAT of at most 64 MiB.

use std::collections::HashSet;

use super::{FsError, Mapped, corrupt};
use crate::disk::view::DiskRead;

type Result<T> = std::result::Result<T, FsError>;

/// The most entries read from one volume.
pub const MAX_ENTRIES: usize = 1 << 20;
/// The deepest directory entered.
pub const MAX_DEPTH: usize = 64;
const MAX_FAT_BYTES: u64 = 64 << 20;

/// One entry of the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the volume, `/` separated, without a leading `/`.
    pub path: Vec<u8>,
    pub dir: bool,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// A file's data, as disk byte ranges.
    pub data: Vec<Mapped>,
}

/// A FAT volume inside a disk.
pub struct Fat<'a> {
    disk: &'a mut dyn DiskRead,
    offset: u64,
    cluster_bytes: u64,
    data_start: u64,
    clusters: u32,
    kind: u8,
    fat: Vec<u8>,
    root: Root,
}

enum Root {
    Fixed { at: u64, len: u64 },
    Chain(u32),
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> Fat<'a> {
    /// Open the volume at `offset` of `disk`, `size` bytes long.
    pub fn open(disk: &'a mut dyn DiskRead, offset: u64, size: u64) -> Result<Fat<'a>> {
        let mut b = [0u8; 512];
        if size < 512 {
            return Err(corrupt("a FAT volume too small for its boot sector"));
        }
        read(disk, offset, &mut b)?;
        let bps = u64::from(le16(&b, 11));
        let spc = u64::from(b[13]);
        let reserved = u64::from(le16(&b, 14));
        let nfats = u64::from(b[16]);
        let root_entries = u64::from(le16(&b, 17));
        let total = match le16(&b, 19) {
            0 => u64::from(le32(&b, 32)),
            n => u64::from(n),
        };
        let fat_sectors = match le16(&b, 22) {
            0 => u64::from(le32(&b, 36)),
            n => u64::from(n),
        };
        if !matches!(bps, 512 | 1024 | 2048 | 4096)
            || !spc.is_power_of_two()
            || reserved == 0
            || nfats == 0
            || total * bps > size
        {
            return Err(corrupt("a FAT boot sector with an impossible geometry"));
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let data_sector = reserved + nfats * fat_sectors + root_sectors;
        let clusters = total.saturating_sub(data_sector) / spc;
        if clusters == 0 || clusters > 0x0fff_fff5 || fat_sectors * bps > MAX_FAT_BYTES {
            return Err(corrupt(format!("a FAT volume of {clusters} clusters")));
        }
        let kind = if clusters < 4085 {
            12
        } else if clusters < 65525 {
            16
        } else {
            32
        };
        let need = (clusters + 2) * u64::from(kind) / 8 + 2;
        if need > fat_sectors * bps {
            return Err(corrupt("a FAT too short for its volume's clusters"));
        }
        let mut fat = vec![0u8; (fat_sectors * bps) as usize];
        read(disk, offset + reserved * bps, &mut fat)?;
        let root = if kind == 32 {
            Root::Chain(le32(&b, 44))
        } else {
            Root::Fixed {
                at: (reserved + nfats * fat_sectors) * bps,
                len: root_sectors * bps,
            }
        };
        Ok(Fat {
            disk,
            offset,
            cluster_bytes: spc * bps,
            data_start: data_sector * bps,
            clusters: clusters as u32,
            kind,
            fat,
            root,
        })
    }

    fn next(&self, n: u32) -> Option<u32> {
        let n = n as usize;
        let v = match self.kind {
            12 => {
                let v = le16(&self.fat, n + n / 2);
                u32::from(if n % 2 == 1 { v >> 4 } else { v & 0xfff })
            }
            16 => u32::from(le16(&self.fat, n * 2)),
            _ => le32(&self.fat, n * 4) & 0x0fff_ffff,
        };
        let eoc = match self.kind {
            12 => 0xff8,
            16 => 0xfff8,
            _ => 0x0fff_fff8,
        };
        (v < eoc).then_some(v)
    }

    /// The clusters of the chain from `first`, each inside the volume.
    fn chain(&self, first: u32) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        loop {
            if c < 2 || c >= self.clusters + 2 {
                return Err(corrupt(format!(
                    "a FAT chain names cluster {c}, outside the volume"
                )));
            }
            out.push(c);
            if out.len() > self.clusters as usize {
                return Err(corrupt("a FAT chain loops"));
            }
            match self.next(c) {
                Some(n) => c = n,
                None => return Ok(out),
            }
        }
    }

    fn cluster_at(&self, c: u32) -> u64 {
        self.offset + self.data_start + u64::from(c - 2) * self.cluster_bytes
    }

    /// A file's first `size` bytes as disk ranges (contiguous clusters
    /// merged).
    fn map(&self, first: u32, size: u64) -> Result<Vec<Mapped>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let chain = self.chain(first)?;
        if (chain.len() as u64) * self.cluster_bytes < size {
            return Err(corrupt(format!(
                "a file of {size} bytes in {} clusters",
                chain.len()
            )));
        }
        let mut out: Vec<Mapped> = Vec::new();
        let mut pos = 0;
        for c in chain {
            if pos >= size {
                break;
            }
            let len = self.cluster_bytes.min(size - pos);
            let at = self.cluster_at(c);
            match out.last_mut() {
                Some(m) if m.disk_offset + m.len == at => m.len += len,
                _ => out.push(Mapped {
                    file_offset: pos,
                    len,
                    disk_offset: at,
                }),
            }
            pos += len;
        }
        Ok(out)
    }

    /// Every entry of the volume, parents before their entries.
    pub fn entries(&mut self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let root = match self.root {
            Root::Fixed { at, len } => {
                let mut b = vec![0u8; len as usize];
                read(self.disk, self.offset + at, &mut b)?;
                b
            }
            Root::Chain(c) => self.dir_bytes(c, &mut seen)?,
        };
        let mut stack = vec![(root, Vec::new(), 0usize)];
        while let Some((bytes, prefix, depth)) = stack.pop() {
            for (name, e) in dir_entries(&bytes)? {
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&name);
                let dir = e[11] & 0x10 != 0;
                let first = u32::from(le16(&e, 20)) << 16 | u32::from(le16(&e, 26));
                let size = u64::from(le32(&e, 28));
                let mtime = fat_time(le16(&e, 24), le16(&e, 22));
                if dir {
                    if depth + 1 > MAX_DEPTH {
                        return Err(corrupt(format!("FAT directories deeper than {MAX_DEPTH}")));
                    }
                    let b = self.dir_bytes(first, &mut seen)?;
                    stack.push((b, path.clone(), depth + 1));
                }
                let data = if dir {
                    Vec::new()
                } else {
                    self.map(first, size)?
                };
                out.push(Entry {
                    path,
                    dir,
                    size: if dir { 0 } else { size },
                    mtime,
                    data,
                });
                if out.len() > MAX_ENTRIES {
                    return Err(corrupt(format!("more than {MAX_ENTRIES} FAT entries")));
                }
            }
        }
        Ok(out)
    }

    fn dir_bytes(&mut self, first: u32, seen: &mut HashSet<u32>) -> Result<Vec<u8>> {
        if !seen.insert(first) {
            return Err(corrupt(format!(
                "FAT directory cluster {first} is reached twice (a cycle)"
            )));
        }
        let chain = self.chain(first)?;
        let mut out = vec![0u8; chain.len() * self.cluster_bytes as usize];
        for (i, c) in chain.iter().enumerate() {
            let at = self.cluster_at(*c);
            let n = self.cluster_bytes as usize;
            read(self.disk, at, &mut out[i * n..(i + 1) * n])?;
        }
        Ok(out)
    }
}

fn read(disk: &mut dyn DiskRead, at: u64, buf: &mut [u8]) -> Result<()> {
    disk.read_at(buf, at)
        .map_err(|source| FsError::Io { offset: at, source })
}

/// The live entries of a directory's bytes: (name, the 32-byte entry).
fn dir_entries(b: &[u8]) -> Result<Vec<(Vec<u8>, [u8; 32])>> {
    let mut out = Vec::new();
    let mut long: Vec<(u8, Vec<u16>)> = Vec::new();
    for e in b.chunks_exact(32) {
        match e[0] {
            0 => break,
            0xE5 => {
                long.clear();
                continue;
            }
            _ => {}
        }
        let attr = e[11];
        if attr & 0x3f == 0x0f {
            let chars: Vec<u16> = [1..11, 14..26, 28..32]
                .into_iter()
                .flat_map(|r| {
                    e[r].chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                })
                .collect();
            long.push((e[0] & 0x3f, chars));
            continue;
        }
        if attr & 0x08 != 0 {
            long.clear();
            continue; // the volume label
        }
        let name = if long.is_empty() {
            short_name(e)
        } else {
            long.sort_by_key(|(n, _)| *n);
            let units: Vec<u16> = long
                .iter()
                .flat_map(|(_, c)| c.iter().copied())
                .take_while(|&u| u != 0)
                .collect();
            long.clear();
            String::from_utf16_lossy(&units).into_bytes()
        };
        if name == b"." || name == b".." {
            continue;
        }
        if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
            return Err(corrupt(format!(
                "a FAT entry named {:?}",
                String::from_utf8_lossy(&name)
            )));
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(e);
        out.push((name, raw));
    }
    Ok(out)
}

/// An 8.3 name, with the lowercase flags of byte 12.
fn short_name(e: &[u8]) -> Vec<u8> {
    let mut base: Vec<u8> = e[..8].to_vec();
    if base[0] == 0x05 {
        base[0] = 0xE5;
    }
    let trim = |v: &[u8]| {
        let end = v.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
        v[..end].to_vec()
    };
    let mut base = trim(&base);
    let mut ext = trim(&e[8..11]);
    if e[12] & 0x08 != 0 {
        base.make_ascii_lowercase();
    }
    if e[12] & 0x10 != 0 {
        ext.make_ascii_lowercase();
    }
    if !ext.is_empty() {
        base.push(b'.');
        base.extend_from_slice(&ext);
    }
    base
}

/// A FAT date and time as seconds since the epoch (taken as UTC).
fn fat_time(date: u16, time: u16) -> i64 {
    let (y, m, d) = (
        1980 + i64::from(date >> 9),
        i64::from((date >> 5) & 15).clamp(1, 12),
        i64::from(date & 31).max(1),
    );
    // Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs =
        i64::from(time >> 11) * 3600 + i64::from((time >> 5) & 63) * 60 + i64::from(time & 31) * 2;
    days * 86400 + secs
}

#[cfg(test)]
mod tests {
    #[test]
    fn fat_times_are_the_calendars() {
        // 2023-11-14 22:13:20 (1700000000): date (43 << 9) | (11 << 5) | 14,
        // time (22 << 11) | (13 << 5) | 10.
        assert_eq!(
            super::fat_time((43 << 9) | (11 << 5) | 14, (22 << 11) | (13 << 5) | 10),
            1_700_000_000
        );
        assert_eq!(super::fat_time(1 << 5 | 1, 0), 315_532_800);
    }

    #[test]
    fn short_names_follow_the_lowercase_flags() {
        let mut e = [b' '; 32];
        e[..8].copy_from_slice(b"GRUBX64 ");
        e[8..11].copy_from_slice(b"EFI");
        e[12] = 0x18;
        assert_eq!(super::short_name(&e), b"grubx64.efi");
        e[12] = 0;
        assert_eq!(super::short_name(&e), b"GRUBX64.EFI");
    }
}
