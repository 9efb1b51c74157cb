//! Dependency strings: `name`, `name OP evr` and rpm rich dependencies.
//!
//! In: the text a spec writes (`"bash >= 5.1"`, `"(nginx or httpd)"`).
//! Out: a typed [`Dependency`] that knows its rpm flags, or a [`DepError`]
//! with the byte offset of the problem. The grammar of rich dependencies
//! follows rpm's documentation of boolean dependencies (`and`, `or`, `if`,
//! `if … else`, `unless`, `unless … else`, `with`, `without`; one kind of
//! operator per parenthesised level). Never touches the filesystem.
//!
//! Dependencies also come from RPM headers nobody here wrote, so the
//! parser has limits and says which one a text went past: [`MAX_LEN`]
//! bytes, [`MAX_DEPTH`] nested parentheses and [`MAX_TERMS`] dependencies
//! inside one rich dependency. The parser and everything that walks a
//! [`Rich`] tree recurse once per level, so the depth limit is what keeps
//! them off the end of the stack. Real rich dependencies nest three or four
//! levels and name a handful of packages.

use std::fmt;

/// A comparison in a versioned dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" | "=<" => Op::Le,
            "=" | "==" => Op::Eq,
            ">=" | "=>" => Op::Ge,
            ">" => Op::Gt,
            _ => return None,
        })
    }
}

/// `name` or `name OP evr`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Simple {
    pub name: String,
    pub constraint: Option<(Op, String)>,
}

impl fmt::Display for Simple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.constraint {
            Some((op, evr)) => write!(f, "{} {} {}", self.name, op.as_str(), evr),
            None => f.write_str(&self.name),
        }
    }
}

/// The operators of a rich dependency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rich {
    Dep(Simple),
    And(Vec<Rich>),
    Or(Vec<Rich>),
    With(Vec<Rich>),
    Without(Box<Rich>, Box<Rich>),
    If(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    Unless(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
}

impl Rich {
    /// Every simple dependency named inside, in order of appearance.
    pub fn simples(&self) -> Vec<&Simple> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Simple>) {
        match self {
            Rich::Dep(s) => out.push(s),
            Rich::And(v) | Rich::Or(v) | Rich::With(v) => v.iter().for_each(|r| r.collect(out)),
            Rich::Without(a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Rich::If(a, b, c) | Rich::Unless(a, b, c) => {
                a.collect(out);
                b.collect(out);
                if let Some(c) = c {
                    c.collect(out);
                }
            }
        }
    }
}

/// A parsed dependency: what goes into one entry of an rpm dependency tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dependency {
    Simple(Simple),
    /// A rich dependency keeps its text as written (rpm stores the text as
    /// the name, with no version and no comparison flags).
    Rich {
        text: String,
        expr: Rich,
    },
}

impl Dependency {
    pub fn name(&self) -> &str {
        match self {
            Dependency::Simple(s) => &s.name,
            Dependency::Rich { text, .. } => text,
        }
    }

    pub fn is_rich(&self) -> bool {
        matches!(self, Dependency::Rich { .. })
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dependency::Simple(s) => s.fmt(f),
            Dependency::Rich { text, .. } => f.write_str(text),
        }
    }
}

/// What is wrong with a dependency string, and where (byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DepError {}

/// The longest dependency text accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;
/// The deepest nesting of parentheses in a rich dependency.
pub const MAX_DEPTH: usize = 32;
/// The most dependencies (operands) one rich dependency may name.
pub const MAX_TERMS: usize = 1024;

fn err(offset: usize, message: impl Into<String>) -> DepError {
    DepError {
        offset,
        message: message.into(),
    }
}

