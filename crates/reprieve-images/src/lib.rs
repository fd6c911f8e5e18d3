//! Reprieve for container images: which images in a registry can safely go.
//!
//! An image is a manifest digest within a repository; tags are mutable pointers to digests. This crate turns a
//! registry's own records into the same [`ObjectRecord`](reprieve_core::ObjectRecord)s the file scorer uses (key
//! `repository@digest`, pulls resolved to digests as the history, Kubernetes references as live references), so
//! that verdicts, policy, scores file and report are shared with files:
//!
//! - [`events`]: registry notification events (distribution/OCI registry webhooks), push/pull/delete.
//! - [`ecr`]: `aws ecr describe-images` JSON, an inventory with the last recorded pull.
//! - [`kube`]: Kubernetes objects (YAML/JSON, `kubectl get -o json`): every image a workload names.
//! - [`reference`]: image references normalised as Docker/OCI tooling does (`nginx` = `docker.io/library/nginx:latest`).
//! - [`cron`]: CronJob schedules and their next runs.
//! - [`registry`]: identity, tag-to-digest resolution over time, index children, live references, records.
//! - [`score`]: `reprieve score --registry-events/--ecr-images/--k8s` through the shared batch scorer.
//! - [`replay`]: registry events as a trace for `reprieve evaluate`/`train`: labelled cuts without look-ahead.
//! - [`synth`]: a seeded synthetic registry history in the notification format.
//!
//! ```no_run
//! use reprieve_images::score::{ImageJob, run_image_score};
//! # fn engine() -> reprieve_model::Engine { unimplemented!() }
//! let mut job = ImageJob::new(1_767_225_600, "scores.parquet");
//! job.registry_events = vec!["events.jsonl".into()];
//! job.kubernetes = vec!["cluster.yaml".into()];
//! let summary = run_image_score(&job, &engine(), None)?;
//! assert!(summary.images.held_by_reference.iter().all(|h| !h.class.lets_go()));
//! # Ok::<(), reprieve_images::ImageError>(())
//! ```

pub mod cron;
pub mod ecr;
mod error;
pub mod events;
pub mod kube;
pub mod reference;
pub mod registry;
pub mod replay;
pub mod score;
pub mod synth;

pub use error::ImageError;
pub use registry::{Built, ImageObject, LiveRef, Registry};
pub use score::{ImageJob, ImageSummary, ImagesReport, run_image_score};
