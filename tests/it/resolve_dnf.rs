//! The solver (`ingot::resolve`) against dnf 4, the judge: the same
//! repositories (RPMs built by `ingot build`, indexed by `createrepo_c`),
//! the same installed set (Amazon Linux 2023's real rpm database), the
//! same requests. dnf installs for real into a copy of the base; `rpm -qa`
//! before and after says what it added and removed. The solver gets
//! candidates made from the same RPMs' headers (file lists cut to what
//! createrepo's `primary` lists, the rest through the hook) and must
//! choose the same NEVRAs, remove the same ones, and fail where dnf fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ingot::arch::Arch;
use ingot::resolve::{self, Candidate, Limits, Request, ResolveError};
use ingot::rpm::read::PackageHeaders;
use ingot::rpmdb::Rpmdb;

use crate::common::{build, run_ok, stdout};
use crate::{need, need_root, need_shared};

/// One test package: `name-[epoch:]version-release.arch`, its repository
/// and its dependencies (`requires`, `provides`, ... as in a spec).
struct P {
    nevra: &'static str,
    repo: &'static str,
    deps: &'static [(&'static str, &'static [&'static str])],
    files: &'static [&'static str],
}

const fn p(nevra: &'static str, deps: &'static [(&'static str, &'static [&'static str])]) -> P {
    P {
        nevra,
        repo: "main",
        deps,
        files: &[],
    }
}

/// Several versions of a library, file dependencies (in primary and only
/// in the file lists), rich dependencies, conflicts, obsoletes, weak
/// dependencies, a pinned repository, an architecture that does not fit,
/// and newer versions of packages the base has.
const PACKAGES: &[P] = &[
    p(
        "libfoo-1.0-1.x86_64",
        &[("provides", &["libfoo.so.1()(64bit)"])],
    ),
    p(
        "libfoo-1.1-1.x86_64",
        &[("provides", &["libfoo.so.1()(64bit)"])],
    ),
    p(
        "libfoo-2.0-1.x86_64",
        &[("provides", &["libfoo.so.2()(64bit)"])],
    ),
    p(
        "app-old-1-1.x86_64",
        &[("requires", &["libfoo.so.1()(64bit)", "libc.so.6()(64bit)"])],
    ),
    p(
        "app-new-1-1.x86_64",
        &[("requires", &["libfoo.so.2()(64bit)", "/bin/sh"])],
    ),
    P {
        nevra: "tool-1-1.x86_64",
        repo: "main",
        deps: &[],
        files: &["/usr/bin/tool-bin", "/opt/data/thing.dat"],
    },
    p(
        "tooluser-1-1.noarch",
        &[("requires", &["/usr/bin/tool-bin"])],
    ),
    p(
        "datauser-1-1.noarch",
        &[("requires", &["/opt/data/thing.dat"])],
    ),
    p("mta-a-1-1.noarch", &[("provides", &["mta"])]),
    p("mta-b-1-1.noarch", &[("provides", &["mta"])]),
    p("mta-user-1-1.noarch", &[("requires", &["mta"])]),
    p("rich-or-1-1.noarch", &[("requires", &["(mta-b or mta-a)"])]),
    p("pyextra-1-1.noarch", &[]),
    p("gui-1-1.noarch", &[]),
    p("cli-1-1.noarch", &[]),
    p(
        "rich-if-1-1.noarch",
        &[("requires", &["(pyextra if python3)"])],
    ),
    p(
        "rich-ifelse-1-1.noarch",
        &[("requires", &["(gui if desktop else cli)"])],
    ),
    p(
        "rich-conflict-1-1.noarch",
        &[("requires", &["mta"]), ("conflicts", &["(mta-a or cli)"])],
    ),
    p(
        "rich-with-1-1.noarch",
        &[("requires", &["(libfoo >= 1.1 with libfoo < 2)"])],
    ),
    p(
        "rich-and-1-1.noarch",
        &[("requires", &["((mta-a and pyextra) or gui)"])],
    ),
    p(
        "conflictor-1-1.x86_64",
        &[("requires", &["libfoo"]), ("conflicts", &["libfoo < 2"])],
    ),
    p("nobash-1-1.noarch", &[("conflicts", &["bash < 6"])]),
    p(
        "amazon-linux-repo-s3-2023.2-1.amzn2023.noarch",
        &[
            (
                "provides",
                &["amazon-linux-repo", "amazon-linux-repo(2023)"],
            ),
            ("obsoletes", &["amazon-linux-repo-cdn < 2024"]),
        ],
    ),
    p("tzdata-2023d-1.amzn2023.noarch", &[]),
    p("tz-user-1-1.noarch", &[("requires", &["tzdata >= 2023d"])]),
    // 1.23 drops a soname the base's python3-libs needs: the upgrade
    // must stop at 1.22.
    p(
        "gdbm-libs-1:1.22-1.amzn2023.x86_64",
        &[(
            "provides",
            &["libgdbm.so.6()(64bit)", "libgdbm_compat.so.4()(64bit)"],
        )],
    ),
    p(
        "gdbm-libs-1:1.23-1.amzn2023.x86_64",
        &[("provides", &["libgdbm.so.6()(64bit)"])],
    ),
    p(
        "gdbm-user-2-1.x86_64",
        &[("requires", &["gdbm-libs >= 1:1.23"])],
    ),
    p(
        "gdbm-user-1-1.x86_64",
        &[("requires", &["gdbm-libs >= 1:1.20"])],
    ),
    p(
        "gdbm-new-1-1.x86_64",
        &[("requires", &["gdbm-libs >= 1:1.23"])],
    ),
    p(
        "rec-app-1-1.noarch",
        &[(
            "recommends",
            &["rec-extra", "rec-broken", "(gui if desktop)"],
        )],
    ),
    p("rec-extra-1-1.noarch", &[]),
    p("rec-broken-1-1.noarch", &[("requires", &["nowhere-thing"])]),
    p("rec-plug-1-1.noarch", &[("supplements", &["rec-app"])]),
    p(
        "lang-plug-1-1.noarch",
        &[("supplements", &["(rec-app and python3)"])],
    ),
    p("base-plug-1-1.noarch", &[("supplements", &["bash"])]),
    P {
        nevra: "mylib-1-1.noarch",
        repo: "pinned",
        deps: &[],
        files: &[],
    },
    p("mylib-2-1.noarch", &[]),
    p("pick-a-1-1.noarch", &[("provides", &["pickme"])]),
    P {
        nevra: "pick-z-1-1.noarch",
        repo: "pinned",
        deps: &[("provides", &["pickme"])],
        files: &[],
    },
    p("picker-1-1.noarch", &[("requires", &["pickme"])]),
    p("armonly-1-1.aarch64", &[]),
    p(
        "needs-missing-1-1.x86_64",
        &[("requires", &["libnothere.so.1()(64bit)"])],
    ),
    p("web-2-1.noarch", &[("requires", &["libfoo.so.3()(64bit)"])]),
    p("web-1-1.noarch", &[("requires", &["libfoo.so.1()(64bit)"])]),
];

/// Requests dnf and the solver both answer, with weak dependencies off.
const REQUESTS: &[&[&str]] = &[
    &["app-old"],
    &["app-new"],
    &["app-old", "app-new"],
    &["tooluser"],
    &["datauser"],
    &["mta-user"],
    &["rich-or"],
    &["rich-if"],
    &["rich-ifelse"],
    &["rich-conflict"],
    &["rich-with"],
    &["rich-and"],
    &["conflictor"],
    &["app-old", "conflictor"],
    &["nobash"],
    &["amazon-linux-repo-s3"],
    &["tz-user"],
    &["tzdata"],
    &["gdbm-user"],
    &["gdbm-new"],
    &["rec-app"],
    &["mylib"],
    &["picker"],
    &["armonly"],
    &["needs-missing"],
    &["web"],
    &["libfoo < 2"],
    &["libfoo.so.1()(64bit)"],
    &["/usr/bin/tool-bin"],
];

/// Requests also compared with weak dependencies on (each dnf run takes
/// most of a second).
const WEAK_TOO: &[&[&str]] = &[
    &["rec-app"],
    &["app-old"],
    &["rich-or"],
    &["amazon-linux-repo-s3"],
    &["gdbm-user"],
    &["needs-missing"],
];

fn split_nevra(nevra: &str) -> (&str, Option<&str>, &str, &str, &str) {
    let (nvr, arch) = nevra.rsplit_once('.').unwrap();
    let mut parts = nvr.rsplitn(3, '-');
    let release = parts.next().unwrap();
    let ev = parts.next().unwrap();
    let name = parts.next().unwrap();
    match ev.split_once(':') {
        Some((e, v)) => (name, Some(e), v, release, arch),
        None => (name, None, ev, release, arch),
    }
}

fn spec(p: &P) -> String {
    let (name, epoch, version, release, arch) = split_nevra(p.nevra);
    let mut s = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nrelease = \"{release}\"\n\
         arch = \"{arch}\"\nsummary = \"resolver test package\"\nlicense = \"MIT\"\n"
    );
    if let Some(e) = epoch {
        s.push_str(&format!("epoch = {e}\n"));
    }
    s.push_str("\n[dependencies]\nauto = false\n");
    for (kind, list) in p.deps {
        let quoted: Vec<String> = list.iter().map(|d| format!("{d:?}")).collect();
        s.push_str(&format!("{kind} = [{}]\n", quoted.join(", ")));
    }
    for f in p.files {
        s.push_str(&format!("\n[[files]]\nsrc = \"payload\"\ndest = \"{f}\"\n"));
    }
    s
}

/// Build every package into its repository's folder and index each.
fn make_repos(dir: &Path, createrepo: &Path) -> BTreeMap<&'static str, PathBuf> {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("payload"), "data\n").unwrap();
    let mut repos = BTreeMap::new();
    for p in PACKAGES {
        let repo = repos
            .entry(p.repo)
            .or_insert_with(|| dir.join("repos").join(p.repo))
            .clone();
        let file = specs.join(format!("{}.toml", p.nevra.replace(':', "_")));
        std::fs::write(&file, spec(p)).unwrap();
        build(&file, &repo);
    }
    for path in repos.values() {
        run_ok(Command::new(createrepo).arg("-q").arg(path));
    }
    repos
}

/// A root with the real Amazon Linux 2023 database, and the rpm macro
/// file that points Debian's rpm (and so dnf) at `/var/lib/rpm`.
fn make_base(dir: &Path, db: &Path) -> PathBuf {
    let base = dir.join("base");
    std::fs::create_dir_all(base.join("var/lib/rpm")).unwrap();
    std::fs::copy(db, base.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    base
}

fn rpm_qa(rpm: &Path, root: &Path) -> BTreeSet<String> {
    let o = run_ok(
        Command::new(rpm)
            .arg("--root")
            .arg(root)
            .args(["--dbpath", "/var/lib/rpm", "-qa", "--qf"])
            .arg("%{NAME}-%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\\n"),
    );
    stdout(&o).lines().map(str::to_string).collect()
}

/// What one side decided: the NEVRAs added and removed, or that it
/// refused (with its message).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Changes {
        added: BTreeSet<String>,
        removed: BTreeSet<String>,
    },
    Refused(String),
}

