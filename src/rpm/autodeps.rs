//! Automatic per-file dependencies, as rpmbuild 4.18 generates them.
//!
//! **In:** one payload file, given as a path on disk, and the permission bits
//! it will have in the package (`mode`). [`scan_file_as`] also takes the
//! file's path in the package, for a file whose name on disk differs.
//!
//! **Out:** a [`FileDeps`]: the dependency names rpmbuild 4.18's two stock
//! file classifiers would give that file, unversioned, exactly as rpm spells
//! them (`libc.so.6()(64bit)`, `libc.so.6(GLIBC_2.34)(64bit)`,
//! `rtld(GNU_HASH)`, `/usr/bin/python3`, ...), in sorted sets so that the
//! result is deterministic:
//!
//! * **ELF files** follow rpm 4.18's `tools/elfdeps.c` (run by
//!   `fileattrs/elf.attr`, which has no flags). The rules were read there and
//!   rewritten here, not copied:
//!   - only `ET_EXEC` and `ET_DYN` files give anything; the `(64bit)` marker
//!     is added for `ELFCLASS64`, except on Alpha (`EM_ALPHA`,
//!     `EM_FAKE_ALPHA`);
//!   - requires come from `DT_NEEDED` (`soname()(64bit)`, or the plain
//!     soname on 32-bit), from `.gnu.version_r` (`soname(VERSION)(64bit)`,
//!     `GLIBC_PRIVATE` included: 4.18 no longer filters it), and
//!     `rtld(GNU_HASH)` when there is `DT_GNU_HASH` but no `DT_HASH`. They
//!     are generated unless the file has a `PT_INTERP` program header and no
//!     exec bit in `mode`: a shared library gives requires whatever its mode;
//!   - provides come from `.gnu.version_d` (`soname(VERSION)(64bit)`, the
//!     soname being the base definition's name; the parent names listed in
//!     a definition add nothing), and, for `ET_DYN` files without `DT_DEBUG` (so not PIE
//!     executables), the soname itself: `DT_SONAME`, or else the file's base
//!     name;
//!   - every name passes elfdeps' soname filter: not blank, contains `.so`,
//!     and starts with `lib`, `ld.`, `ld-` or `ld6` (4.18 compares only
//!     three characters of `ld64.` and `ld64-`).
//! * **`#!` scripts** follow `fileattrs/script.attr` and `script.req`. Only
//!   files with an exec bit in `mode` count (`exeonly`); line one gives the
//!   interpreter path (`#! /usr/bin/python3 -u` gives `/usr/bin/python3`,
//!   `#!/usr/bin/env python3` gives `/usr/bin/env`), and
//!   `#!/usr/bin/env /abs/path` gives `/usr/bin/env`, `/abs/path` and the
//!   rest of that line as rpm's parser splits it (so
//!   `#!/usr/bin/env /usr/bin/perl -w` makes rpmbuild fail, see below).
//!   libmagic's verdict "script" is taken to mean "starts with `#!`", except
//!   for `#!/usr/bin/pdmenu`, which it calls a configuration file.
//!
//! What a helper prints is then read the way rpmbuild's `rpmfc` reads it: cut
//! at a NUL byte, split at newlines, carriage returns, whitespace and commas.
//!
//! **Never:** it never runs a program (no `file`, no rpm helpers), never
//! writes, never reads a whole file (it classifies on the first 16 bytes,
//! reads line one of a script, and reads ELF structures through
//! [`object::read::ReadCache`], which it empties past 1 MiB), never panics
//! on malformed input, and knows no other classifier (perl, python,
//! pkgconfig, ... give nothing here). Symlinks are followed; anything that
//! is not a regular file gives nothing.
//!
//! **Errors.** Where elfdeps prints nothing for a broken ELF file (too short,
//! bad ident, section table out of the file, unreadable sections, a zero
//! `sh_entsize` on which 4.18 dies of SIGFPE), or prints what it could read,
//! this module gives the same, and that is not an error. Where rpmbuild 4.18
//! would fail the build because a helper printed a token its dependency
//! parser rejects (`-w` in `#!/usr/bin/env /usr/bin/perl -w`), or where the
//! result is not a plain name this API can carry (a versioned or rich
//! dependency, a name that is not UTF-8), [`scan_file`] returns an
//! [`io::Error`] of kind [`io::ErrorKind::InvalidData`] saying which. Other
//! errors are I/O errors on the file. Like `std::fs`, messages do not repeat
//! the path: the caller knows it.
//!
//! **Known differences from rpmbuild.** rpmbuild takes the exec bits from
//! the file in the build root; here they come from `mode`. libelf converts
//! the version sections of a file of the other byte order by walking their
//! chains; this is reproduced (on a copy of the section, for sections up to
//! 16 MiB; larger ones are skipped). elfdeps can spin for hours on a version
//! chain that loops or has a huge `sh_info`; here the walk stops once it can
//! only repeat itself, with the same names as a result. `script.req` runs
//! `sed` in the build's locale; here line one is matched as in the C locale
//! (they differ only on non-ASCII whitespace and on bytes that are not
//! UTF-8, which are refused anyway), and a first line over 64 KiB is refused
//! with `InvalidData`. libmagic verdicts other than the one above are not
//! reproduced: for example Debian's magic calls some `#! /usr/bin/env node`
//! files "JavaScript source", and rpmbuild then gives them no requires.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::mem::size_of;
use std::path::Path;

use object::Endianness;
use object::ReadRef;
use object::elf;
use object::pod::Pod;
use object::read::ReadCache;
use object::read::elf::{Dyn as _, FileHeader, ProgramHeader as _, SectionHeader as _};

/// What one payload file needs and offers, as rpm's file classifiers would say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileDeps {
    /// Names the file needs (`Requires:`), sorted.
    pub requires: std::collections::BTreeSet<String>,
    /// Names the file offers (`Provides:`), sorted.
    pub provides: std::collections::BTreeSet<String>,
}

impl FileDeps {
    /// True when the file neither requires nor provides anything.
    pub fn is_empty(&self) -> bool {
        self.requires.is_empty() && self.provides.is_empty()
    }
}

/// `path` is the file on disk; `mode` the permission bits (e.g. 0o755) the file will have IN THE PACKAGE
/// (not necessarily on disk). Returns empty FileDeps for files that are neither ELF nor `#!` scripts.
///
/// A shared library without `DT_SONAME` provides its base name; this takes
/// it from `path`. Use [`scan_file_as`] when the file has another name in
/// the package.
pub fn scan_file(path: &std::path::Path, mode: u32) -> std::io::Result<FileDeps> {
    scan(path, mode, base_name(path.as_os_str().as_encoded_bytes()))
}

/// Like [`scan_file`], for a file whose name in the package differs from its
/// name on disk: `payload_path` is its path in the package (for example
/// `/usr/lib64/libfoo.so.1`). Only its last component is used, as the
/// provide of a shared library that has no `DT_SONAME`.
pub fn scan_file_as(path: &Path, mode: u32, payload_path: &str) -> io::Result<FileDeps> {
    scan(path, mode, base_name(payload_path.as_bytes()))
}

/// What `scan_file` would say for `path` with `mode`, or empty deps when the
/// file cannot be read or rpmbuild would refuse it. For tests and diagnostics
/// that only want the names.
pub fn scan_file_lossy(path: &Path, mode: u32) -> FileDeps {
    scan_file(path, mode).unwrap_or_default()
}

/// Everything after the last `/`, as elfdeps takes the base name.
fn base_name(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

const EXEC_BITS: u32 = 0o111;

/// How many leading bytes classify a file: enough for an ELF ident.
const SNIFF_LEN: u64 = 16;

fn scan(path: &Path, mode: u32, base: &[u8]) -> io::Result<FileDeps> {
    // `metadata` follows symlinks; directories, FIFOs (which would block on
    // open) and devices give nothing.
    if !std::fs::metadata(path)?.is_file() {
        return Ok(FileDeps::default());
    }
    let mut file = File::open(path)?;
    let mut head = Vec::with_capacity(SNIFF_LEN as usize);
    (&mut file).take(SNIFF_LEN).read_to_end(&mut head)?;
    if head.starts_with(b"\x7fELF") {
        scan_elf(file, &head, mode, base)
    } else if head.starts_with(b"#!") {
        scan_script(file, mode)
    } else {
        Ok(FileDeps::default())
    }
}

// ---------------------------------------------------------------------------
// Turning helper output into dependency names, as rpmbuild's rpmfc does.
// ---------------------------------------------------------------------------

/// rpm's `risspace` (locale-independent) and the comma that `parseRCPOT`
/// also treats as a separator.
fn is_dep_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',')
}

const DEP_OPERATORS: [&[u8]; 8] = [b"<=", b"=<", b"<", b"==", b"=", b">=", b"=>", b">"];

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses what a dependency helper printed (`helper` names it in errors)
/// into dependency names, following rpmbuild 4.18: the output is read as a
/// C string, split into lines at `\n` and `\r`, and each line into tokens.
fn parse_helper_output(output: &[u8], helper: &str) -> io::Result<BTreeSet<String>> {
    let output = match output.iter().position(|&b| b == 0) {
        Some(nul) => &output[..nul],
        None => output,
    };
    let mut names = BTreeSet::new();
    let tokens: Vec<&[u8]> = output
        .split(|&b| is_dep_separator(b))
        .filter(|t| !t.is_empty())
        .collect();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        let shown = String::from_utf8_lossy(token);
        if token[0] == b'(' {
            return Err(invalid(format!(
                "{helper} printed the rich dependency {shown:?}, which is not supported"
            )));
        }
        let first = token[0];
        if first.is_ascii() && !(first.is_ascii_alphanumeric() || first == b'_' || first == b'/') {
            return Err(invalid(format!(
                "{helper} printed {shown:?}; rpmbuild rejects it: dependency tokens must \
                 begin with alpha-numeric, '_' or '/'"
            )));
        }
        if let Some(next) = tokens.get(i + 1)
            && DEP_OPERATORS.contains(next)
        {
            return Err(invalid(format!(
                "{helper} printed a versioned dependency on {shown:?}, which rpmbuild \
                 rejects or this module cannot express"
            )));
        }
        let name = String::from_utf8(token.to_vec()).map_err(|_| {
            invalid(format!(
                "{helper} printed the dependency {shown:?}, which is not valid UTF-8"
            ))
        })?;
        names.insert(name);
        i += 1;
    }
    Ok(names)
}

// ---------------------------------------------------------------------------
// Scripts: fileattrs/script.attr + script.req
// ---------------------------------------------------------------------------

/// The longest first line of a script we look at.
const MAX_FIRST_LINE: u64 = 64 * 1024;

