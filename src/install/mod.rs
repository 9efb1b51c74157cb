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
pub mod fate;
pub mod files;
#[cfg(test)]
mod installed_tests;
mod place;
mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::package::Package;
use crate::progress::{Quiet, Reporter, Task, Unit};
use crate::rootfs::{Kind, Meta, Node, NodeId, PathError, Tree};
use crate::rpm::header::{Header, tag};
use crate::rpm::read::{PackageHeaders, verify_digests};
use crate::rpmdb::{Rpmdb, record, sqlite::RpmdbError};
use files::{FileInfo, files_of};

/// Where rpm keeps its database in an Amazon Linux 2023 root.
pub const RPMDB_DIR: &str = "/var/lib/rpm";
pub const RPMDB_FILE: &str = "/var/lib/rpm/rpmdb.sqlite";
/// The database's write-ahead log and its index, which a live system may
/// leave beside it; the image's database is whole without them.
const RPMDB_WAL: &str = "/var/lib/rpm/rpmdb.sqlite-wal";
const RPMDB_SHM: &str = "/var/lib/rpm/rpmdb.sqlite-shm";

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

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// INSTALLTIME/INSTALLTID and the mtime of files ingot writes.
    pub install_time: u32,
    /// Refuse unmet dependencies and conflicts (the default).
    pub deps_check: bool,
    /// A folder for temporary files (the database being written).
    pub work_dir: PathBuf,
}

/// What the transaction did with one package it installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Its SIGMD5 from its signature header, as rpm records it.
    pub package: Package,
    /// The package it replaced, if it was an upgrade.
    pub replaced: Option<String>,
    /// Scriptlets in the package: (`%post`, body). None is ever run.
    pub scriptlets: Vec<(String, String)>,
    /// Every path the package lists.
    pub files: Vec<String>,
}

