//! The XML metadata, read as a stream with `quick-xml`: `repomd.xml`
//! ([`parse_repomd`]), `primary.xml` ([`read_primary`]) and
//! `filelists.xml` ([`read_filelists`]).
//!
//! In: decompressed bytes through a [`Guard`] (no run between markup
//! longer than `max_token`, no more than `max_decompressed` bytes). Out:
//! one record at a time, handed to the caller's function, so memory holds
//! one package plus whatever the caller keeps; never a document tree.
//! Elements are matched by local name (`rpm:entry` is `entry`), so the
//! prefixes a generator picks do not matter; unknown elements are skipped
//! (their text is not kept); nesting deeper than `max_depth`, more than
//! `max_packages` packages, more than `max_entries` entries in one package
//! or a kept string longer than `max_string` is an error naming the limit.

use std::io::{BufReader, Read};

use compact_str::CompactString;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::decode::{Guard, Limits, Tripped, read_error};
use super::error::{RepoError, Result};
use super::package::{
    Checksum, ChecksumKind, Dep, DepKind, FileKind, Package, PackageFile, SENSE_PREREQ, dep_evr,
    sense_flags,
};

/// One record of `repomd.xml` (`<data type="…">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `primary`, `filelists`, `primary_db`, …
    pub kind: String,
    /// Of the file as stored (compressed).
    pub checksum: Checksum,
    /// Of the file decompressed, when given.
    pub open_checksum: Option<Checksum>,
    /// Path under the repository's base URL.
    pub location: String,
    /// Bytes as stored, when given.
    pub size: Option<u64>,
    pub open_size: Option<u64>,
}

/// `repomd.xml`: the repository's index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repomd {
    pub revision: Option<String>,
    pub records: Vec<Record>,
}

impl Repomd {
    pub fn record(&self, kind: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.kind == kind)
    }
}

/// The reader of one metadata stream: events, depth and text, with the
/// limits checked as it goes.
///
/// Nothing is allocated per event: an event hands back the element's local
/// name as one of [`known_element`] (or `""`), and the reader keeps the rest in
/// buffers it reuses (the name as written in `name`, the known attributes
/// in `attrs`, a text event's text in `text`). Primary holds a few hundred
/// events per package; owning each name and value cost a third of the
/// time reading a repository took.
struct Xml<'a, R: Read> {
    reader: Reader<BufReader<Guard<R>>>,
    tripped: Tripped,
    buf: Vec<u8>,
    depth: usize,
    limits: &'a Limits,
    what: &'a str,
    /// The local name of the last start, empty or end tag.
    name: String,
    /// The name of the element [`Xml::text`] or [`Xml::skip`] is inside.
    outer: String,
    /// The last start or empty tag's attributes, by their known names
    /// ([`known_attr`]), as spans of `attr_text`.
    attrs: Vec<(&'static str, std::ops::Range<usize>)>,
    attr_text: String,
    /// Where each attribute name of the last tag is in it (start, length).
    keys: Vec<(usize, usize)>,
    /// The last text event's text.
    text: String,
}

/// What the reader handed back: a tag's local name when it is one the
/// readers look for (one of [`known_element`], else `""`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    Start(&'static str),
    /// `<x/>`: a start and its end at once.
    Empty(&'static str),
    End(&'static str),
    Text,
    Eof,
}

/// Where [`package`] and [`files_matching`] read their events from:
/// [`Xml`] (any XML, through quick-xml) or [`super::scan::Scan`] (primary
/// and filelists as createrepo writes them, read by hand). Both hand back
/// the same events for the same bytes, so one reading of a package serves
/// both.
pub(super) trait Events<'a> {
    /// The next event.
    fn next(&mut self) -> Result<Ev>;
    /// The value of the last start or empty tag's attribute `key` (one of
    /// [`known_attr`]).
    fn attr(&self, key: &str) -> Option<&str>;
    /// The text inside the element just started, up to its end (nested
    /// elements are refused).
    fn text(&mut self) -> Result<String> {
        let mut s = String::new();
        self.text_into(&mut s)?;
        Ok(s)
    }
    /// [`Events::text`] into `s` (cleared first).
    fn text_into(&mut self, s: &mut String) -> Result<()>;
    /// Skip the element just started, whatever it holds.
    fn skip(&mut self) -> Result<()>;
    /// What follows (whitespace, then an empty `rpm:entry` element in
    /// the plain form), read in one go as the dependency [`dep`] would
    /// make of its events; `None` when it is anything else (or the reader
    /// has no such shortcut), the reader then at most past the whitespace,
    /// which the readers that ask ignore.
    fn quick_entry(&mut self) -> Option<Dep> {
        None
    }
    /// The same for a `<file>` element holding a plain path: its kind and
    /// its path, as [`file_kind`] and [`Events::text`] would read them.
    fn quick_file(&mut self) -> Option<(FileKind, &'a str)> {
        None
    }
    /// What follows (whitespace, then an element no reader looks at:
    /// `summary`, `description`, `rpm:license`…, with no attributes and
    /// only text inside) passed over as [`Events::skip`] would; whether
    /// it was. Whitespace may be passed either way (it is ignored).
    fn quick_skip(&mut self) -> bool {
        false
    }
    /// An error at the place read to.
    fn error(&self, message: String) -> RepoError;
    fn limits(&self) -> &'a Limits;
    /// The stream, for messages.
    fn what(&self) -> &'a str;

    fn limit(&self, limit: &'static str, max: u64, unit: &'static str) -> RepoError {
        RepoError::over(self.what(), limit, max, unit)
    }
}

