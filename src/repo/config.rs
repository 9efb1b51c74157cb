//! Repository configuration: the typed [`RepoConfig`], dnf's `.repo` files,
//! and the variables (`$releasever`, `$basearch`, `/etc/dnf/vars/*`) dnf
//! substitutes into them.
//!
//! In: the text of `.repo` files (INI: several sections, `key=value`,
//! continuation lines that start with white space, `#` and `;` comments),
//! a root folder (`gpgkey=file:///…` and `/etc/dnf/vars` resolve inside it,
//! symlinks included, never outside), and the variables' values. Out: one
//! [`RepoConfig`] per section, or a [`RepoError::Config`] naming file, line
//! and column.
//!
//! Limits, for files a base image brings: [`MAX_FILE`] bytes per file,
//! [`MAX_SECTIONS`] sections per file, [`MAX_LINE`] bytes per line,
//! [`MAX_FILES`] `.repo` files per folder, [`MAX_VAR`] bytes per variable
//! file. Each error names the limit.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::error::{RepoError, Result};
use crate::rpm::header::{Header, tag};

/// Bytes a `.repo` file may have.
pub const MAX_FILE: u64 = 1 << 20;
/// Sections a `.repo` file may have.
pub const MAX_SECTIONS: usize = 256;
/// Bytes a line may have.
pub const MAX_LINE: usize = 8192;
/// `.repo` files a folder may have.
pub const MAX_FILES: usize = 256;
/// Bytes a variable file (`/etc/dnf/vars/NAME`) may have.
pub const MAX_VAR: u64 = 4096;
/// Symlinks followed while resolving one path inside a root.
const MAX_HOPS: usize = 40;

/// dnf's default priority: lower wins among equal packages.
pub const DEFAULT_PRIORITY: i32 = 99;

/// Where a repository's signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file on this machine (`gpgkey=file:///…` resolved inside the root,
    /// or a key file an image spec names).
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

/// One repository, as dnf would use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// The repository id (the `.repo` section name, the image spec's `name`).
    pub name: String,
    /// The `name=` line of a `.repo` file: a title for people.
    pub title: Option<String>,
    /// Base URLs, tried in order (variables already substituted).
    pub baseurl: Vec<String>,
    /// A mirror list URL: a text file with one base URL per line, tried
    /// after `baseurl`.
    pub mirrorlist: Option<String>,
    /// A metalink URL (MirrorManager's XML): its `repomd.xml` entry lists
    /// mirrors, tried after `baseurl` and the mirror list's, and the
    /// hashes `repomd.xml` must have, whichever URL it comes from.
    pub metalink: Option<String>,
    pub gpgkey: Vec<KeySource>,
    /// Packages must carry a header signature by one of `gpgkey`.
    pub gpgcheck: bool,
    /// `repodata/repomd.xml.asc` must be a detached signature of
    /// `repomd.xml` by one of `gpgkey` (dnf's `repo_gpgcheck`).
    pub repo_gpgcheck: bool,
    /// Lower wins among equal packages (dnf's default is 99).
    pub priority: i32,
    pub enabled: bool,
    /// The variables substituted into this configuration; a mirror list's
    /// lines get them too (Amazon Linux's name `$awsregion`).
    pub vars: BTreeMap<String, String>,
}

impl RepoConfig {
    /// A repository at `baseurl` with dnf's defaults (enabled, priority 99,
    /// no key, gpgcheck and repo_gpgcheck off).
    pub fn new(name: &str, baseurl: &str) -> RepoConfig {
        RepoConfig {
            name: name.to_string(),
            title: None,
            baseurl: vec![baseurl.to_string()],
            mirrorlist: None,
            metalink: None,
            gpgkey: Vec::new(),
            gpgcheck: false,
            repo_gpgcheck: false,
            priority: DEFAULT_PRIORITY,
            enabled: true,
            vars: BTreeMap::new(),
        }
    }

