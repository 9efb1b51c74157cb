//! Turn a [`Plan`] into a signed or unsigned v4 `.rpm`, streamed to a file.
//!
//! This module decides every value the package holds, so the result
//! depends only on the spec and the bytes of its sources: modes come from
//! the plan, all timestamps are the source date, the build host is fixed,
//! and nothing reads the user's identity. [`writer`](super::writer) lays
//! the bytes out.
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
//! Work, in order:
//! 1. Scan: every source file is hashed (SHA-256, streamed) and run through
//!    [`autodeps`], on up to `jobs` threads; files that share an inode on
//!    disk become a hard link set.
//! 2. Payload: the cpio archive is written through the compressor into an
//!    unnamed temporary file in the target's work folder.
//! 3. Header, signature, lead, and the payload copied after them.
//!
//! From the `rpm` crate it keeps only the dependency and file-flag
//! vocabulary (`Dependency`, its flags and sorting rules), capability
//! parsing (`FileCaps`), and OpenPGP signing (`signature::pgp::Signer` and
//! `SignatureHeaderBuilder`, which picks the legacy RSA/DSA tag).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::rpm::{Dependency as RpmDep, DependencyFlags as DF, FileFlags, FileVerifyFlags, Scriptlet};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::autodeps;
use super::compression::Compression;
use super::dep::{Dependency, Op};
use super::header::{NewEntry, Value, tag};
use super::plan::{self, Content, Kind, Plan};
use super::writer::{self, ArchiveWriter, CpioHeader, EntryError};
use crate::error::{Error, Result};
use crate::source_date::{self, SourceDate};
use crate::spec::package::{Config, PackageSpec};
use crate::systemd;

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

fn to_rpm_dep(d: &Dependency) -> RpmDep {
    match d {
        Dependency::Rich { text, .. } => RpmDep::any(text.clone()),
        Dependency::Simple(s) => match &s.constraint {
            None => RpmDep::any(s.name.clone()),
            Some((op, evr)) => match op {
                Op::Lt => RpmDep::less(s.name.clone(), evr.clone()),
                Op::Le => RpmDep::less_eq(s.name.clone(), evr.clone()),
                Op::Eq => RpmDep::eq(s.name.clone(), evr.clone()),
                Op::Ge => RpmDep::greater_eq(s.name.clone(), evr.clone()),
                Op::Gt => RpmDep::greater(s.name.clone(), evr.clone()),
            },
        },
    }
}

/// The scripts of one slot, generated ones first, as one body. Like
/// rpmbuild, trailing whitespace is dropped.
fn join_scripts(parts: &[Option<String>]) -> Option<String> {
    let parts: Vec<&str> = parts
        .iter()
        .flatten()
        .map(|s| s.trim_end())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n\n"))
    }
}

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
) -> Result<WrittenPackage> {
    let plan = plan::plan(spec)?;
    write_from_plan(spec, &plan, opts, jobs, target)
}

/// Where a member's bytes come from.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Source(&'a Path),
    Bytes(&'a [u8]),
}

/// One entry of the package, as the header and the archive describe it.
struct FileRec<'a> {
    /// `./usr/bin/x`
    cpio: String,
    /// `/usr/bin/`
    dir: String,
    base: String,
    /// File type and permission bits.
    mode: u16,
    user: &'a str,
    group: &'a str,
    flags: FileFlags,
    verify: FileVerifyFlags,
    caps: Option<String>,
    link: &'a str,
    body: Body<'a>,
    /// A regular file in the payload: it has a digest.
    regular: bool,
    ghost: bool,
    size: u64,
    digest: String,
}

/// What the scan learnt about a source file.
#[derive(Debug, Clone)]
struct Scan {
    size: u64,
    sha256: [u8; 32],
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    deps: autodeps::FileDeps,
}

/// A member of a hard link set.
#[derive(Debug, Clone, Copy)]
struct Link {
    inode: u32,
    count: u32,
    /// The set's last member (in path order) carries the bytes.
    has_content: bool,
}

const S_IFREG: u16 = 0o100000;
const S_IFDIR: u16 = 0o040000;
const S_IFLNK: u16 = 0o120000;

