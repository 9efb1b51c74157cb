//! The solver on small synthetic pools: one behaviour per test.

use super::*;
use crate::spec::dep::{self, Dependency};

/// `name-version-release.arch`, from repository `r` (priority 99).
fn pkg(nevra: &str) -> Candidate {
    let (nvr, arch) = nevra.rsplit_once('.').unwrap();
    let mut parts = nvr.rsplitn(3, '-');
    let release = parts.next().unwrap();
    let version = parts.next().unwrap();
    let name = parts.next().unwrap();
    let (epoch, version) = match version.split_once(':') {
        Some((e, v)) => (e.parse().unwrap(), v),
        None => (0, version),
    };
    Candidate {
        name: name.into(),
        epoch,
        version: version.into(),
        release: release.into(),
        arch: arch.into(),
        repo: "r".into(),
        priority: 99,
        ..Default::default()
    }
}

/// A dependency entry as a header stores it.
fn cap(text: &str) -> Capability {
    match dep::parse(text).unwrap() {
        Dependency::Simple(s) => {
            let (flags, evr) = match s.constraint {
                Some((op, evr)) => (
                    match op {
                        dep::Op::Lt => 2,
                        dep::Op::Le => 2 | 8,
                        dep::Op::Eq => 8,
                        dep::Op::Ge => 4 | 8,
                        dep::Op::Gt => 4,
                    },
                    evr,
                ),
                None => (0, String::new()),
            };
            Capability {
                name: s.name.into(),
                flags,
                evr: evr.into(),
            }
        }
        Dependency::Rich { text, .. } => Capability {
            name: text.into(),
            flags: 0,
            evr: Default::default(),
        },
    }
}

fn caps(v: &[&str]) -> Vec<Capability> {
    v.iter().map(|t| cap(t)).collect()
}

trait With {
    fn requires(self, v: &[&str]) -> Self;
    fn provides(self, v: &[&str]) -> Self;
    fn conflicts(self, v: &[&str]) -> Self;
    fn obsoletes(self, v: &[&str]) -> Self;
    fn recommends(self, v: &[&str]) -> Self;
    fn supplements(self, v: &[&str]) -> Self;
    fn files(self, v: &[&str]) -> Self;
    fn repo(self, name: &str, priority: i32) -> Self;
}

impl With for Candidate {
    fn requires(mut self, v: &[&str]) -> Self {
        self.requires = caps(v);
        self
    }
    fn provides(mut self, v: &[&str]) -> Self {
        self.provides = caps(v);
        self
    }
    fn conflicts(mut self, v: &[&str]) -> Self {
        self.conflicts = caps(v);
        self
    }
    fn obsoletes(mut self, v: &[&str]) -> Self {
        self.obsoletes = caps(v);
        self
    }
    fn recommends(mut self, v: &[&str]) -> Self {
        self.recommends = caps(v);
        self
    }
    fn supplements(mut self, v: &[&str]) -> Self {
        self.supplements = caps(v);
        self
    }
    fn files(mut self, v: &[&str]) -> Self {
        self.files = v.iter().map(|s| s.to_string()).collect();
        self
    }
    fn repo(mut self, name: &str, priority: i32) -> Self {
        self.repo = name.into();
        self.priority = priority;
        self
    }
}

/// Give the available packages ids by position.
fn ids(mut v: Vec<Candidate>) -> Vec<Candidate> {
    for (i, c) in v.iter_mut().enumerate() {
        c.id = 100 + i;
    }
    v
}

fn request(names: &[&str]) -> Request {
    Request {
        install: names.iter().map(|s| s.to_string()).collect(),
        local: Vec::new(),
        weak_deps: false,
        arch: Arch::X86_64,
    }
}

fn run(
    installed: &[Candidate],
    available: &[Candidate],
    req: &Request,
) -> Result<Resolution, ResolveError> {
    resolve(
        installed,
        available,
        req,
        &mut NoMoreFiles,
        &Limits::default(),
    )
}

/// The NEVRAs to install.
fn installs(installed: &[Candidate], available: &[Candidate], names: &[&str]) -> Vec<String> {
    nevras(&run(installed, available, &request(names)).unwrap())
}

fn nevras(r: &Resolution) -> Vec<String> {
    r.install.iter().map(|c| c.nevra.clone()).collect()
}

fn unsat(installed: &[Candidate], available: &[Candidate], req: &Request) -> String {
    match run(installed, available, req) {
        Err(ResolveError::Unsatisfiable { explanation }) => explanation,
        other => panic!("expected no solution, got {other:?}"),
    }
}