    /// What identifies where the metadata comes from (for the cache of the
    /// last `repomd.xml` seen).
    pub fn source_key(&self) -> String {
        let mut s = String::new();
        for u in &self.baseurl {
            s.push_str("baseurl ");
            s.push_str(u);
            s.push('\n');
        }
        if let Some(m) = &self.mirrorlist {
            s.push_str("mirrorlist ");
            s.push_str(m);
            s.push('\n');
        }
        if let Some(m) = &self.metalink {
            s.push_str("metalink ");
            s.push_str(m);
            s.push('\n');
        }
        s
    }
}

/// Variables dnf substitutes: `releasever`, `basearch` and whatever
/// `/etc/dnf/vars` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<String, String>);

impl Vars {
    /// `$releasever` and `$basearch` (and `$arch`, which dnf sets to the
    /// same value for the image's architecture).
    pub fn new(releasever: &str, basearch: &str) -> Vars {
        let mut v = BTreeMap::new();
        v.insert("releasever".to_string(), releasever.to_string());
        v.insert("basearch".to_string(), basearch.to_string());
        v.insert("arch".to_string(), basearch.to_string());
        Vars(v)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }

    /// Replace `$name` and `${name}` by their values, as dnf does: names
    /// are ASCII letters, digits and `_`, taken as long as they go; an
    /// unknown variable stays as written; `\$` is a plain `$`.
    pub fn substitute(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        while i < b.len() {
            match b[i] {
                b'\\' if b.get(i + 1) == Some(&b'$') => {
                    out.push('$');
                    i += 2;
                }
                b'$' if b.get(i + 1) == Some(&b'{') => {
                    let start = i + 2;
                    let end = b[start..].iter().position(|&c| !word(c)).map(|n| start + n);
                    match end {
                        Some(e) if e > start && b[e] == b'}' => {
                            match self.0.get(&text[start..e]) {
                                Some(v) => out.push_str(v),
                                None => out.push_str(&text[i..=e]),
                            }
                            i = e + 1;
                        }
                        _ => {
                            out.push('$');
                            i += 1;
                        }
                    }
                }
                b'$' => {
                    let start = i + 1;
                    let e = b[start..]
                        .iter()
                        .position(|&c| !word(c))
                        .map_or(b.len(), |n| start + n);
                    match self.0.get(&text[start..e]) {
                        Some(v) if e > start => out.push_str(v),
                        _ => out.push_str(&text[i..e]),
                    }
                    i = e.max(i + 1);
                }
                _ => {
                    // Copy up to the next `$` or `\` in one go (UTF-8 safe:
                    // both are ASCII).
                    let n = b[i + 1..]
                        .iter()
                        .position(|&c| c == b'$' || c == b'\\')
                        .map_or(b.len(), |n| i + 1 + n);
                    out.push_str(&text[i..n]);
                    i = n;
                }
            }
        }
        out
    }
}

/// Resolve the absolute path `path` inside `root` as a chroot would:
/// `..` stops at the root, symlinks are followed with the root as `/`
/// (at most 40 of them). A component that does not exist ends the walk;
/// the rest is joined as written (reading it then fails as not found).
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let looped = || RepoError::SymlinkLoop {
        root: root.to_path_buf(),
        path: path.to_string(),
    };
    let mut todo: Vec<OsString> = components(Path::new(path));
    todo.reverse();
    let mut at: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            at.pop();
            continue;
        }
        at.push(c);
        let host = join(root, &at);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(looped());
                }
                let target = std::fs::read_link(&host).map_err(|source| RepoError::Read {
                    path: host.clone(),
                    source,
                })?;
                at.pop();
                if target.is_absolute() {
                    at.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            Ok(_) => {}
            Err(_) => {
                let mut rest: Vec<OsString> = std::mem::take(&mut todo);
                rest.reverse();
                let mut all = at;
                all.extend(rest.into_iter().filter(|c| c != ".."));
                return Ok(join(root, &all));
            }
        }
    }
    Ok(join(root, &at))
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Read a file of at most `max` bytes as text.
fn read_small(path: &Path, max: u64, what: &'static str) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|source| RepoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = String::new();
    f.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|source| RepoError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if text.len() as u64 > max {
        return Err(RepoError::Config {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("larger than {max} bytes ({what})"),
        });
    }
    Ok(text)
}

