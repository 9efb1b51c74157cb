//! Dependency closure: does every requirement of every newly installed
//! package have a provider?
//!
//! In: the headers of the packages already installed (the base's database)
//! and of the packages being installed. Out: the unmet requirements, each
//! naming the package, the requirement, and what is offered under that name
//! (so a person can see "needs python3 >= 3.9, the base has 3.8"), and the
//! conflicts. Follows rpm's rules: versioned comparison (epoch, version,
//! release; a missing release matches any), unversioned provides satisfy
//! versioned requirements, file requirements are met by any package's file
//! list, rich dependencies are evaluated (`and`, `or`, `if`/`else`,
//! `unless`/`else`, `with`, `without`), and `rpmlib()` requirements are met
//! by the features Amazon Linux 2023's rpm 4.16 has. Never reads files.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use compact_str::CompactString;
use rpm_version::Evr;

use crate::rpm::header::{Header, tag};
use crate::spec::dep::{self, Dependency, Op, Rich, Simple};

const SENSE_LESS: u64 = 1 << 1;
const SENSE_GREATER: u64 = 1 << 2;
const SENSE_EQUAL: u64 = 1 << 3;
const SENSE_MASK: u64 = SENSE_LESS | SENSE_GREATER | SENSE_EQUAL;

/// `rpmlib()` features rpm 4.16 provides, with the version it provides.
pub const RPMLIB_FEATURES: &[(&str, &str)] = &[
    ("BuiltinLuaScripts", "4.2.2-1"),
    ("CompressedFileNames", "3.0.4-1"),
    ("ConcurrentAccess", "4.1-1"),
    ("DynamicBuildRequires", "4.15.0-1"),
    ("ExplicitPackageProvide", "4.0-1"),
    ("FileCaps", "4.6.1-1"),
    ("FileDigests", "4.6.0-1"),
    ("HeaderLoadSortsTags", "4.0.1-1"),
    ("LargeFiles", "4.12.0-1"),
    ("PartialHardlinkSets", "4.0.4-1"),
    ("PayloadFilesHavePrefix", "4.0-1"),
    ("PayloadIsBzip2", "3.0.5-1"),
    ("PayloadIsLzma", "4.4.2-1"),
    ("PayloadIsXz", "5.2-1"),
    ("PayloadIsZstd", "5.4.18-1"),
    ("RichDependencies", "4.12.0-1"),
    ("ScriptletExpansion", "4.9.0-1"),
    ("ScriptletInterpreterArgs", "4.0.3-1"),
    ("TildeInVersions", "4.10.0-1"),
    ("CaretInVersions", "4.15.0-1"),
    ("VersionedDependencies", "3.0.3-1"),
];

/// The header tags whose entries may be rich dependencies, with what a
/// message calls one entry.
pub const RICH_TAGS: &[(u32, &str)] = &[
    (tag::REQUIRENAME, "requirement"),
    (tag::CONFLICTNAME, "conflict"),
    (tag::RECOMMENDNAME, "recommendation"),
    (tag::SUGGESTNAME, "suggestion"),
    (tag::SUPPLEMENTNAME, "supplement"),
    (tag::ENHANCENAME, "enhancement"),
];

/// A rich dependency in a package's header that the parser refuses
/// (malformed, or past one of its limits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its {what} `{shown}` cannot be read")]
pub struct BadDependency {
    pub what: &'static str,
    /// The dependency as written, cut short when long.
    pub shown: String,
    #[source]
    pub source: dep::DepError,
}