#[test]
fn the_highest_version_that_fits_is_chosen() {
    let repo = ids(vec![
        pkg("libfoo-1.0-1.x86_64"),
        pkg("libfoo-1.10-1.x86_64"),
        pkg("libfoo-1.9-1.x86_64"),
        pkg("app-1-1.x86_64").requires(&["libfoo < 1.10"]),
    ]);
    assert_eq!(installs(&[], &repo, &["libfoo"]), ["libfoo-1.10-1.x86_64"]);
    assert_eq!(
        installs(&[], &repo, &["app"]),
        ["app-1-1.x86_64", "libfoo-1.9-1.x86_64"]
    );
    // A version in the request, as `dnf install 'libfoo < 1.9'`.
    assert_eq!(
        installs(&[], &repo, &["libfoo < 1.9"]),
        ["libfoo-1.0-1.x86_64"]
    );
}

#[test]
fn epochs_beat_versions_and_a_requirement_without_release_matches_any() {
    let repo = ids(vec![
        pkg("tool-1:1.0-1.x86_64"),
        pkg("tool-2.0-1.x86_64"),
        pkg("lib-2.0-7.x86_64"),
        pkg("app-1-1.x86_64").requires(&["lib = 2.0"]),
    ]);
    assert_eq!(installs(&[], &repo, &["tool"]), ["tool-1:1.0-1.x86_64"]);
    assert_eq!(
        installs(&[], &repo, &["app"]),
        ["app-1-1.x86_64", "lib-2.0-7.x86_64"]
    );
}

#[test]
fn versioned_provides_decide_between_packages() {
    let repo = ids(vec![
        pkg("python3.9-3.9.16-1.x86_64").provides(&["python3 = 3.9.16-1"]),
        pkg("python3.11-3.11.6-1.x86_64").provides(&["python3 = 3.11.6-1"]),
        pkg("app-1-1.noarch").requires(&["python3 >= 3.10"]),
    ]);
    assert_eq!(
        installs(&[], &repo, &["app"]),
        ["app-1-1.noarch", "python3.11-3.11.6-1.x86_64"]
    );
}

#[test]
fn file_requirements_are_met_from_file_lists_and_the_hook_is_asked_only_when_needed() {
    let repo = ids(vec![
        pkg("tool-1-1.x86_64").files(&["/usr/bin/tool"]),
        pkg("libx-1-1.x86_64"),
        pkg("app-1-1.x86_64").requires(&["/usr/bin/tool", "/usr/lib64/libx.so.1"]),
    ]);
    let libx = repo.iter().find(|c| c.name == "libx").unwrap().id;
    let mut asked = Vec::new();
    let mut hook = |path: &str| {
        asked.push(path.to_string());
        Ok(if path == "/usr/lib64/libx.so.1" {
            vec![libx]
        } else {
            vec![]
        })
    };
    let r = resolve(
        &[],
        &repo,
        &request(&["app"]),
        &mut hook,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        nevras(&r),
        ["app-1-1.x86_64", "libx-1-1.x86_64", "tool-1-1.x86_64"]
    );
    // Only the path no package lists went to the file lists, once.
    assert_eq!(asked, ["/usr/lib64/libx.so.1"]);
}

#[test]
fn a_failing_or_wrong_file_hook_stops_resolution() {
    let repo = ids(vec![pkg("app-1-1.x86_64").requires(&["/opt/x"])]);
    let mut failing = |_: &str| Err("filelists.xml.gz is truncated".to_string());
    let e = resolve(
        &[],
        &repo,
        &request(&["app"]),
        &mut failing,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ResolveError::FileLists { path, message } if path == "/opt/x" && message.contains("truncated")),
        "{e}"
    );
    let mut wrong = |_: &str| Ok(vec![7usize]);
    let e = resolve(
        &[],
        &repo,
        &request(&["app"]),
        &mut wrong,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, ResolveError::UnknownFileProvider { id: 7, .. }),
        "{e}"
    );
}

