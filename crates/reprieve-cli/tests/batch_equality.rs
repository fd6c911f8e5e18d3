//! One verdict, whichever front door: `reprieve score` over an inventory and its access log, and a real
//! `reprieve serve` sent the same records over gRPC (`Score` and `ScoreStream`), give identical verdicts for the
//! same time and model: class, probability bit for bit, reasons, contributions, verdict id, model version, and
//! the same feature vector in both audit trails.
//!
//! The gRPC client does what any client has to: it sends each object's raw reads before the scoring time (the
//! batch folds the log into per-object aggregates that the API does not carry), the time from which the log is
//! complete (the batch's default: the earliest read in it), and the parent and top-level prefix activity,
//! aggregated over the whole inventory with `reprieve_core::prefix` as the batch does.

use std::collections::HashMap;
mod common;

use std::path::Path;

use common::{ServeProcess, arg, run_ok, score_args};

use reprieve_batch::{InventoryOptions, ReadOptions, read_events, read_inventory};
use reprieve_core::prefix::{PrefixAccumulator, parent_prefix, top_prefix};
use reprieve_core::{HistoryStats, ObjectRecord, UnixSeconds};
use reprieve_proto::convert::{record_to_pb, verdict_to_pb};
use reprieve_proto::v1::reuse_scorer_client::ReuseScorerClient;
use reprieve_proto::v1::{self, ScoreRequest, ScoreStreamRequest};
use reprieve_store::AuditRecord;

const DAY: i64 = 86_400;
const START: i64 = 1_767_225_600;
const DAYS: i64 = 45;

/// The audited verdicts of the store in `dir`, by (tenant, key), each from `source`.
fn audited(dir: &Path, at: UnixSeconds, source: &str) -> HashMap<(String, String), AuditRecord> {
    let at = at.to_string();
    let out = run_ok(&[
        "feedback",
        "show",
        "--data-dir",
        arg(dir),
        "--from",
        &at,
        "--to",
        &at,
        "--limit",
        "1000000",
        "--format",
        "json",
    ]);
    let records: Vec<AuditRecord> = serde_json::from_slice(&out.stdout).expect("audit JSON");
    records
        .into_iter()
        .map(|r| {
            assert_eq!(r.source, source, "{}", r.verdict.key);
            ((r.verdict.tenant.clone(), r.verdict.key.clone()), r)
        })
        .collect()
}

/// The records a gRPC client sends for the inventory and log in `trace`, scored at `at`, sorted by (tenant, key).
fn wire_records(trace: &Path, at: UnixSeconds) -> Vec<ObjectRecord> {
    let (rows, _) = read_inventory(&trace.join("inventory.csv"), &InventoryOptions::default()).expect("inventory");
    let (events, _) = read_events(&trace.join("events.csv"), &ReadOptions::default()).expect("events");
    let mut reads: HashMap<(String, String), Vec<i64>> = HashMap::new();
    let mut earliest: Option<i64> = None;
    for e in events.into_iter().filter(|e| e.ts < at) {
        earliest = Some(earliest.map_or(e.ts, |t| t.min(e.ts)));
        reads.entry((e.tenant, e.key)).or_default().push(e.ts);
    }
    let mut records: Vec<ObjectRecord> = rows.into_iter().map(|r| r.record).collect();
    let mut parents: HashMap<(String, String), PrefixAccumulator> = HashMap::new();
    let mut tops: HashMap<(String, String), PrefixAccumulator> = HashMap::new();
    for r in &mut records {
        let mut accesses = reads.remove(&(r.tenant.clone(), r.key.clone())).unwrap_or_default();
        accesses.sort_unstable();
        r.history.accesses = accesses;
        r.history.summary = None;
        r.history.complete_since = earliest;
        let stats = HistoryStats::from_history(&r.history, at);
        parents
            .entry((r.tenant.clone(), parent_prefix(&r.key)))
            .or_insert_with(|| PrefixAccumulator::new(at))
            .add(&stats);
        tops.entry((r.tenant.clone(), top_prefix(&r.key).to_string()))
            .or_insert_with(|| PrefixAccumulator::new(at))
            .add(&stats);
    }
    assert!(
        reads.is_empty(),
        "every read is of an inventory object in its tenant: {:?}",
        reads.keys().take(3).collect::<Vec<_>>()
    );
    for r in &mut records {
        r.parent_activity = Some(parents[&(r.tenant.clone(), parent_prefix(&r.key))].finish());
        r.top_activity = Some(tops[&(r.tenant.clone(), top_prefix(&r.key).to_string())].finish());
    }
    records.sort_by(|a, b| (&a.tenant, &a.key).cmp(&(&b.tenant, &b.key)));
    records
}

/// Splits one line of the scores CSV (fields may be double-quoted, with `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("a field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            _ => fields.last_mut().expect("a field").push(c),
        }
    }
    fields
}

/// The rows of the scores CSV by (tenant, key), each as column -> value.
fn scores_csv(path: &Path) -> HashMap<(String, String), HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("scores CSV");
    let mut lines = text.lines();
    let header = csv_fields(lines.next().expect("a header"));
    lines
        .map(|line| {
            let row: HashMap<String, String> = header.iter().cloned().zip(csv_fields(line)).collect();
            ((row["tenant"].clone(), row["key"].clone()), row)
        })
        .collect()
}

