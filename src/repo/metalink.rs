//! Metalinks: MirrorManager's XML answer to "where is this repository,
//! and what must its `repomd.xml` be" (dnf's `metalink=`), read as librepo
//! reads it.
//!
//! In: the metalink's bytes (already bounded by the caller: `max_index`),
//! read as a stream of `quick-xml` events, never a tree. Out: a
//! [`Metalink`]: the base URLs of its `<file name="repomd.xml">` entry's
//! `<url>`s, and the hashes `repomd.xml` may have.
//!
//! - URLs: the `<url>`s under `<resources>` whose protocol (the `protocol`
//!   attribute, else the URL's scheme) is `http`, `https` or `file`, and
//!   that end in `repodata/repomd.xml`; that end is cut off to give the
//!   base URL. Ordered by `preference` (a number, 0 when absent), highest
//!   first, then in document order; a URL listed twice is kept once.
//! - Hashes: each `<hash>` right under a `<verification>` of the entry,
//!   its own and those of its `<alternates>` (older `repomd.xml`s a mirror
//!   may still serve, which librepo accepts too); SHA-2 types only
//!   (`sha256`, `sha512`, and `sha224`/`sha384`; the `sha-256` spelling
//!   too). MD5 and SHA-1 are skipped; an entry left with no hash is an
//!   error, so a metalink always pins what `repomd.xml` must be.
//!   `<pieces>` hashes are for chunks and are not read.
//!
//! The layout is MirrorManager's Metalink 3.0 (`<files>`, `<file>`,
//! `<verification>`, `<resources>`), the one dnf's repositories serve and
//! librepo reads; RFC 5854's Metalink 4 layout (no `<files>`) lists no
//! `repomd.xml` entry here and is refused as such.
//!
//! Limits: [`MAX_URLS`] URLs and [`MAX_HASHES`] hashes in the entry,
//! nesting past `max_depth`, a URL or hash longer than `max_string`; each
//! error names the limit. Everything else that does not parse is an error
//! naming the metalink and the byte where it went wrong.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::decode::Limits;
use super::error::{RepoError, Result};
use super::fetch::check_url;
use super::package::{Checksum, ChecksumKind};

/// `<url>`s of the `repomd.xml` entry kept (MirrorManager lists a few
/// dozen to a few hundred).
pub const MAX_URLS: usize = 1000;
/// `<hash>`es of the entry, alternates included.
pub const MAX_HASHES: usize = 256;

/// What a metalink says of `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metalink {
    /// Base URLs (ending in `/`), best first.
    pub urls: Vec<String>,
    /// The hashes `repomd.xml` may have: the current one's, then the
    /// alternates'.
    pub hashes: Vec<Checksum>,
}

impl Metalink {
    /// Whether `data` has one of the listed hashes.
    pub fn matches(&self, data: &[u8]) -> bool {
        let mut kinds: Vec<ChecksumKind> = self.hashes.iter().map(|h| h.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds.into_iter().any(|kind| {
            let mut h = kind.hasher();
            h.update(data);
            let hex = h.finish();
            self.hashes.iter().any(|c| c.kind == kind && c.hex == hex)
        })
    }
}

/// One `<url>` as read: its preference and base URL.
struct Url {
    preference: i64,
    base: String,
}

/// The reader's place: the open elements' local names, and what the
/// element being read (a `<hash>` or a `<url>`) will become.
struct State<'a> {
    what: &'a str,
    limits: &'a Limits,
    open: Vec<String>,
    /// Depth of the `repomd.xml` `<file>` while inside it.
    entry: Option<usize>,
    seen_entry: bool,
    /// Inside a `<hash>` (its type) or a `<url>` (protocol, preference).
    reading: Option<Reading>,
    text: String,
    urls: Vec<Url>,
    hashes: Vec<Checksum>,
}

enum Reading {
    Hash(Option<String>),
    Url(Option<String>, i64),
}

