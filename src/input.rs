//! Opening the files a command reads back (`verify`, `inspect`, `diff`,
//! `boot-test`): regular files only, and never blocking.
//!
//! In: a path the user named (or a manifest named). Out: an open [`File`]
//! that is a regular file, or an [`InputError`] saying what the path is
//! instead. A FIFO would block `open` until a writer comes, and
//! `/dev/zero` or a terminal never ends; both are refused before a byte is
//! read: the file is opened with `O_NONBLOCK` (which opening a FIFO
//! honours) and its type checked on the open descriptor, so a path swapped
//! between a check and the open cannot slip through. Symlinks are
//! followed: a user may name a link to an image.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why an input cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file: reading it could block or never end.
    #[error("`{}` is {what}, not a regular file", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    /// Larger than the reader allows.
    #[error("`{}` is {size} bytes, over the {limit}-byte limit for {what}", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: &'static str,
    },
}

/// What a file type is, in words.
pub fn describe(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "a regular file"
    }
}

/// Open `path` for reading if it is a regular file.
pub fn open_regular(path: &Path) -> Result<File, InputError> {
    let open_err = |source| InputError::Open {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(open_err)?;
    let ft = f.metadata().map_err(open_err)?.file_type();
    if !ft.is_file() {
        return Err(InputError::NotRegular {
            path: path.to_path_buf(),
            what: describe(ft),
        });
    }
    Ok(f)
}

/// Read a whole regular file of at most `limit` bytes (`what` names the
/// limit in the error).
pub fn read_small(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    let f = open_regular(path)?;
    let open_err = |source| InputError::Open {
        path: path.to_path_buf(),
        source,
    };
    let size = f.metadata().map_err(open_err)?.len();
    if size > limit {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
            what,
        });
    }
    // Read one byte past the limit: a file that grew since is caught too.
    let mut out = Vec::with_capacity(size as usize);
    f.take(limit + 1).read_to_end(&mut out).map_err(open_err)?;
    if out.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            size: out.len() as u64,
            limit,
            what,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_and_dev_zero_are_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        let mode = rustix::fs::Mode::from_raw_mode(0o600);
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, mode).unwrap();
        let e = open_regular(&fifo).unwrap_err();
        assert!(
            e.to_string().ends_with("is a FIFO, not a regular file"),
            "{e}"
        );
        let e = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let e = open_regular(t.path()).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
    }

    #[test]
    fn read_small_names_the_limit() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_small(&p, 10, "x").unwrap(), b"0123456789");
        let e = read_small(&p, 9, "a manifest").unwrap_err();
        assert!(
            e.to_string()
                .contains("10 bytes, over the 9-byte limit for a manifest"),
            "{e}"
        );
    }
}
