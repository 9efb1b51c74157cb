//! `ingot bake` judged by the real tools: the tarball it writes is
//! extracted with GNU tar, and rpm 4.18 (`rpm -qa/-qi/-ql/-qf/-V/-e`,
//! `rpmdb --verifydb`) must recognise what ingot installed, exactly as if
//! `rpm -i --root` had installed it. Also: the manifest, reproducibility,
//! dependency, pin, conflict and unit errors, upgrades, bounded memory, a
//! real Amazon Linux 2023 database, and never a partial output.
//!
//! Every test works in its own temporary folder on a private copy of the
//! repository's `specs/` and `fixtures/`. Tests that extract tarballs with
//! their owners need root, and some use `../shared/fixtures`: without them
//! they skip outside CI and fail under it (`common`'s rule).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::common::{copy_dir, ingot, repo_root, run_ok, stderr, stdout};
use crate::{need, need_root};

// ------------------------------------------------------------- helpers

/// `../shared/fixtures` beside the repository (by the skip rule).
fn shared_fixtures() -> Option<PathBuf> {
    crate::common::shared("").map(|p| p.canonicalize().unwrap())
}

pub(crate) fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(p).unwrap(), &mut h).unwrap();
    hex::encode(h.finalize())
}

/// A temporary folder holding a copy of the repository's `specs/` and
/// `fixtures/` (image specs name their base as `../fixtures/...`).
struct Workspace {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        crate::common::copy_specs_tar_only(&dir.join("specs"));
        copy_dir(&repo_root().join("fixtures"), &dir.join("fixtures"));
        Workspace { _tmp: tmp, dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The stand-in base of the committed example.
    fn base(&self) -> PathBuf {
        self.path("fixtures/al2023-standin/rootfs.tar.zst")
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// A minimal package spec (no automatic dependencies) with `body` appended.
fn package_spec(name: &str, version: &str, body: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "{version}"
release = "1"
arch = "noarch"
summary = "Test package {name}"
description = "A package made by the bake tests."
license = "MIT"

[dependencies]
auto = false

{body}

[[changelog]]
date = 2024-01-01
author = "tests <tests@example.invalid> - {version}-1"
text = "- test"
"#
    )
}

/// An image spec on the stand-in base of the workspace (spec in `specs/`).
fn image_spec(name: &str, packages: &[&str]) -> String {
    let list: Vec<String> = packages.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[image]\nname = \"{name}\"\nbase = \"../fixtures/al2023-standin/rootfs.tar.zst\"\n\
         packages = [{}]\nformats = [\"tar\"]\n",
        list.join(", ")
    )
}

fn bake_cmd(spec: &Path, out: &Path) -> Command {
    let mut c = ingot();
    c.arg("bake").arg(spec).arg("--out").arg(out);
    c
}

/// What a successful bake left in its output folder.
struct Baked {
    tar: PathBuf,
    manifest: PathBuf,
    json: serde_json::Value,
    stdout: String,
    stderr: String,
}

/// Check that `o` succeeded and that `out` holds the tarball, its
/// manifest and possibly other outputs of the same name (an SBOM), and
/// nothing else (no temporary files, no work folder).
fn baked(out: &Path, o: &Output) -> Baked {
    assert!(
        o.status.success(),
        "ingot bake failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    let names = listing(out);
    let tars: Vec<&String> = names.iter().filter(|n| n.ends_with(".tar")).collect();
    assert_eq!(tars.len(), 1, "--out should hold one tarball: {names:?}");
    let stem = tars[0].trim_end_matches(".tar");
    let manifest = format!("{stem}.manifest.json");
    assert!(
        names.contains(&manifest),
        "--out lacks {manifest}: {names:?}"
    );
    let strays: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with(&format!("{stem}.")))
        .collect();
    assert!(
        strays.is_empty(),
        "--out holds files that are not outputs of this bake: {strays:?}"
    );
    let text = std::fs::read_to_string(out.join(&manifest)).unwrap();
    // Every test works under the temporary folder: no host path of it (or
    // of the repository) may reach a manifest.
    for host in [std::env::temp_dir(), repo_root()] {
        let host = host.display().to_string();
        assert!(
            !text.contains(&host),
            "the manifest holds the host path `{host}`:\n{text}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the manifest is not JSON ({e}):\n{text}"));
    Baked {
        tar: out.join(tars[0]),
        manifest: out.join(manifest),
        json,
        stdout: stdout(o),
        stderr: stderr(o),
    }
}

fn bake_ok(cmd: &mut Command, out: &Path) -> Baked {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    baked(out, &o)
}

/// Names in a folder, sorted; empty when it does not exist.
fn listing(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A failed bake: exit `code`, stderr naming every needle.
fn assert_fails(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{err}",
        stdout(o)
    );
    for n in needles {
        assert!(err.contains(n), "the error should name `{n}`:\n{err}");
    }
}

/// `out` must not exist (ingot created it) or hold only `kept`.
fn assert_nothing_left(out: &Path, kept: &[&str]) {
    let names = listing(out);
    if kept.is_empty() {
        assert!(
            !out.exists(),
            "--out {} was left behind after a failure, holding {names:?}",
            out.display()
        );
    } else {
        assert_eq!(names, kept, "a failed bake left files in --out");
    }
}

/// Extract a tarball with GNU tar, owners and modes included (as root),
/// and xattrs (for file capabilities).
pub(crate) fn extract(tar: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"])
            .arg(tar)
            .arg("-C")
            .arg(dest),
    );
}

/// `rpm --root R --dbpath /var/lib/rpm` (Debian's rpm needs the dbpath).
pub(crate) fn rpm_in(rpm: &Path, root: &Path) -> Command {
    let mut c = Command::new(rpm);
    c.arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm"]);
    c
}

pub(crate) fn rpm_out(rpm: &Path, root: &Path, args: &[&str]) -> String {
    stdout(&run_ok(rpm_in(rpm, root).args(args)))
}

