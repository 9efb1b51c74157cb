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
use crate::package::{Package, split_nevra};

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

/// What changed from packages `a` to `b`: packages are told apart by name
/// and arch, and compared by version, then by SIGMD5, all as their NEVRA
/// says (a package whose NEVRA does not split is left out).
pub fn packages(a: &[Package], b: &[Package]) -> Vec<PackageChange> {
    let (am, bm) = (by_name_and_arch(a), by_name_and_arch(b));
    let mut keys: Vec<&(String, String)> = am.keys().chain(bm.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (x, y) = (am.get(k), bm.get(k));
        let change = match (x, y) {
            (None, Some(_)) => PackageChangeKind::Added,
            (Some(_), None) => PackageChangeKind::Removed,
            (Some((xv, x)), Some((yv, y))) => match compare_evr(yv, xv) {
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
            from: x.map(|(_, p)| p.nevra.clone()),
            to: y.map(|(_, p)| p.nevra.clone()),
        });
    }
    out
}

/// (name, arch) -> (`[epoch:]version-release`, the package).
fn by_name_and_arch(v: &[Package]) -> BTreeMap<(String, String), (String, &Package)> {
    v.iter()
        .filter_map(|p| {
            let n = split_nevra(&p.nevra)?;
            Some(((n.name.to_string(), n.arch.to_string()), (n.evr(), p)))
        })
        .collect()
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

    fn p(nevra: &str, md5: &str) -> Package {
        Package {
            nevra: nevra.into(),
            sigmd5: md5.into(),
            ..Package::default()
        }
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
            p("unsplittable", "u"),
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
