//! Reprieve's core: the domain types, the pure feature extractor and the verdict policy.
//!
//! Everything here is a pure function of its inputs: no I/O, no clock, no async. The gRPC server, the batch
//! scorer and the trainer all call the same [`features::extract`] and [`policy::decide`], which is what makes a
//! verdict the same whichever front door produced it.
//!
//! - [`record`]: [`ObjectRecord`], what is known of one object, and its validation.
//! - [`history`]: [`HistoryStats`], an order-independent summary of reads before the scoring time.
//! - [`prefix`]: sibling activity of a prefix, which sees bulk re-scans coming.
//! - [`naming`]: what a key's name says (media type, temp/backup/old/thumb, dates, hashes, versions, seasons).
//! - [`features`]: the named, versioned feature schema and the extractor.
//! - [`policy`]: hard safety rules, then thresholds, with reason codes.
//! - [`verdict`]: the answer and its stable id.

pub mod error;
pub mod event;
pub mod features;
pub mod hash;
pub mod history;
pub mod naming;
pub mod policy;
pub mod prefix;
pub mod record;
pub mod time;
pub mod verdict;

pub use error::{ParseError, ValidationError};
pub use event::AccessEvent;
pub use features::{FEATURE_COUNT, FEATURE_NAMES, Feature, FeatureSchema, FeatureVector};
pub use history::HistoryStats;
pub use policy::{Decision, PolicyConfig, ReasonCode, ScopeState, Thresholds, VerdictClass};
pub use record::{
    AccessHistory, AccessSummary, ImageFacts, ObjectRecord, PrefixActivity, RecordLimits, ScheduleFacts, StorageClass,
};
pub use time::UnixSeconds;
pub use verdict::{Contribution, Verdict};
