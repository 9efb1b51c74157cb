//! The streaming v4 package writer: cpio archive, compression, digests,
//! signature header, lead, and the assembled file.
//!
//! In: the payload's entries one at a time (a cpio header and a reader for
//! the bytes), the main header once the payload is written, and the
//! signature's own entries (when signed). Out: a `.rpm` file, its size and
//! SHA-256. [`build`](super::build) decides every value; this module only
//! lays bytes out the way rpm does.
//!
//! Memory does not grow with file or payload sizes: file bytes pass through
//! one 1 MiB buffer into the compressor, whose output goes to a temporary
//! file (an unnamed one in the folder the caller names, so nothing is left
//! behind even on Ctrl-C) while its SHA-256 and size are computed; the
//! uncompressed archive's SHA-256 and size are computed on the way in. Only
//! the headers are held in memory (they grow with the number of files).
//! Assembly then copies the payload to its place after the headers while
//! another thread reads it for the MD5 over header and payload (rpm's
//! `SIGMD5`, which the signature header must carry before either; the
//! signature header's size does not depend on it), writes lead and headers
//! in front, and reads the file once more for its SHA-256.
//!
//! **Threads and determinism.** zstd payloads are written as a series of
//! independent zstd frames ([`FramedZstd`]), each of a fixed number of
//! input bytes set by the level, compressed on `jobs` worker threads and
//! written in order. A frame's bytes depend only on its input and the
//! level, so the stream is the same whatever `jobs` is and however the
//! input was split into writes (checked by a test here and by the CLI
//! tests). A zstd stream is any sequence of frames; rpm, `zstd -d` and
//! `rpm2cpio` read them all. zstd's own multithreaded mode was not used:
//! its buffers fill up as it goes, so peak memory crept up with the
//! payload's length. gzip, xz and bzip2 stay single-threaded.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;

use sha2::{Digest, Sha256};

use super::compression::Compression;
use super::header::{self, NewEntry, Value, tag};
use super::read::LEAD_SIZE;

/// What rpmbuild reserves in every signature header so a signature can be
/// added later without moving the header: `%__gpg_reserved_space` (4096)
/// plus 32 bytes (rpm's `rpmGenerateSignature`).
pub const RESERVED_SPACE: u32 = 4096 + 32;

/// The copy buffer for file contents and payload.
const BUF_SIZE: usize = 1 << 20;

const CPIO_MAGIC: &[u8; 6] = b"070701";
/// rpm's stripped cpio header, used when the files total 4 GiB or more.
const CPIO_STRIPPED_MAGIC: &[u8; 6] = b"07070X";
const TRAILER: &str = "TRAILER!!!";

/// The input bytes of each zstd frame at `level`: four of zstd's default
/// windows (at least 1 MiB, at most 16 MiB), so that a frame loses little
/// by not seeing the one before. A function of the level only.
pub fn zstd_frame_size(level: i32) -> u32 {
    // zstd's default window log for a stream of unknown size, by level.
    let window_log = match level {
        ..=1 => 19,
        2 => 20,
        3..=8 => 21,
        _ => 22,
    };
    1 << (window_log + 2).max(20)
}

/// The 96-byte lead: rpm 3.0 binary package, signature type 5, the name
/// truncated to 65 bytes (as the rpm crate and rpmbuild write it).
pub fn lead(name: &str) -> [u8; LEAD_SIZE] {
    let mut l = [0u8; LEAD_SIZE];
    l[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    l[4] = 3; // major
    l[5] = 0; // minor
    // type (2 bytes) and arch (2 bytes) are 0.
    let n = name.len().min(65);
    l[10..10 + n].copy_from_slice(&name.as_bytes()[..n]);
    l[76..78].copy_from_slice(&1u16.to_be_bytes()); // os
    l[78..80].copy_from_slice(&5u16.to_be_bytes()); // signature type
    l
}

/// A writer that hashes and counts what passes through. `flush` is not
/// forwarded: see the module doc.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            sha: Sha256::new(),
            len: 0,
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Deliberately nothing: a flush would end a compressor block (and
        // a zstd job) wherever a caller happened to flush.
        Ok(())
    }
}

