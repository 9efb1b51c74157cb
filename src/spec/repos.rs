//! The image spec's packages from repositories: `install` (what to
//! install by name or capability), `weak_deps`, `use_base_repos`,
//! `releasever` and the `[[image.repos]]` tables.
//!
//! In: the raw TOML values of `[image]`. Out: [`Repositories`], every
//! value checked as the rest of the spec is (file, line and column on
//! each error): each request is a dependency rpm could write, each
//! repository has a unique name, exactly one of `baseurl`, `mirrorlist`
//! and `metalink` with a scheme ingot can fetch (`http`, `https`, `file`),
//! or for `baseurl` a folder (a path relative to the spec's folder or
//! absolute, made a `file://` URL here, so a repository can be committed
//! with the spec),
//! and a `gpgkey` that is a URL or a file beside the spec (which
//! `repo_gpgcheck = true` needs: the index's signature is checked with
//! it). Nothing is
//! fetched here; `$releasever` and `$basearch` stay in the URLs until the
//! repository reader substitutes them.

use serde::Deserialize;
use toml::Spanned;

use super::SpecError;
use super::diag::escape;
use super::package::Loc;
use super::package::{Cx, SrcKind};

/// The most requests in `install` and the most repositories: a spec is
/// hand-written, and past these it is not.
pub const MAX_REQUESTS: usize = 10_000;
pub const MAX_REPOS: usize = 256;
/// The priority of a repository that names none, as dnf's.
pub const DEFAULT_PRIORITY: u32 = 99;

/// What the image installs from repositories, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repositories {
    /// `install`: names or capabilities, each with what it needs.
    pub install: Vec<Request>,
    /// `weak_deps`: `None` when the spec does not say (then false, or
    /// what the base's dnf.conf says when its repositories are used).
    pub weak_deps: Option<bool>,
    /// `use_base_repos`: the repositories the base's own
    /// `/etc/yum.repos.d` names, after the spec's own.
    pub use_base_repos: bool,
    /// `releasever`: the value of `$releasever` when the base has none.
    pub releasever: Option<String>,
    /// `[[image.repos]]`, in the spec's order.
    pub repos: Vec<RepoSpec>,
}

impl Repositories {
    /// Whether the image asks for anything from a repository.
    pub fn wanted(&self) -> bool {
        !self.install.is_empty() || !self.repos.is_empty() || self.use_base_repos
    }
}

/// One entry of `install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// As written: `nginx`, `python3-requests >= 2.25`, a file path, or a
    /// rich dependency.
    pub text: String,
    pub at: Loc,
}

/// One `[[image.repos]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    pub name: String,
    pub source: RepoSource,
    /// The key packages must be signed with; packages are checked when
    /// it is given.
    pub gpgkey: Option<KeyRef>,
    /// `repo_gpgcheck`: `repodata/repomd.xml.asc` must be a signature of
    /// the index by `gpgkey` (which is then given).
    pub repo_gpgcheck: bool,
    /// Lower wins among equal packages, as dnf's.
    pub priority: u32,
    pub at: Loc,
}

/// Where a repository's metadata is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// `baseurl`: one URL, or several tried in order.
    BaseUrl(Vec<String>),
    /// `mirrorlist`: a URL whose lines are base URLs.
    MirrorList(String),
    /// `metalink`: a URL of a metalink (Fedora's MirrorManager): mirrors,
    /// and the hashes `repomd.xml` must have.
    Metalink(String),
}

/// A `gpgkey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A file beside the spec (absolute once parsed).
    File(std::path::PathBuf),
    /// An `http`, `https` or `file` URL.
    Url(String),
}

