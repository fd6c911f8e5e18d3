//! Progress on stderr, only when stderr is a terminal: one line rewritten in place at most twice a second. The end
//! of every stage is also logged at debug level with its wall and CPU time (`RUST_LOG=reprieve_batch=debug`), so
//! that a slow run says which stage was slow.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: u64 = 16_384;
const MIN_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    start: Instant,
    last: Instant,
    /// When the current stage began (wall, and the process's CPU seconds if known).
    stage_start: Instant,
    stage_cpu: Option<f64>,
}

impl Progress {
    /// `wanted`: the job asked for progress; it is shown only if stderr is a terminal too.
    pub(crate) fn new(wanted: bool) -> Self {
        let now = Instant::now();
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            start: now,
            last: now,
            stage_start: now,
            stage_cpu: process_cpu_seconds(),
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
        let now = Instant::now();
        let cpu = process_cpu_seconds();
        tracing::debug!(
            stage = what,
            items = n,
            wall_seconds = now.duration_since(self.stage_start).as_secs_f64(),
            cpu_seconds = cpu.zip(self.stage_cpu).map(|(b, a)| b - a),
            "stage done"
        );
        self.stage_start = now;
        self.stage_cpu = cpu;
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

/// User plus system CPU time of the whole process so far, from `/proc/self/stat` (Linux); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis): utime and
    // stime are the 14th and 15th fields of the line, the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // Clock ticks are 1/100 s on every Linux configuration Reprieve runs on (USER_HZ).
    Some((utime + stime) / 100.0)
}
