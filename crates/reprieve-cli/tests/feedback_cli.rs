//! The feedback loop as an operator runs it: `reprieve score --data-dir` audits a synthetic inventory's verdicts
//! into a real sled directory, `reprieve feedback actions|restores` records CSV and JSON Lines files, precision and
//! breakers report on them, `reprieve feedback export` writes the training Parquet and `reprieve train --feedback`
//! learns from it. Every number checked below is counted by hand from the files the test wrote.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{arg as s, error_line, reprieve, run, score_args, stderr, train_args};
use reprieve_core::features::FEATURE_SCHEMA_VERSION;
use reprieve_core::time::{DAY, format_rfc3339};
use serde_json::Value;

/// Runs and expects success; returns stdout parsed as JSON.
fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {:?}", out.stdout))
}

/// `feedback COMMAND --data-dir DATA EXTRA... --format json`.
fn feedback_args<'a>(command: &'a str, data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["feedback", command, "--data-dir", data];
    args.extend_from_slice(extra);
    args.extend(["--format", "json"]);
    args
}

/// Runs `reprieve feedback COMMAND --data-dir DATA EXTRA... --format json`, expects success and returns stdout
/// parsed as JSON.
fn feedback_json(command: &str, data: &str, extra: &[&str]) -> Value {
    json(&feedback_args(command, data, extra))
}

/// Synth start (2026-01-01T00:00:00Z) and span of the test trace.
const START: i64 = 1_767_225_600;
const DAYS: i64 = 45;

/// One row of the scores file.
#[derive(Debug, Clone)]
struct Scored {
    tenant: String,
    key: String,
    class: String,
    verdict_id: String,
    model_version: String,
}

impl Scored {
    fn prefix(&self) -> String {
        match self.key.find('/') {
            Some(i) => self.key[..=i].to_string(),
            None => String::new(),
        }
    }
}

/// A synthetic trace scored into a store.
struct Scene {
    dir: tempfile::TempDir,
    trace: PathBuf,
    data: PathBuf,
    at: i64,
    scores: Vec<Scored>,
}

fn synth(dir: &Path) -> PathBuf {
    let trace = dir.join("trace");
    let out = run(&[
        "synth",
        "--objects",
        "2000",
        "--days",
        "45",
        "--seed",
        "7",
        "--out-dir",
        s(&trace),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    trace
}

fn scene() -> Scene {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = synth(dir.path());
    let data = dir.path().join("store");
    let at = START + DAYS * DAY;
    let out_path = dir.path().join("scores.csv");
    let out = reprieve()
        .args(score_args(&trace, at, &out_path, &data))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("accepted=2000"), "{}", stderr(&out));
    let text = std::fs::read_to_string(&out_path).expect("scores");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (t, k, c, v, m) = (
        col("tenant"),
        col("key"),
        col("class"),
        col("verdict_id"),
        col("model_version"),
    );
    let scores: Vec<Scored> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "synthetic keys have no commas: {l}");
            Scored {
                tenant: f[t].into(),
                key: f[k].into(),
                class: f[c].into(),
                verdict_id: f[v].into(),
                model_version: f[m].into(),
            }
        })
        .collect();
    assert_eq!(scores.len(), 2000);
    Scene {
        dir,
        trace,
        data,
        at,
        scores,
    }
}

/// The largest (tenant, top-level prefix) scope of the scores, sorted by key.
fn largest_scope(scores: &[Scored]) -> Vec<Scored> {
    let mut by_scope: BTreeMap<(String, String), Vec<Scored>> = BTreeMap::new();
    for r in scores {
        by_scope
            .entry((r.tenant.clone(), r.prefix()))
            .or_default()
            .push(r.clone());
    }
    let mut rows = by_scope.into_values().max_by_key(|v| v.len()).expect("a scope");
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// One-sided 95% Clopper-Pearson upper bound with no restores: 1 - 0.05^(1/n).
fn upper_95_none_restored(n: u64) -> f64 {
    1.0 - 0.05f64.powf(1.0 / n as f64)
}

fn training_summary(path: &Path) -> Value {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("artifact")).expect("json");
    v["training"].clone()
}

