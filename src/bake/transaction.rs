//! Stage 3 of `bake`: resolve and install. The packages go into the tree
//! as `rpm -i --root` would put them: digests, dependencies against the
//! base's database, conflicts, files, the database records
//! ([`crate::install`]).
//!
//! In: the tree, the packages, the source date. Out: the install report.

use std::path::Path;

use super::{BakeOptions, Reporter};
use crate::error::{Error, Result};
use crate::install::{self, InstallOptions, InstallReport};
use crate::rootfs::Tree;

pub(super) fn install(
    tree: &mut Tree,
    rpms: &[(std::path::PathBuf, String)],
    opts: &BakeOptions,
    work: &Path,
    time: u32,
    progress: &dyn Reporter,
) -> Result<InstallReport> {
    progress.step("installing packages");
    install::install_named(
        tree,
        rpms,
        &InstallOptions {
            install_time: time,
            deps_check: opts.deps_check,
            work_dir: work.to_path_buf(),
        },
        progress,
    )
    .map_err(|e| match e {
        // The work folder is scratch inside --out: name --out.
        install::InstallError::Work { source, .. } => Error::Write {
            path: opts.out.clone(),
            source,
        },
        e => e.into(),
    })
}
