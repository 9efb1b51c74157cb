//! Just enough of Rust's lexical grammar for the tidy checks: identifiers,
//! punctuation and literals as tokens with their line, comments kept
//! aside with their lines, and which lines are test code. A hand-written
//! lexer, not `syn`: the checks need lines and comments, which a parser
//! drops, and a token stream is all they read.

/// One token. Literals (strings, chars, numbers) are kept only as a
/// marker: no check looks inside them, and skipping them is what keeps a
/// `"println!"` in a string from counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    Literal,
    Lifetime,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: Kind,
    /// 1-based.
    pub line: usize,
}

impl Token {
    pub fn is_ident(&self, name: &str) -> bool {
        matches!(&self.kind, Kind::Ident(i) if i == name)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }

    pub fn ident(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ident(i) => Some(i),
            _ => None,
        }
    }
}

/// A comment: its first and last line and its text (markers included).
#[derive(Debug, Clone)]
pub struct Comment {
    pub first: usize,
    pub last: usize,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub comments: Vec<Comment>,
}

/// Tokens and comments of `src`. Unterminated literals and comments end
/// at the end of the file (the compiler reports those; tidy need not).
pub fn lex(src: &str) -> Lexed {
    let b = src.as_bytes();
    let mut out = Lexed::default();
    let mut i = 0;
    let mut line = 1;
    let newlines = |from: usize, to: usize| b[from..to].iter().filter(|&&c| c == b'\n').count();
    while i < b.len() {
        let c = b[i];
        let start = i;
        let start_line = line;
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.comments.push(Comment {
                first: line,
                last: line,
                text: src[start..i].to_string(),
            });
            continue;
        }
        if b[i..].starts_with(b"/*") {
            i = block_comment_end(b, i);
            line += newlines(start, i);
            out.comments.push(Comment {
                first: start_line,
                last: line,
                text: src[start..i].to_string(),
            });
            continue;
        }
        let kind = if let Some(end) = string_end(b, i) {
            i = end;
            Kind::Literal
        } else if c == b'\'' || (c == b'b' && b.get(i + 1) == Some(&b'\'')) {
            let (end, kind) = quote_end(b, if c == b'b' { i + 1 } else { i });
            i = end;
            kind
        } else if c.is_ascii_digit() {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            Kind::Literal
        } else if is_ident_start(c) {
            // A raw identifier: `r#type`.
            if b[i..].starts_with(b"r#") && b.get(i + 2).copied().is_some_and(is_ident_start) {
                i += 2;
            }
            let from = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            Kind::Ident(src[from..i].to_string())
        } else if b[i..].starts_with(b"::") {
            i += 2;
            Kind::PathSep
        } else {
            let ch = src[i..].chars().next().unwrap_or('\0');
            i += ch.len_utf8();
            Kind::Punct(ch)
        };
        line += newlines(start, i);
        out.tokens.push(Token {
            kind,
            line: start_line,
        });
    }
    out
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// The end of a (nested) block comment starting at `i`.
fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// If a string literal starts at `i` (`"…"`, `b"…"`, `c"…"`, `r#"…"#`,
/// `br"…"`, `cr"…"`), where it ends.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    // A prefix is part of the literal only when the quote follows it.
    if matches!(b[j], b'b' | b'c') {
        j += 1;
    }
    let raw = b.get(j) == Some(&b'r');
    if raw {
        j += 1;
        let hashes_from = j;
        while b.get(j) == Some(&b'#') {
            j += 1;
        }
        if b.get(j) != Some(&b'"') {
            return None;
        }
        let hashes = j - hashes_from;
        j += 1;
        while j < b.len() {
            if b[j] == b'"'
                && b[j + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == b'#')
                    .count()
                    == hashes
            {
                return Some(j + 1 + hashes);
            }
            j += 1;
        }
        return Some(j);
    }
    if b.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    Some(j.min(b.len()))
}

/// A char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`)
/// starting at the quote at `i`.
fn quote_end(b: &[u8], i: usize) -> (usize, Kind) {
    if b.get(i + 1) == Some(&b'\\') {
        let mut j = i + 2;
        while j < b.len() && b[j] != b'\'' && b[j] != b'\n' {
            j += 1;
        }
        return ((j + 1).min(b.len()), Kind::Literal);
    }
    // One character (maybe several bytes) then a quote: a char literal.
    let width = std::str::from_utf8(&b[i + 1..(i + 5).min(b.len())])
        .ok()
        .or_else(|| std::str::from_utf8(&b[i + 1..(i + 2).min(b.len())]).ok())
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8);
    if b.get(i + 1 + width) == Some(&b'\'') {
        return (i + 2 + width, Kind::Literal);
    }
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    (j, Kind::Lifetime)
}

