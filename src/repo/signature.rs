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
//! repo_gpgcheck: [`Keyring::verify_detached`] checks a detached
//! signature (`repomd.xml.asc`: ASCII-armored as `gpg --detach-sign
//! --armor` writes it, or binary) over the exact bytes of `repomd.xml`,
//! with the same verifier. The armor (RFC 4880 §6: base64 between the
//! `BEGIN`/`END PGP SIGNATURE` lines, its CRC-24 checked when given) and
//! the split into signature packets (§4.2 headers) are done here: the
//! verifier reads one binary packet at a time, and a file may hold several
//! signatures (one per key), of which one verifying is enough, as with
//! gpgme. No other OpenPGP crate is needed. Limits: [`MAX_DETACHED`] bytes,
//! [`MAX_SIGNATURES`] signatures.
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

/// Bytes of a detached signature file (one signature is a few hundred).
pub const MAX_DETACHED: u64 = 64 << 10;
/// Signature packets read from one detached signature file.
pub const MAX_SIGNATURES: usize = 16;

/// Why a detached signature was refused (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detached {
    /// Not armor or OpenPGP packets, or no signature in it.
    Unreadable(String),
    /// No signature in it is by a key of the keyring.
    UnknownKey(String),
    /// A signature by one of the keys that does not verify.
    Bad(String),
}

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

    /// Check `sig` as a detached signature over `data`: one of its
    /// signatures must verify with one of these keys.
    pub fn verify_detached(&self, data: &[u8], sig: &[u8]) -> std::result::Result<(), Detached> {
        let binary = dearmor(sig).map_err(Detached::Unreadable)?;
        let packets = signature_packets(&binary).map_err(Detached::Unreadable)?;
        if packets.is_empty() {
            return Err(Detached::Unreadable("it holds no signature".into()));
        }
        let (mut unknown, mut failed) = (None, None);
        for p in packets {
            match self.verifier.verify(data, p) {
                Ok(()) => return Ok(()),
                Err(e @ ::rpm::Error::KeyNotFoundError { .. }) => unknown = Some(e.to_string()),
                Err(e) => failed = Some(e.to_string()),
            }
        }
        Err(match failed {
            Some(cause) => Detached::Bad(cause),
            None => Detached::UnknownKey(unknown.unwrap_or_default()),
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

const BEGIN: &str = "-----BEGIN PGP SIGNATURE-----";
const END: &str = "-----END PGP SIGNATURE-----";

/// The binary OpenPGP data of a signature file: the bytes as they are
/// when they start with a packet header (its high bit set), else the
/// armored blocks' contents, one after the other.
fn dearmor(sig: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if sig.first().is_some_and(|b| b & 0x80 != 0) {
        return Ok(sig.to_vec());
    }
    let text = std::str::from_utf8(sig)
        .map_err(|_| "it is neither OpenPGP packets nor ASCII armor".to_string())?;
    let mut lines = text.lines().map(str::trim);
    let mut out = Vec::new();
    let mut blocks = 0;
    while lines.by_ref().any(|l| l == BEGIN) {
        blocks += 1;
        out.extend(armor_block(&mut lines)?);
    }
    if blocks == 0 {
        return Err(format!("no `{BEGIN}` line"));
    }
    Ok(out)
}

/// One armored block's data, from the line after `BEGIN` to `END`.
fn armor_block<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
) -> std::result::Result<Vec<u8>, String> {
    use base64::Engine as _;
    let mut body = String::new();
    let mut crc = None;
    let mut headers = true;
    for l in lines.by_ref() {
        if l == END {
            let data = base64::engine::general_purpose::STANDARD
                .decode(&body)
                .map_err(|e| format!("the armor is not base64: {e}"))?;
            if let Some(c) = crc {
                let want = base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .map_err(|e| format!("the armor's checksum is not base64: {e}"))?;
                if want[..] != crc24(&data).to_be_bytes()[1..] {
                    return Err("the armor's CRC-24 checksum does not match".into());
                }
            }
            return Ok(data);
        }
        if headers && l.contains(": ") {
            continue;
        }
        headers = false;
        if l.is_empty() {
            continue;
        }
        match l.strip_prefix('=') {
            Some(c) if l.len() == 5 => crc = Some(c),
            _ => body.push_str(l),
        }
    }
    Err(format!("no `{END}` line"))
}

/// RFC 4880's CRC-24 of the armor.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xB7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= 0x186_4CFB;
            }
        }
    }
    crc & 0xFF_FFFF
}

