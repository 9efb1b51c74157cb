//! Never a partial output.
//!
//! In: the output folder and, for each artifact, a name and its bytes (or a
//! writer callback). Out: the artifacts under their final names, all renamed
//! into place at the end. Until [`Staging::commit`], everything lives under
//! hidden temporary names in the output folder; dropping the staging area
//! (an error) or Ctrl-C (see [`install_interrupt_cleanup`]) removes them, and
//! removes the output folder too when ingot created it and it is empty.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Temporary files and folders to remove if the process is interrupted.
static PENDING: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn pending() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// On SIGINT/SIGTERM: remove every staged temporary file (and folders ingot
/// created that are now empty), say so, exit 130.
pub fn install_interrupt_cleanup() {
    let _ = ctrlc::set_handler(|| {
        let paths: Vec<PathBuf> = pending().iter().cloned().collect();
        // Files first, then folders (deepest first).
        for p in paths.iter().rev() {
            if p.is_dir() {
                let _ = std::fs::remove_dir(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
        eprintln!("error: interrupted; no output was written");
        std::process::exit(130);
    });
}

/// Outputs being written; nothing is visible under a final name until
/// [`Staging::commit`].
pub struct Staging {
    dir: PathBuf,
    created: Vec<PathBuf>,
    files: Vec<(tempfile::NamedTempFile, String)>,
}

impl Staging {
    /// Prepare to write into `dir`, creating it (and recording that we did).
    pub fn new(dir: &Path) -> Result<Self> {
        let mut created = Vec::new();
        let mut missing = Vec::new();
        let mut p = dir.to_path_buf();
        while !p.as_os_str().is_empty() && !p.exists() {
            missing.push(p.clone());
            match p.parent() {
                Some(parent) => p = parent.to_path_buf(),
                None => break,
            }
        }
        for m in missing.into_iter().rev() {
            std::fs::create_dir(&m).map_err(|source| Error::Write {
                path: m.clone(),
                source,
            })?;
            pending().insert(m.clone());
            created.push(m);
        }
        Ok(Staging {
            dir: dir.to_path_buf(),
            created,
            files: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new temporary file that becomes `name` on commit.
    pub fn create(&mut self, name: &str) -> Result<&mut File> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|source| Error::Write {
                path: self.dir.join(name),
                source,
            })?;
        pending().insert(tmp.path().to_path_buf());
        self.files.push((tmp, name.to_string()));
        let last = self.files.len() - 1;
        Ok(self.files[last].0.as_file_mut())
    }

    /// Write `bytes` as `name`.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let f = self.create(name)?;
        f.write_all(bytes)
            .map_err(|source| Error::Write { path, source })
    }

    /// Give a staged file another final name (for names that depend on
    /// the file's own digest, known only once it is written).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        match self.files.iter_mut().find(|(_, n)| n == from) {
            Some((_, n)) => {
                *n = to.to_string();
                Ok(())
            }
            None => Err(Error::Usage(format!("no staged output named `{from}`"))),
        }
    }

    /// Drop a staged file: it will not be written (an intermediate, such
    /// as a raw image only needed to make a VMDK).
    pub fn discard(&mut self, name: &str) {
        if let Some(i) = self.files.iter().position(|(_, n)| n == name) {
            let (tmp, _) = self.files.remove(i);
            pending().remove(tmp.path());
        }
    }

    /// The temporary path of a staged file (to read it back).
    pub fn path_of(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|(_, n)| n == name)
            .map(|(t, _)| t.path())
    }

    /// Rename every staged file to its final name; returns the final paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for (tmp, name) in std::mem::take(&mut self.files) {
            let final_path = self.dir.join(&name);
            let tmp_path = tmp.path().to_path_buf();
            finish(tmp.as_file()).map_err(|source| Error::Write {
                path: final_path.clone(),
                source,
            })?;
            tmp.persist(&final_path).map_err(|e| Error::Write {
                path: final_path.clone(),
                source: e.error,
            })?;
            pending().remove(&tmp_path);
            out.push(final_path);
        }
        let mut p = pending();
        for c in self.created.drain(..) {
            p.remove(&c);
        }
        Ok(out)
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
        let mut p = pending();
        for (tmp, _) in self.files.drain(..) {
            p.remove(tmp.path());
            // NamedTempFile removes itself on drop.
        }
        for c in self.created.drain(..).rev() {
            p.remove(&c);
            let _ = std::fs::remove_dir(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_visible_before_commit_and_all_after() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("a/b");
        let mut s = Staging::new(&out).unwrap();
        s.write("x.rpm", b"hello").unwrap();
        s.write("y.json", b"{}").unwrap();
        let visible: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert!(visible.is_empty(), "{visible:?}");
        let paths = s.commit().unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(std::fs::read(out.join("x.rpm")).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "temporary files left: {names:?}");
    }

    #[test]
    fn dropping_without_commit_leaves_nothing_not_even_created_folders() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("new/deeper");
        {
            let mut s = Staging::new(&out).unwrap();
            s.write("x.rpm", b"partial").unwrap();
        }
        assert!(!t.path().join("new").exists());
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
