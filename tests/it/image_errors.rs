//! Bad image specs, including what only baking finds (a size too small, a
//! file onto a folder, an unknown account or unit, a pin that does not
//! hold) and hostile packages (rich dependencies nested past the parser's
//! limits in an RPM header): exit 2, an error at the spec's file, line and
//! column that never names a scratch file, and nothing in `--out`. Also:
//! nested rich dependencies that are fine still install, and modes worth
//! a warning reach the manifest.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{copy_dir, example_dir, ingot, repo_root, run_ok, stderr};
use crate::need;
use crate::spec_hostile::run_bounded;

/// The stand-in base of the committed example (read only).
fn base() -> PathBuf {
    repo_root().join("fixtures/al2023-standin/rootfs.tar.zst")
}

/// A temporary folder with `image.toml` holding `[image]` on the stand-in
/// base plus `rest` (keys of `[image]` first, then tables).
fn image_dir(keys: &str, rest: &str) -> (tempfile::TempDir, PathBuf, String) {
    let t = tempfile::tempdir().unwrap();
    let text = format!(
        "[image]\nname = \"probe\"\nbase = \"{}\"\n{keys}\n{rest}",
        base().display()
    );
    let spec = t.path().join("image.toml");
    std::fs::write(&spec, &text).unwrap();
    (t, spec, text)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` is not in:\n{text}"))
}

/// Nothing was written to `out` (the folder may exist, empty, if it did
/// before).
fn assert_nothing_written(out: &Path) {
    if let Ok(rd) = std::fs::read_dir(out) {
        let left: Vec<_> = rd.map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "a failed bake left {left:?} in {out:?}");
    }
}

/// Bake `spec` expecting exit 2 and nothing written; returns stderr.
fn bake_fails(spec: &Path) -> String {
    let out = spec.parent().unwrap().join("out");
    let o = run_bounded(
        ingot()
            .arg("bake")
            .arg(spec)
            .arg("--out")
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", "1704110400"),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2; stderr:\n{err}");
    assert_nothing_written(&out);
    assert!(!err.contains(".ingot-work"), "a scratch path in:\n{err}");
    err
}

/// [`bake_fails`], and the error is at `line` of the spec.
fn bake_fails_at(spec: &Path, line: usize) -> String {
    let err = bake_fails(spec);
    assert!(
        err.starts_with(&format!("error: `{}`:{line}:", spec.display())),
        "the error does not name {}:{line}:\n{err}",
        spec.display()
    );
    err
}

const FILE: &str = "[[image.files]]\ndest = \"/etc/probe.conf\"\ncontent = \"x\\n\"\n";

#[test]
fn errors_found_while_baking_name_the_line_of_the_spec() {
    // (keys of [image], tables, the line's needle, what the message says)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "formats = [\"tar\"]",
            "[[image.files]]\ndest = \"/etc\"\ncontent = \"x\\n\"\n",
            "dest = \"/etc\"",
            "`/etc` is a folder in the image",
        ),
        (
            "formats = [\"tar\"]",
            &format!("{FILE}user = \"nosuchuser\"\n"),
            "user =",
            "user `nosuchuser` for `/etc/probe.conf` does not exist in the image",
        ),
        (
            "formats = [\"tar\"]",
            &format!("{FILE}group = \"nosuchgroup\"\n"),
            "group =",
            "group `nosuchgroup` for `/etc/probe.conf` does not exist in the image",
        ),
        (
            "formats = [\"tar\"]",
            // Masking a unit that does not exist is fine (as with systemctl);
            // the error points at the entry that cannot be done.
            "[image.systemd]\nmask = [\"nope.service\"]\nenable = [\"nope.service\"]\n",
            "enable =",
            "cannot enable nope.service: unit nope.service does not exist",
        ),
        (
            "formats = [\"tar\"]",
            "[image.systemd]\ndisable = [\"gone.service\"]\n",
            "disable =",
            "cannot disable gone.service",
        ),
        ("formats = []", "", "formats =", "formats is empty"),
        (
            "formats = [\"tar\"]\nbase_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"",
            "",
            "base_sha256 =",
            "but the spec pins 0000",
        ),
    ];
    for (keys, rest, needle, says) in cases {
        let (_t, spec, text) = image_dir(keys, rest);
        let err = bake_fails_at(&spec, line_of(&text, needle));
        assert!(err.contains(says), "{text}\nno `{says}` in:\n{err}");
    }
}

#[test]
fn a_size_too_small_says_how_much_is_needed_in_mib_at_the_size_line() {
    let (_t, spec, text) = image_dir("formats = [\"raw\"]\nsize = \"1MiB\"", "");
    let err = bake_fails_at(&spec, line_of(&text, "size ="));
    let re = regex::Regex::new(
        r"the disk is too small: 1 MiB was asked for, but the partitions need at least [1-9][0-9]* MiB\n",
    )
    .unwrap();
    assert!(re.is_match(&err), "{err}");
}

#[test]
fn two_files_with_one_dest_name_both_lines_before_any_work() {
    let twice =
        format!("{FILE}\n[[image.files]]\ndest = \"/etc//probe.conf\"\ncontent = \"y\\n\"\n");
    let (_t, spec, text) = image_dir("formats = [\"tar\"]", &twice);
    let first = line_of(&text, "dest = \"/etc/probe.conf\"");
    let second = line_of(&text, "dest = \"/etc//probe.conf\"");
    let err = bake_fails_at(&spec, second);
    assert!(
        err.contains(&format!(
            "`/etc/probe.conf` is placed twice: here and at line {first}, column 8"
        )),
        "{err}"
    );
    // Before any work: refused while the spec is read, so even a base that
    // is not there yet is not looked at.
    let moved = text.replace(&base().display().to_string(), "missing.tar");
    std::fs::write(&spec, &moved).unwrap();
    let err = bake_fails_at(&spec, second);
    assert!(err.contains("placed twice"), "{err}");
}

#[test]
fn a_fifo_or_dev_zero_as_an_image_file_is_refused_without_hanging() {
    for src in ["fifo", "/dev/zero"] {
        let rest = format!("[[image.files]]\ndest = \"/etc/probe\"\nsrc = \"{src}\"\n");
        let (t, spec, text) = image_dir("formats = [\"tar\"]", &rest);
        let fifo = std::ffi::CString::new(t.path().join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a plain syscall on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = bake_fails_at(&spec, line_of(&text, "src ="));
        assert!(
            err.contains("a source must be a regular file, or a symlink to one"),
            "{err}"
        );
    }
}

#[test]
fn echoed_user_text_has_its_control_characters_escaped() {
    let rest = format!("{FILE}user = \"ev\\u001b[2Jil\"\n");
    let (_t, spec, text) = image_dir("formats = [\"tar\"]", &rest);
    let err = bake_fails_at(&spec, line_of(&text, "user ="));
    assert!(
        err.contains("user `ev\\u{1b}[2Jil` is not a valid name"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "a raw escape reached the terminal");
}

/// An `.rpm` made here with the `rpm` crate, requiring `requires`.
fn crafted_rpm(dir: &Path, requires: &str) -> PathBuf {
    let mut b = rpm::PackageBuilder::new("crafted", "1.0", "MIT", "noarch", "crafted");
    b.requires(rpm::Dependency::any(requires));
    let p = dir.join("crafted-1.0-1.noarch.rpm");
    b.build().unwrap().write_file(&p).unwrap();
    p
}

#[test]
fn a_hostile_rich_dependency_in_an_rpm_header_is_an_install_error_naming_the_limit() {
    let deep = format!("{}bash{}", "(".repeat(20_000), ")".repeat(20_000));
    for (requires, says) in [
        (
            deep.as_str(),
            "the rich dependency nests deeper than the limit of 32 levels of parentheses",
        ),
        ("(bash or (python3", "this `(` is never closed"),
    ] {
        let (t, spec, _) = image_dir(
            "packages = [\"crafted-1.0-1.noarch.rpm\"]\nformats = [\"tar\"]",
            "",
        );
        crafted_rpm(t.path(), requires);
        let err = bake_fails(&spec);
        assert!(
            err.starts_with(&format!(
                "error: package `{}`: its requirement `(",
                t.path().join("crafted-1.0-1.noarch.rpm").display()
            )) && err.contains("cannot be read"),
            "{err}"
        );
        assert!(err.contains(&format!("Caused by: {says}")), "{err}");
        assert!(
            err.len() < 1000,
            "the message echoes the whole dependency:\n{err}"
        );
    }
}