/// Names of the entries a tarball lists (`./` stripped).
fn tar_members(tar: &Path) -> Vec<String> {
    let o = run_ok(Command::new("tar").arg("-tf").arg(tar));
    stdout(&o)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

/// The name under which a tarball holds `rel` (with or without `./`).
fn raw_member(tar: &Path, rel: &str) -> String {
    let o = run_ok(Command::new("tar").arg("-tf").arg(tar));
    stdout(&o)
        .lines()
        .find(|l| l.trim_start_matches("./") == rel)
        .unwrap_or_else(|| panic!("{} holds no {rel}", tar.display()))
        .to_string()
}

/// A field of `/etc/passwd`-style text: the line whose first field is
/// `name`, split.
fn account_line(text: &str, name: &str) -> Option<Vec<String>> {
    text.lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.first().is_some_and(|n| n == name))
}

/// A read-only view of a database file that creates no `-wal`/`-shm`.
pub(crate) fn open_db_immutable(p: &Path) -> rusqlite::Connection {
    use rusqlite::OpenFlags;
    rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", p.display()),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap()
}

/// The record with the highest hnum, and every index row of it as
/// `table|quote(key)|idx`, sorted.
pub(crate) fn newest_record(conn: &rusqlite::Connection) -> (u32, Vec<u8>, Vec<String>) {
    let (hnum, blob): (u32, Vec<u8>) = conn
        .query_row(
            "SELECT hnum, blob FROM Packages ORDER BY hnum DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let tables = crate::common::rpmdb_log::index_tables(conn);
    let mut rows = Vec::new();
    for t in tables {
        let mut st = conn
            .prepare(&format!(
                "SELECT quote(key), idx FROM \"{t}\" WHERE hnum = ?1"
            ))
            .unwrap();
        let it = st
            .query_map([hnum], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .unwrap();
        for r in it {
            let (k, i) = r.unwrap();
            rows.push(format!("{t}|{k}|{i}"));
        }
    }
    rows.sort();
    (hnum, blob, rows)
}

/// Every entry of an extracted tree, as one comparable line per path:
/// mode, owner, extended attributes, and for files size, digest, mtime and
/// the other paths of its hard link set; for symlinks the target; for
/// devices the numbers. Directory times are left out (rpm gives folders it
/// creates the time it runs), and so is `/var/lib/rpm` (the database is
/// judged by rpm itself).
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut sets: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let rel = format!(
            "/{}",
            e.path().strip_prefix(root).unwrap().to_string_lossy()
        );
        if rel == "/var/lib/rpm" || rel.starts_with("/var/lib/rpm/") {
            continue;
        }
        let m = e.path().symlink_metadata().unwrap();
        let ft = m.file_type();
        let mut line = format!("mode {:o} owner {}:{}", m.mode(), m.uid(), m.gid());
        if ft.is_symlink() {
            let t = std::fs::read_link(e.path()).unwrap();
            line.push_str(&format!(" -> {}", t.display()));
        } else if ft.is_file() {
            line.push_str(&format!(
                " size {} sha256 {} mtime {}",
                m.len(),
                sha256_file(e.path()),
                m.mtime()
            ));
            if m.nlink() > 1 {
                sets.entry((m.dev(), m.ino()))
                    .or_default()
                    .push(rel.clone());
            }
        } else if !ft.is_dir() {
            line.push_str(&format!(" rdev {:x}", m.rdev()));
        }
        let mut names: Vec<_> = xattr::list(e.path())
            .map(|l| l.collect())
            .unwrap_or_default();
        names.sort();
        for n in names {
            let v = xattr::get(e.path(), &n).ok().flatten().unwrap_or_default();
            line.push_str(&format!(
                " xattr {}={}",
                n.to_string_lossy(),
                hex::encode(v)
            ));
        }
        out.insert(rel, line);
    }
    for paths in sets.values() {
        for p in paths {
            let others: Vec<&str> = paths
                .iter()
                .filter(|o| *o != p)
                .map(String::as_str)
                .collect();
            if let Some(l) = out.get_mut(p) {
                l.push_str(&format!(" hardlinked with {}", others.join(",")));
            }
        }
    }
    out
}

/// Differences between rpm's tree and ingot's, one line each.
pub(crate) fn tree_diff(
    rpm: &BTreeMap<String, String>,
    ingot: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut d = Vec::new();
    for (p, l) in rpm {
        match ingot.get(p) {
            None => d.push(format!("only in rpm's tree: {p} ({l})")),
            Some(g) if g != l => d.push(format!("{p}: rpm `{l}`, ingot `{g}`")),
            Some(_) => {}
        }
    }
    for (p, l) in ingot {
        if !rpm.contains_key(p) {
            d.push(format!("only in ingot's tree: {p} ({l})"));
        }
    }
    d
}

// ------------------------------------------- 1. the example, judged by rpm

