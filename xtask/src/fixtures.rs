//! `cargo xtask fixtures [--check]`: regenerate the committed fixtures
//! from their sources, deterministically; `--check` compares instead of
//! writing and fails when a committed fixture is stale.
//!
//! `fixtures/al2023-standin/rootfs.tar.zst`: the stub package specs under
//! `fixtures/al2023-standin/packages/` built with ingot and installed with
//! ingot into an empty tree (dependency checks on), written as ingot's
//! reproducible tarball, compressed with zstd level 19.
//!
//! `fixtures/example-repo/repo/`: the example's package repository, the
//! spec under `fixtures/example-repo/src/` built with ingot (every file's
//! time the stand-in's date) and indexed by `createrepo_c` with its
//! revision and timestamps set to that date; then `specs/hello-image.lock`,
//! the example's lock, made by `ingot lock --upgrade` against it.
//!
//! `--check` generates all of it in a copy of `specs/` and `fixtures/`
//! and compares it file by file with what is committed.

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

/// The example repository's folder, and what `createrepo_c` indexes.
const EXAMPLE_REPO: &str = "fixtures/example-repo";
const EXAMPLE_LOCK: &str = "specs/hello-image.lock";

pub fn run(root: &Path, check: bool) -> Result<(), String> {
    if !check {
        generate(root)?;
        eprintln!("xtask: wrote the fixtures");
        return Ok(());
    }
    let copy = tempfile::tempdir().map_err(err)?;
    for d in ["specs", "fixtures"] {
        copy_tree(&root.join(d), &copy.path().join(d))?;
    }
    generate(copy.path())?;
    let mut stale = Vec::new();
    for rel in ["fixtures/al2023-standin/rootfs.tar.zst", EXAMPLE_LOCK] {
        if read(&root.join(rel)).ok() != Some(read(&copy.path().join(rel))?) {
            stale.push(rel.to_string());
        }
    }
    let have = files_under(&root.join(EXAMPLE_REPO).join("repo"))?;
    let want = files_under(&copy.path().join(EXAMPLE_REPO).join("repo"))?;
    if have != want {
        stale.push(format!("{EXAMPLE_REPO}/repo/"));
    }
    if !stale.is_empty() {
        return Err(format!(
            "stale: {}; run `cargo xtask fixtures` and commit the result",
            stale.join(", ")
        ));
    }
    eprintln!("xtask: fixtures are up to date");
    Ok(())
}

/// Every generated fixture under `root` (the repository or a copy of it).
fn generate(root: &Path) -> Result<(), String> {
    let target = root.join("fixtures/al2023-standin/rootfs.tar.zst");
    let bytes = standin_tarball(root)?;
    std::fs::write(&target, &bytes).map_err(|e| format!("{}: {e}", target.display()))?;
    example_repo(root)?;
    example_lock(root)
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// `fixtures/example-repo/repo/`: its package built, then indexed.
fn example_repo(root: &Path) -> Result<(), String> {
    let src = root.join(EXAMPLE_REPO).join("src/hello-motd.toml");
    let repo = root.join(EXAMPLE_REPO).join("repo");
    if repo.exists() {
        std::fs::remove_dir_all(&repo).map_err(|e| format!("{}: {e}", repo.display()))?;
    }
    std::fs::create_dir_all(&repo).map_err(err)?;
    let spec = ingot::spec::load_package(&src).map_err(err)?;
    let built = ingot::rpm::build_package(
        &spec,
        &BuildOptions {
            compression: Compression::Zstd(19),
            source_date_epoch: Some(STANDIN_DATE),
            sign_key: None,
        },
    )
    .map_err(|e| format!("{}: {e}", src.display()))?;
    let rpm = repo.join(&built.file_name);
    std::fs::write(&rpm, &built.bytes).map_err(err)?;
    // createrepo_c records the package file's time.
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(STANDIN_DATE);
    std::fs::File::options()
        .write(true)
        .open(&rpm)
        .and_then(|f| f.set_modified(when))
        .map_err(err)?;
    let status = std::process::Command::new("createrepo_c")
        .args(["--quiet", "--no-database", "--revision"])
        .arg(STANDIN_DATE.to_string())
        .arg("--set-timestamp-to-revision")
        .arg(&repo)
        .status()
        .map_err(|e| format!("createrepo_c (package createrepo-c): {e}"))?;
    if !status.success() {
        return Err(format!("createrepo_c failed: {status}"));
    }
    Ok(())
}

/// `specs/hello-image.lock`: the example's packages from its repository.
fn example_lock(root: &Path) -> Result<(), String> {
    let spec = ingot::spec::image::load_image(&root.join("specs/hello-image.toml")).map_err(err)?;
    let cache = tempfile::tempdir().map_err(err)?;
    let opts = ingot::bake::LockOptions {
        base: None,
        repos: ingot::bake::RepoOptions {
            cache: cache.path().to_path_buf(),
            offline: false,
            locked: false,
        },
        mode: ingot::bake::LockMode::Upgrade,
        download: false,
        jobs: std::num::NonZeroUsize::MIN,
    };
    ingot::bake::lock(&spec, &opts, &ingot::progress::Quiet).map_err(err)?;
    Ok(())
}

/// (path under `dir`, bytes) of every file in `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(err)?.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).map_err(err)?.to_path_buf();
                out.push((rel, read(&p)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(err)?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e.map_err(err)?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type().map_err(err)?;
        if t.is_dir() {
            copy_tree(&src, &dst)?;
        } else if t.is_symlink() {
            let l = std::fs::read_link(&src).map_err(err)?;
            std::os::unix::fs::symlink(l, &dst).map_err(err)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}
