//! One package of primary in the layout createrepo_c writes, read in one
//! pass ([`Scan::whole_package`]).
//!
//! Why: going element by element through [`Scan`]'s events costs a
//! tokenizer step, an attribute table and a match on the element's name
//! for each of the twenty-odd elements of a package, and that was most
//! of the time `ingot lock` spent reading primary. createrepo_c writes
//! every package the same way: the same elements in the same order, the
//! same attributes in the same order, double quotes, no comments. Here
//! each element is matched where that layout puts it, by its literal
//! tag, and its fields are taken straight from the bytes.
//!
//! The promise is [`Scan`]'s: the package read here is the package
//! [`xml::package`] reads from the events for the same bytes. Anything
//! else than that layout (another order or generator, an attribute more
//! or less, single quotes, an entity in a kept text, a carriage return,
//! text between elements, an error, limits too small to be out of reach
//! here) gives `None` with the reader unmoved, and the events read the
//! package instead; so a package read here is one the events would read
//! without error, and the same.

use super::{CLASS, IN_VALUE, NAME, SPACE, Scan, run_end, same};
use crate::repo::package::{
    Checksum, ChecksumKind, Dep, DepKind, Package, SENSE_PREREQ, dep_evr, sense_flags,
};
use crate::repo::xml::{self, Ev, Events as _};

/// Elements between the checksum and `<time>`, not kept.
const HEAD_SKIPPED: [&[u8]; 4] = [b"summary", b"description", b"packager", b"url"];
/// Elements at the start of `<format>`, not kept.
const FORMAT_SKIPPED: [&[u8]; 5] = [
    b"rpm:license",
    b"rpm:vendor",
    b"rpm:group",
    b"rpm:buildhost",
    b"rpm:sourcerpm",
];
/// The dependency lists as written: `<rpm:NAME>` … `</rpm:NAME>`.
const LISTS: [(&[u8], DepKind); 8] = [
    (b"provides", DepKind::Provides),
    (b"requires", DepKind::Requires),
    (b"conflicts", DepKind::Conflicts),
    (b"obsoletes", DepKind::Obsoletes),
    (b"suggests", DepKind::Suggests),
    (b"enhances", DepKind::Enhances),
    (b"recommends", DepKind::Recommends),
    (b"supplements", DepKind::Supplements),
];
/// An entry's attributes, in the order createrepo_c writes them.
const ENTRY_KEYS: [&[u8]; 6] = [
    b"name=\"",
    b"flags=\"",
    b"epoch=\"",
    b"ver=\"",
    b"rel=\"",
    b"pre=\"",
];
/// The longest tag written here without its values: below this
/// `max_token`, the events' checks of tag lengths are left to them.
const MIN_TOKEN: usize = 64;
/// The deepest element read here: a list's or a text of `<format>`
/// (metadata, package, format, then it).
const DEPTH: usize = 4;

/// A number as [`xml`] reads one (empty is 0); `None` where it gives an
/// error.
fn number(v: &str) -> Option<u64> {
    match v {
        "" => Some(0),
        v => v.trim().parse().ok(),
    }
}

impl<'a> Scan<'a> {
    /// The start tag of a package in one of createrepo_c's two forms
    /// (primary's `<package type="rpm">`, filelists' `<package pkgid="…"
    /// name="…" arch="…">`) at the reader, read as [`Scan::next`] reads
    /// it; `false`, the reader unmoved, for anything else.
    pub(super) fn package_start(&mut self) -> bool {
        const FORMS: [&[&[u8]]; 2] = [&[b"type"], &[b"pkgid", b"name", b"arch"]];
        let lt = self.pos;
        if !self.b[lt..].starts_with(b"<package ") || self.depth + 1 > self.limits.max_depth {
            return false;
        }
        for keys in FORMS {
            if let Some(end) = self.start_with(lt, keys) {
                self.open.push((lt + 1, b"package".len(), "package"));
                self.depth += 1;
                self.pos = end;
                return true;
            }
        }
        false
    }

