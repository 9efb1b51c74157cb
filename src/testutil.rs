//! Helpers for unit tests. A check that cannot run here (a judge missing,
//! the shared fixtures absent, not root, ...) follows one rule, written in
//! [`rule`] and shared with the integration tests: outside CI it is skipped
//! with `SKIPPED: <what> (<why>)` and recorded; under `CI=true` (or `CI=1`)
//! it fails, naming what is missing and how to get it.
//!
//! ```ignore
//! let Some(rpm) = crate::testutil::judge("rpm") else { return };
//! let Some(db) = crate::testutil::shared("al2023-plain/rpmdb.sqlite") else { return };
//! crate::testutil::cannot_run("the static-link case", "no libc.a", "install libc6-dev");
//! ```

pub mod rpmdb_log;
mod rule;

pub use rule::{cannot_run, find_program, judge, need_root, shared};

/// A seeded splitmix64 for tests that change inputs at random: `next(n)`
/// is in `0..n`, and the same seed gives the same sequence, so a failure
/// can be replayed.
pub fn seeded(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n: usize| {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::rule::{SKIP_LOG_ENV, ci_value, decide};

    fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
        match e.downcast::<String>() {
            Ok(s) => *s,
            Err(e) => e
                .downcast::<&str>()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn under_ci_a_check_that_cannot_run_fails_naming_what_and_how() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped");
        let err = std::panic::catch_unwind(|| {
            decide(
                true,
                &mut Vec::new(),
                Some(&log),
                "judge `frob`",
                "not installed",
                "apt-get install frobnicator",
            )
        })
        .expect_err("under CI the rule must fail the test");
        let text = panic_text(err);
        for part in [
            "judge `frob`",
            "not installed",
            "apt-get install frobnicator",
        ] {
            assert!(text.contains(part), "{part:?} missing from {text:?}");
        }
        assert!(!log.exists(), "a failure is not recorded as a skip");
    }

    #[test]
    fn outside_ci_a_check_that_cannot_run_is_skipped_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped");
        let mut stderr = Vec::new();
        decide(
            false,
            &mut stderr,
            Some(&log),
            "judge `frob`",
            "not installed",
            "get frob",
        );
        decide(
            false,
            &mut stderr,
            Some(&log),
            "the root part",
            "needs root",
            "be root",
        );
        decide(
            false,
            &mut stderr,
            Some(&log),
            "judge `frob`",
            "not installed",
            "get frob",
        );
        decide(false, &mut stderr, None, "not recorded", "no log", "z");
        let text = std::fs::read_to_string(&log).unwrap();
        let me = std::thread::current().name().unwrap().to_string();
        assert_eq!(
            text,
            format!("{me}\tjudge `frob` (not installed)\n{me}\tthe root part (needs root)\n")
        );
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            format!(
                "SKIPPED: judge `frob` (not installed) in {me}; to run it: get frob\n\
                 SKIPPED: the root part (needs root) in {me}; to run it: be root\n\
                 SKIPPED: not recorded (no log) in {me}; to run it: z\n"
            )
        );
        assert!(me.ends_with("outside_ci_a_check_that_cannot_run_is_skipped_and_recorded"));
    }

    #[test]
    fn only_true_and_1_mean_ci() {
        assert!(ci_value(Some("true")));
        assert!(ci_value(Some("1")));
        for not in [
            None,
            Some(""),
            Some("0"),
            Some("false"),
            Some("TRUE"),
            Some("yes"),
        ] {
            assert!(!ci_value(not), "{not:?}");
        }
    }

    #[test]
    fn xtask_sets_the_variable_the_rule_reads() {
        let xtask = include_str!("../xtask/src/main.rs");
        assert!(xtask.contains(&format!("\"{SKIP_LOG_ENV}\"")));
    }
}
