//! `ingot inspect FILE [--files]`

use std::path::PathBuf;

use clap::Args;
use ingot::Result;
use ingot::inspect::{self, Artifact};

use super::Printer;

#[derive(Args)]
pub struct InspectArgs {
    /// An .rpm, an image (raw disk, VMDK, fixed VHD, qcow2, GCE tarball or tarball) or a manifest
    file: PathBuf,
    /// Also list every file (with its content digest)
    #[arg(long)]
    files: bool,
}

pub fn run(args: InspectArgs, p: &Printer) -> Result<()> {
    let kind = inspect::detect(&args.file)?;
    match kind {
        Artifact::Rpm => {
            let mut v = inspect::rpm(&args.file)?;
            let mut text = format!(
                "{}\n  summary: {}\n  license: {}\n  requires: {}\n  provides: {}",
                v["nevra"].as_str().unwrap_or(""),
                v["summary"].as_str().unwrap_or(""),
                v["license"].as_str().unwrap_or(""),
                v["requires"].as_array().map(|a| a.len()).unwrap_or(0),
                v["provides"].as_array().map(|a| a.len()).unwrap_or(0),
            );
            if args.files {
                for f in v["files"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "\n  {} {} {}:{} {}",
                        f["mode"].as_str().unwrap_or(""),
                        f["size"],
                        f["user"].as_str().unwrap_or(""),
                        f["group"].as_str().unwrap_or(""),
                        f["path"].as_str().unwrap_or("")
                    ));
                }
            } else if let Some(o) = v.as_object_mut() {
                o.remove("files");
            }
            p.result(&text, &v);
        }
        Artifact::Tar | Artifact::Disk(_) => {
            let view = match kind {
                Artifact::Disk(format) => inspect::image_from_disk(&args.file, format, args.files)?,
                _ => inspect::image_from_tar(&args.file, args.files)?,
            };
            let mut text = format!(
                "image {} ({} packages, {} paths)",
                view.os_release
                    .get("PRETTY_NAME")
                    .cloned()
                    .unwrap_or_else(|| "of an unknown system".into()),
                view.packages.len(),
                view.files.len()
            );
            for pkg in &view.packages {
                text.push_str(&format!("\n  {}", pkg.nevra));
            }
            if args.files {
                for (path, f) in &view.files {
                    text.push_str(&format!(
                        "\n  {} {} {}:{} {} {}",
                        f.kind, f.mode, f.uid, f.gid, f.size, path
                    ));
                }
            }
            let mut json = serde_json::json!({
                "kind": "image",
                "os_release": view.os_release,
                "packages": view.packages,
            });
            if args.files {
                json["files"] = serde_json::to_value(&view.files).unwrap_or_default();
            }
            p.result(&text, &json);
        }
        Artifact::Manifest => {
            let m = inspect::manifest(&args.file)?;
            let text = format!(
                "manifest of {} ({} packages in the image; outputs: {})",
                m.name,
                m.image_packages.len(),
                m.outputs
                    .iter()
                    .map(|o| o.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            p.result(&text, &serde_json::to_value(&m).unwrap_or_default());
        }
    }
    Ok(())
}
