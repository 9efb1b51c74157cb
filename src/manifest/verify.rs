//! `ingot verify`: recompute every output's digest and compare with the
//! manifest.
//!
//! In: a manifest file. Out: one result per output (ok, mismatch with both
//! digests, or missing), read from the manifest's own folder. Streams every
//! file; never changes anything.

use std::path::Path;

use serde::Serialize;

use super::Manifest;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Check {
    Ok {
        file: String,
        sha256: String,
    },
    Mismatch {
        file: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
    Missing {
        file: String,
    },
    /// A FIFO, a device, a folder: not read.
    NotRegular {
        file: String,
        what: String,
    },
}

impl Check {
    pub fn is_ok(&self) -> bool {
        matches!(self, Check::Ok { .. })
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Ok { file, .. } => write!(f, "{file}: OK"),
            Check::Mismatch {
                file,
                expected,
                actual,
                ..
            } => write!(
                f,
                "{file}: MISMATCH (manifest says sha256 {expected}, the file has {actual})"
            ),
            Check::Missing { file } => write!(f, "{file}: MISSING"),
            Check::NotRegular { file, what } => {
                write!(f, "{file}: NOT A REGULAR FILE ({what}; not read)")
            }
        }
    }
}

/// Why `verify` could not run (bad input: exit 2), as opposed to an
/// output that does not match (a [`Check`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Manifest(#[from] super::ManifestError),

    #[error("`{}` names no outputs: there is nothing to verify", path.display())]
    NoOutputs { path: std::path::PathBuf },

    #[error("cannot read the output `{}`", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Check every output the manifest at `path` names. The manifest is
/// checked whole before any output is read: a manifest of another version,
/// or one with no outputs, is an error, not an empty success. An output
/// that is not a regular file (a FIFO, `/dev/zero`) is not read: it fails
/// its check as [`Check::NotRegular`].
pub fn verify(path: &Path) -> Result<(Manifest, Vec<Check>), VerifyError> {
    let m = super::load(path)?;
    if m.outputs.is_empty() {
        return Err(VerifyError::NoOutputs {
            path: path.to_path_buf(),
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for o in &m.outputs {
        // Names are plain file names; refuse anything that walks elsewhere.
        if o.file.contains('/') || o.file == ".." || o.file == "." || o.file.is_empty() {
            out.push(Check::Missing {
                file: o.file.clone(),
            });
            continue;
        }
        let p = dir.join(&o.file);
        let f = match crate::input::open_regular(&p) {
            Ok(f) => f,
            Err(crate::input::InputError::NotRegular { what, .. }) => {
                out.push(Check::NotRegular {
                    file: o.file.clone(),
                    what: what.to_string(),
                });
                continue;
            }
            Err(_) => {
                out.push(Check::Missing {
                    file: o.file.clone(),
                });
                continue;
            }
        };
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        // At most one byte more than the manifest says: a file that grows
        // while it is read cannot keep verify reading.
        let size = std::io::copy(
            &mut std::io::Read::take(f, o.size.saturating_add(1)),
            &mut h,
        )
        .map_err(|source| VerifyError::Read {
            path: p.clone(),
            source,
        })?;
        let actual = hex::encode(h.finalize());
        if actual == o.sha256 && size == o.size {
            out.push(Check::Ok {
                file: o.file.clone(),
                sha256: actual,
            });
        } else {
            out.push(Check::Mismatch {
                file: o.file.clone(),
                expected: o.sha256.clone(),
                actual,
                expected_size: o.size,
                actual_size: size,
            });
        }
    }
    Ok((m, out))
}
