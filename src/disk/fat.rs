//! The EFI System Partition: a FAT16 volume with long file names.
//!
//! In: a [`Tree`] of directories and files given as `(path, bytes)` (an ESP
//! holds a boot loader and a few config files, a few MiB at most, so the
//! contents are held in memory), and [`Options`]: the volume serial (derive
//! it from the build's seed), an optional label, and the source date. Out: a
//! FAT16 volume written at an offset of a file ([`write()`]) and the smallest
//! whole-MiB size that holds the content ([`min_size`]).
//!
//! Why FAT16: Amazon Linux 2023's ESP is 10 MiB and blkid reports it as
//! `SEC_TYPE="msdos"` (FAT12/16) with no label. FAT32 needs at least 65525
//! clusters (fatgen103, "FAT Type Determination"), which a 10 MiB volume
//! cannot have even with 512-byte clusters, so a 10-100 MiB ESP is FAT16 by
//! definition; UEFI firmware reads FAT12/16/32 (UEFI 2.10 §13.3.1.1). FAT16
//! covers volumes up to 2 GiB here (32 KiB clusters).
//!
//! Choices (fatgen103 section names in quotes):
//! - "BPB": 512-byte sectors, 1 reserved sector, 2 FATs, 512 root entries,
//!   media 0xF8, the smallest cluster size that keeps the cluster count
//!   inside FAT16's range with a margin of 16 ("FAT Type Determination"),
//!   OEM name `MSWIN4.1` (the spec's advice), hidden sectors = the
//!   partition's start LBA.
//! - Names ("FAT Long Directory Entries"): a name that is already an
//!   upper-case 8.3 name is stored as is; any other gets long-name entries
//!   and a generated short name ("Basis-Name Generation Algorithm", with
//!   "Numeric-Tail Generation" `~1`, `~2`... when the conversion lost
//!   something or a name is taken). Entries are sorted by name and short
//!   names are assigned in that order, so the result is deterministic.
//! - Times ("Date and Time Formats"): FAT stores local time without a zone;
//!   every entry gets the source date in UTC (Amazon Linux runs in UTC),
//!   clamped to FAT's range 1980-01-01 .. 2107-12-31. Creation, write and
//!   access dates are all that date.
//! - Layout: directories and files get contiguous clusters in a pre-order
//!   walk of the sorted tree: two passes, lay out then write.
//!
//! Never: writes an all-zero sector (the target must read as zeros, as a
//! fresh sparse file does), reads the clock, or depends on the order the
//! caller added paths in.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{DiskError, MIB, Result, SECTOR, io_at, raw};

/// What goes on the volume besides its files.
#[derive(Debug, Clone)]
pub struct Options {
    /// `BS_VolID`, the serial `blkid` shows as `UUID="XXXX-XXXX"`.
    pub volume_id: u32,
    /// `None` (as AL2023) writes "NO NAME" in the boot sector and no label
    /// entry.
    pub label: Option<String>,
    /// Seconds since 1970-01-01 UTC, for every timestamp.
    pub source_date: u64,
}

/// The files and directories of the volume.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    root: Dir,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    entries: BTreeMap<String, Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Dir(Dir),
    File(Vec<u8>),
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a directory (and its parents). Adding one twice is fine.
    pub fn add_dir(&mut self, path: &str) -> Result<()> {
        let names = split_path(path)?;
        self.dir_mut(path, &names)?;
        Ok(())
    }

    /// Add a file (and its parent directories). `path` is relative to the
    /// volume root, `/`-separated, e.g. `EFI/BOOT/BOOTX64.EFI`.
    pub fn add_file(&mut self, path: &str, data: impl Into<Vec<u8>>) -> Result<()> {
        let data = data.into();
        if data.len() as u64 > u64::from(u32::MAX) {
            return Err(DiskError::TooLarge {
                what: "an ESP file",
                size: data.len() as u64,
                max: u64::from(u32::MAX),
            });
        }
        let names = split_path(path)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(name_error(path, "a file needs a name"));
        };
        let dir = self.dir_mut(path, parents)?;
        if has_case_insensitive(dir, last) {
            return Err(DiskError::EspDuplicate { path: path.into() });
        }
        dir.entries.insert((*last).to_string(), Node::File(data));
        Ok(())
    }

    /// True when the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.root.entries.is_empty()
    }

    fn dir_mut(&mut self, path: &str, names: &[&str]) -> Result<&mut Dir> {
        let mut dir = &mut self.root;
        for name in names {
            if !dir.entries.contains_key(*name) && has_case_insensitive(dir, name) {
                return Err(DiskError::EspDuplicate { path: path.into() });
            }
            let node = dir
                .entries
                .entry((*name).to_string())
                .or_insert_with(|| Node::Dir(Dir::default()));
            dir = match node {
                Node::Dir(d) => d,
                Node::File(_) => return Err(DiskError::EspNotADirectory { path: path.into() }),
            };
        }
        Ok(dir)
    }
}

