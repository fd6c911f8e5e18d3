//! Property tests of the core's promises: finite features for any input, no look-ahead, and a policy that never
//! lets an object go against a hard rule.

use proptest::prelude::*;
use reprieve_core::features::{Feature, extract, extract_image_with_stats};
use reprieve_core::policy::decide;
use reprieve_core::{
    AccessSummary, HistoryStats, ImageFacts, ObjectRecord, PolicyConfig, PrefixActivity, ReasonCode, ScheduleFacts,
    ScopeState, StorageClass, Thresholds, VerdictClass,
};

const DAY: i64 = 86_400;
const AT: i64 = 1_750_000_000;

fn time_near_at() -> impl Strategy<Value = i64> {
    prop_oneof![
        (AT - 3 * 365 * DAY..AT + 30 * DAY),
        (AT - 10 * DAY..AT + DAY),
        Just(AT),
        Just(0i64),
        (-10 * DAY..10 * DAY),
    ]
}

fn storage_class() -> impl Strategy<Value = StorageClass> {
    prop_oneof![
        Just(StorageClass::Unspecified),
        Just(StorageClass::Standard),
        Just(StorageClass::StandardIa),
        Just(StorageClass::Glacier),
        Just(StorageClass::DeepArchive),
        Just(StorageClass::Other),
    ]
}

fn prefix_activity() -> impl Strategy<Value = Option<PrefixActivity>> {
    proptest::option::of(
        (
            0u64..1_000_000,
            0u64..1_000_000,
            0u64..u64::MAX / 4,
            proptest::option::of(time_near_at()),
            0u32..=128,
            proptest::option::of(time_near_at()),
        )
            .prop_map(|(objects, read, reads, last_read, bulk, last_bulk)| PrefixActivity {
                objects,
                objects_read_30d: read.min(objects),
                reads_7d: reads / 2,
                reads_30d: reads,
                last_read,
                bulk_scan_days_128d: bulk,
                last_bulk_scan: last_bulk,
            }),
    )
}

const KEYS: &[&str] = &[
    "",
    "a",
    "/",
    "//x//",
    "cdn/xmas-2019/banner_300x200@2x.jpg",
    "tmp/backup/old/thumb.png.bak",
    "reg.io/team/app:latest@sha256:0123456789abcdef0123456789abcdef",
    "models/v1.2.3/w.safetensors",
    "ünïcødé/路径/ファイル.webp",
    "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p",
];

