//! Import a tar archive (`.tar`, `.tar.gz`, `.tar.xz`, `.tar.zst`,
//! `.tar.bz2`) into a tree.
//!
//! In: the archive's path. The compression is told by the first bytes, not
//! by the name. Out: every member as a node: mode (setuid, setgid, sticky
//! included), numeric uid/gid (user and group names are ignored), mtime
//! (PAX sub-second times kept), xattrs (PAX `SCHILY.xattr.*`, percent-
//! decoded as GNU tar writes them, and old Red Hat `RHT.security.selinux`),
//! hard links, symlinks, character and block devices, FIFOs, and sparse
//! files (old GNU `S` members and PAX sparse formats 0.0, 0.1 and 1.0).
//!
//! Contents: for an uncompressed archive, member data is referenced in place
//! (extents into the archive, sparse members included: their data blocks
//! are referenced, their holes stay holes); for a compressed archive it is
//! streamed into the spill store, where the hole rule of `store.rs` applies.
//!
//! Hostile input is contained, not refused:
//! - member names are paths inside the tree resolved as under a chroot:
//!   leading `/` and `./` mean the root, `..` at the root stays there, and
//!   symlinks already in the tree are followed inside it (so a member
//!   written through `link -> /` lands under the tree's `/`);
//! - a name that ends in `..`, or names `/` without being a directory, is
//!   an error, as is a symlink loop on the way (ELOOP after 40 hops);
//! - missing parent directories are created 0755, owned by 0:0, with the
//!   member's mtime (a later entry for them sets their real metadata);
//! - a member whose data runs past the end of the archive (or of the
//!   decompressed stream) is an error ([`MemberError::Truncated`]), never a
//!   short file; so is a header with a bad checksum, a hard link to a name
//!   not (yet) in the tree, a directory hard link, an unknown member type,
//!   an extended header over 16 MiB (a claimed size is never trusted for an
//!   allocation), and a name or link target over 64 KiB;
//! - an old-style member whose name ends in `/` is a directory; a blank
//!   numeric header field (uid, gid, mode, mtime) reads as 0;
//! - PAX global headers (`g`) and volume labels are skipped, and so are
//!   `LIBARCHIVE.xattr.*` records (libarchive writes `SCHILY.xattr.*` too).
//!
//! Never: anything is created, read or written on the host but the archive
//! and the spill store.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tar::{GnuExtSparseHeader, GnuSparseHeader, Header};

use super::error::{ImportError, MemberError};
use super::path::{PathError, display};
use super::store::{Extent, FileData, SourceId, SpillWriter};
use super::tree::{Kind, Meta, Node, Tree};
use crate::progress::Task;

const BLOCK: u64 = 512;
/// The largest PAX or GNU long-name header read into memory.
const MAX_EXTENDED: u64 = 16 * 1024 * 1024;
/// The longest member or link name accepted (16 times Linux's `PATH_MAX`).
const MAX_NAME: usize = 64 * 1024;
/// The most entries a sparse map may have.
const MAX_SPARSE_ENTRIES: usize = 1 << 22;
/// The most members an archive may hold: over 100 times a full Amazon
/// Linux 2023 root filesystem, and the tree's memory stays under a few GiB.
pub(crate) const MAX_MEMBERS: u64 = 1 << 22;

/// What the first bytes of an input say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

pub(crate) fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if magic.starts_with(b"BZh") {
        Compression::Bzip2
    } else {
        Compression::None
    }
}

enum Stream {
    /// An uncompressed archive: seekable, data referenced in place.
    Plain {
        r: BufReader<File>,
        len: u64,
        source: SourceId,
    },
    /// A decompressor: read once, data spilled.
    Packed(Box<dyn Read>),
}

/// The archive as a stream of bytes, with the position in it.
struct TarStream {
    s: Stream,
    pos: u64,
    /// Bytes of a compressed archive read from its file.
    stored: Arc<AtomicU64>,
}

/// Counts the bytes read from a compressed archive's file.
struct StoredCount {
    inner: File,
    read: Arc<AtomicU64>,
}

