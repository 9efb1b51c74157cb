//! Dependency resolution: which packages from the repositories an image
//! needs, given what its base already has.
//!
//! In: the installed set (the base's rpm database, as [`Candidate`]s made
//! by [`Candidate::from_header`]), the candidates the repositories offer
//! (plain [`Candidate`]s: whoever reads repository metadata fills them in,
//! with an opaque `id` to find the download again), and a [`Request`]:
//! names or capabilities with optional versions (`"nginx"`,
//! `"python3-requests >= 2.25"`, `"/usr/bin/perl"`, `"(nginx or httpd)"`),
//! local packages that must be installed (built or given RPMs), whether
//! weak dependencies count, and the image's architecture. File lists
//! beyond what a candidate lists (repository `primary` lists only some
//! paths) come from a [`MoreFiles`] hook, asked only for a path no package
//! lists at all, so the big file lists are read only when a dependency
//! needs them.
//!
//! Out: a [`Resolution`]: the candidates to install and the installed
//! packages they replace (upgraded or obsoleted), sorted by name, version
//! and architecture. The same inputs give the same answer whatever the
//! order they come in. Or a [`ResolveError`]; when nothing works it is
//! [`ResolveError::Unsatisfiable`], whose text tells the chain: what was
//! asked, which package needs what, what was considered and why each
//! option failed, and what is offered instead under similar names
//! ("web-1.0-1.x86_64 requires libfoo.so.1()(64bit), which nothing
//! provides; libfoo-2.0-1.x86_64 provides only libfoo.so.2()(64bit)").
//!
//! ## Semantics (rpm's, as `dnf install` applies them)
//!
//! - Versioned provides match versioned requirements by rpm's EVR
//!   comparison (epoch, version, release; a side without a release matches
//!   any release; [`crate::install::deps::ranges_overlap`]). Every package
//!   provides its own `name = epoch:version-release`.
//! - File requirements (`/…`) are met by the provides and file lists of
//!   packages, then by the hook.
//! - Requirements may be rich (`and`, `or`, `if`/`else`, `unless`/`else`,
//!   `with`, `without`, nested). Conflicts are simple or rich with `or`,
//!   `with`, `without`; a rich conflict of another shape makes its package
//!   uninstallable, with that reason in any explanation.
//! - Obsoletes match package names (as dnf's default): the obsoleting
//!   package replaces an installed package it obsoletes, and the two never
//!   coexist. Nothing conflicts with or obsoletes itself.
//! - One version per package name (names installed in several versions,
//!   such as `gpg-pubkey`, keep all of them).
//! - Architecture: `noarch` and the image's own; no multilib (an `i686`
//!   package is never installed into an `x86_64` image). Source packages
//!   never.
//! - Preference among the versions of a name: the installed one, then the
//!   lowest `priority` number, then the highest version. Among packages of
//!   different names that provide the same capability (libsolv's order):
//!   a name already installed, then the lowest priority number, then the
//!   name in byte order. The solver takes the first preference and
//!   backtracks from it only when it leads to a conflict.
//! - The installed set is the start: every installed package stays, at
//!   its version, unless a chosen package needs it newer (then it is
//!   upgraded) or obsoletes it. Nothing is downgraded, nothing is erased
//!   to make room. Requirements and conflicts of installed packages are
//!   kept true, except those the base already breaks (a base extracted
//!   from a container image often lacks what its packages require).
//! - Weak dependencies (only with [`Request::weak_deps`]): once the
//!   required set is solved and fixed, the recommendations of the newly
//!   installed packages, and the packages whose supplements the new set
//!   makes true, are added when they can be, as dnf does; one that cannot
//!   be installed is left out, never the reason for a failure.
//!
//! ## Limits
//!
//! [`Limits`] bounds the number of candidates, the number of dependency
//! entries they carry, and the solver's work (propagation rounds); past
//! one, resolution stops with an error naming the limit. Rich
//! dependencies are bounded by [`crate::spec::dep`]'s depth and size limits;
//! an explanation by a number of lines and of levels of the chain it
//! follows (a chain thousands of packages long is cut, not recursed).
//!
//! ## Why resolvo
//!
//! The solver is `resolvo`, the CDCL SAT solver of the conda and PyPI
//! resolvers in pixi and rattler: maintained, fast on large repositories,
//! lazy (it asks for a package's dependencies only when it considers the
//! package, so most of a 20,000-package repository is never encoded),
//! deterministic, and it explains unsatisfiable problems as a graph of the
//! clauses involved, which `explain` puts into words. Its model is
//! conda's (solvables grouped by name, version sets per name), so rpm's
//! capabilities become unions of per-name version sets, conflicts and
//! obsoletes become constraints, rich dependencies become conditional
//! requirements and helper solvables, and weak dependencies become
//! requirements with a way out (`provider`). libsolv, dnf's solver, is C;
//! pubgrub, the other maintained Rust solver, has no virtual provides.