prop_compose! {
    fn record()(
        key in proptest::sample::select(KEYS),
        suffix in "[a-z0-9_./-]{0,40}",
        size in proptest::option::of(prop_oneof![Just(0u64), any::<u64>(), 0u64..10_000_000]),
        created in proptest::option::of(time_near_at()),
        modified in proptest::option::of(time_near_at()),
        storage_class in storage_class(),
        accesses in proptest::collection::vec(time_near_at(), 0..60),
        summary in proptest::option::of((0u64..u64::MAX / 2, proptest::option::of(time_near_at()), proptest::option::of(time_near_at()))),
        complete_since in proptest::option::of(time_near_at()),
        parent in prefix_activity(),
        top in prefix_activity(),
        content_type in proptest::option::of(prop_oneof![Just("image/png".to_string()), Just("".to_string()), "[a-z/;+.]{0,20}"]),
    ) -> ObjectRecord {
        let mut accesses = accesses;
        accesses.sort_unstable();
        let mut r = ObjectRecord::with_key(format!("{key}{suffix}"));
        r.size = size;
        r.created = created;
        r.modified = modified;
        r.storage_class = storage_class;
        r.content_type = content_type;
        r.history.accesses = accesses;
        r.history.summary = summary.map(|(count, first, last)| AccessSummary { count, first, last });
        r.history.complete_since = complete_since;
        r.parent_activity = parent;
        r.top_activity = top;
        r
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn features_are_always_finite(r in record(), at in time_near_at()) {
        let v = extract(&r, at);
        for (i, x) in v.values().iter().enumerate() {
            prop_assert!(x.is_finite(), "feature {} = {}", Feature::ALL[i].name(), x);
            prop_assert!(x.abs() <= 1e3, "feature {} = {} is unbounded", Feature::ALL[i].name(), x);
        }
    }

    #[test]
    fn features_ignore_reads_at_or_after_the_scoring_time(
        r in record(),
        at in time_near_at(),
        later in proptest::collection::vec(0i64..400 * DAY, 0..50),
    ) {
        let before = extract(&r, at);
        let mut altered = r.clone();
        // Drop every read at or after `at`, then add different ones.
        altered.history.accesses.retain(|&t| t < at);
        altered.history.accesses.extend(later.iter().map(|d| at + d));
        altered.history.accesses.sort_unstable();
        prop_assert_eq!(before, extract(&altered, at));
    }
}

fn thresholds() -> impl Strategy<Value = Thresholds> {
    (0.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0).prop_map(|(a, b, c)| {
        let mut t = [a, b, c];
        t.sort_by(f64::total_cmp);
        Thresholds {
            delete_max: t[0],
            archive_max: t[1],
            retain_min: t[2],
        }
    })
}

fn past_time() -> impl Strategy<Value = i64> {
    prop_oneof![4 => AT - 3 * 365 * DAY..AT, 1 => time_near_at()]
}

prop_compose! {
    // Weighted towards records that pass the hard rules, so that plenty of verdicts reach the score.
    fn policy_record()(
        legal_hold in proptest::bool::weighted(0.15),
        retain_until in proptest::option::weighted(0.3, time_near_at()),
        live_references in prop_oneof![4 => Just(0u32), 1 => any::<u32>()],
        created in proptest::option::weighted(0.85, past_time()),
        first_access in proptest::option::of(past_time()),
        complete_since in proptest::option::weighted(0.85, past_time()),
        owner in proptest::option::weighted(0.85, prop_oneof![Just(String::new()), Just("  ".to_string()), "[a-z]{1,8}"]),
    ) -> ObjectRecord {
        let mut r = ObjectRecord::with_key("k/x.png");
        r.legal_hold = legal_hold;
        r.retain_until = retain_until;
        r.live_references = live_references;
        r.created = created;
        r.history.accesses = first_access.into_iter().collect();
        r.history.complete_since = complete_since;
        r.owner = owner;
        r
    }
}

/// The policy is the product's promise: 100,000 random records and not one let go against a hard rule. The run
/// also counts how many verdicts did let go, so that the test cannot pass by never exercising that branch.
#[test]
fn policy_never_lets_go_against_a_hard_rule() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::Cell;

    let cases = (
        policy_record(),
        prop_oneof![8 => 0.0f64..1.0, 1 => Just(0.0), 1 => Just(f64::NAN), 1 => Just(-1.0), 1 => Just(2.0)],
        thresholds(),
        prop_oneof![3 => Just(AT), 1 => time_near_at()],
        (any::<bool>(), proptest::bool::weighted(0.2)),
        (0i64..120, 0i64..120, any::<bool>()),
    );
    let let_go = Cell::new(0u32);
    let deletes = Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 100_000,
        ..Config::default()
    });
    let result = runner.run(
        &cases,
        |(r, p, t, at, (breaker_open, out_of_domain), (min_age_days, min_history_days, require_owner))| {
            let config = PolicyConfig {
                min_age_secs: min_age_days * DAY,
                min_history_secs: min_history_days * DAY,
                require_owner,
            };
            let d = decide(
                &config,
                &t,
                &r,
                p,
                at,
                ScopeState {
                    breaker_open,
                    out_of_domain,
                },
            );
            // Every verdict carries exactly one score reason, last.
            prop_assert!(!d.reasons.last().copied().is_some_and(ReasonCode::is_hard_rule));
            if d.class.lets_go() {
                let_go.set(let_go.get() + 1);
                prop_assert!(!r.legal_hold);
                prop_assert!(r.retain_until.is_none_or(|u| u <= at));
                prop_assert_eq!(r.live_references, 0);
                prop_assert!(!out_of_domain);
                let born = r
                    .created
                    .or(r.history.accesses.first().copied())
                    .or(r.history.complete_since);
                prop_assert!(born.is_some_and(|b| at - b >= config.min_age_secs));
                prop_assert!(
                    r.history
                        .complete_since
                        .is_some_and(|s| at - s >= config.min_history_secs)
                );
                if require_owner {
                    prop_assert!(r.owner.as_deref().is_some_and(|o| !o.trim().is_empty()));
                }
                prop_assert!(p.is_finite() && p <= t.archive_max.max(0.0));
                prop_assert!(d.reasons.iter().all(|r| !r.is_hard_rule()));
            }
            if d.class == VerdictClass::DeleteCandidate {
                deletes.set(deletes.get() + 1);
                prop_assert!(!breaker_open);
                prop_assert!(p <= t.delete_max.max(0.0));
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        let_go.get() > 1_000,
        "only {} of 100,000 verdicts let an object go",
        let_go.get()
    );
    assert!(deletes.get() > 100, "only {} delete candidates", deletes.get());
}

#[test]
fn a_million_reads_stay_finite() {
    let mut r = ObjectRecord::with_key("hot/logo.png");
    r.history.accesses = (0..1_000_000i64).map(|i| AT - 1_000_000 + i).collect();
    r.history.complete_since = Some(AT - 400 * DAY);
    let v = extract(&r, AT);
    assert!(v.values().iter().all(|x| x.is_finite()));
    assert!(v.get(Feature::ReadsTotalLog) > 13.0);
}

prop_compose! {
    fn image_facts()(
        tags in proptest::collection::vec(prop_oneof![
            Just("latest".to_string()), Just("1.2.3".to_string()), Just("main-3f2a9c0".to_string()),
            Just("20240115".to_string()), Just("build-42".to_string()), ".{0,20}"
        ], 0..6),
        newest_tag_at in proptest::option::of(time_near_at()),
        pulls_by_tag in prop_oneof![Just(0u64), any::<u64>()],
        pulls_by_digest in prop_oneof![Just(0u64), any::<u64>()],
        is_index in any::<bool>(),
        schedule in proptest::option::of((time_near_at(), prop_oneof![Just(0i64), any::<i64>(), 60i64..400 * DAY])),
    ) -> ImageFacts {
        ImageFacts {
            tags,
            newest_tag_at,
            pulls_by_tag,
            pulls_by_digest,
            is_index,
            schedule: schedule.map(|(next_run, period_secs)| ScheduleFacts { next_run, period_secs }),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Container images keep the same guarantees as files: bounded features for any registry facts, and a live
    /// reference (a workload naming the image, an index listing it) is never let go, whatever the score and the
    /// thresholds.
    #[test]
    fn images_with_live_references_are_never_let_go(
        r in record(),
        facts in image_facts(),
        refs in 1u32..=u32::MAX,
        at in time_near_at(),
        p in prop_oneof![0.0f64..=1.0, Just(f64::NAN), Just(-1.0), Just(0.0)],
        delete_max in -1.0f64..=1.0,
        breaker in any::<bool>(),
    ) {
        let mut r = r;
        r.key = format!("registry.example.com/team/app@sha256:{:064x}", r.key.len());
        r.content_type = Some("application/vnd.oci.image.manifest.v1+json".to_string());
        r.live_references = refs;
        let v = extract_image_with_stats(&r, &HistoryStats::from_history(&r.history, at), Some(&facts));
        for (i, x) in v.values().iter().enumerate() {
            prop_assert!(x.is_finite() && x.abs() <= 1e3, "feature {} = {}", Feature::ALL[i].name(), x);
        }
        let t = Thresholds { delete_max, archive_max: delete_max.max(0.0), retain_min: 1.0 };
        let config = PolicyConfig { min_age_secs: 0, min_history_secs: 0, require_owner: false };
        let scope = ScopeState { breaker_open: breaker, out_of_domain: false };
        let d = decide(&config, &t, &r, p, at, scope);
        prop_assert_eq!(d.class, VerdictClass::Retain);
        prop_assert!(d.reasons.contains(&ReasonCode::LiveReference));
    }
}