    /// `<package` at `lt` with `keys` and plain values, then `>`: the
    /// attributes kept as a start tag keeps them, and where it ends.
    fn start_with(&mut self, lt: usize, keys: &[&[u8]]) -> Option<usize> {
        let mut i = lt + b"<package".len();
        let mut at = [(0, 0); 3];
        for (k, key) in keys.iter().enumerate() {
            i = self.past(self.past(self.past(i, b" ")?, key)?, b"=\"")?;
            let (value, end) = self.value(i)?;
            at[k] = (i, i + value.len());
            i = end;
        }
        let end = self.past(i, b">")?;
        self.within_token(lt, end)?;
        self.attrs.clear();
        self.keys.clear();
        self.values.clear();
        for (key, &(start, end)) in keys.iter().zip(&at) {
            let known = xml::known_attr(std::str::from_utf8(key).ok()?);
            let value = super::Value {
                start,
                end,
                replaced: false,
            };
            self.attrs.push((known, value));
        }
        Some(end)
    }

    /// The package whose start tag was just read, read to its end tag
    /// when it is in createrepo_c's layout; otherwise `None`, the reader
    /// where it was.
    pub(super) fn whole_package(&mut self) -> Option<Package> {
        self.in_one_go(DEPTH, Self::package_fields)
    }

    /// The package of filelists whose start tag was just read, read to
    /// its end tag when it is in createrepo_c's layout (its version, then
    /// its files): where the paths `wanted` accepts are, added to `found`
    /// in order. Otherwise `None`, `found` as it was and the reader where
    /// it was.
    pub(super) fn whole_file_list(
        &mut self,
        wanted: &impl Fn(&str) -> bool,
        found: &mut Vec<std::ops::Range<usize>>,
    ) -> Option<()> {
        let before = found.len();
        // The files: filelists, package, file.
        let read = self.in_one_go(3, |x| x.file_list_fields(wanted, found));
        if read.is_none() {
            found.truncate(before);
        }
        read
    }

    /// `read` from just after a package's start tag through its end tag,
    /// when the limits leave room for `depth` levels and the longest tag
    /// read here; on `None`, the reader as it was.
    fn in_one_go<T>(
        &mut self,
        depth: usize,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let limits = self.limits;
        if limits.max_token < MIN_TOKEN || limits.max_depth < depth || self.depth != 2 {
            return None;
        }
        let (start, open) = (self.pos, self.open.len());
        let got = read(self);
        match got {
            // As the events end the package: its end tag closes it.
            Some(_) => {
                self.open.pop();
                self.depth -= 1;
            }
            // An entry read by the events may have opened an element.
            None => {
                (self.pos, self.depth) = (start, 2);
                self.open.truncate(open);
            }
        }
        got
    }

    fn file_list_fields(
        &mut self,
        wanted: &impl Fn(&str) -> bool,
        found: &mut Vec<std::ops::Range<usize>>,
    ) -> Option<()> {
        let ([epoch, _, _], i) =
            self.empty_tag(self.pos, b"version", [b"epoch", b"ver", b"rel"])?;
        number(epoch)?;
        self.pos = i;
        let mut files = 0usize;
        while let Some((_, path)) = self.quick_file() {
            if wanted(path) {
                let at = path.as_ptr() as usize - self.text.as_ptr() as usize;
                found.push(at..at + path.len());
            }
            files += 1;
            if files > self.limits.max_entries {
                return None;
            }
        }
        self.pos = self.past(self.space(self.pos)?, b"</package>")?;
        Some(())
    }

    /// The fields of the package, through its end tag; `self.pos` moves.
    fn package_fields(&mut self) -> Option<Package> {
        let mut p = Package::default();
        let mut i = self.pos;
        let name;
        (name, i) = self.kept_text(i, b"name")?;
        p.name = name.into();
        let arch;
        (arch, i) = self.kept_text(i, b"arch")?;
        p.arch = arch.into();
        let [epoch, ver, rel];
        ([epoch, ver, rel], i) = self.empty_tag(i, b"version", [b"epoch", b"ver", b"rel"])?;
        p.epoch = number(epoch)?;
        p.version = ver.into();
        p.release = rel.into();
        p.checksum = {
            let lt = self.space(i)?;
            let ([kind, _], at) = self.tag_values(lt, b"checksum", [b"type", b"pkgid"])?;
            i = self.past(at, b">")?;
            self.within_token(lt, i)?;
            let (hex, end) = self.text_to(i, b"checksum")?;
            i = end;
            let kind = ChecksumKind::parse(kind, "").ok()?;
            Checksum::from_text(kind, hex.to_string(), "").ok()?
        };
        i = self.skipped(i, &HEAD_SKIPPED)?;
        let [_, build];
        ([_, build], i) = self.empty_tag(i, b"time", [b"file", b"build"])?;
        p.build_time = number(build)?;
        let [size, installed, _];
        ([size, installed, _], i) =
            self.empty_tag(i, b"size", [b"package", b"installed", b"archive"])?;
        p.size = number(size)?;
        p.installed_size = number(installed)?;
        i = self.location(i, &mut p)?;
        i = self.format(self.open_tag(i, b"format")?, &mut p)?;
        i = self.past(self.space(i)?, b"</package>")?;
        let ok = !p.name.is_empty()
            && !p.arch.is_empty()
            && !p.version.is_empty()
            && !p.location.is_empty();
        self.pos = i;
        ok.then_some(p)
    }

