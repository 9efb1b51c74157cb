//! Stage 1 of `bake`: read the base. The base is checked before anything
//! else (a folder or an archive, `--out` not inside it); an archive that
//! is a disk image (told apart by its bytes) is read by
//! [`crate::fsread::image`], its root partition into the tree and its
//! legacy-BIOS boot code kept for the new disk. Its archive is
//! hashed on a thread of its own from the start (a pin stands in for the
//! digest until the check before commit), and it is imported into the tree
//! (metadata in memory, contents by reference or in the spill store).
//!
//! In: the base's path and kind, the work folder. Out: [`Base`]: the tree,
//! a disk image's BIOS boot code, and the base's digest for the image's
//! seed and the manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{BakeError, Result};
use super::{Hashing, Reporter, sha256_path};
use crate::fsread::image::{BiosBoot, Image};
use crate::progress::{Task, Unit};
use crate::rootfs::{self, Tree};
use crate::spec::SpecError;
use crate::spec::package::Loc;

/// `--base` must be a folder or a regular file (an archive): anything
/// else (a FIFO, a device) could block or never end.
pub(super) fn check_base_arg(b: &Path) -> Result<()> {
    let md = std::fs::metadata(b).map_err(|source| BakeError::Read {
        path: b.to_path_buf(),
        source,
    })?;
    if md.is_dir() || md.is_file() {
        return Ok(());
    }
    Err(BakeError::Usage(format!(
        "--base `{}` is {}: give a root filesystem archive or folder",
        b.display(),
        crate::input::describe(md.file_type())
    )))
}

/// A folder base must not hold `--out` (see `rootfs::dir_in`, which also
/// refuses it by identity): checked on the paths, symlinks resolved,
/// before anything is written.
pub(super) fn refuse_out_inside(base: &Path, out: &Path) -> Result<()> {
    let Ok(base) = std::fs::canonicalize(base) else {
        return Ok(()); // the import says what is wrong with it
    };
    // The nearest existing folder of --out, and the rest of the path.
    let mut existing = out.to_path_buf();
    let mut rest = Vec::new();
    let real = loop {
        if let Ok(p) = std::fs::canonicalize(&existing) {
            break p;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n.to_os_string());
                existing = if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                };
            }
            _ => return Ok(()),
        }
    };
    let real = rest.iter().rev().fold(real, |p, n| p.join(n));
    if real.starts_with(&base) {
        return Err(BakeError::Usage(format!(
            "`--out {}` is inside the base folder `{}`: the bake would write into the root \
             filesystem it reads, and the image would change with where its outputs go; \
             choose an --out outside it",
            out.display(),
            base.display()
        )));
    }
    Ok(())
}

/// The SHA-256 of the base archive, computed on a thread of its own from
/// the start of the bake. The image's identifiers are derived from it: with
/// a pin in the spec the pin stands in for it ([`BaseDigest::for_seed`]),
/// so nothing waits for the hash but the final check before the outputs
/// are committed; without one, the disk waits for it.
pub(super) struct BaseDigest {
    path: PathBuf,
    pub(super) pin: Option<String>,
    /// Where the spec writes the pin, for the error when it does not hold.
    pin_at: Option<(PathBuf, Loc)>,
    running: Option<std::thread::JoinHandle<std::io::Result<String>>>,
    done: Option<String>,
}

impl BaseDigest {
    pub(super) fn start(path: &Path, pin: Option<String>, pin_at: Option<(PathBuf, Loc)>) -> Self {
        let p = path.to_path_buf();
        BaseDigest {
            path: path.to_path_buf(),
            pin,
            pin_at,
            running: Some(std::thread::spawn(move || sha256_path(&p))),
            done: None,
        }
    }

