//! Never a partial output, never a leftover.
//!
//! In: the output folder and, for each artifact, a name and its bytes (or a
//! writer). Out: the artifacts under their final names, all renamed into
//! place together at the end ([`Staging::commit`]), or none of them.
//!
//! Until then everything lives under hidden temporary names in the output
//! folder: staged files (`.NAME.XXXXXX.tmp`) and work folders
//! (`.ingot-work-XXXXXX`, [`Staging::work_dir`]). Each name is recorded in
//! one registry while the registry's lock is held across its creation, so
//! no moment exists when it is on disk but unknown. From the registry:
//! - an error (dropping the staging area or a work folder) removes them,
//!   and the output folder too when ingot created it and it is empty;
//! - SIGINT, SIGTERM and SIGHUP ([`install_interrupt_cleanup`]) remove them
//!   from a thread of their own, which takes the lock and never gives it
//!   back: no new name can appear behind the cleanup, and a commit is
//!   either done or not begun. A work folder is renamed before it is
//!   removed, so a thread still writing into it by path finds nothing;
//!   threads writing staged files write through descriptors whose names
//!   are gone, which recreates nothing;
//! - walks over inputs leave the output folder out ([`is_output_folder`]).
//!
//! A commit syncs every staged file first; then, under the lock, checks
//! every final name (a folder in the way fails it before anything moves),
//! keeps a hard-linked backup of each file it replaces, and renames; when a
//! rename fails, the renames already made are undone and the replaced files
//! put back.
//!
//! Never: a final name that holds a partial artifact; a temporary name left
//! behind by an error or one of those signals; the cleanup waiting for the
//! threads that write (they may be anywhere in a long write).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Why an output could not be staged or committed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// An output, the output folder or a work file cannot be written:
    /// the machine failed, not the input.
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// [`Staging::rename`] of a name nothing was staged under.
    #[error("no staged output named `{0}`")]
    NotStaged(String),
}

type Result<T, E = OutputError> = std::result::Result<T, E>;

/// Every temporary name ingot has on disk, and the output folders.
struct Registry {
    /// Staged files: unlinked by the cleanup.
    files: BTreeSet<PathBuf>,
    /// Work folders: removed with everything in them.
    work: BTreeSet<PathBuf>,
    /// Output folders ingot created: removed when empty, deepest first.
    created: BTreeSet<PathBuf>,
    /// Device and inode of each output folder in use (a multiset).
    outputs: Vec<(u64, u64)>,
    /// Whether a commit put outputs under their final names.
    committed: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    files: BTreeSet::new(),
    work: BTreeSet::new(),
    created: BTreeSet::new(),
    outputs: Vec::new(),
    committed: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `md` (a folder's metadata, symlinks not followed) is an output
/// folder of this process: its contents are ingot's own outputs and
/// scratch, never an input.
pub fn is_output_folder(md: &std::fs::Metadata) -> bool {
    md.is_dir() && registry().outputs.contains(&(md.dev(), md.ino()))
}

/// What the interrupt cleanup did, for the CLI to say.
#[derive(Debug)]
pub struct Interruption {
    pub signal: i32,
    /// The outputs had been renamed into place when the signal came.
    pub committed: bool,
    /// Temporary names that could not be removed, and why.
    pub left: Vec<(PathBuf, io::Error)>,
}

impl Interruption {
    pub fn signal_name(&self) -> &'static str {
        match self.signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }
}

/// The signals that end ingot cleanly.
const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Take SIGINT, SIGTERM and SIGHUP on a thread of their own: remove every
/// temporary name (see the module doc), hand `report` what was done, and
/// end the process with the exit code `report` gives.
///
/// Call it first thing, before any other thread exists: the signals are
/// blocked in the calling thread, every thread started later inherits
/// that, and the signal thread takes them with `sigwait`, outside any
/// signal handler. (Programs ingot starts get an empty mask back: the
/// standard library resets it in the child.)
pub fn install_interrupt_cleanup(
    report: impl Fn(&Interruption) -> u8 + Send + 'static,
) -> io::Result<()> {
    // SAFETY: sigemptyset/sigaddset initialise a local set; pthread_sigmask
    // reads it and changes only this thread's mask.
    let set = unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        for s in SIGNALS {
            libc::sigaddset(set.as_mut_ptr(), s);
        }
        let set = set.assume_init();
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new()
        .name("ingot-signals".into())
        .spawn(move || {
            loop {
                let mut signal = 0;
                // SAFETY: `set` is initialised and `signal` is a valid place
                // for the answer.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    continue;
                }
                // Held until the process ends: nothing new appears now.
                let mut reg = registry();
                let left = remove_everything(&mut reg);
                let i = Interruption {
                    signal,
                    committed: reg.committed,
                    left,
                };
                let code = report(&i);
                std::process::exit(i32::from(code));
            }
        })?;
    Ok(())
}

