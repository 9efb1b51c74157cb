//! Step 3 of a build, the slow part: every source file read once, on up to
//! `jobs` threads.
//!
//! In: the [`Source`]s (the package's regular files whose bytes come from
//! a file on disk), whether automatic dependencies are wanted, and the
//! thread count. Out: [`Scanned`]: per source file its size,
//! SHA-256, identity on disk (device, inode, mtime, so the archive step can
//! tell the file changed since) and [`autodeps`] findings; and the
//! automatic dependencies of the whole payload.
//!
//! The result, and the error reported when several files fail, never
//! depend on the number of threads or on how they were scheduled. A file
//! whose length changes while it is read is an error, never packaged.
//! Memory is one 1 MiB buffer per thread, whatever the file sizes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::progress::Task;
use crate::rpm::autodeps;

/// What the scan learnt about a source file.
#[derive(Debug, Clone)]
pub(super) struct Scan {
    pub(super) size: u64,
    pub(super) sha256: [u8; 32],
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) mtime: (i64, i64),
    pub(super) deps: autodeps::FileDeps,
}

/// What the scan learnt about every source file.
pub(super) struct Scanned {
    /// By index into the entries.
    pub(super) scans: BTreeMap<usize, Scan>,
    /// The automatic dependencies of all of them.
    pub(super) auto: autodeps::FileDeps,
}

/// The error for a source that changed while the package was being built.
pub(super) fn changed(path: &Path, what: &str) -> Error {
    Error::Read {
        path: path.to_path_buf(),
        source: io::Error::other(format!(
            "{what} while the package was being built; build again"
        )),
    }
}

/// A regular file of the package whose bytes come from a file on disk.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    /// Index into the package's entries.
    pub(super) index: usize,
    /// Path on disk.
    pub(super) path: &'a Path,
    /// Permission bits in the package.
    pub(super) mode: u16,
    /// Path in the package (`/usr/bin/x`).
    pub(super) dest: &'a str,
}

/// Bytes in the source files `todo` as they are now (for progress: the
/// scan itself checks the size it reads).
pub(super) fn total_size(todo: &[Source]) -> u64 {
    todo.iter()
        .filter_map(|s| std::fs::metadata(s.path).ok())
        .map(|m| m.len())
        .sum()
}

/// Scan `todo`; with `auto`, find the automatic dependencies too.
/// `progress` hears the bytes hashed.
pub(super) fn scan(
    todo: &[Source],
    auto: bool,
    jobs: NonZeroUsize,
    progress: &Task,
) -> Result<Scanned> {
    let scans = scan_sources(todo, auto, jobs, progress)?;
    let mut all = autodeps::FileDeps::default();
    let mut by_entry = BTreeMap::new();
    for (src, s) in todo.iter().zip(scans) {
        all.requires.extend(s.deps.requires.iter().cloned());
        all.provides.extend(s.deps.provides.iter().cloned());
        by_entry.insert(src.index, s);
    }
    Ok(Scanned {
        scans: by_entry,
        auto: all,
    })
}

/// Hash one source file and find its automatic dependencies.
fn scan_one(
    src: &Path,
    (mode, dest): (u16, &str),
    auto: bool,
    buf: &mut [u8],
    progress: &Task,
) -> Result<Scan> {
    let read_err = |source| Error::Read {
        path: src.to_path_buf(),
        source,
    };
    let mut f = File::open(src).map_err(read_err)?;
    let md = f.metadata().map_err(read_err)?;
    let mut sha = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match f.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        sha.update(&buf[..n]);
        size += n as u64;
        progress.advance(n as u64);
    }
    if size != md.len() {
        return Err(changed(src, "it changed size"));
    }
    let deps = if auto {
        autodeps::scan_file_as(src, u32::from(mode), dest).map_err(read_err)?
    } else {
        autodeps::FileDeps::default()
    };
    Ok(Scan {
        size,
        sha256: sha.finalize().into(),
        dev: md.dev(),
        ino: md.ino(),
        mtime: (md.mtime(), md.mtime_nsec()),
        deps,
    })
}

/// Scan the source files `todo` on up to `jobs` threads. The result is in
/// `todo`'s order; the error is the first in that order.
fn scan_sources(
    todo: &[Source],
    auto: bool,
    jobs: NonZeroUsize,
    progress: &Task,
) -> Result<Vec<Scan>> {
    const BUF: usize = 1 << 20;
    let threads = jobs.get().min(todo.len()).max(1);
    let next = AtomicUsize::new(0);
    // The lowest position that failed: positions above it are skipped,
    // positions below it are all scanned, so the error reported is the
    // same whatever the threads did.
    let failed = AtomicUsize::new(usize::MAX);
    let work = || {
        let mut buf = vec![0u8; BUF];
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= todo.len() || i > failed.load(Ordering::Relaxed) {
                break;
            }
            let src = todo[i];
            let r = scan_one(src.path, (src.mode, src.dest), auto, &mut buf, progress);
            if r.is_err() {
                failed.fetch_min(i, Ordering::Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let mut results: Vec<(usize, Result<Scan>)> = if threads == 1 {
        work()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