/// `[[:space:]]` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn scan_script(mut file: File, mode: u32) -> io::Result<FileDeps> {
    if mode & EXEC_BITS == 0 {
        // script.attr: %__script_flags exeonly
        return Ok(FileDeps::default());
    }
    file.seek(SeekFrom::Start(0))?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(MAX_FIRST_LINE + 1)
        .read_until(b'\n', &mut line)?;
    let terminated = line.last() == Some(&b'\n');
    if terminated {
        line.pop();
    } else if line.len() as u64 > MAX_FIRST_LINE {
        return Err(invalid(format!(
            "the first line of this script is longer than {MAX_FIRST_LINE} bytes"
        )));
    }
    // libmagic's "Pdmenu configuration file text" outranks its generic
    // "a ... script" rule, so script.attr never sees such a file.
    if line.starts_with(b"#!/usr/bin/pdmenu") {
        return Ok(FileDeps::default());
    }

    Ok(FileDeps {
        requires: parse_helper_output(&script_req_output(&line, terminated), "script.req")?,
        provides: BTreeSet::new(),
    })
}

/// What script.req prints for a file whose first line is `line` (without
/// its newline; `terminated` says whether it had one). script.req is two
/// `sed -n 1s...p` runs; sed ends what it prints with a newline only when
/// the line had one.
fn script_req_output(line: &[u8], terminated: bool) -> Vec<u8> {
    let mut output = Vec::new();
    for printed in [shebang_interpreter(line), env_target(line)]
        .into_iter()
        .flatten()
    {
        output.extend_from_slice(printed);
        if terminated {
            output.push(b'\n');
        }
    }
    output
}

/// `#!` then optional whitespace: the offset after both, if `line` starts so.
fn after_hashbang(line: &[u8]) -> Option<usize> {
    let rest = line.strip_prefix(b"#!")?;
    Some(2 + rest.iter().take_while(|&&b| is_c_space(b)).count())
}

/// Length of the run of non-space bytes at the start of `bytes`.
fn word_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| !is_c_space(b)).count()
}

/// script.req's first expression: `^#![[:space:]]*\(/[^[:space:]]\{1,\}\).*`
/// prints the group, i.e. the interpreter path.
fn shebang_interpreter(line: &[u8]) -> Option<&[u8]> {
    let start = after_hashbang(line)?;
    let word = &line[start..start + word_len(&line[start..])];
    (word.len() >= 2 && word[0] == b'/').then_some(word)
}

/// script.req's second expression,
/// `^#![[:space:]]*[^[:space:]]*/bin/env[[:space:]]\{1,\}\(/[^[:space:]]\{1,\}\)`:
/// the substitution replaces the matched prefix with the group, so what is
/// printed is the absolute path after `env` plus the rest of the line.
fn env_target(line: &[u8]) -> Option<&[u8]> {
    let start = after_hashbang(line)?;
    let first_end = start + word_len(&line[start..]);
    if !line[start..first_end].ends_with(b"/bin/env") {
        return None;
    }
    let gap = line[first_end..]
        .iter()
        .take_while(|&&b| is_c_space(b))
        .count();
    let target = first_end + gap;
    let rest = &line[target..];
    (gap > 0 && rest.len() >= 2 && rest[0] == b'/' && !is_c_space(rest[1])).then_some(rest)
}

// ---------------------------------------------------------------------------
// ELF: tools/elfdeps.c, reading through a bounded cache
// ---------------------------------------------------------------------------

/// Bytes the read cache may hold before it is emptied. Every value is copied
/// out of the cache as soon as it is read, so emptying it is always safe.
const CACHE_BUDGET: u64 = 1 << 20;
/// What one cached read costs at least, counting the map entry.
const CACHE_ENTRY_COST: u64 = 64;
/// Strings are read in pieces of this size.
const STRING_CHUNK: u64 = 256;

/// The file, read through `object`'s `ReadCache` with a bounded footprint.
struct Source {
    cache: ReadCache<File>,
    len: u64,
    held: u64,
}

impl Source {
    fn fits(&self, offset: u64, size: u64) -> bool {
        offset.checked_add(size).is_some_and(|end| end <= self.len)
    }

    fn reserve(&mut self, size: u64) {
        let cost = size.max(CACHE_ENTRY_COST);
        if self.held.saturating_add(cost) > CACHE_BUDGET {
            self.cache.clear();
            self.held = 0;
        }
        self.held = self.held.saturating_add(cost);
    }

    /// A copy of the `T` at `offset`, or `None` if it does not fit in the file.
    fn get<T: Pod>(&mut self, offset: u64) -> io::Result<Option<T>> {
        let size = size_of::<T>() as u64;
        if !self.fits(offset, size) {
            return Ok(None);
        }
        self.reserve(size);
        match (&self.cache).read_at::<T>(offset) {
            Ok(value) => Ok(Some(*value)),
            Err(()) => Err(read_failed(offset, size)),
        }
    }

    /// Copies of the `count` values of type `T` starting at `offset`, or
    /// `None` if they do not fit in the file.
    fn get_many<T: Pod>(&mut self, offset: u64, count: u64) -> io::Result<Option<Vec<T>>> {
        let size = (size_of::<T>() as u64).saturating_mul(count);
        let Ok(count) = usize::try_from(count) else {
            return Ok(None);
        };
        if !self.fits(offset, size) {
            return Ok(None);
        }
        self.reserve(size);
        match (&self.cache).read_slice_at::<T>(offset, count) {
            Ok(values) => Ok(Some(values.to_vec())),
            Err(()) => Err(read_failed(offset, size)),
        }
    }

    /// The bytes from `start` up to the first NUL before `end`, or `None`
    /// when there is none (`[start, end)` must lie in the file).
    fn c_string(&mut self, start: u64, end: u64) -> io::Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let mut pos = start;
        while pos < end {
            let size = STRING_CHUNK.min(end - pos);
            self.reserve(size);
            let chunk = (&self.cache)
                .read_bytes_at(pos, size)
                .map_err(|()| read_failed(pos, size))?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(Some(out));
            }
            out.extend_from_slice(chunk);
            pos += size;
        }
        Ok(None)
    }
}

fn read_failed(offset: u64, size: u64) -> io::Error {
    io::Error::other(format!("failed to read {size} bytes at offset {offset}"))
}

/// The section header fields elfdeps looks at, read by [`Elf::section`].
#[derive(Clone, Copy)]
struct Section {
    kind: elf::SectionType,
    compressed: bool,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
}

impl Section {
    /// How many entries elfdeps walks in a version section: `sh_info`, which
    /// it counts down in an `int`, so none at all past `i32::MAX`.
    fn rounds(&self) -> u32 {
        if i32::try_from(self.info).is_ok() {
            self.info
        } else {
            0
        }
    }

    /// Whether libelf's `elf_getdata` hands out this section's data: an
    /// empty section always, otherwise only if its size is a multiple of the
    /// element size of its type (`unit`; 1 for compressed data) and it lies
    /// within the file.
    fn has_data(&self, unit: u64, file_len: u64) -> bool {
        if self.size == 0 {
            return true;
        }
        let unit = if self.compressed { 1 } else { unit };
        self.size.is_multiple_of(unit)
            && self.offset <= file_len
            && file_len - self.offset >= self.size
    }
}

/// elfdeps dies of a division by zero (SIGFPE) on a dynamic section whose
/// `sh_entsize` is 0, before printing anything.
struct Crashed;

/// What elfdeps prints, one dependency a line, before rpmfc parses it.
struct Printed {
    requires: Vec<u8>,
    provides: Vec<u8>,
}

/// 64-bit machines that get no `(64bit)` marker (glibc's `EM_ALPHA` and
/// `EM_FAKE_ALPHA`).
const NO_MARKER_MACHINES: [elf::Machine; 2] = [elf::EM_ALPHA, elf::EM_FAKE_ALPHA];

/// Size of a `Verneed` and of a `Vernaux` entry, in both classes; libelf
/// also wants their offsets to be multiples of it.
const VERNEED_SIZE: u32 = 16;

/// Offsets in version sections are `unsigned int` in elfdeps and `int` in
/// libelf's getters, which refuse negative ones.
fn version_offset_ok(offset: u32, entry: u64, align: u32, section_size: u64) -> bool {
    i32::try_from(offset).is_ok()
        && offset.is_multiple_of(align)
        && u64::from(offset) + entry <= section_size
}

/// One ELF file being read the way elfdeps reads it.
struct Elf<'a, H: FileHeader<Endian = Endianness>> {
    src: &'a mut Source,
    endian: Endianness,
    /// `e_shoff`
    shoff: u64,
    /// Section count as libelf's `elf_begin` settles it.
    shnum: u64,
    marker: Option<&'static str>,
    interp: bool,
    exec: bool,
    got_hash: bool,
    got_gnu_hash: bool,
    got_debug: bool,
    soname: Option<Vec<u8>>,
    requires: Vec<u8>,
    provides: Vec<u8>,
    _header: std::marker::PhantomData<H>,
}

fn scan_elf(file: File, head: &[u8], mode: u32, base: &[u8]) -> io::Result<FileDeps> {
    // libmagic's "ELF 32-bit"/"ELF 64-bit" and libelf's ELF_K_ELF: a known
    // class, a known byte order, version 1.
    let ident_ok = head.len() >= 16 && matches!(head[5], 1 | 2) && head[6] == 1;
    if !ident_ok {
        return Ok(FileDeps::default());
    }
    let class = head[4];
    let len = file.metadata()?.len();
    let mut src = Source {
        cache: ReadCache::new(file),
        len,
        held: 0,
    };
    let printed = match class {
        1 => elfdeps::<elf::FileHeader32<Endianness>>(&mut src, mode, base)?,
        2 => elfdeps::<elf::FileHeader64<Endianness>>(&mut src, mode, base)?,
        _ => None,
    };
    let Some(printed) = printed else {
        return Ok(FileDeps::default());
    };
    Ok(FileDeps {
        requires: parse_helper_output(&printed.requires, "elfdeps --requires")?,
        provides: parse_helper_output(&printed.provides, "elfdeps --provides")?,
    })
}

/// What elfdeps would print for this file, or `None` where it prints nothing
/// at all (libelf refuses the file, or elfdeps crashes on it).
fn elfdeps<H: FileHeader<Endian = Endianness>>(
    src: &mut Source,
    mode: u32,
    base: &[u8],
) -> io::Result<Option<Printed>> {
    let Some(header) = src.get::<H>(0)? else {
        return Ok(None);
    };
    let Ok(endian) = header.endian() else {
        return Ok(None);
    };
    let shoff: u64 = header.e_shoff(endian).into();
    let Some(shnum) = section_count::<H>(src, &header, endian)? else {
        return Ok(None);
    };
    let mut elf = Elf::<H> {
        src,
        endian,
        shoff,
        shnum,
        marker: None,
        interp: false,
        exec: false,
        got_hash: false,
        got_gnu_hash: false,
        got_debug: false,
        soname: None,
        requires: Vec::new(),
        provides: Vec::new(),
        _header: std::marker::PhantomData,
    };

    let e_type = header.e_type(endian);
    let is_dso = e_type == elf::ET_DYN;
    if is_dso || e_type == elf::ET_EXEC {
        let machine = header.e_machine(endian);
        if header.is_class_64() && !NO_MARKER_MACHINES.contains(&machine) {
            elf.marker = Some("(64bit)");
        }
        elf.exec = mode & EXEC_BITS != 0;
        elf.interp = elf.has_interp(&header)?;
        if elf.walk_sections()?.is_err() {
            return Ok(None);
        }
    }

    if elf.gen_requires() && elf.got_gnu_hash && !elf.got_hash {
        elf.requires.extend_from_slice(b"rtld(GNU_HASH)\n");
    }
    // DT_DEBUG is how elfdeps tells a PIE executable from a library.
    if is_dso && !elf.got_debug {
        let soname = elf.soname.take().unwrap_or_else(|| base.to_vec());
        add_dep(&mut elf.provides, &soname, None, elf.marker);
    }
    Ok(Some(Printed {
        requires: elf.requires,
        provides: elf.provides,
    }))
}

