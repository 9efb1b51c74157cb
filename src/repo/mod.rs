//! Packages from repositories: configuration, metadata, downloads, checks.
//!
//! In: [`RepoConfig`]s (from an image spec, or from a base's `.repo` files
//! through [`config::read_repos_dir`]), a cache folder and [`Options`].
//! Out: each repository's packages as [`Package`] records (name, EVR, arch,
//! location, checksum, sizes, the eight dependency lists with rpm's sense
//! flags, the files primary lists), owners of other paths from filelists on
//! request, and package files downloaded into the content-addressed
//! [`Cache`], each checked against the metadata's checksum and size and,
//! with gpgcheck, against the repository's keys.
//!
//! The index (`repomd.xml`) is what every other file is checked against,
//! so it is checked before it is parsed: with a metalink, its bytes must
//! have one of the hashes the metalink lists (whichever URL they came
//! from); with repo_gpgcheck, `repomd.xml.asc` beside it must be a
//! detached signature of those exact bytes by one of the repository's
//! `gpgkey`s (missing, bad, or by another key: an error naming the
//! repository and the URL). A URL whose index fails either check is
//! passed over for the next one. The index kept for `offline` is kept with
//! its signature, and the signature is checked again when it is read back.
//!
//! The steps, one file each:
//! - [`config`]: `.repo` files, `$releasever`/`$basearch` and
//!   `/etc/dnf/vars`, `$releasever` from a root folder.
//! - [`fetch`]: `file://`, `http://`, `https://` (HTTP through the
//!   [`fetch::Transport`] seam: `ureq`, rustls, no OpenSSL), retries with
//!   backoff, verified downloads, mirror lists.
//! - [`metalink`]: a metalink's mirrors and `repomd.xml` hashes
//!   (`quick-xml` events).
//! - [`cache`]: where files go, by checksum.
//! - [`meta`]: metadata files fetched once per client, read while they
//!   land in the cache.
//! - [`decode`]: gzip, xz, zstd, bzip2 or plain, by magic number; the
//!   [`Limits`] guard.
//! - [`gunzip`]: gzip members inflated without their CRC-32 (the file's
//!   checksum was checked).
//! - [`xml`]: `repomd.xml`, `primary.xml`, `filelists.xml` read as streams
//!   (`quick-xml`): memory holds one package at a time plus what the caller
//!   keeps, never the document.
//! - [`pieces`]: primary read by two threads, in pieces cut before a
//!   `<package`, with the one reader's answer (packages and errors).
//! - [`scan`]: primary's pieces and filelists in the plain form
//!   generators write, read by hand (quick-xml's answer or none: then
//!   quick-xml reads them).
//! - [`sqlite`]: `primary_db` (createrepo `--database`) with `rusqlite`.
//! - [`signature`]: header signatures and digests, and the detached
//!   signature of `repomd.xml` (`rpm` crate's `pgp` verifier).
//!
//! Why these crates: `quick-xml` is the maintained streaming XML reader
//! (pull events over a `BufRead`, no tree); `ureq` is a small blocking
//! HTTP client whose rustls backend needs no system OpenSSL, which the
//! static, rootless binary wants; SQLite and OpenPGP come from crates
//! ingot already uses for the rpm database and for signing.
//!
//! Limits: everything from a repository or a base is bounded ([`Limits`]
//! for metadata, [`config`]'s constants for `.repo` files); each error
//! names the limit. Never: writes outside the cache folder, sends a
//! request in `offline` mode, trusts a cached file it did not check (a
//! file enters the cache only after its checksum and size matched), or
//! reads the clock.
//!
//! The metadata record used for packages is `primary` (XML) when the
//! repository has one, else `primary_db`; [`Repo::packages_from_db`]
//! reads the SQLite form on purpose.

pub mod cache;
pub mod config;
pub mod decode;
mod error;
pub mod fetch;
pub mod gunzip;
pub mod meta;
pub mod metalink;
pub mod package;
pub mod pieces;
pub mod scan;
pub mod signature;
pub mod sqlite;
pub mod xml;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use cache::Cache;
pub use config::{KeySource, RepoConfig, Vars};
pub use decode::Limits;
pub use error::{RepoError, Result};
pub use fetch::{Options, Transport};
pub use meta::MetaFile;
pub use metalink::Metalink;
pub use package::{
    Checksum, ChecksumKind, Dep, DepKind, FileKind, Package, PackageFile, SENSE_PREREQ, in_primary,
};
pub use signature::Keyring;
pub use xml::{Record, Repomd};