/// Check that every rich dependency in `h` parses, so that nothing later
/// reads a dependency it cannot understand as merely unmet. Names that do
/// not start with `(` are names, whatever they hold.
pub fn check_header(h: &Header) -> Result<(), BadDependency> {
    for &(t, what) in RICH_TAGS {
        for text in h.strings(t) {
            if !text.starts_with('(') {
                continue;
            }
            if let Err(source) = dep::parse(&text) {
                return Err(BadDependency {
                    what,
                    shown: shorten(&text),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// At most 60 characters of `text`, control characters escaped, and its
/// length when it was cut.
fn shorten(text: &str) -> String {
    const KEEP: usize = 60;
    let escaped = crate::spec::diag::escape(text);
    if escaped.chars().count() <= KEEP {
        return escaped.into_owned();
    }
    let head: String = escaped.chars().take(KEEP).collect();
    format!("{head}… ({} bytes)", text.len())
}

/// A name with an optional versioned comparison, as stored in a header.
///
/// Name and EVR are [`CompactString`]s: most (`libfoo.so.1()(64bit)`,
/// `2.34-1.amzn2023`) fit in the 24 bytes a `String` takes anyway, so a
/// repository's tens of thousands of entries are not each two heap
/// allocations, and the solver's indexes hash a name in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub name: CompactString,
    pub flags: u64,
    pub evr: CompactString,
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.flags & SENSE_MASK {
            SENSE_LESS => "<",
            x if x == SENSE_LESS | SENSE_EQUAL => "<=",
            SENSE_EQUAL => "=",
            x if x == SENSE_GREATER | SENSE_EQUAL => ">=",
            SENSE_GREATER => ">",
            _ => "",
        };
        if op.is_empty() || self.evr.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{} {op} {}", self.name, self.evr)
        }
    }
}

/// What one package offers and needs.
#[derive(Debug, Clone, Default)]
pub struct Package {
    /// `name-[epoch:]version-release.arch`
    pub nevra: String,
    pub name: String,
    pub provides: Vec<Capability>,
    pub requires: Vec<Capability>,
    pub conflicts: Vec<Capability>,
    pub obsoletes: Vec<Capability>,
    pub files: Vec<String>,
}

/// The capabilities a header lists under one kind's three tags (names,
/// flags, versions), in the header's order.
pub fn caps(h: &Header, names: u32, flags: u32, versions: u32) -> Vec<Capability> {
    let n = h.strings(names);
    let f = h.ints(flags);
    let v = h.strings(versions);
    n.into_iter()
        .enumerate()
        .map(|(i, name)| Capability {
            name: name.into(),
            flags: f.get(i).copied().unwrap_or(0),
            evr: v
                .get(i)
                .map_or_else(CompactString::default, CompactString::from),
        })
        .collect()
}

/// The paths of the files a header lists (folder plus base name), in the
/// header's order; an entry whose folder index is out of range is left out.
pub fn file_paths(h: &Header) -> Vec<String> {
    let dirs = h.strings(tag::DIRNAMES);
    h.strings(tag::BASENAMES)
        .into_iter()
        .zip(h.ints(tag::DIRINDEXES))
        .filter_map(|(b, i)| dirs.get(i as usize).map(|d| format!("{d}{b}")))
        .collect()
}

/// `name-[epoch:]version-release.arch` of the package whose header is `h`.
pub fn nevra(h: &Header) -> String {
    format!(
        "{}-{}{}-{}.{}",
        h.string(tag::NAME).unwrap_or_default(),
        h.int(tag::EPOCH)
            .map(|e| format!("{e}:"))
            .unwrap_or_default(),
        h.string(tag::VERSION).unwrap_or_default(),
        h.string(tag::RELEASE).unwrap_or_default(),
        h.string(tag::ARCH).unwrap_or_default()
    )
}

impl Package {
    pub fn from_header(h: &Header) -> Package {
        let files = file_paths(h);
        Package {
            nevra: nevra(h),
            name: h.string(tag::NAME).unwrap_or_default(),
            provides: caps(h, tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION),
            requires: caps(h, tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION),
            conflicts: caps(
                h,
                tag::CONFLICTNAME,
                tag::CONFLICTFLAGS,
                tag::CONFLICTVERSION,
            ),
            obsoletes: caps(
                h,
                tag::OBSOLETENAME,
                tag::OBSOLETEFLAGS,
                tag::OBSOLETEVERSION,
            ),
            files,
        }
    }
}

/// Split `[epoch:]version[-release]`.
fn split_evr(s: &str) -> (&str, &str, &str) {
    let (e, vr) = match s.split_once(':') {
        Some((e, vr)) if e.bytes().all(|b| b.is_ascii_digit()) => (e, vr),
        _ => ("", s),
    };
    let (v, r) = vr.rsplit_once('-').unwrap_or((vr, ""));
    (e, v, r)
}

/// rpm's EVR comparison for dependencies: a missing epoch is 0, and the
/// release only counts when both sides have one.
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    compare_evr_parts(split_evr(a), split_evr(b))
}

/// [`compare_evr`] of two EVRs given as (epoch, version, release).
pub fn compare_evr_parts(a: (&str, &str, &str), b: (&str, &str, &str)) -> Ordering {
    let (ar, br) = match a.2.is_empty() || b.2.is_empty() {
        true => ("", ""),
        false => (a.2, b.2),
    };
    Evr::new(a.0, a.1, ar).cmp(&Evr::new(b.0, b.1, br))
}

/// Do the ranges of a provide and a requirement of the same name overlap?
/// (rpm's `rpmdsCompare`.)
pub fn ranges_overlap(
    provide_flags: u64,
    provide_evr: &str,
    req_flags: u64,
    req_evr: &str,
) -> bool {
    let (pf, rf) = (provide_flags & SENSE_MASK, req_flags & SENSE_MASK);
    if pf == 0 || rf == 0 || provide_evr.is_empty() || req_evr.is_empty() {
        return true;
    }
    match compare_evr(provide_evr, req_evr) {
        Ordering::Less => pf & SENSE_GREATER != 0 || rf & SENSE_LESS != 0,
        Ordering::Greater => pf & SENSE_LESS != 0 || rf & SENSE_GREATER != 0,
        Ordering::Equal => {
            (pf & SENSE_EQUAL != 0 && rf & SENSE_EQUAL != 0)
                || (pf & SENSE_LESS != 0 && rf & SENSE_LESS != 0)
                || (pf & SENSE_GREATER != 0 && rf & SENSE_GREATER != 0)
        }
    }
}

fn op_flags(op: Op) -> u64 {
    match op {
        Op::Lt => SENSE_LESS,
        Op::Le => SENSE_LESS | SENSE_EQUAL,
        Op::Eq => SENSE_EQUAL,
        Op::Ge => SENSE_GREATER | SENSE_EQUAL,
        Op::Gt => SENSE_GREATER,
    }
}

/// One requirement nobody meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub package: String,
    pub requirement: String,
    /// What is offered under the requirement's name(s), e.g.
    /// `python3 = 3.8-1 (from python3-3.8-1.x86_64)`.
    pub offered: Vec<String>,
}

impl std::fmt::Display for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} requires `{}`", self.package, self.requirement)?;
        if self.offered.is_empty() {
            write!(f, ", which nothing provides")
        } else {
            write!(f, "; offered instead: {}", self.offered.join(", "))
        }
    }
}