fn has_case_insensitive(dir: &Dir, name: &str) -> bool {
    let up = name.to_uppercase();
    dir.entries.keys().any(|k| k.to_uppercase() == up)
}

fn name_error(path: &str, reason: &str) -> DiskError {
    DiskError::EspName {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Split a volume path into names, checking each against the long-name
/// rules ("FAT Long Directory Entries": up to 255 UTF-16 units, none of
/// `"*/:<>?\|` or control characters), and refusing names ending in `.` or
/// space (Windows and Linux drop those, so the name would not come back).
fn split_path(path: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for name in path.split('/').filter(|n| !n.is_empty()) {
        let bad = |reason: &str| Err(name_error(path, reason));
        if name == "." || name == ".." {
            return bad("`.` and `..` are not names");
        }
        if name.encode_utf16().count() > 255 {
            return bad("a FAT long name has at most 255 UTF-16 units");
        }
        if let Some(c) = name
            .chars()
            .find(|&c| (c as u32) < 0x20 || c == '\u{7f}' || "\"*/:<>?\\|".contains(c))
        {
            return bad(&format!("{c:?} cannot be in a FAT name"));
        }
        if name.ends_with('.') || name.ends_with(' ') {
            return bad("a FAT name cannot end in `.` or a space");
        }
        out.push(name);
    }
    Ok(out)
}

/// The smallest whole-MiB volume that holds `tree` (at least 3 MiB, the
/// smallest FAT16 volume with 512-byte clusters and a margin).
pub fn min_size(tree: &Tree, opts: &Options) -> Result<u64> {
    let plan = Plan::new(tree, opts)?;
    let mut size = 3 * MIB;
    while size <= MAX_VOLUME {
        if let Some(g) = Geometry::for_sectors(size / SECTOR)
            && plan.clusters_needed(g.cluster_bytes()) <= u64::from(g.clusters)
        {
            return Ok(size);
        }
        size += MIB;
    }
    Err(DiskError::TooLarge {
        what: "the ESP content",
        size: plan.content_bytes(),
        max: MAX_VOLUME,
    })
}

/// Write the volume for `tree` into `file` at byte `offset`, `size` bytes
/// long. `offset` is the partition's start on the disk (a multiple of 512;
/// the boot sector records it as the hidden sectors before the volume).
/// The range must read as zeros; only non-zero sectors are written.
pub fn write(tree: &Tree, opts: &Options, file: &File, offset: u64, size: u64) -> Result<()> {
    for (what, value) in [("the ESP's offset", offset), ("the ESP's size", size)] {
        if !value.is_multiple_of(SECTOR) {
            return Err(DiskError::NotSectorAligned { what, size: value });
        }
    }
    if size > MAX_VOLUME {
        return Err(DiskError::TooLarge {
            what: "a FAT16 ESP",
            size,
            max: MAX_VOLUME,
        });
    }
    let mut plan = Plan::new(tree, opts)?;
    let Some(g) = Geometry::for_sectors(size / SECTOR) else {
        return Err(DiskError::EspTooSmall {
            needed: min_size(tree, opts)?,
            given: size,
        });
    };
    let cluster_bytes = g.cluster_bytes();
    if plan.clusters_needed(cluster_bytes) > u64::from(g.clusters) {
        return Err(DiskError::EspTooSmall {
            needed: min_size(tree, opts)?,
            given: size,
        });
    }

    // Pass 1: clusters for every directory and file.
    let mut fat = vec![0u16; g.clusters as usize + 2];
    fat[0] = 0xFF00 | u16::from(MEDIA);
    // Clean-shutdown and no-error bits set, plus end-of-chain ("FAT[1]").
    fat[1] = 0xFFFF;
    let mut next = 2u32;
    plan.allocate(0, &mut next, cluster_bytes, &mut fat);

    // Pass 2: bytes.
    let stamp = Timestamp::from_unix(opts.source_date);
    let put = |at: u64, bytes: &[u8]| {
        raw::write_nonzero_at(file, offset + at, bytes).map_err(io_at("write the ESP", offset + at))
    };
    let label = plan.label;
    put(
        0,
        boot_sector(&g, offset / SECTOR, opts.volume_id, label).as_bytes(),
    )?;
    let mut fat_bytes = vec![0u8; g.fat_sectors as usize * SECTOR as usize];
    for (slot, v) in fat_bytes.chunks_exact_mut(2).zip(&fat) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
    for i in 0..u64::from(FATS) {
        put(g.fat_offset() + i * fat_bytes.len() as u64, &fat_bytes)?;
    }
    for d in 0..plan.dirs.len() {
        let bytes = plan.dir_bytes(d, &stamp, cluster_bytes);
        let at = match plan.dirs[d].cluster {
            0 => g.root_offset(),
            c => g.cluster_offset(c),
        };
        put(at, &bytes)?;
        for e in &plan.dirs[d].entries {
            if let Kind::File(data) = e.kind
                && !data.is_empty()
            {
                put(g.cluster_offset(e.cluster), data)?;
            }
        }
    }
    Ok(())
}

const RESERVED_SECTORS: u32 = 1;
const FATS: u32 = 2;
const ROOT_ENTRIES: u32 = 512;
const ROOT_SECTORS: u32 = ROOT_ENTRIES * 32 / SECTOR as u32;
const MEDIA: u8 = 0xF8;
/// FAT16 is 4085..=65524 clusters; stay 16 away from both ends, as
/// fatgen103 advises against counts near the limits.
const MIN_CLUSTERS: u32 = 4085 + 16;
const MAX_CLUSTERS: u32 = 65524 - 16;
/// The biggest volume tried: FAT16 with 32 KiB clusters.
const MAX_VOLUME: u64 = 2047 * MIB;

/// Where the regions of a FAT16 volume start, in the order of
/// fatgen103 "FAT Data Structure": reserved, FATs, root directory, data.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    total_sectors: u32,
    sectors_per_cluster: u32,
    fat_sectors: u32,
    clusters: u32,
}

impl Geometry {
    /// The smallest cluster size for which `total` sectors make a FAT16
    /// volume, with a FAT big enough for every cluster.
    fn for_sectors(total: u64) -> Option<Geometry> {
        let total = u32::try_from(total).ok()?;
        let mut spc = 1u32;
        while spc <= 64 {
            let mut fat_sectors = 1u32;
            loop {
                let meta = RESERVED_SECTORS + FATS * fat_sectors + ROOT_SECTORS;
                let clusters = total.checked_sub(meta)? / spc;
                let needed = ((clusters + 2) * 2).div_ceil(SECTOR as u32);
                if needed <= fat_sectors {
                    if (MIN_CLUSTERS..=MAX_CLUSTERS).contains(&clusters) {
                        return Some(Geometry {
                            total_sectors: total,
                            sectors_per_cluster: spc,
                            fat_sectors,
                            clusters,
                        });
                    }
                    break;
                }
                fat_sectors = needed;
            }
            spc *= 2;
        }
        None
    }

    fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * SECTOR
    }
    fn fat_offset(&self) -> u64 {
        u64::from(RESERVED_SECTORS) * SECTOR
    }
    fn root_offset(&self) -> u64 {
        u64::from(RESERVED_SECTORS + FATS * self.fat_sectors) * SECTOR
    }
    fn data_offset(&self) -> u64 {
        self.root_offset() + u64::from(ROOT_SECTORS) * SECTOR
    }
    /// "the first sector of cluster N": clusters are numbered from 2.
    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset() + u64::from(cluster - 2) * self.cluster_bytes()
    }
}

