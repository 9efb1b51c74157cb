//! Packages from repositories (`ingot::repo`): repositories made by
//! Debian's `createrepo_c` from RPMs `ingot build` makes, served by a
//! loopback HTTP server the test starts and stops. What the metadata says
//! is judged by `rpm -qp` on the same files and by SHA-256 over their
//! bytes; failures are injected by the server.
//!
//! What createrepo_c leaves out of primary, so the comparison leaves it
//! out of rpm's view too (named here, in one place):
//! - requirements on `rpmlib(…)` features;
//! - requirements the package provides itself (same name, flags and
//!   version: rpm's `config(NAME)`);
//! - of the files, all but those in `/etc/`, in a `bin/` folder and
//!   `/usr/lib/sendmail` (`ingot::repo::in_primary`, judged here; the
//!   rest is in filelists, compared whole).
//!
//! createrepo_c marks a requirement `pre="1"` when rpm's flags say it is
//! needed by %pre, %post, %pretrans or %posttrans (or is a legacy PreReq).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ingot::progress::{Quiet, Recording, Unit};
use ingot::repo::{
    Client, DepKind, FileKind, KeySource, Options, Package, RepoConfig, RepoError, SENSE_PREREQ,
    Vars,
};
use sha2::Digest as _;

use crate::common::{self, Gpg, ingot, run_ok, stdout};
use crate::need;
use crate::repo_server::{Fault, Server};

/// A package spec for `ingot build`: the `[dependencies]` table as TOML
/// lines, files as (destination, mode, content).
struct Spec<'a> {
    name: &'a str,
    epoch: Option<u32>,
    version: &'a str,
    release: &'a str,
    arch: &'a str,
    deps: &'a str,
    files: &'a [(&'a str, &'a str, &'a str)],
    extra: &'a str,
}

impl Spec<'_> {
    fn build(&self, dir: &Path, out: &Path, sign_key: Option<&Path>) -> PathBuf {
        let src = dir.join(format!("src-{}-{}", self.name, self.version));
        std::fs::create_dir_all(&src).unwrap();
        let mut text = format!(
            "[package]\nname = \"{}\"\nversion = \"{}\"\nrelease = \"{}\"\narch = \"{}\"\n\
             summary = \"test package {}\"\nlicense = \"MIT\"\ndescription = \"A package for the repository tests.\"\n",
            self.name, self.version, self.release, self.arch, self.name
        );
        if let Some(e) = self.epoch {
            text += &format!("epoch = {e}\n");
        }
        text += &format!("\n[dependencies]\n{}\n", self.deps);
        for (i, (dest, mode, content)) in self.files.iter().enumerate() {
            let f = src.join(format!("f{i}"));
            std::fs::write(&f, content).unwrap();
            text += &format!(
                "\n[[files]]\nsrc = \"{}\"\ndest = \"{dest}\"\nmode = \"{mode}\"\n",
                f.display()
            );
        }
        text += self.extra;
        text += "\n[[changelog]]\ndate = 2026-01-02\nauthor = \"t <t@example.invalid> - 1\"\ntext = \"- t\"\n";
        let spec = dir.join(format!("{}-{}.toml", self.name, self.version));
        std::fs::write(&spec, text).unwrap();
        let mut cmd = ingot();
        cmd.arg("build").arg(&spec).arg("--out").arg(out);
        if let Some(k) = sign_key {
            cmd.arg("--sign-key").arg(k);
        }
        let o = run_ok(&mut cmd);
        PathBuf::from(stdout(&o).trim())
    }
}

const LIBFOO1: Spec = Spec {
    name: "libfoo",
    epoch: None,
    version: "1.0",
    release: "1",
    arch: "x86_64",
    deps: "provides = [\"libfoo.so.1()(64bit)\"]",
    // Paths on both sides of createrepo_c's rule for primary's files.
    files: &[
        ("/usr/lib64/libfoo.so.1", "0644", "one\n"),
        ("/usr/lib/sendmail", "0755", "#!/bin/sh\n"),
        ("/usr/lib/sendmail.d/notes", "0644", "n\n"),
        ("/opt/foo/sbin/helper", "0755", "#!/bin/sh\n"),
        ("/usr/share/foo/bin.txt", "0644", "b\n"),
        ("/etcetera/foo.conf", "0644", "e\n"),
    ],
    extra: "",
};

const LIBFOO2: Spec = Spec {
    name: "libfoo",
    epoch: None,
    version: "2.0",
    release: "1",
    arch: "x86_64",
    deps: r#"provides = ["libfoo.so.2()(64bit)", "foo-api = 2"]
requires = ["(glibc or musl)", "bar >= 1:2.0-3", "baz < 4", "qux > 1.5", "quux <= 2"]
conflicts = ["oldfoo < 1.0"]
obsoletes = ["foo-legacy <= 1.5-2"]
recommends = ["foo-extras"]
suggests = ["foo-doc >= 2"]
supplements = ["(foo-lang and langpacks-en)"]
enhances = ["bar"]"#,
    files: &[
        ("/usr/lib64/libfoo.so.2", "0644", "two\n"),
        ("/usr/bin/footool", "0755", "#!/bin/sh\necho foo\n"),
        ("/etc/foo.conf", "0644", "x = 1\n"),
    ],
    extra: "\n[[dirs]]\npath = \"/var/lib/foo\"\n\n[[users]]\nname = \"foo\"\n",
};

const APP: Spec = Spec {
    name: "app",
    epoch: Some(1),
    version: "1.5",
    release: "2",
    arch: "noarch",
    deps: r#"requires = ["libfoo.so.2()(64bit)", "/usr/bin/footool", "(libfoo >= 2 or libbar)"]
conflicts = ["libfoo < 1.0"]
obsoletes = ["app-old < 1:1.0"]"#,
    files: &[
        ("/usr/share/app/data.txt", "0644", "data\n"),
        ("/usr/bin/app", "0755", "#!/bin/sh\nfootool\n"),
    ],
    extra: "",
};

