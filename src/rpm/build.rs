//! Turn a [`Plan`] into a signed or unsigned v4 `.rpm`, in memory.
//!
//! The `rpm` crate writes the lead, headers, cpio payload and signatures;
//! this module decides every value it is given so the result depends only
//! on the spec and the bytes of its sources: modes come from the plan, all
//! timestamps are the source date, the build host is fixed, and nothing
//! reads the clock or the user's identity.

use std::path::PathBuf;

use ::rpm::{Dependency as RpmDep, FileOptions, PackageBuilder, Scriptlet, Timestamp};
use sha2::{Digest, Sha256};

use super::autodeps;
use super::compression::Compression;
use super::dep::{Dependency, Op};
use super::plan::{self, Content, Kind, Plan};
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

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`, already parsed.
    pub source_date_epoch: Option<u64>,
    /// An ASCII-armored OpenPGP secret key (RSA or Ed25519).
    pub sign_key: Option<PathBuf>,
}

/// A finished package, not yet written anywhere.
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

/// Build the package a spec describes.
pub fn build_package(spec: &PackageSpec, opts: &BuildOptions) -> Result<BuiltPackage> {
    let plan = plan::plan(spec)?;
    build_from_plan(spec, &plan, opts)
}

pub fn build_from_plan(
    spec: &PackageSpec,
    plan: &Plan,
    opts: &BuildOptions,
) -> Result<BuiltPackage> {
    let mut warnings = Vec::new();
    let newest_change = spec.changelog.first().map(|c| c.time);
    let date = source_date::resolve(opts.source_date_epoch, newest_change);
    if date.origin == source_date::Origin::Epoch {
        warnings.push(
            "no SOURCE_DATE_EPOCH and no [[changelog]] entry: timestamps are 1970-01-01"
                .to_string(),
        );
    }
    let secs = u32::try_from(date.seconds).map_err(|_| {
        Error::Usage(format!(
            "source date {} does not fit rpm's 32-bit times",
            date.seconds
        ))
    })?;
    let ts = Timestamp::from(secs);
    let err = rpm_err(spec);

    let config = ::rpm::BuildConfig::v4()
        .compression(::rpm::CompressionWithLevel::from(opts.compression))
        .source_date(ts);
    let mut b = PackageBuilder::new(
        &spec.name,
        &spec.version,
        &spec.license,
        &spec.arch,
        &spec.summary,
    );
    b.using_config(config)
        .release(spec.release.clone())
        .description(spec.description.clone())
        .packager(
            spec.packager
                .clone()
                .unwrap_or_else(|| DEFAULT_PACKAGER.into()),
        )
        .group(spec.group.clone().unwrap_or_else(|| DEFAULT_GROUP.into()))
        .build_host(BUILD_HOST);
    if let Some(e) = spec.epoch {
        b.epoch(e);
    }
    if let Some(u) = &spec.url {
        b.url(u.clone());
    }
    if let Some(v) = &spec.vendor {
        b.vendor(v.clone());
    }
    if spec.changelog.is_empty() {
        let who = spec
            .packager
            .clone()
            .unwrap_or_else(|| DEFAULT_PACKAGER.into());
        b.add_changelog_entry(
            format!("{who} - {}", spec.evr()),
            format!("- Built by ingot from {}", spec_file_name(spec)),
            ts,
        );
    }
    for c in &spec.changelog {
        let t = u32::try_from(c.time).unwrap_or(u32::MAX);
        b.add_changelog_entry(&c.author, &c.text, Timestamp::from(t));
    }

    let mut auto = autodeps::FileDeps::default();
    for e in plan.entries.values() {
        let path = e.path.clone();
        match &e.kind {
            Kind::File(content) => {
                let mut o = FileOptions::new(path)
                    .permissions(e.mode)
                    .user(e.user.clone())
                    .group(e.group.clone())
                    .modified_at(ts);
                o = match e.config {
                    Config::No => o,
                    Config::Yes => o.config(),
                    Config::NoReplace => o.config().noreplace(),
                };
                if e.doc {
                    o = o.doc();
                }
                if let Some(c) = &e.caps {
                    o = o.caps(c.as_str()).map_err(&err)?;
                }
                match content {
                    Content::Source(src) => {
                        if spec.deps.auto {
                            let found = autodeps::scan_file_as(src, u32::from(e.mode), &e.path)
                                .map_err(|source| Error::Read {
                                    path: src.clone(),
                                    source,
                                })?;
                            auto.requires.extend(found.requires);
                            auto.provides.extend(found.provides);
                        }
                        b.with_file(src, o).map_err(&err)?;
                    }
                    Content::Generated(bytes) => {
                        b.with_file_contents(bytes.clone(), o).map_err(&err)?;
                    }
                }
            }
            Kind::Dir => {
                b.with_dir_entry(
                    FileOptions::dir(path)
                        .permissions(e.mode)
                        .user(e.user.clone())
                        .group(e.group.clone())
                        .modified_at(ts),
                )
                .map_err(&err)?;
            }
            Kind::Symlink(target) => {
                b.with_symlink(
                    FileOptions::symlink(path, target.clone())
                        .user(e.user.clone())
                        .group(e.group.clone())
                        .modified_at(ts),
                )
                .map_err(&err)?;
            }
            Kind::Ghost => {
                let mut o = FileOptions::ghost(path)
                    .permissions(e.mode)
                    .user(e.user.clone())
                    .group(e.group.clone())
                    .modified_at(ts);
                o = match e.config {
                    Config::No => o,
                    Config::Yes => o.config(),
                    Config::NoReplace => o.config().noreplace(),
                };
                b.with_ghost(o).map_err(&err)?;
            }
        }
    }

    let d = &spec.deps;
    for r in &d.requires {
        b.requires(to_rpm_dep(r));
    }
    for r in &d.provides {
        b.provides(to_rpm_dep(r));
    }
    for r in &d.conflicts {
        b.conflicts(to_rpm_dep(r));
    }
    for r in &d.obsoletes {
        b.obsoletes(to_rpm_dep(r));
    }
    for r in &d.recommends {
        b.recommends(to_rpm_dep(r));
    }
    for r in &d.suggests {
        b.suggests(to_rpm_dep(r));
    }
    for r in &d.supplements {
        b.supplements(to_rpm_dep(r));
    }
    for r in &d.enhances {
        b.enhances(to_rpm_dep(r));
    }
    // Found in the payload: flagged as rpmbuild's dependency generators flag them.
    for r in &auto.requires {
        b.requires(RpmDep {
            name: r.clone(),
            flags: ::rpm::DependencyFlags::FIND_REQUIRES,
            version: String::new(),
        });
    }
    for p in &auto.provides {
        b.provides(RpmDep {
            name: p.clone(),
            flags: ::rpm::DependencyFlags::FIND_PROVIDES,
            version: String::new(),
        });
    }

    // What systemd's RPM macros add: %systemd_requires, and the scriptlets
    // of %systemd_post / %systemd_preun / %systemd_postun_with_restart.
    let units: Vec<String> = spec.units.iter().map(|u| u.name.clone()).collect();
    let (mut post, mut preun, mut postun) = (None, None, None);
    if !units.is_empty() {
        b.requires(RpmDep::script_post("systemd"));
        b.requires(RpmDep::script_preun("systemd"));
        b.requires(RpmDep::script_postun("systemd"));
        post = Some(systemd::scriptlets::post(&units));
        preun = Some(systemd::scriptlets::preun(&units));
        postun = Some(systemd::scriptlets::postun(&units));
    }
    let mut pre = None;
    if let Some(text) = plan::sysusers_text(spec)? {
        b.requires(RpmDep::script_pre("systemd"));
        pre = Some(systemd::scriptlets::sysusers_pre(
            &format!("{}.conf", spec.name),
            &text,
        ));
    }
    let s = &spec.scripts;
    let scripts = [
        (join_scripts(&[pre, s.pre.clone()]), 0),
        (join_scripts(&[post, s.post.clone()]), 1),
        (join_scripts(&[preun, s.preun.clone()]), 2),
        (join_scripts(&[postun, s.postun.clone()]), 3),
        (join_scripts(std::slice::from_ref(&s.pretrans)), 4),
        (join_scripts(std::slice::from_ref(&s.posttrans)), 5),
    ];
    for (text, which) in scripts {
        let Some(text) = text else { continue };
        let sc = Scriptlet::new(text).prog(vec!["/bin/sh"]);
        match which {
            0 => b.pre_install_script(sc),
            1 => b.post_install_script(sc),
            2 => b.pre_uninstall_script(sc),
            3 => b.post_uninstall_script(sc),
            4 => b.pre_trans_script(sc),
            _ => b.post_trans_script(sc),
        };
    }

    let pkg = match &opts.sign_key {
        None => b.build().map_err(&err)?,
        Some(key) => {
            let armored = std::fs::read(key).map_err(|source| Error::Read {
                path: key.clone(),
                source,
            })?;
            let signer =
                ::rpm::signature::pgp::Signer::from_asc_bytes(&armored).map_err(|source| {
                    Error::SigningKey {
                        path: key.clone(),
                        source,
                    }
                })?;
            b.build_and_sign(signer)
                .map_err(|source| Error::SigningKey {
                    path: key.clone(),
                    source,
                })?
        }
    };
    let mut pkg = pkg;
    complete_signature(&mut pkg).map_err(&err)?;
    let mut bytes = Vec::new();
    pkg.write(&mut bytes).map_err(&err)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let md = &pkg.metadata;
    let list = |deps: std::result::Result<Vec<RpmDep>, ::rpm::Error>| -> Result<Vec<String>> {
        let mut v: Vec<String> = deps.map_err(&err)?.iter().map(dep_text).collect();
        v.sort();
        Ok(v)
    };
    Ok(BuiltPackage {
        file_name: format!("{}.rpm", spec.nvra()),
        sha256,
        nevra: format!("{}-{}.{}", spec.name, spec.evr(), spec.arch),
        source_date: date,
        requires: list(md.get_requires())?,
        provides: list(md.get_provides())?,
        signed: opts.sign_key.is_some(),
        files: plan.entries.len(),
        warnings,
        bytes,
    })
}

/// Add what rpmbuild 4.18 puts in the signature header and the rpm crate
/// leaves out: the size of the uncompressed cpio archive (PAYLOADSIZE, or
/// LONGARCHIVESIZE past 4 GiB; rpm2cpio and install progress rely on it)
/// and the MD5 of header and payload (SIGMD5: the package id rpm's
/// database indexes, `%{PKGID}`). No digest or signature covers the
/// signature header, so adding them after signing changes nothing signed.
fn complete_signature(pkg: &mut ::rpm::Package) -> std::result::Result<(), ::rpm::Error> {
    use ::rpm::{HeaderEntry, IndexData, IndexSignatureTag};
    let compressor = pkg
        .metadata
        .header
        .get_entry_data_as_string(::rpm::IndexTag::RPMTAG_PAYLOADCOMPRESSOR)
        .ok()
        .map(str::to_string);
    let size = super::payload::decoder(
        Some(compressor.as_deref().unwrap_or("identity")),
        &pkg.payload[..],
    )
    .and_then(super::payload::count)?;
    let mut entries: Vec<HeaderEntry> = pkg
        .metadata
        .signature
        .get_all_entries()?
        .into_iter()
        .filter(|(tag, _)| *tag != IndexSignatureTag::HEADER_SIGNATURES as u32)
        .map(|(tag, data)| HeaderEntry::new(tag, data))
        .collect();
    let mut md5 = md5::Context::new();
    md5.consume(pkg.header_bytes()?);
    md5.consume(&pkg.payload);
    entries.push(HeaderEntry::new(
        IndexSignatureTag::RPMSIGTAG_MD5 as u32,
        IndexData::Bin(md5.compute().0.to_vec()),
    ));
    entries.push(match u32::try_from(size) {
        Ok(s) => HeaderEntry::new(
            IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE as u32,
            IndexData::Int32(vec![s]),
        ),
        Err(_) => HeaderEntry::new(
            IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE as u32,
            IndexData::Int64(vec![size]),
        ),
    });
    pkg.metadata.signature =
        ::rpm::Header::from_entries(entries, IndexSignatureTag::HEADER_SIGNATURES);
    Ok(())
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
