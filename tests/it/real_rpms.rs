//! The real-RPM corpus (`tests/real-rpms/`, gathered by `cargo xtask
//! corpus`): packages nobody on this project wrote, from other tools and
//! distributions, each installed by `ingot bake` and by real
//! `rpm -i --root --nodeps --noscripts --noplugins` into the same base.
//! The trees (type, mode, owner, size, digest, link target, xattrs, hard
//! links), the database records (byte for byte), their index rows and what
//! `rpm -qi` and `rpm -V` say must be the same. Upgrades are compared with
//! `rpm -U` the same way, with and without local edits of the old
//! version's files, on real upgrade pairs and on pairs rpmbuild makes here
//! to walk every branch of rpm's `%config` rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bake::{
    extract, newest_record, open_db_immutable, rpm_in, rpm_out, sha256_file, snapshot, tree_diff,
};
use crate::common::{cannot_run, ingot, repo_root, run_ok, stderr, stdout};
use crate::need;

/// Where ingot and rpm 4.18 differ on purpose, and how the comparison
/// deals with it. Every difference the tests allow is here.
const NAMED_DIFFERENCES: &[(&str, &str)] = &[
    (
        "accounts from sysusers.d",
        "ingot creates the accounts a package's sysusers.d file declares before placing its \
         files (what rpm >= 4.19 does, or the package's %pre on a live system); rpm 4.18 with \
         --noscripts creates none and gives the files to root. The comparison hands rpm the \
         account files ingot wrote (passwd, group, shadow, gshadow and their `-` backups) \
         before it installs.",
    ),
    (
        "directory times",
        "rpm gives a folder it creates or enters the time it runs; ingot gives it the bake's \
         source date. Directory times are left out of the tree comparison.",
    ),
    (
        "FIFOs under rpm 4.18",
        "rpm 4.18 creates a FIFO and then opens it for reading without O_NONBLOCK, so it waits \
         forever for a writer (rpm-rs's rpm-special-files). Its record is made with \
         `rpm -i --justdb`, and ingot's tree is judged against `rpm -qp --dump` instead.",
    ),
];

fn named_differences() -> String {
    NAMED_DIFFERENCES
        .iter()
        .map(|(what, why)| format!("{what}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The source date both installers use.
const SDE: &str = "1700000000";

/// The corpus folder, every package in it with the SHA-256 `corpus.tsv`
/// gives; `None` (by the skip rule) when it has not been gathered.
fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("INGOT_REAL_RPMS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/real-rpms"));
    for (file, sha) in corpus_list() {
        let p = dir.join(&file);
        if !p.is_file() {
            cannot_run(
                &format!("the real-RPM corpus ({file})"),
                &format!("not in {}", dir.display()),
                "run `cargo xtask corpus` (cargo xtask ci does)",
            );
            return None;
        }
        assert_eq!(
            sha256_file(&p),
            sha,
            "{file} is not the package corpus.tsv names"
        );
    }
    Some(dir)
}

/// (file, sha256) of every package `tests/real-rpms/corpus.tsv` lists.
fn corpus_list() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("tests/real-rpms/corpus.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[3].to_string())
        })
        .collect()
}

/// The base a package goes into.
#[derive(Clone, Copy, PartialEq)]
enum Base {
    /// The committed stand-in for Amazon Linux 2023.
    Standin,
    /// The stand-in without its `system-release` (erased by rpm), for the
    /// `centos-release` packages, which ship the same files.
    WithoutSystemRelease,
}

fn base_for(file: &str) -> Base {
    if file.starts_with("centos-release-") {
        Base::WithoutSystemRelease
    } else {
        Base::Standin
    }
}

/// Extract the base into `dir` (as root, owners and xattrs kept).
fn make_base(rpm: &Path, kind: Base, dir: &Path) {
    let tar = dir.with_extension("tar");
    zstd::stream::copy_decode(
        std::fs::File::open(repo_root().join("fixtures/al2023-standin/rootfs.tar.zst")).unwrap(),
        std::fs::File::create(&tar).unwrap(),
    )
    .unwrap();
    extract(&tar, dir);
    if kind == Base::WithoutSystemRelease {
        run_ok(rpm_in(rpm, dir).env("SOURCE_DATE_EPOCH", SDE).args([
            "-e",
            "--nodeps",
            "--noscripts",
            "system-release",
        ]));
    }
}

/// `cp -a` of a tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(to),
    );
}

