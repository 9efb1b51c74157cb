//! The partition plan and the GUID Partition Table, as Amazon Linux 2023
//! lays them out.
//!
//! In: the bytes the root filesystem and the ESP need, the disk size (or
//! "auto"), and a seed. Out: a [`Layout`] (byte ranges and GUIDs, known
//! before anything is written) and, from it, the protective MBR, the primary
//! and backup GPT headers and entry arrays ([`write()`]); [`read()`] parses a
//! table back.
//!
//! The layout of a real AL2023 AMI (`fdisk -l` on an 8 GiB volume), which
//! this copies:
//!
//! ```text
//! Device           Start      End  Sectors Size Type
//! /dev/nvme0n1p1   24576 16777182 16752607   8G Linux filesystem      PARTLABEL "Linux"
//! /dev/nvme0n1p127 22528    24575     2048   1M BIOS boot             PARTLABEL "BIOS Boot Partition"
//! /dev/nvme0n1p128  2048    22527    20480  10M EFI System            PARTLABEL "EFI System Partition"
//! ```
//!
//! The ESP comes first at 1 MiB, the BIOS boot partition right after it,
//! the root after that; the entries are "not in disk order" on purpose (AWS
//! tooling and growpart assume root is partition 1 and can grow into the
//! end of the disk). Differences: the ESP grows past 10 MiB when its content
//! needs it (always a whole MiB), and the root partition ends on the last
//! MiB boundary before the backup table (AL2023's ends at the last usable
//! LBA), so a 4 KiB-block filesystem fills it exactly and `sgdisk -v` does
//! not caution that it "doesn't end on a 2048-sector boundary". growpart
//! grows it to the end of the volume on first boot either way.
//!
//! Never: writes a zero sector (the file is fresh and sparse), or picks a
//! GUID at random: [`Guid::derive`] makes them from the caller's seed.
//!
//! Spec: UEFI 2.10 §5.2.3 (protective MBR), §5.3.2 (GPT header), §5.3.3
//! (partition entry array), Appendix A (GUID byte order).

use std::fs::File;
use std::ops::Range;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{DiskError, GIB, Guid, MIB, Result, SECTOR, io_at, raw};

/// Partition type "Linux filesystem data" (sgdisk code 8300).
pub const TYPE_LINUX: Guid = Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
/// Partition type "BIOS boot partition" (sgdisk code EF02), GRUB's core.img.
pub const TYPE_BIOS_BOOT: Guid = Guid::parse("21686148-6449-6E6F-744E-656564454649");
/// Partition type "EFI System Partition" (UEFI 2.10 §5.3.3 Table 5.7).
pub const TYPE_ESP: Guid = Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");

/// Partition numbers and names as on AL2023.
pub const ROOT_NUMBER: u32 = 1;
pub const BIOS_NUMBER: u32 = 127;
pub const ESP_NUMBER: u32 = 128;
pub const ROOT_NAME: &str = "Linux";
pub const BIOS_NAME: &str = "BIOS Boot Partition";
pub const ESP_NAME: &str = "EFI System Partition";

/// The ESP is at least this big (AL2023's is exactly 10 MiB).
pub const ESP_MIN_SIZE: u64 = 10 * MIB;
/// The BIOS boot partition: 1 MiB, left empty (images boot UEFI).
pub const BIOS_SIZE: u64 = MIB;
/// The first partition starts here (LBA 2048), as every current tool does.
pub const FIRST_PARTITION: u64 = MIB;
/// With "auto" size, the root gets this much room on top of what it needs
/// at least, or a fifth of it when that is more; then the disk is rounded up
/// to whole GiB (EBS volumes are sized in GiB).
pub const AUTO_HEADROOM_MIN: u64 = 256 * MIB;

