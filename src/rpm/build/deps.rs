//! Step 5 of a build: every dependency the package declares, and their
//! header tags.
//!
//! In: the [`PackageSpec`]'s `[dependencies]`, the automatic dependencies
//! the scan found, the complete [`Files`], the compression and the
//! [`Scripts`]. Out: [`Deps`]: the eight lists (requires, provides,
//! conflicts, obsoletes, recommends, suggests, enhances, supplements) in
//! rpm's order, the per-file dependency index (`FILEDEPENDSX`,
//! `FILEDEPENDSN`, `DEPENDSDICT`) of what sysusers.d files provide and
//! require, and their header tags.
//!
//! Besides what the spec says it adds what rpmbuild adds: the automatic
//! dependencies (flagged as its generators flag them), `NAME = EVR` and
//! `NAME(ISA) = EVR`, `config(NAME)`, the `rpmlib()` features the package
//! uses (rich dependencies among them), systemd's `Requires(…)`, the
//! scriptlet interpreters, `user()`/`group()` recommends for the files'
//! owners and the `user()`/`group()`/`groupmember()` dependencies of
//! sysusers.d files. It never drops or rewrites a dependency the spec
//! declares, and refuses (as rpm would) one holding a control character.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader};

use ::rpm::{Dependency as RpmDep, DependencyFlags as DF};
use base64::Engine as _;

use super::files::{Body, Files};
use super::meta::check_text;
use super::rpm_err;
use super::scripts::Scripts;
use crate::error::{Error, Result};
use crate::rpm::autodeps::FileDeps;
use crate::rpm::compression::Compression;
use crate::rpm::dep::{Dependency, Op};
use crate::rpm::header::{NewEntry, Value, tag};
use crate::spec::package::PackageSpec;

/// Every dependency of the package, each list in rpm's order.
#[derive(Default)]
pub(super) struct Deps {
    pub(super) requires: Vec<RpmDep>,
    pub(super) provides: Vec<RpmDep>,
    pub(super) conflicts: Vec<RpmDep>,
    pub(super) obsoletes: Vec<RpmDep>,
    pub(super) recommends: Vec<RpmDep>,
    pub(super) suggests: Vec<RpmDep>,
    pub(super) enhances: Vec<RpmDep>,
    pub(super) supplements: Vec<RpmDep>,
    /// Which provides and requires each file brings.
    file_index: FileIndex,
}

/// `FILEDEPENDSX` (each file's first position in the dictionary),
/// `FILEDEPENDSN` (how many) and `DEPENDSDICT` (kind << 24 | position in
/// the provides or requires).
#[derive(Default)]
struct FileIndex {
    x: Vec<u32>,
    n: Vec<u32>,
    dict: Vec<u32>,
}

/// A dependency a file brings: (index of the file, `b'P'` or `b'R'`, the
/// dependency).
type FileDep = (usize, u8, RpmDep);

