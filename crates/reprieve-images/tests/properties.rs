//! Property tests of the container-image front door: whatever the registry's history and the cluster's
//! references, no image a workload references (by digest, by the tag's current digest, as an index's child) is
//! ever let go; and the readers never panic on arbitrary input and keep their counts straight.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use reprieve_core::policy::decide;
use reprieve_core::{PolicyConfig, ReasonCode, ScopeState, Thresholds, VerdictClass};
use reprieve_images::cron::Schedule;
use reprieve_images::ecr::read_ecr_images;
use reprieve_images::events::{Action, RegistryEvent, read_registry_events};
use reprieve_images::kube::{CronSpec, ImageUse, KubeObject, read_kubernetes};
use reprieve_images::reference::{ImageRef, parse_reference};
use reprieve_images::registry::Registry;
use std::borrow::Cow;

const AT: i64 = 1_750_000_000;
const DAY: i64 = 86_400;
const REPOS: [&str; 3] = ["team/app", "team/job", "library/base"];
const TAGS: [&str; 4] = ["latest", "1.0", "main", "2024.06"];

fn digest(i: u8) -> String {
    format!("sha256:{:064x}", u128::from(i) + 1)
}

/// One event of a random history: (action 0 push / 1 pull / 2 tag delete / 3 digest delete, repo, digest, tag,
/// time offset, is index, children).
type RawEvent = (u8, usize, u8, Option<usize>, i64, bool, Vec<u8>);

fn raw_event() -> impl Strategy<Value = RawEvent> {
    (
        0u8..4,
        0usize..REPOS.len(),
        0u8..6,
        proptest::option::of(0usize..TAGS.len()),
        -400 * DAY..10 * DAY,
        proptest::bool::weighted(0.15),
        proptest::collection::vec(0u8..6, 0..3),
    )
}

/// A reference: (repo, by digest?, digest, tag, also a CronJob?).
type RawUse = (usize, bool, u8, usize, bool);

fn raw_use() -> impl Strategy<Value = RawUse> {
    (
        0usize..REPOS.len(),
        any::<bool>(),
        0u8..6,
        0usize..TAGS.len(),
        any::<bool>(),
    )
}

