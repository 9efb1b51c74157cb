//! A package's file list as the install reads it: one [`FileInfo`] per
//! entry of its header, with the path checked, and rpm's "fingerprint" of
//! a path in a tree (the directory it really lands in, after symlinks, and
//! its name), by which two packages' files are compared.
//!
//! In: a package header; a tree. Out: file entries, fingerprints. Never: a
//! path that is not a plain absolute name (`..`, `.`, `//`, a relative
//! name) gets through: such a path could make a package write a file it
//! does not declare, past the conflict check.

use std::collections::BTreeMap;

use crate::rootfs::Tree;
use crate::rpm::filedigest::Algo;
use crate::rpm::header::{Header, tag};

pub const RPMFILE_CONFIG: u32 = 1 << 0;
pub const RPMFILE_MISSINGOK: u32 = 1 << 3;
pub const RPMFILE_NOREPLACE: u32 = 1 << 4;
pub const RPMFILE_GHOST: u32 = 1 << 6;
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFSOCK: u32 = 0o140000;

/// One file entry of a package header.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub mtime: u32,
    /// Lowercase hex in the package's [`FileInfo::algo`]; empty for
    /// anything but a regular file.
    pub digest: String,
    pub algo: Algo,
    pub linkto: String,
    pub flags: u32,
    pub user: String,
    pub group: String,
    pub rdev: u32,
    pub inode: (u32, u32),
    pub caps: String,
    /// FILESTATES of an installed package (0: normal); 0 for a new one.
    pub state: u8,
}

impl FileInfo {
    pub fn kind(&self) -> u32 {
        self.mode & S_IFMT
    }

    pub fn is(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// The file entries of `h`. Errors name the first path that is not a
/// plain absolute name, or a digest algorithm rpm does not know.
pub fn files_of(h: &Header) -> Result<Vec<FileInfo>, String> {
    let base = h.strings(tag::BASENAMES);
    if base.is_empty() {
        return Ok(Vec::new());
    }
    let algo = Algo::of_header(h)?;
    let dirs = h.strings(tag::DIRNAMES);
    let idx = h.ints(tag::DIRINDEXES);
    let modes = h.ints(tag::FILEMODES);
    let sizes = {
        let long = h.ints(tag::LONGFILESIZES);
        if long.is_empty() {
            h.ints(tag::FILESIZES)
        } else {
            long
        }
    };
    let mtimes = h.ints(tag::FILEMTIMES);
    let digests = h.strings(tag::FILEDIGESTS);
    let links = h.strings(tag::FILELINKTOS);
    let flags = h.ints(tag::FILEFLAGS);
    let users = h.strings(tag::FILEUSERNAME);
    let groups = h.strings(tag::FILEGROUPNAME);
    let rdevs = h.ints(tag::FILERDEVS);
    let inodes = h.ints(tag::FILEINODES);
    let devices = h.ints(tag::FILEDEVICES);
    let caps = h.strings(tag::FILECAPS);
    let states = h.ints(tag::FILESTATES);
    let get = |v: &Vec<u64>, i: usize| v.get(i).copied().unwrap_or(0);
    let gets = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
    let mut out = Vec::with_capacity(base.len());
    for (i, b) in base.iter().enumerate() {
        let dir = dirs.get(get(&idx, i) as usize).ok_or_else(|| {
            format!(
                "file {i} (`{b}`) names directory {} of {}",
                get(&idx, i),
                dirs.len()
            )
        })?;
        let path = format!("{dir}{b}");
        check_path(dir, b)?;
        out.push(FileInfo {
            path,
            mode: get(&modes, i) as u32,
            size: get(&sizes, i),
            mtime: get(&mtimes, i) as u32,
            digest: gets(&digests, i).to_ascii_lowercase(),
            algo,
            linkto: gets(&links, i),
            flags: get(&flags, i) as u32,
            user: gets(&users, i),
            group: gets(&groups, i),
            rdev: get(&rdevs, i) as u32,
            inode: (get(&devices, i) as u32, get(&inodes, i) as u32),
            caps: gets(&caps, i),
            state: get(&states, i) as u8,
        });
    }
    Ok(out)
}

/// rpm's own packages name a file as a directory ending in `/` and a base
/// name without `/`; the root itself is `/` with an empty base name. Any
/// other shape (`..` or `.` components, `//`, a relative directory) is
/// refused: rpmbuild never writes one, and each is a way to land outside
/// the declared path.
fn check_path(dir: &str, base: &str) -> Result<(), String> {
    let shown = format!("{dir}{base}");
    let bad = |why: &str| {
        Err(format!(
            "the header lists `{}`, {why}",
            shown.escape_debug()
        ))
    };
    if !dir.starts_with('/') || !dir.ends_with('/') {
        return bad("whose directory is not an absolute path ending in `/`");
    }
    if base.contains('/') || base == "." || base == ".." {
        return bad("whose name is not a plain file name");
    }
    if base.is_empty() && dir != "/" {
        return bad("which has no file name");
    }
    let inner = dir
        .strip_prefix('/')
        .and_then(|d| d.strip_suffix('/'))
        .unwrap_or_default();
    if !inner.is_empty()
        && inner
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("which is not a plain absolute path (`.`, `..` or `//` in it)");
    }
    if shown.contains('\0') {
        return bad("which holds a NUL");
    }
    Ok(())
}

/// rpm's fingerprint of a path: the directory its last name lands in once
/// the tree's symlinks are followed (`/bin/sh` and `/usr/bin/sh` are one
/// file where `/bin -> usr/bin`), and that name. A path whose directory
/// does not exist yet keeps the missing part as text after the nearest
/// directory that does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint {
    dir: usize,
    rest: String,
}

