//! Parse and check a systemd unit file that a package ships.
//!
//! In: the text of a unit file and its name. Out: a [`UnitFile`] that keeps
//! every `[Section]` header and `Key=Value` entry with the line and column it
//! came from, so a caller can point at the exact spot; accessors for the
//! `[Install]` lists and `ExecStart=` executables; and checks that a name is a
//! valid unit name ([`check_unit_name`]) and that a unit a package asks to
//! enable can be enabled ([`check_installable`]).
//!
//! It never touches the filesystem, never expands `%` specifiers or
//! environment variables, never follows drop-ins, and does not know which
//! keys systemd understands: an unknown key is kept, like systemd keeps going
//! past one with a warning.
//!
//! Rules followed:
//! - syntax: systemd.syntax(7), "Introduction" (sections, `Key=Value` with the
//!   whitespace around `=` ignored, `#`/`;` comment lines, a trailing
//!   backslash joining lines and turning into a space, comment lines inside
//!   such a continuation skipped) and "Quoting" (how a value splits into
//!   words); where systemd merely warns and ignores a bad line (a line with
//!   no `=`, an assignment before any section) this parser refuses it, since
//!   a file a package ships should have none;
//! - names: systemd.unit(5), "Description" (valid characters, the 255
//!   character limit, the type suffixes, templates and instances);
//! - `[Install]`: systemd.unit(5), "[Install] Section Options" (`WantedBy=`,
//!   `RequiredBy=`, `UpheldBy=` and `Alias=` are lists that an empty
//!   assignment resets; `Also=` only adds; `DefaultInstance=`);
//! - `ExecStart=`: systemd.service(5), "Options" (the executable prefixes
//!   `@ - : + ! !!`, one command unless `Type=oneshot`) and "Command Lines"
//!   (commands separated by a lone `;`, an empty assignment resets the list).

use thiserror::Error;

/// A problem in a unit file, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: {message}")]
pub struct UnitError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl UnitError {
    fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        UnitError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// A `[Section]` header as it appeared in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// Line and column of the `[`.
    pub line: usize,
    pub column: usize,
}

/// One `Key=Value` assignment, with the whitespace around `=` and at both
/// ends trimmed and continuation lines joined (each trailing backslash
/// replaced by a space, as systemd does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The section it is in.
    pub section: String,
    pub key: String,
    pub value: String,
    /// Line and column of the first character of the key.
    pub line: usize,
    pub column: usize,
    /// Line and column of the first character of the value (just after the
    /// `=` when the value is empty).
    pub value_line: usize,
    pub value_column: usize,
}

/// A parsed unit file: its section headers and entries, in file order.
///
/// A section that appears twice is one section, as in systemd: the
/// accessors look at the entries of every header with that name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    headers: Vec<Section>,
    entries: Vec<Entry>,
}

/// One command of an `Exec*=` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// The executable: the first word with the special prefixes removed.
    pub path: String,
    /// The words after it (with `@`, the first of them is `argv[0]`).
    pub args: Vec<String>,
    /// The prefixes it had, e.g. `-` or `+`, in the order written.
    pub prefixes: String,
    /// Where the value holding this command starts.
    pub line: usize,
    pub column: usize,
}

/// The unit types systemd.unit(5) lists, one per name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitType {
    Service,
    Socket,
    Device,
    Mount,
    Automount,
    Swap,
    Target,
    Path,
    Timer,
    Slice,
    Scope,
}

impl UnitType {
    pub const ALL: [UnitType; 11] = [
        UnitType::Service,
        UnitType::Socket,
        UnitType::Device,
        UnitType::Mount,
        UnitType::Automount,
        UnitType::Swap,
        UnitType::Target,
        UnitType::Path,
        UnitType::Timer,
        UnitType::Slice,
        UnitType::Scope,
    ];

    /// The suffix without the dot, e.g. `service`.
    pub fn suffix(self) -> &'static str {
        match self {
            UnitType::Service => "service",
            UnitType::Socket => "socket",
            UnitType::Device => "device",
            UnitType::Mount => "mount",
            UnitType::Automount => "automount",
            UnitType::Swap => "swap",
            UnitType::Target => "target",
            UnitType::Path => "path",
            UnitType::Timer => "timer",
            UnitType::Slice => "slice",
            UnitType::Scope => "scope",
        }
    }

    /// The type for a suffix given without the dot.
    pub fn from_suffix(suffix: &str) -> Option<UnitType> {
        UnitType::ALL.into_iter().find(|t| t.suffix() == suffix)
    }

    /// Whether `Alias=` is allowed (systemd.unit(5): mount, slice, swap and
    /// automount units cannot be aliased).
    pub fn may_alias(self) -> bool {
        !matches!(
            self,
            UnitType::Mount | UnitType::Slice | UnitType::Swap | UnitType::Automount
        )
    }
}

/// Longest valid unit name, suffix included (systemd.unit(5)).
pub const UNIT_NAME_MAX: usize = 255;

const WS: &[char] = &[' ', '\t', '\n', '\r'];

// ---------------------------------------------------------------------------
// Parsing