/// Remove every temporary name the registry holds; returns those that
/// could not be removed.
fn remove_everything(reg: &mut Registry) -> Vec<(PathBuf, io::Error)> {
    let mut left = Vec::new();
    for f in std::mem::take(&mut reg.files) {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => left.push((f, e)),
        }
    }
    for w in std::mem::take(&mut reg.work) {
        if let Err(e) = remove_work(&w) {
            left.push((w, e));
        }
    }
    for c in std::mem::take(&mut reg.created).iter().rev() {
        // Not empty: something that is not ours is in it (or is reported).
        let _ = std::fs::remove_dir(c);
    }
    left
}

/// Remove a work folder that other threads may still be writing into by
/// path: renamed first, so that no new path reaches it, then removed,
/// again while a write that had already found it lands.
fn remove_work(w: &Path) -> io::Result<()> {
    let mut gone = w.as_os_str().to_owned();
    gone.push(".gone");
    let gone = PathBuf::from(gone);
    let target = match std::fs::rename(w, &gone) {
        Ok(()) => gone,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => w.to_path_buf(),
    };
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(&target) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tries >= 100 => return Err(e),
            Err(_) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

/// A folder for intermediate files, inside the output folder, removed with
/// everything in it when dropped or on a signal.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let mut reg = registry();
        let _ = std::fs::remove_dir_all(&self.path);
        reg.work.remove(&self.path);
    }
}

/// A new hidden work folder (`.ingot-work-XXXXXX`) in `parent`, known to
/// the cleanup from the moment it exists: for any command that needs
/// scratch space (in the temporary folder, say) and must leave nothing.
pub fn work_dir_in(parent: &Path) -> io::Result<WorkDir> {
    let mut reg = registry();
    let path = tempfile::Builder::new()
        .prefix(".ingot-work-")
        .tempdir_in(parent)?
        .keep();
    reg.work.insert(path.clone());
    Ok(WorkDir { path })
}

/// Outputs being written; nothing is visible under a final name until
/// [`Staging::commit`].
pub struct Staging {
    dir: PathBuf,
    /// The output folder's device and inode (in the registry's `outputs`).
    id: (u64, u64),
    created: Vec<PathBuf>,
    files: Vec<(tempfile::NamedTempFile, String)>,
}

