//! The guest's serial console as text.
//!
//! In: the bytes QEMU copies from the guest's first serial port, in chunks
//! cut anywhere. Out: the same console as plain text (terminal control
//! sequences removed, cursor jumps and screen clears turned into line
//! breaks, carriage returns dropped), the part not yet searched, and the
//! last lines for a report. Memory stays bounded: past [`KEEP_MAX`] bytes
//! the oldest text is dropped (the serial log, written as it comes, keeps
//! everything).
//!
//! OVMF and the UEFI shell draw with ANSI sequences (`ESC [ 16 ; 01 H`
//! instead of a newline, colours around every word); systemd colours its
//! status lines. Patterns are matched on the text a person would read.

/// Text kept in memory at most; older lines are dropped beyond it.
const KEEP_MAX: usize = 8 << 20;
/// A line without a newline is searched again with every chunk; past this
/// length, searching moves on (a match spanning the cut can be missed).
const LINE_RESCAN_MAX: usize = 64 << 10;
/// An operating-system command (`ESC ]`) longer than this is dropped.
const OSC_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After `ESC`.
    Escape,
    /// Inside `ESC [` (a control sequence), until its final byte.
    Csi,
    /// Inside `ESC ]`, until `BEL` or `ESC \`; counts the bytes.
    Osc(usize),
    /// `ESC` inside an operating-system command.
    OscEscape,
    /// `ESC (` and friends: one more byte (the character set).
    Charset,
}

/// A streaming remover of terminal control sequences.
#[derive(Debug, Clone)]
pub struct Cleaner {
    state: State,
}

impl Default for Cleaner {
    fn default() -> Self {
        Cleaner { state: State::Text }
    }
}

impl Cleaner {
    /// Append the readable text of `raw` to `out`.
    pub fn clean(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        for &b in raw {
            self.state = match self.state {
                State::Text => match b {
                    0x1b => State::Escape,
                    b'\n' | b'\t' => {
                        out.push(b);
                        State::Text
                    }
                    // Carriage returns, backspaces, bells and other controls.
                    0x00..=0x1f | 0x7f => State::Text,
                    _ => {
                        out.push(b);
                        State::Text
                    }
                },
                State::Escape => match b {
                    b'[' => State::Csi,
                    b']' => State::Osc(0),
                    b'(' | b')' | b'*' | b'+' | b'#' | b'%' => State::Charset,
                    _ => State::Text,
                },
                State::Csi => match b {
                    // Parameter and intermediate bytes.
                    0x20..=0x3f => State::Csi,
                    // Final byte: cursor position and erase-display start
                    // a new line on the screen, so in the text too.
                    b'H' | b'f' | b'J' => {
                        if out.last().is_some_and(|&c| c != b'\n') {
                            out.push(b'\n');
                        }
                        State::Text
                    }
                    0x40..=0x7e => State::Text,
                    // A malformed sequence: drop it.
                    _ => State::Text,
                },
                State::Osc(n) => match b {
                    0x07 => State::Text,
                    0x1b => State::OscEscape,
                    _ if n >= OSC_MAX => State::Text,
                    _ => State::Osc(n + 1),
                },
                State::OscEscape => State::Text,
                State::Charset => State::Text,
            };
        }
    }
}

/// The console seen so far, as text.
#[derive(Debug, Default)]
pub struct Console {
    cleaner: Cleaner,
    text: Vec<u8>,
    /// Where the next search starts: the beginning of the line that was
    /// incomplete at the previous search.
    scan_from: usize,
    /// Whether any byte at all came from the guest.
    seen_any: bool,
}

impl Console {
    pub fn new() -> Self {
        Console::default()
    }

    /// Add raw console bytes; returns the text they added (for the log).
    pub fn push(&mut self, raw: &[u8]) -> &[u8] {
        if !raw.is_empty() {
            self.seen_any = true;
        }
        let start = self.text.len();
        self.cleaner.clean(raw, &mut self.text);
        let added = self.text.len() - start;
        if self.text.len() > KEEP_MAX {
            self.drop_oldest();
        }
        &self.text[self.text.len() - added..]
    }

    /// Whether the guest printed anything yet (control sequences count).
    pub fn seen_any(&self) -> bool {
        self.seen_any
    }