/// Asserts that a verdict from the server is the batch's, field by field and bit for bit.
fn assert_same(server: &v1::Verdict, batch: &AuditRecord, csv: &HashMap<String, String>, via: &str) {
    let key = &server.key;
    let expected = verdict_to_pb(&batch.verdict);
    assert_eq!(server, &expected, "{via} {key}: the whole verdict");
    assert_eq!(
        server.reuse_probability.to_bits(),
        batch.verdict.probability.to_bits(),
        "{via} {key}: probability bits"
    );
    assert_eq!(
        server.top_contributions.len(),
        batch.verdict.contributions.len(),
        "{via} {key}"
    );
    for (s, b) in server.top_contributions.iter().zip(&batch.verdict.contributions) {
        assert_eq!(s.feature, b.feature, "{via} {key}");
        assert_eq!(
            s.value.to_bits(),
            b.value.to_bits(),
            "{via} {key}: {} value bits",
            s.feature
        );
        assert_eq!(
            s.contribution.to_bits(),
            b.contribution.to_bits(),
            "{via} {key}: {} contribution bits",
            s.feature
        );
    }
    // What the scores file shows for the object.
    let class = v1::VerdictClass::try_from(server.verdict_class).expect("a known class");
    assert_eq!(
        csv["class"],
        class.as_str_name().trim_start_matches("VERDICT_CLASS_"),
        "{via} {key}: class"
    );
    let reasons: Vec<&str> = server
        .reasons
        .iter()
        .map(|&r| {
            v1::ReasonCode::try_from(r)
                .expect("a known reason")
                .as_str_name()
                .trim_start_matches("REASON_CODE_")
        })
        .collect();
    assert_eq!(csv["reasons"], reasons.join("|"), "{via} {key}: reasons");
    let probability: f64 = csv["probability"].parse().expect("a probability");
    assert_eq!(
        probability.to_bits(),
        server.reuse_probability.to_bits(),
        "{via} {key}: CSV probability"
    );
    assert_eq!(csv["verdict_id"], server.verdict_id, "{via} {key}");
    assert_eq!(csv["model_version"], server.model_version, "{via} {key}");
    assert_eq!(csv["scored_at"], server.scored_at_unix.to_string(), "{via} {key}");
}

// Multi-threaded: while this thread waits for the server process to stop, the client's connection task must still
// answer the server's graceful goodbye (an HTTP/2 GOAWAY and PING), or the stop waits out its whole grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_gives_the_batch_scorers_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("trace");
    run_ok(&[
        "synth",
        "--out-dir",
        arg(&trace),
        "--objects",
        "500",
        "--days",
        &DAYS.to_string(),
        "--start",
        &START.to_string(),
        "--seed",
        "23",
    ]);
    // The end of the log: every inventory object exists by then (the server refuses records created after the
    // scoring time; the batch scorer would score them).
    let at = START + DAYS * DAY;
    let scores = dir.path().join("scores.csv");
    let batch_store = dir.path().join("batch-store");
    run_ok(&score_args(&trace, at, &scores, &batch_store));
    let rows = scores_csv(&scores);
    let batch = audited(&batch_store, at, "batch");
    assert_eq!(batch.len(), 500);
    assert_eq!(rows.len(), 500);

    let records = wire_records(&trace, at);
    assert_eq!(records.len(), 500);
    // The test is only as good as its variety: several classes, read and unread objects.
    let read = records.iter().filter(|r| !r.history.accesses.is_empty()).count();
    assert!((50..=450).contains(&read), "{read} of 500 objects read");
    let classes: std::collections::BTreeSet<_> = batch.values().map(|r| r.verdict.class).collect();
    assert!(classes.len() >= 2, "{classes:?}");

    let server_store = dir.path().join("server-store");
    let server = ServeProcess::start(&server_store);
    let mut client = ReuseScorerClient::new(server.ready().await);
    let objects: Vec<v1::ObjectRecord> = records.iter().map(record_to_pb).collect();
    let mut unary = Vec::new();
    for chunk in objects.chunks(120) {
        let response = client
            .score(ScoreRequest {
                objects: chunk.to_vec(),
                at_unix: Some(at),
            })
            .await
            .expect("Score")
            .into_inner();
        assert_eq!(response.at_unix, at);
        unary.extend(response.verdicts);
    }
    let chunks: Vec<ScoreStreamRequest> = objects
        .chunks(64)
        .map(|c| ScoreStreamRequest {
            objects: c.to_vec(),
            at_unix: Some(at),
        })
        .collect();
    let mut stream = client
        .score_stream(tonic::codegen::tokio_stream::iter(chunks))
        .await
        .expect("ScoreStream opens")
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(response) = stream.message().await.expect("ScoreStream") {
        streamed.extend(response.verdicts);
    }
    drop((stream, client));
    server.stop();

    for (via, verdicts) in [("Score", &unary), ("ScoreStream", &streamed)] {
        assert_eq!(verdicts.len(), records.len(), "{via}");
        for (record, verdict) in records.iter().zip(verdicts) {
            let id = (record.tenant.clone(), record.key.clone());
            assert_eq!(
                (&verdict.tenant, &verdict.key),
                (&id.0, &id.1),
                "{via}: in request order"
            );
            assert_same(verdict, &batch[&id], &rows[&id], via);
        }
    }
    // Both audit trails hold the same feature vectors, bit for bit (the server audited each verdict once).
    let served = audited(&server_store, at, "grpc");
    assert_eq!(served.len(), 500);
    for (id, s) in &served {
        let b = &batch[id];
        assert_eq!(s.feature_names_hash, b.feature_names_hash, "{id:?}");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&s.features), bits(&b.features), "{id:?}: features");
        assert_eq!(s.verdict, b.verdict, "{id:?}");
    }
}
