//! sysusers.d files: the one a package ships for its system accounts, and
//! reading such files back.
//!
//! In: the users and groups a package declares ([`render`]); or the text
//! of a sysusers.d file ([`parse`]). Out: the file text, with `g` lines
//! first (in the order given), then `u` lines (in the order given), then an
//! `m` line for each member of each group (group order, then member order);
//! or the parsed lines with their line numbers, for creating the accounts
//! in a root filesystem later.
//!
//! It never creates accounts and never reads `/etc/passwd`: whether a
//! user's primary group (other than its own) exists on the target is for
//! the caller to know. It does not resolve `%` specifiers other than `%%`
//! (they describe the running system), and refuses a file that uses them.
//!
//! Rules followed, from sysusers.d(5), "Configuration File Format": one
//! line per item, `Type Name ID GECOS Home Shell`, `-` for an unset field,
//! empty lines and lines starting with `#` ignored; types `u` (user, and
//! its same-named group unless the ID names another), `g`, `m` (add a user
//! to a group), `r` (an ID range); the ID forms `UID`, `UID:GID`,
//! `UID:GROUP`, `-:GROUP` and an absolute path; a quoted GECOS without `:`;
//! absolute home and shell paths. Fields split as systemd's
//! `extract_first_word()` with unquoting does (quotes may group anywhere in
//! a field; a backslash takes the next character literally). Names follow
//! systemd's strict rule (ASCII letter or `_` first, then letters, digits,
//! `_`, `-`; at most 31 characters); [`render`] also refuses uppercase,
//! keeping to the rule `useradd` accepts by default
//! (`[a-z_][a-z0-9_-]*`), so the file works with either tool. IDs 65535
//! and 4294967295 are refused, as systemd does. `u!` (a fully locked
//! account) is read, but only systemd 257 and later understand it:
//! systemd 252, which Amazon Linux 2023 ships, refuses the whole file, so
//! [`render`] never writes it.

use std::collections::HashSet;

use thiserror::Error;

/// A system user to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysUser {
    pub name: String,
    pub uid: Option<u32>,
    /// Primary group, by name. `None`, or the user's own name, means the
    /// same-named group `u` creates; another name must be a group in the
    /// same file or one that exists on the target.
    pub group: Option<String>,
    pub gecos: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

/// A system group to create, and the users to add to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysGroup {
    pub name: String,
    pub gid: Option<u32>,
    /// Users to add (`m` lines). A member that is neither declared in the
    /// same file nor present on the target is created by systemd-sysusers.
    pub members: Vec<String>,
}

/// Why [`render`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
}

/// A line [`parse`] refused, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// A user's or group's ID field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    /// `-`: allocate one.
    Auto,
    Id(u32),
    /// An absolute path: take the owner (or group) of that file.
    FromPath(String),
}

/// The primary group in a `u` line's `UID:GROUP` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Gid(u32),
    Name(String),
}

/// One parsed line of a sysusers.d file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysusersLine {
    /// 1-based line number.
    pub line: usize,
    pub entry: SysusersEntry,
}

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysusersEntry {
    /// `u` or `u!` (`locked`).
    User {
        name: String,
        uid: IdSpec,
        /// Set by `UID:GID` / `UID:GROUP` (never with a path ID).
        group: Option<GroupRef>,
        gecos: Option<String>,
        home: Option<String>,
        shell: Option<String>,
        locked: bool,
    },
    /// `g`.
    Group { name: String, gid: IdSpec },
    /// `m USER GROUP`.
    Member { user: String, group: String },
    /// `r - FIRST-LAST` (or a single ID: `first == last`).
    Range { first: u32, last: u32 },
}

// ---------------------------------------------------------------------------
// Rendering

