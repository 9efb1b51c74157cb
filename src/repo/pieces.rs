//! `primary.xml` read by two threads at once: the decompressed stream is
//! cut into pieces of about [`PIECE`] bytes just before a `<package`,
//! the pieces are read in parallel ([`xml::primary_piece`]), and their
//! packages handed on in the order of the file.
//!
//! Why: reading primary is most of what resolving from an empty cache
//! costs, and one thread reads about a hundred megabytes a second; the
//! machine has more than one core.
//!
//! The answer is always the one [`xml::read_primary`] gives on the whole
//! stream, packages and errors alike. A cut made where that reader would
//! not stand between two children of the root (inside a comment, a CDATA
//! section, a tag, an element other than a package) leaves the piece
//! before it unclean: it ends inside that markup, and
//! [`xml::primary_piece`] says so. The pieces before it were read
//! exactly as the whole stream is (each started where the one before
//! ended cleanly), so their packages stand; from the first unclean piece
//! on (and on any error: a limit, a broken stream), the whole stream is
//! read again by [`xml::read_primary`], which hands on only the packages
//! after those already handed on, and gives the error, if any, exactly as
//! it would have alone.
//!
//! Memory: at most [`TICKETS`] pieces are between the cutter and the
//! caller (cut, being read, or read and waiting for an earlier one); a
//! stretch of [`MAX_PIECE`] bytes without a `<package` ends the parallel
//! reading (the rest goes to the one reader, whose own limits then
//! apply). A piece's buffer goes back to the cutter once read, so no more
//! than `TICKETS + 2` are ever made: a new buffer is made only when none
//! is free, and then at most `TICKETS` are out and the cutter holds one.
//! Each is zeroed once, when made: reused, it costs neither the zeroing
//! nor the page faults of a fresh buffer per piece.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use super::decode::{Limits, ReadAhead};
use super::error::Result;
use super::package::Package;
use super::scan;
use super::xml::{self, Place};

pub use super::xml::{MAX_PIECE, PIECE};
/// Pieces cut and not yet read; read pieces not yet handed on.
pub const AHEAD: usize = 4;
/// Pieces between the cutter and the caller, all told.
const TICKETS: usize = 6;
/// Threads reading pieces.
const READERS: usize = 2;

/// A piece to read: its number, where it is, and its bytes, the start
/// of a buffer (which goes back to the cutter once read).
struct Piece {
    seq: usize,
    place: Place,
    buf: Vec<u8>,
    len: usize,
}

/// Read the primary `open()` gives (decompressed) as
/// [`xml::read_primary`] does, with two readers, `piece` bytes a piece
/// (tests use small ones). The cutter, a thread of its own, reads (and so
/// decompresses) straight into the pieces. `open` is called again when
/// the whole stream must be read by one reader, which then has it
/// decompressed on another thread ([`ReadAhead`]).
pub fn read_primary(
    open: &dyn Fn() -> Result<Box<dyn std::io::Read + Send>>,
    what: &str,
    limits: &Limits,
    piece: usize,
    each: &mut dyn FnMut(Package) -> Result<()>,
) -> Result<u64> {
    read(open, what, limits, piece, each).map(|(n, _)| n)
}

/// [`read_primary`], and whether the one reader read the stream again.
fn read(
    open: &dyn Fn() -> Result<Box<dyn std::io::Read + Send>>,
    what: &str,
    limits: &Limits,
    piece: usize,
    each: &mut dyn FnMut(Package) -> Result<()>,
) -> Result<(u64, bool)> {
    let input = open()?;
    let handed = std::thread::scope(|s| {
        let (cut_tx, cut_rx) = sync_channel::<Piece>(AHEAD);
        let (read_tx, read_rx) = sync_channel::<Read>(AHEAD);
        // A piece is cut only with a ticket, given back once its packages
        // were handed on: pieces cut, being read, read and waiting for an
        // earlier one are never more than the tickets.
        let (ticket_tx, ticket_rx) = sync_channel::<()>(TICKETS);
        for _ in 0..TICKETS {
            ticket_tx.send(()).expect("the channel holds them all");
        }
        // Buffers read, back to the cutter: a piece's room is taken from
        // the system (and its pages touched for the first time) only
        // while none is free.
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(TICKETS);
        s.spawn(move || cut(input, piece, &ticket_rx, &cut_tx, &spare_rx));
        // The readers share the pieces; when the last of them stops, the
        // cutter finds no one to send to and stops too.
        let cut_rx = Arc::new(Mutex::new(cut_rx));
        for _ in 0..READERS {
            let (cut_rx, read_tx, spare_tx) = (cut_rx.clone(), read_tx.clone(), spare_tx.clone());
            s.spawn(move || read_pieces(&cut_rx, &read_tx, &spare_tx, what, limits));
        }
        drop((read_tx, cut_rx, spare_tx));
        hand_on(read_rx, &ticket_tx, limits, each)
    })?;
    match handed {
        Handed::All(n) => Ok((n, false)),
        Handed::Some(done) => {
            let mut n = 0u64;
            let all = xml::read_primary(ReadAhead::new(open()?), what, limits, |p| {
                n += 1;
                if n > done { each(p) } else { Ok(()) }
            })?;
            Ok((all, true))
        }
    }
}

