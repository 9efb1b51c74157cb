//! The checksum EBS keeps for a snapshot uploaded with the EBS direct APIs.
//!
//! In: the raw image, read as a stream. Out: the number of blocks an upload
//! sends and the LINEAR aggregate checksum `CompleteSnapshot` takes, so a
//! manifest can name the snapshot AWS will hold.
//!
//! The rules, as awslabs/coldsnap's `src/upload.rs` applies them: the image
//! is cut into 512 KiB blocks (the block size `StartSnapshot` returns); a
//! block whose bytes are all zero is not sent; a short last block is padded
//! with zeros to 512 KiB before hashing; each sent block's SHA-256 is taken;
//! the aggregate is the SHA-256 of the raw 32-byte digests of the sent
//! blocks in block-index order, base64-encoded (standard alphabet, padded).
//! An image with no data sends nothing and its aggregate is the SHA-256 of
//! no bytes.
//!
//! Never: holds more than one block in memory besides a read buffer.

use std::fs::File;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::{Result, io_at, raw};

/// The EBS direct APIs' block size.
pub const BLOCK_SIZE: usize = 512 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// Bytes per block (512 KiB).
    pub block_size: u32,
    /// Blocks an upload sends (`ChangedBlocksCount`): the non-zero ones.
    pub changed_blocks: u64,
    /// `Checksum` of `CompleteSnapshot` with algorithm SHA256 and
    /// aggregation method LINEAR.
    pub linear_sha256_base64: String,
}

/// Compute the aggregate checksum of `raw`.
pub fn checksum(raw: &File) -> Result<Checksum> {
    // Read several blocks at a time; holes are skipped without reading.
    const BLOCKS_PER_READ: usize = 8;
    let mut chunks = raw::Chunks::new(raw, BLOCK_SIZE * BLOCKS_PER_READ)
        .map_err(io_at("read the raw image", 0))?;
    let mut agg = Aggregate::new();
    let mut at = 0;
    while let Some(c) = chunks
        .next_chunk()
        .map_err(io_at("read the raw image", at))?
    {
        at = c.offset();
        if let raw::Chunk::Data { bytes, .. } = c {
            agg.data(bytes);
        }
    }
    Ok(agg.finish())
}

/// One block's SHA-256 as EBS takes it (a short last block padded with
/// zeros), or `None` for an all-zero block, which an upload does not send.
pub fn block_digest(block: &[u8]) -> Option<[u8; 32]> {
    if raw::is_zero(block) {
        return None;
    }
    let mut h = Sha256::new();
    h.update(block);
    if block.len() < BLOCK_SIZE {
        h.update(vec![0u8; BLOCK_SIZE - block.len()]);
    }
    Some(h.finalize().into())
}

/// The checksum built up as the image is read front to back: give it the
/// bytes of every data chunk in order (holes send nothing). Chunks must
/// start on block boundaries (every chunk but the last a whole number of
/// blocks long).
pub struct Aggregate {
    aggregate: Sha256,
    changed: u64,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregate {
    pub fn new() -> Self {
        Aggregate {
            aggregate: Sha256::new(),
            changed: 0,
        }
    }

    pub fn data(&mut self, bytes: &[u8]) {
        for block in bytes.chunks(BLOCK_SIZE) {
            if let Some(d) = block_digest(block) {
                self.push(&d);
            }
        }
    }

    /// The next sent block's digest ([`block_digest`]), in block order:
    /// for callers that hash blocks on several threads.
    pub fn push(&mut self, digest: &[u8; 32]) {
        self.aggregate.update(digest);
        self.changed += 1;
    }

    pub fn finish(self) -> Checksum {
        Checksum {
            block_size: BLOCK_SIZE as u32,
            changed_blocks: self.changed,
            linear_sha256_base64: base64::engine::general_purpose::STANDARD
                .encode(self.aggregate.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn zero_blocks_are_skipped_and_a_short_last_block_is_padded() {
        let dir = tempfile::tempdir().unwrap();
        let len = 3 * BLOCK_SIZE as u64 + 1000;
        let f = raw::create(&dir.path().join("r"), len).unwrap();
        f.write_all_at(b"x", 10).unwrap();
        f.write_all_at(b"y", 3 * BLOCK_SIZE as u64 + 5).unwrap();
        let c = checksum(&f).unwrap();
        assert_eq!(c.changed_blocks, 2);
        let mut b0 = vec![0u8; BLOCK_SIZE];
        b0[10] = b'x';
        let mut b3 = vec![0u8; BLOCK_SIZE];
        b3[5] = b'y';
        let mut agg = Sha256::new();
        agg.update(Sha256::digest(&b0));
        agg.update(Sha256::digest(&b3));
        let want = base64::engine::general_purpose::STANDARD.encode(agg.finalize());
        assert_eq!(c.linear_sha256_base64, want);
    }

    #[test]
    fn an_empty_image_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = raw::create(&dir.path().join("r"), 4 << 20).unwrap();
        let c = checksum(&f).unwrap();
        assert_eq!(c.changed_blocks, 0);
        assert_eq!(
            c.linear_sha256_base64,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
