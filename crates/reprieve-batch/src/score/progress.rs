//! Progress on stderr, only when stderr is a terminal: one line rewritten in place at most twice a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: u64 = 16_384;
const MIN_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    start: Instant,
    last: Instant,
}

impl Progress {
    /// `wanted`: the job asked for progress; it is shown only if stderr is a terminal too.
    pub(crate) fn new(wanted: bool) -> Self {
        let now = Instant::now();
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            start: now,
            last: now,
        }
    }

    /// Counts `n` items of `what` so far; cheap when called for every item.
    pub(crate) fn tick(&mut self, what: &str, n: u64) {
        if n.is_multiple_of(EVERY) {
            self.tick_now(what, n);
        }
    }

    /// Like [`Self::tick`] for callers that count in large steps.
    pub(crate) fn tick_now(&mut self, what: &str, n: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < MIN_INTERVAL {
            return;
        }
        self.last = now;
        self.show(what, n, false);
    }

    /// Ends a stage.
    pub(crate) fn done(&mut self, what: &str, n: u64) {
        if self.enabled {
            self.show(what, n, true);
        }
    }

    fn show(&self, what: &str, n: u64, end: bool) {
        let secs = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not fail the run.
        let _ = write!(err, "\r\x1b[2K[{secs:7.1}s] {what}: {n}");
        if end {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}