/// Parse unit file text.
///
/// Errors (each with the line and column of the offending spot): an
/// assignment before any section header, a line that is neither a header
/// nor contains `=`, a header with text after its `]` or without a `]`, an
/// empty or unsafe section name, and an empty key.
pub fn parse(text: &str) -> Result<UnitFile, UnitError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut unit = UnitFile::default();
    let mut current: Option<String> = None;
    let mut pending: Option<Logical> = None;

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        // A comment line is dropped before continuation handling, so one
        // inside a continued line does not end it (systemd.syntax(7)).
        if raw.trim_start_matches(WS).starts_with(['#', ';']) {
            continue;
        }
        let mut logical = pending.take().unwrap_or_default();
        logical.pieces.push(Piece {
            line,
            start: logical.text.len(),
        });
        logical.text.push_str(raw);
        if ends_with_unescaped_backslash(raw) {
            logical.text.pop();
            logical.text.push(' ');
            pending = Some(logical);
            continue;
        }
        parse_logical(&logical, &mut current, &mut unit)?;
    }
    if let Some(logical) = pending {
        parse_logical(&logical, &mut current, &mut unit)?;
    }
    Ok(unit)
}

/// Physical lines joined by continuation, with where each one starts.
#[derive(Default)]
struct Logical {
    text: String,
    pieces: Vec<Piece>,
}

struct Piece {
    line: usize,
    /// Byte offset of this physical line in `Logical::text`.
    start: usize,
}