/// Build the three packages into `dir/pool`; returns their files.
fn packages(dir: &Path) -> Vec<PathBuf> {
    let pool = dir.join("pool");
    [LIBFOO1, LIBFOO2, APP]
        .iter()
        .map(|s| s.build(dir, &pool, None))
        .collect()
}

/// A repository folder with `rpms` in `Packages/`, made by createrepo_c
/// with `args`.
fn createrepo(createrepo: &Path, dir: &Path, rpms: &[PathBuf], args: &[&str]) -> PathBuf {
    let repo = dir.to_path_buf();
    std::fs::create_dir_all(repo.join("Packages")).unwrap();
    for r in rpms {
        std::fs::copy(r, repo.join("Packages").join(r.file_name().unwrap())).unwrap();
    }
    run_ok(Command::new(createrepo).args(args).arg(&repo));
    repo
}

fn options() -> Options {
    Options {
        backoff: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(20),
        ..Options::default()
    }
}

fn by_nevra(pkgs: &[Package], nevra: &str) -> Package {
    pkgs.iter()
        .find(|p| p.nevra() == nevra)
        .unwrap_or_else(|| {
            panic!(
                "no {nevra} in {:?}",
                pkgs.iter().map(Package::nevra).collect::<Vec<_>>()
            )
        })
        .clone()
}

/// What rpm says of a package file, in the terms primary uses.
#[derive(Debug, PartialEq, Eq)]
struct View {
    nevra: String,
    build_time: u64,
    installed_size: u64,
    /// (kind, name, sense flags, evr, pre)
    deps: Vec<(String, String, u64, String, bool)>,
    /// (path, kind)
    files: Vec<(String, FileKind)>,
}

const SENSE: u64 = 0xe;
const PRE_FLAGS: u64 = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 9) | (1 << 10);

