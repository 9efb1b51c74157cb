//! QEMU and OVMF: finding them, the command line, the process, KVM.
//!
//! In: the options of a boot test. Out: a running `qemu-system-x86_64`
//! whose serial console and error output arrive as [`Event`]s, held by a
//! [`Qemu`] guard that kills its whole process group and reaps it when
//! dropped. The child also dies with the thread that started it
//! (`PR_SET_PDEATHSIG`), so an `exit` from a Ctrl-C handler, or ingot being
//! killed, leaves no QEMU behind.
//!
//! Every disk QEMU is given is opened with `snapshot=on`: writes go to a
//! throwaway overlay QEMU deletes itself, so the image and the firmware's
//! variable store are never modified, and no temporary file of ours exists.

use std::ffi::c_void;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, ioctl, opcode};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use super::BootError;
use super::http::ProbeResult;

pub const QEMU_PROGRAM: &str = "qemu-system-x86_64";
pub const QEMU_PACKAGE: &str = "qemu-system-x86";
pub const OVMF_PACKAGE: &str = "ovmf";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The programs and firmware files a boot needs.
#[derive(Debug, Clone)]
pub struct Judges {
    pub qemu: PathBuf,
    pub ovmf_code: PathBuf,
    pub ovmf_vars: PathBuf,
}