#[test]
fn rich_requirements_follow_their_operators() {
    let repo = ids(vec![
        pkg("a-1-1.noarch"),
        pkg("b-1-1.noarch"),
        pkg("x-1-1.noarch"),
        pkg("y-1-1.noarch"),
        pkg("z-1-1.noarch"),
        pkg("lib-1-1.noarch").provides(&["libapi = 1"]),
        pkg("lib-2-1.noarch").provides(&["libapi = 2"]),
        pkg("compat-1-1.noarch").provides(&["libapi = 2", "oldapi"]),
        pkg("or-1-1.noarch").requires(&["(b or a)"]),
        pkg("if-1-1.noarch").requires(&["(x if y)"]),
        pkg("ifelse-1-1.noarch").requires(&["(x if y else z)"]),
        pkg("unless-1-1.noarch").requires(&["(x unless y)"]),
        pkg("with-1-1.noarch").requires(&["(libapi = 2 with oldapi)"]),
        pkg("without-1-1.noarch").requires(&["(libapi = 2 without oldapi)"]),
        pkg("nested-1-1.noarch").requires(&["(zz or (x and y))"]),
        pkg("ytoo-1-1.noarch").requires(&["y", "(x if y)"]),
    ]);
    // `or`: the first name in byte order when nothing else decides.
    assert_eq!(
        installs(&[], &repo, &["or"]),
        ["a-1-1.noarch", "or-1-1.noarch"]
    );
    // `if` without its condition installed asks for nothing.
    assert_eq!(installs(&[], &repo, &["if"]), ["if-1-1.noarch"]);
    let y = [pkg("y-1-1.noarch")];
    assert_eq!(
        installs(&y, &repo, &["if"]),
        ["if-1-1.noarch", "x-1-1.noarch"]
    );
    assert_eq!(
        installs(&[], &repo, &["ifelse"]),
        ["ifelse-1-1.noarch", "z-1-1.noarch"]
    );
    assert_eq!(
        installs(&y, &repo, &["ifelse"]),
        ["ifelse-1-1.noarch", "x-1-1.noarch"]
    );
    assert_eq!(
        installs(&[], &repo, &["unless"]),
        ["unless-1-1.noarch", "x-1-1.noarch"]
    );
    assert_eq!(installs(&y, &repo, &["unless"]), ["unless-1-1.noarch"]);
    // `with`: one package meets both; `without`: one that has the first
    // and not the second.
    assert_eq!(
        installs(&[], &repo, &["with"]),
        ["compat-1-1.noarch", "with-1-1.noarch"]
    );
    assert_eq!(
        installs(&[], &repo, &["without"]),
        ["lib-2-1.noarch", "without-1-1.noarch"]
    );
    // A sub-expression an `or` cannot hold directly.
    assert_eq!(
        installs(&[], &repo, &["nested"]),
        ["nested-1-1.noarch", "x-1-1.noarch", "y-1-1.noarch"]
    );
    // A condition the same package's other requirement makes true.
    assert_eq!(
        installs(&[], &repo, &["ytoo"]),
        ["x-1-1.noarch", "y-1-1.noarch", "ytoo-1-1.noarch"]
    );
    // Rich requests, as `dnf install '(b or a)'`.
    assert_eq!(
        installs(&[], &repo, &["(z and y)"]),
        ["y-1-1.noarch", "z-1-1.noarch"]
    );
}

#[test]
fn conflicts_rule_out_packages_and_upgrade_the_installed_when_that_helps() {
    let installed = [pkg("libfoo-1-1.x86_64")];
    let repo = ids(vec![
        pkg("libfoo-2-1.x86_64"),
        pkg("app-1-1.x86_64").conflicts(&["libfoo < 2"]),
        pkg("other-1-1.x86_64").conflicts(&["libfoo"]),
    ]);
    let r = run(&installed, &repo, &request(&["app"])).unwrap();
    assert_eq!(nevras(&r), ["app-1-1.x86_64", "libfoo-2-1.x86_64"]);
    assert_eq!(
        r.replaced,
        [Replaced {
            id: 0,
            nevra: "libfoo-1-1.x86_64".into(),
            how: Replacement::Upgrade,
            by: "libfoo-2-1.x86_64".into()
        }]
    );
    // Nothing is erased to make room.
    let text = unsat(&installed, &repo, &request(&["other"]));
    assert!(
        text.contains("other-1-1.x86_64 conflicts with `libfoo`, which rules out"),
        "{text}"
    );
    assert!(text.contains("libfoo-1-1.x86_64 (installed)"), "{text}");
}

