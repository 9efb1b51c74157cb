//! `ingot boot-test`: boot the very image that ships and check it works.
//!
//! In: an image file (raw, stream-optimized VMDK, fixed VHD or qcow2, told apart
//! by their magic) and expectations: an HTTP GET on a guest port answers
//! 2xx ([`Expectation::Http`]), or the serial console shows a pattern
//! ([`Expectation::Console`]). Out: a [`BootReport`] (which expectation
//! held when, the accelerator, the console's last lines) when all of them
//! held, else [`BootError::Failed`] carrying the same report.
//!
//! How: `qemu-system-x86_64` with OVMF (UEFI), the disk as NVMe, q35,
//! user-mode networking with each guest port forwarded to a free port on
//! 127.0.0.1, the serial console read as it comes ([`console`]), HTTP
//! polled from the host ([`http`]). KVM only when a probe proves it runs
//! the firmware ([`qemu::probe_kvm`]), software emulation (TCG) otherwise.
//!
//! Never: modifies the image or the firmware files (every drive has
//! `snapshot=on`: QEMU writes to a throwaway overlay it deletes itself),
//! leaves a QEMU behind (the [`qemu::Qemu`] guard kills its process group
//! and reaps it on every path, at the timeout, as soon as everything held,
//! and with the calling thread on Ctrl-C), prints (progress goes to the
//! caller's [`Reporter`]: step lines, and each phase, KVM probe,
//! firmware, kernel, userspace, as a task noting the console's last
//! line), or runs anything but QEMU. This is a test
//! harness, not part of the build path: nothing here reaches an artifact.

pub mod console;
pub mod http;
pub mod qemu;

use std::fmt::Write as _;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

pub use console::Console;
pub use http::{ProbeResult, http_probe};
pub use qemu::{Accel, ImageFormat, Judges, detect_format, find_judges};

use qemu::{Event, Machine, Qemu};

use crate::progress::{Reporter, Task, Unit};

/// Lines of console kept in a report.
pub const TAIL_LINES: usize = 40;
/// How long the KVM probe may take before KVM counts as not working.
const KVM_PROBE_LIMIT: Duration = Duration::from_secs(15);
/// Time between two HTTP probes of one expectation.
const HTTP_POLL: Duration = Duration::from_millis(500);
/// Time limit of one HTTP probe.
const HTTP_PROBE_LIMIT: Duration = Duration::from_secs(5);

/// One thing that must hold for the boot test to pass.
#[derive(Debug, Clone)]
pub enum Expectation {
    /// `GET path` on the guest's `port` answers 2xx.
    Http { port: u16, path: String },
    /// The serial console shows this pattern (matched on the console as
    /// text: terminal control sequences removed, one line or several).
    Console {
        pattern: String,
        regex: regex::bytes::Regex,
    },
}

impl Expectation {
    /// `PORT/PATH` (or `PORT` for `/`), e.g. `8080/health`.
    pub fn http(spec: &str) -> Result<Self, String> {
        let (port, path) = match spec.find('/') {
            Some(i) => (&spec[..i], &spec[i..]),
            None => (spec, "/"),
        };
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
            format!(
                "`{spec}`: expected PORT/PATH with a port from 1 to 65535, such as `8080/health`"
            )
        })?;
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!(
                "`{spec}`: the path cannot contain spaces or control characters (percent-encode them)"
            ));
        }
        Ok(Expectation::Http {
            port,
            path: path.to_string(),
        })
    }

    /// A regular expression (the `regex` crate's syntax).
    pub fn console(pattern: &str) -> Result<Self, String> {
        let regex = regex::bytes::Regex::new(pattern)
            .map_err(|e| format!("`{pattern}` is not a valid regular expression: {e}"))?;
        Ok(Expectation::Console {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// `http` or `console`.
    pub fn kind(&self) -> &'static str {
        match self {
            Expectation::Http { .. } => "http",
            Expectation::Console { .. } => "console",
        }
    }

    /// `PORT/PATH` or the pattern, as the user wrote it.
    pub fn target(&self) -> String {
        match self {
            Expectation::Http { port, path } => format!("{port}{path}"),
            Expectation::Console { pattern, .. } => pattern.clone(),
        }
    }
}

/// Which accelerator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// KVM when the probe proves it works, else TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// What to boot, how, and what must hold.
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub image: PathBuf,
    pub expectations: Vec<Expectation>,
    /// For the boot itself (the KVM probe has its own limit of 15 s).
    pub timeout: Duration,
    pub memory_mib: u32,
    pub cpus: u32,
    pub accel: AccelChoice,
    /// Write the whole console here, as text, while it comes.
    pub serial_log: Option<PathBuf>,
    /// QEMU; else `INGOT_QEMU`, else `qemu-system-x86_64` on `PATH`.
    pub qemu: Option<PathBuf>,
    /// OVMF code; else `INGOT_OVMF_CODE`, else Debian's `OVMF_CODE_4M.fd`.
    pub ovmf_code: Option<PathBuf>,
    /// OVMF variable store template; else `INGOT_OVMF_VARS`, else Debian's
    /// `OVMF_VARS_4M.fd`.
    pub ovmf_vars: Option<PathBuf>,
    /// QEMU's `-name` (visible in `ps`); default `ingot-boottest-PID-N`.
    pub name: Option<String>,
}