/// Find QEMU and OVMF: the given paths, else `INGOT_QEMU`,
/// `INGOT_OVMF_CODE`, `INGOT_OVMF_VARS`, else `PATH` and Debian's places.
/// One error names everything missing and the packages that provide it.
pub fn find_judges(
    qemu: Option<&Path>,
    ovmf_code: Option<&Path>,
    ovmf_vars: Option<&Path>,
) -> Result<Judges, BootError> {
    let mut missing = Vec::new();
    let mut packages = Vec::new();

    let qemu_given = qemu
        .map(|p| (p.to_path_buf(), "given"))
        .or_else(|| std::env::var_os("INGOT_QEMU").map(|p| (PathBuf::from(p), "INGOT_QEMU")));
    let qemu = match qemu_given {
        Some((p, from)) => {
            if is_executable(&p) {
                Some(p)
            } else {
                missing.push(format!(
                    "`{}` ({from}) is not an executable file",
                    p.display()
                ));
                None
            }
        }
        None => {
            let found = search_path(QEMU_PROGRAM);
            if found.is_none() {
                missing.push(format!("`{QEMU_PROGRAM}` is not on PATH"));
            }
            found
        }
    };
    if qemu.is_none() {
        packages.push(QEMU_PACKAGE);
    }

    let mut firmware = |given: Option<&Path>, var: &str, default: &str| {
        let (p, from) = match given {
            Some(p) => (p.to_path_buf(), "given"),
            None => match std::env::var_os(var) {
                Some(p) => (PathBuf::from(p), var),
                None => (PathBuf::from(default), "OVMF"),
            },
        };
        if p.is_file() {
            Some(p)
        } else {
            missing.push(format!(
                "firmware file `{}` ({from}) is missing",
                p.display()
            ));
            if !packages.contains(&OVMF_PACKAGE) {
                packages.push(OVMF_PACKAGE);
            }
            None
        }
    };
    let code = firmware(ovmf_code, "INGOT_OVMF_CODE", OVMF_CODE);
    let vars = firmware(ovmf_vars, "INGOT_OVMF_VARS", OVMF_VARS);

    match (qemu, code, vars) {
        (Some(qemu), Some(ovmf_code), Some(ovmf_vars)) => Ok(Judges {
            qemu,
            ovmf_code,
            ovmf_vars,
        }),
        _ => Err(BootError::Setup {
            message: format!("cannot boot images here: {}", missing.join("; ")),
            hint: Some(format!(
                "install the Debian package{} {} (apt-get install {})",
                if packages.len() > 1 { "s" } else { "" },
                packages
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                packages.join(" ")
            )),
            source: None,
        }),
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn search_path(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

/// The container format of an image file, as QEMU names its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Raw,
    Vmdk,
    Vhd,
    Qcow2,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Qcow2 => "qcow2",
        }
    }

    /// QEMU's block driver for it.
    fn driver(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Vhd => "vpc",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

/// VMDK by its magic `KDMV` at the start (a sparse extent, as in the
/// stream-optimized VMDK ingot writes), qcow2 by its magic `QFI\xfb` at
/// the start, VHD by the `conectix` cookie of the footer in the last 512
/// bytes, else raw.
pub fn detect_format(path: &Path) -> io::Result<ImageFormat> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut magic = [0u8; 4];
    if len >= 4 {
        f.read_exact(&mut magic)?;
        if &magic == b"KDMV" {
            return Ok(ImageFormat::Vmdk);
        }
        if &magic == b"QFI\xfb" {
            return Ok(ImageFormat::Qcow2);
        }
    }
    if len >= 512 {
        let mut cookie = [0u8; 8];
        f.seek(SeekFrom::Start(len - 512))?;
        f.read_exact(&mut cookie)?;
        if &cookie == b"conectix" {
            return Ok(ImageFormat::Vhd);
        }
    }
    Ok(ImageFormat::Raw)
}

/// The accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A QEMU option value: commas doubled, as QEMU's option parser wants.
fn escaped(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len());
    for &b in value.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

fn opt(prefix: &str, value: &OsStr, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(escaped(value));
    s.push(suffix);
    s
}

/// What a QEMU run needs on its command line.
pub struct Machine<'a> {
    pub judges: &'a Judges,
    pub name: &'a str,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// The image (an absolute path) and its format; none for the KVM probe.
    pub disk: Option<(&'a Path, ImageFormat)>,
    /// `(host port, guest port)` pairs forwarded on 127.0.0.1.
    pub forwards: &'a [(u16, u16)],
}

impl Machine<'_> {
    /// The command: UEFI firmware as two pflash drives, the disk as NVMe,
    /// the serial console on stdout, user-mode networking.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.judges.qemu);
        c.arg("-name").arg(opt("", OsStr::new(self.name), ""));
        c.args(["-machine", "q35", "-nodefaults", "-no-user-config"]);
        c.args(["-display", "none", "-no-reboot"]);
        c.arg("-m").arg(self.memory_mib.to_string());
        c.arg("-smp").arg(self.cpus.to_string());
        match self.accel {
            Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
            // tb-size=64: the translation cache QEMU otherwise sizes at 1 GiB.
            Accel::Tcg => c.args(["-accel", "tcg,thread=multi,tb-size=64", "-cpu", "max"]),
        };
        c.arg("-drive").arg(opt(
            "if=pflash,unit=0,format=raw,readonly=on,file=",
            self.judges.ovmf_code.as_os_str(),
            "",
        ));
        // The variable store is written by the firmware: a throwaway copy.
        c.arg("-drive").arg(opt(
            "if=pflash,unit=1,format=raw,snapshot=on,file=",
            self.judges.ovmf_vars.as_os_str(),
            "",
        ));
        if let Some((image, format)) = self.disk {
            let extra = match format {
                // Fixed VHDs: the size in the footer, not the CHS geometry.
                ImageFormat::Vhd => ",force_size_calc=current_size",
                _ => "",
            };
            c.arg("-drive").arg(opt(
                &format!(
                    "if=none,id=d0,format={},snapshot=on,file.driver=file,file.filename=",
                    format.driver()
                ),
                image.as_os_str(),
                extra,
            ));
            // bootindex: the firmware boots the disk and drops its network
            // boot entries (PXE and HTTP boot would take minutes to fail).
            c.args(["-device", "nvme,drive=d0,serial=ingot,bootindex=0"]);
            let mut netdev = String::from("user,id=n0");
            for (host, guest) in self.forwards {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            c.arg("-netdev").arg(netdev);
            // romfile=: no iPXE option ROM.
            c.args(["-device", "virtio-net-pci,netdev=n0,romfile="]);
        }
        c.args(["-serial", "stdio"]);
        c
    }
}

