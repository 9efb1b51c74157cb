//! Create the system accounts that sysusers.d files declare, in the text
//! of `/etc/passwd`, `/etc/group`, `/etc/shadow` and `/etc/gshadow`, as
//! `systemd-sysusers --root=DIR` of systemd 252 (what Amazon Linux 2023
//! and Debian 12 ship) would.
//!
//! In ([`Request`]): the current text of the four files (each may be
//! absent); the sysusers.d files as (file name, text) pairs, already in the
//! order systemd-sysusers reads them (see [`order_config_files`]: sorted by
//! file name across `/etc/sysusers.d`, `/run/sysusers.d`,
//! `/usr/local/lib/sysusers.d` and `/usr/lib/sysusers.d`, a file in an
//! earlier directory replacing a same-named one in a later directory, an
//! empty file or one linked to `/dev/null` masking it); the day to write
//! as "last password change" (days since the epoch, from the source date,
//! see [`day_from_epoch`]); how systemd-sysusers was built
//! ([`SysusersBuild`]) and the root's `/etc/login.defs`, which together set
//! the range IDs are allocated from.
//!
//! Out ([`Outcome`]): the new text of the four files (a file that
//! systemd-sysusers would not rewrite is returned unchanged, byte for
//! byte), the old text of every file it replaced (it keeps them as
//! `passwd-`, `group-`, `shadow-`, `gshadow-`), the users and groups
//! created with their IDs (sorted by name), warnings (lines skipped,
//! conflicting duplicates), and the accounts it would fail to create.
//!
//! It never touches the filesystem, never reads the clock, never changes
//! or removes an existing account (it only adds what is missing, and adds
//! members to groups), never hashes passwords, and never reads credentials
//! (`passwd.shell.*`, `passwd.hashed-password.*`, `sysusers.extra`). It
//! does not write `/etc/.pwd.lock`, the empty lock file systemd-sysusers
//! leaves behind. File modes are the caller's: systemd-sysusers keeps the
//! mode of a file it rewrites and creates a missing one with
//! [`new_file_mode`].
//!
//! Rules followed, read from systemd 252's `src/sysusers/sysusers.c` and
//! sysusers.d(5):
//! - lines: files in the order given, lines in file order; a line
//!   systemd-sysusers refuses is skipped with a warning ([`sysusers::parse`]
//!   decides), as is `u!` (only systemd 257 understands it); the first
//!   `u` or `g` line for a name wins, later ones are ignored (with a
//!   warning when they differ); `m` lines collect members per group, each
//!   once; `r` lines form the allocation range, replacing the default one;
//! - implicit items: a member of an `m` line that no `u` line declares is
//!   created as a user, and a group of an `m` line that no `u` or `g` line
//!   names is created as a group;
//! - order: all groups first (in order of appearance, implicit ones last),
//!   then all users (likewise); a user without `UID:GID`/`UID:GROUP` gets
//!   the group of its own name: the one a `g` line just created, an
//!   existing one, or a new one, preferring the UID as GID;
//! - existing accounts: a name already in `/etc/passwd` or `/etc/group` is
//!   left as it is; only `/etc/passwd` and `/etc/group` are looked at to
//!   find names and IDs (with `--root`, NSS is not consulted);
//! - IDs: a requested ID is taken if free; otherwise (and for `-`) the
//!   user reuses its group's GID, the group its user's UID, when free;
//!   otherwise IDs are searched downwards from the top of the range. One
//!   search position is shared by users and groups and only ever goes down.
//!   A UID counts as used when `/etc/passwd` or a user created in this run
//!   has it, and also (except for the requested UID of a user whose group
//!   is given on its line or comes from a `g` or `m` line) when a group of
//!   another name, existing or created, has it as GID; the same the other way round for GIDs (a requested GID
//!   of a `g` line only has to be free as a GID); the GID of `UID:GID` must
//!   exist already (systemd: "please create GID");
//! - range: `r` lines if any; else `SYS_UID_MIN` up to the least of the
//!   built-in maximum, `SYS_UID_MAX` and `SYS_GID_MAX` (from
//!   `/etc/login.defs` only for a build with
//!   `-Dcompat-mutable-uid-boundaries=true`, like Fedora's and so Amazon
//!   Linux 2023's);
//! - files, as glibc reads and writes them (`fgetpwent`/`putpwent` and the
//!   like): a file that changes is read entry by entry and written back, so
//!   comment and blank lines go and short lines get their empty fields; new
//!   entries are appended after the existing ones (before the first NIS
//!   `+`/`-` entry, if any); a group that gains members gets its member
//!   list de-duplicated and sorted; new users get `x` as password, `/` as
//!   home unless given, `/usr/sbin/nologin` as shell unless given (root:
//!   `/bin/bash` if the root has it, else `/bin/sh`); new shadow entries
//!   are `NAME:!*:DAY::::::`, new gshadow entries `NAME:!*::MEMBERS`; a
//!   shadow entry that already exists for a new user keeps everything but
//!   gets the new day. `/etc/group` and `/etc/gshadow` are only rewritten
//!   when something in them changes; `/etc/passwd` and `/etc/shadow`
//!   whenever a user is created.
//!
//! Where this differs from systemd-sysusers, on purpose:
//! - an entry glibc cannot read (say a non-numeric UID) is an error here;
//!   systemd-sysusers would silently drop it from the file it rewrites;
//! - an ID taken from a path (`u NAME /path`) needs the owners of such
//!   paths from the caller ([`Request::path_owners`]); without them it is
//!   an error;
//! - `%` specifiers other than `%%` describe the running system and are
//!   not resolved: such a line is skipped with a warning;
//! - two item paths naming the same shell through symlinks count as
//!   different (only a warning depends on it).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::sysusers::{self, GroupRef, IdSpec, SysusersEntry};

/// The sysusers.d directories, most important first (systemd's
/// `CONF_PATHS("sysusers.d")` on a merged-/usr system).
pub const SYSUSERS_DIRS: [&str; 4] = [
    "/etc/sysusers.d",
    "/run/sysusers.d",
    "/usr/local/lib/sysusers.d",
    "/usr/lib/sysusers.d",
];

/// The shell systemd-sysusers gives a new user that names none.
pub const NOLOGIN: &str = "/usr/sbin/nologin";

/// The password field of a new `/etc/passwd` and `/etc/group` entry.
const PASSWORD_SEE_SHADOW: &str = "x";
/// The password field of a new `/etc/shadow` and `/etc/gshadow` entry.
const PASSWORD_LOCKED_AND_INVALID: &str = "!*";

/// The text of the four account files; `None` for a file that is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFiles {
    pub passwd: Option<String>,
    pub group: Option<String>,
    pub shadow: Option<String>,
    pub gshadow: Option<String>,
}

/// One of the four account files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountFile {
    Passwd,
    Group,
    Shadow,
    Gshadow,
}

impl AccountFile {
    pub const ALL: [AccountFile; 4] = [
        AccountFile::Passwd,
        AccountFile::Group,
        AccountFile::Shadow,
        AccountFile::Gshadow,
    ];

    /// The path in the root, e.g. `/etc/passwd`.
    pub fn path(self) -> &'static str {
        match self {
            AccountFile::Passwd => "/etc/passwd",
            AccountFile::Group => "/etc/group",
            AccountFile::Shadow => "/etc/shadow",
            AccountFile::Gshadow => "/etc/gshadow",
        }
    }

    /// Where systemd-sysusers keeps the old text, e.g. `/etc/passwd-`.
    pub fn backup_path(self) -> String {
        format!("{}-", self.path())
    }
}

impl AccountFiles {
    /// The text of one file.
    pub fn get(&self, file: AccountFile) -> Option<&str> {
        match file {
            AccountFile::Passwd => self.passwd.as_deref(),
            AccountFile::Group => self.group.as_deref(),
            AccountFile::Shadow => self.shadow.as_deref(),
            AccountFile::Gshadow => self.gshadow.as_deref(),
        }
    }

    fn set(&mut self, file: AccountFile, text: Option<String>) {
        match file {
            AccountFile::Passwd => self.passwd = text,
            AccountFile::Group => self.group = text,
            AccountFile::Shadow => self.shadow = text,
            AccountFile::Gshadow => self.gshadow = text,
        }
    }
}

/// The mode systemd-sysusers gives a file it creates: 0644 for
/// `/etc/passwd` and `/etc/group`, 0000 for `/etc/shadow` and
/// `/etc/gshadow`. A file it rewrites keeps its mode (and owner).
pub fn new_file_mode(file: AccountFile) -> u32 {
    match file {
        AccountFile::Passwd | AccountFile::Group => 0o644,
        AccountFile::Shadow | AccountFile::Gshadow => 0o000,
    }
}

/// The day number systemd-sysusers writes as "last password change" for a
/// time in seconds since the epoch (it takes `SOURCE_DATE_EPOCH` when set).
pub fn day_from_epoch(seconds: u64) -> i64 {
    i64::try_from(seconds / 86_400).unwrap_or(i64::MAX)
}

/// System ID boundaries, as login.defs(5) names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundaries {
    /// `SYS_UID_MIN`: the lowest ID handed out.
    pub system_alloc_uid_min: u32,
    /// `SYS_UID_MAX`.
    pub system_uid_max: u32,
    /// `SYS_GID_MIN` (systemd-sysusers 252 reads it but allocates from
    /// `SYS_UID_MIN` for groups too).
    pub system_alloc_gid_min: u32,
    /// `SYS_GID_MAX`.
    pub system_gid_max: u32,
}

/// How a systemd-sysusers binary was built, as far as allocation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysusersBuild {
    /// The compiled-in boundaries (meson's `system-alloc-uid-min`,
    /// `system-uid-max`, ...; by default taken from the build host's
    /// `/etc/login.defs`).
    pub builtin: Boundaries,
    /// Built with `-Dcompat-mutable-uid-boundaries=true`: the root's
    /// `/etc/login.defs` overrides the compiled-in boundaries.
    pub reads_login_defs: bool,
}

