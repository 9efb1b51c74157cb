//! The package spec (`ingot build`'s input): raw TOML shape, validation, and
//! the typed model the RPM builder consumes. See `docs/spec.md` for every key.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::diag::SpecError;
use crate::rpm::dep::{self, Dependency};
use crate::systemd::unit;

/// A place in the spec file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub column: usize,
}

/// `config = true` or `config = "noreplace"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Config {
    #[default]
    No,
    Yes,
    NoReplace,
}

#[derive(Debug, Clone, Default)]
pub struct Dependencies {
    pub requires: Vec<Dependency>,
    pub provides: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    pub recommends: Vec<Dependency>,
    pub suggests: Vec<Dependency>,
    pub supplements: Vec<Dependency>,
    pub enhances: Vec<Dependency>,
    /// Add what the payload needs (ELF sonames, `#!` interpreters).
    pub auto: bool,
}

/// One `[[files]]` entry: a file, a directory copied recursively, or a ghost.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// Absolute path on disk; `None` for a ghost.
    pub src: Option<PathBuf>,
    pub dest: String,
    pub mode: Option<u16>,
    /// Mode of the directories created when `src` is a directory.
    pub dir_mode: Option<u16>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub config: Config,
    pub doc: bool,
    pub ghost: bool,
    pub caps: Option<String>,
    pub at: Loc,
}

#[derive(Debug, Clone)]
pub struct DirSpec {
    pub path: String,
    pub mode: Option<u16>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub at: Loc,
}

#[derive(Debug, Clone)]
pub struct SymlinkSpec {
    pub path: String,
    pub target: String,
    pub at: Loc,
}

#[derive(Debug, Clone)]
pub struct UserSpec {
    pub name: String,
    pub uid: Option<u32>,
    pub group: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub gid: Option<u32>,
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct UnitSpec {
    /// The unit file on disk.
    pub src: PathBuf,
    /// Its name, which is also its file name under `/usr/lib/systemd/system/`.
    pub name: String,
    pub enable: bool,
    pub unit: unit::UnitFile,
    pub at: Loc,
}

#[derive(Debug, Clone, Default)]
pub struct Scripts {
    pub pre: Option<String>,
    pub post: Option<String>,
    pub preun: Option<String>,
    pub postun: Option<String>,
    pub pretrans: Option<String>,
    pub posttrans: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// Seconds since the epoch (a date means 12:00 UTC that day).
    pub time: u64,
    pub author: String,
    pub text: String,
}

/// A validated package spec.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    /// The spec file, as given.
    pub file: PathBuf,
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub license: String,
    pub url: Option<String>,
    pub vendor: Option<String>,
    pub packager: Option<String>,
    pub group: Option<String>,
    pub deps: Dependencies,
    pub files: Vec<FileSpec>,
    pub dirs: Vec<DirSpec>,
    pub symlinks: Vec<SymlinkSpec>,
    pub users: Vec<UserSpec>,
    pub groups: Vec<GroupSpec>,
    pub units: Vec<UnitSpec>,
    pub scripts: Scripts,
    /// Newest first.
    pub changelog: Vec<ChangelogEntry>,
    /// Things that are allowed but worth a second look (setuid modes,
    /// modes anyone may write), each naming file, line and column.
    pub warnings: Vec<String>,
}

impl PackageSpec {
    /// `[epoch:]version-release`
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// `name-version-release.arch`
    pub fn nvra(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }

    /// An error at `at` in this spec.
    pub fn error_at(&self, at: Loc, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.clone(),
            location: Some((at.line, at.column)),
            message: message.into(),
            hint: None,
        }
    }
}

pub const ARCHES: &[&str] = &["x86_64", "aarch64", "noarch"];

