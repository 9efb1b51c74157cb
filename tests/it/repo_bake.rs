//! `ingot bake` and `ingot lock` with packages from repositories, end to
//! end: RPMs made by `ingot build` (a library in two versions, an
//! application needing it by soname and a file only the file lists name),
//! a repository made by Debian's `createrepo_c`, served by the loopback
//! server (`repo_server.rs`). The images are judged by GNU tar and by
//! `rpm --root … -qa`/`-V` on what the tarball holds; the lock file by
//! what the commands say and by the bytes of the images baked from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bake::{extract, rpm_in, rpm_out};
use crate::common::{ingot, repo_root, run_ok, stderr, stdout};
use crate::repo_server::Server;
use crate::{need, need_root};

/// One test package: name, version, arch, `[dependencies]` lines, files
/// (destination, content).
struct Pkg {
    name: &'static str,
    version: &'static str,
    arch: &'static str,
    deps: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const LIB_1_0: Pkg = Pkg {
    name: "libdemo",
    version: "1.0",
    arch: "x86_64",
    deps: r#"provides = ["libdemo.so.1()(64bit)"]"#,
    files: &[("/usr/lib64/libdemo.so.1", "library 1.0\n")],
};
const LIB_1_1: Pkg = Pkg {
    name: "libdemo",
    version: "1.1",
    arch: "x86_64",
    deps: r#"provides = ["libdemo.so.1()(64bit)"]"#,
    files: &[("/usr/lib64/libdemo.so.1", "library 1.1\n")],
};
/// Its one file is outside the folders createrepo puts into primary: only
/// the file lists say who has it.
const DATA: Pkg = Pkg {
    name: "demo-data",
    version: "1",
    arch: "noarch",
    deps: "",
    files: &[("/opt/demo/data.dat", "data\n")],
};
const APP: Pkg = Pkg {
    name: "app",
    version: "2.0",
    arch: "x86_64",
    deps: r#"requires = ["libdemo.so.1()(64bit)", "/opt/demo/data.dat"]"#,
    files: &[("/usr/bin/app", "#!/bin/sh\necho app\n")],
};
const BROKEN: Pkg = Pkg {
    name: "broken",
    version: "1",
    arch: "x86_64",
    deps: r#"requires = ["libdemo.so.9()(64bit)"]"#,
    files: &[],
};

/// Build `p` with `ingot build` into `out` (signed with `key` when
/// given); its file.
fn build(p: &Pkg, dir: &Path, out: &Path, key: Option<&Path>) -> PathBuf {
    let src = dir.join(format!("src-{}-{}", p.name, p.version));
    std::fs::create_dir_all(&src).unwrap();
    let mut text = format!(
        "[package]\nname = \"{}\"\nversion = \"{}\"\nrelease = \"1\"\narch = \"{}\"\n\
         summary = \"repo bake test\"\nlicense = \"MIT\"\n\n[dependencies]\nauto = false\n{}\n",
        p.name, p.version, p.arch, p.deps
    );
    for (i, (dest, content)) in p.files.iter().enumerate() {
        let f = src.join(format!("f{i}"));
        std::fs::write(&f, content).unwrap();
        text += &format!(
            "\n[[files]]\nsrc = \"{}\"\ndest = \"{dest}\"\n",
            f.display()
        );
    }
    let spec = dir.join(format!("{}-{}.toml", p.name, p.version));
    std::fs::write(&spec, text).unwrap();
    let mut c = ingot();
    c.arg("build").arg(&spec).arg("--out").arg(out);
    if let Some(k) = key {
        c.arg("--sign-key").arg(k);
    }
    PathBuf::from(stdout(&run_ok(&mut c)).trim())
}

/// The packages built, a repository served on loopback at
/// `/x86_64/` (so the spec's `$basearch` must be substituted).
struct World {
    tmp: tempfile::TempDir,
    createrepo: PathBuf,
    repo: PathBuf,
    newer_lib: PathBuf,
    server: Option<Server>,
}

impl World {
    fn new(createrepo: PathBuf) -> World {
        World::signed(createrepo, None)
    }

    /// The same, every package signed with the secret key `key`.
    fn signed(createrepo: PathBuf, key: Option<&Path>) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let pool = tmp.path().join("pool");
        let newer_lib = build(&LIB_1_1, tmp.path(), &tmp.path().join("later"), key);
        let repo = tmp.path().join("served/x86_64");
        let packages = repo.join("Packages");
        std::fs::create_dir_all(&packages).unwrap();
        for p in [&LIB_1_0, &DATA, &APP, &BROKEN] {
            let f = build(p, tmp.path(), &pool, key);
            std::fs::copy(&f, packages.join(f.file_name().unwrap())).unwrap();
        }
        let w = World {
            server: Some(Server::start(&tmp.path().join("served"))),
            tmp,
            createrepo,
            repo,
            newer_lib,
        };
        w.index();
        w
    }

