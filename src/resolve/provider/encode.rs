//! Dependencies as resolvo requirements: simple and rich requirements,
//! conflicts and obsoletes as constraints, what the root requires (the
//! installed set, local packages, the request), and the weak requirements
//! of a pass.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use resolvo::{
    Condition, ConditionId, ConditionalRequirement, DenseIndex, KnownDependencies, LogicalOperator,
    NameId, Requirement, VersionSetId,
};

use super::{EQUAL, Kind, Origin, Provider, VersionSet, expression, text};
use crate::install::deps::{RPMLIB_FEATURES, ranges_overlap};
use crate::resolve::ResolveError;
use crate::spec::dep::{self, Dependency, Rich};

impl<'a> Provider<'a> {
    /// Version sets of the providers of a simple expression, or of nothing.
    fn literal_sets(&self, r: &Rich) -> Option<Vec<VersionSetId>> {
        let label = text(r);
        if let Some(v) = self.simple_cache.borrow().get(&label) {
            return Some(v.clone());
        }
        let members = self.members(r, true)?;
        let sets = if members.is_empty() {
            vec![self.nothing(&label)]
        } else {
            self.group(&members, &label, false)
        };
        self.simple_cache.borrow_mut().insert(label, sets.clone());
        Some(sets)
    }

    /// Version sets any one of which meets `r`.
    fn positive(&self, r: &Rich) -> Result<Vec<VersionSetId>, String> {
        match r {
            Rich::Dep(_) | Rich::With(_) | Rich::Without(..) => self
                .literal_sets(r)
                .ok_or_else(|| format!("`{}` has `with`/`without` of more than names", text(r))),
            Rich::Or(v) => {
                // The packages of every simple operand, ordered as one set
                // of providers (by name preference, as libsolv chooses),
                // then the other operands in the order written.
                let mut members = Vec::new();
                let mut rest = Vec::new();
                for x in v {
                    match self.members(x, true) {
                        Some(m) => members.extend(m),
                        None => rest.extend(self.positive(x)?),
                    }
                }
                members.sort_unstable();
                members.dedup();
                let mut out = match members.is_empty() && !rest.is_empty() {
                    true => Vec::new(),
                    false if members.is_empty() => vec![self.nothing(&text(r))],
                    false => self.group(&members, &text(r), false),
                };
                out.extend(rest);
                Ok(out)
            }
            Rich::And(_) | Rich::If(..) | Rich::Unless(..) => Ok(vec![self.helper(r)]),
        }
    }

    /// The helper solvable that stands for `r`, as a version set.
    fn helper(&self, r: &Rich) -> VersionSetId {
        let t = text(r);
        let existing = self.helper_ids.borrow().get(&t).copied();
        let s = existing.unwrap_or_else(|| {
            let h = self.helpers.borrow().len();
            self.helpers.borrow_mut().push(r.clone());
            let s = self.add_solvable(self.intern_name(&t), Kind::Helper(h));
            self.helper_ids.borrow_mut().insert(t.clone(), s);
            s
        });
        let name = self.solvables.borrow()[s].0;
        self.intern_vs(VersionSet {
            name,
            members: vec![s],
            invert: false,
            label: t,
        })
    }

    fn intern_condition(&self, c: Condition) -> ConditionId {
        if let Some(&id) = self.condition_ids.borrow().get(&c) {
            return id;
        }
        let id = ConditionId::from_index(self.conditions.borrow().len());
        self.conditions.borrow_mut().push(c.clone());
        self.condition_ids.borrow_mut().insert(c, id);
        id
    }

    fn both(&self, a: Option<ConditionId>, b: ConditionId) -> ConditionId {
        match a {
            None => b,
            Some(a) => self.intern_condition(Condition::Binary(LogicalOperator::And, a, b)),
        }
    }

    fn chain(&self, op: LogicalOperator, v: Vec<ConditionId>) -> Option<ConditionId> {
        v.into_iter()
            .reduce(|a, b| self.intern_condition(Condition::Binary(op, a, b)))
    }

