//! Batch scoring end to end on real files: the bundled model, generated and hand-made inventories and logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::{ParquetReader, SerReader};
use reprieve_batch::formats::fields::csv_fields;
use reprieve_batch::score::{BYTES_PER_GB, ScoreSummary};
use reprieve_batch::{PriceTable, ReadOptions, ScoreJob, prepare, read_events, run_score};
use reprieve_core::time::{DAY, civil_from_days};
use reprieve_core::{AccessHistory, PolicyConfig, ReasonCode, ScopeState, StorageClass, VerdictClass};
use reprieve_model::{Engine, Model};
use reprieve_synth::{SynthConfig, generate};

fn engine() -> Engine {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default.json");
    let model = Model::load(&path).expect("bundled model loads");
    Engine::new(Arc::new(model), PolicyConfig::default())
}

/// The rows of a scores CSV as maps column -> cell, plus the raw data lines.
fn read_scores(path: &Path) -> (Vec<HashMap<String, String>>, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("scores file");
    let mut lines = text.lines();
    let header: Vec<String> = csv_fields(lines.next().expect("header"))
        .map(|c| c.map(|c| c.into_owned()).unwrap_or_default())
        .collect();
    assert_eq!(header, reprieve_batch::score::SCORE_COLUMNS);
    let raw: Vec<String> = lines.map(str::to_owned).collect();
    let rows = raw
        .iter()
        .map(|l| {
            let cells: Vec<String> = csv_fields(l)
                .map(|c| c.map(|c| c.into_owned()).unwrap_or_default())
                .collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            header.iter().cloned().zip(cells).collect()
        })
        .collect();
    (rows, raw)
}

struct Synth {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    inventory: PathBuf,
    events: PathBuf,
    objects: u64,
    at: i64,
}

fn synth(objects: u64) -> Synth {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SynthConfig {
        objects,
        days: 60,
        seed: 7,
        share_legal_hold: 0.03,
        share_retention: 0.03,
        share_live_reference: 0.03,
        ..SynthConfig::default()
    };
    let s = generate(&config, dir.path()).expect("generate");
    Synth {
        dir: dir.path().to_path_buf(),
        inventory: dir.path().join("inventory.csv"),
        events: dir.path().join("events.csv"),
        objects: s.objects,
        at: s.end - 7 * DAY,
        _dir: dir,
    }
}