impl SysusersBuild {
    /// Amazon Linux 2023's systemd 252, built from Fedora's spec:
    /// `-Dcompat-mutable-uid-boundaries=true`, boundaries from a Fedora
    /// `login.defs` (`SYS_UID_MIN 201`, `SYS_UID_MAX 999`). With the root's
    /// `/etc/login.defs` given, that file decides.
    pub const AMAZON_LINUX_2023: SysusersBuild = SysusersBuild {
        builtin: Boundaries {
            system_alloc_uid_min: 201,
            system_uid_max: 999,
            system_alloc_gid_min: 201,
            system_gid_max: 999,
        },
        reads_login_defs: true,
    };

    /// Debian 12's systemd 252: `/etc/login.defs` is not read, IDs come
    /// from 1 to 999 (checked against the real tool by the tests).
    pub const DEBIAN_12: SysusersBuild = SysusersBuild {
        builtin: Boundaries {
            system_alloc_uid_min: 1,
            system_uid_max: 999,
            system_alloc_gid_min: 1,
            system_gid_max: 999,
        },
        reads_login_defs: false,
    };

    /// The boundaries in effect: the built-in ones, overridden by the
    /// `SYS_UID_MIN`, `SYS_UID_MAX`, `SYS_GID_MIN`, `SYS_GID_MAX` lines of
    /// `login_defs` when this build reads it (a line must start with the
    /// key; a value that is not a plain decimal ID is ignored; 0 counts as
    /// 1; a minimum above its maximum is reset).
    pub fn boundaries(&self, login_defs: Option<&str>) -> Boundaries {
        let mut defs = self.builtin;
        let Some(text) = login_defs.filter(|_| self.reads_login_defs) else {
            return defs;
        };
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let keys: [(&str, &mut u32); 4] = [
                ("SYS_UID_MIN", &mut defs.system_alloc_uid_min),
                ("SYS_UID_MAX", &mut defs.system_uid_max),
                ("SYS_GID_MIN", &mut defs.system_alloc_gid_min),
                ("SYS_GID_MAX", &mut defs.system_gid_max),
            ];
            for (key, slot) in keys {
                if let Some(value) = first_word(line, key) {
                    if let Some(id) = parse_uid_strict(value) {
                        *slot = id.max(1);
                    }
                    break;
                }
            }
        }
        if defs.system_alloc_uid_min > defs.system_uid_max {
            defs.system_alloc_uid_min = defs
                .system_uid_max
                .saturating_sub(1)
                .min(self.builtin.system_alloc_uid_min);
        }
        if defs.system_alloc_gid_min > defs.system_gid_max {
            defs.system_alloc_gid_min = defs
                .system_gid_max
                .saturating_sub(1)
                .min(self.builtin.system_alloc_gid_min);
        }
        defs
    }

    /// The range IDs are allocated from when no `r` line gives one:
    /// `SYS_UID_MIN` up to the least of the built-in `SYS_UID_MAX` and the
    /// effective `SYS_UID_MAX` and `SYS_GID_MAX`, inclusive. `None` when
    /// that is empty (systemd-sysusers then has no range at all).
    pub fn allocation_range(&self, login_defs: Option<&str>) -> Option<(u32, u32)> {
        let defs = self.boundaries(login_defs);
        let begin = defs.system_alloc_uid_min;
        let end = self
            .builtin
            .system_uid_max
            .min(defs.system_uid_max)
            .min(defs.system_gid_max);
        (begin < end).then_some((begin, end))
    }
}

/// systemd's `first_word()`: `line` starts with `word`, then whitespace or
/// the end; returns what follows the whitespace.
fn first_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(rest);
    }
    if !rest.starts_with([' ', '\t', '\n', '\r']) {
        return None;
    }
    Some(rest.trim_start_matches([' ', '\t', '\n', '\r']))
}

/// systemd's `parse_uid()`: decimal, no sign, no leading zero, no
/// whitespace; 65535 and 4294967295 are not IDs.
fn parse_uid_strict(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse::<u32>()
        .ok()
        .filter(|&id| id != 65535 && id != u32::MAX)
}

/// What to apply, and to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The current account files.
    pub files: AccountFiles,
    /// The sysusers.d files as (file name, text), in the order
    /// systemd-sysusers reads them ([`order_config_files`]).
    pub config: Vec<(String, String)>,
    /// The "last password change" day for new shadow entries
    /// ([`day_from_epoch`] of the source date).
    pub last_change_day: i64,
    /// How the systemd-sysusers being imitated was built.
    pub build: SysusersBuild,
    /// The root's `/etc/login.defs`, if it has one.
    pub login_defs: Option<String>,
    /// Whether the root has `/bin/bash` (symlinks followed): the shell a
    /// new user with UID 0 gets, else `/bin/sh`.
    pub bin_bash_exists: bool,
    /// For IDs taken from a path: path in the root -> (owner UID, owner
    /// GID) of what it names, symlinks followed; a path missing from the
    /// map does not exist. `None`: lines with a path ID are an error.
    pub path_owners: Option<BTreeMap<String, (u32, u32)>>,
}

impl Request {
    /// A request for an Amazon Linux 2023 root with `/bin/bash`, without
    /// `/etc/login.defs` and without path owners; set the other fields to
    /// change that.
    pub fn new(files: AccountFiles, config: Vec<(String, String)>, last_change_day: i64) -> Self {
        Request {
            files,
            config,
            last_change_day,
            build: SysusersBuild::AMAZON_LINUX_2023,
            login_defs: None,
            bin_bash_exists: true,
            path_owners: None,
        }
    }
}

/// A user that was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedUser {
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
}

/// What applying sysusers.d gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The new text of the four files (unchanged ones as given).
    pub files: AccountFiles,
    /// The files systemd-sysusers rewrote.
    pub written: BTreeSet<AccountFile>,
    /// The old text of each rewritten file that existed: systemd-sysusers
    /// keeps it as [`AccountFile::backup_path`].
    pub backups: AccountFiles,
    /// Users created, by name.
    pub users: BTreeMap<String, CreatedUser>,
    /// Groups created, by name, with their GID.
    pub groups: BTreeMap<String, u32>,
    /// Lines skipped and conflicting duplicates, as systemd-sysusers warns.
    pub warnings: Vec<String>,
    /// Accounts systemd-sysusers would fail to create (it reports them and
    /// goes on with the others): a missing group, a GID that must exist,
    /// no free ID. [`apply`] makes these an error.
    pub failures: Vec<String>,
}

/// Why the accounts could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct AccountsError {
    pub message: String,
}

fn error(message: impl Into<String>) -> AccountsError {
    AccountsError {
        message: message.into(),
    }
}

/// Order sysusers.d files as systemd-sysusers reads them. Takes
/// (directory, file name, text) for every file found in
/// [`SYSUSERS_DIRS`]; `None` as text is a symlink to `/dev/null`. Files
/// not ending in `.conf` are left out; for a name found in several
/// directories the most important one wins; an empty or `/dev/null` file
/// masks the name. Returns (file name, text) sorted by file name.
pub fn order_config_files<I, D, N, T>(files: I) -> Result<Vec<(String, String)>, AccountsError>
where
    I: IntoIterator<Item = (D, N, Option<T>)>,
    D: AsRef<str>,
    N: AsRef<str>,
    T: AsRef<str>,
{
    let mut best: BTreeMap<String, (usize, Option<String>)> = BTreeMap::new();
    for (dir, name, text) in files {
        let dir = dir.as_ref().trim_end_matches('/');
        let name = name.as_ref();
        let Some(rank) = SYSUSERS_DIRS.iter().position(|d| *d == dir) else {
            return Err(error(format!(
                "`{dir}` is not a sysusers.d directory (expected one of {})",
                SYSUSERS_DIRS.join(", ")
            )));
        };
        if name.contains('/') || !name.ends_with(".conf") {
            continue;
        }
        let text = text.map(|t| t.as_ref().to_string());
        match best.get(name) {
            Some((r, _)) if *r <= rank => {}
            _ => {
                best.insert(name.to_string(), (rank, text));
            }
        }
    }
    Ok(best
        .into_iter()
        .filter_map(|(name, (_, text))| text.filter(|t| !t.is_empty()).map(|t| (name, t)))
        .collect())
}

/// Apply the sysusers.d files to the account files. Any account
/// systemd-sysusers would fail to create is an error (see
/// [`apply_lenient`] to get them as [`Outcome::failures`] instead).
pub fn apply(request: &Request) -> Result<Outcome, AccountsError> {
    let outcome = apply_lenient(request)?;
    if !outcome.failures.is_empty() {
        return Err(error(outcome.failures.join("; ")));
    }
    Ok(outcome)
}

/// Apply the sysusers.d files as systemd-sysusers does, going on past an
/// account it cannot create (listed in [`Outcome::failures`]). Errors: an
/// entry of an account file glibc cannot read, a path ID without
/// [`Request::path_owners`], and the collisions systemd-sysusers refuses to
/// write.
pub fn apply_lenient(request: &Request) -> Result<Outcome, AccountsError> {
    let mut sim = Sim::new(request);
    sim.read_config()?;
    if sim.uid_range.is_none()
        && let Some((begin, end)) = request
            .build
            .allocation_range(request.login_defs.as_deref())
    {
        sim.uid_range = Some(vec![(begin, u64::from(end - begin) + 1)]);
    }
    sim.add_implicit();
    sim.load_databases()?;
    for idx in 0..sim.groups.len() {
        sim.process_group(idx);
    }
    for idx in 0..sim.users.len() {
        sim.process_user(idx);
    }
    sim.write_files()
}