/// The number of sections libelf's `elf_begin` settles on: `e_shnum`, or
/// for extended numbering `sh_size` of section 0; zero when the table does
/// not fit in the file. `None` when `elf_begin` refuses the file.
fn section_count<H: FileHeader<Endian = Endianness>>(
    src: &mut Source,
    header: &H,
    endian: Endianness,
) -> io::Result<Option<u64>> {
    let shoff: u64 = header.e_shoff(endian).into();
    let mut count = u64::from(header.e_shnum(endian));
    if count == 0 && shoff != 0 {
        let Some(first) = src.get::<H::SectionHeader>(shoff)? else {
            return Ok(Some(0));
        };
        count = first.sh_size(endian).into();
        if count > u64::from(u32::MAX) {
            return Ok(None);
        }
    }
    let table = (size_of::<H::SectionHeader>() as u64).saturating_mul(count);
    if shoff > src.len || src.len - shoff < table {
        count = 0;
    }
    Ok(Some(count))
}

impl<H: FileHeader<Endian = Endianness>> Elf<'_, H> {
    /// elfdeps' `genRequires`: everything but an executable-looking file
    /// (one with `PT_INTERP`) that has no exec bit.
    fn gen_requires(&self) -> bool {
        !self.interp || self.exec
    }

    fn require(&mut self, soname: &[u8], version: Option<&[u8]>) {
        add_dep(&mut self.requires, soname, version, self.marker);
    }

    fn section(&mut self, index: u64) -> io::Result<Option<Section>> {
        if index >= self.shnum {
            return Ok(None);
        }
        let size = size_of::<H::SectionHeader>() as u64;
        let offset = self.shoff.saturating_add(index.saturating_mul(size));
        let e = self.endian;
        Ok(self
            .src
            .get::<H::SectionHeader>(offset)?
            .map(|raw| Section {
                kind: raw.sh_type(e),
                compressed: raw.sh_flags(e).0 & elf::SHF_COMPRESSED.0 != 0,
                offset: raw.sh_offset(e).into(),
                size: raw.sh_size(e).into(),
                link: raw.sh_link(e),
                info: raw.sh_info(e),
                entsize: raw.sh_entsize(e).into(),
            }))
    }

    /// libelf's `elf_strptr`: the NUL-terminated string at `offset` in
    /// string-table section `index`, if there is one.
    fn string(&mut self, index: u32, offset: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(table) = self.section(u64::from(index))? else {
            return Ok(None);
        };
        let len = self.src.len;
        if table.kind != elf::SHT_STRTAB
            || table.compressed
            || offset >= table.size
            || table.offset > len
            || len - table.offset < table.size
        {
            return Ok(None);
        }
        self.src
            .c_string(table.offset + offset, table.offset + table.size)
    }

    /// Whether a `PT_INTERP` program header points into the file. libelf
    /// hands out program headers only when the whole table (`e_phnum`, or
    /// section 0's `sh_info` for `PN_XNUM`) lies within the file.
    fn has_interp(&mut self, header: &H) -> io::Result<bool> {
        let e = self.endian;
        let phoff: u64 = header.e_phoff(e).into();
        let len = self.src.len;
        let e_phnum = header.e_phnum(e);
        let mut count = u64::from(e_phnum);
        if e_phnum == elf::PN_XNUM
            && self.shnum > 0
            && let Some(first) = self.src.get::<H::SectionHeader>(self.shoff)?
        {
            count = u64::from(first.sh_info(e));
        }
        let size = size_of::<H::ProgramHeader>() as u64;
        let table = size.saturating_mul(count);
        if phoff == 0 || count == 0 || phoff > len || len - phoff < table {
            return Ok(false);
        }
        // elfdeps loops up to the raw e_phnum.
        for i in 0..count.min(u64::from(e_phnum)) {
            let Some(ph) = self.src.get::<H::ProgramHeader>(phoff + i * size)? else {
                break;
            };
            let p_offset: u64 = ph.p_offset(e).into();
            if ph.p_type(e) == elf::PT_INTERP && p_offset < len {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn walk_sections(&mut self) -> io::Result<Result<(), Crashed>> {
        for index in 1..self.shnum {
            let Some(section) = self.section(index)? else {
                break;
            };
            match section.kind {
                elf::SHT_GNU_VERDEF => self.version_definitions(&section)?,
                elf::SHT_GNU_VERNEED => self.version_needs(&section)?,
                elf::SHT_DYNAMIC if self.dynamic(&section)?.is_err() => {
                    return Ok(Err(Crashed));
                }
                _ => {}
            }
        }
        Ok(Ok(()))
    }

    /// elfdeps' `processDynamic`.
    fn dynamic(&mut self, section: &Section) -> io::Result<Result<(), Crashed>> {
        let entry = size_of::<H::Dyn>() as u64;
        if !section.has_data(entry, self.src.len) {
            return Ok(Ok(()));
        }
        if section.entsize == 0 {
            return Ok(Err(Crashed));
        }
        if section.compressed {
            return Ok(Ok(()));
        }
        let count = (section.size / section.entsize).min(section.size / entry);
        const BATCH: u64 = 256;
        let e = self.endian;
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let offset = section.offset + done * entry;
            let Some(entries) = self.src.get_many::<H::Dyn>(offset, n)? else {
                break;
            };
            for d in entries {
                let value: u64 = d.d_val(e).into();
                match d.d_tag(e) {
                    elf::DT_HASH => self.got_hash = true,
                    elf::DT_GNU_HASH => self.got_gnu_hash = true,
                    elf::DT_DEBUG => self.got_debug = true,
                    elf::DT_SONAME => {
                        if let Some(name) = self.string(section.link, value)? {
                            self.soname = Some(name);
                        }
                    }
                    elf::DT_NEEDED => {
                        if self.gen_requires()
                            && let Some(name) = self.string(section.link, value)?
                        {
                            self.require(&name, None);
                        }
                    }
                    _ => {}
                }
            }
            done += n;
        }
        Ok(Ok(()))
    }

    /// A version section's bytes as libelf hands them to elfdeps, or `None`
    /// when `elf_getdata` would refuse the section. `unit` is libelf's
    /// element size for the section type.
    fn version_bytes(
        &mut self,
        section: &Section,
        unit: u64,
        convert: fn(&[u8], Endianness) -> Vec<u8>,
    ) -> io::Result<Option<VersionBytes>> {
        if !section.has_data(unit, self.src.len) || section.compressed {
            return Ok(None);
        }
        let host = Endianness::default();
        if self.endian == host {
            return Ok(Some(VersionBytes::InFile {
                offset: section.offset,
                endian: host,
            }));
        }
        // Another byte order: libelf converts a copy by walking the chains.
        if section.size > MAX_CONVERTED_SECTION {
            return Ok(None);
        }
        let mut raw = Vec::new();
        let mut pos = 0;
        while pos < section.size {
            let n = STRING_CHUNK.min(section.size - pos);
            let Some(chunk) = self.src.get_many::<u8>(section.offset + pos, n)? else {
                return Ok(None);
            };
            raw.extend_from_slice(&chunk);
            pos += n;
        }
        Ok(Some(VersionBytes::Converted(convert(&raw, self.endian))))
    }

    /// Reads a `T` at `offset` in a version section, with the byte order to
    /// decode it in.
    fn version_entry<T: Pod>(
        &mut self,
        bytes: &VersionBytes,
        offset: u32,
    ) -> io::Result<Option<(T, Endianness)>> {
        match bytes {
            VersionBytes::InFile {
                offset: start,
                endian,
            } => Ok(self
                .src
                .get::<T>(start + u64::from(offset))?
                .map(|value| (value, *endian))),
            VersionBytes::Converted(buf) => Ok(usize::try_from(offset)
                .ok()
                .and_then(|at| buf.get(at..))
                .and_then(|rest| object::pod::from_bytes::<T>(rest).ok())
                .map(|(value, _)| (*value, Endianness::default()))),
        }
    }

    /// elfdeps' `processVerNeed`: `soname(VERSION)` requires.
    fn version_needs(&mut self, section: &Section) -> io::Result<()> {
        let entry = u64::from(VERNEED_SIZE);
        let Some(bytes) = self.version_bytes(section, entry, convert_verneed)? else {
            return Ok(());
        };
        // Nothing carries over from one entry to the next, so once the chain
        // has gone round a loop it can only repeat itself.
        let mut guard = LoopGuard::new(0);
        let mut offset: u32 = 0;
        for _ in 0..section.rounds() {
            if !version_offset_ok(offset, entry, VERNEED_SIZE, section.size) || !guard.visit(offset)
            {
                break;
            }
            let Some((need, e)) = self.version_entry::<elf::Verneed<Endianness>>(&bytes, offset)?
            else {
                break;
            };
            let Some(file) = self.string(section.link, need.vn_file.get(e).into())? else {
                break;
            };
            let mut aux_offset = offset.wrapping_add(need.vn_aux.get(e));
            for _ in 0..need.vn_cnt.get(e) {
                if !version_offset_ok(aux_offset, entry, VERNEED_SIZE, section.size) {
                    break;
                }
                let Some((aux, e)) =
                    self.version_entry::<elf::Vernaux<Endianness>>(&bytes, aux_offset)?
                else {
                    break;
                };
                let Some(version) = self.string(section.link, aux.vna_name.get(e).into())? else {
                    break;
                };
                if self.gen_requires() {
                    self.require(&file, Some(&version));
                }
                let next = aux.vna_next.get(e);
                if next == 0 {
                    // The remaining rounds would read this entry again.
                    break;
                }
                aux_offset = aux_offset.wrapping_add(next);
            }
            offset = offset.wrapping_add(need.vn_next.get(e));
        }
        Ok(())
    }

    /// elfdeps' `processVerDef`: `soname(VERSION)` provides, the soname
    /// being the name of the base (`VER_FLG_BASE`) definition.
    fn version_definitions(&mut self, section: &Section) -> io::Result<()> {
        let Some(bytes) = self.version_bytes(section, 1, convert_verdef)? else {
            return Ok(());
        };
        // The base name carries over from one definition to the next, so a
        // looping chain can add something on its second lap, never later.
        let mut guard = LoopGuard::new(1);
        let mut soname: Option<Vec<u8>> = None;
        let mut offset: u32 = 0;
        for _ in 0..section.rounds() {
            if !version_offset_ok(offset, VERDEF_SIZE, VERDEF_ALIGN, section.size)
                || !guard.visit(offset)
            {
                break;
            }
            let Some((def, e)) = self.version_entry::<elf::Verdef<Endianness>>(&bytes, offset)?
            else {
                break;
            };
            let base = def.vd_flags.get(e).0 & elf::VER_FLG_BASE.0 != 0;
            let mut aux_offset = offset.wrapping_add(def.vd_aux.get(e));
            offset = offset.wrapping_add(def.vd_next.get(e));
            for _ in 0..def.vd_cnt.get(e) {
                if !version_offset_ok(aux_offset, VERDAUX_SIZE, VERDEF_ALIGN, section.size) {
                    break;
                }
                let Some((aux, e)) =
                    self.version_entry::<elf::Verdaux<Endianness>>(&bytes, aux_offset)?
                else {
                    break;
                };
                let Some(name) = self.string(section.link, aux.vda_name.get(e).into())? else {
                    break;
                };
                if base {
                    soname = Some(name);
                    let next = aux.vda_next.get(e);
                    if next == 0 {
                        break;
                    }
                    aux_offset = aux_offset.wrapping_add(next);
                    continue;
                }
                if let Some(soname) = &soname {
                    add_dep(&mut self.provides, soname, Some(&name), self.marker);
                }
                // elfdeps does not advance to the next auxiliary entry here:
                // the remaining rounds would read this one again.
                break;
            }
        }
        Ok(())
    }
}

/// Stops a walk along a chain of entries once it can only repeat itself.
///
/// elfdeps walks a version chain `sh_info` times, following `next` offsets
/// that may lead back (through `unsigned int` wrap-around, or a zero), and
/// can spin for hours. The walk is a function of the offset alone, so it
/// ends in a loop; this finds the loop with Brent's method in constant
/// memory. `extra_laps` is how many laps to walk after one full lap has been
/// seen (1 when state carries over from entry to entry).
struct LoopGuard {
    tortoise: Option<u32>,
    power: u64,
    steps: u64,
    extra_laps: u64,
    remaining: Option<u64>,
}

impl LoopGuard {
    fn new(extra_laps: u64) -> Self {
        LoopGuard {
            tortoise: None,
            power: 1,
            steps: 0,
            extra_laps,
            remaining: None,
        }
    }

    /// Whether the walk should process the entry at `offset`, its next one.
    fn visit(&mut self, offset: u32) -> bool {
        if let Some(remaining) = &mut self.remaining {
            if *remaining == 0 {
                return false;
            }
            *remaining -= 1;
            return true;
        }
        let Some(tortoise) = self.tortoise else {
            self.tortoise = Some(offset);
            return true;
        };
        self.steps += 1;
        if offset == tortoise {
            // A loop of `steps` entries, all processed since the tortoise.
            if self.extra_laps == 0 {
                return false;
            }
            self.remaining = Some(self.steps * self.extra_laps - 1);
            return true;
        }
        if self.steps == self.power {
            self.tortoise = Some(offset);
            self.power = self.power.saturating_mul(2);
            self.steps = 0;
        }
        true
    }
}

/// A version section's bytes, as elfdeps reads them through libelf.
enum VersionBytes {
    /// The file has this machine's byte order: libelf uses the bytes as
    /// they are.
    InFile { offset: u64, endian: Endianness },
    /// The other byte order: libelf's converted copy, in this machine's
    /// byte order wherever its conversion reached.
    Converted(Vec<u8>),
}

/// Size of a `Verdef` entry.
const VERDEF_SIZE: u64 = 20;
/// Size of a `Verdaux` entry.
const VERDAUX_SIZE: u64 = 8;
/// Alignment libelf wants for `Verdef` and `Verdaux` offsets.
const VERDEF_ALIGN: u32 = 4;
/// Larger version sections of the other byte order are not converted (they
/// are a few KiB in real files).
const MAX_CONVERTED_SECTION: u64 = 16 << 20;

/// Copies a field of `N` bytes at `at` from `src` to `dest`, reversing its
/// byte order.
fn swap_field<const N: usize>(src: &[u8], dest: &mut [u8], at: usize) {
    for i in 0..N {
        dest[at + i] = src[at + N - 1 - i];
    }
}

/// Reads the `u32` at `at` in byte order `e`.
fn u32_at(bytes: &[u8], at: usize, e: Endianness) -> usize {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    let value = if e == Endianness::Big {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    };
    value as usize
}

/// What libelf's byte-order conversion of a version section does to `src`
/// (in byte order `e`, the other one from this machine's): it walks the
/// chain of entries and their auxiliary entries by their `next` fields,
/// swapping each field of each entry it reaches, and stops at the first
/// offset out of bounds or misaligned; everything else is copied unchanged.
/// `entry`, `aux` give the sizes of the two records and `*_fields` the
/// widths of their fields; `aux_at`, `next_at`, `aux_next_at` locate the
/// offset fields.
struct ChainLayout {
    entry: usize,
    entry_fields: &'static [usize],
    aux_at: usize,
    next_at: usize,
    aux: usize,
    aux_fields: &'static [usize],
    aux_next_at: usize,
}

fn convert_chain(src: &[u8], e: Endianness, layout: &ChainLayout) -> Vec<u8> {
    let len = src.len();
    let mut dest = src.to_vec();
    let swap_record = |dest: &mut Vec<u8>, at: usize, fields: &[usize]| {
        let mut pos = at;
        for &width in fields {
            if width == 2 {
                swap_field::<2>(src, dest, pos);
            } else {
                swap_field::<4>(src, dest, pos);
            }
            pos += width;
        }
    };
    let mut offset = 0usize;
    loop {
        if offset > len || len - offset < layout.entry || !offset.is_multiple_of(4) {
            return dest;
        }
        swap_record(&mut dest, offset, layout.entry_fields);
        let aux_delta = u32_at(src, offset + layout.aux_at, e);
        if aux_delta > len - offset {
            return dest;
        }
        let mut aux_offset = offset + aux_delta;
        loop {
            if aux_offset > len || len - aux_offset < layout.aux || !aux_offset.is_multiple_of(4) {
                return dest;
            }
            swap_record(&mut dest, aux_offset, layout.aux_fields);
            let next = u32_at(src, aux_offset + layout.aux_next_at, e);
            if next > len - aux_offset {
                return dest;
            }
            aux_offset += next;
            if next == 0 {
                break;
            }
        }
        let next = u32_at(src, offset + layout.next_at, e);
        if next > len - offset {
            return dest;
        }
        offset += next;
        if next == 0 {
            return dest;
        }
    }
}

/// libelf's conversion of a `.gnu.version_r` section.
fn convert_verneed(src: &[u8], e: Endianness) -> Vec<u8> {
    const LAYOUT: ChainLayout = ChainLayout {
        entry: 16,
        entry_fields: &[2, 2, 4, 4, 4],
        aux_at: 8,
        next_at: 12,
        aux: 16,
        aux_fields: &[4, 2, 2, 4, 4],
        aux_next_at: 12,
    };
    convert_chain(src, e, &LAYOUT)
}

/// libelf's conversion of a `.gnu.version_d` section.
fn convert_verdef(src: &[u8], e: Endianness) -> Vec<u8> {
    const LAYOUT: ChainLayout = ChainLayout {
        entry: 20,
        entry_fields: &[2, 2, 2, 2, 4, 4, 4],
        aux_at: 12,
        next_at: 16,
        aux: 8,
        aux_fields: &[4, 4],
        aux_next_at: 4,
    };
    convert_chain(src, e, &LAYOUT)
}

/// elfdeps' `skipSoname`: blank names, names without `.so`, and names that
/// start neither with `lib` nor like the dynamic linker are dropped.
fn skip_soname(soname: &[u8]) -> bool {
    let blank = soname
        .iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c));
    if blank || !soname.windows(3).any(|w| w == b".so") {
        return true;
    }
    // rpm 4.18 compares only three characters of "ld64." and "ld64-".
    let linker = [&b"ld."[..], b"ld-", b"ld6"]
        .iter()
        .any(|p| soname.starts_with(p));
    !(linker || soname.starts_with(b"lib"))
}

