//! Workload (d) of `cargo xtask bench`: resolving a request against a
//! generated rpm-md repository of the size of Amazon Linux 2023's
//! (20,000 packages at full size), served over loopback HTTP; `ingot lock`
//! against `dnf install --assumeno`, each with an empty cache.
//!
//! The repository is metadata only (`primary`, `filelists`, `other`,
//! `repomd.xml`, written here from a fixed seed): resolution needs nothing
//! else. Its packages come in projects of a few subpackages (the program,
//! its `-libs` with a soname `libX.so.N()(64bit)`, `-devel`, a noarch
//! `-doc`), some in two versions whose sonames differ; a few core packages
//! with the real names everything needs (`glibc`, `bash` for `/bin/sh`,
//! `zlib`, ...); requirements on sonames, names, versioned names and
//! files (in `primary` for `bin/` paths, only in `filelists` for a few
//! others) pointing at earlier projects, mostly near ones, so dependency
//! chains are tens of packages deep. The request is the last programs,
//! as many as make a closure of a few hundred packages.
//!
//! (d-app) is the request a user's first image makes: the first of those
//! programs, as many as bring about twenty packages beyond the core, onto
//! a base holding Amazon Linux 2023's installed set (the real database of
//! the shared fixtures, 103 packages, and its release files), resolved
//! and fetched. The bench's other base is an empty database.
//!
//! The server is written here (a thread per connection, `GET` of files
//! under the repository, `Connection: close`): a few lines, and the bench
//! then needs no other program.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::bench::{Results, Rng, measure, sh};

/// The workload's title and its contenders.
pub const D: &str = "(d) repository of 20,000 packages: resolve a request";
pub const INGOT: &str = "ingot lock";
pub const DNF: &str = "dnf install --assumeno";
/// The same request resolved and its packages downloaded.
pub const D_FETCH: &str = "(d-fetch) repository of 20,000 packages: resolve and fetch a request";
/// (d-fetch)'s floor: the locked packages fetched from the same server
/// and thrown away, so no fetcher that downloads them can take less.
pub const FETCH_FLOOR: &str =
    "machine: fetch the same packages from the same server, nothing kept (curl, 8 at a time)";
/// The floor of a fetcher that keeps what it fetches.
pub const FETCH_KEPT: &str =
    "machine: fetch the same packages from the same server into files (curl, 8 at a time)";
pub const INGOT_FETCH: &str = "ingot lock --download";
/// An application's request onto the stock installed set.
pub const D_APP: &str = "(d-app) repository of 20,000 packages: an application's request on \
     Amazon Linux 2023's installed set, resolved and fetched";
pub const DNF_FETCH: &str = "dnf install --downloadonly";

/// The core packages: name, soname (of `-libs`-like ones), files.
const CORE: &[(&str, &str, &[&str])] = &[
    ("filesystem", "", &["/etc/fstab"]),
    ("setup", "", &["/etc/passwd", "/etc/group"]),
    ("glibc", "libc.so.6", &["/usr/sbin/ldconfig"]),
    ("bash", "", &["/usr/bin/bash", "/usr/bin/sh"]),
    ("ncurses-libs", "libtinfo.so.6", &[]),
    ("zlib", "libz.so.1", &[]),
    ("openssl-libs", "libssl.so.3", &[]),
    ("libgcc", "libgcc_s.so.1", &[]),
    ("libstdc++", "libstdc++.so.6", &[]),
    ("xz-libs", "liblzma.so.5", &[]),
    ("libzstd", "libzstd.so.1", &[]),
    ("pcre2", "libpcre2-8.so.0", &[]),
    ("libselinux", "libselinux.so.1", &[]),
    ("systemd-libs", "libsystemd.so.0", &[]),
    ("coreutils", "", &["/usr/bin/ls", "/usr/bin/cp"]),
    ("libcap", "libcap.so.2", &[]),
    ("krb5-libs", "libkrb5.so.3", &["/etc/krb5.conf"]),
    ("libcurl", "libcurl.so.4", &[]),
    ("python3-libs", "libpython3.9.so.1.0", &[]),
    ("python3", "", &["/usr/bin/python3"]),
];

const SYLLABLES: &[&str] = &[
    "ac", "bel", "cor", "dex", "en", "fal", "gor", "hen", "ix", "jun", "kal", "lum", "mor", "nex",
    "ol", "pra", "qui", "ros", "sol", "tor", "um", "vex", "wen", "xan", "yor", "zel", "at", "bri",
];

