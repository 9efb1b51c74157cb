//! Reading metadata files: decompression by magic number (gzip, xz, zstd,
//! bzip2, or none), and the byte-level guard that keeps a hostile file
//! within [`Limits`] before the XML reader buffers anything.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use super::error::RepoError;

/// Bounds on what repository metadata may make ingot read and hold. Each
/// error names the field it went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of `repomd.xml` and of a mirror list.
    pub max_index: u64,
    /// Bytes of one metadata file once decompressed.
    pub max_decompressed: u64,
    /// Packages in one primary (or filelists).
    pub max_packages: u64,
    /// Bytes of one kept string: a name, a version, a dependency (rich ones
    /// included), a path, a URL.
    pub max_string: usize,
    /// Bytes between two markup characters (`<`, `>`): a text run or a tag
    /// the reader must hold whole, kept or not (a description).
    pub max_token: usize,
    /// Dependency entries plus files of one package.
    pub max_entries: usize,
    /// Nested elements.
    pub max_depth: usize,
}

impl Default for Limits {
    /// Well above Amazon Linux's and Fedora's repositories (the largest
    /// filelists decompress to under 1 GiB; names stay under a few KiB).
    fn default() -> Limits {
        Limits {
            max_index: 16 << 20,
            max_decompressed: 8 << 30,
            max_packages: 2_000_000,
            max_string: crate::spec::dep::MAX_LEN,
            max_token: 1 << 20,
            max_entries: 1 << 20,
            max_depth: 32,
        }
    }
}

/// Which limit the guard tripped (the XML reader only sees an I/O error).
pub(super) type Tripped = Rc<Cell<Option<(&'static str, u64, &'static str)>>>;

/// Counts decompressed bytes and the length of the current run between
/// markup characters; fails the read past either limit.
pub(super) struct Guard<R> {
    inner: R,
    total: u64,
    max_total: u64,
    run: usize,
    max_run: usize,
    pub(super) tripped: Tripped,
}

impl<R: Read> Guard<R> {
    pub(super) fn new(inner: R, limits: &Limits) -> Guard<R> {
        Guard {
            inner,
            total: 0,
            max_total: limits.max_decompressed,
            run: 0,
            max_run: limits.max_token,
            tripped: Rc::new(Cell::new(None)),
        }
    }

    fn trip(&self, limit: &'static str, max: u64, unit: &'static str) -> io::Error {
        self.tripped.set(Some((limit, max, unit)));
        io::Error::other(format!("more than {max} {unit} ({limit})"))
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.max_total {
            return Err(self.trip("max_decompressed", self.max_total, "bytes decompressed"));
        }
        let chunk = &buf[..n];
        let mark = |c: &u8| *c == b'<' || *c == b'>';
        match (chunk.iter().position(mark), chunk.iter().rposition(mark)) {
            (Some(first), Some(last)) => {
                let longest_inside = if n > self.max_run {
                    chunk[first..=last]
                        .split(mark)
                        .map(<[u8]>::len)
                        .max()
                        .unwrap_or(0)
                } else {
                    0
                };
                if self.run + first > self.max_run || longest_inside > self.max_run {
                    return Err(self.trip(
                        "max_token",
                        self.max_run as u64,
                        "bytes without markup",
                    ));
                }
                self.run = n - 1 - last;
            }
            _ => self.run += n,
        }
        if self.run > self.max_run {
            return Err(self.trip("max_token", self.max_run as u64, "bytes without markup"));
        }
        Ok(n)
    }
}

/// How a metadata file is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// `input`, decompressed as its first bytes say.
pub fn decompress<'a, R: Read + Send + 'a>(input: R) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut r = BufReader::with_capacity(64 << 10, input);
    let head = r.fill_buf()?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(r),
        // Without the members' CRC-32: the file's checksum held.
        Compression::Gzip => Box::new(super::gunzip::Gunzip::new(r)?),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
    })
}

/// A stream decompressed on a thread of its own, at most [`AHEAD`]
/// pieces of [`PIECE`] bytes ahead of its reader: inflating a metadata
/// file then overlaps with parsing it. The thread stops at the end of the
/// stream, on an error (handed to the reader), or when the reader is
/// dropped (its next piece finds no one to take it).
pub struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Pieces read, back to the thread to fill again.
    back: std::sync::mpsc::Sender<Vec<u8>>,
    piece: Vec<u8>,
    at: usize,
    ended: bool,
}

/// Bytes of one piece: under glibc's mmap threshold, so pieces reuse the
/// heap rather than map and unmap pages.
pub const PIECE: usize = 64 << 10;
/// Pieces in flight.
pub const AHEAD: usize = 4;