impl Read for StoredCount {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Read for TarStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.s {
            Stream::Plain { r, .. } => r.read(buf)?,
            Stream::Packed(r) => r.read(buf)?,
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl TarStream {
    /// Bytes of the archive's file read so far (as stored).
    fn stored(&self) -> u64 {
        match self.s {
            Stream::Plain { .. } => self.pos,
            Stream::Packed(_) => self.stored.load(Ordering::Relaxed),
        }
    }

    /// Fill `buf` unless the stream ends; returns how much was read.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    fn read_exact_or_truncated(&mut self, buf: &mut [u8]) -> Result<(), MemberError> {
        if self.read_full(buf)? < buf.len() {
            return Err(MemberError::Truncated);
        }
        Ok(())
    }

    /// Move `n` bytes forward; the bytes must be there.
    fn skip(&mut self, n: u64) -> Result<(), MemberError> {
        if n == 0 {
            return Ok(());
        }
        match &mut self.s {
            Stream::Plain { r, len, .. } => {
                let end = self.pos.checked_add(n).ok_or(MemberError::Truncated)?;
                if end > *len {
                    return Err(MemberError::Truncated);
                }
                // Relative, so that what is already buffered stays usable.
                let delta = i64::try_from(n).map_err(|_| MemberError::Truncated)?;
                r.seek_relative(delta)?;
                self.pos = end;
            }
            Stream::Packed(_) => {
                let copied = io::copy(&mut self.by_ref().take(n), &mut io::sink())?;
                if copied < n {
                    return Err(MemberError::Truncated);
                }
            }
        }
        Ok(())
    }

    /// Read `size` bytes of an extended header (and its padding).
    fn read_extended(&mut self, size: u64) -> Result<Vec<u8>, MemberError> {
        if size > MAX_EXTENDED {
            return Err(MemberError::TooLarge {
                size,
                limit: MAX_EXTENDED,
            });
        }
        let mut data = vec![0u8; size as usize];
        self.read_exact_or_truncated(&mut data)?;
        self.skip(padding(size))?;
        Ok(data)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// One PAX record: key and value bytes.
pub(crate) type Record = (Vec<u8>, Vec<u8>);

/// Extension headers seen for the next member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Vec<Record>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_empty()
    }

    /// The last value of `key`, if any and not empty.
    fn pax(&self, key: &str) -> Option<&[u8]> {
        self.pax
            .iter()
            .rev()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.is_empty())
    }
}

impl Tree {
    /// Add every member of the tar archive at `archive` to this tree (see
    /// this module's doc for the rules).
    pub fn import_tar(&mut self, archive: &Path) -> Result<(), ImportError> {
        self.import_tar_limited(archive, MAX_MEMBERS, &Task::none())
    }

    /// [`Tree::import_tar`] with another member limit (tests lower it),
    /// telling `progress` the archive's bytes read, as stored.
    pub(crate) fn import_tar_limited(
        &mut self,
        archive: &Path,
        max_members: u64,
        progress: &Task,
    ) -> Result<(), ImportError> {
        let read_err = |source| ImportError::Read {
            input: archive.to_path_buf(),
            source,
        };
        let mut f = File::open(archive).map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(read_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut magic = [0u8; 6];
        let n = read_up_to(&mut f, &mut magic).map_err(read_err)?;
        f.seek(SeekFrom::Start(0)).map_err(read_err)?;
        // Bytes of a compressed archive read from the file, for progress.
        let read = Arc::new(AtomicU64::new(0));
        let stored = |f: File| StoredCount {
            inner: f,
            read: Arc::clone(&read),
        };
        let s = match detect(&magic[..n]) {
            Compression::None => {
                let canonical = std::fs::canonicalize(archive).map_err(read_err)?;
                Stream::Plain {
                    r: BufReader::with_capacity(64 * 1024, f),
                    len: meta.len(),
                    source: self.add_host_source(canonical),
                }
            }
            Compression::Gzip => Stream::Packed(Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::new(stored(f)),
            ))),
            Compression::Xz => Stream::Packed(Box::new(
                liblzma::read::XzDecoder::new_multi_decoder(BufReader::new(stored(f))),
            )),
            Compression::Zstd => Stream::Packed(Box::new(
                zstd::stream::read::Decoder::new(stored(f)).map_err(read_err)?,
            )),
            Compression::Bzip2 => Stream::Packed(Box::new(bzip2::read::MultiBzDecoder::new(
                BufReader::new(stored(f)),
            ))),
        };
        TarImport {
            tree: self,
            st: TarStream {
                s,
                pos: 0,
                stored: read,
            },
            input: archive,
            max_members,
            progress,
        }
        .run()
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

struct TarImport<'a> {
    tree: &'a mut Tree,
    st: TarStream,
    input: &'a Path,
    max_members: u64,
    progress: &'a Task<'a>,
}

