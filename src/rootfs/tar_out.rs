//! Export a tree as a reproducible tarball.
//!
//! In: a tree. Out: a POSIX (ustar + PAX) tar stream whose bytes depend
//! only on the tree: same tree, same bytes, whatever the host's time zone,
//! umask, locale or user.
//!
//! The format, fixed:
//! - entries in [`Tree::walk`] order (`/` first as `./`, then `./usr/`,
//!   `./usr/bin/`, ...; directories end in `/`);
//! - ustar headers: octal fields zero-padded and NUL-terminated, the
//!   checksum as GNU tar writes it (six digits, NUL, space), empty user and
//!   group names (numeric ids only), device fields zero except for devices,
//!   no atime or ctime anywhere;
//! - a PAX extended header (named `././@PaxHeader`, mode 0644, ids and mtime
//!   0) before an entry when it needs one, with its records in a fixed
//!   order: `path` (name over 100 bytes), `linkpath` (over 100 bytes),
//!   `size` (8 GiB or more), `uid`/`gid` (over 2097151), `mtime` (sub-second
//!   or out of the ustar range; the header then holds the whole seconds,
//!   clamped), then `SCHILY.xattr.NAME` per xattr in name order (`%` and `=`
//!   in names escaped as `%25` and `%3D`, as GNU tar does);
//! - a hard-linked file is stored once, at its first path in walk order;
//!   its other paths are link entries to that one (size 0, no xattrs);
//! - a file whose holes add up to at least [`SPARSE_MIN_HOLES`] is written
//!   in GNU tar's PAX sparse format 1.0, the one GNU tar itself writes with
//!   `--sparse --format=pax` (and libarchive, Python's tarfile and Go's
//!   archive/tar read): its PAX header starts with `GNU.sparse.major=1`,
//!   `GNU.sparse.minor=0`, `GNU.sparse.name` (the real name) and
//!   `GNU.sparse.realsize`, before the other records; its ustar name is
//!   `DIR/GNUSparseFile.0/BASE` (GNU tar puts its process id where we put
//!   0), cut to 100 bytes; its data is the map (decimal numbers, one per
//!   line: the count, then offset and length of each data region, and a
//!   last empty region at the file's size when the file ends in a hole, as
//!   GNU tar writes it) padded to a block, then the regions' bytes. Files
//!   with fewer holes are written whole (holes as zeros), so an archive of
//!   an ordinary tree stays plain ustar that any reader understands: the
//!   tree's holes there are mostly the spill store's zero blocks, not
//!   sparse files;
//! - sockets are left out (tar has no type for them; GNU tar skips them
//!   too);
//! - the end: two zero blocks, no padding to a record size.
//!
//! Never: a clock, user, umask or host path is read; a file's contents are
//! held in memory (they are streamed).

use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};

use super::store::{FileData, FileReader};
use super::tree::{Kind, Meta, NodeId, Tree};

const BLOCK: usize = 512;
/// A file is written sparse when its holes add up to this much or more.
pub const SPARSE_MIN_HOLES: u64 = 1 << 20;
/// Largest value in an 8-byte octal field (7 digits).
const MAX_OCTAL_7: u64 = 0o7777777;
/// Largest value in a 12-byte octal field (11 digits).
const MAX_OCTAL_11: u64 = 0o77777777777;

