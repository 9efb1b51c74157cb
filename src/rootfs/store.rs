//! Where file contents live: never in memory.
//!
//! In: byte ranges of host files (a plain `.tar` archive's member data, a
//! base directory's files), registered as sources, and streams copied into
//! the tree's spill store. Out: [`FileData`] (a size and a list of
//! [`Extent`]s) for each regular file, and readers that stream a file's
//! bytes back (`Tree::open`), holes read as zeros. Below `tree.rs`: it
//! knows nothing of nodes.
//!
//! The spill store is one unnamed temporary file (`O_TMPFILE` where the
//! system has it), created on first use in the folder the tree was given or
//! the system's temporary folder, append-only, gone when the tree is dropped
//! or the process dies.
//!
//! **Hole rule**: when a stream is spilled, it is cut at every 4 KiB
//! boundary *of the file* (offsets 0, 4096, 8192, ...; a range that starts
//! or ends between boundaries, as a sparse member's data segment may, is
//! also cut there); each piece that is all zeros is stored as a hole (no
//! extent), everything else is appended to the spill file, and neighbouring
//! pieces are merged into one extent. So a
//! file's bytes always read back the same, and long runs of zeros, sparse or
//! not in the input, cost neither spill space nor memory.
//!
//! Memory: spilling copies through a 64 KiB buffer and batches writes of at
//! most 1 MiB; reading uses the caller's buffer. Neither grows with file
//! size.
//!
//! Never: a source is written; a host source is opened through a symlink
//! (`O_NOFOLLOW`) or when it is no longer a regular file (a FIFO swapped in
//! cannot block a reader: `O_NONBLOCK`); a source that became shorter reads
//! as a short file (it is an error).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Size of the blocks the hole rule looks at.
pub const HOLE_BLOCK: u64 = 4096;
/// Reads while spilling go through a buffer this big.
const SPILL_READ: usize = 64 * 1024;
/// Contiguous data is written to the spill file in batches up to this size.
const SPILL_BATCH: usize = 1024 * 1024;

/// A place file bytes can be read from: the spill store or a host file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub(crate) u32);

impl SourceId {
    /// The tree's spill store.
    pub const SPILL: SourceId = SourceId(0);
}

/// `len` bytes of the file from `file_offset` are the bytes of `source`
/// from `source_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    pub file_offset: u64,
    pub len: u64,
    pub source: SourceId,
    pub source_offset: u64,
}

impl Extent {
    /// The file offset just past this extent.
    pub fn end(&self) -> u64 {
        self.file_offset + self.len
    }
}

/// A regular file's contents by reference: `size` bytes, of which the
/// extents (sorted, non-overlapping, non-empty, within `size`) hold the
/// data; the rest are holes, read as zeros.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileData {
    pub size: u64,
    pub extents: Vec<Extent>,
}

impl FileData {
    /// Bytes actually stored somewhere (the size less the holes).
    pub fn stored_len(&self) -> u64 {
        self.extents.iter().map(|e| e.len).sum()
    }
}

#[derive(Debug)]
enum Source {
    Spill,
    Host(PathBuf),
}

/// The sources of one tree and its spill file.
pub(crate) struct Store {
    sources: Vec<Source>,
    spill_dir: Option<PathBuf>,
    spill: Option<File>,
    spill_len: u64,
}

impl Store {
    pub(crate) fn new(spill_dir: Option<PathBuf>) -> Store {
        Store {
            sources: vec![Source::Spill],
            spill_dir,
            spill: None,
            spill_len: 0,
        }
    }

    pub(crate) fn add_host(&mut self, path: PathBuf) -> SourceId {
        let id = SourceId(u32::try_from(self.sources.len()).expect("more than 4 billion sources"));
        self.sources.push(Source::Host(path));
        id
    }

    /// Is `data` well formed and are its sources ours?
    pub(crate) fn check(&self, data: &FileData) -> Result<(), String> {
        let mut end = 0u64;
        for e in &data.extents {
            if e.len == 0 {
                return Err("an extent is empty".into());
            }
            if e.file_offset < end {
                return Err("extents overlap or are out of order".into());
            }
            end = e
                .file_offset
                .checked_add(e.len)
                .ok_or("an extent ends past 2^64")?;
            if end > data.size {
                return Err("an extent ends past the file's size".into());
            }
            if e.source.0 as usize >= self.sources.len() {
                return Err("an extent names a source of another tree".into());
            }
            if e.source_offset.checked_add(e.len).is_none() {
                return Err("an extent's source range ends past 2^64".into());
            }
        }
        Ok(())
    }