impl TarImport<'_> {
    fn archive_err(&self, offset: u64, source: MemberError) -> ImportError {
        ImportError::Archive {
            input: self.input.to_path_buf(),
            offset,
            source,
        }
    }

    fn run(mut self) -> Result<(), ImportError> {
        let mut pending = Pending::default();
        // Bytes of extended headers waiting for their member.
        let mut pending_bytes = 0u64;
        let mut members = 0u64;
        loop {
            let at = self.st.pos;
            self.progress.reach(self.st.stored());
            let mut block = [0u8; BLOCK as usize];
            let got = self
                .st
                .read_full(&mut block)
                .map_err(|e| self.archive_err(at, e.into()))?;
            let ended = got == 0 || block.iter().all(|b| *b == 0);
            if ended && pending.is_empty() {
                // End of archive: two zero blocks, or (tolerated, as GNU tar
                // does) the end of the file at a header boundary.
                return Ok(());
            }
            if got < block.len() || ended {
                return Err(self.archive_err(at, MemberError::Truncated));
            }
            let header = Header::from_byte_slice(&block);
            let size = check_header(header).map_err(|e| self.archive_err(at, e))?;
            if matches!(block[156], b'x' | b'L' | b'K') {
                // One member's extended headers together stay under the
                // limit one of them has.
                pending_bytes = pending_bytes.saturating_add(size);
                if pending_bytes > MAX_EXTENDED {
                    return Err(self.archive_err(
                        at,
                        MemberError::TooLarge {
                            size: pending_bytes,
                            limit: MAX_EXTENDED,
                        },
                    ));
                }
            }
            let ext = match block[156] {
                b'x' => {
                    let data = self
                        .st
                        .read_extended(size)
                        .map_err(|e| self.archive_err(at, e))?;
                    let records = parse_pax(&data).map_err(|e| self.archive_err(at, e))?;
                    pending.pax.extend(records);
                    true
                }
                b'L' | b'K' => {
                    let mut data = self
                        .st
                        .read_extended(size)
                        .map_err(|e| self.archive_err(at, e))?;
                    if let Some(nul) = data.iter().position(|b| *b == 0) {
                        data.truncate(nul);
                    }
                    if block[156] == b'L' {
                        pending.long_name = Some(data);
                    } else {
                        pending.long_link = Some(data);
                    }
                    true
                }
                b'g' | b'V' => {
                    self.st
                        .skip(size.saturating_add(padding(size)))
                        .map_err(|e| self.archive_err(at, e))?;
                    true
                }
                _ => false,
            };
            if ext {
                continue;
            }
            members += 1;
            if members > self.max_members {
                return Err(self.archive_err(
                    at,
                    MemberError::TooMany {
                        limit: self.max_members,
                    },
                ));
            }
            pending_bytes = 0;
            let ext = std::mem::take(&mut pending);
            let name = member_name(header, &ext);
            self.member(header, &ext, &name, size)
                .map_err(|source| ImportError::Member {
                    input: self.input.to_path_buf(),
                    member: display(&name),
                    source,
                })?;
        }
    }

    /// Import one member whose header has been read; leaves the stream at
    /// the next header.
    fn member(
        &mut self,
        header: &Header,
        ext: &Pending,
        name: &[u8],
        header_size: u64,
    ) -> Result<(), MemberError> {
        let stored = match ext.pax("size") {
            Some(v) => parse_dec(v).ok_or_else(|| MemberError::Pax("bad `size`".into()))?,
            None => header_size,
        };
        if name.len() > MAX_NAME {
            return Err(MemberError::Header(format!(
                "a name of {} bytes is over the {MAX_NAME}-byte limit",
                name.len()
            )));
        }
        let meta = member_meta(header, ext)?;
        let implied = Meta::new(0o755, 0, 0, meta.mtime);
        let flag = header.as_bytes()[156];
        let link = match (ext.pax("linkpath"), &ext.long_link) {
            (Some(l), _) => l.to_vec(),
            (None, Some(l)) => l.clone(),
            (None, None) => header.link_name_bytes().unwrap_or_default().into_owned(),
        };
        if link.len() > MAX_NAME {
            return Err(MemberError::Header(format!(
                "a link target of {} bytes is over the {MAX_NAME}-byte limit",
                link.len()
            )));
        }
        match flag {
            b'0' | 0 if name.ends_with(b"/") => {
                self.st.skip(stored.saturating_add(padding(stored)))?;
                self.tree.place(name, Node::dir(meta), &implied)?;
            }
            b'0' | 0 | b'7' => {
                let data = self.regular(ext, stored)?;
                self.st.skip(padding(stored))?;
                self.tree.place(name, Node::file(meta, data), &implied)?;
            }
            b'S' => {
                let data = self.gnu_sparse(header, stored)?;
                self.st.skip(padding(stored))?;
                self.tree.place(name, Node::file(meta, data), &implied)?;
            }
            b'1' => {
                self.st.skip(stored.saturating_add(padding(stored)))?;
                if link.is_empty() {
                    return Err(MemberError::Header("hard link without a target".into()));
                }
                let target = match self.tree.resolve(&link, false) {
                    Ok(id) => id,
                    Err(PathError::NotFound { .. }) => {
                        return Err(MemberError::HardlinkTargetMissing {
                            target: display(&link),
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                if self.tree.node(target).is_dir() {
                    return Err(PathError::IsADirectory {
                        path: display(&link),
                    }
                    .into());
                }
                self.tree.place_link(name, target, &implied)?;
            }
            b'2' => {
                self.st.skip(stored.saturating_add(padding(stored)))?;
                self.tree.place(name, Node::symlink(meta, link), &implied)?;
            }
            b'3' | b'4' => {
                self.st.skip(stored.saturating_add(padding(stored)))?;
                let major = header
                    .device_major()
                    .map_err(|e| MemberError::Header(e.to_string()))?
                    .unwrap_or(0);
                let minor = header
                    .device_minor()
                    .map_err(|e| MemberError::Header(e.to_string()))?
                    .unwrap_or(0);
                let kind = if flag == b'3' {
                    Kind::CharDev { major, minor }
                } else {
                    Kind::BlockDev { major, minor }
                };
                self.tree.place(name, Node { meta, kind }, &implied)?;
            }
            b'5' | b'D' => {
                self.st.skip(stored.saturating_add(padding(stored)))?;
                self.tree.place(name, Node::dir(meta), &implied)?;
            }
            b'6' => {
                self.st.skip(stored.saturating_add(padding(stored)))?;
                let node = Node {
                    meta,
                    kind: Kind::Fifo,
                };
                self.tree.place(name, node, &implied)?;
            }
            other => {
                return Err(MemberError::Unsupported(
                    String::from_utf8_lossy(&[other]).into_owned(),
                ));
            }
        }
        Ok(())
    }

    /// A regular member's data (`stored` bytes), PAX sparse or not.
    fn regular(&mut self, ext: &Pending, stored: u64) -> Result<FileData, MemberError> {
        let sparse_err = |what: &str| MemberError::Sparse(what.to_string());
        let num = |key: &str| -> Result<u64, MemberError> {
            ext.pax(key)
                .and_then(parse_dec)
                .ok_or_else(|| MemberError::Sparse(format!("`{key}` is missing or not a number")))
        };
        if let Some(major) = ext.pax("GNU.sparse.major") {
            if major != b"1" || ext.pax("GNU.sparse.minor").is_some_and(|m| m != b"0") {
                return Err(sparse_err(
                    "only PAX sparse format 1.0 of the 1.x family is known",
                ));
            }
            let realsize = num("GNU.sparse.realsize")?;
            let (map, map_bytes) = self.v1_map(stored)?;
            return self.segments(&map, stored - map_bytes, realsize);
        }
        if let Some(map) = ext.pax("GNU.sparse.map") {
            let realsize = num("GNU.sparse.size")?;
            let nums = map
                .split(|b| *b == b',')
                .map(parse_dec)
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| sparse_err("`GNU.sparse.map` is not a list of numbers"))?;
            if nums.len() % 2 != 0 || nums.len() / 2 > MAX_SPARSE_ENTRIES {
                return Err(sparse_err("`GNU.sparse.map` has an odd or huge count"));
            }
            let map: Vec<(u64, u64)> = nums.chunks_exact(2).map(|p| (p[0], p[1])).collect();
            return self.segments(&map, stored, realsize);
        }
        if ext.pax("GNU.sparse.offset").is_some() || ext.pax("GNU.sparse.size").is_some() {
            let realsize = num("GNU.sparse.size")?;
            let mut map = Vec::new();
            let mut offset = None;
            for (k, v) in &ext.pax {
                match k.as_slice() {
                    b"GNU.sparse.offset" => {
                        offset = Some(parse_dec(v).ok_or_else(|| sparse_err("bad offset"))?);
                    }
                    b"GNU.sparse.numbytes" => {
                        let len = parse_dec(v).ok_or_else(|| sparse_err("bad numbytes"))?;
                        let off = offset
                            .take()
                            .ok_or_else(|| sparse_err("numbytes without offset"))?;
                        map.push((off, len));
                    }
                    _ => {}
                }
            }
            return self.segments(&map, stored, realsize);
        }
        self.segments(&[(0, stored)], stored, stored)
    }

    /// The sparse map of an old GNU `S` member: in its header, then in
    /// extension blocks that follow it (outside the member's size).
    fn gnu_sparse(&mut self, header: &Header, stored: u64) -> Result<FileData, MemberError> {
        let gnu = header
            .as_gnu()
            .ok_or_else(|| MemberError::Header("sparse member without a GNU header".into()))?;
        let realsize = gnu
            .real_size()
            .map_err(|e| MemberError::Header(e.to_string()))?;
        let mut map = Vec::new();
        add_gnu_entries(&mut map, &gnu.sparse)?;
        let mut extended = gnu.is_extended();
        while extended {
            if map.len() > MAX_SPARSE_ENTRIES {
                return Err(MemberError::Sparse("too many entries".into()));
            }
            let mut ext = GnuExtSparseHeader::new();
            self.st.read_exact_or_truncated(ext.as_mut_bytes())?;
            add_gnu_entries(&mut map, &ext.sparse)?;
            extended = ext.is_extended();
        }
        self.segments(&map, stored, realsize)
    }

    /// The map of PAX sparse format 1.0: decimal numbers one per line at
    /// the start of the data (count, then offset and length pairs), padded
    /// to a block. Returns it and how many bytes it took.
    fn v1_map(&mut self, stored: u64) -> Result<(Vec<(u64, u64)>, u64), MemberError> {
        let mut r = V1Map {
            buf: Vec::new(),
            used: 0,
            stored,
        };
        let count = r.number(&mut self.st)?;
        if count > MAX_SPARSE_ENTRIES as u64 {
            return Err(MemberError::Sparse("too many entries".into()));
        }
        let mut map = Vec::new();
        for _ in 0..count {
            let off = r.number(&mut self.st)?;
            let len = r.number(&mut self.st)?;
            map.push((off, len));
        }
        Ok((map, r.used))
    }

    /// Take `data_len` bytes from the stream as the segments of `map` (file
    /// offset, length) of a `realsize`-byte file.
    fn segments(
        &mut self,
        map: &[(u64, u64)],
        data_len: u64,
        realsize: u64,
    ) -> Result<FileData, MemberError> {
        let mut end = 0u64;
        let mut total = 0u64;
        for &(off, len) in map {
            if off < end {
                return Err(MemberError::Sparse(
                    "segments overlap or are out of order".into(),
                ));
            }
            end = off
                .checked_add(len)
                .filter(|e| *e <= realsize)
                .ok_or_else(|| MemberError::Sparse("a segment ends past the file's size".into()))?;
            total = total
                .checked_add(len)
                .ok_or_else(|| MemberError::Sparse("segments overflow".into()))?;
        }
        if total != data_len {
            return Err(MemberError::Sparse(format!(
                "the map covers {total} bytes but the member stores {data_len}"
            )));
        }
        let plain = match &self.st.s {
            Stream::Plain { len, source, .. } => Some((*len, *source)),
            Stream::Packed(_) => None,
        };
        match plain {
            Some((len, source)) => {
                let available = len.saturating_sub(self.st.pos);
                if data_len > available {
                    return Err(MemberError::Truncated);
                }
                let mut extents: Vec<Extent> = Vec::new();
                let mut at = self.st.pos;
                for &(off, seg) in map.iter().filter(|(_, l)| *l > 0) {
                    match extents.last_mut() {
                        Some(last) if last.end() == off && last.source_offset + last.len == at => {
                            last.len += seg;
                        }
                        _ => extents.push(Extent {
                            file_offset: off,
                            len: seg,
                            source,
                            source_offset: at,
                        }),
                    }
                    at += seg;
                }
                self.st.skip(data_len)?;
                Ok(FileData {
                    size: realsize,
                    extents,
                })
            }
            None => {
                let mut w = SpillWriter::new(&mut self.tree.store);
                for &(off, len) in map {
                    if w.write_at(off, &mut self.st, len)? < len {
                        return Err(MemberError::Truncated);
                    }
                }
                Ok(w.finish(realsize)?)
            }
        }
    }
}

/// Reads the numbers of a format 1.0 sparse map, a block at a time.
struct V1Map {
    buf: Vec<u8>,
    used: u64,
    stored: u64,
}

impl V1Map {
    fn number(&mut self, st: &mut TarStream) -> Result<u64, MemberError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let n = parse_dec(&self.buf[..nl])
                    .ok_or_else(|| MemberError::Sparse("a map entry is not a number".into()))?;
                self.buf.drain(..=nl);
                return Ok(n);
            }
            if self.buf.len() > 20 {
                return Err(MemberError::Sparse("a map entry is too long".into()));
            }
            if self.used + BLOCK > self.stored {
                return Err(MemberError::Sparse(
                    "the map runs past the member's data".into(),
                ));
            }
            let mut block = [0u8; BLOCK as usize];
            st.read_exact_or_truncated(&mut block)?;
            self.used += BLOCK;
            self.buf.extend_from_slice(&block);
        }
    }
}

