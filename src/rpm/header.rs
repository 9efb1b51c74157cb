//! RPM headers as bytes: parse, read tags, and append tags the way rpm does
//! when it installs a package.
//!
//! In: the bytes of a header (from an `.rpm` file or an rpm database blob).
//! Out: typed tag values, and the exact bytes of the header's immutable
//! region, which an installed package's database record must repeat byte
//! for byte. Written here rather than on the `rpm` crate because that crate
//! re-serialises what it parses; the database needs the original bytes.
//!
//! Layout (rpm's `lib/header.c` and the LSB package format): an optional
//! 8-byte magic (`8e ad e8 01` and 4 reserved bytes), then `be32 il`,
//! `be32 dl`, `il` 16-byte index entries `(tag, type, offset, count)` and
//! `dl` bytes of data. Every count and offset is checked against the data
//! before it is used: a hostile header is an error, never a panic or an
//! out-of-bounds read.
//!
//! Limits, as rpm 4.18 checks them (`hdrblobVerifyLengths`,
//! `hdrblobVerifyRegion`, `hdrblobVerifyInfo` in rpm's `lib/header.c`, the
//! `hdrchk*` macros of `lib/header_internal.h`), each named in its error:
//! at most [`MAX_ENTRIES`] entries and [`MAX_DATA`] bytes of data (a
//! signature header: [`MAX_SIGNATURE_ENTRIES`] and
//! [`MAX_SIGNATURE_DATA`]), the whole blob under [`MAX_BLOB`]; a region tag
//! first, if any, whose trailer lies inside the data and covers at most
//! the whole header; then every other entry with a tag of 100 or more, a
//! known type, a count from 1 to `dl` (and at most [`MAX_ARRAY`] for all
//! but BIN), naturally aligned data inside the data area, after the end of
//! the entry before it (entries never overlap, so reading them all is one
//! pass over the data) and clear of the region trailer.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

pub const MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// rpm refuses headers with more entries or data than this
/// (`HEADER_TAGS_MAX`, `HEADER_DATA_MAX` in rpm's header_internal.h).
pub const MAX_ENTRIES: u32 = 0xffff;
pub const MAX_DATA: u32 = 0x0fff_ffff;
/// A signature header's limits (`hdrblobVerifyLengths`).
pub const MAX_SIGNATURE_ENTRIES: u32 = 32;
pub const MAX_SIGNATURE_DATA: u32 = 64 * 1024 * 1024;
/// The whole blob, `8 + 16 * il + dl`, stays under this (`headerMaxbytes`).
pub const MAX_BLOB: usize = 256 * 1024 * 1024;
/// Elements of an array entry other than BIN (`HEADER_ARRAY_MAX`).
pub const MAX_ARRAY: u32 = 0x000f_ffff;
/// Tags below this are rpm's own bookkeeping (`hdrchkTag`).
const MIN_TAG: u32 = 100;

/// Which limits a header is read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub entries: u32,
    pub data: u32,
}

impl Limits {
    /// A package's main header, or an rpm database record.
    pub const HEADER: Limits = Limits {
        entries: MAX_ENTRIES,
        data: MAX_DATA,
    };
    /// A package's signature header.
    pub const SIGNATURE: Limits = Limits {
        entries: MAX_SIGNATURE_ENTRIES,
        data: MAX_SIGNATURE_DATA,
    };
}

