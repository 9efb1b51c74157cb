//! Enable, disable, preset and mask units in a root filesystem, as
//! `systemctl --root=DIR preset|enable|disable|mask` of systemd 252 (what
//! Amazon Linux 2023 and Debian 12 ship) would: by the symlinks under
//! `/etc/systemd/system` they create and remove.
//!
//! In: a [`UnitTree`], the view of the unit search path that matters
//! (unit files with their parsed text, empty files, and symlinks, by their
//! absolute path in the root: `/usr/lib/systemd/system/x.service`,
//! drop-ins such as `/etc/systemd/system/x.service.d/y.conf`, and every
//! symlink under `/etc/systemd/system`); the preset rules
//! ([`PresetRules`], built for systemd 252 with
//! [`PresetRules::for_systemd_version`]); and [`Operation`]s, applied in
//! order, each like one `systemctl` call: typically `preset` of the units
//! each package ships, then the image's own `enable`, `disable` and `mask`.
//!
//! Out ([`Outcome`]): the symlinks to create (path -> target, the target
//! written as systemctl writes it: the unit file's absolute path in the
//! root, e.g. `/usr/lib/systemd/system/hello.service`, or `/dev/null` for
//! a mask), the symlinks to remove, the directories that removal left
//! empty (systemctl removes them), every symlink under
//! `/etc/systemd/system` afterwards, and the warnings systemctl prints.
//!
//! It never touches the filesystem, never starts, stops or reloads
//! anything, never runs SysV init scripts (`systemd-sysv-install`), and
//! never writes anything outside `/etc/systemd/system`. Unit names must be
//! full names (`x.service`; systemctl would append `.service` itself);
//! paths to unit files are not accepted.
//!
//! Rules followed, read from systemd 252's `src/shared/install.c`,
//! `src/basic/unit-file.c`, `src/shared/install-printf.c`,
//! `src/systemctl/systemctl-enable.c` and systemctl(1), systemd.unit(5)
//! ("\[Install\] Section Options"), systemd.preset(5):
//! - finding a unit: the first of the search path directories
//!   ([`SEARCH_PATH`]) holding the name, else (for an instance) its
//!   template; a symlink there pointing into the search path is an alias
//!   (followed to the unit it names, keeping the instance), one pointing
//!   outside a linked unit file, one to `/dev/null` or to an empty file a
//!   mask; `[Install]` is read from the file, then from its drop-ins
//!   (`NAME.d/*.conf` and the template's, in every search directory,
//!   sorted by file name, the first directory winning a name);
//! - `[Install]`: `WantedBy=`, `RequiredBy=`, `Alias=` are lists an empty
//!   value resets (`Alias=` ignored for units that cannot have one);
//!   `Also=` names more units to process; `DefaultInstance=` only counts
//!   for templates; `UpheldBy=` is not known to systemd 252; the
//!   specifiers `%n %N %p %i %j %%` are expanded;
//! - enable: `X.wants/NAME` for `WantedBy=X`, `X.requires/NAME` for
//!   `RequiredBy=X`, `/etc/systemd/system/A` for `Alias=A`, all pointing
//!   at the unit file; NAME is the instance for a template with
//!   `DefaultInstance=` (or the instance enabled), the link still pointing
//!   at the template file; a template without an instance cannot be
//!   enabled through `WantedBy=`/`RequiredBy=`; an alias of a template
//!   enabled as an instance gets the same instance; a linked unit file
//!   (outside the search path) also gets `/etc/systemd/system/NAME`;
//!   `.wants`/`.requires` links replace whatever link is in the way, an
//!   alias or link does not (error), unless it already points at the
//!   same file, or at a file of the same name in the search path; the
//!   units of `Also=` are enabled too, and one of them failing is only a
//!   warning;
//! - disable: every symlink under `/etc/systemd/system` (any depth, not
//!   into symlinked directories) named like the unit, named like an
//!   instance of it (for a template), or resolving (symlinks followed) to
//!   a file of its name, is removed, in passes until one removes nothing;
//!   the units of `Also=` too; directories it empties go too;
//! - preset: per unit, the first matching preset rule (none: enable);
//!   `disable` removes links as disable does but without `Also=`; all
//!   removals happen before the enables; an alias name is skipped; a
//!   template without instance to enable is silently left alone;
//! - mask: `/etc/systemd/system/NAME` -> `/dev/null`, refused if another
//!   file or link is there; the unit need not exist; existing links of
//!   the unit stay;
//! - refusals: a unit that does not exist (enable, disable, preset), one
//!   that is masked (enable, and preset when it says enable), one in a
//!   generator or transient directory, a name that is not a unit name,
//!   and `enable` by a name that is an alias symlink in
//!   `/etc/systemd/system` ("refusing to operate on linked unit file").
//!   Debian's search path also has `/lib/systemd/system`; pass it with
//!   [`UnitTree::with_search_path`] to imitate Debian.
//!
//! Decided here: an `enable` that creates no link at all (a unit without
//! `WantedBy=`, `RequiredBy=`, `Alias=` or `Also=`) is an error
//! ([`ErrorKind::NoInstallInfo`]); systemctl only prints a notice and
//! succeeds. Any error systemctl reports makes the whole operation fail
//! here, with none of its links; systemctl may have created some before
//! failing, and sometimes exits 0 after printing the error. When one
//! removal pass meets links that point at other links being removed, the
//! order of the pass matters to systemctl (directory order); here links
//! are visited sorted by path.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::preset::{PresetAction, PresetRules};
use super::unit::{self, UnitFile, UnitType};

/// Where systemctl creates and removes links (the persistent
/// configuration directory).
pub const CONFIG_DIR: &str = "/etc/systemd/system";

/// The system unit search path of systemd 252 built for a merged-/usr
/// system such as Amazon Linux 2023, most important first (`systemd-analyze
/// unit-paths` without `/lib/systemd/system`).
pub const SEARCH_PATH: [&str; 12] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

const RUNTIME_CONFIG_DIR: &str = "/run/systemd/system";
const GENERATED_DIRS: [&str; 4] = [
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
    "/run/systemd/transient",
];
const SYMLINK_MAX: usize = 32;
const FOLLOW_MAX: usize = 64;

/// Something at a path of a [`UnitTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file with content, parsed.
    File(Box<UnitFile>),
    /// An empty regular file (for a unit: masked).
    Empty,
    /// A symlink, with its target as written (absolute or relative).
    Symlink(String),
}

/// The unit files, drop-ins and symlinks of a root, by absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitTree {
    search_path: Vec<String>,
    nodes: BTreeMap<String, Node>,
}

impl Default for UnitTree {
    fn default() -> Self {
        UnitTree::new()
    }
}

impl UnitTree {
    /// An empty tree with the Amazon Linux 2023 [`SEARCH_PATH`].
    pub fn new() -> Self {
        UnitTree::with_search_path(SEARCH_PATH)
    }

    /// An empty tree with another search path (most important first).
    pub fn with_search_path<I, S>(dirs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        UnitTree {
            search_path: dirs.into_iter().map(|d| normalize(d.as_ref())).collect(),
            nodes: BTreeMap::new(),
        }
    }

    /// Add a unit file (or drop-in) at an absolute path.
    pub fn add_file(&mut self, path: &str, unit: UnitFile) {
        self.nodes
            .insert(normalize(path), Node::File(Box::new(unit)));
    }

    /// Add a unit file `name` in directory `dir`.
    pub fn add_unit(&mut self, dir: &str, name: &str, unit: UnitFile) {
        self.add_file(&format!("{dir}/{name}"), unit);
    }

    /// Add an empty file (an empty unit file masks the unit).
    pub fn add_empty_file(&mut self, path: &str) {
        self.nodes.insert(normalize(path), Node::Empty);
    }

    /// Add a symlink at `path` pointing at `target` (as `readlink` gives
    /// it). Symlinked directories (like `/lib` -> `usr/lib`) are followed.
    pub fn add_symlink(&mut self, path: &str, target: &str) {
        self.nodes
            .insert(normalize(path), Node::Symlink(target.to_string()));
    }

    /// Everything in the tree, by path.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// The symlinks under a directory (any depth), path -> target.
    pub fn symlinks_under(&self, dir: &str) -> BTreeMap<String, String> {
        let prefix = format!("{}/", normalize(dir));
        self.nodes
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, n)| match n {
                Node::Symlink(t) => Some((p.clone(), t.clone())),
                _ => None,
            })
            .collect()
    }
}

/// What an [`Operation`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Preset,
    Enable,
    Disable,
    Mask,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Preset => "preset",
            Verb::Enable => "enable",
            Verb::Disable => "disable",
            Verb::Mask => "mask",
        }
    }
}

/// One `systemctl VERB UNIT...` call (no units: nothing happens, as with
/// systemctl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub verb: Verb,
    pub units: Vec<String>,
}