/// Gather every dependency of the package, sorted, with the per-file
/// index; an error when a sysusers.d file cannot be read or a dependency
/// holds a control character.
pub(super) fn gather(
    spec: &PackageSpec,
    compression: Compression,
    files: &Files,
    auto: &FileDeps,
    scripts: &Scripts,
) -> Result<Deps> {
    let mut d = declared(spec, auto);
    d.requires.extend(scripts.requires.iter().cloned());
    d.implied(spec, compression, files);
    let file_deps = sysusers_files(spec, files)?;
    for (_, kind, dep) in &file_deps {
        if *kind == b'P' {
            d.provides.push(dep.clone());
        } else {
            d.requires.push(dep.clone());
        }
    }
    for dep in scripts.interpreters() {
        if !d.requires.contains(&dep) {
            d.requires.push(dep);
        }
    }
    d.sort();
    d.file_index = d.file_index(file_deps, files.entries.len());
    d.check(spec)?;
    Ok(d)
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

/// What the spec declares, and what the scan found in the payload
/// (flagged as rpmbuild's dependency generators flag them).
fn declared(spec: &PackageSpec, auto: &FileDeps) -> Deps {
    let d = &spec.deps;
    let list = |v: &[Dependency]| -> Vec<RpmDep> { v.iter().map(to_rpm_dep).collect() };
    let mut out = Deps {
        requires: list(&d.requires),
        provides: list(&d.provides),
        conflicts: list(&d.conflicts),
        obsoletes: list(&d.obsoletes),
        recommends: list(&d.recommends),
        suggests: list(&d.suggests),
        supplements: list(&d.supplements),
        enhances: list(&d.enhances),
        file_index: FileIndex::default(),
    };
    out.requires.extend(auto.requires.iter().map(|r| RpmDep {
        name: r.clone(),
        flags: DF::FIND_REQUIRES,
        version: String::new(),
    }));
    out.provides.extend(auto.provides.iter().map(|p| RpmDep {
        name: p.clone(),
        flags: DF::FIND_PROVIDES,
        version: String::new(),
    }));
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

impl Deps {
    /// What rpmbuild adds on its own: the package's own provides,
    /// `config()`, `rpmlib()` features, and recommends for the accounts
    /// the files belong to.
    fn implied(&mut self, spec: &PackageSpec, compression: Compression, files: &Files) {
        let epoch = spec.epoch.map(|e| e.to_string()).unwrap_or_default();
        let evr = rpm_version::Evr::new(&epoch, &spec.version, &spec.release).to_string();
        self.provides.push(RpmDep::eq(spec.name.clone(), &evr));
        if let Some(isa) = arch_isa(&spec.arch) {
            self.provides
                .push(RpmDep::eq(format!("{}({isa})", spec.name), &evr));
        }
        if files.has_config() {
            self.provides.push(RpmDep::config(&spec.name, &evr));
            self.requires.push(RpmDep::config(&spec.name, &evr));
        }
        let rpmlib = &mut self.requires;
        rpmlib.push(RpmDep::rpmlib("CompressedFileNames", "3.0.4-1"));
        rpmlib.push(RpmDep::rpmlib("FileDigests", "4.6.0-1"));
        rpmlib.push(RpmDep::rpmlib("PayloadFilesHavePrefix", "4.0-1"));
        if matches!(compression, Compression::Zstd(_)) {
            rpmlib.push(RpmDep::rpmlib("PayloadIsZstd", "5.4.18-1"));
        }
        if files.has_caps() {
            rpmlib.push(RpmDep::rpmlib("FileCaps", "4.6.1-1"));
        }
        if files.large && !files.entries.is_empty() {
            rpmlib.push(RpmDep::rpmlib("LargeFiles", "4.12.0-1"));
        }
        if self
            .lists()
            .iter()
            .any(|(_, l)| l.iter().any(|d| d.name.starts_with('(')))
        {
            self.requires
                .push(RpmDep::rpmlib("RichDependencies", "4.12.0-1"));
        }
        // Accounts the files belong to (rpm >= 4.19 creates them; a v4
        // package only recommends them).
        let entries = &files.entries;
        let users: BTreeSet<&str> = entries.iter().map(|f| f.user).collect();
        let groups: BTreeSet<&str> = entries.iter().map(|f| f.group).collect();
        let users = users.into_iter().filter(|u| *u != "root");
        let groups = groups.into_iter().filter(|g| *g != "root");
        self.recommends.extend(users.map(RpmDep::user));
        self.recommends.extend(groups.map(RpmDep::group));
    }

    /// The eight lists with their tags (name, version, flags), in the
    /// order their errors are reported.
    fn lists(&self) -> [(DepTags, &Vec<RpmDep>); 8] {
        [
            (REQUIRE, &self.requires),
            (PROVIDE, &self.provides),
            (OBSOLETE, &self.obsoletes),
            (CONFLICT, &self.conflicts),
            (RECOMMEND, &self.recommends),
            (SUGGEST, &self.suggests),
            (ENHANCE, &self.enhances),
            (SUPPLEMENT, &self.supplements),
        ]
    }

    fn sort(&mut self) {
        for l in [
            &mut self.provides,
            &mut self.requires,
            &mut self.obsoletes,
            &mut self.conflicts,
            &mut self.recommends,
            &mut self.suggests,
            &mut self.enhances,
            &mut self.supplements,
        ] {
            sort_deps(l);
        }
    }

    /// The per-file index of `file_deps` into the sorted provides and
    /// requires, for `files` entries.
    fn file_index(&self, mut file_deps: Vec<FileDep>, files: usize) -> FileIndex {
        let mut index = FileIndex {
            x: vec![0; files],
            n: vec![0; files],
            dict: Vec::new(),
        };
        // By file, versioned before unversioned.
        file_deps.sort_by(|(a, _, da), (b, _, db)| {
            a.cmp(b)
                .then_with(|| (!db.version.is_empty()).cmp(&!da.version.is_empty()))
        });
        for (i, kind, dep) in &file_deps {
            let list = if *kind == b'P' {
                &self.provides
            } else {
                &self.requires
            };
            let at = list.iter().position(|d| d == dep).unwrap_or(0);
            if index.n[*i] == 0 {
                index.x[*i] = index.dict.len() as u32;
            }
            index.n[*i] += 1;
            index
                .dict
                .push(u32::from(*kind) << 24 | (at as u32 & 0x00ff_ffff));
        }
        index
    }

    /// No control characters in names and versions.
    fn check(&self, spec: &PackageSpec) -> Result<()> {
        let err = rpm_err(spec);
        for (_, list) in self.lists() {
            for r in list {
                check_text("dependency name", &r.name).map_err(&err)?;
                check_text("dependency version", &r.version).map_err(&err)?;
            }
        }
        Ok(())
    }

    /// The dependency tags: provides always, each other list when it is
    /// not empty, and the per-file index when a file brings any.
    pub(super) fn tags(&self) -> Vec<NewEntry> {
        let mut h = Vec::new();
        for (tags, list) in self.lists() {
            if tags == PROVIDE || !list.is_empty() {
                h.extend(dep_tags(list, tags));
            }
        }
        let index = &self.file_index;
        if !index.dict.is_empty() {
            h.push(NewEntry::int32(tag::FILEDEPENDSX, index.x.clone()));
            h.push(NewEntry::int32(tag::FILEDEPENDSN, index.n.clone()));
            h.push(NewEntry::int32(tag::DEPENDSDICT, index.dict.clone()));
        }
        h
    }
}

/// The name, version and flags tags of one list.
type DepTags = (u32, u32, u32);
const REQUIRE: DepTags = (tag::REQUIRENAME, tag::REQUIREVERSION, tag::REQUIREFLAGS);
const PROVIDE: DepTags = (tag::PROVIDENAME, tag::PROVIDEVERSION, tag::PROVIDEFLAGS);
const OBSOLETE: DepTags = (tag::OBSOLETENAME, tag::OBSOLETEVERSION, tag::OBSOLETEFLAGS);
const CONFLICT: DepTags = (tag::CONFLICTNAME, tag::CONFLICTVERSION, tag::CONFLICTFLAGS);
const RECOMMEND: DepTags = (
    tag::RECOMMENDNAME,
    tag::RECOMMENDVERSION,
    tag::RECOMMENDFLAGS,
);
const SUGGEST: DepTags = (tag::SUGGESTNAME, tag::SUGGESTVERSION, tag::SUGGESTFLAGS);
const ENHANCE: DepTags = (tag::ENHANCENAME, tag::ENHANCEVERSION, tag::ENHANCEFLAGS);
const SUPPLEMENT: DepTags = (
    tag::SUPPLEMENTNAME,
    tag::SUPPLEMENTVERSION,
    tag::SUPPLEMENTFLAGS,
);

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

fn dep_tags(deps: &[RpmDep], (names, versions, flags): DepTags) -> [NewEntry; 3] {
    [
        NewEntry::strings(names, deps.iter().map(|d| d.name.clone()).collect()),
        NewEntry::strings(versions, deps.iter().map(|d| d.version.clone()).collect()),
        NewEntry {
            tag: flags,
            value: Value::Int32(deps.iter().map(|d| d.flags.bits()).collect()),
        },
    ]
}

/// What the package's sysusers.d files provide and require, per file.
fn sysusers_files(spec: &PackageSpec, files: &Files) -> Result<Vec<FileDep>> {
    let mut out = Vec::new();
    for (i, f) in files.entries.iter().enumerate() {
        if !f.cpio.starts_with("./usr/lib/sysusers.d/") || !f.cpio.ends_with(".conf") {
            continue;
        }
        let found = match f.body {
            Body::None => Vec::new(),
            Body::Bytes(b) => sysusers_deps(b).map_err(|e| rpm_err(spec)(e.into()))?,
            Body::Source(src) => {
                let read_err = |source| Error::Read {
                    path: src.to_path_buf(),
                    source,
                };
                sysusers_deps(BufReader::new(File::open(src).map_err(read_err)?))
                    .map_err(read_err)?
            }
        };
        out.extend(found.into_iter().map(|(kind, dep)| (i, kind, dep)));
    }
    Ok(out)
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

/// Dependencies as `rpm -q --requires` lists them, sorted.
pub(super) fn texts(deps: &[RpmDep]) -> Vec<String> {
    let mut v: Vec<String> = deps.iter().map(dep_text).collect();
    v.sort();
    v
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