/// The sysusers.d file for these accounts (see the module doc for the
/// order). Errors on an invalid or duplicate name, a reserved ID, or a
/// field that sysusers.d cannot carry: a GECOS with `:`, `"`, `\` or a
/// control character (or exactly `-`, which means "none"), a home or shell
/// that is not a normalised absolute path, or that has `:`, `"`, `\` or a
/// control character. `%` is written as `%%`.
pub fn render(users: &[SysUser], groups: &[SysGroup]) -> Result<String, RenderError> {
    let mut out = String::new();
    let mut seen = HashSet::new();
    for g in groups {
        check_portable_name(&g.name, "group")?;
        if !seen.insert(g.name.as_str()) {
            return Err(error(format!("group `{}` is declared twice", g.name)));
        }
        let gid = match g.gid {
            Some(gid) => {
                check_id(gid, &g.name)?;
                gid.to_string()
            }
            None => "-".to_string(),
        };
        out.push_str(&format!("g {} {gid}\n", g.name));
    }
    let group_names: HashSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();

    let mut seen = HashSet::new();
    for u in users {
        check_portable_name(&u.name, "user")?;
        if !seen.insert(u.name.as_str()) {
            return Err(error(format!("user `{}` is declared twice", u.name)));
        }
        if let Some(uid) = u.uid {
            check_id(uid, &u.name)?;
        }
        // `UID:GROUP` needs GROUP to exist already or be declared with
        // `g`; the user's own group is what `u` creates without it.
        let group = u
            .group
            .as_deref()
            .filter(|g| *g != u.name || group_names.contains(g));
        if let Some(g) = group {
            check_portable_name(g, "group")?;
        }
        let uid = u.uid.map_or("-".to_string(), |id| id.to_string());
        let id = match group {
            Some(g) => format!("{uid}:{g}"),
            None => uid,
        };
        let mut fields = vec![
            "u".to_string(),
            u.name.clone(),
            id,
            gecos_field(u)?,
            path_field(u.home.as_deref(), "home", &u.name)?,
            path_field(u.shell.as_deref(), "shell", &u.name)?,
        ];
        while fields.len() > 3 && fields.last().is_some_and(|f| f == "-") {
            fields.pop();
        }
        out.push_str(&fields.join(" "));
        out.push('\n');
    }

    for g in groups {
        let mut members = HashSet::new();
        for m in &g.members {
            check_portable_name(m, "member")?;
            if !members.insert(m.as_str()) {
                return Err(error(format!(
                    "`{m}` is listed twice as a member of group `{}`",
                    g.name
                )));
            }
            out.push_str(&format!("m {m} {}\n", g.name));
        }
    }
    Ok(out)
}

fn error(message: String) -> RenderError {
    RenderError { message }
}

/// The name rule both systemd-sysusers and `useradd` accept by default.
fn check_portable_name(name: &str, what: &str) -> Result<(), RenderError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || name.len() > NAME_MAX {
        return Err(error(format!(
            "{what} name `{name}` is not valid: use a lowercase letter or `_`, then lowercase \
             letters, digits, `_` or `-`, at most {NAME_MAX} characters"
        )));
    }
    Ok(())
}

fn check_id(id: u32, name: &str) -> Result<(), RenderError> {
    if id == 65535 || id == u32::MAX {
        return Err(error(format!(
            "ID {id} of `{name}` is reserved (65535 and 4294967295 mean \"no ID\")"
        )));
    }
    Ok(())
}

fn gecos_field(u: &SysUser) -> Result<String, RenderError> {
    let Some(gecos) = u.gecos.as_deref().filter(|g| !g.is_empty()) else {
        return Ok("-".to_string());
    };
    if gecos == "-" {
        return Err(error(format!(
            "GECOS of `{}` cannot be `-`, which sysusers.d reads as \"none\"",
            u.name
        )));
    }
    if let Some(c) = gecos
        .chars()
        .find(|&c| c.is_control() || matches!(c, ':' | '"' | '\\'))
    {
        return Err(error(format!("GECOS of `{}` cannot contain {c:?}", u.name)));
    }
    Ok(format!("\"{}\"", gecos.replace('%', "%%")))
}

