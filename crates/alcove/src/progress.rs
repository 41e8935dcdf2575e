//! How `alcove load` and `alcove free` show a job as the worker's events arrive: a progress bar
//! on stderr (indicatif) when stderr is a terminal, otherwise plain progress lines on stdout at
//! most every few seconds and at the end; then the summary on stdout.
//!
//! It only counts and prints what it is handed: it never talks to the worker.

use std::time::{Duration, Instant};

use alcove_worker::preload::{Action, Event, Summary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::human;

/// Plain progress lines come at most this often.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// Failed objects named in the summary; the rest are counted.
const FAILURES_SHOWN: usize = 100;

/// What the events said so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub objects_total: u64,
    pub bytes_total: u64,
    pub skipped: u64,
    /// Objects finished, failed ones included, and their bytes.
    pub objects_done: u64,
    pub bytes_done: u64,
    pub failed: u64,
    /// The first [`FAILURES_SHOWN`] failures: key and error.
    pub failures: Vec<(String, String)>,
}

impl Tally {
    fn record(&mut self, key: &str, bytes: u64, error: Option<&str>) {
        self.objects_done += 1;
        self.bytes_done += bytes;
        if let Some(error) = error {
            self.failed += 1;
            if self.failures.len() < FAILURES_SHOWN {
                self.failures.push((key.to_owned(), error.to_owned()));
            }
        }
    }
}

/// `loading`, `freeing`.
fn doing(action: Action) -> &'static str {
    match action {
        Action::Load => "loading",
        Action::Free => "freeing",
    }
}

/// One plain progress line: `load: 12/40 objects, 34.5 MiB/120.0 MiB, 5.2 MiB/s, ETA 17s`,
/// with the failures so far when there are any.
pub fn progress_line(action: Action, tally: &Tally, elapsed: Duration) -> String {
    let mut line = format!(
        "{}: {}/{} objects, {}/{}, {}",
        action.name(),
        tally.objects_done,
        tally.objects_total,
        human::bytes(tally.bytes_done),
        human::bytes(tally.bytes_total),
        human::rate(tally.bytes_done, elapsed),
    );
    if tally.objects_done < tally.objects_total {
        let eta = human::eta(tally.bytes_done, tally.bytes_total, elapsed);
        line.push_str(&format!(", ETA {}", eta.map_or_else(|| "?".to_owned(), human::duration)));
    }
    if tally.failed > 0 {
        line.push_str(&format!(", {} failed", tally.failed));
    }
    line
}

/// The line announcing what the listing found.
pub fn totals_line(action: Action, target: &str, tally: &Tally) -> String {
    let mut line = format!(
        "{} {}: {} ({})",
        doing(action),
        target,
        human::count(tally.objects_total, "object", "objects"),
        human::bytes(tally.bytes_total)
    );
    if tally.skipped > 0 {
        line.push_str(&format!(
            ", {} with nothing to {}",
            human::count(tally.skipped, "folder or empty object", "folder or empty objects"),
            action.name()
        ));
    }
    line
}

/// The summary: what was done and how fast, what was passed over, every failure shown.
pub fn summary_lines(action: Action, target: &str, summary: &Summary, tally: &Tally) -> Vec<String> {
    let took = Duration::from_secs_f64(summary.seconds.max(0.0));
    let objects = human::count(summary.objects, "object", "objects");
    let mut lines = vec![match action {
        Action::Load => {
            let mut line = format!(
                "loaded {objects} ({}) of {target} in {}, {}",
                human::bytes(summary.bytes),
                human::duration(took),
                human::rate(summary.bytes, took)
            );
            if let Some(read) = summary.ufs_read_bytes {
                line.push_str(&format!("; {} read from the under-storage", human::bytes(read)));
            }
            line
        }
        Action::Free => format!(
            "freed {objects} ({}, {}) of {target} in {}",
            human::bytes(summary.bytes),
            human::count(summary.pages.unwrap_or(0), "page", "pages"),
            human::duration(took)
        ),
    }];
    if summary.skipped > 0 {
        lines.push(format!(
            "skipped {} (nothing to {})",
            human::count(summary.skipped, "folder or empty object", "folder or empty objects"),
            action.name()
        ));
    }
    if summary.failed > 0 {
        lines.push(format!("{} failed:", human::count(summary.failed, "object", "objects")));
        lines.extend(tally.failures.iter().map(|(key, error)| format!("  {key}: {error}")));
        let unnamed = summary.failed.saturating_sub(tally.failures.len() as u64);
        if unnamed > 0 {
            lines.push(format!("  … and {unnamed} more"));
        }
    }
    if let Some(error) = &summary.error {
        lines.push(format!("stopped before the end of {target}: {error}"));
    }
    lines
}

/// Where progress goes.
enum Display {
    Bar(ProgressBar),
    Lines { last: Instant },
}

/// Shows one job: fed its events one by one, then finished.
pub struct Reporter {
    action: Action,
    target: String,
    started: Instant,
    tally: Tally,
    summary: Option<Summary>,
    display: Display,
}

impl Reporter {
    /// Starts showing a job on `target`: a spinner while the worker lists (on a terminal), or a
    /// first plain line.
    pub fn new(action: Action, target: &str, terminal: bool) -> Self {
        let display = if terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::default_spinner());
            bar.set_message(format!("listing {target}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Bar(bar)
        } else {
            println!("listing {target}");
            Display::Lines { last: Instant::now() }
        };
        Self {
            action,
            target: target.to_owned(),
            started: Instant::now(),
            tally: Tally::default(),
            summary: None,
            display,
        }
    }