fn event_of(e: &RawEvent) -> RegistryEvent<'static> {
    let (kind, repo, d, tag, offset, index, children) = e;
    let action = match kind {
        0 => Action::Push,
        1 => Action::Pull,
        _ => Action::Delete,
    };
    let tag = match kind {
        3 => None,
        2 => Some(tag.unwrap_or(0)),
        _ => *tag,
    };
    RegistryEvent {
        action,
        ts: AT + offset,
        repository: Cow::Borrowed(REPOS[*repo]),
        digest: (*kind != 2).then(|| Cow::Owned(digest(*d))),
        tag: tag.map(|t| Cow::Borrowed(TAGS[t])),
        media_type: Some(Cow::Borrowed(if *index && *kind == 0 {
            "application/vnd.oci.image.index.v1+json"
        } else {
            "application/vnd.oci.image.manifest.v1+json"
        })),
        references: if *index && *kind == 0 {
            children
                .iter()
                .filter(|&&c| c != *d)
                .map(|&c| (Cow::Owned(digest(c)), None))
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn use_of(u: &RawUse, i: usize) -> ImageUse {
    let (repo, by_digest, d, tag, cron) = u;
    let image = if *by_digest {
        format!("registry.example.com/{}@{}", REPOS[*repo], digest(*d))
    } else {
        format!("registry.example.com/{}:{}", REPOS[*repo], TAGS[*tag])
    };
    ImageUse {
        object: KubeObject {
            kind: if *cron { "CronJob" } else { "Deployment" }.to_owned(),
            namespace: "ns".to_owned(),
            name: format!("w{i}"),
        },
        container: "c".to_owned(),
        reference: parse_reference(&image).unwrap_or_else(|e| ImageRef {
            registry: e,
            repository: String::new(),
            tag: None,
            digest: None,
        }),
        image,
        cron: cron.then(|| CronSpec {
            schedule: "0 3 1 * *".to_owned(),
            time_zone: None,
            suspended: false,
        }),
        source: "generated".to_owned(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The oracle is deliberately naive: a reference by digest keeps that digest; a reference by tag keeps the
    /// digest of the tag's last push before the scoring time (unless a later tag delete removed it); an index
    /// keeps the children it was pushed with. Every scored image the oracle calls live must be RETAIN with
    /// LIVE_REFERENCE, under thresholds that would delete everything else.
    #[test]
    fn referenced_images_are_never_let_go(
        events in proptest::collection::vec(raw_event(), 0..60),
        uses in proptest::collection::vec(raw_use(), 0..8),
        probability in 0.0f64..1.0,
    ) {
        let mut registry = Registry::new(AT, "");
        let mut parsed: Vec<RegistryEvent<'static>> = events.iter().map(event_of).collect();
        // Arrival order is not time order: the registry must not care.
        for e in &parsed {
            registry.observe(e);
        }
        for (i, u) in uses.iter().enumerate() {
            registry.add_use(use_of(u, i));
        }
        let built = registry.build(Some(AT - 500 * DAY), 0);

        parsed.sort_by_key(|e| e.ts);
        let mut live: BTreeSet<String> = BTreeSet::new();
        for (repo, by_digest, d, tag, _) in &uses {
            if *by_digest {
                live.insert(format!("{}@{}", REPOS[*repo], digest(*d)));
            } else {
                let mut current: Option<String> = None;
                for e in parsed.iter().filter(|e| e.ts < AT && e.repository == REPOS[*repo]) {
                    if e.tag.as_deref() == Some(TAGS[*tag]) {
                        match e.action {
                            Action::Push => current = e.digest.as_ref().map(|d| d.to_string()),
                            Action::Delete => current = None,
                            Action::Pull => {}
                        }
                    }
                }
                if let Some(d) = current {
                    live.insert(format!("{}@{d}", REPOS[*repo]));
                }
            }
        }
        let scored: BTreeMap<&str, _> = built.images.iter().map(|i| (i.record.key.as_str(), i)).collect();
        for e in parsed.iter().filter(|e| e.ts < AT && !e.references.is_empty()) {
            let index = format!("{}@{}", e.repository, e.digest.as_deref().unwrap_or(""));
            if scored.contains_key(index.as_str()) {
                for (c, _) in &e.references {
                    live.insert(format!("{}@{c}", e.repository));
                }
            }
        }

        let config = PolicyConfig { min_age_secs: 0, min_history_secs: 0, require_owner: false };
        let let_everything_go = Thresholds { delete_max: 1.0, archive_max: 1.0, retain_min: 1.0 };
        for image in &built.images {
            let d = decide(&config, &let_everything_go, &image.record, probability, AT, ScopeState::default());
            let key = image.record.key.as_str();
            if live.contains(key) {
                prop_assert_eq!(d.class, VerdictClass::Retain, "{} is live: {:?}", key, image.live);
                prop_assert!(d.reasons.contains(&ReasonCode::LiveReference));
            }
            if image.record.live_references == 0 {
                prop_assert!(image.live.is_empty());
            }
        }
    }

    #[test]
    fn readers_never_panic_and_keep_their_counts(text in ".{0,400}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (name, content) in [("a.jsonl", text.as_bytes().to_vec()), ("b.yaml", bytes.clone()), ("c.json", bytes)] {
            let path = dir.path().join(name);
            std::fs::write(&path, &content).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Ok(r) = read_registry_events(&path, false, |_| {}) {
                prop_assert_eq!(r.lines, r.events + r.ignored + r.malformed);
            }
            if let Ok(r) = read_kubernetes(&path, false, |_| {}) {
                prop_assert_eq!(r.lines, r.events + r.ignored + r.malformed);
            }
            let _ = read_ecr_images(&path, false, |_| {});
        }
        let _ = parse_reference(&text);
        if let Ok((s, _)) = Schedule::parse(&text) {
            let _ = s.next_and_period(AT);
        }
    }

    #[test]
    fn json_shaped_garbage_is_counted_not_fatal(
        action in prop_oneof![Just("push".to_string()), Just("pull".to_string()), Just("delete".to_string()), "[a-z]{0,6}"],
        ts in prop_oneof![Just("2025-01-01T00:00:00Z".to_string()), "[0-9TZ:.-]{0,25}", ".{0,12}"],
        repo in prop_oneof![Just("team/app".to_string()), ".{0,10}"],
        dg in prop_oneof![Just(digest(1)), "sha256:[0-9a-f]{0,70}", ".{0,10}"],
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("e.jsonl");
        let line = serde_json::json!({"events": [{"action": action, "timestamp": ts, "target": {"repository": repo, "digest": dg}}]});
        std::fs::write(&path, format!("{line}\n{line}\n")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let r = read_registry_events(&path, false, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.lines, 2);
        prop_assert_eq!(r.lines, r.events + r.ignored + r.malformed);
    }
}
