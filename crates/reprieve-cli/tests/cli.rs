//! The `reprieve` binary as a user runs it: real files in a temporary directory, a real server process.

mod common;

use std::path::Path;

use common::{ServeProcess, reprieve, run, stderr, train_args};

#[test]
fn synth_then_train_writes_a_loadable_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("trace");
    let out = run(&[
        "synth",
        "--objects",
        "3000",
        "--days",
        "45",
        "--seed",
        "11",
        "--out-dir",
        trace.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in ["inventory.csv", "events.csv", "synth.json"] {
        assert!(trace.join(f).is_file(), "{f} written");
    }
    let model = dir.path().join("m.json");
    let out = run(&train_args(&trace, "cli-test", &model, &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    let loaded = reprieve_model_load(&model);
    assert!(loaded.starts_with("cli-test-"), "{loaded}");
}

fn reprieve_model_load(path: &Path) -> String {
    // Load through the public artifact format, as the server would.
    let text = std::fs::read_to_string(path).expect("artifact");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["format"], "reprieve-model/1");
    assert_eq!(value["feature_schema"]["version"], "reprieve-features-v3");
    value["version"].as_str().expect("version").to_string()
}

#[test]
fn errors_are_one_line_with_exit_codes() {
    let out = run(&[
        "train",
        "--events",
        "/nonexistent/events.csv",
        "--out",
        "/tmp/never.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("reprieve: error: "), "{err}");
    assert!(last.contains("/nonexistent/events.csv"), "the path is named: {last}");

    let out = run(&["synth", "--out-dir", "/tmp/x", "--objects", "many"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");

    let out = run(&["train", "--events", "x.csv", "--horizon", "14 days", "--out", "m.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--horizon"), "{}", stderr(&out));

    let out = run(&["evaluate", "--out-dir", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(2), "missing --events is a usage error");
    assert!(stderr(&out).contains("--events"), "{}", stderr(&out));

    let out = run(&["feedback", "show", "--data-dir", "/nonexistent/store", "--key", "k"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing store is an error, not an empty result"
    );
    assert!(
        stderr(&out).contains("no feedback store at /nonexistent/store"),
        "{}",
        stderr(&out)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "objects = 10\nshare_dead = 2.0\n").expect("write");
    let out = run(&[
        "synth",
        "--config",
        bad.to_str().expect("utf-8"),
        "--out-dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("share_dead"),
        "the knob is named: {}",
        stderr(&out)
    );
}

#[test]
fn serve_uses_the_bundled_model_and_stops_on_sigterm() {
    // In a scratch directory: the server keeps its feedback store in ./reprieve-data by default.
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut server = ServeProcess::spawn(
        reprieve()
            .current_dir(cwd.path())
            .args(["serve", "--listen", "127.0.0.1:0"]),
    );
    let addr = server.addr.clone();
    let runtime = tokio_runtime();
    let verdicts = runtime.block_on(async {
        let mut client = reprieve_proto::v1::reuse_scorer_client::ReuseScorerClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let record = reprieve_proto::v1::ObjectRecord {
            key: "cdn/a.png".into(),
            ..Default::default()
        };
        client
            .score(reprieve_proto::v1::ScoreRequest {
                objects: vec![record],
                at_unix: Some(1_780_000_000),
            })
            .await
            .expect("score")
            .into_inner()
    });
    assert_eq!(verdicts.verdicts.len(), 1);
    assert!(
        verdicts.model_version.starts_with("default-"),
        "{}",
        verdicts.model_version
    );
    // No history and no owner: the policy never lets it go.
    assert!(verdicts.verdicts[0].verdict_class <= reprieve_proto::v1::VerdictClass::Review as i32);

    // Close the client's connection before asking the server to stop.
    drop(runtime);
    let exit = server.terminate();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    let log = server.log();
    let rest = &log[log
        .iter()
        .position(|l| *l == server.listening)
        .expect("the listening line")
        + 1..];
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
