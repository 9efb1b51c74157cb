//! What goes into the package: the spec expanded into one entry per path.
//!
//! In: a validated [`PackageSpec`]. Out: a [`Plan`], sorted by path, where
//! directory sources are walked (sorted, symlinks kept as symlinks, the
//! output folder of this run left out: see [`crate::output`]),
//! generated files are added (unit files, the preset, the sysusers.d file),
//! and every directory the package creates is owned by it. Directories an
//! Amazon Linux system already has (`system_dirs.txt`) are left to their
//! owners. Two entries for one path are an error naming both places.
//!
//! Modes never come from the user running ingot: a file is 0755 when its
//! owner-execute bit is set on disk, else 0644; directories 0755; unless the
//! spec says otherwise. Timestamps are not read from disk at all.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spec::SpecError;
use crate::spec::package::{Config, Loc, PackageSpec};
use crate::systemd;

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file of the user's, streamed when the package is written.
    Source(PathBuf),
    /// A small file ingot generates.
    Generated(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Content),
    Dir,
    Symlink(String),
    /// Listed in the header, not in the payload: created at run time.
    Ghost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    /// Permission bits only (no file type).
    pub mode: u16,
    pub user: String,
    pub group: String,
    pub config: Config,
    pub doc: bool,
    pub caps: Option<String>,
    /// The spec entry this came from; `None` for generated entries.
    pub at: Option<Loc>,
}

/// Every path of the package, sorted.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub entries: BTreeMap<String, Entry>,
}

const SYSTEM_DIRS_TXT: &str = include_str!("system_dirs.txt");

/// Directories the base system owns; a package does not claim them.
pub fn system_dirs() -> BTreeSet<&'static str> {
    SYSTEM_DIRS_TXT
        .lines()
        .filter(|l| l.starts_with('/'))
        .collect()
}

pub const UNIT_DIR: &str = "/usr/lib/systemd/system";
pub const PRESET_DIR: &str = "/usr/lib/systemd/system-preset";
pub const SYSUSERS_DIR: &str = "/usr/lib/sysusers.d";

/// rpmbuild's `%__docdir_path`: files under these are `%doc` on their own.
pub const DOC_DIRS: &[&str] = &[
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/share/info",
    "/usr/share/gtk-doc/html",
    "/usr/share/gnome/help",
    "/usr/share/javadoc",
    "/usr/doc",
    "/usr/man",
    "/usr/info",
    "/usr/X11R6/man",
];

