//! Dumps our features for the subset the Python peers compute, so that their definitions can be checked against
//! ours on the same files (not a criterion bench):
//!
//! ```text
//! cargo bench --workspace --bench peer_check -- INVENTORY.parquet EVENTS.parquet AT OUT.csv
//! python benches/python/check_features.py OUT.csv INVENTORY.parquet EVENTS.parquet AT
//! ```
//!
//! It runs the batch scorer's own preparation ([`reprieve_batch::prepare`]: inventory, one pass over the events,
//! history stats, coverage) and [`extract_with_stats`], exactly what `reprieve score` feeds the model.

// This binary's output is its report.
#![allow(clippy::print_stderr)]

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use reprieve_batch::{ScoreJob, prepare};
use reprieve_core::FEATURE_NAMES;
use reprieve_core::features::extract_with_stats;

/// The subset of benches/python/common.py, in its order.
const SUBSET: [&str; 24] = [
    "age_days_log",
    "age_known",
    "modified_days_log",
    "since_last_read_days_log",
    "never_read",
    "coverage_days_log",
    "reads_1d_log",
    "reads_7d_log",
    "reads_30d_log",
    "reads_90d_log",
    "reads_365d_log",
    "reads_total_log",
    "gap_count_frac",
    "gap_mean_days_log",
    "gap_last_days_log",
    "gap_max_days_log",
    "gap_cv",
    "depth_log",
    "name_len_log",
    "size_log",
    "size_known",
    "storage_infrequent",
    "storage_archive",
    "storage_unknown",
];

fn run(args: &[String]) -> Result<(), String> {
    let [inventory, events, at, out] = args else {
        return Err("usage: peer_check INVENTORY EVENTS AT OUT.csv".into());
    };
    let at: i64 = at.parse().map_err(|e| format!("AT {at:?}: {e}"))?;
    let idx: Vec<usize> = SUBSET
        .iter()
        .map(|n| {
            FEATURE_NAMES
                .iter()
                .position(|f| f == n)
                .ok_or(format!("no feature {n}"))
        })
        .collect::<Result<_, _>>()?;
    let job = ScoreJob::new(inventory, vec![PathBuf::from(events)], at, PathBuf::from(out));
    let prepared = prepare(&job).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(out).map_err(|e| format!("{out}: {e}"))?;
    let mut w = BufWriter::new(file);
    let header = format!("tenant,key,{}\n", SUBSET.join(","));
    let mut result = w.write_all(header.as_bytes());
    for o in &prepared.objects {
        if result.is_err() {
            break;
        }
        let v = extract_with_stats(&o.record, &o.stats);
        let values: Vec<String> = idx.iter().map(|&i| format!("{:.17e}", v.values()[i])).collect();
        // Keys from the generator contain no commas or quotes.
        result = writeln!(w, "{},{},{}", o.record.tenant, o.record.key, values.join(","));
    }
    result.and_then(|()| w.flush()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("wrote {} objects' features to {out}", prepared.objects.len());
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.is_empty() {
        eprintln!("usage: peer_check INVENTORY EVENTS AT OUT.csv");
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("peer_check: {e}");
        std::process::exit(1);
    }
}