/// Parse a metalink (already read whole; `what` names it in errors).
pub fn parse(data: &[u8], what: &str, limits: &Limits) -> Result<Metalink> {
    let mut reader = Reader::from_reader(data);
    reader.config_mut().expand_empty_elements = false;
    let mut s = State {
        what,
        limits,
        open: Vec::new(),
        entry: None,
        seen_entry: false,
        reading: None,
        text: String::new(),
        urls: Vec::new(),
        hashes: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut saw_root = false;
    loop {
        buf.clear();
        let at = reader.buffer_position();
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| s.error(at, e.to_string()))?;
        match ev {
            Event::Start(e) => {
                if !saw_root && e.local_name().as_ref() != "metalink" {
                    return Err(s.error(at, "the root element is not `<metalink>`".into()));
                }
                saw_root = true;
                s.start(&e, at)?;
            }
            Event::Empty(_) if !saw_root => {
                return Err(s.error(at, "the root element is not `<metalink>`".into()));
            }
            Event::Empty(e) if s.reading.is_some() => {
                let name = e.local_name().as_ref().to_string();
                return Err(s.error(at, format!("`<{name}>` inside `<{}>`", s.parent())));
            }
            Event::End(_) => s.end(at)?,
            Event::Text(t) => s.push_text(&t.xml10_content())?,
            Event::CData(t) => s.push_text(&t.xml10_content())?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| s.error(at, format!("unknown entity `&{};`", &*r)))?
                        .to_string(),
                    Err(e) => return Err(s.error(at, e.to_string())),
                };
                s.push_text(&c)?;
            }
            Event::Eof => break,
            Event::Empty(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::Comment(_)
            | Event::DocType(_) => {}
        }
    }
    if !saw_root {
        return Err(s.error(reader.buffer_position(), "no `<metalink>` element".into()));
    }
    if let Some(open) = s.open.last() {
        let at = reader.buffer_position();
        return Err(s.error(at, format!("the file ends inside `<{open}>`")));
    }
    s.finish()
}