/// One package of the repository.
struct Pkg {
    name: String,
    epoch: u32,
    version: String,
    release: String,
    arch: &'static str,
    /// (name, flags, evr) of each provide.
    provides: Vec<(String, &'static str, String)>,
    /// (name, flags, evr) of each requirement.
    requires: Vec<(String, &'static str, String)>,
    files: Vec<String>,
}

impl Pkg {
    fn new(name: &str, epoch: u32, version: &str, arch: &'static str) -> Pkg {
        let release = "1.amzn2023".to_string();
        let evr = format!("{epoch}:{version}-{release}");
        let mut provides = vec![(name.to_string(), "EQ", evr.clone())];
        if arch != "noarch" {
            provides.push((format!("{name}(x86-64)"), "EQ", evr));
        }
        Pkg {
            name: name.into(),
            epoch,
            version: version.into(),
            release,
            arch,
            provides,
            requires: Vec::new(),
            files: Vec::new(),
        }
    }

    fn evr(&self) -> String {
        format!("{}:{}-{}", self.epoch, self.version, self.release)
    }

    fn nevra(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }

    fn req(&mut self, name: impl Into<String>) {
        self.requires.push((name.into(), "", String::new()));
    }
}

/// One project of the generated repository: its newest version's
/// packages' names, and what its dependants require of it.
struct Project {
    stem: String,
    /// The soname of its `-libs`, when it has one.
    soname: Option<String>,
    /// Its program's path, when it has one.
    program: Option<String>,
}

/// The packages beyond the core ones (which a stock base has) that the
/// application request's closure reaches at least: a program with its
/// libraries and theirs, as `nginx` or `python3-requests` bring onto a
/// stock Amazon Linux 2023.
const APP_CLOSURE: usize = 20;

/// Runs per round of the short commands, (d)'s and (d-app)'s: each
/// takes a tenth of a second or less, and one slow run among three
/// swings a median, so they get more samples than the rest.
pub const SHORT_RUNS: usize = 3;

/// What [`generate`] makes: the packages, the request, the indexes of
/// the packages its closure holds, and the application request (the
/// request's first programs).
type Generated = (Vec<Pkg>, Vec<String>, BTreeSet<usize>, Vec<String>);

/// The generated packages (`count` of them, about), the requests, and
/// the indexes of the packages the larger one's closure holds.
fn generate(count: usize, seed: u64) -> Generated {
    let mut rng = Rng(seed);
    let mut pkgs = Vec::new();
    let mut projects: Vec<Project> = Vec::new();
    for (name, soname, files) in CORE {
        let mut p = Pkg::new(name, 0, "2.34", "x86_64");
        if !soname.is_empty() {
            p.provides
                .push((format!("{soname}()(64bit)"), "", String::new()));
            p.files.push(format!("/usr/lib64/{soname}"));
        }
        if *name == "bash" {
            p.provides.push(("/bin/sh".into(), "", String::new()));
        }
        if *name != "glibc" && *name != "filesystem" {
            p.req("libc.so.6()(64bit)");
        }
        p.files.extend(files.iter().map(|f| f.to_string()));
        pkgs.push(p);
    }
    let mut used = HashSet::new();
    while pkgs.len() < count {
        let stem = loop {
            let n = 2 + (rng.next() % 2) as usize;
            let s: String = (0..n)
                .map(|_| SYLLABLES[rng.next() as usize % SYLLABLES.len()])
                .collect();
            if used.insert(s.clone()) {
                break s;
            }
        };
        let deps = pick_deps(&mut rng, projects.len());
        let project = Project {
            soname: (!rng.next().is_multiple_of(3))
                .then(|| format!("lib{stem}.so.{}", 1 + rng.next() % 4)),
            program: (!rng.next().is_multiple_of(4)).then(|| format!("/usr/bin/{stem}")),
            stem,
        };
        let versions = if rng.next() % 10 < 3 { 2 } else { 1 };
        for v in 0..versions {
            let older = v + 1 < versions;
            let version = format!("{}.{}.{}", 1 + v, rng.next() % 20, rng.next() % 10);
            project_packages(&mut pkgs, &project, &projects, &deps, &version, older);
        }
        projects.push(project);
    }
    let (request, closure, app) = pick_request(&pkgs, &projects, count);
    (pkgs, request, closure, app)
}

/// The earlier projects a new one (the `n`th) needs: mostly near ones.
fn pick_deps(rng: &mut Rng, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let m = [0, 0, 1, 1, 1, 2, 2, 3][rng.next() as usize % 8];
    let mut deps: Vec<usize> = (0..m)
        .map(|_| n - 1 - (rng.next() as usize % n.min(300)))
        .collect();
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// One version of a project's packages, appended to `pkgs`. An `older`
/// version's library has the soname before the current one.
fn project_packages(
    pkgs: &mut Vec<Pkg>,
    p: &Project,
    all: &[Project],
    deps: &[usize],
    version: &str,
    older: bool,
) {
    let stem = &p.stem;
    let core = |i: usize| format!("{}()(64bit)", CORE[i].1);
    let mut libs = None;
    if let Some(soname) = &p.soname {
        let soname = if older {
            format!("{soname}.0")
        } else {
            soname.clone()
        };
        let mut l = Pkg::new(&format!("{stem}-libs"), 0, version, "x86_64");
        l.provides
            .push((format!("{soname}()(64bit)"), "", String::new()));
        l.files.push(format!("/usr/lib64/{soname}"));
        l.req(core(2));
        for &d in deps {
            if let Some(s) = &all[d].soname {
                l.req(format!("{s}()(64bit)"));
            }
        }
        libs = Some((l.name.clone(), l.evr()));
        pkgs.push(l);
    }
    if let Some(program) = &p.program {
        let mut a = Pkg::new(stem, 0, version, "x86_64");
        a.files.push(program.clone());
        a.files.push(format!("/etc/{stem}/{stem}.conf"));
        a.files.push(format!("/usr/share/man/man1/{stem}.1.gz"));
        a.req(core(2));
        if let Some((name, evr)) = &libs {
            a.requires.push((name.clone(), "EQ", evr.clone()));
        }
        for (k, &d) in deps.iter().enumerate() {
            match (&all[d].program, &all[d].soname) {
                (Some(prog), _) if k == 0 => a.req(prog.clone()),
                (_, Some(s)) => a.req(format!("{s}()(64bit)")),
                _ => a.req(format!("{}-doc", all[d].stem)),
            }
        }
        if stem.len().is_multiple_of(5) {
            a.req("/bin/sh");
        }
        if stem.len().is_multiple_of(7) && deps.last().is_some_and(|&d| all[d].program.is_some()) {
            // A file only the file lists name.
            let d = &all[deps[deps.len() - 1]].stem;
            a.req(format!("/usr/share/{d}/data/{d}.dat"));
        }
        pkgs.push(a);
    }
    if let Some((name, evr)) = &libs {
        let mut d = Pkg::new(&format!("{stem}-devel"), 0, version, "x86_64");
        d.provides
            .push((format!("pkgconfig({stem})"), "EQ", version.to_string()));
        d.requires.push((name.clone(), "EQ", evr.clone()));
        d.files.push(format!("/usr/include/{stem}/{stem}.h"));
        d.files.push(format!("/usr/lib64/pkgconfig/{stem}.pc"));
        pkgs.push(d);
    }
    let mut doc = Pkg::new(&format!("{stem}-doc"), 0, version, "noarch");
    doc.files.push(format!("/usr/share/doc/{stem}/README"));
    doc.files.push(format!("/usr/share/{stem}/data/{stem}.dat"));
    doc.files
        .push(format!("/usr/share/{stem}/data/{stem}-{version}.txt"));
    if p.program.is_none() {
        doc.req(CORE[CORE.len() - 1].0);
    }
    pkgs.push(doc);
}

/// The names of the last programs, as many as make a closure of about
/// `count / 60` packages (a few hundred at full size), that closure
/// (each requirement answered by its newest provider), and the first of
/// them that reach [`APP_CLOSURE`] packages beyond the core.
fn pick_request(
    pkgs: &[Pkg],
    projects: &[Project],
    count: usize,
) -> (Vec<String>, BTreeSet<usize>, Vec<String>) {
    // The newest package providing each capability or file.
    let mut who: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in pkgs.iter().enumerate() {
        for (cap, _, _) in &p.provides {
            who.insert(cap, i);
        }
        for f in &p.files {
            who.insert(f, i);
            if let Some(dir) = f.rsplit_once('/').map(|(d, _)| d) {
                who.entry(dir).or_insert(i);
            }
        }
    }
    let mut closure = BTreeSet::new();
    let mut request = Vec::new();
    let mut app = None;
    for p in projects.iter().rev().filter(|p| p.program.is_some()) {
        if closure.len() >= count / 60 {
            break;
        }
        let mut todo = vec![who[p.stem.as_str()]];
        while let Some(i) = todo.pop() {
            if closure.insert(i) {
                todo.extend(
                    pkgs[i]
                        .requires
                        .iter()
                        .filter_map(|r| who.get(r.0.as_str())),
                );
            }
        }
        request.push(p.stem.clone());
        if app.is_none() && closure.iter().filter(|&&i| i >= CORE.len()).count() >= APP_CLOSURE {
            app = Some(request.clone());
        }
    }
    let app = app.unwrap_or_else(|| request.clone());
    (request, closure, app)
}

/// `<rpm:entry .../>` lines of a provides or requires list.
fn entries(xml: &mut String, tag: &str, list: &[(String, &'static str, String)]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(xml, "    <rpm:{tag}>");
    for (name, flags, evr) in list {
        let _ = write!(xml, "      <rpm:entry name=\"{name}\"");
        if !flags.is_empty() {
            let (e, vr) = evr.split_once(':').unwrap_or(("0", evr));
            let (v, r) = match vr.rsplit_once('-') {
                Some((v, r)) => (v, Some(r)),
                None => (vr, None),
            };
            let _ = write!(xml, " flags=\"{flags}\" epoch=\"{e}\" ver=\"{v}\"");
            if let Some(r) = r {
                let _ = write!(xml, " rel=\"{r}\"");
            }
        }
        let _ = writeln!(xml, "/>");
    }
    let _ = writeln!(xml, "    </rpm:{tag}>");
}

/// The paths createrepo_c puts in `primary`.
fn in_primary(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/")
}

/// Each package's file size: drawn from the seed, 20 KB to 2 MB.
fn sizes(pkgs: &[Pkg], seed: u64) -> Vec<u64> {
    let mut rng = Rng(seed);
    pkgs.iter()
        .map(|_| 20_000 + rng.next() % 2_000_000)
        .collect()
}

/// A package file: its SHA-256 and size.
type File = (String, u64);

/// The package files of the packages `closure` names, under
/// `dir/Packages`: real RPMs built by ingot's library (the package's
/// name, EVR, arch, provides, requires and files, each file's content
/// pseudo-random, about `sizes[i]` bytes in all, uncompressed), so both
/// contenders fetch what the metadata promises. The other packages are
/// metadata only: neither contender fetches them.
fn write_packages(
    dir: &Path,
    pkgs: &[Pkg],
    closure: &BTreeSet<usize>,
    sizes: &[u64],
    seed: u64,
) -> Result<BTreeMap<usize, File>, String> {
    let out = dir.join("Packages");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rng = Rng(seed ^ 0x5eed);
    let mut made = BTreeMap::new();
    for &i in closure {
        let p = &pkgs[i];
        let src = work.path().join(i.to_string());
        std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
        let spec = package_spec(p, &src, sizes[i], &mut rng)?;
        let spec_path = src.join("package.toml");
        std::fs::write(&spec_path, spec).map_err(|e| e.to_string())?;
        let spec = ingot::spec::load_package(&spec_path).map_err(|e| e.to_string())?;
        let built = ingot::rpm::build_package(
            &spec,
            &ingot::rpm::BuildOptions {
                compression: ingot::rpm::Compression::None,
                source_date_epoch: Some(1_767_225_600),
                sign_key: None,
            },
        )
        .map_err(|e| format!("{}: {e}", p.nevra()))?;
        let file = out.join(format!("{}.rpm", p.nevra()));
        std::fs::write(&file, &built.bytes).map_err(|e| e.to_string())?;
        let sum = hex::encode(Sha256::digest(&built.bytes));
        made.insert(i, (sum, built.bytes.len() as u64));
        std::fs::remove_dir_all(&src).map_err(|e| e.to_string())?;
    }
    Ok(made)
}

/// The package spec of `p`, its files' contents written under `src`.
fn package_spec(p: &Pkg, src: &Path, size: u64, rng: &mut Rng) -> Result<String, String> {
    let dep = |(name, flags, evr): &(String, &'static str, String)| match *flags {
        "" => format!("{name:?}"),
        _ => format!("\"{name} = {evr}\""),
    };
    let own = [p.name.clone(), format!("{}(x86-64)", p.name)];
    let provides: Vec<String> = p
        .provides
        .iter()
        .filter(|d| !own.contains(&d.0))
        .map(dep)
        .collect();
    let requires: Vec<String> = p.requires.iter().map(dep).collect();
    let mut spec = format!(
        "[package]\nname = {:?}\nversion = {:?}\nrelease = {:?}\narch = {:?}\n\
         summary = \"The {} package\"\ndescription = \"Generated for the benchmark.\"\nlicense = \"MIT\"\n\n\
         [dependencies]\nauto = false\nprovides = [{}]\nrequires = [{}]\n",
        p.name,
        p.version,
        p.release,
        p.arch,
        p.name,
        provides.join(", "),
        requires.join(", ")
    );
    let each = size / p.files.len().max(1) as u64;
    for (k, f) in p.files.iter().enumerate() {
        let mut bytes = vec![0u8; each as usize];
        rng.fill(&mut bytes);
        std::fs::write(src.join(k.to_string()), &bytes).map_err(|e| e.to_string())?;
        let _ = write!(spec, "\n[[files]]\nsrc = \"{k}\"\ndest = {f:?}\n");
    }
    Ok(spec)
}

/// The three metadata documents of `pkgs`: the packages `files` holds
/// by their file's checksum and size, the others by made-up ones.
fn metadata(
    pkgs: &[Pkg],
    sizes: &[u64],
    files: &BTreeMap<usize, File>,
) -> [(&'static str, String); 3] {
    let n = pkgs.len();
    let mut primary = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{n}\">\n"
    );
    let mut filelists = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{n}\">\n"
    );
    let mut other = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{n}\">\n"
    );
    for (i, p) in pkgs.iter().enumerate() {
        let nevra = p.nevra();
        let (pkgid, size) = match files.get(&i) {
            Some((sum, size)) => (sum.clone(), *size),
            None => (hex::encode(Sha256::digest(nevra.as_bytes())), sizes[i]),
        };
        let (name, arch, e, v, r) = (&p.name, p.arch, p.epoch, &p.version, &p.release);
        let version = format!("<version epoch=\"{e}\" ver=\"{v}\" rel=\"{r}\"/>");
        let _ = writeln!(
            primary,
            "<package type=\"rpm\">\n  <name>{name}</name>\n  <arch>{arch}</arch>\n  {version}\n  \
             <checksum type=\"sha256\" pkgid=\"YES\">{pkgid}</checksum>\n  <summary>The {name} package</summary>\n  \
             <description>Generated for the benchmark.</description>\n  <packager>Amazon Linux</packager>\n  <url>https://example.invalid/{name}</url>\n  \
             <time file=\"1767225600\" build=\"1767225600\"/>\n  <size package=\"{size}\" installed=\"{}\" archive=\"{}\"/>\n  \
             <location href=\"Packages/{nevra}.rpm\"/>\n  <format>\n    <rpm:license>MIT</rpm:license>\n    <rpm:vendor>Amazon Linux</rpm:vendor>\n    \
             <rpm:group>Unspecified</rpm:group>\n    <rpm:buildhost>bench</rpm:buildhost>\n    <rpm:sourcerpm>{name}-{v}-{r}.src.rpm</rpm:sourcerpm>\n    \
             <rpm:header-range start=\"4504\" end=\"{}\"/>",
            size * 3,
            size * 3 + 512,
            4504 + 2000 + size % 8000
        );
        entries(&mut primary, "provides", &p.provides);
        entries(&mut primary, "requires", &p.requires);
        for f in p.files.iter().filter(|f| in_primary(f)) {
            let _ = writeln!(primary, "    <file>{f}</file>");
        }
        let _ = writeln!(primary, "  </format>\n</package>");
        let _ = writeln!(
            filelists,
            "<package pkgid=\"{pkgid}\" name=\"{name}\" arch=\"{arch}\">\n  {version}"
        );
        for f in &p.files {
            let _ = writeln!(filelists, "  <file>{f}</file>");
        }
        let _ = writeln!(filelists, "</package>");
        let _ = writeln!(
            other,
            "<package pkgid=\"{pkgid}\" name=\"{name}\" arch=\"{arch}\">\n  {version}\n  \
             <changelog author=\"Bench &lt;bench@example.invalid&gt; - {v}-{r}\" date=\"1767225600\">- Update to {v}</changelog>\n</package>"
        );
    }
    primary.push_str("</metadata>\n");
    filelists.push_str("</filelists>\n");
    other.push_str("</otherdata>\n");
    [
        ("primary", primary),
        ("filelists", filelists),
        ("other", other),
    ]
}

/// `repodata/` of `pkgs` under `dir`: each document gzipped, then
/// `repomd.xml` with their checksums.
fn write_repodata(
    dir: &Path,
    pkgs: &[Pkg],
    files: &BTreeMap<usize, File>,
    seed: u64,
) -> Result<(), String> {
    let repodata = dir.join("repodata");
    let _ = std::fs::remove_dir_all(&repodata);
    std::fs::create_dir_all(&repodata).map_err(|e| e.to_string())?;
    let mut repomd = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>1767225600</revision>\n",
    );
    for (kind, xml) in metadata(pkgs, &sizes(pkgs, seed), files) {
        let plain = repodata.join(format!("{kind}.xml"));
        std::fs::write(&plain, &xml).map_err(|e| e.to_string())?;
        let st = Command::new("gzip")
            .args(["-n", "-6", "-f"])
            .arg(&plain)
            .status()
            .map_err(|e| format!("gzip: {e}"))?;
        if !st.success() {
            return Err("gzip failed".into());
        }
        let gz = std::fs::read(plain.with_extension("xml.gz")).map_err(|e| e.to_string())?;
        let sum = hex::encode(Sha256::digest(&gz));
        let open = hex::encode(Sha256::digest(xml.as_bytes()));
        let href = format!("repodata/{sum}-{kind}.xml.gz");
        std::fs::rename(plain.with_extension("xml.gz"), dir.join(&href))
            .map_err(|e| e.to_string())?;
        let _ = writeln!(
            repomd,
            "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{sum}</checksum>\n    <open-checksum type=\"sha256\">{open}</open-checksum>\n    \
             <location href=\"{href}\"/>\n    <timestamp>1767225600</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>",
            gz.len(),
            xml.len()
        );
    }
    repomd.push_str("</repomd>\n");
    std::fs::write(repodata.join("repomd.xml"), repomd).map_err(|e| e.to_string())
}

/// Workload (d)'s inputs under `bench/repo-d`: the repository, a base
/// folder with an empty rpm database and one with Amazon Linux 2023's,
/// the HOME whose `.rpmmacros` points Debian's rpm (and so dnf) at
/// `/var/lib/rpm`, and the requests.
pub struct RepoWork {
    dir: PathBuf,
    repo: PathBuf,
    base: PathBuf,
    /// (d-app)'s base: the stock installed set.
    stock: PathBuf,
    home: PathBuf,
    request: Vec<String>,
    /// (d-app)'s request.
    app: Vec<String>,
    /// Folders made for runs so far (see [`RepoWork::fresh`]).
    runs: std::cell::Cell<usize>,
}

impl Drop for RepoWork {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.join("runs"));
    }
}