/// fatgen103 "Boot Sector and BPB Structure" with the FAT12/FAT16 fields
/// from offset 36 on.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct BootSector {
    bs_jmp_boot: [u8; 3],
    bs_oem_name: [u8; 8],
    bpb_byts_per_sec: U16,
    bpb_sec_per_clus: u8,
    bpb_rsvd_sec_cnt: U16,
    bpb_num_fats: u8,
    bpb_root_ent_cnt: U16,
    bpb_tot_sec16: U16,
    bpb_media: u8,
    bpb_fat_sz16: U16,
    bpb_sec_per_trk: U16,
    bpb_num_heads: U16,
    bpb_hidd_sec: U32,
    bpb_tot_sec32: U32,
    bs_drv_num: u8,
    bs_reserved1: u8,
    bs_boot_sig: u8,
    bs_vol_id: U32,
    bs_vol_lab: [u8; 11],
    bs_fil_sys_type: [u8; 8],
    boot_code: [u8; 448],
    signature_word: U16,
}

/// fatgen103 "FAT Directory Structure": a short (8.3) entry.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct DirEntry {
    dir_name: [u8; 11],
    dir_attr: u8,
    dir_nt_res: u8,
    dir_crt_time_tenth: u8,
    dir_crt_time: U16,
    dir_crt_date: U16,
    dir_lst_acc_date: U16,
    dir_fst_clus_hi: U16,
    dir_wrt_time: U16,
    dir_wrt_date: U16,
    dir_fst_clus_lo: U16,
    dir_file_size: U32,
}

