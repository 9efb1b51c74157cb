//! `cargo xtask fixtures [--check]`: regenerate the committed fixtures
//! from their sources, deterministically; `--check` compares instead of
//! writing and fails when a committed fixture is stale.
//!
//! `fixtures/al2023-standin/rootfs.tar.zst`: the stub package specs under
//! `fixtures/al2023-standin/packages/` built with ingot and installed with
//! ingot into an empty tree (dependency checks on), written as ingot's
//! reproducible tarball, compressed with zstd level 19.

use std::path::{Path, PathBuf};

use ingot::install::{self, InstallOptions};
use ingot::rootfs::Tree;
use ingot::rpm::{BuildOptions, Compression};

/// 2023-08-25 00:00 UTC, the date of the AL2023 release the stand-in imitates.
pub const STANDIN_DATE: u64 = 1_692_921_600;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn standin_tarball(root: &Path) -> Result<Vec<u8>, String> {
    let dir = root.join("fixtures/al2023-standin/packages");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    specs.sort();
    let work = tempfile::tempdir().map_err(err)?;
    let mut rpms = Vec::new();
    for s in &specs {
        let spec = ingot::spec::load_package(s).map_err(err)?;
        let built = ingot::rpm::build_package(
            &spec,
            &BuildOptions {
                compression: Compression::Zstd(19),
                source_date_epoch: Some(STANDIN_DATE),
                sign_key: None,
            },
        )
        .map_err(|e| format!("{}: {e}", s.display()))?;
        let p = work.path().join(&built.file_name);
        std::fs::write(&p, &built.bytes).map_err(err)?;
        rpms.push(p);
    }
    let mut tree = Tree::with_spill_dir(work.path());
    let time = STANDIN_DATE as u32;
    // `/` as AL2023's filesystem package has it (ingot's specs cannot own `/`).
    tree.set_meta(
        Tree::new().root(),
        ingot::rootfs::Meta::new(0o555, 0, 0, STANDIN_DATE as i64),
    );
    let report = install::install(
        &mut tree,
        &rpms,
        &InstallOptions {
            install_time: time,
            deps_check: true,
            work_dir: work.path().to_path_buf(),
        },
    )
    .map_err(err)?;
    install::activate::accounts(&mut tree, time).map_err(err)?;
    let unknown = install::resolve_owners(&mut tree, &report.pending_owners);
    if !unknown.is_empty() {
        return Err(unknown.join("\n"));
    }
    let mut tar = Vec::new();
    tree.write_tar(&mut tar).map_err(err)?;
    zstd::stream::encode_all(&tar[..], 19).map_err(err)
}

pub fn run(root: &Path, check: bool) -> Result<(), String> {
    let target = root.join("fixtures/al2023-standin/rootfs.tar.zst");
    let bytes = standin_tarball(root)?;
    if check {
        let have = std::fs::read(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        if have != bytes {
            return Err(format!(
                "{} is stale: run `cargo xtask fixtures` and commit the result",
                target.display()
            ));
        }
        eprintln!("xtask: fixtures are up to date");
    } else {
        std::fs::write(&target, &bytes).map_err(|e| format!("{}: {e}", target.display()))?;
        eprintln!("xtask: wrote {} ({} bytes)", target.display(), bytes.len());
    }
    Ok(())
}