fn add_gnu_entries(
    map: &mut Vec<(u64, u64)>,
    entries: &[GnuSparseHeader],
) -> Result<(), MemberError> {
    for e in entries.iter().filter(|e| !e.is_empty()) {
        let off = e.offset().map_err(|e| MemberError::Sparse(e.to_string()))?;
        let len = e.length().map_err(|e| MemberError::Sparse(e.to_string()))?;
        map.push((off, len));
    }
    Ok(())
}

/// Checksum and size of a header; the size is what follows it.
fn check_header(header: &Header) -> Result<u64, MemberError> {
    let bytes = header.as_bytes();
    let want = header
        .cksum()
        .map_err(|e| MemberError::Header(format!("unreadable checksum: {e}")))?;
    let (mut unsigned, mut signed) = (0u32, 0i64);
    for (i, b) in bytes.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += u32::from(b);
        signed += i64::from(b as i8);
    }
    if want != unsigned && i64::from(want) != signed {
        return Err(MemberError::Header("checksum mismatch".into()));
    }
    header
        .entry_size()
        .map_err(|e| MemberError::Header(e.to_string()))
}

fn member_name(header: &Header, ext: &Pending) -> Vec<u8> {
    if let Some(n) = ext.pax("GNU.sparse.name").or_else(|| ext.pax("path")) {
        return n.to_vec();
    }
    if let Some(n) = &ext.long_name {
        return n.clone();
    }
    header.path_bytes().into_owned()
}

