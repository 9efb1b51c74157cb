//! Progress drawn: the library's [`Reporter`] events as `indicatif` bars
//! on the printer's stderr ([`Printer::bars`]), and its step lines handed
//! to the subcommand's own way of showing them (`-v`'s timestamped lines).
//!
//! One bar per task, in the order they start, cleared when it finishes:
//! bytes with their total, rate and time left; items with their total; a
//! phase with its elapsed time; each with its last note (the package
//! being installed, the console's last line). Labels and notes come from
//! specs, packages and guests, so their control characters are escaped.
//! Without bars (no terminal, `--json`, `-q`) the reporter says it is not
//! watching, so the library skips the work of counting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ingot::progress::{Reporter, TaskId, Unit};
use ingot::spec::diag::escape;

use super::Printer;

/// How often bars that count nothing (phases, totals unknown) are redrawn
/// to show time passing.
const TICK: Duration = Duration::from_millis(120);

pub struct Drawn<'p> {
    bars: Option<&'p MultiProgress>,
    live: Mutex<HashMap<TaskId, ProgressBar>>,
    steps: Box<dyn Fn(&str) + Sync + 'p>,
}

impl<'p> Drawn<'p> {
    /// Bars on `printer`'s stderr when it draws them; step lines to
    /// `steps`.
    pub fn new(printer: &'p Printer, steps: impl Fn(&str) + Sync + 'p) -> Self {
        Drawn {
            bars: printer.bars(),
            live: Mutex::new(HashMap::new()),
            steps: Box::new(steps),
        }
    }

    fn bar(&self, task: TaskId) -> Option<ProgressBar> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&task)
            .cloned()
    }
}

fn style(unit: Unit, total: Option<u64>) -> ProgressStyle {
    let template = match (unit, total) {
        (Unit::Bytes, Some(_)) => {
            "{prefix:.bold} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta} {wide_msg}"
        }
        (Unit::Bytes, None) => {
            "{spinner} {prefix:.bold} {binary_bytes} {binary_bytes_per_sec} {elapsed} {wide_msg}"
        }
        (Unit::Items, Some(_)) => "{prefix:.bold} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
        (Unit::Items, None) => "{spinner} {prefix:.bold} {pos} {elapsed} {wide_msg}",
        (Unit::Phase, _) => "{spinner} {prefix:.bold} {elapsed} {wide_msg}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Reporter for Drawn<'_> {
    fn watching(&self) -> bool {
        self.bars.is_some()
    }

    fn step(&self, what: &str) {
        (self.steps)(what);
    }

    fn start(&self, task: TaskId, what: &str, unit: Unit, total: Option<u64>) {
        let Some(bars) = self.bars else { return };
        let pb = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        let pb = bars.add(pb.with_style(style(unit, total)));
        pb.set_prefix(escape(what).into_owned());
        if total.is_none() || unit == Unit::Phase {
            pb.enable_steady_tick(TICK);
        }
        // Drawn at once, past the rate limit: a short task shows too.
        pb.force_draw();
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task, pb);
    }

    fn advance(&self, task: TaskId, by: u64) {
        if let Some(pb) = self.bar(task) {
            pb.inc(by);
        }
    }

    fn note(&self, task: TaskId, text: &str) {
        if let Some(pb) = self.bar(task) {
            pb.set_message(escape(text).into_owned());
        }
    }

    fn finish(&self, task: TaskId) {
        let pb = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&task);
        if let (Some(pb), Some(bars)) = (pb, self.bars) {
            pb.finish_and_clear();
            bars.remove(&pb);
        }
    }
}