/// Generate (d)'s inputs with 20,000 / `scale` packages (kept when made
/// with the same parameters); `shared` is the shared fixtures folder.
pub fn prepare(bench: &Path, shared: &Path, scale: usize) -> Result<RepoWork, String> {
    let dir = bench.join("repo-d");
    let repo = dir.join("repo");
    let count = 20_000 / scale;
    let seed = 5;
    let stamp = format!("repo 5 {count} {seed}");
    let request_file = dir.join("request.txt");
    let app_file = dir.join("request-app.txt");
    // Left by a bench that was stopped.
    let _ = std::fs::remove_dir_all(dir.join("runs"));
    if !crate::bench::is_made(&dir, &stamp) {
        let _ = std::fs::remove_dir_all(&dir);
        let (pkgs, request, closure, app) = generate(count, seed);
        let files = write_packages(&repo, &pkgs, &closure, &sizes(&pkgs, seed), seed)?;
        write_repodata(&repo, &pkgs, &files, seed)?;
        std::fs::write(&request_file, request.join("\n")).map_err(|e| e.to_string())?;
        std::fs::write(&app_file, app.join("\n")).map_err(|e| e.to_string())?;
        stock_base(&dir.join("base-al2023"), shared)?;
        let base = dir.join("base");
        let st = Command::new("rpm")
            .arg("--root")
            .arg(&base)
            .args(["--dbpath", "/var/lib/rpm", "--initdb"])
            .status()
            .map_err(|e| format!("rpm: {e}"))?;
        if !st.success() {
            return Err("rpm --initdb failed".into());
        }
        let home = dir.join("home");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n")
            .map_err(|e| e.to_string())?;
        crate::bench::made(&dir, &stamp)?;
    }
    // The generator's memory (dropped above) goes back to the system: a
    // command started from this process counts its resident set in its
    // own peak (see `crate::rusage`).
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let lines = |f: &Path| -> Result<Vec<String>, String> {
        Ok(std::fs::read_to_string(f)
            .map_err(|e| e.to_string())?
            .lines()
            .map(str::to_string)
            .collect())
    };
    Ok(RepoWork {
        base: dir.join("base"),
        stock: dir.join("base-al2023"),
        home: dir.join("home"),
        request: lines(&request_file)?,
        app: lines(&app_file)?,
        dir,
        repo,
        runs: std::cell::Cell::new(0),
    })
}