/// Parse one dependency string.
pub fn parse(text: &str) -> Result<Dependency, DepError> {
    if text.len() > MAX_LEN {
        return Err(err(
            0,
            format!(
                "the dependency is {} bytes long, more than the limit of {MAX_LEN} bytes",
                text.len()
            ),
        ));
    }
    // Spaces separate words; a control character (a tab, a line break, a
    // NUL, an escape) has no place in a dependency.
    if let Some((i, c)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(err(
            i,
            format!("the dependency contains the control character {c:?}"),
        ));
    }
    let trimmed_start = text.len() - text.trim_start().len();
    let t = text.trim();
    if t.is_empty() {
        return Err(err(0, "empty dependency"));
    }
    if t.starts_with('(') {
        let mut p = Parser {
            s: text,
            pos: trimmed_start,
            depth: 0,
            terms: 0,
        };
        let expr = p.group()?;
        p.skip_ws();
        if p.pos != text.len() {
            return Err(err(p.pos, "unexpected text after the closing `)`"));
        }
        return Ok(Dependency::Rich {
            text: t.to_string(),
            expr,
        });
    }
    let words: Vec<(usize, &str)> = words(text);
    let simple = match words.as_slice() {
        [(o, name)] => Simple {
            name: check_name(name, *o)?,
            constraint: None,
        },
        [(o, name), (oo, op), (oe, evr)] => {
            let op = Op::parse(op).ok_or_else(|| {
                err(
                    *oo,
                    format!("`{op}` is not a comparison; use <, <=, =, >= or >"),
                )
            })?;
            check_evr(evr, *oe)?;
            Simple {
                name: check_name(name, *o)?,
                constraint: Some((op, evr.to_string())),
            }
        }
        [_, (oo, op)] => {
            return Err(err(
                *oo,
                format!("`{op}` needs a version after it, as in `name >= 1.0`"),
            ));
        }
        _ => {
            return Err(err(
                trimmed_start,
                "a dependency is `name`, `name OP version` or a rich dependency in parentheses",
            ));
        }
    };
    Ok(Dependency::Simple(simple))
}

/// Words separated by whitespace, with their byte offsets.
fn words(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(b)) => {
                out.push((b, &s[b..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, &s[b..]));
    }
    out
}

fn check_name(name: &str, offset: usize) -> Result<String, DepError> {
    if let Some((i, c)) = name
        .char_indices()
        .find(|(_, c)| c.is_control() || *c == ',')
    {
        return Err(err(
            offset + i,
            format!("dependency name `{name}` contains {c:?}"),
        ));
    }
    if name.starts_with(['<', '>', '=']) {
        return Err(err(offset, "a dependency must start with a name"));
    }
    Ok(name.to_string())
}

/// `[epoch:]version[-release]` with rpm's allowed characters.
pub fn check_evr(evr: &str, offset: usize) -> Result<(), DepError> {
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, evr),
    };
    if let Some(e) = epoch
        && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(err(
            offset,
            format!("epoch `{e}` in `{evr}` is not a number"),
        ));
    }
    let (version, release) = match rest.split_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    let at = offset + evr.len() - rest.len();
    check_version_chars("version", version).map_err(|m| err(at, m))?;
    if let Some(r) = release {
        check_version_chars("release", r).map_err(|m| err(at + version.len() + 1, m))?;
    }
    Ok(())
}

