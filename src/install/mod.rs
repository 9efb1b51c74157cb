//! Installing packages into a root filesystem tree, as `rpm -i --root`
//! would, without rpm, root or chroot (bake, part 1).
//!
//! In: a [`Tree`] holding the base, the `.rpm` files to install, and the
//! install time (the source date). Out: the tree with every package's
//! files placed (modes, owners resolved through the tree's own
//! `/etc/passwd` and `/etc/group`, capabilities, hard links, symlinks), old
//! versions of upgraded packages removed, system accounts created from
//! sysusers.d, and `/var/lib/rpm/rpmdb.sqlite` holding exactly the records
//! and index rows rpm 4.18 would write. Before anything changes, every
//! package's digests are checked, every requirement must have a provider
//! and no two packages may claim one path with different contents.
//!
//! Never: a scriptlet is never run (what ingot's own scriptlets do is done
//! declaratively; the others are reported); nothing outside the tree and
//! the work folder is touched.
//!
//! Code map: `cpio.rs` (payload archive), `caps.rs` (file capabilities),
//! `deps.rs` (dependency closure), this file (the transaction).

pub mod activate;
pub mod caps;
pub mod cpio;
pub mod deps;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::rootfs::{Kind, Meta, Node, NodeId, PathError, Tree};
use crate::rpm::header::{Header, tag};
use crate::rpm::read::{PackageHeaders, verify_digests};
use crate::rpmdb::{Rpmdb, record, sqlite::RpmdbError};

