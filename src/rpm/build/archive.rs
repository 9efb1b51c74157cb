//! Step 6 of a build: the payload, and the header's payload tags.
//!
//! In: the complete [`Files`], the compression, the thread count, the
//! source date (every member's mtime) and the work folder. Out: the
//! compressed cpio archive in an unnamed temporary file there (a
//! [`Payload`], with its sizes and digests), the tags that name its format
//! and compressor ([`tags`]), and the tags of its digests
//! ([`digest_tags`]).
//!
//! Members: ordinary entries in path order, then the members of hard link
//! sets in path order (as rpmbuild orders them); ghosts are not in the
//! archive, and only a link set's last member carries the bytes. This step
//! never packages bytes other than the ones the scan hashed: a source that
//! is no longer the same file (device, inode, size, mtime), or whose
//! length differs from the scan's, is an error.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::files::{Body, Files};
use super::scan::changed;
use crate::error::{Error, Result};
use crate::progress::{Counted, Task};
use crate::rpm::compression::Compression;
use crate::rpm::header::{NewEntry, tag};
use crate::rpm::writer::{ArchiveWriter, CpioHeader, EntryError, Payload};

/// PAYLOADFORMAT, PAYLOADCOMPRESSOR (none without compression) and
/// PAYLOADFLAGS (the level; empty without compression).
pub(super) fn tags(compression: Compression) -> Vec<NewEntry> {
    let (compressor, level) = match compression {
        Compression::None => (None, String::new()),
        Compression::Gzip(l) => (Some("gzip"), l.to_string()),
        Compression::Zstd(l) => (Some("zstd"), l.to_string()),
        Compression::Xz(l) => (Some("xz"), l.to_string()),
        Compression::Bzip2(l) => (Some("bzip2"), l.to_string()),
    };
    let mut h = vec![NewEntry::string(tag::PAYLOADFORMAT, "cpio")];
    if let Some(c) = compressor {
        h.push(NewEntry::string(tag::PAYLOADCOMPRESSOR, c));
    }
    h.push(NewEntry::string(tag::PAYLOADFLAGS, &level));
    h
}

/// PAYLOADDIGEST (of the compressed payload), PAYLOADDIGESTALT (of the
/// archive), PAYLOADDIGESTALGO (SHA-256).
pub(super) fn digest_tags(payload: &Payload) -> Vec<NewEntry> {
    vec![
        NewEntry::strings(tag::PAYLOADDIGEST, vec![hex::encode(payload.sha256)]),
        NewEntry::strings(
            tag::PAYLOADDIGESTALT,
            vec![hex::encode(payload.archive_sha256)],
        ),
        NewEntry::int32(tag::PAYLOADDIGESTALGO, vec![8]),
    ]
}

/// Write the archive of `files` through the compressor into an unnamed
/// temporary file in `work_dir`; every member's mtime is `mtime`.
/// `progress` hears the bytes of the files as they go into the
/// compressor ([`content_size`] in all).
pub(super) fn write(
    files: &Files,
    (compression, jobs): (Compression, NonZeroUsize),
    mtime: u32,
    work_dir: &Path,
    progress: &Task,
) -> Result<Payload> {
    let work_err = |source| Error::Write {
        path: work_dir.to_path_buf(),
        source,
    };
    let temp = tempfile::tempfile_in(work_dir).map_err(work_err)?;
    let mut archive = ArchiveWriter::new(temp, compression, jobs, files.large).map_err(work_err)?;
    let linked = |i: &usize| files.links.contains_key(i);
    let members = files.entries.iter().enumerate().filter(|(_, f)| !f.ghost);
    let order = members
        .clone()
        .filter(|(i, _)| !linked(i))
        .chain(members.filter(|(i, _)| linked(i)));
    for (i, _) in order {
        member(&mut archive, files, i, (mtime, work_dir), progress)?;
    }
    archive.finish().map_err(work_err)
}

/// The bytes of entry `i` in the archive: a hard link set's data goes
/// with one of its members only.
fn stored_size(files: &Files, i: usize) -> u64 {
    let f = &files.entries[i];
    match files.links.get(&i) {
        Some(l) if !l.has_content => 0,
        _ => f.size,
    }
}

/// The bytes of every file's data in the archive.
pub(super) fn content_size(files: &Files) -> u64 {
    (0..files.entries.len())
        .filter(|&i| !files.entries[i].ghost)
        .map(|i| stored_size(files, i))
        .sum()
}

fn counted<'t, 'r, R>(inner: R, task: &'t Task<'r>) -> Counted<'t, 'r, R> {
    Counted { inner, task }
}

/// Write entry `i` of `files` as one member.
fn member(
    archive: &mut ArchiveWriter,
    files: &Files,
    i: usize,
    (mtime, work_dir): (u32, &Path),
    progress: &Task,
) -> Result<()> {
    let f = &files.entries[i];
    let link = files.links.get(&i);
    let size = stored_size(files, i);
    let head = CpioHeader {
        name: &f.cpio,
        ino: files.inode(i),
        mode: u32::from(f.mode),
        nlink: link.map_or(1, |l| l.count),
        mtime,
        size,
        index: i as u32,
    };
    let (r, src) = match (f.body, size) {
        (_, 0) | (Body::None, _) => (archive.entry(&head, io::empty()), None),
        (Body::Bytes(b), _) => (archive.entry(&head, counted(b, progress)), None),
        (Body::Source(src), _) => {
            let read_err = |source| Error::Read {
                path: src.to_path_buf(),
                source,
            };
            let file = File::open(src).map_err(read_err)?;
            let md = file.metadata().map_err(read_err)?;
            let s = &files.scans[&i];
            if (md.dev(), md.ino(), md.len(), (md.mtime(), md.mtime_nsec()))
                != (s.dev, s.ino, s.size, s.mtime)
            {
                return Err(changed(src, "it changed"));
            }
            (archive.entry(&head, counted(file, progress)), Some(src))
        }
    };
    r.map_err(|e| match (e, src) {
        (EntryError::Read(source), Some(src)) => Error::Read {
            path: src.to_path_buf(),
            source,
        },
        (EntryError::Shorter(_) | EntryError::Longer, Some(src)) => changed(src, "it changed"),
        (e, _) => Error::Write {
            path: work_dir.to_path_buf(),
            source: e.into_io(),
        },
    })
}
