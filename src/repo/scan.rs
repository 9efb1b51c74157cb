//! `primary.xml` and `filelists.xml` as createrepo writes them, read by
//! hand: the fast way through the pieces [`super::pieces`] cuts, and
//! through filelists piece after piece.
//!
//! Why our own reader: quick-xml reads any XML, and going through it
//! (its tokens, its attribute iterator and normalization, each event
//! copied into a buffer) was most of what `ingot lock` cost against a
//! repository of 20,000 packages. Primary as generators write it uses a
//! small part of XML: tags with quoted attributes, and text with the five
//! predefined entities. [`Scan`] reads that part only, straight from the
//! piece's bytes, and gives up on anything else: a comment, a CDATA
//! section, a processing instruction, a character reference, a carriage
//! return in a kept text, whitespace around `=`, a limit reached, any
//! error. A piece it gives up on is read by [`xml::primary_piece`]
//! instead, so errors and odd documents always get quick-xml's answer.
//!
//! Most packages are read in one go by [`whole`]: createrepo_c's layout
//! matched literally, element after element, and a package in any other
//! layout left to the events.
//!
//! The promise, on any bytes: [`primary_piece`] returns `None` or exactly
//! what [`xml::primary_piece`] returns, and [`filelists_matching`] `None`
//! or exactly what [`xml::filelists_matching`] finds. [`Scan`] hands [`xml::package`]
//! the events [`xml`]'s reader would hand it for the same bytes, so the
//! one reading of a package's fields serves both. The unit tests below
//! and the `repo_metadata` fuzz target check the promise; they also check
//! that plain primary is read here and not handed back.

use memchr::{memchr, memchr2};

use super::decode::Limits;
use super::error::{RepoError, Result};
use super::package::{Dep, FileKind, Package, SENSE_PREREQ, dep_evr, sense_flags};
use super::xml::{self, Ev, Events, Place};

mod whole;

/// The packages of one piece of primary, or `None` when the piece is not
/// in the plain form read here, or does not read cleanly.
pub(super) fn primary_piece(
    data: &[u8],
    place: Place,
    what: &str,
    limits: &Limits,
) -> Option<Vec<Package>> {
    let mut out = Vec::new();
    piece(data, place, "metadata", what, limits, &mut |x, count| {
        let p = match x.whole_package() {
            Some(p) => p,
            None => xml::package(x, count)?,
        };
        out.push(p);
        Ok(())
    })?;
    Some(out)
}

/// A whole `primary.xml` (decompressed, in memory) read here as one
/// piece: for tests and the fuzz target, which check that what real
/// generators write is in the plain form, and reads as quick-xml reads it.
pub fn primary(doc: &[u8], what: &str, limits: &Limits) -> Option<Vec<Package>> {
    let rest = after_prolog(doc, "metadata", what, limits)?;
    primary_piece(rest, Place::Last, what, limits)
}

/// What follows the prolog of a document's first piece (up to its first
/// `<package`), when quick-xml reads that prolog cleanly: it then stands
/// where a piece from the middle starts, inside the root, outside any
/// markup. The prolog is always quick-xml's to read.
fn after_prolog<'d>(data: &'d [u8], root: &str, what: &str, limits: &Limits) -> Option<&'d [u8]> {
    let at = xml::first_package_tag(data)?;
    xml::prolog(&data[..at], root, what, limits).then_some(&data[at..])
}

/// Read one piece of a document whose root is `root`: `one(reader, its
/// number in the piece)` reads each package from just after its start
/// tag. The number of packages, or `None` (given up, or `one` failed).
fn piece(
    data: &[u8],
    place: Place,
    root: &str,
    what: &str,
    limits: &Limits,
    one: &mut dyn FnMut(&mut Scan, u64) -> Result<()>,
) -> Option<u64> {
    if place == Place::First {
        let rest = after_prolog(data, root, what, limits)?;
        return piece(rest, Place::Middle, root, what, limits, one);
    }
    // The piece as quick-xml reads it: after `<metadata>`.
    if (xml::PIECE_ROOT.len() + data.len()) as u64 > limits.max_decompressed {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let mut x = Scan::new(text, limits);
    let close = format!("</{root}>");
    let mut count = 0;
    loop {
        x.skip_space().ok()?;
        if x.pos == x.b.len() {
            // A piece from the middle ends before the next `<package`;
            // the last one must close the root.
            return (place == Place::Middle).then_some(count);
        }
        if place == Place::Last && x.b[x.pos..].starts_with(close.as_bytes()) {
            x.pos += close.len();
            x.skip_space().ok()?;
            return (x.pos == x.b.len()).then_some(count);
        }
        if !x.package_start() && x.next().ok()? != Ev::Start("package") {
            return None;
        }
        count += 1;
        if count > limits.max_packages {
            return None;
        }
        one(&mut x, count).ok()?;
        if x.depth != 1 {
            return None;
        }
    }
}

/// `filelists.xml` (decompressed) read here, piece after piece: every
/// (pkgid, path) whose path `wanted` accepts, in the order of the file,
/// and how many packages there were; `None` when any piece is not in the
/// plain form (the caller then reads it all with
/// [`xml::filelists_matching`], which also gives any error).
pub fn filelists_matching(
    input: impl std::io::Read,
    what: &str,
    limits: &Limits,
    wanted: &impl Fn(&str) -> bool,
) -> Option<(u64, Vec<(String, String)>)> {
    filelists_in_pieces(input, what, limits, wanted, xml::PIECE)
}

/// [`filelists_matching`] with pieces of about `size` bytes.
fn filelists_in_pieces(
    mut input: impl std::io::Read,
    what: &str,
    limits: &Limits,
    wanted: &impl Fn(&str) -> bool,
    size: usize,
) -> Option<(u64, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let (mut pkgid, mut path) = (String::new(), String::new());
    let mut found = Vec::new();
    let mut read_piece = |data: &[u8], place| {
        piece(data, place, "filelists", what, limits, &mut |x, _| {
            if x.whole_file_list(wanted, &mut found).is_some() {
                let id = x.attr("pkgid").unwrap_or("");
                out.extend(
                    found
                        .drain(..)
                        .map(|p| (id.to_string(), x.text[p].to_string())),
                );
                return Ok(());
            }
            xml::files_matching(x, &mut pkgid, &mut path, wanted, &mut |id, p| {
                out.push((id.to_string(), p.to_string()));
                Ok(())
            })
        })
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let (mut place, mut total, mut count) = (Place::First, 0u64, 0u64);
    loop {
        let n = input.read(&mut chunk).ok()?;
        total += n as u64;
        if total > limits.max_decompressed || buf.len() > xml::MAX_PIECE {
            return None;
        }
        if n == 0 {
            count += match place {
                // The whole document is one piece: its prolog, then the
                // rest as the last piece.
                Place::First => {
                    read_piece(after_prolog(&buf, "filelists", what, limits)?, Place::Last)?
                }
                _ => read_piece(&buf, Place::Last)?,
            };
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() >= size
            && let Some(at) = xml::last_package_tag(&buf)
        {
            let rest = buf.split_off(at);
            count += read_piece(&buf, place)?;
            buf = rest;
            place = Place::Middle;
        }
    }
    (count <= limits.max_packages).then_some((count, out))
}

/// Where an attribute's value is: in the piece, or (entities replaced)
/// in [`Scan::values`].
#[derive(Clone, Copy)]
struct Value {
    start: usize,
    end: usize,
    replaced: bool,
}

/// The reader of one piece, inside the root element (depth 1).
pub(super) struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
    limits: &'a Limits,
    /// The names of the elements open in the piece, as written, and as
    /// [`xml::known_element`] took them.
    open: Vec<(usize, usize, &'static str)>,
    /// The last start or empty tag's attributes, by their known names
    /// ([`xml::known_attr`]).
    attrs: Vec<(&'static str, Value)>,
    /// Each attribute name of the last tag, as written.
    keys: Vec<(usize, usize)>,
    /// Attribute values with entities replaced.
    values: String,
    /// One dependency list of [`whole`]'s as it is read, then moved into
    /// its package in a vector of its own size.
    list: Vec<Dep>,
}

/// What [`Scan`] gives up with; never shown (the piece is read again by
/// quick-xml, which gives the real error if there is one).
fn give_up() -> RepoError {
    RepoError::Metadata {
        what: String::new(),
        message: String::new(),
    }
}

/// What each byte may be here: one table lookup instead of a chain of
/// comparisons per byte of every name and every run of whitespace.
const SPACE: u8 = 1;
const NAME: u8 = 2;
const NAME_START: u8 = 4;
/// The bytes an attribute value is checked for: its quotes, `&`, and
/// what quick-xml would change or refuse (`<`, tabs and line ends).
const IN_VALUE: u8 = 8;
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            t[c] = SPACE;
        }
        // The bytes a name may start with here (quick-xml takes more).
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] |= NAME_START;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') {
            t[c] |= NAME;
        }
        if matches!(b, b'"' | b'\'' | b'&' | b'<' | b'\t' | b'\n' | b'\r') {
            t[c] |= IN_VALUE;
        }
        c += 1;
    }
    t
};