    /// `<location href="…"/>`, with `xml:base="…"` before `href` when
    /// the repository names another base.
    fn location(&self, i: usize, p: &mut Package) -> Option<usize> {
        if let Some(([base, href], end)) = self.empty_tag(i, b"location", [b"xml:base", b"href"]) {
            p.location_base = Some(base.to_string());
            p.location = href.to_string();
            return Some(end);
        }
        let ([href], end) = self.empty_tag(i, b"location", [b"href"])?;
        p.location = href.to_string();
        Some(end)
    }

    /// The inside of `<format>` from `i` through `</format>`: the texts
    /// not kept, the header range, the dependency lists, the files.
    fn format(&mut self, i: usize, p: &mut Package) -> Option<usize> {
        let mut i = self.skipped(i, &FORMAT_SKIPPED)?;
        if let Some((_, end)) = self.empty_tag(i, b"rpm:header-range", [b"start", b"end"]) {
            i = end;
        }
        let mut entries = 0usize;
        loop {
            let lt = self.space(i)?;
            let b = self.b;
            if !b[lt..].starts_with(b"<rpm:") {
                i = lt;
                break;
            }
            let (name, kind) = *LISTS.iter().find(|(n, _)| {
                b[lt + 5..].starts_with(n) && b.get(lt + 5 + n.len()) == Some(&b'>')
            })?;
            i = lt + 6 + name.len();
            self.list.clear();
            loop {
                let lt = self.space(i)?;
                if b[lt..].starts_with(b"</rpm:") {
                    let end = lt + 6 + name.len();
                    if !b[lt + 6..].starts_with(name) || b.get(end) != Some(&b'>') {
                        return None;
                    }
                    i = end + 1;
                    break;
                }
                let (dep, end) = self.entry(lt)?;
                self.list.push(dep);
                entries += 1;
                i = end;
            }
            // Pushed one by one, a package's lists would hold room for
            // twice their entries, or more.
            let deps = p.deps_mut(kind);
            deps.reserve_exact(self.list.len());
            deps.append(&mut self.list);
            if entries > self.limits.max_entries {
                return None;
            }
        }
        // The files, in the forms `quick_file` reads.
        self.pos = i;
        while let Some((kind, path)) = self.quick_file() {
            p.files.push(crate::repo::package::PackageFile {
                path: path.to_string(),
                kind,
            });
            entries += 1;
            if entries > self.limits.max_entries {
                return None;
            }
        }
        self.past(self.space(self.pos)?, b"</format>")
    }

    /// One `<rpm:entry …/>` at `lt`: its attributes in createrepo_c's
    /// order, or else any empty entry the events read without error.
    fn entry(&mut self, lt: usize) -> Option<(Dep, usize)> {
        if let Some(read) = self.plain_entry(lt) {
            return Some(read);
        }
        // A start tag only: an end tag would close what is open.
        if self.b.get(lt) != Some(&b'<') || self.b.get(lt + 1) == Some(&b'/') {
            return None;
        }
        self.pos = lt;
        match self.tag().ok()? {
            Ev::Empty("entry") => {
                let dep = xml::dep(self, String::new, DepKind::Requires).ok()?;
                Some((dep, self.pos))
            }
            _ => None,
        }
    }

