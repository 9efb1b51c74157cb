//! Stage 3 of `bake` (and all of `ingot lock`): resolve packages from
//! repositories. The image spec's `install` requests, and the
//! requirements of the image's own packages, are resolved against the
//! base's installed set and the `[[image.repos]]` repositories; the answer
//! is pinned in the lock file beside the spec (`web.lock` for `web.toml`,
//! [`crate::lock`]) and the chosen packages are downloaded into the cache.
//!
//! In: the image spec, the base's tree (its `/etc/dnf/vars` and rpm
//! database), the packages the spec builds or names, [`RepoOptions`]
//! (cache folder, `offline`, `locked`). Out: [`Fetched`]: the downloaded
//! packages (files in the content-addressed cache, each checked against
//! its SHA-256 and size, and its signature with gpgcheck), their newest
//! build time, and the lock to write once the bake succeeded.
//!
//! The steps:
//! 1. Variables: `$releasever` from the base's `/etc/dnf/vars/releasever`,
//!    else its installed `system-release` (dnf's way), else the spec's
//!    `releasever`; `$basearch` from the image's arch; the base's other
//!    `/etc/dnf/vars` files too (Amazon Linux's mirror lists name
//!    `$awsregion` and `$awsdomain`). The repositories' URLs get them.
//!    With `use_base_repos`, the base's dnf configuration is copied out
//!    of the tree and its enabled `.repo` sections follow the spec's own
//!    (`weak_deps` then defaults to its `install_weak_deps`).
//! 2. The lock's inputs digest ([`crate::lock::Inputs`]): the requests, the
//!    image arch, `$releasever`, `weak_deps`, each repository's name, URLs
//!    (baseurl, mirrorlist or metalink), priority, `repo_gpgcheck` and key
//!    (a key file by its SHA-256, so a clone elsewhere gives the same
//!    digest), and the requirements of the image's own
//!    packages (but not their versions: a new release of the application
//!    does not make the lock stale).
//! 3. A lock that matches: exactly its packages are downloaded (by their
//!    repository's base URLs and locations), nothing is resolved. A lock
//!    missing or stale: with `locked`, an error; otherwise the repositories
//!    are read, the request resolved ([`crate::resolve`], file lists read
//!    only for a file dependency primary does not answer), the chosen
//!    packages downloaded, and a new lock made.
//!
//! 4. `ingot lock --download`: the lock, new or matching, then has its
//!    packages downloaded as in 3 (before a new lock is written, so a
//!    failed download leaves the old one), for a later offline bake.
//!
//! Never: writes the lock before the caller says the bake succeeded
//! ([`LockUpdate::write`], a temporary file renamed into place), or sends
//! a request in `offline` mode.

use compact_str::CompactString;
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{BakeError, BakeOptions, Reporter, Result, sha256_path};
use crate::install;
use crate::lock::{self, Change, Inputs, Lock, LockedPackage};
use crate::repo::{
    self, Checksum, ChecksumKind, Client, Dep, Download, KeySource, Repo, RepoConfig, Vars,
};
use crate::resolve::{self as solver, Candidate, Limits, Request};
use crate::rootfs::{Kind, Tree};
use crate::rpm::header::{Header, tag};
use crate::rpm::read::PackageHeaders;
use crate::spec::image::ImageSpec;
use crate::spec::repos::{KeyRef, RepoSource, RepoSpec};

/// How packages from repositories are fetched.
#[derive(Debug, Clone, Default)]
pub struct RepoOptions {
    /// The cache folder: metadata and packages by checksum (the CLI's
    /// default is `$XDG_CACHE_HOME/ingot`). Used only when the spec
    /// installs from repositories.
    pub cache: PathBuf,
    /// Only the cache: no request is sent.
    pub offline: bool,
    /// A missing or stale lock file is an error rather than resolved.
    pub locked: bool,
}

/// What the repositories add to the image.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    /// (file in the cache, how messages name it), in the lock's order.
    pub rpms: Vec<(PathBuf, String)>,
    /// The newest build time among them (for the source date).
    pub newest_build: u64,
    /// The lock to write once the bake succeeded (none when the lock file
    /// already matched).
    pub update: Option<LockUpdate>,
    /// The lock the packages came by: the manifest names it.
    pub lock: Option<LockUsed>,
}

/// The lock a bake took its repository packages by.
#[derive(Debug)]
pub(super) struct LockUsed {
    pub path: PathBuf,
    pub lock: Lock,
    /// The SHA-256 of the lock file's bytes: as read, or as the bake
    /// writes it when it was missing or stale.
    pub sha256: String,
}

/// A lock file to write, and what it had before.
#[derive(Debug, Clone)]
pub struct LockUpdate {
    pub path: PathBuf,
    pub previous: Option<Lock>,
    pub lock: Lock,
}

impl LockUpdate {
    /// What changed against the lock file as it was.
    pub fn changes(&self) -> Vec<Change> {
        let old = self.previous.as_ref().map_or(&[][..], |l| &l.packages);
        lock::changes(old, &self.lock.packages)
    }

