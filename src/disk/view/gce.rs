//! Reading a Google Compute Engine image tarball (any tool's, hostile or
//! not): a gzip-compressed tar whose one member is `disk.raw`, as
//! `tar --format=oldgnu -Sczf` or `bake` makes it.
//!
//! A gzip stream cannot be read at random, so the member is extracted once
//! into an unnamed temporary file (in the system's temporary folder, gone
//! when the view is dropped) and read from there as a raw image. Only its
//! non-zero sectors are written: its holes, and zeros stored as data, stay
//! holes.
//!
//! The tar: ustar or GNU headers (checksum checked, unsigned or signed as
//! GNU tar accepts); the first member named exactly `disk.raw`, a regular
//! file (`0`) or an old GNU sparse file (`S`: four map entries in the
//! header, 21 in each extension block that follows, `realsize` the file's
//! size); numbers in octal or GNU's base-256; after the member, only the
//! end-of-archive zero blocks and their padding. A PAX or long-name header
//! is refused by name (Compute Engine wants the old GNU format).
//!
//! Limits (each error names it): a disk of at most
//! [`super::MAX_CAPACITY`]; a sparse map of at most [`MAX_MAP`] entries
//! (64 MiB of map; `bake` writes at most one entry per 128 KiB of disk, so
//! this covers disks of 512 GiB at their most fragmented), sorted, not
//! overlapping, inside the file, adding up to the member's stored size,
//! no extension block without an entry; at
//! most [`MAX_TRAILER`] bytes after the end-of-archive block, all zeros
//! (reading to the end is what checks the gzip CRC). Every read moves
//! forward through the stream: nothing loops.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::{RawView, corrupt};
use crate::disk::{Result, raw};

/// The most sparse map entries read.
pub const MAX_MAP: usize = 1 << 22;
/// The most bytes read after the end-of-archive block (GNU tar pads an
/// archive to a record of 10 KiB).
pub const MAX_TRAILER: u64 = 1 << 20;
const BLOCK: usize = 512;
/// The member Compute Engine reads.
const MEMBER: &[u8] = b"disk.raw";

/// The file read from byte `at` on, without moving its cursor.
struct At<'f> {
    file: &'f File,
    at: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

fn gunzip(file: &File) -> flate2::read::MultiGzDecoder<io::BufReader<At<'_>>> {
    flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(1 << 16, At { file, at: 0 }))
}

/// Whether `file` is gzip holding a tar whose first member is `disk.raw`
/// (the first header only: [`extract`] checks the rest).
pub fn looks_like(file: &File) -> bool {
    let mut head = [0u8; BLOCK];
    let mut r = gunzip(file).take(BLOCK as u64);
    let mut n = 0;
    while n < BLOCK {
        match r.read(&mut head[n..]) {
            Ok(0) | Err(_) => return false,
            Ok(k) => n += k,
        }
    }
    name(&head) == MEMBER && &head[257..262] == b"ustar"
}

fn name(h: &[u8; BLOCK]) -> &[u8] {
    let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    &h[..end]
}

/// A numeric field: octal (spaces and NULs around it), or base-256 when
/// its first byte has the high bit set.
fn number(field: &[u8], what: &str) -> Result<u64> {
    if field[0] & 0x80 != 0 {
        // Base-256, big-endian, the first byte's high bit the marker and
        // its next bit the sign: a negative number (0xff...) or one past
        // 64 bits is out of range, whatever the field's length.
        let out_of_range = || corrupt(format!("the GCE tarball's {what} is out of range"));
        if field[0] & 0x40 != 0 {
            return Err(out_of_range());
        }
        let mut n: u64 = 0;
        for (i, &b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x3f } else { b };
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(out_of_range)?;
        }
        return Ok(n);
    }
    let text = field
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect::<Vec<u8>>();
    let text = std::str::from_utf8(&text).unwrap_or("?");
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8)
        .map_err(|_| corrupt(format!("the GCE tarball's {what} is not an octal number")))
}

/// Fill `buf` from `r`; an early end is corruption naming `what`.
fn fill(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt(format!("the GCE tarball ends inside {what}")),
        _ => corrupt(format!(
            "the GCE tarball's gzip stream is broken in {what}: {e}"
        )),
    })
}

/// `disk.raw` as its header describes it.
struct Member {
    /// Its data regions `(offset, length)`: the sparse map, or one region
    /// for a plain member.
    map: Vec<(u64, u64)>,
    /// Its size on disk.
    real: u64,
    /// The bytes the archive stores.
    stored: u64,
}

