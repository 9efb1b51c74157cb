//! `ingot bake IMAGE_SPEC [--out DIR] [--base PATH] [--locked] [--offline] [--cache DIR]`

use std::num::NonZeroUsize;
use std::path::PathBuf;

use super::error::{Error, Result};
use clap::Args;
use ingot::bake::BakeOptions;
use ingot::disk::OutputFormat;
use ingot::progress::Reporter;
use ingot::rpm::Compression;

use super::Printer;
use super::progress::Drawn;

#[derive(Args)]
pub struct BakeArgs {
    /// The image spec (TOML)
    spec: PathBuf,
    /// Where to write the image, its manifest and SBOM
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Use this base root filesystem (a .tar, .tar.gz, .tar.xz, .tar.zst or a folder) instead of the spec's
    #[arg(long)]
    base: Option<PathBuf>,
    /// Install even when requirements are unmet or packages conflict (they become warnings)
    #[arg(long)]
    no_deps_check: bool,
    /// Write only these formats (repeatable)
    #[arg(long = "format", value_name = "FORMAT", value_enum)]
    formats: Vec<OutputFormat>,
    /// Payload compression of packages built from specs
    #[arg(long, default_value = "zstd:3")]
    compression: Compression,
    /// Worker threads for zstd compression of packages built from specs and for the VMDK's grains and the EBS block hashes (default: all cores); the output is the same whatever N is
    #[arg(long, value_name = "N")]
    jobs: Option<NonZeroUsize>,
    #[command(flatten)]
    repos: super::lock::RepoArgs,
    /// Fail (exit 2) when the lock file beside the spec is missing or stale instead of resolving and writing it (for CI)
    #[arg(long)]
    locked: bool,
}

pub fn run(args: BakeArgs, p: &Printer) -> Result<()> {
    let spec = ingot::spec::image::load_image(&args.spec)?;
    let mut formats = args.formats.clone();
    formats.sort();
    formats.dedup();
    let opts = BakeOptions {
        out: args.out,
        base: args.base,
        deps_check: !args.no_deps_check,
        source_date_epoch: ingot::source_date::from_environment().map_err(Error::Usage)?,
        compression: args.compression,
        jobs: args.jobs.unwrap_or_else(ingot::rpm::default_jobs),
        formats,
        repos: args.repos.options(args.locked)?,
    };
    // Each step on its own line with `-v`, after the seconds since the
    // bake began, so a slow step shows itself; bars on a terminal.
    let began = std::time::Instant::now();
    let drawn = Drawn::new(p, move |what| {
        p.info(&format!("[{:6.2}s] {what}", began.elapsed().as_secs_f64()));
    });
    let result = ingot::bake::bake(&spec, &opts, &drawn)?;
    drawn.step("done");
    for w in &result.manifest.warnings {
        p.warn(w);
    }
    if let Some(u) = &result.lock {
        super::lock::tell_written(p, u);
    }
    let main = result
        .manifest
        .outputs
        .first()
        .and_then(|o| {
            result
                .outputs
                .iter()
                .find(|p| p.file_name().is_some_and(|n| *n == *o.file))
        })
        .cloned()
        .unwrap_or_default();
    let json = serde_json::json!({
        "ok": true,
        "image": main,
        "outputs": result.outputs,
        "manifest": result.outputs.last(),
        "packages": result.manifest.packages.iter().map(|p| &p.package.nevra).collect::<Vec<_>>(),
        "warnings": result.manifest.warnings,
        "lock": result.lock.as_ref().map(|u| serde_json::json!({
            "path": u.path,
            "changes": u.changes().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        })),
    });
    p.result(&main.display().to_string(), &json);
    Ok(())
}