/// `ingot bake` of the packages `pkgs` into the folder `base` (tar
/// output in `dir/out`, dependencies not checked).
fn bake_output(dir: &Path, base: &Path, pkgs: &[&Path]) -> std::process::Output {
    let list: Vec<String> = pkgs
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let spec = dir.join("image.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"real\"\nbase = {:?}\npackages = [{}]\nformats = [\"tar\"]\n",
            base.display().to_string(),
            list.join(", ")
        ),
    )
    .unwrap();
    ingot()
        .env("SOURCE_DATE_EPOCH", SDE)
        .arg("bake")
        .arg(&spec)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--no-deps-check")
        .output()
        .unwrap()
}

/// `ingot bake` of `rpm_file` into the folder `base`; the extracted tree,
/// or ingot's failed output.
fn bake_into(dir: &Path, base: &Path, rpm_file: &Path) -> Result<PathBuf, std::process::Output> {
    let o = bake_output(dir, base, &[rpm_file]);
    if !o.status.success() {
        return Err(o);
    }
    let tar = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "tar"))
        .expect("bake wrote no tarball");
    let mine = dir.join("ingot");
    extract(&tar, &mine);
    Ok(mine)
}

/// The account files ingot wrote, handed to rpm's tree (see
/// [`NAMED_DIFFERENCES`]).
fn copy_accounts(mine: &Path, theirs: &Path) {
    for acc in [
        "passwd", "group", "shadow", "gshadow", "passwd-", "group-", "shadow-", "gshadow-",
    ] {
        let p = mine.join("etc").join(acc);
        if p.exists() {
            run_ok(Command::new("cp").arg("-a").arg(&p).arg(theirs.join("etc")));
        } else {
            let _ = std::fs::remove_file(theirs.join("etc").join(acc));
        }
    }
}

/// The package's name, as rpm reads it from the file.
fn name_of(rpm: &Path, file: &Path) -> String {
    stdout(&run_ok(
        Command::new(rpm)
            .args(["-qp", "--nosignature", "--qf", "%{NAME}"])
            .arg(file),
    ))
}

/// Compare ingot's tree and rpm's: files, the newest record, its index
/// rows, `rpm -qi` and `rpm -V` of `name`. Returns the differences.
fn compare(rpm: &Path, label: &str, mine: &Path, theirs: &Path, name: &str) -> Vec<String> {
    let mut problems: Vec<String> = tree_diff(&snapshot(theirs), &snapshot(mine))
        .into_iter()
        .map(|d| format!("{label}: {d}"))
        .collect();
    problems.extend(compare_db(rpm, label, mine, theirs, name));
    problems
}

fn compare_db(rpm: &Path, label: &str, mine: &Path, theirs: &Path, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (hn_r, blob_r, rows_r) =
        newest_record(&open_db_immutable(&theirs.join("var/lib/rpm/rpmdb.sqlite")));
    let (hn_i, blob_i, rows_i) =
        newest_record(&open_db_immutable(&mine.join("var/lib/rpm/rpmdb.sqlite")));
    if hn_r != hn_i {
        problems.push(format!("{label}: hnum {hn_i}, rpm used {hn_r}"));
    }
    if blob_r != blob_i {
        problems.push(format!(
            "{label}: the record differs from rpm's ({} vs {} bytes)",
            blob_i.len(),
            blob_r.len()
        ));
    }
    if rows_r != rows_i {
        let missing: Vec<&String> = rows_r.iter().filter(|r| !rows_i.contains(r)).collect();
        let extra: Vec<&String> = rows_i.iter().filter(|r| !rows_r.contains(r)).collect();
        problems.push(format!(
            "{label}: index rows differ: missing {missing:?}, extra {extra:?}"
        ));
    }
    for q in [&["-qi"][..], &["-V", "--nodeps", "--noscripts"][..]] {
        let run = |root: &Path| {
            let o = rpm_in(rpm, root).args(q).arg(name).output().unwrap();
            format!("{}{}", stdout(&o), stderr(&o))
        };
        let (a, b) = (run(theirs), run(mine));
        if a != b {
            problems.push(format!(
                "{label}: `rpm {}` differs:\n--- rpm's tree\n{a}--- ingot's tree\n{b}",
                q.join(" ")
            ));
        }
    }
    problems
}

