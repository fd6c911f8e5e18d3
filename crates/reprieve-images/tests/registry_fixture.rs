//! A small, realistic registry (fixtures written in the registries' and kubectl's own formats): a CronJob's image
//! pulled monthly, an image pulled only by digest, a retagged `latest`, and a multi-arch index with children. None
//! of the live ones may get ARCHIVE or DELETE_CANDIDATE, and the report must say why each was held back.

use std::path::PathBuf;
use std::sync::Arc;

use reprieve_batch::score::score_image_with_stats;
use reprieve_core::time::parse_rfc3339;
use reprieve_core::{ImageFacts, PolicyConfig, ReasonCode, ScopeState, VerdictClass};
use reprieve_images::score::{ImageJob, prepare_images, run_image_score};
use reprieve_model::{Engine, Model};

const MONTH_END: &str = "finance/month-end@sha256:a2b289be59d698748a486b00d10b1096276ef874ee423ecf141e5ec07384d1ca";
const AGENT: &str = "platform/agent@sha256:d4f0bc5a29de06b510f9aa428f1eedba926012b591fef7a518e776a7c9bd1824";
const WEB_OLD: &str = "shop/web@sha256:8cce6b5317e9ac54ca00cdf56f0f00ee81185b4da7494dea0ca57bb33e3957bf";
const WEB_NEW: &str = "shop/web@sha256:9db548b5c64581c05793afc94366b6deb4994e448e806d2b48e491bd1eabe1a3";
const BASE_INDEX: &str = "platform/base@sha256:3f4fcca46810f56a86c8545acb438dffa5a08b8b8ac3ddb943746d795e9c5578";
const BASE_AMD64: &str = "platform/base@sha256:9dd8df1ec2d6f4ab4ee414bedfebce67a4d2071e155234b8985eabc3dbdb1212";
const BASE_ARM64: &str = "platform/base@sha256:6da4572a3b959f0e4e683df21dd9a129b7869408a7b29253441e049e6016edc8";
const LEGACY: &str = "legacy/report-tool@sha256:c49fea7425fa7f8699897a97c159c6690267d9003bb78c53fafa8fc15c325d84";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn at() -> i64 {
    parse_rfc3339("2025-07-01T00:00:00Z").expect("time")
}

fn job(dir: &std::path::Path) -> ImageJob {
    let mut job = ImageJob::new(at(), dir.join("scores.csv"));
    job.registry_events = vec![fixture("registry-events.jsonl")];
    job.ecr_images = vec![fixture("ecr-images.json")];
    job.kubernetes = vec![fixture("cluster.yaml"), fixture("pods.json")];
    job.report = Some(dir.join("report.md"));
    job
}

/// The bundled model, with a policy that does not cap unowned images (registries name no owners), so that only
/// the live references stand between an image and a verdict that lets it go.
fn engine() -> Engine {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/default.json");
    let model = Model::load(&path).expect("the bundled model loads");
    Engine::new(
        Arc::new(model),
        PolicyConfig {
            require_owner: false,
            ..PolicyConfig::default()
        },
    )
}

#[test]
fn identity_tags_and_pulls_resolve_to_digests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (built, reports) = prepare_images(&job(dir.path())).expect("prepared");
    let image = |key: &str| {
        built
            .images
            .iter()
            .find(|i| i.record.key == key)
            .unwrap_or_else(|| panic!("{key} scored"))
    };
    let keys: Vec<&str> = built.images.iter().map(|i| i.record.key.as_str()).collect();
    assert_eq!(keys.len(), 8, "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.contains("1e5f257f")),
        "a layer blob is not an image"
    );

    // The retag moved `latest`: pulls by tag count for the digest the tag pointed to then, including the two pulls
    // that named the tag only.
    let (old, new) = (image(WEB_OLD), image(WEB_NEW));
    assert_eq!(old.facts.tags, Vec::<String>::new());
    assert_eq!(new.facts.tags, vec!["latest"]);
    assert_eq!((old.facts.pulls_by_tag, old.stats.count), (31, 31));
    assert_eq!(new.facts.pulls_by_tag, 37);
    assert!(
        old.live.is_empty(),
        "the old latest is referenced by nothing now: {:?}",
        old.live
    );

    let agent = image(AGENT);
    assert_eq!((agent.facts.pulls_by_digest, agent.facts.pulls_by_tag), (4, 0));

    // ECR's listing and the events describe the same image; the ECR last pull is the event's, not another read.
    let month_end = image(MONTH_END);
    assert_eq!(month_end.stats.count, 12);
    assert_eq!(month_end.record.size, Some(187_654_321));
    assert_eq!(month_end.record.created, parse_rfc3339("2024-06-20T14:02:11Z"));
    let schedule = month_end.facts.schedule.expect("the CronJob's schedule");
    assert_eq!(Some(schedule.next_run), parse_rfc3339("2025-07-01T03:00:00Z"));
    assert_eq!(schedule.period_secs, 31 * 86_400);

    let index = image(BASE_INDEX);
    assert!(index.facts.is_index);
    assert_eq!(index.children, vec![BASE_AMD64, BASE_ARM64]);

    // Bad records are counted, per file, like the log readers do.
    let malformed: Vec<(String, u64)> = reports
        .iter()
        .map(|r| {
            (
                r.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                r.malformed,
            )
        })
        .collect();
    assert_eq!(
        malformed,
        vec![
            ("ecr-images.json".to_owned(), 1),
            ("registry-events.jsonl".to_owned(), 2),
            ("cluster.yaml".to_owned(), 1),
            ("pods.json".to_owned(), 0)
        ]
    );
    for r in &reports {
        assert_eq!(r.lines, r.events + r.ignored + r.malformed, "{r:?}");
    }
    let unresolved: Vec<&str> = built.unresolved.iter().map(|u| u.image.as_str()).collect();
    assert_eq!(unresolved, vec!["busybox:1.36", "nginx:1.27"]);
}