impl Logical {
    /// Line and column (1-based, in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|p| p.start <= offset)
            .or(self.pieces.first());
        match piece {
            Some(p) => {
                let column = self
                    .text
                    .get(p.start..offset)
                    .map_or(0, |s| s.chars().count());
                (p.line, column + 1)
            }
            None => (1, 1),
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> UnitError {
        let (line, column) = self.position(offset);
        UnitError::new(line, column, message)
    }
}

fn ends_with_unescaped_backslash(line: &str) -> bool {
    let trailing = line.bytes().rev().take_while(|&b| b == b'\\').count();
    trailing % 2 == 1
}

fn parse_logical(
    logical: &Logical,
    current: &mut Option<String>,
    unit: &mut UnitFile,
) -> Result<(), UnitError> {
    let text = logical.text.as_str();
    let start = text.len() - text.trim_start_matches(WS).len();
    let s = text.trim_matches(WS);
    if s.is_empty() {
        return Ok(());
    }

    if s.starts_with('[') {
        let Some(close) = s.find(']') else {
            return Err(logical.error(
                start + s.len(),
                format!("section header `{s}` has no closing `]`"),
            ));
        };
        let name = &s[1..close];
        let after = &s[close + 1..];
        if !after.is_empty() {
            return Err(logical.error(
                start + close + 1,
                format!("unexpected text `{after}` after section header `[{name}]`"),
            ));
        }
        if name.is_empty() {
            return Err(logical.error(start, "empty section name `[]`"));
        }
        if let Some((i, c)) = name
            .char_indices()
            .find(|&(_, c)| c.is_control() || matches!(c, '[' | '"' | '\'' | '\\'))
        {
            return Err(logical.error(
                start + 1 + i,
                format!("character {c:?} is not allowed in section name `{name}`"),
            ));
        }
        let (line, column) = logical.position(start);
        unit.headers.push(Section {
            name: name.to_string(),
            line,
            column,
        });
        *current = Some(name.to_string());
        return Ok(());
    }

    let Some(section) = current.as_ref() else {
        return Err(logical.error(start, format!("`{s}` comes before any [Section] header")));
    };
    let Some(eq) = s.find('=') else {
        return Err(logical.error(
            start,
            format!("expected `Key=Value` or a `[Section]` header, found `{s}`"),
        ));
    };
    let key = s[..eq].trim_end_matches(WS);
    if key.is_empty() {
        return Err(logical.error(start + eq, "missing key name before `=`"));
    }
    let rest = &s[eq + 1..];
    let value_offset = start + eq + 1 + (rest.len() - rest.trim_start_matches(WS).len());
    let value = rest.trim_matches(WS);
    let (line, column) = logical.position(start);
    let (value_line, value_column) = logical.position(value_offset);
    unit.entries.push(Entry {
        section: section.clone(),
        key: key.to_string(),
        value: value.to_string(),
        line,
        column,
        value_line,
        value_column,
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// Accessors

impl UnitFile {
    /// Section names in order of first appearance, each once.
    pub fn sections(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for h in &self.headers {
            if !names.contains(&h.name.as_str()) {
                names.push(&h.name);
            }
        }
        names
    }

    /// Every section header, in file order (a repeated section appears
    /// more than once).
    pub fn section_headers(&self) -> &[Section] {
        &self.headers
    }

    /// The first header of a section, if the file has it.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.headers.iter().find(|h| h.name == name)
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries for one key of one section, in file order.
    pub fn entries_for<'a, 'k>(
        &'a self,
        section: &'k str,
        key: &'k str,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'k> {
        self.entries
            .iter()
            .filter(move |e| e.section == section && e.key == key)
    }

    /// All values of a key, in order, empty assignments included (for
    /// repeatable keys; see [`UnitFile::get_list`] for list semantics).
    pub fn get_all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries_for(section, key)
            .map(|e| e.value.as_str())
            .collect()
    }

    /// The last value of a key: what systemd uses for a single-valued key.
    pub fn get_last(&self, section: &str, key: &str) -> Option<&str> {
        self.entries_for(section, key)
            .last()
            .map(|e| e.value.as_str())
    }

    /// A list-type key as systemd reads it: each value split into words
    /// (quotes removed), an empty assignment dropping everything before it.
    /// Right for `WantedBy=`, `RequiredBy=`, `UpheldBy=`, `Alias=`; not for
    /// `Also=`, which an empty assignment does not reset (see
    /// [`UnitFile::also`]).
    pub fn get_list(&self, section: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.entries_for(section, key) {
            if e.value.is_empty() {
                out.clear();
            } else {
                out.extend(list_words(&e.value));
            }
        }
        out
    }

    /// `[Install] WantedBy=`.
    pub fn wanted_by(&self) -> Vec<String> {
        self.get_list("Install", "WantedBy")
    }

    /// `[Install] RequiredBy=`.
    pub fn required_by(&self) -> Vec<String> {
        self.get_list("Install", "RequiredBy")
    }

    /// `[Install] UpheldBy=`.
    pub fn upheld_by(&self) -> Vec<String> {
        self.get_list("Install", "UpheldBy")
    }

    /// `[Install] Alias=`.
    pub fn alias(&self) -> Vec<String> {
        self.get_list("Install", "Alias")
    }

    /// `[Install] Also=`: the words of every assignment (an empty one adds
    /// nothing and removes nothing).
    pub fn also(&self) -> Vec<String> {
        self.entries_for("Install", "Also")
            .flat_map(|e| list_words(&e.value))
            .collect()
    }

    /// `[Install] DefaultInstance=`: the last assignment, `None` when it is
    /// missing or empty.
    pub fn default_instance(&self) -> Option<&str> {
        self.get_last("Install", "DefaultInstance")
            .filter(|v| !v.is_empty())
    }

    /// The commands of a `[Service]` `Exec*=` key (e.g. `ExecStart`), an
    /// empty assignment resetting the list. Errors on a value whose quoting
    /// is broken or whose command is empty.
    pub fn exec_commands(&self, key: &str) -> Result<Vec<ExecCommand>, UnitError> {
        let mut out = Vec::new();
        for e in self.entries_for("Service", key) {
            if e.value.is_empty() {
                out.clear();
                continue;
            }
            let at = |m: String| UnitError::new(e.value_line, e.value_column, m);
            let words = split_words(&e.value, true).map_err(|m| at(format!("{key}=: {m}")))?;
            let commands: Vec<&[Word]> = words.split(|w| w.bare && w.text == ";").collect();
            let last = commands.len().saturating_sub(1);
            for (i, command) in commands.into_iter().enumerate() {
                let Some((first, rest)) = command.split_first() else {
                    // A trailing `;` ends the list; anywhere else it leaves
                    // a command empty.
                    if i == last && i > 0 {
                        continue;
                    }
                    return Err(at(format!("{key}=: empty command around `;`")));
                };
                let (prefixes, path) = strip_exec_prefixes(&first.text);
                if path.is_empty() {
                    return Err(at(format!("{key}=: command has no executable")));
                }
                out.push(ExecCommand {
                    path: path.to_string(),
                    args: rest.iter().map(|w| w.text.clone()).collect(),
                    prefixes: prefixes.to_string(),
                    line: e.value_line,
                    column: e.value_column,
                });
            }
        }
        Ok(out)
    }

    /// The executables of `[Service] ExecStart=`, prefixes removed, in order.
    /// A value that cannot be parsed contributes nothing; use
    /// [`UnitFile::exec_commands`] to see the error.
    pub fn exec_start(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.entries_for("Service", "ExecStart") {
            if e.value.is_empty() {
                out.clear();
                continue;
            }
            let Ok(words) = split_words(&e.value, true) else {
                continue;
            };
            for command in words.split(|w| w.bare && w.text == ";") {
                if let Some(first) = command.first() {
                    let (_, path) = strip_exec_prefixes(&first.text);
                    if !path.is_empty() {
                        out.push(path.to_string());
                    }
                }
            }
        }
        out
    }
}

/// Remove the special executable prefixes, each allowed once, `+`, `!` and
/// `!!` excluding one another (systemd.service(5), table "Special
/// executable prefixes"). Returns (prefixes, rest).
fn strip_exec_prefixes(word: &str) -> (&str, &str) {
    let (mut ignore, mut argv0, mut no_env) = (false, false, false);
    let (mut plus, mut bang, mut bangbang) = (false, false, false);
    let mut n = 0;
    for c in word.chars() {
        match c {
            '-' if !ignore => ignore = true,
            '@' if !argv0 => argv0 = true,
            ':' if !no_env => no_env = true,
            '+' if !(plus || bang || bangbang) => plus = true,
            '!' if !(plus || bang || bangbang) => bang = true,
            '!' if bang && !(plus || bangbang) => {
                bang = false;
                bangbang = true;
            }
            _ => break,
        }
        n += c.len_utf8();
    }
    word.split_at(n)
}

/// Split a list value into words: whitespace separates, quotes group and
/// are removed, backslashes are kept as written (systemd reads these lists
/// without C unescaping). A value with broken quoting gives what it can.
fn list_words(value: &str) -> Vec<String> {
    match split_words(value, false) {
        Ok(words) => words.into_iter().map(|w| w.text).collect(),
        Err(_) => value.split_whitespace().map(str::to_string).collect(),
    }
}

struct Word {
    text: String,
    /// Written without any quote or escape (so a bare `;` separates).
    bare: bool,
}

/// systemd.syntax(7) "Quoting": words separated by unquoted whitespace;
/// `"..."` and `'...'` group; with `unescape`, C-style escapes are decoded,
/// otherwise a backslash and the character after it are kept.
fn split_words(value: &str, unescape: bool) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| WS.contains(c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = Word {
            text: String::new(),
            bare: true,
        };
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if WS.contains(&c) => break,
                (None, '"' | '\'') => {
                    quote = Some(c);
                    word.bare = false;
                }
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    word.bare = false;
                    let Some(next) = chars.next() else {
                        return Err("trailing backslash".to_string());
                    };
                    if unescape {
                        word.text.push(unescape_char(next, &mut chars)?);
                    } else {
                        word.text.push('\\');
                        word.text.push(next);
                    }
                }
                (_, c) => word.text.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("missing closing {q}"));
        }
        words.push(word);
    }
}

