//! Reprieve's reuse model: training, calibration, conservative thresholds, the model artifact and the
//! scoring engine.
//!
//! - [`dataset`]: labelled cuts of a request trace (features before `T`, label "read in `[T, T+H)`").
//! - [`train`]: logistic regression or a decision tree (linfa) + Platt calibration + per-class thresholds.
//! - [`tree`]: the decision-tree scorer's nodes.
//! - [`threshold`]: the largest threshold whose 95% Clopper-Pearson bound meets the target on every cut.
//! - [`artifact`]: the versioned, schema-checked artifact and its runtime [`Model`].
//! - [`engine`]: features -> model -> policy -> [`reprieve_core::Verdict`], shared by every front door.
//! - [`stats`], [`calibration`], [`metrics`]: the numerical pieces.
//!
//! No network, no async; the only I/O is reading and writing artifact files.

pub mod artifact;
pub mod calibration;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod stats;
pub mod threshold;
pub mod train;
pub mod tree;

pub use artifact::{Model, ModelArtifact};
pub use engine::{Engine, Scored};
pub use error::ModelError;
