//! Stage 5 of `bake`: lay out the disk. Making the tree ready to become a
//! disk, and writing everything of the disk but the root filesystem's
//! contents (which [`write_root`] writes while the outputs are digested).
//!
//! In: the finished tree, a seed (digest of the inputs), the source date,
//! the image's architecture and root filesystem kind. Out: the tree
//! adjusted the way an Amazon Linux 2023 disk needs it (the root
//! filesystem's UUID kept from the base's `/etc/fstab` or boot entries so
//! its boot configuration stays valid, `/etc/fstab` pointing at the root
//! and the FAT ESP, `/boot/efi` emptied into the ESP, mount points
//! present), a verdict on whether it can boot (with the reason when not),
//! and the raw disk: GPT, ESP and (from a base that is a disk image) the
//! MBR boot code and BIOS boot partition written, sized for the root filesystem
//! ([`crate::filesystem`], the seam every root filesystem plugs into).

use std::fs::File;
use std::io::Read;

use super::{BakeError, Result};
use crate::arch::Arch;
use crate::disk::{self, Guid, fat, gpt};
use crate::filesystem::{FilesystemKind, Identity, RootFilesystem};
use crate::fsread::image::BiosBoot;
use crate::progress::Task;
use crate::rootfs::{Kind, Meta, PutError, Tree};