    /// `r` as a condition; `None` when it can never be true.
    fn condition(&self, r: &Rich) -> Result<Option<ConditionId>, String> {
        match r {
            Rich::Dep(_) | Rich::With(_) | Rich::Without(..) => {
                let Some(members) = self.members(r, true) else {
                    return Err(format!(
                        "`{}` has `with`/`without` of more than names",
                        text(r)
                    ));
                };
                let sets = self.group(&members, &text(r), false);
                let ids = sets
                    .into_iter()
                    .map(|vs| self.intern_condition(Condition::Requirement(vs)))
                    .collect();
                Ok(self.chain(LogicalOperator::Or, ids))
            }
            Rich::And(v) => {
                let mut ids = Vec::new();
                for x in v {
                    match self.condition(x)? {
                        Some(c) => ids.push(c),
                        None => return Ok(None),
                    }
                }
                Ok(self.chain(LogicalOperator::And, ids))
            }
            Rich::Or(v) => {
                let mut ids = Vec::new();
                for x in v {
                    ids.extend(self.condition(x)?);
                }
                Ok(self.chain(LogicalOperator::Or, ids))
            }
            Rich::If(..) | Rich::Unless(..) => Err(format!(
                "`{}` puts `if`/`unless` inside a condition, which ingot cannot solve",
                text(r)
            )),
        }
    }

    /// Requirements that make `r` true (under `cond`).
    pub(super) fn encode(
        &self,
        r: &Rich,
        cond: Option<ConditionId>,
        out: &mut Vec<ConditionalRequirement>,
    ) -> Result<(), String> {
        let push = |out: &mut Vec<ConditionalRequirement>, sets, label: &str| {
            out.push(ConditionalRequirement {
                condition: cond,
                requirement: self.requirement(sets, label),
            })
        };
        match r {
            Rich::And(v) => {
                for x in v {
                    self.encode(x, cond, out)?;
                }
            }
            Rich::If(a, c, e) => {
                if let Some(c_id) = self.condition(c)? {
                    self.encode(a, Some(self.both(cond, c_id)), out)?;
                }
                if let Some(e) = e {
                    // Without the condition, the `else` branch: offered
                    // first, so the condition is not installed to avoid it.
                    let mut sets = self.positive(e)?;
                    sets.extend(self.positive(c)?);
                    push(out, sets, &text(r));
                }
            }
            Rich::Unless(a, c, e) => {
                let mut sets = self.positive(a)?;
                sets.extend(self.positive(c)?);
                push(out, sets, &text(r));
                if let Some(e) = e
                    && let Some(c_id) = self.condition(c)?
                {
                    self.encode(e, Some(self.both(cond, c_id)), out)?;
                }
            }
            Rich::Dep(_) | Rich::Or(_) | Rich::With(_) | Rich::Without(..) => {
                let sets = self.positive(r)?;
                push(out, sets, &text(r));
            }
        }
        Ok(())
    }

    /// Packages a conflict names: a dependency, `with`, `without`, or an
    /// `or` of those.
    fn conflict_members(&self, r: &Rich) -> Result<Vec<usize>, String> {
        if let Some(m) = self.members(r, true) {
            return Ok(m);
        }
        match r {
            Rich::Or(v) => {
                let mut out = Vec::new();
                for x in v {
                    out.extend(self.conflict_members(x)?);
                }
                out.sort_unstable();
                out.dedup();
                Ok(out)
            }
            _ => Err(format!(
                "the conflict `{}` has a shape ingot cannot solve (only or, with and without)",
                text(r)
            )),
        }
    }

    /// A package's requirements and constraints, or why it cannot be
    /// installed.
    pub(super) fn pkg_dependencies(&self, i: usize) -> Result<KnownDependencies, String> {
        let pkg = &self.pkgs[i];
        let installed = pkg.origin == Origin::Installed;
        let was_installed = |j: usize| self.pkgs[j].origin == Origin::Installed;
        let mut deps = KnownDependencies::default();
        for cap in &pkg.c.requires {
            if let Some(feature) = cap
                .name
                .strip_prefix("rpmlib(")
                .and_then(|r| r.strip_suffix(')'))
            {
                let ok = RPMLIB_FEATURES
                    .iter()
                    .any(|(f, v)| *f == feature && ranges_overlap(EQUAL, v, cap.flags, &cap.evr));
                if ok || installed {
                    continue;
                }
                return Err(format!(
                    "it requires {cap}, which Amazon Linux 2023's rpm 4.16 does not have"
                ));
            }
            let r = expression(cap)
                .map_err(|m| format!("its requirement `{cap}` cannot be read: {m}"))?;
            // What the base already breaks stays broken; the solver does not
            // try to mend it.
            if installed && !self.holds(&r, &was_installed) {
                continue;
            }
            if let Rich::Dep(s) = &r
                && self.providers(s, false).binary_search(&i).is_ok()
            {
                continue;
            }
            self.encode(&r, None, &mut deps.requirements)
                .map_err(|m| format!("its requirement `{cap}`: {m}"))?;
        }
        for cap in &pkg.c.conflicts {
            let r =
                expression(cap).map_err(|m| format!("its conflict `{cap}` cannot be read: {m}"))?;
            let mut m = self.conflict_members(&r)?;
            m.retain(|&j| self.pkgs[j].name != pkg.name);
            if m.is_empty() || (installed && m.iter().any(|&j| was_installed(j))) {
                continue;
            }
            deps.constrains
                .extend(self.group(&m, &format!("conflicts with `{cap}`"), true));
        }
        for cap in &pkg.c.obsoletes {
            let Some(&n) = self.name_ids.borrow().get(cap.name.as_str()) else {
                continue;
            };
            if n == pkg.name {
                continue;
            }
            let m: Vec<usize> = self.by_name.borrow()[n.to_index()]
                .iter()
                .copied()
                .filter(|&j| j < self.pkgs.len())
                .filter(|&j| ranges_overlap(EQUAL, self.pkgs[j].evr(), cap.flags, &cap.evr))
                .collect();
            if m.is_empty() || (installed && m.iter().any(|&j| was_installed(j))) {
                continue;
            }
            deps.constrains
                .extend(self.group(&m, &format!("obsoletes `{cap}`"), true));
        }
        Ok(deps)
    }