impl BootOptions {
    /// Defaults: 300 s, 1024 MiB, 2 CPUs, KVM if it works.
    pub fn new(image: impl Into<PathBuf>) -> Self {
        BootOptions {
            image: image.into(),
            expectations: Vec::new(),
            timeout: Duration::from_secs(300),
            memory_mib: 1024,
            cpus: 2,
            accel: AccelChoice::Auto,
            serial_log: None,
            qemu: None,
            ovmf_code: None,
            ovmf_vars: None,
            name: None,
        }
    }
}

/// One expectation's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpectationReport {
    pub kind: &'static str,
    pub target: String,
    pub met: bool,
    /// Seconds from QEMU's start to the moment it held.
    pub at_seconds: Option<f64>,
    /// For HTTP: what the last probe found (`HTTP 500`, `no answer (...)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<String>,
}

impl ExpectationReport {
    /// `http 80/health` or `console /pattern/`.
    pub fn label(&self) -> String {
        match self.kind {
            "console" => format!("console /{}/", self.target),
            kind => format!("{kind} {}", self.target),
        }
    }
}

/// What a boot test found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BootReport {
    pub ok: bool,
    pub image: PathBuf,
    pub format: ImageFormat,
    pub accel: Accel,
    /// Why KVM was or was not used.
    pub accel_reason: String,
    /// Seconds from QEMU's start to the end of the test.
    pub elapsed_seconds: f64,
    pub expectations: Vec<ExpectationReport>,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
    /// The console's last lines, as text.
    pub console_tail: String,
}