/// What `prepare` decided.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub root_uuid: [u8; 16],
    /// Where the UUID came from: `fstab`, `boot entries` or `derived`.
    pub root_uuid_from: &'static str,
    pub hash_seed: [u8; 16],
    pub esp: fat::Tree,
    pub esp_volume_id: u32,
    pub bootable: bool,
    pub not_bootable_because: Vec<String>,
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` -> bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    Guid::from_text(s).map(|g| g.0)
}

pub fn uuid_text(u: &[u8; 16]) -> String {
    Guid(*u).to_string()
}

/// The root filesystem UUID the base's own configuration names.
fn base_root_uuid(tree: &Tree) -> Option<([u8; 16], &'static str)> {
    if let Some(fstab) = tree.read_text("/etc/fstab") {
        for l in fstab.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 2
                && !f[0].starts_with('#')
                && f[1] == "/"
                && let Some(u) = f[0].strip_prefix("UUID=").and_then(parse_uuid)
            {
                return Some((u, "fstab"));
            }
        }
    }
    let dir = tree.resolve("/boot/loader/entries", true).ok()?;
    let names: Vec<Vec<u8>> = tree.node(dir).as_dir()?.entries().keys().cloned().collect();
    for n in names {
        let path = format!("/boot/loader/entries/{}", String::from_utf8_lossy(&n));
        if let Some(text) = tree.read_text(&path) {
            for word in text.split_whitespace() {
                if let Some(u) = word.strip_prefix("root=UUID=").and_then(parse_uuid) {
                    return Some((u, "boot entries"));
                }
            }
        }
    }
    None
}

/// The ESP serial the base's fstab names for /boot/efi (`UUID=XXXX-XXXX`).
fn base_esp_serial(tree: &Tree) -> Option<u32> {
    let fstab = tree.read_text("/etc/fstab")?;
    for l in fstab.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 2 && f[1] == "/boot/efi" {
            let s = f[0].strip_prefix("UUID=")?.replace('-', "");
            return u32::from_str_radix(&s, 16).ok();
        }
    }
    None
}

fn fat_serial_text(v: u32) -> String {
    format!("{:04X}-{:04X}", v >> 16, v & 0xffff)
}

fn put_text(tree: &mut Tree, path: &str, text: &str, time: u32) -> Result<()> {
    tree.put_text(path, text, 0o644, time).map_err(|e| match e {
        PutError::Spill(source) => BakeError::Write {
            path: path.into(),
            source,
        },
        PutError::Path(e) => BakeError::Usage(format!("cannot write `{path}` in the image: {e}")),
    })
}

/// `/etc/fstab` with its root line pointing at the new root (of type
/// `fs`) and an ESP line as Amazon Linux 2023 has it; other lines are kept.
fn fstab(old: Option<&str>, root: &str, fs: FilesystemKind, esp: &str) -> String {
    let root_line = format!(
        "UUID={root}     /           {:<7} defaults,noatime  1   1",
        fs.name()
    );
    let esp_line = format!(
        "UUID={esp}          /boot/efi       vfat    defaults,noatime,uid=0,gid=0,umask=0077,shortname=winnt,x-systemd.automount 0 2"
    );
    let mut out = Vec::new();
    let (mut had_root, mut had_esp) = (false, false);
    for l in old.unwrap_or("").lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 2 && !f[0].starts_with('#') && f[1] == "/" {
            out.push(root_line.clone());
            had_root = true;
        } else if f.len() >= 2 && !f[0].starts_with('#') && f[1] == "/boot/efi" {
            out.push(esp_line.clone());
            had_esp = true;
        } else {
            out.push(l.to_string());
        }
    }
    if !had_root {
        out.push(root_line);
    }
    if !had_esp {
        out.push(esp_line);
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// The base's boot loader entries (`/boot/loader/entries/*.conf`) and
/// `/etc/kernel/cmdline`, with their text.
fn boot_entries(tree: &Tree) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(dir) = tree.resolve("/boot/loader/entries", true)
        && let Some(d) = tree.node(dir).as_dir()
    {
        for name in d.entries().keys() {
            let path = format!("/boot/loader/entries/{}", String::from_utf8_lossy(name));
            if let Some(text) = tree.read_text(&path) {
                out.push((path, text));
            }
        }
    }
    if let Some(text) = tree.read_text("/etc/kernel/cmdline") {
        out.push(("/etc/kernel/cmdline".to_string(), text));
    }
    out
}

/// `text` with every `rootfstype=` word naming `fs`, or `None` when it
/// names none or already names `fs`.
fn with_rootfstype(text: &str, fs: FilesystemKind) -> Option<String> {
    let mut changed = false;
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            line.split(' ')
                .map(|w| match w.strip_prefix("rootfstype=") {
                    Some(v) if v != fs.name() => {
                        changed = true;
                        format!("rootfstype={}", fs.name())
                    }
                    _ => w.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    changed.then(|| lines.join("\n"))
}

/// Adjust the tree for a disk and collect the ESP's contents.
pub fn prepare(
    tree: &mut Tree,
    seed: &[u8],
    time: u32,
    arch: Arch,
    fs: FilesystemKind,
) -> Result<Prepared> {
    let (root_uuid, root_uuid_from) = match base_root_uuid(tree) {
        Some((u, from)) => (u, from),
        None => (Guid::derive(seed, "ext4-root-uuid").0, "derived"),
    };
    let hash_seed = Guid::derive(seed, "ext4-hash-seed").0;
    let esp_volume_id =
        base_esp_serial(tree).unwrap_or_else(|| disk::derive_u32(seed, "esp-volume-id"));

    // The ESP: whatever the tree holds under /boot/efi moves onto it.
    let mut esp = fat::Tree::new();
    let mut esp_files: Vec<String> = Vec::new();
    let dir_meta = Meta::new(0o755, 0, 0, i64::from(time));
    let efi = match tree.resolve("/boot/efi", true) {
        Ok(id) if tree.node(id).is_dir() => id,
        _ => tree
            .mkdir_p("/boot/efi", &Meta::new(0o700, 0, 0, i64::from(time)))
            .map_err(|e| BakeError::Usage(format!("cannot make /boot/efi: {e}")))?,
    };
    let _ = efi;
    let under: Vec<(Vec<u8>, crate::rootfs::NodeId)> = tree
        .walk()
        .filter(|(p, _)| p.starts_with(b"/boot/efi/"))
        .collect();
    for (p, id) in &under {
        let rel = String::from_utf8_lossy(&p[b"/boot/efi/".len()..]).into_owned();
        match &tree.node(*id).kind {
            Kind::Dir(_) => esp
                .add_dir(&rel)
                .map_err(|e| BakeError::Usage(format!("ESP: {e}")))?,
            Kind::File(_) => {
                let mut bytes = Vec::new();
                tree.open(*id)
                    .and_then(|mut r| r.read_to_end(&mut bytes))
                    .map_err(|source| BakeError::Read {
                        path: String::from_utf8_lossy(p).into_owned().into(),
                        source,
                    })?;
                esp.add_file(&rel, bytes)
                    .map_err(|e| BakeError::Usage(format!("ESP: {e}")))?;
                esp_files.push(rel.to_ascii_uppercase());
            }
            _ => {
                return Err(BakeError::Usage(format!(
                    "`{}` cannot go on the FAT ESP: only files and folders can",
                    String::from_utf8_lossy(p)
                )));
            }
        }
    }
    let top: Vec<Vec<u8>> = tree
        .resolve("/boot/efi", true)
        .ok()
        .and_then(|id| {
            tree.node(id)
                .as_dir()
                .map(|d| d.entries().keys().cloned().collect())
        })
        .unwrap_or_default();
    for name in top {
        let mut path = b"/boot/efi/".to_vec();
        path.extend_from_slice(&name);
        let _ = tree.remove(&path);
    }

    // fstab.
    let old = tree.read_text("/etc/fstab");
    let new = fstab(
        old.as_deref(),
        &uuid_text(&root_uuid),
        fs,
        &fat_serial_text(esp_volume_id),
    );
    if tree.resolve("/etc", true).is_err() {
        tree.mkdir_p("/etc", &dir_meta)
            .map_err(|e| BakeError::Usage(format!("cannot make /etc: {e}")))?;
    }
    put_text(tree, "/etc/fstab", &new, time)?;
    // Boot entries that name the root's type name the new one.
    for (path, text) in boot_entries(tree) {
        if let Some(fixed) = with_rootfstype(&text, fs) {
            put_text(tree, &path, &fixed, time)?;
        }
    }

    // Mount points the kernel and systemd need.
    for (p, mode) in [
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/run", 0o755),
        ("/tmp", 0o1777),
    ] {
        match tree.resolve(p, true) {
            Ok(id) if tree.node(id).is_dir() => {}
            _ => {
                let _ = tree.remove(p);
                tree.mkdir_p(p, &Meta::new(mode, 0, 0, i64::from(time)))
                    .map_err(|e| BakeError::Usage(format!("cannot make {p}: {e}")))?;
            }
        }
    }

    // Can it boot? A kernel in the root and a UEFI loader on the ESP.
    let mut why = Vec::new();
    let has_kernel = tree.walk().any(|(p, id)| {
        matches!(tree.node(id).kind, Kind::File(_))
            && (p.starts_with(b"/boot/vmlinuz")
                || (p.starts_with(b"/usr/lib/modules/") && p.ends_with(b"/vmlinuz")))
    });
    if !has_kernel {
        why.push("no kernel (/boot/vmlinuz-* or /usr/lib/modules/*/vmlinuz)".to_string());
    }
    let loader = arch.uefi_loader();
    if !esp_files.iter().any(|f| f == loader) {
        why.push(format!(
            "no UEFI boot loader ({loader} on the ESP, from /boot/efi)"
        ));
    }
    Ok(Prepared {
        root_uuid,
        root_uuid_from,
        hash_seed,
        esp,
        esp_volume_id,
        bootable: why.is_empty(),
        not_bootable_because: why,
    })
}