/// A piece read: its number, whether it was the last, its packages (none
/// when it did not read cleanly).
type Read = (usize, bool, Option<Vec<Package>>);

/// How far the pieces went.
enum Handed {
    /// Every package, all pieces clean.
    All(u64),
    /// This many packages, then a piece that was not clean, or no more
    /// pieces before the end of the stream.
    Some(u64),
}

/// Hand the pieces' packages to `each` in the order of the file, until
/// the last piece or one that did not read cleanly.
fn hand_on(
    read: Receiver<Read>,
    tickets: &SyncSender<()>,
    limits: &Limits,
    each: &mut dyn FnMut(Package) -> Result<()>,
) -> Result<Handed> {
    let mut waiting: BTreeMap<usize, (bool, Option<Vec<Package>>)> = BTreeMap::new();
    let mut next = 0usize;
    let mut handed = 0u64;
    for (seq, last, pkgs) in read.iter() {
        waiting.insert(seq, (last, pkgs));
        while let Some((last, pkgs)) = waiting.remove(&next) {
            let Some(pkgs) = pkgs else {
                return Ok(Handed::Some(handed));
            };
            if handed + pkgs.len() as u64 > limits.max_packages {
                return Ok(Handed::Some(handed));
            }
            handed += pkgs.len() as u64;
            for p in pkgs {
                each(p)?;
            }
            if last {
                return Ok(Handed::All(handed));
            }
            let _ = tickets.send(());
            next += 1;
        }
    }
    // The cutter stopped before the end (a read error, a stretch without
    // `<package`, a document of one piece): the rest is the one reader's.
    Ok(Handed::Some(handed))
}