/// The payload compressor.
enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(FramedZstd<W>),
    Xz(liblzma::write::XzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    fn new(c: Compression, jobs: NonZeroUsize, w: W) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Gzip(l) => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(l),
            )),
            Compression::Zstd(l) => Encoder::Zstd(FramedZstd::new(w, l, jobs)?),
            Compression::Xz(l) => Encoder::Xz(liblzma::write::XzEncoder::new(w, l)),
            Compression::Bzip2(l) => {
                Encoder::Bzip2(bzip2::write::BzEncoder::new(w, bzip2::Compression::new(l)))
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
            Encoder::Bzip2(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Never flushed mid-stream: see the module doc.
        Ok(())
    }
}

/// A job for a zstd worker: a frame's input, a buffer for its output.
struct Job {
    seq: u64,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// A compressed frame, with its buffers back.
struct Done {
    seq: u64,
    result: io::Result<()>,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// zstd as a sequence of independent frames, each compressing exactly
/// `zstd_frame_size(level)` bytes of input (the last one fewer), on
/// `jobs` worker threads, written out in order.
///
/// A zstd stream may hold any number of frames one after another (rpm's
/// reader, `zstd -d` and the crate's decoder read them all), and each
/// frame's bytes depend only on its input and the level; so the output is
/// the same whatever `jobs` is and however the input arrives. At most
/// `jobs + 1` frames are compressed or wait to be written (one more
/// fills), and their buffers are reused, so memory (two frame sizes per
/// buffer) is fixed from the first frames on, whatever the payload's size.
pub struct FramedZstd<W: Write> {
    /// `None` once finished.
    out: Option<W>,
    frame: usize,
    /// The frame being filled.
    cur: Vec<u8>,
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    done: std::sync::mpsc::Receiver<Done>,
    workers: Vec<std::thread::JoinHandle<()>>,
    next_seq: u64,
    next_out: u64,
    /// Frames submitted but not yet written, at most.
    max_in_flight: usize,
    /// Finished frames that wait for earlier ones.
    ready: std::collections::BTreeMap<u64, Done>,
    spare: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<W: Write> FramedZstd<W> {
    pub fn new(out: W, level: i32, jobs: NonZeroUsize) -> io::Result<Self> {
        let frame = zstd_frame_size(level) as usize;
        let workers_n = jobs.get().min(64);
        let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(workers_n);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let (done_tx, done) = std::sync::mpsc::channel::<Done>();
        let mut workers = Vec::with_capacity(workers_n);
        for _ in 0..workers_n {
            let rx = std::sync::Arc::clone(&job_rx);
            let tx = done_tx.clone();
            let mut z = zstd::bulk::Compressor::new(level)?;
            workers.push(std::thread::spawn(move || {
                loop {
                    let job = {
                        let Ok(rx) = rx.lock() else { return };
                        match rx.recv() {
                            Ok(j) => j,
                            Err(_) => return,
                        }
                    };
                    let Job {
                        seq,
                        input,
                        mut output,
                    } = job;
                    output.clear();
                    let result = z.compress_to_buffer(&input, &mut output).map(|_| ());
                    if tx
                        .send(Done {
                            seq,
                            result,
                            input,
                            output,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }));
        }
        Ok(FramedZstd {
            out: Some(out),
            frame,
            cur: Vec::with_capacity(frame),
            jobs: Some(job_tx),
            done,
            workers,
            next_seq: 0,
            next_out: 0,
            max_in_flight: workers_n + 1,
            ready: std::collections::BTreeMap::new(),
            spare: Vec::new(),
        })
    }

    /// Wait for one frame, then write every frame that is next in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let d = self
            .done
            .recv()
            .map_err(|_| other("a zstd worker stopped".into()))?;
        self.ready.insert(d.seq, d);
        while let Some(d) = self.ready.remove(&self.next_out) {
            d.result?;
            self.out
                .as_mut()
                .ok_or_else(|| other("the zstd writer is finished".into()))?
                .write_all(&d.output)?;
            self.next_out += 1;
            self.spare.push((d.input, d.output));
        }
        Ok(())
    }

    /// Hand the filled frame to the workers.
    fn submit(&mut self) -> io::Result<()> {
        // Frames waiting for an earlier one count too: they hold buffers.
        while self.next_seq - self.next_out >= self.max_in_flight as u64 {
            self.collect_one()?;
        }
        let (mut next_in, mut output) = self
            .spare
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(self.frame), Vec::new()));
        // The output buffer is written through once, here, so that memory
        // is all in use from the first frames on: otherwise each buffer
        // would grow in RSS as incompressible frames first fill it, and
        // peak memory would creep up with the payload's length.
        let bound = zstd::zstd_safe::compress_bound(self.cur.len());
        if output.capacity() < bound {
            output.clear();
            output.resize(bound, 0);
        }
        output.clear();
        next_in.clear();
        let input = std::mem::replace(&mut self.cur, next_in);
        let job = Job {
            seq: self.next_seq,
            input,
            output,
        };
        self.jobs
            .as_ref()
            .ok_or_else(|| other("the zstd writer is finished".into()))?
            .send(job)
            .map_err(|_| other("a zstd worker stopped".into()))?;
        self.next_seq += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        // The last frame; an empty stream still gets one (empty) frame.
        if !self.cur.is_empty() || self.next_seq == 0 {
            self.submit()?;
        }
        while self.next_out < self.next_seq {
            self.collect_one()?;
        }
        self.jobs = None;
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
        self.out
            .take()
            .ok_or_else(|| other("the zstd writer is finished".into()))
    }
}

impl<W: Write> Write for FramedZstd<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.frame - self.cur.len());
        self.cur.extend_from_slice(&buf[..n]);
        if self.cur.len() == self.frame {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Frames end at fixed input offsets only.
        Ok(())
    }
}

impl<W: Write> Drop for FramedZstd<W> {
    fn drop(&mut self) {
        // Closing the channel stops the workers (after an error, too).
        self.jobs = None;
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }
}

/// One member of the cpio archive.
#[derive(Debug, Clone, Copy)]
pub struct CpioHeader<'a> {
    /// `./usr/bin/x`
    pub name: &'a str,
    pub ino: u32,
    /// File type and permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub mtime: u32,
    /// Bytes of data that follow in the archive.
    pub size: u64,
    /// Position in the header's file arrays (stripped cpio names members
    /// by it).
    pub index: u32,
}

