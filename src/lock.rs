//! The lock file: the exact packages an image spec's `install` resolved
//! to, so the same spec, base and lock give the same image whatever the
//! repositories publish later (as `Cargo.lock` does for crates).
//!
//! In: a resolved set of packages and the digest of the inputs it was
//! resolved for ([`Inputs`]); or a lock file's text, which is untrusted
//! (a user may hand-edit it, a merge may mangle it). Out: [`Lock`], its
//! text (`SPEC_STEM.lock` beside the spec), and what changed between two
//! locks ([`changes`]).
//!
//! The file is TOML: `version`, `inputs` (hex SHA-256), then one
//! `[[package]]` table per package with `name`, `epoch` (only when not
//! 0), `version`, `release`, `arch`, `repo`, `location` (relative to the
//! repository's base URL), `size` and `sha256`, sorted by name, arch and
//! EVR. The same lock is always the same text.
//!
//! Limits, each named in its error: at most [`MAX_BYTES`] of text and
//! [`MAX_PACKAGES`] packages; names, versions and locations as rpm and
//! repository metadata allow them (no control characters, no `..` or
//! absolute locations, which would let a lock file point a download
//! anywhere).

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The lock format this ingot writes and reads.
pub const LOCK_VERSION: u32 = 1;
/// The largest lock file read: a lock of tens of thousands of packages is
/// a few megabytes.
pub const MAX_BYTES: u64 = 64 << 20;
/// The most packages a lock may hold.
pub const MAX_PACKAGES: usize = 100_000;
/// The longest name, version, release, arch, repo or location.
pub const MAX_FIELD: usize = 4096;

/// Why a lock file cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lock file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lock file `{}` is larger than {MAX_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("lock file `{}` is not a lock ingot can read: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// The `[[image.repos]]` (or base repository) name it comes from.
    pub repo: String,
    /// Its path below the repository's base URL.
    pub location: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LockedPackage {
    /// `name-[epoch:]version-release.arch`
    pub fn nevra(&self) -> String {
        crate::package::nevra_text(
            &self.name,
            u64::from(self.epoch),
            &self.version,
            &self.release,
            &self.arch,
        )
    }

    /// `[epoch:]version-release`
    pub fn evr(&self) -> String {
        crate::package::evr_text(u64::from(self.epoch), &self.version, &self.release)
    }

    /// rpm's order of two versions of a package.
    pub fn cmp_evr(&self, other: &LockedPackage) -> Ordering {
        let e = |p: &LockedPackage| p.epoch.to_string();
        let (a, b) = (e(self), e(other));
        rpm_version::Evr::new(a.as_str(), self.version.as_str(), self.release.as_str()).cmp(
            &rpm_version::Evr::new(b.as_str(), other.version.as_str(), other.release.as_str()),
        )
    }

    fn check(&self) -> Result<(), String> {
        let fields = [
            ("name", &self.name),
            ("version", &self.version),
            ("release", &self.release),
            ("arch", &self.arch),
            ("repo", &self.repo),
            ("location", &self.location),
        ];
        for (what, v) in fields {
            if v.is_empty() {
                return Err(format!("a package has an empty {what}"));
            }
            if v.len() > MAX_FIELD {
                return Err(format!(
                    "a package's {what} is longer than {MAX_FIELD} bytes"
                ));
            }
            if let Some(c) = v.chars().find(|c| c.is_control()) {
                return Err(format!(
                    "package `{}`: its {what} contains the control character {c:?}",
                    crate::spec::diag::escape(&self.name)
                ));
            }
        }
        for (what, v) in [
            ("name", &self.name),
            ("version", &self.version),
            ("release", &self.release),
            ("arch", &self.arch),
        ] {
            if v.contains(char::is_whitespace) || (what != "name" && v.contains('-')) {
                return Err(format!(
                    "package `{}`: its {what} `{}` is not one rpm could have",
                    crate::spec::diag::escape(&self.name),
                    crate::spec::diag::escape(v)
                ));
            }
        }
        let loc = Path::new(&self.location);
        if loc.is_absolute()
            || self.location.contains("://")
            || loc
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "package `{}`: location `{}` must be a path inside its repository",
                self.nevra(),
                crate::spec::diag::escape(&self.location)
            ));
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "package `{}`: sha256 must be 64 lowercase hexadecimal digits",
                self.nevra()
            ));
        }
        Ok(())
    }

    /// The order packages are written in: name, arch, then EVR.
    fn order(&self, other: &LockedPackage) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.arch.cmp(&other.arch))
            .then_with(|| self.cmp_evr(other))
            .then_with(|| self.repo.cmp(&other.repo))
    }
}

