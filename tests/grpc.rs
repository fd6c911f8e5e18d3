//! End-to-end tests of the gRPC service: a real server on 127.0.0.1:0, a real tonic client, the bundled model.

use std::sync::Arc;

use reprieve_core::{ObjectRecord, PolicyConfig, ScopeState, StorageClass};
use reprieve_e2e::{TestServer, assert_status, default_model, http_get};
use reprieve_model::Engine;
use reprieve_proto::convert::{record_to_pb, verdict_to_pb};
use reprieve_proto::v1::models_client::ModelsClient;
use reprieve_proto::v1::reuse_scorer_client::ReuseScorerClient;
use reprieve_proto::v1::{
    self, GetModelRequest, ListModelsRequest, ReloadModelRequest, ScoreRequest, ScoreStreamRequest,
};
use reprieve_server::ServerConfig;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DAY: i64 = 86_400;
const AT: i64 = 1_780_000_000;

/// A varied set of records: hot, idle, periodic, held, ownerless.
fn sample_records() -> Vec<ObjectRecord> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        let mut r = ObjectRecord::with_key(format!("cdn/{}/img-{i}_300x200.png", ["a", "b", "tmp"][i as usize % 3]));
        r.tenant = format!("t{}", i % 2);
        r.size = Some(1_000 + 37 * i as u64);
        r.created = Some(AT - (40 + 5 * i) * DAY);
        r.owner = (i % 7 != 0).then(|| "team".to_string());
        r.storage_class = StorageClass::Standard;
        r.legal_hold = i == 3;
        r.history.complete_since = Some(AT - 120 * DAY);
        r.history.accesses = match i % 4 {
            0 => vec![],
            1 => (0..i).map(|k| AT - (i - k) * DAY).collect(),
            2 => (1..=3).rev().map(|m| AT - m * 30 * DAY).collect(),
            _ => vec![AT - 100 * DAY],
        };
        out.push(r);
    }
    out
}

/// Scores `records` at `AT` in one unary call.
async fn score_all(
    client: &mut ReuseScorerClient<tonic::transport::Channel>,
    records: &[ObjectRecord],
) -> v1::ScoreResponse {
    client
        .score(ScoreRequest {
            objects: records.iter().map(record_to_pb).collect(),
            at_unix: Some(AT),
        })
        .await
        .expect("score succeeds")
        .into_inner()
}

