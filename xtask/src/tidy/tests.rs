//! Each check on a small planted tree: a clean one passes, and each
//! planted violation is found, at its line, by its check alone.

use std::path::Path;

use super::{Check, Problem, check};

const CODE_MAP: &str = "# Architecture\n\n## Code map\n\n\
    | path | what |\n| --- | --- |\n\
    | `src/lib.rs` | root |\n| `src/source_date.rs` | time |\n| `src/cli/` | the binary |\n\
    | `src/store/` | stores |\n| `src/spec.rs` | specs |\n| `src/boottest/` | boots |\n\
    | `src/testutil.rs` | test helpers |\n\n\
    ## Invariants\n\n`src/nowhere.rs` is not in the map.\n";

/// A tree that passes every check; `extra` files are added or replace.
fn plant(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(&str, &str)> = vec![
        ("ARCHITECTURE.md", CODE_MAP),
        (
            "src/lib.rs",
            "//! The crate.\npub mod boottest;\npub mod store;\npub mod source_date;\npub mod spec;\n\
             #[cfg(test)]\nmod testutil;\npub use store::Image;\n",
        ),
        ("src/main.rs", "mod cli;\nfn main() { cli::main() }\n"),
        (
            "src/cli/mod.rs",
            "mod printer;\nuse ingot::Image;\npub fn main() { let t = std::time::Instant::now(); \
             printer::say(\"x\"); let _ = (Image, t); }\n",
        ),
        (
            "src/cli/printer.rs",
            "pub fn say(s: &str) { println!(\"{s}\"); let _ = std::io::stderr(); }\n",
        ),
        (
            "src/source_date.rs",
            "/// Never reads the clock: says so in a comment, `SystemTime::now()`.\n\
             pub fn epoch() -> u64 { let _s = \"Instant::now() println!\"; 0 }\n",
        ),
        (
            "src/store/mod.rs",
            "mod gpt;\nmod vmdk;\npub use gpt::Image;\nuse crate::spec::Spec;\n\
             pub fn make(_: Spec) { let mut c = std::process::Command::new(\"x\"); \
             c.stdout(std::process::Stdio::null()); }\n",
        ),
        ("src/store/gpt.rs", "pub struct Image;\n"),
        (
            "src/store/vmdk.rs",
            "use super::gpt::Image;\npub fn w(_: Image) {}\n",
        ),
        (
            "src/spec.rs",
            "pub struct Spec;\n#[cfg(test)]\nmod tests {\n    use crate::store::Image;\n    \
             #[test]\n    fn t() { eprintln!(\"ok\"); let _ = std::time::SystemTime::now(); \
             let _ = Image; }\n}\n",
        ),
        (
            "src/boottest/mod.rs",
            "pub fn wait() {\n    let until = std::time::Instant::now();\n    \
             // SAFETY: a comment above the statement.\n    let pid =\n        \
             unsafe { libc::getpid() };\n    let _ = (until, pid);\n}\n",
        ),
        (
            "src/testutil.rs",
            "pub fn judge() { eprintln!(\"SKIPPED\"); }\n",
        ),
        (
            "xtask/src/main.rs",
            "fn main() {\n    // SAFETY: getpid has no preconditions.\n    \
             let _ = unsafe { libc::getpid() };\n}\n",
        ),
    ];
    for (p, text) in extra {
        files.retain(|(q, _)| q != p);
        files.push((p, text));
    }
    for (p, text) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn problems(extra: &[(&str, &str)]) -> Vec<Problem> {
    let dir = plant(extra);
    check(dir.path()).expect("check runs")
}

/// The problems, as (check, where): what each test expects exactly.
fn found(extra: &[(&str, &str)]) -> Vec<(Check, String)> {
    problems(extra)
        .into_iter()
        .map(|p| (p.check, p.at))
        .collect()
}

#[test]
fn a_clean_tree_passes() {
    assert_eq!(problems(&[]), []);
}

#[test]
fn a_clock_read_outside_its_places_fails() {
    let lib = "pub fn size() -> u64 {\n    let t = std::time::Instant::now();\n    \
               let d = std::time::SystemTime::now();\n    let _ = (t, d);\n    0\n}\n";
    assert_eq!(
        found(&[("src/store/gpt.rs", &format!("pub struct Image;\n{lib}"))]),
        [
            (Check::Clock, "src/store/gpt.rs:3".to_string()),
            (Check::Clock, "src/store/gpt.rs:4".to_string())
        ]
    );
    // The CLI and boot-test may time things, not read the date.
    let date = "pub fn wait() { let _ = std::time::SystemTime::now(); }\n";
    assert_eq!(
        found(&[("src/boottest/mod.rs", date)]),
        [(Check::Clock, "src/boottest/mod.rs:1".to_string())]
    );
    let jiff = "pub fn epoch() -> u64 { jiff::Timestamp::now().as_second() as u64 }\n";
    assert_eq!(found(&[("src/source_date.rs", jiff)]), []);
}

#[test]
fn printing_outside_the_printer_fails() {
    let text = "pub struct Image;\nfn a() { println!(\"x\"); }\nfn b() { dbg!(1); }\n\
                fn c() { use std::io::Write; let _ = writeln!(std::io::stdout(), \"x\"); }\n\
                fn d() { eprint!(\"x\"); }\n";
    let p = problems(&[("src/store/gpt.rs", text)]);
    let at: Vec<(&str, &str)> = p.iter().map(|p| (p.at.as_str(), p.what.as_str())).collect();
    assert_eq!(
        at,
        [
            (
                "src/store/gpt.rs:2",
                "`println!` prints outside src/cli/printer.rs"
            ),
            (
                "src/store/gpt.rs:3",
                "`dbg!` prints outside src/cli/printer.rs"
            ),
            (
                "src/store/gpt.rs:4",
                "`stdout()` prints outside src/cli/printer.rs"
            ),
            (
                "src/store/gpt.rs:5",
                "`eprint!` prints outside src/cli/printer.rs"
            ),
        ]
    );
    assert!(p.iter().all(|p| p.check == Check::Print));
    // Another file of the CLI is not the printer.
    assert_eq!(
        found(&[("src/cli/mod.rs", "pub fn main() { eprintln!(\"x\"); }\n")]),
        [(Check::Print, "src/cli/mod.rs:1".to_string())]
    );
}

#[test]
fn a_cycle_between_top_level_modules_fails() {
    // spec uses store (through its re-export of gpt::Image); store uses spec.
    let spec = "use crate::Image;\npub struct Spec(Image);\n";
    let p = problems(&[("src/spec.rs", spec)]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].check, p[0].at.as_str()), (Check::Cycle, "src"));
    assert!(
        p[0].what.contains("{spec, store}")
            && p[0].what.contains("store -> spec (src/store/mod.rs:4)")
            && p[0].what.contains("spec -> store (src/spec.rs:1)"),
        "{}",
        p[0].what
    );
    // A path in code, not a `use`, counts too; `super::super` from an
    // inline module as well.
    let spec =
        "pub struct Spec;\nmod inner {\n    fn f() { let _ = super::super::store::make; }\n}\n";
    let p = found(&[("src/spec.rs", spec)]);
    assert_eq!(p, [(Check::Cycle, "src".to_string())]);
}