fn rpm_view(rpm: &Path, file: &Path) -> View {
    let tags = [
        ("provides", "PROVIDE"),
        ("requires", "REQUIRE"),
        ("conflicts", "CONFLICT"),
        ("obsoletes", "OBSOLETE"),
        ("recommends", "RECOMMEND"),
        ("suggests", "SUGGEST"),
        ("supplements", "SUPPLEMENT"),
        ("enhances", "ENHANCE"),
    ];
    let mut qf = String::from(
        "N\t%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\t%{BUILDTIME}\t%{LONGSIZE}\n",
    );
    for (kind, t) in tags {
        qf += &format!("[D\t{kind}\t%{{{t}NAME}}\t%{{{t}FLAGS}}\t%{{{t}VERSION}}\n]");
    }
    qf += "[F\t%{FILENAMES}\t%{FILEMODES:octal}\t%{FILEFLAGS}\n]";
    let out = stdout(&run_ok(
        Command::new(rpm).args(["-qp", "--qf", &qf]).arg(file),
    ));
    let mut v = View {
        nevra: String::new(),
        build_time: 0,
        installed_size: 0,
        deps: Vec::new(),
        files: Vec::new(),
    };
    let mut provides = BTreeSet::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "N" => {
                v.nevra = f[1].to_string();
                v.build_time = f[2].parse().unwrap();
                v.installed_size = f[3].parse().unwrap();
            }
            "D" => {
                let flags: u64 = f[3].parse().unwrap();
                if f[1] == "provides" {
                    provides.insert((f[2].to_string(), flags, f[4].to_string()));
                }
                let pre = f[1] == "requires" && flags & PRE_FLAGS != 0;
                v.deps.push((
                    f[1].to_string(),
                    f[2].to_string(),
                    flags,
                    f[4].to_string(),
                    pre,
                ));
            }
            "F" => {
                let mode = u32::from_str_radix(f[2], 8).unwrap();
                let flags: u32 = f[3].parse().unwrap();
                let kind = if flags & 64 != 0 {
                    FileKind::Ghost
                } else if mode & 0o170000 == 0o040000 {
                    FileKind::Dir
                } else {
                    FileKind::File
                };
                v.files.push((f[1].to_string(), kind));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    // createrepo_c's omissions (module doc).
    v.deps.retain(|(kind, name, flags, evr, _)| {
        !(kind == "requires"
            && (name.starts_with("rpmlib(")
                || provides.contains(&(name.clone(), *flags, evr.clone()))))
    });
    for d in &mut v.deps {
        d.2 &= SENSE;
    }
    v
}

/// The same view of a parsed package (files: the ones given).
fn our_view(p: &Package, files: Vec<(String, FileKind)>) -> View {
    let mut deps = Vec::new();
    for kind in DepKind::ALL {
        for d in p.deps(kind) {
            deps.push((
                kind.name().to_string(),
                d.name.to_string(),
                d.flags & SENSE,
                d.evr.to_string(),
                d.flags & SENSE_PREREQ != 0,
            ));
        }
    }
    View {
        nevra: p.nevra(),
        build_time: p.build_time,
        installed_size: p.installed_size,
        deps,
        files,
    }
}

fn primary_files(p: &Package) -> Vec<(String, FileKind)> {
    p.files.iter().map(|f| (f.path.clone(), f.kind)).collect()
}

/// Compare a parsed repository with rpm's view of the files it was made
/// from, and its checksums and sizes with the files' bytes.
fn judge(rpm: &Path, pkgs: &[Package], rpms: &[PathBuf]) {
    assert_eq!(pkgs.len(), rpms.len());
    for file in rpms {
        let mut want = rpm_view(rpm, file);
        let ours = by_nevra(pkgs, &want.nevra);
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(ours.checksum.hex, hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(ours.size, bytes.len() as u64);
        assert_eq!(
            ours.location,
            format!("Packages/{}", file.file_name().unwrap().to_str().unwrap())
        );
        // ingot's own rule (it decides when the file lists are fetched
        // early), judged here by what createrepo_c put in primary.
        want.files.retain(|(p, _)| ingot::repo::in_primary(p));
        assert_eq!(
            our_view(&ours, primary_files(&ours)),
            want,
            "{}",
            want.nevra
        );
    }
}

fn client(cache: &Path) -> Client {
    Client::new(cache, options())
}

/// A client that only reads its cache.
fn offline_client(cache: &Path) -> Client {
    Client::new(
        cache,
        Options {
            offline: true,
            ..options()
        },
    )
}

/// The three packages in a repository createrepo_c makes under `dir`,
/// served: the server, the repository's configuration, a cache folder.
fn served(cr: &Path, dir: &Path) -> (Server, RepoConfig, PathBuf) {
    let rpms = packages(dir);
    let repo = createrepo(cr, &dir.join("repo"), &rpms, &[]);
    let server = Server::start(&repo);
    let config = RepoConfig::new("t", &server.url("/"));
    (server, config, dir.join("cache"))
}

#[test]
fn createrepo_metadata_reads_as_rpm_sees_the_packages() {
    let cr = need!("createrepo_c");
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let rpms = packages(t.path());
    let variants: &[(&str, &[&str])] = &[
        ("gz-db", &["--database"]),
        ("xz", &["--general-compress-type=xz", "--no-database"]),
        ("bz2-db", &["--general-compress-type=bz2", "--database"]),
        ("plain-db-xz", &["--compress-type=xz", "--database"]),
    ];
    for (name, args) in variants {
        let repo = createrepo(&cr, &t.path().join(name), &rpms, args);
        let server = Server::start(&repo);
        let c = client(&t.path().join(format!("cache-{name}")));
        let r = c
            .open(&RepoConfig::new(name, &server.url("/")), &Quiet)
            .unwrap();
        let pkgs = r.packages(&c, &Quiet).unwrap();
        judge(&rpm, &pkgs, &rpms);
        if args.contains(&"--database") {
            // The SQLite form says the same, entry for entry.
            let mut db = r.packages_from_db(&c, &Quiet).unwrap();
            let mut xml = pkgs.clone();
            db.sort_by_key(Package::nevra);
            xml.sort_by_key(Package::nevra);
            assert_eq!(db, xml, "{name}: primary_db and primary.xml differ");
        } else {
            assert!(matches!(
                r.packages_from_db(&c, &Quiet),
                Err(RepoError::NoRecord { .. })
            ));
        }
        // filelists, on request: every file, as rpm lists them.
        let app = by_nevra(&pkgs, "app-1:1.5-2.noarch");
        let owners = r
            .file_owners(
                &c,
                &["/usr/share/app/data.txt", "/var/lib/foo", "/nowhere"],
                &Quiet,
            )
            .unwrap();
        let libfoo2 = by_nevra(&pkgs, "libfoo-2.0-1.x86_64");
        assert_eq!(
            owners["/usr/share/app/data.txt"],
            std::slice::from_ref(&app.checksum.hex)
        );
        assert_eq!(
            owners["/var/lib/foo"],
            std::slice::from_ref(&libfoo2.checksum.hex)
        );
        assert!(!owners.contains_key("/nowhere"));
        plain_form_reads_the_same(&r, &c, &pkgs);
    }
}

/// What createrepo_c writes is in the plain form `repo::scan` reads by
/// hand (not handed back to quick-xml), and reads the same.
fn plain_form_reads_the_same(r: &ingot::repo::Repo, c: &Client, pkgs: &[Package]) {
    let limits = ingot::repo::Limits::default();
    let open = |kind: &str| {
        let file = c.record_file(r, r.record(kind).unwrap(), &Quiet).unwrap();
        let mut doc = Vec::new();
        let mut d = ingot::repo::decode::decompress(file.reader()).unwrap();
        std::io::Read::read_to_end(&mut d, &mut doc).unwrap();
        doc
    };
    let primary = open("primary");
    let by_hand = ingot::repo::scan::primary(&primary, "primary", &limits);
    assert_eq!(by_hand.as_deref(), Some(pkgs), "primary read by hand");
    let filelists = open("filelists");
    let wanted = |p: &str| p.starts_with("/usr/");
    let mut found = Vec::new();
    let n = ingot::repo::xml::filelists_matching(&filelists[..], "f", &limits, wanted, |id, p| {
        found.push((id.to_string(), p.to_string()));
        Ok(())
    })
    .unwrap();
    assert!(!found.is_empty());
    let by_hand = ingot::repo::scan::filelists_matching(&filelists[..], "f", &limits, &wanted);
    assert_eq!(by_hand, Some((n, found)), "filelists read by hand");
}

/// primary.xml recompressed with zstd, and repomd.xml rewritten for it, as
/// createrepo_c 0.20 and later write it (Debian's 0.17 has no zstd).
#[test]
fn zstd_primary_reads_the_same() {
    let cr = need!("createrepo_c");
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let rpms = packages(t.path());
    let repo = createrepo(&cr, &t.path().join("repo"), &rpms, &["--no-database"]);
    let repodata = repo.join("repodata");
    let gz = std::fs::read_dir(&repodata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with("-primary.xml.gz"))
        .unwrap();
    let gz_bytes = std::fs::read(&gz).unwrap();
    let mut xml = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz_bytes[..]), &mut xml).unwrap();
    let zst = zstd::encode_all(&xml[..], 10).unwrap();
    let old_sum = hex::encode(sha2::Sha256::digest(&gz_bytes));
    let new_sum = hex::encode(sha2::Sha256::digest(&zst));
    let new_name = format!("{new_sum}-primary.xml.zst");
    std::fs::write(repodata.join(&new_name), &zst).unwrap();
    std::fs::remove_file(&gz).unwrap();
    let md = std::fs::read_to_string(repodata.join("repomd.xml")).unwrap();
    let old_loc = gz.file_name().unwrap().to_str().unwrap().to_string();
    let block_start = md.find(&old_sum).unwrap();
    let size_at = block_start + md[block_start..].find("<size>").unwrap();
    let size_end = size_at + md[size_at..].find("</size>").unwrap();
    let md = format!("{}<size>{}{}", &md[..size_at], zst.len(), &md[size_end..])
        .replace(&old_loc, &new_name)
        .replace(&old_sum, &new_sum);
    std::fs::write(repodata.join("repomd.xml"), md).unwrap();

    let server = Server::start(&repo);
    let c = client(&t.path().join("cache"));
    let r = c
        .open(&RepoConfig::new("z", &server.url("")), &Quiet)
        .unwrap();
    assert!(r.record("primary").unwrap().location.ends_with(".zst"));
    judge(&rpm, &r.packages(&c, &Quiet).unwrap(), &rpms);
}