impl Staging {
    /// Prepare to write into `dir`, creating it (and recording that we did).
    pub fn new(dir: &Path) -> Result<Self> {
        let mut missing = Vec::new();
        let mut p = dir.to_path_buf();
        while !p.as_os_str().is_empty() && std::fs::symlink_metadata(&p).is_err() {
            missing.push(p.clone());
            match p.parent() {
                Some(parent) => p = parent.to_path_buf(),
                None => break,
            }
        }
        let mut reg = registry();
        let mut created = Vec::new();
        let undo = |reg: &mut Registry, created: &[PathBuf]| {
            for c in created.iter().rev() {
                let _ = std::fs::remove_dir(c);
                reg.created.remove(c);
            }
        };
        for m in missing.into_iter().rev() {
            if let Err(source) = std::fs::create_dir(&m) {
                undo(&mut reg, &created);
                return Err(OutputError::Write { path: m, source });
            }
            reg.created.insert(m.clone());
            created.push(m);
        }
        let md = match std::fs::metadata(dir) {
            Ok(md) if md.is_dir() => md,
            Ok(_) => {
                undo(&mut reg, &created);
                return Err(OutputError::Write {
                    path: dir.to_path_buf(),
                    source: io::Error::from_raw_os_error(libc::ENOTDIR),
                });
            }
            Err(source) => {
                undo(&mut reg, &created);
                return Err(OutputError::Write {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let id = (md.dev(), md.ino());
        reg.outputs.push(id);
        Ok(Staging {
            dir: dir.to_path_buf(),
            id,
            created,
            files: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new hidden work folder in the output folder.
    pub fn work_dir(&self) -> Result<WorkDir> {
        work_dir_in(&self.dir).map_err(|source| OutputError::Write {
            path: self.dir.clone(),
            source,
        })
    }

    /// A new temporary file that becomes `name` on commit.
    pub fn create(&mut self, name: &str) -> Result<&mut File> {
        let mut reg = registry();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|source| OutputError::Write {
                path: self.dir.join(name),
                source,
            })?;
        reg.files.insert(tmp.path().to_path_buf());
        drop(reg);
        self.files.push((tmp, name.to_string()));
        let last = self.files.len() - 1;
        Ok(self.files[last].0.as_file_mut())
    }

    /// Write `bytes` as `name`.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let f = self.create(name)?;
        f.write_all(bytes)
            .map_err(|source| OutputError::Write { path, source })
    }

    /// Give a staged file another final name (for names that depend on
    /// the file's own digest, known only once it is written).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        match self.files.iter_mut().find(|(_, n)| n == from) {
            Some((_, n)) => {
                *n = to.to_string();
                Ok(())
            }
            None => Err(OutputError::NotStaged(from.to_string())),
        }
    }

    /// Drop a staged file: it will not be written (an intermediate, such
    /// as a raw image only needed to make a VMDK).
    pub fn discard(&mut self, name: &str) {
        if let Some(i) = self.files.iter().position(|(_, n)| n == name) {
            let mut reg = registry();
            let (tmp, _) = self.files.remove(i);
            reg.files.remove(tmp.path());
            drop(tmp);
        }
    }

    /// The temporary path of a staged file (to read it back).
    pub fn path_of(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|(_, n)| n == name)
            .map(|(t, _)| t.path())
    }

    /// Rename every staged file to its final name, all of them or none
    /// (see the module doc); returns the final paths.
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        self.commit_with(&mut |from, to| std::fs::rename(from, to))
    }

    /// [`Staging::commit`], moving files with `rename` (tests make it fail).
    fn commit_with(
        mut self,
        rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
    ) -> Result<Vec<PathBuf>> {
        // Complete on disk before any of them gets its final name.
        for (tmp, name) in &self.files {
            finish(tmp.as_file()).map_err(|source| OutputError::Write {
                path: self.dir.join(name),
                source,
            })?;
        }
        let mut reg = registry();
        let moves: Vec<(PathBuf, PathBuf)> = self
            .files
            .iter()
            .map(|(t, n)| (t.path().to_path_buf(), self.dir.join(n)))
            .collect();
        for (_, to) in &moves {
            if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
                return Err(OutputError::Write {
                    path: to.clone(),
                    source: io::Error::from_raw_os_error(libc::EISDIR),
                });
            }
        }
        let mut backups: Vec<Option<Backup>> = Vec::with_capacity(moves.len());
        for (_, to) in &moves {
            match backup(&self.dir, to) {
                Ok(b) => backups.push(b),
                Err(e) => {
                    restore(&moves, &backups, 0);
                    return Err(e);
                }
            }
        }
        for (i, (from, to)) in moves.iter().enumerate() {
            if let Err(source) = rename(from, to) {
                restore(&moves, &backups, i);
                return Err(OutputError::Write {
                    path: to.clone(),
                    source,
                });
            }
        }
        // The renames reach the disk with the folder; a failure here leaves
        // complete outputs in place, so it is not an error.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        drop(backups);
        for (tmp, _) in self.files.drain(..) {
            reg.files.remove(tmp.path());
            let _ = tmp.into_temp_path().keep();
        }
        for c in self.created.drain(..) {
            reg.created.remove(&c);
        }
        reg.committed = true;
        Ok(moves.into_iter().map(|(_, to)| to).collect())
    }
}

/// A file about to be replaced, kept until the commit is done.
struct Backup {
    /// Removed when dropped.
    path: tempfile::TempPath,
    /// Renamed away rather than linked: the final name is empty now.
    moved: bool,
}

/// A hard link to the file `to` names, if any, under a fresh hidden name
/// in `dir`; the file renamed there where the filesystem has no hard links.
fn backup(dir: &Path, to: &Path) -> Result<Option<Backup>> {
    if std::fs::symlink_metadata(to).is_err() {
        return Ok(None);
    }
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let mut moved = false;
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".old")
        .make_in(dir, |p| match std::fs::hard_link(to, p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(_) => {
                std::fs::rename(to, p)?;
                moved = true;
                Ok(())
            }
        })
        .map(|t| {
            Some(Backup {
                path: t.into_temp_path(),
                moved,
            })
        })
        .map_err(|source| OutputError::Write {
            path: to.to_path_buf(),
            source,
        })
}

/// Undo a commit that failed at move `failed`: the moves before it go back
/// to their temporary names, and every replaced file to its final name.
/// Best effort: within one folder, what was just renamed one way renames
/// back.
fn restore(moves: &[(PathBuf, PathBuf)], backups: &[Option<Backup>], failed: usize) {
    for (i, (from, to)) in moves.iter().enumerate().rev() {
        let b = backups.get(i).and_then(Option::as_ref);
        let _ = match b {
            Some(b) if i < failed || b.moved => std::fs::rename(&b.path, to),
            _ if i < failed => std::fs::rename(to, from),
            _ => Ok(()),
        };
    }
}

