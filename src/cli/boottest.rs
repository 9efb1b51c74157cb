//! `ingot boot-test IMAGE [--expect-http PORT/PATH]... [--expect-console REGEX]...`

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ingot::boottest::{AccelChoice, BootOptions, BootReport, Expectation};
use ingot::{Error, Result};

use super::Printer;
use super::progress::Drawn;

#[derive(Args)]
#[command(after_help = "\
Environment: INGOT_QEMU (the QEMU program), INGOT_OVMF_CODE and INGOT_OVMF_VARS
(the UEFI firmware files; default /usr/share/OVMF/OVMF_{CODE,VARS}_4M.fd).
Exit codes: 0 everything held, 1 the boot test failed, 2 it could not be run.")]
pub struct BootTestArgs {
    /// The image to boot (raw, VMDK, VHD or qcow2, as `ingot bake` wrote it); never modified
    image: PathBuf,
    /// Pass when GET PATH on the guest's PORT answers 2xx, e.g. `8080/health` (repeatable)
    #[arg(long = "expect-http", value_name = "PORT/PATH")]
    expect_http: Vec<String>,
    /// Pass when the serial console shows this regular expression (repeatable)
    #[arg(long = "expect-console", value_name = "REGEX")]
    expect_console: Vec<String>,
    /// Give up (and stop the machine) after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
    /// Keep the whole serial console in FILE (as text)
    #[arg(long, value_name = "FILE")]
    serial_log: Option<PathBuf>,
    /// The guest's memory
    #[arg(long, value_name = "MiB", default_value_t = 1024)]
    memory: u32,
    /// The guest's CPUs
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// KVM when a probe proves it works (auto), or always one of them
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    accel: AccelArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

pub fn run(args: BootTestArgs, p: &Printer) -> Result<()> {
    let mut opts = BootOptions::new(&args.image);
    for e in &args.expect_http {
        opts.expectations
            .push(Expectation::http(e).map_err(|m| Error::Usage(format!("--expect-http {m}")))?);
    }
    for e in &args.expect_console {
        opts.expectations.push(
            Expectation::console(e).map_err(|m| Error::Usage(format!("--expect-console {m}")))?,
        );
    }
    if args.timeout == 0 {
        return Err(Error::Usage("--timeout must be at least 1 second".into()));
    }
    opts.timeout = Duration::from_secs(args.timeout);
    opts.serial_log = args.serial_log;
    opts.memory_mib = args.memory;
    opts.cpus = args.cpus;
    opts.accel = match args.accel {
        AccelArg::Auto => AccelChoice::Auto,
        AccelArg::Kvm => AccelChoice::Kvm,
        AccelArg::Tcg => AccelChoice::Tcg,
    };

    let progress = Drawn::new(p, |what| p.progress_line(&format!("boot-test: {what}")));
    match ingot::boottest::boot_test(&opts, &progress) {
        Ok(report) => {
            p.result(&summary(&report), &json(&report));
            Ok(())
        }
        Err(e) => {
            if let Some(report) = e.report() {
                p.result(&summary(report), &json(report));
            }
            Err(e.into())
        }
    }
}

fn summary(r: &BootReport) -> String {
    let mut lines = vec![format!(
        "boot test {} in {:.1} s ({})",
        if r.ok { "passed" } else { "FAILED" },
        r.elapsed_seconds,
        r.accel.name()
    )];
    for e in &r.expectations {
        lines.push(match e.at_seconds {
            Some(t) => format!("  ok    {} after {t:.1} s", e.label()),
            None => match &e.last_probe {
                Some(probe) => format!("  MISS  {} (last probe: {probe})", e.label()),
                None => format!("  MISS  {}", e.label()),
            },
        });
    }
    lines.join("\n")
}

fn json(r: &BootReport) -> serde_json::Value {
    serde_json::to_value(r)
        .unwrap_or_else(|e| serde_json::json!({ "ok": r.ok, "error": e.to_string() }))
}