/// One package of the corpus, installed both ways into its base.
fn judge_install(rpm: &Path, corpus: &Path, file: &str) -> Vec<String> {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let base = dir.join("base");
    make_base(rpm, base_for(file), &base);
    let pkg = corpus.join(file);
    let name = name_of(rpm, &pkg);
    let mine = match bake_into(dir, &base, &pkg) {
        Ok(m) => m,
        Err(o) => {
            return vec![format!(
                "{file}: `ingot bake` failed with {}: {}",
                o.status,
                stderr(&o).trim()
            )];
        }
    };
    let theirs = dir.join("rpm");
    copy_tree(&base, &theirs);
    copy_accounts(&mine, &theirs);
    if file.contains("rpm-special-files") {
        return judge_fifo_package(rpm, file, &pkg, &mine, &theirs, &name);
    }
    run_ok(
        rpm_in(rpm, &theirs)
            .env("SOURCE_DATE_EPOCH", SDE)
            .args([
                "-i",
                "--nodeps",
                "--nosignature",
                "--noscripts",
                "--noplugins",
            ])
            .arg(&pkg),
    );
    compare(rpm, file, &mine, &theirs, &name)
}

/// rpm 4.18 hangs on FIFOs (see [`NAMED_DIFFERENCES`]): the record from
/// `--justdb`, the files against `rpm -qp --dump`.
fn judge_fifo_package(
    rpm: &Path,
    file: &str,
    pkg: &Path,
    mine: &Path,
    theirs: &Path,
    name: &str,
) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    run_ok(
        rpm_in(rpm, theirs)
            .env("SOURCE_DATE_EPOCH", SDE)
            .args(["-i", "--justdb", "--nodeps", "--nosignature", "--noscripts"])
            .arg(pkg),
    );
    let mut problems = compare_db(rpm, file, mine, theirs, name)
        .into_iter()
        .filter(|p| !p.contains("`rpm -V"))
        .collect::<Vec<_>>();
    let dump = stdout(&run_ok(Command::new(rpm).args(["-qp", "--dump"]).arg(pkg)));
    for line in dump.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (path, mtime, mode, rdev) = (f[0], f[2], f[4], f[9]);
        let m = match mine.join(&path[1..]).symlink_metadata() {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{file}: {path} is not in ingot's tree: {e}"));
                continue;
            }
        };
        let got = (
            format!("{:06o}", m.mode()),
            m.mtime().to_string(),
            m.rdev().to_string(),
        );
        let want = (mode.to_string(), mtime.to_string(), rdev.to_string());
        if got != want {
            problems.push(format!(
                "{file}: {path}: ingot (mode, mtime, rdev) {got:?}, rpm -qp --dump {want:?}"
            ));
        }
    }
    problems
}

#[test]
fn every_real_package_installs_as_real_rpm_installs_it() {
    let rpm = need!("rpm");
    need!("tar");
    need!("cp");
    crate::need_root!("installing with rpm and extracting tarballs with their owners");
    let Some(corpus) = corpus() else {
        return;
    };
    let list = corpus_list();
    assert!(
        list.len() >= 25,
        "the corpus has only {} packages",
        list.len()
    );
    let mut problems = Vec::new();
    let mut judged = 0;
    for (file, _) in &list {
        if file.contains("-corrupted") {
            continue; // refused_by_both below
        }
        problems.extend(judge_install(&rpm, &corpus, file));
        judged += 1;
    }
    assert!(
        problems.is_empty(),
        "{} problems over {judged} packages:\n{}\n(the differences allowed on purpose: {})",
        problems.len(),
        problems.join("\n"),
        named_differences()
    );
}

#[test]
fn a_package_whose_payload_does_not_match_its_digests_is_refused_as_rpm_refuses_it() {
    let rpm = need!("rpm");
    crate::need_root!("extracting the base with its owners");
    let Some(corpus) = corpus() else {
        return;
    };
    let pkg = corpus.join("rpm-tests-hello-2.0-1.x86_64-corrupted.rpm");
    let k = Command::new(&rpm).arg("-K").arg(&pkg).output().unwrap();
    assert!(!k.status.success(), "rpm -K accepts the corrupted package");
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    make_base(&rpm, Base::Standin, &base);
    let o = bake_into(t.path(), &base, &pkg).expect_err("ingot baked a corrupted package");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("SHA-256"), "{}", stderr(&o));
    assert!(!t.path().join("out").exists(), "a failed bake left --out");
}

// ------------------------------------------------------------- upgrades

/// What is done to the base between installing the old version and
/// upgrading it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Edit {
    None,
    /// Every `%config` file of the old version gets a line appended (a
    /// `%config` symlink is pointed elsewhere), and the new version's
    /// `%config` paths the old one lacks get unowned files of their own.
    LocalEdits,
}

