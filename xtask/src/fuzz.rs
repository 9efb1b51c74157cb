//! `cargo xtask fuzz [--minutes N] [--jobs J] [--fresh] [TARGET...]`: run
//! the fuzz targets of the `fuzz/` crate (`ingot-fuzz`) under AFL++, each
//! for N minutes (default 1), J at a time (default 1), and report what
//! ran and what it found.
//!
//! Everything it needs it makes under `target/fuzz/`:
//! - `tools/`: cargo-afl ([`CARGO_AFL_VERSION`], the version of the `afl`
//!   crate `fuzz/Cargo.toml` pins), installed with `cargo install --root`,
//!   and the AFL++ it builds from the sources it ships (`tools/share/`,
//!   through `XDG_DATA_HOME`). That build needs `make` and a C compiler;
//!   when they are missing and we are root, Debian's `build-essential` is
//!   installed. No nightly toolchain: cargo-afl instruments with stable
//!   flags (see `fuzz/src/lib.rs` for why AFL++ and not libFuzzer).
//! - `build/`: the instrumented `ingot-fuzz` (`cargo afl build --release
//!   --features afl`), apart from the normal build so neither rebuilds the
//!   other.
//! - `seeds/TARGET/`, `dict/TARGET.dict`: the seeds (`ingot_fuzz::seeds`,
//!   the local ones included, and `fuzz/regressions/TARGET/`), written
//!   anew on each run.
//! - `out/TARGET/`: AFL++'s output (queue, crashes, hangs, stats), kept
//!   between runs: a later run resumes from the queue (`--fresh` starts
//!   over). `out/TARGET.log` is afl-fuzz's own log.
//! - `tmp/TARGET/`: the target's scratch files (`TMPDIR`), removed after.
//!
//! Each afl-fuzz stops itself after N minutes (`-V`); if one is still
//! running a few minutes later it is killed, and every afl-fuzz dies with
//! this process (`PR_SET_PDEATHSIG`), so nothing is left running. Limits
//! per input: [`TIMEOUT_MS`] of time (a slower input is a hang), and
//! [`MEMORY_MB`] of address space (a larger allocation aborts: a crash).
//!
//! The report (stdout, and `target/fuzz/report.md`) gives per target the
//! time run, executions, corpus size, and the crashes and hangs this run
//! found (earlier runs' stay in `out/TARGET/default/`; the fixed ones are
//! in `fuzz/regressions/`); crashes and hangs make the command fail, naming the files and how to replay one
//! (`cargo run -p ingot-fuzz -- TARGET FILE`). Each becomes a fix and a
//! regression test (docs/fuzzing.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cargo-afl to install: the `afl` crate's version in fuzz/Cargo.toml.
pub const CARGO_AFL_VERSION: &str = "0.18.2";
/// An input that takes longer than this is a hang.
pub const TIMEOUT_MS: u32 = 2000;
/// The address space a target may use.
pub const MEMORY_MB: u32 = 2048;

struct Options {
    minutes: f64,
    jobs: usize,
    fresh: bool,
    targets: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        minutes: 1.0,
        jobs: 1,
        fresh: false,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                o.minutes = it
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|m| *m > 0.0)
                    .ok_or("--minutes needs a positive number")?;
            }
            "--jobs" => {
                o.jobs = it
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|j| *j > 0)
                    .ok_or("--jobs needs a positive whole number")?;
            }
            "--fresh" => o.fresh = true,
            t if ingot_fuzz::target(t).is_some() => o.targets.push(t.to_string()),
            other => {
                let names: Vec<&str> = ingot_fuzz::TARGETS.iter().map(|t| t.name).collect();
                return Err(format!(
                    "unknown fuzz option or target `{other}`; targets: {}",
                    names.join(", ")
                ));
            }
        }
    }
    if o.targets.is_empty() {
        o.targets = ingot_fuzz::TARGETS
            .iter()
            .map(|t| t.name.to_string())
            .collect();
    }
    Ok(o)
}