/// What the threads around a QEMU process report.
#[derive(Debug)]
pub enum Event {
    /// Raw bytes from the serial console.
    Console(Vec<u8>),
    /// The console's pipe closed: QEMU is exiting.
    ConsoleClosed,
    /// A line QEMU wrote on stderr.
    Stderr(String),
    StderrClosed,
    /// One HTTP probe of expectation `index`.
    Http {
        index: usize,
        result: ProbeResult,
        at: Instant,
    },
}

/// A running QEMU; dropping it kills its process group and reaps it.
pub struct Qemu {
    child: Child,
    status: Option<ExitStatus>,
}

impl Qemu {
    /// Start `cmd` in its own process group, tied to the calling thread's
    /// life, with its stdout and stderr read by two threads into `events`.
    pub fn spawn(mut cmd: Command, events: &Sender<Event>) -> Result<Qemu, BootError> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: between fork and exec the closure only makes two system
        // calls (rustix calls the kernel directly: no allocation, no lock).
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died before the line above.
                let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
                if ppid != Some(parent as i32) {
                    return Err(io::Error::other("ingot exited while starting QEMU"));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| BootError::Setup {
            message: format!("cannot start `{}`", cmd.get_program().to_string_lossy()),
            hint: None,
            source: Some(e),
        })?;
        // From here on the guard kills QEMU on every path.
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut qemu = Qemu {
            child,
            status: None,
        };
        if let (Some(out), Some(err)) = (stdout, stderr) {
            let tx = events.clone();
            spawn_thread("qemu-console", move || read_console(out, &tx))?;
            let tx = events.clone();
            spawn_thread("qemu-stderr", move || read_stderr(err, &tx))?;
        } else {
            qemu.stop();
            return Err(BootError::Setup {
                message: "QEMU's output pipes were not set up".into(),
                hint: None,
                source: None,
            });
        }
        Ok(qemu)
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether QEMU has exited, without reaping it (its process group
    /// stays reserved until it is reaped).
    pub fn has_exited(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        let Some(pid) = Pid::from_raw(self.child.id() as i32) else {
            return false;
        };
        let waitable = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(
            rustix::process::waitid(WaitId::Pid(pid), waitable),
            Ok(Some(_))
        )
    }

    /// The exit status, waiting at most `limit` for it. Whatever QEMU left
    /// in its process group is killed before it is reaped.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if self.status.is_some() {
                return self.status;
            }
            if self.has_exited() {
                self.kill_group();
                self.status = self.child.wait().ok();
                return self.status;
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill QEMU and everything in its process group, then reap it.
    pub fn stop(&mut self) {
        if self.status.is_some() {
            return;
        }
        self.kill_group();
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
    }

    fn kill_group(&self) {
        // The group id is the child's pid; it cannot have been reused, as
        // the child is not reaped yet.
        if let Some(pgid) = Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), BootError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| BootError::Setup {
            message: "cannot start a thread".into(),
            hint: None,
            source: Some(e),
        })
}