#[test]
fn repo_files_in_a_root_reach_the_repository() {
    let cr = need!("createrepo_c");
    let t = tempfile::tempdir().unwrap();
    let rpms = packages(t.path());
    let repo = createrepo(&cr, &t.path().join("x86_64"), &rpms, &[]);
    let server = Server::start(t.path());
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("etc/yum.repos.d")).unwrap();
    std::fs::create_dir_all(root.join("etc/dnf/vars")).unwrap();
    std::fs::write(root.join("etc/dnf/vars/releasever"), "2023.9\n").unwrap();
    std::fs::write(
        root.join("etc/yum.repos.d/test.repo"),
        format!(
            "[test]\nname=Test $releasever\nbaseurl=http://127.0.0.1:{}/$basearch/\npriority=5\n\n\
             [off]\nbaseurl=http://127.0.0.1:1/\nenabled=0\n",
            server.port
        ),
    )
    .unwrap();
    let rel = ingot::repo::config::releasever_from_root(&root)
        .unwrap()
        .unwrap();
    let repos = ingot::repo::config::read_repos_dir(&root, &Vars::new(&rel, "x86_64")).unwrap();
    assert_eq!(repos.len(), 2);
    assert_eq!(repos[0].title.as_deref(), Some("Test 2023.9"));
    assert_eq!((repos[0].priority, repos[1].enabled), (5, false));
    let c = client(&t.path().join("cache"));
    let r = c.open(&repos[0], &Quiet).unwrap();
    assert_eq!(r.packages(&c, &Quiet).unwrap().len(), 3);
    assert!(repo.join("repodata/repomd.xml").is_file());
}

#[test]
fn retries_recover_downloads_are_reported_and_cached() {
    let cr = need!("createrepo_c");
    let t = tempfile::tempdir().unwrap();
    let rpms = packages(t.path());
    let repo = createrepo(&cr, &t.path().join("repo"), &rpms, &[]);
    let cache = t.path().join("cache");
    let server = Server::start(&repo);
    let config = RepoConfig::new("t", &server.url("/"));
    // A 500 on the index, once: retried.
    server.fail("repodata/repomd.xml", &[Fault::Status(500)]);
    let rec = Recording::default();
    let c = client(&cache);
    let r = c.open(&config, &rec).unwrap();
    assert_eq!(server.hits("repodata/repomd.xml"), 2);
    let pkgs = r.packages(&c, &rec).unwrap();
    let libfoo1 = by_nevra(&pkgs, "libfoo-1.0-1.x86_64");
    let libfoo2 = by_nevra(&pkgs, "libfoo-2.0-1.x86_64");
    let app = by_nevra(&pkgs, "app-1:1.5-2.noarch");

    // Two packages in parallel into the content-addressed cache.
    let wanted = [r.download_of(&libfoo2), r.download_of(&app)];
    let got = c.download(&wanted, &rec).unwrap();
    for (path, p) in got.iter().zip([&libfoo2, &app]) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), p.checksum.hex);
        let h = &p.checksum.hex;
        assert_eq!(*path, cache.join("sha256").join(&h[..2]).join(h));
    }
    // Metadata and downloads reported as byte-counting tasks.
    let tasks = rec.tasks();
    let meta = tasks.iter().find(|t| t.what == "t primary").unwrap();
    let primary_size = r.record("primary").unwrap().size;
    assert_eq!((meta.unit, meta.total), (Unit::Bytes, primary_size));
    assert_eq!(Some(meta.done), primary_size);
    let dl = tasks
        .iter()
        .find(|t| t.what == "downloading packages")
        .unwrap();
    let both = libfoo2.size + app.size;
    assert_eq!(
        (dl.unit, dl.total, dl.done),
        (Unit::Bytes, Some(both), both)
    );
    assert!(dl.finished && meta.finished);
    assert!(dl.notes.contains(&app.nevra()), "{:?}", dl.notes);

    // Again, with a new client on the same cache: no request at all.
    let before = server.total_hits();
    let again = client(&cache).download(&wanted, &Quiet).unwrap();
    assert_eq!(again, got);
    assert_eq!(server.total_hits(), before);

    // A body cut short, once: retried, and what is kept is whole.
    server.fail(&libfoo1.location, &[Fault::Truncate]);
    let rec = Recording::default();
    let p = c.download(&[r.download_of(&libfoo1)], &rec).unwrap();
    assert_eq!(server.hits(&libfoo1.location), 2);
    // The half that came twice is counted once.
    let dl = rec
        .tasks()
        .into_iter()
        .find(|t| t.what == "downloading packages")
        .unwrap();
    assert_eq!((dl.total, dl.done), (Some(libfoo1.size), libfoo1.size));
    let bytes = std::fs::read(&p[0]).unwrap();
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        libfoo1.checksum.hex
    );
    // Cut short every time: the URL and the cause, after every retry.
    server.fail(&app.location, &[Fault::Truncate; 4]);
    let e = client(&t.path().join("cache2"))
        .download(&[r.download_of(&app)], &Quiet)
        .unwrap_err();
    assert!(
        matches!(&e, RepoError::Unreachable { url, attempts: 4, .. } if *url == server.url(&app.location)),
        "{e}"
    );
}

