//! Placing a package's payload into the tree, and erasing the files of the
//! versions it replaced, as rpm's file state machine (lib/fsm.c) does with
//! the actions the plan decided ([`fate::Action`]).
//!
//! In: the tree, a package (its header's file list, its payload), one
//! action per file. Out: the files in the tree, the nodes whose owners are
//! still names, warnings for every file kept aside. Never: a file whose
//! bytes differ from the digest its header records is kept (rpm's "cpio:
//! Digest mismatch"), and a payload member the header does not list is
//! never written.

use std::collections::BTreeMap;
use std::io::Read;

use crate::progress::Task;
use crate::rootfs::{Kind, Meta, Node, NodeId, PathError, Tree};
use crate::rpm::filedigest::HashingReader;
use crate::rpm::header::tag;
use crate::rpm::read::PackageHeaders;

use super::cpio::CpioReader;
use super::fate::Action;
use super::files::{
    FileInfo, RPMFILE_GHOST, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use super::{InstallError, InstallReport, NewPackage};

/// One package being placed.
struct Placer<'a> {
    tree: &'a mut Tree,
    pkg: &'a str,
    files: &'a [FileInfo],
    actions: &'a [Action],
    owned: &'a mut Vec<(NodeId, String, String)>,
    warnings: &'a mut Vec<String>,
    seen: Vec<bool>,
    /// Hard link sets: inode key -> (path holding the data, paths waiting).
    link_sets: BTreeMap<(u32, u32), (Option<String>, Vec<String>)>,
    set_sizes: BTreeMap<(u32, u32), usize>,
}

/// Stream one package's payload into the tree, file `i` per `actions[i]`.
/// The bytes of file data in a package's payload: regular files, a hard
/// link set's once, ghosts (which have none) aside.
pub(super) fn payload_bytes(files: &[FileInfo]) -> u64 {
    let sets: BTreeMap<(u32, u32), u64> = files
        .iter()
        .filter(|f| f.kind() == S_IFREG && f.flags & RPMFILE_GHOST == 0)
        .map(|f| (f.inode, f.size))
        .collect();
    sets.values().sum()
}

/// Place a package's payload; `progress` hears the bytes of file data
/// placed.
pub(super) fn place_payload(
    tree: &mut Tree,
    n: &NewPackage,
    actions: &[Action],
    (owned, report): (&mut Vec<(NodeId, String, String)>, &mut InstallReport),
    time: u32,
    progress: &Task,
) -> Result<(), InstallError> {
    let pkg = n.deps.nevra.as_str();
    make_parents(tree, pkg, &n.files, time)?;
    let by_path: BTreeMap<&str, usize> = n
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    let payload_err = |source: std::io::Error| InstallError::Payload {
        package: pkg.to_string(),
        source,
    };
    let (_, file) = PackageHeaders::open(&n.path).map_err(payload_err)?;
    let compressor = n.headers.header.string(tag::PAYLOADCOMPRESSOR);
    let stream = crate::rpm::payload::decoder(compressor.as_deref(), std::io::BufReader::new(file))
        .map_err(payload_err)?;
    let mut cpio = CpioReader::new(stream);
    // The archive is no longer than the package says it is.
    let sig = &n.headers.signature;
    if let Some(max) = sig
        .int(tag::SIG_LONGARCHIVESIZE)
        .or_else(|| sig.int(tag::SIG_PAYLOADSIZE))
    {
        cpio.set_max_bytes(max);
    }
    let files = &n.files;
    let mut p = Placer {
        tree,
        pkg,
        files,
        actions,
        owned,
        warnings: &mut report.warnings,
        seen: vec![false; files.len()],
        link_sets: BTreeMap::new(),
        set_sizes: files.iter().filter(|f| f.kind() == S_IFREG).fold(
            BTreeMap::new(),
            |mut m, f| {
                *m.entry(f.inode).or_insert(0) += 1;
                m
            },
        ),
    };
    // In rpm's stripped cpio form a hard link set's data comes with its
    // member of highest file index only; the others carry none.
    let stripped_size = |i: u32| -> Option<u64> {
        let i = i as usize;
        let f = files.get(i)?;
        let later_link = f.kind() == S_IFREG
            && files[i + 1..]
                .iter()
                .any(|g| g.inode == f.inode && g.kind() == S_IFREG);
        Some(if later_link { 0 } else { f.size })
    };
    while let Some(entry) = cpio.next_entry(stripped_size).map_err(payload_err)? {
        let i = match entry.index {
            Some(i) => i as usize,
            None => {
                let name = entry.name.strip_prefix('.').unwrap_or(&entry.name);
                *by_path.get(name).ok_or_else(|| {
                    p.refused(format!(
                        "the payload holds `{}`, which the header does not list",
                        entry.name.escape_debug()
                    ))
                })?
            }
        };
        if i >= files.len() {
            return Err(p.refused(format!("payload names file {i}, which the header lacks")));
        }
        p.seen[i] = true;
        if files[i].kind() == S_IFREG {
            p.regular(i, entry.size, &mut cpio.data())?;
            progress.advance(entry.size);
        } else {
            p.other(i)?;
        }
    }
    p.finish(&by_path)
}