/// fatgen103 "FAT Long Directory Entries": 13 UTF-16 units of a long name.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct LongDirEntry {
    ldir_ord: u8,
    ldir_name1: [U16; 5],
    ldir_attr: u8,
    ldir_type: u8,
    ldir_chksum: u8,
    ldir_name2: [U16; 6],
    ldir_fst_clus_lo: U16,
    ldir_name3: [U16; 2],
}

const _: () = assert!(size_of::<BootSector>() == 512);
const _: () = assert!(size_of::<DirEntry>() == 32);
const _: () = assert!(size_of::<LongDirEntry>() == 32);

const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LONG_NAME: u8 = 0x0F;
const LAST_LONG_ENTRY: u8 = 0x40;
const END_OF_CHAIN: u16 = 0xFFFF;

fn boot_sector(
    g: &Geometry,
    hidden_sectors: u64,
    volume_id: u32,
    label: Option<[u8; 11]>,
) -> BootSector {
    let (tot16, tot32) = match u16::try_from(g.total_sectors) {
        Ok(t) => (t, 0),
        Err(_) => (0, g.total_sectors),
    };
    let mut boot_code = [0u8; 448];
    // Should a BIOS ever run this: cli; hlt; jmp back to the hlt.
    boot_code[..4].copy_from_slice(&[0xFA, 0xF4, 0xEB, 0xFD]);
    BootSector {
        // A short jump over the BPB to offset 0x3E, then NOP.
        bs_jmp_boot: [0xEB, 0x3C, 0x90],
        bs_oem_name: *b"MSWIN4.1",
        bpb_byts_per_sec: U16::new(SECTOR as u16),
        bpb_sec_per_clus: g.sectors_per_cluster as u8,
        bpb_rsvd_sec_cnt: U16::new(RESERVED_SECTORS as u16),
        bpb_num_fats: FATS as u8,
        bpb_root_ent_cnt: U16::new(ROOT_ENTRIES as u16),
        bpb_tot_sec16: U16::new(tot16),
        bpb_media: MEDIA,
        bpb_fat_sz16: U16::new(g.fat_sectors as u16),
        bpb_sec_per_trk: U16::new(63),
        bpb_num_heads: U16::new(255),
        bpb_hidd_sec: U32::new(u32::try_from(hidden_sectors).unwrap_or(u32::MAX)),
        bpb_tot_sec32: U32::new(tot32),
        bs_drv_num: 0x80,
        bs_reserved1: 0,
        bs_boot_sig: 0x29,
        bs_vol_id: U32::new(volume_id),
        bs_vol_lab: label.unwrap_or(*b"NO NAME    "),
        bs_fil_sys_type: *b"FAT16   ",
        boot_code,
        signature_word: U16::new(0xAA55),
    }
}

/// The volume's directories, flattened: index 0 is the root.
struct Plan<'t> {
    dirs: Vec<PlannedDir<'t>>,
    label: Option<[u8; 11]>,
}

struct PlannedDir<'t> {
    /// First cluster; 0 for the root (it lives in its own region).
    cluster: u32,
    parent: usize,
    /// Directory entries it needs: dot entries, long-name slots, short
    /// entries, the label.
    slots: u64,
    entries: Vec<PlannedEntry<'t>>,
}

struct PlannedEntry<'t> {
    short: [u8; 11],
    long: Option<Vec<u16>>,
    kind: Kind<'t>,
    cluster: u32,
}

#[derive(Clone, Copy)]
enum Kind<'t> {
    Dir(usize),
    File(&'t [u8]),
}

impl<'t> Plan<'t> {
    fn new(tree: &'t Tree, opts: &Options) -> Result<Self> {
        let label = opts.label.as_deref().map(label_bytes).transpose()?;
        let mut plan = Plan {
            dirs: Vec::new(),
            label,
        };
        plan.add_dir(&tree.root, 0)?;
        let root = plan.dirs[0].slots;
        if root > u64::from(ROOT_ENTRIES) {
            return Err(DiskError::EspRootFull {
                entries: root as usize,
            });
        }
        Ok(plan)
    }

