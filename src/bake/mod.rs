//! `ingot bake`: from an image spec to finished artifacts.
//!
//! In: an [`ImageSpec`] (base root filesystem, packages, systemd
//! overrides, overlays, formats) and options. Out: the outputs the spec
//! asks for, named `NAME-DIGEST.EXT`, and `NAME-DIGEST.manifest.json`,
//! all renamed into the output folder at the very end. Works in a hidden
//! folder inside the output folder (the spill store, the database being
//! written, the packages built from specs) that is removed in all cases,
//! a signal included (`output::Staging::work_dir`).
//!
//! Order of work: check the base pin; build package specs; import the
//! base; install the packages (digests, dependencies, conflicts, files,
//! database); create accounts from sysusers.d; place overlays; enable
//! units; write outputs; write the manifest.
//!
//! Time: `SOURCE_DATE_EPOCH` when set, else the newest source date among
//! the packages the image installs (their build times), else 0.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

mod disk;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::install::{self, InstallOptions};
use crate::manifest::{self, Manifest};
use crate::output::Staging;
use crate::rootfs::{self, Meta, Node, Tree};
use crate::rpm::{BuildOptions, Compression};
use crate::spec::SpecError;
use crate::spec::image::{BaseKind, Format, ImageSpec, OverlayContent, PackageRef};
use crate::spec::package::Loc;

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
    pub formats: Vec<Format>,
}

#[derive(Debug)]
pub struct BakeResult {
    /// Final paths: the main image first, the manifest last.
    pub outputs: Vec<PathBuf>,
    pub manifest: Manifest,
}

/// Progress the CLI may draw.
pub trait Reporter {
    fn step(&self, _what: &str) {}
}

pub struct Quiet;
impl Reporter for Quiet {}

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

/// `--base` must be a folder or a regular file (an archive): anything
/// else (a FIFO, a device) could block or never end.
fn check_base_arg(b: &Path) -> Result<()> {
    let md = std::fs::metadata(b).map_err(|source| Error::Read {
        path: b.to_path_buf(),
        source,
    })?;
    if md.is_dir() || md.is_file() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--base `{}` is {}: give a root filesystem archive or folder",
        b.display(),
        crate::input::describe(md.file_type())
    )))
}