    /// Write the lock file: into a work folder in the spec's folder (known
    /// to the cleanup on a signal), then renamed over the old one, so a
    /// reader sees the old lock or the new one, never a part.
    pub fn write(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let err = |source| BakeError::Write {
            path: self.path.clone(),
            source,
        };
        let work = crate::output::work_dir_in(dir).map_err(err)?;
        let tmp = work.path().join("lock");
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(self.lock.to_text().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        Ok(())
    }
}

/// What resolution starts from, common to `bake` and `lock`.
struct Setup {
    configs: Vec<RepoConfig>,
    weak_deps: bool,
    /// The base's dnf configuration copied out of the tree (with
    /// `use_base_repos`): its key files are read from here.
    _base_etc: Option<tempfile::TempDir>,
    inputs: [u8; 32],
    installed: Vec<Header>,
    local: Vec<Header>,
    lock_path: PathBuf,
    previous: Option<Lock>,
}

/// The `bake` stage: the packages the image installs from repositories
/// (none when the spec names no repository).
pub(super) fn fetch(
    spec: &ImageSpec,
    tree: &Tree,
    local: &[(PathBuf, String)],
    opts: &BakeOptions,
    work: &Path,
    progress: &dyn Reporter,
) -> Result<Fetched> {
    if !wanted(spec) {
        return Ok(Fetched::default());
    }
    progress.step("resolving packages from repositories");
    let setup = setup(spec, tree, local, work)?;
    let client = client(&opts.repos);
    let (lock, update) = match &setup.previous {
        Some(l) if l.matches(&setup.inputs) => (l.clone(), None),
        _ if opts.repos.locked => {
            return Err(BakeError::Locked {
                path: setup.lock_path.clone(),
                spec: spec.file.clone(),
                missing: setup.previous.is_none(),
            });
        }
        _ => {
            let lock = resolve_new(spec, &setup, &client, progress)?;
            let update = LockUpdate {
                path: setup.lock_path.clone(),
                previous: setup.previous.clone(),
                lock: lock.clone(),
            };
            (lock, Some(update))
        }
    };
    let (rpms, _) = download_locked(&lock, &setup.configs, &client, progress)?;
    let mut newest_build = 0;
    for (p, shown) in &rpms {
        let (h, _) = PackageHeaders::open(p).map_err(|source| BakeError::Read {
            path: PathBuf::from(shown),
            source,
        })?;
        newest_build = newest_build.max(h.header.int(tag::BUILDTIME).unwrap_or(0));
    }
    let sha256 = match &update {
        Some(u) => hex::encode(sha2::Sha256::digest(u.lock.to_text().as_bytes())),
        None => sha256_path(&setup.lock_path).map_err(|source| BakeError::Read {
            path: setup.lock_path.clone(),
            source,
        })?,
    };
    Ok(Fetched {
        rpms,
        newest_build,
        update,
        lock: Some(LockUsed {
            path: setup.lock_path,
            lock,
            sha256,
        }),
    })
}

/// Whether the image takes anything from a repository.
fn wanted(spec: &ImageSpec) -> bool {
    spec.repositories.wanted()
}

fn client(o: &RepoOptions) -> Client {
    Client::new(
        o.cache.clone(),
        repo::Options {
            offline: o.offline,
            ..repo::Options::default()
        },
    )
}

fn setup(spec: &ImageSpec, tree: &Tree, local: &[(PathBuf, String)], work: &Path) -> Result<Setup> {
    let installed = install::installed_headers(tree, work)?;
    let mut dnf_vars = tree_dnf_vars(tree)?;
    let releasever = match dnf_vars.remove("releasever").filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => repo::config::releasever_from_installed(&installed)
            .or_else(|| spec.repositories.releasever.clone())
            .ok_or_else(|| {
                BakeError::Spec(
                    spec.error_at(
                        spec.at_base,
                        "cannot tell the base's release for `$releasever`: it has no \
                         /etc/dnf/vars/releasever and no installed system-release",
                    )
                    .with_hint("set `releasever` in [image] (\"2023\" for Amazon Linux 2023)"),
                )
            })?,
    };
    let mut vars = Vars::new(&releasever, spec.arch.name());
    for (k, v) in &dnf_vars {
        vars.set(k, v);
    }
    let mut configs: Vec<RepoConfig> = spec
        .repositories
        .repos
        .iter()
        .map(|r| config_of(r, &vars))
        .collect();
    let mut weak_deps = spec.repositories.weak_deps;
    let base_etc = if spec.repositories.use_base_repos {
        let etc = base_dnf_config(tree, work)?;
        let base = repo::config::read_repos_dir(etc.path(), &vars)?;
        // The spec's own table of a name wins over the base's.
        let theirs: Vec<RepoConfig> = base
            .into_iter()
            .filter(|c| c.enabled && !configs.iter().any(|o| o.name == c.name))
            .collect();
        configs.extend(theirs);
        if weak_deps.is_none() {
            // dnf's default is to install them.
            let conf = repo::config::dnf_conf_bool(etc.path(), "install_weak_deps", &vars)?;
            weak_deps = Some(conf.unwrap_or(true));
        }
        Some(etc)
    } else {
        None
    };
    let weak_deps = weak_deps.unwrap_or(false);
    let mut local_headers = Vec::new();
    for (p, shown) in local {
        let (h, _) = PackageHeaders::open(p).map_err(|source| BakeError::Read {
            path: PathBuf::from(shown),
            source,
        })?;
        local_headers.push(h.header);
    }
    let inputs = inputs(spec, (&releasever, weak_deps), &configs, &local_headers)?;
    let lock_path = lock::path_for(&spec.file);
    let previous = Lock::read(&lock_path)?;
    Ok(Setup {
        configs,
        weak_deps,
        _base_etc: base_etc,
        inputs,
        installed,
        local: local_headers,
        lock_path,
        previous,
    })
}

