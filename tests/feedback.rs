//! The feedback loop end to end: a real server with a real sled store in a temporary directory, a real tonic
//! client. Audit trail of Score and ScoreStream, idempotent actions and restores, realized precision on a
//! hand-computed case, the breaker (opens, persists across a restart, closes on reset and on promotion), admin
//! auth on feedback writes, and precise statuses for malformed feedback.

use std::path::{Path, PathBuf};

use reprieve_core::{FEATURE_COUNT, FEATURE_NAMES};
use reprieve_e2e::{TestServer, assert_status, default_model, http_get, metric_sample};
use reprieve_model::Model;
use reprieve_proto::v1::feedback_client::FeedbackClient;
use reprieve_proto::v1::models_client::ModelsClient;
use reprieve_proto::v1::reuse_scorer_client::ReuseScorerClient;
use reprieve_proto::v1::{
    self, Action, ActionKind, BreakerEventKind, GetPrecisionRequest, ListBreakerEventsRequest, ListVerdictsRequest,
    RecordActionsRequest, RecordRestoresRequest, ReloadModelRequest, ResetBreakerRequest, Restore, ScoreRequest,
    ScoreStreamRequest, VerdictClass,
};
use reprieve_server::{ServerConfig, StoreSettings};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const DAY: i64 = 86_400;
const TOKEN: &str = "feedback-admin-token-0123456789";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A server configuration with its store in `dir`.
fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        store: StoreSettings {
            data_dir: dir.to_path_buf(),
            ..StoreSettings::default()
        },
        ..ServerConfig::default()
    }
}

/// An artifact that calls every eligible object DELETE_CANDIDATE (the bundled model is cautious: most hand-made
/// objects are outside its training domain), saved as `dir/<name>.json`. Its version differs per name.
fn permissive(dir: &Path, name: &str) -> (PathBuf, Model) {
    let mut artifact = default_model().artifact().clone();
    artifact.name = name.into();
    artifact.domain = None;
    artifact.thresholds.delete_max = 1.0;
    artifact.thresholds.archive_max = 1.0;
    artifact.thresholds.retain_min = 1.0;
    artifact.version = artifact.compute_version();
    let path = dir.join(format!("{name}.json"));
    artifact.save(&path).expect("save artifact");
    let model = Model::load(&path).expect("the artifact loads");
    (path, model)
}