impl Tree {
    /// Write this tree as a reproducible tar stream to `w` (see this
    /// module's doc for the exact format).
    pub fn write_tar(&self, w: impl Write) -> io::Result<()> {
        let mut out = BufWriter::with_capacity(256 * 1024, w);
        let mut first_name: HashMap<NodeId, Vec<u8>> = HashMap::new();
        let mut buf = vec![0u8; 256 * 1024];
        for (path, id) in self.walk() {
            let node = self.node(id);
            let mut name = Vec::with_capacity(path.len() + 2);
            name.push(b'.');
            if id == NodeId::ROOT {
                name.push(b'/');
            } else {
                name.extend_from_slice(&path);
            }
            let mut entry = Entry {
                name,
                link: Vec::new(),
                size: 0,
                typeflag: b'0',
                dev: None,
                meta: &node.meta,
                with_xattrs: true,
                sparse: None,
            };
            match &node.kind {
                Kind::Dir(_) => {
                    entry.typeflag = b'5';
                    if id != NodeId::ROOT {
                        entry.name.push(b'/');
                    }
                }
                Kind::File(data) => {
                    if self.slots[id.index()].links > 1 {
                        if let Some(first) = first_name.get(&id) {
                            entry.typeflag = b'1';
                            entry.link = first.clone();
                            entry.with_xattrs = false;
                        } else {
                            first_name.insert(id, entry.name.clone());
                        }
                    }
                    if entry.typeflag == b'0' {
                        entry.size = data.size;
                        entry.sparse = Sparse::of(data);
                    }
                }
                Kind::Symlink(target) => {
                    entry.typeflag = b'2';
                    entry.link = target.clone();
                }
                Kind::CharDev { major, minor } => {
                    entry.typeflag = b'3';
                    entry.dev = Some((*major, *minor));
                }
                Kind::BlockDev { major, minor } => {
                    entry.typeflag = b'4';
                    entry.dev = Some((*major, *minor));
                }
                Kind::Fifo => entry.typeflag = b'6',
                Kind::Socket => continue,
            }
            entry.write_headers(&mut out)?;
            let stored = entry.stored_size();
            if stored > 0 {
                let mut r = self.open(id)?;
                match &entry.sparse {
                    None => copy(&mut r, &mut out, entry.size, &mut buf, &path)?,
                    Some(sp) => {
                        out.write_all(&sp.map_text)?;
                        for &(off, len) in &sp.regions {
                            r.seek_to(off);
                            copy(&mut r, &mut out, len, &mut buf, &path)?;
                        }
                    }
                }
                write_padding(&mut out, stored)?;
            }
        }
        out.write_all(&[0u8; 2 * BLOCK])?;
        out.flush()
    }
}

/// Copy `len` bytes of a file from `r` to `out`.
fn copy(
    r: &mut FileReader<'_>,
    out: &mut impl Write,
    len: u64,
    buf: &mut [u8],
    path: &[u8],
) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        let want = (buf.len() as u64).min(left) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "`{}` gave fewer bytes than its size",
                    String::from_utf8_lossy(path)
                ),
            ));
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// How a sparse file is stored (PAX sparse format 1.0).
struct Sparse {
    /// Data regions (file offset, length), in order, neighbours merged;
    /// a last empty one at the file's size when it ends in a hole.
    regions: Vec<(u64, u64)>,
    /// The map as it starts the member's data, padded to a block.
    map_text: Vec<u8>,
}

impl Sparse {
    /// The sparse form of `data`, when its holes are worth it.
    fn of(data: &FileData) -> Option<Sparse> {
        if data.size - data.stored_len().min(data.size) < SPARSE_MIN_HOLES {
            return None;
        }
        let mut regions: Vec<(u64, u64)> = Vec::new();
        for e in &data.extents {
            match regions.last_mut() {
                Some((off, len)) if *off + *len == e.file_offset => *len += e.len,
                _ => regions.push((e.file_offset, e.len)),
            }
        }
        if regions
            .last()
            .is_none_or(|(off, len)| off + len < data.size)
        {
            regions.push((data.size, 0));
        }
        let mut map_text = format!("{}\n", regions.len()).into_bytes();
        for (off, len) in &regions {
            map_text.extend_from_slice(format!("{off}\n{len}\n").as_bytes());
        }
        let padded = map_text.len().div_ceil(BLOCK) * BLOCK;
        map_text.resize(padded, 0);
        Some(Sparse { regions, map_text })
    }
}

struct Entry<'a> {
    name: Vec<u8>,
    link: Vec<u8>,
    /// The file's size (its real size when sparse).
    size: u64,
    typeflag: u8,
    dev: Option<(u32, u32)>,
    meta: &'a Meta,
    with_xattrs: bool,
    sparse: Option<Sparse>,
}

