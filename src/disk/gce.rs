//! Google Compute Engine's import format: the raw disk image as the one
//! file `disk.raw` of a gzip-compressed GNU tar (`NAME-DIGEST.gce.tar.gz`),
//! what `gcloud compute images create --source-uri` takes, and what
//! `tar --format=oldgnu -Sczf` makes of a raw image.
//!
//! In: the image's parts in image order from [`super::digest_raw`]'s pass
//! (workers deflate each part's data on their own), the source date. Out:
//! the `.gce.tar.gz` file:
//!
//! - the tar (GNU tar's "old GNU" format, its manual's "Standard" and
//!   "Sparse Formats" appendices): one member `disk.raw`, type `S`
//!   (sparse), mode 0644, owner `root:root` (0:0), mtime the source date,
//!   magic `ustar  `, its sparse map in the header (four entries) and in
//!   extension blocks (21 entries each) that follow it, `realsize` the
//!   image's size, `size` the bytes stored; the data regions' bytes; then
//!   two zero blocks. Numbers are octal, NUL-terminated, or GNU's base-256
//!   (a first byte of 0x80) when they do not fit, as GNU tar writes them;
//!   the checksum as GNU tar writes it (six digits, NUL, space);
//! - the map: the image is cut into 64 KiB regions, the same wherever it
//!   is made; a region that is all zeros is a hole, the others are data,
//!   adjacent ones merged; a last entry of length 0 at the image's end when
//!   it ends in a hole (GNU tar's own rule). Not where the raw file's holes
//!   are (`SEEK_HOLE`): those depend on the filesystem the bake ran on, and
//!   the bytes must not;
//! - gzip (RFC 1952): a fixed 10-byte header (no name, no time: MTIME 0,
//!   XFL 4 for the fastest level, OS 3), one deflate stream (RFC 1951), the
//!   CRC-32 and length of the tar. The stream is made in pieces, as pigz
//!   makes one: each part of the image is deflated on its own on the pass's
//!   workers, from a fresh state, and ends with a sync flush (an empty
//!   stored block that leaves the stream on a byte boundary), so the pieces
//!   laid end to end are one valid stream; the tar's headers are a piece
//!   before them, the zero blocks the last, final piece. Each piece's
//!   CRC-32 is combined with the others'. Deflate level 1, as the VMDK's
//!   grains (see [`super::vmdk`] for the measured trade-off); the bytes
//!   depend on the deflate implementation (zlib-rs, pinned by Cargo.lock).
//!
//! The map comes first in the file but is known only at the end, so the
//! deflated data waits in an unnamed scratch file in the format's scratch
//! folder (on the outputs' filesystem; never in memory) and is copied into
//! the output after the headers, hashed as it is written: the image is not
//! read twice and nothing is compressed twice.
//!
//! Why our own: the `tar` crate reads old GNU sparse members but does not
//! write them, and a gzip encoder (flate2's `GzEncoder`) deflates on one
//! thread, in order, where this format wants pieces deflated on the
//! pass's workers. Both formats are small and fixed.
//!
//! Memory: the map, 16 bytes per data region (at most one region per
//! 128 KiB of disk), and the pass's parts in flight, each deflated.
//!
//! Never: reads the clock or a random source; depends on the number of
//! worker threads or on the host's filesystem.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

use flate2::{Compress, Compression, FlushCompress};
use sha2::{Digest, Sha256};

use super::format::{self, Encoded, ImageFormat, Made, Part, PartEncoder, RawDone, RawStream};
use super::{DiskError, Result, io_at, raw};

/// The member's name: what Compute Engine looks for.
pub const MEMBER: &str = "disk.raw";
/// Regions of the image judged data or hole as a whole.
const REGION: usize = 64 << 10;
const BLOCK: usize = 512;
/// The fixed deflate level (see the module doc).
const LEVEL: u32 = 1;
/// Sparse map entries in the member's header, and in each extension block.
const HEADER_ENTRIES: usize = 4;
const EXTENSION_ENTRIES: usize = 21;

// A region never straddles two parts.
const _: () = assert!(format::PART_ALIGN.is_multiple_of(REGION as u64));

/// The `.gce.tar.gz` as a disk format of `bake` ([`super::format`]).
pub struct Format {
    out: File,
    /// The deflated data so far, in image order.
    scratch: BufWriter<File>,
    deflated: u64,
    raw_len: u64,
    mtime: u64,
    /// Data regions `(offset, length)`, in order, adjacent ones merged.
    map: Vec<(u64, u64)>,
    /// CRC-32 and length of the data regions' bytes.
    crc: crc32fast::Hasher,
    stored: u64,
    /// Where the next part starts.
    next: u64,
}

