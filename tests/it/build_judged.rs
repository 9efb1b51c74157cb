//! ingot's RPMs judged by the real tools: `rpm -K`, `rpm -qp --qf`,
//! `rpm -qp --dump`, `rpmlint`, `rpm -i --root` and `rpm -V`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::common::{build, build_example, example_dir, ingot, run_ok, stdout};
use crate::{need, need_root};

/// Example's changelog date, 2026-11-01 12:00 UTC.
const EXAMPLE_DATE: u64 = 1_793_534_400;

fn qf(rpm_bin: &Path, pkg: &Path, fmt: &str) -> String {
    stdout(&run_ok(
        Command::new(rpm_bin).args(["-qp", "--qf", fmt]).arg(pkg),
    ))
}

#[test]
fn rpm_checksig_accepts_the_package() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let o = run_ok(Command::new(rpm).arg("-K").arg(&pkg));
    let s = stdout(&o);
    assert!(s.contains("digests OK"), "{s}");
    assert!(!s.contains("NOT OK"), "{s}");
}

#[test]
fn rpm_query_shows_every_spec_field() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let fields = [
        ("NAME", "hello"),
        ("VERSION", "1.0.0"),
        ("RELEASE", "1"),
        ("EPOCH", "(none)"),
        ("ARCH", "noarch"),
        ("SUMMARY", "Example HTTP service packaged by ingot"),
        ("LICENSE", "MIT"),
        ("URL", "https://example.invalid/hello"),
        ("VENDOR", "ingot examples"),
        ("PACKAGER", "ingot examples <examples@example.invalid>"),
        ("GROUP", "Applications/Internet"),
        ("BUILDHOST", "ingot"),
        ("BUILDTIME", &EXAMPLE_DATE.to_string()),
        (
            "CHANGELOGNAME",
            "ingot examples <examples@example.invalid> - 1.0.0-1",
        ),
        ("CHANGELOGTEXT", "- First release of the example service"),
        ("CHANGELOGTIME", &EXAMPLE_DATE.to_string()),
        ("PAYLOADCOMPRESSOR", "zstd"),
        ("PAYLOADFLAGS", "3"),
        ("SOURCERPM", "(none)"),
    ];
    for (tag, want) in fields {
        let got = qf(&rpm, &pkg, &format!("%{{{tag}}}"));
        assert_eq!(got, want, "tag {tag}");
    }
    let description = qf(&rpm, &pkg, "%{DESCRIPTION}");
    assert!(
        description.starts_with("hello-server answers HTTP requests")
            && description.ends_with("boot-tests."),
        "{description}"
    );
}

/// One line of `rpm -qp --dump`.
#[derive(Debug)]
struct Dumped {
    size: u64,
    mtime: u64,
    digest: String,
    mode: String,
    owner: String,
    group: String,
    config: bool,
    doc: bool,
    link: String,
}

fn dump(rpm: &Path, pkg: &Path) -> BTreeMap<String, Dumped> {
    let out = stdout(&run_ok(Command::new(rpm).args(["-qp", "--dump"]).arg(pkg)));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 11, "unexpected dump line {l}");
            (
                f[0].to_string(),
                Dumped {
                    size: f[1].parse().unwrap(),
                    mtime: f[2].parse().unwrap(),
                    digest: f[3].to_string(),
                    mode: f[4].to_string(),
                    owner: f[5].to_string(),
                    group: f[6].to_string(),
                    config: f[7] == "1",
                    doc: f[8] == "1",
                    link: f[10].to_string(),
                },
            )
        })
        .collect()
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn rpm_dump_shows_every_file_with_mode_owner_flags_and_digest() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let d = dump(&rpm, &pkg);
    let ex = example_dir();

    let server = &d["/usr/bin/hello-server"];
    assert_eq!(server.mode, "0100755");
    assert_eq!(
        (server.owner.as_str(), server.group.as_str()),
        ("root", "root")
    );
    assert_eq!(server.digest, sha256_file(&ex.join("hello-server")));
    assert_eq!(
        server.size,
        std::fs::metadata(ex.join("hello-server")).unwrap().len()
    );
    assert!(!server.config && !server.doc);

    let conf = &d["/etc/hello/hello.conf"];
    assert_eq!(conf.mode, "0100640");
    assert_eq!(
        (conf.owner.as_str(), conf.group.as_str()),
        ("root", "hello")
    );
    assert!(conf.config);
    assert_eq!(conf.digest, sha256_file(&ex.join("hello.conf")));

    assert!(d["/usr/share/doc/hello/README.md"].doc);

    let state = &d["/var/lib/hello"];
    assert_eq!(state.mode, "040750");
    assert_eq!(
        (state.owner.as_str(), state.group.as_str()),
        ("hello", "hello")
    );

    let unit = &d["/usr/lib/systemd/system/hello.service"];
    assert_eq!(unit.digest, sha256_file(&ex.join("hello.service")));
    assert_eq!(unit.mode, "0100644");

    // Generated files, and directories the package creates, are owned...
    for p in [
        "/usr/lib/systemd/system-preset/50-hello.preset",
        "/usr/lib/sysusers.d/hello.conf",
        "/etc/hello",
        "/usr/share/doc/hello",
    ] {
        assert!(d.contains_key(p), "{p} missing from {:?}", d.keys());
    }
    assert_eq!(d["/etc/hello"].mode, "040755");
    // ...directories the system already has are not.
    for p in [
        "/usr",
        "/usr/bin",
        "/etc",
        "/var/lib",
        "/usr/lib/systemd/system",
    ] {
        assert!(!d.contains_key(p), "package claims system directory {p}");
    }
    // Every timestamp is the source date, whatever the files say on disk.
    for (p, f) in &d {
        assert_eq!(f.mtime, EXAMPLE_DATE, "mtime of {p}");
        assert_eq!(f.link, "X", "{p} has a link target");
    }
    let flags = qf(&rpm, &pkg, "[%{FILEFLAGS:fflags} %{FILENAMES}\n]");
    assert!(flags.contains("cn /etc/hello/hello.conf"), "{flags}");
}

