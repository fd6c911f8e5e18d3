//! The evaluation protocol end to end on a synthetic trace written to real files.

use reprieve_batch::formats::ReadOptions;
use reprieve_batch::inventory::InventoryOptions;
use reprieve_eval::{EvalConfig, evaluate, load_trace, write_report};
use reprieve_model::dataset::{Trace, build_cut};
use reprieve_model::train::TrainConfig;
use reprieve_synth::{SynthConfig, generate};

const DAY: i64 = 86_400;

fn synthetic_trace(dir: &std::path::Path) -> Trace {
    let config = SynthConfig {
        objects: 4_000,
        days: 56,
        seed: 5,
        ..SynthConfig::default()
    };
    generate(&config, dir).expect("synth");
    load_trace(
        &[dir.join("events.csv")],
        &ReadOptions::default(),
        Some(&dir.join("inventory.csv")),
        &InventoryOptions::default(),
    )
    .expect("trace loads")
    .trace
}

#[test]
fn writes_every_method_pooled_and_per_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = synthetic_trace(dir.path());
    let config = EvalConfig {
        horizon_secs: 7 * DAY,
        step_secs: 7 * DAY,
        from: None,
        to: None,
        target: 0.05,
        calibration_cuts: 2,
        train: TrainConfig::default(),
        adaptive_gamma: 0.0,
    };
    let report = evaluate(&trace, &config).expect("evaluates");
    assert!(!report.cuts.is_empty());
    for cut in &report.cuts {
        // Fixed target (adaptive step 0); the listed false deletes are the model's, at most the cap.
        assert_eq!(cut.working_target, config.target);
        assert!(cut.model_false_deletes.len() as u64 <= cut.methods["model"].false_deletes);
        assert!(cut.model_false_deletes.len() <= reprieve_eval::evaluate::FALSE_DELETE_SAMPLES);
    }
    for method in reprieve_eval::evaluate::METHODS {
        let f = report.pooled.get(method).unwrap_or_else(|| panic!("{method} pooled"));
        assert!(report.pooled_recent.contains_key(method));
        assert!((0.0..=1.0).contains(&f.false_delete_rate));
        assert!(f.false_delete_upper_95 >= f.false_delete_rate);
    }
    let oracle = &report.pooled["oracle"];
    assert_eq!(oracle.false_deletes, 0);
    assert!((oracle.unused_bytes_found - 1.0).abs() < 1e-12);
    // Every test cut trains only on cuts whose label windows closed before it.
    for cut in &report.cuts {
        for &t in cut.train_cuts.iter().chain(&cut.calibration_cuts) {
            assert!(t + config.horizon_secs <= cut.at, "cut {} used {t}", cut.at);
        }
    }
    // The synthetic cohorts are reported separately.
    assert!(report.cohorts.contains_key("monthly") && report.cohorts.contains_key("dead"));

    let out = dir.path().join("eval");
    let files = write_report(&report, &out).expect("report written");
    assert_eq!(files.len(), 5);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json")).expect("parses");
    for key in [
        "pooled",
        "pooled_recent",
        "gap_closed",
        "cuts",
        "feature_schema_version",
    ] {
        assert!(json.get(key).is_some(), "report.json has {key}");
    }
    for key in [
        "flagged",
        "false_delete_rate",
        "false_delete_upper_95",
        "unused_bytes_found",
        "unused_objects_found",
    ] {
        assert!(json["pooled"]["model"].get(key).is_some(), "pooled.model.{key}");
    }
    let svg = std::fs::read_to_string(out.join("tradeoff.svg")).expect("svg");
    assert!(svg.starts_with("<svg"));
}

#[test]
fn features_of_a_cut_ignore_everything_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = synthetic_trace(dir.path());
    let at = trace.log_start + 21 * DAY;
    let before = build_cut(&trace, at, 7 * DAY);
    // Rewrite the future: drop every read after the cut and add a burst on every object.
    let mut altered = trace.clone();
    altered.events.retain(|e| e.0 < at);
    let n = altered.objects.len() as u32;
    altered
        .events
        .extend((0..n).map(|o| (at + i64::from(o % 1000) * 60, o)));
    altered.events.sort_unstable();
    let after = build_cut(&altered, at, 7 * DAY);
    assert_eq!(before.rows.len(), after.rows.len());
    let mut labels_changed = 0;
    for (a, b) in before.rows.iter().zip(&after.rows) {
        assert_eq!(a.object, b.object);
        assert_eq!(a.features, b.features, "object {}", a.object);
        assert_eq!(a.idle_secs, b.idle_secs);
        labels_changed += usize::from(a.reused != b.reused);
    }
    assert!(labels_changed > 0, "the labels do see the future, so the test can tell");
}