/// `%config` paths of a package with their modes, from rpm.
fn config_files(rpm: &Path, pkg: &Path) -> Vec<(String, u32)> {
    let q = stdout(&run_ok(
        Command::new(rpm)
            .args([
                "-qp",
                "--nosignature",
                "--qf",
                "[%{FILEFLAGS} %{FILEMODES} %{FILENAMES}\\n]",
            ])
            .arg(pkg),
    ));
    q.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            let flags: u32 = f.next()?.parse().ok()?;
            let mode: u32 = f.next()?.parse().ok()?;
            let path = f.next()?.to_string();
            (flags & 1 != 0).then_some((path, mode))
        })
        .collect()
}

fn local_edits(rpm: &Path, root: &Path, old: &Path, new: &Path) {
    let old_cfg = config_files(rpm, old);
    for (path, mode) in &old_cfg {
        let p = root.join(&path[1..]);
        match mode & 0o170000 {
            0o100000 if p.is_file() => {
                let mut text = std::fs::read(&p).unwrap();
                text.extend_from_slice(b"# a local edit\n");
                std::fs::write(&p, text).unwrap();
            }
            0o120000 => {
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink("edited-target", &p).unwrap();
            }
            _ => {}
        }
    }
    for (path, mode) in config_files(rpm, new) {
        if mode & 0o170000 == 0o100000 && !old_cfg.iter().any(|(p, _)| *p == path) {
            let p = root.join(&path[1..]);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "a file of the admin's own\n").unwrap();
        }
    }
}

/// `old` installed by rpm into the base, maybe edited, then upgraded to
/// `new` by `ingot bake` and by `rpm -U`.
fn judge_upgrade(rpm: &Path, base_kind: Base, old: &Path, new: &Path, edit: Edit) -> Vec<String> {
    let label = format!(
        "{} -> {} ({edit:?})",
        old.file_name().unwrap().to_string_lossy(),
        new.file_name().unwrap().to_string_lossy()
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let base = dir.join("base");
    make_base(rpm, base_kind, &base);
    run_ok(
        rpm_in(rpm, &base)
            .env("SOURCE_DATE_EPOCH", "1690000000")
            .args([
                "-i",
                "--nodeps",
                "--nosignature",
                "--noscripts",
                "--noplugins",
            ])
            .arg(old),
    );
    if edit == Edit::LocalEdits {
        local_edits(rpm, &base, old, new);
    }
    let name = name_of(rpm, new);
    let mine = match bake_into(dir, &base, new) {
        Ok(m) => m,
        Err(o) => return vec![format!("{label}: `ingot bake` failed: {}", stderr(&o))],
    };
    let theirs = dir.join("rpm");
    copy_tree(&base, &theirs);
    copy_accounts(&mine, &theirs);
    run_ok(
        rpm_in(rpm, &theirs)
            .env("SOURCE_DATE_EPOCH", SDE)
            .args([
                "-U",
                "--nodeps",
                "--nosignature",
                "--noscripts",
                "--noplugins",
            ])
            .arg(new),
    );
    let qa = |root: &Path| rpm_out(rpm, root, &["-qa", name.as_str()]);
    let mut problems = compare(rpm, &label, &mine, &theirs, &name);
    if qa(&mine) != qa(&theirs) {
        problems.push(format!(
            "{label}: rpm -qa {name}: ingot's tree `{}`, rpm's `{}`",
            qa(&mine).trim(),
            qa(&theirs).trim()
        ));
    }
    problems
}

/// rpmbuild's package `cfgpair`, version `ver`, with file digests of
/// `algo` (1 MD5, 8 SHA-256): `%config` files that change, stay the same,
/// go, come, stop being `%config`; a `%config` symlink; plain data.
fn build_cfgpair(rpmbuild: &Path, dir: &Path, ver: u32, algo: u32) -> PathBuf {
    let spec = dir.join(format!("cfgpair-{ver}.spec"));
    std::fs::write(&spec, CFGPAIR_SPEC).unwrap();
    let top = dir.join(format!("top-{ver}-{algo}"));
    run_ok(
        Command::new(rpmbuild)
            .env("SOURCE_DATE_EPOCH", "1680000000")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("ver {ver}"))
            .arg("--define")
            .arg(format!("_binary_filedigest_algorithm {algo}"))
            .args(["--define", "_buildhost cfgpair.invalid"])
            .args(["--define", "use_source_date_epoch_as_buildtime 1"])
            .args(["-bb", "--quiet"])
            .arg(&spec),
    );
    let out = top.join(format!("RPMS/noarch/cfgpair-{ver}-1.noarch.rpm"));
    assert!(out.is_file(), "rpmbuild made no {}", out.display());
    out
}

