//! Stage 7 of `bake`: name the outputs and write the manifest and the
//! SBOM. Every name carries the main output's digest (the raw image's when
//! a disk was made, else the tarball's); the SBOM describes the main
//! output; the manifest names every input and output by its digest.
//!
//! In: the staged outputs, what every stage learned. Out: the
//! [`Manifest`], staged with the SBOM beside the outputs (the commit
//! renames them all into place at once).

use sha2::{Digest, Sha256};

use super::outputs::Outputs;
use super::packages::Packages;
use super::{BakeError, Result};
use super::{BakeOptions, sha256_path, spec_relative};
use crate::install::InstallReport;
use crate::install::activate::Activation;
use crate::manifest::{self, Manifest};
use crate::output::Staging;
use crate::spec::image::{BaseKind, ImageSpec};

/// What the stages learned, for the manifest.
pub(super) struct Facts<'a> {
    pub spec: &'a ImageSpec,
    pub opts: &'a BakeOptions,
    pub base_kind: BaseKind,
    pub base_sha256: String,
    pub date: u64,
    pub packages: Packages,
    pub report: &'a InstallReport,
    pub systemd: &'a Activation,
    pub warnings: Vec<String>,
    /// The lock file and the lock the repository packages came by.
    pub lock: Option<&'a super::resolve::LockUsed>,
}

/// Name the staged outputs, stage the SBOM and the manifest.
pub(super) fn write(
    staging: &mut Staging,
    mut outputs: Outputs,
    facts: Facts<'_>,
) -> Result<Manifest> {
    let spec = facts.spec;
    let main_digest = outputs
        .list
        .first()
        .map(|o| o.sha256.clone())
        .unwrap_or_default();
    let short = manifest::short_digest(&main_digest);
    for o in &mut outputs.list {
        let ext = crate::disk::OutputFormat::from_name(&o.format)
            .map(|f| f.extension())
            .unwrap_or(o.format.as_str())
            .to_string();
        let name = format!("{}-{short}.{ext}", spec.name);
        staging.rename(&o.file, &name)?;
        o.file = name;
    }
    if let Some(main) = outputs.list.first().cloned() {
        outputs
            .list
            .push(sbom(staging, spec, &main, facts.date, facts.report)?);
    }
    // Sizes from the staged files.
    for o in &mut outputs.list {
        if let Some(p) = staging.path_of(&o.file) {
            o.size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        }
    }
    let m = manifest(&outputs, facts)?;
    let name = format!("{}-{short}.manifest.json", spec.name);
    staging.write(&name, m.to_json().as_bytes())?;
    Ok(m)
}

/// The SPDX document of the main output.
fn sbom(
    staging: &mut Staging,
    spec: &ImageSpec,
    main: &manifest::Output,
    date: u64,
    report: &InstallReport,
) -> Result<manifest::Output> {
    let doc = manifest::sbom::document(&spec.name, &main.sha256, date, &report.image_packages);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    let name = format!(
        "{}-{}.spdx.json",
        spec.name,
        manifest::short_digest(&main.sha256)
    );
    staging.write(&name, text.as_bytes())?;
    Ok(manifest::Output {
        file: name,
        format: "spdx".into(),
        size: text.len() as u64,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    })
}

fn manifest(outputs: &Outputs, f: Facts<'_>) -> Result<Manifest> {
    let spec = f.spec;
    let image_spec_sha = sha256_path(&spec.file).map_err(|source| BakeError::Read {
        path: spec.file.clone(),
        source,
    })?;
    let report = f.report;
    Ok(Manifest {
        manifest_version: manifest::MANIFEST_VERSION,
        ingot_version: env!("CARGO_PKG_VERSION").to_string(),
        name: spec.name.clone(),
        source_date_epoch: f.date,
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
                path: match &f.opts.base {
                    Some(b) => b
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    None => spec_relative(spec, &spec.base),
                },
                sha256: f.base_sha256,
                kind: match f.base_kind {
                    BaseKind::Dir => "directory".into(),
                    BaseKind::Tar => {
                        let path = f.opts.base.as_deref().unwrap_or(&spec.base);
                        match super::base::disk_image(path) {
                            Some(_) => "disk image".into(),
                            None => "archive".into(),
                        }
                    }
                },
            },
            package_specs: f.packages.built_inputs,
            rpms: f.packages.rpm_inputs,
            lock: f.lock.map(|l| manifest::Input {
                path: l
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: l.sha256.clone(),
                kind: "file".into(),
            }),
            repository_packages: f
                .lock
                .map(|l| {
                    l.lock
                        .packages
                        .iter()
                        .map(|p| manifest::RepoInput {
                            nevra: p.nevra(),
                            repo: p.repo.clone(),
                            location: p.location.clone(),
                            sha256: p.sha256.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        outputs: outputs.list.clone(),
        packages: report
            .installed
            .iter()
            .map(|p| manifest::Installed {
                package: p.package.clone(),
                replaced: p.replaced.clone(),
            })
            .collect(),
        image_packages: report.image_packages.clone(),
        removed: report.removed.clone(),
        scriptlets_not_run: f.systemd.not_run.clone(),
        systemd: manifest::Systemd {
            enabled: f.systemd.enabled.clone(),
            disabled: f.systemd.disabled.clone(),
            masked: f.systemd.masked.clone(),
        },
        disk: outputs.disk.as_ref().map(|d| d.disk.clone()),
        ebs: outputs.disk.as_ref().map(|d| d.ebs.clone()),
        register_image: outputs.disk.as_ref().map(|d| d.register.clone()),
        warnings: f.warnings,
    })
}