/// elfdeps' `addDep`: prints `soname(version)marker`, or the bare soname
/// when there is neither a version nor a marker, one a line.
fn add_dep(out: &mut Vec<u8>, soname: &[u8], version: Option<&[u8]>, marker: Option<&str>) {
    if skip_soname(soname) {
        return;
    }
    out.extend_from_slice(soname);
    if version.is_some() || marker.is_some() {
        out.push(b'(');
        out.extend_from_slice(version.unwrap_or_default());
        out.push(b')');
        out.extend_from_slice(marker.unwrap_or_default().as_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    const ELFDEPS: &str = "/usr/lib/rpm/elfdeps";
    const SCRIPT_REQ: &str = "/usr/lib/rpm/script.req";
    const RPMDEPS: &str = "/usr/lib/rpm/rpmdeps";
    const FILEATTRS: &str = "/usr/lib/rpm/fileattrs";

    // ----- tools and oracles ------------------------------------------------

    /// Whether `tool` can be used. When it cannot, the check skips (or,
    /// under CI, fails) by the rule in `testutil`.
    fn have(tool: &str, why: &str) -> bool {
        let found = if tool.contains('/') {
            Path::new(tool).is_file()
        } else {
            crate::testutil::find_program(tool).is_some()
        };
        if !found {
            crate::testutil::cannot_run(
                &format!("the comparison with `{tool}`, needed {why}"),
                "not installed",
                "install Debian's rpm, gcc and libc6-dev (`cargo xtask ci` does as root)",
            );
        }
        found
    }

    fn have_elfdeps() -> bool {
        have(ELFDEPS, "to compare ELF results with rpm's elfdeps")
    }

    /// gcc, and the C library headers it needs (Debian: libc6-dev, which
    /// `apt-get install --no-install-recommends gcc` leaves out).
    fn have_gcc() -> bool {
        if !have("gcc", "to compile test programs") {
            return false;
        }
        static COMPILES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let compiles = *COMPILES.get_or_init(|| {
            let tmp = tempdir();
            let c = tmp.path().join("probe.c");
            fs::write(
                &c,
                "#include <stdio.h>\nint main(void) { return puts(\"\"); }\n",
            )
            .expect("write");
            Command::new("gcc")
                .arg(&c)
                .arg("-o")
                .arg(tmp.path().join("probe"))
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !compiles {
            crate::testutil::cannot_run(
                "the tests that compile programs with gcc",
                "gcc cannot build a hello-world",
                "install libc6-dev, which `apt-get install --no-install-recommends gcc` leaves out",
            );
        }
        compiles
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn disk_mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o7777
    }

    /// One line of helper output, split as rpmfc splits it (plain names only).
    fn tokens(text: &str) -> BTreeSet<String> {
        text.split(|c: char| c.is_ascii_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// CPU time (user and system) that process `pid` has used so far.
    fn cpu_time(pid: u32) -> Option<std::time::Duration> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which ends at the last ')':
        // state is field 3, utime 14 and stime 15 (proc(5)).
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let hz = rustix::param::clock_ticks_per_second();
        Some(std::time::Duration::from_millis(ticks * 1000 / hz.max(1)))
    }

    /// Runs `command` for its stdout; `None` when it spins, using more than
    /// `cpu_limit` of CPU time (elfdeps can loop for hours on a corrupt
    /// version section, and takes milliseconds otherwise). CPU time rather
    /// than wall time, so that a loaded machine does not make a slow run
    /// look like a hang; a wall-clock limit of ten minutes is only a guard
    /// against a child that neither finishes nor runs.
    fn output_unless_spinning(
        mut command: Command,
        cpu_limit: std::time::Duration,
    ) -> Option<Vec<u8>> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let started = std::time::Instant::now();
        loop {
            if child.try_wait().expect("wait").is_some() {
                return Some(reader.join().expect("reader"));
            }
            let spinning = cpu_time(child.id()).is_some_and(|t| t > cpu_limit);
            let stuck = started.elapsed() > std::time::Duration::from_secs(600);
            if spinning || stuck {
                let _ = child.kill();
                let _ = child.wait();
                assert!(
                    !stuck,
                    "{command:?} neither finished nor spun in 10 minutes"
                );
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// What rpm's own elfdeps prints for `path`, which takes the exec bits
    /// from the file on disk; `None` if it spun for 3 seconds of CPU time.
    fn elfdeps(path: &Path) -> Option<FileDeps> {
        let run = |flag: &str| {
            let mut command = Command::new(ELFDEPS);
            command.arg(flag).arg(path);
            let out = output_unless_spinning(command, std::time::Duration::from_secs(3))?;
            Some(tokens(&String::from_utf8_lossy(&out)))
        };
        Some(FileDeps {
            requires: run("--requires")?,
            provides: run("--provides")?,
        })
    }

    /// Our result for `path` with `mode`, checked against elfdeps after
    /// giving the file that mode on disk. Returns our result.
    fn check_elf(path: &Path, mode: u32) -> FileDeps {
        let ours = scan_file(path, mode).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if have_elfdeps() {
            if disk_mode(path) != mode {
                chmod(path, mode);
            }
            let theirs = elfdeps(path)
                .unwrap_or_else(|| panic!("elfdeps spun on {} (3 s of CPU time)", path.display()));
            assert_eq!(ours, theirs, "{} mode {mode:o}", path.display());
        }
        ours
    }

    /// The whole rpmfc pipeline (libmagic, exeonly, helpers, parsing),
    /// limited to elf.attr and script.attr: `Err` when rpmdeps reports an
    /// error, `None` when rpmdeps is not installed.
    fn rpmdeps(path: &Path, attrs: &Path) -> Option<Result<FileDeps, String>> {
        if !have(RPMDEPS, "to run rpm's whole dependency pipeline") {
            return None;
        }
        let run = |flag: &str| -> Result<BTreeSet<String>, String> {
            let out = Command::new(RPMDEPS)
                .arg("--define")
                .arg(format!("_fileattrsdir {}", attrs.display()))
                .arg(flag)
                .arg(path)
                .output()
                .expect("run rpmdeps");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("error:") {
                return Err(stderr.into_owned());
            }
            Ok(String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect())
        };
        Some(run("--requires").and_then(|requires| {
            Ok(FileDeps {
                requires,
                provides: run("--provides")?,
            })
        }))
    }

    /// A fileattrs directory holding only rpm's elf.attr and script.attr.
    fn attrs_dir(dir: &Path) -> PathBuf {
        let attrs = dir.join("fileattrs");
        fs::create_dir_all(&attrs).expect("mkdir");
        for name in ["elf.attr", "script.attr"] {
            let from = Path::new(FILEATTRS).join(name);
            if from.is_file() {
                fs::copy(&from, attrs.join(name)).expect("copy attr");
            }
        }
        attrs
    }

    fn write_file(path: &Path, bytes: &[u8], mode: u32) {
        fs::write(path, bytes).expect("write");
        chmod(path, mode);
    }

    fn gcc(dir: &Path, out: &str, args: &[&str]) -> PathBuf {
        let path = dir.join(out);
        let status = Command::new("gcc")
            .current_dir(dir)
            .args(args)
            .arg("-o")
            .arg(&path)
            .status()
            .expect("run gcc");
        assert!(status.success(), "gcc {args:?} failed");
        path
    }

    /// `f`'s result, on a thread of its own; panics if it has not finished
    /// in ten minutes (a guard against a hang, not a measure of speed).
    fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(600))
            .expect("still running after ten minutes: it hangs")
    }

    /// Bytes the calling thread has read with read(2) and friends so far
    /// (`rchar` in /proc/thread-self/io, proc(5)).
    fn thread_bytes_read() -> u64 {
        let io = fs::read_to_string("/proc/thread-self/io").expect("read /proc/thread-self/io");
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|n| n.parse().ok())
            .expect("rchar in /proc/thread-self/io")
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    // ----- system files -------------------------------------------------------

    fn find_system_file(name: &str) -> Option<PathBuf> {
        let dirs = [
            "/usr/bin",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/lib64",
            "/usr/lib",
        ];
        dirs.iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    }

    #[test]
    fn system_files_match_elfdeps() {
        let names = [
            "ls",
            "bash",
            "libc.so.6",
            "libm.so.6",
            "libz.so.1",
            "libssl.so.3",
            "libcrypto.so.3",
            "libstdc++.so.6",
            "libgcc_s.so.1",
            "ld-linux-x86-64.so.2",
        ];
        let mut checked = 0;
        for name in names {
            let Some(path) = find_system_file(name) else {
                eprintln!("note: {name} is not on this system, so it is not compared");
                continue;
            };
            let ours = check_elf(&path, disk_mode(&path));
            checked += 1;
            match name {
                "ls" => {
                    assert!(ours.requires.contains("libc.so.6()(64bit)"), "{ours:?}");
                    assert!(ours.requires.contains("rtld(GNU_HASH)"), "{ours:?}");
                    assert!(ours.provides.is_empty(), "a PIE provides nothing: {ours:?}");
                }
                "libc.so.6" => {
                    assert!(ours.provides.contains("libc.so.6()(64bit)"), "{ours:?}");
                    assert!(ours.provides.contains("libc.so.6(GLIBC_2.34)(64bit)"));
                    assert!(ours.provides.contains("libc.so.6(GLIBC_PRIVATE)(64bit)"));
                }
                "libstdc++.so.6" => {
                    assert!(ours.provides.contains("libstdc++.so.6(GLIBCXX_3.4)(64bit)"));
                    assert!(ours.requires.contains("libm.so.6()(64bit)"), "{ours:?}");
                }
                _ => {}
            }
        }
        assert!(checked >= 2, "found too few system ELF files to check");
    }

    // ----- programs compiled here -------------------------------------------

    const LIB_C: &str = "int foo1(void) { return 1; }\nint foo2(void) { return 2; }\n";
    const LIB_MAP: &str =
        "FOO_1.0 { global: foo1; local: *; };\nFOO_2.0 { global: foo2; } FOO_1.0;\n";
    const MAIN_C: &str = "#include <stdio.h>\n#include <math.h>\nint foo2(void);\n\
        int main(int c, char **v) { printf(\"%d %f\\n\", foo2(), sqrt(c)); return 0; }\n";

    #[test]
    fn compiled_library_and_programs_match_elfdeps() {
        if !have_gcc() {
            return;
        }
        let tmp = tempdir();
        let dir = tmp.path();
        fs::write(dir.join("foo.c"), LIB_C).expect("write");
        fs::write(dir.join("foo.map"), LIB_MAP).expect("write");
        fs::write(dir.join("main.c"), MAIN_C).expect("write");

        // A shared library with a soname and version definitions; FOO_2.0
        // inherits FOO_1.0, which elfdeps does not repeat as a provide.
        let lib = gcc(
            dir,
            "libfoo.so.1",
            &[
                "-shared",
                "-fPIC",
                "-Wl,-soname,libfoo.so.1",
                "-Wl,--version-script=foo.map",
                "foo.c",
            ],
        );
        let deps = check_elf(&lib, 0o755);
        assert_eq!(
            deps.provides,
            set(&[
                "libfoo.so.1()(64bit)",
                "libfoo.so.1(FOO_1.0)(64bit)",
                "libfoo.so.1(FOO_2.0)(64bit)",
            ])
        );
        assert!(deps.requires.contains("rtld(GNU_HASH)"), "{deps:?}");
        // A library has no PT_INTERP: its requires do not depend on the mode.
        assert_eq!(check_elf(&lib, 0o644), deps);
        // The soname, not the file name, is what a library provides.
        assert_eq!(
            scan_file_as(&lib, 0o755, "/usr/lib64/other.so").expect("scan"),
            deps
        );

        // A PIE executable using it: version needs, no provides.
        let main = gcc(dir, "main", &["main.c", "-L.", "-l:libfoo.so.1", "-lm"]);
        let deps = check_elf(&main, 0o755);
        for want in [
            "libfoo.so.1()(64bit)",
            "libfoo.so.1(FOO_2.0)(64bit)",
            "libm.so.6()(64bit)",
            "libc.so.6()(64bit)",
            "libc.so.6(GLIBC_2.2.5)(64bit)",
            "rtld(GNU_HASH)",
        ] {
            assert!(deps.requires.contains(want), "{want} missing from {deps:?}");
        }
        assert!(deps.provides.is_empty(), "{deps:?}");
        // Exec bit off: an executable with PT_INTERP then requires nothing.
        assert_eq!(check_elf(&main, 0o644), FileDeps::default());
        assert_eq!(check_elf(&main, 0o100), deps);

        // A classic ET_EXEC executable.
        let nopie = gcc(
            dir,
            "main-nopie",
            &["-no-pie", "main.c", "-L.", "-l:libfoo.so.1", "-lm"],
        );
        assert_eq!(check_elf(&nopie, 0o755), deps);
        assert!(check_elf(&nopie, 0o644).is_empty());
    }

    #[test]
    fn library_without_soname_provides_its_name() {
        if !have_gcc() {
            return;
        }
        let tmp = tempdir();
        let dir = tmp.path();
        fs::write(dir.join("foo.c"), LIB_C).expect("write");
        let lib = gcc(dir, "libnoso.so", &["-shared", "-fPIC", "foo.c"]);
        let deps = check_elf(&lib, 0o755);
        assert_eq!(deps.provides, set(&["libnoso.so()(64bit)"]));
        let renamed = scan_file_as(&lib, 0o755, "/usr/lib64/libother.so.2").expect("scan");
        assert_eq!(renamed.provides, set(&["libother.so.2()(64bit)"]));
        assert_eq!(renamed.requires, deps.requires);
        // A name that fails elfdeps' soname filter provides nothing.
        let plugin = dir.join("plugin.so");
        fs::copy(&lib, &plugin).expect("copy");
        assert!(check_elf(&plugin, 0o755).provides.is_empty());
    }

    #[test]
    fn soname_filter_and_hash_styles_match_elfdeps() {
        if !have_gcc() {
            return;
        }
        let tmp = tempdir();
        let dir = tmp.path();
        fs::write(dir.join("foo.c"), LIB_C).expect("write");
        let cases: [(&str, &[&str]); 6] = [
            ("ld6x.so.1", &["ld6x.so.1()(64bit)"]), // 4.18 checks only "ld6"
            ("ld-foo.so.2", &["ld-foo.so.2()(64bit)"]),
            ("notlib.so.1", &[]),
            ("libnoext", &[]),
            ("lib space,comma.so", &["lib", "space", "comma.so()(64bit)"]),
            ("libfoo.so.7", &["libfoo.so.7()(64bit)"]),
        ];
        for (i, (soname, provides)) in cases.iter().enumerate() {
            let lib = gcc(
                dir,
                &format!("lib{i}.so"),
                &[
                    "-shared", "-fPIC", "-Xlinker", "-soname", "-Xlinker", soname, "foo.c",
                ],
            );
            assert_eq!(check_elf(&lib, 0o755).provides, set(provides), "{soname}");
        }
        for (style, rtld) in [("gnu", true), ("sysv", false), ("both", false)] {
            let lib = gcc(
                dir,
                &format!("libhash-{style}.so"),
                &[
                    "-shared",
                    "-fPIC",
                    &format!("-Wl,--hash-style={style}"),
                    "foo.c",
                ],
            );
            let deps = check_elf(&lib, 0o755);
            assert_eq!(
                deps.requires.contains("rtld(GNU_HASH)"),
                rtld,
                "{style}: {deps:?}"
            );
        }
    }

    #[test]
    fn static_executable_has_no_deps() {
        if !have_gcc() {
            return;
        }
        let libc_a = Command::new("gcc")
            .arg("-print-file-name=libc.a")
            .output()
            .expect("run gcc");
        let libc_a = String::from_utf8_lossy(&libc_a.stdout).trim().to_string();
        if !Path::new(&libc_a).is_absolute() || !Path::new(&libc_a).is_file() {
            crate::testutil::cannot_run(
                "static_executable_has_no_deps",
                "gcc finds no libc.a to link statically",
                "install libc6-dev (Debian), which ships libc.a",
            );
            return;
        }
        let tmp = tempdir();
        let dir = tmp.path();
        fs::write(dir.join("s.c"), "int main(void) { return 0; }\n").expect("write");
        let exe = gcc(dir, "static", &["-static", "s.c"]);
        assert!(check_elf(&exe, 0o755).is_empty());
        // A static PIE has a dynamic section with DT_GNU_HASH and no
        // PT_INTERP, so elfdeps asks for rtld(GNU_HASH) whatever the mode.
        let exe = gcc(dir, "static-pie", &["-static-pie", "s.c"]);
        let want = FileDeps {
            requires: set(&["rtld(GNU_HASH)"]),
            provides: BTreeSet::new(),
        };
        assert_eq!(check_elf(&exe, 0o755), want);
        assert_eq!(check_elf(&exe, 0o644), want);
    }

    // ----- hand-built ELF files: both classes, both byte orders -------------

    /// A minimal ELF file with a dynamic section and version sections,
    /// written byte by byte so that any class, byte order and machine can be
    /// tested without a cross toolchain.
    #[derive(Clone)]
    struct Synth {
        class64: bool,
        big: bool,
        machine: u16,
        e_type: u16,
        interp: bool,
        soname: Option<&'static str>,
        needed: Vec<&'static str>,
        debug: bool,
        hash: bool,
        gnu_hash: bool,
        /// (is base, names): the first name is the version, the rest parents
        verdefs: Vec<(bool, Vec<&'static str>)>,
        verneeds: Vec<(&'static str, Vec<&'static str>)>,
        dyn_entsize: Option<u64>,
        /// `sh_info` of the version sections, if not the entry counts
        version_info: Option<u32>,
        /// The last version entries point back to the first ones.
        loop_chains: bool,
    }

    const EM_X86_64: u16 = 62;
    const EM_386: u16 = 3;
    const EM_PPC64: u16 = 21;
    const EM_S390: u16 = 22;

    impl Synth {
        fn dso(class64: bool, big: bool, machine: u16) -> Self {
            Synth {
                class64,
                big,
                machine,
                e_type: 3,
                interp: false,
                soname: Some("libsyn.so.1"),
                needed: vec!["libc.so.6", "libm.so.6", "bogus"],
                debug: false,
                hash: false,
                gnu_hash: true,
                verdefs: vec![
                    (true, vec!["libsyn.so.1"]),
                    (false, vec!["SYN_1"]),
                    (false, vec!["SYN_2", "SYN_1"]),
                ],
                verneeds: vec![
                    ("libc.so.6", vec!["GLIBC_2.0", "GLIBC_PRIVATE"]),
                    ("libm.so.6", vec!["GLIBC_2.1"]),
                ],
                dyn_entsize: None,
                version_info: None,
                loop_chains: false,
            }
        }

        fn exe(class64: bool, big: bool, machine: u16) -> Self {
            Synth {
                e_type: 2,
                interp: true,
                soname: None,
                verdefs: vec![],
                ..Synth::dso(class64, big, machine)
            }
        }

        fn build(&self) -> Vec<u8> {
            let mut strtab = vec![0u8];
            let mut strings = std::collections::HashMap::new();
            let mut add = |s: &str| -> u64 {
                *strings.entry(s.to_string()).or_insert_with(|| {
                    let at = strtab.len() as u64;
                    strtab.extend_from_slice(s.as_bytes());
                    strtab.push(0);
                    at
                })
            };
            let mut dynamic: Vec<(i64, u64)> = Vec::new();
            for n in &self.needed {
                dynamic.push((1, add(n)));
            }
            if let Some(s) = self.soname {
                dynamic.push((14, add(s)));
            }
            if self.hash {
                dynamic.push((4, 0));
            }
            if self.gnu_hash {
                dynamic.push((0x6fff_fef5, 0));
            }
            if self.debug {
                dynamic.push((21, 0));
            }
            dynamic.push((0, 0));

            let mut w = Out::new(self.class64, self.big);
            let mut verdef = Out::new(self.class64, self.big);
            for (i, (base, names)) in self.verdefs.iter().enumerate() {
                let last = i + 1 == self.verdefs.len();
                let n = names.len() as u32;
                verdef.u16(1);
                verdef.u16(u16::from(*base));
                verdef.u16(i as u16 + 1);
                verdef.u16(n as u16);
                verdef.u32(0);
                verdef.u32(20);
                let here = verdef.buf.len() as u32 - 16;
                verdef.u32(match (last, self.loop_chains) {
                    (false, _) => 20 + 8 * n,
                    (true, false) => 0,
                    (true, true) => here.wrapping_neg(),
                });
                for (j, name) in names.iter().enumerate() {
                    verdef.u32(add(name) as u32);
                    verdef.u32(if j + 1 == names.len() { 0 } else { 8 });
                }
            }
            let mut verneed = Out::new(self.class64, self.big);
            for (i, (file, versions)) in self.verneeds.iter().enumerate() {
                let last = i + 1 == self.verneeds.len();
                let n = versions.len() as u32;
                verneed.u16(1);
                verneed.u16(n as u16);
                verneed.u32(add(file) as u32);
                verneed.u32(16);
                let here = verneed.buf.len() as u32 - 12;
                verneed.u32(match (last, self.loop_chains) {
                    (false, _) => 16 + 16 * n,
                    (true, false) => 0,
                    (true, true) => here.wrapping_neg(),
                });
                for (j, version) in versions.iter().enumerate() {
                    verneed.u32(0);
                    verneed.u16(0);
                    verneed.u16(j as u16 + 2);
                    verneed.u32(add(version) as u32);
                    verneed.u32(if j + 1 == versions.len() { 0 } else { 16 });
                }
            }
            let interp = b"/lib/ld-synth.so.1\0";
            let shstrtab = b"\0.dynstr\0.dynamic\0.gnu.version_d\0.gnu.version_r\0.shstrtab\0";

            let (ehsize, phsize, shsize, dynsize) = if self.class64 {
                (64, 56, 64, 16)
            } else {
                (52, 32, 40, 8)
            };
            let align = |x: u64, a: u64| x.div_ceil(a) * a;
            let phoff = ehsize;
            let phnum = u64::from(self.interp);
            let interp_off = phoff + phsize * phnum;
            let dynstr_off = interp_off + if self.interp { interp.len() as u64 } else { 0 };
            let dynamic_off = align(dynstr_off + strtab.len() as u64, 8);
            let verdef_off = dynamic_off + dynsize * dynamic.len() as u64;
            let verneed_off = align(verdef_off + verdef.buf.len() as u64, 16);
            let shstr_off = verneed_off + verneed.buf.len() as u64;
            let shoff = align(shstr_off + shstrtab.len() as u64, 8);
            // (name, type, offset, size, link, info, entsize)
            let mut sections: Vec<(u32, u32, u64, u64, u32, u32, u64)> = vec![
                (0, 0, 0, 0, 0, 0, 0),
                (1, 3, dynstr_off, strtab.len() as u64, 0, 0, 0),
                (
                    9,
                    6,
                    dynamic_off,
                    dynsize * dynamic.len() as u64,
                    1,
                    0,
                    self.dyn_entsize.unwrap_or(dynsize),
                ),
            ];
            if !self.verdefs.is_empty() {
                let n = self.version_info.unwrap_or(self.verdefs.len() as u32);
                sections.push((
                    18,
                    0x6fff_fffd,
                    verdef_off,
                    verdef.buf.len() as u64,
                    1,
                    n,
                    0,
                ));
            }
            if !self.verneeds.is_empty() {
                let n = self.version_info.unwrap_or(self.verneeds.len() as u32);
                sections.push((
                    33,
                    0x6fff_fffe,
                    verneed_off,
                    verneed.buf.len() as u64,
                    1,
                    n,
                    0,
                ));
            }
            sections.push((48, 3, shstr_off, shstrtab.len() as u64, 0, 0, 0));

            // ELF header
            w.buf.extend_from_slice(b"\x7fELF");
            w.buf.push(if self.class64 { 2 } else { 1 });
            w.buf.push(if self.big { 2 } else { 1 });
            w.buf.push(1);
            w.buf.resize(16, 0);
            w.u16(self.e_type);
            w.u16(self.machine);
            w.u32(1);
            w.word(0);
            w.word(if self.interp { phoff } else { 0 });
            w.word(shoff);
            w.u32(0);
            w.u16(ehsize as u16);
            w.u16(phsize as u16);
            w.u16(phnum as u16);
            w.u16(shsize as u16);
            w.u16(sections.len() as u16);
            w.u16(sections.len() as u16 - 1);
            if self.interp {
                let len = interp.len() as u64;
                if self.class64 {
                    w.u32(3);
                    w.u32(4);
                    for v in [interp_off, 0, 0, len, len, 1] {
                        w.u64(v);
                    }
                } else {
                    w.u32(3);
                    for v in [interp_off, 0, 0, len, len] {
                        w.u32(v as u32);
                    }
                    w.u32(4);
                    w.u32(1);
                }
                w.buf.extend_from_slice(interp);
            }
            w.buf.extend_from_slice(&strtab);
            w.buf.resize(dynamic_off as usize, 0);
            for (tag, val) in &dynamic {
                w.word(*tag as u64);
                w.word(*val);
            }
            w.buf.extend_from_slice(&verdef.buf);
            w.buf.resize(verneed_off as usize, 0);
            w.buf.extend_from_slice(&verneed.buf);
            w.buf.extend_from_slice(shstrtab);
            w.buf.resize(shoff as usize, 0);
            for (name, kind, offset, size, link, info, entsize) in sections {
                w.u32(name);
                w.u32(kind);
                w.word(0);
                w.word(0);
                w.word(offset);
                w.word(size);
                w.u32(link);
                w.u32(info);
                w.word(if kind == 6 { 8 } else { 1 });
                w.word(entsize);
            }
            w.buf
        }
    }

    struct Out {
        buf: Vec<u8>,
        class64: bool,
        big: bool,
    }

    impl Out {
        fn new(class64: bool, big: bool) -> Self {
            Out {
                buf: Vec::new(),
                class64,
                big,
            }
        }
        fn u16(&mut self, v: u16) {
            let b = if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.buf.extend_from_slice(&b);
        }
        fn u32(&mut self, v: u32) {
            let b = if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.buf.extend_from_slice(&b);
        }
        fn u64(&mut self, v: u64) {
            let b = if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.buf.extend_from_slice(&b);
        }
        fn word(&mut self, v: u64) {
            if self.class64 {
                self.u64(v)
            } else {
                self.u32(v as u32)
            }
        }
    }

    fn check_synth(dir: &Path, name: &str, synth: &Synth, mode: u32) -> FileDeps {
        let path = dir.join(name);
        write_file(&path, &synth.build(), mode);
        check_elf(&path, mode)
    }

    #[test]
    fn synthetic_elf_all_classes_and_byte_orders_match_elfdeps() {
        let tmp = tempdir();
        let dir = tmp.path();
        for (class64, big, machine) in [
            (true, false, EM_X86_64),
            (true, true, EM_PPC64),
            (false, false, EM_386),
            (false, true, EM_S390),
        ] {
            let m = if class64 { "(64bit)" } else { "" };
            let tag = format!(
                "{}{}",
                if class64 { 64 } else { 32 },
                if big { "be" } else { "le" }
            );
            let dso = check_synth(
                dir,
                &format!("libsyn-{tag}.so"),
                &Synth::dso(class64, big, machine),
                0o755,
            );
            let dep = |s: &str| format!("{s}{m}");
            let plain = |s: &str| {
                if class64 {
                    format!("{s}(){m}")
                } else {
                    s.to_string()
                }
            };
            assert_eq!(
                dso.requires,
                [
                    plain("libc.so.6"),
                    plain("libm.so.6"),
                    dep("libc.so.6(GLIBC_2.0)"),
                    dep("libc.so.6(GLIBC_PRIVATE)"),
                    dep("libm.so.6(GLIBC_2.1)"),
                    "rtld(GNU_HASH)".to_string(),
                ]
                .into_iter()
                .collect::<BTreeSet<_>>(),
                "{tag}"
            );
            assert_eq!(
                dso.provides,
                [
                    plain("libsyn.so.1"),
                    dep("libsyn.so.1(SYN_1)"),
                    dep("libsyn.so.1(SYN_2)")
                ]
                .into_iter()
                .collect::<BTreeSet<_>>(),
                "{tag}"
            );

            let exe = Synth::exe(class64, big, machine);
            let deps = check_synth(dir, &format!("exe-{tag}"), &exe, 0o755);
            assert!(
                deps.provides.is_empty() && !deps.requires.is_empty(),
                "{tag}"
            );
            assert!(check_synth(dir, &format!("exe-{tag}-644"), &exe, 0o644).is_empty());

            // ET_DYN with DT_DEBUG (a PIE): no soname provide.
            let pie = Synth {
                e_type: 3,
                debug: true,
                soname: Some("libpie.so.1"),
                ..exe.clone()
            };
            assert!(
                check_synth(dir, &format!("pie-{tag}"), &pie, 0o755)
                    .provides
                    .is_empty()
            );

            // Both hash tables: no rtld(GNU_HASH).
            let both = Synth {
                hash: true,
                ..Synth::dso(class64, big, machine)
            };
            let deps = check_synth(dir, &format!("libboth-{tag}.so"), &both, 0o644);
            assert!(!deps.requires.contains("rtld(GNU_HASH)"), "{tag}");

            // No soname: the file's name; a relocatable object: nothing.
            let noso = Synth {
                soname: None,
                ..Synth::dso(class64, big, machine)
            };
            let deps = check_synth(dir, &format!("libnoso-{tag}.so.3"), &noso, 0o755);
            assert!(
                deps.provides
                    .contains(&plain(&format!("libnoso-{tag}.so.3"))),
                "{deps:?}"
            );
            let rel = Synth {
                e_type: 1,
                ..Synth::dso(class64, big, machine)
            };
            assert!(check_synth(dir, &format!("rel-{tag}.o"), &rel, 0o755).is_empty());
        }
    }

    #[test]
    fn alpha_has_no_64bit_marker() {
        let tmp = tempdir();
        for machine in [0x9026, 41] {
            let deps = check_synth(
                tmp.path(),
                &format!("libalpha-{machine}.so"),
                &Synth::dso(true, false, machine),
                0o755,
            );
            assert!(deps.provides.contains("libsyn.so.1"), "{deps:?}");
            assert!(deps.provides.contains("libsyn.so.1(SYN_2)"), "{deps:?}");
            assert!(deps.requires.contains("libc.so.6"), "{deps:?}");
            assert!(deps.requires.contains("libc.so.6(GLIBC_2.0)"), "{deps:?}");
        }
    }

    #[test]
    fn zero_dynamic_entsize_gives_nothing_like_elfdeps() {
        // elfdeps 4.18 divides by sh_entsize and dies.
        let tmp = tempdir();
        let synth = Synth {
            dyn_entsize: Some(0),
            ..Synth::dso(true, false, EM_X86_64)
        };
        assert!(check_synth(tmp.path(), "libzero.so", &synth, 0o755).is_empty());
    }

    #[test]
    fn looping_version_chains_match_elfdeps_and_end() {
        let tmp = tempdir();
        let dir = tmp.path();
        for (class64, big, machine) in [(true, false, EM_X86_64), (false, true, EM_S390)] {
            // The first definition only gets its base name on the second lap.
            let synth = Synth {
                verdefs: vec![(false, vec!["SYN_1"]), (true, vec!["libsyn.so.1"])],
                loop_chains: true,
                ..Synth::dso(class64, big, machine)
            };
            let m = if class64 { "(64bit)" } else { "" };
            let two = Synth {
                version_info: Some(2),
                ..synth.clone()
            };
            let deps = check_synth(dir, &format!("two-{class64}-{big}.so"), &two, 0o755);
            assert!(
                !deps.provides.contains(&format!("libsyn.so.1(SYN_1){m}")),
                "{deps:?}"
            );
            let many = Synth {
                version_info: Some(1000),
                ..synth.clone()
            };
            let looped = check_synth(dir, &format!("many-{class64}-{big}.so"), &many, 0o755);
            assert!(
                looped.provides.contains(&format!("libsyn.so.1(SYN_1){m}")),
                "{looped:?}"
            );
            // elfdeps would spin for hours here; the result cannot differ.
            let endless = Synth {
                version_info: Some(i32::MAX as u32),
                ..synth
            };
            let path = dir.join(format!("endless-{class64}-{big}.so"));
            write_file(&path, &endless.build(), 0o755);
            assert_eq!(
                finishes(move || scan_file(&path, 0o755)).expect("scan"),
                looped
            );
        }
    }

    #[test]
    fn loop_guard_sees_everything_a_long_walk_sees() {
        // Walks over random "next" tables: what a guarded walk outputs must
        // equal what a walk of 10_000 rounds outputs, with or without state.
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..500 {
            let n = 1 + rng.below(12);
            let next: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
            let base: Vec<bool> = (0..n).map(|_| rng.below(3) == 0).collect();
            let walk = |guarded: bool, stateful: bool| {
                let mut guard = LoopGuard::new(u64::from(stateful));
                let (mut at, mut state, mut out) = (0, None, BTreeSet::new());
                for _ in 0..10_000 {
                    if guarded && !guard.visit(at as u32) {
                        break;
                    }
                    if stateful && base[at] {
                        state = Some(at);
                    } else {
                        out.insert((state, at));
                    }
                    at = next[at];
                }
                out
            };
            for stateful in [false, true] {
                assert_eq!(
                    walk(true, stateful),
                    walk(false, stateful),
                    "{next:?} {base:?}"
                );
            }
        }
    }

    // ----- malformed ELF ------------------------------------------------------

    /// A small deterministic generator for corruptions.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn truncated_and_corrupted_elf_never_panic_and_match_elfdeps() {
        let tmp = tempdir();
        let dir = tmp.path();
        let mut originals = vec![
            Synth::dso(true, false, EM_X86_64).build(),
            Synth::dso(false, true, EM_S390).build(),
        ];
        if let Some(libz) = find_system_file("libz.so.1") {
            originals.push(fs::read(libz).expect("read libz"));
        }
        let elfdeps_here = have_elfdeps();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut n = 0;
        for original in &originals {
            let len = original.len();
            let mut variants: Vec<Vec<u8>> = [0, 3, 4, 15, 16, 17, 40, 52, 63, 64, 65, 120]
                .iter()
                .chain(&[len / 4, len / 2, len - 64, len - 1])
                .filter(|&&cut| cut < len)
                .map(|&cut| original[..cut].to_vec())
                .collect();
            // Corrupt the first 4 KiB (headers and, in the small files,
            // everything elfdeps reads) and the section table.
            let shoff_area = len.saturating_sub(2048)..len;
            for _ in 0..150 {
                let mut bytes = original.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = if rng.below(2) == 0 {
                        rng.below(len.min(4096))
                    } else {
                        shoff_area.start + rng.below(shoff_area.len())
                    };
                    bytes[at] = match rng.below(3) {
                        0 => 0,
                        1 => 0xff,
                        _ => rng.next() as u8,
                    };
                }
                variants.push(bytes);
            }
            for bytes in variants {
                n += 1;
                let path = dir.join(format!("bad{n}.so"));
                write_file(&path, &bytes, if n % 2 == 0 { 0o755 } else { 0o644 });
                let mode = disk_mode(&path);
                match scan_file(&path, mode) {
                    Ok(ours) => {
                        if !elfdeps_here {
                            continue;
                        }
                        match elfdeps(&path) {
                            Some(theirs) => assert_eq!(ours, theirs, "variant {n}"),
                            None => eprintln!("variant {n}: elfdeps hangs; we do not"),
                        }
                    }
                    Err(e) => {
                        // Only names rpm would print but a String cannot hold.
                        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
                    }
                }
            }
        }
    }

    #[test]
    fn elf_magic_with_garbage_gives_nothing() {
        let tmp = tempdir();
        let dir = tmp.path();
        let cases: [&[u8]; 6] = [
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01",
            b"\x7fELF\x03\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0",
            b"\x7fELF\x02\x03\x01\0\0\0\0\0\0\0\0\0\x03\0>\0",
            b"\x7fELF\x02\x01\x02\0\0\0\0\0\0\0\0\0\x03\0>\0",
            &[
                0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                3, 0, 62, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let path = dir.join(format!("garbage{i}"));
            write_file(&path, bytes, 0o755);
            assert!(check_elf(&path, 0o755).is_empty(), "case {i}");
        }
    }

    #[test]
    fn huge_sparse_elf_is_not_read_whole() {
        let tmp = tempdir();
        let path = tmp.path().join("libbig.so");
        write_file(&path, &Synth::dso(true, false, EM_X86_64).build(), 0o755);
        // Data at the end: an 8 GiB file, mostly a hole.
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(8 << 30).expect("set_len");
        drop(file);
        let before = thread_bytes_read();
        let deps = scan_file(&path, 0o755).expect("scan");
        let read = thread_bytes_read() - before;
        assert!(deps.provides.contains("libsyn.so.1()(64bit)"), "{deps:?}");
        assert!(read < 1 << 20, "read {read} bytes of an 8 GiB file");
    }

    // ----- scripts ------------------------------------------------------------

    /// What script.req itself prints for `path`.
    fn script_req(path: &Path) -> Vec<u8> {
        let mut child = Command::new(SCRIPT_REQ)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run script.req");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{}", path.display()).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("script.req output").stdout
    }

    /// Our emulation of script.req's output for `path`.
    fn our_script_req(path: &Path) -> Vec<u8> {
        let bytes = fs::read(path).expect("read");
        match bytes.iter().position(|&b| b == b'\n') {
            Some(nl) => script_req_output(&bytes[..nl], true),
            None => script_req_output(&bytes, false),
        }
    }

    /// What rpmbuild makes of a script.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Rpm {
        /// The same requires as ours.
        Agrees,
        /// It fails the build; we return InvalidData.
        Fails,
        /// It takes something we cannot express (a rich dependency, a name
        /// that is not UTF-8); we return InvalidData.
        Accepts,
    }

    /// (content, mode, expected requires or None for InvalidData, rpm's view)
    type ScriptCase = (&'static [u8], u32, Option<&'static [&'static str]>, Rpm);

    const SCRIPTS: &[ScriptCase] = &[
        (
            b"#!/bin/sh\necho hi\n",
            0o755,
            Some(&["/bin/sh"]),
            Rpm::Agrees,
        ),
        (
            b"#! /usr/bin/python3 -u\nprint(1)\n",
            0o755,
            Some(&["/usr/bin/python3"]),
            Rpm::Agrees,
        ),
        (
            b"#!\t/bin/bash -e\n",
            0o700,
            Some(&["/bin/bash"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/env bash\n",
            0o755,
            Some(&["/usr/bin/env"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/env python3\n",
            0o755,
            Some(&["/usr/bin/env"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/env /usr/bin/perl\n",
            0o755,
            Some(&["/usr/bin/env", "/usr/bin/perl"]),
            Rpm::Agrees,
        ),
        (
            b"#!/bin/env  /usr/bin/perl\n",
            0o755,
            Some(&["/bin/env", "/usr/bin/perl"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/env -S /usr/bin/perl\n",
            0o755,
            Some(&["/usr/bin/env"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/env /usr/bin/perl foo\n",
            0o755,
            Some(&["/usr/bin/env", "/usr/bin/perl", "foo"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/env /usr/bin/perl -w\n",
            0o755,
            None,
            Rpm::Fails,
        ),
        (b"#!/usr/bin/env /bin/sh = 3\n", 0o755, None, Rpm::Fails),
        (b"#!/usr/bin/env /bin/sh (foo)\n", 0o755, None, Rpm::Accepts),
        // sed ends its output with a newline only if line one had one.
        (
            b"#!/usr/bin/env /bin/sh",
            0o755,
            Some(&["/usr/bin/env/bin/sh"]),
            Rpm::Agrees,
        ),
        (b"#!/bin/sh", 0o755, Some(&["/bin/sh"]), Rpm::Agrees),
        (b"#!/bin/sh\r\n", 0o755, Some(&["/bin/sh"]), Rpm::Agrees),
        (b"#!/x,y\n", 0o755, Some(&["/x", "y"]), Rpm::Agrees),
        (b"#!/bin/sh\0junk\n", 0o755, Some(&["/bin/sh"]), Rpm::Agrees),
        (
            b"#!/usr/bin/env /bin/sh a\0 -x\n",
            0o755,
            Some(&["/usr/bin/env", "/bin/sh", "a"]),
            Rpm::Agrees,
        ),
        (
            b"#!/bin/sh\n\x00\x01\xff binary\n",
            0o755,
            Some(&["/bin/sh"]),
            Rpm::Agrees,
        ),
        (
            b"#!/usr/bin/p\xc3\xa9rl\n",
            0o755,
            Some(&["/usr/bin/p\u{e9}rl"]),
            Rpm::Agrees,
        ),
        (b"#!/usr/bin/p\xffrl\n", 0o755, None, Rpm::Accepts),
        (b"#!/\n", 0o755, Some(&[]), Rpm::Agrees),
        (b"#!\n/bin/sh\n", 0o755, Some(&[]), Rpm::Agrees),
        (b"#!sh\n", 0o755, Some(&[]), Rpm::Agrees),
        (b"\xef\xbb\xbf#!/bin/sh\n", 0o755, Some(&[]), Rpm::Agrees),
        (b"#!/usr/bin/pdmenu\n", 0o755, Some(&[]), Rpm::Agrees),
        // script.attr is exeonly.
        (b"#!/bin/sh\n", 0o644, Some(&[]), Rpm::Agrees),
        (
            b"#!/usr/bin/env /usr/bin/perl -w\n",
            0o600,
            Some(&[]),
            Rpm::Agrees,
        ),
        (b"hello, world\n", 0o755, Some(&[]), Rpm::Agrees),
        (b"", 0o755, Some(&[]), Rpm::Agrees),
        (b"#", 0o755, Some(&[]), Rpm::Agrees),
    ];

    #[test]
    fn scripts_match_script_req_and_rpmdeps() {
        let tmp = tempdir();
        let dir = tmp.path();
        let attrs = attrs_dir(dir);
        let script_req_here = have(SCRIPT_REQ, "to compare scripts with rpm's script.req");
        for (i, (content, mode, want, rpm)) in SCRIPTS.iter().enumerate() {
            let path = dir.join(format!("script{i}"));
            write_file(&path, content, *mode);
            let shown = String::from_utf8_lossy(content);
            let ours = scan_file(&path, *mode);
            match want {
                Some(want) => {
                    let ours = ours.unwrap_or_else(|e| panic!("{shown:?}: {e}"));
                    assert_eq!(ours.requires, set(want), "{shown:?}");
                    assert!(ours.provides.is_empty());
                }
                None => {
                    let err = ours.expect_err(&format!("{shown:?} should be refused"));
                    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{shown:?}");
                }
            }
            if script_req_here && content.starts_with(b"#!") {
                assert_eq!(our_script_req(&path), script_req(&path), "{shown:?}");
            }
            match (rpmdeps(&path, &attrs), rpm) {
                (None, _) => {}
                (Some(Ok(theirs)), Rpm::Agrees) => {
                    assert_eq!(theirs.requires, set(want.unwrap_or_default()), "{shown:?}");
                    assert!(theirs.provides.is_empty(), "{shown:?}");
                }
                (Some(Ok(_)), Rpm::Accepts) | (Some(Err(_)), Rpm::Fails) => {}
                (theirs, _) => panic!("rpmdeps on {shown:?}: {theirs:?}, expected {rpm:?}"),
            }
        }
    }

    #[test]
    fn overlong_first_line_is_refused() {
        let tmp = tempdir();
        let path = tmp.path().join("long");
        let mut content = b"#!/bin/sh ".to_vec();
        content.resize(MAX_FIRST_LINE as usize + 10, b'x');
        write_file(&path, &content, 0o755);
        let err = scan_file(&path, 0o755).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        content.push(b'\n');
        content.truncate(MAX_FIRST_LINE as usize - 1);
        content.push(b'\n');
        write_file(&path, &content, 0o755);
        assert_eq!(
            scan_file(&path, 0o755).expect("scan").requires,
            set(&["/bin/sh"])
        );
    }

    // ----- other files --------------------------------------------------------

    #[test]
    fn non_regular_files_and_symlinks() {
        let tmp = tempdir();
        let dir = tmp.path();
        assert!(scan_file(dir, 0o755).expect("dir").is_empty());
        let script = dir.join("real");
        write_file(&script, b"#!/bin/sh\n", 0o755);
        let link = dir.join("link");
        std::os::unix::fs::symlink(&script, &link).expect("symlink");
        assert_eq!(
            scan_file(&link, 0o755).expect("link").requires,
            set(&["/bin/sh"])
        );
        let missing = scan_file(&dir.join("missing"), 0o755).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(scan_file_lossy(&dir.join("missing"), 0o755).is_empty());
    }

    #[test]
    fn helper_output_is_split_like_rpmfc() {
        let parse = |s: &[u8]| parse_helper_output(s, "test");
        assert_eq!(
            parse(b"a\nb c,d\r\ne\n").expect("ok"),
            set(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(parse(b"a\0b\n").expect("ok"), set(&["a"]));
        assert_eq!(parse(b"_x /y 1z").expect("ok"), set(&["_x", "/y", "1z"]));
        assert_eq!(parse(b"").expect("ok"), BTreeSet::new());
        for bad in [
            &b"-w"[..],
            b"foo >= 1",
            b"/x = 1",
            b"(a or b)",
            b"!x",
            b"\xff",
        ] {
            let e = parse(bad).expect_err("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        }
        // Non-ASCII first characters are not checked by rpm.
        assert_eq!(parse("\u{e9}x".as_bytes()).expect("ok"), set(&["\u{e9}x"]));
    }

    #[test]
    fn soname_filter() {
        for keep in [
            "libc.so.6",
            "ld-linux.so.2",
            "ld.so.1",
            "ld64.so.2",
            "ld6x.so",
            "lib.so",
        ] {
            assert!(!skip_soname(keep.as_bytes()), "{keep}");
        }
        for skip in ["", "  ", "libfoo", "foo.so.1", "linux-vdso.so.1", "l.so"] {
            assert!(skip_soname(skip.as_bytes()), "{skip}");
        }
    }
}