fn read_console(mut out: impl Read, tx: &Sender<Event>) {
    let mut buf = [0u8; 16384];
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(Event::Console(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Event::ConsoleClosed);
}

fn read_stderr(err: impl Read, tx: &Sender<Event>) {
    let mut r = BufReader::new(err);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if tx.send(Event::Stderr(text)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Event::StderrClosed);
}

/// What QEMU says when KVM cannot run the guest (it then stops the guest
/// and waits forever instead of exiting).
pub fn is_kvm_failure(stderr_line: &str) -> bool {
    stderr_line.contains("KVM internal error")
        || stderr_line.contains("emulation failure")
        || stderr_line.contains("failed to initialize kvm")
        || stderr_line.contains("failed to initialize KVM")
}

/// Whether KVM can run this firmware, or why not.
///
/// `/dev/kvm` existing proves nothing: on some hosts the device opens, the
/// ioctls answer, a real-mode guest even runs, and OVMF still stops with
/// "KVM internal error" (QEMU then hangs). So: `KVM_GET_API_VERSION` must
/// answer 12 and `KVM_CREATE_VM` must succeed (cheap, rules out most
/// hosts), then OVMF itself must reach its console under KVM within
/// `limit` (about a second on a working host).
pub fn probe_kvm(judges: &Judges, name: &str, limit: Duration) -> Result<(), String> {
    kvm_ioctls()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let machine = Machine {
        judges,
        name,
        accel: Accel::Kvm,
        memory_mib: 256,
        cpus: 1,
        disk: None,
        forwards: &[],
    };
    let mut qemu = Qemu::spawn(machine.command(), &tx).map_err(|e| e.to_string())?;
    drop(tx);
    let result = await_firmware(&rx, limit);
    qemu.stop();
    result
}

fn await_firmware(rx: &Receiver<Event>, limit: Duration) -> Result<(), String> {
    let until = Instant::now() + limit;
    let mut stderr: Vec<String> = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Console(bytes)) if !bytes.is_empty() => return Ok(()),
            Ok(Event::Stderr(line)) => {
                if is_kvm_failure(&line) {
                    return Err(format!("QEMU: {line}"));
                }
                stderr.push(line);
            }
            Ok(Event::ConsoleClosed) => {
                // Collect what QEMU said before exiting.
                while let Ok(ev) = rx.recv_timeout(Duration::from_millis(500)) {
                    match ev {
                        Event::Stderr(line) => stderr.push(line),
                        Event::StderrClosed => break,
                        _ => {}
                    }
                }
                let said = stderr
                    .iter()
                    .filter(|l| !l.contains("warning:"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(format!("QEMU exited under KVM: {said}"));
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the firmware printed nothing within {} s under KVM",
                    limit.as_secs()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("QEMU's output ended".into());
            }
        }
    }
}

/// `KVMIO`, the ioctl group of `/dev/kvm` (linux/kvm.h).
const KVMIO: u8 = 0xAE;
/// `_IO(KVMIO, 0x00)`: the API version, as the return value.
const KVM_GET_API_VERSION: Opcode = opcode::none(KVMIO, 0x00);
/// `_IO(KVMIO, 0x01)`: a new VM (machine type 0), as a new descriptor.
const KVM_CREATE_VM: Opcode = opcode::none(KVMIO, 0x01);
/// The only stable KVM API version (linux/kvm.h: `KVM_API_VERSION`).
const KVM_API_VERSION: i32 = 12;

/// A `/dev/kvm` request with the integer argument 0 whose answer is the
/// return value.
struct KvmRequest<const OPCODE: Opcode>;

// SAFETY: the two opcodes used here (linux/kvm.h, `_IO`: no data) take an
// integer argument, 0 here (the null pointer), read and write no memory of
// ours, and answer only with the return value, which is all that is read.
unsafe impl<const OPCODE: Opcode> Ioctl for KvmRequest<OPCODE> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::null_mut()
    }

    // SAFETY: nothing is read through the pointer; the answer is `out`.
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