/// Why a member could not be written.
#[derive(Debug)]
pub enum EntryError {
    /// Reading its bytes failed.
    Read(io::Error),
    /// Writing the archive failed.
    Write(io::Error),
    /// Its bytes ended this many bytes early.
    Shorter(u64),
    /// It had more bytes than announced.
    Longer,
}

impl EntryError {
    pub fn into_io(self) -> io::Error {
        match self {
            EntryError::Read(e) | EntryError::Write(e) => e,
            EntryError::Shorter(n) => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{n} bytes fewer than announced"),
            ),
            EntryError::Longer => io::Error::other("more bytes than announced"),
        }
    }
}

/// A written, compressed payload in a temporary file.
#[derive(Debug)]
pub struct Payload {
    file: File,
    /// Compressed size and SHA-256 (PAYLOADDIGEST).
    pub size: u64,
    pub sha256: [u8; 32],
    /// Uncompressed archive size (PAYLOADSIZE) and SHA-256
    /// (PAYLOADDIGESTALT).
    pub archive_size: u64,
    pub archive_sha256: [u8; 32],
}

type Sink = Hashing<BufWriter<File>>;

/// Writes the cpio archive through the compressor into a temporary file.
pub struct ArchiveWriter {
    out: BufWriter<Hashing<Encoder<Sink>>>,
    stripped: bool,
    buf: Vec<u8>,
}