/// Where rpm keeps its database in an Amazon Linux 2023 root.
pub const RPMDB_DIR: &str = "/var/lib/rpm";
pub const RPMDB_FILE: &str = "/var/lib/rpm/rpmdb.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("package `{shown}` cannot be used")]
    Package {
        /// The package as the user knows it (see [`install_named`]).
        shown: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A rich dependency in a package's header cannot be parsed.
    #[error("package `{shown}`: {source}")]
    Dependency {
        shown: String,
        #[source]
        source: deps::BadDependency,
    },

    #[error("{message}")]
    Refused { message: String },

    #[error("unmet dependencies:\n  {}", list.join("\n  "))]
    Unmet { list: Vec<String> },

    #[error("conflicts between packages:\n  {}", list.join("\n  "))]
    Conflicts { list: Vec<String> },

    #[error("`{package}`: cannot place `{path}`")]
    Place {
        package: String,
        path: String,
        #[source]
        source: PathError,
    },

    #[error("reading the payload of `{package}` failed")]
    Payload {
        package: String,
        #[source]
        source: std::io::Error,
    },

    /// An `enable`, `disable` or `mask` of the image spec that cannot be
    /// done (the caller knows where the spec asks for it).
    #[error("cannot {verb} {unit}: {message}")]
    Override {
        verb: &'static str,
        unit: String,
        message: String,
    },

    #[error(transparent)]
    Rpmdb(#[from] RpmdbError),

    #[error("work folder `{}`", path.display())]
    Work {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl InstallError {
    /// 1 when a check failed (unmet dependencies, conflicts), 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            InstallError::Unmet { .. } | InstallError::Conflicts { .. } => 1,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// INSTALLTIME/INSTALLTID and the mtime of files ingot writes.
    pub install_time: u32,
    /// Refuse unmet dependencies and conflicts (the default).
    pub deps_check: bool,
    /// A folder for temporary files (the database being written).
    pub work_dir: PathBuf,
}

/// What was installed, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub nevra: String,
    pub license: String,
    /// The package's SIGMD5 (header+payload MD5), hex: what rpm identifies
    /// an installed package by.
    pub sigmd5: String,
    /// The package it replaced, if it was an upgrade.
    pub replaced: Option<String>,
    /// Scriptlets in the package: (`%post`, body). None is ever run.
    pub scriptlets: Vec<(String, String)>,
    /// Every path the package lists.
    pub files: Vec<String>,
}

/// One package of the finished image (base or new), for manifests and SBOMs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImagePackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub nevra: String,
    pub license: String,
    pub vendor: String,
    pub url: String,
    pub source_rpm: String,
    pub sigmd5: String,
    pub summary: String,
}

impl ImagePackage {
    pub fn from_header(h: &Header) -> ImagePackage {
        let d = deps::Package::from_header(h);
        ImagePackage {
            name: d.name,
            epoch: h.int(tag::EPOCH).map(|e| e as u32),
            version: h.string(tag::VERSION).unwrap_or_default(),
            release: h.string(tag::RELEASE).unwrap_or_default(),
            arch: h.string(tag::ARCH).unwrap_or_default(),
            nevra: d.nevra,
            license: h.string(tag::LICENSE).unwrap_or_default(),
            vendor: h.string(tag::VENDOR).unwrap_or_default(),
            url: h.string(tag::URL).unwrap_or_default(),
            source_rpm: h.string(tag::SOURCERPM).unwrap_or_default(),
            sigmd5: h.bin(tag::SIGMD5).map(hex::encode).unwrap_or_default(),
            summary: h.string(tag::SUMMARY).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct InstallReport {
    /// In install order.
    pub installed: Vec<Installed>,
    /// NEVRAs removed (upgraded away or obsoleted).
    pub removed: Vec<String>,
    pub warnings: Vec<String>,
    /// Every package the image's database lists afterwards, by name.
    pub image_packages: Vec<ImagePackage>,
    /// Nodes placed whose owner and group are still names: resolve them
    /// with [`resolve_owners`] once accounts exist.
    pub pending_owners: Vec<(NodeId, String, String)>,
}

struct NewPackage {
    path: PathBuf,
    /// How messages name the package.
    shown: String,
    headers: PackageHeaders,
    deps: deps::Package,
}

/// One file entry of a package header.
#[derive(Debug, Clone)]
struct FileInfo {
    path: String,
    mode: u32,
    size: u64,
    mtime: u32,
    digest: String,
    linkto: String,
    flags: u32,
    user: String,
    group: String,
    rdev: u32,
    inode: (u32, u32),
    caps: String,
}

const RPMFILE_CONFIG: u32 = 1 << 0;
const RPMFILE_GHOST: u32 = 1 << 6;
const RPMFILE_NOREPLACE: u32 = 1 << 4;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

fn files_of(h: &Header) -> Vec<FileInfo> {
    let base = h.strings(tag::BASENAMES);
    let dirs = h.strings(tag::DIRNAMES);
    let idx = h.ints(tag::DIRINDEXES);
    let modes = h.ints(tag::FILEMODES);
    let sizes = {
        let long = h.ints(tag::LONGFILESIZES);
        if long.is_empty() {
            h.ints(tag::FILESIZES)
        } else {
            long
        }
    };
    let mtimes = h.ints(tag::FILEMTIMES);
    let digests = h.strings(tag::FILEDIGESTS);
    let links = h.strings(tag::FILELINKTOS);
    let flags = h.ints(tag::FILEFLAGS);
    let users = h.strings(tag::FILEUSERNAME);
    let groups = h.strings(tag::FILEGROUPNAME);
    let rdevs = h.ints(tag::FILERDEVS);
    let inodes = h.ints(tag::FILEINODES);
    let devices = h.ints(tag::FILEDEVICES);
    let caps = h.strings(tag::FILECAPS);
    let get = |v: &Vec<u64>, i: usize| v.get(i).copied().unwrap_or(0);
    let gets = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
    base.iter()
        .enumerate()
        .map(|(i, b)| FileInfo {
            path: format!(
                "{}{}",
                dirs.get(get(&idx, i) as usize)
                    .map(String::as_str)
                    .unwrap_or("/"),
                b
            ),
            mode: get(&modes, i) as u32,
            size: get(&sizes, i),
            mtime: get(&mtimes, i) as u32,
            digest: gets(&digests, i),
            linkto: gets(&links, i),
            flags: get(&flags, i) as u32,
            user: gets(&users, i),
            group: gets(&groups, i),
            rdev: get(&rdevs, i) as u32,
            inode: (get(&devices, i) as u32, get(&inodes, i) as u32),
            caps: gets(&caps, i),
        })
        .collect()
}

/// Name -> id from a passwd or group file's text.
fn id_map(text: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

fn read_text(tree: &Tree, path: &str) -> Option<String> {
    let id = tree.resolve(path, true).ok()?;
    let mut s = String::new();
    tree.open(id).ok()?.read_to_string(&mut s).ok()?;
    Some(s)
}

/// Install `rpms` into `tree`; messages name each package by its path.
pub fn install(
    tree: &mut Tree,
    rpms: &[PathBuf],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let named: Vec<(PathBuf, String)> = rpms
        .iter()
        .map(|p| (p.clone(), p.display().to_string()))
        .collect();
    install_named(tree, &named, opts)
}

/// [`install`], given how messages name each package: a package built
/// from a spec goes by its spec, not by the scratch file it was built into.
pub fn install_named(
    tree: &mut Tree,
    rpms: &[(PathBuf, String)],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let mut report = InstallReport::default();

    // 1. Read and check every package before anything changes.
    let mut new: Vec<NewPackage> = Vec::new();
    for (p, shown) in rpms {
        let headers = verify_digests(p).map_err(|source| InstallError::Package {
            shown: shown.clone(),
            path: p.clone(),
            source,
        })?;
        if !headers.header.has(tag::SOURCERPM) {
            return Err(InstallError::Refused {
                message: format!(
                    "`{shown}` is a source package; only binary packages can be installed"
                ),
            });
        }
        deps::check_header(&headers.header).map_err(|source| InstallError::Dependency {
            shown: shown.clone(),
            source,
        })?;
        let deps = deps::Package::from_header(&headers.header);
        if let Some(other) = new.iter().find(|n| n.deps.name == deps.name) {
            return Err(InstallError::Refused {
                message: format!(
                    "`{}` and `{shown}` are both package `{}`",
                    other.shown,
                    crate::spec::diag::escape(&deps.name)
                ),
            });
        }
        new.push(NewPackage {
            path: p.clone(),
            shown: shown.clone(),
            headers,
            deps,
        });
    }

    // 2. The database, copied out of the tree into the work folder.
    let work = tempfile::Builder::new()
        .prefix("ingot-rpmdb-")
        .tempdir_in(&opts.work_dir)
        .map_err(|source| InstallError::Work {
            path: opts.work_dir.clone(),
            source,
        })?;
    let db_file = work.path().join("rpmdb.sqlite");
    let existing_db = tree.resolve(RPMDB_FILE, true).ok();
    let mut db = match existing_db {
        Some(id) if matches!(tree.node(id).kind, Kind::File(_)) => {
            let mut r = tree.open(id).map_err(|source| InstallError::Work {
                path: db_file.clone(),
                source,
            })?;
            let mut f = std::fs::File::create(&db_file).map_err(|source| InstallError::Work {
                path: db_file.clone(),
                source,
            })?;
            std::io::copy(&mut r, &mut f).map_err(|source| InstallError::Work {
                path: db_file.clone(),
                source,
            })?;
            Rpmdb::open(&db_file)?
        }
        _ => Rpmdb::create(&db_file)?,
    };
    let installed: Vec<(u32, Header)> = db.packages()?;
    let installed_deps: Vec<deps::Package> = installed
        .iter()
        .map(|(_, h)| deps::Package::from_header(h))
        .collect();

    // 3. Upgrades and obsoletes: which installed packages go away.
    let mut removing: BTreeMap<usize, String> = BTreeMap::new(); // installed idx -> by whom
    for n in &new {
        for (i, old) in installed_deps.iter().enumerate() {
            if old.name == n.deps.name {
                let old_evr = evr_of(&installed[i].1);
                let new_evr = evr_of(&n.headers.header);
                match deps::compare_evr(&new_evr, &old_evr) {
                    std::cmp::Ordering::Greater => {
                        removing.insert(i, n.deps.nevra.clone());
                    }
                    std::cmp::Ordering::Equal => {
                        return Err(InstallError::Refused {
                            message: format!("{} is already installed in the base", old.nevra),
                        });
                    }
                    std::cmp::Ordering::Less => {
                        return Err(InstallError::Refused {
                            message: format!(
                                "{} would downgrade {} in the base; ingot only installs newer versions",
                                n.deps.nevra, old.nevra
                            ),
                        });
                    }
                }
            }
            for o in &n.deps.obsoletes {
                if o.name == old.name
                    && old.provides.iter().any(|p| {
                        p.name == old.name && deps::ranges_overlap(p.flags, &p.evr, o.flags, &o.evr)
                    })
                {
                    removing.insert(i, n.deps.nevra.clone());
                }
            }
        }
    }

    // 4. Dependencies and conflicts.
    let mut universe_pkgs: Vec<deps::Package> = installed_deps
        .iter()
        .enumerate()
        .filter(|(i, _)| !removing.contains_key(i))
        .map(|(_, p)| p.clone())
        .collect();
    let first_new = universe_pkgs.len();
    universe_pkgs.extend(new.iter().map(|n| n.deps.clone()));
    let new_idx: Vec<usize> = (first_new..universe_pkgs.len()).collect();
    {
        let u = deps::Universe::new(&universe_pkgs);
        let unmet: Vec<String> = u.unmet(&new_idx).iter().map(|m| m.to_string()).collect();
        let conflicts: Vec<String> = u
            .conflicts(&new_idx)
            .iter()
            .map(|c| {
                format!(
                    "{} conflicts with {} (`{}`)",
                    c.package, c.conflicts_with, c.by
                )
            })
            .collect();
        if opts.deps_check {
            if !unmet.is_empty() {
                return Err(InstallError::Unmet { list: unmet });
            }
            if !conflicts.is_empty() {
                return Err(InstallError::Conflicts { list: conflicts });
            }
        } else {
            report.warnings.extend(
                unmet
                    .into_iter()
                    .map(|m| format!("unmet dependency (not checked): {m}")),
            );
            report.warnings.extend(conflicts);
        }
    }

    // 5. File conflicts: one path, two packages, different contents.
    let mut owners: BTreeMap<String, (String, FileInfo)> = BTreeMap::new();
    for (i, (_, h)) in installed.iter().enumerate() {
        if removing.contains_key(&i) {
            continue;
        }
        for f in files_of(h) {
            owners.insert(f.path.clone(), (installed_deps[i].nevra.clone(), f));
        }
    }
    let mut file_conflicts = Vec::new();
    for n in &new {
        for f in files_of(&n.headers.header) {
            if let Some((owner, other)) = owners.get(&f.path)
                && files_conflict(other, &f)
            {
                file_conflicts.push(format!(
                    "file {} from {} conflicts with the file from {}",
                    f.path, n.deps.nevra, owner
                ));
            }
            owners
                .entry(f.path.clone())
                .or_insert((n.deps.nevra.clone(), f));
        }
    }
    if !file_conflicts.is_empty() {
        return Err(InstallError::Conflicts {
            list: file_conflicts,
        });
    }

    // 6. Remove what upgraded packages no longer ship.
    let keep: BTreeSet<String> = owners.keys().cloned().collect();
    for &i in removing.keys() {
        let mut files = files_of(&installed[i].1);
        // Deepest first, so directories are empty when their turn comes.
        files.sort_by(|a, b| b.path.cmp(&a.path));
        for f in files {
            if keep.contains(&f.path) || f.flags & RPMFILE_GHOST != 0 {
                continue;
            }
            if let Ok(id) = tree.resolve(&f.path, false) {
                let is_nonempty_dir = tree.node(id).as_dir().is_some_and(|d| !d.is_empty());
                if !is_nonempty_dir {
                    let _ = tree.remove(&f.path);
                }
            }
        }
        report.removed.push(installed_deps[i].nevra.clone());
    }

    // 7. Place the new packages' files, in dependency order.
    let order = install_order(&new);
    let mut owned_by_name: Vec<(NodeId, String, String)> = Vec::new();
    for &k in &order {
        let n = &new[k];
        place_payload(tree, n, &mut owned_by_name, &mut report, opts.install_time)?;
    }
    report.pending_owners = owned_by_name;

    // 9. The database: old records out, new ones in, in install order.
    for &i in removing.keys() {
        db.remove(installed[i].0)?;
    }
    for &k in &order {
        let n = &new[k];
        let rec =
            record::installed_record(&n.headers.signature, &n.headers.header, opts.install_time)
                .map_err(|e| InstallError::Refused {
                    message: format!("`{}`: {e}", n.shown),
                })?;
        db.add(&rec)?;
        let h = &n.headers.header;
        report.installed.push(Installed {
            name: n.deps.name.clone(),
            epoch: h.int(tag::EPOCH).map(|e| e as u32),
            version: h.string(tag::VERSION).unwrap_or_default(),
            release: h.string(tag::RELEASE).unwrap_or_default(),
            arch: h.string(tag::ARCH).unwrap_or_default(),
            nevra: n.deps.nevra.clone(),
            license: h.string(tag::LICENSE).unwrap_or_default(),
            sigmd5: n
                .headers
                .signature
                .bin(tag::SIG_MD5)
                .map(hex::encode)
                .unwrap_or_default(),
            replaced: removing
                .iter()
                .find(|(_, by)| **by == n.deps.nevra)
                .map(|(i, _)| installed_deps[*i].nevra.clone()),
            scriptlets: scriptlets_of(h),
            files: files_of(h).into_iter().map(|f| f.path).collect(),
        });
    }
    let mut all: Vec<ImagePackage> = db
        .packages()?
        .iter()
        .map(|(_, h)| ImagePackage::from_header(h))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.nevra.cmp(&b.nevra)));
    report.image_packages = all;
    db.close()?;
    store_db(tree, &db_file, existing_db, opts.install_time)?;
    Ok(report)
}

/// Give placed nodes their owners, by name, through the tree's own
/// `/etc/passwd` and `/etc/group` (as rpm does with `--root`). Unknown
/// names become root, with a warning, as rpm does.
pub fn resolve_owners(tree: &mut Tree, pending: &[(NodeId, String, String)]) -> Vec<String> {
    let users = read_text(tree, "/etc/passwd")
        .map(|t| id_map(&t))
        .unwrap_or_default();
    let groups = read_text(tree, "/etc/group")
        .map(|t| id_map(&t))
        .unwrap_or_default();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    for (id, user, group) in pending {
        let uid = match users.get(user) {
            Some(u) => *u,
            None => {
                if user != "root" {
                    unknown.insert(format!("user {user}"));
                }
                0
            }
        };
        let gid = match groups.get(group) {
            Some(g) => *g,
            None => {
                if group != "root" {
                    unknown.insert(format!("group {group}"));
                }
                0
            }
        };
        let mut meta = tree.node(*id).meta.clone();
        meta.uid = uid;
        meta.gid = gid;
        tree.set_meta(*id, meta);
    }
    unknown
        .into_iter()
        .map(|u| format!("{u} does not exist in the image; its files belong to root (as rpm does)"))
        .collect()
}

fn evr_of(h: &Header) -> String {
    format!(
        "{}{}-{}",
        h.int(tag::EPOCH)
            .map(|e| format!("{e}:"))
            .unwrap_or_default(),
        h.string(tag::VERSION).unwrap_or_default(),
        h.string(tag::RELEASE).unwrap_or_default()
    )
}

/// rpm's file conflict rule: two packages may share a path when both are
/// directories, or both are the same kind with the same contents (digest,
/// link target) and mode.
fn files_conflict(a: &FileInfo, b: &FileInfo) -> bool {
    if a.flags & RPMFILE_GHOST != 0 || b.flags & RPMFILE_GHOST != 0 {
        return false;
    }
    let (ta, tb) = (a.mode & S_IFMT, b.mode & S_IFMT);
    if ta == S_IFDIR && tb == S_IFDIR {
        return false;
    }
    if ta != tb {
        return true;
    }
    match ta {
        S_IFREG => a.digest != b.digest || a.mode != b.mode,
        S_IFLNK => a.linkto != b.linkto,
        _ => false,
    }
}

/// Packages that others need come first; ties (and cycles) by name.
fn install_order(new: &[NewPackage]) -> Vec<usize> {
    let pkgs: Vec<deps::Package> = new.iter().map(|n| n.deps.clone()).collect();
    let mut names: Vec<usize> = (0..new.len()).collect();
    names.sort_by(|a, b| new[*a].deps.name.cmp(&new[*b].deps.name));
    let needs: Vec<BTreeSet<usize>> = (0..new.len())
        .map(|i| {
            let mut s = BTreeSet::new();
            for r in &new[i].deps.requires {
                for (j, p) in pkgs.iter().enumerate() {
                    if j != i && deps::Universe::new(std::slice::from_ref(p)).is_met(r) {
                        s.insert(j);
                    }
                }
            }
            s
        })
        .collect();
    let mut done: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = names;
    while !left.is_empty() {
        let pos = left
            .iter()
            .position(|i| needs[*i].iter().all(|j| done.contains(j)))
            .unwrap_or(0);
        done.push(left.remove(pos));
    }
    done
}

fn scriptlets_of(h: &Header) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (t, name) in [
        (tag::PRETRANS, "%pretrans"),
        (tag::PREIN, "%pre"),
        (tag::POSTIN, "%post"),
        (tag::PREUN, "%preun"),
        (tag::POSTUN, "%postun"),
        (tag::POSTTRANS, "%posttrans"),
        (1065, "%trigger"),
        (5066, "%filetrigger"),
        (5076, "%transfiletrigger"),
    ] {
        if h.has(t) {
            let body = h.strings(t).join("\n");
            out.push((name.to_string(), body));
        }
    }
    out
}

fn node_for(f: &FileInfo, meta: Meta) -> Option<Node> {
    let major = (f.rdev >> 8) & 0xfff;
    let minor = (f.rdev & 0xff) | ((f.rdev >> 12) & 0xfff00);
    Some(match f.mode & S_IFMT {
        S_IFDIR => Node::dir(meta),
        S_IFLNK => Node::symlink(meta, f.linkto.as_bytes().to_vec()),
        S_IFCHR => Node {
            meta,
            kind: Kind::CharDev { major, minor },
        },
        S_IFBLK => Node {
            meta,
            kind: Kind::BlockDev { major, minor },
        },
        S_IFIFO => Node {
            meta,
            kind: Kind::Fifo,
        },
        S_IFSOCK => Node {
            meta,
            kind: Kind::Socket,
        },
        _ => return None,
    })
}

/// Stream one package's payload into the tree.
fn place_payload(
    tree: &mut Tree,
    n: &NewPackage,
    owned: &mut Vec<(NodeId, String, String)>,
    report: &mut InstallReport,
    time: u32,
) -> Result<(), InstallError> {
    let h = &n.headers.header;
    // rpm creates missing parent folders (0755, root) for what it places.
    let parents_meta = Meta::new(0o755, 0, 0, i64::from(time));
    for f in files_of(h).iter().filter(|f| f.flags & RPMFILE_GHOST == 0) {
        if let Some((parent, _)) = f.path.rsplit_once('/')
            && !parent.is_empty()
            && tree.resolve(parent, true).is_err()
        {
            tree.mkdir_p(parent, &parents_meta)
                .map_err(|source| InstallError::Place {
                    package: n.deps.nevra.clone(),
                    path: parent.to_string(),
                    source,
                })?;
        }
    }
    let files = files_of(h);
    let by_path: BTreeMap<String, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.clone(), i))
        .collect();
    let pkg = n.deps.nevra.clone();
    let payload_err = |source: std::io::Error| InstallError::Payload {
        package: pkg.clone(),
        source,
    };
    let place_err = |path: &str, source: PathError| InstallError::Place {
        package: n.deps.nevra.clone(),
        path: path.to_string(),
        source,
    };
    let (_, f) = PackageHeaders::open(&n.path).map_err(payload_err)?;
    let compressor = h.string(tag::PAYLOADCOMPRESSOR);
    let stream = crate::rpm::payload::decoder(compressor.as_deref(), std::io::BufReader::new(f))
        .map_err(payload_err)?;
    let mut cpio = cpio::CpioReader::new(stream);
    let mut seen = vec![false; files.len()];
    // Hard link sets: inode key -> (node with the data, paths waiting).
    let mut link_sets: BTreeMap<(u32, u32), (Option<String>, Vec<String>)> = BTreeMap::new();
    let set_sizes: BTreeMap<(u32, u32), usize> = files
        .iter()
        .filter(|f| f.mode & S_IFMT == S_IFREG)
        .fold(BTreeMap::new(), |mut m, f| {
            *m.entry(f.inode).or_insert(0) += 1;
            m
        });
    // In rpm's stripped cpio form a hard link set's data comes with its
    // member of highest file index only; the others carry none.
    let stripped_size = |i: u32| -> Option<u64> {
        let i = i as usize;
        let f = files.get(i)?;
        let later_link = f.mode & S_IFMT == S_IFREG
            && files[i + 1..]
                .iter()
                .any(|g| g.inode == f.inode && g.mode & S_IFMT == S_IFREG);
        Some(if later_link { 0 } else { f.size })
    };
    loop {
        let entry = cpio.next_entry(stripped_size).map_err(payload_err)?;
        let Some(entry) = entry else { break };
        let i = match entry.index {
            Some(i) => i as usize,
            None => {
                let p = entry.name.strip_prefix('.').unwrap_or(&entry.name);
                match by_path.get(p) {
                    Some(i) => *i,
                    None => {
                        return Err(InstallError::Refused {
                            message: format!(
                                "{pkg}: the payload holds `{}`, which the header does not list",
                                entry.name
                            ),
                        });
                    }
                }
            }
        };
        let Some(f) = files.get(i) else {
            return Err(InstallError::Refused {
                message: format!("{pkg}: payload names file {i}, which the header lacks"),
            });
        };
        seen[i] = true;
        let meta = Meta::new(f.mode, 0, 0, i64::from(f.mtime));
        let mut meta = meta;
        if !f.caps.is_empty() {
            let x = caps::xattr_from_text(&f.caps).map_err(|m| InstallError::Refused {
                message: format!("{pkg}: {}: {m}", f.path),
            })?;
            meta.xattrs.insert("security.capability".into(), x);
        }
        let ty = f.mode & S_IFMT;
        if ty == S_IFREG {
            let multi = set_sizes.get(&f.inode).copied().unwrap_or(1) > 1;
            if multi && entry.size == 0 && f.size > 0 {
                // A hard link whose data comes with a later member.
                let set = link_sets.entry(f.inode).or_default();
                match &set.0 {
                    Some(holder) => {
                        let holder = holder.clone();
                        tree.hardlink(&holder, &f.path)
                            .map_err(|e| place_err(&f.path, e))?;
                    }
                    None => set.1.push(f.path.clone()),
                }
                continue;
            }
            let target = config_target(tree, f, report, &pkg);
            let data = tree.spill(&mut cpio.data()).map_err(payload_err)?;
            if data.size != f.size {
                return Err(InstallError::Refused {
                    message: format!(
                        "{pkg}: `{}` has {} bytes in the payload, {} in the header",
                        f.path, data.size, f.size
                    ),
                });
            }
            let id = tree
                .insert_path(&target, Node::file(meta, data))
                .map_err(|e| place_err(&target, e))?;
            owned.push((id, f.user.clone(), f.group.clone()));
            if multi {
                let set = link_sets.entry(f.inode).or_default();
                set.0 = Some(target.clone());
                for p in std::mem::take(&mut set.1) {
                    tree.hardlink(&target, &p).map_err(|e| place_err(&p, e))?;
                }
            }
            continue;
        }
        if ty == S_IFDIR {
            // A directory over a symlink to a directory keeps the symlink
            // (as rpm does: `/bin -> usr/bin` stays).
            if let Ok(existing) = tree.resolve(&f.path, false)
                && matches!(tree.node(existing).kind, Kind::Symlink(_))
                && tree
                    .resolve(&f.path, true)
                    .is_ok_and(|t| tree.node(t).is_dir())
            {
                continue;
            }
        }
        let Some(node) = node_for(f, meta) else {
            return Err(InstallError::Refused {
                message: format!("{pkg}: `{}` has an unknown file type {:o}", f.path, f.mode),
            });
        };
        let id = tree
            .insert_path(&f.path, node)
            .map_err(|e| place_err(&f.path, e))?;
        owned.push((id, f.user.clone(), f.group.clone()));
    }
    // Hard link sets whose members all came without data (empty files).
    for (_, (holder, waiting)) in link_sets {
        if holder.is_none()
            && let Some((first, rest)) = waiting.split_first()
        {
            let f = &files[by_path[first]];
            let data = tree.spill(&mut std::io::empty()).map_err(payload_err)?;
            let id = tree
                .insert_path(
                    first,
                    Node::file(Meta::new(f.mode, 0, 0, i64::from(f.mtime)), data),
                )
                .map_err(|e| place_err(first, e))?;
            owned.push((id, f.user.clone(), f.group.clone()));
            for p in rest {
                tree.hardlink(first, p).map_err(|e| place_err(p, e))?;
            }
        }
    }
    for (i, f) in files.iter().enumerate() {
        if !seen[i] && f.flags & RPMFILE_GHOST == 0 && f.mode & S_IFMT != S_IFREG {
            // Directories and links are always in rpm's payloads; a missing
            // one is odd but harmless to create from the header.
            if let Some(node) = node_for(f, Meta::new(f.mode, 0, 0, i64::from(f.mtime))) {
                let id = tree
                    .insert_path(&f.path, node)
                    .map_err(|e| place_err(&f.path, e))?;
                owned.push((id, f.user.clone(), f.group.clone()));
            }
        } else if !seen[i] && f.flags & RPMFILE_GHOST == 0 && f.size > 0 {
            let waiting_ok = files
                .iter()
                .enumerate()
                .any(|(j, g)| j != i && g.inode == f.inode && seen[j]);
            if !waiting_ok {
                return Err(InstallError::Refused {
                    message: format!("{pkg}: the payload lacks `{}`", f.path),
                });
            }
        }
    }
    Ok(())
}

