//! The tree itself: an arena of nodes holding a root filesystem's metadata.
//!
//! In: nodes built by the importers or by callers ([`Node::dir`],
//! [`Node::file`], ...), placed by node id. Out: a tree that lists itself
//! in a deterministic order ([`Tree::walk`]) and hands file contents out as
//! streams from its store ([`Tree::open`], `store.rs`). Look-ups and
//! changes by path are `path.rs`, above this file; names and path text are
//! `name.rs`, below it.
//!
//! Rules this file keeps:
//! - Node 0 ([`NodeId::ROOT`]) is `/`, always a directory; it cannot be
//!   removed or replaced.
//! - A directory is named by exactly one entry (no directory hard links), so
//!   it knows its parent; `..` follows that parent, and `..` of `/` is `/`.
//! - A non-directory may be named by several entries: those are hard links
//!   ([`Tree::nlink`] counts them).
//! - Entry names are never empty, `.` or `..`, and never hold `/` or NUL.
//! - Replacement on [`Tree::insert`] (the same rule tar and rpm follow when
//!   they unpack over an existing tree): a directory over a directory keeps
//!   the existing directory and its entries and takes the new metadata;
//!   anything over a non-directory (symlinks included: they are replaced,
//!   not followed) unlinks the old entry, whose other hard links keep it;
//!   anything but a directory over an empty directory replaces it; over a
//!   non-empty directory it is an error ([`PathError::DirectoryNotEmpty`]).
//! - Removed nodes stay in the arena (ids never change meaning); they are
//!   unreachable, so [`Tree::walk`] and the writers never see them.
//!
//! Never: a look-up or mutation never touches the host filesystem.

use std::collections::BTreeMap;
use std::collections::btree_map;

use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::name::{PathError, check_name, display};
use super::store::{FileData, FileReader, SourceId, SpillWriter, Store};

/// A node's index in its tree's arena. Only meaningful for the tree that
/// returned it; passing another tree's id to a method may panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The root directory `/`.
    pub const ROOT: NodeId = NodeId(0);

    /// The arena index (stable for the life of the tree).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Everything about a node except its type and contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and
    /// sticky (0o1000); never file-type bits.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch (may be negative).
    pub mtime: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub mtime_nsec: u32,
    /// Extended attributes by full name (`security.selinux`,
    /// `security.capability`, `user.*`, ...), raw values.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    /// Mode `mode` (masked to 0o7777), owned by `uid:gid`, mtime `mtime`.
    pub fn new(mode: u32, uid: u32, gid: u32, mtime: i64) -> Meta {
        Meta {
            mode: (mode & 0o7777) as u16,
            uid,
            gid,
            mtime,
            mtime_nsec: 0,
            xattrs: BTreeMap::new(),
        }
    }
}

/// A directory's entries, name bytes to node, in byte order. Only the tree
/// adds entries; a `Dir` built outside a tree is always empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dir {
    entries: BTreeMap<Vec<u8>, NodeId>,
}

impl Dir {
    /// An empty directory.
    pub fn new() -> Dir {
        Dir::default()
    }

    /// The entries, sorted by name bytes.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, NodeId> {
        &self.entries
    }

    pub fn get(&self, name: &[u8]) -> Option<NodeId> {
        self.entries.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What a node is, with what only that type has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir(Dir),
    /// A regular file: its size and where its bytes live (never the bytes).
    File(FileData),
    /// A symbolic link and its target bytes, verbatim.
    Symlink(Vec<u8>),
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

/// One inode: metadata and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub meta: Meta,
    pub kind: Kind,
}

impl Node {
    pub fn dir(meta: Meta) -> Node {
        Node {
            meta,
            kind: Kind::Dir(Dir::new()),
        }
    }

    pub fn file(meta: Meta, data: FileData) -> Node {
        Node {
            meta,
            kind: Kind::File(data),
        }
    }