#[test]
fn scores_a_generated_inventory_end_to_end() {
    let s = synth(3_000);
    // Reads for keys that are not in the inventory, in a second log.
    let extra = s.dir.join("extra.csv");
    let mut text = String::from("ts,key,tenant\n");
    for i in 0..30 {
        text.push_str(&format!("{},gone/deleted_{}.png,t0\n", s.at - DAY - i, i % 4));
    }
    text.push_str(&format!("{},gone/late.png,t0\n", s.at + 5));
    text.push_str("not a number,x,t0\n");
    std::fs::write(&extra, text).expect("write extra log");

    let out = s.dir.join("scores.csv");
    let report = s.dir.join("report.md");
    let mut job = ScoreJob::new(&s.inventory, vec![s.events.clone(), extra.clone()], s.at, &out);
    job.report = Some(report.clone());
    let engine = engine();
    let summary = run_score(&job, &engine).expect("scores");

    let (rows, _) = read_scores(&out);
    assert_eq!(rows.len() as u64, s.objects, "one row per inventory object");
    assert_eq!(summary.objects_scored, s.objects);
    assert_eq!(summary.inventory_objects, s.objects);
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r["tenant"].as_str(), r["key"].as_str())).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "sorted by (tenant, key), no duplicates"
    );

    // Hard rules: never ARCHIVE/DELETE_CANDIDATE for held, retained or referenced objects.
    let (inventory, _) = reprieve_batch::read_inventory(&s.inventory, &Default::default()).expect("inventory");
    let by_key: HashMap<(&str, &str), &HashMap<String, String>> = rows
        .iter()
        .map(|r| ((r["tenant"].as_str(), r["key"].as_str()), r))
        .collect();
    let mut protected = 0;
    for row in &inventory {
        let r = &row.record;
        let scored = by_key[&(r.tenant.as_str(), r.key.as_str())];
        if r.legal_hold || r.retain_until.is_some_and(|t| t > s.at) || r.live_references > 0 {
            protected += 1;
            assert_eq!(scored["class"], "RETAIN", "{} {:?}", r.key, scored);
        }
        assert_eq!(scored["size"], r.size.map(|v| v.to_string()).unwrap_or_default());
    }
    assert!(
        protected > 100,
        "the test inventory has protected objects ({protected})"
    );
    let (_, lets_go_a) = summary.class(VerdictClass::Archive);
    let (_, lets_go_d) = summary.class(VerdictClass::DeleteCandidate);
    assert!(
        lets_go_a + lets_go_d > 0,
        "something is reclaimable: {:?}",
        summary.by_class
    );

    // Unknown keys: counted, never scored.
    assert_eq!(summary.unknown_reads.reads, 30);
    assert_eq!(summary.unknown_reads.distinct_keys, 4);
    assert_eq!(summary.unknown_reads.top.len(), 4);
    assert!(
        summary
            .unknown_reads
            .top
            .iter()
            .all(|k| k.tenant == "t0" && k.key.starts_with("gone/"))
    );
    assert!(rows.iter().all(|r| !r["key"].starts_with("gone/")));
    assert_eq!(summary.log_reports[1].malformed, 1);
    assert_eq!(summary.log_reports[1].first_malformed[0].0, 33);

    // Reads: the rows' counts add up to the reads of inventory keys before `at`.
    let (events, _) = read_events(&s.events, &ReadOptions::default()).expect("events");
    let before = events.iter().filter(|e| e.ts < s.at).count() as u64;
    let row_reads: u64 = rows.iter().map(|r| r["reads"].parse::<u64>().expect("reads")).sum();
    assert_eq!(row_reads, before);
    assert_eq!(summary.reads_counted, before);
    assert_eq!(
        summary.reads_at_or_after,
        events.iter().filter(|e| e.ts >= s.at).count() as u64 + 1
    );
    assert_eq!(summary.history_complete_since, events.iter().map(|e| e.ts).min());

    // The report: classes add up, both files written and consistent.
    let objects: u64 = summary.by_class.iter().map(|c| c.objects).sum();
    assert_eq!(objects, s.objects);
    let bytes: u64 = summary.by_class.iter().map(|c| c.bytes).sum();
    assert_eq!(bytes, summary.bytes);
    let json = std::fs::read_to_string(s.dir.join("report.json")).expect("json");
    let parsed: ScoreSummary = serde_json::from_str(&json).expect("parses");
    assert_eq!(parsed.by_class, summary.by_class);
    assert_eq!(json, serde_json::to_string_pretty(&summary).expect("serialises") + "\n");
    let md = std::fs::read_to_string(&report).expect("md");
    for needle in [
        "M1",
        "M2",
        "M3",
        "DELETE_CANDIDATE",
        "LEGAL_HOLD",
        "gone/deleted_0.png",
        "extra.csv",
    ] {
        assert!(md.contains(needle), "report lacks {needle}");
    }
}

#[test]
fn shards_concatenate_to_the_unsharded_rows() {
    let s = synth(2_000);
    let engine = engine();
    let run = |shard: Option<(u32, u32)>, name: &str| {
        let out = s.dir.join(name);
        let mut job = ScoreJob::new(&s.inventory, vec![s.events.clone()], s.at, &out);
        job.shard = shard;
        let summary = run_score(&job, &engine).expect("scores");
        (read_scores(&out).1, summary)
    };
    let (all, whole) = run(None, "all.csv");
    let mut joined = Vec::new();
    let mut objects = 0;
    let mut reads = 0;
    for i in 0..3 {
        let (rows, summary) = run(Some((i, 3)), &format!("shard{i}.csv"));
        assert!(!rows.is_empty() && rows.len() < all.len());
        objects += summary.objects_scored;
        reads += summary.reads_counted;
        assert_eq!(summary.inventory_objects, whole.inventory_objects);
        joined.extend(rows);
    }
    joined.sort();
    let mut sorted_all = all.clone();
    sorted_all.sort();
    assert_eq!(joined, sorted_all);
    assert_eq!(objects, whole.objects_scored);
    assert_eq!(reads, whole.reads_counted);
}