#[test]
fn a_cycle_between_submodules_fails() {
    let gpt = "pub struct Image;\npub fn f() { let _ = super::vmdk::w; }\n";
    let p = problems(&[("src/store/gpt.rs", gpt)]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].check, p[0].at.as_str()), (Check::Cycle, "src/store"));
    assert!(p[0].what.contains("{gpt, vmdk}"), "{}", p[0].what);
    // The same cycle under a module named in CYCLES_ALLOWED passes.
    let lib = "pub mod boottest;\npub mod disk;\npub mod source_date;\npub mod spec;\n\
               #[cfg(test)]\nmod testutil;\n";
    let map = CODE_MAP.replace("`src/store/`", "`src/disk/`");
    let vmdk = "use super::gpt::Image;\npub fn w(_: Image) {}\n";
    let dir = plant(&[
        ("src/lib.rs", lib),
        ("ARCHITECTURE.md", &map),
        ("src/disk/mod.rs", "mod gpt;\nmod vmdk;\n"),
        ("src/disk/gpt.rs", gpt),
        ("src/disk/vmdk.rs", vmdk),
    ]);
    std::fs::remove_dir_all(dir.path().join("src/store")).expect("rm");
    assert_eq!(check(dir.path()).expect("check runs"), []);
}

#[test]
fn unsafe_without_a_safety_comment_fails() {
    let text = "pub struct Image;\n\
                // SAFETY: far above, then a statement ends.\n\
                fn a() -> i32 { 1 }\n\
                fn b() -> i32 {\n    unsafe { libc::getpid() }\n}\n\
                // Not the word it needs.\n\
                unsafe impl Send for Image {}\n";
    assert_eq!(
        found(&[("src/store/gpt.rs", text)]),
        [
            (Check::Unsafe, "src/store/gpt.rs:5".to_string()),
            (Check::Unsafe, "src/store/gpt.rs:8".to_string())
        ]
    );
    // Tests are held to it too, and so is xtask.
    let test = "#[test]\nfn t() { let _ = unsafe { libc::getpid() }; }\n";
    assert_eq!(
        found(&[("tests/it/main.rs", test)]),
        [(Check::Unsafe, "tests/it/main.rs:2".to_string())]
    );
    // A `# Safety` section documents an `unsafe fn`.
    let documented = "pub struct Image;\n/// Reads.\n///\n/// # Safety\n/// `p` must be valid.\n\
                      #[inline]\npub unsafe fn read(p: *const u8) -> u8 { 0 }\n";
    assert_eq!(found(&[("src/store/gpt.rs", documented)]), []);
}