#[test]
fn obsoletes_replace_installed_packages_and_never_coexist() {
    let installed = [pkg("oldname-1-1.x86_64")];
    let repo = ids(vec![
        pkg("newname-2-1.x86_64")
            .obsoletes(&["oldname < 2"])
            .provides(&["oldname = 2"]),
        pkg("oldname-1.5-1.x86_64"),
        pkg("user-1-1.x86_64").requires(&["newname", "oldname = 1.5"]),
    ]);
    let r = run(&installed, &repo, &request(&["newname"])).unwrap();
    assert_eq!(nevras(&r), ["newname-2-1.x86_64"]);
    assert_eq!(r.replaced.len(), 1);
    assert_eq!(r.replaced[0].how, Replacement::Obsoleted);
    assert_eq!(r.replaced[0].by, "newname-2-1.x86_64");
    // Without the installed one, still never both.
    let text = unsat(&[], &repo, &request(&["user"]));
    assert!(text.contains("obsoletes `oldname < 2`"), "{text}");
}

#[test]
fn a_lower_priority_number_wins_over_a_higher_version_and_over_names() {
    let repo = ids(vec![
        pkg("foo-1-1.x86_64").repo("pinned", 10),
        pkg("foo-2-1.x86_64").repo("main", 99),
        pkg("aaa-1-1.x86_64").provides(&["mta"]).repo("main", 99),
        pkg("zzz-1-1.x86_64").provides(&["mta"]).repo("pinned", 10),
        pkg("app-1-1.x86_64").requires(&["mta", "foo"]),
    ]);
    assert_eq!(
        installs(&[], &repo, &["app"]),
        ["app-1-1.x86_64", "foo-1-1.x86_64", "zzz-1-1.x86_64"]
    );
}

#[test]
fn only_noarch_and_the_image_arch_are_installed() {
    let repo = ids(vec![
        pkg("lib32-1-1.i686"),
        pkg("both-1-1.i686"),
        pkg("both-1-1.x86_64"),
        pkg("src-1-1.src"),
        pkg("arm-1-1.aarch64"),
    ]);
    assert_eq!(installs(&[], &repo, &["both"]), ["both-1-1.x86_64"]);
    let text = unsat(&[], &repo, &request(&["lib32"]));
    assert!(
        text.contains(
            "lib32-1-1.i686 cannot be installed: its architecture i686 does not fit an x86_64 image"
        ),
        "{text}"
    );
    let text = unsat(&[], &repo, &request(&["arm"]));
    assert!(text.contains("aarch64 does not fit"), "{text}");
    let text = unsat(&[], &repo, &request(&["src"]));
    assert!(text.contains("source package"), "{text}");
}

#[test]
fn the_installed_set_stays_unless_something_needs_it_newer() {
    let installed = [
        pkg("libfoo-1-1.x86_64").provides(&["libfoo.so.1()(64bit)"]),
        pkg("keeper-1-1.x86_64").requires(&["libfoo.so.1()(64bit)"]),
    ];
    let repo = ids(vec![
        pkg("libfoo-2-1.x86_64").provides(&["libfoo.so.1()(64bit)"]),
        pkg("libfoo-3-1.x86_64").provides(&["libfoo.so.3()(64bit)"]),
        pkg("keeper-2-1.x86_64"),
        pkg("easy-1-1.x86_64").requires(&["libfoo"]),
        pkg("needy-1-1.x86_64").requires(&["libfoo >= 2"]),
        pkg("greedy-1-1.x86_64").requires(&["libfoo >= 3"]),
    ]);
    // Already met by the base: nothing changes.
    assert_eq!(installs(&installed, &repo, &["easy"]), ["easy-1-1.x86_64"]);
    // Needs it newer: upgraded, to the newest there is.
    let r = run(&installed[..1], &repo, &request(&["needy"])).unwrap();
    assert_eq!(nevras(&r), ["libfoo-3-1.x86_64", "needy-1-1.x86_64"]);
    assert_eq!(r.replaced[0].nevra, "libfoo-1-1.x86_64");
    // libfoo 3 drops the soname the installed keeper-1 needs: keeper is
    // upgraded too.
    let r = run(&installed, &repo, &request(&["greedy"])).unwrap();
    assert_eq!(
        nevras(&r),
        [
            "greedy-1-1.x86_64",
            "keeper-2-1.x86_64",
            "libfoo-3-1.x86_64"
        ]
    );
    assert_eq!(r.replaced.len(), 2);
    // Requesting an installed name changes nothing.
    assert!(installs(&installed, &repo, &["keeper"]).is_empty());
}