fn is_space(c: u8) -> bool {
    CLASS[c as usize] & SPACE != 0
}

fn is_name_start(c: u8) -> bool {
    CLASS[c as usize] & NAME_START != 0
}

/// Where the run of bytes of `class` that starts at `i` ends.
fn run_end(b: &[u8], i: usize, class: u8) -> usize {
    b[i..]
        .iter()
        .position(|&c| CLASS[c as usize] & class == 0)
        .map_or(b.len(), |n| i + n)
}

/// Where the next `<` or `&` from `i` is. Most texts in primary are
/// short (names, versions, paths): their first bytes are looked at eight
/// at a time in a word, and only a longer text is searched.
fn find_text_stop(b: &[u8], i: usize) -> Option<usize> {
    const SHORT: usize = 32;
    let mut at = i;
    while at + 8 <= b.len().min(i + SHORT) {
        let word = u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        if let Some(n) = first_lt_or_amp(word) {
            return Some(at + n);
        }
        at += 8;
    }
    if at < i + SHORT {
        // Fewer than eight bytes are left before the end.
        return b[at..]
            .iter()
            .position(|&c| c == b'<' || c == b'&')
            .map(|n| at + n);
    }
    memchr2(b'<', b'&', &b[at..]).map(|n| at + n)
}

/// The index of the first `<` or `&` among the eight bytes of `word`
/// (little-endian: the first byte is the lowest). A byte equal to one is
/// a zero byte of `word ^ that byte repeated`; the lowest byte the
/// zero-byte test flags is always a real zero (a false flag only comes
/// from a borrow out of a real zero below it).
fn first_lt_or_amp(word: u64) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let found = zero(word ^ (ONES * u64::from(b'<'))) | zero(word ^ (ONES * u64::from(b'&')));
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

/// The predefined entity at the start of `rest` (which starts with `&`):
/// its length and what it stands for.
fn entity(rest: &[u8]) -> Option<(usize, &'static str)> {
    const ENTITIES: [(&[u8], &str); 5] = [
        (b"&amp;", "&"),
        (b"&lt;", "<"),
        (b"&gt;", ">"),
        (b"&quot;", "\""),
        (b"&apos;", "'"),
    ];
    ENTITIES
        .iter()
        .find(|(e, _)| rest.starts_with(e))
        .map(|(e, r)| (e.len(), *r))
}

/// `raw` with its entities replaced, appended to `out`; `None` on an `&`
/// that does not start a predefined entity.
fn replace_entities(raw: &str, out: &mut String) -> Option<()> {
    let mut from = 0;
    while let Some(at) = memchr(b'&', &raw.as_bytes()[from..]).map(|i| from + i) {
        let (len, with) = entity(&raw.as_bytes()[at..])?;
        out.push_str(&raw[from..at]);
        out.push_str(with);
        from = at + len;
    }
    out.push_str(&raw[from..]);
    Some(())
}