fn changed(path: &Path, what: &str) -> Error {
    Error::Read {
        path: path.to_path_buf(),
        source: io::Error::other(format!(
            "{what} while the package was being built; build again"
        )),
    }
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

/// rpm's rule for names (the `rpm` crate's `validate_name`).
fn check_name(name: &str) -> std::result::Result<(), ::rpm::Error> {
    let bad = |reason| ::rpm::Error::InvalidCharacters {
        field: "name",
        value: name.to_string(),
        reason,
    };
    let Some(&first) = name.as_bytes().first() else {
        return Err(bad("must not be empty"));
    };
    if !first.is_ascii_alphanumeric() && !b"_%".contains(&first) {
        return Err(bad(
            "must start with an alphanumeric character, '_', or '%'",
        ));
    }
    if let Some(b) = name
        .bytes()
        .find(|b| !b.is_ascii_alphanumeric() && !b".-_+%{}".contains(b))
    {
        return Err(bad(if b.is_ascii_whitespace() {
            "must not contain whitespace"
        } else {
            "contains invalid character (allowed: alphanumeric, '.', '-', '_', '+', '%', '{', '}')"
        }));
    }
    Ok(())
}

/// rpm's rule for versions and releases.
fn check_version(field: &'static str, v: &str) -> std::result::Result<(), ::rpm::Error> {
    let bad = |reason| ::rpm::Error::InvalidCharacters {
        field,
        value: v.to_string(),
        reason,
    };
    if v.is_empty() {
        return Err(bad("must not be empty"));
    }
    if v.bytes()
        .any(|b| !b.is_ascii_alphanumeric() && !b"._+%{}~^".contains(&b))
    {
        return Err(bad(
            "contains invalid character (allowed: alphanumeric, '.', '_', '+', '%', '{', '}', '~', '^')",
        ));
    }
    Ok(())
}

/// No control characters but tab and newline (they break repository
/// metadata).
fn check_text(field: &'static str, v: &str) -> std::result::Result<(), ::rpm::Error> {
    if v.bytes()
        .any(|b| b.is_ascii_control() && b != b'\t' && b != b'\n')
    {
        return Err(::rpm::Error::InvalidControlChar {
            field,
            value: v.to_string(),
        });
    }
    Ok(())
}

/// Collapse repeated slashes and drop a trailing one.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// rpm's `%_isa` for an arch (`x86_64` -> `x86-64`), as the `rpm` crate
/// maps it; `None` for noarch.
fn arch_isa(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "x86_64" | "amd64" | "ia32e" => "x86-64",
        "i386" | "i486" | "i586" | "i686" | "athlon" | "geode" => "x86-32",
        "aarch64" => "aarch-64",
        "armv7hl" | "armv7hnl" => "armv7hl-32",
        "ppc64" | "ppc64p7" | "ppc64le" => "ppc-64",
        "ppc" => "ppc-32",
        "s390x" => "s390-64",
        "s390" => "s390-32",
        "riscv64" => "riscv-64",
        "loongarch64" => "loongarch-64",
        "mips64" | "mips64el" => "mips-64",
        "mips" | "mipsel" => "mips-32",
        "mips64r6" | "mips64r6el" => "mipsr6-64",
        "mipsr6" | "mipsr6el" => "mipsr6-32",
        "sparc64" | "sparc64v" => "sparc-64",
        "sparc" | "sparcv8" | "sparcv9" | "sparcv9v" => "sparc-32",
        "ia64" => "ia-64",
        "alpha" | "alphaev5" | "alphaev56" | "alphaev6" | "alphaev67" | "alphapca56" => "alpha-64",
        "m68k" => "m68k-32",
        "e2k" | "e2kv4" | "e2kv5" | "e2kv6" | "e2kv7" => "e2k-64",
        _ => return None,
    })
}

/// rpm's order for dependency arrays: name, then version, then flags
/// (bytewise, not version-aware).
fn sort_deps(deps: &mut [RpmDep]) {
    deps.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.version.cmp(&b.version))
            .then_with(|| a.flags.bits().cmp(&b.flags.bits()))
    });
}

fn dep_tags(deps: &[RpmDep], names: u32, versions: u32, flags: u32) -> [NewEntry; 3] {
    [
        NewEntry {
            tag: names,
            value: Value::StringArray(deps.iter().map(|d| d.name.clone()).collect()),
        },
        NewEntry {
            tag: versions,
            value: Value::StringArray(deps.iter().map(|d| d.version.clone()).collect()),
        },
        NewEntry {
            tag: flags,
            value: Value::Int32(deps.iter().map(|d| d.flags.bits()).collect()),
        },
    ]
}

/// The `user()`, `group()` and `groupmember()` dependencies rpm 4.19
/// derives from a sysusers.d file (as the `rpm` crate does): `(provide?,
/// dependency)` per line.
fn sysusers_deps(text: impl BufRead) -> io::Result<Vec<(u8, RpmDep)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(&kind), Some(&name)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        if !matches!(kind, "u" | "u!" | "g" | "m") {
            continue;
        }
        // The normalised line, NUL-padded to avoid `=` in base64.
        let mut bytes = fields.join(" ").into_bytes();
        bytes.resize(bytes.len().div_ceil(3) * 3, 0);
        let version = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let provided = |name: String, version: &str| RpmDep {
            name,
            flags: if version.is_empty() {
                DF::FIND_PROVIDES
            } else {
                DF::EQUAL | DF::FIND_PROVIDES
            },
            version: version.to_string(),
        };
        match kind {
            "u" | "u!" => {
                out.push((b'P', provided(format!("user({name})"), &version)));
                out.push((b'P', provided(format!("group({name})"), "")));
            }
            "g" => out.push((b'P', provided(format!("group({name})"), &version))),
            _ => {
                let Some(&group) = fields.get(2) else {
                    continue;
                };
                out.push((
                    b'P',
                    provided(format!("groupmember({name}/{group})"), &version),
                ));
                out.push((b'R', RpmDep::user(name)));
                out.push((b'R', RpmDep::group(group)));
            }
        }
    }
    Ok(out)
}