impl State<'_> {
    fn error(&self, at: u64, message: String) -> RepoError {
        RepoError::Metadata {
            what: self.what.to_string(),
            message: format!("{message} (at byte {at})"),
        }
    }

    fn limit(&self, limit: &'static str, max: u64, unit: &'static str) -> RepoError {
        RepoError::over(self.what, limit, max, unit)
    }

    fn parent(&self) -> &str {
        self.open.last().map_or("", String::as_str)
    }

    /// The value of attribute `key` of `e` (unescaped), if it has one.
    fn attr(&self, e: &BytesStart, key: &str, at: u64) -> Result<Option<String>> {
        for a in e.attributes() {
            let a = a.map_err(|err| self.error(at, format!("bad attribute: {err}")))?;
            if a.key.local_name().as_ref() == key {
                let v = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|err| self.error(at, format!("bad attribute `{key}`: {err}")))?;
                if v.len() > self.limits.max_string {
                    let max = self.limits.max_string as u64;
                    return Err(self.limit("max_string", max, "bytes in one value"));
                }
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }

    fn start(&mut self, e: &BytesStart, at: u64) -> Result<()> {
        let name = e.local_name().as_ref().to_string();
        if self.reading.is_some() {
            let inside = self.parent();
            return Err(self.error(at, format!("`<{name}>` inside `<{inside}>`")));
        }
        match (name.as_str(), self.parent(), self.entry) {
            ("file", "files", None)
                if !self.seen_entry
                    && self.attr(e, "name", at)?.as_deref() == Some("repomd.xml") =>
            {
                self.entry = Some(self.open.len() + 1);
                self.seen_entry = true;
            }
            ("hash", "verification", Some(_)) => {
                self.reading = Some(Reading::Hash(self.attr(e, "type", at)?));
            }
            ("url", "resources", Some(_)) => {
                let protocol = self.attr(e, "protocol", at)?;
                let preference = match self.attr(e, "preference", at)? {
                    None => 0,
                    Some(p) => p.trim().parse().map_err(|_| {
                        self.error(at, format!("`preference` is not a number: `{p}`"))
                    })?,
                };
                self.reading = Some(Reading::Url(protocol, preference));
            }
            _ => {}
        }
        self.open.push(name);
        if self.open.len() > self.limits.max_depth {
            let max = self.limits.max_depth as u64;
            return Err(self.limit("max_depth", max, "nested elements"));
        }
        self.text.clear();
        Ok(())
    }

    fn push_text(&mut self, t: &str) -> Result<()> {
        if self.reading.is_none() {
            return Ok(());
        }
        self.text.push_str(t);
        if self.text.len() > self.limits.max_string {
            let max = self.limits.max_string as u64;
            return Err(self.limit("max_string", max, "bytes in one value"));
        }
        Ok(())
    }

    fn end(&mut self, at: u64) -> Result<()> {
        match self.reading.take() {
            Some(Reading::Hash(kind)) => self.hash(kind, at)?,
            Some(Reading::Url(protocol, preference)) => self.url(protocol, preference)?,
            None => {}
        }
        if self.entry == Some(self.open.len()) {
            self.entry = None;
        }
        self.open.pop();
        Ok(())
    }

    fn hash(&mut self, kind: Option<String>, at: u64) -> Result<()> {
        let kind = match kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("sha224" | "sha-224") => ChecksumKind::Sha224,
            Some("sha256" | "sha-256") => ChecksumKind::Sha256,
            Some("sha384" | "sha-384") => ChecksumKind::Sha384,
            Some("sha512" | "sha-512") => ChecksumKind::Sha512,
            Some(_) => return Ok(()),
            None => return Err(self.error(at, "a `<hash>` without a `type`".into())),
        };
        let what = format!("{}: repomd.xml's hash", self.what);
        self.hashes.push(Checksum::new(kind, &self.text, &what)?);
        if self.hashes.len() > MAX_HASHES {
            return Err(self.limit("MAX_HASHES", MAX_HASHES as u64, "hashes"));
        }
        Ok(())
    }

    fn url(&mut self, protocol: Option<String>, preference: i64) -> Result<()> {
        let url = self.text.trim();
        let scheme = url.split_once("://").map(|(s, _)| s);
        let protocol = protocol.as_deref().or(scheme).map(str::to_ascii_lowercase);
        if !matches!(protocol.as_deref(), Some("http" | "https" | "file"))
            || check_url(url).is_err()
        {
            return Ok(());
        }
        let Some(base) = url.strip_suffix("repodata/repomd.xml") else {
            return Ok(());
        };
        if self.urls.iter().any(|u| u.base == base) {
            return Ok(());
        }
        self.urls.push(Url {
            preference,
            base: base.to_string(),
        });
        if self.urls.len() > MAX_URLS {
            return Err(self.limit("MAX_URLS", MAX_URLS as u64, "URLs"));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Metalink> {
        let missing = |message: &str| RepoError::Metadata {
            what: self.what.to_string(),
            message: message.to_string(),
        };
        if !self.seen_entry {
            return Err(missing("lists no `<file name=\"repomd.xml\">`"));
        }
        if self.hashes.is_empty() {
            return Err(missing(
                "gives no sha256 or sha512 `<hash>` of repomd.xml to check it against",
            ));
        }
        // A stable sort: equal preferences stay in document order.
        self.urls.sort_by_key(|u| std::cmp::Reverse(u.preference));
        Ok(Metalink {
            urls: self.urls.into_iter().map(|u| u.base).collect(),
            hashes: self.hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(data: &[u8]) -> String {
        let mut h = ChecksumKind::Sha256.hasher();
        h.update(data);
        h.finish()
    }

    fn sha512(data: &[u8]) -> String {
        let mut h = ChecksumKind::Sha512.hasher();
        h.update(data);
        h.finish()
    }

    /// A metalink as MirrorManager writes one, around `hashes` (the
    /// current `<verification>`'s body), `alternates` and `urls`.
    fn metalink(hashes: &str, alternates: &str, urls: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="other.xml"><resources><url protocol="http">http://no/repodata/repomd.xml</url></resources></file>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <size>3000</size>
   <verification>{hashes}
    <pieces length="1024" type="sha256"><hash>{zero}</hash></pieces>
   </verification>
   <mm0:alternates>{alternates}</mm0:alternates>
   <resources maxconnections="1">{urls}</resources>
  </file>
 </files>
</metalink>
"#,
            zero = "0".repeat(64)
        )
    }

    fn parse_text(text: &str) -> Result<Metalink> {
        parse(text.as_bytes(), "metalink `m`", &Limits::default())
    }

    #[test]
    fn urls_by_preference_then_order_and_every_hash() {
        let cur = b"current repomd";
        let old = b"older repomd";
        let m = parse_text(&metalink(
            &format!(
                "<hash type=\"md5\">{}</hash><hash type=\"sha1\">{}</hash>\
                 <hash type=\"sha256\">{}</hash><hash type=\"sha512\">{}</hash>",
                "a".repeat(32),
                "b".repeat(40),
                sha256(cur).to_uppercase(),
                sha512(cur)
            ),
            &format!(
                "<mm0:alternate><mm0:timestamp>1</mm0:timestamp>\
                 <verification><hash type=\"sha256\">{}</hash></verification></mm0:alternate>",
                sha256(old)
            ),
            r#"
    <url protocol="rsync" preference="100">rsync://r/x/repodata/repomd.xml</url>
    <url protocol="http" type="http" location="US" preference="90">http://a.example.invalid/f/39/x86_64/repodata/repomd.xml</url>
    <url protocol="https" preference="100">https://b.example.invalid/x86_64/repodata/repomd.xml</url>
    <url preference="90">https://c.example.invalid/a&amp;b/repodata/repomd.xml</url>
    <url protocol="https" preference="100">https://b.example.invalid/x86_64/repodata/repomd.xml</url>
    <url protocol="https" preference="99">https://d.example.invalid/no-repodata/</url>
    <url protocol="ftp" preference="95">ftp://e.example.invalid/repodata/repomd.xml</url>
    <url protocol="http">http://f.example.invalid/repodata/repomd.xml</url>
"#,
        ))
        .unwrap();
        assert_eq!(
            m.urls,
            [
                "https://b.example.invalid/x86_64/",
                "http://a.example.invalid/f/39/x86_64/",
                "https://c.example.invalid/a&b/",
                "http://f.example.invalid/",
            ]
        );
        // Only the SHA-2 hashes, the alternate's too; none of the pieces'.
        let kinds: Vec<&str> = m.hashes.iter().map(|h| h.kind.name()).collect();
        assert_eq!(kinds, ["sha256", "sha512", "sha256"]);
        assert!(m.matches(cur));
        assert!(m.matches(old), "an alternate's hash is accepted");
        assert!(!m.matches(b"something else"));
        assert!(!m.matches(&[0u8; 1024]), "a piece's hash is not");
    }

    #[test]
    fn a_sha512_alone_and_a_file_url() {
        let text = format!(
            r#"<metalink><files><file name="repomd.xml">
<verification><hash type="sha-512">{}</hash></verification>
<resources><url>file:///srv/r/repodata/repomd.xml</url></resources></file></files></metalink>"#,
            sha512(b"x")
        );
        let m = parse_text(&text).unwrap();
        assert_eq!(m.urls, ["file:///srv/r/"]);
        assert!(m.matches(b"x") && !m.matches(b"y"));
    }

    #[test]
    fn bad_metalinks_are_errors() {
        let good_hash = format!("<hash type=\"sha256\">{}</hash>", sha256(b"x"));
        let cases: Vec<(String, &str)> = vec![
            ("<html><body>502</body></html>".into(), "not `<metalink>`"),
            ("not xml at all".into(), "no `<metalink>` element"),
            ("<metalink><files>".into(), "ends inside `<files>`"),
            (
                "<metalink><files><file name=\"repomd.xml\"></files></metalink>".into(),
                "(at byte",
            ),
            (
                "<metalink><files><file name=\"x\"/></files></metalink>".into(),
                "lists no `<file name=\"repomd.xml\">`",
            ),
            (
                metalink("<hash type=\"md5\">00</hash>", "", ""),
                "no sha256 or sha512",
            ),
            (
                metalink("<hash type=\"sha256\">xyz</hash>", "", ""),
                "is not a sha256 checksum",
            ),
            (metalink("<hash>00</hash>", "", ""), "without a `type`"),
            (
                metalink(
                    &good_hash,
                    "",
                    "<url preference=\"high\">http://a/repodata/repomd.xml</url>",
                ),
                "`preference` is not a number",
            ),
            (
                metalink(
                    &good_hash,
                    "",
                    "<url>http://a/<b/>repodata/repomd.xml</url>",
                ),
                "`<b>` inside `<url>`",
            ),
            (metalink(&good_hash, "", "&nope;"), "unknown entity"),
        ];
        for (text, want) in cases {
            let e = parse_text(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}\n-> {e}\n(wanted `{want}`)");
            assert!(e.starts_with("metalink `m`"), "{e}");
        }
    }

    #[test]
    fn every_cut_of_a_metalink_parses_or_is_refused() {
        let text = metalink(
            &format!("<hash type=\"sha256\">{}</hash>", sha256(b"x")),
            "<mm0:alternate><verification><hash type=\"sha512\">00</hash></verification></mm0:alternate>",
            "<url protocol=\"http\" preference=\"7\">http://a/&amp;/repodata/repomd.xml</url>",
        );
        for n in 0..text.len() {
            // A cut is an error or a shorter metalink; never a panic.
            let _ = parse(&text.as_bytes()[..n], "m", &Limits::default());
        }
    }

    #[test]
    fn hostile_metalinks_hit_named_limits() {
        let hash = format!("<hash type=\"sha256\">{}</hash>", sha256(b"x"));
        let many_urls: String = (0..=MAX_URLS)
            .map(|i| format!("<url>http://m{i}/repodata/repomd.xml</url>"))
            .collect();
        let many_hashes = hash.repeat(MAX_HASHES + 1);
        let deep = format!(
            "<metalink>{}{}",
            "<a>".repeat(40),
            "</a>".repeat(40) + "</metalink>"
        );
        let long = format!(
            "<url>http://{}/repodata/repomd.xml</url>",
            "x".repeat(Limits::default().max_string)
        );
        for (text, limit) in [
            (metalink(&hash, "", &many_urls), "MAX_URLS"),
            (metalink(&many_hashes, "", ""), "MAX_HASHES"),
            (deep, "max_depth"),
            (metalink(&hash, "", &long), "max_string"),
        ] {
            let e = parse_text(&text).unwrap_err();
            assert_eq!(e.limit(), Some(limit), "{e}");
        }
    }
}
