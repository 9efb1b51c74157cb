//! `ingot build SPEC [--out DIR] [--jobs N]`

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;
use ingot::output::Staging;
use ingot::rpm::{BuildOptions, Compression, Target};
use ingot::{Error, Result};

use super::Printer;
use super::progress::Drawn;

#[derive(Args)]
pub struct BuildArgs {
    /// The package spec (TOML)
    spec: PathBuf,
    /// Where to write the RPM
    #[arg(long, default_value = "dist")]
    out: PathBuf,
    /// Payload compression: zstd[:1-22], gzip[:1-9], xz[:1-9], bzip2[:1-9] or none
    #[arg(long, default_value = "zstd:3")]
    compression: Compression,
    /// Sign with this ASCII-armored OpenPGP secret key (RSA or Ed25519)
    #[arg(long, value_name = "KEY.asc")]
    sign_key: Option<PathBuf>,
    /// Threads for hashing and zstd compression (default: all cores); the RPM is the same whatever N is
    #[arg(long, value_name = "N")]
    jobs: Option<NonZeroUsize>,
}

pub fn run(args: BuildArgs, p: &Printer) -> Result<()> {
    let spec = ingot::spec::load_package(&args.spec)?;
    let opts = BuildOptions {
        compression: args.compression,
        source_date_epoch: ingot::source_date::from_environment().map_err(Error::Usage)?,
        sign_key: args.sign_key,
    };
    let jobs = args.jobs.unwrap_or_else(ingot::rpm::default_jobs);
    let name = ingot::rpm::build::file_name(&spec);
    let mut staging = Staging::new(&args.out)?;
    // The payload waits in an unnamed temporary file in a work folder
    // beside the RPM (named while the system makes it, where it has no
    // unnamed files: the work folder keeps that name known to the cleanup).
    let work = staging.work_dir()?;
    let path = staging.dir().join(&name);
    let file = staging.create(&name)?;
    let built = ingot::rpm::write_package(
        &spec,
        &opts,
        jobs,
        Target {
            file,
            path: &path,
            work_dir: work.path(),
        },
        &Drawn::new(p, |_| {}),
    )?;
    drop(work);
    for w in &built.warnings {
        p.warn(w);
    }
    let paths = staging.commit()?;
    let path = paths.first().cloned().unwrap_or(path);
    p.info(&format!(
        "built {} ({} entries, {} bytes, time {})",
        built.nevra, built.files, built.size, built.source_date
    ));
    let json = serde_json::json!({
        "ok": true,
        "rpm": path,
        "nevra": built.nevra,
        "sha256": built.sha256,
        "size": built.size,
        "signed": built.signed,
        "source_date_epoch": built.source_date.seconds,
        "requires": built.requires,
        "provides": built.provides,
        "warnings": built.warnings,
    });
    p.result(&path.display().to_string(), &json);
    Ok(())
}