impl BootReport {
    /// The expectations that did not hold.
    pub fn missing(&self) -> Vec<String> {
        self.expectations
            .iter()
            .filter(|e| !e.met)
            .map(|e| match &e.last_probe {
                Some(p) => format!("{} (last probe: {p})", e.label()),
                None => e.label(),
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The test could not be run: bad options, no QEMU or OVMF, an
    /// unreadable image, QEMU refusing to start (exit 2).
    #[error("{message}")]
    Setup {
        message: String,
        hint: Option<String>,
        #[source]
        source: Option<std::io::Error>,
    },
    /// The image booted (or tried to) and an expectation did not hold
    /// (exit 1). The message carries what was missing and the console tail.
    #[error("{}", failure_message(.0))]
    Failed(Box<BootReport>),
}

impl BootError {
    pub fn exit_code(&self) -> u8 {
        match self {
            BootError::Setup { .. } => 2,
            BootError::Failed(_) => 1,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            BootError::Setup { hint, .. } => hint.as_deref(),
            BootError::Failed(_) => None,
        }
    }

    /// The report of a failed test.
    pub fn report(&self) -> Option<&BootReport> {
        match self {
            BootError::Failed(r) => Some(r),
            BootError::Setup { .. } => None,
        }
    }

    fn setup(message: impl Into<String>) -> Self {
        BootError::Setup {
            message: message.into(),
            hint: None,
            source: None,
        }
    }
}

fn failure_message(r: &BootReport) -> String {
    let mut m = format!(
        "boot test of `{}` failed after {:.1} s: {}",
        r.image.display(),
        r.elapsed_seconds,
        r.failure.as_deref().unwrap_or("unknown reason")
    );
    let missing = r.missing();
    if !missing.is_empty() {
        let _ = write!(m, "\nstill missing: {}", missing.join(", "));
    }
    if r.console_tail.is_empty() {
        m.push_str("\nthe serial console stayed empty");
    } else {
        let _ = write!(
            m,
            "\n--- serial console, last {TAIL_LINES} lines ---\n{}\n--- end of console ---",
            r.console_tail
        );
    }
    m
}

/// Refuse, before QEMU is looked for, an image that is not a regular file
/// or carries none of the magics of a disk image (a raw disk's GPT or MBR,
/// a VMDK's or qcow2's header, a VHD's footer), or is a Compute Engine
/// tarball: QEMU would boot it as a blank disk and the test would fail for
/// the wrong reason.
fn check_image(image: &Path) -> Result<(), BootError> {
    let f = crate::input::open_regular(image).map_err(|e| BootError::Setup {
        message: e.to_string(),
        hint: None,
        source: match e {
            crate::input::InputError::Open { source, .. } => Some(source),
            _ => None,
        },
    })?;
    match crate::disk::view::detect(&f) {
        Ok(Some(crate::disk::view::DiskFormat::Gce)) => Err(BootError::Setup {
            message: format!(
                "`{}` is a Compute Engine tarball, not a disk QEMU can boot",
                image.display()
            ),
            hint: Some("extract its disk.raw (tar -xSzf) and boot that".into()),
            source: None,
        }),
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(BootError::Setup {
            message: format!(
                "`{}` is not a disk image: it has no GPT or MBR signature (raw), no VMDK \
                 header and no VHD footer",
                image.display()
            ),
            hint: Some(
                "boot-test boots the raw, VMDK, VHD or qcow2 image `ingot bake` wrote".into(),
            ),
            source: None,
        }),
        Err(e) => Err(BootError::Setup {
            message: format!("cannot read the image `{}`", image.display()),
            hint: None,
            source: Some(e),
        }),
    }
}

/// Boot `opts.image` and wait until every expectation holds, the guest
/// stops, or the timeout. `progress` hears the phases (firmware, kernel,
/// userspace, waiting) as steps and as tasks that note the console's last
/// line, and what was decided; it is called on this thread.
/// QEMU is tied to this thread: should it end (or the process exit, as on
/// Ctrl-C), QEMU is killed with it.
pub fn boot_test(opts: &BootOptions, progress: &dyn Reporter) -> Result<BootReport, BootError> {
    if opts.expectations.is_empty() {
        return Err(BootError::setup(
            "nothing to check: give at least one --expect-http PORT/PATH or --expect-console REGEX",
        ));
    }
    if opts.timeout.is_zero() {
        return Err(BootError::setup("the timeout must be at least 1 second"));
    }
    if opts.memory_mib < 128 {
        return Err(BootError::setup(format!(
            "{} MiB of memory is too little for UEFI firmware; give at least 128",
            opts.memory_mib
        )));
    }
    if opts.cpus == 0 {
        return Err(BootError::setup("the guest needs at least one CPU"));
    }
    check_image(&opts.image)?;
    let judges = find_judges(
        opts.qemu.as_deref(),
        opts.ovmf_code.as_deref(),
        opts.ovmf_vars.as_deref(),
    )?;
    let image = std::path::absolute(&opts.image).map_err(|e| BootError::Setup {
        message: format!("cannot read the image `{}`", opts.image.display()),
        hint: None,
        source: Some(e),
    })?;
    let format = detect_format(&image).map_err(|e| BootError::Setup {
        message: format!("cannot read the image `{}`", opts.image.display()),
        hint: None,
        source: Some(e),
    })?;
    let mut log = match &opts.serial_log {
        Some(p) => Some((
            std::fs::File::create(p).map_err(|e| BootError::Setup {
                message: format!("cannot write the serial log `{}`", p.display()),
                hint: None,
                source: Some(e),
            })?,
            p.clone(),
        )),
        None => None,
    };
    let name = opts.name.clone().unwrap_or_else(default_name);
    let (accel, accel_reason) = choose_accel(opts.accel, &judges, &name, progress);
    progress.step(&format!(
        "booting `{}` ({}) with {} ({accel_reason}), {} MiB, {} CPUs",
        opts.image.display(),
        format.name(),
        accel.name(),
        opts.memory_mib,
        opts.cpus
    ));
    let boot = Boot {
        opts,
        judges: &judges,
        image: &image,
        format,
        accel,
        accel_reason: &accel_reason,
        name: &name,
    };
    // A free port can be taken by someone else before QEMU binds it.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match boot.run(&mut log, progress)? {
            Outcome::Done(report) => {
                return if report.ok {
                    Ok(*report)
                } else {
                    Err(BootError::Failed(report))
                };
            }
            Outcome::PortTaken(said) if attempt < 3 => {
                progress.step(&format!(
                    "a forwarded port was taken ({said}); trying others"
                ));
            }
            Outcome::PortTaken(said) => {
                return Err(BootError::setup(format!(
                    "QEMU could not forward a port: {said}"
                )));
            }
        }
    }
}

fn default_name() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    format!(
        "ingot-boottest-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

fn choose_accel(
    choice: AccelChoice,
    judges: &Judges,
    name: &str,
    progress: &dyn Reporter,
) -> (Accel, String) {
    match choice {
        AccelChoice::Kvm => (Accel::Kvm, "asked for".into()),
        AccelChoice::Tcg => (Accel::Tcg, "asked for".into()),
        AccelChoice::Auto => {
            let _probing = Task::start(progress, "probing KVM", Unit::Phase, None);
            match qemu::probe_kvm(judges, &format!("{name}-kvm-probe"), KVM_PROBE_LIMIT) {
                Ok(()) => (Accel::Kvm, "KVM runs the firmware".into()),
                Err(why) => (Accel::Tcg, format!("KVM not usable: {why}")),
            }
        }
    }
}

/// One image to boot, with everything decided.
struct Boot<'a> {
    opts: &'a BootOptions,
    judges: &'a Judges,
    image: &'a Path,
    format: ImageFormat,
    accel: Accel,
    accel_reason: &'a str,
    name: &'a str,
}

enum Exit {
    Held,
    Failed(String),
    PortTaken(String),
}

enum Outcome {
    Done(Box<BootReport>),
    /// QEMU could not bind a forwarded port (what it said).
    PortTaken(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Firmware,
    Kernel,
    Userspace,
}

/// Stops the HTTP probers when the run ends, however it ends.
struct StopFlag(Arc<AtomicBool>);

impl Drop for StopFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct State<'r> {
    met: Vec<Option<Duration>>,
    last_probe: Vec<Option<ProbeResult>>,
    console: Console,
    phase: Phase,
    /// The phase as progress: its elapsed time, the console's last line.
    task: Task<'r>,
    progress: &'r dyn Reporter,
    stderr: Vec<String>,
}

impl Phase {
    fn task(self, progress: &dyn Reporter) -> Task<'_> {
        let what = match self {
            Phase::Firmware => "booting: firmware",
            Phase::Kernel => "booting: kernel",
            Phase::Userspace => "booting: userspace",
        };
        Task::start(progress, what, Unit::Phase, None)
    }
}