/// Decode the escape whose backslash was just read and whose next character
/// is `c`. Unknown escapes give the character itself (systemd warns there).
fn unescape_char(
    c: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<char, String> {
    let mut take_digits = |radix: u32, n: usize| -> Result<char, String> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = chars
                .next()
                .and_then(|d| d.to_digit(radix))
                .ok_or_else(|| format!("bad escape \\{c}"))?;
            v = v * radix + d;
        }
        char::from_u32(v)
            .filter(|&ch| ch != '\0')
            .ok_or_else(|| format!("escape \\{c} gives no valid character"))
    };
    Ok(match c {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        's' => ' ',
        'x' => take_digits(16, 2)?,
        'u' => take_digits(16, 4)?,
        'U' => take_digits(16, 8)?,
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                let d = chars
                    .next()
                    .and_then(|d| d.to_digit(8))
                    .ok_or_else(|| format!("bad octal escape \\{c}"))?;
                v = v * 8 + d;
            }
            char::from_u32(v)
                .filter(|&ch| ch != '\0')
                .ok_or_else(|| format!("octal escape \\{c} gives no valid character"))?
        }
        other => other,
    })
}

// ---------------------------------------------------------------------------
// Names

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\')
}

/// Check a unit name against systemd.unit(5) and return its type.
///
/// A name is a prefix of ASCII letters, digits and `:-_.\`, optionally
/// followed by `@` and an instance (empty for a template, `foo@.service`),
/// then a dot and a known type suffix; 255 characters at most.
pub fn check_unit_name(name: &str) -> Result<UnitType, String> {
    if name.is_empty() {
        return Err("empty unit name".to_string());
    }
    if name.chars().count() > UNIT_NAME_MAX {
        return Err(format!(
            "unit name `{name}` is longer than {UNIT_NAME_MAX} characters"
        ));
    }
    let Some(dot) = name.rfind('.') else {
        return Err(format!(
            "unit name `{name}` has no type suffix such as `.service`"
        ));
    };
    let suffix = &name[dot + 1..];
    let Some(ty) = UnitType::from_suffix(suffix) else {
        let known: Vec<&str> = UnitType::ALL.iter().map(|t| t.suffix()).collect();
        return Err(format!(
            "unit name `{name}` has unknown type `.{suffix}` (expected one of .{})",
            known.join(", .")
        ));
    };
    let stem = &name[..dot];
    if stem.is_empty() {
        return Err(format!("unit name `{name}` has nothing before `.{suffix}`"));
    }
    if let Some(c) = stem.chars().find(|&c| !(valid_name_char(c) || c == '@')) {
        return Err(format!(
            "unit name `{name}` contains {c:?}; allowed are ASCII letters, digits and `:-_.\\@`"
        ));
    }
    if stem.starts_with('@') {
        return Err(format!("unit name `{name}` starts with `@`"));
    }
    Ok(ty)
}

/// Whether a valid name is a template, like `getty@.service`.
pub fn is_template(name: &str) -> bool {
    check_unit_name(name).is_ok() && split_at_sign(name).is_some_and(|(_, i, _)| i.is_empty())
}

/// The instance of a valid instance name: `tty1` for `getty@tty1.service`.
pub fn instance(name: &str) -> Option<&str> {
    check_unit_name(name).ok()?;
    split_at_sign(name)
        .map(|(_, i, _)| i)
        .filter(|i| !i.is_empty())
}

/// The template of a valid template or instance name: `getty@.service` for
/// `getty@tty1.service` (and for itself).
pub fn template_name(name: &str) -> Option<String> {
    check_unit_name(name).ok()?;
    split_at_sign(name).map(|(prefix, _, suffix)| format!("{prefix}@.{suffix}"))
}

/// (prefix, instance, suffix) of a name with `@`, split at the first `@`
/// and the last `.`.
fn split_at_sign(name: &str) -> Option<(&str, &str, &str)> {
    let dot = name.rfind('.')?;
    let at = name[..dot].find('@')?;
    Some((&name[..at], &name[at + 1..dot], &name[dot + 1..]))
}

// ---------------------------------------------------------------------------
// Installability