#[test]
fn rpm_lists_the_specs_and_the_automatic_dependencies() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let requires = stdout(&run_ok(
        Command::new(&rpm).args(["-qp", "--requires"]).arg(&pkg),
    ));
    for want in [
        "/usr/bin/python3",
        "python3 >= 3.9",
        "config(hello) = 1.0.0-1",
        "rpmlib(PayloadIsZstd) <= 5.4.18-1",
    ] {
        assert!(
            requires.lines().any(|l| l == want),
            "no `{want}` in\n{requires}"
        );
    }
    let provides = stdout(&run_ok(
        Command::new(&rpm).args(["-qp", "--provides"]).arg(&pkg),
    ));
    for want in ["hello = 1.0.0-1", "config(hello) = 1.0.0-1", "group(hello)"] {
        assert!(
            provides.lines().any(|l| l == want),
            "no `{want}` in\n{provides}"
        );
    }
    assert!(
        provides.lines().any(|l| l.starts_with("user(hello) = ")),
        "{provides}"
    );
    // Scriptlet prerequisites, as %systemd_requires gives them.
    let pre = qf(&rpm, &pkg, "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]");
    for want in ["systemd post", "systemd preun", "systemd postun"] {
        assert!(pre.lines().any(|l| l == want), "no `{want}` in\n{pre}");
    }
}

#[test]
fn scriptlets_preset_units_on_install_and_create_users_before_files() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let s = stdout(&run_ok(
        Command::new(&rpm).args(["-qp", "--scripts"]).arg(&pkg),
    ));
    let section = |name: &str| -> String {
        let head = format!("{name} scriptlet (using /bin/sh):");
        let start = s
            .find(&head)
            .unwrap_or_else(|| panic!("no `{head}` in\n{s}"))
            + head.len();
        let rest = &s[start..];
        let end = rest
            .find(" scriptlet (using")
            .and_then(|i| rest[..i].rfind('\n'))
            .unwrap_or(rest.len());
        rest[..end].to_string()
    };
    assert!(section("preinstall").contains("systemd-sysusers"), "{s}");
    assert!(
        section("postinstall").contains("preset hello.service"),
        "{s}"
    );
    assert!(
        section("preuninstall").contains("disable --now hello.service"),
        "{s}"
    );
    assert!(
        section("postuninstall").contains("try-restart hello.service"),
        "{s}"
    );
}

/// rpmlint errors accepted on the example package: (the text after
/// `E: `, why it is right). Anything else rpmlint calls an error fails.
const RPMLINT_ALLOWED: &[(&str, &str)] = &[
    (
        "no-signature",
        "packages are unsigned unless --sign-key is given",
    ),
    (
        "non-standard-dir-perm /var/lib/hello 750",
        "the service's state folder is private to its account",
    ),
    (
        "non-readable /etc/hello/hello.conf 640",
        "the config is readable by root and the service's group only",
    ),
];

#[test]
fn rpmlint_reports_no_errors_beyond_the_allowlist() {
    let rpmlint = need!("rpmlint");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let o = Command::new(rpmlint).arg(&pkg).output().unwrap();
    let out = stdout(&o);
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": E: "))
        .filter(|l| {
            let finding = l.split(": E: ").nth(1).unwrap_or("").trim();
            !RPMLINT_ALLOWED.iter().any(|(a, _)| *a == finding)
        })
        .collect();
    assert!(
        errors.is_empty(),
        "rpmlint errors:\n{}\n--- full output\n{out}",
        errors.join("\n")
    );
    assert!(out.contains("1 packages and 0 specfiles checked"), "{out}");
}