#[test]
fn nothing_is_downgraded() {
    let installed = [pkg("foo-2-1.x86_64")];
    let repo = ids(vec![
        pkg("foo-1-1.x86_64"),
        pkg("app-1-1.x86_64").requires(&["foo < 2"]),
    ]);
    let text = unsat(&installed, &repo, &request(&["app"]));
    assert!(
        text.contains(
            "foo-1-1.x86_64 cannot be installed: it is older than the installed foo-2-1.x86_64"
        ),
        "{text}"
    );
}

#[test]
fn requirements_the_base_already_breaks_are_left_alone() {
    let installed = [pkg("broken-1-1.x86_64").requires(&["missing-thing"])];
    let repo = ids(vec![pkg("app-1-1.x86_64")]);
    assert_eq!(installs(&installed, &repo, &["app"]), ["app-1-1.x86_64"]);
}

#[test]
fn names_installed_in_several_versions_keep_them_all() {
    let installed = [
        pkg("gpg-pubkey-aaaa-1.(none)"),
        pkg("gpg-pubkey-bbbb-1.(none)"),
    ];
    let repo = ids(vec![pkg("app-1-1.x86_64")]);
    let r = run(&installed, &repo, &request(&["app"])).unwrap();
    assert_eq!(nevras(&r), ["app-1-1.x86_64"]);
    assert!(r.replaced.is_empty());
}

#[test]
fn weak_dependencies_only_when_asked_and_only_when_installable() {
    let repo = ids(vec![
        pkg("app-1-1.noarch").recommends(&["docs", "broken-extra", "(gui if desktop)"]),
        pkg("docs-1-1.noarch").recommends(&["docs-index"]),
        pkg("docs-index-1-1.noarch"),
        pkg("broken-extra-1-1.noarch").requires(&["nowhere"]),
        pkg("gui-1-1.noarch"),
        pkg("plugin-1-1.noarch").supplements(&["app"]),
        pkg("baseplug-1-1.noarch").supplements(&["basepkg"]),
    ]);
    let installed = [pkg("basepkg-1-1.noarch")];
    assert_eq!(installs(&installed, &repo, &["app"]), ["app-1-1.noarch"]);
    let mut req = request(&["app"]);
    req.weak_deps = true;
    let r = run(&installed, &repo, &req).unwrap();
    // Recommended (and what that recommends), supplementing the new
    // package; not the uninstallable recommendation, not the conditional
    // one whose condition is false, not what supplements the base alone.
    assert_eq!(
        nevras(&r),
        [
            "app-1-1.noarch",
            "docs-1-1.noarch",
            "docs-index-1-1.noarch",
            "plugin-1-1.noarch"
        ]
    );
    let reasons: Vec<Reason> = r.install.iter().map(|c| c.reason).collect();
    assert_eq!(
        reasons,
        [Reason::Requested, Reason::Weak, Reason::Weak, Reason::Weak]
    );
}

#[test]
fn weak_dependencies_never_change_what_was_required() {
    let repo = ids(vec![
        pkg("lib-1-1.noarch"),
        pkg("lib-2-1.noarch"),
        pkg("app-1-1.noarch")
            .requires(&["lib"])
            .recommends(&["old-tool"]),
        pkg("old-tool-1-1.noarch").requires(&["lib < 2"]),
    ]);
    let mut req = request(&["app"]);
    req.weak_deps = true;
    let r = run(&[], &repo, &req).unwrap();
    assert_eq!(nevras(&r), ["app-1-1.noarch", "lib-2-1.noarch"]);
}

#[test]
fn local_packages_are_installed_with_what_they_need() {
    let repo = ids(vec![
        pkg("libfoo-1-1.x86_64").provides(&["libfoo.so.1()(64bit)"]),
    ]);
    let mut local = pkg("web-1.0-1.x86_64").requires(&["libfoo.so.1()(64bit)"]);
    local.id = 7;
    let mut req = request(&[]);
    req.local = vec![local];
    let r = run(&[], &repo, &req).unwrap();
    assert_eq!(nevras(&r), ["libfoo-1-1.x86_64", "web-1.0-1.x86_64"]);
    let web = &r.install[1];
    assert!(web.local && web.id == 7 && web.reason == Reason::Requested);
    assert_eq!(r.install[0].reason, Reason::Dependency);
}