    fn add_dir(&mut self, dir: &'t Dir, parent: usize) -> Result<usize> {
        let index = self.dirs.len();
        let is_root = index == 0;
        self.dirs.push(PlannedDir {
            cluster: 0,
            parent,
            slots: 0,
            entries: Vec::new(),
        });
        let names: Vec<&str> = dir.entries.keys().map(String::as_str).collect();
        let shorts = short_names(&names)?;
        let mut slots = if is_root {
            u64::from(self.label.is_some())
        } else {
            2
        };
        let mut entries = Vec::with_capacity(names.len());
        for ((name, node), (short, needs_long)) in dir.entries.iter().zip(shorts) {
            let long = needs_long.then(|| name.encode_utf16().collect::<Vec<u16>>());
            slots += 1 + long.as_ref().map_or(0, |l| l.len().div_ceil(13) as u64);
            let kind = match node {
                Node::File(data) => Kind::File(data),
                Node::Dir(d) => Kind::Dir(self.add_dir(d, index)?),
            };
            entries.push(PlannedEntry {
                short,
                long,
                kind,
                cluster: 0,
            });
        }
        self.dirs[index].slots = slots;
        self.dirs[index].entries = entries;
        Ok(index)
    }

    fn dir_clusters(&self, d: usize, cluster_bytes: u64) -> u64 {
        (self.dirs[d].slots * 32).div_ceil(cluster_bytes).max(1)
    }

    fn clusters_needed(&self, cluster_bytes: u64) -> u64 {
        let mut n = 0;
        for (i, d) in self.dirs.iter().enumerate() {
            if i != 0 {
                n += self.dir_clusters(i, cluster_bytes);
            }
            for e in &d.entries {
                if let Kind::File(data) = e.kind {
                    n += (data.len() as u64).div_ceil(cluster_bytes);
                }
            }
        }
        n
    }

    fn content_bytes(&self) -> u64 {
        let files = self
            .dirs
            .iter()
            .flat_map(|d| &d.entries)
            .map(|e| match e.kind {
                Kind::File(data) => data.len() as u64,
                Kind::Dir(_) => 0,
            });
        files.sum::<u64>() + self.dirs.iter().map(|d| d.slots * 32).sum::<u64>()
    }

    /// Give directory `d` (unless it is the root), then each of its entries
    /// in order, contiguous clusters; recurse into subdirectories as they
    /// come (a pre-order walk). Chains go into `fat`.
    fn allocate(&mut self, d: usize, next: &mut u32, cluster_bytes: u64, fat: &mut [u16]) {
        if d != 0 {
            let n = self.dir_clusters(d, cluster_bytes) as u32;
            self.dirs[d].cluster = chain(fat, next, n);
        }
        for e in 0..self.dirs[d].entries.len() {
            let cluster = match self.dirs[d].entries[e].kind {
                Kind::File(data) => {
                    let n = (data.len() as u64).div_ceil(cluster_bytes) as u32;
                    if n == 0 { 0 } else { chain(fat, next, n) }
                }
                Kind::Dir(child) => {
                    self.allocate(child, next, cluster_bytes, fat);
                    self.dirs[child].cluster
                }
            };
            self.dirs[d].entries[e].cluster = cluster;
        }
    }

    /// The bytes of directory `d`: the whole root region, or its clusters.
    fn dir_bytes(&self, d: usize, t: &Timestamp, cluster_bytes: u64) -> Vec<u8> {
        let dir = &self.dirs[d];
        let len = if d == 0 {
            u64::from(ROOT_SECTORS) * SECTOR
        } else {
            self.dir_clusters(d, cluster_bytes) * cluster_bytes
        };
        let mut out = Vec::with_capacity(len as usize);
        if d == 0 {
            if let Some(label) = self.label {
                out.extend_from_slice(short_entry(label, ATTR_VOLUME_ID, 0, 0, t).as_bytes());
            }
        } else {
            let parent = self.dirs[dir.parent].cluster;
            out.extend_from_slice(
                short_entry(*b".          ", ATTR_DIRECTORY, dir.cluster, 0, t).as_bytes(),
            );
            out.extend_from_slice(
                short_entry(*b"..         ", ATTR_DIRECTORY, parent, 0, t).as_bytes(),
            );
        }
        for e in &dir.entries {
            if let Some(long) = &e.long {
                for slot in long_entries(long, &e.short) {
                    out.extend_from_slice(slot.as_bytes());
                }
            }
            let (attr, size) = match e.kind {
                Kind::Dir(_) => (ATTR_DIRECTORY, 0),
                Kind::File(data) => (ATTR_ARCHIVE, data.len() as u32),
            };
            out.extend_from_slice(short_entry(e.short, attr, e.cluster, size, t).as_bytes());
        }
        out.resize(len as usize, 0);
        out
    }
}

/// Allocate `n` clusters at `next`, link them in `fat`, return the first.
fn chain(fat: &mut [u16], next: &mut u32, n: u32) -> u32 {
    let first = *next;
    for c in first..first + n {
        fat[c as usize] = if c + 1 == first + n {
            END_OF_CHAIN
        } else {
            (c + 1) as u16
        };
    }
    *next += n;
    first
}

