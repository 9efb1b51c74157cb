//! `ingot diff A B`

use std::path::{Path, PathBuf};

use clap::Args;
use ingot::diff::{self, Diff, Pkg};
use ingot::inspect::{self, Artifact};
use ingot::{Error, Result};

use super::Printer;

#[derive(Args)]
pub struct DiffArgs {
    /// The older image (raw disk, VMDK, fixed VHD, qcow2, GCE or plain tarball) or manifest
    a: PathBuf,
    /// The newer image (raw disk, VMDK, fixed VHD, qcow2, GCE or plain tarball) or manifest
    b: PathBuf,
}

struct Side {
    packages: Vec<Pkg>,
    files: Option<std::collections::BTreeMap<String, inspect::FileInfo>>,
}

/// What a side is, before any work: two manifests or two images (of any
/// container: raw, VMDK, VHD, qcow2, GCE tarball, tarball) can be
/// compared; nothing else can.
fn comparable(a: &Path, b: &Path) -> Result<(Artifact, Artifact)> {
    let (ka, kb) = (inspect::detect(a)?, inspect::detect(b)?);
    let image = |k: Artifact| matches!(k, Artifact::Tar | Artifact::Disk(_));
    let ok = (ka == Artifact::Manifest && kb == Artifact::Manifest) || (image(ka) && image(kb));
    if !ok {
        return Err(Error::Usage(format!(
            "cannot compare `{}` ({}) with `{}` ({}): diff compares two images (raw, VMDK, VHD, \
             qcow2, GCE or plain tarball) or two manifests",
            a.display(),
            ka.name(),
            b.display(),
            kb.name()
        )));
    }
    Ok((ka, kb))
}

fn load(path: &Path, kind: Artifact) -> Result<Side> {
    let pkgs = |v: &[ingot::install::ImagePackage]| -> Vec<Pkg> {
        v.iter()
            .filter_map(|p| Pkg::from_nevra(&p.nevra, &p.sigmd5))
            .collect()
    };
    Ok(match kind {
        Artifact::Manifest => {
            let m = inspect::manifest(path)?;
            Side {
                packages: m
                    .image_packages
                    .iter()
                    .filter_map(|p| Pkg::from_nevra(&p.nevra, &p.sigmd5))
                    .collect(),
                files: None,
            }
        }
        Artifact::Disk(format) => {
            let v = inspect::image_from_disk(path, format, true)?;
            Side {
                packages: pkgs(&v.packages),
                files: Some(v.files),
            }
        }
        _ => {
            let v = inspect::image_from_tar(path, true)?;
            Side {
                packages: pkgs(&v.packages),
                files: Some(v.files),
            }
        }
    })
}

pub fn run(args: DiffArgs, p: &Printer) -> Result<()> {
    let (ka, kb) = comparable(&args.a, &args.b)?;
    let a = load(&args.a, ka)?;
    let b = load(&args.b, kb)?;
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