#[test]
fn the_example_image_is_recognised_verified_and_removable_by_rpm() {
    let rpm = need!("rpm");
    let rpmdb = need!("rpmdb");
    need!("tar");
    need_root!("extracting tarballs with their owners");
    let ws = Workspace::new();
    let out = ws.path("out");
    let b = bake_ok(
        &mut bake_cmd(&ws.path("specs/hello-image.toml"), &out),
        &out,
    );
    assert_eq!(
        b.stdout.trim(),
        b.tar.display().to_string(),
        "bake prints the image's path"
    );

    // The database is shipped checkpointed: no -wal/-shm in the tarball.
    let members = tar_members(&b.tar);
    assert!(members.iter().any(|m| m == "var/lib/rpm/rpmdb.sqlite"));
    let stray: Vec<&String> = members
        .iter()
        .filter(|m| m.starts_with("var/lib/rpm/rpmdb.sqlite-"))
        .collect();
    assert!(stray.is_empty(), "the tarball holds {stray:?}");

    let r = ws.path("root");
    extract(&b.tar, &r);
    let stray: Vec<String> = listing(&r.join("var/lib/rpm"))
        .into_iter()
        .filter(|n| n.ends_with("-wal") || n.ends_with("-shm"))
        .collect();
    assert!(
        stray.is_empty(),
        "extracted database has {stray:?} beside it"
    );

    // -qa: the stand-in's packages and hello.
    let qa = rpm_out(&rpm, &r, &["-qa", "--qf", "%{NAME}\n"]);
    let names: BTreeSet<&str> = qa.lines().collect();
    for n in [
        "bash",
        "filesystem",
        "python3",
        "rpm",
        "setup",
        "shadow-utils",
        "system-release",
        "systemd",
        "hello",
    ] {
        assert!(names.contains(n), "rpm -qa lacks {n}:\n{qa}");
    }
    let qi = rpm_out(&rpm, &r, &["-qi", "hello"]);
    assert!(
        qi.lines().any(|l| l.starts_with("Install Date:")),
        "-qi hello has no Install Date:\n{qi}"
    );
    assert!(!qi.contains("(not installed)"), "-qi hello:\n{qi}");
    let ql = rpm_out(&rpm, &r, &["-ql", "hello"]);
    for f in [
        "/usr/bin/hello-server",
        "/etc/hello/hello.conf",
        "/usr/lib/systemd/system/hello.service",
        "/var/lib/hello",
    ] {
        assert!(ql.lines().any(|l| l == f), "-ql hello lacks {f}:\n{ql}");
    }
    assert_eq!(
        rpm_out(&rpm, &r, &["-qf", "/usr/bin/hello-server"]).trim(),
        "hello-1.0.0-1.noarch"
    );
    assert_eq!(
        rpm_out(&rpm, &r, &["-q", "--whatprovides", "user(hello)"]).trim(),
        "hello-1.0.0-1.noarch"
    );
    assert!(
        rpm_out(&rpm, &r, &["-q", "--whatprovides", "/usr/bin/python3"]).starts_with("python3-"),
        "nothing provides /usr/bin/python3"
    );

    // -V is clean (ownership included: the tree's passwd has hello).
    let v = rpm_in(&rpm, &r)
        .args(["-V", "--nodeps", "hello"])
        .output()
        .unwrap();
    assert!(
        v.status.success() && v.stdout.is_empty(),
        "rpm -V hello is not clean ({}):\n{}{}",
        v.status,
        stdout(&v),
        stderr(&v)
    );
    run_ok(Command::new(&rpmdb).arg("--root").arg(&r).args([
        "--dbpath",
        "/var/lib/rpm",
        "--verifydb",
    ]));

    // The unit is enabled as `systemctl preset` would.
    let wants = r.join("etc/systemd/system/multi-user.target.wants/hello.service");
    assert_eq!(
        std::fs::read_link(&wants).unwrap_or_else(|e| panic!("{}: {e}", wants.display())),
        PathBuf::from("/usr/lib/systemd/system/hello.service")
    );

    // The account, in all four files, owning its folder.
    let text = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
    let pw = account_line(&text("etc/passwd"), "hello").expect("no hello in /etc/passwd");
    let gr = account_line(&text("etc/group"), "hello").expect("no hello in /etc/group");
    assert!(
        account_line(&text("etc/shadow"), "hello").is_some(),
        "no hello in /etc/shadow"
    );
    assert!(
        account_line(&text("etc/gshadow"), "hello").is_some(),
        "no hello in /etc/gshadow"
    );
    let uid: u32 = pw[2].parse().unwrap();
    let gid: u32 = gr[2].parse().unwrap();
    assert_eq!(pw[3], gr[2], "hello's primary group is its own group");
    let st = r.join("var/lib/hello").symlink_metadata().unwrap();
    assert_eq!((st.uid(), st.gid()), (uid, gid), "owner of /var/lib/hello");
    assert_eq!(st.mode() & 0o7777, 0o750);
    let conf = r.join("etc/hello/hello.conf").symlink_metadata().unwrap();
    assert_eq!(
        (conf.uid(), conf.gid(), conf.mode() & 0o7777),
        (0, gid, 0o640)
    );

    // rpm -e removes what ingot installed.
    run_ok(rpm_in(&rpm, &r).args(["-e", "--nodeps", "--noscripts", "hello"]));
    assert!(
        !r.join("usr/bin/hello-server").exists(),
        "rpm -e left /usr/bin/hello-server"
    );
    let q = rpm_in(&rpm, &r).args(["-q", "hello"]).output().unwrap();
    assert!(!q.status.success(), "hello is still installed after rpm -e");
}

// ------------------------------------------------------- 2. the manifest