fn pad4(len: u64) -> usize {
    ((4 - len % 4) % 4) as usize
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl ArchiveWriter {
    /// `temp`: an empty file the compressed payload is written to.
    /// `stripped`: rpm's stripped cpio headers (files of 4 GiB or more).
    pub fn new(
        temp: File,
        compression: Compression,
        jobs: NonZeroUsize,
        stripped: bool,
    ) -> io::Result<Self> {
        let sink = Hashing::new(BufWriter::with_capacity(BUF_SIZE, temp));
        let enc = Encoder::new(compression, jobs, sink)?;
        Ok(ArchiveWriter {
            out: BufWriter::with_capacity(256 << 10, Hashing::new(enc)),
            stripped,
            buf: vec![0; BUF_SIZE],
        })
    }

    fn header(&mut self, h: &CpioHeader) -> io::Result<()> {
        if self.stripped {
            self.out.write_all(CPIO_STRIPPED_MAGIC)?;
            self.out.write_all(format!("{:08x}", h.index).as_bytes())?;
            // 14 bytes, padded to 16.
            return self.out.write_all(&[0, 0]);
        }
        let size = u32::try_from(h.size)
            .map_err(|_| other(format!("`{}` is too large for a cpio header", h.name)))?;
        let mut head = Vec::with_capacity(112 + h.name.len());
        head.extend_from_slice(CPIO_MAGIC);
        for field in [
            h.ino,
            h.mode,
            0, // uid
            0, // gid
            h.nlink,
            h.mtime,
            size,
            0, // dev major
            0, // dev minor
            0, // rdev major
            0, // rdev minor
            (h.name.len() + 1) as u32,
            0, // check
        ] {
            head.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        head.extend_from_slice(h.name.as_bytes());
        head.push(0);
        head.resize(head.len() + pad4(head.len() as u64), 0);
        self.out.write_all(&head)
    }

    /// Write one member: its header, then exactly `h.size` bytes of `data`
    /// (an error if `data` has fewer or more), then padding.
    pub fn entry(&mut self, h: &CpioHeader, mut data: impl Read) -> Result<(), EntryError> {
        self.header(h).map_err(EntryError::Write)?;
        let mut left = h.size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => return Err(EntryError::Shorter(left)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EntryError::Read(e)),
            };
            self.out
                .write_all(&self.buf[..n])
                .map_err(EntryError::Write)?;
            left -= n as u64;
        }
        if h.size > 0 {
            let mut probe = [0u8; 1];
            if data.read(&mut probe).map_err(EntryError::Read)? != 0 {
                return Err(EntryError::Longer);
            }
        }
        // Headers end on a multiple of 4, so the data's padding depends
        // on its own length only.
        self.out
            .write_all(&[0u8; 3][..pad4(h.size)])
            .map_err(EntryError::Write)
    }

    /// Write the trailer, finish compressing, and hand back the payload.
    pub fn finish(mut self) -> io::Result<Payload> {
        let trailer = CpioHeader {
            name: TRAILER,
            ino: 0,
            mode: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
            index: 0,
        };
        // The trailer is a newc header even in a stripped archive.
        self.stripped = false;
        self.entry(&trailer, io::empty())
            .map_err(EntryError::into_io)?;
        let archive = self.out.into_inner().map_err(|e| e.into_error())?;
        let archive_sha256: [u8; 32] = archive.sha.finalize().into();
        let archive_size = archive.len;
        let sink = archive.inner.finish()?;
        let sha256: [u8; 32] = sink.sha.finalize().into();
        let size = sink.len;
        let file = sink.inner.into_inner().map_err(|e| e.into_error())?;
        Ok(Payload {
            file,
            size,
            sha256,
            archive_size,
            archive_sha256,
        })
    }
}

/// The header as it appears in the file (magic, then the blob): what the
/// header digests and signatures cover.
pub fn header_bytes(blob: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + blob.len());
    v.extend_from_slice(&header::MAGIC);
    v.extend_from_slice(blob);
    v
}

/// A finished package file.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    pub sha256: [u8; 32],
}

/// The signature header's entries other than the signatures themselves,
/// as rpmbuild 4.18 writes them (`rpmGenerateSignature`): header SHA-1 and
/// SHA-256, the MD5 of header and payload, header+payload size and
/// archive size (32-bit, or 64-bit when the archive reaches 4 GiB or the
/// package passes 4 GiB), and the reserved space, 8 bytes smaller with
/// 64-bit sizes so the header keeps its size.
fn signature_entries(header: &[u8], md5: [u8; 16], payload: &Payload) -> Vec<NewEntry> {
    use sha1::Digest as _;
    let content = header.len() as u64 + payload.size;
    let archive = payload.archive_size;
    let mut v = vec![
        NewEntry {
            tag: tag::SIG_SHA1,
            value: Value::String(hex::encode(sha1::Sha1::digest(header))),
        },
        NewEntry {
            tag: tag::SIG_SHA256,
            value: Value::String(hex::encode(Sha256::digest(header))),
        },
        NewEntry {
            tag: tag::SIG_MD5,
            value: Value::Bin(md5.to_vec()),
        },
    ];
    let reserved = match (u32::try_from(content), u32::try_from(archive)) {
        (Ok(c), Ok(a)) if a < u32::MAX => {
            v.push(NewEntry {
                tag: tag::SIG_SIZE,
                value: Value::Int32(vec![c]),
            });
            v.push(NewEntry {
                tag: tag::SIG_PAYLOADSIZE,
                value: Value::Int32(vec![a]),
            });
            RESERVED_SPACE
        }
        _ => {
            v.push(NewEntry {
                tag: tag::SIG_LONGSIZE,
                value: Value::Int64(vec![content]),
            });
            v.push(NewEntry {
                tag: tag::SIG_LONGARCHIVESIZE,
                value: Value::Int64(vec![archive]),
            });
            RESERVED_SPACE - 8
        }
    };
    v.push(NewEntry {
        tag: tag::SIG_RESERVEDSPACE,
        value: Value::Bin(vec![0; reserved as usize]),
    });
    v
}