    pub fn event(&mut self, event: Event) {
        match event {
            Event::Totals { objects, bytes, skipped } => {
                self.tally.objects_total = objects;
                self.tally.bytes_total = bytes;
                self.tally.skipped = skipped;
                self.totals();
            }
            Event::Object { key, bytes, error, .. } => {
                self.tally.record(&key, bytes, error.as_deref());
                self.object(&key, bytes, error.as_deref());
            }
            Event::Summary(summary) => self.summary = Some(summary),
        }
    }

    fn totals(&mut self) {
        let line = totals_line(self.action, &self.target, &self.tally);
        match &mut self.display {
            Display::Bar(bar) => {
                bar.println(line);
                bar.set_style(bar_style());
                bar.set_length(self.tally.bytes_total);
                bar.set_prefix(doing(self.action));
                bar.set_message(format!("0/{} objects", self.tally.objects_total));
                bar.reset_eta();
            }
            Display::Lines { .. } => println!("{line}"),
        }
    }

    fn object(&mut self, key: &str, bytes: u64, error: Option<&str>) {
        let failure = error.map(|e| format!("failed: {key}: {e}"));
        match &mut self.display {
            Display::Bar(bar) => {
                if let Some(failure) = failure {
                    bar.println(failure);
                }
                bar.inc(bytes);
                bar.set_message(format!("{}/{} objects", self.tally.objects_done, self.tally.objects_total));
            }
            Display::Lines { last } => {
                if let Some(failure) = failure {
                    println!("{failure}");
                }
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    println!("{}", progress_line(self.action, &self.tally, self.started.elapsed()));
                }
            }
        }
    }

    /// Clears the bar (or prints the last progress line) and prints the summary. The summary,
    /// or `None` when the answer ended without one.
    pub fn finish(self) -> (Tally, Option<Summary>) {
        match &self.display {
            Display::Bar(bar) => bar.finish_and_clear(),
            Display::Lines { .. } if self.summary.is_some() && self.tally.objects_total > 0 => {
                println!("{}", progress_line(self.action, &self.tally, self.started.elapsed()));
            }
            Display::Lines { .. } => {}
        }
        if let Some(summary) = &self.summary {
            for line in summary_lines(self.action, &self.target, summary, &self.tally) {
                println!("{line}");
            }
        }
        (self.tally, self.summary)
    }
}

/// objects done/total, bytes, rate and ETA; the default bar if the template were ever refused.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix} [{wide_bar}] {msg}  {bytes}/{total_bytes}  {binary_bytes_per_sec}  ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(done: u64, bytes_done: u64) -> Tally {
        Tally { objects_total: 40, bytes_total: 120 << 20, objects_done: done, bytes_done, ..Default::default() }
    }

    #[test]
    fn progress_lines() {
        let line = progress_line(Action::Load, &tally(10, 30 << 20), Duration::from_secs(6));
        assert_eq!(line, "load: 10/40 objects, 30.0 MiB/120.0 MiB, 5.0 MiB/s, ETA 18s");
        let line = progress_line(Action::Load, &tally(0, 0), Duration::from_secs(1));
        assert_eq!(line, "load: 0/40 objects, 0 B/120.0 MiB, 0 B/s, ETA ?");
        let mut done = tally(40, 120 << 20);
        done.record("k", 0, Some("boom"));
        let line = progress_line(Action::Free, &done, Duration::from_secs(60));
        assert_eq!(line, "free: 41/40 objects, 120.0 MiB/120.0 MiB, 2.0 MiB/s, 1 failed");
    }

    #[test]
    fn totals_lines() {
        let mut t = tally(0, 0);
        assert_eq!(totals_line(Action::Load, "s3://b/p", &t), "loading s3://b/p: 40 objects (120.0 MiB)");
        t.skipped = 1;
        assert_eq!(
            totals_line(Action::Free, "s3://b", &t),
            "freeing s3://b: 40 objects (120.0 MiB), 1 folder or empty object with nothing to free"
        );
    }

    #[test]
    fn summaries_name_every_failure() {
        let mut t = Tally::default();
        t.record("a", 10, None);
        t.record("b", 5, Some("the object changed while it was being read"));
        let summary = Summary {
            objects: 1,
            bytes: 10 << 20,
            failed: 1,
            skipped: 2,
            ufs_read_bytes: Some(4 << 20),
            seconds: 2.0,
            ..Default::default()
        };
        assert_eq!(
            summary_lines(Action::Load, "s3://b/p", &summary, &t),
            [
                "loaded 1 object (10.0 MiB) of s3://b/p in 2.0s, 5.0 MiB/s; 4.0 MiB read from the under-storage",
                "skipped 2 folder or empty objects (nothing to load)",
                "1 object failed:",
                "  b: the object changed while it was being read",
            ]
        );
        let freed = Summary { objects: 3, bytes: 3 << 20, pages: Some(3), seconds: 0.01, ..Default::default() };
        assert_eq!(
            summary_lines(Action::Free, "s3://b", &freed, &t),
            ["freed 3 objects (3.0 MiB, 3 pages) of s3://b in 0.0s"]
        );
        let stopped =
            Summary { failed: 150, error: Some("the under-storage of /b is unavailable".into()), ..Default::default() };
        let lines = summary_lines(Action::Load, "s3://b", &stopped, &t);
        assert_eq!(lines[lines.len() - 2], "  … and 149 more");
        assert_eq!(lines[lines.len() - 1], "stopped before the end of s3://b: the under-storage of /b is unavailable");
    }

    #[test]
    fn failures_kept_are_bounded() {
        let mut t = Tally::default();
        for i in 0..(FAILURES_SHOWN + 5) {
            t.record(&i.to_string(), 1, Some("x"));
        }
        assert_eq!((t.failed, t.failures.len()), (FAILURES_SHOWN as u64 + 5, FAILURES_SHOWN));
    }
}