use crate::progress::{Reporter, Task, Unit};
use fetch::{Fetcher, Http, join};

/// Bytes of a key file.
const MAX_KEY: u64 = 1 << 20;

/// Fetches metadata and packages through one cache.
pub struct Client {
    fetcher: Fetcher,
    cache: Cache,
    /// Metadata files fetched, each once ([`meta`]).
    records: meta::Records,
    /// Fresh metadata files being flushed into the cache.
    landing: meta::Landing,
}

impl Drop for Client {
    /// No landing outlives the client (its error, if any, was for
    /// [`Client::settle`] to report).
    fn drop(&mut self) {
        let _ = self.landing.settle();
    }
}

/// A repository whose index (`repomd.xml`) was read.
#[derive(Debug)]
pub struct Repo {
    pub config: RepoConfig,
    /// Base URLs: the one whose `repomd.xml` was read first, then the
    /// others (mirrors), for downloads to fall back on.
    pub urls: Vec<String>,
    pub repomd: Repomd,
    /// The keys packages must be signed with (gpgcheck on).
    pub keys: Option<Arc<Keyring>>,
}

/// One package to download: from [`Repo::download_of`], or made from a
/// lock entry (its location joined to each of [`Client::base_urls`] with
/// [`fetch::join`], its SHA-256, its size, and [`Client::keyring`]); a
/// package already in the cache needs no URL.
#[derive(Debug, Clone)]
pub struct Download {
    /// What messages call it (`name-evr.arch`).
    pub name: String,
    /// The repository's name (for messages).
    pub repo: String,
    /// Where to fetch it, tried in order.
    pub urls: Vec<String>,
    pub checksum: Checksum,
    pub size: u64,
    /// With gpgcheck: the keys its signature must verify with.
    pub keys: Option<Arc<Keyring>>,
}

impl Client {
    /// A client on the cache folder `cache` (created when first needed).
    pub fn new(cache: impl Into<PathBuf>, options: Options) -> Client {
        let transport = Box::new(Http::new(&options));
        Client::with_transport(cache, options, transport)
    }

    /// The same, with another way of opening HTTP(S) URLs.
    pub fn with_transport(
        cache: impl Into<PathBuf>,
        options: Options,
        transport: Box<dyn Transport>,
    ) -> Client {
        Client {
            fetcher: Fetcher { transport, options },
            cache: Cache::new(cache),
            records: meta::Records::default(),
            landing: meta::Landing::default(),
        }
    }