/// An object every policy rule lets go (old, owned, long history, idle): its class is the model's call.
fn eligible(tenant: &str, key: &str, at: i64) -> v1::ObjectRecord {
    v1::ObjectRecord {
        key: key.into(),
        tenant: tenant.into(),
        size_bytes: Some(20_000),
        created_unix: Some(at - 400 * DAY),
        owner: "web".into(),
        storage_class: v1::StorageClass::Standard as i32,
        history: Some(v1::AccessHistory {
            access_unix: vec![at - 100 * DAY],
            summary: None,
            complete_since_unix: Some(at - 200 * DAY),
        }),
        ..Default::default()
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii token");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

async fn score(channel: &Channel, objects: Vec<v1::ObjectRecord>, at: i64) -> v1::ScoreResponse {
    ReuseScorerClient::new(channel.clone())
        .score(ScoreRequest {
            objects,
            at_unix: Some(at),
        })
        .await
        .expect("score")
        .into_inner()
}

async fn score_one(channel: &Channel, tenant: &str, key: &str, at: i64) -> v1::Verdict {
    score(channel, vec![eligible(tenant, key, at)], at)
        .await
        .verdicts
        .pop()
        .expect("one verdict")
}

fn action(event_id: &str, verdict: &v1::Verdict, kind: ActionKind, at: i64) -> Action {
    Action {
        event_id: event_id.into(),
        verdict_id: verdict.verdict_id.clone(),
        tenant: verdict.tenant.clone(),
        key: verdict.key.clone(),
        kind: kind as i32,
        at_unix: at,
    }
}

fn restore(event_id: &str, tenant: &str, key: &str, at: i64, requested: Option<i64>) -> Restore {
    Restore {
        event_id: event_id.into(),
        tenant: tenant.into(),
        key: key.into(),
        at_unix: at,
        requested_unix: requested,
    }
}

async fn actions(client: &mut FeedbackClient<Channel>, list: Vec<Action>) -> v1::RecordActionsResponse {
    client
        .record_actions(with_token(RecordActionsRequest { actions: list }, Some(TOKEN)))
        .await
        .expect("actions recorded")
        .into_inner()
}

async fn restores(client: &mut FeedbackClient<Channel>, list: Vec<Restore>) -> v1::RecordRestoresResponse {
    client
        .record_restores(with_token(RecordRestoresRequest { restores: list }, Some(TOKEN)))
        .await
        .expect("restores recorded")
        .into_inner()
}

async fn list(client: &mut FeedbackClient<Channel>, request: ListVerdictsRequest) -> v1::ListVerdictsResponse {
    client.list_verdicts(request).await.expect("list verdicts").into_inner()
}

async fn precision(client: &mut FeedbackClient<Channel>, request: GetPrecisionRequest) -> Vec<v1::PrecisionRow> {
    client
        .get_precision(request)
        .await
        .expect("precision")
        .into_inner()
        .rows
}

async fn breaker_events(client: &mut FeedbackClient<Channel>) -> Vec<v1::BreakerEvent> {
    client
        .list_breaker_events(ListBreakerEventsRequest::default())
        .await
        .expect("breaker events")
        .into_inner()
        .events
}

/// The value of the gauge `name` whose labels include every `label="value"` in `labels`.
fn gauge(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Scrapes `/metrics` until `ready` holds (the precision gauges are refreshed in the background), at most ~20 s.
async fn scrape_until(server: &TestServer, ready: impl Fn(&str) -> bool) -> String {
    let addr = server.metrics_addr.expect("metrics listener");
    let mut text = String::new();
    for _ in 0..200 {
        text = http_get(addr, "/metrics").await.1;
        if ready(&text) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    text
}

#[tokio::test]
async fn every_verdict_is_audited_and_listed_by_key_and_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir.path().join("store"));
    cfg.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let server = TestServer::start_with_store(cfg, Some(default_model())).await;
    let channel = server.channel().await;
    let (t1, t2) = (now() - 2 * DAY, now() - DAY);

    // Unary: 5 objects at t1, in two tenants.
    let objects: Vec<_> = (0..5)
        .map(|i| eligible(["t", "u"][i % 2], &format!("img/{i}.png"), t1))
        .collect();
    let unary = score(&channel, objects.clone(), t1).await;
    // Streamed: 3 chunks of 4 at t2 (the first 4 keys are the unary ones again).
    let mut scorer = ReuseScorerClient::new(channel.clone());
    let chunks: Vec<ScoreStreamRequest> = (0..3)
        .map(|c| ScoreStreamRequest {
            objects: (0..4)
                .map(|i| eligible(["t", "u"][i % 2], &format!("img/{}.png", 4 * c + i), t2))
                .collect(),
            at_unix: Some(t2),
        })
        .collect();
    let mut stream = scorer
        .score_stream(tokio_stream::iter(chunks))
        .await
        .expect("stream opens")
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(response) = stream.message().await.expect("stream message") {
        streamed.extend(response.verdicts);
    }
    assert_eq!(streamed.len(), 12);

    let mut feedback = FeedbackClient::new(channel.clone());
    // By key, newest first, with the features the model saw.
    let by_key = list(
        &mut feedback,
        ListVerdictsRequest {
            tenant: "t".into(),
            key: "img/0.png".into(),
            ..Default::default()
        },
    )
    .await;
    let verdicts: Vec<_> = by_key
        .verdicts
        .iter()
        .map(|a| a.verdict.clone().expect("verdict"))
        .collect();
    assert_eq!(verdicts, vec![streamed[0].clone(), unary.verdicts[0].clone()]);
    for audited in &by_key.verdicts {
        assert_eq!(audited.features.len(), FEATURE_COUNT);
        assert_eq!(audited.feature_names, FEATURE_NAMES);
        assert_eq!(audited.source, "grpc");
        assert!(audited.features.iter().all(|f| f.is_finite()));
    }
    assert!(by_key.next_page_token.is_empty());
    // The other tenant's object of the same key is not listed under "t".
    let other = list(
        &mut feedback,
        ListVerdictsRequest {
            tenant: "t".into(),
            key: "img/1.png".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(other.verdicts.is_empty(), "img/1.png was scored in tenant u");

    // By time range: t1 alone, t2 alone, and everything in pages of 5.
    let between = |from: i64, to: i64, limit: u32, page_token: String| ListVerdictsRequest {
        from_unix: Some(from),
        to_unix: Some(to),
        limit,
        page_token,
        ..Default::default()
    };
    assert_eq!(
        list(&mut feedback, between(t1, t1, 0, String::new()))
            .await
            .verdicts
            .len(),
        5
    );
    assert_eq!(
        list(&mut feedback, between(t2, t2, 0, String::new()))
            .await
            .verdicts
            .len(),
        12
    );
    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(&mut feedback, between(t1 - 10, t2 + 10, 5, token)).await;
        pages += 1;
        ids.extend(
            page.verdicts
                .iter()
                .map(|a| a.verdict.as_ref().expect("verdict").verdict_id.clone()),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 4, "17 verdicts in pages of 5");
    let mut expected: Vec<String> = unary
        .verdicts
        .iter()
        .chain(&streamed)
        .map(|v| v.verdict_id.clone())
        .collect();
    assert_eq!(ids.len(), 17);
    expected.sort();
    ids.sort();
    assert_eq!(ids, expected, "every verdict returned is listed, once");
    // The time range of one tenant.
    let only_u = list(
        &mut feedback,
        ListVerdictsRequest {
            tenant: "u".into(),
            from_unix: Some(t1),
            to_unix: Some(t2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(only_u.verdicts.len(), 2 + 6);
    assert!(
        only_u
            .verdicts
            .iter()
            .all(|a| a.verdict.as_ref().expect("verdict").tenant == "u")
    );

    // Scoring the same objects at the same time again gives the same verdict ids: nothing is added.
    score(&channel, objects, t1).await;
    assert_eq!(
        list(&mut feedback, between(t1, t1, 0, String::new()))
            .await
            .verdicts
            .len(),
        5
    );

    let text = http_get(server.metrics_addr.expect("metrics"), "/metrics").await.1;
    assert_eq!(
        metric_sample(&text, r#"reprieve_audit_records_total{result="accepted"}"#),
        Some(17.0),
        "{text}"
    );
    assert_eq!(
        metric_sample(&text, r#"reprieve_audit_records_total{result="duplicate"}"#),
        Some(5.0),
        "{text}"
    );
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn actions_and_restores_are_idempotent_and_precision_matches_a_hand_computed_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, model) = permissive(dir.path(), "permissive");
    let version = model.version().to_string();
    let mut cfg = config(&dir.path().join("store"));
    cfg.admin_token = Some(TOKEN.into());
    cfg.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    cfg.store.restore_window_secs = DAY;
    cfg.store.metrics_refresh_secs = 1;
    let server = TestServer::start_with_store(cfg, Some(model)).await;
    let channel = server.channel().await;
    let mut feedback = FeedbackClient::new(channel.clone());
    let scored_at = now() - 20 * DAY;
    let acted = now() - 10 * DAY;

    // Tenant t, prefix img/: 10 soft deletes; 3 restored after 60 s, 120 s, and 600 s with the need noticed
    // at 500 s (time to recover 100 s). Median time to recover: 100 s.
    let mut batch = Vec::new();
    for i in 0..10 {
        let v = score_one(&channel, "t", &format!("img/{i}.png"), scored_at).await;
        assert_eq!(v.verdict_class, VerdictClass::DeleteCandidate as i32, "{v:?}");
        batch.push(action(&format!("a-t-{i}"), &v, ActionKind::SoftDeleted, acted));
    }
    // Tenant u, prefix doc/: 2 archived, 1 ignored, 1 hard-deleted and restored.
    for (i, kind) in [
        ActionKind::Archived,
        ActionKind::Archived,
        ActionKind::Ignored,
        ActionKind::HardDeleted,
    ]
    .into_iter()
    .enumerate()
    {
        let v = score_one(&channel, "u", &format!("doc/{i}.pdf"), scored_at).await;
        batch.push(action(&format!("a-u-{i}"), &v, kind, acted));
    }
    let ack = actions(&mut feedback, batch.clone()).await;
    assert_eq!((ack.accepted, ack.duplicates, ack.unknown_verdicts), (14, 0, 0));
    let back = vec![
        restore("r-t-0", "t", "img/0.png", acted + 60, None),
        restore("r-t-1", "t", "img/1.png", acted + 120, None),
        restore("r-t-2", "t", "img/2.png", acted + 600, Some(acted + 500)),
        restore("r-u-3", "u", "doc/3.pdf", acted + 30, None),
        // Outside the one-day window, and of an object nobody acted on: stored, matched to nothing.
        restore("r-t-late", "t", "img/5.png", acted + 2 * DAY, None),
        restore("r-t-never", "t", "img/never.png", acted + 60, None),
    ];
    let ack = restores(&mut feedback, back.clone()).await;
    assert_eq!((ack.accepted, ack.duplicates, ack.matched), (6, 0, 4));

    // Retried requests (a client that never saw the answer) change nothing; a mixed retry adds only the new.
    let ack = actions(&mut feedback, batch.clone()).await;
    assert_eq!((ack.accepted, ack.duplicates), (0, 14));
    let ack = restores(&mut feedback, back).await;
    assert_eq!((ack.accepted, ack.duplicates, ack.matched), (0, 6, 0));
    let unknown = Action {
        event_id: "a-unknown".into(),
        verdict_id: "not-a-verdict-we-issued".into(),
        tenant: "t".into(),
        key: "img/x.png".into(),
        kind: ActionKind::SoftDeleted as i32,
        at_unix: acted,
    };
    let ack = actions(&mut feedback, vec![batch[0].clone(), unknown.clone(), unknown]).await;
    assert_eq!((ack.accepted, ack.duplicates, ack.unknown_verdicts), (1, 2, 1));

    let rows = precision(&mut feedback, GetPrecisionRequest::default()).await;
    let row = |tenant: &str| {
        rows.iter()
            .find(|r| r.tenant == tenant && r.model_version == version)
            .unwrap_or_else(|| panic!("a row for {tenant}: {rows:?}"))
    };
    let t = row("t");
    assert_eq!(
        (t.verdict_class, t.prefix.as_str(), t.actions, t.restores),
        (VerdictClass::DeleteCandidate as i32, "img/", 10, 3)
    );
    assert!((t.false_delete_rate - 0.3).abs() < 1e-12);
    assert!((t.false_delete_upper_95 - 0.606_624).abs() < 1e-5, "{t:?}");
    assert_eq!(t.median_time_to_recover_seconds, Some(100.0));
    assert!(!t.breaker_open);
    let u = row("u");
    assert_eq!(
        (u.prefix.as_str(), u.actions, u.restores),
        ("doc/", 3, 1),
        "ignored actions do not count"
    );
    assert!((u.false_delete_upper_95 - 0.864_650).abs() < 1e-5, "{u:?}");
    assert_eq!(u.median_time_to_recover_seconds, Some(30.0));
    let unattributed = rows
        .iter()
        .find(|r| r.model_version.is_empty())
        .expect("a row for the unknown verdict");
    assert_eq!(
        (unattributed.verdict_class, unattributed.actions),
        (VerdictClass::Unspecified as i32, 1)
    );
    assert_eq!(rows.len(), 3);
    // Filters.
    let only_u = precision(
        &mut feedback,
        GetPrecisionRequest {
            tenant: "u".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(only_u, vec![u.clone()]);
    let archive = precision(
        &mut feedback,
        GetPrecisionRequest {
            verdict_class: VerdictClass::Archive as i32,
            ..Default::default()
        },
    )
    .await;
    assert!(archive.is_empty(), "every verdict was DELETE_CANDIDATE");
    let recent = precision(
        &mut feedback,
        GetPrecisionRequest {
            window_days: 5,
            ..Default::default()
        },
    )
    .await;
    assert!(recent.is_empty(), "all actions are 10 days old");

    // The gauges pool tenants and prefixes per model version and class: 4 restored of 13.
    let labels = [&*format!("model_version=\"{version}\""), "class=\"DELETE_CANDIDATE\""];
    let text = scrape_until(&server, |text| {
        gauge(text, "reprieve_feedback_actions", &labels) == Some(13.0)
    })
    .await;
    assert_eq!(
        gauge(&text, "reprieve_feedback_restored_actions", &labels),
        Some(4.0),
        "{text}"
    );
    let m4 = gauge(&text, "reprieve_false_delete_rate", &labels).expect("M4");
    assert!((m4 - 4.0 / 13.0).abs() < 1e-9, "{m4}");
    let m10 = gauge(&text, "reprieve_prediction_precision", &labels).expect("M10");
    assert!((m10 - 9.0 / 13.0).abs() < 1e-9, "{m10}");
    let upper = gauge(&text, "reprieve_false_delete_rate_upper_95", &labels).expect("bound");
    assert!((upper - 0.572_619).abs() < 1e-5, "{upper}");
    // Times to recover 60, 120, 100 (t) and 30 (u): median 80.
    assert_eq!(
        gauge(&text, "reprieve_time_to_recover_median_seconds", &labels),
        Some(80.0)
    );
    assert_eq!(
        metric_sample(
            &text,
            r#"reprieve_feedback_events_total{kind="action",result="accepted"}"#
        ),
        Some(15.0),
        "{text}"
    );
    assert_eq!(metric_sample(&text, "reprieve_restores_matched_total"), Some(4.0));
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_breaker_opens_on_restores_persists_and_closes_on_reset_and_on_promotion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, model_a) = permissive(dir.path(), "model-a");
    let (path_b, model_b) = permissive(dir.path(), "model-b");
    let (va, vb) = (model_a.version().to_string(), model_b.version().to_string());
    let mut cfg = config(&dir.path().join("store"));
    cfg.admin_token = Some(TOKEN.into());
    cfg.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    cfg.store.breaker_min_actions = 10;
    cfg.store.breaker_target = 0.5;
    let server = TestServer::start_with_store(cfg.clone(), Some(model_a.clone())).await;
    let channel = server.channel().await;
    let mut feedback = FeedbackClient::new(channel.clone());
    let scored_at = now() - 20 * DAY;
    let acted = now() - 10 * DAY;

    // 12 deletes in (A, t, img/); 9 deletes in (A, t, doc/), every one restored, but fewer than the 10 needed.
    let mut batch = Vec::new();
    for i in 0..12 {
        let v = score_one(&channel, "t", &format!("img/{i}.png"), scored_at).await;
        batch.push(action(&format!("img-{i}"), &v, ActionKind::SoftDeleted, acted));
    }
    let mut doc_restores = Vec::new();
    for i in 0..9 {
        let v = score_one(&channel, "t", &format!("doc/{i}.pdf"), scored_at).await;
        batch.push(action(&format!("doc-{i}"), &v, ActionKind::HardDeleted, acted));
        doc_restores.push(restore(
            &format!("r-doc-{i}"),
            "t",
            &format!("doc/{i}.pdf"),
            acted + 60,
            None,
        ));
    }
    actions(&mut feedback, batch).await;
    restores(&mut feedback, doc_restores).await;
    // With 12 actions the 95% bound exceeds 0.5 from the third restore on (0.34, 0.44, then 0.53).
    for i in 0..3 {
        let open = score_one(&channel, "t", "img/probe.png", now()).await;
        assert_eq!(
            open.verdict_class,
            VerdictClass::DeleteCandidate as i32,
            "closed before restore {i}"
        );
        let ack = restores(
            &mut feedback,
            vec![restore(
                &format!("r-img-{i}"),
                "t",
                &format!("img/{i}.png"),
                acted + 60,
                None,
            )],
        )
        .await;
        assert_eq!(ack.matched, 1);
    }
    let breaker = v1::ReasonCode::PrecisionBreaker as i32;
    let held = score_one(&channel, "t", "img/probe.png", now()).await;
    assert_eq!(held.verdict_class, VerdictClass::Review as i32, "{held:?}");
    assert!(held.reasons.contains(&breaker), "{held:?}");
    // Only that scope: another prefix of the tenant, and the same prefix of another tenant, are untouched.
    for (tenant, key) in [("t", "doc/probe.pdf"), ("u", "img/probe.png"), ("t", "probe.png")] {
        let v = score_one(&channel, tenant, key, now()).await;
        assert_eq!(
            v.verdict_class,
            VerdictClass::DeleteCandidate as i32,
            "{tenant}/{key}: {v:?}"
        );
        assert!(!v.reasons.contains(&breaker));
    }
    let img_row = |rows: &[v1::PrecisionRow]| {
        rows.iter()
            .find(|r| r.tenant == "t" && r.prefix == "img/")
            .cloned()
            .expect("img/ row")
    };
    let rows = precision(
        &mut feedback,
        GetPrecisionRequest {
            model_version: va.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(img_row(&rows).breaker_open);
    assert!(!rows.iter().find(|r| r.prefix == "doc/").expect("doc/ row").breaker_open);
    let events = breaker_events(&mut feedback).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, BreakerEventKind::Opened as i32);
    assert_eq!((events[0].actions, events[0].restored), (12, 3));
    assert_eq!((events[0].tenant.as_str(), events[0].prefix.as_str()), ("t", "img/"));
    let scope = [&*format!("model_version=\"{va}\""), "tenant=\"t\"", "prefix=\"img/\""];
    let text = http_get(server.metrics_addr.expect("metrics"), "/metrics").await.1;
    assert_eq!(gauge(&text, "reprieve_breaker_open", &scope), Some(1.0), "{text}");
    assert_eq!(metric_sample(&text, "reprieve_breakers_open"), Some(1.0));

    // A restart on the same directory with the same model: still open.
    server.stop().await.expect("clean shutdown");
    let server = TestServer::start_with_store(cfg.clone(), Some(model_a.clone())).await;
    let channel = server.channel().await;
    let mut feedback = FeedbackClient::new(channel.clone());
    let held = score_one(&channel, "t", "img/probe.png", now()).await;
    assert!(
        held.reasons.contains(&breaker),
        "the breaker survives a restart: {held:?}"
    );
    let text = http_get(server.metrics_addr.expect("metrics"), "/metrics").await.1;
    assert_eq!(gauge(&text, "reprieve_breaker_open", &scope), Some(1.0), "{text}");

    // Resetting is an admin call with who and why.
    let reset = |operator: &str| ResetBreakerRequest {
        model_version: va.clone(),
        tenant: "t".into(),
        prefix: "img/".into(),
        operator: operator.into(),
        reason: "restores were a migration bug, ticket OPS-42".into(),
    };
    let err = feedback
        .reset_breaker(with_token(reset("alice"), None))
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = feedback
        .reset_breaker(with_token(reset("alice"), Some("wrong-token-wrong-token")))
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = feedback
        .reset_breaker(with_token(reset(" "), Some(TOKEN)))
        .await
        .expect_err("no operator");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("operator"), "{}", err.message());
    let closed = feedback
        .reset_breaker(with_token(reset("alice"), Some(TOKEN)))
        .await
        .expect("reset")
        .into_inner();
    assert_eq!(closed.closed, 1);
    let released = score_one(&channel, "t", "img/probe.png", now()).await;
    assert_eq!(
        released.verdict_class,
        VerdictClass::DeleteCandidate as i32,
        "{released:?}"
    );
    let events = breaker_events(&mut feedback).await;
    let last = events.last().expect("the reset is logged");
    assert_eq!(last.kind, BreakerEventKind::Reset as i32);
    assert_eq!((last.operator.as_str(), last.was_open), ("alice", true));
    assert!(last.reason.contains("OPS-42"));
    let text = http_get(server.metrics_addr.expect("metrics"), "/metrics").await.1;
    assert_eq!(gauge(&text, "reprieve_breaker_open", &scope), Some(0.0), "{text}");

    // Counting restarted at the reset: the old restores no longer count. New deletes and restores open it again.
    let later = now();
    let mut batch = Vec::new();
    for i in 0..12 {
        let v = score_one(&channel, "t", &format!("img/b{i}.png"), now()).await;
        batch.push(action(&format!("img-b{i}"), &v, ActionKind::SoftDeleted, later));
    }
    actions(&mut feedback, batch).await;
    let back = (0..3)
        .map(|i| restore(&format!("r-img-b{i}"), "t", &format!("img/b{i}.png"), later, None))
        .collect();
    assert_eq!(restores(&mut feedback, back).await.matched, 3);
    assert!(
        score_one(&channel, "t", "img/probe.png", now())
            .await
            .reasons
            .contains(&breaker)
    );

    // Promoting another model closes the old version's breakers; its verdicts are its own.
    let mut models = ModelsClient::new(channel.clone());
    let info = models
        .reload_model(with_token(
            ReloadModelRequest {
                path: path_b.display().to_string(),
            },
            Some(TOKEN),
        ))
        .await
        .expect("reload")
        .into_inner();
    assert_eq!(info.version, vb);
    let v = score_one(&channel, "t", "img/probe.png", now()).await;
    assert_eq!(
        (v.model_version.as_str(), v.verdict_class),
        (vb.as_str(), VerdictClass::DeleteCandidate as i32)
    );
    let last = breaker_events(&mut feedback).await.pop().expect("events");
    assert_eq!(last.kind, BreakerEventKind::ClosedByPromotion as i32);
    assert_eq!(
        (last.model_version.as_str(), last.promoted_version.as_str()),
        (va.as_str(), vb.as_str())
    );
    let rows = precision(
        &mut feedback,
        GetPrecisionRequest {
            model_version: va.clone(),
            ..Default::default()
        },
    )
    .await;
    assert!(!img_row(&rows).breaker_open);
    // Back to model A: its breaker was closed by the promotion and stays closed.
    server.stop().await.expect("clean shutdown");
    let server = TestServer::start_with_store(cfg, Some(model_a)).await;
    let channel = server.channel().await;
    let v = score_one(&channel, "t", "img/probe.png", now()).await;
    assert_eq!(
        (v.model_version.as_str(), v.verdict_class),
        (va.as_str(), VerdictClass::DeleteCandidate as i32)
    );
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn feedback_writes_need_the_admin_token_and_reads_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir.path().join("store"));
    cfg.admin_token = Some(TOKEN.into());
    let server = TestServer::start_with_store(cfg, Some(default_model())).await;
    let channel = server.channel().await;
    let mut feedback = FeedbackClient::new(channel.clone());
    let v = score_one(&channel, "t", "img/a.png", now() - DAY).await;
    let acts = || RecordActionsRequest {
        actions: vec![action("e1", &v, ActionKind::SoftDeleted, now())],
    };
    let back = || RecordRestoresRequest {
        restores: vec![restore("r1", "t", "img/a.png", now(), None)],
    };
    // Auth comes before validation: a malformed request without a token is UNAUTHENTICATED.
    let malformed = RecordActionsRequest {
        actions: vec![Action::default()],
    };
    let err = feedback
        .record_actions(with_token(malformed, None))
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = feedback
        .record_actions(with_token(acts(), None))
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut basic = with_token(back(), None);
    basic
        .metadata_mut()
        .insert("authorization", MetadataValue::from_static("Basic dXNlcjpwYXNz"));
    let err = feedback.record_restores(basic).await.expect_err("not bearer");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = feedback
        .record_actions(with_token(acts(), Some("feedback-admin-token-0123456780")))
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(!err.message().contains(TOKEN));
    let err = feedback
        .record_restores(with_token(back(), Some("nope-nope-nope-nope")))
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing was written by the refused calls.
    assert!(
        precision(&mut feedback, GetPrecisionRequest::default())
            .await
            .is_empty()
    );
    // Reads stay open.
    assert_eq!(
        list(
            &mut feedback,
            ListVerdictsRequest {
                tenant: "t".into(),
                key: "img/a.png".into(),
                ..Default::default()
            }
        )
        .await
        .verdicts
        .len(),
        1
    );
    assert!(breaker_events(&mut feedback).await.is_empty());
    // With the token.
    let ack = feedback
        .record_actions(with_token(acts(), Some(TOKEN)))
        .await
        .expect("authorized")
        .into_inner();
    assert_eq!(ack.accepted, 1);
    let ack = feedback
        .record_restores(with_token(back(), Some(TOKEN)))
        .await
        .expect("authorized")
        .into_inner();
    assert_eq!((ack.accepted, ack.matched), (1, 1));
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn malformed_feedback_requests_name_the_field_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir.path().join("store"));
    cfg.store.max_events_per_request = 5;
    let server = TestServer::start_with_store(cfg, Some(default_model())).await;
    let channel = server.channel().await;
    let mut feedback = FeedbackClient::new(channel.clone());
    let at = now();
    let good = |i: usize| Action {
        event_id: format!("e{i}"),
        verdict_id: "v".into(),
        tenant: "t".into(),
        key: format!("img/{i}.png"),
        kind: ActionKind::SoftDeleted as i32,
        at_unix: at,
    };
    let actions_with = |f: &dyn Fn(&mut Action)| {
        let mut bad = good(3);
        f(&mut bad);
        RecordActionsRequest {
            actions: vec![good(0), good(1), good(2), bad],
        }
    };
    let corpus: Vec<(&str, RecordActionsRequest, Code, &str)> = vec![
        (
            "empty event id",
            actions_with(&|a| a.event_id.clear()),
            Code::InvalidArgument,
            "actions[3].event_id: must not be empty",
        ),
        (
            "empty verdict id",
            actions_with(&|a| a.verdict_id.clear()),
            Code::InvalidArgument,
            "actions[3].verdict_id",
        ),
        (
            "empty key",
            actions_with(&|a| a.key.clear()),
            Code::InvalidArgument,
            "actions[3].key",
        ),
        (
            "long event id",
            actions_with(&|a| a.event_id = "x".repeat(1000)),
            Code::InvalidArgument,
            "actions[3].event_id",
        ),
        (
            "no kind",
            actions_with(&|a| a.kind = 0),
            Code::InvalidArgument,
            "actions[3].kind: must be set",
        ),
        (
            "unknown kind",
            actions_with(&|a| a.kind = 99),
            Code::InvalidArgument,
            "actions[3].kind",
        ),
        (
            "negative time",
            actions_with(&|a| a.at_unix = -5),
            Code::InvalidArgument,
            "actions[3].at_unix",
        ),
        (
            "milliseconds",
            actions_with(&|a| a.at_unix = at * 1000),
            Code::InvalidArgument,
            "actions[3].at_unix",
        ),
        (
            "too many",
            RecordActionsRequest {
                actions: (0..6).map(good).collect(),
            },
            Code::ResourceExhausted,
            "more than the limit of 5",
        ),
    ];
    for (name, request, code, needle) in corpus {
        let status = feedback.record_actions(request).await.expect_err(name);
        assert_status(name, &status, code, needle);
    }
    let restores_with = |f: &dyn Fn(&mut Restore)| {
        let mut bad = restore("r1", "t", "img/1.png", at, Some(at - 60));
        f(&mut bad);
        RecordRestoresRequest {
            restores: vec![restore("r0", "t", "img/0.png", at, None), bad],
        }
    };
    let corpus: Vec<(&str, RecordRestoresRequest, &str)> = vec![
        (
            "empty event id",
            restores_with(&|r| r.event_id.clear()),
            "restores[1].event_id",
        ),
        ("empty key", restores_with(&|r| r.key.clear()), "restores[1].key"),
        (
            "need after restore",
            restores_with(&|r| r.requested_unix = Some(at + 1)),
            "restores[1].requested_unix",
        ),
        (
            "implausible time",
            restores_with(&|r| r.at_unix = i64::MAX),
            "restores[1].at_unix",
        ),
    ];
    for (name, request, needle) in corpus {
        let status = feedback.record_restores(request).await.expect_err(name);
        assert_status(name, &status, Code::InvalidArgument, needle);
    }
    let status = feedback
        .get_precision(GetPrecisionRequest {
            verdict_class: 42,
            ..Default::default()
        })
        .await
        .expect_err("unknown class");
    assert!(status.message().starts_with("verdict_class"), "{status:?}");
    for (request, needle) in [
        (
            ListVerdictsRequest {
                from_unix: Some(at),
                to_unix: Some(at - 1),
                ..Default::default()
            },
            "to_unix",
        ),
        (
            ListVerdictsRequest {
                page_token: "not hex".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            // A token of a time listing used for a key listing.
            ListVerdictsRequest {
                key: "img/0.png".into(),
                page_token: "54".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let status = feedback.list_verdicts(request).await.expect_err(needle);
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(needle), "{status:?}");
    }
    let reset = |prefix: &str, operator: &str| ResetBreakerRequest {
        model_version: "m".into(),
        tenant: "t".into(),
        prefix: prefix.into(),
        operator: operator.into(),
        reason: "why".into(),
    };
    for (request, needle) in [
        (reset("a/b/", "alice"), "prefix"),
        (reset("img", "alice"), "prefix"),
        (reset("img/", ""), "operator"),
        (
            ResetBreakerRequest {
                model_version: String::new(),
                ..reset("img/", "alice")
            },
            "model_version",
        ),
    ] {
        let status = feedback.reset_breaker(request).await.expect_err(needle);
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(needle), "{status:?}");
    }
    // Nothing of the refused requests was written; the same events are new when sent well-formed.
    assert!(
        precision(&mut feedback, GetPrecisionRequest::default())
            .await
            .is_empty()
    );
    let ok = feedback
        .record_actions(RecordActionsRequest {
            actions: (0..4).map(good).collect(),
        })
        .await
        .expect("well-formed")
        .into_inner();
    assert_eq!((ok.accepted, ok.duplicates), (4, 0));
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn audit_retention_prunes_old_verdicts_and_keeps_young_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir.path().join("store"));
    cfg.store.audit_retention_secs = 30 * DAY;
    cfg.store.prune_interval_secs = 1;
    let server = TestServer::start_with_store(cfg, Some(default_model())).await;
    let channel = server.channel().await;
    let mut feedback = FeedbackClient::new(channel.clone());
    let old = now() - 31 * DAY;
    let young = now() - 29 * DAY;
    score_one(&channel, "t", "img/old.png", old).await;
    let kept = score_one(&channel, "t", "img/young.png", young).await;
    let everything = ListVerdictsRequest {
        from_unix: Some(0),
        ..Default::default()
    };
    let mut listed = list(&mut feedback, everything.clone()).await.verdicts;
    // The pruning runs every second in the background.
    for _ in 0..200 {
        if listed.len() < 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        listed = list(&mut feedback, everything.clone()).await.verdicts;
    }
    let ids: Vec<_> = listed
        .iter()
        .map(|a| a.verdict.as_ref().expect("verdict").verdict_id.clone())
        .collect();
    assert_eq!(
        ids,
        vec![kept.verdict_id],
        "the old verdict is pruned, the young one stays"
    );
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn buffered_audit_still_lists_every_returned_verdict_and_a_storeless_server_refuses_feedback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir.path().join("store"));
    cfg.store.audit_durability = reprieve_server::AuditDurability::Buffered;
    let server = TestServer::start_with_store(cfg.clone(), Some(default_model())).await;
    let channel = server.channel().await;
    let at = now() - DAY;
    let objects: Vec<_> = (0..50).map(|i| eligible("t", &format!("img/{i}.png"), at)).collect();
    let scored = score(&channel, objects, at).await;
    let listed = list(
        &mut FeedbackClient::new(channel.clone()),
        ListVerdictsRequest {
            from_unix: Some(at),
            to_unix: Some(at),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed.verdicts.len(), scored.verdicts.len());
    // A clean stop flushes; the records are there after a restart.
    server.stop().await.expect("clean shutdown");
    let server = TestServer::start_with_store(cfg, Some(default_model())).await;
    let listed = list(
        &mut FeedbackClient::new(server.channel().await),
        ListVerdictsRequest {
            from_unix: Some(at),
            to_unix: Some(at),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed.verdicts.len(), 50);
    server.stop().await.expect("clean shutdown");

    let storeless = TestServer::start(ServerConfig::default(), Some(default_model())).await;
    let err = FeedbackClient::new(storeless.channel().await)
        .get_precision(GetPrecisionRequest::default())
        .await
        .expect_err("no store");
    assert_eq!(err.code(), Code::FailedPrecondition);
    storeless.stop().await.expect("clean shutdown");
}

/// A client that waits for each chunk's answer before sending the next gets every answer (the server must not hold
/// an audited chunk back until the next one arrives). The timeout turns a hang into a failure; it is not a speed
/// requirement.
#[tokio::test]
async fn a_stream_client_that_waits_for_each_answer_gets_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with_store(config(&dir.path().join("store")), Some(default_model())).await;
    let mut client = ReuseScorerClient::new(server.channel().await);
    let (chunks, inbound) = tokio::sync::mpsc::channel::<ScoreStreamRequest>(1);
    let mut answers = client
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(inbound))
        .await
        .expect("stream opens")
        .into_inner();
    let at = now();
    for i in 0..3 {
        let request = ScoreStreamRequest {
            objects: vec![eligible("t", &format!("img/ping-{i}.png"), at)],
            at_unix: Some(at),
        };
        chunks.send(request).await.expect("the stream takes the chunk");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(60), answers.message())
            .await
            .unwrap_or_else(|_| panic!("no answer to chunk {i} while the client waits for it"))
            .expect("stream message")
            .expect("an answer, not the end");
        assert_eq!(answer.verdicts.len(), 1);
        assert_eq!(answer.verdicts[0].key, format!("img/ping-{i}.png"));
    }
    drop(chunks);
    assert!(answers.message().await.expect("clean end").is_none());
    server.stop().await.expect("clean shutdown");
}
