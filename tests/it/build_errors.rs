//! Bad input: each is one clear error naming file, line and column, exit 2,
//! and nothing written to `--out`.

use std::path::{Path, PathBuf};

use crate::common::{copy_dir, example_dir, ingot, stderr};

/// The example spec copied into a temp folder, with `edit` applied to its
/// text; returns (folder, spec path).
fn example_with(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&example_dir(), t.path());
    let spec = t.path().join("hello.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changed nothing");
    std::fs::write(&spec, edited).unwrap();
    (t, spec)
}

/// Run `ingot build` expecting failure; returns stderr after checking exit
/// code 2 and that `--out` was not created.
fn fails(spec: &Path) -> String {
    let out = spec.parent().unwrap().join("out");
    let o = ingot()
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2; stderr:\n{err}");
    assert!(o.stdout.is_empty(), "stdout must stay empty on error");
    assert!(!out.exists(), "--out was created on error");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in spec"))
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let (_t, spec) = example_with(|s| s.replace("name = \"hello\"", "name = \"hello"));
    let err = fails(&spec);
    let line = line_of(&std::fs::read_to_string(&spec).unwrap(), "name = \"hello");
    assert!(
        err.contains(&format!("hello.toml`:{line}:")),
        "no file:line in:\n{err}"
    );
}

#[test]
fn unknown_key_is_an_error_with_did_you_mean() {
    let (_t, spec) = example_with(|s| s.replace("release = \"1\"", "relase = \"1\""));
    let err = fails(&spec);
    let text = std::fs::read_to_string(&spec).unwrap();
    let line = line_of(&text, "relase");
    assert!(err.contains(&format!("hello.toml`:{line}:1:")), "{err}");
    assert!(err.contains("unknown field `relase`"), "{err}");
    assert!(err.contains("hint: did you mean `release`?"), "{err}");
}

#[test]
fn unknown_key_in_an_array_table_is_caught_too() {
    let (_t, spec) = example_with(|s| s.replace("doc = true", "docs = true"));
    let err = fails(&spec);
    assert!(err.contains("did you mean `doc`?"), "{err}");
}

#[test]
fn dash_in_version_is_refused_at_its_column() {
    let (_t, spec) = example_with(|s| s.replace("version = \"1.0.0\"", "version = \"1.0-0\""));
    let err = fails(&spec);
    let text = std::fs::read_to_string(&spec).unwrap();
    let line = line_of(&text, "version = \"1.0-0\"");
    assert!(err.contains(&format!("hello.toml`:{line}:11:")), "{err}");
    assert!(err.contains("`-`"), "{err}");
}

#[test]
fn dash_in_release_is_refused() {
    let (_t, spec) = example_with(|s| s.replace("release = \"1\"", "release = \"1-2\""));
    let err = fails(&spec);
    assert!(err.contains("release `1-2`"), "{err}");
}

#[test]
fn missing_source_file_names_the_src_line() {
    let (_t, spec) = example_with(|s| s.replace("src = \"hello.conf\"", "src = \"nope.conf\""));
    let err = fails(&spec);
    let line = line_of(&std::fs::read_to_string(&spec).unwrap(), "nope.conf");
    assert!(err.contains(&format!("hello.toml`:{line}:7:")), "{err}");
    assert!(
        err.contains("nope.conf") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn two_entries_with_one_destination_are_refused() {
    let (_t, spec) = example_with(|s| {
        s.replace(
            "dest = \"/usr/share/doc/hello/README.md\"",
            "dest = \"/usr/bin/hello-server\"",
        )
    });
    let err = fails(&spec);
    let text = std::fs::read_to_string(&spec).unwrap();
    let first = line_of(&text, "dest = \"/usr/bin/hello-server\"");
    assert!(
        err.contains("`/usr/bin/hello-server` is packaged twice"),
        "{err}"
    );
    assert!(err.contains(&format!("line {first}")), "{err}");
}

#[test]
fn unit_file_that_does_not_parse_names_its_own_line() {
    let (t, spec) = example_with(|s| s.to_string() + "\n");
    let unit = t.path().join("hello.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text.replace("Restart=on-failure", "Restart on-failure"),
    )
    .unwrap();
    let err = fails(&spec);
    let line = line_of(
        &std::fs::read_to_string(&unit).unwrap(),
        "Restart on-failure",
    );
    assert!(err.contains(&format!("hello.service`:{line}:")), "{err}");
}

#[test]
fn enabled_unit_without_install_section_is_refused() {
    let (t, spec) = example_with(|s| s.to_string() + "\n");
    let unit = t.path().join("hello.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let cut = text.find("[Install]").unwrap();
    std::fs::write(&unit, &text[..cut]).unwrap();
    let err = fails(&spec);
    assert!(err.contains("hello.service`"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn decimal_mode_is_refused_with_an_octal_hint() {
    let (_t, spec) = example_with(|s| s.replace("mode = \"0640\"", "mode = 640"));
    let err = fails(&spec);
    assert!(err.contains("decimal"), "{err}");
    assert!(err.contains("0o640"), "{err}");
}

#[test]
fn malformed_dependency_points_inside_the_string() {
    let (_t, spec) = example_with(|s| {
        s.replace(
            "requires = [\"python3 >= 3.9\"]",
            "requires = [\"(python3 or\"]",
        )
    });
    let err = fails(&spec);
    assert!(err.contains("hello.toml`:"), "{err}");
}

#[test]
fn missing_spec_file_is_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let err = fails(&t.path().join("absent.toml"));
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn bad_usage_is_exit_2() {
    let o = ingot()
        .args(["build", "x.toml", "--compression", "lz4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("lz4"), "{}", stderr(&o));
}

#[test]
fn malformed_source_date_epoch_is_exit_2() {
    let o = ingot()
        .arg("build")
        .arg(example_dir().join("hello.toml"))
        .arg("--out")
        .arg(tempfile::tempdir().unwrap().path().join("o"))
        .env("SOURCE_DATE_EPOCH", "soon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("SOURCE_DATE_EPOCH"));
}