/// Tag numbers used by ingot, named as in rpm's `rpmtag.h`.
pub mod tag {
    pub const HEADERSIGNATURES: u32 = 62;
    pub const HEADERIMMUTABLE: u32 = 63;
    pub const HEADERI18NTABLE: u32 = 100;
    // Signature header tags.
    pub const SIG_SIZE: u32 = 1000;
    pub const SIG_MD5: u32 = 1004;
    pub const SIG_PAYLOADSIZE: u32 = 1007;
    pub const SIG_SHA1: u32 = 269;
    pub const SIG_SHA256: u32 = 273;
    pub const SIG_RSA: u32 = 268;
    pub const SIG_DSA: u32 = 267;
    pub const SIG_PGP: u32 = 1002;
    pub const SIG_GPG: u32 = 1005;
    pub const SIG_LONGSIZE: u32 = 270;
    pub const SIG_LONGARCHIVESIZE: u32 = 271;
    pub const SIG_OPENPGP: u32 = 278;
    pub const SIG_RESERVEDSPACE: u32 = 1008;
    pub const SIG_FILESIGNATURES: u32 = 274;
    pub const SIG_FILESIGNATURELENGTH: u32 = 275;
    /// Same number in the signature and the main header.
    pub const SIG_VERITYSIGNATURES: u32 = 276;
    pub const SIG_VERITYSIGNATUREALGO: u32 = 277;
    // Tags an installed package's record carries after its region.
    pub const SIGSIZE: u32 = 257;
    pub const SIGPGP: u32 = 259;
    pub const SIGMD5: u32 = 261;
    pub const SIGGPG: u32 = 262;
    pub const DSAHEADER: u32 = 267;
    pub const RSAHEADER: u32 = 268;
    pub const SHA1HEADER: u32 = 269;
    pub const LONGSIGSIZE: u32 = 270;
    pub const LONGARCHIVESIZE: u32 = 271;
    pub const SHA256HEADER: u32 = 273;
    pub const INSTALLTIME: u32 = 1008;
    pub const FILESTATES: u32 = 1029;
    pub const ARCHIVESIZE: u32 = 1046;
    pub const INSTALLCOLOR: u32 = 1127;
    pub const INSTALLTID: u32 = 1128;
    // Package tags.
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const LICENSE: u32 = 1014;
    pub const PACKAGER: u32 = 1015;
    pub const GROUP: u32 = 1016;
    pub const URL: u32 = 1020;
    pub const OS: u32 = 1021;
    pub const ARCH: u32 = 1022;
    pub const PREIN: u32 = 1023;
    pub const POSTIN: u32 = 1024;
    pub const PREUN: u32 = 1025;
    pub const POSTUN: u32 = 1026;
    pub const FILESIZES: u32 = 1028;
    pub const FILEMODES: u32 = 1030;
    pub const FILERDEVS: u32 = 1033;
    pub const FILEMTIMES: u32 = 1034;
    pub const FILEDIGESTS: u32 = 1035;
    pub const FILELINKTOS: u32 = 1036;
    pub const FILEFLAGS: u32 = 1037;
    pub const FILEUSERNAME: u32 = 1039;
    pub const FILEGROUPNAME: u32 = 1040;
    pub const SOURCERPM: u32 = 1044;
    pub const FILEVERIFYFLAGS: u32 = 1045;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const REQUIREVERSION: u32 = 1050;
    pub const CONFLICTFLAGS: u32 = 1053;
    pub const CONFLICTNAME: u32 = 1054;
    pub const CONFLICTVERSION: u32 = 1055;
    pub const PREINPROG: u32 = 1085;
    pub const POSTINPROG: u32 = 1086;
    pub const PREUNPROG: u32 = 1087;
    pub const POSTUNPROG: u32 = 1088;
    pub const OBSOLETENAME: u32 = 1090;
    pub const FILEDEVICES: u32 = 1095;
    pub const FILEINODES: u32 = 1096;
    pub const FILELANGS: u32 = 1097;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const OBSOLETEFLAGS: u32 = 1114;
    pub const OBSOLETEVERSION: u32 = 1115;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const PAYLOADFORMAT: u32 = 1124;
    pub const PAYLOADCOMPRESSOR: u32 = 1125;
    pub const PAYLOADFLAGS: u32 = 1126;
    pub const PRETRANS: u32 = 1151;
    pub const POSTTRANS: u32 = 1152;
    pub const PRETRANSPROG: u32 = 1153;
    pub const POSTTRANSPROG: u32 = 1154;
    pub const FILECAPS: u32 = 5010;
    pub const FILEDIGESTALGO: u32 = 5011;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const RECOMMENDVERSION: u32 = 5047;
    pub const RECOMMENDFLAGS: u32 = 5048;
    pub const SUGGESTNAME: u32 = 5049;
    pub const SUGGESTVERSION: u32 = 5050;
    pub const SUGGESTFLAGS: u32 = 5051;
    pub const SUPPLEMENTNAME: u32 = 5052;
    pub const SUPPLEMENTVERSION: u32 = 5053;
    pub const SUPPLEMENTFLAGS: u32 = 5054;
    pub const ENHANCENAME: u32 = 5055;
    pub const ENHANCEVERSION: u32 = 5056;
    pub const ENHANCEFLAGS: u32 = 5057;
    pub const LONGFILESIZES: u32 = 5008;
    pub const LONGSIZE: u32 = 5009;
    pub const FILESIGNATURES: u32 = 5090;
    pub const FILESIGNATURELENGTH: u32 = 5091;
    pub const PAYLOADDIGEST: u32 = 5092;
    pub const PAYLOADDIGESTALGO: u32 = 5093;
    pub const PAYLOADDIGESTALT: u32 = 5097;
    pub const RPMVERSION: u32 = 1064;
    pub const CHANGELOGTIME: u32 = 1080;
    pub const CHANGELOGNAME: u32 = 1081;
    pub const CHANGELOGTEXT: u32 = 1082;
    pub const FILEDEPENDSX: u32 = 1143;
    pub const FILEDEPENDSN: u32 = 1144;
    pub const DEPENDSDICT: u32 = 1145;
    pub const ORDERNAME: u32 = 5035;
    pub const ORDERVERSION: u32 = 5036;
    pub const ORDERFLAGS: u32 = 5037;
    pub const ENCODING: u32 = 5062;
}

/// Data types of header entries (`rpmTagType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Null = 0,
    Char = 1,
    Int8 = 2,
    Int16 = 3,
    Int32 = 4,
    Int64 = 5,
    String = 6,
    Bin = 7,
    StringArray = 8,
    I18nString = 9,
}

impl Type {
    fn from_u32(t: u32) -> Option<Type> {
        Some(match t {
            0 => Type::Null,
            1 => Type::Char,
            2 => Type::Int8,
            3 => Type::Int16,
            4 => Type::Int32,
            5 => Type::Int64,
            6 => Type::String,
            7 => Type::Bin,
            8 => Type::StringArray,
            9 => Type::I18nString,
            _ => return None,
        })
    }

    /// Alignment of the type's data (rpm aligns INT16/32/64 naturally).
    pub fn align(self) -> usize {
        match self {
            Type::Int16 => 2,
            Type::Int32 => 4,
            Type::Int64 => 8,
            _ => 1,
        }
    }
}

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tag: u32,
    pub ty: Type,
    pub offset: u32,
    pub count: u32,
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Char(Vec<u8>),
    Int8(Vec<u8>),
    Int16(Vec<u16>),
    Int32(Vec<u32>),
    Int64(Vec<u64>),
    String(String),
    Bin(Vec<u8>),
    StringArray(Vec<String>),
    I18nString(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderError {}

fn bad(msg: impl Into<String>) -> HeaderError {
    HeaderError(msg.into())
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A parsed header. `blob` is the header without magic: `il`, `dl`, the
/// index and the data, exactly as read.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    blob: Vec<u8>,
    entries: Vec<Entry>,
    /// Entry position by tag (first occurrence).
    by_tag: BTreeMap<u32, usize>,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("entries", &self.entries.len())
            .field("bytes", &self.blob.len())
            .finish()
    }
}

impl Header {
    /// Read a header that starts with the 8-byte magic from a stream.
    pub fn read_with_magic(r: &mut impl Read) -> Result<Header, HeaderError> {
        Header::read_with_magic_limited(r, Limits::HEADER)
    }