#[test]
fn the_manifest_names_every_input_and_output_by_digest_without_host_paths() {
    let rpm = need!("rpm");
    let ws = Workspace::new();
    let out = ws.path("out");
    // Absolute paths on the command line: none may reach the manifest.
    let b = bake_ok(
        bake_cmd(&ws.path("specs/hello-image.toml"), &out).arg("--json"),
        &out,
    );
    let m = &b.json;
    let text = std::fs::read_to_string(&b.manifest).unwrap();

    // --json: one JSON document on stdout.
    let j: serde_json::Value = serde_json::from_str(&b.stdout).unwrap_or_else(|e| {
        panic!(
            "--json stdout is not one JSON document ({e}):\n{}",
            b.stdout
        )
    });
    assert_eq!(j["ok"], true);
    assert_eq!(j["image"].as_str(), Some(b.tar.to_str().unwrap()));

    // Outputs: the tarball first, then any others (an SBOM); each one is
    // in --out with the digest and size the manifest gives.
    let digest = sha256_file(&b.tar);
    let short = &digest[..16];
    let outputs = m["outputs"].as_array().expect("outputs");
    assert!(!outputs.is_empty(), "{text}");
    assert_eq!(outputs[0]["sha256"].as_str(), Some(digest.as_str()));
    assert_eq!(outputs[0]["format"].as_str(), Some("tar"));
    assert_eq!(
        outputs[0]["file"].as_str(),
        Some(format!("hello-{short}.tar").as_str())
    );
    assert_eq!(
        b.tar.file_name().unwrap().to_str(),
        outputs[0]["file"].as_str()
    );
    for o in outputs {
        let file = o["file"].as_str().expect("outputs[].file");
        assert!(
            file.starts_with(&format!("hello-{short}.")),
            "output {file} is not named by the image's digest"
        );
        let p = out.join(file);
        assert_eq!(
            o["sha256"].as_str(),
            Some(sha256_file(&p).as_str()),
            "{file}"
        );
        assert_eq!(
            o["size"].as_u64(),
            Some(std::fs::metadata(&p).unwrap().len()),
            "{file}"
        );
    }
    assert_eq!(
        b.manifest.file_name().unwrap().to_str().unwrap(),
        format!("hello-{short}.manifest.json")
    );
    // Every file in --out is the manifest or an output it names.
    let mut named: Vec<String> = outputs
        .iter()
        .map(|o| o["file"].as_str().unwrap().to_string())
        .collect();
    named.push(format!("hello-{short}.manifest.json"));
    named.sort();
    assert_eq!(
        listing(&out),
        named,
        "files in --out the manifest does not name"
    );

    // Inputs.
    let inputs = &m["inputs"];
    assert_eq!(
        inputs["image_spec"]["sha256"].as_str(),
        Some(sha256_file(&ws.path("specs/hello-image.toml")).as_str())
    );
    assert_eq!(
        inputs["base"]["sha256"].as_str(),
        Some(sha256_file(&ws.base()).as_str())
    );
    let specs = inputs["package_specs"].as_array().expect("package_specs");
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0]["path"].as_str(), Some("hello/hello.toml"));
    assert_eq!(
        specs[0]["sha256"].as_str(),
        Some(sha256_file(&ws.path("specs/hello/hello.toml")).as_str())
    );
    // The package the spec gave is the one `ingot build` gives.
    let built = crate::common::build(&ws.path("specs/hello/hello.toml"), &ws.path("dist"));
    assert_eq!(
        specs[0]["rpm"].as_str(),
        built.file_name().unwrap().to_str()
    );
    assert_eq!(
        specs[0]["rpm_sha256"].as_str(),
        Some(sha256_file(&built).as_str())
    );

    // The example's repository package, by the lock the bake took it by.
    let lock = ws.path("specs/hello-image.lock");
    assert_eq!(
        inputs["lock"],
        serde_json::json!({"path": "hello-image.lock", "sha256": sha256_file(&lock), "kind": "file"})
    );
    let motd = ws.path("fixtures/example-repo/repo/hello-motd-1.0.0-1.noarch.rpm");
    assert_eq!(
        inputs["repository_packages"],
        serde_json::json!([{
            "nevra": "hello-motd-1.0.0-1.noarch",
            "repo": "hello-examples",
            "location": "hello-motd-1.0.0-1.noarch.rpm",
            "sha256": sha256_file(&motd),
        }])
    );

    // Packages: hello (then hello-motd), identified by the SIGMD5 rpm
    // reads from the package.
    let pkgs = m["packages"].as_array().expect("packages");
    assert_eq!(pkgs.len(), 2, "{text}");
    assert_eq!(pkgs[1]["nevra"].as_str(), Some("hello-motd-1.0.0-1.noarch"));
    assert_eq!(pkgs[0]["name"].as_str(), Some("hello"));
    assert_eq!(pkgs[0]["nevra"].as_str(), Some("hello-1.0.0-1.noarch"));
    let sigmd5 = pkgs[0]["sigmd5"].as_str().unwrap_or_default();
    assert_eq!(sigmd5.len(), 32, "sigmd5 `{sigmd5}`");
    let want = stdout(&run_ok(
        Command::new(&rpm)
            .args(["-qp", "--nosignature", "--qf", "%{SIGMD5}"])
            .arg(&built),
    ));
    assert_eq!(sigmd5, want.trim());
    assert!(
        m["scriptlets_not_run"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    );
    assert!(
        m["warnings"].as_array().is_some_and(|a| a.is_empty()),
        "{text}"
    );
    assert_eq!(
        m["systemd"]["enabled"],
        serde_json::json!(["hello.service"])
    );

    // No host path anywhere.
    for host in [
        "/tmp".to_string(),
        ws.dir.display().to_string(),
        repo_root().display().to_string(),
    ] {
        assert!(
            !text.contains(&host),
            "the manifest holds `{host}`:\n{text}"
        );
    }
}

// ----------------------------------------------------- 3. reproducibility

/// Every file of the output folder, by name.
fn result_bytes(b: &Baked) -> BTreeMap<String, Vec<u8>> {
    let out = b.tar.parent().unwrap();
    listing(out)
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(out.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

/// Make a tree look like a checkout made under `umask 077`.
fn chmod_umask_077(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_symlink() {
            continue;
        }
        let mode = e.metadata().unwrap().mode() & 0o7777;
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode & !0o077)).unwrap();
    }
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    for e in walkdir::WalkDir::new(dir) {
        std::os::unix::fs::lchown(e.unwrap().path(), Some(uid), Some(gid)).unwrap();
    }
}