/// The raw disk laid out: its size set, GPT and ESP written; the root
/// filesystem still to come ([`write_root`]).
pub struct Written {
    pub layout: gpt::Layout,
    /// Why the disk has no legacy-BIOS boot code, when it has none.
    pub not_bios_bootable_because: Option<String>,
    fs: Box<dyn RootFilesystem>,
}

/// Plan the raw disk in `file` (sparse), set its length and write the GPT
/// and the ESP: everything outside the root partition.
#[allow(clippy::too_many_arguments)]
pub fn lay_out_raw(
    tree: &Tree,
    p: &Prepared,
    kind: FilesystemKind,
    arch: Arch,
    size: gpt::Size,
    seed: &[u8],
    time: u32,
    file: &File,
    bad_size: &dyn Fn(String) -> BakeError,
    bios: Option<&BiosBoot>,
) -> Result<Written> {
    if !arch.bios_boot() {
        return Err(BakeError::Usage(format!(
            "disks for {arch} (without a BIOS boot partition) are not made yet"
        )));
    }
    let fs = kind.writer(&Identity {
        uuid: p.root_uuid,
        hash_seed: p.hash_seed,
        label: "/".into(),
        timestamp: time,
    });
    let disk_err = BakeError::Disk;
    let root_min = fs.auto_size(tree).map_err(BakeError::Filesystem)?;
    let fat_opts = fat::Options {
        volume_id: p.esp_volume_id,
        label: None,
        source_date: u64::from(time),
    };
    let esp_min = fat::min_size(&p.esp, &fat_opts).map_err(disk_err)?;
    let layout = gpt::plan(root_min, esp_min, size, seed).map_err(|e| match e {
        disk::DiskError::TooSmall { .. } | disk::DiskError::NotMibAligned(_) => {
            bad_size(e.to_string())
        }
        e => disk_err(e),
    })?;
    file.set_len(layout.disk_size).map_err(|source| {
        BakeError::Disk(disk::DiskError::Io {
            action: "set the image's length",
            offset: layout.disk_size,
            source,
        })
    })?;
    gpt::write(&layout, file).map_err(disk_err)?;
    fat::write(
        &p.esp,
        &fat_opts,
        file,
        layout.esp.start,
        layout.esp.end - layout.esp.start,
    )
    .map_err(disk_err)?;
    let not_bios_bootable_because = match bios {
        None => Some(
            "the base (a root filesystem archive or folder) brings no MBR boot code or BIOS \
             boot partition"
                .to_string(),
        ),
        Some(b) => match relocate_bios(b, &layout) {
            Ok((mbr_code, partition)) => {
                let io = |offset| {
                    move |source| {
                        BakeError::Disk(disk::DiskError::Io {
                            action: "write the BIOS boot code",
                            offset,
                            source,
                        })
                    }
                };
                use std::os::unix::fs::FileExt;
                file.write_all_at(&mbr_code, 0).map_err(io(0))?;
                file.write_all_at(&partition, layout.bios.start)
                    .map_err(io(layout.bios.start))?;
                None
            }
            Err(why) => Some(why),
        },
    };
    Ok(Written {
        layout,
        not_bios_bootable_because,
        fs,
    })
}