    /// [`Header::read_with_magic`] under other limits (a signature
    /// header's are [`Limits::SIGNATURE`]). The sizes are checked before
    /// anything is allocated.
    pub fn read_with_magic_limited(
        r: &mut impl Read,
        limits: Limits,
    ) -> Result<Header, HeaderError> {
        let mut head = [0u8; 16];
        r.read_exact(&mut head)
            .map_err(|e| bad(format!("truncated header: {e}")))?;
        if head[..3] != MAGIC[..3] || head[3] != 1 {
            return Err(bad("not an rpm header (bad magic)"));
        }
        let (il, dl) = (be32(&head, 8), be32(&head, 12));
        check_limits(il, dl, limits)?;
        let rest = il as usize * 16 + dl as usize;
        let mut blob = Vec::with_capacity(8 + rest);
        blob.extend_from_slice(&head[8..16]);
        blob.resize(8 + rest, 0);
        r.read_exact(&mut blob[8..])
            .map_err(|e| bad(format!("truncated header: {e}")))?;
        Header::from_blob_limited(blob, limits)
    }

    /// Parse a header without magic (an rpm database blob).
    pub fn from_blob(blob: Vec<u8>) -> Result<Header, HeaderError> {
        Header::from_blob_limited(blob, Limits::HEADER)
    }

    /// [`Header::from_blob`] under other limits.
    pub fn from_blob_limited(blob: Vec<u8>, limits: Limits) -> Result<Header, HeaderError> {
        if blob.len() < 8 {
            return Err(bad("header shorter than 8 bytes"));
        }
        let (il, dl) = (be32(&blob, 0), be32(&blob, 4));
        check_limits(il, dl, limits)?;
        let data_start = 8 + il as usize * 16;
        if blob.len() != data_start + dl as usize {
            return Err(bad(format!(
                "header claims {} bytes but has {}",
                data_start + dl as usize,
                blob.len()
            )));
        }
        let mut entries = Vec::with_capacity(il as usize);
        let mut by_tag = BTreeMap::new();
        for i in 0..il as usize {
            let at = 8 + i * 16;
            let ty = be32(&blob, at + 4);
            let e = Entry {
                tag: be32(&blob, at),
                ty: Type::from_u32(ty)
                    .ok_or_else(|| bad(format!("entry {i} has unknown type {ty}")))?,
                offset: be32(&blob, at + 8),
                count: be32(&blob, at + 12),
            };
            by_tag.entry(e.tag).or_insert(i);
            entries.push(e);
        }
        let h = Header {
            blob,
            entries,
            by_tag,
        };
        h.verify_entries()?;
        Ok(h)
    }

    /// rpm's checks of every entry (see the module doc), and one decode of
    /// each so later reads cannot fail on bounds.
    fn verify_entries(&self) -> Result<(), HeaderError> {
        let dl = self.data().len() as u64;
        // The region: its tag first, its trailer inside the data.
        let region_end = match self.entries.first() {
            Some(first) if (61..=63).contains(&first.tag) => {
                if first.ty != Type::Bin || first.count != 16 {
                    return Err(bad(format!("region tag {} is malformed", first.tag)));
                }
                let end = u64::from(first.offset) + 16;
                if end > dl {
                    return Err(bad(format!(
                        "region trailer at offset {} lies outside the {dl} bytes of data",
                        first.offset
                    )));
                }
                let trailer = &self.data()[first.offset as usize..end as usize];
                let back = (be32(trailer, 8) as i32).unsigned_abs() as usize;
                if !back.is_multiple_of(16) || back / 16 > self.entries.len() {
                    return Err(bad(format!(
                        "region trailer covers {back} bytes of index, more than the header's {} \
                         entries",
                        self.entries.len()
                    )));
                }
                Some(end)
            }
            _ => None,
        };
        let mut end = 0u64;
        let skip = usize::from(region_end.is_some());
        for (i, e) in self.entries.iter().enumerate().skip(skip) {
            let at = u64::from(e.offset);
            let name = || format!("entry {i} (tag {})", e.tag);
            if e.tag < MIN_TAG {
                return Err(bad(format!(
                    "{}: tags below {MIN_TAG} are reserved (rpm refuses them)",
                    name()
                )));
            }
            if e.count < 1 || u64::from(e.count) > dl {
                return Err(bad(format!(
                    "{} has count {}, outside 1 to the {dl} bytes of data",
                    name(),
                    e.count
                )));
            }
            if e.ty != Type::Bin && e.count > MAX_ARRAY {
                return Err(bad(format!(
                    "{} has {} elements, over rpm's limit of {MAX_ARRAY}",
                    name(),
                    e.count
                )));
            }
            if at < end {
                return Err(bad(format!(
                    "{} overlaps the data of the entry before it",
                    name()
                )));
            }
            if !at.is_multiple_of(e.ty.align() as u64) {
                return Err(bad(format!("{} is not aligned for its type", name())));
            }
            if at > dl {
                return Err(bad(format!("{} data out of bounds", name())));
            }
            let len = self.data_len(e)?;
            if len == 0 {
                return Err(bad(format!("{} has no data", name())));
            }
            end = at + len;
            if let Some(rdl) = region_end
                && end > rdl - 16
                && at < rdl
            {
                return Err(bad(format!("{} overlaps the region trailer", name())));
            }
        }
        if region_end.is_some() && self.entries[0].tag == tag::HEADERIMMUTABLE {
            self.region_len()?;
        }
        Ok(())
    }

