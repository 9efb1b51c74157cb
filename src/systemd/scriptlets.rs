//! The install scriptlets systemd's RPM macros give a package, as POSIX
//! shell text.
//!
//! In: the unit names a package ships (and, for accounts, its sysusers.d
//! file name and text). Out: the body of `%post`, `%preun`, `%postun` and
//! `%pre`, each guarded by rpm's first argument (`$1`: how many versions of
//! the package will be installed once this step is done: 1 in `%post` of a
//! first install, 0 in `%preun`/`%postun` of an erase, and on upgrade 2 in
//! the new version's `%post`, 1 in the old version's `%preun`/`%postun`)
//! and each command ending in `|| :` so a scriptlet never fails the
//! transaction.
//!
//! It never runs anything, never uses systemd's `systemd-update-helper`
//! (the scriptlets are self-contained), and never writes bash-only syntax:
//! rpm runs scriptlets with `/bin/sh`, so output is redirected with
//! `>/dev/null 2>&1`, not `&>`. Unit names are shell-quoted when they need
//! it (a unit name may contain `\`), so any string is safe to pass.
//!
//! What each scriptlet does mirrors systemd's `macros.systemd` from before
//! `systemd-update-helper` (systemd v239, `src/core/macros.systemd.in`):
//! - [`post`] = `%systemd_post`: on first install, `systemctl --no-reload
//!   preset` the units, so the presets (systemd.preset(5)) decide whether
//!   they are enabled; nothing is started;
//! - [`preun`] = `%systemd_preun`: on erase (not upgrade), `systemctl
//!   --no-reload disable --now`;
//! - [`postun`] = `%systemd_postun_with_restart`: on upgrade, `systemctl
//!   try-restart` the units, so running ones pick up the new version.
//!
//! `daemon-reload`: the v239 macros leave it to the systemd package's own
//! file triggers, which run `systemctl daemon-reload` once at the end of
//! the transaction. That is after `%postun`, so a restart there would start
//! the new binary under the old unit definition; [`postun`] therefore runs
//! `systemctl daemon-reload` just before `try-restart`, as systemd's macros
//! did before the triggers existed (e.g. systemd 219). `%post` and
//! `%preun` need no reload: `preset` and `disable --now` work from the unit
//! files, and the triggers reload once afterwards.
//!
//! [`sysusers_pre`] = `%sysusers_create_package`: create the accounts of a
//! sysusers.d(5) file before the package's files are placed, with
//! `systemd-sysusers --replace=` so the same file, installed later, is
//! taken as already applied (systemd-sysusers(8)).

/// Where a package's sysusers.d file goes.
pub const SYSUSERS_DIR: &str = "/usr/lib/sysusers.d";

/// `%post`: on first install, apply the presets to the units.
/// Empty when `units` is empty.
pub fn post<S: AsRef<str>>(units: &[S]) -> String {
    guarded(
        "[ $1 -eq 1 ]",
        "Initial installation: enable the units if the presets say so",
        &[format!("systemctl --no-reload preset {}", words(units))],
        units.is_empty(),
    )
}

/// `%preun`: on erase (not upgrade), disable and stop the units.
/// Empty when `units` is empty.
pub fn preun<S: AsRef<str>>(units: &[S]) -> String {
    guarded(
        "[ $1 -eq 0 ]",
        "Package removal, not upgrade: disable and stop the units",
        &[format!(
            "systemctl --no-reload disable --now {}",
            words(units)
        )],
        units.is_empty(),
    )
}

/// `%postun`: on upgrade (not erase), reload unit files and restart the
/// units that are running. Empty when `units` is empty.
pub fn postun<S: AsRef<str>>(units: &[S]) -> String {
    guarded(
        "[ $1 -ge 1 ]",
        "Package upgrade, not removal: load the new unit files, restart running units",
        &[
            "systemctl daemon-reload".to_string(),
            format!("systemctl try-restart {}", words(units)),
        ],
        units.is_empty(),
    )
}