/// rpm creates missing parent folders (0755, root) for what it places.
fn make_parents(
    tree: &mut Tree,
    pkg: &str,
    files: &[FileInfo],
    time: u32,
) -> Result<(), InstallError> {
    let parents_meta = Meta::new(0o755, 0, 0, i64::from(time));
    for f in files.iter().filter(|f| f.flags & RPMFILE_GHOST == 0) {
        if let Some((parent, _)) = f.path.rsplit_once('/')
            && !parent.is_empty()
            && tree.resolve(parent, true).is_err()
        {
            tree.mkdir_p(parent, &parents_meta)
                .map_err(|source| InstallError::Place {
                    package: pkg.to_string(),
                    path: parent.to_string(),
                    source,
                })?;
        }
    }
    Ok(())
}

impl Placer<'_> {
    fn refused(&self, what: String) -> InstallError {
        InstallError::Refused {
            message: format!("{}: {what}", self.pkg),
        }
    }

    fn place_err(&self, path: &str, source: PathError) -> InstallError {
        InstallError::Place {
            package: self.pkg.to_string(),
            path: path.to_string(),
            source,
        }
    }

    fn meta(&self, f: &FileInfo) -> Result<Meta, InstallError> {
        let mut meta = Meta::new(f.mode, 0, 0, i64::from(f.mtime));
        if !f.caps.is_empty() {
            let x = super::caps::xattr_from_text(&f.caps)
                .map_err(|m| self.refused(format!("{}: {m}", f.path)))?;
            meta.xattrs.insert("security.capability".into(), x);
        }
        Ok(meta)
    }

    /// Where file `i` goes per its action, after keeping what the tree has
    /// there aside when the action says so; `None`: leave the tree alone.
    fn target(&mut self, i: usize) -> Result<Option<String>, InstallError> {
        let f = &self.files[i];
        let action = self.actions.get(i).copied().unwrap_or(Action::Create);
        Ok(match action {
            Action::Create => Some(f.path.clone()),
            Action::Skip => None,
            Action::AltName => {
                let alt = format!("{}.rpmnew", f.path);
                self.warnings
                    .push(format!("{}: {} created as {alt}", self.pkg, f.path));
                Some(alt)
            }
            Action::Save | Action::Backup => {
                let kept = format!("{}{}", f.path, action.suffix().unwrap_or_default());
                rename(self.tree, &f.path, &kept).map_err(|e| self.place_err(&kept, e))?;
                self.warnings
                    .push(format!("{}: {} saved as {kept}", self.pkg, f.path));
                Some(f.path.clone())
            }
        })
    }

    /// A regular file: its bytes, checked against the header's size and
    /// digest while they are stored.
    fn regular(&mut self, i: usize, size: u64, data: &mut dyn Read) -> Result<(), InstallError> {
        let f = &self.files[i];
        let multi = self.set_sizes.get(&f.inode).copied().unwrap_or(1) > 1;
        if multi && size == 0 && f.size > 0 {
            // A hard link whose data comes with a later member.
            let set = self.link_sets.entry(f.inode).or_default();
            match set.0.clone() {
                Some(holder) => {
                    self.tree
                        .hardlink(&holder, &f.path)
                        .map_err(|e| self.place_err(&f.path, e))?;
                }
                None => set.1.push(f.path.clone()),
            }
            return Ok(());
        }
        if size != f.size {
            return Err(self.refused(format!(
                "`{}` has {size} bytes in the payload, {} in the header",
                f.path, f.size
            )));
        }
        let mut hashing = HashingReader::new(data, f.algo);
        let stored = self
            .tree
            .spill(&mut hashing)
            .map_err(|source| InstallError::Payload {
                package: self.pkg.to_string(),
                source,
            })?;
        if stored.size != f.size {
            return Err(self.refused(format!(
                "`{}` has {} bytes in the payload, {} in the header",
                f.path, stored.size, f.size
            )));
        }
        let got = hashing.finish_hex();
        if !f.digest.is_empty() && got != f.digest {
            return Err(self.refused(format!(
                "`{}`: digest mismatch: the header records {} {}, the payload holds {got}",
                f.path,
                f.algo.name(),
                f.digest
            )));
        }
        let meta = self.meta(f)?;
        let Some(target) = self.target(i)? else {
            return Ok(());
        };
        let id = self
            .tree
            .insert_path(&target, Node::file(meta, stored))
            .map_err(|e| self.place_err(&target, e))?;
        let f = &self.files[i];
        self.owned.push((id, f.user.clone(), f.group.clone()));
        if multi {
            let set = self.link_sets.entry(f.inode).or_default();
            set.0 = Some(target.clone());
            for p in std::mem::take(&mut set.1) {
                self.tree
                    .hardlink(&target, &p)
                    .map_err(|e| self.place_err(&p, e))?;
            }
        }
        Ok(())
    }

    /// Anything but a regular file.
    fn other(&mut self, i: usize) -> Result<(), InstallError> {
        let f = &self.files[i];
        if f.kind() == S_IFDIR {
            // A directory over a symlink to a directory keeps the symlink
            // (as rpm does: `/bin -> usr/bin` stays).
            if let Ok(existing) = self.tree.resolve(&f.path, false)
                && matches!(self.tree.node(existing).kind, Kind::Symlink(_))
                && self
                    .tree
                    .resolve(&f.path, true)
                    .is_ok_and(|t| self.tree.node(t).is_dir())
            {
                return Ok(());
            }
        }
        let meta = self.meta(f)?;
        let Some(node) = node_for(f, meta) else {
            return Err(self.refused(format!(
                "`{}` has an unknown file type {:o}",
                f.path, f.mode
            )));
        };
        let Some(target) = self.target(i)? else {
            return Ok(());
        };
        let id = self
            .tree
            .insert_path(&target, node)
            .map_err(|e| self.place_err(&target, e))?;
        let f = &self.files[i];
        self.owned.push((id, f.user.clone(), f.group.clone()));
        Ok(())
    }

    /// Hard link sets whose members all came without data (empty files),
    /// and entries the payload lacked.
    fn finish(mut self, by_path: &BTreeMap<&str, usize>) -> Result<(), InstallError> {
        for (_, (holder, waiting)) in std::mem::take(&mut self.link_sets) {
            if holder.is_none()
                && let Some((first, rest)) = waiting.split_first()
            {
                let i = by_path[first.as_str()];
                self.regular(i, 0, &mut std::io::empty())?;
                for p in rest {
                    self.tree
                        .hardlink(first, p)
                        .map_err(|e| self.place_err(p, e))?;
                }
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            if self.seen[i] || f.flags & RPMFILE_GHOST != 0 {
                continue;
            }
            if f.kind() != S_IFREG {
                // Directories and links are always in rpm's payloads; a
                // missing one is odd but harmless to create from the header.
                self.other(i)?;
            } else if f.size > 0 {
                let waiting_ok = self
                    .files
                    .iter()
                    .enumerate()
                    .any(|(j, g)| j != i && g.inode == f.inode && self.seen[j]);
                if !waiting_ok {
                    return Err(self.refused(format!("the payload lacks `{}`", f.path)));
                }
            }
        }
        Ok(())
    }
}