/// Whether rpmbuild would mark `path` as documentation by its place.
pub fn is_doc_path(path: &str) -> bool {
    DOC_DIRS.iter().any(|d| {
        path.strip_prefix(d)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The mode a file gets when the spec does not say: executable for its
/// owner on disk -> 0755, else 0644. Group/other bits on disk are ignored
/// (they depend on the umask of whoever checked the sources out).
pub fn default_file_mode(meta: &std::fs::Metadata) -> u16 {
    if meta.permissions().mode() & 0o100 != 0 {
        0o755
    } else {
        0o644
    }
}

struct Builder<'a> {
    spec: &'a PackageSpec,
    plan: Plan,
}

impl Builder<'_> {
    fn place(&self, at: Option<Loc>) -> String {
        match at {
            Some(l) => format!("the entry at line {}", l.line),
            None => "a file ingot generates".to_string(),
        }
    }

    fn insert(&mut self, mut e: Entry) -> Result<(), SpecError> {
        if e.kind != Kind::Dir && is_doc_path(&e.path) {
            e.doc = true;
        }
        if let Some(prev) = self.plan.entries.get(&e.path) {
            // One directory declared twice with the same attributes is fine
            // (a [[dirs]] entry and a directory a copy also creates).
            if prev.kind == Kind::Dir && e.kind == Kind::Dir {
                return Ok(());
            }
            let msg = format!(
                "`{}` is packaged twice: by {} and by {}",
                e.path,
                self.place(prev.at),
                self.place(e.at)
            );
            return Err(match e.at.or(prev.at) {
                Some(at) => self.spec.error_at(at, msg),
                None => SpecError::whole(&self.spec.file, msg),
            });
        }
        self.plan.entries.insert(e.path.clone(), e);
        Ok(())
    }

    fn io_error(&self, at: Loc, path: &Path, e: std::io::Error) -> SpecError {
        self.spec
            .error_at(at, format!("cannot read `{}`: {e}", path.display()))
    }

    fn walk(&mut self, f: &crate::spec::package::FileSpec, root: &Path) -> Result<(), SpecError> {
        let user = f.user.clone().unwrap_or_else(|| "root".into());
        let group = f.group.clone().unwrap_or_else(|| "root".into());
        if std::fs::metadata(root).is_ok_and(|m| crate::output::is_output_folder(&m)) {
            return Err(self.spec.error_at(
                f.at,
                format!(
                    "`{}` is the output folder (`--out`): what ingot writes would be packaged; \
                     write the outputs somewhere else",
                    root.display()
                ),
            ));
        }
        // The output folder is left out when it lies inside the source
        // folder (`--out dist` beside `src = "."`), and so is a folder it
        // leaves empty (`--out new/dist` made `new`): its contents are this
        // run's scratch and earlier runs' outputs, never something the
        // user meant to ship, and packaging them would make each build
        // depend on the one before. Leaving it out rather than refusing
        // keeps that usual layout working, and the package is the one an
        // `--out` elsewhere gives (no time is read from the folders).
        let mut walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter();
        let mut emptied: Vec<String> = Vec::new();
        while let Some(item) = walker.next() {
            if let Ok(e) = &item
                && e.depth() > 0
                && e.file_type().is_dir()
                && e.metadata()
                    .is_ok_and(|m| crate::output::is_output_folder(&m))
            {
                walker.skip_current_dir();
                if let Some(parent) = e.path().parent().and_then(|p| p.strip_prefix(root).ok()) {
                    emptied.push(match parent.to_str() {
                        Some("") | None => f.dest.clone(),
                        Some(rel) => format!("{}/{rel}", f.dest),
                    });
                }
                continue;
            }
            let item = item.map_err(|e| {
                let p = e.path().unwrap_or(root).to_path_buf();
                self.io_error(f.at, &p, e.into())
            })?;
            let rel = item
                .path()
                .strip_prefix(root)
                .map_err(|_| self.spec.error_at(f.at, "walked outside the source folder"))?;
            let dest = if rel.as_os_str().is_empty() {
                f.dest.clone()
            } else {
                let rel = rel.to_str().ok_or_else(|| {
                    self.spec.error_at(
                        f.at,
                        format!("`{}` is not valid UTF-8", item.path().display()),
                    )
                })?;
                format!("{}/{}", f.dest, rel)
            };
            let ft = item.file_type();
            let (kind, mode) = if ft.is_dir() {
                (Kind::Dir, f.dir_mode.unwrap_or(0o755))
            } else if ft.is_symlink() {
                let target = std::fs::read_link(item.path())
                    .map_err(|e| self.io_error(f.at, item.path(), e))?;
                let target = target.to_str().ok_or_else(|| {
                    self.spec.error_at(
                        f.at,
                        format!("symlink `{}` has a non-UTF-8 target", item.path().display()),
                    )
                })?;
                (Kind::Symlink(target.to_string()), 0o777)
            } else if ft.is_file() {
                let meta = item
                    .metadata()
                    .map_err(|e| self.io_error(f.at, item.path(), e.into()))?;
                (
                    Kind::File(Content::Source(item.path().to_path_buf())),
                    f.mode.unwrap_or_else(|| default_file_mode(&meta)),
                )
            } else {
                return Err(self.spec.error_at(
                    f.at,
                    format!(
                        "`{}` is a device, socket or FIFO; only files, folders and symlinks can be packaged from a folder",
                        item.path().display()
                    ),
                ));
            };
            let is_file = matches!(kind, Kind::File(_));
            self.insert(Entry {
                path: dest,
                kind,
                mode,
                user: user.clone(),
                group: group.clone(),
                config: if is_file { f.config } else { Config::No },
                doc: is_file && f.doc,
                caps: if is_file { f.caps.clone() } else { None },
                at: Some(f.at),
            })?;
        }
        self.prune_emptied(f, emptied);
        Ok(())
    }

    /// Drop the folders of a walk that held nothing but the output folder
    /// (and folders like them), up to the walked folder itself.
    fn prune_emptied(&mut self, f: &crate::spec::package::FileSpec, emptied: Vec<String>) {
        for mut dir in emptied {
            while dir != f.dest {
                let entries = &self.plan.entries;
                let ours = entries
                    .get(&dir)
                    .is_some_and(|e| e.kind == Kind::Dir && e.at == Some(f.at));
                let prefix = format!("{dir}/");
                let has_children = entries
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix));
                if !ours || has_children {
                    break;
                }
                self.plan.entries.remove(&dir);
                match dir.rsplit_once('/') {
                    Some((parent, _)) => dir = parent.to_string(),
                    None => break,
                }
            }
        }
    }
}

