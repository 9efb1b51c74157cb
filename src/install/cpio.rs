//! The cpio archive inside an rpm payload, read as a stream.
//!
//! In: the uncompressed payload. Out: one [`CpioEntry`] at a time with a
//! reader for its data, bounded: nothing is buffered beyond one header.
//! Formats: "newc" (`070701`, and `070702` with checksums, which rpm never
//! relies on) and rpm's stripped form for large files (`07070X` followed by
//! the file's index in the header; size and name come from the header).
//! A header that lies about sizes or names is an error, never a panic.
//!
//! Limits, each named in its error: a member name of at most [`MAX_NAME`]
//! bytes (Linux's `PATH_MAX`, which rpm's cpio reader also holds names
//! to) with no NUL inside it; at most [`MAX_MEMBERS`] members (no rpm
//! header can list more files: rpm's `HEADER_ARRAY_MAX`); and, when the
//! caller gives the size the package declares for its archive
//! ([`CpioReader::set_max_bytes`]), not one byte more: a payload that
//! inflates past what its header says is refused as it happens, not
//! after it has filled the disk.

use std::io::{self, Read};

const TRAILER: &str = "TRAILER!!!";
/// rpm's limit on a path in a payload.
pub const MAX_NAME: usize = 4096;
/// The most members a payload may hold: the files an rpm header can list
/// (`HEADER_ARRAY_MAX`, 1048575) and the trailer.
pub const MAX_MEMBERS: u64 = 0x000f_ffff + 1;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    /// As stored: `./usr/bin/x` (newc); empty for stripped entries.
    pub name: String,
    /// For stripped entries: the file's index in the header.
    pub index: Option<u32>,
    pub mode: u32,
    pub nlink: u32,
    pub ino: u32,
    pub size: u64,
}

pub struct CpioReader<R> {
    r: Counted<R>,
    /// Bytes of the current member's data not yet consumed, and padding.
    remaining: u64,
    pad: u64,
    done: bool,
    members: u64,
}

/// The payload stream, counting what it gives against a limit.
struct Counted<R> {
    r: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(invalid(format!(
                "the payload holds more than the {} bytes its header declares",
                self.max
            )));
        }
        Ok(n)
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn hex8(b: &[u8]) -> io::Result<u32> {
    let s = std::str::from_utf8(b).map_err(|_| invalid("cpio header is not ASCII"))?;
    u32::from_str_radix(s, 16).map_err(|_| invalid(format!("cpio header field `{s}` is not hex")))
}

fn pad4(n: u64) -> u64 {
    (4 - n % 4) % 4
}

impl<R: Read> CpioReader<R> {
    pub fn new(r: R) -> Self {
        CpioReader {
            r: Counted {
                r,
                read: 0,
                max: u64::MAX,
            },
            remaining: 0,
            pad: 0,
            done: false,
            members: 0,
        }
    }