/// An empty root with `/etc/passwd` and `/etc/group` that know the
/// example's account (what its sysusers file creates on a live system).
fn fake_root(dir: &Path) {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nhello:x:990:990:hello:/var/lib/hello:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nhello:x:990:\n").unwrap();
}

#[test]
fn rpm_installs_the_package_into_a_root_and_verifies_it_clean() {
    let rpm = need!("rpm");
    need_root!("rpm -i --root, which sets owners");
    let t = tempfile::tempdir().unwrap();
    let pkg = build_example(t.path());
    let root = t.path().join("root");
    fake_root(&root);
    let r = |args: &[&str]| {
        let mut c = Command::new(&rpm);
        c.arg("--root")
            .arg(&root)
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args);
        c
    };
    run_ok(&mut r(&["--initdb"]));
    run_ok(r(&["-i", "--nodeps", "--noscripts"]).arg(&pkg));
    let v = run_ok(&mut r(&["-V", "--nodeps", "hello"]));
    assert!(v.stdout.is_empty(), "rpm -V: {}", stdout(&v));
    let q = stdout(&run_ok(&mut r(&["-qa"])));
    assert_eq!(q.trim(), "hello-1.0.0-1.noarch");
    // The files are really there, with the package's modes and owners.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root.join("etc/hello/hello.conf")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(m.gid(), 990);
    assert_eq!(
        std::fs::read(root.join("usr/bin/hello-server")).unwrap(),
        std::fs::read(example_dir().join("hello-server")).unwrap()
    );
    // And erase removes them again.
    run_ok(&mut r(&["-e", "--nodeps", "--noscripts", "hello"]));
    assert!(!root.join("usr/bin/hello-server").exists());
}

#[test]
fn every_compression_is_readable_by_rpm() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    for (arg, compressor) in [
        ("zstd:19", "zstd"),
        ("gzip:9", "gzip"),
        ("xz", "xz"),
        ("bzip2", "bzip2"),
        ("none", ""),
    ] {
        let out = t.path().join(arg.replace(':', "-"));
        let o = run_ok(
            ingot()
                .arg("build")
                .arg(example_dir().join("hello.toml"))
                .args(["--compression", arg, "--out"])
                .arg(&out),
        );
        let pkg = stdout(&o).trim().to_string();
        let k = stdout(&run_ok(Command::new(&rpm).arg("-K").arg(&pkg)));
        assert!(k.contains("digests OK"), "{arg}: {k}");
        if !compressor.is_empty() {
            assert_eq!(
                qf(&rpm, Path::new(&pkg), "%{PAYLOADCOMPRESSOR}"),
                compressor
            );
        }
        // rpm2cpio must unpack it: the payload really is in that format.
        let cpio = run_ok(Command::new("sh").arg("-c").arg(format!(
            "rpm2cpio '{pkg}' | cpio -t --quiet 2>/dev/null || rpm2cpio '{pkg}' | wc -c"
        )));
        assert!(
            stdout(&cpio).contains("usr/bin/hello-server"),
            "{arg}: {}",
            stdout(&cpio)
        );
    }
}

#[test]
fn a_directory_source_is_packaged_recursively_with_symlinks_kept() {
    let rpm = need!("rpm");
    let t = tempfile::tempdir().unwrap();
    let site = t.path().join("site");
    std::fs::create_dir_all(site.join("css/deep")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(site.join("css/deep/a.css"), "body{}\n").unwrap();
    std::os::unix::fs::symlink("index.html", site.join("home.html")).unwrap();
    std::fs::write(
        t.path().join("site.toml"),
        r#"
[package]
name = "site"
version = "2"
arch = "noarch"
summary = "A static site"
license = "MIT"

[[files]]
src = "site"
dest = "/usr/share/site"
mode = "0644"
dir_mode = "0755"
"#,
    )
    .unwrap();
    let pkg = build(&t.path().join("site.toml"), &t.path().join("dist"));
    let d = dump(&rpm, &pkg);
    let names: Vec<&str> = d.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "/usr/share/site",
            "/usr/share/site/css",
            "/usr/share/site/css/deep",
            "/usr/share/site/css/deep/a.css",
            "/usr/share/site/home.html",
            "/usr/share/site/index.html",
        ]
    );
    assert_eq!(d["/usr/share/site/home.html"].link, "index.html");
    assert_eq!(d["/usr/share/site/home.html"].mode, "0120777");
    assert_eq!(d["/usr/share/site/css/deep"].mode, "040755");
}