fn short_entry(name: [u8; 11], attr: u8, cluster: u32, size: u32, t: &Timestamp) -> DirEntry {
    DirEntry {
        dir_name: name,
        dir_attr: attr,
        dir_nt_res: 0,
        dir_crt_time_tenth: t.tenths,
        dir_crt_time: U16::new(t.time),
        dir_crt_date: U16::new(t.date),
        dir_lst_acc_date: U16::new(t.date),
        // FAT16 has no high word.
        dir_fst_clus_hi: U16::new(0),
        dir_wrt_time: U16::new(t.time),
        dir_wrt_date: U16::new(t.date),
        dir_fst_clus_lo: U16::new(cluster as u16),
        dir_file_size: U32::new(size),
    }
}

/// The long-name entries for `name`, in the order they are stored: the last
/// piece (flagged 0x40) first, down to piece 1, each with the short name's
/// checksum. After the name: one 0x0000, then 0xFFFF padding.
fn long_entries(name: &[u16], short: &[u8; 11]) -> Vec<LongDirEntry> {
    let sum = short_name_checksum(short);
    let pieces = name.len().div_ceil(13);
    (1..=pieces)
        .rev()
        .map(|ord| {
            let mut units = [0xFFFFu16; 13];
            let start = (ord - 1) * 13;
            for (i, u) in units.iter_mut().enumerate() {
                match name.get(start + i) {
                    Some(&c) => *u = c,
                    None if start + i == name.len() => *u = 0,
                    None => {}
                }
            }
            let le = |u: u16| U16::new(u);
            LongDirEntry {
                ldir_ord: ord as u8 | if ord == pieces { LAST_LONG_ENTRY } else { 0 },
                ldir_name1: [0, 1, 2, 3, 4].map(|i| le(units[i])),
                ldir_attr: ATTR_LONG_NAME,
                ldir_type: 0,
                ldir_chksum: sum,
                ldir_name2: [5, 6, 7, 8, 9, 10].map(|i| le(units[i])),
                ldir_fst_clus_lo: U16::new(0),
                ldir_name3: [11, 12].map(|i| le(units[i])),
            }
        })
        .collect()
}

/// fatgen103 "ChkSum()": rotate right and add, over the 11 name bytes.
fn short_name_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |sum, &b| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b)
    })
}

/// Characters a short name may hold besides A-Z and 0-9.
const SHORT_SPECIALS: &str = "$%'-_@~`!(){}^#&";

fn short_char_ok(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_SPECIALS.contains(c)
}

/// `name` as an 11-byte short name when it already is a valid upper-case
/// 8.3 name ("BOOTX64.EFI"), so it needs no long-name entries.
fn exact_short_name(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, Some(e)),
        None => (name, None),
    };
    let ok = |s: &str, max: usize| s.len() <= max && s.chars().all(short_char_ok);
    if base.is_empty() || !ok(base, 8) || ext.is_some_and(|e| e.is_empty() || !ok(e, 3)) {
        return None;
    }
    Some(pack_short(base, ext.unwrap_or("")))
}

fn pack_short(base: &str, ext: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    out
}

/// fatgen103 "Basis-Name Generation Algorithm": upper-case; characters a
/// short name cannot hold become `_` (lossy); spaces and leading periods
/// go (lossy); the primary part is up to the last period, embedded periods
/// dropped (lossy), at most 8 characters; the extension at most 3. Returns
/// the base, the extension, and whether the name came through whole.
fn basis_name(name: &str) -> (String, String, bool) {
    let mut lossy = false;
    let mut up = String::new();
    for c in name.chars() {
        match c {
            ' ' => lossy = true,
            '.' => up.push('.'),
            c if short_char_ok(c.to_ascii_uppercase()) => up.push(c.to_ascii_uppercase()),
            _ => {
                lossy = true;
                up.push('_');
            }
        }
    }
    let trimmed = up.trim_start_matches('.');
    lossy |= trimmed.len() != up.len();
    let (base, ext) = match trimmed.rfind('.') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (trimmed, ""),
    };
    let mut base: String = base.chars().filter(|&c| c != '.').collect();
    lossy |= base.len() != trimmed.rfind('.').unwrap_or(trimmed.len());
    if base.is_empty() {
        base.push('_');
        lossy = true;
    }
    let fits = base.len() <= 8 && ext.len() <= 3;
    base.truncate(8);
    let ext: String = ext.chars().take(3).collect();
    (base, ext, fits && !lossy)
}