    /// Refuse a payload longer than `max` bytes (uncompressed): the size
    /// the package declares for its archive (`LONGARCHIVESIZE` or
    /// `PAYLOADSIZE` in the signature header).
    pub fn set_max_bytes(&mut self, max: u64) {
        self.r.max = max;
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.r.read_exact(&mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// The next member, or `None` after the trailer. `size_of` gives the
    /// data size of a stripped entry from its header index.
    pub fn next_entry(
        &mut self,
        size_of: impl Fn(u32) -> Option<u64>,
    ) -> io::Result<Option<CpioEntry>> {
        if self.done {
            return Ok(None);
        }
        // Skip whatever the caller did not read of the previous member.
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;
        self.members += 1;
        if self.members > MAX_MEMBERS {
            return Err(invalid(format!(
                "the payload holds more than {MAX_MEMBERS} members, more than an rpm header can \
                 list"
            )));
        }
        let mut magic = [0u8; 6];
        self.r
            .read_exact(&mut magic)
            .map_err(|e| invalid(format!("payload ends without a cpio trailer: {e}")))?;
        if &magic == b"07070X" {
            let mut idx = [0u8; 8];
            self.r.read_exact(&mut idx)?;
            let index = hex8(&idx)?;
            let size = size_of(index).ok_or_else(|| {
                invalid(format!(
                    "payload names file index {index}, which the header lacks"
                ))
            })?;
            // 6 + 8 bytes of header, padded to 4.
            self.skip(pad4(14))?;
            self.remaining = size;
            self.pad = pad4(size);
            return Ok(Some(CpioEntry {
                name: String::new(),
                index: Some(index),
                mode: 0,
                nlink: 1,
                ino: 0,
                size,
            }));
        }
        if &magic != b"070701" && &magic != b"070702" {
            return Err(invalid(format!(
                "bad cpio magic {:?}",
                String::from_utf8_lossy(&magic)
            )));
        }
        let mut h = [0u8; 104];
        self.r.read_exact(&mut h)?;
        let field = |i: usize| hex8(&h[i * 8..i * 8 + 8]);
        let ino = field(0)?;
        let mode = field(1)?;
        let nlink = field(4)?;
        let size = u64::from(field(6)?);
        let namesize = field(11)? as usize;
        if namesize == 0 {
            return Err(invalid("a cpio member has an empty name"));
        }
        if namesize > MAX_NAME {
            return Err(invalid(format!(
                "a cpio member name of {namesize} bytes is over the {MAX_NAME}-byte limit"
            )));
        }
        let mut name = vec![0u8; namesize];
        self.r.read_exact(&mut name)?;
        if name.pop() != Some(0) {
            return Err(invalid("cpio name is not NUL-terminated"));
        }
        if name.contains(&0) {
            return Err(invalid("a cpio member name holds a NUL byte"));
        }
        let name = String::from_utf8(name).map_err(|_| invalid("cpio name is not UTF-8"))?;
        self.skip(pad4(110 + namesize as u64))?;
        if name == TRAILER {
            self.done = true;
            return Ok(None);
        }
        self.remaining = size;
        self.pad = pad4(size);
        Ok(Some(CpioEntry {
            name,
            index: None,
            mode,
            nlink,
            ino,
            size,
        }))
    }

    /// A reader for the current member's data.
    pub fn data(&mut self) -> DataReader<'_, R> {
        DataReader { c: self }
    }
}

pub struct DataReader<'a, R> {
    c: &'a mut CpioReader<R>,
}

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.c.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.c.remaining.min(usize::MAX as u64) as usize);
        let n = self.c.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "payload ends inside a file",
            ));
        }
        self.c.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(data);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn reads_members_and_stops_at_the_trailer() {
        let mut a = newc("./etc/a", 0o100644, b"hello");
        a.extend(newc("./etc", 0o40755, b""));
        a.extend(newc(TRAILER, 0, b""));
        let mut r = CpioReader::new(&a[..]);
        let e = r.next_entry(|_| None).unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.size), ("./etc/a", 5));
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let e = r.next_entry(|_| None).unwrap().unwrap();
        assert_eq!(e.mode, 0o40755);
        assert!(r.next_entry(|_| None).unwrap().is_none());
    }

    #[test]
    fn unread_data_is_skipped() {
        let mut a = newc("./a", 0o100644, b"0123456789");
        a.extend(newc("./b", 0o100644, b"x"));
        a.extend(newc(TRAILER, 0, b""));
        let mut r = CpioReader::new(&a[..]);
        r.next_entry(|_| None).unwrap();
        let e = r.next_entry(|_| None).unwrap().unwrap();
        assert_eq!(e.name, "./b");
    }

    #[test]
    fn lies_and_truncation_are_errors() {
        // Claims 100 bytes of data, has 5.
        let mut a = newc("./a", 0o100644, b"hello");
        a[54..62].copy_from_slice(b"00000064");
        let mut r = CpioReader::new(&a[..]);
        r.next_entry(|_| None).unwrap();
        let mut v = Vec::new();
        assert!(r.data().read_to_end(&mut v).is_err());
        // No trailer.
        let a = newc("./a", 0o100644, b"x");
        let mut r = CpioReader::new(&a[..]);
        r.next_entry(|_| None).unwrap();
        assert!(r.next_entry(|_| None).is_err());
        // Garbage.
        assert!(
            CpioReader::new(&b"garbage-garbage"[..])
                .next_entry(|_| None)
                .is_err()
        );
        // Stripped entry naming a file the header lacks.
        assert!(
            CpioReader::new(&b"07070X00000009\0\0"[..])
                .next_entry(|_| None)
                .is_err()
        );
    }

    fn err_of(a: &[u8], max_bytes: Option<u64>) -> String {
        let mut r = CpioReader::new(a);
        if let Some(m) = max_bytes {
            r.set_max_bytes(m);
        }
        loop {
            match r.next_entry(|_| None) {
                Ok(Some(_)) => {
                    if let Err(e) = std::io::copy(&mut r.data(), &mut std::io::sink()) {
                        return e.to_string();
                    }
                }
                Ok(None) => return String::new(),
                Err(e) => return e.to_string(),
            }
        }
    }

    #[test]
    fn each_cpio_limit_is_named_when_hit() {
        // A name over PATH_MAX.
        let long = format!("./{}", "a".repeat(MAX_NAME));
        let mut a = newc(&long, 0o100644, b"");
        a.extend(newc(TRAILER, 0, b""));
        let e = err_of(&a, None);
        assert!(
            e.contains("name of 4099 bytes is over the 4096-byte limit"),
            "{e}"
        );
        // A NUL inside a name.
        let mut a = newc("./a\0b", 0o100644, b"");
        a.extend(newc(TRAILER, 0, b""));
        assert!(err_of(&a, None).contains("holds a NUL byte"));
        // More bytes than the header declares.
        let mut a = newc("./a", 0o100644, &[7u8; 1000]);
        a.extend(newc(TRAILER, 0, b""));
        assert_eq!(err_of(&a, None), "");
        let e = err_of(&a, Some(600));
        assert!(
            e.contains("more than the 600 bytes its header declares"),
            "{e}"
        );
    }

    #[test]
    fn more_members_than_a_header_can_list_are_refused() {
        // Members of 112 bytes each (a one-byte name, no data); stop at the
        // limit without building a 100 MB archive: a reader that repeats one.
        struct Repeat(Vec<u8>, usize);
        impl Read for Repeat {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 = (self.1 + n) % self.0.len();
                Ok(n)
            }
        }
        let one = newc("a", 0o100644, b"");
        let mut r = CpioReader::new(Repeat(one, 0));
        let mut n = 0u64;
        let e = loop {
            match r.next_entry(|_| None) {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("no trailer was given"),
                Err(e) => break e.to_string(),
            }
        };
        assert_eq!(n, MAX_MEMBERS);
        assert!(e.contains("more than 1048576 members"), "{e}");
    }
}