#[test]
fn two_bakes_in_other_folders_zones_umasks_locales_and_users_give_the_same_bytes() {
    for sde in [None, Some("1700000000")] {
        let with_sde = |c: &mut Command| {
            if let Some(s) = sde {
                c.env("SOURCE_DATE_EPOCH", s);
            }
        };
        // A: absolute paths, a plain environment.
        let a = Workspace::new();
        let out_a = a.path("out");
        let mut c = bake_cmd(&a.path("specs/hello-image.toml"), &out_a);
        c.env("TZ", "UTC").env("LC_ALL", "C");
        with_sde(&mut c);
        let ba = bake_ok(&mut c, &out_a);

        // B: another folder, relative paths, a checkout made under umask
        // 077, another zone, locale and umask.
        let b = Workspace::new();
        chmod_umask_077(&b.dir);
        let mut c = ingot();
        c.current_dir(&b.dir)
            .args(["bake", "specs/hello-image.toml", "--out", "out"])
            .env("TZ", "Asia/Kathmandu")
            .env("LC_ALL", "de_DE.UTF-8")
            .env("LANG", "ja_JP.UTF-8");
        // SAFETY: umask is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        with_sde(&mut c);
        let bb = bake_ok(&mut c, &b.path("out"));
        assert!(
            result_bytes(&ba) == result_bytes(&bb),
            "SOURCE_DATE_EPOCH={sde:?}: the outputs in {} and {} differ",
            ba.tar.display(),
            bb.tar.display()
        );
        if let Some(s) = sde {
            assert_eq!(ba.json["source_date_epoch"].as_u64(), s.parse().ok());
        }

        // C: as another user (nobody), in a folder that user owns.
        if !crate::common::need_root("the part that bakes as uid 65534") {
            continue;
        }
        let setpriv = need!("setpriv");
        let c_ws = Workspace::new();
        {
            use std::os::unix::fs::PermissionsExt;
            let top = c_ws.dir.parent().unwrap();
            std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        chown_tree(&c_ws.dir, 65534, 65534);
        let mut c = Command::new(setpriv);
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            env!("CARGO_BIN_EXE_ingot"),
            "bake",
            "specs/hello-image.toml",
            "--out",
            "out",
        ])
        .current_dir(&c_ws.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("TZ", "America/St_Johns")
        .env("HOME", "/nonexistent")
        .env("XDG_CACHE_HOME", c_ws.path("cache"));
        with_sde(&mut c);
        let bc = bake_ok(&mut c, &c_ws.path("out"));
        assert!(
            result_bytes(&ba) == result_bytes(&bc),
            "SOURCE_DATE_EPOCH={sde:?}: baking as uid 65534 gave other bytes: {} vs {}",
            ba.tar.display(),
            bc.tar.display()
        );
    }
}

// ------------------------------------------------ 4. unmet dependencies

#[test]
fn an_unmet_requirement_names_package_requirement_and_offer_and_writes_nothing() {
    let ws = Workspace::new();
    let spec = ws.path("specs/hello/hello.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let changed = text.replace("\"python3 >= 3.9\"", "\"python3 >= 3.10\"");
    assert_ne!(
        text, changed,
        "the example no longer requires python3 >= 3.9"
    );
    std::fs::write(&spec, changed).unwrap();
    let image = ws.path("specs/hello-image.toml");

    let out = ws.path("out");
    let o = bake_cmd(&image, &out).output().unwrap();
    assert_fails(
        &o,
        1,
        &[
            "hello-1.0.0-1.noarch",
            "python3 >= 3.10",
            "python3 = 3.9.16-",
        ],
    );
    assert_nothing_left(&out, &[]);

    let b = bake_ok(bake_cmd(&image, &out).arg("--no-deps-check"), &out);
    let warnings: Vec<&str> = b.json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("python3 >= 3.10") && w.contains("hello")),
        "the manifest's warnings do not name the unmet requirement: {warnings:?}"
    );
    assert!(
        b.stderr.contains("python3 >= 3.10"),
        "no warning on stderr:\n{}",
        b.stderr
    );
}

// ---------------------------------------------------------- 5. base pin

#[test]
fn a_wrong_base_pin_is_refused_naming_both_digests_and_a_right_one_bakes() {
    let ws = Workspace::new();
    let real = sha256_file(&ws.base());
    let wrong = if real.starts_with('0') {
        "1".repeat(64)
    } else {
        "0".repeat(64)
    };
    let pinned = |pin: &str| {
        let text = std::fs::read_to_string(ws.path("specs/hello-image.toml")).unwrap();
        let line = "base = \"../fixtures/al2023-standin/rootfs.tar.zst\"\n";
        assert!(text.contains(line), "the example's base line changed");
        text.replace(line, &format!("{line}base_sha256 = \"{pin}\"\n"))
    };
    let spec = ws.write("specs/pinned.toml", &pinned(&wrong));
    let out = ws.path("out");
    let o = bake_cmd(&spec, &out).output().unwrap();
    assert_fails(&o, 2, &[&real, &wrong]);
    assert_nothing_left(&out, &[]);

    let spec = ws.write("specs/pinned.toml", &pinned(&real));
    let b = bake_ok(&mut bake_cmd(&spec, &out), &out);
    assert_eq!(
        b.json["inputs"]["base"]["sha256"].as_str(),
        Some(real.as_str())
    );
}

// 6. Packages from other tools against real rpm -i: tests/it/real_rpms.rs

// -------------------------------------------------------------- 7. upgrade