// ---------------------------------------------------------------------------
// The items of the sysusers.d files

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    kind: Kind,
    name: String,
    group_name: Option<String>,
    uid_path: Option<String>,
    gid_path: Option<String>,
    description: Option<String>,
    home: Option<String>,
    shell: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    /// The GID came from the line (`UID:GID`) or from a named group: it
    /// must exist, and the UID need not avoid other groups' GIDs.
    id_set_strict: bool,
    todo_user: bool,
    todo_group: bool,
}

impl Item {
    fn new(kind: Kind, name: &str) -> Self {
        Item {
            kind,
            name: name.to_string(),
            group_name: None,
            uid_path: None,
            gid_path: None,
            description: None,
            home: None,
            shell: None,
            uid: None,
            gid: None,
            id_set_strict: false,
            todo_user: false,
            todo_group: false,
        }
    }
}

/// Which item: index into the users or the groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemRef {
    User(usize),
    Group(usize),
}

/// Names and IDs of the existing accounts (the first entry wins).
#[derive(Debug, Default)]
struct Db {
    uid_to_name: BTreeMap<u32, String>,
    user_to_uid: BTreeMap<String, u32>,
    gid_to_name: BTreeMap<u32, String>,
    group_to_gid: BTreeMap<String, u32>,
}

/// Ordered map of IDs to items, as systemd's `todo_uids`/`todo_gids`.
#[derive(Debug, Default)]
struct Todo {
    order: Vec<u32>,
    by_id: BTreeMap<u32, ItemRef>,
}

impl Todo {
    fn get(&self, id: u32) -> Option<ItemRef> {
        self.by_id.get(&id).copied()
    }

    fn insert(&mut self, id: u32, item: ItemRef) -> bool {
        if self.by_id.contains_key(&id) {
            return false;
        }
        self.by_id.insert(id, item);
        self.order.push(id);
        true
    }

    fn remove(&mut self, id: u32) {
        self.by_id.remove(&id);
        self.order.retain(|&x| x != id);
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (u32, ItemRef)> + '_ {
        self.order
            .iter()
            .filter_map(|id| self.by_id.get(id).map(|item| (*id, *item)))
    }
}

struct Sim<'a> {
    request: &'a Request,
    users: Vec<Item>,
    user_index: BTreeMap<String, usize>,
    groups: Vec<Item>,
    group_index: BTreeMap<String, usize>,
    /// group -> members, in order of first appearance.
    members: Vec<(String, Vec<String>)>,
    /// (start, count) entries, sorted and merged.
    uid_range: Option<Vec<(u32, u64)>>,
    search_uid: u32,
    db: Db,
    passwd: Vec<PasswdEntry>,
    group: Vec<GroupEntry>,
    shadow: Vec<ShadowEntry>,
    gshadow: Vec<GshadowEntry>,
    todo_uids: Todo,
    todo_gids: Todo,
    warnings: Vec<String>,
    failures: Vec<String>,
}