/// 128 entries of 128 bytes: the minimum array (16 KiB) UEFI requires,
/// which AL2023 uses, and which makes partition numbers up to 128 possible.
const ENTRIES: u32 = 128;
const ENTRY_SIZE: u32 = 128;
/// Sectors holding the entry array (16384 / 512).
const ENTRY_SECTORS: u64 = (ENTRIES as u64 * ENTRY_SIZE as u64) / SECTOR;
/// The root partition ends on a MiB boundary too, so its length is a whole
/// number of 4 KiB filesystem blocks and `sgdisk -v` has nothing to say.
const ROOT_END_ALIGN: u64 = MIB;

/// How big the disk should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// What the content needs plus headroom, rounded up to whole GiB.
    Auto,
    /// Exactly this many bytes (a whole number of MiB).
    Bytes(u64),
}

/// The GUIDs of the disk and its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskGuids {
    pub disk: Guid,
    pub root: Guid,
    pub bios: Guid,
    pub esp: Guid,
}

impl DiskGuids {
    /// All four from one seed (for example, a digest of the build's inputs).
    pub fn derive(seed: &[u8]) -> Self {
        DiskGuids {
            disk: Guid::derive(seed, "gpt-disk"),
            root: Guid::derive(seed, "gpt-partition-root"),
            bios: Guid::derive(seed, "gpt-partition-bios-boot"),
            esp: Guid::derive(seed, "gpt-partition-esp"),
        }
    }
}

/// Where everything goes, in bytes from the start of the disk. Every range
/// is a whole number of sectors, and every start and end is on a MiB
/// boundary (so the root's length is a whole number of 4 KiB blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub disk_size: u64,
    pub esp: Range<u64>,
    pub bios: Range<u64>,
    pub root: Range<u64>,
    pub guids: DiskGuids,
}

/// One entry of the table, for manifests and `inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as Linux names it (`nvme0n1p128`).
    pub number: u32,
    pub type_guid: Guid,
    pub guid: Guid,
    pub name: String,
    pub first_lba: u64,
    /// Inclusive, as GPT stores it.
    pub last_lba: u64,
    pub attributes: u64,
}

impl Partition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }
    pub fn size(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
}

/// Lay out a disk whose root filesystem needs at least `root_min` bytes and
/// whose ESP content needs `esp_min` bytes (see [`super::fat::min_size`]).
/// `seed` makes the GUIDs. An explicit size that is too small is an error
/// that says how much is needed.
pub fn plan(root_min: u64, esp_min: u64, size: Size, seed: &[u8]) -> Result<Layout> {
    let esp_size = esp_min.max(ESP_MIN_SIZE).div_ceil(MIB) * MIB;
    let esp = FIRST_PARTITION..FIRST_PARTITION + esp_size;
    let bios = esp.end..esp.end + BIOS_SIZE;
    let root_start = bios.end;
    let root_need = root_min.div_ceil(ROOT_END_ALIGN) * ROOT_END_ALIGN;
    // The smallest whole-MiB disk whose root range holds `root_need`.
    let needed = (root_start + root_need + backup_reserve()).div_ceil(MIB) * MIB;
    let disk_size = match size {
        Size::Bytes(given) => {
            if !given.is_multiple_of(MIB) {
                return Err(DiskError::NotMibAligned(given));
            }
            if given < needed {
                return Err(DiskError::TooSmall { needed, given });
            }
            given
        }
        Size::Auto => {
            let headroom = (root_need / 5).max(AUTO_HEADROOM_MIN);
            (needed + headroom).div_ceil(GIB) * GIB
        }
    };
    let root = root_start..root_end(disk_size);
    debug_assert!(root.end - root.start >= root_need);
    Ok(Layout {
        disk_size,
        esp,
        bios,
        root,
        guids: DiskGuids::derive(seed),
    })
}

/// Bytes after the root partition: the backup entries and header (33
/// sectors), rounded up to the root's end alignment.
fn backup_reserve() -> u64 {
    ((1 + ENTRY_SECTORS) * SECTOR).div_ceil(ROOT_END_ALIGN) * ROOT_END_ALIGN
}

