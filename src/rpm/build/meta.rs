//! Step 1 of a build: the source date, and the package's own tags.
//!
//! In: the [`PackageSpec`] and `SOURCE_DATE_EPOCH`. Out: a [`Stamp`] (the
//! one time every timestamp of the package takes, with the warning when it
//! falls back to 1970), a [`Meta`] (packager, group, changelog, with
//! ingot's defaults filled in) and its header entries: name, version,
//! release, epoch, summary, description, license, group, arch, build time
//! and host, changelog, vendor, packager, URL.
//!
//! [`Meta::check`] applies rpm's rules to every text the package carries
//! (names, versions, no control characters), before any source is read.
//! This step never reads the clock (time enters only through
//! [`source_date`]), nor the host name or the user's identity.

use crate::error::{Error, Result};
use crate::rpm::header::{NewEntry, tag};
use crate::source_date::{self, SourceDate};
use crate::spec::package::PackageSpec;

use super::files::Entry;
use super::{BUILD_HOST, DEFAULT_GROUP, DEFAULT_PACKAGER, RPMVERSION, rpm_err};

/// The package's one time.
pub(super) struct Stamp {
    pub(super) date: SourceDate,
    /// The source date as rpm's 32-bit times: build time, file mtimes,
    /// signature time.
    pub(super) secs: u32,
    /// Set when there is no source date at all.
    pub(super) warning: Option<String>,
}

/// The source date: `SOURCE_DATE_EPOCH`, else the newest changelog entry,
/// else 1970 (with a warning). An error when it does not fit 32 bits.
pub(super) fn stamp(spec: &PackageSpec, source_date_epoch: Option<u64>) -> Result<Stamp> {
    let newest_change = spec.changelog.first().map(|c| c.time);
    let date = source_date::resolve(source_date_epoch, newest_change);
    let warning = (date.origin == source_date::Origin::Epoch).then(|| {
        "no SOURCE_DATE_EPOCH and no [[changelog]] entry: timestamps are 1970-01-01".to_string()
    });
    let secs = u32::try_from(date.seconds).map_err(|_| {
        Error::Usage(format!(
            "source date {} does not fit rpm's 32-bit times",
            date.seconds
        ))
    })?;
    Ok(Stamp {
        date,
        secs,
        warning,
    })
}

/// One changelog entry as the header holds it.
pub(super) struct Change {
    pub(super) name: String,
    pub(super) text: String,
    pub(super) time: u32,
}

/// The package-level values the spec may leave to ingot.
pub(super) struct Meta {
    pub(super) packager: String,
    pub(super) group: String,
    /// Newest first; never empty (rpmlint wants a changelog).
    pub(super) changelog: Vec<Change>,
}

impl Meta {
    /// The spec's values, or ingot's defaults; a changelog entry of
    /// ingot's own (at `secs`) when the spec has none.
    pub(super) fn new(spec: &PackageSpec, secs: u32) -> Self {
        let packager = spec
            .packager
            .clone()
            .unwrap_or_else(|| DEFAULT_PACKAGER.into());
        let group = spec.group.clone().unwrap_or_else(|| DEFAULT_GROUP.into());
        let mut changelog: Vec<Change> = spec
            .changelog
            .iter()
            .map(|c| Change {
                name: c.author.clone(),
                text: c.text.clone(),
                time: u32::try_from(c.time).unwrap_or(u32::MAX),
            })
            .collect();
        if changelog.is_empty() {
            changelog.push(Change {
                name: format!("{packager} - {}", spec.evr()),
                text: format!("- Built by ingot from {}", spec_file_name(spec)),
                time: secs,
            });
        }
        Meta {
            packager,
            group,
            changelog,
        }
    }

    /// What rpm refuses to carry (the `rpm` crate's checks), in the
    /// package's values and in its entries' paths, owners and link
    /// targets.
    pub(super) fn check(&self, spec: &PackageSpec, entries: &[Entry]) -> Result<()> {
        let err = rpm_err(spec);
        check_name(&spec.name).map_err(&err)?;
        check_version("version", &spec.version).map_err(&err)?;
        check_version("release", &spec.release).map_err(&err)?;
        let mut texts: Vec<(&'static str, &str)> = vec![
            ("license", &spec.license),
            ("arch", &spec.arch),
            ("summary", &spec.summary),
            ("description", &spec.description),
            ("build_host", BUILD_HOST),
            ("packager", &self.packager),
            ("group", &self.group),
        ];
        for (field, v) in [("url", &spec.url), ("vendor", &spec.vendor)] {
            if let Some(v) = v {
                texts.push((field, v));
            }
        }
        for f in entries {
            texts.extend([
                ("file path", f.cpio.as_str()),
                ("file user", f.user),
                ("file group", f.group),
                ("file symlink target", f.link),
            ]);
        }
        for c in &self.changelog {
            texts.push(("changelog name", &c.name));
            texts.push(("changelog entry", &c.text));
        }
        for (field, v) in texts {
            check_text(field, v).map_err(&err)?;
        }
        Ok(())
    }

    /// The header entries of the package's own values; `secs` is the
    /// build time.
    pub(super) fn tags(&self, spec: &PackageSpec, secs: u32) -> Vec<NewEntry> {
        let mut h = vec![
            NewEntry::string(tag::SOURCERPM, "(none)"),
            NewEntry::strings(tag::HEADERI18NTABLE, vec!["C".into()]),
            NewEntry::string(tag::NAME, &spec.name),
            NewEntry::string(tag::RPMVERSION, RPMVERSION),
            NewEntry::string(tag::VERSION, &spec.version),
            NewEntry::string(tag::RELEASE, &spec.release),
            NewEntry::i18n(tag::DESCRIPTION, &spec.description),
            NewEntry::i18n(tag::SUMMARY, &spec.summary),
            NewEntry::string(tag::LICENSE, &spec.license),
            NewEntry::string(tag::OS, "linux"),
            NewEntry::i18n(tag::GROUP, &self.group),
            NewEntry::string(tag::ARCH, &spec.arch),
            NewEntry::string(tag::ENCODING, "utf-8"),
            NewEntry::int32(tag::BUILDTIME, vec![secs]),
            NewEntry::string(tag::BUILDHOST, BUILD_HOST),
        ];
        if let Some(e) = spec.epoch {
            h.push(NewEntry::int32(tag::EPOCH, vec![e]));
        }
        let log = &self.changelog;
        h.extend([
            NewEntry::strings(
                tag::CHANGELOGNAME,
                log.iter().map(|c| c.name.clone()).collect(),
            ),
            NewEntry::strings(
                tag::CHANGELOGTEXT,
                log.iter().map(|c| c.text.clone()).collect(),
            ),
            NewEntry::int32(tag::CHANGELOGTIME, log.iter().map(|c| c.time).collect()),
        ]);
        if let Some(v) = &spec.vendor {
            h.push(NewEntry::string(tag::VENDOR, v));
        }
        h.push(NewEntry::string(tag::PACKAGER, &self.packager));
        if let Some(u) = &spec.url {
            h.push(NewEntry::string(tag::URL, u));
        }
        h
    }
}

fn spec_file_name(spec: &PackageSpec) -> String {
    spec.file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "its spec".into())
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
pub(super) fn check_text(field: &'static str, v: &str) -> std::result::Result<(), ::rpm::Error> {
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
