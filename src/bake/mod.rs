//! `ingot bake`: from an image spec to finished artifacts, as a list of
//! named stages, each in its own file with typed input and output:
//!
//! | stage | file | in -> out |
//! | --- | --- | --- |
//! | 1. read the base | `base.rs` | the base's path -> the tree, its digest (an archive's hashed on a thread from the start) |
//! | 2. build the package specs | `packages.rs` | the spec -> the packages' files, the source date |
//! | 3. resolve packages from repositories | `resolve.rs` | spec + tree + packages -> the lock, the packages it pins downloaded |
//! | 4. install | `transaction.rs` | tree + packages -> tree with their files and records |
//! | 5. activate | `activate.rs` | tree -> accounts, image files, units |
//! | 6. lay out the disk | `layout.rs` | tree -> GPT, ESP, the root filesystem's place and writer |
//! | 7. write the outputs | `outputs.rs` | tree + layout -> raw, every disk format in one pass, tarball |
//! | 8. write the manifest and SBOM | `record.rs` | everything learned -> names, manifest, SBOM |
//!
//! In: an [`ImageSpec`] and options. Out: the outputs the spec asks for,
//! named `NAME-DIGEST.EXT`, with `NAME-DIGEST.manifest.json` and the SBOM,
//! all renamed into the output folder at the very end; then, when the
//! packages from repositories were resolved anew, the lock file beside the
//! spec ([`resolve`]'s module doc; [`lock`] is `ingot lock`). Works in a hidden
//! folder inside the output folder (the spill store, the database being
//! written, the packages built from specs) that is removed in all cases,
//! a signal included (`output::Staging::work_dir`).
//!
//! Time: `SOURCE_DATE_EPOCH` when set, else the newest source date among
//! the packages the image installs (their build times, those from
//! repositories included), else 0.
//!
//! Progress: the caller's [`Reporter`] hears each step, and as tasks with
//! their totals the long ones: sources hashed and compressed (packages
//! built from specs), the base read, payloads installed, the root
//! filesystem written (from the writer's watermark), the disk image
//! digested and each output written. Reporting changes no output.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

mod activate;
mod base;
mod layout;
mod outputs;
mod packages;
mod record;
mod resolve;
mod transaction;

pub use resolve::{Fetch, LockMode, LockOutcome, LockState, LockUpdate, RepoOptions};

use sha2::{Digest, Sha256};

use crate::disk::{DiskError, OutputFormat};
use crate::filesystem::FilesystemError;
use crate::install::InstallError;
use crate::lock::LockError;
use crate::manifest::Manifest;
use crate::output::{OutputError, Staging};
pub use crate::progress::Reporter;
use crate::repo::RepoError;
use crate::resolve::ResolveError;
use crate::rootfs::ImportError;
use crate::rpm::Compression;
use crate::rpm::build::BuildError;
use crate::spec::SpecError;
use crate::spec::image::{BaseKind, ImageSpec};