/// GRUB's `boot.img` keeps the sector of `core.img` at this offset of the
/// MBR (`GRUB_BOOT_MACHINE_KERNEL_SECTOR`), a little-endian u64.
const GRUB_KERNEL_SECTOR: usize = 0x5c;
/// `core.img`'s first sector (`diskboot.img`) ends with block lists of
/// 12 bytes (start u64, sectors u16, segment u16), the first at byte 500,
/// going down, ended by one of 0 sectors.
const GRUB_FIRST_LIST: usize = 500;

/// The base's MBR boot code and BIOS boot partition as they go into the
/// new disk: as they are when the partition starts at the same sector;
/// else, when the MBR is GRUB's pointing into the partition, with the
/// sectors GRUB keeps (its `core.img`'s and the block lists in that
/// image's first sector) moved by as much as the partition moved. The
/// reason when they cannot be carried.
fn relocate_bios(
    b: &BiosBoot,
    layout: &gpt::Layout,
) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    let room = layout.bios.end - layout.bios.start;
    if b.partition.len() as u64 > room {
        return Err(format!(
            "the base's BIOS boot partition holds {} bytes, more than the {room} of the new one",
            b.partition.len()
        ));
    }
    let (mut mbr, mut part) = (b.mbr_code.clone(), b.partition.clone());
    let new_first = layout.bios.start / disk::SECTOR;
    if new_first == b.first_lba {
        return Ok((mbr, part));
    }
    let inside = |lba: u64| (b.first_lba..=b.last_lba).contains(&lba);
    let moved = |lba: u64| lba - b.first_lba + new_first;
    let le64 =
        |v: &[u8], at: usize| u64::from_le_bytes(v[at..at + 8].try_into().unwrap_or_default());
    let kernel = le64(&mbr, GRUB_KERNEL_SECTOR);
    if !inside(kernel) || part.len() < 512 {
        return Err(format!(
            "the base's BIOS boot partition starts at sector {}, the new one at {new_first}, and \
             its MBR boot code is not GRUB's pointing into it (so it cannot be moved)",
            b.first_lba
        ));
    }
    mbr[GRUB_KERNEL_SECTOR..GRUB_KERNEL_SECTOR + 8].copy_from_slice(&moved(kernel).to_le_bytes());
    let mut at = GRUB_FIRST_LIST;
    while at >= 12 * 8 && u16::from_le_bytes([part[at + 8], part[at + 9]]) != 0 {
        let start = le64(&part, at);
        if inside(start) {
            part[at..at + 8].copy_from_slice(&moved(start).to_le_bytes());
        }
        at -= 12;
    }
    Ok((mbr, part))
}