/// The variables of the base's `/etc/dnf/vars` (one file per variable,
/// its first line the value), read from the tree.
fn tree_dnf_vars(tree: &Tree) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Ok(dir) = tree.resolve("/etc/dnf/vars", true) else {
        return Ok(out);
    };
    let Some(d) = tree.node(dir).as_dir() else {
        return Ok(out);
    };
    let names: Vec<String> = d
        .entries()
        .keys()
        .filter_map(|n| std::str::from_utf8(n).ok())
        .filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
        .take(repo::config::MAX_FILES)
        .map(str::to_string)
        .collect();
    for n in names {
        let path = format!("/etc/dnf/vars/{n}");
        let Ok(id) = tree.resolve(&path, true) else {
            continue;
        };
        if !matches!(tree.node(id).kind, Kind::File(_)) {
            continue;
        }
        let mut text = String::new();
        tree.open(id)
            .and_then(|r| {
                r.take(repo::config::MAX_VAR)
                    .read_to_string(&mut text)
                    .map(|_| ())
            })
            .map_err(|source| BakeError::Read {
                path: PathBuf::from(format!("{path} (in the base)")),
                source,
            })?;
        out.insert(n, text.lines().next().unwrap_or("").trim().to_string());
    }
    Ok(out)
}

/// The base's dnf configuration (`/etc/yum.repos.d`, `/etc/dnf/dnf.conf`,
/// `/etc/dnf/vars`, the keys of `/etc/pki/rpm-gpg`) copied out of the tree
/// into a folder of `work`, laid out as in the base, for
/// [`repo::config::read_repos_dir`] to read as dnf would (its `file://`
/// keys then resolve inside the copy). Symlinks are followed inside the
/// tree; each file is bounded.
fn base_dnf_config(tree: &Tree, work: &Path) -> Result<tempfile::TempDir> {
    /// The largest file copied (a key or a `.repo` file).
    const MAX_COPY: u64 = 1 << 20;
    let root = tempfile::Builder::new()
        .prefix("base-etc-")
        .tempdir_in(work)
        .map_err(|source| BakeError::Write {
            path: work.to_path_buf(),
            source,
        })?;
    let mut files = vec!["/etc/dnf/dnf.conf".to_string()];
    for dir in ["/etc/yum.repos.d", "/etc/dnf/vars", "/etc/pki/rpm-gpg"] {
        let Some(d) = tree
            .resolve(dir, true)
            .ok()
            .and_then(|id| tree.node(id).as_dir())
        else {
            continue;
        };
        files.extend(
            d.entries()
                .keys()
                .filter_map(|n| std::str::from_utf8(n).ok())
                .filter(|n| !n.contains('/') && *n != "." && *n != "..")
                .take(repo::config::MAX_FILES)
                .map(|n| format!("{dir}/{n}")),
        );
    }
    for f in files {
        let Ok(id) = tree.resolve(&f, true) else {
            continue;
        };
        if !matches!(tree.node(id).kind, Kind::File(_)) {
            continue;
        }
        let to = root.path().join(f.trim_start_matches('/'));
        let copy = || -> std::io::Result<()> {
            std::fs::create_dir_all(to.parent().unwrap_or(root.path()))?;
            let mut out = std::fs::File::create(&to)?;
            std::io::copy(&mut tree.open(id)?.take(MAX_COPY), &mut out)?;
            Ok(())
        };
        copy().map_err(|source| BakeError::Write {
            path: to.clone(),
            source,
        })?;
    }
    Ok(root)
}

/// An `[[image.repos]]` table as the repository reader takes it.
fn config_of(r: &RepoSpec, vars: &Vars) -> RepoConfig {
    let mut c = RepoConfig::new(&r.name, "");
    c.baseurl = Vec::new();
    match &r.source {
        RepoSource::BaseUrl(urls) => c.baseurl = urls.iter().map(|u| vars.substitute(u)).collect(),
        RepoSource::MirrorList(m) => c.mirrorlist = Some(vars.substitute(m)),
        RepoSource::Metalink(m) => c.metalink = Some(vars.substitute(m)),
    }
    c.gpgkey = match &r.gpgkey {
        Some(KeyRef::File(p)) => vec![KeySource::File(p.clone())],
        Some(KeyRef::Url(u)) => {
            let u = vars.substitute(u);
            vec![match repo::fetch::file_path(&u) {
                Some(p) => KeySource::File(p),
                None => KeySource::Url(u),
            }]
        }
        None => Vec::new(),
    };
    c.gpgcheck = r.gpgkey.is_some();
    c.repo_gpgcheck = r.repo_gpgcheck;
    c.priority = i32::try_from(r.priority).unwrap_or(i32::MAX);
    c.vars = vars.0.clone();
    c
}

