//! The file plan of a transaction, decided before the tree changes, as
//! rpm's transaction does (lib/transaction.c): which files conflict, and
//! for every file of the new packages and of the versions they replace,
//! what happens to it ([`fate`](super::fate)).
//!
//! Paths are compared by fingerprint ([`Fingerprints`]), so `/bin/x` and
//! `/usr/bin/x` are one file where `/bin -> usr/bin`, as for rpm.

use std::collections::BTreeMap;

use crate::rootfs::Tree;

use super::fate::{self, Action};
use super::files::{FileInfo, Fingerprint, Fingerprints, RPMFILE_CONFIG, RPMFILE_GHOST};
use super::files::{S_IFBLK, S_IFCHR, S_IFLNK, S_IFMT, S_IFREG};

/// A package's files, for planning.
pub struct PkgFiles<'a> {
    pub nevra: &'a str,
    pub files: &'a [FileInfo],
}

/// What the transaction does with files.
#[derive(Debug, Default)]
pub struct FilePlan {
    /// Per new package (in the order given), per file: the action.
    pub actions: Vec<Vec<Action>>,
    /// Files of the replaced packages that nothing installs again, deepest
    /// first: erase them (`Create`) or keep them as `.rpmsave` (`Save`).
    pub erase: Vec<(String, Action)>,
}

/// Plan the files of `new` over a tree whose installed packages are
/// `kept` (staying) and `replaced` (upgraded away or obsoleted). An error
/// lists every file conflict.
pub fn plan(
    tree: &Tree,
    new: &[PkgFiles],
    kept: &[PkgFiles],
    replaced: &[PkgFiles],
) -> Result<FilePlan, Vec<String>> {
    let mut fps = Fingerprints::new(tree);
    let mut owned: BTreeMap<Fingerprint, (&str, &FileInfo)> = BTreeMap::new();
    for p in kept {
        for f in p.files {
            owned.insert(fps.of(&f.path), (p.nevra, f));
        }
    }
    let mut old: BTreeMap<Fingerprint, &FileInfo> = BTreeMap::new();
    for p in replaced {
        for f in p.files {
            old.insert(fps.of(&f.path), f);
        }
    }
    let mut added: BTreeMap<Fingerprint, (&str, &FileInfo)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut out = FilePlan::default();
    for p in new {
        let mut actions = Vec::with_capacity(p.files.len());
        for f in p.files {
            let fp = fps.of(&f.path);
            for (owner, other) in [owned.get(&fp), added.get(&fp)].into_iter().flatten() {
                if files_conflict(other, f) {
                    conflicts.push(format!(
                        "file {} from {} conflicts with the file from {owner}",
                        f.path, p.nevra
                    ));
                }
            }
            let before = old.get(&fp).copied().or(owned.get(&fp).map(|(_, f)| *f));
            let action = match before {
                Some(o) if (o.flags | f.flags) & RPMFILE_CONFIG != 0 => fate::decide(tree, o, f),
                Some(_) => Action::Create,
                None => fate::unowned(tree, f),
            };
            actions.push(action);
            added.entry(fp).or_insert((p.nevra, f));
        }
        out.actions.push(actions);
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let mut gone: Vec<&FileInfo> = replaced
        .iter()
        .flat_map(|p| p.files.iter())
        .filter(|f| {
            let fp = fps.of(&f.path);
            !owned.contains_key(&fp) && !added.contains_key(&fp)
        })
        .collect();
    // Deepest first, so directories are empty when their turn comes.
    gone.sort_by(|a, b| b.path.cmp(&a.path));
    gone.dedup_by(|a, b| a.path == b.path);
    out.erase = gone
        .into_iter()
        .filter_map(|f| fate::erase(tree, f).map(|a| (f.path.clone(), a)))
        .collect();
    Ok(out)
}

/// rpm's `rpmfilesCompare` (lib/rpmfi.c): two packages may share a path
/// when the entries are the same: mode (symlinks aside), size, owner and
/// group, and the link target, digest (same algorithm) or device number;
/// ghosts never conflict.
fn files_conflict(a: &FileInfo, b: &FileInfo) -> bool {
    if a.flags & RPMFILE_GHOST != 0 || b.flags & RPMFILE_GHOST != 0 {
        return false;
    }
    let (ta, tb) = (a.mode & S_IFMT, b.mode & S_IFMT);
    if !(ta == S_IFLNK && tb == S_IFLNK) && a.mode != b.mode {
        return true;
    }
    if (ta == S_IFLNK || ta == S_IFREG) && a.size != b.size {
        return true;
    }
    if a.user != b.user || a.group != b.group {
        return true;
    }
    match ta {
        S_IFLNK => a.linkto != b.linkto,
        S_IFREG => a.algo != b.algo || a.digest != b.digest,
        S_IFCHR | S_IFBLK => a.rdev != b.rdev,
        _ => false,
    }
}
