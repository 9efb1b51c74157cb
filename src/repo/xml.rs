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

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::decode::{Guard, Limits, Tripped, read_error};
use super::error::{RepoError, Result};
use super::package::{
    Checksum, ChecksumKind, Dep, DepKind, FileKind, Package, PackageFile, SENSE_PREREQ, sense_flags,
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
struct Xml<'a, R: Read> {
    reader: Reader<BufReader<Guard<R>>>,
    tripped: Tripped,
    buf: Vec<u8>,
    depth: usize,
    limits: &'a Limits,
    what: &'a str,
}

/// What the reader handed back (owned, so the buffer can be reused).
enum Ev {
    Start(String, Vec<(String, String)>),
    /// `<x/>`: a start and its end at once.
    Empty(String, Vec<(String, String)>),
    End(String),
    Text(String),
    Eof,
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

    fn limit(&self, limit: &'static str, max: u64, unit: &'static str) -> RepoError {
        RepoError::Limit {
            what: self.what.to_string(),
            limit,
            max,
            unit,
        }
    }

    fn attrs(&self, e: &BytesStart) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.error(format!("bad attribute: {err}")))?;
            let key = a.key.as_ref().to_string();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| self.error(format!("bad attribute `{key}`: {err}")))?;
            if value.len() > self.limits.max_string {
                return Err(self.limit(
                    "max_string",
                    self.limits.max_string as u64,
                    "bytes in one value",
                ));
            }
            out.push((key, value.into_owned()));
        }
        Ok(out)
    }

    fn next(&mut self) -> Result<Ev> {
        let mut buf = std::mem::take(&mut self.buf);
        let ev = self.next_in(&mut buf);
        self.buf = buf;
        ev
    }

    fn next_in(&mut self, buf: &mut Vec<u8>) -> Result<Ev> {
        loop {
            buf.clear();
            let ev = match self.reader.read_event_into(buf) {
                Ok(ev) => ev,
                Err(e) => return Err(self.error(e.to_string())),
            };
            let local = |e: &BytesStart| e.local_name().as_ref().to_string();
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
                    let (name, attrs) = (local(&e), self.attrs(&e)?);
                    Ev::Start(name, attrs)
                }
                Event::Empty(e) => {
                    let (name, attrs) = (local(&e), self.attrs(&e)?);
                    Ev::Empty(name, attrs)
                }
                Event::End(e) => {
                    self.depth = self.depth.saturating_sub(1);
                    Ev::End(e.local_name().as_ref().to_string())
                }
                Event::Text(t) => Ev::Text(t.xml10_content().into_owned()),
                Event::CData(t) => Ev::Text(t.xml10_content().into_owned()),
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                            Some(s) => s.to_string(),
                            None => {
                                return Err(self.error(format!("unknown entity `&{};`", &*r)));
                            }
                        },
                        Err(e) => return Err(self.error(e.to_string())),
                    };
                    Ev::Text(text)
                }
                Event::Eof => Ev::Eof,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => continue,
            });
        }
    }

    /// The text inside the element just started, up to its end (nested
    /// elements are refused).
    fn text(&mut self, element: &str) -> Result<String> {
        let mut s = String::new();
        loop {
            match self.next()? {
                Ev::Text(t) => {
                    s.push_str(&t);
                    if s.len() > self.limits.max_string {
                        return Err(self.limit(
                            "max_string",
                            self.limits.max_string as u64,
                            "bytes in one value",
                        ));
                    }
                }
                Ev::End(_) => return Ok(s),
                Ev::Start(n, _) | Ev::Empty(n, _) => {
                    return Err(self.error(format!("`<{n}>` inside `<{element}>`")));
                }
                Ev::Eof => return Err(self.error(format!("the file ends inside `<{element}>`"))),
            }
        }
    }

    /// Skip the element just started, whatever it holds.
    fn skip(&mut self, element: &str) -> Result<()> {
        let depth = self.depth;
        loop {
            match self.next()? {
                Ev::End(_) if self.depth < depth => return Ok(()),
                Ev::Eof => return Err(self.error(format!("the file ends inside `<{element}>`"))),
                _ => {}
            }
        }
    }
}