    /// Bytes of data entry `e` takes, with the checks [`Header::decode`]
    /// makes (bounds, a STRING's count, string terminators) and nothing
    /// decoded: every entry of every header read passes here once.
    fn data_len(&self, e: &Entry) -> Result<u64, HeaderError> {
        let n = u64::from(e.count);
        match e.ty {
            Type::Null => return Ok(0),
            Type::String | Type::StringArray | Type::I18nString => {}
            _ => return Ok(self.fixed_bytes(e)?.len() as u64),
        }
        if e.ty == Type::String && n != 1 {
            return Err(bad(format!("tag {} is a STRING with count {n}", e.tag)));
        }
        let rest = self
            .data()
            .get(e.offset as usize..)
            .ok_or_else(|| bad(format!("tag {} data out of bounds", e.tag)))?;
        // Strings are read lossily; their extent is where the count-th
        // NUL falls.
        let Some(last) = (e.count as usize).checked_sub(1) else {
            return Ok(0);
        };
        match memchr::memchr_iter(0, rest).nth(last) {
            Some(last) => Ok(last as u64 + 1),
            None => Err(bad(format!("tag {} string is not terminated", e.tag))),
        }
    }

    /// `il`, `dl`, index and data (no magic).
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The header as it appears in a package file: magic, then the blob.
    pub fn with_magic(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + self.blob.len());
        v.extend_from_slice(&MAGIC);
        v.extend_from_slice(&self.blob);
        v
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn data(&self) -> &[u8] {
        &self.blob[8 + self.entries.len() * 16..]
    }

    /// (entries, data bytes) covered by the immutable region, when the
    /// header has one.
    pub fn region_len(&self) -> Result<Option<(usize, usize)>, HeaderError> {
        let Some(first) = self.entries.first() else {
            return Ok(None);
        };
        if first.tag != tag::HEADERIMMUTABLE {
            return Ok(None);
        }
        if first.ty != Type::Bin || first.count != 16 {
            return Err(bad("malformed immutable region tag"));
        }
        let data = self.data();
        let off = first.offset as usize;
        if off.checked_add(16).is_none_or(|end| end > data.len()) {
            return Err(bad("immutable region trailer out of bounds"));
        }
        let trailer = &data[off..off + 16];
        let ril = (be32(trailer, 8) as i32).unsigned_abs() as usize / 16;
        if be32(trailer, 0) != tag::HEADERIMMUTABLE || ril == 0 || ril > self.entries.len() {
            return Err(bad("malformed immutable region trailer"));
        }
        Ok(Some((ril, off + 16)))
    }

    /// The data of a fixed-size entry, `count` elements as wide as its
    /// type is aligned (1, 2, 4 or 8 bytes), bounds checked.
    fn fixed_bytes(&self, e: &Entry) -> Result<&[u8], HeaderError> {
        let data = self.data();
        let off = e.offset as usize;
        let len = (e.count as usize)
            .checked_mul(e.ty.align())
            .ok_or_else(|| bad(format!("tag {} count overflows", e.tag)))?;
        if off.checked_add(len).is_none_or(|end| end > data.len()) {
            return Err(bad(format!("tag {} data out of bounds", e.tag)));
        }
        Ok(&data[off..off + len])
    }

    fn decode(&self, e: &Entry) -> Result<Value, HeaderError> {
        let data = self.data();
        let off = e.offset as usize;
        let n = e.count as usize;
        let fixed = || self.fixed_bytes(e);
        let strings = |n: usize| -> Result<Vec<String>, HeaderError> {
            let mut out = Vec::with_capacity(n.min(65_536));
            let mut at = off;
            for _ in 0..n {
                let rest = data
                    .get(at..)
                    .ok_or_else(|| bad(format!("tag {} data out of bounds", e.tag)))?;
                let len = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| bad(format!("tag {} string is not terminated", e.tag)))?;
                out.push(String::from_utf8_lossy(&rest[..len]).into_owned());
                at += len + 1;
            }
            Ok(out)
        };
        Ok(match e.ty {
            Type::Null => Value::Null,
            Type::Char => Value::Char(fixed()?.to_vec()),
            Type::Int8 => Value::Int8(fixed()?.to_vec()),
            Type::Bin => Value::Bin(fixed()?.to_vec()),
            Type::Int16 => Value::Int16(
                fixed()?
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            ),
            Type::Int32 => Value::Int32(fixed()?.chunks_exact(4).map(|c| be32(c, 0)).collect()),
            Type::Int64 => Value::Int64(
                fixed()?
                    .chunks_exact(8)
                    .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Type::String => {
                if n != 1 {
                    return Err(bad(format!("tag {} is a STRING with count {n}", e.tag)));
                }
                Value::String(strings(1)?.remove(0))
            }
            Type::StringArray => Value::StringArray(strings(n)?),
            Type::I18nString => Value::I18nString(strings(n)?),
        })
    }

    pub fn has(&self, tag: u32) -> bool {
        self.by_tag.contains_key(&tag)
    }

    pub fn get(&self, tag: u32) -> Option<Value> {
        let e = &self.entries[*self.by_tag.get(&tag)?];
        self.decode(e).ok()
    }

    pub fn entry(&self, tag: u32) -> Option<&Entry> {
        self.by_tag.get(&tag).map(|&i| &self.entries[i])
    }

    /// A STRING (or the first of an I18N string / string array).
    pub fn string(&self, tag: u32) -> Option<String> {
        match self.get(tag)? {
            Value::String(s) => Some(s),
            Value::I18nString(v) | Value::StringArray(v) => v.into_iter().next(),
            _ => None,
        }
    }

    pub fn strings(&self, tag: u32) -> Vec<String> {
        match self.get(tag) {
            Some(Value::StringArray(v) | Value::I18nString(v)) => v,
            Some(Value::String(s)) => vec![s],
            _ => Vec::new(),
        }
    }

