//! Path resolution inside the tree, never on the host, and every change
//! made by path ([`Tree::insert_path`], [`Tree::mkdir_p`], [`Tree::remove`],
//! [`Tree::hardlink`], [`Tree::put_text`], the importers' `place`), and
//! [`Tree::read_text`], a file's text by path.
//!
//! In: a path as bytes. Out: the node it names ([`Tree::resolve`]) or the
//! directory that would hold it and its last name ([`Tree::resolve_parent`]),
//! or a [`PathError`] that says what a kernel would have said. Above
//! `tree.rs` (the arena, by node id), which knows nothing of paths.
//!
//! The rules are those of the Linux kernel for a process chrooted into the
//! tree:
//! - every path is taken from `/` of the tree, absolute or not;
//! - empty components and `.` are skipped; `..` goes to the parent
//!   directory, and `..` of `/` is `/`, so no path climbs out of the tree;
//! - a symlink is followed, except as the last component when the caller
//!   asks not to; an absolute target starts again from `/` of the tree, a
//!   relative one from the directory holding the link;
//! - more than [`MAX_SYMLINK_HOPS`] symlinks in one resolution is
//!   [`PathError::Loop`] (ELOOP), which also ends every loop;
//! - a component that is not a directory where one is needed (including
//!   before a trailing `/`) is [`PathError::NotADirectory`] (ENOTDIR).
//!
//! Never: a host path, `stat` or `readlink` is involved.

use std::io::{self, Read};

use super::name::{PathError, check_name, components, display, split_last};
use super::tree::{Kind, Meta, Node, NodeId, Tree};

/// The most symlinks one resolution follows (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = 40;

impl Tree {
    /// The node `path` names; with `follow_last` a final symlink is
    /// followed (`stat`), without it the symlink itself is returned
    /// (`lstat`).
    pub fn resolve(&self, path: impl AsRef<[u8]>, follow_last: bool) -> Result<NodeId, PathError> {
        let path = path.as_ref();
        self.resolve_at(NodeId::ROOT, path, follow_last, path)
    }

    /// The directory that holds (or would hold) the last name of `path`,
    /// and that name. Symlinks before the last name are followed; the last
    /// name is not looked at, so it may not exist yet. Trailing `/` and `.`
    /// are ignored; a path with no last name (`/`, empty, ending in `..`)
    /// is [`PathError::NoName`].
    pub fn resolve_parent(&self, path: impl AsRef<[u8]>) -> Result<(NodeId, Vec<u8>), PathError> {
        let path = path.as_ref();
        let (dirs, last) = split_last(path).ok_or_else(|| PathError::NoName {
            path: display(path),
        })?;
        let mut prefix = Vec::with_capacity(path.len());
        for c in &dirs {
            prefix.push(b'/');
            prefix.extend_from_slice(c);
        }
        let dir = self.resolve_at(NodeId::ROOT, &prefix, true, path)?;
        if !self.node(dir).is_dir() {
            return Err(PathError::NotADirectory {
                path: display(path),
            });
        }
        Ok((dir, last.to_vec()))
    }