impl<'a, R: Read> Events<'a> for Xml<'a, R> {
    fn next(&mut self) -> Result<Ev> {
        Xml::next(self)
    }

    fn attr(&self, key: &str) -> Option<&str> {
        Xml::attr(self, key)
    }

    fn text_into(&mut self, s: &mut String) -> Result<()> {
        Xml::text_into(self, s)
    }

    fn skip(&mut self) -> Result<()> {
        Xml::skip(self)
    }

    fn error(&self, message: String) -> RepoError {
        Xml::error(self, message)
    }

    fn limits(&self) -> &'a Limits {
        self.limits
    }

    fn what(&self) -> &'a str {
        self.what
    }
}

/// The element names the readers match on.
pub(super) fn known_element(name: &str) -> &'static str {
    match name {
        "package" => "package",
        "entry" => "entry",
        "file" => "file",
        "name" => "name",
        "arch" => "arch",
        "version" => "version",
        "checksum" => "checksum",
        "time" => "time",
        "size" => "size",
        "location" => "location",
        "format" => "format",
        "provides" => "provides",
        "requires" => "requires",
        "conflicts" => "conflicts",
        "obsoletes" => "obsoletes",
        "recommends" => "recommends",
        "suggests" => "suggests",
        "supplements" => "supplements",
        "enhances" => "enhances",
        "metadata" => "metadata",
        "filelists" => "filelists",
        "repomd" => "repomd",
        "revision" => "revision",
        "data" => "data",
        "open-checksum" => "open-checksum",
        "open-size" => "open-size",
        _ => "",
    }
}

/// The attribute names the readers look at (the rest are checked, not
/// kept).
pub(super) fn known_attr(key: &str) -> &'static str {
    match key {
        "name" => "name",
        "flags" => "flags",
        "epoch" => "epoch",
        "ver" => "ver",
        "rel" => "rel",
        "pre" => "pre",
        "type" => "type",
        "href" => "href",
        "xml:base" => "xml:base",
        "build" => "build",
        "package" => "package",
        "installed" => "installed",
        "pkgid" => "pkgid",
        "arch" => "arch",
        _ => "",
    }
}

impl<'a, R: Read> Xml<'a, R> {
    fn new(input: R, limits: &'a Limits, what: &'a str) -> Self {
        let guard = Guard::new(input, limits);
        let tripped = guard.tripped.clone();
        let mut reader = Reader::from_reader(BufReader::with_capacity(64 << 10, guard));
        reader.config_mut().expand_empty_elements = false;
        Xml {
            reader,
            tripped,
            buf: Vec::new(),
            depth: 0,
            limits,
            what,
            name: String::new(),
            outer: String::new(),
            attrs: Vec::new(),
            attr_text: String::new(),
            keys: Vec::new(),
            text: String::new(),
        }
    }

    fn error(&self, message: String) -> RepoError {
        let at = self.reader.buffer_position();
        read_error(
            self.what,
            &self.tripped,
            format!("{message} (at byte {at})"),
        )
    }

    /// The value of the last start or empty tag's attribute `key` (one of
    /// [`known_attr`]).
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| &self.attr_text[r.clone()])
    }

    /// Check a tag's attributes; keep the known ones.
    fn read_attrs(&mut self, e: &BytesStart) -> Result<()> {
        self.attrs.clear();
        self.attr_text.clear();
        self.keys.clear();
        let tag: &str = e;
        // quick-xml's own duplicate check allocates a list per tag; the
        // same check, with the same error, on a list kept here.
        for a in e.attributes().with_checks(false) {
            let a = a.map_err(|err| self.error(format!("bad attribute: {err}")))?;
            let key: &str = a.key.as_ref();
            let at = key.as_ptr() as usize - tag.as_ptr() as usize;
            if let Some(&(prev, _)) = self
                .keys
                .iter()
                .find(|(start, len)| &tag[*start..*start + *len] == key)
            {
                let err = quick_xml::events::attributes::AttrError::Duplicated(at, prev);
                return Err(self.error(format!("bad attribute: {err}")));
            }
            self.keys.push((at, key.len()));
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| {
                    let key = a.key.as_ref().to_string();
                    self.error(format!("bad attribute `{key}`: {err}"))
                })?;
            if value.len() > self.limits.max_string {
                return Err(self.limit(
                    "max_string",
                    self.limits.max_string as u64,
                    "bytes in one value",
                ));
            }
            let key = known_attr(a.key.as_ref());
            if !key.is_empty() {
                let from = self.attr_text.len();
                self.attr_text.push_str(&value);
                self.attrs.push((key, from..self.attr_text.len()));
            }
        }
        Ok(())
    }

    fn set_name(&mut self, local: &str) -> &'static str {
        self.name.clear();
        self.name.push_str(local);
        known_element(local)
    }

    fn next(&mut self) -> Result<Ev> {
        self.next_kept(true)
    }

    /// The next event; a text event's text is kept in `text` when `keep`.
    fn next_kept(&mut self, keep: bool) -> Result<Ev> {
        let mut buf = std::mem::take(&mut self.buf);
        let ev = self.next_in(&mut buf, keep);
        self.buf = buf;
        ev
    }

    fn next_in(&mut self, buf: &mut Vec<u8>, keep: bool) -> Result<Ev> {
        loop {
            buf.clear();
            let ev = match self.reader.read_event_into(buf) {
                Ok(ev) => ev,
                Err(e) => return Err(self.error(e.to_string())),
            };
            return Ok(match ev {
                Event::Start(e) => {
                    self.depth += 1;
                    if self.depth > self.limits.max_depth {
                        return Err(self.limit(
                            "max_depth",
                            self.limits.max_depth as u64,
                            "nested elements",
                        ));
                    }
                    let n = self.set_name(e.local_name().as_ref());
                    self.read_attrs(&e)?;
                    Ev::Start(n)
                }
                Event::Empty(e) => {
                    let n = self.set_name(e.local_name().as_ref());
                    self.read_attrs(&e)?;
                    Ev::Empty(n)
                }
                Event::End(e) => {
                    self.depth = self.depth.saturating_sub(1);
                    Ev::End(self.set_name(e.local_name().as_ref()))
                }
                Event::Text(t) => {
                    self.text.clear();
                    if keep {
                        self.text.push_str(&t.xml10_content());
                    }
                    Ev::Text
                }
                Event::CData(t) => {
                    self.text.clear();
                    if keep {
                        self.text.push_str(&t.xml10_content());
                    }
                    Ev::Text
                }
                Event::GeneralRef(r) => {
                    self.text.clear();
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => self.text.push(c),
                        Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                            Some(s) => self.text.push_str(s),
                            None => {
                                return Err(self.error(format!("unknown entity `&{};`", &*r)));
                            }
                        },
                        Err(e) => return Err(self.error(e.to_string())),
                    }
                    Ev::Text
                }
                Event::Eof => Ev::Eof,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => continue,
            });
        }
    }

    /// The text inside the element just started, up to its end (nested
    /// elements are refused).
    fn text(&mut self) -> Result<String> {
        let mut s = String::new();
        self.text_into(&mut s)?;
        Ok(s)
    }

    /// [`Xml::text`] into `s` (cleared first).
    fn text_into(&mut self, s: &mut String) -> Result<()> {
        self.outer.clear();
        self.outer.push_str(&self.name);
        s.clear();
        loop {
            match self.next()? {
                Ev::Text => {
                    s.push_str(&self.text);
                    if s.len() > self.limits.max_string {
                        return Err(self.limit(
                            "max_string",
                            self.limits.max_string as u64,
                            "bytes in one value",
                        ));
                    }
                }
                Ev::End(_) => return Ok(()),
                Ev::Start(_) | Ev::Empty(_) => {
                    return Err(self.error(format!("`<{}>` inside `<{}>`", self.name, self.outer)));
                }
                Ev::Eof => {
                    return Err(self.error(format!("the file ends inside `<{}>`", self.outer)));
                }
            }
        }
    }

    /// Skip the element just started, whatever it holds.
    fn skip(&mut self) -> Result<()> {
        self.outer.clear();
        self.outer.push_str(&self.name);
        let depth = self.depth;
        loop {
            match self.next_kept(false)? {
                Ev::End(_) if self.depth < depth => return Ok(()),
                Ev::Eof => {
                    return Err(self.error(format!("the file ends inside `<{}>`", self.outer)));
                }
                _ => {}
            }
        }
    }
}

