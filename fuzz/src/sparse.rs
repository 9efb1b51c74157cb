//! The sparse image format the `disk` and `ext4` targets read: a disk
//! image is mostly zeros, and a fuzzer works best on small inputs, so an
//! input names only the sectors that are not.
//!
//! Layout (little-endian): `u32` size of the image in 512-byte sectors
//! (at most [`MAX_SECTORS`]; more is cut to it), then records until the
//! input ends: `u32` first sector, `u8` count less one, and that many
//! sectors of bytes (a short last record is padded with zeros). A record
//! past the image's end is cut to it; later records overwrite earlier
//! ones. Every input decodes to some image.

use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;

pub const SECTOR: u64 = 512;
/// The largest image an input describes: 8 GiB.
pub const MAX_SECTORS: u32 = 1 << 24;

/// An anonymous in-memory file (nothing on disk, gone when closed).
pub fn memfd() -> io::Result<File> {
    // SAFETY: a NUL-terminated name; the new descriptor is owned by the File.
    let fd = unsafe { libc::memfd_create(c"ingot-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The image `data` describes, as a sparse in-memory file.
pub fn decode(data: &[u8]) -> io::Result<File> {
    let file = memfd()?;
    let Some((head, mut rest)) = data.split_first_chunk::<4>() else {
        return Ok(file);
    };
    let size = u64::from(u32::from_le_bytes(*head).min(MAX_SECTORS)) * SECTOR;
    file.set_len(size)?;
    while let Some((rec, tail)) = rest.split_first_chunk::<5>() {
        let at = u64::from(u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]])) * SECTOR;
        let want = (usize::from(rec[4]) + 1) * SECTOR as usize;
        let bytes = &tail[..want.min(tail.len())];
        rest = &tail[bytes.len()..];
        if at < size {
            let n = bytes.len().min((size - at) as usize);
            file.write_all_at(&bytes[..n], at)?;
        }
    }
    Ok(file)
}

/// The input that describes `file` (whose length is a whole number of
/// sectors, at most [`MAX_SECTORS`]): every run of sectors that are not
/// all zeros.
pub fn encode(file: &File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let sectors = u32::try_from(len / SECTOR)
        .ok()
        .filter(|&s| s <= MAX_SECTORS)
        .ok_or_else(|| io::Error::other(format!("an image of {len} bytes is too large")))?;
    let mut out = sectors.to_le_bytes().to_vec();
    let mut chunks = ingot::disk::raw::Chunks::new(file, 1 << 20)?;
    // The run being built: first sector and its bytes.
    let mut run: Option<(u64, Vec<u8>)> = None;
    let flush = |run: &mut Option<(u64, Vec<u8>)>, out: &mut Vec<u8>| {
        if let Some((first, bytes)) = run.take() {
            let count = bytes.len() as u64 / SECTOR;
            out.extend_from_slice(&(first as u32).to_le_bytes());
            out.push((count - 1) as u8);
            out.extend_from_slice(&bytes);
        }
    };
    while let Some(chunk) = chunks.next_chunk()? {
        let ingot::disk::raw::Chunk::Data { offset, bytes } = chunk else {
            flush(&mut run, &mut out);
            continue;
        };
        for (i, s) in bytes.chunks(SECTOR as usize).enumerate() {
            let sector = offset / SECTOR + i as u64;
            if s.iter().all(|&b| b == 0) {
                flush(&mut run, &mut out);
                continue;
            }
            let full = run.as_ref().is_some_and(|(first, b)| {
                first + b.len() as u64 / SECTOR != sector || b.len() >= 256 * SECTOR as usize
            });
            if full {
                flush(&mut run, &mut out);
            }
            let (_, b) = run.get_or_insert_with(|| (sector, Vec::new()));
            b.extend_from_slice(s);
            b.resize(b.len().div_ceil(SECTOR as usize) * SECTOR as usize, 0);
        }
    }
    flush(&mut run, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_round_trips_through_its_encoding() {
        let f = memfd().unwrap();
        f.set_len(600 * SECTOR).unwrap();
        f.write_all_at(b"first", 0).unwrap();
        // 300 sectors of data: more than one record holds.
        f.write_all_at(&vec![7u8; 300 * SECTOR as usize], 100 * SECTOR + 3)
            .unwrap();
        f.write_all_at(b"last", 600 * SECTOR - 4).unwrap();
        let enc = encode(&f).unwrap();
        assert!(enc.len() < 310 * SECTOR as usize);
        let g = decode(&enc).unwrap();
        assert_eq!(g.metadata().unwrap().len(), 600 * SECTOR);
        let (mut a, mut b) = (vec![0u8; 600 * 512], vec![0u8; 600 * 512]);
        f.read_exact_at(&mut a, 0).unwrap();
        g.read_exact_at(&mut b, 0).unwrap();
        assert!(a == b, "the decoded image differs");
    }

    #[test]
    fn records_past_the_end_are_cut_and_short_input_is_an_empty_image() {
        let mut input = 2u32.to_le_bytes().to_vec();
        input.extend_from_slice(&1u32.to_le_bytes());
        input.push(3); // four sectors from sector 1: only one fits
        input.extend_from_slice(&[9u8; 4 * 512]);
        let f = decode(&input).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 1024);
        let mut b = vec![0u8; 1024];
        f.read_exact_at(&mut b, 0).unwrap();
        assert!(b[..512].iter().all(|&x| x == 0) && b[512..].iter().all(|&x| x == 9));
        assert_eq!(decode(&[1, 2]).unwrap().metadata().unwrap().len(), 0);
    }
}
