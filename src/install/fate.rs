//! What happens to a file that is already in the tree when a package
//! installs or removes it: rpm's rules for `%config` files, from rpm
//! 4.18's `rpmfilesDecideFate` and `rpmfilesConfigConflict`
//! (lib/rpmfi.c), as lib/transaction.c applies them.
//!
//! - A file the new package shares with the version it upgrades: when
//!   either marks it `%config`, [`decide`] compares what is in the tree
//!   with the digest the old package recorded and the one the new package
//!   ships. Unmodified (or already the new content): replaced. Modified,
//!   with old and new identical: left alone. Modified otherwise: the new
//!   content goes to `FILE.rpmnew` (`%config(noreplace)`), or the file in
//!   the tree is kept as `FILE.rpmsave` and replaced.
//! - A `%config` file of the new package on a path no package owns
//!   ([`conflicts`]): when the tree holds something else there, it is
//!   kept as `FILE.rpmorig` and replaced, or the new one goes to
//!   `FILE.rpmnew` (`noreplace`).
//! - A `%config` file the upgraded-away version ships and the new one
//!   does not: erased, unless modified, then kept as `FILE.rpmsave`.
//!
//! Digests of what is in the tree are taken with the algorithm of the
//! package they are compared with (MD5 for old packages), as rpm does.

use crate::rootfs::{Kind, Tree};

use super::files::{
    FileInfo, RPMFILE_CONFIG, RPMFILE_GHOST, RPMFILE_MISSINGOK, RPMFILE_NOREPLACE, S_IFLNK, S_IFREG,
};

/// rpm's file actions (`rpmFileAction`) that ingot applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write the package's file at its path.
    Create,
    /// Leave the tree as it is.
    Skip,
    /// Write the package's file as `PATH.rpmnew`; leave the tree's.
    AltName,
    /// Keep the tree's file as `PATH.rpmsave`, then write the new one (on
    /// erase: only the rename).
    Save,
    /// Keep the tree's file as `PATH.rpmorig`, then write the new one.
    Backup,
}

impl Action {
    /// The suffix of the name the tree's file or the package's file gets.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Action::AltName => Some(".rpmnew"),
            Action::Save => Some(".rpmsave"),
            Action::Backup => Some(".rpmorig"),
            Action::Create | Action::Skip => None,
        }
    }
}

/// What is at a path in the tree, as `lstat` and a digest would see it.
enum OnDisk {
    Missing,
    Regular(crate::rootfs::NodeId, u64),
    Link(Vec<u8>),
    Other,
}

fn on_disk(tree: &Tree, path: &str) -> OnDisk {
    let Ok(id) = tree.resolve(path, false) else {
        return OnDisk::Missing;
    };
    match &tree.node(id).kind {
        Kind::File(d) => OnDisk::Regular(id, d.size),
        Kind::Symlink(t) => OnDisk::Link(t.clone()),
        _ => OnDisk::Other,
    }
}

/// The tree file's digest with `f`'s algorithm; `None` when it cannot be
/// read (rpm then assumes the file is gone).
fn digest_with(tree: &Tree, id: crate::rootfs::NodeId, f: &FileInfo) -> Option<String> {
    let mut r = tree.open(id).ok()?;
    f.algo.hex_of(&mut r).ok()
}