pub fn write_from_plan(
    spec: &PackageSpec,
    plan: &Plan,
    opts: &BuildOptions,
    jobs: NonZeroUsize,
    target: Target,
) -> Result<WrittenPackage> {
    let err = rpm_err(spec);
    let mut warnings = spec.warnings.clone();
    let newest_change = spec.changelog.first().map(|c| c.time);
    let date = source_date::resolve(opts.source_date_epoch, newest_change);
    if date.origin == source_date::Origin::Epoch {
        warnings.push(
            "no SOURCE_DATE_EPOCH and no [[changelog]] entry: timestamps are 1970-01-01"
                .to_string(),
        );
    }
    let ts = u32::try_from(date.seconds).map_err(|_| {
        Error::Usage(format!(
            "source date {} does not fit rpm's 32-bit times",
            date.seconds
        ))
    })?;
    // The build and signature times are the source date, whatever it is:
    // time enters only through `source_date`, never from the clock.
    let stamp = ts;

    // The signing key first: a bad key fails before any work.
    let signer = match &opts.sign_key {
        None => None,
        Some(key) => {
            let armored = std::fs::read(key).map_err(|source| Error::Read {
                path: key.clone(),
                source,
            })?;
            let s = ::rpm::signature::pgp::Signer::from_asc_bytes(&armored).map_err(|source| {
                Error::SigningKey {
                    path: key.clone(),
                    source,
                }
            })?;
            Some((key, s))
        }
    };

    let packager = spec
        .packager
        .clone()
        .unwrap_or_else(|| DEFAULT_PACKAGER.into());
    let group = spec.group.clone().unwrap_or_else(|| DEFAULT_GROUP.into());
    let mut changelog: Vec<(String, String, u32)> = spec
        .changelog
        .iter()
        .map(|c| {
            (
                c.author.clone(),
                c.text.clone(),
                u32::try_from(c.time).unwrap_or(u32::MAX),
            )
        })
        .collect();
    if changelog.is_empty() {
        changelog.push((
            format!("{packager} - {}", spec.evr()),
            format!("- Built by ingot from {}", spec_file_name(spec)),
            ts,
        ));
    }

    // Every entry, in path order (the header's and the archive's).
    let mut files: Vec<FileRec> = Vec::with_capacity(plan.entries.len());
    for e in plan.entries.values() {
        let cpio = format!(".{}", normalize(&e.path));
        let (parent, base) = cpio[1..].rsplit_once('/').unwrap_or(("", &cpio[1..]));
        let dir = format!("{parent}/");
        let config = match e.config {
            Config::No => FileFlags::empty(),
            Config::Yes => FileFlags::CONFIG,
            Config::NoReplace => FileFlags::CONFIG | FileFlags::NOREPLACE,
        };
        let caps = |c: &Option<String>| -> Result<Option<String>> {
            c.as_ref()
                .map(|c| {
                    ::rpm::FileCaps::from_str(c)
                        .map(|c| c.to_string())
                        .map_err(|e| {
                            err(::rpm::Error::InvalidCapabilities {
                                caps: e.to_string(),
                            })
                        })
                })
                .transpose()
        };
        let mut r = FileRec {
            cpio: cpio.clone(),
            dir,
            base: base.to_string(),
            mode: 0,
            user: &e.user,
            group: &e.group,
            flags: FileFlags::empty(),
            verify: FileVerifyFlags::ALL_FLAGS,
            caps: None,
            link: "",
            body: Body::None,
            regular: false,
            ghost: false,
            size: 0,
            digest: String::new(),
        };
        match &e.kind {
            Kind::File(content) => {
                r.mode = S_IFREG | e.mode;
                r.flags = config;
                if e.doc {
                    r.flags |= FileFlags::DOC;
                }
                r.caps = caps(&e.caps)?;
                r.regular = true;
                r.body = match content {
                    Content::Source(src) => Body::Source(src),
                    Content::Generated(bytes) => Body::Bytes(bytes),
                };
            }
            Kind::Dir => r.mode = S_IFDIR | e.mode,
            Kind::Symlink(target) => {
                r.mode = S_IFLNK | 0o777;
                r.link = target;
                r.body = Body::Bytes(target.as_bytes());
            }
            Kind::Ghost => {
                r.mode = S_IFREG | e.mode;
                r.flags = config | FileFlags::GHOST;
                r.verify = FileVerifyFlags::ALL_FLAGS
                    & !(FileVerifyFlags::FILEDIGEST
                        | FileVerifyFlags::FILESIZE
                        | FileVerifyFlags::LINKTO
                        | FileVerifyFlags::MTIME);
                r.ghost = true;
            }
        }
        files.push(r);
    }

    // What rpm refuses to carry (the `rpm` crate's checks).
    check_name(&spec.name).map_err(&err)?;
    check_version("version", &spec.version).map_err(&err)?;
    check_version("release", &spec.release).map_err(&err)?;
    let mut texts: Vec<(&'static str, &str)> = vec![
        ("license", &spec.license),
        ("arch", &spec.arch),
        ("summary", &spec.summary),
        ("description", &spec.description),
        ("build_host", BUILD_HOST),
        ("packager", &packager),
        ("group", &group),
    ];
    for (field, v) in [("url", &spec.url), ("vendor", &spec.vendor)] {
        if let Some(v) = v {
            texts.push((field, v));
        }
    }
    for f in &files {
        texts.extend([
            ("file path", f.cpio.as_str()),
            ("file user", f.user),
            ("file group", f.group),
            ("file symlink target", f.link),
        ]);
    }
    for (name, text, _) in &changelog {
        texts.push(("changelog name", name));
        texts.push(("changelog entry", text));
    }
    for (field, v) in texts {
        check_text(field, v).map_err(&err)?;
    }

    // 1. Scan.
    let todo: Vec<(usize, &Path, u16, &str)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f.body {
            Body::Source(src) if f.regular => Some((i, src, f.mode & 0o7777, &f.cpio[1..])),
            _ => None,
        })
        .collect();
    let scans = scan_sources(&todo, spec.deps.auto, jobs)?;
    let indices: Vec<usize> = todo.into_iter().map(|t| t.0).collect();
    let mut auto = autodeps::FileDeps::default();
    let mut scanned: BTreeMap<usize, Scan> = BTreeMap::new();
    for (i, s) in indices.into_iter().zip(scans) {
        auto.requires.extend(s.deps.requires.iter().cloned());
        auto.provides.extend(s.deps.provides.iter().cloned());
        files[i].size = s.size;
        files[i].digest = hex::encode(s.sha256);
        scanned.insert(i, s);
    }
    for f in &mut files {
        match f.body {
            Body::Bytes(b) => {
                f.size = b.len() as u64;
                if f.regular {
                    f.digest = hex::encode(Sha256::digest(b));
                }
            }
            Body::None | Body::Source(_) => {}
        }
    }

    // Hard links: source files that are one inode on disk (from distinct
    // paths: one source packaged twice is two files).
    let mut links: BTreeMap<usize, Link> = BTreeMap::new();
    let mut by_inode: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
    for (i, s) in &scanned {
        by_inode.entry((s.dev, s.ino)).or_default().push(*i);
    }
    for members in by_inode.values().filter(|m| m.len() > 1) {
        let mut sources = BTreeSet::new();
        for &i in members {
            if let Body::Source(src) = files[i].body {
                let real = std::fs::canonicalize(src).map_err(|source| Error::Read {
                    path: src.to_path_buf(),
                    source,
                })?;
                sources.insert(real);
            }
        }
        if sources.len() != members.len() {
            continue;
        }
        let first = &files[members[0]];
        for &i in &members[1..] {
            let f = &files[i];
            if f.mode != first.mode
                || f.user != first.user
                || f.group != first.group
                || f.flags != first.flags
                || f.verify != first.verify
                || f.link != first.link
                || f.caps != first.caps
            {
                return Err(err(::rpm::Error::InvalidFileOptions {
                    method: "PackageBuilder::build",
                    reason: "hardlink members must have identical effective metadata",
                }));
            }
            if f.size != first.size || f.digest != first.digest {
                return Err(err(::rpm::Error::InvalidFileOptions {
                    method: "PackageBuilder::build",
                    reason: "hardlink members must have identical content",
                }));
            }
        }
        let inode = u32::try_from(members[0] + 1).map_err(|_| {
            err(::rpm::Error::InvalidFileOptions {
                method: "PackageBuilder::build",
                reason: "hardlink inode exceeds RPM's 32-bit authority",
            })
        })?;
        let count = members.len() as u32;
        let last = members[members.len() - 1];
        for &i in members {
            links.insert(
                i,
                Link {
                    inode,
                    count,
                    has_content: i == last,
                },
            );
        }
    }

    let installed: u64 = files
        .iter()
        .enumerate()
        .filter(|(i, _)| links.get(i).is_none_or(|l| l.has_content))
        .map(|(_, f)| f.size)
        .sum();
    let large = installed > u64::from(u32::MAX);

    // Dependencies.
    let epoch = spec.epoch.map(|e| e.to_string()).unwrap_or_default();
    let evr = rpm_version::Evr::new(&epoch, &spec.version, &spec.release).to_string();
    let d = &spec.deps;
    let list = |v: &[Dependency]| -> Vec<RpmDep> { v.iter().map(to_rpm_dep).collect() };
    let mut requires = list(&d.requires);
    let mut provides = list(&d.provides);
    let mut conflicts = list(&d.conflicts);
    let mut obsoletes = list(&d.obsoletes);
    let mut recommends = list(&d.recommends);
    let mut suggests = list(&d.suggests);
    let mut supplements = list(&d.supplements);
    let mut enhances = list(&d.enhances);
    // Found in the payload: flagged as rpmbuild's dependency generators flag them.
    requires.extend(auto.requires.iter().map(|r| RpmDep {
        name: r.clone(),
        flags: DF::FIND_REQUIRES,
        version: String::new(),
    }));
    provides.extend(auto.provides.iter().map(|p| RpmDep {
        name: p.clone(),
        flags: DF::FIND_PROVIDES,
        version: String::new(),
    }));

    // What systemd's RPM macros add: %systemd_requires, and the scriptlets
    // of %systemd_post / %systemd_preun / %systemd_postun_with_restart.
    let units: Vec<String> = spec.units.iter().map(|u| u.name.clone()).collect();
    let (mut post, mut preun, mut postun) = (None, None, None);
    if !units.is_empty() {
        requires.push(RpmDep::script_post("systemd"));
        requires.push(RpmDep::script_preun("systemd"));
        requires.push(RpmDep::script_postun("systemd"));
        post = Some(systemd::scriptlets::post(&units));
        preun = Some(systemd::scriptlets::preun(&units));
        postun = Some(systemd::scriptlets::postun(&units));
    }
    let mut pre = None;
    if let Some(text) = plan::sysusers_text(spec)? {
        requires.push(RpmDep::script_pre("systemd"));
        pre = Some(systemd::scriptlets::sysusers_pre(
            &format!("{}.conf", spec.name),
            &text,
        ));
    }
    let s = &spec.scripts;
    // (tag, prog tag, interpreter flag, body)
    let scripts: Vec<(u32, u32, DF, String)> = [
        (
            tag::PREIN,
            tag::PREINPROG,
            DF::SCRIPT_PRE,
            join_scripts(&[pre, s.pre.clone()]),
        ),
        (
            tag::POSTIN,
            tag::POSTINPROG,
            DF::SCRIPT_POST,
            join_scripts(&[post, s.post.clone()]),
        ),
        (
            tag::PREUN,
            tag::PREUNPROG,
            DF::SCRIPT_PREUN,
            join_scripts(&[preun, s.preun.clone()]),
        ),
        (
            tag::POSTUN,
            tag::POSTUNPROG,
            DF::SCRIPT_POSTUN,
            join_scripts(&[postun, s.postun.clone()]),
        ),
        (
            tag::PRETRANS,
            tag::PRETRANSPROG,
            DF::PRETRANS,
            join_scripts(std::slice::from_ref(&s.pretrans)),
        ),
        (
            tag::POSTTRANS,
            tag::POSTTRANSPROG,
            DF::POSTTRANS,
            join_scripts(std::slice::from_ref(&s.posttrans)),
        ),
    ]
    .into_iter()
    .filter_map(|(t, p, f, body)| body.map(|b| (t, p, f, b)))
    .collect();

    provides.push(RpmDep::eq(spec.name.clone(), &evr));
    if let Some(isa) = arch_isa(&spec.arch) {
        provides.push(RpmDep::eq(format!("{}({isa})", spec.name), &evr));
    }
    if files.iter().any(|f| f.flags.contains(FileFlags::CONFIG)) {
        provides.push(RpmDep::config(&spec.name, &evr));
        requires.push(RpmDep::config(&spec.name, &evr));
    }
    requires.push(RpmDep::rpmlib("CompressedFileNames", "3.0.4-1"));
    requires.push(RpmDep::rpmlib("FileDigests", "4.6.0-1"));
    requires.push(RpmDep::rpmlib("PayloadFilesHavePrefix", "4.0-1"));
    if matches!(opts.compression, Compression::Zstd(_)) {
        requires.push(RpmDep::rpmlib("PayloadIsZstd", "5.4.18-1"));
    }
    if files.iter().any(|f| f.caps.is_some()) {
        requires.push(RpmDep::rpmlib("FileCaps", "4.6.1-1"));
    }
    if large && !files.is_empty() {
        requires.push(RpmDep::rpmlib("LargeFiles", "4.12.0-1"));
    }
    let rich = [
        &requires,
        &provides,
        &conflicts,
        &obsoletes,
        &recommends,
        &suggests,
        &enhances,
        &supplements,
    ]
    .iter()
    .any(|l| l.iter().any(|d| d.name.starts_with('(')));
    if rich {
        requires.push(RpmDep::rpmlib("RichDependencies", "4.12.0-1"));
    }
    // Accounts the files belong to (rpm >= 4.19 creates them; a v4 package
    // only recommends them).
    let users: BTreeSet<&str> = files
        .iter()
        .map(|f| f.user)
        .filter(|u| *u != "root")
        .collect();
    let groups: BTreeSet<&str> = files
        .iter()
        .map(|f| f.group)
        .filter(|g| *g != "root")
        .collect();
    recommends.extend(users.iter().map(|u| RpmDep::user(u)));
    recommends.extend(groups.iter().map(|g| RpmDep::group(g)));

    // sysusers.d files give user()/group() provides, recorded per file.
    let mut file_deps: Vec<(usize, u8, RpmDep)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if !f.cpio.starts_with("./usr/lib/sysusers.d/") || !f.cpio.ends_with(".conf") {
            continue;
        }
        let found = match f.body {
            Body::None => Vec::new(),
            Body::Bytes(b) => sysusers_deps(b).map_err(|e| err(e.into()))?,
            Body::Source(src) => {
                let read_err = |source| Error::Read {
                    path: src.to_path_buf(),
                    source,
                };
                sysusers_deps(BufReader::new(File::open(src).map_err(read_err)?))
                    .map_err(read_err)?
            }
        };
        for (kind, dep) in found {
            if kind == b'P' {
                provides.push(dep.clone());
            } else {
                requires.push(dep.clone());
            }
            file_deps.push((i, kind, dep));
        }
    }
    // The interpreter of every scriptlet.
    for (_, _, phase, _) in &scripts {
        let dep = RpmDep {
            name: "/bin/sh".into(),
            flags: DF::INTERP | *phase,
            version: String::new(),
        };
        if !requires.contains(&dep) {
            requires.push(dep);
        }
    }
    sort_deps(&mut provides);
    sort_deps(&mut requires);
    let mut depends_x = vec![0u32; files.len()];
    let mut depends_n = vec![0u32; files.len()];
    let mut dict: Vec<u32> = Vec::new();
    // By file, versioned before unversioned.
    file_deps.sort_by(|(a, _, da), (b, _, db)| {
        a.cmp(b)
            .then_with(|| (!db.version.is_empty()).cmp(&!da.version.is_empty()))
    });
    for (i, kind, dep) in &file_deps {
        let list = if *kind == b'P' { &provides } else { &requires };
        let at = list.iter().position(|d| d == dep).unwrap_or(0);
        if depends_n[*i] == 0 {
            depends_x[*i] = dict.len() as u32;
        }
        depends_n[*i] += 1;
        dict.push(u32::from(*kind) << 24 | (at as u32 & 0x00ff_ffff));
    }
    for l in [
        &mut obsoletes,
        &mut conflicts,
        &mut recommends,
        &mut suggests,
        &mut enhances,
        &mut supplements,
    ] {
        sort_deps(l);
    }
    for r in requires.iter().chain(&provides).chain(&obsoletes) {
        check_text("dependency name", &r.name).map_err(&err)?;
        check_text("dependency version", &r.version).map_err(&err)?;
    }
    for r in conflicts
        .iter()
        .chain(&recommends)
        .chain(&suggests)
        .chain(&enhances)
        .chain(&supplements)
    {
        check_text("dependency name", &r.name).map_err(&err)?;
        check_text("dependency version", &r.version).map_err(&err)?;
    }

    // The main header, but for the payload's digests.
    let st = |tag: u32, v: &str| NewEntry {
        tag,
        value: Value::String(v.to_string()),
    };
    let i18n = |tag: u32, v: &str| NewEntry {
        tag,
        value: Value::I18nString(vec![v.to_string()]),
    };
    let int32 = |tag: u32, v: Vec<u32>| NewEntry {
        tag,
        value: Value::Int32(v),
    };
    let strings = |tag: u32, v: Vec<String>| NewEntry {
        tag,
        value: Value::StringArray(v),
    };
    let mut h = vec![
        st(tag::SOURCERPM, "(none)"),
        strings(tag::HEADERI18NTABLE, vec!["C".into()]),
        st(tag::NAME, &spec.name),
        st(tag::RPMVERSION, RPMVERSION),
        st(tag::VERSION, &spec.version),
        st(tag::RELEASE, &spec.release),
        i18n(tag::DESCRIPTION, &spec.description),
        i18n(tag::SUMMARY, &spec.summary),
        if large {
            NewEntry {
                tag: tag::LONGSIZE,
                value: Value::Int64(vec![installed]),
            }
        } else {
            int32(tag::SIZE, vec![installed as u32])
        },
        st(tag::LICENSE, &spec.license),
        st(tag::OS, "linux"),
        i18n(tag::GROUP, &group),
        st(tag::ARCH, &spec.arch),
        st(tag::ENCODING, "utf-8"),
        st(tag::PAYLOADFORMAT, "cpio"),
        int32(tag::BUILDTIME, vec![stamp]),
        st(tag::BUILDHOST, BUILD_HOST),
    ];
    if let Some(e) = spec.epoch {
        h.push(int32(tag::EPOCH, vec![e]));
    }
    let inode = |i: usize| links.get(&i).map_or(i as u32 + 1, |l| l.inode);
    if !files.is_empty() {
        let dirs: BTreeSet<&str> = files.iter().map(|f| f.dir.as_str()).collect();
        let dir_index: BTreeMap<&str, u32> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, i as u32))
            .collect();
        let col = |f: &dyn Fn(&FileRec) -> String| files.iter().map(f).collect::<Vec<_>>();
        h.push(if large {
            NewEntry {
                tag: tag::LONGFILESIZES,
                value: Value::Int64(files.iter().map(|f| f.size).collect()),
            }
        } else {
            int32(
                tag::FILESIZES,
                files.iter().map(|f| f.size as u32).collect(),
            )
        });
        h.extend([
            NewEntry {
                tag: tag::FILEMODES,
                value: Value::Int16(files.iter().map(|f| f.mode).collect()),
            },
            NewEntry {
                tag: tag::FILERDEVS,
                value: Value::Int16(vec![0; files.len()]),
            },
            int32(tag::FILEMTIMES, vec![ts; files.len()]),
            strings(tag::FILEDIGESTS, col(&|f| f.digest.clone())),
            strings(tag::FILELINKTOS, col(&|f| f.link.to_string())),
            int32(
                tag::FILEFLAGS,
                files.iter().map(|f| f.flags.bits()).collect(),
            ),
            strings(tag::FILEUSERNAME, col(&|f| f.user.to_string())),
            strings(tag::FILEGROUPNAME, col(&|f| f.group.to_string())),
            int32(
                tag::FILEDEVICES,
                files.iter().map(|f| u32::from(!f.ghost)).collect(),
            ),
            int32(tag::FILEINODES, (0..files.len()).map(inode).collect()),
            int32(
                tag::DIRINDEXES,
                files.iter().map(|f| dir_index[f.dir.as_str()]).collect(),
            ),
            strings(tag::FILELANGS, vec![String::new(); files.len()]),
            int32(
                tag::FILEVERIFYFLAGS,
                files.iter().map(|f| f.verify.bits()).collect(),
            ),
            strings(tag::BASENAMES, col(&|f| f.base.clone())),
            strings(tag::DIRNAMES, dirs.iter().map(|d| d.to_string()).collect()),
        ]);
        if files.iter().any(|f| f.caps.is_some()) {
            h.push(strings(
                tag::FILECAPS,
                col(&|f| f.caps.clone().unwrap_or_default()),
            ));
        }
    }
    h.push(int32(tag::FILEDIGESTALGO, vec![8]));
    h.extend(dep_tags(
        &provides,
        tag::PROVIDENAME,
        tag::PROVIDEVERSION,
        tag::PROVIDEFLAGS,
    ));
    if !dict.is_empty() {
        h.push(int32(tag::FILEDEPENDSX, depends_x));
        h.push(int32(tag::FILEDEPENDSN, depends_n));
        h.push(int32(tag::DEPENDSDICT, dict));
    }
    let (compressor, level) = match opts.compression {
        Compression::None => (None, String::new()),
        Compression::Gzip(l) => (Some("gzip"), l.to_string()),
        Compression::Zstd(l) => (Some("zstd"), l.to_string()),
        Compression::Xz(l) => (Some("xz"), l.to_string()),
        Compression::Bzip2(l) => (Some("bzip2"), l.to_string()),
    };
    if let Some(c) = compressor {
        h.push(st(tag::PAYLOADCOMPRESSOR, c));
    }
    h.push(st(tag::PAYLOADFLAGS, &level));
    h.push(strings(
        tag::CHANGELOGNAME,
        changelog.iter().map(|c| c.0.clone()).collect(),
    ));
    h.push(strings(
        tag::CHANGELOGTEXT,
        changelog.iter().map(|c| c.1.clone()).collect(),
    ));
    h.push(int32(
        tag::CHANGELOGTIME,
        changelog.iter().map(|c| c.2).collect(),
    ));
    for (deps, names, versions, flags) in [
        (
            &obsoletes,
            tag::OBSOLETENAME,
            tag::OBSOLETEVERSION,
            tag::OBSOLETEFLAGS,
        ),
        (
            &requires,
            tag::REQUIRENAME,
            tag::REQUIREVERSION,
            tag::REQUIREFLAGS,
        ),
        (
            &conflicts,
            tag::CONFLICTNAME,
            tag::CONFLICTVERSION,
            tag::CONFLICTFLAGS,
        ),
        (
            &recommends,
            tag::RECOMMENDNAME,
            tag::RECOMMENDVERSION,
            tag::RECOMMENDFLAGS,
        ),
        (
            &suggests,
            tag::SUGGESTNAME,
            tag::SUGGESTVERSION,
            tag::SUGGESTFLAGS,
        ),
        (
            &enhances,
            tag::ENHANCENAME,
            tag::ENHANCEVERSION,
            tag::ENHANCEFLAGS,
        ),
        (
            &supplements,
            tag::SUPPLEMENTNAME,
            tag::SUPPLEMENTVERSION,
            tag::SUPPLEMENTFLAGS,
        ),
    ] {
        if !deps.is_empty() {
            h.extend(dep_tags(deps, names, versions, flags));
        }
    }
    for (script_tag, prog_tag, _, body) in &scripts {
        // As a `Scriptlet` with `/bin/sh` as its program writes itself.
        let sc = Scriptlet::new(body.as_str()).prog(vec!["/bin/sh"]);
        h.push(st(*script_tag, &sc.script));
        h.push(st(*prog_tag, "/bin/sh"));
    }
    if let Some(v) = &spec.vendor {
        h.push(st(tag::VENDOR, v));
    }
    h.push(st(tag::PACKAGER, &packager));
    if let Some(u) = &spec.url {
        h.push(st(tag::URL, u));
    }

    // 2. The payload: ordinary members in path order, then hard link
    // members in path order (as rpmbuild orders them).
    let work_err = |source| Error::Write {
        path: target.work_dir.to_path_buf(),
        source,
    };
    let temp = tempfile::tempfile_in(target.work_dir).map_err(work_err)?;
    let mut archive = ArchiveWriter::new(temp, opts.compression, jobs, large).map_err(work_err)?;
    let order = files
        .iter()
        .enumerate()
        .filter(|(i, f)| !f.ghost && !links.contains_key(i))
        .chain(
            files
                .iter()
                .enumerate()
                .filter(|(i, f)| !f.ghost && links.contains_key(i)),
        );
    for (i, f) in order {
        let link = links.get(&i);
        let size = if link.is_none_or(|l| l.has_content) {
            f.size
        } else {
            0
        };
        let head = CpioHeader {
            name: &f.cpio,
            ino: inode(i),
            mode: u32::from(f.mode),
            nlink: link.map_or(1, |l| l.count),
            mtime: ts,
            size,
            index: i as u32,
        };
        let (r, src) = match (f.body, size) {
            (_, 0) | (Body::None, _) => (archive.entry(&head, io::empty()), None),
            (Body::Bytes(b), _) => (archive.entry(&head, b), None),
            (Body::Source(src), _) => {
                let read_err = |source| Error::Read {
                    path: src.to_path_buf(),
                    source,
                };
                let file = File::open(src).map_err(read_err)?;
                let md = file.metadata().map_err(read_err)?;
                let s = &scanned[&i];
                if (md.dev(), md.ino(), md.len(), (md.mtime(), md.mtime_nsec()))
                    != (s.dev, s.ino, s.size, s.mtime)
                {
                    return Err(changed(src, "it changed"));
                }
                (archive.entry(&head, file), Some(src))
            }
        };
        r.map_err(|e| match (e, src) {
            (EntryError::Read(source), Some(src)) => Error::Read {
                path: src.to_path_buf(),
                source,
            },
            (EntryError::Shorter(_) | EntryError::Longer, Some(src)) => changed(src, "it changed"),
            (e, _) => work_err(e.into_io()),
        })?;
    }
    let payload = archive.finish().map_err(work_err)?;

    // 3. Header, signature, assembly.
    h.push(strings(
        tag::PAYLOADDIGEST,
        vec![hex::encode(payload.sha256)],
    ));
    h.push(strings(
        tag::PAYLOADDIGESTALT,
        vec![hex::encode(payload.archive_sha256)],
    ));
    h.push(int32(tag::PAYLOADDIGESTALGO, vec![8]));
    let blob = super::header::encode_header(h, tag::HEADERIMMUTABLE).map_err(|e| {
        Error::Usage(format!(
            "the header of `{}` cannot be written: {e}",
            spec.name
        ))
    })?;
    let signatures = match &signer {
        None => Vec::new(),
        Some((key, signer)) => {
            sign(signer, &writer::header_bytes(&blob), stamp).map_err(|source| {
                Error::SigningKey {
                    path: (*key).clone(),
                    source,
                }
            })?
        }
    };
    let out_err = |source| Error::Write {
        path: target.path.to_path_buf(),
        source,
    };
    let written =
        writer::assemble(&spec.name, &blob, payload, signatures, target.file).map_err(out_err)?;

    let texts = |deps: &[RpmDep]| -> Vec<String> {
        let mut v: Vec<String> = deps.iter().map(dep_text).collect();
        v.sort();
        v
    };
    Ok(WrittenPackage {
        file_name: file_name(spec),
        size: written.size,
        sha256: hex::encode(written.sha256),
        nevra: format!("{}-{}.{}", spec.name, spec.evr(), spec.arch),
        source_date: date,
        requires: texts(&requires),
        provides: texts(&provides),
        signed: signer.is_some(),
        files: plan.entries.len(),
        warnings,
    })
}