/// A package spec requiring `requires`, in `dir/pkg/pkg.toml`.
fn package_requiring(dir: &Path, requires: &str, mode: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("pkg/data.txt"), "data\n").unwrap();
    let spec = dir.join("pkg/pkg.toml");
    std::fs::write(
        &spec,
        format!(
            r#"[package]
name = "nested"
version = "1.0"
arch = "noarch"
summary = "Needs a nested rich dependency"
license = "MIT"

[dependencies]
auto = false
requires = ["{requires}"]

[[files]]
src = "data.txt"
dest = "/usr/share/nested/data.txt"
mode = "{mode}"

[[changelog]]
date = 2024-01-01
author = "tests <tests@example.invalid> - 1.0-1"
text = "- first"
"#
        ),
    )
    .unwrap();
    spec
}

#[test]
fn a_realistic_nested_rich_dependency_is_built_and_evaluated() {
    let rpm = need!("rpm");
    // Four levels; the stand-in base has python3 3.9, bash and systemd.
    let met =
        "((python3 >= 3.9 and (bash or (zsh with zsh-common))) if systemd else (rpm or nosuch))";
    let t = tempfile::tempdir().unwrap();
    let pkg = package_requiring(t.path(), met, "0644");
    let built = run_ok(
        ingot()
            .arg("build")
            .arg(&pkg)
            .arg("--out")
            .arg(t.path().join("dist")),
    );
    let file = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let requires = String::from_utf8_lossy(
        &run_ok(Command::new(&rpm).args(["-qp", "--requires"]).arg(&file)).stdout,
    )
    .into_owned();
    assert!(requires.lines().any(|l| l == met), "{requires}");

    let image = t.path().join("image.toml");
    std::fs::write(
        &image,
        format!(
            "[image]\nname = \"nested\"\nbase = \"{}\"\npackages = [\"pkg/pkg.toml\"]\nformats = [\"tar\"]\n",
            base().display()
        ),
    )
    .unwrap();
    run_ok(
        ingot()
            .arg("-q")
            .arg("bake")
            .arg(&image)
            .arg("--out")
            .arg(t.path().join("out")),
    );
    // The same shape with its inner branch unmet is unmet: it is evaluated.
    package_requiring(t.path(), &met.replace("3.9", "99"), "0644");
    let out = t.path().join("out2");
    let o = ingot()
        .arg("bake")
        .arg(&image)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("python3 >= 99"), "{}", stderr(&o));
    assert_nothing_written(&out);
}