/// rpm's rule for a version or release: non-empty, ASCII letters and digits
/// and `. _ + ~ ^`; no `-` (it separates version from release).
pub fn check_version_chars(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._+~^".contains(*c)))
    {
        let why = if c == '-' {
            " (rpm uses `-` to separate version from release)".to_string()
        } else {
            String::new()
        };
        return Err(format!(
            "{what} `{}` contains {}; allowed are letters, digits and . _ + ~ ^{why}",
            super::diag::escape(v),
            if c.is_control() {
                format!("the control character {c:?}")
            } else {
                format!("`{c}`")
            }
        ));
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// Parentheses open around `pos`.
    depth: usize,
    /// Simple dependencies read so far.
    terms: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    If,
    Else,
    Unless,
    With,
    Without,
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while let Some(c) = self.s[self.pos..].chars().next() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    /// `( expr )`
    fn group(&mut self) -> Result<Rich, DepError> {
        self.skip_ws();
        let open = self.pos;
        if self.peek() != Some('(') {
            return Err(err(self.pos, "expected `(`"));
        }
        if self.depth == MAX_DEPTH {
            return Err(err(
                open,
                format!(
                    "the rich dependency nests deeper than the limit of {MAX_DEPTH} levels of parentheses"
                ),
            ));
        }
        self.depth += 1;
        self.pos += 1;
        let expr = self.expr()?;
        self.depth -= 1;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(match self.peek() {
                None => err(open, "this `(` is never closed"),
                Some(_) => err(self.pos, "expected `)` or an operator"),
            });
        }
        self.pos += 1;
        Ok(expr)
    }

    fn term(&mut self) -> Result<Rich, DepError> {
        self.skip_ws();
        match self.peek() {
            Some('(') => self.group(),
            None | Some(')') => Err(err(self.pos, "expected a dependency")),
            Some(_) => {
                if self.terms == MAX_TERMS {
                    return Err(err(
                        self.pos,
                        format!(
                            "the rich dependency names more than the limit of {MAX_TERMS} dependencies"
                        ),
                    ));
                }
                self.terms += 1;
                self.simple().map(Rich::Dep)
            }
        }
    }

    /// A name token ends at whitespace or at a `)` that closes more than it
    /// opened (names such as `config(foo)` keep their own parentheses).
    fn token(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let mut depth = 0usize;
        for (i, c) in self.s[start..].char_indices() {
            match c {
                c if c.is_whitespace() => return self.take(start, start + i),
                '(' => depth += 1,
                ')' if depth == 0 => return self.take(start, start + i),
                ')' => depth -= 1,
                _ => {}
            }
        }
        self.take(start, self.s.len())
    }

    fn take(&mut self, start: usize, end: usize) -> (usize, &'a str) {
        self.pos = end;
        (start, &self.s[start..end])
    }

    fn keyword_at(&self) -> Option<(Kw, usize)> {
        let rest = &self.s[self.pos..];
        let word: &str = rest
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .next()
            .unwrap_or("");
        let kw = match word {
            "and" => Kw::And,
            "or" => Kw::Or,
            "if" => Kw::If,
            "else" => Kw::Else,
            "unless" => Kw::Unless,
            "with" => Kw::With,
            "without" => Kw::Without,
            _ => return None,
        };
        Some((kw, word.len()))
    }

    fn simple(&mut self) -> Result<Simple, DepError> {
        let (o, name) = self.token();
        if self.keyword_at_pos(o).is_some() {
            return Err(err(
                o,
                format!("expected a dependency, found operator `{name}`"),
            ));
        }
        let name = check_name(name, o)?;
        let save = self.pos;
        self.skip_ws();
        let (oo, op) = self.token();
        if let Some(op) = Op::parse(op) {
            self.skip_ws();
            let (oe, evr) = self.token();
            if evr.is_empty() {
                return Err(err(oe, "expected a version after the comparison"));
            }
            check_evr(evr, oe)?;
            return Ok(Simple {
                name,
                constraint: Some((op, evr.to_string())),
            });
        }
        let _ = oo;
        self.pos = save;
        Ok(Simple {
            name,
            constraint: None,
        })
    }

    fn keyword_at_pos(&self, pos: usize) -> Option<Kw> {
        let p = Parser {
            s: self.s,
            pos,
            depth: self.depth,
            terms: self.terms,
        };
        p.keyword_at().map(|(k, _)| k)
    }

    fn expect_keyword(&mut self) -> Option<(Kw, usize)> {
        self.skip_ws();
        let at = self.pos;
        let (kw, len) = self.keyword_at()?;
        self.pos += len;
        Some((kw, at))
    }

    fn expr(&mut self) -> Result<Rich, DepError> {
        let first = self.term()?;
        let save = self.pos;
        let Some((kw, at)) = self.expect_keyword() else {
            self.pos = save;
            return Ok(first);
        };
        match kw {
            Kw::And | Kw::Or | Kw::With => {
                let mut items = vec![first, self.term()?];
                loop {
                    let save = self.pos;
                    match self.expect_keyword() {
                        Some((k, _)) if k == kw => items.push(self.term()?),
                        Some((_, at)) => {
                            return Err(err(
                                at,
                                "mixing different operators needs parentheses, as in `(a and (b or c))`",
                            ));
                        }
                        None => {
                            self.pos = save;
                            break;
                        }
                    }
                }
                Ok(match kw {
                    Kw::And => Rich::And(items),
                    Kw::Or => Rich::Or(items),
                    _ => Rich::With(items),
                })
            }
            Kw::Without => {
                let second = self.term()?;
                self.no_more_operators()?;
                Ok(Rich::Without(Box::new(first), Box::new(second)))
            }
            Kw::If | Kw::Unless => {
                let cond = self.term()?;
                let save = self.pos;
                let otherwise = match self.expect_keyword() {
                    Some((Kw::Else, _)) => Some(Box::new(self.term()?)),
                    Some((_, at)) => {
                        return Err(err(
                            at,
                            "only `else` may follow `if`/`unless` at the same level",
                        ));
                    }
                    None => {
                        self.pos = save;
                        None
                    }
                };
                self.no_more_operators()?;
                Ok(if kw == Kw::If {
                    Rich::If(Box::new(first), Box::new(cond), otherwise)
                } else {
                    Rich::Unless(Box::new(first), Box::new(cond), otherwise)
                })
            }
            Kw::Else => Err(err(at, "`else` without `if` or `unless`")),
        }
    }

    fn no_more_operators(&mut self) -> Result<(), DepError> {
        let save = self.pos;
        if let Some((_, at)) = self.expect_keyword() {
            return Err(err(
                at,
                "mixing different operators needs parentheses, as in `(a and (b or c))`",
            ));
        }
        self.pos = save;
        Ok(())
    }
}