fn path_field(path: Option<&str>, what: &str, user: &str) -> Result<String, RenderError> {
    let Some(path) = path else {
        return Ok("-".to_string());
    };
    let bad = |why: &str| error(format!("{what} `{path}` of `{user}` {why}"));
    if let Some(c) = path
        .chars()
        .find(|&c| c.is_control() || matches!(c, ':' | '"' | '\\'))
    {
        return Err(bad(&format!("cannot contain {c:?}")));
    }
    if !path.starts_with('/') {
        return Err(bad("is not an absolute path"));
    }
    if simplify_path(path) != path {
        return Err(bad(
            "is not normalised (no `//`, `.`, `..` or trailing `/`)",
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(bad("contains `..`"));
    }
    let escaped = path.replace('%', "%%");
    Ok(if escaped.contains(char::is_whitespace) {
        format!("\"{escaped}\"")
    } else {
        escaped
    })
}

// ---------------------------------------------------------------------------
// Parsing

/// Longest user or group name (it must fit utmp's 32-byte field).
pub const NAME_MAX: usize = 31;

/// Parse a sysusers.d file. The first line systemd-sysusers would refuse
/// is an error; lines that only duplicate earlier ones are kept (deciding
/// which one wins is for the caller, as it is across files).
pub fn parse(text: &str) -> Result<Vec<SysusersLine>, ParseError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let l = raw.trim_matches(WS);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let entry = parse_line(l).map_err(|message| ParseError { line, message })?;
        out.push(SysusersLine { line, entry });
    }
    Ok(out)
}

const WS: &[char] = &[' ', '\t', '\n', '\r'];

/// One line (not blank, not a comment): its columns, then what its type
/// makes of them.
fn parse_line(l: &str) -> Result<SysusersEntry, String> {
    let f = Fields::split(l)?;
    match f.kind {
        'r' => f.range(),
        'm' => f.member(),
        'u' => f.user(),
        'g' => f.group(),
        other => Err(format!("unknown line type `{other}`")),
    }
}

/// One line's columns, specifiers resolved, `-` and empty read as absent,
/// each checked on its own.
struct Fields {
    /// The line type (`u`, `g`, `m`, `r`).
    kind: char,
    /// The `!` modifier.
    locked: bool,
    name: Option<String>,
    id: Option<String>,
    gecos: Option<String>,
    home: Option<String>,
    shell: Option<String>,
}

impl Fields {
    /// Split line `l` (not blank, not a comment) into its columns.
    fn split(l: &str) -> Result<Fields, String> {
        let words = split_fields(l)?;
        if words.len() < 2 {
            return Err("missing action and name columns".to_string());
        }
        if words.len() > 6 {
            return Err(format!("trailing garbage `{}`", words[6..].join(" ")));
        }
        let action = words[0].as_str();
        let mut action_chars = action.chars();
        let kind = action_chars.next().unwrap_or(' ');
        let modifiers: String = action_chars.collect();
        let locked = match modifiers.as_str() {
            "" => false,
            "!" => true,
            _ => return Err(format!("unknown modifiers in `{action}`")),
        };

        let field = |i: usize| -> Result<Option<String>, String> {
            match words.get(i).map(String::as_str) {
                None | Some("" | "-") => Ok(None),
                Some(w) => resolve_specifiers(w).map(Some),
            }
        };
        let name = field(1)?;
        let id = field(2)?;
        let gecos = field(3)?;
        let home = field(4)?.map(|h| simplify_path(&h));
        let shell = field(5)?.map(|s| simplify_path(&s));

        if let Some(n) = &name {
            check_name(n)?;
        }
        if let Some(g) = &gecos
            && (g.chars().any(char::is_control) || g.contains(':'))
        {
            return Err(format!("`{g}` is not a valid GECOS field"));
        }
        if let Some(h) = &home {
            check_path(h, "home directory")?;
        }
        if let Some(s) = &shell {
            check_path(s, "login shell")?;
            if s.ends_with('/') {
                return Err(format!("`{s}` is not a valid login shell field"));
            }
        }
        Ok(Fields {
            kind,
            locked,
            name,
            id,
            gecos,
            home,
            shell,
        })
    }

    /// Refuse a GECOS, home or shell on a line type that has none.
    fn no_extra_fields(&self) -> Result<(), String> {
        let which = if self.gecos.is_some() {
            "GECOS"
        } else if self.home.is_some() {
            "home directory"
        } else if self.shell.is_some() {
            "login shell"
        } else {
            return Ok(());
        };
        Err(format!(
            "lines of type `{}` don't take a {which} field",
            self.kind
        ))
    }

    /// Refuse `!` on a line type other than `u`.
    fn no_lock(&self) -> Result<(), String> {
        if self.locked {
            Err(format!(
                "`!` is not allowed on lines of type `{}`",
                self.kind
            ))
        } else {
            Ok(())
        }
    }