#[test]
fn a_built_package_is_named_by_its_spec_never_by_its_scratch_file() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&example_dir(), &t.path().join("hello"));
    let rpm = crate::common::build(&t.path().join("hello/hello.toml"), &t.path().join("dist"));
    let image = t.path().join("image.toml");
    std::fs::write(
        &image,
        format!(
            "[image]\nname = \"twice\"\nbase = \"{}\"\npackages = [\"hello/hello.toml\", \"dist/{}\"]\nformats = [\"tar\"]\n",
            base().display(),
            rpm.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    let err = bake_fails(&image);
    assert!(
        err.contains(&format!(
            "`{}` and `{}` are both package `hello`",
            t.path().join("hello/hello.toml").display(),
            t.path()
                .join("dist")
                .join(rpm.file_name().unwrap())
                .display()
        )),
        "{err}"
    );
}

#[test]
fn setuid_and_writable_modes_reach_the_manifest_as_located_warnings() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package_requiring(t.path(), "bash", "2755");
    let image = t.path().join("image.toml");
    let text = format!(
        "[image]\nname = \"modes\"\nbase = \"{}\"\npackages = [\"pkg/pkg.toml\"]\nformats = [\"tar\"]\n\n\
         [[image.files]]\ndest = \"/etc/probe.conf\"\ncontent = \"x\\n\"\nmode = \"0666\"\n",
        base().display()
    );
    std::fs::write(&image, &text).unwrap();
    let out = t.path().join("out");
    let o = run_ok(
        ingot()
            .arg("--json")
            .arg("bake")
            .arg(&image)
            .arg("--out")
            .arg(&out),
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json["manifest"].as_str().unwrap()).unwrap())
            .unwrap();
    let pkg_text = std::fs::read_to_string(&pkg).unwrap();
    let expected = [
        format!(
            "`{}`:{}:8: `/etc/probe.conf` gets mode 0666, which is writable by every user",
            image.display(),
            line_of(&text, "\"0666\"")
        ),
        format!(
            "`{}`:{}:8: `/usr/share/nested/data.txt` gets mode 2755, which is setgid",
            pkg.display(),
            line_of(&pkg_text, "\"2755\"")
        ),
    ];
    for e in &expected {
        for (what, list) in [
            ("manifest", &manifest["warnings"]),
            ("--json", &json["warnings"]),
        ] {
            assert!(
                list.as_array().unwrap().iter().any(|w| w == e.as_str()),
                "no `{e}` in the {what} warnings: {list}"
            );
        }
        assert!(
            stderr(&o).contains(&format!("warning: {e}\n")),
            "{}",
            stderr(&o)
        );
    }
}