impl Operation {
    fn new<I, S>(verb: Verb, units: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Operation {
            verb,
            units: units.into_iter().map(Into::into).collect(),
        }
    }

    /// `systemctl preset UNIT...`.
    pub fn preset<I: IntoIterator<Item = S>, S: Into<String>>(units: I) -> Self {
        Operation::new(Verb::Preset, units)
    }

    /// `systemctl enable UNIT...`.
    pub fn enable<I: IntoIterator<Item = S>, S: Into<String>>(units: I) -> Self {
        Operation::new(Verb::Enable, units)
    }

    /// `systemctl disable UNIT...`.
    pub fn disable<I: IntoIterator<Item = S>, S: Into<String>>(units: I) -> Self {
        Operation::new(Verb::Disable, units)
    }

    /// `systemctl mask UNIT...`.
    pub fn mask<I: IntoIterator<Item = S>, S: Into<String>>(units: I) -> Self {
        Operation::new(Verb::Mask, units)
    }
}

/// What the operations change under [`CONFIG_DIR`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Symlinks to create, path -> target: new ones and ones whose target
    /// changes (replace the existing link).
    pub created: BTreeMap<String, String>,
    /// Symlinks to remove (they existed and are gone afterwards).
    pub removed: BTreeSet<String>,
    /// Directories under [`CONFIG_DIR`] that held removed links and hold
    /// nothing of the tree afterwards (systemctl removes them when empty).
    pub emptied_dirs: BTreeSet<String>,
    /// Every symlink under [`CONFIG_DIR`] afterwards.
    pub links: BTreeMap<String, String>,
    /// What systemctl warns about or notes, in order.
    pub warnings: Vec<String>,
}

/// The kind of an [`EnableError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not a valid unit name.
    InvalidName,
    /// No such unit in the search path.
    NotFound,
    /// The unit is masked.
    Masked,
    /// The unit is generated or transient.
    Generated,
    /// `enable` of a unit whose `[Install]` creates no link.
    NoInstallInfo,
    /// A file or another link is where a link should go.
    AlreadyExists,
    /// `WantedBy=`/`RequiredBy=` of a template without an instance, or
    /// naming a template.
    NotTemplate,
    /// An alias or symlink that does not fit the unit.
    BadAlias,
    /// A symlink in the configuration directory where a unit file was
    /// expected, or too many symlinks.
    Loop,
    /// An alias pointing at a unit that does not exist.
    Dangling,
    /// A `%` specifier that needs the running system, or an unknown one.
    Specifier,
    /// A template or instance of a unit type that cannot be templated.
    CannotTemplate,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed to {} {}: {message}", .verb.as_str(), .units.join(" "))]
pub struct EnableError {
    pub verb: Verb,
    pub units: Vec<String>,
    pub kind: ErrorKind,
    pub message: String,
}

/// Apply the operations in order. Errors on the first operation that
/// fails (see the module doc); the outcome covers all of them.
pub fn apply(
    tree: &UnitTree,
    presets: &PresetRules,
    operations: &[Operation],
) -> Result<Outcome, EnableError> {
    let before = tree.symlinks_under(CONFIG_DIR);
    let mut state = State {
        search_path: tree.search_path.clone(),
        nodes: tree.nodes.clone(),
        warnings: Vec::new(),
        removed_from: BTreeSet::new(),
    };
    for op in operations.iter().filter(|op| !op.units.is_empty()) {
        let result = match op.verb {
            Verb::Preset => state.preset(presets, &op.units),
            Verb::Enable => state.enable(&op.units),
            Verb::Disable => state.disable(&op.units),
            Verb::Mask => state.mask(&op.units),
        };
        if let Err(fail) = result {
            let (kind, message) = fail.describe();
            return Err(EnableError {
                verb: op.verb,
                units: op.units.clone(),
                kind,
                message,
            });
        }
    }
    let after: BTreeMap<String, String> = state
        .nodes
        .iter()
        .filter(|(p, _)| p.starts_with(&format!("{CONFIG_DIR}/")))
        .filter_map(|(p, n)| match n {
            Node::Symlink(t) => Some((p.clone(), t.clone())),
            _ => None,
        })
        .collect();
    let created = after
        .iter()
        .filter(|(p, t)| before.get(*p) != Some(*t))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    let removed = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    let emptied_dirs = state
        .removed_from
        .iter()
        .filter(|d| {
            let prefix = format!("{d}/");
            !state.nodes.keys().any(|p| p.starts_with(&prefix))
        })
        .cloned()
        .collect();
    Ok(Outcome {
        created,
        removed,
        emptied_dirs,
        links: after,
        warnings: state.warnings,
    })
}

// ---------------------------------------------------------------------------
// Failures, as systemd's negative change types

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fail {
    InvalidName(String),
    NotFound(String),
    Masked(String),
    Generated(String),
    NoInstallInfo,
    Exists {
        path: String,
        dest: Option<String>,
    },
    NotTemplate {
        dst: String,
        unit: String,
    },
    BadAlias {
        path: String,
        unit: Option<String>,
    },
    /// A self-alias: quietly skipped where systemd skips it.
    SelfAlias,
    /// `-EXDEV` from following an alias of another name (internal).
    OtherName,
    Loop(String),
    Dangling(String),
    Specifier(String),
    CannotTemplate(String),
}