/// `[image]`'s keys this module reads, as `image.rs` deserialized them.
pub(super) struct RawRepositories<'a> {
    pub(super) install: &'a [Spanned<String>],
    pub(super) weak_deps: Option<&'a Spanned<bool>>,
    pub(super) use_base_repos: Option<&'a Spanned<bool>>,
    pub(super) releasever: Option<&'a Spanned<String>>,
    pub(super) repos: &'a [Spanned<RawRepo>],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepo {
    name: Spanned<String>,
    baseurl: Option<Spanned<BaseUrls>>,
    mirrorlist: Option<Spanned<String>>,
    metalink: Option<Spanned<String>>,
    gpgkey: Option<Spanned<String>>,
    repo_gpgcheck: Option<Spanned<bool>>,
    priority: Option<Spanned<i64>>,
}

/// `baseurl = "…"` or `baseurl = ["…", "…"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum BaseUrls {
    One(String),
    Many(Vec<String>),
}

/// Check what `[image]` says about repositories.
pub(super) fn parse(cx: &Cx, raw: &RawRepositories<'_>) -> Result<Repositories, SpecError> {
    if raw.install.len() > MAX_REQUESTS {
        return Err(cx.err(
            &raw.install[MAX_REQUESTS],
            format!("install lists more than {MAX_REQUESTS} packages"),
        ));
    }
    let mut install = Vec::with_capacity(raw.install.len());
    for r in raw.install {
        install.push(request(cx, r)?);
    }
    if raw.repos.len() > MAX_REPOS {
        return Err(cx.err(
            &raw.repos[MAX_REPOS],
            format!("more than {MAX_REPOS} repositories"),
        ));
    }
    let mut repos: Vec<RepoSpec> = Vec::with_capacity(raw.repos.len());
    for r in raw.repos {
        let repo = repo(cx, r)?;
        if repos.iter().any(|o| o.name == repo.name) {
            return Err(cx.err(
                &r.get_ref().name,
                format!("a second repository named `{}`", repo.name),
            ));
        }
        repos.push(repo);
    }
    let use_base_repos = raw.use_base_repos.is_some_and(|v| *v.get_ref());
    if let Some(first) = raw.install.first()
        && repos.is_empty()
        && !use_base_repos
    {
        return Err(cx
            .err(
                first,
                "install names packages, but the image has no repository to take them from",
            )
            .with_hint(
                "add an [[image.repos]] table with a baseurl, or `use_base_repos = true` \
                 for the repositories the base names",
            ));
    }
    let releasever = match raw.releasever {
        Some(v) => {
            let s = cx.line_field(v, "releasever")?;
            if let Some(c) = s
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
            {
                return Err(cx.err(
                    v,
                    format!(
                        "releasever `{}` contains `{c}`; it becomes part of a URL",
                        escape(&s)
                    ),
                ));
            }
            Some(s)
        }
        None => None,
    };
    Ok(Repositories {
        install,
        weak_deps: raw.weak_deps.map(|v| *v.get_ref()),
        use_base_repos,
        releasever,
        repos,
    })
}

/// One `install` entry: a dependency as rpm would write it.
fn request(cx: &Cx, v: &Spanned<String>) -> Result<Request, SpecError> {
    let text = cx.line_field(v, "an install entry")?;
    let text = text.trim().to_string();
    super::dep::parse(&text).map_err(|e| {
        cx.err(v, format!("install entry `{}`: {e}", escape(&text)))
            .with_hint("write a name (`nginx`), a versioned name (`python3-requests >= 2.25`), a file path or a rich dependency")
    })?;
    Ok(Request {
        text,
        at: cx.loc(v),
    })
}

