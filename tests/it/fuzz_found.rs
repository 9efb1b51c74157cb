//! Hostile inputs that fuzzing (`cargo xtask fuzz`, docs/fuzzing.md) and
//! the review of the readers it drove found: each made a reader hang,
//! panic or allocate without bound. Each input is built here from a
//! valid one, and each test checks the error the reader now gives. A
//! reader that hangs again fails the test after a generous wait instead
//! of hanging the suite.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

use ingot::disk::view::{DiskRead, RawView};
use ingot::fsread::ext4::{self, Fs};
use ingot::rootfs::{Meta, Tree};

/// Far longer than any of these reads takes; only a hang reaches it.
const HANG: Duration = Duration::from_secs(120);

/// `f()` on a thread; its result, or a failure if it is still running
/// after [`HANG`].
fn within_limit<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} still ran after {HANG:?}: it hangs"))
}

/// A small ext4 filesystem written by ingot, in a temporary file.
fn small_ext4() -> (tempfile::NamedTempFile, u64) {
    let mut tree = Tree::new();
    tree.mkdir_p("/etc", &Meta::new(0o755, 0, 0, 1_700_000_000))
        .unwrap();
    tree.put_text("/etc/os-release", "ID=test\n", 0o644, 1_700_000_000)
        .unwrap();
    let opts = ingot::ext4::Options {
        uuid: [1; 16],
        hash_seed: [2; 16],
        label: "/".into(),
        timestamp: 1_700_000_000,
        size: 0,
    };
    let f = tempfile::NamedTempFile::new().unwrap();
    let s = ingot::ext4::write(&tree, &opts, f.as_file(), 0).unwrap();
    f.as_file().set_len(s.size).unwrap();
    (f, s.size)
}

