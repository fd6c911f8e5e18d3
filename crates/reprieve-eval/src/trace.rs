//! Loading a trace from files: access logs in any supported format plus an optional inventory.

use std::path::PathBuf;

use reprieve_batch::formats::{ReadOptions, ReadReport, for_each_event};
use reprieve_batch::inventory::{InventoryOptions, read_inventory};
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