    fn spill_file(&mut self) -> io::Result<&File> {
        if self.spill.is_none() {
            let f = match &self.spill_dir {
                Some(dir) => tempfile::tempfile_in(dir)?,
                None => tempfile::tempfile()?,
            };
            self.spill = Some(f);
        }
        self.spill
            .as_ref()
            .ok_or_else(|| io::Error::other("spill store missing"))
    }

    /// Append `bytes` to the spill file; returns where they start.
    fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let at = self.spill_len;
        self.spill_file()?.write_all_at(bytes, at)?;
        self.spill_len += bytes.len() as u64;
        Ok(at)
    }

    fn open_source(&self, id: SourceId) -> io::Result<SourceFile<'_>> {
        match self.sources.get(id.0 as usize) {
            Some(Source::Spill) => {
                self.spill.as_ref().map(SourceFile::Spill).ok_or_else(|| {
                    io::Error::other("an extent names the spill store, which is empty")
                })
            }
            Some(Source::Host(path)) => open_host(path).map(SourceFile::Host),
            None => Err(io::Error::other("an extent names an unknown source")),
        }
    }

    fn source_name(&self, id: SourceId) -> String {
        match self.sources.get(id.0 as usize) {
            Some(Source::Host(p)) => p.display().to_string(),
            _ => "the spill store".into(),
        }
    }
}

/// Open a host file for reading: not through a symlink, never blocking,
/// and only if it is a regular file.
pub(crate) fn open_host(path: &Path) -> io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open `{}`: {e}", path.display())))?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{}` is no longer a regular file", path.display()),
        ));
    }
    Ok(f)
}

enum SourceFile<'a> {
    Spill(&'a File),
    Host(File),
}

impl SourceFile<'_> {
    fn file(&self) -> &File {
        match self {
            SourceFile::Spill(f) => f,
            SourceFile::Host(f) => f,
        }
    }
}

/// Builds one file's [`FileData`] by spilling data at given offsets,
/// applying the hole rule.
pub(crate) struct SpillWriter<'a> {
    store: &'a mut Store,
    extents: Vec<Extent>,
    /// Data not yet written, which belongs at file offset `pending_at`.
    pending: Vec<u8>,
    pending_at: u64,
    buf: Vec<u8>,
}

impl<'a> SpillWriter<'a> {
    pub(crate) fn new(store: &'a mut Store) -> Self {
        SpillWriter {
            store,
            extents: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            buf: vec![0; SPILL_READ],
        }
    }