/// A number attribute or text (none or empty is 0); `what` names the
/// package or record in the error, made only then.
fn number(what: impl FnOnce() -> String, field: &str, v: Option<&str>) -> Result<u64> {
    match v {
        None | Some("") => Ok(0),
        Some(v) => v.trim().parse().map_err(|_| RepoError::Metadata {
            what: what(),
            message: format!(
                "`{field}` is not a number: `{}`",
                crate::spec::diag::escape(v)
            ),
        }),
    }
}

/// Parse `repomd.xml` (already read whole: it is small, `max_index`).
pub fn parse_repomd(data: &[u8], what: &str, limits: &Limits) -> Result<Repomd> {
    let mut x = Xml::new(data, limits, what);
    let mut out = Repomd::default();
    let mut saw_root = false;
    loop {
        match x.next()? {
            Ev::Start("repomd") => saw_root = true,
            Ev::Start("revision") => out.revision = Some(x.text()?),
            Ev::Start("data") => {
                let kind = x.attr("type").unwrap_or("").to_string();
                out.records.push(record(&mut x, kind)?);
                if out.records.len() > 1024 {
                    return Err(x.limit("max_index", 1024, "records"));
                }
            }
            Ev::Start(_) if saw_root => x.skip()?,
            Ev::Start(_) | Ev::Empty(_) if !saw_root => {
                return Err(x.error(format!("`<{}>` where `<repomd>` should be", x.name)));
            }
            Ev::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(x.error("no `<repomd>` element".into()));
    }
    Ok(out)
}

fn record<R: Read>(x: &mut Xml<R>, kind: String) -> Result<Record> {
    let what = format!("{}: record `{kind}`", x.what);
    let mut checksum = None;
    let mut open_checksum = None;
    let mut location = None;
    let (mut size, mut open_size) = (None, None);
    loop {
        match x.next()? {
            Ev::Start(n @ ("checksum" | "open-checksum")) => {
                let k = ChecksumKind::parse(x.attr("type").unwrap_or("?"), &what)?;
                let c = Checksum::new(k, &x.text()?, &what)?;
                if n == "checksum" {
                    checksum = Some(c);
                } else {
                    open_checksum = Some(c);
                }
            }
            Ev::Empty("location") | Ev::Start("location") => {
                location = x.attr("href").map(str::to_string);
            }
            Ev::Start("size") => size = Some(number(|| what.clone(), "size", Some(&x.text()?))?),
            Ev::Start("open-size") => {
                open_size = Some(number(|| what.clone(), "open-size", Some(&x.text()?))?);
            }
            Ev::Start(_) => x.skip()?,
            Ev::End("data") => break,
            Ev::Eof => return Err(x.error("the file ends inside `<data>`".into())),
            _ => {}
        }
    }
    let missing = |field: &str| RepoError::Metadata {
        what: what.clone(),
        message: format!("no `{field}`"),
    };
    Ok(Record {
        checksum: checksum.ok_or_else(|| missing("checksum"))?,
        location: location.ok_or_else(|| missing("location href"))?,
        kind,
        open_checksum,
        size,
        open_size,
    })
}

/// The entry just read (`<rpm:entry …/>`) as a dependency.
pub(super) fn dep<'a>(
    x: &impl Events<'a>,
    what: impl Fn() -> String,
    kind: DepKind,
) -> Result<Dep> {
    let name = x
        .attr("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RepoError::Metadata {
            what: what(),
            message: format!("an entry of `{}` has no name", kind.name()),
        })?;
    let mut flags = match x.attr("flags") {
        None | Some("") => 0,
        Some(f) => sense_flags(f).ok_or_else(|| RepoError::Metadata {
            what: what(),
            message: format!(
                "`{}`: unknown comparison `{}`",
                crate::spec::diag::escape(name),
                crate::spec::diag::escape(f)
            ),
        })?,
    };
    if matches!(x.attr("pre"), Some("1") | Some("true")) {
        flags |= SENSE_PREREQ;
    }
    Ok(Dep {
        name: name.into(),
        flags,
        evr: dep_evr(x.attr("epoch"), x.attr("ver"), x.attr("rel")),
    })
}