/// The record of the package whose (installed) header is `h`.
pub fn package_of(h: &Header) -> Package {
    Package {
        name: h.string(tag::NAME).unwrap_or_default(),
        epoch: h.int(tag::EPOCH).map(|e| e as u32),
        version: h.string(tag::VERSION).unwrap_or_default(),
        release: h.string(tag::RELEASE).unwrap_or_default(),
        arch: h.string(tag::ARCH).unwrap_or_default(),
        nevra: deps::nevra(h),
        license: h.string(tag::LICENSE).unwrap_or_default(),
        vendor: h.string(tag::VENDOR).unwrap_or_default(),
        url: h.string(tag::URL).unwrap_or_default(),
        source_rpm: h.string(tag::SOURCERPM).unwrap_or_default(),
        sigmd5: h.bin(tag::SIGMD5).map(hex::encode).unwrap_or_default(),
        summary: h.string(tag::SUMMARY).unwrap_or_default(),
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
    pub image_packages: Vec<Package>,
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
    files: Vec<FileInfo>,
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

/// An installed package, as the database holds it.
struct Old {
    hnum: u32,
    header: Header,
    deps: deps::Package,
    files: Vec<FileInfo>,
}

/// Read and check every package before anything changes: digests, binary
/// package, one package per name, a file list rpm would accept.
fn read_packages(rpms: &[(PathBuf, String)]) -> Result<Vec<NewPackage>, InstallError> {
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
        let files = files_of(&headers.header).map_err(|e| InstallError::Refused {
            message: format!("`{shown}`: {e}"),
        })?;
        new.push(NewPackage {
            path: p.clone(),
            shown: shown.clone(),
            headers,
            deps,
            files,
        });
    }
    Ok(new)
}

/// The tree's rpm database file, when it has one.
fn db_file(tree: &Tree) -> Option<NodeId> {
    tree.resolve(RPMDB_FILE, true)
        .ok()
        .filter(|&id| matches!(tree.node(id).kind, Kind::File(_)))
}

/// The database, copied out of the tree into `work` (or a new one).
fn open_db(tree: &Tree, work: &Path) -> Result<(Rpmdb, PathBuf, Option<NodeId>), InstallError> {
    let existing = tree.resolve(RPMDB_FILE, true).ok();
    let db = match db_file(tree) {
        Some(id) => Rpmdb::open(&copy_db(tree, id, work)?.0)?,
        None => Rpmdb::create(&work.join("rpmdb.sqlite"))?,
    };
    Ok((db, work.join("rpmdb.sqlite"), existing))
}

/// Copy the tree's database (node `db`) into `work` as `rpmdb.sqlite`,
/// with its write-ahead log when it has one: a base taken from a live
/// system may hold changes there still, and SQLite reads them from
/// beside the file. Also says whether that log holds anything.
fn copy_db(tree: &Tree, db: NodeId, work: &Path) -> Result<(PathBuf, bool), InstallError> {
    let db_file = work.join("rpmdb.sqlite");
    let copy = |id: NodeId, to: &Path| -> Result<u64, InstallError> {
        let work_err = |source| InstallError::Work {
            path: to.to_path_buf(),
            source,
        };
        let mut r = tree.open(id).map_err(work_err)?;
        let mut f = std::fs::File::create(to).map_err(work_err)?;
        std::io::copy(&mut r, &mut f).map_err(work_err)
    };
    copy(db, &db_file)?;
    let mut logged = false;
    if let Some(wal) = tree.resolve(RPMDB_WAL, false).ok()
        && matches!(tree.node(wal).kind, Kind::File(_))
    {
        logged = copy(wal, &work.join("rpmdb.sqlite-wal"))? > 0;
    }
    Ok((db_file, logged))
}

/// The headers of the packages the tree's rpm database lists (none when
/// it has no database), for whoever needs the installed set before
/// installing (resolving packages from repositories). The database is
/// copied into a scratch folder inside `work`, removed before returning,
/// and opened only to read unless its write-ahead log holds changes
/// (SQLite then has to replay them): nothing is created when the tree
/// has no database, and nothing is checkpointed on close.
pub fn installed_headers(tree: &Tree, work: &Path) -> Result<Vec<Header>, InstallError> {
    let Some(id) = db_file(tree) else {
        return Ok(Vec::new());
    };
    let scratch = tempfile::Builder::new()
        .prefix("ingot-rpmdb-read-")
        .tempdir_in(work)
        .map_err(|source| InstallError::Work {
            path: work.to_path_buf(),
            source,
        })?;
    let (db_file, logged) = copy_db(tree, id, scratch.path())?;
    let db = match logged {
        true => Rpmdb::open(&db_file)?,
        false => Rpmdb::open_read_only(&db_file)?,
    };
    // Dropped, not closed: `close` would make the scratch copy whole
    // again, which nobody reads.
    Ok(db.packages()?.into_iter().map(|(_, h)| h).collect())
}

fn installed_packages(db: &Rpmdb) -> Result<Vec<Old>, InstallError> {
    db.packages()?
        .into_iter()
        .map(|(hnum, header)| {
            let deps = deps::Package::from_header(&header);
            let files = files_of(&header).map_err(|e| InstallError::Refused {
                message: format!("the base's database record of {}: {e}", deps.nevra),
            })?;
            Ok(Old {
                hnum,
                header,
                deps,
                files,
            })
        })
        .collect()
}

/// Upgrades and obsoletes: which installed packages go away (index into
/// `installed` -> the NEVRA of the package that replaces it).
fn replaced_by(
    new: &[NewPackage],
    installed: &[Old],
) -> Result<BTreeMap<usize, String>, InstallError> {
    let mut removing = BTreeMap::new();
    for n in new {
        for (i, old) in installed.iter().enumerate() {
            if old.deps.name == n.deps.name {
                let old_evr = evr_of(&old.header);
                let new_evr = evr_of(&n.headers.header);
                match deps::compare_evr(&new_evr, &old_evr) {
                    std::cmp::Ordering::Greater => {
                        removing.insert(i, n.deps.nevra.clone());
                    }
                    std::cmp::Ordering::Equal => {
                        return Err(InstallError::Refused {
                            message: format!("{} is already installed in the base", old.deps.nevra),
                        });
                    }
                    std::cmp::Ordering::Less => {
                        return Err(InstallError::Refused {
                            message: format!(
                                "{} would downgrade {} in the base; ingot only installs newer versions",
                                n.deps.nevra, old.deps.nevra
                            ),
                        });
                    }
                }
            }
            for o in &n.deps.obsoletes {
                if o.name == old.deps.name
                    && old.deps.provides.iter().any(|p| {
                        p.name == old.deps.name
                            && deps::ranges_overlap(p.flags, &p.evr, o.flags, &o.evr)
                    })
                {
                    removing.insert(i, n.deps.nevra.clone());
                }
            }
        }
    }
    Ok(removing)
}

/// Requirements and conflicts of the new packages against what stays.
fn check_dependencies(
    new: &[NewPackage],
    installed: &[Old],
    removing: &BTreeMap<usize, String>,
    opts: &InstallOptions,
    report: &mut InstallReport,
) -> Result<(), InstallError> {
    let mut universe_pkgs: Vec<deps::Package> = installed
        .iter()
        .enumerate()
        .filter(|(i, _)| !removing.contains_key(i))
        .map(|(_, p)| p.deps.clone())
        .collect();
    let first_new = universe_pkgs.len();
    universe_pkgs.extend(new.iter().map(|n| n.deps.clone()));
    let new_idx: Vec<usize> = (first_new..universe_pkgs.len()).collect();
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
    Ok(())
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
    install_named(tree, &named, opts, &Quiet)
}

/// [`install`], given how messages name each package: a package built
/// from a spec goes by its spec, not by the scratch file it was built into.
/// `progress` hears the payloads' bytes as they are placed, with each
/// package's name.
pub fn install_named(
    tree: &mut Tree,
    rpms: &[(PathBuf, String)],
    opts: &InstallOptions,
    progress: &dyn Reporter,
) -> Result<InstallReport, InstallError> {
    let mut report = InstallReport::default();
    let new = read_packages(rpms)?;
    let work = tempfile::Builder::new()
        .prefix("ingot-rpmdb-")
        .tempdir_in(&opts.work_dir)
        .map_err(|source| InstallError::Work {
            path: opts.work_dir.clone(),
            source,
        })?;
    let (mut db, db_file, existing_db) = open_db(tree, work.path())?;
    let installed = installed_packages(&db)?;
    let removing = replaced_by(&new, &installed)?;
    check_dependencies(&new, &installed, &removing, opts, &mut report)?;

    // Files: conflicts and what happens to each, decided on the tree as it
    // is; then the new packages' files in dependency order; then what the
    // replaced versions leave behind (rpm erases them after installing).
    let files_plan = {
        let pkgs = |keep: bool| -> Vec<plan::PkgFiles> {
            installed
                .iter()
                .enumerate()
                .filter(|(i, _)| removing.contains_key(i) != keep)
                .map(|(_, o)| plan::PkgFiles {
                    nevra: &o.deps.nevra,
                    files: &o.files,
                })
                .collect()
        };
        let new_files: Vec<plan::PkgFiles> = new
            .iter()
            .map(|n| plan::PkgFiles {
                nevra: &n.deps.nevra,
                files: &n.files,
            })
            .collect();
        plan::plan(tree, &new_files, &pkgs(true), &pkgs(false))
            .map_err(|list| InstallError::Conflicts { list })?
    };
    let order = install_order(&new);
    let mut owned_by_name: Vec<(NodeId, String, String)> = Vec::new();
    let placing = Task::start(
        progress,
        "installing payloads",
        Unit::Bytes,
        Some(new.iter().map(|n| place::payload_bytes(&n.files)).sum()),
    );
    for &k in &order {
        placing.note(&new[k].deps.nevra);
        place::place_payload(
            tree,
            &new[k],
            &files_plan.actions[k],
            (&mut owned_by_name, &mut report),
            opts.install_time,
            &placing,
        )?;
    }
    placing.finish();
    place::erase(tree, &files_plan.erase, &mut report.warnings);
    report.pending_owners = owned_by_name;
    report
        .removed
        .extend(removing.keys().map(|&i| installed[i].deps.nevra.clone()));

    // The database: old records out, new ones in, in install order.
    for &i in removing.keys() {
        db.remove(installed[i].hnum)?;
    }
    for &k in &order {
        let n = &new[k];
        let rec =
            record::installed_record(&n.headers.signature, &n.headers.header, opts.install_time)
                .map_err(|e| InstallError::Refused {
                    message: format!("`{}`: {e}", n.shown),
                })?;
        db.add(&rec)?;
        report
            .installed
            .push(installed_entry(n, &removing, &installed));
    }
    let mut all: Vec<Package> = db.packages()?.iter().map(|(_, h)| package_of(h)).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.nevra.cmp(&b.nevra)));
    report.image_packages = all;
    db.close()?;
    store_db(tree, &db_file, existing_db, opts.install_time)?;
    Ok(report)
}