/// Why a bake failed. What the spec says wrong carries its file, line and
/// column ([`BakeError::Spec`]); the rest names the file or the part of
/// the image that failed.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    #[error(transparent)]
    Spec(#[from] SpecError),

    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A work file cannot be written.
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// What the image or an option asks that cannot be done, found only
    /// while baking, where no line of the spec is to blame.
    #[error("{0}")]
    Usage(String),

    /// The partition table, the ESP, a disk format, or reading the image
    /// back for its digests.
    #[error("cannot make the disk image")]
    Disk(#[source] DiskError),

    #[error("cannot make the root filesystem")]
    Filesystem(#[source] FilesystemError),

    #[error("cannot import the base root filesystem")]
    Base(#[source] Box<ImportError>),

    /// A base that is a disk image whose root filesystem does not read.
    #[error("cannot import the base root filesystem")]
    BaseImage(#[source] Box<crate::fsread::image::ImageError>),

    /// Building a package spec of the image.
    #[error(transparent)]
    Build(#[from] BuildError),

    #[error(transparent)]
    Install(#[from] InstallError),

    /// Staging or committing the outputs.
    #[error(transparent)]
    Output(#[from] OutputError),

    /// Reading a repository or fetching a package from it.
    #[error(transparent)]
    Repo(#[from] RepoError),

    /// Resolving the packages from repositories.
    #[error(transparent)]
    Resolve(#[from] ResolveError),

    /// The lock file beside the spec cannot be read.
    #[error(transparent)]
    Lock(#[from] LockError),

    /// `--locked`, and the lock file does not pin the spec's packages.
    #[error(
        "the lock file `{}` is {}; run `ingot lock {}`",
        path.display(),
        if *missing { "missing" } else { "stale (the spec's install, packages, repositories or options changed since it was made)" },
        spec.display()
    )]
    Locked {
        path: PathBuf,
        spec: PathBuf,
        missing: bool,
    },
}

pub type Result<T, E = BakeError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct BakeOptions {
    pub out: PathBuf,
    /// Replaces the spec's base (and drops its pin).
    pub base: Option<PathBuf>,
    pub deps_check: bool,
    pub source_date_epoch: Option<u64>,
    /// Compression of packages built from specs.
    pub compression: Compression,
    /// Threads for hashing and compressing packages built from specs (the
    /// packages are the same whatever it is).
    pub jobs: std::num::NonZeroUsize,
    /// Only these formats (from `--format`); the spec's when empty.
    pub formats: Vec<OutputFormat>,
    /// Packages from repositories: the cache, offline, locked.
    pub repos: RepoOptions,
}

#[derive(Debug)]
pub struct BakeResult {
    /// Final paths: the main image first, the manifest last.
    pub outputs: Vec<PathBuf>,
    pub manifest: Manifest,
    /// The lock file written after the outputs (resolved anew), if any.
    pub lock: Option<LockUpdate>,
}

fn sha256_reader(mut r: impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 20, &mut r),
        &mut h,
    )?;
    Ok(hex::encode(h.finalize()))
}

fn sha256_path(p: &Path) -> std::io::Result<String> {
    sha256_reader(std::fs::File::open(p)?)
}

/// A path as the spec wrote it (relative to the spec's folder), never a
/// host path of the machine that baked.
fn spec_relative(spec: &ImageSpec, p: &Path) -> String {
    let dir = spec.file.parent().unwrap_or(Path::new(""));
    let rel = if dir.as_os_str().is_empty() {
        p
    } else {
        p.strip_prefix(dir).unwrap_or(p)
    };
    let rel = rel.strip_prefix(".").unwrap_or(rel);
    rel.to_string_lossy().into_owned()
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn bake(spec: &ImageSpec, opts: &BakeOptions, progress: &dyn Reporter) -> Result<BakeResult> {
    let formats: Vec<OutputFormat> = if opts.formats.is_empty() {
        spec.formats.clone()
    } else {
        opts.formats.clone()
    };
    if let Some(b) = &opts.base {
        base::check_base_arg(b)?;
    }
    let (base, base_kind, pin) = choose_base(spec, opts.base.as_deref())?;

    if base_kind == BaseKind::Dir {
        base::refuse_out_inside(&base, &opts.out)?;
    }

    // The base archive's digest is taken beside the rest of the work.
    let mut base_digest = match base_kind {
        BaseKind::Tar => {
            let pin_at = spec.at_base_sha256.map(|at| (spec.file.clone(), at));
            Some(base::BaseDigest::start(&base, pin, pin_at))
        }
        BaseKind::Dir => None,
    };
    let r = bake_from(
        spec,
        opts,
        progress,
        &formats,
        (&base, base_kind),
        &mut base_digest,
    );
    match (r, base_digest) {
        (Ok(r), _) => Ok(r),
        // A base that is not the one pinned explains more than whatever
        // else went wrong with it.
        (Err(e), Some(mut d)) if d.pin.is_some() => Err(d.digest().err().unwrap_or(e)),
        (Err(e), _) => Err(e),
    }
}

/// The base to read: `--base` (then no pin), else the spec's (checked).
fn choose_base(
    spec: &ImageSpec,
    arg: Option<&Path>,
) -> Result<(PathBuf, BaseKind, Option<String>)> {
    Ok(match arg {
        Some(b) => (
            b.to_path_buf(),
            if b.is_dir() {
                BaseKind::Dir
            } else {
                BaseKind::Tar
            },
            None,
        ),
        None => {
            spec.check_base()?;
            (spec.base.clone(), spec.base_kind, spec.base_sha256.clone())
        }
    })
}

/// What `ingot lock` takes.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Replaces the spec's base.
    pub base: Option<PathBuf>,
    pub repos: RepoOptions,
    pub mode: LockMode,
    /// Then download the lock's packages into the cache (not with
    /// [`LockMode::Check`]), so a later bake needs no network.
    pub download: bool,
    /// Threads for building the image's package specs (their
    /// requirements are resolved too).
    pub jobs: std::num::NonZeroUsize,
}

/// `ingot lock`: read the base and build the image's own packages as
/// `bake` does, then resolve the packages from repositories and write the
/// lock file (or, with [`LockMode::Check`], say what is newer). No image
/// is made; the scratch folder is in the system's temporary folder.
pub fn lock(spec: &ImageSpec, opts: &LockOptions, progress: &dyn Reporter) -> Result<LockOutcome> {
    if spec.repositories.repos.is_empty() && !spec.repositories.use_base_repos {
        return Err(BakeError::Usage(format!(
            "`{}` names no [[image.repos]] and no use_base_repos: there is nothing to lock",
            spec.file.display()
        )));
    }
    if opts.download && opts.mode == LockMode::Check {
        return Err(BakeError::Usage(
            "a lock check writes nothing and downloads nothing: drop --download or --check".into(),
        ));
    }
    if let Some(b) = &opts.base {
        base::check_base_arg(b)?;
    }
    let (base, base_kind, _) = choose_base(spec, opts.base.as_deref())?;
    let tmp = std::env::temp_dir();
    let work = crate::output::work_dir_in(&tmp).map_err(|source| BakeError::Write {
        path: tmp.clone(),
        source,
    })?;
    let bake_opts = BakeOptions {
        out: work.path().to_path_buf(),
        base: opts.base.clone(),
        deps_check: true,
        source_date_epoch: None,
        compression: Compression::default(),
        jobs: opts.jobs,
        formats: Vec::new(),
        repos: opts.repos.clone(),
    };
    let pkgs = packages::build(spec, &bake_opts, progress, work.path())?;
    let tree = base::import(&base, base_kind == BaseKind::Tar, work.path(), progress)?;
    resolve::lock_from(
        spec,
        &tree,
        &pkgs.rpms,
        (&opts.repos, opts.mode, opts.download),
        work.path(),
        progress,
    )
}

fn bake_from(
    spec: &ImageSpec,
    opts: &BakeOptions,
    progress: &dyn Reporter,
    formats: &[OutputFormat],
    (base_path, base_kind): (&Path, BaseKind),
    base_digest: &mut Option<base::BaseDigest>,
) -> Result<BakeResult> {
    let mut staging = Staging::new(&opts.out)?;
    let work = staging.work_dir()?;
    let mut pkgs = packages::build(spec, opts, progress, work.path())?;
    let base::Base {
        mut tree,
        bios,
        dir_sha,
    } = base::read(base_path, base_digest, work.path(), progress)?;
    // `--no-deps-check`: only `install` is resolved, not what the image's
    // own packages require.
    let local: &[(PathBuf, String)] = if opts.deps_check { &pkgs.rpms } else { &[] };
    let fetched = resolve::fetch(spec, &tree, local, opts, work.path(), progress)?;
    if opts.source_date_epoch.is_none() {
        pkgs.source_date = pkgs.source_date.max(fetched.newest_build);
    }
    pkgs.rpms.extend(fetched.rpms);
    let date = pkgs.source_date;
    let time = u32::try_from(date).unwrap_or(u32::MAX);
    let report = transaction::install(&mut tree, &pkgs.rpms, opts, work.path(), time, progress)?;
    let activated = activate::activate(&mut tree, spec, &report, time, progress)?;
    // Located warnings about the specs themselves (modes) come first.
    let mut warnings = spec.warnings.clone();
    warnings.extend(pkgs.warnings.iter().cloned());
    warnings.extend(report.warnings.iter().cloned());
    warnings.extend(activated.warnings.iter().cloned());
    // The image's identifiers derive from its inputs: the spec, the base,
    // every package, the date.
    let mut seed = || -> Result<[u8; 32]> {
        if base_digest.as_ref().is_some_and(base::BaseDigest::hashing) {
            progress.step("waiting for the base's digest");
        }
        let mut h = Sha256::new();
        h.update(sha256_path(&spec.file).unwrap_or_default().as_bytes());
        h.update(base::sha256(&dir_sha, base_digest)?.as_bytes());
        for (r, _) in &pkgs.rpms {
            h.update(sha256_path(r).unwrap_or_default().as_bytes());
        }
        h.update(date.to_le_bytes());
        Ok(h.finalize().into())
    };
    let written = outputs::write(
        &mut tree,
        spec,
        formats,
        &mut seed,
        time,
        &mut staging,
        opts,
        progress,
        &mut warnings,
        bios.as_ref(),
    )?;
    let base_sha256 = base::sha256(&dir_sha, base_digest)?;
    let m = record::write(
        &mut staging,
        written,
        record::Facts {
            spec,
            opts,
            base_kind,
            base_sha256,
            date,
            packages: pkgs,
            report: &report,
            systemd: &activated.systemd,
            warnings,
            lock: fetched.lock.as_ref(),
        },
    )?;
    drop(tree);
    drop(work);
    // The outputs were derived from the pin: the base must be what it pins.
    if let Some(d) = base_digest.as_mut() {
        d.digest()?;
    }
    let paths = staging.commit()?;
    if let Some(u) = &fetched.update {
        u.write()?;
    }
    Ok(BakeResult {
        outputs: paths,
        manifest: m,
        lock: fetched.update,
    })
}
