//! What a command can fail with, and what each failure means to the
//! person who ran it: the exit code (2 for bad usage or bad input, 1 when
//! a check failed, 3 when the machine failed, 128 plus the signal's number
//! when a signal ended the run) and the hint printed after the chain.
//!
//! The library's modules each own their error type and know nothing of
//! exit codes; this file alone maps them, one function per type, each a
//! `match` over every variant, so a new variant cannot compile until it is
//! given its meaning here.

use std::error::Error as _;

use ingot::bake::BakeError;
use ingot::boottest::BootError;
use ingot::inspect::InspectError;
use ingot::install::InstallError;
use ingot::manifest::verify::VerifyError;
use ingot::output::{Interruption, OutputError};
use ingot::repo::RepoError;
use ingot::resolve::ResolveError;
use ingot::rpm::build::BuildError;
use ingot::spec::SpecError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a subcommand returns. Shown as its library error is
/// (`transparent`), with the same chain of causes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),

    #[error(transparent)]
    Output(#[from] OutputError),

    #[error(transparent)]
    Build(#[from] BuildError),

    #[error(transparent)]
    Bake(#[from] BakeError),

    /// `verify` could not run; mismatches are [`Error::CheckFailed`].
    #[error(transparent)]
    Verify(#[from] VerifyError),

    #[error(transparent)]
    Inspect(#[from] InspectError),

    #[error(transparent)]
    Boot(#[from] BootError),

    /// An option or environment value that cannot be used.
    #[error("{0}")]
    Usage(String),

    /// A check the user asked for failed.
    #[error("{0}")]
    CheckFailed(String),
}

/// Exit code of a run the machine failed rather than its input: the
/// output or work folder cannot be written, the disk is full, and the like
/// (see [`environment_failed`]).
pub const EXIT_ENVIRONMENT: u8 = 3;

/// What a failure says about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// Bad usage or bad input: exit 2.
    Input,
    /// A check failed (unmet dependencies, a boot test, `verify`): exit 1.
    Check,
    /// An output or work file could not be written: the environment, 3.
    Written,
}

/// The process exit code for `e`.
pub fn exit_code(e: &Error) -> u8 {
    match meaning(e) {
        Meaning::Written => EXIT_ENVIRONMENT,
        _ if environment_failed(e) => EXIT_ENVIRONMENT,
        Meaning::Check => 1,
        Meaning::Input => 2,
    }
}

/// The exit code of a run a signal ended: 128 plus the signal's number, as
/// a shell reports a process the signal killed: 130 (SIGINT), 143
/// (SIGTERM), 129 (SIGHUP).
pub fn interrupted_exit_code(i: &Interruption) -> u8 {
    u8::try_from(128 + i.signal).unwrap_or(128)
}

/// A hint to print after the error chain, if there is one.
pub fn hint(e: &Error) -> Option<&str> {
    let spec = match e {
        Error::Spec(s) => Some(s),
        Error::Build(b) => build_spec(b),
        Error::Bake(BakeError::Spec(s)) => Some(s),
        Error::Bake(BakeError::Build(b)) => build_spec(b),
        Error::Boot(b) => return b.hint(),
        _ => None,
    };
    spec.and_then(|s| s.hint.as_deref())
}

fn build_spec(e: &BuildError) -> Option<&SpecError> {
    match e {
        BuildError::Spec(s) => Some(s),
        _ => None,
    }
}

fn meaning(e: &Error) -> Meaning {
    match e {
        Error::Spec(_) | Error::Usage(_) => Meaning::Input,
        Error::Output(o) => output(o),
        Error::Build(b) => build(b),
        Error::Bake(b) => bake(b),
        Error::Verify(v) => verify(v),
        Error::Inspect(i) => inspect(i),
        Error::Boot(b) => match b {
            BootError::Setup { .. } => Meaning::Input,
            BootError::Failed(_) => Meaning::Check,
        },
        Error::CheckFailed(_) => Meaning::Check,
    }
}

fn output(e: &OutputError) -> Meaning {
    match e {
        OutputError::Write { .. } => Meaning::Written,
        OutputError::NotStaged(_) => Meaning::Input,
    }
}

fn build(e: &BuildError) -> Meaning {
    match e {
        BuildError::Write { .. } => Meaning::Written,
        BuildError::Spec(_)
        | BuildError::Read { .. }
        | BuildError::Usage(_)
        | BuildError::Rpm { .. }
        | BuildError::SigningKey { .. } => Meaning::Input,
    }
}

fn bake(e: &BakeError) -> Meaning {
    match e {
        BakeError::Write { .. } => Meaning::Written,
        BakeError::Build(b) => build(b),
        BakeError::Install(i) => install(i),
        BakeError::Output(o) => output(o),
        BakeError::Repo(r) => repo(r),
        BakeError::Resolve(r) => resolve(r),
        BakeError::Lock(_) | BakeError::Locked { .. } => Meaning::Input,
        BakeError::Spec(_)
        | BakeError::Read { .. }
        | BakeError::Usage(_)
        | BakeError::Disk(_)
        | BakeError::Filesystem(_)
        | BakeError::Base(_)
        | BakeError::BaseImage(_) => Meaning::Input,
    }
}

fn install(e: &InstallError) -> Meaning {
    match e {
        InstallError::Unmet { .. } | InstallError::Conflicts { .. } => Meaning::Check,
        InstallError::Package { .. }
        | InstallError::Dependency { .. }
        | InstallError::Refused { .. }
        | InstallError::Place { .. }
        | InstallError::Payload { .. }
        | InstallError::Override { .. }
        | InstallError::Rpmdb(_)
        | InstallError::Work { .. } => Meaning::Input,
    }
}

/// A repository that cannot be reached, or a cache that cannot be
/// written, is the environment; what a repository or the lock serves that
/// is wrong (a 404, a checksum, a signature, bad metadata) is bad input.
fn repo(e: &RepoError) -> Meaning {
    match e {
        RepoError::Unreachable { .. } | RepoError::Write { .. } => Meaning::Written,
        RepoError::NoWorkingUrl { last, .. } => repo(last),
        RepoError::Config { .. }
        | RepoError::NoSource { .. }
        | RepoError::Read { .. }
        | RepoError::SymlinkLoop { .. }
        | RepoError::UnsupportedUrl { .. }
        | RepoError::NotFound { .. }
        | RepoError::NoSuchFile { .. }
        | RepoError::Http { .. }
        | RepoError::MetalinkHash { .. }
        | RepoError::ChecksumType { .. }
        | RepoError::Checksum { .. }
        | RepoError::Size { .. }
        | RepoError::NoRecord { .. }
        | RepoError::Metadata { .. }
        | RepoError::Limit { .. }
        | RepoError::Sqlite { .. }
        | RepoError::OfflineNoMetadata { .. }
        | RepoError::NotCached { .. }
        | RepoError::NoKey { .. }
        | RepoError::RepomdUnsigned { .. }
        | RepoError::RepomdBadSignature { .. }
        | RepoError::RepomdUnknownKey { .. }
        | RepoError::Key { .. }
        | RepoError::Unsigned { .. }
        | RepoError::UnknownKey { .. }
        | RepoError::BadSignature { .. } => Meaning::Input,
    }
}

/// A request nothing satisfies is a failed check (as unmet dependencies
/// are); the rest says what is wrong with the request or the metadata.
fn resolve(e: &ResolveError) -> Meaning {
    match e {
        ResolveError::Unsatisfiable { .. } => Meaning::Check,
        ResolveError::BadRequest { .. }
        | ResolveError::DuplicateId { .. }
        | ResolveError::TooManyCandidates { .. }
        | ResolveError::TooManyDependencies { .. }
        | ResolveError::TooMuchWork { .. }
        | ResolveError::FileLists { .. }
        | ResolveError::UnknownFileProvider { .. } => Meaning::Input,
    }
}

fn verify(e: &VerifyError) -> Meaning {
    match e {
        VerifyError::Manifest(_) | VerifyError::NoOutputs { .. } | VerifyError::Read { .. } => {
            Meaning::Input
        }
    }
}

fn inspect(e: &InspectError) -> Meaning {
    match e {
        InspectError::Input(_)
        | InspectError::Manifest(_)
        | InspectError::Read { .. }
        | InspectError::Base(_)
        | InspectError::Usage(_) => Meaning::Input,
    }
}

/// Whether an operating-system error anywhere in the chain says the
/// machine failed, not the input: no space left, quota exceeded, read-only
/// filesystem, file too large for the filesystem, I/O error, out of
/// memory, too many open files.
fn environment_failed(e: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cause {
        if cause_is_environment(c) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// One link of a chain that says the machine failed: an I/O error (also
/// behind the errors that show one as their own message) or SQLite's
/// "disk full" and "disk I/O error".
fn cause_is_environment(c: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = c.downcast_ref::<std::io::Error>() {
        return io_is_environment(io);
    }
    if let Some(ingot::rootfs::MemberError::Io(io)) = c.downcast_ref() {
        return io_is_environment(io);
    }
    if let Some(e) = c.downcast_ref::<rusqlite::Error>() {
        return matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
        );
    }
    false
}

/// An I/O error that says the machine failed, not the input.
fn io_is_environment(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull
            | K::QuotaExceeded
            | K::ReadOnlyFilesystem
            | K::FileTooLarge
            | K::OutOfMemory
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EMFILE | libc::ENFILE)
    ) || e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .is_some_and(io_is_environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_anywhere_in_the_chain_is_the_environment() {
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let disk = Error::Bake(BakeError::Disk(ingot::disk::DiskError::Io {
            action: "write",
            offset: 4096,
            source: full(),
        }));
        assert_eq!(exit_code(&disk), EXIT_ENVIRONMENT);
        let read = Error::Bake(BakeError::Read {
            path: "x".into(),
            source: std::io::Error::other(full()),
        });
        assert_eq!(exit_code(&read), EXIT_ENVIRONMENT);
        // Writing is the environment whatever the cause, in every module.
        let denied = || std::io::Error::from_raw_os_error(libc::EACCES);
        for write in [
            Error::Output(OutputError::Write {
                path: "out".into(),
                source: denied(),
            }),
            Error::Build(BuildError::Write {
                path: "out".into(),
                source: denied(),
            }),
            Error::Bake(BakeError::Write {
                path: "out".into(),
                source: denied(),
            }),
            Error::Bake(BakeError::Output(OutputError::Write {
                path: "out".into(),
                source: denied(),
            })),
            Error::Bake(BakeError::Build(BuildError::Write {
                path: "out".into(),
                source: denied(),
            })),
        ] {
            assert_eq!(exit_code(&write), EXIT_ENVIRONMENT, "{write:?}");
        }
        // A file the user named and cannot read is bad input.
        let input = Error::Build(BuildError::Read {
            path: "spec.toml".into(),
            source: denied(),
        });
        assert_eq!(exit_code(&input), 2);
        let too_small = Error::Bake(BakeError::Disk(ingot::disk::DiskError::TooSmall {
            needed: 2,
            given: 1,
        }));
        assert_eq!(exit_code(&too_small), 2);
    }

    #[test]
    fn failed_checks_exit_1_and_signals_128_plus_their_number() {
        let unmet = Error::Bake(BakeError::Install(InstallError::Unmet {
            list: vec!["a needs b".into()],
        }));
        assert_eq!(exit_code(&unmet), 1);
        let refused = Error::Bake(BakeError::Install(InstallError::Refused {
            message: "no".into(),
        }));
        assert_eq!(exit_code(&refused), 2);
        assert_eq!(exit_code(&Error::CheckFailed("mismatch".into())), 1);
        assert_eq!(exit_code(&Error::Usage("--timeout".into())), 2);
        let signal = |signal| Interruption {
            signal,
            committed: false,
            left: Vec::new(),
        };
        assert_eq!(interrupted_exit_code(&signal(libc::SIGINT)), 130);
        assert_eq!(interrupted_exit_code(&signal(libc::SIGTERM)), 143);
        assert_eq!(interrupted_exit_code(&signal(libc::SIGHUP)), 129);
    }

    #[test]
    fn repositories_unreachable_are_the_environment_and_bad_bytes_bad_input() {
        let bake = Error::Bake;
        let unsatisfiable = bake(BakeError::Resolve(ResolveError::Unsatisfiable {
            explanation: "app requires libfoo".into(),
        }));
        assert_eq!(exit_code(&unsatisfiable), 1);
        let unreachable = || RepoError::Unreachable {
            url: "http://127.0.0.1:1/repodata/repomd.xml".into(),
            attempts: 4,
            cause: "connection refused".into(),
        };
        assert_eq!(exit_code(&bake(BakeError::Repo(unreachable()))), 3);
        let all_failed = RepoError::NoWorkingUrl {
            repo: "demo".into(),
            tried: 2,
            last: Box::new(unreachable()),
        };
        assert_eq!(exit_code(&bake(BakeError::Repo(all_failed))), 3);
        let checksum = RepoError::Checksum {
            what: "package `libfoo-1-1.x86_64`".into(),
            url: "http://127.0.0.1:1/libfoo.rpm".into(),
            kind: "sha256",
            expected: "a".repeat(64),
            actual: "b".repeat(64),
        };
        assert_eq!(exit_code(&bake(BakeError::Repo(checksum))), 2);
        let locked = BakeError::Locked {
            path: "web.lock".into(),
            spec: "web.toml".into(),
            missing: true,
        };
        assert_eq!(exit_code(&bake(locked)), 2);
    }
}