/// The guest reached `to`: the phase's task ends, the next one starts.
fn enter<'r>(task: &mut Task<'r>, phase: &mut Phase, to: Phase, progress: &'r dyn Reporter) {
    task.finish();
    *phase = to;
    *task = to.task(progress);
}

impl Boot<'_> {
    fn run(
        &self,
        log: &mut Option<(std::fs::File, PathBuf)>,
        progress: &dyn Reporter,
    ) -> Result<Outcome, BootError> {
        let exps = &self.opts.expectations;
        // One host port per guest port.
        let mut forwards: Vec<(u16, u16)> = Vec::new();
        for e in exps {
            if let Expectation::Http { port, .. } = e
                && !forwards.iter().any(|(_, g)| g == port)
            {
                forwards.push((free_port()?, *port));
            }
        }
        let machine = Machine {
            judges: self.judges,
            name: self.name,
            accel: self.accel,
            memory_mib: self.opts.memory_mib,
            cpus: self.opts.cpus,
            disk: Some((self.image, self.format)),
            forwards: &forwards,
        };
        let (tx, rx) = mpsc::channel();
        let mut qemu = Qemu::spawn(machine.command(), &tx)?;
        let start = Instant::now();
        let deadline = start + self.opts.timeout;
        progress.step(&format!("firmware (QEMU pid {})", qemu.id()));

        let stop = StopFlag(Arc::new(AtomicBool::new(false)));
        for (index, e) in exps.iter().enumerate() {
            if let Expectation::Http { port, path } = e {
                let host = forwards
                    .iter()
                    .find(|(_, g)| g == port)
                    .map_or(0, |(h, _)| *h);
                spawn_prober(index, host, path.clone(), tx.clone(), stop.0.clone())?;
            }
        }
        drop(tx);

        let mut st = State {
            met: vec![None; exps.len()],
            last_probe: vec![None; exps.len()],
            console: Console::new(),
            phase: Phase::Firmware,
            task: Phase::Firmware.task(progress),
            progress,
            stderr: Vec::new(),
        };
        let failure: Option<String> = loop {
            if st.met.iter().all(Option::is_some) {
                break None;
            }
            let now = Instant::now();
            if now >= deadline {
                break Some(format!(
                    "timed out after {} s",
                    self.opts.timeout.as_secs_f64()
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(250));
            match rx.recv_timeout(wait) {
                Ok(Event::Console(bytes)) => {
                    if let Some(why) = self.on_console(&mut st, &bytes, start, log, progress)? {
                        break Some(why);
                    }
                }
                Ok(Event::Http { index, result, at }) => {
                    if result.is_success() && st.met[index].is_none() {
                        let t = at.saturating_duration_since(start);
                        st.met[index] = Some(t);
                        progress.step(&format!(
                            "{} answered {result} after {:.1} s",
                            exps[index].target(),
                            t.as_secs_f64()
                        ));
                    }
                    st.last_probe[index] = Some(result);
                }
                Ok(Event::Stderr(line)) => {
                    if self.accel == Accel::Kvm && qemu::is_kvm_failure(&line) {
                        st.stderr.push(line.clone());
                        break Some(format!("QEMU stopped the guest: {line}"));
                    }
                    st.stderr.push(line);
                }
                Ok(Event::StderrClosed) => {}
                Ok(Event::ConsoleClosed) | Err(RecvTimeoutError::Disconnected) => {
                    match self.on_exit(&mut qemu, &rx, &mut st, start, log, progress)? {
                        Exit::Held => break None,
                        Exit::Failed(why) => break Some(why),
                        Exit::PortTaken(said) => return Ok(Outcome::PortTaken(said)),
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    // QEMU may be gone while something still holds its pipe.
                    if qemu.has_exited() {
                        match self.on_exit(&mut qemu, &rx, &mut st, start, log, progress)? {
                            Exit::Held => break None,
                            Exit::Failed(why) => break Some(why),
                            Exit::PortTaken(said) => return Ok(Outcome::PortTaken(said)),
                        }
                    }
                }
            }
        };
        qemu.stop();
        drop(stop);
        let elapsed = start.elapsed();
        if let Some((f, p)) = log {
            f.flush().map_err(|e| BootError::Setup {
                message: format!("cannot write the serial log `{}`", p.display()),
                hint: None,
                source: Some(e),
            })?;
        }
        let report = BootReport {
            ok: failure.is_none(),
            image: self.opts.image.clone(),
            format: self.format,
            accel: self.accel,
            accel_reason: self.accel_reason.to_string(),
            elapsed_seconds: round_ms(elapsed),
            expectations: exps
                .iter()
                .zip(&st.met)
                .zip(&st.last_probe)
                .map(|((e, met), probe)| ExpectationReport {
                    kind: e.kind(),
                    target: e.target(),
                    met: met.is_some(),
                    at_seconds: met.map(round_ms),
                    last_probe: match (met, probe) {
                        (None, Some(p)) => Some(p.to_string()),
                        _ => None,
                    },
                })
                .collect(),
            failure,
            console_tail: st.console.tail(TAIL_LINES),
        };
        Ok(Outcome::Done(Box::new(report)))
    }

    /// QEMU is exiting: take what is left of its output, then decide.
    fn on_exit(
        &self,
        qemu: &mut Qemu,
        rx: &mpsc::Receiver<Event>,
        st: &mut State,
        start: Instant,
        log: &mut Option<(std::fs::File, PathBuf)>,
        progress: &dyn Reporter,
    ) -> Result<Exit, BootError> {
        let status = qemu.wait_exit(Duration::from_secs(5));
        let until = Instant::now() + Duration::from_secs(2);
        let mut stderr_open = true;
        while stderr_open {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Event::Console(bytes)) => {
                    self.on_console(st, &bytes, start, log, progress)?;
                }
                Ok(Event::Stderr(line)) => st.stderr.push(line),
                Ok(Event::StderrClosed) | Err(_) => stderr_open = false,
                Ok(_) => {}
            }
        }
        if st.met.iter().all(Option::is_some) {
            return Ok(Exit::Held);
        }
        let said = qemu_said(&st.stderr);
        if !st.console.seen_any() && status.is_some_and(|s| !s.success()) {
            if said.contains("host forwarding rule") {
                return Ok(Exit::PortTaken(said));
            }
            return Err(BootError::setup(format!(
                "QEMU could not start the machine ({}): {said}",
                status.map_or_else(|| "still running".into(), |s| s.to_string())
            )));
        }
        Ok(Exit::Failed(match status {
            Some(s) if s.success() => {
                "the guest powered off (or rebooted) before everything held".into()
            }
            Some(s) => format!("QEMU exited ({s}) before everything held: {said}"),
            None => "QEMU closed the console before everything held".into(),
        }))
    }

    /// Take console bytes: log them, check console expectations, follow the
    /// phases. Returns why to stop early (the firmware gave up).
    fn on_console(
        &self,
        st: &mut State,
        bytes: &[u8],
        start: Instant,
        log: &mut Option<(std::fs::File, PathBuf)>,
        progress: &dyn Reporter,
    ) -> Result<Option<String>, BootError> {
        let t = start.elapsed();
        let added = st.console.push(bytes);
        let new_line = added.iter().any(|b| !b.is_ascii_whitespace());
        if let Some((f, p)) = log {
            f.write_all(added).map_err(|e| BootError::Setup {
                message: format!("cannot write the serial log `{}`", p.display()),
                hint: None,
                source: Some(e),
            })?;
        }
        let exps = &self.opts.expectations;
        let text = st.console.unscanned();
        for (i, e) in exps.iter().enumerate() {
            if let Expectation::Console { regex, pattern } = e
                && st.met[i].is_none()
                && regex.is_match(text)
            {
                st.met[i] = Some(t);
                progress.step(&format!(
                    "console showed /{pattern}/ after {:.1} s",
                    t.as_secs_f64()
                ));
            }
        }
        if st.phase == Phase::Firmware && console::contains(text, b"Linux version") {
            enter(&mut st.task, &mut st.phase, Phase::Kernel, st.progress);
            progress.step(&format!("kernel after {:.1} s", t.as_secs_f64()));
        }
        if st.phase < Phase::Userspace
            && (console::contains(text, b"systemd[1]") || console::contains(text, b"Welcome to"))
        {
            enter(&mut st.task, &mut st.phase, Phase::Userspace, st.progress);
            progress.step(&format!("userspace after {:.1} s", t.as_secs_f64()));
            let waiting: Vec<String> = exps
                .iter()
                .zip(&st.met)
                .filter(|(_, m)| m.is_none())
                .map(|(e, _)| e.target())
                .collect();
            if !waiting.is_empty() {
                progress.step(&format!("waiting for {}", waiting.join(", ")));
            }
        }
        let stop = if st.phase == Phase::Firmware && st.met.iter().any(Option::is_none) {
            firmware_gave_up(text)
        } else {
            None
        };
        st.console.mark_scanned();
        if new_line && st.task.watched() {
            st.task.note(&st.console.last_line());
        }
        Ok(stop)
    }
}

