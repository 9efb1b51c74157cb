//! Names and path text, before any tree: why a path does not name what
//! was asked ([`PathError`]), a path's meaningful components, its last
//! name, and what an entry name may be.
//!
//! In: bytes. Out: components, names, errors. Below `tree.rs` and
//! `path.rs`, which both speak of paths; it knows neither.

/// Why a path does not name what was asked. Paths are shown lossily as
/// UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{path}`: no such file or directory in the tree")]
    NotFound { path: String },
    #[error("`{path}`: a component of the path is not a directory")]
    NotADirectory { path: String },
    #[error("`{path}`: too many levels of symbolic links (a loop, or more than 40)")]
    Loop { path: String },
    #[error("`{path}` names no entry (it is empty, `/`, or ends in `..`)")]
    NoName { path: String },
    #[error("`{name}` is not a valid file name (empty, `.`, `..`, or holds `/` or NUL)")]
    BadName { name: String },
    #[error("`{path}` is a directory")]
    IsADirectory { path: String },
    #[error("`{path}` is a directory that is not empty")]
    DirectoryNotEmpty { path: String },
    #[error("invalid node: {reason}")]
    InvalidNode { reason: String },
}

/// Bytes shown as text in messages.
pub(crate) fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The components of `path` that mean something: no empty ones, no `.`.
pub(crate) fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Split `path` into the components before its last name and that name;
/// `None` when there is no last name (empty, `/`, only `.`, or a final
/// `..`).
pub(crate) fn split_last(path: &[u8]) -> Option<(Vec<&[u8]>, &[u8])> {
    let mut comps: Vec<&[u8]> = components(path).collect();
    let last = comps.pop()?;
    if last == b".." {
        return None;
    }
    Some((comps, last))
}

/// A valid entry name: not empty, `.` or `..`, no `/` or NUL.
pub(crate) fn check_name(name: &[u8]) -> Result<(), PathError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(PathError::BadName {
            name: display(name),
        });
    }
    Ok(())
}
