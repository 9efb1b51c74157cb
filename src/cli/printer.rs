//! The one place that prints: results on stdout, messages on stderr,
//! errors as `error:` / `Caused by:` / `hint:`, and the one stderr that
//! progress bars are drawn on ([`Printer::bars`], which [`super::progress`]
//! draws into). Bars exist only when stderr is a terminal (and `TERM` is
//! not unset or `dumb`) and neither `--json` nor `-q` was given; lines
//! printed while they are drawn go above them. Messages echo what users
//! and packages wrote, so their control characters are printed as escapes
//! (line breaks aside): a name cannot drive the terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressDrawTarget};
use ingot::output::Interruption;
use ingot::spec::diag::escape_keep_newlines as shown;

use super::error::{self, Error};

pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// Whether the one document stdout may hold has been written; set and
    /// read with stdout locked (the signal thread may write it too).
    printed: Arc<AtomicBool>,
    /// Where progress bars are drawn, when they are.
    bars: Option<MultiProgress>,
}

impl Printer {
    pub fn new(json: bool, quiet: bool, verbose: u8) -> Self {
        let bars = (!json && !quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            .filter(|m| !m.is_hidden());
        Printer {
            json,
            quiet,
            verbose,
            printed: Arc::new(AtomicBool::new(false)),
            bars,
        }
    }

    /// Where progress bars go: `None` when none are drawn.
    pub fn bars(&self) -> Option<&MultiProgress> {
        self.bars.as_ref()
    }

    /// Run `print` with the bars out of the way (cleared, then drawn again
    /// below what it printed).
    fn above_bars<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.bars {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    /// What the signal thread calls once it has removed every temporary
    /// name: says what happened, on stderr and, with `--json`, as the one
    /// document on stdout unless the result is already there; returns the
    /// exit code.
    pub fn interruption_reporter(&self) -> impl Fn(&Interruption) -> u8 + Send + 'static {
        let json = self.json;
        let printed = Arc::clone(&self.printed);
        let bars = self.bars.clone();
        move |i| {
            // Whatever is drawn goes: the process ends after this.
            if let Some(b) = &bars {
                let _ = b.clear();
                b.set_draw_target(ProgressDrawTarget::hidden());
            }
            let message = if !i.left.is_empty() {
                format!(
                    "interrupted by {}; these temporary files could not be removed",
                    i.signal_name()
                )
            } else if i.committed {
                format!(
                    "interrupted by {} after every output was written",
                    i.signal_name()
                )
            } else {
                format!("interrupted by {}; nothing was written", i.signal_name())
            };
            let causes: Vec<String> = i
                .left
                .iter()
                .map(|(p, e)| format!("`{}`: {e}", p.display()))
                .collect();
            {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "error: {message}");
                for c in &causes {
                    let _ = writeln!(err, "  {c}");
                }
            }
            let mut out = std::io::stdout().lock();
            if json && !printed.swap(true, Ordering::SeqCst) {
                let doc = serde_json::json!({
                    "ok": false,
                    "error": message,
                    "causes": causes,
                    "hint": null,
                    "exit_code": error::interrupted_exit_code(i),
                });
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
            }
            let _ = out.flush();
            error::interrupted_exit_code(i)
        }
    }

    /// The command's result: plain text, or the JSON document.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        self.above_bars(|| self.print_result(text, json));
    }

    fn print_result(&self, text: &str, json: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        if self.printed.swap(true, Ordering::SeqCst) {
            return;
        }
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
            self.above_bars(|| eprintln!("{message}"));
        }
    }

    pub fn warn(&self, message: &str) {
        if !self.quiet {
            self.above_bars(|| eprintln!("warning: {}", shown(message)));
        }
    }

    /// A message worth seeing without `-v` (what a command changed beside
    /// its result): on stderr, never with `-q`.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            self.above_bars(|| eprintln!("{}", shown(message)));
        }
    }

    pub fn info(&self, message: &str) {
        if self.verbose > 0 && !self.quiet {
            self.above_bars(|| eprintln!("{message}"));
        }
    }

    pub fn error(&self, e: &Error) {
        if let Some(b) = &self.bars {
            let _ = b.clear();
        }
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
        if let Some(h) = error::hint(e) {
            let _ = writeln!(err, "hint: {}", shown(h));
        }
        drop(err);
        let mut out = std::io::stdout().lock();
        if self.json && !self.printed.swap(true, Ordering::SeqCst) {
            let doc = serde_json::json!({
                "ok": false,
                "error": e.to_string(),
                "causes": causes,
                "hint": error::hint(e),
                "exit_code": error::exit_code(e),
            });
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
    }
}
