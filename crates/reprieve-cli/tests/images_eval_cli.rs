//! `reprieve evaluate` and `reprieve train` on a registry's notification events, as a user runs them: a synthetic
//! registry history written in the registry's own format, a model trained on it, and that model scoring the
//! registry with `reprieve score`.

use std::process::{Command, Output};

use reprieve_images::synth::{SynthRegistry, write_registry_events};

fn reprieve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn evaluate_train_and_score_on_registry_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    let config = SynthRegistry {
        repositories: 24,
        days: 84,
        seed: 11,
        ..SynthRegistry::default()
    };
    write_registry_events(&config, &events).expect("written");
    let cuts = ["--horizon", "7d", "--step", "7d", "--calibration-cuts", "2"];

    let out_dir = dir.path().join("eval");
    let o = Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .env("RUST_LOG", "info")
        .args(["evaluate", "--target-false-delete", "0.05"])
        .args(cuts)
        .arg("--registry-events")
        .arg(&events)
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("registry trace loaded"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).expect("report.json"))
            .expect("json");
    assert!(report["cuts"].as_array().is_some_and(|c| !c.is_empty()), "{report}");
    assert!(
        report["objects"].as_u64().is_some_and(|n| n > 100),
        "{}",
        report["objects"]
    );
    assert_eq!(report["pooled"]["oracle"]["false_deletes"], 0);

    let model = dir.path().join("model.json");
    let o = Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .env("RUST_LOG", "info")
        .args(["train", "--target-delete", "0.05", "--target-archive", "0.1"])
        .args(cuts)
        .arg("--registry-events")
        .arg(&events)
        .arg("--out")
        .arg(&model)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let artifact = std::fs::read_to_string(&model).expect("model written");
    assert!(artifact.contains("events.jsonl"), "the source names the events file");

    // The model trained on registry history scores the registry (same features as in training).
    let scores = dir.path().join("scores.csv");
    let at = reprieve_core::time::format_rfc3339(config.start + 80 * 86_400);
    let o = Command::new(env!("CARGO_BIN_EXE_reprieve"))
        .args(["score", "--allow-unknown-owner", "--at", &at, "--registry-events"])
        .arg(&events)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&scores)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&scores).expect("scores");
    assert!(text.lines().count() > 100, "{text}");
}

#[test]
fn registry_events_and_access_logs_are_exclusive() {
    let o = reprieve(&[
        "evaluate",
        "--events",
        "a.csv",
        "--registry-events",
        "e.jsonl",
        "--out-dir",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = reprieve(&["train", "--out", "m.json"]);
    assert_eq!(o.status.code(), Some(2), "neither --events nor --registry-events");
}
