//! `ingot lock IMAGE_SPEC [--upgrade] [--check] [--download] [--base PATH] [--cache DIR] [--offline]`

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;
use ingot::bake::{Fetch, LockMode, LockOptions, LockOutcome, LockState, LockUpdate, RepoOptions};

use super::Printer;
use super::error::{Error, Result};
use super::progress::Drawn;

#[derive(Args)]
pub struct LockArgs {
    /// The image spec (TOML); its lock file is SPEC_STEM.lock beside it
    spec: PathBuf,
    /// Resolve again to the newest versions the repositories offer, even when the lock matches the spec
    #[arg(long, conflicts_with = "check")]
    upgrade: bool,
    /// Write nothing; exit 1 when the lock is missing or stale or the repositories offer newer versions of its packages (listed)
    #[arg(long)]
    check: bool,
    /// Then download the locked packages into the cache (checked against the lock's SHA-256 and, with gpgcheck, their signatures), so a later bake needs no network
    #[arg(long, conflicts_with = "check")]
    download: bool,
    /// Use this base root filesystem instead of the spec's (its installed packages are the starting point)
    #[arg(long)]
    base: Option<PathBuf>,
    #[command(flatten)]
    repos: RepoArgs,
    /// Worker threads for building the image's package specs (default: all cores)
    #[arg(long, value_name = "N")]
    jobs: Option<NonZeroUsize>,
}

/// How packages from repositories are fetched (`bake` and `lock`).
#[derive(Args)]
pub struct RepoArgs {
    /// The download cache for repository metadata and packages (default: $XDG_CACHE_HOME/ingot, else ~/.cache/ingot)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Use only what the cache holds: no network request
    #[arg(long)]
    offline: bool,
}

impl RepoArgs {
    /// The library's options: the cache folder given, else the user's.
    pub fn options(&self, locked: bool) -> Result<RepoOptions> {
        let cache = match &self.cache {
            Some(c) => c.clone(),
            None => default_cache().ok_or_else(|| {
                Error::Usage(
                    "neither XDG_CACHE_HOME nor HOME is set: give the cache folder with --cache DIR"
                        .into(),
                )
            })?,
        };
        Ok(RepoOptions {
            cache,
            offline: self.offline,
            locked,
        })
    }
}

/// `$XDG_CACHE_HOME/ingot` (when absolute, as the XDG rules want), else
/// `$HOME/.cache/ingot`.
fn default_cache() -> Option<PathBuf> {
    let var = |n: &str| {
        std::env::var_os(n)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_CACHE_HOME")
        .map(|d| d.join("ingot"))
        .or_else(|| var("HOME").map(|h| h.join(".cache/ingot")))
}

pub fn run(args: LockArgs, p: &Printer) -> Result<()> {
    let spec = ingot::spec::image::load_image(&args.spec)?;
    let mode = if args.check {
        LockMode::Check
    } else if args.upgrade {
        LockMode::Upgrade
    } else {
        LockMode::Update
    };
    let opts = LockOptions {
        base: args.base,
        repos: args.repos.options(false)?,
        mode,
        download: args.download,
        jobs: args.jobs.unwrap_or_else(ingot::rpm::default_jobs),
    };
    let began = std::time::Instant::now();
    let drawn = Drawn::new(p, move |what| {
        p.info(&format!("[{:6.2}s] {what}", began.elapsed().as_secs_f64()));
    });
    let outcome = ingot::bake::lock(&spec, &opts, &drawn)?;
    drop(drawn);
    match &outcome {
        LockOutcome::UpToDate { path, fetched } => {
            let mut text = format!("`{}` is up to date", path.display());
            text.push_str(&fetched_line(fetched.as_ref()));
            p.result(
                &text,
                &serde_json::json!({
                    "ok": true, "lock": path, "written": false, "changes": [],
                    "download": fetched_json(fetched.as_ref()),
                }),
            );
        }
        LockOutcome::Written { update: u, fetched } => {
            let changes = change_lines(u);
            let mut text = format!("wrote `{}`", u.path.display());
            if changes.is_empty() {
                text.push_str(" (the same packages)");
            }
            for c in &changes {
                text.push_str("\n  ");
                text.push_str(c);
            }
            text.push_str(&fetched_line(fetched.as_ref()));
            p.result(
                &text,
                &serde_json::json!({
                    "ok": true, "lock": u.path, "written": true, "changes": changes,
                    "download": fetched_json(fetched.as_ref()),
                }),
            );
        }
        LockOutcome::Checked { path, state, newer } => {
            let newer: Vec<String> = newer.iter().map(|c| c.to_string()).collect();
            let mut lines = Vec::new();
            match state {
                LockState::Missing => lines.push(format!("`{}` is missing", path.display())),
                LockState::Stale => lines.push(format!(
                    "`{}` is stale: the spec changed since it was made",
                    path.display()
                )),
                LockState::Current => {}
            }
            if !newer.is_empty() {
                lines.push("newer versions available:".into());
                lines.extend(newer.iter().map(|c| format!("  {c}")));
            }
            let text = if lines.is_empty() {
                format!("`{}` is up to date", path.display())
            } else {
                lines.join("\n")
            };
            let ok = !outcome.outdated();
            p.result(
                &text,
                &serde_json::json!({
                    "ok": ok,
                    "lock": path,
                    "state": format!("{state:?}").to_lowercase(),
                    "newer": newer,
                }),
            );
            if !ok {
                return Err(Error::CheckFailed(format!(
                    "`{}` is not up to date; `ingot lock --upgrade {}` updates it",
                    path.display(),
                    args.spec.display()
                )));
            }
        }
    }
    Ok(())
}

/// `--download`'s line under the result (nothing without it).
fn fetched_line(f: Option<&Fetch>) -> String {
    match f {
        None => String::new(),
        Some(f) => format!(
            "\n{} package(s) in the cache: {} downloaded ({} bytes), {} already there",
            f.packages,
            f.downloaded,
            f.bytes,
            f.packages - f.downloaded
        ),
    }
}

fn fetched_json(f: Option<&Fetch>) -> serde_json::Value {
    match f {
        None => serde_json::Value::Null,
        Some(f) => serde_json::json!({
            "packages": f.packages, "downloaded": f.downloaded, "bytes": f.bytes,
        }),
    }
}

fn change_lines(u: &LockUpdate) -> Vec<String> {
    u.changes().iter().map(|c| c.to_string()).collect()
}

/// What a bake's new lock file changed, on stderr beside the result.
pub fn tell_written(p: &Printer, u: &LockUpdate) {
    let changes = change_lines(u);
    let mut text = format!("wrote `{}`", u.path.display());
    if changes.is_empty() {
        text.push_str(" (the same packages)");
    }
    for c in &changes {
        text.push_str("\n  ");
        text.push_str(c);
    }
    p.note(&text);
}
