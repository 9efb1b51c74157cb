//! What the two root-filesystem writers ([`crate::ext4`], [`crate::xfs`])
//! share: how a size is searched for, and how file data is read and
//! checked for zeros. Each writer keeps its own layout, its own on-disk
//! structures and its own sink (ext4 writes its fixed metadata before it
//! goes front to back; XFS goes front to back from the start).
//!
//! In: a "does it fit in N blocks" question, readers and byte slices.
//! Out: block counts, filled buffers. Imports nothing of the crate.

use std::io::Read;

/// The fewest blocks for which `fits` answers yes, searched from `start`
/// (a count known not to fit, or the smallest to try minus one): doubling
/// until one fits, then bisecting. Past `max` blocks, `too_large(blocks)`.
pub fn fewest_blocks<E>(
    start: u64,
    max: u64,
    mut fits: impl FnMut(u64) -> Result<bool, E>,
    too_large: impl Fn(u64) -> E,
) -> Result<u64, E> {
    let mut lo = start;
    let mut hi = lo + 1;
    while !fits(hi)? {
        lo = hi;
        hi = hi
            .checked_mul(2)
            .filter(|h| *h <= max)
            .ok_or_else(|| too_large(hi))?;
    }
    // Invariant: `hi` fits, `lo` does not (or is below the minimum).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// The size `size = "auto"` gives a filesystem whose minimum is `min`
/// blocks of `block_size` bytes: a tenth and 16 MiB more, rounded up to a
/// MiB, and up a MiB at a time until it fits (fixed overheads such as a
/// journal grow in steps with the size).
pub fn auto_blocks<E>(
    min: u64,
    block_size: u64,
    mut fits: impl FnMut(u64) -> Result<bool, E>,
) -> Result<u64, E> {
    let mib = (1 << 20) / block_size;
    let mut blocks = (min + min / 10 + 16 * mib).div_ceil(mib) * mib;
    while !fits(blocks)? {
        blocks += mib;
    }
    Ok(blocks)
}

/// Read until `buf` is full or the reader ends; returns the bytes read.
pub fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Whether every byte of `bytes` is zero (a block the writers skip: the
/// range they write into reads as zeros already).
pub fn is_zero(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(16);
    let tail = chunks.remainder();
    tail.iter().all(|b| *b == 0)
        && chunks
            .map(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])))
            .all(|w| w == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fewest_blocks_is_the_smallest_that_fits() {
        for need in [1u64, 2, 3, 17, 1000, 4097] {
            let mut asked = 0;
            let got = fewest_blocks(
                0,
                u64::MAX,
                |n| {
                    asked += 1;
                    Ok::<_, ()>(n >= need)
                },
                |_| (),
            );
            assert_eq!(got, Ok(need));
            assert!(asked <= 2 * 64, "{asked} questions for {need}");
        }
        assert_eq!(
            fewest_blocks(10, 100, |n| Ok(n > 500), |n| n),
            Err(88),
            "past the maximum"
        );
    }

    #[test]
    fn auto_blocks_adds_a_tenth_and_16_mib_then_what_it_needs() {
        // 4 KiB blocks: 256 a MiB.
        // 10 MiB + 1 MiB + 16 MiB.
        assert_eq!(auto_blocks(2560, 4096, |_| Ok::<_, ()>(true)), Ok(256 * 27));
        // Rounded up to a MiB: 10 MiB and a block, a tenth of it, 16 MiB.
        assert_eq!(auto_blocks(2561, 4096, |_| Ok::<_, ()>(true)), Ok(256 * 28));
        // Then up a MiB at a time until it fits.
        assert_eq!(
            auto_blocks(2560, 4096, |n| Ok::<_, ()>(n >= 256 * 30)),
            Ok(256 * 30)
        );
    }

    #[test]
    fn fill_reads_through_short_reads_and_stops_at_the_end() {
        struct Dribble(Vec<u8>);
        impl Read for Dribble {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        let mut buf = [0u8; 8];
        assert_eq!(fill(&mut Dribble(vec![1, 2, 3]), &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert!(is_zero(&[0; 33]) && !is_zero(&[0, 0, 0, 1]));
        let mut b = [0u8; 40];
        b[39] = 1;
        assert!(!is_zero(&b));
    }
}