/// The digest of what the lock depends on (see the module doc).
fn inputs(
    spec: &ImageSpec,
    (releasever, weak_deps): (&str, bool),
    configs: &[RepoConfig],
    local: &[Header],
) -> Result<[u8; 32]> {
    let r = &spec.repositories;
    let mut i = Inputs::new();
    i.add("arch", &[spec.arch.name()]);
    i.add("releasever", &[releasever]);
    i.add("weak_deps", &[&weak_deps.to_string()]);
    for q in &r.install {
        i.add("install", &[&q.text]);
    }
    for c in configs {
        let key = match c.gpgkey.first() {
            Some(KeySource::File(p)) => {
                let d = sha256_path(p).map_err(|source| BakeError::Read {
                    path: p.clone(),
                    source,
                })?;
                format!("sha256:{d}")
            }
            Some(KeySource::Url(u)) => u.clone(),
            None => String::new(),
        };
        let urls: Vec<String> = c.baseurl.iter().map(|u| portable_url(spec, u)).collect();
        let urls = urls.join(" ");
        let mirrors = match (&c.mirrorlist, &c.metalink) {
            (Some(m), _) => m.clone(),
            (None, Some(m)) => format!("metalink:{m}"),
            (None, None) => String::new(),
        };
        i.add(
            "repo",
            &[&c.name, &urls, &mirrors, &c.priority.to_string(), &key],
        );
        // Only when on, so the locks made before the key existed hold.
        if c.repo_gpgcheck {
            i.add("repo_gpgcheck", &[&c.name]);
        }
    }
    for h in local {
        let c = Candidate::from_header(h, 0, "", 0);
        for q in &c.requires {
            let own =
                c.provides.iter().any(|p| p.name == q.name) || c.files.iter().any(|f| *f == q.name);
            if q.name.starts_with("rpmlib(") || own {
                continue;
            }
            i.add("local-requires", &[&c.name, &q.to_string()]);
        }
    }
    Ok(i.digest())
}

/// A repository URL as the lock's digest takes it: a `file://` folder
/// inside the spec's folder by its path from there, so a checkout
/// elsewhere (a committed repository beside the spec) gives the same
/// digest.
fn portable_url(spec: &ImageSpec, url: &str) -> String {
    let inside = repo::fetch::file_path(url).and_then(|p| {
        let dir = spec.file.parent()?;
        let dir = std::path::absolute(dir).ok()?;
        let rel = p.strip_prefix(&dir).ok()?;
        Some(rel.to_string_lossy().into_owned())
    });
    match inside {
        Some(rel) => format!("spec-folder:{rel}/"),
        None => url.to_string(),
    }
}

/// Read the repositories, resolve, and make the lock of the answer
/// (downloading the chosen packages whose metadata gives no SHA-256).
fn resolve_new(
    spec: &ImageSpec,
    setup: &Setup,
    client: &Client,
    progress: &dyn Reporter,
) -> Result<Lock> {
    let (repos, chosen) = resolve_packages(spec, setup, client, progress)?;
    let mut locked = Vec::with_capacity(chosen.len());
    for (ri, p) in &chosen {
        let sha256 = match p.checksum.kind {
            ChecksumKind::Sha256 => p.checksum.hex.to_ascii_lowercase(),
            _ => {
                let file = client.download(&[repos[*ri].download_of(p)], progress)?;
                sha256_path(&file[0]).map_err(|source| BakeError::Read {
                    path: file[0].clone(),
                    source,
                })?
            }
        };
        locked.push(LockedPackage {
            name: p.name.to_string(),
            epoch: u32::try_from(p.epoch).unwrap_or(u32::MAX),
            version: p.version.to_string(),
            release: p.release.to_string(),
            arch: p.arch.to_string(),
            repo: repos[*ri].config.name.clone(),
            location: p.location.clone(),
            size: p.size,
            sha256,
        });
    }
    Ok(Lock::new(setup.inputs, locked))
}

/// Drop `what` on a thread of its own: a repository's worth of packages
/// and candidates is millions of small allocations, and freeing them
/// took a tenth of `ingot lock`; the caller goes on meanwhile (and a
/// command that ends first does not wait for it).
fn drop_elsewhere<T: Send + 'static>(what: T) {
    let _ = std::thread::Builder::new()
        .name("drop".into())
        .spawn(move || drop(what));
}

/// The repositories opened, and the packages the resolution chose
/// (repository index, package).
type Resolved = (Vec<Repo>, Vec<(usize, repo::Package)>);