/// The root partition ends (exclusive) at the last MiB boundary at or before
/// the first byte of the backup entry array.
fn root_end(disk_size: u64) -> u64 {
    let backup_entries = disk_size - (1 + ENTRY_SECTORS) * SECTOR;
    backup_entries / ROOT_END_ALIGN * ROOT_END_ALIGN
}

impl Layout {
    /// The EBS volume size this image needs, in whole GiB.
    pub fn volume_gib(&self) -> u64 {
        self.disk_size.div_ceil(GIB)
    }

    fn last_lba(&self) -> u64 {
        self.disk_size / SECTOR - 1
    }

    /// The three partitions in table order (1, 127, 128).
    pub fn partitions(&self) -> [Partition; 3] {
        let p = |number, type_guid, guid, name: &str, r: &Range<u64>| Partition {
            number,
            type_guid,
            guid,
            name: name.to_string(),
            first_lba: r.start / SECTOR,
            last_lba: r.end / SECTOR - 1,
            attributes: 0,
        };
        [
            p(
                ROOT_NUMBER,
                TYPE_LINUX,
                self.guids.root,
                ROOT_NAME,
                &self.root,
            ),
            p(
                BIOS_NUMBER,
                TYPE_BIOS_BOOT,
                self.guids.bios,
                BIOS_NAME,
                &self.bios,
            ),
            p(ESP_NUMBER, TYPE_ESP, self.guids.esp, ESP_NAME, &self.esp),
        ]
    }
}

/// UEFI 2.10 §5.2.1 Table 5.2: one of the four partition records of an MBR.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Clone, Copy, Default)]
struct MbrPartitionRecord {
    boot_indicator: u8,
    starting_chs: [u8; 3],
    os_type: u8,
    ending_chs: [u8; 3],
    starting_lba: U32,
    size_in_lba: U32,
}

/// UEFI 2.10 §5.2.3 Table 5.3: the protective MBR in LBA 0.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable)]
struct ProtectiveMbr {
    boot_code: [u8; 440],
    unique_mbr_disk_signature: U32,
    unknown: [u8; 2],
    partition_record: [MbrPartitionRecord; 4],
    signature: U16,
}

/// UEFI 2.10 §5.3.2 Table 5.5: the GPT header (the rest of its block is
/// zero).
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Clone)]
struct GptHeader {
    signature: [u8; 8],
    revision: U32,
    header_size: U32,
    header_crc32: U32,
    reserved: U32,
    my_lba: U64,
    alternate_lba: U64,
    first_usable_lba: U64,
    last_usable_lba: U64,
    disk_guid: [u8; 16],
    partition_entry_lba: U64,
    number_of_partition_entries: U32,
    size_of_partition_entry: U32,
    partition_entry_array_crc32: U32,
}

/// UEFI 2.10 §5.3.3 Table 5.6: one GPT partition entry.
#[repr(C)]
#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Clone)]
struct GptPartitionEntry {
    partition_type_guid: [u8; 16],
    unique_partition_guid: [u8; 16],
    starting_lba: U64,
    ending_lba: U64,
    attributes: U64,
    partition_name: [U16; 36],
}

const _: () = assert!(size_of::<MbrPartitionRecord>() == 16);
const _: () = assert!(size_of::<ProtectiveMbr>() == 512);
const _: () = assert!(size_of::<GptHeader>() == 92);
const _: () = assert!(size_of::<GptPartitionEntry>() == ENTRY_SIZE as usize);