/// The signature packets (tag 2), each whole (header and body), of a run
/// of OpenPGP packets; other packets are skipped.
fn signature_packets(mut data: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tag, len) = packet_header(data)?;
        let (packet, rest) = data.split_at(len);
        if tag == 2 {
            if out.len() == MAX_SIGNATURES {
                return Err(format!(
                    "more than {MAX_SIGNATURES} signatures (MAX_SIGNATURES)"
                ));
            }
            out.push(packet);
        }
        data = rest;
    }
    Ok(out)
}

/// The tag and the whole length (header included) of the packet `data`
/// starts with.
fn packet_header(data: &[u8]) -> std::result::Result<(u8, usize), String> {
    let cut = || "an OpenPGP packet is cut short".to_string();
    let first = data[0];
    if first & 0x80 == 0 {
        return Err(format!(
            "byte {first:#04x} does not start an OpenPGP packet"
        ));
    }
    let byte = |i: usize| data.get(i).copied().map(usize::from).ok_or_else(cut);
    let (tag, header, body) = if first & 0x40 != 0 {
        let tag = first & 0x3f;
        match byte(1)? {
            n @ 0..192 => (tag, 2, n),
            n @ 192..224 => (tag, 3, ((n - 192) << 8) + byte(2)? + 192),
            255 => (
                tag,
                6,
                (byte(2)? << 24) | (byte(3)? << 16) | (byte(4)? << 8) | byte(5)?,
            ),
            _ => return Err("an OpenPGP packet with partial lengths".into()),
        }
    } else {
        let tag = (first >> 2) & 0x0f;
        match first & 3 {
            0 => (tag, 2, byte(1)?),
            1 => (tag, 3, (byte(1)? << 8) | byte(2)?),
            2 => (
                tag,
                5,
                (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?,
            ),
            _ => (tag, 1, data.len() - 1),
        }
    };
    let len = header + body;
    if len > data.len() {
        return Err(cut());
    }
    Ok((tag, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_of_rfc_4880() {
        // The CRC-24 of nothing is its initial value; of "123456789",
        // the check value of the OpenPGP CRC-24.
        assert_eq!(crc24(b""), 0xB7_04CE);
        assert_eq!(crc24(b"123456789"), 0x21_CF02);
    }

    #[test]
    fn armor_and_packets_are_read_and_bad_ones_refused() {
        use base64::Engine as _;
        // Two packets: a signature (new format, tag 2) of 3 bytes, and a
        // marker (old format, tag 10, one length byte) of 3 bytes.
        let data = [0xC2, 3, 1, 2, 3, 0xA8, 3, b'P', b'G', b'P'];
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let crc =
            base64::engine::general_purpose::STANDARD.encode(&crc24(&data).to_be_bytes()[1..]);
        let armored = format!("{BEGIN}\nComment: x\n\n{b64}\n={crc}\n{END}\n");
        assert_eq!(dearmor(armored.as_bytes()).unwrap(), data);
        assert_eq!(dearmor(&data).unwrap(), data, "binary stays as it is");
        let packets = signature_packets(&data).unwrap();
        assert_eq!(packets, [&data[..5]]);

        let bad_crc = format!("{BEGIN}\n\n{b64}\n=AAAA\n{END}\n");
        assert!(dearmor(bad_crc.as_bytes()).unwrap_err().contains("CRC-24"));
        assert!(dearmor(b"hello").unwrap_err().contains("BEGIN"));
        let open = format!("{BEGIN}\n\n{b64}\n");
        assert!(dearmor(open.as_bytes()).unwrap_err().contains("END"));
        assert!(
            signature_packets(&[0xC2, 9, 1])
                .unwrap_err()
                .contains("cut short")
        );
        assert!(
            signature_packets(&[0x02])
                .unwrap_err()
                .contains("does not start")
        );
        // Every cut of the armor and of the packets: an error or fewer
        // packets, never a panic.
        for n in 0..armored.len() {
            let _ = dearmor(&armored.as_bytes()[..n]);
        }
        for n in 1..data.len() {
            let _ = signature_packets(&data[..n]);
        }
        for header in [[0xC2, 0xFF, 0xFF], [0xC2, 0xC5, 0x01], [0x8A, 0xFF, 0x00]] {
            assert!(signature_packets(&header).is_err(), "{header:x?}");
        }
        let many: Vec<u8> = [0xC2, 1, 0].repeat(MAX_SIGNATURES + 1);
        assert!(
            signature_packets(&many)
                .unwrap_err()
                .contains("MAX_SIGNATURES")
        );
    }
}
