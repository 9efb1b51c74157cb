//! Turn a [`Plan`] into a signed or unsigned v4 `.rpm`, streamed to a file.
//!
//! This module and its steps decide every value the package holds, so the
//! result depends only on the spec and the bytes of its sources: modes
//! come from the plan, all timestamps are the source date, the build host
//! is fixed, and nothing reads the user's identity. [`writer`](super::writer)
//! lays the bytes out.
//!
//! The tags and their values are the ones the `rpm` crate (0.30.2) wrote
//! when ingot built on it (its `PackageBuilder::build`), plus what
//! rpmbuild 4.18 adds to the signature header (archive size, header+payload
//! MD5); the cpio members are in the same order with the same fields. What
//! changed: the payload is compressed as one stream (the crate flushed the
//! compressor after every member), zstd payloads are independent frames
//! compressed on several threads, and files of 4 GiB and more get
//! rpmbuild's 64-bit signature sizes.
//!
//! [`write_from_plan`] is the list of steps, each a module with typed
//! input and output:
//! 1. `meta`: the source date, then the package's own tags (name,
//!    version, changelog, ...) and rpm's rules for the values it carries.
//! 2. `sign` loads the signing key, so a bad key fails before any work.
//! 3. `files`: one entry per path of the plan; `scan` hashes every
//!    source file (SHA-256, streamed) and runs it through
//!    [`autodeps`](super::autodeps) on up to `jobs` threads; files that
//!    share an inode on disk become a hard link set.
//! 4. `scripts`: systemd's scriptlets, the sysusers `%pre`, the user's
//!    scripts.
//! 5. `deps`: every dependency tag (declared, automatic, implied).
//! 6. `archive`: the cpio payload through the compressor into an unnamed
//!    temporary file in the target's work folder.
//! 7. `sign`: the main header encoded and signed; signature header, lead,
//!    header, and the payload copied after them.
//!
//! The header's entries are sorted by tag when encoded, so the order the
//! steps hand them over in does not change the bytes.
//!
//! No step runs another program, reads the clock, or changes the bytes of
//! the user's files (no stripping, no build-id links); the number of
//! threads never changes the bytes written.
//!
//! From the `rpm` crate it keeps only the dependency and file-flag
//! vocabulary (`Dependency`, its flags and sorting rules), capability
//! parsing (`FileCaps`), and OpenPGP signing (`signature::pgp::Signer` and
//! `SignatureHeaderBuilder`, which picks the legacy RSA/DSA tag).

mod archive;
mod deps;
mod files;
mod meta;
mod scan;
mod scripts;
mod sign;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use super::compression::Compression;
use super::plan::{self, Plan};
use crate::error::{Error, Result};
use crate::progress::{Quiet, Reporter, Task, Unit};
use crate::source_date::SourceDate;
use crate::spec::package::PackageSpec;

pub use deps::dep_text;