mod explain;
mod provider;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};

use resolvo::{ConditionalRequirement, Problem, Solver, UnsolvableOrCancelled};

use crate::arch::Arch;
use compact_str::CompactString;

use crate::install::deps::{Capability, compare_evr_parts};
use crate::rpm::header::{Header, tag};

use provider::{Kind, Origin, Provider};

/// One package: installed, offered by a repository, or local.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// The caller's handle (index into its own list of downloads, say);
    /// unique among the available and local candidates.
    pub id: usize,
    pub name: CompactString,
    /// 0 when the package has none.
    pub epoch: u32,
    pub version: CompactString,
    pub release: CompactString,
    pub arch: CompactString,
    /// The repository's name (`@System` for installed packages by custom),
    /// shared by all the candidates of one repository.
    pub repo: std::sync::Arc<str>,
    /// dnf's repository priority: lower wins (dnf's default is 99).
    pub priority: i32,
    pub provides: Vec<Capability>,
    pub requires: Vec<Capability>,
    pub conflicts: Vec<Capability>,
    pub obsoletes: Vec<Capability>,
    pub recommends: Vec<Capability>,
    pub supplements: Vec<Capability>,
    /// The paths the caller knows the package has (`primary`'s list for a
    /// repository package, the whole list for an installed or local one).
    pub files: Vec<String>,
}

impl Candidate {
    /// `[epoch:]version-release`, the epoch only when it is not 0.
    pub fn evr(&self) -> String {
        crate::package::evr_text(u64::from(self.epoch), &self.version, &self.release)
    }

    /// `name-[epoch:]version-release.arch`, as `rpm -q` prints it.
    pub fn nevra(&self) -> String {
        crate::package::nevra_text(
            &self.name,
            u64::from(self.epoch),
            &self.version,
            &self.release,
            &self.arch,
        )
    }

    /// What a package header says (an installed record or a package file).
    pub fn from_header(h: &Header, id: usize, repo: &str, priority: i32) -> Candidate {
        let caps = |names, flags, versions| crate::install::deps::caps(h, names, flags, versions);
        let files = crate::install::deps::file_paths(h);
        Candidate {
            id,
            name: h.string(tag::NAME).unwrap_or_default().into(),
            epoch: h.int(tag::EPOCH).unwrap_or(0) as u32,
            version: h.string(tag::VERSION).unwrap_or_default().into(),
            release: h.string(tag::RELEASE).unwrap_or_default().into(),
            arch: h.string(tag::ARCH).unwrap_or_default().into(),
            repo: repo.into(),
            priority,
            provides: caps(tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION),
            requires: caps(tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION),
            conflicts: caps(tag::CONFLICTNAME, tag::CONFLICTFLAGS, tag::CONFLICTVERSION),
            obsoletes: caps(tag::OBSOLETENAME, tag::OBSOLETEFLAGS, tag::OBSOLETEVERSION),
            recommends: caps(
                tag::RECOMMENDNAME,
                tag::RECOMMENDFLAGS,
                tag::RECOMMENDVERSION,
            ),
            supplements: caps(
                tag::SUPPLEMENTNAME,
                tag::SUPPLEMENTFLAGS,
                tag::SUPPLEMENTVERSION,
            ),
            files,
        }
    }

