//! The root filesystem of a disk image, behind one seam.
//!
//! In: the finished tree, the filesystem's identity (UUID, label, the
//! source date, seeds derived from the image's inputs). Out: its size
//! estimate for `size = "auto"`, and the filesystem written into the root
//! partition, front to back, telling a watermark how far it is final (the
//! digest pass reads behind it). ext4 ([`crate::ext4`]) and XFS
//! ([`crate::xfs`], what stock Amazon Linux 2023 uses); another
//! filesystem is another [`RootFilesystem`] and one [`FilesystemKind`]
//! variant, not edits across `bake`, the spec and the disk layout.
//!
//! Never: reads the clock or the host, or writes outside the range it is
//! given.

use std::fs::File;

use crate::rootfs::Tree;

/// A root filesystem ingot can write (`filesystem` in the image spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesystemKind {
    Ext4,
    Xfs,
}

impl FilesystemKind {
    pub const ALL: &'static [FilesystemKind] = &[FilesystemKind::Ext4, FilesystemKind::Xfs];

    /// The name in specs and in `/etc/fstab`'s type column.
    pub fn name(self) -> &'static str {
        match self {
            FilesystemKind::Ext4 => "ext4",
            FilesystemKind::Xfs => "xfs",
        }
    }

    pub fn from_name(name: &str) -> Option<FilesystemKind> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// What `tree`'s `/etc/fstab` names as the type of `/` (the first
    /// such line, comments skipped), when it is a kind ingot writes.
    pub fn of_tree(tree: &Tree) -> Option<FilesystemKind> {
        let fstab = tree.read_text("/etc/fstab")?;
        fstab.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && !f[0].starts_with('#') && f[1] == "/")
                .then(|| FilesystemKind::from_name(f[2]))
                .flatten()
        })
    }

    /// The writer for a filesystem of this kind with `id`.
    pub fn writer(self, id: &Identity) -> Box<dyn RootFilesystem> {
        match self {
            FilesystemKind::Ext4 => Box::new(Ext4 {
                opts: crate::ext4::Options {
                    uuid: id.uuid,
                    hash_seed: id.hash_seed,
                    label: id.label.clone(),
                    timestamp: id.timestamp,
                    size: 0,
                },
            }),
            FilesystemKind::Xfs => Box::new(Xfs {
                opts: crate::xfs::Options {
                    uuid: id.uuid,
                    hash_seed: id.hash_seed,
                    label: id.label.clone(),
                    timestamp: id.timestamp,
                    size: 0,
                },
            }),
        }
    }
}

/// Who the filesystem is: the same inputs give the same identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The filesystem UUID (what `/etc/fstab` and the boot entries name).
    pub uuid: [u8; 16],
    /// A seed for whatever the filesystem hashes or numbers (ext4's
    /// directory hash, XFS's inode generations).
    pub hash_seed: [u8; 16],
    pub label: String,
    /// Every time the filesystem itself records: the source date.
    pub timestamp: u32,
}

/// Why a root filesystem cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum FilesystemError {
    #[error(transparent)]
    Ext4(#[from] crate::ext4::Ext4Error),
    #[error(transparent)]
    Xfs(#[from] crate::xfs::XfsError),
}

/// A root filesystem writer.
pub trait RootFilesystem: Send + Sync {
    fn kind(&self) -> FilesystemKind;

    /// The size `size = "auto"` gives it: what the tree needs plus
    /// headroom, in bytes.
    fn auto_size(&self, tree: &Tree) -> Result<u64, FilesystemError>;

    /// Write `tree` as a filesystem of `size` bytes at `offset` of `out`
    /// (which reads as zeros there), calling `progress(n)` once nothing
    /// below filesystem offset `n` changes any more.
    fn write_following(
        &self,
        tree: &Tree,
        size: u64,
        out: &File,
        offset: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), FilesystemError>;
}

struct Ext4 {
    opts: crate::ext4::Options,
}

impl RootFilesystem for Ext4 {
    fn kind(&self) -> FilesystemKind {
        FilesystemKind::Ext4
    }

    fn auto_size(&self, tree: &Tree) -> Result<u64, FilesystemError> {
        Ok(crate::ext4::auto_size(tree, &self.opts)?)
    }

    fn write_following(
        &self,
        tree: &Tree,
        size: u64,
        out: &File,
        offset: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), FilesystemError> {
        let opts = crate::ext4::Options {
            size,
            ..self.opts.clone()
        };
        crate::ext4::write_following(tree, &opts, out, offset, progress)?;
        Ok(())
    }
}

struct Xfs {
    opts: crate::xfs::Options,
}

impl RootFilesystem for Xfs {
    fn kind(&self) -> FilesystemKind {
        FilesystemKind::Xfs
    }

    fn auto_size(&self, tree: &Tree) -> Result<u64, FilesystemError> {
        Ok(crate::xfs::auto_size(tree, &self.opts)?)
    }

    fn write_following(
        &self,
        tree: &Tree,
        size: u64,
        out: &File,
        offset: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), FilesystemError> {
        let opts = crate::xfs::Options {
            size,
            ..self.opts.clone()
        };
        crate::xfs::write_following(tree, &opts, out, offset, progress)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_what_the_fstab_mounts_at_root() {
        let mut t = Tree::new();
        assert_eq!(FilesystemKind::of_tree(&t), None);
        t.mkdir_p("/etc", &crate::rootfs::Meta::new(0o755, 0, 0, 0))
            .unwrap();
        let fstab = "# / ext4\nLABEL=data /data ext4 defaults 0 2\nUUID=x / xfs defaults 0 0\n";
        t.put_text("/etc/fstab", fstab, 0o644, 0).unwrap();
        assert_eq!(FilesystemKind::of_tree(&t), Some(FilesystemKind::Xfs));
        t.put_text("/etc/fstab", "UUID=x / btrfs defaults 0 0\n", 0o644, 0)
            .unwrap();
        assert_eq!(FilesystemKind::of_tree(&t), None);
    }
}