/// `%pre`: create the accounts of the sysusers.d file `conf_name` (whose
/// text is `conf_text`) on a live system, before the package's files are
/// placed. `conf_name` is the file's name under [`SYSUSERS_DIR`], with or
/// without its `.conf` suffix (`web` and `web.conf` both mean
/// `/usr/lib/sysusers.d/web.conf`). The text goes through a quoted
/// here-document, so `$` and backquotes in it stay literal.
pub fn sysusers_pre(conf_name: &str, conf_text: &str) -> String {
    let conf_name = conf_name.strip_suffix(".conf").unwrap_or(conf_name);
    let mut delimiter = String::from("INGOT_SYSUSERS_EOF");
    while conf_text.lines().any(|l| l == delimiter) {
        delimiter.push('_');
    }
    let replace = quote(&format!("--replace={SYSUSERS_DIR}/{conf_name}.conf"));
    let mut out = format!("systemd-sysusers {replace} - <<'{delimiter}' || :\n");
    out.push_str(conf_text);
    if !conf_text.is_empty() && !conf_text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&delimiter);
    out.push('\n');
    out
}

fn guarded(test: &str, comment: &str, commands: &[String], empty: bool) -> String {
    if empty {
        return String::new();
    }
    let mut out = format!("if {test}; then\n    # {comment}\n");
    for c in commands {
        out.push_str(&format!("    {c} >/dev/null 2>&1 || :\n"));
    }
    out.push_str("fi\n");
    out
}

