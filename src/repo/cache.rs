//! The download cache: a content-addressed store under a folder the
//! caller gives (the CLI: `$XDG_CACHE_HOME/ingot` or `--cache`).
//!
//! Layout:
//! - `ALGO/ab/abcdef…`: a file whose ALGO checksum (sha256, sha1, …, as
//!   the metadata names it) is `abcdef…`: packages and metadata files
//!   alike. A file gets there only by a rename after its checksum and
//!   size were checked, so what is there is right; it is never changed.
//! - `repos/KEY/repomd.xml`: the last `repomd.xml` read from a repository
//!   (KEY: the SHA-256 of its URLs), for `offline`; with repo_gpgcheck,
//!   `repos/KEY/repomd.xml.asc` beside it, its signature (checked again
//!   when the index is read back: a cached index is never trusted on its
//!   own).
//! - `keys/HEX.asc`: keys fetched from URLs (HEX: the SHA-256 of the URL),
//!   for `offline`.
//! - `derived/ALGO-HEX.sqlite`: a `primary_db` decompressed (SQLite needs a
//!   file), made from the cache entry of the same name.
//! - `tmp/.ingot-work-XXXXXX/`: files being written (downloads in
//!   flight, an index before its rename), in one work folder per `Cache`
//!   and its clones: removed when they are dropped, and by the interrupt
//!   cleanup ([`crate::output::work_dir_in`]) on SIGINT, SIGTERM or
//!   SIGHUP, so a download cut short leaves nothing behind.
//!
//! Durability: an entry is renamed into place only once its bytes are on
//! disk, so after a crash what is there is still right. One file
//! ([`Cache::put`]) is flushed with `fsync`; many downloads go through a
//! [`Batch`]: each file's writeback is started as soon as it is checked
//! (`sync_file_range`, which does not wait), and one `syncfs` per
//! [`BATCH_BYTES`] waits for them all before their renames. A flush per
//! file costs a journal commit each (a third of fetching 300 packages
//! over loopback); a batch pays one, while the disk writes overlap the
//! downloads still running. An interrupt loses at most one batch.

use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::Digest as _;
use tempfile::NamedTempFile;