/// What stays of a repository package once [`candidate_of`] took its
/// names, dependencies and files: where it is and how it is checked. A
/// quarter of a [`repo::Package`]'s room, and there are tens of
/// thousands, each first touched as it is read.
struct Kept {
    repo: usize,
    /// The first bytes of the checksum's text, looked at before the text
    /// itself when the file lists name a package by it.
    key: u64,
    epoch: u64,
    location: String,
    location_base: Option<String>,
    checksum: Checksum,
    size: u64,
}

fn resolve_packages(
    spec: &ImageSpec,
    setup: &Setup,
    client: &Client,
    progress: &dyn Reporter,
) -> Result<Resolved> {
    let mut repos = Vec::with_capacity(setup.configs.len());
    let mut pkgs: Vec<Kept> = Vec::new();
    let mut available: Vec<Candidate> = Vec::new();
    let mut local: Vec<Candidate> = setup
        .local
        .iter()
        .map(|h| Candidate::from_header(h, 0, "@commandline", 0))
        .collect();
    // Every path the request, a local package, an installed one or a
    // repository's names as a requirement: what the file lists may have
    // to answer. They are fetched early (see `parse`) when the request or
    // a local package already needs a path primary does not list.
    let mut wanted = Paths::default();
    for q in &spec.repositories.install {
        if q.text.starts_with('/') {
            wanted.note(q.text.split_whitespace().next().unwrap_or(&q.text));
        }
    }
    for c in &local {
        wanted.note_all(c);
    }
    for (ri, c) in setup.configs.iter().enumerate() {
        let r = client.open(c, progress)?;
        parse(
            &r,
            ri,
            client,
            progress,
            (&mut available, &mut pkgs, &mut wanted),
        )?;
        repos.push(r);
    }
    for (i, c) in local.iter_mut().enumerate() {
        c.id = pkgs.len() + i;
    }
    let installed: Vec<Candidate> = setup
        .installed
        .iter()
        .enumerate()
        .map(|(i, h)| Candidate::from_header(h, i, "@System", 0))
        .collect();
    for c in &installed {
        wanted.note_all(c);
    }
    let request = Request {
        install: spec
            .repositories
            .install
            .iter()
            .map(|q| q.text.clone())
            .collect(),
        local,
        weak_deps: setup.weak_deps,
        arch: spec.arch,
    };
    let lists = FileLists {
        repos: &repos,
        client,
        progress,
        pkgs: &pkgs,
    };
    progress.step("resolving dependencies");
    let answer = lists.resolve(&installed, &available, &request, &wanted.all)?;
    let chosen: Vec<(usize, repo::Package)> = answer
        .install
        .iter()
        .filter(|c| !c.local)
        .map(|c| package_of(&mut available[c.id], &mut pkgs[c.id]))
        .collect();
    drop_elsewhere((available, installed, pkgs));
    client.settle()?;
    Ok((repos, chosen))
}

/// Paths named as requirements ([`Paths::note`]).
#[derive(Default)]
struct Paths {
    all: foldhash::HashSet<String>,
    /// Whether one of them is a path primary does not list.
    outside: bool,
}

impl Paths {
    fn note(&mut self, path: &str) {
        if !self.all.contains(path) {
            self.outside |= !repo::in_primary(path);
            self.all.insert(path.to_string());
        }
    }

    /// The paths `c` requires, recommends or supplements.
    fn note_all(&mut self, c: &Candidate) {
        for cap in c.requires.iter().chain(&c.recommends).chain(&c.supplements) {
            if cap.name.starts_with('/') {
                self.note(&cap.name);
            }
        }
    }
}

/// Read `r`'s packages (the `ri`th repository) into `available` (as the
/// solver sees them) and `pkgs` (where each is and how it is checked),
/// noting the paths they require in `wanted`. Meanwhile its file lists
/// are fetched on a thread of their own as soon as a path that primary
/// does not list is wanted: the solver will most likely ask for them,
/// and then they are there. (Fetching only: reading them needs every
/// package's requirements.)
fn parse(
    r: &Repo,
    ri: usize,
    client: &Client,
    progress: &dyn Reporter,
    (available, pkgs, wanted): (&mut Vec<Candidate>, &mut Vec<Kept>, &mut Paths),
) -> Result<()> {
    let name: Arc<str> = r.config.name.as_str().into();
    let priority = r.config.priority;
    std::thread::scope(|s| {
        let mut asked = false;
        let mut ask = || {
            if let Some(record) = r.repomd.record("filelists")
                && !std::mem::replace(&mut asked, true)
            {
                s.spawn(move || client.prefetch_record(r, record, progress));
            }
        };
        if wanted.outside {
            ask();
        }
        r.each_package(client, progress, |mut p| {
            let c = candidate_of(&mut p, pkgs.len(), &name, priority);
            wanted.note_all(&c);
            if wanted.outside {
                ask();
            }
            available.push(c);
            pkgs.push(Kept {
                repo: ri,
                key: text_key(&p.checksum.hex),
                epoch: p.epoch,
                location: std::mem::take(&mut p.location),
                location_base: p.location_base.take(),
                checksum: std::mem::take(&mut p.checksum),
                size: p.size,
            });
            Ok(())
        })
    })?;
    Ok(())
}