/// `rpmfilesDecideFate`: the action for `new`, which replaces `old` (the
/// same path in the package being upgraded away, or in another installed
/// package that keeps it), when either is `%config`.
pub fn decide(tree: &Tree, old: &FileInfo, new: &FileInfo) -> Action {
    let save = if new.flags & RPMFILE_NOREPLACE != 0 {
        Action::AltName
    } else {
        Action::Save
    };
    if new.flags & RPMFILE_GHOST != 0 {
        return Action::Skip;
    }
    let disk = on_disk(tree, &new.path);
    if let OnDisk::Missing = disk {
        // rpm skips missing files marked missingok, unless --allfiles.
        return if new.flags & RPMFILE_MISSINGOK != 0 {
            Action::Skip
        } else {
            Action::Create
        };
    }
    match old.kind() {
        S_IFREG => {
            if let OnDisk::Regular(id, _) = disk {
                let Some(on_disk_old) = digest_with(tree, id, old) else {
                    return Action::Create;
                };
                if !old.digest.is_empty() && on_disk_old == old.digest {
                    return Action::Create; // unmodified: replace
                }
                if new.kind() == S_IFREG {
                    let on_disk_new = if old.algo == new.algo {
                        Some(on_disk_old)
                    } else {
                        digest_with(tree, id, new)
                    };
                    let Some(on_disk_new) = on_disk_new else {
                        return Action::Create;
                    };
                    if !new.digest.is_empty() && on_disk_new == new.digest {
                        return Action::Create; // already the new content
                    }
                }
            }
            if new.kind() == S_IFREG
                && old.algo == new.algo
                && !old.digest.is_empty()
                && old.digest == new.digest
            {
                return Action::Skip; // identical in both: keep the edit
            }
            save
        }
        S_IFLNK => {
            let disk_link = match &disk {
                OnDisk::Link(t) => Some(t.as_slice()),
                _ => None,
            };
            if disk_link.is_some_and(|t| t == old.linkto.as_bytes()) {
                return Action::Create;
            }
            if new.kind() == S_IFLNK && disk_link.is_some_and(|t| t == new.linkto.as_bytes()) {
                return Action::Create;
            }
            if new.kind() == S_IFLNK && old.linkto == new.linkto {
                return Action::Skip;
            }
            save
        }
        _ => Action::Create,
    }
}

/// `rpmfilesConfigConflict`: whether the tree holds, at `f`'s path,
/// something other than `f` (for a `%config` file only).
pub fn conflicts(tree: &Tree, f: &FileInfo) -> bool {
    if f.flags & RPMFILE_CONFIG == 0 {
        return false;
    }
    let kind = f.kind();
    if kind != S_IFLNK && kind != S_IFREG {
        return true;
    }
    let disk = on_disk(tree, &f.path);
    if let OnDisk::Missing = disk {
        return false;
    }
    if f.flags & RPMFILE_GHOST != 0 {
        return true;
    }
    match disk {
        OnDisk::Regular(id, size) if kind == S_IFREG => {
            if size != f.size {
                return true;
            }
            match digest_with(tree, id, f) {
                None => false,
                Some(d) => f.digest.is_empty() || d != f.digest,
            }
        }
        OnDisk::Link(t) if kind == S_IFLNK => t != f.linkto.as_bytes(),
        _ => true,
    }
}

/// The action for a new package's file on a path no installed package
/// owns: a `%config` file over something else is backed up (or written
/// aside, `noreplace`); everything else is created.
pub fn unowned(tree: &Tree, f: &FileInfo) -> Action {
    if conflicts(tree, f) && f.flags & RPMFILE_GHOST == 0 {
        if f.flags & RPMFILE_NOREPLACE != 0 {
            Action::AltName
        } else {
            Action::Backup
        }
    } else {
        Action::Create
    }
}

