//! systemd preset files: the one a package ships, and the decision a set of
//! preset files gives for a unit.
//!
//! In: a package name and its units with an enable flag ([`render`]); or the
//! (file name, text) pairs of preset files found in a root filesystem
//! ([`PresetRules`]). Out: the text of `/usr/lib/systemd/system-preset/`
//! [`file_name`]; or, for a unit name, the [`PresetAction`] that
//! `systemctl preset` would take.
//!
//! It never reads directories or follows symlinks (the caller merges
//! `/etc/systemd/system-preset/` over `/usr/lib/systemd/system-preset/`
//! and passes the result), never enables anything itself, and never writes
//! `disable` lines into a package's preset: a unit the package does not
//! enable is left to later files, such as Amazon Linux 2023's
//! `99-default-disable.preset` (`disable *`).
//!
//! Rules followed, from systemd.preset(5), "Preset File Format": one
//! directive per line, `enable`/`disable` and a unit name pattern with
//! shell-style wildcards (fnmatch(3) without escapes); empty lines and
//! lines starting with `#` or `;` ignored; an `enable` of a template may
//! list instance names after the pattern (systemd 240 and later); files
//! sorted by file name across directories, one in `/etc/` replacing a
//! same-named one elsewhere; the first matching line wins; a unit no line
//! matches is enabled. The `ignore` directive (leave the unit as it is)
//! exists from systemd 254 on; systemd 252, which Amazon Linux 2023 and
//! Debian 12 ship, rejects such a line as unparsable and skips it, which
//! [`PresetRules::for_systemd_version`] reproduces. Bad lines are skipped
//! with a warning, as systemd does, and reported by
//! [`PresetRules::warnings`].

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::unit;

/// Where a package's preset file goes.
pub const PRESET_DIR: &str = "/usr/lib/systemd/system-preset";

/// The first systemd version that understands `ignore`.
pub const IGNORE_SINCE_VERSION: u32 = 254;

/// A package name or unit name that cannot go into a preset file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct PresetError {
    pub message: String,
}

/// The file name of a package's preset: `50-<package>.preset`.
pub fn file_name(package: &str) -> String {
    format!("50-{package}.preset")
}

/// The full path of a package's preset file.
pub fn path(package: &str) -> String {
    format!("{PRESET_DIR}/{}", file_name(package))
}

/// The preset file for a package: a comment naming the package, then
/// `enable NAME` for each unit marked `true`, sorted by name, each once.
/// Units marked `false` get no line (a unit listed both ways is enabled).
///
/// Names are expected to have passed [`unit::check_unit_name`] (the spec
/// loader checks them); one that does not is left out rather than written,
/// so no input can add a line of its own. [`try_render`] reports it instead.
pub fn render(package: &str, units: &[(String, bool)]) -> String {
    let enabled: BTreeSet<&str> = units
        .iter()
        .filter(|(name, enable)| *enable && unit::check_unit_name(name).is_ok())
        .map(|(name, _)| name.as_str())
        .collect();
    let package: String = package
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let mut out = format!("# systemd units of package {package} to enable on installation\n");
    for name in enabled {
        out.push_str("enable ");
        out.push_str(name);
        out.push('\n');
    }
    out
}

/// [`render`], refusing an empty package name or one with whitespace,
/// control characters or `/`, and any unit name
/// [`unit::check_unit_name`] refuses.
pub fn try_render(package: &str, units: &[(String, bool)]) -> Result<String, PresetError> {
    if package.is_empty()
        || package
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(PresetError {
            message: format!("`{package}` cannot name a preset file"),
        });
    }
    for (name, _) in units {
        unit::check_unit_name(name).map_err(|message| PresetError { message })?;
    }
    Ok(render(package, units))
}

/// The directive of a preset line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetVerb {
    Enable,
    Disable,
    Ignore,
}

/// One parsed preset line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetRule {
    /// The preset file it came from and its 1-based line.
    pub file: String,
    pub line: usize,
    pub verb: PresetVerb,
    /// The unit name pattern (`*`, `?`, `[...]` wildcards).
    pub pattern: String,
    /// For `enable TEMPLATE@.TYPE a b`: the instance names.
    pub instances: Vec<String>,
}

