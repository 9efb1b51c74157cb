//! `cargo xtask tidy`: what ARCHITECTURE.md promises, checked on the
//! source text, each failure with what to do about it.
//!
//! - **clock**: the date is read only in `src/source_date.rs`; elapsed
//!   time (`Instant::now`) only where a person waits on it: the CLI's step
//!   timer (`src/cli/`) and `boot-test`'s timeouts and report
//!   (`src/boottest/`). Nothing else reads a clock, so nothing else can
//!   put one into an artifact.
//! - **print**: `print!`, `println!`, `eprint!`, `eprintln!`, `dbg!` and
//!   `stdout()`/`stderr()` only in `src/cli/printer.rs`.
//! - **cycle**: no cycle among the top-level modules of `src/`, nor among
//!   the children of any module (`modgraph.rs` says what counts as a use).
//! - **unsafe**: every `unsafe` (in `src/`, `tests/`, `xtask/src/`) under a
//!   `// SAFETY:` comment, or a `# Safety` doc section for an `unsafe fn`.
//! - **long fn**: no function longer than 150 lines in `src/` or
//!   `xtask/src/` outside test code.
//! - **code map**: every top-level module of `src/` named in
//!   ARCHITECTURE.md's code map, and every `src/` path the map names exists.
//!
//! Test code (`#[cfg(test)]` items, `#[test]` functions, modules declared
//! under `#[cfg(test)]`) may print and time; it is still held to the
//! `unsafe` rule. The checks read tokens (`lex.rs`), so comments and
//! strings never count.

mod lex;
mod modgraph;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lex::{Kind, Token, lex, matching, test_ranges};
use modgraph::{File, ModPath};

/// The longest a function outside test code may be, in lines.
pub const MAX_FN_LINES: usize = 150;

/// Modules that may read elapsed time (`Instant::now`): the CLI (the
/// `-v` step timer) and `boot-test` (timeouts, when each expectation
/// held). Both measure a run; neither writes an artifact.
const ELAPSED_TIME: &[&str] = &["cli", "boottest"];

/// The one module that may read the date.
const DATE: &[&str] = &["source_date"];

/// Modules whose children may still use each other, and why. The top
/// level of `src/` is never here.
const CYCLES_ALLOWED: &[(&str, &str)] = &[(
    "disk",
    "format.rs names each format's module to make its writer, and the formats implement \
     format.rs's trait: to go when that constructor moves to disk/mod.rs",
)];

/// The file that prints.
const PRINTER: &str = "src/cli/printer.rs";

