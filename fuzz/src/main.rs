//! `ingot-fuzz TARGET`: under AFL++ (built by `cargo xtask fuzz` with the
//! `afl` feature), the persistent fuzz loop of one target; otherwise, or
//! with files named (`ingot-fuzz TARGET FILE...`), a replay of those
//! inputs (or of stdin) through the target, to reproduce a crash.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = args.first().and_then(|n| ingot_fuzz::target(n)) else {
        let names: Vec<&str> = ingot_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "usage: ingot-fuzz TARGET [FILE...]; targets: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    if args.len() > 1 {
        for file in &args[1..] {
            match std::fs::read(file) {
                Ok(data) => {
                    (target.run)(&data);
                    eprintln!("{file}: no crash");
                }
                Err(e) => {
                    eprintln!("cannot read {file}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    run(target)
}

#[cfg(feature = "afl")]
fn run(target: &ingot_fuzz::Target) -> ExitCode {
    let run = target.run;
    afl::fuzz!(|data: &[u8]| run(data));
    ExitCode::SUCCESS
}

#[cfg(not(feature = "afl"))]
fn run(target: &ingot_fuzz::Target) -> ExitCode {
    use std::io::Read;
    let mut data = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut data) {
        eprintln!("cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    (target.run)(&data);
    ExitCode::SUCCESS
}