    fn exact(&self, s: usize, label: &str) -> Requirement {
        let name = self.solvables.borrow()[s].0;
        let vs = self.intern_vs(VersionSet {
            name,
            members: vec![s],
            invert: false,
            label: label.to_string(),
        });
        self.requirement(vec![vs], label)
    }

    fn root(&self, out: &mut Vec<ConditionalRequirement>, req: Requirement, label: String) {
        self.root_labels.borrow_mut().entry(req).or_insert(label);
        out.push(req.into());
    }

    /// What the root requires: every installed package stays (or is
    /// upgraded or obsoleted), the local packages, the request.
    pub fn root_requirements(
        &self,
        install: &[String],
    ) -> Result<Vec<ConditionalRequirement>, ResolveError> {
        let mut out = Vec::new();
        self.keep_installed(&mut out);
        for (i, pkg) in self.pkgs.iter().enumerate() {
            if pkg.origin == Origin::Local {
                let label = format!("the local package {}", pkg.nevra());
                let req = self.exact(i, &label);
                self.requests.borrow_mut().push(req);
                self.root(&mut out, req, label);
            }
        }
        for text in install {
            let bad = |message: String| ResolveError::BadRequest {
                text: text.clone(),
                message,
            };
            let parsed = dep::parse(text).map_err(|e| bad(e.message))?;
            let label = format!("`{}` (asked for)", text.trim());
            let mut reqs = Vec::new();
            match parsed {
                Dependency::Simple(s) if self.name_ids.borrow().contains_key(s.name.as_str()) => {
                    // A package name means that package, as `dnf install`.
                    let members: Vec<usize> = self
                        .providers(&s, false)
                        .into_iter()
                        .filter(|&j| self.pkgs[j].c.name == s.name)
                        .collect();
                    let sets = match members.is_empty() {
                        true => vec![self.nothing(&s.to_string())],
                        false => self.group(&members, &s.to_string(), false),
                    };
                    reqs.push(self.requirement(sets, &s.to_string()).into());
                }
                Dependency::Simple(s) => {
                    self.encode(&Rich::Dep(s), None, &mut reqs).map_err(bad)?
                }
                Dependency::Rich { expr, .. } => {
                    self.encode(&expr, None, &mut reqs).map_err(bad)?
                }
            }
            for r in reqs {
                self.requests.borrow_mut().push(r.requirement);
                self.root_labels
                    .borrow_mut()
                    .entry(r.requirement)
                    .or_insert_with(|| label.clone());
                out.push(r);
            }
        }
        Ok(out)
    }

    fn keep_installed(&self, out: &mut Vec<ConditionalRequirement>) {
        // Installed package -> available packages of other names that
        // obsolete it.
        let mut obsoleted_by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (j, pkg) in self.pkgs.iter().enumerate() {
            if pkg.origin == Origin::Installed || pkg.excluded.is_some() {
                continue;
            }
            for o in &pkg.c.obsoletes {
                let Some(&n) = self.name_ids.borrow().get(o.name.as_str()) else {
                    continue;
                };
                for &i in &self.by_name.borrow()[n.to_index()] {
                    if i < self.pkgs.len()
                        && self.pkgs[i].origin == Origin::Installed
                        && self.obsoletes(j, i)
                    {
                        obsoleted_by.entry(i).or_default().push(j);
                    }
                }
            }
        }
        let mut done = HashSet::new();
        for (i, pkg) in self.pkgs.iter().enumerate() {
            if pkg.origin != Origin::Installed
                || !done.insert(pkg.name) && !self.multi.contains(&pkg.name)
            {
                continue;
            }
            let label = format!(
                "{} is installed and stays, upgraded or obsoleted",
                pkg.nevra()
            );
            if self.multi.contains(&pkg.name) {
                let req = self.exact(i, &label);
                self.root(out, req, label);
                continue;
            }
            let all: Vec<usize> = self.by_name.borrow()[pkg.name.to_index()].to_vec();
            let mut sets = self.group(&all, &format!("{} or newer", pkg.nevra()), false);
            if let Some(by) = obsoleted_by.get(&i) {
                let mut by = by.clone();
                by.sort_unstable();
                by.dedup();
                sets.extend(self.group(&by, &format!("what obsoletes {}", pkg.nevra()), false));
            }
            let req = self.requirement(sets, &label);
            self.root(out, req, label);
        }
    }