/// The variables of `/etc/dnf/vars` inside `root` (one file per variable,
/// named after it; its first line is the value). Files whose names are not
/// variable names are skipped, as dnf does. An absent folder gives none.
pub fn dnf_vars(root: &Path) -> Result<BTreeMap<String, String>> {
    let dir = resolve_in_root(root, "/etc/dnf/vars")?;
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => return Err(RepoError::Read { path: dir, source }),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|source| RepoError::Read {
            path: dir.clone(),
            source,
        })?;
        if let Some(n) = e.file_name().to_str()
            && !n.is_empty()
            && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            names.push(n.to_string());
        }
        if names.len() > MAX_FILES {
            return Err(RepoError::Config {
                path: dir,
                line: 1,
                column: 1,
                message: format!("more than {MAX_FILES} variable files (MAX_FILES)"),
            });
        }
    }
    names.sort();
    for n in names {
        let path = resolve_in_root(root, &format!("/etc/dnf/vars/{n}"))?;
        if !path.is_file() {
            continue;
        }
        let text = read_small(&path, MAX_VAR, "MAX_VAR")?;
        out.insert(n, text.lines().next().unwrap_or("").trim().to_string());
    }
    Ok(out)
}

/// `$releasever` as dnf finds it from a root folder: `/etc/dnf/vars/releasever`
/// when there is one. Otherwise `None`: the caller asks the installed
/// packages ([`releasever_from_installed`]), then the image spec.
pub fn releasever_from_root(root: &Path) -> Result<Option<String>> {
    Ok(dnf_vars(root)?
        .remove("releasever")
        .filter(|v| !v.is_empty()))
}

/// The provides dnf looks for, in order, to learn `$releasever` from the
/// installed packages.
const DISTROVERPKG: &[&str] = &[
    "system-release(releasever)",
    "system-release",
    "distribution-release",
    "redhat-release",
    "suse-release",
    "base-files",
];

/// `$releasever` from the installed packages' headers (the base's rpm
/// database), as dnf's `detect_releasever` does: the first of
/// `system-release(releasever)`, `system-release`, … that some package
/// provides; that package's version, unless the provide itself is `=` a
/// version and the package has another name (then that version).
pub fn releasever_from_installed(headers: &[Header]) -> Option<String> {
    for want in DISTROVERPKG {
        for h in headers {
            let names = h.strings(tag::PROVIDENAME);
            let Some(i) = names.iter().position(|n| n == want) else {
                continue;
            };
            let mut release = h.string(tag::VERSION)?;
            let flags = h.ints(tag::PROVIDEFLAGS).get(i).copied().unwrap_or(0);
            let version = h.strings(tag::PROVIDEVERSION).get(i).cloned();
            let name = h.string(tag::NAME).unwrap_or_default();
            if flags & 0xe == 8
                && let Some(v) = version.filter(|v| !v.is_empty())
                && name != *want
            {
                release = v;
            }
            return Some(release);
        }
    }
    None
}

/// One `[section]` as read: its keys with the line and column of each
/// value.
struct Section {
    name: String,
    line: usize,
    keys: BTreeMap<String, (String, usize, usize)>,
}

