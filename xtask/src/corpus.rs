//! `cargo xtask corpus`: gather the real-RPM corpus the tests install with
//! both ingot and rpm (`tests/real-rpms/`), into `target/real-rpms/`.
//!
//! The corpus is packages nobody on this project wrote, from three places
//! a fresh machine can reach (`tests/real-rpms/README.md` says where each
//! package comes from and why it is there):
//! - `shared`: the shared fixtures beside the repository (`../shared/fixtures`,
//!   or the folder `INGOT_SHARED_FIXTURES` names);
//! - `crate:rpm`: the test packages the `rpm` crate publishes with its
//!   source (cargo has already downloaded it: it is one of ingot's
//!   dependencies);
//! - `debian:FILE`: test packages inside the upstream source tarballs of
//!   Debian's own packages, fetched from the Debian mirror this machine's
//!   apt uses (`debian-sources.tsv` pins each tarball's SHA-256).
//!
//! Every package's SHA-256 is checked against `corpus.tsv`, so the corpus
//! is the same bytes everywhere. Nothing is committed from these sources:
//! they are fetched and checked here, like any other test input.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// One line of `corpus.tsv`.
struct Entry {
    file: String,
    source: String,
    path: String,
    sha256: String,
}

fn tsv(path: &Path) -> Result<Vec<Vec<String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

fn entries(root: &Path) -> Result<Vec<Entry>, String> {
    tsv(&root.join("tests/real-rpms/corpus.tsv"))?
        .into_iter()
        .map(|f| match f.as_slice() {
            [file, source, path, sha256] => Ok(Entry {
                file: file.clone(),
                source: source.clone(),
                path: path.clone(),
                sha256: sha256.clone(),
            }),
            _ => Err(format!("corpus.tsv: bad line {f:?}")),
        })
        .collect()
}

fn sha256_of(path: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Where the corpus goes (the tests read it from there, or from the
/// folder `INGOT_REAL_RPMS` names).
pub fn dir(root: &Path) -> PathBuf {
    root.join("target/real-rpms")
}

/// Gather every package of the corpus into [`dir`]; packages already
/// there with the right digest are kept.
pub fn run(root: &Path) -> Result<PathBuf, String> {
    let out = dir(root);
    let cache = out.join("sources");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let list = entries(root)?;
    let mut extracted: BTreeMap<String, PathBuf> = BTreeMap::new();
    for e in &list {
        let dest = out.join(&e.file);
        if dest.is_file() && sha256_of(&dest)? == e.sha256 {
            continue;
        }
        let from = match e.source.as_str() {
            "shared" => shared(root)?.join(&e.path),
            "crate:rpm" => crate_dir("rpm")?.join(&e.path),
            s => match s.strip_prefix("debian:") {
                Some(tarball) => {
                    if !extracted.contains_key(tarball) {
                        let t = debian_source(root, tarball, &cache)?;
                        extracted.insert(tarball.to_string(), t);
                    }
                    extracted[tarball].join(&e.path)
                }
                None => return Err(format!("corpus.tsv: unknown source {s:?}")),
            },
        };
        std::fs::copy(&from, &dest)
            .map_err(|err| format!("{} (for {}): {err}", from.display(), e.file))?;
        let got = sha256_of(&dest)?;
        if got != e.sha256 {
            let _ = std::fs::remove_file(&dest);
            return Err(format!(
                "{} from {} has SHA-256 {got}, corpus.tsv says {}",
                e.file, e.source, e.sha256
            ));
        }
    }
    eprintln!("xtask: {} real packages in {}", list.len(), out.display());
    Ok(out)
}

/// The shared fixtures folder (`../shared/fixtures` beside the
/// repository, or the folder `INGOT_SHARED_FIXTURES` names).
pub(crate) fn shared(root: &Path) -> Result<PathBuf, String> {
    let p = std::env::var_os("INGOT_SHARED_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/fixtures"));
    if p.is_dir() {
        Ok(p)
    } else {
        Err(format!(
            "the shared fixtures are not at {} (set INGOT_SHARED_FIXTURES)",
            p.display()
        ))
    }
}

/// The source folder of a crate in ingot's dependency graph, from
/// `cargo metadata`.
fn crate_dir(name: &str) -> Result<PathBuf, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .ok_or_else(|| format!("crate {name} is not in cargo metadata"))
}

