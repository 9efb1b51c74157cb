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
        }
    }
}

/// Check every output the manifest at `path` names.
pub fn verify(path: &Path) -> std::io::Result<(Manifest, Vec<Check>)> {
    let text = std::fs::read_to_string(path)?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an ingot manifest: {e}"),
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for o in &m.outputs {
        // Names are plain file names; refuse anything that walks elsewhere.
        if o.file.contains('/') || o.file == ".." {
            out.push(Check::Missing {
                file: o.file.clone(),
            });
            continue;
        }
        let p = dir.join(&o.file);
        match std::fs::File::open(&p) {
            Err(_) => out.push(Check::Missing {
                file: o.file.clone(),
            }),
            Ok(mut f) => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                let size = std::io::copy(&mut f, &mut h)?;
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
        }
    }
    Ok((m, out))
}