fn repo(cx: &Cx, v: &Spanned<RawRepo>) -> Result<RepoSpec, SpecError> {
    let r = v.get_ref();
    let name = cx.line_field(&r.name, "repository name")?;
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c)))
    {
        return Err(cx.err(
            &r.name,
            format!(
                "repository name `{}` contains `{c}`; use letters, digits, - _ . :",
                escape(&name)
            ),
        ));
    }
    let source = match (&r.baseurl, &r.mirrorlist, &r.metalink) {
        (Some(_), Some(m), _) => {
            return Err(cx.err(m, "a repository has a baseurl or a mirrorlist, not both"));
        }
        (Some(_), None, Some(m)) | (None, Some(_), Some(m)) => {
            return Err(cx.err(
                m,
                "a repository has a metalink, or a baseurl or mirrorlist, not both",
            ));
        }
        (None, None, None) => {
            return Err(cx.err(
                v,
                format!(
                    "repository `{name}` has neither a baseurl nor a mirrorlist nor a metalink"
                ),
            ));
        }
        (Some(b), None, None) => {
            let urls = match b.get_ref() {
                BaseUrls::One(u) => vec![u.clone()],
                BaseUrls::Many(u) => u.clone(),
            };
            if urls.is_empty() {
                return Err(cx.err(b, "baseurl is an empty list"));
            }
            let mut fetched = Vec::with_capacity(urls.len());
            for u in &urls {
                fetched.push(base_url(cx, b, u)?);
            }
            RepoSource::BaseUrl(fetched)
        }
        (None, Some(m), None) => {
            url(cx, m, m.get_ref(), "mirrorlist")?;
            RepoSource::MirrorList(m.get_ref().clone())
        }
        (None, None, Some(m)) => {
            url(cx, m, m.get_ref(), "metalink")?;
            RepoSource::Metalink(m.get_ref().clone())
        }
    };
    let gpgkey = match &r.gpgkey {
        None => None,
        Some(k) if has_scheme(k.get_ref()) => {
            url(cx, k, k.get_ref(), "gpgkey")?;
            Some(KeyRef::Url(k.get_ref().clone()))
        }
        Some(k) => Some(KeyRef::File(cx.src(k, SrcKind::File)?)),
    };
    let repo_gpgcheck = match &r.repo_gpgcheck {
        Some(v) if *v.get_ref() && gpgkey.is_none() => {
            return Err(cx
                .err(v, "repo_gpgcheck is on but the repository has no gpgkey")
                .with_hint("add `gpgkey`: the key the repository's repomd.xml is signed with"));
        }
        Some(v) => *v.get_ref(),
        None => false,
    };
    let priority = match &r.priority {
        None => DEFAULT_PRIORITY,
        Some(p) => u32::try_from(*p.get_ref())
            .ok()
            .filter(|p| (1..=99_999).contains(p))
            .ok_or_else(|| cx.err(p, "priority is a whole number from 1 to 99999 (lower wins)"))?,
    };
    Ok(RepoSpec {
        name,
        source,
        gpgkey,
        repo_gpgcheck,
        priority,
        at: cx.loc(v),
    })
}

/// One `baseurl` entry as ingot fetches it: a URL as written, or a path
/// (relative to the spec's folder, or absolute) made the `file://` URL of
/// that folder.
fn base_url(cx: &Cx, at: &Spanned<BaseUrls>, u: &str) -> Result<String, SpecError> {
    if has_scheme(u) {
        url(cx, at, u, "baseurl")?;
        return Ok(u.to_string());
    }
    if let Some(c) = u.chars().find(|c| c.is_control()) {
        return Err(cx.err(at, format!("baseurl `{}` contains {c:?}", escape(u))));
    }
    let dir = cx.dir.join(u);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    // A folder named through `$releasever` or `$basearch` is checked
    // when it is read, once they are known.
    if !u.contains('$') && !dir.is_dir() {
        return Err(cx
            .err(
                at,
                format!("baseurl folder `{}` does not exist", dir.display()),
            )
            .with_hint("a baseurl without a scheme is a folder (relative to the spec's folder)"));
    }
    Ok(file_url(&dir))
}

/// The `file://` URL of folder `dir` (absolute), ending in `/`, with the
/// bytes a URL cannot hold percent-encoded.
pub fn file_url(dir: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file://");
    for &b in dir.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn has_scheme(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic())
    })
}