/// Split INI text into sections (dnf's `.repo` syntax).
fn sections(path: &Path, text: &str) -> Result<Vec<Section>> {
    let err = |line: usize, column: usize, message: String| RepoError::Config {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    let mut out: Vec<Section> = Vec::new();
    let mut last_key: Option<String> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.len() > MAX_LINE {
            return Err(err(
                n,
                1,
                format!("line longer than {MAX_LINE} bytes (MAX_LINE)"),
            ));
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented && let (Some(k), Some(s)) = (&last_key, out.last_mut()) {
            let v = s.keys.get_mut(k).expect("the last key is in its section");
            if !v.0.is_empty() {
                v.0.push('\n');
            }
            v.0.push_str(trimmed);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(n, 1, "a section header must end with `]`".into()));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(err(n, 2, "empty section name".into()));
            }
            if let Some(first) = out.iter().find(|s| s.name == name) {
                return Err(err(
                    n,
                    2,
                    format!("section [{name}] again (first at line {})", first.line),
                ));
            }
            if out.len() == MAX_SECTIONS {
                return Err(err(
                    n,
                    1,
                    format!("more than {MAX_SECTIONS} sections (MAX_SECTIONS)"),
                ));
            }
            out.push(Section {
                name: name.to_string(),
                line: n,
                keys: BTreeMap::new(),
            });
            last_key = None;
            continue;
        }
        let Some(eq) = line.find('=') else {
            let col = line.len() - line.trim_start().len() + 1;
            return Err(err(
                n,
                col,
                "expected `key=value`, a section or a comment".into(),
            ));
        };
        let key = line[..eq].trim().to_ascii_lowercase();
        let value = line[eq + 1..].trim();
        let col = eq + 2 + (line[eq + 1..].len() - line[eq + 1..].trim_start().len());
        let Some(section) = out.last_mut() else {
            return Err(err(n, 1, format!("`{key}` before any [section]")));
        };
        if key.is_empty() {
            return Err(err(n, 1, "a key must have a name".into()));
        }
        section
            .keys
            .insert(key.clone(), (value.to_string(), n, col));
        last_key = Some(key);
    }
    Ok(out)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// A list value: URLs separated by white space, commas or new lines.
fn list(v: &str) -> Vec<String> {
    v.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a section that does not say gets: dnf's own defaults are off;
/// `[main]` of the base's `dnf.conf` may say otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defaults {
    pub gpgcheck: bool,
    pub repo_gpgcheck: bool,
}