    /// `r`: a UID/GID range, `FIRST-LAST` or one ID.
    fn range(self) -> Result<SysusersEntry, String> {
        self.no_lock()?;
        if self.name.is_some() {
            return Err("lines of type `r` don't take a name field".to_string());
        }
        let Some(range) = &self.id else {
            return Err("lines of type `r` need an ID range in the third field".to_string());
        };
        self.no_extra_fields()?;
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (parse_id(a), parse_id(b)),
            None => (parse_id(range), parse_id(range)),
        };
        match (first, last) {
            (Some(first), Some(last)) if first <= last => Ok(SysusersEntry::Range { first, last }),
            _ => Err(format!("invalid UID range `{range}`")),
        }
    }

    /// `m`: a user added to a group.
    fn member(self) -> Result<SysusersEntry, String> {
        self.no_lock()?;
        let Some(user) = &self.name else {
            return Err("lines of type `m` need a user name in the second field".to_string());
        };
        let Some(group) = &self.id else {
            return Err("lines of type `m` need a group name in the third field".to_string());
        };
        check_name(group)?;
        self.no_extra_fields()?;
        Ok(SysusersEntry::Member {
            user: user.clone(),
            group: group.clone(),
        })
    }

    /// `u`: a user, with its UID (and maybe group) from the ID column.
    fn user(self) -> Result<SysusersEntry, String> {
        let Some(name) = self.name else {
            return Err("lines of type `u` need a user name in the second field".to_string());
        };
        let (uid, group) = user_ids(self.id)?;
        Ok(SysusersEntry::User {
            name,
            uid,
            group,
            gecos: self.gecos,
            home: self.home,
            shell: self.shell,
            locked: self.locked,
        })
    }

    /// `g`: a group, with its GID from the ID column.
    fn group(self) -> Result<SysusersEntry, String> {
        self.no_lock()?;
        let Some(name) = &self.name else {
            return Err("lines of type `g` need a group name in the second field".to_string());
        };
        self.no_extra_fields()?;
        let gid = match &self.id {
            None => IdSpec::Auto,
            Some(p) if p.starts_with('/') => IdSpec::FromPath(simplify_path(p)),
            Some(id) => IdSpec::Id(parse_id(id).ok_or_else(|| format!("invalid GID `{id}`"))?),
        };
        Ok(SysusersEntry::Group {
            name: name.clone(),
            gid,
        })
    }
}

/// A `u` line's ID column: absent (automatic), a path whose owner gives
/// the IDs, or `UID`, `UID:GID`, `UID:GROUP`, `-:GID`...
fn user_ids(id: Option<String>) -> Result<(IdSpec, Option<GroupRef>), String> {
    Ok(match id {
        None => (IdSpec::Auto, None),
        Some(p) if p.starts_with('/') => (IdSpec::FromPath(simplify_path(&p)), None),
        Some(id) => {
            let (uid, group) = match id.split_once(':') {
                Some((uid, g)) => {
                    let group = match parse_id(g) {
                        Some(gid) => GroupRef::Gid(gid),
                        None if check_name(g).is_ok() => GroupRef::Name(g.to_string()),
                        None => return Err(format!("invalid GID or group name in `{id}`")),
                    };
                    (uid, Some(group))
                }
                None => (id.as_str(), None),
            };
            let uid = if uid == "-" {
                IdSpec::Auto
            } else {
                IdSpec::Id(parse_id(uid).ok_or_else(|| format!("invalid UID in `{id}`"))?)
            };
            (uid, group)
        }
    })
}

/// systemd's strict user/group name rule (sysusers.d(5), "Name").
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= NAME_MAX {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid user or group name"))
    }
}

/// A decimal UID/GID, refusing the reserved 65535 and 4294967295.
fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>()
        .ok()
        .filter(|&id| id != 65535 && id != u32::MAX)
}

fn check_path(p: &str, what: &str) -> Result<(), String> {
    let ok = p.starts_with('/')
        && !p.chars().any(char::is_control)
        && !p.contains(':')
        && !p.split('/').any(|c| c == "..");
    if ok {
        Ok(())
    } else {
        Err(format!("`{p}` is not a valid {what} field"))
    }
}

