//! Step 3 of a build, the slow part: every source file read once, on up to
//! `jobs` threads.
//!
//! In: the package's [`Entry`]s (the regular files whose bytes come from a
//! source on disk are scanned), whether automatic dependencies are wanted,
//! and the thread count. Out: [`Scanned`]: per source file its size,
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

use super::files::{Body, Entry};
use crate::error::{Error, Result};
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

/// Scan the regular files of `entries` that come from a source on disk;
/// with `auto`, find their automatic dependencies too.
pub(super) fn scan(entries: &[Entry], auto: bool, jobs: NonZeroUsize) -> Result<Scanned> {
    let todo: Vec<(usize, &Path, u16, &str)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f.body {
            Body::Source(src) if f.regular => Some((i, src, f.mode & 0o7777, &f.cpio[1..])),
            _ => None,
        })
        .collect();
    let scans = scan_sources(&todo, auto, jobs)?;
    let mut all = autodeps::FileDeps::default();
    let mut by_entry = BTreeMap::new();
    for ((i, ..), s) in todo.into_iter().zip(scans) {
        all.requires.extend(s.deps.requires.iter().cloned());
        all.provides.extend(s.deps.provides.iter().cloned());
        by_entry.insert(i, s);
    }
    Ok(Scanned {
        scans: by_entry,
        auto: all,
    })
}

/// Hash one source file and find its automatic dependencies.
fn scan_one(src: &Path, mode: u16, dest: &str, auto: bool, buf: &mut [u8]) -> Result<Scan> {
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

/// Scan the source files `todo` (index into the package's entries, path on
/// disk, permission bits, path in the package) on up to `jobs` threads.
/// The result is in `todo`'s order; the error is the first in that order.
fn scan_sources(
    todo: &[(usize, &Path, u16, &str)],
    auto: bool,
    jobs: NonZeroUsize,
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
            let (_, src, mode, dest) = todo[i];
            let r = scan_one(src, mode, dest, auto, &mut buf);
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