const CFGPAIR_SPEC: &str = r#"Name: cfgpair
Version: %{ver}
Release: 1
Summary: config files on upgrade
License: MIT
BuildArch: noarch

%description
Config files whose fate on upgrade rpm decides.

%install
mkdir -p %{buildroot}/etc/cfgpair %{buildroot}/usr/share/cfgpair
echo "plain %{ver}" > %{buildroot}/etc/cfgpair/plain.conf
echo "noreplace %{ver}" > %{buildroot}/etc/cfgpair/noreplace.conf
echo same > %{buildroot}/etc/cfgpair/same.conf
echo same > %{buildroot}/etc/cfgpair/same-noreplace.conf
echo "was config %{ver}" > %{buildroot}/etc/cfgpair/nolonger.conf
echo "data %{ver}" > %{buildroot}/usr/share/cfgpair/data
ln -s target-%{ver} %{buildroot}/etc/cfgpair/link.conf
%if %{ver} == 1
echo gone > %{buildroot}/etc/cfgpair/gone.conf
%else
echo "new %{ver}" > %{buildroot}/etc/cfgpair/new.conf
echo "new plain %{ver}" > %{buildroot}/etc/cfgpair/new-plain.conf
%endif

%files
%dir /etc/cfgpair
%config /etc/cfgpair/plain.conf
%config(noreplace) /etc/cfgpair/noreplace.conf
%config /etc/cfgpair/same.conf
%config(noreplace) /etc/cfgpair/same-noreplace.conf
%config /etc/cfgpair/link.conf
/usr/share/cfgpair
%if %{ver} == 1
%config /etc/cfgpair/nolonger.conf
%config /etc/cfgpair/gone.conf
%else
/etc/cfgpair/nolonger.conf
%config(noreplace) /etc/cfgpair/new.conf
%config /etc/cfgpair/new-plain.conf
%endif
"#;