    /// Resolve `path` from directory `start` (an absolute `path` starts from
    /// `/`). `whole` is what error messages show.
    pub(crate) fn resolve_at(
        &self,
        start: NodeId,
        path: &[u8],
        follow_last: bool,
        whole: &[u8],
    ) -> Result<NodeId, PathError> {
        let mut cur = if path.starts_with(b"/") {
            NodeId::ROOT
        } else {
            start
        };
        // Components still to walk, last one first.
        let mut stack: Vec<&[u8]> = path.split(|b| *b == b'/').rev().collect();
        let mut hops = 0u32;
        while let Some(comp) = stack.pop() {
            let Kind::Dir(dir) = &self.node(cur).kind else {
                return Err(PathError::NotADirectory {
                    path: display(whole),
                });
            };
            if comp.is_empty() || comp == b"." {
                continue;
            }
            if comp == b".." {
                cur = self.slots[cur.index()].parent;
                continue;
            }
            let child = dir.get(comp).ok_or_else(|| PathError::NotFound {
                path: display(whole),
            })?;
            let is_last = stack.is_empty();
            if let Kind::Symlink(target) = &self.node(child).kind
                && (!is_last || follow_last)
            {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(PathError::Loop {
                        path: display(whole),
                    });
                }
                if target.is_empty() {
                    return Err(PathError::NotFound {
                        path: display(whole),
                    });
                }
                if target.starts_with(b"/") {
                    cur = NodeId::ROOT;
                }
                stack.extend(target.split(|b| *b == b'/').rev());
                continue;
            }
            cur = child;
        }
        Ok(cur)
    }

    /// The node at `path` without following a final symlink (`lstat`), if
    /// there is one.
    pub fn get(&self, path: impl AsRef<[u8]>) -> Option<NodeId> {
        self.resolve(path, false).ok()
    }

    /// [`Tree::resolve_parent`] then [`Tree::insert`].
    pub fn insert_path(&mut self, path: impl AsRef<[u8]>, node: Node) -> Result<NodeId, PathError> {
        let (parent, name) = self.resolve_parent(path)?;
        self.insert(parent, name, node)
    }

    /// Make `path` a directory, creating each missing component with a copy
    /// of `meta`; existing components are kept as they are, and symlinks
    /// among them are followed (so `/bin/x` with `/bin -> usr/bin` makes
    /// `/usr/bin/x`). `..` moves to the parent, `.` and empty components are
    /// skipped. Returns the directory.
    pub fn mkdir_p(&mut self, path: impl AsRef<[u8]>, meta: &Meta) -> Result<NodeId, PathError> {
        let path = path.as_ref();
        let comps: Vec<&[u8]> = components(path).collect();
        self.mkdir_p_at(NodeId::ROOT, &comps, meta, path)
    }

    pub(crate) fn mkdir_p_at(
        &mut self,
        start: NodeId,
        comps: &[&[u8]],
        meta: &Meta,
        whole: &[u8],
    ) -> Result<NodeId, PathError> {
        let mut cur = start;
        for comp in comps {
            if *comp == b".." {
                cur = self.slots[cur.index()].parent;
                continue;
            }
            check_name(comp)?;
            cur = match self.dir_entry(cur, comp)? {
                None => {
                    let id = self.push(Node::dir(meta.clone()), cur, 0);
                    self.link_entry(cur, comp, id)?;
                    id
                }
                Some(child) => match &self.node(child).kind {
                    Kind::Dir(_) => child,
                    Kind::Symlink(target) => {
                        let target = target.clone();
                        let id = self.resolve_at(cur, &target, true, whole)?;
                        if !self.node(id).is_dir() {
                            return Err(PathError::NotADirectory {
                                path: display(whole),
                            });
                        }
                        id
                    }
                    _ => {
                        return Err(PathError::NotADirectory {
                            path: display(whole),
                        });
                    }
                },
            };
        }
        Ok(cur)
    }

    /// Remove the entry `path` names (a final symlink is removed, not
    /// followed); a directory goes with everything under it. Returns the
    /// node that was unlinked. `/` cannot be removed.
    pub fn remove(&mut self, path: impl AsRef<[u8]>) -> Result<NodeId, PathError> {
        let path = path.as_ref();
        let (parent, name) = self.resolve_parent(path)?;
        let id = self
            .dir_entry(parent, &name)?
            .ok_or_else(|| PathError::NotFound {
                path: display(path),
            })?;
        self.unlink_entry(parent, &name);
        Ok(id)
    }

    /// Make `new_path` another name for the node `existing` names (a final
    /// symlink in `existing` is linked itself, as `link(2)` does). The new
    /// name replaces what is there per the insert rule. Directories cannot
    /// be hard linked.
    pub fn hardlink(
        &mut self,
        existing: impl AsRef<[u8]>,
        new_path: impl AsRef<[u8]>,
    ) -> Result<NodeId, PathError> {
        let existing = existing.as_ref();
        let target = self.resolve(existing, false)?;
        if self.node(target).is_dir() {
            return Err(PathError::IsADirectory {
                path: display(existing),
            });
        }
        let (parent, name) = self.resolve_parent(new_path)?;
        self.link_entry(parent, &name, target)?;
        Ok(target)
    }

    /// Put `node` at `path` as an importer does: missing parent directories
    /// are created with `implied` metadata, symlinks among the parents are
    /// followed (inside the tree), and a path that names `/` itself (empty,
    /// `/`, `./`) sets the root's metadata when `node` is a directory.
    pub(crate) fn place(
        &mut self,
        path: &[u8],
        node: Node,
        implied: &Meta,
    ) -> Result<NodeId, PathError> {
        match split_last(path) {
            Some((dirs, last)) => {
                let parent = self.mkdir_p_at(NodeId::ROOT, &dirs, implied, path)?;
                self.insert(parent, last, node)
            }
            None if components(path).next().is_none() && node.is_dir() => {
                self.set_meta(NodeId::ROOT, node.meta);
                Ok(NodeId::ROOT)
            }
            None => Err(PathError::NoName {
                path: display(path),
            }),
        }
    }

    /// Name existing node `id` at `path` as well (a hard link), creating
    /// missing parents as [`Tree::place`] does.
    pub(crate) fn place_link(
        &mut self,
        path: &[u8],
        id: NodeId,
        implied: &Meta,
    ) -> Result<(), PathError> {
        let (dirs, last) = split_last(path).ok_or_else(|| PathError::NoName {
            path: display(path),
        })?;
        let parent = self.mkdir_p_at(NodeId::ROOT, &dirs, implied, path)?;
        self.link_entry(parent, last, id)
    }

    /// The text of the regular file `path` names (symlinks followed), or
    /// `None` when there is none, it cannot be read or is not UTF-8.
    pub fn read_text(&self, path: &str) -> Option<String> {
        let id = self.resolve(path, true).ok()?;
        let mut s = String::new();
        self.open(id).ok()?.read_to_string(&mut s).ok()?;
        Some(s)
    }

    /// Write `text` as the file at `path`. A file already there keeps its
    /// owner, mode and other metadata, with `time` as its mtime; a new one
    /// gets `mode`, root's ownership and `time`.
    pub fn put_text(
        &mut self,
        path: &str,
        text: &str,
        mode: u32,
        time: u32,
    ) -> Result<(), PutError> {
        let data = self.spill(&mut text.as_bytes()).map_err(PutError::Spill)?;
        let meta = match self.resolve(path, true) {
            Ok(id) => Meta {
                mtime: i64::from(time),
                mtime_nsec: 0,
                ..self.node(id).meta.clone()
            },
            Err(_) => Meta::new(mode, 0, 0, i64::from(time)),
        };
        self.insert_path(path, Node::file(meta, data))
            .map_err(PutError::Path)?;
        Ok(())
    }
}