fn kvm_ioctls() -> Result<(), String> {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    // SAFETY: `KvmRequest` describes KVM_GET_API_VERSION (see its impl).
    let version = unsafe { ioctl(&kvm, KvmRequest::<KVM_GET_API_VERSION>) }
        .map_err(|e| format!("KVM_GET_API_VERSION failed: {}", io::Error::from(e)))?;
    if version != KVM_API_VERSION {
        return Err(format!(
            "KVM_GET_API_VERSION answered {version}, not {KVM_API_VERSION}"
        ));
    }
    // SAFETY: `KvmRequest` describes KVM_CREATE_VM (see its impl).
    let vm = unsafe { ioctl(&kvm, KvmRequest::<KVM_CREATE_VM>) }
        .map_err(|e| format!("KVM_CREATE_VM failed: {}", io::Error::from(e)))?;
    // SAFETY: KVM_CREATE_VM succeeded, so `vm` is a new descriptor that
    // nothing else holds; it is closed here.
    drop(unsafe { OwnedFd::from_raw_fd(vm) });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two requests reach the driver as what they are: where
    /// `/dev/kvm` opens, the version answer is 12 (a wrong request number
    /// would fail with ENOTTY or EINVAL), and creating a VM either works or
    /// fails for a reason that is not a malformed request.
    #[test]
    fn the_kvm_requests_are_the_ones_the_driver_knows() {
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm");
        let answer = kvm_ioctls();
        eprintln!("/dev/kvm: {:?}; kvm_ioctls: {answer:?}", dev.as_ref().err());
        match (dev, answer) {
            (Err(_), Err(e)) => assert!(e.starts_with("cannot open /dev/kvm"), "{e}"),
            (Ok(_), Ok(())) => {}
            (Ok(_), Err(e)) => {
                assert!(e.starts_with("KVM_CREATE_VM failed"), "{e}");
                let malformed = [rustix::io::Errno::NOTTY, rustix::io::Errno::INVAL]
                    .map(|e| io::Error::from(e).to_string());
                assert!(!malformed.iter().any(|m| e.ends_with(m.as_str())), "{e}");
            }
            (Err(e), Ok(())) => panic!("/dev/kvm does not open ({e}) yet the probe passed"),
        }
    }

    #[test]
    fn commas_are_doubled_in_option_values() {
        assert_eq!(
            opt("file=", OsStr::new("/a,b/c.raw"), ",x=y"),
            OsString::from("file=/a,,b/c.raw,x=y")
        );
    }

    #[test]
    fn formats_by_their_magic() {
        let t = tempfile::tempdir().unwrap();
        let raw = t.path().join("a");
        std::fs::write(&raw, vec![0u8; 4096]).unwrap();
        assert_eq!(detect_format(&raw).unwrap(), ImageFormat::Raw);
        let mut vmdk = b"KDMV".to_vec();
        vmdk.resize(4096, 0);
        std::fs::write(&raw, &vmdk).unwrap();
        assert_eq!(detect_format(&raw).unwrap(), ImageFormat::Vmdk);
        let mut qcow2 = b"QFI\xfb".to_vec();
        qcow2.resize(4096, 0);
        std::fs::write(&raw, &qcow2).unwrap();
        assert_eq!(detect_format(&raw).unwrap(), ImageFormat::Qcow2);
        assert_eq!(ImageFormat::Qcow2.driver(), "qcow2");
        let mut vhd = vec![0u8; 4096];
        vhd[4096 - 512..4096 - 504].copy_from_slice(b"conectix");
        std::fs::write(&raw, &vhd).unwrap();
        assert_eq!(detect_format(&raw).unwrap(), ImageFormat::Vhd);
        std::fs::write(&raw, b"KD").unwrap();
        assert_eq!(detect_format(&raw).unwrap(), ImageFormat::Raw);
    }

    #[test]
    fn missing_judges_name_their_packages() {
        let t = tempfile::tempdir().unwrap();
        let none = t.path().join("none");
        let e = find_judges(Some(&none), Some(&none), Some(&none)).unwrap_err();
        let hint = e.hint().unwrap_or_default().to_string();
        assert!(hint.contains("`qemu-system-x86`"), "{hint}");
        assert!(hint.contains("`ovmf`"), "{hint}");
        assert_eq!(e.exit_code(), 2);
    }
}