fn finish(f: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Artifacts are world-readable like any build output, whatever the umask
    // made of the temporary file.
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.sync_all()
}

impl Drop for Staging {
    fn drop(&mut self) {
        let mut reg = registry();
        for (tmp, _) in self.files.drain(..) {
            reg.files.remove(tmp.path());
            drop(tmp); // unlinks itself
        }
        for c in self.created.drain(..).rev() {
            reg.created.remove(&c);
            let _ = std::fs::remove_dir(&c);
        }
        if let Some(i) = reg.outputs.iter().position(|o| *o == self.id) {
            reg.outputs.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_is_visible_before_commit_and_all_after() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("a/b");
        let mut s = Staging::new(&out).unwrap();
        s.write("x.rpm", b"hello").unwrap();
        s.write("y.json", b"{}").unwrap();
        let visible: Vec<_> = names(&out)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert!(visible.is_empty(), "{visible:?}");
        let paths = s.commit().unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(std::fs::read(out.join("x.rpm")).unwrap(), b"hello");
        assert_eq!(names(&out), ["x.rpm", "y.json"], "temporary files left");
    }

    #[test]
    fn dropping_without_commit_leaves_nothing_not_even_created_folders() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("new/deeper");
        {
            let mut s = Staging::new(&out).unwrap();
            s.write("x.rpm", b"partial").unwrap();
            let w = s.work_dir().unwrap();
            std::fs::create_dir(w.path().join("sub")).unwrap();
            std::fs::write(w.path().join("sub/f"), b"scratch").unwrap();
            drop(w);
        }
        assert!(!t.path().join("new").exists());
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_registry_knows_each_temporary_name_while_it_exists() {
        let t = tempfile::tempdir().unwrap();
        let mut s = Staging::new(t.path()).unwrap();
        let w = s.work_dir().unwrap();
        s.create("x.raw").unwrap();
        let staged = s.path_of("x.raw").unwrap().to_path_buf();
        assert!(registry().files.contains(&staged));
        assert!(registry().work.contains(w.path()));
        let md = std::fs::symlink_metadata(t.path()).unwrap();
        assert!(is_output_folder(&md));
        let work = w.path().to_path_buf();
        drop(w);
        assert!(!registry().work.contains(&work) && !work.exists());
        drop(s);
        assert!(!registry().files.contains(&staged) && !staged.exists());
        assert!(!is_output_folder(&md));
    }

    #[test]
    fn a_folder_in_the_way_fails_the_commit_before_anything_moves() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path();
        let mut s = Staging::new(out).unwrap();
        s.write("a.tar", b"a").unwrap();
        s.write("b.spdx.json", b"b").unwrap();
        s.write("c.manifest.json", b"c").unwrap();
        std::fs::create_dir(out.join("c.manifest.json")).unwrap();
        let e = s.commit().unwrap_err();
        match &e {
            OutputError::Write { path, source } => {
                assert_eq!(path, &out.join("c.manifest.json"));
                assert_eq!(source.raw_os_error(), Some(libc::EISDIR));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(names(out), ["c.manifest.json"]);
    }

    #[test]
    fn a_failing_rename_undoes_the_ones_before_and_puts_replaced_files_back() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path();
        std::fs::write(out.join("a.rpm"), b"old a").unwrap();
        let mut s = Staging::new(out).unwrap();
        s.write("a.rpm", b"new a").unwrap();
        s.write("b.rpm", b"new b").unwrap();
        s.write("c.rpm", b"new c").unwrap();
        let mut calls = 0;
        let e = s
            .commit_with(&mut |from, to| {
                calls += 1;
                if calls == 3 {
                    Err(io::Error::from_raw_os_error(libc::EIO))
                } else {
                    std::fs::rename(from, to)
                }
            })
            .unwrap_err();
        assert!(matches!(e, OutputError::Write { .. }), "{e:?}");
        assert_eq!(calls, 3);
        assert_eq!(names(out), ["a.rpm"]);
        assert_eq!(std::fs::read(out.join("a.rpm")).unwrap(), b"old a");
    }

    #[test]
    fn a_commit_replaces_an_older_file_and_leaves_no_backup() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path();
        std::fs::write(out.join("a.rpm"), b"old").unwrap();
        let mut s = Staging::new(out).unwrap();
        s.write("a.rpm", b"new").unwrap();
        s.commit().unwrap();
        assert_eq!(names(out), ["a.rpm"]);
        assert_eq!(std::fs::read(out.join("a.rpm")).unwrap(), b"new");
    }
}