    /// Whether the image waits for the hash when it needs the digest.
    pub(super) fn hashing(&self) -> bool {
        self.pin.is_none() && self.running.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// The digest to derive the image from.
    pub(super) fn for_seed(&mut self) -> Result<String> {
        match &self.pin {
            Some(p) => Ok(p.clone()),
            None => self.digest(),
        }
    }

    /// The archive's digest, once computed, checked against the pin.
    pub(super) fn digest(&mut self) -> Result<String> {
        if let Some(h) = self.running.take() {
            let d = h
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
                .map_err(|source| BakeError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            self.done = Some(d);
        }
        let d = self.done.clone().unwrap_or_default();
        if let Some(want) = &self.pin
            && *want != d
        {
            let message = format!(
                "base `{}` has sha256 {d}, but the spec pins {want}",
                self.path.display()
            );
            return Err(match &self.pin_at {
                Some((file, at)) => BakeError::Spec(SpecError {
                    file: file.clone(),
                    location: Some((at.line, at.column)),
                    message,
                    hint: Some("pin the archive you mean to use, or remove `base_sha256`".into()),
                }),
                None => BakeError::Usage(message),
            });
        }
        Ok(d)
    }
}

/// The base, imported.
pub(super) struct Base {
    pub tree: Tree,
    /// A disk image's legacy-BIOS boot code, carried into the new disk.
    pub bios: Option<BiosBoot>,
    /// A folder's digest (its tree's, as a tarball); an archive's comes
    /// from the [`BaseDigest`].
    pub dir_sha: Option<String>,
}

/// The base's SHA-256, for the seed and the manifest: an archive's from
/// its digest (the pin until it is checked), a folder's from its tree.
pub(super) fn sha256(dir_sha: &Option<String>, digest: &mut Option<BaseDigest>) -> Result<String> {
    match (digest.as_mut(), dir_sha) {
        (Some(d), _) => d.for_seed(),
        (None, d) => Ok(d.clone().unwrap_or_default()),
    }
}

/// Import the base at `path` into a tree whose spill store is in `work`.
pub(super) fn read(
    path: &Path,
    digest: &Option<BaseDigest>,
    work: &Path,
    progress: &dyn Reporter,
) -> Result<Base> {
    let (tree, bios) = import_with_bios(path, digest.is_some(), work, progress)?;
    let dir_sha = match digest {
        Some(_) => None,
        None => {
            let mut h = Hashing {
                inner: std::io::sink(),
                hash: Sha256::new(),
                len: 0,
            };
            tree.write_tar(&mut h)
                .and_then(|()| h.flush())
                .map_err(|source| BakeError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
            Some(hex::encode(h.hash.finalize()))
        }
    };
    Ok(Base {
        tree,
        bios,
        dir_sha,
    })
}

/// The format of the base at `path` when it is a disk image (a raw GPT
/// disk, qcow2, VMDK, VHD or Compute Engine tarball, told apart by their
/// bytes), `None` for a folder or a root filesystem tarball.
pub(super) fn disk_image(path: &Path) -> Option<crate::disk::view::DiskFormat> {
    if !path.is_file() {
        return None;
    }
    match crate::inspect::detect(path).ok()? {
        crate::inspect::Artifact::Disk(f) => Some(f),
        _ => None,
    }
}

/// Import the base at `path` (an archive when `archive`, its bytes then
/// reported as read) into a tree whose spill store is in `work`.
pub(super) fn import(
    path: &Path,
    archive: bool,
    work: &Path,
    progress: &dyn Reporter,
) -> Result<Tree> {
    Ok(import_with_bios(path, archive, work, progress)?.0)
}

/// [`import`], with a disk image's BIOS boot code.
fn import_with_bios(
    path: &Path,
    archive: bool,
    work: &Path,
    progress: &dyn Reporter,
) -> Result<(Tree, Option<BiosBoot>)> {
    progress.step("importing the base");
    let task = if archive {
        let size = std::fs::metadata(path).map(|m| m.len()).ok();
        Task::start(progress, "reading the base", Unit::Bytes, size)
    } else {
        Task::start(progress, "reading the base", Unit::Items, None)
    };
    let found = match disk_image(path) {
        Some(format) => Image::open(path, format)
            .and_then(|image| Ok((image.read_root(Some(work))?, image.bios_boot()?)))
            .map_err(|e| BakeError::BaseImage(Box::new(e)))?,
        None => (
            rootfs::import_reporting(path, Some(work), &task)
                .map_err(|e| BakeError::Base(Box::new(e)))?,
            None,
        ),
    };
    task.finish();
    Ok(found)
}
