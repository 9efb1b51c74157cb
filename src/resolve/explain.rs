//! Why a request cannot be met, in words.
//!
//! In: resolvo's conflict graph (the clauses that together make the
//! problem unsolvable: requirements from the root and from packages to
//! their candidates, constraints from conflicts and obsoletes, one version
//! per name, exclusions) and the provider that knows what each solvable
//! and requirement stands for. Out: indented lines that follow the chain
//! from what was asked: who requires what, what was considered, why each
//! option failed, and what is offered under similar names when nothing
//! provides a requirement. At most [`MAX_LINES`] lines.

use std::collections::HashSet;

use petgraph::Direction;
use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use resolvo::conflict::{ConflictCause, ConflictEdge, ConflictGraph, ConflictNode};
use resolvo::{DenseIndex, Requirement, SolvableId};

use super::provider::{Kind, Origin, Provider};
use crate::spec::dep::{self, Dependency, Simple};

/// Lines of explanation at most; the rest is counted.
pub const MAX_LINES: usize = 80;
/// What is offered instead, per requirement nothing provides.
const MAX_OFFERS: usize = 5;
/// Levels of the chain followed; a dependency chain thousands of packages
/// long must not take the stack with it.
pub const MAX_DEPTH: usize = 24;

struct Renderer<'g, 'p, 'a> {
    g: &'g ConflictGraph<SolvableId>,
    p: &'p Provider<'a>,
    lines: Vec<String>,
    seen: HashSet<NodeIndex>,
    printed: HashSet<EdgeIndex>,
}

pub(super) fn render(g: &ConflictGraph<SolvableId>, p: &Provider<'_>) -> String {
    let mut r = Renderer {
        g,
        p,
        lines: Vec::new(),
        seen: HashSet::new(),
        printed: HashSet::new(),
    };
    r.seen.insert(g.root_node);
    r.requirements(g.root_node, 1);
    r.conflicts_from(g.root_node, 1);
    let extra = r.lines.len().saturating_sub(MAX_LINES);
    let mut lines = r.lines;
    lines.truncate(MAX_LINES);
    if extra > 0 {
        lines.push(format!("  … and {extra} more lines"));
    }
    lines.join("\n")
}

