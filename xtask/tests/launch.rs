//! `xtask __measure`, the launcher `cargo xtask bench` measures every
//! command through: a command's peak memory is its own, not that of the
//! (possibly large) process that asked for it.

use std::process::Command;

/// Run `xtask __measure ARGS` from this process; (wall s, cpu s, peak KiB).
fn launch(args: &[&str]) -> (f64, f64, u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("__measure")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{args:?}: {text}");
    let v: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(v.len(), 3, "{text:?}");
    (
        v[0].parse().unwrap(),
        v[1].parse().unwrap(),
        v[2].parse().unwrap(),
    )
}

#[test]
fn a_small_command_started_from_a_large_process_reports_its_own_peak() {
    // This process holds 256 MiB, every page touched.
    let big = vec![1u8; 256 << 20];
    let (wall, cpu, small) = launch(&["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1"]);
    assert!(wall > 0.0 && cpu >= 0.0);
    assert!(small < 64 * 1024, "dd of 1 MiB blocks reported {small} KiB");
    // The same launcher sees a large peak when the command has one.
    let (_, _, large) = launch(&["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"]);
    assert!(
        large >= 96 * 1024,
        "dd of a 96 MiB block reported {large} KiB"
    );
    assert_eq!(big.iter().map(|b| *b as usize).sum::<usize>(), 256 << 20);
}

#[test]
fn a_failed_command_fails_the_launcher_with_its_status() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["__measure", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit status: 3"), "{text}");
}
