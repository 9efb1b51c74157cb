//! One pass over a finished raw image for everything computed from it: its
//! SHA-256, the EBS checksum and every disk format made from it.
//!
//! In: the raw file, the formats' [`RawStream`]s (the pass names none of
//! them), and a number of worker threads. Out: [`RawDigests`]; each
//! stream has seen every part of the image.
//!
//! How the work is shared (the three results would otherwise each take a
//! pass over the image, one after the other):
//! - this thread reads the image front to back in pieces of [`READ`]
//!   bytes into a small pool of buffers, skipping holes without reading;
//! - `threads` workers take [`JOB`]-sized parts of the pieces in any order
//!   and return each part's EBS block digests and what each stream's
//!   encoder made of it (a VMDK's compressed grains);
//! - this thread puts the parts back in order, hands each stream its
//!   encoded parts and the holes, and folds the block digests into the EBS
//!   aggregate;
//! - one more thread hashes the whole image in order (holes as the zeros
//!   they read as). SHA-256 cannot be split, and it is fast next to
//!   deflate: it reads the image on its own (a second read, from the page
//!   cache) so that it runs ahead instead of waiting behind the workers
//!   and then hashing the image's zero tail alone at the end.
//!
//! The bytes of every result depend only on the image: parts are numbered
//! as they are read and consumed in that order, whatever thread finished
//! them first (a test runs 1, 2 and 3 threads against one another).
//!
//! The image may still be being written ([`digest_raw_following`]): both
//! readers then wait, piece by piece, until the writer says the piece is
//! final, so reading, hashing and compressing run beside the writing.
//! [`digest_raw_reporting`] also tells a callback how far the pass has
//! got, once per part (for progress; it names no task and prints nothing).
//!
//! Never: holds more than [`BUFFERS`] pieces of the image at once in the
//! pool (a read waits for a buffer to come back from the workers), nor more
//! compressed parts than there are parts in those buffers; the hash thread
//! has one buffer of its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use sha2::{Digest, Sha256};

use super::format::{Encoded, PART_ALIGN, Part as StreamPart, PartEncoder, RawStream};
use super::{DiskError, Result, ebs, io_at, raw};

/// Bytes read at a time: 64 grains, 8 EBS blocks.
const READ: usize = 4 << 20;
/// Bytes a worker takes at a time: 16 grains, 2 EBS blocks. Small enough
/// that two workers finish a piece about together, large enough that
/// handing it over costs nothing next to compressing it.
const JOB: usize = 1 << 20;
/// Read buffers: the most image bytes in memory is `BUFFERS * READ`.
const BUFFERS: usize = 8;
// Pieces are cut at multiples of READ from the image's start and parts at
// multiples of JOB inside them: every part starts where the seam promises.
const _: () = assert!(READ.is_multiple_of(JOB) && (JOB as u64).is_multiple_of(PART_ALIGN));

/// What one read of a finished raw image gives: its SHA-256 (and the hash
/// state it came from), and the EBS checksum.
#[derive(Debug, Clone)]
pub struct RawDigests {
    pub sha256: [u8; 32],
    /// The SHA-256 state after the image's last byte.
    pub hasher: Sha256,
    pub ebs: ebs::Checksum,
}

/// A piece of the image in a pooled buffer; dropping the last reference
/// sends the buffer back to the reader.
struct Piece {
    bytes: Vec<u8>,
    len: usize,
    home: mpsc::Sender<Vec<u8>>,
}

impl Piece {
    fn data(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        // The reader may have stopped already; then the buffer just goes.
        let _ = self.home.send(std::mem::take(&mut self.bytes));
    }
}

/// A part of a piece for a worker.
struct Job {
    seq: u64,
    /// The image offset the part starts at.
    offset: u64,
    piece: Arc<Piece>,
    range: Range<usize>,
}

/// A part done (or a hole, done by the reader), to be consumed in `seq`
/// order.
struct Part {
    /// The image offset the part starts at.
    offset: u64,
    /// What each stream's encoder made of it, in the streams' order; `None`
    /// for a hole of `hole` bytes.
    encoded: Option<Vec<Encoded>>,
    hole: u64,
    /// Bytes of the image it covers.
    len: u64,
    /// Digests of its EBS blocks that are sent (all-zero blocks are not).
    blocks: Vec<[u8; 32]>,
}

/// Read `raw` front to back once and compute its SHA-256 and EBS checksum,
/// handing every part of it to `streams` (each disk format made from it),
/// with `threads` workers for the encoders and block hashes. The results
/// do not depend on `threads`.
pub fn digest_raw(
    raw: &File,
    streams: &mut [&mut dyn RawStream],
    threads: NonZeroUsize,
) -> Result<RawDigests> {
    digest_raw_following(raw, streams, threads, &raw::Watermark::finished())
}