#[test]
fn an_upgrade_replaces_the_old_version_and_the_same_version_is_refused() {
    let rpm = need!("rpm");
    need!("tar");
    need_root!("extracting tarballs with their owners");
    let ws = Workspace::new();
    let out1 = ws.path("out1");
    let first = bake_ok(
        &mut bake_cmd(&ws.path("specs/hello-image.toml"), &out1),
        &out1,
    );

    // hello 1.0.1 without README.md.
    copy_dir(&ws.path("specs/hello"), &ws.path("specs/hello-next"));
    let spec = ws.path("specs/hello-next/hello.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let readme =
        "[[files]]\nsrc = \"README.md\"\ndest = \"/usr/share/doc/hello/README.md\"\ndoc = true\n";
    assert!(text.contains(readme), "the example's README entry changed");
    let next = text
        .replace(readme, "")
        .replace("version = \"1.0.0\"", "version = \"1.0.1\"");
    std::fs::write(&spec, next).unwrap();
    let image = ws.write(
        "specs/hello-next-image.toml",
        &image_spec("hello", &["hello-next/hello.toml"]),
    );
    let out2 = ws.path("out2");
    let b = bake_ok(bake_cmd(&image, &out2).arg("--base").arg(&first.tar), &out2);
    assert_eq!(
        b.json["removed"],
        serde_json::json!(["hello-1.0.0-1.noarch"])
    );
    let pkgs = b.json["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 1);
    assert_eq!(pkgs[0]["nevra"].as_str(), Some("hello-1.0.1-1.noarch"));
    assert_eq!(pkgs[0]["replaced"].as_str(), Some("hello-1.0.0-1.noarch"));

    let r = ws.path("root");
    extract(&b.tar, &r);
    let qa = rpm_out(&rpm, &r, &["-qa"]);
    // `hello` itself, not `hello-motd` (from the example's repository).
    let hellos: Vec<&str> = qa
        .lines()
        .filter(|l| {
            l.strip_prefix("hello-")
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(hellos, ["hello-1.0.1-1.noarch"], "rpm -qa:\n{qa}");
    assert!(
        !r.join("usr/share/doc/hello/README.md").exists(),
        "the file 1.0.1 dropped is still there"
    );
    assert!(r.join("usr/bin/hello-server").is_file());
    let v = rpm_in(&rpm, &r)
        .args(["-V", "--nodeps", "hello"])
        .output()
        .unwrap();
    assert!(
        v.status.success() && v.stdout.is_empty(),
        "rpm -V hello after the upgrade: {}{}",
        stdout(&v),
        stderr(&v)
    );
    let pw = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert_eq!(
        pw.lines().filter(|l| l.starts_with("hello:")).count(),
        1,
        "the account was duplicated:\n{pw}"
    );

    // What real `rpm -U` makes of the same base with the same package:
    // the same files and the same database record.
    let next_rpm = crate::common::build(&spec, &ws.path("dist"));
    assert_eq!(
        b.json["inputs"]["package_specs"][0]["rpm_sha256"].as_str(),
        Some(sha256_file(&next_rpm).as_str()),
        "`ingot build` and `ingot bake` made different packages"
    );
    let theirs = ws.path("rpm-upgraded");
    extract(&first.tar, &theirs);
    let date = b.json["source_date_epoch"].as_u64().unwrap().to_string();
    run_ok(
        rpm_in(&rpm, &theirs)
            .env("SOURCE_DATE_EPOCH", &date)
            .args(["-U", "--nodeps", "--noscripts", "--notriggers"])
            .arg(&next_rpm),
    );
    let diff = tree_diff(&snapshot(&theirs), &snapshot(&r));
    assert!(
        diff.is_empty(),
        "the upgraded tree differs from rpm -U's:\n{}",
        diff.join("\n")
    );
    let (hn_r, blob_r, rows_r) = newest_record(
        &rusqlite::Connection::open(theirs.join("var/lib/rpm/rpmdb.sqlite")).unwrap(),
    );
    let (hn_i, blob_i, rows_i) =
        newest_record(&open_db_immutable(&r.join("var/lib/rpm/rpmdb.sqlite")));
    assert_eq!(hn_i, hn_r, "hnum of the new record");
    assert!(blob_i == blob_r, "the new record differs from rpm -U's");
    assert_eq!(rows_i, rows_r, "index rows of the new record");

    // The same version again.
    let out3 = ws.path("out3");
    let o = bake_cmd(&ws.path("specs/hello-image.toml"), &out3)
        .arg("--base")
        .arg(&first.tar)
        .output()
        .unwrap();
    assert_fails(&o, 2, &["hello-1.0.0-1.noarch", "already installed"]);
    assert_nothing_left(&out3, &[]);
}

// -------------------------------------------------------- 8. file conflict

#[test]
fn two_packages_shipping_one_path_with_different_contents_conflict() {
    let ws = Workspace::new();
    for (n, content) in [("a", "tool A\n"), ("b", "tool B\n")] {
        ws.write(&format!("specs/{n}/tool"), content);
        ws.write(
            &format!("specs/{n}/{n}.toml"),
            &package_spec(
                &format!("tool-{n}"),
                "1.0",
                "[[files]]\nsrc = \"tool\"\ndest = \"/usr/bin/tool\"\nmode = \"0755\"\n",
            ),
        );
    }
    let image = ws.write(
        "specs/conflict.toml",
        &image_spec("conflict", &["a/a.toml", "b/b.toml"]),
    );
    let out = ws.path("out");
    let o = bake_cmd(&image, &out).output().unwrap();
    assert_fails(&o, 1, &["/usr/bin/tool", "tool-a-1.0-1", "tool-b-1.0-1"]);
    assert_nothing_left(&out, &[]);

    // Against a package of the base: the stand-in's bash owns /usr/bin/bash.
    ws.write("specs/c/bash", "not bash\n");
    ws.write(
        "specs/c/c.toml",
        &package_spec(
            "fake-bash",
            "1.0",
            "[[files]]\nsrc = \"bash\"\ndest = \"/usr/bin/bash\"\nmode = \"0755\"\n",
        ),
    );
    let image = ws.write(
        "specs/conflict-base.toml",
        &image_spec("conflict", &["c/c.toml"]),
    );
    let o = bake_cmd(&image, &out).output().unwrap();
    assert_fails(&o, 1, &["/usr/bin/bash", "fake-bash-1.0-1", "bash-5.2.15"]);
    assert_nothing_left(&out, &[]);
}

// ------------------------------------------ 9 and 12. a missing ExecStart

fn broken_unit_image(ws: &Workspace) -> PathBuf {
    ws.write(
        "specs/u/missing.service",
        "[Unit]\nDescription=Starts a program the image lacks\n\n[Service]\n\
         ExecStart=/usr/bin/does-not-exist --flag\n\n[Install]\nWantedBy=multi-user.target\n",
    );
    ws.write(
        "specs/u/u.toml",
        &package_spec(
            "broken-unit",
            "1.0",
            "[[systemd]]\nunit = \"missing.service\"\n",
        ),
    );
    ws.write("specs/unit.toml", &image_spec("unit", &["u/u.toml"]))
}

#[test]
fn a_unit_whose_program_is_missing_is_an_error_naming_unit_and_path() {
    let ws = Workspace::new();
    let image = broken_unit_image(&ws);
    let out = ws.path("out");
    let o = bake_cmd(&image, &out).output().unwrap();
    assert_fails(&o, 2, &["missing.service", "/usr/bin/does-not-exist"]);
}

#[test]
fn a_bake_failing_late_leaves_nothing_in_the_output_folder() {
    let ws = Workspace::new();
    let image = broken_unit_image(&ws);
    // --out that ingot would create: gone again.
    let out = ws.path("new/out");
    let o = bake_cmd(&image, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_nothing_left(&out, &[]);
    assert_nothing_left(&ws.path("new"), &[]);
    // --out that exists already: only what was there before.
    let out = ws.path("existing");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let o = bake_cmd(&image, &out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_nothing_left(&out, &["keep.txt"]);
}

// ------------------------------------------------------------ 10. memory

#[test]
fn a_base_with_a_one_gib_file_bakes_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // A .tar.zst holding one 1 GiB file of zeros: a few dozen KiB.
    {
        let f = std::fs::File::create(dir.join("base.tar.zst")).unwrap();
        let z = zstd::stream::write::Encoder::new(f, 3).unwrap();
        let mut tb = tar::Builder::new(z);
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h
        };
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tb.append_data(&mut h, "big/", std::io::empty()).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644, GIB);
        let zeros = std::io::Read::take(std::io::repeat(0), GIB);
        tb.append_data(&mut h, "big/zeros", zeros).unwrap();
        tb.into_inner().unwrap().finish().unwrap();
    }
    std::fs::write(
        dir.join("image.toml"),
        "[image]\nname = \"big\"\nbase = \"base.tar.zst\"\nformats = [\"tar\"]\n",
    )
    .unwrap();
    let out = dir.join("out");
    let peak = crate::common::peak_rss(&bake_cmd(&dir.join("image.toml"), &out));
    assert!(peak.success, "bake failed:\n{}", peak.stderr);
    let peak_mib = peak.mib;
    eprintln!("peak RSS of ingot bake with a 1 GiB file: {peak_mib} MiB");
    assert!(
        peak_mib < 256,
        "peak RSS {peak_mib} MiB: memory grows with file sizes"
    );
    // The file made it, whole (as a sparse member, which GNU tar reads).
    let gnu_tar = need!("tar");
    let names = listing(&out);
    let tar = names
        .iter()
        .find(|n| n.ends_with(".tar"))
        .expect("no tarball");
    let list = stdout(&run_ok(
        Command::new(gnu_tar).arg("-tvf").arg(out.join(tar)),
    ));
    let line = list
        .lines()
        .find(|l| l.ends_with(" ./big/zeros"))
        .unwrap_or_else(|| panic!("big/zeros is not in the output:\n{list}"));
    assert!(line.contains(&format!(" {GIB} ")), "{line}");
}

/// A base of `files` files of `file_mib` MiB each, as an uncompressed
/// tar: 1 MiB of noise that deflates a little, stamped with its position,
/// so every grain of the image is data the VMDK must compress.
fn data_base(path: &Path, files: u64, file_mib: u64) {
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for c in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Letters only: random text that deflate shrinks by about a third.
        let v = x.to_le_bytes().map(|b| b'a' + b % 26);
        c.copy_from_slice(&v[..c.len()]);
    }
    let mut tb = tar::Builder::new(std::fs::File::create(path).unwrap());
    for i in 0..files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(file_mib << 20);
        h.set_mtime(1_700_000_000);
        let mut data = Vec::with_capacity((file_mib << 20) as usize);
        for k in 0..file_mib {
            block[..16].copy_from_slice(&[i.to_le_bytes(), k.to_le_bytes()].concat());
            data.extend_from_slice(&block);
        }
        tb.append_data(&mut h, format!("data/f{i:02}"), &data[..])
            .unwrap();
    }
    tb.into_inner().unwrap();
}

/// The disk path's memory is fixed too: a base with twice the data, read
/// back for the digest, the EBS checksum and the VMDK while the root
/// filesystem is written, bakes in about the same peak RSS.
#[test]
fn a_disk_bake_does_not_grow_with_the_data() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let mut peaks = Vec::new();
    for (name, mib) in [("one", 12u64), ("two", 24)] {
        data_base(&dir.join(format!("{name}.tar")), 16, mib);
        let spec = dir.join(format!("{name}.toml"));
        std::fs::write(
            &spec,
            format!(
                "[image]\nname = \"{name}\"\nbase = \"{name}.tar\"\nformats = [\"raw\", \"vmdk\"]\n"
            ),
        )
        .unwrap();
        let out = dir.join(format!("out-{name}"));
        let mut cmd = bake_cmd(&spec, &out);
        cmd.args(["--jobs", "2"]);
        let peak = crate::common::peak_rss(&cmd);
        assert!(peak.success, "bake failed:\n{}", peak.stderr);
        let names = listing(&out);
        assert!(
            names.iter().any(|n| n.ends_with(".vmdk")),
            "no VMDK: {names:?}"
        );
        std::fs::remove_dir_all(&out).unwrap();
        peaks.push(peak.mib);
    }
    let (one, two) = (peaks[0], peaks[1]);
    eprintln!("peak RSS of ingot bake to raw + vmdk: 192 MiB of data {one} MiB, 384 MiB {two} MiB");
    assert!(two < 200, "peak RSS {two} MiB with 384 MiB of data");
    // The digest pass holds at most 8 read buffers of 4 MiB and as many
    // compressed parts (disk::digest): how much of those 64 MiB a run
    // fills depends on how the threads are scheduled (a busy machine
    // fills more), not on the data. Growth with the data (192 MiB more
    // here) is past that slack.
    const SCHEDULING_SLACK_MIB: u64 = 64;
    assert!(
        two <= one + SCHEDULING_SLACK_MIB,
        "peak RSS grew from {one} MiB to {two} MiB when the data doubled"
    );
}