    /// The requirements that fix `chosen` for the next pass.
    pub fn locks(&self, chosen: &BTreeSet<usize>) -> Vec<ConditionalRequirement> {
        chosen
            .iter()
            .map(|&s| self.exact(s, "chosen in the pass before").into())
            .collect()
    }

    /// Solvables of `chosen` that a request or a local package names.
    pub fn requested_solvables(&self, chosen: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for req in self.requests.borrow().iter() {
            let sets = match *req {
                Requirement::Single(vs) => vec![vs],
                Requirement::Union(u) => self.union(u),
            };
            for vs in sets {
                for s in self.version_set(vs).members {
                    if chosen.contains(&s) {
                        out.insert(s);
                    }
                }
            }
        }
        out
    }

    fn opt_out(&self, label: &str) -> VersionSetId {
        let name = self.intern_name(&format!("<leave out {label}>"));
        let existing = self.by_name.borrow()[name.to_index()].first().copied();
        let s = existing.unwrap_or_else(|| self.add_solvable(name, Kind::OptOut));
        self.intern_vs(VersionSet {
            name,
            members: vec![s],
            invert: false,
            label: format!("leaving out {label}"),
        })
    }

    /// Weak requirements the packages new in `chosen` bring that `asked`
    /// has not seen: each recommendation not yet met, each package whose
    /// supplements the new packages make true; each with a way out.
    pub fn weak_requirements(
        &self,
        chosen: &BTreeSet<usize>,
        asked: &mut HashSet<String>,
    ) -> Vec<ConditionalRequirement> {
        let pkgs_in: BTreeSet<usize> = chosen
            .iter()
            .filter_map(|&s| match self.kind(s) {
                Kind::Pkg(i) => Some(i),
                _ => None,
            })
            .collect();
        let has = |j: usize| pkgs_in.contains(&j);
        let was_installed = |j: usize| self.pkgs[j].origin == Origin::Installed;
        let mut out = Vec::new();
        let mut new: Vec<usize> = pkgs_in
            .iter()
            .copied()
            .filter(|&i| self.pkgs[i].origin != Origin::Installed)
            .collect();
        new.sort_by(|&a, &b| self.pkg_order(a, b));
        for &i in &new {
            for cap in &self.pkgs[i].c.recommends {
                let label = format!("`{cap}`, which {} recommends", self.pkgs[i].nevra());
                if !asked.insert(cap.to_string()) {
                    continue;
                }
                let Ok(r) = expression(cap) else { continue };
                if self.holds(&r, &has) {
                    continue;
                }
                let Ok(mut sets) = self.positive(&r) else {
                    continue;
                };
                sets.push(self.opt_out(&label));
                out.push(self.requirement(sets, &label).into());
            }
        }
        let names_in: HashSet<NameId> = pkgs_in.iter().map(|&i| self.pkgs[i].name).collect();
        let mut supplementing: BTreeMap<NameId, Vec<usize>> = BTreeMap::new();
        for (j, pkg) in self.pkgs.iter().enumerate() {
            if pkg.origin == Origin::Installed
                || pkg.excluded.is_some()
                || pkg.c.supplements.is_empty()
                || names_in.contains(&pkg.name)
            {
                continue;
            }
            let triggered = pkg.c.supplements.iter().any(|cap| {
                expression(cap)
                    .is_ok_and(|r| self.holds(&r, &has) && !self.holds(&r, &was_installed))
            });
            if triggered {
                supplementing.entry(pkg.name).or_default().push(j);
            }
        }
        for (name, members) in supplementing {
            let name = self.name_of(name);
            if !asked.insert(format!("supplements of {name}")) {
                continue;
            }
            let label = format!("{name}, which supplements what is installed");
            let mut sets = self.group(&members, &label, false);
            sets.push(self.opt_out(&label));
            out.push(self.requirement(sets, &label).into());
        }
        out
    }
}
