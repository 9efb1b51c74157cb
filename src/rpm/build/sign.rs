//! Steps 2 and 7 of a build: the signing key, and the finished package.
//!
//! In: the path of an ASCII-armored OpenPGP secret key ([`load_key`], run
//! first so a bad key fails before any work); at the end, every entry of
//! the main header, the written [`Payload`], the source date and the
//! [`Target`]. Out: the main header encoded, its OpenPGP signature entries
//! (RPMSIGTAG_OPENPGP and the legacy RSA or DSA tag, as the `rpm` crate
//! picks them for the key's algorithm) when there is a key, and the
//! package file [`writer::assemble`] lays out: lead, signature header,
//! header, payload.
//!
//! The signature's time is the source date, never the clock, so a signed
//! package is as reproducible as an unsigned one. The key is read once and
//! never written anywhere.

use std::path::{Path, PathBuf};

use super::Target;
use crate::error::{Error, Result};
use crate::rpm::header::{self, NewEntry, Value, tag};
use crate::rpm::writer::{self, Payload, Written};
use crate::spec::package::PackageSpec;

/// A secret key, ready to sign.
pub(super) struct Key {
    /// Where it was read from, for messages.
    path: PathBuf,
    signer: ::rpm::signature::pgp::Signer,
}

/// Read and parse the key at `path`, if any.
pub(super) fn load_key(path: Option<&Path>) -> Result<Option<Key>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let armored = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let signer = ::rpm::signature::pgp::Signer::from_asc_bytes(&armored).map_err(|source| {
        Error::SigningKey {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(Some(Key {
        path: path.to_path_buf(),
        signer,
    }))
}

/// Encode `header`, sign it with `key` at `time` if there is one, and
/// write the package to `target`.
pub(super) fn assemble(
    spec: &PackageSpec,
    header: Vec<NewEntry>,
    payload: Payload,
    key: Option<&Key>,
    time: u32,
    target: Target,
) -> Result<Written> {
    let blob = header::encode_header(header, tag::HEADERIMMUTABLE).map_err(|e| {
        Error::Usage(format!(
            "the header of `{}` cannot be written: {e}",
            spec.name
        ))
    })?;
    let signatures = match key {
        None => Vec::new(),
        Some(key) => sign(&key.signer, &writer::header_bytes(&blob), time).map_err(|source| {
            Error::SigningKey {
                path: key.path.clone(),
                source,
            }
        })?,
    };
    writer::assemble(&spec.name, &blob, payload, signatures, target.file).map_err(|source| {
        Error::Write {
            path: target.path.to_path_buf(),
            source,
        }
    })
}

/// The signature header's OpenPGP entries for `header` (with magic):
/// RPMSIGTAG_OPENPGP and the legacy RSA or DSA tag, as the `rpm` crate
/// picks them for the key's algorithm.
fn sign(
    signer: &::rpm::signature::pgp::Signer,
    header: &[u8],
    time: u32,
) -> std::result::Result<Vec<NewEntry>, ::rpm::Error> {
    use ::rpm::signature::Signing;
    let sig = signer.sign(header, ::rpm::Timestamp::from(time))?;
    let h = ::rpm::SignatureHeaderBuilder::new()
        .format(::rpm::RpmFormat::V4)
        .reserved_space(None)
        .add_openpgp_signature(sig)
        .build()?;
    let mut out = Vec::new();
    for (t, data) in h.get_all_entries()? {
        let value = match data {
            ::rpm::IndexData::StringArray(v) => Value::StringArray(v),
            ::rpm::IndexData::Bin(b) => Value::Bin(b),
            ::rpm::IndexData::StringTag(s) => Value::String(s),
            _ => continue,
        };
        if t != tag::HEADERSIGNATURES {
            out.push(NewEntry { tag: t, value });
        }
    }
    Ok(out)
}
