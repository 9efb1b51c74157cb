//! Metadata files (primary, filelists, …) as a [`super::Client`] hands
//! them out: each fetched at most once per client, and read as soon as
//! its checksum holds, while it lands in the cache.
//!
//! Why: a fresh metadata file used to be flushed to disk (`fsync`) and
//! renamed into the cache before anyone read it, and a second reader of
//! the same file (the file lists, asked for early by one thread and then
//! by the solver) fetched it again when it was not there yet. The flush
//! and rename now run on a thread of their own ([`Landing`]) while the
//! caller reads the checked bytes through a descriptor of its own
//! ([`MetaFile`]); [`Records`] keeps what was fetched, so the second
//! asker waits for the first and takes its answer.
//!
//! Invariants: a file enters the cache only by [`super::Cache::put`]
//! (checked, flushed, renamed), as before; nothing is read before its
//! checksum and size held; [`Landing::settle`] (and the client's drop)
//! waits for every landing, so no thread outlives the client.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

use super::cache::Cache;
use super::error::{RepoError, Result};
use super::package::Checksum;

/// A metadata file whose checksum and size held, open for reading: in
/// the cache, or on its way there.
#[derive(Debug, Clone)]
pub struct MetaFile {
    /// Where it is in the cache, or will be once it landed: for messages.
    path: PathBuf,
    file: Arc<File>,
}