    /// Dependency entries it carries, for [`Limits::dependencies`].
    fn entries(&self) -> usize {
        self.provides.len()
            + self.requires.len()
            + self.conflicts.len()
            + self.obsoletes.len()
            + self.recommends.len()
            + self.supplements.len()
            + self.files.len()
    }
}

/// What to resolve.
#[derive(Debug, Clone)]
pub struct Request {
    /// Names or capabilities, each with an optional comparison, or a rich
    /// dependency: what `dnf install` takes. A name that some package has
    /// means that package; otherwise whatever provides it.
    pub install: Vec<String>,
    /// Packages that must be installed as they are (built or given RPMs);
    /// their dependencies are resolved too.
    pub local: Vec<Candidate>,
    /// Recommends and Supplements count (best effort).
    pub weak_deps: bool,
    pub arch: Arch,
}

/// Bounds on the work one resolution may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Installed, available and local packages together.
    pub candidates: usize,
    /// Provides, requires, conflicts, obsoletes, recommends, supplements
    /// and listed files of all of them together.
    pub dependencies: usize,
    /// Solver propagation rounds, over all passes.
    pub steps: u64,
    /// Passes that add weak dependencies (each adds those the previous
    /// pass's new packages recommend).
    pub weak_passes: usize,
}

impl Default for Limits {
    /// Room for several repositories the size of Amazon Linux 2023's
    /// (about 20,000 packages, a few million dependency entries with
    /// primary's file lists).
    fn default() -> Self {
        Limits {
            candidates: 500_000,
            dependencies: 50_000_000,
            steps: 5_000_000,
            weak_passes: 16,
        }
    }
}

/// File lists beyond what the candidates list, read only when needed.
pub trait MoreFiles {
    /// The ids of the available candidates whose full file list holds
    /// `path`. Asked at most once per path, only for a path that no
    /// candidate's provides or file list has.
    fn providers(&mut self, path: &str) -> Result<Vec<usize>, String>;
}

/// No file lists beyond the candidates' own.
pub struct NoMoreFiles;

impl MoreFiles for NoMoreFiles {
    fn providers(&mut self, _path: &str) -> Result<Vec<usize>, String> {
        Ok(Vec::new())
    }
}

impl<F: FnMut(&str) -> Result<Vec<usize>, String>> MoreFiles for F {
    fn providers(&mut self, path: &str) -> Result<Vec<usize>, String> {
        self(path)
    }
}

/// Why a package is in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Named by the request, or a local package.
    Requested,
    /// Needed by another package.
    Dependency,
    /// Recommended or supplementing (only with weak dependencies).
    Weak,
}

/// A package to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The candidate's `id`.
    pub id: usize,
    pub nevra: String,
    pub local: bool,
    pub reason: Reason,
}

/// How an installed package goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// A newer version of the same name replaces it.
    Upgrade,
    /// A package of another name obsoletes it.
    Obsoleted,
}

/// An installed package the answer replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The installed candidate's `id`.
    pub id: usize,
    pub nevra: String,
    pub how: Replacement,
    /// The NEVRA of the package that replaces it.
    pub by: String,
}

/// The answer: what to install, what it replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Sorted by name, then version, then architecture.
    pub install: Vec<Chosen>,
    /// Sorted the same way.
    pub replaced: Vec<Replaced>,
}

