//! Reading `.rpm` files: lead, signature header, main header, and where the
//! payload starts. Used to install packages and to inspect them.
//!
//! In: any rpm 4.x or 6.x binary package (ingot's own or another tool's).
//! Out: both headers as [`Header`]s and the payload offset. Reads only the
//! headers; the payload is streamed later by whoever installs it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::header::{Header, HeaderError};

pub const LEAD_SIZE: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];

/// The headers of a package file.
#[derive(Debug, Clone)]
pub struct PackageHeaders {
    pub signature: Header,
    pub header: Header,
    /// Byte offset of the main header (after the padded signature).
    pub header_offset: u64,
    /// Byte offset of the compressed payload.
    pub payload_offset: u64,
}

impl PackageHeaders {
    pub fn read(r: &mut impl Read) -> Result<PackageHeaders, HeaderError> {
        let mut lead = [0u8; LEAD_SIZE];
        r.read_exact(&mut lead)
            .map_err(|e| HeaderError(format!("not an rpm package (no lead): {e}")))?;
        if lead[..4] != LEAD_MAGIC {
            return Err(HeaderError("not an rpm package (bad lead magic)".into()));
        }
        let signature = Header::read_with_magic_limited(r, super::header::Limits::SIGNATURE)?;
        let sig_len = 8 + signature.blob().len();
        let pad = (8 - sig_len % 8) % 8;
        let mut skip = [0u8; 8];
        r.read_exact(&mut skip[..pad])
            .map_err(|e| HeaderError(format!("truncated signature padding: {e}")))?;
        let header_offset = (LEAD_SIZE + sig_len + pad) as u64;
        let header = Header::read_with_magic(r)?;
        let payload_offset = header_offset + 8 + header.blob().len() as u64;
        Ok(PackageHeaders {
            signature,
            header,
            header_offset,
            payload_offset,
        })
    }

    pub fn open(path: &Path) -> std::io::Result<(PackageHeaders, File)> {
        let f = File::open(path)?;
        let mut r = BufReader::new(f);
        let h = PackageHeaders::read(&mut r)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut f = r.into_inner();
        f.seek(SeekFrom::Start(h.payload_offset))?;
        Ok((h, f))
    }
}

/// Check a package's digests before anything is installed from it: the
/// header's SHA-256 (or SHA-1) from the signature header, and the payload's
/// digest (PAYLOADDIGEST, SHA-256) or, for old packages, the MD5 over
/// header and payload. Streams the payload; returns the first mismatch.
pub fn verify_digests(path: &Path) -> std::io::Result<PackageHeaders> {
    use sha2::Digest as _;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let (h, mut f) = PackageHeaders::open(path)?;
    use super::header::tag;
    let header_bytes = h.header.with_magic();
    let mut checked_header = false;
    if let Some(want) = h.signature.string(tag::SIG_SHA256) {
        let got = hex::encode(sha2::Sha256::digest(&header_bytes));
        if got != want {
            return Err(invalid(format!(
                "header SHA-256 is {got}, the package says {want}"
            )));
        }
        checked_header = true;
    } else if let Some(want) = h.signature.string(tag::SIG_SHA1) {
        let got = hex::encode(sha1_digest(&header_bytes));
        if got != want {
            return Err(invalid(format!(
                "header SHA-1 is {got}, the package says {want}"
            )));
        }
        checked_header = true;
    }
    let payload_digest = h.header.strings(tag::PAYLOADDIGEST).into_iter().next();
    let algo = h.header.int(tag::PAYLOADDIGESTALGO).unwrap_or(8);
    let md5_want = h.signature.bin(tag::SIG_MD5);
    match (payload_digest, algo) {
        (Some(want), 8) => {
            let mut hasher = sha2::Sha256::new();
            std::io::copy(&mut f, &mut hasher)?;
            let got = hex::encode(hasher.finalize());
            if got != want {
                return Err(invalid(format!(
                    "payload SHA-256 is {got}, the package says {want}"
                )));
            }
        }
        _ => {
            let Some(want) = md5_want else {
                if checked_header {
                    return Err(invalid("the package has no payload digest".into()));
                }
                return Err(invalid("the package carries no digests".into()));
            };
            use md5::Digest as _;
            let mut ctx = md5::Md5::new();
            ctx.update(&header_bytes);
            std::io::copy(&mut f, &mut ctx)?;
            if ctx.finalize()[..] != want[..] {
                return Err(invalid("header+payload MD5 does not match".into()));
            }
        }
    }
    Ok(h)
}

fn sha1_digest(bytes: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(bytes).to_vec()
}