/// (d-app)'s base at `to`: Amazon Linux 2023's release files and rpm
/// database, from the shared fixtures.
fn stock_base(to: &Path, shared: &Path) -> Result<(), String> {
    let db = to.join("var/lib/rpm");
    std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
    std::fs::copy(
        shared.join("al2023-plain/rpmdb.sqlite"),
        db.join("rpmdb.sqlite"),
    )
    .map_err(|e| format!("the stock base's database: {e}"))?;
    let st = Command::new("cp")
        .arg("-r")
        .arg(shared.join("al2023-release-files/etc"))
        .arg(shared.join("al2023-release-files/usr"))
        .arg(to)
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("cp -r of the release files failed".into());
    }
    // The fixtures are read-only; rpm (under dnf) opens the database
    // to write.
    sh(&format!("chmod -R u+w {}", to.display()))
        .status()
        .map_err(|e| e.to_string())?;
    Ok(())
}

impl RepoWork {
    /// A new folder for one run's cache or root, kept until the bench
    /// ends. Not a folder emptied between runs: on an ext4 without a
    /// journal, making an inode scans past every inode deleted in the
    /// last minute, so each run would pay for the files of the one
    /// before it (a user's first fetch does not).
    fn fresh(&self, what: &str) -> PathBuf {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        self.dir.join("runs").join(format!("{n}-{what}"))
    }