/// Check that `unit`, shipped as `name`, can be enabled and started.
///
/// - `name` must be a valid unit name;
/// - there must be an `[Install]` section with at least one of
///   `WantedBy=`, `RequiredBy=`, `UpheldBy=`, `Alias=`, `Also=` left after
///   resets (otherwise the unit is static: `systemctl enable` has nothing to
///   do), and the unit names listed there must be valid (values with `%`
///   specifiers are not checked); an `Alias=` must keep the unit's type;
/// - a template listed by `WantedBy=`/`RequiredBy=`/`UpheldBy=` needs a
///   `DefaultInstance=`, since enabling the bare template has no instance to
///   link;
/// - a `.service` must have a `[Service]` section with an `ExecStart=`, each
///   executable an absolute path or a bare file name, and only one command
///   unless `Type=oneshot`.
///
/// The error points at the entry at fault, else at the section header
/// concerned, else at line 1.
pub fn check_installable(unit: &UnitFile, name: &str) -> Result<(), UnitError> {
    let ty = check_unit_name(name).map_err(|m| UnitError::new(1, 1, m))?;

    let Some(install) = unit.section("Install") else {
        return Err(UnitError::new(
            1,
            1,
            format!(
                "`{name}` cannot be enabled: it has no [Install] section \
                 (WantedBy=, RequiredBy=, Alias= or Also=)"
            ),
        ));
    };
    for key in ["WantedBy", "RequiredBy", "UpheldBy", "Also", "Alias"] {
        for e in unit.entries_for("Install", key) {
            for word in list_words(&e.value) {
                if word.contains('%') {
                    continue;
                }
                let at = |m: String| UnitError::new(e.value_line, e.value_column, m);
                let listed = check_unit_name(&word).map_err(|m| at(format!("{key}=: {m}")))?;
                if key == "Alias" {
                    if !ty.may_alias() {
                        return Err(at(format!(
                            "Alias= is not allowed for .{} units",
                            ty.suffix()
                        )));
                    }
                    if listed != ty {
                        return Err(at(format!(
                            "Alias= `{word}` must have the same type as `{name}`"
                        )));
                    }
                }
            }
        }
    }
    let linked_by = !unit.wanted_by().is_empty()
        || !unit.required_by().is_empty()
        || !unit.upheld_by().is_empty();
    if !linked_by && unit.alias().is_empty() && unit.also().is_empty() {
        return Err(UnitError::new(
            install.line,
            install.column,
            format!(
                "`{name}` cannot be enabled: [Install] has no WantedBy=, RequiredBy=, \
                 Alias= or Also="
            ),
        ));
    }
    if linked_by && is_template(name) && unit.default_instance().is_none() {
        return Err(UnitError::new(
            install.line,
            install.column,
            format!("`{name}` is a template: enabling it needs DefaultInstance= in [Install]"),
        ));
    }

    if ty == UnitType::Service {
        check_service(unit, name)?;
    }
    Ok(())
}