#[test]
fn score_audits_then_actions_restores_precision_breakers_export_and_train() {
    let sc = scene();
    let data = s(&sc.data);
    let at = sc.at;

    // The audit trail holds the batch's verdicts, features included.
    let first = &sc.scores[0];
    let shown = feedback_json("show", data, &["--key", &first.key, "--tenant", &first.tenant]);
    let shown = shown.as_array().expect("array");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["verdict"]["verdict_id"], first.verdict_id.as_str());
    assert_eq!(shown[0]["verdict"]["class"], first.class.as_str());
    assert_eq!(shown[0]["source"], "batch");
    assert_eq!(
        shown[0]["features"].as_array().expect("features").len(),
        reprieve_core::FEATURE_COUNT
    );
    let range = feedback_json(
        "show",
        data,
        &["--from", &at.to_string(), "--to", &at.to_string(), "--limit", "7"],
    );
    assert_eq!(range.as_array().expect("array").len(), 7);
    let table = run(&[
        "feedback",
        "show",
        "--data-dir",
        data,
        "--key",
        &first.key,
        "--tenant",
        &first.tenant,
    ]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&first.verdict_id));

    // Scoring the same inventory again audits nothing new (same verdict ids).
    let again = reprieve()
        .args(score_args(&sc.trace, at, &sc.dir.path().join("again.csv"), &sc.data))
        .output()
        .expect("runs");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("accepted=0 duplicates=2000"),
        "{}",
        stderr(&again)
    );

    // Actions: 120 soft deletes, one ignored, one archive in the largest scope; three bad rows.
    let scope = largest_scope(&sc.scores);
    assert!(scope.len() >= 210, "scope of {} objects", scope.len());
    let (tenant, prefix, model) = (
        scope[0].tenant.clone(),
        scope[0].prefix(),
        scope[0].model_version.clone(),
    );
    let acted_at = at + 3_600;
    let mut csv = String::from("event_id,tenant,key,verdict_id,action,at\n");
    for (i, r) in scope.iter().take(122).enumerate() {
        let kind = match i {
            120 => "ignored",
            121 => "Archived",
            _ => "soft_deleted",
        };
        // Both time notations.
        let t = if i % 2 == 0 {
            acted_at.to_string()
        } else {
            format_rfc3339(acted_at)
        };
        csv.push_str(&format!("a{i},{},{},{},{kind},{t}\n", r.tenant, r.key, r.verdict_id));
    }
    csv.push_str(&format!(
        "bad1,{tenant},{},{},shredded,{acted_at}\n",
        scope[130].key, scope[130].verdict_id
    ));
    csv.push_str(&format!(
        "bad2,{tenant},,{},archived,{acted_at}\n",
        scope[131].verdict_id
    ));
    csv.push_str(&format!(
        "bad3,{tenant},{},{},archived,tomorrow\n",
        scope[132].key, scope[132].verdict_id
    ));
    let actions = sc.dir.path().join("actions.csv");
    std::fs::write(&actions, csv).expect("write");
    let out = run(&feedback_args("actions", data, &["--file", s(&actions)]));
    assert!(out.status.success(), "{}", stderr(&out));
    let ack: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(ack["format"], "csv");
    assert_eq!(ack["rows"], 125);
    assert_eq!(ack["accepted"], 122);
    assert_eq!(ack["duplicates"], 0);
    assert_eq!(ack["unknown_verdicts"], 0);
    assert_eq!(ack["bad_rows"], 3);
    let bad_lines: Vec<u64> = ack["bad"]
        .as_array()
        .expect("bad")
        .iter()
        .map(|b| b["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(bad_lines, vec![124, 125, 126]);
    let err = stderr(&out);
    assert!(err.contains("actions.csv:124: skipped: action \"shredded\""), "{err}");
    assert!(err.contains("actions.csv:125: skipped: key is missing"), "{err}");
    assert!(err.contains("actions.csv:126: skipped: at \"tomorrow\""), "{err}");

    // Restores (JSON Lines): five match soft deletes (three say when the need arose), one follows the ignored
    // action, one an object nobody acted on, one comes after the 30-day window; two bad lines.
    let restored_at = at + 7_200;
    let mut jsonl = String::new();
    for (i, r) in scope.iter().take(5).enumerate() {
        let requested = if i < 3 {
            Value::from(acted_at + 600)
        } else {
            Value::Null
        };
        let line = serde_json::json!({"event_id": format!("r{i}"), "tenant": r.tenant, "key": r.key,
            "at": restored_at, "requested_at": requested});
        jsonl.push_str(&format!("{line}\n"));
    }
    for (id, r, t) in [
        ("r-ignored", &scope[120], restored_at),
        ("r-never-acted", &scope[200], restored_at),
        ("r-late", &scope[5], acted_at + 31 * DAY),
    ] {
        let line = serde_json::json!({"event_id": id, "tenant": r.tenant, "key": r.key, "at": format_rfc3339(t)});
        jsonl.push_str(&format!("{line}\n"));
    }
    jsonl.push_str("this is not json\n");
    jsonl.push_str(&format!(
        "{}\n",
        serde_json::json!({"event_id": "r-bad", "key": scope[6].key})
    ));
    let restores = sc.dir.path().join("restores.jsonl");
    std::fs::write(&restores, jsonl).expect("write");
    let ack = feedback_json("restores", data, &["--file", s(&restores)]);
    assert_eq!(ack["format"], "jsonl");
    assert_eq!((ack["rows"].as_u64(), ack["accepted"].as_u64()), (Some(10), Some(8)));
    assert_eq!(ack["matched"], 5);
    assert_eq!(ack["bad_rows"], 2);

    let precision = || {
        feedback_json(
            "precision",
            data,
            &["--tenant", &tenant, "--prefix", &prefix, "--window", "all"],
        )
    };
    let before = precision();

    // Re-running both files changes nothing.
    let ack = feedback_json("actions", data, &["--file", s(&actions)]);
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(122))
    );
    let ack = feedback_json("restores", data, &["--file", s(&restores)]);
    assert_eq!(
        (
            ack["accepted"].as_u64(),
            ack["duplicates"].as_u64(),
            ack["matched"].as_u64()
        ),
        (Some(0), Some(8), Some(0))
    );
    assert_eq!(precision(), before, "a re-run changes nothing");

    // Precision by hand: per class, the actions that let go (not the ignored one) and the restored ones.
    let mut expected: BTreeMap<String, (u64, u64, Vec<f64>)> = BTreeMap::new();
    for (i, r) in scope.iter().take(122).enumerate() {
        if i == 120 {
            continue;
        }
        let e = expected.entry(r.class.clone()).or_default();
        e.0 += 1;
        if i < 5 {
            e.1 += 1;
            // Time to recover: from the request when known, else from the action.
            e.2.push(if i < 3 { 7_200.0 - 4_200.0 } else { 7_200.0 - 3_600.0 });
        }
    }
    let rows = before["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), expected.len(), "{before}");
    for row in rows {
        let class = row["class"].as_str().expect("class");
        let (actions, restores, ttr) = &expected[class];
        assert_eq!(row["model_version"], model.as_str());
        assert_eq!(row["actions"].as_u64(), Some(*actions), "{class}");
        assert_eq!(row["restores"].as_u64(), Some(*restores), "{class}");
        let rate = row["false_delete_rate"].as_f64().expect("rate");
        assert!((rate - *restores as f64 / *actions as f64).abs() < 1e-12, "{row}");
        let upper = row["false_delete_upper_95"].as_f64().expect("upper");
        if *restores == 0 {
            assert!((upper - upper_95_none_restored(*actions)).abs() < 1e-6, "{row}");
        } else {
            assert!(upper > rate && upper < 1.0, "{row}");
        }
        let mut ttr = ttr.clone();
        ttr.sort_by(f64::total_cmp);
        let median = match ttr.len() {
            0 => None,
            n if n % 2 == 1 => Some(ttr[n / 2]),
            n => Some((ttr[n / 2 - 1] + ttr[n / 2]) / 2.0),
        };
        assert_eq!(row["median_time_to_recover_secs"].as_f64(), median, "{row}");
        // 120 deletes, 5 restored: the bound (about 8.5%) is far above the 1% target.
        assert_eq!(row["breaker_open"], true, "{row}");
    }
    // The window counts actions before --at only.
    let windowed = |at: i64, window: &str| {
        feedback_json(
            "precision",
            data,
            &["--tenant", &tenant, "--at", &at.to_string(), "--window", window],
        )["rows"]
            .as_array()
            .expect("rows")
            .len()
    };
    assert_eq!(windowed(at + 40 * DAY, "30d"), 0);
    assert_eq!(windowed(at + DAY, "2d"), expected.len());
    let table = run(&["feedback", "precision", "--data-dir", data, "--window", "all"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("OPEN"));

    // The breaker of the scope opened; an audited reset closes it.
    let breakers = feedback_json("breakers", data, &["--events"]);
    let ours = |b: &Value| {
        b["scopes"]
            .as_array()
            .expect("scopes")
            .iter()
            .find(|x| x["scope"]["tenant"] == tenant.as_str() && x["scope"]["prefix"] == prefix.as_str())
            .cloned()
            .expect("our scope")
    };
    let state = ours(&breakers)["state"].clone();
    assert_eq!(state["open"], true);
    assert_eq!(
        (state["actions"].as_u64(), state["restored"].as_u64()),
        (Some(120), Some(5))
    );
    assert_eq!(breakers["events"][0]["kind"]["type"], "opened");

    let reset = |extra: &[&str]| {
        let mut a = vec![
            "feedback",
            "reset-breaker",
            "--data-dir",
            data,
            "--model",
            &model,
            "--tenant",
            &tenant,
            "--operator",
            "alice",
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    let out = reset(&["--prefix", "no-such-prefix/", "--reason", "typo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).contains("no breaker for model"), "{}", stderr(&out));
    let out = reset(&["--prefix", &prefix]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    let reset_at = at + 3 * DAY;
    let out = reset(&[
        "--prefix",
        &prefix,
        "--reason",
        "false alarm: migration",
        "--at",
        &reset_at.to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ack: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(ack["was_open"], true);
    let breakers = feedback_json("breakers", data, &["--events"]);
    let state = ours(&breakers)["state"].clone();
    assert_eq!(state["open"], false);
    assert_eq!(state["counting_since"].as_i64(), Some(reset_at));
    assert_eq!(state["actions"], 0, "the deletes before the reset no longer count");
    let last = breakers["events"]
        .as_array()
        .expect("events")
        .last()
        .cloned()
        .expect("an event");
    assert_eq!(last["kind"]["type"], "reset");
    assert_eq!(last["kind"]["operator"], "alice");
    assert_eq!(last["kind"]["reason"], "false alarm: migration");
    let table = run(&["feedback", "breakers", "--data-dir", data, "--events"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("reset by alice (was open): false alarm: migration"));

    // Export: before the restore windows close only the restored verdicts have a label; after, every acted-on one.
    let export = |out: &Path, at: i64| feedback_json("export", data, &["--out", s(out), "--at", &at.to_string()]);
    let early = sc.dir.path().join("early.parquet");
    let summary = export(&early, at + 2 * DAY);
    assert_eq!(
        (summary["rows"].as_u64(), summary["reused"].as_u64()),
        (Some(5), Some(5))
    );
    let full = sc.dir.path().join("feedback.parquet");
    let summary = export(&full, at + 40 * DAY);
    // 120 soft deletes and one archive; the ignored action is no label. The late restore matched nothing.
    assert_eq!(
        (summary["rows"].as_u64(), summary["reused"].as_u64()),
        (Some(121), Some(5))
    );
    assert_eq!(summary["skipped_other_schema"], 0);
    assert_eq!(summary["feature_schema"]["version"], FEATURE_SCHEMA_VERSION);

    // Training counts the feedback rows (two exports: the option repeats).
    let plain = sc.dir.path().join("plain.json");
    let out = reprieve()
        .args(train_args(&sc.trace, "fb", &plain, &[]))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let with = sc.dir.path().join("with.json");
    let out = reprieve()
        .args(train_args(&sc.trace, "fb", &with, &[&full, &early]))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let (p, w) = (training_summary(&plain), training_summary(&with));
    let rows = |v: &Value, k: &str| v[k].as_u64().expect("count");
    assert_eq!(rows(&w, "train_rows") - rows(&p, "train_rows"), 126);
    assert_eq!(rows(&w, "train_positives") - rows(&p, "train_positives"), 10);
    let source = w["source"].as_str().expect("source");
    assert!(source.contains("feedback: 126 rows"), "{source}");
    assert!(source.contains("(121 rows, 5 reused)"), "{source}");

    // An export of another feature schema is refused, and no model is written.
    let mut bytes = std::fs::read(&full).expect("read");
    let (from, to) = (FEATURE_SCHEMA_VERSION.as_bytes(), b"reprieve-features-v0");
    assert_eq!(from.len(), to.len(), "the patch keeps the file's length");
    let at_meta = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("schema in the metadata");
    bytes[at_meta..at_meta + to.len()].copy_from_slice(to);
    let old = sc.dir.path().join("old-schema.parquet");
    std::fs::write(&old, bytes).expect("write");
    let refused = sc.dir.path().join("refused.json");
    let out = reprieve()
        .args(train_args(&sc.trace, "fb", &refused, &[&old]))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.contains("feature schema mismatch") && line.contains("reprieve-features-v0"),
        "{line}"
    );
    assert!(!refused.exists());
}

#[test]
fn strict_files_record_nothing_and_missing_or_locked_stores_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");

    // No store: every feedback command refuses, and creates nothing.
    for dir_arg in [data.clone(), dir.path().to_path_buf()] {
        let out = run(&["feedback", "breakers", "--data-dir", s(&dir_arg)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(error_line(&out).contains("no feedback store at"), "{}", stderr(&out));
    }
    assert!(!data.exists());

    // A store (as `reprieve serve` would create it); the default directory and REPRIEVE_DATA_DIR find it.
    drop(reprieve_store::Store::open(&dir.path().join("reprieve-data"), Default::default()).expect("store"));
    let out = reprieve()
        .current_dir(dir.path())
        .args(["feedback", "breakers", "--format", "json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "the default ./reprieve-data: {}", stderr(&out));
    let out = reprieve()
        .env("REPRIEVE_DATA_DIR", dir.path().join("reprieve-data"))
        .args(["feedback", "precision"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "REPRIEVE_DATA_DIR: {}", stderr(&out));
    let data = dir.path().join("reprieve-data");
    let data_s = s(&data);

    // The server's configuration file: its [store] section chooses the directory and the store's settings.
    let config = dir.path().join("reprieve.toml");
    std::fs::write(
        &config,
        format!("[store]\ndata_dir = {data_s:?}\nbreaker_min_actions = 7\nbreaker_target = 0.02\n"),
    )
    .expect("write");
    let breakers = json(&["feedback", "breakers", "--config", s(&config), "--format", "json"]);
    assert_eq!(breakers["breaker_min_actions"], 7);
    assert_eq!(breakers["breaker_target"], 0.02);

    // --strict refuses a file with a bad row and records nothing; without it the good rows go in.
    let file = dir.path().join("restores.csv");
    std::fs::write(
        &file,
        "event_id,tenant,key,at,requested_at\nr1,acme,img/a.png,1700000000,\nr2,acme,img/b.png,1700000000,1800000000\n",
    )
    .expect("write");
    let out = run(&[
        "feedback",
        "restores",
        "--data-dir",
        data_s,
        "--file",
        s(&file),
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(line.contains("restores.csv:3: requested_at is after at"), "{line}");
    let ack = feedback_json("restores", data_s, &["--file", s(&file)]);
    assert_eq!((ack["accepted"].as_u64(), ack["bad_rows"].as_u64()), (Some(1), Some(1)));

    // A header without the required columns refuses the whole file.
    let file = dir.path().join("actions.csv");
    std::fs::write(&file, "id,key,when\n1,a,2\n").expect("write");
    let out = run(&["feedback", "actions", "--data-dir", data_s, "--file", s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        error_line(&out).contains("the header row lacks event_id"),
        "{}",
        stderr(&out)
    );

    // Usage errors exit 2.
    for args in [
        vec!["feedback", "show", "--data-dir", data_s],
        vec!["feedback", "export", "--data-dir", data_s, "--out", "x.csv"],
        vec!["feedback", "precision", "--data-dir", data_s, "--window", "forever"],
        vec!["feedback"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }

    // Held by another process (this test, as `reprieve serve` would hold it): one readable line, exit 1; a batch
    // run with --data-dir fails before writing its scores.
    let held = reprieve_store::Store::open(&data, Default::default()).expect("store");
    let out = run(&["feedback", "breakers", "--data-dir", data_s]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(line.contains("is locked") && line.contains("reprieve serve"), "{line}");
    let trace = synth(dir.path());
    let scores = dir.path().join("scores.csv");
    let out = reprieve()
        .args(score_args(&trace, START + DAYS * DAY, &scores, &data))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(error_line(&out).contains("is locked"), "{}", stderr(&out));
    assert!(!scores.exists());
    drop(held);
}