    /// One round: `ingot lock` then dnf resolving only ([`SHORT_RUNS`]
    /// times), then both resolving and downloading, each with an empty
    /// cache, against the repository served over loopback; then (d-app)'s
    /// request resolved and downloaded by both ([`SHORT_RUNS`] times).
    pub fn measure_round(&self, res: &mut Results, ingot: &Path) -> Result<(), String> {
        let server = Server::start(self.repo.clone())?;
        let url = format!("http://127.0.0.1:{}/", server.port);
        let spec = self.spec("image", &self.base, &self.request, &url)?;
        for _ in 0..SHORT_RUNS {
            let ours =
                self.ingot_lock(res, ingot, &spec, &self.fresh("ingot-cache"), (D, INGOT))?;
            let theirs = self.dnf(res, &url, (D, DNF), &self.base, &self.request)?;
            res.closure.push((D, ours, theirs));
            if ours != theirs {
                eprintln!("xtask: (d) ingot locked {ours} packages, dnf would install {theirs}");
            }
        }
        let cache = self.fresh("ingot-cache");
        let ours = self.ingot_lock(res, ingot, &spec, &cache, (D_FETCH, INGOT_FETCH))?;
        self.machine_limits(res, D_FETCH, &url, &spec.with_extension("lock"))?;
        let (hasher, mut cmd) = crate::bench::fast_hash(&format!("{}/sha256/*/*", cache.display()));
        res.push(
            D_FETCH,
            &format!("machine: SHA-256 of the downloaded packages ({hasher})"),
            measure(&mut cmd)?,
        );
        let theirs = self.dnf(res, &url, (D_FETCH, DNF_FETCH), &self.base, &self.request)?;
        if ours != theirs {
            return Err(format!(
                "(d) ingot downloaded {ours} packages, dnf downloaded {theirs}"
            ));
        }
        let spec = self.spec("app", &self.stock, &self.app, &url)?;
        for _ in 0..SHORT_RUNS {
            // Resolving alone too, for the floor (resolve, then fetch as
            // fast as curl).
            self.ingot_lock(
                res,
                ingot,
                &spec,
                &self.fresh("ingot-app-cache"),
                (D_APP, INGOT),
            )?;
            let cache = self.fresh("ingot-app-cache");
            let ours = self.ingot_lock(res, ingot, &spec, &cache, (D_APP, INGOT_FETCH))?;
            self.machine_limits(res, D_APP, &url, &spec.with_extension("lock"))?;
            let theirs = self.dnf(res, &url, (D_APP, DNF_FETCH), &self.stock, &self.app)?;
            res.closure.push((D_APP, ours, theirs));
            if ours != theirs {
                return Err(format!(
                    "(d-app) ingot downloaded {ours} packages, dnf downloaded {theirs}"
                ));
            }
        }
        Ok(())
    }