impl<'a> Sim<'a> {
    fn new(request: &'a Request) -> Self {
        Sim {
            request,
            users: Vec::new(),
            user_index: BTreeMap::new(),
            groups: Vec::new(),
            group_index: BTreeMap::new(),
            members: Vec::new(),
            uid_range: None,
            search_uid: u32::MAX,
            db: Db::default(),
            passwd: Vec::new(),
            group: Vec::new(),
            shadow: Vec::new(),
            gshadow: Vec::new(),
            todo_uids: Todo::default(),
            todo_gids: Todo::default(),
            warnings: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn item(&self, r: ItemRef) -> &Item {
        match r {
            ItemRef::User(i) => &self.users[i],
            ItemRef::Group(i) => &self.groups[i],
        }
    }

    fn item_mut(&mut self, r: ItemRef) -> &mut Item {
        match r {
            ItemRef::User(i) => &mut self.users[i],
            ItemRef::Group(i) => &mut self.groups[i],
        }
    }

    // --- reading sysusers.d ----------------------------------------------

    fn read_config(&mut self) -> Result<(), AccountsError> {
        for (file, text) in &self.request.config {
            for (index, raw) in text.lines().enumerate() {
                let line = index + 1;
                let parsed = match sysusers::parse(raw) {
                    Ok(parsed) => parsed,
                    Err(e) => {
                        self.warnings
                            .push(format!("{file}:{line}: {}, line skipped", e.message));
                        continue;
                    }
                };
                for l in parsed {
                    self.add_entry(file, line, l.entry)?;
                }
            }
        }
        Ok(())
    }

    fn add_entry(
        &mut self,
        file: &str,
        line: usize,
        entry: SysusersEntry,
    ) -> Result<(), AccountsError> {
        let path_id = |p: &str| -> Result<String, AccountsError> {
            if self.request.path_owners.is_none() {
                return Err(error(format!(
                    "{file}:{line}: the ID `{p}` is taken from a file's owner, which needs \
                     the owners of such paths (path_owners)"
                )));
            }
            Ok(p.to_string())
        };
        let item = match entry {
            SysusersEntry::Range { first, last } => {
                self.add_range(first, u64::from(last - first) + 1);
                return Ok(());
            }
            SysusersEntry::Member { user, group } => {
                match self.members.iter_mut().find(|(g, _)| *g == group) {
                    Some((_, list)) => {
                        if !list.contains(&user) {
                            list.push(user);
                        }
                    }
                    None => self.members.push((group, vec![user])),
                }
                return Ok(());
            }
            SysusersEntry::User {
                name,
                uid,
                group,
                gecos,
                home,
                shell,
                locked,
            } => {
                if locked {
                    self.warnings.push(format!(
                        "{file}:{line}: `u!` needs systemd 257 or later; systemd 252 skips \
                         this line"
                    ));
                    return Ok(());
                }
                let mut item = Item::new(Kind::User, &name);
                match uid {
                    IdSpec::Auto => {}
                    IdSpec::Id(id) => item.uid = Some(id),
                    IdSpec::FromPath(p) => item.uid_path = Some(path_id(&p)?),
                }
                match group {
                    None => {}
                    Some(GroupRef::Gid(gid)) => {
                        item.gid = Some(gid);
                        item.id_set_strict = true;
                    }
                    Some(GroupRef::Name(g)) => item.group_name = Some(g),
                }
                item.description = gecos;
                item.home = home;
                item.shell = shell;
                item
            }
            SysusersEntry::Group { name, gid } => {
                let mut item = Item::new(Kind::Group, &name);
                match gid {
                    IdSpec::Auto => {}
                    IdSpec::Id(id) => item.gid = Some(id),
                    IdSpec::FromPath(p) => item.gid_path = Some(path_id(&p)?),
                }
                item
            }
        };
        let (list, index) = match item.kind {
            Kind::User => (&mut self.users, &mut self.user_index),
            Kind::Group => (&mut self.groups, &mut self.group_index),
        };
        if let Some(&existing) = index.get(&item.name) {
            if !equivalent(&list[existing], &item) {
                let what = match item.kind {
                    Kind::User => "user",
                    Kind::Group => "group",
                };
                self.warnings.push(format!(
                    "{file}:{line}: conflict with earlier configuration for {what} `{}`, line \
                     ignored",
                    item.name
                ));
            }
            return Ok(());
        }
        index.insert(item.name.clone(), list.len());
        list.push(item);
        Ok(())
    }

    /// systemd's `uid_range_add()`: add, sort, merge touching entries.
    fn add_range(&mut self, start: u32, count: u64) {
        let ranges = self.uid_range.get_or_insert_with(Vec::new);
        ranges.push((start, count));
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u64)> = Vec::new();
        for (s, n) in ranges.drain(..) {
            if let Some(last) = merged.last_mut() {
                let last_end = u64::from(last.0) + last.1;
                if u64::from(s) <= last_end {
                    let end = last_end.max(u64::from(s) + n);
                    last.1 = end - u64::from(last.0);
                    continue;
                }
            }
            merged.push((s, n));
        }
        *ranges = merged;
    }

    fn range_contains(&self, id: u32) -> bool {
        self.uid_range.as_ref().is_some_and(|r| {
            r.iter()
                .any(|&(s, n)| u64::from(id) >= u64::from(s) && u64::from(id) < u64::from(s) + n)
        })
    }

    /// systemd's `uid_range_next_lower()`.
    fn next_lower(&mut self) -> bool {
        let Some(ranges) = &self.uid_range else {
            return false;
        };
        if self.search_uid == 0 {
            return false;
        }
        let candidate = u64::from(self.search_uid - 1);
        let mut closest = None;
        for &(s, n) in ranges {
            let begin = u64::from(s);
            let end = begin + n - 1;
            if candidate >= begin && candidate <= end {
                self.search_uid -= 1;
                return true;
            }
            if end < candidate {
                closest = Some(end);
            }
        }
        match closest.and_then(|c| u32::try_from(c).ok()) {
            Some(c) => {
                self.search_uid = c;
                true
            }
            None => false,
        }
    }

    /// Users and groups that `m` lines need but nothing declares.
    fn add_implicit(&mut self) {
        let members = self.members.clone();
        for (group, users) in &members {
            for user in users {
                if !self.user_index.contains_key(user) {
                    self.user_index.insert(user.clone(), self.users.len());
                    self.users.push(Item::new(Kind::User, user));
                }
            }
            if !self.user_index.contains_key(group) && !self.group_index.contains_key(group) {
                self.group_index.insert(group.clone(), self.groups.len());
                self.groups.push(Item::new(Kind::Group, group));
            }
        }
    }

    fn members_of(&self, group: &str) -> Option<&[String]> {
        self.members
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, m)| m.as_slice())
    }

    // --- the existing databases ------------------------------------------

    fn load_databases(&mut self) -> Result<(), AccountsError> {
        let files = &self.request.files;
        self.passwd = parse_file(files.passwd.as_deref(), AccountFile::Passwd, parse_passwd)?;
        self.group = parse_file(files.group.as_deref(), AccountFile::Group, parse_group)?;
        self.shadow = parse_file(files.shadow.as_deref(), AccountFile::Shadow, parse_shadow)?;
        self.gshadow = parse_file(
            files.gshadow.as_deref(),
            AccountFile::Gshadow,
            parse_gshadow,
        )?;
        for e in &self.passwd {
            self.db.user_to_uid.entry(e.name.clone()).or_insert(e.uid);
            self.db
                .uid_to_name
                .entry(e.uid)
                .or_insert_with(|| e.name.clone());
        }
        for e in &self.group {
            self.db.group_to_gid.entry(e.name.clone()).or_insert(e.gid);
            self.db
                .gid_to_name
                .entry(e.gid)
                .or_insert_with(|| e.name.clone());
        }
        Ok(())
    }

    // --- allocation ------------------------------------------------------

    fn uid_is_ok(&self, uid: u32, name: &str, check_with_gid: bool) -> bool {
        if self.todo_uids.get(uid).is_some() {
            return false;
        }
        if check_with_gid
            && let Some(r) = self.todo_gids.get(uid)
            && self.item(r).name != name
        {
            return false;
        }
        if self.db.uid_to_name.contains_key(&uid) {
            return false;
        }
        if check_with_gid
            && let Some(n) = self.db.gid_to_name.get(&uid)
            && n != name
        {
            return false;
        }
        true
    }

    fn gid_is_ok(&self, gid: u32, name: &str, check_with_uid: bool) -> bool {
        if self.todo_gids.get(gid).is_some() {
            return false;
        }
        if check_with_uid
            && let Some(r) = self.todo_uids.get(gid)
            && self.item(r).name != name
        {
            return false;
        }
        if self.db.gid_to_name.contains_key(&gid) {
            return false;
        }
        if check_with_uid
            && let Some(n) = self.db.uid_to_name.get(&gid)
            && n != name
        {
            return false;
        }
        true
    }

    /// systemd's `read_id_from_file()`, with the caller's owners map as
    /// `stat()`.
    fn id_from_file(&self, item: &Item, want_uid: bool, want_gid: bool) -> Option<u32> {
        let owners = self.request.path_owners.as_ref()?;
        let stat = |p: &Option<String>| p.as_ref().and_then(|p| owners.get(p)).copied();
        let mut gid = None;
        if want_gid && let Some((_, g)) = stat(&item.gid_path) {
            gid = Some(g);
        }
        let mut uid = None;
        if (want_uid || (want_gid && gid.is_none()))
            && let Some((u, g)) = stat(&item.uid_path)
        {
            uid = Some(u);
            if want_gid && gid.is_none() {
                gid = Some(g);
            }
        }
        if want_uid && uid.is_none() && item.gid_path.is_some() {
            uid = gid.or_else(|| stat(&item.gid_path).map(|(_, g)| g));
        }
        if want_uid { uid } else { gid }
    }

    fn add_user(&mut self, idx: usize) -> Result<(), String> {
        let name = self.users[idx].name.clone();
        if let Some(&uid) = self.db.user_to_uid.get(&name) {
            self.users[idx].uid = Some(uid);
            return Ok(());
        }
        if let Some(uid) = self.users[idx].uid
            && !self.uid_is_ok(uid, &name, !self.users[idx].id_set_strict)
        {
            self.users[idx].uid = None;
        }
        if self.users[idx].uid.is_none()
            && let Some(c) = self.id_from_file(&self.users[idx], true, false)
            && c > 0
            && self.range_contains(c)
            && self.uid_is_ok(c, &name, true)
        {
            self.users[idx].uid = Some(c);
        }
        if self.users[idx].uid.is_none()
            && let Some(gid) = self.users[idx].gid
            && self.uid_is_ok(gid, &name, true)
        {
            self.users[idx].uid = Some(gid);
        }
        if self.users[idx].uid.is_none() {
            loop {
                if !self.next_lower() {
                    return Err(format!("no free user ID available for {name}"));
                }
                if self.uid_is_ok(self.search_uid, &name, true) {
                    break;
                }
            }
            self.users[idx].uid = Some(self.search_uid);
        }
        let uid = self.users[idx].uid.unwrap_or_default();
        if !self.todo_uids.insert(uid, ItemRef::User(idx)) {
            return Err(format!(
                "user {name} with UID {uid} is duplicated or conflicts with another user"
            ));
        }
        self.users[idx].todo_user = true;
        Ok(())
    }

    fn add_group(&mut self, r: ItemRef) -> Result<(), String> {
        let name = self.item(r).name.clone();
        if let Some(&gid) = self.db.group_to_gid.get(&name) {
            self.item_mut(r).gid = Some(gid);
            return Ok(());
        }
        if let Some(gid) = self.item(r).gid {
            let free = self.gid_is_ok(gid, &name, false);
            if self.item(r).id_set_strict {
                if free {
                    return Err(format!("failed to create {name}: please create GID {gid}"));
                }
                return Ok(());
            }
            if !free {
                self.item_mut(r).gid = None;
            }
        }
        if self.item(r).gid.is_none()
            && let Some(uid) = self.item(r).uid
            && self.gid_is_ok(uid, &name, true)
        {
            self.item_mut(r).gid = Some(uid);
        }
        if self.item(r).gid.is_none()
            && let Some(c) = self.id_from_file(self.item(r), false, true)
            && c > 0
            && self.range_contains(c)
            && self.gid_is_ok(c, &name, true)
        {
            self.item_mut(r).gid = Some(c);
        }
        if self.item(r).gid.is_none() {
            loop {
                if !self.next_lower() {
                    return Err(format!("no free group ID available for {name}"));
                }
                if self.gid_is_ok(self.search_uid, &name, true) {
                    break;
                }
            }
            let gid = self.search_uid;
            self.item_mut(r).gid = Some(gid);
        }
        let gid = self.item(r).gid.unwrap_or_default();
        if !self.todo_gids.insert(gid, r) {
            return Err(format!(
                "group {name} with GID {gid} is duplicated or conflicts with another group"
            ));
        }
        self.item_mut(r).todo_group = true;
        Ok(())
    }

    fn process_group(&mut self, idx: usize) {
        if let Err(e) = self.add_group(ItemRef::Group(idx)) {
            self.failures.push(e);
        }
    }

    fn process_user(&mut self, idx: usize) {
        let item = &self.users[idx];
        let queued = if item.gid.is_none() {
            let key = item.group_name.as_deref().unwrap_or(&item.name);
            self.group_index
                .get(key)
                .map(|&j| &self.groups[j])
                .filter(|j| j.todo_group)
                .map(|j| j.gid)
        } else {
            None
        };
        if let Some(gid) = queued {
            // The group is being created in this run: use it.
            self.users[idx].gid = gid;
            self.users[idx].id_set_strict = true;
        } else if let Some(group) = self.users[idx].group_name.clone() {
            // Another group, by name: it must exist already.
            match self.db.group_to_gid.get(&group) {
                Some(&gid) => {
                    self.users[idx].gid = Some(gid);
                    self.users[idx].id_set_strict = true;
                }
                None => {
                    self.failures.push(format!(
                        "group {group} not found (primary group of user {})",
                        self.users[idx].name
                    ));
                    return;
                }
            }
        } else if let Err(e) = self.add_group(ItemRef::User(idx)) {
            self.failures.push(e);
            return;
        }
        if let Err(e) = self.add_user(idx) {
            self.failures.push(e);
        }
    }

    fn pick_shell(&self, item: &Item) -> String {
        if let Some(shell) = &item.shell {
            return shell.clone();
        }
        if item.uid == Some(0) {
            return if self.request.bin_bash_exists {
                "/bin/bash".to_string()
            } else {
                "/bin/sh".to_string()
            };
        }
        NOLOGIN.to_string()
    }

    // --- writing ---------------------------------------------------------

    fn with_members(&self, group: &str, current: &[String]) -> Option<Vec<String>> {
        let wanted = self.members_of(group)?;
        let mut list = current.to_vec();
        let mut added = false;
        for m in wanted {
            if !list.contains(m) {
                list.push(m.clone());
                added = true;
            }
        }
        if !added {
            return None;
        }
        let mut seen = BTreeSet::new();
        list.retain(|m| seen.insert(m.clone()));
        list.sort();
        Some(list)
    }

    fn write_group(&self) -> Result<Option<String>, AccountsError> {
        if self.todo_gids.is_empty() && self.members.is_empty() {
            return Ok(None);
        }
        let mut out = String::new();
        let mut changed = false;
        let mut nis_at = None;
        for (i, e) in self.group.iter().enumerate() {
            if self
                .group_index
                .get(&e.name)
                .is_some_and(|&i| self.groups[i].todo_group)
            {
                return Err(error(format!(
                    "/etc/group: group `{}` already exists",
                    e.name
                )));
            }
            if self.todo_gids.get(e.gid).is_some() {
                return Err(error(format!(
                    "/etc/group: detected collision for GID {}",
                    e.gid
                )));
            }
            if e.nis() {
                nis_at = Some(i);
                break;
            }
            match self.with_members(&e.name, &e.members) {
                Some(members) => {
                    changed = true;
                    out.push_str(
                        &GroupEntry {
                            members,
                            ..e.clone()
                        }
                        .render(),
                    );
                }
                None => out.push_str(&e.render()),
            }
        }
        for (gid, r) in self.todo_gids.iter() {
            let name = &self.item(r).name;
            let members = self.with_members(name, &[]).unwrap_or_default();
            out.push_str(
                &GroupEntry {
                    name: name.clone(),
                    passwd: Some(PASSWORD_SEE_SHADOW.to_string()),
                    gid,
                    members,
                }
                .render(),
            );
            changed = true;
        }
        // NIS entries, and whatever follows the first one, stay at the end.
        if let Some(at) = nis_at {
            for e in &self.group[at..] {
                out.push_str(&e.render());
            }
        }
        Ok(changed.then_some(out))
    }

    fn write_gshadow(&self) -> Result<Option<String>, AccountsError> {
        if self.todo_gids.is_empty() && self.members.is_empty() {
            return Ok(None);
        }
        let mut out = String::new();
        let mut changed = false;
        for e in &self.gshadow {
            if self
                .group_index
                .get(&e.name)
                .is_some_and(|&i| self.groups[i].todo_group)
            {
                return Err(error(format!(
                    "/etc/gshadow: group `{}` already exists",
                    e.name
                )));
            }
            match self.with_members(&e.name, &e.members) {
                Some(members) => {
                    changed = true;
                    out.push_str(
                        &GshadowEntry {
                            members,
                            ..e.clone()
                        }
                        .render(),
                    );
                }
                None => out.push_str(&e.render()),
            }
        }
        for (_, r) in self.todo_gids.iter() {
            let name = &self.item(r).name;
            let members = self.with_members(name, &[]).unwrap_or_default();
            out.push_str(
                &GshadowEntry {
                    name: name.clone(),
                    passwd: Some(PASSWORD_LOCKED_AND_INVALID.to_string()),
                    admins: Vec::new(),
                    members,
                }
                .render(),
            );
            changed = true;
        }
        Ok(changed.then_some(out))
    }

    fn write_passwd(&self) -> Result<Option<String>, AccountsError> {
        if self.todo_uids.is_empty() {
            return Ok(None);
        }
        let mut out = String::new();
        let mut nis_at = None;
        for (i, e) in self.passwd.iter().enumerate() {
            if self
                .user_index
                .get(&e.name)
                .is_some_and(|&i| self.users[i].todo_user)
            {
                return Err(error(format!(
                    "/etc/passwd: user `{}` already exists",
                    e.name
                )));
            }
            if self.todo_uids.get(e.uid).is_some() {
                return Err(error(format!(
                    "/etc/passwd: detected collision for UID {}",
                    e.uid
                )));
            }
            if e.nis() {
                nis_at = Some(i);
                break;
            }
            out.push_str(&e.render());
        }
        for (_, r) in self.todo_uids.iter() {
            let item = self.item(r);
            out.push_str(
                &PasswdEntry {
                    name: item.name.clone(),
                    passwd: Some(PASSWORD_SEE_SHADOW.to_string()),
                    uid: item.uid.unwrap_or_default(),
                    gid: item.gid.unwrap_or_default(),
                    gecos: Some(item.description.clone().unwrap_or_default()),
                    dir: Some(item.home.clone().unwrap_or_else(|| "/".to_string())),
                    shell: Some(self.pick_shell(item)),
                }
                .render(),
            );
        }
        if let Some(at) = nis_at {
            for e in &self.passwd[at..] {
                out.push_str(&e.render());
            }
        }
        Ok(Some(out))
    }

    fn write_shadow(&mut self) -> Result<Option<String>, AccountsError> {
        if self.todo_uids.is_empty() {
            return Ok(None);
        }
        let day = self.request.last_change_day;
        let mut entries = self.shadow.clone();
        let mut out = String::new();
        let mut nis_at = None;
        for (i, e) in entries.iter_mut().enumerate() {
            if let Some(&u) = self.user_index.get(&e.name)
                && self.users[u].todo_user
            {
                // The entry is there already: keep it, with a new date.
                e.lastchg = day;
                self.users[u].todo_user = false;
                if let Some(uid) = self.users[u].uid {
                    self.todo_uids.remove(uid);
                }
            }
            if e.nis() {
                nis_at = Some(i);
                break;
            }
            out.push_str(&e.render());
        }
        for (_, r) in self.todo_uids.iter() {
            out.push_str(
                &ShadowEntry {
                    name: self.item(r).name.clone(),
                    passwd: Some(PASSWORD_LOCKED_AND_INVALID.to_string()),
                    lastchg: day,
                    min: -1,
                    max: -1,
                    warn: -1,
                    inact: -1,
                    expire: -1,
                    flag: u64::MAX,
                }
                .render(),
            );
        }
        if let Some(at) = nis_at {
            for e in &entries[at..] {
                out.push_str(&e.render());
            }
        }
        Ok(Some(out))
    }

    fn write_files(mut self) -> Result<Outcome, AccountsError> {
        let group = self.write_group()?;
        let gshadow = self.write_gshadow()?;
        let passwd = self.write_passwd()?;
        let mut users = BTreeMap::new();
        for (uid, r) in self.todo_uids.iter() {
            let item = self.item(r);
            users.insert(
                item.name.clone(),
                CreatedUser {
                    uid,
                    gid: item.gid.unwrap_or_default(),
                },
            );
        }
        let groups: BTreeMap<String, u32> = self
            .todo_gids
            .iter()
            .map(|(gid, r)| (self.item(r).name.clone(), gid))
            .collect();
        let shadow = self.write_shadow()?;

        let mut outcome = Outcome {
            files: self.request.files.clone(),
            users,
            groups,
            warnings: std::mem::take(&mut self.warnings),
            failures: std::mem::take(&mut self.failures),
            ..Outcome::default()
        };
        for (file, text) in [
            (AccountFile::Group, group),
            (AccountFile::Gshadow, gshadow),
            (AccountFile::Passwd, passwd),
            (AccountFile::Shadow, shadow),
        ] {
            if let Some(text) = text {
                let old = self.request.files.get(file).map(str::to_string);
                outcome.backups.set(file, old);
                outcome.files.set(file, Some(text));
                outcome.written.insert(file);
            }
        }
        Ok(outcome)
    }
}

