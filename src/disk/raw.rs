//! Raw disk files: sparse, written with positioned writes, read as a stream.
//!
//! In: a path and a size, or an open raw file. Out: a sparse file of that
//! size ([`create`]), writes that leave zero sectors as holes
//! ([`write_nonzero_at`]), a chunked reader that reports holes without
//! reading them ([`Chunks`]), and the image's SHA-256 ([`sha256`]).
//!
//! Never: holds more than one chunk of a disk in memory, or writes zeros
//! into a fresh file (a fresh file already reads as zeros, and writing them
//! would allocate blocks the holes save). Everything uses positioned I/O
//! (`pread`/`pwrite`); [`Chunks`] asks the kernel where data is with
//! `lseek(SEEK_DATA/SEEK_HOLE)` ([`crate::sparse`]), which moves the file's
//! cursor and nothing else.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::SECTOR;

/// Create (or truncate) `path` as a sparse file of `size` bytes, open for
/// reading and writing. No block is allocated until something is written.
pub fn create(path: &Path, size: u64) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.set_len(size)?;
    Ok(f)
}

/// Write `buf` at `offset`, skipping every 512-byte piece (counted from the
/// start of `buf`) that is all zeros, so a fresh sparse file keeps its holes
/// there. The target range must already read as zeros.
pub fn write_nonzero_at(file: &File, offset: u64, buf: &[u8]) -> io::Result<()> {
    let piece = SECTOR as usize;
    let mut run_start: Option<usize> = None;
    let mut at = 0;
    while at < buf.len() {
        let end = (at + piece).min(buf.len());
        let zero = is_zero(&buf[at..end]);
        match (zero, run_start) {
            (false, None) => run_start = Some(at),
            (true, Some(s)) => {
                file.write_all_at(&buf[s..at], offset + s as u64)?;
                run_start = None;
            }
            _ => {}
        }
        at = end;
    }
    if let Some(s) = run_start {
        file.write_all_at(&buf[s..], offset + s as u64)?;
    }
    Ok(())
}

/// True when every byte is zero.
pub fn is_zero(buf: &[u8]) -> bool {
    let words = buf.chunks_exact(16);
    let tail = words.remainder();
    words
        .map(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])))
        .all(|w| w == 0)
        && tail.iter().all(|&b| b == 0)
}

/// One piece of a file, in order: a hole (reads as zeros; nothing was read)
/// or the bytes read.
pub enum Chunk<'a> {
    Hole { offset: u64, len: u64 },
    Data { offset: u64, bytes: &'a [u8] },
}

impl Chunk<'_> {
    fn span(&self) -> Span {
        Span {
            offset: self.offset(),
            len: self.len(),
            data: matches!(self, Chunk::Data { .. }),
        }
    }

    pub fn offset(&self) -> u64 {
        match self {
            Chunk::Hole { offset, .. } | Chunk::Data { offset, .. } => *offset,
        }
    }
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Hole { len, .. } => *len,
            Chunk::Data { bytes, .. } => bytes.len() as u64,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a chunk is, and whether it was read (into the front of a buffer).
#[derive(Clone, Copy)]
struct Span {
    offset: u64,
    len: u64,
    data: bool,
}

impl Span {
    fn chunk(self, buf: &[u8]) -> Chunk<'_> {
        let Span { offset, len, data } = self;
        if data {
            Chunk::Data {
                offset,
                bytes: &buf[..len as usize],
            }
        } else {
            Chunk::Hole { offset, len }
        }
    }
}

/// Reads a file front to back in chunks of a fixed size (the last one may be
/// shorter). A chunk that lies wholly inside a hole is reported as
/// [`Chunk::Hole`] without a read; any other chunk is read (it may still
/// hold zeros: callers that skip zeros check with [`is_zero`]).
pub struct Chunks<'f> {
    file: &'f File,
    len: u64,
    pos: u64,
    chunk: usize,
    /// The buffer [`Chunks::next_chunk`] reads into (empty until then).
    buf: Vec<u8>,
    /// The data extent at or after `pos` that the kernel last reported:
    /// bytes in `[data_start, data_end)` may be non-zero; everything before
    /// `data_start` (back to `pos`) is a hole.
    data_start: u64,
    data_end: u64,
}