#[test]
fn batch_verdicts_equal_scoring_records_with_raw_reads() {
    let s = synth(1_500);
    let engine = engine();
    let job = ScoreJob::new(&s.inventory, vec![s.events.clone()], s.at, s.dir.join("unused.csv"));
    let prepared = prepare(&job).expect("prepares");
    assert_eq!(prepared.objects.len() as u64, s.objects);

    let (events, _) = read_events(&s.events, &ReadOptions::default()).expect("events");
    let mut raw: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for e in events.into_iter().filter(|e| e.ts < s.at) {
        raw.entry((e.tenant, e.key)).or_default().push(e.ts);
    }
    let mut checked = [0usize; 3];
    for (n, object) in prepared.objects.iter().enumerate() {
        let mut accesses = raw
            .get(&(object.record.tenant.clone(), object.record.key.clone()))
            .cloned()
            .unwrap_or_default();
        // A handful of each kind: never read, read, many reads; plus every 50th object.
        let kind = match accesses.len() {
            0 => 0,
            1..=20 => 1,
            _ => 2,
        };
        if checked[kind] >= 5 && n % 50 != 0 {
            continue;
        }
        checked[kind] += 1;
        accesses.sort_unstable();
        let mut record = object.record.clone();
        record.history = AccessHistory {
            accesses,
            summary: None,
            complete_since: prepared.history_complete_since,
        };
        let server = engine.score(&record, s.at, ScopeState::default()).verdict;
        let batch = engine
            .score_with_stats(&object.record, &object.stats, ScopeState::default())
            .verdict;
        assert_eq!(batch, server, "{}", record.key);

        // Without a creation time the first read stands in, in both.
        let mut no_created = record.clone();
        no_created.created = None;
        let mut batch_record = object.record.clone();
        batch_record.created = None;
        assert_eq!(
            engine
                .score_with_stats(&batch_record, &object.stats, ScopeState::default())
                .verdict,
            engine.score(&no_created, s.at, ScopeState::default()).verdict,
            "{} without created",
            record.key
        );
    }
    assert!(checked.iter().all(|&c| c >= 5), "{checked:?}");
}

