//! `ingot verify MANIFEST`

use std::path::PathBuf;

use super::error::{Error, Result};
use clap::Args;

use super::Printer;

#[derive(Args)]
pub struct VerifyArgs {
    /// A manifest written by `ingot bake` (NAME-DIGEST.manifest.json)
    manifest: PathBuf,
}

pub fn run(args: VerifyArgs, p: &Printer) -> Result<()> {
    let (m, checks) = ingot::manifest::verify::verify(&args.manifest)?;
    let ok = checks.iter().all(|c| c.is_ok());
    let text = checks
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let json = serde_json::json!({
        "ok": ok,
        "name": m.name,
        "checks": checks,
    });
    if ok {
        p.result(&text, &json);
        Ok(())
    } else {
        p.result(&text, &json);
        let bad: Vec<String> = checks
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| c.to_string())
            .collect();
        Err(Error::CheckFailed(format!(
            "{} of {} outputs do not match the manifest:\n  {}",
            bad.len(),
            checks.len(),
            bad.join("\n  ")
        )))
    }
}
