//! rpm's packages as resolvo sees them: names, solvables, version sets.
//!
//! Every package (installed, available, local) is a solvable under its
//! name. A simple requirement becomes a union of version sets, one per
//! package name whose packages provide it (ordered by preference); a rich
//! requirement becomes several requirements, with conditions for `if`
//! and `unless` and helper solvables for sub-expressions an `or` cannot
//! hold directly; conflicts and obsoletes become constraints (version sets
//! of what stays allowed). Weak dependencies and the installed set become
//! requirements of the root. Nothing here decides; resolvo does.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::cmp::Ordering;
use std::collections::BTreeMap;

// The maps here are keyed by capability names, paths and small ids, looked
// up a few times per dependency entry of 20,000-package repositories:
// SipHash was a twentieth of resolving. foldhash is much faster, and its
// seed is still random per process; the keys come from repositories the
// user chose to trust, so hash flooding is no concern worth SipHash's cost.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use smallvec::SmallVec;

use resolvo::{
    Candidates, Condition, ConditionId, DenseIndex, Dependencies, DependencyProvider, Interner,
    KnownDependencies, NameId, Requirement, SolvableId, SolverCache, StringId, VersionSetId,
    VersionSetUnionId,
};

use super::{Candidate, MoreFiles, Request, ResolveError, candidate_order, full_evr};
use crate::arch::Arch;
use crate::install::deps::{Capability, compare_evr, ranges_overlap};
use crate::spec::dep::{self, Dependency, Op, Rich, Simple};

mod encode;

const LESS: u64 = 1 << 1;
const GREATER: u64 = 1 << 2;
const EQUAL: u64 = 1 << 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Origin {
    Installed,
    Local,
    Available,
}

/// A package and what the solver needs to know of it.
pub(super) struct Pkg<'a> {
    pub c: &'a Candidate,
    pub origin: Origin,
    /// Made when first asked for: most of a repository's packages are
    /// never named nor compared.
    nevra: OnceCell<String>,
    evr: OnceCell<String>,
    /// Why it can never be installed, when it cannot.
    pub excluded: Option<String>,
    pub name: NameId,
}

impl Pkg<'_> {
    pub fn nevra(&self) -> &str {
        self.nevra.get_or_init(|| self.c.nevra())
    }

    /// `epoch:version-release`, always with the epoch.
    pub fn evr(&self) -> &str {
        self.evr.get_or_init(|| full_evr(self.c))
    }
}

/// What a solvable stands for.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// `pkgs[i]`.
    Pkg(usize),
    /// A sub-expression of a rich dependency (`helpers[i]`): chosen when
    /// that sub-expression is how a requirement is met.
    Helper(usize),
    /// The way out of a weak dependency: chosen when it is left out.
    OptOut,
}

/// A version set: the solvables of one name that match, or (`invert`)
/// those that stay allowed, with what a message calls it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct VersionSet {
    pub name: NameId,
    /// Solvable indexes, sorted.
    pub members: Vec<usize>,
    pub invert: bool,
    pub label: String,
}

/// Names to items, in flat arrays: a few allocations, where a map of
/// vectors made (and freed) one per name, tens of thousands of them.
/// The items under a name keep the order they came in.
struct Index<'a, T> {
    /// Each name's number, in the order names were first seen.
    at: HashMap<&'a str, u32>,
    /// Where each name's items are in `items`: start and length.
    ranges: Vec<(u32, u32)>,
    items: Vec<T>,
}