/// Read the text of one `.repo` file. `path` names it in errors; `root`,
/// when given, is where `gpgkey=file:///…` resolves (else on this
/// machine); `defaults` gives `gpgcheck` and `repo_gpgcheck` for sections
/// that do not say. Disabled sections are returned too, with
/// `enabled: false`.
pub fn parse_repo_file(
    path: &Path,
    text: &str,
    vars: &Vars,
    root: Option<&Path>,
    defaults: Defaults,
) -> Result<Vec<RepoConfig>> {
    let mut out = Vec::new();
    for s in sections(path, text)? {
        if s.name == "main" {
            continue;
        }
        let err = |line: usize, column: usize, message: String| RepoError::Config {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let get = |k: &str| s.keys.get(k).map(|(v, l, c)| (vars.substitute(v), *l, *c));
        let flag = |k: &str, default: bool| -> Result<bool> {
            match get(k) {
                None => Ok(default),
                Some((v, l, c)) => parse_bool(&v).ok_or_else(|| {
                    err(l, c, format!("`{k}` must be 1 or 0 (or yes/no), not `{v}`"))
                }),
            }
        };
        let mut cfg = RepoConfig {
            name: s.name.clone(),
            title: get("name").map(|v| v.0),
            baseurl: get("baseurl").map(|v| list(&v.0)).unwrap_or_default(),
            mirrorlist: get("mirrorlist").map(|v| v.0).filter(|v| !v.is_empty()),
            metalink: get("metalink").map(|v| v.0).filter(|v| !v.is_empty()),
            gpgkey: Vec::new(),
            gpgcheck: flag("gpgcheck", defaults.gpgcheck)?,
            repo_gpgcheck: flag("repo_gpgcheck", defaults.repo_gpgcheck)?,
            priority: DEFAULT_PRIORITY,
            enabled: flag("enabled", true)?,
            vars: vars.0.clone(),
        };
        if let Some((v, l, c)) = get("priority") {
            cfg.priority = v.trim().parse().map_err(|_| {
                err(
                    l,
                    c,
                    format!("`priority` must be a whole number, not `{v}`"),
                )
            })?;
        }
        if let Some((v, l, c)) = get("gpgkey") {
            for k in list(&v) {
                cfg.gpgkey.push(key_source(&k, root).map_err(|e| match e {
                    RepoError::Config { message, .. } => err(l, c, message),
                    e => e,
                })?);
            }
        }
        if cfg.baseurl.is_empty() && cfg.mirrorlist.is_none() && cfg.metalink.is_none() {
            return Err(RepoError::NoSource {
                path: path.to_path_buf(),
                repo: s.name,
            });
        }
        out.push(cfg);
    }
    Ok(out)
}

fn key_source(k: &str, root: Option<&Path>) -> Result<KeySource> {
    if let Some(p) = k.strip_prefix("file://") {
        if !p.starts_with('/') {
            return Err(RepoError::Config {
                path: PathBuf::new(),
                line: 0,
                column: 0,
                message: format!("`{k}`: a file:// key must name an absolute path"),
            });
        }
        return Ok(KeySource::File(match root {
            Some(r) => resolve_in_root(r, p)?,
            None => PathBuf::from(p),
        }));
    }
    if k.starts_with("http://") || k.starts_with("https://") {
        return Ok(KeySource::Url(k.to_string()));
    }
    Err(RepoError::Config {
        path: PathBuf::new(),
        line: 0,
        column: 0,
        message: format!("`{k}`: a gpgkey must be a file://, http:// or https:// URL"),
    })
}

/// `gpgcheck` from `[main]` of `/etc/dnf/dnf.conf` inside `root` (dnf's
/// default, off, when the file or the key is absent).
pub fn dnf_conf_gpgcheck(root: &Path, vars: &Vars) -> Result<bool> {
    Ok(dnf_conf_bool(root, "gpgcheck", vars)?.unwrap_or(false))
}

/// A yes/no key of `[main]` of `/etc/dnf/dnf.conf` inside `root`
/// (`gpgcheck`, `install_weak_deps`); `None` when the file or the key is
/// absent.
pub fn dnf_conf_bool(root: &Path, key: &str, vars: &Vars) -> Result<Option<bool>> {
    let path = resolve_in_root(root, "/etc/dnf/dnf.conf")?;
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_small(&path, MAX_FILE, "MAX_FILE")?;
    for s in sections(&path, &text)? {
        if s.name == "main"
            && let Some((v, l, c)) = s.keys.get(key)
        {
            let v = vars.substitute(v);
            return parse_bool(&v).map(Some).ok_or_else(|| RepoError::Config {
                path: path.clone(),
                line: *l,
                column: *c,
                message: format!("`{key}` must be 1 or 0 (or yes/no), not `{v}`"),
            });
        }
    }
    Ok(None)
}

/// Every repository of the `.repo` files in `/etc/yum.repos.d` inside
/// `root`, in file name order, then section order (disabled ones too).
/// Variables: `vars` plus `/etc/dnf/vars` (which `vars` overrides);
/// `gpgcheck` and `repo_gpgcheck` default to `[main]` of
/// `/etc/dnf/dnf.conf`.
pub fn read_repos_dir(root: &Path, vars: &Vars) -> Result<Vec<RepoConfig>> {
    let mut all = Vars(dnf_vars(root)?);
    all.0.extend(vars.0.clone());
    let defaults = Defaults {
        gpgcheck: dnf_conf_gpgcheck(root, &all)?,
        repo_gpgcheck: dnf_conf_bool(root, "repo_gpgcheck", &all)?.unwrap_or(false),
    };
    let dir = resolve_in_root(root, "/etc/yum.repos.d")?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(RepoError::Read { path: dir, source }),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|source| RepoError::Read {
            path: dir.clone(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".repo") {
            names.push(name);
        }
        if names.len() > MAX_FILES {
            return Err(RepoError::Config {
                path: dir,
                line: 1,
                column: 1,
                message: format!("more than {MAX_FILES} .repo files (MAX_FILES)"),
            });
        }
    }
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let path = resolve_in_root(root, &format!("/etc/yum.repos.d/{n}"))?;
        if !path.is_file() {
            continue;
        }
        let text = read_small(&path, MAX_FILE, "MAX_FILE")?;
        out.extend(parse_repo_file(&path, &text, &all, Some(root), defaults)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new("2023.6.20241010", "x86_64");
        v.set("awsregion", "us-west-2");
        v
    }

    #[test]
    fn substitution_follows_dnf() {
        let v = vars();
        assert_eq!(
            v.substitute("https://x/$releasever/$basearch/"),
            "https://x/2023.6.20241010/x86_64/"
        );
        assert_eq!(v.substitute("${basearch}os"), "x86_64os");
        // A longer name is another (unknown) variable and stays.
        assert_eq!(
            v.substitute("$basearchos/$nope/${nope}"),
            "$basearchos/$nope/${nope}"
        );
        assert_eq!(v.substitute("a\\$basearch b$ c${"), "a$basearch b$ c${");
        assert_eq!(v.substitute("é$awsregion€"), "éus-west-2€");
    }

    #[test]
    fn repo_file_with_several_sections() {
        let text = "\
# comment
[amazonlinux]
name=Amazon Linux 2023 repository
mirrorlist=https://cdn.example.invalid/al2023/core/mirrors/$releasever/$basearch/mirror.list
priority=10
enabled=1
gpgcheck=1
repo_gpgcheck=1
type=rpm
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-amazon-linux-2023
  https://keys.example.invalid/$awsregion.asc

[amazonlinux-source]
name = Sources
baseurl = http://a.example.invalid/$basearch/ , http://b.example.invalid/
\thttp://c.example.invalid/
enabled = no
";
        let repos = parse_repo_file(
            Path::new("al.repo"),
            text,
            &vars(),
            None,
            Defaults::default(),
        )
        .unwrap();
        assert_eq!(repos.len(), 2);
        let a = &repos[0];
        assert_eq!(a.name, "amazonlinux");
        assert_eq!(a.title.as_deref(), Some("Amazon Linux 2023 repository"));
        assert_eq!(
            a.mirrorlist.as_deref(),
            Some(
                "https://cdn.example.invalid/al2023/core/mirrors/2023.6.20241010/x86_64/mirror.list"
            )
        );
        assert_eq!((a.priority, a.enabled, a.gpgcheck), (10, true, true));
        assert!(a.repo_gpgcheck);
        assert_eq!(
            a.gpgkey,
            vec![
                KeySource::File("/etc/pki/rpm-gpg/RPM-GPG-KEY-amazon-linux-2023".into()),
                KeySource::Url("https://keys.example.invalid/us-west-2.asc".into()),
            ]
        );
        let b = &repos[1];
        assert_eq!(
            b.baseurl,
            [
                "http://a.example.invalid/x86_64/",
                "http://b.example.invalid/",
                "http://c.example.invalid/"
            ]
        );
        assert_eq!((b.priority, b.enabled, b.gpgcheck), (99, false, false));
        assert!(!b.repo_gpgcheck, "dnf's default is off");
        assert_eq!(b.metalink, None);
    }

    #[test]
    fn bad_lines_are_located() {
        let e = |text: &str| {
            parse_repo_file(
                Path::new("x.repo"),
                text,
                &vars(),
                None,
                Defaults::default(),
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            e("baseurl=x\n"),
            "x.repo:1:1: `baseurl` before any [section]"
        );
        assert_eq!(
            e("[a]\nbaseurl=http://x/\nenabled = maybe\n"),
            "x.repo:3:11: `enabled` must be 1 or 0 (or yes/no), not `maybe`"
        );
        assert_eq!(
            e("[a]\nbaseurl=http://x/\npriority=high\n"),
            "x.repo:3:10: `priority` must be a whole number, not `high`"
        );
        assert_eq!(
            e("[a]\nnot a key\n"),
            "x.repo:2:1: expected `key=value`, a section or a comment"
        );
        assert_eq!(
            e("[a]\nbaseurl=http://x/\n[a]\n"),
            "x.repo:3:2: section [a] again (first at line 1)"
        );
        assert_eq!(
            e("[a]\nname=x\n"),
            "`x.repo`: repository `a` has no baseurl, mirrorlist or metalink"
        );
        assert_eq!(
            e("[a]\nbaseurl=http://x/\ngpgkey=ftp://k\n"),
            "x.repo:3:8: `ftp://k`: a gpgkey must be a file://, http:// or https:// URL"
        );
    }

    #[test]
    fn hostile_files_hit_named_limits() {
        let long = format!("[a]\nbaseurl={}\n", "x".repeat(MAX_LINE));
        let e = parse_repo_file(
            Path::new("x.repo"),
            &long,
            &vars(),
            None,
            Defaults::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MAX_LINE"), "{e}");
        let many: String = (0..=MAX_SECTIONS)
            .map(|i| format!("[s{i}]\nbaseurl=http://x/\n"))
            .collect();
        let e = parse_repo_file(
            Path::new("x.repo"),
            &many,
            &vars(),
            None,
            Defaults::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MAX_SECTIONS"), "{e}");

        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("etc/yum.repos.d");
        std::fs::create_dir_all(&d).unwrap();
        let f = std::fs::File::create(d.join("big.repo")).unwrap();
        f.set_len(MAX_FILE + 1).unwrap();
        let e = read_repos_dir(root.path(), &vars()).unwrap_err();
        assert!(e.to_string().contains("MAX_FILE"), "{e}");
    }

    #[test]
    fn a_root_folder_gives_vars_keys_and_defaults() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in [
            "etc/dnf/vars",
            "etc/yum.repos.d",
            "usr/share/keys",
            "etc/pki",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/dnf/vars/releasever"), "2023.4.1\n").unwrap();
        std::fs::write(r.join("etc/dnf/vars/awsdomain"), "example.invalid\n").unwrap();
        std::fs::write(
            r.join("etc/dnf/dnf.conf"),
            "[main]\ngpgcheck=True\nrepo_gpgcheck=1\n",
        )
        .unwrap();
        // The key's folder is an absolute symlink: it resolves in the root.
        std::os::unix::fs::symlink("/usr/share/keys", r.join("etc/pki/rpm-gpg")).unwrap();
        std::fs::write(
            r.join("etc/yum.repos.d/a.repo"),
            "[a]\nbaseurl=http://$awsdomain/$releasever/$basearch/\ngpgkey=file:///etc/pki/../pki/rpm-gpg/KEY\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/yum.repos.d/ignored.txt"), "[x]\n").unwrap();
        assert_eq!(
            releasever_from_root(r).unwrap().as_deref(),
            Some("2023.4.1")
        );
        let v = Vars::new(&releasever_from_root(r).unwrap().unwrap(), "aarch64");
        let repos = read_repos_dir(r, &v).unwrap();
        assert_eq!(repos.len(), 1);
        assert_eq!(
            repos[0].baseurl,
            ["http://example.invalid/2023.4.1/aarch64/"]
        );
        assert!(
            repos[0].gpgcheck && repos[0].repo_gpgcheck,
            "dnf.conf's [main] gpgcheck and repo_gpgcheck are the defaults"
        );
        assert_eq!(
            repos[0].gpgkey,
            vec![KeySource::File(r.join("usr/share/keys/KEY"))]
        );
        // `..` after a symlink is the parent of its target, as in the kernel.
        assert_eq!(
            resolve_in_root(r, "/etc/pki/rpm-gpg/../x").unwrap(),
            r.join("usr/share/x")
        );
        // `..` cannot climb out, symlinks neither.
        std::os::unix::fs::symlink("../../../../..", r.join("etc/up")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/etc/up/etc/dnf/vars/releasever").unwrap(),
            r.join("etc/dnf/vars/releasever")
        );
        assert_eq!(resolve_in_root(r, "/../../etc").unwrap(), r.join("etc"));
        std::os::unix::fs::symlink("loop", r.join("etc/loop")).unwrap();
        assert!(matches!(
            resolve_in_root(r, "/etc/loop"),
            Err(RepoError::SymlinkLoop { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(releasever_from_root(empty.path()).unwrap(), None);
    }

    #[test]
    fn releasever_from_the_real_al2023_rpmdb() {
        let Some(db) = crate::testutil::shared("al2023-plain/rpmdb.sqlite") else {
            return;
        };
        let t = tempfile::tempdir().unwrap();
        let copy = t.path().join("rpmdb.sqlite");
        std::fs::copy(db, &copy).unwrap();
        let headers: Vec<Header> = crate::rpmdb::Rpmdb::open_read_only(&copy)
            .unwrap()
            .packages()
            .unwrap()
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        // system-release provides `system-release = 2023.1.20230825-0.amzn2023`
        // under its own name: the package's version counts.
        assert_eq!(
            releasever_from_installed(&headers).as_deref(),
            Some("2023.1.20230825")
        );
    }
}
