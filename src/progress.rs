//! Progress the library reports and the CLI draws.
//!
//! In: the long steps of `build`, `bake` and `boot-test`, each a [`Task`]
//! that starts (with what it counts and, when known, how much there is),
//! advances by bytes or items, may carry a note (the package being
//! installed, the console's last line) and finishes; and step lines
//! ([`Reporter::step`]) for `-v`. Out: calls on a [`Reporter`], which the
//! caller supplies: the CLI draws bars (`src/cli/progress.rs`), tests
//! record the events, [`Quiet`] drops them.
//!
//! Never: prints, reads the clock (elapsed time is the drawer's business),
//! or changes what a step computes. Reporting costs little: a [`Task`]
//! gathers small advances and passes them on once they add up to a step
//! of at least [`BYTES_STEP`] bytes (or 1/1000 of the total), so a caller
//! may report every chunk it reads; with a reporter that is not
//! [`watching`](Reporter::watching), a task does nothing at all and
//! callers skip the work of learning totals.
//!
//! Imports nothing of the crate, so every module may report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes a byte-counting task gathers before it reports (unless 1/1000 of
/// its total is more).
pub const BYTES_STEP: u64 = 256 << 10;

/// Items an item-counting task with no known total gathers before it
/// reports.
const ITEMS_STEP: u64 = 16;

/// What a task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items,
    /// Nothing: a phase that lasts (shown with its elapsed time).
    Phase,
}

/// One task of a run: unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u64);

/// Hears what the library is doing. Every method has a default that does
/// nothing; calls may come from several threads at once.
pub trait Reporter: Sync {
    /// Whether anyone follows the tasks. When `false`, [`Task`]s report
    /// nothing and callers skip learning totals (steps are still told).
    fn watching(&self) -> bool {
        true
    }

    /// A step of the run begins (one line each with `-v`).
    fn step(&self, _what: &str) {}

    /// A task begins: what it is, what it counts, how much when known.
    fn start(&self, _task: TaskId, _what: &str, _unit: Unit, _total: Option<u64>) {}

    /// A task did `by` more bytes or items.
    fn advance(&self, _task: TaskId, _by: u64) {}

    /// What a task is at now (a package's name, the console's last line).
    fn note(&self, _task: TaskId, _text: &str) {}

    /// A task ended (done, or given up because of an error).
    fn finish(&self, _task: TaskId) {}
}

/// Reports nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Reporter for Quiet {
    fn watching(&self) -> bool {
        false
    }
}

static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

/// A task being reported: gathers advances into steps, finishes once
/// (when dropped at the latest, so an error ends it too). Shared by
/// reference between the threads that do its work.
pub struct Task<'r> {
    reporter: &'r dyn Reporter,
    id: TaskId,
    live: bool,
    step: u64,
    /// Done, not reported yet.
    pending: AtomicU64,
    /// The furthest mark [`Task::reach`] was given.
    reached: AtomicU64,
    finished: AtomicBool,
}

