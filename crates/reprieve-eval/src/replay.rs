//! What the evaluation protocol and training replay: a trace that can be cut at any time without look-ahead. Two
//! kinds: a trace of object reads ([`Trace`], from access logs and an inventory) and a registry's history
//! ([`ImageTrace`], from registry notification events: images, pulls resolved to digests, tags as of each cut).

use reprieve_core::UnixSeconds;
use reprieve_images::replay::ImageTrace;
use reprieve_model::dataset::{Cut, Trace, build_cut};

/// A trace to cut: its span, its size for the reports, cohort labels, and the labelled rows at a cut (features
/// from before the cut only, label "read again in `[T, T + H)`").
pub trait Replay: Sync {
    /// When the log starts: reads are complete from here on.
    fn log_start(&self) -> UnixSeconds;
    /// When the log ends (exclusive).
    fn log_end(&self) -> UnixSeconds;
    /// Objects in the trace (at any time).
    fn objects(&self) -> u64;
    /// Reads in the trace.
    fn reads(&self) -> u64;
    /// The source's label of an object (a row's `object`), e.g. the synthetic generator's cohort.
    fn cohort(&self, object: u32) -> Option<&str>;
    /// Tenant and key of an object.
    fn name(&self, object: u32) -> Option<(&str, &str)>;
    /// The labelled rows of the cut at `at`.
    fn cut(&self, at: UnixSeconds, horizon_secs: i64) -> Cut;
}

impl Replay for Trace {
    fn log_start(&self) -> UnixSeconds {
        self.log_start
    }
    fn log_end(&self) -> UnixSeconds {
        self.log_end
    }
    fn objects(&self) -> u64 {
        self.objects.len() as u64
    }
    fn reads(&self) -> u64 {
        self.events.len() as u64
    }
    fn cohort(&self, object: u32) -> Option<&str> {
        self.cohorts.get(object as usize)?.as_deref()
    }
    fn name(&self, object: u32) -> Option<(&str, &str)> {
        let o = self.objects.get(object as usize)?;
        Some((o.tenant.as_str(), o.key.as_str()))
    }
    fn cut(&self, at: UnixSeconds, horizon_secs: i64) -> Cut {
        build_cut(self, at, horizon_secs)
    }
}

impl Replay for ImageTrace {
    fn log_start(&self) -> UnixSeconds {
        self.log_start
    }
    fn log_end(&self) -> UnixSeconds {
        self.log_end
    }
    fn objects(&self) -> u64 {
        self.images() as u64
    }
    fn reads(&self) -> u64 {
        self.pulls() as u64
    }
    fn cohort(&self, _object: u32) -> Option<&str> {
        None
    }
    fn name(&self, object: u32) -> Option<(&str, &str)> {
        Some((self.tenant.as_str(), self.key_of(object)?))
    }
    fn cut(&self, at: UnixSeconds, horizon_secs: i64) -> Cut {
        self.build_cut(at, horizon_secs)
    }
}
