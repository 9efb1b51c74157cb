//! The `ingot` command: parse arguments, run the library, print the result
//! or the error chain, and exit with 0 (success), 1 (a check failed) or
//! 2 (bad usage or bad input).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