/// BUILDHOST of every package: the real host name would make builds differ.
pub const BUILD_HOST: &str = "ingot";
/// PACKAGER when the spec names none.
pub const DEFAULT_PACKAGER: &str = "ingot";
/// GROUP when the spec names none (Fedora's value for "no group").
pub const DEFAULT_GROUP: &str = "Unspecified";
/// RPMVERSION: what ingot has always written (the `rpm` crate's name and
/// version, from when it wrote the packages); kept so that the header does
/// not change.
pub const RPMVERSION: &str = "rpm-rs 0.30.2";

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`, already parsed.
    pub source_date_epoch: Option<u64>,
    /// An ASCII-armored OpenPGP secret key (RSA or Ed25519).
    pub sign_key: Option<PathBuf>,
}

/// Threads for hashing and compression when the user names none: the
/// machine's cores.
pub fn default_jobs() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Where a package is written.
pub struct Target<'a> {
    /// An empty file open for writing (and reading).
    pub file: &'a mut File,
    /// Its path, for messages.
    pub path: &'a Path,
    /// Where the compressed payload waits, in an unnamed temporary file,
    /// until the headers are known: the output's folder, or a work folder.
    pub work_dir: &'a Path,
}

/// A package written to a file.
#[derive(Debug, Clone)]
pub struct WrittenPackage {
    /// `name-version-release.arch.rpm`
    pub file_name: String,
    /// Bytes in the file.
    pub size: u64,
    pub sha256: String,
    pub nevra: String,
    pub source_date: SourceDate,
    /// Dependencies as rpm lists them (`name [OP evr]`), sorted.
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    pub signed: bool,
    pub files: usize,
    pub warnings: Vec<String>,
}

/// A finished package held in memory ([`build_package`]; for small
/// packages: the CLI streams with [`write_package`]).
#[derive(Debug, Clone)]
pub struct BuiltPackage {
    /// `name-version-release.arch.rpm`
    pub file_name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub nevra: String,
    pub source_date: SourceDate,
    /// Dependencies as rpm lists them (`name [OP evr]`), sorted.
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    pub signed: bool,
    pub files: usize,
    pub warnings: Vec<String>,
}

/// `name-version-release.arch.rpm`
pub fn file_name(spec: &PackageSpec) -> String {
    format!("{}.rpm", spec.nvra())
}

/// The error for what rpm's rules refuse in `spec`'s package.
fn rpm_err(spec: &PackageSpec) -> impl Fn(::rpm::Error) -> Error + '_ {
    move |source| Error::Rpm {
        package: spec.name.clone(),
        source,
    }
}

/// Build the package a spec describes, in memory. Convenient for small
/// packages; [`write_package`] streams to a file in bounded memory.
pub fn build_package(spec: &PackageSpec, opts: &BuildOptions) -> Result<BuiltPackage> {
    let plan = plan::plan(spec)?;
    build_from_plan(spec, &plan, opts)
}

/// [`build_package`] for a plan already made.
pub fn build_from_plan(
    spec: &PackageSpec,
    plan: &Plan,
    opts: &BuildOptions,
) -> Result<BuiltPackage> {
    let dir = std::env::temp_dir();
    let path = dir.join(file_name(spec));
    let write_err = |source| Error::Write {
        path: path.clone(),
        source,
    };
    let mut file = tempfile::tempfile_in(&dir).map_err(write_err)?;
    let w = write_from_plan(
        spec,
        plan,
        opts,
        default_jobs(),
        Target {
            file: &mut file,
            path: &path,
            work_dir: &dir,
        },
        &Quiet,
    )?;
    let mut bytes = Vec::with_capacity(usize::try_from(w.size).unwrap_or(0));
    file.seek(SeekFrom::Start(0)).map_err(write_err)?;
    file.read_to_end(&mut bytes).map_err(write_err)?;
    Ok(BuiltPackage {
        file_name: w.file_name,
        bytes,
        sha256: w.sha256,
        nevra: w.nevra,
        source_date: w.source_date,
        requires: w.requires,
        provides: w.provides,
        signed: w.signed,
        files: w.files,
        warnings: w.warnings,
    })
}

/// Build the package a spec describes into `target`, streaming: memory
/// does not grow with the size of files or payload. Hashing and
/// compression use up to `jobs` threads; the bytes do not depend on it.
pub fn write_package(
    spec: &PackageSpec,
    opts: &BuildOptions,
    jobs: NonZeroUsize,
    target: Target,
    progress: &dyn Reporter,
) -> Result<WrittenPackage> {
    let plan = plan::plan(spec)?;
    write_from_plan(spec, &plan, opts, jobs, target, progress)
}

/// [`write_package`] for a plan already made: the steps of the module
/// docs, in order. Errors come in that order too (a bad key before any
/// source is read, a bad value before the slow scan). `progress` hears
/// the sources hashed and compressed, in bytes.
pub fn write_from_plan(
    spec: &PackageSpec,
    plan: &Plan,
    opts: &BuildOptions,
    jobs: NonZeroUsize,
    target: Target,
    progress: &dyn Reporter,
) -> Result<WrittenPackage> {
    let stamp = meta::stamp(spec, opts.source_date_epoch)?;
    let key = sign::load_key(opts.sign_key.as_deref())?;
    let meta = meta::Meta::new(spec, stamp.secs);
    let entries = files::entries(spec, plan)?;
    meta.check(spec, &entries)?;
    let sources = files::sources(&entries);
    let hashing = Task::start(
        progress,
        &format!("hashing the sources of {}", spec.name),
        Unit::Bytes,
        progress.watching().then(|| scan::total_size(&sources)),
    );
    let scanned = scan::scan(&sources, spec.deps.auto, jobs, &hashing)?;
    hashing.finish();
    let files = files::collect(spec, entries, scanned.scans)?;
    let scripts = scripts::gather(spec)?;
    let deps = deps::gather(spec, opts.compression, &files, &scanned.auto, &scripts)?;

    let mut header = meta.tags(spec, stamp.secs);
    header.extend(files.tags(stamp.secs));
    header.extend(deps.tags());
    header.extend(scripts.tags());
    header.extend(archive::tags(opts.compression));
    let compressing = Task::start(
        progress,
        &format!("compressing {}", file_name(spec)),
        Unit::Bytes,
        Some(archive::content_size(&files)),
    );
    let payload = archive::write(
        &files,
        (opts.compression, jobs),
        stamp.secs,
        target.work_dir,
        &compressing,
    )?;
    compressing.finish();
    header.extend(archive::digest_tags(&payload));
    let written = sign::assemble(spec, header, payload, key.as_ref(), stamp.secs, target)?;

    let mut warnings = spec.warnings.clone();
    warnings.extend(stamp.warning);
    Ok(WrittenPackage {
        file_name: file_name(spec),
        size: written.size,
        sha256: hex::encode(written.sha256),
        nevra: format!("{}-{}.{}", spec.name, spec.evr(), spec.arch),
        source_date: stamp.date,
        requires: deps::texts(&deps.requires),
        provides: deps::texts(&deps.provides),
        signed: key.is_some(),
        files: plan.entries.len(),
        warnings,
    })
}