/// Drop `//`, `/./` and trailing slashes, as systemd's `path_simplify()`
/// does (`..` is kept, for the caller to refuse).
fn simplify_path(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// `%%` becomes `%`; any other specifier needs the running system.
fn resolve_specifiers(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(x) => {
                return Err(format!(
                    "specifier `%{x}` in `{s}` depends on the running system and is not supported"
                ));
            }
            None => return Err(format!("lone `%` at the end of `{s}`")),
        }
    }
    Ok(out)
}

/// Fields as `extract_first_word(..., EXTRACT_UNQUOTE)` splits them.
fn split_fields(l: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = l.chars().peekable();
    loop {
        while chars.next_if(|c| WS.contains(c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if WS.contains(&c) => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => match chars.next() {
                    Some(next) => word.push(next),
                    None => return Err("trailing backslash".to_string()),
                },
                (_, c) => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("missing closing {q}"));
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;
    use std::process::{Command, Output};

    fn user(name: &str) -> SysUser {
        SysUser {
            name: name.to_string(),
            ..SysUser::default()
        }
    }

    fn group(name: &str, gid: Option<u32>, members: &[&str]) -> SysGroup {
        SysGroup {
            name: name.to_string(),
            gid,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn render_ok(users: &[SysUser], groups: &[SysGroup]) -> String {
        render(users, groups).unwrap_or_else(|e| panic!("render failed: {e}"))
    }

    fn parse_ok(text: &str) -> Vec<SysusersLine> {
        parse(text).unwrap_or_else(|e| panic!("parse failed: {e}"))
    }

    fn parse_err(text: &str) -> ParseError {
        match parse(text) {
            Err(e) => e,
            Ok(l) => panic!("expected an error for {text:?}, got {l:?}"),
        }
    }

    fn sample() -> (Vec<SysUser>, Vec<SysGroup>) {
        let users = vec![
            SysUser {
                name: "ingotweb".to_string(),
                uid: Some(4711),
                group: Some("ingotweb".to_string()),
                gecos: Some("Ingot web 100% daemon".to_string()),
                home: Some("/var/lib/ingot web".to_string()),
                shell: Some("/usr/sbin/nologin".to_string()),
            },
            SysUser {
                name: "ingotjob".to_string(),
                group: Some("ingotshare".to_string()),
                ..SysUser::default()
            },
            user("ingotplain"),
        ];
        let groups = vec![
            group("ingotweb", Some(4711), &[]),
            group("ingotshare", None, &["ingotweb", "ingotplain"]),
        ];
        (users, groups)
    }

    #[test]
    fn render_writes_groups_then_users_then_members() {
        let (users, groups) = sample();
        assert_eq!(
            render_ok(&users, &groups),
            "g ingotweb 4711\n\
             g ingotshare -\n\
             u ingotweb 4711:ingotweb \"Ingot web 100%% daemon\" \"/var/lib/ingot web\" /usr/sbin/nologin\n\
             u ingotjob -:ingotshare\n\
             u ingotplain -\n\
             m ingotweb ingotshare\n\
             m ingotplain ingotshare\n"
        );
    }

    #[test]
    fn render_keeps_dash_placeholders_before_a_later_field() {
        let u = SysUser {
            shell: Some("/bin/sh".to_string()),
            ..user("ab")
        };
        assert_eq!(render_ok(&[u], &[]), "u ab - - - /bin/sh\n");
    }

    #[test]
    fn own_group_without_a_g_line_is_left_to_u() {
        // systemd-sysusers refuses `u web -:web` when no group `web` exists.
        let u = SysUser {
            group: Some("web".to_string()),
            uid: Some(900),
            ..user("web")
        };
        assert_eq!(render_ok(std::slice::from_ref(&u), &[]), "u web 900\n");
        let with_group = render_ok(&[u], &[group("web", Some(901), &[])]);
        assert!(with_group.contains("u web 900:web\n"), "{with_group}");
    }

    #[test]
    fn render_refuses_invalid_names() {
        for bad in [
            "",
            "Web",
            "1web",
            "-web",
            "web$",
            "we b",
            "wéb",
            &"a".repeat(32),
        ] {
            assert!(render(&[user(bad)], &[]).is_err(), "user {bad:?} accepted");
            assert!(
                render(&[], &[group(bad, None, &[])]).is_err(),
                "group {bad:?} accepted"
            );
            assert!(
                render(&[], &[group("g", None, &[bad])]).is_err(),
                "member {bad:?} accepted"
            );
        }
        assert!(render(&[user(&"a".repeat(31))], &[]).is_ok());
        assert!(render(&[user("_a-1")], &[]).is_ok());
    }

    #[test]
    fn render_refuses_duplicates_and_reserved_ids() {
        assert!(render(&[user("a"), user("a")], &[]).is_err());
        assert!(render(&[], &[group("a", None, &[]), group("a", None, &[])]).is_err());
        assert!(render(&[], &[group("a", None, &["b", "b"])]).is_err());
        for id in [65535, u32::MAX] {
            let u = SysUser {
                uid: Some(id),
                ..user("a")
            };
            assert!(render(&[u], &[]).is_err(), "uid {id}");
            assert!(
                render(&[], &[group("a", Some(id), &[])]).is_err(),
                "gid {id}"
            );
        }
    }

    #[test]
    fn render_refuses_fields_sysusers_cannot_carry() {
        for gecos in ["a:b", "say \"hi\"", "back\\slash", "tab\there", "-"] {
            let u = SysUser {
                gecos: Some(gecos.to_string()),
                ..user("a")
            };
            assert!(render(&[u], &[]).is_err(), "gecos {gecos:?} accepted");
        }
        for home in [
            "relative", "/a//b", "/a/./b", "/a/../b", "/a/", "/a:b", "/a\"b",
        ] {
            let u = SysUser {
                home: Some(home.to_string()),
                ..user("a")
            };
            assert!(render(&[u], &[]).is_err(), "home {home:?} accepted");
            let u = SysUser {
                shell: Some(home.to_string()),
                ..user("a")
            };
            assert!(render(&[u], &[]).is_err(), "shell {home:?} accepted");
        }
        let u = SysUser {
            gecos: Some(String::new()),
            home: Some("/".to_string()),
            ..user("a")
        };
        assert_eq!(render_ok(&[u], &[]), "u a - - /\n");
    }

    #[test]
    fn render_then_parse_round_trips() {
        let (users, groups) = sample();
        let parsed = parse_ok(&render_ok(&users, &groups));
        let mut back_users = Vec::new();
        let mut back_groups: Vec<SysGroup> = Vec::new();
        for l in parsed {
            match l.entry {
                SysusersEntry::Group { name, gid } => back_groups.push(SysGroup {
                    name,
                    gid: match gid {
                        IdSpec::Id(g) => Some(g),
                        _ => None,
                    },
                    members: vec![],
                }),
                SysusersEntry::User {
                    name,
                    uid,
                    group,
                    gecos,
                    home,
                    shell,
                    locked,
                } => {
                    assert!(!locked);
                    back_users.push(SysUser {
                        name,
                        uid: match uid {
                            IdSpec::Id(u) => Some(u),
                            _ => None,
                        },
                        group: match group {
                            Some(GroupRef::Name(g)) => Some(g),
                            None => None,
                            Some(other) => panic!("unexpected group {other:?}"),
                        },
                        gecos,
                        home,
                        shell,
                    });
                }
                SysusersEntry::Member { user, group } => {
                    let g = back_groups.iter_mut().find(|g| g.name == group);
                    g.unwrap_or_else(|| panic!("member of unknown {group}"))
                        .members
                        .push(user);
                }
                SysusersEntry::Range { .. } => panic!("render wrote a range"),
            }
        }
        assert_eq!(back_users, users);
        assert_eq!(back_groups, groups);
    }

    #[test]
    fn parse_reads_every_line_type_with_line_numbers() {
        let text = "# comment\n\n\
                    u  web  4711:4712 \"Web server\" /srv/web /bin/sh\n\
                    u! locked -:share\n\
                    u fromfile /usr/bin/tool\n\
                    g share -\n\
                    g pinned 1234\n\
                    m web share\n\
                    r - 500-900\n\
                    r - 42\n";
        let lines = parse_ok(text);
        let numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
        assert_eq!(numbers, [3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(
            lines[0].entry,
            SysusersEntry::User {
                name: "web".to_string(),
                uid: IdSpec::Id(4711),
                group: Some(GroupRef::Gid(4712)),
                gecos: Some("Web server".to_string()),
                home: Some("/srv/web".to_string()),
                shell: Some("/bin/sh".to_string()),
                locked: false,
            }
        );
        assert!(matches!(
            &lines[1].entry,
            SysusersEntry::User { uid: IdSpec::Auto, group: Some(GroupRef::Name(g)), locked: true, .. } if g == "share"
        ));
        assert!(matches!(
            &lines[2].entry,
            SysusersEntry::User { uid: IdSpec::FromPath(p), group: None, .. } if p == "/usr/bin/tool"
        ));
        assert_eq!(
            lines[3].entry,
            SysusersEntry::Group {
                name: "share".to_string(),
                gid: IdSpec::Auto
            }
        );
        assert_eq!(
            lines[4].entry,
            SysusersEntry::Group {
                name: "pinned".to_string(),
                gid: IdSpec::Id(1234)
            }
        );
        assert_eq!(
            lines[5].entry,
            SysusersEntry::Member {
                user: "web".to_string(),
                group: "share".to_string()
            }
        );
        assert_eq!(
            lines[6].entry,
            SysusersEntry::Range {
                first: 500,
                last: 900
            }
        );
        assert_eq!(
            lines[7].entry,
            SysusersEntry::Range {
                first: 42,
                last: 42
            }
        );
    }

    #[test]
    fn parse_unquotes_like_systemd() {
        let lines = parse_ok(
            "u ab11 - \"\"x\"y\"\nu ab12 - 'single q' \"/a b\"\nu ab13 - x\\ y\nu ab14 - \"\" - -\n",
        );
        let gecos: Vec<Option<&str>> = lines
            .iter()
            .map(|l| match &l.entry {
                SysusersEntry::User { gecos, .. } => gecos.as_deref(),
                _ => None,
            })
            .collect();
        assert_eq!(gecos, [Some("xy"), Some("single q"), Some("x y"), None]);
        assert!(
            matches!(&lines[1].entry, SysusersEntry::User { home: Some(h), .. } if h == "/a b")
        );
    }

    #[test]
    fn parse_simplifies_paths_and_resolves_double_percent() {
        let lines = parse_ok("u a - \"100%%\" /home//x/ /bin/./sh/\n");
        assert_eq!(
            lines[0].entry,
            SysusersEntry::User {
                name: "a".to_string(),
                uid: IdSpec::Auto,
                group: None,
                gecos: Some("100%".to_string()),
                home: Some("/home/x".to_string()),
                shell: Some("/bin/sh".to_string()),
                locked: false,
            }
        );
    }

    #[test]
    fn parse_refuses_what_systemd_refuses() {
        for (text, needle) in [
            ("u a$ -", "not a valid user"),
            ("u 'q r' -", "not a valid user"),
            ("u a23456789012345678901234567890123 -", "not a valid user"),
            ("u ab5 - \"x\" /a /b extra", "trailing garbage"),
            ("u ab - \"p:q\"", "GECOS"),
            ("u ab - - /home/../x", "home directory"),
            ("u ab - - rel", "home directory"),
            ("u ab -:1x", "GID"),
            ("u ab 12:", "GID"),
            ("u ab 65535", "UID"),
            ("u", "missing action"),
            ("x ab -", "unknown line type"),
            ("u!! ab -", "modifiers"),
            ("g! ab -", "not allowed"),
            ("g gg 65535", "GID"),
            ("g g3 - \"x\"", "GECOS"),
            ("m ab5", "group name"),
            ("m - grp", "user name"),
            ("r - 500-400", "range"),
            ("r x 500", "name field"),
            ("r -", "ID range"),
            ("u ab - \"open", "closing"),
            ("u ab - %H", "specifier"),
        ] {
            let e = parse_err(&format!("# c\n{text}\n"));
            assert_eq!(e.line, 2, "{text}");
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
    }

    #[test]
    fn parse_error_displays_the_line() {
        let e = parse_err("\n\nq x\n");
        assert_eq!(e.to_string(), "line 3: unknown line type `q`");
    }

    // --- judged by the real systemd-sysusers, in a scratch root -----------

    fn scratch_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::create_dir(root.path().join("etc")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        for f in ["passwd", "group", "shadow", "gshadow"] {
            std::fs::write(root.path().join("etc").join(f), "")
                .unwrap_or_else(|e| panic!("seed {f}: {e}"));
        }
        root
    }

    fn sysusers(tool: &Path, root: &Path, text: &str) -> Output {
        let conf = root.join("input.conf");
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("write: {e}"));
        Command::new(tool)
            .arg(format!("--root={}", root.display()))
            .arg(&conf)
            .output()
            .unwrap_or_else(|e| panic!("running systemd-sysusers: {e}"))
    }

    #[test]
    fn real_systemd_sysusers_creates_the_rendered_accounts() {
        let Some(tool) = crate::testutil::judge("systemd-sysusers") else {
            return;
        };
        let root = scratch_root();
        let (users, groups) = sample();
        let out = sysusers(&tool, root.path(), &render_ok(&users, &groups));
        assert!(
            out.status.success(),
            "systemd-sysusers refused the file: {out:?}"
        );
        let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap_or_default();
        let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap_or_default();
        assert!(
            passwd.lines().any(|l| l == "ingotweb:x:4711:4711:Ingot web 100% daemon:/var/lib/ingot web:/usr/sbin/nologin"),
            "{passwd}"
        );
        let share_gid = group
            .lines()
            .find_map(|l| l.strip_prefix("ingotshare:x:"))
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("no ingotshare group in {group}"));
        assert!(
            passwd
                .lines()
                .any(|l| l.starts_with("ingotjob:x:") && l.split(':').nth(3) == Some(share_gid)),
            "ingotjob's primary group is not ingotshare:\n{passwd}\n{group}"
        );
        assert!(
            passwd.lines().any(|l| l.starts_with("ingotplain:x:")),
            "{passwd}"
        );
        assert!(
            group.lines().any(|l| l.starts_with("ingotweb:x:4711:")),
            "{group}"
        );
        let members = group
            .lines()
            .find(|l| l.starts_with("ingotshare:"))
            .and_then(|l| l.rsplit(':').next())
            .unwrap_or_default();
        let mut members: Vec<&str> = members.split(',').collect();
        members.sort_unstable();
        assert_eq!(members, ["ingotplain", "ingotweb"], "{group}");
    }

    #[test]
    fn parse_and_real_systemd_sysusers_agree_on_each_line() {
        let Some(tool) = crate::testutil::judge("systemd-sysusers") else {
            return;
        };
        // Lines whose meaning needs the running system (specifiers, path
        // IDs) or a newer systemd (`u!`) are left out.
        for line in [
            "u Upper -",
            "u a$ -",
            "u ab - \"\" - -",
            "u ab2 - - /home//x/",
            "u ab3 - - /home/../x",
            "u ab4 - - /x /bin/sh/",
            "u 'q r' -",
            "u ab5 - \"x\" /a /b extra",
            "u ab6 - \"p:q\"",
            "u ab7 \"1001\"",
            "u ab8 -:1x",
            "u ab9 12:",
            "u ab10 - \"%%\"",
            "u ab11 - \"\"x\"y\"",
            "u ab12 - - ./rel",
            "u a23456789012345678901234567890123 -",
            "u ab13 - - /a/./b",
            "u ab14 65535",
            "u ab15 1002:1003",
            "u ab16 - \"open",
            "x ab17 -",
            "r - 500-400",
            "r - 500-600",
            "r x 500",
            "g gg 65535",
            "g gg2 4294967294",
            "g gg3 - \"x\"",
            "m ab5",
            "m ab18 gg4",
        ] {
            let root = scratch_root();
            let out = sysusers(&tool, root.path(), &format!("{line}\n"));
            let ours = parse(line).is_ok();
            assert_eq!(
                out.status.success(),
                ours,
                "{line:?}: systemd-sysusers {} it, parse() {} it\n{}",
                if out.status.success() {
                    "accepts"
                } else {
                    "refuses"
                },
                if ours { "accepts" } else { "refuses" },
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