pub(super) fn file_kind<'a>(x: &impl Events<'a>) -> FileKind {
    match x.attr("type") {
        Some("dir") => FileKind::Dir,
        Some("ghost") => FileKind::Ghost,
        _ => FileKind::File,
    }
}

/// Read `primary.xml` (decompressed) and hand each package to `each`, in
/// the order of the file. Returns how many there were.
pub fn read_primary<R: Read>(
    input: R,
    what: &str,
    limits: &Limits,
    mut each: impl FnMut(Package) -> Result<()>,
) -> Result<u64> {
    packages_under(input, what, limits, "metadata", |x, count| {
        each(package(x, count)?)
    })
}

/// The document's one `root` element and each `<package>` in it, in the
/// order of the file: `one(reader, its number)` reads each (from just
/// after its start, its attributes in the reader). Other children are
/// skipped; at most `max_packages` of them. Returns how many there were.
fn packages_under<R: Read>(
    input: R,
    what: &str,
    limits: &Limits,
    root: &str,
    mut one: impl FnMut(&mut Xml<R>, u64) -> Result<()>,
) -> Result<u64> {
    let mut x = Xml::new(input, limits, what);
    let mut count = 0u64;
    let mut saw_root = false;
    children(&mut x, root, &mut saw_root, &mut count, &mut one)?;
    if !saw_root {
        return Err(x.error(format!("no `<{root}>` element")));
    }
    Ok(count)
}