impl ReadAhead {
    pub fn new<R: Read + Send + 'static>(mut input: R) -> ReadAhead {
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
        let (back, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            loop {
                let mut piece = spare.try_recv().unwrap_or_default();
                piece.resize(PIECE, 0);
                let mut len = 0;
                let result = loop {
                    match input.read(&mut piece[len..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            len += n;
                            if len == piece.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                piece.truncate(len);
                let last = len == 0;
                let sent = match result {
                    Ok(()) => tx.send(Ok(piece)),
                    Err(e) => {
                        if len > 0 && tx.send(Ok(piece)).is_err() {
                            return;
                        }
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                // An empty piece marks the end.
                if sent.is_err() || last {
                    return;
                }
            }
        });
        ReadAhead {
            rx,
            back,
            piece: Vec::new(),
            at: 0,
            ended: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(piece)) => {
                    self.ended = piece.is_empty();
                    let done = std::mem::replace(&mut self.piece, piece);
                    // The thread may have ended: then the piece is dropped.
                    let _ = self.back.send(done);
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::other(
                        "the thread decompressing the file stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The error for a read that failed: a limit if the guard tripped, else
/// what the reader said.
pub(super) fn read_error(what: &str, tripped: &Tripped, message: String) -> RepoError {
    match tripped.get() {
        Some((limit, max, unit)) => RepoError::over(what, limit, max, unit),
        None => RepoError::Metadata {
            what: what.to_string(),
            message,
        },
    }
}

/// Everything `r` gives, read `size` bytes at most at a time (for tests
/// of readers that must hand over every byte whatever the reads).
#[cfg(test)]
pub(super) fn read_by(r: &mut impl Read, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; size];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails after handing over `ok` bytes.
    struct FailsAt {
        ok: usize,
        at: usize,
    }

    impl Read for FailsAt {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.ok {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.ok - self.at).min(1000);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.at + i) % 251) as u8;
            }
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_hands_over_every_byte_then_the_end_or_the_error() {
        // Several pieces and a partial one, read in odd sizes.
        let data: Vec<u8> = (0..PIECE * 3 + 777).map(|i| (i % 251) as u8).collect();
        let mut r = ReadAhead::new(std::io::Cursor::new(data.clone()));
        assert_eq!(read_by(&mut r, 5000), data);
        assert_eq!(r.read(&mut [0u8; 5000]).unwrap(), 0);
        // The bytes before an error arrive, then the error itself.
        let mut r = ReadAhead::new(FailsAt {
            ok: PIECE + 10,
            at: 0,
        });
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
        assert_eq!(got.len(), PIECE + 10);
    }

    fn read_all(data: &[u8], limits: &Limits) -> Result<usize, &'static str> {
        let mut g = Guard::new(data, limits);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match g.read(&mut buf) {
                Ok(0) => return Ok(out.len()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => return Err(g.tripped.get().expect("tripped").0),
            }
        }
    }

    #[test]
    fn the_guard_counts_runs_across_reads() {
        let limits = Limits {
            max_token: 10,
            max_decompressed: 100,
            ..Limits::default()
        };
        assert_eq!(read_all(b"<a>0123456789</a><b/>", &limits), Ok(21));
        assert_eq!(read_all(b"<a>0123456789A</a>", &limits), Err("max_token"));
        assert_eq!(read_all(b"<a 0123456789AB>", &limits), Err("max_token"));
        assert_eq!(read_all(&[b'<'; 101], &limits), Err("max_decompressed"));
        // A chunk longer than the limit with a long run inside it.
        let limits = Limits {
            max_token: 3,
            ..Limits::default()
        };
        let mut g = Guard::new(&b"<a>12345</a>"[..], &limits);
        let mut buf = [0u8; 64];
        assert!(g.read(&mut buf).is_err());
    }

    #[test]
    fn compression_is_sniffed() {
        use std::io::Write;
        let text = b"<metadata/>".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let xz = liblzma::encode_all(&text[..], 6).unwrap();
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&text).unwrap();
        let bz = bz.finish().unwrap();
        for (data, kind) in [
            (&gz[..], Compression::Gzip),
            (&xz[..], Compression::Xz),
            (&zst[..], Compression::Zstd),
            (&bz[..], Compression::Bzip2),
            (&text[..], Compression::None),
        ] {
            assert_eq!(Compression::sniff(data), kind);
            let mut out = Vec::new();
            decompress(data).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, text, "{kind:?}");
        }
    }
}