/// Whether two items for the same name mean the same (systemd's
/// `item_equivalent()`, without resolving shell symlinks).
fn equivalent(a: &Item, b: &Item) -> bool {
    let shell = |i: &Item| -> String {
        match (&i.shell, i.kind) {
            (_, Kind::Group) => String::new(),
            (Some(s), _) => s.clone(),
            (None, _) if i.uid == Some(0) => "root".to_string(),
            (None, _) => NOLOGIN.to_string(),
        }
    };
    let nologin = |s: &str| {
        matches!(
            s,
            "/bin/nologin"
                | "/sbin/nologin"
                | "/usr/bin/nologin"
                | "/usr/sbin/nologin"
                | "/bin/false"
                | "/usr/bin/false"
                | "/bin/true"
                | "/usr/bin/true"
        )
    };
    let (sa, sb) = (shell(a), shell(b));
    a.kind == b.kind
        && a.name == b.name
        && a.uid_path == b.uid_path
        && a.gid_path == b.gid_path
        && a.description == b.description
        && a.uid == b.uid
        && a.gid == b.gid
        && a.home == b.home
        && (sa == sb || (nologin(&sa) && nologin(&sb)))
}

// ---------------------------------------------------------------------------
// The account files, read and written as glibc does

fn parse_file<T>(
    text: Option<&str>,
    file: AccountFile,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, AccountsError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        // glibc skips leading whitespace, empty lines and `#` comments.
        let line = raw.trim_start_matches(is_c_space);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse(line) {
            Some(entry) => out.push(entry),
            None => {
                return Err(error(format!(
                    "{}:{}: cannot read `{raw}` (systemd-sysusers would drop this entry)",
                    file.path(),
                    index + 1
                )));
            }
        }
    }
    Ok(out)
}

fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// A cursor over a line, with glibc's `STRING_FIELD`/`INT_FIELD` steps.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    /// Up to the next `:` (consumed) or the end.
    fn string(&mut self) -> &'a str {
        match self.rest.find(':') {
            Some(p) => {
                let field = &self.rest[..p];
                self.rest = &self.rest[p + 1..];
                field
            }
            None => std::mem::take(&mut self.rest),
        }
    }

    /// A number: `None` when there are no digits.
    fn strtou32(&mut self) -> Option<u32> {
        let (value, used) = strtou32(self.rest)?;
        self.rest = &self.rest[used..];
        Some(value)
    }

    /// After a number: a `:` (consumed) or the end; anything else fails.
    fn terminator(&mut self) -> Option<()> {
        if let Some(rest) = self.rest.strip_prefix(':') {
            self.rest = rest;
            Some(())
        } else if self.rest.is_empty() {
            Some(())
        } else {
            None
        }
    }

    /// `INT_FIELD`: a number is required.
    fn int(&mut self) -> Option<u32> {
        let v = self.strtou32()?;
        self.terminator()?;
        Some(v)
    }

    /// `INT_FIELD_MAYBE_NULL`: an empty field gives `None`; the line must
    /// not have ended.
    fn int_maybe_null(&mut self) -> Option<Option<u32>> {
        if self.rest.is_empty() {
            return None;
        }
        let v = self.strtou32();
        self.terminator()?;
        Some(v)
    }
}