/// Expand a spec into the package's entries.
pub fn plan(spec: &PackageSpec) -> Result<Plan, SpecError> {
    let mut b = Builder {
        spec,
        plan: Plan::default(),
    };
    for d in &spec.dirs {
        b.insert(Entry {
            path: d.path.clone(),
            kind: Kind::Dir,
            mode: d.mode.unwrap_or(0o755),
            user: d.user.clone().unwrap_or_else(|| "root".into()),
            group: d.group.clone().unwrap_or_else(|| "root".into()),
            config: Config::No,
            doc: false,
            caps: None,
            at: Some(d.at),
        })?;
    }
    for f in &spec.files {
        let user = f.user.clone().unwrap_or_else(|| "root".into());
        let group = f.group.clone().unwrap_or_else(|| "root".into());
        match &f.src {
            None => b.insert(Entry {
                path: f.dest.clone(),
                kind: Kind::Ghost,
                mode: f.mode.unwrap_or(0o644),
                user,
                group,
                config: f.config,
                doc: f.doc,
                caps: f.caps.clone(),
                at: Some(f.at),
            })?,
            Some(src) => {
                // A source given by name is followed if it is a symlink.
                let meta = std::fs::metadata(src).map_err(|e| b.io_error(f.at, src, e))?;
                if meta.is_dir() {
                    b.walk(f, src)?;
                } else if meta.is_file() {
                    b.insert(Entry {
                        path: f.dest.clone(),
                        kind: Kind::File(Content::Source(src.clone())),
                        mode: f.mode.unwrap_or_else(|| default_file_mode(&meta)),
                        user,
                        group,
                        config: f.config,
                        doc: f.doc,
                        caps: f.caps.clone(),
                        at: Some(f.at),
                    })?;
                } else {
                    return Err(spec.error_at(
                        f.at,
                        format!("`{}` is neither a file nor a folder", src.display()),
                    ));
                }
            }
        }
    }
    for s in &spec.symlinks {
        b.insert(Entry {
            path: s.path.clone(),
            kind: Kind::Symlink(s.target.clone()),
            mode: 0o777,
            user: "root".into(),
            group: "root".into(),
            config: Config::No,
            doc: false,
            caps: None,
            at: Some(s.at),
        })?;
    }
    for u in &spec.units {
        b.insert(Entry {
            path: format!("{UNIT_DIR}/{}", u.name),
            kind: Kind::File(Content::Source(u.src.clone())),
            mode: 0o644,
            user: "root".into(),
            group: "root".into(),
            config: Config::No,
            doc: false,
            caps: None,
            at: Some(u.at),
        })?;
    }
    let units: Vec<(String, bool)> = spec
        .units
        .iter()
        .map(|u| (u.name.clone(), u.enable))
        .collect();
    if units.iter().any(|(_, enable)| *enable) {
        b.insert(generated(
            format!("{PRESET_DIR}/{}", systemd::preset::file_name(&spec.name)),
            systemd::preset::render(&spec.name, &units).into_bytes(),
        ))?;
    }
    if let Some(text) = sysusers_text(spec)? {
        b.insert(generated(
            format!("{SYSUSERS_DIR}/{}.conf", spec.name),
            text.into_bytes(),
        ))?;
    }

    own_parent_dirs(&mut b)?;
    Ok(b.plan)
}

fn generated(path: String, bytes: Vec<u8>) -> Entry {
    Entry {
        path,
        kind: Kind::File(Content::Generated(bytes)),
        mode: 0o644,
        user: "root".into(),
        group: "root".into(),
        config: Config::No,
        doc: false,
        caps: None,
        at: None,
    }
}

/// The sysusers.d file for the spec's accounts, if it declares any.
pub fn sysusers_text(spec: &PackageSpec) -> Result<Option<String>, SpecError> {
    if spec.users.is_empty() && spec.groups.is_empty() {
        return Ok(None);
    }
    let users: Vec<systemd::sysusers::SysUser> = spec
        .users
        .iter()
        .map(|u| systemd::sysusers::SysUser {
            name: u.name.clone(),
            uid: u.uid,
            group: u.group.clone(),
            gecos: u.description.clone(),
            home: u.home.clone(),
            shell: u.shell.clone(),
        })
        .collect();
    let groups: Vec<systemd::sysusers::SysGroup> = spec
        .groups
        .iter()
        .map(|g| systemd::sysusers::SysGroup {
            name: g.name.clone(),
            gid: g.gid,
            members: g.members.clone(),
        })
        .collect();
    systemd::sysusers::render(&users, &groups)
        .map(Some)
        .map_err(|e| SpecError::whole(&spec.file, format!("users and groups: {e}")))
}

/// Every directory above an entry that the base system does not own
/// becomes an entry of the package (0755 root:root), so nothing the
/// package creates is left unowned.
fn own_parent_dirs(b: &mut Builder) -> Result<(), SpecError> {
    let system = system_dirs();
    let paths: Vec<String> = b.plan.entries.keys().cloned().collect();
    for p in paths {
        let mut cur = p.as_str();
        while let Some(i) = cur.rfind('/') {
            let parent = &cur[..i];
            if parent.is_empty() {
                break;
            }
            if let Some(e) = b.plan.entries.get(parent) {
                if e.kind != Kind::Dir {
                    let at = b.plan.entries[&p].at.or(e.at);
                    let msg = format!("`{parent}` is not a directory, but `{p}` is inside it");
                    return Err(match at {
                        Some(at) => b.spec.error_at(at, msg),
                        None => SpecError::whole(&b.spec.file, msg),
                    });
                }
            } else if !system.contains(parent) {
                b.plan.entries.insert(
                    parent.to_string(),
                    Entry {
                        path: parent.to_string(),
                        kind: Kind::Dir,
                        mode: 0o755,
                        user: "root".into(),
                        group: "root".into(),
                        config: Config::No,
                        doc: false,
                        caps: None,
                        at: None,
                    },
                );
            }
            cur = parent;
        }
    }
    Ok(())
}
