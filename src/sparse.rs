//! Where a host file's data is: `lseek(2)` with `SEEK_DATA` and
//! `SEEK_HOLE` (through `rustix`), for the two readers that skip holes:
//! importing a sparse file from a folder base (`rootfs::dir_in`) and reading
//! a raw disk image (`disk::raw::Chunks`).
//!
//! In: an open file and an offset. Out: data extents, front to back. Never
//! changes the file; only the descriptor's cursor moves, which no caller
//! relies on (every read here is positioned).

use std::fs::File;
use std::io;
use std::ops::Range;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

/// The first data extent of `file` at or after `from`, as the kernel sees
/// it now: `Ok(None)` when only a hole is left up to the end of the file.
/// An error is the kernel's: `EINVAL` where the filesystem cannot tell.
pub fn next_data(file: &File, from: u64) -> io::Result<Option<Range<u64>>> {
    let start = match rustix::fs::seek(file, SeekFrom::Data(from)) {
        Ok(start) => start,
        Err(Errno::NXIO) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let end = rustix::fs::seek(file, SeekFrom::Hole(start))?;
    Ok(Some(start..end))
}

/// Every data extent of the first `len` bytes of `file`, front to back,
/// none empty; `Ok(None)` when the filesystem cannot tell data from holes
/// (then all of it counts as data).
pub fn data_extents(file: &File, len: u64) -> io::Result<Option<Vec<Range<u64>>>> {
    let mut extents = Vec::new();
    let mut pos = 0;
    while pos < len {
        let data = match next_data(file, pos) {
            Ok(Some(data)) => data,
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => return Ok(None),
            Err(e) => return Err(e),
        };
        let end = data.end.min(len);
        if end > data.start {
            extents.push(data.start..end);
        }
        if end <= pos {
            break;
        }
        pos = end;
    }
    Ok(Some(extents))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// A file with data at 1 MiB and at 3 MiB, holes elsewhere. How much
    /// around each write the filesystem allocates is its business: what
    /// must hold is that every byte written is inside an extent, extents
    /// are ordered, and nothing past the end is reported.
    #[test]
    fn extents_cover_every_byte_written_in_order() {
        const MIB: u64 = 1 << 20;
        let f = tempfile::tempfile().unwrap();
        f.set_len(4 * MIB).unwrap();
        f.write_all_at(b"first", MIB).unwrap();
        f.write_all_at(b"second", 3 * MIB + 10).unwrap();
        let extents = data_extents(&f, 4 * MIB)
            .unwrap()
            .expect("the filesystem tells");
        for at in [MIB, MIB + 4, 3 * MIB + 10, 3 * MIB + 15] {
            assert!(
                extents.iter().any(|r| r.contains(&at)),
                "{at} not in {extents:?}"
            );
        }
        for pair in extents.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{extents:?}");
        }
        assert!(extents.iter().all(|r| !r.is_empty() && r.end <= 4 * MIB));
        // The holes are seen: not one extent over the whole file.
        assert!(
            !extents.iter().any(|r| r.contains(&(2 * MIB))),
            "{extents:?}"
        );
        // Only the part asked for.
        let head = data_extents(&f, MIB + 2)
            .unwrap()
            .expect("the filesystem tells");
        assert!(head.iter().all(|r| r.end <= MIB + 2), "{head:?}");
        assert!(head.iter().any(|r| r.contains(&MIB)));
    }

    #[test]
    fn a_file_that_is_one_hole_has_no_data() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(1 << 30).unwrap();
        assert_eq!(next_data(&f, 0).unwrap(), None);
        assert_eq!(data_extents(&f, 1 << 30).unwrap(), Some(Vec::new()));
        // Empty files and offsets past the end: nothing either.
        let empty = tempfile::tempfile().unwrap();
        assert_eq!(next_data(&empty, 0).unwrap(), None);
        assert_eq!(next_data(&f, 2 << 30).unwrap(), None);
    }
}
