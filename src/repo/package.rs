//! What repository metadata says of one package: [`Package`], its
//! dependencies ([`Dep`]) and its checksum ([`Checksum`]).

use std::fmt;

use compact_str::CompactString;

use super::error::{RepoError, Result};

/// rpm's comparison flags (`RPMSENSE_*` in rpm's `rpmds.h`), as the headers
/// and `install::deps` use them.
pub const SENSE_LESS: u64 = 1 << 1;
pub const SENSE_GREATER: u64 = 1 << 2;
pub const SENSE_EQUAL: u64 = 1 << 3;
/// `RPMSENSE_PREREQ`: what primary's `pre="1"` stands for.
pub const SENSE_PREREQ: u64 = 1 << 6;

/// Primary's comparison names (`flags="GE"`) as rpm flags.
pub fn sense_flags(name: &str) -> Option<u64> {
    Some(match name {
        "EQ" => SENSE_EQUAL,
        "LT" => SENSE_LESS,
        "LE" => SENSE_LESS | SENSE_EQUAL,
        "GT" => SENSE_GREATER,
        "GE" => SENSE_GREATER | SENSE_EQUAL,
        _ => return None,
    })
}

/// A checksum algorithm repository metadata may name. MD5 is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ChecksumKind {
    Sha1,
    Sha224,
    #[default]
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumKind {
    /// The metadata's name (`sha` is yum's old name for SHA-1).
    pub fn parse(name: &str, what: &str) -> Result<ChecksumKind> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "sha" | "sha1" => ChecksumKind::Sha1,
            "sha224" => ChecksumKind::Sha224,
            "sha256" => ChecksumKind::Sha256,
            "sha384" => ChecksumKind::Sha384,
            "sha512" => ChecksumKind::Sha512,
            _ => {
                return Err(RepoError::ChecksumType {
                    what: what.to_string(),
                    kind: name.to_string(),
                });
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ChecksumKind::Sha1 => "sha1",
            ChecksumKind::Sha224 => "sha224",
            ChecksumKind::Sha256 => "sha256",
            ChecksumKind::Sha384 => "sha384",
            ChecksumKind::Sha512 => "sha512",
        }
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            ChecksumKind::Sha1 => 40,
            ChecksumKind::Sha224 => 56,
            ChecksumKind::Sha256 => 64,
            ChecksumKind::Sha384 => 96,
            ChecksumKind::Sha512 => 128,
        }
    }

    pub fn hasher(self) -> Hasher {
        use sha2::Digest as _;
        match self {
            ChecksumKind::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumKind::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            ChecksumKind::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            ChecksumKind::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            ChecksumKind::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// A running digest of one of the [`ChecksumKind`]s.
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest in lower-case hex.
    pub fn finish(self) -> String {
        use sha2::Digest as _;
        match self {
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha224(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha384(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// A checksum as the metadata gives it: algorithm and lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Checksum {
    pub kind: ChecksumKind,
    pub hex: String,
}

impl Checksum {
    /// Check the text of a checksum (hex of the right length), keep it in
    /// lower case.
    pub fn new(kind: ChecksumKind, hex: &str, what: &str) -> Result<Checksum> {
        Checksum::from_text(kind, hex.to_string(), what)
    }

    /// [`Checksum::new`] from text already owned: kept, not copied, when
    /// it has no whitespace around it (one allocation per package less
    /// in a repository's primary).
    pub fn from_text(kind: ChecksumKind, mut hex: String, what: &str) -> Result<Checksum> {
        // As generators write it: lower-case hex of the right length, taken
        // as it is after one pass without a branch per byte.
        let lower = hex
            .bytes()
            .fold(true, |ok, c| ok & matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if lower && hex.len() == kind.hex_len() {
            return Ok(Checksum { kind, hex });
        }
        let plain = |h: &str| h.len() == kind.hex_len() && h.bytes().all(|c| c.is_ascii_hexdigit());
        if !plain(&hex) && hex.trim().len() != hex.len() {
            hex = hex.trim().to_string();
        }
        hex.make_ascii_lowercase();
        if !plain(&hex) {
            return Err(RepoError::Metadata {
                what: what.to_string(),
                message: format!(
                    "`{}` is not a {} checksum",
                    crate::spec::diag::escape(&hex),
                    kind.name()
                ),
            });
        }
        Ok(Checksum { kind, hex })
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.hex)
    }
}

/// One dependency entry (`<rpm:entry>` of primary), held as the solver
/// holds a header's dependency, so that handing a package's entries to
/// it moves them (tens of thousands of entries in a repository): the
/// capability, or the whole text of a rich dependency (it starts with
/// `(`); rpm's sense flags ([`SENSE_PREREQ`] among them when `pre` is
/// set); `[epoch:]version[-release]` as rpm headers write it (an epoch
/// of 0 left out), empty when unversioned, made once as the entry is read
/// ([`dep_evr`]).
pub type Dep = crate::install::deps::Capability;

/// The EVR of a dependency entry's `epoch`, `ver` and `rel`, as [`Dep`]
/// holds it.
pub fn dep_evr(epoch: Option<&str>, version: Option<&str>, release: Option<&str>) -> CompactString {
    let Some(v) = version else {
        return CompactString::default();
    };
    let e = epoch.filter(|e| !e.is_empty() && *e != "0");
    let r = release.filter(|r| !r.is_empty());
    let len = e.map_or(0, |e| e.len() + 1) + v.len() + r.map_or(0, |r| r.len() + 1);
    let mut s = CompactString::with_capacity(len);
    if let Some(e) = e {
        s.push_str(e);
        s.push(':');
    }
    s.push_str(v);
    if let Some(r) = r {
        s.push('-');
        s.push_str(r);
    }
    s
}

/// Whether createrepo lists a package's file `path` in primary (as well
/// as in filelists): a path under `/etc/`, one with a `bin/` folder in it,
/// and `/usr/lib/sendmail`. A file requirement on any other path is met
/// only through filelists (or a package that provides the path by name).
pub fn in_primary(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

/// What primary (or filelists) says a listed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FileKind {
    #[default]
    File,
    Dir,
    Ghost,
}

/// A path a package owns, as the metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageFile {
    pub path: String,
    pub kind: FileKind,
}

/// One package of a repository, from `primary` (XML or SQLite).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package {
    pub name: CompactString,
    pub epoch: u64,
    pub version: CompactString,
    pub release: CompactString,
    pub arch: CompactString,
    /// `location href`: the package's path under the repository's base URL.
    pub location: String,
    /// `location xml:base`: another base URL for this package, if given.
    pub location_base: Option<String>,
    /// The checksum of the package file (primary's `pkgid`).
    pub checksum: Checksum,
    /// Bytes of the package file.
    pub size: u64,
    pub installed_size: u64,
    pub build_time: u64,
    pub provides: Vec<Dep>,
    pub requires: Vec<Dep>,
    pub conflicts: Vec<Dep>,
    pub obsoletes: Vec<Dep>,
    pub recommends: Vec<Dep>,
    pub suggests: Vec<Dep>,
    pub supplements: Vec<Dep>,
    pub enhances: Vec<Dep>,
    /// The paths primary lists (those [`in_primary`] picks, as createrepo
    /// does); the rest is in filelists ([`super::Repo::file_owners`]).
    pub files: Vec<PackageFile>,
}

impl Package {
    /// `[epoch:]version-release` (an epoch of 0 left out).
    pub fn evr(&self) -> String {
        crate::package::evr_text(self.epoch, &self.version, &self.release)
    }

    /// `name-[epoch:]version-release.arch`
    pub fn nevra(&self) -> String {
        crate::package::nevra_text(
            &self.name,
            self.epoch,
            &self.version,
            &self.release,
            &self.arch,
        )
    }

    /// The dependency list of one kind.
    pub fn deps(&self, kind: DepKind) -> &[Dep] {
        match kind {
            DepKind::Provides => &self.provides,
            DepKind::Requires => &self.requires,
            DepKind::Conflicts => &self.conflicts,
            DepKind::Obsoletes => &self.obsoletes,
            DepKind::Recommends => &self.recommends,
            DepKind::Suggests => &self.suggests,
            DepKind::Supplements => &self.supplements,
            DepKind::Enhances => &self.enhances,
        }
    }

    pub(super) fn deps_mut(&mut self, kind: DepKind) -> &mut Vec<Dep> {
        match kind {
            DepKind::Provides => &mut self.provides,
            DepKind::Requires => &mut self.requires,
            DepKind::Conflicts => &mut self.conflicts,
            DepKind::Obsoletes => &mut self.obsoletes,
            DepKind::Recommends => &mut self.recommends,
            DepKind::Suggests => &mut self.suggests,
            DepKind::Supplements => &mut self.supplements,
            DepKind::Enhances => &mut self.enhances,
        }
    }
}

/// The dependency lists primary has, by their element (and table) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DepKind {
    Provides,
    Requires,
    Conflicts,
    Obsoletes,
    Recommends,
    Suggests,
    Supplements,
    Enhances,
}

impl DepKind {
    pub const ALL: [DepKind; 8] = [
        DepKind::Provides,
        DepKind::Requires,
        DepKind::Conflicts,
        DepKind::Obsoletes,
        DepKind::Recommends,
        DepKind::Suggests,
        DepKind::Supplements,
        DepKind::Enhances,
    ];

    /// The element name in primary.xml (without `rpm:`) and the table name
    /// in primary_db.
    pub fn name(self) -> &'static str {
        match self {
            DepKind::Provides => "provides",
            DepKind::Requires => "requires",
            DepKind::Conflicts => "conflicts",
            DepKind::Obsoletes => "obsoletes",
            DepKind::Recommends => "recommends",
            DepKind::Suggests => "suggests",
            DepKind::Supplements => "supplements",
            DepKind::Enhances => "enhances",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<DepKind> {
        DepKind::ALL
            .into_iter()
            .find(|k| k.name().as_bytes() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_texts_are_kept_in_lower_case_or_refused() {
        let lower = "0123456789abcdef".repeat(4);
        let kept = Checksum::from_text(ChecksumKind::Sha256, lower.clone(), "t").unwrap();
        assert_eq!(kept.hex, lower);
        // Upper case and whitespace around it, as some generators write.
        let upper = format!(" \n{}\t", lower.to_ascii_uppercase());
        let read = Checksum::from_text(ChecksumKind::Sha256, upper, "t").unwrap();
        assert_eq!(read, kept);
        let sha1 = "0123456789ABCDEF012345678901234567890abc";
        let read = Checksum::new(ChecksumKind::Sha1, sha1, "t").unwrap();
        assert_eq!(read.hex, sha1.to_ascii_lowercase());
        for bad in [
            String::new(),
            lower[..63].to_string(),
            format!("{lower}0"),
            format!("{}g", &lower[..63]),
            format!("{} {}", &lower[..32], &lower[32..63]),
            "-".repeat(64),
        ] {
            let e = Checksum::from_text(ChecksumKind::Sha256, bad.clone(), "t");
            assert!(
                matches!(e, Err(RepoError::Metadata { .. })),
                "{bad:?}: {e:?}"
            );
        }
        // Right for one kind, wrong for another.
        assert!(Checksum::new(ChecksumKind::Sha512, &lower, "t").is_err());
    }
}