/// Why resolution stopped.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the request `{text}` cannot be read: {message}")]
    BadRequest { text: String, message: String },
    #[error("two candidates have the id {id}: {first} and {second}")]
    DuplicateId {
        id: usize,
        first: String,
        second: String,
    },
    #[error("{count} candidate packages are more than the limit of {limit}")]
    TooManyCandidates { count: usize, limit: usize },
    #[error("the candidates carry {count} dependency entries, more than the limit of {limit}")]
    TooManyDependencies { count: usize, limit: usize },
    #[error("the solver gave up after {limit} steps without an answer (the limit)")]
    TooMuchWork { limit: u64 },
    #[error("the file lists could not be read for `{path}`: {message}")]
    FileLists { path: String, message: String },
    #[error("the file lists name candidate id {id} for `{path}`, which is no available candidate")]
    UnknownFileProvider { path: String, id: usize },
    #[error("the request cannot be met:\n{explanation}")]
    Unsatisfiable { explanation: String },
}

/// Resolve `request` against the installed set and the repositories'
/// candidates.
pub fn resolve(
    installed: &[Candidate],
    available: &[Candidate],
    request: &Request,
    more_files: &mut dyn MoreFiles,
    limits: &Limits,
) -> Result<Resolution, ResolveError> {
    check_input(installed, available, request, limits)?;
    let provider = Provider::new(installed, available, request, more_files, limits.steps);
    provider.take_failure()?;
    let roots = provider.root_requirements(&request.install)?;
    provider.take_failure()?;
    let mut solver = Solver::new(provider);
    let mut chosen = solve(&mut solver, roots.clone())?;
    let weak = if request.weak_deps {
        add_weak(&mut solver, &roots, &mut chosen, limits)?
    } else {
        BTreeSet::new()
    };
    Ok(answer(solver.provider(), &chosen, &weak))
}

fn check_input(
    installed: &[Candidate],
    available: &[Candidate],
    request: &Request,
    limits: &Limits,
) -> Result<(), ResolveError> {
    let all = || installed.iter().chain(available).chain(&request.local);
    let count = all().count();
    if count > limits.candidates {
        return Err(ResolveError::TooManyCandidates {
            count,
            limit: limits.candidates,
        });
    }
    let entries: usize = all().map(Candidate::entries).sum();
    if entries > limits.dependencies {
        return Err(ResolveError::TooManyDependencies {
            count: entries,
            limit: limits.dependencies,
        });
    }
    // Two candidates of one id: the provider finds them as it numbers
    // them (see `Provider::new`).
    Ok(())
}

/// The error for two candidates that share an id.
fn duplicate_id(a: &Candidate, b: &Candidate) -> ResolveError {
    let mut both = [a.nevra(), b.nevra()];
    both.sort();
    let [first, second] = both;
    ResolveError::DuplicateId {
        id: a.id,
        first,
        second,
    }
}

/// One solver pass. Solvables in the answer, as indexes.
fn solve(
    solver: &mut Solver<Provider<'_>>,
    requirements: Vec<ConditionalRequirement>,
) -> Result<BTreeSet<usize>, ResolveError> {
    let result = solver.solve(Problem::new().requirements(requirements));
    let failure = solver.provider().take_failure();
    match result {
        Ok(ids) => {
            failure?;
            Ok(ids.into_iter().map(resolvo::DenseIndex::to_index).collect())
        }
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            failure?;
            let graph = conflict.graph(solver);
            Err(ResolveError::Unsatisfiable {
                explanation: explain::render(&graph, solver.provider()),
            })
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => {
            Err(failure.err().unwrap_or(ResolveError::TooMuchWork {
                limit: solver.provider().max_steps,
            }))
        }
    }
}