/// OVMF found nothing it could boot: it fell into the UEFI shell and
/// shows its prompt (after `startup.nsh`, if any, ran), or has no shell.
fn firmware_gave_up(text: &[u8]) -> Option<String> {
    let at_line_start = |needle: &[u8]| {
        text.starts_with(needle)
            || text
                .windows(needle.len() + 1)
                .any(|w| w[0] == b'\n' && &w[1..] == needle)
    };
    if at_line_start(b"Shell> ") {
        Some(
            "the firmware found nothing to boot and stopped in the UEFI shell \
             (no EFI/BOOT/BOOTX64.EFI on the ESP, or it failed to load)"
                .into(),
        )
    } else if console::contains(text, b"No bootable option or device was found") {
        Some("the firmware found no bootable option or device".into())
    } else {
        None
    }
}

/// What QEMU said on stderr, without its warnings.
fn qemu_said(stderr: &[String]) -> String {
    let lines: Vec<&str> = stderr
        .iter()
        .map(String::as_str)
        .filter(|l| !l.trim().is_empty() && !l.contains("warning:"))
        .collect();
    if lines.is_empty() {
        "(nothing on stderr)".into()
    } else {
        lines[lines.len().saturating_sub(10)..].join("; ")
    }
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// A port on 127.0.0.1 free at this moment.
fn free_port() -> Result<u16, BootError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BootError::Setup {
            message: "cannot find a free port on 127.0.0.1".into(),
            hint: None,
            source: Some(e),
        })
}