// ------------------------------------- 11. the real Amazon Linux database

#[test]
fn a_package_added_to_the_real_al2023_database_gets_rpms_own_record() {
    let rpm = need!("rpm");
    let rpmdb = need!("rpmdb");
    let tar = need!("tar");
    let Some(shared) = shared_fixtures() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // The stand-in tree with AL2023's real database in place of its own.
    let base = dir.join("base.tar");
    zstd::stream::copy_decode(
        std::fs::File::open(repo_root().join("fixtures/al2023-standin/rootfs.tar.zst")).unwrap(),
        std::fs::File::create(&base).unwrap(),
    )
    .unwrap();
    let name = raw_member(&base, "var/lib/rpm/rpmdb.sqlite");
    run_ok(
        Command::new(&tar)
            .arg("--delete")
            .arg("-f")
            .arg(&base)
            .arg(&name),
    );
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("var/lib/rpm")).unwrap();
    let db = src.join("var/lib/rpm/rpmdb.sqlite");
    std::fs::copy(shared.join("al2023-plain/rpmdb.sqlite"), &db).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    run_ok(
        Command::new(&tar)
            .args([
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@1692921600",
            ])
            .arg("-C")
            .arg(&src)
            .arg("-rf")
            .arg(&base)
            .arg(&name),
    );
    let pkg = "hello-fixture-1.0-1.amzn2023.noarch.rpm";
    std::fs::copy(shared.join("rpm-install-oracle").join(pkg), dir.join(pkg)).unwrap();
    std::fs::write(
        dir.join("image.toml"),
        format!(
            "[image]\nname = \"al2023\"\nbase = \"base.tar\"\npackages = [\"{pkg}\"]\nformats = [\"tar\"]\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    // rpm wrote the fixture's record at this time.
    let b = bake_ok(
        bake_cmd(&dir.join("image.toml"), &out).env("SOURCE_DATE_EPOCH", "1795304986"),
        &out,
    );

    // Straight from the tarball: no root needed for the database itself.
    let r = dir.join("root");
    std::fs::create_dir(&r).unwrap();
    run_ok(
        Command::new(&tar)
            .arg("-xf")
            .arg(&b.tar)
            .arg("-C")
            .arg(&r)
            .arg(raw_member(&b.tar, "var/lib/rpm/rpmdb.sqlite")),
    );
    let conn = open_db_immutable(&r.join("var/lib/rpm/rpmdb.sqlite"));
    let (hnum, blob, rows) = newest_record(&conn);
    drop(conn);
    assert_eq!(hnum, 104);
    let want = std::fs::read(shared.join("rpm-install-oracle/hello-fixture.installed-header.bin"))
        .unwrap();
    assert!(
        blob == want,
        "the record differs from rpm's ({} vs {} bytes); first difference at byte {:?}",
        blob.len(),
        want.len(),
        blob.iter().zip(&want).position(|(a, b)| a != b)
    );
    let mut want_rows: Vec<String> =
        std::fs::read_to_string(shared.join("rpm-install-oracle/hello-fixture.index-rows.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    want_rows.sort();
    assert_eq!(rows, want_rows, "index rows of hnum 104");

    let qa = rpm_out(&rpm, &r, &["-qa"]);
    assert_eq!(qa.lines().count(), 104, "rpm -qa:\n{qa}");
    assert!(
        qa.lines()
            .any(|l| l == "hello-fixture-1.0-1.amzn2023.noarch")
    );
    run_ok(Command::new(&rpmdb).arg("--root").arg(&r).args([
        "--dbpath",
        "/var/lib/rpm",
        "--verifydb",
    ]));
}

#[test]
fn the_image_specs_systemd_lists_apply_after_the_presets() {
    let ws = Workspace::new();
    let img = ws.path("specs/hello-image.toml");
    let text = std::fs::read_to_string(&img).unwrap();
    // hello.service is enabled by its package's preset; the spec masks the
    // network target and disables hello again.
    ws.write(
        "specs/hello-image.toml",
        &format!(
            "{text}\n[image.systemd]\ndisable = [\"hello.service\"]\nmask = [\"network-online.target\"]\n"
        ),
    );
    let out = ws.path("out");
    let b = bake_ok(&mut bake_cmd(&img, &out), &out);
    let members = tar_members(&b.tar);
    assert!(
        !members
            .iter()
            .any(|m| m.contains("multi-user.target.wants/hello.service")),
        "hello.service is still wanted: {members:?}"
    );
    let verbose = stdout(&run_ok(Command::new("tar").arg("-tvf").arg(&b.tar)));
    assert!(
        verbose
            .lines()
            .any(|l| l.ends_with("etc/systemd/system/network-online.target -> /dev/null")),
        "{verbose}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&b.manifest).unwrap()).unwrap();
    assert_eq!(
        m["systemd"]["disabled"],
        serde_json::json!(["hello.service"])
    );
    assert_eq!(
        m["systemd"]["masked"],
        serde_json::json!(["network-online.target"])
    );
    assert_eq!(m["systemd"]["enabled"], serde_json::json!([]));
}