/// Short names for the names of one directory (sorted, distinct ignoring
/// case), and whether each needs long-name entries. Exact 8.3 names are
/// kept first, so a generated `~1` name never takes one.
fn short_names(names: &[&str]) -> Result<Vec<([u8; 11], bool)>> {
    let mut out: Vec<Option<([u8; 11], bool)>> = vec![None; names.len()];
    let mut taken = HashSet::new();
    for (slot, name) in out.iter_mut().zip(names) {
        if let Some(s) = exact_short_name(name) {
            taken.insert(s);
            *slot = Some((s, false));
        }
    }
    for (slot, name) in out.iter_mut().zip(names) {
        if slot.is_some() {
            continue;
        }
        let (base, ext, whole) = basis_name(name);
        let plain = pack_short(&base, &ext);
        let short = if whole && !taken.contains(&plain) {
            plain
        } else {
            // fatgen103 "Numeric-Tail Generation": ~1 to ~999999.
            (1..=999_999u32)
                .map(|n| {
                    let tail = format!("~{n}");
                    let keep = base.len().min(8 - tail.len());
                    pack_short(&format!("{}{tail}", &base[..keep]), &ext)
                })
                .find(|s| !taken.contains(s))
                .ok_or_else(|| name_error(name, "no free short name"))?
        };
        taken.insert(short);
        *slot = Some((short, true));
    }
    Ok(out.into_iter().flatten().collect())
}

fn label_bytes(label: &str) -> Result<[u8; 11]> {
    let ok = !label.is_empty()
        && label.len() <= 11
        && !label.starts_with(' ')
        && label.chars().all(|c| c == ' ' || short_char_ok(c));
    if !ok {
        return Err(DiskError::EspLabel(label.into()));
    }
    let mut out = [b' '; 11];
    out[..label.len()].copy_from_slice(label.as_bytes());
    Ok(out)
}

/// fatgen103 "Date and Time Formats".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timestamp {
    /// Bits 15-9 year since 1980, 8-5 month, 4-0 day.
    date: u16,
    /// Bits 15-11 hours, 10-5 minutes, 4-0 seconds / 2.
    time: u16,
    /// Creation time's extra 10 ms units, 0-199 (the odd second).
    tenths: u8,
}

impl Timestamp {
    fn from_unix(secs: u64) -> Timestamp {
        // 1980-01-01 00:00:00 UTC, FAT's first instant.
        const FAT_EPOCH: u64 = 315_532_800;
        let secs = secs.max(FAT_EPOCH);
        let t = crate::source_date::utc(secs);
        if t.year() > 2107 {
            return Timestamp {
                date: (127 << 9) | (12 << 5) | 31,
                time: (23 << 11) | (59 << 5) | 29,
                tenths: 100,
            };
        }
        let (y, m, d) = (t.year() as u16, t.month() as u16, t.day() as u16);
        let (h, min, s) = (t.hour() as u16, t.minute() as u16, t.second() as u16);
        Timestamp {
            date: ((y - 1980) << 9) | (m << 5) | d,
            time: (h << 11) | (min << 5) | (s / 2),
            tenths: ((s % 2) * 100) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            volume_id: 0x1234_abcd,
            label: None,
            source_date: 1_700_000_000,
        }
    }

    #[test]
    fn short_names_follow_basis_and_numeric_tail_rules() {
        let names = [
            "BOOTX64.EFI",
            "Long File Name.txt",
            "grub.cfg",
            "longfilename.txt",
            "LONGFI~1.TXT",
            "a+b.c",
            ".hidden",
            "x.tar.gz",
        ];
        let mut sorted = names.to_vec();
        sorted.sort();
        let got: BTreeMap<&str, (String, bool)> = sorted
            .iter()
            .zip(short_names(&sorted).unwrap())
            .map(|(n, (s, l))| (*n, (String::from_utf8_lossy(&s).into_owned(), l)))
            .collect();
        assert_eq!(got["BOOTX64.EFI"], ("BOOTX64 EFI".into(), false));
        assert_eq!(got["grub.cfg"], ("GRUB    CFG".into(), true));
        assert_eq!(got["LONGFI~1.TXT"], ("LONGFI~1TXT".into(), false));
        // ~1 is taken by the exact name above.
        assert_eq!(got["Long File Name.txt"], ("LONGFI~2TXT".into(), true));
        assert_eq!(got["longfilename.txt"], ("LONGFI~3TXT".into(), true));
        assert_eq!(got["a+b.c"], ("A_B~1   C  ".into(), true));
        assert_eq!(got[".hidden"], ("HIDDEN~1   ".into(), true));
        assert_eq!(got["x.tar.gz"], ("XTAR~1  GZ ".into(), true));
    }

