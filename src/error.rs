//! ingot's library error: what went wrong, with the context a person needs
//! to act on it, and the exit code it maps to (2 for bad usage or bad input,
//! 1 when a check failed, 3 when the machine failed: see
//! [`Error::environment_failed`]). Printed in one place, by the binary,
//! with its whole chain of causes (the operating system's error last).

use std::error::Error as _;
use std::path::PathBuf;

use crate::spec::SpecError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),

    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Usage(String),

    /// An input that is not a regular file, or too large (exit 2).
    #[error(transparent)]
    Input(#[from] crate::input::InputError),

    /// A manifest that cannot be read (exit 2).
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),

    /// `verify` could not run (exit 2); mismatches are `CheckFailed`.
    #[error(transparent)]
    Verify(#[from] crate::manifest::verify::VerifyError),

    /// The partition table, the ESP, the VMDK or VHD, or reading the image
    /// back for its digests.
    #[error("cannot make the disk image")]
    Disk(#[source] crate::disk::DiskError),

    /// The root filesystem.
    #[error("cannot make the root filesystem")]
    Filesystem(#[source] crate::filesystem::FilesystemError),

    #[error("building the RPM for `{package}` failed")]
    Rpm {
        package: String,
        #[source]
        source: ::rpm::Error,
    },

    #[error("signing key `{path}` cannot be used")]
    SigningKey {
        path: PathBuf,
        #[source]
        source: ::rpm::Error,
    },

    #[error("cannot import the base root filesystem")]
    Base(#[source] Box<crate::rootfs::ImportError>),

    #[error(transparent)]
    Install(#[from] crate::install::InstallError),

    /// `boot-test`: setup problems exit 2, a failed boot test exits 1.
    #[error(transparent)]
    Boot(#[from] crate::boottest::BootError),

    /// A check the user asked for failed (exit 1).
    #[error("{0}")]
    CheckFailed(String),

    #[error("interrupted")]
    Interrupted,
}

/// Exit code of a run the machine failed rather than its input: the
/// output or work folder cannot be written, the disk is full, and the like
/// (see [`Error::environment_failed`]).
pub const EXIT_ENVIRONMENT: u8 = 3;

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        if self.environment_failed() {
            return EXIT_ENVIRONMENT;
        }
        match self {
            Error::Spec(_) | Error::Usage(_) | Error::Read { .. } | Error::SigningKey { .. } => 2,
            Error::Write { .. } | Error::Rpm { .. } => 2,
            Error::Disk(_) | Error::Filesystem(_) => 2,
            Error::Base(_) => 2,
            Error::Input(_) | Error::Manifest(_) | Error::Verify(_) => 2,
            Error::Install(e) => e.exit_code(),
            Error::Boot(e) => e.exit_code(),
            Error::CheckFailed(_) => 1,
            Error::Interrupted => 130,
        }
    }

    /// Whether the environment failed, not the input: writing an output or
    /// work file ([`Error::Write`], whatever the cause: a folder that
    /// cannot be written, permission denied, ...), or an operating-system
    /// error anywhere in the chain that no input causes: no space left,
    /// quota exceeded, read-only filesystem, file too large for the
    /// filesystem, I/O error, out of memory, too many open files.
    pub fn environment_failed(&self) -> bool {
        if matches!(self, Error::Write { .. }) {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self.source();
        while let Some(c) = cause {
            if cause_is_environment(c) {
                return true;
            }
            cause = c.source();
        }
        false
    }

    /// A hint to print after the error chain, if there is one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Spec(e) => e.hint.as_deref(),
            Error::Boot(e) => e.hint(),
            _ => None,
        }
    }
}

/// One link of a chain that says the machine failed: an I/O error (also
/// behind the errors that show one as their own message) or SQLite's
/// "disk full" and "disk I/O error".
fn cause_is_environment(c: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = c.downcast_ref::<std::io::Error>() {
        return io_is_environment(io);
    }
    if let Some(crate::rootfs::MemberError::Io(io)) = c.downcast_ref() {
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
        let disk = Error::Disk(crate::disk::DiskError::Io {
            action: "write",
            offset: 4096,
            source: full(),
        });
        assert_eq!(disk.exit_code(), EXIT_ENVIRONMENT);
        let read = Error::Read {
            path: "x".into(),
            source: std::io::Error::other(full()),
        };
        assert_eq!(read.exit_code(), EXIT_ENVIRONMENT);
        let write = Error::Write {
            path: "out".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(write.exit_code(), EXIT_ENVIRONMENT);
        // A file the user named and cannot read is bad input.
        let input = Error::Read {
            path: "spec.toml".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(input.exit_code(), 2);
        let too_small = Error::Disk(crate::disk::DiskError::TooSmall {
            needed: 2,
            given: 1,
        });
        assert_eq!(too_small.exit_code(), 2);
    }
}