// ---------------------------------------------------------------------------
// Raw TOML shape. Every struct denies unknown keys; values that can be wrong
// in ways serde cannot see keep their span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    package: RawPackage,
    #[serde(default)]
    dependencies: RawDeps,
    #[serde(default)]
    files: Vec<RawFile>,
    #[serde(default)]
    dirs: Vec<RawDir>,
    #[serde(default)]
    symlinks: Vec<RawSymlink>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    groups: Vec<RawGroup>,
    #[serde(default)]
    systemd: Vec<RawUnit>,
    #[serde(default)]
    scripts: RawScripts,
    #[serde(default)]
    changelog: Vec<RawChangelog>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: Spanned<String>,
    version: Spanned<String>,
    release: Option<Spanned<String>>,
    epoch: Option<Spanned<i64>>,
    arch: Spanned<String>,
    summary: Spanned<String>,
    description: Option<Spanned<String>>,
    license: Spanned<String>,
    url: Option<Spanned<String>>,
    vendor: Option<Spanned<String>>,
    packager: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDeps {
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    provides: Vec<Spanned<String>>,
    #[serde(default)]
    conflicts: Vec<Spanned<String>>,
    #[serde(default)]
    obsoletes: Vec<Spanned<String>>,
    #[serde(default)]
    recommends: Vec<Spanned<String>>,
    #[serde(default)]
    suggests: Vec<Spanned<String>>,
    #[serde(default)]
    supplements: Vec<Spanned<String>>,
    #[serde(default)]
    enhances: Vec<Spanned<String>>,
    auto: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    src: Option<Spanned<String>>,
    dest: Spanned<String>,
    mode: Option<Spanned<toml::Value>>,
    dir_mode: Option<Spanned<toml::Value>>,
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    config: Option<Spanned<toml::Value>>,
    #[serde(default)]
    doc: bool,
    #[serde(default)]
    ghost: bool,
    caps: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    path: Spanned<String>,
    mode: Option<Spanned<toml::Value>>,
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymlink {
    path: Spanned<String>,
    target: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    uid: Option<Spanned<i64>>,
    group: Option<Spanned<String>>,
    home: Option<Spanned<String>>,
    shell: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    gid: Option<Spanned<i64>>,
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    unit: Spanned<String>,
    enable: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScripts {
    pre: Option<Spanned<String>>,
    post: Option<Spanned<String>>,
    preun: Option<Spanned<String>>,
    postun: Option<Spanned<String>>,
    pretrans: Option<Spanned<String>>,
    posttrans: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChangelog {
    date: Spanned<toml::Value>,
    author: Spanned<String>,
    text: Spanned<String>,
}

// ---------------------------------------------------------------------------

/// What a `src` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SrcKind {
    File,
    FileOrDir,
}

/// Why a mode is worth a warning ("setuid and writable by every user"):
/// setuid or setgid, or writable by the group or by everyone. `None` when
/// the mode is unremarkable. A folder everyone may write to with the
/// sticky bit (`/tmp`'s 1777) is deliberate and fine: only the owner of an
/// entry may remove it.
pub fn mode_concern(mode: u16, is_dir: bool) -> Option<String> {
    let mut what = Vec::new();
    if mode & 0o4000 != 0 {
        what.push("setuid");
    }
    if mode & 0o2000 != 0 {
        what.push("setgid");
    }
    let sticky_dir = is_dir && mode & 0o1000 != 0;
    if mode & 0o002 != 0 && !sticky_dir {
        what.push("writable by every user");
    } else if mode & 0o020 != 0 && !sticky_dir {
        what.push("writable by its group");
    }
    (!what.is_empty()).then(|| what.join(" and "))
}

pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) dir: PathBuf,
}