    #[test]
    fn long_entries_carry_the_checksum_and_padding() {
        let short = *b"GRUB    CFG";
        let name: Vec<u16> = "grub.cfg".encode_utf16().collect();
        let e = long_entries(&name, &short);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].ldir_ord, 0x41);
        assert_eq!(e[0].ldir_chksum, short_name_checksum(&short));
        assert_eq!(e[0].ldir_name2[3].get(), 0, "terminator after 8 units");
        assert_eq!(e[0].ldir_name3[1].get(), 0xFFFF);
        let long: Vec<u16> = "a".repeat(26).encode_utf16().collect();
        let e = long_entries(&long, &short);
        assert_eq!(e.iter().map(|e| e.ldir_ord).collect::<Vec<_>>(), [0x42, 1]);
        // Exactly 26 units: no terminator, no padding.
        assert_eq!(e[0].ldir_name3[1].get(), u16::from(b'a'));
    }

    #[test]
    fn timestamps_are_utc_and_clamped_to_fat_range() {
        // 2023-11-14 22:13:20 UTC.
        let t = Timestamp::from_unix(1_700_000_000);
        assert_eq!(t.date, ((2023 - 1980) << 9) | (11 << 5) | 14);
        assert_eq!(t.time, (22 << 11) | (13 << 5) | 10);
        assert_eq!(t.tenths, 0);
        assert_eq!(Timestamp::from_unix(0).date, (1 << 5) | 1);
        assert_eq!(Timestamp::from_unix(1).time, 0);
        assert_eq!(Timestamp::from_unix(u64::from(u32::MAX) * 4).date >> 9, 127);
        // 2024-02-29 23:59:59: the leap day, the odd second.
        let t = Timestamp::from_unix(1_709_251_199);
        assert_eq!(t.date, ((2024 - 1980) << 9) | (2 << 5) | 29);
        assert_eq!(t.time, (23 << 11) | (59 << 5) | 29);
        assert_eq!(t.tenths, 100);
    }

    #[test]
    fn geometry_is_fat16_with_the_smallest_cluster_that_fits() {
        let g = Geometry::for_sectors(10 * MIB / SECTOR).unwrap();
        assert_eq!(g.sectors_per_cluster, 1);
        assert!(g.clusters >= 4085 && g.clusters <= 65524);
        assert!(((g.clusters + 2) * 2).div_ceil(512) <= g.fat_sectors);
        let g = Geometry::for_sectors(100 * MIB / SECTOR).unwrap();
        assert_eq!(g.sectors_per_cluster, 4);
        assert!(Geometry::for_sectors(MIB / SECTOR).is_none());
    }

    #[test]
    fn bad_names_and_collisions_are_refused() {
        let mut t = Tree::new();
        assert!(t.add_file("EFI/a:b", vec![]).is_err());
        assert!(t.add_file("EFI/trailing.", vec![]).is_err());
        assert!(t.add_file("EFI/../x", vec![]).is_err());
        t.add_file("EFI/BOOT/BOOTX64.EFI", vec![1]).unwrap();
        assert!(matches!(
            t.add_file("efi/boot/bootx64.efi", vec![1]),
            Err(DiskError::EspDuplicate { .. })
        ));
        assert!(matches!(
            t.add_file("EFI/BOOT/BOOTX64.EFI/x", vec![1]),
            Err(DiskError::EspNotADirectory { .. })
        ));
        t.add_dir("EFI/BOOT").unwrap();
        assert!(label_bytes("efi").is_err());
        assert!(label_bytes("EFI").is_ok());
    }

    #[test]
    fn min_size_grows_with_content_and_writing_is_deterministic() {
        let mut t = Tree::new();
        t.add_file("EFI/BOOT/BOOTX64.EFI", vec![7u8; 1_000_000])
            .unwrap();
        assert_eq!(min_size(&t, &opts()).unwrap(), 3 * MIB);
        t.add_file("big", vec![1u8; 20 * MIB as usize]).unwrap();
        let need = min_size(&t, &opts()).unwrap();
        assert!(need > 20 * MIB && need <= 23 * MIB, "{need}");
        let dir = tempfile::tempdir().unwrap();
        let write_one = |name: &str| {
            let f = raw::create(&dir.path().join(name), need + MIB).unwrap();
            write(&t, &opts(), &f, MIB, need).unwrap();
            std::fs::read(dir.path().join(name)).unwrap()
        };
        assert_eq!(write_one("a"), write_one("b"));
        let f = raw::create(&dir.path().join("c"), need).unwrap();
        assert!(matches!(
            write(&t, &opts(), &f, 0, need - MIB),
            Err(DiskError::EspTooSmall { .. })
        ));
    }
}
