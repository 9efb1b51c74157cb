//! Spec diagnostics: an error that points at a file, line and column.
//!
//! In: a byte span into the spec's text (from the TOML parser or from a
//! `Spanned` value) and a message. Out: a [`SpecError`] that prints as
//! `` `file`:line:column: message `` plus an optional hint such as
//! "did you mean `version`?". Never reads files itself.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in a spec file, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based line and column; `None` when the problem has no single place
    /// (for example a missing required section).
    pub location: Option<(usize, usize)>,
    pub message: String,
    pub hint: Option<String>,
}

/// The most a spec file may hold: specs are a few kilobytes; anything
/// near this is not a spec.
pub const MAX_SPEC_BYTES: u64 = 4 * 1024 * 1024;

/// A spec file's text: a regular file (a FIFO or a device is refused, never
/// read), at most [`MAX_SPEC_BYTES`], UTF-8.
pub fn read_spec_text(file: &Path) -> Result<String, SpecError> {
    let bytes = crate::input::read_small(file, MAX_SPEC_BYTES, "a spec").map_err(|e| {
        SpecError::whole(file, format!("cannot read the spec: {}", error_chain(&e)))
    })?;
    String::from_utf8(bytes)
        .map_err(|e| SpecError::whole(file, format!("the spec is not UTF-8 text: {e}")))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

impl SpecError {
    /// An error at byte offset `span.start` of `text`.
    pub fn at(file: &Path, text: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        SpecError {
            file: file.to_path_buf(),
            location: Some(line_col(text, span.start)),
            message: message.into(),
            hint: None,
        }
    }

    /// An error that belongs to the file as a whole.
    pub fn whole(file: &Path, message: impl Into<String>) -> Self {
        SpecError {
            file: file.to_path_buf(),
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Turn the TOML parser's error (syntax, unknown key, wrong type) into a
    /// located error, adding "did you mean" for unknown keys.
    pub fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim().to_string();
        let span = err.span().unwrap_or(0..0);
        let mut e = SpecError::at(file, text, span, first_line(&message));
        if let Some(hint) = unknown_field_hint(&message) {
            e.hint = Some(hint);
        }
        e
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => write!(
                f,
                "`{}`:{line}:{col}: {}",
                self.file.display(),
                self.message
            )?,
            None => write!(f, "`{}`: {}", self.file.display(), self.message)?,
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// User text for a message: control characters (and the invisible
/// direction overrides) written as escapes such as `\u{1b}` or `\n`, so
/// that what a message echoes can neither drive the terminal nor fake a
/// line of its own.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_but(s, None)
}

/// [`escape`], keeping line breaks: for a whole message that spans lines.
pub fn escape_keep_newlines(s: &str) -> Cow<'_, str> {
    escape_but(s, Some('\n'))
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_but(s: &str, keep: Option<char>) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c) && Some(c) != keep) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) && Some(c) != keep {
            if c.is_control() {
                out.extend(c.escape_debug());
            } else {
                out.extend(c.escape_unicode());
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// 1-based line and column (in characters) of byte offset `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").to_string()
}

/// serde's message for an unknown key reads
/// "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
/// Offer the closest expected key when it is close enough.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (found, rest) = rest.split_once('`')?;
    let candidates: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    match did_you_mean(found, candidates.iter().copied()) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None if !candidates.is_empty() => Some(format!(
            "the keys allowed here are {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => None,
    }
}

/// The candidate closest to `found`, if any is close enough to be a typo.
pub fn did_you_mean<'a>(found: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(found, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // "é" is two bytes but one column.
        assert_eq!(line_col(text, 9), (2, 3));
        assert_eq!(line_col(text, 1000), (3, 1));
    }

    #[test]
    fn escape_writes_control_characters_as_escapes() {
        assert_eq!(escape("plain é"), "plain é");
        assert_eq!(escape("a\u{1b}[31mb\0c\nd\te"), "a\\u{1b}[31mb\\0c\\nd\\te");
        assert_eq!(escape("\u{9b}x\u{202e}y"), "\\u{9b}x\\u{202e}y");
        assert_eq!(escape_keep_newlines("a\nb\u{7f}"), "a\nb\\u{7f}");
    }

    #[test]
    fn unknown_field_hint_suggests_the_closest_key() {
        let m = "unknown field `verison`, expected one of `name`, `version`, `release`";
        assert_eq!(
            unknown_field_hint(m).as_deref(),
            Some("did you mean `version`?")
        );
    }

    #[test]
    fn unknown_field_hint_lists_keys_when_nothing_is_close() {
        let m = "unknown field `zzz`, expected `src` or `dest`";
        let hint = unknown_field_hint(m).unwrap_or_default();
        assert!(hint.contains("`src`") && hint.contains("`dest`"), "{hint}");
    }
}