fn words<S: AsRef<str>>(units: &[S]) -> String {
    units
        .iter()
        .map(|u| quote(u.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word for `sh`: as is when it has only characters the shell leaves
/// alone, else in single quotes (a `'` inside becomes `'\''`).
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    fn write_exec(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {path:?}: {e}"));
    }

    /// A scratch dir with `bin/` holding fake tools that log to `log`.
    struct Sandbox {
        dir: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            std::fs::create_dir(dir.path().join("bin")).unwrap_or_else(|e| panic!("mkdir: {e}"));
            Sandbox { dir }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        /// A fake tool that logs its name and arguments, one per line
        /// between `[` `]`, and exits with `status`.
        fn fake(&self, name: &str, status: i32) {
            let log = self.path("log");
            let body = format!(
                "#!/bin/sh\nprintf '%s' '{name}' >> '{log}'\nfor a in \"$@\"; do printf ' [%s]' \"$a\" >> '{log}'; done\n\
                 printf '\\n' >> '{log}'\nexit {status}\n",
                log = log.display()
            );
            write_exec(&self.path(&format!("bin/{name}")), &body);
        }

        /// Run a scriptlet as rpm does: `sh FILE ARG`, with only our fake
        /// tools on PATH.
        fn run(&self, sh: &Path, script: &str, arg: &str) -> Output {
            let file = self.path("scriptlet.sh");
            std::fs::write(&file, script).unwrap_or_else(|e| panic!("write: {e}"));
            Command::new(sh)
                .arg(&file)
                .arg(arg)
                .env("PATH", self.path("bin"))
                .output()
                .unwrap_or_else(|e| panic!("running sh: {e}"))
        }

        fn take_log(&self) -> String {
            let log = self.path("log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            text
        }
    }

    fn syntax_ok(sh: &Path, script: &str) {
        let out = Command::new(sh)
            .arg("-n")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap_or_else(|e| panic!("running sh -n: {e}"));
        assert!(
            out.status.success(),
            "sh -n rejected:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    const UNITS: [&str; 2] = ["web.service", "web@main.service"];

    #[test]
    fn post_text_mirrors_the_systemd_post_macro() {
        assert_eq!(
            post(&["web.service"]),
            "if [ $1 -eq 1 ]; then\n    \
             # Initial installation: enable the units if the presets say so\n    \
             systemctl --no-reload preset web.service >/dev/null 2>&1 || :\nfi\n"
        );
    }

    #[test]
    fn scriptlets_take_owned_or_borrowed_names() {
        let owned: Vec<String> = vec!["a.service".to_string()];
        assert_eq!(post(&owned), post(&["a.service"]));
        assert_eq!(preun(owned.as_slice()), preun(&["a.service"]));
        assert!(postun(&owned).contains("try-restart a.service"));
    }

    #[test]
    fn no_units_give_empty_scriptlets() {
        let none: [&str; 0] = [];
        assert_eq!(post(&none), "");
        assert_eq!(preun(&none), "");
        assert_eq!(postun(&none), "");
    }

    #[test]
    fn scriptlets_are_posix_sh_without_bashisms() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let conf = "u web - \"Web\"\n";
        for script in [
            post(&UNITS),
            preun(&UNITS),
            postun(&UNITS),
            sysusers_pre("web", conf),
        ] {
            syntax_ok(&sh, &script);
            assert!(!script.contains("&>"), "bash redirection in:\n{script}");
            assert!(!script.contains("[["), "bash test in:\n{script}");
        }
    }

    #[test]
    fn post_presets_units_on_first_install_only() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let sb = Sandbox::new();
        sb.fake("systemctl", 0);
        let script = post(&UNITS);
        for (arg, expected) in [
            (
                "1",
                "systemctl [--no-reload] [preset] [web.service] [web@main.service]\n",
            ),
            ("2", ""),
            ("0", ""),
        ] {
            let out = sb.run(&sh, &script, arg);
            assert!(out.status.success(), "$1={arg}: {out:?}");
            assert_eq!(sb.take_log(), expected, "$1={arg}");
        }
    }

    #[test]
    fn preun_disables_and_stops_on_erase_only() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let sb = Sandbox::new();
        sb.fake("systemctl", 0);
        let script = preun(&UNITS);
        for (arg, expected) in [
            (
                "0",
                "systemctl [--no-reload] [disable] [--now] [web.service] [web@main.service]\n",
            ),
            ("1", ""),
            ("2", ""),
        ] {
            let out = sb.run(&sh, &script, arg);
            assert!(out.status.success(), "$1={arg}: {out:?}");
            assert_eq!(sb.take_log(), expected, "$1={arg}");
        }
    }

    #[test]
    fn postun_reloads_then_try_restarts_on_upgrade_only() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let sb = Sandbox::new();
        sb.fake("systemctl", 0);
        let script = postun(&UNITS);
        let upgrade = "systemctl [daemon-reload]\n\
                       systemctl [try-restart] [web.service] [web@main.service]\n";
        for (arg, expected) in [("1", upgrade), ("2", upgrade), ("0", "")] {
            let out = sb.run(&sh, &script, arg);
            assert!(out.status.success(), "$1={arg}: {out:?}");
            assert_eq!(sb.take_log(), expected, "$1={arg}");
        }
    }

    #[test]
    fn failing_or_missing_systemctl_never_fails_the_scriptlet() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let sb = Sandbox::new();
        for (script, arg) in [
            (post(&UNITS), "1"),
            (preun(&UNITS), "0"),
            (postun(&UNITS), "1"),
        ] {
            let out = sb.run(&sh, &script, arg);
            assert!(out.status.success(), "missing systemctl failed: {out:?}");
        }
        sb.fake("systemctl", 3);
        for (script, arg) in [
            (post(&UNITS), "1"),
            (preun(&UNITS), "0"),
            (postun(&UNITS), "1"),
        ] {
            let out = sb.run(&sh, &script, arg);
            assert!(out.status.success(), "failing systemctl failed: {out:?}");
            assert!(!sb.take_log().is_empty(), "systemctl was not called");
        }
    }

    #[test]
    fn odd_unit_names_reach_systemctl_as_single_words() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let sb = Sandbox::new();
        sb.fake("systemctl", 0);
        let marker = sb.path("pwned");
        let evil = format!("x'; touch {} #.service", marker.display());
        let units = ["dev-disk-by\\x2dlabel-data.mount".to_string(), evil.clone()];
        let out = sb.run(&sh, &post(&units), "1");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            sb.take_log(),
            format!(
                "systemctl [--no-reload] [preset] [dev-disk-by\\x2dlabel-data.mount] [{evil}]\n"
            )
        );
        assert!(!marker.exists(), "unit name was executed as shell");
    }

    #[test]
    fn sysusers_pre_feeds_the_file_verbatim_to_systemd_sysusers() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let sb = Sandbox::new();
        let stdin_copy = sb.path("stdin");
        write_exec(
            &sb.path("bin/systemd-sysusers"),
            &format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\" >> '{log}'; done\n\
                 while IFS= read -r l; do printf '%s\\n' \"$l\"; done > '{stdin}'\nexit 1\n",
                log = sb.path("log").display(),
                stdin = stdin_copy.display()
            ),
        );
        let conf = "g web -\nu web -:web \"Web $HOME `id`\" /var/lib/web\nINGOT_SYSUSERS_EOF\n";
        let script = sysusers_pre("web", conf);
        syntax_ok(&sh, &script);
        let out = sb.run(&sh, &script, "1");
        assert!(
            out.status.success(),
            "a failing systemd-sysusers failed %pre: {out:?}"
        );
        assert_eq!(sb.take_log(), "[--replace=/usr/lib/sysusers.d/web.conf][-]");
        let got = std::fs::read_to_string(&stdin_copy).unwrap_or_default();
        assert_eq!(got, conf);
    }

    #[test]
    fn sysusers_pre_takes_the_name_with_or_without_conf_suffix() {
        let text = "u web -\n";
        assert_eq!(sysusers_pre("web", text), sysusers_pre("web.conf", text));
        assert!(
            sysusers_pre("web.conf", text)
                .starts_with("systemd-sysusers --replace=/usr/lib/sysusers.d/web.conf - <<"),
            "{}",
            sysusers_pre("web.conf", text)
        );
    }

    #[test]
    fn sysusers_pre_adds_the_final_newline_and_survives_a_missing_tool() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let script = sysusers_pre("web", "u web -");
        assert!(
            script.contains("\nu web -\nINGOT_SYSUSERS_EOF\n"),
            "{script}"
        );
        let sb = Sandbox::new();
        let out = sb.run(&sh, &script, "1");
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn sysusers_pre_creates_accounts_with_the_real_tool() {
        let Some(sh) = crate::testutil::judge("sh") else {
            return;
        };
        let Some(real) = crate::testutil::judge("systemd-sysusers") else {
            return;
        };
        let sb = Sandbox::new();
        let root = sb.path("root");
        std::fs::create_dir_all(root.join("etc")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        for f in ["passwd", "group", "shadow", "gshadow"] {
            std::fs::write(root.join("etc").join(f), "").unwrap_or_else(|e| panic!("seed: {e}"));
        }
        // The scriptlet calls `systemd-sysusers` without --root; this
        // wrapper keeps the real tool inside the scratch root.
        write_exec(
            &sb.path("bin/systemd-sysusers"),
            &format!(
                "#!/bin/sh\nexec '{}' --root='{}' \"$@\"\n",
                real.display(),
                root.display()
            ),
        );
        let conf = "g ingotweb 4711\nu ingotweb 4711:ingotweb \"Ingot web\" /var/lib/ingotweb\n";
        let out = sb.run(&sh, &sysusers_pre("ingotweb", conf), "1");
        assert!(out.status.success(), "{out:?}");
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        assert!(
            passwd.contains("ingotweb:x:4711:4711:Ingot web:/var/lib/ingotweb:"),
            "passwd: {passwd}\n{out:?}"
        );
        let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
        assert!(group.contains("ingotweb:x:4711:"), "group: {group}");
    }

    #[test]
    fn quote_leaves_plain_words_and_single_quotes_the_rest() {
        assert_eq!(quote("web@main.service"), "web@main.service");
        assert_eq!(quote("a\\x2db.mount"), "'a\\x2db.mount'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