impl Entry<'_> {
    /// The bytes the member stores: the map and the data regions when
    /// sparse.
    fn stored_size(&self) -> u64 {
        match &self.sparse {
            None => self.size,
            Some(sp) => sp.map_text.len() as u64 + sp.regions.iter().map(|r| r.1).sum::<u64>(),
        }
    }

    /// The ustar name: `DIR/GNUSparseFile.0/BASE` for a sparse file.
    fn header_name(&self) -> Vec<u8> {
        if self.sparse.is_none() {
            return self.name.clone();
        }
        let cut = self.name.iter().rposition(|b| *b == b'/').unwrap_or(0);
        let mut n = self.name[..cut].to_vec();
        n.extend_from_slice(b"/GNUSparseFile.0");
        n.extend_from_slice(&self.name[cut..]);
        n
    }

    fn write_headers(&self, out: &mut impl Write) -> io::Result<()> {
        let m = self.meta;
        let mut pax: Vec<u8> = Vec::new();
        let stored = self.stored_size();
        if self.sparse.is_some() {
            record(&mut pax, b"GNU.sparse.major", b"1");
            record(&mut pax, b"GNU.sparse.minor", b"0");
            record(&mut pax, b"GNU.sparse.name", &self.name);
            record(
                &mut pax,
                b"GNU.sparse.realsize",
                self.size.to_string().as_bytes(),
            );
        } else if self.name.len() > 100 {
            record(&mut pax, b"path", &self.name);
        }
        if self.link.len() > 100 {
            record(&mut pax, b"linkpath", &self.link);
        }
        if stored > MAX_OCTAL_11 {
            record(&mut pax, b"size", stored.to_string().as_bytes());
        }
        if u64::from(m.uid) > MAX_OCTAL_7 {
            record(&mut pax, b"uid", m.uid.to_string().as_bytes());
        }
        if u64::from(m.gid) > MAX_OCTAL_7 {
            record(&mut pax, b"gid", m.gid.to_string().as_bytes());
        }
        let header_mtime = u64::try_from(m.mtime).unwrap_or(0).min(MAX_OCTAL_11);
        // Nanoseconds past a second cannot be meant; they are clamped.
        let nsec = m.mtime_nsec.min(999_999_999);
        if nsec != 0 || m.mtime < 0 || m.mtime as u64 > MAX_OCTAL_11 {
            record(&mut pax, b"mtime", format_time(m.mtime, nsec).as_bytes());
        }
        if self.with_xattrs {
            for (k, v) in &m.xattrs {
                let mut key = b"SCHILY.xattr.".to_vec();
                for b in k.bytes() {
                    match b {
                        b'%' => key.extend_from_slice(b"%25"),
                        b'=' => key.extend_from_slice(b"%3D"),
                        _ => key.push(b),
                    }
                }
                record(&mut pax, &key, v);
            }
        }
        if !pax.is_empty() {
            let h = ustar_header(
                b"././@PaxHeader",
                0o644,
                0,
                0,
                pax.len() as u64,
                0,
                b'x',
                b"",
                None,
            )?;
            out.write_all(&h)?;
            out.write_all(&pax)?;
            write_padding(out, pax.len() as u64)?;
        }
        let name = self.header_name();
        let h = ustar_header(
            &name[..name.len().min(100)],
            u64::from(m.mode & 0o7777),
            clamp(u64::from(m.uid), MAX_OCTAL_7),
            clamp(u64::from(m.gid), MAX_OCTAL_7),
            clamp(stored, MAX_OCTAL_11),
            header_mtime,
            self.typeflag,
            &self.link[..self.link.len().min(100)],
            self.dev,
        )?;
        out.write_all(&h)
    }
}

/// A value that does not fit is written as 0; a PAX record carries it.
fn clamp(v: u64, max: u64) -> u64 {
    if v > max { 0 } else { v }
}

#[allow(clippy::too_many_arguments)]
fn ustar_header(
    name: &[u8],
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &[u8],
    dev: Option<(u32, u32)>,
) -> io::Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let (major, minor) = dev.unwrap_or((0, 0));
    if u64::from(major) > MAX_OCTAL_7 || u64::from(minor) > MAX_OCTAL_7 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("device number {major}:{minor} does not fit a tar header"),
        ));
    }
    octal(&mut h[329..337], u64::from(major));
    octal(&mut h[337..345], u64::from(minor));
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let digits = format!("{sum:06o}");
    h[148..154].copy_from_slice(digits.as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}

/// `value` as zero-padded octal filling `field` but its last byte (NUL).
/// Callers keep values within the field.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    let s = s.as_bytes();
    field[..width].copy_from_slice(&s[s.len() - width..]);
    field[width] = 0;
}