impl Cx<'_> {
    pub(super) fn err<T>(&self, v: &Spanned<T>, message: impl Into<String>) -> SpecError {
        SpecError::at(self.file, self.text, v.span(), message)
    }

    pub(super) fn loc<T>(&self, v: &Spanned<T>) -> Loc {
        let (line, column) = super::diag::line_col(self.text, v.span().start);
        Loc { line, column }
    }

    /// A path in the spec, relative to the spec's folder, naming what
    /// `kind` allows. Anything else (a FIFO, a device, a socket) is
    /// refused here: reading one would block or never end.
    pub(super) fn src(&self, v: &Spanned<String>, kind: SrcKind) -> Result<PathBuf, SpecError> {
        let raw = v.get_ref();
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(self.err(
                v,
                format!("source path contains the control character {c:?}"),
            ));
        }
        let p = self.dir.join(raw);
        // `./x` when the spec is in the current folder reads as `x`.
        let p = p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p);
        let Ok(link) = std::fs::symlink_metadata(&p) else {
            return Err(self
                .err(v, format!("source `{}` does not exist", p.display()))
                .with_hint("paths in a spec are relative to the spec's folder"));
        };
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(e) if link.is_symlink() => {
                return Err(self.err(
                    v,
                    format!(
                        "source `{}` is a symlink that leads nowhere: {e}",
                        p.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(self.err(v, format!("cannot read source `{}`: {e}", p.display())));
            }
        };
        let ft = meta.file_type();
        if ft.is_file() || (ft.is_dir() && kind == SrcKind::FileOrDir) {
            return Ok(p);
        }
        let what = crate::input::describe(ft);
        let via = if link.is_symlink() {
            " (through a symlink)"
        } else {
            ""
        };
        let allowed = match kind {
            SrcKind::File => "a regular file",
            SrcKind::FileOrDir => "a regular file or a folder",
        };
        Err(self.err(
            v,
            format!(
                "source `{}` is {what}{via}; a source must be {allowed}, or a symlink to one",
                p.display()
            ),
        ))
    }

    /// A text value in which only the control characters in `allowed`
    /// may appear.
    fn clean(&self, v: &Spanned<String>, what: &str, allowed: &[char]) -> Result<(), SpecError> {
        let s = v.get_ref();
        if let Some(c) = s.chars().find(|c| c.is_control() && !allowed.contains(c)) {
            let mut e = self.err(v, format!("{what} contains the control character {c:?}"));
            if c == '\t' {
                e = e.with_hint("use spaces instead of tabs");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Text that may span lines (a description, a changelog text).
    pub(super) fn text_field(&self, v: &Spanned<String>, what: &str) -> Result<String, SpecError> {
        let s = v.get_ref();
        if s.trim().is_empty() {
            return Err(self.err(v, format!("{what} is empty")));
        }
        self.clean(v, what, &['\n'])?;
        Ok(s.clone())
    }

    /// Text on one line: no control character at all.
    pub(super) fn line_field(&self, v: &Spanned<String>, what: &str) -> Result<String, SpecError> {
        let s = v.get_ref();
        if s.trim().is_empty() {
            return Err(self.err(v, format!("{what} is empty")));
        }
        if s.contains('\n') {
            return Err(self.err(v, format!("{what} must be a single line")));
        }
        self.clean(v, what, &[])?;
        Ok(s.clone())
    }

    /// A scriptlet body: a shell script, where line breaks and tabs are
    /// ordinary; any other control character would reach rpm's header.
    pub(super) fn script_field(
        &self,
        v: &Spanned<String>,
        what: &str,
    ) -> Result<String, SpecError> {
        self.clean(v, what, &['\n', '\t'])?;
        Ok(v.get_ref().clone())
    }

    /// Modes are octal: `"0755"` or `0o755`. A bare decimal such as `755`
    /// is refused because it almost never means what it looks like.
    pub(super) fn mode(&self, v: &Spanned<toml::Value>) -> Result<u16, SpecError> {
        let raw = &self.text[v.span()];
        let n = match v.get_ref() {
            toml::Value::String(s) => {
                let digits = s.strip_prefix("0o").unwrap_or(s);
                u32::from_str_radix(digits, 8).map_err(|_| {
                    self.err(
                        v,
                        format!(
                            "mode `{}` is not an octal number such as \"0755\"",
                            super::diag::escape(s)
                        ),
                    )
                })?
            }
            toml::Value::Integer(i) if raw.trim_start().starts_with("0o") => {
                u32::try_from(*i).unwrap_or(u32::MAX)
            }
            toml::Value::Integer(_) => {
                return Err(self
                    .err(v, format!("mode `{raw}` is a decimal number"))
                    .with_hint(format!("write modes in octal: \"0{raw}\" or 0o{raw}")));
            }
            _ => return Err(self.err(v, "mode must be a string such as \"0755\"")),
        };
        if n > 0o7777 {
            return Err(self.err(v, format!("mode {n:o} has bits beyond 07777")));
        }
        Ok(n as u16)
    }

    pub(super) fn account(&self, v: &Spanned<String>, what: &str) -> Result<String, SpecError> {
        let s = v.get_ref();
        if !valid_account_name(s) {
            return Err(self.err(
                v,
                format!(
                    "{what} `{}` is not a valid name (lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 31 characters)",
                    super::diag::escape(s)
                ),
            ));
        }
        Ok(s.clone())
    }

    pub(super) fn dest(&self, v: &Spanned<String>) -> Result<String, SpecError> {
        normalize_dest(v.get_ref()).map_err(|m| self.err(v, m))
    }

    pub(super) fn deps(&self, list: &[Spanned<String>]) -> Result<Vec<Dependency>, SpecError> {
        list.iter()
            .map(|d| {
                dep::parse(d.get_ref()).map_err(|e| {
                    // Point inside the string: +1 for the opening quote.
                    let at = d.span().start + 1 + e.offset;
                    SpecError::at(self.file, self.text, at..at, e.message)
                })
            })
            .collect()
    }
}

/// Names as `useradd` and systemd-sysusers accept them portably.
pub fn valid_account_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 31
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// An absolute, normalised destination path (no `.`, `..`, `//`, trailing `/`).
pub fn normalize_dest(p: &str) -> Result<String, String> {
    if let Some(c) = p.chars().find(|c| c.is_control()) {
        return Err(format!(
            "`{}` contains the control character {c:?}",
            super::diag::escape(p)
        ));
    }
    if !p.starts_with('/') {
        return Err(format!("`{p}` is not an absolute path"));
    }
    let mut parts = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("`{p}` contains `.` or `..`"));
            }
        }
    }
    if parts.is_empty() {
        return Err("`/` itself cannot be packaged".to_string());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn changelog_time(cx: &Cx, v: &Spanned<toml::Value>) -> Result<u64, SpecError> {
    let bad = || {
        cx.err(
            v,
            "changelog date must be a date such as 2024-05-01 (or \"2024-05-01\")",
        )
    };
    let dt: toml::value::Datetime = match v.get_ref() {
        toml::Value::Datetime(d) => *d,
        toml::Value::String(s) => s.parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let date = dt.date.ok_or_else(bad)?;
    let midnight =
        crate::source_date::midnight_utc(date.year, date.month, date.day).ok_or_else(bad)?;
    let secs = match (dt.time, dt.offset) {
        (Some(t), offset) => {
            let off = match offset {
                Some(toml::value::Offset::Custom { minutes }) => i64::from(minutes) * 60,
                _ => 0,
            };
            midnight
                + i64::from(t.hour) * 3600
                + i64::from(t.minute) * 60
                + i64::from(t.second.unwrap_or(0))
                - off
        }
        // rpm reads a changelog date as noon of that day.
        (None, _) => midnight + 12 * 3600,
    };
    u64::try_from(secs).map_err(|_| cx.err(v, "changelog date is before 1970"))
}

/// Read, parse and validate a package spec.
pub fn load_package(file: &Path) -> Result<PackageSpec, SpecError> {
    let text = super::diag::read_spec_text(file)?;
    parse_package(file, &text)
}

/// Parse and validate a package spec whose text is already in memory.
/// `file` locates relative paths and names the spec in errors.
pub fn parse_package(file: &Path, text: &str) -> Result<PackageSpec, SpecError> {
    let raw: Raw = toml::from_str(text).map_err(|e| SpecError::from_toml(file, text, &e))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cx = Cx { file, text, dir };
    let p = &raw.package;

    let name = cx.line_field(&p.name, "package name")?;
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._+".contains(*c)))
    {
        return Err(cx.err(
            &p.name,
            format!(
                "package name `{name}` contains `{c}`; allowed are letters, digits and - . _ +"
            ),
        ));
    }
    if name.starts_with(['-', '.']) {
        return Err(cx.err(&p.name, "package name must start with a letter or digit"));
    }
    let version = p.version.get_ref().clone();
    dep::check_version_chars("version", &version).map_err(|m| cx.err(&p.version, m))?;
    let release = match &p.release {
        Some(r) => {
            dep::check_version_chars("release", r.get_ref()).map_err(|m| cx.err(r, m))?;
            r.get_ref().clone()
        }
        None => "1".to_string(),
    };
    let epoch = match &p.epoch {
        Some(e) => Some(
            u32::try_from(*e.get_ref())
                .map_err(|_| cx.err(e, "epoch must be a whole number from 0"))?,
        ),
        None => None,
    };
    let arch = p.arch.get_ref().clone();
    if !ARCHES.contains(&arch.as_str()) {
        let mut e = cx.err(
            &p.arch,
            format!(
                "arch `{}` is not one of {}",
                super::diag::escape(&arch),
                ARCHES.join(", ")
            ),
        );
        if let Some(m) = super::diag::did_you_mean(&arch, ARCHES.iter().copied()) {
            e = e.with_hint(format!("did you mean `{m}`?"));
        }
        return Err(e);
    }
    let summary = cx.line_field(&p.summary, "summary")?;
    let description = match &p.description {
        Some(d) => cx.text_field(d, "description")?,
        None => summary.clone(),
    };
    let license = cx.line_field(&p.license, "license")?;
    let opt_line = |v: &Option<Spanned<String>>, what: &str| -> Result<Option<String>, SpecError> {
        v.as_ref().map(|v| cx.line_field(v, what)).transpose()
    };
    let url = opt_line(&p.url, "url")?;
    let vendor = opt_line(&p.vendor, "vendor")?;
    let packager = opt_line(&p.packager, "packager")?;
    let group = opt_line(&p.group, "group")?;

    let d = &raw.dependencies;
    let deps = Dependencies {
        requires: cx.deps(&d.requires)?,
        provides: cx.deps(&d.provides)?,
        conflicts: cx.deps(&d.conflicts)?,
        obsoletes: cx.deps(&d.obsoletes)?,
        recommends: cx.deps(&d.recommends)?,
        suggests: cx.deps(&d.suggests)?,
        supplements: cx.deps(&d.supplements)?,
        enhances: cx.deps(&d.enhances)?,
        auto: d.auto.unwrap_or(true),
    };
    for (list, raw, negative) in [
        (&deps.requires, &d.requires, false),
        (&deps.recommends, &d.recommends, false),
        (&deps.suggests, &d.suggests, false),
        (&deps.conflicts, &d.conflicts, true),
        (&deps.supplements, &d.supplements, true),
        (&deps.enhances, &d.enhances, true),
    ] {
        for (dep, raw) in list.iter().zip(raw) {
            if let Dependency::Rich { expr, .. } = dep {
                dep::check_rich_context(expr, negative).map_err(|m| cx.err(raw, m))?;
            }
        }
    }
    for (list, what) in [(&deps.provides, "provides"), (&deps.obsoletes, "obsoletes")] {
        if let Some(i) = list.iter().position(|d| d.is_rich()) {
            let raw = if what == "provides" {
                &d.provides[i]
            } else {
                &d.obsoletes[i]
            };
            return Err(cx.err(raw, format!("rich dependencies are not allowed in {what}")));
        }
    }

    let mut warnings = Vec::new();
    let files = parse_files(&cx, &raw.files, &mut warnings)?;
    let dirs = parse_dirs(&cx, &raw.dirs, &mut warnings)?;

    let mut symlinks = Vec::new();
    for s in &raw.symlinks {
        let target = cx.line_field(&s.target, "symlink target")?;
        symlinks.push(SymlinkSpec {
            path: cx.dest(&s.path)?,
            target,
            at: cx.loc(&s.path),
        });
    }

    let mut users = Vec::new();
    for u in &raw.users {
        let id = |v: &Option<Spanned<i64>>, what: &str| -> Result<Option<u32>, SpecError> {
            match v {
                Some(v) => match u32::try_from(*v.get_ref()) {
                    Ok(n) if n < 65_535 => Ok(Some(n)),
                    _ => Err(cx.err(v, format!("{what} must be from 0 to 65534"))),
                },
                None => Ok(None),
            }
        };
        users.push(UserSpec {
            name: cx.account(&u.name, "user name")?,
            uid: id(&u.uid, "uid")?,
            group: u
                .group
                .as_ref()
                .map(|g| cx.account(g, "group"))
                .transpose()?,
            home: u.home.as_ref().map(|h| cx.dest(h)).transpose()?,
            shell: u.shell.as_ref().map(|h| cx.dest(h)).transpose()?,
            description: opt_line(&u.description, "description")?,
        });
    }
    let mut groups = Vec::new();
    for g in &raw.groups {
        let gid = match &g.gid {
            Some(v) => match u32::try_from(*v.get_ref()) {
                Ok(n) if n < 65_535 => Some(n),
                _ => return Err(cx.err(v, "gid must be from 0 to 65534")),
            },
            None => None,
        };
        groups.push(GroupSpec {
            name: cx.account(&g.name, "group name")?,
            gid,
            members: g
                .members
                .iter()
                .map(|m| cx.account(m, "member"))
                .collect::<Result<_, _>>()?,
        });
    }
    check_unique(&cx, raw.users.iter().map(|u| &u.name), "user")?;
    check_unique(&cx, raw.groups.iter().map(|g| &g.name), "group")?;

    let mut units = Vec::new();
    for u in &raw.systemd {
        let src = cx.src(&u.unit, SrcKind::File)?;
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        unit::check_unit_name(&name).map_err(|m| cx.err(&u.unit, m))?;
        let text = std::fs::read_to_string(&src).map_err(|e| {
            cx.err(
                &u.unit,
                format!("cannot read unit `{}`: {e}", src.display()),
            )
        })?;
        let parsed = unit::parse(&text).map_err(|e| SpecError {
            file: src.clone(),
            location: Some((e.line, e.column)),
            message: e.message.clone(),
            hint: None,
        })?;
        let enable = u.enable.unwrap_or(true);
        if enable {
            unit::check_installable(&parsed, &name).map_err(|e| SpecError {
                file: src.clone(),
                location: Some((e.line, e.column)),
                message: e.message.clone(),
                hint: Some(
                    "add an [Install] section with WantedBy=multi-user.target, or set enable = false"
                        .to_string(),
                ),
            })?;
        }
        units.push(UnitSpec {
            src,
            name,
            enable,
            unit: parsed,
            at: cx.loc(&u.unit),
        });
    }
    check_unique(&cx, raw.systemd.iter().map(|u| &u.unit), "systemd unit")?;

    let scripts = parse_scripts(&cx, &raw.scripts)?;
    let changelog = parse_changelog(&cx, &raw.changelog)?;

    Ok(PackageSpec {
        file: file.to_path_buf(),
        name,
        epoch,
        version,
        release,
        arch,
        summary,
        description,
        license,
        url,
        vendor,
        packager,
        group,
        deps,
        files,
        dirs,
        symlinks,
        users,
        groups,
        units,
        scripts,
        changelog,
        warnings,
    })
}

/// The `[[files]]` entries, checked.
fn parse_files(
    cx: &Cx,
    raw: &[RawFile],
    warnings: &mut Vec<String>,
) -> Result<Vec<FileSpec>, SpecError> {
    let mut files = Vec::new();
    for f in raw {
        let dest = cx.dest(&f.dest)?;
        let src = match (&f.src, f.ghost) {
            (Some(s), false) => Some(cx.src(s, SrcKind::FileOrDir)?),
            (None, true) => None,
            (Some(s), true) => {
                return Err(cx.err(s, "a ghost file has no `src` (it is created at run time)"));
            }
            (None, false) => {
                return Err(cx.err(&f.dest, format!("`{dest}` has no `src`")).with_hint(
                    "add `src = \"...\"`, or `ghost = true` for a file created at run time",
                ));
            }
        };
        let config = match &f.config {
            None => Config::No,
            Some(v) => match v.get_ref() {
                toml::Value::Boolean(true) => Config::Yes,
                toml::Value::Boolean(false) => Config::No,
                toml::Value::String(s) if s == "noreplace" => Config::NoReplace,
                _ => return Err(cx.err(v, "config must be true, false or \"noreplace\"")),
            },
        };
        let is_dir = src.as_ref().is_some_and(|s| s.is_dir());
        if let Some(v) = &f.dir_mode
            && !is_dir
        {
            return Err(cx.err(v, "dir_mode only applies when `src` is a directory"));
        }
        let caps = match &f.caps {
            Some(c) => {
                cx.line_field(c, "caps")?;
                ::rpm::FileOptions::new("/x")
                    .caps(c.get_ref().as_str())
                    .map_err(|e| cx.err(c, format!("capabilities `{}`: {e}", c.get_ref())))?;
                Some(c.get_ref().clone())
            }
            None => None,
        };
        let mode = f.mode.as_ref().map(|m| cx.mode(m)).transpose()?;
        let dir_mode = f.dir_mode.as_ref().map(|m| cx.mode(m)).transpose()?;
        for (m, v, is_dir) in [(mode, &f.mode, false), (dir_mode, &f.dir_mode, true)] {
            if let (Some(m), Some(v)) = (m, v) {
                warn_mode(cx, v, (m, is_dir), &dest, warnings);
            }
        }
        files.push(FileSpec {
            src,
            dest,
            mode,
            dir_mode,
            user: f.user.as_ref().map(|u| cx.account(u, "user")).transpose()?,
            group: f
                .group
                .as_ref()
                .map(|g| cx.account(g, "group"))
                .transpose()?,
            config,
            doc: f.doc,
            ghost: f.ghost,
            caps,
            at: cx.loc(&f.dest),
        });
    }
    Ok(files)
}

/// The `[[dirs]]` entries, checked.
fn parse_dirs(
    cx: &Cx,
    raw: &[RawDir],
    warnings: &mut Vec<String>,
) -> Result<Vec<DirSpec>, SpecError> {
    let mut dirs = Vec::new();
    for d in raw {
        let path = cx.dest(&d.path)?;
        let mode = d.mode.as_ref().map(|m| cx.mode(m)).transpose()?;
        if let (Some(m), Some(v)) = (mode, &d.mode) {
            warn_mode(cx, v, (m, true), &path, warnings);
        }
        dirs.push(DirSpec {
            path,
            mode,
            user: d.user.as_ref().map(|u| cx.account(u, "user")).transpose()?,
            group: d
                .group
                .as_ref()
                .map(|g| cx.account(g, "group"))
                .transpose()?,
            at: cx.loc(&d.path),
        });
    }
    Ok(dirs)
}

/// A warning, located at `v`, when `mode` (of a folder when `is_dir`)
/// deserves a second look.
pub(super) fn warn_mode(
    cx: &Cx,
    v: &Spanned<toml::Value>,
    (mode, is_dir): (u16, bool),
    path: &str,
    warnings: &mut Vec<String>,
) {
    if let Some(concern) = mode_concern(mode, is_dir) {
        let message = format!("`{path}` gets mode {mode:04o}, which is {concern}");
        warnings.push(cx.err(v, message).to_string());
    }
}

/// The `[scripts]` bodies.
fn parse_scripts(cx: &Cx, s: &RawScripts) -> Result<Scripts, SpecError> {
    let body = |v: &Option<Spanned<String>>, what: &str| {
        v.as_ref()
            .map(|v| cx.script_field(v, &format!("script `{what}`")))
            .transpose()
    };
    Ok(Scripts {
        pre: body(&s.pre, "pre")?,
        post: body(&s.post, "post")?,
        preun: body(&s.preun, "preun")?,
        postun: body(&s.postun, "postun")?,
        pretrans: body(&s.pretrans, "pretrans")?,
        posttrans: body(&s.posttrans, "posttrans")?,
    })
}

/// The `[[changelog]]` entries, newest first (as rpm wants them).
fn parse_changelog(cx: &Cx, raw: &[RawChangelog]) -> Result<Vec<ChangelogEntry>, SpecError> {
    let mut changelog = Vec::new();
    for c in raw {
        let text = cx.text_field(&c.text, "changelog text")?;
        // `rpm -q --changelog` starts each entry with a line "* DATE
        // AUTHOR"; a text line that starts with `*` would read as another
        // entry (rpmbuild's own %changelog cannot hold one either).
        if let Some(n) = text.lines().position(|l| l.starts_with('*')) {
            return Err(cx
                .err(
                    &c.text,
                    format!(
                        "line {} of the changelog text starts with `*`, which `rpm -q --changelog` would show as the start of another entry",
                        n + 1
                    ),
                )
                .with_hint("start the line with `-` or a space"));
        }
        changelog.push(ChangelogEntry {
            time: changelog_time(cx, &c.date)?,
            author: cx.line_field(&c.author, "changelog author")?,
            text,
        });
    }
    changelog.sort_by_key(|c| std::cmp::Reverse(c.time));
    Ok(changelog)
}

fn check_unique<'a>(
    cx: &Cx,
    names: impl Iterator<Item = &'a Spanned<String>>,
    what: &str,
) -> Result<(), SpecError> {
    let mut seen: std::collections::BTreeMap<&str, Loc> = Default::default();
    for n in names {
        if let Some(first) = seen.get(n.get_ref().as_str()) {
            return Err(cx.err(
                n,
                format!(
                    "{what} `{}` is declared twice (first at line {})",
                    n.get_ref(),
                    first.line
                ),
            ));
        }
        seen.insert(n.get_ref(), cx.loc(n));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The changelog time of a spec whose one entry has `date = DATE`.
    fn changelog_time_of(date: &str) -> Result<u64, String> {
        let text = format!(
            "[package]\nname = \"t\"\nversion = \"1\"\nrelease = \"1\"\narch = \"noarch\"\n\
             summary = \"s\"\ndescription = \"d\"\nlicense = \"MIT\"\n\
             [[changelog]]\ndate = {date}\nauthor = \"a\"\ntext = \"- t\"\n"
        );
        parse_package(Path::new("t.toml"), &text)
            .map(|p| p.changelog[0].time)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn changelog_dates_are_noon_utc_and_times_keep_their_offset() {
        // 2024-05-01T00:00:00Z is 1714521600.
        assert_eq!(
            changelog_time_of("2024-05-01"),
            Ok(1_714_521_600 + 12 * 3600)
        );
        assert_eq!(changelog_time_of("\"2024-05-01\""), Ok(1_714_564_800));
        assert_eq!(changelog_time_of("2024-02-29"), Ok(1_709_208_000));
        assert_eq!(changelog_time_of("2024-05-01T10:30:00Z"), Ok(1_714_559_400));
        assert_eq!(
            changelog_time_of("2024-05-01T10:30:00+02:00"),
            Ok(1_714_552_200)
        );
        assert_eq!(
            changelog_time_of("2024-05-01T10:30:00-05:30"),
            Ok(1_714_579_200)
        );
        assert_eq!(changelog_time_of("2024-05-01T10:30:00"), Ok(1_714_559_400));
        // A leap second is the first second of the next minute.
        assert_eq!(changelog_time_of("2016-12-31T23:59:60Z"), Ok(1_483_228_800));
        assert_eq!(changelog_time_of("1970-01-01T00:00:00Z"), Ok(0));
        let early = changelog_time_of("1969-12-31").unwrap_err();
        assert!(early.contains("before 1970"), "{early}");
        for bad in [
            "\"2023-02-29\"",
            "\"2024-13-01\"",
            "10:30:00",
            "\"yesterday\"",
        ] {
            let e = changelog_time_of(bad).unwrap_err();
            assert!(e.contains("2024-05-01"), "{bad}: {e}");
        }
    }

    #[test]
    fn modes_worth_a_warning_are_setuid_setgid_and_writable_by_others() {
        assert_eq!(mode_concern(0o755, false), None);
        assert_eq!(mode_concern(0o4755, false).as_deref(), Some("setuid"));
        assert_eq!(
            mode_concern(0o6777, false).as_deref(),
            Some("setuid and setgid and writable by every user")
        );
        assert_eq!(
            mode_concern(0o775, true).as_deref(),
            Some("writable by its group")
        );
        // /tmp: world-writable with the sticky bit is what a folder means.
        assert_eq!(mode_concern(0o1777, true), None);
        assert_eq!(
            mode_concern(0o1777, false).as_deref(),
            Some("writable by every user")
        );
    }
}