impl Outcome {
    fn same_as(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Refused(_), Outcome::Refused(_)) => true,
            _ => self == other,
        }
    }
}

struct Dnf<'a> {
    dnf: &'a Path,
    rpm: &'a Path,
    dir: &'a Path,
    base: &'a Path,
    repos: &'a BTreeMap<&'static str, PathBuf>,
}

impl Dnf<'_> {
    /// `dnf install` for real into a fresh copy of the base.
    fn install(&self, names: &[&str], weak: bool) -> Outcome {
        let root = self.dir.join("root");
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        crate::common::copy_dir(self.base, &root);
        let before = rpm_qa(self.rpm, &root);
        let mut c = Command::new(self.dnf);
        c.env("HOME", self.dir.join("home"))
            .arg("--installroot")
            .arg(&root)
            .args(["--setopt=reposdir=/dev/null", "--noplugins", "--nogpgcheck"])
            .args(["--releasever=2023", "--setopt=best=False", "-y", "-q"])
            .arg(format!("--setopt=install_weak_deps={weak}"))
            .arg(format!(
                "--setopt=cachedir={}",
                self.dir.join("cache").display()
            ));
        for (name, path) in self.repos {
            c.arg(format!("--repofrompath={name},file://{}", path.display()));
        }
        c.arg("--setopt=pinned.priority=10");
        c.arg("install").args(names);
        let o = c.output().unwrap();
        if !o.status.success() {
            return Outcome::Refused(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        let after = rpm_qa(self.rpm, &root);
        Outcome::Changes {
            added: after.difference(&before).cloned().collect(),
            removed: before.difference(&after).cloned().collect(),
        }
    }
}

/// The paths createrepo_c puts in `primary`.
fn in_primary(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

struct Ours {
    installed: Vec<Candidate>,
    available: Vec<Candidate>,
    /// Every path of every available package, for the hook.
    all_files: BTreeMap<String, Vec<usize>>,
}

impl Ours {
    fn new(db: &Path, repos: &BTreeMap<&'static str, PathBuf>) -> Ours {
        let db = Rpmdb::open_read_only(db).unwrap();
        let installed = db
            .packages()
            .unwrap()
            .into_iter()
            .map(|(hnum, h)| Candidate::from_header(&h, hnum as usize, "@System", 99))
            .collect();
        let mut available = Vec::new();
        let mut all_files: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (name, path) in repos {
            let priority = if *name == "pinned" { 10 } else { 99 };
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
                .collect();
            files.sort();
            for f in files {
                let (h, _) = PackageHeaders::open(&f).unwrap();
                let mut c = Candidate::from_header(&h.header, available.len(), name, priority);
                for path in &c.files {
                    all_files.entry(path.clone()).or_default().push(c.id);
                }
                c.files.retain(|p| in_primary(p));
                available.push(c);
            }
        }
        Ours {
            installed,
            available,
            all_files,
        }
    }

    fn install(&self, names: &[&str], weak: bool) -> Outcome {
        let request = Request {
            install: names.iter().map(|s| s.to_string()).collect(),
            local: Vec::new(),
            weak_deps: weak,
            arch: Arch::X86_64,
        };
        let mut hook = |path: &str| -> Result<Vec<usize>, String> {
            Ok(self.all_files.get(path).cloned().unwrap_or_default())
        };
        match resolve::resolve(
            &self.installed,
            &self.available,
            &request,
            &mut hook,
            &Limits::default(),
        ) {
            Ok(r) => Outcome::Changes {
                added: r.install.iter().map(|c| c.nevra.clone()).collect(),
                removed: r.replaced.iter().map(|c| c.nevra.clone()).collect(),
            },
            Err(ResolveError::Unsatisfiable { explanation }) => Outcome::Refused(explanation),
            Err(e) => panic!("{names:?}: {e}"),
        }
    }
}

#[test]
fn the_solver_chooses_what_dnf_chooses() {
    let dnf = need!("dnf");
    let createrepo = need!("createrepo_c");
    let rpm = need!("rpm");
    need_root!("dnf --installroot installs into a copy of the base");
    let shared = need_shared!("al2023-plain/rpmdb.sqlite");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let repos = make_repos(dir, &createrepo);
    let base = make_base(dir, &shared);
    let judge = Dnf {
        dnf: &dnf,
        rpm: &rpm,
        dir,
        base: &base,
        repos: &repos,
    };
    let ours = Ours::new(&shared, &repos);
    let mut differences = Vec::new();
    let mut changed = 0;
    let mut refused = 0;
    for names in REQUESTS {
        let weak_matters = WEAK_TOO.contains(names);
        for weak in [false, true] {
            if weak && !weak_matters {
                continue;
            }
            let theirs = judge.install(names, weak);
            let mine = ours.install(names, weak);
            match &theirs {
                Outcome::Changes { .. } => changed += 1,
                Outcome::Refused(_) => refused += 1,
            }
            if let (Outcome::Refused(text), Some(facts)) = (&mine, facts(names)) {
                for fact in facts {
                    if !text.contains(fact) {
                        differences.push(format!("{names:?}: no {fact:?} in:\n{text}"));
                    }
                }
            }
            if !mine.same_as(&theirs) {
                differences.push(format!(
                    "{names:?} weak={weak}:\n  dnf:   {}\n  ingot: {}",
                    short(&theirs),
                    short(&mine)
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // The requests exercise both outcomes, not only one.
    assert!(
        changed >= 25 && refused >= 6,
        "{changed} changed, {refused} refused"
    );
}
/// What the explanation of a refused request must say (the facts dnf's
/// own message names).
fn facts(names: &[&str]) -> Option<&'static [&'static str]> {
    Some(match names {
        ["app-old", "app-new"] => &[
            "app-new-1-1.x86_64 requires libfoo.so.2()(64bit), which only libfoo-2.0-1.x86_64 provides",
            "app-old-1-1.x86_64 requires libfoo.so.1()(64bit); considered: libfoo-1.1-1.x86_64, libfoo-1.0-1.x86_64",
            "cannot both be installed (one version per name)",
        ],
        ["app-old", "conflictor"] => &[
            "conflictor-1-1.x86_64 conflicts with `libfoo < 2`, which rules out libfoo-1.1-1.x86_64",
        ],
        ["nobash"] => &[
            "nobash-1-1.noarch conflicts with `bash < 6`, which rules out bash-5.2.15-1.amzn2023.0.2.x86_64 (installed)",
            "bash-5.2.15-1.amzn2023.0.2.x86_64 is installed, and nothing newer or obsoleting it is offered",
        ],
        ["gdbm-new"] => &[
            "gdbm-new-1-1.x86_64 requires gdbm-libs >= 1:1.23, which only gdbm-libs-1:1.23-1.amzn2023.x86_64 provides",
            "python3-libs-3.9.16-1.amzn2023.0.3.x86_64 (installed) requires libgdbm_compat.so.4()(64bit)",
        ],
        ["armonly"] => &[
            "armonly-1-1.aarch64 cannot be installed: its architecture aarch64 does not fit an x86_64 image",
        ],
        ["needs-missing"] => &[
            "`needs-missing` (asked for) needs needs-missing-1-1.x86_64",
            "needs-missing-1-1.x86_64 requires libnothere.so.1()(64bit), which nothing provides",
        ],
        _ => return None,
    })
}

/// An outcome for a failure message.
fn short(o: &Outcome) -> String {
    match o {
        Outcome::Changes { added, removed } => format!("+{added:?} -{removed:?}"),
        Outcome::Refused(m) => format!("REFUSED\n{m}"),
    }
}
