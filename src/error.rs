//! ingot's library error: what went wrong, with the context a person needs
//! to act on it, and the exit code it maps to (2 for bad usage or bad input,
//! 1 when a check failed). Printed in one place, by the binary.

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

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Spec(_) | Error::Usage(_) | Error::Read { .. } | Error::SigningKey { .. } => 2,
            Error::Write { .. } | Error::Rpm { .. } => 2,
            Error::Base(_) => 2,
            Error::Input(_) | Error::Manifest(_) | Error::Verify(_) => 2,
            Error::Install(e) => e.exit_code(),
            Error::Boot(e) => e.exit_code(),
            Error::CheckFailed(_) => 1,
            Error::Interrupted => 130,
        }
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