/// rpm's context rules for rich dependencies (`rpmrichParseForTag` in
/// rpm's `lib/rpmds.c`): `unless` cannot express a requirement, `if` cannot
/// express a conflict, and `with`/`without` take only simple operands.
/// `negative` is true for conflicts, supplements and enhances.
pub fn check_rich_context(expr: &Rich, negative: bool) -> Result<(), String> {
    let mut check = CHECK;
    walk_context(expr, &mut check)?;
    context_check(if negative { RichOp::Or } else { RichOp::And }, check)
}

const CHECK: u8 = 1;
const NO_WITH: u8 = 2;
const NO_AND: u8 = 4;
const NO_OR: u8 = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum RichOp {
    And,
    Or,
    If,
    Unless,
    Else,
    With,
    Without,
}

fn context_check(op: RichOp, check: u8) -> Result<(), String> {
    if matches!(op, RichOp::With | RichOp::Without) && check & NO_WITH != 0 {
        return Err(
            "illegal operands for with/without: only simple dependencies are allowed".into(),
        );
    }
    if check & CHECK == 0 {
        return Ok(());
    }
    if matches!(op, RichOp::And | RichOp::If) && check & NO_AND != 0 {
        return Err("illegal context for `unless`, use `or` instead".into());
    }
    if matches!(op, RichOp::Or | RichOp::Unless) && check & NO_OR != 0 {
        return Err("illegal context for `if`, use `and` instead".into());
    }
    Ok(())
}