/// The local name of `name` as quick-xml takes it: after the first `:`.
fn local(name: &str) -> &str {
    match name.bytes().position(|c| c == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Whether two short byte strings (names) are the same, without a call
/// to `memcmp` for a handful of bytes.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl<'a> Scan<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Scan<'a> {
        Scan {
            text,
            b: text.as_bytes(),
            pos: 0,
            depth: 1,
            limits,
            open: Vec::new(),
            attrs: Vec::new(),
            keys: Vec::new(),
            values: String::new(),
            list: Vec::new(),
        }
    }

    /// Where a quick read starts: past whitespace from `pos` (checked as
    /// the text event the readers ignore would be) up to a `<`, then
    /// `open` (a `<` and an element's name) followed by a byte that ends
    /// a name; the `<` and the end of `open`. The whitespace is passed
    /// even when `open` does not follow: the events would only have
    /// ignored it.
    fn quick_start(&mut self, open: &[u8]) -> Option<(usize, usize)> {
        let lt = self.past_space()?;
        let end = lt + open.len();
        let next = *self.b.get(end)?;
        (self.b[lt..].starts_with(open) && CLASS[next as usize] & NAME == 0).then_some((lt, end))
    }

    /// Past the whitespace at `pos` when markup follows it: where the `<`
    /// is. The readers that call the quick reads ignore text events.
    fn past_space(&mut self) -> Option<usize> {
        let lt = run_end(self.b, self.pos, SPACE);
        if self.b.get(lt) != Some(&b'<') {
            return None;
        }
        self.check_run(self.pos, lt).ok()?;
        self.pos = lt;
        Some(lt)
    }

    /// Past whitespace between elements (a run between markup: its
    /// length is checked).
    fn skip_space(&mut self) -> Result<()> {
        let start = self.pos;
        self.pos = run_end(self.b, start, SPACE);
        self.check_run(start, self.pos)
    }

    /// quick-xml's reader holds at most `max_token` bytes between two
    /// markup characters; a run here never holds fewer than the one there.
    fn check_run(&self, start: usize, end: usize) -> Result<()> {
        match end - start > self.limits.max_token {
            true => Err(give_up()),
            false => Ok(()),
        }
    }

    /// A run of text from `from` to the next `<` (or the end): its end,
    /// once its entities are checked, and whether it has any.
    fn text_run(&self, from: usize) -> Result<(usize, bool)> {
        let b = self.b;
        let (mut at, mut entities) = (from, false);
        let end = loop {
            match find_text_stop(b, at) {
                Some(i) if b[i] == b'&' => {
                    let (len, _) = entity(&b[i..]).ok_or_else(give_up)?;
                    at = i + len;
                    entities = true;
                }
                Some(i) => break i,
                None => break b.len(),
            }
        };
        self.check_run(from, end)?;
        Ok((end, entities))
    }

    /// The tag at `pos` (a `<`).
    fn tag(&mut self) -> Result<Ev> {
        let start = self.pos;
        let ev = match self.b.get(start + 1) {
            Some(b'/') => self.end_tag()?,
            Some(&c) if is_name_start(c) => self.start_tag()?,
            _ => return Err(give_up()),
        };
        // From `<` to `>`: a run between markup, or longer.
        self.check_run(start + 1, self.pos - 1)?;
        Ok(ev)
    }

    /// The end tag at `pos`: the open element's name, then `>` (a name
    /// holds no `>`, so the first `>` ends it, as quick-xml takes it).
    fn end_tag(&mut self) -> Result<Ev> {
        let start = self.pos + 2;
        let &(open, len, name) = self.open.last().ok_or_else(give_up)?;
        let end = start + len;
        if self.b.get(end) != Some(&b'>') || !same(&self.b[start..end], &self.b[open..open + len]) {
            return Err(give_up());
        }
        self.open.pop();
        self.depth -= 1;
        self.pos = end + 1;
        Ok(Ev::End(name))
    }

    fn start_tag(&mut self) -> Result<Ev> {
        let b = self.b;
        let name_start = self.pos + 1;
        let mut i = run_end(b, name_start, NAME);
        let name_end = i;
        self.attrs.clear();
        self.keys.clear();
        self.values.clear();
        let empty = loop {
            match b.get(i) {
                Some(b'>') => {
                    i += 1;
                    break false;
                }
                Some(b'/') if b.get(i + 1) == Some(&b'>') => {
                    i += 2;
                    break true;
                }
                Some(&c) if is_space(c) => {
                    i = run_end(b, i, SPACE);
                    if matches!(b.get(i), Some(b'>' | b'/')) {
                        continue;
                    }
                    i = self.attribute(i)?;
                }
                _ => return Err(give_up()),
            }
        };
        self.pos = i;
        let name = xml::known_element(local(&self.text[name_start..name_end]));
        if empty {
            return Ok(Ev::Empty(name));
        }
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(give_up());
        }
        self.open.push((name_start, name_end - name_start, name));
        Ok(Ev::Start(name))
    }

    /// One `key="value"` (or single quotes) from `i`; where it ends.
    fn attribute(&mut self, mut i: usize) -> Result<usize> {
        let b = self.b;
        let key_start = i;
        if !b.get(i).is_some_and(|&c| is_name_start(c)) {
            return Err(give_up());
        }
        i = run_end(b, i, NAME);
        let key = &self.text[key_start..i];
        let quote = match (b.get(i), b.get(i + 1)) {
            (Some(b'='), Some(&q @ (b'"' | b'\''))) => q,
            _ => return Err(give_up()),
        };
        let value_start = i + 2;
        // One walk to the closing quote (values are short: a byte loop
        // beats a search per byte sought).
        let (mut at, mut entities) = (value_start, false);
        let value_end = loop {
            at += b[at..]
                .iter()
                .position(|&c| CLASS[c as usize] & IN_VALUE != 0)
                .ok_or_else(give_up)?;
            match b[at] {
                c if c == quote => break at,
                b'&' => entities = true,
                // quick-xml turns tabs and line ends into spaces: given up on.
                b'<' | b'\t' | b'\n' | b'\r' => return Err(give_up()),
                _ => {}
            }
            at += 1;
        };
        let raw = &self.text[value_start..value_end];
        if self
            .keys
            .iter()
            .any(|&(s, l)| same(&b[s..s + l], key.as_bytes()))
        {
            return Err(give_up());
        }
        self.keys.push((key_start, key.len()));
        let value = match entities {
            false => Value {
                start: value_start,
                end: value_end,
                replaced: false,
            },
            true => {
                let start = self.values.len();
                replace_entities(raw, &mut self.values).ok_or_else(give_up)?;
                Value {
                    start,
                    end: self.values.len(),
                    replaced: true,
                }
            }
        };
        if value.end - value.start > self.limits.max_string {
            return Err(give_up());
        }
        let known = xml::known_attr(key);
        if !known.is_empty() {
            self.attrs.push((known, value));
        }
        Ok(value_end + 1)
    }
}