/// The repositories' file lists, for the paths the solver finds in no
/// package's provides or primary's file lists.
struct FileLists<'a> {
    repos: &'a [Repo],
    client: &'a Client,
    progress: &'a dyn Reporter,
    /// What stays of the packages read, by id.
    pkgs: &'a [Kept],
}

impl FileLists<'_> {
    /// Resolve, with the file lists as the solver's hook. They are read
    /// once, for every path any package or the request names as a
    /// requirement: the solver asks path by path, and a repository's
    /// filelists is its largest file. A path found only inside a rich
    /// dependency is looked up on its own.
    fn resolve(
        &self,
        installed: &[Candidate],
        available: &[Candidate],
        request: &Request,
        wanted: &foldhash::HashSet<String>,
    ) -> Result<solver::Resolution> {
        let all: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let answer = std::thread::scope(|s| {
            // When a wanted path is listed by no package, the solver will
            // most likely ask for it: the file lists are read meanwhile,
            // on a core the solver's setup leaves idle. What the solver
            // asks first takes this answer (or reads them itself when
            // there is none).
            let mut early = Some(s.spawn(|| {
                let packages = available.iter().chain(installed).chain(&request.local);
                (!all_listed(wanted, packages)).then(|| self.owners(&all))
            }));
            let mut known: Option<HashMap<String, Vec<usize>>> = None;
            let mut more_files = |path: &str| -> std::result::Result<Vec<usize>, String> {
                if known.is_none() {
                    let read = match early.take().map(|h| h.join()) {
                        Some(Ok(Some(read))) => read,
                        Some(Err(panic)) => std::panic::resume_unwind(panic),
                        Some(Ok(None)) | None => self.owners(&all),
                    };
                    known = Some(read?);
                }
                if wanted.contains(path) {
                    return Ok(known
                        .as_ref()
                        .and_then(|k| k.get(path))
                        .cloned()
                        .unwrap_or_default());
                }
                Ok(self.owners(&[path])?.remove(path).unwrap_or_default())
            };
            solver::resolve(
                installed,
                available,
                request,
                &mut more_files,
                &Limits::default(),
            )
        })?;
        Ok(answer)
    }

    /// The packages whose file lists hold each of `paths`, from every
    /// repository that has filelists.
    fn owners(&self, paths: &[&str]) -> std::result::Result<HashMap<String, Vec<usize>>, String> {
        let mut found = Vec::new();
        for (ri, r) in self.repos.iter().enumerate() {
            if r.repomd.record("filelists").is_none() {
                continue;
            }
            let owners = r
                .file_owners(self.client, paths, self.progress)
                .map_err(|e| chain(&e))?;
            found.extend(owners.into_iter().map(|(path, pkgids)| (ri, path, pkgids)));
        }
        // The packages found (a few) by (repository, pkgid), in one walk
        // over all of them: a map of every package's pkgid cost more than
        // the walk. A pkgid listed twice is the last package's.
        let mut ids: foldhash::HashMap<(usize, &str), Option<usize>> = found
            .iter()
            .flat_map(|(ri, _, pkgids)| pkgids.iter().map(move |k| ((*ri, k.as_str()), None)))
            .collect();
        if !ids.is_empty() {
            // Most packages are passed over on their key alone, without
            // a look at their checksum's text (elsewhere in memory).
            let keys: foldhash::HashSet<u64> = ids.keys().map(|(_, id)| text_key(id)).collect();
            for (id, p) in self.pkgs.iter().enumerate() {
                if !keys.contains(&p.key) {
                    continue;
                }
                if let Some(slot) = ids.get_mut(&(p.repo, p.checksum.hex.as_str())) {
                    *slot = Some(id);
                }
            }
        }
        let mut out: HashMap<String, Vec<usize>> = HashMap::new();
        for (ri, path, pkgids) in &found {
            let known = pkgids
                .iter()
                .filter_map(|k| ids.get(&(*ri, k.as_str())).copied().flatten());
            out.entry(path.clone()).or_default().extend(known);
        }
        Ok(out)
    }
}

/// Whether every path of `wanted` is a provide or a listed file of one
/// of `packages`.
fn all_listed<'a>(
    wanted: &foldhash::HashSet<String>,
    packages: impl Iterator<Item = &'a Candidate>,
) -> bool {
    let mut left: foldhash::HashSet<&str> = wanted.iter().map(String::as_str).collect();
    for c in packages {
        if left.is_empty() {
            break;
        }
        let provided = c.provides.iter().map(|p| p.name.as_str());
        for path in provided.chain(c.files.iter().map(String::as_str)) {
            if path.starts_with('/') {
                left.remove(path);
            }
        }
    }
    left.is_empty()
}

