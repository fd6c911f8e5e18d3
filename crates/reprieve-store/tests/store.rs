//! The feedback store on real sled directories.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::{HashMap, HashSet};

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use reprieve_core::time::DAY;
use reprieve_core::{Verdict, VerdictClass};
use reprieve_store::*;

fn config() -> StoreConfig {
    StoreConfig {
        breaker_min_actions: 10,
        ..StoreConfig::default()
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir, config()).unwrap()
}

fn record(id: &str, tenant: &str, key: &str, class: VerdictClass, model: &str, at: i64) -> AuditRecord {
    AuditRecord {
        verdict: Verdict {
            verdict_id: id.to_string(),
            tenant: tenant.to_string(),
            key: key.to_string(),
            class,
            probability: 0.001,
            reasons: vec![],
            contributions: vec![],
            model_version: model.to_string(),
            scored_at: at,
        },
        features: vec![1.0, 2.5],
        feature_names_hash: "abc".into(),
        source: "grpc".into(),
    }
}

fn action(event: &str, verdict: &str, tenant: &str, key: &str, kind: ActionKind, at: i64) -> ActionEvent {
    ActionEvent {
        event_id: event.into(),
        verdict_id: verdict.into(),
        tenant: tenant.into(),
        key: key.into(),
        kind,
        at,
    }
}

fn restore(event: &str, tenant: &str, key: &str, at: i64, requested_at: Option<i64>) -> RestoreEvent {
    RestoreEvent {
        event_id: event.into(),
        tenant: tenant.into(),
        key: key.into(),
        at,
        requested_at,
    }
}

#[test]
fn retried_batches_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.record_verdicts(&[record("v1", "t", "img/a", VerdictClass::DeleteCandidate, "m1", 0)])
        .unwrap();
    let acts = [
        action("a1", "v1", "t", "img/a", ActionKind::SoftDeleted, 10),
        action("a1", "v1", "t", "img/a", ActionKind::SoftDeleted, 10),
    ];
    let ack = s.record_actions(&acts).unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (1, 1));
    let ack = s.record_actions(&acts).unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (0, 2));
    let rs = [restore("r1", "t", "img/a", 20, None)];
    let ack = s.record_restores(&rs).unwrap();
    assert_eq!((ack.accepted, ack.duplicates, ack.matched), (1, 0, 1));
    let ack = s.record_restores(&rs).unwrap();
    assert_eq!((ack.accepted, ack.duplicates, ack.matched), (0, 1, 0));
    let again = s.record_verdicts(&[record("v1", "t", "img/a", VerdictClass::DeleteCandidate, "m1", 0)]);
    assert_eq!(again.unwrap().duplicates, 1);
    let rows = s.precision(&PrecisionFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actions, rows[0].restores), (1, 1));
}