/// Where a file goes: its own path, or `PATH.rpmnew` for a
/// `%config(noreplace)` file whose path already holds other contents
/// (what rpm does; a plain `%config` file replaces it and the old one is
/// kept as `PATH.rpmorig`).
fn config_target(tree: &mut Tree, f: &FileInfo, report: &mut InstallReport, pkg: &str) -> String {
    if f.flags & RPMFILE_CONFIG == 0 {
        return f.path.clone();
    }
    let Ok(id) = tree.resolve(&f.path, true) else {
        return f.path.clone();
    };
    if !matches!(tree.node(id).kind, Kind::File(_)) {
        return f.path.clone();
    }
    let same = tree.file_sha256(id).is_ok_and(|d| d == f.digest);
    if same {
        return f.path.clone();
    }
    if f.flags & RPMFILE_NOREPLACE != 0 {
        report.warnings.push(format!(
            "{pkg}: {} exists with other contents; the package's version is {}.rpmnew",
            f.path, f.path
        ));
        format!("{}.rpmnew", f.path)
    } else {
        let orig = format!("{}.rpmorig", f.path);
        let _ = tree.hardlink(&f.path, &orig);
        report.warnings.push(format!(
            "{pkg}: {} existed with other contents; it was saved as {orig}",
            f.path
        ));
        f.path.clone()
    }
}

/// Put the database file back into the tree.
fn store_db(
    tree: &mut Tree,
    db_file: &Path,
    existing: Option<NodeId>,
    time: u32,
) -> Result<(), InstallError> {
    let work_err = |source| InstallError::Work {
        path: db_file.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(db_file).map_err(work_err)?;
    let data = tree.spill(&mut f).map_err(work_err)?;
    let meta = match existing {
        Some(id) => Meta {
            mtime: i64::from(time),
            mtime_nsec: 0,
            ..tree.node(id).meta.clone()
        },
        None => Meta::new(0o644, 0, 0, i64::from(time)),
    };
    let dir_meta = Meta::new(0o755, 0, 0, i64::from(time));
    tree.mkdir_p(RPMDB_DIR, &dir_meta)
        .map_err(|source| InstallError::Place {
            package: "rpm database".into(),
            path: RPMDB_DIR.into(),
            source,
        })?;
    tree.insert_path(RPMDB_FILE, Node::file(meta, data))
        .map_err(|source| InstallError::Place {
            package: "rpm database".into(),
            path: RPMDB_FILE.into(),
            source,
        })?;
    Ok(())
}
