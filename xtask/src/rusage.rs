//! One child process's exit status and what it used, from `wait4(2)`: CPU
//! time (user and system) and peak resident set size. `cargo xtask bench`
//! measures every command with it, and the integration tests' reaper
//! (`tests/it/common.rs`, which includes this file with `#[path]`) measures
//! ingot's memory with it, so both read the same numbers the same way.
//!
//! Linux folds into `ru_maxrss` the resident set of the process that called
//! `exec`: a command started from a large process carries that process's
//! memory. The bench starts commands from xtask, a few MiB; the tests start
//! a fresh copy of their own binary to do the same (see `peak_rss` there).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// What [`wait`] saw of a child.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub status: ExitStatus,
    /// User plus system CPU time.
    #[allow(dead_code)] // the tests' reaper reads only the memory
    pub cpu: Duration,
    /// Peak resident set size in KiB (`ru_maxrss`).
    pub peak_rss_kib: u64,
}

/// Wait for `child` to exit and collect its rusage.
pub fn wait(child: Child) -> io::Result<Usage> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is a C struct of integers and `timeval`s (integers),
    // for which all zeros is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not reaped yet (`child` is ours
        // by value, so nothing else waits for it); `status` and `ru` are
        // valid places for the kernel to write to.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // Reaped: dropping the handle only closes its pipes.
    drop(child);
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Usage {
        status: ExitStatus::from_raw(status),
        cpu: time(ru.ru_utime) + time(ru.ru_stime),
        peak_rss_kib: ru.ru_maxrss as u64,
    })
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    #[test]
    fn exit_status_and_peak_memory_are_the_childs() {
        let run = |c: &mut Command| super::wait(c.stdout(Stdio::null()).spawn().unwrap()).unwrap();
        let failed = run(Command::new("sh").args(["-c", "exit 3"]));
        assert_eq!(failed.status.code(), Some(3));
        // dd reads 64 MiB into one buffer, so its resident set passes that.
        // (No upper bound: started from a large test binary, a small
        // command carries that binary's resident set, see the module doc.)
        let big =
            run(Command::new("dd").args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]));
        assert!(big.status.success());
        assert!(big.peak_rss_kib >= 64 * 1024, "{big:?}");
    }
}