/// A lock: the packages, and the inputs they were resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// [`Inputs::digest`] of what the lock was made for, hex.
    pub inputs: String,
    pub packages: Vec<LockedPackage>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    inputs: String,
    #[serde(default)]
    package: Vec<LockedPackage>,
}

const HEADER: &str = "# Made by `ingot lock` (and by `ingot bake` when it was missing or stale).\n\
# It pins the packages `install` resolved to; commit it, and bake with\n\
# `--locked` in CI. `ingot lock --upgrade` takes newer versions.\n";

impl Lock {
    /// A lock of `packages` (any order) made for `inputs`.
    pub fn new(inputs: [u8; 32], mut packages: Vec<LockedPackage>) -> Lock {
        packages.sort_by(LockedPackage::order);
        Lock {
            inputs: hex::encode(inputs),
            packages,
        }
    }

    /// Whether the lock was made for these inputs.
    pub fn matches(&self, inputs: &[u8; 32]) -> bool {
        self.inputs == hex::encode(inputs)
    }

    /// The lock file's text: the same lock, the same bytes.
    pub fn to_text(&self) -> String {
        let f = File {
            version: LOCK_VERSION,
            inputs: self.inputs.clone(),
            package: self.packages.clone(),
        };
        // Serializing plain strings and numbers cannot fail.
        let body = toml::to_string(&f).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Parse a lock file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
        let bad = |message: String| LockError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        let f: File = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        if f.version != LOCK_VERSION {
            return Err(bad(format!(
                "its version is {}; this ingot reads version {LOCK_VERSION}",
                f.version
            )));
        }
        if f.inputs.len() != 64 || !f.inputs.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("`inputs` must be 64 hexadecimal digits".into()));
        }
        if f.package.len() > MAX_PACKAGES {
            return Err(bad(format!("it lists more than {MAX_PACKAGES} packages")));
        }
        for p in &f.package {
            p.check().map_err(bad)?;
        }
        let lock = Lock {
            inputs: f.inputs.to_ascii_lowercase(),
            ..Lock::new([0; 32], f.package)
        };
        for w in lock.packages.windows(2) {
            if w[0].name == w[1].name && w[0].arch == w[1].arch {
                return Err(bad(format!(
                    "it locks two versions of `{}.{}`",
                    w[0].name, w[0].arch
                )));
            }
        }
        Ok(lock)
    }

    /// Read the lock file at `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        use crate::input::InputError;
        let bytes = match crate::input::read_small(path, MAX_BYTES, "a lock file") {
            Ok(b) => b,
            Err(InputError::Open { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(InputError::TooLarge { .. }) => {
                return Err(LockError::TooLarge {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(LockError::Read {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(e),
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| LockError::Malformed {
            path: path.to_path_buf(),
            message: "it is not UTF-8 text".into(),
        })?;
        Lock::parse(path, &text).map(Some)
    }
}

/// The lock file of the image spec at `spec`: `web.lock` beside `web.toml`.
pub fn path_for(spec: &Path) -> PathBuf {
    spec.with_extension("lock")
}

/// What a lock was made for, hashed in a fixed order: the requests, the
/// requirements of the image's own packages, the repositories, and the
/// options that change what resolves. Anything else in the spec (files,
/// units, formats) can change without making the lock stale.
#[derive(Default)]
pub struct Inputs {
    lines: Vec<String>,
}

impl Inputs {
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// Add one input: a kind and its fields (each escaped, so no two
    /// different inputs give the same line).
    pub fn add(&mut self, kind: &str, fields: &[&str]) -> &mut Inputs {
        let mut line = kind.to_string();
        for f in fields {
            line.push('\t');
            line.push_str(&f.escape_default().to_string());
        }
        self.lines.push(line);
        self
    }

    /// The digest. Inputs of one kind are a set: their order does not
    /// count.
    pub fn digest(&self) -> [u8; 32] {
        let mut lines = self.lines.clone();
        lines.sort();
        lines.dedup();
        let mut h = Sha256::new();
        h.update(format!("ingot lock inputs {LOCK_VERSION}\n"));
        for l in &lines {
            h.update(l.as_bytes());
            h.update(b"\n");
        }
        h.finalize().into()
    }
}

/// A difference between two locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(LockedPackage),
    Removed(LockedPackage),
    /// The same name and arch, another version (or the same version from
    /// another repository or with other bytes).
    Changed {
        from: LockedPackage,
        to: LockedPackage,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added(p) => write!(f, "+ {}", p.nevra()),
            Change::Removed(p) => write!(f, "- {}", p.nevra()),
            Change::Changed { from, to } => {
                let how = match to.cmp_evr(from) {
                    Ordering::Greater => "upgraded",
                    Ordering::Less => "downgraded",
                    Ordering::Equal => "changed",
                };
                write!(
                    f,
                    "~ {}.{} {how}: {} -> {}",
                    to.name,
                    to.arch,
                    from.evr(),
                    to.evr()
                )?;
                if from.repo != to.repo {
                    write!(f, " (from {} to {})", from.repo, to.repo)?;
                } else if from.evr() == to.evr() && from.sha256 != to.sha256 {
                    write!(
                        f,
                        " (other bytes: {} -> {})",
                        &from.sha256[..12],
                        &to.sha256[..12]
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// What changed from `old` to `new`, by name and arch, in `new`'s order.
pub fn changes(old: &[LockedPackage], new: &[LockedPackage]) -> Vec<Change> {
    use std::collections::BTreeMap;
    let key = |p: &LockedPackage| (p.name.clone(), p.arch.clone());
    let before: BTreeMap<_, &LockedPackage> = old.iter().map(|p| (key(p), p)).collect();
    let after: BTreeMap<_, &LockedPackage> = new.iter().map(|p| (key(p), p)).collect();
    let mut out = Vec::new();
    for (k, to) in &after {
        match before.get(k) {
            None => out.push(Change::Added((*to).clone())),
            Some(from) if *from != *to => out.push(Change::Changed {
                from: (*from).clone(),
                to: (*to).clone(),
            }),
            Some(_) => {}
        }
    }
    for (k, from) in &before {
        if !after.contains_key(k) {
            out.push(Change::Removed((*from).clone()));
        }
    }
    out.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    out
}

fn name_of(c: &Change) -> &str {
    match c {
        Change::Added(p) | Change::Removed(p) => &p.name,
        Change::Changed { to, .. } => &to.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, epoch: u32, version: &str, release: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: "x86_64".into(),
            repo: "amazonlinux".into(),
            location: format!("Packages/{name}-{version}-{release}.x86_64.rpm"),
            size: 1234,
            sha256: format!("{:064x}", name.len() * 7 + version.len()),
        }
    }

    #[test]
    fn a_lock_is_sorted_and_round_trips_through_its_text() {
        let lock = Lock::new(
            [7; 32],
            vec![
                pkg("zlib", 0, "1.2.11", "33.amzn2023"),
                pkg("nginx", 1, "1.24.0", "1.amzn2023.0.2"),
                pkg("libfoo", 0, "2.0", "1"),
            ],
        );
        let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libfoo", "nginx", "zlib"]);
        let text = lock.to_text();
        // Written as TOML another tool reads the same way.
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["version"].as_integer(), Some(1));
        assert_eq!(v["package"][1]["epoch"].as_integer(), Some(1));
        assert!(
            v["package"][0].get("epoch").is_none(),
            "epoch 0 is left out"
        );
        let back = Lock::parse(Path::new("web.lock"), &text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_text(), text);
        assert!(back.matches(&[7; 32]));
        assert!(!back.matches(&[8; 32]));
        // The order given does not change the text.
        let mut shuffled = lock.packages.clone();
        shuffled.reverse();
        assert_eq!(Lock::new([7; 32], shuffled).to_text(), text);
    }

    #[test]
    fn hostile_or_mangled_locks_are_refused_with_the_reason() {
        let (jq, kq) = (pkg("jq", 0, "1.7", "1"), pkg("kq", 0, "1", "1"));
        let good = Lock::new([1; 32], vec![jq.clone()]).to_text();
        // One more `[[package]]` table, as a hand edit or a merge adds it.
        let table = |p: &LockedPackage| {
            let mut t = toml::Table::new();
            let list = toml::Value::try_from(vec![p.clone()]).unwrap();
            t.insert("package".into(), list);
            format!("\n{}", toml::to_string(&t).unwrap())
        };
        let cases = [
            (
                good.replace("version = 1\n", "version = 9\n"),
                "version is 9",
            ),
            (
                good.replace("Packages/jq", "../../etc/jq"),
                "inside its repository",
            ),
            (
                good.replace("Packages/jq", "/etc/jq"),
                "inside its repository",
            ),
            (
                good.replace("Packages/jq", "https://evil.invalid/jq"),
                "inside its repository",
            ),
            (good.replace("sha256 = \"", "sha256 = \"x"), "sha256"),
            (
                good.replace("name = \"jq\"", "name = \"j\\u0007q\""),
                "control character",
            ),
            (
                good.replace("version = \"1.7\"", "version = \"1.7-2\""),
                "not one rpm could have",
            ),
            (
                good.replace("arch = ", "colour = \"red\"\narch = "),
                "unknown field",
            ),
            (
                format!("{good}{}{}", table(&kq), table(&jq)),
                "two versions",
            ),
            ("inputs = \"00\"\nversion = 1\n".into(), "64 hexadecimal"),
            ("not toml at all [".into(), "lock ingot can read"),
        ];
        for (text, want) in cases {
            let e = Lock::parse(Path::new("web.lock"), &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("web.lock"), "{e}");
            assert!(e.contains(want), "`{e}` lacks `{want}` for:\n{text}");
        }
    }

    #[test]
    fn reading_a_lock_file_missing_large_or_not_a_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("web.lock");
        assert_eq!(Lock::read(&p).unwrap(), None);
        let lock = Lock::new([2; 32], vec![pkg("jq", 0, "1.7", "1")]);
        std::fs::write(&p, lock.to_text()).unwrap();
        assert_eq!(Lock::read(&p).unwrap(), Some(lock));
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_BYTES + 1).unwrap();
        assert!(matches!(Lock::read(&p), Err(LockError::TooLarge { .. })));
        // A FIFO is refused, not read (it would block).
        let fifo = t.path().join("fifo.lock");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let e = Lock::read(&fifo).unwrap_err();
        assert!(format!("{e:?}").contains("FIFO"), "{e:?}");
        assert_eq!(
            path_for(Path::new("specs/web.toml")),
            Path::new("specs/web.lock")
        );
    }

    #[test]
    fn the_inputs_digest_is_a_set_and_tells_fields_apart() {
        let d = |lines: &[(&str, &[&str])]| {
            let mut i = Inputs::new();
            for (k, f) in lines {
                i.add(k, f);
            }
            i.digest()
        };
        let a = d(&[("install", &["nginx"]), ("install", &["jq"])]);
        assert_eq!(a, d(&[("install", &["jq"]), ("install", &["nginx"])]));
        assert_ne!(a, d(&[("install", &["jq"])]));
        assert_ne!(
            d(&[("repo", &["a\tb", "c"])]),
            d(&[("repo", &["a", "b\tc"])]),
            "a tab inside a field is not a field boundary"
        );
    }

    #[test]
    fn changes_name_what_was_added_removed_upgraded_and_downgraded() {
        let old = vec![
            pkg("jq", 0, "1.6", "1"),
            pkg("oniguruma", 0, "6.9", "1"),
            pkg("zlib", 1, "1.3", "1"),
        ];
        let mut other_bytes = pkg("zlib", 1, "1.3", "1");
        other_bytes.sha256 = "f".repeat(64);
        let new = vec![
            pkg("jq", 0, "1.7", "1"),
            pkg("libfoo", 0, "2", "1"),
            other_bytes,
        ];
        let shown: Vec<String> = changes(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "~ jq.x86_64 upgraded: 1.6-1 -> 1.7-1",
                "+ libfoo-2-1.x86_64",
                "- oniguruma-6.9-1.x86_64",
                &format!(
                    "~ zlib.x86_64 changed: 1:1.3-1 -> 1:1.3-1 (other bytes: {} -> ffffffffffff)",
                    &pkg("zlib", 1, "1.3", "1").sha256[..12]
                ),
            ]
        );
        let down = changes(&[pkg("jq", 0, "1.10", "1")], &[pkg("jq", 0, "1.9", "1")]);
        assert_eq!(
            down[0].to_string(),
            "~ jq.x86_64 downgraded: 1.10-1 -> 1.9-1"
        );
        assert!(changes(&old, &old).is_empty());
    }
}