/// The member's header (and sparse map), checked.
fn member(r: &mut impl Read) -> Result<Member> {
    let mut h = [0u8; BLOCK];
    fill(r, &mut h, "the first header")?;
    let sum = |b: &[u8; BLOCK], signed: bool| -> i64 {
        b.iter()
            .enumerate()
            .map(|(i, &x)| {
                let x = if (148..156).contains(&i) { b' ' } else { x };
                if signed {
                    i64::from(x as i8)
                } else {
                    i64::from(x)
                }
            })
            .sum()
    };
    let want = number(&h[148..156], "header checksum")? as i64;
    if sum(&h, false) != want && sum(&h, true) != want {
        return Err(corrupt("the GCE tarball's first header has a bad checksum"));
    }
    match h[156] {
        b'x' | b'g' => {
            return Err(corrupt(
                "the GCE tarball starts with a PAX header: Compute Engine wants `disk.raw` in the \
                 old GNU format (tar --format=oldgnu)",
            ));
        }
        b'L' | b'K' => {
            return Err(corrupt(
                "the GCE tarball starts with a GNU long-name header",
            ));
        }
        _ => {}
    }
    if name(&h) != MEMBER {
        return Err(corrupt(format!(
            "the GCE tarball's first member is `{}`, not `disk.raw`",
            String::from_utf8_lossy(name(&h)).escape_debug()
        )));
    }
    let stored = number(&h[124..136], "member size")?;
    let (map, real) = match h[156] {
        b'0' | 0 => (vec![(0, stored)], stored),
        b'S' => sparse_map(r, &h)?,
        t => {
            return Err(corrupt(format!(
                "`disk.raw` in the GCE tarball is of tar type `{}`, not a file",
                char::from(t).escape_debug()
            )));
        }
    };
    if real > super::MAX_CAPACITY {
        return Err(corrupt(format!(
            "a disk of {real} bytes is over the {}-byte limit",
            super::MAX_CAPACITY
        )));
    }
    let mut end = 0u64;
    let mut total = 0u64;
    for &(offset, len) in &map {
        let stop = offset.checked_add(len).filter(|&s| s <= real);
        match stop {
            Some(s) if offset >= end => {
                end = s;
                total += len;
            }
            _ => {
                return Err(corrupt(format!(
                    "the sparse map of `disk.raw` has a region at {offset} of {len} bytes that \
                     overlaps the one before or ends past the {real}-byte file"
                )));
            }
        }
    }
    if total != stored {
        return Err(corrupt(format!(
            "the sparse map of `disk.raw` adds up to {total} bytes, but the member stores \
             {stored}"
        )));
    }
    Ok(Member { map, real, stored })
}

/// An old GNU sparse member's map: the header's entries, then extension
/// blocks while `isextended` says so.
fn sparse_map(r: &mut impl Read, h: &[u8; BLOCK]) -> Result<(Vec<(u64, u64)>, u64)> {
    let mut map = Vec::new();
    let push = |entries: &[u8], map: &mut Vec<(u64, u64)>| -> Result<()> {
        for e in entries.chunks_exact(24) {
            if e[0] == 0 {
                break;
            }
            if map.len() >= MAX_MAP {
                return Err(corrupt(format!(
                    "the sparse map of `disk.raw` has more than {MAX_MAP} entries"
                )));
            }
            map.push((
                number(&e[..12], "sparse offset")?,
                number(&e[12..], "sparse length")?,
            ));
        }
        Ok(())
    };
    push(&h[386..482], &mut map)?;
    let real = number(&h[483..495], "real size")?;
    let mut more = h[482] != 0;
    let mut b = [0u8; BLOCK];
    while more {
        fill(r, &mut b, "the sparse map")?;
        // An empty block adds nothing but another block to read.
        if b[0] == 0 {
            return Err(corrupt(
                "the sparse map of `disk.raw` has an extension block with no entries",
            ));
        }
        push(&b[..504], &mut map)?;
        more = b[504] != 0;
    }
    Ok((map, real))
}

/// Extract `disk.raw` from the GCE tarball `file` into a temporary file
/// and view it as a raw disk.
pub fn extract(file: &File) -> Result<RawView> {
    let mut r = gunzip(file);
    let Member { map, real, stored } = member(&mut r)?;
    let out = tempfile::tempfile()
        .and_then(|f| f.set_len(real).map(|()| f))
        .map_err(crate::disk::io_at("make a file for `disk.raw`", 0))?;
    let mut buf = vec![0u8; 1 << 20];
    for (offset, len) in map {
        let mut done = 0u64;
        while done < len {
            let n = ((len - done) as usize).min(buf.len());
            fill(&mut r, &mut buf[..n], "`disk.raw`")?;
            raw::write_nonzero_at(&out, offset + done, &buf[..n])
                .map_err(crate::disk::io_at("write `disk.raw` out", offset + done))?;
            done += n as u64;
        }
    }
    let pad = (BLOCK as u64 - stored % BLOCK as u64) % BLOCK as u64;
    fill(&mut r, &mut buf[..pad as usize], "`disk.raw`")?;
    let mut end = [0u8; BLOCK];
    fill(&mut r, &mut end, "the end-of-archive block")?;
    if end.iter().any(|&b| b != 0) {
        return Err(corrupt(
            "the GCE tarball holds more than `disk.raw`: Compute Engine wants it alone",
        ));
    }
    // The rest: zeros, and the gzip trailer's CRC checked at its end.
    let mut rest = (&mut r).take(MAX_TRAILER + 1);
    let mut seen = 0u64;
    loop {
        let n = rest
            .read(&mut buf)
            .map_err(|e| corrupt(format!("the GCE tarball's gzip stream is broken: {e}")))?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        if buf[..n].iter().any(|&b| b != 0) || seen > MAX_TRAILER {
            return Err(corrupt(format!(
                "the GCE tarball goes on after `disk.raw` and its end-of-archive block (the \
                 limit is {MAX_TRAILER} bytes of zeros)"
            )));
        }
    }
    RawView::new(out)
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn base_256_numbers_of_any_field_length() {
        // An 8-byte field (mode, uid, gid) in base-256: fuzzing found this
        // panicked (fuzz/regressions/gce/base256-short-field).
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 5], "mode").unwrap(), 5);
        // A 12-byte size field past what octal holds.
        let mut size = [0u8; 12];
        size[0] = 0x80;
        size[4..].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(number(&size, "size").unwrap(), 1 << 40);
        size[0] = 0x81; // 2^88 and more: past 64 bits
        let e = number(&size, "size").unwrap_err().to_string();
        assert!(e.contains("size is out of range"), "{e}");
        // Negative (GNU's 0xff marker).
        let e = number(&[0xff; 8], "uid").unwrap_err().to_string();
        assert!(e.contains("uid is out of range"), "{e}");
        assert_eq!(number(&[0x80], "one byte").unwrap(), 0);
        assert_eq!(number(b"0000644\0", "mode").unwrap(), 0o644);
    }
}