struct Dirs {
    base: PathBuf,
    tools: PathBuf,
    share: PathBuf,
    build: PathBuf,
}

impl Dirs {
    fn new(root: &Path) -> Dirs {
        let base = root.join("target/fuzz");
        Dirs {
            tools: base.join("tools"),
            share: base.join("tools/share"),
            build: base.join("build"),
            base,
        }
    }

    /// `cargo`, with cargo-afl on the path and its AFL++ under `share`.
    fn cargo(&self) -> Command {
        let mut c = super::cargo();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.tools.join("bin")];
        paths.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(paths).unwrap_or(path))
            .env("XDG_DATA_HOME", &self.share);
        c
    }

    /// Where cargo-afl keeps what it built for the current rustc.
    fn afl_data(&self) -> Result<PathBuf, String> {
        let out = Command::new("rustc")
            .arg("-vV")
            .output()
            .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let (release, hash) = (field("release:"), field("commit-hash:"));
        let mut dir = format!("rustc-{release}");
        if hash.len() >= 7 {
            dir.push('-');
            dir.push_str(&hash[..7]);
        }
        Ok(self
            .share
            .join("afl.rs")
            .join(dir)
            .join(format!("afl.rs-{CARGO_AFL_VERSION}")))
    }
}

/// cargo-afl and its AFL++, built for this rustc; returns afl-fuzz.
fn install_afl(d: &Dirs) -> Result<PathBuf, String> {
    if !super::have("make") || !super::have("cc") {
        if !super::is_root() {
            return Err(
                "building AFL++ needs make and a C compiler: install build-essential".into(),
            );
        }
        super::run(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "build-essential",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    let marker = std::fs::read_to_string(d.tools.join(".crates.toml")).unwrap_or_default();
    let installed = d.tools.join("bin/cargo-afl").is_file()
        && marker.contains(&format!("cargo-afl {CARGO_AFL_VERSION} "));
    if !installed {
        super::run(
            d.cargo()
                .args([
                    "install",
                    "cargo-afl",
                    "--locked",
                    "--version",
                    &format!("={CARGO_AFL_VERSION}"),
                    "--root",
                ])
                .arg(&d.tools),
        )?;
    }
    let data = d.afl_data()?;
    let runtime = data.join("afl-llvm/afl-compiler-rt.o");
    let afl_fuzz = data.join("afl/bin/afl-fuzz");
    if !runtime.is_file() || !afl_fuzz.is_file() {
        super::run(d.cargo().args(["afl", "config", "--build", "--force"]))?;
    }
    if !afl_fuzz.is_file() {
        return Err(format!("cargo-afl built no {}", afl_fuzz.display()));
    }
    Ok(afl_fuzz)
}

/// Write the seeds and the dictionary of `target`; returns the dictionary
/// (None when the target has none).
fn write_seeds(d: &Dirs, target: &str) -> Result<Option<PathBuf>, String> {
    let dir = d.base.join("seeds").join(target);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let all = ingot_fuzz::seeds::seeds(target)
        .into_iter()
        .chain(ingot_fuzz::seeds::local_seeds(target))
        .chain(ingot_fuzz::regressions(target));
    for (name, data) in all {
        let p = dir.join(name.replace('/', "_"));
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let tokens = ingot_fuzz::seeds::dictionary(target);
    if tokens.is_empty() {
        return Ok(None);
    }
    let dict = d.base.join("dict").join(format!("{target}.dict"));
    std::fs::create_dir_all(d.base.join("dict")).map_err(|e| e.to_string())?;
    std::fs::write(&dict, ingot_fuzz::seeds::dictionary_text(&tokens))
        .map_err(|e| format!("{}: {e}", dict.display()))?;
    Ok(Some(dict))
}

/// afl-fuzz's `fuzzer_stats`, as key to value.
fn stats(d: &Dirs, target: &str) -> BTreeMap<String, String> {
    let p = d.base.join("out").join(target).join("default/fuzzer_stats");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn stat_u64(s: &BTreeMap<String, String>, keys: &[&str]) -> u64 {
    keys.iter()
        .find_map(|k| s.get(*k).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The files in `out/TARGET/default/{crashes,hangs}`.
fn findings(d: &Dirs, target: &str, kind: &str) -> Vec<PathBuf> {
    let dir = d.base.join("out").join(target).join("default").join(kind);
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("id:"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

struct Running {
    target: String,
    child: Child,
    started: Instant,
    before: BTreeMap<String, String>,
    /// Crashes and hangs already in the output folder (from earlier runs).
    earlier: Vec<PathBuf>,
}

fn start(d: &Dirs, afl_fuzz: &Path, target: &str, o: &Options) -> Result<Running, String> {
    let dict = write_seeds(d, target)?;
    let out = d.base.join("out").join(target);
    if o.fresh && out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let tmp = d.base.join("tmp").join(target);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let log_path = d.base.join("out").join(format!("{target}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let seconds = (o.minutes * 60.0).ceil() as u64;
    let mut cmd = Command::new(afl_fuzz);
    cmd.arg("-i")
        .arg(d.base.join("seeds").join(target))
        .arg("-o")
        .arg(&out)
        .args(["-V", &seconds.to_string()])
        .args(["-t", &TIMEOUT_MS.to_string()])
        .args(["-m", &MEMORY_MB.to_string()]);
    if let Some(dict) = dict {
        cmd.arg("-x").arg(dict);
    }
    cmd.arg("--")
        .arg(d.build.join("release/ingot-fuzz"))
        .arg(target)
        .env("AFL_NO_UI", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_AUTORESUME", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            // Die with xtask: no afl-fuzz outlives the command.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    eprintln!(
        "xtask: fuzzing `{target}` for {} min (log: {})",
        o.minutes,
        log_path.display()
    );
    let before = stats(d, target);
    let mut earlier = findings(d, target, "crashes");
    earlier.extend(findings(d, target, "hangs"));
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", afl_fuzz.display()))?;
    Ok(Running {
        target: target.to_string(),
        child,
        started: Instant::now(),
        before,
        earlier,
    })
}

/// One target's result.
struct Outcome {
    target: String,
    seconds: u64,
    execs: u64,
    corpus: u64,
    edges: String,
    crashes: Vec<PathBuf>,
    hangs: Vec<PathBuf>,
    status: String,
}

fn finish(d: &Dirs, mut r: Running) -> Outcome {
    let status = match r.child.wait() {
        Ok(s) if s.success() => "ok".to_string(),
        Ok(s) => format!("afl-fuzz exited with {s}"),
        Err(e) => format!("afl-fuzz: {e}"),
    };
    let _ = std::fs::remove_dir_all(d.base.join("tmp").join(&r.target));
    let after = stats(d, &r.target);
    let execs =
        stat_u64(&after, &["execs_done"]).saturating_sub(stat_u64(&r.before, &["execs_done"]));
    let new = |kind| {
        let mut v = findings(d, &r.target, kind);
        v.retain(|p| !r.earlier.contains(p));
        v
    };
    Outcome {
        seconds: r.started.elapsed().as_secs(),
        execs,
        corpus: stat_u64(&after, &["corpus_count", "paths_total"]),
        edges: after.get("bitmap_cvg").cloned().unwrap_or_default(),
        crashes: new("crashes"),
        hangs: new("hangs"),
        status,
        target: r.target,
    }
}

/// Stop `r` when it runs well past its time: SIGTERM, then SIGKILL.
fn enforce_deadline(r: &mut Running, limit: Duration) {
    if r.started.elapsed() < limit {
        return;
    }
    let pid = r.child.id() as libc::pid_t;
    eprintln!("xtask: `{}` ran past its time; stopping it", r.target);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..100 {
        if matches!(r.child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = r.child.kill();
}

fn report(outcomes: &[Outcome], minutes: f64) -> String {
    let mut s = String::from(
        "| target | minutes asked | seconds run | executions | corpus | edges | crashes | hangs | afl-fuzz |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for o in outcomes {
        s.push_str(&format!(
            "| {} | {minutes} | {} | {} | {} | {} | {} | {} | {} |\n",
            o.target,
            o.seconds,
            o.execs,
            o.corpus,
            o.edges,
            o.crashes.len(),
            o.hangs.len(),
            o.status
        ));
    }
    s
}

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let o = parse_args(args)?;
    let d = Dirs::new(root);
    let afl_fuzz = install_afl(&d)?;
    super::run(
        d.cargo()
            .args([
                "afl",
                "build",
                "--release",
                "-p",
                "ingot-fuzz",
                "--features",
                "afl",
            ])
            .arg("--target-dir")
            .arg(&d.build),
    )?;
    // Each afl-fuzz stops itself; past this, it is stopped.
    let limit = Duration::from_secs_f64(o.minutes * 60.0) + Duration::from_secs(300);
    let mut todo: Vec<String> = o.targets.iter().rev().cloned().collect();
    let mut running: Vec<Running> = Vec::new();
    let mut outcomes = Vec::new();
    while !todo.is_empty() || !running.is_empty() {
        while running.len() < o.jobs
            && let Some(t) = todo.pop()
        {
            running.push(start(&d, &afl_fuzz, &t, &o)?);
        }
        std::thread::sleep(Duration::from_millis(500));
        let mut i = 0;
        while i < running.len() {
            enforce_deadline(&mut running[i], limit);
            if matches!(running[i].child.try_wait(), Ok(Some(_))) {
                outcomes.push(finish(&d, running.remove(i)));
            } else {
                i += 1;
            }
        }
    }
    outcomes.sort_by_key(|o| {
        ingot_fuzz::TARGETS
            .iter()
            .position(|t| t.name == o.target)
            .unwrap_or(usize::MAX)
    });
    let table = report(&outcomes, o.minutes);
    print!("{table}");
    let _ = std::fs::write(d.base.join("report.md"), &table);
    let mut bad = Vec::new();
    for o in &outcomes {
        for f in o.crashes.iter().chain(&o.hangs) {
            bad.push(format!(
                "  cargo run -p ingot-fuzz -- {} {}",
                o.target,
                f.display()
            ));
        }
        if o.status != "ok" {
            bad.push(format!(
                "  {}: {} (see target/fuzz/out/{}.log)",
                o.target, o.status, o.target
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzzing found problems; replay each with:\n{}",
            bad.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cargo_afl_matches_the_afl_crate_the_fuzz_crate_pins() {
        let manifest = std::fs::read_to_string(super::super::repo_root().join("fuzz/Cargo.toml"))
            .expect("fuzz/Cargo.toml");
        let pin = format!("afl = {{ version = \"={}\"", super::CARGO_AFL_VERSION);
        assert!(
            manifest.contains(&pin),
            "fuzz/Cargo.toml does not pin `{pin}`"
        );
    }

    #[test]
    fn options_parse_and_unknown_ones_are_refused() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = super::parse_args(&a(&["--minutes", "2.5", "--jobs", "2", "dep", "tar"])).unwrap();
        assert_eq!((o.minutes, o.jobs, o.fresh), (2.5, 2, false));
        assert_eq!(o.targets, ["dep", "tar"]);
        let all = super::parse_args(&[]).unwrap();
        assert_eq!(all.targets.len(), ingot_fuzz::TARGETS.len());
        assert!(super::parse_args(&a(&["--minutes", "0"])).is_err());
        assert!(super::parse_args(&a(&["nope"])).is_err());
    }
}