/// [`packages_under`]'s loop, to the end of the input: what it has seen
/// (the root, packages) in `saw_root` and `count`.
fn children<R: Read>(
    x: &mut Xml<R>,
    root: &str,
    saw_root: &mut bool,
    count: &mut u64,
    one: &mut impl FnMut(&mut Xml<R>, u64) -> Result<()>,
) -> Result<()> {
    let limits = x.limits;
    loop {
        match x.next()? {
            Ev::Start(n) if n == root && !n.is_empty() && !*saw_root => *saw_root = true,
            Ev::Start("package") if *saw_root => {
                *count += 1;
                if *count > limits.max_packages {
                    return Err(x.limit("max_packages", limits.max_packages, "packages"));
                }
                one(x, *count)?;
            }
            Ev::Start(_) if *saw_root => x.skip()?,
            Ev::Start(_) | Ev::Empty(_) if !*saw_root => {
                return Err(x.error(format!("`<{}>` where `<{root}>` should be", x.name)));
            }
            Ev::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Where a piece of primary is in the document (see [`primary_piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// From the document's first byte.
    First,
    /// From a cut made at a `<package`, not to the document's end.
    Middle,
    /// From a cut to the document's end.
    Last,
}

/// Bytes of a piece, about (the cut is at the last `<package` in it):
/// small enough that the pieces in flight stay in a few megabytes (fresh
/// pages cost their first touch), large enough that a piece's own costs
/// (a cut, a channel, a buffer) are lost in its reading.
pub const PIECE: usize = 256 << 10;
/// Bytes a piece may grow to while no `<package` shows up.
pub const MAX_PIECE: usize = 32 << 20;
/// The root element [`primary_piece`] opens before a piece cut from the
/// middle of a document.
pub(super) const PIECE_ROOT: &[u8] = b"<metadata>";

/// Whether a `<package` tag starts at `at` in `buf` (`<package`
/// followed by a space, `>` or `/`): where pieces are cut.
pub(super) fn package_tag_at(buf: &[u8], at: usize) -> bool {
    buf[at..].starts_with(b"<package")
        && matches!(
            buf.get(at + 8),
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
        )
}

/// Where the last `<package` tag in `buf` starts, not at 0.
pub(super) fn last_package_tag(buf: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::FinderRev::new(b"<package");
    let mut end = buf.len();
    while let Some(at) = finder.rfind(&buf[..end]) {
        if at > 0 && package_tag_at(buf, at) {
            return Some(at);
        }
        end = at;
    }
    None
}

/// Where the first `<package` tag in `buf` starts, not at 0.
pub(super) fn first_package_tag(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(buf, b"<package").find(|&at| at > 0 && package_tag_at(buf, at))
}

/// Whether `data`, the start of a document up to its first `<package`
/// tag, reads cleanly up to there with the root element `root` open:
/// then a reader of the whole document stands inside the root, outside
/// any markup, at the end of `data` (where [`super::scan`] goes on).
pub(super) fn prolog(data: &[u8], root: &str, what: &str, limits: &Limits) -> bool {
    let mut x = Xml::new(data, limits, what);
    let (mut saw_root, mut count) = (false, 0);
    let mut none = |x: &mut Xml<_>, _| Err(x.error("a package in the prolog".into()));
    children(&mut x, root, &mut saw_root, &mut count, &mut none).is_ok() && saw_root && x.depth == 1
}

/// The packages of one piece of `primary.xml`, cut at a `<package` by
/// [`super::pieces`], read as [`read_primary`] would read those bytes in
/// the whole document; `None` when the piece does not read cleanly that
/// way (any error; a piece other than the last that does not end inside
/// the root element, outside any tag, comment or section). Pieces read
/// cleanly one after the other, from the first, are read exactly as the
/// whole document is: each one starts where the reader of the whole
/// document stands at that byte (inside the root, outside any markup),
/// because the one before ended there. A piece that does not read cleanly
/// sends the caller back to [`read_primary`] for the real answer.
pub(super) fn primary_piece(
    data: &[u8],
    place: Place,
    what: &str,
    limits: &Limits,
) -> Option<Vec<Package>> {
    let mut out = Vec::new();
    let mut one = |x: &mut Xml<_>, count| {
        out.push(package(x, count)?);
        Ok(())
    };
    let (before, mut saw_root): (&[u8], bool) = match place {
        Place::First => (b"", false),
        Place::Middle | Place::Last => (PIECE_ROOT, true),
    };
    let mut x = Xml::new(before.chain(data), limits, what);
    if saw_root {
        // The root opened in another piece: open it here, with the same
        // name, so the depth and the end of the root count as there.
        match x.next() {
            Ok(Ev::Start("metadata")) => {}
            _ => return None,
        }
    }
    let mut count = 0;
    children(&mut x, "metadata", &mut saw_root, &mut count, &mut one).ok()?;
    let clean = saw_root && (place == Place::Last || x.depth == 1);
    clean.then_some(out)
}

/// The text of the element just started (none when it was empty), in a
/// [`CompactString`]: read through `scratch`, so that a short one (a
/// name, an arch) takes no allocation of its own.
fn short_text<'a, X: Events<'a>>(
    x: &mut X,
    empty: bool,
    scratch: &mut String,
) -> Result<CompactString> {
    if empty {
        return Ok(CompactString::default());
    }
    x.text_into(scratch)?;
    Ok(CompactString::from(scratch.as_str()))
}

/// `count` entries (dependencies and files) of one package, against
/// `max_entries`.
fn within_entries<'a>(x: &impl Events<'a>, count: usize) -> Result<()> {
    match count > x.limits().max_entries {
        true => Err(x.limit(
            "max_entries",
            x.limits().max_entries as u64,
            "entries in one package",
        )),
        false => Ok(()),
    }
}

/// What [`package`] tries before the next event, where the reader can:
/// an entry of the open dependency list, a file after the lists (where
/// generators write them), or an element no one reads, passed over.
/// `Some(true)`: an entry or a file was read; `Some(false)`: an element
/// was passed over; `None`: neither.
fn quick_read<'a, X: Events<'a>>(
    x: &mut X,
    p: &mut Package,
    list: Option<DepKind>,
    files_next: &mut bool,
) -> Option<bool> {
    let read = match list {
        Some(kind) => x.quick_entry().map(|d| p.deps_mut(kind).push(d)),
        None if *files_next => x.quick_file().map(|(kind, path)| {
            p.files.push(PackageFile {
                path: path.to_string(),
                kind,
            })
        }),
        None => None,
    };
    *files_next = read.is_some() && list.is_none();
    match read {
        Some(()) => Some(true),
        None if list.is_none() && x.quick_skip() => Some(false),
        None => None,
    }
}

/// One `<package>` of primary, its start just read.
pub(super) fn package<'a, X: Events<'a>>(x: &mut X, index: u64) -> Result<Package> {
    let mut p = Package::default();
    let mut checksum = None;
    let mut list: Option<DepKind> = None;
    let mut entries = 0usize;
    let mut has_version = false;
    let mut scratch = String::new();
    let base = x.what();
    let what = |name: &str| {
        if name.is_empty() {
            format!("{base}: package #{index}")
        } else {
            format!("{base}: package `{}`", crate::spec::diag::escape(name))
        }
    };
    // Files come after the dependency lists, where generators write them.
    let mut files_next = false;
    loop {
        match quick_read(x, &mut p, list, &mut files_next) {
            Some(true) => {
                entries += 1;
                within_entries(x, entries)?;
                continue;
            }
            Some(false) => continue,
            None => {}
        }
        let (n, empty) = match x.next()? {
            Ev::Start(n) => (n, false),
            Ev::Empty(n) => (n, true),
            Ev::End("package") => break,
            Ev::End(n) => {
                if list.is_some() && DepKind::from_name(n.as_bytes()) == list {
                    list = None;
                    files_next = true;
                }
                continue;
            }
            Ev::Text => continue,
            Ev::Eof => return Err(x.error("the file ends inside `<package>`".into())),
        };
        let text = |x: &mut X| if empty { Ok(String::new()) } else { x.text() };
        match n {
            "name" => p.name = short_text(x, empty, &mut scratch)?,
            "arch" => p.arch = short_text(x, empty, &mut scratch)?,
            "version" => {
                p.epoch = number(|| what(&p.name), "epoch", x.attr("epoch"))?;
                p.version = x.attr("ver").unwrap_or("").into();
                p.release = x.attr("rel").unwrap_or("").into();
                has_version = true;
                if !empty {
                    x.skip()?;
                }
            }
            "checksum" => {
                // The package's name goes into an error only: made then.
                let named = |e: RepoError| match e {
                    RepoError::ChecksumType { kind, .. } => RepoError::ChecksumType {
                        what: what(&p.name),
                        kind,
                    },
                    RepoError::Metadata { message, .. } => RepoError::Metadata {
                        what: what(&p.name),
                        message,
                    },
                    other => other,
                };
                let k = ChecksumKind::parse(x.attr("type").unwrap_or("?"), "").map_err(named)?;
                checksum = Some(Checksum::from_text(k, text(x)?, "").map_err(named)?);
            }
            "time" => {
                p.build_time = number(|| what(&p.name), "time build", x.attr("build"))?;
                if !empty {
                    x.skip()?;
                }
            }
            "size" => {
                p.size = number(|| what(&p.name), "size package", x.attr("package"))?;
                p.installed_size = number(|| what(&p.name), "size installed", x.attr("installed"))?;
                if !empty {
                    x.skip()?;
                }
            }
            "location" => {
                p.location = x.attr("href").unwrap_or("").to_string();
                p.location_base = x.attr("xml:base").map(str::to_string);
                if !empty {
                    x.skip()?;
                }
            }
            "format" => {}
            "entry" if list.is_some() => {
                let kind = list.expect("checked");
                let d = dep(x, || what(&p.name), kind)?;
                p.deps_mut(kind).push(d);
                entries += 1;
                if !empty {
                    x.skip()?;
                }
            }
            "file" => {
                let kind = file_kind(x);
                let path = text(x)?;
                p.files.push(PackageFile { path, kind });
                entries += 1;
            }
            other => match DepKind::from_name(other.as_bytes()) {
                Some(kind) if !empty => list = Some(kind),
                Some(_) => {}
                None if empty => {}
                None => x.skip()?,
            },
        }
        within_entries(x, entries)?;
    }
    // The package's name goes into an error only: made then.
    let missing = |field: &str| RepoError::Metadata {
        what: what(&p.name),
        message: format!("no `{field}`"),
    };
    if p.name.is_empty() {
        return Err(missing("name"));
    }
    if p.arch.is_empty() {
        return Err(missing("arch"));
    }
    if !has_version || p.version.is_empty() {
        return Err(missing("version"));
    }
    if p.location.is_empty() {
        return Err(missing("location href"));
    }
    p.checksum = checksum.ok_or_else(|| missing("checksum"))?;
    Ok(p)
}

/// One package of `filelists.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileList {
    /// The package's checksum value (primary's `pkgid`).
    pub pkgid: String,
    pub name: String,
    pub arch: String,
    pub epoch: u64,
    pub version: String,
    pub release: String,
    pub files: Vec<PackageFile>,
}

/// Read `filelists.xml` (decompressed) and hand each package's list to
/// `each`. Returns how many there were.
pub fn read_filelists<R: Read>(
    input: R,
    what: &str,
    limits: &Limits,
    mut each: impl FnMut(FileList) -> Result<()>,
) -> Result<u64> {
    packages_under(input, what, limits, "filelists", |x, _| each(file_list(x)?))
}

/// Read `filelists.xml` (decompressed) and call `each(pkgid, path)` for
/// every listed path that `wanted` accepts, in the order of the file;
/// nothing else is kept (the paths are read into one reused buffer).
/// Checks what [`read_filelists`] checks. Returns how many packages there
/// were.
pub fn filelists_matching<R: Read>(
    input: R,
    what: &str,
    limits: &Limits,
    wanted: impl Fn(&str) -> bool,
    mut each: impl FnMut(&str, &str) -> Result<()>,
) -> Result<u64> {
    let mut pkgid = String::new();
    let mut path = String::new();
    packages_under(input, what, limits, "filelists", |x, _| {
        files_matching(x, &mut pkgid, &mut path, &wanted, &mut each)
    })
}

/// One `<package>` of filelists (its start just read): `each(pkgid,
/// path)` for every path `wanted` accepts. `pkgid` and `path` are buffers
/// kept between packages.
pub(super) fn files_matching<'a, X: Events<'a>>(
    x: &mut X,
    pkgid: &mut String,
    path: &mut String,
    wanted: &impl Fn(&str) -> bool,
    each: &mut impl FnMut(&str, &str) -> Result<()>,
) -> Result<()> {
    pkgid.clear();
    pkgid.push_str(x.attr("pkgid").unwrap_or(""));
    let mut files = 0usize;
    loop {
        let found = match x.quick_file() {
            Some((_, p)) => Some(p),
            None => match x.next()? {
                Ev::Start("file") => {
                    x.text_into(path)?;
                    Some(path.as_str())
                }
                Ev::Start("version") | Ev::Empty("version") => {
                    number(|| x.what().to_string(), "epoch", x.attr("epoch"))?;
                    None
                }
                Ev::Start(_) => {
                    x.skip()?;
                    None
                }
                Ev::End("package") => return Ok(()),
                Ev::Eof => return Err(x.error("the file ends inside `<package>`".into())),
                _ => None,
            },
        };
        if let Some(p) = found {
            if wanted(p) {
                each(pkgid, p)?;
            }
            files += 1;
            within_entries(x, files)?;
        }
    }
}

fn file_list<R: Read>(x: &mut Xml<R>) -> Result<FileList> {
    let own = |k: &str| x.attr(k).unwrap_or("").to_string();
    let mut l = FileList {
        pkgid: own("pkgid"),
        name: own("name"),
        arch: own("arch"),
        epoch: 0,
        version: String::new(),
        release: String::new(),
        files: Vec::new(),
    };
    loop {
        match x.next()? {
            Ev::Start("version") | Ev::Empty("version") => {
                l.epoch = number(|| x.what.to_string(), "epoch", x.attr("epoch"))?;
                l.version = x.attr("ver").unwrap_or("").to_string();
                l.release = x.attr("rel").unwrap_or("").to_string();
            }
            Ev::Start("file") => {
                let kind = file_kind(x);
                let path = x.text()?;
                l.files.push(PackageFile { path, kind });
                within_entries(x, l.files.len())?;
            }
            Ev::Start(_) => x.skip()?,
            Ev::End("package") => return Ok(l),
            Ev::Eof => return Err(x.error("the file ends inside `<package>`".into())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::package::{SENSE_EQUAL, SENSE_GREATER, SENSE_LESS};

    const SHA: &str = "aa7f1e2f6a1f8c33e5b0d93dd4b5c1b7e24f44b2ff1ee9a6a7e0d35e4a9c2e10";

    fn primary(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
{body}
</metadata>"#
        )
    }

    fn one(name: &str) -> String {
        format!(
            r#"<package type="rpm">
  <name>{name}</name>
  <arch>x86_64</arch>
  <version epoch="2" ver="1.0" rel="3.amzn2023"/>
  <checksum type="sha256" pkgid="YES">{SHA}</checksum>
  <summary>A &lt;test&gt; &amp; more</summary>
  <description>Long text &#233; <![CDATA[ <not markup> ]]></description>
  <packager/>
  <time file="1700000001" build="1700000000"/>
  <size package="1234" installed="5678" archive="6000"/>
  <location xml:base="http://mirror.example.invalid/base/" href="Packages/{name}.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:header-range start="4504" end="9000"/>
    <rpm:provides>
      <rpm:entry name="{name}" flags="EQ" epoch="2" ver="1.0" rel="3.amzn2023"/>
      <rpm:entry name="libx.so.1()(64bit)"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="glibc" flags="GE" epoch="0" ver="2.34"/>
      <rpm:entry name="(a &gt;= 1 with a &lt; 2)"/>
    </rpm:requires>
    <rpm:conflicts><rpm:entry name="old" flags="LT" epoch="0" ver="1"/></rpm:conflicts>
    <rpm:obsoletes><rpm:entry name="older" flags="LE" epoch="0" ver="1" rel="9"/></rpm:obsoletes>
    <rpm:recommends><rpm:entry name="r"/></rpm:recommends>
    <rpm:suggests><rpm:entry name="s" flags="GT" epoch="1" ver="2"/></rpm:suggests>
    <rpm:supplements><rpm:entry name="(x if y)"/></rpm:supplements>
    <rpm:enhances><rpm:entry name="e"/></rpm:enhances>
    <file>/etc/{name}.conf</file>
    <file type="dir">/etc/{name}.d</file>
    <file type="ghost">/usr/bin/{name}-ghost</file>
  </format>
</package>"#
        )
    }

    fn read(text: &str, limits: &Limits) -> Result<Vec<Package>> {
        let mut out = Vec::new();
        read_primary(text.as_bytes(), "primary", limits, |p| {
            out.push(p);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn primary_fields_and_dependencies() {
        let pkgs = read(&primary(&(one("a") + &one("b"))), &Limits::default()).unwrap();
        assert_eq!(pkgs.len(), 2);
        let p = &pkgs[0];
        assert_eq!(p.nevra(), "a-2:1.0-3.amzn2023.x86_64");
        assert_eq!(p.checksum.hex, SHA);
        assert_eq!(
            (p.size, p.installed_size, p.build_time),
            (1234, 5678, 1700000000)
        );
        assert_eq!(p.location, "Packages/a.rpm");
        assert_eq!(
            p.location_base.as_deref(),
            Some("http://mirror.example.invalid/base/")
        );
        assert_eq!(p.provides[0].evr, "2:1.0-3.amzn2023");
        assert_eq!(p.provides[0].flags, SENSE_EQUAL);
        assert_eq!(p.provides[1].flags, 0);
        assert_eq!(p.requires[0].flags, SENSE_PREREQ);
        assert_eq!(p.requires[1].to_string(), "glibc >= 2.34");
        assert_eq!(p.requires[2].name, "(a >= 1 with a < 2)");
        assert!(p.requires[2].name.starts_with('('));
        assert_eq!(p.conflicts[0].flags, SENSE_LESS);
        assert_eq!(p.obsoletes[0].to_string(), "older <= 1-9");
        assert_eq!(p.recommends[0].name, "r");
        assert_eq!(p.suggests[0].to_string(), "s > 1:2");
        assert_eq!(p.suggests[0].flags, SENSE_GREATER);
        assert_eq!(p.supplements[0].name, "(x if y)");
        assert_eq!(p.enhances[0].name, "e");
        let kinds: Vec<_> = p.files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("/etc/a.conf", FileKind::File),
                ("/etc/a.d", FileKind::Dir),
                ("/usr/bin/a-ghost", FileKind::Ghost)
            ]
        );
        assert_eq!(pkgs[1].name, "b");
    }

    #[test]
    fn broken_primary_is_refused_with_a_reason() {
        let e = |t: &str| read(t, &Limits::default()).unwrap_err().to_string();
        assert!(e("<other/>").contains("where `<metadata>` should be"));
        let no_sum = primary(&one("a").replace(&format!(">{SHA}<"), ">zz<"));
        assert!(
            e(&no_sum).contains("`zz` is not a sha256 checksum"),
            "{}",
            e(&no_sum)
        );
        let md5 = primary(&one("a").replace("type=\"sha256\"", "type=\"md5\""));
        assert!(e(&md5).contains("checksum type `md5` is not accepted"));
        // Both name the package.
        for broken in [&no_sum, &md5] {
            assert!(e(broken).contains("package `a`"), "{}", e(broken));
        }
        let flags = primary(&one("a").replace("flags=\"GE\"", "flags=\"XX\""));
        assert!(e(&flags).contains("unknown comparison `XX`"));
        let whole = primary(&one("a"));
        let cut = &whole[..whole.find("<rpm:requires>").unwrap()];
        assert!(e(cut).contains("ends inside"), "{}", e(cut));
        let no_loc = primary(&one("a").replace("href=\"Packages/a.rpm\"", ""));
        assert!(
            e(&no_loc).contains("package `a`: no `location href`"),
            "{}",
            e(&no_loc)
        );
    }

    #[test]
    fn hostile_primary_hits_each_limit() {
        let limit = |t: &str, l: Limits| read(t, &l).unwrap_err().limit();
        let d = Limits::default();
        let deep = primary(&format!("{}{}", "<x>".repeat(40), "</x>".repeat(40)));
        assert_eq!(limit(&deep, d), Some("max_depth"));
        let three = primary(&(one("a") + &one("b") + &one("c")));
        assert_eq!(
            limit(
                &three,
                Limits {
                    max_packages: 2,
                    ..d
                }
            ),
            Some("max_packages")
        );
        assert_eq!(
            limit(
                &three,
                Limits {
                    max_entries: 5,
                    ..d
                }
            ),
            Some("max_entries")
        );
        let long_name = primary(&one(&"n".repeat(200)));
        assert_eq!(
            limit(
                &long_name,
                Limits {
                    max_string: 100,
                    ..d
                }
            ),
            Some("max_string")
        );
        let long_text = primary(&one("a").replace("Long text", &"t".repeat(5000)));
        assert_eq!(
            limit(
                &long_text,
                Limits {
                    max_token: 4096,
                    ..d
                }
            ),
            Some("max_token")
        );
        assert_eq!(
            limit(
                &three,
                Limits {
                    max_decompressed: 2000,
                    ..d
                }
            ),
            Some("max_decompressed")
        );
        // The same files under the limits read fine.
        assert_eq!(read(&three, &d).unwrap().len(), 3);
    }

    #[test]
    fn repomd_records() {
        let text = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <tags><distro cpeid="x">y</distro></tags>
  <data type="primary">
    <checksum type="sha256">{SHA}</checksum>
    <open-checksum type="sha1">{}</open-checksum>
    <location href="repodata/{SHA}-primary.xml.zst"/>
    <timestamp>1700000000</timestamp>
    <size>2345</size>
    <open-size>23456</open-size>
  </data>
  <data type="primary_db">
    <checksum type="sha512">{}</checksum>
    <location href="repodata/x-primary.sqlite.bz2"/>
    <database_version>10</database_version>
  </data>
</repomd>"#,
            "b".repeat(40),
            "c".repeat(128)
        );
        let r = parse_repomd(text.as_bytes(), "repomd.xml", &Limits::default()).unwrap();
        assert_eq!(r.revision.as_deref(), Some("1700000000"));
        let p = r.record("primary").unwrap();
        assert_eq!(p.location, format!("repodata/{SHA}-primary.xml.zst"));
        assert_eq!((p.size, p.open_size), (Some(2345), Some(23456)));
        assert_eq!(p.open_checksum.as_ref().unwrap().kind, ChecksumKind::Sha1);
        let db = r.record("primary_db").unwrap();
        assert_eq!(db.checksum.kind, ChecksumKind::Sha512);
        assert_eq!(db.size, None);
        assert!(r.record("filelists").is_none());
        let e = parse_repomd(
            b"<repomd><data type=\"x\"><location href=\"a\"/></data></repomd>",
            "r",
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "r: record `x`: no `checksum`");
    }

    #[test]
    fn a_duplicate_attribute_is_refused_as_quick_xml_would() {
        let text = primary(&one("a").replace("<arch>", "<arch x=\"1\" y=\"2\" x=\"3\">"));
        let e = read(&text, &Limits::default()).unwrap_err().to_string();
        let mut r = quick_xml::Reader::from_str("<arch x=\"1\" y=\"2\" x=\"3\">");
        let quick_xml::events::Event::Start(tag) = r.read_event().unwrap() else {
            panic!("no start tag")
        };
        let theirs = tag.attributes().find_map(|a| a.err()).unwrap();
        assert!(
            e.contains(&format!("bad attribute: {theirs}")),
            "{e} / {theirs}"
        );
    }

    #[test]
    fn filelists_matching_keeps_only_the_wanted_paths() {
        let pkg = |id: char, files: &str| {
            format!(
                "<package pkgid=\"{}\" name=\"{id}\" arch=\"noarch\"><version epoch=\"0\" ver=\"1\" rel=\"1\"/>{files}</package>\n",
                id.to_string().repeat(64)
            )
        };
        let text = format!(
            "<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\">\n{}{}{}</filelists>",
            pkg('a', "<file>/usr/share/a &amp; b</file><file>/etc/x</file>"),
            pkg('b', "<file type=\"dir\">/etc</file><file>/etc/x</file>"),
            pkg('c', "<file>/opt/c</file>"),
        );
        let wanted = ["/usr/share/a & b", "/etc/x", "/nowhere"];
        let mut got = Vec::new();
        let n = filelists_matching(
            text.as_bytes(),
            "filelists",
            &Limits::default(),
            |p| wanted.contains(&p),
            |id, p| {
                got.push((id[..1].to_string(), p.to_string()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 3);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            got,
            pairs(&[("a", "/usr/share/a & b"), ("a", "/etc/x"), ("b", "/etc/x")])
        );
        // The same limits as the whole reader: files per package, a bad epoch.
        let few = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let e = filelists_matching(text.as_bytes(), "f", &few, |_| true, |_, _| Ok(()));
        assert!(matches!(
            e,
            Err(RepoError::Limit {
                limit: "max_entries",
                ..
            })
        ));
        let bad = text.replacen("epoch=\"0\"", "epoch=\"x\"", 1);
        let e = filelists_matching(
            bad.as_bytes(),
            "f",
            &Limits::default(),
            |_| true,
            |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(e.to_string().contains("`epoch` is not a number"), "{e}");
    }

    #[test]
    fn filelists_by_package() {
        let text = format!(
            r#"<?xml version="1.0"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="1">
<package pkgid="{SHA}" name="a" arch="noarch">
  <version epoch="0" ver="1" rel="2"/>
  <file>/usr/share/a/x &amp; y</file>
  <file type="dir">/usr/share/a</file>
</package>
</filelists>"#
        );
        let mut got = Vec::new();
        let n = read_filelists(text.as_bytes(), "filelists", &Limits::default(), |l| {
            got.push(l);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(got[0].pkgid, SHA);
        assert_eq!(
            (got[0].version.as_str(), got[0].release.as_str()),
            ("1", "2")
        );
        assert_eq!(got[0].files[0].path, "/usr/share/a/x & y");
        assert_eq!(got[0].files[1].kind, FileKind::Dir);
    }
}