/// Why [`Tree::put_text`] failed.
#[derive(Debug)]
pub enum PutError {
    /// Writing the spill store failed.
    Spill(io::Error),
    /// The path cannot hold a file.
    Path(PathError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{FileData, Meta, Node};

    fn m() -> Meta {
        Meta::new(0o755, 0, 0, 0)
    }

    fn file() -> Node {
        Node::file(Meta::new(0o644, 0, 0, 0), FileData::default())
    }

    /// `/usr/bin/ls`, `/bin -> usr/bin`, `/lib -> /usr/lib` (absolute).
    fn al2023_like() -> Tree {
        let mut t = Tree::new();
        let usr_bin = t.mkdir_p("/usr/bin", &m()).unwrap();
        t.mkdir_p("/usr/lib", &m()).unwrap();
        t.insert(usr_bin, "ls", file()).unwrap();
        t.insert(NodeId::ROOT, "bin", Node::symlink(m(), "usr/bin"))
            .unwrap();
        t.insert(NodeId::ROOT, "lib", Node::symlink(m(), "/usr/lib"))
            .unwrap();
        t
    }

    #[test]
    fn symlinks_in_the_middle_are_followed_inside_the_tree() {
        let t = al2023_like();
        let ls = t.resolve("/usr/bin/ls", false).unwrap();
        assert_eq!(t.resolve("/bin/ls", false).unwrap(), ls);
        assert_eq!(t.resolve("bin/ls", true).unwrap(), ls);
        let (dir, name) = t.resolve_parent("/bin/foo").unwrap();
        assert_eq!(dir, t.resolve("/usr/bin", false).unwrap());
        assert_eq!(name, b"foo");
        let (dir, _) = t.resolve_parent("/lib/x.so").unwrap();
        assert_eq!(dir, t.resolve("/usr/lib", false).unwrap());
    }

    #[test]
    fn final_symlink_is_followed_only_when_asked_or_before_a_slash() {
        let t = al2023_like();
        let bin = t.resolve("/bin", false).unwrap();
        assert!(matches!(t.node(bin).kind, Kind::Symlink(_)));
        let usr_bin = t.resolve("/usr/bin", false).unwrap();
        assert_eq!(t.resolve("/bin", true).unwrap(), usr_bin);
        assert_eq!(t.resolve("/bin/", false).unwrap(), usr_bin);
        assert_eq!(t.resolve("/bin/.", false).unwrap(), usr_bin);
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        let t = al2023_like();
        let ls = t.resolve("/usr/bin/ls", false).unwrap();
        assert_eq!(t.resolve("../../../usr/bin/ls", false).unwrap(), ls);
        assert_eq!(t.resolve("/..", false).unwrap(), NodeId::ROOT);
        assert_eq!(t.resolve("/usr/../../bin/ls", false).unwrap(), ls);
        // `..` after a symlink goes to the parent of the target, as in Linux.
        assert_eq!(
            t.resolve("/bin/../lib", false).unwrap(),
            t.resolve("/usr/lib", false).unwrap()
        );
    }

    #[test]
    fn loops_and_long_chains_are_eloop_and_do_not_hang() {
        let mut t = Tree::new();
        t.insert(NodeId::ROOT, "a", Node::symlink(m(), "b"))
            .unwrap();
        t.insert(NodeId::ROOT, "b", Node::symlink(m(), "a"))
            .unwrap();
        t.insert(NodeId::ROOT, "self", Node::symlink(m(), "/self/x"))
            .unwrap();
        assert!(matches!(t.resolve("/a", true), Err(PathError::Loop { .. })));
        assert!(matches!(
            t.resolve("/self", true),
            Err(PathError::Loop { .. })
        ));
        assert!(matches!(
            t.resolve_parent("/a/x"),
            Err(PathError::Loop { .. })
        ));
        // Not following the last one is fine.
        assert!(t.resolve("/a", false).is_ok());

        // A chain of exactly 40 resolves; 41 does not.
        let mut t = Tree::new();
        t.insert(NodeId::ROOT, "end", file()).unwrap();
        t.insert(NodeId::ROOT, "l0", Node::symlink(m(), "end"))
            .unwrap();
        for i in 1..=40 {
            let target = format!("l{}", i - 1);
            t.insert(NodeId::ROOT, format!("l{i}"), Node::symlink(m(), target))
                .unwrap();
        }
        let end = t.resolve("/end", false).unwrap();
        assert_eq!(t.resolve("/l39", true).unwrap(), end);
        assert!(matches!(
            t.resolve("/l40", true),
            Err(PathError::Loop { .. })
        ));
    }

    #[test]
    fn non_directory_in_the_middle_is_enotdir_and_missing_is_enoent() {
        let t = al2023_like();
        assert!(matches!(
            t.resolve("/usr/bin/ls/x", false),
            Err(PathError::NotADirectory { .. })
        ));
        assert!(matches!(
            t.resolve("/usr/bin/ls/", false),
            Err(PathError::NotADirectory { .. })
        ));
        assert!(matches!(
            t.resolve_parent("/usr/bin/ls/x"),
            Err(PathError::NotADirectory { .. })
        ));
        assert!(matches!(
            t.resolve("/usr/nope/x", false),
            Err(PathError::NotFound { .. })
        ));
        assert!(matches!(
            t.resolve_parent("/"),
            Err(PathError::NoName { .. })
        ));
        assert!(matches!(
            t.resolve_parent("/usr/.."),
            Err(PathError::NoName { .. })
        ));
    }

    #[test]
    fn dangling_and_empty_symlinks_are_not_found() {
        let mut t = Tree::new();
        t.insert(NodeId::ROOT, "d", Node::symlink(m(), "/nowhere"))
            .unwrap();
        t.insert(NodeId::ROOT, "e", Node::symlink(m(), "")).unwrap();
        assert!(matches!(
            t.resolve("/d", true),
            Err(PathError::NotFound { .. })
        ));
        assert!(matches!(
            t.resolve("/e/x", true),
            Err(PathError::NotFound { .. })
        ));
    }
}
