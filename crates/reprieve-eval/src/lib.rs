//! Trace replay for training and evaluation: loads request traces (any log format the batch readers know, plus an
//! optional inventory) into a [`reprieve_model::dataset::Trace`], or a container registry's notification events
//! into a [`reprieve_images::replay::ImageTrace`], lays out cut times, trains a model on the cuts whose label
//! windows have closed, and evaluates it against recency rules by the protocol of DESIGN section 4.
//!
//! - [`trace`]: files -> trace; [`replay`]: what can be cut (object reads or a registry's history); [`plan`]:
//!   training runs; [`evaluate`]: the protocol; [`report`]: JSON, Markdown and SVG plots; [`feedback`]: the
//!   feedback export (acted-on verdicts with their features and restore labels) that the store's export writes and
//!   training reads.

pub mod error;
pub mod evaluate;
pub mod feedback;
pub mod plan;
pub mod replay;
pub mod report;
pub mod trace;

pub use error::EvalError;
pub use evaluate::{EvalConfig, EvalReport, evaluate};
pub use plan::{TrainPlan, train_on_trace};
pub use replay::Replay;
pub use report::write_report;
pub use trace::{LoadedImageTrace, LoadedTrace, load_image_trace, load_trace};