/// One parenthesised level: children first (left to right, each seeing
/// what its left siblings found), then this level's own operators.
fn walk_context(r: &Rich, check: &mut u8) -> Result<(), String> {
    let mut local = *check;
    let (children, first, last): (Vec<&Rich>, RichOp, RichOp) = match r {
        Rich::Dep(_) => return Ok(()),
        Rich::And(v) => (v.iter().collect(), RichOp::And, RichOp::And),
        Rich::Or(v) => (v.iter().collect(), RichOp::Or, RichOp::Or),
        Rich::With(v) => (v.iter().collect(), RichOp::With, RichOp::With),
        Rich::Without(a, b) => (vec![a, b], RichOp::Without, RichOp::Without),
        Rich::If(a, b, c) | Rich::Unless(a, b, c) => {
            let first = if matches!(r, Rich::If(..)) {
                RichOp::If
            } else {
                RichOp::Unless
            };
            let mut v: Vec<&Rich> = vec![a, b];
            if let Some(c) = c {
                v.push(c);
            }
            let last = if c.is_some() { RichOp::Else } else { first };
            (v, first, last)
        }
    };
    for c in children {
        walk_context(c, &mut local)?;
    }
    context_check(first, local)?;
    if first == RichOp::If {
        local |= NO_OR;
    }
    if first == RichOp::Unless {
        local |= NO_AND;
    }
    if matches!(last, RichOp::And | RichOp::Or) {
        local &= !(NO_AND | NO_OR);
    }
    if !matches!(last, RichOp::With | RichOp::Without | RichOp::Or) {
        local |= NO_WITH;
    }
    *check |= local;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(name: &str, c: Option<(Op, &str)>) -> Simple {
        Simple {
            name: name.into(),
            constraint: c.map(|(o, v)| (o, v.into())),
        }
    }

    #[test]
    fn plain_and_versioned_dependencies_parse() {
        assert_eq!(
            parse("bash").unwrap(),
            Dependency::Simple(simple("bash", None))
        );
        assert_eq!(
            parse("  glibc >= 2:2.34-1.amzn2023 ").unwrap(),
            Dependency::Simple(simple("glibc", Some((Op::Ge, "2:2.34-1.amzn2023"))))
        );
        assert_eq!(
            parse("libc.so.6(GLIBC_2.34)(64bit)").unwrap().name(),
            "libc.so.6(GLIBC_2.34)(64bit)"
        );
    }

    #[test]
    fn bad_comparison_and_bad_version_point_at_the_word() {
        let e = parse("bash => 5").unwrap();
        assert_eq!(e, Dependency::Simple(simple("bash", Some((Op::Ge, "5")))));
        let e = parse("bash ~> 5").unwrap_err();
        assert_eq!(e.offset, 5);
        let e = parse("bash >= 5.1-1-2").unwrap_err();
        assert!(e.message.contains("`-`"), "{}", e.message);
        let e = parse("bash >=").unwrap_err();
        assert_eq!(e.offset, 5);
    }

    #[test]
    fn rich_dependencies_parse_with_nesting() {
        let d = parse("(nginx or (httpd >= 2.4 and mod_ssl))").unwrap();
        let Dependency::Rich { text, expr } = d else {
            panic!("not rich")
        };
        assert_eq!(text, "(nginx or (httpd >= 2.4 and mod_ssl))");
        assert_eq!(
            expr,
            Rich::Or(vec![
                Rich::Dep(simple("nginx", None)),
                Rich::And(vec![
                    Rich::Dep(simple("httpd", Some((Op::Ge, "2.4")))),
                    Rich::Dep(simple("mod_ssl", None)),
                ]),
            ])
        );
        let d = parse("(pkgA if pkgB else pkgC)").unwrap();
        let Dependency::Rich { expr, .. } = d else {
            panic!()
        };
        assert!(matches!(expr, Rich::If(_, _, Some(_))));
        let d = parse("(config(foo) with foo-libs)").unwrap();
        let names: Vec<_> = match &d {
            Dependency::Rich { expr, .. } => {
                expr.simples().iter().map(|s| s.name.clone()).collect()
            }
            _ => vec![],
        };
        assert_eq!(names, ["config(foo)", "foo-libs"]);
    }

    #[test]
    fn malformed_rich_dependencies_are_refused() {
        for bad in [
            "(a or b",
            "(a or b and c)",
            "(a if b or c)",
            "(a else b)",
            "(or b)",
            "(a or)",
            "(a) b",
            "()",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}a{}", "(".repeat(depth), ")".repeat(depth))
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_at_the_parenthesis_that_goes_too_deep() {
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let e = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(e.offset, MAX_DEPTH);
        assert!(e.message.contains("levels of parentheses"), "{}", e.message);
        // What overflowed the stack before: 20,000 levels.
        let e = parse(&nested(20_000)).unwrap_err();
        assert!(e.message.contains("limit of 32 levels"), "{}", e.message);
    }

    #[test]
    fn too_many_operands_and_too_long_a_text_are_refused_naming_the_limit() {
        let names: Vec<String> = (0..MAX_TERMS).map(|i| format!("p{i}")).collect();
        assert!(parse(&format!("({})", names.join(" or "))).is_ok());
        let one_more = format!("({} or extra)", names.join(" or "));
        let e = parse(&one_more).unwrap_err();
        assert!(e.message.contains("1024 dependencies"), "{}", e.message);
        assert_eq!(&one_more[e.offset..], "extra)");
        let long = format!("({} or b)", "a".repeat(MAX_LEN));
        let e = parse(&long).unwrap_err();
        assert!(e.message.contains("65536 bytes"), "{}", e.message);
    }

    #[test]
    fn realistic_nesting_still_parses() {
        let text = "((kernel-core >= 6.1 and (kmod-nvidia or (akmod-nvidia with nvidia-driver))) if nvidia-driver else (kernel-core unless kernel-rt))";
        let Dependency::Rich { expr, .. } = parse(text).unwrap() else {
            panic!("not rich")
        };
        assert_eq!(expr.simples().len(), 7);
    }

    #[test]
    fn control_characters_are_refused_where_they_are() {
        for (text, at) in [
            ("(a or\nb)", 5),
            ("bash\t>= 5", 4),
            ("pkg\u{0}", 3),
            ("(a or \u{1b}[31mb)", 6),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.offset, at, "{text:?}: {}", e.message);
            assert!(e.message.contains("control character"), "{}", e.message);
        }
    }

    fn context(text: &str, negative: bool) -> Result<(), String> {
        match parse(text).unwrap() {
            Dependency::Rich { expr, .. } => check_rich_context(&expr, negative),
            _ => panic!("not rich"),
        }
    }

    #[test]
    fn rich_context_rules_follow_rpm() {
        // Fine as requirements.
        for ok in [
            "(a if b)",
            "(a if b else c)",
            "(a or b)",
            "(a and (b or c))",
            "(a with b)",
        ] {
            assert!(context(ok, false).is_ok(), "{ok}");
        }
        // `unless` cannot state a requirement; `if` cannot state a conflict.
        assert!(
            context("(a unless b)", false)
                .unwrap_err()
                .contains("unless")
        );
        assert!(context("(a unless b else c)", false).is_err());
        assert!(context("(a if b)", true).unwrap_err().contains("`if`"));
        assert!(context("(a unless b)", true).is_ok());
        // with/without take simple operands only.
        assert!(
            context("((a and b) with c)", false)
                .unwrap_err()
                .contains("with")
        );
        assert!(context("((a or b) with c)", false).is_ok());
    }

    #[test]
    fn version_characters_follow_rpm() {
        assert!(check_version_chars("version", "1.0~rc1^git3+x_y").is_ok());
        assert!(check_version_chars("version", "1.0-2").is_err());
        assert!(check_version_chars("release", "").is_err());
        assert!(check_version_chars("version", "1 0").is_err());
    }
}