/// A URL ingot can fetch: `http://`, `https://` or `file://`, one line.
fn url<T>(cx: &Cx, at: &Spanned<T>, u: &str, what: &str) -> Result<(), SpecError> {
    if let Some(c) = u.chars().find(|c| c.is_control() || *c == ' ') {
        return Err(cx.err(at, format!("{what} `{}` contains {c:?}", escape(u))));
    }
    let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "file") if u.len() > scheme.as_ref().map_or(0, |s| s.len() + 3) => {
            Ok(())
        }
        _ => Err(cx
            .err(
                at,
                format!("{what} `{}` is not an http, https or file URL", escape(u)),
            )
            .with_hint("write it as `https://host/path/` or `file:///absolute/path/`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::image::parse_image;

    /// The spec `[image]` body `body` in a folder that holds `keys/k.asc`.
    fn parse(body: &str) -> Result<Repositories, SpecError> {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("keys")).unwrap();
        std::fs::write(t.path().join("keys/k.asc"), b"key").unwrap();
        let text = format!("[image]\nname = \"web\"\nbase = \"base.tar\"\n{body}");
        parse_image(&t.path().join("img.toml"), &text).map(|s| s.repositories)
    }

    /// The error's message and its line.
    fn err(body: &str) -> (String, usize) {
        let e = parse(body).expect_err("the spec is refused");
        let line = e.location.map(|(l, _)| l).unwrap_or(0);
        (format!("{e} {}", e.hint.clone().unwrap_or_default()), line)
    }

    #[test]
    fn repositories_parse_with_their_defaults() {
        let r = parse(
            r#"install = ["nginx", " python3-requests >= 2.25 ", "/usr/bin/jq", "(a or b)"]
weak_deps = true
releasever = "2023.6"

[[image.repos]]
name = "amazonlinux"
baseurl = "https://example.invalid/al2023/core/$releasever/$basearch/"
gpgkey = "keys/k.asc"

[[image.repos]]
name = "local"
baseurl = ["file:///srv/repo/", "http://127.0.0.1:8080/repo/"]
priority = 10

[[image.repos]]
name = "mirrored"
mirrorlist = "https://example.invalid/mirrors.txt"
gpgkey = "https://example.invalid/key.asc"
repo_gpgcheck = true
"#,
        )
        .unwrap();
        let texts: Vec<&str> = r.install.iter().map(|q| q.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "nginx",
                "python3-requests >= 2.25",
                "/usr/bin/jq",
                "(a or b)"
            ]
        );
        assert_eq!(r.install[1].at.line, 4);
        assert_eq!((r.weak_deps, r.use_base_repos), (Some(true), false));
        assert_eq!(r.releasever.as_deref(), Some("2023.6"));
        let names: Vec<&str> = r.repos.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["amazonlinux", "local", "mirrored"]);
        assert_eq!(
            r.repos.iter().map(|q| q.priority).collect::<Vec<_>>(),
            [DEFAULT_PRIORITY, 10, DEFAULT_PRIORITY]
        );
        assert!(
            matches!(&r.repos[0].gpgkey, Some(KeyRef::File(p)) if p.ends_with("keys/k.asc") && p.is_absolute())
        );
        assert_eq!(
            r.repos[1].source,
            RepoSource::BaseUrl(vec![
                "file:///srv/repo/".into(),
                "http://127.0.0.1:8080/repo/".into()
            ])
        );
        assert_eq!(
            r.repos[2].source,
            RepoSource::MirrorList("https://example.invalid/mirrors.txt".into())
        );
        assert_eq!(
            r.repos[2].gpgkey,
            Some(KeyRef::Url("https://example.invalid/key.asc".into()))
        );
        assert_eq!(
            r.repos.iter().map(|q| q.repo_gpgcheck).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert!(r.wanted());
        // Without any of it: nothing wanted.
        let none = parse("").unwrap();
        assert_eq!(none, Repositories::default());
        assert!(!none.wanted());
        assert!(
            parse("install = [\"jq\"]\nuse_base_repos = true\n")
                .unwrap()
                .wanted()
        );
    }

    #[test]
    fn bad_repository_sections_are_located_errors() {
        let repo = |extra: &str| format!("[[image.repos]]\nname = \"r\"\n{extra}\n");
        let cases: Vec<(String, &str, usize)> = vec![
            ("install = [\"jq\"]\n".into(), "no repository", 4),
            (
                format!(
                    "install = [\"jq >= \"]\n{}",
                    repo("baseurl = \"file:///r/\"")
                ),
                "install entry",
                4,
            ),
            (
                format!(
                    "install = [\"j\\u0000q\"]\n{}",
                    repo("baseurl = \"file:///r/\"")
                ),
                "control character",
                4,
            ),
            (
                repo(""),
                "neither a baseurl nor a mirrorlist nor a metalink",
                4,
            ),
            (
                repo("baseurl = \"file:///r/\"\nmirrorlist = \"https://m/\""),
                "not both",
                7,
            ),
            (
                repo("baseurl = \"file:///r/\"\nmetalink = \"https://m/\""),
                "a metalink, or a baseurl or mirrorlist, not both",
                7,
            ),
            (
                repo("mirrorlist = \"https://m/\"\nmetalink = \"https://m/\""),
                "a metalink, or a baseurl or mirrorlist, not both",
                7,
            ),
            (
                repo("metalink = \"ftp://host/metalink\""),
                "not an http, https or file URL",
                6,
            ),
            (
                repo("baseurl = \"ftp://host/r/\""),
                "not an http, https or file URL",
                6,
            ),
            (
                repo("baseurl = \"/no/such/repo\""),
                "baseurl folder `/no/such/repo` does not exist",
                6,
            ),
            (repo("baseurl = []"), "empty list", 6),
            (repo("baseurl = \"no-such-repo/\""), "baseurl folder", 6),
            (
                repo("baseurl = \"file:///r/\"\npriority = 0"),
                "priority",
                7,
            ),
            (
                repo("baseurl = \"file:///r/\"\ngpgkey = \"keys/none.asc\""),
                "does not exist",
                7,
            ),
            (
                repo("baseurl = \"file:///r/\"\nrepo_gpgcheck = true"),
                "repo_gpgcheck is on but the repository has no gpgkey",
                7,
            ),
            (
                repo("baseurl = \"file:///r/\"\nrepo_gpgcheck = 1"),
                "expected a boolean",
                7,
            ),
            (
                repo("baseurl = \"file:///r/\"\nsslverify = false"),
                "sslverify",
                7,
            ),
            (
                format!(
                    "{}{}",
                    repo("baseurl = \"file:///r/\""),
                    repo("baseurl = \"file:///s/\"")
                ),
                "a second repository named `r`",
                8,
            ),
            (
                "[[image.repos]]\nname = \"a b\"\nbaseurl = \"file:///r/\"\n".into(),
                "contains ` `",
                5,
            ),
            ("releasever = \"20/23\"\n".into(), "releasever", 4),
        ];
        for (body, want, line) in cases {
            let (text, at) = err(&body);
            assert!(text.contains(want), "{body}: `{text}` lacks `{want}`");
            assert_eq!(at, line, "{body}: {text}");
        }
    }

    #[test]
    fn a_relative_baseurl_is_the_folder_beside_the_spec() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("repo dir/x86_64")).unwrap();
        let text = "[image]\nname = \"web\"\nbase = \"base.tar\"\n\
                    [[image.repos]]\nname = \"local\"\nbaseurl = [\"repo dir/\", \"./repo dir/$basearch\"]\n";
        let r = parse_image(&t.path().join("img.toml"), text)
            .unwrap()
            .repositories;
        let RepoSource::BaseUrl(urls) = &r.repos[0].source else {
            panic!("{:?}", r.repos[0].source)
        };
        let dir = crate::repo::fetch::file_path(&urls[0]).unwrap();
        assert_eq!(
            std::fs::canonicalize(&dir).unwrap(),
            std::fs::canonicalize(t.path().join("repo dir")).unwrap()
        );
        assert!(urls[0].starts_with("file:///") && urls[0].ends_with("repo%20dir/"));
        assert!(urls[1].ends_with("repo%20dir/$basearch/"), "{}", urls[1]);
    }
}