/// `10/Oct/2000:13:55:36 +0000` for a Unix time.
fn clf(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[m as usize - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[test]
fn report_numbers_on_a_hand_made_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = 20_000 * DAY;
    let gib = BYTES_PER_GB as u64;
    let old = at - 400 * DAY;
    let inventory = dir.path().join("inv.csv");
    std::fs::write(
        &inventory,
        format!(
            "tenant,key,size,created,storage_class,owner,legal_hold,retain_until,live_references\n\
             b,a/hot.png,{gib},{old},STANDARD,web,false,,0\n\
             b,a/old.png,{},{old},STANDARD,web,false,,0\n\
             b,a/never.png,{},{old},STANDARD_IA,web,false,,0\n\
             b,b/hold.png,{},{old},GLACIER,ops,true,,0\n\
             b,b/new.png,1000,{},STANDARD,,false,,0\n",
            2 * gib,
            3 * gib,
            4 * gib,
            at - 5 * DAY
        ),
    )
    .expect("inventory");
    let events = dir.path().join("events.csv");
    std::fs::write(
        &events,
        format!(
            "ts,key,tenant\n{},a/hot.png,b\n{},a/hot.png,b\n{},a/old.png,b\n{},a/never.png,b\n{},zzz/missing.png,b\n{},zzz/missing.png,b\n",
            at - DAY,
            at - 2 * DAY,
            at - 150 * DAY,
            at + 10,
            at - 3 * DAY,
            at - 3 * DAY + 1,
        ),
    )
    .expect("events");
    // An Apache log names no bucket: its reads match the key in the inventory's one tenant that has it.
    let access_log = dir.path().join("access.log");
    std::fs::write(
        &access_log,
        format!(
            "10.0.0.1 - - [{}] \"GET /a/hot.png HTTP/1.1\" 200 512\n10.0.0.1 - - [{}] \"GET /nowhere.png HTTP/1.1\" 200 1\n",
            clf(at - 4 * DAY),
            clf(at - 4 * DAY)
        ),
    )
    .expect("log");

    let engine = engine();
    let prices = PriceTable::default();
    let mut job = ScoreJob::new(&inventory, vec![events, access_log], at, dir.path().join("s.parquet"));
    job.history_complete_since = Some(at - 100 * DAY);
    job.report = Some(dir.path().join("r.md"));
    let summary = run_score(&job, &engine).expect("scores");

    assert_eq!(summary.objects_scored, 5);
    assert_eq!(summary.by_class.iter().map(|c| c.objects).sum::<u64>(), 5);
    assert_eq!(summary.bytes, 10 * gib + 1000);
    assert_eq!(
        summary.reads_counted, 4,
        "2 + 1 Apache read of a/hot.png, 1 of a/old.png"
    );
    assert_eq!(summary.reads_at_or_after, 1);
    assert_eq!(summary.unknown_reads.reads, 3);
    assert_eq!(summary.unknown_reads.distinct_keys, 2);
    assert_eq!(summary.unknown_reads.top[0].key, "zzz/missing.png");
    assert_eq!(summary.unknown_reads.top[0].reads, 2);

    // Unused in [at - 100 days, at): old (read before the window), never, hold, new.
    let u = &summary.unused;
    assert_eq!(u.window_start, Some(at - 100 * DAY));
    assert_eq!(u.m2_unused_objects, 4);
    assert_eq!(u.unused_bytes, 9 * gib + 1000);
    let m1 = (9 * gib + 1000) as f64 / (10 * gib + 1000) as f64;
    assert!((u.m1_unused_storage_ratio - m1).abs() < 1e-12);
    let m3 = (2.0 + 1000.0 / BYTES_PER_GB) * prices.standard + 3.0 * prices.standard_ia + 4.0 * prices.glacier;
    assert!(
        (u.m3_monthly_cost_usd - m3).abs() < 1e-9,
        "{} vs {m3}",
        u.m3_monthly_cost_usd
    );
    let standard = u
        .by_storage_class
        .iter()
        .find(|c| c.storage_class == "standard")
        .expect("standard");
    assert_eq!((standard.objects, standard.unused_objects), (3, 2));
    assert_eq!(u.by_storage_class.len(), 3);

    let held = |r: ReasonCode| {
        let h = summary.held_back.iter().find(|h| h.reason == r).expect("listed");
        (h.objects, h.bytes)
    };
    assert_eq!(held(ReasonCode::LegalHold), (1, 4 * gib));
    assert_eq!(held(ReasonCode::TooNew), (1, 1000));
    assert_eq!(held(ReasonCode::UnknownOwner), (1, 1000));
    assert_eq!(held(ReasonCode::InsufficientHistory), (0, 0));

    // The Parquet scores file: one row per object, in (tenant, key) order.
    let file = std::fs::File::open(dir.path().join("s.parquet")).expect("parquet");
    let df = ParquetReader::new(file).finish().expect("reads");
    assert_eq!(df.height(), 5);
    let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    assert_eq!(names, reprieve_batch::score::SCORE_COLUMNS);
    let keys = strings(&df, "key");
    assert_eq!(
        keys,
        ["a/hot.png", "a/never.png", "a/old.png", "b/hold.png", "b/new.png"]
    );
    let reads: Vec<u64> = df
        .column("reads")
        .expect("reads")
        .u64()
        .expect("u64")
        .into_no_null_iter()
        .collect();
    assert_eq!(reads, [3, 0, 1, 0, 0]);
    let class = strings(&df, "class");
    assert_eq!(class[3], "RETAIN");
    assert_eq!(class[4], "RETAIN");
    let storage = df.column("storage_class").expect("sc").str().expect("str").get(1);
    assert_eq!(storage, Some(StorageClass::StandardIa.s3_name()));

    let md = std::fs::read_to_string(dir.path().join("r.md")).expect("md");
    assert!(md.contains("| standard_ia | 0.0125 |"), "{md}");
    assert!(dir.path().join("r.json").exists());
}

fn strings(df: &polars::prelude::DataFrame, name: &str) -> Vec<String> {
    let column = df.column(name).expect("column").str().expect("text").clone();
    (0..column.len())
        .map(|i| column.get(i).expect("not null").to_owned())
        .collect()
}

#[test]
fn tenantless_reads_of_a_key_in_several_tenants_are_not_attributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = 20_000 * DAY;
    let inventory = dir.path().join("inv.csv");
    std::fs::write(
        &inventory,
        format!("tenant,key,size,created\nb1,x.png,1,{at}\nb2,x.png,1,{at}\nb2,y.png,1,{at}\n"),
    )
    .expect("inventory");
    let log = dir.path().join("access.log");
    let line = |key: &str| format!("10.0.0.1 - - [{}] \"GET /{key} HTTP/1.1\" 200 1\n", clf(at - DAY));
    std::fs::write(&log, line("x.png") + &line("y.png")).expect("log");
    let summary = run_score(
        &ScoreJob::new(&inventory, vec![log], at, dir.path().join("s.csv")),
        &engine(),
    )
    .expect("runs");
    assert_eq!(summary.reads_ambiguous_tenant, 1);
    assert_eq!(summary.reads_counted, 1, "y.png is only in b2");
    assert_eq!(summary.unknown_reads.reads, 0);

    // An empty inventory still gives a (schema-only) Parquet file.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "key,size\n").expect("inventory");
    let out = dir.path().join("empty.parquet");
    let summary = run_score(&ScoreJob::new(&empty, vec![], at, &out), &engine()).expect("runs");
    assert_eq!(summary.objects_scored, 0);
    assert_eq!(summary.unused.m1_unused_storage_ratio, 0.0);
    let df = ParquetReader::new(std::fs::File::open(&out).expect("file"))
        .finish()
        .expect("reads");
    assert_eq!(df.height(), 0);
    assert_eq!(df.width(), reprieve_batch::score::SCORE_COLUMNS.len());
}