#[test]
fn upgrades_keep_config_files_as_rpm_u_does_with_and_without_local_edits() {
    let rpm = need!("rpm");
    let rpmbuild = need!("rpmbuild");
    need!("tar");
    need!("cp");
    crate::need_root!("installing with rpm and extracting tarballs with their owners");
    let Some(corpus) = corpus() else {
        return;
    };
    let built = tempfile::tempdir().unwrap();
    let md5_v1 = build_cfgpair(&rpmbuild, built.path(), 1, 1);
    let md5_v2 = build_cfgpair(&rpmbuild, built.path(), 2, 1);
    let sha_v2 = build_cfgpair(&rpmbuild, built.path(), 2, 8);
    let c = |f: &str| corpus.join(f);
    let pairs: Vec<(Base, PathBuf, PathBuf)> = vec![
        (
            Base::WithoutSystemRelease,
            c("centos-release-6-0.el6.centos.5.x86_64.rpm"),
            c("centos-release-7-2.1511.el7.centos.2.10.x86_64.rpm"),
        ),
        (
            Base::Standin,
            c("dnf-tests-tour-4-4.noarch.rpm"),
            c("dnf-tests-tour-5-0.noarch.rpm"),
        ),
        (
            Base::Standin,
            c("dnf-tests-tour-5-0.noarch.rpm"),
            c("dnf-tests-tour-5-1.noarch.rpm"),
        ),
        (
            Base::Standin,
            c("libdnf-tests-tour-4-5.noarch.rpm"),
            c("libdnf-tests-tour-4-6.noarch.rpm"),
        ),
        (Base::Standin, md5_v1.clone(), md5_v2),
        (Base::Standin, md5_v1, sha_v2),
    ];
    let mut problems = Vec::new();
    for (base, old, new) in &pairs {
        for edit in [Edit::None, Edit::LocalEdits] {
            problems.extend(judge_upgrade(&rpm, *base, old, new, edit));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n(the differences allowed on purpose: {})",
        problems.len(),
        problems.join("\n"),
        named_differences()
    );
}

/// The rpmbuild pair's edited upgrade, spelled out: what rpm's rules give
/// each file (the comparison above checks ingot does the same as rpm; this
/// checks the case is the one meant, so a change in the pair cannot make
/// the comparison vacuous).
#[test]
fn the_edited_cfgpair_upgrade_walks_every_config_rule() {
    let rpm = need!("rpm");
    let rpmbuild = need!("rpmbuild");
    crate::need_root!("installing with rpm and extracting tarballs with their owners");
    let built = tempfile::tempdir().unwrap();
    let v1 = build_cfgpair(&rpmbuild, built.path(), 1, 1);
    let v2 = build_cfgpair(&rpmbuild, built.path(), 2, 1);
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    make_base(&rpm, Base::Standin, &base);
    run_ok(
        rpm_in(&rpm, &base)
            .args(["-i", "--nodeps", "--noscripts", "--noplugins"])
            .arg(&v1),
    );
    local_edits(&rpm, &base, &v1, &v2);
    let mine = bake_into(t.path(), &base, &v2).unwrap_or_else(|o| panic!("{}", stderr(&o)));
    let read = |p: &str| std::fs::read_to_string(mine.join(p)).ok();
    let edited = |v: &str| Some(format!("{v}\n# a local edit\n"));
    let admin = Some("a file of the admin's own\n".to_string());
    let want: &[(&str, Option<String>)] = &[
        // modified, plain %config: new content, the edit kept aside
        ("etc/cfgpair/plain.conf", Some("plain 2\n".into())),
        ("etc/cfgpair/plain.conf.rpmsave", edited("plain 1")),
        // modified, noreplace: the edit stays, the new one beside it
        ("etc/cfgpair/noreplace.conf", edited("noreplace 1")),
        (
            "etc/cfgpair/noreplace.conf.rpmnew",
            Some("noreplace 2\n".into()),
        ),
        // modified, identical in both versions: left alone, nothing beside
        ("etc/cfgpair/same.conf", edited("same")),
        ("etc/cfgpair/same.conf.rpmsave", None),
        ("etc/cfgpair/same.conf.rpmnew", None),
        ("etc/cfgpair/same-noreplace.conf.rpmnew", None),
        // no longer %config in the new version: replaced, the edit kept
        ("etc/cfgpair/nolonger.conf", Some("was config 2\n".into())),
        ("etc/cfgpair/nolonger.conf.rpmsave", edited("was config 1")),
        // gone from the new version, modified: kept as .rpmsave
        ("etc/cfgpair/gone.conf", None),
        ("etc/cfgpair/gone.conf.rpmsave", edited("gone")),
        // unowned files where the new version ships %config ones
        ("etc/cfgpair/new.conf", admin.clone()),
        ("etc/cfgpair/new.conf.rpmnew", Some("new 2\n".into())),
        ("etc/cfgpair/new-plain.conf", Some("new plain 2\n".into())),
        ("etc/cfgpair/new-plain.conf.rpmorig", admin),
        ("usr/share/cfgpair/data", Some("data 2\n".into())),
    ];
    for (p, w) in want {
        assert_eq!(&read(p), w, "{p}");
    }
    let link = |p: &str| std::fs::read_link(mine.join(p)).ok();
    assert_eq!(
        link("etc/cfgpair/link.conf"),
        Some(PathBuf::from("target-2"))
    );
    assert_eq!(
        link("etc/cfgpair/link.conf.rpmsave"),
        Some(PathBuf::from("edited-target"))
    );
}

/// What ingot does beyond rpm for packages of other tools: scriptlets are
/// never run but each is listed and warned about; file capabilities land
/// as `security.capability` (Debian's rpm is built without libcap, so it
/// sets none to compare with); a package's sysusers.d accounts are made.
#[test]
fn scriptlets_are_reported_and_capabilities_and_accounts_applied() {
    let rpm = need!("rpm");
    need!("tar");
    crate::need_root!("extracting tarballs with their owners");
    let Some(corpus) = corpus() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    make_base(&rpm, Base::Standin, &base);

    let scripts = t.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    bake_into(
        &scripts,
        &base,
        &corpus.join("rpm-rs-v6-rpm-scriptlets-1.0-1.noarch.rpm"),
    )
    .unwrap_or_else(|o| panic!("{}", stderr(&o)));
    let manifest = std::fs::read_dir(scripts.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let listed: Vec<&str> = json["scriptlets_not_run"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["package"] == "rpm-scriptlets-1.0-1.noarch")
        .and_then(|e| e["scriptlets"].as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    for s in [
        "%pretrans",
        "%pre",
        "%post",
        "%preun",
        "%postun",
        "%posttrans",
        "%trigger",
        "%filetrigger",
        "%transfiletrigger",
    ] {
        assert!(
            listed.contains(&s),
            "scriptlets_not_run lacks {s}: {listed:?}"
        );
    }
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w.as_str())
            .any(|w| w.contains("rpm-scriptlets") && w.contains("scriptlet")),
        "no warning about scriptlets not run: {}",
        json["warnings"]
    );

    let attrs = t.path().join("attrs");
    std::fs::create_dir_all(&attrs).unwrap();
    let mine = bake_into(
        &attrs,
        &base,
        &corpus.join("rpm-rs-v6-rpm-file-attrs-1.0-1.noarch.rpm"),
    )
    .unwrap_or_else(|o| panic!("{}", stderr(&o)));
    // cap_sys_ptrace,cap_sys_admin=ep: VFS_CAP_REVISION_2 | effective,
    // permitted bits 19 and 21.
    let mut want = 0x0200_0001u32.to_le_bytes().to_vec();
    want.extend_from_slice(&((1u32 << 19) | (1u32 << 21)).to_le_bytes());
    want.extend_from_slice(&[0; 12]);
    let got = xattr::get(
        mine.join("opt/rpm-file-attrs/with_caps"),
        "security.capability",
    )
    .ok()
    .flatten();
    assert_eq!(got.as_deref(), Some(&want[..]), "with_caps");
    let pw = std::fs::read_to_string(mine.join("etc/passwd")).unwrap();
    assert!(
        pw.lines().any(|l| l.starts_with("jane:")),
        "the package's sysusers.d user jane was not created:\n{pw}"
    );
}

// ------------------------------------------------------ hostile packages

/// A digest-valid package made with the `rpm` crate, holding `files`
/// (path as the header lists it, contents).
fn crafted(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let mut b = rpm::PackageBuilder::new(name, "1.0", "MIT", "noarch", "crafted");
    for (path, text) in files {
        b.with_file_contents(text.as_bytes().to_vec(), rpm::FileOptions::new(*path))
            .unwrap();
    }
    let p = dir.join(format!("{name}-1.0-1.noarch.rpm"));
    b.build().unwrap().write_file(&p).unwrap();
    p
}

/// A bake of `pkgs` (crafted packages) into the stand-in; its output.
fn bake_crafted(rpm: &Path, dir: &Path, pkgs: &[PathBuf]) -> std::process::Output {
    let base = dir.join("base");
    make_base(rpm, Base::Standin, &base);
    let pkgs: Vec<&Path> = pkgs.iter().map(PathBuf::as_path).collect();
    bake_output(dir, &base, &pkgs)
}

#[test]
fn a_header_path_with_dot_dot_is_refused_before_anything_is_written() {
    let rpm = need!("rpm");
    crate::need_root!("extracting the base with its owners");
    let t = tempfile::tempdir().unwrap();
    for (i, path) in [
        "/usr/share/x/../../../././etc/shadow",
        "/usr/share/x/../../../etc/shadow",
    ]
    .iter()
    .enumerate()
    {
        let dir = t.path().join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let pkg = crafted(&dir, "shadowy", &[(path, "root::0:0:99999:7:::\n")]);
        // rpm itself finds the package sound: the digests hold.
        let k = run_ok(Command::new(&rpm).arg("-K").arg(&pkg));
        assert!(stdout(&k).contains("digests"), "{}", stdout(&k));
        let o = bake_crafted(&rpm, &dir, &[pkg]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains("the header lists") && err.contains("not a plain absolute path"),
            "{path}: {err}"
        );
        assert!(
            !dir.join("out").exists(),
            "{path}: a refused bake left --out"
        );
    }
}

#[test]
fn a_file_through_a_symlinked_folder_conflicts_with_the_same_file_by_its_real_name() {
    let rpm = need!("rpm");
    crate::need_root!("extracting the base with its owners");
    let t = tempfile::tempdir().unwrap();
    // The stand-in has /bin -> usr/bin, as AL2023.
    let a = crafted(t.path(), "tool-a", &[("/usr/bin/tool", "A\n")]);
    let b = crafted(t.path(), "tool-b", &[("/bin/tool", "B\n")]);
    let o = bake_crafted(&rpm, t.path(), &[a, b]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("conflicts") && err.contains("/bin/tool") && err.contains("tool-a"),
        "{err}"
    );
    assert!(!t.path().join("out").exists());
}

/// The parts of a package file: lead and signature header (padded), main
/// header, payload.
fn split_package(b: &[u8]) -> (usize, usize, usize) {
    let header_len = |at: usize| {
        let il = u32::from_be_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let dl = u32::from_be_bytes(b[at + 12..at + 16].try_into().unwrap()) as usize;
        16 + il * 16 + dl
    };
    let sig_end = 96 + header_len(96).div_ceil(8) * 8;
    let hdr_end = sig_end + header_len(sig_end);
    (96, sig_end, hdr_end)
}

fn replace_all(b: &mut [u8], old: &[u8], new: &[u8]) -> usize {
    assert_eq!(old.len(), new.len());
    let mut n = 0;
    let mut i = 0;
    while i + old.len() <= b.len() {
        if &b[i..i + old.len()] == old {
            b[i..i + old.len()].copy_from_slice(new);
            n += 1;
            i += old.len();
        } else {
            i += 1;
        }
    }
    n
}

/// A package whose payload holds other bytes than its header's file
/// digests say, with every package digest made anew to match: the header
/// of a package holding `good`, the payload of one holding `evil` (of the
/// same length), `PAYLOADDIGEST` and the signature header's digests
/// recomputed. `rpm -K` calls it sound; only the file digest tells.
fn lying_package(dir: &Path) -> PathBuf {
    use md5::Digest as _;
    let make = |text: &str, name: &str| {
        let mut b = rpm::PackageBuilder::new("lying", "1.0", "MIT", "noarch", "crafted");
        b.using_config(
            rpm::BuildConfig::v4()
                .compression(rpm::CompressionType::None)
                .source_date(1_700_000_000u32),
        );
        b.with_file_contents(
            text.as_bytes().to_vec(),
            rpm::FileOptions::new("/opt/lying/data"),
        )
        .unwrap();
        let p = dir.join(name);
        b.build().unwrap().write_file(&p).unwrap();
        std::fs::read(p).unwrap()
    };
    let good = make("good data\n", "good.rpm");
    let evil = make("evil data\n", "evil.rpm");
    let (_, g_sig, g_hdr) = split_package(&good);
    let (_, _, e_hdr) = split_package(&evil);
    let (payload1, payload2) = (&good[g_hdr..], &evil[e_hdr..]);
    assert_eq!(payload1.len(), payload2.len());
    let mut header = good[g_sig..g_hdr].to_vec();
    let hex256 = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let n = replace_all(
        &mut header,
        hex256(payload1).as_bytes(),
        hex256(payload2).as_bytes(),
    );
    assert!(n >= 1, "no PAYLOADDIGEST to replace");
    let mut sig = good[..g_sig].to_vec();
    let sha1 = |b: &[u8]| hex::encode(sha1::Sha1::digest(b));
    replace_all(
        &mut sig,
        sha1(&good[g_sig..g_hdr]).as_bytes(),
        sha1(&header).as_bytes(),
    );
    replace_all(
        &mut sig,
        hex256(&good[g_sig..g_hdr]).as_bytes(),
        hex256(&header).as_bytes(),
    );
    let md5_of = |h: &[u8], p: &[u8]| {
        let mut m = md5::Md5::new();
        m.update(h);
        m.update(p);
        m.finalize().to_vec()
    };
    replace_all(
        &mut sig,
        &md5_of(&good[g_sig..g_hdr], payload1),
        &md5_of(&header, payload2),
    );
    let mut out = sig;
    out.extend_from_slice(&header);
    out.extend_from_slice(payload2);
    let p = dir.join("lying-1.0-1.noarch.rpm");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn a_file_whose_bytes_differ_from_its_digest_is_refused_as_rpm_refuses_it() {
    let rpm = need!("rpm");
    crate::need_root!("installing with rpm and extracting the base with its owners");
    let t = tempfile::tempdir().unwrap();
    let pkg = lying_package(t.path());
    let k = run_ok(Command::new(&rpm).arg("-K").arg(&pkg));
    assert!(
        stdout(&k).ends_with("digests OK\n"),
        "rpm -K: {}",
        stdout(&k)
    );
    // Real rpm refuses it while unpacking.
    let root = t.path().join("rpm-root");
    make_base(&rpm, Base::Standin, &root);
    let r = rpm_in(&rpm, &root)
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(!r.status.success(), "rpm installed the lying package");
    assert!(stderr(&r).contains("Digest mismatch"), "{}", stderr(&r));
    // And so does ingot, writing nothing.
    let o = bake_crafted(&rpm, t.path(), &[pkg]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/opt/lying/data") && err.contains("digest mismatch"),
        "{err}"
    );
    assert!(!t.path().join("out").exists(), "a refused bake left --out");
}