#[tokio::test]
async fn score_returns_the_engine_verdict_for_every_object() {
    let model = default_model();
    let engine = Engine::new(Arc::new(model.clone()), PolicyConfig::default());
    let server = TestServer::start(ServerConfig::default(), Some(model)).await;
    let mut client = ReuseScorerClient::new(server.channel().await);
    let records = sample_records();
    let response = score_all(&mut client, &records).await;
    assert_eq!(response.verdicts.len(), records.len());
    assert_eq!(response.at_unix, AT);
    for (record, verdict) in records.iter().zip(&response.verdicts) {
        let expected = verdict_to_pb(&engine.score(record, AT, ScopeState::default()).verdict);
        assert_eq!(verdict, &expected, "{}", record.key);
    }
    // The legal hold is retained whatever its score.
    assert_eq!(response.verdicts[3].verdict_class, v1::VerdictClass::Retain as i32);
    assert!(
        response.verdicts[3]
            .reasons
            .contains(&(v1::ReasonCode::LegalHold as i32))
    );
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn score_stream_answers_each_chunk_in_order() {
    let server = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    let mut client = ReuseScorerClient::new(server.channel().await);
    let records = sample_records();
    let unary = score_all(&mut client, &records).await;
    let chunks: Vec<ScoreStreamRequest> = records
        .chunks(7)
        .enumerate()
        .map(|(i, c)| ScoreStreamRequest {
            objects: c.iter().map(record_to_pb).collect(),
            // Only the first chunk says the time; the rest inherit it.
            at_unix: (i == 0).then_some(AT),
        })
        .collect();
    let n_chunks = chunks.len();
    let mut stream = client
        .score_stream(tokio_stream::iter(chunks))
        .await
        .expect("stream opens")
        .into_inner();
    let mut streamed = Vec::new();
    let mut responses = 0;
    while let Some(response) = stream.message().await.expect("stream message") {
        assert_eq!(response.at_unix, AT);
        streamed.extend(response.verdicts);
        responses += 1;
    }
    assert_eq!(responses, n_chunks);
    assert_eq!(streamed, unary.verdicts);
    server.stop().await.expect("clean shutdown");
}

fn good() -> v1::ObjectRecord {
    record_to_pb(&sample_records()[1])
}

#[tokio::test]
async fn malformed_requests_get_precise_statuses() {
    let config = ServerConfig {
        max_objects_per_request: 5,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    let mut client = ReuseScorerClient::new(server.channel().await);
    let at = Some(AT);
    let with = |f: &dyn Fn(&mut v1::ObjectRecord)| {
        let mut r = good();
        f(&mut r);
        ScoreRequest {
            objects: vec![good(), r],
            at_unix: at,
        }
    };
    let history = |r: &mut v1::ObjectRecord| r.history.get_or_insert_with(Default::default).access_unix.clone();
    let corpus: Vec<(&str, ScoreRequest, Code, &str)> = vec![
        (
            "missing key",
            with(&|r| r.key.clear()),
            Code::InvalidArgument,
            "objects[1].key",
        ),
        (
            "negative size",
            with(&|r| r.size_bytes = Some(-5)),
            Code::InvalidArgument,
            "objects[1].size_bytes",
        ),
        (
            "created in the future",
            with(&|r| r.created_unix = Some(AT + 10 * DAY)),
            Code::InvalidArgument,
            "objects[1].created_unix",
        ),
        (
            "read in the future",
            with(&|r| {
                let mut h = history(r);
                h.push(AT + DAY);
                r.history.as_mut().expect("history").access_unix = h;
            }),
            Code::InvalidArgument,
            "objects[1].history.access_unix",
        ),
        (
            "unsorted history",
            with(&|r| r.history.as_mut().expect("history").access_unix = vec![AT - DAY, AT - 2 * DAY]),
            Code::InvalidArgument,
            "objects[1].history.access_unix",
        ),
        (
            "absurdly long history",
            with(&|r| r.history.as_mut().expect("history").access_unix = vec![AT - DAY; 100_001]),
            Code::InvalidArgument,
            "objects[1].history.access_unix",
        ),
        (
            "unknown storage class",
            with(&|r| r.storage_class = 42),
            Code::InvalidArgument,
            "objects[1].storage_class",
        ),
        (
            "negative storage class",
            with(&|r| r.storage_class = -1),
            Code::InvalidArgument,
            "objects[1].storage_class",
        ),
        (
            "created just beyond the clock skew allowance",
            with(&|r| r.created_unix = Some(AT + 301)),
            Code::InvalidArgument,
            "objects[1].created_unix",
        ),
        (
            "history complete from the future",
            with(&|r| r.history.as_mut().expect("history").complete_since_unix = Some(AT + DAY)),
            Code::InvalidArgument,
            "objects[1].history.complete_since_unix",
        ),
        (
            "summary read in the future",
            with(&|r| {
                r.history.as_mut().expect("history").summary = Some(v1::AccessSummary {
                    count: 1,
                    first_unix: None,
                    last_unix: Some(AT + DAY),
                })
            }),
            Code::InvalidArgument,
            "objects[1].history.summary.last_unix",
        ),
        (
            "summary with times but no reads",
            with(&|r| {
                r.history.as_mut().expect("history").summary = Some(v1::AccessSummary {
                    count: 0,
                    first_unix: Some(AT - DAY),
                    last_unix: None,
                })
            }),
            Code::InvalidArgument,
            "objects[1].history.summary.count",
        ),
        (
            "history entry before 1970",
            with(&|r| r.history.as_mut().expect("history").access_unix = vec![-5, AT - DAY]),
            Code::InvalidArgument,
            "objects[1].history.access_unix",
        ),
        (
            "key longer than the limit",
            with(&|r| r.key = "k".repeat(4097)),
            Code::InvalidArgument,
            "objects[1].key",
        ),
        (
            "NUL in the key",
            with(&|r| r.key = "a\0b".into()),
            Code::InvalidArgument,
            "objects[1].key",
        ),
        (
            "prefix with more objects read than objects",
            with(&|r| {
                r.parent_activity = Some(v1::PrefixActivity {
                    objects: 2,
                    objects_read_30d: 3,
                    ..Default::default()
                })
            }),
            Code::InvalidArgument,
            "objects[1].parent_activity",
        ),
        (
            "the first bad object is named, by its index",
            ScoreRequest {
                objects: vec![good(), good(), good(), {
                    let mut r = good();
                    r.size_bytes = Some(-1);
                    r
                }],
                at_unix: at,
            },
            Code::InvalidArgument,
            "objects[3].size_bytes",
        ),
        (
            "milliseconds instead of seconds",
            with(&|r| r.modified_unix = Some(AT * 1000)),
            Code::InvalidArgument,
            "objects[1].modified_unix",
        ),
        (
            "summary first after last",
            with(&|r| {
                r.history.as_mut().expect("history").summary = Some(v1::AccessSummary {
                    count: 2,
                    first_unix: Some(AT - DAY),
                    last_unix: Some(AT - 2 * DAY),
                })
            }),
            Code::InvalidArgument,
            "objects[1].history.summary",
        ),
        (
            "too many objects",
            ScoreRequest {
                objects: vec![good(); 6],
                at_unix: at,
            },
            Code::ResourceExhausted,
            "more than the limit of 5",
        ),
        (
            "implausible scoring time",
            ScoreRequest {
                objects: vec![good()],
                at_unix: Some(-1),
            },
            Code::InvalidArgument,
            "at_unix",
        ),
    ];
    for (name, request, code, needle) in corpus {
        let status = client.score(request).await.expect_err(name);
        assert_status(name, &status, code, needle);
    }
    // Timestamps up to the clock skew allowance after the scoring time are accepted (reads among them ignored).
    let mut at_the_edge = good();
    at_the_edge.created_unix = Some(AT + 300);
    at_the_edge
        .history
        .as_mut()
        .expect("history")
        .access_unix
        .push(AT + 300);
    client
        .score(ScoreRequest {
            objects: vec![at_the_edge],
            at_unix: at,
        })
        .await
        .expect("within the clock skew allowance");
    // A stream names the chunk as well as the object.
    let mut bad = good();
    bad.storage_class = 42;
    let chunks = vec![
        ScoreStreamRequest {
            objects: vec![good()],
            at_unix: at,
        },
        ScoreStreamRequest {
            objects: vec![good(), good(), bad],
            at_unix: at,
        },
    ];
    let mut stream = client
        .score_stream(tokio_stream::iter(chunks))
        .await
        .expect("stream opens")
        .into_inner();
    assert_eq!(
        stream
            .message()
            .await
            .expect("chunk 0")
            .expect("a response")
            .verdicts
            .len(),
        1
    );
    let status = stream.message().await.expect_err("chunk 1 is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("chunk 1: objects[2].storage_class"),
        "{:?}",
        status.message()
    );
    // The server is still healthy after all that.
    client
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: at,
        })
        .await
        .expect("a good request still succeeds");
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn health_follows_the_model() {
    let without = TestServer::start(ServerConfig::default(), None).await;
    let mut health = HealthClient::new(without.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "reprieve.v1.ReuseScorer".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    let mut scorer = ReuseScorerClient::new(without.channel().await);
    let err = scorer
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: Some(AT),
        })
        .await
        .expect_err("no model");
    assert_eq!(err.code(), Code::Unavailable);
    without.stop().await.expect("clean shutdown");

    let with = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    let mut health = HealthClient::new(with.channel().await);
    for service in ["", "reprieve.v1.ReuseScorer"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    with.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn reload_refuses_bad_artifacts_and_keeps_serving() {
    let model = default_model();
    let version = model.version().to_string();
    let server = TestServer::start(ServerConfig::default(), Some(model.clone())).await;
    let mut models = ModelsClient::new(server.channel().await);
    let listed = models
        .list_models(ListModelsRequest {})
        .await
        .expect("list")
        .into_inner()
        .models;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, version);
    assert!(listed[0].active);
    assert_eq!(listed[0].feature_names.len(), reprieve_core::FEATURE_COUNT);

    let dir = tempfile::tempdir().expect("tempdir");
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{ not json").expect("write");
    let err = models
        .reload_model(ReloadModelRequest {
            path: corrupt.display().to_string(),
        })
        .await
        .expect_err("corrupt artifact refused");
    assert_eq!(err.code(), Code::FailedPrecondition);

    let mut mismatched = model.artifact().clone();
    mismatched.feature_schema.hash = "0000000000000000".into();
    let mismatched_path = dir.path().join("mismatched.json");
    mismatched.save(&mismatched_path).expect("save");
    let err = models
        .reload_model(ReloadModelRequest {
            path: mismatched_path.display().to_string(),
        })
        .await
        .expect_err("schema mismatch refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("feature schema"), "{}", err.message());

    let missing = models
        .reload_model(ReloadModelRequest {
            path: dir.path().join("absent.json").display().to_string(),
        })
        .await
        .expect_err("missing file refused");
    assert_eq!(missing.code(), Code::FailedPrecondition);

    // Still serving the original model.
    let current = models
        .get_model(GetModelRequest { version: String::new() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(current.version, version);

    // A valid artifact with other thresholds swaps in.
    let mut stricter = model.artifact().clone();
    stricter.name = "stricter".into();
    stricter.thresholds.delete_max = -1.0;
    stricter.version = stricter.compute_version();
    let good_path = dir.path().join("stricter.json");
    stricter.save(&good_path).expect("save");
    let info = models
        .reload_model(ReloadModelRequest {
            path: good_path.display().to_string(),
        })
        .await
        .expect("valid artifact loads")
        .into_inner();
    assert_eq!(info.version, stricter.version);
    let err = models
        .get_model(GetModelRequest {
            version: version.clone(),
        })
        .await
        .expect_err("old version gone");
    assert_eq!(err.code(), Code::NotFound);
    let mut scorer = ReuseScorerClient::new(server.channel().await);
    let scored = scorer
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: Some(AT),
        })
        .await
        .expect("score");
    assert_eq!(scored.into_inner().model_version, stricter.version);
    server.stop().await.expect("clean shutdown");
}

const TOKEN: &str = "test-admin-token-0123456789";

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii token");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A valid artifact other than the bundled one, saved in `dir`.
fn stricter_artifact(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let mut stricter = default_model().artifact().clone();
    stricter.name = "stricter".into();
    stricter.thresholds.delete_max = -1.0;
    stricter.version = stricter.compute_version();
    let path = dir.join("stricter.json");
    stricter.save(&path).expect("save");
    (path, stricter.version)
}

#[tokio::test]
async fn reload_needs_the_admin_token_when_one_is_configured() {
    let config = ServerConfig {
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    assert!(
        !format!("{:?}", server.state).contains(TOKEN),
        "Debug must redact the token"
    );
    let mut models = ModelsClient::new(server.channel().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let (good_path, good_version) = stricter_artifact(dir.path());
    let reload = |token: Option<&str>| {
        with_token(
            ReloadModelRequest {
                path: good_path.display().to_string(),
            },
            token,
        )
    };

    let err = models.reload_model(reload(None)).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let mut basic = reload(None);
    basic
        .metadata_mut()
        .insert("authorization", MetadataValue::from_static("Basic dXNlcjpwYXNz"));
    let err = models.reload_model(basic).await.expect_err("not a bearer token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = models
        .reload_model(reload(Some("test-admin-token-0123456780")))
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(!err.message().contains(TOKEN));

    // Read-only calls and scoring stay open.
    let current = models
        .get_model(GetModelRequest { version: String::new() })
        .await
        .expect("get is open")
        .into_inner();
    assert_eq!(
        current.version,
        default_model().version(),
        "refused reloads changed nothing"
    );
    models.list_models(ListModelsRequest {}).await.expect("list is open");
    let mut scorer = ReuseScorerClient::new(server.channel().await);
    scorer
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: Some(AT),
        })
        .await
        .expect("scoring is open");

    // The right token gets through to the usual reload semantics.
    let info = models
        .reload_model(reload(Some(TOKEN)))
        .await
        .expect("authorized reload")
        .into_inner();
    assert_eq!(info.version, good_version);
    server.stop().await.expect("clean shutdown");

    // Without a configured token, reload stays open (the existing behaviour).
    let open = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    let mut models = ModelsClient::new(open.channel().await);
    models.reload_model(reload(None)).await.expect("no token configured");
    open.stop().await.expect("clean shutdown");
}

/// The value of the sample `name{labels}` (labels as rendered, in order) in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_are_scraped_after_a_score_call() {
    let config = ServerConfig {
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    let metrics_addr = server.metrics_addr.expect("metrics listener");
    let mut client = ReuseScorerClient::new(server.channel().await);
    let records = sample_records();
    let response = client
        .score(ScoreRequest {
            objects: records.iter().map(record_to_pb).collect(),
            at_unix: Some(AT),
        })
        .await
        .expect("score")
        .into_inner();
    let err = client
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: Some(-1),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);

    let (status, text) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let n = records.len() as f64;
    assert_eq!(
        sample(&text, r#"reprieve_grpc_requests_total{method="Score",code="OK"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"reprieve_grpc_requests_total{method="Score",code="INVALID_ARGUMENT"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"reprieve_grpc_request_duration_seconds_count{method="Score",code="OK"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "reprieve_objects_scored_total"), Some(n), "{text}");
    assert_eq!(sample(&text, "reprieve_reuse_probability_count"), Some(n), "{text}");
    assert_eq!(
        sample(&text, r#"reprieve_reuse_probability_bucket{le="+Inf"}"#),
        Some(n),
        "{text}"
    );
    let retained = response
        .verdicts
        .iter()
        .filter(|v| v.verdict_class == v1::VerdictClass::Retain as i32)
        .count() as f64;
    assert_eq!(
        sample(&text, r#"reprieve_verdicts_total{class="RETAIN"}"#),
        Some(retained),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"reprieve_verdict_reasons_total{class="RETAIN",reason="LEGAL_HOLD"}"#
        ),
        Some(1.0),
        "{text}"
    );
    let version = default_model().version().to_string();
    assert_eq!(
        sample(&text, &format!(r#"reprieve_model_active{{version="{version}"}}"#)),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE reprieve_grpc_request_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(http_get(metrics_addr, "/other").await.0, 404);
    server.stop().await.expect("clean shutdown");

    // Without `metrics_listen` nothing is recorded and nothing listens.
    let quiet = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    assert!(quiet.metrics_addr.is_none());
    assert!(quiet.state.telemetry.render().is_none());
    quiet.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_short_deadline_stops_a_large_batch_with_deadline_exceeded() {
    const N: usize = 20_000;
    let config = ServerConfig {
        max_objects_per_request: N,
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    let metrics_addr = server.metrics_addr.expect("metrics listener");
    let mut client = ReuseScorerClient::new(server.channel().await).max_decoding_message_size(64 << 20);
    let records = sample_records();
    let objects: Vec<v1::ObjectRecord> = (0..N).map(|i| record_to_pb(&records[i % records.len()])).collect();
    let request = || ScoreRequest {
        objects: objects.clone(),
        at_unix: Some(AT),
    };
    // How long the whole batch takes here (debug builds are slow; the timeout below is a fraction of it).
    let started = std::time::Instant::now();
    let full = client.score(request()).await.expect("no deadline: the batch completes");
    let whole = started.elapsed();
    assert_eq!(full.into_inner().verdicts.len(), N);

    // A third of the whole: request transfer and decoding (a small share of it) fit well inside.
    let timeout = whole / 3;
    let mut late = tonic::Request::new(request());
    late.set_timeout(timeout);
    let err = client.score(late).await.expect_err("the deadline passes mid-batch");
    // A tonic client enforces the same `grpc-timeout` itself and reports its own expiry as CANCELLED, usually a
    // moment before the server's DEADLINE_EXCEEDED arrives; either way the caller is not kept waiting.
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?} (whole batch: {whole:?}, timeout {timeout:?})"
    );
    // The server side: the call ended DEADLINE_EXCEEDED, well before the whole batch could have been scored.
    let series = r#"{method="Score",code="DEADLINE_EXCEEDED"}"#;
    let mut text = String::new();
    for _ in 0..200 {
        text = http_get(metrics_addr, "/metrics").await.1;
        if sample(&text, &format!("reprieve_grpc_requests_total{series}")).is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        sample(&text, &format!("reprieve_grpc_requests_total{series}")),
        Some(1.0),
        "{text}"
    );
    let spent = sample(&text, &format!("reprieve_grpc_request_duration_seconds_sum{series}")).expect("latency");
    assert!(
        spent < whole.as_secs_f64() * 0.9,
        "the server gave up after {spent}s; the whole batch takes {whole:?} (timeout {timeout:?})"
    );
    assert_eq!(
        sample(&text, "reprieve_objects_scored_total"),
        Some(N as f64),
        "only the full batch counts"
    );
    // The server is fine afterwards.
    client
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: Some(AT),
        })
        .await
        .expect("a small request succeeds");
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn sighup_reloads_the_configured_artifact_and_refuses_a_corrupt_one() {
    use reprieve_server::{ReloadOutcome, reload_configured};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.json");
    default_model().artifact().save(&path).expect("save");
    let config = ServerConfig {
        model_path: Some(path.clone()),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    let (stricter_path, stricter_version) = stricter_artifact(dir.path());
    std::fs::copy(&stricter_path, &path).expect("replace the artifact");

    #[cfg(unix)]
    {
        let watcher = reprieve_server::reload_on_sighup(server.state.clone()).expect("SIGHUP handler");
        let watching = tokio::spawn(watcher);
        let kill = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success());
        let mut swapped = false;
        for _ in 0..250 {
            if server
                .state
                .current()
                .is_some_and(|m| m.engine.model.version() == stricter_version)
            {
                swapped = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        watching.abort();
        assert!(swapped, "SIGHUP did not reload {}", path.display());
    }
    #[cfg(not(unix))]
    assert!(matches!(
        reload_configured(&server.state, "test").await,
        ReloadOutcome::Reloaded(_)
    ));

    // A corrupt artifact is refused with its reason; the model in service stays.
    std::fs::write(&path, "{ not json").expect("corrupt the artifact");
    match reload_configured(&server.state, "test").await {
        ReloadOutcome::Refused(reason) => assert!(!reason.is_empty()),
        other => panic!("a corrupt artifact must be refused, got {other:?}"),
    }
    let current = server.state.current().expect("a model is still in service");
    assert_eq!(current.engine.model.version(), stricter_version);
    let mut scorer = ReuseScorerClient::new(server.channel().await);
    let scored = scorer
        .score(ScoreRequest {
            objects: vec![good()],
            at_unix: Some(AT),
        })
        .await
        .expect("still scoring")
        .into_inner();
    assert_eq!(scored.model_version, stricter_version);
    server.stop().await.expect("clean shutdown");

    // With the bundled model there is nothing to reload.
    let bundled = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    assert!(matches!(
        reload_configured(&bundled.state, "test").await,
        ReloadOutcome::NothingToReload
    ));
    bundled.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_stream_past_its_deadline_ends_with_deadline_exceeded() {
    let server = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    let mut client = ReuseScorerClient::new(server.channel().await);
    let (tx, rx) = tokio::sync::mpsc::channel::<ScoreStreamRequest>(4);
    tx.send(ScoreStreamRequest {
        objects: vec![good()],
        at_unix: Some(AT),
    })
    .await
    .expect("queue a chunk");
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request.set_timeout(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let mut stream = client.score_stream(request).await.expect("stream opens").into_inner();
    let first = stream.message().await.expect("first chunk scored").expect("a response");
    assert_eq!(first.verdicts.len(), 1);
    // The client keeps the stream open and sends nothing more: the server ends it at the deadline.
    let err = stream.message().await.expect_err("the deadline ends the stream");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(tx);
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn requests_beyond_max_message_bytes_are_resource_exhausted() {
    let config = ServerConfig {
        max_message_bytes: 64 * 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    let mut client = ReuseScorerClient::new(server.channel().await);
    // 50 objects with 2000-byte keys: about 100 KB, each object valid on its own.
    let mut wide = good();
    wide.key = "k".repeat(2000);
    let oversize = vec![wide; 50];

    let err = client
        .score(ScoreRequest {
            objects: oversize.clone(),
            at_unix: Some(AT),
        })
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_message_bytes"), "{:?}", err.message());

    // On a stream, the chunk that is too large ends it, after the answers to the chunks before it.
    let chunks = vec![
        ScoreStreamRequest {
            objects: vec![good()],
            at_unix: Some(AT),
        },
        ScoreStreamRequest {
            objects: oversize,
            at_unix: Some(AT),
        },
    ];
    let mut stream = client
        .score_stream(tokio_stream::iter(chunks))
        .await
        .expect("stream opens")
        .into_inner();
    let first = stream.message().await.expect("chunk 0").expect("a response");
    assert_eq!(first.verdicts.len(), 1);
    let err = stream.message().await.expect_err("chunk 1 is too large");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().starts_with("chunk 1: "), "{:?}", err.message());

    // Every service has the same limit and the same answer (the size is checked before anything else).
    let mut feedback = reprieve_proto::v1::feedback_client::FeedbackClient::new(server.channel().await);
    let action = v1::Action {
        event_id: "e".repeat(1000),
        ..Default::default()
    };
    let err = feedback
        .record_actions(v1::RecordActionsRequest {
            actions: vec![action; 100],
        })
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let mut models = ModelsClient::new(server.channel().await);
    let err = models
        .reload_model(ReloadModelRequest {
            path: "p".repeat(100_000),
        })
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // Just under the limit is fine.
    client
        .score(ScoreRequest {
            objects: vec![good(); 20],
            at_unix: Some(AT),
        })
        .await
        .expect("a request under the limit");
    server.stop().await.expect("clean shutdown");
}

/// Sends a unary `Score` request over a raw HTTP/2 stream with `grpc-timeout: timeout`, announcing a message of
/// `announced` bytes but sending only `sent` of them, and returns the `grpc-status` and `grpc-message` the server
/// answers (a tonic client would report its own timer's expiry instead).
async fn raw_unary_status(addr: std::net::SocketAddr, timeout: &str, announced: u32, sent: usize) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("ready");
    let request = tonic::codegen::http::Request::post(format!("http://{addr}/reprieve.v1.ReuseScorer/Score"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", timeout)
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(request, false).expect("send request");
    let mut frame = vec![0u8];
    frame.extend_from_slice(&announced.to_be_bytes());
    frame.extend(std::iter::repeat_n(0u8, sent));
    body.send_data(frame.into(), false).expect("send data");
    // The rest of the message never comes.
    let response = tokio::time::timeout(std::time::Duration::from_secs(30), response)
        .await
        .expect("the server answers by the deadline")
        .expect("a response");
    let header = |name: &str, headers: &tonic::codegen::http::HeaderMap| {
        headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_default()
    };
    let (parts, mut stream) = response.into_parts();
    if parts.headers.contains_key("grpc-status") {
        return (
            header("grpc-status", &parts.headers),
            header("grpc-message", &parts.headers),
        );
    }
    while stream.data().await.is_some() {}
    let trailers = stream.trailers().await.expect("trailers").unwrap_or_default();
    (header("grpc-status", &trailers), header("grpc-message", &trailers))
}

#[tokio::test]
async fn a_deadline_that_passes_before_the_request_arrives_is_deadline_exceeded() {
    let server = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    // 100 bytes announced, 10 sent: the call waits for the rest of its request until its deadline.
    let (status, message) = raw_unary_status(server.addr, "200m", 100, 10).await;
    assert_eq!(
        status,
        (Code::DeadlineExceeded as i32).to_string(),
        "DEADLINE_EXCEEDED, not tonic's CANCELLED: {message:?}"
    );
    // Without a deadline the same wait would be the client's problem; a complete request is answered normally.
    let mut client = ReuseScorerClient::new(server.channel().await);
    let mut request = tonic::Request::new(ScoreRequest {
        objects: vec![good()],
        at_unix: Some(AT),
    });
    request.set_timeout(std::time::Duration::from_secs(30));
    client.score(request).await.expect("in time");
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_stream_chunk_that_outlasts_the_deadline_ends_with_deadline_exceeded() {
    const N: usize = 20_000;
    let config = ServerConfig {
        max_objects_per_request: N,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, Some(default_model())).await;
    let mut client = ReuseScorerClient::new(server.channel().await).max_decoding_message_size(64 << 20);
    let records = sample_records();
    let chunk = || ScoreStreamRequest {
        objects: (0..N).map(|i| record_to_pb(&records[i % records.len()])).collect(),
        at_unix: Some(AT),
    };
    // How long one large chunk takes here (debug builds are slow; the deadline below is a fraction of it).
    let started = std::time::Instant::now();
    let mut stream = client
        .score_stream(tokio_stream::iter(vec![chunk()]))
        .await
        .expect("stream opens")
        .into_inner();
    let whole = stream.message().await.expect("scored").expect("a response");
    assert_eq!(whole.verdicts.len(), N);
    let whole = started.elapsed();

    let mut request = tonic::Request::new(tokio_stream::iter(vec![chunk()]));
    request.set_timeout(whole / 3);
    let mut stream = client.score_stream(request).await.expect("stream opens").into_inner();
    let err = stream
        .message()
        .await
        .expect_err("the deadline passes while the chunk is scored");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?} (whole chunk: {whole:?})");
    assert!(err.message().contains("chunk 0"), "{:?}", err.message());
    server.stop().await.expect("clean shutdown");
}