#[test]
fn live_images_are_retained_and_the_report_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = job(dir.path());
    let result = run_image_score(&job, &engine(), None).expect("scored");
    let images = &result.images;
    let held = |key: &str| {
        images
            .held_by_reference
            .iter()
            .find(|h| h.key == key)
            .unwrap_or_else(|| panic!("{key} held back: {:?}", images.held_by_reference))
    };
    for key in [MONTH_END, AGENT, WEB_NEW, BASE_INDEX, BASE_AMD64, BASE_ARM64] {
        let h = held(key);
        assert_eq!(h.class, VerdictClass::Retain, "{key}");
        assert!(h.reasons.contains(&ReasonCode::LiveReference), "{key}: {:?}", h.reasons);
    }
    assert_eq!(images.held_by_reference.len(), 6);
    let describe = |key: &str| -> Vec<String> {
        held(key)
            .references
            .iter()
            .map(|r| format!("{} [{}] {}", r.object, r.container, r.how))
            .collect()
    };
    assert_eq!(
        describe(MONTH_END),
        vec!["CronJob finance/month-end-close [close] tag 2024.06"]
    );
    assert_eq!(
        held(MONTH_END).next_scheduled_run,
        parse_rfc3339("2025-07-01T03:00:00Z")
    );
    assert_eq!(
        describe(AGENT),
        vec![
            "Pod monitoring/agent-7x2kq [agent] digest",
            "Pod monitoring/agent-7x2kq [status:agent] running (pod status)"
        ]
    );
    assert_eq!(describe(WEB_NEW), vec!["Deployment shop/web [web] tag latest"]);
    assert_eq!(
        describe(BASE_INDEX),
        vec!["DaemonSet kube-system/node-base [base] tag 1.0"]
    );
    assert_eq!(
        describe(BASE_AMD64),
        vec![format!("ImageIndex/{BASE_INDEX} [] child of index")]
    );
    for g in &images.let_go {
        assert!(![MONTH_END, AGENT, WEB_NEW, BASE_INDEX, BASE_AMD64, BASE_ARM64].contains(&g.key.as_str()));
    }

    // The scores file: every live image RETAIN with LIVE_REFERENCE first among its reasons.
    let scores = std::fs::read_to_string(dir.path().join("scores.csv")).expect("scores");
    assert_eq!(scores.lines().count(), 1 + 8);
    for key in [MONTH_END, AGENT, WEB_NEW, BASE_INDEX, BASE_AMD64, BASE_ARM64] {
        let row = scores.lines().find(|l| l.contains(key)).expect("row");
        assert!(row.contains(",RETAIN,LIVE_REFERENCE"), "{row}");
    }
    for key in [WEB_OLD, LEGACY] {
        let row = scores.lines().find(|l| l.contains(key)).expect("row");
        assert!(!row.contains("LIVE_REFERENCE"), "{row}");
    }

    // The reports: Markdown and JSON say the same.
    let md = std::fs::read_to_string(dir.path().join("report.md")).expect("report");
    for needle in [
        "## Container images",
        "CronJob finance/month-end-close (close)",
        "2025-07-01T03:00:00Z",
        "child of index",
        "running (pod status)",
        "| `nginx:1.27` | repository not in the inventory |",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).expect("json")).expect("parses");
    assert_eq!(json["images"]["held_by_reference"].as_array().map(Vec::len), Some(6));
    assert_eq!(json["objects_scored"], 8);
}

#[test]
fn without_image_facts_the_image_scorer_is_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (built, _) = prepare_images(&job(dir.path())).expect("prepared");
    let engine = engine();
    for image in &built.images {
        let plain = engine.score_with_stats(&image.record, &image.stats, ScopeState::default());
        let with = score_image_with_stats(
            &engine,
            &image.record,
            &image.stats,
            &ImageFacts::default(),
            ScopeState::default(),
        );
        assert_eq!(plain.verdict, with.verdict);
        assert_eq!(plain.features, with.features);
    }
}