/// The signature header's OpenPGP entries for `header` (with magic):
/// RPMSIGTAG_OPENPGP and the legacy RSA or DSA tag, as the `rpm` crate
/// picks them for the key's algorithm.
fn sign(
    signer: &::rpm::signature::pgp::Signer,
    header: &[u8],
    time: u32,
) -> std::result::Result<Vec<NewEntry>, ::rpm::Error> {
    use ::rpm::signature::Signing;
    let sig = signer.sign(header, ::rpm::Timestamp::from(time))?;
    let h = ::rpm::SignatureHeaderBuilder::new()
        .format(::rpm::RpmFormat::V4)
        .reserved_space(None)
        .add_openpgp_signature(sig)
        .build()?;
    let mut out = Vec::new();
    for (t, data) in h.get_all_entries()? {
        let value = match data {
            ::rpm::IndexData::StringArray(v) => Value::StringArray(v),
            ::rpm::IndexData::Bin(b) => Value::Bin(b),
            ::rpm::IndexData::StringTag(s) => Value::String(s),
            _ => continue,
        };
        if t != tag::HEADERSIGNATURES {
            out.push(NewEntry { tag: t, value });
        }
    }
    Ok(out)
}

fn spec_file_name(spec: &PackageSpec) -> String {
    spec.file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "its spec".into())
}

/// `name`, or `name OP version` as `rpm -q --requires` prints it.
pub fn dep_text(d: &RpmDep) -> String {
    use ::rpm::DependencyFlags as F;
    let f = d.flags;
    let op = match (
        f.contains(F::LESS),
        f.contains(F::GREATER),
        f.contains(F::EQUAL),
    ) {
        (true, false, false) => "<",
        (true, false, true) => "<=",
        (false, false, true) => "=",
        (false, true, true) => ">=",
        (false, true, false) => ">",
        _ => "",
    };
    if op.is_empty() || d.version.is_empty() {
        d.name.clone()
    } else {
        format!("{} {op} {}", d.name, d.version)
    }
}