/// What `systemctl preset` does with a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetAction {
    /// Enable. The list names the units to enable when a rule listed
    /// instances of a template (the template's instances, or the instance
    /// asked about); empty means the unit itself (for a template: its
    /// `DefaultInstance=`).
    Enable(Vec<String>),
    Disable,
    /// Leave the unit as it is (systemd 254 and later).
    Ignore,
}

/// A line that was skipped or looks wrong, as systemd would warn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetWarning {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The rules of a set of preset files, in the order systemd reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresetRules {
    rules: Vec<PresetRule>,
    warnings: Vec<PresetWarning>,
}

impl PresetRules {
    /// Rules from (file name, text) pairs, read as current systemd reads
    /// them. Files are sorted by name; a name given twice keeps the text
    /// given last (pass `/usr/lib` files before `/etc` ones and the `/etc`
    /// ones win; an empty text masks, like a symlink to `/dev/null`). Names
    /// not ending in `.preset` are skipped, as systemd skips such files.
    pub fn from_files<I, N, T>(files: I) -> PresetRules
    where
        I: IntoIterator<Item = (N, T)>,
        N: AsRef<str>,
        T: AsRef<str>,
    {
        PresetRules::for_systemd_version(files, u32::MAX)
    }

    /// Like [`PresetRules::from_files`], read as the given systemd version
    /// reads them: before [`IGNORE_SINCE_VERSION`], an `ignore` line is
    /// unparsable and skipped.
    pub fn for_systemd_version<I, N, T>(files: I, version: u32) -> PresetRules
    where
        I: IntoIterator<Item = (N, T)>,
        N: AsRef<str>,
        T: AsRef<str>,
    {
        let mut rules = PresetRules::default();
        let mut by_name: BTreeMap<String, String> = BTreeMap::new();
        for (name, text) in files {
            let name = name.as_ref();
            if !name.ends_with(".preset") {
                rules.warn(name, 0, "not a .preset file, skipped");
                continue;
            }
            by_name.insert(name.to_string(), text.as_ref().to_string());
        }
        for (name, text) in &by_name {
            for (index, raw) in text.lines().enumerate() {
                rules.parse_line(name, index + 1, raw, version);
            }
        }
        rules
    }

    fn warn(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.warnings.push(PresetWarning {
            file: file.to_string(),
            line,
            message: message.into(),
        });
    }

    fn parse_line(&mut self, file: &str, line: usize, raw: &str, version: u32) {
        let l = raw.trim_matches(WS);
        if l.is_empty() || l.starts_with(['#', ';']) {
            return;
        }
        let ignore_known = version >= IGNORE_SINCE_VERSION;
        let (verb, rest) = if let Some(rest) = first_word(l, "enable") {
            (PresetVerb::Enable, rest)
        } else if let Some(rest) = first_word(l, "disable") {
            (PresetVerb::Disable, rest)
        } else if let Some(rest) = first_word(l, "ignore").filter(|_| ignore_known) {
            (PresetVerb::Ignore, rest)
        } else {
            self.warn(file, line, format!("cannot parse `{l}`, skipped"));
            return;
        };
        let (pattern, instances) = match verb {
            // `enable PATTERN [INSTANCE...]`
            PresetVerb::Enable => {
                let mut words = rest.split(WS).filter(|w| !w.is_empty());
                let pattern = words.next().unwrap_or_default().to_string();
                let instances: Vec<String> = words.map(str::to_string).collect();
                if !instances.is_empty() && !unit::is_template(&pattern) {
                    self.warn(
                        file,
                        line,
                        format!(
                            "instances given for `{pattern}`, which is not a template; skipped"
                        ),
                    );
                    return;
                }
                (pattern, instances)
            }
            // `disable`/`ignore` take the rest of the line as the pattern.
            PresetVerb::Disable | PresetVerb::Ignore => {
                if rest.contains(WS) {
                    self.warn(
                        file,
                        line,
                        format!("pattern `{rest}` contains whitespace and matches no unit"),
                    );
                }
                (rest.to_string(), Vec::new())
            }
        };
        if pattern.is_empty() {
            self.warn(file, line, format!("`{l}` names no unit, skipped"));
            return;
        }
        self.rules.push(PresetRule {
            file: file.to_string(),
            line,
            verb,
            pattern,
            instances,
        });
    }