/// The action for an upgraded-away package's file that nothing installs
/// again: a modified `%config` file is kept as `.rpmsave`, the rest go.
/// `None`: leave it (a ghost, or a file rpm did not install).
pub fn erase(tree: &Tree, f: &FileInfo) -> Option<Action> {
    if f.flags & RPMFILE_GHOST != 0 || f.state != 0 {
        return None;
    }
    Some(if conflicts(tree, f) {
        Action::Save
    } else {
        Action::Create
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{Meta, Node};
    use crate::rpm::filedigest::Algo;

    fn info(path: &str, content: &[u8], flags: u32, algo: Algo) -> FileInfo {
        FileInfo {
            path: path.into(),
            mode: S_IFREG | 0o644,
            size: content.len() as u64,
            mtime: 0,
            digest: algo.hex_of(&mut &content[..]).unwrap(),
            algo,
            linkto: String::new(),
            flags,
            user: "root".into(),
            group: "root".into(),
            rdev: 0,
            inode: (0, 0),
            caps: String::new(),
            state: 0,
        }
    }

    fn tree_with(path: &str, content: &[u8]) -> Tree {
        let mut t = Tree::new();
        let m = Meta::new(0o755, 0, 0, 0);
        t.mkdir_p("/etc", &m).unwrap();
        let data = t.spill(&mut &content[..]).unwrap();
        t.insert_path(path, Node::file(Meta::new(0o644, 0, 0, 0), data))
            .unwrap();
        t
    }

    const C: u32 = RPMFILE_CONFIG;
    const NR: u32 = RPMFILE_CONFIG | RPMFILE_NOREPLACE;

    #[test]
    fn the_upgrade_rules_of_rpm() {
        let md5 = Algo::Md5;
        let sha = Algo::Sha256;
        // (on disk, old, new, old flags, new flags, algos, expected)
        type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], u32, u32, (Algo, Algo), Action);
        let cases: &[Case] = &[
            (b"v1", b"v1", b"v2", C, C, (md5, md5), Action::Create),
            (b"v1", b"v1", b"v2", NR, NR, (md5, sha), Action::Create),
            (b"v2", b"v1", b"v2", C, C, (md5, sha), Action::Create),
            (b"edit", b"v1", b"v2", C, C, (md5, md5), Action::Save),
            (b"edit", b"v1", b"v2", NR, NR, (md5, md5), Action::AltName),
            (b"edit", b"v1", b"v1", C, C, (md5, md5), Action::Skip),
            (b"edit", b"v1", b"v1", NR, NR, (sha, sha), Action::Skip),
            // Identical, but the algorithm changed: rpm cannot tell.
            (b"edit", b"v1", b"v1", C, C, (md5, sha), Action::Save),
            // Only the old one was %config: a plain new file saves it.
            (b"edit", b"v1", b"v2", C, 0, (sha, sha), Action::Save),
        ];
        for (disk, o, n, of, nf, (oa, na), want) in cases {
            let t = tree_with("/etc/x.conf", disk);
            let old = info("/etc/x.conf", o, *of, *oa);
            let new = info("/etc/x.conf", n, *nf, *na);
            assert_eq!(
                decide(&t, &old, &new),
                *want,
                "{disk:?} {o:?} {n:?} {of} {nf}"
            );
        }
    }

    #[test]
    fn missing_files_are_created_unless_missingok() {
        let t = tree_with("/etc/other", b"x");
        let old = info("/etc/x.conf", b"v1", C, Algo::Sha256);
        let new = info("/etc/x.conf", b"v2", C, Algo::Sha256);
        assert_eq!(decide(&t, &old, &new), Action::Create);
        let new = info("/etc/x.conf", b"v2", C | RPMFILE_MISSINGOK, Algo::Sha256);
        assert_eq!(decide(&t, &old, &new), Action::Skip);
    }

    #[test]
    fn unowned_config_files_over_other_contents_are_kept_aside() {
        let t = tree_with("/etc/x.conf", b"mine");
        assert_eq!(
            unowned(&t, &info("/etc/x.conf", b"pkg", C, Algo::Md5)),
            Action::Backup
        );
        assert_eq!(
            unowned(&t, &info("/etc/x.conf", b"pkg", NR, Algo::Md5)),
            Action::AltName
        );
        assert_eq!(
            unowned(&t, &info("/etc/x.conf", b"mine", C, Algo::Md5)),
            Action::Create
        );
        assert_eq!(
            unowned(&t, &info("/etc/x.conf", b"pkg", 0, Algo::Md5)),
            Action::Create
        );
        assert_eq!(
            erase(&t, &info("/etc/x.conf", b"mine", C, Algo::Md5)),
            Some(Action::Create)
        );
        assert_eq!(
            erase(&t, &info("/etc/x.conf", b"old", C, Algo::Md5)),
            Some(Action::Save)
        );
        assert_eq!(
            erase(&t, &info("/etc/x.conf", b"old", 0, Algo::Md5)),
            Some(Action::Create)
        );
    }
}