#[test]
fn a_long_function_outside_tests_fails() {
    let body = "    let _x = 1;\n".repeat(149);
    let long = format!(
        "pub struct Image;\nfn long() {{\n{body}}}\nfn ok() {{\n{}}}\n",
        "    let _x = 1;\n".repeat(148)
    );
    let p = problems(&[("src/store/gpt.rs", &long)]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].check, p[0].at.as_str(), p[0].what.as_str()),
        (
            Check::LongFn,
            "src/store/gpt.rs:2",
            "`fn long` is 151 lines (at most 150)"
        )
    );
    let test = format!(
        "pub struct Image;\n#[cfg(test)]\nmod tests {{\n    fn long() {{\n{body}    }}\n}}\n"
    );
    assert_eq!(found(&[("src/store/gpt.rs", &test)]), []);
}

#[test]
fn the_code_map_must_name_every_top_level_module() {
    let lib = "pub mod boottest;\npub mod store;\npub mod source_date;\npub mod spec;\npub mod extra;\n#[cfg(test)]\nmod testutil;\n";
    let p = problems(&[("src/lib.rs", lib), ("src/extra.rs", "")]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].check, p[0].at.as_str()),
        (Check::CodeMap, "ARCHITECTURE.md")
    );
    assert!(p[0].what.contains("`extra`"), "{}", p[0].what);
    // And everything it names exists.
    let map = CODE_MAP.replace("`src/spec.rs`", "`src/spec.rs`, `src/gone.rs`");
    assert_eq!(
        found(&[("ARCHITECTURE.md", &map)]),
        [(Check::CodeMap, "ARCHITECTURE.md:11".to_string())]
    );
}

#[test]
fn the_report_says_what_to_do() {
    let p = problems(&[(
        "src/store/gpt.rs",
        "pub struct Image;\nfn a() { println!(); }\n",
    )]);
    let text = super::report(&p);
    assert!(
        text.starts_with("tidy: print:\n  src/store/gpt.rs:2: `println!` prints outside src/cli/printer.rs\n  what to do: Only src/cli/printer.rs writes"),
        "{text}"
    );
}

#[test]
fn the_repository_itself_loads() {
    // Not a verdict on the repository (`cargo xtask tidy` gives that), but
    // the real tree must lex and resolve without the checker failing.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    check(&root).expect("the repository can be checked");
}