#[test]
fn unmet_requirements_are_explained_with_what_is_offered_instead() {
    let installed = [pkg("python3-3.9.16-1.amzn2023.x86_64")];
    let repo = ids(vec![
        pkg("libfoo-2.0-1.x86_64").provides(&["libfoo.so.2()(64bit)"]),
        pkg("web-1.0-1.x86_64").requires(&["libfoo.so.1()(64bit)"]),
        pkg("py-1-1.noarch").requires(&["python3 >= 3.10"]),
        pkg("front-1-1.noarch").requires(&["web"]),
    ]);
    let text = unsat(&installed, &repo, &request(&["front"]));
    for fact in [
        "`front` (asked for) needs front-1-1.noarch",
        "front-1-1.noarch requires web, which only web-1.0-1.x86_64 provides",
        "web-1.0-1.x86_64 requires libfoo.so.1()(64bit), which nothing provides",
        "libfoo-2.0-1.x86_64 provides only libfoo.so.2()(64bit)",
    ] {
        assert!(text.contains(fact), "missing {fact:?} in:\n{text}");
    }
    let text = unsat(&installed, &repo, &request(&["py"]));
    assert!(
        text.contains(
            "python3-3.9.16-1.amzn2023.x86_64 (installed) provides only python3 = 3.9.16-1.amzn2023"
        ),
        "{text}"
    );
    let text = unsat(&installed, &repo, &request(&["nosuch"]));
    assert!(
        text.contains("nothing provides `nosuch` (asked for)"),
        "{text}"
    );
    let e = run(&installed, &repo, &request(&["nosuch"]))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("the request cannot be met:\n"), "{e}");
}

#[test]
fn one_version_per_name_is_explained() {
    let repo = ids(vec![
        pkg("lib-1-1.noarch"),
        pkg("lib-2-1.noarch"),
        pkg("a-1-1.noarch").requires(&["lib = 1"]),
        pkg("b-1-1.noarch").requires(&["lib = 2"]),
    ]);
    let text = unsat(&[], &repo, &request(&["a", "b"]));
    assert!(
        text.contains("cannot both be installed (one version per name)"),
        "{text}"
    );
    assert!(
        text.contains("lib-1-1.noarch") && text.contains("lib-2-1.noarch"),
        "{text}"
    );
}

#[test]
fn what_needs_a_newer_rpm_is_explained() {
    let repo = ids(vec![
        pkg("future-1-1.noarch").requires(&["rpmlib(TimeTravel) <= 4.99-1"]),
        pkg("fine-1-1.noarch").requires(&["rpmlib(PayloadIsZstd) <= 5.4.18-1"]),
    ]);
    assert_eq!(installs(&[], &repo, &["fine"]), ["fine-1-1.noarch"]);
    let text = unsat(&[], &repo, &request(&["future"]));
    assert!(text.contains("does not have"), "{text}");
}

/// Orders of a list that differ from it and each other.
fn reorders(v: &[Candidate]) -> Vec<Vec<Candidate>> {
    let mut reversed = v.to_vec();
    reversed.reverse();
    let mut rotated = v.to_vec();
    rotated.rotate_left(v.len() / 3 + 1);
    let (even, odd): (Vec<_>, Vec<_>) =
        v.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    let interleaved = odd.into_iter().chain(even).map(|(_, c)| c).collect();
    vec![reversed, rotated, interleaved]
}

#[test]
fn the_answer_does_not_depend_on_input_order() {
    let installed = vec![
        pkg("libfoo-1-1.x86_64").provides(&["libfoo.so.1()(64bit)"]),
        pkg("keeper-1-1.x86_64").requires(&["libfoo.so.1()(64bit)"]),
        pkg("oldname-1-1.noarch"),
    ];
    let repo = ids(vec![
        pkg("libfoo-2-1.x86_64").provides(&["libfoo.so.1()(64bit)"]),
        pkg("libfoo-3-1.x86_64").provides(&["libfoo.so.3()(64bit)"]),
        pkg("keeper-2-1.x86_64"),
        pkg("mta-a-1-1.noarch").provides(&["mta"]),
        pkg("mta-b-1-1.noarch").provides(&["mta"]),
        pkg("mta-b-2-1.noarch").provides(&["mta"]),
        pkg("newname-1-1.noarch").obsoletes(&["oldname"]),
        pkg("app-1-1.x86_64")
            .requires(&["libfoo >= 3", "mta", "(x or y)", "newname"])
            .recommends(&["x"]),
        pkg("x-1-1.noarch").conflicts(&["y"]),
        pkg("y-1-1.noarch"),
        pkg("bad-1-1.noarch").requires(&["libfoo.so.9()(64bit)", "mta >= 5"]),
    ]);
    let mut req = request(&["app"]);
    req.weak_deps = true;
    let want = run(&installed, &repo, &req).unwrap();
    assert!(want.install.len() >= 5, "{want:?}");
    let bad = request(&["bad", "app"]);
    let want_text = unsat(&installed, &repo, &bad);
    for (inst, avail) in reorders(&installed).into_iter().zip(reorders(&repo)) {
        assert_eq!(run(&inst, &avail, &req).unwrap(), want);
        assert_eq!(unsat(&inst, &avail, &bad), want_text);
    }
}