pub fn bake(spec: &ImageSpec, opts: &BakeOptions, progress: &dyn Reporter) -> Result<BakeResult> {
    let formats: Vec<Format> = if opts.formats.is_empty() {
        spec.formats.clone()
    } else {
        opts.formats.clone()
    };
    if let Some(b) = &opts.base {
        check_base_arg(b)?;
    }
    let (base, base_kind, pin) = match &opts.base {
        Some(b) => (
            b.clone(),
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
    };

    if base_kind == BaseKind::Dir {
        refuse_out_inside(&base, &opts.out)?;
    }

    // The base archive's digest is taken beside the rest of the work.
    let mut base_digest = match base_kind {
        BaseKind::Tar => {
            let pin_at = spec.at_base_sha256.map(|at| (spec.file.clone(), at));
            Some(BaseDigest::start(&base, pin, pin_at))
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

/// A folder base must not hold `--out` (see `rootfs::dir_in`, which also
/// refuses it by identity): checked on the paths, symlinks resolved,
/// before anything is written.
fn refuse_out_inside(base: &Path, out: &Path) -> Result<()> {
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
        return Err(Error::Usage(format!(
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
struct BaseDigest {
    path: PathBuf,
    pin: Option<String>,
    /// Where the spec writes the pin, for the error when it does not hold.
    pin_at: Option<(PathBuf, Loc)>,
    running: Option<std::thread::JoinHandle<std::io::Result<String>>>,
    done: Option<String>,
}

impl BaseDigest {
    fn start(path: &Path, pin: Option<String>, pin_at: Option<(PathBuf, Loc)>) -> Self {
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
    fn hashing(&self) -> bool {
        self.pin.is_none() && self.running.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// The digest to derive the image from.
    fn for_seed(&mut self) -> Result<String> {
        match &self.pin {
            Some(p) => Ok(p.clone()),
            None => self.digest(),
        }
    }

    /// The archive's digest, once computed, checked against the pin.
    fn digest(&mut self) -> Result<String> {
        if let Some(h) = self.running.take() {
            let d = h
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
                .map_err(|source| Error::Read {
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
                Some((file, at)) => Error::Spec(SpecError {
                    file: file.clone(),
                    location: Some((at.line, at.column)),
                    message,
                    hint: Some("pin the archive you mean to use, or remove `base_sha256`".into()),
                }),
                None => Error::Usage(message),
            });
        }
        Ok(d)
    }
}

fn bake_from(
    spec: &ImageSpec,
    opts: &BakeOptions,
    progress: &dyn Reporter,
    formats: &[Format],
    (base, base_kind): (&Path, BaseKind),
    base_digest: &mut Option<BaseDigest>,
) -> Result<BakeResult> {
    let mut staging = Staging::new(&opts.out)?;
    let work = staging.work_dir()?;

    // Packages: build specs, collect rpms.
    // Each with the name messages give it: a built package goes by its
    // spec, never by its scratch file.
    let mut rpms: Vec<(PathBuf, String)> = Vec::new();
    let mut built_inputs = Vec::new();
    let mut rpm_inputs = Vec::new();
    let mut spec_dates: Vec<u64> = Vec::new();
    // Located warnings about the specs themselves (modes) come first.
    let mut spec_warnings = spec.warnings.clone();
    for p in &spec.packages {
        match p {
            PackageRef::Spec { path, .. } => {
                progress.step(&format!("building {}", path.display()));
                let ps = crate::spec::load_package(path)?;
                spec_warnings.extend(ps.warnings.iter().cloned());
                let file = work.path().join(crate::rpm::build::file_name(&ps));
                let mut out = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&file)
                    .map_err(|source| Error::Write {
                        path: file.clone(),
                        source,
                    })?;
                let built = crate::rpm::write_package(
                    &ps,
                    &BuildOptions {
                        compression: opts.compression,
                        source_date_epoch: opts.source_date_epoch,
                        sign_key: None,
                    },
                    opts.jobs,
                    crate::rpm::Target {
                        file: &mut out,
                        path: &file,
                        work_dir: work.path(),
                    },
                )?;
                spec_dates.push(built.source_date.seconds);
                let spec_sha = sha256_path(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                built_inputs.push(manifest::BuiltInput {
                    path: spec_relative(spec, path),
                    sha256: spec_sha,
                    rpm: built.file_name.clone(),
                    rpm_sha256: built.sha256.clone(),
                });
                rpms.push((file, path.display().to_string()));
            }
            PackageRef::Rpm { path, .. } => {
                let d = sha256_path(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                rpm_inputs.push(manifest::Input {
                    path: spec_relative(spec, path),
                    sha256: d,
                    kind: "file".into(),
                });
                rpms.push((path.clone(), path.display().to_string()));
            }
        }
    }
    let date = match opts.source_date_epoch {
        Some(s) => s,
        None => {
            let mut newest = spec_dates.iter().copied().max().unwrap_or(0);
            for (r, _) in &rpms {
                if let Ok((h, _)) = crate::rpm::read::PackageHeaders::open(r)
                    && let Some(t) = h.header.int(crate::rpm::header::tag::BUILDTIME)
                {
                    newest = newest.max(t);
                }
            }
            newest
        }
    };
    let time = u32::try_from(date).unwrap_or(u32::MAX);

    progress.step("importing the base");
    let mut tree = rootfs::import(base, Some(work.path())).map_err(|e| Error::Base(Box::new(e)))?;
    // A folder's digest is its tree's, as a tarball; an archive's comes
    // from `base_digest`, when the disk needs it.
    let dir_sha = match base_digest {
        Some(_) => None,
        None => {
            let mut h = Hashing {
                inner: std::io::sink(),
                hash: Sha256::new(),
                len: 0,
            };
            tree.write_tar(&mut h).map_err(|source| Error::Read {
                path: base.to_path_buf(),
                source,
            })?;
            Some(hex::encode(h.hash.finalize()))
        }
    };
    let base_sha = |base_digest: &mut Option<BaseDigest>| match (base_digest.as_mut(), &dir_sha) {
        (Some(d), _) => d.for_seed(),
        (None, d) => Ok(d.clone().unwrap_or_default()),
    };

    progress.step("installing packages");
    let report = install::install_named(
        &mut tree,
        &rpms,
        &InstallOptions {
            install_time: time,
            deps_check: opts.deps_check,
            work_dir: work.path().to_path_buf(),
        },
    )
    .map_err(|e| match e {
        // The work folder is scratch inside --out: name --out.
        install::InstallError::Work { source, .. } => Error::Write {
            path: opts.out.clone(),
            source,
        },
        e => e.into(),
    })?;
    let mut warnings = spec_warnings;
    warnings.extend(report.warnings.iter().cloned());

    progress.step("creating accounts and enabling units");
    warnings.extend(install::activate::accounts(&mut tree, time)?);
    warnings.extend(install::resolve_owners(&mut tree, &report.pending_owners));
    // Overlays after accounts (they may name the package's users) and
    // before units are enabled (they may add unit files).
    progress.step("placing files");
    for o in &spec.files {
        place_overlay(&mut tree, spec, o, time)?;
    }
    let systemd = install::activate::systemd(&mut tree, &report, &spec.systemd, time).map_err(
        |e| match &e {
            install::InstallError::Override { verb, unit, .. } => {
                match spec.systemd.find(verb, unit) {
                    Some(at) => Error::Spec(spec.error_at(at, e.to_string())),
                    None => Error::Install(e),
                }
            }
            _ => Error::Install(e),
        },
    )?;
    warnings.extend(systemd.warnings.iter().cloned());

    // Outputs. Every name carries the main output's digest: the raw
    // image's when a disk format is asked for, else the tarball's.
    let mut outputs: Vec<manifest::Output> = Vec::new();
    let mut staged: Vec<(String, String)> = Vec::new(); // (temporary name, extension)
    if formats.contains(&Format::Tar) {
        progress.step("writing the tarball");
        let tmp_name = format!("{}.tar", spec.name);
        let f = staging.create(&tmp_name)?;
        let mut w = Hashing {
            inner: BufWriter::new(f),
            hash: Sha256::new(),
            len: 0,
        };
        tree.write_tar(&mut w)
            .and_then(|_| w.flush())
            .map_err(|source| Error::Write {
                path: opts.out.join(&tmp_name),
                source,
            })?;
        let digest = hex::encode(w.hash.clone().finalize());
        drop(w);
        outputs.push(manifest::Output {
            file: tmp_name.clone(),
            format: "tar".into(),
            size: 0,
            sha256: digest,
        });
        staged.push((tmp_name, "tar".into()));
    }
    let disk_formats: Vec<Format> = formats
        .iter()
        .copied()
        .filter(|f| matches!(f, Format::Raw | Format::Vmdk | Format::Vhd))
        .collect();
    let mut disk_info = None;
    let mut ebs_info = None;
    let mut register = None;
    if !disk_formats.is_empty() {
        if base_digest.as_ref().is_some_and(BaseDigest::hashing) {
            progress.step("waiting for the base's digest");
        }
        progress.step("writing the disk");
        let seed = {
            let mut h = Sha256::new();
            h.update(sha256_path(&spec.file).unwrap_or_default().as_bytes());
            h.update(base_sha(base_digest)?.as_bytes());
            for (r, _) in &rpms {
                h.update(sha256_path(r).unwrap_or_default().as_bytes());
            }
            h.update(date.to_le_bytes());
            h.finalize().to_vec()
        };
        let prepared = disk::prepare(&mut tree, &seed, time)?;
        if !prepared.bootable {
            warnings.push(format!(
                "the image will not boot: {}",
                prepared.not_bootable_because.join("; ")
            ));
        }
        let size = match spec.size {
            crate::spec::image::Size::Auto => crate::disk::gpt::Size::Auto,
            crate::spec::image::Size::Bytes(b) => crate::disk::gpt::Size::Bytes(b),
        };
        let raw_tmp = format!("{}.raw", spec.name);
        let clone_err = |path: &str| {
            let path = opts.out.join(path);
            move |source| Error::Write { path, source }
        };
        let raw_file = staging
            .create(&raw_tmp)?
            .try_clone()
            .map_err(clone_err(&raw_tmp))?;
        let bad_size = |m: String| match spec.at_size {
            Some(at) => Error::Spec(spec.error_at(at, m)),
            None => Error::Usage(m),
        };
        let written = disk::lay_out_raw(&tree, &prepared, size, &seed, time, &raw_file, &bad_size)?;
        let raw_path = staging
            .path_of(&raw_tmp)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let raw = std::fs::File::open(&raw_path).map_err(|source| Error::Read {
            path: raw_path.clone(),
            source,
        })?;
        let disk_err = Error::Disk;
        let vmdk_tmp = format!("{}.vmdk", spec.name);
        let vmdk_out = if disk_formats.contains(&Format::Vmdk) {
            Some(
                staging
                    .create(&vmdk_tmp)?
                    .try_clone()
                    .map_err(clone_err(&vmdk_tmp))?,
            )
        } else {
            None
        };
        if vmdk_out.is_some() {
            progress.step("writing the root filesystem and the vmdk");
        } else {
            progress.step("writing the root filesystem");
        }
        // The root filesystem is written on a thread of its own while this
        // one reads the image behind it, once: its digest, the EBS checksum
        // and the VMDK, side by side. The ext4 writer allocates front to
        // back and says how far the image is final as it goes.
        let keep_raw = disk_formats.contains(&Format::Raw);
        let final_mark = crate::disk::raw::Watermark::new();
        let digests = std::thread::scope(|s| {
            let root = s.spawn(|| {
                disk::write_root(&tree, &written, &raw_file, &final_mark)?;
                // The raw image goes to disk while the rest of it is
                // digested (the commit's own sync then finds nothing left
                // to write), when it is kept.
                if keep_raw {
                    raw_file.sync_data().map_err(|source| Error::Write {
                        path: raw_path.clone(),
                        source,
                    })?;
                }
                Ok::<(), Error>(())
            });
            // The VMDK's content ID comes from the image's inputs (the
            // seed), known before the image is read, so the VMDK is hashed
            // as it is written.
            let seed32: [u8; 32] = seed.as_slice().try_into().unwrap_or([0; 32]);
            let cid = crate::disk::vmdk::content_id(&seed32);
            let d = crate::disk::digest_raw_following(
                &raw,
                vmdk_out.as_ref().map(|f| (f, cid)),
                opts.jobs,
                &final_mark,
            );
            // The writer's error first: the reader only stops because of it.
            root.join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            d.map_err(disk_err)
        })?;
        let raw_sha = digests.sha256;
        let raw_hex = hex::encode(raw_sha);
        let mut disk_outputs = Vec::new();
        if disk_formats.contains(&Format::Raw) {
            disk_outputs.push(manifest::Output {
                file: raw_tmp.clone(),
                format: "raw".into(),
                size: written.layout.disk_size,
                sha256: raw_hex.clone(),
            });
            staged.push((raw_tmp.clone(), "raw".into()));
        }
        for (fmt, ext) in [(Format::Vmdk, "vmdk"), (Format::Vhd, "vhd")] {
            if !disk_formats.contains(&fmt) {
                continue;
            }
            let tmp = format!("{}.{ext}", spec.name);
            let d = match (fmt, &digests.vmdk) {
                (Format::Vmdk, Some(v)) => hex::encode(v.sha256),
                _ => {
                    progress.step("writing the vhd");
                    let out = staging.create(&tmp)?;
                    crate::disk::vhd::write(&raw, out, u64::from(time), &raw_sha)
                        .map_err(disk_err)?;
                    let p = staging
                        .path_of(&tmp)
                        .map(Path::to_path_buf)
                        .unwrap_or_default();
                    sha256_path(&p).map_err(|source| Error::Read {
                        path: p.clone(),
                        source,
                    })?
                }
            };
            disk_outputs.push(manifest::Output {
                file: tmp.clone(),
                format: ext.into(),
                size: 0,
                sha256: d,
            });
            staged.push((tmp, ext.into()));
        }
        let ebs = digests.ebs;
        drop(raw);
        if !disk_formats.contains(&Format::Raw) {
            staging.discard(&raw_tmp);
        }
        // The raw image names everything; it goes first.
        disk_outputs.append(&mut outputs);
        outputs = disk_outputs;
        let parts = written.layout.partitions();
        disk_info = Some(manifest::Disk {
            size: written.layout.disk_size,
            disk_guid: written.layout.guids.disk.to_string(),
            partitions: parts
                .iter()
                .map(|p| manifest::Partition {
                    number: p.number,
                    name: p.name.clone(),
                    type_guid: p.type_guid.to_string(),
                    guid: p.guid.to_string(),
                    first_lba: p.first_lba,
                    last_lba: p.last_lba,
                    offset: p.offset(),
                    size: p.size(),
                })
                .collect(),
            root_uuid: disk::uuid_text(&prepared.root_uuid),
            root_uuid_from: prepared.root_uuid_from.to_string(),
            esp_volume_id: format!(
                "{:04X}-{:04X}",
                prepared.esp_volume_id >> 16,
                prepared.esp_volume_id & 0xffff
            ),
            bootable: prepared.bootable,
            not_bootable_because: prepared.not_bootable_because.clone(),
        });
        ebs_info = Some(manifest::Ebs {
            block_size: ebs.block_size,
            changed_blocks: ebs.changed_blocks,
            linear_checksum_sha256: ebs.linear_sha256_base64.clone(),
        });
        let arm = report.image_packages.iter().any(|p| p.arch == "aarch64");
        register = Some(manifest::RegisterImage {
            architecture: if arm { "arm64" } else { "x86_64" }.into(),
            boot_mode: "uefi".into(),
            ena_support: true,
            virtualization_type: "hvm".into(),
            root_device_name: "/dev/xvda".into(),
            volume_size_gib: written.layout.volume_gib(),
        });
    }
    // Final names.
    let main_digest = outputs
        .first()
        .map(|o| o.sha256.clone())
        .unwrap_or_default();
    for o in &mut outputs {
        if let Some((tmp, ext)) = staged.iter().find(|(t, _)| *t == o.file) {
            let name = format!(
                "{}-{}.{ext}",
                spec.name,
                manifest::short_digest(&main_digest)
            );
            staging.rename(tmp, &name)?;
            o.file = name;
        }
    }
    // The SBOM describes the main output.
    if let Some(main) = outputs.first().cloned() {
        let doc = manifest::sbom::document(&spec.name, &main.sha256, date, &report.image_packages);
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        let name = format!(
            "{}-{}.spdx.json",
            spec.name,
            manifest::short_digest(&main.sha256)
        );
        staging.write(&name, text.as_bytes())?;
        outputs.push(manifest::Output {
            file: name,
            format: "spdx".into(),
            size: text.len() as u64,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        });
    }
    // Sizes from the staged files.
    for o in &mut outputs {
        if let Some(p) = staging.path_of(&o.file) {
            o.size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        }
    }
    let image_spec_sha = sha256_path(&spec.file).map_err(|source| Error::Read {
        path: spec.file.clone(),
        source,
    })?;
    let m = Manifest {
        manifest_version: manifest::MANIFEST_VERSION,
        ingot_version: env!("CARGO_PKG_VERSION").to_string(),
        name: spec.name.clone(),
        source_date_epoch: date,
        inputs: manifest::Inputs {
            image_spec: manifest::Input {
                path: spec
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: image_spec_sha,
                kind: "file".into(),
            },
            base: manifest::Input {
                path: match &opts.base {
                    Some(b) => b
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    None => spec_relative(spec, &spec.base),
                },
                sha256: base_sha(base_digest)?,
                kind: match base_kind {
                    BaseKind::Dir => "directory".into(),
                    BaseKind::Tar => "archive".into(),
                },
            },
            package_specs: built_inputs,
            rpms: rpm_inputs,
        },
        outputs: outputs.clone(),
        packages: report
            .installed
            .iter()
            .map(|p| manifest::Package {
                nevra: p.nevra.clone(),
                name: p.name.clone(),
                epoch: p.epoch,
                version: p.version.clone(),
                release: p.release.clone(),
                arch: p.arch.clone(),
                license: p.license.clone(),
                sigmd5: p.sigmd5.clone(),
                replaced: p.replaced.clone(),
            })
            .collect(),
        image_packages: report
            .image_packages
            .iter()
            .map(|p| manifest::ImagePackage {
                nevra: p.nevra.clone(),
                sigmd5: p.sigmd5.clone(),
                license: p.license.clone(),
            })
            .collect(),
        removed: report.removed.clone(),
        scriptlets_not_run: systemd.not_run.clone(),
        systemd: systemd.summary.clone(),
        disk: disk_info,
        ebs: ebs_info,
        register_image: register,
        warnings,
    };
    let main_digest = outputs
        .first()
        .map(|o| o.sha256.clone())
        .unwrap_or_default();
    let manifest_name = format!(
        "{}-{}.manifest.json",
        spec.name,
        manifest::short_digest(&main_digest)
    );
    staging.write(&manifest_name, m.to_json().as_bytes())?;
    drop(tree);
    drop(work);
    // The outputs were derived from the pin: the base must be what it pins.
    if let Some(d) = base_digest.as_mut() {
        d.digest()?;
    }
    let paths = staging.commit()?;
    Ok(BakeResult {
        outputs: paths,
        manifest: m,
    })
}

fn place_overlay(
    tree: &mut Tree,
    spec: &ImageSpec,
    o: &crate::spec::image::Overlay,
    time: u32,
) -> Result<()> {
    let users = read_ids(tree, "/etc/passwd");
    let groups = read_ids(tree, "/etc/group");
    let at = |loc: Loc, m: String| Error::Spec(spec.error_at(loc, m));
    let uid = lookup(&users, &o.user)
        .ok_or_else(|| at(o.at_user, not_in_image("user", &o.user, &o.dest)))?;
    let gid = lookup(&groups, &o.group)
        .ok_or_else(|| at(o.at_group, not_in_image("group", &o.group, &o.dest)))?;
    // Only files are placed: a folder (or a link to one) stays as it is.
    if tree
        .resolve(&o.dest, true)
        .is_ok_and(|id| tree.node(id).is_dir())
    {
        return Err(at(
            o.at,
            format!(
                "`{}` is a folder in the image; [[image.files]] places files",
                o.dest
            ),
        ));
    }
    let data = match &o.content {
        OverlayContent::Text(t) => tree.spill(&mut t.as_bytes()),
        OverlayContent::File(p) => {
            let mut f = std::fs::File::open(p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            tree.spill(&mut f)
        }
    }
    .map_err(|source| Error::Write {
        path: PathBuf::from(&o.dest),
        source,
    })?;
    let parent = Path::new(&o.dest)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    tree.mkdir_p(&parent, &Meta::new(0o755, 0, 0, i64::from(time)))
        .map_err(|e| at(o.at, format!("cannot place `{}`: {e}", o.dest)))?;
    tree.insert_path(
        &o.dest,
        Node::file(
            Meta::new(u32::from(o.mode), uid, gid, i64::from(time)),
            data,
        ),
    )
    .map_err(|e| at(o.at, format!("cannot place `{}`: {e}", o.dest)))?;
    Ok(())
}

fn not_in_image(what: &str, name: &str, dest: &str) -> String {
    format!("{what} `{name}` for `{dest}` does not exist in the image")
}

fn read_ids(tree: &Tree, path: &str) -> Vec<(String, u32)> {
    let Ok(id) = tree.resolve(path, true) else {
        return Vec::new();
    };
    let mut s = String::new();
    if tree
        .open(id)
        .and_then(|mut r| r.read_to_string(&mut s))
        .is_err()
    {
        return Vec::new();
    }
    s.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((n.to_string(), id))
        })
        .collect()
}

fn lookup(ids: &[(String, u32)], name: &str) -> Option<u32> {
    if name == "root" {
        return Some(0);
    }
    ids.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
}