impl<T> Default for Index<'_, T> {
    fn default() -> Self {
        Index {
            at: HashMap::new(),
            ranges: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<'a, T: Copy> Index<'a, T> {
    /// From `entries`, a walk over (name, item) asked for twice: once to
    /// number the names and count their items, once to place the items
    /// (by the numbers kept from the first walk: a name is looked up in
    /// the map once per entry, and the map is the part that misses the
    /// caches); there are `hint` of them, or about.
    fn new<I: Iterator<Item = (&'a str, T)>>(hint: usize, entries: impl Fn() -> I) -> Index<'a, T> {
        let mut at: HashMap<&'a str, u32> = HashMap::with_capacity(hint);
        let mut numbers: Vec<u32> = Vec::with_capacity(hint);
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let mut fill = None;
        for (name, item) in entries() {
            fill.get_or_insert(item);
            let next = ranges.len() as u32;
            let n = *at.entry(name).or_insert(next);
            if n == next {
                ranges.push((0, 0));
            }
            ranges[n as usize].1 += 1;
            numbers.push(n);
        }
        let Some(fill) = fill else {
            return Index::default();
        };
        let mut next = 0;
        for (start, len) in ranges.iter_mut() {
            *start = next;
            next += std::mem::take(len);
        }
        let mut items = vec![fill; next as usize];
        for ((_, item), n) in entries().zip(numbers) {
            let (start, len) = &mut ranges[n as usize];
            items[(*start + *len) as usize] = item;
            *len += 1;
        }
        Index { at, ranges, items }
    }

    fn get(&self, name: &str) -> &[T] {
        self.at
            .get(name)
            .map_or(&[], |&n| self.slice(self.ranges[n as usize]))
    }

    fn slice(&self, (start, len): (u32, u32)) -> &[T] {
        &self.items[start as usize..(start + len) as usize]
    }

    fn iter(&self) -> impl Iterator<Item = (&'a str, &[T])> + '_ {
        self.at
            .iter()
            .map(|(&name, &n)| (name, self.slice(self.ranges[n as usize])))
    }
}

pub(super) struct Provider<'a> {
    pub pkgs: Vec<Pkg<'a>>,
    pub max_steps: u64,
    arch: Arch,
    /// The packages' names borrowed from them, helpers' names made here.
    names: RefCell<Vec<Cow<'a, str>>>,
    name_ids: RefCell<HashMap<Cow<'a, str>, NameId>>,
    /// Solvable indexes under each name: most names have one or two
    /// packages, held without an allocation of their own.
    by_name: RefCell<Vec<SmallVec<[usize; 2]>>>,
    /// Name and kind of every solvable; `pkgs` come first, index for index.
    solvables: RefCell<Vec<(NameId, Kind)>>,
    helpers: RefCell<Vec<Rich>>,
    helper_ids: RefCell<HashMap<String, usize>>,
    provides: Index<'a, (usize, &'a Capability)>,
    files: Index<'a, usize>,
    more_files: RefCell<&'a mut dyn MoreFiles>,
    hooked: RefCell<HashMap<String, Vec<usize>>>,
    by_id: HashMap<usize, usize>,
    /// Names with more than one installed package.
    multi: HashSet<NameId>,
    version_sets: RefCell<Vec<VersionSet>>,
    vs_ids: RefCell<HashMap<VersionSet, VersionSetId>>,
    unions: RefCell<Vec<Vec<VersionSetId>>>,
    union_ids: RefCell<HashMap<Vec<VersionSetId>, VersionSetUnionId>>,
    conditions: RefCell<Vec<Condition>>,
    condition_ids: RefCell<HashMap<Condition, ConditionId>>,
    strings: RefCell<Vec<String>>,
    simple_cache: RefCell<HashMap<String, Vec<VersionSetId>>>,
    /// What a message calls each requirement; the root's own wording for
    /// the requirements of the root.
    pub labels: RefCell<HashMap<Requirement, String>>,
    pub root_labels: RefCell<HashMap<Requirement, String>>,
    requests: RefCell<Vec<Requirement>>,
    failure: RefCell<Option<ResolveError>>,
    steps: Cell<u64>,
}

/// The first eight bytes of `name` as a number (zeros after a shorter
/// name): when two differ, the names compare as they do.
fn name_key(name: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = name.len().min(8);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

fn sid(i: usize) -> SolvableId {
    SolvableId::from_index(i)
}

/// The comparison a header's flags make, if any.
fn op_of(flags: u64, evr: &str) -> Option<Op> {
    if evr.is_empty() {
        return None;
    }
    Some(match flags & (LESS | GREATER | EQUAL) {
        LESS => Op::Lt,
        x if x == LESS | EQUAL => Op::Le,
        EQUAL => Op::Eq,
        x if x == GREATER | EQUAL => Op::Ge,
        GREATER => Op::Gt,
        _ => return None,
    })
}

fn op_flags(op: Op) -> u64 {
    match op {
        Op::Lt => LESS,
        Op::Le => LESS | EQUAL,
        Op::Eq => EQUAL,
        Op::Ge => GREATER | EQUAL,
        Op::Gt => GREATER,
    }
}

/// A header's dependency entry as an expression (a simple one is a
/// [`Rich::Dep`]).
pub(super) fn expression(c: &Capability) -> Result<Rich, String> {
    if c.name.starts_with('(') {
        return match dep::parse(&c.name) {
            Ok(Dependency::Rich { expr, .. }) => Ok(expr),
            Ok(Dependency::Simple(s)) => Ok(Rich::Dep(s)),
            Err(e) => Err(e.message),
        };
    }
    Ok(Rich::Dep(Simple {
        name: c.name.to_string(),
        constraint: op_of(c.flags, &c.evr).map(|op| (op, c.evr.to_string())),
    }))
}

/// An expression as rpm writes it.
pub(super) fn text(r: &Rich) -> String {
    let join = |v: &[Rich], word: &str| {
        let parts: Vec<String> = v.iter().map(text).collect();
        format!("({})", parts.join(&format!(" {word} ")))
    };
    let cond = |a: &Rich, word: &str, c: &Rich, e: &Option<Box<Rich>>| match e {
        Some(e) => format!("({} {word} {} else {})", text(a), text(c), text(e)),
        None => format!("({} {word} {})", text(a), text(c)),
    };
    match r {
        Rich::Dep(s) => s.to_string(),
        Rich::And(v) => join(v, "and"),
        Rich::Or(v) => join(v, "or"),
        Rich::With(v) => join(v, "with"),
        Rich::Without(a, b) => format!("({} without {})", text(a), text(b)),
        Rich::If(a, c, e) => cond(a, "if", c, e),
        Rich::Unless(a, c, e) => cond(a, "unless", c, e),
    }
}

impl<'a> Provider<'a> {
    pub fn new(
        installed: &'a [Candidate],
        available: &'a [Candidate],
        request: &'a Request,
        more_files: &'a mut dyn MoreFiles,
        max_steps: u64,
    ) -> Provider<'a> {
        let mut all: Vec<(Origin, u64, &Candidate)> = installed
            .iter()
            .map(|c| (Origin::Installed, c))
            .chain(request.local.iter().map(|c| (Origin::Local, c)))
            .chain(available.iter().map(|c| (Origin::Available, c)))
            .map(|(o, c)| (o, name_key(&c.name), c))
            .collect();
        // The start of the name beside each candidate: most comparisons
        // end there, without a look at the candidate. A total order (it
        // ends with the unique id): unstable is stable.
        all.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| candidate_order(a.2, b.2))
        });
        let mut p = Provider {
            pkgs: Vec::with_capacity(all.len()),
            max_steps,
            arch: request.arch,
            names: RefCell::default(),
            name_ids: RefCell::default(),
            by_name: RefCell::default(),
            solvables: RefCell::default(),
            helpers: RefCell::default(),
            helper_ids: RefCell::default(),
            provides: Index::default(),
            files: Index::default(),
            more_files: RefCell::new(more_files),
            hooked: RefCell::default(),
            by_id: HashMap::with_capacity(all.len()),
            multi: HashSet::new(),
            version_sets: RefCell::default(),
            vs_ids: RefCell::default(),
            unions: RefCell::default(),
            union_ids: RefCell::default(),
            conditions: RefCell::default(),
            condition_ids: RefCell::default(),
            strings: RefCell::default(),
            simple_cache: RefCell::default(),
            labels: RefCell::default(),
            root_labels: RefCell::default(),
            requests: RefCell::default(),
            failure: RefCell::default(),
            steps: Cell::new(0),
        };
        p.name_ids.borrow_mut().reserve(all.len());
        p.names.borrow_mut().reserve(all.len());
        p.by_name.borrow_mut().reserve(all.len());
        p.solvables.borrow_mut().reserve(all.len());
        // Sorted by name within each origin: a name is looked up once per
        // run of its versions.
        let mut last: Option<(&str, NameId)> = None;
        let (mut provides, mut files) = (0, 0);
        for (origin, _, c) in all {
            let n = c.name.as_str();
            provides += c.provides.len();
            files += c.files.len();
            let name = match last {
                Some((l, id)) if l == n => id,
                _ => p.intern(Cow::Borrowed(n)),
            };
            last = Some((n, name));
            let i = p.add_solvable(name, Kind::Pkg(p.pkgs.len()));
            p.pkgs.push(Pkg {
                c,
                origin,
                nevra: OnceCell::new(),
                evr: OnceCell::new(),
                excluded: None,
                name,
            });
            if origin != Origin::Installed
                && let Some(first) = p.by_id.insert(c.id, i)
            {
                p.set_failure(super::duplicate_id(p.pkgs[first].c, c));
            }
        }
        let pkgs = || p.pkgs.iter().enumerate();
        p.provides = Index::new(provides, || {
            pkgs().flat_map(|(i, pkg)| {
                pkg.c
                    .provides
                    .iter()
                    .map(move |cap| (cap.name.as_str(), (i, cap)))
            })
        });
        p.files = Index::new(files, || {
            pkgs().flat_map(|(i, pkg)| pkg.c.files.iter().map(move |f| (f.as_str(), i)))
        });
        p.mark_excluded();
        p
    }

    fn mark_excluded(&mut self) {
        let mut installed: BTreeMap<NameId, Vec<usize>> = BTreeMap::new();
        for (i, pkg) in self.pkgs.iter().enumerate() {
            if pkg.origin == Origin::Installed {
                installed.entry(pkg.name).or_default().push(i);
            }
        }
        self.multi = installed
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(n, _)| *n)
            .collect();
        let arch = self.arch;
        for i in 0..self.pkgs.len() {
            let pkg = &self.pkgs[i];
            if pkg.origin == Origin::Installed {
                continue;
            }
            let reason = if pkg.c.arch == "src" || pkg.c.arch == "nosrc" {
                Some("it is a source package".to_string())
            } else if !arch.accepts(&pkg.c.arch) {
                Some(format!(
                    "its architecture {} does not fit an {arch} image",
                    pkg.c.arch
                ))
            } else {
                match installed.get(&pkg.name).map(Vec::as_slice) {
                    Some([one]) => {
                        let old = &self.pkgs[*one];
                        match compare_evr(pkg.evr(), old.evr()) {
                            Ordering::Less => Some(format!(
                                "it is older than the installed {} (nothing is downgraded)",
                                old.nevra()
                            )),
                            Ordering::Equal => {
                                Some(format!("{} is already installed", old.nevra()))
                            }
                            Ordering::Greater => None,
                        }
                    }
                    _ => None,
                }
            };
            self.pkgs[i].excluded = reason;
        }
    }

    fn intern_name(&self, name: &str) -> NameId {
        let known = self.name_ids.borrow().get(name).copied();
        known.unwrap_or_else(|| self.add_name(Cow::Owned(name.to_string())))
    }

    /// `name`'s id: a package's name is borrowed, not copied (there are
    /// as many as packages).
    fn intern(&self, name: Cow<'a, str>) -> NameId {
        let known = self.name_ids.borrow().get(name.as_ref()).copied();
        known.unwrap_or_else(|| self.add_name(name))
    }

    /// A name not interned yet.
    fn add_name(&self, name: Cow<'a, str>) -> NameId {
        let n = NameId::from_index(self.names.borrow().len());
        self.names.borrow_mut().push(name.clone());
        self.by_name.borrow_mut().push(SmallVec::new());
        self.name_ids.borrow_mut().insert(name, n);
        n
    }

    fn add_solvable(&self, name: NameId, kind: Kind) -> usize {
        let mut s = self.solvables.borrow_mut();
        let i = s.len();
        s.push((name, kind));
        self.by_name.borrow_mut()[name.to_index()].push(i);
        i
    }

    fn intern_string(&self, s: String) -> StringId {
        let mut v = self.strings.borrow_mut();
        v.push(s);
        StringId((v.len() - 1) as u32)
    }

    pub fn kind(&self, s: usize) -> Kind {
        self.solvables.borrow()[s].1.clone()
    }

    pub fn name_of(&self, n: NameId) -> String {
        self.names.borrow()[n.to_index()].to_string()
    }

    pub fn helper_text(&self, h: usize) -> String {
        text(&self.helpers.borrow()[h])
    }

    pub fn version_set(&self, vs: VersionSetId) -> VersionSet {
        self.version_sets.borrow()[vs.0 as usize].clone()
    }

    pub fn union(&self, u: VersionSetUnionId) -> Vec<VersionSetId> {
        self.unions.borrow()[u.0 as usize].clone()
    }

    pub fn string(&self, s: StringId) -> String {
        self.strings.borrow()[s.0 as usize].clone()
    }

    /// Every provides entry under `name`, with its package.
    pub fn provides_named(&self, name: &str) -> Vec<(usize, &'a Capability)> {
        self.provides.get(name).to_vec()
    }

    /// Every provides entry whose name starts with `prefix`.
    pub fn provides_starting(&self, prefix: &str) -> Vec<(usize, &'a Capability)> {
        let mut out: Vec<(usize, &Capability)> = self
            .provides
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        out
    }

    /// Listed paths ending in `/basename`, with their packages.
    pub fn files_named(&self, basename: &str) -> Vec<(usize, &'a str)> {
        let suffix = format!("/{basename}");
        let mut out: Vec<(usize, &str)> = self
            .files
            .iter()
            .filter(|(k, _)| k.ends_with(&suffix))
            .flat_map(|(k, v)| v.iter().map(move |&i| (i, k)))
            .collect();
        out.sort();
        out
    }

    fn set_failure(&self, e: ResolveError) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(e);
        }
    }

    pub fn take_failure(&self) -> Result<(), ResolveError> {
        match self.failure.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn pkg_order(&self, a: usize, b: usize) -> Ordering {
        candidate_order(self.pkgs[a].c, self.pkgs[b].c)
    }

    /// Packages that provide `s` (indexes, sorted); the hook is asked for a
    /// path nothing lists when `hook` is set.
    fn providers(&self, s: &Simple, hook: bool) -> Vec<usize> {
        let (flags, evr) = match &s.constraint {
            Some((op, evr)) => (op_flags(*op), evr.as_str()),
            None => (0, ""),
        };
        let mut out: Vec<usize> = self
            .provides
            .get(s.name.as_str())
            .iter()
            .filter(|(_, c)| ranges_overlap(c.flags, &c.evr, flags, evr))
            .map(|(i, _)| *i)
            .collect();
        // Every package provides `name = epoch:version-release`.
        if let Some(&n) = self.name_ids.borrow().get(s.name.as_str()) {
            out.extend(
                self.by_name.borrow()[n.to_index()]
                    .iter()
                    .filter(|&&i| i < self.pkgs.len())
                    .filter(|&&i| ranges_overlap(EQUAL, self.pkgs[i].evr(), flags, evr)),
            );
        }
        if s.name.starts_with('/') {
            out.extend(self.files.get(s.name.as_str()));
            if out.is_empty() && hook {
                out.extend(self.hooked_providers(&s.name));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn hooked_providers(&self, path: &str) -> Vec<usize> {
        if let Some(v) = self.hooked.borrow().get(path) {
            return v.clone();
        }
        let ids = match self.more_files.borrow_mut().providers(path) {
            Ok(ids) => ids,
            Err(message) => {
                self.set_failure(ResolveError::FileLists {
                    path: path.to_string(),
                    message,
                });
                Vec::new()
            }
        };
        let mut out = Vec::new();
        for id in ids {
            match self.by_id.get(&id) {
                Some(&i) => out.push(i),
                None => self.set_failure(ResolveError::UnknownFileProvider {
                    path: path.to_string(),
                    id,
                }),
            }
        }
        out.sort_unstable();
        out.dedup();
        self.hooked
            .borrow_mut()
            .insert(path.to_string(), out.clone());
        out
    }

    /// Is `r` true of the packages `has` holds? (Never asks the hook.)
    fn holds(&self, r: &Rich, has: &dyn Fn(usize) -> bool) -> bool {
        match r {
            Rich::Dep(s) => self.providers(s, false).into_iter().any(has),
            Rich::And(v) => v.iter().all(|x| self.holds(x, has)),
            Rich::Or(v) => v.iter().any(|x| self.holds(x, has)),
            Rich::If(a, c, e) => match self.holds(c, has) {
                true => self.holds(a, has),
                false => e.as_ref().is_none_or(|e| self.holds(e, has)),
            },
            Rich::Unless(a, c, e) => match self.holds(c, has) {
                false => self.holds(a, has),
                true => e.as_ref().is_none_or(|e| self.holds(e, has)),
            },
            Rich::With(_) | Rich::Without(..) => self
                .members(r, false)
                .is_some_and(|m| m.into_iter().any(has)),
        }
    }

    /// The packages a simple expression (a dependency, `with` or `without`
    /// of dependencies) names; `None` for other shapes.
    fn members(&self, r: &Rich, hook: bool) -> Option<Vec<usize>> {
        let simple = |r: &Rich| match r {
            Rich::Dep(s) => Some(self.providers(s, hook)),
            _ => None,
        };
        match r {
            Rich::Dep(_) => simple(r),
            Rich::With(v) => {
                let mut sets = v.iter().map(simple);
                let mut common: Vec<usize> = sets.next()??;
                for s in sets {
                    let s = s?;
                    common.retain(|p| s.binary_search(p).is_ok());
                }
                Some(common)
            }
            Rich::Without(a, b) => {
                let mut left = simple(a)?;
                let right = simple(b)?;
                left.retain(|p| right.binary_search(p).is_err());
                Some(left)
            }
            _ => None,
        }
    }

    fn intern_vs(&self, vs: VersionSet) -> VersionSetId {
        if let Some(&id) = self.vs_ids.borrow().get(&vs) {
            return id;
        }
        let id = VersionSetId(self.version_sets.borrow().len() as u32);
        self.version_sets.borrow_mut().push(vs.clone());
        self.vs_ids.borrow_mut().insert(vs, id);
        id
    }

    /// The name no package has, standing for what nothing provides.
    fn nothing(&self, label: &str) -> VersionSetId {
        let name = self.intern_name(&format!("<nothing provides {label}>"));
        self.intern_vs(VersionSet {
            name,
            members: Vec::new(),
            invert: false,
            label: label.to_string(),
        })
    }

    /// Version sets of `members` (package indexes), one per name, in the
    /// order of preference among names.
    fn group(&self, members: &[usize], label: &str, invert: bool) -> Vec<VersionSetId> {
        let mut names: BTreeMap<NameId, Vec<usize>> = BTreeMap::new();
        for &i in members {
            names.entry(self.pkgs[i].name).or_default().push(i);
        }
        let mut groups: Vec<(NameId, Vec<usize>)> = names.into_iter().collect();
        let key = |v: &Vec<usize>| {
            let p = &self.pkgs;
            let usable = v.iter().any(|&i| p[i].excluded.is_none());
            let installed = v.iter().any(|&i| p[i].origin == Origin::Installed)
                || self.by_name.borrow()[p[v[0]].name.to_index()]
                    .iter()
                    .any(|&i| i < p.len() && p[i].origin == Origin::Installed);
            let priority = v
                .iter()
                .filter(|&&i| p[i].excluded.is_none())
                .map(|&i| self.priority(i))
                .min()
                .unwrap_or(i64::MAX);
            (!usable, !installed, priority)
        };
        groups.sort_by(|a, b| {
            key(&a.1)
                .cmp(&key(&b.1))
                .then_with(|| self.pkgs[a.1[0]].c.name.cmp(&self.pkgs[b.1[0]].c.name))
        });
        groups
            .into_iter()
            .map(|(name, members)| {
                self.intern_vs(VersionSet {
                    name,
                    members,
                    invert,
                    label: label.to_string(),
                })
            })
            .collect()
    }

    fn priority(&self, i: usize) -> i64 {
        match self.pkgs[i].origin {
            Origin::Installed | Origin::Local => i64::MIN,
            Origin::Available => self.pkgs[i].c.priority as i64,
        }
    }

    fn requirement(&self, vsets: Vec<VersionSetId>, label: &str) -> Requirement {
        let mut seen = HashSet::new();
        let vsets: Vec<VersionSetId> = vsets.into_iter().filter(|v| seen.insert(*v)).collect();
        let req = if vsets.len() == 1 {
            Requirement::Single(vsets[0])
        } else {
            let existing = self.union_ids.borrow().get(&vsets).copied();
            let id = existing.unwrap_or_else(|| {
                let id = VersionSetUnionId(self.unions.borrow().len() as u32);
                self.unions.borrow_mut().push(vsets.clone());
                self.union_ids.borrow_mut().insert(vsets, id);
                id
            });
            Requirement::Union(id)
        };
        self.labels
            .borrow_mut()
            .entry(req)
            .or_insert_with(|| label.to_string());
        req
    }

    /// Does `pkgs[j]` obsolete `pkgs[i]`?
    pub fn obsoletes(&self, j: usize, i: usize) -> bool {
        let (a, b) = (&self.pkgs[j], &self.pkgs[i]);
        a.name != b.name
            && a.c
                .obsoletes
                .iter()
                .any(|o| o.name == b.c.name && ranges_overlap(EQUAL, b.evr(), o.flags, &o.evr))
    }

    pub fn candidate_cmp(&self, a: usize, b: usize) -> Ordering {
        let n = self.pkgs.len();
        if a >= n || b >= n {
            return a.cmp(&b);
        }
        let (pa, pb) = (&self.pkgs[a], &self.pkgs[b]);
        let arch_rank = |p: &Pkg| (p.c.arch != self.arch.name()) as u8;
        (pa.origin != Origin::Installed)
            .cmp(&(pb.origin != Origin::Installed))
            .then_with(|| pa.excluded.is_some().cmp(&pb.excluded.is_some()))
            .then_with(|| self.priority(a).cmp(&self.priority(b)))
            .then_with(|| compare_evr(pb.evr(), pa.evr()))
            .then_with(|| arch_rank(pa).cmp(&arch_rank(pb)))
            .then_with(|| self.pkg_order(a, b))
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, s: SolvableId) -> impl std::fmt::Display + '_ {
        match self.kind(s.to_index()) {
            Kind::Pkg(i) => self.pkgs[i].nevra().to_string(),
            Kind::Helper(h) => self.helper_text(h),
            Kind::OptOut => "leaving it out".to_string(),
        }
    }

    fn display_name(&self, name: NameId) -> impl std::fmt::Display + '_ {
        self.name_of(name)
    }

    fn display_version_set(&self, vs: VersionSetId) -> impl std::fmt::Display + '_ {
        self.version_set(vs).label
    }

    fn display_string(&self, s: StringId) -> impl std::fmt::Display + '_ {
        self.string(s)
    }

    fn version_set_name(&self, vs: VersionSetId) -> NameId {
        self.version_sets.borrow()[vs.0 as usize].name
    }

    fn solvable_name(&self, s: SolvableId) -> NameId {
        self.solvables.borrow()[s.to_index()].0
    }

    fn version_sets_in_union(&self, u: VersionSetUnionId) -> impl Iterator<Item = VersionSetId> {
        self.union(u).into_iter()
    }

    fn resolve_condition(&self, c: ConditionId) -> Condition {
        self.conditions.borrow()[c.to_index()].clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        vs: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let sets = self.version_sets.borrow();
        let set = &sets[vs.0 as usize];
        candidates
            .iter()
            .copied()
            .filter(|s| (set.members.binary_search(&s.to_index()).is_ok() != set.invert) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let members = self.by_name.borrow()[name.to_index()].clone();
        let mut c = Candidates {
            allow_multiple: self.multi.contains(&name),
            ..Candidates::default()
        };
        let installed: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| i < self.pkgs.len() && self.pkgs[i].origin == Origin::Installed)
            .collect();
        if let [one] = installed[..] {
            c.favored = Some(sid(one));
        }
        for &i in &members {
            c.candidates.push(sid(i));
            if let Some(reason) = self.pkgs.get(i).and_then(|p| p.excluded.clone()) {
                c.excluded.push((sid(i), self.intern_string(reason)));
            }
        }
        Some(c)
    }

    async fn sort_candidates(&self, _: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|a, b| self.candidate_cmp(a.to_index(), b.to_index()));
    }

    async fn get_dependencies(&self, s: SolvableId) -> Dependencies {
        let result = match self.kind(s.to_index()) {
            Kind::Pkg(i) => self.pkg_dependencies(i),
            Kind::Helper(h) => {
                let r = self.helpers.borrow()[h].clone();
                let mut deps = KnownDependencies::default();
                self.encode(&r, None, &mut deps.requirements).map(|_| deps)
            }
            Kind::OptOut => Ok(KnownDependencies::default()),
        };
        match result {
            Ok(d) => Dependencies::Known(d),
            Err(reason) => Dependencies::Unknown(self.intern_string(reason)),
        }
    }

    fn should_cancel_with_value(&self) -> Option<Box<dyn std::any::Any>> {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > self.max_steps {
            self.set_failure(ResolveError::TooMuchWork {
                limit: self.max_steps,
            });
        }
        self.failure
            .borrow()
            .is_some()
            .then(|| Box::new(()) as Box<dyn std::any::Any>)
    }
}