/// Cut the stream into pieces before a `<package`; the last piece is
/// marked so. Stops early (sending nothing more) on a read error or a
/// stretch of [`MAX_PIECE`] bytes with no cut, or when nobody reads.
fn cut(
    mut input: Box<dyn std::io::Read + Send>,
    piece: usize,
    tickets: &Receiver<()>,
    out: &SyncSender<Piece>,
    spare: &Receiver<Vec<u8>>,
) {
    // Read into the piece's buffer itself, a chunk at a time: no copy on
    // the way but the rest of the last package, which starts the next
    // piece. A buffer is zeroed once, when made, and reused after.
    const CHUNK: usize = 64 << 10;
    let room = piece + 2 * CHUNK;
    let take = || spare.try_recv().unwrap_or_else(|_| vec![0u8; room]);
    let mut buf = take();
    let (mut filled, mut seq) = (0usize, 0usize);
    loop {
        if buf.len() < filled + CHUNK {
            buf.resize(filled + CHUNK, 0);
        }
        let read = loop {
            match input.read(&mut buf[filled..filled + CHUNK]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            // A document of one piece is the one reader's.
            if seq > 0 && tickets.recv().is_ok() {
                let last = Piece {
                    seq,
                    place: Place::Last,
                    buf,
                    len: filled,
                };
                let _ = out.send(last);
            }
            return;
        }
        filled += n;
        if filled < piece {
            continue;
        }
        match xml::last_package_tag(&buf[..filled]) {
            Some(at) => {
                let mut next = take();
                let rest = filled - at;
                if next.len() < rest + CHUNK {
                    next.resize(rest + CHUNK, 0);
                }
                next[..rest].copy_from_slice(&buf[at..filled]);
                let place = if seq == 0 {
                    Place::First
                } else {
                    Place::Middle
                };
                let cut = Piece {
                    seq,
                    place,
                    buf: std::mem::replace(&mut buf, next),
                    len: at,
                };
                if tickets.recv().is_err() || out.send(cut).is_err() {
                    return;
                }
                (filled, seq) = (rest, seq + 1);
            }
            None if filled > MAX_PIECE => return,
            None => {}
        }
    }
}

/// A reader thread: read pieces until there are none, and give their
/// buffers back to the cutter.
fn read_pieces(
    cut: &Mutex<Receiver<Piece>>,
    out: &SyncSender<Read>,
    spare: &SyncSender<Vec<u8>>,
    what: &str,
    limits: &Limits,
) {
    loop {
        let next = cut.lock().map(|rx| rx.recv());
        let Ok(Ok(Piece {
            seq,
            place,
            buf,
            len,
        })) = next
        else {
            return;
        };
        let data = &buf[..len];
        let pkgs = scan::primary_piece(data, place, what, limits)
            .or_else(|| xml::primary_piece(data, place, what, limits));
        let _ = spare.try_send(buf);
        if out.send((seq, place == Place::Last, pkgs)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoError;

    const SHA: &str = "aa7f1e2f6a1f8c33e5b0d93dd4b5c1b7e24f44b2ff1ee9a6a7e0d35e4a9c2e10";

    fn package(i: usize) -> String {
        format!(
            r#"<package type="rpm">
  <name>p{i}</name><arch>x86_64</arch>
  <version epoch="0" ver="1.{i}" rel="1"/>
  <checksum type="sha256" pkgid="YES">{SHA}</checksum>
  <description>text &amp; <![CDATA[ <b> ]]></description>
  <location href="Packages/p{i}.rpm"/>
  <format>
    <rpm:provides><rpm:entry name="p{i}" flags="EQ" epoch="0" ver="1.{i}" rel="1"/></rpm:provides>
    <rpm:requires><rpm:entry name="p{}"/></rpm:requires>
    <file>/usr/bin/p{i}</file>
  </format>
</package>
"#,
            i / 2
        )
    }

    fn document(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" \
             xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"0\">\n{body}</metadata>\n"
        )
    }

    fn packages(range: std::ops::Range<usize>) -> String {
        range.map(package).collect()
    }

    /// The one reader's answer: the packages, or the error's text.
    fn alone(doc: &str, limits: &Limits) -> std::result::Result<Vec<Package>, String> {
        let mut out = Vec::new();
        xml::read_primary(doc.as_bytes(), "primary", limits, |p| {
            out.push(p);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// A stream that gives at most 97 bytes a read, so that the cutter
    /// sees every `<package` as the last one at some point.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(97);
            self.0.read(&mut buf[..n])
        }
    }

    /// The pieces' answer with pieces of `piece` bytes, and whether the
    /// one reader had to read the stream again.
    fn in_pieces(
        doc: &str,
        limits: &Limits,
        piece: usize,
    ) -> (std::result::Result<Vec<Package>, String>, bool) {
        let data = doc.as_bytes().to_vec();
        let open = move || -> Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(Trickle(std::io::Cursor::new(data.clone()))))
        };
        let mut out = Vec::new();
        let mut again = false;
        let r = read(&open, "primary", limits, piece, &mut |p| {
            out.push(p);
            Ok(())
        });
        let r = match r {
            Ok((n, a)) => {
                again = a;
                assert_eq!(n as usize, out.len());
                Ok(out)
            }
            Err(e) => Err(e.to_string()),
        };
        (r, again)
    }

    #[test]
    fn clean_pieces_give_the_one_readers_packages_in_order() {
        let doc = document(&packages(0..300));
        let limits = Limits::default();
        let want = alone(&doc, &limits).unwrap();
        assert_eq!(want.len(), 300);
        for piece in [1, 700, 4096, 50_000] {
            let (got, again) = in_pieces(&doc, &limits, piece);
            assert_eq!(got.as_ref().map(Vec::len), Ok(300), "pieces of {piece}");
            assert!(got == Ok(want.clone()), "pieces of {piece} differ");
            assert!(!again, "pieces of {piece} were read again");
        }
        // A document smaller than one piece is the one reader's alone.
        let (got, again) = in_pieces(&doc, &limits, 1 << 30);
        assert!(got == Ok(want) && again);
    }

    #[test]
    fn a_cut_inside_other_markup_gives_the_one_readers_answer() {
        let fake = package(9999);
        let tricky = [
            // A commented-out package, and one in a CDATA section.
            format!("<!-- {fake} -->\n"),
            format!(
                "<other><![CDATA[ {} ]]></other>\n",
                fake.replace("<![CDATA[ <b> ]]>", "")
            ),
            // A package inside another element: skipped with it.
            format!("<other><inner>{fake}</inner></other>\n"),
            // A package inside a package (an unknown child there).
            format!(
                "<package type=\"rpm\"><name>outer</name><arch>noarch</arch><version ver=\"1\"/>\
                <checksum type=\"sha256\">{SHA}</checksum><location href=\"o.rpm\"/><x>{fake}</x></package>\n"
            ),
            // A processing instruction.
            format!("<?skip {fake} ?>\n"),
            // The root closed early, more packages after it.
            format!("</metadata>\n{fake}"),
        ];
        let limits = Limits::default();
        for (k, t) in tricky.iter().enumerate() {
            let doc = document(&format!("{}{t}{}", packages(0..40), packages(40..80)));
            let want = alone(&doc, &limits);
            if k < 5 {
                assert!(
                    want.as_ref().is_ok_and(|w| w.len() >= 80),
                    "case {k}: {want:?}"
                );
            }
            let mut fell_back = false;
            for piece in [1, 300, 2000] {
                let (got, again) = in_pieces(&doc, &limits, piece);
                let brief = |r: &std::result::Result<Vec<Package>, String>| {
                    r.as_ref()
                        .map(|v| {
                            v.iter()
                                .map(|p| p.name.clone())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .map_err(Clone::clone)
                };
                assert_eq!(brief(&got), brief(&want), "case {k}, pieces of {piece}");
                assert!(got == want, "case {k}, pieces of {piece}");
                fell_back |= again;
            }
            // (An error comes from the one reader in any case.)
            assert!(
                fell_back || want.is_err(),
                "case {k}: no cut fell inside the markup"
            );
        }
    }

    #[test]
    fn errors_and_limits_are_the_one_readers() {
        let limits = Limits::default();
        // A broken package far into the document.
        let broken = document(&format!(
            "{}<package type=\"rpm\"><name>bad</name></package>\n{}",
            packages(0..100),
            packages(100..150)
        ));
        let want = alone(&broken, &limits);
        assert!(want.as_ref().is_err_and(|e| e.contains("bad")), "{want:?}");
        for piece in [1, 999, 10_000] {
            assert_eq!(
                in_pieces(&broken, &limits, piece).0.map(|v| v.len()),
                want.clone().map(|v| v.len())
            );
        }
        // Too many packages, counted over all the pieces.
        let doc = document(&packages(0..120));
        let few = Limits {
            max_packages: 100,
            ..Limits::default()
        };
        let want = alone(&doc, &few);
        assert!(
            want.as_ref().is_err_and(|e| e.contains("max_packages")),
            "{want:?}"
        );
        let (got, _) = in_pieces(&doc, &few, 500);
        assert_eq!(got.map(|v| v.len()), want.map(|v| v.len()));
        // The end of the stream inside a package.
        let cut_short = &doc[..doc.len() / 2];
        let want = alone(cut_short, &limits);
        assert!(want.is_err());
        assert_eq!(
            in_pieces(cut_short, &limits, 700).0.map(|v| v.len()),
            want.map(|v| v.len())
        );
    }

    #[test]
    fn the_callers_error_stops_the_reading() {
        let doc = document(&packages(0..500)).into_bytes();
        let open = move || -> Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(doc.clone())))
        };
        let mut seen = 0;
        let r = read(&open, "primary", &Limits::default(), 1000, &mut |_| {
            seen += 1;
            if seen == 42 {
                return Err(RepoError::Metadata {
                    what: "test".into(),
                    message: "enough".into(),
                });
            }
            Ok(())
        });
        assert!(r.is_err_and(|e| e.to_string().contains("enough")));
        assert_eq!(seen, 42);
    }

    /// Documents changed at random (markup that hides a package, bytes
    /// dropped or doubled, the end cut off) read both ways: the same
    /// packages and the same errors, whatever the pieces' size.
    #[test]
    fn changed_documents_read_the_same_in_pieces() {
        let limits = Limits::default();
        let base = document(&packages(0..60));
        let inserts = [
            "<!-- ",
            " -->",
            "<![CDATA[ ",
            " ]]>",
            "<other>",
            "</other>",
            "</metadata>",
            "<?pi ",
            "?>",
            "<package type=\"rpm\">",
            "</package>",
            "\"",
        ];
        let mut next = crate::testutil::seeded(0x5eed_u64);
        let mut differed_from_base = 0;
        for round in 0..200 {
            let mut doc = base.clone().into_bytes();
            for _ in 0..1 + next(3) {
                let at = next(doc.len());
                match next(4) {
                    0 => doc.truncate(at),
                    1 => {
                        let end = (at + next(200)).min(doc.len());
                        doc.drain(at..end);
                    }
                    2 => {
                        let end = (at + next(200)).min(doc.len());
                        let copy = doc[at..end].to_vec();
                        doc.splice(at..at, copy);
                    }
                    _ => {
                        let s = inserts[next(inserts.len())];
                        doc.splice(at..at, s.bytes());
                    }
                }
            }
            let Ok(text) = String::from_utf8(doc) else {
                continue;
            };
            let want = alone(&text, &limits);
            if want.as_ref().ok().map(Vec::len) != Some(60) {
                differed_from_base += 1;
            }
            for piece in [1, 500] {
                let (got, _) = in_pieces(&text, &limits, piece);
                assert!(
                    got == want,
                    "round {round}, pieces of {piece}: {:?} against {:?}",
                    got.as_ref().map(Vec::len),
                    want.as_ref().map(Vec::len)
                );
            }
        }
        // The changes do change what the one reader says, most of the time.
        assert!(
            differed_from_base > 100,
            "only {differed_from_base} changed documents read differently"
        );
    }
}