impl<'r> Task<'r> {
    /// Start a task on `reporter`.
    pub fn start(reporter: &'r dyn Reporter, what: &str, unit: Unit, total: Option<u64>) -> Self {
        let live = reporter.watching();
        let id = TaskId(NEXT_TASK.fetch_add(1, Ordering::Relaxed));
        if live {
            reporter.start(id, what, unit, total);
        }
        let step = match unit {
            Unit::Bytes => BYTES_STEP.max(total.unwrap_or(0) / 1000),
            Unit::Items => total.map_or(ITEMS_STEP, |t| (t / 1000).max(1)),
            Unit::Phase => 1,
        };
        Task {
            reporter,
            id,
            live,
            step,
            pending: AtomicU64::new(0),
            reached: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    /// A task that reports nothing.
    pub fn none() -> Task<'static> {
        Task::start(&Quiet, "", Unit::Phase, None)
    }

    /// Whether anyone follows it (else the caller may skip work done only
    /// to report).
    pub fn watched(&self) -> bool {
        self.live
    }

    pub fn id(&self) -> TaskId {
        self.id
    }

    /// `by` more bytes or items done.
    pub fn advance(&self, by: u64) {
        if !self.live || by == 0 {
            return;
        }
        let pending = self.pending.fetch_add(by, Ordering::Relaxed) + by;
        if pending >= self.step {
            self.flush();
        }
    }

    /// Done up to `at` (a position that only grows, such as a watermark):
    /// advances by what is new since the furthest mark reached. A task
    /// follows marks or counts advances, not both.
    pub fn reach(&self, at: u64) {
        if !self.live {
            return;
        }
        let before = self.reached.fetch_max(at, Ordering::Relaxed);
        if at > before {
            self.advance(at - before);
        }
    }

    fn flush(&self) {
        let by = self.pending.swap(0, Ordering::Relaxed);
        if by > 0 {
            self.reporter.advance(self.id, by);
        }
    }

    /// What the task is at now.
    pub fn note(&self, text: &str) {
        if self.live {
            self.reporter.note(self.id, text);
        }
    }

    /// The task is over: what was gathered is reported, then the end.
    pub fn finish(&self) {
        if self.live && !self.finished.swap(true, Ordering::Relaxed) {
            self.flush();
            self.reporter.finish(self.id);
        }
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A reader that counts what passes through it on a [`Task`].
pub struct Counted<'t, 'r, R> {
    pub inner: R,
    pub task: &'t Task<'r>,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::Write for Counted<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Events as a [`Recording`] reporter keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Step(String),
    Start {
        task: TaskId,
        what: String,
        unit: Unit,
        total: Option<u64>,
    },
    Advance {
        task: TaskId,
        by: u64,
    },
    Note {
        task: TaskId,
        text: String,
    },
    Finish {
        task: TaskId,
    },
}

/// Keeps every event, in the order they came (for tests and tools that
/// check what a run reported).
#[derive(Debug, Default)]
pub struct Recording {
    pub events: std::sync::Mutex<Vec<Event>>,
}

impl Recording {
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn push(&self, e: Event) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    /// Every task, in the order they started: what it was, its unit and
    /// total, the sum of its advances, its notes, whether it finished.
    pub fn tasks(&self) -> Vec<Seen> {
        let mut tasks: Vec<Seen> = Vec::new();
        for e in self.events() {
            let find =
                |tasks: &mut Vec<Seen>, id: TaskId| tasks.iter_mut().position(|t| t.id == id);
            match e {
                Event::Start {
                    task,
                    what,
                    unit,
                    total,
                } => tasks.push(Seen {
                    id: task,
                    what,
                    unit,
                    total,
                    done: 0,
                    advances: 0,
                    notes: Vec::new(),
                    finished: false,
                    after_finish: false,
                }),
                Event::Advance { task, by } => {
                    if let Some(i) = find(&mut tasks, task) {
                        let t = &mut tasks[i];
                        t.done += by;
                        t.advances += 1;
                        t.after_finish |= t.finished;
                    }
                }
                Event::Note { task, text } => {
                    if let Some(i) = find(&mut tasks, task) {
                        let t = &mut tasks[i];
                        t.notes.push(text);
                        t.after_finish |= t.finished;
                    }
                }
                Event::Finish { task } => {
                    if let Some(i) = find(&mut tasks, task) {
                        let t = &mut tasks[i];
                        t.after_finish |= t.finished;
                        t.finished = true;
                    }
                }
                Event::Step(_) => {}
            }
        }
        tasks
    }
}

/// One task as a [`Recording`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: TaskId,
    pub what: String,
    pub unit: Unit,
    pub total: Option<u64>,
    /// The sum of its advances.
    pub done: u64,
    pub advances: usize,
    pub notes: Vec<String>,
    pub finished: bool,
    /// An event came after its end (or it ended twice).
    pub after_finish: bool,
}

impl Reporter for Recording {
    fn step(&self, what: &str) {
        self.push(Event::Step(what.to_string()));
    }
    fn start(&self, task: TaskId, what: &str, unit: Unit, total: Option<u64>) {
        self.push(Event::Start {
            task,
            what: what.to_string(),
            unit,
            total,
        });
    }
    fn advance(&self, task: TaskId, by: u64) {
        self.push(Event::Advance { task, by });
    }
    fn note(&self, task: TaskId, text: &str) {
        self.push(Event::Note {
            task,
            text: text.to_string(),
        });
    }
    fn finish(&self, task: TaskId) {
        self.push(Event::Finish { task });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_gathers_small_advances_and_reports_them_all_by_its_end() {
        let r = Recording::default();
        let t = Task::start(&r, "hashing", Unit::Bytes, Some(10 << 20));
        for _ in 0..1000 {
            t.advance(1000);
        }
        t.note("a file");
        t.finish();
        t.finish();
        drop(t);
        let seen = r.tasks();
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert_eq!(
            (s.what.as_str(), s.unit, s.total),
            ("hashing", Unit::Bytes, Some(10 << 20))
        );
        assert_eq!(s.done, 1_000_000);
        // 1,000,000 bytes in steps of at least 256 KiB: 3 steps, then the
        // rest at the end.
        assert_eq!(s.advances, 4);
        assert_eq!(s.notes, vec!["a file".to_string()]);
        assert!(s.finished && !s.after_finish);
    }

    #[test]
    fn reaching_a_mark_advances_by_what_is_new() {
        let r = Recording::default();
        let t = Task::start(&r, "mark", Unit::Bytes, Some(4 << 20));
        for at in [1 << 20, 1 << 20, 3 << 20, 2 << 20, 4 << 20] {
            t.reach(at);
        }
        drop(t);
        let s = &r.tasks()[0];
        assert_eq!(s.done, 4 << 20);
        assert_eq!(s.advances, 3);
        assert!(s.finished);
    }

    #[test]
    fn a_task_ends_when_dropped_and_quiet_hears_nothing() {
        let r = Recording::default();
        {
            let t = Task::start(&r, "items", Unit::Items, Some(3));
            t.advance(1);
        }
        let s = &r.tasks()[0];
        assert_eq!((s.done, s.advances, s.finished), (1, 1, true));
        let q = Task::start(&Quiet, "nothing", Unit::Bytes, None);
        assert!(!q.watched());
        q.advance(1 << 30);
    }

    #[test]
    fn advances_from_many_threads_add_up() {
        let r = Recording::default();
        let t = Task::start(&r, "threads", Unit::Bytes, None);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        t.advance(100);
                    }
                });
            }
        });
        t.finish();
        assert_eq!(r.tasks()[0].done, 4_000_000);
    }
}