impl MetaFile {
    /// A file already in the cache.
    pub fn open(path: PathBuf) -> Result<MetaFile> {
        let file = File::open(&path).map_err(|source| RepoError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(MetaFile {
            path,
            file: Arc::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader of the whole file from its start (each reader keeps its
    /// own place: several may read at once).
    pub fn reader(&self) -> Box<dyn Read + Send> {
        Box::new(At {
            file: self.file.clone(),
            at: 0,
        })
    }
}

/// Reads `file` from `at` on, by position (`pread`): the descriptor's own
/// offset is never used, so readers of one file do not disturb each other.
struct At {
    file: Arc<File>,
    at: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// What `slot` holds, taken out of it.
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Checked files on their way into the cache: each flushed and renamed
/// ([`Cache::put`]) on a thread of its own.
#[derive(Default)]
pub struct Landing {
    pending: Mutex<Vec<JoinHandle<Result<()>>>>,
}

impl Landing {
    /// Put `tmp` (checked: its checksum is `c`) into `cache` on a thread
    /// of its own; the file, open for reading, meanwhile.
    pub fn land(&self, cache: &Cache, tmp: NamedTempFile, c: &Checksum) -> Result<MetaFile> {
        let path = cache.path(c);
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|source| RepoError::Read {
                path: tmp.path().to_path_buf(),
                source,
            })?;
        let (cache, c) = (cache.clone(), c.clone());
        let job = Arc::new(Mutex::new(Some(move || cache.put(tmp, &c).map(drop))));
        let theirs = job.clone();
        let spawned = std::thread::Builder::new()
            .name("land".into())
            .spawn(move || take(&theirs).map_or(Ok(()), |put| put()));
        match spawned {
            Ok(h) => self.lock().push(h),
            // No thread to be had: into place here and now.
            Err(_) => {
                if let Some(put) = take(&job) {
                    put()?;
                }
            }
        }
        Ok(MetaFile {
            path,
            file: Arc::new(file),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<Result<()>>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for every file handed over so far; the first error, if any.
    pub fn settle(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.lock());
        let mut first = Ok(());
        for h in pending {
            let r = match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// What came of asking for one metadata file.
enum Asked {
    Not,
    Got(MetaFile),
    /// A prefetch's error, for the next asker.
    Failed(RepoError),
}

/// Metadata files asked for, by checksum: each fetched at most once per
/// client while it is fetched right.
#[derive(Default)]
pub struct Records {
    slots: Mutex<HashMap<String, Arc<Mutex<Asked>>>>,
}

impl Records {
    fn slot(&self, c: &Checksum) -> Arc<Mutex<Asked>> {
        let key = format!("{}:{}", c.kind.name(), c.hex);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .entry(key)
            .or_insert_with(|| Arc::new(Mutex::new(Asked::Not)))
            .clone()
    }

    /// The file with checksum `c`: the one fetched before, else what
    /// `fetch` gives. An asker who comes while another fetches it waits,
    /// then takes that answer. An error is the asker's own: the next one
    /// fetches again (a prefetch's error goes to the next asker).
    pub fn get(&self, c: &Checksum, fetch: impl FnOnce() -> Result<MetaFile>) -> Result<MetaFile> {
        let slot = self.slot(c);
        let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *s, Asked::Not) {
            Asked::Got(f) => {
                *s = Asked::Got(f.clone());
                Ok(f)
            }
            Asked::Failed(e) => Err(e),
            Asked::Not => {
                let f = fetch()?;
                *s = Asked::Got(f.clone());
                Ok(f)
            }
        }
    }

    /// Fetch the file with checksum `c` ahead of whoever will ask for it
    /// (with [`Records::get`]); nothing when it was fetched already.
    pub fn prefetch(&self, c: &Checksum, fetch: impl FnOnce() -> Result<MetaFile>) {
        let slot = self.slot(c);
        let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*s, Asked::Not) {
            *s = match fetch() {
                Ok(f) => Asked::Got(f),
                Err(e) => Asked::Failed(e),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sha2::Digest as _;

    use super::*;
    use crate::repo::cache::testing::{checksum_of, staged, work_files};

    fn read(f: &MetaFile) -> String {
        let mut s = String::new();
        f.reader().read_to_string(&mut s).unwrap();
        s
    }

    /// A file holding `text`, as a fetch would give it.
    fn file(dir: &Path, text: &str) -> MetaFile {
        let p = dir.join(format!("{:x}", sha2::Sha256::digest(text.as_bytes())));
        std::fs::write(&p, text).unwrap();
        MetaFile::open(p).unwrap()
    }

    fn failed() -> RepoError {
        RepoError::NoRecord {
            repo: "r".into(),
            kind: "filelists".into(),
        }
    }

    #[test]
    fn a_file_asked_for_twice_at_once_is_fetched_once() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::default();
        let c = checksum_of("data");
        let fetches = AtomicUsize::new(0);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, began) = std::sync::mpsc::channel::<()>();
        let fetch = || {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(file(dir.path(), "data"))
        };
        let (records, c, fetch) = (&records, &c, &fetch);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(move || {
                records.get(c, || {
                    started.send(()).unwrap();
                    // Held until the second asker has come.
                    wait.recv().unwrap();
                    fetch()
                })
            });
            began.recv().unwrap();
            let b = s.spawn(|| records.get(c, fetch));
            std::thread::sleep(std::time::Duration::from_millis(20));
            release.send(()).unwrap();
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!((read(&a), read(&b)), ("data".into(), "data".into()));
        assert_eq!(a.path(), b.path());
        // Later askers take it too; another checksum is another file.
        let again = records.get(c, || panic!("fetched again")).unwrap();
        assert_eq!(read(&again), "data");
        let other = records
            .get(&checksum_of("other"), || Ok(file(dir.path(), "other")))
            .unwrap();
        assert_eq!(read(&other), "other");
    }

    #[test]
    fn an_askers_error_is_its_own_and_a_prefetchs_goes_to_the_next_asker() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::default();
        let c = checksum_of("data");
        assert!(records.get(&c, || Err(failed())).is_err());
        // Not kept: the next asker fetches.
        let got = records.get(&c, || Ok(file(dir.path(), "data"))).unwrap();
        assert_eq!(read(&got), "data");

        let d = checksum_of("later");
        records.prefetch(&d, || Err(failed()));
        let e = records.get(&d, || panic!("the prefetch's answer was not taken"));
        assert!(matches!(e, Err(RepoError::NoRecord { .. })), "{e:?}");
        // Taken once: the asker after that fetches.
        let got = records.get(&d, || Ok(file(dir.path(), "later"))).unwrap();
        assert_eq!(read(&got), "later");
        // A prefetch of what is there already fetches nothing.
        records.prefetch(&d, || panic!("fetched again"));
        records.prefetch(&checksum_of("x"), || Ok(file(dir.path(), "x")));
        let x = records
            .get(&checksum_of("x"), || panic!("fetched again"))
            .unwrap();
        assert_eq!(read(&x), "x");
    }

    #[test]
    fn a_landing_file_reads_at_once_and_is_in_the_cache_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let landing = Landing::default();
        let text = "0123456789".repeat(10_000);
        let (tmp, c) = staged(&cache, &text);
        let f = landing.land(&cache, tmp, &c).unwrap();
        assert_eq!(f.path(), cache.path(&c));
        // Two readers of one file keep their own places.
        let (mut r1, mut r2) = (f.reader(), f.reader());
        let mut a = [0u8; 7];
        r1.read_exact(&mut a).unwrap();
        let mut all = String::new();
        r2.read_to_string(&mut all).unwrap();
        assert_eq!(
            (&a[..], all.as_str()),
            (&text.as_bytes()[..7], text.as_str())
        );
        landing.settle().unwrap();
        assert_eq!(
            cache.get(&c, Some(text.len() as u64)),
            Some(f.path().to_path_buf())
        );
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), text);
        assert_eq!(
            read(&f),
            text,
            "the open file reads the same after its rename"
        );
        assert_eq!(work_files(dir.path()), 0, "files left in the work folder");
    }

    #[test]
    fn settling_gives_a_landings_error() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let landing = Landing::default();
        // The folder the file goes into cannot be made.
        std::fs::write(dir.path().join("sha256"), "in the way").unwrap();
        let (tmp, c) = staged(&cache, "data");
        let f = landing.land(&cache, tmp, &c).unwrap();
        assert_eq!(read(&f), "data");
        let e = landing.settle();
        assert!(matches!(e, Err(RepoError::Write { .. })), "{e:?}");
        assert_eq!(cache.get(&c, None), None);
        // Settled: nothing more to wait for.
        landing.settle().unwrap();
    }
}
