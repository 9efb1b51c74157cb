//! Command-line types (clap) and one file per subcommand. Data goes to
//! stdout (one JSON document with `--json`), everything else to stderr.

mod bake;
mod boottest;
mod build;
mod diff;
mod error;
mod inspect;
mod lock;
mod printer;
mod progress;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use printer::Printer;

#[derive(Parser)]
#[command(
    name = "ingot",
    version,
    about = "Reproducible RPMs and server images from declarative specs, without root",
    propagate_version = true
)]
struct Cli {
    /// Print one JSON document on stdout and nothing else there
    #[arg(long, global = true)]
    json: bool,
    /// Print only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Say more about what is happening (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the RPM a package spec describes
    Build(build::BuildArgs),
    /// Install packages into a base root filesystem and write the image
    Bake(bake::BakeArgs),
    /// Resolve an image spec's packages from its repositories into its lock file
    Lock(lock::LockArgs),
    /// Recompute the digest of every output a manifest names
    Verify(verify::VerifyArgs),
    /// Show what is inside an RPM, an image or a manifest
    Inspect(inspect::InspectArgs),
    /// What changed between two images or two manifests
    Diff(diff::DiffArgs),
    /// Boot an image in QEMU (never modifying it) and check it serves
    BootTest(boottest::BootTestArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.json, cli.quiet, cli.verbose);
    // Before any other thread exists (see its doc).
    if let Err(e) = ingot::output::install_interrupt_cleanup(printer.interruption_reporter()) {
        printer.warn(&format!(
            "cannot take SIGINT, SIGTERM and SIGHUP ({e}); an interrupted run may leave temporary files"
        ));
    }
    let result = match cli.command {
        Command::Build(args) => build::run(args, &printer),
        Command::Bake(args) => bake::run(args, &printer),
        Command::Lock(args) => lock::run(args, &printer),
        Command::Verify(args) => verify::run(args, &printer),
        Command::Inspect(args) => inspect::run(args, &printer),
        Command::Diff(args) => diff::run(args, &printer),
        Command::BootTest(args) => boottest::run(args, &printer),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            printer.error(&e);
            ExitCode::from(error::exit_code(&e))
        }
    }
}
