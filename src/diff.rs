//! `ingot diff`: what changed between two images or two manifests.
//!
//! In: two package lists (from manifests or from the rpm databases inside
//! images) and, for images, two file listings. Out: packages added,
//! removed, upgraded, downgraded or rebuilt (same version, other bytes),
//! and paths added, removed or changed (contents, mode, owner, type), in
//! name order. Pure: compares what it is given.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::inspect::FileInfo;
use crate::install::deps::compare_evr;

/// A package as both sides know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkg {
    pub name: String,
    pub evr: String,
    pub arch: String,
    pub nevra: String,
    pub sigmd5: String,
}

impl Pkg {
    /// From `name-[epoch:]version-release.arch`.
    pub fn from_nevra(nevra: &str, sigmd5: &str) -> Option<Pkg> {
        let (nvr, arch) = nevra.rsplit_once('.')?;
        let (nv, release) = nvr.rsplit_once('-')?;
        let (name, version) = nv.rsplit_once('-')?;
        Some(Pkg {
            name: name.to_string(),
            evr: format!("{version}-{release}"),
            arch: arch.to_string(),
            nevra: nevra.to_string(),
            sigmd5: sigmd5.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageChangeKind {
    Added,
    Removed,
    Upgraded,
    Downgraded,
    /// Same name, version and arch, other contents (another SIGMD5).
    Rebuilt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub name: String,
    pub change: PackageChangeKind,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    /// `added`, `removed`, or what changed: `kind`, `content`, `mode`, `owner`.
    pub changes: Vec<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub packages: Vec<PackageChange>,
    /// `None` when the inputs carry no file listings (manifests).
    pub files: Option<Vec<FileChange>>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.files.as_ref().is_none_or(|f| f.is_empty())
    }
}

pub fn packages(a: &[Pkg], b: &[Pkg]) -> Vec<PackageChange> {
    let key = |p: &Pkg| (p.name.clone(), p.arch.clone());
    let am: BTreeMap<(String, String), &Pkg> = a.iter().map(|p| (key(p), p)).collect();
    let bm: BTreeMap<(String, String), &Pkg> = b.iter().map(|p| (key(p), p)).collect();
    let mut keys: Vec<&(String, String)> = am.keys().chain(bm.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (x, y) = (am.get(k), bm.get(k));
        let change = match (x, y) {
            (None, Some(_)) => PackageChangeKind::Added,
            (Some(_), None) => PackageChangeKind::Removed,
            (Some(x), Some(y)) => match compare_evr(&y.evr, &x.evr) {
                Ordering::Greater => PackageChangeKind::Upgraded,
                Ordering::Less => PackageChangeKind::Downgraded,
                Ordering::Equal if x.sigmd5 != y.sigmd5 => PackageChangeKind::Rebuilt,
                Ordering::Equal => continue,
            },
            (None, None) => continue,
        };
        out.push(PackageChange {
            name: k.0.clone(),
            change,
            from: x.map(|p| p.nevra.clone()),
            to: y.map(|p| p.nevra.clone()),
        });
    }
    out
}

pub fn files(a: &BTreeMap<String, FileInfo>, b: &BTreeMap<String, FileInfo>) -> Vec<FileChange> {
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for p in paths {
        let changes = match (a.get(p), b.get(p)) {
            (None, Some(_)) => vec!["added"],
            (Some(_), None) => vec!["removed"],
            (Some(x), Some(y)) => {
                let mut c = Vec::new();
                if x.kind != y.kind {
                    c.push("kind");
                } else if x.content != y.content || x.size != y.size {
                    c.push("content");
                }
                if x.mode != y.mode {
                    c.push("mode");
                }
                if (x.uid, x.gid) != (y.uid, y.gid) {
                    c.push("owner");
                }
                c
            }
            (None, None) => Vec::new(),
        };
        if !changes.is_empty() {
            out.push(FileChange {
                path: p.clone(),
                changes,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(nevra: &str, md5: &str) -> Pkg {
        Pkg::from_nevra(nevra, md5).unwrap()
    }

    #[test]
    fn nevra_splits_at_the_last_dashes_and_dot() {
        let x = p("python3-libs-1:3.9.16-1.amzn2023.x86_64", "");
        assert_eq!(
            (x.name.as_str(), x.evr.as_str(), x.arch.as_str()),
            ("python3-libs", "1:3.9.16-1.amzn2023", "x86_64")
        );
    }

    #[test]
    fn package_changes_are_classified() {
        let a = vec![
            p("a-1-1.noarch", "x"),
            p("b-2-1.noarch", "y"),
            p("c-1-1.noarch", "z"),
            p("d-5-1.noarch", "w"),
        ];
        let b = vec![
            p("a-1-2.noarch", "x2"),
            p("b-2-1.noarch", "y"),
            p("d-4-1.noarch", "w"),
            p("e-1-1.noarch", "v"),
            p("c-1-1.noarch", "zz"),
        ];
        let d = packages(&a, &b);
        let got: Vec<(&str, PackageChangeKind)> = d
            .iter()
            .map(|c| (c.name.as_str(), c.change.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", PackageChangeKind::Upgraded),
                ("c", PackageChangeKind::Rebuilt),
                ("d", PackageChangeKind::Downgraded),
                ("e", PackageChangeKind::Added),
            ]
        );
    }
}