/// MD5 over `header` and then `len` bytes of `file` from its start, read
/// with `pread` (so it runs beside a copy of the same file).
fn md5_of(header: &[u8], file: &File, len: u64) -> io::Result<[u8; 16]> {
    use md5::Digest as _;
    use std::os::unix::fs::FileExt;
    let mut md5 = md5::Md5::new();
    md5.update(header);
    let mut buf = vec![0u8; BUF_SIZE];
    let mut at = 0u64;
    while at < len {
        let want = (len - at).min(BUF_SIZE as u64) as usize;
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(other(format!(
                "the payload file holds {at} bytes, {len} were written"
            )));
        }
        md5.update(&buf[..n]);
        at += n as u64;
    }
    Ok(md5.finalize().into())
}

/// SHA-256 and size of a whole file, read from its start with `pread`.
fn sha256_of(file: &File) -> io::Result<([u8; 32], u64)> {
    use std::os::unix::fs::FileExt;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut at = 0u64;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok((sha.finalize().into(), at));
        }
        sha.update(&buf[..n]);
        at += n as u64;
    }
}

/// Write the package: lead, signature header (with `signatures`, the
/// OpenPGP entries over `header_blob`, if any), main header, payload.
/// `out` must be empty. The payload's temporary file is consumed.
///
/// The signature header's size does not depend on the MD5's value, so the
/// payload goes to its final place while another thread computes the MD5
/// over header and payload; the lead and headers are written in front
/// after, and the whole file is read once more for its SHA-256.
pub fn assemble(
    name: &str,
    header_blob: &[u8],
    payload: Payload,
    signatures: Vec<NewEntry>,
    out: &mut File,
) -> io::Result<Written> {
    let header = header_bytes(header_blob);
    let signature = |md5: [u8; 16]| -> io::Result<Vec<u8>> {
        let mut entries = signature_entries(&header, md5, &payload);
        entries.extend(signatures.iter().cloned());
        let sig = header::encode_header(entries, tag::HEADERSIGNATURES)
            .map_err(|e| other(e.to_string()))?;
        let pad = (8 - (8 + sig.len()) % 8) % 8;
        let mut front = Vec::with_capacity(LEAD_SIZE + 8 + sig.len() + pad + header.len());
        front.extend_from_slice(&lead(name));
        front.extend_from_slice(&header::MAGIC);
        front.extend_from_slice(&sig);
        front.resize(front.len() + pad, 0);
        front.extend_from_slice(&header);
        Ok(front)
    };
    let front_len = signature([0; 16])?.len() as u64;

    let md5 = std::thread::scope(|s| -> io::Result<[u8; 16]> {
        let md5 = s.spawn(|| md5_of(&header, &payload.file, payload.size));
        // Meanwhile the payload moves to its place (in the kernel where it can).
        let mut from = &payload.file;
        from.seek(SeekFrom::Start(0))?;
        out.seek(SeekFrom::Start(front_len))?;
        let copied = io::copy(&mut from.take(payload.size), &mut *out)?;
        let md5 = md5
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        if copied != payload.size {
            return Err(other(format!(
                "the payload file holds {copied} bytes, {} were written",
                payload.size
            )));
        }
        Ok(md5)
    })?;
    let front = signature(md5)?;
    if front.len() as u64 != front_len {
        return Err(other("the signature header changed size".into()));
    }
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&front)?;
    let (sha256, size) = sha256_of(out)?;
    Ok(Written { size, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Text-like and incompressible parts, as a real payload has.
        let mut v = Vec::with_capacity(len);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut i = 0u64;
        while v.len() < len {
            if (v.len() / 100_000) % 2 == 0 {
                v.extend_from_slice(format!("line {i} value {}\n", i * 7919 % 1000).as_bytes());
                i += 1;
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v.truncate(len);
        v
    }

    fn compress(c: Compression, jobs: usize, data: &[u8], chunk: usize) -> Vec<u8> {
        let jobs = NonZeroUsize::new(jobs).unwrap();
        let mut e = Encoder::new(c, jobs, Vec::new()).unwrap();
        for part in data.chunks(chunk) {
            e.write_all(part).unwrap();
            e.flush().unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_workers_or_write_sizes() {
        // Several frames at level 1 (2 MiB each) and level 3 (8 MiB each).
        let data = sample(20 << 20);
        for level in [1, 3] {
            let c = Compression::Zstd(level);
            let want = compress(c, 1, &data, 1 << 20);
            for (jobs, chunk) in [(2, 1 << 20), (3, 4096), (8, 7_777_777), (1, 333)] {
                let got = compress(c, jobs, &data, chunk);
                assert!(
                    got == want,
                    "level {level}, {jobs} jobs, {chunk}-byte writes"
                );
            }
            let mut back = Vec::new();
            zstd::stream::read::Decoder::new(&want[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data);
        }
    }

    #[test]
    fn lead_is_rpms() {
        let l = lead("a-very-long-name-that-goes-on-and-on-and-on-past-sixty-five-bytes-of-it");
        assert_eq!(&l[..6], &[0xed, 0xab, 0xee, 0xdb, 3, 0]);
        assert_eq!(l[75], 0, "the name is NUL-terminated");
        assert_eq!(&l[76..80], &[0, 1, 0, 5]);
        let theirs = ::rpm::Lead::new("hello");
        let md = ::rpm::PackageMetadata {
            lead: theirs,
            signature: ::rpm::Header::new_empty(),
            header: ::rpm::Header::from_entries(
                Vec::<::rpm::HeaderEntry>::new(),
                ::rpm::IndexTag::RPMTAG_HEADERIMMUTABLE,
            ),
        };
        let mut bytes = Vec::new();
        md.write(&mut bytes).unwrap();
        assert_eq!(&bytes[..LEAD_SIZE], &lead("hello")[..]);
    }

    #[test]
    fn archive_members_are_newc_padded_to_four_bytes() {
        let temp = tempfile::tempfile().unwrap();
        let one = NonZeroUsize::new(1).unwrap();
        let mut a = ArchiveWriter::new(temp, Compression::None, one, false).unwrap();
        let h = CpioHeader {
            name: "./a",
            ino: 1,
            mode: 0o100644,
            nlink: 1,
            mtime: 5,
            size: 3,
            index: 0,
        };
        a.entry(&h, &b"xyz"[..]).unwrap();
        // Fewer or more bytes than announced are errors.
        assert!(a.entry(&h, &b"xy"[..]).is_err());
        let temp = tempfile::tempfile().unwrap();
        let mut a = ArchiveWriter::new(temp, Compression::None, one, false).unwrap();
        assert!(a.entry(&h, &b"wxyz"[..]).is_err());
        let temp = tempfile::tempfile().unwrap();
        let mut a = ArchiveWriter::new(temp, Compression::None, one, false).unwrap();
        a.entry(&h, &b"xyz"[..]).unwrap();
        let mut p = a.finish().unwrap();
        let mut bytes = Vec::new();
        p.file.seek(SeekFrom::Start(0)).unwrap();
        p.file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, p.size);
        assert_eq!(p.size, p.archive_size);
        let want = concat!(
            "070701",
            "00000001",
            "000081a4",
            "00000000",
            "00000000",
            "00000001",
            "00000005",
            "00000003",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000004",
            "00000000",
            "./a\0",
            "\0\0",
            "xyz",
            "\0",
            "070701",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "0000000b",
            "00000000",
            "TRAILER!!!\0",
            "\0\0\0",
        );
        assert_eq!(String::from_utf8_lossy(&bytes), want);
        assert_eq!(p.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }
}