#[test]
fn restores_match_the_latest_action_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let w = config().restore_window_secs;
    s.record_verdicts(&[
        record("v1", "t", "a/x", VerdictClass::Archive, "m1", 0),
        record("v2", "t", "a/x", VerdictClass::DeleteCandidate, "m2", 50),
        record("v3", "t", "a/y", VerdictClass::DeleteCandidate, "m2", 0),
    ])
    .unwrap();
    s.record_actions(&[
        action("a1", "v1", "t", "a/x", ActionKind::Archived, 100),
        action("a2", "v2", "t", "a/x", ActionKind::SoftDeleted, 200),
        // Ignored actions are never matched, even when they are the latest.
        action("a3", "v2", "t", "a/x", ActionKind::Ignored, 300),
        action("a4", "v3", "t", "a/y", ActionKind::HardDeleted, 100),
    ])
    .unwrap();
    // Inside the window of a2 (the latest non-ignored action before it); a restore before any action; one just
    // outside the window of a4; one at exactly the edge of the window of a2.
    let ack = s
        .record_restores(&[
            restore("r1", "t", "a/x", 400, Some(350)),
            restore("r2", "t", "a/y", 50, None),
            restore("r3", "t", "a/y", 100 + w + 1, None),
            restore("r4", "t", "a/x", 200 + w, None),
            restore("r5", "other", "a/x", 400, None),
        ])
        .unwrap();
    assert_eq!((ack.accepted, ack.matched), (5, 2));
    let rows = s.precision(&PrecisionFilter::default()).unwrap();
    let get = |m: &str| rows.iter().find(|r| r.model_version == m).unwrap().clone();
    let (m1, m2) = (get("m1"), get("m2"));
    assert_eq!(
        (m1.actions, m1.restores),
        (1, 0),
        "the archive was superseded by the delete"
    );
    assert_eq!(m2.class, Some(VerdictClass::DeleteCandidate));
    assert_eq!(
        (m2.actions, m2.restores),
        (2, 1),
        "a2 restored (twice, counted once), a4 not"
    );
    // Time to recover: r1 350 -> 400 = 50 (requested_at known), r4 from the action: w.
    assert_eq!(m2.median_time_to_recover_secs, Some((50.0 + w as f64) / 2.0));

    // An action arriving after the restore it should have matched takes it over (order does not matter).
    s.record_verdicts(&[record("v4", "t", "a/y", VerdictClass::DeleteCandidate, "m2", 0)])
        .unwrap();
    s.record_actions(&[action("a5", "v4", "t", "a/y", ActionKind::SoftDeleted, 40)])
        .unwrap();
    let rows = s
        .precision(&PrecisionFilter {
            model_version: Some("m2".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((rows[0].actions, rows[0].restores), (3, 2));
}

#[test]
fn precision_on_a_hand_made_case() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut verdicts = Vec::new();
    let mut actions = Vec::new();
    let mut restores = Vec::new();
    // 20 deletes in t/img/, 3 restored after 60, 120 and 600 s; 5 archives in t/doc/, none restored; one delete in
    // another tenant, restored.
    for i in 0..20 {
        let key = format!("img/{i}.png");
        verdicts.push(record(
            &format!("v{i}"),
            "t",
            &key,
            VerdictClass::DeleteCandidate,
            "m1",
            0,
        ));
        actions.push(action(
            &format!("a{i}"),
            &format!("v{i}"),
            "t",
            &key,
            ActionKind::SoftDeleted,
            1_000,
        ));
    }
    for (i, d) in [(0, 60), (1, 120), (2, 600)] {
        restores.push(restore(&format!("r{i}"), "t", &format!("img/{i}.png"), 1_000 + d, None));
    }
    for i in 20..25 {
        let key = format!("doc/{i}.txt");
        verdicts.push(record(&format!("v{i}"), "t", &key, VerdictClass::Archive, "m1", 0));
        actions.push(action(
            &format!("a{i}"),
            &format!("v{i}"),
            "t",
            &key,
            ActionKind::Archived,
            1_000,
        ));
    }
    verdicts.push(record("vu", "u", "img/z", VerdictClass::DeleteCandidate, "m1", 0));
    actions.push(action("au", "vu", "u", "img/z", ActionKind::HardDeleted, 2_000));
    restores.push(restore("ru", "u", "img/z", 2_100, Some(2_090)));
    // An action on a verdict the audit trail never saw.
    actions.push(action("ax", "nope", "t", "img/q", ActionKind::SoftDeleted, 1_000));
    s.record_verdicts(&verdicts).unwrap();
    assert_eq!(s.record_actions(&actions).unwrap().unknown_verdicts, 1);
    assert_eq!(s.record_restores(&restores).unwrap().matched, 4);

    let rows = s.precision(&PrecisionFilter::default()).unwrap();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let img = rows
        .iter()
        .find(|r| r.tenant == "t" && r.prefix == "img/" && r.model_version == "m1")
        .unwrap();
    assert_eq!((img.actions, img.restores), (20, 3));
    assert!((img.false_delete_rate - 0.15).abs() < 1e-12);
    assert!((img.false_delete_upper_95 - reprieve_model::stats::upper_95(3, 20)).abs() < 1e-12);
    assert_eq!(img.median_time_to_recover_secs, Some(120.0));
    assert!(img.breaker_open, "20 >= 10 actions and a bound far above 1%");
    let doc = rows.iter().find(|r| r.prefix == "doc/").unwrap();
    assert_eq!(
        (doc.class, doc.actions, doc.restores, doc.false_delete_rate),
        (Some(VerdictClass::Archive), 5, 0, 0.0)
    );
    assert!(!doc.breaker_open);
    let u = rows.iter().find(|r| r.tenant == "u").unwrap();
    assert_eq!(u.median_time_to_recover_secs, Some(10.0));
    let unknown = rows.iter().find(|r| r.model_version.is_empty()).unwrap();
    assert_eq!((unknown.class, unknown.actions), (None, 1));

    // Filters.
    let only = |f: PrecisionFilter| s.precision(&f).unwrap().len();
    assert_eq!(
        only(PrecisionFilter {
            class: Some(VerdictClass::Archive),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        only(PrecisionFilter {
            tenant: Some("u".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        only(PrecisionFilter {
            prefix: Some("img/".into()),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        only(PrecisionFilter {
            since: Some(1_500),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        only(PrecisionFilter {
            model_version: Some("m9".into()),
            ..Default::default()
        }),
        0
    );

    // Training export: no restore window has closed yet, so only the restored verdicts have a label.
    let early: Vec<_> = s.acted_verdicts(3_000).unwrap().collect();
    assert_eq!(early.len(), 4);
    assert!(early.iter().all(|a| a.restored));
    let late: Vec<_> = s.acted_verdicts(10 * 365 * DAY).unwrap().collect();
    assert_eq!(
        late.len(),
        26,
        "25 + the other tenant; the unknown verdict has no features to export"
    );
    assert_eq!(late.iter().filter(|a| a.restored).count(), 4);
    assert_eq!(late[0].record.features, vec![1.0, 2.5]);
}

fn trip(s: &Store, model: &str, n: usize, restored: usize, at: i64) {
    let mut verdicts = Vec::new();
    let mut actions = Vec::new();
    let mut restores = Vec::new();
    for i in 0..n {
        let (v, key) = (format!("{model}-{at}-v{i}"), format!("img/{at}-{i}"));
        verdicts.push(record(&v, "t", &key, VerdictClass::DeleteCandidate, model, at));
        actions.push(action(
            &format!("{model}-{at}-a{i}"),
            &v,
            "t",
            &key,
            ActionKind::HardDeleted,
            at,
        ));
        if i < restored {
            restores.push(restore(&format!("{model}-{at}-r{i}"), "t", &key, at + 5, None));
        }
    }
    s.record_verdicts(&verdicts).unwrap();
    s.record_actions(&actions).unwrap();
    s.record_restores(&restores).unwrap();
}

#[test]
fn breaker_opens_at_the_bound_survives_reopen_resets_and_closes_on_promote() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        breaker_min_actions: 100,
        breaker_target: 0.05,
        ..StoreConfig::default()
    };
    {
        let s = Store::open(dir.path(), cfg).unwrap();
        // 99 deletes, none restored: too few actions to judge.
        trip(&s, "m1", 99, 0, 100);
        assert!(!s.breaker_open("m1", "t", "img/x"));
        // 100 actions, 0 restored: upper bound 1 - 0.05^(1/100) = 0.0295 <= 5%, stays closed.
        trip(&s, "m1", 1, 0, 101);
        assert!(!s.breaker_open("m1", "t", "img/x"));
        // 1 restored of 101: bound <= 5%, closed; 2 of 102: bound > 5%, opens (checked below against stats).
        trip(&s, "m1", 1, 1, 102);
        let st = s.breakers();
        assert_eq!((st[0].1.actions, st[0].1.restored), (101, 1));
        assert!(!s.breaker_open("m1", "t", "img/x"));
        assert!(reprieve_model::stats::upper_95(1, 101) <= 0.05 && reprieve_model::stats::upper_95(2, 102) > 0.05);
        trip(&s, "m1", 1, 1, 103);
        assert!(s.breaker_open("m1", "t", "img/anything"));
        assert!(!s.breaker_open("m1", "t", "doc/x"), "other prefixes are other scopes");
        assert!(!s.breaker_open("m1", "u", "img/x"));
        assert!(!s.breaker_open("m2", "t", "img/x"));
    }
    let s = Store::open(dir.path(), cfg).unwrap();
    assert!(s.breaker_open("m1", "t", "img/x"), "survives reopen");
    let events = s.breaker_events().unwrap();
    assert!(matches!(
        events[0].kind,
        BreakerEventKind::Opened {
            actions: 102,
            restored: 2,
            ..
        }
    ));
    assert!(
        s.reset_breaker("m1", "t", "img/", "", "", 200).is_err(),
        "a reset needs operator and reason"
    );
    assert!(s.reset_breaker("m1", "t", "img/", "ops@x", "false alarm", 200).unwrap());
    assert!(!s.breaker_open("m1", "t", "img/x"));
    let events = s.breaker_events().unwrap();
    assert!(matches!(&events[1].kind, BreakerEventKind::Reset { operator, was_open: true, .. } if operator == "ops@x"));
    // Counting restarts at the reset: old restores do not reopen it.
    trip(&s, "m1", 5, 0, 300);
    assert!(!s.breaker_open("m1", "t", "img/x"));
    drop(s);
    let s = Store::open(dir.path(), cfg).unwrap();
    assert!(!s.breaker_open("m1", "t", "img/x"), "the reset survives reopen");
    // Trip it again, then promote m2: m1's breaker closes, m2 starts clean.
    trip(&s, "m1", 100, 10, 400);
    assert!(s.breaker_open("m1", "t", "img/x"));
    assert_eq!(s.promote_model("m2", 500).unwrap(), 1);
    assert!(!s.breaker_open("m1", "t", "img/x"));
    assert!(!s.breaker_open("m2", "t", "img/x"));
    assert_eq!(s.active_model().unwrap().as_deref(), Some("m2"));
    let last = s.breaker_events().unwrap().pop().unwrap();
    assert!(matches!(last.kind, BreakerEventKind::ClosedByPromotion { .. }));
}

#[test]
fn prune_keeps_young_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let ret = config().audit_retention_secs;
    let now = 1_000 * DAY;
    s.record_verdicts(&[
        record("old", "t", "k", VerdictClass::Review, "m", now - ret - 1),
        record("edge", "t", "k", VerdictClass::Review, "m", now - ret),
        record("young", "t", "k", VerdictClass::Review, "m", now - 1),
    ])
    .unwrap();
    assert_eq!(s.prune_audit(now).unwrap(), 1);
    assert!(s.verdict("old").unwrap().is_none());
    assert!(s.verdict("edge").unwrap().is_some());
    let by_key: Vec<_> = s.verdicts_for_key("t", "k", 10).unwrap();
    assert_eq!(
        by_key.iter().map(|r| r.verdict.verdict_id.as_str()).collect::<Vec<_>>(),
        ["young", "edge"],
        "newest first"
    );
    let between = s.verdicts_between(now - ret - 10, now, 10).unwrap();
    assert_eq!(between.len(), 2);
    assert_eq!(s.verdicts_between(now - 1, now - 1, 10).unwrap().len(), 1);
    assert_eq!(s.verdicts_for_key("t", "k", 1).unwrap().len(), 1);
    assert_eq!(s.prune_audit(now).unwrap(), 0);
}

#[test]
fn locked_foreign_or_corrupt_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let err = Store::open(dir.path(), config()).unwrap_err();
    let msg = err.to_string();
    eprintln!("locked: {msg}");
    assert!(matches!(err, StoreError::Locked { .. }), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    drop(s);
    open(dir.path());

    let garbage = tempfile::tempdir().unwrap();
    std::fs::write(garbage.path().join("notes.txt"), "hello").unwrap();
    let err = Store::open(garbage.path(), config()).unwrap_err();
    eprintln!("foreign: {err}");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains(&garbage.path().display().to_string()));

    // A store whose sled files were replaced by garbage.
    let corrupt = tempfile::tempdir().unwrap();
    drop(open(corrupt.path()));
    std::fs::write(corrupt.path().join("db"), vec![0xAB; 4096]).unwrap();
    std::fs::write(corrupt.path().join("conf"), "garbage").unwrap();
    let err = Store::open(corrupt.path(), config()).unwrap_err();
    eprintln!("corrupt: {err}");
    assert!(err.to_string().contains(&corrupt.path().display().to_string()), "{err}");

    // A store whose database vanished.
    let gone = tempfile::tempdir().unwrap();
    drop(open(gone.path()));
    std::fs::remove_file(gone.path().join("db")).unwrap();
    let err = Store::open(gone.path(), config()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
}

#[test]
fn throughput_of_batches_of_100() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let verdicts: Vec<_> = (0..100)
        .map(|i| {
            record(
                &format!("v{i}"),
                "t",
                &format!("img/{i}"),
                VerdictClass::DeleteCandidate,
                "m",
                0,
            )
        })
        .collect();
    s.record_verdicts(&verdicts).unwrap();
    let start = Instant::now();
    let batches = 50;
    for b in 0..batches {
        let actions: Vec<_> = (0..100)
            .map(|i| {
                let key = format!("img/{i}");
                action(
                    &format!("a{b}-{i}"),
                    &format!("v{i}"),
                    "t",
                    &key,
                    ActionKind::SoftDeleted,
                    b * 10,
                )
            })
            .collect();
        assert_eq!(s.record_actions(&actions).unwrap().accepted, 100);
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = (batches * 100) as f64 / secs;
    // Reported, not asserted (debug build, shared machine).
    eprintln!("record_actions: {rate:.0} events/s in batches of 100 (flush per batch)");
    let start = Instant::now();
    for b in 0..batches {
        let restores: Vec<_> = (0..100)
            .map(|i| restore(&format!("r{b}-{i}"), "t", &format!("img/{i}"), b * 10 + 5, None))
            .collect();
        assert_eq!(s.record_restores(&restores).unwrap().matched, 100);
    }
    let rate = (batches * 100) as f64 / start.elapsed().as_secs_f64();
    eprintln!("record_restores: {rate:.0} events/s in batches of 100 (flush per batch)");
    let start = Instant::now();
    for b in 0..batches {
        let verdicts: Vec<_> = (0..100)
            .map(|i| {
                record(
                    &format!("w{b}-{i}"),
                    "t",
                    &format!("img/{i}"),
                    VerdictClass::Review,
                    "m",
                    b,
                )
            })
            .collect();
        assert_eq!(s.record_verdicts(&verdicts).unwrap().accepted, 100);
    }
    let rate = (batches * 100) as f64 / start.elapsed().as_secs_f64();
    eprintln!("record_verdicts: {rate:.0} verdicts/s in batches of 100 (flush per batch)");
}

// ---------------------------------------------------------------------------------------------------------------
// Random interleavings against an in-memory reference
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Action { id: u8, obj: u8, kind: u8, at: i64 },
    Restore { id: u8, obj: u8, at: i64 },
}

const WINDOW: i64 = 100;

/// The specification, restated naively: keep every event, match at the end.
fn reference(ops: &[Op]) -> (u64, u64, u64, u64) {
    let mut actions: HashMap<u8, (u8, u8, i64)> = HashMap::new();
    let mut restores: HashMap<u8, (u8, i64)> = HashMap::new();
    for op in ops {
        match *op {
            Op::Action { id, obj, kind, at } => {
                actions.entry(id).or_insert((obj, kind, at));
            }
            Op::Restore { id, obj, at } => {
                restores.entry(id).or_insert((obj, at));
            }
        }
    }
    let mut restored: HashSet<u8> = HashSet::new();
    for &(obj, at) in restores.values() {
        let best = actions
            .iter()
            .filter(|(_, (o, k, a))| *o == obj && *k != 3 && *a <= at && at - *a <= WINDOW)
            .max_by_key(|(id, (_, _, a))| (*a, format!("a{id:03}")));
        if let Some((id, _)) = best {
            restored.insert(*id);
        }
    }
    let count = |f: &dyn Fn(u8) -> bool| {
        let ids: Vec<_> = actions
            .iter()
            .filter(|(_, (_, k, _))| f(*k))
            .map(|(id, _)| *id)
            .collect();
        (
            ids.len() as u64,
            ids.iter().filter(|id| restored.contains(id)).count() as u64,
        )
    };
    let (lets_go, lets_go_restored) = count(&|k| k != 3);
    let (deletes, deletes_restored) = count(&|k| k == 1 || k == 2);
    (lets_go, lets_go_restored, deletes, deletes_restored)
}

fn kind(k: u8) -> ActionKind {
    [
        ActionKind::Archived,
        ActionKind::SoftDeleted,
        ActionKind::HardDeleted,
        ActionKind::Ignored,
    ][k as usize]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..30, 0u8..4, 0u8..4, 0i64..300).prop_map(|(id, obj, kind, at)| Op::Action { id, obj, kind, at }),
        (0u8..30, 0u8..4, 0i64..300).prop_map(|(id, obj, at)| Op::Restore { id, obj, at }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn interleavings_with_retries_match_the_reference(
        ops in proptest::collection::vec(op_strategy(), 1..40),
        cuts in proptest::collection::vec(1usize..6, 1..20),
        retries in proptest::collection::vec(any::<bool>(), 20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig { restore_window_secs: WINDOW, breaker_min_actions: 1_000_000, ..StoreConfig::default() };
        let s = Store::open(dir.path(), cfg).unwrap();
        let verdicts: Vec<_> = (0..4u8)
            .map(|o| record(&format!("v{o}"), "t", &format!("p/{o}"), VerdictClass::DeleteCandidate, "m", 0))
            .collect();
        s.record_verdicts(&verdicts).unwrap();
        // Cut the ops into requests of random sizes; some requests are retried whole.
        let mut start = 0;
        let mut i = 0;
        while start < ops.len() {
            let end = (start + cuts[i % cuts.len()]).min(ops.len());
            let chunk = &ops[start..end];
            let times = if retries[i % retries.len()] { 2 } else { 1 };
            for _ in 0..times {
                let mut acts = Vec::new();
                let mut rests = Vec::new();
                for op in chunk {
                    match *op {
                        Op::Action { id, obj, kind: k, at } => acts.push(action(
                            &format!("a{id:03}"), &format!("v{obj}"), "t", &format!("p/{obj}"), kind(k), at)),
                        Op::Restore { id, obj, at } => rests.push(restore(&format!("r{id:03}"), "t", &format!("p/{obj}"), at, None)),
                    }
                }
                // Within one request actions go first, then restores (two calls, as a server would make).
                s.record_actions(&acts).unwrap();
                s.record_restores(&rests).unwrap();
            }
            start = end;
            i += 1;
        }
        // First event of an id wins: the reference sees the same order as the store.
        let ordered: Vec<Op> = {
            let mut v = Vec::new();
            let mut start = 0;
            let mut i = 0;
            while start < ops.len() {
                let end = (start + cuts[i % cuts.len()]).min(ops.len());
                v.extend(ops[start..end].iter().filter(|o| matches!(o, Op::Action { .. })).cloned());
                v.extend(ops[start..end].iter().filter(|o| matches!(o, Op::Restore { .. })).cloned());
                start = end;
                i += 1;
            }
            v
        };
        let (actions, restored, deletes, deletes_restored) = reference(&ordered);
        let rows = s.precision(&PrecisionFilter::default()).unwrap();
        let got_actions: u64 = rows.iter().map(|r| r.actions).sum();
        let got_restored: u64 = rows.iter().map(|r| r.restores).sum();
        prop_assert_eq!((got_actions, got_restored), (actions, restored));
        // The breaker counters (delete actions only, kept incrementally) agree, and survive reopen.
        let counters = |s: &Store| {
            s.breakers().iter().map(|(_, st)| (st.actions, st.restored)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        prop_assert_eq!(counters(&s), (deletes, deletes_restored));
        drop(s);
        let s = Store::open(dir.path(), cfg).unwrap();
        prop_assert_eq!(counters(&s), (deletes, deletes_restored));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Crash safety: a child process is SIGKILLed while writing; every acknowledged batch must be there exactly once.
// ---------------------------------------------------------------------------------------------------------------

const CHILD_DIR: &str = "REPRIEVE_STORE_CRASH_CHILD_DIR";
const CHILD_CYCLE: &str = "REPRIEVE_STORE_CRASH_CHILD_CYCLE";

fn crash_batch(cycle: u64, b: u64) -> Vec<ActionEvent> {
    (0..100)
        .map(|i| {
            let key = format!("img/{i}");
            action(
                &format!("c{cycle}-b{b}-{i}"),
                "none",
                "t",
                &key,
                ActionKind::SoftDeleted,
                b as i64,
            )
        })
        .collect()
}

/// Not a test of its own: the writer the crash test runs in a child process (does nothing without the variable).
#[test]
#[allow(clippy::print_stdout)]
fn crash_child_writer() {
    let (Ok(dir), Ok(cycle)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_CYCLE)) else {
        return;
    };
    let cycle: u64 = cycle.parse().unwrap();
    let s = Store::open(Path::new(&dir), config()).unwrap();
    for b in 0.. {
        s.record_actions(&crash_batch(cycle, b)).unwrap();
        println!("ACK {b}");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_batch() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0u64;
    for cycle in 0..5u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_CYCLE, cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = None;
        // Kill it after a number of acknowledged batches that varies with the cycle.
        while let Some(Ok(line)) = lines.next() {
            if let Some(b) = line.strip_prefix("ACK ") {
                let b: u64 = b.trim().parse().unwrap();
                acked = Some(b);
                if b >= 3 + 4 * cycle {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = acked.expect("the child acknowledged nothing");
        let s = open(dir.path());
        for b in 0..=acked {
            let ack = s.record_actions(&crash_batch(cycle, b)).unwrap();
            assert_eq!(
                (ack.accepted, ack.duplicates),
                (0, 100),
                "cycle {cycle}, batch {b} lost"
            );
        }
        // Batches after the last acknowledged one are there whole or not at all.
        let next = s.record_actions(&crash_batch(cycle, acked + 1)).unwrap();
        assert!(next.accepted == 100 || next.duplicates == 100, "{next:?}");
        let actions: u64 = s
            .precision(&PrecisionFilter::default())
            .unwrap()
            .iter()
            .map(|r| r.actions)
            .sum();
        assert!(actions >= total + (acked + 2) * 100, "{actions}");
        total = actions;
    }
}

#[test]
fn a_late_action_takes_over_the_restore_it_precedes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.record_verdicts(&[
        record("v1", "t", "k/x", VerdictClass::Archive, "m1", 0),
        record("v2", "t", "k/x", VerdictClass::DeleteCandidate, "m2", 0),
    ])
    .unwrap();
    s.record_actions(&[action("a1", "v1", "t", "k/x", ActionKind::Archived, 100)])
        .unwrap();
    assert_eq!(
        s.record_restores(&[restore("r1", "t", "k/x", 150, None)])
            .unwrap()
            .matched,
        1
    );
    let restored = |m: &str| {
        let f = PrecisionFilter {
            model_version: Some(m.into()),
            ..Default::default()
        };
        s.precision(&f).unwrap().iter().map(|r| r.restores).sum::<u64>()
    };
    assert_eq!(restored("m1"), 1);
    // Reported late, but it happened between a1 and the restore: the restore is now its false positive.
    s.record_actions(&[action("a2", "v2", "t", "k/x", ActionKind::SoftDeleted, 120)])
        .unwrap();
    assert_eq!((restored("m1"), restored("m2")), (0, 1));
    let st = s.breakers();
    assert_eq!(
        (st[0].0.model_version.as_str(), st[0].1.actions, st[0].1.restored),
        ("m2", 1, 1)
    );
    // A later action after the restore changes nothing.
    s.record_actions(&[action("a3", "v2", "t", "k/x", ActionKind::HardDeleted, 151)])
        .unwrap();
    assert_eq!((restored("m1"), restored("m2")), (0, 1));
}

#[test]
fn a_group_commit_answers_each_request_and_later_requests_see_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let verdicts: Vec<EncodedVerdict> = (0..3)
        .map(|i| {
            EncodedVerdict::new(&record(
                &format!("v{i}"),
                "t",
                &format!("img/{i}"),
                VerdictClass::DeleteCandidate,
                "m",
                0,
            ))
            .unwrap()
        })
        .collect();
    let acts = [action("a0", "v0", "t", "img/0", ActionKind::SoftDeleted, 10)];
    let bad = [action("", "v1", "t", "img/1", ActionKind::SoftDeleted, 10)];
    let again = [
        action("a0", "v0", "t", "img/0", ActionKind::SoftDeleted, 10),
        action("a1", "v1", "t", "img/1", ActionKind::SoftDeleted, 10),
    ];
    let back = [restore("r0", "t", "img/0", 20, None)];
    let answers = s
        .write_group(
            &[
                WriteRequest::Verdicts(&verdicts),
                WriteRequest::Actions(&acts),
                WriteRequest::Actions(&bad),
                WriteRequest::Actions(&again),
                WriteRequest::Restores(&back),
                WriteRequest::Verdicts(&verdicts[..1]),
            ],
            true,
        )
        .unwrap();
    let acks: Vec<_> = answers
        .iter()
        .map(|a| a.as_ref().map(|a| *a).map_err(|e| e.to_string()))
        .collect();
    assert_eq!(
        acks[0],
        Ok(Ack {
            accepted: 3,
            ..Ack::default()
        })
    );
    // The action sees the verdict staged before it in the same group: attributed, not unknown.
    assert_eq!(
        acks[1],
        Ok(Ack {
            accepted: 1,
            ..Ack::default()
        })
    );
    assert!(
        acks[2].as_ref().is_err_and(|e| e.contains("without event_id")),
        "{:?}",
        acks[2]
    );
    assert_eq!(
        acks[3],
        Ok(Ack {
            accepted: 1,
            duplicates: 1,
            ..Ack::default()
        })
    );
    assert_eq!(
        acks[4],
        Ok(Ack {
            accepted: 1,
            matched: 1,
            ..Ack::default()
        })
    );
    assert_eq!(
        acks[5],
        Ok(Ack {
            duplicates: 1,
            ..Ack::default()
        })
    );
    let rows = s.precision(&PrecisionFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].model_version.as_str(), rows[0].actions, rows[0].restores),
        ("m", 2, 1)
    );
    // Nothing of the refused request was written.
    assert_eq!(
        s.record_actions(&[action("x", "v2", "t", "img/2", ActionKind::Ignored, 10)])
            .unwrap()
            .accepted,
        1
    );

    // A non-durable group is visible at once; after a reopen (the store was dropped, which flushes) it is there.
    let late = [EncodedVerdict::new(&record("late", "t", "img/9", VerdictClass::Review, "m", 5)).unwrap()];
    s.write_group(&[WriteRequest::Verdicts(&late)], false).unwrap();
    assert!(s.verdict("late").unwrap().is_some());
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.verdict("late").unwrap().unwrap().features, vec![1.0, 2.5]);
}

#[test]
fn verdict_listings_page_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut all = Vec::new();
    for i in 0..25 {
        let tenant = if i % 5 == 0 { "u" } else { "t" };
        all.push(record(
            &format!("v{i:02}"),
            tenant,
            "img/k",
            VerdictClass::Review,
            "m",
            100 + i / 2,
        ));
    }
    s.record_verdicts(&all).unwrap();
    // By time, oldest first, in pages of 4 of tenant t (20 verdicts).
    let mut seen = Vec::new();
    let mut page = None;
    loop {
        let p = s
            .verdicts_between_page(i64::MIN, i64::MAX, Some("t"), 4, page.as_deref())
            .unwrap();
        assert!(p.records.len() <= 4);
        seen.extend(
            p.records
                .iter()
                .map(|r| (r.verdict.scored_at, r.verdict.verdict_id.clone())),
        );
        match p.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, no repeats: {seen:?}");
    // By key within a time range, newest first.
    let p = s.verdicts_for_key_page("t", "img/k", 103, 105, 3, None).unwrap();
    let times: Vec<_> = p.records.iter().map(|r| r.verdict.scored_at).collect();
    assert_eq!(times, [105, 104, 104]);
    let rest = s
        .verdicts_for_key_page("t", "img/k", 103, 105, 10, p.next.as_deref())
        .unwrap();
    assert_eq!(rest.records.len(), 2, "tenant t has 5 verdicts in [103, 105]");
    assert!(rest.next.is_none());
    // A token of one query is refused by the other.
    let token = s.verdicts_between_page(0, 200, None, 1, None).unwrap().next.unwrap();
    assert!(matches!(
        s.verdicts_for_key_page("t", "img/k", 0, 200, 1, Some(&token)),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn sessions_tell_a_crash_from_a_clean_stop_and_breakers_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert_eq!(s.begin_session("first").unwrap(), None);
    drop(s);
    // No end_session: the next session learns that the first one did not end cleanly.
    let s = open(dir.path());
    assert_eq!(s.begin_session("second").unwrap().as_deref(), Some("first"));
    s.end_session().unwrap();
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.begin_session("third").unwrap(), None);

    assert!(s.open_breakers().is_empty());
    trip(&s, "m1", 10, 10, 1_000);
    let open_now = s.open_breakers();
    assert_eq!(open_now.len(), 1);
    assert_eq!(
        (open_now[0].model_version.as_str(), open_now[0].tenant.as_str()),
        ("m1", "t")
    );
    let pooled = s.precision_by_model(&PrecisionFilter::default()).unwrap();
    assert_eq!(pooled.len(), 1);
    assert_eq!((pooled[0].tenant.as_str(), pooled[0].prefix.as_str()), ("", ""));
    assert!(pooled[0].breaker_open);
}