/// A conflict between two packages that would both be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub package: String,
    pub conflicts_with: String,
    pub by: String,
}

/// Every package that will be installed, indexed by what it provides.
pub struct Universe<'a> {
    pkgs: &'a [Package],
    provides: BTreeMap<&'a str, Vec<(usize, &'a Capability)>>,
    files: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Universe<'a> {
    pub fn new(pkgs: &'a [Package]) -> Universe<'a> {
        let mut provides: BTreeMap<&str, Vec<(usize, &Capability)>> = BTreeMap::new();
        let mut files: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            for c in &p.provides {
                provides.entry(c.name.as_str()).or_default().push((i, c));
            }
            for f in &p.files {
                files.entry(f.as_str()).or_default().push(i);
            }
        }
        Universe {
            pkgs,
            provides,
            files,
        }
    }

    /// Packages that satisfy a simple requirement.
    fn providers(&self, name: &str, flags: u64, evr: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .provides
            .get(name)
            .map(|v| {
                v.iter()
                    .filter(|(_, c)| ranges_overlap(c.flags, &c.evr, flags, evr))
                    .map(|(i, _)| *i)
                    .collect()
            })
            .unwrap_or_default();
        if name.starts_with('/')
            && let Some(v) = self.files.get(name)
        {
            out.extend(v);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn simple_met(&self, s: &Simple) -> Vec<usize> {
        let (flags, evr) = match &s.constraint {
            Some((op, evr)) => (op_flags(*op), evr.as_str()),
            None => (0, ""),
        };
        self.providers(&s.name, flags, evr)
    }

    /// Which packages make a rich expression true (`None` = not met).
    fn rich_met(&self, r: &Rich) -> Option<Vec<usize>> {
        let met = |r: &Rich| self.rich_met(r);
        match r {
            Rich::Dep(s) => {
                let v = self.simple_met(s);
                (!v.is_empty()).then_some(v)
            }
            Rich::And(v) => {
                let mut all = Vec::new();
                for c in v {
                    all.extend(met(c)?);
                }
                Some(all)
            }
            Rich::Or(v) => v.iter().find_map(met),
            Rich::If(a, cond, otherwise) => match met(cond) {
                Some(_) => met(a),
                None => match otherwise {
                    Some(e) => met(e),
                    None => Some(Vec::new()),
                },
            },
            Rich::Unless(a, cond, otherwise) => match met(cond) {
                None => met(a),
                Some(_) => match otherwise {
                    Some(e) => met(e),
                    None => Some(Vec::new()),
                },
            },
            Rich::With(v) => {
                // One package must satisfy every operand.
                let mut sets = v.iter().map(met);
                let first = sets.next()??;
                let mut common: Vec<usize> = first;
                for s in sets {
                    let s = s?;
                    common.retain(|p| s.contains(p));
                }
                (!common.is_empty()).then_some(common)
            }
            Rich::Without(a, b) => {
                let mut left = met(a)?;
                if let Some(right) = met(b) {
                    left.retain(|p| !right.contains(p));
                }
                (!left.is_empty()).then_some(left)
            }
        }
    }

    /// Is one header requirement met?
    pub fn is_met(&self, c: &Capability) -> bool {
        if let Some(feature) = c
            .name
            .strip_prefix("rpmlib(")
            .and_then(|r| r.strip_suffix(')'))
        {
            return RPMLIB_FEATURES
                .iter()
                .any(|(f, v)| *f == feature && ranges_overlap(SENSE_EQUAL, v, c.flags, &c.evr));
        }
        if c.name.starts_with('(') {
            return match dep::parse(&c.name) {
                Ok(Dependency::Rich { expr, .. }) => self.rich_met(&expr).is_some(),
                _ => false,
            };
        }
        !self.providers(&c.name, c.flags, &c.evr).is_empty()
    }

    /// What is offered under the names a requirement mentions.
    fn offered(&self, c: &Capability) -> Vec<String> {
        let names: Vec<String> = if c.name.starts_with('(') {
            match dep::parse(&c.name) {
                Ok(Dependency::Rich { expr, .. }) => {
                    expr.simples().iter().map(|s| s.name.clone()).collect()
                }
                _ => Vec::new(),
            }
        } else {
            vec![c.name.to_string()]
        };
        let mut out = Vec::new();
        for n in names {
            for (i, cap) in self.provides.get(n.as_str()).into_iter().flatten() {
                out.push(format!("{cap} (from {})", self.pkgs[*i].nevra));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Unmet requirements of the packages at `new` (indexes into the
    /// universe), in package then requirement order.
    pub fn unmet(&self, new: &[usize]) -> Vec<Unmet> {
        let mut out = Vec::new();
        for &i in new {
            let p = &self.pkgs[i];
            for c in &p.requires {
                let dup = out
                    .iter()
                    .any(|u: &Unmet| u.package == p.nevra && u.requirement == c.to_string());
                if !dup && !self.is_met(c) {
                    out.push(Unmet {
                        package: p.nevra.clone(),
                        requirement: c.to_string(),
                        offered: self.offered(c),
                    });
                }
            }
        }
        out
    }

    /// Conflicts that involve at least one package at `new`.
    pub fn conflicts(&self, new: &[usize]) -> Vec<Conflict> {
        let mut out = Vec::new();
        for (i, p) in self.pkgs.iter().enumerate() {
            for c in &p.conflicts {
                let hits: Vec<usize> = if c.name.starts_with('(') {
                    match dep::parse(&c.name) {
                        Ok(Dependency::Rich { expr, .. }) => {
                            self.rich_met(&expr).unwrap_or_default()
                        }
                        _ => Vec::new(),
                    }
                } else {
                    self.providers(&c.name, c.flags, &c.evr)
                };
                for j in hits {
                    if j != i && (new.contains(&i) || new.contains(&j)) {
                        out.push(Conflict {
                            package: p.nevra.clone(),
                            conflicts_with: self.pkgs[j].nevra.clone(),
                            by: c.to_string(),
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(name: &str, flags: u64, evr: &str) -> Capability {
        Capability {
            name: name.into(),
            flags,
            evr: evr.into(),
        }
    }

    fn pkg(nevra: &str, provides: Vec<Capability>, files: &[&str]) -> Package {
        Package {
            nevra: nevra.into(),
            name: nevra.split('-').next().unwrap_or("").into(),
            provides,
            files: files.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    const GE: u64 = SENSE_GREATER | SENSE_EQUAL;

    #[test]
    fn evr_comparison_follows_rpm() {
        assert_eq!(compare_evr("1.0-1", "1.0-2"), Ordering::Less);
        assert_eq!(compare_evr("1:1.0", "2.0"), Ordering::Greater);
        assert_eq!(compare_evr("3.9", "3.9.16-1.amzn2023"), Ordering::Less);
        // A missing release matches any release.
        assert_eq!(compare_evr("3.9.16", "3.9.16-1.amzn2023"), Ordering::Equal);
        assert_eq!(compare_evr("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(compare_evr("0:1.0-1", "1.0-1"), Ordering::Equal);
    }

    #[test]
    fn versioned_requirements_need_overlapping_ranges() {
        let pkgs = vec![pkg(
            "python3-3.9.16-1.x86_64",
            vec![cap("python3", SENSE_EQUAL, "3.9.16-1")],
            &[],
        )];
        let u = Universe::new(&pkgs);
        assert!(u.is_met(&cap("python3", GE, "3.9")));
        assert!(!u.is_met(&cap("python3", GE, "3.10")));
        assert!(u.is_met(&cap("python3", SENSE_LESS, "4")));
        assert!(u.is_met(&cap("python3", 0, "")));
        assert!(!u.is_met(&cap("python2", 0, "")));
    }

    #[test]
    fn unversioned_provides_meet_versioned_requirements() {
        let pkgs = vec![pkg(
            "a-1-1.noarch",
            vec![cap("libfoo.so.1()(64bit)", 0, "")],
            &[],
        )];
        let u = Universe::new(&pkgs);
        assert!(u.is_met(&cap("libfoo.so.1()(64bit)", GE, "2")));
    }

    #[test]
    fn file_requirements_are_met_by_file_lists() {
        let pkgs = vec![pkg(
            "bash-5-1.x86_64",
            vec![],
            &["/usr/bin/bash", "/usr/bin/sh"],
        )];
        let u = Universe::new(&pkgs);
        assert!(u.is_met(&cap("/usr/bin/sh", 0, "")));
        assert!(!u.is_met(&cap("/usr/bin/zsh", 0, "")));
    }

    #[test]
    fn rich_dependencies_are_evaluated() {
        let pkgs = vec![
            pkg("a-1-1.noarch", vec![cap("a", SENSE_EQUAL, "1-1")], &[]),
            pkg(
                "b-2-1.noarch",
                vec![cap("b", SENSE_EQUAL, "2-1"), cap("bb", 0, "")],
                &[],
            ),
        ];
        let u = Universe::new(&pkgs);
        let met = |s: &str| u.is_met(&cap(s, 0, ""));
        assert!(met("(a or zzz)"));
        assert!(!met("(a and zzz)"));
        assert!(met("(zzz if nope)"));
        assert!(!met("(zzz if a)"));
        assert!(met("(a if b else zzz)"));
        assert!(met("(zzz unless a)"));
        assert!(met("(b with bb)"));
        assert!(!met("(a with bb)"));
        assert!(met("(a without bb)"));
        assert!(!met("(b without bb)"));
        assert!(met("(b >= 2 and a < 2)"));
    }

    #[test]
    fn rpmlib_requirements_are_checked_against_rpm_416_features() {
        let u = Universe::new(&[]);
        assert!(u.is_met(&cap(
            "rpmlib(PayloadIsZstd)",
            SENSE_LESS | SENSE_EQUAL,
            "5.4.18-1"
        )));
        assert!(!u.is_met(&cap("rpmlib(NoSuchFeature)", SENSE_LESS | SENSE_EQUAL, "1")));
    }

    #[test]
    fn unmet_names_what_is_offered_instead() {
        let mut p = pkg("app-1-1.noarch", vec![], &[]);
        p.requires = vec![cap("python3", GE, "3.10")];
        let pkgs = vec![
            pkg(
                "python3-3.9.16-1.x86_64",
                vec![cap("python3", SENSE_EQUAL, "3.9.16-1")],
                &[],
            ),
            p,
        ];
        let u = Universe::new(&pkgs);
        let unmet = u.unmet(&[1]);
        assert_eq!(unmet.len(), 1);
        let text = unmet[0].to_string();
        assert!(
            text.contains("app-1-1.noarch requires `python3 >= 3.10`"),
            "{text}"
        );
        assert!(
            text.contains("python3 = 3.9.16-1 (from python3-3.9.16-1.x86_64)"),
            "{text}"
        );
    }

    #[test]
    fn conflicts_are_found_in_both_directions() {
        let mut a = pkg("a-1-1.noarch", vec![cap("a", SENSE_EQUAL, "1-1")], &[]);
        a.conflicts = vec![cap("b", SENSE_LESS, "3")];
        let b = pkg("b-2-1.noarch", vec![cap("b", SENSE_EQUAL, "2-1")], &[]);
        let pkgs = vec![a, b];
        let u = Universe::new(&pkgs);
        assert_eq!(u.conflicts(&[1]).len(), 1);
        assert_eq!(u.conflicts(&[0]).len(), 1);
    }
}