/// [`digest_raw`] of an image that is still being written: each piece is
/// read once `written` says it is final (and where its holes are is asked
/// of the kernel then, not before). The image's length must be set.
pub fn digest_raw_following(
    raw: &File,
    streams: &mut [&mut dyn RawStream],
    threads: NonZeroUsize,
    written: &raw::Watermark,
) -> Result<RawDigests> {
    digest_raw_reporting(raw, streams, threads, written, &|_| {})
}

/// [`digest_raw_following`], telling `done` how far every stream and the
/// EBS checksum have taken the image (once per part, in image order; the
/// SHA-256 runs ahead).
pub fn digest_raw_reporting(
    raw: &File,
    streams: &mut [&mut dyn RawStream],
    threads: NonZeroUsize,
    written: &raw::Watermark,
    done: &dyn Fn(u64),
) -> Result<RawDigests> {
    let mut chunks = Follow::new(raw, written)?;
    let workers = threads.get().min(64);
    // Each worker gets an encoder of every stream, made here.
    let mut encoders: Vec<Vec<Box<dyn PartEncoder>>> = Vec::with_capacity(workers);
    for _ in 0..workers {
        encoders.push(
            streams
                .iter()
                .map(|s| s.encoder())
                .collect::<Result<Vec<_>>>()?,
        );
    }

    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS {
        let _ = pool_tx.send(Vec::new());
    }
    let stop = AtomicBool::new(false);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(u64, Option<Result<Part>>)>();

    std::thread::scope(|s| -> Result<RawDigests> {
        let hasher = s.spawn(|| -> Result<Sha256> {
            let mut r = Follow::new(raw, written)?;
            let mut buf = Vec::new();
            let zeros = vec![0u8; READ];
            let mut h = Sha256::new();
            while !stop.load(Ordering::Relaxed) {
                match r.next_into(&mut buf)? {
                    None => return Ok(h),
                    Some(raw::Chunk::Hole { len, .. }) => h.update(&zeros[..len as usize]),
                    Some(raw::Chunk::Data { bytes, .. }) => h.update(bytes),
                }
            }
            Err(stopped())
        });
        for mut mine in encoders {
            let (job_rx, done_tx) = (&job_rx, done_tx.clone());
            s.spawn(move || work(job_rx, &done_tx, &mut mine));
        }
        drop(done_tx);

        let mut order = Order {
            next: 0,
            slots: BTreeMap::new(),
            out: 0,
            ebs: ebs::Aggregate::new(),
            streams,
            done,
        };
        let mut seq = 0u64;
        let mut spare: Option<Vec<u8>> = None;
        let read = (|| -> Result<()> {
            loop {
                // A buffer; while none is free, put finished parts in order.
                let mut buf = match spare.take() {
                    Some(b) => b,
                    None => loop {
                        if let Ok(b) = pool_rx.try_recv() {
                            break b;
                        }
                        if order.out > 0 {
                            order.take(&done_rx)?;
                        } else {
                            // No part is out: a worker gives its piece
                            // back before it reports the part done.
                            break pool_rx.recv().map_err(|_| stopped())?;
                        }
                    },
                };
                let Some(chunk) = chunks.next_into(&mut buf)? else {
                    return Ok(());
                };
                match chunk {
                    raw::Chunk::Hole { offset, len } => {
                        order.put(
                            seq,
                            Part {
                                offset,
                                encoded: None,
                                hole: len,
                                len,
                                blocks: Vec::new(),
                            },
                        );
                        seq += 1;
                        spare = Some(buf);
                    }
                    raw::Chunk::Data { offset, bytes } => {
                        let len = bytes.len();
                        let piece = Arc::new(Piece {
                            bytes: buf,
                            len,
                            home: pool_tx.clone(),
                        });
                        for start in (0..len).step_by(JOB) {
                            let range = start..(start + JOB).min(len);
                            job_tx
                                .send(Job {
                                    seq,
                                    offset: offset + start as u64,
                                    piece: Arc::clone(&piece),
                                    range,
                                })
                                .map_err(|_| stopped())?;
                            order.expect(seq);
                            seq += 1;
                        }
                    }
                }
                order.drain()?;
            }
        })();
        // Stop the threads whatever happened: they end when their queues do.
        drop(job_tx);
        let rest = read.and_then(|()| {
            while order.out > 0 {
                order.take(&done_rx)?;
            }
            order.drain()
        });
        if rest.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let hasher = hasher
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        rest?;
        let hasher = hasher?;
        let Order { ebs, .. } = order;
        Ok(RawDigests {
            sha256: hasher.clone().finalize().into(),
            hasher,
            ebs: ebs.finish(),
        })
    })
}