#[test]
fn offline_uses_the_cache_and_names_what_is_missing() {
    let cr = need!("createrepo_c");
    let t = tempfile::tempdir().unwrap();
    let (server, config, cache) = served(&cr, t.path());
    let c = client(&cache);
    let r = c.open(&config, &Quiet).unwrap();
    let pkgs = r.packages(&c, &Quiet).unwrap();
    let app = by_nevra(&pkgs, "app-1:1.5-2.noarch");
    let libfoo1 = by_nevra(&pkgs, "libfoo-1.0-1.x86_64");
    let libfoo2 = by_nevra(&pkgs, "libfoo-2.0-1.x86_64");
    let online = c.download(&[r.download_of(&app)], &Quiet).unwrap();
    // Metadata lands in the cache on threads of its own: in once settled.
    c.settle().unwrap();
    let hits = server.total_hits();

    let offline = offline_client(&cache);
    let r2 = offline.open(&config, &Quiet).unwrap();
    assert_eq!(r2.repomd, r.repomd);
    assert_eq!(r2.packages(&offline, &Quiet).unwrap(), pkgs);
    assert_eq!(
        offline.download(&[r2.download_of(&app)], &Quiet).unwrap(),
        online
    );
    let e = offline
        .download(
            &[
                r2.download_of(&libfoo1),
                r2.download_of(&app),
                r2.download_of(&libfoo2),
            ],
            &Quiet,
        )
        .unwrap_err();
    match &e {
        RepoError::NotCached { packages } => {
            assert_eq!(*packages, [libfoo1.nevra(), libfoo2.nevra()]);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("libfoo-1.0-1.x86_64"), "{e}");
    // filelists was never fetched: offline says so.
    assert!(matches!(
        r2.file_owners(&offline, &["/x"], &Quiet),
        Err(RepoError::OfflineNoMetadata { .. })
    ));
    assert_eq!(server.total_hits(), hits, "offline sent a request");
}

/// A metadata file asked for from two threads at once is fetched once,
/// and is in the cache once the client settles: a client offline then
/// reads it from there.
#[test]
fn metadata_is_fetched_once_and_lands_in_the_cache() {
    let cr = need!("createrepo_c");
    let t = tempfile::tempdir().unwrap();
    let (server, config, cache) = served(&cr, t.path());
    let c = client(&cache);
    let r = c.open(&config, &Quiet).unwrap();
    let record = r.record("filelists").unwrap();
    let paths = ["/usr/share/app/data.txt", "/usr/lib/sendmail.d/notes"];
    let (ahead, asked) = std::thread::scope(|s| {
        let ahead = s.spawn(|| c.prefetch_record(&r, record, &Quiet));
        let asked = s.spawn(|| r.file_owners(&c, &paths, &Quiet).unwrap());
        (ahead.join(), asked.join().unwrap())
    });
    ahead.unwrap();
    assert_eq!(server.hits(&record.location), 1, "filelists fetched twice");
    assert_eq!(asked.len(), 2, "{asked:?}");
    // Asked again: from the client, not the server.
    assert_eq!(r.file_owners(&c, &paths, &Quiet).unwrap(), asked);
    let pkgs = r.packages(&c, &Quiet).unwrap();
    assert_eq!(r.packages(&c, &Quiet).unwrap(), pkgs);
    assert_eq!(server.hits(&r.record("primary").unwrap().location), 1);
    c.settle().unwrap();
    let hits = server.total_hits();
    let offline = offline_client(&cache);
    let r2 = offline.open(&config, &Quiet).unwrap();
    assert_eq!(r2.file_owners(&offline, &paths, &Quiet).unwrap(), asked);
    assert_eq!(r2.packages(&offline, &Quiet).unwrap(), pkgs);
    assert_eq!(server.total_hits(), hits, "offline sent a request");
    let work = std::fs::read_dir(cache.join("tmp"))
        .unwrap()
        .flatten()
        .flat_map(|w| std::fs::read_dir(w.path()).unwrap().flatten())
        .count();
    assert_eq!(work, 0, "files left in the cache's work folder");
}

fn flip_byte(path: &Path, at_end: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.seek(SeekFrom::Start(len - at_end)).unwrap();
    let mut b = [0u8];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(len - at_end)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
}

#[test]
fn bad_metadata_bad_packages_and_dead_servers_say_what_and_where() {
    let cr = need!("createrepo_c");
    let t = tempfile::tempdir().unwrap();
    let rpms = packages(t.path());
    let repo = createrepo(&cr, &t.path().join("repo"), &rpms, &[]);
    let server = Server::start(&repo);
    let config = RepoConfig::new("t", &server.url("/"));
    let c = client(&t.path().join("cache"));
    let r = c.open(&config, &Quiet).unwrap();
    let pkgs = r.packages(&c, &Quiet).unwrap();
    let app = by_nevra(&pkgs, "app-1:1.5-2.noarch");
    let libfoo1 = by_nevra(&pkgs, "libfoo-1.0-1.x86_64");

    // A package whose bytes changed after the metadata was made.
    flip_byte(&repo.join(&app.location), 1);
    let e = c.download(&[r.download_of(&app)], &Quiet).unwrap_err();
    match &e {
        RepoError::Checksum {
            what,
            url,
            kind,
            expected,
            ..
        } => {
            assert!(what.contains("app-1:1.5-2.noarch"), "{what}");
            assert_eq!(*url, server.url(&app.location));
            assert_eq!((*kind, expected), ("sha256", &app.checksum.hex));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        server.hits(&app.location),
        1,
        "a checksum mismatch is not retried"
    );
    assert!(
        !c.cache().path(&app.checksum).exists(),
        "a bad file entered the cache"
    );

    // A package that is gone: 404, not retried, the URL named; the one
    // fetched beside it stays in the cache.
    let libfoo2 = by_nevra(&pkgs, "libfoo-2.0-1.x86_64");
    std::fs::remove_file(repo.join(&libfoo1.location)).unwrap();
    let both = [r.download_of(&libfoo2), r.download_of(&libfoo1)];
    let e = c.download(&both, &Quiet).unwrap_err();
    assert!(
        matches!(&e, RepoError::NotFound { url, status: 404 } if *url == server.url(&libfoo1.location)),
        "{e}"
    );
    assert_eq!(server.hits(&libfoo1.location), 1);
    let kept = c.cache().get(&libfoo2.checksum, Some(libfoo2.size));
    assert_eq!(
        kept.map(|p| std::fs::read(p).unwrap()),
        Some(std::fs::read(repo.join(&libfoo2.location)).unwrap())
    );

    // A primary tampered with after repomd.xml was written (a fresh cache).
    let primary = r.record("primary").unwrap().clone();
    flip_byte(&repo.join(&primary.location), 10);
    let c2 = client(&t.path().join("cache2"));
    let r2 = c2.open(&config, &Quiet).unwrap();
    let e = r2.packages(&c2, &Quiet).unwrap_err();
    match &e {
        RepoError::Checksum { what, url, .. } => {
            assert_eq!(what, "repository `t`: primary");
            assert_eq!(*url, server.url(&primary.location));
        }
        other => panic!("{other}"),
    }

    // A repository whose port nobody listens on: retried, then the URL and
    // the cause.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = RepoConfig::new("dead", &format!("http://127.0.0.1:{port}/repo/"));
    let e = c.open(&dead, &Quiet).unwrap_err();
    match &e {
        RepoError::Unreachable {
            url,
            attempts,
            cause,
        } => {
            assert_eq!(
                *url,
                format!("http://127.0.0.1:{port}/repo/repodata/repomd.xml")
            );
            assert_eq!(*attempts, options().retries + 1);
            assert!(cause.to_lowercase().contains("refused"), "{cause}");
        }
        other => panic!("{other}"),
    }
    // 500 every time: retried, then named.
    server.fail("repodata/repomd.xml", &[Fault::Status(503); 4]);
    let e = c.open(&config, &Quiet).unwrap_err();
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    // A missing repository: 404 on its index.
    let e = c
        .open(&RepoConfig::new("none", &server.url("/nothing/")), &Quiet)
        .unwrap_err();
    assert!(matches!(e, RepoError::NotFound { status: 404, .. }), "{e}");
    // Unsupported URLs are refused before any request.
    let e = c
        .open(&RepoConfig::new("ftp", "ftp://127.0.0.1/"), &Quiet)
        .unwrap_err();
    assert!(matches!(e, RepoError::UnsupportedUrl { .. }), "{e}");
}

#[test]
fn a_server_that_stalls_times_out() {
    let t = tempfile::tempdir().unwrap();
    let server = Server::start(t.path());
    server.fail("repodata/repomd.xml", &[Fault::Stall]);
    let c = Client::new(
        t.path().join("cache"),
        Options {
            read_timeout: Duration::from_secs(1),
            retries: 0,
            ..options()
        },
    );
    let e = c
        .open(&RepoConfig::new("slow", &server.url("/")), &Quiet)
        .unwrap_err();
    match &e {
        RepoError::Unreachable { cause, .. } => assert!(cause.contains("timeout"), "{cause}"),
        other => panic!("{other}"),
    }
}

#[test]
fn mirror_lists_and_file_urls() {
    let cr = need!("createrepo_c");
    let t = tempfile::tempdir().unwrap();
    let rpms = packages(t.path());
    let repo = createrepo(&cr, &t.path().join("x86_64"), &rpms, &[]);
    let server = Server::start(t.path());
    // A mirror list: a dead mirror, then the live one ($basearch in it).
    std::fs::write(
        t.path().join("mirror.list"),
        format!(
            "# mirrors\nhttp://127.0.0.1:{}/missing/\nhttp://127.0.0.1:{}/$basearch/\n",
            server.port, server.port
        ),
    )
    .unwrap();
    let mut config = RepoConfig::new("m", "");
    config.baseurl.clear();
    config.mirrorlist = Some(server.url("mirror.list"));
    config.vars = Vars::new("1", "x86_64").0;
    let c = client(&t.path().join("cache"));
    let r = c.open(&config, &Quiet).unwrap();
    assert_eq!(r.urls[0], server.url("x86_64/"));
    let pkgs = r.packages(&c, &Quiet).unwrap();
    let p = c.download(&[r.download_of(&pkgs[0])], &Quiet).unwrap();
    assert!(p[0].is_file());
    // Every mirror dead: the repository and the last failure.
    std::fs::write(
        t.path().join("mirror.list"),
        format!("{}\n", server.url("a/")) + &server.url("b/"),
    )
    .unwrap();
    let e = client(&t.path().join("cache-b"))
        .open(&config, &Quiet)
        .unwrap_err();
    match &e {
        RepoError::NoWorkingUrl {
            repo,
            tried: 2,
            last,
        } => {
            assert_eq!(repo, "m");
            assert!(matches!(**last, RepoError::NotFound { .. }), "{last}");
        }
        other => panic!("{other}"),
    }
    // file:// needs no server.
    let local = RepoConfig::new("f", &format!("file://{}", repo.display()));
    let c = client(&t.path().join("cache-f"));
    let r = c.open(&local, &Quiet).unwrap();
    let pkgs = r.packages(&c, &Quiet).unwrap();
    assert_eq!(pkgs.len(), 3);
    let got = c.download(&[r.download_of(&pkgs[1])], &Quiet).unwrap();
    assert_eq!(
        std::fs::read(&got[0]).unwrap(),
        std::fs::read(repo.join(&pkgs[1].location)).unwrap()
    );
    let e = client(&t.path().join("cache-g"))
        .open(&RepoConfig::new("g", "file:///nonexistent/repo"), &Quiet)
        .unwrap_err();
    assert!(matches!(e, RepoError::NoSuchFile { .. }), "{e}");
}

/// `rpm -K` with only `key` imported: does rpm accept the package?
fn rpm_accepts(rpm: &Path, key: &Path, pkg: &Path, db: &Path) -> bool {
    if !db.exists() {
        std::fs::create_dir_all(db).unwrap();
        run_ok(
            Command::new(rpm)
                .arg("--dbpath")
                .arg(db)
                .arg("--import")
                .arg(key),
        );
    }
    Command::new(rpm)
        .arg("--dbpath")
        .arg(db)
        .arg("-K")
        .arg(pkg)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn gpgcheck_takes_only_packages_signed_with_the_repository_key() {
    let cr = need!("createrepo_c");
    let rpm = need!("rpm");
    let gpg = Gpg::new(need!("gpg"));
    let t = tempfile::tempdir().unwrap();
    let (secret, public) = gpg.key("repo-key", "ed25519", t.path());
    let (other_secret, _) = gpg.key("other-key", "ed25519", t.path());
    let pool = t.path().join("pool");
    let signed = LIBFOO2.build(t.path(), &pool, Some(&secret));
    let unsigned = APP.build(t.path(), &pool, None);
    let by_other = LIBFOO1.build(t.path(), &pool, Some(&other_secret));
    // Signed with the key, then its payload changed (and the repository
    // made afterwards, so only the signature can tell).
    let tampered_dir = t.path().join("tampered");
    let tampered = Spec {
        name: "tampered",
        ..LIBFOO1
    }
    .build(t.path(), &tampered_dir, Some(&secret));
    flip_byte(&tampered, 2);

    // rpm agrees on what each file is.
    let db = t.path().join("rpmdb");
    assert!(rpm_accepts(&rpm, &public, &signed, &db));
    assert!(!rpm_accepts(&rpm, &public, &by_other, &db));
    assert!(!rpm_accepts(&rpm, &public, &tampered, &db));

    let all = [signed, unsigned, by_other, tampered];
    let repo = createrepo(&cr, &t.path().join("repo"), &all, &[]);
    let server = Server::start(&repo);
    let mut config = RepoConfig::new("signed", &server.url("/"));
    config.gpgcheck = true;
    let c = client(&t.path().join("cache"));
    assert!(matches!(
        c.open(&config, &Quiet),
        Err(RepoError::NoKey { .. })
    ));
    config.gpgkey = vec![KeySource::File(public.clone())];
    let r = c.open(&config, &Quiet).unwrap();
    let pkgs = r.packages(&c, &Quiet).unwrap();
    let get = |nevra: &str| c.download(&[r.download_of(&by_nevra(&pkgs, nevra))], &Quiet);

    assert!(get("libfoo-2.0-1.x86_64").is_ok());
    let e = get("app-1:1.5-2.noarch").unwrap_err();
    assert!(matches!(e, RepoError::Unsigned { .. }), "{e}");
    assert!(e.to_string().contains("app-1:1.5-2.noarch"), "{e}");
    let e = get("libfoo-1.0-1.x86_64").unwrap_err();
    assert!(matches!(e, RepoError::UnknownKey { .. }), "{e}");
    let e = get("tampered-1.0-1.x86_64").unwrap_err();
    assert!(matches!(e, RepoError::BadSignature { .. }), "{e}");

    // The same key from a URL (fetched once, kept for offline).
    std::fs::copy(&public, repo.join("KEY.asc")).unwrap();
    config.gpgkey = vec![KeySource::Url(server.url("KEY.asc"))];
    let r = c.open(&config, &Quiet).unwrap();
    let p = by_nevra(&pkgs, "libfoo-2.0-1.x86_64");
    assert!(c.download(&[r.download_of(&p)], &Quiet).is_ok());
    let hits = server.total_hits();
    let offline = Client::new(
        t.path().join("cache"),
        Options {
            offline: true,
            ..options()
        },
    );
    let r = offline.open(&config, &Quiet).unwrap();
    assert!(offline.download(&[r.download_of(&p)], &Quiet).is_ok());
    assert_eq!(server.total_hits(), hits);
}

/// The environment variables that hand `big_primary_child` its input.
const BIG_ENV: &str = "INGOT_TEST_BIG_PRIMARY";

/// Write a primary.xml.gz of `n` synthetic packages (each with provides,
/// requires, files and a long description); returns its decompressed size.
fn write_big_primary(path: &Path, n: usize) -> u64 {
    use std::io::Write;
    let f = std::fs::File::create(path).unwrap();
    let mut gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
    let mut total = 0u64;
    let mut put = |s: &str, gz: &mut flate2::write::GzEncoder<_>| {
        total += s.len() as u64;
        gz.write_all(s.as_bytes()).unwrap();
    };
    put(
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{n}\">\n"
        ),
        &mut gz,
    );
    let words =
        "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ".repeat(120);
    for i in 0..n {
        let mut p = format!(
            "<package type=\"rpm\"><name>pkg{i}</name><arch>x86_64</arch>\
             <version epoch=\"0\" ver=\"{}.{}\" rel=\"1.amzn2023\"/>\
             <checksum type=\"sha256\" pkgid=\"YES\">{:064x}</checksum>\
             <summary>Package {i}</summary><description>{words}</description>\
             <time file=\"1\" build=\"1700000000\"/><size package=\"{}\" installed=\"9\" archive=\"9\"/>\
             <location href=\"Packages/pkg{i}.rpm\"/><format><rpm:provides>",
            i % 7,
            i,
            i,
            1000 + i
        );
        for k in 0..12 {
            p += &format!("<rpm:entry name=\"libpkg{i}_{k}.so.1()(64bit)\"/>");
        }
        p += "</rpm:provides><rpm:requires>";
        for k in 0..20 {
            p += &format!(
                "<rpm:entry name=\"libpkg{}_{k}.so.1()(64bit)\" flags=\"GE\" epoch=\"0\" ver=\"1.0\"/>",
                (i * 31 + k) % n
            );
        }
        p += "</rpm:requires>";
        for k in 0..25 {
            p += &format!("<file>/usr/bin/pkg{i}-tool{k}</file>");
        }
        p += "</format></package>\n";
        put(&p, &mut gz);
    }
    put("</metadata>\n", &mut gz);
    gz.finish().unwrap().flush().unwrap();
    total
}

#[test]
fn a_primary_of_20000_packages_streams_in_bounded_memory() {
    const N: usize = 20_000;
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("primary.xml.gz");
    let size = write_big_primary(&file, N);
    let mib = size >> 20;
    assert!(mib >= 150, "the generated primary is only {mib} MiB");
    // The one reader, and the two that read it in pieces (what `ingot
    // lock` and `bake` use).
    for how in ["alone", "pieces"] {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "repo::big_primary_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env(BIG_ENV, format!("{}\t{N}\t{how}", file.display()));
        let peak = common::peak_rss(&cmd);
        assert!(peak.success, "the child failed:\n{}", peak.stderr);
        let done = t.path().join("primary.xml.gz.done");
        let read = std::fs::read_to_string(&done).unwrap();
        assert_eq!(
            read,
            N.to_string(),
            "the child ({how}) did not read the primary"
        );
        std::fs::remove_file(&done).unwrap();
        eprintln!(
            "a {mib} MiB primary of {N} packages read ({how}) with a peak of {} MiB",
            peak.mib
        );
        // Holding the decompressed document (or a tree of it) would take
        // more than the whole of it; streaming takes a small fraction.
        assert!(
            peak.mib < mib / 4,
            "reading a {mib} MiB primary ({how}) peaked at {} MiB",
            peak.mib
        );
    }
}

#[test]
#[ignore = "helper: a_primary_of_20000_packages_streams_in_bounded_memory runs it in a child process"]
fn big_primary_child() {
    let Ok(job) = std::env::var(BIG_ENV) else {
        return;
    };
    let mut fields = job.split('\t');
    let (path, n, how) = (
        fields.next().unwrap().to_string(),
        fields.next().unwrap(),
        fields.next().unwrap(),
    );
    let open = {
        let path = path.clone();
        move || -> ingot::repo::Result<Box<dyn std::io::Read + Send>> {
            let f = std::fs::File::open(&path).unwrap();
            Ok(Box::new(ingot::repo::decode::decompress(f).unwrap()))
        }
    };
    let limits = ingot::repo::Limits::default();
    let mut names = 0usize;
    let mut deps = 0usize;
    let mut each = |p: ingot::repo::Package| {
        names += p.name.len();
        deps += p.requires.len() + p.provides.len() + p.files.len();
        Ok(())
    };
    let count = match how {
        "alone" => ingot::repo::xml::read_primary(open().unwrap(), "big primary", &limits, each),
        _ => ingot::repo::pieces::read_primary(
            &open,
            "big primary",
            &limits,
            ingot::repo::pieces::PIECE,
            &mut each,
        ),
    }
    .unwrap();
    assert_eq!(count, n.parse::<u64>().unwrap());
    assert_eq!(deps, count as usize * (12 + 20 + 25));
    assert!(names > 0);
    std::fs::write(format!("{path}.done"), count.to_string()).unwrap();
}

/// repo_gpgcheck read from a `.repo` file, through the library, with
/// signatures gpg makes: binary, or several in one armored file (another
/// key's among them) are accepted; another key's alone, another file's, or
/// none at all are refused, naming the repository and the URL.
#[test]
fn repo_gpgcheck_reads_what_gpg_writes() {
    let cr = need!("createrepo_c");
    let gpg = Gpg::new(need!("gpg"));
    let t = tempfile::tempdir().unwrap();
    let (_, public) = gpg.key("repo-key", "ed25519", t.path());
    gpg.key("other-key", "rsa2048", t.path());
    let repo = createrepo(&cr, &t.path().join("repo"), &[], &[]);
    let repomd = repo.join("repodata/repomd.xml");
    let server = Server::start(&repo);
    let asc_url = server.url("repodata/repomd.xml.asc");
    let text = format!(
        "[signed]\nbaseurl={}\nrepo_gpgcheck=1\ngpgkey=file://{}\n",
        server.url("/"),
        public.display()
    );
    let config = ingot::repo::config::parse_repo_file(
        Path::new("signed.repo"),
        &text,
        &Vars::new("1", "x86_64"),
        None,
        ingot::repo::config::Defaults::default(),
    )
    .unwrap()
    .remove(0);
    assert!(config.repo_gpgcheck && !config.gpgcheck);
    let c = client(&t.path().join("cache"));

    let sig = gpg.detach_sign_with(&["repo-key"], false, &repomd);
    assert_eq!(std::fs::read(&sig).unwrap()[0] & 0x80, 0x80, "binary");
    let r = c.open(&config, &Quiet).unwrap();
    assert!(
        r.keys.is_none(),
        "packages are not checked without gpgcheck"
    );
    gpg.detach_sign_with(&["other-key", "repo-key"], true, &repomd);
    c.open(&config, &Quiet).unwrap();

    gpg.detach_sign_with(&["other-key"], true, &repomd);
    match c.open(&config, &Quiet).unwrap_err() {
        RepoError::RepomdUnknownKey { repo, url, .. } => {
            assert_eq!((repo.as_str(), url.as_str()), ("signed", asc_url.as_str()));
        }
        other => panic!("{other}"),
    }
    let elsewhere = t.path().join("another.xml");
    std::fs::write(&elsewhere, "<repomd/>\n").unwrap();
    let other_sig = gpg.detach_sign("repo-key", &elsewhere);
    std::fs::copy(&other_sig, &sig).unwrap();
    let e = c.open(&config, &Quiet).unwrap_err();
    assert!(matches!(e, RepoError::RepomdBadSignature { .. }), "{e}");
    std::fs::write(&sig, "not a signature\n").unwrap();
    let e = c.open(&config, &Quiet).unwrap_err();
    assert!(matches!(e, RepoError::RepomdBadSignature { .. }), "{e}");
    assert!(e.to_string().contains("BEGIN PGP SIGNATURE"), "{e}");
    std::fs::remove_file(&sig).unwrap();
    let e = c.open(&config, &Quiet).unwrap_err();
    assert!(
        matches!(&e, RepoError::RepomdUnsigned { url, .. } if *url == asc_url),
        "{e}"
    );
}
