//! The in-memory root filesystem: a whole tree's metadata in memory, file
//! contents never.
//!
//! In: a base root filesystem as a tarball (`.tar`, `.tar.gz`, `.tar.xz`,
//! `.tar.zst`, `.tar.bz2`, told apart by their first bytes) or a host
//! directory ([`import`]), then changes made by callers (installing
//! packages): nodes inserted, removed, linked, their metadata set, streams
//! spilled. Out: a [`Tree`] that resolves paths the way the kernel would
//! inside a chroot, walks itself in a fixed order, streams any file's bytes
//! back, and writes itself as a reproducible tarball ([`Tree::write_tar`]).
//!
//! Must never happen:
//! - a file's contents held in memory: they stay in the input (a plain
//!   tarball's member data, a directory's files) or go to the spill store,
//!   one temporary file; memory grows with the number of files only;
//! - anything read, created or written on the host outside the inputs and
//!   the spill store, whatever the input says (`..`, absolute names,
//!   symlinks to `/`, symlink loops: see `tar_in.rs` and `path.rs`);
//! - a truncated input taken as short files;
//! - host facts (clock, user, umask, time zone) reaching an output.
//!
//! Code map:
//!
//! | file | what it holds |
//! | --- | --- |
//! | `tree.rs` | [`Tree`], [`Node`], [`Meta`], [`Kind`], [`Dir`], [`NodeId`]: the arena, insert/replace rules, hard links, removal, [`Tree::walk`] |
//! | `path.rs` | [`Tree::resolve`], [`Tree::resolve_parent`], [`PathError`]: chroot-like path resolution, ELOOP and ENOTDIR |
//! | `store.rs` | [`FileData`], [`Extent`], [`SourceId`]: where bytes live; the spill store and its hole rule; [`Tree::spill`], [`Tree::open`], [`Tree::file_sha256`] |
//! | `tar_in.rs` | [`Tree::import_tar`]: ustar, GNU and PAX members, sparse formats, hostile names |
//! | `dir_in.rs` | [`Tree::import_dir`]: a host directory, by reference, `SEEK_DATA`/`SEEK_HOLE` for sparse files |
//! | `tar_out.rs` | [`Tree::write_tar`]: the reproducible tarball |
//! | `digest.rs` | [`sha256_file`]: an input's digest, for `base_sha256` pins |
//! | `error.rs` | [`ImportError`], [`MemberError`] |

mod digest;
mod dir_in;
mod error;
mod path;
mod store;
mod tar_in;
mod tar_out;
mod tree;

use std::path::Path;

use crate::progress::Task;

pub use digest::sha256_file;
pub use error::{ImportError, MemberError};
pub use path::{MAX_SYMLINK_HOPS, PathError};
pub use store::{Extent, FileData, FileReader, HOLE_BLOCK, PutError, SourceId};
pub use tree::{Dir, Kind, Meta, Node, NodeId, Tree, Walk};

/// A new tree holding the root filesystem at `input`: a directory (see
/// [`Tree::import_dir`]) or a tarball, compressed or not (see
/// [`Tree::import_tar`]). Spilled contents go to a temporary file in
/// `spill_dir`, or in the system's temporary folder when `None`.
pub fn import(input: &Path, spill_dir: Option<&Path>) -> Result<Tree, ImportError> {
    import_reporting(input, spill_dir, &Task::none())
}

/// [`import`], telling `progress` how far it got: bytes of a tarball as
/// stored (compressed or not), or the entries of a directory.
pub fn import_reporting(
    input: &Path,
    spill_dir: Option<&Path>,
    progress: &Task,
) -> Result<Tree, ImportError> {
    let mut tree = match spill_dir {
        Some(dir) => Tree::with_spill_dir(dir),
        None => Tree::new(),
    };
    let md = std::fs::metadata(input).map_err(|source| ImportError::Read {
        input: input.to_path_buf(),
        source,
    })?;
    if md.is_dir() {
        tree.import_dir_reporting(input, progress)?;
    } else {
        tree.import_tar_limited(input, tar_in::MAX_MEMBERS, progress)?;
    }
    Ok(tree)
}