/// One PAX record: `LEN KEY=VALUE\n` where `LEN` counts itself.
fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', '\n'
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A PAX time: seconds, then `.` and the nanoseconds without trailing
/// zeros when there are any; negative times as a negative decimal.
fn format_time(sec: i64, nsec: u32) -> String {
    if nsec == 0 {
        return sec.to_string();
    }
    let (sign, whole, frac) = if sec < 0 {
        ("-", -(sec + 1), 1_000_000_000 - nsec)
    } else {
        ("", sec, nsec)
    };
    let frac = format!("{frac:09}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
    out.write_all(&[0u8; BLOCK][..pad])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::tar_in::{parse_pax, parse_time};

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [
            0usize, 1, 5, 6, 7, 90, 91, 92, 95, 96, 97, 98, 99, 100, 995, 996, 997,
        ] {
            let mut out = Vec::new();
            let value = vec![b'v'; n];
            record(&mut out, b"k", &value);
            let parsed = parse_pax(&out).unwrap();
            assert_eq!(parsed, vec![(b"k".to_vec(), value)], "value length {n}");
        }
    }

    #[test]
    fn times_round_trip_through_pax_text() {
        for (s, n) in [
            (0i64, 1u32),
            (1795309390, 620478340),
            (-2, 500_000_000),
            (5, 999_999_999),
        ] {
            let text = format_time(s, n);
            assert_eq!(parse_time(text.as_bytes()), Some((s, n)), "{text}");
        }
        assert_eq!(format_time(1, 500_000_000), "1.5");
        assert_eq!(format_time(-2, 500_000_000), "-1.5");
    }

    /// A tree with `/big` (3 MiB: data, a 2 MiB hole, data, ending in a
    /// hole) and `/small` (one zero block between data).
    fn holey_tree() -> Tree {
        let mut t = Tree::new();
        let mut big = vec![0u8; 3 << 20];
        big[..4096].fill(b'a');
        big[(2 << 20) + 4096..(2 << 20) + 8192].fill(b'b');
        let mut small = vec![b'c'; 12288];
        small[4096..8192].fill(0);
        for (name, bytes) in [("/big", big), ("/small", small)] {
            let data = t.spill(&mut &bytes[..]).unwrap();
            t.insert_path(
                name,
                crate::rootfs::Node::file(Meta::new(0o644, 0, 0, 1), data),
            )
            .unwrap();
        }
        t
    }

    #[test]
    fn a_file_with_big_holes_is_a_pax_1_0_sparse_member_and_others_stay_plain() {
        let t = holey_tree();
        let mut out = Vec::new();
        t.write_tar(&mut out).unwrap();
        // `./` first, then the PAX header of `./big`.
        let pax_at = BLOCK;
        assert_eq!(out[pax_at + 156], b'x');
        let expected: &[u8] = b"22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n\
                                25 GNU.sparse.name=./big\n31 GNU.sparse.realsize=3145728\n";
        assert_eq!(&out[pax_at + 124..pax_at + 136], b"00000000144\0");
        assert_eq!(&out[pax_at + BLOCK..pax_at + BLOCK + 100], expected);
        let h = pax_at + 2 * BLOCK;
        assert_eq!(&out[h..h + 22], b"./GNUSparseFile.0/big\0");
        assert_eq!(out[h + 156], b'0');
        // Stored: the map block, then 4 KiB and 4 KiB of data.
        assert_eq!(&out[h + 124..h + 136], b"00000021000\0");
        let map = &out[h + BLOCK..h + 2 * BLOCK];
        let text = b"3\n0\n4096\n2101248\n4096\n3145728\n0\n";
        assert_eq!(&map[..text.len()], text);
        assert!(map[text.len()..].iter().all(|b| *b == 0));
        assert!(
            out[h + 2 * BLOCK..h + 2 * BLOCK + 4096]
                .iter()
                .all(|b| *b == b'a')
        );
        let small = h + 2 * BLOCK + 8192;
        assert_eq!(&out[small..small + 8], b"./small\0");
        assert_eq!(&out[small + 124..small + 136], b"00000030000\0");

        // Read back, the files are the same.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &out).unwrap();
        let mut back = Tree::new();
        back.import_tar(&path).unwrap();
        for name in ["/big", "/small"] {
            let a = t.file_sha256(t.resolve(name, true).unwrap()).unwrap();
            let b = back.file_sha256(back.resolve(name, true).unwrap()).unwrap();
            assert_eq!(a, b, "{name}");
        }
    }

    #[test]
    fn headers_have_fixed_fields() {
        let h = ustar_header(b"./a", 0o4755, 1, 2, 3, 4, b'0', b"", None).unwrap();
        assert_eq!(&h[100..108], b"0004755\0");
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(&h[265..297], &[0u8; 32], "empty user name");
        assert_eq!(&h[329..337], b"0000000\0");
        let parsed = tar::Header::from_byte_slice(&h);
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        assert_eq!(parsed.cksum().unwrap(), sum);
    }
}