/// Passes that add weak dependencies to `chosen`, each with everything
/// chosen before fixed. Returns the solvables they added.
fn add_weak(
    solver: &mut Solver<Provider<'_>>,
    roots: &[ConditionalRequirement],
    chosen: &mut BTreeSet<usize>,
    limits: &Limits,
) -> Result<BTreeSet<usize>, ResolveError> {
    let hard = chosen.clone();
    let mut asked: HashSet<String> = HashSet::new();
    let mut weak_reqs: Vec<ConditionalRequirement> = Vec::new();
    for _ in 0..limits.weak_passes {
        let new = solver.provider().weak_requirements(chosen, &mut asked);
        if new.is_empty() {
            break;
        }
        weak_reqs.extend(new);
        let mut reqs = roots.to_vec();
        reqs.extend(solver.provider().locks(chosen));
        reqs.extend(weak_reqs.iter().copied());
        match solve(solver, reqs) {
            Ok(next) => *chosen = next,
            // Every weak requirement has a way out, and everything before
            // is fixed, so this pass cannot fail on dependencies; if it
            // does, what was solved before stands.
            Err(ResolveError::Unsatisfiable { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(chosen.difference(&hard).copied().collect())
}

/// The chosen solvables as the answer.
fn answer(p: &Provider<'_>, chosen: &BTreeSet<usize>, weak: &BTreeSet<usize>) -> Resolution {
    let requested = p.requested_solvables(chosen);
    let mut install = Vec::new();
    let mut present: BTreeSet<usize> = BTreeSet::new();
    for &s in chosen {
        let Kind::Pkg(i) = p.kind(s) else { continue };
        present.insert(i);
        let pkg = &p.pkgs[i];
        if pkg.origin == Origin::Installed {
            continue;
        }
        let reason = if requested.contains(&s) || pkg.origin == Origin::Local {
            Reason::Requested
        } else if weak.contains(&s) {
            Reason::Weak
        } else {
            Reason::Dependency
        };
        install.push((
            i,
            Chosen {
                id: pkg.c.id,
                nevra: pkg.nevra().to_string(),
                local: pkg.origin == Origin::Local,
                reason,
            },
        ));
    }
    let mut replaced = Vec::new();
    for (i, pkg) in p.pkgs.iter().enumerate() {
        if pkg.origin != Origin::Installed || present.contains(&i) {
            continue;
        }
        let same_name = install.iter().find(|(j, _)| p.pkgs[*j].name == pkg.name);
        let (how, by) = match same_name {
            Some((_, c)) => (Replacement::Upgrade, c.nevra.clone()),
            None => (
                Replacement::Obsoleted,
                install
                    .iter()
                    .find(|(j, _)| p.obsoletes(*j, i))
                    .map(|(_, c)| c.nevra.clone())
                    .unwrap_or_default(),
            ),
        };
        replaced.push((
            i,
            Replaced {
                id: pkg.c.id,
                nevra: pkg.nevra().to_string(),
                how,
                by,
            },
        ));
    }
    install.sort_by(|a, b| p.pkg_order(a.0, b.0));
    replaced.sort_by(|a, b| p.pkg_order(a.0, b.0));
    Resolution {
        install: install.into_iter().map(|(_, c)| c).collect(),
        replaced: replaced.into_iter().map(|(_, r)| r).collect(),
    }
}

/// Name, then EVR, then arch, then repository, priority and id.
fn candidate_order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| compare_candidate_evr(a, b))
        .then_with(|| a.arch.cmp(&b.arch))
        .then_with(|| a.repo.cmp(&b.repo))
        .then_with(|| a.priority.cmp(&b.priority))
        .then_with(|| a.id.cmp(&b.id))
}

/// [`compare_evr`] of two candidates' [`full_evr`]s, from their parts:
/// the sort of a repository's packages compares thousands of pairs.
fn compare_candidate_evr(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let (va, ra, vb, rb) = (&a.version, &a.release, &b.version, &b.release);
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_evr_parts(("", va, ra), ("", vb, rb)))
}

/// `epoch:version-release`, always with the epoch, for comparisons.
fn full_evr(c: &Candidate) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(c.version.len() + c.release.len() + 8);
    let _ = write!(s, "{}:", c.epoch);
    s.push_str(&c.version);
    s.push('-');
    s.push_str(&c.release);
    s
}
