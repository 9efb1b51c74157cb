//! gzip members, one after another, inflated without their CRC-32.
//!
//! Why our own: a metadata file is read only after its SHA-256 matched
//! the repository's index (or from the cache, where nothing gets in
//! unchecked), so the CRC-32 of its gzip members tells nothing more, and
//! computing it was an eighth of inflating primary. The inflating itself
//! is `flate2`'s (raw deflate); this module reads the member headers and
//! trailers around it (RFC 1952) and still checks each member's length.
//!
//! Limits: a header's optional name and comment are at most [`MAX_FIELD`]
//! bytes; anything that is not a gzip member where one must be (a bad
//! magic, method or flag, a truncated header or trailer, a length that
//! does not match) is an error (`InvalidData` or `UnexpectedEof`).

use std::io::{self, BufRead, Read};

use flate2::bufread::DeflateDecoder;

/// Bytes of a member header's file name or comment.
pub const MAX_FIELD: usize = 64 << 10;

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const RESERVED: u8 = 0xe0;

/// The decompressed bytes of the gzip members `R` holds.
pub struct Gunzip<R: BufRead> {
    state: State<R>,
    /// Bytes of the current member so far (modulo 2^32, as its trailer).
    size: u32,
}

enum State<R: BufRead> {
    /// Inside a member's deflate stream.
    Member(DeflateDecoder<R>),
    /// A member's end or the next header could not be read: every read
    /// after that error is one too, never an early end.
    Broken,
    Done,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {what}"))
}

impl<R: BufRead> Gunzip<R> {
    /// Read the first member's header; an error when `input` does not
    /// start with one.
    pub fn new(mut input: R) -> io::Result<Gunzip<R>> {
        header(&mut input)?;
        Ok(Gunzip {
            state: State::Member(DeflateDecoder::new(input)),
            size: 0,
        })
    }

    /// The current member ended: check its trailer, then start the next
    /// one, if any.
    fn next_member(&mut self) -> io::Result<()> {
        let State::Member(d) = std::mem::replace(&mut self.state, State::Broken) else {
            return Ok(());
        };
        let mut input = d.into_inner();
        let mut trailer = [0u8; 8];
        input.read_exact(&mut trailer)?;
        let isize = u32::from_le_bytes(trailer[4..].try_into().expect("four bytes"));
        if isize != self.size {
            return Err(invalid("a member's length does not match its trailer"));
        }
        self.size = 0;
        if input.fill_buf()?.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        header(&mut input)?;
        self.state = State::Member(DeflateDecoder::new(input));
        Ok(())
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = match &mut self.state {
                State::Member(d) => d.read(buf)?,
                State::Broken => return Err(invalid("the stream broke earlier")),
                State::Done => return Ok(0),
            };
            if n > 0 {
                self.size = self.size.wrapping_add(n as u32);
                return Ok(n);
            }
            self.next_member()?;
        }
    }
}

/// Read one member header (RFC 1952, 2.3.1) from `r`.
fn header<R: BufRead>(r: &mut R) -> io::Result<()> {
    let mut fixed = [0u8; 10];
    r.read_exact(&mut fixed)?;
    if fixed[..2] != [0x1f, 0x8b] {
        return Err(invalid("not a gzip member"));
    }
    if fixed[2] != 8 {
        return Err(invalid("a compression method other than deflate"));
    }
    let flags = fixed[3];
    if flags & RESERVED != 0 {
        return Err(invalid("reserved header flags set"));
    }
    if flags & FEXTRA != 0 {
        let mut len = [0u8; 2];
        r.read_exact(&mut len)?;
        skip(r, u16::from_le_bytes(len) as u64)?;
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            skip_to_nul(r)?;
        }
    }
    if flags & FHCRC != 0 {
        skip(r, 2)?;
    }
    Ok(())
}

fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut r.by_ref().take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Past a zero-terminated field of at most [`MAX_FIELD`] bytes.
fn skip_to_nul<R: BufRead>(r: &mut R) -> io::Result<()> {
    let mut seen = 0usize;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let (used, done) = match memchr::memchr(0, buf) {
            Some(at) => (at + 1, true),
            None => (buf.len(), false),
        };
        r.consume(used);
        seen += used;
        if seen > MAX_FIELD + 1 {
            return Err(invalid("a header field longer than 64 KiB"));
        }
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn ours(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Gunzip::new(input)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn flate2s(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(input).read_to_end(&mut out)?;
        Ok(out)
    }

    /// A member with every optional header field, made by hand around a
    /// raw deflate stream.
    fn member_with_fields(data: &[u8]) -> Vec<u8> {
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        raw.write_all(data).unwrap();
        let raw = raw.finish().unwrap();
        let flags = FHCRC | FEXTRA | FNAME | FCOMMENT;
        let mut m = vec![0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3];
        m.extend_from_slice(&5u16.to_le_bytes());
        m.extend_from_slice(b"ab\0cd");
        m.extend_from_slice(b"primary.xml\0");
        m.extend_from_slice(b"a comment\0");
        let hcrc = crc32fast::hash(&m) as u16;
        m.extend_from_slice(&hcrc.to_le_bytes());
        m.extend_from_slice(&raw);
        m.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m
    }

    #[test]
    fn members_read_as_flate2_reads_them() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut two = gz(&text[..300_000]);
        two.extend(gz(&text[300_000..]));
        let mut three = member_with_fields(b"first ");
        three.extend(gz(b""));
        three.extend(member_with_fields(&text));
        for input in [gz(&text), gz(b""), two, three] {
            assert_eq!(ours(&input).unwrap(), flate2s(&input).unwrap());
        }
        // Read a few bytes at a time, through a small buffer.
        let input = member_with_fields(&text);
        let mut small = Gunzip::new(io::BufReader::with_capacity(7, &input[..])).unwrap();
        assert_eq!(crate::repo::decode::read_by(&mut small, 13), text);
    }

    #[test]
    fn what_is_not_whole_gzip_is_an_error() {
        let good = gz(b"some text, some text, some text");
        // Cut anywhere: an error, never a short answer taken as whole.
        for cut in 0..good.len() {
            assert!(ours(&good[..cut]).is_err(), "cut at {cut} read as whole");
        }
        let mut bad_len = good.clone();
        let n = bad_len.len();
        bad_len[n - 1] ^= 1;
        assert!(ours(&bad_len).is_err());
        // The CRC is not checked: a wrong one reads (the file's SHA-256
        // was checked before).
        let mut bad_crc = good.clone();
        bad_crc[n - 8] ^= 1;
        assert_eq!(ours(&bad_crc).unwrap(), b"some text, some text, some text");
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk after the member");
        assert!(ours(&trailing).is_err());
        // Read again after the error: still an error, not an end.
        let mut r = Gunzip::new(&trailing[..]).unwrap();
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(r.read(&mut [0u8; 16]).is_err(), "an error, then an end");
        for (at, v) in [(0, 0x1e), (2, 7), (3, 0x20)] {
            let mut h = good.clone();
            h[at] = v;
            assert!(ours(&h).is_err(), "byte {at} = {v:#x} taken");
        }
        // A name that never ends, longer than the limit.
        let mut long = vec![0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 3];
        long.extend(std::iter::repeat_n(b'a', MAX_FIELD + 10));
        long.push(0);
        let e = ours(&long).unwrap_err();
        assert!(e.to_string().contains("64 KiB"), "{e}");
    }
}