/// Fetch (once, pinned by SHA-256) and unpack a Debian upstream tarball;
/// returns the folder it was unpacked in.
fn debian_source(root: &Path, tarball: &str, cache: &Path) -> Result<PathBuf, String> {
    let sources = tsv(&root.join("tests/real-rpms/debian-sources.tsv"))?;
    let (pool, want) = sources
        .iter()
        .find_map(|f| match f.as_slice() {
            [n, pool, sha] if n == tarball => Some((pool.clone(), sha.clone())),
            _ => None,
        })
        .ok_or_else(|| format!("debian-sources.tsv does not name {tarball}"))?;
    let file = cache.join(tarball);
    if !file.is_file() || sha256_of(&file)? != want {
        let url = format!("{}/{pool}/{tarball}", debian_mirror()?);
        eprintln!("xtask: fetching {url}");
        let part = cache.join(format!("{tarball}.part"));
        crate::run(
            Command::new("curl")
                .args(["-fsSL", "--retry", "3", "-o"])
                .arg(&part)
                .arg(&url),
        )?;
        let got = sha256_of(&part)?;
        if got != want {
            let _ = std::fs::remove_file(&part);
            return Err(format!("{url} has SHA-256 {got}, expected {want}"));
        }
        std::fs::rename(&part, &file).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let unpacked = cache.join(format!("{tarball}.d"));
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked).map_err(|e| format!("{}: {e}", unpacked.display()))?;
    crate::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&unpacked)
            .args(["--wildcards", "*.rpm"]),
    )?;
    Ok(unpacked)
}

/// The Debian archive this machine's apt uses (its first `deb` source for
/// the `main` component that is not the security archive).
fn debian_mirror() -> Result<String, String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        let found = if name.ends_with(".sources") {
            mirror_in_deb822(&text)
        } else if name.ends_with(".list") {
            mirror_in_one_line(&text)
        } else {
            None
        };
        if let Some(uri) = found {
            return Ok(uri.trim_end_matches('/').to_string());
        }
    }
    Err("no Debian archive found in apt's sources (needed for the real-RPM corpus)".into())
}

fn usable(uri: &str, suites: &str, components: &str) -> bool {
    uri.starts_with("http")
        && !uri.contains("security")
        && !suites.contains("security")
        && components.split_whitespace().any(|c| c == "main")
}

fn mirror_in_deb822(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let (types, uris) = (field("Types"), field("URIs"));
        if !types.split_whitespace().any(|t| t == "deb") || field("Enabled") == "no" {
            continue;
        }
        for uri in uris.split_whitespace() {
            if usable(uri, &field("Suites"), &field("Components")) {
                return Some(uri.to_string());
            }
        }
    }
    None
}

fn mirror_in_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        if words.next() != Some("deb") {
            return None;
        }
        let rest: Vec<&str> = words
            .filter(|w| !w.starts_with('[') && !w.ends_with(']'))
            .collect();
        match rest.as_slice() {
            [uri, suite, comps @ ..] if usable(uri, suite, &comps.join(" ")) => {
                Some(uri.to_string())
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_read_from_either_form_of_apt_sources() {
        let deb822 = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(
            mirror_in_deb822(deb822).as_deref(),
            Some("http://mirror.invalid/debian")
        );
        let only_security = "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(mirror_in_deb822(only_security), None);
        let list = "# comment\ndeb-src http://x.invalid/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian bookworm main contrib\n";
        assert_eq!(
            mirror_in_one_line(list).as_deref(),
            Some("http://mirror.invalid/debian")
        );
        assert_eq!(
            mirror_in_one_line("deb http://x.invalid/debian bookworm contrib\n"),
            None
        );
    }
}
