//! A source date in the future is the build time: time enters only through
//! `source_date`, never from the clock, so two builds are the same bytes
//! whenever they run.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{example_dir, ingot, run_ok, stdout};
use crate::need;

#[test]
fn a_source_date_in_the_future_is_the_build_time_and_builds_are_identical() {
    let rpm = need!("rpm");
    // 2100-01-01: far beyond any clock this runs on, within rpm's 32 bits.
    let future = "4102444800";
    let t = tempfile::tempdir().unwrap();
    let build = |out: &str| {
        let o = run_ok(
            ingot()
                .arg("build")
                .arg(example_dir().join("hello.toml"))
                .arg("--out")
                .arg(t.path().join(out))
                .env("SOURCE_DATE_EPOCH", future),
        );
        PathBuf::from(stdout(&o).trim())
    };
    let (a, b) = (build("a"), build("b"));
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two builds with SOURCE_DATE_EPOCH={future} differ"
    );
    let q = stdout(&run_ok(
        Command::new(&rpm)
            .args(["-qp", "--qf", "%{BUILDTIME}"])
            .arg(&a),
    ));
    assert_eq!(q, future);
}