#[cfg(test)]
mod tests {
    use super::{Index, name_key};

    #[test]
    fn name_keys_that_differ_order_names_as_the_names_do() {
        let names = [
            "",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh-libs",
            "abcdefgi",
            "abcdefg",
            "b",
            "\u{e9}t\u{e9}",
            "zzzzzzzzzz",
            "glibc",
            "glibc-common",
            "python3",
        ];
        for a in names {
            for b in names {
                let (ka, kb) = (name_key(a), name_key(b));
                if ka != kb {
                    assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} against {b:?}");
                }
            }
            assert_eq!(name_key(a), name_key(a));
        }
        // Names apart only after their eighth byte share a key.
        assert_eq!(name_key("abcdefgh"), name_key("abcdefgh-libs"));
    }

    #[test]
    fn an_index_keeps_each_names_items_in_order() {
        let entries = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("b", 5), ("a", 6)];
        // A hint under the count is only a hint.
        let index = Index::new(2, || entries.iter().copied());
        assert_eq!(index.get("a"), &[2, 6]);
        assert_eq!(index.get("b"), &[1, 3, 5]);
        assert_eq!(index.get("c"), &[4]);
        assert!(index.get("d").is_empty());
        let mut all: Vec<(&str, Vec<i32>)> = index.iter().map(|(k, v)| (k, v.to_vec())).collect();
        all.sort();
        assert_eq!(
            all,
            [("a", vec![2, 6]), ("b", vec![1, 3, 5]), ("c", vec![4])]
        );
        let empty: Index<'_, i32> = Index::new(0, std::iter::empty);
        assert!(empty.get("a").is_empty());
        assert_eq!(empty.iter().count(), 0);
    }
}