/// `rename(2)` inside the tree: `from`'s node gets the name `to`.
fn rename(tree: &mut Tree, from: &str, to: &str) -> Result<(), PathError> {
    tree.hardlink(from, to)?;
    tree.remove(from)?;
    Ok(())
}

/// Erase what the plan says of the replaced packages' files: remove them
/// (directories only when empty), or keep modified `%config` files as
/// `.rpmsave`.
pub(super) fn erase(tree: &mut Tree, erase: &[(String, Action)], warnings: &mut Vec<String>) {
    for (path, action) in erase {
        let Ok(id) = tree.resolve(path, false) else {
            continue;
        };
        if *action == Action::Save {
            let kept = format!("{path}.rpmsave");
            if rename(tree, path, &kept).is_ok() {
                warnings.push(format!("{path} saved as {kept}"));
            }
            continue;
        }
        let is_nonempty_dir = tree.node(id).as_dir().is_some_and(|d| !d.is_empty());
        if !is_nonempty_dir {
            let _ = tree.remove(path);
        }
    }
}

fn node_for(f: &FileInfo, meta: Meta) -> Option<Node> {
    let major = (f.rdev >> 8) & 0xfff;
    let minor = (f.rdev & 0xff) | ((f.rdev >> 12) & 0xfff00);
    Some(match f.mode & S_IFMT {
        S_IFDIR => Node::dir(meta),
        S_IFLNK => Node::symlink(meta, f.linkto.as_bytes().to_vec()),
        S_IFCHR => Node {
            meta,
            kind: Kind::CharDev { major, minor },
        },
        S_IFBLK => Node {
            meta,
            kind: Kind::BlockDev { major, minor },
        },
        S_IFIFO => Node {
            meta,
            kind: Kind::Fifo,
        },
        S_IFSOCK => Node {
            meta,
            kind: Kind::Socket,
        },
        _ => return None,
    })
}
