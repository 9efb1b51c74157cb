//! Stage 2 of `bake`: build the package specs and gather the packages. A
//! package spec is built into the work folder (as `ingot build` would
//! build it); a `.rpm` is taken as it is. Every package must be for the
//! image's architecture (or `noarch`).
//!
//! In: the image spec, the options, the work folder. Out: [`Packages`]:
//! each package's file and the name messages give it (a built package
//! goes by its spec, never by its scratch file), the manifest's inputs,
//! the warnings about the package specs, and the bake's source date.

use std::path::{Path, PathBuf};

use super::{BakeOptions, Reporter, sha256_path, spec_relative};
use crate::error::{Error, Result};
use crate::manifest;
use crate::rpm::BuildOptions;
use crate::rpm::header::tag;
use crate::rpm::read::PackageHeaders;
use crate::spec::image::{ImageSpec, PackageRef};

/// The packages an image installs.
pub(super) struct Packages {
    /// (file, how messages name it), in the spec's order.
    pub rpms: Vec<(PathBuf, String)>,
    pub built_inputs: Vec<manifest::BuiltInput>,
    pub rpm_inputs: Vec<manifest::Input>,
    /// Located warnings about the package specs (modes).
    pub warnings: Vec<String>,
    /// `SOURCE_DATE_EPOCH` when set, else the newest source date among the
    /// packages (their build times), else 0.
    pub source_date: u64,
}

pub(super) fn build(
    spec: &ImageSpec,
    opts: &BakeOptions,
    progress: &dyn Reporter,
    work: &Path,
) -> Result<Packages> {
    let mut p = Packages {
        rpms: Vec::new(),
        built_inputs: Vec::new(),
        rpm_inputs: Vec::new(),
        warnings: Vec::new(),
        source_date: 0,
    };
    let mut spec_dates: Vec<u64> = Vec::new();
    for r in &spec.packages {
        match r {
            PackageRef::Spec { path, .. } => {
                progress.step(&format!("building {}", path.display()));
                let (file, input, date) =
                    build_one(spec, opts, path, work, (&mut p.warnings, progress))?;
                spec_dates.push(date);
                p.built_inputs.push(input);
                p.rpms.push((file, path.display().to_string()));
            }
            PackageRef::Rpm { path, .. } => {
                let d = sha256_path(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                p.rpm_inputs.push(manifest::Input {
                    path: spec_relative(spec, path),
                    sha256: d,
                    kind: "file".into(),
                });
                p.rpms.push((path.clone(), path.display().to_string()));
            }
        }
    }
    let mut newest = spec_dates.iter().copied().max().unwrap_or(0);
    for (r, (file, shown)) in spec.packages.iter().zip(&p.rpms) {
        let Ok((h, _)) = PackageHeaders::open(file) else {
            continue; // the install says what is wrong with it
        };
        let arch = h.header.string(tag::ARCH).unwrap_or_default();
        if !spec.arch.accepts(&arch) {
            let at = match r {
                PackageRef::Spec { at, .. } | PackageRef::Rpm { at, .. } => *at,
            };
            return Err(Error::Spec(spec.error_at(
                at,
                format!(
                    "package `{shown}` is for {}, but the image is for {} (`arch`, {} when not given)",
                    crate::spec::diag::escape(&arch),
                    spec.arch,
                    crate::arch::Arch::X86_64
                ),
            )));
        }
        if let Some(t) = h.header.int(tag::BUILDTIME) {
            newest = newest.max(t);
        }
    }
    p.source_date = opts.source_date_epoch.unwrap_or(newest);
    Ok(p)
}

/// Build the package spec at `path` into `work`; the package's file, its
/// manifest input and its source date.
fn build_one(
    spec: &ImageSpec,
    opts: &BakeOptions,
    path: &Path,
    work: &Path,
    (warnings, progress): (&mut Vec<String>, &dyn Reporter),
) -> Result<(PathBuf, manifest::BuiltInput, u64)> {
    let ps = crate::spec::load_package(path)?;
    warnings.extend(ps.warnings.iter().cloned());
    let file = work.join(crate::rpm::build::file_name(&ps));
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
            work_dir: work,
        },
        progress,
    )?;
    let spec_sha = sha256_path(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let input = manifest::BuiltInput {
        path: spec_relative(spec, path),
        sha256: spec_sha,
        rpm: built.file_name.clone(),
        rpm_sha256: built.sha256.clone(),
    };
    Ok((file, input, built.source_date.seconds))
}