impl Format {
    /// Start `out` (emptied first) for a raw image of `cx.raw_len` bytes,
    /// with a scratch file in `cx.scratch`.
    pub fn new(out: File, cx: &format::Context) -> Result<Self> {
        out.set_len(0).map_err(io_at("empty the GCE tarball", 0))?;
        let scratch =
            tempfile::tempfile_in(&cx.scratch).map_err(io_at("make the GCE scratch file", 0))?;
        Ok(Format {
            out,
            scratch: BufWriter::with_capacity(1 << 20, scratch),
            deflated: 0,
            raw_len: cx.raw_len,
            mtime: cx.source_date,
            map: Vec::new(),
            crc: crc32fast::Hasher::new(),
            stored: 0,
            next: 0,
        })
    }
}

/// What a worker makes of a part: its data regions (offsets from the
/// part's start) and their bytes deflated as one sync-flushed piece.
struct Piece {
    /// The part's length.
    len: u64,
    regions: Vec<(u64, u64)>,
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
}

struct Deflater(Compress);

impl PartEncoder for Deflater {
    fn encode(&mut self, offset: u64, bytes: &[u8]) -> Result<Encoded> {
        let z = &mut self.0;
        z.reset();
        let mut p = Piece {
            len: bytes.len() as u64,
            regions: Vec::new(),
            deflated: Vec::with_capacity(bytes.len() / 2 + 1024),
            crc: crc32fast::Hasher::new(),
        };
        let mut at = 0u64;
        for region in bytes.chunks(REGION) {
            let len = region.len() as u64;
            if !raw::is_zero(region) {
                match p.regions.last_mut() {
                    Some((start, n)) if *start + *n == at => *n += len,
                    _ => p.regions.push((at, len)),
                }
                p.crc.update(region);
                deflate(z, region, &mut p.deflated, FlushCompress::None, offset)?;
            }
            at += len;
        }
        if !p.regions.is_empty() {
            deflate(z, &[], &mut p.deflated, FlushCompress::Sync, offset)?;
        }
        Ok(Box::new(p))
    }
}

/// Deflate all of `input` into `out` (grown as needed), then `flush`.
fn deflate(
    z: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
    offset: u64,
) -> Result<()> {
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 << 10));
        }
        let before = z.total_in();
        z.compress_vec(input, out, flush)
            .map_err(|e| DiskError::Io {
                action: "deflate the GCE tarball",
                offset,
                source: std::io::Error::other(e),
            })?;
        input = &input[(z.total_in() - before) as usize..];
        // Done when the input is taken and the output was not filled (a
        // filled output may hold back the rest of a flush).
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

impl RawStream for Format {
    fn encoder(&self) -> Result<Box<dyn PartEncoder>> {
        Ok(Box::new(Deflater(Compress::new(
            Compression::new(LEVEL),
            false,
        ))))
    }

    fn consume(&mut self, offset: u64, part: Part) -> Result<()> {
        if offset != self.next {
            return Err(DiskError::Io {
                action: "write the GCE tarball",
                offset,
                source: std::io::Error::other("a part came out of order"),
            });
        }
        match part {
            Part::Hole { len } => self.next += len,
            Part::Data(e) => {
                let p: Piece = format::take(e)?;
                for &(start, len) in &p.regions {
                    let start = offset + start;
                    match self.map.last_mut() {
                        Some((s, n)) if *s + *n == start => *n += len,
                        _ => self.map.push((start, len)),
                    }
                    self.stored += len;
                }
                self.crc.combine(&p.crc);
                self.scratch
                    .write_all(&p.deflated)
                    .map_err(io_at("write the GCE scratch file", self.deflated))?;
                self.deflated += p.deflated.len() as u64;
                self.next = offset + p.len;
            }
        }
        Ok(())
    }
}

/// The output, written front to back and hashed as it goes.
struct Sink {
    file: File,
    at: u64,
    sha: Sha256,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all_at(buf, self.at)?;
        self.sha.update(buf);
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ImageFormat for Format {
    fn stream(&mut self) -> &mut dyn RawStream {
        self
    }

    fn finish(self: Box<Self>, _raw: &RawDone<'_>) -> Result<Made> {
        let Format {
            out,
            scratch,
            deflated,
            raw_len,
            mtime,
            mut map,
            crc,
            stored,
            next,
        } = *self;
        if next != raw_len {
            return Err(DiskError::Io {
                action: "write the GCE tarball",
                offset: next,
                source: std::io::Error::other("the pass ended before the image did"),
            });
        }
        if map.last().is_none_or(|&(s, n)| s + n < raw_len) {
            map.push((raw_len, 0));
        }
        let headers = member_headers(&map, stored, raw_len, mtime);
        let mut tail = vec![0u8; (BLOCK - (stored % BLOCK as u64) as usize) % BLOCK];
        tail.extend_from_slice(&[0u8; 2 * BLOCK]);

        let werr = io_at("write the GCE tarball", 0);
        let mut w = BufWriter::with_capacity(
            1 << 20,
            Sink {
                file: out,
                at: 0,
                sha: Sha256::new(),
            },
        );
        // RFC 1952 §2.3: ID1 ID2 CM FLG MTIME(4) XFL OS.
        let gzip_header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3];
        let mut z = Compress::new(Compression::new(LEVEL), false);
        let mut piece = Vec::new();
        deflate(&mut z, &headers, &mut piece, FlushCompress::Sync, 0)?;
        w.write_all(&gzip_header)
            .and_then(|()| w.write_all(&piece))
            .map_err(werr)?;

        let scratch = scratch
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_at("write the GCE scratch file", deflated))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < deflated {
            let n = ((deflated - at) as usize).min(buf.len());
            scratch
                .read_exact_at(&mut buf[..n], at)
                .map_err(io_at("read the GCE scratch file", at))?;
            w.write_all(&buf[..n])
                .map_err(io_at("write the GCE tarball", at))?;
            at += n as u64;
        }