/// Two candidates (available or local) of one id are refused, both named.
#[test]
fn candidates_sharing_an_id_are_refused() {
    let mut repo = ids(vec![
        pkg("a-1-1.noarch"),
        pkg("b-1-1.noarch"),
        pkg("c-1-1.noarch"),
    ]);
    // Installed packages have ids of their own, which may be the same.
    let installed = vec![pkg("a-0.5-1.noarch")];
    assert!(run(&installed, &repo, &request(&["a"])).is_ok());
    repo[2].id = repo[0].id;
    let e = run(&[], &repo, &request(&["b"])).unwrap_err();
    match &e {
        ResolveError::DuplicateId { id, first, second } => {
            assert_eq!(
                (*id, first.as_str(), second.as_str()),
                (100, "a-1-1.noarch", "c-1-1.noarch")
            );
        }
        other => panic!("{other}"),
    }
    repo[2].id = 102;
    let mut req = request(&["b"]);
    req.local = vec![pkg("app-1-1.noarch")];
    req.local[0].id = 101;
    let e = run(&[], &repo, &req).unwrap_err();
    assert!(
        matches!(&e, ResolveError::DuplicateId { id: 101, first, second }
            if first == "app-1-1.noarch" && second == "b-1-1.noarch"),
        "{e}"
    );
}

#[test]
fn limits_stop_resolution_with_a_clear_error() {
    let repo = ids((0..20)
        .map(|i| pkg(&format!("p{i}-1-1.noarch")).requires(&[&format!("p{}", i + 1)]))
        .collect());
    let small = Limits {
        candidates: 10,
        ..Limits::default()
    };
    let e = resolve(&[], &repo, &request(&["p0"]), &mut NoMoreFiles, &small).unwrap_err();
    assert!(
        e.to_string()
            .contains("20 candidate packages are more than the limit of 10"),
        "{e}"
    );
    let small = Limits {
        dependencies: 5,
        ..Limits::default()
    };
    let e = resolve(&[], &repo, &request(&["p0"]), &mut NoMoreFiles, &small).unwrap_err();
    assert!(
        matches!(
            e,
            ResolveError::TooManyDependencies {
                count: 20,
                limit: 5
            }
        ),
        "{e}"
    );
    let small = Limits {
        steps: 3,
        ..Limits::default()
    };
    let e = resolve(&[], &repo, &request(&["p0"]), &mut NoMoreFiles, &small).unwrap_err();
    assert!(matches!(e, ResolveError::TooMuchWork { limit: 3 }), "{e}");
    // With room, the chain resolves.
    let r = resolve(
        &[],
        &repo,
        &request(&["p0"]),
        &mut NoMoreFiles,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        r.to_string()
            .contains("p19-1-1.noarch requires p20, which nothing provides"),
        "{r}"
    );
}