/// The library's name, as the binary's code writes it.
const CRATE_NAME: &str = "ingot";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    Clock,
    Print,
    Cycle,
    Unsafe,
    LongFn,
    CodeMap,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Clock => "clock",
            Check::Print => "print",
            Check::Cycle => "cycle",
            Check::Unsafe => "unsafe",
            Check::LongFn => "long fn",
            Check::CodeMap => "code map",
        }
    }

    /// What to do when this check fails.
    fn advice(self) -> &'static str {
        match self {
            Check::Clock => {
                "Time enters only through src/source_date.rs (SOURCE_DATE_EPOCH or the input's own \
                 date): take the date from there. Elapsed time (Instant::now) is for src/cli/ (the \
                 step timer) and src/boottest/ (timeouts); elsewhere, have the caller measure, or \
                 add the module to ELAPSED_TIME in xtask/src/tidy/mod.rs and say why in \
                 ARCHITECTURE.md."
            }
            Check::Print => {
                "Only src/cli/printer.rs writes to stdout and stderr. Return the text (or report \
                 it through a reporter the CLI passes in) and let the printer draw it; in tests, \
                 put the print inside #[cfg(test)] code."
            }
            Check::Cycle => {
                "Modules must use each other one way. Move what both sides need into a module \
                 below both (as src/package.rs holds the package record), or let the lower module \
                 return its own error type and the upper one wrap it. The lines above are where \
                 each use is written."
            }
            Check::Unsafe => {
                "Write `// SAFETY: why this is sound` on the lines just above the `unsafe` (or \
                 above the statement it is in), or a `# Safety` doc section for an `unsafe fn`; \
                 better, use a safe wrapper (rustix, zerocopy)."
            }
            Check::LongFn => {
                "Split the function into named steps, each with a typed input and output (see \
                 src/bake/mod.rs or src/rpm/build/mod.rs); test code is exempt."
            }
            Check::CodeMap => {
                "Name the module in ARCHITECTURE.md's code map (`src/NAME.rs` or `src/NAME/`, with \
                 what it is), or fix the path the map names."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub check: Check,
    /// `path:line`
    pub at: String,
    pub what: String,
}

/// `cargo xtask tidy` on the repository at `root`.
pub fn run(root: &Path) -> Result<(), String> {
    let problems = check(root)?;
    if problems.is_empty() {
        eprintln!("xtask: tidy: clock, print, cycle, unsafe, long fn and code map checks passed");
        return Ok(());
    }
    eprint!("{}", report(&problems));
    let n = problems.len();
    Err(format!(
        "tidy found {n} problem{}",
        if n == 1 { "" } else { "s" }
    ))
}

/// The problems, grouped by check, each group followed by what to do.
pub fn report(problems: &[Problem]) -> String {
    let mut out = String::new();
    let mut checks: Vec<Check> = problems.iter().map(|p| p.check).collect();
    checks.dedup();
    for c in checks {
        let _ = writeln!(out, "tidy: {}:", c.name());
        for p in problems.iter().filter(|p| p.check == c) {
            let _ = writeln!(out, "  {}: {}", p.at, p.what);
        }
        let _ = writeln!(out, "  what to do: {}", c.advice());
    }
    out
}

/// Every problem in the repository at `root`, sorted.
pub fn check(root: &Path) -> Result<Vec<Problem>, String> {
    let src = load_crate(root)?;
    let mut problems = Vec::new();
    clock(&src, &mut problems);
    print(&src, &mut problems);
    cycles(&src, &mut problems);
    for f in &src {
        unsafe_comments(f, &mut problems);
        long_fns(f, &mut problems);
    }
    for dir in ["tests", "xtask/src"] {
        for f in load_files(root, dir)? {
            unsafe_comments(&f, &mut problems);
            if dir != "tests" {
                long_fns(&f, &mut problems);
            }
        }
    }
    code_map(root, &src, &mut problems)?;
    problems.sort();
    Ok(problems)
}

/// The files of `src/`, each with its module path, test code marked.
fn load_crate(root: &Path) -> Result<Vec<File>, String> {
    let mut files = load_files(root, "src")?;
    // Modules declared under #[cfg(test)]: every file in them is tests.
    let mut test_modules: Vec<ModPath> = Vec::new();
    for f in &files {
        let t = &f.lexed.tokens;
        for &(a, b) in &f.tests {
            for k in a..=b.min(t.len().saturating_sub(1)) {
                if t[k].is_ident("mod")
                    && let Some(name) = t.get(k + 1).and_then(Token::ident)
                    && t.get(k + 2).is_some_and(|n| n.is_punct(';'))
                {
                    let mut m = f.module.clone();
                    m.push(name.to_string());
                    test_modules.push(m);
                }
            }
        }
    }
    for f in &mut files {
        f.all_test = test_modules.iter().any(|m| f.module.starts_with(m));
    }
    Ok(files)
}

/// Every `.rs` file under `root/dir`, sorted, lexed.
fn load_files(root: &Path, dir: &str) -> Result<Vec<File>, String> {
    let mut paths = Vec::new();
    collect_rs(&root.join(dir), &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
        let lexed = lex(&text);
        let tests = test_ranges(&lexed.tokens);
        files.push(File {
            module: module_path(rel.strip_prefix(dir).unwrap_or(&rel)),
            path: rel,
            lexed,
            tests,
            all_test: false,
        });
    }
    Ok(files)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    for e in entries {
        let e = e.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let p = e.path();
        if p.is_dir() {
            collect_rs(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// `rootfs/tree.rs` -> `[rootfs, tree]`; `rootfs/mod.rs` -> `[rootfs]`;
/// `lib.rs` and `main.rs` -> `[]`.
fn module_path(rel: &Path) -> ModPath {
    let mut m: ModPath = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if m.last().is_some_and(|l| l == "mod") || (m.len() == 1 && (m[0] == "lib" || m[0] == "main")) {
        m.pop();
    }
    m
}

fn top(f: &File) -> &str {
    f.module.first().map_or("", String::as_str)
}

fn clock(files: &[File], out: &mut Vec<Problem>) {
    for f in files {
        let t = &f.lexed.tokens;
        for k in 0..t.len() {
            if f.is_test(k) {
                continue;
            }
            let Some((what, allowed)) = clock_read(t, k) else {
                continue;
            };
            if !allowed.contains(&top(f)) {
                out.push(Problem {
                    check: Check::Clock,
                    at: format!("{}:{}", f.path.display(), t[k].line),
                    what: format!(
                        "`{what}` reads the clock (allowed only in {})",
                        allowed
                            .iter()
                            .map(|m| format!("src/{m}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
}

/// If token `k` reads a clock: what it is and where it may be read.
fn clock_read(t: &[Token], k: usize) -> Option<(String, &'static [&'static str])> {
    let prev = |n: usize| k.checked_sub(n).and_then(|i| t.get(i));
    let name = t[k].ident()?;
    if name == "now" && prev(1).is_some_and(|p| p.kind == Kind::PathSep) {
        let owner = prev(2).and_then(Token::ident)?;
        return match owner {
            "Instant" => Some(("Instant::now".into(), ELAPSED_TIME)),
            "SystemTime" | "Timestamp" | "Zoned" | "Utc" | "Local" | "OffsetDateTime" => {
                Some((format!("{owner}::now"), DATE))
            }
            _ => None,
        };
    }
    if name == "elapsed"
        && prev(1).is_some_and(|p| p.is_punct('.'))
        && prev(2).is_some_and(|p| p.is_ident("UNIX_EPOCH"))
    {
        return Some(("UNIX_EPOCH.elapsed".into(), DATE));
    }
    if matches!(name, "clock_gettime" | "gettimeofday")
        && t.get(k + 1).is_some_and(|n| n.is_punct('('))
    {
        return Some((name.into(), DATE));
    }
    None
}

fn print(files: &[File], out: &mut Vec<Problem>) {
    for f in files.iter().filter(|f| f.path != Path::new(PRINTER)) {
        let t = &f.lexed.tokens;
        for k in 0..t.len() {
            if f.is_test(k) {
                continue;
            }
            let Some(name) = t[k].ident() else { continue };
            let next = t.get(k + 1);
            let after_dot = k > 0 && t[k - 1].is_punct('.');
            let what = match name {
                "print" | "println" | "eprint" | "eprintln" | "dbg"
                    if next.is_some_and(|n| n.is_punct('!')) =>
                {
                    format!("`{name}!`")
                }
                "stdout" | "stderr" if next.is_some_and(|n| n.is_punct('(')) && !after_dot => {
                    format!("`{name}()`")
                }
                _ => continue,
            };
            out.push(Problem {
                check: Check::Print,
                at: format!("{}:{}", f.path.display(), t[k].line),
                what: format!("{what} prints outside {PRINTER}"),
            });
        }
    }
}

fn cycles(files: &[File], out: &mut Vec<Problem>) {
    let edges = modgraph::edges(files, CRATE_NAME);
    for group in modgraph::cycles(&edges) {
        let Some(first) = group.first() else { continue };
        if CYCLES_ALLOWED
            .iter()
            .any(|(m, _)| first.parent.len() == 1 && first.parent[0] == *m)
        {
            continue;
        }
        let parent = if first.parent.is_empty() {
            "src".to_string()
        } else {
            format!("src/{}", first.parent.join("/"))
        };
        let mut members: Vec<&str> = group.iter().map(|e| e.from.as_str()).collect();
        members.sort();
        members.dedup();
        let mut uses: Vec<String> = Vec::new();
        for e in &group {
            let line = format!("{} -> {}", e.from, e.to);
            if !uses.iter().any(|u| u.starts_with(&line)) {
                let all: Vec<&str> = group
                    .iter()
                    .filter(|x| x.from == e.from && x.to == e.to)
                    .map(|x| x.at.as_str())
                    .collect();
                uses.push(format!("{line} ({})", all.join(", ")));
            }
        }
        out.push(Problem {
            check: Check::Cycle,
            at: parent.clone(),
            what: format!(
                "the modules {{{}}} of {parent} use each other:\n    {}",
                members.join(", "),
                uses.join("\n    ")
            ),
        });
    }
}

/// Every `unsafe` in `f` without its `SAFETY:` comment.
fn unsafe_comments(f: &File, out: &mut Vec<Problem>) {
    let t = &f.lexed.tokens;
    // For each line: the comment covering it, if any, and the tokens on it.
    let last_line = t
        .last()
        .map_or(0, |x| x.line)
        .max(f.lexed.comments.last().map_or(0, |c| c.last));
    let mut comment_at: Vec<Option<usize>> = vec![None; last_line + 2];
    for (n, c) in f.lexed.comments.iter().enumerate() {
        for slot in &mut comment_at[c.first..=c.last] {
            slot.get_or_insert(n);
        }
    }
    let mut tokens_at: Vec<Vec<usize>> = vec![Vec::new(); last_line + 2];
    for (k, tok) in t.iter().enumerate() {
        tokens_at[tok.line].push(k);
    }
    let says = |n: usize, is_fn: bool| {
        let text = &f.lexed.comments[n].text;
        text.contains("SAFETY:") || (is_fn && text.contains("# Safety"))
    };
    for (k, tok) in t.iter().enumerate() {
        if !tok.is_ident("unsafe") {
            continue;
        }
        let is_fn = t.get(k + 1).is_some_and(|n| n.is_ident("fn"));
        // A comment on the line itself (trailing, or before the code).
        let mut ok = f
            .lexed
            .comments
            .iter()
            .enumerate()
            .any(|(n, c)| c.first <= tok.line && tok.line <= c.last && says(n, is_fn));
        let mut l = tok.line;
        while !ok && l > 1 {
            l -= 1;
            if let Some(n) = comment_at[l] {
                if says(n, is_fn) {
                    ok = true;
                }
                // Comments above a line of code: keep looking up.
                if tokens_at[l].is_empty() {
                    continue;
                }
            }
            let Some(&last) = tokens_at[l].last() else {
                break;
            };
            let first = tokens_at[l][0];
            if t[first].is_punct('#') {
                continue; // an attribute
            }
            if matches!(t[last].kind, Kind::Punct(';' | '{' | '}' | ',')) {
                break; // the end of what came before
            }
        }
        if !ok {
            out.push(Problem {
                check: Check::Unsafe,
                at: format!("{}:{}", f.path.display(), tok.line),
                what: "`unsafe` without a `// SAFETY:` comment above it".into(),
            });
        }
    }
}

/// Every function outside test code longer than [`MAX_FN_LINES`].
fn long_fns(f: &File, out: &mut Vec<Problem>) {
    let t = &f.lexed.tokens;
    for k in 0..t.len() {
        if !t[k].is_ident("fn") || f.is_test(k) {
            continue;
        }
        let Some(name) = t.get(k + 1).and_then(Token::ident) else {
            continue; // a fn pointer type
        };
        let mut j = k + 2;
        while j < t.len() {
            match &t[j].kind {
                Kind::Punct(';') => break,
                Kind::Punct('{') => {
                    let close = matching(t, j);
                    let lines = t[close].line - t[k].line + 1;
                    if lines > MAX_FN_LINES {
                        out.push(Problem {
                            check: Check::LongFn,
                            at: format!("{}:{}", f.path.display(), t[k].line),
                            what: format!("`fn {name}` is {lines} lines (at most {MAX_FN_LINES})"),
                        });
                    }
                    break;
                }
                Kind::Punct('(' | '[') => j = matching(t, j) + 1,
                _ => j += 1,
            }
        }
    }
}

/// Every top-level module of `src/` named in the code map, and every
/// `src/` path the map names present.
fn code_map(root: &Path, files: &[File], out: &mut Vec<Problem>) -> Result<(), String> {
    let arch = root.join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&arch)
        .map_err(|e| format!("cannot read {}: {e}", arch.display()))?;
    let mut in_map = false;
    let mut named: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("## ") {
            in_map = line.trim() == "## Code map";
            continue;
        }
        if !in_map {
            continue;
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1 && part.starts_with("src/") {
                named.push((n + 1, part.to_string()));
            }
        }
    }
    let mut tops: Vec<&str> = files.iter().map(top).filter(|m| !m.is_empty()).collect();
    tops.dedup();
    for m in tops {
        let file = format!("src/{m}.rs");
        let dir = format!("src/{m}/");
        if !named.iter().any(|(_, p)| *p == file || p.starts_with(&dir)) {
            out.push(Problem {
                check: Check::CodeMap,
                at: "ARCHITECTURE.md".into(),
                what: format!("the module `{m}` ({file} or {dir}) is not in the code map"),
            });
        }
    }
    for (line, p) in named {
        if !root.join(&p).exists() {
            out.push(Problem {
                check: Check::CodeMap,
                at: format!("ARCHITECTURE.md:{line}"),
                what: format!("the code map names `{p}`, which does not exist"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