/// Fingerprints of paths in one tree, with the directories already
/// resolved kept (a package's files share few directories).
pub struct Fingerprints<'t> {
    tree: &'t Tree,
    dirs: BTreeMap<String, Fingerprint>,
}

impl<'t> Fingerprints<'t> {
    pub fn new(tree: &'t Tree) -> Self {
        Fingerprints {
            tree,
            dirs: BTreeMap::new(),
        }
    }

    pub fn of(&mut self, path: &str) -> Fingerprint {
        match path.rsplit_once('/') {
            None | Some(("", "")) => Fingerprint {
                dir: self.tree.root().index(),
                rest: String::new(),
            },
            Some((dir, name)) => {
                let d = self.dir(if dir.is_empty() { "/" } else { dir });
                Fingerprint {
                    dir: d.dir,
                    rest: if d.rest.is_empty() {
                        name.to_string()
                    } else {
                        format!("{}/{name}", d.rest)
                    },
                }
            }
        }
    }

    fn dir(&mut self, dir: &str) -> Fingerprint {
        if let Some(f) = self.dirs.get(dir) {
            return f.clone();
        }
        let f = match self.tree.resolve(dir, true) {
            Ok(id) if self.tree.node(id).is_dir() => Fingerprint {
                dir: id.index(),
                rest: String::new(),
            },
            _ if dir == "/" => Fingerprint {
                dir: self.tree.root().index(),
                rest: String::new(),
            },
            _ => self.of(dir),
        };
        self.dirs.insert(dir.to_string(), f.clone());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{Meta, Node};

    #[test]
    fn only_plain_absolute_paths_pass() {
        for (d, b) in [
            ("/usr/bin/", "ls"),
            ("/", ""),
            ("/", "etc"),
            ("/a b/", "c d"),
        ] {
            assert!(check_path(d, b).is_ok(), "{d}{b}");
        }
        for (d, b) in [
            ("/usr/share/x/../../../", "etc/shadow"),
            ("/usr/share/x/../../../././", "shadow"),
            ("/usr/./", "x"),
            ("/usr//", "x"),
            ("usr/", "x"),
            ("/usr", "x"),
            ("/usr/", ".."),
            ("/usr/", ""),
            ("/usr/", "a/b"),
        ] {
            let e = check_path(d, b).unwrap_err();
            assert!(e.contains("the header lists"), "{d}{b}: {e}");
        }
    }

    #[test]
    fn a_path_through_a_symlinked_directory_is_the_same_file() {
        let mut t = Tree::new();
        let m = Meta::new(0o755, 0, 0, 0);
        t.mkdir_p("/usr/bin", &m).unwrap();
        t.insert_path("/bin", Node::symlink(m.clone(), b"usr/bin".to_vec()))
            .unwrap();
        let mut f = Fingerprints::new(&t);
        assert_eq!(f.of("/bin/sh"), f.of("/usr/bin/sh"));
        assert_ne!(f.of("/bin/sh"), f.of("/usr/bin/bash"));
        // Missing directories keep their names.
        assert_eq!(f.of("/bin/new/x"), f.of("/usr/bin/new/x"));
        assert_ne!(f.of("/opt/a/x"), f.of("/opt/b/x"));
        assert_eq!(f.of("/"), f.of("/"));
    }
}