/// A repository package as the solver sees it. The solver's copy takes
/// the package's names, dependencies and file paths (moved, not copied:
/// 20,000 packages, five strings each); what the download needs is
/// [`Kept`], and [`package_of`] makes a chosen one whole again.
fn candidate_of(p: &mut repo::Package, id: usize, repo: &Arc<str>, priority: i32) -> Candidate {
    let caps = std::mem::take::<Vec<Dep>>;
    p.suggests = Vec::new();
    p.enhances = Vec::new();
    let take = std::mem::take::<CompactString>;
    Candidate {
        id,
        name: take(&mut p.name),
        epoch: u32::try_from(p.epoch).unwrap_or(u32::MAX),
        version: take(&mut p.version),
        release: take(&mut p.release),
        arch: take(&mut p.arch),
        repo: repo.clone(),
        priority,
        provides: caps(&mut p.provides),
        requires: caps(&mut p.requires),
        conflicts: caps(&mut p.conflicts),
        obsoletes: caps(&mut p.obsoletes),
        recommends: caps(&mut p.recommends),
        supplements: caps(&mut p.supplements),
        files: std::mem::take(&mut p.files)
            .into_iter()
            .map(|f| f.path)
            .collect(),
    }
}

/// The first eight bytes of `text` as a number (zeros after a shorter
/// one): two texts with different keys differ.
fn text_key(text: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = text.len().min(8);
    b[..n].copy_from_slice(&text.as_bytes()[..n]);
    u64::from_le_bytes(b)
}

/// A chosen package, whole again for the lock and the download: its
/// names from the solver's copy, the rest from what was kept; with its
/// repository's index.
fn package_of(c: &mut Candidate, k: &mut Kept) -> (usize, repo::Package) {
    use std::mem::take;
    let p = repo::Package {
        name: take(&mut c.name),
        epoch: k.epoch,
        version: take(&mut c.version),
        release: take(&mut c.release),
        arch: take(&mut c.arch),
        location: take(&mut k.location),
        location_base: k.location_base.take(),
        checksum: take(&mut k.checksum),
        size: k.size,
        ..repo::Package::default()
    };
    (k.repo, p)
}

/// An error and its causes on one line (for the solver's file-list hook).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Download exactly the packages `lock` names, from their repositories'
/// base URLs (asked only when a package is not in the cache yet); and
/// what that fetched.
fn download_locked(
    lock: &Lock,
    configs: &[RepoConfig],
    client: &Client,
    progress: &dyn Reporter,
) -> Result<(Vec<(PathBuf, String)>, Fetch)> {
    let mut urls: HashMap<&str, Vec<String>> = HashMap::new();
    let mut keys = HashMap::new();
    let mut wanted = Vec::with_capacity(lock.packages.len());
    let mut fetch = Fetch {
        packages: lock.packages.len(),
        downloaded: 0,
        bytes: 0,
    };
    for p in &lock.packages {
        let Some(config) = configs.iter().find(|c| c.name == p.repo) else {
            return Err(BakeError::Usage(format!(
                "the lock file names repository `{}` for {}, which the image spec does not have",
                crate::spec::diag::escape(&p.repo),
                p.nevra()
            )));
        };
        let what = format!("package `{}`", p.nevra());
        let checksum = Checksum::new(ChecksumKind::Sha256, &p.sha256, &what)?;
        let cached = client.cache().get(&checksum, Some(p.size)).is_some();
        if !cached {
            fetch.downloaded += 1;
            fetch.bytes += p.size;
        }
        let bases = if cached || client.options().offline {
            Vec::new()
        } else {
            if !urls.contains_key(config.name.as_str()) {
                urls.insert(&config.name, client.base_urls(config)?);
            }
            urls[config.name.as_str()].clone()
        };
        if !keys.contains_key(config.name.as_str()) {
            keys.insert(config.name.as_str(), client.keyring(config)?);
        }
        wanted.push(Download {
            name: p.nevra(),
            repo: p.repo.clone(),
            urls: bases
                .iter()
                .map(|b| repo::fetch::join(b, &p.location))
                .collect(),
            checksum,
            size: p.size,
            keys: keys[config.name.as_str()].clone(),
        });
    }
    let paths = client.download(&wanted, progress)?;
    let named = paths
        .into_iter()
        .zip(&lock.packages)
        .map(|(f, p)| (f, format!("{} (from repository {})", p.nevra(), p.repo)))
        .collect();
    Ok((named, fetch))
}

/// What `ingot lock` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Resolve and write the lock when it is missing or stale.
    Update,
    /// Resolve again to the newest, whatever the lock says, and write it.
    Upgrade,
    /// Resolve to the newest and say what is newer; write nothing.
    Check,
}

/// How the lock file stood against the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Missing,
    Stale,
    Current,
}

/// What `ingot lock` found or did.
#[derive(Debug)]
pub enum LockOutcome {
    /// The lock file matched the spec (and `--upgrade` was not asked);
    /// with `--download`, its packages are in the cache.
    UpToDate {
        path: PathBuf,
        fetched: Option<Fetch>,
    },
    /// A lock file was written; with `--download`, its packages are in
    /// the cache.
    Written {
        update: LockUpdate,
        fetched: Option<Fetch>,
    },
    /// `--check`: the packages the repositories offer newer versions of
    /// (as changes from the lock), and how the lock stood.
    Checked {
        path: PathBuf,
        state: LockState,
        newer: Vec<Change>,
    },
}

