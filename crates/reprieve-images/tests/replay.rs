//! Registry events as a trace for evaluate/train: pulls by tag count for the digest the tag pointed to then, the
//! rows at a cut equal what `reprieve score` computes at that time, and nothing after a cut changes its features.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use reprieve_core::FeatureVector;
use reprieve_core::features::extract_image_with_stats;
use reprieve_core::time::{DAY, format_rfc3339, parse_rfc3339};
use reprieve_images::replay::ImageTrace;
use reprieve_images::score::{ImageJob, prepare_images};
use reprieve_images::synth::{SynthRegistry, write_registry_events};

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn event(ts: i64, action: &str, repository: &str, digest: Option<&str>, tag: Option<&str>) -> String {
    let mut target =
        format!("\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"repository\":\"{repository}\"");
    if let Some(d) = digest {
        target.push_str(&format!(",\"digest\":\"{d}\""));
    }
    if let Some(t) = tag {
        target.push_str(&format!(",\"tag\":\"{t}\""));
    }
    format!(
        "{{\"events\":[{{\"timestamp\":\"{}\",\"action\":\"{action}\",\"target\":{{{target}}}}}]}}",
        format_rfc3339(ts)
    )
}

fn write(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).expect("create");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

fn load(path: &Path) -> ImageTrace {
    ImageTrace::load(&[path.to_path_buf()], "", true).expect("loads").0
}

/// Features and labels of a cut, by image key.
fn rows(trace: &ImageTrace, at: i64, horizon: i64) -> BTreeMap<String, (FeatureVector, i64, bool)> {
    trace
        .build_cut(at, horizon)
        .rows
        .into_iter()
        .map(|r| {
            let key = trace.key_of(r.object).expect("key").to_owned();
            (key, (r.features, r.idle_secs, r.reused))
        })
        .collect()
}

#[test]
fn pulls_by_tag_count_for_the_digest_the_tag_pointed_to_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let t0 = parse_rfc3339("2025-01-01T00:00:00Z").expect("time");
    write(
        &path,
        &[
            event(t0, "push", "app", Some(A), Some("latest")),
            event(t0 + DAY, "pull", "app", None, Some("latest")),
            event(t0 + 10 * DAY, "push", "app", Some(B), Some("latest")),
            // The same second as a move: the new digest (as the registry resolves it).
            event(t0 + 10 * DAY, "pull", "app", None, Some("latest")),
            event(t0 + 12 * DAY, "pull", "app", None, Some("latest")),
            event(t0 + 13 * DAY, "pull", "app", Some(A), None),
        ],
    );
    let trace = load(&path);
    assert_eq!((trace.images(), trace.pulls(), trace.unresolved_pulls), (2, 4, 0));
    let a = format!("app@{A}");
    let b = format!("app@{B}");

    // Before B exists: A alone, tagged latest, and its label ignores the pulls of B in the window.
    let before = trace.at(t0 + 5 * DAY);
    assert_eq!(before.images.len(), 1);
    assert_eq!(before.images[0].facts.tags, vec!["latest"]);
    assert_eq!(before.images[0].facts.pulls_by_tag, 1);
    let cut = rows(&trace, t0 + 5 * DAY, 7 * DAY);
    assert!(!cut[&a].2, "the pull at day 10 served B, not A");
    let cut = rows(&trace, t0 + 5 * DAY, 9 * DAY);
    assert!(cut[&a].2, "A is pulled by digest on day 13");

    // After the move: latest is B's, A keeps its history.
    let after = trace.at(t0 + 20 * DAY);
    let image = |key: &str| after.images.iter().find(|i| i.record.key == key).expect(key);
    assert!(image(&a).facts.tags.is_empty());
    assert_eq!((image(&a).facts.pulls_by_tag, image(&a).facts.pulls_by_digest), (1, 1));
    assert_eq!(image(&b).facts.tags, vec!["latest"]);
    assert_eq!(image(&b).facts.newest_tag_at, Some(t0 + 10 * DAY));
    assert_eq!((image(&b).facts.pulls_by_tag, image(&b).stats.count), (2, 2));
    assert_eq!(image(&b).record.created, Some(t0 + 10 * DAY));

    // Sizes come from an ECR listing, and only sizes: its tags and last pull are of today.
    let ecr = dir.path().join("ecr.json");
    std::fs::write(
        &ecr,
        format!(
            "{{\"imageDetails\": [{{\"repositoryName\": \"app\", \"imageDigest\": \"{A}\", \"imageSizeInBytes\": \
             5000, \"imageTags\": [\"v9\"], \"lastRecordedPullTime\": {}}}, {{\"repositoryName\": \"other\", \
             \"imageDigest\": \"{B}\", \"imageSizeInBytes\": 7}}]}}",
            t0 + 19 * DAY
        ),
    )
    .expect("write");
    let mut sized = load(&path);
    let (_, known) = sized.add_sizes(&[ecr], true).expect("sizes");
    assert_eq!(known, 1);
    let cut = sized.build_cut(t0 + 20 * DAY, 7 * DAY);
    let id = sized.id(&a).expect("a");
    let row = cut.rows.iter().find(|r| r.object == id).expect("row of a");
    assert_eq!(row.size, 5000);
    let plain = trace.build_cut(t0 + 20 * DAY, 7 * DAY);
    let plain_row = plain.rows.iter().find(|r| r.object == id).expect("row of a");
    assert_eq!(plain_row.size, 0);
    for &f in reprieve_core::Feature::ALL {
        if !matches!(f, reprieve_core::Feature::SizeLog | reprieve_core::Feature::SizeKnown) {
            assert_eq!(
                row.features.get(f),
                plain_row.features.get(f),
                "{f:?}: only the size may change"
            );
        }
    }
}

