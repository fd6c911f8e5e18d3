//! Criterion benches of the scoring core, per object, on one core (criterion runs one thread):
//!
//! - `features/extract/{short,long,periodic,none}`: [`extract`] from a record's raw history (what the server does).
//! - `features/from_stats/mixed_1024`: [`extract_with_stats`] from aggregated stats (what the batch scorer does).
//! - `model/probability/{single,batch_1024}`, `model/in_domain/single`, `model/contributions/single`.
//! - `policy/decide/single`.
//! - `core/{short,long,periodic,mixed_1024}`: features + model (probability and domain check) + policy, the
//!   "scoring core" the 2M objects/s floor is about; `engine/score/mixed_1024`: the whole
//!   [`Engine::score_with_stats`] (verdict id, top contributions, strings), as the batch scorer calls it.
//! - `parse/s3_line`: one S3 server access log line (`parse/s3_line_bytes` is the same in bytes/s).
//!
//! Records come from `reprieve_loadgen::records`, the same generator the gRPC load generator sends.
//! Run: `CARGO_TARGET_DIR=/var/tmp/reprieve-target cargo bench --workspace --bench core`.

// Shapes of the chosen records go to stderr next to the figures.
#![allow(clippy::print_stderr)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reprieve_batch::formats::s3;
use reprieve_core::features::{extract, extract_with_stats};
use reprieve_core::policy::decide;
use reprieve_core::{FeatureVector, HistoryStats, ObjectRecord, PolicyConfig, ScopeState};
use reprieve_loadgen::records::{Cohort, DEFAULT_AT, generate, of_cohort};
use reprieve_model::{Engine, Model};

const AT: i64 = DEFAULT_AT;
const BATCH: usize = 1_024;

fn model() -> Arc<Model> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.json");
    match Model::load(&path) {
        Ok(m) => Arc::new(m),
        Err(e) => panic!("loading {}: {e}", path.display()),
    }
}

/// Records with a history of a known shape: `short` (one-off, a handful of reads), `long` (the longest popular
/// history among the first seeds, hundreds to 2,000 reads), `periodic` (weekly bursts for a year).
fn shaped() -> Vec<(&'static str, ObjectRecord)> {
    let short = (0..100)
        .map(|s| of_cohort(s, Cohort::OneOff, AT))
        .find(|r| r.history.accesses.len() >= 3)
        .unwrap_or_else(|| of_cohort(0, Cohort::OneOff, AT));
    let long = (0..100)
        .map(|s| of_cohort(s, Cohort::Popular, AT))
        .max_by_key(|r| r.history.accesses.len())
        .unwrap_or_else(|| of_cohort(0, Cohort::Popular, AT));
    let periodic = of_cohort(3, Cohort::Weekly, AT);
    let none = of_cohort(4, Cohort::Dead, AT);
    vec![("short", short), ("long", long), ("periodic", periodic), ("none", none)]
}

fn bench_features(c: &mut Criterion) {
    let mut g = c.benchmark_group("features");
    g.throughput(Throughput::Elements(1));
    for (name, r) in shaped() {
        eprintln!("features/extract/{name}: {} reads", r.history.accesses.len());
        g.bench_function(format!("extract/{name}"), |b| b.iter(|| extract(black_box(&r), AT)));
    }
    let mixed = generate(11, BATCH, AT);
    let stats: Vec<HistoryStats> = mixed
        .iter()
        .map(|r| HistoryStats::from_history(&r.history, AT))
        .collect();
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("from_stats/mixed_1024", |b| {
        b.iter(|| {
            for (r, s) in mixed.iter().zip(&stats) {
                black_box(extract_with_stats(black_box(r), s));
            }
        })
    });
    g.finish();
}

fn bench_model(c: &mut Criterion) {
    let model = model();
    let mixed = generate(12, BATCH, AT);
    let vectors: Vec<FeatureVector> = mixed.iter().map(|r| extract(r, AT)).collect();
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(1));
    g.bench_function("probability/single", |b| {
        b.iter(|| model.probability(black_box(&vectors[0])))
    });
    g.bench_function("in_domain/single", |b| {
        b.iter(|| model.in_domain(black_box(&vectors[0])))
    });
    g.bench_function("contributions/single", |b| {
        b.iter(|| model.contributions(black_box(&vectors[0]), 5))
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("probability/batch_1024", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for v in &vectors {
                sum += model.probability(black_box(v));
            }
            sum
        })
    });
    g.finish();
}

fn bench_policy(c: &mut Criterion) {
    let model = model();
    let config = PolicyConfig::default();
    let r = of_cohort(5, Cohort::Monthly, AT);
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decide/single", |b| {
        b.iter(|| {
            decide(
                &config,
                model.thresholds(),
                black_box(&r),
                black_box(0.1),
                AT,
                ScopeState::default(),
            )
        })
    });
    g.finish();
}

/// Features + probability + domain check + policy: the scoring core without building the verdict's strings.
fn core_one(model: &Model, config: &PolicyConfig, r: &ObjectRecord) -> reprieve_core::VerdictClass {
    let v = extract(r, AT);
    let p = model.probability(&v);
    let scope = ScopeState {
        out_of_domain: !model.in_domain(&v),
        ..ScopeState::default()
    };
    decide(config, model.thresholds(), r, p, AT, scope).class
}

fn bench_core(c: &mut Criterion) {
    let model = model();
    let config = PolicyConfig::default();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    for (name, r) in shaped() {
        g.bench_function(name, |b| b.iter(|| core_one(&model, &config, black_box(&r))));
    }
    let mixed = generate(13, BATCH, AT);
    let reads: usize = mixed.iter().map(|r| r.history.accesses.len()).sum();
    eprintln!("core/mixed_1024: {reads} reads in {BATCH} records");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("mixed_1024", |b| {
        b.iter(|| {
            for r in &mixed {
                black_box(core_one(&model, &config, black_box(r)));
            }
        })
    });
    g.finish();

    let engine = Engine::new(model, config);
    let stats: Vec<HistoryStats> = mixed
        .iter()
        .map(|r| HistoryStats::from_history(&r.history, AT))
        .collect();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("score/mixed_1024", |b| {
        b.iter(|| {
            for (r, s) in mixed.iter().zip(&stats) {
                black_box(engine.score_with_stats(black_box(r), s, ScopeState::default()));
            }
        })
    });
    g.finish();
}

const S3_LINE: &str = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.OBJECT photos/2019/08/puppy%20dog.jpg "GET /awsexamplebucket1/photos/2019/08/puppy%20dog.jpg HTTP/1.1" 200 - 113 2662992 7 6 "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -"#;

fn bench_parse(c: &mut Criterion) {
    let ops = s3::DEFAULT_OPERATIONS;
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("s3_line", |b| b.iter(|| s3::parse_line(black_box(S3_LINE), &ops)));
    g.throughput(Throughput::Bytes(S3_LINE.len() as u64 + 1));
    g.bench_function("s3_line_bytes", |b| b.iter(|| s3::parse_line(black_box(S3_LINE), &ops)));
    g.finish();
}

criterion_group!(
    benches,
    bench_features,
    bench_model,
    bench_policy,
    bench_core,
    bench_parse
);
criterion_main!(benches);