fn check_service(unit: &UnitFile, name: &str) -> Result<(), UnitError> {
    let Some(service) = unit.section("Service") else {
        return Err(UnitError::new(
            1,
            1,
            format!("`{name}` has no [Service] section"),
        ));
    };
    let commands = unit.exec_commands("ExecStart")?;
    if commands.is_empty() {
        return Err(UnitError::new(
            service.line,
            service.column,
            format!("`{name}` has no ExecStart= in [Service]"),
        ));
    }
    for c in &commands {
        if c.path.contains('%') {
            continue;
        }
        if !c.path.starts_with('/') && c.path.contains('/') {
            return Err(UnitError::new(
                c.line,
                c.column,
                format!(
                    "ExecStart=: `{}` must be an absolute path or a file name without `/`",
                    c.path
                ),
            ));
        }
    }
    let oneshot = unit.get_last("Service", "Type") == Some("oneshot");
    if !oneshot && let Some(second) = commands.get(1) {
        return Err(UnitError::new(
            second.line,
            second.column,
            "more than one ExecStart= command is only allowed with Type=oneshot",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> UnitError {
        match parse(text) {
            Ok(u) => panic!("expected an error, parsed {u:?}"),
            Err(e) => e,
        }
    }

    fn ok(text: &str) -> UnitFile {
        match parse(text) {
            Ok(u) => u,
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    const WEB: &str = "\
# web.service
[Unit]
Description=Web server
After=network.target

[Service]
Type=simple
ExecStart=/usr/bin/web --port 8080

[Install]
WantedBy=multi-user.target
";

    #[test]
    fn parses_sections_and_entries_with_positions() {
        let u = ok(WEB);
        assert_eq!(u.sections(), vec!["Unit", "Service", "Install"]);
        assert_eq!(u.get_last("Unit", "Description"), Some("Web server"));
        let e = u.entries_for("Service", "ExecStart").next();
        let e = e.map(|e| (e.line, e.column, e.value_line, e.value_column));
        assert_eq!(e, Some((8, 1, 8, 11)));
        let install = u.section("Install").map(|s| (s.line, s.column));
        assert_eq!(install, Some((10, 1)));
    }

    #[test]
    fn trims_whitespace_around_equals_and_keeps_inner_spaces() {
        let u = ok("[Unit]\n  Description   =  A  B  \n");
        assert_eq!(u.get_last("Unit", "Description"), Some("A  B"));
        let e = &u.entries()[0];
        assert_eq!((e.line, e.column, e.value_column), (2, 3, 20));
    }

    #[test]
    fn skips_hash_and_semicolon_comments_but_not_inline_ones() {
        let u = ok("; top\n[Unit]\n  # indented comment\nDescription=a # not a comment\n");
        assert_eq!(u.get_all("Unit", "Description"), vec!["a # not a comment"]);
        assert_eq!(u.entries().len(), 1);
    }

    #[test]
    fn joins_continuation_lines_with_a_space() {
        let u = ok("[Service]\nExecStart=/bin/echo one \\\n   two\nType=simple\n");
        assert_eq!(
            u.get_last("Service", "ExecStart"),
            Some("/bin/echo one     two")
        );
        assert_eq!(u.get_last("Service", "Type"), Some("simple"));
        assert_eq!(u.entries()[1].line, 4);
    }

    #[test]
    fn skips_comment_lines_inside_a_continuation() {
        // The example from systemd.syntax(7).
        let u = ok(
            "[Section C]\nKeyThree=value 3\\\n# this line is ignored\n; this line is ignored too\n       value 3 continued\n",
        );
        assert_eq!(
            u.get_last("Section C", "KeyThree"),
            Some("value 3        value 3 continued")
        );
    }

    #[test]
    fn double_backslash_at_end_is_not_a_continuation() {
        let u = ok("[Unit]\nA=x\\\\\nB=y\n");
        assert_eq!(u.get_last("Unit", "A"), Some("x\\\\"));
        assert_eq!(u.get_last("Unit", "B"), Some("y"));
    }

    #[test]
    fn continuation_at_end_of_file_still_counts() {
        let u = ok("[Unit]\nA=x \\");
        assert_eq!(u.get_last("Unit", "A"), Some("x"));
    }

    #[test]
    fn blank_line_ends_a_continuation() {
        let u = ok("[Unit]\nA=x \\\n\nB=y\n");
        assert_eq!(u.get_last("Unit", "A"), Some("x"));
        assert_eq!(u.get_last("Unit", "B"), Some("y"));
    }

    #[test]
    fn error_in_continued_line_points_at_the_right_physical_line() {
        // `A=x` continued over a blank-looking line is one assignment.
        let u = ok("[Unit]\nA=x \\\n  \\\n=y\n");
        assert_eq!(u.get_last("Unit", "A"), Some("x     =y"));
        let e = err("[Unit]\n   \\\n   =y\n");
        assert_eq!((e.line, e.column), (3, 4));
        assert!(e.message.contains("missing key name"), "{e}");
    }

    #[test]
    fn assignment_before_any_section_is_an_error() {
        let e = err("\n  Description=x\n[Unit]\n");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("before any [Section]"), "{e}");
    }

    #[test]
    fn line_without_equals_is_an_error() {
        let e = err("[Unit]\nDescription x\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("Key=Value"), "{e}");
    }

    #[test]
    fn junk_after_section_header_is_an_error() {
        let e = err("[Unit] extra\n");
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.message.contains("after section header"), "{e}");
        let e = err("[Unit]]\n");
        assert_eq!((e.line, e.column), (1, 7));
    }

    #[test]
    fn unclosed_or_empty_section_header_is_an_error() {
        let e = err("[Unit\n");
        assert_eq!((e.line, e.column), (1, 6));
        assert!(e.message.contains("no closing"), "{e}");
        let e = err("[]\n");
        assert!(e.message.contains("empty section name"), "{e}");
    }

    #[test]
    fn empty_key_is_an_error_pointing_at_equals() {
        let e = err("[Unit]\n  =value\n");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("missing key name"), "{e}");
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let u = ok("\u{feff}[Unit]\nA=b\n");
        assert_eq!(u.sections(), vec!["Unit"]);
        assert_eq!(u.section_headers()[0].column, 1);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let u = ok("[Unit]\nDescription=é=x\nX=1\n");
        assert_eq!(u.get_last("Unit", "Description"), Some("é=x"));
        let e = err("[Unit]\nA=é\né\n");
        assert_eq!((e.line, e.column), (3, 1));
        let e = err("[Ünit] x\n");
        assert_eq!(e.column, 7);
    }

    #[test]
    fn get_all_returns_every_value_in_order_and_get_last_the_final_one() {
        let u = ok("[Unit]\nAfter=a\nAfter=\nAfter=b c\n[Unit]\nAfter=d\n");
        assert_eq!(u.get_all("Unit", "After"), vec!["a", "", "b c", "d"]);
        assert_eq!(u.get_last("Unit", "After"), Some("d"));
        assert_eq!(u.get_last("Unit", "Before"), None);
        assert_eq!(u.sections(), vec!["Unit"]);
        assert_eq!(u.section_headers().len(), 2);
    }

    #[test]
    fn keys_and_sections_are_case_sensitive() {
        let u = ok("[install]\nwantedby=a.target\n");
        assert!(u.wanted_by().is_empty());
        assert_eq!(u.get_last("install", "wantedby"), Some("a.target"));
    }

    #[test]
    fn empty_assignment_resets_install_lists() {
        let u = ok(
            "[Install]\nWantedBy=a.target b.target\nWantedBy=\nWantedBy=c.target\n\
                    RequiredBy=x.target\nAlias=old.service\nAlias=\n",
        );
        assert_eq!(u.wanted_by(), vec!["c.target"]);
        assert_eq!(u.required_by(), vec!["x.target"]);
        assert!(u.alias().is_empty());
    }

    #[test]
    fn also_is_not_reset_by_an_empty_assignment() {
        let u = ok("[Install]\nAlso=a.socket b.socket\nAlso=\nAlso=c.timer\n");
        assert_eq!(u.also(), vec!["a.socket", "b.socket", "c.timer"]);
    }

    #[test]
    fn default_instance_is_the_last_non_empty_assignment() {
        let u = ok("[Install]\nDefaultInstance=tty1\nDefaultInstance=tty2\n");
        assert_eq!(u.default_instance(), Some("tty2"));
        let u = ok("[Install]\nDefaultInstance=tty1\nDefaultInstance=\n");
        assert_eq!(u.default_instance(), None);
    }

    #[test]
    fn exec_start_strips_prefixes_and_takes_the_first_word() {
        let u = ok(
            "[Service]\nExecStart=-/usr/bin/a --x\nExecStart=@/usr/bin/b argv0 y\n\
                    ExecStart=+!x\nExecStart=!!/usr/sbin/c\nExecStart=:-+/d\nExecStart=\"/opt/my app/e\" arg\n\
                    ExecStart=--/f\n",
        );
        assert_eq!(
            u.exec_start(),
            vec![
                "/usr/bin/a",
                "/usr/bin/b",
                "!x",
                "/usr/sbin/c",
                "/d",
                "/opt/my app/e",
                "-/f"
            ]
        );
    }

    #[test]
    fn exec_start_empty_assignment_resets_and_semicolon_separates_commands() {
        let u =
            ok("[Service]\nExecStart=/bin/old\nExecStart=\nExecStart=/bin/a x ; -/bin/b \\; y\n");
        assert_eq!(u.exec_start(), vec!["/bin/a", "/bin/b"]);
        let cmds = u.exec_commands("ExecStart").unwrap_or_default();
        assert_eq!(cmds[1].args, vec![";", "y"]);
        assert_eq!(cmds[1].prefixes, "-");
    }

    #[test]
    fn exec_start_allows_a_trailing_semicolon_but_not_an_empty_command() {
        let u = ok("[Service]\nExecStart=/bin/a ;\n");
        assert_eq!(u.exec_commands("ExecStart").map(|c| c.len()), Ok(1));
        let u = ok("[Service]\nExecStart=/bin/a ; ; /bin/b\n");
        assert!(u.exec_commands("ExecStart").is_err());
        let u = ok("[Service]\nExecStart=;\n");
        assert!(u.exec_commands("ExecStart").is_err());
    }

    #[test]
    fn exec_start_decodes_escapes_in_quotes() {
        let u = ok("[Service]\nExecStart='/opt/a\\x20b/run' \"x\\ty\"\n");
        let cmds = u.exec_commands("ExecStart").unwrap_or_default();
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].path, "/opt/a b/run");
        assert_eq!(cmds[0].args, vec!["x\ty"]);
    }

    #[test]
    fn exec_commands_reports_unterminated_quote_at_the_value() {
        let u = ok("[Service]\nExecStart=  \"/bin/a\n");
        let e = match u.exec_commands("ExecStart") {
            Err(e) => e,
            Ok(c) => panic!("expected error, got {c:?}"),
        };
        assert_eq!((e.line, e.column), (2, 13));
        assert!(u.exec_start().is_empty());
    }

    #[test]
    fn unit_names_follow_systemd_unit_5() {
        assert_eq!(check_unit_name("web.service"), Ok(UnitType::Service));
        assert_eq!(
            check_unit_name("a.b-c_d:e\\x2d.socket"),
            Ok(UnitType::Socket)
        );
        assert_eq!(check_unit_name("getty@.service"), Ok(UnitType::Service));
        assert_eq!(check_unit_name("getty@tty1.service"), Ok(UnitType::Service));
        for t in UnitType::ALL {
            assert_eq!(check_unit_name(&format!("x.{}", t.suffix())), Ok(t));
        }
        for bad in [
            "",
            "web",
            ".service",
            "web.serv",
            "web.Service",
            "@x.service",
            "we b.service",
            "wéb.service",
            "web/x.service",
            "web.service.d",
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unit_name_length_limit_is_255() {
        let ok_name = format!("{}.service", "a".repeat(255 - 8));
        assert_eq!(ok_name.len(), 255);
        assert!(check_unit_name(&ok_name).is_ok());
        let long = format!("a{ok_name}");
        assert!(check_unit_name(&long).is_err());
    }

    #[test]
    fn templates_and_instances_are_recognised() {
        assert!(is_template("getty@.service"));
        assert!(!is_template("getty@tty1.service"));
        assert!(!is_template("getty.service"));
        assert_eq!(instance("getty@tty1.service"), Some("tty1"));
        assert_eq!(instance("getty@.service"), None);
        assert_eq!(instance("web.service"), None);
        assert_eq!(instance("a@b@c.service"), Some("b@c"));
        assert_eq!(
            template_name("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(
            template_name("getty@.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_name("web.service"), None);
        assert_eq!(template_name("bad name@x.service"), None);
    }

    #[test]
    fn installable_service_passes() {
        assert_eq!(check_installable(&ok(WEB), "web.service"), Ok(()));
    }

    #[test]
    fn unit_without_install_section_cannot_be_enabled() {
        let u = ok("[Service]\nExecStart=/bin/true\n");
        let e = check_installable(&u, "x.service").err();
        let e = e.map(|e| (e.line, e.column, e.message.contains("cannot be enabled")));
        assert_eq!(e, Some((1, 1, true)));
    }

    #[test]
    fn install_section_without_rules_cannot_be_enabled() {
        let u = ok(
            "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=a.target\nWantedBy=\nDefaultInstance=x\n",
        );
        let e = check_installable(&u, "x.service").err();
        let e = e.map(|e| (e.line, e.column, e.message.contains("cannot be enabled")));
        assert_eq!(e, Some((4, 1, true)));
    }

    #[test]
    fn alias_or_also_alone_makes_a_unit_installable() {
        let u = ok("[Service]\nExecStart=/bin/true\n[Install]\nAlias=y.service\n");
        assert_eq!(check_installable(&u, "x.service"), Ok(()));
        let u = ok("[Socket]\nListenStream=80\n[Install]\nAlso=x.service\n");
        assert_eq!(check_installable(&u, "x.socket"), Ok(()));
    }

    #[test]
    fn service_without_service_section_or_exec_start_is_refused() {
        let u = ok("[Unit]\nDescription=x\n[Install]\nWantedBy=a.target\n");
        let e = check_installable(&u, "x.service").err();
        assert_eq!(e.map(|e| (e.line, e.column)), Some((1, 1)));

        let u = ok(
            "[Unit]\nDescription=x\n  [Service]\nType=simple\nExecStart=/bin/x\nExecStart=\n[Install]\nWantedBy=a.target\n",
        );
        let e = check_installable(&u, "x.service").err();
        let e = e.map(|e| (e.line, e.column, e.message.contains("ExecStart")));
        assert_eq!(e, Some((3, 3, true)));
    }

    #[test]
    fn non_service_units_need_no_exec_start() {
        let u = ok("[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n");
        assert_eq!(check_installable(&u, "x.timer"), Ok(()));
    }

    #[test]
    fn relative_exec_path_with_slash_is_refused_at_its_value() {
        let u = ok("[Service]\nExecStart=-bin/x\n[Install]\nWantedBy=a.target\n");
        let e = check_installable(&u, "x.service").err();
        assert_eq!(e.map(|e| (e.line, e.column)), Some((2, 11)));
        let u = ok("[Service]\nExecStart=true\n[Install]\nWantedBy=a.target\n");
        assert_eq!(check_installable(&u, "x.service"), Ok(()));
    }

    #[test]
    fn several_exec_start_commands_need_oneshot() {
        let text = "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n[Install]\nWantedBy=a.target\n";
        let e = check_installable(&ok(text), "x.service").err();
        assert_eq!(e.map(|e| (e.line, e.column)), Some((3, 11)));
        let oneshot = text.replace("[Service]\n", "[Service]\nType=oneshot\n");
        assert_eq!(check_installable(&ok(&oneshot), "x.service"), Ok(()));
    }

    #[test]
    fn invalid_names_in_install_lists_are_refused_at_their_value() {
        let u = ok("[Service]\nExecStart=/bin/a\n[Install]\nWantedBy=multi-user.target  bogus\n");
        let e = check_installable(&u, "x.service").err();
        let e = e.map(|e| (e.line, e.column, e.message.contains("bogus")));
        assert_eq!(e, Some((4, 10, true)));
        let u = ok("[Service]\nExecStart=/bin/a\n[Install]\nWantedBy=getty@%i.service\n");
        assert_eq!(check_installable(&u, "x.service"), Ok(()));
    }

    #[test]
    fn alias_must_keep_the_unit_type() {
        let u = ok("[Service]\nExecStart=/bin/a\n[Install]\nAlias=y.socket\n");
        let e = check_installable(&u, "x.service").err();
        assert_eq!(e.map(|e| (e.line, e.column)), Some((4, 7)));
        let u = ok("[Mount]\nWhat=/dev/x\nWhere=/x\n[Install]\nAlias=y.mount\n");
        assert!(check_installable(&u, "x.mount").is_err());
    }

    #[test]
    fn template_wanted_by_a_target_needs_default_instance() {
        let text = "[Service]\nExecStart=/bin/a %i\n[Install]\nWantedBy=multi-user.target\n";
        let e = check_installable(&ok(text), "w@.service").err();
        let e = e.map(|e| (e.line, e.message.contains("DefaultInstance")));
        assert_eq!(e, Some((3, true)));
        let with = format!("{text}DefaultInstance=main\n");
        assert_eq!(check_installable(&ok(&with), "w@.service"), Ok(()));
        assert_eq!(check_installable(&ok(text), "w@main.service"), Ok(()));
    }

    #[test]
    fn installable_check_refuses_an_invalid_name() {
        let e = check_installable(&ok(WEB), "web").err();
        assert_eq!(e.map(|e| (e.line, e.column)), Some((1, 1)));
    }

    #[test]
    fn unit_error_displays_line_and_column() {
        let e = UnitError::new(3, 7, "bad");
        assert_eq!(e.to_string(), "3:7: bad");
    }
}