    /// The text not searched yet: whole lines, then the incomplete last
    /// line (searched again next time, as it may still grow).
    pub fn unscanned(&self) -> &[u8] {
        &self.text[self.scan_from..]
    }

    /// Record that [`Console::unscanned`] was searched.
    pub fn mark_scanned(&mut self) {
        let line_start = self
            .text
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
            .max(self.scan_from);
        self.scan_from = if self.text.len() - line_start > LINE_RESCAN_MAX {
            self.text.len()
        } else {
            line_start
        };
    }

    /// The last `n` non-empty lines, as UTF-8 (invalid bytes replaced).
    pub fn tail(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(&self.text);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The last non-empty line (the one still coming included), as UTF-8
    /// (invalid bytes replaced); empty before any.
    pub fn last_line(&self) -> String {
        let mut end = self.text.len();
        while end > 0 {
            let start = self.text[..end]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let line = String::from_utf8_lossy(&self.text[start..end]);
            let line = line.trim_end();
            if !line.is_empty() {
                return line.to_string();
            }
            end = start.saturating_sub(1);
        }
        String::new()
    }

    fn drop_oldest(&mut self) {
        let half = self.text.len() - KEEP_MAX / 2;
        let cut = self.text[half..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(half, |i| half + i + 1);
        self.text.drain(..cut);
        self.scan_from = self.scan_from.saturating_sub(cut);
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(chunks: &[&[u8]]) -> String {
        let mut c = Console::new();
        for ch in chunks {
            c.push(ch);
        }
        String::from_utf8(c.text.clone()).unwrap()
    }

    #[test]
    fn ovmf_shell_output_becomes_plain_lines() {
        let raw: &[u8] =
            b"\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: failed to load Boot0001\r\n\
            \x1b[1m\x1b[33m\x1b[40mMapping table\x1b[0m\x1b[37m\x1b[40m\r\n\
            \x1b[16;01HPress \x1b[1mESC\x1b[0m in 1 seconds\x1b[16;01HPress ESC in 0 seconds\r\n\
            \x1b[17;01H\x1b[1m\x1b[33m\x1b[40mShell> \x1b[0m\x1b[37m\x1b[40m";
        assert_eq!(
            clean(&[raw]),
            "BdsDxe: failed to load Boot0001\nMapping table\nPress ESC in 1 seconds\n\
             Press ESC in 0 seconds\nShell> "
        );
    }

    #[test]
    fn sequences_split_across_chunks_are_still_removed() {
        let raw: &[u8] = b"a\x1b[0;32m  OK  \x1b[0m] Started x\r\n\x1b]0;title\x07b\x1b(Bc";
        let whole = clean(&[raw]);
        assert_eq!(whole, "a  OK  ] Started x\nbc");
        for cut in 0..raw.len() {
            assert_eq!(clean(&[&raw[..cut], &raw[cut..]]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn scanning_resumes_at_the_incomplete_line() {
        let mut c = Console::new();
        c.push(b"one\ntw");
        assert_eq!(c.unscanned(), b"one\ntw");
        c.mark_scanned();
        assert_eq!(c.unscanned(), b"tw");
        c.push(b"o\nthree\n");
        assert_eq!(c.unscanned(), b"two\nthree\n");
        c.mark_scanned();
        assert_eq!(c.unscanned(), b"");
    }

    #[test]
    fn the_last_line_is_the_last_non_empty_one() {
        let mut c = Console::new();
        assert_eq!(c.last_line(), "");
        c.push(b"first\r\nsecond  \r\n\r\n");
        assert_eq!(c.last_line(), "second");
        c.push(b"thi");
        assert_eq!(c.last_line(), "thi");
        c.push(b"rd\n\n   \n");
        assert_eq!(c.last_line(), "third");
    }

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        let mut c = Console::new();
        c.push(b"1\n2\n\n3\r\n4   \n");
        assert_eq!(c.tail(2), "3\n4");
        assert_eq!(c.tail(10), "1\n2\n3\n4");
    }

    #[test]
    fn memory_stays_bounded() {
        let mut c = Console::new();
        let line = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        for _ in 0..(KEEP_MAX / 1024 + 100) {
            c.push(&line);
            c.mark_scanned();
        }
        assert!(c.text.len() <= KEEP_MAX);
        assert_eq!(c.unscanned(), b"");
        assert!(c.text.starts_with(b"xxx"));
    }
}
