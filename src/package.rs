//! One package, as every part of ingot that lists packages knows it: the
//! record `install` makes from a package's header (for what it installed
//! and for every package of the finished image), `inspect` makes from an
//! image's rpm database, the manifest writes and reads back, the SBOM
//! lists, and `diff` compares.
//!
//! In: nothing of the crate; this module sits below all of those. Out:
//! [`Package`], [`NotRun`] (what a package asked to run and ingot did
//! not), and the one way a `name-[epoch:]version-release.arch` string is
//! split ([`split_nevra`]). How each document writes a package (which
//! fields, in which order) is that document's business: see
//! `manifest/mod.rs` and `manifest/sbom.rs`.

use serde::{Deserialize, Serialize};

/// A package: its header's identity and descriptive tags. Text tags a
/// package does not carry are empty. Serialized as `inspect --json` shows
/// a package of an image, with these fields in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// `name-[epoch:]version-release.arch`
    pub nevra: String,
    pub license: String,
    pub vendor: String,
    pub url: String,
    pub source_rpm: String,
    /// The package's SIGMD5 (header and payload MD5), hex: what rpm
    /// identifies an installed package by.
    pub sigmd5: String,
    pub summary: String,
}

impl Package {
    /// The package a document names only by its NEVRA (a manifest keeps
    /// the NEVRA, the SIGMD5 and the license of each image package): name,
    /// epoch, version, release and arch from [`split_nevra`], left empty
    /// when the text does not split.
    pub fn from_nevra(nevra: &str, sigmd5: &str, license: &str) -> Package {
        let mut p = Package {
            nevra: nevra.to_string(),
            sigmd5: sigmd5.to_string(),
            license: license.to_string(),
            ..Package::default()
        };
        if let Some(s) = split_nevra(nevra) {
            let (epoch, version) = match s.version.split_once(':') {
                Some((e, v)) if e.parse::<u32>().is_ok() => (e.parse().ok(), v),
                _ => (None, s.version),
            };
            p.name = s.name.to_string();
            p.epoch = epoch;
            p.version = version.to_string();
            p.release = s.release.to_string();
            p.arch = s.arch.to_string();
        }
        p
    }
}

/// The parts of a NEVRA, as written (the epoch, if any, still in front of
/// the version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nevra<'a> {
    pub name: &'a str,
    /// `[epoch:]version`
    pub version: &'a str,
    pub release: &'a str,
    pub arch: &'a str,
}

impl Nevra<'_> {
    /// `[epoch:]version-release`, as rpm compares versions.
    pub fn evr(&self) -> String {
        format!("{}-{}", self.version, self.release)
    }
}

/// `[epoch:]version-release`, as rpm prints it: an epoch of 0 is left out.
pub fn evr_text(epoch: u64, version: &str, release: &str) -> String {
    let mut s = String::with_capacity(version.len() + release.len() + 8);
    push_evr(&mut s, epoch, version, release);
    s
}

/// `[epoch:]version-release` appended to `s` (one allocation for a whole
/// NEVRA: the resolver makes one per package of a repository).
fn push_evr(s: &mut String, epoch: u64, version: &str, release: &str) {
    if epoch != 0 {
        use std::fmt::Write as _;
        let _ = write!(s, "{epoch}:");
    }
    s.push_str(version);
    s.push('-');
    s.push_str(release);
}

/// `name-[epoch:]version-release.arch`, as `rpm -q` prints it.
pub fn nevra_text(name: &str, epoch: u64, version: &str, release: &str, arch: &str) -> String {
    let mut s = String::with_capacity(name.len() + version.len() + release.len() + arch.len() + 12);
    s.push_str(name);
    s.push('-');
    push_evr(&mut s, epoch, version, release);
    s.push('.');
    s.push_str(arch);
    s
}

/// `name-[epoch:]version-release.arch`, split at its last dot and its last
/// two dashes (names may hold dashes; versions and releases may not).
pub fn split_nevra(nevra: &str) -> Option<Nevra<'_>> {
    let (nvr, arch) = nevra.rsplit_once('.')?;
    let (nv, release) = nvr.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    Some(Nevra {
        name,
        version,
        release,
        arch,
    })
}

/// The scriptlets of one installed package that were not run (ingot never
/// runs one; those it did the work of declaratively are not listed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotRun {
    /// The package's NEVRA.
    pub package: String,
    /// `%pre`, `%post`, ...
    pub scriptlets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_and_nevra_as_rpm_prints_them() {
        assert_eq!(evr_text(0, "1.0", "3.amzn2023"), "1.0-3.amzn2023");
        assert_eq!(evr_text(12, "1.0", "3"), "12:1.0-3");
        assert_eq!(
            nevra_text("libfoo-devel", 0, "2.1", "1.fc40", "x86_64"),
            "libfoo-devel-2.1-1.fc40.x86_64"
        );
        assert_eq!(nevra_text("a", 1, "2", "3", "noarch"), "a-1:2-3.noarch");
    }

    #[test]
    fn nevra_splits_at_the_last_dashes_and_dot() {
        let x = split_nevra("python3-libs-1:3.9.16-1.amzn2023.x86_64").unwrap();
        assert_eq!(
            (x.name, x.evr().as_str(), x.arch),
            ("python3-libs", "1:3.9.16-1.amzn2023", "x86_64")
        );
        assert_eq!(split_nevra("no-arch"), None);
        assert_eq!(split_nevra("noversion.x86_64"), None);
    }

    #[test]
    fn a_package_named_by_its_nevra_gets_its_parts() {
        let p = Package::from_nevra("python3-libs-1:3.9.16-1.amzn2023.x86_64", "ab", "PSF");
        assert_eq!(
            (
                p.name.as_str(),
                p.epoch,
                p.version.as_str(),
                p.release.as_str(),
                p.arch.as_str()
            ),
            ("python3-libs", Some(1), "3.9.16", "1.amzn2023", "x86_64")
        );
        assert_eq!((p.sigmd5.as_str(), p.license.as_str()), ("ab", "PSF"));
        let odd = Package::from_nevra("odd", "", "");
        assert_eq!((odd.name.as_str(), odd.nevra.as_str()), ("", "odd"));
    }
}