    pub fn symlink(meta: Meta, target: impl Into<Vec<u8>>) -> Node {
        Node {
            meta,
            kind: Kind::Symlink(target.into()),
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    /// The directory's entries, if this is a directory.
    pub fn as_dir(&self) -> Option<&Dir> {
        match &self.kind {
            Kind::Dir(d) => Some(d),
            _ => None,
        }
    }
}

pub(crate) struct Slot {
    pub(crate) node: Node,
    /// For a directory, the directory that names it (`/` for `/`).
    pub(crate) parent: NodeId,
    /// How many directory entries name this node (0 once removed; 1 for `/`).
    pub(crate) links: u32,
}

/// A whole root filesystem's metadata; contents stay in host files and the
/// spill store (see `store.rs`).
pub struct Tree {
    pub(crate) slots: Vec<Slot>,
    pub(crate) store: Store,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

/// The metadata `/` has until something sets it: 0755, root-owned, epoch.
fn default_root_meta() -> Meta {
    Meta::new(0o755, 0, 0, 0)
}

impl Tree {
    /// An empty tree (just `/`); spilled contents go to a temporary file in
    /// the system's temporary folder, created on first use.
    pub fn new() -> Tree {
        Tree::with_store(Store::new(None))
    }

    /// An empty tree whose spill store is a temporary file in `dir`
    /// (created on first use, removed when the tree is dropped).
    pub fn with_spill_dir(dir: &std::path::Path) -> Tree {
        Tree::with_store(Store::new(Some(dir.to_path_buf())))
    }

    fn with_store(store: Store) -> Tree {
        Tree {
            slots: vec![Slot {
                node: Node::dir(default_root_meta()),
                parent: NodeId::ROOT,
                links: 1,
            }],
            store,
        }
    }

    /// `/`.
    pub fn root(&self) -> NodeId {
        NodeId::ROOT
    }

    /// The node `id` names. Panics if `id` is not from this tree.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.slots[id.index()].node
    }

    /// Replace a node's metadata.
    pub fn set_meta(&mut self, id: NodeId, meta: Meta) {
        self.slots[id.index()].node.meta = meta;
    }

    /// A node's metadata, to change in place.
    pub fn meta_mut(&mut self, id: NodeId) -> &mut Meta {
        &mut self.slots[id.index()].node.meta
    }

    /// How many nodes the arena holds (removed ones included): an upper
    /// bound for [`NodeId::index`].
    pub fn arena_len(&self) -> usize {
        self.slots.len()
    }

    /// The link count a filesystem would show: for a directory 2 plus its
    /// subdirectories; for anything else the number of entries naming it
    /// (0 once removed).
    pub fn nlink(&self, id: NodeId) -> u32 {
        let slot = &self.slots[id.index()];
        match &slot.node.kind {
            Kind::Dir(d) => {
                let subdirs = d
                    .entries
                    .values()
                    .filter(|c| self.node(**c).is_dir())
                    .count();
                2u32.saturating_add(u32::try_from(subdirs).unwrap_or(u32::MAX))
            }
            _ => slot.links,
        }
    }

    /// Put `node` in directory `parent` under `name`, replacing what is
    /// there per the rule in this file's doc; returns the node that now has
    /// the name (the existing one when a directory meets a directory).
    pub fn insert(
        &mut self,
        parent: NodeId,
        name: impl AsRef<[u8]>,
        node: Node,
    ) -> Result<NodeId, PathError> {
        let name = name.as_ref();
        check_name(name)?;
        self.check_node(&node)?;
        let existing = self.dir_entry(parent, name)?;
        if let Some(old) = existing
            && node.is_dir()
            && self.node(old).is_dir()
        {
            self.slots[old.index()].node.meta = node.meta;
            return Ok(old);
        }
        let id = self.push(node, parent, 0);
        self.link_entry(parent, name, id)?;
        Ok(id)
    }

    /// Every reachable path with its node, `/` first, parents before their
    /// entries, entries of a directory in name-byte order (so the order is
    /// by path components: `/a`, `/a/b`, `/a-b`). Paths are absolute
    /// (`/usr/bin/ls`). A hard-linked node appears once per name.
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            tree: self,
            stack: Vec::new(),
            path: Vec::new(),
            started: false,
        }
    }