#[test]
fn bad_out_extension_names_the_flag_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = ScoreJob::new(dir.path().join("missing.csv"), vec![], 0, dir.path().join("scores.txt"));
    let e = run_score(&job, &engine()).expect_err("refused");
    assert!(e.to_string().contains("--out"), "{e}");
    let job = ScoreJob::new(dir.path().join("missing.csv"), vec![], 0, dir.path().join("scores.csv"));
    let e = run_score(&job, &engine()).expect_err("no inventory");
    assert!(e.to_string().contains("missing.csv"), "{e}");
    assert!(!dir.path().join("scores.csv").exists());
}

/// Throughput in the current profile: `REPRIEVE_SCORE_BENCH_OBJECTS=200000 cargo test --workspace -- --ignored
/// score_throughput --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
#[allow(clippy::print_stderr)]
fn score_throughput() {
    let objects = std::env::var("REPRIEVE_SCORE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let started = std::time::Instant::now();
    let s = synth(objects);
    let generated = started.elapsed();
    let engine = engine();
    let started = std::time::Instant::now();
    let job = ScoreJob::new(&s.inventory, vec![s.events.clone()], s.at, s.dir.join("x.csv"));
    let prepared = prepare(&job).expect("prepares");
    eprintln!(
        "prepare (inventory + logs + prefixes): {} objects in {:.2}s",
        prepared.objects.len(),
        started.elapsed().as_secs_f64()
    );
    for out in ["scores.csv", "scores.parquet"] {
        let job = ScoreJob::new(&s.inventory, vec![s.events.clone()], s.at, s.dir.join(out));
        let started = std::time::Instant::now();
        let summary = run_score(&job, &engine).expect("scores");
        let secs = started.elapsed().as_secs_f64();
        let events = summary.log_reports[0].events;
        eprintln!(
            "{out}: {} objects, {events} events in {secs:.2}s ({:.0} objects/s, {:.0} events/s; generating took {:.1}s)",
            summary.objects_scored,
            summary.objects_scored as f64 / secs,
            events as f64 / secs,
            generated.as_secs_f64()
        );
    }
}

/// The Parquet event pass (row groups read on several threads, keys borrowed from the decoded columns) gives the
/// same stats, counts and report as the plain reader, including malformed and ignored rows.
#[test]
fn parquet_events_in_many_row_groups_equal_the_plain_reader() {
    use polars::prelude::{DataFrame, IntoColumn, NamedFrom, ParquetWriter, Series};
    use reprieve_core::HistoryStats;

    let s = synth(1_500);
    let (events, _) = read_events(&s.events, &ReadOptions::default()).expect("events");
    let (mut ts, mut key, mut size, mut tenant, mut op) = (vec![], vec![], vec![], vec![], vec![]);
    for e in &events {
        ts.push(Some(e.ts));
        key.push(Some(e.key.clone()));
        size.push(e.size.map(|v| v.to_string()));
        tenant.push(Some(e.tenant.clone()));
        op.push(e.op.clone());
    }
    // Edge rows spread over the file: malformed (null ts, empty key, bad size), writes, unknown keys, reads at or
    // after the scoring time, and a tenantless read.
    let first = &events[0];
    /// ts, key, size, tenant, op.
    type Edge<'a> = (
        Option<i64>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let edges: [Edge; 8] = [
        (None, Some(first.key.as_str()), None, Some(first.tenant.as_str()), None),
        (Some(s.at - 5), Some(""), None, None, None),
        (
            Some(s.at - 5),
            Some(first.key.as_str()),
            Some("big"),
            Some(first.tenant.as_str()),
            None,
        ),
        (
            Some(s.at - 5),
            Some(first.key.as_str()),
            Some(" 12 "),
            Some(first.tenant.as_str()),
            Some("put"),
        ),
        (Some(s.at - 5), Some("no/such/key.png"), None, Some("t9"), Some("GET")),
        (Some(s.at - 7), Some("no/such/key.png"), None, Some("t9"), None),
        (
            Some(s.at + 5),
            Some(first.key.as_str()),
            None,
            Some(first.tenant.as_str()),
            None,
        ),
        (Some(s.at - 9), Some(first.key.as_str()), None, None, Some("GET")),
    ];
    for (n, (t, k, sz, te, o)) in edges.iter().enumerate() {
        let at = ((n + 1) * 1_337) % ts.len();
        ts.insert(at, *t);
        key.insert(at, k.map(str::to_owned));
        size.insert(at, sz.map(str::to_owned));
        tenant.insert(at, te.map(str::to_owned));
        op.insert(at, o.map(str::to_owned));
    }
    let rows = ts.len();
    let mut df = DataFrame::new(
        rows,
        vec![
            Series::new("ts".into(), ts).into_column(),
            Series::new("key".into(), key).into_column(),
            Series::new("size".into(), size).into_column(),
            Series::new("tenant".into(), tenant).into_column(),
            Series::new("op".into(), op).into_column(),
        ],
    )
    .expect("frame");
    let parquet = s.dir.join("events.parquet");
    ParquetWriter::new(std::fs::File::create(&parquet).expect("file"))
        .with_row_group_size(Some(700))
        .finish(&mut df)
        .expect("writes");

    let job = ScoreJob::new(&s.inventory, vec![parquet.clone()], s.at, s.dir.join("unused.csv"));
    let prepared = prepare(&job).expect("prepares");
    let (reference, report) = read_events(&parquet, &ReadOptions::default()).expect("reference read");
    assert_eq!(prepared.log_reports, vec![report.clone()]);
    assert_eq!(report.malformed, 3, "{report:?}");
    assert_eq!(report.ignored, 1);

    let mut stats: HashMap<(String, String), HistoryStats> = HashMap::new();
    let known: HashMap<&str, Vec<&str>> = prepared.objects.iter().fold(HashMap::new(), |mut m, o| {
        m.entry(o.record.key.as_str())
            .or_default()
            .push(o.record.tenant.as_str());
        m
    });
    let (mut after, mut unknown) = (0, 0);
    for e in &reference {
        if e.ts >= s.at {
            after += 1;
            continue;
        }
        let tenants = known.get(e.key.as_str()).cloned().unwrap_or_default();
        let tenant = if e.tenant.is_empty() && tenants.len() == 1 {
            tenants[0].to_owned()
        } else {
            e.tenant.clone()
        };
        if tenants.contains(&tenant.as_str()) {
            stats
                .entry((tenant, e.key.clone()))
                .or_insert_with(|| HistoryStats::new(s.at))
                .observe(e.ts);
        } else {
            unknown += 1;
        }
    }
    assert_eq!(prepared.reads_at_or_after, after);
    assert_eq!(prepared.unknown.reads, unknown);
    assert_eq!(prepared.unknown.distinct_keys, 1);
    assert_eq!(prepared.unknown.top[0].reads, 2);
    for o in &prepared.objects {
        let want = stats
            .get(&(o.record.tenant.clone(), o.record.key.clone()))
            .copied()
            .unwrap_or_else(|| HistoryStats::new(s.at));
        assert_eq!(o.stats, want, "{}", o.record.key);
    }

    // Strict: the first malformed row (in file order) stops the run, whichever thread meets it first.
    let mut strict = job.clone();
    strict.read_options.strict = true;
    let e = prepare(&strict).expect_err("strict refuses");
    let line = format!(":{}: ", report.first_malformed[0].0);
    assert!(e.to_string().contains(&line), "{e} (want {line})");
}

/// A sink that refuses every chunk.
struct FailingSink;

impl reprieve_batch::score::VerdictSink for FailingSink {
    fn record(&mut self, _: &[reprieve_model::Scored]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("the audit trail is unavailable".into())
    }
}

/// A run whose verdicts cannot be recorded fails with the sink's error and leaves no scores file, finished or
/// partial (the scores are written on their own thread, which must not finish the file).
#[test]
fn a_failing_sink_stops_the_run_and_leaves_no_scores_file() {
    let s = synth(300);
    let out = s.dir.join("scores.parquet");
    let job = ScoreJob::new(&s.inventory, vec![s.events.clone()], s.at, &out);
    let engine = engine();
    let err = reprieve_batch::score::run_score_into(&job, &engine, Some(&mut FailingSink)).expect_err("fails");
    assert!(err.to_string().contains("the audit trail is unavailable"), "{err}");
    assert!(!out.exists());
    assert!(!s.dir.join("scores.parquet.partial").exists());
}

/// An inventory longer than the reader's blocks of rows, with repeated (tenant, key) rows far from their first:
/// the first row is kept, the repeats are counted, and every object's prefixes hold the objects they should.
#[test]
fn repeated_rows_keep_the_first_and_prefixes_count_each_object_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = 20_000 * DAY;
    let key = |i: usize| match i % 5 {
        0 => format!("top{}/registry/app{}:v{i}@sha256:{i:064x}", i % 3, i % 11),
        _ => format!("top{}/p{}/k{i}.png", i % 3, i % 37),
    };
    let tenant = |i: usize| format!("b{}", i % 2);
    let distinct = 10_000;
    let mut text = String::from("tenant,key,size,created\n");
    let mut repeats = 0u64;
    for i in 0..distinct {
        text.push_str(&format!("{},{},{},{at}\n", tenant(i), key(i), i + 1));
        // Every 7th key again, 5,003 rows later (another block), with another size.
        if i >= 5_003 && (i - 5_003) % 7 == 0 {
            let j = i - 5_003;
            text.push_str(&format!("{},{},999999,{at}\n", tenant(j), key(j)));
            repeats += 1;
        }
    }
    let inventory = dir.path().join("inv.csv");
    std::fs::write(&inventory, text).expect("inventory");
    let prepared = prepare(&ScoreJob::new(&inventory, vec![], at, dir.path().join("s.csv"))).expect("prepares");
    assert_eq!(prepared.objects.len(), distinct);
    assert_eq!(prepared.inventory_objects, distinct as u64);
    assert_eq!(prepared.duplicate_rows, repeats);
    let mut parents: HashMap<(String, String), u64> = HashMap::new();
    let mut tops: HashMap<(String, String), u64> = HashMap::new();
    for i in 0..distinct {
        *parents
            .entry((tenant(i), reprieve_core::prefix::parent_prefix(&key(i))))
            .or_default() += 1;
        *tops
            .entry((tenant(i), reprieve_core::prefix::top_prefix(&key(i)).to_owned()))
            .or_default() += 1;
    }
    for o in &prepared.objects {
        let i: usize = match o.record.key.rsplit_once("/k") {
            Some((_, name)) => name.trim_end_matches(".png").parse().expect("number"),
            None => o
                .record
                .key
                .rsplit_once(":v")
                .expect("tag")
                .1
                .split('@')
                .next()
                .expect("n")
                .parse()
                .expect("n"),
        };
        assert_eq!((o.record.tenant.clone(), o.record.key.clone()), (tenant(i), key(i)));
        assert_eq!(o.record.size, Some(i as u64 + 1), "the first row of {}", key(i));
        let parent = (tenant(i), reprieve_core::prefix::parent_prefix(&key(i)));
        let top = (tenant(i), reprieve_core::prefix::top_prefix(&key(i)).to_owned());
        assert_eq!(
            o.record.parent_activity.expect("parent").objects,
            parents[&parent],
            "{parent:?}"
        );
        assert_eq!(o.record.top_activity.expect("top").objects, tops[&top], "{top:?}");
    }
}
