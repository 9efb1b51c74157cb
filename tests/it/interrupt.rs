//! Interrupted runs leave nothing behind. `ingot bake` (a disk bake to raw,
//! VMDK and VHD that takes seconds) and `ingot build` get SIGINT, SIGTERM
//! or SIGHUP at several moments, each found by a condition (a step line
//! under `-v` and a temporary name in `--out`, or CPU time spent), never by
//! a fixed sleep. Afterwards `--out` holds only what was there before (or
//! is gone when ingot made it), the temporary folder (a private `TMPDIR`)
//! is empty, the exit code is 128 plus the signal's number, as README.md
//! documents, and the message says nothing was written.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::ingot;
use crate::outputs::{letters_file, listing, package_spec};

/// A running ingot whose stderr is collected line by line.
struct Run {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Run {
    fn spawn(mut cmd: Command) -> Run {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                sink.lock().unwrap().push(l);
            }
        });
        Run {
            child,
            lines,
            reader,
        }
    }

    fn saw(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Wait until `cond` holds (checked every 10 ms, for up to 5 minutes);
    /// panics if ingot ends first.
    fn wait_for(&mut self, what: &str, mut cond: impl FnMut(&Run) -> bool) {
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            if cond(self) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "ingot ended ({status}) before {what}:\n{}",
                    self.lines.lock().unwrap().join("\n")
                );
            }
            assert!(Instant::now() < until, "{what} never happened");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child, which has not been reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Wait for the end; the exit code (None when killed) and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let text = self.lines.lock().unwrap().join("\n");
        (status.code(), text)
    }

    /// CPU time the process has used, from /proc.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|w| w.parse().unwrap_or(0))
            .collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }
}

const SIGNALS: [(i32, &str); 3] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
];

/// A name in `dir` that starts with `prefix` and contains `part`, with its
/// allocated size.
fn temp_in(dir: &Path, prefix: &str, part: &str) -> Option<(PathBuf, u64)> {
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let e = e.ok()?;
        let name = e.file_name().to_string_lossy().into_owned();
        (name.starts_with(prefix) && name.contains(part)).then(|| {
            let blocks = e.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
            (e.path(), blocks)
        })
    })
}

/// `--out` for run `n`: every other run one that exists and holds a file
/// of the user's, else one ingot creates (with its parent).
fn out_for(dir: &Path, n: usize) -> (PathBuf, Vec<&'static str>) {
    if n.is_multiple_of(2) {
        let out = dir.join(format!("existing-{n}"));
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("keep.txt"), "mine").unwrap();
        (out, vec!["keep.txt"])
    } else {
        (dir.join(format!("new-{n}/out")), vec![])
    }
}

fn assert_left_nothing(
    what: &str,
    (code, err): (Option<i32>, String),
    (signal, name): (i32, &str),
    out: &Path,
    kept: &[&str],
    tmp: &Path,
) {
    assert_eq!(
        code,
        Some(128 + signal),
        "{what}: {name} gave the wrong exit:\n{err}"
    );
    assert!(
        err.contains(&format!("interrupted by {name}; nothing was written")),
        "{what}: {name}:\n{err}"
    );
    if kept.is_empty() {
        assert!(
            !out.parent().unwrap().exists(),
            "{what}: {name} left {:?} in the --out ingot created",
            listing(out)
        );
    } else {
        assert_eq!(listing(out), kept, "{what}: {name} left files in --out");
    }
    assert_eq!(
        listing(tmp),
        Vec::<String>::new(),
        "{what}: {name} left files in TMPDIR"
    );
}

#[test]
fn a_signal_at_any_step_of_a_disk_bake_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // 192 MiB of data that deflates a little: the root filesystem, the
    // VMDK beside it and then the VHD take seconds.
    crate::outputs::data_tar(&dir.join("base.tar"), 12, 16);
    std::fs::create_dir(dir.join("pkg")).unwrap();
    letters_file(&dir.join("pkg/payload.bin"), 1, 8 << 20);
    std::fs::write(
        dir.join("pkg/p.toml"),
        package_spec(
            "p",
            "[[files]]\nsrc = \"payload.bin\"\ndest = \"/usr/share/p/payload.bin\"\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("image.toml"),
        "[image]\nname = \"big\"\nbase = \"base.tar\"\npackages = [\"pkg/p.toml\"]\n\
         formats = [\"raw\", \"vmdk\", \"vhd\"]\n",
    )
    .unwrap();
    type Moment = (&'static str, fn(&Run, &Path) -> bool);
    let moments: [Moment; 4] = [
        ("the package is being built", |r, out| {
            r.saw("building") && temp_in(out, ".ingot-work-", "").is_some()
        }),
        ("the packages are being installed", |r, _| {
            r.saw("installing packages")
        }),
        ("the raw image and the VMDK are being written", |r, out| {
            r.saw("writing the root filesystem")
                && temp_in(out, ".big.raw.", ".tmp").is_some_and(|(_, n)| n >= 16 << 20)
        }),
        ("the VHD is being written", |r, out| {
            r.saw("writing the root filesystem and the vmdk, vhd")
                && temp_in(out, ".big.vhd.", ".tmp").is_some_and(|(_, n)| n >= 16 << 20)
        }),
    ];
    let mut n = 0;
    for (what, moment) in moments {
        for sig in SIGNALS {
            let (out, kept) = out_for(dir, n);
            n += 1;
            let mut cmd = ingot();
            cmd.args(["-v", "bake"])
                .arg(dir.join("image.toml"))
                .arg("--out")
                .arg(&out)
                .env("TMPDIR", &tmp);
            let mut run = Run::spawn(cmd);
            run.wait_for(what, |r| moment(r, &out));
            run.signal(sig.0);
            assert_left_nothing(what, run.finish(), sig, &out, &kept, &tmp);
        }
    }
}

#[test]
fn a_signal_at_any_moment_of_a_build_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // xz over 48 MiB of letters: many seconds of CPU.
    letters_file(&dir.join("payload.bin"), 2, 48 << 20);
    std::fs::write(
        dir.join("p.toml"),
        package_spec(
            "slow",
            "[[files]]\nsrc = \"payload.bin\"\ndest = \"/usr/share/slow/payload.bin\"\n",
        ),
    )
    .unwrap();
    let moments: [(&str, Duration); 3] = [
        ("the staged RPM appeared", Duration::ZERO),
        ("ingot used 1 s of CPU", Duration::from_secs(1)),
        ("ingot used 3 s of CPU", Duration::from_secs(3)),
    ];
    let mut n = 0;
    for (what, cpu) in moments {
        for sig in SIGNALS {
            let (out, kept) = out_for(dir, n);
            n += 1;
            let mut cmd = ingot();
            cmd.arg("build")
                .arg(dir.join("p.toml"))
                .args(["--compression", "xz", "--out"])
                .arg(&out)
                .env("TMPDIR", &tmp);
            let mut run = Run::spawn(cmd);
            run.wait_for(what, |r| {
                temp_in(&out, ".slow-", ".tmp").is_some() && r.cpu() >= cpu
            });
            run.signal(sig.0);
            assert_left_nothing(what, run.finish(), sig, &out, &kept, &tmp);
        }
    }
}