        let mut z = Compress::new(Compression::new(LEVEL), false);
        piece.clear();
        deflate(&mut z, &tail, &mut piece, FlushCompress::Finish, 0)?;
        let mut all = crc32fast::Hasher::new();
        all.update(&headers);
        all.combine(&crc);
        all.update(&tail);
        let isize = (headers.len() as u64 + stored + tail.len() as u64) as u32;
        w.write_all(&piece)
            .and_then(|()| w.write_all(&all.finalize().to_le_bytes()))
            .and_then(|()| w.write_all(&isize.to_le_bytes()))
            .map_err(io_at("write the GCE tarball", 0))?;
        let sink = w
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_at("write the GCE tarball", 0))?;
        Ok(Made {
            size: sink.at,
            sha256: sink.sha.finalize().into(),
        })
    }
}

/// The member's header block and the sparse map's extension blocks.
fn member_headers(map: &[(u64, u64)], stored: u64, real: u64, mtime: u64) -> Vec<u8> {
    let mut h = [0u8; BLOCK];
    h[..MEMBER.len()].copy_from_slice(MEMBER.as_bytes());
    number(&mut h[100..108], 0o644);
    number(&mut h[108..116], 0);
    number(&mut h[116..124], 0);
    number(&mut h[124..136], stored);
    number(&mut h[136..148], mtime);
    h[156] = b'S';
    // The old GNU magic: "ustar " then version " \0".
    h[257..265].copy_from_slice(b"ustar  \0");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    let (first, rest) = map.split_at(map.len().min(HEADER_ENTRIES));
    for (i, &(offset, len)) in first.iter().enumerate() {
        let at = 386 + 24 * i;
        number(&mut h[at..at + 12], offset);
        number(&mut h[at + 12..at + 24], len);
    }
    h[482] = u8::from(!rest.is_empty());
    number(&mut h[483..495], real);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';

    let mut out = h.to_vec();
    let mut blocks = rest.chunks(EXTENSION_ENTRIES).peekable();
    while let Some(entries) = blocks.next() {
        let mut b = [0u8; BLOCK];
        for (i, &(offset, len)) in entries.iter().enumerate() {
            let at = 24 * i;
            number(&mut b[at..at + 12], offset);
            number(&mut b[at + 12..at + 24], len);
        }
        b[504] = u8::from(blocks.peek().is_some());
        out.extend_from_slice(&b);
    }
    out
}

/// `value` in a numeric field: zero-padded octal and a NUL when it fits,
/// else GNU's base-256 (0x80, then the value big-endian).
fn number(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    if width >= 22 || value < 1 << (3 * width) {
        let s = format!("{value:0width$o}");
        field[..width].copy_from_slice(s.as_bytes());
        field[width] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let n = field.len();
        field[n - 8..].copy_from_slice(&value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_octal_until_they_do_not_fit() {
        let mut f = [0xffu8; 12];
        number(&mut f, 0o644);
        assert_eq!(&f, b"00000000644\0");
        number(&mut f, (1 << 33) - 1);
        assert_eq!(&f, b"77777777777\0");
        number(&mut f, 1 << 33);
        assert_eq!(f, [0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
        let mut m = [0u8; 8];
        number(&mut m, 0o644);
        assert_eq!(&m, b"0000644\0");
    }

    #[test]
    fn the_map_fills_the_header_then_extension_blocks() {
        let map: Vec<(u64, u64)> = (0..30).map(|i| (i * 1000, 10)).collect();
        let h = member_headers(&map, 300, 40_000, 7);
        // 4 in the header, 21 in the first extension, 5 in the second.
        assert_eq!(h.len(), 3 * BLOCK);
        assert_eq!(h[482], 1);
        assert_eq!(h[BLOCK + 504], 1);
        assert_eq!(h[2 * BLOCK + 504], 0);
        assert_eq!(&h[2 * BLOCK..2 * BLOCK + 12], b"00000060650\0"); // 25 * 1000
        let t = tar::Header::from_byte_slice(&h[..BLOCK]);
        assert_eq!(t.entry_type(), tar::EntryType::GNUSparse);
        assert_eq!(t.path().unwrap().to_str(), Some(MEMBER));
        assert_eq!(t.mtime().unwrap(), 7);
        assert_eq!(t.cksum().unwrap(), {
            let mut c = h[..BLOCK].to_vec();
            c[148..156].fill(b' ');
            c.iter().map(|&b| u32::from(b)).sum::<u32>()
        });
    }
}
