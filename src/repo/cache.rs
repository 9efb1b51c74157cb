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