const SIGNATURE: [u8; 8] = *b"EFI PART";
const REVISION_1_0: u32 = 0x0001_0000;
/// The OS type of the protective MBR's one record (§5.2.3 Table 5.4).
const OS_TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// Write the protective MBR, the primary header and entries (LBA 1 and 2..33)
/// and the backup entries and header (the last 33 sectors) into `file`,
/// which must be `layout.disk_size` bytes long and zero where the table goes.
pub fn write(layout: &Layout, file: &File) -> Result<()> {
    let len = file
        .metadata()
        .map_err(io_at("read the size of the raw image", 0))?
        .len();
    if len != layout.disk_size {
        return Err(DiskError::Corrupt(format!(
            "the raw image is {len} bytes, but the layout is for {} bytes",
            layout.disk_size
        )));
    }
    let last_lba = layout.last_lba();

    let mut entries = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
    for p in layout.partitions() {
        let e = entry_bytes(&p);
        let at = (p.number as usize - 1) * ENTRY_SIZE as usize;
        entries[at..at + ENTRY_SIZE as usize].copy_from_slice(e.as_bytes());
    }
    let entries_crc = crc32fast::hash(&entries);

    let primary = header(layout, 1, last_lba, 2, entries_crc);
    let backup_entries_lba = last_lba - ENTRY_SECTORS;
    let backup = header(layout, last_lba, 1, backup_entries_lba, entries_crc);

    let put = |lba: u64, bytes: &[u8]| {
        raw::write_nonzero_at(file, lba * SECTOR, bytes)
            .map_err(io_at("write the GPT", lba * SECTOR))
    };
    put(0, protective_mbr(layout.disk_size / SECTOR).as_bytes())?;
    put(1, &header_block(&primary))?;
    put(2, &entries)?;
    put(backup_entries_lba, &entries)?;
    put(last_lba, &header_block(&backup))?;
    Ok(())
}

fn entry_bytes(p: &Partition) -> GptPartitionEntry {
    let mut name = [U16::new(0); 36];
    for (slot, unit) in name.iter_mut().zip(p.name.encode_utf16()) {
        *slot = U16::new(unit);
    }
    GptPartitionEntry {
        partition_type_guid: p.type_guid.to_uefi_bytes(),
        unique_partition_guid: p.guid.to_uefi_bytes(),
        starting_lba: U64::new(p.first_lba),
        ending_lba: U64::new(p.last_lba),
        attributes: U64::new(p.attributes),
        partition_name: name,
    }
}

fn header(
    layout: &Layout,
    my_lba: u64,
    alternate_lba: u64,
    entries_lba: u64,
    entries_crc: u32,
) -> GptHeader {
    let last_lba = layout.last_lba();
    let mut h = GptHeader {
        signature: SIGNATURE,
        revision: U32::new(REVISION_1_0),
        header_size: U32::new(size_of::<GptHeader>() as u32),
        header_crc32: U32::new(0),
        reserved: U32::new(0),
        my_lba: U64::new(my_lba),
        alternate_lba: U64::new(alternate_lba),
        // After the primary array (LBA 2..33); before the backup array.
        first_usable_lba: U64::new(2 + ENTRY_SECTORS),
        last_usable_lba: U64::new(last_lba - 1 - ENTRY_SECTORS),
        disk_guid: layout.guids.disk.to_uefi_bytes(),
        partition_entry_lba: U64::new(entries_lba),
        number_of_partition_entries: U32::new(ENTRIES),
        size_of_partition_entry: U32::new(ENTRY_SIZE),
        partition_entry_array_crc32: U32::new(entries_crc),
    };
    // §5.3.2: the CRC32 of the header (HeaderSize bytes) with this field 0.
    h.header_crc32 = U32::new(crc32fast::hash(h.as_bytes()));
    h
}

fn header_block(h: &GptHeader) -> [u8; SECTOR as usize] {
    let mut block = [0u8; SECTOR as usize];
    block[..size_of::<GptHeader>()].copy_from_slice(h.as_bytes());
    block
}