    /// Copy `reader` to the end into the spill store, applying the hole
    /// rule (see this module's doc); returns the file's contents.
    pub fn spill(&mut self, reader: &mut dyn Read) -> io::Result<FileData> {
        let mut w = SpillWriter::new(&mut self.store);
        let size = w.write_at(0, reader, u64::MAX)?;
        w.finish(size)
    }

    /// Register a host file whose byte ranges extents may name. The file
    /// is opened anew each time a reader needs it; it must not change
    /// while the tree lives.
    pub fn add_host_source(&mut self, path: impl Into<PathBuf>) -> SourceId {
        self.store.add_host(path.into())
    }

    /// A reader of the contents of regular file `id` (holes read as zeros).
    pub fn open(&self, id: NodeId) -> io::Result<FileReader<'_>> {
        match &self.node(id).kind {
            Kind::File(data) => Ok(FileReader::new(&self.store, data)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )),
        }
    }

    /// SHA-256 of regular file `id`'s contents, lowercase hex.
    pub fn file_sha256(&self, id: NodeId) -> io::Result<String> {
        let mut r = self.open(id)?;
        let mut h = Sha256::new();
        io::copy(&mut r, &mut h)?;
        Ok(hex::encode(h.finalize()))
    }

    /// The directory entry `name` in `dir`, if any; error if `dir` is not a
    /// directory.
    pub(crate) fn dir_entry(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>, PathError> {
        match &self.node(dir).kind {
            Kind::Dir(d) => Ok(d.get(name)),
            _ => Err(PathError::NotADirectory {
                path: self.path_of_display(dir, None),
            }),
        }
    }

    pub(super) fn push(&mut self, node: Node, parent: NodeId, links: u32) -> NodeId {
        let id = NodeId(u32::try_from(self.slots.len()).expect("more than 4 billion nodes"));
        self.slots.push(Slot {
            node,
            parent,
            links,
        });
        id
    }

    /// Name `id` as `name` in `parent`, replacing what is there per the
    /// insert rule (the directory-meets-directory case is the caller's).
    pub(crate) fn link_entry(
        &mut self,
        parent: NodeId,
        name: &[u8],
        id: NodeId,
    ) -> Result<(), PathError> {
        check_name(name)?;
        if let Some(old) = self.dir_entry(parent, name)? {
            if old == id {
                return Ok(());
            }
            if let Kind::Dir(d) = &self.node(old).kind
                && !d.is_empty()
            {
                return Err(PathError::DirectoryNotEmpty {
                    path: self.path_of_display(parent, Some(name)),
                });
            }
            self.unlink_entry(parent, name);
        }
        if let Kind::Dir(d) = &mut self.slots[parent.index()].node.kind {
            d.entries.insert(name.to_vec(), id);
        }
        let slot = &mut self.slots[id.index()];
        slot.links = slot.links.saturating_add(1);
        if slot.node.is_dir() {
            slot.parent = parent;
        }
        Ok(())
    }

    /// Drop entry `name` from `parent` and the links of everything that
    /// only it reached.
    pub(super) fn unlink_entry(&mut self, parent: NodeId, name: &[u8]) {
        let removed = match &mut self.slots[parent.index()].node.kind {
            Kind::Dir(d) => d.entries.remove(name),
            _ => None,
        };
        let mut stack: Vec<NodeId> = removed.into_iter().collect();
        while let Some(id) = stack.pop() {
            let slot = &mut self.slots[id.index()];
            slot.links = slot.links.saturating_sub(1);
            if slot.links == 0
                && let Kind::Dir(d) = &slot.node.kind
            {
                stack.extend(d.entries.values().copied());
            }
        }
    }

    /// Refuse nodes that would break the tree's invariants.
    fn check_node(&self, node: &Node) -> Result<(), PathError> {
        match &node.kind {
            Kind::Dir(d) if !d.is_empty() => Err(PathError::InvalidNode {
                reason: "a directory can only be inserted empty".into(),
            }),
            Kind::File(data) => self
                .store
                .check(data)
                .map_err(|reason| PathError::InvalidNode { reason }),
            _ => Ok(()),
        }
    }

    /// The path of directory `dir` (plus `name`), for messages.
    pub(crate) fn path_of_display(&self, dir: NodeId, name: Option<&[u8]>) -> String {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if let Some(n) = name {
            parts.push(n.to_vec());
        }
        let mut cur = dir;
        let mut guard = 0usize;
        while cur != NodeId::ROOT && guard < self.slots.len() {
            guard += 1;
            let parent = self.slots[cur.index()].parent;
            let found = self.node(parent).as_dir().and_then(|d| {
                d.entries
                    .iter()
                    .find(|(_, v)| **v == cur)
                    .map(|(k, _)| k.clone())
            });
            match found {
                Some(n) => parts.push(n),
                None => {
                    parts.push(b"?".to_vec());
                    break;
                }
            }
            cur = parent;
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        display(&out)
    }
}

/// Iterator of [`Tree::walk`]: `(absolute path, node)`.
pub struct Walk<'a> {
    tree: &'a Tree,
    /// Per open directory: the length of its path and its entry iterator.
    stack: Vec<(usize, btree_map::Iter<'a, Vec<u8>, NodeId>)>,
    path: Vec<u8>,
    started: bool,
}

impl Iterator for Walk<'_> {
    type Item = (Vec<u8>, NodeId);

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            self.path.push(b'/');
            if let Some(d) = self.tree.node(NodeId::ROOT).as_dir() {
                self.stack.push((1, d.entries.iter()));
            }
            return Some((b"/".to_vec(), NodeId::ROOT));
        }
        loop {
            let (len, it) = self.stack.last_mut()?;
            let len = *len;
            match it.next() {
                None => {
                    self.stack.pop();
                }
                Some((name, id)) => {
                    self.path.truncate(len);
                    if len > 1 {
                        self.path.push(b'/');
                    }
                    self.path.extend_from_slice(name);
                    if let Some(d) = self.tree.node(*id).as_dir() {
                        self.stack.push((self.path.len(), d.entries.iter()));
                    }
                    return Some((self.path.clone(), *id));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(mode: u32) -> Meta {
        Meta::new(mode, 0, 0, 0)
    }

    fn file() -> Node {
        Node::file(m(0o644), FileData::default())
    }

    #[test]
    fn directory_over_directory_keeps_entries_and_takes_the_new_metadata() {
        let mut t = Tree::new();
        let etc = t.mkdir_p("/etc", &m(0o755)).unwrap();
        t.insert(etc, "passwd", file()).unwrap();
        let again = t.insert(NodeId::ROOT, "etc", Node::dir(m(0o700))).unwrap();
        assert_eq!(again, etc);
        assert_eq!(t.node(etc).meta.mode, 0o700);
        assert!(t.get("/etc/passwd").is_some());
    }

    #[test]
    fn non_directories_are_replaced_and_other_hard_links_keep_the_old_node() {
        let mut t = Tree::new();
        let a = t.insert(NodeId::ROOT, "a", file()).unwrap();
        t.hardlink("/a", "/b").unwrap();
        assert_eq!(t.nlink(a), 2);
        let new = t
            .insert(NodeId::ROOT, "a", Node::symlink(m(0o777), "b"))
            .unwrap();
        assert_ne!(new, a);
        assert_eq!(t.get("/b"), Some(a));
        assert_eq!(t.nlink(a), 1);
        // A symlink to a directory is replaced, not followed.
        t.mkdir_p("/d", &m(0o755)).unwrap();
        t.insert(NodeId::ROOT, "l", Node::symlink(m(0o777), "d"))
            .unwrap();
        let l = t.insert(NodeId::ROOT, "l", Node::dir(m(0o755))).unwrap();
        assert!(t.node(l).is_dir());
        assert_ne!(Some(l), t.get("/d"));
    }

    #[test]
    fn only_empty_directories_can_be_replaced_by_non_directories() {
        let mut t = Tree::new();
        t.mkdir_p("/empty", &m(0o755)).unwrap();
        t.mkdir_p("/full/x", &m(0o755)).unwrap();
        t.insert(NodeId::ROOT, "empty", file()).unwrap();
        assert!(matches!(
            t.insert(NodeId::ROOT, "full", file()),
            Err(PathError::DirectoryNotEmpty { .. })
        ));
        assert!(matches!(
            t.insert(NodeId::ROOT, "..", file()),
            Err(PathError::BadName { .. })
        ));
        assert!(matches!(
            t.insert(NodeId::ROOT, "a/b", file()),
            Err(PathError::BadName { .. })
        ));
    }

    #[test]
    fn nodes_that_break_the_tree_are_refused() {
        let mut t = Tree::new();
        t.mkdir_p("/x/y", &m(0o755)).unwrap();
        let x = t.get("/x").unwrap();
        let copy = t.node(x).clone();
        assert!(matches!(
            t.insert(NodeId::ROOT, "z", copy),
            Err(PathError::InvalidNode { .. })
        ));
        let foreign = FileData {
            size: 10,
            extents: vec![crate::rootfs::Extent {
                file_offset: 0,
                len: 10,
                source: crate::rootfs::SourceId(99),
                source_offset: 0,
            }],
        };
        assert!(matches!(
            t.insert(NodeId::ROOT, "f", Node::file(m(0o644), foreign)),
            Err(PathError::InvalidNode { .. })
        ));
    }

    #[test]
    fn remove_takes_the_subtree_and_fixes_link_counts() {
        let mut t = Tree::new();
        t.mkdir_p("/a/b", &m(0o755)).unwrap();
        let f = t.insert_path("/a/b/f", file()).unwrap();
        t.hardlink("/a/b/f", "/g").unwrap();
        assert_eq!(t.nlink(f), 2);
        t.remove("/a").unwrap();
        assert_eq!(t.get("/a"), None);
        assert_eq!(t.nlink(f), 1);
        assert_eq!(t.get("/g"), Some(f));
        assert!(matches!(t.remove("/"), Err(PathError::NoName { .. })));
        assert!(matches!(t.remove("/nope"), Err(PathError::NotFound { .. })));
    }

    #[test]
    fn hard_links_to_directories_are_refused() {
        let mut t = Tree::new();
        t.mkdir_p("/d", &m(0o755)).unwrap();
        assert!(matches!(
            t.hardlink("/d", "/e"),
            Err(PathError::IsADirectory { .. })
        ));
        assert!(matches!(
            t.hardlink("/missing", "/e"),
            Err(PathError::NotFound { .. })
        ));
    }

    #[test]
    fn mkdir_p_follows_symlinks_to_directories() {
        let mut t = Tree::new();
        let usr_bin = t.mkdir_p("/usr/bin", &m(0o755)).unwrap();
        t.insert(NodeId::ROOT, "bin", Node::symlink(m(0o777), "usr/bin"))
            .unwrap();
        assert_eq!(t.mkdir_p("/bin", &m(0o700)).unwrap(), usr_bin);
        let sub = t.mkdir_p("/bin/sub", &m(0o700)).unwrap();
        assert_eq!(t.get("/usr/bin/sub"), Some(sub));
        t.insert(usr_bin, "f", file()).unwrap();
        assert!(matches!(
            t.mkdir_p("/bin/f/x", &m(0o755)),
            Err(PathError::NotADirectory { .. })
        ));
    }

    #[test]
    fn walk_is_sorted_by_components_with_parents_first() {
        let mut t = Tree::new();
        t.mkdir_p("/a/b", &m(0o755)).unwrap();
        t.insert_path("/a-b", file()).unwrap();
        t.insert_path("/a/b/c", file()).unwrap();
        t.insert_path("/Z", file()).unwrap();
        let paths: Vec<String> = t
            .walk()
            .map(|(p, _)| String::from_utf8(p).unwrap())
            .collect();
        assert_eq!(paths, ["/", "/Z", "/a", "/a/b", "/a/b/c", "/a-b"]);
        assert_eq!(t.nlink(NodeId::ROOT), 3);
    }
}
