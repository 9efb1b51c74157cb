//! The one place that prints: results on stdout, messages on stderr,
//! errors as `error:` / `Caused by:` / `hint:`. Messages echo what users
//! and packages wrote, so their control characters are printed as escapes
//! (line breaks aside): a name cannot drive the terminal.

use std::cell::Cell;
use std::io::{IsTerminal, Write};

use ingot::Error;
use ingot::spec::diag::escape_keep_newlines as shown;

pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// Whether the one document stdout may hold has been written.
    printed: Cell<bool>,
}

impl Printer {
    pub fn new(json: bool, quiet: bool, verbose: u8) -> Self {
        Printer {
            json,
            quiet,
            verbose,
            printed: Cell::new(false),
        }
    }

    /// Whether progress may be drawn (stderr is a terminal, not quiet).
    #[allow(dead_code)]
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// The command's result: plain text, or the JSON document.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        self.printed.set(true);
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(json).unwrap_or_default()
            )
        } else {
            writeln!(out, "{text}")
        };
    }

    /// A progress message: shown on stderr when it is a terminal, or with
    /// `-v`; never with `-q`.
    pub fn progress_line(&self, message: &str) {
        if !self.quiet && (self.verbose > 0 || std::io::stderr().is_terminal()) {
            eprintln!("{message}");
        }
    }

    pub fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {}", shown(message));
        }
    }

    pub fn info(&self, message: &str) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }

    pub fn error(&self, e: &Error) {
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: {}", shown(&e.to_string()));
        for c in &causes {
            let _ = writeln!(err, "  Caused by: {}", shown(c));
        }
        if let Some(h) = e.hint() {
            let _ = writeln!(err, "hint: {}", shown(h));
        }
        if self.json && !self.printed.get() {
            let doc = serde_json::json!({
                "ok": false,
                "error": e.to_string(),
                "causes": causes,
                "hint": e.hint(),
                "exit_code": e.exit_code(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
}
