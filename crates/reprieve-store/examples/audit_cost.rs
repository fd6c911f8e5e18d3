//! What auditing a verdict costs in the store: encoding one record (79 features) and writing groups of them, with
//! and without a flush per group. A rough measurement, not a test; run after a build:
//!
//! ```sh
//! cargo build --workspace --all-targets
//! $CARGO_TARGET_DIR/debug/examples/audit_cost [records]
//! ```

#![allow(clippy::print_stdout)]

use std::time::Instant;

use reprieve_core::{Contribution, FEATURE_COUNT, ReasonCode, Verdict, VerdictClass};
use reprieve_store::{AuditRecord, EncodedVerdict, Store, StoreConfig, StoreError, WriteRequest};

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        verdict: Verdict {
            verdict_id: format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            tenant: "tenant-a".into(),
            key: format!("cdn/banners/img-{i}_300x200.png"),
            class: VerdictClass::DeleteCandidate,
            probability: 0.012_345_678_9,
            reasons: vec![ReasonCode::VeryUnlikelyReused],
            contributions: (0..5)
                .map(|k| Contribution {
                    feature: format!("feature_{k}").into(),
                    value: 1.234_567_8 * k as f64,
                    contribution: -0.345_678_9,
                })
                .collect(),
            model_version: "default-0123abcd".into(),
            scored_at: 1_780_000_000,
        },
        features: (0..FEATURE_COUNT).map(|k| (i * 31 + k) as f64 * 0.123_456_7).collect(),
        feature_names_hash: "0123456789abcdef".into(),
        source: "grpc".into(),
    }
}

fn main() -> Result<(), StoreError> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let records: Vec<_> = (0..n).map(record).collect();
    let started = Instant::now();
    let encoded = records.iter().map(EncodedVerdict::new).collect::<Result<Vec<_>, _>>()?;
    let secs = started.elapsed().as_secs_f64();
    let bytes: usize = encoded.iter().map(EncodedVerdict::encoded_len).sum();
    println!(
        "encode: {:.1} us/record, {} bytes/record",
        secs * 1e6 / n as f64,
        bytes / n
    );
    for durable in [true, false] {
        for group in [100, 1_000, 10_000] {
            let dir = tempfile::tempdir().map_err(|e| StoreError::Invalid(e.to_string()))?;
            let store = Store::open(dir.path(), StoreConfig::default())?;
            let started = Instant::now();
            for chunk in encoded.chunks(group) {
                store.write_group(&[WriteRequest::Verdicts(chunk)], durable)?;
            }
            store.flush()?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "write groups of {group:>6} ({}): {:>8.0} records/s, {:.1} us/record",
                if durable { "flush per group" } else { "no flush" },
                n as f64 / secs,
                secs * 1e6 / n as f64
            );
        }
    }
    Ok(())
}