/// Reads the image front to back in pieces of [`READ`] bytes, each once
/// the writer says it is final.
struct Follow<'f, 'w> {
    chunks: raw::Chunks<'f>,
    written: &'w raw::Watermark,
    following: bool,
}

impl<'f, 'w> Follow<'f, 'w> {
    fn new(raw: &'f File, written: &'w raw::Watermark) -> Result<Self> {
        Ok(Follow {
            chunks: raw::Chunks::new(raw, READ).map_err(io_at("read the raw image", 0))?,
            written,
            following: true,
        })
    }

    fn next_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Option<raw::Chunk<'b>>> {
        let (at, end) = self.chunks.next_range();
        if self.following {
            self.written.wait_for(end).map_err(|_| stopped())?;
            self.following = !self.written.is_finished();
            // Holes the kernel reported before may have been written since.
            self.chunks.forget_extents();
        }
        self.chunks
            .next_into(buf)
            .map_err(io_at("read the raw image", at))
    }
}

fn stopped() -> DiskError {
    DiskError::Io {
        action: "digest the raw image",
        offset: 0,
        source: std::io::Error::other("a digest thread stopped"),
    }
}

/// A worker: parts in, each stream's encoding and block digests out,
/// until the jobs end. A panic here reaches the reader as a part that
/// never comes (`None` in its place), not as a hang; an encoder's error
/// as that error when the part's turn comes.
fn work(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    done: &mpsc::Sender<(u64, Option<Result<Part>>)>,
    encoders: &mut [Box<dyn PartEncoder>],
) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let seq = job.seq;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let bytes = &job.piece.data()[job.range.clone()];
            let encoded = encoders
                .iter_mut()
                .map(|e| e.encode(job.offset, bytes))
                .collect::<Result<Vec<_>>>()?;
            Ok(Part {
                offset: job.offset,
                encoded: Some(encoded),
                hole: 0,
                len: bytes.len() as u64,
                blocks: bytes
                    .chunks(ebs::BLOCK_SIZE)
                    .filter_map(ebs::block_digest)
                    .collect(),
            })
        }));
        drop(job);
        if done.send((seq, result.ok())).is_err() {
            return;
        }
    }
}

/// A numbered part: out with a worker, or back (or a hole).
enum Slot {
    Out,
    Back(Part),
}

/// Parts put back in image order and consumed: the streams fed, the EBS
/// aggregate fed.
struct Order<'s, 'r> {
    /// The next part to consume.
    next: u64,
    slots: BTreeMap<u64, Slot>,
    /// Parts with the workers.
    out: usize,
    ebs: ebs::Aggregate,
    streams: &'s mut [&'r mut dyn RawStream],
    /// Told the end of each part consumed.
    done: &'s dyn Fn(u64),
}

impl Order<'_, '_> {
    /// A part handed to the workers.
    fn expect(&mut self, seq: u64) {
        self.slots.insert(seq, Slot::Out);
        self.out += 1;
    }

    /// A part that needs no worker (a hole).
    fn put(&mut self, seq: u64, part: Part) {
        self.slots.insert(seq, Slot::Back(part));
    }

    /// Wait for one part from the workers, then consume what is in order.
    fn take(&mut self, done: &mpsc::Receiver<(u64, Option<Result<Part>>)>) -> Result<()> {
        let (seq, part) = done.recv().map_err(|_| stopped())?;
        let part = part.ok_or_else(stopped)??;
        if let Some(slot) = self.slots.get_mut(&seq)
            && let Slot::Out = *slot
        {
            *slot = Slot::Back(part);
            self.out -= 1;
        }
        self.drain()
    }

    /// Consume every part that is next in order and back.
    fn drain(&mut self) -> Result<()> {
        while let Some(Slot::Back(_)) = self.slots.get(&self.next) {
            let Some(Slot::Back(p)) = self.slots.remove(&self.next) else {
                break;
            };
            for d in &p.blocks {
                self.ebs.push(d);
            }
            match p.encoded {
                Some(encoded) => {
                    for (s, e) in self.streams.iter_mut().zip(encoded) {
                        s.consume(p.offset, StreamPart::Data(e))?;
                    }
                }
                None => {
                    for s in self.streams.iter_mut() {
                        s.consume(p.offset, StreamPart::Hole { len: p.hole })?;
                    }
                }
            }
            (self.done)(p.offset + p.len);
            self.next += 1;
        }
        Ok(())
    }
}