impl Fail {
    fn describe(&self) -> (ErrorKind, String) {
        match self {
            Fail::InvalidName(n) => (
                ErrorKind::InvalidName,
                format!("\"{n}\" is not a valid unit name"),
            ),
            Fail::NotFound(n) => (ErrorKind::NotFound, format!("unit {n} does not exist")),
            Fail::Masked(p) => (ErrorKind::Masked, format!("unit {p} is masked")),
            Fail::Generated(p) => (
                ErrorKind::Generated,
                format!("unit {p} is transient or generated"),
            ),
            Fail::NoInstallInfo => (
                ErrorKind::NoInstallInfo,
                "the unit files have no installation config (WantedBy=, RequiredBy=, Also=, \
                 Alias= settings in the [Install] section, and DefaultInstance= for template \
                 units), so enabling them creates nothing"
                    .to_string(),
            ),
            Fail::Exists { path, dest } => (
                ErrorKind::AlreadyExists,
                match dest {
                    Some(d) => {
                        format!("file \"{path}\" already exists and is a symlink to \"{d}\"")
                    }
                    None => format!("file \"{path}\" already exists"),
                },
            ),
            Fail::NotTemplate { dst, unit } => (
                ErrorKind::NotTemplate,
                format!(
                    "{unit} cannot be linked from {dst}: destination unit is a non-template unit, or the unit is a template without an instance"
                ),
            ),
            Fail::BadAlias { path, unit } => (
                ErrorKind::BadAlias,
                match unit {
                    Some(u) => format!("cannot alias {u} as {path}"),
                    None => format!("invalid unit reference \"{path}\""),
                },
            ),
            Fail::SelfAlias | Fail::OtherName => {
                (ErrorKind::BadAlias, "unexpected alias".to_string())
            }
            Fail::Loop(p) => (
                ErrorKind::Loop,
                format!("refusing to operate on linked unit file {p}"),
            ),
            Fail::Dangling(n) => (
                ErrorKind::Dangling,
                format!("{n} is an alias to a unit that is not present"),
            ),
            Fail::Specifier(s) => (
                ErrorKind::Specifier,
                format!("cannot resolve specifiers in \"{s}\""),
            ),
            Fail::CannotTemplate(n) => (
                ErrorKind::CannotTemplate,
                format!("unit type of {n} cannot be templated"),
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Names

fn valid_name(name: &str) -> bool {
    unit::check_unit_name(name).is_ok()
}

fn is_plain(name: &str) -> bool {
    valid_name(name) && !name.contains('@')
}

fn is_instance(name: &str) -> bool {
    unit::instance(name).is_some()
}

fn is_template(name: &str) -> bool {
    unit::is_template(name)
}

fn unit_type(name: &str) -> Option<UnitType> {
    unit::check_unit_name(name).ok()
}

/// systemd's `unit_type_may_template()`.
fn may_template(t: UnitType) -> bool {
    matches!(
        t,
        UnitType::Service | UnitType::Socket | UnitType::Target | UnitType::Timer | UnitType::Path
    )
}

/// systemd's `unit_type_may_alias()` (devices included).
fn may_alias(t: UnitType) -> bool {
    matches!(
        t,
        UnitType::Service
            | UnitType::Socket
            | UnitType::Target
            | UnitType::Device
            | UnitType::Timer
            | UnitType::Path
    )
}

/// `foo@.service` + `bar` = `foo@bar.service` (also for an instance).
fn replace_instance(name: &str, instance: &str) -> Option<String> {
    let dot = name.rfind('.')?;
    let at = name[..dot].find('@')?;
    Some(format!("{}{instance}{}", &name[..=at], &name[dot..]))
}

/// The part before `@` (or before the suffix).
fn prefix(name: &str) -> &str {
    let stem = name.rfind('.').map_or(name, |d| &name[..d]);
    stem.split_once('@').map_or(stem, |(p, _)| p)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// `path_simplify()`: drop empty and `.` components and trailing slashes
/// (`..` is kept).
fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// `path_startswith()` on whole components.
fn starts_with_dir(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Split a list value as `extract_first_word(EXTRACT_UNQUOTE |
/// EXTRACT_RETAIN_ESCAPE)` does: whitespace separates, quotes group and
/// go, a backslash stays with the character after it; broken quoting
/// ends the list.
fn list_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        let mut quote = None;
        loop {
            let Some(c) = chars.next() else {
                if quote.is_some() {
                    return words;
                }
                break;
            };
            match (quote, c) {
                (None, c) if c.is_ascii_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    word.push('\\');
                    match chars.next() {
                        Some(n) => word.push(n),
                        None => return words,
                    }
                }
                (_, c) => word.push(c),
            }
        }
        words.push(word);
    }
}

// ---------------------------------------------------------------------------
// Install info, as systemd's InstallInfo

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Regular,
    Linked,
    Alias,
    Masked,
}

#[derive(Debug, Clone, Default)]
struct Info {
    name: String,
    path: Option<String>,
    mode: Option<Mode>,
    aliases: Vec<String>,
    wanted_by: Vec<String>,
    required_by: Vec<String>,
    also: Vec<String>,
    default_instance: Option<String>,
    symlink_target: Option<String>,
    auxiliary: bool,
}

impl Info {
    fn rules(&self) -> usize {
        self.aliases.len() + self.wanted_by.len() + self.required_by.len()
    }
}

/// An install context: units to process, in order, and processed ones.
#[derive(Debug, Default)]
struct Ctx {
    will: Vec<String>,
    have: Vec<String>,
    infos: BTreeMap<String, Info>,
    warnings: Vec<String>,
}

impl Ctx {
    fn contains(&self, name: &str) -> bool {
        self.infos.contains_key(name)
    }

    /// `install_info_add()`.
    fn add(&mut self, name: &str, auxiliary: bool) -> Result<(), Fail> {
        if !valid_name(name) {
            return Err(Fail::InvalidName(name.to_string()));
        }
        if let Some(info) = self.infos.get_mut(name) {
            info.auxiliary = info.auxiliary && auxiliary;
            return Ok(());
        }
        self.infos.insert(
            name.to_string(),
            Info {
                name: name.to_string(),
                auxiliary,
                ..Info::default()
            },
        );
        self.will.push(name.to_string());
        Ok(())
    }

    fn info(&self, name: &str) -> Info {
        self.infos.get(name).cloned().unwrap_or_default()
    }

    fn info_mut(&mut self, name: &str) -> &mut Info {
        self.infos.entry(name.to_string()).or_insert_with(|| Info {
            name: name.to_string(),
            ..Info::default()
        })
    }

    /// Move the first unit to process to the processed ones.
    fn next(&mut self) -> Option<String> {
        if self.will.is_empty() {
            return None;
        }
        let name = self.will.remove(0);
        self.have.push(name.clone());
        Some(name)
    }
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    load: bool,
    follow_config_symlinks: bool,
}

const LOAD: Flags = Flags {
    load: true,
    follow_config_symlinks: false,
};
const FOLLOW: Flags = Flags {
    load: false,
    follow_config_symlinks: true,
};
const LOAD_FOLLOW: Flags = Flags {
    load: true,
    follow_config_symlinks: true,
};
const PLAIN: Flags = Flags {
    load: false,
    follow_config_symlinks: false,
};

struct State {
    search_path: Vec<String>,
    nodes: BTreeMap<String, Node>,
    warnings: Vec<String>,
    /// Directories links were removed from.
    removed_from: BTreeSet<String>,
}

impl State {
    // --- the filesystem view ---------------------------------------------

    /// Resolve symlinks in `path` (`chase_symlinks()` with
    /// `CHASE_NONEXISTENT`): a missing component ends the resolution.
    fn chase(&self, path: &str, follow_final: bool) -> Result<String, Fail> {
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .rev()
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let next = format!("/{}", {
                let mut d = done.clone();
                d.push(c.clone());
                d.join("/")
            });
            if (!todo.is_empty() || follow_final)
                && let Some(Node::Symlink(target)) = self.nodes.get(&next)
            {
                hops += 1;
                if hops > SYMLINK_MAX {
                    return Err(Fail::Loop(path.to_string()));
                }
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .map(str::to_string)
                        .rev(),
                );
                continue;
            }
            done.push(c);
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// The node at `path`, its directories resolved (as `open()` with
    /// `O_NOFOLLOW` sees it).
    fn node(&self, path: &str) -> Option<&Node> {
        let parent = self.chase(dirname(path), true).ok()?;
        let full = if parent == "/" {
            format!("/{}", basename(path))
        } else {
            format!("{parent}/{}", basename(path))
        };
        self.nodes.get(&full)
    }

    /// `null_or_empty_path_with_root()`: `/dev/null`, or (symlinks
    /// followed) an empty file.
    fn null_or_empty(&self, path: &str) -> bool {
        if path == "/dev/null" {
            return true;
        }
        match self.chase(path, true) {
            Ok(p) => p == "/dev/null" || matches!(self.nodes.get(&p), Some(Node::Empty)),
            Err(_) => false,
        }
    }

    fn under_search_path(&self, path: &str) -> bool {
        self.search_path.iter().any(|d| starts_with_dir(path, d))
    }

    fn in_search_path(&self, path: &str) -> bool {
        let parent = dirname(path);
        self.search_path.iter().any(|d| d == parent)
    }

    // --- loading units ---------------------------------------------------

    /// `unit_file_load_or_readlink()`.
    fn load_or_readlink(
        &self,
        ctx: &mut Ctx,
        name: &str,
        path: &str,
        flags: Flags,
    ) -> Result<usize, Fail> {
        if let Some(t) = unit_type(name)
            && !is_plain(name)
            && !may_template(t)
        {
            return Err(Fail::CannotTemplate(name.to_string()));
        }
        match self.node(path) {
            None => Err(Fail::NotFound(name.to_string())),
            Some(Node::Empty) => {
                ctx.info_mut(name).mode = Some(Mode::Masked);
                Ok(0)
            }
            Some(Node::File(unit)) => {
                if !flags.load {
                    ctx.info_mut(name).mode = Some(Mode::Regular);
                    return Ok(0);
                }
                self.read_install(ctx, name, unit)?;
                let info = ctx.info_mut(name);
                info.mode = Some(Mode::Regular);
                Ok(info.rules())
            }
            Some(Node::Symlink(target)) => {
                let (resolved, outside) = self.resolve_unit_symlink(path, target)?;
                let mode = if self.null_or_empty(&resolved) {
                    Mode::Masked
                } else if outside {
                    Mode::Linked
                } else {
                    Mode::Alias
                };
                let info = ctx.info_mut(name);
                info.symlink_target = Some(resolved);
                info.mode = Some(mode);
                Ok(0)
            }
        }
    }

    /// `unit_file_resolve_symlink()` for installation: the absolute target
    /// (`.`/`..` and symlinked directories resolved), and whether it is
    /// outside the search path (a linked unit file or a mask).
    fn resolve_unit_symlink(&self, path: &str, target: &str) -> Result<(String, bool), Fail> {
        let joined = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("{}/{target}", dirname(path))
        };
        let simplified = self.chase(&joined, false)?;
        if self.under_search_path(&simplified) {
            match validate_alias(basename(path), &simplified) {
                Ok(()) => {}
                Err(Fail::SelfAlias) => return Err(Fail::Loop(path.to_string())),
                Err(e) => return Err(e),
            }
            Ok((simplified, false))
        } else {
            Ok((simplified, true))
        }
    }

    /// Apply one file's `[Install]` section to the info of `name`.
    fn read_install(&self, ctx: &mut Ctx, name: &str, unit: &UnitFile) -> Result<(), Fail> {
        let ty = unit_type(name);
        for entry in unit.entries().iter().filter(|e| e.section == "Install") {
            let value = entry.value.as_str();
            match entry.key.as_str() {
                "Alias" => {
                    if ty.is_some_and(|t| !may_alias(t)) {
                        ctx.warnings.push(format!(
                            "{name}: Alias= is not allowed for this unit type, ignoring"
                        ));
                        continue;
                    }
                    strv(&mut ctx.info_mut(name).aliases, value);
                }
                "WantedBy" => strv(&mut ctx.info_mut(name).wanted_by, value),
                "RequiredBy" => strv(&mut ctx.info_mut(name).required_by, value),
                "DefaultInstance" => {
                    if is_instance(name) {
                        continue;
                    }
                    if !is_template(name) {
                        ctx.warnings.push(format!(
                            "{name}: DefaultInstance= only makes sense for template units, \
                             ignoring"
                        ));
                        continue;
                    }
                    let info = ctx.info(name);
                    let printed = match printf(&info, value) {
                        Ok(p) => p,
                        Err(_) => {
                            ctx.warnings.push(format!(
                                "{name}: failed to resolve DefaultInstance=\"{value}\", ignoring"
                            ));
                            continue;
                        }
                    };
                    if !printed.is_empty()
                        && replace_instance(name, &printed).is_none_or(|n| !is_instance(&n))
                    {
                        ctx.warnings.push(format!(
                            "{name}: invalid DefaultInstance= value \"{printed}\", ignoring"
                        ));
                        continue;
                    }
                    ctx.info_mut(name).default_instance = (!printed.is_empty()).then_some(printed);
                }
                "Also" => {
                    for word in value.split_ascii_whitespace() {
                        let info = ctx.info(name);
                        let printed = match printf(&info, word) {
                            Ok(p) => p,
                            Err(_) => {
                                ctx.warnings.push(format!(
                                    "{name}: failed to resolve unit name in Also=\"{word}\", \
                                     ignoring"
                                ));
                                continue;
                            }
                        };
                        ctx.add(&printed, true)?;
                        ctx.info_mut(name).also.push(printed);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `unit_file_search()`.
    fn search(&self, ctx: &mut Ctx, name: &str, flags: Flags) -> Result<usize, Fail> {
        let info = ctx.info(name);
        if info.mode.is_some() {
            return Ok(0);
        }
        if let Some(path) = info.path {
            return self.load_or_readlink(ctx, name, &path, flags);
        }
        let template = if is_instance(name) {
            unit::template_name(name)
        } else {
            None
        };
        let mut found = None;
        let candidates = std::iter::once(name).chain(template.as_deref());
        'outer: for n in candidates {
            for dir in &self.search_path {
                let path = format!("{dir}/{n}");
                match self.load_or_readlink(ctx, name, &path, flags) {
                    Ok(r) => {
                        ctx.info_mut(name).path = Some(path);
                        found = Some(r);
                        break 'outer;
                    }
                    Err(Fail::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let Some(result) = found else {
            return Err(Fail::NotFound(name.to_string()));
        };
        if ctx.info(name).mode == Some(Mode::Masked) || !flags.load {
            return Ok(result);
        }
        // Drop-ins: NAME.d/*.conf, then the template's, in every directory.
        let mut dirs: Vec<String> = self
            .search_path
            .iter()
            .map(|d| format!("{d}/{name}.d"))
            .collect();
        if let Some(t) = &template {
            dirs.extend(self.search_path.iter().map(|d| format!("{d}/{t}.d")));
        }
        let mut dropins: BTreeMap<String, String> = BTreeMap::new();
        for dir in &dirs {
            let Ok(real) = self.chase(dir, true) else {
                continue;
            };
            let prefix = format!("{real}/");
            for path in self.nodes.keys() {
                if let Some(file) = path.strip_prefix(&prefix)
                    && !file.contains('/')
                    && file.ends_with(".conf")
                    && !dropins.contains_key(file)
                {
                    dropins.insert(file.to_string(), path.clone());
                }
            }
        }
        for path in dropins.values() {
            if self.null_or_empty(path) {
                continue;
            }
            let resolved = self.chase(path, true)?;
            if let Some(Node::File(unit)) = self.nodes.get(&resolved) {
                self.read_install(ctx, name, unit)?;
            }
        }
        Ok(result)
    }

    /// `install_info_follow()`.
    fn follow(
        &self,
        ctx: &mut Ctx,
        name: &str,
        flags: Flags,
        ignore_different_name: bool,
    ) -> Result<usize, Fail> {
        let info = ctx.info(name);
        let Some(target) = info.symlink_target.clone() else {
            return Err(Fail::Loop(name.to_string()));
        };
        if !ignore_different_name && basename(&target) != name {
            return Err(Fail::OtherName);
        }
        let info = ctx.info_mut(name);
        info.path = Some(target.clone());
        info.symlink_target = None;
        info.mode = None;
        self.load_or_readlink(ctx, name, &target, flags)
    }

    /// `install_info_traverse()`: search, then follow aliases and links.
    /// Returns the name of the unit finally reached.
    fn traverse(&self, ctx: &mut Ctx, start: &str, flags: Flags) -> Result<String, Fail> {
        self.search(ctx, start, flags)?;
        let mut i = start.to_string();
        let mut hops = 0;
        while let Some(mode @ (Mode::Alias | Mode::Linked)) = ctx.info(&i).mode {
            hops += 1;
            if hops > FOLLOW_MAX {
                return Err(Fail::Loop(i));
            }
            let path = ctx.info(&i).path.unwrap_or_default();
            if !flags.follow_config_symlinks {
                let parent = dirname(&path);
                if parent == CONFIG_DIR || parent == RUNTIME_CONFIG_DIR {
                    return Err(Fail::Loop(path));
                }
            }
            match self.follow(ctx, &i, flags, mode == Mode::Linked) {
                Err(Fail::OtherName) => {
                    let target = ctx.info(&i).symlink_target.unwrap_or_default();
                    let mut bn = basename(&target).to_string();
                    if is_instance(&i) && is_template(&bn) {
                        let instance = unit::instance(&i).unwrap_or_default().to_string();
                        if let Some(buffer) = replace_instance(&bn, &instance) {
                            if buffer == i {
                                self.follow(ctx, &i, flags, true)?;
                                continue;
                            }
                            bn = buffer;
                        }
                    }
                    ctx.add(&bn, false)?;
                    i = bn;
                    match self.search(ctx, &i, flags) {
                        Err(Fail::NotFound(_)) => return Err(Fail::Dangling(i)),
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(i)
    }

    /// `install_info_discover()`.
    fn discover(&self, ctx: &mut Ctx, name: &str, flags: Flags) -> Result<String, Fail> {
        ctx.add(name, false)?;
        self.traverse(ctx, name, flags)
    }

    /// `install_info_discover_and_check()`.
    fn discover_and_check(&self, ctx: &mut Ctx, name: &str, flags: Flags) -> Result<String, Fail> {
        let found = self.discover(ctx, name, flags)?;
        let info = ctx.info(&found);
        let path = info.path.clone().unwrap_or_default();
        if info.mode == Some(Mode::Masked) {
            return Err(Fail::Masked(path));
        }
        if GENERATED_DIRS.contains(&dirname(&path)) {
            return Err(Fail::Generated(path));
        }
        Ok(found)
    }

    /// `unit_file_exists()`.
    fn exists(&self, name: &str) -> bool {
        let mut ctx = Ctx::default();
        !matches!(self.discover(&mut ctx, name, PLAIN), Err(Fail::NotFound(_)))
    }

    // --- creating and removing links -------------------------------------

    /// `create_symlink()`.
    fn create_symlink(&mut self, old_path: &str, new_path: &str, force: bool) -> Result<(), Fail> {
        let new_path = normalize(new_path);
        match self.nodes.get(&new_path) {
            None => {}
            Some(Node::Symlink(dest)) => {
                if self.equivalent(&new_path, dest, old_path) {
                    return Ok(());
                }
                if !force {
                    return Err(Fail::Exists {
                        path: new_path,
                        dest: Some(dest.clone()),
                    });
                }
            }
            Some(_) => {
                return Err(Fail::Exists {
                    path: new_path,
                    dest: None,
                });
            }
        }
        self.nodes
            .insert(new_path, Node::Symlink(old_path.to_string()));
        Ok(())
    }

    /// `chroot_unit_symlinks_equivalent()`: the same path, the same file,
    /// or files of the same name in the search path.
    fn equivalent(&self, src: &str, a: &str, b: &str) -> bool {
        let abs = |t: &str| {
            if t.starts_with('/') {
                normalize(t)
            } else {
                normalize(&format!("{}/{t}", dirname(src)))
            }
        };
        let (a, b) = (abs(a), abs(b));
        if a == b {
            return true;
        }
        if let (Ok(ra), Ok(rb)) = (self.chase(&a, true), self.chase(&b, true))
            && ra == rb
            && matches!(self.nodes.get(&ra), Some(Node::File(_) | Node::Empty))
        {
            return true;
        }
        basename(&a) == basename(&b) && self.under_search_path(&a) && self.under_search_path(&b)
    }

    /// `install_info_apply()`: the links of one unit. Returns how many
    /// link rules it had.
    fn apply_info(&mut self, ctx: &mut Ctx, name: &str, preset: bool) -> Result<usize, Fail> {
        let info = ctx.info(name);
        if info.mode != Some(Mode::Regular) {
            return Ok(0);
        }
        let path = info.path.clone().unwrap_or_default();
        if !self.in_search_path(&path) {
            self.create_symlink(&path, &format!("{CONFIG_DIR}/{name}"), false)?;
        }
        let mut count = 0;
        for alias in &info.aliases {
            let dst = printf(&info, alias)?;
            let updated = match verify_alias(&info, &dst) {
                Ok(u) => u,
                Err(Fail::SelfAlias) => continue,
                Err(e) => return Err(e),
            };
            let alias_path = format!("{CONFIG_DIR}/{}", updated.as_deref().unwrap_or(&dst));
            self.create_symlink(&path, &alias_path, false)?;
            count += 1;
        }
        count += self.symlink_wants(&info, &info.wanted_by, ".wants/", preset)?;
        count += self.symlink_wants(&info, &info.required_by, ".requires/", preset)?;
        Ok(count)
    }

    /// `install_info_symlink_wants()`.
    fn symlink_wants(
        &mut self,
        info: &Info,
        list: &[String],
        suffix: &str,
        preset: bool,
    ) -> Result<usize, Fail> {
        if list.is_empty() {
            return Ok(0);
        }
        let mut template_without_instance = false;
        let n = if !is_template(&info.name) {
            info.name.clone()
        } else if let Some(di) = &info.default_instance {
            let instance = replace_instance(&info.name, di)
                .ok_or_else(|| Fail::InvalidName(info.name.clone()))?;
            let mut scratch = Ctx::default();
            scratch.infos.insert(
                instance.clone(),
                Info {
                    name: instance.clone(),
                    ..Info::default()
                },
            );
            self.search(&mut scratch, &instance, FOLLOW)?;
            let found = scratch.info(&instance);
            if found.mode == Some(Mode::Masked) {
                return Err(Fail::Masked(found.path.unwrap_or_default()));
            }
            instance
        } else {
            template_without_instance = true;
            info.name.clone()
        };
        let path = info.path.clone().unwrap_or_default();
        let mut count = 0;
        for s in list {
            let dst = printf(info, s)?;
            let fits = if template_without_instance {
                is_instance(&dst) || is_template(&dst)
            } else {
                valid_name(&dst)
            };
            if !fits {
                if preset {
                    continue;
                }
                if valid_name(&dst) {
                    return Err(Fail::NotTemplate { dst, unit: n });
                }
                return Err(Fail::InvalidName(dst));
            }
            self.create_symlink(&path, &format!("{CONFIG_DIR}/{dst}{suffix}{n}"), true)?;
            count += 1;
            if !self.exists(&dst) {
                self.warnings.push(format!(
                    "Unit {path} is added as a dependency to a non-existent unit {dst}."
                ));
            }
        }
        Ok(count)
    }

    /// `install_context_apply()`: enable every unit of the context.
    fn apply_context(&mut self, ctx: &mut Ctx, preset: bool) -> Result<usize, Fail> {
        let mut count = 0;
        while let Some(name) = ctx.next() {
            if let Err(e) = self.traverse(ctx, &name, LOAD) {
                if ctx.info(&name).auxiliary {
                    self.warnings
                        .push(format!("Failed to enable auxiliary unit {name}, ignoring."));
                    continue;
                }
                return Err(e);
            }
            let info = ctx.info(&name);
            if info.mode == Some(Mode::Masked) {
                self.warnings.push(format!(
                    "Unit {} is masked, ignoring.",
                    info.path.unwrap_or_default()
                ));
                count += 1;
                continue;
            }
            if info.mode != Some(Mode::Regular) {
                continue;
            }
            count += self.apply_info(ctx, &name, preset)?;
        }
        self.warnings.append(&mut ctx.warnings);
        Ok(count)
    }

    /// `install_context_mark_for_removal()`: the names whose links go.
    fn mark_for_removal(&mut self, ctx: &mut Ctx) -> Result<BTreeSet<String>, Fail> {
        let mut marked = BTreeSet::new();
        while let Some(name) = ctx.next() {
            match self.traverse(ctx, &name, LOAD_FOLLOW) {
                Err(Fail::Dangling(_)) => {
                    self.warnings.push(format!(
                        "Unit {name} is an alias to a unit that is not present, ignoring."
                    ));
                }
                Err(Fail::NotFound(n)) => {
                    if !ctx.info(&name).auxiliary {
                        return Err(Fail::NotFound(n));
                    }
                }
                Err(e) => return Err(e),
                Ok(_) => {
                    let info = ctx.info(&name);
                    if info.mode == Some(Mode::Masked) {
                        self.warnings.push(format!(
                            "Unit {} is masked, ignoring.",
                            info.path.unwrap_or(name)
                        ));
                        continue;
                    }
                    if info.mode != Some(Mode::Regular) {
                        continue;
                    }
                }
            }
            marked.insert(name);
        }
        self.warnings.append(&mut ctx.warnings);
        Ok(marked)
    }

    /// `remove_marked_symlinks()`: remove the links under
    /// [`CONFIG_DIR`] named like, or resolving to, a marked name, until a
    /// pass removes nothing.
    fn remove_marked(&mut self, mut marked: BTreeSet<String>) -> Result<(), Fail> {
        if marked.is_empty() {
            return Ok(());
        }
        loop {
            let mut restart = false;
            let links: Vec<String> = self
                .nodes
                .iter()
                .filter(|(p, n)| matches!(n, Node::Symlink(_)) && starts_with_dir(p, CONFIG_DIR))
                .map(|(p, _)| p.clone())
                .collect();
            for link in links {
                if !self.nodes.contains_key(&link) || !self.reachable(&link) {
                    continue;
                }
                let name = basename(&link);
                if !valid_name(name) {
                    continue;
                }
                let mut found = marked.contains(name)
                    || unit::template_name(name).is_some_and(|t| marked.contains(&t));
                if !found {
                    let dest = self.chase(&link, true)?;
                    found = marked.contains(basename(&dest));
                }
                if !found {
                    continue;
                }
                self.nodes.remove(&link);
                let mut dir = dirname(&link).to_string();
                while starts_with_dir(&dir, CONFIG_DIR) && dir != CONFIG_DIR {
                    self.removed_from.insert(dir.clone());
                    dir = dirname(&dir).to_string();
                }
                if marked.insert(link) {
                    restart = true;
                }
            }
            if !restart {
                return Ok(());
            }
        }
    }

    /// Whether a path under [`CONFIG_DIR`] is reached by walking real
    /// directories (systemd does not descend into symlinked ones).
    fn reachable(&self, path: &str) -> bool {
        let mut dir = dirname(path);
        while dir != CONFIG_DIR && starts_with_dir(dir, CONFIG_DIR) {
            if matches!(self.nodes.get(dir), Some(Node::Symlink(_))) {
                return false;
            }
            dir = dirname(dir);
        }
        true
    }

    // --- the verbs -------------------------------------------------------

    fn check_names(units: &[String]) -> Result<(), Fail> {
        match units.iter().find(|u| !valid_name(u)) {
            Some(bad) => Err(Fail::InvalidName(bad.clone())),
            None => Ok(()),
        }
    }

    fn enable(&mut self, units: &[String]) -> Result<(), Fail> {
        State::check_names(units)?;
        let mut ctx = Ctx::default();
        for name in units {
            self.discover_and_check(&mut ctx, name, LOAD_FOLLOW)?;
        }
        let count = self.apply_context(&mut ctx, false)?;
        if count == 0 {
            return Err(Fail::NoInstallInfo);
        }
        Ok(())
    }

    fn disable(&mut self, units: &[String]) -> Result<(), Fail> {
        State::check_names(units)?;
        let mut ctx = Ctx::default();
        for name in units {
            self.discover(&mut ctx, name, LOAD_FOLLOW)?;
        }
        let marked = self.mark_for_removal(&mut ctx)?;
        self.remove_marked(marked)
    }

    fn mask(&mut self, units: &[String]) -> Result<(), Fail> {
        State::check_names(units)?;
        for name in units {
            self.create_symlink("/dev/null", &format!("{CONFIG_DIR}/{name}"), false)?;
        }
        Ok(())
    }

    fn preset(&mut self, presets: &PresetRules, units: &[String]) -> Result<(), Fail> {
        State::check_names(units)?;
        let mut plus = Ctx::default();
        let mut minus = Ctx::default();
        for name in units {
            if plus.contains(name) || minus.contains(name) {
                continue;
            }
            let mut tmp = Ctx::default();
            let found = self.discover(&mut tmp, name, FOLLOW)?;
            if found != *name {
                // An alias: its unit is preset under its own name.
                continue;
            }
            match presets.decide(name) {
                None => {
                    self.discover_and_check(&mut plus, name, LOAD_FOLLOW)?;
                }
                Some(PresetAction::Enable(instances)) => {
                    if instances.is_empty() {
                        self.discover_and_check(&mut plus, name, LOAD_FOLLOW)?;
                    }
                    for instance in &instances {
                        self.discover_and_check(&mut plus, instance, LOAD_FOLLOW)?;
                    }
                }
                Some(PresetAction::Disable) => {
                    self.discover(&mut minus, name, FOLLOW)?;
                }
                Some(PresetAction::Ignore) => {}
            }
        }
        let marked = self.mark_for_removal(&mut minus)?;
        self.remove_marked(marked)?;
        self.apply_context(&mut plus, true)?;
        Ok(())
    }
}

/// Append a list value as `config_parse_strv()`: an empty value clears.
fn strv(list: &mut Vec<String>, value: &str) {
    if value.trim().is_empty() {
        list.clear();
    } else {
        list.extend(list_words(value));
    }
}

/// `install_name_printf()`: the specifiers that only need the unit name.
fn printf(info: &Info, text: &str) -> Result<String, Fail> {
    let name = info.name.as_str();
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(s) = chars.next() else {
            break;
        };
        match s {
            '%' => out.push('%'),
            'n' => match (&info.default_instance, is_template(name)) {
                (Some(di), true) => {
                    out.push_str(&replace_instance(name, di).unwrap_or_else(|| name.to_string()))
                }
                _ => out.push_str(name),
            },
            'N' => {
                let stem = name.rfind('.').map_or(name, |d| &name[..d]);
                out.push_str(stem);
                if stem.ends_with('@')
                    && let Some(di) = &info.default_instance
                {
                    out.push_str(di);
                }
            }
            'p' => out.push_str(prefix(name)),
            'i' => match unit::instance(name) {
                Some(i) => out.push_str(i),
                None => out.push_str(info.default_instance.as_deref().unwrap_or("")),
            },
            'j' => {
                let p = prefix(name);
                out.push_str(p.rsplit_once('-').map_or(p, |(_, last)| last));
            }
            c if c.is_ascii_alphanumeric() => return Err(Fail::Specifier(text.to_string())),
            c => {
                out.push('%');
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// `unit_validate_alias_symlink_or_warn()`: may `filename` be an alias of
/// `target`?
fn validate_alias(filename: &str, target: &str) -> Result<(), Fail> {
    let src = basename(filename);
    let dst = basename(target);
    let bad = || Fail::BadAlias {
        path: filename.to_string(),
        unit: Some(dst.to_string()),
    };
    let Some(src_type) = unit_type(src) else {
        return Err(bad());
    };
    if !may_alias(src_type) || (!is_plain(src) && !may_template(src_type)) {
        return Err(bad());
    }
    if src == dst {
        return Err(Fail::SelfAlias);
    }
    let Some(dst_type) = unit_type(dst) else {
        return Err(bad());
    };
    let kind = |n: &str| {
        if is_template(n) {
            2
        } else if is_instance(n) {
            1
        } else {
            0
        }
    };
    let (sk, dk) = (kind(src), kind(dst));
    if !(sk == dk || (sk == 1 && dk == 2)) {
        return Err(bad());
    }
    if dk == 1 && unit::instance(src) != unit::instance(dst) {
        return Err(bad());
    }
    if src_type != dst_type {
        return Err(bad());
    }
    Ok(())
}

/// `unit_file_verify_alias()`: check an `Alias=` value; returns the name
/// with the instance filled in when the unit is an instance and the alias
/// a template.
fn verify_alias(info: &Info, dst: &str) -> Result<Option<String>, Fail> {
    if let Some((dir, link_name)) = dst.rsplit_once('/') {
        // The old use of Alias= for .wants/ and .requires/ links.
        let unit_name = dir
            .strip_suffix(".wants")
            .or_else(|| dir.strip_suffix(".requires"));
        let Some(unit_name) = unit_name.filter(|u| valid_name(u)) else {
            return Err(Fail::BadAlias {
                path: dst.to_string(),
                unit: None,
            });
        };
        if !symlink_name_compatible(link_name, &info.name, is_template(unit_name)) {
            return Err(Fail::BadAlias {
                path: dst.to_string(),
                unit: Some(info.name.clone()),
            });
        }
        return Ok(None);
    }
    let updated = match (is_template(dst), unit::instance(&info.name)) {
        (true, Some(instance)) => replace_instance(dst, instance),
        _ => None,
    };
    let checked = updated.as_deref().unwrap_or(dst);
    match validate_alias(checked, &info.name) {
        Ok(()) => Ok(updated),
        Err(Fail::SelfAlias) => Err(Fail::SelfAlias),
        Err(_) => Err(Fail::BadAlias {
            path: checked.to_string(),
            unit: Some(info.name.clone()),
        }),
    }
}

/// `unit_symlink_name_compatible()`.
fn symlink_name_compatible(symlink: &str, target: &str, instance_propagation: bool) -> bool {
    if symlink == target && (is_plain(symlink) || is_instance(symlink)) {
        return true;
    }
    let Some(template) = unit::template_name(symlink) else {
        return false;
    };
    (is_instance(symlink) && is_template(target) && template == target)
        || (instance_propagation
            && is_template(symlink)
            && is_template(target)
            && template == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;
    use std::process::Command;

    const LIB: &str = "/usr/lib/systemd/system";
    const AL2023_DEFAULT: (&str, &str) = ("99-default-disable.preset", "disable *\n");

    fn service(install: &str) -> String {
        format!("[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\n{install}")
    }

    fn parse(text: &str) -> UnitFile {
        unit::parse(text).unwrap_or_else(|e| panic!("unit parse: {e}"))
    }

    /// A root: files (path, text; empty text = empty file), symlinks
    /// (path, target), preset files (name, text).
    #[derive(Clone, Default)]
    struct Root {
        files: Vec<(String, String)>,
        links: Vec<(String, String)>,
        presets: Vec<(String, String)>,
    }

    impl Root {
        fn unit(mut self, name: &str, text: &str) -> Self {
            self.files.push((format!("{LIB}/{name}"), text.to_string()));
            self
        }

        fn file(mut self, path: &str, text: &str) -> Self {
            self.files.push((path.to_string(), text.to_string()));
            self
        }

        fn link(mut self, path: &str, target: &str) -> Self {
            self.links.push((path.to_string(), target.to_string()));
            self
        }

        fn preset(mut self, name: &str, text: &str) -> Self {
            self.presets.push((name.to_string(), text.to_string()));
            self
        }

        fn tree(&self) -> UnitTree {
            let mut tree = UnitTree::new();
            for (path, text) in &self.files {
                if text.is_empty() {
                    tree.add_empty_file(path);
                } else {
                    tree.add_file(path, parse(text));
                }
            }
            for (path, target) in &self.links {
                tree.add_symlink(path, target);
            }
            tree
        }

        fn rules(&self) -> PresetRules {
            PresetRules::for_systemd_version(self.presets.iter().map(|(n, t)| (n, t)), 252)
        }

        fn run(&self, ops: &[Operation]) -> Result<Outcome, EnableError> {
            apply(&self.tree(), &self.rules(), ops)
        }
    }

    fn base() -> Root {
        Root::default()
            .preset(AL2023_DEFAULT.0, AL2023_DEFAULT.1)
            .preset("50-x.preset", "enable x.service\n")
    }

    fn links(out: &Outcome) -> Vec<(&str, &str)> {
        out.links
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect()
    }

    fn ok(root: &Root, ops: &[Operation]) -> Outcome {
        root.run(ops).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(root: &Root, ops: &[Operation]) -> ErrorKind {
        match root.run(ops) {
            Ok(o) => panic!("expected an error, got {o:?}"),
            Err(e) => e.kind,
        }
    }

    // --- pure tests ------------------------------------------------------

    #[test]
    fn enable_wanted_by_required_by_and_alias() {
        let root = base().unit(
            "web.service",
            &service("WantedBy=multi-user.target\nRequiredBy=b.target\nAlias=www.service\n"),
        );
        let out = ok(&root, &[Operation::enable(["web.service"])]);
        let target = "/usr/lib/systemd/system/web.service";
        assert_eq!(
            links(&out),
            [
                ("/etc/systemd/system/b.target.requires/web.service", target),
                (
                    "/etc/systemd/system/multi-user.target.wants/web.service",
                    target
                ),
                ("/etc/systemd/system/www.service", target),
            ]
        );
        assert_eq!(out.created, out.links);
        assert!(out.removed.is_empty());
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    }

    #[test]
    fn preset_follows_the_first_matching_rule() {
        let root = base()
            .unit("x.service", &service("WantedBy=multi-user.target\n"))
            .unit("y.service", &service("WantedBy=multi-user.target\n"));
        let out = ok(&root, &[Operation::preset(["x.service", "y.service"])]);
        assert_eq!(
            links(&out),
            [(
                "/etc/systemd/system/multi-user.target.wants/x.service",
                "/usr/lib/systemd/system/x.service"
            )]
        );
    }

    #[test]
    fn disable_removes_links_and_reports_emptied_dirs() {
        let root = base()
            .unit(
                "x.service",
                &service("WantedBy=multi-user.target\nAlias=xx.service\n"),
            )
            .link(
                "/etc/systemd/system/multi-user.target.wants/x.service",
                "/usr/lib/systemd/system/x.service",
            )
            .link(
                "/etc/systemd/system/xx.service",
                "/usr/lib/systemd/system/x.service",
            );
        let out = ok(&root, &[Operation::disable(["x.service"])]);
        assert!(out.links.is_empty());
        assert_eq!(out.removed.len(), 2);
        assert_eq!(
            out.emptied_dirs.iter().collect::<Vec<_>>(),
            ["/etc/systemd/system/multi-user.target.wants"]
        );
    }

    #[test]
    fn errors_are_values() {
        let root = base()
            .unit("x.service", &service("WantedBy=multi-user.target\n"))
            .unit("static.service", "[Service]\nExecStart=/bin/true\n")
            .unit("t@.service", &service("WantedBy=multi-user.target\n"));
        assert_eq!(
            err(&root, &[Operation::enable(["nope.service"])]),
            ErrorKind::NotFound
        );
        assert_eq!(
            err(&root, &[Operation::disable(["nope.service"])]),
            ErrorKind::NotFound
        );
        assert_eq!(
            err(&root, &[Operation::preset(["nope.service"])]),
            ErrorKind::NotFound
        );
        assert_eq!(
            err(&root, &[Operation::enable(["not a unit"])]),
            ErrorKind::InvalidName
        );
        assert_eq!(
            err(&root, &[Operation::enable(["static.service"])]),
            ErrorKind::NoInstallInfo
        );
        assert_eq!(
            err(&root, &[Operation::enable(["t@.service"])]),
            ErrorKind::NotTemplate
        );
        assert_eq!(
            err(
                &root,
                &[
                    Operation::mask(["x.service"]),
                    Operation::enable(["x.service"])
                ]
            ),
            ErrorKind::Masked
        );
        let e = root
            .run(&[Operation::enable(["nope.service"])])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("failed to enable nope.service: unit nope.service does not exist")
        );
    }

    #[test]
    fn specifiers_needing_the_host_are_refused() {
        let root = base().unit("h.service", &service("WantedBy=%H.target\n"));
        assert_eq!(
            err(&root, &[Operation::enable(["h.service"])]),
            ErrorKind::Specifier
        );
        let root = base().unit(
            "a-b@.service",
            &service(
                "DefaultInstance=x\nWantedBy=%j-%i.target %p.target\nAlias=%N-alias.service\n",
            ),
        );
        let out = ok(&root, &[Operation::enable(["a-b@.service"])]);
        let paths: Vec<&str> = out.links.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/etc/systemd/system/a-b.target.wants/a-b@x.service",
                "/etc/systemd/system/a-b@x-alias.service",
                "/etc/systemd/system/b-x.target.wants/a-b@x.service",
            ]
        );
    }

    #[test]
    fn list_words_unquote_and_keep_escapes() {
        assert_eq!(
            list_words(" a  'b c' \"d\"e \\x2d.f "),
            ["a", "b c", "de", "\\x2d.f"]
        );
        assert_eq!(list_words("a 'open"), ["a"]);
    }

    // --- judged by the real systemctl ------------------------------------

    fn write(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    fn symlink(path: &Path, target: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
        }
        std::os::unix::fs::symlink(target, path)
            .unwrap_or_else(|e| panic!("symlink {path:?}: {e}"));
    }

    /// Every symlink and directory under `dir`, relative to `root`.
    fn walk(
        root: &Path,
        dir: &Path,
        links: &mut BTreeMap<String, String>,
        dirs: &mut BTreeSet<String>,
    ) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("read_dir: {e}"));
            let path = entry.path();
            let rel = format!(
                "/{}",
                path.strip_prefix(root)
                    .unwrap_or_else(|e| panic!("strip: {e}"))
                    .display()
            );
            let ty = entry
                .file_type()
                .unwrap_or_else(|e| panic!("file_type: {e}"));
            if ty.is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_else(|e| panic!("readlink: {e}"));
                links.insert(rel, target.display().to_string());
            } else if ty.is_dir() {
                dirs.insert(rel);
                walk(root, &path, links, dirs);
            }
        }
    }

    struct Real {
        links: BTreeMap<String, String>,
        dirs: BTreeSet<String>,
        /// Index of the first operation systemctl failed or reported an
        /// error for.
        failed_at: Option<usize>,
        /// Whether an enable printed the "no installation config" notice.
        no_install_notice: bool,
        log: String,
    }

    fn run_real(systemctl: &Path, root: &Root, ops: &[Operation]) -> Real {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/systemd/system"))
            .unwrap_or_else(|e| panic!("mkdir: {e}"));
        for (path, text) in &root.files {
            write(&r.join(&path[1..]), text);
        }
        for (path, target) in &root.links {
            symlink(&r.join(&path[1..]), target);
        }
        for (name, text) in &root.presets {
            write(&r.join("usr/lib/systemd/system-preset").join(name), text);
        }
        let mut failed_at = None;
        let mut no_install_notice = false;
        let mut log = String::new();
        for (i, op) in ops.iter().enumerate() {
            let out = Command::new(systemctl)
                .arg(format!("--root={}", r.display()))
                .arg(op.verb.as_str())
                .args(&op.units)
                .env_remove("SYSTEMD_LOG_LEVEL")
                .output()
                .unwrap_or_else(|e| panic!("running systemctl: {e}"));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            log.push_str(&format!(
                "$ systemctl {} {}\n{text}",
                op.verb.as_str(),
                op.units.join(" ")
            ));
            no_install_notice |= text.contains("no installation config");
            let error_line = text
                .lines()
                .any(|l| l.starts_with("Failed to") && !l.contains("auxiliary unit"));
            if !out.status.success() || error_line {
                failed_at = Some(i);
                break;
            }
        }
        let mut links = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        walk(r, &r.join("etc/systemd/system"), &mut links, &mut dirs);
        Real {
            links,
            dirs,
            failed_at,
            no_install_notice,
            log,
        }
    }

    fn check(systemctl: &Path, name: &str, root: &Root, ops: &[Operation]) {
        let real = run_real(systemctl, root, ops);
        let ours = root.run(ops);
        match ours {
            Ok(out) => {
                assert_eq!(
                    real.failed_at, None,
                    "{name}: systemctl failed but we did not\n{}",
                    real.log
                );
                assert_eq!(out.links, real.links, "{name}: links differ\n{}", real.log);
                let mut dirs: BTreeSet<String> = BTreeSet::new();
                for path in root.links.iter().map(|(p, _)| p).chain(out.links.keys()) {
                    let mut d = dirname(path);
                    while starts_with_dir(d, CONFIG_DIR) && d != CONFIG_DIR {
                        dirs.insert(d.to_string());
                        d = dirname(d);
                    }
                }
                dirs.retain(|d| !out.emptied_dirs.contains(d));
                for (path, _) in &root.files {
                    let mut d = dirname(path);
                    while starts_with_dir(d, CONFIG_DIR) && d != CONFIG_DIR {
                        dirs.insert(d.to_string());
                        d = dirname(d);
                    }
                }
                assert_eq!(dirs, real.dirs, "{name}: directories differ\n{}", real.log);
            }
            Err(e) if e.kind == ErrorKind::NoInstallInfo => {
                assert!(
                    real.no_install_notice,
                    "{name}: {e}, but systemctl printed no notice\n{}",
                    real.log
                );
            }
            Err(e) => {
                let at = ops
                    .iter()
                    .position(|op| op.verb == e.verb && op.units == e.units);
                assert_eq!(
                    real.failed_at, at,
                    "{name}: we failed ({e}), systemctl did not fail there\n{}",
                    real.log
                );
            }
        }
    }

    #[test]
    fn real_systemctl_agrees() {
        let Some(systemctl) = crate::testutil::judge("systemctl") else {
            return;
        };
        let wanted = service("WantedBy=multi-user.target\n");
        let x = base()
            .unit("x.service", &wanted)
            .unit("y.service", &wanted)
            .unit(
                "web.service",
                &service("WantedBy=multi-user.target\nRequiredBy=network-online.target\nAlias=www.service\nAlso=helper.socket\n"),
            )
            .unit("helper.socket", "[Socket]\nListenStream=80\n[Install]\nWantedBy=sockets.target\n")
            .unit("lonely.service", &service("Also=missing.service\nWantedBy=multi-user.target\n"))
            .unit("getty@.service", &service("WantedBy=getty.target\nDefaultInstance=tty1\nAlias=console@.service\n"))
            .unit("noinst@.service", &service("WantedBy=multi-user.target\n"))
            .unit("multi@.service", &service("WantedBy=multi-user.target\n"))
            .unit("static.service", "[Service]\nExecStart=/bin/true\n")
            .unit("spec@.service", &service("DefaultInstance=one\nWantedBy=%p-%i.target\nRequiredBy=x@%i.target\n"))
            .unit("a.service", &service("WantedBy=multi-user.target\nAlso=b.service\n"))
            .unit("b.service", &service("WantedBy=multi-user.target\n"))
            .unit("c.service", &service("WantedBy=multi-user.target\nAlso=b.service\n"))
            .unit("dbus-broker.service", &service("WantedBy=multi-user.target\nAlias=dbus.service\n"))
            .link("/usr/lib/systemd/system/dbus.service", "dbus-broker.service")
            .unit("legacy.service", &service("Alias=multi-user.target.wants/legacy.service\n"))
            .unit("mnt.mount", "[Mount]\nWhat=/a\nWhere=/mnt\n[Install]\nWantedBy=local-fs.target\nAlias=other.mount\n")
            .preset("40-tmpl.preset", "enable multi@.service one two\nenable getty@.service\n")
            .preset("45-a.preset", "enable a.service\nenable web.service\nenable dbus-broker.service\n");
        let mut cases: Vec<(&str, Root, Vec<Operation>)> = vec![
            (
                "enable one",
                x.clone(),
                vec![Operation::enable(["x.service"])],
            ),
            (
                "enable several with Also and Alias",
                x.clone(),
                vec![Operation::enable(["web.service", "y.service"])],
            ),
            (
                "Also of a missing unit",
                x.clone(),
                vec![Operation::enable(["lonely.service"])],
            ),
            (
                "template with DefaultInstance",
                x.clone(),
                vec![Operation::enable(["getty@.service"])],
            ),
            (
                "template instance",
                x.clone(),
                vec![Operation::enable(["getty@ttyS0.service"])],
            ),
            (
                "template without instance",
                x.clone(),
                vec![Operation::enable(["noinst@.service"])],
            ),
            (
                "instance of template without DefaultInstance",
                x.clone(),
                vec![Operation::enable(["noinst@a.service", "noinst@b.service"])],
            ),
            (
                "specifiers",
                x.clone(),
                vec![Operation::enable(["spec@.service", "spec@two.service"])],
            ),
            (
                "static unit",
                x.clone(),
                vec![Operation::enable(["static.service"])],
            ),
            (
                "no such unit",
                x.clone(),
                vec![Operation::enable(["nope.service"])],
            ),
            (
                "enable by alias name",
                x.clone(),
                vec![Operation::enable(["dbus.service"])],
            ),
            (
                "legacy Alias= .wants",
                x.clone(),
                vec![Operation::enable(["legacy.service"])],
            ),
            (
                "mount with Alias",
                x.clone(),
                vec![Operation::enable(["mnt.mount"])],
            ),
            (
                "preset packages",
                x.clone(),
                vec![Operation::preset([
                    "x.service",
                    "y.service",
                    "web.service",
                    "a.service",
                    "helper.socket",
                ])],
            ),
            (
                "preset templates",
                x.clone(),
                vec![Operation::preset([
                    "multi@.service",
                    "getty@.service",
                    "noinst@.service",
                ])],
            ),
            (
                "preset instance",
                x.clone(),
                vec![Operation::preset([
                    "multi@one.service",
                    "multi@three.service",
                ])],
            ),
            (
                "preset alias name",
                x.clone(),
                vec![Operation::preset(["dbus.service", "dbus-broker.service"])],
            ),
            (
                "preset disables what enable did, without Also",
                x.clone(),
                vec![
                    Operation::enable(["y.service", "a.service", "web.service"]),
                    Operation::preset(["y.service", "b.service", "a.service"]),
                ],
            ),
            (
                "preset disable keeps the units of Also=",
                x.clone(),
                vec![
                    Operation::enable(["c.service"]),
                    Operation::preset(["c.service"]),
                ],
            ),
            (
                "disable with Also and alias",
                x.clone(),
                vec![
                    Operation::enable(["web.service", "a.service"]),
                    Operation::disable(["web.service", "a.service"]),
                ],
            ),
            (
                "disable template removes instances",
                x.clone(),
                vec![
                    Operation::enable(["getty@.service", "getty@ttyS1.service"]),
                    Operation::disable(["getty@.service"]),
                ],
            ),
            (
                "disable one instance",
                x.clone(),
                vec![
                    Operation::enable(["getty@.service", "getty@ttyS1.service"]),
                    Operation::disable(["getty@ttyS1.service"]),
                ],
            ),
            (
                "disable missing",
                x.clone(),
                vec![Operation::disable(["nope.service"])],
            ),
            (
                "disable not enabled",
                x.clone(),
                vec![Operation::disable(["y.service"])],
            ),
            (
                "mask",
                x.clone(),
                vec![
                    Operation::enable(["x.service"]),
                    Operation::mask(["x.service", "nope.service"]),
                ],
            ),
            (
                "mask then enable",
                x.clone(),
                vec![
                    Operation::mask(["x.service"]),
                    Operation::enable(["x.service"]),
                ],
            ),
            (
                "mask then preset",
                x.clone(),
                vec![
                    Operation::mask(["x.service"]),
                    Operation::preset(["x.service"]),
                ],
            ),
            (
                "mask then preset disabled",
                x.clone(),
                vec![
                    Operation::mask(["y.service"]),
                    Operation::preset(["y.service"]),
                ],
            ),
            (
                "mask then disable",
                x.clone(),
                vec![
                    Operation::enable(["x.service"]),
                    Operation::mask(["x.service"]),
                    Operation::disable(["x.service"]),
                ],
            ),
            (
                "enable twice",
                x.clone(),
                vec![
                    Operation::enable(["web.service"]),
                    Operation::enable(["web.service"]),
                ],
            ),
        ];
        cases.push((
            "alias in the way",
            x.clone().link(
                "/etc/systemd/system/www.service",
                "/usr/lib/systemd/system/y.service",
            ),
            vec![Operation::enable(["web.service"])],
        ));
        cases.push((
            "wants link replaced",
            x.clone().link(
                "/etc/systemd/system/multi-user.target.wants/x.service",
                "/opt/old/x.service",
            ),
            vec![Operation::enable(["x.service"])],
        ));
        cases.push((
            "mask over a file",
            x.clone().file("/etc/systemd/system/y.service", &wanted),
            vec![Operation::mask(["y.service"])],
        ));
        cases.push((
            "unit overridden in /etc",
            x.clone().file(
                "/etc/systemd/system/y.service",
                &service("WantedBy=graphical.target\n"),
            ),
            vec![Operation::enable(["y.service"])],
        ));
        cases.push((
            "drop-in adds WantedBy",
            x.clone()
                .file(
                    "/etc/systemd/system/y.service.d/10-more.conf",
                    "[Install]\nWantedBy=extra.target\n",
                )
                .file(
                    "/usr/lib/systemd/system/y.service.d/20-reset.conf",
                    "[Install]\nRequiredBy=\nRequiredBy=z.target\n",
                ),
            vec![
                Operation::enable(["y.service"]),
                Operation::disable(["y.service"]),
                Operation::preset(["y.service", "x.service"]),
            ],
        ));
        cases.push((
            "drop-in only",
            x.clone()
                .file(
                    "/etc/systemd/system/static.service.d/10-more.conf",
                    "[Install]\nWantedBy=extra.target\nAlias=stat.service\n",
                )
                .file(
                    "/usr/lib/systemd/system/getty@.service.d/10-di.conf",
                    "[Install]\nDefaultInstance=tty9\n",
                )
                .file("/etc/systemd/system/getty@.service.d/10-di.conf", ""),
            vec![Operation::enable(["static.service", "getty@.service"])],
        ));
        cases.push((
            "masked by empty file",
            x.clone().file("/etc/systemd/system/x.service", ""),
            vec![
                Operation::preset(["y.service"]),
                Operation::enable(["x.service"]),
            ],
        ));
        cases.push((
            "linked unit file",
            x.clone()
                .file(
                    "/opt/ext/ext.service",
                    &service("WantedBy=multi-user.target\n"),
                )
                .link("/etc/systemd/system/ext.service", "/opt/ext/ext.service"),
            vec![
                Operation::enable(["ext.service"]),
                Operation::disable(["ext.service"]),
            ],
        ));
        cases.push((
            "admin alias in /etc",
            x.clone().link(
                "/etc/systemd/system/myalias.service",
                "/usr/lib/systemd/system/x.service",
            ),
            vec![Operation::enable(["myalias.service"])],
        ));
        cases.push((
            "existing links disabled through resolution",
            x.clone()
                .link(
                    "/etc/systemd/system/multi-user.target.wants/other-name.service",
                    "/usr/lib/systemd/system/x.service",
                )
                .link(
                    "/etc/systemd/system/foo.target.wants/x.service",
                    "../x.service",
                ),
            vec![Operation::disable(["x.service"])],
        ));
        for (name, root, ops) in &cases {
            check(&systemctl, name, root, ops);
        }
    }
}