    /// The image spec `NAME.toml` asking for `request` on `base` from the
    /// repository at `url`.
    fn spec(
        &self,
        name: &str,
        base: &Path,
        request: &[String],
        url: &str,
    ) -> Result<PathBuf, String> {
        let spec = self.dir.join(format!("{name}.toml"));
        let quoted: Vec<String> = request.iter().map(|r| format!("{r:?}")).collect();
        std::fs::write(
            &spec,
            format!(
                "[image]\nname = \"bench-{name}\"\nbase = \"{}\"\nreleasever = \"2023\"\ninstall = [{}]\n\n\
                 [[image.repos]]\nname = \"bench\"\nbaseurl = \"{url}\"\n",
                base.display(),
                quoted.join(", ")
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The machine's floors for what `work` fetched, as locked in `lock`:
    /// the packages fetched from the same server by curl, 8 at a time,
    /// with nothing kept (to /dev/null), and kept, each in a file of a
    /// fresh folder, as any fetcher that keeps them must at least do.
    fn machine_limits(
        &self,
        res: &mut Results,
        work: &str,
        url: &str,
        lock: &Path,
    ) -> Result<(), String> {
        let text = std::fs::read_to_string(lock).map_err(|e| e.to_string())?;
        let kept = self.fresh("curl-kept");
        for (who, keep) in [(FETCH_FLOOR, false), (FETCH_KEPT, true)] {
            let config = self.dir.join("curl.conf");
            let mut urls = String::new();
            for (i, location) in text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("location = \""))
                .enumerate()
            {
                let to = match keep {
                    true => kept.join(format!("{i}.rpm")).display().to_string(),
                    false => "/dev/null".to_string(),
                };
                let _ = writeln!(
                    urls,
                    "url = \"{url}{}\"\noutput = \"{to}\"",
                    location.trim_end_matches('"')
                );
            }
            std::fs::write(&config, urls).map_err(|e| e.to_string())?;
            res.push(
                work,
                who,
                measure(
                    Command::new("curl")
                        .args([
                            "--no-progress-meter",
                            "--fail",
                            "--parallel",
                            "--create-dirs",
                        ])
                        .args(["--parallel-max", "8", "--config"])
                        .arg(&config),
                )?,
            );
        }
        Ok(())
    }

    /// `ingot lock` (as [`INGOT_FETCH`]: and fetch the packages) from an
    /// empty cache, measured as `row` (workload, contender); the number
    /// of packages locked (and then found in the cache).
    fn ingot_lock(
        &self,
        res: &mut Results,
        ingot: &Path,
        spec: &Path,
        cache: &Path,
        (work, who): (&str, &str),
    ) -> Result<usize, String> {
        let download = who == INGOT_FETCH;
        let lock = spec.with_extension("lock");
        let _ = std::fs::remove_file(&lock);
        let mut cmd = Command::new(ingot);
        cmd.args(["-q", "lock"]).arg(spec).arg("--cache").arg(cache);
        if download {
            cmd.arg("--download");
        }
        res.push(work, who, measure(&mut cmd)?);
        let text = std::fs::read_to_string(&lock).map_err(|e| e.to_string())?;
        let locked = text.lines().filter(|l| l.trim() == "[[package]]").count();
        if download {
            // The cache keeps packages by checksum: `sha256/ab/abcdef…`.
            let fetched = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("sha256 = \""))
                .map(|l| l.trim_end_matches('"'))
                .filter(|h| h.len() == 64 && cache.join("sha256").join(&h[..2]).join(h).is_file())
                .count();
            if fetched != locked {
                return Err(format!(
                    "{work}: ingot locked {locked} packages but its cache holds {fetched} package files"
                ));
            }
        }
        Ok(locked)
    }

    /// dnf from an empty cache and a copy of `base` asking for
    /// `request`, measured as `row`: `--assumeno` (resolve, print the
    /// transaction, abort) or, as [`DNF_FETCH`], `--downloadonly`; the
    /// number of packages in its transaction (and then downloaded).
    fn dnf(
        &self,
        res: &mut Results,
        url: &str,
        (work, who): (&str, &str),
        base: &Path,
        request: &[String],
    ) -> Result<usize, String> {
        let download = who == DNF_FETCH;
        let root = self.fresh("dnf-root");
        let dnf_cache = self.fresh("dnf-cache");
        let out = self.dir.join("dnf.out");
        std::fs::create_dir_all(root.parent().unwrap_or(&self.dir)).map_err(|e| e.to_string())?;
        let st = Command::new("cp")
            .arg("-a")
            .arg(base)
            .arg(&root)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("cp -a of the base failed".into());
        }
        // --assumeno: dnf resolves, prints the transaction, says
        // "Operation aborted." and exits 1. --downloadonly -y: it
        // fetches the transaction's packages into its cache and exits 0.
        let (mode, check) = match download {
            false => ("--assumeno", "test $? -eq 1 && grep -q 'Operation aborted'"),
            true => ("--downloadonly -y", "test $? -eq 0 && grep -q 'Complete!'"),
        };
        let script = format!(
            "HOME={home} dnf --installroot {root} --setopt=reposdir=/dev/null --noplugins --nogpgcheck \
             --repofrompath=bench,{url} --setopt=install_weak_deps=False --setopt=cachedir={cache} \
             --releasever=2023 {mode} install {names} >{out} 2>&1; {check} {out}",
            home = self.home.display(),
            root = root.display(),
            cache = dnf_cache.display(),
            names = request.join(" "),
            out = out.display(),
        );
        res.push(work, who, measure(&mut sh(&script))?);
        let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
        let planned = text
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("Install"))
                    .then(|| w.next()?.parse::<usize>().ok())
                    .flatten()
            })
            .ok_or_else(|| format!("no \"Install N Packages\" line in dnf's output:\n{text}"))?;
        if download {
            // With --installroot, dnf keeps its cache inside the root.
            let fetched = count_files(&dnf_cache, ".rpm") + count_files(&root, ".rpm");
            if fetched != planned {
                return Err(format!(
                    "{work}: dnf planned {planned} packages but downloaded {fetched}:\n{text}"
                ));
            }
        }
        Ok(planned)
    }
}