/// Poll `GET path` on the forwarded `host_port` until it answers 2xx, the
/// run ends (`stop`), or nobody listens to the results any more.
fn spawn_prober(
    index: usize,
    host_port: u16,
    path: String,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
) -> Result<(), BootError> {
    std::thread::Builder::new()
        .name(format!("http-probe-{index}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let result = http_probe(host_port, &path, HTTP_PROBE_LIMIT);
                let done = result.is_success();
                let at = Instant::now();
                if tx.send(Event::Http { index, result, at }).is_err() || done {
                    return;
                }
                std::thread::sleep(HTTP_POLL);
            }
        })
        .map(drop)
        .map_err(|e| BootError::Setup {
            message: "cannot start a thread".into(),
            hint: None,
            source: Some(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_expectations_parse() {
        let e = Expectation::http("8080/health?x=1").unwrap();
        assert_eq!(e.kind(), "http");
        assert_eq!(e.target(), "8080/health?x=1");
        assert!(
            matches!(Expectation::http("80"), Ok(Expectation::Http { port: 80, ref path }) if path == "/")
        );
        for bad in [
            "",
            "/x",
            "0/",
            "65536/",
            "http://x/",
            "80/a b",
            "80/a\r\nX: y",
        ] {
            assert!(Expectation::http(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn console_expectations_parse() {
        assert!(Expectation::console("BdsDxe|Shell>").is_ok());
        let e = Expectation::console("(unclosed").unwrap_err();
        assert!(e.contains("(unclosed"), "{e}");
    }

    #[test]
    fn the_uefi_shell_prompt_means_nothing_to_boot() {
        assert!(firmware_gave_up(b"Mapping table\nShell> ").is_some());
        assert!(firmware_gave_up(b"Shell> ").is_some());
        assert!(firmware_gave_up(b"echo Shell> x").is_none());
        assert!(firmware_gave_up(b"BdsDxe: failed to load Boot0001\n").is_none());
    }

    #[test]
    fn options_are_checked_before_anything_runs() {
        let mut o = BootOptions::new("/nonexistent.raw");
        let e = boot_test(&o, &crate::progress::Quiet).unwrap_err();
        assert!(e.to_string().contains("nothing to check"), "{e}");
        o.expectations.push(Expectation::console("x").unwrap());
        o.memory_mib = 16;
        assert_eq!(
            boot_test(&o, &crate::progress::Quiet)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