impl<'f> Chunks<'f> {
    pub fn new(file: &'f File, chunk_size: usize) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Chunks {
            file,
            len,
            pos: 0,
            chunk: chunk_size.max(1),
            buf: Vec::new(),
            data_start: 0,
            data_end: 0,
        })
    }

    /// The file's length when the reader was made.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Where the next chunk starts, and where it ends.
    pub fn next_range(&self) -> (u64, u64) {
        (self.pos, (self.pos + self.chunk as u64).min(self.len))
    }

    /// Forget where the kernel said data and holes are: for a file still
    /// being written, where a hole reported earlier may have been filled
    /// since.
    pub fn forget_extents(&mut self) {
        self.data_start = 0;
        self.data_end = 0;
    }

    /// The next chunk, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk<'_>>> {
        let mut buf = std::mem::take(&mut self.buf);
        let next = self.next_into(&mut buf).map(|c| c.map(|c| c.span()));
        self.buf = buf;
        Ok(next?.map(|span| span.chunk(&self.buf)))
    }

    /// The next chunk read into `buf` instead of the reader's own buffer
    /// (a hole leaves `buf` alone), for callers that hand chunks to other
    /// threads. `buf` grows to the chunk size once and stays that long;
    /// data chunks are `buf[..len]`.
    pub fn next_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> io::Result<Option<Chunk<'b>>> {
        if buf.len() < self.chunk {
            buf.resize(self.chunk, 0);
        }
        Ok(self.step(buf)?.map(|span| span.chunk(buf)))
    }

    /// Advance by one chunk, reading a data chunk into the front of `buf`
    /// (at least a chunk long).
    fn step(&mut self, buf: &mut [u8]) -> io::Result<Option<Span>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let offset = self.pos;
        let n = (self.chunk as u64).min(self.len - offset);
        if offset >= self.data_end {
            self.find_data(offset)?;
        }
        self.pos += n;
        let data = offset + n > self.data_start;
        if data {
            self.file.read_exact_at(&mut buf[..n as usize], offset)?;
        }
        Ok(Some(Span {
            offset,
            len: n,
            data,
        }))
    }

    /// Ask the kernel for the next data extent at or after `from`. Where the
    /// filesystem cannot say, everything counts as data.
    fn find_data(&mut self, from: u64) -> io::Result<()> {
        match crate::sparse::next_data(self.file, from) {
            Ok(Some(data)) => {
                self.data_start = data.start;
                self.data_end = data.end.max(data.start + 1);
            }
            // No data after `from`: the rest is one hole.
            Ok(None) => {
                self.data_start = self.len;
                self.data_end = u64::MAX;
            }
            Err(_) => {
                self.data_start = from;
                self.data_end = u64::MAX;
            }
        }
        Ok(())
    }
}

/// How far a file that is being written is final, for a reader that
/// follows the writer: the writer raises it, the reader waits for it.
#[derive(Debug, Default)]
pub struct Watermark {
    state: std::sync::Mutex<Mark>,
    moved: std::sync::Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct Mark {
    at: u64,
    done: bool,
    failed: bool,
    /// The mark a reader saw when it last went to sleep in `wait_for`,
    /// while it sleeps.
    asleep_at: Option<u64>,
}

/// The writer a [`Watermark`] follows stopped before it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterFailed;

impl Watermark {
    pub fn new() -> Self {
        Self::default()
    }

    /// A watermark for a file that is already written.
    pub fn finished() -> Self {
        let w = Self::new();
        w.finish();
        w
    }