/// A numeric header field, parsed only when needed; a blank one (all NUL
/// or spaces, as some archivers leave fields a PAX record overrides) is 0.
fn field(
    header: &Header,
    range: std::ops::Range<usize>,
    parse: fn(&Header) -> io::Result<u64>,
) -> Result<u64, MemberError> {
    if header.as_bytes()[range]
        .iter()
        .all(|b| *b == 0 || *b == b' ')
    {
        return Ok(0);
    }
    parse(header).map_err(|e| MemberError::Header(e.to_string()))
}

fn member_meta(header: &Header, ext: &Pending) -> Result<Meta, MemberError> {
    let id = |key: &str, range, parse| -> Result<u32, MemberError> {
        let v = match ext.pax(key) {
            Some(v) => parse_dec(v).ok_or_else(|| MemberError::Pax(format!("bad `{key}`")))?,
            None => field(header, range, parse)?,
        };
        u32::try_from(v).map_err(|_| MemberError::Header(format!("{key} {v} is over 2^32")))
    };
    let uid = id("uid", 108..116, Header::uid)?;
    let gid = id("gid", 116..124, Header::gid)?;
    let (mtime, mtime_nsec) = match ext.pax("mtime") {
        Some(v) => parse_time(v).ok_or_else(|| MemberError::Pax("bad `mtime`".into()))?,
        None => {
            let t = field(header, 136..148, Header::mtime)?;
            let t =
                i64::try_from(t).map_err(|_| MemberError::Header("mtime out of range".into()))?;
            (t, 0)
        }
    };
    let mode = field(header, 100..108, |h| h.mode().map(u64::from))?;
    let mut meta = Meta::new(mode as u32, uid, gid, mtime);
    meta.mtime_nsec = mtime_nsec;
    for (k, v) in &ext.pax {
        let name = if let Some(encoded) = k.strip_prefix(b"SCHILY.xattr.") {
            percent_decode(encoded)
        } else if k == b"RHT.security.selinux" {
            b"security.selinux".to_vec()
        } else {
            continue;
        };
        let name =
            String::from_utf8(name).map_err(|e| MemberError::XattrName(display(e.as_bytes())))?;
        meta.xattrs.insert(name, v.clone());
    }
    Ok(meta)
}

