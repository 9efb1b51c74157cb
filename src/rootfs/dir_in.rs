//! Import a directory on the host (an extracted root filesystem) into a
//! tree.
//!
//! In: the directory's path. Out: one node per entry under it, with the
//! directory itself as `/`: mode, numeric uid/gid, mtime with nanoseconds,
//! xattrs (read without following symlinks; `EPERM`, `ENOTSUP` and
//! `ENODATA` are taken as "none"), symlink targets verbatim, device
//! numbers, FIFOs, sockets, and hard links (entries sharing a device and
//! inode become one node).
//!
//! Contents are referenced by host path, never copied: each regular file is
//! a source, and when it has fewer blocks than its size says (sparse), its
//! data ranges are found with `lseek(SEEK_DATA/SEEK_HOLE)` ([`crate::sparse`]), so its holes
//! stay holes; otherwise it is one extent. The files must not change while
//! the tree lives (a file that shrank is a read error later, never a short
//! file).
//!
//! A directory that is, or holds, the output folder of this run
//! ([`crate::output::is_output_folder`]) is refused: creating that folder
//! changed the directory's own time, and the bake's scratch (packages just
//! built) and earlier images would sit inside the base, so the image would
//! change with where its outputs go. A root filesystem is not where outputs
//! are expected; saying so beats a quietly different image. (`bake` checks
//! the paths before it writes anything; this catches the same folder
//! reached another way, such as a bind mount.)
//!
//! Never: a symlink is followed on the host (the walk does not follow them,
//! xattrs are read with `l*xattr`, files are opened `O_NOFOLLOW`); a FIFO
//! or device is opened; anything is written to the host.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::error::{ImportError, MemberError};
use super::path::display;
use super::store::{Extent, FileData, SourceId, open_host};
use super::tree::{Kind, Meta, Node, NodeId, Tree};
use crate::progress::Task;

impl Tree {
    /// Add everything under the host directory `dir` to this tree, `dir`
    /// itself becoming `/` (see this module's doc).
    pub fn import_dir(&mut self, dir: &Path) -> Result<(), ImportError> {
        self.import_dir_reporting(dir, &Task::none())
    }

    /// [`Tree::import_dir`], telling `progress` each entry taken.
    pub fn import_dir_reporting(&mut self, dir: &Path, progress: &Task) -> Result<(), ImportError> {
        let read_err = |source| ImportError::Read {
            input: dir.to_path_buf(),
            source,
        };
        let member_err = |member: &[u8], source: MemberError| ImportError::Member {
            input: dir.to_path_buf(),
            member: display(member),
            source,
        };
        let root = std::fs::canonicalize(dir).map_err(read_err)?;
        let root_md = std::fs::metadata(&root).map_err(read_err)?;
        if !root_md.is_dir() {
            return Err(read_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a directory",
            )));
        }
        let root_meta = meta_of(&root, &root_md).map_err(|e| member_err(b"/", e))?;
        self.set_meta(NodeId::ROOT, root_meta);

        let mut inodes: HashMap<(u64, u64), NodeId> = HashMap::new();
        let holds_output = || ImportError::Read {
            input: dir.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "the output folder (`--out`) is this folder or inside it: what ingot \
                     writes would become part of the image; write the outputs somewhere else",
            ),
        };
        if crate::output::is_output_folder(&root_md) {
            return Err(holds_output());
        }
        let walk = walkdir::WalkDir::new(&root)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1);
        for entry in walk {
            if let Ok(e) = &entry
                && e.file_type().is_dir()
                && e.metadata()
                    .is_ok_and(|m| crate::output::is_output_folder(&m))
            {
                return Err(holds_output());
            }
            let entry = entry.map_err(|e| {
                let path = e
                    .path()
                    .and_then(|p| p.strip_prefix(&root).ok())
                    .map(|p| p.as_os_str().as_bytes().to_vec())
                    .unwrap_or_default();
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("filesystem loop"));
                member_err(&path, MemberError::Io(source))
            })?;
            let rel = entry
                .path()
                .strip_prefix(&root)
                .map(|p| p.as_os_str().as_bytes().to_vec())
                .unwrap_or_default();
            self.import_entry(entry.path(), &rel, &mut inodes)
                .map_err(|e| member_err(&rel, e))?;
            progress.advance(1);
        }
        Ok(())
    }

    fn import_entry(
        &mut self,
        path: &Path,
        rel: &[u8],
        inodes: &mut HashMap<(u64, u64), NodeId>,
    ) -> Result<(), MemberError> {
        let md = std::fs::symlink_metadata(path)?;
        let ft = md.file_type();
        let key = (md.dev(), md.ino());
        let implied = Meta::new(0o755, 0, 0, md.mtime());
        if !ft.is_dir()
            && md.nlink() > 1
            && let Some(id) = inodes.get(&key)
        {
            self.place_link(rel, *id, &implied)?;
            return Ok(());
        }
        let meta = meta_of(path, &md)?;
        let kind = if ft.is_dir() {
            Kind::Dir(Default::default())
        } else if ft.is_file() {
            let source = self.add_host_source(path);
            Kind::File(file_data(path, &md, source)?)
        } else if ft.is_symlink() {
            Kind::Symlink(std::fs::read_link(path)?.as_os_str().as_bytes().to_vec())
        } else if ft.is_char_device() {
            let (major, minor) = dev_numbers(md.rdev());
            Kind::CharDev { major, minor }
        } else if ft.is_block_device() {
            let (major, minor) = dev_numbers(md.rdev());
            Kind::BlockDev { major, minor }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        };
        let id = self.place(rel, Node { meta, kind }, &implied)?;
        if !ft.is_dir() && md.nlink() > 1 {
            inodes.insert(key, id);
        }
        Ok(())
    }
}

fn dev_numbers(rdev: u64) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}

fn meta_of(path: &Path, md: &Metadata) -> Result<Meta, MemberError> {
    let mut meta = Meta::new(md.mode(), md.uid(), md.gid(), md.mtime());
    meta.mtime_nsec = u32::try_from(md.mtime_nsec()).unwrap_or(0);
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if xattr_absent(&e) => return Ok(meta),
        Err(e) => return Err(e.into()),
    };
    for name in names {
        let value = match xattr::get(path, &name) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) if xattr_absent(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        let name = name
            .into_string()
            .map_err(|n| MemberError::XattrName(display(n.as_bytes())))?;
        meta.xattrs.insert(name, value);
    }
    Ok(meta)
}

/// Errors that mean "this file has no xattrs we may read".
fn xattr_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM) | Some(libc::ENOTSUP) | Some(libc::ENODATA)
    )
}

/// The extents of a host file: one, or its data ranges when it is sparse.
fn file_data(path: &Path, md: &Metadata, source: SourceId) -> io::Result<FileData> {
    let size = md.len();
    let whole = |size| {
        let extents = if size == 0 {
            Vec::new()
        } else {
            vec![Extent {
                file_offset: 0,
                len: size,
                source,
                source_offset: 0,
            }]
        };
        FileData { size, extents }
    };
    if md.blocks().saturating_mul(512) >= size {
        return Ok(whole(size));
    }
    let f = open_host(path)?;
    let Some(data) = crate::sparse::data_extents(&f, size)? else {
        return Ok(whole(size)); // the filesystem cannot tell
    };
    let extents = data
        .into_iter()
        .map(|r| Extent {
            file_offset: r.start,
            len: r.end - r.start,
            source,
            source_offset: r.start,
        })
        .collect();
    Ok(FileData { size, extents })
}