/// The index of the token that closes the bracket opened at `open`
/// (`(`, `[` or `{`), or the last token.
pub fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match &t.kind {
            Kind::Punct('(' | '[' | '{') => depth += 1,
            Kind::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// Where the item starting at token `from` ends: its first `;` outside
/// brackets, or the `}` closing its first brace block.
pub fn item_end(tokens: &[Token], from: usize) -> usize {
    let mut k = from;
    while k < tokens.len() {
        match &tokens[k].kind {
            Kind::Punct(';') => return k,
            Kind::Punct('{') => return matching(tokens, k),
            Kind::Punct('(' | '[') => k = matching(tokens, k) + 1,
            _ => k += 1,
        }
    }
    tokens.len().saturating_sub(1)
}

/// The token ranges (inclusive) of test code: items under `#[test]` or a
/// `#[cfg(...)]` that names `test` (and not `not`).
pub fn test_ranges(tokens: &[Token]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < tokens.len() {
        if tokens[k].is_punct('#') && tokens.get(k + 1).is_some_and(|t| t.is_punct('[')) {
            let close = matching(tokens, k + 1);
            if is_test_attribute(&tokens[k + 2..close]) {
                // Skip the item's other attributes, then take the item.
                let mut item = close + 1;
                while tokens.get(item).is_some_and(|t| t.is_punct('#'))
                    && tokens.get(item + 1).is_some_and(|t| t.is_punct('['))
                {
                    item = matching(tokens, item + 1) + 1;
                }
                let end = item_end(tokens, item);
                ranges.push((k, end));
                k = end + 1;
                continue;
            }
            k = close + 1;
            continue;
        }
        k += 1;
    }
    ranges
}

fn is_test_attribute(inner: &[Token]) -> bool {
    match inner.first() {
        Some(t) if t.is_ident("test") => inner.len() == 1,
        Some(t) if t.is_ident("cfg") => {
            inner.iter().any(|t| t.is_ident("test")) && !inner.iter().any(|t| t.is_ident("not"))
        }
        _ => false,
    }
}

/// Whether token `k` lies in one of `ranges`.
pub fn in_ranges(ranges: &[(usize, usize)], k: usize) -> bool {
    ranges.iter().any(|&(a, b)| a <= k && k <= b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        lex(src)
            .tokens
            .iter()
            .filter_map(|t| t.ident().map(String::from))
            .collect()
    }

    #[test]
    fn strings_chars_and_comments_hide_what_they_hold() {
        let src = "let a = \"println!\"; // eprintln!\n\
                   let b = r#\"a \" dbg!\"#; /* x /* nested */ stdout() */\n\
                   let c = '\"'; let d: &'static str = b\"\\\"q\"; let e = '\\'';\n\
                   fn f<'a>(x: &'a u8) {}";
        assert_eq!(
            idents(src),
            [
                "let", "a", "let", "b", "let", "c", "let", "d", "str", "let", "e", "fn", "f", "x",
                "u8"
            ]
        );
        let l = lex(src);
        assert_eq!(l.comments.len(), 2);
        assert_eq!(l.comments[1].text, "/* x /* nested */ stdout() */");
        assert_eq!(l.tokens.last().map(|t| t.line), Some(4));
    }

    #[test]
    fn lines_count_through_multiline_literals() {
        let l = lex("let s = \"a\nb\nc\";\nfoo");
        assert_eq!(
            l.tokens
                .last()
                .map(|t| (t.ident().map(String::from), t.line)),
            Some((Some("foo".into()), 4))
        );
    }

    #[test]
    fn test_items_are_found() {
        let src = "fn a() {}\n#[cfg(test)]\nmod tests { fn b() {} }\n#[test]\n#[ignore]\nfn c() { x(); }\n\
                   #[cfg(not(test))]\nfn d() {}\n";
        let l = lex(src);
        let r = test_ranges(&l.tokens);
        let inside: Vec<&str> = l
            .tokens
            .iter()
            .enumerate()
            .filter(|(k, _)| in_ranges(&r, *k))
            .filter_map(|(_, t)| t.ident())
            .collect();
        assert_eq!(
            inside,
            [
                "cfg", "test", "mod", "tests", "fn", "b", "test", "ignore", "fn", "c", "x"
            ]
        );
    }
}