    /// Every rule, in the order they are tried.
    pub fn rules(&self) -> &[PresetRule] {
        &self.rules
    }

    /// Lines that were skipped or look wrong.
    pub fn warnings(&self) -> &[PresetWarning] {
        &self.warnings
    }

    /// The first rule that applies to a unit, with what it says to do.
    pub fn matching_rule(&self, unit_name: &str) -> Option<(&PresetRule, PresetAction)> {
        self.rules.iter().find_map(|rule| {
            let action = rule_action(rule, unit_name)?;
            Some((rule, action))
        })
    }

    /// What `systemctl preset UNIT` does: the first matching rule's action,
    /// or `None` when no rule matches (systemd then enables the unit).
    pub fn decide(&self, unit_name: &str) -> Option<PresetAction> {
        self.matching_rule(unit_name).map(|(_, action)| action)
    }
}

const WS: &[char] = &[' ', '\t', '\n', '\r'];

/// `line` starts with `word` followed by whitespace or the end: the rest
/// after that whitespace.
fn first_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(rest);
    }
    if !rest.starts_with(WS) {
        return None;
    }
    Some(rest.trim_start_matches(WS))
}

fn rule_action(rule: &PresetRule, unit_name: &str) -> Option<PresetAction> {
    // A template rule with instances matches the template (enabling the
    // listed instances) and each listed instance.
    if rule.verb == PresetVerb::Enable
        && !rule.instances.is_empty()
        && unit::template_name(unit_name).as_deref() == Some(rule.pattern.as_str())
    {
        match unit::instance(unit_name) {
            None => {
                let names = rule
                    .instances
                    .iter()
                    .map(|i| instance_name(&rule.pattern, i))
                    .collect();
                return Some(PresetAction::Enable(names));
            }
            Some(i) if rule.instances.iter().any(|x| x == i) => {
                return Some(PresetAction::Enable(vec![unit_name.to_string()]));
            }
            Some(_) => {}
        }
    }
    if !fnmatch(&rule.pattern, unit_name) {
        return None;
    }
    Some(match rule.verb {
        PresetVerb::Enable => PresetAction::Enable(Vec::new()),
        PresetVerb::Disable => PresetAction::Disable,
        PresetVerb::Ignore => PresetAction::Ignore,
    })
}

/// `foo@.service` + `bar` = `foo@bar.service`.
fn instance_name(template: &str, instance: &str) -> String {
    match template.rsplit_once('.') {
        Some((stem, suffix)) => format!("{stem}{instance}.{suffix}"),
        None => format!("{template}{instance}"),
    }
}

/// fnmatch(3) with `FNM_NOESCAPE` and no other flag: `*` matches any run
/// of characters (`/` and leading `.` included), `?` one character,
/// `[...]` one character of a set (`!` or `^` negating, ranges, `]` first
/// taken literally, POSIX classes such as `[:alpha:]`); a `[` without a
/// closing `]` and a backslash are literal.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, name index).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if let Some(&pc) = p.get(pi) {
            let step = match pc {
                '*' => {
                    star = Some((pi + 1, ni));
                    pi += 1;
                    continue;
                }
                '?' => Some(pi + 1),
                '[' => match bracket(&p, pi, n[ni]) {
                    Some((true, next)) => Some(next),
                    Some((false, _)) => None,
                    None => (n[ni] == '[').then_some(pi + 1),
                },
                c => (c == n[ni]).then_some(pi + 1),
            };
            if let Some(next) = step {
                pi = next;
                ni += 1;
                continue;
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the bracket expression starting at `p[start] == '['`.
/// Returns (matched, index after the closing `]`), or `None` when the
/// bracket is not closed.
fn bracket(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &pc = p.get(i)?;
        if pc == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pc == '['
            && p.get(i + 1) == Some(&':')
            && let Some(len) = p[i + 2..].windows(2).position(|w| w == [':', ']'])
        {
            let class: String = p[i + 2..i + 2 + len].iter().collect();
            if let Some(is) = char_class(&class) {
                matched |= is(c);
                i += 2 + len + 2;
                continue;
            }
        }
        if p.get(i + 1) == Some(&'-')
            && let Some(&hi) = p.get(i + 2)
            && hi != ']'
        {
            matched |= pc <= c && c <= hi;
            i += 3;
            continue;
        }
        matched |= pc == c;
        i += 1;
    }
}