/// glibc's `strtoul()` clamped to 32 bits, base 10: leading whitespace and
/// a sign allowed. Returns (value, bytes used) or `None` without digits.
fn strtou32(s: &str) -> Option<(u32, usize)> {
    let trimmed = s.trim_start_matches(is_c_space);
    let mut used = s.len() - trimmed.len();
    let mut rest = trimmed;
    let negative = rest.starts_with('-');
    if let Some(r) = rest.strip_prefix(['-', '+']) {
        rest = r;
        used += 1;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for b in rest[..digits].bytes() {
        value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    if negative && value != 0 {
        value = u64::MAX;
    }
    Some((u32::try_from(value).unwrap_or(u32::MAX), used + digits))
}

/// The list after the last field: comma separated, leading whitespace of
/// each element dropped, empty elements dropped.
fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|e| e.trim_start_matches(is_c_space))
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_nis(name: &str) -> bool {
    name.starts_with(['+', '-'])
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    passwd: Option<String>,
    uid: u32,
    gid: u32,
    gecos: Option<String>,
    dir: Option<String>,
    shell: Option<String>,
}

impl PasswdEntry {
    fn nis(&self) -> bool {
        is_nis(&self.name)
    }

    /// glibc's `putpwent()`.
    fn render(&self) -> String {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        if self.nis() {
            format!(
                "{}:{}:::{}:{}:{}\n",
                self.name,
                s(&self.passwd),
                s(&self.gecos),
                s(&self.dir),
                s(&self.shell)
            )
        } else {
            format!(
                "{}:{}:{}:{}:{}:{}:{}\n",
                self.name,
                s(&self.passwd),
                self.uid,
                self.gid,
                s(&self.gecos),
                s(&self.dir),
                s(&self.shell)
            )
        }
    }
}

/// glibc's passwd line parser.
fn parse_passwd(line: &str) -> Option<PasswdEntry> {
    let mut f = Fields { rest: line };
    let name = f.string().to_string();
    if f.rest.is_empty() && is_nis(&name) {
        return Some(PasswdEntry {
            name,
            passwd: None,
            uid: 0,
            gid: 0,
            gecos: None,
            dir: None,
            shell: None,
        });
    }
    let passwd = Some(f.string().to_string());
    let (uid, gid) = if is_nis(&name) {
        let uid = f.int_maybe_null()?.unwrap_or(0);
        let gid = f.int_maybe_null()?.unwrap_or(0);
        (uid, gid)
    } else {
        (f.int()?, f.int()?)
    };
    let gecos = Some(f.string().to_string());
    let dir = Some(f.string().to_string());
    let shell = Some(f.rest.to_string());
    Some(PasswdEntry {
        name,
        passwd,
        uid,
        gid,
        gecos,
        dir,
        shell,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    passwd: Option<String>,
    gid: u32,
    members: Vec<String>,
}

impl GroupEntry {
    fn nis(&self) -> bool {
        is_nis(&self.name)
    }

    /// glibc's `putgrent()`.
    fn render(&self) -> String {
        let passwd = self.passwd.clone().unwrap_or_default();
        let members = self.members.join(",");
        if self.nis() {
            format!("{}:{passwd}::{members}\n", self.name)
        } else {
            format!("{}:{passwd}:{}:{members}\n", self.name, self.gid)
        }
    }
}

/// glibc's group line parser.
fn parse_group(line: &str) -> Option<GroupEntry> {
    let mut f = Fields { rest: line };
    let name = f.string().to_string();
    if f.rest.is_empty() && is_nis(&name) {
        return Some(GroupEntry {
            name,
            passwd: None,
            gid: 0,
            members: Vec::new(),
        });
    }
    let passwd = Some(f.string().to_string());
    let gid = if is_nis(&name) {
        f.int_maybe_null()?.unwrap_or(0)
    } else {
        f.int()?
    };
    Some(GroupEntry {
        name,
        passwd,
        gid,
        members: parse_list(f.rest),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ShadowEntry {
    name: String,
    passwd: Option<String>,
    /// -1 for an empty field, as glibc keeps them.
    lastchg: i64,
    min: i64,
    max: i64,
    warn: i64,
    inact: i64,
    expire: i64,
    /// `u64::MAX` for an empty field.
    flag: u64,
}

impl ShadowEntry {
    fn nis(&self) -> bool {
        is_nis(&self.name)
    }

    /// glibc's `putspent()`.
    fn render(&self) -> String {
        let n = |v: i64| {
            if v == -1 {
                String::new()
            } else {
                v.to_string()
            }
        };
        let flag = if self.flag == u64::MAX {
            String::new()
        } else {
            self.flag.to_string()
        };
        format!(
            "{}:{}:{}:{}:{}:{}:{}:{}:{flag}\n",
            self.name,
            self.passwd.clone().unwrap_or_default(),
            n(self.lastchg),
            n(self.min),
            n(self.max),
            n(self.warn),
            n(self.inact),
            n(self.expire),
        )
    }
}

/// glibc's shadow line parser (`(long int) (int)` of each number).
fn parse_shadow(line: &str) -> Option<ShadowEntry> {
    let as_long = |v: Option<u32>| v.map_or(-1, |v| i64::from(v as i32));
    let mut f = Fields { rest: line };
    let name = f.string().to_string();
    let mut e = ShadowEntry {
        name,
        passwd: None,
        lastchg: -1,
        min: -1,
        max: -1,
        warn: -1,
        inact: -1,
        expire: -1,
        flag: u64::MAX,
    };
    if f.rest.is_empty() && is_nis(&e.name) {
        e.lastchg = 0;
        e.min = 0;
        e.max = 0;
        return Some(e);
    }
    e.passwd = Some(f.string().to_string());
    e.lastchg = as_long(f.int_maybe_null()?);
    e.min = as_long(f.int_maybe_null()?);
    e.max = as_long(f.int_maybe_null()?);
    f.rest = f.rest.trim_start_matches(is_c_space);
    if f.rest.is_empty() {
        // The old form, without the last four fields.
        return Some(e);
    }
    e.warn = as_long(f.int_maybe_null()?);
    e.inact = as_long(f.int_maybe_null()?);
    e.expire = as_long(f.int_maybe_null()?);
    if !f.rest.is_empty() {
        match f.strtou32() {
            Some(v) => e.flag = u64::from(v),
            None => e.flag = u64::MAX,
        }
        if !f.rest.is_empty() {
            return None;
        }
    }
    Some(e)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GshadowEntry {
    name: String,
    passwd: Option<String>,
    admins: Vec<String>,
    members: Vec<String>,
}

impl GshadowEntry {
    /// glibc's `putsgent()`.
    fn render(&self) -> String {
        format!(
            "{}:{}:{}:{}\n",
            self.name,
            self.passwd.clone().unwrap_or_default(),
            self.admins.join(","),
            self.members.join(",")
        )
    }
}

/// glibc's gshadow line parser.
fn parse_gshadow(line: &str) -> Option<GshadowEntry> {
    let mut f = Fields { rest: line };
    let name = f.string().to_string();
    if f.rest.is_empty() && is_nis(&name) {
        return Some(GshadowEntry {
            name,
            passwd: None,
            admins: Vec::new(),
            members: Vec::new(),
        });
    }
    let passwd = Some(f.string().to_string());
    let admins = parse_list(f.string());
    Some(GshadowEntry {
        name,
        passwd,
        admins,
        members: parse_list(f.rest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;
    use std::process::Command;

    /// 2023-11-14, as SOURCE_DATE_EPOCH.
    const EPOCH: u64 = 1_700_000_000;

    fn cfg(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    fn request(files: AccountFiles, config: &[(&str, &str)]) -> Request {
        Request {
            build: SysusersBuild::DEBIAN_12,
            bin_bash_exists: false,
            ..Request::new(files, cfg(config), day_from_epoch(EPOCH))
        }
    }

    fn ok(request: &Request) -> Outcome {
        apply_lenient(request).unwrap_or_else(|e| panic!("apply failed: {e}"))
    }

    fn empty() -> AccountFiles {
        AccountFiles::default()
    }

    /// A base like Amazon Linux 2023's, with a few IDs near the top of the
    /// system range taken.
    fn al2023_base() -> AccountFiles {
        AccountFiles {
            passwd: Some(
                "root:x:0:0:root:/root:/bin/bash\n\
                 bin:x:1:1:bin:/bin:/sbin/nologin\n\
                 daemon:x:2:2:daemon:/sbin:/sbin/nologin\n\
                 adm:x:3:4:adm:/var/adm:/sbin/nologin\n\
                 lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin\n\
                 sync:x:5:0:sync:/sbin:/bin/sync\n\
                 shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown\n\
                 halt:x:7:0:halt:/sbin:/sbin/halt\n\
                 mail:x:8:12:mail:/var/spool/mail:/sbin/nologin\n\
                 operator:x:11:0:operator:/root:/sbin/nologin\n\
                 games:x:12:100:games:/usr/games:/sbin/nologin\n\
                 ftp:x:14:50:FTP User:/var/ftp:/sbin/nologin\n\
                 nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n\
                 dbus:x:81:81:System message bus:/:/usr/sbin/nologin\n\
                 systemd-network:x:192:192:systemd Network Management:/:/usr/sbin/nologin\n\
                 systemd-oom:x:999:999:systemd Userspace OOM Killer:/:/usr/sbin/nologin\n\
                 systemd-resolve:x:193:193:systemd Resolver:/:/usr/sbin/nologin\n\
                 tss:x:59:59:Account used for TPM access:/dev/null:/sbin/nologin\n\
                 libstoragemgmt:x:997:997:daemon account for libstoragemgmt:/:/usr/sbin/nologin\n\
                 systemd-coredump:x:996:996:systemd Core Dumper:/:/usr/sbin/nologin\n\
                 chrony:x:995:994:chrony system user:/var/lib/chrony:/sbin/nologin\n\
                 sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n\
                 rpc:x:32:32:Rpcbind Daemon:/var/lib/rpcbind:/sbin/nologin\n\
                 ec2-instance-connect:x:994:993::/home/ec2-instance-connect:/sbin/nologin\n\
                 ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash\n"
                    .to_string(),
            ),
            group: Some(
                "root:x:0:\nbin:x:1:\ndaemon:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\n\
                 lp:x:7:\nmem:x:8:\nkmem:x:9:\nwheel:x:10:ec2-user\ncdrom:x:11:\nmail:x:12:\n\
                 man:x:15:\ndialout:x:18:\nfloppy:x:19:\ngames:x:20:\ntape:x:33:\nvideo:x:39:\n\
                 ftp:x:50:\nlock:x:54:\naudio:x:63:\nusers:x:100:\nnobody:x:65534:\n\
                 utmp:x:22:\nutempter:x:35:\ninput:x:999:\nkvm:x:36:\nrender:x:998:\n\
                 systemd-journal:x:190:\ndbus:x:81:\nsystemd-network:x:192:\n\
                 systemd-oom:x:992:\nsystemd-resolve:x:193:\ntss:x:59:\n\
                 libstoragemgmt:x:997:\nsystemd-coredump:x:996:\nchrony:x:994:\n\
                 sshd:x:74:\nrpc:x:32:\nec2-instance-connect:x:993:\nec2-user:x:1000:\n"
                    .to_string(),
            ),
            shadow: Some(
                "root:*::0:99999:7:::\nbin:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n\
                 dbus:!!:19000::::::\nsystemd-oom:!*:19000::::::\nec2-user:!!:19000:0:99999:7:::\n"
                    .to_string(),
            ),
            gshadow: Some(
                "root:::\nbin:::\nwheel:::ec2-user\nnobody:::\ndbus:!!::\nsystemd-oom:!*::\n\
                 ec2-user:!!::\n"
                    .to_string(),
            ),
        }
    }

    // --- pure tests ------------------------------------------------------

    #[test]
    fn fresh_user_gets_999_and_its_own_group() {
        let out = ok(&request(
            empty(),
            &[("a.conf", "u web - \"Web\" /srv/web\n")],
        ));
        assert_eq!(
            out.files.passwd.as_deref(),
            Some("web:x:999:999:Web:/srv/web:/usr/sbin/nologin\n")
        );
        assert_eq!(out.files.group.as_deref(), Some("web:x:999:\n"));
        assert_eq!(out.files.shadow.as_deref(), Some("web:!*:19675::::::\n"));
        assert_eq!(out.files.gshadow.as_deref(), Some("web:!*::\n"));
        assert_eq!(
            out.users.get("web"),
            Some(&CreatedUser { uid: 999, gid: 999 })
        );
        assert_eq!(out.groups.get("web"), Some(&999));
        assert_eq!(out.backups, empty());
        assert_eq!(out.written.len(), 4);
    }

    #[test]
    fn existing_accounts_are_never_changed() {
        let base = al2023_base();
        let out = ok(&request(
            base.clone(),
            &[("a.conf", "u dbus 4242 \"Other\"\ng wheel 77\n")],
        ));
        assert_eq!(out.files, base);
        assert!(out.written.is_empty());
        assert!(out.users.is_empty() && out.groups.is_empty());
    }

    #[test]
    fn search_skips_ids_used_by_either_database() {
        // 999 is a UID (systemd-oom) and a GID (input); 998 a GID (render)
        // of another name; 997 and 996 both; 995 a UID; 994, 993 GIDs.
        let out = ok(&request(al2023_base(), &[("a.conf", "u app -\n")]));
        assert_eq!(
            out.users.get("app"),
            Some(&CreatedUser { uid: 991, gid: 991 })
        );
    }

    #[test]
    fn member_lines_add_sorted_members_and_implicit_accounts() {
        let out = ok(&request(
            al2023_base(),
            &[("a.conf", "m zed wheel\nm alice wheel\nm bob newgroup\n")],
        ));
        let group = out.files.group.unwrap_or_default();
        assert!(
            group.contains("\nwheel:x:10:alice,ec2-user,zed\n"),
            "{group}"
        );
        let gshadow = out.files.gshadow.unwrap_or_default();
        assert!(
            gshadow.contains("\nwheel:::alice,ec2-user,zed\n"),
            "{gshadow}"
        );
        assert!(out.users.contains_key("zed") && out.users.contains_key("bob"));
        assert!(out.groups.contains_key("newgroup"));
    }

    #[test]
    fn named_primary_group_must_exist() {
        let out = ok(&request(
            empty(),
            &[("a.conf", "u web -:nogroup\nu ok -\n")],
        ));
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
        assert!(out.users.contains_key("ok") && !out.users.contains_key("web"));
        assert!(apply(&request(empty(), &[("a.conf", "u web -:nogroup\n")])).is_err());
    }

    #[test]
    fn unreadable_entries_are_an_error() {
        let files = AccountFiles {
            passwd: Some("bad:x:abc:1::/:/bin/sh\n".to_string()),
            ..empty()
        };
        let e = apply(&request(files, &[("a.conf", "u a -\n")]));
        assert!(e.is_err_and(|e| e.message.contains("/etc/passwd:1")));
    }

    #[test]
    fn path_ids_need_owners() {
        let r = request(empty(), &[("a.conf", "u a /usr/bin/tool\n")]);
        assert!(apply(&r).is_err_and(|e| e.message.contains("path_owners")));
        let mut r = r;
        r.path_owners = Some(BTreeMap::from([("/usr/bin/tool".to_string(), (321, 654))]));
        let out = ok(&r);
        assert_eq!(
            out.users.get("a"),
            Some(&CreatedUser { uid: 321, gid: 654 })
        );
    }

    #[test]
    fn bad_and_locked_lines_are_skipped_with_warnings() {
        let out = ok(&request(
            empty(),
            &[("a.conf", "u a$ -\nu! locked -\nu good -\nu good 5\n")],
        ));
        assert_eq!(out.users.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(out.warnings.len(), 3, "{:?}", out.warnings);
        assert!(out.warnings[0].starts_with("a.conf:1:"));
    }

    #[test]
    fn login_defs_only_counts_for_builds_that_read_it() {
        let defs = "# c\nSYS_UID_MIN 300\nSYS_UID_MAX\t800\n SYS_GID_MAX 100\nSYS_GID_MAX 900\n";
        assert_eq!(
            SysusersBuild::AMAZON_LINUX_2023.allocation_range(Some(defs)),
            Some((300, 800))
        );
        assert_eq!(
            SysusersBuild::DEBIAN_12.allocation_range(Some(defs)),
            Some((1, 999))
        );
        assert_eq!(
            SysusersBuild::AMAZON_LINUX_2023.allocation_range(None),
            Some((201, 999))
        );
        // A bad value is ignored; min above max is reset.
        let odd = "SYS_UID_MIN 0100\nSYS_UID_MAX 150\nSYS_UID_MIN 500\n";
        assert_eq!(
            SysusersBuild::AMAZON_LINUX_2023.allocation_range(Some(odd)),
            Some((149, 150))
        );
        let r = Request {
            login_defs: Some("SYS_UID_MAX 500\n".to_string()),
            ..Request::new(empty(), cfg(&[("a.conf", "u a -\n")]), 0)
        };
        assert_eq!(ok(&r).users.get("a").map(|u| u.uid), Some(500));
    }

    #[test]
    fn order_config_files_sorts_by_name_and_lets_etc_win() {
        let files = order_config_files([
            ("/usr/lib/sysusers.d", "b.conf", Some("u b -\n")),
            ("/usr/lib/sysusers.d", "a.conf", Some("u a -\n")),
            ("/etc/sysusers.d", "a.conf", Some("u a2 -\n")),
            ("/usr/lib/sysusers.d", "c.conf", Some("u c -\n")),
            ("/etc/sysusers.d", "c.conf", None),
            ("/run/sysusers.d", "README", Some("x")),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files, cfg(&[("a.conf", "u a2 -\n"), ("b.conf", "u b -\n")]));
        assert!(order_config_files([("/opt", "a.conf", Some(""))]).is_err());
    }

    #[test]
    fn glibc_parsers_round_trip_and_normalise() {
        let e = parse_passwd("short:x:5:5").unwrap_or_else(|| panic!("parse"));
        assert_eq!(e.render(), "short:x:5:5:::\n");
        let e = parse_passwd("a:x:1:2:g:/h:/bin/sh:extra").unwrap_or_else(|| panic!("parse"));
        assert_eq!(e.shell.as_deref(), Some("/bin/sh:extra"));
        assert!(parse_passwd("a:x::1:g:/:/s").is_none());
        let g = parse_group("wheel:x:10:zed, amy,,bob").unwrap_or_else(|| panic!("parse"));
        assert_eq!(g.members, ["zed", "amy", "bob"]);
        for line in [
            "root:*::0:99999:7:::",
            "a:!*:19000::::::",
            "b:x:1:2:3:4:5:6:7",
        ] {
            let s = parse_shadow(line).unwrap_or_else(|| panic!("parse {line}"));
            assert_eq!(s.render(), format!("{line}\n"));
        }
        assert_eq!(
            parse_shadow("bin:*:18000:0:99999").map(|s| s.render()),
            Some("bin:*:18000:0:99999::::\n".to_string())
        );
        assert!(parse_shadow("bin:*:1:2").is_none());
        assert!(parse_shadow("bin:*::0:99999:7::").is_none());
        assert_eq!(
            parse_gshadow("wheel:!:adm1, adm2:m1,m2").map(|g| g.render()),
            Some("wheel:!:adm1,adm2:m1,m2\n".to_string())
        );
    }

    // --- judged by the real systemd-sysusers -----------------------------

    fn write(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    fn read(path: &Path) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("read {path:?}: {e}"),
        }
    }

    /// One case: base files, sysusers.d files as (directory, name, text),
    /// and extra setup of the root.
    struct Case<'a> {
        name: &'a str,
        base: AccountFiles,
        dirs: Vec<(&'a str, &'a str, &'a str)>,
        setup: fn(&Path),
        owners: Option<BTreeMap<String, (u32, u32)>>,
        bash: bool,
    }

    impl<'a> Case<'a> {
        fn new(name: &'a str, base: AccountFiles, text: &'a str) -> Self {
            Case {
                name,
                base,
                dirs: vec![("/usr/lib/sysusers.d", "test.conf", text)],
                setup: |_| {},
                owners: None,
                bash: false,
            }
        }
    }

    /// Run the real tool on the case; returns the four files and backups.
    fn run_real(tool: &Path, case: &Case) -> (AccountFiles, AccountFiles, bool) {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let r = root.path();
        std::fs::create_dir_all(r.join("etc")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        for file in AccountFile::ALL {
            if let Some(text) = case.base.get(file) {
                write(&r.join(&file.path()[1..]), text);
            }
        }
        for (dir, name, text) in &case.dirs {
            write(&r.join(&dir[1..]).join(name), text);
        }
        (case.setup)(r);
        if case.bash {
            write(&r.join("bin/bash"), "");
        }
        let out = Command::new(tool)
            .arg(format!("--root={}", r.display()))
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("SYSTEMD_LOG_LEVEL")
            .output()
            .unwrap_or_else(|e| panic!("running systemd-sysusers: {e}"));
        let mut files = AccountFiles::default();
        let mut backups = AccountFiles::default();
        for file in AccountFile::ALL {
            files.set(file, read(&r.join(&file.path()[1..])));
            backups.set(file, read(&r.join(&file.backup_path()[1..])));
        }
        (files, backups, out.status.success())
    }

    fn check(tool: &Path, case: &Case) {
        let (real, real_backups, success) = run_real(tool, case);
        let config = order_config_files(case.dirs.iter().map(|(d, n, t)| (*d, *n, Some(*t))))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let request = Request {
            build: SysusersBuild::DEBIAN_12,
            bin_bash_exists: case.bash,
            path_owners: case.owners.clone(),
            ..Request::new(case.base.clone(), config, day_from_epoch(EPOCH))
        };
        let ours = match apply_lenient(&request) {
            Ok(o) => o,
            Err(e) => {
                assert!(
                    !success,
                    "{}: we refused ({e}) but the tool succeeded",
                    case.name
                );
                return;
            }
        };
        assert!(success, "{}: the tool failed but we did not", case.name);
        for file in AccountFile::ALL {
            assert_eq!(
                ours.files.get(file),
                real.get(file),
                "{}: {} differs",
                case.name,
                file.path()
            );
            assert_eq!(
                ours.backups.get(file),
                real_backups.get(file),
                "{}: backup of {} differs",
                case.name,
                file.path()
            );
        }
    }

    fn with_base_file(base: AccountFiles, file: AccountFile, text: &str) -> AccountFiles {
        let mut b = base;
        b.set(file, Some(text.to_string()));
        b
    }

    #[test]
    fn real_systemd_sysusers_agrees() {
        let Some(tool) = crate::testutil::judge("systemd-sysusers") else {
            return;
        };
        let fresh = empty;
        let base = al2023_base;
        let mut cases = vec![
            Case::new("one user, fresh", fresh(), "u web - \"Web server\" /srv/web /bin/sh\n"),
            Case::new(
                "groups, users, members, fresh",
                fresh(),
                "g share -\ng pinned 4000\nu web 4711 \"Web\"\nu job -:share\nu plain -\n\
                 m plain share\nm web share\nm web pinned\n",
            ),
            Case::new("user on AL2023 base", base(), "u app - \"App\" /var/lib/app\n"),
            Case::new(
                "several users, AL2023 base",
                base(),
                "u a -\nu b -\ng c -\nu d -:c\nu e 990\nu f 990\n",
            ),
            Case::new(
                "group exists with another gid",
                base(),
                "u dbusclient -\nu chrony2 -\nu ftp2 -:ftp\nu lock -\n",
            ),
            Case::new(
                "user exists, its group does not",
                with_base_file(
                    base(),
                    AccountFile::Passwd,
                    "root:x:0:0:root:/root:/bin/bash\nlonely:x:500:500::/:/sbin/nologin\n",
                ),
                "u lonely -\nu other -\n",
            ),
            Case::new(
                "explicit uid taken",
                base(),
                "u newbie 81\nu second 999\nu third 1000:1000\ng grp 81\n",
            ),
            Case::new(
                "uid:gid and uid:group forms",
                base(),
                "g team 600\nu one 601:600\nu two 602:team\nu three -:team\nu four 603:81\n\
                 u five 604:4444\nu six -:wheel\n",
            ),
            Case::new(
                "user reuses group id",
                fresh(),
                "g web 500\nu web -\ng other 600\nu other 601\nu thing 600\n",
            ),
            Case::new(
                "members of existing and new groups",
                base(),
                "m ec2-user wheel\nm zed wheel\nm amy wheel\nm newuser newgroup\n\
                 m root audio\ng newgroup2 -\nm ec2-user newgroup2\n",
            ),
            Case::new(
                "ranges",
                fresh(),
                "r - 500-502\nr - 700\nu a -\nu b -\nu c -\nu d -\nu e -\n",
            ),
            Case::new(
                "range exhausted",
                fresh(),
                "r - 900-901\nu a -\nu b -\nu c -\n",
            ),
            Case::new(
                "duplicates, first wins",
                fresh(),
                "u a 500\nu a 501\ng g1 -\ng g1 700\nu b - \"B\" - /bin/false\nu b - \"B\" - \
                 /usr/sbin/nologin\n",
            ),
            Case::new(
                "root user gets /bin/sh",
                fresh(),
                "u root 0 \"Super User\" /root\nu nobody 65534 \"Nobody\"\n",
            ),
            Case::new(
                "bad lines skipped",
                fresh(),
                "u a$ -\nu! locked -\nx y z\nu good -\n",
            ),
            Case::new(
                "normalised base files",
                AccountFiles {
                    passwd: Some(
                        "# comment\nroot:x:0:0:root:/root:/bin/bash\n\n  bin:x:1:1:bin:/bin:/sbin/nologin\n\
                         short:x:5:5\n"
                            .to_string(),
                    ),
                    group: Some("root:x:0:\nwheel:x:10:zed, amy,,bob\n".to_string()),
                    shadow: Some("root:*::0:99999:7:::\nbin:*:18000:0:99999\n".to_string()),
                    gshadow: Some("root:::\nwheel:::zed\n".to_string()),
                },
                "u foo -\nm foo wheel\n",
            ),
            Case::new(
                "group unchanged when members exist",
                base(),
                "m ec2-user wheel\n",
            ),
            Case::new(
                "shadow entry already there",
                with_base_file(
                    base(),
                    AccountFile::Shadow,
                    "root:*::0:99999:7:::\nghost:!!:12345:0:99999:7:::\n",
                ),
                "u ghost -\n",
            ),
            Case::new(
                "NIS entries stay last",
                AccountFiles {
                    passwd: Some(
                        "root:x:0:0:root:/root:/bin/bash\n+nisuser::::::\n+\nafter:x:5:5::/:\n"
                            .to_string(),
                    ),
                    group: Some("root:x:0:\n+:::\n".to_string()),
                    shadow: Some("root:*::0:99999:7:::\n+nisuser::::::::\n".to_string()),
                    gshadow: None,
                },
                "u web -\n",
            ),
            Case::new(
                "no gshadow yet",
                with_base_file(base(), AccountFile::Gshadow, "")
                    .clone_without(AccountFile::Gshadow),
                "g newg -\nm ec2-user newg\n",
            ),
            Case::new(
                "gshadow has the group already",
                with_base_file(base(), AccountFile::Gshadow, "root:::\nclash:!::\n"),
                "g clash -\n",
            ),
            Case::new("please create GID", fresh(), "u a 500:600\nu b -\n"),
        ];
        cases.push(Case {
            dirs: vec![
                ("/usr/lib/sysusers.d", "20-b.conf", "u b -\nu shared 700\n"),
                ("/usr/lib/sysusers.d", "10-a.conf", "u a -\nu shared 701\n"),
                ("/etc/sysusers.d", "10-a.conf", "u a-local -\n"),
                ("/usr/lib/sysusers.d", "30-c.conf", "m b grp\n"),
                ("/run/sysusers.d", "30-c.conf", "m a-local grp\n"),
                ("/usr/lib/sysusers.d", "40-masked.conf", "u masked -\n"),
                ("/etc/sysusers.d", "40-masked.conf", ""),
            ],
            ..Case::new("several files, /etc wins", base(), "")
        });
        cases.push(Case {
            setup: |r| {
                let tool = r.join("usr/bin/tool");
                write(&tool, "");
                std::os::unix::fs::chown(&tool, Some(321), Some(654))
                    .unwrap_or_else(|e| panic!("chown: {e}"));
                let top = r.join("usr/bin/top");
                write(&top, "");
                std::os::unix::fs::chown(&top, Some(5000), Some(5000))
                    .unwrap_or_else(|e| panic!("chown: {e}"));
            },
            owners: Some(BTreeMap::from([
                ("/usr/bin/tool".to_string(), (321, 654)),
                ("/usr/bin/top".to_string(), (5000, 5000)),
            ])),
            ..Case::new(
                "ids from paths",
                fresh(),
                "u tool /usr/bin/tool\ng tg /usr/bin/tool\nu outside /usr/bin/top\n\
                 u missing /usr/bin/none\n",
            )
        });
        cases.push(Case {
            bash: true,
            ..Case::new("root user gets /bin/bash", fresh(), "u root 0\n")
        });
        if !can_chown() {
            crate::testutil::cannot_run(
                "the path-ID case of real_systemd_sysusers_agrees",
                "chown to another user fails here",
                "run the tests as root, as `cargo xtask ci` does in CI",
            );
            cases.retain(|c| c.owners.is_none());
        }
        let mut full = String::new();
        for id in 2..=999 {
            full.push_str(&format!("u{id}:x:{id}:{id}::/:/sbin/nologin\n"));
        }
        let full: &'static str = Box::leak(full.into_boxed_str());
        cases.push(Case::new(
            "bottom of the range",
            AccountFiles {
                passwd: Some(full.to_string()),
                ..empty()
            },
            "u last -\nu none -\n",
        ));
        for case in &cases {
            check(&tool, case);
        }
    }

    /// Whether this process may give a file away (chown needs root).
    fn can_chown() -> bool {
        let Ok(dir) = tempfile::tempdir() else {
            return false;
        };
        let probe = dir.path().join("probe");
        std::fs::write(&probe, "").is_ok()
            && std::os::unix::fs::chown(&probe, Some(321), Some(654)).is_ok()
    }

    impl AccountFiles {
        fn clone_without(&self, file: AccountFile) -> AccountFiles {
            let mut c = self.clone();
            c.set(file, None);
            c
        }
    }
}