/// Files under `dir` whose names end with `suffix`.
fn count_files(dir: &Path, suffix: &str) -> usize {
    let mut n = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(_) if e.file_name().to_string_lossy().ends_with(suffix) => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// A loopback HTTP server of the files under a folder, stopped on drop.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(root: PathBuf) -> Result<Server, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    let root = root.clone();
                    std::thread::spawn(move || {
                        let _ = serve(s, &root);
                    });
                }
            }
        });
        Ok(Server {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answer one request: `GET` or `HEAD` of a file under `root`.
fn serve(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target
        .split('?')
        .next()
        .unwrap_or("")
        .trim_start_matches('/');
    let file = match path.split('/').any(|c| c == "..") {
        true => None,
        false => std::fs::File::open(root.join(path))
            .and_then(|f| Ok((f.metadata()?, f)))
            .ok()
            .filter(|(m, _)| m.is_file())
            .map(|(m, f)| (m.len(), f)),
    };
    let mut w = stream;
    match file {
        Some((len, mut f)) => {
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            )?;
            if method != "HEAD" {
                // A file to a socket: std sends it with sendfile, as a
                // web server would, without copying it through here.
                std::io::copy(&mut f, &mut w)?;
            }
        }
        None => write!(
            w,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// The whole answer to one request sent to `port`.
    fn ask(port: u16, request: &str) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        answer
    }

    /// (d-app)'s request is the first programs of (d)'s, fewer of them at
    /// full size, and each a program the repository has.
    #[test]
    fn the_application_request_is_the_first_of_the_larger_ones_programs() {
        for (count, fewer) in [(20_000, true), (2_000, false)] {
            let (pkgs, request, closure, app) = generate(count, 5);
            assert!(
                !app.is_empty() && request.starts_with(&app),
                "{app:?} / {request:?}"
            );
            assert!(!fewer || app.len() < request.len(), "{app:?} / {request:?}");
            for name in &app {
                assert!(
                    closure.iter().any(|&i| pkgs[i].name == *name),
                    "{name} is not in the request's closure"
                );
            }
        }
    }

    /// The bench's server sends a file whole with its length, only the
    /// head for HEAD, and 404 for what is missing, a folder or a path
    /// out of its root; it stops when dropped.
    #[test]
    fn the_server_sends_files_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("Packages")).unwrap();
        // Larger than a socket buffer, and not a pattern a short read hides.
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(root.join("Packages/a.rpm"), &body).unwrap();
        std::fs::write(dir.path().join("secret"), b"outside").unwrap();
        let server = Server::start(root).unwrap();
        let port = server.port;

        let answer = ask(port, "GET /Packages/a.rpm?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            body.len()
        );
        assert_eq!(&answer[..head.len()], head.as_bytes());
        assert!(answer[head.len()..] == body[..], "the body differs");

        let answer = ask(port, "HEAD /Packages/a.rpm HTTP/1.1\r\n\r\n");
        assert_eq!(answer, head.as_bytes());

        for path in ["/Packages/missing.rpm", "/Packages", "/../secret"] {
            let answer = ask(port, &format!("GET {path} HTTP/1.1\r\n\r\n"));
            assert!(
                answer.starts_with(b"HTTP/1.1 404 Not Found\r\n"),
                "{path}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        drop(server);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server still answers after its drop"
        );
    }
}