/// PAX records: `LEN KEY=VALUE\n`, `LEN` counting the whole record. Values
/// are bytes (xattr values may hold newlines).
pub(crate) fn parse_pax(data: &[u8]) -> Result<Vec<Record>, MemberError> {
    let bad = |what: &str| MemberError::Pax(what.to_string());
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .take(21)
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("a record has no length"))?;
        let len = parse_dec(&rest[..sp]).ok_or_else(|| bad("a record's length is not a number"))?;
        let len = usize::try_from(len).map_err(|_| bad("a record is too long"))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(bad("a record's length is out of range"));
        }
        let rec = &rest[sp + 1..len];
        let rec = rec
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("a record does not end in a newline"))?;
        let eq = rec
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| bad("a record has no `=`"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// A non-negative decimal number, at most 20 digits.
pub(crate) fn parse_dec(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A PAX time `[-]SECONDS[.FRACTION]` as seconds and nanoseconds
/// (`0..1e9`, so -1.5 is (-2, 500000000)); digits past nanoseconds are
/// dropped.
pub(crate) fn parse_time(v: &[u8]) -> Option<(i64, u32)> {
    let (neg, v) = match v.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (int, frac) = match v.iter().position(|b| *b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    let secs = i64::try_from(parse_dec(int)?).ok()?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nsec = 0u32;
    for i in 0..9 {
        nsec = nsec * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    if !neg {
        Some((secs, nsec))
    } else if nsec == 0 {
        Some((-secs, 0))
    } else {
        Some((-secs - 1, 1_000_000_000 - nsec))
    }
}

/// Undo GNU tar's `%XX` escapes in xattr names (it escapes `%` and `=`).
pub(crate) fn percent_decode(v: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%'
            && i + 2 < v.len()
            && let (Some(h), Some(l)) = (hex(v[i + 1]), hex(v[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_keep_binary_values_with_newlines() {
        let value = b"a\nb=c";
        let mut rec = Vec::new();
        let body = [b"SCHILY.xattr.user.x=".as_slice(), value, b"\n"].concat();
        let len = body.len() + 3; // "NN " with two digits
        rec.extend_from_slice(format!("{len} ").as_bytes());
        rec.extend_from_slice(&body);
        let parsed = parse_pax(&rec).unwrap();
        assert_eq!(
            parsed,
            vec![(b"SCHILY.xattr.user.x".to_vec(), value.to_vec())]
        );
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"9 pathx\n").is_err());
    }

    #[test]
    fn pax_times_parse_to_seconds_and_nanoseconds() {
        assert_eq!(
            parse_time(b"1795309390.62047834"),
            Some((1795309390, 620478340))
        );
        assert_eq!(parse_time(b"12"), Some((12, 0)));
        assert_eq!(parse_time(b"1.1234567899"), Some((1, 123456789)));
        assert_eq!(parse_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_time(b"-3"), Some((-3, 0)));
        assert_eq!(parse_time(b"x"), None);
        assert_eq!(parse_time(b"1.x"), None);
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode(b"user.a%3Db%25c"), b"user.a=b%c");
        assert_eq!(percent_decode(b"user.%zz%"), b"user.%zz%");
    }

    #[test]
    fn compression_is_told_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0, 0, 0]), Compression::Gzip);
        assert_eq!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Compression::Xz);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]), Compression::Zstd);
        assert_eq!(detect(b"BZh91A"), Compression::Bzip2);
        assert_eq!(detect(b"./\0\0\0\0"), Compression::None);
    }

    fn tar_of(path: &Path, members: &[(&str, tar::EntryType, &[u8])], pax: &[(&str, Vec<u8>)]) {
        let mut b = tar::Builder::new(File::create(path).unwrap());
        for (name, ty, data) in members {
            if !pax.is_empty() {
                b.append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))
                    .unwrap();
            }
            let mut h = Header::new_ustar();
            h.set_entry_type(*ty);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap();
    }

    fn import_err(path: &Path, max_members: u64) -> String {
        let mut t = Tree::new();
        match t.import_tar_limited(path, max_members, &Task::none()) {
            Ok(()) => String::new(),
            Err(e) => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    src = c.source();
                }
                s
            }
        }
    }

    #[test]
    fn more_members_than_the_limit_are_refused_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.tar");
        let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
        let members: Vec<(&str, tar::EntryType, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), tar::EntryType::Regular, &b"x"[..]))
            .collect();
        tar_of(&p, &members, &[]);
        assert_eq!(import_err(&p, 11), "");
        let e = import_err(&p, 10);
        assert!(e.contains("more than 10 members, the limit"), "{e}");
    }

    #[test]
    fn extended_headers_of_one_member_together_stay_under_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.tar");
        // Each PAX header alone is under 16 MiB; the tar crate writes one
        // extension header per call, so repeat the call for one member.
        let mut b = tar::Builder::new(File::create(&p).unwrap());
        let value = vec![b'v'; 5 << 20];
        for _ in 0..4 {
            b.append_pax_extensions([("SCHILY.xattr.user.big", value.as_slice())])
                .unwrap();
        }
        let mut h = Header::new_ustar();
        h.set_size(0);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b""[..]).unwrap();
        b.into_inner().unwrap();
        let e = import_err(&p, MAX_MEMBERS);
        assert!(e.contains("over the 16777216-byte limit"), "{e}");
    }
}