fn open(f: &File, size: u64) -> Fs {
    let view = RawView::new(f.try_clone().unwrap()).unwrap();
    assert_eq!(view.size(), size);
    Fs::open(Box::new(view), 0, size).unwrap()
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The byte offset of inode `ino` of the filesystem at byte `base` of `f`
/// (from the superblock and the group descriptors, read here apart from
/// the reader under test).
fn inode_offset_at(f: &File, base: u64, ino: u32) -> u64 {
    let mut sb = [0u8; 1024];
    f.read_exact_at(&mut sb, base + 1024).unwrap();
    let bs = 1024u64 << le32(&sb, 0x18);
    let ipg = le32(&sb, 0x28);
    let inode_size = u64::from(u16::from_le_bytes([sb[0x58], sb[0x59]]));
    let desc = u64::from(u16::from_le_bytes([sb[0xFE], sb[0xFF]])).max(32);
    let g = u64::from((ino - 1) / ipg);
    let mut d = vec![0u8; desc as usize];
    let gdt = (u64::from(le32(&sb, 0x14)) + 1) * bs;
    f.read_exact_at(&mut d, base + gdt + g * desc).unwrap();
    let mut table = u64::from(le32(&d, 0x8));
    if desc >= 64 {
        table |= u64::from(le32(&d, 0x28)) << 32;
    }
    base + table * bs + u64::from((ino - 1) % ipg) * inode_size
}

fn inode_offset(f: &File, ino: u32) -> u64 {
    inode_offset_at(f, 0, ino)
}

/// An extent tree node: header and entries of 12 bytes each.
fn extent_node(depth: u16, max: u16, entries: &[[u8; 12]]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xF30Au16.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    b.extend_from_slice(&max.to_le_bytes());
    b.extend_from_slice(&depth.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    for e in entries {
        b.extend_from_slice(e);
    }
    b
}

/// An index entry: logical block 0, child node at `block`.
fn index_entry(block: u32) -> [u8; 12] {
    let mut e = [0u8; 12];
    e[4..8].copy_from_slice(&block.to_le_bytes());
    e
}

/// An extent tree whose index entries all lead to one node of the next
/// level: five levels of 340 entries, about 1.3e10 paths to a leaf. The
/// reader walked every path; now it reads each node once and names the
/// block it meets a second time.
#[test]
fn an_extent_tree_whose_nodes_are_shared_is_refused_not_walked_forever() {
    let (img, size) = small_ext4();
    let f = img.as_file();
    let mut fs = open(f, size);
    let found = ext4::walk(&mut fs).unwrap();
    let ino = found[&b"/etc/os-release".to_vec()].inode.ino;
    // Five unused blocks near the end: levels 4 (index) to 0 (a leaf).
    let bs = 4096u64;
    let last = (size / bs - 1) as u32;
    let level = |d: u32| last - 10 + d;
    for d in 1..=4u32 {
        let entries = vec![index_entry(level(d - 1)); 340];
        let node = extent_node(d as u16, 340, &entries);
        f.write_all_at(&node, u64::from(level(d)) * bs).unwrap();
    }
    f.write_all_at(&extent_node(0, 340, &[]), u64::from(level(0)) * bs)
        .unwrap();
    // The inode's own node (in i_block): depth 5, one entry to level 4.
    let root = extent_node(5, 4, &[index_entry(level(4))]);
    f.write_all_at(&root, inode_offset(f, ino) + 0x28).unwrap();

    let file = f.try_clone().unwrap();
    let err = within_limit("reading a file through a shared extent tree", move || {
        let mut fs = open(&file, size);
        let inode = fs.inode(ino).unwrap();
        fs.read_data(&inode, |_| Ok(())).unwrap_err().to_string()
    });
    assert!(err.contains("is reached twice"), "{err}");
    assert!(err.contains(&format!("block {}", level(3))), "{err}");
}

/// The root directory (inode 2) of the filesystem at byte `base` of `f`
/// claims `size` bytes.
fn set_root_dir_size(f: &File, base: u64, size: u64) {
    let at = inode_offset_at(f, base, 2);
    f.write_all_at(&(size as u32).to_le_bytes(), at + 0x4)
        .unwrap();
    f.write_all_at(&((size >> 32) as u32).to_le_bytes(), at + 0x6C)
        .unwrap();
}

/// A directory claiming 900 MiB in a filesystem of a few: the reader
/// read all of it (holes as zeros) into memory before looking at it.
#[test]
fn a_directory_larger_than_its_filesystem_is_refused() {
    let (img, size) = small_ext4();
    set_root_dir_size(img.as_file(), 0, 900 << 20);
    let mut fs = open(img.as_file(), size);
    let err = ext4::walk(&mut fs).unwrap_err().to_string();
    assert!(
        err.contains("directory inode 2 claims 943718400 bytes, more than the filesystem's"),
        "{err}"
    );
}

/// A raw GPT disk whose root partition holds an ext4 of `fs_size` bytes
/// made from a one-file tree; the file and the partition's offset.
fn raw_disk(fs_size: u64) -> (tempfile::NamedTempFile, u64) {
    use ingot::disk::gpt;
    let mut tree = Tree::new();
    tree.mkdir_p("/etc", &Meta::new(0o755, 0, 0, 1_700_000_000))
        .unwrap();
    tree.put_text("/etc/os-release", "ID=test\n", 0o644, 1_700_000_000)
        .unwrap();
    let disk_size = (fs_size + (16 << 20)).div_ceil(1 << 20) << 20;
    let layout = gpt::plan(fs_size, 0, gpt::Size::Bytes(disk_size), b"fuzz found").unwrap();
    let f = tempfile::Builder::new().suffix(".raw").tempfile().unwrap();
    f.as_file().set_len(layout.disk_size).unwrap();
    gpt::write(&layout, f.as_file()).unwrap();
    let opts = ingot::ext4::Options {
        uuid: [1; 16],
        hash_seed: [2; 16],
        label: "/".into(),
        timestamp: 1_700_000_000,
        size: (layout.root.end - layout.root.start) / 4096 * 4096,
    };
    ingot::ext4::write(&tree, &opts, f.as_file(), layout.root.start).unwrap();
    (f, layout.root.start)
}

/// The same for a directory of 1 GiB that the filesystem could hold but
/// that is holes after its first block: `inspect` read the whole GiB into
/// memory; now it stops at the first empty block.
#[test]
fn a_directory_of_holes_fails_at_its_first_hole_without_being_read_whole() {
    let (img, root) = raw_disk(1100 << 20);
    set_root_dir_size(img.as_file(), root, 1 << 30);
    let mut cmd = crate::common::ingot();
    cmd.args(["inspect", "--json"]).arg(img.path());
    let peak = crate::common::peak_rss(&cmd);
    assert!(!peak.success, "{}", peak.stderr);
    assert!(
        peak.stderr
            .contains("directory inode 2: a bad entry at byte 0 of a block"),
        "{}",
        peak.stderr
    );
    assert!(peak.mib < 300, "inspect peaked at {} MiB", peak.mib);
}

/// A superblock with a block group per block on a sparse 8 GiB file: the
/// reader allocated and read every group descriptor (2 Mi of them).
#[test]
fn a_filesystem_of_more_block_groups_than_the_limit_is_refused() {
    let (img, _) = small_ext4();
    let f = img.as_file();
    let blocks: u32 = 2 << 20;
    f.set_len(u64::from(blocks) * 4096).unwrap();
    f.write_all_at(&blocks.to_le_bytes(), 1024 + 0x4).unwrap();
    f.write_all_at(&1u32.to_le_bytes(), 1024 + 0x20).unwrap();
    let size = u64::from(blocks) * 4096;
    let view = RawView::new(f.try_clone().unwrap()).unwrap();
    let err = match Fs::open(Box::new(view), 0, size) {
        Ok(_) => panic!("a filesystem of 2 Mi block groups opens"),
        Err(e) => e.to_string(),
    };
    assert_eq!(err, "2097152 block groups: the limit is 1048576");
}

/// A stream-optimized VMDK header whose grain directory (one entry per
/// one-sector grain of a 128 GiB disk) fills its sparse 1 GiB file: the
/// reader allocated and read all of it.
#[test]
fn a_vmdk_grain_directory_over_the_limit_is_refused() {
    let mut h = [0u8; 512];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
    h[8..12].copy_from_slice(&(1u32 << 16 | 1 << 17).to_le_bytes()); // compressed, markers
    h[12..20].copy_from_slice(&(1u64 << 28).to_le_bytes()); // capacity, sectors
    h[20..28].copy_from_slice(&1u64.to_le_bytes()); // grain: one sector
    h[44..48].copy_from_slice(&1u32.to_le_bytes()); // one entry per table
    h[56..64].copy_from_slice(&1u64.to_le_bytes()); // directory at sector 1
    h[77..79].copy_from_slice(&1u16.to_le_bytes()); // deflate
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().write_all_at(&h, 0).unwrap();
    f.as_file().set_len((1 << 30) + 4096).unwrap();
    let err = match ingot::disk::view::VmdkView::open(f.as_file().try_clone().unwrap()) {
        Ok(_) => panic!("a VMDK with a 1 GiB grain directory opens"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("a VMDK grain directory of 268435456 entries: the limit is 16777216"),
        "{err}"
    );
}

/// Set the partition entry array's LBA of the GPT header at byte `at`,
/// with the header's CRC made right again (as a forger would).
fn set_entries_lba(f: &File, at: u64, lba: u64) {
    let mut h = [0u8; 92];
    f.read_exact_at(&mut h, at).unwrap();
    assert_eq!(&h[..8], b"EFI PART");
    h[72..80].copy_from_slice(&lba.to_le_bytes());
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&h, at).unwrap();
}

/// A GPT header (CRC right) whose entry array's LBA times 512 overflows
/// a u64: the reader multiplied unchecked (a panic in a debug build, a
/// read somewhere else in a release one). The primary header now fails
/// by name and the backup is used; with both broken, the error says why.
#[test]
fn a_gpt_entry_array_past_any_disk_is_refused() {
    let (img, _) = raw_disk(8 << 20);
    let f = img.as_file();
    let len = f.metadata().unwrap().len();
    set_entries_lba(f, 512, u64::MAX / 256);
    let t = ingot::disk::gpt::read(f).unwrap();
    assert!(t.from_backup);
    set_entries_lba(f, len - 512, u64::MAX / 256);
    let err = ingot::disk::gpt::read(f).unwrap_err().to_string();
    assert!(
        err.contains("GPT header at LBA 1: the partition entry array's LBA is past any disk"),
        "{err}"
    );
}