fn attr<'v>(attrs: &'v [(String, String)], key: &str) -> Option<&'v str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn number(what: &str, field: &str, v: Option<&str>) -> Result<u64> {
    match v {
        None | Some("") => Ok(0),
        Some(v) => v.trim().parse().map_err(|_| RepoError::Metadata {
            what: what.to_string(),
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
            Ev::Start(n, _) if n == "repomd" => saw_root = true,
            Ev::Start(n, _) if n == "revision" => out.revision = Some(x.text(&n)?),
            Ev::Start(n, attrs) if n == "data" => {
                let kind = attr(&attrs, "type").unwrap_or("").to_string();
                out.records.push(record(&mut x, kind)?);
                if out.records.len() > 1024 {
                    return Err(x.limit("max_index", 1024, "records"));
                }
            }
            Ev::Start(n, _) if saw_root => x.skip(&n)?,
            Ev::Start(n, _) | Ev::Empty(n, _) if !saw_root => {
                return Err(x.error(format!("`<{n}>` where `<repomd>` should be")));
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
            Ev::Start(n, attrs) if n == "checksum" || n == "open-checksum" => {
                let k = ChecksumKind::parse(attr(&attrs, "type").unwrap_or("?"), &what)?;
                let c = Checksum::new(k, &x.text(&n)?, &what)?;
                if n == "checksum" {
                    checksum = Some(c);
                } else {
                    open_checksum = Some(c);
                }
            }
            Ev::Empty(n, attrs) | Ev::Start(n, attrs) if n == "location" => {
                location = attr(&attrs, "href").map(str::to_string);
            }
            Ev::Start(n, _) if n == "size" => {
                size = Some(number(&what, "size", Some(&x.text(&n)?))?)
            }
            Ev::Start(n, _) if n == "open-size" => {
                open_size = Some(number(&what, "open-size", Some(&x.text(&n)?))?);
            }
            Ev::Start(n, _) => x.skip(&n)?,
            Ev::End(n) if n == "data" => break,
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

/// One dependency entry's attributes.
fn dep(what: &str, attrs: &[(String, String)], kind: DepKind) -> Result<Dep> {
    let name = attr(attrs, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RepoError::Metadata {
            what: what.to_string(),
            message: format!("an entry of `{}` has no name", kind.name()),
        })?;
    let mut flags = match attr(attrs, "flags") {
        None | Some("") => 0,
        Some(f) => sense_flags(f).ok_or_else(|| RepoError::Metadata {
            what: what.to_string(),
            message: format!(
                "`{}`: unknown comparison `{}`",
                crate::spec::diag::escape(name),
                crate::spec::diag::escape(f)
            ),
        })?,
    };
    let pre = matches!(attr(attrs, "pre"), Some("1") | Some("true"));
    if pre {
        flags |= SENSE_PREREQ;
    }
    let own = |k: &str| attr(attrs, k).map(str::to_string);
    Ok(Dep {
        name: name.to_string(),
        flags,
        epoch: own("epoch"),
        version: own("ver"),
        release: own("rel"),
        pre,
    })
}

fn file_kind(attrs: &[(String, String)]) -> FileKind {
    match attr(attrs, "type") {
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
    packages_under(input, what, limits, "metadata", |x, _, count| {
        each(package(x, count)?)
    })
}

/// The document's one `root` element and each `<package>` in it, in the
/// order of the file: `one(reader, its attributes, its number)` reads each
/// (from just after its start). Other children are skipped; at most
/// `max_packages` of them. Returns how many there were.
fn packages_under<R: Read>(
    input: R,
    what: &str,
    limits: &Limits,
    root: &str,
    mut one: impl FnMut(&mut Xml<R>, &[(String, String)], u64) -> Result<()>,
) -> Result<u64> {
    let mut x = Xml::new(input, limits, what);
    let mut count = 0u64;
    let mut saw_root = false;
    loop {
        match x.next()? {
            Ev::Start(n, _) if n == root && !saw_root => saw_root = true,
            Ev::Start(n, attrs) if n == "package" && saw_root => {
                count += 1;
                if count > limits.max_packages {
                    return Err(x.limit("max_packages", limits.max_packages, "packages"));
                }
                one(&mut x, &attrs, count)?;
            }
            Ev::Start(n, _) if saw_root => x.skip(&n)?,
            Ev::Start(n, _) | Ev::Empty(n, _) if !saw_root => {
                return Err(x.error(format!("`<{n}>` where `<{root}>` should be")));
            }
            Ev::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(x.error(format!("no `<{root}>` element")));
    }
    Ok(count)
}

/// One `<package>` of primary, its start just read.
fn package<R: Read>(x: &mut Xml<R>, index: u64) -> Result<Package> {
    let mut p = Package::default();
    let mut checksum = None;
    let mut list: Option<DepKind> = None;
    let mut entries = 0usize;
    let mut has_version = false;
    let base = x.what;
    let what = |p: &Package| {
        if p.name.is_empty() {
            format!("{base}: package #{index}")
        } else {
            format!("{base}: package `{}`", crate::spec::diag::escape(&p.name))
        }
    };
    loop {
        let ev = x.next()?;
        let (n, attrs, empty) = match ev {
            Ev::Start(n, a) => (n, a, false),
            Ev::Empty(n, a) => (n, a, true),
            Ev::End(n) => {
                if n == "package" {
                    break;
                }
                if DepKind::from_name(n.as_bytes()) == list {
                    list = None;
                }
                continue;
            }
            Ev::Text(_) => continue,
            Ev::Eof => return Err(x.error("the file ends inside `<package>`".into())),
        };
        let text = |x: &mut Xml<R>| if empty { Ok(String::new()) } else { x.text(&n) };
        match n.as_str() {
            "name" => p.name = text(x)?,
            "arch" => p.arch = text(x)?,
            "version" => {
                p.epoch = number(&what(&p), "epoch", attr(&attrs, "epoch"))?;
                p.version = attr(&attrs, "ver").unwrap_or("").to_string();
                p.release = attr(&attrs, "rel").unwrap_or("").to_string();
                has_version = true;
                if !empty {
                    x.skip(&n)?;
                }
            }
            "checksum" => {
                let w = what(&p);
                let k = ChecksumKind::parse(attr(&attrs, "type").unwrap_or("?"), &w)?;
                checksum = Some(Checksum::new(k, &text(x)?, &w)?);
            }
            "time" => {
                p.build_time = number(&what(&p), "time build", attr(&attrs, "build"))?;
                if !empty {
                    x.skip(&n)?;
                }
            }
            "size" => {
                p.size = number(&what(&p), "size package", attr(&attrs, "package"))?;
                p.installed_size = number(&what(&p), "size installed", attr(&attrs, "installed"))?;
                if !empty {
                    x.skip(&n)?;
                }
            }
            "location" => {
                p.location = attr(&attrs, "href").unwrap_or("").to_string();
                p.location_base = attr(&attrs, "xml:base").map(str::to_string);
                if !empty {
                    x.skip(&n)?;
                }
            }
            "format" => {}
            "entry" if list.is_some() => {
                let kind = list.expect("checked");
                let d = dep(&what(&p), &attrs, kind)?;
                p.deps_mut(kind).push(d);
                entries += 1;
                if !empty {
                    x.skip(&n)?;
                }
            }
            "file" => {
                let path = text(x)?;
                p.files.push(PackageFile {
                    path,
                    kind: file_kind(&attrs),
                });
                entries += 1;
            }
            other => match DepKind::from_name(other.as_bytes()) {
                Some(kind) if !empty => list = Some(kind),
                Some(_) => {}
                None if empty => {}
                None => x.skip(&n)?,
            },
        }
        if entries > x.limits.max_entries {
            return Err(x.limit(
                "max_entries",
                x.limits.max_entries as u64,
                "entries in one package",
            ));
        }
    }
    let w = what(&p);
    let missing = |field: &str| RepoError::Metadata {
        what: w.clone(),
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
    packages_under(input, what, limits, "filelists", |x, attrs, _| {
        each(file_list(x, attrs)?)
    })
}

fn file_list<R: Read>(x: &mut Xml<R>, attrs: &[(String, String)]) -> Result<FileList> {
    let own = |k: &str| attr(attrs, k).unwrap_or("").to_string();
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
            Ev::Start(n, a) | Ev::Empty(n, a) if n == "version" => {
                l.epoch = number(x.what, "epoch", attr(&a, "epoch"))?;
                l.version = attr(&a, "ver").unwrap_or("").to_string();
                l.release = attr(&a, "rel").unwrap_or("").to_string();
            }
            Ev::Start(n, a) if n == "file" => {
                let path = x.text(&n)?;
                l.files.push(PackageFile {
                    path,
                    kind: file_kind(&a),
                });
                if l.files.len() > x.limits.max_entries {
                    return Err(x.limit(
                        "max_entries",
                        x.limits.max_entries as u64,
                        "entries in one package",
                    ));
                }
            }
            Ev::Start(n, _) => x.skip(&n)?,
            Ev::End(n) if n == "package" => return Ok(l),
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
        assert_eq!(p.provides[0].evr(), "2:1.0-3.amzn2023");
        assert_eq!(p.provides[0].flags, SENSE_EQUAL);
        assert_eq!(p.provides[1].flags, 0);
        assert!(p.requires[0].pre && p.requires[0].flags == SENSE_PREREQ);
        assert_eq!(p.requires[1].to_string(), "glibc >= 2.34");
        assert_eq!(p.requires[2].name, "(a >= 1 with a < 2)");
        assert!(p.requires[2].is_rich());
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
