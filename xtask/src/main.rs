//! Project chores: `cargo xtask ci` (everything CI checks), `cargo xtask
//! fixtures [--check]` (regenerate the committed fixtures), `cargo xtask
//! boot-base` (build the bootable Debian test base, cached), `cargo xtask
//! bench [--quick] [--only abc]` (ingot against rpmbuild and the mkfs pipeline, written
//! to docs/benchmarks.md).
//!
//! `ci` installs the external judges the tests need when they are missing
//! and it runs as root (Debian's apt-get), then runs rustfmt, clippy and
//! every test with `CI=true`, under which a test whose judge is missing
//! fails instead of skipping.

mod bench;
mod boot_base;
mod fixtures;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// (program the tests run, Debian package that provides it)
const JUDGES: &[(&str, &str)] = &[
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("rpmlint", "rpmlint"),
    ("gpg", "gnupg"),
    ("gcc", "gcc"),
    ("systemd-sysusers", "systemd"),
    ("setcap", "libcap2-bin"),
    ("fuse2fs", "fuse2fs"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("sgdisk", "gdisk"),
    ("sfdisk", "fdisk"),
    ("fsck.vfat", "dosfstools"),
    ("mdir", "mtools"),
    ("qemu-img", "qemu-utils"),
    ("mmdebstrap", "mmdebstrap"),
    ("qemu-system-x86_64", "qemu-system-x86"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fixtures") => {
            fixtures::run(&repo_root(), args.get(1).is_some_and(|a| a == "--check"))
        }
        Some("boot-base") => boot_base::run(&repo_root()).map(|_| ()),
        Some("bench") => {
            let quick = args.iter().any(|a| a == "--quick");
            let only = args
                .iter()
                .position(|a| a == "--only")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str);
            bench::run(&repo_root(), quick, only)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask ci | fixtures [--check] | boot-base | bench [--quick] [--only abc]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn have(program: &str) -> bool {
    let on_path = Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success());
    on_path
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(program).is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// (file the tests need, Debian package that provides it)
const FILES: &[(&str, &str)] = &[
    ("/usr/include/stdio.h", "libc6-dev"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
];

/// Debian packages that provide the judges (and files) missing now.
fn missing_judges() -> Vec<&'static str> {
    let mut missing: Vec<&str> = JUDGES
        .iter()
        .filter(|(prog, _)| !have(prog))
        .map(|(_, pkg)| *pkg)
        .chain(
            FILES
                .iter()
                .filter(|(f, _)| !std::path::Path::new(f).exists())
                .map(|(_, pkg)| *pkg),
        )
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

fn install_judges() -> Result<(), String> {
    let missing = missing_judges();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        eprintln!(
            "xtask: missing judges (tests that need them will fail): install {}",
            missing.join(" ")
        );
        return Ok(());
    }
    let apt = |pkgs: &[&str]| {
        let mut c = Command::new("apt-get");
        c.args(["install", "-y", "--no-install-recommends"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c)
    };
    if apt(&missing).is_err() {
        run(Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        apt(&missing)?;
    }
    // Installing one judge can replace another (a newer qemu-utils from
    // backports gives way to the release's qemu packages): check again.
    let still = missing_judges();
    if !still.is_empty() {
        apt(&still)?;
    }
    let still = missing_judges();
    if !still.is_empty() {
        return Err(format!(
            "judges still missing after apt-get: {}",
            still.join(" ")
        ));
    }
    Ok(())
}

/// Python tools the tests use as judges: (program, PyPI package).
const PY_JUDGES: &[(&str, &str)] = &[("pyspdxtools", "spdx-tools")];

fn install_py_judges() -> Result<(), String> {
    let missing: Vec<&str> = PY_JUDGES
        .iter()
        .filter(|(prog, _)| !have(prog))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        eprintln!(
            "xtask: missing Python judges: pip install {}",
            missing.join(" ")
        );
        return Ok(());
    }
    run(Command::new("python3")
        .args(["-m", "pip", "install", "--quiet"])
        .args(&missing))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci() -> Result<(), String> {
    install_judges()?;
    install_py_judges()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    fixtures::run(&repo_root(), true)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The bootable base the boot tests need (root only: mmdebstrap).
    let mut test = cargo();
    test.args(["test", "--workspace"]).env("CI", "true");
    if is_root() {
        let base = boot_base::run(&repo_root())?;
        test.env("INGOT_BOOT_BASE", base);
    } else {
        eprintln!("xtask: not root, so no boot base: the boot tests will fail under CI=true");
    }
    run(&mut test)?;
    Ok(())
}