use super::error::{RepoError, Result};
use super::package::Checksum;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// The work folder under `tmp/`, made when first needed.
    work: Arc<Mutex<Option<crate::output::WorkDir>>>,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            work: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with checksum `c` is (or would be).
    pub fn path(&self, c: &Checksum) -> PathBuf {
        let prefix = c.hex.get(..2).unwrap_or("00");
        self.root.join(c.kind.name()).join(prefix).join(&c.hex)
    }

    /// The cached file with checksum `c`, if there is one of `size` bytes
    /// (when given).
    pub fn get(&self, c: &Checksum, size: Option<u64>) -> Option<PathBuf> {
        let p = self.path(c);
        let m = std::fs::metadata(&p).ok()?;
        (m.is_file() && size.is_none_or(|s| m.len() == s)).then_some(p)
    }

    fn mkdir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| RepoError::Write {
            path: dir.to_path_buf(),
            source,
        })
    }

    /// A new file for a download in flight (on the cache's filesystem, so
    /// it can be renamed into place), in the work folder.
    pub fn temp(&self) -> Result<NamedTempFile> {
        let dir = self.root.join("tmp");
        let mut work = self.work.lock().unwrap_or_else(|e| e.into_inner());
        let work = match &mut *work {
            Some(w) => w,
            none => {
                self.mkdir(&dir)?;
                let w = crate::output::work_dir_in(&dir).map_err(|source| RepoError::Write {
                    path: dir.clone(),
                    source,
                })?;
                none.insert(w)
            }
        };
        NamedTempFile::new_in(work.path()).map_err(|source| RepoError::Write {
            path: work.path().to_path_buf(),
            source,
        })
    }

    /// Move a checked download into place as the file with checksum `c`.
    pub fn put(&self, tmp: NamedTempFile, c: &Checksum) -> Result<PathBuf> {
        let dest = self.path(c);
        if let Some(dir) = dest.parent() {
            self.mkdir(dir)?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|source| RepoError::Write {
                path: tmp.path().to_path_buf(),
                source,
            })?;
        tmp.persist(&dest).map_err(|e| RepoError::Write {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(dest)
    }

    /// Start writing `tmp`'s bytes to disk without waiting for them (a
    /// hint: a filesystem that does not take it is flushed by the batch's
    /// `syncfs` all the same).
    pub fn start_writeback(&self, tmp: &NamedTempFile) {
        // SAFETY: sync_file_range only reads its arguments; the descriptor
        // is open for as long as `tmp` is borrowed.
        unsafe {
            libc::sync_file_range(tmp.as_file().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }

    /// The folder for what is kept about one repository.
    pub fn repo_dir(&self, source_key: &str) -> PathBuf {
        let key = hex::encode(sha2::Sha256::digest(source_key.as_bytes()));
        self.root.join("repos").join(key)
    }

    /// Write `data` to `path` under a temporary name, then rename it.
    pub fn write_file(&self, path: &Path, data: &[u8]) -> Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(&self.root);
        self.mkdir(dir)?;
        let mut tmp = self.temp()?;
        tmp.write_all(data).map_err(|source| RepoError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        tmp.persist(path).map_err(|e| RepoError::Write {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Where a file derived from the cache entry `c` goes.
    pub fn derived(&self, c: &Checksum, ext: &str) -> PathBuf {
        self.root
            .join("derived")
            .join(format!("{}-{}.{ext}", c.kind.name(), c.hex))
    }
}

/// Bytes a [`Batch`] holds before it flushes and renames them.
pub const BATCH_BYTES: u64 = 64 << 20;

/// Checked downloads waiting for one flush to disk before their renames
/// into the cache (see the module's doc). Shared by the download threads.
pub struct Batch<'c> {
    cache: &'c Cache,
    staged: Mutex<Staged>,
}

#[derive(Default)]
struct Staged {
    files: Vec<(NamedTempFile, PathBuf)>,
    bytes: u64,
}

impl<'c> Batch<'c> {
    pub fn new(cache: &'c Cache) -> Batch<'c> {
        Batch {
            cache,
            staged: Mutex::default(),
        }
    }

    /// Stage a checked download of `size` bytes as the file with checksum
    /// `c`; flush and rename the batch once it holds [`BATCH_BYTES`].
    /// Returns where the file will be once [`Batch::finish`] returns.
    pub fn add(&self, tmp: NamedTempFile, c: &Checksum, size: u64) -> Result<PathBuf> {
        let dest = self.cache.path(c);
        let full = {
            let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
            staged.files.push((tmp, dest.clone()));
            staged.bytes += size;
            match staged.bytes >= BATCH_BYTES {
                true => std::mem::take(&mut *staged),
                false => Staged::default(),
            }
        };
        self.commit(full)?;
        Ok(dest)
    }

    /// Flush and rename what is staged.
    pub fn finish(self) -> Result<()> {
        let rest = std::mem::take(&mut *self.staged.lock().unwrap_or_else(|e| e.into_inner()));
        self.commit(rest)
    }

    fn commit(&self, staged: Staged) -> Result<()> {
        let Some((first, _)) = staged.files.first() else {
            return Ok(());
        };
        rustix::fs::syncfs(first.as_file()).map_err(|e| RepoError::Write {
            path: first.path().to_path_buf(),
            source: e.into(),
        })?;
        for (tmp, dest) in staged.files {
            if let Some(dir) = dest.parent() {
                self.cache.mkdir(dir)?;
            }
            tmp.persist(&dest).map_err(|e| RepoError::Write {
                path: dest.clone(),
                source: e.error,
            })?;
        }
        Ok(())
    }
}

/// Helpers for the tests of the cache and of what puts files into it.
#[cfg(test)]
pub(super) mod testing {
    use std::io::Write as _;
    use std::path::Path;

    use sha2::Digest as _;
    use tempfile::NamedTempFile;

    use super::Cache;
    use crate::repo::{Checksum, ChecksumKind};

    /// The SHA-256 checksum of `text`.
    pub fn checksum_of(text: &str) -> Checksum {
        let hex = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        Checksum::new(ChecksumKind::Sha256, &hex, "test").unwrap()
    }

    /// A checked download of `text` in the cache's work folder, its
    /// writeback started, as [`crate::repo::fetch::Fetcher::get_checked`]
    /// gives it.
    pub fn staged(cache: &Cache, text: &str) -> (NamedTempFile, Checksum) {
        let mut tmp = cache.temp().unwrap();
        tmp.write_all(text.as_bytes()).unwrap();
        cache.start_writeback(&tmp);
        (tmp, checksum_of(text))
    }

    /// Files left in the work folders of the cache at `root`.
    pub fn work_files(root: &Path) -> usize {
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .flatten()
            .flat_map(|w| std::fs::read_dir(w.path()).unwrap().flatten())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{staged, work_files};
    use super::*;

    /// Files in a batch enter the cache together: when the batch is full,
    /// else when it is finished; never before, and nothing stays behind
    /// in the work folder.
    #[test]
    fn a_batch_enters_the_cache_when_full_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let batch = Batch::new(&cache);
        let (a, ca) = staged(&cache, "first");
        let (b, cb) = staged(&cache, "second");
        let pa = batch.add(a, &ca, 5).unwrap();
        let pb = batch.add(b, &cb, 6).unwrap();
        assert_eq!((pa.clone(), pb.clone()), (cache.path(&ca), cache.path(&cb)));
        assert!(
            !pa.exists() && !pb.exists(),
            "in the cache before the flush"
        );
        // One more that fills the batch: all three go in at once.
        let (c, cc) = staged(&cache, "third");
        let pc = batch.add(c, &cc, BATCH_BYTES).unwrap();
        for (p, text) in [(&pa, "first"), (&pb, "second"), (&pc, "third")] {
            assert_eq!(std::fs::read_to_string(p).unwrap(), text);
        }
        let (d, cd) = staged(&cache, "fourth");
        let pd = batch.add(d, &cd, 6).unwrap();
        assert!(!pd.exists());
        batch.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&pd).unwrap(), "fourth");
        assert_eq!(cache.get(&cd, Some(6)), Some(pd));
        assert_eq!(work_files(dir.path()), 0, "files left in the work folder");
    }
}