/// Write the root filesystem into its partition, telling `written` how
/// far the disk is final as it goes (everything outside the root partition
/// already is), and that it is finished, or failed, at the end.
pub fn write_root(
    tree: &Tree,
    w: &Written,
    file: &File,
    written: &disk::raw::Watermark,
    progress: &Task,
) -> Result<()> {
    /// Readers must not wait for a writer that is gone, even by a panic.
    struct FailUnlessFinished<'a>(&'a disk::raw::Watermark);
    impl Drop for FailUnlessFinished<'_> {
        fn drop(&mut self) {
            if !self.0.is_finished() {
                self.0.fail();
            }
        }
    }
    let _guard = FailUnlessFinished(written);
    let start = w.layout.root.start;
    written.raise(start);
    w.fs.write_following(tree, w.layout.root.end - start, file, start, &|at| {
        written.raise(start + at);
        progress.reach(at);
    })
    .map_err(BakeError::Filesystem)?;
    written.finish();
    progress.reach(w.layout.root.end - start);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_keeps_other_lines_and_replaces_root_and_esp() {
        let old = "# comment\nUUID=1111 / xfs defaults,noatime 1 1\nUUID=AAAA-BBBB /boot/efi vfat umask=0077 0 2\n/dev/sdb /data ext4 defaults 0 2\n";
        let new = fstab(Some(old), "2222", FilesystemKind::Ext4, "CCCC-DDDD");
        let lines: Vec<&str> = new.lines().collect();
        assert_eq!(lines[0], "# comment");
        assert!(
            lines[1].starts_with("UUID=2222 ") && lines[1].contains(" ext4 "),
            "{new}"
        );
        assert!(
            lines[2].starts_with("UUID=CCCC-DDDD ") && lines[2].contains("/boot/efi"),
            "{new}"
        );
        assert_eq!(lines[3], "/dev/sdb /data ext4 defaults 0 2");
        let fresh = fstab(None, "2222", FilesystemKind::Ext4, "CCCC-DDDD");
        assert_eq!(fresh.lines().count(), 2);
    }

    #[test]
    fn boot_entries_that_name_the_root_type_name_the_new_one() {
        let entry = "title AL2023\noptions root=UUID=1 ro rootfstype=ext4 console=ttyS0\n";
        assert_eq!(
            with_rootfstype(entry, FilesystemKind::Xfs).as_deref(),
            Some("title AL2023\noptions root=UUID=1 ro rootfstype=xfs console=ttyS0\n")
        );
        assert_eq!(with_rootfstype(entry, FilesystemKind::Ext4), None);
        assert_eq!(
            with_rootfstype("options root=UUID=1 ro\n", FilesystemKind::Xfs),
            None
        );
    }

    #[test]
    fn uuids_parse_and_print_round_trip() {
        let t = "0fc63daf-8483-4772-8e79-3d69d8477de4";
        assert_eq!(uuid_text(&parse_uuid(t).unwrap()), t);
        assert!(parse_uuid("nope").is_none());
        assert_eq!(fat_serial_text(0x1234abcd), "1234-ABCD");
    }
}