/// §5.2.3: one record of type 0xEE covering LBA 1 to the end of the disk
/// (or 0xFFFFFFFF sectors when the disk is bigger), boot code and disk
/// signature zero.
fn protective_mbr(total_sectors: u64) -> ProtectiveMbr {
    let last_lba = total_sectors - 1;
    let mut records = [MbrPartitionRecord::default(); 4];
    records[0] = MbrPartitionRecord {
        boot_indicator: 0,
        // CHS of LBA 1: cylinder 0, head 0, sector 2.
        starting_chs: [0x00, 0x02, 0x00],
        os_type: OS_TYPE_GPT_PROTECTIVE,
        ending_chs: chs(last_lba),
        starting_lba: U32::new(1),
        size_in_lba: U32::new(u32::try_from(last_lba).unwrap_or(u32::MAX)),
    };
    ProtectiveMbr {
        boot_code: [0; 440],
        unique_mbr_disk_signature: U32::new(0),
        unknown: [0; 2],
        partition_record: records,
        signature: U16::new(0xAA55),
    }
}

/// The MBR's CHS address of `lba` with the conventional 255 heads and 63
/// sectors per track, or 0xFFFFFF when the cylinder does not fit in 10 bits
/// (§5.2.3 Table 5.4: "set to 0xFFFFFF if it is not possible to represent
/// the value").
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFF, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    [
        head as u8,
        (sector as u8) | (((cylinder >> 2) & 0xC0) as u8),
        (cylinder & 0xFF) as u8,
    ]
}

/// A GPT read back from a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub disk_guid: Guid,
    /// True when the primary header was bad and the backup was used.
    pub from_backup: bool,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// Used entries, ordered by partition number.
    pub partitions: Vec<Partition>,
}

/// Read the GPT of a disk image: the primary header when its CRCs hold,
/// else the backup at the last LBA.
pub fn read(file: &File) -> Result<Table> {
    let f = file
        .try_clone()
        .map_err(io_at("read the size of the disk image", 0))?;
    read_disk(&mut super::view::RawView::new(f)?)
}

/// [`read`] of any virtual disk (a raw image, or a VMDK's or VHD's
/// [`super::view`]). Partitions are checked against the disk: each lies
/// inside it, first LBA before last.
pub fn read_disk(disk: &mut dyn super::view::DiskRead) -> Result<Table> {
    let len = disk.size();
    if len < 67 * SECTOR {
        return Err(DiskError::Corrupt(format!(
            "{len} bytes is too small for a GPT disk"
        )));
    }
    let last_lba = len / SECTOR - 1;
    let table = match read_at(disk, 1) {
        Ok(t) => t,
        Err(primary) => read_at(disk, last_lba)
            .map(|t| Table {
                from_backup: true,
                ..t
            })
            .map_err(|_| primary)?,
    };
    for p in &table.partitions {
        if p.first_lba > p.last_lba || p.last_lba > last_lba {
            return Err(DiskError::Corrupt(format!(
                "GPT partition {} runs from LBA {} to {}, outside the disk's {} sectors",
                p.number,
                p.first_lba,
                p.last_lba,
                last_lba + 1
            )));
        }
    }
    Ok(table)
}