impl Renderer<'_, '_, '_> {
    fn line(&mut self, depth: usize, text: String) {
        self.lines.push(format!("{}{text}", "  ".repeat(depth)));
    }

    fn solvable(&self, n: NodeIndex) -> Option<usize> {
        match self.g.graph[n] {
            ConflictNode::Solvable(s) => Some(s.to_index()),
            _ => None,
        }
    }

    /// What a node is called.
    fn show(&self, n: NodeIndex) -> String {
        let Some(s) = self.solvable(n) else {
            return "the request".to_string();
        };
        match self.p.kind(s) {
            Kind::Pkg(i) => {
                let pkg = &self.p.pkgs[i];
                match pkg.origin {
                    Origin::Installed => format!("{} (installed)", pkg.nevra()),
                    Origin::Local => format!("{} (local)", pkg.nevra()),
                    Origin::Available => pkg.nevra().to_string(),
                }
            }
            Kind::Helper(h) => self.p.helper_text(h),
            Kind::OptOut => "leaving it out".to_string(),
        }
    }

    fn label(&self, from_root: bool, req: Requirement) -> String {
        let own = self
            .p
            .labels
            .borrow()
            .get(&req)
            .cloned()
            .unwrap_or_default();
        if from_root {
            self.p
                .root_labels
                .borrow()
                .get(&req)
                .cloned()
                .unwrap_or(own)
        } else {
            own
        }
    }

    /// The requirement edges out of `n`, grouped by requirement, in a
    /// fixed order.
    fn groups(&self, n: NodeIndex) -> Vec<(Requirement, Vec<NodeIndex>)> {
        let mut groups: Vec<(Requirement, Vec<NodeIndex>)> = Vec::new();
        for e in self.g.graph.edges(n) {
            let ConflictEdge::Requires(req) = *e.weight() else {
                continue;
            };
            match groups.iter_mut().find(|(r, _)| *r == req) {
                Some((_, v)) => v.push(e.target()),
                None => groups.push((req, vec![e.target()])),
            }
        }
        let from_root = n == self.g.root_node;
        for (_, v) in &mut groups {
            v.sort_by(|a, b| self.order(*a, *b));
            v.dedup();
        }
        groups.sort_by_cached_key(|(req, _)| self.label(from_root, *req));
        groups
    }

    fn order(&self, a: NodeIndex, b: NodeIndex) -> std::cmp::Ordering {
        match (self.solvable(a), self.solvable(b)) {
            (Some(x), Some(y)) => self.p.candidate_cmp(x, y),
            _ => a.cmp(&b),
        }
    }

    fn requirements(&mut self, n: NodeIndex, depth: usize) {
        let from_root = n == self.g.root_node;
        for (req, targets) in self.groups(n) {
            let label = self.label(from_root, req);
            let who = match from_root {
                true => label.clone(),
                false => format!("{} requires {label}", self.show(n)),
            };
            if targets.iter().all(|&t| Some(t) == self.g.unresolved_node) {
                let text = match from_root {
                    true => format!("nothing provides {label}"),
                    false => format!("{who}, which nothing provides"),
                };
                self.line(depth, text);
                let own = self
                    .p
                    .labels
                    .borrow()
                    .get(&req)
                    .cloned()
                    .unwrap_or_default();
                for offer in self.offered(&own) {
                    self.line(depth + 1, offer);
                }
                continue;
            }
            let shown: Vec<String> = targets.iter().map(|&t| self.show(t)).collect();
            let installed = |t: NodeIndex| {
                self.solvable(t).is_some_and(|s| {
                    matches!(self.p.kind(s), Kind::Pkg(i) if self.p.pkgs[i].origin == Origin::Installed)
                })
            };
            let local = |t: NodeIndex| {
                self.solvable(t).is_some_and(|s| {
                    matches!(self.p.kind(s), Kind::Pkg(i) if self.p.pkgs[i].origin == Origin::Local)
                })
            };
            let text = match shown.as_slice() {
                [_] if from_root && local(targets[0]) => format!("{who} cannot be installed"),
                [_] if from_root && installed(targets[0]) => format!(
                    "{} is installed, and nothing newer or obsoleting it is offered",
                    self.show(targets[0]).trim_end_matches(" (installed)")
                ),
                [one] if from_root => format!("{who} needs {one}"),
                [one] => format!("{who}, which only {one} provides"),
                _ if from_root => format!("{who}; options: {}", shown.join(", ")),
                _ => format!("{who}; considered: {}", shown.join(", ")),
            };
            self.line(depth, text);
            for t in targets {
                self.candidate(t, depth + 1);
            }
        }
    }

    /// Why `t`, one option for a requirement, did not work out.
    fn candidate(&mut self, t: NodeIndex, depth: usize) {
        if Some(t) == self.g.unresolved_node || !self.seen.insert(t) {
            return;
        }
        if depth > MAX_DEPTH {
            let name = self.show(t);
            self.line(depth, format!("{name} … (the chain goes on)"));
            return;
        }
        let name = self.show(t);
        for e in self.g.graph.edges(t) {
            if let (ConflictEdge::Conflict(ConflictCause::Excluded), ConflictNode::Excluded(why)) =
                (*e.weight(), self.g.graph[e.target()])
            {
                self.printed.insert(e.id());
                let why = self.p.string(why);
                self.line(depth, format!("{name} cannot be installed: {why}"));
            }
        }
        let incoming: Vec<_> = self
            .g
            .graph
            .edges_directed(t, Direction::Incoming)
            .filter(|e| matches!(e.weight(), ConflictEdge::Conflict(_)))
            .map(|e| (e.id(), e.source(), *e.weight()))
            .collect();
        for (id, from, weight) in incoming {
            if let Some(text) = self.conflict_text(from, t, weight)
                && self.printed.insert(id)
            {
                self.line(depth, text);
            }
        }
        self.requirements(t, depth);
        self.conflicts_from(t, depth);
    }

    fn conflicts_from(&mut self, n: NodeIndex, depth: usize) {
        let out: Vec<_> = self
            .g
            .graph
            .edges(n)
            .filter(|e| matches!(e.weight(), ConflictEdge::Conflict(_)))
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        // One line per conflict, naming everything it rules out.
        let mut lines: Vec<(ConflictEdge<SolvableId>, Vec<NodeIndex>)> = Vec::new();
        for (id, to, weight) in out {
            if !self.printed.insert(id) {
                continue;
            }
            match lines.iter_mut().find(|(w, _)| *w == weight) {
                Some((_, v)) => v.push(to),
                None => lines.push((weight, vec![to])),
            }
        }
        for (weight, mut targets) in lines {
            targets.sort_by(|a, b| self.order(*a, *b));
            let text = match weight {
                ConflictEdge::Conflict(ConflictCause::Constrains(vs)) => {
                    let shown: Vec<String> = targets.iter().map(|&t| self.show(t)).collect();
                    let label = self.p.version_set(vs).label;
                    Some(format!(
                        "{} {label}, which rules out {}",
                        self.show(n),
                        shown.join(", ")
                    ))
                }
                _ => targets
                    .first()
                    .and_then(|&t| self.conflict_text(n, t, weight)),
            };
            if let Some(text) = text {
                self.line(depth, text);
            }
        }
    }

    fn conflict_text(
        &self,
        from: NodeIndex,
        to: NodeIndex,
        weight: ConflictEdge<SolvableId>,
    ) -> Option<String> {
        let ConflictEdge::Conflict(cause) = weight else {
            return None;
        };
        // The one-version-per-name clauses can link a package to itself.
        if from == to {
            return None;
        }
        Some(match cause {
            ConflictCause::Constrains(vs) => {
                let label = self.p.version_set(vs).label;
                format!(
                    "{} {label}, which rules out {}",
                    self.show(from),
                    self.show(to)
                )
            }
            ConflictCause::ForbidMultipleInstances => format!(
                "{} and {} cannot both be installed (one version per name)",
                self.show(from),
                self.show(to)
            ),
            ConflictCause::Locked(_) => format!("{} is fixed", self.show(to)),
            ConflictCause::Excluded => return None,
        })
    }

    /// What the repositories and the base offer under names close to
    /// those `label` requires.
    fn offered(&self, label: &str) -> Vec<String> {
        let simples: Vec<Simple> = match dep::parse(label) {
            Ok(Dependency::Simple(s)) => vec![s],
            Ok(Dependency::Rich { expr, .. }) => {
                expr.simples().into_iter().cloned().collect::<Vec<_>>()
            }
            Err(_) => Vec::new(),
        };
        let mut out: Vec<String> = Vec::new();
        for s in simples {
            let mut found = self.same_name(&s.name);
            if found.is_empty() {
                found = self.similar(&s.name);
            }
            if found.is_empty() && s.name.starts_with('/') {
                let base = s.name.rsplit('/').next().unwrap_or_default();
                found = self
                    .p
                    .files_named(base)
                    .into_iter()
                    .map(|(i, path)| format!("{} has {path}", self.p.pkgs[i].nevra()))
                    .collect();
            }
            let more = found.len().saturating_sub(MAX_OFFERS);
            out.extend(found.into_iter().take(MAX_OFFERS));
            if more > 0 {
                out.push(format!("… and {more} more"));
            }
        }
        out.dedup();
        out
    }

    /// "P provides only NAME = 1.0" for every package with a provide of
    /// that name (its own name counts).
    fn same_name(&self, name: &str) -> Vec<String> {
        let mut per_pkg: Vec<(usize, Vec<String>)> = Vec::new();
        let mut add = |i: usize, cap: String| match per_pkg.iter_mut().find(|(j, _)| *j == i) {
            Some((_, v)) => {
                if !v.contains(&cap) {
                    v.push(cap)
                }
            }
            None => per_pkg.push((i, vec![cap])),
        };
        for (i, pkg) in self.p.pkgs.iter().enumerate() {
            if pkg.c.name == name {
                add(i, format!("{name} = {}", pkg.c.evr()));
            }
        }
        for (i, cap) in self.p.provides_named(name) {
            add(i, cap.to_string());
        }
        self.phrase(per_pkg)
    }

    /// Provides of the same library (`libfoo.so.1` for `libfoo.so.2`).
    fn similar(&self, name: &str) -> Vec<String> {
        let Some(at) = name.find(".so") else {
            return Vec::new();
        };
        let stem = &name[..at + 3];
        let mut per_pkg: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, cap) in self.p.provides_starting(stem) {
            match per_pkg.iter_mut().find(|(j, _)| *j == i) {
                Some((_, v)) => v.push(cap.to_string()),
                None => per_pkg.push((i, vec![cap.to_string()])),
            }
        }
        self.phrase(per_pkg)
    }

    fn phrase(&self, mut per_pkg: Vec<(usize, Vec<String>)>) -> Vec<String> {
        per_pkg.sort_by(|a, b| self.p.pkg_order(a.0, b.0));
        per_pkg
            .into_iter()
            .map(|(i, caps)| {
                let pkg = &self.p.pkgs[i];
                let whose = match pkg.origin {
                    Origin::Installed => format!("{} (installed)", pkg.nevra()),
                    _ => pkg.nevra().to_string(),
                };
                let mut text = format!("{whose} provides only {}", caps.join(", "));
                if let Some(why) = &pkg.excluded {
                    text.push_str(&format!(" (and cannot be installed: {why})"));
                }
                text
            })
            .collect()
    }
}
