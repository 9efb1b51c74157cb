//! File digests as a package records them: the algorithm its
//! `FILEDIGESTALGO` names (OpenPGP hash algorithm numbers, RFC 4880
//! section 9.4; MD5 when the tag is absent, as in packages older than
//! rpm 4.6), and a streaming hasher for each.
//!
//! In: a header, or an algorithm and bytes. Out: lowercase hex digests as
//! `FILEDIGESTS` holds them. Never: a digest labelled with an algorithm it
//! was not made with.

use std::io::{self, Read};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::header::{Header, tag};

/// A file digest algorithm rpm knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    /// The algorithm of an OpenPGP hash algorithm number.
    pub fn from_pgp(n: u64) -> Option<Algo> {
        Some(match n {
            1 => Algo::Md5,
            2 => Algo::Sha1,
            8 => Algo::Sha256,
            9 => Algo::Sha384,
            10 => Algo::Sha512,
            11 => Algo::Sha224,
            _ => return None,
        })
    }

    /// The algorithm of a package's file digests; an error names an
    /// algorithm number rpm would not know either.
    pub fn of_header(h: &Header) -> Result<Algo, String> {
        match h.int(tag::FILEDIGESTALGO) {
            None => Ok(Algo::Md5),
            Some(n) => {
                Algo::from_pgp(n).ok_or_else(|| format!("unknown file digest algorithm {n}"))
            }
        }
    }

    /// The name `rpm` and ingot's outputs use (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "md5",
            Algo::Sha1 => "sha1",
            Algo::Sha224 => "sha224",
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }

    pub fn hasher(self) -> Hasher {
        Hasher(match self {
            Algo::Md5 => Inner::Md5(Md5::new()),
            Algo::Sha1 => Inner::Sha1(Sha1::new()),
            Algo::Sha224 => Inner::Sha224(Sha224::new()),
            Algo::Sha256 => Inner::Sha256(Sha256::new()),
            Algo::Sha384 => Inner::Sha384(Sha384::new()),
            Algo::Sha512 => Inner::Sha512(Sha512::new()),
        })
    }

    /// The digest of everything `r` yields, lowercase hex.
    pub fn hex_of(self, r: &mut dyn Read) -> io::Result<String> {
        let mut h = self.hasher();
        io::copy(r, &mut h)?;
        Ok(h.finish_hex())
    }
}

enum Inner {
    Md5(Md5),
    Sha1(Sha1),
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// A running digest of one of the [`Algo`]s.
pub struct Hasher(Inner);

impl Hasher {
    pub fn update(&mut self, b: &[u8]) {
        match &mut self.0 {
            Inner::Md5(h) => h.update(b),
            Inner::Sha1(h) => h.update(b),
            Inner::Sha224(h) => h.update(b),
            Inner::Sha256(h) => h.update(b),
            Inner::Sha384(h) => h.update(b),
            Inner::Sha512(h) => h.update(b),
        }
    }

    pub fn finish_hex(self) -> String {
        match self.0 {
            Inner::Md5(h) => hex::encode(h.finalize()),
            Inner::Sha1(h) => hex::encode(h.finalize()),
            Inner::Sha224(h) => hex::encode(h.finalize()),
            Inner::Sha256(h) => hex::encode(h.finalize()),
            Inner::Sha384(h) => hex::encode(h.finalize()),
            Inner::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, algo: Algo) -> Self {
        HashingReader {
            inner,
            hasher: algo.hasher(),
        }
    }

    pub fn finish_hex(self) -> String {
        self.hasher.finish_hex()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_gives_its_known_digest_of_abc() {
        // FIPS 180-4 / RFC 1321 test vectors for "abc".
        let want = [
            (1, "900150983cd24fb0d6963f7d28e17f72"),
            (2, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                11,
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                8,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (n, hex) in want {
            let a = Algo::from_pgp(n).unwrap();
            assert_eq!(a.hex_of(&mut &b"abc"[..]).unwrap(), hex, "{a:?}");
            let mut r = HashingReader::new(&b"abc"[..], a);
            io::copy(&mut r, &mut io::sink()).unwrap();
            assert_eq!(r.finish_hex(), hex);
        }
        assert_eq!(
            Algo::from_pgp(3),
            None,
            "RIPEMD-160 is not an rpm file digest"
        );
    }
}
