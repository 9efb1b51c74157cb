//! Which module of the crate uses which, from the paths its code names
//! (`use crate::…`, `crate::…`, `super::…`, `self::…`, and the crate's
//! own name from the binary), and the cycles among them: among the
//! top-level modules of `src/`, and among the children of every module.
//!
//! A path counts where the item it names lives: a name re-exported or
//! imported by a module (`pub use tree::Tree` in `rootfs/mod.rs`, `use
//! crate::spec::SpecError` anywhere) is followed to its definition, so
//! `crate::rootfs::Tree` is a use of `rootfs::tree`. Test code does not
//! count (see `lex::test_ranges`); neither do comments nor strings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::lex::{Kind, Lexed, Token, in_ranges, matching};

/// A module's path from the crate root: `["rootfs", "tree"]`.
pub type ModPath = Vec<String>;

/// One source file of the crate.
pub struct File {
    /// Shown in messages: relative to the repository.
    pub path: PathBuf,
    pub module: ModPath,
    pub lexed: Lexed,
    /// Token ranges of test code.
    pub tests: Vec<(usize, usize)>,
    /// The whole file is test code (a module declared under `#[cfg(test)]`).
    pub all_test: bool,
}

impl File {
    pub fn is_test(&self, k: usize) -> bool {
        self.all_test || in_ranges(&self.tests, k)
    }
}

/// A use of one module by another, where it is written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The module whose children these are (`[]` for the top level).
    pub parent: ModPath,
    pub from: String,
    pub to: String,
    pub at: String,
}

/// A `use` item's name in a module, and the path it stands for, as written.
struct Import {
    raw: Vec<String>,
    context: ModPath,
}

/// Every module and every import of the crate: what resolving needs.
struct Crate<'a> {
    name: &'a str,
    modules: BTreeSet<ModPath>,
    imports: BTreeMap<ModPath, BTreeMap<String, Import>>,
}

/// A path as written, with where it starts.
struct Written {
    segments: Vec<String>,
    context: ModPath,
    line: usize,
    test: bool,
}