#[test]
fn bad_requests_and_duplicate_ids_are_refused() {
    let repo = ids(vec![pkg("a-1-1.noarch"), pkg("b-1-1.noarch")]);
    let e = run(&[], &repo, &request(&["a >="])).unwrap_err();
    assert!(
        matches!(&e, ResolveError::BadRequest { text, .. } if text == "a >="),
        "{e}"
    );
    let mut dup = repo.clone();
    dup[1].id = dup[0].id;
    let e = run(&[], &dup, &request(&["a"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "two candidates have the id 100: a-1-1.noarch and b-1-1.noarch"
    );
}

/// A repository the size of Amazon Linux 2023's: 20,000 names, a third
/// of them in two versions (the newer also keeps the older soname), each
/// requiring six libraries of lower-numbered packages, `/bin/sh` and an
/// rpm feature, each listing eleven files.
fn big_repository() -> Vec<Candidate> {
    let mut seed: u64 = 12345;
    let mut rnd = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut repo = vec![pkg("bash-5-1.x86_64").files(&["/bin/sh"])];
    for i in 0..20_000u64 {
        for v in 1..=(1 + (i % 3 == 0) as u64) {
            let mut c = pkg(&format!("p{i}-{v}.0-1.amzn2023.x86_64"));
            c.provides = vec![
                cap(&format!("p{i} = {v}.0-1.amzn2023")),
                cap(&format!("libp{i}.so.1()(64bit)")),
                cap(&format!("libp{i}.so.{v}()(64bit)")),
                cap(&format!("config(p{i}) = {v}.0-1.amzn2023")),
            ];
            c.requires = vec![cap("/bin/sh"), cap("rpmlib(PayloadIsZstd) <= 5.4.18-1")];
            for _ in 0..if i > 10 { 6 } else { 0 } {
                let d = rnd(i);
                let dv = if d % 3 == 0 { 1 + rnd(2) } else { 1 };
                c.requires.push(cap(&format!("libp{d}.so.{dv}()(64bit)")));
            }
            c.files = (0..10)
                .map(|k| format!("/usr/lib64/p{i}/f{k}"))
                .chain([format!("/usr/bin/p{i}")])
                .collect();
            repo.push(c);
        }
    }
    ids(repo)
}

#[test]
fn a_repository_of_20000_packages_resolves_to_a_closed_set() {
    use crate::install::deps::{Package, Universe};
    let repo = big_repository();
    let r = run(
        &[],
        &repo,
        &request(&["p19999", "p19000", "p15000", "p12345"]),
    )
    .unwrap();
    assert!(r.install.len() > 1000, "{} packages", r.install.len());
    // Judged by the installer's own closure check, which shares nothing
    // with the solver: every requirement met, one version per name.
    let chosen: Vec<Package> = r
        .install
        .iter()
        .map(|c| {
            let p = repo.iter().find(|p| p.id == c.id).unwrap();
            Package {
                nevra: p.nevra(),
                name: p.name.to_string(),
                provides: p.provides.clone(),
                requires: p.requires.clone(),
                conflicts: p.conflicts.clone(),
                obsoletes: p.obsoletes.clone(),
                files: p.files.clone(),
            }
        })
        .collect();
    let all: Vec<usize> = (0..chosen.len()).collect();
    let u = Universe::new(&chosen);
    assert_eq!(u.unmet(&all), []);
    let names: std::collections::BTreeSet<&str> = chosen.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), chosen.len());
}

#[test]
fn a_long_chain_is_explained_in_bounded_lines_and_stack() {
    let n = 3000;
    let repo = ids((0..n)
        .map(|i| pkg(&format!("c{i}-1-1.noarch")).requires(&[&format!("c{}", i + 1)]))
        .collect());
    // A thread's default stack, as a bake's worker would have.
    let text = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || unsat(&[], &repo, &request(&["c0"])))
        .unwrap()
        .join()
        .unwrap();
    assert!(
        text.contains("c0-1-1.noarch requires c1, which only c1-1-1.noarch provides"),
        "{text}"
    );
    assert!(text.contains("(the chain goes on)"), "{text}");
    assert!(text.lines().count() <= explain::MAX_LINES + 1, "{text}");
}

#[test]
fn candidates_compare_by_their_parts_as_their_evr_texts_do() {
    let evrs = [
        (0, "1.0", "1"),
        (0, "1.0", "2"),
        (0, "1.0", ""),
        (0, "1.0", "1.amzn2023"),
        (0, "1.0.1", "1"),
        (0, "1.0~rc1", "1"),
        (0, "1.0^git1", "1"),
        (0, "1.a", "1"),
        (0, "1.10", "1"),
        (0, "1.9", "1"),
        (1, "0.1", "1"),
        (2, "0.1", ""),
        (10, "0.1", "1"),
        (9, "5", "5"),
    ];
    for (ea, va, ra) in evrs {
        for (eb, vb, rb) in evrs {
            let a = Candidate {
                epoch: ea,
                version: va.into(),
                release: ra.into(),
                ..Default::default()
            };
            let b = Candidate {
                epoch: eb,
                version: vb.into(),
                release: rb.into(),
                ..Default::default()
            };
            assert_eq!(
                compare_candidate_evr(&a, &b),
                crate::install::deps::compare_evr(&full_evr(&a), &full_evr(&b)),
                "{ea}:{va}-{ra} against {eb}:{vb}-{rb}"
            );
        }
    }
}