fn char_class(name: &str) -> Option<fn(char) -> bool> {
    Some(match name {
        "alnum" => |c: char| c.is_ascii_alphanumeric(),
        "alpha" => |c: char| c.is_ascii_alphabetic(),
        "blank" => |c: char| c == ' ' || c == '\t',
        "cntrl" => |c: char| c.is_ascii_control(),
        "digit" => |c: char| c.is_ascii_digit(),
        "graph" => |c: char| c.is_ascii_graphic(),
        "lower" => |c: char| c.is_ascii_lowercase(),
        "print" => |c: char| c.is_ascii_graphic() || c == ' ',
        "punct" => |c: char| c.is_ascii_punctuation(),
        "space" => |c: char| c.is_ascii_whitespace() || c == '\u{b}',
        "upper" => |c: char| c.is_ascii_uppercase(),
        "xdigit" => |c: char| c.is_ascii_hexdigit(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;
    use std::process::Command;

    fn units(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(n, e)| (n.to_string(), *e)).collect()
    }

    fn render_ok(package: &str, list: &[(&str, bool)]) -> String {
        match try_render(package, &units(list)) {
            Ok(t) => t,
            Err(e) => panic!("render failed: {e}"),
        }
    }

    const AL2023_DEFAULT: &str = "disable *\n";

    #[test]
    fn file_name_and_path_follow_the_priority_convention() {
        assert_eq!(file_name("web"), "50-web.preset");
        assert_eq!(path("web"), "/usr/lib/systemd/system-preset/50-web.preset");
    }

    #[test]
    fn render_enables_true_units_sorted_once_and_omits_false_ones() {
        let text = render_ok(
            "web",
            &[
                ("z.service", true),
                ("a.socket", true),
                ("off.service", false),
                ("z.service", true),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with('#') && lines[0].contains("web"),
            "{text}"
        );
        assert_eq!(&lines[1..], ["enable a.socket", "enable z.service"]);
        assert!(!text.contains("disable"));
        assert!(!text.contains("off.service"));
    }

    #[test]
    fn render_with_nothing_enabled_is_only_the_comment() {
        let text = render_ok("web", &[("a.service", false)]);
        assert_eq!(text.lines().count(), 1);
        assert!(
            PresetRules::from_files([("50-web.preset", text)])
                .rules()
                .is_empty()
        );
    }

    #[test]
    fn try_render_refuses_bad_unit_and_package_names() {
        assert!(try_render("web", &units(&[("not a unit", true)])).is_err());
        assert!(try_render("web", &units(&[("x.bogus", false)])).is_err());
        assert!(try_render("", &[]).is_err());
        assert!(try_render("a b", &[]).is_err());
        assert!(try_render("a/b", &[]).is_err());
        assert_eq!(
            try_render("web", &units(&[("a.service", true)])),
            Ok(render("web", &units(&[("a.service", true)])))
        );
    }

    #[test]
    fn render_leaves_out_invalid_names_so_no_line_can_be_injected() {
        let text = render(
            "web\ndisable *",
            &units(&[("x.service\nenable *", true), ("ok.service", true)]),
        );
        let rules = PresetRules::from_files([("50-web.preset", text.as_str())]);
        let patterns: Vec<&str> = rules.rules().iter().map(|r| r.pattern.as_str()).collect();
        assert_eq!(patterns, ["ok.service"], "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[test]
    fn rendered_preset_beats_al2023_default_disable() {
        let ours = render_ok(
            "web",
            &[("web.service", true), ("web-debug.service", false)],
        );
        let rules = PresetRules::from_files([
            ("99-default-disable.preset", AL2023_DEFAULT.to_string()),
            (file_name("web").as_str(), ours),
        ]);
        assert_eq!(
            rules.decide("web.service"),
            Some(PresetAction::Enable(vec![]))
        );
        assert_eq!(
            rules.decide("web-debug.service"),
            Some(PresetAction::Disable)
        );
        assert!(rules.warnings().is_empty());
    }

    #[test]
    fn first_match_wins_across_files_sorted_by_name() {
        let rules = PresetRules::from_files([
            ("90-b.preset", "enable x.service\n"),
            ("10-a.preset", "disable x.service\nenable x.service\n"),
        ]);
        assert_eq!(rules.decide("x.service"), Some(PresetAction::Disable));
        let (rule, _) = rules.matching_rule("x.service").unzip();
        assert_eq!(
            rule.map(|r| (r.file.as_str(), r.line)),
            Some(("10-a.preset", 1))
        );
    }

    #[test]
    fn later_pair_with_same_name_replaces_earlier_like_etc_over_usr_lib() {
        let rules = PresetRules::from_files([
            ("50-x.preset", "enable x.service\n"),
            ("50-x.preset", ""),
            ("99-default.preset", "disable *\n"),
        ]);
        assert_eq!(rules.decide("x.service"), Some(PresetAction::Disable));
    }

    #[test]
    fn no_matching_rule_gives_none() {
        let rules = PresetRules::from_files([("10-a.preset", "enable a.service\n")]);
        assert_eq!(rules.decide("b.service"), None);
    }

    #[test]
    fn comments_blank_lines_and_whitespace_are_ignored() {
        let rules =
            PresetRules::from_files([("10-a.preset", "# c\n  ; c2\n\n  enable\t a.service  \n")]);
        assert_eq!(rules.rules().len(), 1);
        assert_eq!(rules.rules()[0].pattern, "a.service");
        assert_eq!(rules.rules()[0].line, 4);
    }

    #[test]
    fn unknown_and_malformed_lines_are_skipped_with_a_warning() {
        let rules = PresetRules::from_files([
            (
                "10-a.preset",
                "mask a.service\nenabled b.service\nenable\nenable c.service x y\ndisable d.service\n",
            ),
            ("README", "enable e.service\n"),
        ]);
        let patterns: Vec<&str> = rules.rules().iter().map(|r| r.pattern.as_str()).collect();
        assert_eq!(patterns, ["d.service"]);
        let lines: Vec<(&str, usize)> = rules
            .warnings()
            .iter()
            .map(|w| (w.file.as_str(), w.line))
            .collect();
        assert_eq!(
            lines,
            [
                ("README", 0),
                ("10-a.preset", 1),
                ("10-a.preset", 2),
                ("10-a.preset", 3),
                ("10-a.preset", 4)
            ]
        );
    }

    #[test]
    fn ignore_directive_is_read_from_systemd_254_on() {
        let files = [("10-a.preset", "ignore a.service\ndisable *\n")];
        let new = PresetRules::from_files(files);
        assert_eq!(new.decide("a.service"), Some(PresetAction::Ignore));
        let old = PresetRules::for_systemd_version(files, 252);
        assert_eq!(old.decide("a.service"), Some(PresetAction::Disable));
        assert_eq!(old.warnings().len(), 1);
        let at_254 = PresetRules::for_systemd_version(files, 254);
        assert_eq!(at_254.decide("a.service"), Some(PresetAction::Ignore));
    }

    #[test]
    fn globs_match_as_fnmatch() {
        let rules = PresetRules::from_files([(
            "10-a.preset",
            "enable avahi-daemon.*\ndisable getty@tty[1-3].service\nenable getty@tty?.service\ndisable *\n",
        )]);
        let e = Some(PresetAction::Enable(vec![]));
        assert_eq!(rules.decide("avahi-daemon.socket"), e);
        assert_eq!(rules.decide("avahi-daemon.service"), e);
        assert_eq!(
            rules.decide("getty@tty2.service"),
            Some(PresetAction::Disable)
        );
        assert_eq!(rules.decide("getty@tty5.service"), e);
        assert_eq!(
            rules.decide("getty@tty10.service"),
            Some(PresetAction::Disable)
        );
    }

    #[test]
    fn fnmatch_handles_stars_sets_and_literals() {
        assert!(fnmatch("*", ""));
        assert!(fnmatch("*", "a.service"));
        assert!(fnmatch("a*b*c", "aXXbYYc"));
        assert!(!fnmatch("a*b*c", "aXXbYY"));
        assert!(fnmatch("*.service", "x.y.service"));
        assert!(!fnmatch("*.service", "x.socket"));
        assert!(fnmatch("?.service", "a.service"));
        assert!(!fnmatch("?.service", "ab.service"));
        assert!(fnmatch("[!a]x", "bx"));
        assert!(!fnmatch("[!a]x", "ax"));
        assert!(fnmatch("[^a]x", "bx"));
        assert!(fnmatch("[]]", "]"));
        assert!(fnmatch("[a-]", "-"));
        assert!(fnmatch("[[:digit:]]x", "7x"));
        assert!(!fnmatch("[[:digit:]]x", "ax"));
        assert!(fnmatch("[ab", "[ab"));
        assert!(fnmatch("a\\x2d*.mount", "a\\x2db.mount"));
        assert!(!fnmatch("a.service", "b.service"));
        assert!(fnmatch("**a", "bba"));
    }

    #[test]
    fn enable_template_with_instances_enables_them() {
        let rules = PresetRules::from_files([(
            "80-dirsrv.preset",
            "enable dirsrv@.service foo bar\ndisable *\n",
        )]);
        assert_eq!(
            rules.decide("dirsrv@.service"),
            Some(PresetAction::Enable(vec![
                "dirsrv@foo.service".to_string(),
                "dirsrv@bar.service".to_string()
            ]))
        );
        assert_eq!(
            rules.decide("dirsrv@foo.service"),
            Some(PresetAction::Enable(vec!["dirsrv@foo.service".to_string()]))
        );
        assert_eq!(
            rules.decide("dirsrv@baz.service"),
            Some(PresetAction::Disable)
        );
    }

    #[test]
    fn plain_template_rule_enables_the_default_instance() {
        let rules = PresetRules::from_files([("10-a.preset", "enable getty@.service\n")]);
        assert_eq!(
            rules.decide("getty@.service"),
            Some(PresetAction::Enable(vec![]))
        );
        assert_eq!(rules.decide("getty@tty1.service"), None);
    }

    #[test]
    fn disable_takes_the_rest_of_the_line_as_pattern() {
        let rules = PresetRules::from_files([("10-a.preset", "disable a.service b.service\n")]);
        assert_eq!(rules.rules()[0].pattern, "a.service b.service");
        assert_eq!(rules.decide("a.service"), None);
        assert_eq!(rules.warnings().len(), 1);
    }

    // --- judged by the real systemctl, offline on a scratch root ----------

    fn write(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    #[test]
    fn real_systemctl_preset_agrees_with_decide() {
        let Some(systemctl) = crate::testutil::judge("systemctl") else {
            return;
        };
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let r = root.path();
        let unit_text = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n";
        let names = ["web.service", "web-debug.service", "other.service"];
        for name in names {
            write(&r.join("usr/lib/systemd/system").join(name), unit_text);
        }
        std::fs::create_dir_all(r.join("etc/systemd/system"))
            .unwrap_or_else(|e| panic!("mkdir: {e}"));
        let ours = render_ok(
            "web",
            &[("web.service", true), ("web-debug.service", false)],
        );
        let presets = [
            (
                "99-default-disable.preset".to_string(),
                AL2023_DEFAULT.to_string(),
            ),
            (file_name("web"), ours),
            ("40-site.preset".to_string(), "enable other.*\n".to_string()),
        ];
        for (name, text) in &presets {
            write(&r.join("usr/lib/systemd/system-preset").join(name), text);
        }
        let out = Command::new(&systemctl)
            .arg(format!("--root={}", r.display()))
            .arg("preset")
            .args(names)
            .output()
            .unwrap_or_else(|e| panic!("running systemctl: {e}"));
        assert!(out.status.success(), "systemctl preset failed: {out:?}");

        let rules = PresetRules::from_files(presets.iter().map(|(n, t)| (n, t)));
        for name in names {
            let link = r
                .join("etc/systemd/system/multi-user.target.wants")
                .join(name);
            let enabled = link.symlink_metadata().is_ok();
            let decided = matches!(rules.decide(name), Some(PresetAction::Enable(_)) | None);
            assert_eq!(enabled, decided, "{name}: systemctl and decide() disagree");
        }
        assert!(
            r.join("etc/systemd/system/multi-user.target.wants/web.service")
                .symlink_metadata()
                .is_ok()
        );
        assert!(
            r.join("etc/systemd/system/multi-user.target.wants/web-debug.service")
                .symlink_metadata()
                .is_err()
        );
    }
}