fn read_at(disk: &mut dyn super::view::DiskRead, lba: u64) -> Result<Table> {
    let mut block = [0u8; SECTOR as usize];
    disk.read_at(&mut block, lba * SECTOR)
        .map_err(io_at("read a GPT header", lba * SECTOR))?;
    let (h, _) = GptHeader::read_from_prefix(&block)
        .map_err(|_| DiskError::Corrupt("short GPT header".into()))?;
    let bad = |what: &str| DiskError::Corrupt(format!("GPT header at LBA {lba}: {what}"));
    if h.signature != SIGNATURE {
        return Err(bad("no \"EFI PART\" signature"));
    }
    if h.header_size.get() as usize != size_of::<GptHeader>() {
        return Err(bad("unexpected header size"));
    }
    let mut zeroed = h.clone();
    zeroed.header_crc32 = U32::new(0);
    if crc32fast::hash(zeroed.as_bytes()) != h.header_crc32.get() {
        return Err(bad("header CRC32 mismatch"));
    }
    if h.my_lba.get() != lba {
        return Err(bad("MyLBA does not point at itself"));
    }
    let count = h.number_of_partition_entries.get();
    if h.size_of_partition_entry.get() != ENTRY_SIZE || count == 0 || count > 1024 {
        return Err(bad("unsupported partition entry array"));
    }
    let mut entries = vec![0u8; (count * ENTRY_SIZE) as usize];
    let at = h
        .partition_entry_lba
        .get()
        .checked_mul(SECTOR)
        .ok_or_else(|| bad("the partition entry array's LBA is past any disk"))?;
    disk.read_at(&mut entries, at)
        .map_err(io_at("read the GPT entries", at))?;
    if crc32fast::hash(&entries) != h.partition_entry_array_crc32.get() {
        return Err(bad("partition entry array CRC32 mismatch"));
    }
    let mut partitions = Vec::new();
    for (i, chunk) in entries.chunks_exact(ENTRY_SIZE as usize).enumerate() {
        let Ok(e) = GptPartitionEntry::read_from_bytes(chunk) else {
            continue;
        };
        if e.partition_type_guid == [0; 16] {
            continue;
        }
        let units: Vec<u16> = e
            .partition_name
            .iter()
            .map(|u| u.get())
            .take_while(|&u| u != 0)
            .collect();
        partitions.push(Partition {
            number: i as u32 + 1,
            type_guid: Guid::from_uefi_bytes(e.partition_type_guid),
            guid: Guid::from_uefi_bytes(e.unique_partition_guid),
            name: String::from_utf16_lossy(&units),
            first_lba: e.starting_lba.get(),
            last_lba: e.ending_lba.get(),
            attributes: e.attributes.get(),
        });
    }
    Ok(Table {
        disk_guid: Guid::from_uefi_bytes(h.disk_guid),
        from_backup: false,
        first_usable_lba: h.first_usable_lba.get(),
        last_usable_lba: h.last_usable_lba.get(),
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn the_layout_is_al2023s_esp_then_bios_boot_then_root() {
        let l = plan(3 * GIB, 1, Size::Bytes(8 * GIB), b"seed").unwrap();
        assert_eq!(l.esp, 2048 * SECTOR..22528 * SECTOR);
        assert_eq!(l.bios, 22528 * SECTOR..24576 * SECTOR);
        assert_eq!(l.root.start, 24576 * SECTOR);
        // AL2023 ends root at LBA 16777182 (the last usable); ours ends on
        // the MiB boundary before it.
        assert_eq!(l.root.end / SECTOR - 1, 16777215 - 2048);
        assert_eq!((l.root.end - l.root.start) % MIB, 0);
        let parts = l.partitions();
        assert_eq!(parts.clone().map(|p| p.number), [1, 127, 128]);
        assert_eq!(parts[0].name, "Linux");
        assert_eq!(l.volume_gib(), 8);
    }

    #[test]
    fn auto_size_is_content_plus_headroom_in_whole_gib() {
        let l = plan(1_500_000_000, 1, Size::Auto, b"s").unwrap();
        assert_eq!(l.disk_size, 2 * GIB);
        let l = plan(1_900_000_000, 1, Size::Auto, b"s").unwrap();
        assert_eq!(l.disk_size, 3 * GIB);
        let l = plan(0, 0, Size::Auto, b"s").unwrap();
        assert_eq!(l.disk_size, GIB);
    }

    #[test]
    fn an_explicit_size_too_small_says_how_much_is_needed() {
        let err = plan(2 * GIB, 1, Size::Bytes(GIB), b"s").unwrap_err();
        let DiskError::TooSmall { needed, given } = err else {
            panic!("{err}")
        };
        assert_eq!(given, GIB);
        // Exactly enough works; one MiB less does not.
        assert!(plan(2 * GIB, 1, Size::Bytes(needed), b"s").is_ok());
        assert!(plan(2 * GIB, 1, Size::Bytes(needed - MIB), b"s").is_err());
        let text = err_text(plan(2 * GIB, 1, Size::Bytes(GIB), b"s"));
        assert!(
            text.contains(&format!(
                "1 GiB was asked for, but the partitions need at least {} MiB",
                needed / MIB
            )),
            "{text}"
        );
        assert!(matches!(
            plan(0, 0, Size::Bytes(GIB + 512), b"s"),
            Err(DiskError::NotMibAligned(_))
        ));
    }

    fn err_text(r: Result<Layout>) -> String {
        r.map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn a_big_esp_pushes_bios_boot_and_root_along_in_whole_mib() {
        let l = plan(GIB, 30 * MIB + 1, Size::Auto, b"s").unwrap();
        assert_eq!(l.esp.end - l.esp.start, 31 * MIB);
        assert_eq!(l.bios.start, l.esp.end);
        assert_eq!(l.root.start % MIB, 0);
    }

    #[test]
    fn written_table_reads_back_and_the_backup_survives_a_broken_primary() {
        let dir = tempfile::tempdir().unwrap();
        let l = plan(100 * MIB, 1, Size::Bytes(200 * MIB), b"seed").unwrap();
        let f = raw::create(&dir.path().join("d"), l.disk_size).unwrap();
        write(&l, &f).unwrap();
        let t = read(&f).unwrap();
        assert!(!t.from_backup);
        assert_eq!(t.disk_guid, l.guids.disk);
        assert_eq!(t.partitions, l.partitions().to_vec());
        assert_eq!(t.first_usable_lba, 34);
        assert_eq!(t.last_usable_lba, l.disk_size / SECTOR - 34);
        f.write_all_at(b"X", SECTOR + 30).unwrap();
        let t = read(&f).unwrap();
        assert!(t.from_backup);
        assert_eq!(t.partitions, l.partitions().to_vec());
    }

    #[test]
    fn protective_mbr_chs_is_the_last_lba_or_saturated() {
        // 255 * 63 = 16065 sectors per cylinder.
        assert_eq!(chs(16065), [0, 1, 1]);
        assert_eq!(chs(1), [0, 2, 0]);
        assert_eq!(chs(16 * GIB / SECTOR), [0xFF, 0xFF, 0xFF]);
        let m = protective_mbr(2 * GIB / SECTOR);
        assert_eq!(
            m.partition_record[0].size_in_lba.get(),
            (2 * GIB / SECTOR - 1) as u32
        );
        assert_eq!(m.as_bytes()[510..], [0x55, 0xAA]);
    }

    #[test]
    fn a_partition_outside_the_disk_is_named_even_with_good_crcs() {
        let dir = tempfile::tempdir().unwrap();
        let l = plan(100 * MIB, 1, Size::Bytes(200 * MIB), b"seed").unwrap();
        let f = raw::create(&dir.path().join("d"), l.disk_size).unwrap();
        write(&l, &f).unwrap();
        // Partition 1's entry: its ending LBA far past the disk, then both
        // CRCs of the primary table made right again.
        let mut entries = vec![0u8; 128 * 128];
        f.read_exact_at(&mut entries, 2 * SECTOR).unwrap();
        entries[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
        f.write_all_at(&entries, 2 * SECTOR).unwrap();
        let mut h = [0u8; 92];
        f.read_exact_at(&mut h, SECTOR).unwrap();
        h[88..92].copy_from_slice(&crc32fast::hash(&entries).to_le_bytes());
        h[16..20].copy_from_slice(&[0; 4]);
        let crc = crc32fast::hash(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&h, SECTOR).unwrap();
        let e = read(&f).unwrap_err().to_string();
        assert!(
            e.contains("GPT partition 1 runs from LBA") && e.contains("outside the disk's"),
            "{e}"
        );
    }
}