/// `ingot lock --download`: the lock's packages, each in the cache and
/// checked (SHA-256, size, signature with gpgcheck).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// The lock's packages.
    pub packages: usize,
    /// How many of them were downloaded (the others were in the cache).
    pub downloaded: usize,
    /// The bytes downloaded.
    pub bytes: u64,
}

impl LockOutcome {
    /// Whether `--check` found the lock in need of an update.
    pub fn outdated(&self) -> bool {
        match self {
            LockOutcome::Checked { state, newer, .. } => {
                *state != LockState::Current || !newer.is_empty()
            }
            _ => false,
        }
    }
}

/// `ingot lock`'s work once the base is read and the image's own
/// packages are built; with `download`, the lock's packages are then
/// fetched into the cache.
pub(super) fn lock_from(
    spec: &ImageSpec,
    tree: &Tree,
    local: &[(PathBuf, String)],
    (repos, mode, download): (&RepoOptions, LockMode, bool),
    work: &Path,
    progress: &dyn Reporter,
) -> Result<LockOutcome> {
    let setup = setup(spec, tree, local, work)?;
    let state = match &setup.previous {
        None => LockState::Missing,
        Some(l) if l.matches(&setup.inputs) => LockState::Current,
        Some(_) => LockState::Stale,
    };
    let client = client(repos);
    let fetch = |lock: &Lock| -> Result<Option<Fetch>> {
        if !download {
            return Ok(None);
        }
        download_locked(lock, &setup.configs, &client, progress).map(|(_, f)| Some(f))
    };
    if mode == LockMode::Update && state == LockState::Current {
        let fetched = match &setup.previous {
            Some(lock) => fetch(lock)?,
            None => None,
        };
        return Ok(LockOutcome::UpToDate {
            path: setup.lock_path.clone(),
            fetched,
        });
    }
    let lock = resolve_new(spec, &setup, &client, progress)?;
    let update = LockUpdate {
        path: setup.lock_path.clone(),
        previous: setup.previous.clone(),
        lock,
    };
    if mode != LockMode::Check {
        // Downloaded before the lock is written: a failed download
        // leaves the lock file as it was.
        let fetched = fetch(&update.lock)?;
        update.write()?;
        return Ok(LockOutcome::Written { update, fetched });
    }
    let newer = update
        .changes()
        .into_iter()
        .filter(|c| matches!(c, Change::Changed { from, to } if to.cmp_evr(from).is_gt()))
        .collect();
    Ok(LockOutcome::Checked {
        path: setup.lock_path,
        state,
        newer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::deps::Capability;

    fn package(provides: &[&str], files: &[&str]) -> Candidate {
        Candidate {
            provides: provides
                .iter()
                .map(|n| Capability {
                    name: (*n).into(),
                    flags: 0,
                    evr: Default::default(),
                })
                .collect(),
            files: files.iter().map(|f| f.to_string()).collect(),
            ..Candidate::default()
        }
    }

    #[test]
    fn a_path_is_listed_by_a_provide_or_a_file_of_any_package() {
        let wanted: foldhash::HashSet<String> = ["/usr/bin/a", "/opt/b"]
            .map(String::from)
            .into_iter()
            .collect();
        let a = package(&["/usr/bin/a", "liba"], &[]);
        let b = package(&[], &["/opt/b", "/opt/c"]);
        let other = package(&["/opt/bb", "opt/b"], &["/opt/b/c"]);
        assert!(all_listed(&wanted, [&a, &b].into_iter()));
        assert!(all_listed(&wanted, [&other, &b, &a].into_iter()));
        assert!(!all_listed(&wanted, [&a, &other].into_iter()));
        assert!(!all_listed(&wanted, [&b].into_iter()));
        assert!(!all_listed(&wanted, std::iter::empty()));
        assert!(all_listed(&Default::default(), std::iter::empty()));
    }

    /// The paths a package needs (not those it provides or owns) are
    /// noted; whether one lies outside primary's lists
    /// (then the file lists are fetched early) follows createrepo's rule.
    #[test]
    fn paths_required_are_noted_and_those_primary_lacks_seen() {
        let cap = |name: &str| Capability {
            name: name.into(),
            flags: 0,
            evr: "".into(),
        };
        let mut p = package(&["/usr/share/provided"], &["/usr/share/owned"]);
        p.requires = vec![cap("/usr/bin/sh"), cap("libc.so.6"), cap("/etc/app.conf")];
        let mut paths = Paths::default();
        paths.note_all(&p);
        let mut all: Vec<&str> = paths.all.iter().map(String::as_str).collect();
        all.sort();
        assert_eq!(all, ["/etc/app.conf", "/usr/bin/sh"]);
        assert!(!paths.outside, "every path is one primary lists");
        p.recommends = vec![cap("/usr/lib/sendmail")];
        paths.note_all(&p);
        assert!(!paths.outside, "/usr/lib/sendmail is in primary");
        p.supplements = vec![cap("/usr/share/data/x.dat")];
        paths.note_all(&p);
        assert!(paths.outside);
        assert_eq!(paths.all.len(), 4);
    }
}