impl<'a> Events<'a> for Scan<'a> {
    fn next(&mut self) -> Result<Ev> {
        if self.pos == self.b.len() {
            return Ok(Ev::Eof);
        }
        if self.b[self.pos] == b'<' {
            return self.tag();
        }
        self.pos = self.text_run(self.pos)?.0;
        Ok(Ev::Text)
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| same(k.as_bytes(), key.as_bytes()))
            .map(|(_, v)| match v.replaced {
                false => &self.text[v.start..v.end],
                true => &self.values[v.start..v.end],
            })
    }

    fn text_into(&mut self, s: &mut String) -> Result<()> {
        let start = self.pos;
        let (end, entities) = self.text_run(self.pos)?;
        let raw = &self.text[start..end];
        if raw.as_bytes().contains(&b'\r') {
            return Err(give_up());
        }
        s.clear();
        match entities {
            false => s.push_str(raw),
            true => replace_entities(raw, s).ok_or_else(give_up)?,
        }
        if s.len() > self.limits.max_string {
            return Err(give_up());
        }
        self.pos = end;
        match self.next()? {
            Ev::End(_) => Ok(()),
            _ => Err(give_up()),
        }
    }

    fn skip(&mut self) -> Result<()> {
        let depth = self.depth;
        loop {
            match self.next()? {
                Ev::End(_) if self.depth < depth => return Ok(()),
                Ev::Eof => return Err(give_up()),
                _ => {}
            }
        }
    }

    fn quick_entry(&mut self) -> Option<Dep> {
        let (lt, end) = self.quick_start(b"<rpm:entry")?;
        let b = self.b;
        // name, flags, epoch, ver, rel, pre: where each value is.
        let mut at: [Option<(usize, usize)>; 6] = [None; 6];
        let mut i = end;
        let end = loop {
            match b.get(i) {
                Some(&c) if is_space(c) => i = run_end(b, i, SPACE),
                Some(b'/') if b.get(i + 1) == Some(&b'>') => break i + 2,
                _ => return None,
            }
            if b.get(i) == Some(&b'/') {
                continue;
            }
            let key = i;
            i = run_end(b, i, NAME);
            let slot = match &b[key..i] {
                b"name" => 0,
                b"flags" => 1,
                b"epoch" => 2,
                b"ver" => 3,
                b"rel" => 4,
                b"pre" => 5,
                _ => return None,
            };
            if at[slot].is_some() || b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
                return None;
            }
            let start = i + 2;
            let len = b[start..]
                .iter()
                .position(|&c| CLASS[c as usize] & IN_VALUE != 0)?;
            if b[start + len] != b'"' || len > self.limits.max_string {
                return None;
            }
            at[slot] = Some((start, start + len));
            i = start + len + 1;
        };
        self.check_run(lt + 1, end - 1).ok()?;
        let value = |k: usize| at[k].map(|(s, e)| &self.text[s..e]);
        let name = value(0).filter(|n| !n.is_empty())?;
        let mut flags = match value(1) {
            None | Some("") => 0,
            Some(f) => sense_flags(f)?,
        };
        if matches!(value(5), Some("1" | "true")) {
            flags |= SENSE_PREREQ;
        }
        let dep = Dep {
            name: name.into(),
            flags,
            evr: dep_evr(value(2), value(3), value(4)),
        };
        self.pos = end;
        Some(dep)
    }

    fn quick_file(&mut self) -> Option<(FileKind, &'a str)> {
        let (lt, mut i) = self.quick_start(b"<file")?;
        let b = self.b;
        const FORMS: [(&[u8], FileKind); 3] = [
            (b">", FileKind::File),
            (br#" type="dir">"#, FileKind::Dir),
            (br#" type="ghost">"#, FileKind::Ghost),
        ];
        let (form, kind) = FORMS.iter().find(|(f, _)| b[i..].starts_with(f))?;
        i += form.len();
        self.check_run(lt + 1, i - 1).ok()?;
        if self.depth + 1 > self.limits.max_depth {
            return None;
        }
        let (end, entities) = self.text_run(i).ok()?;
        let path = &self.text[i..end];
        if entities
            || !b[end..].starts_with(b"</file>")
            || path.as_bytes().contains(&b'\r')
            || path.len() > self.limits.max_string
        {
            return None;
        }
        self.check_run(end + 1, end + 6).ok()?;
        self.pos = end + 7;
        Some((*kind, path))
    }

    fn quick_skip(&mut self) -> bool {
        let Some(lt) = self.past_space() else {
            return false;
        };
        let b = self.b;
        let name_start = lt + 1;
        if !b.get(name_start).is_some_and(|&c| is_name_start(c)) {
            return false;
        }
        let name_end = run_end(b, name_start, NAME);
        let name = &self.text[name_start..name_end];
        if b.get(name_end) != Some(&b'>')
            || !xml::known_element(local(name)).is_empty()
            || self.depth + 1 > self.limits.max_depth
            || self.check_run(lt + 1, name_end).is_err()
        {
            return false;
        }
        // The text, its entities checked, up to the end tag.
        let Ok((end, _)) = self.text_run(name_end + 1) else {
            return false;
        };
        let close = end + 2 + name.len();
        if b.get(end + 1) != Some(&b'/')
            || b.get(close) != Some(&b'>')
            || !same(&b[end + 2..close], name.as_bytes())
            || self.check_run(end + 1, close).is_err()
        {
            return false;
        }
        self.pos = close + 1;
        true
    }

    fn error(&self, _message: String) -> RepoError {
        give_up()
    }

    fn limits(&self) -> &'a Limits {
        self.limits
    }

    fn what(&self) -> &'a str {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::package::DepKind;

    const SHA: &str = "AA7F1E2F6A1F8C33E5B0D93DD4B5C1B7E24F44B2FF1EE9A6A7E0D35E4A9C2E10";

    /// A package as createrepo_c writes one, with the forms real
    /// repositories have: entities in text and attributes, rich and
    /// versioned dependencies, `pre`, `xml:base`, directories and ghosts.
    pub(super) fn package(i: usize) -> String {
        format!(
            r#"<package type="rpm">
  <name>p{i}</name>
  <arch>x86_64</arch>
  <version epoch="{e}" ver="1.{i}" rel="1.amzn2023"/>
  <checksum type="sha256" pkgid="YES">{SHA}</checksum>
  <summary>Tools &amp; libraries for p{i}</summary>
  <description>Says &lt;hello&gt; &quot;world&quot; &apos;{i}&apos;.
Second line.</description>
  <packager>Amazon Linux</packager>
  <url>https://example.invalid/p{i}?a=1&amp;b=2</url>
  <time file="1767225600" build="17672256{i}"/>
  <size package="{i}000" installed="{i}999" archive="12"/>
  <location xml:base="https://mirror.invalid/al" href="Packages/p{i}-1.{i}.rpm"/>
  <format>
    <rpm:license>MIT AND (BSD or GPL)</rpm:license>
    <rpm:header-range start="4504" end="9122"/>
    <rpm:provides>
      <rpm:entry name="p{i}" flags="EQ" epoch="0" ver="1.{i}" rel="1.amzn2023"/>
      <rpm:entry name="libp{i}.so.1()(64bit)"/>
      <rpm:entry name="config(p{i})" flags="EQ" epoch="{e}" ver="1.{i}" rel="1" />
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="p{j} &amp; co" flags="GE" epoch="0" ver="1.{j}"/>
      <rpm:entry name="(p{j}-libs &gt;= 2 if p{j})"/>
      <rpm:entry name="rtld(GNU_HASH)"/>
    </rpm:requires>
    <rpm:conflicts><rpm:entry name="old-p{i}" flags="LT" ver="1"/></rpm:conflicts>
    <rpm:obsoletes><rpm:entry name="p{i}-legacy"/></rpm:obsoletes>
    <rpm:recommends><rpm:entry name="p{i}-doc"/></rpm:recommends>
    <file>/usr/bin/p{i}</file>
    <file type="dir">/etc/p{i}</file>
    <file type="ghost">/var/log/p{i}.log</file>
  </format>
</package>
"#,
            e = i % 3,
            j = i / 2,
        )
    }

    fn packages(range: std::ops::Range<usize>) -> String {
        range.map(package).collect()
    }

    fn first(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" \
             xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"9\">\n{body}"
        )
    }

    /// The promise: `None`, or what quick-xml reads. The answer.
    fn checked(data: &[u8], place: Place, limits: &Limits) -> Option<Vec<Package>> {
        let fast = primary_piece(data, place, "primary", limits);
        if let Some(fast) = &fast {
            let slow = xml::primary_piece(data, place, "primary", limits);
            assert!(
                slow.as_ref() == Some(fast),
                "read here: {fast:#?}\nquick-xml: {slow:#?}\nof {:?}",
                String::from_utf8_lossy(data)
            );
        }
        fast
    }

    #[test]
    fn plain_pieces_are_read_here_as_quick_xml_reads_them() {
        let limits = Limits::default();
        let middle = packages(0..20);
        let got = checked(middle.as_bytes(), Place::Middle, &limits).expect("read here");
        assert_eq!(got.len(), 20);
        // What was read, checked field by field on one package.
        let p = &got[7];
        assert_eq!(
            (p.name.as_str(), p.epoch, p.version.as_str()),
            ("p7", 1, "1.7")
        );
        assert_eq!(p.checksum.hex, SHA.to_ascii_lowercase());
        assert_eq!(
            p.location_base.as_deref(),
            Some("https://mirror.invalid/al")
        );
        assert_eq!(p.requires[1].name, "p3 & co");
        assert_eq!(p.requires[2].name, "(p3-libs >= 2 if p3)");
        assert_ne!(p.requires[0].flags & crate::repo::package::SENSE_PREREQ, 0);
        assert_eq!(p.files.len(), 3);
        assert_eq!(p.files[1].kind, crate::repo::FileKind::Dir);

        let last = format!("{middle}</metadata>\n");
        assert_eq!(
            checked(last.as_bytes(), Place::Last, &limits).map(|v| v.len()),
            Some(20)
        );
        // The first piece: quick-xml reads the prolog, the packages are
        // read here.
        let head = first(&middle);
        assert_eq!(
            checked(head.as_bytes(), Place::First, &limits).map(|v| v.len()),
            Some(20)
        );
        // A piece may hold no package at all.
        assert_eq!(checked(b"\n  \n", Place::Middle, &limits), Some(vec![]));
    }

    /// Forms quick-xml reads (or refuses) that are not read here: each is
    /// handed back, or read the same.
    #[test]
    fn other_forms_are_handed_back_or_read_the_same() {
        let limits = Limits::default();
        let one = package(5);
        let changes: &[(&str, &str)] = &[
            ("<name>p5</name>", "<name>p<!-- c -->5</name>"),
            ("<name>p5</name>", "<name><![CDATA[p5]]></name>"),
            ("<name>p5</name>", "<name>p&#53;</name>"),
            ("<name>p5</name>", "<name>p5\r</name>"),
            ("<name>p5</name>", "<name>p5</name >"),
            ("<name>p5</name>", "<name>p&bogus;</name>"),
            ("<name>p5</name>", "<name>p & 5</name>"),
            ("<name>p5</name>", "<name>p5</nam>"),
            ("<name>p5</name>", "<name><b>p5</b></name>"),
            ("<name>p5</name>", "<?pi x?><name>p5</name>"),
            ("rel=\"1.amzn2023\"/>", "rel=\"1.amzn2023\" rel=\"2\"/>"),
            ("epoch=\"2\"", "epoch = \"2\""),
            ("epoch=\"2\"", "epoch=2"),
            ("epoch=\"2\"", "epoch=\"2\"ver=\"3\""),
            ("epoch=\"2\"", "epoch=\"\t2\""),
            ("epoch=\"2\"", "epoch=\"2\r\n\""),
            ("name=\"p5\"", "name=\"p&#x35;\""),
            ("name=\"p5\"", "name=\"p&amp;amp;5\""),
            ("name=\"p5\"", "name=\"p<5\""),
            (
                "<rpm:entry name=\"/bin/sh\" pre=\"1\"/>",
                "<rpm:entry name=\"/bin/sh\" pre=\"1\"/ >",
            ),
            ("<format>", "<format><package type=\"rpm\"/>"),
            (
                "<format>",
                "<format><extra><deeper a='1'>text</deeper></extra>",
            ),
            ("<version", "<rpm:x:version"),
            ("</package>", "</package></metadata>"),
            ("</package>", ""),
            ("<package type=\"rpm\">", "<package type=\"rpm\"/>"),
            (
                "xml:base=\"https://mirror.invalid/al\"",
                "xml:base='https://mirror.invalid/al'",
            ),
            ("<package type=\"rpm\">", "<other>"),
            ("<package type=\"rpm\">", "text<package type=\"rpm\">"),
            ("<checksum type=\"sha256\"", "<checksum type=\"md5\""),
            ("flags=\"EQ\"", "flags=\"ABOUT\""),
        ];
        let mut read_here = Vec::new();
        for (k, (from, to)) in changes.iter().enumerate() {
            assert!(one.contains(from), "change {k}");
            let changed = format!("{}{}{}", package(4), one.replacen(from, to, 1), package(6));
            for place in [Place::Middle, Place::Last] {
                let data = match place {
                    Place::Last => format!("{changed}</metadata>"),
                    _ => changed.clone(),
                };
                if checked(data.as_bytes(), place, &limits).is_some() {
                    read_here.push(k);
                }
            }
        }
        // Only the changes within the plain form are read here: `&amp;`
        // in a value, an empty package inside `<format>`, unknown nested
        // elements, a value in single quotes.
        assert_eq!(read_here, [17, 17, 20, 20, 21, 21, 26, 26]);
        // Bytes that are not UTF-8, a root closed in the middle, text
        // after the root: handed back.
        let mut bad = packages(0..3).into_bytes();
        bad[40] = 0xff;
        assert_eq!(checked(&bad, Place::Middle, &limits), None);
        let closed = format!("{}</metadata>\n{}", package(1), package(2));
        assert_eq!(checked(closed.as_bytes(), Place::Middle, &limits), None);
        assert_eq!(checked(closed.as_bytes(), Place::Last, &limits), None);
        let after = format!("{}</metadata>\nx", package(1));
        assert_eq!(checked(after.as_bytes(), Place::Last, &limits), None);
        // A last piece that does not close the root.
        assert_eq!(checked(package(1).as_bytes(), Place::Last, &limits), None);
    }

    /// Texts and values of every length around where the reader stops
    /// looking byte by byte and searches instead, with an entity, a
    /// carriage return, a tab or a `<` at each place: handed back or read
    /// as quick-xml reads them, and the plain ones (entities included)
    /// read here with their entities replaced.
    #[test]
    fn texts_and_values_read_the_same_at_every_length() {
        let limits = Limits::default();
        let one = package(5);
        for len in 0..48 {
            for at in 0..=len {
                for (mark, plain) in [("&amp;", true), ("\r", false), ("\t", false), ("<", false)] {
                    let mut text = "x".repeat(len);
                    text.insert_str(at, mark);
                    let escaped = text.replace('<', "&lt;");
                    let in_text =
                        one.replacen("<name>p5</name>", &format!("<name>{escaped}</name>"), 1);
                    let in_value = one.replacen("name=\"p5\"", &format!("name=\"{text}\""), 1);
                    let want = text.replace("&amp;", "&");
                    for (doc, kind) in [(in_text, "text"), (in_value, "value")] {
                        let got = checked(doc.as_bytes(), Place::Middle, &limits);
                        // A `<` in a text is written `&lt;`: plain there.
                        let plain = plain || (kind == "text" && mark == "<");
                        if plain && !(kind == "text" && mark == "\t") {
                            let got = got.unwrap_or_else(|| panic!("{kind} {text:?} read here"));
                            let name = match kind {
                                "text" => &got[0].name,
                                _ => &got[0].provides[0].name,
                            };
                            assert_eq!(name, &want, "{kind} {text:?}");
                        }
                    }
                }
            }
        }
    }

    /// The word-wise search finds the first `<` or `&` wherever it is,
    /// whatever bytes (any value, more of them after) surround it.
    #[test]
    fn text_stops_are_found_at_every_place() {
        let fillers: [u8; 6] = [b'a', 0x00, 0xff, b'<' ^ 0x01, b'&' + 1, 0x80];
        for len in 0..80 {
            for stop in 0..=len {
                for &fill in &fillers {
                    for (first, later) in [(b'<', b'&'), (b'&', b'<'), (b'<', b'<')] {
                        let mut b = vec![fill; len];
                        if stop < len {
                            b[stop] = first;
                            for (k, c) in b.iter_mut().enumerate().skip(stop + 1) {
                                if k % 3 == 0 {
                                    *c = later;
                                }
                            }
                        }
                        for from in [0, 1.min(stop)] {
                            let want = b[from..]
                                .iter()
                                .position(|&c| c == b'<' || c == b'&')
                                .map(|n| from + n);
                            assert_eq!(find_text_stop(&b, from), want, "{b:?} from {from}");
                        }
                    }
                }
            }
        }
    }

    /// What the events make of `text`'s first element (after whitespace):
    /// as an entry (`file` false) or a file, and where the reader ends.
    fn by_events(text: &str, limits: &Limits, file: bool) -> Option<(String, usize)> {
        let mut y = Scan::new(text, limits);
        let ev = loop {
            match y.next().ok()? {
                Ev::Text => continue,
                ev => break ev,
            }
        };
        let read = match (ev, file) {
            (Ev::Empty("entry"), false) => {
                format!("{:?}", xml::dep(&y, String::new, DepKind::Requires).ok()?)
            }
            (Ev::Start("file"), true) => {
                let kind = xml::file_kind(&y);
                format!("{:?}", (kind, y.text().ok()?))
            }
            _ => return None,
        };
        Some((read, y.pos))
    }

    /// Each case read by `quick` (a file when `file`): taken or not as the
    /// case says; when taken, read as the events read it, to the same
    /// place; when not, the reader at most past whitespace.
    fn check_quick(
        cases: &[(&str, bool)],
        file: bool,
        quick: impl Fn(&mut Scan) -> Option<String>,
    ) {
        let limits = Limits::default();
        for &(text, taken) in cases {
            let mut x = Scan::new(text, &limits);
            let read = quick(&mut x).map(|r| (r, x.pos));
            assert_eq!(read.is_some(), taken, "{text}");
            match read {
                Some(r) => assert_eq!(Some(r), by_events(text, &limits, file), "{text}"),
                None => assert_eq!(text[..x.pos].trim(), "", "{text}"),
            }
        }
    }

    /// The shortcuts take the entries and files createrepo_c writes, and
    /// read them as the events do; anything else is left to the events,
    /// the reader unmoved.
    #[test]
    fn entries_and_files_are_read_in_one_go_as_the_events_read_them() {
        let limits = Limits::default();
        let entries: &[(&str, bool)] = &[
            (
                "\n      <rpm:entry name=\"libc.so.6(GLIBC_2.34)(64bit)\"/>\n",
                true,
            ),
            (
                r#"<rpm:entry name="p" flags="EQ" epoch="0" ver="1.0" rel="1.amzn2023"/>"#,
                true,
            ),
            (
                r#"<rpm:entry name="p" flags="GE" epoch="2" ver="1.0"/>"#,
                true,
            ),
            (r#"<rpm:entry name="/bin/sh" pre="1"/>"#, true),
            (
                r#"<rpm:entry rel="1" ver="2" name="q" flags="LT" pre="0"/>"#,
                true,
            ),
            (r#"<rpm:entry name="q" flags=""  />"#, true),
            (
                r#"<rpm:entry name="(a if b)" flags="EQ" ver="1"/><rpm:entry name="z"/>"#,
                true,
            ),
            // Left to the events: other quotes, entities, other names and
            // attributes, a non-empty element, what the events refuse.
            (r#"<rpm:entry name='p'/>"#, false),
            (r#"<rpm:entry name="p &amp; q"/>"#, false),
            (r#"<rpm:entry name="it's"/>"#, false),
            (r#"<rpm:entry name="p" other="1"/>"#, false),
            (r#"<rpm:entry name="p"></rpm:entry>"#, false),
            (r#"<rpm:entryx name="p"/>"#, false),
            (r#"<x:entry name="p"/>"#, false),
            (r#"<rpm:entry name="p" name="q"/>"#, false),
            (r#"<rpm:entry name="p"flags="EQ"/>"#, false),
            (r#"<rpm:entry name="p" flags="XX"/>"#, false),
            (r#"<rpm:entry name=""/>"#, false),
            (r#"<rpm:entry/>"#, false),
            (r#"<rpm:entry name="p" / >"#, false),
            (r#"<rpm:entry name="p"/"#, false),
            ("<rpm:entry name=\"p\tq\"/>", false),
            (r#"text<rpm:entry name="p"/>"#, false),
        ];
        check_quick(entries, false, |x| {
            x.quick_entry().map(|d| format!("{d:?}"))
        });
        let files: &[(&str, bool)] = &[
            ("\n    <file>/usr/bin/p</file>\n", true),
            (r#"<file type="dir">/etc/p.d</file>"#, true),
            (r#"<file type="ghost">/var/log/p.log</file>"#, true),
            (r#"<file></file>"#, true),
            (
                r#"<file type="dir">/usr/share/ünï</file><file>/b</file>"#,
                true,
            ),
            (r#"<file>/a&amp;b</file>"#, false),
            (r#"<file type='dir'>/a</file>"#, false),
            (r#"<file type="other">/a</file>"#, false),
            (r#"<file/>"#, false),
            (r#"<files>/a</files>"#, false),
            (r#"<file>/a</fil>"#, false),
            (r#"<file>/a<b/></file>"#, false),
            ("<file>/a\rb</file>", false),
            (r#"<file>/a"#, false),
        ];
        check_quick(files, true, |x| x.quick_file().map(|f| format!("{f:?}")));
        let skipped: &[(&str, bool)] = &[
            ("\n  <summary>The p package</summary>\n", true),
            (
                "<description>Says &lt;hi&gt; &amp; more.\nTwo lines.</description>",
                true,
            ),
            ("<url></url><name>p</name>", true),
            ("<rpm:license>MIT</rpm:license>", true),
            ("<name>p</name>", false),
            ("<x:name>p</x:name>", false),
            ("<rpm:provides></rpm:provides>", false),
            (r#"<summary a="1">s</summary>"#, false),
            ("<summary/>", false),
            ("<summary>a<b/>c</summary>", false),
            ("<summary>a &bad; b</summary>", false),
            ("<summary>s</summary2>", false),
            ("<summary>s</summ>", false),
            ("<summary>s", false),
            ("text<summary>s</summary>", false),
        ];
        for &(text, taken) in skipped {
            let mut x = Scan::new(text, &limits);
            let quick = x.quick_skip();
            assert_eq!(quick, taken, "{text}");
            match quick {
                true => {
                    // The events: an element no reader knows, skipped.
                    let mut y = Scan::new(text, &limits);
                    let ev = loop {
                        match y.next().expect(text) {
                            Ev::Text => continue,
                            ev => break ev,
                        }
                    };
                    assert_eq!(ev, Ev::Start(""), "{text}");
                    y.skip().expect(text);
                    assert_eq!(x.pos, y.pos, "{text}");
                }
                false => assert_eq!(text[..x.pos].trim(), "", "{text}"),
            }
        }
        // Limits: what the events give up on is left to them.
        let tight = Limits {
            max_string: 3,
            ..Limits::default()
        };
        let mut x = Scan::new(r#"<rpm:entry name="long"/>"#, &tight);
        assert!(x.quick_entry().is_none());
        let mut x = Scan::new("<file>/long</file>", &tight);
        assert!(x.quick_file().is_none());
        let shallow = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        let mut x = Scan::new("<file>/a</file>", &shallow);
        assert!(x.quick_file().is_none());
        let mut x = Scan::new("<summary>s</summary>", &shallow);
        assert!(!x.quick_skip());
        let short = Limits {
            max_token: 8,
            ..Limits::default()
        };
        let mut x = Scan::new("<summary>a long summary</summary>", &short);
        assert!(!x.quick_skip());
    }

    /// Every limit quick-xml's reader enforces is handed back before it is
    /// passed, and a piece just under them is read here.
    #[test]
    fn limits_are_handed_back() {
        let data = packages(0..4);
        let under = checked(data.as_bytes(), Place::Middle, &Limits::default()).unwrap();
        let longest_text = data.split(['<', '>']).map(str::len).max().unwrap();
        let tight = [
            Limits {
                max_string: 20,
                ..Limits::default()
            },
            Limits {
                max_token: longest_text - 1,
                ..Limits::default()
            },
            Limits {
                max_depth: 3,
                ..Limits::default()
            },
            Limits {
                max_entries: 12,
                ..Limits::default()
            },
            Limits {
                max_packages: 3,
                ..Limits::default()
            },
            Limits {
                max_decompressed: data.len() as u64,
                ..Limits::default()
            },
        ];
        for (k, limits) in tight.iter().enumerate() {
            assert_eq!(
                xml::primary_piece(data.as_bytes(), Place::Middle, "primary", limits),
                None,
                "limit {k} is not reached"
            );
            assert_eq!(
                primary_piece(data.as_bytes(), Place::Middle, "primary", limits),
                None,
                "limit {k}"
            );
        }
        let just = [
            Limits {
                max_token: longest_text,
                ..Limits::default()
            },
            Limits {
                max_depth: 4,
                ..Limits::default()
            },
            Limits {
                max_entries: 13,
                ..Limits::default()
            },
            Limits {
                max_packages: 4,
                ..Limits::default()
            },
        ];
        for (k, limits) in just.iter().enumerate() {
            assert_eq!(
                checked(data.as_bytes(), Place::Middle, limits).as_ref(),
                Some(&under),
                "limit {k}"
            );
        }
    }

    /// One or two changes to `doc` at random places: a byte removed, a
    /// byte replaced by the first of one of `alphabet`, or one of
    /// `alphabet` inserted.
    fn change(doc: &mut Vec<u8>, alphabet: &[&[u8]], next: &mut impl FnMut(usize) -> usize) {
        for _ in 0..1 + next(2) {
            let at = next(doc.len());
            match next(3) {
                0 => {
                    doc.remove(at);
                }
                1 => doc[at] = alphabet[next(alphabet.len())][0],
                _ => {
                    let s = alphabet[next(alphabet.len())];
                    doc.splice(at..at, s.iter().copied());
                }
            }
        }
    }

    /// Pieces changed at random, byte by byte, with the characters XML
    /// gives meaning to: read the same here as by quick-xml, or handed
    /// back.
    #[test]
    fn changed_pieces_are_handed_back_or_read_the_same() {
        let limits = Limits::default();
        let base = packages(0..6);
        let alphabet: &[&[u8]] = &[
            b"<",
            b">",
            b"/",
            b"&",
            b";",
            b"\"",
            b"'",
            b"=",
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b"!",
            b"?",
            b"[",
            b"]",
            b"-",
            b":",
            b"x",
            b"&amp;",
            b"&lt;",
            b"&#65;",
            b"</",
            b"/>",
            b"<a>",
            b"</a>",
            b"<!--",
            b"-->",
            b"\xff",
            b"\xc3\xa9",
        ];
        let mut next = crate::testutil::seeded(0x5ca9_u64);
        let (mut read_here, mut differ) = (0, 0);
        let plain = checked(base.as_bytes(), Place::Middle, &limits).unwrap();
        for _ in 0..3000 {
            let mut doc = base.clone().into_bytes();
            change(&mut doc, alphabet, &mut next);
            let place = if next(2) == 0 {
                Place::Middle
            } else {
                Place::Last
            };
            if place == Place::Last {
                doc.extend_from_slice(b"</metadata>\n");
            }
            if let Some(got) = checked(&doc, place, &limits) {
                read_here += 1;
                differ += usize::from(got != plain);
            }
        }
        // Changes inside text or values keep a piece plain, and change
        // what it says: both ways happen often.
        assert!(read_here > 300, "only {read_here} changed pieces read here");
        assert!(
            differ > 100,
            "only {differ} changed pieces read here said something else"
        );
    }

    pub(super) fn filelists(n: usize) -> String {
        let mut doc = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"9\">\n",
        );
        for i in 0..n {
            doc.push_str(&format!(
                "<package pkgid=\"{i:064x}\" name=\"f{i}\" arch=\"x86_64\">\n  <version epoch=\"{e}\" ver=\"1.{i}\" rel=\"1\"/>\n  \
                 <file>/usr/bin/f{i}</file>\n  <file type=\"dir\">/usr/share/f{i}</file>\n  <file>/usr/share/f{i}/a &amp; b</file>\n  \
                 <file>/usr/lib/libf{k}.so.1</file>\n</package>\n",
                e = i % 2,
                k = i / 3,
            ));
        }
        doc.push_str("</filelists>\n");
        doc
    }

    type Found = (u64, Vec<(String, String)>);

    pub(super) fn wanted(path: &str) -> bool {
        path.starts_with("/usr/lib/") || path.ends_with("a & b") || path == "/usr/bin/f7"
    }

    /// quick-xml's answer.
    fn slow_filelists(doc: &[u8], limits: &Limits) -> std::result::Result<Found, String> {
        let mut out = Vec::new();
        xml::filelists_matching(doc, "filelists", limits, wanted, |id, p| {
            out.push((id.to_string(), p.to_string()));
            Ok(())
        })
        .map(|n| (n, out))
        .map_err(|e| e.to_string())
    }

    /// The promise for filelists: `None`, or quick-xml's answer.
    fn checked_filelists(doc: &[u8], limits: &Limits, size: usize) -> Option<Found> {
        let fast = filelists_in_pieces(doc, "filelists", limits, &wanted, size);
        if let Some(fast) = &fast {
            assert_eq!(
                slow_filelists(doc, limits).as_ref(),
                Ok(fast),
                "pieces of {size} of {:?}",
                String::from_utf8_lossy(doc)
            );
        }
        fast
    }

    #[test]
    fn plain_filelists_are_read_here_as_quick_xml_reads_them() {
        let limits = Limits::default();
        let doc = filelists(40);
        let want = slow_filelists(doc.as_bytes(), &limits).unwrap();
        assert_eq!(want.0, 40);
        // Every package's `a & b`, libf0 to libf13 three times each (one
        // short at the end), and /usr/bin/f7.
        assert_eq!(want.1.len(), 40 + 40 + 1);
        for size in [1, 300, 5000, 1 << 20] {
            assert_eq!(
                checked_filelists(doc.as_bytes(), &limits, size).as_ref(),
                Some(&want),
                "pieces of {size}"
            );
        }
        // Too many packages, a document that is too long: handed back.
        let few = Limits {
            max_packages: 39,
            ..Limits::default()
        };
        assert!(slow_filelists(doc.as_bytes(), &few).is_err());
        assert_eq!(checked_filelists(doc.as_bytes(), &few, 300), None);
        let short = Limits {
            max_decompressed: doc.len() as u64 - 1,
            ..Limits::default()
        };
        assert!(slow_filelists(doc.as_bytes(), &short).is_err());
        assert_eq!(checked_filelists(doc.as_bytes(), &short, 300), None);
        // No package at all, a prolog quick-xml refuses: handed back.
        let empty = "<?xml version=\"1.0\"?>\n<filelists packages=\"0\">\n</filelists>\n";
        assert_eq!(checked_filelists(empty.as_bytes(), &limits, 300), None);
        let bad_root = doc.replacen("<filelists ", "<other ", 1);
        assert!(slow_filelists(bad_root.as_bytes(), &limits).is_err());
        assert_eq!(checked_filelists(bad_root.as_bytes(), &limits, 300), None);
    }

    /// Filelists changed at random: quick-xml's answer, or handed back;
    /// where quick-xml refuses the document, always handed back.
    #[test]
    fn changed_filelists_are_handed_back_or_read_the_same() {
        let limits = Limits::default();
        let base = filelists(12);
        let alphabet: &[&[u8]] = &[
            b"<",
            b">",
            b"/",
            b"&",
            b";",
            b"\"",
            b"=",
            b" ",
            b"\r",
            b"!",
            b"-",
            b":",
            b"x",
            b"&amp;",
            b"&#65;",
            b"</",
            b"/>",
            b"<a>",
            b"</a>",
            b"<!--",
            b"-->",
            b"\xff",
            b"<package>",
            b"</package>",
            b"</filelists>",
        ];
        let mut next = crate::testutil::seeded(0xf11e_u64);
        let (mut read_here, mut refused) = (0, 0);
        for _ in 0..1500 {
            let mut doc = base.clone().into_bytes();
            change(&mut doc, alphabet, &mut next);
            let size = [1, 200, 1 << 20][next(3)];
            let got = checked_filelists(&doc, &limits, size);
            read_here += usize::from(got.is_some());
            if slow_filelists(&doc, &limits).is_err() {
                refused += 1;
                assert_eq!(got, None);
            }
        }
        assert!(
            read_here > 300,
            "only {read_here} changed documents read here"
        );
        assert!(refused > 300, "only {refused} changed documents refused");
    }
}
