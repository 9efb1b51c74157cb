//! `ingot diff A B`

use std::path::{Path, PathBuf};

use clap::Args;
use ingot::diff::{self, Diff, Pkg};
use ingot::inspect::{self, Artifact};
use ingot::{Error, Result};

use super::Printer;

#[derive(Args)]
pub struct DiffArgs {
    /// The older image (tarball) or manifest
    a: PathBuf,
    /// The newer image (tarball) or manifest
    b: PathBuf,
}

struct Side {
    packages: Vec<Pkg>,
    files: Option<std::collections::BTreeMap<String, inspect::FileInfo>>,
}

fn load(path: &Path) -> Result<Side> {
    match inspect::detect(path)? {
        Artifact::Manifest => {
            let m = inspect::manifest(path)?;
            Ok(Side {
                packages: m
                    .image_packages
                    .iter()
                    .filter_map(|p| Pkg::from_nevra(&p.nevra, &p.sigmd5))
                    .collect(),
                files: None,
            })
        }
        kind @ (Artifact::Tar | Artifact::Disk) => {
            let v = if kind == Artifact::Tar {
                inspect::image_from_tar(path, true)?
            } else {
                inspect::image_from_disk(path, true)?
            };
            Ok(Side {
                packages: v
                    .packages
                    .iter()
                    .filter_map(|p| Pkg::from_nevra(&p.nevra, &p.sigmd5))
                    .collect(),
                files: Some(v.files),
            })
        }
        other => Err(Error::Usage(format!(
            "`{}` is {}; diff compares two images (raw disks or tarballs) or two manifests",
            path.display(),
            match other {
                Artifact::Rpm => "an rpm",
                _ => "something else",
            }
        ))),
    }
}

pub fn run(args: DiffArgs, p: &Printer) -> Result<()> {
    let a = load(&args.a)?;
    let b = load(&args.b)?;
    let d = Diff {
        packages: diff::packages(&a.packages, &b.packages),
        files: match (&a.files, &b.files) {
            (Some(x), Some(y)) => Some(diff::files(x, y)),
            _ => None,
        },
    };
    let mut lines = Vec::new();
    for c in &d.packages {
        lines.push(match (&c.from, &c.to) {
            (Some(f), Some(t)) => {
                format!("{:?} {}: {f} -> {t}", c.change, c.name).to_lowercase_first()
            }
            (None, Some(t)) => format!("added {t}"),
            (Some(f), None) => format!("removed {f}"),
            (None, None) => continue,
        });
    }
    for f in d.files.iter().flatten() {
        lines.push(format!("{} {}", f.changes.join(","), f.path));
    }
    if lines.is_empty() {
        lines.push("no differences".into());
    }
    p.result(
        &lines.join("\n"),
        &serde_json::to_value(&d).unwrap_or_default(),
    );
    Ok(())
}

trait LowerFirst {
    fn to_lowercase_first(self) -> String;
}

impl LowerFirst for String {
    fn to_lowercase_first(self) -> String {
        let mut c = self.chars();
        match c.next() {
            Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
            None => self,
        }
    }
}
