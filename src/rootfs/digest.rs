//! SHA-256 of an input file, streamed, for `base_sha256` pins.
//!
//! In: a host path. Out: the lowercase hex digest of its bytes. Memory does
//! not grow with the file's size.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::ImportError;

/// The SHA-256 of the file at `path`, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ImportError> {
    let read_err = |source| ImportError::Read {
        input: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(read_err)?;
    Ok(hex::encode(h.finalize()))
}