    /// Copy up to `len` bytes of `r` to file offset `at` (which must not be
    /// before data already written); returns how many bytes `r` gave
    /// (fewer than `len` only at its end).
    pub(crate) fn write_at(&mut self, at: u64, r: &mut dyn Read, len: u64) -> io::Result<u64> {
        let mut pos = at;
        let end = at.saturating_add(len);
        while pos < end {
            // Fill the whole buffer (short reads are retried), so that the
            // pieces below are whole hole blocks except at the ends of the
            // range.
            let want = ((end - pos).min(SPILL_READ as u64)) as usize;
            let mut got = 0;
            while got < want {
                match r.read(&mut self.buf[got..want]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let mut off = 0usize;
            while off < got {
                let file_off = pos + off as u64;
                let block_end = (file_off / HOLE_BLOCK + 1) * HOLE_BLOCK;
                let n = ((block_end - file_off) as usize).min(got - off);
                self.piece(file_off, off, n)?;
                off += n;
            }
            pos += got as u64;
            if got < want {
                break;
            }
        }
        Ok(pos - at)
    }

    /// Handle `buf[off..off + n]`, which belongs at `file_off` and lies in
    /// one hole block.
    fn piece(&mut self, file_off: u64, off: usize, n: usize) -> io::Result<()> {
        let bytes = &self.buf[off..off + n];
        if is_zero(bytes) {
            return self.flush();
        }
        if !self.pending.is_empty() && self.pending_at + self.pending.len() as u64 != file_off {
            self.flush()?;
        }
        if self.pending.is_empty() {
            self.pending_at = file_off;
        }
        self.pending.extend_from_slice(&self.buf[off..off + n]);
        if self.pending.len() >= SPILL_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let src = self.store.append(&self.pending)?;
        let len = self.pending.len() as u64;
        match self.extents.last_mut() {
            Some(last)
                if last.source == SourceId::SPILL
                    && last.end() == self.pending_at
                    && last.source_offset + last.len == src =>
            {
                last.len += len;
            }
            _ => self.extents.push(Extent {
                file_offset: self.pending_at,
                len,
                source: SourceId::SPILL,
                source_offset: src,
            }),
        }
        self.pending.clear();
        Ok(())
    }

    /// The file, `size` bytes long.
    pub(crate) fn finish(mut self, size: u64) -> io::Result<FileData> {
        self.flush()?;
        Ok(FileData {
            size,
            extents: self.extents,
        })
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(16);
    let tail = chunks.remainder();
    chunks
        .map(|c| {
            let mut w = [0u8; 16];
            w.copy_from_slice(c);
            u128::from_ne_bytes(w)
        })
        .all(|w| w == 0)
        && tail.iter().all(|b| *b == 0)
}

/// Streams one file's bytes from its sources (`Tree::open`).
pub struct FileReader<'a> {
    store: &'a Store,
    data: &'a FileData,
    pos: u64,
    /// Index of the first extent that ends after `pos`.
    next: usize,
    open: Option<(SourceId, SourceFile<'a>)>,
}

impl<'a> FileReader<'a> {
    pub(super) fn new(store: &'a Store, data: &'a FileData) -> Self {
        FileReader {
            store,
            data,
            pos: 0,
            next: 0,
            open: None,
        }
    }

    /// Go on reading from byte `pos` of the file (the end, at most).
    pub fn seek_to(&mut self, pos: u64) {
        self.pos = pos.min(self.data.size);
        self.next = self.data.extents.partition_point(|e| e.end() <= self.pos);
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.data.size || buf.is_empty() {
            return Ok(0);
        }
        let extents = &self.data.extents;
        while self.next < extents.len() && extents[self.next].end() <= self.pos {
            self.next += 1;
        }
        let left = self.data.size - self.pos;
        match extents.get(self.next) {
            Some(e) if e.file_offset <= self.pos => {
                let n = (buf.len() as u64).min(e.end() - self.pos) as usize;
                if self.open.as_ref().is_none_or(|(id, _)| *id != e.source) {
                    self.open = Some((e.source, self.store.open_source(e.source)?));
                }
                let file = match &self.open {
                    Some((_, f)) => f.file(),
                    None => return Err(io::Error::other("source not open")),
                };
                let got =
                    file.read_at(&mut buf[..n], e.source_offset + (self.pos - e.file_offset))?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "`{}` is shorter than when it was imported",
                            self.store.source_name(e.source)
                        ),
                    ));
                }
                self.pos += got as u64;
                Ok(got)
            }
            other => {
                let hole_end = other.map_or(self.data.size, |e| e.file_offset);
                let n = (buf.len() as u64).min(hole_end - self.pos).min(left) as usize;
                buf[..n].fill(0);
                self.pos += n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::{NodeId, Tree};
    use sha2::{Digest, Sha256};

    #[test]
    fn zero_blocks_become_holes_and_bytes_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::with_spill_dir(dir.path());
        let mut bytes = vec![0u8; 5 * 4096 + 100];
        bytes[10] = 1; // block 0: data
        // block 1 and 2: zeros -> hole
        bytes[3 * 4096 + 5] = 7; // block 3: data
        bytes[5 * 4096 + 99] = 9; // short last block: data
        let data = t.spill(&mut &bytes[..]).unwrap();
        assert_eq!(data.size, bytes.len() as u64);
        assert_eq!(
            data.extents
                .iter()
                .map(|e| (e.file_offset, e.len))
                .collect::<Vec<_>>(),
            vec![(0, 4096), (3 * 4096, 4096), (5 * 4096, 100)]
        );
        let id = t
            .insert(
                NodeId::ROOT,
                "f",
                crate::rootfs::Node::file(crate::rootfs::Meta::new(0o644, 0, 0, 0), data),
            )
            .unwrap();
        let mut back = Vec::new();
        t.open(id).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(
            t.file_sha256(id).unwrap(),
            hex::encode(Sha256::digest(&bytes))
        );
    }

    #[test]
    fn all_zero_stream_is_one_hole_and_spills_nothing() {
        let mut t = Tree::new();
        let data = t.spill(&mut io::repeat(0).take(10 * 1024 * 1024)).unwrap();
        assert_eq!(data.size, 10 * 1024 * 1024);
        assert!(data.extents.is_empty());
        assert!(t.store.spill.is_none(), "no spill file for zeros");
    }

    #[test]
    fn contiguous_data_merges_into_one_extent() {
        let mut t = Tree::new();
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251 + 1) as u8).collect();
        let data = t.spill(&mut &bytes[..]).unwrap();
        assert_eq!(data.extents.len(), 1);
        assert_eq!(data.extents[0].len, bytes.len() as u64);
    }

    #[test]
    fn spill_file_lives_in_the_given_folder_and_leaves_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::with_spill_dir(dir.path());
        t.spill(&mut &b"hello"[..]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
