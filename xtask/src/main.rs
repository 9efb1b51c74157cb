//! Project chores: `cargo xtask ci` (everything CI checks), `cargo xtask
//! tidy` (what ARCHITECTURE.md promises, checked on the source: see
//! `tidy/mod.rs`), `cargo xtask fixtures [--check]` (regenerate the
//! committed fixtures), `cargo xtask boot-base` (build the bootable Debian
//! test base, cached), `cargo xtask bench [--quick] [--only abcd]` (ingot
//! against rpmbuild, the mkfs pipeline and dnf, written to docs/benchmarks.md).
//!
//! `ci` installs the external judges the tests need when they are missing
//! and it runs as root (Debian's apt-get), then runs rustfmt, `tidy`, the
//! fixtures check, clippy and every test of the workspace (xtask's own
//! included) with `CI=true`, under which a check that cannot run (a judge
//! missing, `../shared/fixtures` absent, not root, a loop mount refused, ...)
//! fails instead of skipping. `CI` counts as set when it is exactly `true`
//! or `1` (src/testutil/rule.rs holds the rule). `ci --allow-skips` runs the
//! tests without `CI`, so such checks skip, and prints at the end how many
//! were skipped and which: each skip appends a line to the file
//! `INGOT_SKIP_LOG` names (`target/skipped-checks.txt`).
//!
//! `cargo xtask fuzz [--minutes N] [--jobs J] [--fresh] [TARGET...]` runs
//! the fuzz targets of `fuzz/` under AFL++ (see `fuzz.rs`), N minutes each
//! (default 1), and reports executions, crashes and hangs.
//!
//! `cargo xtask corpus` gathers the real-RPM corpus (`tests/real-rpms/`)
//! into `target/real-rpms/`; `ci` does it before the tests and passes the
//! folder as `INGOT_REAL_RPMS`.

mod bench;
mod bench_repo;
mod boot_base;
mod corpus;
mod fixtures;
mod fuzz;
mod rusage;
mod tidy;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// (program the tests run, Debian package that provides it)
const JUDGES: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("rpmlint", "rpmlint"),
    ("rpm2cpio", "rpm2cpio"),
    ("cpio", "cpio"),
    ("xz", "xz-utils"),
    ("bzip2", "bzip2"),
    ("gpg", "gnupg"),
    ("gcc", "gcc"),
    ("systemd-sysusers", "systemd"),
    ("setcap", "libcap2-bin"),
    ("fuse2fs", "fuse2fs"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("mkfs.ext4", "e2fsprogs"),
    ("mkfs.xfs", "xfsprogs"),
    ("xfs_repair", "xfsprogs"),
    ("xfs_db", "xfsprogs"),
    ("sgdisk", "gdisk"),
    ("sfdisk", "fdisk"),
    ("fsck.vfat", "dosfstools"),
    ("mkfs.vfat", "dosfstools"),
    ("mdir", "mtools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("python3", "python3"),
    ("qemu-img", "qemu-utils"),
    ("mmdebstrap", "mmdebstrap"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("dnf", "dnf"),
    ("createrepo_c", "createrepo-c"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(args.get(1).is_some_and(|a| a == "--allow-skips")),
        Some("fixtures") => {
            fixtures::run(&repo_root(), args.get(1).is_some_and(|a| a == "--check"))
        }
        Some("tidy") => tidy::run(&repo_root()),
        Some("boot-base") => boot_base::run(&repo_root()).map(|_| ()),
        Some("corpus") => corpus::run(&repo_root()).map(|_| ()),
        Some("fuzz") => fuzz::run(&repo_root(), &args[1..]),
        Some(bench::LAUNCH) => {
            // A failed command: the reason on stdout, for `bench::measure`.
            if let Err(e) = bench::launch(&args[1..]) {
                println!("{e}");
                return ExitCode::FAILURE;
            }
            Ok(())
        }
        Some("bench") => {
            let quick = args.iter().any(|a| a == "--quick");
            let only = args
                .iter()
                .position(|a| a == "--only")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str);
            let against = args
                .iter()
                .position(|a| a == "--against")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str);
            bench::run(&repo_root(), quick, only, against)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask ci [--allow-skips] | tidy | fixtures [--check] | boot-base | corpus | fuzz [--minutes N] [--jobs J] [--fresh] [TARGET...] | bench [--quick] [--only abcd] [--against REV]"
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

/// The file the tests append a line to for each check they skip.
fn skip_log() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("skipped-checks.txt")
}

/// How many checks were skipped, and which, from the skip log's text
/// (`<test>\t<what> (<why>)` a line). Under `CI=true` there can be none:
/// the rule fails a check that cannot run instead.
fn skip_report(log_text: &str) -> String {
    let lines: Vec<&str> = log_text.lines().collect();
    let tests: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l.split('\t').next()).collect();
    let mut report = format!(
        "xtask: {} checks skipped, in {} tests\n",
        lines.len(),
        tests.len()
    );
    for line in lines {
        report.push_str(&format!("  SKIPPED {}\n", line.replacen('\t', ": ", 1)));
    }
    report
}

fn ci(allow_skips: bool) -> Result<(), String> {
    install_judges()?;
    install_py_judges()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    eprintln!("xtask: running tidy");
    tidy::run(&repo_root())?;
    fixtures::run(&repo_root(), true)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let log = skip_log();
    if let Err(e) = std::fs::remove_file(&log)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(format!("cannot remove {}: {e}", log.display()));
    }
    let mut test = cargo();
    test.args(["test", "--workspace"])
        .env("INGOT_SKIP_LOG", &log);
    // The real-RPM corpus the install comparisons use.
    match corpus::run(&repo_root()) {
        Ok(dir) => {
            test.env("INGOT_REAL_RPMS", dir);
        }
        Err(e) if allow_skips => eprintln!("xtask: no real-RPM corpus: {e}"),
        Err(e) => return Err(e),
    }
    if allow_skips {
        test.env_remove("CI");
    } else {
        test.env("CI", "true");
    }
    // The bootable base the boot tests need (root only: mmdebstrap).
    if is_root() {
        let base = boot_base::run(&repo_root())?;
        test.env("INGOT_BOOT_BASE", base);
    } else if !allow_skips {
        eprintln!("xtask: not root, so no boot base: the boot tests will fail under CI=true");
    }
    let result = run(&mut test);
    eprint!(
        "{}",
        skip_report(&std::fs::read_to_string(&log).unwrap_or_default())
    );
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_skip_report_counts_checks_and_tests() {
        let log = "a::one\tjudge `rpm` (not installed)\n\
                   a::one\tshared fixture `x` (not present)\n\
                   b::two\ta kernel loop mount (needs root)\n";
        assert_eq!(
            super::skip_report(log),
            "xtask: 3 checks skipped, in 2 tests\n\
             \x20 SKIPPED a::one: judge `rpm` (not installed)\n\
             \x20 SKIPPED a::one: shared fixture `x` (not present)\n\
             \x20 SKIPPED b::two: a kernel loop mount (needs root)\n"
        );
        assert_eq!(
            super::skip_report(""),
            "xtask: 0 checks skipped, in 0 tests\n"
        );
    }
}