/// Every edge between sibling modules in `files` (one per place it is
/// written). `crate_name` is how the binary names the library.
pub fn edges(files: &[File], crate_name: &str) -> Vec<Edge> {
    let mut krate = Crate {
        name: crate_name,
        modules: BTreeSet::new(),
        imports: BTreeMap::new(),
    };
    for f in files {
        for l in 0..=f.module.len() {
            krate.modules.insert(f.module[..l].to_vec());
        }
    }
    let mut written: Vec<(usize, Written)> = Vec::new();
    for (n, f) in files.iter().enumerate() {
        scan(f, &mut krate, &mut |w| written.push((n, w)));
    }
    let mut out = Vec::new();
    for (n, w) in written {
        if w.test {
            continue;
        }
        let Some(target) = krate.resolve(&w.segments, &w.context, 0) else {
            continue;
        };
        let target = krate.module_of(&target);
        let source = &w.context;
        let common = source
            .iter()
            .zip(&target)
            .take_while(|(a, b)| a == b)
            .count();
        if common < source.len() && common < target.len() {
            out.push(Edge {
                parent: source[..common].to_vec(),
                from: source[common].clone(),
                to: target[common].clone(),
                at: format!("{}:{}", files[n].path.display(), w.line),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Crate<'_> {
    /// The absolute path `raw` (as written in module `context`) stands
    /// for, imports followed; `None` for another crate's or a local name.
    fn resolve(&self, raw: &[String], context: &ModPath, depth: usize) -> Option<ModPath> {
        if depth > 16 || raw.is_empty() {
            return None;
        }
        let mut abs: ModPath;
        let mut rest = raw;
        match raw[0].as_str() {
            "crate" => {
                abs = Vec::new();
                rest = &raw[1..];
            }
            s if s == self.name => {
                abs = Vec::new();
                rest = &raw[1..];
            }
            "self" | "super" => {
                abs = context.clone();
                while let Some(s) = rest.first() {
                    match s.as_str() {
                        "self" => {}
                        "super" => {
                            abs.pop()?;
                        }
                        _ => break,
                    }
                    rest = &rest[1..];
                }
            }
            first => {
                // A relative path: a child module or a name imported here.
                let child: ModPath = context.iter().cloned().chain([first.to_string()]).collect();
                if self.modules.contains(&child) {
                    abs = context.clone();
                } else if let Some(i) = self.imports.get(context).and_then(|m| m.get(first)) {
                    if i.raw.len() == 1 && i.raw[0] == first && i.context == *context {
                        return None;
                    }
                    let mut base = self.resolve(&i.raw, &i.context, depth + 1)?;
                    base.extend(raw[1..].iter().cloned());
                    return Some(base);
                } else {
                    return None;
                }
            }
        }
        // Follow names that a module imports rather than defines.
        for (k, seg) in rest.iter().enumerate() {
            let next: ModPath = abs.iter().cloned().chain([seg.clone()]).collect();
            if self.modules.contains(&next) {
                abs = next;
                continue;
            }
            if let Some(i) = self.imports.get(&abs).and_then(|m| m.get(seg)) {
                let mut base = self.resolve(&i.raw, &i.context, depth + 1)?;
                base.extend(rest[k + 1..].iter().cloned());
                return Some(base);
            }
            abs.push(seg.clone());
            abs.extend(rest[k + 1..].iter().cloned());
            return Some(abs);
        }
        Some(abs)
    }

    /// The deepest module `path` lies in.
    fn module_of(&self, path: &ModPath) -> ModPath {
        let mut m = path.clone();
        while !m.is_empty() && !self.modules.contains(&m) {
            m.pop();
        }
        m
    }
}

/// Record `f`'s inline modules and imports in `krate`, and hand every
/// path it writes to `found`.
fn scan(f: &File, krate: &mut Crate, found: &mut dyn FnMut(Written)) {
    let t = &f.lexed.tokens;
    // Inline modules: (name, index of their closing brace).
    let mut stack: Vec<(String, usize)> = Vec::new();
    let context = |stack: &[(String, usize)]| -> ModPath {
        f.module
            .iter()
            .cloned()
            .chain(stack.iter().map(|(n, _)| n.clone()))
            .collect()
    };
    let mut k = 0;
    while k < t.len() {
        while stack.last().is_some_and(|&(_, end)| k > end) {
            stack.pop();
        }
        let here = context(&stack);
        if t[k].is_ident("mod")
            && let Some(name) = t.get(k + 1).and_then(Token::ident)
            && t.get(k + 2).is_some_and(|n| n.is_punct('{'))
        {
            let mut m = here.clone();
            m.push(name.to_string());
            krate.modules.insert(m);
            stack.push((name.to_string(), matching(t, k + 2)));
            k += 3;
            continue;
        }
        if t[k].is_ident("use") && !t.get(k + 1).is_some_and(|n| n.is_punct('<')) {
            let mut from = k + 1;
            if t.get(from).is_some_and(|n| n.kind == Kind::PathSep) {
                from += 1;
            }
            let mut items = Vec::new();
            let end = use_tree(t, from, Vec::new(), &mut items);
            for (raw, name) in items {
                if let Some(name) = name {
                    krate.imports.entry(here.clone()).or_default().insert(
                        name,
                        Import {
                            raw: raw.clone(),
                            context: here.clone(),
                        },
                    );
                }
                found(Written {
                    segments: raw,
                    context: here.clone(),
                    line: t[k].line,
                    test: f.is_test(k),
                });
            }
            k = end.max(k + 1);
            continue;
        }
        // A path in code: `crate::a::b`, `super::x`, `self::y`, `ingot::z`.
        if let Some(first) = t[k].ident()
            && (matches!(first, "crate" | "super" | "self") || first == krate.name)
            && t.get(k + 1).is_some_and(|n| n.kind == Kind::PathSep)
            && !(k > 0 && t[k - 1].kind == Kind::PathSep)
        {
            let (segments, end) = path(t, k);
            found(Written {
                segments,
                context: here,
                line: t[k].line,
                test: f.is_test(k),
            });
            k = end;
            continue;
        }
        k += 1;
    }
}

/// The segments of the path starting at token `k`, and the token after it.
fn path(t: &[Token], mut k: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    while let Some(s) = t.get(k).and_then(Token::ident) {
        segments.push(s.to_string());
        if t.get(k + 1).is_some_and(|n| n.kind == Kind::PathSep)
            && t.get(k + 2).and_then(Token::ident).is_some()
        {
            k += 2;
        } else {
            k += 1;
            break;
        }
    }
    (segments, k)
}

/// Parse a use tree at `k` under `prefix`: every path it names, with the
/// name it binds (none for a glob). Returns the token after the tree.
fn use_tree(
    t: &[Token],
    mut k: usize,
    mut prefix: Vec<String>,
    items: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    loop {
        match t.get(k).map(|x| &x.kind) {
            Some(Kind::Ident(s)) => {
                let s = s.clone();
                k += 1;
                if t.get(k).is_some_and(|n| n.kind == Kind::PathSep) {
                    prefix.push(s);
                    k += 1;
                    continue;
                }
                let mut name = s.clone();
                if t.get(k).is_some_and(|n| n.is_ident("as")) {
                    name = t
                        .get(k + 1)
                        .and_then(Token::ident)
                        .unwrap_or("_")
                        .to_string();
                    k += 2;
                }
                if s == "self" {
                    name = if name == "self" {
                        prefix.last().cloned().unwrap_or_default()
                    } else {
                        name
                    };
                } else {
                    prefix.push(s);
                }
                let bound = (name != "_").then_some(name);
                items.push((prefix, bound));
                return k;
            }
            Some(Kind::Punct('*')) => {
                items.push((prefix, None));
                return k + 1;
            }
            Some(Kind::Punct('{')) => {
                let close = matching(t, k);
                k += 1;
                while k < close {
                    k = use_tree(t, k, prefix.clone(), items);
                    // The comma, or a token no tree starts with.
                    if k < close {
                        k += 1;
                    }
                }
                return close + 1;
            }
            _ => return k,
        }
    }
}

/// The cycles among siblings: for each strongly connected group of
/// modules under one parent, the edges inside it.
pub fn cycles(edges: &[Edge]) -> Vec<Vec<&Edge>> {
    let mut by_parent: BTreeMap<&ModPath, Vec<&Edge>> = BTreeMap::new();
    for e in edges {
        by_parent.entry(&e.parent).or_default().push(e);
    }
    let mut out = Vec::new();
    for (_, es) in by_parent {
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in &es {
            graph.entry(&e.from).or_default().insert(&e.to);
            graph.entry(&e.to).or_default();
        }
        for group in strongly_connected(&graph) {
            if group.len() < 2 {
                continue;
            }
            out.push(
                es.iter()
                    .filter(|e| group.contains(e.from.as_str()) && group.contains(e.to.as_str()))
                    .copied()
                    .collect(),
            );
        }
    }
    out
}

/// Tarjan's strongly connected components of `graph`.
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<BTreeSet<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<BTreeSet<&'a str>>,
    }
    fn visit<'a>(v: &'a str, g: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.insert(w);
                if w == v {
                    break;
                }
            }
            s.groups.push(group);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for &v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.groups
}
