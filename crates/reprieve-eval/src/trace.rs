//! Loading a trace from files: access logs in any supported format plus an optional inventory, or a container
//! registry's notification events.

use std::path::PathBuf;

use reprieve_batch::formats::{ReadOptions, ReadReport, for_each_event};
use reprieve_batch::inventory::{InventoryOptions, read_inventory};
use reprieve_images::replay::ImageTrace;
use reprieve_model::dataset::Trace;

use crate::error::EvalError;

/// A trace and how its files read.
#[derive(Debug)]
pub struct LoadedTrace {
    pub trace: Trace,
    pub reports: Vec<ReadReport>,
}

/// Reads every event file (streaming) and the inventory, if any, into a trace.
pub fn load_trace(
    events: &[PathBuf],
    options: &ReadOptions,
    inventory: Option<&PathBuf>,
    inventory_options: &InventoryOptions,
) -> Result<LoadedTrace, EvalError> {
    let mut reports = Vec::new();
    let inventory_rows = match inventory {
        Some(path) => {
            let (rows, report) = read_inventory(path, inventory_options)?;
            reports.push(report);
            rows.into_iter().map(|r| (r.record, r.cohort)).collect()
        }
        None => Vec::new(),
    };
    let mut reads = Vec::new();
    for path in events {
        let report = for_each_event(path, options, |e| reads.push((e.ts, e.tenant, e.key, e.size)))?;
        reports.push(report);
    }
    if reads.is_empty() {
        return Err(EvalError::Plan("the event files hold no reads".into()));
    }
    Ok(LoadedTrace {
        trace: Trace::from_parts(inventory_rows, reads),
        reports,
    })
}

/// A registry's history and how its files read.
#[derive(Debug)]
pub struct LoadedImageTrace {
    pub trace: ImageTrace,
    pub reports: Vec<ReadReport>,
    /// Images that got a size from the ECR listings.
    pub sized: u64,
}

/// Reads registry notification event files (distribution/OCI registry webhooks, JSON Lines or one document, gzip
/// ok) into an image trace: images are `repository@digest` (records get `tenant`), pulls are their reads. Events
/// carry no image sizes (a manifest's `size` is the manifest's own): `ecr_images` (`aws ecr describe-images`
/// files, may be empty) gives them, and nothing else of those listings is used.
pub fn load_image_trace(
    paths: &[PathBuf],
    ecr_images: &[PathBuf],
    tenant: &str,
    strict: bool,
) -> Result<LoadedImageTrace, EvalError> {
    let (mut trace, mut reports) = ImageTrace::load(paths, tenant, strict)?;
    if trace.pulls() == 0 {
        return Err(EvalError::Plan(format!(
            "the registry event files hold no pull of a known image ({} manifest events, {} pulls by a tag that \
             pointed at no pushed digest)",
            trace.events(),
            trace.unresolved_pulls
        )));
    }
    let mut sized = 0;
    if !ecr_images.is_empty() {
        let (ecr_reports, known) = trace.add_sizes(ecr_images, strict)?;
        reports.extend(ecr_reports);
        sized = known;
    }
    Ok(LoadedImageTrace { trace, reports, sized })
}