    fn update(&self, f: impl FnOnce(&mut Mark)) {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m);
        self.moved.notify_all();
    }

    /// No byte below `at` changes any more.
    pub fn raise(&self, at: u64) {
        self.update(|m| m.at = m.at.max(at));
    }

    /// The whole file is final.
    pub fn finish(&self) {
        self.update(|m| m.done = true);
    }

    /// The writer stopped early: readers give up.
    pub fn fail(&self) {
        self.update(|m| m.failed = true);
    }

    /// Wait until bytes below `end` are final.
    pub fn wait_for(&self, end: u64) -> Result<(), WriterFailed> {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if m.failed {
                return Err(WriterFailed);
            }
            if m.done || m.at >= end {
                return Ok(());
            }
            m.asleep_at = Some(m.at);
            m = self.moved.wait(m).unwrap_or_else(|p| p.into_inner());
            m.asleep_at = None;
        }
    }

    /// Whether a reader is asleep in [`Watermark::wait_for`], having seen
    /// the mark at `at` or above: it has taken everything final below `at`.
    /// For tests that let a reader catch up with a writer before it goes on.
    pub fn reader_waits_at(&self, at: u64) -> bool {
        let m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        m.asleep_at.is_some_and(|seen| seen >= at)
    }

    /// Whether the whole file is final.
    pub fn is_finished(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).done
    }
}

/// The SHA-256 of the whole file, streamed (holes hash as the zeros they
/// read as, without reading them).
pub fn sha256(file: &File) -> io::Result<[u8; 32]> {
    const CHUNK: usize = 4 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut h = Sha256::new();
    let mut chunks = Chunks::new(file, CHUNK)?;
    while let Some(c) = chunks.next_chunk()? {
        match c {
            Chunk::Hole { len, .. } => h.update(&zeros[..len as usize]),
            Chunk::Data { bytes, .. } => h.update(bytes),
        }
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_nonzero_at_leaves_zero_sectors_unwritten() {
        let dir = tempfile::tempdir().unwrap();
        let f = create(&dir.path().join("r"), 8 << 20).unwrap();
        let mut buf = vec![0u8; 4 << 20];
        buf[3] = 1;
        buf[(3 << 20) + 700] = 2;
        write_nonzero_at(&f, 1 << 20, &buf).unwrap();
        let mut back = vec![0u8; 8 << 20];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(back[(1 << 20) + 3], 1);
        assert_eq!(back[(4 << 20) + 700], 2);
        assert_eq!(back.iter().filter(|&&b| b != 0).count(), 2);
        // Only two sectors were written: the file stays mostly holes.
        use std::os::unix::fs::MetadataExt;
        assert!(f.metadata().unwrap().blocks() * 512 <= 64 * 1024);
    }

    #[test]
    fn chunks_report_holes_and_data_and_sha256_matches_a_plain_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = create(&dir.path().join("r"), (16 << 20) + 4096).unwrap();
        f.write_all_at(b"abc", 9 << 20).unwrap();
        f.write_all_at(b"end", (16 << 20) + 4000).unwrap();
        let mut chunks = Chunks::new(&f, 1 << 20).unwrap();
        let (mut holes, mut data, mut total) = (0, 0, 0);
        while let Some(c) = chunks.next_chunk().unwrap() {
            assert_eq!(c.offset(), total);
            total += c.len();
            match c {
                Chunk::Hole { .. } => holes += 1,
                Chunk::Data { .. } => data += 1,
            }
        }
        assert_eq!(total, (16 << 20) + 4096);
        assert!(data >= 2, "the two written places are read");
        assert!(
            holes >= 10,
            "the rest is skipped on filesystems with SEEK_DATA"
        );
        let mut all = vec![0u8; total as usize];
        f.read_exact_at(&mut all, 0).unwrap();
        let plain: [u8; 32] = Sha256::digest(&all).into();
        assert_eq!(sha256(&f).unwrap(), plain);
    }
}
