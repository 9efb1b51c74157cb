//! Errors of importing a base root filesystem.
//!
//! In: what went wrong, where. Out: a message that names the input (archive
//! or directory) and, when there is one, the member (its name as the
//! archive spells it) or the byte offset of a header that cannot be read;
//! the cause follows as the error's source.

use std::io;
use std::path::PathBuf;

use super::name::PathError;

/// Importing a tarball or a directory failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read `{}`", input.display())]
    Read {
        input: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("`{}`: unreadable archive at byte {offset}", input.display())]
    Archive {
        input: PathBuf,
        offset: u64,
        #[source]
        source: MemberError,
    },

    #[error("`{}`: cannot import member `{member}`", input.display())]
    Member {
        input: PathBuf,
        member: String,
        #[source]
        source: MemberError,
    },
}

impl ImportError {
    /// The member the error is about, if any.
    pub fn member(&self) -> Option<&str> {
        match self {
            ImportError::Member { member, .. } => Some(member),
            _ => None,
        }
    }

    /// The cause, when it is about one member or header.
    pub fn cause(&self) -> Option<&MemberError> {
        match self {
            ImportError::Archive { source, .. } | ImportError::Member { source, .. } => {
                Some(source)
            }
            ImportError::Read { .. } => None,
        }
    }
}

/// What is wrong with one member (or header) of an input.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("the archive ends before this member's data does (truncated archive)")]
    Truncated,

    #[error("bad header: {0}")]
    Header(String),

    #[error("bad PAX extended header: {0}")]
    Pax(String),

    #[error("bad sparse map: {0}")]
    Sparse(String),

    #[error("an extended header of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },

    #[error("the archive holds more than {limit} members, the limit")]
    TooMany { limit: u64 },

    #[error("hard link target `{target}` is not in the tree")]
    HardlinkTargetMissing { target: String },

    #[error("unsupported member type `{0}`")]
    Unsupported(String),

    #[error("extended attribute name `{0}` is not UTF-8")]
    XattrName(String),

    #[error(transparent)]
    Path(#[from] PathError),

    #[error(transparent)]
    Io(#[from] io::Error),
}