#[test]
fn rows_at_a_cut_are_what_reprieve_score_computes_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let config = SynthRegistry {
        repositories: 16,
        days: 70,
        ..SynthRegistry::default()
    };
    write_registry_events(&config, &path).expect("written");
    let trace = load(&path);
    let at = config.start + 45 * DAY + 3_600;
    let mut job = ImageJob::new(at, dir.path().join("scores.csv"));
    job.registry_events = vec![path.clone()];
    job.history_complete_since = Some(trace.log_start);
    let (built, _) = prepare_images(&job).expect("prepared");
    let cut = rows(&trace, at, 14 * DAY);
    assert_eq!(cut.len(), built.images.len());
    assert!(cut.len() > 50, "{}", cut.len());
    for image in &built.images {
        let features = extract_image_with_stats(&image.record, &image.stats, Some(&image.facts));
        assert_eq!(cut[&image.record.key].0, features, "{}", image.record.key);
    }
    // Some were pulled again and some were not: the labels carry information.
    assert!(cut.values().any(|r| r.2) && cut.values().any(|r| !r.2));
}

/// An event after the cut, drawn from the trace's own repositories, tags and digests, and new ones.
fn later_event() -> impl Strategy<Value = (i64, u8, u8, u8, u8)> {
    (0..30 * DAY, 0u8..4, 0u8..16, 0u8..8, 0u8..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Replacing everything at or after a cut (pushes that retag, pulls by tag and by digest, deletes of tags and
    /// digests, new repositories) never changes a feature or the idle time at the cut: only labels may change.
    #[test]
    fn events_after_a_cut_never_change_its_features(
        seed in 0u64..1_000,
        cut_day in 20i64..60,
        later in proptest::collection::vec(later_event(), 1..60),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = SynthRegistry { repositories: 12, days: 70, seed, ..SynthRegistry::default() };
        let base = dir.path().join("base.jsonl");
        write_registry_events(&config, &base).expect("written");
        let at = config.start + cut_day * DAY;
        let original = load(&base);
        let before = rows(&original, at, 14 * DAY);

        // The same history up to the cut, then another future.
        let text = std::fs::read_to_string(&base).expect("read");
        let mut lines: Vec<String> = Vec::new();
        let mut keys: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let e = &v["events"][0];
            let ts = parse_rfc3339(e["timestamp"].as_str().expect("ts")).expect("time");
            let target = &e["target"];
            if let (Some(r), Some(d)) = (target["repository"].as_str(), target["digest"].as_str()) {
                keys.push((r.to_owned(), d.to_owned()));
            }
            if ts < at {
                lines.push(line.to_owned());
            }
        }
        for (dt, action, who, tag, digest) in later {
            let (repository, known) = keys[usize::from(who) * 7919 % keys.len()].clone();
            let repository = if who % 5 == 4 { format!("new/{repository}") } else { repository };
            let tag = ["latest", "1.1.0", "2024.02", "stable", "pr-7", "main"][usize::from(tag) % 6];
            let d = if digest % 2 == 0 { known } else { format!("sha256:{:064x}", digest) };
            let ts = at + dt;
            lines.push(match action {
                0 => event(ts, "push", &repository, Some(&d), Some(tag)),
                1 => event(ts, "pull", &repository, None, Some(tag)),
                2 => event(ts, "pull", &repository, Some(&d), None),
                _ if digest % 3 == 0 => event(ts, "delete", &repository, None, Some(tag)),
                _ => event(ts, "delete", &repository, Some(&d), None),
            });
        }
        let altered = dir.path().join("altered.jsonl");
        write(&altered, &lines);
        let after = rows(&load(&altered), at, 14 * DAY);

        prop_assert_eq!(before.len(), after.len());
        for (key, (features, idle, _)) in &before {
            let other = after.get(key);
            prop_assert!(other.is_some(), "{} missing after the alteration", key);
            let (f2, idle2, _) = other.expect("checked");
            prop_assert_eq!(features, f2, "features of {} changed", key);
            prop_assert_eq!(idle, idle2);
        }
    }
}