    fn index(&self) {
        run_ok(
            Command::new(&self.createrepo)
                .arg("-q")
                .arg("--update")
                .arg(&self.repo),
        );
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn port(&self) -> u16 {
        self.server.as_ref().unwrap().port
    }

    /// An image spec in its own folder `dir` installing `install`.
    fn spec(&self, dir: &str, install: &str) -> PathBuf {
        let d = self.path(dir);
        std::fs::create_dir_all(&d).unwrap();
        let base = repo_root().join("fixtures/al2023-standin/rootfs.tar.zst");
        let text = format!(
            "[image]\nname = \"web\"\nbase = \"{}\"\nformats = [\"tar\"]\ninstall = [{install}]\n\n\
             [[image.repos]]\nname = \"demo\"\nbaseurl = \"http://127.0.0.1:{}/$basearch/\"\n",
            base.display(),
            self.port()
        );
        let spec = d.join("web.toml");
        std::fs::write(&spec, text).unwrap();
        spec
    }

    /// `ingot CMD SPEC --cache CACHE ARGS…`, not checked.
    fn ingot(&self, cmd: &str, spec: &Path, cache: &str, args: &[&str]) -> Output {
        ingot()
            .arg(cmd)
            .arg(spec)
            .arg("--cache")
            .arg(self.path(cache))
            .args(args)
            .output()
            .unwrap()
    }

    /// A bake into `out` that must succeed; its tarball.
    fn bake(&self, spec: &Path, out: &str, cache: &str, args: &[&str]) -> PathBuf {
        let out = self.path(out);
        let mut a = vec!["--out", out.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = self.ingot("bake", spec, cache, &a);
        assert!(
            o.status.success(),
            "bake failed ({}):\n{}{}",
            o.status,
            stdout(&o),
            stderr(&o)
        );
        PathBuf::from(stdout(&o).trim())
    }
}

/// Every file of a folder: (name, bytes), sorted.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

/// The packages `rpm -qa` lists in the image the tarball holds, and the
/// root it was extracted to.
fn installed(rpm: &Path, tar: &Path, root: &Path) -> Vec<String> {
    extract(tar, root);
    let mut v: Vec<String> = rpm_out(rpm, root, &["-qa"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn bake_resolves_from_a_repository_locks_and_keeps_to_the_lock() {
    let createrepo = need!("createrepo_c");
    let rpm = need!("rpm");
    need!("tar");
    need_root!("extracting tarballs with their owners for rpm -V");
    let w = World::new(createrepo);
    let spec = w.spec("image", "\"app\"");
    let lock = spec.with_file_name("web.lock");

    // (a) The first bake resolves app, the library by its soname and the
    // data package by a file only the file lists name; writes the lock.
    let o = w.ingot(
        "bake",
        &spec,
        "cache",
        &["--out", w.path("out1").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("+ libdemo-1.0-1.x86_64"),
        "the bake says what the new lock holds:\n{}",
        stderr(&o)
    );
    let tar = PathBuf::from(stdout(&o).trim());
    let lock_text = std::fs::read_to_string(&lock).expect("the lock file beside the spec");
    assert_eq!(
        names(&files_of(spec.parent().unwrap())),
        ["web.lock", "web.toml"],
        "the lock's temporary name is gone"
    );
    for n in ["app", "libdemo", "demo-data"] {
        assert!(
            lock_text.contains(&format!("name = \"{n}\"")),
            "{lock_text}"
        );
    }
    let root = w.path("root1");
    let qa = installed(&rpm, &tar, &root);
    for want in [
        "app-2.0-1.x86_64",
        "libdemo-1.0-1.x86_64",
        "demo-data-1-1.noarch",
    ] {
        assert!(qa.iter().any(|l| l == want), "rpm -qa lacks {want}: {qa:?}");
    }
    assert!(!qa.iter().any(|l| l.starts_with("broken")), "{qa:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("usr/lib64/libdemo.so.1")).unwrap(),
        "library 1.0\n"
    );
    assert!(root.join("opt/demo/data.dat").is_file());
    let v = rpm_in(&rpm, &root)
        .args(["-V", "app", "libdemo", "demo-data"])
        .output()
        .unwrap();
    assert!(
        v.status.success() && v.stdout.is_empty(),
        "rpm -V is not clean:\n{}{}",
        stdout(&v),
        stderr(&v)
    );
    let first = files_of(&w.path("out1"));

    // (b) The repository gains libdemo 1.1: a bake with the lock installs
    // exactly what it did, byte for byte (d: in another folder too).
    std::fs::copy(
        &w.newer_lib,
        w.repo
            .join("Packages")
            .join(w.newer_lib.file_name().unwrap()),
    )
    .unwrap();
    w.index();
    w.bake(&spec, "out2", "cache", &["--locked"]);
    assert_eq!(
        files_of(&w.path("out2")),
        first,
        "--locked changed the image"
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), lock_text);
    w.bake(&spec, "out3", "cache2", &[]);
    assert_eq!(
        files_of(&w.path("out3")),
        first,
        "a matching lock is kept without --locked, whatever the cache"
    );

    // lock --check names the newer version and exits 1; writes nothing.
    let c = w.ingot("lock", &spec, "cache", &["--check"]);
    assert_eq!(c.status.code(), Some(1), "{}{}", stdout(&c), stderr(&c));
    assert!(
        stdout(&c).contains("libdemo.x86_64 upgraded: 1.0-1 -> 1.1-1"),
        "{}",
        stdout(&c)
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), lock_text);
    // Without --upgrade the matching lock stays.
    let same = w.ingot("lock", &spec, "cache", &[]);
    assert!(same.status.success(), "{}", stderr(&same));
    assert!(stdout(&same).contains("up to date"), "{}", stdout(&same));
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), lock_text);

    // lock --upgrade takes it and says so; the next bake installs it.
    let u = w.ingot("lock", &spec, "cache", &["--upgrade"]);
    assert!(u.status.success(), "{}", stderr(&u));
    assert!(
        stdout(&u).contains("~ libdemo.x86_64 upgraded: 1.0-1 -> 1.1-1"),
        "{}",
        stdout(&u)
    );
    assert!(
        std::fs::read_to_string(&lock)
            .unwrap()
            .contains("version = \"1.1\"")
    );
    let c = w.ingot("lock", &spec, "cache", &["--check"]);
    assert_eq!(c.status.code(), Some(0), "{}{}", stdout(&c), stderr(&c));
    let tar4 = w.bake(&spec, "out4", "cache", &["--locked"]);
    let qa = installed(&rpm, &tar4, &w.path("root4"));
    assert!(qa.iter().any(|l| l == "libdemo-1.1-1.x86_64"), "{qa:?}");
    assert_ne!(names(&files_of(&w.path("out4"))), names(&first));
}

/// Exit code, stderr, and whether `out` is empty or absent.
fn failed(o: &Output, out: &Path) -> (Option<i32>, String, bool) {
    let empty = std::fs::read_dir(out).map_or(true, |mut r| r.next().is_none());
    (o.status.code(), stderr(o), empty)
}

/// A command that exited `code`, said each of `says`, and wrote nothing
/// under `out`; what it said.
fn refused(o: &Output, out: &Path, code: i32, says: &[&str]) -> String {
    let (got, err, empty) = failed(o, out);
    assert_eq!(got, Some(code), "{err}");
    for s in says {
        assert!(err.contains(s), "`{s}` not said: {err}");
    }
    assert!(empty, "something written: {err}");
    err
}

#[test]
fn repository_errors_stop_the_bake_and_write_nothing() {
    let createrepo = need!("createrepo_c");
    let mut w = World::new(createrepo);
    let spec = w.spec("image", "\"app\"");
    let lock = spec.with_file_name("web.lock");
    let out = w.path("bad-out");
    let out_arg = ["--out", out.to_str().unwrap()];

    // --locked without a lock: exit 2, nothing written, the fix named.
    let o = w.ingot(
        "bake",
        &spec,
        "cache",
        &[&out_arg[..], &["--locked"]].concat(),
    );
    let err = refused(&o, &out, 2, &["is missing", "ingot lock"]);
    assert!(!lock.exists(), "{err}");

    // A request nothing satisfies: exit 1 with the chain, nothing written.
    let broken = w.spec("broken", "\"broken\"");
    let o = w.ingot("bake", &broken, "cache", &out_arg);
    let err = refused(&o, &out, 1, &["libdemo.so.9()(64bit)"]);
    assert!(!broken.with_file_name("web.lock").exists(), "{err}");

    // A good bake for the lock and the cache.
    w.bake(&spec, "good", "cache", &[]);
    let lock_text = std::fs::read_to_string(&lock).unwrap();
    let good = files_of(&w.path("good"));

    // The locked library's file replaced by other bytes of the same size:
    // the package is named, nothing written, the lock unchanged.
    let lib = std::fs::read_dir(w.repo.join("Packages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("libdemo-1.0-1"))
        .unwrap();
    let original = std::fs::read(&lib).unwrap();
    let mut changed = original.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x5a;
    std::fs::write(&lib, &changed).unwrap();
    let o = w.ingot(
        "bake",
        &spec,
        "cache-fresh",
        &[&out_arg[..], &["--locked"]].concat(),
    );
    refused(&o, &out, 2, &["libdemo-1.0-1.x86_64", "checksum mismatch"]);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), lock_text);
    // ... or gone (404): named with its URL, nothing written.
    std::fs::remove_file(&lib).unwrap();
    let o = w.ingot(
        "bake",
        &spec,
        "cache-fresh",
        &[&out_arg[..], &["--locked"]].concat(),
    );
    refused(
        &o,
        &out,
        2,
        &["libdemo-1.0-1.x86_64.rpm", "not found (HTTP 404)"],
    );
    std::fs::write(&lib, &original).unwrap();

    // A bake that resolves anew but fails later writes no lock either.
    let later = w.spec("later", "\"app\"");
    let text = std::fs::read_to_string(&later).unwrap();
    std::fs::write(
        &later,
        text.replace(
            "[[image.repos]]",
            "[[image.files]]\ndest = \"/etc\"\ncontent = \"x\"\n\n[[image.repos]]",
        ),
    )
    .unwrap();
    let o = w.ingot("bake", &later, "cache", &out_arg);
    let err = refused(&o, &out, 2, &["`/etc` is a folder in the image"]);
    assert!(!later.with_file_name("web.lock").exists(), "{err}");

    // The server gone: the URL in the message, exit 2 or 3.
    let port = w.port();
    drop(w.server.take());
    let o = w.ingot("bake", &spec, "cache-empty", &out_arg);
    let (code, err, empty) = failed(&o, &out);
    assert!(matches!(code, Some(2 | 3)), "{code:?}: {err}");
    assert!(err.contains(&format!("http://127.0.0.1:{port}/")), "{err}");
    assert!(empty, "{err}");

    // --offline works from the cache the good bake filled.
    w.bake(&spec, "offline", "cache", &["--offline"]);
    assert_eq!(files_of(&w.path("offline")), good);
    // ... and says what is missing from an empty one.
    let o = w.ingot(
        "bake",
        &spec,
        "cache-empty",
        &[&out_arg[..], &["--offline"]].concat(),
    );
    refused(&o, &out, 2, &["offline", "app-2.0-1.x86_64"]);
}

#[test]
fn a_repository_key_checks_every_package_the_bake_installs() {
    let createrepo = need!("createrepo_c");
    let gpg = crate::common::Gpg::new(need!("gpg"));
    let keys = tempfile::tempdir().unwrap();
    let (secret, public) = gpg.key("repo-key", "ed25519", keys.path());
    let (_, other) = gpg.key("other-key", "ed25519", keys.path());
    let w = World::signed(createrepo, Some(&secret));
    let with_key = |dir: &str, key: &Path| {
        let spec = w.spec(dir, "\"app\"");
        std::fs::copy(key, spec.with_file_name("key.asc")).unwrap();
        let text = std::fs::read_to_string(&spec).unwrap();
        std::fs::write(&spec, format!("{text}gpgkey = \"key.asc\"\n")).unwrap();
        spec
    };
    // Signed with the repository's key: baked.
    let good = with_key("good", &public);
    w.bake(&good, "good-out", "cache", &[]);
    assert!(good.with_file_name("web.lock").is_file());
    // Another key: refused, naming a package and the repository, even
    // with every package already in the cache; nothing written.
    let wrong = with_key("wrong", &other);
    let out = w.path("wrong-out");
    let o = w.ingot("bake", &wrong, "cache", &["--out", out.to_str().unwrap()]);
    let err = refused(&o, &out, 2, &["does not trust", "repository `demo`"]);
    assert!(!wrong.with_file_name("web.lock").exists(), "{err}");
}

#[test]
fn use_base_repos_takes_the_enabled_repositories_the_base_names() {
    let createrepo = need!("createrepo_c");
    let tar = need!("tar");
    need!("zstd");
    let w = World::new(createrepo);
    // A folder base: the stand-in with a .repo file naming the server,
    // and a disabled repository nothing answers for.
    let base = w.path("base");
    std::fs::create_dir_all(&base).unwrap();
    run_ok(
        Command::new(tar)
            .args(["--zstd", "-xf"])
            .arg(repo_root().join("fixtures/al2023-standin/rootfs.tar.zst"))
            .arg("-C")
            .arg(&base),
    );
    std::fs::create_dir_all(base.join("etc/yum.repos.d")).unwrap();
    std::fs::write(
        base.join("etc/yum.repos.d/demo.repo"),
        format!(
            "[demo]\nname=Demo\nbaseurl=http://127.0.0.1:{}/$basearch/\nenabled=1\ngpgcheck=0\n\n\
             [off]\nname=Off\nbaseurl=http://127.0.0.1:1/nothing/\nenabled=0\n",
            w.port()
        ),
    )
    .unwrap();
    let dir = w.path("image");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("web.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"web\"\nbase = \"{}\"\nformats = [\"tar\"]\ninstall = [\"app\"]\n\
             use_base_repos = true\n",
            base.display()
        ),
    )
    .unwrap();
    let image = w.bake(&spec, "out", "cache", &[]);
    let listed = stdout(&run_ok(Command::new("tar").arg("-tf").arg(&image)));
    for f in ["usr/bin/app", "usr/lib64/libdemo.so.1", "opt/demo/data.dat"] {
        assert!(
            listed.lines().any(|l| l.trim_start_matches("./") == f),
            "the image lacks {f}"
        );
    }
    let lock = std::fs::read_to_string(dir.join("web.lock")).unwrap();
    assert!(lock.contains("repo = \"demo\""), "{lock}");
    assert!(!lock.contains("repo = \"off\""), "{lock}");
}

#[test]
fn lock_download_fills_the_cache_so_an_offline_bake_needs_no_network() {
    let createrepo = need!("createrepo_c");
    let rpm = need!("rpm");
    need!("tar");
    need_root!("extracting tarballs with their owners for rpm -qa");
    let mut w = World::new(createrepo);
    let spec = w.spec("image", "\"app\"");
    let lock = spec.with_file_name("web.lock");

    let o = w.ingot("lock", &spec, "cache", &["--download", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(doc["written"], true, "{doc}");
    assert_eq!(doc["download"]["packages"], 3, "{doc}");
    assert_eq!(doc["download"]["downloaded"], 3, "{doc}");
    let lock_text = std::fs::read_to_string(&lock).expect("the lock file");
    // Each locked package is in the cache under its SHA-256, as the lock
    // says, and is the very file the repository serves.
    let mut sums = Vec::new();
    for line in lock_text.lines() {
        if let Some(h) = line.strip_prefix("sha256 = \"") {
            sums.push(h.trim_end_matches('"').to_string());
        }
    }
    assert_eq!(sums.len(), 3, "{lock_text}");
    for h in &sums {
        let cached = w.path("cache").join("sha256").join(&h[..2]).join(h);
        let bytes = std::fs::read(&cached).unwrap_or_else(|e| panic!("{}: {e}", cached.display()));
        let k = stdout(&run_ok(
            Command::new(&rpm)
                .args(["-K", "--nosignature"])
                .arg(&cached),
        ));
        assert!(k.trim_end().ends_with("digests OK"), "rpm -K: {k}");
        use sha2::Digest as _;
        assert_eq!(&hex::encode(sha2::Sha256::digest(&bytes)), h);
    }

    // The repository goes away: the bake takes everything from the cache.
    drop(w.server.take());
    let tar = w.bake(&spec, "out", "cache", &["--offline", "--locked"]);
    let qa = installed(&rpm, &tar, &w.path("root"));
    for want in [
        "app-2.0-1.x86_64",
        "libdemo-1.0-1.x86_64",
        "demo-data-1-1.noarch",
    ] {
        assert!(qa.iter().any(|l| l == want), "rpm -qa lacks {want}: {qa:?}");
    }
    // A second lock --download has nothing to fetch and asks nothing.
    let again = w.ingot("lock", &spec, "cache", &["--download"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("up to date")
            && stdout(&again).contains("3 package(s) in the cache: 0 downloaded"),
        "{}",
        stdout(&again)
    );
    // --download with --check is a usage error.
    let both = w.ingot("lock", &spec, "cache", &["--download", "--check"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

#[test]
fn a_failed_lock_download_leaves_the_lock_file_as_it_was() {
    let createrepo = need!("createrepo_c");
    let gpg = crate::common::Gpg::new(need!("gpg"));
    let keys = tempfile::tempdir().unwrap();
    let (secret, _) = gpg.key("repo-key", "ed25519", keys.path());
    let (_, other) = gpg.key("other-key", "ed25519", keys.path());
    let w = World::signed(createrepo, Some(&secret));
    let spec = w.spec("image", "\"app\"");
    std::fs::copy(&other, spec.with_file_name("key.asc")).unwrap();
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text}gpgkey = \"key.asc\"\n")).unwrap();
    // The packages are signed by a key the spec does not trust: the
    // resolution succeeds, the download's check fails, no lock is written.
    let o = w.ingot("lock", &spec, "cache", &["--download"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not trust"), "{}", stderr(&o));
    assert!(!spec.with_file_name("web.lock").exists());
    // Without --download the same lock succeeds (nothing is fetched).
    let o = w.ingot("lock", &spec, "cache2", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(spec.with_file_name("web.lock").is_file());
}

/// The exit code and stderr of `ingot lock` on `spec`; whether the lock
/// beside it exists afterwards.
fn lock_run(w: &World, spec: &Path, cache: &str, args: &[&str]) -> (Option<i32>, String, bool) {
    let o = w.ingot("lock", spec, cache, args);
    let written = spec.with_file_name("web.lock").exists();
    (o.status.code(), stderr(&o), written)
}

/// repo_gpgcheck: the index's detached signature, made by `gpg
/// --detach-sign --armor` with a throwaway key, is checked over the exact
/// bytes of repomd.xml before anything it lists is trusted; online, and
/// again from the cache offline.
#[test]
fn repo_gpgcheck_takes_only_an_index_signed_with_the_repository_key() {
    let createrepo = need!("createrepo_c");
    let gpg = crate::common::Gpg::new(need!("gpg"));
    let keys = tempfile::tempdir().unwrap();
    let (secret, public) = gpg.key("repo-key", "ed25519", keys.path());
    gpg.key("other-key", "ed25519", keys.path());
    let w = World::signed(createrepo, Some(&secret));
    let repomd = w.repo.join("repodata/repomd.xml");
    let asc = repomd.with_file_name("repomd.xml.asc");
    let spec = |dir: &str| {
        let spec = w.spec(dir, "\"app\"");
        std::fs::copy(&public, spec.with_file_name("key.asc")).unwrap();
        let text = std::fs::read_to_string(&spec).unwrap();
        std::fs::write(
            &spec,
            format!("{text}gpgkey = \"key.asc\"\nrepo_gpgcheck = true\n"),
        )
        .unwrap();
        spec
    };
    let port = w.port();
    let asc_url = format!("http://127.0.0.1:{port}/x86_64/repodata/repomd.xml.asc");

    // Signed with the repository's key: locked.
    gpg.detach_sign("repo-key", &repomd);
    let good = spec("good");
    let (code, err, written) = lock_run(&w, &good, "cache", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(written, "{err}");

    // No signature at all: exit 2, the repository and the URL named.
    std::fs::remove_file(&asc).unwrap();
    let (code, err, written) = lock_run(&w, &spec("missing"), "cache", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("repository `demo`")
            && err.contains("has no signature")
            && err.contains(&asc_url),
        "{err}"
    );
    assert!(!written, "{err}");

    // Signed by another key: not trusted.
    gpg.detach_sign("other-key", &repomd);
    let (code, err, written) = lock_run(&w, &spec("other"), "cache", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("repository `demo`")
            && err.contains("does not trust")
            && err.contains(&asc_url),
        "{err}"
    );
    assert!(!written, "{err}");

    // Signed with the key, then changed (a space at its end, which the
    // XML reader would not notice): the signature does not verify.
    gpg.detach_sign("repo-key", &repomd);
    let signed = std::fs::read(&repomd).unwrap();
    std::fs::write(&repomd, [&signed[..], b" "].concat()).unwrap();
    let (code, err, written) = lock_run(&w, &spec("tampered"), "cache", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("repository `demo`")
            && err.contains("does not verify")
            && err.contains(&asc_url),
        "{err}"
    );
    assert!(!written, "{err}");
    std::fs::write(&repomd, &signed).unwrap();

    // Offline, the index kept in the cache is checked again: with its
    // signature, it locks; its kept signature gone, or the kept index
    // changed, it does not.
    let offline = spec("offline");
    let (code, err, written) = lock_run(&w, &offline, "cache", &["--offline"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(written, "{err}");
    std::fs::remove_file(offline.with_file_name("web.lock")).unwrap();
    let kept = walkdir::WalkDir::new(w.path("cache/repos"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.ends_with("repomd.xml"))
        .expect("the index kept in the cache");
    let kept_asc = kept.with_file_name("repomd.xml.asc");
    assert!(kept_asc.is_file(), "the signature is kept beside the index");
    let kept_sig = std::fs::read(&kept_asc).unwrap();
    std::fs::remove_file(&kept_asc).unwrap();
    let (code, err, written) = lock_run(&w, &offline, "cache", &["--offline"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("has no signature") && err.contains("repomd.xml.asc"),
        "{err}"
    );
    assert!(!written, "{err}");
    std::fs::write(&kept_asc, &kept_sig).unwrap();
    let kept_index = std::fs::read(&kept).unwrap();
    std::fs::write(&kept, [&kept_index[..], b"\n"].concat()).unwrap();
    let (code, err, written) = lock_run(&w, &offline, "cache", &["--offline"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not verify"), "{err}");
    assert!(!written, "{err}");

    // repo_gpgcheck without a key is refused where it is written.
    let nokey = w.spec("nokey", "\"app\"");
    let text = std::fs::read_to_string(&nokey).unwrap();
    std::fs::write(&nokey, format!("{text}repo_gpgcheck = true\n")).unwrap();
    let (code, err, written) = lock_run(&w, &nokey, "cache", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no gpgkey"), "{err}");
    assert!(!written, "{err}");
}

/// A folder base (the stand-in) whose `/etc/yum.repos.d/demo.repo` is
/// `repo_file`, and a spec in `dir` that installs `app` from the base's
/// repositories.
fn base_repo_spec(w: &World, tar: &Path, dir: &str, repo_file: &str) -> PathBuf {
    let base = w.path(&format!("{dir}-base"));
    std::fs::create_dir_all(&base).unwrap();
    run_ok(
        Command::new(tar)
            .args(["--zstd", "-xf"])
            .arg(repo_root().join("fixtures/al2023-standin/rootfs.tar.zst"))
            .arg("-C")
            .arg(&base),
    );
    std::fs::create_dir_all(base.join("etc/yum.repos.d")).unwrap();
    std::fs::write(base.join("etc/yum.repos.d/demo.repo"), repo_file).unwrap();
    let d = w.path(dir);
    std::fs::create_dir_all(&d).unwrap();
    let spec = d.join("web.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"web\"\nbase = \"{}\"\nformats = [\"tar\"]\ninstall = [\"app\"]\n\
             use_base_repos = true\n",
            base.display()
        ),
    )
    .unwrap();
    spec
}

/// A metalink as MirrorManager writes one: `hashes` of repomd.xml (type,
/// hex), then `urls` (preference, URL).
fn metalink_xml(hashes: &[(&str, String)], urls: &[(u32, String)]) -> String {
    let hashes: String = hashes
        .iter()
        .map(|(t, h)| format!("    <hash type=\"{t}\">{h}</hash>\n"))
        .collect();
    let urls: String = urls
        .iter()
        .map(|(p, u)| format!("    <url protocol=\"http\" type=\"http\" location=\"US\" preference=\"{p}\">{u}</url>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\" type=\"dynamic\" \
         xmlns:mm0=\"http://fedorahosted.org/mirrormanager\">\n <files>\n  <file name=\"repomd.xml\">\n\
         <mm0:timestamp>1700000000</mm0:timestamp>\n   <verification>\n    <hash type=\"md5\">{}</hash>\n{hashes}   </verification>\n\
         <resources maxconnections=\"1\">\n{urls}   </resources>\n  </file>\n </files>\n</metalink>\n",
        "0".repeat(32)
    )
}

/// metalink=: the mirrors a metalink lists (a dead one preferred, then
/// the live one), and the hashes the repomd.xml fetched must have.
#[test]
fn a_metalink_gives_the_mirrors_and_the_hash_of_the_index() {
    use sha2::Digest as _;
    let createrepo = need!("createrepo_c");
    let tar = need!("tar");
    need!("zstd");
    let w = World::new(createrepo);
    let port = w.port();
    let repomd = std::fs::read(w.repo.join("repodata/repomd.xml")).unwrap();
    let sha256 = hex::encode(sha2::Sha256::digest(&repomd));
    let sha512 = hex::encode(sha2::Sha512::digest(&repomd));
    let mirror = |path: &str| format!("http://127.0.0.1:{port}/{path}repodata/repomd.xml");
    let urls = vec![
        (50, mirror("x86_64/")),
        (100, mirror("gone/")),
        (10, "ftp://ignored.invalid/repodata/repomd.xml".to_string()),
    ];
    let served = w.path("served/x86_64/metalink.xml");
    let metalink_url = format!("http://127.0.0.1:{port}/x86_64/metalink.xml");
    let repo_file = format!(
        "[demo]\nname=Demo\nmetalink=http://127.0.0.1:{port}/$basearch/metalink.xml\nenabled=1\ngpgcheck=0\n"
    );
    let spec = base_repo_spec(&w, &tar, "good", &repo_file);

    // The right hashes: locked from the live mirror.
    std::fs::write(
        &served,
        metalink_xml(&[("sha256", sha256.clone()), ("sha512", sha512)], &urls),
    )
    .unwrap();
    let (code, err, written) = lock_run(&w, &spec, "cache", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(written, "{err}");
    let lock = std::fs::read_to_string(spec.with_file_name("web.lock")).unwrap();
    assert!(
        lock.contains("name = \"app\"") && lock.contains("repo = \"demo\""),
        "{lock}"
    );
    // ... and a bake from that lock fetches the packages from the
    // metalink's mirrors.
    let out = w.path("good-out");
    let o = w.ingot(
        "bake",
        &spec,
        "cache-bake",
        &["--out", out.to_str().unwrap(), "--locked"],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // A hash the index does not have: exit 2, the metalink named.
    let wrong = "ab".repeat(32);
    std::fs::write(&served, metalink_xml(&[("sha256", wrong)], &urls)).unwrap();
    std::fs::remove_file(spec.with_file_name("web.lock")).unwrap();
    let (code, err, written) = lock_run(&w, &spec, "cache", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("has none of the hashes its metalink")
            && err.contains(&metalink_url)
            && err.contains(&sha256),
        "{err}"
    );
    assert!(!written, "{err}");

    // A metalink that does not parse, or is too large: exit 2, named.
    for (text, want) in [
        (
            "<metalink><files><file name=\"repomd.xml\">".to_string(),
            "ends inside",
        ),
        (
            "<html>502 Bad Gateway</html>".to_string(),
            "not `<metalink>`",
        ),
        (
            format!("<metalink>{}</metalink>", " ".repeat(16 << 20)),
            "max_index",
        ),
    ] {
        std::fs::write(&served, text).unwrap();
        let (code, err, written) = lock_run(&w, &spec, "cache", &[]);
        assert_eq!(code, Some(2), "{want}: {err}");
        assert!(err.contains(&metalink_url) && err.contains(want), "{err}");
        assert!(!written, "{err}");
    }
}

/// The spec's own `metalink` key: the mirrors it lists, and the hash the
/// index must have, as from a base's `.repo` file.
#[test]
fn a_spec_metalink_gives_the_mirrors_and_the_hash_of_the_index() {
    use sha2::Digest as _;
    let createrepo = need!("createrepo_c");
    let w = World::new(createrepo);
    let port = w.port();
    let repomd = std::fs::read(w.repo.join("repodata/repomd.xml")).unwrap();
    let sha256 = hex::encode(sha2::Sha256::digest(&repomd));
    let urls = vec![(
        100,
        format!("http://127.0.0.1:{port}/x86_64/repodata/repomd.xml"),
    )];
    let served = w.path("served/x86_64/metalink.xml");
    let spec = w.spec("own", "\"app\"");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        &format!("baseurl = \"http://127.0.0.1:{port}/$basearch/\""),
        &format!("metalink = \"http://127.0.0.1:{port}/$basearch/metalink.xml\""),
    );
    assert!(text.contains("metalink = "), "{text}");
    std::fs::write(&spec, text).unwrap();

    std::fs::write(&served, metalink_xml(&[("sha256", sha256.clone())], &urls)).unwrap();
    let (code, err, written) = lock_run(&w, &spec, "cache", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(written, "{err}");
    let lock = std::fs::read_to_string(spec.with_file_name("web.lock")).unwrap();
    assert!(lock.contains("name = \"app\""), "{lock}");

    // The index's hash is not among the metalink's: exit 2, nothing
    // written.
    std::fs::write(&served, metalink_xml(&[("sha256", "cd".repeat(32))], &urls)).unwrap();
    std::fs::remove_file(spec.with_file_name("web.lock")).unwrap();
    let (code, err, written) = lock_run(&w, &spec, "cache", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("has none of the hashes its metalink") && err.contains(&sha256),
        "{err}"
    );
    assert!(!written, "{err}");
}

/// SIGINT while packages are being downloaded: exit 130, no lock file,
/// and nothing in the cache but complete, checked files: the partial
/// downloads (in the cache's work folder) are removed.
#[test]
fn a_signal_during_a_download_leaves_no_partial_file_in_the_cache() {
    use crate::repo_server::Fault;
    use std::time::{Duration, Instant};
    let createrepo = need!("createrepo_c");
    let w = World::new(createrepo);
    let spec = w.spec("image", "\"app\"");
    let server = w.server.as_ref().unwrap();
    // Every package sends half its bytes, then stalls.
    for e in std::fs::read_dir(w.repo.join("Packages")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        server.fail(&format!("x86_64/Packages/{name}"), &[Fault::StallMidway]);
    }
    let cache = w.path("cache");
    let mut child = ingot()
        .args(["lock", "--download", "--cache"])
        .arg(&cache)
        .arg(&spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (on a condition, not a clock) until a partial download is on
    // disk.
    let files_under = |dir: &Path| -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    todo.push(e.path());
                } else {
                    out.push((e.path(), m.len()));
                }
            }
        }
        out
    };
    let start = Instant::now();
    while !files_under(&cache.join("tmp")).iter().any(|(_, n)| *n > 0) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no partial download appeared under {}",
            cache.join("tmp").display()
        );
        assert!(child.try_wait().unwrap().is_none(), "ingot ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child, not reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!spec.with_file_name("web.lock").exists(), "{err}");
    let left = files_under(&cache.join("tmp"));
    assert!(left.is_empty(), "left in the cache's tmp: {left:?}");
    let dirs: Vec<_> = std::fs::read_dir(cache.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(dirs.is_empty(), "work folders left: {dirs:?}");
    // No package reached its final name either.
    let sha = files_under(&cache.join("sha256"));
    let pkgs = sha.iter().filter(|(p, n)| {
        std::fs::read(p).is_ok_and(|b| b.starts_with(&[0xed, 0xab, 0xee, 0xdb])) && *n > 0
    });
    assert_eq!(pkgs.count(), 0, "{sha:?}");
}
