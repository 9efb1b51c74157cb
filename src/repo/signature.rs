//! gpgcheck: a package's OpenPGP header signature checked against the
//! repository's keys, then its digests, as `rpm -K` would with those keys
//! imported.
//!
//! In: armored public keys ([`Keyring`]) and a package file. Out: `Ok`,
//! or [`RepoError::Unsigned`] (no header signature), [`RepoError::UnknownKey`]
//! (signed, but by a key the repository does not name) or
//! [`RepoError::BadSignature`] (a signature or a digest that does not
//! verify). The OpenPGP work is the `rpm` crate's `Verifier` (on the `pgp`
//! crate), the same family as the signer `rpm::build::sign` uses; headers
//! are read with [`crate::rpm::read`], so only the header is held in memory
//! and the payload is streamed for its digest.
//!
//! A header signature covers the main header, which holds the payload's
//! digest (PAYLOADDIGEST) and every file's digest: checking the signature
//! and then the payload digest ties every byte to the key. Legacy
//! signatures over header and payload (RPMSIGTAG_PGP/GPG) are not read: rpm
//! 4.16 and later only make header signatures.

use std::path::Path;

use ::rpm::signature::Verifying as _;
use ::rpm::signature::pgp::Verifier;

use super::error::{RepoError, Result};
use crate::rpm::header::tag;
use crate::rpm::read::{PackageHeaders, verify_digests};

/// A repository's public keys.
#[derive(Debug)]
pub struct Keyring {
    verifier: Verifier,
    /// Where each key came from (for messages).
    pub sources: Vec<String>,
}

impl Keyring {
    /// Keys from armored texts (one or more keys each), named by where
    /// they came from.
    pub fn from_armored(keys: &[(String, Vec<u8>)]) -> Result<Keyring> {
        let mut verifier: Option<Verifier> = None;
        for (name, data) in keys {
            let bad = |source| RepoError::Key {
                source_name: name.clone(),
                source,
            };
            match &mut verifier {
                None => verifier = Some(Verifier::from_asc_bytes(data).map_err(bad)?),
                Some(v) => v.load_from_asc_bytes(data).map_err(bad)?,
            }
        }
        let verifier = verifier.ok_or_else(|| RepoError::Metadata {
            what: "keyring".into(),
            message: "no key".into(),
        })?;
        Ok(Keyring {
            verifier,
            sources: keys.iter().map(|(n, _)| n.clone()).collect(),
        })
    }

    /// Check the package at `path`: one of its header signatures must
    /// verify with one of these keys, then its header and payload digests
    /// must hold. `package` and `repo` name it in errors.
    pub fn verify(&self, path: &Path, package: &str, repo: &str) -> Result<()> {
        let bad = |cause: String| RepoError::BadSignature {
            package: package.to_string(),
            cause,
        };
        let (h, _) = PackageHeaders::open(path).map_err(|e| bad(e.to_string()))?;
        let mut signatures: Vec<Vec<u8>> = Vec::new();
        use base64::Engine as _;
        for s in h.signature.strings(tag::SIG_OPENPGP) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| bad(format!("an OpenPGP signature is not base64: {e}")))?;
            signatures.push(raw);
        }
        for t in [tag::SIG_RSA, tag::SIG_DSA] {
            if let Some(b) = h.signature.bin(t) {
                signatures.push(b);
            }
        }
        if signatures.is_empty() {
            return Err(RepoError::Unsigned {
                package: package.to_string(),
                repo: repo.to_string(),
            });
        }
        let header = h.header.with_magic();
        let mut unknown = None;
        let mut failed = None;
        let mut ok = false;
        for sig in &signatures {
            match self.verifier.verify(&header[..], sig) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e @ ::rpm::Error::KeyNotFoundError { .. }) => unknown = Some(e.to_string()),
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if !ok {
            if let Some(cause) = failed {
                return Err(bad(format!(
                    "the header signature does not verify: {cause}"
                )));
            }
            return Err(RepoError::UnknownKey {
                package: package.to_string(),
                repo: repo.to_string(),
                cause: unknown.unwrap_or_default(),
            });
        }
        verify_digests(path).map_err(|e| bad(e.to_string()))?;
        Ok(())
    }
}