fn installed_entry(
    n: &NewPackage,
    removing: &BTreeMap<usize, String>,
    installed: &[Old],
) -> Installed {
    let h = &n.headers.header;
    Installed {
        package: Package {
            // The signature header's: the header alone has no SIGMD5 yet.
            sigmd5: n
                .headers
                .signature
                .bin(tag::SIG_MD5)
                .map(hex::encode)
                .unwrap_or_default(),
            ..package_of(h)
        },
        replaced: removing
            .iter()
            .find(|(_, by)| **by == n.deps.nevra)
            .map(|(i, _)| installed[*i].deps.nevra.clone()),
        scriptlets: scriptlets_of(h),
        files: n.files.iter().map(|f| f.path.clone()).collect(),
    }
}

/// Give placed nodes their owners, by name, through the tree's own
/// `/etc/passwd` and `/etc/group` (as rpm does with `--root`). Unknown
/// names become root, with a warning, as rpm does.
pub fn resolve_owners(tree: &mut Tree, pending: &[(NodeId, String, String)]) -> Vec<String> {
    let users = tree
        .read_text("/etc/passwd")
        .map(|t| id_map(&t))
        .unwrap_or_default();
    let groups = tree
        .read_text("/etc/group")
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
    // A log left from the base would be replayed over the new file.
    for stale in [RPMDB_WAL, RPMDB_SHM] {
        if tree.resolve(stale, false).is_ok() {
            let _ = tree.remove(stale);
        }
    }
    Ok(())
}