    /// An entry whose attributes are among [`ENTRY_KEYS`], in that order,
    /// with plain values.
    fn plain_entry(&self, lt: usize) -> Option<(Dep, usize)> {
        const OPEN: &[u8] = b"<rpm:entry";
        let b = self.b;
        if !b[lt..].starts_with(OPEN) {
            return None;
        }
        let mut at: [Option<&'a str>; 6] = [None; 6];
        let (mut i, mut next) = (lt + OPEN.len(), 0);
        let end = loop {
            let j = run_end(b, i, SPACE);
            if b[j..].starts_with(b"/>") {
                break j + 2;
            }
            if j == i {
                return None;
            }
            let k = (next..ENTRY_KEYS.len()).find(|&k| b[j..].starts_with(ENTRY_KEYS[k]))?;
            let (value, end) = self.value(j + ENTRY_KEYS[k].len())?;
            at[k] = Some(value);
            (i, next) = (end, k + 1);
        };
        self.within_token(lt, end)?;
        let name = at[0].filter(|n| !n.is_empty())?;
        let mut flags = match at[1] {
            None | Some("") => 0,
            Some(f) => sense_flags(f)?,
        };
        if matches!(at[5], Some("1" | "true")) {
            flags |= SENSE_PREREQ;
        }
        let dep = Dep {
            name: name.into(),
            flags,
            evr: dep_evr(at[2], at[3], at[4]),
        };
        Some((dep, end))
    }

    /// A plain attribute value starting at `i` (after its opening double
    /// quote): the value and where its closing quote ends.
    #[inline]
    fn value(&self, i: usize) -> Option<(&'a str, usize)> {
        let b = self.b;
        let mut end = i;
        loop {
            end += b[end..]
                .iter()
                .position(|&c| CLASS[c as usize] & IN_VALUE != 0)?;
            match b[end] {
                b'"' => break,
                b'\'' => end += 1,
                _ => return None,
            }
        }
        (end - i <= self.limits.max_string).then(|| (&self.text[i..end], end + 1))
    }

    /// Whitespace from `i` (within `max_token`): where it ends.
    #[inline]
    fn space(&self, i: usize) -> Option<usize> {
        let end = run_end(self.b, i, SPACE);
        self.check_run(i, end).ok()?;
        Some(end)
    }

    /// `lit` at `i`: where it ends.
    #[inline]
    fn past(&self, i: usize, lit: &[u8]) -> Option<usize> {
        self.b[i..].starts_with(lit).then_some(i + lit.len())
    }

    /// A tag from `<` at `lt` to `>` before `end`, within `max_token`.
    #[inline]
    fn within_token(&self, lt: usize, end: usize) -> Option<()> {
        self.check_run(lt + 1, end - 1).ok()
    }

    /// At `lt`: `<name` and ` key="value"` for each of `keys`, in order;
    /// the values and where the last one ends.
    fn tag_values<const K: usize>(
        &self,
        lt: usize,
        name: &[u8],
        keys: [&[u8]; K],
    ) -> Option<([&'a str; K], usize)> {
        let b = self.b;
        let mut i = self.past(lt, b"<")?;
        i = self.past(i, name)?;
        let mut values = [""; K];
        for (k, key) in keys.iter().enumerate() {
            i = self.past(i, b" ")?;
            i = self.past(i, key)?;
            i = self.past(i, b"=\"")?;
            (values[k], i) = self.value(i)?;
        }
        // The tag's end must follow; its length is checked by the caller
        // through `within_token` once the end is known.
        match b.get(i) {
            Some(b'/' | b'>') => Some((values, i)),
            _ => None,
        }
    }

    /// An empty element with `keys`: its values and where it ends.
    fn empty_tag<const K: usize>(
        &self,
        i: usize,
        name: &[u8],
        keys: [&[u8]; K],
    ) -> Option<([&'a str; K], usize)> {
        let lt = self.space(i)?;
        let (values, at) = self.tag_values(lt, name, keys)?;
        let end = self.past(at, b"/>")?;
        self.within_token(lt, end)?;
        Some((values, end))
    }

    /// `<name>` after whitespace from `i`: where it ends.
    fn open_tag(&self, i: usize, name: &[u8]) -> Option<usize> {
        let i = self.past(self.space(i)?, b"<")?;
        self.past(self.past(i, name)?, b">")
    }

    /// The text from `i` up to `</name>`, kept: no entities, no carriage
    /// return, within `max_string`; and where the end tag ends.
    fn text_to(&self, i: usize, name: &[u8]) -> Option<(&'a str, usize)> {
        let (end, entities) = self.text_run(i).ok()?;
        let text = &self.text[i..end];
        if entities || text.len() > self.limits.max_string || text.as_bytes().contains(&b'\r') {
            return None;
        }
        let close = self.past(self.past(end, b"</")?, name)?;
        Some((text, self.past(close, b">")?))
    }

    /// `<name>text</name>` after whitespace from `i`, its text kept.
    fn kept_text(&self, i: usize, name: &[u8]) -> Option<(&'a str, usize)> {
        let i = self.open_tag(i, name)?;
        self.text_to(i, name)
    }

    /// Any of the elements `names` (each `<name>text</name>` or
    /// `<name/>`), in any order, after whitespace from `i`, their texts
    /// checked as the events check a skipped text: where the last ends.
    fn skipped(&self, mut i: usize, names: &[&[u8]]) -> Option<usize> {
        let b = self.b;
        loop {
            let lt = self.space(i)?;
            if b.get(lt) != Some(&b'<') {
                return Some(i);
            }
            let after = run_end(b, lt + 1, NAME);
            let name = &b[lt + 1..after];
            if !names.iter().any(|n| same(n, name)) {
                return Some(lt);
            }
            match b.get(after) {
                Some(b'/') => {
                    i = self.past(after, b"/>")?;
                    continue;
                }
                Some(b'>') => {}
                _ => return None,
            }
            let (end, _) = self.text_run(after + 1).ok()?;
            let close = end + 2 + name.len();
            if !self.b[end..].starts_with(b"</")
                || b.get(close) != Some(&b'>')
                || !same(&b[end + 2..close], name)
            {
                return None;
            }
            i = close + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{filelists, package, wanted};
    use super::*;
    use crate::repo::decode::Limits;

    /// The default limits with one changed.
    fn changed(change: impl FnOnce(&mut Limits)) -> Limits {
        let mut limits = Limits::default();
        change(&mut limits);
        limits
    }

    /// A Scan over `doc` (packages after the root's start) just past the
    /// start tag of the package that starts at `at`.
    fn at_package<'a>(doc: &'a str, at: usize, limits: &'a Limits) -> Scan<'a> {
        let mut x = Scan::new(doc, limits);
        x.pos = at;
        assert!(
            matches!(x.next(), Ok(Ev::Start("package"))),
            "{}",
            &doc[at..]
        );
        x
    }

    /// Where each `<package` of `doc` starts.
    fn starts(doc: &str) -> Vec<usize> {
        doc.match_indices("<package ").map(|(i, _)| i).collect()
    }

    /// Each package of `doc` read in one go and by the events: how many
    /// were taken here, each read the same and to the same place as the
    /// events read it; any not taken leaves the reader as it was.
    fn compare(doc: &str, limits: &Limits) -> usize {
        let mut taken = 0;
        for at in starts(doc) {
            let mut x = at_package(doc, at, limits);
            let (pos, depth, open) = (x.pos, x.depth, x.open.len());
            let whole = x.whole_package();
            let mut y = at_package(doc, at, limits);
            let events = xml::package(&mut y, 0);
            match whole {
                Some(p) => {
                    taken += 1;
                    assert_eq!(Some(&p), events.as_ref().ok(), "{}", &doc[at..]);
                    assert_eq!(
                        (x.pos, x.depth, x.open.len()),
                        (y.pos, y.depth, y.open.len())
                    );
                }
                None => assert_eq!((x.pos, x.depth, x.open.len()), (pos, depth, open)),
            }
        }
        taken
    }

    fn gunzip(path: &str) -> String {
        let data = std::fs::read(path).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&data[..]), &mut text)
            .unwrap();
        text
    }

    /// The committed example repository's metadata, made by createrepo_c.
    fn example(kind: &str) -> String {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/example-repo/repo/repodata"
        );
        let file = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(&format!("-{kind}.xml.gz")))
            .unwrap();
        gunzip(file.to_str().unwrap())
    }

    /// createrepo_c's own output, and the test packages in its layout
    /// (with entries the events read in the middle: an entity, a space
    /// before `/>`), are read in one go, each as the events read it.
    #[test]
    fn packages_in_createrepo_c_layout_are_read_in_one_go() {
        let limits = Limits::default();
        let real = example("primary");
        let n = starts(&real).len();
        assert!(n > 0);
        assert_eq!(compare(&real, &limits), n, "createrepo_c's packages");
        let made: String = (0..30).map(package).collect();
        assert_eq!(compare(&made, &limits), 30);
        let one = package(3);
        let x_start = one.find('>').unwrap() + 1;
        let mut x = at_package(&one, 0, &limits);
        let p = x.whole_package().unwrap();
        assert_eq!(x.pos, one.len() - 1);
        assert_eq!((p.requires.len(), p.files.len()), (4, 3));
        assert_eq!(p.requires[1].name, "p1 & co");
        assert!(x_start < x.pos);
    }

    /// Any other layout is left to the events, the reader unmoved; the
    /// forms read here both ways read the same.
    #[test]
    fn other_layouts_are_left_to_the_events() {
        let limits = Limits::default();
        let one = package(5);
        let changes: &[(&str, &str, bool)] = &[
            ("<arch>x86_64</arch>\n  <version", "<version", false),
            ("<name>p5</name>", "<name>p5</name><!-- c -->", false),
            ("<name>p5</name>", "<name>p&amp;5</name>", false),
            ("<name>p5</name>", "<name></name>", false),
            ("<name>p5</name>", "<name>p5\r</name>", false),
            ("epoch=\"2\" ver", "ver", false),
            ("epoch=\"2\"", "epoch=\"x\"", false),
            ("epoch=\"2\"", "epoch=\"\"", true),
            ("epoch=\"2\"", "epoch='2'", false),
            ("<packager>Amazon Linux</packager>", "", true),
            ("<packager>Amazon Linux</packager>", "<packager/>", true),
            (
                "<packager>Amazon Linux</packager>",
                "<packager>A&bogus;</packager>",
                false,
            ),
            ("<url>", "<rpm:url>", false),
            (" xml:base=\"https://mirror.invalid/al\"", "", true),
            ("<rpm:header-range start=\"4504\" end=\"9122\"/>", "", true),
            ("<rpm:provides>", "<rpm:provides >", false),
            ("<rpm:conflicts>", "<rpm:suggests>", false),
            (
                "<rpm:conflicts><rpm:entry name=\"old-p5\" flags=\"LT\" ver=\"1\"/></rpm:conflicts>",
                "<rpm:suggests><rpm:entry name=\"old-p5\" flags=\"LT\" ver=\"1\"/></rpm:suggests>",
                true,
            ),
            ("flags=\"LT\" ver=\"1\"", "ver=\"1\" flags=\"LT\"", true),
            ("flags=\"LT\"", "flags=\"ABOUT\"", false),
            (
                "<rpm:entry name=\"p5-legacy\"/>",
                "<rpm:entry name=\"p5-legacy\"></rpm:entry>",
                false,
            ),
            ("<rpm:entry name=\"p5-legacy\"/>", "<rpm:entry/>", false),
            ("<rpm:entry name=\"p5-legacy\"/>", "text", false),
            ("<rpm:entry name=\"p5-legacy\"/>", "</rpm:format>", false),
            (
                "<file>/usr/bin/p5</file>",
                "<file>/usr/bin/p&lt;5</file>",
                false,
            ),
            ("</format>", "<extra/></format>", false),
            ("</format>\n</package>", "</format>\nx</package>", false),
        ];
        for (k, (from, to, taken)) in changes.iter().enumerate() {
            assert!(one.contains(from), "change {k}");
            let doc = one.replacen(from, to, 1);
            assert_eq!(
                compare(&doc, &limits),
                usize::from(*taken),
                "change {k}: {doc}"
            );
        }
        // Limits near what a package holds: left to the events.
        let tight = [
            changed(|l| l.max_token = MIN_TOKEN - 1),
            changed(|l| l.max_depth = DEPTH - 1),
            changed(|l| l.max_entries = 12),
            changed(|l| l.max_string = 63),
        ];
        for (k, limits) in tight.iter().enumerate() {
            assert_eq!(compare(&one, limits), 0, "limit {k}");
        }
        // Up to each limit, it is still read here.
        let enough = [
            changed(|l| l.max_entries = 13),
            changed(|l| l.max_string = 64),
            changed(|l| l.max_depth = DEPTH),
        ];
        for (k, limits) in enough.iter().enumerate() {
            assert_eq!(compare(&one, limits), 1, "limit {k}");
        }
    }

    /// The two start tags createrepo_c writes are read in one go, as the
    /// events read them; any other is left to the events.
    #[test]
    fn package_start_tags_are_read_in_one_go_as_the_events_read_them() {
        let limits = Limits::default();
        let h = "ab".repeat(32);
        let cases: &[(String, bool)] = &[
            ("<package type=\"rpm\">".into(), true),
            (
                format!("<package pkgid=\"{h}\" name=\"p&amp;q\" arch=\"x86_64\">"),
                false,
            ),
            (
                format!("<package pkgid=\"{h}\" name=\"p\" arch=\"x86_64\">"),
                true,
            ),
            (
                format!("<package pkgid=\"{h}\" name=\"p\" arch=\"x86_64\" >"),
                false,
            ),
            (
                format!("<package name=\"p\" pkgid=\"{h}\" arch=\"x86_64\">"),
                false,
            ),
            ("<package type='rpm'>".into(), false),
            ("<package type=\"rpm\"/>".into(), false),
            ("<package  type=\"rpm\">".into(), false),
            ("<packages type=\"rpm\">".into(), false),
        ];
        for (tag, taken) in cases {
            let doc = format!("{tag}<name>p</name></package>");
            let mut x = Scan::new(&doc, &limits);
            assert_eq!(x.package_start(), *taken, "{tag}");
            let mut y = Scan::new(&doc, &limits);
            let ev = y.next();
            if !taken {
                assert_eq!((x.pos, x.depth, x.open.len()), (0, 1, 0), "{tag}");
                continue;
            }
            assert!(matches!(ev, Ok(Ev::Start("package"))));
            assert_eq!(
                (x.pos, x.depth, x.open.len()),
                (y.pos, y.depth, y.open.len())
            );
            for key in ["type", "pkgid", "name", "arch", "epoch"] {
                assert_eq!(x.attr(key), y.attr(key), "{tag} {key}");
            }
            // The end tag matches what was opened.
            assert!(matches!(x.next(), Ok(Ev::Start("name"))));
            x.skip().unwrap();
            assert!(matches!(x.next(), Ok(Ev::End("package"))));
        }
        let shallow = changed(|l| l.max_depth = 1);
        let mut x = Scan::new("<package type=\"rpm\">", &shallow);
        assert!(!x.package_start());
        let short = changed(|l| l.max_token = 10);
        let mut x = Scan::new("<package type=\"rpm\">", &short);
        assert!(!x.package_start());
    }

    /// Each package of a filelists document read in one go, and by the
    /// events: the paths found.
    fn compare_lists(doc: &str, limits: &Limits) -> usize {
        let mut taken = 0;
        for at in starts(doc) {
            let mut x = at_package(doc, at, limits);
            let pos = x.pos;
            let mut found = Vec::new();
            let whole = x.whole_file_list(&wanted, &mut found);
            let mut y = at_package(doc, at, limits);
            let (mut id, mut path, mut events) = (String::new(), String::new(), Vec::new());
            let read = xml::files_matching(&mut y, &mut id, &mut path, &wanted, &mut |_, p| {
                events.push(p.to_string());
                Ok(())
            });
            match whole {
                Some(()) => {
                    taken += 1;
                    assert!(read.is_ok());
                    let found: Vec<String> =
                        found.into_iter().map(|r| doc[r].to_string()).collect();
                    assert_eq!(found, events);
                    assert_eq!((x.pos, x.depth), (y.pos, y.depth));
                }
                None => assert_eq!((x.pos, found.len()), (pos, 0)),
            }
        }
        taken
    }

    #[test]
    fn file_lists_in_createrepo_c_layout_are_read_in_one_go() {
        let limits = Limits::default();
        let real = example("filelists");
        let n = starts(&real).len();
        assert!(n > 0);
        assert_eq!(compare_lists(&real, &limits), n);
        // The test lists, with a path the events read (an entity).
        let made = filelists(12);
        assert_eq!(compare_lists(&made, &limits), 0);
        let plain = made.replace("/a &amp; b", "/a and b");
        assert_eq!(compare_lists(&plain, &limits), 12);
        let few = changed(|l| l.max_entries = 3);
        assert_eq!(compare_lists(&plain, &few), 0);
        let odd = plain.replacen("<version epoch=\"1\"", "<version  epoch=\"1\"", 1);
        assert_eq!(compare_lists(&odd, &limits), 11);
    }
}