    /// INT8/16/32/64 widened to u64; empty when absent.
    pub fn ints(&self, tag: u32) -> Vec<u64> {
        match self.get(tag) {
            Some(Value::Int8(v) | Value::Char(v)) => v.into_iter().map(u64::from).collect(),
            Some(Value::Int16(v)) => v.into_iter().map(u64::from).collect(),
            Some(Value::Int32(v)) => v.into_iter().map(u64::from).collect(),
            Some(Value::Int64(v)) => v,
            _ => Vec::new(),
        }
    }

    pub fn int(&self, tag: u32) -> Option<u64> {
        self.ints(tag).into_iter().next()
    }

    pub fn bin(&self, tag: u32) -> Option<Vec<u8>> {
        match self.get(tag)? {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// The immutable region alone, as a blob: what an installed package's
    /// record starts with.
    pub fn region_blob(&self) -> Result<Vec<u8>, HeaderError> {
        let (ril, rdl) = self
            .region_len()?
            .ok_or_else(|| bad("header has no immutable region"))?;
        let mut out = Vec::with_capacity(8 + ril * 16 + rdl);
        out.extend_from_slice(&(ril as u32).to_be_bytes());
        out.extend_from_slice(&(rdl as u32).to_be_bytes());
        out.extend_from_slice(&self.blob[8..8 + ril * 16]);
        out.extend_from_slice(&self.data()[..rdl]);
        Ok(out)
    }
}

fn check_sizes(il: u32, dl: u32) -> Result<(), HeaderError> {
    check_limits(il, dl, Limits::HEADER)
}

fn check_limits(il: u32, dl: u32, limits: Limits) -> Result<(), HeaderError> {
    if il == 0 {
        return Err(bad("header has no entries"));
    }
    if il > limits.entries {
        return Err(bad(format!(
            "header has {il} index entries, over rpm's limit of {}",
            limits.entries
        )));
    }
    if dl > limits.data {
        return Err(bad(format!(
            "header has {dl} bytes of data, over rpm's limit of {}",
            limits.data
        )));
    }
    let blob = 8 + il as usize * 16 + dl as usize;
    if blob >= MAX_BLOB {
        return Err(bad(format!(
            "header is {blob} bytes, over rpm's limit of {MAX_BLOB}"
        )));
    }
    Ok(())
}

/// A value to append to a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub tag: u32,
    pub value: Value,
}

impl NewEntry {
    /// A `STRING` entry.
    pub fn string(tag: u32, v: &str) -> Self {
        NewEntry {
            tag,
            value: Value::String(v.to_string()),
        }
    }

    /// An `I18NSTRING` entry with one (the `C`) translation.
    pub fn i18n(tag: u32, v: &str) -> Self {
        NewEntry {
            tag,
            value: Value::I18nString(vec![v.to_string()]),
        }
    }

    /// A `STRING_ARRAY` entry.
    pub fn strings(tag: u32, v: Vec<String>) -> Self {
        NewEntry {
            tag,
            value: Value::StringArray(v),
        }
    }

