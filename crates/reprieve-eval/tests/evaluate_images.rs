//! The evaluation protocol and training on a container registry's history: a synthetic registry's notification
//! events written to a real file, replayed at rolling cuts with image features.

use reprieve_core::Feature;
use reprieve_eval::plan::TrainPlan;
use reprieve_eval::{EvalConfig, Replay, evaluate, load_image_trace, train_on_trace};
use reprieve_images::synth::{SynthRegistry, write_registry_events};
use reprieve_model::train::{ExtraRows, TrainConfig};

const DAY: i64 = 86_400;

#[test]
fn evaluates_and_trains_on_registry_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let config = SynthRegistry {
        repositories: 24,
        days: 84,
        seed: 3,
        ..SynthRegistry::default()
    };
    let written = write_registry_events(&config, &path).expect("written");
    let loaded = load_image_trace(std::slice::from_ref(&path), &[], "registry.example.com", false).expect("loads");
    assert!(loaded.reports[0].malformed == 0, "{:?}", loaded.reports);
    let trace = &loaded.trace;
    assert_eq!(trace.reads(), written.pulls - trace.unresolved_pulls);
    assert!(trace.objects() >= written.images.min(100), "{} images", trace.objects());

    // The image features are computed: tags, tag shapes, pulls by digest, indexes.
    let cut = trace.cut(trace.log_start() + 50 * DAY, 7 * DAY);
    let any = |f: Feature| cut.rows.iter().any(|r| r.features.get(f) != 0.0);
    for f in [
        Feature::TagCountLog,
        Feature::TagLatest,
        Feature::TagSemver,
        Feature::PullsByDigestShare,
        Feature::ImageIndex,
    ] {
        assert!(any(f), "{f:?} is never set");
    }

    let eval = EvalConfig {
        horizon_secs: 7 * DAY,
        step_secs: 7 * DAY,
        from: None,
        to: None,
        target: 0.05,
        calibration_cuts: 2,
        train: TrainConfig::default(),
        adaptive_gamma: 0.0,
    };
    let report = evaluate(trace, &eval).expect("evaluates");
    assert!(!report.cuts.is_empty());
    assert_eq!(report.objects, trace.objects());
    let oracle = &report.pooled["oracle"];
    assert_eq!(oracle.false_deletes, 0);
    assert!(oracle.flagged > 0, "some images are never pulled again");
    for cut in &report.cuts {
        for &t in cut.train_cuts.iter().chain(&cut.calibration_cuts) {
            assert!(t + eval.horizon_secs <= cut.at, "cut {} used {t}", cut.at);
        }
        for f in &cut.model_false_deletes {
            assert!(f.key.contains("@sha256:"), "{}", f.key);
        }
    }
    let written = reprieve_eval::write_report(&report, &dir.path().join("out")).expect("report written");
    assert!(!written.is_empty());

    let plan = TrainPlan {
        horizon_secs: 7 * DAY,
        step_secs: 7 * DAY,
        cuts: Vec::new(),
        calibration_cuts: 2,
        config: TrainConfig::default(),
        source: path.display().to_string(),
        created_at: 0,
    };
    let (artifact, cuts) = train_on_trace(trace, &plan, &ExtraRows::default()).expect("trains");
    assert!(cuts.len() >= 3);
    assert!(artifact.training.train_rows > 0);
}