    /// Wait until every metadata file fetched so far is in the cache
    /// (flushed and renamed); the first error doing so.
    pub fn settle(&self) -> Result<()> {
        self.landing.settle()
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn options(&self) -> &Options {
        &self.fetcher.options
    }

    fn limits(&self) -> &Limits {
        &self.fetcher.options.limits
    }

    /// Read a repository's index: `repodata/repomd.xml` from the first of
    /// its base URLs (then mirror list and metalink URLs) that answers
    /// with an index that holds: the hashes its metalink lists, with
    /// repo_gpgcheck a detached signature by one of its keys. Its keys
    /// too when gpgcheck is on. Offline: the index last read, from the
    /// cache, its signature checked again with repo_gpgcheck.
    pub fn open(&self, config: &RepoConfig, reporter: &dyn Reporter) -> Result<Repo> {
        reporter.step(&format!("repository {}: index", config.name));
        let keys = self.keyring(config)?;
        let index_keys = match (config.repo_gpgcheck, &keys) {
            (false, _) => None,
            (true, Some(k)) => Some(k.clone()),
            (true, None) => Some(self.load_keys(config, "repo_gpgcheck")?),
        };
        let dir = self.cache.repo_dir(&config.source_key());
        if self.options().offline {
            let repomd = self.cached_index(config, &dir, index_keys.as_deref())?;
            return Ok(Repo {
                config: config.clone(),
                urls: config.baseurl.clone(),
                repomd,
                keys,
            });
        }
        let sources = self.sources(config)?;
        let urls = &sources.urls;
        let mut last = None;
        for (i, base) in urls.iter().enumerate() {
            match self.fetch_index(config, base, &sources, index_keys.as_deref()) {
                Ok(index) => {
                    self.keep_index(&dir, &index)?;
                    let mut order = vec![base.clone()];
                    order.extend(
                        urls.iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .map(|(_, u)| u.clone()),
                    );
                    return Ok(Repo {
                        config: config.clone(),
                        urls: order,
                        repomd: index.repomd,
                        keys,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        let last = last.expect("sources gives at least one URL");
        if urls.len() == 1 {
            return Err(last);
        }
        Err(RepoError::NoWorkingUrl {
            repo: config.name.clone(),
            tried: urls.len(),
            last: Box::new(last),
        })
    }

    /// `repodata/repomd.xml` under `base`, checked (metalink hashes, then
    /// the signature) before it is parsed.
    fn fetch_index(
        &self,
        config: &RepoConfig,
        base: &str,
        sources: &Sources,
        keys: Option<&Keyring>,
    ) -> Result<Index> {
        let url = join(base, "repodata/repomd.xml");
        let data = self.fetcher.get_small(&url, self.limits().max_index)?;
        if let Some((metalink_url, m)) = &sources.metalink
            && !m.matches(&data)
        {
            let mut h = ChecksumKind::Sha256.hasher();
            h.update(&data);
            return Err(RepoError::MetalinkHash {
                repo: config.name.clone(),
                url,
                metalink: metalink_url.clone(),
                sha256: h.finish(),
            });
        }
        let signature = match keys {
            Some(k) => Some(self.fetch_signature(config, &url, &data, k)?),
            None => None,
        };
        let what = format!("repository `{}`: repomd.xml (`{url}`)", config.name);
        let repomd = xml::parse_repomd(&data, &what, self.limits())?;
        Ok(Index {
            data,
            signature,
            repomd,
        })
    }

    /// `INDEX.asc` beside the index at `url`, checked over `data`.
    fn fetch_signature(
        &self,
        config: &RepoConfig,
        url: &str,
        data: &[u8],
        keys: &Keyring,
    ) -> Result<Vec<u8>> {
        let sig_url = format!("{url}.asc");
        let max = signature::MAX_DETACHED;
        let got = self.fetcher.get(&sig_url, |body| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(body, max + 1), &mut out)?;
            if out.len() as u64 > max {
                return Err(fetch::Consume::Fatal(RepoError::over(
                    format!("repository `{}`: `{sig_url}`", config.name),
                    "MAX_DETACHED",
                    max,
                    "bytes",
                )));
            }
            Ok(out)
        });
        let sig = match got {
            Ok(s) => s,
            Err(RepoError::NotFound { .. } | RepoError::NoSuchFile { .. }) => {
                return Err(RepoError::RepomdUnsigned {
                    repo: config.name.clone(),
                    url: sig_url,
                });
            }
            Err(e) => return Err(e),
        };
        check_signature(config, &sig_url, data, &sig, keys)?;
        Ok(sig)
    }

    /// Keep a checked index (and its signature) for `offline`: the
    /// signature first, so an index is never beside an older one's; a
    /// signature left from before is removed when there is none.
    fn keep_index(&self, dir: &std::path::Path, index: &Index) -> Result<()> {
        let sig = dir.join("repomd.xml.asc");
        match &index.signature {
            Some(s) => self.cache.write_file(&sig, s)?,
            None => match std::fs::remove_file(&sig) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(RepoError::Write { path: sig, source }),
            },
        }
        self.cache.write_file(&dir.join("repomd.xml"), &index.data)
    }

    /// Offline: the index kept by the last [`Client::open`], its signature
    /// checked again when `keys` are given.
    fn cached_index(
        &self,
        config: &RepoConfig,
        dir: &std::path::Path,
        keys: Option<&Keyring>,
    ) -> Result<Repomd> {
        let saved = dir.join("repomd.xml");
        let not_found = |e: &RepoError| {
            matches!(e, RepoError::Read { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound)
        };
        let data = match fetch::read_file_max(&saved, self.limits().max_index) {
            Ok(d) => d,
            Err(e) if not_found(&e) => {
                return Err(RepoError::OfflineNoMetadata {
                    repo: config.name.clone(),
                    cache: self.cache.root().to_path_buf(),
                });
            }
            Err(e) => return Err(e),
        };
        if let Some(keys) = keys {
            let path = dir.join("repomd.xml.asc");
            let shown = path.display().to_string();
            let sig = match fetch::read_file_max(&path, signature::MAX_DETACHED) {
                Ok(s) => s,
                Err(e) if not_found(&e) => {
                    return Err(RepoError::RepomdUnsigned {
                        repo: config.name.clone(),
                        url: shown,
                    });
                }
                Err(e) => return Err(e),
            };
            check_signature(config, &shown, &data, &sig, keys)?;
        }
        let what = format!("repository `{}`: repomd.xml", config.name);
        xml::parse_repomd(&data, &what, self.limits())
    }

    /// A repository's base URLs: `baseurl`, then its mirror list's URLs,
    /// then its metalink's (fetching the lists: call it only when
    /// something must be fetched).
    pub fn base_urls(&self, config: &RepoConfig) -> Result<Vec<String>> {
        Ok(self.sources(config)?.urls)
    }

    /// [`Client::base_urls`], and the metalink read for them. A list that
    /// cannot be fetched is skipped when there are other URLs; a metalink
    /// that does not parse is an error all the same.
    fn sources(&self, config: &RepoConfig) -> Result<Sources> {
        let mut urls = config.baseurl.clone();
        if let Some(m) = &config.mirrorlist {
            fetch::check_url(m)?;
            match self.fetcher.get_small(m, self.limits().max_index) {
                Ok(data) => {
                    let vars = Vars(config.vars.clone());
                    urls.extend(fetch::parse_mirrorlist(
                        &String::from_utf8_lossy(&data),
                        &vars,
                    ));
                }
                Err(e) if urls.is_empty() && config.metalink.is_none() => return Err(e),
                Err(_) => {}
            }
            if urls.is_empty() && config.metalink.is_none() {
                return Err(RepoError::Metadata {
                    what: format!("repository `{}`: mirror list `{m}`", config.name),
                    message: "lists no http://, https:// or file:// URL".into(),
                });
            }
        }
        let metalink = match &config.metalink {
            Some(m) => self.metalink_urls(config, m, &mut urls)?,
            None => None,
        };
        if urls.is_empty() {
            return Err(RepoError::NoSource {
                path: PathBuf::new(),
                repo: config.name.clone(),
            });
        }
        for u in &urls {
            fetch::check_url(u)?;
        }
        Ok(Sources { urls, metalink })
    }

    /// The metalink `m`'s mirrors added to `urls`; the metalink, unless it
    /// cannot be fetched and `urls` has others.
    fn metalink_urls(
        &self,
        config: &RepoConfig,
        m: &str,
        urls: &mut Vec<String>,
    ) -> Result<Option<(String, Metalink)>> {
        let got = match self.metalink(config, m) {
            Ok(got) => got,
            // What the metalink says is wrong: never passed over.
            Err(e @ (RepoError::Metadata { .. } | RepoError::Limit { .. })) => return Err(e),
            Err(e) if urls.is_empty() => return Err(e),
            Err(_) => return Ok(None),
        };
        for u in &got.urls {
            if !urls.contains(u) {
                urls.push(u.clone());
            }
        }
        if urls.is_empty() {
            return Err(RepoError::Metadata {
                what: format!("repository `{}`: metalink `{m}`", config.name),
                message: "lists no http://, https:// or file:// URL of repodata/repomd.xml".into(),
            });
        }
        Ok(Some((m.to_string(), got)))
    }

    /// Fetch and read the metalink at `url`.
    fn metalink(&self, config: &RepoConfig, url: &str) -> Result<Metalink> {
        fetch::check_url(url)?;
        let what = format!("repository `{}`: metalink `{url}`", config.name);
        let data = self
            .fetcher
            .get_small(url, self.limits().max_index)
            .map_err(|e| match e {
                RepoError::Limit {
                    limit, max, unit, ..
                } => RepoError::over(what.clone(), limit, max, unit),
                e => e,
            })?;
        metalink::parse(&data, &what, self.limits())
    }

    /// The repository's keys, when gpgcheck is on (read from files, or
    /// fetched and kept in the cache for `offline`).
    pub fn keyring(&self, config: &RepoConfig) -> Result<Option<Arc<Keyring>>> {
        if !config.gpgcheck {
            return Ok(None);
        }
        self.load_keys(config, "gpgcheck").map(Some)
    }

    /// The keys `gpgkey` names; `check` (what needs them) names the error
    /// when there are none.
    fn load_keys(&self, config: &RepoConfig, check: &'static str) -> Result<Arc<Keyring>> {
        if config.gpgkey.is_empty() {
            return Err(RepoError::NoKey {
                repo: config.name.clone(),
                check,
            });
        }
        let mut keys = Vec::new();
        for k in &config.gpgkey {
            match k {
                KeySource::File(p) => {
                    keys.push((p.display().to_string(), fetch::read_file_max(p, MAX_KEY)?));
                }
                KeySource::Url(u) => {
                    use sha2::Digest as _;
                    let name = hex::encode(sha2::Sha256::digest(u.as_bytes()));
                    let kept = self.cache.root().join("keys").join(format!("{name}.asc"));
                    let data = if self.options().offline {
                        fetch::read_file_max(&kept, MAX_KEY)?
                    } else {
                        let d = self.fetcher.get_small(u, MAX_KEY)?;
                        self.cache.write_file(&kept, &d)?;
                        d
                    };
                    keys.push((u.clone(), data));
                }
            }
        }
        Ok(Arc::new(Keyring::from_armored(&keys)?))
    }

    /// A metadata file of `repo`: from the cache, or fetched and checked
    /// when it is not there yet (and then put there: see [`meta`]). Each
    /// file is fetched once per client.
    pub fn record_file(
        &self,
        repo: &Repo,
        record: &Record,
        reporter: &dyn Reporter,
    ) -> Result<MetaFile> {
        self.records.get(&record.checksum, || {
            self.fetch_record(repo, record, reporter)
        })
    }

    /// Fetch a metadata file of `repo` ahead of [`Client::record_file`]
    /// (which then takes what came of it, file or error).
    pub fn prefetch_record(&self, repo: &Repo, record: &Record, reporter: &dyn Reporter) {
        self.records.prefetch(&record.checksum, || {
            self.fetch_record(repo, record, reporter)
        });
    }

    fn fetch_record(
        &self,
        repo: &Repo,
        record: &Record,
        reporter: &dyn Reporter,
    ) -> Result<MetaFile> {
        if let Some(p) = self.cache.get(&record.checksum, record.size) {
            return MetaFile::open(p);
        }
        let what = format!("repository `{}`: {}", repo.config.name, record.kind);
        if self.options().offline {
            return Err(RepoError::OfflineNoMetadata {
                repo: repo.config.name.clone(),
                cache: self.cache.root().to_path_buf(),
            });
        }
        let task = Task::start(
            reporter,
            &format!("{} {}", repo.config.name, record.kind),
            Unit::Bytes,
            record.size,
        );
        let mut last = None;
        for base in &repo.urls {
            let url = join(base, &record.location);
            match self.fetcher.get_checked(
                &self.cache,
                &url,
                &record.checksum,
                record.size,
                &what,
                &task,
            ) {
                Ok(tmp) => return self.landing.land(&self.cache, tmp, &record.checksum),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(RepoError::NoRecord {
            repo: repo.config.name.clone(),
            kind: record.kind.clone(),
        }))
    }

    /// Download `wanted` into the cache (what is there already is not
    /// fetched again), `jobs` at a time; with keys, check each package's
    /// signature. Returns each package's file, in the order asked. Offline:
    /// only the cache, and the error lists every package missing from it.
    pub fn download(&self, wanted: &[Download], reporter: &dyn Reporter) -> Result<Vec<PathBuf>> {
        let mut todo: Vec<usize> = Vec::new();
        let mut done: Vec<Option<PathBuf>> = vec![None; wanted.len()];
        for (i, d) in wanted.iter().enumerate() {
            match self.cache.get(&d.checksum, Some(d.size)) {
                Some(p) => done[i] = Some(p),
                None => todo.push(i),
            }
        }
        if self.options().offline && !todo.is_empty() {
            return Err(RepoError::NotCached {
                packages: todo.iter().map(|&i| wanted[i].name.clone()).collect(),
            });
        }
        let total: u64 = todo.iter().map(|&i| wanted[i].size).sum();
        if !todo.is_empty() {
            reporter.step(&format!("downloading {} package(s)", todo.len()));
            let task = Task::start(reporter, "downloading packages", Unit::Bytes, Some(total));
            let results = self.fetch_all(wanted, &todo, &task)?;
            task.finish();
            for (i, p) in todo.iter().zip(results) {
                done[*i] = Some(p);
            }
        }
        let paths: Vec<PathBuf> = done
            .into_iter()
            .map(|p| p.expect("every package done"))
            .collect();
        for (d, p) in wanted.iter().zip(&paths) {
            if let Some(keys) = &d.keys {
                keys.verify(p, &d.name, &d.repo)?;
            }
        }
        Ok(paths)
    }

    /// Fetch `todo` (indexes into `wanted`) on up to `jobs` threads into
    /// one [`cache::Batch`]; a failure stops the others from starting
    /// more. What was fetched before a failure stays in the cache.
    fn fetch_all(&self, wanted: &[Download], todo: &[usize], task: &Task) -> Result<Vec<PathBuf>> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let slots: Vec<std::sync::Mutex<Option<Result<PathBuf>>>> =
            todo.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let jobs = self.options().jobs.clamp(1, 64).min(todo.len());
        let batch = cache::Batch::new(&self.cache);
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else { return };
                        let d = &wanted[i];
                        let r = self
                            .fetch_one(d, task)
                            .and_then(|tmp| batch.add(tmp, &d.checksum, d.size));
                        if r.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        *slots[k].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        let committed = batch.finish();
        // Slots are taken in order and a failure only stops later ones
        // from starting, so every slot before the first failure is filled:
        // the first failure in the order asked is the one reported.
        let mut out = Vec::with_capacity(todo.len());
        for slot in slots {
            match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                Some(r) => out.push(r?),
                None => break,
            }
        }
        committed?;
        Ok(out)
    }

    fn fetch_one(&self, d: &Download, task: &Task) -> Result<tempfile::NamedTempFile> {
        task.note(&d.name);
        let mut last = None;
        for url in &d.urls {
            match self.fetcher.get_checked(
                &self.cache,
                url,
                &d.checksum,
                Some(d.size),
                &format!("package `{}`", d.name),
                task,
            ) {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RepoError::NoRecord {
            repo: d.repo.clone(),
            kind: format!("location of {}", d.name),
        }))
    }
}

impl Repo {
    /// The record of `kind`, or the error that names it missing.
    pub fn record(&self, kind: &str) -> Result<&Record> {
        self.repomd.record(kind).ok_or_else(|| RepoError::NoRecord {
            repo: self.config.name.clone(),
            kind: kind.to_string(),
        })
    }

    fn what(&self, kind: &str) -> String {
        format!("repository `{}`: {kind}", self.config.name)
    }

    /// Hand each package of primary to `each`, streaming (`primary.xml`
    /// when the repository has it, else `primary_db`). Returns how many.
    pub fn each_package(
        &self,
        client: &Client,
        reporter: &dyn Reporter,
        mut each: impl FnMut(Package) -> Result<()>,
    ) -> Result<u64> {
        if self.repomd.record("primary").is_none() && self.repomd.record("primary_db").is_some() {
            let all = self.packages_from_db(client, reporter)?;
            let n = all.len() as u64;
            for p in all {
                each(p)?;
            }
            return Ok(n);
        }
        let record = self.record("primary")?;
        let file = client.record_file(self, record, reporter)?;
        let task = Task::start(
            reporter,
            &format!("{} packages", self.config.name),
            Unit::Items,
            None,
        );
        let what = self.what("primary");
        // Read by two threads, in pieces ([`pieces`]); the packages come
        // in the order of the file.
        pieces::read_primary(
            &|| plain(&file),
            &what,
            client.limits(),
            pieces::PIECE,
            &mut |p| {
                task.advance(1);
                each(p)
            },
        )
    }

    /// Every package of primary.
    pub fn packages(&self, client: &Client, reporter: &dyn Reporter) -> Result<Vec<Package>> {
        let mut out = Vec::new();
        self.each_package(client, reporter, |p| {
            out.push(p);
            Ok(())
        })?;
        Ok(out)
    }

    /// Every package of `primary_db`, the SQLite form.
    pub fn packages_from_db(
        &self,
        client: &Client,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Package>> {
        let record = self.record("primary_db")?;
        let file = client.record_file(self, record, reporter)?;
        let db = client.cache.derived(&record.checksum, "sqlite");
        if !db.is_file() {
            let dir = db.parent().expect("derived files are in a folder");
            std::fs::create_dir_all(dir).map_err(|source| RepoError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
            let mut tmp = client.cache.temp()?;
            let mut input = decode::Guard::new(decoded(&file)?, client.limits());
            std::io::copy(&mut input, &mut tmp).map_err(|e| {
                decode::read_error(&self.what("primary_db"), &input.tripped, e.to_string())
            })?;
            tmp.persist(&db).map_err(|e| RepoError::Write {
                path: db.clone(),
                source: e.error,
            })?;
        }
        sqlite::read_primary_db(&db, &self.what("primary_db"), client.limits())
    }

    /// Which packages own each of `paths`, from `filelists` (for the paths
    /// primary does not list). Streams the file; keeps only the matches:
    /// path → the owners' checksums (primary's `pkgid`), in file order.
    pub fn file_owners(
        &self,
        client: &Client,
        paths: &[&str],
        reporter: &dyn Reporter,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let record = self.record("filelists")?;
        let file = client.record_file(self, record, reporter)?;
        // Hashed: asked for every path of the file (tens of thousands).
        let wanted: foldhash::HashSet<&str> = paths.iter().copied().collect();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let what = self.what("filelists");
        let is_wanted = |path: &str| wanted.contains(path);
        // In the plain form, read by hand; else (or on any error) by
        // quick-xml, whose answer it always is.
        if let Some((_, found)) =
            scan::filelists_matching(decoded(&file)?, &what, client.limits(), &is_wanted)
        {
            for (pkgid, path) in found {
                out.entry(path).or_default().push(pkgid);
            }
            return Ok(out);
        }
        xml::filelists_matching(
            decoded(&file)?,
            &what,
            client.limits(),
            is_wanted,
            |pkgid, path| {
                out.entry(path.to_string())
                    .or_default()
                    .push(pkgid.to_string());
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Where `pkg` can be fetched from: its `xml:base` if it has one, else
    /// each base URL.
    pub fn package_urls(&self, pkg: &Package) -> Vec<String> {
        match &pkg.location_base {
            Some(b) => vec![join(b, &pkg.location)],
            None => self.urls.iter().map(|b| join(b, &pkg.location)).collect(),
        }
    }

    /// The download of `pkg` from this repository.
    pub fn download_of(&self, pkg: &Package) -> Download {
        Download {
            name: pkg.nevra(),
            repo: self.config.name.clone(),
            urls: self.package_urls(pkg),
            checksum: pkg.checksum.clone(),
            size: pkg.size,
            keys: self.keys.clone(),
        }
    }
}

/// Where a repository's index comes from: its base URLs, and the
/// metalink (its URL and what it says) the index must agree with.
struct Sources {
    urls: Vec<String>,
    metalink: Option<(String, Metalink)>,
}

/// An index fetched and checked: its bytes, its signature (with
/// repo_gpgcheck), and what it says.
struct Index {
    data: Vec<u8>,
    signature: Option<Vec<u8>>,
    repomd: Repomd,
}

/// Check `sig` (from `url`, which names it in errors) as the detached
/// signature of the index `data` of `config`'s repository.
fn check_signature(
    config: &RepoConfig,
    url: &str,
    data: &[u8],
    sig: &[u8],
    keys: &Keyring,
) -> Result<()> {
    let (repo, url) = (config.name.clone(), url.to_string());
    keys.verify_detached(data, sig).map_err(|e| match e {
        signature::Detached::UnknownKey(cause) => RepoError::RepomdUnknownKey { repo, url, cause },
        signature::Detached::Unreadable(cause) | signature::Detached::Bad(cause) => {
            RepoError::RepomdBadSignature { repo, url, cause }
        }
    })
}

/// A cached metadata file, decompressed on a thread of its own as it is
/// read ([`decode::ReadAhead`]).
fn decoded(file: &MetaFile) -> Result<Box<dyn std::io::Read + Send>> {
    Ok(Box::new(decode::ReadAhead::new(plain(file)?)))
}

/// A cached metadata file, decompressed by its reader: for a reader that
/// is a thread of its own already (the cutter of [`pieces`]).
fn plain(file: &MetaFile) -> Result<Box<dyn std::io::Read + Send>> {
    decode::decompress(file.reader()).map_err(|source| RepoError::Read {
        path: file.path().to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Quiet;

    /// A repository index of revision `rev` (its one record is never read).
    fn repomd(rev: u32) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\
             <revision>{rev}</revision><data type=\"primary\"><checksum type=\"sha256\">{}</checksum>\
             <location href=\"repodata/primary.xml.gz\"/></data></repomd>\n",
            "0".repeat(64)
        )
    }

    fn sha256(text: &str) -> String {
        let mut h = ChecksumKind::Sha256.hasher();
        h.update(text.as_bytes());
        h.finish()
    }

    /// A metalink listing `hashes` (current) and `alternates` (sha256s),
    /// and `urls` (preference, URL of repomd.xml).
    fn metalink_text(hashes: &[String], alternates: &[String], urls: &[(u32, String)]) -> String {
        let hash = |h: &String| format!("<hash type=\"sha256\">{h}</hash>");
        let current: String = hashes.iter().map(hash).collect();
        let alternates: String = alternates
            .iter()
            .map(|h| {
                format!(
                    "<alternate><verification>{}</verification></alternate>",
                    hash(h)
                )
            })
            .collect();
        let urls: String = urls
            .iter()
            .map(|(p, u)| format!("<url protocol=\"file\" preference=\"{p}\">{u}</url>"))
            .collect();
        format!(
            "<metalink version=\"3.0\"><files><file name=\"repomd.xml\"><verification>{current}\
             </verification><alternates>{alternates}</alternates><resources>{urls}</resources>\
             </file></files></metalink>"
        )
    }

    #[test]
    fn a_metalink_orders_the_mirrors_and_pins_the_index() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let (old, new) = (repomd(1), repomd(2));
        for (dir, text) in [("a", &old), ("b", &new)] {
            std::fs::create_dir_all(root.join(dir).join("repodata")).unwrap();
            std::fs::write(root.join(dir).join("repodata/repomd.xml"), text).unwrap();
        }
        let url = |dir: &str| format!("file://{}/{dir}/repodata/repomd.xml", root.display());
        let base = |dir: &str| format!("file://{}/{dir}/", root.display());
        // `c` is preferred but gone; `a` serves an older index; `b` the
        // one the metalink names.
        let urls = [(200, url("c")), (100, url("a")), (50, url("b"))];
        let write = |text: String| std::fs::write(root.join("x86_64.xml"), text).unwrap();
        let repo_file = format!("[m]\nmetalink=file://{}/$basearch.xml\n", root.display());
        let config = config::parse_repo_file(
            std::path::Path::new("m.repo"),
            &repo_file,
            &Vars::new("1", "x86_64"),
            None,
            config::Defaults::default(),
        )
        .unwrap()
        .remove(0);
        let client = Client::new(root.join("cache"), Options::default());

        write(metalink_text(&[sha256(&new)], &[], &urls));
        let r = client.open(&config, &Quiet).unwrap();
        assert_eq!(r.repomd.revision.as_deref(), Some("2"));
        assert_eq!(r.urls, [base("b"), base("c"), base("a")]);
        assert_eq!(
            client.base_urls(&config).unwrap(),
            [base("c"), base("a"), base("b")]
        );

        // The older index is an alternate: `a`, preferred over `b`, does.
        write(metalink_text(&[sha256(&new)], &[sha256(&old)], &urls));
        let r = client.open(&config, &Quiet).unwrap();
        assert_eq!(r.repomd.revision.as_deref(), Some("1"));

        // No mirror serves an index with the hash: the last one says so.
        write(metalink_text(&["ab".repeat(32)], &[], &urls));
        let e = client.open(&config, &Quiet).unwrap_err();
        let RepoError::NoWorkingUrl { last, tried: 3, .. } = &e else {
            panic!("{e}")
        };
        match &**last {
            RepoError::MetalinkHash {
                url: u, sha256: h, ..
            } => {
                assert_eq!(
                    (u.as_str(), h.as_str()),
                    (url("b").as_str(), sha256(&new).as_str())
                );
            }
            other => panic!("{other}"),
        }

        // A metalink that lists none of what it should is refused.
        write(metalink_text(&[], &[], &urls));
        let e = client.open(&config, &Quiet).unwrap_err().to_string();
        assert!(e.contains("no sha256 or sha512"), "{e}");
        write(metalink_text(&[sha256(&new)], &[], &[]));
        let e = client.open(&config, &Quiet).unwrap_err().to_string();
        assert!(
            e.contains("lists no http://, https:// or file:// URL"),
            "{e}"
        );
    }

    #[test]
    fn repo_gpgcheck_without_a_key_says_so() {
        let t = tempfile::tempdir().unwrap();
        let mut config = RepoConfig::new("r", "file:///nowhere/");
        config.repo_gpgcheck = true;
        let e = Client::new(t.path(), Options::default())
            .open(&config, &Quiet)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "repository `r`: repo_gpgcheck is on but no gpgkey is given"
        );
    }
}