    /// An `INT32` entry.
    pub fn int32(tag: u32, v: Vec<u32>) -> Self {
        NewEntry {
            tag,
            value: Value::Int32(v),
        }
    }
}

fn encode(v: &Value) -> (Type, u32, Vec<u8>) {
    let mut b = Vec::new();
    let v_type = match v {
        Value::I18nString(_) => Type::I18nString,
        _ => Type::StringArray,
    };
    let (ty, count) = match v {
        Value::Null => (Type::Null, 0),
        Value::Char(x) => {
            b.extend_from_slice(x);
            (Type::Char, x.len())
        }
        Value::Int8(x) => {
            b.extend_from_slice(x);
            (Type::Int8, x.len())
        }
        Value::Bin(x) => {
            b.extend_from_slice(x);
            (Type::Bin, x.len())
        }
        Value::Int16(x) => {
            x.iter().for_each(|n| b.extend_from_slice(&n.to_be_bytes()));
            (Type::Int16, x.len())
        }
        Value::Int32(x) => {
            x.iter().for_each(|n| b.extend_from_slice(&n.to_be_bytes()));
            (Type::Int32, x.len())
        }
        Value::Int64(x) => {
            x.iter().for_each(|n| b.extend_from_slice(&n.to_be_bytes()));
            (Type::Int64, x.len())
        }
        Value::String(s) => {
            b.extend_from_slice(s.as_bytes());
            b.push(0);
            (Type::String, 1)
        }
        Value::StringArray(v) | Value::I18nString(v) => {
            for s in v {
                b.extend_from_slice(s.as_bytes());
                b.push(0);
            }
            let t = match v_type {
                Type::I18nString => Type::I18nString,
                _ => Type::StringArray,
            };
            (t, v.len())
        }
    };
    (ty, count as u32, b)
}

/// Build a blob: the immutable region of `base` followed by `extra`
/// entries in tag order, their data appended with natural alignment, as
/// rpm lays out an installed package's header.
pub fn region_plus(base: &Header, mut extra: Vec<NewEntry>) -> Result<Vec<u8>, HeaderError> {
    let region = base.region_blob()?;
    let ril = be32(&region, 0) as usize;
    let rdl = be32(&region, 4) as usize;
    extra.sort_by_key(|e| e.tag);
    let mut index = region[8..8 + ril * 16].to_vec();
    let mut data = region[8 + ril * 16..8 + ril * 16 + rdl].to_vec();
    for e in &extra {
        let (ty, count, bytes) = encode(&e.value);
        while data.len() % ty.align() != 0 {
            data.push(0);
        }
        index.extend_from_slice(&e.tag.to_be_bytes());
        index.extend_from_slice(&(ty as u32).to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&count.to_be_bytes());
        data.extend_from_slice(&bytes);
    }
    let il = (ril + extra.len()) as u32;
    let mut out = Vec::with_capacity(8 + index.len() + data.len());
    out.extend_from_slice(&il.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Build a new header blob (no magic) the way rpm lays out a package's
/// header: the region tag `region_tag` first, then `entries` in tag order
/// (a stable sort: entries of one tag keep their order), their data
/// appended in that order with natural alignment, and the region's
/// trailer (an index entry pointing back over all of them) at the end of
/// the data.
pub fn encode_header(mut entries: Vec<NewEntry>, region_tag: u32) -> Result<Vec<u8>, HeaderError> {
    entries.sort_by_key(|e| e.tag);
    let il = entries.len() + 1;
    let mut index = Vec::with_capacity(il * 16);
    let mut data = Vec::new();
    let mut rows = Vec::with_capacity(entries.len());
    for e in &entries {
        let (ty, count, bytes) = encode(&e.value);
        while data.len() % ty.align() != 0 {
            data.push(0);
        }
        rows.push((e.tag, ty, data.len(), count));
        data.extend_from_slice(&bytes);
    }
    let too_big = || bad("header is too large for rpm");
    let trailer_at = u32::try_from(data.len()).map_err(|_| too_big())?;
    let back = i32::try_from(il * 16).map_err(|_| too_big())?;
    data.extend_from_slice(&region_tag.to_be_bytes());
    data.extend_from_slice(&(Type::Bin as u32).to_be_bytes());
    data.extend_from_slice(&(-back).to_be_bytes());
    data.extend_from_slice(&16u32.to_be_bytes());
    let il = u32::try_from(il).map_err(|_| too_big())?;
    let dl = u32::try_from(data.len()).map_err(|_| too_big())?;
    check_sizes(il, dl)?;
    for (tag, ty, offset, count) in
        std::iter::once((region_tag, Type::Bin, trailer_at as usize, 16)).chain(rows)
    {
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&(ty as u32).to_be_bytes());
        index.extend_from_slice(&(offset as u32).to_be_bytes());
        index.extend_from_slice(&count.to_be_bytes());
    }
    let mut out = Vec::with_capacity(8 + index.len() + data.len());
    out.extend_from_slice(&il.to_be_bytes());
    out.extend_from_slice(&dl.to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::read::PackageHeaders;

    #[test]
    fn encoded_headers_match_the_rpm_crates_and_parse_back() {
        use ::rpm::{HeaderEntry, IndexData, IndexSignatureTag, IndexTag};
        let ours = vec![
            NewEntry {
                tag: 1000,
                value: Value::String("name".into()),
            },
            NewEntry {
                tag: 1030,
                value: Value::Int16(vec![0o100644, 0o40755, 7]),
            },
            NewEntry {
                tag: 1004,
                value: Value::I18nString(vec!["summary".into()]),
            },
            NewEntry {
                tag: 5008,
                value: Value::Int64(vec![1, 1 << 40]),
            },
            NewEntry {
                tag: 1028,
                value: Value::Int32(vec![3, 4]),
            },
            NewEntry {
                tag: 1117,
                value: Value::StringArray(vec!["a".into(), "bc".into()]),
            },
            NewEntry {
                tag: 1008,
                value: Value::Bin(vec![0; 5]),
            },
            NewEntry {
                tag: 1029,
                value: Value::Char(vec![1, 2, 3]),
            },
        ];
        let theirs: Vec<HeaderEntry> = ours
            .iter()
            .map(|e| {
                let data = match &e.value {
                    Value::String(s) => IndexData::StringTag(s.clone()),
                    Value::Int16(v) => IndexData::Int16(v.clone()),
                    Value::I18nString(v) => IndexData::I18NString(v.clone()),
                    Value::Int64(v) => IndexData::Int64(v.clone()),
                    Value::Int32(v) => IndexData::Int32(v.clone()),
                    Value::StringArray(v) => IndexData::StringArray(v.clone()),
                    Value::Bin(v) => IndexData::Bin(v.clone()),
                    Value::Char(v) => IndexData::Char(v.clone()),
                    _ => unreachable!(),
                };
                HeaderEntry::new(e.tag, data)
            })
            .collect();
        // The rpm crate lays headers out the way rpm does; ingot's encoder
        // must give the same bytes.
        let md = ::rpm::PackageMetadata {
            lead: ::rpm::Lead::new("x"),
            signature: ::rpm::Header::<IndexSignatureTag>::new_empty(),
            header: ::rpm::Header::from_entries(theirs, IndexTag::RPMTAG_HEADERIMMUTABLE),
        };
        let want = md.header_bytes().unwrap();
        let got = encode_header(ours, tag::HEADERIMMUTABLE).unwrap();
        assert!(
            got[..] == want[8..],
            "encoded header differs from the rpm crate's"
        );
        let back = Header::from_blob(got).unwrap();
        assert_eq!(back.region_len().unwrap().map(|(n, _)| n), Some(9));
        assert_eq!(back.int(1028), Some(3));
        assert_eq!(back.ints(5008), vec![1, 1 << 40]);
        assert_eq!(back.strings(1117), vec!["a", "bc"]);
    }

    #[test]
    fn tag_numbers_agree_with_the_rpm_crate() {
        use ::rpm::{IndexSignatureTag as S, IndexTag as T};
        for (ours, theirs) in [
            (tag::HEADERSIGNATURES, S::HEADER_SIGNATURES as u32),
            (tag::SIG_OPENPGP, S::RPMSIGTAG_OPENPGP as u32),
            (tag::SIG_RESERVEDSPACE, S::RPMSIGTAG_RESERVEDSPACE as u32),
            (tag::SIG_SHA1, S::RPMSIGTAG_SHA1 as u32),
            (tag::SIG_SHA256, S::RPMSIGTAG_SHA256 as u32),
            (tag::SIG_MD5, S::RPMSIGTAG_MD5 as u32),
            (tag::SIG_SIZE, S::RPMSIGTAG_SIZE as u32),
            (tag::SIG_LONGSIZE, S::RPMSIGTAG_LONGSIZE as u32),
            (tag::SIG_PAYLOADSIZE, S::RPMSIGTAG_PAYLOADSIZE as u32),
            (
                tag::SIG_LONGARCHIVESIZE,
                S::RPMSIGTAG_LONGARCHIVESIZE as u32,
            ),
            (tag::SIG_RSA, S::RPMSIGTAG_RSA as u32),
            (tag::SIG_DSA, S::RPMSIGTAG_DSA as u32),
            (tag::RPMVERSION, T::RPMTAG_RPMVERSION as u32),
            (tag::FILEVERIFYFLAGS, T::RPMTAG_FILEVERIFYFLAGS as u32),
            (tag::CHANGELOGTIME, T::RPMTAG_CHANGELOGTIME as u32),
            (tag::CHANGELOGNAME, T::RPMTAG_CHANGELOGNAME as u32),
            (tag::CHANGELOGTEXT, T::RPMTAG_CHANGELOGTEXT as u32),
            (tag::FILEDEPENDSX, T::RPMTAG_FILEDEPENDSX as u32),
            (tag::FILEDEPENDSN, T::RPMTAG_FILEDEPENDSN as u32),
            (tag::DEPENDSDICT, T::RPMTAG_DEPENDSDICT as u32),
            (tag::ORDERNAME, T::RPMTAG_ORDERNAME as u32),
            (tag::ORDERVERSION, T::RPMTAG_ORDERVERSION as u32),
            (tag::ORDERFLAGS, T::RPMTAG_ORDERFLAGS as u32),
            (tag::ENCODING, T::RPMTAG_ENCODING as u32),
            (tag::PAYLOADDIGEST, T::RPMTAG_PAYLOADSHA256 as u32),
            (tag::PAYLOADDIGESTALT, T::RPMTAG_PAYLOADSHA256ALT as u32),
            (tag::PAYLOADDIGESTALGO, T::RPMTAG_PAYLOADSHA256ALGO as u32),
            (tag::FILECAPS, T::RPMTAG_FILECAPS as u32),
            (tag::LONGFILESIZES, T::RPMTAG_LONGFILESIZES as u32),
            (tag::LONGSIZE, T::RPMTAG_LONGSIZE as u32),
            (tag::FILEDIGESTALGO, T::RPMTAG_FILEDIGESTALGO as u32),
        ] {
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn installed_record_equals_rpms_own_byte_for_byte() {
        let (Some(rpm), Some(oracle)) = (
            crate::testutil::shared("rpm-install-oracle/hello-fixture-1.0-1.amzn2023.noarch.rpm"),
            crate::testutil::shared("rpm-install-oracle/hello-fixture.installed-header.bin"),
        ) else {
            return;
        };
        let (h, _) = PackageHeaders::open(&rpm).unwrap();
        let files = h.header.strings(tag::BASENAMES).len();
        let t = 1_795_304_986u32;
        let extra = vec![
            NewEntry {
                tag: tag::SIGSIZE,
                value: Value::Int32(vec![h.signature.int(tag::SIG_SIZE).unwrap() as u32]),
            },
            NewEntry {
                tag: tag::SIGMD5,
                value: Value::Bin(h.signature.bin(tag::SIG_MD5).unwrap()),
            },
            NewEntry {
                tag: tag::SHA1HEADER,
                value: Value::String(h.signature.string(tag::SIG_SHA1).unwrap()),
            },
            NewEntry {
                tag: tag::SHA256HEADER,
                value: Value::String(h.signature.string(tag::SIG_SHA256).unwrap()),
            },
            NewEntry {
                tag: tag::INSTALLTIME,
                value: Value::Int32(vec![t]),
            },
            NewEntry {
                tag: tag::FILESTATES,
                value: Value::Char(vec![0; files]),
            },
            NewEntry {
                tag: tag::ARCHIVESIZE,
                value: Value::Int32(vec![h.signature.int(tag::SIG_PAYLOADSIZE).unwrap() as u32]),
            },
            NewEntry {
                tag: tag::INSTALLCOLOR,
                value: Value::Int32(vec![3]),
            },
            NewEntry {
                tag: tag::INSTALLTID,
                value: Value::Int32(vec![t]),
            },
        ];
        let blob = region_plus(&h.header, extra).unwrap();
        let want = std::fs::read(oracle).unwrap();
        assert_eq!(blob.len(), want.len());
        assert!(blob == want, "blob differs from rpm's");
        // And it parses back.
        let back = Header::from_blob(blob).unwrap();
        assert_eq!(back.int(tag::INSTALLTID), Some(u64::from(t)));
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        let mut blob = vec![0, 0, 0, 1, 0, 0, 0, 4];
        // One entry: tag 1000 STRING at offset 100 (out of bounds).
        blob.extend_from_slice(&1000u32.to_be_bytes());
        blob.extend_from_slice(&6u32.to_be_bytes());
        blob.extend_from_slice(&100u32.to_be_bytes());
        blob.extend_from_slice(&1u32.to_be_bytes());
        blob.extend_from_slice(b"abc\0");
        assert!(Header::from_blob(blob.clone()).is_err());
        // Unterminated string.
        let mut b2 = blob.clone();
        b2[16..20].copy_from_slice(&0u32.to_be_bytes());
        b2[24..28].copy_from_slice(b"abcd");
        assert!(Header::from_blob(b2).is_err());
        // Lies about its size.
        let mut b3 = blob;
        b3[4..8].copy_from_slice(&4000u32.to_be_bytes());
        assert!(Header::from_blob(b3).is_err());
        assert!(Header::from_blob(vec![0xff; 8]).is_err());
    }

    /// A blob from raw index entries `(tag, type, offset, count)` and data.
    fn raw_blob(entries: &[(u32, u32, u32, u32)], data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for &(t, ty, off, n) in entries {
            for v in [t, ty, off, n] {
                b.extend_from_slice(&v.to_be_bytes());
            }
        }
        b.extend_from_slice(data);
        b
    }

    fn refused(blob: Vec<u8>) -> String {
        Header::from_blob(blob)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.0)
    }

    #[test]
    fn each_of_rpms_header_limits_is_named_when_hit() {
        // A sane one first: two strings and an INT32, in order.
        let ok = raw_blob(
            &[(1000, 6, 0, 1), (1001, 6, 2, 1), (1009, 4, 4, 1)],
            b"a\0b\0\0\0\0\x07",
        );
        assert_eq!(Header::from_blob(ok).unwrap().int(1009), Some(7));
        for (blob, said) in [
            (
                raw_blob(&[(50, 6, 0, 1)], b"a\0"),
                "tags below 100 are reserved",
            ),
            (
                raw_blob(&[(1000, 7, 0, 0)], b"a\0"),
                "has count 0, outside 1 to the 2 bytes",
            ),
            (
                raw_blob(&[(1000, 7, 0, 3)], b"a\0"),
                "has count 3, outside 1 to the 2 bytes",
            ),
            (
                raw_blob(&[(1000, 4, 2, 1)], &[0; 8]),
                "is not aligned for its type",
            ),
            (
                raw_blob(&[(1000, 6, 0, 1), (1001, 6, 0, 1)], b"a\0"),
                "entry 1 (tag 1001) overlaps",
            ),
            (raw_blob(&[(1000, 6, 9, 1)], b"a\0"), "data out of bounds"),
            (
                raw_blob(&[(1000, 4, 0, 1)], b"\0\0"),
                "tag 1000 data out of bounds",
            ),
            (
                raw_blob(&[(1000, 6, 0, 1)], b"ab"),
                "tag 1000 string is not terminated",
            ),
            (
                raw_blob(&[(1000, 8, 0, 2)], b"a\0b"),
                "tag 1000 string is not terminated",
            ),
            (
                raw_blob(&[(1000, 6, 0, 2)], b"a\0b\0"),
                "tag 1000 is a STRING with count 2",
            ),
            (raw_blob(&[(1000, 0, 0, 1)], b"a\0"), "has no data"),
            (raw_blob(&[(1000, 12, 0, 1)], b"a\0"), "unknown type 12"),
        ] {
            let e = refused(blob);
            assert!(e.contains(said), "{e} (wanted {said})");
        }
        // More elements than rpm's array limit (data of that size is real).
        let big = vec![0u8; MAX_ARRAY as usize + 1];
        let e = refused(raw_blob(&[(1000, 2, 0, MAX_ARRAY + 1)], &big));
        assert!(
            e.contains("has 1048576 elements, over rpm's limit of 1048575"),
            "{e}"
        );
        // Sizes in the intro, checked before anything is allocated.
        let mut intro = MAGIC.to_vec();
        intro.extend_from_slice(&(MAX_ENTRIES + 1).to_be_bytes());
        intro.extend_from_slice(&0u32.to_be_bytes());
        let e = Header::read_with_magic(&mut &intro[..]).unwrap_err().0;
        assert!(
            e.contains("65536 index entries, over rpm's limit of 65535"),
            "{e}"
        );
        let mut intro = MAGIC.to_vec();
        intro.extend_from_slice(&1u32.to_be_bytes());
        intro.extend_from_slice(&(MAX_DATA + 1).to_be_bytes());
        let e = Header::read_with_magic(&mut &intro[..]).unwrap_err().0;
        assert!(
            e.contains("268435456 bytes of data, over rpm's limit of 268435455"),
            "{e}"
        );
        let mut intro = MAGIC.to_vec();
        intro.extend_from_slice(&33u32.to_be_bytes());
        intro.extend_from_slice(&0u32.to_be_bytes());
        let e = Header::read_with_magic_limited(&mut &intro[..], Limits::SIGNATURE)
            .unwrap_err()
            .0;
        assert!(
            e.contains("33 index entries, over rpm's limit of 32"),
            "{e}"
        );
    }

    #[test]
    fn a_region_trailer_out_of_bounds_or_overlapped_is_refused() {
        // Region tag 63 pointing past the data.
        let e = refused(raw_blob(&[(63, 7, 100, 16)], &[0; 16]));
        assert!(
            e.contains("region trailer at offset 100 lies outside"),
            "{e}"
        );
        // A trailer claiming more index than the header has.
        let mut trailer = Vec::new();
        for v in [63u32, 7, (-(16 * 5i32)) as u32, 16] {
            trailer.extend_from_slice(&v.to_be_bytes());
        }
        let e = refused(raw_blob(&[(63, 7, 0, 16)], &trailer));
        assert!(e.contains("more than the header's 1 entries"), "{e}");
        // An entry whose data runs over the trailer.
        let mut data = b"abc\0".to_vec();
        let mut t = Vec::new();
        for v in [63u32, 7, (-32i32) as u32, 16] {
            t.extend_from_slice(&v.to_be_bytes());
        }
        data.extend_from_slice(&t);
        let e = refused(raw_blob(&[(63, 7, 4, 16), (1000, 7, 2, 4)], &data));
        assert!(e.contains("overlaps the region trailer"), "{e}");
    }

    #[test]
    fn many_entries_over_one_big_datum_are_refused_in_one_pass() {
        // 60,000 entries all pointing at the same 16 MiB: decoding each
        // would copy 960 GB; rpm's no-overlap rule refuses it at entry 1.
        let data = vec![0u8; 16 << 20];
        let entries: Vec<(u32, u32, u32, u32)> =
            (0..60_000).map(|i| (1000 + i, 7, 0, 16 << 20)).collect();
        let e = refused(raw_blob(&entries, &data));
        assert!(e.contains("entry 1 (tag 1001) overlaps"), "{e}");
    }
}
