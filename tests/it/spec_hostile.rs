//! Hostile or careless package specs: control characters in text fields,
//! forged changelog entries, rich dependencies nested past the parser's
//! limits, sources that are not files (a FIFO, `/dev/zero`) and modes
//! worth a warning. Each refusal is exit 2 with
//! file:line:column and nothing in `--out`; what is accepted is judged by
//! rpm itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ingot, run_ok, stderr, stdout};
use crate::need;

/// A package spec that builds without any dependency (`auto = false`),
/// with `body` appended; `fields` goes into `[package]`, `deps` into
/// `[dependencies]`.
fn spec_with(fields: &str, deps: &str, body: &str) -> String {
    format!(
        r#"[package]
name = "probe"
version = "1.0"
arch = "noarch"
summary = "A probe package"
license = "MIT"
{fields}

[dependencies]
auto = false
{deps}

[[files]]
src = "data.txt"
dest = "/usr/share/probe/data.txt"

{body}

[[changelog]]
date = 2024-01-01
author = "tests <tests@example.invalid> - 1.0-1"
text = "- first"
"#
    )
}

fn spec_text(fields: &str, body: &str) -> String {
    spec_with(fields, "", body)
}

/// A folder holding `spec.toml` with `text`, and the file it packages.
fn spec_dir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("data.txt"), "data\n").unwrap();
    let spec = t.path().join("spec.toml");
    std::fs::write(&spec, text).unwrap();
    (t, spec)
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` is not in:\n{text}"))
}

/// Run `cmd` with its output in files, waiting until it ends; a command
/// still running after a limit far above anything it needs has hung, and
/// is killed so that a regression cannot hang the suite.
pub fn run_bounded(cmd: &mut Command) -> Output {
    let t = tempfile::tempdir().unwrap();
    let (out, err) = (t.path().join("stdout"), t.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let limit = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} was still running after 300 s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(out).unwrap(),
        stderr: std::fs::read(err).unwrap(),
    }
}

/// `ingot build` must refuse `spec`: exit 2, an error at `line` of the
/// spec, nothing written. Returns stderr.
fn refused_at(spec: &Path, line: usize) -> String {
    let out = spec.parent().unwrap().join("out");
    let o = run_bounded(ingot().arg("build").arg(spec).arg("--out").arg(&out));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2; stderr:\n{err}");
    assert!(o.stdout.is_empty(), "stdout must stay empty on error");
    assert!(!out.exists(), "--out was created on error");
    assert!(
        err.starts_with(&format!("error: `{}`:{line}:", spec.display())),
        "the error does not name {}:{line}:\n{err}",
        spec.display()
    );
    err
}

#[test]
fn control_characters_in_text_fields_are_refused_where_they_are_written() {
    // (what goes into [package], into [dependencies], after [[files]];
    // the line's needle; what the message must say)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "",
            "",
            "[scripts]\npost = \"\"\"\necho one\necho \\u0000two\n\"\"\"",
            "post =",
            "script `post` contains the control character '\\0'",
        ),
        (
            "description = \"fine\\u001b[31m red\"",
            "",
            "",
            "description =",
            "'\\u{1b}'",
        ),
        (
            "url = \"https://example.invalid/\\ta\"",
            "",
            "",
            "url =",
            "'\\t'",
        ),
        (
            "vendor = \"a\\nb\"",
            "",
            "",
            "vendor =",
            "must be a single line",
        ),
        (
            "description = \"next line\\u0085\"",
            "",
            "",
            "description =",
            "'\\u{85}'",
        ),
        (
            "packager = \"me\\u007f\"",
            "",
            "",
            "packager =",
            "'\\u{7f}'",
        ),
        (
            "",
            "",
            "[[symlinks]]\npath = \"/usr/bin/probe\"\ntarget = \"x\\u0000y\"",
            "target =",
            "'\\0'",
        ),
        (
            "",
            "",
            "[[changelog]]\ndate = 2023-01-01\nauthor = \"a\"\ntext = \"- one\\r\\n- two\"",
            "text = \"- one",
            "'\\r'",
        ),
        (
            "",
            "",
            "[[users]]\nname = \"probe\"\ndescription = \"x\\u001b]0;owned\\u0007\"",
            "description = \"x",
            "'\\u{1b}'",
        ),
        (
            "",
            "requires = [\"bash\\u0000\"]",
            "",
            "requires =",
            "control character",
        ),
    ];
    for (fields, deps, body, needle, says) in cases {
        let text = spec_with(fields, deps, body);
        let (_t, spec) = spec_dir(&text);
        let err = refused_at(&spec, line_of(&text, needle));
        assert!(err.contains(says), "{text}\nno `{says}` in:\n{err}");
        assert!(
            !err.bytes().any(|b| b < 0x20 && b != b'\n') && !err.contains('\u{7f}'),
            "a control character reached the terminal:\n{err:?}"
        );
    }
}

#[test]
fn a_changelog_text_cannot_forge_another_entry() {
    let forged = "[[changelog]]\ndate = 2023-06-01\nauthor = \"honest <h@example.invalid> - 0.9-1\"\n\
                  text = \"\"\"\n- fix\n* Mon Jan 01 2024 Mallory <m@example.invalid> - 6.6.6-1\n- backdoor\"\"\"";
    let text = spec_text("", forged);
    let (_t, spec) = spec_dir(&text);
    let err = refused_at(&spec, line_of(&text, "text = \"\"\""));
    assert!(
        err.contains("line 2 of the changelog text starts with `*`")
            && err.contains("another entry"),
        "{err}"
    );
}

#[test]
fn multi_line_description_scripts_and_changelog_round_trip_through_rpm() {
    let rpm = need!("rpm");
    let description = "First line of the description.\n\n  An indented line, kept.\nLast line.";
    let post = "if [ \"$1\" = 1 ]; then\n\techo \"first install\"\nfi\n";
    let preun = "echo leaving\n";
    let body = format!(
        "[scripts]\npost = '''\n{post}'''\npreun = '''\n{preun}'''\n\n\
         [[changelog]]\ndate = 2023-06-01\nauthor = \"older <o@example.invalid> - 0.9-1\"\n\
         text = '''\n- one\n  * an indented bullet\n- two'''"
    );
    let text = spec_text(&format!("description = '''\n{description}'''"), &body);
    let (t, spec) = spec_dir(&text);
    let out = t.path().join("out");
    let o = run_ok(
        ingot()
            .arg("build")
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", "1704110400"),
    );
    let pkg = PathBuf::from(stdout(&o).trim());

    let changelog = stdout(&run_ok(
        Command::new(&rpm).args(["-qp", "--changelog"]).arg(&pkg),
    ));
    assert_eq!(
        changelog,
        "* Mon Jan 01 2024 tests <tests@example.invalid> - 1.0-1\n- first\n\n\
         * Thu Jun 01 2023 older <o@example.invalid> - 0.9-1\n- one\n  * an indented bullet\n- two\n\n"
    );
    let scripts = stdout(&run_ok(
        Command::new(&rpm).args(["-qp", "--scripts"]).arg(&pkg),
    ));
    assert!(
        scripts.contains(&format!(
            "postinstall scriptlet (using /bin/sh):\n{}",
            post.trim_end()
        )),
        "{scripts}"
    );
    assert!(
        scripts.contains(&format!(
            "preuninstall scriptlet (using /bin/sh):\n{}",
            preun.trim_end()
        )),
        "{scripts}"
    );
    let info = stdout(&run_ok(Command::new(&rpm).args(["-qpi"]).arg(&pkg)));
    assert!(
        info.ends_with(&format!("Description :\n{description}\n")),
        "{info}"
    );
}

fn nested(depth: usize) -> String {
    format!("{}bash{}", "(".repeat(depth), ")".repeat(depth))
}

#[test]
fn a_rich_dependency_nested_20000_deep_in_a_spec_names_the_depth_limit() {
    let text = spec_with("", &format!("requires = [\"{}\"]", nested(20_000)), "");
    let (_t, spec) = spec_dir(&text);
    let line = line_of(&text, "requires =");
    let err = refused_at(&spec, line);
    // Column: the opening quote is at 13, so the 33rd `(` is at 13 + 33.
    assert!(
        err.starts_with(&format!("error: `{}`:{line}:46: ", spec.display())),
        "{err}"
    );
    assert!(
        err.contains("nests deeper than the limit of 32 levels of parentheses"),
        "{err}"
    );
}

#[test]
fn a_fifo_or_dev_zero_as_a_source_is_refused_at_its_src_line_without_hanging() {
    for src in ["fifo", "/dev/zero"] {
        let text = spec_text(
            "",
            &format!("[[files]]\nsrc = \"{src}\"\ndest = \"/usr/share/probe/x\""),
        );
        let (t, spec) = spec_dir(&text);
        let fifo = t.path().join("fifo");
        let made = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a plain syscall on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(made.as_ptr(), 0o644) }, 0);
        let err = refused_at(&spec, line_of(&text, &format!("src = \"{src}\"")));
        let what = if src == "fifo" {
            "is a FIFO"
        } else {
            "is a character device"
        };
        assert!(err.contains(what), "{err}");
    }
}

#[test]
fn setuid_and_writable_modes_build_with_located_warnings() {
    let body = "[[files]]\nsrc = \"data.txt\"\ndest = \"/usr/bin/probe-su\"\nmode = \"4755\"\n\n\
                [[dirs]]\npath = \"/var/lib/probe\"\nmode = \"0777\"\n\n\
                [[files]]\nsrc = \"data.txt\"\ndest = \"/etc/probe.conf\"\nmode = \"0664\"";
    let text = spec_text("", body);
    let (t, spec) = spec_dir(&text);
    let o = run_ok(
        ingot()
            .arg("--json")
            .arg("build")
            .arg(&spec)
            .arg("--out")
            .arg(t.path().join("out")),
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    let file = spec.display();
    let expected = [
        format!(
            "`{file}`:{}:8: `/usr/bin/probe-su` gets mode 4755, which is setuid",
            line_of(&text, "\"4755\"")
        ),
        format!(
            "`{file}`:{}:8: `/var/lib/probe` gets mode 0777, which is writable by every user",
            line_of(&text, "\"0777\"")
        ),
        format!(
            "`{file}`:{}:8: `/etc/probe.conf` gets mode 0664, which is writable by its group",
            line_of(&text, "\"0664\"")
        ),
    ];
    for e in &expected {
        assert!(warnings.contains(&e.as_str()), "no `{e}` in {warnings:?}");
        assert!(
            stderr(&o).contains(&format!("warning: {e}\n")),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(warnings.len(), expected.len(), "{warnings:?}");
}

#[test]
fn a_fifo_dev_zero_or_huge_file_as_the_spec_itself_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("spec.toml");
    run_ok(Command::new("mkfifo").arg(&fifo));
    let huge = t.path().join("huge.toml");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(64 * 1024 * 1024).unwrap();
    for (spec, says) in [
        (fifo.as_path(), "a FIFO, not a regular file"),
        (
            Path::new("/dev/zero"),
            "a character device, not a regular file",
        ),
        (huge.as_path(), "over the 4194304-byte limit for a spec"),
    ] {
        for cmd in ["build", "bake"] {
            let out = t.path().join("out");
            let o = run_bounded(ingot().arg(cmd).arg(spec).arg("--out").arg(&out));
            assert_eq!(
                o.status.code(),
                Some(2),
                "{cmd} {}: {}",
                spec.display(),
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(says),
                "{cmd} {}: {}",
                spec.display(),
                stderr(&o)
            );
            assert!(!out.exists(), "{cmd} {}: --out was made", spec.display());
        }
    }
}

#[test]
fn a_fifo_or_device_as_base_on_the_command_line_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("base.tar");
    run_ok(Command::new("mkfifo").arg(&fifo));
    let spec = crate::common::repo_root().join("specs/hello-image.toml");
    for (base, says) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
    ] {
        let out = t.path().join("out");
        let o = run_bounded(
            ingot()
                .arg("bake")
                .arg(&spec)
                .arg("--base")
                .arg(base)
                .arg("--out")
                .arg(&out),
        );
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}: {}",
            base.display(),
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(says),
            "{}: {}",
            base.display(),
            stderr(&o)
        );
        assert!(!out.exists());
    }
}
